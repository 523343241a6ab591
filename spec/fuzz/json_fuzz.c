/* fuzz-sources: core/json.c core/ljson.c  fuzz-libs: -llua5.4 -lm */
/* libFuzzer harness for the JSON writer (core/json.c, core/ljson.c).
 *
 * (a) The input is read as a small program that builds a Lua value:
 *     integers of any 64 bits, doubles of any 8 bytes (NaN and the
 *     infinities included), strings of any bytes (long ones too), booleans,
 *     nil, cjson.null, functions, light userdata, arrays (with holes),
 *     sparse arrays, objects with string, integer and float keys, and
 *     chains of nested tables (rarely 995 to 1,005 deep). flosse_ljson_encode must fail
 *     exactly when the value holds something JSON cannot carry (NaN, an
 *     infinity, a function, a userdata, a key of another type, an
 *     excessively sparse array, more than 1000 levels), with cjson's text.
 *     Otherwise its output is walked beside the value: every string decodes
 *     to the value's bytes and is escaped as cjson escapes; every integer's
 *     text is exactly its decimal (lua_stringtonumber gives it back); every
 *     float's text reads back (strtod) to the same bits with the fewest
 *     digits; tables are arrays or objects by cjson's rule, in lua_next
 *     order; and cjson.decode accepts the whole. When every number in the
 *     value is one that cjson's %.14g writes exactly (and no key is where
 *     cjson's behaviour is undefined), the bytes, or the error text, must be
 *     cjson.encode's own.
 * (b) The scanner flosse_json_scan_* runs on the raw input, and on each
 *     object (a) encoded, bare and with whitespace between all its tokens:
 *     it ends, and its spans lie in the input, in order. When cjson.decode takes the input as
 *     an object and the input has no NUL (cjson stops reading at a NUL), the
 *     scanner must take it too, and each member's value span must decode to
 *     the object's value for that key (the last one, for a duplicate), and
 *     the keys must be the object's keys.
 *
 * Build and run by hand (from the checkout's root; spec/fuzz/run does the same):
 *   mkdir -p build/fuzz && clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=undefined -std=c99 -D_GNU_SOURCE -I/usr/include/lua5.4 \
 *     -o build/fuzz/json_fuzz spec/fuzz/json_fuzz.c core/json.c core/ljson.c -llua5.4 -lm
 *   cp -R spec/fuzz/corpus/json build/fuzz/corpus-json
 *   build/fuzz/json_fuzz -max_total_time=180 -dict=spec/fuzz/json.dict build/fuzz/corpus-json
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "../../core/json.h"
#include "../../core/ljson.h"

static lua_State *L;
static int decode_ref, encode_ref;

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    fprintf(stderr, "json_fuzz: " __VA_ARGS__);                                                    \
    fputc('\n', stderr);                                                                           \
    abort();                                                                                       \
  } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) FAIL("require \"cjson\": %s", lua_tostring(L, -1));
  lua_getfield(L, -1, "decode");
  decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, -1, "encode");
  encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  return 0;
}

/* ---- (a) building a value -------------------------------------------------- */

struct rd {
  const uint8_t *p;
  size_t n, i;
  int nodes;
};

static unsigned byte(struct rd *r) { return r->i < r->n ? r->p[r->i++] : 0; }

static uint64_t u64(struct rd *r) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++) v = v << 8 | byte(r);
  return v;
}

static double f64(struct rd *r) {
  uint64_t bits = u64(r);
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

static int dummy_fn(lua_State *S) {
  (void)S;
  return 0;
}
static int dummy_ud;

static void push_string(struct rd *r, unsigned len) {
  if (len > r->n - r->i) len = (unsigned)(r->n - r->i);
  lua_pushlstring(L, (const char *)r->p + r->i, len);
  r->i += len;
}

/* Pushes a key (never nil or NaN: lua_rawset would raise). */
static void push_key(struct rd *r) {
  unsigned k = byte(r);
  switch (k % 6) {
  case 0: case 1: push_string(r, byte(r) % 12); break;
  case 2: lua_pushinteger(L, (lua_Integer)(int8_t)byte(r)); break;
  case 3: lua_pushinteger(L, (lua_Integer)u64(r)); break;
  case 4: {
    double d = f64(r);
    if (d != d) d = 0.5;
    lua_pushnumber(L, d);
    break;
  }
  default: lua_pushinteger(L, (lua_Integer)(byte(r) % 40)); break;
  }
}

static void build(struct rd *r, int depth) {
  if (!lua_checkstack(L, 6)) FAIL("no Lua stack");
  if (r->i >= r->n || ++r->nodes > 3000) {
    lua_pushinteger(L, 1);
    return;
  }
  unsigned op = byte(r);
  if (depth > 40 && op % 16 >= 10) op = 2; /* leaves only, deep down */
  switch (op % 16) {
  case 0: lua_pushinteger(L, (lua_Integer)u64(r)); break;
  case 1: lua_pushnumber(L, f64(r)); break;
  case 2: push_string(r, byte(r) % 40); break;
  case 3: lua_pushboolean(L, byte(r) & 1); break;
  case 4: lua_pushnil(L); break;
  case 5: lua_pushlightuserdata(L, NULL); break; /* cjson.null */
  case 6: lua_pushinteger(L, (lua_Integer)(int8_t)byte(r)); break;
  case 7: { /* a float as computed ones often are */
    unsigned k = byte(r);
    if (k % 3 == 0) { /* a short decimal */
      int64_t m = (int64_t)(u64(r) % 2000000000) - 1000000000;
      lua_pushnumber(L, (double)m / pow(10, k / 3 % 24));
    } else if (k % 3 == 1) { /* integral, of any size up to 2^63 */
      lua_pushnumber(L, (double)(int64_t)u64(r));
    } else { /* integral, around 2^53 and beyond */
      lua_pushnumber(L, ldexp((double)(u64(r) >> 11), (int)(k / 3 % 24)));
    }
    break;
  }
  case 8: { /* a long string: a pattern repeated */
    unsigned plen = byte(r) % 9 + 1, times = byte(r) * 16 + 1; /* up to 36 KiB */
    char pat[9];
    for (unsigned k = 0; k < plen; k++) pat[k] = (char)byte(r);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (unsigned t = 0; t < times; t++) luaL_addlstring(&b, pat, plen);
    luaL_pushresult(&b);
    break;
  }
  case 9: { /* what JSON cannot carry, rarely */
    unsigned k = byte(r) % 4;
    if (k == 0) lua_pushcfunction(L, dummy_fn);
    else if (k == 1) lua_pushlightuserdata(L, &dummy_ud);
    else if (k == 2) lua_pushnumber(L, (byte(r) & 1) ? HUGE_VAL : -HUGE_VAL);
    else lua_pushnumber(L, NAN);
    break;
  }
  case 10: case 11: { /* an array, maybe with holes (nil elements) */
    unsigned n = byte(r) % 10;
    lua_createtable(L, (int)n, 0);
    for (unsigned k = 1; k <= n; k++) {
      build(r, depth + 1);
      lua_rawseti(L, -2, k);
    }
    break;
  }
  case 12: case 13: { /* an object */
    unsigned n = byte(r) % 8;
    lua_createtable(L, 0, (int)n);
    for (unsigned k = 0; k < n; k++) {
      push_key(r);
      build(r, depth + 1);
      lua_rawset(L, -3);
    }
    break;
  }
  case 14: { /* positive integer keys, maybe too sparse */
    unsigned n = byte(r) % 5;
    lua_createtable(L, 0, (int)n);
    for (unsigned k = 0; k < n; k++) {
      lua_pushinteger(L, (lua_Integer)byte(r) + 1);
      build(r, depth + 1);
      lua_rawset(L, -3);
    }
    break;
  }
  default: { /* a chain of nested tables: short, or rarely 995 to 1,005 deep */
    unsigned b = byte(r), as_object = byte(r) & 1;
    unsigned levels = b >= 250 ? 995 + (b - 250) * 2 : b % 30;
    if (r->nodes + (int)levels > 4000) levels = 0; /* a chain's leaf may be a chain */
    r->nodes += (int)levels;
    build(r, depth + 1);
    for (unsigned k = 0; k < levels; k++) {
      lua_createtable(L, 1, 1);
      lua_insert(L, -2);
      if (as_object) lua_setfield(L, -2, "k");
      else lua_rawseti(L, -2, 1);
    }
    break;
  }
  }
}

/* ---- (a) what the encoder must have done ------------------------------------ */

struct expect {
  int fails;      /* the value holds something JSON cannot carry */
  int comparable; /* cjson.encode must give the same bytes or error */
};

static int cjson_writes_same(const char *ours, double v) {
  char ref[64];
  snprintf(ref, sizeof ref, "%.14g", v);
  return strcmp(ref, ours) == 0;
}

/* For the table on top: its array length by cjson's rule, -1 for an object,
 * -2 when too sparse. Notes a key where cjson's behaviour is undefined. */
static lua_Integer classify(struct expect *x) {
  lua_Integer max = 0, items = 0;
  int object = 0;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      double k = lua_tonumber(L, -1);
      if (k == floor(k) && k > INT_MAX) x->comparable = 0;
    }
    if (object) continue;
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= INT_MAX) {
      if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
      items++;
    } else {
      object = 1;
    }
  }
  if (object) return -1;
  if (max > items * 2 && max > 10) return -2;
  return max;
}

/* Walks the value on top as the encoder does, up to the first thing JSON
 * cannot carry. Returns 1 there. */
static int analyse(struct expect *x, int depth) {
  if (!lua_checkstack(L, 4)) FAIL("no Lua stack");
  int t = lua_type(L, -1);
  char num[FLOSSE_JSON_NUMBER_MAX];
  switch (t) {
  case LUA_TNIL: case LUA_TBOOLEAN: case LUA_TSTRING: return 0;
  case LUA_TLIGHTUSERDATA: return lua_touserdata(L, -1) != NULL;
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1)) {
      flosse_json_integer(num, lua_tointeger(L, -1));
      if (!cjson_writes_same(num, (double)lua_tointeger(L, -1))) x->comparable = 0;
      return 0;
    }
    if (!isfinite(lua_tonumber(L, -1))) return 1;
    flosse_json_double(num, lua_tonumber(L, -1));
    if (!cjson_writes_same(num, lua_tonumber(L, -1))) x->comparable = 0;
    return 0;
  case LUA_TTABLE: break;
  default: return 1;
  }
  if (++depth > 1000) return 1;
  lua_Integer n = classify(x);
  if (n == -2) return 1;
  if (n > 0) {
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, i);
      int bad = analyse(x, depth);
      lua_pop(L, 1);
      if (bad) return 1;
    }
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    int kt = lua_type(L, -2);
    int bad = kt != LUA_TSTRING && kt != LUA_TNUMBER;
    if (!bad && kt == LUA_TNUMBER) {
      lua_pushvalue(L, -2);
      bad = analyse(x, depth); /* the key's number */
      lua_pop(L, 1);
    }
    if (!bad) bad = analyse(x, depth);
    lua_pop(L, 1);
    if (bad) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

/* ---- (a) walking the output beside the value --------------------------------- */

struct out {
  const char *s;
  size_t len, pos;
};

static void expect_bytes(struct out *o, const char *want) {
  size_t n = strlen(want);
  if (o->len - o->pos < n || memcmp(o->s + o->pos, want, n) != 0)
    FAIL("at byte %zu of the output: expected %s", o->pos, want);
  o->pos += n;
}

/* A JSON string of ours: it must decode to the n bytes of want, with each
 * byte escaped exactly when and as cjson escapes it. */
static void expect_string(struct out *o, const char *want, size_t n) {
  expect_bytes(o, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)want[i];
    char form[8];
    switch (c) {
    case '"': strcpy(form, "\\\""); break;
    case '\\': strcpy(form, "\\\\"); break;
    case '/': strcpy(form, "\\/"); break;
    case '\b': strcpy(form, "\\b"); break;
    case '\f': strcpy(form, "\\f"); break;
    case '\n': strcpy(form, "\\n"); break;
    case '\r': strcpy(form, "\\r"); break;
    case '\t': strcpy(form, "\\t"); break;
    default:
      if (c < 0x20 || c == 0x7f) {
        snprintf(form, sizeof form, "\\u%04x", c);
      } else {
        if (o->pos >= o->len || (unsigned char)o->s[o->pos] != c)
          FAIL("at byte %zu of the output: byte %zu of a string changed", o->pos, i);
        o->pos++;
        continue;
      }
    }
    expect_bytes(o, form);
  }
  expect_bytes(o, "\"");
}

static int sig_digits(const char *s) {
  int n = 0, lo = -1, hi = -1;
  for (; *s && *s != 'e'; s++) {
    if (*s < '0' || *s > '9') continue;
    if (*s != '0') {
      if (lo < 0) lo = n;
      hi = n;
    }
    n++;
  }
  return lo < 0 ? 1 : hi - lo + 1;
}

/* A number of ours for the number on top of the stack. */
static void expect_number(struct out *o) {
  size_t start = o->pos;
  while (o->pos < o->len && strchr("0123456789.e+-", o->s[o->pos]) && o->s[o->pos]) o->pos++;
  size_t n = o->pos - start;
  char tok[64];
  if (n == 0 || n >= sizeof tok) FAIL("at byte %zu of the output: no number", start);
  memcpy(tok, o->s + start, n);
  tok[n] = '\0';
  if (lua_isinteger(L, -1)) {
    lua_Integer v = lua_tointeger(L, -1);
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)v);
    if (strcmp(tok, want) != 0) FAIL("integer %s written %s", want, tok);
    if (lua_stringtonumber(L, tok) != n + 1 || !lua_isinteger(L, -1) || lua_tointeger(L, -1) != v)
      FAIL("integer %s does not read back", tok);
    lua_pop(L, 1);
    return;
  }
  double v = lua_tonumber(L, -1), back = strtod(tok, NULL);
  if (memcmp(&back, &v, sizeof v) != 0) FAIL("double %.17g written %s: reads back %.17g", v, tok, back);
  int p = sig_digits(tok);
  char ref[400];
  if (p > 1) {
    snprintf(ref, sizeof ref, "%.*g", p - 1, v);
    back = strtod(ref, NULL);
    if (memcmp(&back, &v, sizeof v) == 0) FAIL("double %.17g written %s, but %s reads back", v, tok, ref);
  }
  if (fabs(v) <= 9007199254740992.0 && v == floor(v)) snprintf(ref, sizeof ref, "%.0f", v);
  else if (fabs(v) < DBL_MIN) snprintf(ref, sizeof ref, "%.*g", p, v);
  else snprintf(ref, sizeof ref, "%.*g", p < 14 ? 14 : p, v);
  if (strcmp(ref, tok) != 0) FAIL("double %.17g written %s, not %s", v, tok, ref);
}

static void walk(struct out *o) {
  if (!lua_checkstack(L, 4)) FAIL("no Lua stack");
  switch (lua_type(L, -1)) {
  case LUA_TNIL: case LUA_TLIGHTUSERDATA: expect_bytes(o, "null"); return;
  case LUA_TBOOLEAN: expect_bytes(o, lua_toboolean(L, -1) ? "true" : "false"); return;
  case LUA_TNUMBER: expect_number(o); return;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    expect_string(o, s, n);
    return;
  }
  case LUA_TTABLE: break;
  default: FAIL("a %s was encoded", luaL_typename(L, -1));
  }
  struct expect ignored = {0, 1};
  lua_Integer n = classify(&ignored);
  if (n > 0) {
    expect_bytes(o, "[");
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) expect_bytes(o, ",");
      lua_rawgeti(L, -1, i);
      walk(o);
      lua_pop(L, 1);
    }
    expect_bytes(o, "]");
    return;
  }
  expect_bytes(o, "{");
  int first = 1;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (!first) expect_bytes(o, ",");
    first = 0;
    if (lua_type(L, -2) == LUA_TSTRING) {
      size_t kl;
      const char *k = lua_tolstring(L, -2, &kl);
      expect_string(o, k, kl);
    } else {
      expect_bytes(o, "\"");
      lua_pushvalue(L, -2);
      expect_number(o);
      lua_pop(L, 1);
      expect_bytes(o, "\"");
    }
    expect_bytes(o, ":");
    walk(o);
    lua_pop(L, 1);
  }
  expect_bytes(o, "}");
}

static int is_known_error(const char *e) {
  static const char *const known[] = {
      "Cannot serialise number: must not be NaN or Inf",
      "Cannot serialise function: type not supported",
      "Cannot serialise userdata: type not supported",
      "Cannot serialise table: excessively sparse array",
      "Cannot serialise, excessive nesting (1001)",
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcmp(e, known[i]) == 0) return 1;
  return 0;
}

static void fuzz_scan(const uint8_t *data, size_t size);

/* A copy of the n bytes of JSON text s with whitespace after every '{' '['
 * ',' ':' and before every '}' ']' outside strings; malloc'd, exact size. */
static char *spaced(const char *s, size_t n, size_t *outn, unsigned seed) {
  static const char ws[] = " \t\n\r";
  char *o = malloc(2 * n + 2);
  size_t k = 0;
  int in_string = 0;
  o[k++] = ws[seed++ & 3];
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_string) {
      o[k++] = c;
      if (c == '\\' && i + 1 < n) o[k++] = s[++i];
      else if (c == '"') in_string = 0;
      continue;
    }
    if (c == '}' || c == ']') o[k++] = ws[seed++ & 3];
    o[k++] = c;
    if (c == '"') in_string = 1;
    if (c == '{' || c == '[' || c == ',' || c == ':') o[k++] = ws[seed++ & 3];
  }
  o[k++] = ws[seed & 3];
  *outn = k;
  return realloc(o, k);
}

static void fuzz_encode(const uint8_t *data, size_t size) {
  struct rd r = {data, size, 0, 0};
  int base = lua_gettop(L);
  build(&r, 0);
  int v = lua_gettop(L);
  struct expect x = {0, 1};
  lua_pushvalue(L, v);
  x.fails = analyse(&x, 0);
  lua_settop(L, v);

  char err[256];
  int ok = flosse_ljson_encode(L, v, err, sizeof err);
  if (ok != 1 && ok != 0) FAIL("encode returned %d", ok);
  if (lua_gettop(L) != v + ok) FAIL("encode left %d values", lua_gettop(L) - v);
  if (ok == x.fails) FAIL("encode %s (%s), expected %s", ok ? "succeeded" : "failed", ok ? "" : err,
                          x.fails ? "an error" : "a text");
  if (!ok && !is_known_error(err)) FAIL("unknown error text: %s", err);

  if (ok) {
    struct out o;
    o.s = lua_tolstring(L, -1, &o.len);
    o.pos = 0;
    lua_pushvalue(L, v);
    walk(&o);
    lua_pop(L, 1);
    if (o.pos != o.len) FAIL("%zu bytes after the value in the output", o.len - o.pos);
    lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
    lua_pushvalue(L, v + 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) FAIL("cjson.decode refuses our output: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    /* our objects are well-formed JSON: the scanner must take them, bare
     * and with whitespace everywhere (copies of their exact size) */
    if (o.len && o.s[0] == '{') {
      char *copy = malloc(o.len);
      memcpy(copy, o.s, o.len);
      fuzz_scan((const uint8_t *)copy, o.len);
      free(copy);
      size_t sn;
      char *sp = spaced(o.s, o.len, &sn, size ? data[0] : 0);
      fuzz_scan((const uint8_t *)sp, sn);
      free(sp);
    }
  }

  if (x.comparable) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, encode_ref);
    lua_pushvalue(L, v);
    int st = lua_pcall(L, 1, 1, 0);
    size_t cl;
    const char *c = lua_tolstring(L, -1, &cl);
    if ((st == LUA_OK) != ok) FAIL("cjson %s but we %s", st == LUA_OK ? "encodes" : "fails", ok ? "encode" : "fail");
    if (ok) {
      size_t ol;
      const char *ours = lua_tolstring(L, v + 1, &ol);
      if (ol != cl || memcmp(ours, c, cl) != 0) FAIL("cjson wrote [%s], we [%s]", c, ours);
    } else if (strcmp(c, err) != 0) {
      FAIL("cjson says [%s], we [%s]", c, err);
    }
  }
  lua_settop(L, base);
}

/* ---- (b) the member scanner ------------------------------------------------- */

/* Lua values a and b (absolute indices) are the same: NaN equals NaN. */
static int same(int a, int b, int depth) {
  if (!lua_checkstack(L, 4)) FAIL("no Lua stack");
  int t = lua_type(L, a);
  if (t != lua_type(L, b)) return 0;
  if (t == LUA_TNUMBER) {
    double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
    return memcmp(&x, &y, sizeof x) == 0 || (x != x && y != y);
  }
  if (t != LUA_TTABLE) return lua_rawequal(L, a, b);
  if (depth > 1100) FAIL("decoded values nested too deep");
  lua_Integer na = 0, nb = 0;
  lua_pushnil(L);
  while (lua_next(L, a)) {
    na++;
    lua_pushvalue(L, -2);
    lua_rawget(L, b);
    int eq = same(lua_gettop(L) - 1, lua_gettop(L), depth + 1);
    lua_pop(L, 2);
    if (!eq) {
      lua_pop(L, 1);
      return 0;
    }
  }
  lua_pushnil(L);
  while (lua_next(L, b)) {
    nb++;
    lua_pop(L, 1);
  }
  return na == nb;
}

/* cjson.decode of len bytes: 1 with the value pushed, or 0 with nothing. */
static int decode(const char *s, size_t len) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
  lua_pushlstring(L, s, len);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return 1;
  lua_pop(L, 1);
  return 0;
}

static void fuzz_scan(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  int base = lua_gettop(L);
  struct flosse_json_scan sc;
  struct flosse_json_member m;
  char err[128];
  enum { MAXM = 4096 };
  static struct flosse_json_member ms[MAXM];
  size_t nm = 0, last = 0;
  int rc = flosse_json_scan_init(&sc, s, size, err, sizeof err);
  if (rc == FLOSSE_OK) {
    while ((rc = flosse_json_scan_next(&sc, &m, err, sizeof err)) == 1) {
      if (m.key.off < last || m.key.len < 2 || m.key.off + m.key.len > m.value.off ||
          m.value.len == 0 || m.value.off + m.value.len > size)
        FAIL("member %zu: spans out of order or bounds", nm);
      if (s[m.key.off] != '"' || s[m.key.off + m.key.len - 1] != '"') FAIL("a key span is not quoted");
      last = m.value.off + m.value.len;
      if (nm < MAXM) ms[nm] = m;
      nm++;
    }
    if (rc != 0 && rc != FLOSSE_ERR) FAIL("scan_next returned %d", rc);
    if (rc == 0 && memchr(s, '\0', size)) FAIL("the scanner takes a text with a NUL");
  }
  size_t k = 0;
  while (k < size && strchr(" \t\r\n", s[k]) && s[k]) k++;
  int object = k < size && s[k] == '{';
  if (!object || memchr(s, '\0', size) || !decode(s, size)) {
    lua_settop(L, base);
    return;
  }
  int obj = lua_gettop(L);
  if (rc != 0) FAIL("cjson.decode takes the object but the scanner says: %s", err);
  if (nm > MAXM) {
    lua_settop(L, base);
    return;
  }
  /* each key's last value, in a table of our own */
  lua_createtable(L, 0, (int)nm);
  int mine = lua_gettop(L);
  for (size_t i = 0; i < nm; i++) {
    if (!decode(s + ms[i].key.off, ms[i].key.len)) FAIL("key %zu does not decode", i);
    if (lua_type(L, -1) != LUA_TSTRING) FAIL("key %zu is not a string", i);
    if (!decode(s + ms[i].value.off, ms[i].value.len))
      FAIL("value %zu [%.*s] does not decode", i, (int)ms[i].value.len, s + ms[i].value.off);
    lua_rawset(L, mine);
  }
  if (!same(obj, mine, 0)) FAIL("the members' values are not the decoded object's");
  lua_settop(L, base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_encode(data, size);
  fuzz_scan(data, size);
  /* Each input frees what it made, or libFuzzer suspects a leak after every
   * one and stops the world to look (hundreds of times slower). */
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
