/* The JSON encoder for Lua values and its Lua functions.
 *
 * It follows lua-cjson 2.1.0's encoder (lua_cjson.c: json_append_data,
 * lua_array_length, json_append_array/object) with its default settings,
 * so that the bytes on the wire do not change, except for numbers:
 * - an empty table is {}; a table whose keys are all positive integers is an
 *   array up to its largest key, holes as null, unless it is excessively
 *   sparse (largest key > 2 * count and > 10), which is an error;
 * - any other table is an object, in lua_next order; a number key is written
 *   as a string of its number text, a key of another type is an error;
 * - cjson.null (a NULL light userdata) and nil are null; functions,
 *   threads, userdata and other light userdata are errors; so are NaN and
 *   the infinities; nesting deeper than 1000 tables is an error.
 * Where cjson's behaviour is undefined we chose: a key that is an integer
 * above INT_MAX, or an integral float too big to be an integer key, makes
 * the table an object (as any other float key does in cjson too). cjson
 * casts such a key to int (on x86 that gives INT_MIN): an object when the
 * key is alone, and by key order an object, an error or an array that
 * drops the key otherwise.
 *
 * The text is built in a buffer that a userdata in L's registry owns (got
 * from L's allocator, so it counts towards the Lua memory cap), then pushed
 * with one lua_pushlstring. The walk itself calls nothing that can raise,
 * and the whole runs under lua_pcall, so the stream code can call it from
 * outside any protected call. */
#include "ljson.h"

#include <lauxlib.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

#define BOX_MT "flosse.json_buffer"
#define BOX_MIN 4096      /* the first allocation */
#define BOX_KEEP 16384    /* a bigger buffer is freed after each encode */
#define STRING_PIECE 4096 /* a long string is escaped this many bytes at a time */

static const char box_key = 0;

struct box {
  char *p;
  size_t len, cap;
};

struct enc {
  lua_State *L;
  struct box *b;
  char *err;
  size_t errlen;
};

static int box_gc(lua_State *L) {
  struct box *b = luaL_checkudata(L, 1, BOX_MT);
  if (b->p) {
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    f(ud, b->p, b->cap, 0);
  }
  b->p = NULL;
  b->len = b->cap = 0;
  return 0;
}

/* Pushes L's buffer, making it on first use (which may raise: the caller
 * runs under lua_pcall). */
static struct box *push_box(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &box_key) == LUA_TUSERDATA) return lua_touserdata(L, -1);
  lua_pop(L, 1);
  struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->p = NULL;
  b->len = b->cap = 0;
  if (luaL_newmetatable(L, BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &box_key);
  return b;
}

static int failf(struct enc *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->err, e->errlen, fmt, ap);
  va_end(ap);
  return FLOSSE_ERR;
}

/* The error cjson raises for the value at idx. */
static int fail_value(struct enc *e, int idx, const char *why) {
  return failf(e, "Cannot serialise %s: %s", luaL_typename(e->L, idx), why);
}

/* Makes room for n more bytes. Returns FLOSSE_OK, or FLOSSE_ERR (no memory,
 * which an allocator with a cap gives without raising). */
static int grow(struct enc *e, size_t n) {
  struct box *b = e->b;
  size_t need = b->len + n, cap = b->cap ? b->cap : BOX_MIN;
  if (need < n) return failf(e, "not enough memory");
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  void *ud;
  lua_Alloc f = lua_getallocf(e->L, &ud);
  char *p = f(ud, b->p, b->p ? b->cap : 0, cap);
  if (!p) return failf(e, "not enough memory");
  b->p = p;
  b->cap = cap;
  return FLOSSE_OK;
}

static inline int reserve(struct enc *e, size_t n) {
  return e->b->cap - e->b->len >= n ? FLOSSE_OK : grow(e, n);
}

static inline int put(struct enc *e, const char *s, size_t n) {
  if (reserve(e, n) != FLOSSE_OK) return FLOSSE_ERR;
  memcpy(e->b->p + e->b->len, s, n);
  e->b->len += n;
  return FLOSSE_OK;
}

static inline int put_char(struct enc *e, char c) {
  if (reserve(e, 1) != FLOSSE_OK) return FLOSSE_ERR;
  e->b->p[e->b->len++] = c;
  return FLOSSE_OK;
}

static int put_string(struct enc *e, const char *s, size_t len) {
  size_t piece = len < STRING_PIECE ? len : STRING_PIECE;
  if (reserve(e, FLOSSE_JSON_STRING_MAX(piece)) != FLOSSE_OK) return FLOSSE_ERR;
  struct box *b = e->b;
  b->p[b->len++] = '"';
  for (;;) {
    b->len += flosse_json_escape(b->p + b->len, s, piece);
    s += piece;
    len -= piece;
    if (!len) break;
    piece = len < STRING_PIECE ? len : STRING_PIECE;
    if (reserve(e, FLOSSE_JSON_ESCAPE_MAX(piece) + 1) != FLOSSE_OK) return FLOSSE_ERR;
  }
  b->p[b->len++] = '"'; /* room kept by the reserve above */
  return FLOSSE_OK;
}

/* The number at idx: an integer exactly, a float in its shortest text. */
static int put_number(struct enc *e, int idx) {
  if (reserve(e, FLOSSE_JSON_NUMBER_MAX) != FLOSSE_OK) return FLOSSE_ERR;
  char *p = e->b->p + e->b->len;
  size_t n;
  if (lua_isinteger(e->L, idx)) {
    n = flosse_json_integer(p, (int64_t)lua_tointeger(e->L, idx));
  } else {
    n = flosse_json_double(p, (double)lua_tonumber(e->L, idx));
    if (!n) return fail_value(e, idx, "must not be NaN or Inf");
  }
  e->b->len += n;
  return FLOSSE_OK;
}

/* For the table on top: its array length (> 0: its largest key, every key a
 * positive integer), 0 (empty), -1 (an object), or -2 (an error: too
 * sparse). Leaves the stack as it was. */
static lua_Integer array_length(struct enc *e) {
  lua_State *L = e->L;
  lua_Integer max = 0, items = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_isinteger(L, -2)) {
      lua_Integer k = lua_tointeger(L, -2);
      if (k >= 1 && k <= INT_MAX) {
        if (k > max) max = k;
        items++;
        lua_pop(L, 1);
        continue;
      }
    }
    lua_pop(L, 2);
    return -1;
  }
  /* cjson's defaults: encode_sparse_ratio 2, encode_sparse_safe 10, no
   * conversion to an object. */
  if (max > items * 2 && max > 10) {
    fail_value(e, -1, "excessively sparse array");
    return -2;
  }
  return max;
}

static int put_value(struct enc *e, int depth);

static int put_table(struct enc *e, int depth) {
  lua_State *L = e->L;
  /* room for a key, a value and an error message, as cjson checks */
  if (depth > FLOSSE_LJSON_MAX_DEPTH || !lua_checkstack(L, 3))
    return failf(e, "Cannot serialise, excessive nesting (%d)", depth);
  lua_Integer n = array_length(e);
  if (n == -2) return FLOSSE_ERR;
  if (n > 0) {
    if (put_char(e, '[') != FLOSSE_OK) return FLOSSE_ERR;
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1 && put_char(e, ',') != FLOSSE_OK) return FLOSSE_ERR;
      lua_rawgeti(L, -1, i);
      if (put_value(e, depth) != FLOSSE_OK) return FLOSSE_ERR;
      lua_pop(L, 1);
    }
    return put_char(e, ']');
  }
  if (put_char(e, '{') != FLOSSE_OK) return FLOSSE_ERR;
  int first = 1;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (!first && put_char(e, ',') != FLOSSE_OK) return FLOSSE_ERR;
    first = 0;
    int kt = lua_type(L, -2);
    if (kt == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -2, &len); /* a string: no conversion */
      if (put_string(e, s, len) != FLOSSE_OK || put_char(e, ':') != FLOSSE_OK) return FLOSSE_ERR;
    } else if (kt == LUA_TNUMBER) {
      if (put_char(e, '"') != FLOSSE_OK || put_number(e, -2) != FLOSSE_OK ||
          put(e, "\":", 2) != FLOSSE_OK)
        return FLOSSE_ERR;
    } else {
      return fail_value(e, -2, "table key must be a number or string");
    }
    if (put_value(e, depth) != FLOSSE_OK) return FLOSSE_ERR;
    lua_pop(L, 1);
  }
  return put_char(e, '}');
}

/* Writes the value on top of the stack (left there). depth: the tables
 * around it. On error the stack is left unbalanced: the protected function
 * returns and Lua drops it. */
static int put_value(struct enc *e, int depth) {
  lua_State *L = e->L;
  switch (lua_type(L, -1)) {
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    return put_string(e, s, len);
  }
  case LUA_TNUMBER:
    return put_number(e, -1);
  case LUA_TBOOLEAN:
    return lua_toboolean(L, -1) ? put(e, "true", 4) : put(e, "false", 5);
  case LUA_TNIL:
    return put(e, "null", 4);
  case LUA_TTABLE:
    return put_table(e, depth + 1);
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, -1) == NULL) return put(e, "null", 4); /* cjson.null */
    /* fall through */
  default:
    return fail_value(e, -1, "type not supported");
  }
}

struct call {
  char *err;
  size_t errlen;
};

/* Under lua_pcall: (value, call) -> text, or nothing with call->err set. */
static int encode_protected(lua_State *L) {
  struct call *c = lua_touserdata(L, 2);
  struct box *b = push_box(L); /* 3, kept on the stack while in use */
  struct enc e = {L, b, c->err, c->errlen};
  b->len = 0;
  lua_pushvalue(L, 1);
  if (put_value(&e, 0) != FLOSSE_OK) return 0;
  lua_pushlstring(L, b->p, b->len);
  /* A finaliser run by that push may have used the buffer too: read it anew. */
  if (b->cap > BOX_KEEP) {
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    f(ud, b->p, b->cap, 0);
    b->p = NULL;
    b->cap = 0;
  }
  b->len = 0;
  return 1;
}

int flosse_ljson_encode(lua_State *L, int idx, char *err, size_t errlen) {
  struct call c = {err, errlen};
  idx = lua_absindex(L, idx);
  if (errlen) err[0] = '\0';
  if (!lua_checkstack(L, 3)) {
    snprintf(err, errlen, "stack overflow");
    return 0;
  }
  lua_pushcfunction(L, encode_protected);
  lua_pushvalue(L, idx);
  lua_pushlightuserdata(L, &c);
  int st = lua_pcall(L, 2, 1, 0);
  if (st == LUA_OK && lua_type(L, -1) == LUA_TSTRING) return 1;
  if (st != LUA_OK) {
    const char *m = lua_tostring(L, -1);
    snprintf(err, errlen, "%s", m ? m : "not enough memory");
  }
  lua_pop(L, 1);
  return 0;
}

/* json_encode(v) -> text | nil, message */
static int l_json_encode(lua_State *L) {
  char err[256];
  luaL_checkany(L, 1);
  if (flosse_ljson_encode(L, 1, err, sizeof err)) return 1;
  luaL_pushfail(L);
  lua_pushstring(L, err);
  return 2;
}

/* json_members(text) -> { key1, value1, ... } | nil, message */
static int l_json_members(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char err[128];
  struct flosse_json_scan sc;
  struct flosse_json_member m;
  int rc = FLOSSE_ERR;
  if (flosse_json_scan_init(&sc, s, len, err, sizeof err) == FLOSSE_OK) {
    lua_createtable(L, 8, 0);
    lua_Integer k = 0;
    while ((rc = flosse_json_scan_next(&sc, &m, err, sizeof err)) == 1) {
      lua_pushlstring(L, s + m.key.off, m.key.len);
      lua_rawseti(L, -2, ++k);
      lua_pushlstring(L, s + m.value.off, m.value.len);
      lua_rawseti(L, -2, ++k);
    }
    if (rc == 0) return 1;
  }
  luaL_pushfail(L);
  lua_pushstring(L, err);
  return 2;
}

void flosse_ljson_register(lua_State *L) {
  lua_pushcfunction(L, l_json_encode);
  lua_setfield(L, -2, "json_encode");
  lua_pushcfunction(L, l_json_members);
  lua_setfield(L, -2, "json_members");
}
