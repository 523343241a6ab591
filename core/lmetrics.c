/* core.metrics and its helpers: the counters of metrics.c, the channels'
 * registry and each worker's Lua memory, as one snapshot table for
 * lua/flosse/metrics.lua (which formats it). */
#include <ev.h>
#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "defaults.h"
#include "lalloc.h"
#include "lprivate.h"
#include "metrics.h"
#include "worker.h"

#define BUSIEST_MAX 1000

struct busy {
  size_t subscribers;
  size_t len;
  char name[FLOSSE_CHANNEL_NAME_MAX];
};

/* The walk over the channels: their subscriber total, and the busiest n in
 * a min-heap (its root is the least busy kept, replaced by a busier one). */
struct walk {
  struct busy *heap;
  size_t cap, n;
  size_t subscribers;
};

/* The order of the listing: more subscribers first, then by name (so that
 * ties are listed, and cut, the same way every time). */
static int by_subscribers(const void *a, const void *b) {
  const struct busy *x = a, *y = b;
  if (x->subscribers != y->subscribers) return x->subscribers < y->subscribers ? 1 : -1;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* 1 if x comes after y in the listing (the heap's root is the last kept). */
static int after(const struct busy *x, const struct busy *y) { return by_subscribers(x, y) > 0; }

static void sift_down(struct busy *h, size_t n, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && after(&h[l], &h[m])) m = l;
    if (r < n && after(&h[r], &h[m])) m = r;
    if (m == i) return;
    struct busy t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static void sift_up(struct busy *h, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!after(&h[i], &h[p])) return;
    struct busy t = h[i];
    h[i] = h[p];
    h[p] = t;
    i = p;
  }
}

/* Under the registry's lock: copies only. */
static void each_channel(const char *name, size_t len, size_t subscribers, void *ud) {
  struct walk *w = ud;
  w->subscribers += subscribers;
  if (!w->cap || !subscribers) return;
  if (len > FLOSSE_CHANNEL_NAME_MAX) len = FLOSSE_CHANNEL_NAME_MAX;
  struct busy cand;
  cand.subscribers = subscribers;
  cand.len = len;
  memcpy(cand.name, name, len);
  if (w->n < w->cap) {
    w->heap[w->n++] = cand;
    sift_up(w->heap, w->n - 1);
  } else if (after(&w->heap[0], &cand)) {
    w->heap[0] = cand;
    sift_down(w->heap, w->n, 0);
  }
}


static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

#define SUM(field) flosse_metrics_sum_u64(offsetof(struct flosse_metrics_worker, field))

/* The Lua memory of each worker of srv's process, main thread first. */
static void push_lua_memory(lua_State *L, struct flosse_server *srv) {
  struct flosse_server *main = flosse_server_main(srv);
  lua_createtable(L, main->nworkers + 1, 0);
  lua_pushinteger(L, main->loop.lalloc ? (lua_Integer)flosse_lalloc_used(main->loop.lalloc) : 0);
  lua_rawseti(L, -2, 1);
  pthread_mutex_lock(&main->wlock);
  for (int i = 0; i < main->nworkers; i++) {
    struct flosse_server *w = main->workers[i].srv;
    /* Read without the worker's cooperation: a figure for monitoring. */
    size_t n = w && w->loop.lalloc ? flosse_lalloc_used(w->loop.lalloc) : 0;
    lua_pushinteger(L, (lua_Integer)n);
    lua_rawseti(L, -2, i + 2);
  }
  pthread_mutex_unlock(&main->wlock);
}

static void push_redis(lua_State *L) {
  lua_newtable(L);
  char name[96];
  int up;
  for (int i = 0; flosse_metrics_redis_link_get(i, name, sizeof name, &up); i++) {
    lua_pushboolean(L, up);
    lua_setfield(L, -2, name);
  }
  lua_setfield(L, -2, "redis_links");
  lua_createtable(L, FLOSSE_METRICS_REDIS_BUCKETS, 3);
  uint64_t cum = 0;
  for (int i = 0; i < FLOSSE_METRICS_REDIS_BUCKETS; i++) {
    cum += SUM(redis_le[i]);
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, flosse_metrics_redis_bounds[i]);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)cum);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
  set_int(L, "count", SUM(redis_count));
  lua_pushnumber(L, (lua_Number)SUM(redis_sum_us) / 1e6);
  lua_setfield(L, -2, "sum");
  lua_setfield(L, -2, "redis_latency");
}

/* core.metrics(busiest) -> a table of the raw figures: time, start_time,
 * workers, conns_opened, conns_closed, streams_by_route = { label = n },
 * requests = { ["200"] = n }, events_sent, bytes_sent, heartbeats,
 * publishes, deliveries, slow_dropped, reloads_ok, reloads_failed,
 * channels, subscribers, busiest = { { name =, subscribers = } } (busiest
 * first, at most busiest), lua_memory = { bytes, ... }, redis_links =
 * { name = up }, redis_latency = { { le, cumulative count }..., count =,
 * sum = }. */
static int l_metrics(lua_State *L) {
  lua_Integer want = luaL_optinteger(L, 1, 10);
  luaL_argcheck(L, want >= 0 && want <= BUSIEST_MAX, 1, "busiest must be 0..1000");
  struct flosse_server *srv = flosse_lcheck_server(L, "metrics");
  struct walk w = {NULL, (size_t)want, 0, 0};
  /* A userdata: freed by the collector whatever raises below. */
  if (want) w.heap = lua_newuserdatauv(L, (size_t)want * sizeof *w.heap, 0);
  size_t channels = flosse_channel_each(each_channel, &w);
  qsort(w.heap, w.n, sizeof *w.heap, by_subscribers);

  lua_createtable(L, 0, 24);
  lua_pushnumber(L, ev_time());
  lua_setfield(L, -2, "time");
  lua_pushnumber(L, flosse_metrics_global.start_time);
  lua_setfield(L, -2, "start_time");
  set_int(L, "workers", (uint64_t)flosse_server_main(srv)->nworkers + 1);
  /* Closed first: a connection is opened before it is closed (on one
   * thread), so the gauge opened - closed never reads below 0. */
  uint64_t closed = SUM(conns_closed);
  set_int(L, "conns_opened", SUM(conns_opened));
  set_int(L, "conns_closed", closed);
  set_int(L, "events_sent", SUM(events_sent));
  set_int(L, "bytes_sent", SUM(bytes_sent));
  set_int(L, "heartbeats", SUM(heartbeats));
  struct flosse_metrics_global *g = &flosse_metrics_global;
  set_int(L, "publishes", __atomic_load_n(&g->publishes, __ATOMIC_RELAXED));
  set_int(L, "deliveries", __atomic_load_n(&g->deliveries, __ATOMIC_RELAXED));
  set_int(L, "slow_dropped", __atomic_load_n(&g->slow_dropped, __ATOMIC_RELAXED));
  set_int(L, "reloads_ok", __atomic_load_n(&g->reloads_ok, __ATOMIC_RELAXED));
  set_int(L, "reloads_failed", __atomic_load_n(&g->reloads_failed, __ATOMIC_RELAXED));
  set_int(L, "channels", channels);
  set_int(L, "subscribers", w.subscribers);

  lua_newtable(L);
  for (int r = 0; r < FLOSSE_METRICS_ROUTES; r++) {
    int64_t n = 0;
    for (int i = 0, end = flosse_metrics_blocks(); i < end; i++)
      n += __atomic_load_n(&flosse_metrics_workers[i].streams[r], __ATOMIC_RELAXED);
    const char *label = flosse_metrics_route_label(r);
    if (!label) break;
    if (n > 0 || r > 0) { /* every known route, and "other" when it has some */
      lua_pushinteger(L, (lua_Integer)n);
      lua_setfield(L, -2, label);
    }
  }
  lua_setfield(L, -2, "streams_by_route");

  lua_newtable(L);
  for (int s = FLOSSE_METRICS_STATUS_MIN; s <= FLOSSE_METRICS_STATUS_MAX; s++) {
    uint64_t n = SUM(status[s - FLOSSE_METRICS_STATUS_MIN]);
    if (!n) continue;
    char k[8];
    snprintf(k, sizeof k, "%d", s);
    set_int(L, k, n);
  }
  lua_setfield(L, -2, "requests");

  lua_createtable(L, (int)w.n, 0);
  for (size_t i = 0; i < w.n; i++) {
    lua_createtable(L, 0, 2);
    lua_pushlstring(L, w.heap[i].name, w.heap[i].len);
    lua_setfield(L, -2, "name");
    set_int(L, "subscribers", w.heap[i].subscribers);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "busiest");

  push_lua_memory(L, srv);
  lua_setfield(L, -2, "lua_memory");
  push_redis(L);
  return 1;
}

/* core.metrics_route(label) -> the route id start_stream counts a stream
 * under (0: "other", past FLOSSE_METRICS_ROUTES labels). */
static int l_metrics_route(lua_State *L) {
  size_t len;
  const char *label = luaL_checklstring(L, 1, &len);
  lua_pushinteger(L, flosse_metrics_route_id(label, len));
  return 1;
}

/* core.metrics_reloaded(ok): an app reload succeeded or failed. */
static int l_metrics_reloaded(lua_State *L) {
  if (lua_toboolean(L, 1)) FLOSSE_METRIC_GLOBAL_ADD(reloads_ok, 1);
  else FLOSSE_METRIC_GLOBAL_ADD(reloads_failed, 1);
  return 0;
}

void flosse_lmetrics_register(lua_State *L) {
  /* The process starts with its first Lua state's core (the main thread's). */
  double zero = 0, now = ev_time();
  __atomic_compare_exchange(&flosse_metrics_global.start_time, &zero, &now, 0, __ATOMIC_RELAXED,
                            __ATOMIC_RELAXED);
  static const luaL_Reg fns[] = {
      {"metrics", l_metrics},
      {"metrics_route", l_metrics_route},
      {"metrics_reloaded", l_metrics_reloaded},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
