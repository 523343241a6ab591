#include "sse.h"

#include "response.h"

#include <stdio.h>
#include <string.h>

int flosse_sse_field_ok(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (s[i] == '\n' || s[i] == '\r' || s[i] == '\0') return 0;
  return 1;
}

#define FAIL(...) do { snprintf(errbuf, errlen, __VA_ARGS__); return FLOSSE_ERR; } while (0)

int flosse_sse_check(const struct flosse_sse_event *ev, char *errbuf, size_t errlen) {
  if (ev->event && !flosse_sse_field_ok(ev->event, ev->event_len))
    FAIL("event name contains CR, LF or NUL");
  if (ev->id && !flosse_sse_field_ok(ev->id, ev->id_len))
    FAIL("event id contains CR, LF or NUL");
  return FLOSSE_OK;
}

struct flosse_seg *flosse_sse_chunk(const struct flosse_sse_event *ev, uint32_t *frame_off,
                                    uint32_t *frame_len) {
  size_t len = flosse_sse_frame_len(ev);
  struct flosse_seg *seg = flosse_seg_new(len + FLOSSE_RESPONSE_CHUNK_EXTRA);
  if (!seg) return NULL;
  size_t hl = flosse_response_chunk_open(seg->data, len, 1);
  flosse_sse_frame_flat(seg->data + hl, ev);
  seg->len = (uint32_t)(hl + len + flosse_response_chunk_close(seg->data + hl + len, 1));
  *frame_off = (uint32_t)hl;
  *frame_len = (uint32_t)len;
  return seg;
}

int flosse_sse_frame(struct flosse_buf *out, const struct flosse_sse_event *ev,
                     char *errbuf, size_t errlen) {
  if (flosse_sse_check(ev, errbuf, errlen) != FLOSSE_OK) return FLOSSE_ERR;
  uint32_t off, len;
  struct flosse_seg *seg = flosse_sse_chunk(ev, &off, &len);
  int rc = seg ? flosse_buf_append_range(out, seg, off, len) : FLOSSE_ERR;
  flosse_seg_release(seg);
  if (rc != FLOSSE_OK) FAIL("out of memory");
  return FLOSSE_OK;
}

size_t flosse_sse_comment_flat(char *dst, size_t cap, const char *text, size_t len) {
  if (len + 3 > cap || !flosse_sse_field_ok(text, len)) return 0;
  dst[0] = ':';
  memcpy(dst + 1, text, len);
  dst[len + 1] = '\n';
  dst[len + 2] = '\n';
  return len + 3;
}

int flosse_sse_comment(struct flosse_buf *out, const char *text, size_t len) {
  if (!flosse_sse_field_ok(text, len)) return FLOSSE_ERR;
  if (flosse_buf_append(out, ":", 1) != FLOSSE_OK) return FLOSSE_ERR;
  if (flosse_buf_append(out, text, len) != FLOSSE_OK) return FLOSSE_ERR;
  return flosse_buf_append(out, "\n\n", 2);
}

static size_t dec_len(long long v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

size_t flosse_sse_frame_len(const struct flosse_sse_event *ev) {
  size_t n = 1; /* the blank line */
  if (ev->event) n += 7 + ev->event_len + 1;
  if (ev->data) {
    size_t lines = 1;
    const char *d = ev->data;
    for (size_t i = 0; i < ev->data_len; i++) {
      if (d[i] != '\n' && d[i] != '\r') continue;
      if (d[i] == '\r' && i + 1 < ev->data_len && d[i + 1] == '\n') {
        i++;
        n--; /* a CRLF is one line break */
      }
      n--; /* the break itself is not written: each line gets its own "\n" */
      lines++;
    }
    n += ev->data_len + lines * 7; /* "data: " and "\n" per line */
  }
  if (ev->id) n += 4 + ev->id_len + 1;
  if (ev->retry >= 0) n += 7 + dec_len(ev->retry) + 1;
  return n;
}

static char *put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return p + n;
}

size_t flosse_sse_frame_flat(char *dst, const struct flosse_sse_event *ev) {
  char *p = dst;
  if (ev->event) {
    p = put(p, "event: ", 7);
    p = put(p, ev->event, ev->event_len);
    *p++ = '\n';
  }
  if (ev->data) {
    const char *d = ev->data;
    size_t start = 0, len = ev->data_len;
    for (size_t i = 0; i < len; i++) {
      if (d[i] != '\n' && d[i] != '\r') continue;
      p = put(p, "data: ", 6);
      p = put(p, d + start, i - start);
      *p++ = '\n';
      if (d[i] == '\r' && i + 1 < len && d[i + 1] == '\n') i++;
      start = i + 1;
    }
    p = put(p, "data: ", 6);
    p = put(p, d + start, len - start);
    *p++ = '\n';
  }
  if (ev->id) {
    p = put(p, "id: ", 4);
    p = put(p, ev->id, ev->id_len);
    *p++ = '\n';
  }
  if (ev->retry >= 0) {
    p = put(p, "retry: ", 7);
    size_t k = dec_len(ev->retry);
    long long v = ev->retry;
    for (size_t i = k; i-- > 0; v /= 10) p[i] = (char)('0' + v % 10);
    p += k;
    *p++ = '\n';
  }
  *p++ = '\n';
  return (size_t)(p - dst);
}
