#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "defaults.h"
#include "log.h"
#include "metrics.h"
#include "redact.h"
#include "tls.h"

#define READ_CHUNK 16384
#define IOV_BATCH 64

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void run_job(struct flosse_job *j);
static void flush_job(struct flosse_job *j);
static void log_access(struct flosse_conn *c);
static void read_now(struct flosse_conn *c);

/* ---- state ------------------------------------------------------------------ */

static const char *const state_names[] = {"reading", "handling", "streaming", "draining", "closed"};

/* The moves a connection may make (lua-http's h1_stream set_state): one
 * bit per state it may go to from each. */
#define TO(s) (1u << (s))
static const unsigned legal[] = {
    [FLOSSE_CONN_READING] = TO(FLOSSE_CONN_HANDLING) | TO(FLOSSE_CONN_DRAINING) | TO(FLOSSE_CONN_CLOSED),
    [FLOSSE_CONN_HANDLING] = TO(FLOSSE_CONN_STREAMING) | TO(FLOSSE_CONN_READING) |
                             TO(FLOSSE_CONN_DRAINING) | TO(FLOSSE_CONN_CLOSED),
    [FLOSSE_CONN_STREAMING] = TO(FLOSSE_CONN_READING) | TO(FLOSSE_CONN_DRAINING) | TO(FLOSSE_CONN_CLOSED),
    [FLOSSE_CONN_DRAINING] = TO(FLOSSE_CONN_CLOSED),
    [FLOSSE_CONN_CLOSED] = 0,
};

/* The one place a connection's state changes. */
static int set_state(struct flosse_conn *c, enum flosse_conn_state to) {
  if (!(legal[c->state] & TO(to))) {
    flosse_log(FLOSSE_LOG_ERROR, "internal: connection %s cannot go from %s to %s", c->remote,
               state_names[c->state], state_names[to]);
    return FLOSSE_ERR;
  }
  c->state = to;
  return FLOSSE_OK;
}

/* ---- the worker's connections ---------------------------------------------- */

static void on_header_timeout(struct flosse_tq *tq, struct flosse_tq_node *n);
static void on_write_timeout(struct flosse_tq *tq, struct flosse_tq_node *n);
static void on_linger_timeout(struct flosse_tq *tq, struct flosse_tq_node *n);
static void on_heartbeat(struct flosse_tq *tq, struct flosse_tq_node *n);

void flosse_conns_init(struct flosse_conns *cs, struct flosse_loop *loop,
                       const struct flosse_config *cfg, const struct flosse_conn_callbacks *cb,
                       long *open) {
  memset(cs, 0, sizeof *cs);
  cs->loop = loop;
  cs->cfg = cfg;
  cs->cb = cb;
  cs->open = open;
  flosse_list_init(&cs->all);
}

void flosse_conns_start(struct flosse_conns *cs) {
  struct ev_loop *ev = cs->loop->ev;
  flosse_tq_init(&cs->header_tq, ev, cs->cfg->header_timeout, on_header_timeout);
  flosse_tq_init(&cs->write_tq, ev, cs->cfg->write_timeout, on_write_timeout);
  flosse_tq_init(&cs->linger_tq, ev, FLOSSE_LINGER_SECONDS, on_linger_timeout);
  cs->nhbq = 0;
}

void flosse_conns_stop(struct flosse_conns *cs) {
  flosse_tq_stop(&cs->header_tq);
  flosse_tq_stop(&cs->write_tq);
  flosse_tq_stop(&cs->linger_tq);
  for (int i = 0; i < cs->nhbq; i++) flosse_tq_stop(&cs->hbq[i]);
  cs->nhbq = 0;
  if (cs->spare_http) {
    flosse_http_free(cs->spare_http);
    free(cs->spare_http);
    cs->spare_http = NULL;
  }
}

void flosse_conns_shutdown(struct flosse_conns *cs) {
  /* A shutdown callback never frees a connection (frees wait for the end of
   * the turn), but closing an idle one unlinks it: step carefully. */
  struct flosse_list *it = cs->all.next;
  while (it != &cs->all) {
    struct flosse_conn *c = flosse_container_of(it, struct flosse_conn, node);
    it = it->next;
    c->keep_alive = 0;
    if (c->h2) cs->h2->shutdown(c);
    else if (c->state == FLOSSE_CONN_READING) flosse_conn_close(c, NULL);
    else if (c->state == FLOSSE_CONN_HANDLING || c->state == FLOSSE_CONN_STREAMING) cs->cb->shutdown(c);
  }
}

void flosse_conns_close_all(struct flosse_conns *cs) {
  while (!flosse_list_empty(&cs->all))
    flosse_conn_close(flosse_container_of(cs->all.next, struct flosse_conn, node), NULL);
  flosse_loop_free_closed(cs->loop);
}

/* The heartbeat queue for an interval (shared by every stream with it). */
static struct flosse_tq *hbq_for(struct flosse_conns *cs, double interval) {
  int best = -1;
  for (int i = 0; i < cs->nhbq; i++) {
    if (cs->hbq[i].interval == interval) return &cs->hbq[i];
    if (best < 0 || fabs(cs->hbq[i].interval - interval) < fabs(cs->hbq[best].interval - interval))
      best = i;
  }
  if (cs->nhbq < FLOSSE_MAX_HBQ) {
    struct flosse_tq *tq = &cs->hbq[cs->nhbq++];
    flosse_tq_init(tq, cs->loop->ev, interval, on_heartbeat);
    return tq;
  }
  /* So many distinct intervals are unlikely; the nearest one will do. */
  return best >= 0 ? &cs->hbq[best] : NULL;
}

/* ---- what the logs may show ------------------------------------------------- */

/* The query parameters never logged, per worker thread: each worker is one
 * thread with one loop and one Lua state, whose app (re)load sets them
 * (flosse_conn_redact_query), so a worker still on its old app redacts
 * what that app reads. Before any app loads: "token", the default of the
 * authentication classes. */
static __thread struct flosse_redact redacted = {.n = 1, .len = {5}, .name = {"token"}};

void flosse_conn_redact_query(const struct flosse_redact *r) { redacted = *r; }

int flosse_conn_set_client(struct flosse_conn *c, const char *addr) {
  size_t n = strlen(addr);
  if (n >= sizeof c->remote) return FLOSSE_ERR;
  memcpy(c->remote, addr, n + 1);
  return FLOSSE_OK;
}

/* ---- one connection ---------------------------------------------------------- */

static void format_remote(char *out, size_t len, const struct sockaddr *sa) {
  const void *addr = sa->sa_family == AF_INET    ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                     : sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                                 : NULL;
  if (!addr || !inet_ntop(sa->sa_family, addr, out, (socklen_t)len)) snprintf(out, len, "?");
}

struct flosse_conn *flosse_conn_new(struct flosse_conns *cs, int fd, const struct sockaddr *sa) {
  struct flosse_conn *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return NULL;
  }
  c->ctx = cs;
  c->fd = fd;
  c->state = FLOSSE_CONN_READING;
  flosse_buf_init(&c->out);
  format_remote(c->peer, sizeof c->peer, sa);
  memcpy(c->remote, c->peer, sizeof c->remote);
  flosse_job_init(&c->run, run_job);
  flosse_job_init(&c->flush, flush_job);
  flosse_tq_node_init(&c->rd);
  flosse_tq_node_init(&c->wr);
  flosse_tq_node_init(&c->hb);
  flosse_list_init(&c->sibling);
  if (cs->cfg->tls && !(c->ssl = flosse_tls_session(cs->cfg->tls, fd))) {
    close(fd);
    free(c);
    return NULL;
  }
  flosse_list_push(&cs->all, &c->node);
  cs->n++;
  FLOSSE_METRIC_INC(cs->loop->metrics, conns_opened);
  flosse_tq_touch(&cs->header_tq, &c->rd);
  ev_io_init(&c->rio, on_read, fd, EV_READ);
  ev_io_init(&c->wio, on_write, fd, EV_WRITE);
  ev_io_start(cs->loop->ev, &c->rio);
  return c;
}

static void release_http(struct flosse_conn *c) {
  if (!c->http) return;
  /* One spare per worker spares a malloc and a store per request; a store
   * grown by a big request is not kept. */
  if (!c->ctx->spare_http && c->http->store_cap <= 4096) {
    c->ctx->spare_http = c->http;
  } else {
    flosse_http_free(c->http);
    free(c->http);
  }
  c->http = NULL;
}

static void free_job(struct flosse_job *j) {
  struct flosse_conn *c = flosse_container_of(j, struct flosse_conn, run);
  release_http(c);
  flosse_buf_free(&c->out);
  flosse_rbuf_free(&c->in);
  free(c->reqline);
  free(c);
}

void flosse_conn_close(struct flosse_conn *c, const char *why) {
  if (c->state == FLOSSE_CONN_CLOSED) return;
  struct flosse_conns *cs = c->ctx;
  if (why) flosse_log(FLOSSE_LOG_WARN, "closed %s %s: %s", c->remote, c->reqline ? c->reqline : "-", why);
  ev_io_stop(cs->loop->ev, &c->rio);
  ev_io_stop(cs->loop->ev, &c->wio);
  flosse_tq_remove(&c->rd);
  flosse_tq_remove(&c->wr);
  flosse_tq_remove(&c->hb);
  c->hbq = NULL;
  int in_request = c->reqline != NULL;
  /* Marked first: what the layer above runs as it lets go (a view's
   * cleanup code) must not queue more on it. */
  set_state(c, FLOSSE_CONN_CLOSED);
  if (c->up) cs->cb->closed(c);
  c->up = NULL;
  if (in_request) log_access(c);
  flosse_job_cancel(&c->flush);
  if (c->parent) { /* an HTTP/2 stream: no socket of its own */
    cs->h2->stream_closed(c);
    flosse_loop_free_later(cs->loop, &c->run, free_job);
    return;
  }
  if (c->h2) cs->h2->closed(c); /* its streams close first */
  cs->n--;
  FLOSSE_METRIC_INC(cs->loop->metrics, conns_closed);
  __atomic_sub_fetch(cs->open, 1, __ATOMIC_RELAXED);
  if (c->ssl) {
    flosse_tls_close(c->ssl);
    c->ssl = NULL;
  }
  close(c->fd);
  c->fd = -1;
  flosse_list_unlink(&c->node);
  flosse_loop_free_later(cs->loop, &c->run, free_job);
}

void flosse_conn_close_soon(struct flosse_conn *c, const char *why) {
  if (c->state == FLOSSE_CONN_CLOSED || c->close_reason) return;
  c->close_reason = why;
  flosse_loop_run_soon(c->ctx->loop, &c->run);
}

static void want_flush(struct flosse_conn *c) {
  if (c->state != FLOSSE_CONN_CLOSED) flosse_loop_flush_soon(c->ctx->loop, &c->flush);
}

static void want_run(struct flosse_conn *c) {
  if (c->state != FLOSSE_CONN_CLOSED) flosse_loop_run_soon(c->ctx->loop, &c->run);
}

/* Starts reading again. TLS may hold decrypted bytes the socket will not
 * signal: they are read at once. */
static void resume_reading(struct flosse_conn *c) {
  struct ev_loop *ev = c->ctx->loop->ev;
  ev_io_start(ev, &c->rio);
  if (c->ssl && SSL_pending(c->ssl) > 0) ev_feed_event(ev, &c->rio, EV_READ);
}

/* No more requests on c: it closes once its output is sent, lingering
 * first when the client may still be sending (linger, or unanswered
 * pipelined bytes kept). */
static void start_draining(struct flosse_conn *c, int linger) {
  c->keep_alive = 0;
  if ((linger || c->in.len) && !c->parent) c->linger = FLOSSE_LINGER_WANTED;
  if (set_state(c, FLOSSE_CONN_DRAINING) != FLOSSE_OK) return;
  flosse_tq_remove(&c->rd);
  ev_io_stop(c->ctx->loop->ev, &c->rio);
  want_flush(c);
}

/* Writes what the socket takes of iov: sendmsg, or TLS records. */
static ssize_t sock_write(struct flosse_conn *c, struct iovec *iov, int n) {
  if (!c->ssl) {
    /* sendmsg rather than writev: a socket needs no file-position lock. */
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return sendmsg(c->fd, &msg, MSG_NOSIGNAL);
  }
  int want_read = 0;
  ssize_t w = flosse_tls_writev(c->ssl, iov, n, &want_read);
  if (w < 0 && errno == EAGAIN && want_read) {
    c->tls_write_blocked = 1; /* the next read retries the write */
    errno = EINTR;            /* not a full socket: wait for input, not EV_WRITE */
    return -2;
  }
  return w;
}

/* An HTTP/2 session's output is made as the socket takes it: at most this
 * much is framed ahead, so a client that does not read holds its frames
 * in nghttp2 (whose limits then end it) rather than in our queue. */
#define H2_AHEAD (64 << 10)

void flosse_conn_flush(struct flosse_conn *c) {
  struct flosse_conns *cs = c->ctx;
  struct iovec iov[IOV_BATCH];
  if (c->state == FLOSSE_CONN_CLOSED) return;
  if (c->parent) { /* a stream: its session frames it */
    cs->h2->stream_ready(c);
    return;
  }
  int more = c->h2 && cs->h2->produce(c, H2_AHEAD);
  if (c->state == FLOSSE_CONN_CLOSED) return;
  for (int rounds = 0; c->out.len > 0;) {
    int n = flosse_buf_iov(&c->out, iov, IOV_BATCH);
    size_t want = 0;
    for (int i = 0; i < n; i++) want += iov[i].iov_len;
    ssize_t w = sock_write(c, iov, n);
    if (w == -2) break;
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ev_io_start(cs->loop->ev, &c->wio);
        /* The clock runs from the last byte the socket took. */
        if (!flosse_tq_member(&c->wr)) flosse_tq_touch(&cs->write_tq, &c->wr);
        break;
      }
      flosse_conn_close(c, errno == EPIPE || errno == ECONNRESET ? NULL : strerror(errno));
      return;
    }
    if (w > 0 && flosse_tq_member(&c->wr)) flosse_tq_touch(&cs->write_tq, &c->wr);
    FLOSSE_METRIC_ADD(cs->loop->metrics, bytes_sent, (uint64_t)w);
    flosse_buf_consume(&c->out, (size_t)w);
    if ((size_t)w < want && !c->ssl) { /* the socket is full: wait for EV_WRITE, not EAGAIN
                                          (TLS takes a record at a time: go on) */
      ev_io_start(cs->loop->ev, &c->wio);
      if (!flosse_tq_member(&c->wr)) flosse_tq_touch(&cs->write_tq, &c->wr);
      break;
    }
    if (c->out.len == 0 && more) {
      /* A few rounds a turn: one session must not keep the others waiting. */
      if (++rounds == 16) {
        want_flush(c);
        break;
      }
      more = cs->h2->produce(c, H2_AHEAD);
      if (c->state == FLOSSE_CONN_CLOSED) return;
    }
  }
  if (c->out.len == 0) {
    flosse_tq_remove(&c->wr);
    if (!c->tls_read_blocked) ev_io_stop(cs->loop->ev, &c->wio);
    if (c->state == FLOSSE_CONN_DRAINING) {
      if (c->linger == FLOSSE_LINGER_WANTED && !c->peer_closed) {
        /* Our FIN goes out after the answer; the client's bytes are read
         * and dropped until its own FIN, bounded in time. */
        c->linger = FLOSSE_LINGER_ON;
        shutdown(c->fd, SHUT_WR);
        flosse_tq_touch(&cs->linger_tq, &c->rd);
        ev_io_start(cs->loop->ev, &c->rio);
      } else if (c->linger != FLOSSE_LINGER_ON) {
        flosse_conn_close(c, NULL);
      }
      return;
    }
  }
  if (c->out.len <= cs->cfg->low_water) {
    if (c->in_paused) want_run(c);
    if (c->want_drained) {
      c->want_drained = 0;
      if (c->up) cs->cb->drained(c);
    }
  }
}

static void flush_job(struct flosse_job *j) {
  flosse_conn_flush(flosse_container_of(j, struct flosse_conn, flush));
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_conn *c = flosse_container_of(w, struct flosse_conn, wio);
  if (c->tls_read_blocked) { /* a handshake message waited for room */
    c->tls_read_blocked = 0;
    read_now(c);
    if (c->state == FLOSSE_CONN_CLOSED) return;
  }
  flosse_conn_flush(c);
}

int flosse_conn_full(struct flosse_conn *c) {
  if (c->out.len <= c->ctx->cfg->high_water) return 0;
  c->want_drained = 1;
  return 1;
}

void flosse_conn_wrote(struct flosse_conn *c) {
  if (c->hbq) flosse_tq_touch(c->hbq, &c->hb);
  want_flush(c);
}

void flosse_conn_heartbeat(struct flosse_conn *c, double interval) {
  flosse_tq_remove(&c->hb);
  c->hbq = interval > 0 ? hbq_for(c->ctx, interval) : NULL;
  if (c->hbq) flosse_tq_touch(c->hbq, &c->hb);
}

int flosse_conn_respond(struct flosse_conn *c, int status, const char *ctype,
                        const char *body, size_t len) {
  struct flosse_response_conn rc = flosse_conn_response(c);
  c->status = status;
  flosse_metrics_status(c->ctx->loop->metrics, status);
  int r = flosse_response_simple(&c->out, status, ctype, body, len, c->head, &rc);
  want_flush(c);
  return r;
}

int flosse_conn_begin_body(struct flosse_conn *c) {
  if (set_state(c, FLOSSE_CONN_STREAMING) != FLOSSE_OK) return FLOSSE_ERR;
  want_flush(c);
  return FLOSSE_OK;
}

void flosse_conn_end_response(struct flosse_conn *c) {
  flosse_tq_remove(&c->hb);
  c->hbq = NULL;
  if (c->state != FLOSSE_CONN_HANDLING && c->state != FLOSSE_CONN_STREAMING) return;
  log_access(c);
  free(c->reqline);
  c->reqline = NULL;
  memcpy(c->remote, c->peer, sizeof c->remote); /* the next request may be another client's */
  want_flush(c);
  if (!c->keep_alive || c->parent || (c->peer_closed && !c->in.len)) {
    start_draining(c, 0); /* lingers if requests pipelined behind this one go unanswered */
    return;
  }
  if (set_state(c, FLOSSE_CONN_READING) != FLOSSE_OK) return;
  flosse_tq_touch(&c->ctx->header_tq, &c->rd);
  if (!ev_is_active(&c->rio) && !c->peer_closed && !c->in_paused) resume_reading(c);
  /* Pipelined requests are parsed at the end of the turn, not from here,
   * so a burst of them cannot recurse. */
  if (c->in.len) want_run(c);
}

/* After a framing error nothing that follows on the connection can be
 * trusted, so every refusal closes once its answer is sent. */
void flosse_conn_refuse(struct flosse_conn *c, int status, const char *why) {
  char body[64];
  int n = snprintf(body, sizeof body, "%s\n", flosse_response_reason(status));
  flosse_log(FLOSSE_LOG_WARN, "refused %s: %d %s", c->remote, status,
             why ? why : flosse_response_reason(status));
  c->keep_alive = 0;
  /* An HTTP/1.1 request refused is not read far enough to trust its
   * method; an HTTP/2 stream's came whole, in its own field. */
  c->head = c->parent && c->http && c->http->parser.method == HTTP_HEAD;
  c->req_base = c->out.total;
  c->events = 0;
  if (!c->req_start) c->req_start = ev_now(c->ctx->loop->ev);
  flosse_conn_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n);
  log_access(c);
  start_draining(c, 1); /* the rest of a refused request may still be on its way */
}

static void log_access(struct flosse_conn *c) {
  if (flosse_log_level < FLOSSE_LOG_INFO) return;
  double took = c->req_start ? ev_time() - c->req_start : 0;
  flosse_log_access(c->remote, c->reqline, c->status, took, c->events,
                    (unsigned long long)(c->out.total - c->req_base));
  c->req_start = 0;
}

/* ---- reading requests ------------------------------------------------------ */

/* The parsed request goes up: what the transport decides about it first
 * (keep-alive, the access line's fields), then the callback. */
static void hand_up(struct flosse_conn *c) {
  struct flosse_http *h = c->http;
  flosse_tq_remove(&c->rd);
  /* A client that half-closed gets "Connection: close" on its last answer.
   * An HTTP/2 stream's body ends with the stream, as a close-delimited
   * one does (no chunks: DATA frames delimit it). */
  c->keep_alive = !c->parent && flosse_http_keep_alive(h) && !(c->peer_closed && !c->in.len);
  c->http10 = c->parent || (h->parser.http_major == 1 && h->parser.http_minor == 0);
  c->head = h->parser.method == HTTP_HEAD;
  c->req_start = ev_now(c->ctx->loop->ev);
  c->req_base = c->out.total;
  c->events = 0;
  c->status = 0;
  memcpy(c->remote, c->peer, sizeof c->remote);
  free(c->reqline);
  /* Credentials in the query are redacted before the cut, so that a token
   * across it is not half kept. */
  char url[FLOSSE_REQLINE_URL];
  size_t ulen = flosse_redact_url(&redacted, flosse_http_str(h, h->url), h->url.len, url, sizeof url);
  const char *method = http_method_str((enum http_method)h->parser.method);
  size_t mlen = strlen(method);
  c->reqline = malloc(mlen + ulen + 2); /* exact: an idle stream holds it */
  if (c->reqline) {
    memcpy(c->reqline, method, mlen);
    c->reqline[mlen] = ' ';
    memcpy(c->reqline + mlen + 1, url, ulen);
    c->reqline[mlen + 1 + ulen] = '\0';
  }
  if (set_state(c, FLOSSE_CONN_HANDLING) != FLOSSE_OK) return;
  c->ctx->cb->request(c, h);
  /* The request is the layer above's now; the next one gets a fresh reader. */
  release_http(c);
}

struct flosse_http *flosse_conn_reader(struct flosse_conn *c) {
  struct flosse_conns *cs = c->ctx;
  char *store = NULL;
  size_t cap = 0;
  if (cs->spare_http) { /* the last finished reader, store and all */
    c->http = cs->spare_http;
    cs->spare_http = NULL;
    store = c->http->store;
    cap = c->http->store_cap;
  } else {
    c->http = malloc(sizeof *c->http);
  }
  if (!c->http) return NULL;
  flosse_http_init(c->http, &cs->cfg->http);
  c->http->store = store;
  c->http->store_cap = cap;
  return c->http;
}

/* Parses request bytes into the connection's reader (a fresh one per
 * request). Returns what http-parser said, *used the bytes it took; a
 * malformed request has been refused when it returns FLOSSE_HTTP_ERROR. */
static enum flosse_http_rc parse(struct flosse_conn *c, const char *p, size_t len, size_t *used) {
  *used = 0;
  if (!c->http && !flosse_conn_reader(c)) {
    flosse_conn_close(c, "out of memory");
    return FLOSSE_HTTP_ERROR;
  }
  enum flosse_http_rc rc = flosse_http_feed(c->http, p, len, used);
  switch (rc) {
    case FLOSSE_HTTP_MORE:
      if (c->http->expect_continue == 1 && c->http->headers_done) {
        /* curl and others wait for this before they send a body. */
        c->http->expect_continue = 2;
        if (flosse_response_status(&c->out, 100) == FLOSSE_OK &&
            flosse_buf_append(&c->out, "\r\n", 2) == FLOSSE_OK)
          want_flush(c);
      }
      break;
    case FLOSSE_HTTP_ERROR:
      flosse_conn_refuse(c, c->http->status, c->http->error);
      break;
    case FLOSSE_HTTP_DONE:
      break;
  }
  return rc;
}

/* Answers the requests kept in c->in, oldest first, a few per turn. While
 * the client does not read its answers, no more of its requests are
 * parsed (nor read): output stays bounded whatever it pipelines. */
static void parse_kept(struct flosse_conn *c) {
  struct flosse_conns *cs = c->ctx;
  for (int budget = 16; c->state == FLOSSE_CONN_READING && c->in.len; budget--) {
    if (c->out.len > cs->cfg->high_water) {
      c->in_paused = 1;
      ev_io_stop(cs->loop->ev, &c->rio);
      return;
    }
    if (budget == 0) {
      want_run(c); /* let everyone else have a turn */
      return;
    }
    size_t used;
    enum flosse_http_rc rc = parse(c, flosse_rbuf_data(&c->in), c->in.len, &used);
    if (c->state == FLOSSE_CONN_CLOSED) return;
    flosse_rbuf_consume(&c->in, used);
    if (rc != FLOSSE_HTTP_DONE) return;
    hand_up(c);
  }
  if (c->in_paused) {
    c->in_paused = 0;
    if (c->state != FLOSSE_CONN_CLOSED && c->state != FLOSSE_CONN_DRAINING && !c->peer_closed)
      resume_reading(c);
  }
  /* The client half-closed and everything it sent has been answered. */
  if (c->state == FLOSSE_CONN_READING && c->peer_closed && !c->in.len) start_draining(c, 0);
}

static void run_job(struct flosse_job *j) {
  struct flosse_conn *c = flosse_container_of(j, struct flosse_conn, run);
  if (c->close_reason) flosse_conn_close(c, c->close_reason);
  else if (c->parent) c->ctx->h2->stream_run(c);
  else if (c->state == FLOSSE_CONN_READING) parse_kept(c);
}

/* Bytes that came while a response runs: at most what one more request
 * head may need is kept. The rest is dropped, and the connection closes
 * once the response ends, but it is still read, so that the client
 * leaving (EOF, a reset) is seen at once. */
static void keep_input(struct flosse_conn *c, const char *p, size_t n) {
  size_t limit = c->ctx->cfg->http.max_header;
  size_t room = c->in.len < limit ? limit - c->in.len : 0;
  size_t keep = n < room ? n : room;
  if (keep && flosse_rbuf_append(&c->in, p, keep) != FLOSSE_OK) {
    flosse_conn_close(c, "out of memory");
    return;
  }
  if (keep < n && !c->in_dropped) {
    c->in_dropped = 1;
    c->keep_alive = 0;
    c->linger = FLOSSE_LINGER_WANTED;
    flosse_log(FLOSSE_LOG_WARN, "%s %s: more than max_header_bytes sent during the response; "
               "dropped, the connection closes after it", c->remote, c->reqline ? c->reqline : "-");
  }
}

/* Reads from the socket, through TLS when it has a session. */
static ssize_t sock_read(struct flosse_conn *c, char *buf, size_t len) {
  if (!c->ssl) return read(c->fd, buf, len);
  int want_write = 0;
  ssize_t n = flosse_tls_read(c->ssl, buf, len, &want_write);
  if (n < 0 && errno == EAGAIN && want_write) {
    c->tls_read_blocked = 1;
    ev_io_start(c->ctx->loop->ev, &c->wio);
  }
  if (c->tls_write_blocked && (n > 0 || errno == EAGAIN)) {
    c->tls_write_blocked = 0;
    want_flush(c);
  }
  return n;
}

/* The client preface of HTTP/2 (RFC 9113 3.4): 1 if p starts with it, 0 if
 * it cannot, -1 if too few bytes came to tell. */
static int h2_preface(const char *p, size_t n) {
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  size_t k = n < sizeof preface - 1 ? n : sizeof preface - 1;
  if (memcmp(p, preface, k) != 0) return 0;
  return k == sizeof preface - 1 ? 1 : -1;
}

/* The first bytes of a connection say which protocol it speaks. Returns 1
 * when they were taken here (HTTP/2, or too few to tell yet), 0 when they
 * are HTTP/1.1's, for the caller to read as usual. */
static int choose_protocol(struct flosse_conn *c, const char *buf, size_t n) {
  struct flosse_conns *cs = c->ctx;
  const char *p = buf;
  size_t len = n;
  if (c->in.len) { /* a preface split over reads: judged whole */
    if (flosse_rbuf_append(&c->in, buf, n) != FLOSSE_OK) {
      flosse_conn_close(c, "out of memory");
      return 1;
    }
    p = flosse_rbuf_data(&c->in);
    len = c->in.len;
  }
  int h2 = cs->h2 ? h2_preface(p, len) : 0;
  if (h2 < 0) {
    if (!c->in.len && flosse_rbuf_append(&c->in, buf, n) != FLOSSE_OK) flosse_conn_close(c, "out of memory");
    return 1;
  }
  c->proto_known = 1;
  if (!h2) {
    if (!c->in.len) return 0;
    parse_kept(c); /* HTTP/1.1 after all: what was kept is its first request */
    return 1;
  }
  if (set_state(c, FLOSSE_CONN_HANDLING) != FLOSSE_OK || set_state(c, FLOSSE_CONN_STREAMING) != FLOSSE_OK ||
      cs->h2->begin(c) != FLOSSE_OK)
    return 1;
  release_http(c);
  if (cs->h2->input(c, p, len) == FLOSSE_OK) want_flush(c);
  if (c->state != FLOSSE_CONN_CLOSED) flosse_rbuf_consume(&c->in, c->in.len);
  return 1;
}

static void read_now(struct flosse_conn *c) {
  char buf[READ_CHUNK];
  ssize_t n = sock_read(c, buf, sizeof buf);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    flosse_conn_close(c, errno == ECONNRESET || errno == EPROTO ? NULL : strerror(errno));
    return;
  }
  if (n == 0) {
    if (c->state == FLOSSE_CONN_HANDLING || (c->state == FLOSSE_CONN_READING && c->in.len && c->proto_known)) {
      /* A half-close after a request still deserves its answer, and
       * pipelined requests theirs. */
      c->peer_closed = 1;
      ev_io_stop(c->ctx->loop->ev, &c->rio);
      if (c->state == FLOSSE_CONN_HANDLING && !c->in.len) c->keep_alive = 0;
      return;
    }
    /* The client went away; for a stream this is the usual end. */
    flosse_conn_close(c, NULL);
    return;
  }
  if (c->h2) {
    if (c->ctx->h2->input(c, buf, (size_t)n) == FLOSSE_OK) want_flush(c);
    return;
  }
  switch (c->state) {
    case FLOSSE_CONN_READING:
      if (!c->proto_known && choose_protocol(c, buf, (size_t)n)) return;
      if (!c->in.len && c->out.len <= c->ctx->cfg->high_water) {
        /* The usual case: straight from this read, only the rest is kept. */
        size_t used;
        if (parse(c, buf, (size_t)n, &used) != FLOSSE_HTTP_DONE) return;
        if (used < (size_t)n && flosse_rbuf_append(&c->in, buf + used, (size_t)n - used) != FLOSSE_OK) {
          flosse_conn_close(c, "out of memory");
          return;
        }
        hand_up(c);
        return;
      }
      if (flosse_rbuf_append(&c->in, buf, (size_t)n) != FLOSSE_OK) {
        flosse_conn_close(c, "out of memory");
        return;
      }
      parse_kept(c);
      return;
    case FLOSSE_CONN_HANDLING:
    case FLOSSE_CONN_STREAMING:
      keep_input(c, buf, (size_t)n);
      return;
    default: /* draining: the answer is on its way and the connection closes after it;
                lingering: what the client still sends is dropped */
      return;
  }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  struct flosse_conn *c = flosse_container_of(w, struct flosse_conn, rio);
  read_now(c);
  /* TLS may have decrypted more than was read: its turn comes again at
   * the next iteration, after everyone else's. */
  if (c->state != FLOSSE_CONN_CLOSED && c->ssl && ev_is_active(&c->rio) && SSL_pending(c->ssl) > 0)
    ev_feed_event(loop, &c->rio, EV_READ);
}

/* ---- timeouts ------------------------------------------------------------------- */

static void on_heartbeat(struct flosse_tq *tq, struct flosse_tq_node *n) {
  struct flosse_conn *c = flosse_container_of(n, struct flosse_conn, hb);
  if (c->state != FLOSSE_CONN_STREAMING) return;
  /* Bytes still queued mean the stream is not idle, only the client slow. */
  if (c->out.len == 0 && c->up) c->ctx->cb->idle(c);
  if (c->state == FLOSSE_CONN_STREAMING) flosse_tq_touch(tq, n);
}

static void on_header_timeout(struct flosse_tq *tq, struct flosse_tq_node *n) {
  (void)tq;
  struct flosse_conn *c = flosse_container_of(n, struct flosse_conn, rd);
  if (c->h2) {
    c->ctx->h2->idle(c);
    return;
  }
  if (c->state != FLOSSE_CONN_READING) return;
  if ((c->http && c->http->started) || c->in.len)
    flosse_conn_refuse(c, 408, "request headers not received in time");
  else
    flosse_conn_close(c, NULL); /* an idle connection: nothing to answer */
}

static void on_linger_timeout(struct flosse_tq *tq, struct flosse_tq_node *n) {
  (void)tq;
  flosse_conn_close(flosse_container_of(n, struct flosse_conn, rd), NULL);
}

static void on_write_timeout(struct flosse_tq *tq, struct flosse_tq_node *n) {
  (void)tq;
  flosse_conn_close(flosse_container_of(n, struct flosse_conn, wr),
                    "write timeout: the client stopped reading");
}

/* ---- for HTTP/2 -------------------------------------------------------------- */

struct flosse_conn *flosse_conn_new_stream(struct flosse_conn *c) {
  struct flosse_conn *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->ctx = c->ctx;
  s->fd = -1;
  s->state = FLOSSE_CONN_READING;
  s->parent = c;
  s->h2 = c->h2;
  s->proto_known = 1;
  flosse_buf_init(&s->out);
  memcpy(s->peer, c->peer, sizeof s->peer);
  memcpy(s->remote, c->peer, sizeof s->remote);
  flosse_job_init(&s->run, run_job);
  flosse_job_init(&s->flush, flush_job);
  flosse_tq_node_init(&s->rd);
  flosse_tq_node_init(&s->wr);
  flosse_tq_node_init(&s->hb);
  flosse_list_init(&s->node);
  flosse_list_init(&s->sibling);
  ev_io_init(&s->rio, on_read, -1, EV_READ); /* never started: stopping them is harmless */
  ev_io_init(&s->wio, on_write, -1, EV_WRITE);
  return s;
}

void flosse_conn_hand_up(struct flosse_conn *s) {
  if (s->state == FLOSSE_CONN_READING && s->http) hand_up(s);
}

void flosse_conn_took(struct flosse_conn *s, size_t n) {
  if (!n) return;
  flosse_buf_consume(&s->out, n);
  struct flosse_conns *cs = s->ctx;
  if (s->out.len == 0) flosse_tq_remove(&s->wr);
  else flosse_tq_touch(&cs->write_tq, &s->wr); /* the clock runs from the last byte taken */
  if (s->want_drained && s->out.len <= cs->cfg->low_water && !s->drain_due) {
    s->drain_due = 1;
    want_run(s);
  }
}

void flosse_conn_drained(struct flosse_conn *s) {
  s->drain_due = 0;
  if (s->state == FLOSSE_CONN_CLOSED || !s->want_drained || s->out.len > s->ctx->cfg->low_water) return;
  s->want_drained = 0;
  if (s->up) s->ctx->cb->drained(s);
}

void flosse_conn_finish(struct flosse_conn *c) {
  if (c->state == FLOSSE_CONN_DRAINING || c->state == FLOSSE_CONN_CLOSED) return;
  start_draining(c, 0);
}

void flosse_conn_want_run(struct flosse_conn *c) { want_run(c); }
void flosse_conn_want_flush(struct flosse_conn *c) { want_flush(c); }

void flosse_conn_idle_clock(struct flosse_conn *c, int on) {
  if (on) flosse_tq_touch(&c->ctx->header_tq, &c->rd);
  else flosse_tq_remove(&c->rd);
}

void flosse_conn_last_write(struct flosse_conn *c) {
  struct iovec iov[IOV_BATCH];
  for (int tries = 0; c->fd >= 0 && c->out.len && tries < 16; tries++) {
    int n = flosse_buf_iov(&c->out, iov, IOV_BATCH);
    ssize_t w = sock_write(c, iov, n);
    if (w <= 0) return;
    flosse_buf_consume(&c->out, (size_t)w);
  }
}
