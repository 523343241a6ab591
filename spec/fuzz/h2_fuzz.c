/* fuzz-sources: core/conn.c core/h2.c core/http.c core/framing.c core/buf.c core/rbuf.c core/response.c core/metrics.c core/tq.c core/loop.c core/inbox.c core/redact.c core/tls.c  fuzz-libs: -lev -lnghttp2 -lssl -lcrypto -lhttp_parser -lpthread -lm */
/* libFuzzer harness for the HTTP/2 transport (core/h2.c on core/conn.c) as
 * the server runs it: a real worker loop (flosse_loop on a fresh libev
 * loop, its run/flush/free queues), its connections (flosse_conns with
 * small limits and conns.h2 = &flosse_h2_ops), and one connection on a
 * socketpair whose other end is the client: the fuzzer's bytes are written
 * there a chunk per loop turn (chunks cut by a rule taken from the input,
 * so reads cut frames at odd places), and what the server writes is read
 * back, except in the turns the input says the client does not read (the
 * server's socket buffer is small: backpressure, flow control, the write
 * timeout).
 *
 * Input: 3 control bytes, then the client's byte stream (the HTTP/2 client
 * preface is put first unless it is there already, or the raw flag says
 * not to):
 *   [0] the chunk rule (low 2 bits: whole, bytes then blocks, 1-32, 1-512)
 *       and its seed; 0x80: the sockets keep their usual buffers (else
 *       4 KiB, so that the server's output backs up soon);
 *   [1] the stall mask: bit (turn / 4) % 8 set means the client does not
 *       read in that turn;
 *   [2] flags: bits 0-1 when the timeouts are made to expire (never, once
 *       half the input is written, after it all, every 16 turns); 0x04 the
 *       client half-closes after its last byte; 0x08 the server shuts down
 *       (graceful) once half the input is written; 0x10 raw (no preface
 *       added); 0x20 the client stops reading once its input is written;
 *       0x40 the bytes after the preface and the first frame (the client's
 *       SETTINGS) are repeated up to 192 KiB (so that floods of control
 *       frames are within reach); 0x80 the client
 *       closes its socket a few turns after its last byte (with a reset
 *       if the server's bytes are unread).
 *
 * The layer above is a stub with the real stream layer's moves: on a
 * request, by the path's second byte (after "/"), it answers at once
 * (flosse_conn_respond + flosse_conn_end_response), streams a body written
 * by the response writer (head, flosse_conn_begin_body, bytes +
 * flosse_conn_wrote, ended on a later turn, on drained, idle or shutdown),
 * writes more than the high-water mark and waits for drained, writes its
 * head in two turns, answers on a later turn, heartbeats, closes the stream
 * now or soon; c->up is its own struct, freed in closed. Timeouts expire on
 * demand: the members of the timeout queues are backdated and the queue's
 * timer is invoked, so that a unit runs the same way every time.
 *
 * Checked: no sanitizer report and no leak (every connection, stream,
 * reader and session freed once the connections stop); no "internal:" log
 * line (an illegal state move); every request handed up has its fields
 * and body inside the reader's store, within the limits, lowercase names;
 * every open count back to 0 and the stub's closed callback called for
 * every stream it held. What the server wrote, read as a client reads it:
 * SETTINGS first; whole frames of known types on the right streams (odd,
 * client-opened, for HEADERS, DATA and RST_STREAM; 0 for SETTINGS, PING,
 * GOAWAY), at most 16384 bytes; one HEADERS block per stream, which HPACK
 * decodes (nghttp2's inflater) to a 3-digit :status first and no other
 * pseudo-header, lowercase names, no connection-specific field; DATA only
 * after it and nothing after END_STREAM but RST_STREAM or WINDOW_UPDATE;
 * the stub's bodies arrive as written (a prefix of them until END_STREAM);
 * and a Content-Length matches the DATA of an ended stream whose request
 * (GET/POST, not HEAD) the stub answered. Only the last frame may be cut
 * short (the connection closed under it). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "../../core/conn.h"
#include "../../core/h2.h"
#include "../../core/log.h"
#include "../../core/loop.h"
#include "../../core/response.h"

#define FUZZ_CTYPE "application/x-fuzz"
#define MAX_TURNS 384
#define TAIL_TURNS 48

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "h2_fuzz: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

/* ---- the log (instead of core/log.c): every line formatted, none written;
 * an "internal:" line is a broken invariant ---------------------------------- */

int flosse_log_level = FLOSSE_LOG_DEBUG;
int flosse_log_json = 0;

void flosse_log_at(int level, const char *fmt, ...) {
  char line[1100];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (level == FLOSSE_LOG_ERROR && strncmp(line, "internal:", 9) == 0) fail("log line: %s", line);
}

void flosse_log_write(const char *fmt, ...) {
  char line[1100];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
}

void flosse_log_access(const char *remote, const char *reqline, int status, double took,
                       unsigned long events, unsigned long long bytes) {
  char line[1100];
  snprintf(line, sizeof line, "%s %s %d %.3f %lu %llu", remote, reqline ? reqline : "-", status, took,
           events, bytes);
}

/* ---- what the client saw: per stream, from the stub and from the wire ------ */

enum { S_HEADERS = 1, S_ENDED = 2, S_FUZZ_BODY = 4, S_ANSWERED = 8, S_HEAD = 16, S_HAS_LENGTH = 32 };

struct stream_rec {
  int32_t id; /* 0: free slot */
  unsigned flags;
  uint64_t data;   /* DATA bytes received */
  uint64_t length; /* its Content-Length */
};

#define NREC 2048 /* more streams than an input of 4 KiB can open */
static struct stream_rec recs[NREC];

static struct stream_rec *rec(int32_t id) {
  uint32_t h = ((uint32_t)id * 2654435761u) % NREC;
  for (int i = 0; i < NREC; i++, h = (h + 1) % NREC) {
    if (recs[h].id == id) return &recs[h];
    if (recs[h].id == 0) {
      recs[h].id = id;
      return &recs[h];
    }
  }
  fail("stream table full");
}

/* The bytes of the stub's bodies: byte k of stream id's body. */
static char pattern(int32_t id, uint64_t k) { return (char)('a' + ((uint64_t)id * 31 + k) % 26); }

/* ---- the stub layer above --------------------------------------------------- */

enum mode { M_RESPOND, M_EMPTY, M_STREAM, M_BIG, M_CLOSE, M_CLOSE_SOON, M_DEFER, M_HEARTBEAT,
            M_ECHO, M_HEAD_ONLY, M_SPLIT_HEAD, M_NMODES };

struct up {
  struct flosse_list link; /* in ups */
  struct flosse_conn *c;
  enum mode mode;
  int steps;    /* turns of work left */
  int wait;     /* turns to wait first */
  int waiting;  /* for drained */
  int ended;    /* its answer is complete */
  uint64_t sent;
};

static struct flosse_list ups;
static long nups;

static void put(struct up *u, size_t n) {
  char tmp[512];
  if (n > sizeof tmp) n = sizeof tmp;
  for (size_t i = 0; i < n; i++) tmp[i] = pattern(u->c->stream_id, u->sent + i);
  if (flosse_buf_append(&u->c->out, tmp, n) == FLOSSE_OK) u->sent += n;
}

static void head(struct up *u, int whole) {
  struct flosse_conn *c = u->c;
  struct flosse_response_conn rc = flosse_conn_response(c);
  if (whole) flosse_response_status(&c->out, 200);
  flosse_response_header(&c->out, "Content-Type", 12, FUZZ_CTYPE, strlen(FUZZ_CTYPE));
  flosse_response_header(&c->out, "Cache-Control", 13, "no-cache", 8);
  flosse_response_end_head(&c->out, FLOSSE_BODY_CLOSE, 0, &rc);
}

static void end(struct up *u) {
  u->ended = 1;
  flosse_conn_end_response(u->c);
}

/* An answer with a body of n pattern bytes, at once. */
static void respond(struct up *u, int status, size_t n) {
  char body[600];
  if (n > sizeof body) n = sizeof body;
  for (size_t i = 0; i < n; i++) body[i] = pattern(u->c->stream_id, i);
  u->sent = n;
  flosse_conn_respond(u->c, status, FUZZ_CTYPE, body, n);
  end(u);
}

static void check_request(const struct flosse_http *h) {
  size_t fields = 0;
  if ((size_t)h->url.off + h->url.len > h->store_len) fail("url outside the store");
  if (h->url.len > 256) fail("url of %u bytes over max_url", h->url.len);
  fields += h->url.len;
  for (int i = 0; i < h->nheaders; i++) {
    const struct flosse_http_header *hd = &h->headers[i];
    if ((size_t)hd->name.off + hd->name.len > h->store_len || (size_t)hd->value.off + hd->value.len > h->store_len)
      fail("header %d outside the store", i);
    const char *n = flosse_http_str(h, hd->name);
    if (!hd->name.len || n[0] == ':') fail("header %d: empty or pseudo name", i);
    for (uint32_t k = 0; k < hd->name.len; k++)
      if (n[k] >= 'A' && n[k] <= 'Z') fail("header %d: uppercase name", i);
    fields += hd->name.len + hd->value.len;
  }
  if (fields > 1024) fail("%zu bytes of fields over max_header", fields);
  if (h->body.len && (size_t)h->body.off + h->body.len > h->store_len) fail("body outside the store");
  if (h->body.len > 4096) fail("body of %u bytes over max_body", h->body.len);
  if (h->status) fail("a request handed up with status %d", h->status);
}

static void on_request(struct flosse_conn *c, const struct flosse_http *h) {
  check_request(h);
  struct stream_rec *r = rec(c->stream_id);
  r->flags |= S_ANSWERED | (c->head ? S_HEAD : 0);
  /* As the stream layer does, a kept-alive HTTP/1.1 connection's next
   * request reuses what its last one had (freed in closed only). */
  struct up *u = c->up;
  if (u) {
    flosse_list_unlink(&u->link);
    nups--;
    memset(u, 0, sizeof *u);
  } else if (!(u = calloc(1, sizeof *u))) {
    flosse_conn_close(c, "out of memory");
    return;
  }
  const char *path = flosse_http_str(h, h->url);
  unsigned char m = h->url.len > 1 ? (unsigned char)path[1] : 0;
  unsigned char arg = h->url.len > 2 ? (unsigned char)path[2] : 0;
  static const char letters[] = "restbckdhxwm"; /* 'e' and 'r' both respond */
  const char *at = m ? strchr(letters, m) : NULL;
  static const enum mode by_letter[] = {M_RESPOND, M_EMPTY, M_STREAM, M_STREAM, M_BIG, M_CLOSE,
                                        M_CLOSE_SOON, M_DEFER, M_HEARTBEAT, M_ECHO, M_HEAD_ONLY,
                                        M_SPLIT_HEAD};
  u->mode = at ? by_letter[at - letters] : (enum mode)(m % M_NMODES);
  u->c = c;
  u->steps = arg % 8;
  flosse_list_push(&ups, &u->link);
  nups++;
  c->up = u;
  switch (u->mode) {
    case M_RESPOND: respond(u, arg & 1 ? 201 : 200, (size_t)(arg % 16) * 37); break;
    case M_EMPTY: {
      static const int st[] = {204, 304, 404, 200};
      u->sent = 0;
      flosse_conn_respond(c, st[arg % 4], NULL, NULL, 0);
      end(u);
      break;
    }
    case M_ECHO:
      flosse_conn_respond(c, 200, "text/plain", h->body.len ? flosse_http_str(h, h->body) : "", h->body.len);
      end(u);
      break;
    case M_STREAM:
    case M_BIG:
    case M_HEARTBEAT:
    case M_HEAD_ONLY:
      head(u, 1);
      if (flosse_conn_begin_body(c) != FLOSSE_OK) fail("begin_body refused");
      if (u->mode == M_HEAD_ONLY || c->head) { /* as the stream layer answers HEAD: no body */
        end(u);
        break;
      }
      if (u->mode == M_HEARTBEAT) flosse_conn_heartbeat(c, 1.0 + arg % 3);
      put(u, 1 + arg * 3u);
      flosse_conn_wrote(c);
      break;
    case M_SPLIT_HEAD: /* the status line now, the rest of the head next turn */
      flosse_response_status(&c->out, 200);
      flosse_conn_wrote(c);
      u->wait = 1;
      break;
    case M_DEFER: u->wait = arg % 8; break;
    case M_CLOSE: flosse_conn_close(c, arg & 1 ? "fuzz: the stub closed it" : NULL); break; /* u is freed */
    case M_CLOSE_SOON: flosse_conn_close_soon(c, arg & 1 ? "fuzz: the stub closes it" : NULL); break;
    case M_NMODES: break;
  }
}

/* One turn of the stub's work on an open answer. */
static void tick(struct up *u) {
  struct flosse_conn *c = u->c;
  if (u->ended || !flosse_conn_is_open(c)) return;
  if (u->wait > 0) {
    u->wait--;
    return;
  }
  switch (u->mode) {
    case M_DEFER: respond(u, 200, (size_t)u->steps * 50); break;
    case M_SPLIT_HEAD:
      if (c->state != FLOSSE_CONN_HANDLING) return;
      head(u, 0);
      if (flosse_conn_begin_body(c) != FLOSSE_OK) fail("begin_body refused");
      u->mode = M_STREAM;
      if (c->head) {
        end(u);
        break;
      }
      put(u, 10);
      flosse_conn_wrote(c);
      break;
    case M_STREAM:
      if (u->steps-- <= 0) {
        end(u);
        break;
      }
      if (!flosse_conn_full(c)) {
        put(u, 100);
        flosse_conn_wrote(c);
      }
      break;
    case M_BIG:
      if (u->waiting) return;
      if (u->steps-- <= 0) {
        end(u);
        break;
      }
      for (int i = 0; i < 64 && !flosse_conn_full(c); i++) put(u, 500);
      flosse_conn_wrote(c);
      u->waiting = flosse_conn_full(c);
      break;
    default: break;
  }
}

static void on_drained(struct flosse_conn *c) {
  struct up *u = c->up;
  u->waiting = 0;
}

static void on_idle(struct flosse_conn *c) {
  struct up *u = c->up;
  if (u->ended) return;
  put(u, 4);
  flosse_conn_wrote(c);
}

static void on_shutdown(struct flosse_conn *c) {
  struct up *u = c->up;
  if (u->ended) return;
  if (c->state == FLOSSE_CONN_HANDLING && u->mode == M_SPLIT_HEAD) { /* its status line is out */
    head(u, 0);
    if (flosse_conn_begin_body(c) != FLOSSE_OK) fail("begin_body refused");
  } else if (c->state == FLOSSE_CONN_HANDLING) {
    respond(u, 503, 5);
    return;
  }
  put(u, 7);
  flosse_conn_wrote(c);
  end(u);
}

static void on_closed(struct flosse_conn *c) {
  struct up *u = c->up;
  if (!u || u->c != c) fail("closed with someone else's up");
  flosse_list_unlink(&u->link);
  nups--;
  free(u);
}

static const struct flosse_conn_callbacks stub = {on_request, on_drained, on_idle, on_shutdown, on_closed};

static void tick_all(void) {
  struct flosse_list *it = ups.next;
  while (it != &ups) {
    struct up *u = flosse_container_of(it, struct up, link);
    it = it->next; /* a tick closes at most its own stream */
    tick(u);
  }
}

/* ---- the client's reading of the server's bytes ------------------------------ */

/* H2_FUZZ_TRACE=1: what the client reads, on stderr (to see what a unit does). */
static int trace;

struct reader {
  unsigned char *p;
  size_t len, cap, off; /* off: the first byte of a frame not yet read */
  int frames;
  nghttp2_hd_inflater *hpack;
  unsigned char *block; /* a header block across CONTINUATION frames */
  size_t blen, bcap;
  int32_t block_id; /* 0: none open */
  int block_end;    /* its HEADERS had END_STREAM */
};

static void decode_block(struct reader *rd, int32_t id) {
  struct stream_rec *r = rec(id);
  const unsigned char *in = rd->block;
  size_t left = rd->blen;
  int fields = 0;
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
    ssize_t n = nghttp2_hd_inflate_hd2(rd->hpack, &nv, &flags, in, left, 1);
    if (n < 0) fail("stream %d: HPACK does not decode: %s", id, nghttp2_strerror((int)n));
    in += n;
    left -= (size_t)n;
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      const char *name = (const char *)nv.name;
      if (trace) fprintf(stderr, "    %.*s: %.*s\n", (int)nv.namelen, name, (int)nv.valuelen, nv.value);
      if (fields == 0) {
        if (nv.namelen != 7 || memcmp(name, ":status", 7) != 0 || nv.valuelen != 3 || nv.value[0] < '1' ||
            nv.value[0] > '5' || nv.value[1] < '0' || nv.value[1] > '9' || nv.value[2] < '0' || nv.value[2] > '9')
          fail("stream %d: the first field is not a :status", id);
      } else {
        if (nv.namelen && name[0] == ':') fail("stream %d: a pseudo-header after :status", id);
        for (size_t k = 0; k < nv.namelen; k++)
          if (name[k] >= 'A' && name[k] <= 'Z') fail("stream %d: uppercase field name %.*s", id, (int)nv.namelen, name);
        static const char *const hop[] = {"connection", "transfer-encoding", "keep-alive", "proxy-connection",
                                          "upgrade", NULL};
        for (int i = 0; hop[i]; i++)
          if (strlen(hop[i]) == nv.namelen && memcmp(hop[i], name, nv.namelen) == 0)
            fail("stream %d: connection-specific field %s", id, hop[i]);
        if (nv.namelen == 12 && memcmp(name, "content-type", 12) == 0 && nv.valuelen == strlen(FUZZ_CTYPE) &&
            memcmp(nv.value, FUZZ_CTYPE, nv.valuelen) == 0)
          r->flags |= S_FUZZ_BODY;
        if (nv.namelen == 14 && memcmp(name, "content-length", 14) == 0) {
          uint64_t v = 0;
          for (size_t k = 0; k < nv.valuelen; k++) {
            if (nv.value[k] < '0' || nv.value[k] > '9') fail("stream %d: content-length not a number", id);
            v = v * 10 + (uint64_t)(nv.value[k] - '0');
          }
          r->flags |= S_HAS_LENGTH;
          r->length = v;
        }
      }
      fields++;
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(rd->hpack);
      break;
    }
    if (n == 0 && left == 0) break;
  }
  if (fields == 0) fail("stream %d: an empty header block", id);
}

static void stream_end(int32_t id) {
  struct stream_rec *r = rec(id);
  r->flags |= S_ENDED;
  if ((r->flags & S_ANSWERED) && !(r->flags & S_HEAD) && (r->flags & S_HAS_LENGTH) && r->data != r->length)
    fail("stream %d: content-length %llu, %llu bytes of DATA", id, (unsigned long long)r->length,
         (unsigned long long)r->data);
}

static void read_frame(struct reader *rd, const unsigned char *f, size_t plen) {
  uint8_t type = f[3], flags = f[4];
  int32_t id = (int32_t)(((uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 | (uint32_t)f[7] << 8 | f[8]) & 0x7fffffffu);
  if (trace) fprintf(stderr, "  frame type %u flags 0x%02x stream %d, %zu bytes\n", type, flags, id, plen);
  const unsigned char *pl = f + 9;
  if (rd->frames++ == 0 && (type != NGHTTP2_SETTINGS || (flags & NGHTTP2_FLAG_ACK) || id != 0))
    fail("the server's first frame is not its SETTINGS (type %u)", type);
  if (plen > 16384) fail("a frame of %zu bytes (type %u)", plen, type);
  if (rd->block_id && type != NGHTTP2_CONTINUATION) fail("a frame of type %u inside a header block", type);
  switch (type) {
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
    case NGHTTP2_GOAWAY:
      if (id != 0) fail("frame type %u on stream %d", type, id);
      if (type == NGHTTP2_SETTINGS && plen % 6) fail("SETTINGS of %zu bytes", plen);
      if (type == NGHTTP2_PING && plen != 8) fail("PING of %zu bytes", plen);
      return;
    case NGHTTP2_WINDOW_UPDATE:
      if (plen != 4) fail("WINDOW_UPDATE of %zu bytes", plen);
      return;
    case NGHTTP2_RST_STREAM:
      if (id == 0 || !(id & 1) || plen != 4) fail("RST_STREAM on stream %d, %zu bytes", id, plen);
      rec(id)->flags |= S_ENDED;
      return;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
      if (id == 0 || !(id & 1)) fail("frame type %u on stream %d", type, id);
      struct stream_rec *r = rec(id);
      if (r->flags & S_ENDED) fail("frame type %u on stream %d after its end", type, id);
      size_t pad = 0;
      if (flags & NGHTTP2_FLAG_PADDED) {
        if (plen < 1 || (pad = pl[0]) + 1 > plen) fail("bad padding");
        pl++;
        plen -= 1 + pad;
      }
      if (type == NGHTTP2_DATA) {
        if (!(r->flags & S_HEADERS)) fail("DATA on stream %d before its HEADERS", id);
        if (r->flags & S_FUZZ_BODY)
          for (size_t k = 0; k < plen; k++)
            if ((char)pl[k] != pattern(id, r->data + k))
              fail("stream %d: body byte %llu is not what the stub wrote", id, (unsigned long long)(r->data + k));
        r->data += plen;
        if (flags & NGHTTP2_FLAG_END_STREAM) stream_end(id);
        return;
      }
      if (r->flags & S_HEADERS) fail("a second HEADERS on stream %d", id);
      if (flags & NGHTTP2_FLAG_PRIORITY) {
        if (plen < 5) fail("bad priority");
        pl += 5;
        plen -= 5;
      }
      r->flags |= S_HEADERS;
      rd->blen = 0;
      rd->block_id = id;
      rd->block_end = (flags & NGHTTP2_FLAG_END_STREAM) != 0;
      break;
    }
    case NGHTTP2_CONTINUATION:
      if (!rd->block_id || id != rd->block_id) fail("CONTINUATION on stream %d outside its block", id);
      break;
    default: fail("the server sent a frame of type %u", type);
  }
  /* HEADERS or CONTINUATION: the block grows, and is decoded when whole. */
  if (rd->blen + plen > rd->bcap) {
    rd->bcap = (rd->blen + plen) * 2;
    rd->block = realloc(rd->block, rd->bcap);
    if (!rd->block) fail("out of memory");
  }
  memcpy(rd->block + rd->blen, pl, plen);
  rd->blen += plen;
  if (flags & NGHTTP2_FLAG_END_HEADERS) {
    int32_t bid = rd->block_id;
    rd->block_id = 0;
    decode_block(rd, bid);
    if (rd->block_end) stream_end(bid);
  }
}

/* The server's bytes: whole frames read, the rest kept for the next. */
static void reader_feed(struct reader *rd, const char *p, size_t n) {
  if (rd->len + n > rd->cap) {
    rd->cap = (rd->len + n) * 2;
    rd->p = realloc(rd->p, rd->cap);
    if (!rd->p) fail("out of memory");
  }
  memcpy(rd->p + rd->len, p, n);
  rd->len += n;
  for (;;) {
    size_t left = rd->len - rd->off;
    if (left < 9) break;
    const unsigned char *f = rd->p + rd->off;
    size_t plen = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
    if (left < 9 + plen) break;
    read_frame(rd, f, plen);
    rd->off += 9 + plen;
  }
  if (rd->off > 65536) { /* keep the buffer small */
    memmove(rd->p, rd->p + rd->off, rd->len - rd->off);
    rd->len -= rd->off;
    rd->off = 0;
  }
}

/* ---- one unit ----------------------------------------------------------------- */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct client {
  int fd;
  const uint8_t *data;
  size_t len, off;   /* the stream, and how much of it is written */
  uint32_t rng;
  int rule;
  int checked;       /* the stream is HTTP/2: read the server's bytes as frames */
  struct reader rd;
  int reading;       /* 0: the client has stopped reading for good */
};

static uint32_t next_rand(uint32_t *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 16;
}

/* The next chunk's length, by the input's rule. */
static size_t chunk_len(struct client *cl, int turn) {
  size_t left = cl->len - cl->off;
  size_t n;
  if (turn >= MAX_TURNS - TAIL_TURNS) return left; /* enough turns: the rest at once */
  switch (cl->rule) {
    case 0: n = left; break;
    case 1: n = cl->off < 64 ? 1 : 256; break;
    case 2: n = 1 + next_rand(&cl->rng) % 32; break;
    default: n = 1 + next_rand(&cl->rng) % 512; break;
  }
  return n < left ? n : left;
}

static void client_write(struct client *cl, int turn) {
  if (cl->off >= cl->len || cl->fd < 0) return;
  size_t n = chunk_len(cl, turn);
  ssize_t w = send(cl->fd, cl->data + cl->off, n, MSG_NOSIGNAL);
  if (w > 0) cl->off += (size_t)w;
  else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) cl->off = cl->len; /* the server closed */
}

/* Reads what the server wrote; 0 once it closed. */
static int client_read(struct client *cl) {
  char buf[16384];
  if (cl->fd < 0) return 0;
  for (;;) {
    ssize_t n = recv(cl->fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (cl->checked) reader_feed(&cl->rd, buf, (size_t)n);
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

/* Time passes for every member of a timeout queue: they are backdated, and
 * the queue's timer runs now (as libev would run it when it fires). */
static void expire(struct ev_loop *ev, struct flosse_tq *tq) {
  for (struct flosse_list *it = tq->nodes.next; it != &tq->nodes; it = it->next)
    flosse_container_of(it, struct flosse_tq_node, link)->since -= 1000;
  if (!flosse_list_empty(&tq->nodes)) ev_invoke(ev, &tq->timer, EV_TIMER);
}

static void expire_all(struct flosse_conns *cs) {
  struct ev_loop *ev = cs->loop->ev;
  expire(ev, &cs->header_tq);
  expire(ev, &cs->write_tq);
  for (int i = 0; i < cs->nhbq; i++) expire(ev, &cs->hbq[i]);
}

static void turn(struct flosse_conns *cs, struct client *cl, int t, int stall_mask) {
  client_write(cl, t);
  if (cl->reading && !(stall_mask & (1 << ((t / 4) % 8)))) client_read(cl);
  ev_run(cs->loop->ev, EVRUN_NOWAIT);
  tick_all();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  trace = getenv("H2_FUZZ_TRACE") != NULL;
  int rule = data[0], stall = data[1], flags = data[2];
  data += 3;
  size -= 3;

  /* The client's stream: the preface first, unless there or raw. */
  uint8_t *stream = malloc(size + sizeof preface);
  if (!stream) return 0;
  size_t len = 0;
  if (!(flags & 0x10) && (size < sizeof preface - 1 || memcmp(data, preface, sizeof preface - 1) != 0)) {
    memcpy(stream, preface, sizeof preface - 1);
    len = sizeof preface - 1;
  }
  memcpy(stream + len, data, size);
  len += size;
  if (flags & 0x40) { /* what follows the preface and the first frame (its SETTINGS) */
    size_t from = len >= sizeof preface - 1 && memcmp(stream, preface, sizeof preface - 1) == 0 ? sizeof preface - 1 : 0;
    if (len >= from + 9) from += 9 + ((size_t)stream[from] << 16 | (size_t)stream[from + 1] << 8 | stream[from + 2]);
    if (from > len) from = len;
    size_t unit = len - from, cap = 192 << 10;
    if (unit > 0 && unit < cap / 2) {
      size_t copies = (cap - from) / unit;
      uint8_t *more = realloc(stream, from + unit * copies);
      if (!more) fail("out of memory");
      stream = more;
      for (size_t k = 1; k < copies; k++) memcpy(stream + from + unit * k, stream + from, unit);
      len = from + unit * copies;
    }
  }

  struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
  if (!ev) fail("ev_loop_new");
  struct flosse_loop loop;
  flosse_loop_init(&loop, ev);
  flosse_loop_start(&loop, NULL); /* no Lua below the task layer */

  struct flosse_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.http.max_url = 256;
  cfg.http.max_header = 1024;
  cfg.http.max_body = 4096;
  cfg.high_water = 8192;
  cfg.low_water = 2048;
  cfg.resume_budget = 16;
  cfg.header_timeout = 5; /* never reached in real time: expire() makes them pass */
  cfg.write_timeout = 5;
  cfg.grace = 1;
  cfg.h2_max_streams = 8;
  cfg.tls = NULL;

  long open = 0;
  struct flosse_conns cs;
  flosse_conns_init(&cs, &loop, &cfg, &stub, &open);
  cs.h2 = &flosse_h2_ops;
  flosse_conns_start(&cs);
  flosse_list_init(&ups);
  nups = 0;
  memset(recs, 0, sizeof recs);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) fail("socketpair: %s", strerror(errno));
  for (int i = 0; i < 2; i++) fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK);
  if (!(rule & 0x80)) {
    int small = 4096; /* the server's output backs up soon when the client does not read */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(40000), .sin_addr = {htonl(0x7f000001)}};
  open++; /* what the accepting code counts */
  struct flosse_conn *c = flosse_conn_new(&cs, sv[0], (const struct sockaddr *)&sa);
  if (!c) fail("flosse_conn_new");

  struct client cl;
  memset(&cl, 0, sizeof cl);
  cl.fd = sv[1];
  cl.data = stream;
  cl.len = len;
  cl.rule = rule & 3;
  cl.rng = (uint32_t)rule * 2654435761u + 1;
  cl.checked = len >= sizeof preface - 1 && memcmp(stream, preface, sizeof preface - 1) == 0;
  cl.reading = 1;
  if (nghttp2_hd_inflate_new(&cl.rd.hpack) != 0) fail("nghttp2_hd_inflate_new");

  int when = flags & 3, half_closed = 0, shut = 0, expired = 0, tail = 0;
  for (int t = 0; t < MAX_TURNS && tail < TAIL_TURNS; t++) {
    turn(&cs, &cl, t, stall);
    int half = cl.off * 2 >= cl.len, all = cl.off >= cl.len;
    if ((when == 1 && half && !expired) || (when == 2 && all && !expired) || (when == 3 && t % 16 == 15)) {
      expire_all(&cs);
      expired = 1;
    }
    if ((flags & 0x08) && half && !shut) {
      flosse_conns_shutdown(&cs);
      shut = 1;
    }
    if (all) {
      if ((flags & 0x04) && !half_closed) {
        shutdown(cl.fd, SHUT_WR);
        half_closed = 1;
      }
      if (flags & 0x20) cl.reading = 0;
      if ((flags & 0x80) && tail == 4 && cl.fd >= 0) {
        close(cl.fd);
        cl.fd = -1;
      }
      tail++;
    }
  }
  /* Graceful stop, a few turns to drain, then everything closes. */
  cl.reading = 1;
  if (!shut) flosse_conns_shutdown(&cs);
  for (int t = 0; t < 16; t++) turn(&cs, &cl, MAX_TURNS, 0);
  if (when) expire_all(&cs);
  turn(&cs, &cl, MAX_TURNS, 0);
  flosse_conns_close_all(&cs);
  client_read(&cl);

  if (nups) fail("%ld streams the stub holds were never closed", nups);
  if (cs.n || !flosse_list_empty(&cs.all)) fail("%ld connections left after close_all", cs.n);
  if (open) fail("the open count is %ld after close_all", open);
  flosse_conns_stop(&cs);
  flosse_loop_stop(&loop);
  flosse_loop_free(&loop);
  ev_loop_destroy(ev);
  if (cl.fd >= 0) close(cl.fd);
  nghttp2_hd_inflate_del(cl.rd.hpack);
  free(cl.rd.p);
  free(cl.rd.block);
  free(stream);
  flosse_buf_thread_done();
  return 0;
}
