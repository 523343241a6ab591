#include "worker.h"


#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "lalloc.h"

#include "server.h"

static void set_state(struct flosse_worker *w, int state, const char *error) {
  pthread_mutex_lock(&w->main->wlock);
  if (w->state == 0 || state == 2) w->state = state;
  if (error && !w->error[0]) snprintf(w->error, sizeof w->error, "%s", error);
  pthread_cond_broadcast(&w->main->wcond);
  /* A main thread waiting for its workers to drain wakes up to look. */
  if (state == 2) ev_async_send(w->main->loop.ev, &w->main->worker_done_async);
  pthread_mutex_unlock(&w->main->wlock);
}

int flosse_workers_ended(struct flosse_server *main) {
  int ended = 1;
  pthread_mutex_lock(&main->wlock);
  for (int i = 0; i < main->nworkers; i++)
    if (main->workers[i].started && main->workers[i].state != 2) ended = 0;
  pthread_mutex_unlock(&main->wlock);
  return ended;
}

static int traceback(lua_State *L) {
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

static void *worker_main(void *arg) {
  struct flosse_worker *w = arg;
  /* Signals belong to the main thread. */
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  lua_State *L = flosse_lalloc_newstate();
  if (!L) {
    set_state(w, -1, "out of memory");
    return NULL;
  }
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, w->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, w->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_pushcfunction(L, traceback);
  if (luaL_loadbufferx(L, w->bootstrap, strlen(w->bootstrap), "=worker", "t") != LUA_OK) {
    set_state(w, -1, lua_tostring(L, -1));
  } else {
    lua_pushlightuserdata(L, w);
    lua_pushinteger(L, w->index);
    lua_pushstring(L, w->spec);
    if (lua_pcall(L, 3, 0, 1) != LUA_OK) {
      const char *m = lua_tostring(L, -1);
      flosse_log(FLOSSE_LOG_ERROR, "worker %d: %s", w->index, m ? m : "(error)");
      set_state(w, -1, m);
    }
  }
  flosse_lalloc_close_state(L);
  flosse_buf_thread_done();
  set_state(w, 2, NULL);
  return NULL;
}

void flosse_worker_serving(struct flosse_worker *w, struct flosse_server *srv) {
  pthread_mutex_lock(&w->main->wlock);
  w->srv = srv;
  if (w->state == 0) w->state = 1;
  pthread_cond_broadcast(&w->main->wcond);
  pthread_mutex_unlock(&w->main->wlock);
}

void flosse_worker_ended(struct flosse_worker *w) {
  pthread_mutex_lock(&w->main->wlock);
  w->srv = NULL;
  pthread_mutex_unlock(&w->main->wlock);
}

int flosse_workers_start(struct flosse_server *main, int n, const char *bootstrap,
                         const char *path, const char *cpath, const char *spec, char *err,
                         size_t errlen) {
  main->workers = calloc((size_t)n, sizeof *main->workers);
  if (!main->workers) {
    snprintf(err, errlen, "out of memory");
    return 0;
  }
  main->nworkers = n;
  for (int i = 0; i < n; i++) {
    struct flosse_worker *w = &main->workers[i];
    w->index = i + 1;
    w->main = main;
    w->bootstrap = strdup(bootstrap);
    w->path = strdup(path);
    w->cpath = strdup(cpath);
    w->spec = strdup(spec);
    if (!w->bootstrap || !w->path || !w->cpath || !w->spec ||
        pthread_create(&w->thread, NULL, worker_main, w) != 0) {
      w->state = -1;
      snprintf(w->error, sizeof w->error, "cannot start a thread");
      continue;
    }
    w->started = 1;
  }
  /* Wait (bounded) until every worker serves or has failed. */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  int serving = 0, pending;
  pthread_mutex_lock(&main->wlock);
  for (;;) {
    serving = pending = 0;
    for (int i = 0; i < n; i++) {
      if (main->workers[i].state == 0) pending++;
      if (main->workers[i].state == 1) serving++;
    }
    if (!pending) break;
    if (pthread_cond_timedwait(&main->wcond, &main->wlock, &until) == ETIMEDOUT) break;
  }
  for (int i = 0; i < n; i++) {
    if (main->workers[i].state != 1) {
      snprintf(err, errlen, "worker %d did not start: %s", i + 1,
               main->workers[i].error[0] ? main->workers[i].error : "timed out");
      break;
    }
  }
  pthread_mutex_unlock(&main->wlock);
  return serving;
}

void flosse_workers_stop(struct flosse_server *main, int force) {
  pthread_mutex_lock(&main->wlock);
  for (int i = 0; i < main->nworkers; i++) {
    struct flosse_server *srv = main->workers[i].srv;
    if (srv) ev_async_send(srv->loop.ev, force ? &srv->force_async : &srv->stop_async);
  }
  pthread_mutex_unlock(&main->wlock);
}

void flosse_workers_reload(struct flosse_server *main) {
  pthread_mutex_lock(&main->wlock);
  for (int i = 0; i < main->nworkers; i++) {
    struct flosse_server *srv = main->workers[i].srv;
    if (srv) ev_async_send(srv->loop.ev, &srv->reload_async);
  }
  pthread_mutex_unlock(&main->wlock);
}

void flosse_workers_join(struct flosse_server *main) {
  for (int i = 0; i < main->nworkers; i++) {
    struct flosse_worker *w = &main->workers[i];
    if (w->started) pthread_join(w->thread, NULL);
    free(w->bootstrap);
    free(w->path);
    free(w->cpath);
    free(w->spec);
  }
  free(main->workers);
  main->workers = NULL;
  main->nworkers = 0;
}
