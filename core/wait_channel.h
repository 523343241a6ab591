/* The channel wait: sub:wait() suspends the task until a message is queued
 * on the subscription (the task's subscriptions notify it). */
#ifndef FLOSSE_WAIT_CHANNEL_H
#define FLOSSE_WAIT_CHANNEL_H

#include "task.h"

extern const struct flosse_wait flosse_wait_channel;

/* Yields T until s has a message; returns 0 (no yield: nothing to return)
 * when one came in meanwhile. */
int flosse_wait_channel_arm(lua_State *T, struct flosse_task *t, struct flosse_sub *s);
/* A subscription of t has a message. */
void flosse_wait_channel_fire(struct flosse_task *t);

#endif
