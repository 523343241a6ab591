/* Redis links for one worker's loop: a URL, a connection that keeps
 * itself up (hiredis' async API on the libev adapter), the pools of
 * connections a worker keeps per URL, and the process-wide Redis settings.
 * No Lua, no tasks: replies go to a callback. Layer 2 (loop utilities). */
#ifndef FLOSSE_REDIS_H
#define FLOSSE_REDIS_H

#include <ev.h>
#include <stddef.h>

struct redisReply;
struct redisAsyncContext;
struct flosse_loop;

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]  or  unix:///path/to/socket[?db=N]
 * (parsed with http-parser's URL parser; PORT defaults to 6379, DB to 0). */
struct flosse_redis_url {
  char text[512];        /* the URL as given, for log lines (password shown as ...) */
  char host[256];        /* empty for unix */
  int port;
  char path[108];        /* the unix socket, empty for TCP */
  char user[128];        /* empty: AUTH PASSWORD alone (Redis 6 ACL: AUTH USER PASSWORD) */
  char password[256];    /* empty: no AUTH */
  int db;
};
/* Fills out from url. Returns FLOSSE_OK, or FLOSSE_ERR with err saying
 * what is wrong (out is then unspecified). */
int flosse_redis_url_parse(const char *url, struct flosse_redis_url *out, char *err, size_t errlen);
/* 1 if a and b name the same server, database and credentials. */
int flosse_redis_url_same(const struct flosse_redis_url *a, const struct flosse_redis_url *b);

/* A reply, or why there is none: reply is NULL and err says why ("timeout",
 * "connection lost", "not connected (...)", "closed"). A reply of type
 * REDIS_REPLY_ERROR is a reply (err NULL). fn must not free the reply, nor
 * keep it: hiredis frees it once fn returns. */
typedef void (*flosse_redis_reply_fn)(void *arg, struct redisReply *reply, const char *err);

struct flosse_redis_conn;
struct flosse_redis_req; /* one command in flight; owned by the connection */

struct flosse_redis_conn_callbacks {
  void (*up)(struct flosse_redis_conn *c, void *data);   /* connected, AUTH and SELECT done */
  void (*down)(struct flosse_redis_conn *c, void *data, const char *why); /* lost; it retries */
};

/* Opens (and keeps reopening, at most 1 s apart, logging one line naming
 * the URL when it first fails and one when it is back) a connection on
 * loop. timeout (seconds) bounds the connect and the handshake. cb may be
 * NULL; cb and u are copied. Returns NULL only when out of memory. */
struct flosse_redis_conn *flosse_redis_conn_new(struct ev_loop *loop, const struct flosse_redis_url *u,
                                                double timeout,
                                                const struct flosse_redis_conn_callbacks *cb, void *data);
/* Closes it: pending commands get (NULL, "closed") now, no callback
 * afterwards. Not from inside one of its own callbacks. */
void flosse_redis_conn_free(struct flosse_redis_conn *c);
int flosse_redis_conn_is_up(const struct flosse_redis_conn *c);
/* Commands sent and not yet answered (or cancelled and not yet answered). */
int flosse_redis_conn_inflight(const struct flosse_redis_conn *c);
/* The hiredis context while up (NULL otherwise), for pub/sub. Borrowed:
 * valid until the down callback. */
struct redisAsyncContext *flosse_redis_conn_ctx(struct flosse_redis_conn *c);

/* Sends one command (argv[i] of lens[i] bytes; hiredis copies them before
 * this returns). timeout (seconds, > 0; 0: none): the command's answer is
 * (NULL, "timeout") when none came in time, and the connection is closed
 * and reopened (as OpenResty's cosockets do): the other commands pending
 * on it get (NULL, "connection lost"). fn is never called from inside this
 * call: when the command cannot be sent (not connected: Redis was found
 * down and the connection waits to retry) it returns NULL and sets *err
 * (borrowed, valid until the next call on c). While the first connect of
 * a connection is under way, commands are queued behind the handshake.
 * Returns the request handle (owned by the connection; valid until fn has
 * been called or the request was cancelled). */
struct flosse_redis_req *flosse_redis_command(struct flosse_redis_conn *c, int argc, const char **argv,
                                              const size_t *lens, double timeout,
                                              flosse_redis_reply_fn fn, void *arg, const char **err);
/* Sends n commands in one write, in order on c; fn is called once per
 * command, in order. reqs (n slots) gets their handles. Returns FLOSSE_OK,
 * or FLOSSE_ERR with *err set and fn never called (nothing was sent). */
int flosse_redis_pipeline(struct flosse_redis_conn *c, int n, const int *argcs, const char *const *const *argvs,
                          const size_t *const *lenss, double timeout, flosse_redis_reply_fn fn, void *arg,
                          struct flosse_redis_req **reqs, const char **err);
/* Names the connection in Redis' CLIENT LIST (CLIENT SETNAME; the reply
 * is not waited for). */
void flosse_redis_set_name(struct flosse_redis_conn *c, const char *name);

/* fn will not be called for req (its reply, when it comes, is dropped). */
void flosse_redis_req_cancel(struct flosse_redis_req *req);

/* ---- pools ------------------------------------------------------------------ */

/* A worker's connections to one URL (at most the settings' pool of them,
 * opened lazily). A command goes to the up connection with the fewest
 * commands in flight; another is opened while all are busy. */
struct flosse_redis_pool;
/* The registry of a loop's pools (struct flosse_loop.redis). */
struct flosse_redis_pools;

/* The pool of loop for u, made on first use (connect timeout and size from
 * flosse_redis_settings()). Borrowed: valid until flosse_redis_pools_free.
 * NULL only when out of memory. */
struct flosse_redis_pool *flosse_redis_pool_of(struct flosse_loop *loop, const struct flosse_redis_url *u);
/* The URL a pool connects to (borrowed). */
const struct flosse_redis_url *flosse_redis_pool_url(const struct flosse_redis_pool *p);
/* flosse_redis_command on the pool's best connection. */
struct flosse_redis_req *flosse_redis_pool_command(struct flosse_redis_pool *p, int argc, const char **argv,
                                                   const size_t *lens, double timeout,
                                                   flosse_redis_reply_fn fn, void *arg, const char **err);
/* flosse_redis_pipeline on the pool's best connection (all n on it). */
int flosse_redis_pool_pipeline(struct flosse_redis_pool *p, int n, const int *argcs,
                               const char *const *const *argvs, const size_t *const *lenss, double timeout,
                               flosse_redis_reply_fn fn, void *arg, struct flosse_redis_req **reqs,
                               const char **err);
/* Closes every pool of loop (their pending commands get (NULL, "closed")):
 * the worker's loop is stopping. Safe when it has none. */
void flosse_redis_pools_free(struct flosse_loop *loop);

/* ---- settings --------------------------------------------------------------- */

#define FLOSSE_REDIS_MAX_SHARDS 16

/* The process's Redis settings (settings.lua's redis, or --redis), set once
 * before the workers start and read by all of them. */
struct flosse_redis_settings {
  int configured;        /* 0: no Redis (the rest holds the defaults) */
  struct flosse_redis_url url;  /* url, or the first shard when only shards were given */
  int nshards;
  struct flosse_redis_url shards[FLOSSE_REDIS_MAX_SHARDS]; /* shards, or just { url } */
  char prefix[128];      /* of every key flosse makes */
  double timeout;        /* seconds: connect, and each command */
  int pool;              /* connections per worker per URL */
};

/* Borrowed; never NULL. */
const struct flosse_redis_settings *flosse_redis_settings(void);
/* Copies s as the process's settings. Call before any worker starts. */
void flosse_redis_configure(const struct flosse_redis_settings *s);
/* Fills s with the defaults (configured = 0). */
void flosse_redis_settings_defaults(struct flosse_redis_settings *s);

#endif
