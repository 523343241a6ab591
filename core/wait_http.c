#include "wait_http.h"

#include <stdlib.h>

/* One task's request, and the job that resumes the task once it ended. */
struct hwait {
  struct flosse_task *t;
  struct flosse_http_req *req; /* owned */
  const char *err;             /* how it ended (static text); NULL: a response */
  flosse_wait_http_push push;
  struct flosse_job job;
};

static void hwait_free(struct hwait *w) {
  flosse_job_cancel(&w->job);
  flosse_http_req_free(w->req);
  free(w);
}

static void cancel(struct flosse_task *t) {
  struct hwait *w = t->wait_data;
  t->wait_data = NULL;
  if (w) hwait_free(w);
}

const struct flosse_wait flosse_wait_http = {"http", cancel, 0};

static int push_trampoline(lua_State *L) {
  struct hwait *w = lua_touserdata(L, 1);
  lua_settop(L, 0);
  return w->push(L, w->err ? NULL : flosse_http_req_result(w->req), w->err);
}

/* The request ended: push the values on the main thread (under pcall: a
 * push that runs out of memory must not unwind past the loop), move them
 * to the task, free the request and resume the task. */
static void resume_job(struct flosse_job *j) {
  struct hwait *w = flosse_container_of(j, struct hwait, job);
  struct flosse_task *t = w->t;
  if (!t->T || t->wait != &flosse_wait_http || t->wait_data != w) return;
  lua_State *L = t->ctx->loop->L, *T = t->T;
  t->wait_data = NULL;
  int nres = flosse_task_move_results(L, T, push_trampoline, w);
  hwait_free(w);
  flosse_task_resume(t, nres);
}

static void on_done(void *arg, struct flosse_http_req *req, const char *err) {
  (void)req; /* w->req */
  struct hwait *w = arg;
  w->err = err;
  flosse_loop_run_soon(w->t->ctx->loop, &w->job);
}

int flosse_wait_http_arm(lua_State *T, struct flosse_task *t, const struct flosse_http_opts *o,
                         flosse_wait_http_push push) {
  const char *err = "out of memory";
  struct hwait *w = calloc(1, sizeof *w);
  if (w) {
    w->t = t;
    w->push = push;
    flosse_job_init(&w->job, resume_job);
    if ((w->req = flosse_http_start(t->ctx->loop, o, on_done, w, &err))) {
      t->wait_data = w;
      return flosse_task_yield_wait(T, t, &flosse_wait_http);
    }
    free(w);
  }
  /* Nothing was sent: answer now (a push that raises raises here). */
  int top = lua_gettop(T);
  push(T, NULL, err);
  return lua_gettop(T) - top;
}
