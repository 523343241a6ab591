/* Encode cost: flosse_ljson_encode (core/ljson.c) against lua-cjson's
 * cjson.encode on the tables views typically yield. Not a test: it prints
 * nanoseconds per encode, each way, called from C as core/stream.c calls
 * its encoder and from a Lua loop.
 *
 * Build and run (from the checkout's root):
 *   mkdir -p build && cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -O2 -I/usr/include/lua5.4 \
 *     -o build/json_bench bench/json_bench.c core/ljson.c core/json.c -llua5.4 -lm \
 *     && build/json_bench
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "../core/ljson.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine may be busy */
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns per encode of the global named table, N times, from C. */
static double from_c(lua_State *L, const char *table, int ours, int n) {
  lua_getglobal(L, table);
  int t = lua_gettop(L);
  char err[256];
  double best = 1e30;
  for (int round = 0; round < 9; round++) {
    double t0 = now();
    for (int i = 0; i < n; i++) {
      if (ours) {
        if (!flosse_ljson_encode(L, t, err, sizeof err)) return -1;
      } else {
        lua_getglobal(L, "cjson_encode");
        lua_pushvalue(L, t);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) return -1;
      }
      lua_pop(L, 1);
    }
    double ns = (now() - t0) / n;
    if (ns < best) best = ns;
  }
  lua_pop(L, 1);
  return best;
}

/* ns per encode from a Lua loop. */
static double from_lua(lua_State *L, const char *table, const char *fn, int n) {
  char code[256];
  snprintf(code, sizeof code,
           "local f, t, n = %s, %s, %d local c = os.clock() for i = 1, n do f(t) end "
           "return (os.clock() - c) * 1e9 / n",
           fn, table, n);
  double best = 1e30;
  for (int round = 0; round < 9; round++) {
    if (luaL_dostring(L, code) != LUA_OK) return -1;
    double ns = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (ns < best) best = ns;
  }
  return best;
}

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, "cjson = require 'cjson' cjson_encode = cjson.encode") != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_newtable(L);
  flosse_ljson_register(L);
  lua_setglobal(L, "J");
  (void)luaL_dostring(L,
                "small = { id = 42, step = 3, total = 10, pct = 30, seq = 1234,"
                "  event = 'progress', user = 'alice', state = 'running', node = 'eu-1',"
                "  msg = 'half way' }\n"
                "floats = { a = 0.1, b = 0.25, c = 1/3, d = 12.5, e = 99.99, f = 0.3,"
                "  g = 2.75, h = 1e-3, i = 3.14159, j = 42.0 }\n"
                "nested = { event = 'order', order = { id = 1796150648138900, items = {"
                "  { sku = 'A-1', qty = 2 }, { sku = 'B-22', qty = 1 } }, paid = true },"
                "  tags = { 'new', 'eu' } }\n");
  const int n = 200000;
  printf("%-34s %12s %12s %12s %12s\n", "table (ns per encode)", "cjson C", "ours C",
         "cjson Lua", "ours Lua");
  const char *tables[] = {"small", "floats", "nested"};
  const char *labels[] = {"10 fields: 5 small ints, 5 strings", "10 floats", "nested (3 levels)"};
  for (int k = 0; k < 3; k++) {
    int m = k == 1 ? n / 4 : n;
    printf("%-34s %12.0f %12.0f %12.0f %12.0f\n", labels[k], from_c(L, tables[k], 0, m),
           from_c(L, tables[k], 1, m), from_lua(L, tables[k], "cjson.encode", m),
           from_lua(L, tables[k], "J.json_encode", m));
  }
  (void)luaL_dostring(L, "return J.json_encode(small)");
  printf("small: %s\n", lua_tostring(L, -1));
  lua_close(L);
  return 0;
}
