/* Counters for monitoring (docs/metrics.md): a block per worker, written
 * only by that worker's thread with plain increments (relaxed single-writer
 * stores: no lock, no locked instruction), read by any thread and summed;
 * and a few process-wide counters that several threads add to (relaxed
 * atomic adds). No Lua, no allocation: the hot path only adds. */
#ifndef FLOSSE_METRICS_H
#define FLOSSE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define FLOSSE_METRICS_WORKERS 257   /* the main thread (0) and up to 256 workers */
#define FLOSSE_METRICS_ROUTES 128    /* route labels; more share route id 0 ("other") */
#define FLOSSE_METRICS_STATUS_MIN 100
#define FLOSSE_METRICS_STATUS_MAX 599
#define FLOSSE_METRICS_REDIS_BUCKETS 12 /* le 0.0005 .. 1 second, then +Inf */

struct flosse_metrics_worker {
  uint64_t conns_opened, conns_closed;
  uint64_t events_sent, bytes_sent, heartbeats;
  int64_t streams[FLOSSE_METRICS_ROUTES]; /* open streams by route id */
  uint64_t status[FLOSSE_METRICS_STATUS_MAX - FLOSSE_METRICS_STATUS_MIN + 1];
  /* Redis round trips: atomic adds (a link may run off its worker's thread). */
  uint64_t redis_count, redis_sum_us, redis_le[FLOSSE_METRICS_REDIS_BUCKETS];
} __attribute__((aligned(64)));

/* Indexed by worker (loop->index). The hot path reaches its worker's block
 * through its loop (loop->metrics), not a thread-local variable: in a
 * dlopen'ed module each thread-local access is a call (__tls_get_addr).
 * flosse_metrics_self is the calling thread's block for the colder paths
 * (Redis round trips); the main thread's until a worker sets its own. */
extern struct flosse_metrics_worker flosse_metrics_workers[FLOSSE_METRICS_WORKERS];
extern __thread struct flosse_metrics_worker *flosse_metrics_self;
/* Makes index the calling thread's worker; returns its block (borrowed). */
struct flosse_metrics_worker *flosse_metrics_set_worker(int index);

/* One writer per block (m): a relaxed store of the sum is a plain add. */
#define FLOSSE_METRIC_ADD(m, field, n) __atomic_store_n(&(m)->field, (m)->field + (n), __ATOMIC_RELAXED)
#define FLOSSE_METRIC_INC(m, field) FLOSSE_METRIC_ADD(m, field, 1)

/* Process-wide: touched by several threads (under the channels' lock, or
 * rarely). */
struct flosse_metrics_global {
  uint64_t publishes, deliveries, slow_dropped;
  uint64_t reloads_ok, reloads_failed;
  double start_time;                    /* unix seconds */
};
extern struct flosse_metrics_global flosse_metrics_global;
#define FLOSSE_METRIC_GLOBAL_ADD(field, n) \
  __atomic_add_fetch(&flosse_metrics_global.field, (n), __ATOMIC_RELAXED)

/* A response with this status was written (ignored outside 100..599). */
static inline void flosse_metrics_status(struct flosse_metrics_worker *m, int status) {
  if (status >= FLOSSE_METRICS_STATUS_MIN && status <= FLOSSE_METRICS_STATUS_MAX)
    FLOSSE_METRIC_INC(m, status[status - FLOSSE_METRICS_STATUS_MIN]);
}

/* A stream of route id opened (delta 1) or ended (-1). */
static inline void flosse_metrics_stream(struct flosse_metrics_worker *m, int route, int delta) {
  if (route < 0 || route >= FLOSSE_METRICS_ROUTES) route = 0;
  FLOSSE_METRIC_ADD(m, streams[route], delta);
}

/* A Redis command's round trip took seconds (histogram buckets: the bounds
 * of flosse_metrics_redis_bounds). */
extern const double flosse_metrics_redis_bounds[FLOSSE_METRICS_REDIS_BUCKETS];
void flosse_metrics_redis(double seconds);

/* The id of a route label (1.., interned once; 0 when the table is full or
 * label is empty); the label of an id (NULL: none). Under a lock: called
 * once per label, not per request. */
int flosse_metrics_route_id(const char *label, size_t len);
const char *flosse_metrics_route_label(int id);

/* Redis links: each registers a slot (by its log name) and sets it up or
 * down; -1 when the table is full. */
#define FLOSSE_METRICS_REDIS_LINKS 16
int flosse_metrics_redis_link(const char *name);
void flosse_metrics_redis_state(int link, int up);
/* Fills name/up of link i (0..); returns 0 past the last. */
int flosse_metrics_redis_link_get(int i, char *name, size_t len, int *up);

/* How many blocks were ever given to a worker (the rest are all 0). */
int flosse_metrics_blocks(void);

/* The sum over every worker of a per-worker field, read with relaxed loads. */
uint64_t flosse_metrics_sum_u64(size_t offset);

#endif
