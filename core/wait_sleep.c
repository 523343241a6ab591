#include "wait_sleep.h"

static void cancel(struct flosse_task *t) { ev_timer_stop(t->ctx->loop->ev, &t->timer); }

const struct flosse_wait flosse_wait_sleep = {"sleep", cancel, 0};

static void fire(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_task *t = flosse_container_of(w, struct flosse_task, timer);
  if (t->wait != &flosse_wait_sleep || !t->T) return;
  t->wait = NULL;
  flosse_task_resume(t, 0);
}

int flosse_wait_sleep_arm(lua_State *T, struct flosse_task *t, double seconds) {
  ev_timer_init(&t->timer, fire, seconds, 0.);
  ev_timer_start(t->ctx->loop->ev, &t->timer);
  return flosse_task_yield_wait(T, t, &flosse_wait_sleep);
}
