/* Unit tests of the pure parts of the C core (buffers, SSE framing, HTTP
 * reading, the Lua allocator), built with AddressSanitizer and UBSan by spec/run.
 * Prints TAP: one "ok N - ..." or "not ok N - ..." line per check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "../../core/buf.h"
#include "../../core/channel.h"
#include "../../core/http.h"
#include "../../core/lalloc.h"
#include "../../core/rbuf.h"
#include "../../core/response.h"
#include "../../core/sse.h"

#define TAP_PREFIX "C core"
#include "tap.h"

/* Flattens a buffer into a NUL-terminated malloc'd string. */
static char *flatten(const struct flosse_buf *b) {
  char *s = malloc(b->len + 1);
  struct iovec iov[256];
  int n = flosse_buf_iov(b, iov, 256);
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    memcpy(s + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  s[off] = '\0';
  return s;
}

static void check_frame(const struct flosse_sse_event *ev, const char *want, const char *what) {
  struct flosse_buf b;
  char err[128] = "";
  flosse_buf_init(&b);
  int rc = flosse_sse_frame(&b, ev, err, sizeof err);
  char *got = flatten(&b);
  char detail[512];
  snprintf(detail, sizeof detail, "got [%s] (%s)", got, err);
  check(rc == FLOSSE_OK && strcmp(got, want) == 0, what, detail);
  free(got);
  flosse_buf_free(&b);
}

static void test_buf(void) {
  struct flosse_buf b;
  flosse_buf_init(&b);
  flosse_buf_append(&b, "hello ", 6);
  flosse_buf_printf(&b, "%s %d", "world", 42);
  char *s = flatten(&b);
  check(strcmp(s, "hello world 42") == 0 && b.len == 14, "buf appends coalesce", s);
  struct iovec iov[4];
  check(flosse_buf_iov(&b, iov, 4) == 1, "small appends share one segment", NULL);
  free(s);

  struct flosse_seg *shared = flosse_seg_new(16);
  memcpy(shared->data, "SHARED", 6);
  shared->len = 6;
  flosse_buf_append_seg(&b, shared);
  flosse_buf_append(&b, "!", 1);
  check(shared->refs == 2, "a queued shared segment holds a reference", NULL);
  s = flatten(&b);
  check(strcmp(s, "hello world 42SHARED!") == 0, "appends after a shared segment do not write into it", s);
  free(s);
  char peek[32] = {0};
  check(flosse_buf_peek(&b, peek, 16) == 16 && memcmp(peek, "hello world 42SH", 16) == 0 && b.len == 21,
        "peek copies across segments and leaves the bytes queued", peek);
  check(flosse_buf_peek(&b, peek, sizeof peek) == 21, "peek stops at what is queued", NULL);
  flosse_buf_consume(&b, 16);
  s = flatten(&b);
  check(strcmp(s, "ARED!") == 0 && b.len == 5, "consume across segments", s);
  free(s);
  flosse_buf_consume(&b, 5);
  check(b.len == 0 && b.ents == NULL && shared->refs == 1,
        "a drained buffer keeps nothing and drops its references", NULL);
  flosse_seg_release(shared);

  char big[10000];
  memset(big, 'x', sizeof big);
  for (int i = 0; i < 50; i++) flosse_buf_append(&b, big, sizeof big);
  check(b.len == 500000, "large appends", NULL);
  flosse_buf_consume(&b, 250001);
  check(b.len == 249999, "partial consume of large appends", NULL);
  flosse_buf_free(&b);
}

static void test_sse(void) {
  struct flosse_sse_event ev = {NULL, 0, "hello", 5, NULL, 0, -1};
  check_frame(&ev, "data: hello\n\n", "frame data");
  struct flosse_sse_event ev2 = {"update", 6, "{\"count\":1}", 11, "evt-001", 7, -1};
  check_frame(&ev2, "event: update\ndata: {\"count\":1}\nid: evt-001\n\n", "frame event, data, id");
  struct flosse_sse_event ev3 = {"e", 1, "x", 1, "1", 1, 5000};
  check_frame(&ev3, "event: e\ndata: x\nid: 1\nretry: 5000\n\n", "frame every field");
  struct flosse_sse_event ev4 = {NULL, 0, "a\nb\r\nc\rd", 8, NULL, 0, -1};
  check_frame(&ev4, "data: a\ndata: b\ndata: c\ndata: d\n\n", "data splits on LF, CRLF and CR");
  struct flosse_sse_event ev5 = {NULL, 0, "a\n", 2, NULL, 0, -1};
  check_frame(&ev5, "data: a\ndata: \n\n", "a trailing newline survives");
  struct flosse_sse_event ev6 = {NULL, 0, "", 0, NULL, 0, -1};
  check_frame(&ev6, "data: \n\n", "empty data is one empty data line");
  struct flosse_sse_event ev7 = {NULL, 0, NULL, 0, NULL, 0, 3000};
  check_frame(&ev7, "retry: 3000\n\n", "a retry-only frame");

  struct flosse_buf b;
  char err[128];
  flosse_buf_init(&b);
  struct flosse_sse_event bad1 = {"x\ndata: injected", 16, "d", 1, NULL, 0, -1};
  check(flosse_sse_frame(&b, &bad1, err, sizeof err) == FLOSSE_ERR && b.len == 0,
        "an event name with LF is refused before anything is written", err);
  struct flosse_sse_event bad2 = {NULL, 0, "d", 1, "1\r", 2, -1};
  check(flosse_sse_frame(&b, &bad2, err, sizeof err) == FLOSSE_ERR && b.len == 0,
        "an id with CR is refused", err);
  struct flosse_sse_event bad3 = {NULL, 0, "d", 1, "a\0b", 3, -1};
  check(flosse_sse_frame(&b, &bad3, err, sizeof err) == FLOSSE_ERR, "an id with NUL is refused", err);
  check(flosse_sse_comment(&b, " hb", 3) == FLOSSE_OK, "comment frame", NULL);
  char *s = flatten(&b);
  check(strcmp(s, ": hb\n\n") == 0, "comment bytes", s);
  free(s);
  flosse_buf_free(&b);
}

static struct flosse_http_limits limits = {64, 512, 16};

static enum flosse_http_rc feed_str(struct flosse_http *h, const char *s, size_t *used) {
  return flosse_http_feed(h, s, strlen(s), used);
}

static const char *header(struct flosse_http *h, const char *name, char *out, size_t len) {
  for (int i = 0; i < h->nheaders; i++) {
    struct flosse_http_header *hd = &h->headers[i];
    if (hd->name.len == strlen(name) && memcmp(flosse_http_str(h, hd->name), name, hd->name.len) == 0) {
      snprintf(out, len, "%.*s", (int)hd->value.len, flosse_http_str(h, hd->value));
      return out;
    }
  }
  return NULL;
}


/* A frame written field by field, line by line, the plain way: what the
 * core's one-pass framer (flosse_sse_frame_len / _flat) must match. */
static size_t reference_frame(char *out, const struct flosse_sse_event *ev) {
  size_t n = 0;
  if (ev->event) n += (size_t)sprintf(out + n, "event: %.*s\n", (int)ev->event_len, ev->event);
  if (ev->data) {
    const char *d = ev->data, *line = d, *end = d + ev->data_len;
    for (const char *p = d; p < end; p++) {
      if (*p != '\n' && *p != '\r') continue;
      n += (size_t)sprintf(out + n, "data: %.*s\n", (int)(p - line), line);
      if (*p == '\r' && p + 1 < end && p[1] == '\n') p++;
      line = p + 1;
    }
    n += (size_t)sprintf(out + n, "data: %.*s\n", (int)(end - line), line);
  }
  if (ev->id) n += (size_t)sprintf(out + n, "id: %.*s\n", (int)ev->id_len, ev->id);
  if (ev->retry >= 0) n += (size_t)sprintf(out + n, "retry: %lld\n", ev->retry);
  out[n++] = '\n';
  out[n] = '\0';
  return n;
}

/* The one-pass framer writes exactly the reference frame, for data with
 * every kind of line break, and flosse_sse_frame appends the same bytes. */
static void test_sse_flat(void) {
  static const char *datas[] = {"", "a", "event 1", "a\nb", "a\rb", "a\r\nb", "\n", "\r\n", "\r",
                                "x\n\ny", "x\r\r\ny\n", "\n\r\r\n\n", "tail\r"};
  static const char *ids[] = {NULL, "", "7", "evt-12"};
  static const char *names[] = {NULL, "tick", ""};
  static const long long retries[] = {-1, 0, 9, 10, 5000, 123456789012LL};
  int bad = 0, total = 0;
  char detail[512] = "";
  for (size_t d = 0; d < sizeof datas / sizeof *datas; d++)
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
      for (size_t e = 0; e < sizeof names / sizeof *names; e++)
        for (size_t r = 0; r < sizeof retries / sizeof *retries; r++) {
          struct flosse_sse_event ev = {names[e], names[e] ? strlen(names[e]) : 0, datas[d],
                                        strlen(datas[d]), ids[i], ids[i] ? strlen(ids[i]) : 0,
                                        retries[r]};
          struct flosse_buf b;
          char err[64];
          flosse_buf_init(&b);
          flosse_sse_frame(&b, &ev, err, sizeof err);
          char *want = flatten(&b);
          char flat[256], ref[256];
          size_t len = flosse_sse_frame_len(&ev);
          size_t n = flosse_sse_frame_flat(flat, &ev);
          flat[n] = '\0';
          size_t rn = reference_frame(ref, &ev);
          total++;
          if (len != n || n != rn || strcmp(flat, ref) != 0 || b.len != rn || strcmp(want, ref) != 0) {
            if (!bad) snprintf(detail, sizeof detail, "data [%.20s]: len %zu, wrote %zu [%.120s], appended [%.120s], want %zu [%.120s]",
                               datas[d], len, n, flat, want, rn, ref);
            bad++;
          }
          free(want);
          flosse_buf_free(&b);
        }
  check(bad == 0 && total > 800, "sse: the one-pass framer matches a line-by-line reference byte for byte", detail);
  char head[20];
  size_t n = flosse_response_chunk_head(head, 0x1a2f);
  check(n == 6 && memcmp(head, "1a2f\r\n", 6) == 0, "sse: chunk head in lower-case hex", NULL);
  n = flosse_response_chunk_head(head, 0);
  check(n == 3 && memcmp(head, "0\r\n", 3) == 0, "sse: chunk head of 0", NULL);
}

static void test_http(void) {
  struct flosse_http h;
  size_t used;
  char v[128];
  flosse_http_init(&h, &limits);
  const char *req = "GET /sse/x/?a=1 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\n";
  /* byte by byte: the parser must keep pieces that arrive apart */
  enum flosse_http_rc rc = FLOSSE_HTTP_MORE;
  size_t i;
  for (i = 0; i < strlen(req) && rc == FLOSSE_HTTP_MORE; i++) rc = flosse_http_feed(&h, req + i, 1, &used);
  check(rc == FLOSSE_HTTP_DONE && i == strlen(req), "a request fed byte by byte completes", NULL);
  check(h.url.len == 11 && memcmp(flosse_http_str(&h, h.url), "/sse/x/?a=1", 11) == 0, "url", NULL);
  check(header(&h, "last-event-id", v, sizeof v) && strcmp(v, "7") == 0,
        "header names are lowercased, values kept", NULL);
  check(flosse_http_keep_alive(&h), "HTTP/1.1 keeps the connection", NULL);

  flosse_http_free(&h);
  flosse_http_init(&h, &limits);
  const char *two = "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /q HTTP/1.1\r\n\r\n";
  rc = feed_str(&h, two, &used);
  check(rc == FLOSSE_HTTP_DONE && h.body.len == 3 && memcmp(flosse_http_str(&h, h.body), "abc", 3) == 0,
        "a body is read", NULL);
  check(used == strlen(two) - strlen("GET /q HTTP/1.1\r\n\r\n"), "a pipelined request is left unread", NULL);
  flosse_http_free(&h);
  flosse_http_init(&h, &limits); /* a fresh reader per request, as the server does */
  rc = feed_str(&h, two + used, &used);
  check(rc == FLOSSE_HTTP_DONE && h.url.len == 2, "the pipelined request is read next", NULL);
  flosse_http_free(&h);

  flosse_http_init(&h, &limits);
  rc = feed_str(&h, "HELLO\r\n\r\n", &used);
  check(rc == FLOSSE_HTTP_ERROR && h.status == 400, "garbage is a 400", NULL);
  flosse_http_free(&h);

  flosse_http_init(&h, &limits);
  char longurl[200] = "GET /";
  memset(longurl + 5, 'a', 100);
  strcpy(longurl + 105, " HTTP/1.1\r\n\r\n");
  rc = feed_str(&h, longurl, &used);
  check(rc == FLOSSE_HTTP_ERROR && h.status == 414, "a long request target is a 414", NULL);
  flosse_http_free(&h);

  flosse_http_init(&h, &limits);
  char hdrs[2048] = "GET / HTTP/1.1\r\n";
  for (int k = 0; k < 30; k++) strcat(hdrs, "X-Filler: 0123456789012345\r\n");
  strcat(hdrs, "\r\n");
  rc = feed_str(&h, hdrs, &used);
  check(rc == FLOSSE_HTTP_ERROR && h.status == 431, "a large header block is a 431", NULL);
  flosse_http_free(&h);

  flosse_http_init(&h, &limits);
  rc = feed_str(&h, "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", &used);
  check(rc == FLOSSE_HTTP_ERROR && h.status == 413, "a declared body over the limit is a 413", NULL);
  flosse_http_free(&h);

  flosse_http_init(&h, &limits);
  rc = feed_str(&h, "GET / HTTP/1.0\r\n\r\n", &used);
  check(rc == FLOSSE_HTTP_DONE && !flosse_http_keep_alive(&h), "HTTP/1.0 closes by default", NULL);
  flosse_http_free(&h);
}

/* RFC 9112's rules that http-parser (built lenient) leaves to us. */
static void test_http_strict(void) {
  struct flosse_http_limits limits = {8192, 16384, 1 << 20};
  static const struct { const char *req; int status; const char *what; } cases[] = {
      {"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", 400, "whitespace before a header's colon is a 400"},
      {"GET / HTTP/1.1\r\nX A: 1\r\n\r\n", 400, "whitespace inside a header name is a 400"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
       "Transfer-Encoding gzip, chunked is a 501"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding gzip is a 501"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       501, "chunked twice is a 501"},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
       "Transfer-Encoding in HTTP/1.0 is a 400"},
      {"GET / HTTP/9.9\r\n\r\n", 505, "HTTP/9.9 is a 505"},
      {"GET / HTTP/1.2\r\n\r\n", 505, "HTTP/1.2 is a 505"},
      {"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0 in HTTP/1 syntax is a 505"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct flosse_http h;
    size_t used;
    flosse_http_init(&h, &limits);
    enum flosse_http_rc rc = feed_str(&h, cases[i].req, &used);
    char detail[128];
    snprintf(detail, sizeof detail, "rc %d status %d (%s)", rc, h.status, h.error ? h.error : "-");
    check(rc == FLOSSE_HTTP_ERROR && h.status == cases[i].status, cases[i].what, detail);
    flosse_http_free(&h);
  }
  struct flosse_http h;
  size_t used;
  flosse_http_init(&h, &limits);
  enum flosse_http_rc rc =
      feed_str(&h, "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nX: a \t \r\n\r\n2\r\nhi\r\n0\r\n\r\n", &used);
  check(rc == FLOSSE_HTTP_DONE && h.body.len == 2 && h.headers[1].value.len == 1,
        "chunked alone (any case) is read; a value loses its trailing whitespace", NULL);
  flosse_http_free(&h);
}

/* A refusal falls on one byte of the request: the same status whatever the
 * read sizes (found by spec/fuzz/http_fuzz.c: limits were checked when
 * http-parser handed a piece over, bad bytes while it scanned). */
static int status_fed(const char *req, size_t len, size_t step) {
  struct flosse_http_limits limits = {256, 1024, 2048};
  struct flosse_http h;
  flosse_http_init(&h, &limits);
  int status = 0;
  for (size_t off = 0; off < len && !status;) {
    size_t n = len - off < step ? len - off : step, used;
    enum flosse_http_rc rc = flosse_http_feed(&h, req + off, n, &used);
    if (rc == FLOSSE_HTTP_ERROR) status = h.status;
    else if (rc == FLOSSE_HTTP_DONE) status = 200;
    off += used;
  }
  flosse_http_free(&h);
  return status;
}

static void test_framing(void) {
  char req[2048];
  int n = snprintf(req, sizeof req, "GET /%s\x01 HTTP/1.1\r\n\r\n",
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  check(status_fed(req, (size_t)n, 4096) == 414 && status_fed(req, (size_t)n, 1) == 414,
        "framing: a long target with a bad byte after the limit is a 414 in one read and byte by byte", NULL);
  n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nX: %.*s\x7f\r\n\r\n", 1100,
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
               "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
  check(status_fed(req, (size_t)n, 4096) == 431 && status_fed(req, (size_t)n, 1) == 431 &&
            status_fed(req, (size_t)n, 7) == 431,
        "framing: a long value with a bad byte after the limit is a 431 whatever the reads", NULL);
  static const struct { const char *req; int status; const char *what; } cases[] = {
      {"GET / HXXP?1.1\r\n\r\n", 400, "framing: only HTTP/x.y ends a request line"},
      {"GET / HTTP/1.1\r\nX: \rContent-Length: 3\r\n\r\nabc", 400, "framing: a bare CR is no line end"},
      {"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400, "framing: no folded lines"},
      {"GET / HTTP/1.1\r\nX: \001\r\n\r\n", 400, "framing: no control byte first in a value"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400,
       "framing: chunk data is followed by CRLF"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\200\r\n\r\n", 400,
       "framing: 0x80 is no hex digit"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n", 413,
       "framing: chunk data over max_body is a 413"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t len = strlen(cases[i].req);
    int one = status_fed(cases[i].req, len, 4096), bytes = status_fed(cases[i].req, len, 1);
    char detail[64];
    snprintf(detail, sizeof detail, "one read %d, byte by byte %d", one, bytes);
    /* the 413 needs the data to arrive: feed it */
    if (cases[i].status == 413) {
      char big[4200];
      int m = snprintf(big, sizeof big, "%s", cases[i].req);
      memset(big + m, 'd', sizeof big - (size_t)m - 1);
      big[sizeof big - 1] = 0;
      one = status_fed(big, sizeof big - 1, 4096);
      bytes = status_fed(big, sizeof big - 1, 1);
      snprintf(detail, sizeof detail, "one read %d, byte by byte %d", one, bytes);
    }
    check(one == cases[i].status && bytes == cases[i].status, cases[i].what, detail);
  }
  struct flosse_http_limits limits = {256, 1024, 2048};
  struct flosse_http h;
  size_t used;
  flosse_http_init(&h, &limits);
  const char *tr = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nAuthorization: x\r\n\r\n";
  check(flosse_http_feed(&h, tr, strlen(tr), &used) == FLOSSE_HTTP_DONE && h.nheaders == 1 && used == strlen(tr),
        "framing: trailers are read but not taken as headers", NULL);
  flosse_http_free(&h);
}

static void test_rbuf(void) {
  struct flosse_rbuf r;
  flosse_rbuf_init(&r);
  check(flosse_rbuf_append(&r, "abc", 3) == FLOSSE_OK && flosse_rbuf_append(&r, "def", 3) == FLOSSE_OK &&
            r.len == 6 && memcmp(flosse_rbuf_data(&r), "abcdef", 6) == 0,
        "rbuf: appends keep arrival order", NULL);
  flosse_rbuf_consume(&r, 2);
  char big[5000];
  memset(big, 'z', sizeof big);
  flosse_rbuf_append(&r, big, sizeof big);
  check(r.len == 4 + sizeof big && memcmp(flosse_rbuf_data(&r), "cdefzz", 6) == 0,
        "rbuf: what is left stays in front of what comes", NULL);
  flosse_rbuf_consume(&r, r.len);
  check(r.len == 0 && r.p == NULL && r.cap == 0, "rbuf: an emptied buffer keeps no memory", NULL);
  flosse_rbuf_free(&r);
}

static int woken, dropped;
static void on_notify(struct flosse_sub_owner *o, int drop) {
  (void)o;
  if (drop) dropped++;
  else woken++;
}
static struct flosse_sub_owner fake_owner = {on_notify};

static struct flosse_msg *publish_text(const char *ch, const char *data, const char *id,
                                       double now, size_t *delivered) {
  struct flosse_sse_event ev = {NULL, 0, data, strlen(data), id, id ? strlen(id) : 0, -1};
  char err[128];
  enum flosse_chan_rc rc;
  struct flosse_msg *m = flosse_channel_publish(ch, strlen(ch), &ev, now, delivered,
                                                &rc, err, sizeof err);
  if (m) flosse_msg_unref(m); /* borrowed below, while the history holds it */
  return m;
}

/* The registry frees what nobody holds: a channel with no subscriber and
 * no history left; max_channels caps it, all or nothing. */
static void test_channel_registry(void) {
  struct flosse_channel_config cfg = {3, 10, 8, 3};
  flosse_channel_configure(&cfg);
  size_t base = flosse_channel_count(), n;
  const char *names[] = {"r1", "r2", "r3", "r4"};
  size_t lens[] = {2, 2, 2, 2};
  struct flosse_sub *s = calloc(1, flosse_sub_size(4));
  check(base == 0 && flosse_sub_init(s, &fake_owner, names, lens, 4, NULL, 1.0) ==
                         FLOSSE_CHAN_FULL && flosse_channel_count() == 0,
        "registry: a subscription past max_channels is refused and makes nothing", NULL);
  check(flosse_sub_init(s, &fake_owner, names, lens, 3, NULL, 1.0) == FLOSSE_CHAN_OK &&
            flosse_channel_count() == 3,
        "registry: up to max_channels is fine", NULL);
  check(!publish_text("r4", "x", NULL, 1.0, &n), "registry: a publish past max_channels is refused", NULL);
  check(publish_text("r1", "x", NULL, 2.0, &n) && n == 1, "registry: a publish to a held channel goes", NULL);
  flosse_sub_close(s);
  check(flosse_channel_count() == 1 && flosse_channel_exists("r1", 2),
        "registry: the last subscriber leaving frees channels without history", NULL);
  flosse_channel_sweep(11.0);
  check(flosse_channel_count() == 1, "registry: history younger than history_seconds is kept", NULL);
  flosse_channel_sweep(12.5);
  check(flosse_channel_count() == 0, "registry: expired history and no subscriber frees the channel", NULL);
  const char *twice[] = {"d", "d"};
  size_t tl[] = {1, 1};
  check(flosse_sub_init(s, &fake_owner, twice, tl, 2, NULL, 20.0) == FLOSSE_CHAN_OK &&
            flosse_channel_count() == 1 && s->nrefs == 1,
        "registry: a name given twice is one subscription", NULL);
  publish_text("d", "once", NULL, 21.0, &n);
  check(n == 1 && s->qlen == 1, "registry: ... and its events come once", NULL);
  flosse_sub_close(s);
  flosse_channel_sweep(40.0);
  const char *bad[] = {"ok", "a\nb"};
  size_t bl[] = {2, 3};
  check(flosse_sub_init(s, &fake_owner, bad, bl, 2, NULL, 41.0) == FLOSSE_CHAN_BAD_NAME &&
            flosse_channel_count() == 0,
        "registry: a bad name refuses the whole subscription", NULL);
  char long_name[202];
  memset(long_name, 'x', 201);
  long_name[201] = 0;
  check(!flosse_channel_name_ok(long_name, 201) && flosse_channel_name_ok(long_name, 200) &&
            !flosse_channel_name_ok("a\0b", 3) && !flosse_channel_name_ok("a\rb", 3),
        "registry: names are 1 to 200 bytes without CR, LF or NUL", NULL);
  free(s);
  struct flosse_channel_config def = {100, 0, 1000, FLOSSE_DEFAULT_MAX_CHANNELS};
  flosse_channel_configure(&def);
}


/* Pops everything s holds into names[]: "gap:<channel>" for a flosse-gap
 * notice, else the data. Returns how many. */
static int drain(struct flosse_sub *s, char out[][48], int max) {
  int n = 0;
  for (struct flosse_msg *m; (m = flosse_sub_pop(s)) != NULL; flosse_msg_unref(m)) {
    if (n >= max) continue;
    if (m->event && strcmp(m->event, FLOSSE_GAP_EVENT) == 0) {
      snprintf(out[n++], 48, "gap:%s%s", m->channel, m->id ? "+id" : "");
    } else {
      snprintf(out[n++], 48, "%s", m->data);
    }
  }
  return n;
}

static struct flosse_sub *subscribe1(const char *name, const char *last) {
  struct flosse_sub *s = calloc(1, flosse_sub_size(1));
  size_t len = strlen(name);
  flosse_sub_init(s, &fake_owner, &name, &len, 1, last, 10.0);
  return s;
}

static void unsubscribe(struct flosse_sub *s) {
  flosse_sub_close(s);
  free(s);
}

/* Gaps are told: a Last-Event-ID that history no longer covers gets one
 * flosse-gap notice (no id) before what is left; one it covers gets none. */
static void test_channel_gaps(void) {
  struct flosse_channel_config cfg = {3, 0, 100, FLOSSE_DEFAULT_MAX_CHANNELS};
  flosse_channel_configure(&cfg);
  size_t n;
  char ids[6][24];
  for (int i = 0; i < 6; i++) {
    char data[8];
    snprintf(data, sizeof data, "g%d", i + 1);
    struct flosse_msg *m = publish_text("gaps", data, NULL, 1.0, &n); /* keeps g4..g6 */
    snprintf(ids[i], sizeof ids[i], "%s", m->id);
  }
  char got[8][48];
  struct flosse_sub *s = subscribe1("gaps", ids[3]);
  int k = drain(s, got, 8);
  check(k == 2 && strcmp(got[0], "g5") == 0 && strcmp(got[1], "g6") == 0,
        "gaps: an id history covers resumes with no notice", NULL);
  unsubscribe(s);
  s = subscribe1("gaps", ids[2]);
  k = drain(s, got, 8);
  check(k == 3 && strcmp(got[0], "g4") == 0, "gaps: the id of the newest event dropped is still covered", NULL);
  unsubscribe(s);
  s = subscribe1("gaps", ids[0]);
  k = drain(s, got, 8);
  check(k == 4 && strcmp(got[0], "gap:gaps") == 0 && strcmp(got[1], "g4") == 0 && strcmp(got[3], "g6") == 0,
        "gaps: trimmed history is told first (no id), then what is left", got[0]);
  unsubscribe(s);
  s = subscribe1("gaps", "nonsense");
  k = drain(s, got, 8);
  check(k == 1 && strcmp(got[0], "gap:gaps") == 0, "gaps: an unknown id is told, then live only", NULL);
  unsubscribe(s);
  s = subscribe1("gaps", "99999999999");
  k = drain(s, got, 8);
  check(k == 1 && strcmp(got[0], "gap:gaps") == 0, "gaps: an id from another run is told, then live only", NULL);
  publish_text("gaps", "live", NULL, 2.0, &n);
  k = drain(s, got, 8);
  check(k == 1 && strcmp(got[0], "live") == 0, "gaps: ... and live events follow", NULL);
  unsubscribe(s);
  struct flosse_channel_config def = {100, 0, 1000, FLOSSE_DEFAULT_MAX_CHANNELS};
  flosse_channel_configure(&def);
}

static int watched_on, watched_off, flosse_sync_wait_probe;
static void watch(const char *name, size_t len, int on) {
  (void)name;
  (void)len;
  if (on) watched_on++;
  else watched_off++;
}
static const struct flosse_channel_backend fake_backend = {watch};

static struct flosse_remote_msg remote(uint64_t id, const char *data) {
  struct flosse_remote_msg r = {id, 5.0, {NULL, 0, data, strlen(data), NULL, 0, -1}};
  return r;
}

/* With a back end: the channel lives while subscribed here, subscriptions
 * wait for its mirror and resume from it, a message comes once, in order. */
static void test_channel_backend(void) {
  flosse_channel_set_backend(&fake_backend);
  watched_on = watched_off = 0;
  woken = 0;
  struct flosse_sub *s = subscribe1("rb", "1000002");
  check(watched_on == 1 && !flosse_sub_synced(s), "backend: a new channel is watched, not synced yet", NULL);
  struct flosse_remote_msg hist[3] = {remote(1000001, "a"), remote(1000002, "b"), remote(1000003, "c")};
  flosse_channel_sync("rb", 2, hist, 3, 0, 1000000, 0, 1);
  char got[8][48];
  int k = drain(s, got, 8);
  check(woken == 1 && k == 1 && strcmp(got[0], "c") == 0,
        "backend: the sync wakes the subscription, which resumes from the mirror", NULL);
  struct flosse_remote_msg live[2] = {remote(1000003, "c"), remote(1000004, "d")};
  flosse_channel_sync("rb", 2, live, 2, 0, 1000000, 0, 0);
  k = drain(s, got, 8);
  check(k == 1 && strcmp(got[0], "d") == 0, "backend: what it had is not sent twice", NULL);
  struct flosse_sub *lag = subscribe1("rb", "1000006");
  struct flosse_remote_msg more[2] = {remote(1000005, "e"), remote(1000006, "f")};
  flosse_channel_sync("rb", 2, more, 2, 0, 1000000, 0, 0);
  k = drain(lag, got, 8);
  check(k == 0, "backend: a client ahead of this node skips what it has", NULL);
  struct flosse_sub *old = subscribe1("rb", "17");
  k = drain(old, got, 8);
  check(k >= 1 && strcmp(got[0], "gap:rb") == 0, "backend: an id from an earlier epoch is a gap", NULL);
  unsubscribe(old);
  struct flosse_remote_msg next[1] = {remote(2000001, "new epoch")};
  drain(s, got, 8);
  flosse_channel_sync("rb", 2, next, 1, 0, 2000000, 0, 1);
  k = drain(s, got, 8);
  check(k == 2 && strcmp(got[0], "gap:rb") == 0 && strcmp(got[1], "new epoch") == 0,
        "backend: a new epoch tells live subscribers, then goes on", got[0]);
  unsubscribe(lag);
  unsubscribe(s);
  check(watched_off == 1 && !flosse_channel_exists("rb", 2),
        "backend: the last subscriber leaving frees the channel and unwatches it", NULL);

  /* A live-only subscription made at 10.0 (its head may have gone out
   * already, Redis being away): the first read brings it what came after. */
  struct flosse_sub *fresh = subscribe1("rc", NULL);
  struct flosse_remote_msg first[3] = {remote(3000001, "before"), remote(3000002, "after"), remote(3000003, "later")};
  first[0].time = 9.0;
  first[1].time = 10.5;
  first[2].time = 11.0;
  woken = 0;
  flosse_sync_wait_probe = flosse_sub_synced(fresh);
  flosse_channel_sync("rc", 2, first, 3, 0, 3000000, 0, 1);
  k = drain(fresh, got, 8);
  check(!flosse_sync_wait_probe && woken == 1 && k == 2 && strcmp(got[0], "after") == 0 && strcmp(got[1], "later") == 0,
        "backend: a first read gives a live subscription what was published after it was made", NULL);
  unsubscribe(fresh);
  flosse_channel_set_backend(NULL);
}

struct each_seen { size_t channels, subs; };
static void each_count(const char *name, size_t len, size_t subscribers, void *ud) {
  struct each_seen *seen = ud;
  seen->channels += strlen(name) == len;
  seen->subs += subscribers;
}

static void test_channels(void) {
  struct flosse_channel_config cfg = {3, 0, 2, FLOSSE_DEFAULT_MAX_CHANNELS};
  flosse_channel_configure(&cfg);
  check(!flosse_channel_name_ok("x\ny", 3) && !flosse_channel_name_ok("", 0), "bad channel names", NULL);
  size_t n;
  struct flosse_msg *m1 = publish_text("a", "one", NULL, 1.0, &n);
  char want[64];
  snprintf(want, sizeof want, "data: one\nid: %s\n\n", m1->id);
  check(m1 && n == 0 && m1->frame_len == strlen(want) &&
            memcmp(m1->seg->data + m1->frame_off, want, m1->frame_len) == 0,
        "a message is framed once, with an assigned id", want);
  char head[16];
  int hl = snprintf(head, sizeof head, "%x\r\n", (unsigned)m1->frame_len);
  check((int)m1->frame_off == hl && memcmp(m1->seg->data, head, (size_t)hl) == 0 &&
            memcmp(m1->seg->data + m1->seg->len - 2, "\r\n", 2) == 0,
        "the shared segment is the whole chunk: size line, frame, CRLF", NULL);
  uint64_t first = m1->seq;
  publish_text("b", "b1", NULL, 2.0, &n);
  publish_text("a", "two", "custom", 3.0, &n);
  publish_text("a", "three", NULL, 4.0, &n);
  publish_text("a", "four", NULL, 5.0, &n); /* history 3: "one" falls out */
  check(flosse_channel_exists("a", 1) && flosse_channel_exists("b", 1) && !flosse_channel_exists("zz", 2),
        "channels are found by name", NULL);

  const char *both[2] = {"a", "b"};
  size_t both_len[2] = {1, 1};
  struct flosse_sub *s = calloc(1, flosse_sub_size(2));
  flosse_sub_init(s, &fake_owner, both, both_len, 2, "custom", 6.0);
  struct flosse_chan *a = s->refs[0].chan, *b = s->refs[1].chan;
  check(a->hist_len == 3, "history keeps the last N", NULL);
  struct flosse_msg *r1 = flosse_sub_pop(s), *r2 = flosse_sub_pop(s), *r3 = flosse_sub_pop(s);
  check(r1 && r2 && !r3 && strcmp(r1->data, "three") == 0 && strcmp(r2->data, "four") == 0,
        "Last-Event-ID replays exactly what came after it", NULL);
  flosse_msg_unref(r1);
  flosse_msg_unref(r2);
  struct flosse_sub *s2 = calloc(1, flosse_sub_size(2));
  char num[24];
  snprintf(num, sizeof num, "%llu", (unsigned long long)first);
  flosse_sub_init(s2, &fake_owner, both, both_len, 2, num, 6.0);
  int replayed = 0;
  uint64_t last = 0;
  int ordered = 1;
  for (struct flosse_msg *m; (m = flosse_sub_pop(s2)) != NULL; replayed++) {
    if (m->seq <= last) ordered = 0;
    last = m->seq;
    flosse_msg_unref(m);
  }
  check(replayed == 4 && ordered, "a numeric id older than the history replays what is left, in order", NULL);
  flosse_sub_close(s2);
  free(s2);

  s->waiting = 1;
  woken = dropped = 0;
  publish_text("b", "live", NULL, 7.0, &n);
  check(n == 1 && woken == 1 && s->qlen == 1, "a live event is queued and wakes the waiting stream", NULL);
  publish_text("a", "x", NULL, 8.0, &n);
  publish_text("a", "y", NULL, 9.0, &n); /* backlog 2: overflow */
  check(dropped == 1, "a subscriber over its backlog is dropped", NULL);
  struct flosse_msg *held = flosse_sub_pop(s);
  uint32_t refs = held->refs;
  flosse_sub_close(s);
  check(a->subs.next == &a->subs && b->subs.next == &b->subs, "closing unlinks from every channel", NULL);
  check(flosse_channel_count() == 2, "channels with history outlive their subscribers", NULL);
  struct each_seen seen = {0, 0};
  check(flosse_channel_each(each_count, &seen) == 2 && seen.channels == 2 && seen.subs == 0,
        "channel_each visits every channel with its subscriptions", NULL);
  check(held->refs == refs, "closing drops only what the subscription held", NULL);
  flosse_msg_unref(held);
  free(s);
  /* Drop them: history_seconds set, everything old, nobody subscribed. */
  struct flosse_channel_config expire = {100, 1, 1000, FLOSSE_DEFAULT_MAX_CHANNELS};
  flosse_channel_configure(&expire);
  flosse_channel_sweep(100.0);
  check(flosse_channel_count() == 0, "expired channels are freed by the sweep", NULL);
  struct flosse_channel_config def = {100, 0, 1000, FLOSSE_DEFAULT_MAX_CHANNELS};
  flosse_channel_configure(&def);
}


/* Runs chunk in L; returns its integer result, or -1 with the error in err. */
static long long run_lua(lua_State *L, const char *chunk, char *err, size_t errlen) {
  if (luaL_dostring(L, chunk) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  long long v = (long long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A workload that makes, grows, shrinks and drops objects of every size:
 * tables growing past the small classes, strings of 1 to 1,000 bytes. */
static const char *CHURN =
    "local keep, sum = {}, 0\n"
    "for round = 1, 20 do\n"
    "  for i = 1, 500 do\n"
    "    local t = {}\n"
    "    for k = 1, (i % 70) do t[k] = k; t['k' .. k] = ('x'):rep(k * 14) end\n"
    "    keep[(i * 7 + round) % 300 + 1] = t\n"
    "  end\n"
    "  collectgarbage()\n"
    "end\n"
    "for _, t in pairs(keep) do for k = 1, #t do sum = sum + t[k] + #t['k' .. k] end end\n"
    "return sum";

static void test_lalloc(void) {
  char err[256] = "", detail[512];
  setenv("FLOSSE_LUA_POOL", "1", 1); /* on even under AddressSanitizer, for this test */
  lua_State *L = flosse_lalloc_newstate();
  luaL_openlibs(L);
  long long want = 0;
  {
    /* the same workload on a state with the stock allocator */
    lua_State *R = luaL_newstate();
    luaL_openlibs(R);
    want = run_lua(R, CHURN, err, sizeof err);
    lua_close(R);
  }
  long long got = run_lua(L, CHURN, err, sizeof err);
  snprintf(detail, sizeof detail, "got %lld, want %lld (%s)", got, want, err);
  check(want > 0 && got == want, "lalloc: a pooled state computes what a stock one does", detail);
  struct flosse_lalloc *a = flosse_lalloc_of(L);
  size_t lua_count = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
  snprintf(detail, sizeof detail, "allocator %zu, Lua %zu", flosse_lalloc_used(a), lua_count);
  check(flosse_lalloc_used(a) == lua_count, "lalloc: counts the bytes Lua counts", detail);

  /* the cap: a view over it gets "not enough memory"; the state goes on */
  flosse_lalloc_limit(a, flosse_lalloc_used(a) + 256 * 1024);
  flosse_lalloc_enforce(a, 1);
  long long r = run_lua(L, "local ok, e = pcall(function() local t = {} for i = 1, 1e6 do t[i] = i end end)\n"
                           "return (not ok and tostring(e):find('not enough memory')) and 1 or 0",
                        err, sizeof err);
  flosse_lalloc_enforce(a, 0);
  flosse_lalloc_limit(a, 0);
  snprintf(detail, sizeof detail, "got %lld (%s)", r, err);
  check(r == 1, "lalloc: over the cap, an allocation fails as a Lua memory error", detail);
  got = run_lua(L, CHURN, err, sizeof err);
  check(got == want, "lalloc: the state works after a memory error", err);
  flosse_lalloc_close_state(L);

  /* installed on a state that already holds objects (the interpreter's) */
  lua_State *M = luaL_newstate();
  luaL_openlibs(M);
  run_lua(M, "old = {} for i = 1, 200 do old[i] = ('y'):rep(i) end return 0", err, sizeof err);
  flosse_lalloc_of(M);
  got = run_lua(M, "for i = 1, 200, 2 do old[i] = nil end\n"
                   "for i = 201, 2000 do old[i] = ('z'):rep(i % 600) end\n"
                   "collectgarbage() local n = 0 for _, v in pairs(old) do n = n + #v end return n",
                err, sizeof err);
  long long expect = 0;
  for (int i = 2; i <= 200; i += 2) expect += i;
  for (int i = 201; i <= 2000; i++) expect += i % 600;
  snprintf(detail, sizeof detail, "got %lld, want %lld (%s)", got, expect, err);
  check(got == expect, "lalloc: blocks from before the pool are freed and resized by the old allocator",
        detail);
  lua_close(M);
  unsetenv("FLOSSE_LUA_POOL");
}

/* HTTP/2 requests: the fields nghttp2 decoded, under the same limits. */
static void test_http_h2(void) {
  struct flosse_http h;
  char v[128];
  flosse_http_init(&h, &limits);
  check(flosse_http_h2_field(&h, ":method", 7, "POST", 4) == 0 && h.parser.method == HTTP_POST, "h2 :method", NULL);
  check(flosse_http_h2_field(&h, ":scheme", 7, "https", 5) == 0 && h.nheaders == 0, "h2 :scheme is not a header", NULL);
  check(flosse_http_h2_field(&h, ":path", 5, "/a?b=1", 6) == 0 && h.url.len == 6 &&
            memcmp(flosse_http_str(&h, h.url), "/a?b=1", 6) == 0, "h2 :path is the url", NULL);
  check(flosse_http_h2_field(&h, ":authority", 10, "x.test", 6) == 0 && header(&h, "host", v, sizeof v) &&
            strcmp(v, "x.test") == 0, "h2 :authority is host", NULL);
  check(flosse_http_h2_field(&h, "last-event-id", 13, "7", 1) == 0 && header(&h, "last-event-id", v, sizeof v) &&
            strcmp(v, "7") == 0, "h2 header", NULL);
  check(flosse_http_h2_body(&h, "0123456789", 10) == 0 && flosse_http_h2_body(&h, "abcdef", 6) == 0 &&
            h.body.len == 16, "h2 body up to max_body", NULL);
  check(flosse_http_h2_body(&h, "z", 1) == -1 && h.status == 413, "h2 body over max_body: 413", NULL);
  check(flosse_http_h2_field(&h, "x", 1, "y", 1) == -1 && h.status == 413, "nothing more is kept once refused", NULL);
  flosse_http_h2_done(&h);
  check(h.done && h.parser.http_major == 2 && h.parser.http_minor == 0, "h2 version 2.0", NULL);
  flosse_http_free(&h);

  flosse_http_init(&h, &limits);
  check(flosse_http_h2_field(&h, ":method", 7, "BREW", 4) == -1 && h.status == 400, "h2 unknown method: 400, as HTTP/1.1", NULL);
  flosse_http_free(&h);

  flosse_http_init(&h, &limits);
  char big[600];
  memset(big, 'a', sizeof big);
  check(flosse_http_h2_field(&h, ":path", 5, big, 65) == -1 && h.status == 414, "h2 :path over max_url: 414", NULL);
  flosse_http_free(&h);

  flosse_http_init(&h, &limits);
  int rc = 0;
  for (int i = 0; i < 20 && rc == 0; i++) rc = flosse_http_h2_field(&h, "x-pad", 5, big, 40);
  check(rc == -1 && h.status == 431, "h2 header block over max_header: 431", NULL);
  flosse_http_free(&h);

  struct flosse_http_limits roomy = {8192, 1 << 20, 16};
  flosse_http_init(&h, &roomy);
  rc = 0;
  for (int i = 0; i <= FLOSSE_HTTP_MAX_HEADERS && rc == 0; i++) rc = flosse_http_h2_field(&h, "x", 1, "y", 1);
  check(rc == -1 && h.status == 431, "h2 too many headers: 431", NULL);
  flosse_http_free(&h);
}

int main(void) {
  test_buf();
  test_sse();
  test_sse_flat();
  test_http();
  test_http_strict();
  test_http_h2();
  test_framing();
  test_rbuf();
  test_channels();
  test_channel_registry();
  test_channel_gaps();
  test_channel_backend();
  test_lalloc();
  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
