#include "revoke_redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "buf.h" /* FLOSSE_OK */
#include "guard.h"
#include "log.h"
#include "redis.h"

/* The refusals still running, by Redis' clock: expired ones are dropped
 * first. Returns { now_ms, { user, until_ms, ... } }. */
static const char catch_up_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "return { now, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES') }\n";

static struct {
  struct flosse_redis_conn *ps, *cmd;
  char channel[160], set[160];
  int active;
} rv;

static char node_id[17];
static pthread_once_t node_once = PTHREAD_ONCE_INIT;

static void make_node_id(void) {
  unsigned char b[8] = {0};
  if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
    /* no entropy: the clock and the address space still tell nodes apart */
    uint64_t x = (uint64_t)(ev_time() * 1e6) ^ (uint64_t)(uintptr_t)&rv;
    memcpy(b, &x, sizeof b);
  }
  for (int i = 0; i < 8; i++) snprintf(node_id + 2 * i, 3, "%02x", b[i]);
}

const char *flosse_revoke_redis_node(void) {
  pthread_once(&node_once, make_node_id);
  return node_id;
}

/* "<node> <seconds> <user>", as lua/flosse/revoke.lua publishes it. */
static void on_message(struct redisAsyncContext *ctx, void *reply, void *data) {
  (void)ctx, (void)data;
  struct redisReply *r = reply;
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
      strcmp(r->element[0]->str, "message") != 0 || r->element[2]->type != REDIS_REPLY_STRING)
    return;
  const char *s = r->element[2]->str, *end = s + r->element[2]->len;
  const char *sp1 = memchr(s, ' ', (size_t)(end - s));
  if (!sp1 || sp1 - s != 16) return;
  const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
  if (!sp2 || sp2 + 1 >= end) return;
  if (memcmp(s, flosse_revoke_redis_node(), 16) == 0) return; /* ours: applied when published */
  char num[32];
  size_t nl = (size_t)(sp2 - sp1 - 1);
  if (nl == 0 || nl >= sizeof num) return;
  memcpy(num, sp1 + 1, nl);
  num[nl] = '\0';
  char *e;
  double seconds = strtod(num, &e);
  if (*e || !(seconds >= 0)) return;
  size_t ulen = (size_t)(end - sp2 - 1);
  flosse_log(FLOSSE_LOG_INFO, "revoked user %.*s (from another node; new streams refused for %gs)",
             (int)(ulen > 256 ? 256 : ulen), sp2 + 1, seconds);
  if (flosse_guards_revoke(sp2 + 1, ulen, seconds) != FLOSSE_OK)
    flosse_log(FLOSSE_LOG_WARN, "revocations: cannot apply one from another node (bad id or no memory)");
}

static void catch_up_reply(void *arg, struct redisReply *r, const char *err) {
  (void)arg;
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
      r->element[1]->type != REDIS_REPLY_ARRAY) {
    if (err || (r && r->type == REDIS_REPLY_ERROR))
      flosse_log(FLOSSE_LOG_WARN, "revocations: cannot read the running ones: %s",
                 err ? err : r->str);
    return;
  }
  long long now = r->element[0]->integer;
  struct redisReply *l = r->element[1];
  for (size_t i = 0; i + 1 < l->elements; i += 2) {
    if (l->element[i]->type != REDIS_REPLY_STRING || l->element[i + 1]->type != REDIS_REPLY_STRING) continue;
    double until = strtod(l->element[i + 1]->str, NULL);
    if (!(until > (double)now)) continue;
    flosse_guards_revoke(l->element[i]->str, l->element[i]->len, (until - (double)now) / 1000.);
  }
}

static void cmd_up(struct flosse_redis_conn *conn, void *data) {
  (void)data;
  flosse_redis_set_name(conn, "flosse-revocations");
}

static void ps_up(struct flosse_redis_conn *conn, void *data) {
  (void)data;
  struct redisAsyncContext *ctx = flosse_redis_conn_ctx(conn);
  const char *why;
  flosse_redis_set_name(conn, "flosse-revocations");
  if (ctx) {
    const char *argv[2] = {"SUBSCRIBE", rv.channel};
    size_t lens[2] = {9, strlen(rv.channel)};
    redisAsyncCommandArgv(ctx, on_message, NULL, 2, argv, lens);
  }
  /* What was published while this node was not listening. */
  const char *argv[4] = {"EVAL", catch_up_lua, "1", rv.set};
  size_t lens[4] = {4, sizeof catch_up_lua - 1, 1, strlen(rv.set)};
  flosse_redis_command(rv.cmd, 4, argv, lens, flosse_redis_settings()->timeout, catch_up_reply, NULL, &why);
}

static const struct flosse_redis_conn_callbacks ps_callbacks = {ps_up, NULL};
static const struct flosse_redis_conn_callbacks cmd_callbacks = {cmd_up, NULL};

int flosse_revoke_redis_start(struct ev_loop *loop) {
  const struct flosse_redis_settings *rs = flosse_redis_settings();
  if (rv.active || !rs->configured) return FLOSSE_OK;
  snprintf(rv.channel, sizeof rv.channel, "%srevoke", rs->prefix);
  snprintf(rv.set, sizeof rv.set, "%srevoked", rs->prefix);
  /* The command connection first: the pub/sub one's up callback uses it. */
  rv.cmd = flosse_redis_conn_new(loop, &rs->url, rs->timeout, &cmd_callbacks, NULL);
  rv.ps = rv.cmd ? flosse_redis_conn_new(loop, &rs->url, rs->timeout, &ps_callbacks, NULL) : NULL;
  if (!rv.ps) {
    flosse_redis_conn_free(rv.cmd);
    rv.cmd = NULL;
    return FLOSSE_ERR;
  }
  rv.active = 1;
  return FLOSSE_OK;
}

void flosse_revoke_redis_stop(void) {
  if (!rv.active) return;
  flosse_redis_conn_free(rv.ps);
  flosse_redis_conn_free(rv.cmd);
  rv.ps = rv.cmd = NULL;
  rv.active = 0;
}
