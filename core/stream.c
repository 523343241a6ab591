#include "stream.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "log.h"
#include "lvalues.h"
#include "metrics.h"
#include "response.h"
#include "sse.h"
#include "wait_channel.h"
#include "wait_drain.h"

#define FLAT_FRAME_MAX 2048
#define TEXT "text/plain; charset=utf-8"

static const struct flosse_task_callbacks task_callbacks;

struct flosse_stream *flosse_stream_of(struct flosse_task *t) {
  return t && t->cb == &task_callbacks ? t->owner : NULL;
}

/* ---- writing ----------------------------------------------------------------- */

static int write_head(struct flosse_stream *s);

/* Queues flat[0, len): a frame already built in place, with its chunk
 * framing when the response is chunked. */
static int queue_flat(struct flosse_stream *s, const char *flat, size_t len) {
  struct flosse_conn *c = s->conn;
  if (flosse_buf_append(&c->out, flat, len) != FLOSSE_OK) {
    flosse_conn_close(c, "out of memory");
    return FLOSSE_ERR;
  }
  flosse_conn_wrote(c);
  return FLOSSE_OK;
}

/* Queues a checked event. A small frame is built on the stack and copied
 * once; a big one is built in a segment of its own and queued by reference. */
static int queue_event(struct flosse_stream *s, const struct flosse_sse_event *ev) {
  struct flosse_conn *c = s->conn;
  if (s->head_pending && write_head(s) != FLOSSE_OK) return FLOSSE_ERR;
  size_t flen = flosse_sse_frame_len(ev);
  if (flen <= FLAT_FRAME_MAX) { /* framed straight into its chunk: one copy, into the queue */
    char flat[FLAT_FRAME_MAX + FLOSSE_RESPONSE_CHUNK_EXTRA];
    size_t n = flosse_response_chunk_open(flat, flen, s->chunked);
    n += flosse_sse_frame_flat(flat + n, ev);
    n += flosse_response_chunk_close(flat + n, s->chunked);
    return queue_flat(s, flat, n);
  }
  uint32_t off, len;
  struct flosse_seg *seg = flosse_sse_chunk(ev, &off, &len);
  int rc = !seg ? FLOSSE_ERR
           : s->chunked ? flosse_buf_append_seg(&c->out, seg)
                        : flosse_buf_append_range(&c->out, seg, off, len);
  flosse_seg_release(seg);
  if (rc != FLOSSE_OK) {
    flosse_conn_close(c, "out of memory");
    return FLOSSE_ERR;
  }
  flosse_conn_wrote(c);
  return FLOSSE_OK;
}

#define ERROR_TEXT_MAX 512 /* bytes of an error's text an error event carries */

/* On a running stream, queues an error event with msg (cut at
 * ERROR_TEXT_MAX bytes) and the id. */
static void queue_error_event(struct flosse_stream *s, const char *msg, const char id[13]) {
  if (!s || !s->sse || !flosse_conn_is_open(s->conn)) return;
  char flat[FLOSSE_JSON_STRING_MAX(ERROR_TEXT_MAX) + 64];
  size_t mlen = strnlen(msg, ERROR_TEXT_MAX);
  size_t flen = (size_t)snprintf(flat, sizeof flat, "{\"message\":");
  flen += flosse_json_string(flat + flen, msg, mlen);
  flen += (size_t)snprintf(flat + flen, sizeof flat - flen, ",\"error_id\":\"%s\"}", id);
  struct flosse_sse_event ev = {"error", 5, flat, flen, NULL, 0, -1};
  queue_event(s, &ev);
}

void flosse_stream_report_error(struct flosse_stream *s, const char *log_text,
                                const char *client_text, char id[13]) {
  flosse_log_error(id, s ? s->conn->reqline : NULL, log_text);
  if (s) queue_error_event(s, s->ctx->cfg->debug ? client_text : "Internal server error", id);
}

/* Writes a started stream's head, its retry frame, and arms its heartbeat. */
static int write_head(struct flosse_stream *s) {
  struct flosse_conn *c = s->conn;
  static const char ctype[] = "text/event-stream; charset=utf-8";
  static const char cache[] = "no-cache, no-transform";
  s->head_pending = 0;
  c->status = 200;
  flosse_metrics_status(s->ctx->tasks->loop->metrics, 200);
  flosse_metrics_stream(s->ctx->tasks->loop->metrics, s->route, 1);
  s->counted = 1;
  if (!s->chunked) flosse_conn_no_keep_alive(c);
  struct flosse_response_conn rc = flosse_conn_response(c);
  int r = flosse_response_status(&c->out, 200);
  r |= flosse_response_header(&c->out, "Content-Type", 12, ctype, sizeof ctype - 1);
  r |= flosse_response_header(&c->out, "Cache-Control", 13, cache, sizeof cache - 1);
  r |= flosse_response_header(&c->out, "X-Accel-Buffering", 17, "no", 2);
  if (s->head_extra_len) r |= flosse_buf_append(&c->out, s->head_extra, s->head_extra_len);
  r |= flosse_response_end_head(&c->out, s->chunked ? FLOSSE_BODY_CHUNKED : FLOSSE_BODY_CLOSE, 0, &rc);
  if (r != FLOSSE_OK || flosse_conn_begin_body(c) != FLOSSE_OK) return FLOSSE_ERR;
  if (s->head_retry >= 0) {
    struct flosse_sse_event ev = {NULL, 0, NULL, 0, NULL, 0, s->head_retry};
    if (queue_event(s, &ev) != FLOSSE_OK) return FLOSSE_ERR;
  }
  flosse_conn_heartbeat(c, s->head_heartbeat);
  return FLOSSE_OK;
}

int flosse_stream_head_header(const char *name, size_t len) {
  static const char *names[] = {"content-type", "cache-control", "x-accel-buffering"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0) return 1;
  return 0;
}

int flosse_stream_start(struct flosse_stream *s, long long retry, double heartbeat,
                        const char *extra, size_t extra_len) {
  if (s->sse) return FLOSSE_ERR;
  if (extra_len) {
    char *copy = malloc(extra_len);
    if (!copy) return FLOSSE_ERR;
    memcpy(copy, extra, extra_len);
    free(s->head_extra);
    s->head_extra = copy;
    s->head_extra_len = extra_len;
  }
  s->sse = 1;
  s->head_pending = 1;
  s->head_retry = retry;
  s->head_heartbeat = heartbeat < 0 ? s->ctx->cfg->heartbeat : heartbeat;
  return FLOSSE_OK;
}

/* ---- ending ------------------------------------------------------------------ */

/* Lets go of the task; a relayed stream's close handler runs here too. */
static void release(struct flosse_stream *s) {
  if (s->counted) flosse_metrics_stream(s->ctx->tasks->loop->metrics, s->route, -1);
  s->counted = 0;
  flosse_guard_free(s->guard);
  s->guard = NULL;
  flosse_task_release(&s->task);
  flosse_wait_relay_cancel(&s->relay);
  if (s->relay_pending) {
    flosse_sub_close(s->relay_pending);
    free(s->relay_pending);
    s->relay_pending = NULL;
  }
  if (s->onclose_ref != LUA_NOREF)
    flosse_task_run_close_handler(s->ctx->tasks->loop->L, &s->onclose_ref, &s->onclose_arg_ref,
                                  s->conn->reqline);
}

/* Ends the request with a short text answer instead of what it was to
 * send: body is built (and copied off the thread) before the thread closes. */
static void answer_instead(struct flosse_stream *s, int status, const char *body, int n) {
  struct flosse_conn *c = s->conn;
  s->head_pending = 0;
  s->sse = 0;
  release(s);
  if (!flosse_conn_is_open(c)) return;
  flosse_conn_respond(c, status, TEXT, body, (size_t)n);
  flosse_conn_end_response(c);
}

/* A request that failed before anything was sent gets a 500. */
static void fail_request_as(struct flosse_stream *s, const char *log_text, const char *client_text) {
  char id[13], body[640];
  flosse_stream_report_error(s, log_text, client_text, id);
  int n = s->ctx->cfg->debug
              ? snprintf(body, sizeof body, "Internal Server Error: %.500s (error id %s)\n", client_text, id)
              : snprintf(body, sizeof body, "Internal Server Error (error id %s)\n", id);
  answer_instead(s, 500, body, n);
}

static void fail_request(struct flosse_stream *s, const char *why) { fail_request_as(s, why, why); }

/* A refusal before anything was sent: its status and text (and a newline,
 * unless exact), one log line. */
static void refuse_request(struct flosse_stream *s, int status, const char *text, int exact) {
  char body[256];
  int n = snprintf(body, sizeof body, exact ? "%s" : "%s\n", text);
  flosse_log(FLOSSE_LOG_WARN, "refused %s %s: %d %s", s->conn->remote,
             s->conn->reqline ? s->conn->reqline : "-", status, text);
  answer_instead(s, status, body, n);
}

static void end_stream(struct flosse_stream *s) {
  struct flosse_conn *c = s->conn;
  if (s->chunked) {
    if (flosse_response_terminator(&c->out) != FLOSSE_OK) {
      flosse_conn_close(c, "out of memory");
      return;
    }
  } else {
    flosse_conn_no_keep_alive(c); /* a close-delimited body ends with the connection */
  }
  release(s);
  if (flosse_conn_is_open(c)) flosse_conn_end_response(c);
}

/* The handler returned status, headers, body: an ordinary response. */
static void finish_response(struct flosse_stream *s, lua_State *T, int nres) {
  struct flosse_conn *c = s->conn;
  int isnum = 0;
  lua_Integer status = nres >= 1 ? lua_tointegerx(T, -nres, &isnum) : 0;
  if (!isnum || status < 100 || status > 599) {
    lua_pop(T, nres);
    fail_request(s, "the request handler returned no valid status");
    return;
  }
  c->status = (int)status;
  flosse_metrics_status(s->ctx->tasks->loop->metrics, (int)status);
  size_t blen = 0;
  const char *body = nres >= 3 ? lua_tolstring(T, -nres + 2, &blen) : NULL;
  struct flosse_buf *o = &c->out;
  int rc = flosse_response_status(o, (int)status);
  if (nres >= 2) rc |= flosse_lvalues_headers(T, lua_absindex(T, -nres + 1), o, c->reqline);
  int bodyless = status == 204 || status == 304 || status < 200;
  struct flosse_response_conn rconn = flosse_conn_response(c);
  rc |= flosse_response_end_head(o, bodyless ? FLOSSE_BODY_NONE : FLOSSE_BODY_LENGTH, blen, &rconn);
  if (body && !c->head && !bodyless) rc |= flosse_buf_append(o, body, blen);
  lua_pop(T, nres);
  if (rc != FLOSSE_OK) {
    flosse_conn_close(c, "out of memory");
    return;
  }
  release(s);
  if (flosse_conn_is_open(c)) flosse_conn_end_response(c);
}

/* ---- ended early: expiry and revocation ---------------------------------------- */

/* The stream's credential expired or its user was revoked: a last event
 * (no id: a reconnect resumes where the stream was), then its end, as a
 * graceful shutdown ends it: view closed, on_close run, terminator queued. */
static void guard_end(struct flosse_guard *g, const char *event) {
  struct flosse_stream *s = g->owner;
  struct flosse_conn *c = s->conn;
  if (!s->sse || !flosse_conn_is_open(c)) return;
  int expired = strcmp(event, "flosse-expired") == 0;
  flosse_log(FLOSSE_LOG_INFO, "%s %s %s: %s", expired ? "expired" : "revoked", c->remote,
             c->reqline ? c->reqline : "-",
             expired ? "the credential expired" : "the user was revoked");
  const char *data = expired ? "{\"reason\":\"expired\"}" : "{\"reason\":\"revoked\"}";
  struct flosse_sse_event ev = {event, strlen(event), data, strlen(data), NULL, 0, -1};
  if (queue_event(s, &ev) != FLOSSE_OK) return; /* the connection is closed */
  end_stream(s);
}

void flosse_streams_init(struct flosse_streams *ss, struct flosse_tasks *tasks,
                         const struct flosse_config *cfg) {
  ss->tasks = tasks;
  ss->cfg = cfg;
  ss->dispatch_ref = LUA_NOREF;
  flosse_guards_init(&ss->guards, tasks->loop, guard_end);
}

enum flosse_admit flosse_stream_admit(struct flosse_stream *s, const struct flosse_guard_opts *o) {
  enum flosse_admit rc;
  struct flosse_guard *g = flosse_guard_new(&s->ctx->guards, s, o, &rc);
  if (!g) return rc;
  flosse_guard_free(s->guard);
  s->guard = g;
  return FLOSSE_ADMIT_OK;
}

/* ---- the task's callbacks ---------------------------------------------------- */

/* "file:line: " of the Lua code that yielded (the suspended thread's first
 * Lua frame), or "" when there is none: a bad yield names its line. */
static void yield_site(lua_State *T, char *out, size_t cap) {
  lua_Debug ar;
  out[0] = '\0';
  for (int level = 0; level < 4 && lua_getstack(T, level, &ar); level++) {
    if (!lua_getinfo(T, "Sl", &ar)) break;
    if (ar.currentline > 0 && ar.what[0] != 'C') {
      snprintf(out, cap, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
  }
}

static int on_event(struct flosse_task *t, int nres) {
  struct flosse_stream *s = t->owner;
  struct flosse_conn *c = s->conn;
  lua_State *T = t->T, *L = s->ctx->tasks->loop->L;
  if (!s->sse) {
    lua_pop(T, nres);
    fail_request(s, "a value was yielded before the stream started: a plain view (path(route, fn)) "
                    "cannot send events; make it flosse.sse_stream(fn) (or: coroutine.yield in a "
                    "permission or authentication class?)");
    return 0;
  }
  if (!lua_checkstack(L, nres + 16)) {
    lua_pop(T, nres);
    flosse_conn_close(c, "out of Lua stack");
    return 0;
  }
  int base = lua_gettop(L) + 1;
  lua_xmove(T, L, nres);
  struct flosse_msg *m = nres == 1 ? flosse_lvalues_testmsg(L, base) : NULL;
  if (m) {
    int rc = flosse_msg_append(&c->out, m, s->chunked);
    lua_settop(L, base - 1);
    if (rc != FLOSSE_OK) {
      flosse_conn_close(c, "out of memory");
      return 0;
    }
    c->events++;
    FLOSSE_METRIC_INC(s->ctx->tasks->loop->metrics, events_sent);
    flosse_conn_wrote(c);
  } else {
    char err[256];
    struct flosse_sse_event ev;
    if (flosse_lvalues_event(L, base, nres, &ev, err, sizeof err) == FLOSSE_OK) { /* checks ev */
      c->events++;
      FLOSSE_METRIC_INC(s->ctx->tasks->loop->metrics, events_sent);
      queue_event(s, &ev);
      lua_settop(L, base - 1);
    } else {
      lua_settop(L, base - 1);
      char msg[520], id[13], site[200];
      yield_site(T, site, sizeof site);
      snprintf(msg, sizeof msg, "%scannot send what the view yielded: %s", site, err);
      flosse_stream_report_error(s, msg, msg, id);
    }
  }
  if (!flosse_conn_is_open(c) || !t->T) return 0;
  if (flosse_conn_full(c)) {
    flosse_wait_drain_arm(t);
    return 0;
  }
  return 1;
}

/* A stream's head goes out once its view first yields, waits (but for a
 * wait that holds it) or ends, unless it ends with a refusal; and a view that handed its subscription
 * over is let go here, once it is suspended. */
static int on_resumed(struct flosse_task *t, int st) {
  struct flosse_stream *s = t->owner;
  struct flosse_conn *c = s->conn;
  int held = st == LUA_YIELD && t->wait && t->wait->holds_head;
  if (s->head_pending && s->sse && !held &&
      !(st != LUA_OK && st != LUA_YIELD && flosse_task_is_refusal(t->T, -1)) && write_head(s) != FLOSSE_OK) {
    flosse_conn_close(c, "out of memory");
    return FLOSSE_ERR;
  }
  if (st == LUA_YIELD && t->wait == &flosse_wait_relay && s->relay_pending) {
    struct flosse_sub *sub = s->relay_pending;
    s->relay_pending = NULL;
    lua_settop(t->T, 0);
    /* The close handler stays with the stream; the thread goes. */
    flosse_task_take_close_handler(t, &s->onclose_ref, &s->onclose_arg_ref);
    flosse_task_release(t);
    flosse_wait_relay_arm(&s->relay, sub, c, s->chunked);
    return FLOSSE_ERR;
  }
  return FLOSSE_OK;
}

static void on_returned(struct flosse_task *t, int nres) {
  struct flosse_stream *s = t->owner;
  if (s->sse) {
    lua_pop(t->T, nres);
    end_stream(s);
  } else {
    finish_response(s, t->T, nres);
  }
}

static void on_failed(struct flosse_task *t, const struct flosse_task_error *e) {
  struct flosse_stream *s = t->owner;
  struct flosse_conn *c = s->conn;
  int started = s->sse && !s->head_pending;
  if (e->refusal && !started) {
    refuse_request(s, e->refusal, e->refusal_text, e->refusal_exact);
    return;
  }
  char id[13];
  if (e->refusal) { /* the stream has begun: the refusal's text is its error event */
    flosse_log_error_id(id);
    flosse_log(FLOSSE_LOG_WARN, "refused %s %s: %d %s (error id %s)", c->remote,
               c->reqline ? c->reqline : "-", e->refusal, e->refusal_text, id);
    queue_error_event(s, e->refusal_text, id); /* a refusal's text is meant for the client */
  } else if (started) {
    flosse_stream_report_error(s, e->log_text, e->client_text, id);
  } else {
    fail_request_as(s, e->log_text, e->client_text);
    return;
  }
  if (flosse_conn_is_open(c)) end_stream(s);
}

static void on_notified(struct flosse_task *t, int drop) {
  struct flosse_stream *s = t->owner;
  if (drop)
    flosse_conn_close_soon(s->conn, "channel backlog overflow: the client is too slow "
                                    "(it reconnects with Last-Event-ID)");
  else
    flosse_wait_channel_fire(t);
}

static const struct flosse_task_callbacks task_callbacks = {
    on_event, on_returned, on_failed, on_resumed, on_notified,
};

/* ---- the connection's callbacks ---------------------------------------------- */

static void free_stream(struct flosse_job *j);

static void start_fail(struct flosse_stream *s, const char *what) {
  char msg[300];
  snprintf(msg, sizeof msg, "cannot start the request: %s", what);
  fail_request(s, msg);
}

static int push_request(lua_State *L) {
  flosse_lvalues_push_request(L, lua_touserdata(L, 1), lua_touserdata(L, 2));
  return 1;
}

static void on_request(struct flosse_conn *c, const struct flosse_http *h) {
  struct flosse_streams *ctx = c->ctx->data;
  struct flosse_stream *s = c->up;
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) {
      flosse_conn_close(c, "out of memory");
      return;
    }
    s->conn = c;
    s->ctx = ctx;
    s->onclose_ref = s->onclose_arg_ref = LUA_NOREF;
    flosse_job_init(&s->free, free_stream);
    c->up = s;
  }
  s->sse = s->head_pending = 0;
  s->chunked = !c->http10;
  s->head_retry = -1;
  s->head_heartbeat = 0;
  free(s->head_extra); /* a kept-alive connection's previous stream's */
  s->head_extra = NULL;
  s->head_extra_len = 0;
  lua_State *L = ctx->tasks->loop->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->dispatch_ref);
  lua_pushcfunction(L, push_request);
  lua_pushlightuserdata(L, (void *)h);
  lua_pushlightuserdata(L, c->remote);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    start_fail(s, msg);
    return;
  }
  if (flosse_task_start(&s->task, ctx->tasks, &task_callbacks, s, L, 1) != FLOSSE_OK) {
    start_fail(s, "out of memory");
    return;
  }
  s->task.name = c->reqline;
  flosse_task_resume(&s->task, 1);
}

static void on_drained(struct flosse_conn *c) {
  struct flosse_stream *s = c->up;
  if (flosse_wait_relay_active(&s->relay)) {
    if (s->relay.full) flosse_wait_relay_fire(&s->relay);
  } else if (s->task.T) {
    flosse_wait_drain_fire(&s->task);
  }
}

static void on_idle(struct flosse_conn *c) {
  struct flosse_stream *s = c->up;
  static const char text[] = " heartbeat";
  char flat[sizeof text + 2 + FLOSSE_RESPONSE_CHUNK_EXTRA];
  size_t n = flosse_response_chunk_open(flat, sizeof text + 2, s->chunked); /* ':' text "\n\n" */
  n += flosse_sse_comment_flat(flat + n, sizeof flat - n, text, sizeof text - 1);
  n += flosse_response_chunk_close(flat + n, s->chunked);
  FLOSSE_METRIC_INC(s->ctx->tasks->loop->metrics, heartbeats); /* before it can reach the client */
  queue_flat(s, flat, n);
}

/* Graceful shutdown: a stream is ended (view closed, on_close run,
 * terminator queued), an unanswered request gets 503, and the connection
 * closes once its output is sent. */
static void on_shutdown(struct flosse_conn *c) {
  struct flosse_stream *s = c->up;
  if (!s) return;
  if (s->sse && !s->head_pending) {
    end_stream(s);
  } else {
    static const char body[] = "Service Unavailable\n";
    answer_instead(s, 503, body, sizeof body - 1);
  }
}

static void free_stream(struct flosse_job *j) {
  struct flosse_stream *s = flosse_container_of(j, struct flosse_stream, free);
  free(s->head_extra);
  free(s);
}

static void on_closed(struct flosse_conn *c) {
  struct flosse_stream *s = c->up;
  release(s);
  c->up = NULL;
  flosse_loop_free_later(s->ctx->tasks->loop, &s->free, free_stream);
}

const struct flosse_conn_callbacks flosse_stream_conn_callbacks = {
    on_request, on_drained, on_idle, on_shutdown, on_closed,
};
