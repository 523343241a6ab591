#include "rbuf.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

void flosse_rbuf_init(struct flosse_rbuf *r) { memset(r, 0, sizeof *r); }

void flosse_rbuf_free(struct flosse_rbuf *r) {
  free(r->p);
  flosse_rbuf_init(r);
}

int flosse_rbuf_append(struct flosse_rbuf *r, const char *p, size_t len) {
  if (len == 0) return FLOSSE_OK;
  if (r->cap - r->off - r->len < len) {
    if (r->off) { /* slide the unparsed bytes to the front first */
      memmove(r->p, r->p + r->off, r->len);
      r->off = 0;
    }
    if (r->cap - r->len < len) {
      size_t ncap = r->cap ? r->cap : 1024;
      while (ncap - r->len < len) {
        if (ncap > ((size_t)-1) / 2) return FLOSSE_ERR;
        ncap *= 2;
      }
      char *np = realloc(r->p, ncap);
      if (!np) return FLOSSE_ERR;
      r->p = np;
      r->cap = ncap;
    }
  }
  memcpy(r->p + r->off + r->len, p, len);
  r->len += len;
  return FLOSSE_OK;
}

void flosse_rbuf_consume(struct flosse_rbuf *r, size_t n) {
  r->off += n;
  r->len -= n;
  if (r->len == 0) flosse_rbuf_free(r);
}
