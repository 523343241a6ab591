#include "clients.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h" /* FLOSSE_OK */

struct entry {
  struct entry *next;
  long count;          /* streams it holds */
  double until;        /* a user refused until then (0: not refused) */
  uint32_t hash;
  size_t len;
  char key[];          /* kind byte ('i' or 'u'), then the address or id */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry **buckets;
static size_t nbuckets, nentries;

/* FNV-1a over the kind and the key. */
static uint32_t hash_of(char kind, const char *k, size_t len) {
  uint32_t h = 2166136261u;
  h = (h ^ (unsigned char)kind) * 16777619u;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
  return h;
}

/* The entry's slot (NULL at the end of its chain when there is none). */
static struct entry **slot(char kind, const char *k, size_t len, uint32_t h) {
  struct entry **p = &buckets[h & (nbuckets - 1)];
  for (; *p; p = &(*p)->next)
    if ((*p)->hash == h && (*p)->len == len + 1 && (*p)->key[0] == kind &&
        memcmp((*p)->key + 1, k, len) == 0)
      return p;
  return p;
}

/* Doubles the table once it holds two entries a bucket: chains stay short
 * however many clients come. */
static void grow(void) {
  size_t n = nbuckets ? nbuckets * 2 : 256;
  struct entry **b = calloc(n, sizeof *b);
  if (!b) return; /* longer chains, still correct */
  for (size_t i = 0; i < nbuckets; i++) {
    struct entry *e = buckets[i], *next;
    for (; e; e = next) {
      next = e->next;
      e->next = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
    }
  }
  free(buckets);
  buckets = b;
  nbuckets = n;
}

static struct entry *find_or_add(char kind, const char *k, size_t len) {
  if (nentries >= nbuckets * 2) grow();
  if (!nbuckets) return NULL;
  uint32_t h = hash_of(kind, k, len);
  struct entry **p = slot(kind, k, len, h);
  if (*p) return *p;
  struct entry *e = malloc(sizeof *e + len + 1);
  if (!e) return NULL;
  e->next = NULL;
  e->count = 0;
  e->until = 0;
  e->hash = h;
  e->len = len + 1;
  e->key[0] = kind;
  memcpy(e->key + 1, k, len);
  *p = e;
  nentries++;
  return e;
}

static struct entry *find(char kind, const char *k, size_t len) {
  if (!nbuckets) return NULL;
  return *slot(kind, k, len, hash_of(kind, k, len));
}

/* Frees the entry when it no longer counts or refuses anything. */
static void drop_if_idle(struct entry *e, double now) {
  if (e->count > 0 || e->until > now) return;
  struct entry **p = slot(e->key[0], e->key + 1, e->len - 1, e->hash);
  if (*p != e) return;
  *p = e->next;
  free(e);
  nentries--;
}

enum flosse_admit flosse_clients_admit(const char *ip, size_t iplen, long max_per_ip,
                                       const char *user, size_t userlen, long max_per_user,
                                       double now) {
  enum flosse_admit rc = FLOSSE_ADMIT_OK;
  pthread_mutex_lock(&lock);
  struct entry *u = user ? find_or_add('u', user, userlen) : NULL;
  struct entry *i = ip ? find_or_add('i', ip, iplen) : NULL;
  if ((user && !u) || (ip && !i)) rc = FLOSSE_ADMIT_NOMEM;
  else if (u && u->until > now) rc = FLOSSE_ADMIT_REVOKED;
  else if (i && max_per_ip > 0 && i->count >= max_per_ip) rc = FLOSSE_ADMIT_OVER_IP;
  else if (u && max_per_user > 0 && u->count >= max_per_user) rc = FLOSSE_ADMIT_OVER_USER;
  if (rc == FLOSSE_ADMIT_OK) {
    if (u) u->count++;
    if (i) i->count++;
  } else {
    if (u) drop_if_idle(u, now);
    if (i) drop_if_idle(i, now);
  }
  pthread_mutex_unlock(&lock);
  return rc;
}

void flosse_clients_leave(const char *ip, size_t iplen, const char *user, size_t userlen,
                          double now) {
  pthread_mutex_lock(&lock);
  struct entry *e;
  if (ip && (e = find('i', ip, iplen))) {
    e->count--;
    drop_if_idle(e, now);
  }
  if (user && (e = find('u', user, userlen))) {
    e->count--;
    drop_if_idle(e, now);
  }
  pthread_mutex_unlock(&lock);
}

/* Frees every entry that neither counts nor refuses any more: refusals of
 * users who never came back. Run when a refusal is added, so the table
 * holds at most the open streams' keys and the refusals still running. */
static void sweep(double now) {
  for (size_t b = 0; b < nbuckets; b++) {
    struct entry **p = &buckets[b];
    while (*p) {
      struct entry *e = *p;
      if (e->count <= 0 && e->until <= now) {
        *p = e->next;
        free(e);
        nentries--;
      } else {
        p = &e->next;
      }
    }
  }
}

int flosse_clients_refuse_until(const char *user, size_t len, double until, double now) {
  pthread_mutex_lock(&lock);
  sweep(now);
  struct entry *e = find_or_add('u', user, len);
  if (e && until > e->until) e->until = until;
  pthread_mutex_unlock(&lock);
  return e ? FLOSSE_OK : FLOSSE_ERR;
}

long flosse_clients_count(char kind, const char *key, size_t len) {
  pthread_mutex_lock(&lock);
  struct entry *e = find(kind, key, len);
  long n = e ? e->count : 0;
  pthread_mutex_unlock(&lock);
  return n;
}
