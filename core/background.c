#include "background.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wait_channel.h"

static const struct flosse_task_callbacks task_callbacks;

static void free_job(struct flosse_job *j) {
  free(flosse_container_of(j, struct flosse_bgtask, free));
}

/* Over for good: unlinked, its function dropped, freed at the end of the
 * turn (its run may be on the C stack). */
static void finish(struct flosse_bgtask *b) {
  if (b->done) return;
  struct flosse_background *bg = b->bg;
  lua_State *L = bg->tasks->loop->L;
  b->done = 1;
  ev_timer_stop(bg->tasks->loop->ev, &b->tick);
  flosse_task_release(&b->task);
  luaL_unref(L, LUA_REGISTRYINDEX, b->fn_ref);
  b->fn_ref = LUA_NOREF;
  flosse_list_unlink(&b->link);
  bg->count--;
  if (b->ended) b->ended(b, b->ended_data);
  flosse_loop_free_later(bg->tasks->loop, &b->free, free_job);
}

/* The end of one run. */
static void run_over(struct flosse_bgtask *b) {
  flosse_task_release(&b->task);
  if (b->cancelled || b->interval <= 0) finish(b);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_bgtask *b = flosse_container_of(w, struct flosse_bgtask, tick);
  if (b->done || b->cancelled) return;
  if (b->task.T) { /* the last run is still going: this tick is skipped */
    b->skipped++;
    flosse_log(FLOSSE_LOG_DEBUG, "%s: still running, a tick skipped", b->name);
    return;
  }
  lua_State *L = b->bg->tasks->loop->L;
  if (!lua_checkstack(L, 4)) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->fn_ref);
  if (flosse_task_start(&b->task, b->bg->tasks, &task_callbacks, b, L, 0) != FLOSSE_OK) {
    flosse_log(FLOSSE_LOG_ERROR, "%s: cannot start a run: out of memory", b->name);
    if (b->interval <= 0) finish(b);
    return;
  }
  b->task.name = b->name;
  b->runs++;
  flosse_task_resume(&b->task, 0);
}

struct flosse_bgtask *flosse_background_start(struct flosse_background *bg, lua_State *L, double delay,
                                              double interval, int generation, const char *name) {
  struct flosse_bgtask *b = calloc(1, sizeof *b);
  if (!b) {
    lua_pop(L, 1);
    return NULL;
  }
  b->bg = bg;
  b->interval = interval;
  b->generation = generation;
  b->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  snprintf(b->name, sizeof b->name, "task %s", name && name[0] ? name : "?");
  flosse_job_init(&b->free, free_job);
  flosse_list_push(&bg->all, &b->link);
  bg->count++;
  /* libev's repeating timer keeps a fixed rate from its first expiry. */
  ev_timer_init(&b->tick, on_tick, delay, interval > 0 ? interval : 0.);
  ev_timer_start(bg->tasks->loop->ev, &b->tick);
  return b;
}

void flosse_background_cancel(struct flosse_bgtask *b) {
  if (b->done || b->cancelled) return;
  b->cancelled = 1;
  ev_timer_stop(b->bg->tasks->loop->ev, &b->tick);
  /* Its own code is running (it cancelled itself): it ends when it next
   * stops, in on_resumed. */
  if (b->task.T && b->task.T == b->bg->tasks->resuming) return;
  finish(b);
}

int flosse_background_cancel_generation(struct flosse_background *bg, int generation) {
  int n = 0;
  struct flosse_list *it = bg->all.next;
  while (it != &bg->all) {
    struct flosse_bgtask *b = flosse_container_of(it, struct flosse_bgtask, link);
    it = it->next;
    if (generation >= 0 && b->generation != generation) continue;
    if (b->cancelled) continue;
    /* finish unlinks b (and only b): it was stepped past already. */
    flosse_background_cancel(b);
    n++;
  }
  return n;
}

int flosse_background_generation_of(lua_State *T) {
  struct flosse_task *t = flosse_task_of(T);
  if (!t || t->cb != &task_callbacks) return 0;
  return ((struct flosse_bgtask *)t->owner)->generation;
}

void flosse_background_init(struct flosse_background *bg, struct flosse_tasks *tasks) {
  bg->tasks = tasks;
  flosse_list_init(&bg->all);
  bg->count = 0;
}

/* ---- the task's callbacks ---------------------------------------------------- */

static void log_error(struct flosse_bgtask *b, const char *text) {
  char id[13];
  flosse_log_error(id, b->name, text);
}

static int on_event(struct flosse_task *t, int nres) {
  struct flosse_bgtask *b = t->owner;
  lua_pop(t->T, nres);
  log_error(b, "a background task yielded a value: it has no client to stream to "
               "(publish to a channel, or use flosse.sleep to wait)");
  run_over(b);
  return 0;
}

static void on_returned(struct flosse_task *t, int nres) {
  lua_pop(t->T, nres);
  run_over(t->owner);
}

static void on_failed(struct flosse_task *t, const struct flosse_task_error *e) {
  struct flosse_bgtask *b = t->owner;
  log_error(b, e->log_text);
  run_over(b);
}

static int on_resumed(struct flosse_task *t, int st) {
  (void)st;
  struct flosse_bgtask *b = t->owner;
  if (!b->cancelled) return FLOSSE_OK;
  finish(b);
  return FLOSSE_ERR;
}

static void on_notified(struct flosse_task *t, int drop) {
  struct flosse_bgtask *b = t->owner;
  if (drop)
    flosse_log(FLOSSE_LOG_WARN, "%s: a subscription fell channel_backlog events behind; "
               "an event was not queued to it", b->name);
  else
    flosse_wait_channel_fire(t);
}

static const struct flosse_task_callbacks task_callbacks = {
    on_event, on_returned, on_failed, on_resumed, on_notified,
};
