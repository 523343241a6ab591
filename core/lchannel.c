/* Channels for Lua: core.publish, core.subscribe, and the Subscription and
 * Message userdata the flosse module wraps. */
#include <ev.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "channel.h"
#include "conn.h"
#include "stream.h"

#define MSG_MT "flosse.Message"
#define SUB_MT "flosse.Subscription"

/* Only the core yields this address, as in stream.c: a wait, not an event. */
extern const char flosse_wait_key;

struct lmsg { struct flosse_msg *m; };

static void push_msg(lua_State *L, struct flosse_msg *m) {
  struct lmsg *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->m = m; /* takes the caller's reference */
  luaL_setmetatable(L, MSG_MT);
}

struct flosse_msg *flosse_lchannel_testmsg(lua_State *L, int idx) {
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

#define BAD_NAME_TEXT "Bad channel name (1 to 200 bytes, no CR, LF or NUL)"
#define FULL_TEXT "Too many channels"

/* A channel refused: a bad name is the client's (400), a full registry the
 * server's limit (503); both answer before a stream starts. */
static int refuse(lua_State *L, enum flosse_chan_rc rc) {
  if (rc == FLOSSE_CHAN_BAD_NAME) return flosse_stream_refuse(L, 400, BAD_NAME_TEXT);
  if (rc == FLOSSE_CHAN_FULL) return flosse_stream_refuse(L, 503, FULL_TEXT " (max_channels)");
  return luaL_error(L, "out of memory");
}

/* Finds the connection of the running request thread (stream.c keeps the map). */
struct flosse_conn *flosse_stream_conn_of(lua_State *T);

/* Under the channels' lock: a subscriber on this thread's own server is
 * handled here; one on another worker gets a post and an ev_async. */
static void wake(struct flosse_conn *c) {
  if (c->srv == flosse_current_server) flosse_conn_wake(c);
  else flosse_server_post(c->srv, c, 0);
}

static void drop(struct flosse_conn *c) {
  if (c->srv == flosse_current_server) flosse_conn_drop(c);
  else flosse_server_post(c->srv, c, 1);
}

/* core.publish(name, ...) -> id, delivered | nil, message
 * A bad name or a full registry raises a refusal (400, 503). */
static int l_publish(lua_State *L) {
  size_t name_len;
  const char *name = luaL_checklstring(L, 1, &name_len);
  int n = lua_gettop(L) - 1;
  struct flosse_sse_event ev;
  char err[256];
  int top = lua_gettop(L);
  if (flosse_stream_event(L, 2, n, &ev, err, sizeof err) != FLOSSE_OK) {
    lua_settop(L, top);
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  size_t delivered = 0;
  enum flosse_chan_rc rc;
  struct flosse_msg *m = flosse_channel_publish(name, name_len, &ev, ev_time(), &delivered, wake, drop,
                                                &rc, err, sizeof err);
  lua_settop(L, top);
  if (!m && rc != FLOSSE_CHAN_BAD_EVENT) return refuse(L, rc);
  if (!m) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushstring(L, m->id);
  flosse_msg_unref(m);
  lua_pushinteger(L, (lua_Integer)delivered);
  return 2;
}

struct lsub { struct flosse_sub *s; };

static struct flosse_sub *check_sub(lua_State *L) {
  struct lsub *u = luaL_checkudata(L, 1, SUB_MT);
  return u->s;
}

/* core.subscribe(name | {names}, last_event_id?) -> subscription
 * Must run in a view: the subscription belongs to its stream and ends
 * with it. */
static int l_subscribe(lua_State *L) {
  const char *names[64];
  size_t lens[64];
  int n = 0;
  if (lua_type(L, 1) == LUA_TTABLE) {
    n = (int)luaL_len(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 64, 1, "subscribe to 1 to 64 channels");
    for (int i = 0; i < n; i++) {
      /* The table keeps each name alive while it is in use here. */
      if (lua_geti(L, 1, i + 1) != LUA_TSTRING)
        return luaL_argerror(L, 1, lua_pushfstring(L, "channel name %d is not a string", i + 1));
      names[i] = lua_tolstring(L, -1, &lens[i]);
      lua_pop(L, 1);
    }
  } else {
    names[n] = luaL_checklstring(L, 1, &lens[n]);
    n++;
  }
  const char *last = luaL_optstring(L, 2, NULL);
  struct flosse_conn *c = flosse_stream_conn_of(L);
  if (!c) return luaL_error(L, "flosse.subscribe must be called from a view (in the request's own coroutine)");
  struct lsub *u = lua_newuserdatauv(L, sizeof *u + flosse_sub_size(n), 0);
  u->s = (struct flosse_sub *)(u + 1);
  enum flosse_chan_rc rc = flosse_sub_init(u->s, c, names, lens, n, last, ev_time());
  if (rc != FLOSSE_CHAN_OK) return refuse(L, rc); /* nothing was linked: the userdata is just memory */
  flosse_list_push(&c->subs, &u->s->conn_link);
  luaL_setmetatable(L, SUB_MT);
  return 1;
}

/* sub:poll() -> message | nil */
static int sub_poll(lua_State *L) {
  struct flosse_sub *s = check_sub(L);
  struct flosse_msg *m = flosse_sub_pop(s);
  if (!m) return 0;
  push_msg(L, m);
  return 1;
}

/* sub:wait(): suspends the stream until a message is queued. */
static int sub_wait(lua_State *L) {
  struct flosse_sub *s = check_sub(L);
  if (!s->conn) return luaL_error(L, "the subscription has ended");
  struct flosse_conn *c = flosse_stream_conn_of(L);
  if (c != s->conn) return luaL_error(L, "a subscription can only be waited on by its own view");
  if (!lua_isyieldable(L)) return luaL_error(L, "cannot wait here (inside a C call or metamethod)");
  if (!flosse_sub_wait(s)) return 0; /* a message came in meanwhile */
  c->wait = FLOSSE_WAIT_CHANNEL;
  lua_pushlightuserdata(L, (void *)&flosse_wait_key);
  return lua_yield(L, 1);
}

/* sub:relay(): hands the rest of the stream to the core, which moves each
 * message to the connection as it comes, with no Lua in between. It does
 * not return: the stream ends when the client leaves or the server stops. */
static int sub_relay(lua_State *L) {
  struct flosse_sub *s = check_sub(L);
  if (!s->conn) return luaL_error(L, "the subscription has ended");
  struct flosse_conn *c = flosse_stream_conn_of(L);
  if (c != s->conn) return luaL_error(L, "a subscription can only be relayed by its own view");
  if (c->state != FLOSSE_CONN_STREAMING)
    return luaL_error(L, "relay needs a started stream (call it from an sse_stream view)");
  if (!lua_isyieldable(L)) return luaL_error(L, "cannot relay here (inside a C call or metamethod)");
  c->relay = s;
  c->wait = FLOSSE_WAIT_RELAY;
  flosse_conn_want_run(c); /* what is queued already (a replay) goes out now */
  lua_pushlightuserdata(L, (void *)&flosse_wait_key);
  return lua_yield(L, 1);
}

static int sub_close(lua_State *L) {
  struct lsub *u = luaL_checkudata(L, 1, SUB_MT);
  flosse_sub_close(u->s);
  return 0;
}

static int sub_tostring(lua_State *L) {
  struct flosse_sub *s = check_sub(L);
  lua_pushfstring(L, "flosse.Subscription (%d channels, %d queued%s)", s->nrefs, (int)s->qlen,
                  s->conn ? "" : ", ended");
  return 1;
}

/* core.configure_channels{ history =, history_seconds =, backlog =, max_channels = } */
static int l_configure(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  struct flosse_channel_config cfg = *flosse_channel_config();
  lua_getfield(L, 1, "history");
  if (!lua_isnil(L, -1)) cfg.history = (size_t)luaL_checkinteger(L, -1);
  lua_getfield(L, 1, "history_seconds");
  if (!lua_isnil(L, -1)) cfg.history_seconds = luaL_checknumber(L, -1);
  lua_getfield(L, 1, "backlog");
  if (!lua_isnil(L, -1)) cfg.backlog = (size_t)luaL_checkinteger(L, -1);
  lua_getfield(L, 1, "max_channels");
  if (!lua_isnil(L, -1)) cfg.max_channels = (size_t)luaL_checkinteger(L, -1);
  flosse_channel_configure(&cfg);
  return 0;
}

void flosse_lchannel_register(lua_State *L) {
  static const luaL_Reg msg_meta[] = {
      {"__gc", msg_gc}, {"__index", msg_index}, {"__tostring", msg_tostring}, {NULL, NULL}};
  static const luaL_Reg sub_methods[] = {
      {"poll", sub_poll}, {"wait", sub_wait}, {"relay", sub_relay}, {"close", sub_close},
      {NULL, NULL}};
  static const luaL_Reg sub_meta[] = {
      {"__gc", sub_close}, {"__close", sub_close}, {"__tostring", sub_tostring}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"publish", l_publish}, {"subscribe", l_subscribe}, {"configure_channels", l_configure},
      {NULL, NULL}};
  if (luaL_newmetatable(L, MSG_MT)) luaL_setfuncs(L, msg_meta, 0);
  lua_pop(L, 1);
  if (luaL_newmetatable(L, SUB_MT)) {
    luaL_setfuncs(L, sub_meta, 0);
    luaL_newlib(L, sub_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}
