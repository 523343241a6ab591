/* Output buffers: a queue of byte segments written with writev.
 *
 * A segment is reference counted so that, later, one framed channel message
 * can sit in many connections' queues without a copy. Small appends go into
 * the tail segment while it is privately owned, which is what coalesces many
 * small events into one writev. */
#ifndef FLOSSE_BUF_H
#define FLOSSE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define FLOSSE_OK 0
#define FLOSSE_ERR -1

#define FLOSSE_SEG_MIN 4096

struct flosse_seg {
  uint32_t refs;
  uint32_t len; /* bytes used */
  uint32_t cap; /* bytes allocated after the header */
  char data[];
};

struct flosse_bufent {
  struct flosse_seg *seg;
  uint32_t off; /* first byte of seg not yet consumed */
  uint32_t end; /* one past the last byte this entry covers */
};

struct flosse_buf {
  struct flosse_bufent *ents;
  uint32_t head, n, cap; /* live entries are ents[head .. head+n) */
  size_t len;            /* bytes queued */
  uint64_t total;        /* bytes ever queued (for the access log) */
};

/* Frees the calling thread's cache of segments and entry arrays (a thread
 * calls it before it ends). */
void flosse_buf_thread_done(void);

/* Allocates a segment with room for cap bytes and one reference.
 * Returns NULL when out of memory. */
struct flosse_seg *flosse_seg_new(size_t cap);
void flosse_seg_retain(struct flosse_seg *seg);
void flosse_seg_release(struct flosse_seg *seg);

void flosse_buf_init(struct flosse_buf *b);
/* Releases every segment and the entry array; b is empty and reusable. */
void flosse_buf_free(struct flosse_buf *b);

/* Copies len bytes to the tail. Returns FLOSSE_OK or FLOSSE_ERR (no memory,
 * in which case nothing was appended). */
int flosse_buf_append(struct flosse_buf *b, const void *p, size_t len);
int flosse_buf_printf(struct flosse_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queues a shared segment (borrowed: takes a reference of its own). */
int flosse_buf_append_seg(struct flosse_buf *b, struct flosse_seg *seg);

/* Queues len bytes of a shared segment from off (borrowed, as above). */
int flosse_buf_append_range(struct flosse_buf *b, struct flosse_seg *seg, uint32_t off, uint32_t len);

/* Fills at most max iovecs with the queued bytes; returns how many. */
int flosse_buf_iov(const struct flosse_buf *b, struct iovec *iov, int max);

/* Copies the first bytes queued, at most max of them, to dst (they stay
 * queued); returns how many. */
size_t flosse_buf_peek(const struct flosse_buf *b, void *dst, size_t max);

/* Drops n bytes from the front (n <= b->len). */
void flosse_buf_consume(struct flosse_buf *b, size_t n);

#endif
