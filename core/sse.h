/* SSE framing: pure functions from field values to wire bytes.
 * No sockets and no Lua here, so the framer can be unit-tested and fuzzed. */
#ifndef FLOSSE_SSE_H
#define FLOSSE_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct flosse_sse_event {
  const char *event; size_t event_len; /* NULL: no event line */
  const char *data;  size_t data_len;  /* NULL: no data lines */
  const char *id;    size_t id_len;    /* NULL: no id line */
  long long retry;                     /* < 0: no retry line */
};

/* Returns 1 if s can be an event name or id: no CR, LF or NUL, which is what
 * keeps a value from injecting a line into the stream. */
int flosse_sse_field_ok(const char *s, size_t len);

/* FLOSSE_OK if ev's event name and id are safe to frame; else FLOSSE_ERR
 * with errbuf filled. Every framing function below assumes a checked ev. */
int flosse_sse_check(const struct flosse_sse_event *ev, char *errbuf, size_t errlen);

/* Appends the frame for ev to out: event, one data line per line of data
 * (split on CRLF, CR and LF), id, retry, then the blank line. Checks ev
 * first. Returns FLOSSE_OK, or FLOSSE_ERR with errbuf filled (an unsafe
 * field or no memory) and nothing appended. */
int flosse_sse_frame(struct flosse_buf *out, const struct flosse_sse_event *ev,
                     char *errbuf, size_t errlen);

/* A new segment holding ev's frame as one HTTP chunk ("<hex>\r\n" frame
 * "\r\n"); the bare frame is at *frame_off, *frame_len bytes. NULL when out
 * of memory. */
struct flosse_seg *flosse_sse_chunk(const struct flosse_sse_event *ev, uint32_t *frame_off,
                                    uint32_t *frame_len);

/* Appends a comment frame (": text\n\n"); text must be a single line.
 * Heartbeats are such comments. */
int flosse_sse_comment(struct flosse_buf *out, const char *text, size_t len);
/* Writes the same frame to dst (room for cap bytes); returns its length,
 * or 0 when text is not one line or does not fit. */
size_t flosse_sse_comment_flat(char *dst, size_t cap, const char *text, size_t len);

/* The length of ev's frame. */
size_t flosse_sse_frame_len(const struct flosse_sse_event *ev);
/* Writes ev's frame to dst, which has room for flosse_sse_frame_len(ev)
 * bytes; returns that length. For small events: one copy, no buffer calls. */
size_t flosse_sse_frame_flat(char *dst, const struct flosse_sse_event *ev);



#endif
