#include "loop.h"

#include "metrics.h"

__thread struct flosse_loop *flosse_loop_current;

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents) {
  (void)loop;
  (void)w;
  (void)revents;
}

void flosse_loop_free_closed(struct flosse_loop *l) {
  while (!flosse_list_empty(&l->freeq)) {
    struct flosse_job *j = flosse_container_of(l->freeq.next, struct flosse_job, link);
    flosse_list_unlink(&j->link);
    j->fn(j);
  }
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents) {
  (void)revents;
  struct flosse_loop *l = flosse_container_of(w, struct flosse_loop, prepare);
  struct flosse_list batch;
  /* What runs now may queue more: that waits for the next turn, so that a
   * busy view cannot starve the flush below. */
  flosse_list_take(&batch, &l->runq);
  while (!flosse_list_empty(&batch)) {
    struct flosse_job *j = flosse_container_of(batch.next, struct flosse_job, link);
    flosse_list_unlink(&j->link);
    j->fn(j);
  }
  while (!flosse_list_empty(&l->flushq)) {
    struct flosse_job *j = flosse_container_of(l->flushq.next, struct flosse_job, link);
    flosse_list_unlink(&j->link);
    j->fn(j);
  }
  flosse_loop_free_closed(l);
  if (flosse_list_empty(&l->runq)) ev_idle_stop(loop, &l->idle);
  else ev_idle_start(loop, &l->idle);
  if (l->after_turn) l->after_turn(l);
}

void flosse_loop_init(struct flosse_loop *l, struct ev_loop *ev) {
  l->ev = ev;
  l->L = NULL;
  l->lalloc = NULL;
  l->index = 0;
  l->after_turn = NULL;
  l->redis = NULL;
  l->metrics = &flosse_metrics_workers[0]; /* until the server sets its worker's */
  flosse_list_init(&l->runq);
  flosse_list_init(&l->flushq);
  flosse_list_init(&l->freeq);
  ev_prepare_init(&l->prepare, on_prepare);
  ev_idle_init(&l->idle, on_idle);
  flosse_inbox_init(&l->inbox, ev);
}

void flosse_loop_start(struct flosse_loop *l, struct lua_State *L) {
  l->L = L;
  flosse_loop_current = l;
  ev_prepare_start(l->ev, &l->prepare);
  flosse_inbox_start(&l->inbox);
}

void flosse_loop_stop(struct flosse_loop *l) {
  flosse_loop_free_closed(l);
  ev_prepare_stop(l->ev, &l->prepare);
  ev_idle_stop(l->ev, &l->idle);
  flosse_inbox_stop(&l->inbox);
  if (flosse_loop_current == l) flosse_loop_current = NULL;
}

void flosse_loop_free(struct flosse_loop *l) { flosse_inbox_free(&l->inbox); }

void flosse_loop_run_soon(struct flosse_loop *l, struct flosse_job *j) {
  if (!flosse_list_linked(&j->link)) flosse_list_push(&l->runq, &j->link);
}

void flosse_loop_flush_soon(struct flosse_loop *l, struct flosse_job *j) {
  if (!flosse_list_linked(&j->link)) flosse_list_push(&l->flushq, &j->link);
}

void flosse_loop_free_later(struct flosse_loop *l, struct flosse_job *j, flosse_job_fn fn) {
  flosse_list_unlink(&j->link);
  j->fn = fn;
  flosse_list_push(&l->freeq, &j->link);
}
