/* fuzz-sources: core/sse.c core/buf.c core/response.c  fuzz-libs: */
/* libFuzzer harness for the SSE framer (core/sse.c): flosse_sse_check,
 * flosse_sse_frame_len, flosse_sse_frame_flat, flosse_sse_chunk,
 * flosse_sse_frame, flosse_response_chunk_head and flosse_sse_comment.
 *
 * Input: a flags byte (bit 0: an event name, 1: data, 2: an id, 3: a retry,
 * 4: a negative retry, which means none), 8 bytes of retry (and of a length
 * for flosse_response_chunk_head), the event name's and the id's lengths (one byte
 * each), then the event name, the id, and the rest as data.
 *
 * Invariants: the check fails exactly when the event name or the id holds
 * CR, LF or NUL, and then nothing is framed. When it passes, the frame, read
 * by the EventSource parser below (the WHATWG HTML "event stream
 * interpretation"), is one block of lines ended by its only blank line:
 * exactly the requested event name, id and retry, one data line per line of
 * data, no other field, comment or line, and it dispatches exactly one event
 * whose data is the requested data with its line breaks (CRLF, CR, LF) made
 * LF (none when there is no data: a block without data dispatches nothing);
 * frame_len is the number of bytes frame_flat writes (into a buffer of
 * exactly that size, so ASan sees any byte past it); the chunk is "<hex
 * len>\r\n" + the same frame + "\r\n"; flosse_sse_frame queues the same
 * bytes. A comment frame is ":" + text + "\n\n", refused for CR, LF or NUL,
 * and dispatches nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../core/response.h"
#include "../../core/sse.h"

#define FAIL(...)                   \
  do {                              \
    fprintf(stderr, "sse_fuzz: ");  \
    fprintf(stderr, __VA_ARGS__);   \
    fputc('\n', stderr);            \
    abort();                        \
  } while (0)

/* What an EventSource makes of a stream, byte by byte (the spec decodes
 * UTF-8 first; that changes no CR or LF, and a frame never starts with the
 * BOM it would drop). */
struct es {
  /* buffers, as in the spec */
  char *data;
  size_t data_len, data_cap;
  char *type;
  size_t type_len;
  char *last_id;
  size_t last_id_len;
  int id_set;
  char *retry;    /* the last retry value taken (ASCII digits only) */
  size_t retry_len;
  int retry_set;
  /* what the harness counts */
  int events;     /* events dispatched */
  char *ev_data;  /* the last dispatched event's data and type */
  size_t ev_data_len;
  char *ev_type;
  size_t ev_type_len;
  int n_event, n_data, n_id, n_retry, n_comment, n_other, n_blank;
  int after_blank; /* a line after a blank line */
};

static void set(char **dst, size_t *dst_len, const char *p, size_t n) {
  free(*dst);
  *dst = malloc(n + 1);
  if (!*dst) abort();
  memcpy(*dst, p, n);
  *dst_len = n;
}

/* Appends to a buffer grown by doubling (a data line per line of data). */
static void append(char **dst, size_t *dst_len, size_t *cap, const char *p, size_t n) {
  if (*dst_len + n + 1 > *cap) {
    size_t ncap = *cap ? *cap : 64;
    while (ncap < *dst_len + n + 1) ncap *= 2;
    char *d = realloc(*dst, ncap);
    if (!d) abort();
    *dst = d;
    *cap = ncap;
  }
  memcpy(*dst + *dst_len, p, n);
  *dst_len += n;
}

static void es_free(struct es *s) {
  free(s->data);
  free(s->type);
  free(s->last_id);
  free(s->retry);
  free(s->ev_data);
  free(s->ev_type);
}

static void es_dispatch(struct es *s) {
  /* "If the data buffer is an empty string, set the data buffer and the
   * event type buffer to the empty string and return." */
  if (s->data_len == 0) {
    s->type_len = 0;
    return;
  }
  /* "If the data buffer's last character is a U+000A LINE FEED (LF)
   * character, then remove the last character from the data buffer." */
  size_t n = s->data_len;
  if (s->data[n - 1] == '\n') n--;
  s->events++;
  set(&s->ev_data, &s->ev_data_len, s->data ? s->data : "", n);
  set(&s->ev_type, &s->ev_type_len, s->type ? s->type : "", s->type_len);
  s->data_len = 0;
  s->type_len = 0;
}

static int all_digits(const char *p, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (p[i] < '0' || p[i] > '9') return 0;
  return 1;
}

static void es_line(struct es *s, const char *line, size_t n) {
  if (s->n_blank) s->after_blank = 1;
  if (n == 0) {
    s->n_blank++;
    es_dispatch(s);
    return;
  }
  if (line[0] == ':') {
    s->n_comment++;
    return;
  }
  const char *colon = memchr(line, ':', n);
  size_t name_len = colon ? (size_t)(colon - line) : n;
  const char *value = colon ? colon + 1 : line + n;
  size_t value_len = colon ? n - name_len - 1 : 0;
  if (value_len && value[0] == ' ') {
    value++;
    value_len--;
  }
  if (name_len == 5 && memcmp(line, "event", 5) == 0) {
    s->n_event++;
    set(&s->type, &s->type_len, value, value_len);
  } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
    s->n_data++;
    append(&s->data, &s->data_len, &s->data_cap, value, value_len);
    append(&s->data, &s->data_len, &s->data_cap, "\n", 1);
  } else if (name_len == 2 && memcmp(line, "id", 2) == 0) {
    s->n_id++;
    if (!memchr(value, '\0', value_len)) {
      set(&s->last_id, &s->last_id_len, value, value_len);
      s->id_set = 1;
    }
  } else if (name_len == 5 && memcmp(line, "retry", 5) == 0) {
    s->n_retry++;
    if (all_digits(value, value_len)) {
      set(&s->retry, &s->retry_len, value, value_len);
      s->retry_set = 1;
    }
  } else {
    s->n_other++;
  }
}

/* Lines end at CRLF, LF or CR. A stream that ends inside a line leaves it
 * unprocessed (it would wait for more bytes). Returns the bytes left over. */
static size_t es_feed(struct es *s, const char *p, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\r' && p[i] != '\n') continue;
    es_line(s, p + start, i - start);
    if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') i++;
    start = i + 1;
  }
  return n - start;
}

static int has_crlfnul(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0') return 1;
  return 0;
}

/* data with every CRLF, CR and LF made LF */
static char *normalised(const char *d, size_t n, size_t *out_len) {
  char *out = malloc(n + 1);
  if (!out) abort();
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (d[i] == '\r') {
      out[k++] = '\n';
      if (i + 1 < n && d[i + 1] == '\n') i++;
    } else {
      out[k++] = d[i];
    }
  }
  *out_len = k;
  return out;
}

static size_t line_breaks(const char *d, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (d[i] == '\r' && i + 1 < n && d[i + 1] == '\n') i++;
    if (d[i] == '\r' || d[i] == '\n') k++;
  }
  return k;
}

static int same(const char *a, size_t an, const char *b, size_t bn) {
  return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static char *flatten(const struct flosse_buf *b) {
  char *s = malloc(b->len + 1);
  if (!s) abort();
  struct iovec iov[64];
  int n = flosse_buf_iov(b, iov, 64);
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    memcpy(s + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  if (off != b->len) FAIL("buf holds %zu bytes, its iovecs %zu", b->len, off);
  return s;
}

/* "<hex>\r\n": lowercase, no leading zero, the value given. */
static void check_chunk_head(size_t len) {
  char head[20];
  size_t n = flosse_response_chunk_head(head, len);
  if (n < 3 || n > 18) FAIL("chunk head of %zu bytes for %zu", n, len);
  if (head[n - 2] != '\r' || head[n - 1] != '\n') FAIL("chunk head for %zu not ended by CRLF", len);
  if (n > 3 && head[0] == '0') FAIL("chunk head for %zu with a leading zero", len);
  size_t v = 0;
  for (size_t i = 0; i < n - 2; i++) {
    char c = head[i];
    if (c >= '0' && c <= '9') v = v * 16 + (size_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + (size_t)(c - 'a' + 10);
    else FAIL("chunk head for %zu holds %#x", len, (unsigned char)c);
  }
  if (v != len) FAIL("chunk head for %zu reads %zu", len, v);
}

static void check_comment(const char *text, size_t len) {
  struct flosse_buf b;
  flosse_buf_init(&b);
  int rc = flosse_sse_comment(&b, text, len);
  if (has_crlfnul(text, len)) {
    if (rc == FLOSSE_OK) FAIL("a comment with CR, LF or NUL framed");
    if (b.len) FAIL("a refused comment left %zu bytes queued", b.len);
  } else {
    if (rc != FLOSSE_OK) FAIL("a comment refused");
    char *s = flatten(&b);
    if (b.len != len + 3 || s[0] != ':' || memcmp(s + 1, text, len) != 0 || memcmp(s + 1 + len, "\n\n", 2))
      FAIL("comment frame is not \":\" + text + \"\\n\\n\"");
    struct es es = {0};
    if (es_feed(&es, s, b.len)) FAIL("comment frame ends inside a line");
    if (es.n_comment != 1 || es.n_blank != 1 || es.events || es.n_event || es.n_data || es.n_id ||
        es.n_retry || es.n_other)
      FAIL("a comment frame read as more than a comment");
    es_free(&es);
    /* The flat form (heartbeats) is the same bytes when it fits, nothing when not. */
    char flat[64];
    size_t fn = flosse_sse_comment_flat(flat, sizeof flat, text, len);
    if (len + 3 <= sizeof flat ? fn != b.len || memcmp(flat, s, fn) : fn != 0)
      FAIL("the flat comment frame differs from the buffered one");
    free(s);
  }
  if (has_crlfnul(text, len) && flosse_sse_comment_flat((char[64]){0}, 64, text, len))
    FAIL("a flat comment with CR, LF or NUL framed");
  flosse_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  if (size < 11) return 0;
  unsigned flags = in[0];
  uint64_t raw = 0;
  for (int i = 0; i < 8; i++) raw |= (uint64_t)in[1 + i] << (8 * i);
  const char *rest = (const char *)in + 11;
  size_t left = size - 11;
  size_t elen = in[9] < left ? in[9] : left;
  const char *event = rest;
  rest += elen;
  left -= elen;
  size_t ilen = in[10] < left ? in[10] : left;
  const char *id = rest;
  rest += ilen;
  left -= ilen;
  const char *data = rest;
  size_t dlen = left;

  check_chunk_head((size_t)raw);
  check_chunk_head(dlen);
  check_comment(event, elen);

  /* Each field present or NULL; a present field may be empty. The pointers
   * point into the fuzzer's buffer, so a read past a field is a read of
   * another field, not an ASan report: copy each to its own allocation. */
  char *ev_p = NULL, *id_p = NULL, *data_p = NULL;
  if (flags & 1) {
    ev_p = malloc(elen ? elen : 1);
    memcpy(ev_p, event, elen);
  }
  if (flags & 4) {
    id_p = malloc(ilen ? ilen : 1);
    memcpy(id_p, id, ilen);
  }
  if (flags & 2) {
    data_p = malloc(dlen ? dlen : 1);
    memcpy(data_p, data, dlen);
  }
  struct flosse_sse_event ev = {
      .event = ev_p, .event_len = ev_p ? elen : 0,
      .data = data_p, .data_len = data_p ? dlen : 0,
      .id = id_p, .id_len = id_p ? ilen : 0,
      .retry = -1,
  };
  if (flags & 8) ev.retry = (long long)(raw & INT64_MAX);
  if (flags & 16) ev.retry = (long long)(raw | ((uint64_t)1 << 63)); /* negative: no retry */

  char err[128] = "";
  int rc = flosse_sse_check(&ev, err, sizeof err);
  int bad = (ev.event && has_crlfnul(ev.event, ev.event_len)) || (ev.id && has_crlfnul(ev.id, ev.id_len));
  struct flosse_buf b;
  flosse_buf_init(&b);
  char err2[128] = "";
  int rc2 = flosse_sse_frame(&b, &ev, err2, sizeof err2);
  if (rc != FLOSSE_OK) {
    if (!bad) FAIL("check refused an event name and id without CR, LF or NUL: %s", err);
    if (!err[0]) FAIL("check failed without a message");
    if (rc2 == FLOSSE_OK || b.len) FAIL("flosse_sse_frame framed what the check refused");
    goto done;
  }
  if (bad) FAIL("check passed an event name or id with CR, LF or NUL");
  if (rc2 != FLOSSE_OK) FAIL("flosse_sse_frame failed on a checked event: %s", err2);

  size_t len = flosse_sse_frame_len(&ev);
  char *frame = malloc(len ? len : 1); /* exactly len: ASan sees a byte past it */
  if (!frame) abort();
  size_t wrote = flosse_sse_frame_flat(frame, &ev);
  if (wrote != len) FAIL("frame_len %zu, frame_flat wrote %zu", len, wrote);

  struct es es = {0};
  if (es_feed(&es, frame, len)) FAIL("the frame ends inside a line");
  if (es.n_blank != 1 || es.after_blank) FAIL("%d blank lines, or a line after the blank one", es.n_blank);
  if (es.n_comment || es.n_other) FAIL("a comment or an unknown field in the frame");
  if (es.n_event != (ev.event ? 1 : 0)) FAIL("%d event lines", es.n_event);
  if (es.n_id != (ev.id ? 1 : 0) || es.id_set != (ev.id ? 1 : 0)) FAIL("%d id lines", es.n_id);
  if (es.n_retry != (ev.retry >= 0 ? 1 : 0) || es.retry_set != (ev.retry >= 0 ? 1 : 0))
    FAIL("%d retry lines (retry %lld)", es.n_retry, ev.retry);
  if (ev.id && !same(es.last_id, es.last_id_len, ev.id, ev.id_len)) FAIL("the id read back differs");
  if (ev.retry >= 0) {
    char want[32];
    int n = snprintf(want, sizeof want, "%lld", ev.retry);
    if (!same(es.retry, es.retry_len, want, (size_t)n)) FAIL("retry %s read back as %.*s", want, (int)es.retry_len, es.retry);
  }
  if (ev.data) {
    size_t nlen;
    char *norm = normalised(ev.data, ev.data_len, &nlen);
    if ((size_t)es.n_data != line_breaks(ev.data, ev.data_len) + 1)
      FAIL("%d data lines for %zu line breaks", es.n_data, line_breaks(ev.data, ev.data_len));
    if (es.events != 1) FAIL("%d events dispatched", es.events);
    if (!same(es.ev_data, es.ev_data_len, norm, nlen)) FAIL("the data read back differs");
    /* An event line sets the type; a frame without one leaves it empty
     * ("message"). */
    if (!same(es.ev_type, es.ev_type_len, ev.event ? ev.event : "", ev.event ? ev.event_len : 0))
      FAIL("the event name read back differs");
    free(norm);
  } else {
    if (es.n_data || es.events) FAIL("data lines or an event for an event without data");
  }
  es_free(&es);

  uint32_t off = 0, flen = 0;
  struct flosse_seg *seg = flosse_sse_chunk(&ev, &off, &flen);
  if (!seg) FAIL("flosse_sse_chunk: out of memory");
  char head[20];
  size_t hl = flosse_response_chunk_head(head, len);
  if (seg->len != hl + len + 2 || seg->len > seg->cap) FAIL("chunk of %u bytes (cap %u) for a %zu-byte frame", seg->len, seg->cap, len);
  if (off != hl || flen != len) FAIL("chunk's frame at %u, %u bytes; want %zu, %zu", off, flen, hl, len);
  if (memcmp(seg->data, head, hl) != 0 || memcmp(seg->data + hl, frame, len) != 0 ||
      memcmp(seg->data + hl + len, "\r\n", 2) != 0)
    FAIL("chunk is not <hex len> CRLF frame CRLF");
  flosse_seg_release(seg);

  char *queued = flatten(&b);
  if (!same(queued, b.len, frame, len)) FAIL("flosse_sse_frame queued other bytes than frame_flat wrote");
  free(queued);
  free(frame);
done:
  flosse_buf_free(&b);
  free(ev_p);
  free(id_p);
  free(data_p);
  return 0;
}
