#include "channel_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "channel.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "redis_event.h"

/* ---- the scripts ----------------------------------------------------------------
 * Keys, with the prefix P: P"seq" (a hash: the shard's epoch base and its
 * newest id), P"s:"NAME (a stream: the history, entry ids "<id>-0", fields
 * t (Redis' time in ms) and p (the event)), P"m:"NAME (a hash: last, the
 * channel's newest id; dropped, the newest id it no longer holds); pub/sub
 * channel P"p:"NAME carries "<id> <base> <t> <event>".
 *
 * Ids come from one counter per shard, so that they order events across
 * the shard's channels (one Last-Event-ID resumes several channels). A new
 * epoch (the counter missing: a Redis that restarted empty) starts at
 * Redis' clock in microseconds, above every id of the epochs before it
 * unless that clock went back; ids never depend on a node's clock. */

/* Drops what is over the count or (secs > 0) older than secs, and notes
 * the newest id dropped. Shared by both scripts. */
#define TRIM_LUA                                                                        \
  "local function trim(stream, meta, hist, ms, now)\n"                                  \
  "  local dropped\n"                                                                   \
  "  local n = redis.call('XLEN', stream)\n"                                            \
  "  if n > hist then\n"                                                                \
  "    local old = redis.call('XRANGE', stream, '-', '+', 'COUNT', n - hist)\n"         \
  "    dropped = old[#old][1]\n"                                                        \
  "    redis.call('XTRIM', stream, 'MAXLEN', hist)\n"                                   \
  "  end\n"                                                                             \
  "  while ms > 0 do\n"                                                                 \
  "    local e = redis.call('XRANGE', stream, '-', '+', 'COUNT', 16)\n"                 \
  "    local k = 0\n"                                                                   \
  "    for i = 1, #e do\n"                                                              \
  "      if tonumber(e[i][2][2]) >= now - ms then break end\n"                          \
  "      k = i\n"                                                                       \
  "    end\n"                                                                           \
  "    for i = 1, k do redis.call('XDEL', stream, e[i][1]) end\n"                       \
  "    if k > 0 then dropped = e[k][1] end\n"                                           \
  "    if k < 16 then break end\n"                                                      \
  "  end\n"                                                                             \
  "  if dropped then redis.call('HSET', meta, 'dropped', string.sub(dropped, 1, -3)) end\n" \
  "end\n"                                                                               \
  "pcall(redis.replicate_commands)\n"                                                   \
  "local t = redis.call('TIME')\n"                                                      \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* KEYS seq, stream, meta; ARGV history, history ms, event, deadline ms
 * (0: none), pub/sub channel. Returns {id, base}. */
static const char publish_lua[] =
    TRIM_LUA
    "local deadline = tonumber(ARGV[4])\n"
    "if deadline > 0 and now > deadline then\n"
    "  return redis.error_reply('FLOSSE_LATE the publish reached Redis after its timeout')\n"
    "end\n"
    "local base = redis.call('HGET', KEYS[1], 'base')\n"
    "if not base then\n"
    "  base = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]))\n"
    "  redis.call('HSET', KEYS[1], 'base', base, 'top', base)\n"
    "end\n"
    "local id = string.format('%.0f', redis.call('HINCRBY', KEYS[1], 'top', 1))\n"
    "redis.call('XADD', KEYS[2], id .. '-0', 't', now, 'p', ARGV[3])\n"
    "redis.call('HSET', KEYS[3], 'last', id)\n"
    "local ms = tonumber(ARGV[2])\n"
    "trim(KEYS[2], KEYS[3], tonumber(ARGV[1]), ms, now)\n"
    "if ms > 0 then redis.call('PEXPIRE', KEYS[2], ms + 1000) end\n"
    "redis.call('PUBLISH', ARGV[5], id .. ' ' .. base .. ' ' .. now .. ' ' .. ARGV[3])\n"
    "return {id, base}\n";

/* KEYS seq, stream, meta; ARGV history, history ms, after (0: the tail).
 * Returns {base, dropped, now, behind, id, t, event, id, t, event, ...},
 * oldest first: what the channel holds after `after`; behind = 1 when the
 * counter was behind `after` (and is now past it). */
static const char read_lua[] =
    TRIM_LUA
    "local hist, ms = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "trim(KEYS[2], KEYS[3], hist, ms, now)\n"
    "local base = redis.call('HGET', KEYS[1], 'base') or '0'\n"
    "local last = redis.call('HGET', KEYS[3], 'last') or '0'\n"
    "local dropped = redis.call('HGET', KEYS[3], 'dropped') or '0'\n"
    "local e\n"
    "if ARGV[3] == '0' then\n"
    /* The newest hist: one more held (a node with a longer history
     * published) is this node's dropped. */
    "  e = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', hist + 1)\n"
    "  if #e > hist then\n"
    "    local id = string.sub(e[#e][1], 1, -3)\n"
    "    if tonumber(id) > tonumber(dropped) then dropped = id end\n"
    "    e[#e] = nil\n"
    "  end\n"
    "  local r = {}\n"
    "  for i = #e, 1, -1 do r[#r + 1] = e[i] end\n"
    "  e = r\n"
    "else\n"
    "  e = redis.call('XRANGE', KEYS[2], '(' .. ARGV[3] .. '-0', '+')\n"
    "end\n"
    /* All of it expired with its key: everything up to last is gone. */
    "if #e == 0 and redis.call('EXISTS', KEYS[2]) == 0 and tonumber(last) > tonumber(dropped) then\n"
    "  dropped = last\n"
    "end\n"
    /* The counter behind what this node already took: Redis came back
     * from an older snapshot. Set it past it, so that no id is given twice
     * (this node's subscribers had those events; Redis lost them). */
    "local behind = '0'\n"
    "local top = redis.call('HGET', KEYS[1], 'top')\n"
    "if ARGV[3] ~= '0' and top and tonumber(top) < tonumber(ARGV[3]) then\n"
    "  redis.call('HSET', KEYS[1], 'top', ARGV[3])\n"
    "  behind = '1'\n"
    "end\n"
    "local out = {base, dropped, tostring(now), behind}\n"
    "for i = 1, #e do\n"
    "  local f = e[i][2]\n"
    "  out[#out + 1] = string.sub(e[i][1], 1, -3)\n"
    "  out[#out + 1] = f[2]\n"
    "  out[#out + 1] = f[4]\n"
    "end\n"
    "return out\n";

/* ---- the link's state -------------------------------------------------------- */

enum sub_state { SUB_NONE, SUB_PENDING, SUB_ON, SUB_LEAVING };

/* A message kept while a read is in flight, with the copy it points into. */
struct held {
  struct flosse_remote_msg m;
  uint64_t t;                /* Redis' time (ms): m.time once the read measured the clocks */
  char *bytes;
};

/* A channel this node subscribes to (or did): the link thread's alone. */
struct rchan {
  struct rchan *next;
  struct shard *shard;
  enum sub_state sub;
  int wanted;                /* the registry has the channel (it has subscribers here) */
  int live;                  /* read done since subscribed: pub/sub feeds the registry */
  int overflow;              /* too much came while reading: read again */
  int warned;                /* a failed read was logged: the next ones until a success are not */
  double unwanted_since;
  struct flosse_redis_req *read; /* the read in flight */
  struct held *held;         /* what pub/sub brought while reading */
  size_t nheld, held_cap, held_bytes;
  size_t len;
  char name[];
};

struct shard {
  struct flosse_redis_url url;
  struct flosse_redis_conn *ps;   /* pub/sub */
  struct flosse_redis_conn *cmd;  /* reads and script loads */
};

/* A change the registry asked for, from any thread. */
struct want {
  struct want *next;
  int on;
  size_t len;
  char name[];
};

static struct {
  struct ev_loop *ev;        /* the link's loop (its thread's alone) */
  struct ev_loop *loop;      /* the same, set under lock once the link runs: for the workers */
  int configured;            /* channels go through Redis */
  int active;                /* the link runs */
  int nshards;
  struct shard shards[16];
  struct rchan **table;
  size_t table_cap;
  ev_async wake;
  ev_timer tick;
  pthread_mutex_t lock;      /* guards wants */
  struct want *wants, **wants_tail;
} rl = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The digest of publish_lua once a shard has loaded it (the same text has
 * the same digest everywhere); workers read it. */
static char publish_sha[41];
static int publish_sha_ready;
/* read_lua's, the link's alone. */
static char read_sha[41];
static int read_sha_ready;
/* Redis' clock minus this node's, in microseconds (0: not measured yet). */
static int64_t clock_offset_us;
static int clock_measured;

/* What a channel may hold while its read is in flight; past it the read
 * is done again (what came meanwhile is in Redis' history). */
enum { HELD_MAX = 100000, HELD_BYTES_MAX = 16 << 20 };

static uint32_t fnv1a(const char *s, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Which of the settings' shards holds name (0 without shards). */
static int shard_index(const char *name, size_t len) {
  int n = flosse_redis_settings()->nshards;
  return n > 1 ? (int)(fnv1a(name, len) % (uint32_t)n) : 0;
}

const struct flosse_redis_url *flosse_channel_redis_shard(const char *name, size_t len) {
  const struct flosse_redis_settings *rs = flosse_redis_settings();
  return rs->nshards > 0 ? &rs->shards[shard_index(name, len)] : &rs->url;
}

int flosse_channel_redis_active(void) { return __atomic_load_n(&rl.configured, __ATOMIC_ACQUIRE); }

/* P + infix + name into out (room for 128 + 3 + 200 bytes and a NUL). */
static size_t key(char *out, const char *infix, const char *name, size_t len) {
  const char *p = flosse_redis_settings()->prefix;
  size_t pl = strlen(p), il = strlen(infix);
  memcpy(out, p, pl);
  memcpy(out + pl, infix, il);
  memcpy(out + pl + il, name, len);
  out[pl + il + len] = '\0';
  return pl + il + len;
}

static double redis_to_local(double redis_ms) {
  int64_t off = __atomic_load_n(&clock_offset_us, __ATOMIC_RELAXED);
  return redis_ms / 1000.0 - (double)off / 1e6;
}

/* ---- publishing (any worker) -------------------------------------------------- */

int flosse_channel_redis_publish_cmd(const char *name, size_t len, const struct flosse_sse_event *ev,
                                     double timeout, int eval, const char **argv, size_t *lens,
                                     char **buf, char *err, size_t errlen) {
  if (ev->id) {
    snprintf(err, errlen, "with Redis, a channel numbers its events: publish without an id");
    return FLOSSE_ERR;
  }
  char check_err[128];
  if (flosse_sse_check(ev, check_err, sizeof check_err) != FLOSSE_OK) {
    snprintf(err, errlen, "%s", check_err);
    return FLOSSE_ERR;
  }
  char *payload;
  size_t plen;
  if (flosse_redis_event_encode(ev, &payload, &plen) != FLOSSE_OK) {
    snprintf(err, errlen, "out of memory");
    return FLOSSE_ERR;
  }
  const struct flosse_channel_config *cc = flosse_channel_config();
  /* Keys, numbers and the digest, then the event, in one block. */
  size_t room = 4 * 340 + 4 * 24 + 48;
  char *b = malloc(room + plen);
  if (!b) {
    free(payload);
    snprintf(err, errlen, "out of memory");
    return FLOSSE_ERR;
  }
  char *p = b;
  int i = 0;
#define ARG(s, l) do { argv[i] = (s); lens[i] = (l); i++; } while (0)
  int sha = !eval && __atomic_load_n(&publish_sha_ready, __ATOMIC_ACQUIRE);
  if (sha) {
    ARG("EVALSHA", 7);
    ARG(publish_sha, 40);
  } else {
    ARG("EVAL", 4);
    ARG(publish_lua, sizeof publish_lua - 1);
  }
  ARG("3", 1);
  size_t n = key(p, "seq", "", 0);
  ARG(p, n);
  p += n + 1;
  n = key(p, "s:", name, len);
  ARG(p, n);
  p += n + 1;
  n = key(p, "m:", name, len);
  ARG(p, n);
  p += n + 1;
  n = (size_t)sprintf(p, "%zu", cc->history);
  ARG(p, n);
  p += n + 1;
  n = (size_t)sprintf(p, "%.0f", cc->history_seconds * 1000);
  ARG(p, n);
  p += n + 1;
  memcpy(p, payload, plen);
  ARG(p, plen);
  p += plen;
  free(payload);
  /* Half the timeout, on Redis' clock: a publish that reaches Redis later
   * is refused there, so one this node already answered 503 never goes. */
  double deadline = 0;
  if (__atomic_load_n(&clock_measured, __ATOMIC_ACQUIRE))
    deadline = (ev_time() + (double)__atomic_load_n(&clock_offset_us, __ATOMIC_RELAXED) / 1e6 + timeout / 2) * 1000;
  n = (size_t)sprintf(p, "%.0f", deadline);
  ARG(p, n);
  p += n + 1;
  n = key(p, "p:", name, len);
  ARG(p, n);
#undef ARG
  *buf = b;
  return FLOSSE_OK;
}

int flosse_channel_redis_publish_reply(const struct redisReply *r, uint64_t *id, int *noscript,
                                       char *err, size_t errlen) {
  *noscript = 0;
  if (r->type == REDIS_REPLY_ERROR) {
    *noscript = strncmp(r->str, "NOSCRIPT", 8) == 0;
    const char *text = r->str;
    if (strncmp(text, "FLOSSE_LATE ", 12) == 0) text += 12;
    snprintf(err, errlen, "redis: %s", text);
    return FLOSSE_ERR;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING ||
      flosse_redis_u64(r->element[0]->str, r->element[0]->len, id) != FLOSSE_OK) {
    snprintf(err, errlen, "redis: an unexpected reply to the publish");
    return FLOSSE_ERR;
  }
  FLOSSE_METRIC_GLOBAL_ADD(publishes, 1); /* this node published it (Redis took it) */
  return FLOSSE_OK;
}

/* ---- the link: channels this node subscribes to -------------------------------- */

static struct rchan **slot(const char *name, size_t len) {
  struct rchan **pp = &rl.table[fnv1a(name, len) & (rl.table_cap - 1)];
  while (*pp && !((*pp)->len == len && memcmp((*pp)->name, name, len) == 0)) pp = &(*pp)->next;
  return pp;
}

static void grow(void) {
  size_t ncap = rl.table_cap * 2;
  struct rchan **nt = calloc(ncap, sizeof *nt);
  if (!nt) return;
  for (size_t i = 0; i < rl.table_cap; i++)
    for (struct rchan *c = rl.table[i], *next; c; c = next) {
      next = c->next;
      size_t b = fnv1a(c->name, c->len) & (ncap - 1);
      c->next = nt[b];
      nt[b] = c;
    }
  free(rl.table);
  rl.table = nt;
  rl.table_cap = ncap;
}

static size_t nchans;

static void drop_held(struct rchan *c) {
  for (size_t i = 0; i < c->nheld; i++) free(c->held[i].bytes);
  c->nheld = 0;
  c->held_bytes = 0;
}

static void free_rchan(struct rchan *c) {
  struct rchan **pp = slot(c->name, c->len);
  *pp = c->next;
  if (c->read) flosse_redis_req_cancel(c->read);
  drop_held(c);
  free(c->held);
  free(c);
  nchans--;
}

static void read_reply(void *arg, struct redisReply *r, const char *err);
static void on_pubsub(struct redisAsyncContext *ctx, void *reply, void *data);

/* Asks the shard for what the channel holds after what the registry has. */
static void start_read(struct rchan *c) {
  if (c->read || !flosse_redis_conn_is_up(c->shard->cmd)) return;
  int synced = 0;
  uint64_t last = flosse_channel_last(c->name, c->len, &synced);
  const struct flosse_channel_config *cc = flosse_channel_config();
  char k1[400], k2[400], k3[400], hist[24], ms[32], after[24];
  const char *argv[9];
  size_t lens[9];
  if (read_sha_ready) {
    argv[0] = "EVALSHA", lens[0] = 7;
    argv[1] = read_sha, lens[1] = 40;
  } else {
    argv[0] = "EVAL", lens[0] = 4;
    argv[1] = read_lua, lens[1] = sizeof read_lua - 1;
  }
  argv[2] = "3", lens[2] = 1;
  lens[3] = key(k1, "seq", "", 0), argv[3] = k1;
  lens[4] = key(k2, "s:", c->name, c->len), argv[4] = k2;
  lens[5] = key(k3, "m:", c->name, c->len), argv[5] = k3;
  lens[6] = (size_t)snprintf(hist, sizeof hist, "%zu", cc->history), argv[6] = hist;
  lens[7] = (size_t)snprintf(ms, sizeof ms, "%.0f", cc->history_seconds * 1000), argv[7] = ms;
  lens[8] = (size_t)snprintf(after, sizeof after, "%llu", synced ? (unsigned long long)last : 0ULL);
  argv[8] = after;
  const char *why = NULL;
  c->overflow = 0;
  drop_held(c);
  c->read = flosse_redis_command(c->shard->cmd, 9, argv, lens, flosse_redis_settings()->timeout,
                                 read_reply, c, &why);
  if (!c->read) flosse_log(FLOSSE_LOG_DEBUG, "redis: cannot read channel %.*s: %s", (int)c->len, c->name, why);
}

static int str_el(const struct redisReply *r, size_t i) {
  return i < r->elements && (r->element[i]->type == REDIS_REPLY_STRING ||
                             r->element[i]->type == REDIS_REPLY_STATUS);
}

static void read_reply(void *arg, struct redisReply *r, const char *err) {
  struct rchan *c = arg;
  c->read = NULL;
  if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
    read_sha_ready = 0; /* Redis restarted and lost it: send the text */
    if (c->wanted && c->sub == SUB_ON) start_read(c);
    return;
  }
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 4 || (r->elements - 4) % 3 || !str_el(r, 0) ||
      !str_el(r, 1) || !str_el(r, 2) || !str_el(r, 3)) {
    int level = c->warned ? FLOSSE_LOG_DEBUG : FLOSSE_LOG_WARN;
    flosse_log(level, "redis: reading channel %.*s failed: %s; trying again every second", (int)c->len, c->name,
               r && r->type == REDIS_REPLY_ERROR ? r->str : err ? err : "an unexpected reply");
    c->warned = 1;
    return; /* the tick reads again */
  }
  if (c->overflow || c->sub != SUB_ON || !c->wanted) {
    if (c->wanted && c->sub == SUB_ON) start_read(c);
    return;
  }
  uint64_t base = 0, dropped = 0, now_ms = 0;
  flosse_redis_u64(r->element[0]->str, r->element[0]->len, &base);
  flosse_redis_u64(r->element[1]->str, r->element[1]->len, &dropped);
  flosse_redis_u64(r->element[2]->str, r->element[2]->len, &now_ms);
  /* Redis' clock against ours, give or take the round trip. */
  __atomic_store_n(&clock_offset_us, (int64_t)now_ms * 1000 - (int64_t)(ev_time() * 1e6), __ATOMIC_RELAXED);
  __atomic_store_n(&clock_measured, 1, __ATOMIC_RELEASE);
  int behind = r->element[3]->len == 1 && r->element[3]->str[0] == '1';
  if (behind)
    flosse_log(FLOSSE_LOG_WARN, "redis %s: its id counter was behind what channel %.*s had (Redis came back "
               "from an older snapshot?): moved past it, so that no id is given twice",
               c->shard->url.text, (int)c->len, c->name);
  size_t n = (r->elements - 4) / 3;
  struct flosse_remote_msg *msgs = malloc((n + c->nheld + 1) * sizeof *msgs);
  if (!msgs) return;
  size_t k = 0;
  uint64_t newest = 0;
  for (size_t i = 0; i < n; i++) {
    size_t at = 4 + 3 * i;
    uint64_t id, t;
    if (!str_el(r, at) || !str_el(r, at + 1) || !str_el(r, at + 2) ||
        flosse_redis_u64(r->element[at]->str, r->element[at]->len, &id) != FLOSSE_OK ||
        flosse_redis_u64(r->element[at + 1]->str, r->element[at + 1]->len, &t) != FLOSSE_OK ||
        flosse_redis_event_decode(r->element[at + 2]->str, r->element[at + 2]->len, &msgs[k].ev) != FLOSSE_OK)
      continue;
    msgs[k].id = id;
    msgs[k].time = redis_to_local((double)t);
    newest = id;
    k++;
  }
  /* Then what pub/sub brought meanwhile that the read did not have. */
  for (size_t i = 0; i < c->nheld; i++)
    if (c->held[i].m.id > newest) {
      msgs[k] = c->held[i].m;
      msgs[k++].time = redis_to_local((double)c->held[i].t);
    }
  int synced = 0;
  uint64_t last = flosse_channel_last(c->name, c->len, &synced);
  /* Back after an outage, some of what came meanwhile is gone already. */
  int gap = synced && dropped > last;
  flosse_channel_sync(c->name, c->len, msgs, k, dropped, base, gap, 1);
  free(msgs);
  drop_held(c);
  c->live = 1;
  c->warned = 0;
}

/* (UN)SUBSCRIBE to the channel's pub/sub channel; its state becomes then
 * on success. hiredis routes the confirmations (and the messages) of a
 * channel to the callback SUBSCRIBE gave. */
static void send_sub(struct rchan *c, const char *cmd, enum sub_state then) {
  struct redisAsyncContext *ctx = flosse_redis_conn_ctx(c->shard->ps);
  if (!ctx) return;
  char k[400];
  size_t kl = key(k, "p:", c->name, c->len);
  const char *argv[2] = {cmd, k};
  size_t lens[2] = {strlen(cmd), kl};
  int sub = then == SUB_PENDING;
  if (redisAsyncCommandArgv(ctx, sub ? on_pubsub : NULL, sub ? c->shard : NULL, 2, argv, lens) == REDIS_OK)
    c->sub = then;
}

static void subscribe(struct rchan *c) { send_sub(c, "SUBSCRIBE", SUB_PENDING); }
static void unsubscribe(struct rchan *c) { send_sub(c, "UNSUBSCRIBE", SUB_LEAVING); }

/* A message or a (un)subscribe confirmation, on the shard's pub/sub link. */
static void on_pubsub(struct redisAsyncContext *ctx, void *reply, void *data) {
  (void)ctx;
  (void)data;
  struct redisReply *r = reply;
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING)
    return; /* the link went down: its down callback resets the channels */
  const char *kind = r->element[0]->str;
  const char *p = flosse_redis_settings()->prefix;
  size_t pl = strlen(p) + 2;
  if (r->element[1]->len < pl) return;
  const char *name = r->element[1]->str + pl;
  size_t len = r->element[1]->len - pl;
  struct rchan *c = *slot(name, len);
  if (!c) return;
  if (strcmp(kind, "subscribe") == 0) {
    c->sub = SUB_ON;
    c->live = 0;
    if (c->wanted) start_read(c);
    return;
  }
  if (strcmp(kind, "unsubscribe") == 0) {
    c->sub = SUB_NONE;
    c->live = 0;
    if (c->wanted) subscribe(c);
    return;
  }
  if (strcmp(kind, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING || !c->wanted) return;
  struct flosse_remote_msg m;
  uint64_t base, t;
  const char *s;
  size_t blen;
  if (flosse_redis_message_parse(r->element[2]->str, r->element[2]->len, &m.id, &base, &t, &s, &blen, &m.ev) !=
      FLOSSE_OK)
    return;
  m.time = redis_to_local((double)t);
  if (c->live) {
    flosse_channel_sync(c->name, c->len, &m, 1, 0, base, 0, 0);
    return;
  }
  if (!c->read) return; /* before the read is sent: the read has it */
  if (c->nheld == HELD_MAX || c->held_bytes + blen > HELD_BYTES_MAX) {
    c->overflow = 1;
    return;
  }
  if (c->nheld == c->held_cap) {
    size_t ncap = c->held_cap ? c->held_cap * 2 : 16;
    struct held *nh = realloc(c->held, ncap * sizeof *nh);
    if (!nh) {
      c->overflow = 1;
      return;
    }
    c->held = nh;
    c->held_cap = ncap;
  }
  /* A copy of the event's bytes, which the reply's memory will not keep. */
  char *copy = malloc(blen + 1);
  if (!copy) {
    c->overflow = 1;
    return;
  }
  memcpy(copy, s, blen);
  flosse_redis_event_decode(copy, blen, &m.ev);
  c->held_bytes += blen;
  c->held[c->nheld].m = m;
  c->held[c->nheld].t = t;
  c->held[c->nheld++].bytes = copy;
}

/* ---- the registry's wishes, and the tick ---------------------------------------- */

static void on_want(const char *name, size_t len, int on) {
  struct want *w = malloc(sizeof *w + len);
  if (!w) {
    flosse_log(FLOSSE_LOG_ERROR, "redis: out of memory: channel %.*s is not followed", (int)len, name);
    return;
  }
  w->next = NULL;
  w->on = on;
  w->len = len;
  memcpy(w->name, name, len);
  pthread_mutex_lock(&rl.lock);
  *rl.wants_tail = w;
  rl.wants_tail = &w->next;
  struct ev_loop *loop = rl.loop; /* NULL until the link runs: it takes them then */
  pthread_mutex_unlock(&rl.lock);
  if (loop) ev_async_send(loop, &rl.wake);
}

static const struct flosse_channel_backend backend = {on_want};

static void apply(struct want *w) {
  struct rchan **pp = slot(w->name, w->len), *c = *pp;
  if (!c) {
    if (!w->on) return;
    c = calloc(1, sizeof *c + w->len);
    if (!c) return;
    c->len = w->len;
    memcpy(c->name, w->name, w->len);
    c->shard = &rl.shards[shard_index(w->name, w->len)];
    *pp = c;
    nchans++;
  }
  c->wanted = w->on;
  if (!w->on) {
    c->live = 0;
    c->unwanted_since = ev_now(rl.ev);
    if (c->read) {
      flosse_redis_req_cancel(c->read);
      c->read = NULL;
    }
    drop_held(c);
    return;
  }
  /* A channel the registry made again starts from a fresh read. */
  c->live = 0;
  if (c->read) {
    flosse_redis_req_cancel(c->read);
    c->read = NULL;
  }
  if (c->sub == SUB_NONE) subscribe(c);
  else if (c->sub == SUB_ON) start_read(c);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents;
  pthread_mutex_lock(&rl.lock);
  struct want *list = rl.wants;
  rl.wants = NULL;
  rl.wants_tail = &rl.wants;
  pthread_mutex_unlock(&rl.lock);
  while (list) {
    struct want *next = list->next;
    if (rl.table_cap && nchans + 1 > rl.table_cap / 2) grow();
    apply(list);
    free(list);
    list = next;
  }
}

/* Once a second: reads that failed are tried again; channels nobody here
 * has wanted for a while are let go. */
static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)w;
  (void)revents;
  double now = ev_now(loop);
  for (size_t i = 0; i < rl.table_cap; i++)
    for (struct rchan *c = rl.table[i], *next; c; c = next) {
      next = c->next;
      if (c->wanted) {
        if (c->sub == SUB_NONE) subscribe(c);
        else if (c->sub == SUB_ON && !c->live && !c->read) start_read(c);
      } else if (c->sub == SUB_ON && now - c->unwanted_since > 5) {
        unsubscribe(c);
      } else if (c->sub == SUB_NONE && !c->read) {
        free_rchan(c);
      }
    }
}

/* ---- the shards' connections --------------------------------------------------- */

/* The digest of a script Redis loaded (arg: publish_lua or read_lua). */
static void load_reply(void *arg, struct redisReply *r, const char *err) {
  (void)err;
  if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) return;
  if (arg == publish_lua) {
    if (__atomic_load_n(&publish_sha_ready, __ATOMIC_ACQUIRE)) return; /* the same text, the same digest */
    memcpy(publish_sha, r->str, 40);
    publish_sha[40] = '\0';
    __atomic_store_n(&publish_sha_ready, 1, __ATOMIC_RELEASE);
  } else {
    memcpy(read_sha, r->str, 40);
    read_sha[40] = '\0';
    read_sha_ready = 1;
  }
}


static void cmd_up(struct flosse_redis_conn *conn, void *data) {
  (void)data;
  const char *why;
  flosse_redis_set_name(conn, "flosse-channels");
  const char *argv[3] = {"SCRIPT", "LOAD", publish_lua};
  size_t lens[3] = {6, 4, sizeof publish_lua - 1};
  flosse_redis_command(conn, 3, argv, lens, flosse_redis_settings()->timeout, load_reply, (void *)publish_lua, &why);
  argv[2] = read_lua;
  lens[2] = sizeof read_lua - 1;
  flosse_redis_command(conn, 3, argv, lens, flosse_redis_settings()->timeout, load_reply, (void *)read_lua, &why);
  /* Reads that waited for the link go now. */
  for (size_t i = 0; i < rl.table_cap; i++)
    for (struct rchan *c = rl.table[i]; c; c = c->next)
      if (c->shard->cmd == conn && c->wanted && c->sub == SUB_ON && !c->live && !c->read) start_read(c);
}

static void ps_up(struct flosse_redis_conn *conn, void *data) {
  struct shard *sh = data;
  flosse_redis_set_name(conn, "flosse-channels-pubsub");
  for (size_t i = 0; i < rl.table_cap; i++)
    for (struct rchan *c = rl.table[i]; c; c = c->next)
      if (c->shard == sh && c->wanted && c->sub == SUB_NONE) subscribe(c);
}

/* The pub/sub link is gone: whatever it carried from now on is read again
 * (from after what each channel has) once it is back. */
static void ps_down(struct flosse_redis_conn *conn, void *data, const char *why) {
  struct shard *sh = data;
  (void)conn;
  (void)why;
  for (size_t i = 0; i < rl.table_cap; i++)
    for (struct rchan *c = rl.table[i]; c; c = c->next)
      if (c->shard == sh) {
        c->sub = SUB_NONE;
        c->live = 0;
        if (c->read) {
          flosse_redis_req_cancel(c->read);
          c->read = NULL;
        }
        drop_held(c);
      }
}

static const struct flosse_redis_conn_callbacks ps_callbacks = {ps_up, ps_down};
static const struct flosse_redis_conn_callbacks cmd_callbacks = {cmd_up, NULL};

void flosse_channel_redis_configure(void) {
  if (__atomic_load_n(&rl.configured, __ATOMIC_ACQUIRE)) return;
  pthread_mutex_lock(&rl.lock);
  rl.wants = NULL;
  rl.wants_tail = &rl.wants;
  pthread_mutex_unlock(&rl.lock);
  flosse_channel_set_backend(&backend);
  __atomic_store_n(&rl.configured, 1, __ATOMIC_RELEASE);
}

int flosse_channel_redis_start(struct ev_loop *loop) {
  const struct flosse_redis_settings *rs = flosse_redis_settings();
  if (rl.active || !rs->configured) return FLOSSE_OK;
  flosse_channel_redis_configure();
  rl.ev = loop;
  rl.nshards = rs->nshards > 0 ? rs->nshards : 1;
  rl.table_cap = 64;
  rl.table = calloc(rl.table_cap, sizeof *rl.table);
  if (!rl.table) return FLOSSE_ERR;
  for (int i = 0; i < rl.nshards; i++) {
    struct shard *sh = &rl.shards[i];
    sh->url = rs->nshards > 0 ? rs->shards[i] : rs->url;
    sh->ps = flosse_redis_conn_new(loop, &sh->url, rs->timeout, &ps_callbacks, sh);
    sh->cmd = flosse_redis_conn_new(loop, &sh->url, rs->timeout, &cmd_callbacks, sh);
  }
  ev_async_init(&rl.wake, on_wake);
  ev_async_start(loop, &rl.wake);
  ev_timer_init(&rl.tick, on_tick, 1., 1.);
  ev_timer_start(loop, &rl.tick);
  rl.active = 1;
  /* What the workers asked for before the link ran. */
  pthread_mutex_lock(&rl.lock);
  rl.loop = loop;
  pthread_mutex_unlock(&rl.lock);
  ev_async_send(loop, &rl.wake);
  return FLOSSE_OK;
}

void flosse_channel_redis_stop(void) {
  if (!rl.active) return;
  flosse_channel_set_backend(NULL);
  __atomic_store_n(&rl.configured, 0, __ATOMIC_RELEASE);
  pthread_mutex_lock(&rl.lock);
  rl.loop = NULL;
  pthread_mutex_unlock(&rl.lock);
  ev_async_stop(rl.ev, &rl.wake);
  ev_timer_stop(rl.ev, &rl.tick);
  for (size_t i = 0; i < rl.table_cap; i++)
    while (rl.table[i]) free_rchan(rl.table[i]);
  for (int i = 0; i < rl.nshards; i++) {
    flosse_redis_conn_free(rl.shards[i].ps);
    flosse_redis_conn_free(rl.shards[i].cmd);
  }
  free(rl.table);
  rl.table = NULL;
  rl.table_cap = 0;
  pthread_mutex_lock(&rl.lock);
  while (rl.wants) {
    struct want *next = rl.wants->next;
    free(rl.wants);
    rl.wants = next;
  }
  rl.wants_tail = &rl.wants;
  pthread_mutex_unlock(&rl.lock);
  rl.active = 0;
}
