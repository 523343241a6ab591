/* Clients: what the whole process knows of who holds streams. How many
 * streams each client address and each user holds (the per-client caps,
 * max_streams_per_ip and max_streams_per_user), and which users are refused
 * until when (flosse.revoke{ seconds = }). One table for every worker,
 * under one lock; no Lua, no libev. A key's entry lives while it counts a
 * stream or refuses one, so the table is as big as what is open. */
#ifndef FLOSSE_CLIENTS_H
#define FLOSSE_CLIENTS_H

#include <stddef.h>

#define FLOSSE_CLIENT_KEY_MAX 256 /* bytes of an address or a user id */

enum flosse_admit {
  FLOSSE_ADMIT_OK,
  FLOSSE_ADMIT_REVOKED,  /* the user is refused for now */
  FLOSSE_ADMIT_OVER_IP,  /* the address holds max_per_ip streams */
  FLOSSE_ADMIT_OVER_USER,/* the user holds max_per_user streams */
  FLOSSE_ADMIT_NOMEM,
};

/* Counts one more stream for ip and for user (either may be NULL: not
 * counted), unless the user is refused or either is at its cap (max <= 0:
 * no cap). On FLOSSE_ADMIT_OK, flosse_clients_leave with the same keys
 * undoes it. now: the wall clock, in seconds. */
enum flosse_admit flosse_clients_admit(const char *ip, size_t iplen, long max_per_ip,
                                       const char *user, size_t userlen, long max_per_user,
                                       double now);
void flosse_clients_leave(const char *ip, size_t iplen, const char *user, size_t userlen,
                          double now);

/* The user's new streams are refused until the wall clock passes until
 * (FLOSSE_ERR: no memory). */
int flosse_clients_refuse_until(const char *user, size_t len, double until, double now);

/* How many streams the key holds (tests). kind: 'i' an address, 'u' a user. */
long flosse_clients_count(char kind, const char *key, size_t len);

#endif
