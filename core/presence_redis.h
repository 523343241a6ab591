/* Presence across nodes: every PRESENCE_PERIOD s this node writes its
 * subscriber counts (channel -> subscriptions here) to the hash
 * `<prefix>presence:<node>` on the first Redis shard, with a TTL of a few
 * periods, and scores itself in the sorted set `<prefix>presence:nodes`
 * with when that TTL ends on Redis' clock. Readers (lua/flosse/channels.lua)
 * sum the hashes of the nodes still live. Nothing is written per
 * subscribe: only a changed snapshot rewrites the hash; an unchanged one
 * only pushes its TTL on. A graceful stop removes this node's part at once;
 * a node that dies stops counting when its TTL ends. Runs on the main
 * worker's loop, like the channels' link. */
#ifndef FLOSSE_PRESENCE_REDIS_H
#define FLOSSE_PRESENCE_REDIS_H

#include <ev.h>

#define FLOSSE_PRESENCE_PERIOD 1.0
#define FLOSSE_PRESENCE_TTL 5.0

int flosse_presence_redis_start(struct ev_loop *loop);
/* Stops the refresher and removes this node's counts from Redis (waiting
 * at most the Redis timeout). */
void flosse_presence_redis_stop(void);

#endif
