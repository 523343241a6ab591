/* A worker's loop context: its libev loop, its Lua state, and the work it
 * defers to the end of the loop's turn (run, then flush, then free), with
 * the inbox other threads post to. Apart from the server's configuration,
 * and knowing nothing of connections or tasks: they hand it jobs. */
#ifndef FLOSSE_LOOP_H
#define FLOSSE_LOOP_H

#include <ev.h>

#include "inbox.h"
#include "list.h"

struct flosse_job;
struct flosse_redis_pools;
struct flosse_metrics_worker;
typedef void (*flosse_job_fn)(struct flosse_job *job);

/* Embedded in what it runs (container_of finds the owner). */
struct flosse_job {
  struct flosse_list link;
  flosse_job_fn fn;
};

struct flosse_loop {
  struct ev_loop *ev;
  struct lua_State *L;       /* the worker's main thread, while the loop runs (only
                                the task layer and above use it: no Lua below) */
  struct flosse_lalloc *lalloc; /* its allocator: pool and memory cap */
  int index;                 /* the worker (0: the main thread's) */
  struct flosse_list runq;   /* jobs with work to do: views to resume, bytes to parse */
  struct flosse_list flushq; /* output to send before the loop blocks */
  struct flosse_list freeq;  /* what closed this turn, freed after it (never inside
                                its own callbacks) */
  ev_prepare prepare;        /* runs the three queues */
  ev_idle idle;              /* keeps the loop from blocking while runq has work */
  struct flosse_inbox inbox;
  void (*after_turn)(struct flosse_loop *loop); /* the process's check once a turn is done */
  struct flosse_redis_pools *redis; /* its Redis pools (redis.c), made on first use */
  struct flosse_metrics_worker *metrics; /* its counters (metrics.h), written by it alone */
};

/* The loop the calling thread runs (NULL outside one). */
extern __thread struct flosse_loop *flosse_loop_current;

void flosse_loop_init(struct flosse_loop *l, struct ev_loop *ev);
void flosse_loop_start(struct flosse_loop *l, struct lua_State *L);
void flosse_loop_stop(struct flosse_loop *l);
void flosse_loop_free(struct flosse_loop *l);

static inline void flosse_job_init(struct flosse_job *j, flosse_job_fn fn) {
  flosse_list_init(&j->link);
  j->fn = fn;
}

/* Runs job->fn before the loop next blocks (once, however often asked). */
void flosse_loop_run_soon(struct flosse_loop *l, struct flosse_job *j);
/* Queues job->fn for the flush pass, after the runnable jobs. */
void flosse_loop_flush_soon(struct flosse_loop *l, struct flosse_job *j);
/* Calls fn(job) at the end of this turn, to free what holds it; the job
 * leaves any queue it was in. */
void flosse_loop_free_later(struct flosse_loop *l, struct flosse_job *j, flosse_job_fn fn);
/* Takes a job out of the run or flush queue. */
static inline void flosse_job_cancel(struct flosse_job *j) { flosse_list_unlink(&j->link); }

/* Runs the free queue now (shutdown: what a forced stop closed). */
void flosse_loop_free_closed(struct flosse_loop *l);

#endif
