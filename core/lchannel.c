/* Channels for Lua: core.publish, core.subscribe, and the Subscription
 * userdata the flosse module wraps (messages are lvalues.c's). */
#include <ev.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include <stdlib.h>

#include "channel.h"
#include "channel_redis.h"
#include "lprivate.h"
#include "lvalues.h"
#include "stream.h"
#include "wait_channel.h"
#include "wait_redis.h"
#include "wait_relay.h"

#define SUB_MT "flosse.Subscription"

#define BAD_NAME_TEXT "Bad channel name (1 to 200 bytes, no CR, LF or NUL)"
#define FULL_TEXT "Too many channels"

/* A channel refused: a bad name is the client's (400), a full registry the
 * server's limit (503); both answer before a stream starts. */
static int refuse(lua_State *L, enum flosse_chan_rc rc) {
  if (rc == FLOSSE_CHAN_BAD_NAME) return flosse_task_refuse(L, 400, BAD_NAME_TEXT);
  if (rc == FLOSSE_CHAN_FULL) return flosse_task_refuse(L, 503, FULL_TEXT " (max_channels)");
  return luaL_error(L, "out of memory");
}

/* What a publish through Redis holds until its reply comes: the command's
 * bytes (the task yields, by a longjmp, while they are being sent) and the
 * channel. */
struct rpub {
  char *cmd;
  size_t len;
  char name[];
};

static void free_rpub(void *arg) {
  struct rpub *p = arg;
  free(p->cmd);
  free(p);
}

/* The reply: id, this node's subscriber count; or nil, why, and a code
 * ("noscript": send the script's text; "unavailable": Redis did not take
 * it, 503). */
static int push_publish(lua_State *L, int n, struct redisReply **replies, const char *err, void *arg) {
  struct rpub *p = arg;
  char why[256];
  uint64_t id;
  int noscript = 0;
  (void)n;
  if (!replies) {
    luaL_pushfail(L);
    lua_pushfstring(L, "redis: %s", err);
    lua_pushliteral(L, "unavailable");
    return 3;
  }
  if (flosse_channel_redis_publish_reply(replies[0], &id, &noscript, why, sizeof why) != FLOSSE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, why);
    if (noscript) lua_pushliteral(L, "noscript");
    else lua_pushliteral(L, "unavailable");
    return 3;
  }
  char idbuf[24];
  snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)id);
  lua_pushstring(L, idbuf);
  /* Those on this node: the message reaches them through pub/sub. */
  lua_pushinteger(L, (lua_Integer)flosse_channel_subscribers(p->name, p->len));
  return 2;
}

/* Publishes ev through Redis: suspends the calling task until Redis took
 * it (or refused it). */
static int publish_redis(lua_State *L, const char *name, size_t name_len, struct flosse_sse_event *ev,
                         int eval, int top) {
  struct flosse_task *t = flosse_task_of(L);
  if (!t || !lua_isyieldable(L))
    return luaL_error(L, "with Redis, a publish waits for Redis: publish from a view or a task "
                         "(in its own coroutine)");
  const char *argv[FLOSSE_REDIS_PUBLISH_ARGS];
  size_t lens[FLOSSE_REDIS_PUBLISH_ARGS];
  char *buf, err[256];
  double timeout = flosse_redis_settings()->timeout;
  if (flosse_channel_redis_publish_cmd(name, name_len, ev, timeout, eval, argv, lens, &buf, err, sizeof err) !=
      FLOSSE_OK) {
    lua_settop(L, top);
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  struct rpub *p = malloc(sizeof *p + name_len);
  struct flosse_redis_pool *pool = p ? flosse_redis_pool_of(t->ctx->loop, flosse_channel_redis_shard(name, name_len)) : NULL;
  if (!pool) {
    free(p);
    free(buf);
    return luaL_error(L, "out of memory");
  }
  p->cmd = buf;
  p->len = name_len;
  memcpy(p->name, name, name_len);
  lua_settop(L, top);
  int argc = FLOSSE_REDIS_PUBLISH_ARGS;
  const char *const *argvs[1] = {argv};
  const size_t *lenss[1] = {lens};
  return flosse_wait_redis_arm(L, t, pool, 1, &argc, argvs, lenss, timeout, push_publish, p, free_rpub);
}

/* core.publish(name, ...) -> id, delivered | nil, message [, code]
 * A bad name or a full registry raises a refusal (400, 503). With Redis
 * the task waits for Redis (see publish_redis); core.publish_eval is the
 * same, sending the script's text. */
static int publish(lua_State *L, int eval) {
  size_t name_len;
  const char *name = luaL_checklstring(L, 1, &name_len);
  int n = lua_gettop(L) - 1;
  struct flosse_sse_event ev;
  char err[256];
  int top = lua_gettop(L);
  if (flosse_lvalues_event(L, 2, n, &ev, err, sizeof err) != FLOSSE_OK) {
    lua_settop(L, top);
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  if (flosse_channel_redis_active()) {
    if (!flosse_channel_name_ok(name, name_len)) return refuse(L, FLOSSE_CHAN_BAD_NAME);
    return publish_redis(L, name, name_len, &ev, eval, top);
  }
  size_t delivered = 0;
  enum flosse_chan_rc rc;
  struct flosse_msg *m = flosse_channel_publish(name, name_len, &ev, ev_time(), &delivered,
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

static int l_publish(lua_State *L) { return publish(L, 0); }
static int l_publish_eval(lua_State *L) { return publish(L, 1); }

/* The subscription's memory is C's, so that a relayed stream can keep it
 * once the view's thread (and this userdata) are gone: s is NULL then. */
struct lsub { struct flosse_sub *s; };

static struct flosse_sub *check_sub(lua_State *L) {
  struct lsub *u = luaL_checkudata(L, 1, SUB_MT);
  if (!u->s) luaL_error(L, "the subscription was handed to the core (relay)");
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
  struct flosse_task *t = flosse_task_of(L);
  if (!t) return luaL_error(L, "flosse.subscribe must be called from a view or a task (in its own coroutine)");
  struct lsub *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  luaL_setmetatable(L, SUB_MT);
  struct flosse_sub *sub = malloc(flosse_sub_size(n));
  if (!sub) return luaL_error(L, "out of memory");
  enum flosse_chan_rc rc = flosse_sub_init(sub, &t->subs_owner, names, lens, n, last, ev_time());
  if (rc != FLOSSE_CHAN_OK) { /* nothing was linked */
    free(sub);
    return refuse(L, rc);
  }
  u->s = sub;
  flosse_list_push(&t->subs, &sub->owner_link);
  return 1;
}

/* sub:poll() -> message | nil */
static int sub_poll(lua_State *L) {
  struct flosse_sub *s = check_sub(L);
  struct flosse_msg *m = flosse_sub_pop(s);
  if (!m) return 0;
  flosse_lvalues_push_msg(L, m);
  return 1;
}

/* The task that owns s, if it is the caller. */
static struct flosse_task *own_task(lua_State *L, struct flosse_sub *s, const char *what) {
  if (!s->owner) luaL_error(L, "the subscription has ended");
  struct flosse_task *t = flosse_task_of(L);
  if (!t || &t->subs_owner != s->owner)
    luaL_error(L, "a subscription can only be %s by its own view or task", what);
  if (!lua_isyieldable(L)) luaL_error(L, "cannot wait here (inside a C call or metamethod)");
  return t;
}

/* sub:wait(): suspends the task until a message is queued. */
static int sub_wait(lua_State *L) {
  struct flosse_sub *s = check_sub(L);
  return flosse_wait_channel_arm(L, own_task(L, s, "waited on"), s);
}

/* sub:ready(): with a back end, suspends the task (and holds a stream's
 * head) until the subscription is in place on it, so that a client that
 * has the head gets every event published after it; at most the Redis
 * timeout (the back end is away: the stream goes on and catches up when it
 * is back). At once without a back end. */
static int sub_ready(lua_State *L) {
  struct flosse_sub *s = check_sub(L);
  if (flosse_sub_synced(s)) return 0;
  return flosse_wait_channel_sync_arm(L, own_task(L, s, "waited on"), s, flosse_redis_settings()->timeout);
}

/* sub:relay(): hands the rest of the stream to the core, which moves each
 * message to the connection as it comes, with no Lua in between; the
 * view's thread is let go. It does not return: the stream ends when the
 * client leaves or the server stops. */
static int sub_relay(lua_State *L) {
  struct lsub *u = luaL_checkudata(L, 1, SUB_MT);
  struct flosse_sub *s = check_sub(L);
  struct flosse_task *t = own_task(L, s, "relayed");
  struct flosse_stream *st = flosse_stream_of(t);
  if (!st || !st->sse)
    return luaL_error(L, "relay needs a started stream (call it from an sse_stream view)");
  if (st->relay_pending || flosse_wait_relay_active(&st->relay))
    return luaL_error(L, "the stream relays a subscription already");
  flosse_list_unlink(&s->owner_link); /* the stream's now, not the task's */
  u->s = NULL;
  st->relay_pending = s;
  return flosse_wait_relay_yield(L, t);
}

static int sub_close(lua_State *L) {
  struct lsub *u = luaL_checkudata(L, 1, SUB_MT);
  if (u->s) flosse_sub_close(u->s);
  return 0;
}

/* Collected: closed, and its memory freed (unless handed over). */
static int sub_gc(lua_State *L) {
  struct lsub *u = luaL_checkudata(L, 1, SUB_MT);
  if (!u->s) return 0;
  flosse_sub_close(u->s);
  free(u->s);
  u->s = NULL;
  return 0;
}

static int sub_tostring(lua_State *L) {
  struct lsub *u = luaL_checkudata(L, 1, SUB_MT);
  struct flosse_sub *s = u->s;
  if (!s) return lua_pushliteral(L, "flosse.Subscription (relayed)"), 1;
  lua_pushfstring(L, "flosse.Subscription (%d channels, %d queued%s)", s->nrefs, (int)s->qlen,
                  s->owner ? "" : ", ended");
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

/* core.channel_count(name) -> subscriptions to name on this node (every
 * worker), or nil for a name no channel may have. */
static int l_channel_count(lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  if (!flosse_channel_name_ok(name, len)) {
    luaL_pushfail(L);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)flosse_channel_subscribers(name, len));
  return 1;
}

/* This node's channels with subscribers, copied under the registry lock
 * (no Lua there: it may not raise while the lock is held). */
struct channel_list {
  struct { char *name; size_t len, subs; } *items;
  size_t n, cap;
  int oom;
};

static void list_one(const char *name, size_t len, size_t subscribers, void *ud) {
  struct channel_list *l = ud;
  if (subscribers == 0 || l->oom) return;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 32;
    void *items = realloc(l->items, cap * sizeof *l->items);
    if (!items) {
      l->oom = 1;
      return;
    }
    l->items = items;
    l->cap = cap;
  }
  char *copy = malloc(len ? len : 1);
  if (!copy) {
    l->oom = 1;
    return;
  }
  memcpy(copy, name, len);
  l->items[l->n].name = copy;
  l->items[l->n].len = len;
  l->items[l->n].subs = subscribers;
  l->n++;
}

/* core.channel_list() -> { name = subscriptions, ... }: this node's channels
 * with at least one subscriber. */
static int l_channel_list(lua_State *L) {
  struct channel_list l = {NULL, 0, 0, 0};
  flosse_channel_each(list_one, &l);
  int ok = !l.oom && lua_checkstack(L, 4);
  if (ok) lua_createtable(L, 0, (int)(l.n > 1 << 20 ? 1 << 20 : l.n));
  for (size_t i = 0; i < l.n; i++) {
    if (ok) {
      lua_pushlstring(L, l.items[i].name, l.items[i].len);
      lua_pushinteger(L, (lua_Integer)l.items[i].subs);
      lua_rawset(L, -3);
    }
    free(l.items[i].name);
  }
  free(l.items);
  if (!ok) return luaL_error(L, "out of memory");
  return 1;
}

void flosse_lchannel_register(lua_State *L) {
  static const luaL_Reg sub_methods[] = {
      {"poll", sub_poll}, {"wait", sub_wait}, {"ready", sub_ready}, {"relay", sub_relay}, {"close", sub_close},
      {NULL, NULL}};
  static const luaL_Reg sub_meta[] = {
      {"__gc", sub_gc}, {"__close", sub_close}, {"__tostring", sub_tostring}, {NULL, NULL}};
  static const luaL_Reg fns[] = {
      {"publish", l_publish}, {"publish_eval", l_publish_eval}, {"subscribe", l_subscribe}, {"configure_channels", l_configure},
      {"channel_count", l_channel_count}, {"channel_list", l_channel_list}, {NULL, NULL}};
  if (luaL_newmetatable(L, SUB_MT)) {
    luaL_setfuncs(L, sub_meta, 0);
    luaL_newlib(L, sub_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}
