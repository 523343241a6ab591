#include "presence_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "buf.h" /* FLOSSE_OK */
#include "channel.h"
#include "defaults.h"
#include "log.h"
#include "redis.h"
#include "revoke_redis.h" /* the node id */

/* KEYS: the node's hash, the node set. ARGV: node, ttl ms, full (1: the
 * pairs replace the hash; 0: only the TTL is pushed on), then name, count
 * pairs. The TTL is on Redis' clock, never this node's. */
static const char write_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[2])\n"
    "if ARGV[3] == '1' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])\n"
    "return 1\n";

static const char remove_lua[] =
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "return 1\n";

static struct {
  struct flosse_redis_conn *cmd;
  struct ev_loop *loop;
  ev_timer timer;
  char hash[200], nodes[160];
  int active, inflight, written; /* written: the last snapshot is in Redis */
  uint64_t last_sum;
  /* The snapshot being built: names copied under the registry lock. */
  char **names;
  size_t *lens, *counts, n, cap;
} pr;

static void take(const char *name, size_t len, size_t subscribers, void *ud) {
  (void)ud;
  if (subscribers == 0 || pr.n >= FLOSSE_DEFAULT_MAX_CHANNELS) return;
  if (pr.n == pr.cap) {
    size_t cap = pr.cap ? pr.cap * 2 : 64;
    char **nn = realloc(pr.names, cap * sizeof *nn);
    if (nn) pr.names = nn;
    size_t *nl = realloc(pr.lens, cap * sizeof *nl);
    if (nl) pr.lens = nl;
    size_t *nc = realloc(pr.counts, cap * sizeof *nc);
    if (nc) pr.counts = nc;
    if (!nn || !nl || !nc) return;
    pr.cap = cap;
  }
  char *copy = malloc(len);
  if (!copy) return;
  memcpy(copy, name, len);
  pr.names[pr.n] = copy;
  pr.lens[pr.n] = len;
  pr.counts[pr.n] = subscribers;
  pr.n++;
}

static void clear(void) {
  for (size_t i = 0; i < pr.n; i++) free(pr.names[i]);
  pr.n = 0;
}

/* A digest of the snapshot, taken in a walk of its own that copies nothing (the
 * registry walks in a stable order while no channel comes or goes):
 * unchanged, nothing is copied and the hash need not be rewritten. */
static uint64_t mix(uint64_t h, const char *name, size_t len, size_t subscribers) {
  for (size_t k = 0; k < len; k++) h = (h ^ (unsigned char)name[k]) * 1099511628211ULL;
  return (h ^ (uint64_t)subscribers ^ 0xffULL << 56) * 1099511628211ULL;
}

static void sum_one(const char *name, size_t len, size_t subscribers, void *ud) {
  if (subscribers) *(uint64_t *)ud = mix(*(uint64_t *)ud, name, len, subscribers);
}

static void written(void *arg, struct redisReply *r, const char *err) {
  (void)arg;
  pr.inflight = 0;
  if (err || !r || r->type == REDIS_REPLY_ERROR) {
    pr.written = 0; /* write it whole next time */
    flosse_log(FLOSSE_LOG_DEBUG, "presence: cannot write this node's counts: %s",
               err ? err : r ? r->str : "no reply");
  }
}

static void refresh(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)w, (void)revents;
  if (!pr.active || pr.inflight || !flosse_redis_conn_is_up(pr.cmd)) return;
  uint64_t sum = 1469598103934665603ULL;
  flosse_channel_each(sum_one, &sum);
  int full = !pr.written || sum != pr.last_sum;
  clear();
  if (full) flosse_channel_each(take, NULL); /* may differ from the digest's: then the next turn rewrites */
  size_t argc = 8 + (full ? 2 * pr.n : 0);
  const char **argv = malloc(argc * sizeof *argv);
  size_t *lens = malloc(argc * sizeof *lens);
  char *nums = malloc((full ? pr.n : 0) * 24 + 24);
  if (!argv || !lens || !nums) {
    free(argv), free(lens), free(nums);
    return;
  }
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%d", (int)(FLOSSE_PRESENCE_TTL * 1000));
  const char *node = flosse_revoke_redis_node();
  const char *head[7] = {"EVAL", write_lua, "2", pr.hash, pr.nodes, node, ttl};
  for (int i = 0; i < 7; i++) argv[i] = head[i], lens[i] = strlen(head[i]);
  size_t a = 7;
  argv[a] = full ? "1" : "0", lens[a] = 1, a++;
  if (full)
    for (size_t i = 0; i < pr.n; i++) {
      char *num = nums + 24 * i;
      argv[a] = pr.names[i], lens[a] = pr.lens[i], a++;
      lens[a] = (size_t)snprintf(num, 24, "%zu", pr.counts[i]);
      argv[a] = num, a++;
    }
  const char *why;
  if (flosse_redis_command(pr.cmd, (int)a, argv, lens, flosse_redis_settings()->timeout, written, NULL, &why)) {
    pr.inflight = 1;
    pr.written = 1; /* unless the reply says otherwise */
    pr.last_sum = sum;
  }
  free(argv), free(lens), free(nums);
}

static void cmd_up(struct flosse_redis_conn *conn, void *data) {
  (void)data;
  flosse_redis_set_name(conn, "flosse-presence");
  pr.written = 0; /* Redis may have lost it */
}

static const struct flosse_redis_conn_callbacks cmd_callbacks = {cmd_up, NULL};

int flosse_presence_redis_start(struct ev_loop *loop) {
  const struct flosse_redis_settings *rs = flosse_redis_settings();
  if (pr.active || !rs->configured) return FLOSSE_OK;
  snprintf(pr.hash, sizeof pr.hash, "%spresence:%s", rs->prefix, flosse_revoke_redis_node());
  snprintf(pr.nodes, sizeof pr.nodes, "%spresence:nodes", rs->prefix);
  pr.cmd = flosse_redis_conn_new(loop, &rs->url, rs->timeout, &cmd_callbacks, NULL);
  if (!pr.cmd) return FLOSSE_ERR;
  pr.loop = loop;
  ev_timer_init(&pr.timer, refresh, FLOSSE_PRESENCE_PERIOD, FLOSSE_PRESENCE_PERIOD);
  ev_timer_start(loop, &pr.timer);
  pr.active = 1;
  return FLOSSE_OK;
}

/* A connection of its own, blocking for at most the timeout: the loop is
 * stopping, and the node's counts should go before it does. */
static void remove_now(void) {
  const struct flosse_redis_settings *rs = flosse_redis_settings();
  struct timeval tv = {(time_t)rs->timeout, (suseconds_t)((rs->timeout - (double)(time_t)rs->timeout) * 1e6)};
  redisContext *c = rs->url.path[0] ? redisConnectUnixWithTimeout(rs->url.path, tv)
                                    : redisConnectWithTimeout(rs->url.host, rs->url.port, tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return;
  }
  redisSetTimeout(c, tv);
  redisReply *r = NULL;
  if (rs->url.password[0]) {
    r = rs->url.user[0] ? redisCommand(c, "AUTH %s %s", rs->url.user, rs->url.password)
                        : redisCommand(c, "AUTH %s", rs->url.password);
    if (r) freeReplyObject(r);
  }
  if (rs->url.db) {
    r = redisCommand(c, "SELECT %d", rs->url.db);
    if (r) freeReplyObject(r);
  }
  r = redisCommand(c, "EVAL %s 2 %s %s %s", remove_lua, pr.hash, pr.nodes, flosse_revoke_redis_node());
  if (r) freeReplyObject(r);
  redisFree(c);
}

void flosse_presence_redis_stop(void) {
  if (!pr.active) return;
  ev_timer_stop(pr.loop, &pr.timer);
  flosse_redis_conn_free(pr.cmd);
  pr.cmd = NULL;
  pr.active = 0;
  remove_now();
  clear();
  free(pr.names), free(pr.lens), free(pr.counts);
  pr.names = NULL, pr.lens = NULL, pr.counts = NULL;
  pr.cap = 0;
}
