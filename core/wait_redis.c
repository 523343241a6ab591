#include "wait_redis.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

/* One task's Redis call: its n requests, the replies kept until the last
 * one came (hiredis frees each once its callback returns), and the job that
 * resumes the task with what push left on its thread. */
struct rwait {
  struct flosse_task *t;
  int n, got;
  int done;                       /* push ran (or the call failed): no more replies wanted */
  int nres;                       /* values push left on the task's thread */
  struct flosse_redis_req **reqs; /* NULL once answered */
  struct redisReply **replies;    /* copies, when n > 1 */
  flosse_wait_redis_push push;
  void *arg;
  void (*free_arg)(void *);
  struct flosse_job job;
};

static void free_replies(struct rwait *w) {
  if (w->n > 1)
    for (int i = 0; i < w->n; i++)
      if (w->replies[i]) freeReplyObject(w->replies[i]);
}

static void release_arg(struct rwait *w) {
  void (*f)(void *) = w->free_arg;
  w->free_arg = NULL;
  if (f) f(w->arg);
}

static void cancel(struct flosse_task *t) {
  struct rwait *w = t->wait_data;
  t->wait_data = NULL;
  if (!w) return;
  for (int i = 0; i < w->n; i++) flosse_redis_req_cancel(w->reqs[i]);
  flosse_job_cancel(&w->job);
  release_arg(w);
  free_replies(w);
  free(w);
}

const struct flosse_wait flosse_wait_redis = {"redis", cancel, 0};

static void resume_job(struct flosse_job *j) {
  struct rwait *w = flosse_container_of(j, struct rwait, job);
  struct flosse_task *t = w->t;
  int nres = w->nres;
  if (!t->T || t->wait != &flosse_wait_redis || t->wait_data != w) return;
  t->wait_data = NULL;
  free_replies(w);
  free(w);
  flosse_task_resume(t, nres);
}

/* A deep copy of r, freed with freeReplyObject (hiredis frees with free()). */
static redisReply *dup_reply(const redisReply *r) {
  redisReply *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->type = r->type;
  c->integer = r->integer;
  if (r->str) {
    c->str = malloc(r->len + 1);
    if (!c->str) goto err;
    memcpy(c->str, r->str, r->len);
    c->str[r->len] = '\0';
    c->len = r->len;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements) {
    c->element = calloc(r->elements, sizeof *c->element);
    if (!c->element) goto err;
    c->elements = r->elements;
    for (size_t i = 0; i < r->elements; i++)
      if (!(c->element[i] = dup_reply(r->element[i]))) goto err;
  }
  return c;
err:
  freeReplyObject(c);
  return NULL;
}

struct push_call {
  struct rwait *w;
  struct redisReply **replies;
  const char *err;
};

static int push_trampoline(lua_State *L) {
  struct push_call *pc = lua_touserdata(L, 1);
  lua_settop(L, 0);
  return pc->w->push(L, pc->w->n, pc->replies, pc->err, pc->w->arg);
}

/* Every reply came, or the call failed: push the values (on the main
 * thread, under pcall: a push that raises must not unwind into hiredis),
 * move them to the task and resume it at the end of the turn. */
static void finish(struct rwait *w, struct redisReply **replies, const char *err) {
  struct flosse_task *t = w->t;
  lua_State *L = t->ctx->loop->L, *T = t->T;
  w->done = 1;
  struct push_call pc = {w, replies, err};
  int nres = T ? flosse_task_move_results(L, T, push_trampoline, &pc) : 0;
  release_arg(w);
  w->nres = nres;
  flosse_loop_run_soon(t->ctx->loop, &w->job);
}

static void on_reply(void *arg, struct redisReply *reply, const char *err) {
  struct rwait *w = arg;
  if (w->done) return;
  if (!reply) {
    /* Whichever request failed (a timeout may fire out of order), none of
     * the others is wanted now. Cancelling the one being answered is
     * harmless: it is still allocated until this returns. */
    for (int i = w->got; i < w->n; i++) flosse_redis_req_cancel(w->reqs[i]);
    for (int i = w->got; i < w->n; i++) w->reqs[i] = NULL;
    finish(w, NULL, err ? err : "connection lost");
    return;
  }
  /* Replies come in the order sent. */
  int i = w->got++;
  w->reqs[i] = NULL;
  if (w->n == 1) {
    finish(w, &reply, NULL);
    return;
  }
  if (!(w->replies[i] = dup_reply(reply))) {
    for (int j = w->got; j < w->n; j++) flosse_redis_req_cancel(w->reqs[j]);
    for (int j = w->got; j < w->n; j++) w->reqs[j] = NULL;
    finish(w, NULL, "out of memory");
    return;
  }
  if (w->got == w->n) finish(w, w->replies, NULL);
}

int flosse_wait_redis_arm(lua_State *T, struct flosse_task *t, struct flosse_redis_pool *pool, int n,
                          const int *argcs, const char *const *const *argvs, const size_t *const *lenss,
                          double timeout, flosse_wait_redis_push push, void *arg, void (*free_arg)(void *)) {
  const char *err = "out of memory";
  /* One block: the wait, its request handles, its reply copies. */
  struct rwait *w = calloc(1, sizeof *w + (size_t)n * (sizeof *w->reqs + sizeof *w->replies));
  if (w) {
    w->t = t;
    w->n = n;
    w->reqs = (struct flosse_redis_req **)(w + 1);
    w->replies = (struct redisReply **)(w->reqs + n);
    w->push = push;
    w->arg = arg;
    w->free_arg = free_arg;
    flosse_job_init(&w->job, resume_job);
    if (flosse_redis_pool_pipeline(pool, n, argcs, argvs, lenss, timeout, on_reply, w, w->reqs, &err) ==
        FLOSSE_OK) {
      t->wait_data = w;
      return flosse_task_yield_wait(T, t, &flosse_wait_redis);
    }
    free(w);
  }
  /* Nothing was sent: answer now. A push that raises raises here. */
  int top = lua_gettop(T);
  int nres = 0;
  if (free_arg) {
    /* Protected, so that free_arg runs whatever push does. */
    struct rwait tmp = {0};
    tmp.n = n;
    tmp.push = push;
    tmp.arg = arg;
    struct push_call pc = {&tmp, NULL, err};
    lua_pushcfunction(T, push_trampoline);
    lua_pushlightuserdata(T, &pc);
    int st = lua_pcall(T, 1, LUA_MULTRET, 0);
    free_arg(arg);
    if (st != LUA_OK) return lua_error(T);
    return lua_gettop(T) - top;
  }
  nres = push(T, n, NULL, err, arg);
  return nres;
}
