/* Redis for Lua: core.configure_redis and core.redis_settings (the
 * process's settings), and the client that lua/flosse/redis.lua wraps in
 * flosse.redis(): r:call(...) and r:pipeline{...} suspend the calling task
 * on the Redis wait (wait_redis.c) until the replies came. */
#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "channel_redis.h"
#include "lprivate.h"
#include "redis.h"
#include "revoke_redis.h"
#include "wait_redis.h"

#define CLIENT_MT "flosse.Redis"
#define CLIENTS_KEY "flosse.redis.clients"

struct lclient {
  struct flosse_redis_url url;
};

/* ---- settings --------------------------------------------------------------- */

static void check_url(lua_State *L, const char *s, struct flosse_redis_url *u) {
  char err[300];
  if (flosse_redis_url_parse(s, u, err, sizeof err) != FLOSSE_OK) luaL_error(L, "%s", err);
}

/* core.configure_redis{ url =, shards = { url, ... }, prefix =, timeout =,
 * pool = } (every key optional but one of url and shards); nil: no Redis.
 * Raises on a bad value. Before the workers start: they all read it. */
static int l_configure_redis(lua_State *L) {
  struct flosse_redis_settings s;
  flosse_redis_settings_defaults(&s);
  if (lua_isnoneornil(L, 1)) {
    flosse_redis_configure(&s);
    return 0;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getfield(L, 1, "shards") != LUA_TNIL) {
    luaL_argcheck(L, lua_istable(L, -1), 1, "redis.shards must be a list of URLs");
    lua_Integer n = luaL_len(L, -1);
    luaL_argcheck(L, n <= FLOSSE_REDIS_MAX_SHARDS, 1, "redis.shards: at most 16 shards");
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "redis.shards[%d] must be a URL string", (int)i);
      check_url(L, lua_tostring(L, -1), &s.shards[s.nshards++]);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "url") != LUA_TNIL) {
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 1, "redis.url must be a URL string");
    check_url(L, lua_tostring(L, -1), &s.url);
  } else if (s.nshards) {
    s.url = s.shards[0];
  } else {
    return luaL_error(L, "redis: give url (or shards)");
  }
  lua_pop(L, 1);
  if (!s.nshards) s.shards[s.nshards++] = s.url;
  if (lua_getfield(L, 1, "prefix") != LUA_TNIL) {
    size_t len;
    const char *p = lua_tolstring(L, -1, &len);
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING && len < sizeof s.prefix, 1,
                  "redis.prefix must be a string of at most 127 bytes");
    memcpy(s.prefix, p, len + 1);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "timeout") != LUA_TNIL) {
    int isnum;
    lua_Number t = lua_tonumberx(L, -1, &isnum);
    luaL_argcheck(L, isnum && t > 0 && t < 1e9, 1, "redis.timeout must be a positive number of seconds");
    s.timeout = t;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "pool") != LUA_TNIL) {
    int isnum;
    lua_Integer n = lua_tointegerx(L, -1, &isnum);
    luaL_argcheck(L, isnum && n >= 1 && n <= 64, 1, "redis.pool must be an integer from 1 to 64");
    s.pool = (int)n;
  }
  lua_pop(L, 1);
  s.configured = 1;
  flosse_redis_configure(&s);
  /* Channels go through Redis from now on: a worker may take requests
   * before the first worker's loop (which holds the link) runs. */
  flosse_channel_redis_configure();
  return 0;
}

/* core.redis_settings() -> { url =, shards = {...}, prefix =, timeout =,
 * pool = } (URLs as log text: no password), or nil when not configured. */
static int l_redis_settings(lua_State *L) {
  const struct flosse_redis_settings *s = flosse_redis_settings();
  if (!s->configured) return 0;
  lua_createtable(L, 0, 5);
  lua_pushstring(L, s->url.text);
  lua_setfield(L, -2, "url");
  lua_createtable(L, s->nshards, 0);
  for (int i = 0; i < s->nshards; i++) {
    lua_pushstring(L, s->shards[i].text);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "shards");
  lua_pushstring(L, s->prefix);
  lua_setfield(L, -2, "prefix");
  lua_pushnumber(L, s->timeout);
  lua_setfield(L, -2, "timeout");
  lua_pushinteger(L, s->pool);
  lua_setfield(L, -2, "pool");
  return 1;
}

/* core.node_id() -> this process's id among the nodes (revocations). */
static int l_node_id(lua_State *L) {
  lua_pushstring(L, flosse_revoke_redis_node());
  return 1;
}

/* core.redis_url_check(url) -> true, or nil, message (for flosse check). */
static int l_redis_url_check(lua_State *L) {
  struct flosse_redis_url u;
  char err[300];
  if (flosse_redis_url_parse(luaL_checkstring(L, 1), &u, err, sizeof err) != FLOSSE_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- the client ------------------------------------------------------------- */

/* core.redis_client([url]) -> the worker's client for url (default: the
 * configured one), made once per URL. */
static int l_redis_client(lua_State *L) {
  const struct flosse_redis_settings *s = flosse_redis_settings();
  const char *url = luaL_optstring(L, 1, NULL);
  if (!url && !s->configured)
    return luaL_error(L, "flosse.redis(): no Redis is configured (set redis = \"redis://HOST:PORT/DB\" "
                         "in settings.lua, or pass --redis URL to flosse serve)");
  lua_getfield(L, LUA_REGISTRYINDEX, CLIENTS_KEY);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CLIENTS_KEY);
  }
  lua_pushstring(L, url ? url : "");
  if (lua_rawget(L, -2) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  struct flosse_redis_url u;
  if (url) check_url(L, url, &u);
  else u = s->url;
  struct lclient *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->url = u;
  luaL_setmetatable(L, CLIENT_MT);
  lua_pushstring(L, url ? url : "");
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  return 1;
}

static struct lclient *check_client(lua_State *L) { return luaL_checkudata(L, 1, CLIENT_MT); }

/* The task to suspend, or a raised error saying where Redis may be used. */
static struct flosse_task *waiting_task(lua_State *T, const char *what) {
  struct flosse_task *t = flosse_task_of(T);
  if (!t)
    luaL_error(T, "%s must be called from a view, a permission or authentication class, or a task "
                  "(in its own coroutine, not at the top of a module or in a coroutine of its own)", what);
  if (!lua_isyieldable(T))
    luaL_error(T, "%s cannot wait here (inside a C call or metamethod that cannot yield)", what);
  return t;
}

/* The argument at idx as Redis gets it: strings as they are, integers in
 * decimal, floats with %.17g (they read back as the same double). Replaces
 * the stack slot with the string; raises for any other type. */
static void arg_to_string(lua_State *L, int idx, const char *what) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    return;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    } else {
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", (double)lua_tonumber(L, idx));
      lua_pushstring(L, buf);
    }
    lua_replace(L, idx);
    return;
  default:
    luaL_error(L, "%s: a Redis argument must be a string or a number, not %s", what, luaL_typename(L, idx));
  }
}

/* Pushes r as a Lua value: integers, strings (bulk and status), tables
 * (arrays, nested). A null is nil at the top and false inside a table (as
 * in Redis' own Lua scripting); an error inside a table is {false, text}
 * (as lua-resty-redis does). */
static void push_reply(lua_State *L, const redisReply *r, int nested) {
  luaL_checkstack(L, 4, "Redis reply nested too deep");
  switch (r->type) {
  case REDIS_REPLY_INTEGER:
    lua_pushinteger(L, (lua_Integer)r->integer);
    break;
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
    lua_pushlstring(L, r->str, r->len);
    break;
  case REDIS_REPLY_ARRAY:
    lua_createtable(L, (int)r->elements, 0);
    for (size_t i = 0; i < r->elements; i++) {
      push_reply(L, r->element[i], 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  case REDIS_REPLY_ERROR:
    lua_createtable(L, 2, 0);
    lua_pushboolean(L, 0);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, r->str, r->len);
    lua_rawseti(L, -2, 2);
    break;
  default: /* REDIS_REPLY_NIL */
    if (nested) lua_pushboolean(L, 0);
    else lua_pushnil(L);
  }
}

/* r:call's values: the reply, or nil and why (an error reply's text). */
static int push_call(lua_State *L, int n, struct redisReply **replies, const char *err, void *arg) {
  (void)n;
  (void)arg;
  if (!replies) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  if (replies[0]->type == REDIS_REPLY_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, replies[0]->str, replies[0]->len);
    return 2;
  }
  push_reply(L, replies[0], 0);
  return 1;
}

/* r:pipeline's values: a table of each command's reply (null: false, an
 * error reply: {false, text}), or nil and why no reply came. */
static int push_pipeline(lua_State *L, int n, struct redisReply **replies, const char *err, void *arg) {
  (void)arg;
  if (!replies) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    push_reply(L, replies[i], 1);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* r:call(command, args...) -> reply | nil, err */
static int client_call(lua_State *T) {
  struct lclient *c = check_client(T);
  int argc = lua_gettop(T) - 1;
  luaL_argcheck(T, argc >= 1, 2, "a command name");
  struct flosse_task *t = waiting_task(T, "redis:call");
  for (int i = 2; i <= argc + 1; i++) arg_to_string(T, i, "redis:call");
  const char **argv = lua_newuserdatauv(T, (size_t)argc * (sizeof *argv + sizeof(size_t)), 0);
  size_t *lens = (size_t *)(argv + argc);
  for (int i = 0; i < argc; i++) argv[i] = lua_tolstring(T, i + 2, &lens[i]);
  struct flosse_redis_pool *pool = flosse_redis_pool_of(t->ctx->loop, &c->url);
  if (!pool) return luaL_error(T, "out of memory");
  const char *const *argvs[1] = {argv};
  const size_t *lenss[1] = {lens};
  return flosse_wait_redis_arm(T, t, pool, 1, &argc, argvs, lenss, flosse_redis_settings()->timeout, push_call,
                               NULL, NULL);
}

/* r:pipeline{ {command, args...}, ... } -> { reply, ... } | nil, err */
static int client_pipeline(lua_State *T) {
  struct lclient *c = check_client(T);
  luaL_checktype(T, 2, LUA_TTABLE);
  lua_settop(T, 2);
  int n = (int)luaL_len(T, 2);
  luaL_argcheck(T, n >= 1 && n <= 100000, 2, "a list of 1 to 100000 commands");
  struct flosse_task *t = waiting_task(T, "redis:pipeline");
  /* Every argument as a string on the stack (above the list), so that the
   * user's tables are left as they were. */
  int total = 0;
  for (int i = 1; i <= n; i++) {
    if (lua_geti(T, 2, i) != LUA_TTABLE) return luaL_error(T, "redis:pipeline: command %d is not a table", i);
    int argc = (int)luaL_len(T, -1);
    if (argc < 1) return luaL_error(T, "redis:pipeline: command %d is empty", i);
    luaL_checkstack(T, argc + 4, "redis:pipeline: too many arguments");
    int list = lua_gettop(T);
    for (int j = 1; j <= argc; j++) {
      lua_geti(T, list, j);
      arg_to_string(T, lua_gettop(T), "redis:pipeline");
    }
    lua_remove(T, list);
    total += argc;
  }
  size_t bytes = (size_t)n * (sizeof(int) + sizeof(char **) + sizeof(size_t *)) +
                 (size_t)total * (sizeof(char *) + sizeof(size_t));
  void *block = lua_newuserdatauv(T, bytes, 0);
  const char ***argvs = block;
  const size_t **lenss = (const size_t **)(argvs + n);
  const char **argv = (const char **)(lenss + n);
  size_t *lens = (size_t *)(argv + total);
  int *argcs = (int *)(lens + total);
  int at = 3;
  /* Walk the lists again for their lengths (the strings are in order from 3). */
  for (int i = 1; i <= n; i++) {
    lua_geti(T, 2, i);
    int argc = (int)luaL_len(T, -1);
    lua_pop(T, 1);
    argcs[i - 1] = argc;
    argvs[i - 1] = argv;
    lenss[i - 1] = lens;
    for (int j = 0; j < argc; j++) argv[j] = lua_tolstring(T, at++, &lens[j]);
    argv += argc;
    lens += argc;
  }
  struct flosse_redis_pool *pool = flosse_redis_pool_of(t->ctx->loop, &c->url);
  if (!pool) return luaL_error(T, "out of memory");
  return flosse_wait_redis_arm(T, t, pool, n, argcs, (const char *const *const *)argvs, lenss,
                               flosse_redis_settings()->timeout, push_pipeline, NULL, NULL);
}

/* r:url() -> the URL for logs (no password). */
static int client_url(lua_State *L) {
  lua_pushstring(L, check_client(L)->url.text);
  return 1;
}

static int client_tostring(lua_State *L) {
  lua_pushfstring(L, "flosse.Redis (%s)", check_client(L)->url.text);
  return 1;
}

void flosse_lredis_register(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"call", client_call}, {"pipeline", client_pipeline}, {"url", client_url}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"configure_redis", l_configure_redis}, {"redis_settings", l_redis_settings},
      {"redis_url_check", l_redis_url_check}, {"redis_client", l_redis_client},
      {"node_id", l_node_id}, {NULL, NULL}};
  if (luaL_newmetatable(L, CLIENT_MT)) {
    lua_pushcfunction(L, client_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}
