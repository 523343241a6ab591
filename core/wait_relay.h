/* The relay: sub:relay() hands a stream's subscription to the core, which
 * moves each message (framed once, at publish time) to the connection with
 * no Lua in between. The task that asked is released once the stream has
 * taken the subscription: a relayed stream holds no Lua thread. */
#ifndef FLOSSE_WAIT_RELAY_H
#define FLOSSE_WAIT_RELAY_H

#include "channel.h"
#include "conn.h"
#include "loop.h"
#include "task.h"

/* The task's side: it waits for its stream to take the subscription. */
extern const struct flosse_wait flosse_wait_relay;

struct flosse_relay {
  struct flosse_sub_owner owner; /* the subscription notifies the relay */
  struct flosse_sub *sub;        /* owned; NULL: not relaying */
  struct flosse_conn *conn;
  struct flosse_job job;         /* moves what is queued to the connection */
  unsigned chunked : 1;
  unsigned full : 1;             /* paused above the high-water mark */
};

/* The task gives up s (which it created) and waits; its stream then calls
 * flosse_wait_relay_arm. Returns lua_yield's value. */
int flosse_wait_relay_yield(lua_State *T, struct flosse_task *t);

/* Starts relaying s (ownership taken: freed by cancel) to c; what is
 * queued already (a replay) goes out at the end of the turn. */
void flosse_wait_relay_arm(struct flosse_relay *r, struct flosse_sub *s, struct flosse_conn *c,
                           int chunked);
/* Moves what is queued now (a drained connection, a wake). */
void flosse_wait_relay_fire(struct flosse_relay *r);
/* Stops relaying: the subscription is closed and freed. Safe twice. */
void flosse_wait_relay_cancel(struct flosse_relay *r);

static inline int flosse_wait_relay_active(const struct flosse_relay *r) { return r->sub != NULL; }

#endif
