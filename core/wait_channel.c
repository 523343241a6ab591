#include "wait_channel.h"

/* Nothing to undo: a notification that comes after the wait ended finds
 * the task not waiting on a channel, and is ignored. */
const struct flosse_wait flosse_wait_channel = {"channel", NULL};

int flosse_wait_channel_arm(lua_State *T, struct flosse_task *t, struct flosse_sub *s) {
  /* Marks the subscription as waiting atomically with publishers. */
  if (!flosse_sub_wait(s)) return 0;
  return flosse_task_yield_wait(T, t, &flosse_wait_channel);
}

void flosse_wait_channel_fire(struct flosse_task *t) {
  if (t->T && t->wait == &flosse_wait_channel) flosse_task_wake(t);
}
