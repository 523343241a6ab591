/* Channels across nodes: Redis as the channels' back end (docs/scaling.md).
 * A publish runs one script on the channel's shard that numbers the event,
 * keeps it in the channel's stream and publishes it; each node subscribes
 * (pub/sub) to the channels it has subscribers for, mirrors their history
 * and feeds what comes, in id order, to the registry (channel.h). The
 * link lives on the first worker's loop; publishing works from any worker
 * (through that worker's Redis pool). Layer 3, beside channel.c. */
#ifndef FLOSSE_CHANNEL_REDIS_H
#define FLOSSE_CHANNEL_REDIS_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "sse.h"

struct redisReply;
struct flosse_redis_url;

/* Makes Redis the channels' back end (the settings are redis.h's, set
 * before): from now on publishes go to Redis, and the channels subscribed
 * to wait for the link, which flosse_channel_redis_start starts on loop
 * (the first worker's). Returns FLOSSE_OK, or FLOSSE_ERR (out of memory). */
void flosse_channel_redis_configure(void);
int flosse_channel_redis_start(struct ev_loop *loop);
/* Stops the link (the loop's thread): channels are in-process again. */
void flosse_channel_redis_stop(void);
int flosse_channel_redis_active(void);

/* The shard that holds a channel: FNV-1a (32 bits) of its name, modulo the
 * number of shards. */
const struct flosse_redis_url *flosse_channel_redis_shard(const char *name, size_t len);

/* The publish of ev on name as a command: argv/lens (FLOSSE_REDIS_PUBLISH_ARGS
 * entries) point into *buf, which the caller frees. eval: send the script's
 * text (EVAL) rather than its digest (EVALSHA). Returns FLOSSE_OK, or
 * FLOSSE_ERR with err (an event that cannot be sent this way). */
#define FLOSSE_REDIS_PUBLISH_ARGS 11
int flosse_channel_redis_publish_cmd(const char *name, size_t len, const struct flosse_sse_event *ev,
                                     double timeout, int eval, const char **argv, size_t *lens,
                                     char **buf, char *err, size_t errlen);
/* What the publish's reply says: FLOSSE_OK and the id, or FLOSSE_ERR and
 * why. *noscript is set when Redis did not know the digest (send it again
 * with eval). */
int flosse_channel_redis_publish_reply(const struct redisReply *r, uint64_t *id, int *noscript,
                                       char *err, size_t errlen);

#endif
