/* fuzz-sources: core/http.c core/framing.c core/rbuf.c core/buf.c  fuzz-libs: -lhttp_parser */
/* libFuzzer harness for the HTTP request reader (core/http.c) as a
 * connection drives it (core/conn.c: parse, parse_kept, on_read).
 *
 * Input: 4 bytes that seed the split schedule, then a byte stream of one or
 * more (pipelined) requests. The stream is served three times: in one read,
 * one byte per read, and in reads of random sizes. Each serving does what
 * conn.c does: a fresh reader per request (flosse_http_init; the split runs
 * reuse the last reader's store, as the server's spare reader does), a read
 * parsed straight from the read buffer while nothing is kept, the bytes past
 * a complete request kept in a flosse_rbuf and parsed from its front, `used`
 * honoured; every request is answered at once (so bytes never arrive while
 * one is being handled: keep_input is not exercised), and the connection stops reading after an error or
 * after a request that does not keep it alive.
 *
 * Checked after every answer: every span inside the store, in arrival
 * order and without overlap (so no header field stored after the body); no
 * more than max_header bytes of request target and fields accepted; header
 * names non-empty, lowercased, with no whitespace, CR, LF, NUL or ':';
 * values with no CR, LF or NUL and no whitespace at either end; the bytes
 * taken as the request framed as a strict reader would frame them (see
 * check_framing); MORE only when every byte was taken; an error status in
 * {400, 413, 414, 431, 501, 503, 505} with a reason. And the three servings
 * give the same log: per request its method, URL, headers, body, keep-alive
 * and 100-continue flags and where in the stream it ended; or the error
 * status; or that the stream ended inside a request. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../core/buf.h"
#include "../../core/http.h"
#include "../../core/rbuf.h"

/* Small, so that 413, 414 and 431 are within reach of short inputs. */
static const struct flosse_http_limits limits = {256, 1024, 2048};

/* A growable log of what a serving saw. */
struct log {
  char *p;
  size_t len, cap;
};

static void log_add(struct log *l, const void *p, size_t n) {
  if (n == 0) return;
  if (l->len + n > l->cap) {
    size_t ncap = l->cap ? l->cap : 1024;
    while (ncap < l->len + n) ncap *= 2;
    l->p = realloc(l->p, ncap);
    if (!l->p) abort();
    l->cap = ncap;
  }
  memcpy(l->p + l->len, p, n);
  l->len += n;
}

static void log_fmt(struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_fmt(struct log *l, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  log_add(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length-prefixed, so that no byte of a value can fake a field boundary. */
static void log_bytes(struct log *l, const char *tag, const char *p, size_t n) {
  log_fmt(l, " %s[%zu]=", tag, n);
  log_add(l, p, n);
}

static int same_log(const struct log *a, const struct log *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void dump(const char *what, const struct log *l) {
  fprintf(stderr, "%s (%zu bytes): ", what, l->len);
  for (size_t i = 0; i < l->len; i++) {
    unsigned char c = (unsigned char)l->p[i];
    if (c >= 32 && c < 127 && c != '\\') fputc(c, stderr);
    else fprintf(stderr, "\\x%02x", c);
  }
  fputc('\n', stderr);
}

#define FAIL(...)                          \
  do {                                     \
    fprintf(stderr, "http_fuzz: ");        \
    fprintf(stderr, __VA_ARGS__);          \
    fputc('\n', stderr);                   \
    abort();                               \
  } while (0)

/* One serving of the stream: the connection's state as conn.c keeps it. */
struct conn {
  struct flosse_rbuf in;
  struct flosse_http *http;  /* the reader of the request being read */
  struct flosse_http *spare; /* the server's spare reader (split runs only) */
  int reuse;                 /* keep a spare reader, as the server does */
  int closed;                /* refused, or not kept alive: nothing more is read */
  size_t read_total;         /* bytes the "socket" has delivered */
  const char *stream;        /* all of it, for the strict reading of each request */
  size_t prev_end;           /* where the last request ended in the stream */
  struct log log;
};

static void check_span(const struct flosse_http *h, struct flosse_http_span s, const char *what) {
  if ((size_t)s.off + s.len > h->store_len)
    FAIL("%s span [%u, +%u) outside the store (%zu bytes)", what, s.off, s.len, h->store_len);
}

static int has_byte(const char *p, size_t n, const char *set) {
  for (size_t i = 0; i < n; i++)
    if (memchr(set, p[i], strlen(set) + 1)) return 1; /* +1: NUL is in every set */
  return 0;
}

static int header_is(const struct flosse_http *h, int i, const char *name, const char *value) {
  const struct flosse_http_header *hd = &h->headers[i];
  return hd->name.len == strlen(name) && memcmp(flosse_http_str(h, hd->name), name, hd->name.len) == 0 &&
         (!value || (hd->value.len == strlen(value) &&
                     strncasecmp(flosse_http_str(h, hd->value), value, hd->value.len) == 0));
}

/* A strict reading of the bytes r[0 .. n) that the reader took as one
 * request: the request line ended by " HTTP/x.y", every CR of the head
 * followed by LF, the head ended by a blank line, and for a chunked body
 * each size line hex and ended by CRLF, each chunk's data followed by CRLF,
 * the data decoded equal to the body the reader stored; otherwise the body
 * is exactly the bytes after the head. A reader laxer than this
 * frames requests differently from a strict proxy in front of it. */
static void check_framing(const struct flosse_http *h, const char *r, size_t n) {
  size_t i = 0;
  while (i < n && (r[i] == '\r' || r[i] == '\n')) i++; /* empty lines before a request */
  /* The request line ends with " HTTP/" DIGIT "." DIGIT. */
  const char *lf = memchr(r + i, '\n', n - i);
  size_t eol = lf ? (size_t)(lf - r) : n;
  if (eol > i && r[eol - 1] == '\r') eol--;
  if (eol - i < 9 || memcmp(r + eol - 9, " HTTP/", 6) != 0 || r[eol - 3] < '0' || r[eol - 3] > '9' ||
      r[eol - 2] != '.' || r[eol - 1] < '0' || r[eol - 1] > '9')
    FAIL("a request line not ended by HTTP/x.y accepted");
  size_t head = 0;
  for (size_t k = i; k < n; k++) {
    if (r[k] == '\r' && (k + 1 >= n || r[k + 1] != '\n'))
      FAIL("a request accepted with a bare CR in its head (at byte %zu of %zu)", k, n);
    if (r[k] == '\n' && k + 1 < n && r[k + 1] == '\n') { head = k + 2; break; }
    if (r[k] == '\n' && k + 2 < n && r[k + 1] == '\r' && r[k + 2] == '\n') { head = k + 3; break; }
  }
  if (!head) FAIL("a request accepted without the blank line that ends a head");
  /* An upgrade (or CONNECT) request is framed like any other: http-parser
   * stops after its head, or after the body it declares. */
  const char *body = flosse_http_str(h, h->body);
  int chunked = 0;
  for (int k = 0; k < h->nheaders; k++) chunked |= header_is(h, k, "transfer-encoding", "chunked");
  if (!chunked) {
    if (n - head != h->body.len || memcmp(r + head, body, h->body.len) != 0)
      FAIL("the body is not the %zu bytes after the head", n - head);
    return;
  }
  size_t p = head, got = 0;
  for (;;) {
    size_t size = 0, digits = 0;
    for (; p < n && strchr("0123456789abcdefABCDEF", r[p]) && r[p]; p++, digits++) {
      if (size > 1 << 20) FAIL("a chunk size past 1 MiB accepted (max_body %zu)", limits.max_body);
      size = size * 16 + (size_t)(r[p] <= '9' ? r[p] - '0' : (r[p] | 32) - 'a' + 10);
    }
    if (!digits) FAIL("a chunk size line without a hex size accepted (at byte %zu)", p);
    while (p < n && r[p] != '\r' && r[p] != '\n') p++; /* extensions */
    if (p + 1 >= n || r[p] != '\r' || r[p + 1] != '\n')
      FAIL("a chunk size line not ended by CRLF accepted (at byte %zu)", p);
    p += 2;
    if (size == 0) break;
    if (p + size > n) FAIL("a chunk longer than the request accepted");
    if (got + size > h->body.len || memcmp(r + p, body + got, size) != 0)
      FAIL("the body stored is not the chunks' data");
    p += size;
    got += size;
    if (p + 1 >= n || r[p] != '\r' || r[p + 1] != '\n')
      FAIL("a chunk's data not followed by CRLF accepted (at byte %zu)", p);
    p += 2;
  }
  if (got != h->body.len) FAIL("the body stored is longer than the chunks' data");
  for (;;) { /* trailer lines, then the blank line */
    size_t eol = p;
    while (eol < n && r[eol] != '\r' && r[eol] != '\n') eol++;
    if (eol + 1 >= n || r[eol] != '\r' || r[eol + 1] != '\n')
      FAIL("a chunked body's trailer or end not ended by CRLF accepted (at byte %zu)", eol);
    int blank = eol == p;
    p = eol + 2;
    if (blank) break;
  }
  if (p != n) FAIL("a chunked request taken %zu bytes past its end", n - p);
}

/* A complete request: check it and log it. */
static void answer(struct conn *c) {
  struct flosse_http *h = c->http;
  size_t end = c->read_total - c->in.len;
  if (h->nheaders < 0 || h->nheaders > FLOSSE_HTTP_MAX_HEADERS) FAIL("nheaders %d", h->nheaders);
  if (h->store_len > h->store_cap) FAIL("store_len %zu > store_cap %zu", h->store_len, h->store_cap);
  if (h->url.len == 0) FAIL("a request with an empty URL");
  check_span(h, h->url, "url");
  check_span(h, h->body, "body");
  /* Spans are laid out in arrival order: url, names and values, body. */
  size_t at = (size_t)h->url.off + h->url.len;
  for (int i = 0; i < h->nheaders; i++) {
    const struct flosse_http_header *hd = &h->headers[i];
    check_span(h, hd->name, "header name");
    check_span(h, hd->value, "header value");
    const char *name = flosse_http_str(h, hd->name);
    const char *value = flosse_http_str(h, hd->value);
    if (hd->name.len == 0) FAIL("header %d: empty name", i);
    if (hd->name.off < at) FAIL("header %d: name overlaps what came before it", i);
    at = (size_t)hd->name.off + hd->name.len;
    for (uint32_t k = 0; k < hd->name.len; k++)
      if (name[k] >= 'A' && name[k] <= 'Z') FAIL("header %d: name not lowercased", i);
    if (has_byte(name, hd->name.len, " \t\r\n:\v\f"))
      FAIL("header %d: name with whitespace, CR, LF, NUL or ':' accepted", i);
    if (hd->value.len) {
      if (hd->value.off < at) FAIL("header %d: value overlaps what came before it", i);
      at = (size_t)hd->value.off + hd->value.len;
      if (has_byte(value, hd->value.len, "\r\n")) FAIL("header %d: value with CR, LF or NUL", i);
      if (value[0] == ' ' || value[0] == '\t') FAIL("header %d: value with leading whitespace", i);
      char last = value[hd->value.len - 1];
      if (last == ' ' || last == '\t') FAIL("header %d: value with trailing whitespace", i);
    }
  }
  if (h->body.len && h->body.off < at)
    FAIL("a header field stored after the body: a chunked trailer taken into the headers");
  /* What 431 bounds: the request target, names and values stored. */
  size_t head = h->url.len;
  for (int i = 0; i < h->nheaders; i++) head += h->headers[i].name.len + h->headers[i].value.len;
  if (head > limits.max_header)
    FAIL("%zu bytes of request target and header fields accepted (max_header %zu)", head,
         limits.max_header);

  check_framing(h, c->stream + c->prev_end, end - c->prev_end);
  c->prev_end = end;

  log_fmt(&c->log, "\nREQ %s", http_method_str((enum http_method)h->parser.method));
  log_bytes(&c->log, "url", flosse_http_str(h, h->url), h->url.len);
  for (int i = 0; i < h->nheaders; i++) {
    log_bytes(&c->log, "name", flosse_http_str(h, h->headers[i].name), h->headers[i].name.len);
    log_bytes(&c->log, "value", flosse_http_str(h, h->headers[i].value), h->headers[i].value.len);
  }
  log_bytes(&c->log, "body", flosse_http_str(h, h->body), h->body.len);
  int ka = flosse_http_keep_alive(h);
  log_fmt(&c->log, " http/%d.%d keep-alive=%d expect-continue=%d upgrade=%d ends-at=%zu",
          h->parser.http_major, h->parser.http_minor, ka, h->expect_continue != 0,
          h->parser.upgrade, end);
  if (!ka) c->closed = 1;

  /* flosse_conn_http_release: a store grown past 4096 bytes is not kept. */
  if (c->reuse && !c->spare && h->store_cap <= 4096) {
    c->spare = h;
  } else {
    flosse_http_free(h);
    free(h);
  }
  c->http = NULL;
}

/* conn.c parse(): feeds bytes to the connection's reader, a fresh one per
 * request. */
static enum flosse_http_rc parse(struct conn *c, const char *p, size_t len, size_t *used) {
  *used = 0;
  if (!c->http) {
    char *store = NULL;
    size_t cap = 0;
    if (c->spare) {
      c->http = c->spare;
      c->spare = NULL;
      store = c->http->store;
      cap = c->http->store_cap;
    } else {
      c->http = malloc(sizeof *c->http);
      if (!c->http) abort();
    }
    flosse_http_init(c->http, &limits);
    c->http->store = store;
    c->http->store_cap = cap;
  }
  struct flosse_http *h = c->http;
  enum flosse_http_rc rc = flosse_http_feed(h, p, len, used);
  if (*used > len) FAIL("used %zu of %zu bytes", *used, len);
  switch (rc) {
    case FLOSSE_HTTP_MORE:
      /* conn.c drops what a MORE left unused in a read buffer. */
      if (*used != len) FAIL("MORE with %zu of %zu bytes used", *used, len);
      if (h->status) FAIL("MORE with status %d", h->status);
      break;
    case FLOSSE_HTTP_ERROR:
      switch (h->status) {
        case 400: case 413: case 414: case 431: case 501: case 503: case 505: break;
        default: FAIL("error status %d", h->status);
      }
      if (!h->error) FAIL("error %d without a reason", h->status);
      log_fmt(&c->log, "\nERROR %d", h->status);
      c->closed = 1; /* flosse_conn_refuse: answered, then drained and closed */
      break;
    case FLOSSE_HTTP_DONE:
      if (h->status) FAIL("DONE with status %d", h->status);
      break;
    default:
      FAIL("flosse_http_feed returned %d", (int)rc);
  }
  return rc;
}

/* conn.c parse_kept(): the kept requests, oldest first. */
static void parse_kept(struct conn *c) {
  while (!c->closed && c->in.len) {
    size_t used, had = c->in.len;
    enum flosse_http_rc rc = parse(c, flosse_rbuf_data(&c->in), c->in.len, &used);
    if (used > had) FAIL("used past the kept bytes");
    flosse_rbuf_consume(&c->in, used);
    if (rc != FLOSSE_HTTP_DONE) return;
    answer(c); /* then flosse_conn_request_done parses what is kept */
  }
}

/* conn.c on_read() in the reading state, for one read of n bytes. */
static void on_read(struct conn *c, const char *buf, size_t n) {
  c->read_total += n;
  if (!c->in.len) {
    size_t used;
    if (parse(c, buf, n, &used) != FLOSSE_HTTP_DONE) return;
    if (used < n && flosse_rbuf_append(&c->in, buf + used, n - used) != FLOSSE_OK) abort();
    answer(c);
    parse_kept(c);
    return;
  }
  if (flosse_rbuf_append(&c->in, buf, n) != FLOSSE_OK) abort();
  parse_kept(c);
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

enum schedule { WHOLE, BYTES, RANDOM };

static void serve(struct conn *c, const char *data, size_t len, enum schedule how, uint64_t seed,
                  int reuse) {
  memset(c, 0, sizeof *c);
  flosse_rbuf_init(&c->in);
  c->reuse = reuse;
  c->stream = data;
  size_t off = 0;
  while (off < len && !c->closed) {
    size_t n = len - off;
    if (how == BYTES) {
      n = 1;
    } else if (how == RANDOM) {
      /* Mostly short reads (a split inside every token), sometimes long. */
      uint64_t r = rng_next(&seed);
      size_t max = (r & 1) ? 16 : len;
      size_t want = 1 + (size_t)((r >> 8) % max);
      if (want < n) n = want;
    }
    /* A read is a private buffer, so that nothing can keep a pointer to it. */
    char *buf = malloc(n);
    if (!buf) abort();
    memcpy(buf, data + off, n);
    on_read(c, buf, n);
    free(buf);
    off += n;
  }
  if (!c->closed && (c->http || c->in.len)) log_fmt(&c->log, "\nINCOMPLETE");
  if (c->http) {
    flosse_http_free(c->http);
    free(c->http);
  }
  if (c->spare) {
    flosse_http_free(c->spare);
    free(c->spare);
  }
  flosse_rbuf_free(&c->in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  uint64_t seed = (uint64_t)data[0] | (uint64_t)data[1] << 8 | (uint64_t)data[2] << 16 |
                  (uint64_t)data[3] << 24;
  const char *stream = (const char *)data + 4;
  size_t len = size - 4;

  struct conn whole, bytes, random;
  serve(&whole, stream, len, WHOLE, seed, 0);
  serve(&bytes, stream, len, BYTES, seed, 1);
  serve(&random, stream, len, RANDOM, seed, 1);
  if (!same_log(&whole.log, &bytes.log) || !same_log(&whole.log, &random.log)) {
    dump("in one read", &whole.log);
    dump("one byte per read", &bytes.log);
    dump("in random reads", &random.log);
    FAIL("the outcome depends on how the stream is split into reads");
  }
  free(whole.log.p);
  free(bytes.log.p);
  free(random.log.p);
  return 0;
}
