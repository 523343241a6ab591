#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <limits.h>

#include "buf.h"

static int fail(struct flosse_http *h, int status, const char *why) {
  h->status = status;
  h->error = why;
  return -1;
}

/* The limits (414, 431, 413) are checked byte by byte in framing.c, which
 * http-parser's input passes first; this bound only keeps the store from
 * growing past them whatever happens. */
static int store_append(struct flosse_http *h, const char *p, size_t len, int lower) {
  if (h->store_len + len > h->limits.max_header + h->limits.max_body)
    return fail(h, 431, "request too large");
  if (h->store_len + len > h->store_cap) {
    size_t ncap = h->store_cap ? h->store_cap : 512;
    while (ncap < h->store_len + len) ncap *= 2;
    char *s = realloc(h->store, ncap);
    if (!s) return fail(h, 503, "out of memory");
    h->store = s;
    h->store_cap = ncap;
  }
  char *dst = h->store + h->store_len;
  if (lower) {
    for (size_t i = 0; i < len; i++) {
      char c = p[i];
      dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
  } else {
    memcpy(dst, p, len);
  }
  h->store_len += len;
  return 0;
}

static struct flosse_http *of(http_parser *p) { return p->data; }

static int on_message_begin(http_parser *p) {
  of(p)->started = 1;
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  struct flosse_http *h = of(p);
  if (h->url.len == 0) h->url.off = (uint32_t)h->store_len;
  h->url.len += (uint32_t)len;
  return store_append(h, at, len, 0);
}

/* Optional whitespace after a value is not part of it (RFC 9112 5.1);
 * http-parser already skips it before. */
static void trim_value(struct flosse_http *h) {
  if (h->nheaders == 0) return;
  struct flosse_http_span *v = &h->headers[h->nheaders - 1].value;
  while (v->len && (h->store[v->off + v->len - 1] == ' ' || h->store[v->off + v->len - 1] == '\t'))
    v->len--;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  struct flosse_http *h = of(p);
  /* Trailers after a chunked body are not headers: nothing may come in
   * after the permission checks could see the head (framing.c bounds them). */
  if (h->headers_done) return 0;
  if (h->last_was_value || h->nheaders == 0) {
    trim_value(h);
    if (h->nheaders == FLOSSE_HTTP_MAX_HEADERS) return fail(h, 431, "too many headers");
    struct flosse_http_header *hd = &h->headers[h->nheaders++];
    hd->name.off = (uint32_t)h->store_len;
    hd->name.len = 0;
    hd->value.off = 0;
    hd->value.len = 0;
    h->last_was_value = 0;
  }
  h->headers[h->nheaders - 1].name.len += (uint32_t)len;
  return store_append(h, at, len, 1);
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  struct flosse_http *h = of(p);
  if (h->headers_done) return 0; /* a trailer */
  struct flosse_http_header *hd = &h->headers[h->nheaders - 1];
  if (!h->last_was_value) {
    hd->value.off = (uint32_t)h->store_len;
    h->last_was_value = 1;
  }
  hd->value.len += (uint32_t)len;
  return store_append(h, at, len, 0);
}

static int is_header(const struct flosse_http *h, const struct flosse_http_header *hd,
                     const char *name, size_t len) {
  return hd->name.len == len && memcmp(h->store + hd->name.off, name, len) == 0;
}

/* Transfer-Encoding: only "chunked", once, is understood (RFC 9112 6.1);
 * anything else would be a body taken raw, or a smuggling vector. */
static int check_transfer_encoding(struct flosse_http *h) {
  int n = 0, chunked_alone = 1;
  for (int i = 0; i < h->nheaders; i++) {
    const struct flosse_http_header *hd = &h->headers[i];
    if (!is_header(h, hd, "transfer-encoding", 17)) continue;
    n++;
    if (hd->value.len != 7 || strncasecmp(h->store + hd->value.off, "chunked", 7) != 0)
      chunked_alone = 0;
  }
  if (!n) return 0;
  if (h->parser.http_minor == 0) return fail(h, 400, "Transfer-Encoding in an HTTP/1.0 request");
  if (n > 1 || !chunked_alone) return fail(h, 501, "a Transfer-Encoding other than chunked");
  return 0;
}

static int on_headers_complete(http_parser *p) {
  struct flosse_http *h = of(p);
  h->headers_done = 1;
  trim_value(h);
  if (p->http_major != 1 || p->http_minor > 1) return fail(h, 505, "an HTTP version other than 1.0 and 1.1");
  if (check_transfer_encoding(h)) return -1;
  /* http-parser ends a CONNECT at its head: a body would be read as the
   * next request. CONNECT has no content (RFC 9110 9.3.6). */
  int has_length = p->content_length != 0 && p->content_length != ULLONG_MAX;
  if (p->method == HTTP_CONNECT && ((p->flags & F_CHUNKED) || has_length))
    return fail(h, 400, "a CONNECT request with a body");
  /* A declared body over the limit is refused before a byte of it is read. */
  if (p->content_length != ULLONG_MAX && p->content_length > h->limits.max_body)
    return fail(h, 413, "request body too large");
  for (int i = 0; i < h->nheaders; i++) {
    struct flosse_http_header *hd = &h->headers[i];
    if (is_header(h, hd, "expect", 6) &&
        hd->value.len == 12 && strncasecmp(h->store + hd->value.off, "100-continue", 12) == 0)
      h->expect_continue = 1;
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  struct flosse_http *h = of(p);
  if (h->body.len == 0) h->body.off = (uint32_t)h->store_len;
  h->body.len += (uint32_t)len;
  return store_append(h, at, len, 0);
}

static int on_message_complete(http_parser *p) {
  of(p)->done = 1;
  /* One request at a time: what follows waits until this one is answered. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void flosse_http_init(struct flosse_http *h, const struct flosse_http_limits *lim) {
  memset(h, 0, sizeof *h);
  h->limits = *lim;
  flosse_framing_init(&h->framing, lim->max_url, lim->max_header, lim->max_body);
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = h;
}

void flosse_http_free(struct flosse_http *h) {
  free(h->store);
  h->store = NULL;
  h->store_len = h->store_cap = 0;
}

enum flosse_http_rc flosse_http_feed(struct flosse_http *h, const char *p, size_t len,
                                     size_t *used) {
  size_t off = 0;
  *used = 0;
  for (;;) {
    /* http-parser reads only what the framing check passed, so the first
     * refused byte is the same whatever the read sizes. */
    size_t ok = flosse_framing_scan(&h->framing, p + off, len - off);
    size_t n = ok ? http_parser_execute(&h->parser, &settings, p + off, ok) : 0; /* 0 would mean EOF */
    off += n;
    *used = off;
    if (h->status) return FLOSSE_HTTP_ERROR;
    if (h->done) return FLOSSE_HTTP_DONE;
    enum http_errno err = HTTP_PARSER_ERRNO(&h->parser);
    if (err == HPE_HEADER_OVERFLOW) {
      fail(h, 431, "request header block too large");
      return FLOSSE_HTTP_ERROR;
    }
    if (err == HPE_INVALID_TRANSFER_ENCODING) { /* a coding without chunked last */
      fail(h, 501, "a Transfer-Encoding other than chunked");
      return FLOSSE_HTTP_ERROR;
    }
    if (err != HPE_OK) {
      fail(h, 400, http_errno_description(err));
      return FLOSSE_HTTP_ERROR;
    }
    if (h->framing.error) {
      fail(h, h->framing.status, h->framing.error);
      return FLOSSE_HTTP_ERROR;
    }
    if (n < ok || off == len) return FLOSSE_HTTP_MORE;
    if (flosse_framing_at_body(&h->framing)) {
      flosse_framing_body(&h->framing, (h->parser.flags & F_CHUNKED) != 0);
      continue;
    }
    /* The framing ended a chunked message that http-parser did not. */
    fail(h, 400, "malformed chunked body");
    return FLOSSE_HTTP_ERROR;
  }
}

int flosse_http_keep_alive(const struct flosse_http *h) {
  return !h->parser.upgrade && http_should_keep_alive(&h->parser);
}

/* ---- a request that came as HTTP/2 fields ---------------------------------- */

/* The header block's bytes (target, names, values) against max_header, as
 * framing.c counts an HTTP/1.1 head. */
static int head_room(struct flosse_http *h, size_t more) {
  if (h->status) return -1; /* refused already: nothing more is kept */
  if (h->store_len - h->body.len + more > h->limits.max_header)
    return fail(h, 431, "request header fields too large");
  return 0;
}

int flosse_http_h2_field(struct flosse_http *h, const char *name, size_t nlen,
                         const char *value, size_t vlen) {
  h->started = 1;
  if (head_room(h, nlen + vlen)) return -1;
  if (nlen && name[0] == ':') {
    if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
      for (int m = 0; m < 64; m++) {
        const char *s = http_method_str((enum http_method)m);
        if (strlen(s) == vlen && memcmp(s, value, vlen) == 0 && strcmp(s, "<unknown>") != 0) {
          h->parser.method = (unsigned char)m;
          return 0;
        }
      }
      return fail(h, 400, "an unknown method"); /* as http-parser answers one */
    }
    if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
      if (vlen > h->limits.max_url) return fail(h, 414, "request target too long");
      h->url.off = (uint32_t)h->store_len;
      h->url.len = (uint32_t)vlen;
      return store_append(h, value, vlen, 0);
    }
    if (nlen == 10 && memcmp(name, ":authority", 10) == 0) {
      name = "host"; /* what HTTP/1.1 calls it (RFC 9113 8.3.1) */
      nlen = 4;
    } else {
      return 0; /* :scheme: nghttp2 has checked it */
    }
  }
  if (h->nheaders == FLOSSE_HTTP_MAX_HEADERS) return fail(h, 431, "too many headers");
  struct flosse_http_header *hd = &h->headers[h->nheaders++];
  hd->name.off = (uint32_t)h->store_len;
  hd->name.len = (uint32_t)nlen;
  if (store_append(h, name, nlen, 1)) return -1;
  hd->value.off = (uint32_t)h->store_len;
  hd->value.len = (uint32_t)vlen;
  return store_append(h, value, vlen, 0);
}

int flosse_http_h2_body(struct flosse_http *h, const char *p, size_t len) {
  if (h->status) return -1;
  if (h->body.len + len > h->limits.max_body) return fail(h, 413, "request body too large");
  if (h->body.len == 0) h->body.off = (uint32_t)h->store_len;
  h->body.len += (uint32_t)len;
  return store_append(h, p, len, 0);
}

void flosse_http_h2_done(struct flosse_http *h) {
  h->headers_done = h->done = 1;
  h->parser.http_major = 2;
  h->parser.http_minor = 0;
}
