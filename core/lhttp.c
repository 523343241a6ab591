/* Outbound HTTP for Lua: core.http_request, which lua/flosse/http.lua
 * wraps in flosse.http.request and flosse.http.get, suspends the calling
 * task on the HTTP wait (wait_http.c) until the response came. It also
 * makes libcurl ready once per process (flosse_http_global_init), since the
 * main thread registers flosse.core before any worker thread starts. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "defaults.h"
#include "http_client.h"
#include "lprivate.h"
#include "wait_http.h"

/* Why the calling coroutine cannot wait, or NULL when it can. */
static const char *cannot_wait(lua_State *T) {
  if (!flosse_task_of(T))
    return "must be called from a view, a permission or authentication class, or a task "
           "(in its own coroutine, not at the top of a module or in a coroutine of its own)";
  if (!lua_isyieldable(T)) return "cannot wait here (inside a C call or metamethod that cannot yield)";
  return NULL;
}

/* core.http_can_wait() -> true | false, why */
static int l_http_can_wait(lua_State *T) {
  const char *why = cannot_wait(T);
  lua_pushboolean(T, why == NULL);
  if (!why) return 1;
  lua_pushstring(T, why);
  return 2;
}

/* The response as core.http_request returns it: status, the header lines
 * as received, the body; or nil, err. */
static int push_result(lua_State *L, const struct flosse_http_result *res, const char *err) {
  if (!res) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)res->status);
  lua_pushlstring(L, res->headers, res->headers_len);
  lua_pushlstring(L, res->body, res->body_len);
  return 3;
}

static const char *opt_string(lua_State *L, const char *k, size_t *len) {
  const char *s = NULL;
  if (lua_getfield(L, 1, k) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "http_request: %s must be a string", k);
    s = lua_tolstring(L, -1, len);
  }
  /* Left on the stack: it anchors the string until the request is copied. */
  return s;
}

/* core.http_request{ method =, url =, headers = { {name, value}, ... },
 * body =, timeout =, max_body =, follow =, ca_file = } -> status,
 * header lines, body | nil, err. Checked by lua/flosse/http.lua; here only
 * what keeps C safe (types, no NUL where C wants a C string). */
static int l_http_request(lua_State *T) {
  luaL_checktype(T, 1, LUA_TTABLE);
  lua_settop(T, 1);
  const char *why = cannot_wait(T);
  if (why) return luaL_error(T, "flosse.http.request %s", why);
  struct flosse_http_opts o;
  memset(&o, 0, sizeof o);
  size_t len;
  o.method = opt_string(T, "method", &len);
  if (!o.method) o.method = "GET";
  else if (strlen(o.method) != len || !len) return luaL_error(T, "http_request: bad method");
  if (!(o.url = opt_string(T, "url", &len))) return luaL_error(T, "http_request: url is required");
  if (strlen(o.url) != len) return luaL_error(T, "http_request: url holds a NUL byte");
  o.body = opt_string(T, "body", &o.body_len);
  if ((o.ca_file = opt_string(T, "ca_file", &len)) && strlen(o.ca_file) != len)
    return luaL_error(T, "http_request: ca_file holds a NUL byte");
  lua_getfield(T, 1, "timeout");
  o.timeout = luaL_optnumber(T, -1, FLOSSE_DEFAULT_HTTP_TIMEOUT);
  if (!(o.timeout > 0)) return luaL_error(T, "http_request: timeout must be positive");
  lua_getfield(T, 1, "max_body");
  lua_Integer max_body = luaL_optinteger(T, -1, FLOSSE_DEFAULT_HTTP_MAX_BODY);
  if (max_body < 0) return luaL_error(T, "http_request: max_body must be >= 0");
  o.max_body = (size_t)max_body;
  lua_getfield(T, 1, "follow");
  o.follow = lua_toboolean(T, -1);
  if (lua_getfield(T, 1, "headers") != LUA_TNIL) {
    luaL_checktype(T, -1, LUA_TTABLE);
    int list = lua_gettop(T);
    lua_Integer n = luaL_len(T, list);
    if (n < 0 || n > 10000) return luaL_error(T, "http_request: too many headers");
    o.nheaders = (int)n;
    const char **names = lua_newuserdatauv(T, (size_t)n * 2 * sizeof *names + 1, 0);
    const char **values = names + n;
    luaL_checkstack(T, (int)n * 2 + 4, "http_request: too many headers");
    for (lua_Integer i = 1; i <= n; i++) {
      for (int j = 1; j <= 2; j++) {
        lua_geti(T, list, i);
        if (lua_type(T, -1) != LUA_TTABLE) return luaL_error(T, "http_request: headers[%d] is not a pair", (int)i);
        lua_geti(T, -1, j);
        lua_remove(T, -2);
        const char *s = lua_tolstring(T, -1, &len);
        if (lua_type(T, -1) != LUA_TSTRING || strlen(s) != len || strpbrk(s, "\r\n"))
          return luaL_error(T, "http_request: headers[%d] has a bad name or value", (int)i);
        (j == 1 ? names : values)[i - 1] = s;
      }
    }
    o.names = names;
    o.values = values;
  }
  return flosse_wait_http_arm(T, flosse_task_of(T), &o, push_result);
}

void flosse_lhttp_register(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"http_request", l_http_request}, {"http_can_wait", l_http_can_wait}, {NULL, NULL}};
  flosse_http_global_init();
  luaL_setfuncs(L, fns, 0);
}
