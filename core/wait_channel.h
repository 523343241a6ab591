/* The channel wait: sub:wait() suspends the task until a message is queued
 * on the subscription (the task's subscriptions notify it). */
#ifndef FLOSSE_WAIT_CHANNEL_H
#define FLOSSE_WAIT_CHANNEL_H

#include "task.h"

extern const struct flosse_wait flosse_wait_channel;

/* Yields T until s has a message; returns 0 (no yield: nothing to return)
 * when one came in meanwhile. */
int flosse_wait_channel_arm(lua_State *T, struct flosse_task *t, struct flosse_sub *s);
/* The sync wait: sub:ready() suspends the task (and holds a stream's head)
 * until every channel of s is in place on the back end, for at most
 * seconds; then what the subscription missed is queued (channel.h). */
extern const struct flosse_wait flosse_wait_channel_sync;
int flosse_wait_channel_sync_arm(lua_State *T, struct flosse_task *t, struct flosse_sub *s, double seconds);

/* A subscription of t has a message, or is in place. */
void flosse_wait_channel_fire(struct flosse_task *t);

#endif
