/* One worker: an event loop, its listeners, its connections and the Lua
 * state its views run in. */
#ifndef FLOSSE_SERVER_H
#define FLOSSE_SERVER_H

#include <ev.h>
#include <lua.h>
#include <pthread.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "list.h"
#include "tq.h"
#include "watch.h"

#define FLOSSE_MAX_LISTENERS 8
#define FLOSSE_MAX_HBQ 16 /* distinct heartbeat intervals */

enum { FLOSSE_LOG_ERROR, FLOSSE_LOG_WARN, FLOSSE_LOG_INFO, FLOSSE_LOG_DEBUG };
extern int flosse_log_level;
void flosse_log_write(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define flosse_log(level, ...) \
  do { if ((level) <= flosse_log_level) flosse_log_write(__VA_ARGS__); } while (0)

struct flosse_listener {
  ev_io io;
  int fd;
  struct flosse_server *srv;
  char url[80]; /* http://host:port/ for the start-up line */
};

struct flosse_config {
  struct flosse_http_limits http;
  size_t high_water;    /* a view is not resumed while its output is above this */
  size_t low_water;     /* ... and is resumed once it drains below this */
  int resume_budget;    /* events per resume before other work gets a turn */
  int debug;            /* error events carry the error text */
  double heartbeat;     /* seconds of silence before a comment frame; 0: none */
  double header_timeout;/* to receive a request's headers */
  double write_timeout; /* without the socket taking a byte while output waits */
  double grace;         /* graceful shutdown: time to drain */
  long max_conns;       /* 0: from the open-file limit */
  long instruction_budget; /* VM instructions between two yields; 0: none */
  size_t lua_memory;    /* bytes the Lua state may hold; 0: no cap */
};


struct flosse_conn;
struct flosse_worker;

/* Work another thread hands a worker: wake a connection waiting on a
 * channel, or drop one that fell behind. */
struct flosse_post {
  struct flosse_conn *conn;
  int drop;
};

struct flosse_server {
  struct ev_loop *loop;
  lua_State *L;         /* the thread that called run(); only valid while running */
  int dispatch_ref;     /* the Lua function every request thread starts in */
  int idle_threads[64]; /* registry refs of finished request threads, reset for reuse */
  int nidle_threads;
  lua_State *resuming;  /* the request thread inside lua_resume, if any */
  struct flosse_http *spare_http; /* a finished request reader, kept for the next */
  int reload_ref;       /* called on SIGHUP and on changes in the app folder */
  struct flosse_config cfg;
  struct flosse_listener listeners[FLOSSE_MAX_LISTENERS];
  int nlisteners;
  ev_prepare prepare;   /* resumes runnable views, then flushes output */
  ev_idle idle;         /* keeps the loop from blocking while views are runnable */
  ev_signal sigint, sigterm, sighup;
  struct flosse_watch watch;
  ev_timer accept_backoff; /* re-enables accept after EMFILE */
  ev_timer grace_timer;    /* ends a graceful shutdown that takes too long */
  ev_timer channel_sweep;  /* the main server's: frees channels whose history expired */
  struct flosse_tq header_tq, write_tq;
  struct flosse_tq linger_tq; /* closing connections waiting for their client's FIN */
  struct flosse_tq hbq[FLOSSE_MAX_HBQ];
  int nhbq;
  long nconns;          /* this worker's connections */
  long *conns_open;     /* the whole server's, shared by its workers (atomic) */
  long conns_open_own;  /* what conns_open points at on the main server */
  struct flosse_lalloc *lalloc; /* the state's allocator: pool and memory cap */
  struct flosse_list conns;   /* every open connection */
  struct flosse_list runq;    /* views (or parsers) with work to do */
  struct flosse_list writeq;  /* connections with output to send */
  struct flosse_list freeq;   /* closed connections, freed in prepare */
  int running, stopping, forced;
  int awaiting_workers;  /* drained; the loop only waits for the workers now */
  int reuseport;        /* several workers share the port */

  /* Workers: the main server starts the others (threads with their own
   * loop and Lua state) and tells them to stop and reload. */
  struct flosse_worker *worker;     /* set on a worker's own server */
  struct flosse_worker *workers;    /* on the main server */
  int nworkers;
  pthread_mutex_t wlock;
  pthread_cond_t wcond;
  ev_async stop_async, force_async, reload_async, inbox_async;
  ev_async worker_done_async;       /* a worker thread ended (main server) */
  pthread_mutex_t inbox_lock;
  struct flosse_post *inbox;
  size_t ninbox, inbox_cap;
  struct flosse_post *inbox_work; /* the batch being handled (loop thread only) */
  size_t nwork, work_cap;
};

/* The server's main (first) worker: the one holding what the workers share. */
struct flosse_server *flosse_server_main(struct flosse_server *srv);

/* Bytes held by the Lua states of every worker of srv's server. */
size_t flosse_server_lua_bytes(struct flosse_server *srv);

/* The server the calling thread runs (NULL outside flosse_server_run). */
extern __thread struct flosse_server *flosse_current_server;

/* Queues work for srv's own thread and wakes its loop (any thread). */
void flosse_server_post(struct flosse_server *srv, struct flosse_conn *c, int drop);
/* Forgets posts for c (srv's thread, when c closes). */
void flosse_server_unpost(struct flosse_server *srv, struct flosse_conn *c);

/* Binds host:port (every address host resolves to; port 0 picks one port,
 * shared by all of them). Returns FLOSSE_OK or FLOSSE_ERR with err filled
 * in, naming the address. */
int flosse_server_listen(struct flosse_server *srv, const char *host, int port,
                         char *err, size_t errlen);

/* Runs the loop until a signal or flosse_server_stop. L is the running
 * thread. Returns 1 after a graceful stop, 0 when a second signal forced it. */
int flosse_server_run(struct flosse_server *srv, lua_State *L);

/* Graceful stop: stops accepting, ends every stream (views closed, on_close
 * run, terminators queued), answers unanswered requests with 503, then lets
 * the loop drain for up to cfg.grace seconds before it returns. */
void flosse_server_stop(struct flosse_server *srv);

/* The heartbeat queue for an interval (shared by every stream with it). */
struct flosse_tq *flosse_server_hbq(struct flosse_server *srv, double interval);

/* Closes the listeners and frees what the server holds. */
void flosse_server_free(struct flosse_server *srv);

/* worker: 0 for the main server (the default loop, which owns the
 * signals), 1 for a worker thread's server (a loop of its own). */
void flosse_server_init(struct flosse_server *srv, int worker);


#endif
