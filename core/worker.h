/* Worker threads: each runs its own event loop and Lua state, built by a
 * Lua bootstrap, and shares the listening port (SO_REUSEPORT) and the
 * channels with the others. The main thread's server starts them, tells
 * them to stop or reload, and joins them. */
#ifndef FLOSSE_WORKER_H
#define FLOSSE_WORKER_H

#include <pthread.h>

struct flosse_server;

struct flosse_worker {
  pthread_t thread;
  int index;                  /* 1.. (the main thread is worker 0) */
  struct flosse_server *main;
  struct flosse_server *srv;  /* the worker's server while it runs (under main->wlock) */
  char *bootstrap, *path, *cpath, *spec;
  int state;                  /* 0 starting, 1 serving, 2 ended, -1 failed */
  int started;                /* the thread exists (must be joined) */
  char error[256];
};

/* Starts n workers, each running bootstrap(handle, index, spec) in a new Lua
 * state with the given package paths, and waits until each serves or fails.
 * Returns the number serving; on a failure err holds the first error. */
int flosse_workers_start(struct flosse_server *main, int n, const char *bootstrap,
                         const char *path, const char *cpath, const char *spec, char *err,
                         size_t errlen);

/* Called on a worker's server when it starts (and stops) serving. */
void flosse_worker_serving(struct flosse_worker *w, struct flosse_server *srv);
void flosse_worker_ended(struct flosse_worker *w);

/* Asks every serving worker to stop gracefully (force: at once), or to reload. */
void flosse_workers_stop(struct flosse_server *main, int force);
void flosse_workers_reload(struct flosse_server *main);
/* 1 when every worker thread has ended (or never started). */
int flosse_workers_ended(struct flosse_server *main);

/* Waits for every worker thread and frees them. */
void flosse_workers_join(struct flosse_server *main);

#endif
