/* The Redis wait: a task sends n commands (pipelined on one connection of
 * a pool) and is suspended until every reply came, or the first failure;
 * then a push function turns the replies into the Lua values the call
 * returns. Cancelling the wait (the task ended) cancels the commands. */
#ifndef FLOSSE_WAIT_REDIS_H
#define FLOSSE_WAIT_REDIS_H

#include <stddef.h>

#include "redis.h"
#include "task.h"

extern const struct flosse_wait flosse_wait_redis;

/* Pushes onto L the values the waiting call returns, and returns how many.
 * replies: the n replies (borrowed: freed once push returns), or NULL and
 * err saying why there are none ("timeout", "connection lost",
 * "not connected (...)"; an error reply is a reply, not an err). push runs
 * under a protected call (it may raise; the call then returns nil and the
 * message). L is not the task's thread: the values are moved there. */
typedef int (*flosse_wait_redis_push)(lua_State *L, int n, struct redisReply **replies, const char *err,
                                      void *arg);

/* Sends the n commands (argcs[i] arguments argvs[i][j] of lenss[i][j]
 * bytes; copied before this returns) on one connection of pool with
 * timeout (seconds, 0: none) and yields T (returns lua_yield's value);
 * when they are answered, push(arg) runs on the loop and the task resumes
 * with its values as the call's results. When they cannot be sent (not
 * connected), push runs at once with (NULL, err) on T and this returns its
 * count without yielding. T must be t's thread and yieldable.
 * arg stays the caller's; free_arg (may be NULL) is called exactly once
 * with it after push ran, or when the wait is cancelled before (the task
 * ended: then push never runs), so that a caller may hand over a
 * malloc'd arg. */
int flosse_wait_redis_arm(lua_State *T, struct flosse_task *t, struct flosse_redis_pool *pool, int n,
                          const int *argcs, const char *const *const *argvs, const size_t *const *lenss,
                          double timeout, flosse_wait_redis_push push, void *arg, void (*free_arg)(void *));

#endif
