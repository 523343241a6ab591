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
#include "conn.h"
#include "lalloc.h"
#include "stream.h"
#include "worker.h"

__thread struct flosse_server *flosse_current_server;

#define ACCEPT_BATCH 64

int flosse_log_level = FLOSSE_LOG_INFO;

void flosse_log_write(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
  line[n] = '\n';
  /* One write per line, so that lines from several threads never mix. */
  fprintf(stderr, "flosse: %.*s", n + 1, line);
  fflush(stderr);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents);
static void on_idle(struct ev_loop *loop, ev_idle *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents;
}
static void on_signal(struct ev_loop *loop, ev_signal *w, int revents);
static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents);
static void on_watch_changed(struct flosse_watch *w);

static void on_stop_async(struct ev_loop *loop, ev_async *w, int revents);
static void on_force_async(struct ev_loop *loop, ev_async *w, int revents);
static void on_reload_async(struct ev_loop *loop, ev_async *w, int revents);
static void on_inbox_async(struct ev_loop *loop, ev_async *w, int revents);
static void on_worker_done(struct ev_loop *loop, ev_async *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents; /* only wakes the loop; flosse_server_run looks at the workers */
}

void flosse_server_init(struct flosse_server *srv, int worker) {
  memset(srv, 0, sizeof *srv);
  srv->loop = worker ? ev_loop_new(EVFLAG_AUTO) : ev_default_loop(EVFLAG_AUTO);
  pthread_mutex_init(&srv->wlock, NULL);
  pthread_cond_init(&srv->wcond, NULL);
  pthread_mutex_init(&srv->inbox_lock, NULL);
  ev_async_init(&srv->stop_async, on_stop_async);
  ev_async_init(&srv->force_async, on_force_async);
  ev_async_init(&srv->reload_async, on_reload_async);
  ev_async_init(&srv->inbox_async, on_inbox_async);
  ev_async_init(&srv->worker_done_async, on_worker_done);
  srv->dispatch_ref = LUA_NOREF;
  srv->reload_ref = LUA_NOREF;
  srv->conns_open = &srv->conns_open_own;
  srv->cfg.http.max_url = 8192;
  srv->cfg.http.max_header = 16384;
  srv->cfg.http.max_body = 1 << 20;
  srv->cfg.high_water = 256 << 10;
  srv->cfg.low_water = 64 << 10;
  srv->cfg.resume_budget = 64;
  srv->cfg.heartbeat = 15;
  srv->cfg.header_timeout = 10;
  srv->cfg.write_timeout = 30;
  srv->cfg.grace = 5;
  srv->cfg.instruction_budget = 100000000;
  srv->cfg.lua_memory = (size_t)1024 << 20;
  flosse_list_init(&srv->conns);
  flosse_list_init(&srv->runq);
  flosse_list_init(&srv->writeq);
  flosse_list_init(&srv->freeq);
  ev_prepare_init(&srv->prepare, on_prepare);
  ev_idle_init(&srv->idle, on_idle);
  ev_signal_init(&srv->sigint, on_signal, SIGINT);
  ev_signal_init(&srv->sigterm, on_signal, SIGTERM);
  ev_signal_init(&srv->sighup, on_sighup, SIGHUP);
  flosse_watch_init(&srv->watch, srv->loop, on_watch_changed);
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

struct flosse_tq *flosse_server_hbq(struct flosse_server *srv, double interval) {
  int best = -1;
  for (int i = 0; i < srv->nhbq; i++) {
    if (srv->hbq[i].interval == interval) return &srv->hbq[i];
    if (best < 0 || fabs(srv->hbq[i].interval - interval) < fabs(srv->hbq[best].interval - interval))
      best = i;
  }
  if (srv->nhbq < FLOSSE_MAX_HBQ) {
    struct flosse_tq *tq = &srv->hbq[srv->nhbq++];
    flosse_tq_init(tq, srv->loop, interval, flosse_conn_on_heartbeat);
    return tq;
  }
  /* So many distinct intervals are unlikely; the nearest one will do. */
  return best >= 0 ? &srv->hbq[best] : NULL;
}

/* Refuses a connection over the cap without letting it in: one write of a
 * short 503, then the close. */
static void refuse_over_cap(int fd) {
  static const char resp[] =
      "HTTP/1.1 503 Service Unavailable\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 20\r\n"
      "Connection: close\r\n\r\n"
      "Service Unavailable\n";
  ssize_t w = write(fd, resp, sizeof resp - 1);
  (void)w;
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
      refuse_over_cap(fd);
      continue;
    }
    if (!flosse_conn_new(srv, fd, (struct sockaddr *)&sa)) /* TCP_NODELAY: from the listener */
      __atomic_sub_fetch(srv->conns_open, 1, __ATOMIC_RELAXED);
  }
}

/* Frees connections closed since the last turn (never inside their own callbacks). */
static void free_closed(struct flosse_server *srv) {
  while (!flosse_list_empty(&srv->freeq)) {
    struct flosse_conn *c = flosse_container_of(srv->freeq.next, struct flosse_conn, qnode);
    flosse_list_unlink(&c->qnode);
    flosse_conn_free(c);
  }
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents) {
  (void)revents;
  struct flosse_server *srv = flosse_container_of(w, struct flosse_server, prepare);
  struct flosse_list batch;
  /* Views that yielded their budget, or woke from a drain, go first; what
   * they queue in the meantime waits for the next turn. */
  flosse_list_take(&batch, &srv->runq);
  while (!flosse_list_empty(&batch)) {
    struct flosse_conn *c = flosse_container_of(batch.next, struct flosse_conn, qnode);
    flosse_list_unlink(&c->qnode);
    flosse_conn_run(c);
  }
  while (!flosse_list_empty(&srv->writeq)) {
    struct flosse_conn *c = flosse_container_of(srv->writeq.next, struct flosse_conn, wnode);
    flosse_list_unlink(&c->wnode);
    flosse_conn_flush(c);
  }
  free_closed(srv);
  if (flosse_list_empty(&srv->runq)) ev_idle_stop(loop, &srv->idle);
  else ev_idle_start(loop, &srv->idle);
  if (srv->stopping && !srv->awaiting_workers && flosse_list_empty(&srv->conns))
    ev_break(loop, EVBREAK_ALL);
}

static void close_all(struct flosse_server *srv) {
  while (!flosse_list_empty(&srv->conns)) {
    struct flosse_conn *c = flosse_container_of(srv->conns.next, struct flosse_conn, node);
    flosse_conn_close(c, NULL);
  }
  free_closed(srv);
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
             srv->nconns);
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
    ev_break(srv->loop, EVBREAK_ALL);
    return;
  }
  flosse_log(FLOSSE_LOG_INFO, "%s: shutting down", name);
  flosse_server_stop(srv);
}

/* Runs the app's reload function; it logs its own outcome. */
static void call_reload(struct flosse_server *srv, const char *why) {
  if (srv->reload_ref == LUA_NOREF || !srv->L || srv->stopping) return;
  lua_State *L = srv->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, srv->reload_ref);
  lua_pushstring(L, why);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *m = lua_tostring(L, -1);
    flosse_log(FLOSSE_LOG_ERROR, "reload failed: %s", m ? m : "(error object is not a string)");
    lua_pop(L, 1);
  }
}

static void on_sighup(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_server *srv = flosse_container_of(w, struct flosse_server, sighup);
  flosse_log(FLOSSE_LOG_INFO, "SIGHUP: reloading");
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

void flosse_server_post(struct flosse_server *srv, struct flosse_conn *c, int drop) {
  pthread_mutex_lock(&srv->inbox_lock);
  if (srv->ninbox == srv->inbox_cap) {
    size_t ncap = srv->inbox_cap ? srv->inbox_cap * 2 : 64;
    struct flosse_post *n = realloc(srv->inbox, ncap * sizeof *n);
    if (!n) {
      pthread_mutex_unlock(&srv->inbox_lock);
      return; /* the stream misses a wake-up; its next event wakes it */
    }
    srv->inbox = n;
    srv->inbox_cap = ncap;
  }
  srv->inbox[srv->ninbox++] = (struct flosse_post){c, drop};
  pthread_mutex_unlock(&srv->inbox_lock);
  ev_async_send(srv->loop, &srv->inbox_async);
}

void flosse_server_unpost(struct flosse_server *srv, struct flosse_conn *c) {
  pthread_mutex_lock(&srv->inbox_lock);
  for (size_t i = 0; i < srv->ninbox; i++)
    if (srv->inbox[i].conn == c) srv->inbox[i].conn = NULL;
  pthread_mutex_unlock(&srv->inbox_lock);
  /* The batch in hand is only touched by this (the loop's) thread. */
  for (size_t i = 0; i < srv->nwork; i++)
    if (srv->inbox_work[i].conn == c) srv->inbox_work[i].conn = NULL;
}

/* Takes the whole inbox in one swap, so a publish to thousands of this
 * worker's streams costs the two threads one lock each, not one per post. */
static void on_inbox_async(struct ev_loop *loop, ev_async *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_server *srv = flosse_container_of(w, struct flosse_server, inbox_async);
  for (;;) {
    pthread_mutex_lock(&srv->inbox_lock);
    struct flosse_post *batch = srv->inbox;
    size_t n = srv->ninbox, cap = srv->inbox_cap;
    srv->inbox = srv->inbox_work;
    srv->inbox_cap = srv->work_cap;
    srv->ninbox = 0;
    pthread_mutex_unlock(&srv->inbox_lock);
    srv->inbox_work = batch;
    srv->work_cap = cap;
    if (!n) return;
    srv->nwork = n;
    for (size_t i = 0; i < srv->nwork; i++) {
      struct flosse_post p = batch[i];
      /* Posts for a connection that closed were cleared by flosse_server_unpost. */
      if (!p.conn) continue;
      if (p.drop) flosse_conn_drop(p.conn);
      else flosse_conn_wake(p.conn);
    }
    srv->nwork = 0;
  }
}

struct flosse_server *flosse_server_main(struct flosse_server *srv) {
  return srv->worker ? srv->worker->main : srv;
}

size_t flosse_server_lua_bytes(struct flosse_server *srv) {
  struct flosse_server *main = flosse_server_main(srv);
  size_t n = main->lalloc ? flosse_lalloc_used(main->lalloc) : 0;
  pthread_mutex_lock(&main->wlock);
  for (int i = 0; i < main->nworkers; i++) {
    struct flosse_server *w = main->workers[i].srv;
    /* Read without the worker's cooperation: a figure for monitoring. */
    if (w && w->lalloc) n += flosse_lalloc_used(w->lalloc);
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
    snprintf(l->url, sizeof l->url, ai->ai_family == AF_INET6 ? "http://[%s]:%d/" : "http://%s:%d/",
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

int flosse_server_run(struct flosse_server *srv, lua_State *L) {
  struct flosse_config *cfg = &srv->cfg;
  srv->lalloc = flosse_lalloc_of(L);
  if (!srv->lalloc) luaL_error(L, "out of memory");
  flosse_lalloc_limit(srv->lalloc, cfg->lua_memory);
  srv->L = L;
  srv->running = 1;
  srv->stopping = srv->forced = 0;
  flosse_current_server = srv;
  flosse_tq_init(&srv->header_tq, srv->loop, cfg->header_timeout, flosse_conn_on_header_timeout);
  flosse_tq_init(&srv->write_tq, srv->loop, cfg->write_timeout, flosse_conn_on_write_timeout);
  flosse_tq_init(&srv->linger_tq, srv->loop, FLOSSE_LINGER_SECONDS, flosse_conn_on_linger_timeout);
  ev_prepare_start(srv->loop, &srv->prepare);
  ev_async_start(srv->loop, &srv->stop_async);
  ev_async_start(srv->loop, &srv->force_async);
  ev_async_start(srv->loop, &srv->reload_async);
  ev_async_start(srv->loop, &srv->inbox_async);
  if (!srv->worker) { /* signals are the main thread's */
    ev_timer_init(&srv->channel_sweep, on_channel_sweep, 1., 1.);
    ev_timer_start(srv->loop, &srv->channel_sweep);
    ev_signal_start(srv->loop, &srv->sigint);
    ev_signal_start(srv->loop, &srv->sigterm);
    ev_signal_start(srv->loop, &srv->sighup);
  }
  for (int i = 0; i < srv->nlisteners; i++) ev_io_start(srv->loop, &srv->listeners[i].io);
  if (srv->worker) flosse_worker_serving(srv->worker, srv);
  ev_async_start(srv->loop, &srv->worker_done_async);
  ev_run(srv->loop, 0);
  /* Our own connections have drained; the workers may still be draining
   * theirs. Keep the loop (and the signal watchers) going meanwhile, so that
   * a second signal still forces everything to stop at once. */
  srv->awaiting_workers = 1;
  while (srv->nworkers && !srv->forced && !flosse_workers_ended(srv)) ev_run(srv->loop, EVRUN_ONCE);
  srv->awaiting_workers = 0;
  ev_async_stop(srv->loop, &srv->worker_done_async);
  if (srv->worker) flosse_worker_ended(srv->worker);
  close_all(srv); /* whatever a forced stop left */
  ev_prepare_stop(srv->loop, &srv->prepare);
  ev_idle_stop(srv->loop, &srv->idle);
  ev_signal_stop(srv->loop, &srv->sigint);
  ev_signal_stop(srv->loop, &srv->sigterm);
  ev_signal_stop(srv->loop, &srv->sighup);
  ev_async_stop(srv->loop, &srv->stop_async);
  ev_async_stop(srv->loop, &srv->force_async);
  ev_async_stop(srv->loop, &srv->reload_async);
  ev_async_stop(srv->loop, &srv->inbox_async);
  flosse_watch_stop(&srv->watch);
  ev_timer_stop(srv->loop, &srv->grace_timer);
  ev_timer_stop(srv->loop, &srv->accept_backoff);
  ev_timer_stop(srv->loop, &srv->channel_sweep);
  flosse_tq_stop(&srv->header_tq);
  flosse_tq_stop(&srv->write_tq);
  flosse_tq_stop(&srv->linger_tq);
  for (int i = 0; i < srv->nhbq; i++) flosse_tq_stop(&srv->hbq[i]);
  srv->nhbq = 0;
  flosse_lalloc_limit(srv->lalloc, 0);
  srv->running = 0;
  if (srv->nworkers) {
    /* The workers drain on their own, within their grace period. */
    flosse_workers_join(srv);
  }
  flosse_current_server = NULL;
  if (!srv->worker) flosse_log(FLOSSE_LOG_INFO, "stopped");
  return !srv->forced;
}

void flosse_server_stop(struct flosse_server *srv) {
  if (srv->stopping) return;
  srv->stopping = 1;
  flosse_workers_stop(srv, 0);
  for (int i = 0; i < srv->nlisteners; i++) ev_io_stop(srv->loop, &srv->listeners[i].io);
  ev_timer_stop(srv->loop, &srv->accept_backoff);
  /* Ending a stream never frees a connection (frees wait for the prepare
   * watcher), but closing an idle one unlinks it: step carefully. */
  struct flosse_list *it = srv->conns.next;
  while (it != &srv->conns) {
    struct flosse_conn *c = flosse_container_of(it, struct flosse_conn, node);
    it = it->next;
    if (c->state == FLOSSE_CONN_READING) flosse_conn_close(c, NULL);
    else flosse_stream_shutdown(c);
  }
  if (flosse_list_empty(&srv->conns)) {
    ev_break(srv->loop, EVBREAK_ALL);
    return;
  }
  ev_timer_init(&srv->grace_timer, on_grace_over, srv->cfg.grace, 0.);
  ev_timer_start(srv->loop, &srv->grace_timer);
}

void flosse_server_free(struct flosse_server *srv) {
  for (int i = 0; i < srv->nlisteners; i++) {
    ev_io_stop(srv->loop, &srv->listeners[i].io);
    close(srv->listeners[i].fd);
  }
  srv->nlisteners = 0;
  flosse_watch_stop(&srv->watch);
  free(srv->inbox);
  srv->inbox = NULL;
  free(srv->inbox_work);
  srv->inbox_work = NULL;
  if (srv->spare_http) {
    flosse_http_free(srv->spare_http);
    free(srv->spare_http);
    srv->spare_http = NULL;
  }
  if (srv->worker) ev_loop_destroy(srv->loop);
}
