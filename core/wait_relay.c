#include "wait_relay.h"

#include <stdlib.h>

#include "buf.h"
#include "metrics.h"

const struct flosse_wait flosse_wait_relay = {"relay", NULL, 0};

int flosse_wait_relay_yield(lua_State *T, struct flosse_task *t) {
  return flosse_task_yield_wait(T, t, &flosse_wait_relay);
}

static void job(struct flosse_job *j) {
  flosse_wait_relay_fire(flosse_container_of(j, struct flosse_relay, job));
}

/* On the relay's own thread: a message (run the job), or the subscription
 * fell too far behind (the client reconnects with Last-Event-ID). */
static void deliver(void *target, int drop) {
  struct flosse_relay *r = flosse_container_of(target, struct flosse_relay, owner);
  if (!r->sub) return;
  if (drop)
    flosse_conn_close_soon(r->conn, "channel backlog overflow: the client is too slow "
                                    "(it reconnects with Last-Event-ID)");
  else
    flosse_loop_run_soon(r->conn->ctx->loop, &r->job);
}

/* Under the channels' lock, on the publisher's thread. */
static void notify(struct flosse_sub_owner *o, int drop) {
  struct flosse_relay *r = flosse_container_of(o, struct flosse_relay, owner);
  struct flosse_loop *loop = r->conn->ctx->loop;
  if (loop == flosse_loop_current) deliver(o, drop);
  else flosse_inbox_post(&loop->inbox, deliver, o, drop);
}

void flosse_wait_relay_arm(struct flosse_relay *r, struct flosse_sub *s, struct flosse_conn *c,
                           int chunked) {
  r->owner.notify = notify;
  r->conn = c;
  r->chunked = chunked;
  r->full = 0;
  flosse_job_init(&r->job, job);
  r->sub = s;
  flosse_sub_set_owner(s, &r->owner);
  flosse_loop_run_soon(c->ctx->loop, &r->job);
}

/* Moves what the subscription has queued to the output queue: messages
 * were framed at publish time, so no Lua runs and nothing is copied. Pauses
 * above the high-water mark (the subscription's backlog fills meanwhile);
 * the connection's drained callback resumes. */
void flosse_wait_relay_fire(struct flosse_relay *r) {
  enum { BATCH = 64 };
  struct flosse_msg *ms[BATCH];
  struct flosse_conn *c = r->conn;
  size_t n, queued = 0;
  int failed = 0;
  if (!r->sub || !flosse_conn_is_open(c)) return;
  r->full = 0;
  do {
    if (flosse_conn_full(c)) {
      r->full = 1;
      break;
    }
    n = flosse_sub_take(r->sub, ms, BATCH);
    for (size_t i = 0; i < n; i++) {
      if (!failed) {
        failed = flosse_msg_append(&c->out, ms[i], r->chunked) != FLOSSE_OK;
        if (!failed) c->events++;
      }
      flosse_msg_unref(ms[i]);
    }
    queued += n;
  } while (n == BATCH && !failed);
  if (failed) {
    flosse_conn_close(c, "out of memory");
    return;
  }
  if (!queued) return;
  FLOSSE_METRIC_ADD(c->ctx->loop->metrics, events_sent, queued);
  flosse_conn_wrote(c);
  /* Written now, not in the flush pass after every other subscriber has
   * taken its messages: a fan-out's first writes leave sooner. */
  if (!ev_is_active(&c->wio)) flosse_conn_flush(c);
}

void flosse_wait_relay_cancel(struct flosse_relay *r) {
  if (!r->sub) return;
  flosse_job_cancel(&r->job);
  flosse_sub_close(r->sub);
  free(r->sub);
  r->sub = NULL;
  flosse_inbox_forget(&r->conn->ctx->loop->inbox, &r->owner);
}
