/* The drain wait: a stream whose output is over the high-water mark is not
 * resumed until its connection has sent it down to the low-water mark. */
#ifndef FLOSSE_WAIT_DRAIN_H
#define FLOSSE_WAIT_DRAIN_H

#include "task.h"

extern const struct flosse_wait flosse_wait_drain;

/* The task waits (it has just yielded an event; nothing to yield). */
void flosse_wait_drain_arm(struct flosse_task *t);
/* The output drained: the task runs again if it was waiting for that. */
void flosse_wait_drain_fire(struct flosse_task *t);

#endif
