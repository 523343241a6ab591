#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

#define ACCEPT_BATCH 64

void flosse_log(const char *fmt, ...) {
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

void flosse_server_init(struct flosse_server *srv) {
  memset(srv, 0, sizeof *srv);
  srv->loop = ev_default_loop(EVFLAG_AUTO);
  srv->dispatch_ref = LUA_NOREF;
  srv->cfg.http.max_url = 8192;
  srv->cfg.http.max_header = 16384;
  srv->cfg.http.max_body = 1 << 20;
  srv->cfg.high_water = 256 << 10;
  srv->cfg.low_water = 64 << 10;
  srv->cfg.resume_budget = 64;
  flosse_list_init(&srv->conns);
  flosse_list_init(&srv->runq);
  flosse_list_init(&srv->writeq);
  flosse_list_init(&srv->freeq);
  flosse_buf_init(&srv->scratch);
  ev_prepare_init(&srv->prepare, on_prepare);
  ev_idle_init(&srv->idle, on_idle);
  ev_signal_init(&srv->sigint, on_signal, SIGINT);
  ev_signal_init(&srv->sigterm, on_signal, SIGTERM);
  ev_init(&srv->accept_backoff, NULL);
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
        flosse_log("accept: %s; pausing accepts for 0.5 s", strerror(errno));
        for (int k = 0; k < srv->nlisteners; k++) ev_io_stop(loop, &srv->listeners[k].io);
        ev_timer_stop(loop, &srv->accept_backoff);
        ev_timer_init(&srv->accept_backoff, accept_resume, 0.5, 0.);
        ev_timer_start(loop, &srv->accept_backoff);
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    flosse_conn_new(srv, fd, (struct sockaddr *)&sa);
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
  while (!flosse_list_empty(&srv->freeq)) {
    struct flosse_conn *c = flosse_container_of(srv->freeq.next, struct flosse_conn, qnode);
    flosse_list_unlink(&c->qnode);
    flosse_conn_free(c);
  }
  if (flosse_list_empty(&srv->runq)) ev_idle_stop(loop, &srv->idle);
  else ev_idle_start(loop, &srv->idle);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_server *srv =
      w->signum == SIGINT ? flosse_container_of(w, struct flosse_server, sigint)
                          : flosse_container_of(w, struct flosse_server, sigterm);
  flosse_log("%s: shutting down", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
  flosse_server_stop(srv);
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
  int bound_port = port;
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
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
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

void flosse_server_run(struct flosse_server *srv, lua_State *L) {
  srv->L = L;
  srv->running = 1;
  srv->stopping = 0;
  ev_prepare_start(srv->loop, &srv->prepare);
  ev_signal_start(srv->loop, &srv->sigint);
  ev_signal_start(srv->loop, &srv->sigterm);
  for (int i = 0; i < srv->nlisteners; i++) ev_io_start(srv->loop, &srv->listeners[i].io);
  ev_run(srv->loop, 0);
  ev_prepare_stop(srv->loop, &srv->prepare);
  ev_idle_stop(srv->loop, &srv->idle);
  ev_signal_stop(srv->loop, &srv->sigint);
  ev_signal_stop(srv->loop, &srv->sigterm);
  srv->running = 0;
}

void flosse_server_stop(struct flosse_server *srv) {
  if (srv->stopping) return;
  srv->stopping = 1;
  for (int i = 0; i < srv->nlisteners; i++) ev_io_stop(srv->loop, &srv->listeners[i].io);
  ev_timer_stop(srv->loop, &srv->accept_backoff);
  while (!flosse_list_empty(&srv->conns)) {
    struct flosse_conn *c = flosse_container_of(srv->conns.next, struct flosse_conn, node);
    flosse_conn_flush(c);
    flosse_conn_close(c, NULL);
  }
  while (!flosse_list_empty(&srv->freeq)) {
    struct flosse_conn *c = flosse_container_of(srv->freeq.next, struct flosse_conn, qnode);
    flosse_list_unlink(&c->qnode);
    flosse_conn_free(c);
  }
  ev_break(srv->loop, EVBREAK_ALL);
}

void flosse_server_free(struct flosse_server *srv) {
  for (int i = 0; i < srv->nlisteners; i++) {
    ev_io_stop(srv->loop, &srv->listeners[i].io);
    close(srv->listeners[i].fd);
  }
  srv->nlisteners = 0;
  flosse_buf_free(&srv->scratch);
}
