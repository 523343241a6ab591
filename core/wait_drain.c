#include "wait_drain.h"

/* Nothing to undo: the connection tells the stream when it drains, and the
 * stream asks the task whether it still waits. */
const struct flosse_wait flosse_wait_drain = {"drain", NULL, 0};

void flosse_wait_drain_arm(struct flosse_task *t) { t->wait = &flosse_wait_drain; }

void flosse_wait_drain_fire(struct flosse_task *t) {
  if (t->T && t->wait == &flosse_wait_drain) flosse_task_wake(t);
}
