#include "lvalues.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ljson.h"
#include "log.h"
#include "response.h"

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

int flosse_lvalues_retry(lua_State *L, int idx, long long *out, char *err, size_t errlen) {
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

int flosse_lvalues_event(lua_State *L, int base, int n, struct flosse_sse_event *ev, char *err,
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
      if (!flosse_lvalues_retry(L, -1, &ev->retry, err, errlen)) goto fail;
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

int flosse_lvalues_frame(lua_State *L, int base, int n, struct flosse_buf *out, char *err,
                        size_t errlen) {
  int top = lua_gettop(L);
  struct flosse_sse_event ev;
  int rc = flosse_lvalues_event(L, base, n, &ev, err, errlen);
  if (rc == FLOSSE_OK) rc = flosse_sse_frame(out, &ev, err, errlen);
  lua_settop(L, top);
  return rc;
}

#undef FAIL

/* ---- requests and responses --------------------------------------------- */

void flosse_lvalues_push_request(lua_State *L, const struct flosse_http *h, const char *remote) {
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
  lua_pushstring(L, remote);
  lua_setfield(L, -2, "remote_addr");
  lua_createtable(L, 0, h->nheaders);
  char joined[FLOSSE_HTTP_MAX_HEADERS] = {0};
  for (int i = 0; i < h->nheaders; i++) {
    const struct flosse_http_header *hd = &h->headers[i];
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
      const struct flosse_http_header *dj = &h->headers[j];
      if (dj->name.len != hd->name.len || memcmp(flosse_http_str(h, dj->name), name, hd->name.len)) continue;
      joined[j] = 1;
      luaL_addstring(&b, cookie ? "; " : ", ");
      luaL_addlstring(&b, dj->value.len ? flosse_http_str(h, dj->value) : "", dj->value.len);
    }
    luaL_pushresult(&b);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "headers");
}

int flosse_lvalues_headers(lua_State *T, int hidx, struct flosse_buf *o, const char *what) {
  int rc = FLOSSE_OK;
  if (lua_type(T, hidx) == LUA_TTABLE) {
    lua_pushnil(T);
    while (lua_next(T, hidx)) {
      size_t kl, vl;
      if (lua_type(T, -2) == LUA_TSTRING &&
          (lua_type(T, -1) == LUA_TSTRING || lua_type(T, -1) == LUA_TNUMBER)) {
        const char *k = lua_tolstring(T, -2, &kl);
        lua_pushvalue(T, -1);
        const char *v = lua_tolstring(T, -1, &vl);
        if (!flosse_response_header_name_ok(k, kl) || !flosse_sse_field_ok(v, vl))
          flosse_log(FLOSSE_LOG_WARN, "%s: dropped an unsafe response header", what ? what : "-");
        else if (!flosse_response_managed_header(k, kl))
          rc |= flosse_response_header(o, k, kl, v, vl);
        lua_pop(T, 1);
      }
      lua_pop(T, 1);
    }
  }
  return rc ? FLOSSE_ERR : FLOSSE_OK;
}

/* ---- channel messages ------------------------------------------------------ */

#define MSG_MT "flosse.Message"
struct lmsg { struct flosse_msg *m; };

void flosse_lvalues_push_msg(lua_State *L, struct flosse_msg *m) {
  struct lmsg *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->m = m; /* takes the caller's reference */
  luaL_setmetatable(L, MSG_MT);
}

struct flosse_msg *flosse_lvalues_testmsg(lua_State *L, int idx) {
  struct lmsg *u = luaL_testudata(L, idx, MSG_MT);
  return u ? u->m : NULL;
}

static int msg_gc(lua_State *L) {
  struct lmsg *u = luaL_checkudata(L, 1, MSG_MT);
  flosse_msg_unref(u->m);
  u->m = NULL;
  return 0;
}

static int msg_index(lua_State *L) {
  struct lmsg *u = luaL_checkudata(L, 1, MSG_MT);
  const char *k = luaL_checkstring(L, 2);
  struct flosse_msg *m = u->m;
  if (!m) return 0;
  if (strcmp(k, "id") == 0) lua_pushstring(L, m->id);
  else if (strcmp(k, "event") == 0) m->event ? lua_pushstring(L, m->event) : lua_pushnil(L);
  else if (strcmp(k, "data") == 0) lua_pushlstring(L, m->data, m->data_len);
  else if (strcmp(k, "channel") == 0) lua_pushstring(L, m->channel);
  else if (strcmp(k, "seq") == 0) lua_pushinteger(L, (lua_Integer)m->seq);
  else lua_pushnil(L);
  return 1;
}

static int msg_tostring(lua_State *L) {
  struct lmsg *u = luaL_checkudata(L, 1, MSG_MT);
  if (!u->m) return lua_pushliteral(L, "flosse.Message (released)"), 1;
  lua_pushlstring(L, u->m->seg->data + u->m->frame_off, u->m->frame_len);
  return 1;
}

void flosse_lvalues_register(lua_State *L) {
  static const luaL_Reg msg_meta[] = {
      {"__gc", msg_gc}, {"__index", msg_index}, {"__tostring", msg_tostring}, {NULL, NULL}};
  if (luaL_newmetatable(L, MSG_MT)) luaL_setfuncs(L, msg_meta, 0);
  lua_pop(L, 1);
}
