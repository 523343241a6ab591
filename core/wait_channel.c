#include "wait_channel.h"

#include "loop.h"

/* Nothing to undo: a notification that comes after the wait ended finds
 * the task not waiting on a channel, and is ignored. */
const struct flosse_wait flosse_wait_channel = {"channel", NULL, 0};

int flosse_wait_channel_arm(lua_State *T, struct flosse_task *t, struct flosse_sub *s) {
  /* Marks the subscription as waiting atomically with publishers. */
  if (!flosse_sub_wait(s)) return 0;
  return flosse_task_yield_wait(T, t, &flosse_wait_channel);
}

static void cancel_sync(struct flosse_task *t) { ev_timer_stop(t->ctx->loop->ev, &t->timer); }

const struct flosse_wait flosse_wait_channel_sync = {"channel sync", cancel_sync, 1};

/* Out of time (the back end is away): the stream goes on, live, and its
 * subscription resumes whenever the back end is back. */
static void sync_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_task *t = flosse_container_of(w, struct flosse_task, timer);
  if (t->wait != &flosse_wait_channel_sync || !t->T) return;
  t->wait = NULL;
  flosse_task_resume(t, 0);
}

int flosse_wait_channel_sync_arm(lua_State *T, struct flosse_task *t, struct flosse_sub *s, double seconds) {
  if (flosse_sub_synced(s)) return 0;
  ev_timer_init(&t->timer, sync_timeout, seconds, 0.);
  ev_timer_start(t->ctx->loop->ev, &t->timer);
  return flosse_task_yield_wait(T, t, &flosse_wait_channel_sync);
}

void flosse_wait_channel_fire(struct flosse_task *t) {
  if (!t->T) return;
  if (t->wait == &flosse_wait_channel_sync) {
    flosse_task_cancel_wait(t);
    flosse_task_wake(t);
  } else if (t->wait == &flosse_wait_channel) {
    flosse_task_wake(t);
  }
}
