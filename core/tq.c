#include "tq.h"

static void arm(struct flosse_tq *tq, ev_tstamp now) {
  if (flosse_list_empty(&tq->nodes)) {
    ev_timer_stop(tq->loop, &tq->timer);
    return;
  }
  struct flosse_tq_node *head = flosse_container_of(tq->nodes.next, struct flosse_tq_node, link);
  ev_tstamp after = head->since + tq->interval - now;
  ev_timer_stop(tq->loop, &tq->timer);
  ev_timer_set(&tq->timer, after > 0 ? after : 0, 0.);
  ev_timer_start(tq->loop, &tq->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  struct flosse_tq *tq = flosse_container_of(w, struct flosse_tq, timer);
  ev_tstamp now = ev_now(loop);
  /* Members touched during this sweep go to the tail with since == now,
   * so the sweep ends once it reaches them. */
  while (!flosse_list_empty(&tq->nodes)) {
    struct flosse_tq_node *n = flosse_container_of(tq->nodes.next, struct flosse_tq_node, link);
    if (n->since + tq->interval > now) break;
    flosse_list_unlink(&n->link);
    tq->expire(tq, n);
  }
  arm(tq, now);
}

void flosse_tq_init(struct flosse_tq *tq, struct ev_loop *loop, ev_tstamp interval,
                    flosse_tq_expire expire) {
  tq->loop = loop;
  tq->interval = interval;
  tq->expire = expire;
  flosse_list_init(&tq->nodes);
  ev_timer_init(&tq->timer, on_timer, interval, 0.);
}

void flosse_tq_node_init(struct flosse_tq_node *node) {
  flosse_list_init(&node->link);
  node->since = 0;
}

void flosse_tq_touch(struct flosse_tq *tq, struct flosse_tq_node *node) {
  if (tq->interval <= 0) return; /* this timeout is turned off */
  node->since = ev_now(tq->loop);
  flosse_list_unlink(&node->link);
  flosse_list_push(&tq->nodes, &node->link);
  /* The timer waits for the head; a new tail never makes it fire later
   * than needed, so only an idle timer has to be started. */
  if (!ev_is_active(&tq->timer)) arm(tq, node->since);
}

void flosse_tq_remove(struct flosse_tq_node *node) { flosse_list_unlink(&node->link); }

void flosse_tq_stop(struct flosse_tq *tq) { ev_timer_stop(tq->loop, &tq->timer); }
