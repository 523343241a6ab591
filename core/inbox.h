/* A cross-thread inbox: any thread posts (function, target, argument) to a
 * loop; the loop's thread calls function(target, argument) soon after. It
 * knows nothing of connections or tasks (h2o's multithread.h: a queue, its
 * receiver, a callback). */
#ifndef FLOSSE_INBOX_H
#define FLOSSE_INBOX_H

#include <ev.h>
#include <pthread.h>
#include <stddef.h>

typedef void (*flosse_inbox_fn)(void *target, int arg);

struct flosse_inbox_msg {
  flosse_inbox_fn fn;
  void *target;
  int arg;
};

struct flosse_inbox {
  struct ev_loop *loop;
  ev_async async;
  pthread_mutex_t lock;
  struct flosse_inbox_msg *q;     /* posted, under lock */
  size_t n, cap;
  struct flosse_inbox_msg *work;  /* the batch being delivered (loop thread only) */
  size_t nwork, work_cap;
};

void flosse_inbox_init(struct flosse_inbox *in, struct ev_loop *loop);
void flosse_inbox_start(struct flosse_inbox *in);
void flosse_inbox_stop(struct flosse_inbox *in);
void flosse_inbox_free(struct flosse_inbox *in);

/* Queues fn(target, arg) for the inbox's loop and wakes it (any thread).
 * Returns FLOSSE_OK, or FLOSSE_ERR when out of memory (nothing queued). */
int flosse_inbox_post(struct flosse_inbox *in, flosse_inbox_fn fn, void *target, int arg);

/* Drops what is queued for target (the loop's thread, before target is freed). */
void flosse_inbox_forget(struct flosse_inbox *in, void *target);

#endif
