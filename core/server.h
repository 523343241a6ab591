/* One worker: an event loop, its listeners, its connections and the Lua
 * state its views run in. */
#ifndef FLOSSE_SERVER_H
#define FLOSSE_SERVER_H

#include <ev.h>
#include <lua.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "list.h"

#define FLOSSE_MAX_LISTENERS 8

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
};

struct flosse_server {
  struct ev_loop *loop;
  lua_State *L;         /* the thread that called run(); only valid while running */
  int dispatch_ref;     /* the Lua function every request thread starts in */
  struct flosse_config cfg;
  struct flosse_listener listeners[FLOSSE_MAX_LISTENERS];
  int nlisteners;
  ev_prepare prepare;   /* resumes runnable views, then flushes output */
  ev_idle idle;         /* keeps the loop from blocking while views are runnable */
  ev_signal sigint, sigterm;
  ev_timer accept_backoff; /* re-enables accept after EMFILE */
  struct flosse_list conns;   /* every open connection */
  struct flosse_list runq;    /* views (or parsers) with work to do */
  struct flosse_list writeq;  /* connections with output to send */
  struct flosse_list freeq;   /* closed connections, freed in prepare */
  struct flosse_buf scratch;  /* one event's frame, before chunking */
  int running, stopping;
};

/* Binds host:port (every address host resolves to; port 0 picks one port,
 * shared by all of them). Returns FLOSSE_OK or FLOSSE_ERR with err filled
 * in, naming the address. */
int flosse_server_listen(struct flosse_server *srv, const char *host, int port,
                         char *err, size_t errlen);

/* Runs the loop until a signal or flosse_server_stop. L is the running thread. */
void flosse_server_run(struct flosse_server *srv, lua_State *L);

/* Stops accepting, closes every connection (their views are closed and
 * their on_close handlers run) and breaks the loop. */
void flosse_server_stop(struct flosse_server *srv);

/* Closes the listeners and frees what the server holds. */
void flosse_server_free(struct flosse_server *srv);

void flosse_server_init(struct flosse_server *srv);

void flosse_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
