#include "inbox.h"

#include <stdlib.h>

#include "buf.h"
#include "list.h"

/* Takes the whole queue in one swap, so that a publish to thousands of
 * this loop's subscribers costs the two threads one lock each, not one per
 * message. */
static void on_async(struct ev_loop *loop, ev_async *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_inbox *in = flosse_container_of(w, struct flosse_inbox, async);
  for (;;) {
    pthread_mutex_lock(&in->lock);
    struct flosse_inbox_msg *batch = in->q;
    size_t n = in->n, cap = in->cap;
    in->q = in->work;
    in->cap = in->work_cap;
    in->n = 0;
    pthread_mutex_unlock(&in->lock);
    in->work = batch;
    in->work_cap = cap;
    if (!n) return;
    in->nwork = n;
    for (size_t i = 0; i < in->nwork; i++) {
      struct flosse_inbox_msg m = batch[i];
      if (m.target) m.fn(m.target, m.arg); /* a forgotten target is NULL */
    }
    in->nwork = 0;
  }
}

void flosse_inbox_init(struct flosse_inbox *in, struct ev_loop *loop) {
  in->loop = loop;
  in->q = in->work = NULL;
  in->n = in->cap = in->nwork = in->work_cap = 0;
  pthread_mutex_init(&in->lock, NULL);
  ev_async_init(&in->async, on_async);
}

void flosse_inbox_start(struct flosse_inbox *in) { ev_async_start(in->loop, &in->async); }
void flosse_inbox_stop(struct flosse_inbox *in) { ev_async_stop(in->loop, &in->async); }

void flosse_inbox_free(struct flosse_inbox *in) {
  free(in->q);
  free(in->work);
  in->q = in->work = NULL;
  in->n = in->cap = in->nwork = in->work_cap = 0;
  pthread_mutex_destroy(&in->lock);
}

int flosse_inbox_post(struct flosse_inbox *in, flosse_inbox_fn fn, void *target, int arg) {
  pthread_mutex_lock(&in->lock);
  if (in->n == in->cap) {
    size_t ncap = in->cap ? in->cap * 2 : 64;
    struct flosse_inbox_msg *q = realloc(in->q, ncap * sizeof *q);
    if (!q) {
      pthread_mutex_unlock(&in->lock);
      return FLOSSE_ERR;
    }
    in->q = q;
    in->cap = ncap;
  }
  in->q[in->n++] = (struct flosse_inbox_msg){fn, target, arg};
  pthread_mutex_unlock(&in->lock);
  ev_async_send(in->loop, &in->async);
  return FLOSSE_OK;
}

void flosse_inbox_forget(struct flosse_inbox *in, void *target) {
  pthread_mutex_lock(&in->lock);
  for (size_t i = 0; i < in->n; i++)
    if (in->q[i].target == target) in->q[i].target = NULL;
  pthread_mutex_unlock(&in->lock);
  /* The batch in hand is only touched by this (the loop's) thread. */
  for (size_t i = 0; i < in->nwork; i++)
    if (in->work[i].target == target) in->work[i].target = NULL;
}
