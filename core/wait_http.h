/* The HTTP wait: a task sends one request (http_client.c) and is suspended
 * until the response came or the request failed; then a push function
 * turns the outcome into the Lua values the call returns. Cancelling the
 * wait (the task ended: its stream went away, it was cancelled, the worker
 * stops or reloads) aborts the request and frees it. */
#ifndef FLOSSE_WAIT_HTTP_H
#define FLOSSE_WAIT_HTTP_H

#include "http_client.h"
#include "task.h"

extern const struct flosse_wait flosse_wait_http;

/* Pushes onto L the values the waiting call returns, and returns how many.
 * res: the response (borrowed: freed once push returns), or NULL and err
 * saying why there is none (http_client.h's texts). push runs under a
 * protected call when the task resumes (it may raise; the call then
 * returns nil and the message). L is not the task's thread: the values
 * are moved there. */
typedef int (*flosse_wait_http_push)(lua_State *L, const struct flosse_http_result *res, const char *err);

/* Starts the request o (copied before this returns) on the task's loop and
 * yields T (returns lua_yield's value); once it ended, push runs and the
 * task resumes, at the end of that loop turn, with its values as the call's
 * results. When it cannot be started, push runs at once on T with (NULL,
 * err) and this returns its count without yielding. T must be t's thread
 * and yieldable. */
int flosse_wait_http_arm(lua_State *T, struct flosse_task *t, const struct flosse_http_opts *o,
                         flosse_wait_http_push push);

#endif
