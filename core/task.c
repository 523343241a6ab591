#include "task.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "lalloc.h"
#include "log.h"

#if LUA_VERSION_RELEASE_NUM >= 50406
#define flosse_closethread(T, from) lua_closethread((T), (from))
#else
#define flosse_closethread(T, from) ((void)(from), lua_resetthread(T))
#endif

const char flosse_task_wait_key = 'w';

#define REFUSAL_MT "flosse.Refusal"
struct refusal {
  int status;
  int exact; /* the body is text as it is */
  char text[240];
};

static void resume_job(struct flosse_job *j);

/* A task's thread carries the task in its extra space (LUA_EXTRASPACE, a
 * pointer's worth). Every other thread holds NULL there: a new thread
 * copies the main thread's, which flosse_task_init_state clears, so the
 * main thread and any coroutine a view makes map to no task. */
static void set_task_of(lua_State *T, struct flosse_task *t) { memcpy(lua_getextraspace(T), &t, sizeof t); }

struct flosse_task *flosse_task_of(lua_State *T) {
  struct flosse_task *t;
  memcpy(&t, lua_getextraspace(T), sizeof t);
  return t && t->T == T ? t : NULL;
}

void flosse_task_init_state(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  set_task_of(lua_tothread(L, -1), NULL);
  lua_pop(L, 1);
}

void flosse_tasks_init(struct flosse_tasks *ts, struct flosse_loop *loop,
                       const struct flosse_config *cfg) {
  memset(ts, 0, sizeof *ts);
  ts->loop = loop;
  ts->cfg = cfg;
}

void flosse_tasks_free(struct flosse_tasks *ts, lua_State *L) {
  while (ts->nidle_threads) luaL_unref(L, LUA_REGISTRYINDEX, ts->idle_threads[--ts->nidle_threads]);
}

int flosse_task_pcall_log(lua_State *L, int nargs, int nresults, const char *what) {
  if (lua_pcall(L, nargs, nresults, 0) == LUA_OK) return FLOSSE_OK;
  const char *m = lua_tostring(L, -1);
  flosse_log(FLOSSE_LOG_ERROR, "%s: %s", what, m ? m : "(error object is not a string)");
  lua_pop(L, 1);
  return FLOSSE_ERR;
}

void flosse_task_run_close_handler(lua_State *L, int *fn_ref, int *arg_ref, const char *what) {
  if (*fn_ref == LUA_NOREF) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, *fn_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, *fn_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, *arg_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, *arg_ref);
  *fn_ref = *arg_ref = LUA_NOREF;
  char msg[300];
  snprintf(msg, sizeof msg, "on_close handler of %s failed", what ? what : "a task");
  flosse_task_pcall_log(L, 1, 0, msg);
}

void flosse_task_take_close_handler(struct flosse_task *t, int *fn_ref, int *arg_ref) {
  *fn_ref = t->onclose_ref;
  *arg_ref = t->onclose_arg_ref;
  t->onclose_ref = t->onclose_arg_ref = LUA_NOREF;
}

static void notify(struct flosse_sub_owner *o, int drop);

int flosse_task_start(struct flosse_task *t, struct flosse_tasks *ts,
                      const struct flosse_task_callbacks *cb, void *owner, lua_State *L, int nargs) {
  lua_State *T;
  int ref;
  if (ts->nidle_threads) {
    ref = ts->idle_threads[--ts->nidle_threads];
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    T = lua_tothread(L, -1);
    lua_pop(L, 1);
  } else {
    if (!lua_checkstack(L, 2)) {
      lua_pop(L, nargs + 1);
      return FLOSSE_ERR;
    }
    T = lua_newthread(L);
    ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  memset(t, 0, sizeof *t);
  t->ctx = ts;
  t->T = T;
  t->thread_ref = ref;
  t->cb = cb;
  t->owner = owner;
  t->onclose_ref = t->onclose_arg_ref = LUA_NOREF;
  t->subs_owner.notify = notify;
  flosse_list_init(&t->subs);
  flosse_job_init(&t->run, resume_job);
  ev_init(&t->timer, NULL);
  set_task_of(T, t);
  lua_xmove(L, T, nargs + 1);
  return FLOSSE_OK;
}

void flosse_task_cancel_wait(struct flosse_task *t) {
  const struct flosse_wait *w = t->wait;
  t->wait = NULL;
  if (w && w->cancel) w->cancel(t);
}

void flosse_task_wake(struct flosse_task *t) {
  if (!t->T) return;
  t->wait = NULL;
  flosse_loop_run_soon(t->ctx->loop, &t->run);
}

int flosse_task_yield_wait(lua_State *T, struct flosse_task *t, const struct flosse_wait *w) {
  t->wait = w;
  lua_pushlightuserdata(T, (void *)&flosse_task_wait_key);
  return lua_yield(T, 1);
}

/* Subscriptions notify their task from the publisher's thread, under the
 * channels' lock: on the task's own loop it is woken at once, otherwise the
 * wake goes through that loop's inbox. */
static void deliver(void *target, int drop) {
  struct flosse_task *t = flosse_container_of(target, struct flosse_task, subs_owner);
  if (t->T) t->cb->notified(t, drop);
}

static void notify(struct flosse_sub_owner *o, int drop) {
  struct flosse_task *t = flosse_container_of(o, struct flosse_task, subs_owner);
  if (t->ctx->loop == flosse_loop_current) deliver(o, drop);
  else flosse_inbox_post(&t->ctx->loop->inbox, deliver, o, drop);
}

void flosse_task_release(struct flosse_task *t) {
  if (!t->ctx) return;
  lua_State *L = t->ctx->loop->L;
  flosse_task_cancel_wait(t);
  flosse_job_cancel(&t->run);
  while (!flosse_list_empty(&t->subs))
    flosse_sub_close(flosse_container_of(t->subs.next, struct flosse_sub, owner_link));
  /* Posts already queued for it must not find it once it is gone. */
  flosse_inbox_forget(&t->ctx->loop->inbox, &t->subs_owner);
  if (t->T) {
    lua_State *T = t->T;
    int was = lua_status(T);
    t->T = NULL;
    set_task_of(T, NULL);
    /* Runs the task's pending to-be-closed variables. */
    int st = flosse_closethread(T, L);
    if (st != LUA_OK && (was == LUA_OK || was == LUA_YIELD)) {
      const char *m = lua_tostring(T, -1);
      flosse_log(FLOSSE_LOG_ERROR, "error while closing %s: %s", t->name ? t->name : "a task",
                 m ? m : "(not a string)");
    }
    struct flosse_tasks *ts = t->ctx;
    /* A clean, reset thread serves the next task: no new lua_State, stack
     * and registry slot each time. Never the one running right now. */
    if (st == LUA_OK && T != ts->resuming && lua_status(T) == LUA_OK &&
        ts->nidle_threads < (int)(sizeof ts->idle_threads / sizeof *ts->idle_threads)) {
      lua_settop(T, 0);
      lua_sethook(T, NULL, 0, 0);
      ts->idle_threads[ts->nidle_threads++] = t->thread_ref;
    } else {
      luaL_unref(L, LUA_REGISTRYINDEX, t->thread_ref);
    }
    t->thread_ref = LUA_NOREF;
  }
  flosse_task_run_close_handler(L, &t->onclose_ref, &t->onclose_arg_ref, t->name);
}

/* ---- refusals -------------------------------------------------------------- */

static int refuse(lua_State *L, int status, const char *text, int exact) {
  struct refusal *r = lua_newuserdatauv(L, sizeof *r, 0);
  r->status = status;
  r->exact = exact;
  snprintf(r->text, sizeof r->text, "%s", text);
  luaL_setmetatable(L, REFUSAL_MT);
  return lua_error(L);
}

int flosse_task_refuse(lua_State *L, int status, const char *text) { return refuse(L, status, text, 0); }

int flosse_task_refuse_exact(lua_State *L, int status, const char *text) { return refuse(L, status, text, 1); }

static int refusal_tostring(lua_State *L) {
  struct refusal *r = luaL_checkudata(L, 1, REFUSAL_MT);
  lua_pushfstring(L, "refused (%d): %s", r->status, r->text);
  return 1;
}

void flosse_task_register_refusal(lua_State *L) {
  if (luaL_newmetatable(L, REFUSAL_MT)) {
    lua_pushcfunction(L, refusal_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

/* ---- running --------------------------------------------------------------- */

/* Stops a task that ran its instruction budget without yielding. The hook
 * yields rather than raising, so that a pcall in the task cannot catch it. */
static void budget_hook(lua_State *T, lua_Debug *ar) {
  (void)ar;
  struct flosse_task *t = flosse_task_of(T);
  if (t && lua_isyieldable(T)) {
    t->over_budget = 1;
    lua_yield(T, 0);
    return;
  }
  /* A coroutine the task made itself, or a spot that cannot yield. */
  luaL_error(T, "instruction budget exceeded (a loop that never yields?)");
}

/* describe_error(err, T) -> message, traceback (a __tostring may raise,
 * so this runs under lua_pcall). */
static int describe_error(lua_State *L) {
  lua_State *T = lua_touserdata(L, 2);
  if (lua_type(L, 1) == LUA_TSTRING) {
    lua_pushvalue(L, 1);
  } else {
    const char *tname = luaL_typename(L, 1);
    lua_pushfstring(L, "(error object is a %s) %s", tname, luaL_tolstring(L, 1, NULL));
    lua_remove(L, -2);
  }
  luaL_traceback(L, T, lua_tostring(L, -1), 0);
  return 2;
}

/* The task raised. Nothing in Lua catches it: a pcall frame there would
 * hold a C call's stack reserve in every suspended stream. The dead thread
 * keeps its frames, so the traceback is taken here. */
static void failed(struct flosse_task *t, lua_State *T) {
  lua_State *L = t->ctx->loop->L;
  struct flosse_task_error e = {0};
  struct refusal *r = luaL_testudata(T, -1, REFUSAL_MT);
  if (r) {
    char text[sizeof r->text];
    snprintf(text, sizeof text, "%s", r->text);
    e.refusal = r->status;
    e.refusal_exact = r->exact;
    e.refusal_text = e.log_text = e.client_text = text;
    t->cb->failed(t, &e);
    return;
  }
  int top = lua_gettop(L);
  char msg[512];
  snprintf(msg, sizeof msg, "a view raised an error that cannot be described");
  e.log_text = e.client_text = msg;
  if (lua_checkstack(L, 8)) {
    lua_pushcfunction(L, describe_error);
    lua_xmove(T, L, 1);
    lua_pushlightuserdata(L, T);
    if (lua_pcall(L, 2, 2, 0) == LUA_OK) {
      snprintf(msg, sizeof msg, "%s", lua_tostring(L, -2));
      e.log_text = lua_tostring(L, -1);
    }
  }
  t->cb->failed(t, &e);
  lua_settop(L, top);
}

static void over_budget(struct flosse_task *t) {
  char msg[160];
  t->over_budget = 0;
  snprintf(msg, sizeof msg,
           "ran %ld instructions without yielding (instruction budget; a loop that never yields?)",
           t->ctx->cfg->instruction_budget);
  struct flosse_task_error e = {msg, msg, 0, NULL, 0};
  t->cb->failed(t, &e);
}

int flosse_task_move_results(lua_State *L, lua_State *T, lua_CFunction push, void *ud) {
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 4)) return 0;
  lua_pushcfunction(L, push);
  lua_pushlightuserdata(L, ud);
  if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2); /* nil, message */
  }
  int nres = lua_gettop(L) - top;
  if (!lua_checkstack(T, nres + 1)) {
    lua_settop(L, top);
    return 0;
  }
  lua_xmove(L, T, nres);
  return nres;
}

void flosse_task_resume(struct flosse_task *t, int nargs) {
  struct flosse_tasks *ts = t->ctx;
  lua_State *T = t->T, *L = ts->loop->L;
  int budget = ts->cfg->resume_budget;
  while (T && t->T == T) {
    int nres = 0;
    t->wait = NULL;
    if (ts->cfg->instruction_budget > 0)
      lua_sethook(T, budget_hook, LUA_MASKCOUNT, (int)ts->cfg->instruction_budget);
    flosse_lalloc_enforce(ts->loop->lalloc, 1);
    lua_State *outer = ts->resuming; /* a task may run another's on_close */
    ts->resuming = T;
    int st = lua_resume(T, L, nargs, &nres);
    ts->resuming = outer;
    flosse_lalloc_enforce(ts->loop->lalloc, 0);
    nargs = 0;
    if (t->cb->resumed && t->cb->resumed(t, st) != FLOSSE_OK) return;
    if (t->T != T) return;
    if (st == LUA_YIELD && t->over_budget) {
      lua_pop(T, nres);
      over_budget(t);
      return;
    }
    if (st == LUA_YIELD) {
      if (nres == 1 && lua_touserdata(T, -1) == (void *)&flosse_task_wait_key) {
        lua_pop(T, 1); /* the waiting function armed its own wait */
        return;
      }
      if (!t->cb->event(t, nres)) return;
      if (t->T != T) return;
      if (--budget <= 0) {
        flosse_loop_run_soon(ts->loop, &t->run); /* let everyone else have a turn */
        return;
      }
      continue;
    }
    if (st == LUA_OK) {
      t->cb->returned(t, nres);
      return;
    }
    failed(t, T);
    return;
  }
}

static void resume_job(struct flosse_job *j) {
  struct flosse_task *t = flosse_container_of(j, struct flosse_task, run);
  if (t->T && !t->wait) flosse_task_resume(t, 0);
}

int flosse_task_is_refusal(lua_State *T, int idx) { return luaL_testudata(T, idx, REFUSAL_MT) != NULL; }
