#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "stream.h"

#define READ_CHUNK 16384
#define IOV_BATCH 64

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void on_sleep_done(struct ev_loop *loop, ev_timer *w, int revents);

const char *flosse_http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

static void format_remote(char *out, size_t len, const struct sockaddr *sa) {
  const void *addr = sa->sa_family == AF_INET    ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                     : sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                                 : NULL;
  if (!addr || !inet_ntop(sa->sa_family, addr, out, (socklen_t)len)) snprintf(out, len, "?");
}

struct flosse_conn *flosse_conn_new(struct flosse_server *srv, int fd,
                                    const struct sockaddr *sa) {
  struct flosse_conn *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return NULL;
  }
  c->srv = srv;
  c->fd = fd;
  c->state = FLOSSE_CONN_READING;
  c->thread_ref = c->onclose_ref = c->onclose_arg_ref = LUA_NOREF;
  flosse_buf_init(&c->out);
  format_remote(c->remote, sizeof c->remote, sa);
  flosse_list_init(&c->qnode);
  flosse_list_init(&c->wnode);
  flosse_tq_node_init(&c->rd);
  flosse_tq_node_init(&c->wr);
  flosse_tq_node_init(&c->hb);
  flosse_list_init(&c->subs);
  flosse_list_push(&srv->conns, &c->node);
  srv->nconns++;
  flosse_tq_touch(&srv->header_tq, &c->rd);
  ev_io_init(&c->rio, on_read, fd, EV_READ);
  ev_io_init(&c->wio, on_write, fd, EV_WRITE);
  ev_timer_init(&c->sleep_timer, on_sleep_done, 0., 0.);
  ev_io_start(srv->loop, &c->rio);
  return c;
}

void flosse_conn_free(struct flosse_conn *c) {
  flosse_conn_http_release(c);
  flosse_buf_free(&c->out);
  flosse_rbuf_free(&c->in);
  free(c->reqline);
  free(c);
}

void flosse_conn_close(struct flosse_conn *c, const char *why) {
  if (c->state == FLOSSE_CONN_CLOSED) return;
  struct flosse_server *srv = c->srv;
  if (why) flosse_log(FLOSSE_LOG_WARN, "closed %s %s: %s", c->remote, c->reqline ? c->reqline : "-", why);
  ev_io_stop(srv->loop, &c->rio);
  ev_io_stop(srv->loop, &c->wio);
  ev_timer_stop(srv->loop, &c->sleep_timer);
  flosse_tq_remove(&c->rd);
  flosse_tq_remove(&c->wr);
  flosse_tq_remove(&c->hb);
  c->hbq = NULL;
  int in_request = c->reqline != NULL;
  /* Mark it first: the view's cleanup code must not queue more work on it. */
  c->state = FLOSSE_CONN_CLOSED;
  flosse_stream_release(c); /* unsubscribes: no new posts for c after this */
  flosse_server_unpost(srv, c);
  if (in_request) flosse_conn_log_access(c);
  srv->nconns--;
  __atomic_sub_fetch(srv->conns_open, 1, __ATOMIC_RELAXED);
  close(c->fd);
  c->fd = -1;
  flosse_list_unlink(&c->node);
  flosse_list_unlink(&c->wnode);
  flosse_list_unlink(&c->qnode);
  flosse_list_push(&srv->freeq, &c->qnode);
}

void flosse_conn_want_write(struct flosse_conn *c) {
  if (c->state != FLOSSE_CONN_CLOSED && !flosse_list_linked(&c->wnode))
    flosse_list_push(&c->srv->writeq, &c->wnode);
}

void flosse_conn_want_run(struct flosse_conn *c) {
  if (c->state != FLOSSE_CONN_CLOSED && !flosse_list_linked(&c->qnode))
    flosse_list_push(&c->srv->runq, &c->qnode);
}

void flosse_conn_flush(struct flosse_conn *c) {
  struct iovec iov[IOV_BATCH];
  while (c->out.len > 0) {
    int n = flosse_buf_iov(&c->out, iov, IOV_BATCH);
    size_t want = 0;
    for (int i = 0; i < n; i++) want += iov[i].iov_len;
    /* sendmsg rather than writev: a socket needs no file-position lock. */
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ev_io_start(c->srv->loop, &c->wio);
        /* The clock runs from the last byte the socket took. */
        if (!flosse_tq_member(&c->wr)) flosse_tq_touch(&c->srv->write_tq, &c->wr);
        break;
      }
      flosse_conn_close(c, errno == EPIPE || errno == ECONNRESET ? NULL : strerror(errno));
      return;
    }
    if (w > 0 && flosse_tq_member(&c->wr)) flosse_tq_touch(&c->srv->write_tq, &c->wr);
    flosse_buf_consume(&c->out, (size_t)w);
    if ((size_t)w < want) { /* the socket is full: wait for EV_WRITE, not EAGAIN */
      ev_io_start(c->srv->loop, &c->wio);
      if (!flosse_tq_member(&c->wr)) flosse_tq_touch(&c->srv->write_tq, &c->wr);
      break;
    }
  }
  if (c->out.len == 0) {
    flosse_tq_remove(&c->wr);
    ev_io_stop(c->srv->loop, &c->wio);
    if (c->state == FLOSSE_CONN_DRAINING) {
      if (c->linger == FLOSSE_LINGER_WANTED && !c->peer_closed) {
        /* Our FIN goes out after the answer; the client's bytes are read
         * and dropped until its own FIN, bounded in time. */
        c->linger = FLOSSE_LINGER_ON;
        shutdown(c->fd, SHUT_WR);
        flosse_tq_touch(&c->srv->linger_tq, &c->rd);
        ev_io_start(c->srv->loop, &c->rio);
      } else if (c->linger != FLOSSE_LINGER_ON) {
        flosse_conn_close(c, NULL);
      }
      return;
    }
  }
  if (c->in_paused && c->out.len <= c->srv->cfg.low_water) flosse_conn_want_run(c);
  if (c->wait == FLOSSE_WAIT_DRAIN && c->out.len <= c->srv->cfg.low_water) {
    c->wait = FLOSSE_WAIT_NONE;
    flosse_conn_want_run(c);
  } else if (c->wait == FLOSSE_WAIT_RELAY && c->relay_full && c->out.len <= c->srv->cfg.low_water) {
    flosse_conn_want_run(c);
  }
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  (void)revents;
  flosse_conn_flush(flosse_container_of(w, struct flosse_conn, wio));
}

static void on_sleep_done(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_conn *c = flosse_container_of(w, struct flosse_conn, sleep_timer);
  if (c->wait != FLOSSE_WAIT_SLEEP || !c->T) return;
  c->wait = FLOSSE_WAIT_NONE;
  flosse_stream_resume(c, 0);
}

int flosse_conn_end_head(struct flosse_conn *c, size_t body_len, int has_length) {
  struct flosse_buf *o = &c->out;
  int rc = has_length ? flosse_buf_printf(o, "Content-Length: %zu\r\n", body_len) : FLOSSE_OK;
  if (!c->keep_alive) rc |= flosse_buf_append(o, "Connection: close\r\n", 19);
  else if (c->http10) rc |= flosse_buf_append(o, "Connection: keep-alive\r\n", 24);
  return rc | flosse_buf_append(o, "\r\n", 2);
}

int flosse_conn_respond(struct flosse_conn *c, int status, const char *ctype,
                        const char *body, size_t len) {
  struct flosse_buf *o = &c->out;
  c->status = status;
  int rc = flosse_buf_printf(o, "HTTP/1.1 %d %s\r\n", status, flosse_http_reason(status));
  if (ctype) rc |= flosse_buf_printf(o, "Content-Type: %s\r\n", ctype);
  rc |= flosse_conn_end_head(c, len, 1);
  if (!c->head) rc |= flosse_buf_append(o, body, len);
  flosse_conn_want_write(c);
  return rc ? FLOSSE_ERR : FLOSSE_OK;
}

/* No more requests on c: it closes once its output is sent, lingering
 * first when the client may still be sending (linger, or unanswered
 * pipelined bytes kept). */
static void start_draining(struct flosse_conn *c, int linger) {
  c->keep_alive = 0;
  if (linger || c->in.len) c->linger = FLOSSE_LINGER_WANTED;
  c->state = FLOSSE_CONN_DRAINING;
  flosse_tq_remove(&c->rd);
  ev_io_stop(c->srv->loop, &c->rio);
  flosse_conn_want_write(c);
}

/* After a framing error nothing that follows on the connection can be
 * trusted, so every refusal closes once its answer is sent. */
void flosse_conn_refuse(struct flosse_conn *c, int status, const char *why) {
  char body[64];
  int n = snprintf(body, sizeof body, "%s\n", flosse_http_reason(status));
  flosse_log(FLOSSE_LOG_WARN, "refused %s: %d %s", c->remote, status,
             why ? why : flosse_http_reason(status));
  c->keep_alive = 0;
  c->head = 0;
  c->req_base = c->out.total;
  c->events = 0;
  if (!c->req_start) c->req_start = ev_now(c->srv->loop);
  flosse_conn_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n);
  flosse_conn_log_access(c);
  start_draining(c, 1); /* the rest of a refused request may still be on its way */
}

void flosse_conn_log_access(struct flosse_conn *c) {
  if (flosse_log_level < FLOSSE_LOG_INFO) return;
  double took = c->req_start ? ev_time() - c->req_start : 0;
  flosse_log_write("access %s \"%s\" %d %.3fs events=%lu bytes=%llu", c->remote,
                   c->reqline ? c->reqline : "-", c->status, took, c->events,
                   (unsigned long long)(c->out.total - c->req_base));
  c->req_start = 0;
}

/* Parses request bytes into the connection's reader (a fresh one per
 * request). Returns what http-parser said, *used the bytes it took; a
 * malformed request has been refused when it returns FLOSSE_HTTP_ERROR. */
static enum flosse_http_rc parse(struct flosse_conn *c, const char *p, size_t len, size_t *used) {
  *used = 0;
  if (!c->http) {
    struct flosse_server *srv = c->srv;
    char *store = NULL;
    size_t cap = 0;
    if (srv->spare_http) { /* the last finished reader, store and all */
      c->http = srv->spare_http;
      srv->spare_http = NULL;
      store = c->http->store;
      cap = c->http->store_cap;
    } else {
      c->http = malloc(sizeof *c->http);
    }
    if (!c->http) {
      flosse_conn_close(c, "out of memory");
      return FLOSSE_HTTP_ERROR;
    }
    flosse_http_init(c->http, &srv->cfg.http);
    c->http->store = store;
    c->http->store_cap = cap;
  }
  enum flosse_http_rc rc = flosse_http_feed(c->http, p, len, used);
  switch (rc) {
    case FLOSSE_HTTP_MORE:
      if (c->http->expect_continue == 1 && c->http->headers_done) {
        /* curl and others wait for this before they send a body. */
        c->http->expect_continue = 2;
        if (flosse_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25) == FLOSSE_OK)
          flosse_conn_want_write(c);
      }
      break;
    case FLOSSE_HTTP_ERROR:
      flosse_conn_refuse(c, c->http->status, c->http->error);
      break;
    case FLOSSE_HTTP_DONE:
      flosse_tq_remove(&c->rd);
      break;
  }
  return rc;
}

/* Answers the requests kept in c->in, oldest first, a few per turn. While
 * the client does not read its answers, no more of its requests are
 * parsed (nor read): output stays bounded whatever it pipelines. */
static void parse_kept(struct flosse_conn *c) {
  struct flosse_server *srv = c->srv;
  for (int budget = 16; c->state == FLOSSE_CONN_READING && c->in.len; budget--) {
    if (c->out.len > srv->cfg.high_water) {
      c->in_paused = 1;
      ev_io_stop(srv->loop, &c->rio);
      return;
    }
    if (budget == 0) {
      flosse_conn_want_run(c); /* let everyone else have a turn */
      return;
    }
    size_t used;
    enum flosse_http_rc rc = parse(c, flosse_rbuf_data(&c->in), c->in.len, &used);
    if (c->state == FLOSSE_CONN_CLOSED) return;
    flosse_rbuf_consume(&c->in, used);
    if (rc != FLOSSE_HTTP_DONE) return;
    flosse_stream_dispatch(c);
  }
  if (c->in_paused) {
    c->in_paused = 0;
    if (c->state != FLOSSE_CONN_CLOSED && c->state != FLOSSE_CONN_DRAINING && !c->peer_closed)
      ev_io_start(srv->loop, &c->rio);
  }
  /* The client half-closed and everything it sent has been answered. */
  if (c->state == FLOSSE_CONN_READING && c->peer_closed && !c->in.len) start_draining(c, 0);
}

/* Bytes that came while a response runs: at most what one more request
 * head may need is kept. The rest is dropped, and the connection closes
 * once the response ends, but it is still read, so that the client
 * leaving (EOF, a reset) is seen at once. */
static void keep_input(struct flosse_conn *c, const char *p, size_t n) {
  size_t limit = c->srv->cfg.http.max_header;
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

static void on_read(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_conn *c = flosse_container_of(w, struct flosse_conn, rio);
  char buf[READ_CHUNK];
  ssize_t n = read(c->fd, buf, sizeof buf);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    flosse_conn_close(c, errno == ECONNRESET ? NULL : strerror(errno));
    return;
  }
  if (n == 0) {
    if (c->state == FLOSSE_CONN_HANDLING || (c->state == FLOSSE_CONN_READING && c->in.len)) {
      /* A half-close after a request still deserves its answer, and
       * pipelined requests theirs. */
      c->peer_closed = 1;
      ev_io_stop(c->srv->loop, &c->rio);
      if (c->state == FLOSSE_CONN_HANDLING && !c->in.len) c->keep_alive = 0;
      return;
    }
    /* The client went away; for a stream this is the usual end. */
    flosse_conn_close(c, NULL);
    return;
  }
  switch (c->state) {
    case FLOSSE_CONN_READING:
      if (!c->in.len && c->out.len <= c->srv->cfg.high_water) {
        /* The usual case: straight from this read, only the rest is kept. */
        size_t used;
        if (parse(c, buf, (size_t)n, &used) != FLOSSE_HTTP_DONE) return;
        if (used < (size_t)n && flosse_rbuf_append(&c->in, buf + used, (size_t)n - used) != FLOSSE_OK) {
          flosse_conn_close(c, "out of memory");
          return;
        }
        flosse_stream_dispatch(c);
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

void flosse_conn_request_done(struct flosse_conn *c) {
  flosse_tq_remove(&c->hb);
  c->hbq = NULL;
  if (c->state == FLOSSE_CONN_CLOSED) return;
  flosse_conn_log_access(c);
  free(c->reqline);
  c->reqline = NULL;
  if (!c->keep_alive || (c->peer_closed && !c->in.len)) {
    start_draining(c, 0); /* lingers if requests pipelined behind this one go unanswered */
    return;
  }
  c->state = FLOSSE_CONN_READING;
  flosse_tq_touch(&c->srv->header_tq, &c->rd);
  if (!ev_is_active(&c->rio) && !c->peer_closed && !c->in_paused) ev_io_start(c->srv->loop, &c->rio);
  /* Pipelined requests are parsed from the prepare watcher, not from here,
   * so a burst of them cannot recurse. */
  if (c->in.len) flosse_conn_want_run(c);
}

int flosse_conn_queue_msg(struct flosse_conn *c, struct flosse_msg *m) {
  int rc = c->chunked ? flosse_buf_append_seg(&c->out, m->seg)
                      : flosse_buf_append_range(&c->out, m->seg, m->frame_off, m->frame_len);
  if (rc == FLOSSE_OK) c->events++;
  return rc;
}

/* Moves what the relayed subscription has queued to the output queue:
 * messages were framed at publish time, so no Lua runs and nothing is
 * copied. Pauses above the high-water mark (the subscription's backlog
 * fills meanwhile); the flush that gets below the low-water mark resumes. */
static void relay(struct flosse_conn *c) {
  enum { BATCH = 64 };
  struct flosse_msg *ms[BATCH];
  size_t n, queued = 0;
  int failed = 0;
  c->relay_full = 0;
  do {
    if (c->out.len > c->srv->cfg.high_water) {
      c->relay_full = 1;
      break;
    }
    n = flosse_sub_take(c->relay, ms, BATCH);
    for (size_t i = 0; i < n; i++) {
      if (!failed) failed = flosse_conn_queue_msg(c, ms[i]) != FLOSSE_OK;
      flosse_msg_unref(ms[i]);
    }
    queued += n;
  } while (n == BATCH && !failed);
  if (failed) {
    flosse_conn_close(c, "out of memory");
    return;
  }
  if (!queued) return;
  if (c->hbq) flosse_tq_touch(c->hbq, &c->hb);
  /* Written now, not in the flush pass after every other subscriber has
   * taken its messages: a fan-out's first writes leave sooner. */
  if (!ev_is_active(&c->wio)) flosse_conn_flush(c);
}

void flosse_conn_run(struct flosse_conn *c) {
  if (c->drop_reason) {
    flosse_conn_close(c, c->drop_reason);
    return;
  }
  if (c->wait == FLOSSE_WAIT_RELAY) {
    relay(c);
    return;
  }
  if (c->T) {
    if (c->wait == FLOSSE_WAIT_NONE) flosse_stream_resume(c, 0);
    return;
  }
  if (c->state == FLOSSE_CONN_READING) parse_kept(c);
}

void flosse_conn_http_release(struct flosse_conn *c) {
  if (!c->http) return;
  /* One spare per worker spares a malloc and a store per request; a store
   * grown by a big request is not kept. */
  if (!c->srv->spare_http && c->http->store_cap <= 4096) {
    c->srv->spare_http = c->http;
  } else {
    flosse_http_free(c->http);
    free(c->http);
  }
  c->http = NULL;
}

void flosse_conn_stream_wrote(struct flosse_conn *c) {
  if (c->hbq) flosse_tq_touch(c->hbq, &c->hb);
  flosse_conn_want_write(c);
}

void flosse_conn_on_heartbeat(struct flosse_tq *tq, struct flosse_tq_node *n) {
  struct flosse_conn *c = flosse_container_of(n, struct flosse_conn, hb);
  if (c->state != FLOSSE_CONN_STREAMING) return;
  /* Bytes still queued mean the stream is not idle, only the client slow. */
  if (c->out.len == 0) {
    static const char chunk[] = "d\r\n: heartbeat\n\n\r\n";
    int rc = c->chunked ? flosse_buf_append(&c->out, chunk, sizeof chunk - 1)
                        : flosse_buf_append(&c->out, chunk + 3, 13);
    if (rc != FLOSSE_OK) {
      flosse_conn_close(c, "out of memory");
      return;
    }
    flosse_conn_want_write(c);
  }
  flosse_tq_touch(tq, n);
}

void flosse_conn_on_header_timeout(struct flosse_tq *tq, struct flosse_tq_node *n) {
  (void)tq;
  struct flosse_conn *c = flosse_container_of(n, struct flosse_conn, rd);
  if (c->state != FLOSSE_CONN_READING) return;
  if ((c->http && c->http->started) || c->in.len)
    flosse_conn_refuse(c, 408, "request headers not received in time");
  else
    flosse_conn_close(c, NULL); /* an idle connection: nothing to answer */
}

void flosse_conn_on_linger_timeout(struct flosse_tq *tq, struct flosse_tq_node *n) {
  (void)tq;
  flosse_conn_close(flosse_container_of(n, struct flosse_conn, rd), NULL);
}

void flosse_conn_on_write_timeout(struct flosse_tq *tq, struct flosse_tq_node *n) {
  (void)tq;
  struct flosse_conn *c = flosse_container_of(n, struct flosse_conn, wr);
  flosse_conn_close(c, "write timeout: the client stopped reading");
}

void flosse_conn_wake(struct flosse_conn *c) {
  if (c->wait == FLOSSE_WAIT_RELAY) {
    flosse_conn_want_run(c);
    return;
  }
  if (c->wait != FLOSSE_WAIT_CHANNEL) return;
  c->wait = FLOSSE_WAIT_NONE;
  flosse_conn_want_run(c);
}

void flosse_conn_drop(struct flosse_conn *c) {
  if (c->drop_reason) return;
  c->drop_reason = "channel backlog overflow: the client is too slow (it reconnects with Last-Event-ID)";
  flosse_conn_want_run(c);
}
