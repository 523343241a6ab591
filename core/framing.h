/* A request's framing and size limits checked byte by byte, as RFC 9112
 * says, before http-parser reads the bytes. Debian builds http-parser
 * lenient (HTTP_PARSER_STRICT 0), which lets through what a proxy in front
 * may read differently: a bare CR taken as a line end, any byte for the
 * "TTP/" of "HTTP/1.1", two arbitrary bytes after a chunk's data instead
 * of its CRLF, bytes 0x80-0xFF read as the hex digit 0 in a chunk size, a
 * control byte first in a header value, folded header lines. And limits
 * checked when http-parser hands over a piece would depend on how reads cut
 * the request. Here every verdict falls on one byte of the request, so the
 * reader hands http-parser only the bytes before it and the answer is the
 * same whatever the read sizes. Pure: bytes in, a verdict out. */
#ifndef FLOSSE_FRAMING_H
#define FLOSSE_FRAMING_H

#include <stddef.h>
#include <stdint.h>

struct flosse_framing {
  uint8_t state;
  uint8_t trailers;      /* in the trailer section of a chunked body */
  uint8_t nver;
  char ver[8];           /* the request line's version: "HTTP/x.y" */
  size_t max_url, max_header, max_body;
  size_t target, head;   /* bytes of request target, of head (or trailers) so far */
  uint64_t body;         /* chunk data bytes so far */
  uint64_t remaining;    /* of the chunk being read */
  int status;            /* with error: 400, 413, 414 or 431 */
  const char *error;     /* set: the byte after the passed ones is refused */
};

void flosse_framing_init(struct flosse_framing *f, size_t max_url, size_t max_header, size_t max_body);

/* Checks the next bytes of the request, in order. Returns how many pass:
 * all len of them; or fewer, stopping after the line that ends the head
 * (flosse_framing_at_body is then 1: call flosse_framing_body), or after
 * the end of a chunked message (what follows is the next request's), or
 * at the first refused byte (then f->error and f->status say why). */
size_t flosse_framing_scan(struct flosse_framing *f, const char *p, size_t len);

/* 1 once the head has ended and the body's framing is not known yet. */
int flosse_framing_at_body(const struct flosse_framing *f);

/* Says how the body is framed: chunked (checked chunk by chunk, its data
 * counted against max_body), or not (a Content-Length body, which the
 * reader bounds from the header, or none: nothing more to check). */
void flosse_framing_body(struct flosse_framing *f, int chunked);

#endif
