/* Revocations across nodes: each node's link to the first Redis shard
 * hears the revocations the others publish on `<prefix>revoke` and applies
 * them here (flosse_guards_revoke), and on every (re)connect applies the
 * refusals still running, kept in the sorted set `<prefix>revoked` (score:
 * until when, in ms on Redis' clock), so a node cut off meanwhile catches
 * up. Publishing is lua/flosse/revoke.lua's (a script through the
 * worker's client). Runs on the main worker's loop, like the channels'
 * link. */
#ifndef FLOSSE_REVOKE_REDIS_H
#define FLOSSE_REVOKE_REDIS_H

#include <ev.h>

/* This process's id among the nodes (16 hex digits, random per process):
 * a node skips what it published itself, since it applied it already. */
const char *flosse_revoke_redis_node(void);

int flosse_revoke_redis_start(struct ev_loop *loop);
void flosse_revoke_redis_stop(void);

#endif
