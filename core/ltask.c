/* Tasks for Lua: core.sleep, and background tasks (core.spawn,
 * core.cancel_tasks, the flosse.Task handle that lua/flosse/tasks.lua
 * wraps in flosse.spawn, flosse.after and flosse.every). */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "background.h"
#include "lprivate.h"
#include "wait_sleep.h"

#define TASK_MT "flosse.Task"

static int l_sleep(lua_State *T) {
  lua_Number s = luaL_checknumber(T, 1);
  luaL_argcheck(T, s >= 0 && s == s, 1, "seconds must be a non-negative number");
  struct flosse_task *t = flosse_task_of(T);
  if (!t) return luaL_error(T, "flosse.sleep must be called from a view or a task (in its own coroutine)");
  if (!lua_isyieldable(T))
    return luaL_error(T, "flosse.sleep cannot wait here (inside a C call or metamethod)");
  return flosse_wait_sleep_arm(T, t, s);
}

/* The handle: the task, until it is over for good. */
struct lhandle {
  struct flosse_bgtask *b;
  lua_State *L;     /* the worker's main thread, to drop the anchor */
  int self_ref;     /* anchors the handle while the task lives */
  unsigned long runs; /* kept once the task is over */
};

static void ended(struct flosse_bgtask *b, void *data) {
  struct lhandle *h = data;
  h->runs = b->runs;
  h->b = NULL;
  luaL_unref(h->L, LUA_REGISTRYINDEX, h->self_ref);
  h->self_ref = LUA_NOREF;
}

/* core.spawn(fn, delay, interval, name [, generation]) -> handle
 * generation: nil inherits the calling background task's (0 elsewhere). */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_Number delay = luaL_checknumber(L, 2), interval = luaL_optnumber(L, 3, 0);
  luaL_argcheck(L, delay >= 0 && delay == delay, 2, "delay must be a non-negative number");
  luaL_argcheck(L, interval >= 0 && interval == interval, 3, "interval must be a non-negative number");
  const char *name = luaL_optstring(L, 4, "?");
  int generation = lua_isnoneornil(L, 5) ? flosse_background_generation_of(L) : (int)luaL_checkinteger(L, 5);
  struct flosse_server *srv = flosse_lcheck_server(L, "flosse.spawn");
  if (srv->stopping) return luaL_error(L, "the server is stopping: no new tasks");
  struct lhandle *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->b = NULL;
  h->L = srv->loop.L;
  h->self_ref = LUA_NOREF;
  h->runs = 0;
  luaL_setmetatable(L, TASK_MT);
  lua_pushvalue(L, 1);
  struct flosse_bgtask *b = flosse_background_start(&srv->background, L, delay,
                                                    interval, generation, name);
  if (!b) return luaL_error(L, "out of memory");
  h->b = b;
  b->ended = ended;
  b->ended_data = h;
  lua_pushvalue(L, -1);
  h->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

static struct lhandle *check_handle(lua_State *L) { return luaL_checkudata(L, 1, TASK_MT); }

/* handle:cancel(): no more runs; a run in progress is closed (its
 * to-be-closed variables run). Returns true if it was still live. */
static int handle_cancel(lua_State *L) {
  struct lhandle *h = check_handle(L);
  int live = h->b && !h->b->cancelled;
  if (live) flosse_background_cancel(h->b);
  lua_pushboolean(L, live);
  return 1;
}

/* handle:active() -> true while it will still run (or is running). */
static int handle_active(lua_State *L) {
  struct lhandle *h = check_handle(L);
  lua_pushboolean(L, h->b && !h->b->cancelled);
  return 1;
}

static int handle_runs(lua_State *L) {
  struct lhandle *h = check_handle(L);
  lua_pushinteger(L, (lua_Integer)(h->b ? h->b->runs : h->runs));
  return 1;
}

static int handle_tostring(lua_State *L) {
  struct lhandle *h = check_handle(L);
  if (!h->b) lua_pushliteral(L, "flosse.Task (over)");
  else lua_pushfstring(L, "flosse.Task (%s%s)", h->b->name, h->b->cancelled ? ", cancelled" : "");
  return 1;
}

/* core.cancel_tasks(generation) -> how many were cancelled (this worker's). */
static int l_cancel_tasks(lua_State *L) {
  int generation = (int)luaL_checkinteger(L, 1);
  luaL_argcheck(L, generation > 0, 1, "a generation is a positive integer");
  struct flosse_server *srv = flosse_lcheck_server(L, "cancel_tasks");
  lua_pushinteger(L, flosse_background_cancel_generation(&srv->background, generation));
  return 1;
}

/* core.task_count() -> background tasks live on this worker. */
static int l_task_count(lua_State *L) {
  struct flosse_server *srv = flosse_current_server;
  lua_pushinteger(L, srv ? (lua_Integer)srv->background.count : 0);
  return 1;
}

void flosse_ltask_register(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"cancel", handle_cancel}, {"active", handle_active}, {"runs", handle_runs}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"sleep", l_sleep}, {"spawn", l_spawn}, {"cancel_tasks", l_cancel_tasks},
      {"task_count", l_task_count}, {NULL, NULL}};
  if (luaL_newmetatable(L, TASK_MT)) {
    lua_pushcfunction(L, handle_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}
