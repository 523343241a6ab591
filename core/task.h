/* Tasks: a Lua thread with its wait, its subscriptions, its close handler,
 * its instruction budget and its errors. A request's task is owned by the
 * request's stream; a background task by nothing but the worker. The owner
 * hears of the task through the callbacks it started it with. */
#ifndef FLOSSE_TASK_H
#define FLOSSE_TASK_H

#include <ev.h>
#include <lua.h>

#include "channel.h"
#include "config.h"
#include "list.h"
#include "loop.h"

struct flosse_task;

/* A wait primitive (one file each: wait_sleep.c, wait_drain.c,
 * wait_channel.c, wait_relay.c, wait_redis.c, wait_http.c). Its arm function suspends the task and
 * sets t->wait; its fire resumes the task; cancel undoes whatever arm did,
 * so that flosse_task_cancel_wait can undo any wait without knowing its kind
 * (lua-nginx-module's coctx->cleanup). */
struct flosse_wait {
  const char *name;
  void (*cancel)(struct flosse_task *t);
  /* A stream's head waits too: the client is answered only once the wait
   * is over (a subscription is in place before the client hears 200). */
  int holds_head;
};

/* Why a task stopped with an error. */
struct flosse_task_error {
  const char *log_text;      /* for the log: with the traceback */
  const char *client_text;   /* the message alone, for a debug-mode client */
  int refusal;               /* > 0: core.refuse(status, text) raised it */
  const char *refusal_text;
  int refusal_exact;         /* the answer's body is refusal_text as it is (no "\n" added) */
};

/* What a task tells its owner. */
struct flosse_task_callbacks {
  /* The task yielded nres values (an event), on top of its stack. Returns
   * 1 to resume it again at once, 0 when it must not run now (the owner
   * armed a wait, queued it for later, or let it go). The owner pops them. */
  int (*event)(struct flosse_task *t, int nres);
  /* The task's function returned nres values (on its stack). */
  void (*returned)(struct flosse_task *t, int nres);
  /* The task raised, or ran its instruction budget out (e.log_text says so). */
  void (*failed)(struct flosse_task *t, const struct flosse_task_error *e);
  /* Called before the result of every resume is looked at (a stream writes
   * its head here); may be NULL. Returns FLOSSE_ERR to stop there. */
  int (*resumed)(struct flosse_task *t, int status);
  /* One of its subscriptions has a message (drop = 0; the channel wait
   * fires), or fell too far behind (drop = 1). */
  void (*notified)(struct flosse_task *t, int drop);
};

/* A worker's tasks: its Lua state, its configuration, its reusable threads. */
struct flosse_tasks {
  struct flosse_loop *loop;
  const struct flosse_config *cfg;
  int idle_threads[64];      /* registry refs of finished threads, reset for reuse */
  int nidle_threads;
  lua_State *resuming;       /* the thread inside lua_resume, if any */
};

struct flosse_task {
  struct flosse_tasks *ctx;
  lua_State *T;              /* NULL once released */
  int thread_ref;
  const struct flosse_task_callbacks *cb;
  void *owner;
  const char *name;          /* for log lines: the request line or the task's name */
  const struct flosse_wait *wait; /* the armed wait; NULL: runnable */
  void *wait_data;           /* the armed wait's own state, for its cancel (a Redis call's) */
  ev_timer timer;            /* the sleep's (a timed wait's) */
  struct flosse_job run;     /* resumes it at the end of the turn */
  struct flosse_sub_owner subs_owner; /* its subscriptions notify it */
  struct flosse_list subs;   /* its subscriptions (struct flosse_sub.owner_link) */
  int onclose_ref, onclose_arg_ref;
  int over_budget;           /* the instruction hook stopped it */
};

void flosse_tasks_init(struct flosse_tasks *ts, struct flosse_loop *loop,
                       const struct flosse_config *cfg);
/* Drops the reusable threads (the Lua state is about to close). */
void flosse_tasks_free(struct flosse_tasks *ts, lua_State *L);

/* Prepares t to run fn (the value on top of L, popped) with nargs values
 * pushed after it on L (moved to the thread). Does not run it: call
 * flosse_task_resume (now) or flosse_task_wake (at the end of the turn).
 * Returns FLOSSE_OK, or FLOSSE_ERR with the values popped (no memory). */
int flosse_task_start(struct flosse_task *t, struct flosse_tasks *ts,
                      const struct flosse_task_callbacks *cb, void *owner, lua_State *L, int nargs);

/* A wait's results: runs push(L) with ud as its one argument on the main
 * thread L, under pcall (a push that runs out of memory or raises must not
 * unwind past the loop or into a library's callback; its error becomes
 * nil, message), and moves what it pushed to the task's thread T. Returns
 * how many values T got (0 when there was no room). */
int flosse_task_move_results(lua_State *L, lua_State *T, lua_CFunction push, void *ud);

/* Runs the task until it waits, ends or has had its turn (nargs values
 * already pushed on its thread). */
void flosse_task_resume(struct flosse_task *t, int nargs);

/* Makes it runnable: its wait is over (called by a wait's fire). */
void flosse_task_wake(struct flosse_task *t);

/* Undoes the armed wait, whatever its kind. */
void flosse_task_cancel_wait(struct flosse_task *t);

/* Ends the task: cancels its wait, closes its subscriptions, closes its
 * thread (its to-be-closed variables run), then runs its close handler.
 * Safe twice; the struct itself stays the owner's. */
void flosse_task_release(struct flosse_task *t);

/* The task whose thread T is (NULL for any other thread: the main one, a
 * coroutine a view made). */
struct flosse_task *flosse_task_of(lua_State *T);

/* Clears the main thread's extra space, which every new thread copies. */
void flosse_task_init_state(lua_State *L);

/* Moves the close handler (function and argument refs) out of t, for an
 * owner that outlives the task (a relayed stream). */
void flosse_task_take_close_handler(struct flosse_task *t, int *fn_ref, int *arg_ref);

/* Runs a close handler (fn_ref(arg_ref)) under pcall, logging what it
 * raises, and drops both refs. */
void flosse_task_run_close_handler(lua_State *L, int *fn_ref, int *arg_ref, const char *what);

/* The one protected call that logs: calls the function below nargs values
 * on L; on error logs "<what>: <message>" and returns FLOSSE_ERR. */
int flosse_task_pcall_log(lua_State *L, int nargs, int nresults, const char *what);

/* Only the core's own waiting functions yield this address (cqueues'
 * sentinel), so no value a view yields can be mistaken for a wait. */
extern const char flosse_task_wait_key;

/* Finishes a wait primitive's arm: the value to yield. Returns lua_yield's. */
int flosse_task_yield_wait(lua_State *T, struct flosse_task *t, const struct flosse_wait *w);



/* ---- refusals -------------------------------------------------------------- */

/* Raises a refusal: an error that answers a request with status and text
 * (400 to 599) when it ends a request whose answer has not started, and
 * becomes an error event with that text on a stream already going. Logged
 * as one warning, never with a traceback. Does not return. */
int flosse_task_refuse(lua_State *L, int status, const char *text);
/* The same, but an answer's body is text exactly, without the newline
 * flosse_task_refuse adds: so that a refusal can be byte for byte the
 * permission classes' 403 (a grant check must not tell itself apart). */
int flosse_task_refuse_exact(lua_State *L, int status, const char *text);
/* 1 if L[idx] is a refusal. */
int flosse_task_is_refusal(lua_State *T, int idx);
/* Registers the refusal's metatable in L. */
void flosse_task_register_refusal(lua_State *L);

#endif
