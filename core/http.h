/* HTTP/1.1 request reading on top of http-parser: one request at a time,
 * with limits, into one growable store. Pure (bytes in, request out). */
#ifndef FLOSSE_HTTP_H
#define FLOSSE_HTTP_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "framing.h"

#define FLOSSE_HTTP_MAX_HEADERS 100

enum flosse_http_rc { FLOSSE_HTTP_MORE, FLOSSE_HTTP_DONE, FLOSSE_HTTP_ERROR };

struct flosse_http_span { uint32_t off, len; };

struct flosse_http_header { struct flosse_http_span name, value; };

struct flosse_http_limits {
  size_t max_url;         /* longer request target: 414 */
  size_t max_header;      /* request line + header block: 431 */
  size_t max_body;        /* 413 */
};

struct flosse_http {
  http_parser parser;
  struct flosse_framing framing; /* sees every byte first: http-parser gets what it passes */
  struct flosse_http_limits limits;
  char *store;            /* url, header names and values, body */
  size_t store_len, store_cap;
  struct flosse_http_span url, body;
  struct flosse_http_header headers[FLOSSE_HTTP_MAX_HEADERS];
  int nheaders;
  int last_was_value;     /* http-parser hands header pieces in turns */
  int headers_done, done;
  int started;            /* a byte of a request has been seen */
  int expect_continue;    /* the client waits for "100 Continue" before its body */
  int status;             /* set with FLOSSE_HTTP_ERROR: 400, 413, 414, 431, 501 or 505 */
  const char *error;      /* a short reason for the log */
};

void flosse_http_init(struct flosse_http *h, const struct flosse_http_limits *lim);
/* Frees the store. A connection reads each request with a fresh reader
 * (http-parser keeps no state between messages that we need). */
void flosse_http_free(struct flosse_http *h);

/* Feeds bytes. *used is set to how many were consumed: with
 * FLOSSE_HTTP_DONE the rest belong to the next (pipelined) request. */
enum flosse_http_rc flosse_http_feed(struct flosse_http *h, const char *p, size_t len,
                                     size_t *used);

static inline const char *flosse_http_str(const struct flosse_http *h,
                                          struct flosse_http_span s) {
  return h->store + s.off;
}

/* An HTTP/2 request, which nghttp2 has decoded and checked: its fields
 * one by one (":method", ":path", ":authority" as host; names lowercase),
 * then its body, then done. The limits are the same as HTTP/1.1's; past
 * one, each returns -1 with status (413, 414, 431, 501) and error set, and
 * keeps nothing more. */
int flosse_http_h2_field(struct flosse_http *h, const char *name, size_t nlen,
                         const char *value, size_t vlen);
int flosse_http_h2_body(struct flosse_http *h, const char *p, size_t len);
void flosse_http_h2_done(struct flosse_http *h);

/* 1 if the connection may carry another request after this one. */
int flosse_http_keep_alive(const struct flosse_http *h);

#endif
