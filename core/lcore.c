/* luaopen_flosse_core: the C core as the private Lua module flosse.core.
 * lua/flosse wraps it in the public API. */
#include <dlfcn.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "defaults.h"
#include "ljson.h"
#include "lprivate.h"
#include "lvalues.h"
#include "redact.h"
#include "server.h"
#include "tls.h"
#include "worker.h"

#define FLOSSE_VERSION "0.1.0"
#define SERVER_MT "flosse.Server"

struct lserver {
  struct flosse_server *srv; /* NULL once closed */
};

static struct lserver *check_server(lua_State *L) {
  struct lserver *ls = luaL_checkudata(L, 1, SERVER_MT);
  if (!ls->srv) luaL_argerror(L, 1, "server is closed");
  return ls;
}

static lua_Number opt_num_field(lua_State *L, int t, const char *k, lua_Number def) {
  lua_getfield(L, t, k);
  lua_Number v = def;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tonumberx(L, -1, &ok);
    if (!ok || v < 0 || v != v) luaL_error(L, "option %s must be a number >= 0", k);
  }
  lua_pop(L, 1);
  return v;
}

static lua_Integer opt_int_field(lua_State *L, int t, const char *k, lua_Integer def,
                                 lua_Integer min) {
  lua_getfield(L, t, k);
  lua_Integer v = def;
  if (!lua_isnil(L, -1)) {
    int ok;
    v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < min) luaL_error(L, "option %s must be an integer >= %d", k, (int)min);
  }
  lua_pop(L, 1);
  return v;
}

/* Option k, a path, into out: absolute (relative to the current folder),
 * so that a reload reads the same file whatever happens meanwhile.
 * Returns 1 when given, 0 when nil. */
static int tls_path_field(lua_State *L, const char *k, char *out, size_t outlen) {
  lua_getfield(L, 1, k);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  size_t len;
  const char *path = lua_tolstring(L, -1, &len);
  if (!path || len == 0 || strlen(path) != len) luaL_error(L, "option %s must be a file's path", k);
  char cwd[4096] = "";
  if (path[0] != '/' && !getcwd(cwd, sizeof cwd)) luaL_error(L, "option %s: cannot read the current folder", k);
  if ((size_t)snprintf(out, outlen, "%s%s%s", cwd, cwd[0] ? "/" : "", path) >= outlen)
    luaL_error(L, "option %s: path too long", k);
  lua_pop(L, 1);
  return 1;
}

/* core.listen{ host =, port =, dispatch = fn, debug =, max_url_bytes =,
 *   max_header_bytes =, max_body_bytes =, high_water =, low_water =,
 *   heartbeat =, header_timeout =, write_timeout =, grace =, max_connections =,
 *   instruction_budget =, lua_memory = (bytes), max_concurrent_streams =,
 *   tls_cert =, tls_key = (PEM files: both or neither), reload = fn, start = fn }
 * -> server | nil, message (a port taken, a certificate that does not load) */
static int l_listen(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "host");
  const char *host = luaL_optstring(L, -1, FLOSSE_DEFAULT_HOST);
  lua_getfield(L, 1, "dispatch");
  luaL_argcheck(L, lua_isfunction(L, -1), 1, "dispatch must be a function");
  lua_getfield(L, 1, "reload");
  luaL_argcheck(L, lua_isnoneornil(L, -1) || lua_isfunction(L, -1), 1, "reload must be a function");
  int reload_idx = lua_gettop(L);
  lua_getfield(L, 1, "start");
  luaL_argcheck(L, lua_isnoneornil(L, -1) || lua_isfunction(L, -1), 1, "start must be a function");
  int start_idx = lua_gettop(L);
  lua_Integer port = opt_int_field(L, 1, "port", FLOSSE_DEFAULT_PORT, 0);
  luaL_argcheck(L, port <= 65535, 1, "port must be 0..65535");
  struct flosse_config cfg;
  /* Check every option before anything is allocated. */
  cfg.http.max_url = (size_t)opt_int_field(L, 1, "max_url_bytes", FLOSSE_DEFAULT_MAX_URL_BYTES, 64);
  cfg.http.max_header = (size_t)opt_int_field(L, 1, "max_header_bytes", FLOSSE_DEFAULT_MAX_HEADER_BYTES, 256);
  cfg.http.max_body = (size_t)opt_int_field(L, 1, "max_body_bytes", FLOSSE_DEFAULT_MAX_BODY_BYTES, 0);
  cfg.high_water = (size_t)opt_int_field(L, 1, "high_water", FLOSSE_DEFAULT_HIGH_WATER, 1024);
  cfg.low_water = (size_t)opt_int_field(L, 1, "low_water", FLOSSE_DEFAULT_LOW_WATER, 0);
  cfg.resume_budget = (int)opt_int_field(L, 1, "resume_budget", FLOSSE_DEFAULT_RESUME_BUDGET, 1);
  cfg.heartbeat = opt_num_field(L, 1, "heartbeat", FLOSSE_DEFAULT_HEARTBEAT);
  cfg.header_timeout = opt_num_field(L, 1, "header_timeout", FLOSSE_DEFAULT_HEADER_TIMEOUT);
  cfg.write_timeout = opt_num_field(L, 1, "write_timeout", FLOSSE_DEFAULT_WRITE_TIMEOUT);
  cfg.grace = opt_num_field(L, 1, "grace", FLOSSE_DEFAULT_GRACE);
  cfg.max_conns = (long)opt_int_field(L, 1, "max_connections", FLOSSE_DEFAULT_MAX_CONNECTIONS, 0);
  cfg.instruction_budget = (long)opt_int_field(L, 1, "instruction_budget", FLOSSE_DEFAULT_INSTRUCTION_BUDGET, 0);
  if (cfg.instruction_budget > 0x7fffffff) cfg.instruction_budget = 0x7fffffff;
  cfg.lua_memory = (size_t)opt_int_field(L, 1, "lua_memory",
                                         (lua_Integer)FLOSSE_DEFAULT_LUA_MEMORY_MIB << 20, 0);
  lua_Integer h2s = opt_int_field(L, 1, "max_concurrent_streams", FLOSSE_DEFAULT_MAX_CONCURRENT_STREAMS, 1);
  luaL_argcheck(L, h2s <= 1000000, 1, "max_concurrent_streams must be 1..1000000");
  cfg.h2_max_streams = (unsigned)h2s;
  cfg.tls = NULL;
  char tls_cert[4096], tls_key[4096];
  int tls = tls_path_field(L, "tls_cert", tls_cert, sizeof tls_cert);
  luaL_argcheck(L, tls == tls_path_field(L, "tls_key", tls_key, sizeof tls_key), 1,
                "tls_cert and tls_key go together");
  lua_getfield(L, 1, "debug");
  cfg.debug = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (cfg.low_water > cfg.high_water) cfg.low_water = cfg.high_water / 2;

  struct lserver *ls = lua_newuserdatauv(L, sizeof *ls, 1);
  ls->srv = NULL;
  luaL_setmetatable(L, SERVER_MT);
  struct flosse_server *srv = malloc(sizeof *srv);
  if (!srv) return luaL_error(L, "out of memory");
  lua_getfield(L, 1, "worker");
  struct flosse_worker *worker = lua_touserdata(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "reuseport");
  int reuseport = lua_toboolean(L, -1);
  lua_pop(L, 1);
  char err[256];
  if (worker) {
    cfg.tls = worker->main->cfg.tls; /* one certificate, the main server's */
  } else if (tls) {
    cfg.tls = flosse_tls_new(tls_cert, tls_key, err, sizeof err);
    if (!cfg.tls) {
      free(srv);
      luaL_pushfail(L);
      lua_pushstring(L, err);
      return 2;
    }
  }
  flosse_server_init(srv, worker != NULL, &cfg);
  srv->worker = worker;
  if (worker) srv->conns_open = srv->conns.open = &worker->main->conns_open_own;
  srv->reuseport = reuseport || worker != NULL;
  ls->srv = srv;
  int rc = flosse_server_listen(srv, host, (int)port, err, sizeof err);
  if (rc != FLOSSE_OK) {
    flosse_server_free(srv, L);
    free(srv);
    ls->srv = NULL;
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_getfield(L, 1, "dispatch");
  srv->streams.dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (lua_isfunction(L, reload_idx)) {
    lua_pushvalue(L, reload_idx);
    srv->reload_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  if (lua_isfunction(L, start_idx)) {
    lua_pushvalue(L, start_idx);
    srv->start_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 1;
}

static int srv_addresses(lua_State *L) {
  struct lserver *ls = check_server(L);
  lua_createtable(L, ls->srv->nlisteners, 0);
  for (int i = 0; i < ls->srv->nlisteners; i++) {
    lua_pushstring(L, ls->srv->listeners[i].url);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Runs until SIGINT, SIGTERM or srv:stop(). Returns true after a graceful
 * stop, false when a second signal cut it short. */
static int srv_run(lua_State *L) {
  struct lserver *ls = check_server(L);
  if (ls->srv->running) return luaL_error(L, "server is already running");
  lua_pushboolean(L, flosse_server_run(ls->srv, L));
  return 1;
}

/* core.worker() -> the index of the worker running this code (0: the
 * main thread's), or nil outside a running server. */
static int l_worker(lua_State *L) {
  struct flosse_server *srv = flosse_current_server;
  if (!srv) return 0;
  lua_pushinteger(L, srv->worker ? srv->worker->index : 0);
  return 1;
}

/* core.stats() -> { channels =, connections =, lua_bytes =, workers = }:
 * the whole server's figures (every worker's), for monitoring and the
 * soak benchmark. Outside a running server only channels is set. */
static int l_stats(lua_State *L) {
  struct flosse_server *srv = flosse_current_server;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)flosse_channel_count());
  lua_setfield(L, -2, "channels");
  if (!srv) return 1;
  lua_pushinteger(L, (lua_Integer)__atomic_load_n(srv->conns_open, __ATOMIC_RELAXED));
  lua_setfield(L, -2, "connections");
  lua_pushinteger(L, (lua_Integer)flosse_server_lua_bytes(srv));
  lua_setfield(L, -2, "lua_bytes");
  lua_pushinteger(L, flosse_server_main(srv)->nworkers + 1);
  lua_setfield(L, -2, "workers");
  return 1;
}

/* core.set_log_level("error" | "warn" | "info" | "debug") */
static int l_set_log_level(lua_State *L) {
  static const char *const names[] = {"error", "warn", "info", "debug", NULL};
  flosse_log_level = luaL_checkoption(L, 1, NULL, names);
  return 0;
}

/* core.set_log_format("text" | "json"): before the workers start. */
static int l_set_log_format(lua_State *L) {
  static const char *const names[] = {"text", "json", NULL};
  flosse_log_json = luaL_checkoption(L, 1, "text", names);
  return 0;
}

/* core.say(message[, level]): a line the operator must see (listening on,
 * start-up failures), whatever the log level; at info unless told. */
static int l_say(lua_State *L) {
  static const char *const names[] = {"error", "warn", "info", "debug", NULL};
  const char *msg = luaL_checkstring(L, 1);
  int level = luaL_checkoption(L, 2, "info", names);
  flosse_log_at(level, "%s", msg);
  return 0;
}

/* core.log(level, message): a line on the server log, if level is shown. */
static int l_log(lua_State *L) {
  static const char *const names[] = {"error", "warn", "info", "debug", NULL};
  int level = luaL_checkoption(L, 1, NULL, names);
  const char *msg = luaL_checkstring(L, 2);
  flosse_log(level, "%s", msg);
  return 0;
}

/* core.time() -> the wall clock in seconds, to the microsecond: os.time()
 * is whole seconds (and lags a few ms), which would let a credential pass
 * just after the moment it expires on an open stream's clock. */
static int l_time(lua_State *L) {
  lua_pushnumber(L, ev_time());
  return 1;
}

/* core.redact_query(names): the query parameters (a list of decoded names)
 * whose values this worker's log lines show as an ellipsis from now on; the
 * app's authentication classes' (flosse.redact). More than 16 names, or one
 * over 64 bytes: every query value is redacted. */
static int l_redact_query(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  struct flosse_redact r;
  flosse_redact_init(&r);
  lua_Integer n = luaL_len(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    if (lua_geti(L, 1, i) != LUA_TSTRING) return luaL_argerror(L, 1, "a list of strings");
    const char *name = lua_tolstring(L, -1, &len);
    (void)flosse_redact_add(&r, name, len);
    lua_pop(L, 1);
  }
  flosse_conn_redact_query(&r);
  return 0;
}

/* srv:start_workers(n, bootstrap, spec) -> serving | nil, message
 * Starts n worker threads; each runs the Lua source bootstrap with
 * (handle, index, spec) in a fresh state with this state's package paths. */
static int srv_start_workers(lua_State *L) {
  struct lserver *ls = check_server(L);
  int n = (int)luaL_checkinteger(L, 2);
  const char *bootstrap = luaL_checkstring(L, 3);
  const char *spec = luaL_checkstring(L, 4);
  luaL_argcheck(L, n >= 0 && n <= 256, 2, "0 to 256 workers");
  if (ls->srv->nworkers) return luaL_error(L, "workers already started");
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_getfield(L, -2, "cpath");
  const char *path = lua_tostring(L, -2), *cpath = lua_tostring(L, -1);
  char err[300] = "";
  int serving = n ? flosse_workers_start(ls->srv, n, bootstrap, path ? path : "", cpath ? cpath : "",
                                         spec, err, sizeof err) : 0;
  if (serving < n) {
    luaL_pushfail(L);
    lua_pushstring(L, err[0] ? err : "a worker did not start");
    return 2;
  }
  lua_pushinteger(L, serving);
  return 1;
}

/* srv:watch(dir): reload (the listen option) on changes below dir. */
static int srv_watch(lua_State *L) {
  struct lserver *ls = check_server(L);
  const char *dir = luaL_checkstring(L, 2);
  char err[256];
  if (flosse_watch_start(&ls->srv->watch, dir, err, sizeof err) != FLOSSE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* srv:step([timeout]): one turn of the loop, in this process (the first
 * sets the server up, without signals): for in-process tests. */
static int srv_step(lua_State *L) {
  struct lserver *ls = check_server(L);
  lua_Number timeout = luaL_optnumber(L, 2, 0);
  if (flosse_server_step(ls->srv, L, timeout) != FLOSSE_OK)
    return luaL_error(L, "the server runs (srv:run): it cannot be stepped");
  return 0;
}

/* srv:add_socket(fd): a connected socket becomes a connection (ownership taken). */
static int srv_add_socket(lua_State *L) {
  struct lserver *ls = check_server(L);
  int fd = (int)luaL_checkinteger(L, 2);
  lua_pushboolean(L, flosse_server_adopt(ls->srv, fd) == FLOSSE_OK);
  return 1;
}

static int srv_stop(lua_State *L) {
  struct lserver *ls = check_server(L);
  if (ls->srv->running) flosse_server_stop(ls->srv);
  return 0;
}

static int srv_close(lua_State *L) {
  struct lserver *ls = luaL_checkudata(L, 1, SERVER_MT);
  if (!ls->srv) return 0;
  flosse_server_end_steps(ls->srv);
  if (ls->srv->running) return 0;
  if (ls->srv->nworkers) {
    /* Closed without running: the workers still need telling. */
    flosse_workers_stop(ls->srv, 1);
    flosse_workers_join(ls->srv);
  }
  flosse_server_free(ls->srv, L);
  free(ls->srv);
  ls->srv = NULL;
  return 0;
}

static int srv_tostring(lua_State *L) {
  struct lserver *ls = luaL_checkudata(L, 1, SERVER_MT);
  if (!ls->srv) lua_pushliteral(L, "flosse.Server (closed)");
  else lua_pushfstring(L, "flosse.Server (%d listeners)", ls->srv->nlisteners);
  return 1;
}

/* core.defaults: every default (defaults.h), for flosse.app's settings. */
static void push_defaults(lua_State *L) {
  lua_createtable(L, 0, 24);
#define INT(k, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, k))
#define NUM(k, v) (lua_pushnumber(L, (lua_Number)(v)), lua_setfield(L, -2, k))
  lua_pushliteral(L, FLOSSE_DEFAULT_HOST);
  lua_setfield(L, -2, "host");
  INT("port", FLOSSE_DEFAULT_PORT);
  INT("max_url_bytes", FLOSSE_DEFAULT_MAX_URL_BYTES);
  INT("max_header_bytes", FLOSSE_DEFAULT_MAX_HEADER_BYTES);
  INT("max_body_bytes", FLOSSE_DEFAULT_MAX_BODY_BYTES);
  INT("high_water", FLOSSE_DEFAULT_HIGH_WATER);
  INT("low_water", FLOSSE_DEFAULT_LOW_WATER);
  NUM("heartbeat", FLOSSE_DEFAULT_HEARTBEAT);
  NUM("header_timeout", FLOSSE_DEFAULT_HEADER_TIMEOUT);
  NUM("write_timeout", FLOSSE_DEFAULT_WRITE_TIMEOUT);
  NUM("grace", FLOSSE_DEFAULT_GRACE);
  INT("instruction_budget", FLOSSE_DEFAULT_INSTRUCTION_BUDGET);
  INT("lua_memory", FLOSSE_DEFAULT_LUA_MEMORY_MIB);
  INT("max_concurrent_streams", FLOSSE_DEFAULT_MAX_CONCURRENT_STREAMS);
  INT("channel_history", FLOSSE_DEFAULT_CHANNEL_HISTORY);
  NUM("channel_history_seconds", FLOSSE_DEFAULT_CHANNEL_HISTORY_SECONDS);
  INT("channel_backlog", FLOSSE_DEFAULT_CHANNEL_BACKLOG);
  INT("max_channels", FLOSSE_DEFAULT_MAX_CHANNELS);
  INT("max_concurrent_streams", FLOSSE_DEFAULT_MAX_CONCURRENT_STREAMS);
  lua_pushliteral(L, FLOSSE_DEFAULT_LOG_LEVEL);
  lua_setfield(L, -2, "log_level");
  lua_pushliteral(L, "text");
  lua_setfield(L, -2, "log_format");
  /* Not a setting's default (redis has none: no Redis), but those of
   * the keys of a redis table. */
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, FLOSSE_DEFAULT_REDIS_PREFIX);
  lua_setfield(L, -2, "prefix");
  NUM("timeout", FLOSSE_DEFAULT_REDIS_TIMEOUT);
  INT("pool", FLOSSE_DEFAULT_REDIS_POOL);
  lua_setfield(L, -2, "redis");
#undef INT
#undef NUM
}

/* The Lua state's allocator is ours once a server runs (lalloc.c), and
 * lua_close unloads C modules before it frees the last blocks: the module
 * stays mapped for the life of the process, so that those frees (and a
 * process that goes on after closing a state, like a test runner's) never
 * call into unloaded code. */
static void pin_module(void) {
  Dl_info info;
  if (dladdr((void *)pin_module, &info) && info.dli_fname)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

int luaopen_flosse_core(lua_State *L) {
  pin_module();
  static const luaL_Reg methods[] = {
      {"addresses", srv_addresses}, {"run", srv_run}, {"stop", srv_stop},
      {"watch", srv_watch}, {"step", srv_step}, {"add_socket", srv_add_socket},
      {"start_workers", srv_start_workers},
      {"close", srv_close}, {NULL, NULL},
  };
  static const luaL_Reg meta[] = {
      {"__gc", srv_close}, {"__close", srv_close}, {"__tostring", srv_tostring},
      {NULL, NULL},
  };
  flosse_task_init_state(L);
  if (luaL_newmetatable(L, SERVER_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);

  lua_newtable(L);
  flosse_lvalues_register(L);
  flosse_lstream_register(L);
  flosse_ltask_register(L);
  flosse_lchannel_register(L);
  flosse_lsocket_register(L);
  flosse_ljson_register(L);
  flosse_lredis_register(L);
  flosse_lhttp_register(L);
  flosse_ljwt_register(L);
  flosse_lcidr_register(L);
  flosse_lmetrics_register(L);
  push_defaults(L);
  lua_setfield(L, -2, "defaults");
  lua_pushcfunction(L, l_listen);
  lua_setfield(L, -2, "listen");
  lua_pushcfunction(L, l_worker);
  lua_setfield(L, -2, "worker");
  lua_pushcfunction(L, l_set_log_level);
  lua_setfield(L, -2, "set_log_level");
  lua_pushcfunction(L, l_log);
  lua_setfield(L, -2, "log");
  lua_pushcfunction(L, l_say);
  lua_setfield(L, -2, "say");
  lua_pushcfunction(L, l_set_log_format);
  lua_setfield(L, -2, "set_log_format");
  lua_pushcfunction(L, l_time);
  lua_setfield(L, -2, "time");
  lua_pushcfunction(L, l_redact_query);
  lua_setfield(L, -2, "redact_query");
  lua_pushcfunction(L, l_stats);
  lua_setfield(L, -2, "stats");
  lua_pushliteral(L, FLOSSE_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
