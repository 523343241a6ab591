/* Guards: what may end a stream before its view does. A guarded stream
 * holds its client's places in the per-client counts (clients.c), ends
 * when its credential expires, and ends when its user is revoked. Each
 * worker keeps its guarded streams; a revocation reaches every worker
 * through its loop's inbox. It knows nothing of connections or Lua: the
 * layer above (the stream) says how a stream ends. */
#ifndef FLOSSE_GUARD_H
#define FLOSSE_GUARD_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "clients.h"
#include "list.h"
#include "loop.h"

struct flosse_guard;

/* Ends the guarded stream with a final event of that name
 * ("flosse-expired", "flosse-revoked"); the guard is disarmed once it
 * returns (it may free it). */
typedef void (*flosse_guard_end_fn)(struct flosse_guard *g, const char *event);

/* A worker's guarded streams. */
struct flosse_guards {
  struct flosse_loop *loop;
  flosse_guard_end_fn end;
  struct flosse_list all;   /* the streams whose user can be revoked */
  struct flosse_list node;  /* among the process's workers (revocations) */
  uint64_t seen;            /* the last revocation it applied */
  int started;
};

struct flosse_guard {
  struct flosse_guards *ctx;
  void *owner;              /* the layer above's (its stream) */
  struct flosse_list node;  /* in ctx->all when it has a user */
  ev_timer expiry;
  uint64_t since;           /* revocations up to this one came before it */
  uint16_t iplen, userlen;  /* 0: none; either set: it holds its places in the counts */
  char keys[];              /* the address, then the user id */
};

void flosse_guards_init(struct flosse_guards *gs, struct flosse_loop *loop, flosse_guard_end_fn end);
/* Joins (leaves) the workers that revocations reach; stop before the loop
 * and its inbox go. */
void flosse_guards_start(struct flosse_guards *gs);
void flosse_guards_stop(struct flosse_guards *gs);

/* What a stream is admitted with: its client's address and its user (NULL
 * or "": none), the caps (<= 0: none) and its credential's expiry on the
 * wall clock (<= 0: none). */
struct flosse_guard_opts {
  const char *ip, *user;
  size_t iplen, userlen;
  long max_per_ip, max_per_user;
  double expires_at;
};

/* Admits a stream: counts it for its address and user (refusing the user
 * while revoked, and either at its cap), and returns its new guard, armed.
 * NULL with *rc saying why (nothing is held then). Keys longer than
 * FLOSSE_CLIENT_KEY_MAX are refused (FLOSSE_ADMIT_NOMEM). */
struct flosse_guard *flosse_guard_new(struct flosse_guards *gs, void *owner,
                                      const struct flosse_guard_opts *o, enum flosse_admit *rc);
/* Lets go of what it holds and frees it. */
void flosse_guard_free(struct flosse_guard *g);

/* Ends the user's guarded streams on every worker (each at its next turn)
 * and refuses the user's new streams for seconds. Any thread.
 * FLOSSE_ERR: the id is too long, or no memory. */
int flosse_guards_revoke(const char *user, size_t len, double seconds);

#endif
