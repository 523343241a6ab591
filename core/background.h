/* Background tasks: tasks with no client, owned by the worker alone.
 * spawn runs a function from the next loop turn, after once later, every
 * at a fixed rate (first after one interval; a tick that comes while the
 * previous run is still going is skipped). A run that raises is logged with
 * an error id; an every task goes on with its next tick. */
#ifndef FLOSSE_BACKGROUND_H
#define FLOSSE_BACKGROUND_H

#include <ev.h>
#include <lua.h>

#include "list.h"
#include "task.h"

struct flosse_background {
  struct flosse_tasks *tasks;
  struct flosse_list all;    /* struct flosse_bgtask.link */
  long count;
};

struct flosse_bgtask;
/* Told when a background task is over for good (the handle lets go of it). */
typedef void (*flosse_bgtask_ended)(struct flosse_bgtask *b, void *data);

struct flosse_bgtask {
  struct flosse_task task;   /* the current run's (task.T is NULL between runs) */
  struct flosse_background *bg;
  struct flosse_list link;
  ev_timer tick;
  double interval;           /* 0: runs once */
  int fn_ref;                /* the function each run calls */
  int generation;            /* the app generation that started it (0: none) */
  unsigned long runs, skipped;
  unsigned cancelled : 1, done : 1;
  flosse_bgtask_ended ended;
  void *ended_data;
  struct flosse_job free;
  char name[96];
};

void flosse_background_init(struct flosse_background *bg, struct flosse_tasks *tasks);

/* Starts a background task running the function on top of L (popped):
 * first after delay seconds (0: the next loop turn), then every interval
 * seconds (0: once). Returns it, or NULL (no memory; the function popped). */
struct flosse_bgtask *flosse_background_start(struct flosse_background *bg, lua_State *L, double delay,
                                              double interval, int generation, const char *name);

/* Cancels it: no more runs; a run in progress is closed (its to-be-closed
 * variables run), at once or, when it is the code running now, as soon as
 * it yields or returns. Safe twice. */
void flosse_background_cancel(struct flosse_bgtask *b);
/* Cancels every task of a generation (a reload), or every one (generation < 0:
 * shutdown). Returns how many. */
int flosse_background_cancel_generation(struct flosse_background *bg, int generation);

/* The generation of the background task whose thread T is (0: none). */
int flosse_background_generation_of(lua_State *T);

#endif
