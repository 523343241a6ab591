/* fuzz-sources:  fuzz-libs: -llua5.4 -lm */
/* libFuzzer harness for the Lua parsers of client bytes: flosse.request's
 * parse_query, parse_cookies, unquote, trim and new, and flosse.auth's
 * TokenAuthentication (credentials, authenticate). The cases and their
 * checks are Lua, in spec/fuzz/parsers.lua; this file runs each case on the
 * fuzz input and fails (abort) when one
 *   - raises an error (a Lua error, or a check of parsers.lua that failed);
 *   - runs more than 200 * (len + 64) Lua VM instructions (a count hook);
 *   - takes more than 50 ms + 2 us per input byte of CPU time: time spent
 *     inside one C string function (a Lua pattern that backtracks) is one
 *     instruction to the hook, so only the clock sees it.
 * Both bounds are linear in the input: a parser that is quadratic on some
 * input fails on a long enough one (run with -max_len=65536).
 *
 * libFuzzer sees no coverage inside liblua (not instrumented), so a line
 * hook feeds it the Lua side instead: each (previous line, line) pair of the
 * Lua code run bumps a counter in __libfuzzer_extra_counters.
 *
 * The repository root is $FLOSSE_ROOT (spec/fuzz/run sets it), or else two
 * folders above this binary (build/fuzz/). */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define FAIL(...)                               \
  do {                                          \
    fprintf(stderr, "lua_parsers_fuzz: ");      \
    fprintf(stderr, __VA_ARGS__);               \
    fputc('\n', stderr);                        \
    abort();                                    \
  } while (0)

#define HOOK_EVERY 100 /* instructions between two count hooks */
#define NCOUNTERS (1 << 14)

__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_edges[NCOUNTERS];

static lua_State *L;
static int ncases;
static long long instructions, budget;
static uintptr_t prev_line;

static void hook(lua_State *l, lua_Debug *ar) {
  if (ar->event == LUA_HOOKCOUNT) {
    instructions += HOOK_EVERY;
    if (instructions > budget) luaL_error(l, "more than %lld Lua instructions", budget);
    return;
  }
  if (ar->event == LUA_HOOKLINE && lua_getinfo(l, "S", ar)) {
    uintptr_t here = ((uintptr_t)ar->source * 31u) ^ ((uintptr_t)ar->currentline * 2654435761u);
    size_t i = (size_t)((here ^ (prev_line >> 1)) % NCOUNTERS);
    if (lua_edges[i] < 255) lua_edges[i]++;
    prev_line = here;
  }
}

static int traceback(lua_State *l) {
  const char *msg = lua_tostring(l, 1);
  luaL_traceback(l, l, msg ? msg : "(an error object that is not a string)", 1);
  return 1;
}

/* The repository root: $FLOSSE_ROOT, or two folders above the binary. */
static void find_root(char *root, size_t len) {
  const char *env = getenv("FLOSSE_ROOT");
  if (env && *env) {
    snprintf(root, len, "%s", env);
    return;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) FAIL("cannot find the repository: set FLOSSE_ROOT");
  exe[n] = '\0';
  for (int up = 0; up < 3; up++) { /* drop the name, then fuzz/, then build/ */
    char *slash = strrchr(exe, '/');
    if (!slash) FAIL("cannot find the repository from %s: set FLOSSE_ROOT", exe);
    *slash = '\0';
  }
  snprintf(root, len, "%s", exe);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char root[PATH_MAX], path[PATH_MAX + 64];
  find_root(root, sizeof root);
  snprintf(path, sizeof path, "%s/lua/flosse/request.lua", root);
  if (access(path, R_OK) != 0) FAIL("no %s: set FLOSSE_ROOT to the repository", path);

  L = luaL_newstate();
  if (!L) FAIL("out of memory");
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", root, root);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, ""); /* nothing from C: the parsers are pure Lua */
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);

  lua_pushcfunction(L, traceback);
  snprintf(path, sizeof path, "%s/spec/fuzz/parsers.lua", root);
  if (luaL_loadfile(L, path) != LUA_OK) FAIL("%s", lua_tostring(L, -1));
  if (lua_pcall(L, 0, 1, -2) != LUA_OK) FAIL("%s", lua_tostring(L, -1));
  if (!lua_istable(L, -1)) FAIL("%s returns no table of cases", path);
  ncases = (int)luaL_len(L, -1);
  if (ncases < 1) FAIL("%s has no case", path);
  lua_setfield(L, LUA_REGISTRYINDEX, "flosse_fuzz_cases");
  lua_pop(L, 1);
  return 0;
}

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned long runs;
  int top = lua_gettop(L);
  lua_pushcfunction(L, traceback);
  int tb = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, "flosse_fuzz_cases");
  int cases = lua_gettop(L);
  double limit_ms = 50.0 + 0.002 * (double)size;
  for (int i = 1; i <= ncases; i++) {
    lua_geti(L, cases, i); /* { name, fn } */
    lua_geti(L, -1, 1);
    const char *name = lua_tostring(L, -1);
    lua_geti(L, -2, 2);
    lua_pushlstring(L, (const char *)data, size);
    instructions = 0;
    budget = 200LL * ((long long)size + 64);
    prev_line = 0;
    lua_sethook(L, hook, LUA_MASKCOUNT | LUA_MASKLINE, HOOK_EVERY);
    double t0 = cpu_ms();
    int rc = lua_pcall(L, 1, 0, tb);
    double took = cpu_ms() - t0;
    lua_sethook(L, NULL, 0, 0);
    if (rc != LUA_OK)
      FAIL("case %s on %zu bytes: %s", name ? name : "?", size, lua_tostring(L, -1));
    if (took > limit_ms)
      FAIL("case %s on %zu bytes: %.1f ms of CPU (the bound is %.1f ms: 50 ms + 2 us per byte)",
           name ? name : "?", size, took, limit_ms);
    lua_pop(L, 2); /* name, the case */
  }
  lua_settop(L, top);
  /* Garbage from earlier inputs is collected outside the timed calls. */
  if (++runs % 64 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
