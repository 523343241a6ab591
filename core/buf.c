#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every burst of events allocates a FLOSSE_SEG_MIN segment and a small
 * entry array and frees both once written; each thread keeps a few of each
 * for the next burst. Off under AddressSanitizer, which must see every
 * free. */
#if defined(__SANITIZE_ADDRESS__)
#define CACHE_MAX 0
#else
#define CACHE_MAX 64
#endif
#define SMALL_ENTS 4

static __thread void *seg_cache[CACHE_MAX + 1], *ents_cache[CACHE_MAX + 1];
static __thread int nseg_cache, nents_cache;

void flosse_buf_thread_done(void) {
  while (nseg_cache) free(seg_cache[--nseg_cache]);
  while (nents_cache) free(ents_cache[--nents_cache]);
}

struct flosse_seg *flosse_seg_new(size_t cap) {
  if (cap > UINT32_MAX - sizeof(struct flosse_seg)) return NULL;
  struct flosse_seg *seg;
  if (cap == FLOSSE_SEG_MIN && nseg_cache) {
    seg = seg_cache[--nseg_cache];
    seg->refs = 1;
    seg->len = 0;
    return seg;
  }
  seg = malloc(sizeof *seg + cap);
  if (!seg) return NULL;
  seg->refs = 1;
  seg->len = 0;
  seg->cap = (uint32_t)cap;
  return seg;
}

/* Segments of channel messages are shared by workers (threads), so every
 * reference count change is atomic. */
void flosse_seg_retain(struct flosse_seg *seg) { __atomic_add_fetch(&seg->refs, 1, __ATOMIC_RELAXED); }

void flosse_seg_release(struct flosse_seg *seg) {
  if (seg && __atomic_sub_fetch(&seg->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    if (seg->cap == FLOSSE_SEG_MIN && nseg_cache < CACHE_MAX) seg_cache[nseg_cache++] = seg;
    else free(seg);
  }
}

static void ents_free(struct flosse_bufent *e, uint32_t cap) {
  if (e && cap == SMALL_ENTS && nents_cache < CACHE_MAX) ents_cache[nents_cache++] = e;
  else free(e);
}

void flosse_buf_init(struct flosse_buf *b) { memset(b, 0, sizeof *b); }

void flosse_buf_free(struct flosse_buf *b) {
  for (uint32_t i = 0; i < b->n; i++) flosse_seg_release(b->ents[b->head + i].seg);
  ents_free(b->ents, b->cap);
  flosse_buf_init(b);
}

/* Makes room for one more entry at the tail, sliding live entries to the
 * front first so the array does not creep forward forever. */
static int buf_reserve_ent(struct flosse_buf *b) {
  if (b->head + b->n < b->cap) return FLOSSE_OK;
  if (b->head > 0) {
    memmove(b->ents, b->ents + b->head, b->n * sizeof *b->ents);
    b->head = 0;
    if (b->n < b->cap) return FLOSSE_OK;
  }
  uint32_t ncap = b->cap ? b->cap * 2 : SMALL_ENTS;
  struct flosse_bufent *e;
  if (!b->cap && nents_cache) {
    e = ents_cache[--nents_cache];
  } else if (b->cap == SMALL_ENTS) {
    e = malloc(ncap * sizeof *e); /* cached arrays are exactly SMALL_ENTS long */
    if (e) {
      memcpy(e, b->ents, b->cap * sizeof *e);
      ents_free(b->ents, b->cap);
    }
  } else {
    e = realloc(b->ents, ncap * sizeof *e);
  }
  if (!e) return FLOSSE_ERR;
  b->ents = e;
  b->cap = ncap;
  return FLOSSE_OK;
}

static struct flosse_bufent *buf_tail(struct flosse_buf *b) {
  return b->n ? &b->ents[b->head + b->n - 1] : NULL;
}

int flosse_buf_append(struct flosse_buf *b, const void *p, size_t len) {
  if (len == 0) return FLOSSE_OK;
  struct flosse_bufent *t = buf_tail(b);
  /* The tail segment can grow in place only if nobody else sees it. */
  if (t && __atomic_load_n(&t->seg->refs, __ATOMIC_ACQUIRE) == 1 && t->end == t->seg->len &&
      t->seg->cap - t->seg->len >= len) {
    memcpy(t->seg->data + t->seg->len, p, len);
    t->seg->len += (uint32_t)len;
    t->end += (uint32_t)len;
    b->len += len;
    b->total += len;
    return FLOSSE_OK;
  }
  if (buf_reserve_ent(b) != FLOSSE_OK) return FLOSSE_ERR;
  struct flosse_seg *seg = flosse_seg_new(len > FLOSSE_SEG_MIN ? len : FLOSSE_SEG_MIN);
  if (!seg) return FLOSSE_ERR;
  memcpy(seg->data, p, len);
  seg->len = (uint32_t)len;
  b->ents[b->head + b->n++] = (struct flosse_bufent){seg, 0, (uint32_t)len};
  b->len += len;
  b->total += len;
  return FLOSSE_OK;
}

int flosse_buf_printf(struct flosse_buf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return FLOSSE_ERR;
  if ((size_t)n < sizeof small) return flosse_buf_append(b, small, (size_t)n);
  char *big = malloc((size_t)n + 1);
  if (!big) return FLOSSE_ERR;
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  int rc = flosse_buf_append(b, big, (size_t)n);
  free(big);
  return rc;
}

int flosse_buf_append_seg(struct flosse_buf *b, struct flosse_seg *seg) {
  if (seg->len == 0) return FLOSSE_OK;
  if (buf_reserve_ent(b) != FLOSSE_OK) return FLOSSE_ERR;
  flosse_seg_retain(seg);
  b->ents[b->head + b->n++] = (struct flosse_bufent){seg, 0, seg->len};
  b->len += seg->len;
  b->total += seg->len;
  return FLOSSE_OK;
}

int flosse_buf_append_range(struct flosse_buf *b, struct flosse_seg *seg, uint32_t off, uint32_t len) {
  if (len == 0) return FLOSSE_OK;
  if (buf_reserve_ent(b) != FLOSSE_OK) return FLOSSE_ERR;
  flosse_seg_retain(seg);
  b->ents[b->head + b->n++] = (struct flosse_bufent){seg, off, off + len};
  b->len += len;
  b->total += len;
  return FLOSSE_OK;
}

int flosse_buf_iov(const struct flosse_buf *b, struct iovec *iov, int max) {
  int k = 0;
  for (uint32_t i = 0; i < b->n && k < max; i++, k++) {
    const struct flosse_bufent *e = &b->ents[b->head + i];
    iov[k].iov_base = e->seg->data + e->off;
    iov[k].iov_len = e->end - e->off;
  }
  return k;
}

size_t flosse_buf_peek(const struct flosse_buf *b, void *dst, size_t max) {
  size_t at = 0;
  for (uint32_t i = 0; i < b->n && at < max; i++) {
    const struct flosse_bufent *e = &b->ents[b->head + i];
    size_t k = e->end - e->off;
    if (k > max - at) k = max - at;
    memcpy((char *)dst + at, e->seg->data + e->off, k);
    at += k;
  }
  return at;
}

void flosse_buf_consume(struct flosse_buf *b, size_t n) {
  b->len -= n;
  while (n > 0) {
    struct flosse_bufent *e = &b->ents[b->head];
    size_t avail = e->end - e->off;
    if (n < avail) {
      e->off += (uint32_t)n;
      return;
    }
    n -= avail;
    flosse_seg_release(e->seg);
    b->head++;
    b->n--;
  }
  if (b->n == 0) {
    /* An idle connection keeps no segments and no entry array. */
    ents_free(b->ents, b->cap);
    b->ents = NULL;
    b->head = b->cap = 0;
  }
}
