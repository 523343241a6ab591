/* Tests of core/ljson.c against lua-cjson 2.1.0 (Debian's lua-cjson, loaded
 * with require "cjson"): on values whose numbers need 14 digits or fewer,
 * flosse_ljson_encode must give cjson.encode's bytes exactly, and fail where
 * it fails with the same message; beyond that, integers must be exact and
 * floats shortest. Prints TAP ("ok N - ljson: ...").
 *
 * Build and run (from the checkout's root):
 *   mkdir -p build/test && cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -g \
 *     -fsanitize=address,undefined -fno-omit-frame-pointer -I/usr/include/lua5.4 \
 *     -o build/test/ljson_test spec/c/ljson_test.c core/ljson.c core/json.c -llua5.4 -lm \
 *     && build/test/ljson_test
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "../../core/ljson.h"

#define TAP_PREFIX "ljson"
#include "tap.h"

/* The Lua half: `check(cond, what, detail)` reports a TAP line; J is the
 * table flosse_ljson_register filled; cjson is Debian's. */
static const char *const COMPARE =
    "local J, cjson = ...\n"
    "local function same(v)\n"
    "  local ok1, a = pcall(cjson.encode, v)\n"
    "  local b, e = J.json_encode(v)\n"
    "  if ok1 then return b == a, a, b or e end\n"
    "  return b == nil and e == a, a, b or e\n"
    "end\n"
    "local function show(s) return (tostring(s):gsub('[%z\\1-\\31\\127-\\255]', function(c)\n"
    "  return ('\\\\%d'):format(c:byte()) end)) end\n"
    "local function is(v, what)\n"
    "  local ok, a, b = same(v)\n"
    "  check(ok, what, 'cjson [' .. show(a) .. '] ours [' .. show(b) .. ']')\n"
    "end\n"
    /* fixed cases: each a line of its own */
    "is({}, 'the empty table is {}')\n"
    "is({1, 2, 3}, 'an array')\n"
    "is({'a', {b = true, c = false}, {}, {{}}}, 'nested arrays and objects')\n"
    "is({count = 1}, 'an object')\n"
    "is({1, 2, nil, 4}, 'a hole is null')\n"
    "is({[10] = 1}, 'a sparse array up to 10 keys (sparse_safe)')\n"
    "is({[1] = 1, [2] = 2, [5] = 5, [6] = 6, [12] = 12, [11] = 11}, 'sparse within the ratio')\n"
    "is({[11] = 1}, 'an excessively sparse array is an error')\n"
    "is({1, [20] = 2}, 'an excessively sparse array (two keys) is an error')\n"
    "is({[0] = 'a', [1] = 'b'}, 'a key 0 makes an object')\n"
    "is({[-1] = 'a'}, 'a negative key makes an object')\n"
    "is({[1.5] = 1, [2] = 2}, 'a float key makes an object, written as its number')\n"
    "is({1, 2, x = 3}, 'mixed keys make an object with number keys as strings')\n"
    "is({[3000000000] = 'x'}, 'a key above INT_MAX alone: an object')\n"
    "is({1, 2, [3000000000] = 3}, 'a key above INT_MAX with an array part: an object')\n"
    "is({[true] = 1}, 'a boolean key is an error')\n"
    "is({[{}] = 1}, 'a table key is an error')\n"
    "is({[print] = 1}, 'a function key is an error')\n"
    "is({[math.huge] = 1}, 'an infinite key is an error')\n"
    "is(print, 'a function is an error')\n"
    "is({f = print}, 'a function inside is an error')\n"
    "is(coroutine.create(print), 'a thread is an error')\n"
    "is(io.stdout, 'a full userdata is an error')\n"
    "is(0/0, 'NaN is an error')\n"
    "is(-(0/0), '-NaN is an error')\n"
    "is(math.huge, 'Infinity is an error')\n"
    "is({-math.huge}, '-Infinity inside is an error')\n"
    "is(cjson.null, 'cjson.null is null')\n"
    "is({cjson.null, a = cjson.null}, 'cjson.null inside is null')\n"
    "is(nil, 'nil is null')\n"
    "is(true, 'true') is(false, 'false')\n"
    "is('', 'the empty string')\n"
    "is('a/b\"c\\\\d\\0\\1\\31\\127\\128\\255\\b\\f\\n\\r\\t\\11', 'escapes')\n"
    "is('caf\\195\\169 \\226\\130\\172', 'UTF-8')\n"
    "is(('x'):rep(100000) .. '\\n' .. ('\"'):rep(10000), 'a long string (escaped in pieces)')\n"
    "is(0, 'zero') is(-0.0, 'minus zero') is(1.0, '1.0') is(0.1, '0.1') is(-1.5, '-1.5')\n"
    "is(12345678901234, 'a 14-digit integer') is(-99999999999999, 'a 14-digit negative')\n"
    "is(1e14 - 1, '1e14 - 1 as a float') is(1e16, '1e16') is(1e21, '1e21') is(1e300, '1e300')\n"
    "is(1e-7, '1e-7') is(0.0001, '0.0001') is(123.456, '123.456') is(2^-20, '2^-20')\n"
    "is(setmetatable({}, {__index = function() error('no') end, __pairs = error,\n"
    "  __len = function() return 3 end}), 'metamethods are not called')\n"
    "is(setmetatable({1, 2}, {__index = function() return 9 end}), 'raw access (array)')\n"
    "local t = {} local x = t for i = 1, 999 do x[1] = {} x = x[1] end\n"
    "is(t, '1000 nested tables are fine')\n"
    "x[1] = {}\n"
    "is(t, '1001 nested tables are an error with cjson\\'s text')\n"
    "local o = {} local y = o for i = 1, 1005 do y.k = {} y = y.k end\n"
    "is(o, 'deep objects are an error too')\n"
    /* random values: integers and floats of 14 digits or fewer */
    "math.randomseed(20240611)\n"
    "local rnd = math.random\n"
    "local function rstring()\n"
    "  local n, t = rnd(0, 10), {}\n"
    "  for i = 1, n do t[i] = string.char(rnd(0, 3) == 0 and rnd(0, 255) or rnd(32, 126)) end\n"
    "  return table.concat(t)\n"
    "end\n"
    "local function rnumber()\n"
    "  local r = rnd(1, 7)\n"
    "  if r == 1 then return rnd(-99999999999999, 99999999999999) end\n"
    "  if r == 2 then return rnd(-1000, 1000) end\n"
    "  if r == 3 then return rnd(-99999999, 99999999) / 10 ^ rnd(0, 12) end\n"
    "  if r == 4 then return rnd(-1000000, 1000000) + 0.0 end\n"
    "  if r == 5 then\n"
    "    local v = tonumber(('%.' .. rnd(1, 14) .. 'g'):format((rnd() - 0.5) * 10 ^ rnd(-300, 300)))\n"
    "    if v == math.floor(v) and math.abs(v) >= 1e14 and math.abs(v) <= 2^53 then return 0.5 end\n"
    "    if v ~= 0 and math.abs(v) < 2.2250738585072014e-308 then return 0.25 end\n"
    "    return v\n"
    "  end\n"
    "  if r == 6 then return ({0.0, -0.0, 1e300, 1e-300, 0.5, 1e16, 2^40, 1/4})[rnd(1, 8)] end\n"
    "  return rnd(-10, 10) * 1.0 / 8\n"
    "end\n"
    "local gen\n"
    "local function rkey()\n"
    "  local r = rnd(1, 5)\n"
    "  if r <= 3 then return rstring() end\n"
    "  if r == 4 then return rnd(-5, 40) end\n"
    "  local k = rnumber()\n"
    "  -- an integral float key becomes an integer key: exact, so beyond 14 digits not cjson's\n"
    "  if math.tointeger(k) and math.abs(k) >= 1e14 then return 'big' end\n"
    "  -- cjson casts a key above INT_MAX to int (undefined): an object or an error by key order\n"
    "  if k == math.floor(k) and k > 2147483647 then return 'above INT_MAX' end\n"
    "  return k\n"
    "end\n"
    "function gen(depth)\n"
    "  local r = rnd(1, depth > 4 and 6 or 9)\n"
    "  if r == 1 then return rstring() end\n"
    "  if r == 2 then return rnumber() end\n"
    "  if r == 3 then return rnd(0, 1) == 1 end\n"
    "  if r == 4 then return cjson.null end\n"
    "  if r == 5 then return rnumber() end\n"
    "  if r == 6 then return rstring() end\n"
    "  local t = {}\n"
    "  if r == 7 then for i = 1, rnd(0, 6) do t[i] = gen(depth + 1) end\n"
    "    if rnd(1, 4) == 1 then t[rnd(1, 8)] = nil end\n"
    "  elseif r == 8 then for i = 1, rnd(0, 6) do local k = rkey()\n"
    "      if k == k then t[k] = gen(depth + 1) end end\n"
    "  else for i = 1, rnd(0, 4) do t[rnd(1, 30)] = gen(depth + 1) end end\n"
    "  if rnd(1, 200) == 1 then t[#t + 1] = ({print, 0/0, math.huge, io.stdout})[rnd(1, 4)] end\n"
    "  if rnd(1, 200) == 1 then t[true] = 1 end\n"
    "  return t\n"
    "end\n"
    "local n, bad, errors, first = 20000, 0, 0, nil\n"
    "for i = 1, n do\n"
    "  local v = gen(0)\n"
    "  local ok, a, b = same(v)\n"
    "  if not ok then bad = bad + 1; first = first or ('cjson [' .. show(a) .. '] ours [' .. show(b) .. ']') end\n"
    "  if not pcall(cjson.encode, v) then errors = errors + 1 end\n"
    "end\n"
    "check(bad == 0, ('%d random values: the same bytes, or the same error (%d were errors)')\n"
    "  :format(n, errors), first)\n"
    "check(errors > 100 and errors < n / 2, 'the random values include errors', tostring(errors))\n"
    /* where we differ on purpose: numbers beyond 14 digits */
    "local function enc(v) return (assert(J.json_encode(v))) end\n"
    "check(enc({ts = 1796150648138900}) == '{\"ts\":1796150648138900}', 'an integer of 16 digits is exact',\n"
    "  enc({ts = 1796150648138900}))\n"
    "check(enc(math.maxinteger) == '9223372036854775807', 'math.maxinteger is exact', enc(math.maxinteger))\n"
    "check(enc(math.mininteger) == '-9223372036854775808', 'math.mininteger is exact', enc(math.mininteger))\n"
    "check(enc({[math.maxinteger] = 1}) == '{\"9223372036854775807\":1}', 'an integer key is exact',\n"
    "  enc({[math.maxinteger] = 1}))\n"
    "check(enc(1796150648138900.0) == '1796150648138900', 'an integral float up to 2^53 in full',\n"
    "  enc(1796150648138900.0))\n"
    "check(enc(cjson.decode('{\"ts\":1796150648138900}').ts) == '1796150648138900',\n"
    "  'a number cjson.decode made a float comes back as it was sent')\n"
    "check(enc(2^53) == '9007199254740992', '2^53', enc(2^53))\n"
    "check(enc(1e14) == '100000000000000' and cjson.encode(1e14) == '1e+14',\n"
    "  'an integral float from 1e14 to 2^53 in full (cjson: 1e+14)', enc(1e14))\n"
    "check(enc(1/3) == '0.3333333333333333', '1/3 in 16 digits', enc(1/3))\n"
    "check(enc(0.1 + 0.2) == '0.30000000000000004', '0.1 + 0.2 in 17 digits', enc(0.1 + 0.2))\n"
    "check(enc(5e-324) == '5e-324', '5e-324', enc(5e-324))\n"
    "check(enc({[1/3] = true}) == '{\"0.3333333333333333\":true}', 'a float key shortest', enc({[1/3] = true}))\n"
    "for i = 1, 2000 do\n"
    "  local v = math.random(math.mininteger, math.maxinteger)\n"
    "  local s = enc({v})\n"
    "  if s ~= '[' .. string.format('%d', v) .. ']' or tonumber(s:sub(2, -2)) ~= v then\n"
    "    check(false, 'random 64-bit integers are exact', s) return end\n"
    "end\n"
    "check(true, 'random 64-bit integers are exact')\n"
    "for i = 1, 2000 do\n"
    "  local v = string.unpack('d', string.pack('i8', math.random(math.mininteger, math.maxinteger)))\n"
    "  if v == v and v ~= math.huge and v ~= -math.huge then\n"
    "    local s = enc(v)\n"
    "    if string.pack('d', tonumber(s)) ~= string.pack('d', v) then\n"
    "      check(false, 'random doubles read back', s) return end\n"
    "  end\n"
    "end\n"
    "check(true, 'random doubles read back (tonumber)')\n"
    /* json_members */
    "local m = assert(J.json_members(' {\"a\" : 1796150648138900, \"b\":{\"c\":[1,\"}\"]}, \"a\":\"x\"} '))\n"
    "check(#m == 6 and m[1] == '\"a\"' and m[2] == '1796150648138900' and m[3] == '\"b\"'\n"
    "  and m[4] == '{\"c\":[1,\"}\"]}' and m[5] == '\"a\"' and m[6] == '\"x\"',\n"
    "  'json_members gives raw keys and values in order', table.concat(m, ' | '))\n"
    "local e1, e2 = J.json_members('{\"a\":1,}')\n"
    "check(e1 == nil and e2 == 'malformed JSON object at byte 7: expected \\'\"\\' (a key) or \\'}\\'',\n"
    "  'json_members on malformed text: nil, message', tostring(e2))\n"
    "local e3, e4 = J.json_members('[1]')\n"
    "check(e3 == nil and e4:find('expected \\'{\\'', 1, true), 'json_members on an array: nil, message',\n"
    "  tostring(e4))\n"
    "check(#assert(J.json_members('{}')) == 0, 'json_members on {}: an empty list')\n"
    "check(not pcall(J.json_members), 'json_members() raises (misuse)')\n"
    "check(not pcall(J.json_encode), 'json_encode() raises (misuse)')\n"
    "local r1, r2 = J.json_encode(print)\n"
    "check(r1 == nil and r2 == 'Cannot serialise function: type not supported', 'json_encode: nil, message',\n"
    "  tostring(r2))\n";

static int l_check(lua_State *L) {
  check(lua_toboolean(L, 1), luaL_checkstring(L, 2), luaL_optstring(L, 3, NULL));
  return 0;
}

/* An allocator with a cap, to see a memory failure returned, not raised. */
struct capped {
  size_t used, cap;
};

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct capped *c = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    c->used -= old;
    return NULL;
  }
  if (nsize > old && c->used - old + nsize > c->cap) return NULL;
  void *p = realloc(ptr, nsize);
  if (p) c->used = c->used - old + nsize;
  return p;
}

static void test_c_api(lua_State *L) {
  char err[256];
  int top = lua_gettop(L);

  lua_newtable(L);
  lua_pushinteger(L, 42);
  lua_setfield(L, -2, "n");
  int ok = flosse_ljson_encode(L, -1, err, sizeof err);
  check(ok == 1 && lua_gettop(L) == top + 2 && strcmp(lua_tostring(L, -1), "{\"n\":42}") == 0,
        "C: encode pushes the text and returns 1", NULL);
  lua_settop(L, top);

  int x;
  lua_pushlightuserdata(L, &x);
  strcpy(err, "untouched");
  ok = flosse_ljson_encode(L, -1, err, sizeof err);
  check(ok == 0 && lua_gettop(L) == top + 1 &&
            strcmp(err, "Cannot serialise userdata: type not supported") == 0,
        "C: a light userdata: returns 0, err filled, nothing pushed", err);
  lua_getglobal(L, "cjson");
  lua_getfield(L, -1, "encode");
  lua_pushlightuserdata(L, &x);
  int st = lua_pcall(L, 1, 1, 0);
  check(st != LUA_OK && strcmp(lua_tostring(L, -1), err) == 0, "C: cjson says the same", NULL);
  lua_settop(L, top);

  lua_pushlightuserdata(L, NULL);
  ok = flosse_ljson_encode(L, -1, err, sizeof err);
  check(ok == 1 && strcmp(lua_tostring(L, -1), "null") == 0, "C: a NULL light userdata is null",
        NULL);
  lua_settop(L, top);

  /* the buffer is reused: many encodes of a growing value, then a small one */
  for (int i = 0; i < 200; i++) {
    luaL_checkstack(L, i + 4, NULL);
    lua_pushfstring(L, "%d", i);
    lua_pushstring(L, "");
    for (int k = 0; k < i; k++) lua_pushliteral(L, "0123456789abcdef\n");
    lua_concat(L, i + 2);
    if (!flosse_ljson_encode(L, -1, err, sizeof err)) break;
    lua_settop(L, top);
  }
  check(lua_gettop(L) == top, "C: 200 encodes of growing strings", NULL);
  lua_settop(L, top);

  /* a short error buffer is cut, not overrun */
  char tiny[8];
  lua_pushcfunction(L, l_check);
  ok = flosse_ljson_encode(L, -1, tiny, sizeof tiny);
  check(ok == 0 && strcmp(tiny, "Cannot ") == 0, "C: a small err buffer is cut", tiny);
  lua_settop(L, top);

  /* out of memory under a cap is an error returned, never raised */
  struct capped cap = {0, 1 << 20};
  lua_State *M = lua_newstate(capped_alloc, &cap);
  luaL_openlibs(M);
  lua_newtable(M);
  for (int i = 1; i <= 64; i++) {
    lua_pushinteger(M, i);
    lua_pushstring(M, "");
    for (int k = 0; k < 10; k++) lua_pushliteral(M, "\x01\x01\x01\x01\x01\x01\x01\x01");
    lua_concat(M, 11);
    lua_settable(M, -3);
  }
  /* each string is 80 bytes, 480 escaped: 64 of them fit, 2,000 do not */
  ok = flosse_ljson_encode(M, -1, err, sizeof err);
  check(ok == 1, "C: a small value under the cap", err);
  lua_settop(M, 1);
  luaL_checkstack(M, 110, NULL);
  lua_pushstring(M, "");
  for (int k = 0; k < 100; k++) lua_pushliteral(M, "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01");
  lua_concat(M, 101);
  for (int i = 65; i <= 2000; i++) {
    lua_pushinteger(M, i);
    lua_pushvalue(M, 2);
    lua_settable(M, 1);
  }
  lua_settop(M, 1);
  ok = flosse_ljson_encode(M, 1, err, sizeof err);
  check(ok == 0 && lua_gettop(M) == 1 && strcmp(err, "not enough memory") == 0,
        "C: over the memory cap: returns 0 with \"not enough memory\"", err);
  lua_settop(M, 0);
  lua_pushinteger(M, 7);
  ok = flosse_ljson_encode(M, 1, err, sizeof err);
  check(ok == 1 && strcmp(lua_tostring(M, -1), "7") == 0, "C: the state works after that", err);
  lua_close(M);
  check(cap.used == 0, "C: lua_close frees the buffer", NULL);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    printf("not ok 1 - ljson: require \"cjson\" (%s)\n1..1\n", lua_tostring(L, -1));
    return 1;
  }
  lua_setglobal(L, "cjson");
  lua_pushcfunction(L, l_check);
  lua_setglobal(L, "check");

  test_c_api(L);

  if (luaL_loadstring(L, COMPARE) != LUA_OK) {
    check(0, "the comparison script loads", lua_tostring(L, -1));
  } else {
    lua_newtable(L);
    flosse_ljson_register(L);
    lua_getglobal(L, "cjson");
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) check(0, "the comparison script runs", lua_tostring(L, -1));
  }
  lua_close(L);
  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
