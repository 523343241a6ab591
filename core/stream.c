#include "stream.h"

#include <lauxlib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "json.h"
#include "lalloc.h"
#include "ljson.h"
#include "sse.h"

#if LUA_VERSION_RELEASE_NUM >= 50406
#define flosse_closethread(T, from) lua_closethread((T), (from))
#else
#define flosse_closethread(T, from) ((void)(from), lua_resetthread(T))
#endif

/* Only the core's own waiting functions yield this address, so no value a
 * view yields can be mistaken for a wait. */
const char flosse_wait_key = 'w';
#define wait_key flosse_wait_key

#define REFUSAL_MT "flosse.Refusal"
struct refusal {
  int status;
  char text[240];
};

/* A request thread carries its connection in its extra space (LUA_EXTRASPACE,
 * a pointer's worth). Every other thread holds NULL there: a new thread
 * copies the main thread's, which flosse_stream_init_threads clears, so
 * the main thread and any coroutine a view makes map to no connection. */
static void set_conn_of(lua_State *L, lua_State *T, struct flosse_conn *c) {
  (void)L;
  memcpy(lua_getextraspace(T), &c, sizeof c);
}

struct flosse_conn *flosse_stream_conn_of(lua_State *T);
static struct flosse_conn *conn_of(lua_State *T) { return flosse_stream_conn_of(T); }

struct flosse_conn *flosse_stream_conn_of(lua_State *T) {
  struct flosse_conn *c;
  memcpy(&c, lua_getextraspace(T), sizeof c);
  return c && c->T == T ? c : NULL;
}

void flosse_stream_init_threads(lua_State *L) {
  struct flosse_conn *none = NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  memcpy(lua_getextraspace(lua_tothread(L, -1)), &none, sizeof none);
  lua_pop(L, 1);
}


/* ---- framing Lua values ------------------------------------------------ */

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

/* Pushes the JSON text of L[idx]; returns 0 and sets err on failure. */
static int push_json(lua_State *L, int idx, char *err, size_t errlen) {
  char why[200];
  if (flosse_ljson_encode(L, idx, why, sizeof why)) return 1;
  snprintf(err, errlen, "cannot encode data as JSON: %s", why);
  return 0;
}

/* Data: a string as it is, anything else as JSON (pushed, so it lives
 * until the caller resets the stack). */
static int get_data(lua_State *L, int idx, const char **s, size_t *len, char *err,
                    size_t errlen) {
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    *s = lua_tolstring(L, idx, len);
    return 1;
  }
  if (t == LUA_TFUNCTION || t == LUA_TTHREAD || t == LUA_TUSERDATA ||
      t == LUA_TLIGHTUSERDATA) {
    snprintf(err, errlen, "cannot send a %s as data", lua_typename(L, t));
    return 0;
  }
  if (!push_json(L, idx, err, errlen)) return 0;
  *s = lua_tolstring(L, -1, len);
  return 1;
}

/* An event name or id: a string, or a number written as Lua writes it. */
static int get_text(lua_State *L, int idx, const char *what, const char **s, size_t *len,
                    char *err, size_t errlen) {
  int t = lua_type(L, idx);
  if (t == LUA_TNIL) {
    *s = NULL;
    return 1;
  }
  if (t != LUA_TSTRING && t != LUA_TNUMBER) {
    snprintf(err, errlen, "%s must be a string, not a %s", what, lua_typename(L, t));
    return 0;
  }
  if (t == LUA_TNUMBER) { /* as JSON writes it: an integer exactly, a float shortest */
    char num[FLOSSE_JSON_NUMBER_MAX];
    size_t n = lua_isinteger(L, idx) ? flosse_json_integer(num, (int64_t)lua_tointeger(L, idx))
                                     : flosse_json_double(num, lua_tonumber(L, idx));
    if (n == 0) {
      snprintf(err, errlen, "%s must not be NaN or infinite", what);
      return 0;
    }
    lua_pushlstring(L, num, n);
    *s = lua_tolstring(L, -1, len);
    return 1;
  }
  *s = lua_tolstring(L, idx, len);
  return 1;
}

static int get_retry(lua_State *L, int idx, long long *out, char *err, size_t errlen) {
  int t = lua_type(L, idx);
  *out = -1;
  if (t == LUA_TNIL) return 1;
  if (lua_isinteger(L, idx)) {
    *out = (long long)lua_tointeger(L, idx);
  } else if (t == LUA_TNUMBER) {
    double d = lua_tonumber(L, idx);
    if (d == floor(d) && d >= 0 && d < 9e15) *out = (long long)d;
  } else if (t == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len > 0 && len < 16 && strspn(s, "0123456789") == len) *out = atoll(s);
  }
  if (*out < 0) {
    snprintf(err, errlen, "retry must be a non-negative integer (milliseconds)");
    return 0;
  }
  return 1;
}

int flosse_stream_event(lua_State *L, int base, int n, struct flosse_sse_event *ev, char *err,
                        size_t errlen) {
  memset(ev, 0, sizeof *ev);
  ev->retry = -1;
  if (!lua_checkstack(L, 8)) FAIL("out of stack");
  if (n == 0) FAIL("a view yielded nothing");
  if (n > 3) FAIL("a yield takes at most 3 values (event, data, id), got %d", n);
  if (n == 1 && lua_type(L, base) == LUA_TTABLE) {
    lua_pushliteral(L, "data");
    int t = lua_rawget(L, base);
    if (t == LUA_TNIL) {
      /* A table without a data key is the data itself. */
      if (!get_data(L, base, &ev->data, &ev->data_len, err, errlen)) goto fail;
    } else {
      int d = lua_gettop(L);
      if (!get_data(L, d, &ev->data, &ev->data_len, err, errlen)) goto fail;
      lua_getfield(L, base, "event");
      if (!get_text(L, -1, "event", &ev->event, &ev->event_len, err, errlen)) goto fail;
      lua_getfield(L, base, "id");
      if (!get_text(L, -1, "id", &ev->id, &ev->id_len, err, errlen)) goto fail;
      lua_getfield(L, base, "retry");
      if (!get_retry(L, -1, &ev->retry, err, errlen)) goto fail;
    }
  } else if (n == 1) {
    if (lua_type(L, base) == LUA_TNIL) FAIL("a view yielded nil");
    if (!get_data(L, base, &ev->data, &ev->data_len, err, errlen)) goto fail;
  } else {
    if (lua_type(L, base) != LUA_TSTRING)
      FAIL("the event name (first value) must be a string, not a %s",
           luaL_typename(L, base));
    ev->event = lua_tolstring(L, base, &ev->event_len);
    if (!get_data(L, base + 1, &ev->data, &ev->data_len, err, errlen)) goto fail;
    if (n == 3 && !get_text(L, base + 2, "id", &ev->id, &ev->id_len, err, errlen)) goto fail;
  }
  return flosse_sse_check(ev, err, errlen);
fail:
  return FLOSSE_ERR;
}

int flosse_stream_frame(lua_State *L, int base, int n, struct flosse_buf *out, char *err,
                        size_t errlen) {
  int top = lua_gettop(L);
  struct flosse_sse_event ev;
  int rc = flosse_stream_event(L, base, n, &ev, err, errlen);
  if (rc == FLOSSE_OK) rc = flosse_sse_frame(out, &ev, err, errlen);
  lua_settop(L, top);
  return rc;
}

#undef FAIL

/* ---- errors ------------------------------------------------------------- */

static uint64_t error_seed, error_count;

static void seed_error_ids(void) {
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(&error_seed, sizeof error_seed, 1, f) != 1)
    error_seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
  if (f) fclose(f);
  error_seed |= 1;
}

static void new_error_id(char out[13]) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, seed_error_ids);
  /* splitmix64: distinct ids that do not reveal how many errors there were */
  uint64_t n = __atomic_add_fetch(&error_count, 1, __ATOMIC_RELAXED);
  uint64_t z = error_seed + 0x9e3779b97f4a7c15ULL * n;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  snprintf(out, 13, "%012llx", (unsigned long long)(z & 0xffffffffffffULL));
}

/* Writes s as a JSON string into out (room for cap >= 10 bytes) and
 * returns its length. A text too long for cap is cut, not dropped. */
static size_t json_string(char *out, size_t cap, const char *s) {
  size_t n = 0;
  out[n++] = '"';
  for (; *s && n + 8 < cap; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') {
      out[n++] = '\\';
      out[n++] = (char)ch;
    } else if (ch < 0x20) {
      n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
    } else {
      out[n++] = (char)ch;
    }
  }
  out[n++] = '"';
  return n;
}

#define FLAT_FRAME_MAX 2048

/* Queues a checked event on c's stream, as one chunk when the response is
 * chunked. A small frame is built on the stack and copied once; a big one
 * is built in a segment of its own and queued by reference. */
static int write_head(struct flosse_conn *c);

static int queue_event(struct flosse_conn *c, const struct flosse_sse_event *ev) {
  if (c->head_pending && write_head(c) != FLOSSE_OK) return FLOSSE_ERR;
  size_t flen = flosse_sse_frame_len(ev);
  int rc;
  if (flen <= FLAT_FRAME_MAX) {
    char flat[FLAT_FRAME_MAX + 24];
    size_t n = c->chunked ? flosse_chunk_head(flat, flen) : 0;
    n += flosse_sse_frame_flat(flat + n, ev);
    if (c->chunked) {
      flat[n++] = '\r';
      flat[n++] = '\n';
    }
    rc = flosse_buf_append(&c->out, flat, n);
  } else {
    uint32_t off, len;
    struct flosse_seg *seg = flosse_sse_chunk(ev, &off, &len);
    rc = !seg ? FLOSSE_ERR
         : c->chunked ? flosse_buf_append_seg(&c->out, seg)
                      : flosse_buf_append_range(&c->out, seg, off, len);
    flosse_seg_release(seg);
  }
  if (rc != FLOSSE_OK) {
    flosse_conn_close(c, "out of memory");
    return FLOSSE_ERR;
  }
  flosse_conn_stream_wrote(c);
  return FLOSSE_OK;
}

/* On a running stream, queues an error event with msg and the id. */
static void queue_error_event(struct flosse_conn *c, const char *msg, const char id[13]) {
  if (!c || c->state != FLOSSE_CONN_STREAMING) return;
  char flat[2048];
  size_t flen = (size_t)snprintf(flat, sizeof flat, "{\"message\":");
  flen += json_string(flat + flen, sizeof flat - flen - 40, msg);
  flen += (size_t)snprintf(flat + flen, sizeof flat - flen, ",\"error_id\":\"%s\"}", id);
  struct flosse_sse_event ev = {"error", 5, flat, flen, NULL, 0, -1};
  queue_event(c, &ev);
}

/* Logs an error with a new id and, on a running stream, sends the error
 * event: the text itself in debug mode, a generic one otherwise. */
static void report_error(struct flosse_conn *c, const char *log_text, const char *client_text,
                         char id[13]) {
  new_error_id(id);
  flosse_log(FLOSSE_LOG_ERROR, "error %s %s: %s", id, c && c->reqline ? c->reqline : "-", log_text);
  if (c) queue_error_event(c, c->srv->cfg.debug ? client_text : "Internal server error", id);
}

/* ---- the request thread --------------------------------------------------- */

void flosse_stream_release(struct flosse_conn *c) {
  lua_State *L = c->srv->L;
  while (!flosse_list_empty(&c->subs))
    flosse_sub_close(flosse_container_of(c->subs.next, struct flosse_sub, conn_link));
  if (c->T) {
    lua_State *T = c->T;
    int was = lua_status(T);
    c->T = NULL;
    set_conn_of(L, T, NULL);
    ev_timer_stop(c->srv->loop, &c->sleep_timer);
    c->wait = FLOSSE_WAIT_NONE;
    c->relay = NULL;
    /* Runs the view's pending to-be-closed variables. */
    int st = flosse_closethread(T, L);
    if (st != LUA_OK && (was == LUA_OK || was == LUA_YIELD)) {
      const char *m = lua_tostring(T, -1);
      flosse_log(FLOSSE_LOG_ERROR, "error while closing %s: %s", c->reqline ? c->reqline : "a view",
                 m ? m : "(not a string)");
    }
    struct flosse_server *srv = c->srv;
    /* A clean, reset thread serves the next request: no new lua_State, stack
     * and registry slot per request. Never the one running right now. */
    if (st == LUA_OK && T != srv->resuming && lua_status(T) == LUA_OK &&
        srv->nidle_threads < (int)(sizeof srv->idle_threads / sizeof *srv->idle_threads)) {
      lua_settop(T, 0);
      lua_sethook(T, NULL, 0, 0);
      srv->idle_threads[srv->nidle_threads++] = c->thread_ref;
    } else {
      luaL_unref(L, LUA_REGISTRYINDEX, c->thread_ref);
    }
    c->thread_ref = LUA_NOREF;
  }
  if (c->onclose_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->onclose_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, c->onclose_ref);
    c->onclose_ref = LUA_NOREF;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->onclose_arg_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, c->onclose_arg_ref);
    c->onclose_arg_ref = LUA_NOREF;
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      const char *m = lua_tostring(L, -1);
      flosse_log(FLOSSE_LOG_ERROR, "on_close handler of %s failed: %s", c->reqline ? c->reqline : "a view",
                 m ? m : "(not a string)");
      lua_pop(L, 1);
    }
  }
}

/* A request that failed before anything was sent gets a 500. */
/* Ends the request with a short text answer instead of what it was to
 * send: body is built (and copied off the thread) before the thread closes. */
static void answer_instead(struct flosse_conn *c, int status, const char *body, int n) {
  c->head_pending = 0;
  flosse_stream_release(c);
  if (c->state == FLOSSE_CONN_CLOSED) return;
  c->state = FLOSSE_CONN_HANDLING;
  flosse_conn_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n);
  flosse_conn_request_done(c);
}

static void fail_request_as(struct flosse_conn *c, const char *log_text, const char *client_text) {
  char id[13], body[640];
  report_error(c, log_text, client_text, id);
  int n = c->srv->cfg.debug
              ? snprintf(body, sizeof body, "Internal Server Error: %.500s (error id %s)\n", client_text, id)
              : snprintf(body, sizeof body, "Internal Server Error (error id %s)\n", id);
  answer_instead(c, 500, body, n);
}

static void fail_request(struct flosse_conn *c, const char *why) { fail_request_as(c, why, why); }

/* A refusal before anything was sent: its status and text, one log line. */
static void refuse_request(struct flosse_conn *c, int status, const char *text) {
  char body[sizeof ((struct refusal *)0)->text + 1];
  int n = snprintf(body, sizeof body, "%s\n", text);
  flosse_log(FLOSSE_LOG_WARN, "refused %s %s: %d %s", c->remote, c->reqline ? c->reqline : "-", status,
             text);
  answer_instead(c, status, body, n);
}

int flosse_stream_refuse(lua_State *L, int status, const char *text) {
  struct refusal *r = lua_newuserdatauv(L, sizeof *r, 0);
  r->status = status;
  snprintf(r->text, sizeof r->text, "%s", text);
  luaL_setmetatable(L, REFUSAL_MT);
  return lua_error(L);
}

static int header_name_ok(const char *s, size_t len) {
  if (len == 0) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 32 || ch >= 127 || strchr("()<>@,;:\\\"/[]?={}", ch)) return 0;
  }
  return 1;
}

static int managed_header(const char *s, size_t len) {
  static const char *names[] = {"content-length", "connection", "transfer-encoding"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strlen(names[i]) == len && strncasecmp(names[i], s, len) == 0) return 1;
  return 0;
}

/* The handler returned status, headers, body: an ordinary response. */
static void finish_response(struct flosse_conn *c, lua_State *T, int nres) {
  int isnum = 0;
  lua_Integer status = nres >= 1 ? lua_tointegerx(T, -nres, &isnum) : 0;
  if (!isnum || status < 100 || status > 599) {
    lua_pop(T, nres);
    fail_request(c, "the request handler returned no valid status");
    return;
  }
  c->status = (int)status;
  int hidx = nres >= 2 ? lua_absindex(T, -nres + 1) : 0;
  size_t blen = 0;
  const char *body = nres >= 3 ? lua_tolstring(T, -nres + 2, &blen) : NULL;
  struct flosse_buf *o = &c->out;
  int rc = flosse_buf_printf(o, "HTTP/1.1 %d %s\r\n", (int)status,
                             flosse_http_reason((int)status));
  if (hidx && lua_type(T, hidx) == LUA_TTABLE) {
    lua_pushnil(T);
    while (lua_next(T, hidx)) {
      size_t kl, vl;
      if (lua_type(T, -2) == LUA_TSTRING &&
          (lua_type(T, -1) == LUA_TSTRING || lua_type(T, -1) == LUA_TNUMBER)) {
        const char *k = lua_tolstring(T, -2, &kl);
        lua_pushvalue(T, -1);
        const char *v = lua_tolstring(T, -1, &vl);
        if (!header_name_ok(k, kl) || !flosse_sse_field_ok(v, vl))
          flosse_log(FLOSSE_LOG_WARN, "%s: dropped an unsafe response header", c->reqline);
        else if (!managed_header(k, kl))
          rc |= flosse_buf_printf(o, "%.*s: %.*s\r\n", (int)kl, k, (int)vl, v);
        lua_pop(T, 1);
      }
      lua_pop(T, 1);
    }
  }
  int bodyless = status == 204 || status == 304 || status < 200;
  rc |= flosse_conn_end_head(c, blen, !bodyless);
  if (body && !c->head && !bodyless) rc |= flosse_buf_append(o, body, blen);
  lua_pop(T, nres);
  if (rc != FLOSSE_OK) {
    flosse_conn_close(c, "out of memory");
    return;
  }
  flosse_conn_want_write(c);
  flosse_stream_release(c);
  flosse_conn_request_done(c);
}

static void end_stream(struct flosse_conn *c) {
  if (c->chunked) {
    if (flosse_buf_append(&c->out, "0\r\n\r\n", 5) != FLOSSE_OK) {
      flosse_conn_close(c, "out of memory");
      return;
    }
  } else {
    c->keep_alive = 0; /* a close-delimited body ends with the connection */
  }
  flosse_conn_want_write(c);
  flosse_stream_release(c);
  flosse_conn_request_done(c);
}

static void handle_event(struct flosse_conn *c, lua_State *T, int nres) {
  lua_State *L = c->srv->L;
  if (c->state != FLOSSE_CONN_STREAMING) {
    lua_pop(T, nres);
    fail_request(c, "a value was yielded before the stream started "
                    "(coroutine.yield in a permission or authentication class?)");
    return;
  }
  if (!lua_checkstack(L, nres + 16)) {
    lua_pop(T, nres);
    flosse_conn_close(c, "out of Lua stack");
    return;
  }
  int base = lua_gettop(L) + 1;
  lua_xmove(T, L, nres);
  struct flosse_msg *m = nres == 1 ? flosse_lchannel_testmsg(L, base) : NULL;
  if (m) {
    int rc = flosse_conn_queue_msg(c, m);
    lua_settop(L, base - 1);
    if (rc != FLOSSE_OK) {
      flosse_conn_close(c, "out of memory");
      return;
    }
    flosse_conn_stream_wrote(c);
    return;
  }
  char err[256];
  struct flosse_sse_event ev;
  int rc = flosse_stream_event(L, base, nres, &ev, err, sizeof err); /* checks ev */
  if (rc == FLOSSE_OK) {
    c->events++;
    queue_event(c, &ev);
    lua_settop(L, base - 1);
    return;
  }
  lua_settop(L, base - 1);
  char msg[320], id[13];
  snprintf(msg, sizeof msg, "cannot send what the view yielded: %s", err);
  report_error(c, msg, msg, id);
}

/* Stops a view that ran its instruction budget without yielding. The hook
 * yields rather than raising, so a pcall in the view cannot catch it. */
static void budget_hook(lua_State *T, lua_Debug *ar) {
  (void)ar;
  struct flosse_conn *c = conn_of(T);
  if (c && lua_isyieldable(T)) {
    c->over_budget = 1;
    lua_yield(T, 0);
    return;
  }
  /* A coroutine the view made itself, or a spot that cannot yield. */
  luaL_error(T, "instruction budget exceeded (a loop that never yields?)");
}

static void stop_over_budget(struct flosse_conn *c) {
  char msg[160];
  c->over_budget = 0;
  snprintf(msg, sizeof msg,
           "the view ran %ld instructions without yielding (instruction budget; a loop that never yields?)",
           c->srv->cfg.instruction_budget);
  if (c->state == FLOSSE_CONN_STREAMING) {
    char id[13];
    report_error(c, msg, msg, id);
    if (c->state != FLOSSE_CONN_CLOSED) end_stream(c);
  } else {
    fail_request(c, msg);
  }
}

/* describe_error(err, T) -> message, traceback (a __tostring may raise,
 * so this runs under lua_pcall). */
static int describe_error(lua_State *L) {
  lua_State *T = lua_touserdata(L, 2);
  if (lua_type(L, 1) == LUA_TSTRING) {
    lua_pushvalue(L, 1);
  } else {
    const char *tname = luaL_typename(L, 1);
    lua_pushfstring(L, "(error object is a %s) %s", tname, luaL_tolstring(L, 1, NULL));
    lua_remove(L, -2);
  }
  luaL_traceback(L, T, lua_tostring(L, -1), 0);
  return 2;
}

/* The view (or a permission, or the dispatcher) raised. Nothing in Lua
 * catches it: a pcall frame there would hold a C call's stack reserve in
 * every suspended stream. The dead thread keeps its frames, so the
 * traceback is taken here. */
static void view_failed(struct flosse_conn *c, lua_State *T) {
  lua_State *L = c->srv->L;
  struct refusal *r = luaL_testudata(T, -1, REFUSAL_MT);
  if (r && (c->state != FLOSSE_CONN_STREAMING || c->head_pending)) {
    refuse_request(c, r->status, r->text);
    return;
  }
  if (r) { /* the stream has begun: the refusal's text is its error event */
    char id[13], text[sizeof r->text];
    snprintf(text, sizeof text, "%s", r->text);
    new_error_id(id);
    flosse_log(FLOSSE_LOG_WARN, "refused %s %s: %d %s (error id %s)", c->remote,
               c->reqline ? c->reqline : "-", r->status, text, id);
    queue_error_event(c, text, id); /* a refusal's text is meant for the client */
    if (c->state != FLOSSE_CONN_CLOSED) end_stream(c);
    return;
  }
  int top = lua_gettop(L);
  char msg[512];
  const char *log_text = msg;
  snprintf(msg, sizeof msg, "a view raised an error that cannot be described");
  if (lua_checkstack(L, 8)) {
    lua_pushcfunction(L, describe_error);
    lua_xmove(T, L, 1);
    lua_pushlightuserdata(L, T);
    if (lua_pcall(L, 2, 2, 0) == LUA_OK) {
      snprintf(msg, sizeof msg, "%s", lua_tostring(L, -2));
      log_text = lua_tostring(L, -1);
    }
  }
  if (c->state == FLOSSE_CONN_STREAMING) {
    char id[13];
    report_error(c, log_text, msg, id);
    if (c->state != FLOSSE_CONN_CLOSED) end_stream(c);
  } else {
    fail_request_as(c, log_text, msg);
  }
  lua_settop(L, top);
}

void flosse_stream_resume(struct flosse_conn *c, int nargs) {
  struct flosse_server *srv = c->srv;
  lua_State *T = c->T, *L = srv->L;
  int budget = srv->cfg.resume_budget;
  while (c->T == T && T && c->state != FLOSSE_CONN_CLOSED) {
    int nres = 0;
    c->wait = FLOSSE_WAIT_NONE;
    if (srv->cfg.instruction_budget > 0)
      lua_sethook(T, budget_hook, LUA_MASKCOUNT, (int)srv->cfg.instruction_budget);
    flosse_lalloc_enforce(srv->lalloc, 1);
    lua_State *outer = srv->resuming; /* a view may run another's on_close */
    srv->resuming = T;
    int st = lua_resume(T, L, nargs, &nres);
    srv->resuming = outer;
    flosse_lalloc_enforce(srv->lalloc, 0);
    nargs = 0;
    if (c->head_pending && c->state == FLOSSE_CONN_STREAMING &&
        !(st != LUA_OK && st != LUA_YIELD && luaL_testudata(T, -1, REFUSAL_MT)) &&
        write_head(c) != FLOSSE_OK) {
      flosse_conn_close(c, "out of memory");
      return;
    }
    if (st == LUA_YIELD && c->over_budget) {
      lua_pop(T, nres);
      stop_over_budget(c);
      return;
    }
    if (st == LUA_YIELD) {
      if (nres == 1 && lua_touserdata(T, -1) == (void *)&wait_key) {
        lua_pop(T, 1); /* the waiting function armed its own watcher */
        return;
      }
      handle_event(c, T, nres);
      if (c->T != T || c->state == FLOSSE_CONN_CLOSED) return;
      if (c->out.len > srv->cfg.high_water) {
        c->wait = FLOSSE_WAIT_DRAIN;
        return;
      }
      if (--budget <= 0) {
        flosse_conn_want_run(c); /* let everyone else have a turn */
        return;
      }
      continue;
    }
    if (st == LUA_OK) {
      if (c->state == FLOSSE_CONN_STREAMING) {
        lua_pop(T, nres);
        end_stream(c);
      } else {
        finish_response(c, T, nres);
      }
      return;
    }
    view_failed(c, T);
    return;
  }
}

static int build_request(lua_State *L) {
  struct flosse_conn *c = lua_touserdata(L, 1);
  struct flosse_http *h = c->http;
  struct flosse_server *srv = c->srv;
  lua_State *T;
  if (srv->nidle_threads) {
    c->thread_ref = srv->idle_threads[--srv->nidle_threads];
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->thread_ref);
    T = lua_tothread(L, -1);
    lua_pop(L, 1);
  } else {
    T = lua_newthread(L);
    c->thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  c->T = T;
  set_conn_of(L, T, c);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->srv->dispatch_ref);
  lua_createtable(L, 0, 7);
  lua_pushstring(L, http_method_str((enum http_method)h->parser.method));
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, flosse_http_str(h, h->url), h->url.len);
  lua_setfield(L, -2, "url");
  if (h->parser.http_major == 1 && h->parser.http_minor <= 1)
    lua_pushstring(L, h->parser.http_minor ? "1.1" : "1.0");
  else
    lua_pushfstring(L, "%d.%d", (int)h->parser.http_major, (int)h->parser.http_minor);
  lua_setfield(L, -2, "version");
  lua_pushlstring(L, h->body.len ? flosse_http_str(h, h->body) : "", h->body.len);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, c->remote);
  lua_setfield(L, -2, "remote_addr");
  lua_createtable(L, 0, h->nheaders);
  char joined[FLOSSE_HTTP_MAX_HEADERS] = {0};
  for (int i = 0; i < h->nheaders; i++) {
    struct flosse_http_header *hd = &h->headers[i];
    if (joined[i]) continue;
    const char *name = flosse_http_str(h, hd->name);
    lua_pushlstring(L, name, hd->name.len);
    int repeat = 0;
    for (int j = i + 1; j < h->nheaders && !repeat; j++)
      repeat = h->headers[j].name.len == hd->name.len &&
               memcmp(flosse_http_str(h, h->headers[j].name), name, hd->name.len) == 0;
    if (!repeat) { /* the usual case */
      lua_pushlstring(L, hd->value.len ? flosse_http_str(h, hd->value) : "", hd->value.len);
      lua_rawset(L, -3);
      continue;
    }
    /* A repeated header: its values joined once, in order, as HTTP says
     * they may be (not one concatenation per repeat: that is quadratic). */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, hd->value.len ? flosse_http_str(h, hd->value) : "", hd->value.len);
    int cookie = hd->name.len == 6 && memcmp(name, "cookie", 6) == 0;
    for (int j = i + 1; j < h->nheaders; j++) {
      struct flosse_http_header *dj = &h->headers[j];
      if (dj->name.len != hd->name.len || memcmp(flosse_http_str(h, dj->name), name, hd->name.len)) continue;
      joined[j] = 1;
      luaL_addstring(&b, cookie ? "; " : ", ");
      luaL_addlstring(&b, dj->value.len ? flosse_http_str(h, dj->value) : "", dj->value.len);
    }
    luaL_pushresult(&b);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
  lua_xmove(L, T, 2);
  return 0;
}

void flosse_stream_dispatch(struct flosse_conn *c) {
  struct flosse_http *h = c->http;
  lua_State *L = c->srv->L;
  c->state = FLOSSE_CONN_HANDLING;
  /* A client that half-closed gets "Connection: close" on its last answer. */
  c->keep_alive = flosse_http_keep_alive(h) && !(c->peer_closed && !c->in.len);
  c->http10 = h->parser.http_major == 1 && h->parser.http_minor == 0;
  c->chunked = !c->http10;
  c->head = h->parser.method == HTTP_HEAD;
  c->req_start = ev_now(c->srv->loop);
  c->req_base = c->out.total;
  c->events = 0;
  c->status = 0;
  c->over_budget = 0;
  free(c->reqline);
  size_t ulen = h->url.len > 200 ? 200 : h->url.len;
  const char *method = http_method_str((enum http_method)h->parser.method);
  size_t mlen = strlen(method);
  c->reqline = malloc(mlen + ulen + 2);
  if (c->reqline) {
    memcpy(c->reqline, method, mlen);
    c->reqline[mlen] = ' ';
    memcpy(c->reqline + mlen + 1, flosse_http_str(h, h->url), ulen);
    c->reqline[mlen + 1 + ulen] = '\0';
  }
  lua_pushcfunction(L, build_request);
  lua_pushlightuserdata(L, c);
  int st = lua_pcall(L, 1, 0, 0);
  /* The request is in Lua now; the next one gets a fresh reader. */
  flosse_conn_http_release(c);
  if (st != LUA_OK) {
    char msg[256];
    snprintf(msg, sizeof msg, "cannot start the request: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    fail_request(c, msg);
    return;
  }
  flosse_stream_resume(c, 1);
}

/* ---- functions views call (through lua/flosse) -------------------------- */

static struct flosse_conn *check_conn(lua_State *T, const char *fname) {
  struct flosse_conn *c = conn_of(T);
  if (!c || c->state == FLOSSE_CONN_CLOSED)
    luaL_error(T, "%s must be called from a view (in the request's own coroutine)", fname);
  return c;
}

static int l_sleep(lua_State *T) {
  lua_Number s = luaL_checknumber(T, 1);
  luaL_argcheck(T, s >= 0 && s == s, 1, "seconds must be a non-negative number");
  struct flosse_conn *c = check_conn(T, "flosse.sleep");
  if (!lua_isyieldable(T))
    return luaL_error(T, "flosse.sleep cannot wait here (inside a C call or metamethod)");
  ev_timer_set(&c->sleep_timer, s, 0.);
  ev_timer_start(c->srv->loop, &c->sleep_timer);
  c->wait = FLOSSE_WAIT_SLEEP;
  lua_pushlightuserdata(T, (void *)&wait_key);
  return lua_yield(T, 1);
}

/* Writes a started stream's head, its retry frame, and arms its heartbeat. */
static int write_head(struct flosse_conn *c) {
  c->head_pending = 0;
  c->status = 200;
  struct flosse_buf *o = &c->out;
  int rc = flosse_buf_printf(o,
                             "HTTP/1.1 200 OK\r\n"
                             "Content-Type: text/event-stream; charset=utf-8\r\n"
                             "Cache-Control: no-cache, no-transform\r\n"
                             "X-Accel-Buffering: no\r\n"
                             "%s\r\n",
                             !c->chunked ? "Connection: close\r\n"
                             : c->keep_alive ? "Transfer-Encoding: chunked\r\n"
                                             : "Transfer-Encoding: chunked\r\nConnection: close\r\n");
  if (!c->chunked) c->keep_alive = 0;
  if (rc != FLOSSE_OK) return FLOSSE_ERR;
  if (c->head_retry >= 0) {
    struct flosse_sse_event ev = {NULL, 0, NULL, 0, NULL, 0, c->head_retry};
    if (queue_event(c, &ev) != FLOSSE_OK) return FLOSSE_ERR;
  }
  if (c->head_heartbeat > 0) {
    c->hbq = flosse_server_hbq(c->srv, c->head_heartbeat);
    if (c->hbq) flosse_tq_touch(c->hbq, &c->hb);
  }
  flosse_conn_want_write(c);
  return FLOSSE_OK;
}

/* core.start_stream(retry, heartbeat): the request is a stream from now
 * on; its head goes out when the view first yields, waits or ends. */
static int l_start_stream(lua_State *T) {
  long long retry = -1;
  if (!lua_isnoneornil(T, 1)) {
    char err[96];
    if (!get_retry(T, 1, &retry, err, sizeof err)) return luaL_argerror(T, 1, err);
  }
  lua_Number hb = luaL_optnumber(T, 2, -1);
  struct flosse_conn *c = check_conn(T, "start_stream");
  if (c->state != FLOSSE_CONN_HANDLING) return luaL_error(T, "the stream has already started");
  c->state = FLOSSE_CONN_STREAMING;
  c->head_pending = 1;
  c->head_retry = retry;
  c->head_heartbeat = hb < 0 ? c->srv->cfg.heartbeat : hb;
  return 0;
}

/* core.refuse(status, text): see flosse_stream_refuse. */
static int l_refuse(lua_State *L) {
  lua_Integer status = luaL_checkinteger(L, 1);
  luaL_argcheck(L, status >= 400 && status <= 599, 1, "a refusal's status is 400 to 599");
  const char *text = luaL_checkstring(L, 2);
  return flosse_stream_refuse(L, (int)status, text);
}

static int refusal_tostring(lua_State *L) {
  struct refusal *r = luaL_checkudata(L, 1, REFUSAL_MT);
  lua_pushfstring(L, "refused (%d): %s", r->status, r->text);
  return 1;
}

static int l_report_error(lua_State *T) {
  const char *log_text = luaL_checkstring(T, 1);
  const char *client_text = luaL_optstring(T, 2, log_text);
  char id[13];
  report_error(conn_of(T), log_text, client_text, id);
  lua_pushstring(T, id);
  return 1;
}

/* core.on_close(fn [, arg]): fn(arg) runs once the request ends. The
 * argument saves a closure per request (the dispatcher passes the request). */
static int l_on_close(lua_State *T) {
  luaL_checktype(T, 1, LUA_TFUNCTION);
  struct flosse_conn *c = check_conn(T, "on_close");
  lua_settop(T, 2);
  if (c->onclose_ref != LUA_NOREF) {
    luaL_unref(T, LUA_REGISTRYINDEX, c->onclose_ref);
    luaL_unref(T, LUA_REGISTRYINDEX, c->onclose_arg_ref);
  }
  c->onclose_arg_ref = luaL_ref(T, LUA_REGISTRYINDEX); /* LUA_REFNIL for nil */
  c->onclose_ref = luaL_ref(T, LUA_REGISTRYINDEX);
  return 0;
}

static int l_in_stream(lua_State *T) {
  struct flosse_conn *c = conn_of(T);
  lua_pushboolean(T, c && c->state == FLOSSE_CONN_STREAMING);
  return 1;
}

static int l_frame(lua_State *L) {
  struct flosse_buf out;
  char err[256];
  int n = lua_gettop(L);
  flosse_buf_init(&out);
  if (flosse_stream_frame(L, 1, n, &out, err, sizeof err) != FLOSSE_OK) {
    flosse_buf_free(&out);
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  luaL_Buffer b;
  struct iovec iov[64];
  luaL_buffinit(L, &b);
  while (out.len) {
    int k = flosse_buf_iov(&out, iov, 64);
    size_t moved = 0;
    for (int i = 0; i < k; i++) {
      luaL_addlstring(&b, iov[i].iov_base, iov[i].iov_len);
      moved += iov[i].iov_len;
    }
    flosse_buf_consume(&out, moved);
  }
  flosse_buf_free(&out);
  luaL_pushresult(&b);
  return 1;
}

void flosse_stream_register(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"sleep", l_sleep},
      {"start_stream", l_start_stream},
      {"report_error", l_report_error},
      {"refuse", l_refuse},
      {"on_close", l_on_close},
      {"in_stream", l_in_stream},
      {"frame", l_frame},
      {NULL, NULL},
  };
  if (luaL_newmetatable(L, REFUSAL_MT)) {
    lua_pushcfunction(L, refusal_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}

void flosse_stream_shutdown(struct flosse_conn *c) {
  c->keep_alive = 0;
  if (c->state == FLOSSE_CONN_STREAMING) {
    end_stream(c);
  } else if (c->state == FLOSSE_CONN_HANDLING) {
    static const char body[] = "Service Unavailable\n";
    flosse_stream_release(c);
    if (c->state == FLOSSE_CONN_CLOSED) return;
    flosse_conn_respond(c, 503, "text/plain; charset=utf-8", body, sizeof body - 1);
    flosse_conn_request_done(c);
  }
}
