/* The sleep wait: flosse.sleep(seconds) suspends the calling task on its
 * own timer; the timer resumes it. */
#ifndef FLOSSE_WAIT_SLEEP_H
#define FLOSSE_WAIT_SLEEP_H

#include "task.h"

extern const struct flosse_wait flosse_wait_sleep;

/* Arms the task's timer and yields T (returns lua_yield's value). */
int flosse_wait_sleep_arm(lua_State *T, struct flosse_task *t, double seconds);

#endif
