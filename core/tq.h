/* Timeout queues: many deadlines that share one interval, kept in the order
 * they were last touched, driven by one ev_timer ("Be smart about timeouts"
 * #4 in libev's manual). Touching a member is O(1) and never goes through
 * the timer heap; the timer only ever waits for the oldest member. */
#ifndef FLOSSE_TQ_H
#define FLOSSE_TQ_H

#include <ev.h>

#include "list.h"

struct flosse_tq_node {
  struct flosse_list link;
  ev_tstamp since; /* last touch */
};

struct flosse_tq;
/* Called for a member whose interval passed; it is already out of the
 * queue, and may be touched again to stay in. */
typedef void (*flosse_tq_expire)(struct flosse_tq *tq, struct flosse_tq_node *node);

struct flosse_tq {
  struct ev_loop *loop;
  ev_timer timer;
  struct flosse_list nodes; /* oldest touch first */
  ev_tstamp interval;
  flosse_tq_expire expire;
};

void flosse_tq_init(struct flosse_tq *tq, struct ev_loop *loop, ev_tstamp interval,
                    flosse_tq_expire expire);
void flosse_tq_node_init(struct flosse_tq_node *node);
/* Restarts node's interval from now, adding it to tq if it was not there. */
void flosse_tq_touch(struct flosse_tq *tq, struct flosse_tq_node *node);
/* Takes node out of whatever queue holds it (no-op if none). */
void flosse_tq_remove(struct flosse_tq_node *node);
static inline int flosse_tq_member(const struct flosse_tq_node *node) {
  return flosse_list_linked(&node->link);
}
/* Stops the timer; members stay linked (callers remove them). */
void flosse_tq_stop(struct flosse_tq *tq);

#endif
