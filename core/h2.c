#include "h2.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

struct flosse_h2 {
  nghttp2_session *ng;
  struct flosse_conn *c;        /* the connection */
  struct flosse_list streams;   /* its stream connections */
  unsigned nstreams;
  unsigned stopping : 1;        /* graceful stop: GOAWAY once no stream is left */
  unsigned ending : 1;          /* GOAWAY submitted */
  unsigned closing : 1;         /* the connection closes: its streams go without frames */
  unsigned told : 1;            /* its GOAWAY's reason is logged */
  double tokens;                /* frames that carry no request (the flood bucket) */
  ev_tstamp refilled;
};

/* A stream's h2_flags. */
enum {
  F_HEAD_SENT = 1,  /* its HEADERS are submitted */
  F_COMPLETE = 2,   /* its request is whole: it goes up at its next run */
  F_GONE = 4,       /* nghttp2 closed it (ended, or reset by the client) */
  F_DEFERRED = 8,   /* its DATA waits for more output */
  F_ENDED = 16,     /* END_STREAM is on its way */
};

/* PING, SETTINGS, WINDOW_UPDATE, PRIORITY, RST_STREAM and empty DATA cost
 * their sender little and us a turn each: a connection may send a burst of
 * FLOOD_BURST of them and then FLOOD_RATE a second (a browser sends a few).
 * nghttp2 bounds what such frames make us queue (its outbound ACK limit),
 * this bounds the work. */
#define FLOOD_BURST 10000.0
#define FLOOD_RATE 2000.0
/* Rapid reset (CVE-2023-44487): nghttp2's stream reset rate limit. */
#define RESET_BURST 1000
#define RESET_RATE 33
/* What a connection closed early may still try to send (its GOAWAY last). */
#define H2_LAST_WORDS (256 << 10)
/* The longest response head it turns into HEADERS. */
#define MAX_HEAD (256 << 10)

static struct flosse_h2 *of(void *user_data) { return user_data; }

static void end_session(struct flosse_h2 *h2, uint32_t code, const char *why) {
  if (h2->ending) return;
  h2->ending = 1;
  if (why) {
    flosse_log(FLOSSE_LOG_WARN, "HTTP/2 %s: %s; GOAWAY", h2->c->remote, why);
    h2->told = 1;
  }
  nghttp2_session_terminate_session(h2->ng, code);
  flosse_conn_want_flush(h2->c);
}

static int flood_check(struct flosse_h2 *h2) {
  ev_tstamp now = ev_now(h2->c->ctx->loop->ev);
  h2->tokens += (now - h2->refilled) * FLOOD_RATE;
  if (h2->tokens > FLOOD_BURST) h2->tokens = FLOOD_BURST;
  h2->refilled = now;
  if (--h2->tokens >= 0) return 0;
  end_session(h2, NGHTTP2_ENHANCE_YOUR_CALM, "a flood of control frames");
  return -1;
}

/* ---- requests in --------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
  struct flosse_h2 *h2 = of(ud);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  struct flosse_conn *s = flosse_conn_new_stream(h2->c);
  if (!s || !flosse_conn_reader(s)) {
    free(s);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset, the rest goes on */
  }
  s->stream_id = f->hd.stream_id;
  flosse_list_push(&h2->streams, &s->sibling);
  if (h2->nstreams++ == 0) flosse_conn_idle_clock(h2->c, 0);
  nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, s);
  return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
  (void)flags;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0; /* trailers */
  struct flosse_conn *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
  (void)ud;
  if (!s || !s->http || s->state != FLOSSE_CONN_READING) return 0;
  /* Past a limit the reader keeps its status (431, 414, ...) for the
   * answer, and nothing more. */
  flosse_http_h2_field(s->http, (const char *)name, nlen, (const char *)value, vlen);
  return 0;
}

/* The request goes up (or is refused) at the end of the turn, not from
 * inside nghttp2: a stream reset in the same read never reaches a view. */
static void complete(struct flosse_conn *s) {
  s->h2_flags |= F_COMPLETE;
  flosse_conn_want_run(s);
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud) {
  (void)flags;
  (void)ud;
  struct flosse_conn *s = nghttp2_session_get_stream_user_data(ng, id);
  if (!s || !s->http || s->state != FLOSSE_CONN_READING || (s->h2_flags & F_COMPLETE)) return 0;
  /* A body over the limit is answered (413) at once, not at its end. */
  if (flosse_http_h2_body(s->http, (const char *)data, len)) complete(s);
  return 0;
}

static int on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
  struct flosse_h2 *h2 = of(ud);
  switch (f->hd.type) {
    case NGHTTP2_DATA:
      if (f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) && flood_check(h2)) return 0;
      break;
    case NGHTTP2_HEADERS:
      break;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
    case NGHTTP2_WINDOW_UPDATE:
    case NGHTTP2_PRIORITY:
    case NGHTTP2_RST_STREAM:
      flood_check(h2);
      return 0;
    default:
      return 0;
  }
  struct flosse_conn *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
  if (!s || !s->http || s->state != FLOSSE_CONN_READING) return 0;
  /* Whole, or refused already (431 in its head): its answer need not wait. */
  if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) || s->http->status) complete(s);
  return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud) {
  (void)code;
  (void)ud;
  struct flosse_conn *s = nghttp2_session_get_stream_user_data(ng, id);
  if (!s) return 0;
  nghttp2_session_set_stream_user_data(ng, id, NULL);
  s->h2_flags |= F_GONE;
  flosse_conn_want_run(s); /* closed at its run: the layer above lets go there */
  return 0;
}

/* A GOAWAY with an error nghttp2 decided on its own (a reset flood, a
 * protocol error) gets its log line here. */
static int on_frame_sent(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
  (void)ng;
  struct flosse_h2 *h2 = of(ud);
  if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR && !h2->told) {
    h2->told = 1;
    flosse_log(FLOSSE_LOG_WARN, "HTTP/2 %s: GOAWAY %s", h2->c->remote,
               nghttp2_http2_strerror(f->goaway.error_code));
  }
  return 0;
}

static int on_error(nghttp2_session *ng, int code, const char *msg, size_t len, void *ud) {
  (void)ng;
  (void)code;
  flosse_log(FLOSSE_LOG_DEBUG, "HTTP/2 %s: %.*s", of(ud)->c->remote, (int)len, msg);
  return 0;
}

/* ---- answers out ---------------------------------------------------------------- */

/* DATA from the stream's output, as much as flow control lets through. */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  (void)src;
  (void)ud;
  struct flosse_conn *s = nghttp2_session_get_stream_user_data(ng, id);
  if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* it went: reset it */
  size_t took = flosse_buf_peek(&s->out, buf, length);
  flosse_conn_took(s, took);
  if (s->out.len == 0 && s->state == FLOSSE_CONN_DRAINING) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    s->h2_flags |= F_ENDED;
    return (ssize_t)took;
  }
  if (!took) {
    s->h2_flags |= F_DEFERRED;
    return NGHTTP2_ERR_DEFERRED;
  }
  return (ssize_t)took;
}

static int hop_header(const char *name, size_t len) {
  static const char *const hop[] = {"connection", "transfer-encoding", "keep-alive", "proxy-connection",
                                    "upgrade", NULL};
  for (int i = 0; hop[i]; i++)
    if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0) return 1;
  return 0;
}

/* The head the response writer wrote (status line, "Name: value" lines,
 * a blank line: the server's own bytes, checked where they were made) as
 * HEADERS, without what HTTP/2 forbids (connection-specific fields). 0, 1
 * when the head is not whole yet, -1 on failure (the stream is reset). */
static int submit_head(struct flosse_h2 *h2, struct flosse_conn *s) {
  size_t cap = s->out.len < MAX_HEAD ? s->out.len : MAX_HEAD;
  char *head = malloc(cap + 1);
  if (!head) return -1;
  size_t len = flosse_buf_peek(&s->out, head, cap);
  head[len] = '\0';
  char *end = strstr(head, "\r\n\r\n");
  if (!end || len < 13 || memcmp(head, "HTTP/1.", 7) != 0) {
    int rc = len == MAX_HEAD || (len >= 7 && memcmp(head, "HTTP/1.", 7) != 0) ? -1 : 1;
    free(head);
    return rc;
  }
  size_t headlen = (size_t)(end - head) + 4;
  int lines = 0;
  for (char *p = head; p < end; p++)
    if (*p == '\n') lines++;
  nghttp2_nv *nv = malloc(sizeof *nv * (size_t)(lines + 1));
  if (!nv) {
    free(head);
    return -1;
  }
  int nnv = 0;
  nv[nnv++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)head + 9, 7, 3, NGHTTP2_NV_FLAG_NONE};
  char *line = strstr(head, "\r\n") + 2;
  while (line < end + 2) {
    char *eol = strstr(line, "\r\n");
    char *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon && !hop_header(line, (size_t)(colon - line))) {
      for (char *p = line; p < colon; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32); /* HTTP/2 field names are lowercase */
      char *v = colon + 1;
      while (v < eol && *v == ' ') v++;
      nv[nnv++] = (nghttp2_nv){(uint8_t *)line, (uint8_t *)v, (size_t)(colon - line), (size_t)(eol - v),
                               NGHTTP2_NV_FLAG_NONE};
    }
    line = eol + 2;
  }
  flosse_conn_took(s, headlen);
  /* A bodyless answer (HEAD, 304) ends with its HEADERS. */
  int bodyless = s->out.len == 0 && s->state == FLOSSE_CONN_DRAINING;
  nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = read_body};
  int rv = nghttp2_submit_response(h2->ng, s->stream_id, nv, (size_t)nnv, bodyless ? NULL : &prd);
  free(nv);
  free(head);
  if (rv != 0) return -1;
  s->h2_flags |= F_HEAD_SENT | (bodyless ? F_ENDED : 0);
  return 0;
}

static void stream_ready(struct flosse_conn *s) {
  struct flosse_h2 *h2 = s->h2;
  if (s->h2_flags & (F_GONE | F_ENDED)) return;
  if (!(s->h2_flags & F_HEAD_SENT)) {
    if (!s->out.len) return;
    int rc = submit_head(h2, s);
    if (rc > 0) return;
    if (rc < 0) {
      flosse_conn_close(s, "HTTP/2: the response head could not be sent");
      return;
    }
  } else if (s->h2_flags & F_DEFERRED) {
    s->h2_flags &= (unsigned)~F_DEFERRED;
    nghttp2_session_resume_data(h2->ng, s->stream_id);
  }
  /* The clock of a stream that flow control holds back (write_timeout). */
  if (s->out.len && !flosse_tq_member(&s->wr)) flosse_tq_touch(&s->ctx->write_tq, &s->wr);
  flosse_conn_want_flush(h2->c);
}

static void stream_run(struct flosse_conn *s) {
  struct flosse_h2 *h2 = s->h2;
  if (s->state == FLOSSE_CONN_CLOSED) return;
  if (s->h2_flags & F_GONE) {
    /* Ended (END_STREAM both ways), or reset by the client: its task ends. */
    flosse_conn_close(s, NULL);
    return;
  }
  if ((s->h2_flags & F_COMPLETE) && s->state == FLOSSE_CONN_READING && s->http) {
    s->h2_flags &= (unsigned)~F_COMPLETE;
    struct flosse_http *h = s->http;
    flosse_http_h2_done(h);
    if (h2->stopping) flosse_conn_refuse(s, 503, "the server is shutting down");
    else if (h->status) flosse_conn_refuse(s, h->status, h->error);
    else flosse_conn_hand_up(s);
    return;
  }
  if (s->drain_due) flosse_conn_drained(s);
}

static void stream_closed(struct flosse_conn *s) {
  struct flosse_h2 *h2 = s->h2;
  flosse_list_unlink(&s->sibling);
  h2->nstreams--;
  if (h2->closing) return;
  if (!(s->h2_flags & F_GONE)) {
    /* Closed before its end (a write timeout, no memory, a failed head):
     * the client hears it from a reset of this stream alone. */
    nghttp2_session_set_stream_user_data(h2->ng, s->stream_id, NULL);
    nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, s->stream_id, NGHTTP2_CANCEL);
  }
  if (h2->nstreams == 0 && !h2->stopping) flosse_conn_idle_clock(h2->c, 1);
  flosse_conn_want_flush(h2->c);
}

/* ---- the session ------------------------------------------------------------------ */

static int begin(struct flosse_conn *c) {
  struct flosse_h2 *h2 = calloc(1, sizeof *h2);
  nghttp2_session_callbacks *cbs = NULL;
  nghttp2_option *opt = NULL;
  if (!h2 || nghttp2_session_callbacks_new(&cbs) || nghttp2_option_new(&opt)) goto fail;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_sent);
  nghttp2_option_set_stream_reset_rate_limit(opt, RESET_BURST, RESET_RATE);
  int rv = nghttp2_session_server_new2(&h2->ng, cbs, h2, opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  cbs = NULL;
  opt = NULL;
  if (rv) goto fail;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->ctx->cfg->h2_max_streams},
  };
  if (nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, iv, 1)) {
    nghttp2_session_del(h2->ng);
    goto fail;
  }
  h2->c = c;
  h2->tokens = FLOOD_BURST;
  h2->refilled = ev_now(c->ctx->loop->ev);
  flosse_list_init(&h2->streams);
  c->h2 = h2;
  flosse_conn_idle_clock(c, 1);
  return FLOSSE_OK;
fail:
  if (cbs) nghttp2_session_callbacks_del(cbs);
  if (opt) nghttp2_option_del(opt);
  free(h2);
  flosse_conn_close(c, "out of memory");
  return FLOSSE_ERR;
}

static int input(struct flosse_conn *c, const char *p, size_t n) {
  struct flosse_h2 *h2 = c->h2;
  ssize_t rv = nghttp2_session_mem_recv(h2->ng, (const uint8_t *)p, n);
  if (rv < 0) {
    /* Fatal for the connection (a bad preface, a flood nghttp2 caught):
     * it has queued its GOAWAY where it could. */
    flosse_log(FLOSSE_LOG_WARN, "HTTP/2 %s: %s; closing", c->remote, nghttp2_strerror((int)rv));
    h2->ending = h2->told = 1;
    flosse_conn_finish(c);
    return FLOSSE_ERR;
  }
  return FLOSSE_OK;
}

static int produce(struct flosse_conn *c, size_t max) {
  struct flosse_h2 *h2 = c->h2;
  if (h2->stopping && !h2->nstreams) end_session(h2, NGHTTP2_NO_ERROR, NULL);
  while (c->out.len < max) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(h2->ng, &data);
    if (n < 0) {
      flosse_conn_close(c, nghttp2_strerror((int)n));
      return 0;
    }
    if (n == 0) break;
    if (flosse_buf_append(&c->out, data, (size_t)n) != FLOSSE_OK) {
      flosse_conn_close(c, "out of memory");
      return 0;
    }
  }
  if (c->out.len >= max) return 1;
  if (!nghttp2_session_want_read(h2->ng) && !nghttp2_session_want_write(h2->ng)) flosse_conn_finish(c);
  return 0;
}

static void shutdown_session(struct flosse_conn *c) {
  struct flosse_h2 *h2 = c->h2;
  h2->stopping = 1;
  struct flosse_list *it = h2->streams.next;
  while (it != &h2->streams) {
    struct flosse_conn *s = flosse_container_of(it, struct flosse_conn, sibling);
    it = it->next;
    if (s->up && (s->state == FLOSSE_CONN_HANDLING || s->state == FLOSSE_CONN_STREAMING))
      c->ctx->cb->shutdown(s);
  }
  flosse_conn_want_flush(c); /* with no stream left, GOAWAY goes now */
}

static void idle(struct flosse_conn *c) {
  if (c->h2->nstreams == 0) end_session(c->h2, NGHTTP2_NO_ERROR, NULL);
}

static void closed(struct flosse_conn *c) {
  struct flosse_h2 *h2 = c->h2;
  if (!h2->ending) {
    /* Closed before its end (the grace period is over, a write failed):
     * a GOAWAY if the socket takes it, so that the client can tell a stop
     * from a crash. */
    h2->ending = 1;
    nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h2->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    const uint8_t *data;
    ssize_t n;
    while (c->out.len < H2_LAST_WORDS && (n = nghttp2_session_mem_send(h2->ng, &data)) > 0)
      if (flosse_buf_append(&c->out, data, (size_t)n) != FLOSSE_OK) break;
    flosse_conn_last_write(c);
  }
  h2->closing = 1;
  while (!flosse_list_empty(&h2->streams))
    flosse_conn_close(flosse_container_of(h2->streams.next, struct flosse_conn, sibling), NULL);
  nghttp2_session_del(h2->ng);
  free(h2);
  c->h2 = NULL;
}

const struct flosse_conn_h2_ops flosse_h2_ops = {
    begin, input, produce, stream_ready, stream_run, stream_closed, shutdown_session, idle, closed,
};
