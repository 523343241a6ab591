/* Counters for monitoring: see metrics.h. */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct flosse_metrics_worker flosse_metrics_workers[FLOSSE_METRICS_WORKERS];
__thread struct flosse_metrics_worker *flosse_metrics_self = &flosse_metrics_workers[0];
struct flosse_metrics_global flosse_metrics_global;

const double flosse_metrics_redis_bounds[FLOSSE_METRICS_REDIS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

/* Blocks 0..in_use-1 were ever given to a worker: a sum reads only those. */
static int in_use = 1;

int flosse_metrics_blocks(void) { return __atomic_load_n(&in_use, __ATOMIC_RELAXED); }

struct flosse_metrics_worker *flosse_metrics_set_worker(int index) {
  if (index < 0 || index >= FLOSSE_METRICS_WORKERS) index = 0;
  int seen = __atomic_load_n(&in_use, __ATOMIC_RELAXED);
  while (index + 1 > seen &&
         !__atomic_compare_exchange_n(&in_use, &seen, index + 1, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  flosse_metrics_self = &flosse_metrics_workers[index];
  return flosse_metrics_self;
}

void flosse_metrics_redis(double seconds) {
  if (seconds < 0) seconds = 0;
  struct flosse_metrics_worker *m = flosse_metrics_self;
  __atomic_add_fetch(&m->redis_count, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&m->redis_sum_us, (uint64_t)(seconds * 1e6), __ATOMIC_RELAXED);
  /* Cumulative buckets are made when read: one add here. */
  for (int i = 0; i < FLOSSE_METRICS_REDIS_BUCKETS; i++)
    if (seconds <= flosse_metrics_redis_bounds[i]) {
      __atomic_add_fetch(&m->redis_le[i], 1, __ATOMIC_RELAXED);
      break;
    }
}

uint64_t flosse_metrics_sum_u64(size_t offset) {
  uint64_t n = 0;
  for (int i = 0, end = flosse_metrics_blocks(); i < end; i++)
    n += __atomic_load_n((uint64_t *)((char *)&flosse_metrics_workers[i] + offset), __ATOMIC_RELAXED);
  return n;
}

/* ---- labels interned once ------------------------------------------------------ */

static pthread_mutex_t labels_lock = PTHREAD_MUTEX_INITIALIZER;
static char route_labels[FLOSSE_METRICS_ROUTES][128];
static int nroutes = 1; /* id 0: "other" */

int flosse_metrics_route_id(const char *label, size_t len) {
  if (!len || len >= sizeof route_labels[0]) return 0;
  int id = 0;
  pthread_mutex_lock(&labels_lock);
  for (int i = 1; i < nroutes; i++)
    if (strlen(route_labels[i]) == len && memcmp(route_labels[i], label, len) == 0) {
      id = i;
      goto out;
    }
  if (nroutes < FLOSSE_METRICS_ROUTES) {
    memcpy(route_labels[nroutes], label, len);
    route_labels[nroutes][len] = 0;
    id = nroutes++;
  }
out:
  pthread_mutex_unlock(&labels_lock);
  return id;
}

const char *flosse_metrics_route_label(int id) {
  pthread_mutex_lock(&labels_lock);
  const char *l = id == 0 ? "other" : id < nroutes ? route_labels[id] : NULL;
  pthread_mutex_unlock(&labels_lock);
  return l;
}

static struct {
  char name[96];
  int up;
} links[FLOSSE_METRICS_REDIS_LINKS];
static int nlinks;

int flosse_metrics_redis_link(const char *name) {
  int id = -1;
  pthread_mutex_lock(&labels_lock);
  for (int i = 0; i < nlinks; i++)
    if (strcmp(links[i].name, name) == 0) id = i;
  if (id < 0 && nlinks < FLOSSE_METRICS_REDIS_LINKS) {
    id = nlinks++;
    snprintf(links[id].name, sizeof links[id].name, "%s", name);
  }
  pthread_mutex_unlock(&labels_lock);
  return id;
}

void flosse_metrics_redis_state(int link, int up) {
  if (link >= 0 && link < FLOSSE_METRICS_REDIS_LINKS) __atomic_store_n(&links[link].up, up, __ATOMIC_RELAXED);
}

int flosse_metrics_redis_link_get(int i, char *name, size_t len, int *up) {
  pthread_mutex_lock(&labels_lock);
  int ok = i >= 0 && i < nlinks;
  if (ok) {
    snprintf(name, len, "%s", links[i].name);
    *up = __atomic_load_n(&links[i].up, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&labels_lock);
  return ok;
}
