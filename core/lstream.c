/* Streams for Lua: core.start_stream, admit_stream, revoke, client_streams,
 * refuse, report_error, on_close, in_stream, frame and set_client_addr
 * (lua/flosse wraps them). */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "lprivate.h"
#include "lvalues.h"
#include "response.h"
#include "stream.h"

struct flosse_task *flosse_lcheck_task(lua_State *L, const char *fname) {
  struct flosse_task *t = flosse_task_of(L);
  if (!t) luaL_error(L, "%s must be called from a view or a task (in its own coroutine)", fname);
  return t;
}

struct flosse_server *flosse_lcheck_server(lua_State *L, const char *fname) {
  if (!flosse_current_server) luaL_error(L, "%s needs a running server", fname);
  return flosse_current_server;
}

static struct flosse_stream *check_stream(lua_State *T, const char *fname) {
  struct flosse_stream *s = flosse_stream_of(flosse_task_of(T));
  if (!s || !flosse_conn_is_open(s->conn))
    luaL_error(T, "%s must be called from a view (in the request's own coroutine)", fname);
  return s;
}

/* Checks the extra headers of core.start_stream (a table of string names
 * and string values) and returns the bytes of their lines in a new string
 * (a userdata on the stack, owned by the GC). A name that is not a token or one the core writes itself,
 * or a value with CR, LF or NUL, raises: nothing is ever dropped silently
 * or injected. */
static const char *stream_headers(lua_State *T, int idx, size_t *len) {
  size_t total = 0;
  luaL_checktype(T, idx, LUA_TTABLE);
  lua_pushnil(T);
  while (lua_next(T, idx)) {
    size_t kl, vl;
    if (lua_type(T, -2) != LUA_TSTRING || lua_type(T, -1) != LUA_TSTRING)
      luaL_error(T, "start_stream: headers must map string names to string values");
    const char *k = lua_tolstring(T, -2, &kl), *v = lua_tolstring(T, -1, &vl);
    if (!flosse_response_header_name_ok(k, kl) || flosse_response_managed_header(k, kl) ||
        flosse_stream_head_header(k, kl))
      luaL_error(T, "start_stream: %s is not a header a view may set", k);
    if (memchr(v, '\r', vl) || memchr(v, '\n', vl) || memchr(v, '\0', vl))
      luaL_error(T, "start_stream: the value of %s has a CR, LF or NUL", k);
    total += kl + vl + 4;
    lua_pop(T, 1);
  }
  char *out = lua_newuserdatauv(T, total ? total : 1, 0); /* the GC owns it */
  size_t n = 0;
  lua_pushnil(T);
  while (lua_next(T, idx)) {
    size_t kl, vl;
    const char *k = lua_tolstring(T, -2, &kl), *v = lua_tolstring(T, -1, &vl);
    memcpy(out + n, k, kl);
    memcpy(out + n + kl, ": ", 2);
    memcpy(out + n + kl + 2, v, vl);
    memcpy(out + n + kl + 2 + vl, "\r\n", 2);
    n += kl + vl + 4;
    lua_pop(T, 1);
  }
  *len = n;
  return out;
}

/* core.start_stream(retry, heartbeat [, headers [, route id]]): the request is a stream
 * from now on; its head (with headers, a table of names and values) goes
 * out when the view first yields, waits or ends. */
static int l_start_stream(lua_State *T) {
  long long retry = -1;
  if (!lua_isnoneornil(T, 1)) {
    char err[96];
    if (!flosse_lvalues_retry(T, 1, &retry, err, sizeof err)) return luaL_argerror(T, 1, err);
  }
  lua_Number hb = luaL_optnumber(T, 2, -1);
  struct flosse_stream *s = check_stream(T, "start_stream");
  lua_Integer route = luaL_optinteger(T, 4, 0);
  size_t xlen = 0;
  const char *extra = NULL;
  lua_settop(T, 3);
  if (!lua_isnil(T, 3)) {
    extra = stream_headers(T, 3, &xlen);
  }
  if (flosse_stream_start(s, retry, hb, extra, xlen) != FLOSSE_OK)
    return luaL_error(T, "the stream has already started (or no memory for its headers)");
  s->route = (int)route;
  return 0;
}

/* An optional string argument as a key: NULL for nil or "". */
static const char *opt_key(lua_State *T, int i, size_t *len) {
  if (lua_isnoneornil(T, i)) return NULL;
  const char *k = luaL_checklstring(T, i, len);
  return *len ? k : NULL;
}

/* core.admit_stream(ip, user, max_per_ip, max_per_user, expires_at)
 * -> true | false, "revoked" | "ip" | "user" | "memory"
 * The stream is counted for ip and user (nil: not counted) unless the user
 * is revoked or either is at its cap (nil or 0: none), and ends with
 * flosse-expired at expires_at (seconds on the wall clock; nil: never) or
 * with flosse-revoked when its user is. */
static int l_admit_stream(lua_State *T) {
  struct flosse_guard_opts o = {0};
  o.ip = opt_key(T, 1, &o.iplen);
  o.user = opt_key(T, 2, &o.userlen);
  o.max_per_ip = (long)luaL_optinteger(T, 3, 0);
  o.max_per_user = (long)luaL_optinteger(T, 4, 0);
  o.expires_at = luaL_optnumber(T, 5, 0);
  if (o.expires_at != o.expires_at) o.expires_at = 0;
  struct flosse_stream *s = check_stream(T, "admit_stream");
  static const char *why[] = {NULL, "revoked", "ip", "user", "memory"};
  enum flosse_admit rc = flosse_stream_admit(s, &o);
  if (rc == FLOSSE_ADMIT_OK) {
    lua_pushboolean(T, 1);
    return 1;
  }
  lua_pushboolean(T, 0);
  lua_pushstring(T, why[rc]);
  return 2;
}

/* core.revoke(user, seconds) -> true | nil, message: ends the user's
 * streams on every worker and refuses its new ones for seconds. */
static int l_revoke(lua_State *L) {
  size_t len;
  const char *user = luaL_checklstring(L, 1, &len);
  lua_Number seconds = luaL_optnumber(L, 2, 0);
  luaL_argcheck(L, seconds >= 0 && seconds == seconds, 2, "seconds must be a number >= 0");
  if (len == 0 || len > FLOSSE_CLIENT_KEY_MAX)
    return luaL_argerror(L, 1, "a user id of 1 to 256 bytes");
  if (flosse_guards_revoke(user, len, seconds) != FLOSSE_OK) {
    luaL_pushfail(L);
    lua_pushliteral(L, "out of memory");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.client_streams(kind, key) -> how many streams the address ("ip")
 * or the user ("user") holds on this node's workers. */
static int l_client_streams(lua_State *L) {
  static const char *const kinds[] = {"ip", "user", NULL};
  int k = luaL_checkoption(L, 1, NULL, kinds);
  size_t len;
  const char *key = luaL_checklstring(L, 2, &len);
  lua_pushinteger(L, flosse_clients_count(k == 0 ? 'i' : 'u', key, len));
  return 1;
}

/* core.refuse(status, text, exact): see flosse_task_refuse (exact true:
 * flosse_task_refuse_exact, the body is text without a newline added). */
static int l_refuse(lua_State *L) {
  lua_Integer status = luaL_checkinteger(L, 1);
  luaL_argcheck(L, status >= 400 && status <= 599, 1, "a refusal's status is 400 to 599");
  const char *text = luaL_checkstring(L, 2);
  if (lua_toboolean(L, 3)) return flosse_task_refuse_exact(L, (int)status, text);
  return flosse_task_refuse(L, (int)status, text);
}

static int l_report_error(lua_State *T) {
  const char *log_text = luaL_checkstring(T, 1);
  const char *client_text = luaL_optstring(T, 2, log_text);
  char id[13];
  struct flosse_task *t = flosse_task_of(T);
  struct flosse_stream *s = flosse_stream_of(t);
  if (s || !t) {
    flosse_stream_report_error(s, log_text, client_text, id);
  } else { /* a background task: the log only, under its name */
    flosse_log_error(id, t->name, log_text);
  }
  lua_pushstring(T, id);
  return 1;
}

/* core.on_close(fn [, arg]): fn(arg) runs once the task ends (a request's:
 * once the request ends). The argument saves a closure per request (the
 * dispatcher passes the request). core.on_close(nil) drops the handler
 * (a relayed stream with nothing to run keeps no request table). */
static int l_on_close(lua_State *T) {
  if (!lua_isnil(T, 1)) luaL_checktype(T, 1, LUA_TFUNCTION);
  struct flosse_task *t = flosse_lcheck_task(T, "on_close");
  lua_settop(T, 2);
  if (t->onclose_ref != LUA_NOREF) {
    luaL_unref(T, LUA_REGISTRYINDEX, t->onclose_ref);
    luaL_unref(T, LUA_REGISTRYINDEX, t->onclose_arg_ref);
    t->onclose_ref = t->onclose_arg_ref = LUA_NOREF;
  }
  if (lua_isnil(T, 1)) return 0;
  t->onclose_arg_ref = luaL_ref(T, LUA_REGISTRYINDEX); /* LUA_REFNIL for nil */
  t->onclose_ref = luaL_ref(T, LUA_REGISTRYINDEX);
  return 0;
}

static int l_in_stream(lua_State *T) {
  struct flosse_stream *s = flosse_stream_of(flosse_task_of(T));
  lua_pushboolean(T, s && s->sse && flosse_conn_is_open(s->conn));
  return 1;
}

/* core.set_client_addr(addr) -> the address in canonical form | nil
 * The client a trusted proxy named: the current request's log lines (its
 * access line) show it instead of the peer's. nil (nothing changed) when
 * addr is not an IP address. */
static int l_set_client_addr(lua_State *T) {
  size_t len;
  const char *s = luaL_checklstring(T, 1, &len);
  struct flosse_stream *st = check_stream(T, "set_client_addr");
  struct flosse_cidr a;
  char text[64];
  if (flosse_cidr_addr(s, len, &a) != FLOSSE_OK || flosse_cidr_format(&a, text, sizeof text) != FLOSSE_OK ||
      flosse_conn_set_client(st->conn, text) != FLOSSE_OK) {
    luaL_pushfail(T);
    return 1;
  }
  lua_pushstring(T, text);
  return 1;
}

static int l_frame(lua_State *L) {
  struct flosse_buf out;
  char err[256];
  int n = lua_gettop(L);
  flosse_buf_init(&out);
  if (flosse_lvalues_frame(L, 1, n, &out, err, sizeof err) != FLOSSE_OK) {
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

void flosse_lstream_register(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"start_stream", l_start_stream},
      {"report_error", l_report_error},
      {"refuse", l_refuse},
      {"admit_stream", l_admit_stream},
      {"revoke", l_revoke},
      {"client_streams", l_client_streams},
      {"on_close", l_on_close},
      {"in_stream", l_in_stream},
      {"frame", l_frame},
      {"set_client_addr", l_set_client_addr},
      {NULL, NULL},
  };
  flosse_task_register_refusal(L);
  luaL_setfuncs(L, fns, 0);
}
