#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <lauxlib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "lalloc.h"
#include "metrics.h"
#include "channel_redis.h"
#include "presence_redis.h"
#include "revoke_redis.h"
#include "redis.h"
#include "h2.h"
#include "tls.h"
#include "http_client.h"
#include "worker.h"

__thread struct flosse_server *flosse_current_server;

#define ACCEPT_BATCH 64

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents);
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents);
static void on_watch_changed(struct flosse_watch *w);

static void on_stop_async(struct ev_loop *loop, ev_async *w, int revents);
static void on_force_async(struct ev_loop *loop, ev_async *w, int revents);
static void on_reload_async(struct ev_loop *loop, ev_async *w, int revents);
static void on_worker_done(struct ev_loop *loop, ev_async *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents; /* only wakes the loop; flosse_server_run looks at the workers */
}

static void after_turn(struct flosse_loop *l);

void flosse_server_init(struct flosse_server *srv, int worker, const struct flosse_config *cfg) {
  memset(srv, 0, sizeof *srv);
  srv->cfg = *cfg;
  flosse_loop_init(&srv->loop, worker ? ev_loop_new(EVFLAG_AUTO) : ev_default_loop(EVFLAG_AUTO));
  srv->loop.after_turn = after_turn;
  srv->conns_open = &srv->conns_open_own;
  flosse_conns_init(&srv->conns, &srv->loop, &srv->cfg, &flosse_stream_conn_callbacks, srv->conns_open);
  srv->conns.h2 = &flosse_h2_ops; /* a connection that opens with the HTTP/2 preface */
  srv->conns.data = &srv->streams;
  flosse_tasks_init(&srv->tasks, &srv->loop, &srv->cfg);
  flosse_streams_init(&srv->streams, &srv->tasks, &srv->cfg);
  flosse_background_init(&srv->background, &srv->tasks);
  pthread_mutex_init(&srv->wlock, NULL);
  pthread_cond_init(&srv->wcond, NULL);
  ev_async_init(&srv->stop_async, on_stop_async);
  ev_async_init(&srv->force_async, on_force_async);
  ev_async_init(&srv->reload_async, on_reload_async);
  ev_async_init(&srv->worker_done_async, on_worker_done);
  srv->reload_ref = srv->start_ref = LUA_NOREF;
  ev_signal_init(&srv->sigint, on_signal, SIGINT);
  ev_signal_init(&srv->sigterm, on_signal, SIGTERM);
  ev_signal_init(&srv->sighup, on_sighup, SIGHUP);
  flosse_watch_init(&srv->watch, srv->loop.ev, on_watch_changed);
  ev_init(&srv->accept_backoff, NULL);
  ev_init(&srv->grace_timer, NULL);
  ev_init(&srv->channel_sweep, NULL);
}

/* Channels are the process's: one sweep, on the main server, for all. */
static void on_channel_sweep(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents;
  flosse_channel_sweep(ev_time());
}

/* Refuses a connection over the cap without letting it in: one write of a
 * short 503 (the response writer's, built once), then the close. */
static char over_cap[256];
static size_t over_cap_len;

/* The answer to a connection over the cap, written by the response writer
 * once (every worker's accept uses it). */
static void build_over_cap(void) {
  static const char body[] = "Service Unavailable\n";
  struct flosse_buf b;
  struct flosse_response_conn rc = {0, 0};
  flosse_buf_init(&b);
  if (flosse_response_simple(&b, 503, "text/plain; charset=utf-8", body, sizeof body - 1, 0, &rc) ==
          FLOSSE_OK && b.len <= sizeof over_cap) {
    over_cap_len = flosse_buf_peek(&b, over_cap, sizeof over_cap);
  }
  flosse_buf_free(&b);
}

static void refuse_over_cap(int fd) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, build_over_cap); /* every worker accepts */
  if (over_cap_len) {
    ssize_t w = write(fd, over_cap, over_cap_len);
    (void)w;
  }
  close(fd);
}

static void accept_resume(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  struct flosse_server *srv = flosse_container_of(w, struct flosse_server, accept_backoff);
  for (int i = 0; i < srv->nlisteners; i++) ev_io_start(loop, &srv->listeners[i].io);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  struct flosse_listener *l = flosse_container_of(w, struct flosse_listener, io);
  struct flosse_server *srv = l->srv;
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    int fd = accept4(l->fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        /* Out of descriptors: stop accepting for a moment instead of
         * spinning on a listener that stays readable. */
        flosse_log(FLOSSE_LOG_ERROR, "accept: %s; pausing accepts for 0.5 s", strerror(errno));
        for (int k = 0; k < srv->nlisteners; k++) ev_io_stop(loop, &srv->listeners[k].io);
        ev_timer_stop(loop, &srv->accept_backoff);
        ev_timer_init(&srv->accept_backoff, accept_resume, 0.5, 0.);
        ev_timer_start(loop, &srv->accept_backoff);
      }
      return;
    }
    /* The cap is the server's, not a worker's: one count for them all. */
    long open = __atomic_add_fetch(srv->conns_open, 1, __ATOMIC_RELAXED);
    if (open > srv->cfg.max_conns) {
      __atomic_sub_fetch(srv->conns_open, 1, __ATOMIC_RELAXED);
      flosse_log(FLOSSE_LOG_WARN, "refused a connection: %ld connections (--max-connections)",
                 open - 1);
      if (srv->cfg.tls) close(fd); /* a TLS client could not read a plain 503 */
      else refuse_over_cap(fd);
      continue;
    }
    if (!flosse_conn_new(&srv->conns, fd, (struct sockaddr *)&sa)) /* TCP_NODELAY: from the listener */
      __atomic_sub_fetch(srv->conns_open, 1, __ATOMIC_RELAXED);
  }
}

/* Once a turn's work is done: a stopping server whose connections have
 * all gone ends its loop. */
static void after_turn(struct flosse_loop *l) {
  struct flosse_server *srv = flosse_container_of(l, struct flosse_server, loop);
  if (srv->stopping && !srv->awaiting_workers && flosse_list_empty(&srv->conns.all))
    ev_break(l->ev, EVBREAK_ALL);
}

static void close_all(struct flosse_server *srv) {
  flosse_background_cancel_generation(&srv->background, -1);
  flosse_conns_close_all(&srv->conns);
}

static void on_force_async(struct ev_loop *loop, ev_async *w, int revents) {
  (void)revents;
  struct flosse_server *srv = flosse_container_of(w, struct flosse_server, force_async);
  srv->forced = 1;
  close_all(srv);
  ev_break(loop, EVBREAK_ALL);
}

static void on_grace_over(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  struct flosse_server *srv = flosse_container_of(w, struct flosse_server, grace_timer);
  flosse_log(FLOSSE_LOG_WARN, "grace period over: closing %ld connections that did not drain",
             srv->conns.n);
  close_all(srv);
  ev_break(loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_server *srv =
      w->signum == SIGINT ? flosse_container_of(w, struct flosse_server, sigint)
                          : flosse_container_of(w, struct flosse_server, sigterm);
  const char *name = w->signum == SIGINT ? "SIGINT" : "SIGTERM";
  if (srv->stopping) {
    flosse_log(FLOSSE_LOG_WARN, "%s again: exiting now", name);
    srv->forced = 1;
    flosse_workers_stop(srv, 1);
    close_all(srv);
    ev_break(srv->loop.ev, EVBREAK_ALL);
    return;
  }
  flosse_log(FLOSSE_LOG_INFO, "%s: shutting down", name);
  flosse_server_stop(srv);
}

/* Runs the app's reload function; it logs its own outcome. */
static void call_reload(struct flosse_server *srv, const char *why) {
  if (srv->reload_ref == LUA_NOREF || !srv->loop.L || srv->stopping) return;
  lua_State *L = srv->loop.L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->reload_ref);
  lua_pushstring(L, why);
  flosse_task_pcall_log(L, 1, 0, "reload failed");
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_server *srv = flosse_container_of(w, struct flosse_server, sighup);
  flosse_log(FLOSSE_LOG_INFO, "SIGHUP: reloading");
  if (srv->cfg.tls) { /* one context for every worker: reloaded once */
    char err[512];
    if (flosse_tls_reload(srv->cfg.tls, err, sizeof err) == FLOSSE_OK)
      flosse_log(FLOSSE_LOG_INFO, "TLS certificate reloaded");
    else
      flosse_log(FLOSSE_LOG_ERROR, "TLS certificate reload failed, keeping the old one: %s", err);
  }
  call_reload(srv, "SIGHUP");
  flosse_workers_reload(srv);
}

static void on_watch_changed(struct flosse_watch *w) {
  struct flosse_server *srv = flosse_container_of(w, struct flosse_server, watch);
  call_reload(srv, "change");
  flosse_workers_reload(srv);
}

static void on_stop_async(struct ev_loop *loop, ev_async *w, int revents) {
  (void)loop;
  (void)revents;
  flosse_server_stop(flosse_container_of(w, struct flosse_server, stop_async));
}

static void on_reload_async(struct ev_loop *loop, ev_async *w, int revents) {
  (void)loop;
  (void)revents;
  call_reload(flosse_container_of(w, struct flosse_server, reload_async), "worker");
}

struct flosse_server *flosse_server_main(struct flosse_server *srv) {
  return srv->worker ? srv->worker->main : srv;
}

size_t flosse_server_lua_bytes(struct flosse_server *srv) {
  struct flosse_server *main = flosse_server_main(srv);
  size_t n = main->loop.lalloc ? flosse_lalloc_used(main->loop.lalloc) : 0;
  pthread_mutex_lock(&main->wlock);
  for (int i = 0; i < main->nworkers; i++) {
    struct flosse_server *w = main->workers[i].srv;
    /* Read without the worker's cooperation: a figure for monitoring. */
    if (w && w->loop.lalloc) n += flosse_lalloc_used(w->loop.lalloc);
  }
  pthread_mutex_unlock(&main->wlock);
  return n;
}

static int set_error(char *err, size_t errlen, const char *host, int port, const char *what) {
  const char *fmt = strchr(host, ':') ? "cannot listen on [%s]:%d: %s" : "cannot listen on %s:%d: %s";
  snprintf(err, errlen, fmt, host, port, what);
  return FLOSSE_ERR;
}

int flosse_server_listen(struct flosse_server *srv, const char *host, int port, char *err,
                         size_t errlen) {
  struct addrinfo hints, *res = NULL;
  char portstr[16];
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  snprintf(portstr, sizeof portstr, "%d", port);
  int gai = getaddrinfo(host, portstr, &hints, &res);
  if (gai != 0) return set_error(err, errlen, host, port, gai_strerror(gai));
  signal(SIGPIPE, SIG_IGN);
  /* Each stream is a descriptor: take all the kernel allows this process. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (srv->cfg.max_conns <= 0) {
    long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur : 65536;
    srv->cfg.max_conns = fds > 128 ? fds - 64 : 64;
  }
  int bound_port = port;
  if (srv->reuseport && !srv->worker && port != 0) {
    /* SO_REUSEPORT would let us share a port another server of this user
     * holds: make sure it is free first, with a plain bind. */
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      int probe = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (probe < 0) continue;
      int one = 1;
      if (ai->ai_family == AF_INET6) setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      int taken = bind(probe, ai->ai_addr, ai->ai_addrlen) < 0 ? errno : 0;
      close(probe);
      if (taken) {
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(ai->ai_family,
                  ai->ai_family == AF_INET ? (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                           : (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
                  ip, sizeof ip);
        set_error(err, errlen, ip, port, strerror(taken));
        freeaddrinfo(res);
        return FLOSSE_ERR;
      }
    }
  }
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    if (srv->nlisteners == FLOSSE_MAX_LISTENERS) break;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    char ip[INET6_ADDRSTRLEN];
    void *addr = ai->ai_family == AF_INET
                     ? (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                     : (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    inet_ntop(ai->ai_family, addr, ip, sizeof ip);
    /* Port 0: every address gets the port the first one was given. */
    if (ai->ai_family == AF_INET) ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(bound_port);
    else ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons(bound_port);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) goto err;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (srv->reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    /* Accepted sockets inherit it on Linux: one call less per connection. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
      close(fd);
      goto err;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
      bound_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                 : ((struct sockaddr_in6 *)&ss)->sin6_port);
    struct flosse_listener *l = &srv->listeners[srv->nlisteners++];
    l->fd = fd;
    l->srv = srv;
    snprintf(l->url, sizeof l->url, ai->ai_family == AF_INET6 ? (srv->cfg.tls ? "https://[%s]:%d/" : "http://[%s]:%d/")
                                                    : (srv->cfg.tls ? "https://%s:%d/" : "http://%s:%d/"),
             ip, bound_port);
    ev_io_init(&l->io, on_accept, fd, EV_READ);
    continue;
  err:
    set_error(err, errlen, ip, bound_port, strerror(errno));
    freeaddrinfo(res);
    for (int i = 0; i < srv->nlisteners; i++) close(srv->listeners[i].fd);
    srv->nlisteners = 0;
    return FLOSSE_ERR;
  }
  freeaddrinfo(res);
  if (srv->nlisteners == 0) return set_error(err, errlen, host, port, "no usable address");
  return FLOSSE_OK;
}

/* Sets the server up to run on this thread (L the running thread):
 * stepping leaves out the signals (a test process keeps its own). */
static void begin(struct flosse_server *srv, lua_State *L, int stepping) {
  struct flosse_config *cfg = &srv->cfg;
  struct ev_loop *ev = srv->loop.ev;
  srv->loop.lalloc = flosse_lalloc_of(L);
  if (!srv->loop.lalloc) luaL_error(L, "out of memory");
  flosse_lalloc_limit(srv->loop.lalloc, cfg->lua_memory);
  srv->loop.index = srv->worker ? srv->worker->index : 0;
  srv->loop.metrics = flosse_metrics_set_worker(srv->loop.index);
  srv->running = 1;
  srv->stepping = stepping;
  srv->stopping = srv->forced = 0;
  flosse_current_server = srv;
  flosse_loop_start(&srv->loop, L);
  flosse_conns_start(&srv->conns);
  flosse_guards_start(&srv->streams.guards);
  ev_async_start(ev, &srv->stop_async);
  ev_async_start(ev, &srv->force_async);
  ev_async_start(ev, &srv->reload_async);
  if (!srv->worker) { /* channels' sweep, their Redis link and signals are the main thread's */
    ev_timer_init(&srv->channel_sweep, on_channel_sweep, 1., 1.);
    ev_timer_start(ev, &srv->channel_sweep);
    if (flosse_redis_settings()->configured &&
        (flosse_channel_redis_start(ev) != FLOSSE_OK || flosse_revoke_redis_start(ev) != FLOSSE_OK ||
         flosse_presence_redis_start(ev) != FLOSSE_OK))
      luaL_error(L, "out of memory");
    if (!stepping) {
      ev_signal_start(ev, &srv->sigint);
      ev_signal_start(ev, &srv->sigterm);
      ev_signal_start(ev, &srv->sighup);
    }
  }
  for (int i = 0; i < srv->nlisteners; i++) ev_io_start(ev, &srv->listeners[i].io);
  if (srv->worker) flosse_worker_serving(srv->worker, srv);
  ev_async_start(ev, &srv->worker_done_async);
  if (srv->start_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, srv->start_ref);
    flosse_task_pcall_log(L, 0, 0, "start failed");
  }
}

/* Everything begin started, stopped; what is still open, closed. */
static void end(struct flosse_server *srv) {
  struct ev_loop *ev = srv->loop.ev;
  ev_async_stop(ev, &srv->worker_done_async);
  if (srv->worker) flosse_worker_ended(srv->worker);
  close_all(srv); /* whatever a forced stop left */
  flosse_guards_stop(&srv->streams.guards); /* before its loop's inbox goes */
  flosse_redis_pools_free(&srv->loop); /* after the tasks that waited on them */
  flosse_http_client_free(&srv->loop); /* the same */
  flosse_loop_stop(&srv->loop);
  ev_signal_stop(ev, &srv->sigint);
  ev_signal_stop(ev, &srv->sigterm);
  ev_signal_stop(ev, &srv->sighup);
  ev_async_stop(ev, &srv->stop_async);
  ev_async_stop(ev, &srv->force_async);
  ev_async_stop(ev, &srv->reload_async);
  flosse_watch_stop(&srv->watch);
  ev_timer_stop(ev, &srv->grace_timer);
  ev_timer_stop(ev, &srv->accept_backoff);
  ev_timer_stop(ev, &srv->channel_sweep);
  flosse_conns_stop(&srv->conns);
  flosse_lalloc_limit(srv->loop.lalloc, 0);
  srv->running = srv->stepping = 0;
  if (srv->nworkers) {
    /* The workers drain on their own, within their grace period. */
    flosse_workers_join(srv);
  }
  flosse_channel_redis_stop(); /* once no worker subscribes any more */
  flosse_revoke_redis_stop();
  flosse_presence_redis_stop();
  flosse_current_server = NULL;
}

int flosse_server_run(struct flosse_server *srv, lua_State *L) {
  begin(srv, L, 0);
  struct ev_loop *ev = srv->loop.ev;
  ev_run(ev, 0);
  /* Our own connections have drained; the workers may still be draining
   * theirs. Keep the loop (and the signal watchers) going meanwhile, so that
   * a second signal still forces everything to stop at once. */
  srv->awaiting_workers = 1;
  while (srv->nworkers && !srv->forced && !flosse_workers_ended(srv)) ev_run(ev, EVRUN_ONCE);
  srv->awaiting_workers = 0;
  end(srv);
  if (!srv->worker) flosse_log(FLOSSE_LOG_INFO, "stopped");
  return !srv->forced;
}

static void on_step_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents; /* only ends the loop's wait */
}

int flosse_server_step(struct flosse_server *srv, lua_State *L, double timeout) {
  if (!srv->running) begin(srv, L, 1);
  if (!srv->stepping) return FLOSSE_ERR;
  ev_timer t;
  ev_timer_init(&t, on_step_timeout, timeout > 0 ? timeout : 0., 0.);
  if (timeout > 0) ev_timer_start(srv->loop.ev, &t);
  ev_run(srv->loop.ev, timeout > 0 ? EVRUN_ONCE : EVRUN_NOWAIT);
  ev_timer_stop(srv->loop.ev, &t);
  return FLOSSE_OK;
}

void flosse_server_end_steps(struct flosse_server *srv) {
  if (srv->running && srv->stepping) end(srv);
}

int flosse_server_adopt(struct flosse_server *srv, int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return FLOSSE_ERR;
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  memset(&sa, 0, sizeof sa);
  if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0) sa.ss_family = AF_UNIX;
  __atomic_add_fetch(srv->conns_open, 1, __ATOMIC_RELAXED);
  if (!flosse_conn_new(&srv->conns, fd, (struct sockaddr *)&sa)) {
    __atomic_sub_fetch(srv->conns_open, 1, __ATOMIC_RELAXED);
    return FLOSSE_ERR;
  }
  return FLOSSE_OK;
}

void flosse_server_stop(struct flosse_server *srv) {
  if (srv->stopping) return;
  srv->stopping = 1;
  flosse_workers_stop(srv, 0);
  for (int i = 0; i < srv->nlisteners; i++) ev_io_stop(srv->loop.ev, &srv->listeners[i].io);
  ev_timer_stop(srv->loop.ev, &srv->accept_backoff);
  flosse_background_cancel_generation(&srv->background, -1);
  flosse_conns_shutdown(&srv->conns);
  if (flosse_list_empty(&srv->conns.all)) {
    ev_break(srv->loop.ev, EVBREAK_ALL);
    return;
  }
  ev_timer_init(&srv->grace_timer, on_grace_over, srv->cfg.grace, 0.);
  ev_timer_start(srv->loop.ev, &srv->grace_timer);
}

void flosse_server_free(struct flosse_server *srv, lua_State *L) {
  for (int i = 0; i < srv->nlisteners; i++) {
    ev_io_stop(srv->loop.ev, &srv->listeners[i].io);
    close(srv->listeners[i].fd);
  }
  srv->nlisteners = 0;
  flosse_watch_stop(&srv->watch);
  flosse_guards_stop(&srv->streams.guards); /* an in-process server freed without end() */
  flosse_conns_stop(&srv->conns);
  flosse_tasks_free(&srv->tasks, L);
  luaL_unref(L, LUA_REGISTRYINDEX, srv->streams.dispatch_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, srv->reload_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, srv->start_ref);
  srv->streams.dispatch_ref = srv->reload_ref = srv->start_ref = LUA_NOREF;
  flosse_loop_free(&srv->loop);
  if (srv->worker) ev_loop_destroy(srv->loop.ev);
  else flosse_tls_free(srv->cfg.tls); /* the workers, which share it, have ended */
  srv->cfg.tls = NULL;
}
