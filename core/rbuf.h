/* A connection's read buffer: the bytes received and not yet parsed, in
 * arrival order. Pure (no fds): conn.c keeps here what a read brought past
 * the request being answered, the HTTP reader parses from its front, and
 * the fuzz harness drives it the same way.
 *
 * Pipelined requests are parsed from here, oldest bytes first, whatever the
 * read sizes: newer socket bytes are only ever appended behind them. */
#ifndef FLOSSE_RBUF_H
#define FLOSSE_RBUF_H

#include <stddef.h>

struct flosse_rbuf {
  char *p;
  size_t off, len, cap; /* the unparsed bytes are p[off .. off+len) */
};

void flosse_rbuf_init(struct flosse_rbuf *r);
void flosse_rbuf_free(struct flosse_rbuf *r);

/* Copies len bytes to the tail. Returns FLOSSE_OK, or FLOSSE_ERR when out
 * of memory (nothing appended). The caller bounds the length. */
int flosse_rbuf_append(struct flosse_rbuf *r, const char *p, size_t len);

static inline const char *flosse_rbuf_data(const struct flosse_rbuf *r) { return r->p + r->off; }

/* Drops n parsed bytes (n <= r->len) from the front. An emptied buffer
 * gives its memory back: an idle connection keeps none. */
void flosse_rbuf_consume(struct flosse_rbuf *r, size_t n);

#endif
