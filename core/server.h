/* One worker: its loop context, listeners, connections, streams, tasks and
 * background tasks, and (on the main worker) the signals, the reload
 * watcher and the other workers. The process layer. */
#ifndef FLOSSE_SERVER_H
#define FLOSSE_SERVER_H

#include <ev.h>
#include <lua.h>
#include <pthread.h>
#include <stdint.h>

#include "background.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "stream.h"
#include "task.h"
#include "watch.h"

#define FLOSSE_MAX_LISTENERS 8

struct flosse_listener {
  ev_io io;
  int fd;
  struct flosse_server *srv;
  char url[80]; /* http://host:port/ for the start-up line */
};

struct flosse_worker;

struct flosse_server {
  struct flosse_loop loop;
  struct flosse_config cfg;
  struct flosse_conns conns;
  struct flosse_tasks tasks;
  struct flosse_streams streams;
  struct flosse_background background;
  int reload_ref;       /* called on SIGHUP and on changes in the app folder */
  int start_ref;        /* called once the loop runs (the app's tasks start there) */
  struct flosse_listener listeners[FLOSSE_MAX_LISTENERS];
  int nlisteners;
  ev_signal sigint, sigterm, sighup;
  struct flosse_watch watch;
  ev_timer accept_backoff; /* re-enables accept after EMFILE */
  ev_timer grace_timer;    /* ends a graceful shutdown that takes too long */
  ev_timer channel_sweep;  /* the main server's: frees channels whose history expired */
  long *conns_open;     /* the whole server's connections, shared by its workers (atomic) */
  long conns_open_own;  /* what conns_open points at on the main server */
  int running, stopping, forced;
  int stepping;         /* driven by flosse_server_step (in-process tests) */
  int awaiting_workers;  /* drained; the loop only waits for the workers now */
  int reuseport;        /* several workers share the port */

  /* Workers: the main server starts the others (threads with their own
   * loop and Lua state) and tells them to stop and reload. */
  struct flosse_worker *worker;     /* set on a worker's own server */
  struct flosse_worker *workers;    /* on the main server */
  int nworkers;
  pthread_mutex_t wlock;
  pthread_cond_t wcond;
  ev_async stop_async, force_async, reload_async;
  ev_async worker_done_async;       /* a worker thread ended (main server) */
};

/* The server's main (first) worker: the one holding what the workers share. */
struct flosse_server *flosse_server_main(struct flosse_server *srv);

/* Bytes held by the Lua states of every worker of srv's server. */
size_t flosse_server_lua_bytes(struct flosse_server *srv);

/* The server the calling thread runs (NULL outside flosse_server_run). */
extern __thread struct flosse_server *flosse_current_server;

/* Binds host:port (every address host resolves to; port 0 picks one port,
 * shared by all of them). Returns FLOSSE_OK or FLOSSE_ERR with err filled
 * in, naming the address. */
int flosse_server_listen(struct flosse_server *srv, const char *host, int port,
                         char *err, size_t errlen);

/* Runs the loop until a signal or flosse_server_stop. L is the running
 * thread. Returns 1 after a graceful stop, 0 when a second signal forced it. */
int flosse_server_run(struct flosse_server *srv, lua_State *L);

/* Runs one turn of the loop (waiting up to timeout seconds for something
 * to happen; 0: not at all), setting the server up on the first call: a
 * test drives a server in its own process this way (lua-http's
 * server:step). Signals are left alone. Returns FLOSSE_ERR when the server
 * runs by flosse_server_run. */
int flosse_server_step(struct flosse_server *srv, lua_State *L, double timeout);
/* Ends what flosse_server_step set up (every connection closed). */
void flosse_server_end_steps(struct flosse_server *srv);
/* Takes a connected socket (fd, ownership taken) as a connection, as if
 * accepted (lua-http's server:add_socket). */
int flosse_server_adopt(struct flosse_server *srv, int fd);

/* Graceful stop: stops accepting, cancels the background tasks, ends every
 * stream (views closed, on_close run, terminators queued), answers
 * unanswered requests with 503, then lets the loop drain for up to
 * cfg.grace seconds before it returns. */
void flosse_server_stop(struct flosse_server *srv);

/* Closes the listeners and frees what the server holds (L: its Lua state). */
void flosse_server_free(struct flosse_server *srv, lua_State *L);

/* worker: 0 for the main server (the default loop, which owns the
 * signals), 1 for a worker thread's server (a loop of its own). cfg is
 * copied. */
void flosse_server_init(struct flosse_server *srv, int worker, const struct flosse_config *cfg);

#endif
