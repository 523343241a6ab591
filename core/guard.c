#include "guard.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h" /* FLOSSE_OK */
#include "log.h"

/* The revocations, newest last, for the workers to apply at their next
 * turn: a ring, since each worker applies what it has not seen as soon as
 * its inbox wakes it; one that falls a whole ring behind (a flood of
 * revocations in one turn) applies the newest RING and logs it. */
#define RING 256

struct revocation {
  uint64_t gen;
  size_t len;
  char user[FLOSSE_CLIENT_KEY_MAX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct revocation ring[RING];
static uint64_t last_gen;                        /* under lock */
static struct flosse_list workers = {&workers, &workers}; /* struct flosse_guards, under lock */

void flosse_guards_init(struct flosse_guards *gs, struct flosse_loop *loop, flosse_guard_end_fn end) {
  gs->loop = loop;
  gs->end = end;
  flosse_list_init(&gs->all);
  flosse_list_init(&gs->node);
  gs->seen = 0;
  gs->started = 0;
}

void flosse_guards_start(struct flosse_guards *gs) {
  pthread_mutex_lock(&lock);
  gs->seen = last_gen; /* what came before this worker ran has no stream here */
  flosse_list_push(&workers, &gs->node);
  gs->started = 1;
  pthread_mutex_unlock(&lock);
}

void flosse_guards_stop(struct flosse_guards *gs) {
  if (!gs->started) return;
  pthread_mutex_lock(&lock);
  flosse_list_unlink(&gs->node);
  gs->started = 0;
  pthread_mutex_unlock(&lock);
  /* No post reaches it now; drop those already queued. */
  flosse_inbox_forget(&gs->loop->inbox, gs);
}

static void on_expiry(struct ev_loop *ev, ev_timer *w, int revents) {
  (void)ev, (void)revents;
  struct flosse_guard *g = flosse_container_of(w, struct flosse_guard, expiry);
  g->ctx->end(g, "flosse-expired");
}

struct flosse_guard *flosse_guard_new(struct flosse_guards *gs, void *owner,
                                      const struct flosse_guard_opts *o, enum flosse_admit *rc) {
  size_t iplen = o->ip ? o->iplen : 0, userlen = o->user ? o->userlen : 0;
  if (iplen > FLOSSE_CLIENT_KEY_MAX || userlen > FLOSSE_CLIENT_KEY_MAX) {
    *rc = FLOSSE_ADMIT_NOMEM;
    return NULL;
  }
  struct flosse_guard *g = malloc(sizeof *g + iplen + userlen);
  if (!g) {
    *rc = FLOSSE_ADMIT_NOMEM;
    return NULL;
  }
  g->ctx = gs;
  g->owner = owner;
  flosse_list_init(&g->node);
  ev_timer_init(&g->expiry, on_expiry, 0., 0.);
  g->iplen = (uint16_t)iplen;
  g->userlen = (uint16_t)userlen;
  if (iplen) memcpy(g->keys, o->ip, iplen); /* o->ip/user may be NULL when empty */
  if (userlen) memcpy(g->keys + iplen, o->user, userlen);
  double now = ev_time();
  if (iplen || userlen) {
    *rc = flosse_clients_admit(iplen ? g->keys : NULL, iplen, o->max_per_ip,
                               userlen ? g->keys + iplen : NULL, userlen, o->max_per_user, now);
    if (*rc != FLOSSE_ADMIT_OK) {
      free(g);
      return NULL;
    }
  }
  *rc = FLOSSE_ADMIT_OK;
  pthread_mutex_lock(&lock);
  g->since = last_gen;
  pthread_mutex_unlock(&lock);
  if (userlen) flosse_list_push(&gs->all, &g->node);
  if (o->expires_at > 0) {
    /* libev counts a timer from the loop's time, which lags the clock by
     * this turn's work: measured from it, the stream never ends early. */
    double in = o->expires_at - ev_now(gs->loop->ev);
    ev_timer_set(&g->expiry, in > 0 ? in : 0., 0.);
    ev_timer_start(gs->loop->ev, &g->expiry);
  }
  return g;
}

void flosse_guard_free(struct flosse_guard *g) {
  if (!g) return;
  ev_timer_stop(g->ctx->loop->ev, &g->expiry);
  flosse_list_unlink(&g->node);
  if (g->iplen || g->userlen)
    flosse_clients_leave(g->iplen ? g->keys : NULL, g->iplen, g->userlen ? g->keys + g->iplen : NULL,
                         g->userlen, ev_time());
  free(g);
}

/* Ends this worker's streams of the user that began before revocation gen. */
static void apply(struct flosse_guards *gs, const char *user, size_t len, uint64_t gen) {
  struct flosse_list doomed, *n;
  flosse_list_init(&doomed);
  for (n = gs->all.next; n != &gs->all;) {
    struct flosse_guard *g = flosse_container_of(n, struct flosse_guard, node);
    n = n->next;
    if (g->since < gen && g->userlen == len && memcmp(g->keys + g->iplen, user, len) == 0) {
      flosse_list_unlink(&g->node);
      flosse_list_push(&doomed, &g->node);
    }
  }
  /* Each end frees its own guard only, so the list is walked as it shrinks. */
  while (!flosse_list_empty(&doomed)) {
    struct flosse_guard *g = flosse_container_of(doomed.next, struct flosse_guard, node);
    flosse_list_unlink(&g->node);
    gs->end(g, "flosse-revoked");
  }
}

static void deliver(void *target, int arg) {
  (void)arg;
  struct flosse_guards *gs = target;
  struct revocation r;
  for (;;) {
    pthread_mutex_lock(&lock);
    if (gs->seen >= last_gen) {
      pthread_mutex_unlock(&lock);
      return;
    }
    if (last_gen - gs->seen > RING) {
      flosse_log(FLOSSE_LOG_WARN, "revocations: %llu came in one turn; the oldest are not applied",
                 (unsigned long long)(last_gen - gs->seen));
      gs->seen = last_gen - RING;
    }
    r = ring[++gs->seen % RING];
    pthread_mutex_unlock(&lock);
    apply(gs, r.user, r.len, r.gen);
  }
}

int flosse_guards_revoke(const char *user, size_t len, double seconds) {
  if (len == 0 || len > FLOSSE_CLIENT_KEY_MAX) return FLOSSE_ERR;
  double now = ev_time();
  if (seconds > 0 && flosse_clients_refuse_until(user, len, now + seconds, now) != FLOSSE_OK)
    return FLOSSE_ERR;
  pthread_mutex_lock(&lock);
  struct revocation *r = &ring[++last_gen % RING];
  r->gen = last_gen;
  r->len = len;
  memcpy(r->user, user, len);
  for (struct flosse_list *n = workers.next; n != &workers; n = n->next) {
    struct flosse_guards *gs = flosse_container_of(n, struct flosse_guards, node);
    if (flosse_inbox_post(&gs->loop->inbox, deliver, gs, 0) != FLOSSE_OK)
      flosse_log(FLOSSE_LOG_WARN, "revocations: no memory to tell worker %d", gs->loop->index);
  }
  pthread_mutex_unlock(&lock);
  return FLOSSE_OK;
}
