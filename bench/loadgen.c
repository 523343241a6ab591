/* bench/loadgen.c: a load generator for SSE servers (flosse and its peers),
 * in C99 on libev. It is an instrument, not a test.
 *
 * Build (or `make -C bench`):
 *   cc -std=c99 -D_GNU_SOURCE -O2 -g -Wall -Wextra -o bench/loadgen bench/loadgen.c -lev
 *
 * Usage:
 *   loadgen idle --host 127.0.0.1 --port P --path /sse/quiet/ --conns N --hold SECONDS
 *                [--rate R] [--max-pending M] [--connect-timeout S]
 *
 * idle: opens N connections (non-blocking connects, at most R new ones a
 * second and at most M not yet answered at once), sends
 * "GET <path> HTTP/1.1", reads each response for real (status line, headers,
 * chunked / Content-Length / close-delimited bodies, SSE framing with LF, CR
 * or CRLF line ends), and once every connection is answered (or the connect
 * deadline, N/R + S seconds after the start, has passed) holds them all for
 * SECONDS. Then it prints one line of key=value pairs on stdout:
 *
 *   mode=idle conns=N established=E open_at_end=O closed_by_server=C
 *   ended_by_server=X events=.. heartbeats=.. events_hold=.. heartbeats_hold=..
 *   other_frames=.. errors=.. connect_errors=.. timeouts=.. http_errors=..
 *   not_sse=.. parse_errors=.. bytes=.. connect_s=.. hold_s=.. aborted=0|1
 *
 *   established   responses with status 200 whose head was read completely
 *   open_at_end   of those, streams still open (neither closed nor ended) when
 *                 the hold ended
 *   closed_by_server  open streams the server closed (EOF or reset) before the end
 *   ended_by_server   streams whose body ended (chunked terminator, Content-Length)
 *   events        complete SSE events (a blank line ending a block with data)
 *   heartbeats    complete comment-only frames (": ...", then a blank line)
 *   *_hold        the same, counted during the hold only
 *   other_frames  blocks with fields but no data (a lone "retry:", ...)
 *   errors        connect_errors + timeouts + http_errors + not_sse + parse_errors
 *
 * Progress goes to stderr; in particular "loadgen: holding ..." when the hold
 * starts, which a runner can wait for. It raises its RLIMIT_NOFILE soft limit
 * to the hard limit and refuses N beyond it; run several processes for more
 * connections than one process may hold. Every phase is bounded in time:
 * the process exits by itself after at most N/R + S + SECONDS (plus the
 * closing), or at SIGINT / SIGTERM with the summary so far (aborted=1).
 *
 *   loadgen streams --host 127.0.0.1 --port P --path /bench/ten/ --conns C --duration D
 *                   [--events N] [--close] [--rate R] [--max-pending M]
 *                   [--connect-timeout S] [--timeout T] [--grace G]
 *
 * streams: C clients, each running finite SSE streams one after another: it
 * sends "GET <path> HTTP/1.1" (Host, Accept: text/event-stream) and reads the
 * whole response with the same parser; the server's view yields N events
 * (default 10) and returns, so the body ends (chunked terminator,
 * Content-Length, or the server closing a close-delimited body). Then the
 * client starts its next stream on the same connection if HTTP/1.1 lets it;
 * after a close-delimited body it connects anew, and after "Connection:
 * close" or an HTTP/1.0 response it first waits for the server to close (at
 * most 1 s; longer counts as a timeout). With --close every request says "Connection: close" and every
 * stream gets a new connection; the client waits for the server's close
 * before closing its own end, so that TIME_WAIT stays on the server's side
 * and the client's ephemeral ports stay free. A failure of any kind (a connect
 * error such as EADDRNOTAVAIL, a bad response, a closed connection) is
 * counted, and the client starts over after a 10 ms back-off.
 *
 * Phases: clients start at up to R a second (default: all at once), at most
 * M (default 512) of them not yet answered, so that a large C does not
 * overflow the server's listen backlog. The measurement window of D seconds
 * starts when every client's first stream has been answered (response head)
 * or has failed, or at the latest C/R + S seconds after the start (S default
 * 30). Streams run during the start already, but only streams whose body
 * ENDED inside the window are counted, whenever they began. When the window
 * ends, no new stream starts; streams in flight get G seconds (default 2) to
 * finish, uncounted; those still running then count as timeouts. A stream
 * running longer than T seconds (default 30: connect, request and response)
 * counts as a timeout too. Then one line on stdout:
 *
 *   mode=streams conns=C duration_s=.. streams=.. streams_per_s=.. events=..
 *   events_per_s=.. short_streams=.. connections_opened=.. errors=..
 *   connect_errors=.. timeouts=.. http_errors=.. not_sse=.. parse_errors=..
 *   closed_early=.. bytes=.. stream_p50_ms=.. stream_p99_ms=..
 *   loadgen_cpu_s=.. aborted=0|1
 *
 *   duration_s    the window (D, or less when stopped by a signal)
 *   streams       streams that ended properly inside the window with status
 *                 200 and exactly N complete SSE events
 *   events        complete SSE events in the streams that ended properly
 *                 inside the window, short ones included: with no short
 *                 stream, events == N x streams exactly
 *   short_streams streams that ended properly in the window with another
 *                 number of events than N
 *   stream_p50_ms, stream_p99_ms  from the request's write to the body's end,
 *                 over the counted streams
 *   loadgen_cpu_s this process's user + system CPU seconds during the window
 *                 (the loopback's softirq work is charged to no process)
 *   closed_early  the server closed (EOF or reset) a connection with a stream
 *                 in flight, including a kept-alive connection closed just as
 *                 the next request went out
 *   errors        connect_errors + timeouts + http_errors + not_sse +
 *                 parse_errors + closed_early
 * connections_opened, bytes and the error counters cover the whole run (start,
 * window and grace); the other figures the window only. Progress goes to
 * stderr ("loadgen: window of D s starts ..." when it starts). The process
 * exits by itself after at most C/R + S + D + G seconds.
 */
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define LINE_CAP 256          /* kept part of one response-head line */
#define HEAD_MAX (64 * 1024)  /* a longer response head is a parse error */
#define READ_BUF (64 * 1024)
#define READS_PER_CB 8        /* reads per readiness callback, then back to the loop */
#define OPENS_PER_TICK 4096   /* new connections per pacing tick at most */
#define PACE_TICK 0.002       /* seconds */

/* ------------------------------------------------------------------------ */
/* Counters                                                                  */

struct stats {
  long opened, established, open_at_end, closed_by_server, ended_by_server;
  long connect_errors, timeouts, http_errors, not_sse, parse_errors;
  long long events, heartbeats, other_frames, bytes;
  long long events_at_hold, heartbeats_at_hold;
};

static struct stats st;

/* Says the first occurrence of each kind of error on stderr, then counts quietly. */
static void note_once(int *said, const char *fmt, ...) {
  if (*said) return;
  *said = 1;
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (first of its kind; later ones are only counted)\n", stderr);
  va_end(ap);
}
static int said_connect, said_timeout, said_http, said_sse, said_parse, said_closed;

/* ------------------------------------------------------------------------ */
/* SSE framing: a byte-at-a-time parser over the decoded body.               */

enum { S_BOL, S_FIELD, S_SKIP, S_AFTER_CR, S_DATA_SP, S_DATA };
enum { BLK_DATA = 1, BLK_COMMENT = 2, BLK_FIELD = 4 };

#define DATA_CAP 48 /* kept part of an event's data (fanout reads "t=.. n=.." from it) */

struct sse {
  unsigned char state, blk, flen, dlen;
  char fname[7];
  char data[DATA_CAP];
  unsigned int nev; /* complete events so far (streams: in this stream) */
};

static void fanout_event(struct sse *s); /* fanout mode: one complete event */
static int fanout_mode, streams_mode;

static void sse_dispatch(struct sse *s) {
  if (s->blk & BLK_DATA) {
    st.events++;
    s->nev++;
    if (fanout_mode) fanout_event(s);
  } else if (s->blk == BLK_COMMENT) st.heartbeats++;
  else if (s->blk) st.other_frames++;
  s->blk = 0;
  s->dlen = 0;
}

static void sse_field_done(struct sse *s) {
  if (s->flen == 4 && memcmp(s->fname, "data", 4) == 0) s->blk |= BLK_DATA;
  else s->blk |= BLK_FIELD;
}

static void sse_feed(struct sse *s, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    switch (s->state) {
    case S_AFTER_CR:
      /* A CR ended the previous line; an LF right after it belongs to it. */
      s->state = S_BOL;
      if (c == '\n') break;
      /* fall through */
    case S_BOL:
      if (c == '\n' || c == '\r') {
        sse_dispatch(s);
        s->state = c == '\r' ? S_AFTER_CR : S_BOL;
      } else if (c == ':') {
        s->blk |= BLK_COMMENT;
        s->state = S_SKIP;
      } else {
        s->fname[0] = c;
        s->flen = 1;
        s->state = S_FIELD;
      }
      break;
    case S_FIELD:
      if (c == ':' || c == '\n' || c == '\r') {
        sse_field_done(s);
        if (c == ':' && s->flen == 4 && memcmp(s->fname, "data", 4) == 0) {
          /* a data line: keep its value (lines joined with LF, as SSE does) */
          if (s->dlen && s->dlen < DATA_CAP - 1) s->data[s->dlen++] = '\n';
          s->state = S_DATA_SP;
          break;
        }
        s->state = c == ':' ? S_SKIP : c == '\r' ? S_AFTER_CR : S_BOL;
      } else if (s->flen < sizeof s->fname) {
        s->fname[s->flen++] = c;
      } else {
        s->flen = sizeof s->fname; /* too long to be a known name */
        s->fname[0] = '\0';
      }
      break;
    case S_DATA_SP:
      s->state = S_DATA;
      if (c == ' ') break; /* one space after the colon is not part of the value */
      /* fall through */
    case S_DATA:
    case S_SKIP:
      if (c == '\n') { s->state = S_BOL; break; }
      if (c == '\r') { s->state = S_AFTER_CR; break; }
      { /* the rest of the line at once; a data line's start is kept */
        size_t j = i + 1;
        while (j < n && p[j] != '\n' && p[j] != '\r') j++;
        if (s->state == S_DATA && s->dlen < DATA_CAP - 1) {
          size_t room = DATA_CAP - 1 - (size_t)s->dlen, take = j - i < room ? j - i : room;
          memcpy(s->data + s->dlen, p + i, take);
          s->dlen = (unsigned char)(s->dlen + take);
        }
        i = j - 1; /* the loop's i++ lands on the line end (or ends the buffer) */
      }
      break;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* HTTP/1.1 responses: head, then a chunked, Content-Length or
 * close-delimited body.                                                     */

enum { BODY_CLOSE, BODY_LENGTH, BODY_CHUNKED };
enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER_BOL,
       CH_TRAILER_LINE, CH_TRAILER_LF };
enum { C_DONE, C_CONNECTING, C_SENDING, C_HEAD, C_BODY, C_PUB_IDLE,
       C_DRAIN /* streams: the response ended; waiting for the server to close */ }; /* zeroed: done */

struct conn {
  ev_io io;
  int fd;
  unsigned char state;
  unsigned char body;
  unsigned char chstate;
  unsigned char head_line;    /* 0 while reading the status line */
  unsigned char chunked, has_length, sse_type, pending;
  unsigned char digits;       /* a chunk-size digit was seen */
  unsigned char is_pub;       /* fanout: a publisher connection */
  unsigned char hdr_close;    /* the response said Connection: close, or was HTTP/1.0 */
  unsigned char reused;       /* streams: the connection carried an earlier stream */
  unsigned char busy;         /* streams: a stream is in flight */
  int status;
  unsigned int got;           /* fanout: distinct events this subscriber received */
  unsigned int last_n;        /* fanout: the sequence number of its latest event */
  char *req;                  /* the request to send (NULL: the subscribers' GET) */
  size_t req_len;
  unsigned short linelen;
  unsigned int head_bytes;
  unsigned long long left;    /* chunk or Content-Length bytes to go */
  size_t sent;
  double t_begin;             /* streams: the stream's start (or the back-off's or drain's end) */
  double t_req;               /* streams: when its request went out */
  struct sse sse;
  char line[LINE_CAP];
};

static struct ev_loop *loop;
static struct conn *conns;
static long nconns, pending;
static int phase; /* 0 connecting, 1 holding, 2 done */
static double t_start, t_hold, t_end;
static int aborted;

static struct addrinfo *addr;
static struct addrinfo *src_addr; /* --bind: the local address of every connection (NULL: the kernel's choice) */
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* --bind: sets fd's source address (the port is left to connect(), which then
 * needs only the 4-tuple to be free: each source address has the whole
 * ephemeral range for each server port). 0, or -1 with errno. */
static int bind_source(int fd) {
  if (!src_addr) return 0;
  int one = 1;
  if (src_addr->ai_family == AF_INET) setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  return bind(fd, src_addr->ai_addr, src_addr->ai_addrlen);
}
static char request[1024];
static size_t request_len;

static struct {
  const char *mode, *host, *port, *path, *bind;
  long conns;
  double hold, rate, connect_timeout;
  long max_pending;
  /* fanout */
  const char *pub_path, *hist_file;
  long events, pub_conns;
  double pub_rate, quiet, start_timeout, pub_wait, linger;
  int subscribe_only;
  /* streams */
  double duration, timeout, grace;
  int close;
} opt = { NULL, "127.0.0.1", NULL, "/", NULL, 0, -1, 2000, 30, 512,
          NULL, NULL, 100, 2, 50, 5, 120, 0, 0, 0,
          -1, 30, 2, 0 };

static void start_hold(void);
static void pub_head_done(struct conn *c);
static void pub_response_done(struct conn *c);
static void stream_done(struct conn *c);
static void stream_closed(struct conn *c, int err);
static void client_failed(struct conn *c);

/* A connection stops counting as pending once it is answered or failed. */
static void settle(struct conn *c) {
  if (!c->pending) return;
  c->pending = 0;
  pending--;
  if (phase == 0 && pending == 0 && st.opened == nconns) start_hold();
}

static void conn_close(struct conn *c) {
  if (c->state == C_DONE) return;
  ev_io_stop(loop, &c->io);
  close(c->fd);
  c->fd = -1;
  c->state = C_DONE;
  settle(c);
  if (streams_mode) client_failed(c); /* only failures close through here */
}

/* The body ended: the server finished the response. */
static void body_ended(struct conn *c) {
  if (c->is_pub) {
    pub_response_done(c);
    return;
  }
  if (streams_mode) {
    stream_done(c);
    return;
  }
  st.ended_by_server++;
  conn_close(c);
}

static int parse_error(struct conn *c, const char *what) {
  st.parse_errors++;
  note_once(&said_parse, "parse error: %s", what);
  conn_close(c);
  return -1;
}

static int ieq_prefix(const char *s, const char *prefix) {
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* One complete head line (without its line end). Returns -1 when the
 * connection was closed. */
static int head_line(struct conn *c, char *line, size_t len) {
  line[len] = '\0';
  if (!c->head_line) {
    c->head_line = 1;
    int st_code;
    if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
        sscanf(line + 9, "%3d", &st_code) != 1 || st_code < 100)
      return parse_error(c, "bad status line");
    c->status = st_code;
    if (line[7] == '0') c->hdr_close = 1; /* HTTP/1.0: no keep-alive assumed */
    return 0;
  }
  char *colon = memchr(line, ':', len);
  if (!colon || colon == line) return parse_error(c, "bad header line");
  *colon = '\0';
  char *v = colon + 1;
  while (*v == ' ' || *v == '\t') v++;
  if (strcasecmp(line, "transfer-encoding") == 0) {
    if (strcasestr(v, "chunked")) c->chunked = 1;
  } else if (strcasecmp(line, "content-length") == 0) {
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v) return parse_error(c, "bad Content-Length");
    c->has_length = 1;
    c->left = n;
  } else if (strcasecmp(line, "content-type") == 0) {
    if (ieq_prefix(v, "text/event-stream")) c->sse_type = 1;
  } else if (strcasecmp(line, "connection") == 0) {
    if (strcasestr(v, "close")) c->hdr_close = 1;
  }
  return 0;
}

static void head_done(struct conn *c) {
  if (c->status == 100) { /* an interim response: the real one follows */
    c->head_line = 0;
    c->status = 0;
    return;
  }
  if (c->is_pub) {
    pub_head_done(c);
    return;
  }
  if (c->status != 200) {
    st.http_errors++;
    note_once(&said_http, "HTTP status %d", c->status);
    conn_close(c);
    return;
  }
  if (!c->sse_type) {
    st.not_sse++;
    note_once(&said_sse, "status 200 without Content-Type text/event-stream");
    conn_close(c);
    return;
  }
  st.established++;
  c->state = C_BODY;
  c->body = c->chunked ? BODY_CHUNKED : c->has_length ? BODY_LENGTH : BODY_CLOSE;
  c->chstate = CH_SIZE;
  if (c->chunked) c->left = 0;
  settle(c);
  if (c->body == BODY_LENGTH && c->left == 0) body_ended(c);
}

/* Response-head bytes; returns how many were used (the rest is body). */
static size_t head_feed(struct conn *c, const char *p, size_t n) {
  size_t i = 0;
  while (i < n && c->state == C_HEAD) {
    /* up to the next LF at once: the line's start is kept, its length counted */
    const char *nl = memchr(p + i, '\n', n - i);
    size_t end = nl ? (size_t)(nl - p) : n, seg = end - i;
    if (c->head_bytes + seg + (nl != NULL) > HEAD_MAX) {
      parse_error(c, "response head too large");
      return n;
    }
    c->head_bytes += (unsigned int)(seg + (nl != NULL));
    if (c->linelen < LINE_CAP - 1) {
      size_t room = LINE_CAP - 1 - (size_t)c->linelen, take = seg < room ? seg : room;
      memcpy(c->line + c->linelen, p + i, take);
      c->linelen = (unsigned short)(c->linelen + take); /* at most LINE_CAP - 1: keep the start only */
    }
    i = end;
    if (!nl) break;
    i++; /* the LF */
    size_t len = c->linelen;
    c->linelen = 0;
    if (len && c->line[len - 1] == '\r') len--;
    if (len == 0) {
      if (!c->head_line) return parse_error(c, "empty status line"), n;
      head_done(c);
    } else if (head_line(c, c->line, len) < 0) {
      return n;
    }
  }
  return i;
}

/* Chunked transfer coding; data goes to the SSE parser. */
static void chunked_feed(struct conn *c, const char *p, size_t n) {
  size_t i = 0;
  while (i < n && c->state == C_BODY) {
    char ch = p[i];
    switch (c->chstate) {
    case CH_SIZE: {
      int d = ch >= '0' && ch <= '9' ? ch - '0'
            : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
            : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
      if (d >= 0) {
        if (c->left >> 56) { parse_error(c, "chunk size overflow"); return; }
        c->left = c->left * 16 + (unsigned)d;
        c->digits = 1;
      } else if (!c->digits) {
        parse_error(c, "chunk size without digits");
        return;
      } else if (ch == ';' || ch == ' ' || ch == '\t') {
        c->chstate = CH_EXT;
      } else if (ch == '\r') {
        c->chstate = CH_SIZE_LF;
      } else if (ch == '\n') {
        goto size_line_done;
      } else {
        parse_error(c, "bad chunk size");
        return;
      }
      i++;
      break;
    }
    case CH_EXT:
      i++;
      if (ch == '\n') goto size_line_done;
      break;
    case CH_SIZE_LF:
      i++;
      if (ch != '\n') { parse_error(c, "chunk size line without LF"); return; }
    size_line_done:
      c->digits = 0;
      c->chstate = c->left ? CH_DATA : CH_TRAILER_BOL;
      break;
    case CH_DATA: {
      size_t take = n - i;
      if (take > c->left) take = (size_t)c->left;
      if (!c->is_pub) sse_feed(&c->sse, p + i, take);
      i += take;
      c->left -= take;
      if (!c->left) c->chstate = CH_DATA_CR;
      break;
    }
    case CH_DATA_CR:
      i++;
      if (ch == '\r') c->chstate = CH_DATA_LF;
      else if (ch == '\n') c->chstate = CH_SIZE;
      else { parse_error(c, "chunk data not followed by CRLF"); return; }
      break;
    case CH_DATA_LF:
      i++;
      if (ch != '\n') { parse_error(c, "chunk data not followed by CRLF"); return; }
      c->chstate = CH_SIZE;
      break;
    case CH_TRAILER_BOL:
      i++;
      if (ch == '\n') { body_ended(c); return; }
      c->chstate = ch == '\r' ? CH_TRAILER_LF : CH_TRAILER_LINE;
      break;
    case CH_TRAILER_LINE:
      i++;
      if (ch == '\n') c->chstate = CH_TRAILER_BOL;
      break;
    case CH_TRAILER_LF:
      i++;
      if (ch != '\n') { parse_error(c, "bad chunked trailer"); return; }
      body_ended(c);
      return;
    }
  }
}

static void body_feed(struct conn *c, const char *p, size_t n) {
  if (c->body == BODY_CHUNKED) {
    chunked_feed(c, p, n);
  } else if (c->body == BODY_LENGTH) {
    size_t take = n > c->left ? (size_t)c->left : n;
    if (!c->is_pub) sse_feed(&c->sse, p, take);
    c->left -= take;
    if (!c->left) body_ended(c);
  } else if (!c->is_pub) {
    sse_feed(&c->sse, p, n);
  }
}

/* The server closed the connection (EOF or reset). */
static void pub_closed(struct conn *c, int err);

static void server_closed(struct conn *c, int err) {
  if (c->is_pub) {
    pub_closed(c, err);
    return;
  }
  if (streams_mode) {
    stream_closed(c, err);
    return;
  }
  if (c->state == C_BODY && c->body == BODY_CLOSE && !err) {
    body_ended(c); /* a close-delimited body ends this way */
    return;
  }
  if (c->state == C_BODY) {
    st.closed_by_server++;
    note_once(&said_closed, "the server closed an open stream (%s)", err ? strerror(err) : "EOF");
  } else {
    st.parse_errors++;
    note_once(&said_parse, "the server closed the connection before the response head ended (%s)",
              err ? strerror(err) : "EOF");
  }
  conn_close(c);
}

static struct timespec recv_ts; /* fanout: when the bytes being parsed arrived */

static void on_read(struct conn *c) {
  static char buf[READ_BUF];
  for (int r = 0; r < READS_PER_CB && c->state != C_DONE; r++) {
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      server_closed(c, errno);
      return;
    }
    if (n == 0) {
      server_closed(c, 0);
      return;
    }
    st.bytes += n;
    if (fanout_mode) clock_gettime(CLOCK_MONOTONIC, &recv_ts);
    if (c->state == C_PUB_IDLE) {
      parse_error(c, "bytes from the server while no request was outstanding");
      return;
    }
    size_t used = 0;
    if (c->state == C_HEAD) used = head_feed(c, buf, (size_t)n);
    if (c->state == C_BODY && used < (size_t)n) body_feed(c, buf + used, (size_t)n - used);
    if ((size_t)n < sizeof buf) return;
  }
}

static void on_send(struct conn *c) {
  const char *rq = c->req ? c->req : request;
  size_t rl = c->req ? c->req_len : request_len;
  while (c->sent < rl) {
    ssize_t n = send(c->fd, rq + c->sent, rl - c->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (c->is_pub) {
        pub_closed(c, errno);
        return;
      }
      st.connect_errors++;
      note_once(&said_connect, "send: %s", strerror(errno));
      conn_close(c);
      return;
    }
    c->sent += (size_t)n;
  }
  c->state = C_HEAD;
  ev_io_stop(loop, &c->io);
  ev_io_set(&c->io, c->fd, EV_READ);
  ev_io_start(loop, &c->io);
}

static void pub_connected(struct conn *c);

static void on_io(struct ev_loop *l, ev_io *w, int revents) {
  (void)l;
  struct conn *c = w->data;
  if (c->state == C_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err) {
      if (c->is_pub) {
        pub_closed(c, err);
        return;
      }
      st.connect_errors++;
      note_once(&said_connect, "connect: %s", strerror(err));
      conn_close(c);
      return;
    }
    if (c->is_pub) {
      pub_connected(c);
      return;
    }
    c->state = C_SENDING;
  }
  if (c->state == C_SENDING && (revents & EV_WRITE)) on_send(c);
  else if (revents & EV_READ) on_read(c);
}

static void conn_open(struct conn *c) {
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->state = C_DONE;
  st.opened++;
  int fd = socket(addr->ai_family, addr->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  addr->ai_protocol);
  if (fd < 0) {
    st.connect_errors++;
    note_once(&said_connect, "socket: %s", strerror(errno));
    return;
  }
  c->fd = fd;
  c->pending = 1;
  pending++;
  ev_io_init(&c->io, on_io, fd, EV_WRITE);
  c->io.data = c;
  int rc = bind_source(fd);
  if (rc < 0) {
    st.connect_errors++;
    note_once(&said_connect, "bind (--bind): %s", strerror(errno));
    c->state = C_CONNECTING;
    conn_close(c);
    return;
  }
  do rc = connect(fd, addr->ai_addr, addr->ai_addrlen);
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINPROGRESS) {
    st.connect_errors++;
    note_once(&said_connect, "connect: %s", strerror(errno));
    c->state = C_CONNECTING;
    conn_close(c);
    return;
  }
  c->state = rc == 0 ? C_SENDING : C_CONNECTING;
  ev_io_start(loop, &c->io);
}


/* ------------------------------------------------------------------------ */
/* fanout: subscribers check every event; a publisher POSTs "t=<ns> n=<seq>" */

#define HIST_EXACT 100000  /* 1 us buckets below 100 ms ... */
#define HIST_N (HIST_EXACT + 100000) /* ... then 1 ms buckets up to 100 s */
#define PUBREQ_CAP 1024

static struct {
  long long deliveries, duplicated, foreign, out_of_order;
  long long first_pub_ns, last_delivery_ns, max_ns;
  double last_delivery; /* ev_now of the latest delivery */
  long pub_ok, pub_errors, published, pub_inflight;
  long long first_send_ns;
  double t_pub_start, t_pub_end;
  int pub_phase; /* 0 not started, 1 connecting, 2 publishing, 3 done */
} fo;
static unsigned char *seen;  /* nconns bitmaps of opt.events bits */
static size_t seen_stride;
static unsigned int *hist;
static struct conn *pubs;
static ev_timer pub_timer, fanout_timer;
static int said_pub;

static long long ts_ns(const struct timespec *t) { return (long long)t->tv_sec * 1000000000LL + t->tv_nsec; }
static long long mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return ts_ns(&t);
}

static void hist_add(long long ns) {
  long long us = ns / 1000;
  long b = us < HIST_EXACT ? (long)us : HIST_EXACT + (long)((us - HIST_EXACT) / 1000);
  if (b >= HIST_N) b = HIST_N - 1;
  hist[b]++;
}
static long long hist_us(long b) { return b < HIST_EXACT ? b : HIST_EXACT + (long long)(b - HIST_EXACT) * 1000; }
static long long hist_pct(double q) {
  long long total = 0, cum = 0;
  for (long b = 0; b < HIST_N; b++) total += hist[b];
  if (!total) return 0;
  long long want = (long long)(q * (double)total);
  if (want < 1) want = 1;
  for (long b = 0; b < HIST_N; b++) {
    cum += hist[b];
    if (cum >= want) return hist_us(b);
  }
  return hist_us(HIST_N - 1);
}

static void fanout_event(struct sse *s) {
  struct conn *c = (struct conn *)((char *)s - offsetof(struct conn, sse));
  s->data[s->dlen] = '\0';
  const char *tp = strstr(s->data, "t="), *np = strstr(s->data, "n=");
  char *e1 = NULL, *e2 = NULL;
  long long t = tp ? strtoll(tp + 2, &e1, 10) : 0;
  long long n = np ? strtoll(np + 2, &e2, 10) : 0;
  if (!tp || !np || e1 == tp + 2 || e2 == np + 2 || n < 1 || n > opt.events) {
    fo.foreign++;
    return;
  }
  unsigned char *bits = seen + (size_t)(c - conns) * seen_stride;
  unsigned long k = (unsigned long)(n - 1);
  if (bits[k >> 3] & (1u << (k & 7))) {
    fo.duplicated++;
    return;
  }
  bits[k >> 3] |= (unsigned char)(1u << (k & 7));
  if ((unsigned long)n < c->last_n) fo.out_of_order++;
  c->last_n = (unsigned int)n;
  c->got++;
  fo.deliveries++;
  long long now = ts_ns(&recv_ts), lat = now - t;
  if (lat < 0) lat = 0;
  hist_add(lat);
  if (lat > fo.max_ns) fo.max_ns = lat;
  if (!fo.first_pub_ns || t < fo.first_pub_ns) fo.first_pub_ns = t;
  if (now > fo.last_delivery_ns) fo.last_delivery_ns = now;
  fo.last_delivery = ev_now(loop);
}

static void pub_connect(struct conn *c) {
  char *req = c->req;
  memset(c, 0, sizeof *c);
  c->req = req;
  c->is_pub = 1;
  c->fd = -1;
  c->state = C_DONE;
  int fd = socket(addr->ai_family, addr->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, addr->ai_protocol);
  if (fd < 0) {
    fo.pub_errors++;
    note_once(&said_pub, "publisher socket: %s", strerror(errno));
    return;
  }
  int rc = bind_source(fd);
  if (rc < 0) {
    fo.pub_errors++;
    note_once(&said_pub, "publisher bind (--bind): %s", strerror(errno));
    close(fd);
    return;
  }
  do rc = connect(fd, addr->ai_addr, addr->ai_addrlen);
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINPROGRESS) {
    fo.pub_errors++;
    note_once(&said_pub, "publisher connect: %s", strerror(errno));
    close(fd);
    return;
  }
  c->fd = fd;
  c->state = C_CONNECTING;
  ev_io_init(&c->io, on_io, fd, EV_WRITE);
  c->io.data = c;
  ev_io_start(loop, &c->io);
}

static void pub_pump(void);

static void pub_connected(struct conn *c) {
  c->state = C_PUB_IDLE;
  ev_io_stop(loop, &c->io);
  ev_io_set(&c->io, c->fd, EV_READ);
  ev_io_start(loop, &c->io);
  pub_pump();
}

static void pub_send(struct conn *c) {
  long n = ++fo.published;
  long long now = mono_ns();
  if (!fo.first_send_ns) fo.first_send_ns = now;
  char body[64];
  int bl = snprintf(body, sizeof body, "t=%lld n=%ld", now, n);
  int rl = snprintf(c->req, PUBREQ_CAP,
                    "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: text/plain\r\n"
                    "Content-Length: %d\r\n\r\n%s",
                    opt.pub_path, opt.host, opt.port, bl, body);
  c->req_len = (size_t)rl;
  c->sent = 0;
  c->head_line = 0;
  c->linelen = 0;
  c->head_bytes = 0;
  c->status = 0;
  c->chunked = 0;
  c->has_length = 0;
  c->left = 0;
  c->digits = 0;
  c->chstate = CH_SIZE;
  c->state = C_SENDING;
  fo.pub_inflight++;
  ev_io_stop(loop, &c->io);
  ev_io_set(&c->io, c->fd, EV_WRITE);
  ev_io_start(loop, &c->io);
  on_send(c);
}

static void pub_head_done(struct conn *c) {
  if (c->status >= 200 && c->status < 300) {
    fo.pub_ok++;
  } else {
    fo.pub_errors++;
    note_once(&said_pub, "publish: HTTP status %d", c->status);
  }
  c->state = C_BODY;
  c->body = c->chunked ? BODY_CHUNKED : c->has_length ? BODY_LENGTH : BODY_CLOSE;
  c->chstate = CH_SIZE;
  if (c->chunked) c->left = 0;
  if (c->body == BODY_LENGTH && c->left == 0) pub_response_done(c);
}

static void pub_response_done(struct conn *c) {
  fo.pub_inflight--;
  if (c->body == BODY_CLOSE) conn_close(c);
  else c->state = C_PUB_IDLE;
  pub_pump();
}

static void pub_closed(struct conn *c, int err) {
  if (c->state == C_BODY && c->body == BODY_CLOSE && !err) {
    pub_response_done(c);
    return;
  }
  if (c->state == C_SENDING || c->state == C_HEAD || c->state == C_BODY) {
    fo.pub_errors++;
    fo.pub_inflight--;
    note_once(&said_pub, "publish: the server closed the connection mid-request (%s)",
              err ? strerror(err) : "EOF");
  } else if (c->state == C_CONNECTING) {
    fo.pub_errors++;
    note_once(&said_pub, "publisher connect: %s", strerror(err));
  } /* else an idle keep-alive connection closed: reopened when needed */
  conn_close(c);
}

static void pub_pump(void) {
  if (fo.pub_phase != 2) return;
  double due = (ev_now(loop) - fo.t_pub_start) * opt.pub_rate + 1;
  for (long k = 0; k < opt.pub_conns && fo.published < opt.events && fo.published < due; k++)
    if (pubs[k].state == C_PUB_IDLE) pub_send(&pubs[k]);
  if (fo.published >= opt.events && fo.pub_inflight == 0) {
    fo.pub_phase = 3;
    fo.t_pub_end = ev_now(loop);
    ev_timer_stop(loop, &pub_timer);
    fprintf(stderr, "loadgen: published %ld events in %.2f s (ok=%ld errors=%ld)\n", fo.published,
            fo.t_pub_end - fo.t_pub_start, fo.pub_ok, fo.pub_errors);
    fflush(stderr);
  }
}

static void on_pub_timer(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l; (void)w; (void)revents;
  double now = ev_now(loop);
  if (fo.pub_phase == 1) { /* waiting for the publisher connections (2 s at most) */
    long ready = 0;
    for (long k = 0; k < opt.pub_conns; k++) ready += pubs[k].state == C_PUB_IDLE;
    if (ready < opt.pub_conns && now - t_hold < 2 + opt.pub_wait) return;
    if (now - t_hold < opt.pub_wait) return; /* --pub-wait: a quiet moment before the first publish */
    fo.pub_phase = 2;
    fo.t_pub_start = now;
    fprintf(stderr, "loadgen: publishing %ld events at %g/s over %ld connection(s)\n", opt.events,
            opt.pub_rate, ready);
    fflush(stderr);
  }
  if (fo.pub_phase != 2) return;
  if (now - fo.t_pub_start > opt.events / opt.pub_rate + 30) { /* bounded: give up */
    long left = opt.events - fo.published;
    fo.pub_errors += left + fo.pub_inflight;
    note_once(&said_pub, "publish: %ld events not published or answered in time", left + fo.pub_inflight);
    fo.published = opt.events;
    fo.pub_inflight = 0;
    pub_pump();
    return;
  }
  if (fo.published < opt.events) /* reopen closed publisher connections */
    for (long k = 0; k < opt.pub_conns; k++)
      if (pubs[k].state == C_DONE) pub_connect(&pubs[k]);
  pub_pump();
}

static void finish(void);

/* Ends the run when every open subscriber has every event, or when deliveries stopped. */
static void on_fanout_timer(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l; (void)w; (void)revents;
  double now = ev_now(loop);
  if (!opt.subscribe_only && fo.pub_phase != 3) return;
  long incomplete = 0;
  for (long i = 0; i < nconns; i++)
    incomplete += conns[i].state == C_BODY && conns[i].got < (unsigned long)opt.events;
  if (incomplete == 0) { finish(); return; }
  double since = fo.last_delivery;
  if (!opt.subscribe_only && fo.t_pub_end > since) since = fo.t_pub_end;
  if (since == 0) { /* subscribe-only, nothing yet: wait for the publisher */
    if (now - t_hold > opt.start_timeout) {
      fprintf(stderr, "loadgen: no event within %.0f s\n", opt.start_timeout);
      finish();
    }
    return;
  }
  if (now - since > opt.quiet) {
    fprintf(stderr, "loadgen: %ld subscribers still miss events after %.1f s without a delivery\n",
            incomplete, opt.quiet);
    finish();
  }
}

static void fanout_start(void) {
  long open = 0;
  for (long i = 0; i < nconns; i++) open += conns[i].state == C_BODY;
  fprintf(stderr, "loadgen: subscribed %ld streams (established=%ld errors=%ld) after %.2f s\n", open,
          st.established, st.connect_errors + st.timeouts + st.http_errors + st.not_sse + st.parse_errors,
          t_hold - t_start);
  fflush(stderr);
  ev_timer_init(&fanout_timer, on_fanout_timer, 0.02, 0.02);
  ev_timer_start(loop, &fanout_timer);
  if (opt.subscribe_only) return;
  fo.pub_phase = 1;
  for (long k = 0; k < opt.pub_conns; k++) pub_connect(&pubs[k]);
  ev_timer_init(&pub_timer, on_pub_timer, 0.001, 0.001);
  ev_timer_start(loop, &pub_timer);
}

static ev_timer pace_timer, deadline_timer, hold_timer;
static ev_signal sigint_w, sigterm_w;

/* ------------------------------------------------------------------------ */
/* streams: clients that each run finite SSE streams, one after another      */

#define BACKOFF 0.010   /* seconds before a client starts over after a failure */
#define DRAIN_MAX 1.0   /* seconds to wait for the server's close after the response */
#define SWEEP_TICK 0.1  /* seconds between checks for stalled streams */

static struct {
  long long streams, events, short_streams, opened, closed_early;
  long busy;              /* streams in flight */
  int win;                /* 0 starting, 1 window, 2 grace, 3 done */
  double t_win, t_win_end; /* the window: [t_win, t_win_end) */
  double cpu_win, cpu_s;  /* CPU seconds at the window's start; in the window */
} ss;
static long *ring, ring_head, ring_len; /* clients waiting out their back-off, in order */
static ev_timer backoff_timer, sweep_timer, window_timer;
static int said_short, said_drain;

static double cpu_now(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) < 0) return 0;
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

/* Watches c's socket for exactly `events`, touching libev (and epoll) only on a change. */
static void watch(struct conn *c, int events) {
  if (ev_is_active(&c->io) && (c->io.events & (EV_READ | EV_WRITE)) == events) return;
  ev_io_stop(loop, &c->io);
  ev_io_set(&c->io, c->fd, events);
  ev_io_start(loop, &c->io);
}

static void set_busy(struct conn *c, int on) {
  if (c->busy == on) return;
  c->busy = (unsigned char)on;
  ss.busy += on ? 1 : -1;
}

/* A fresh response parser for the next stream, which starts now. */
static void stream_begin(struct conn *c, int reused) {
  c->reused = (unsigned char)reused;
  set_busy(c, 1);
  c->t_begin = c->t_req = ev_now(loop);
  c->head_line = 0;
  c->linelen = 0;
  c->head_bytes = 0;
  c->status = 0;
  c->chunked = 0;
  c->has_length = 0;
  c->sse_type = 0;
  c->digits = 0;
  c->hdr_close = 0;
  c->left = 0;
  c->chstate = CH_SIZE;
  c->body = BODY_CLOSE;
  c->sent = 0;
  c->sse.state = S_BOL;
  c->sse.blk = 0;
  c->sse.flen = 0;
  c->sse.dlen = 0;
  c->sse.nev = 0;
}

static void grace_check(void) {
  if (ss.win == 2 && ss.busy == 0) finish();
}

static void backoff_push(struct conn *c) {
  c->t_begin = ev_now(loop) + BACKOFF;
  ring[(ring_head + ring_len) % nconns] = (long)(c - conns);
  ring_len++;
  if (!ev_is_active(&backoff_timer)) {
    ev_timer_set(&backoff_timer, BACKOFF, 0.);
    ev_timer_start(loop, &backoff_timer);
  }
}

static void client_connect(struct conn *c);

/* The stream failed and its connection is closed (conn_close counted why). */
static void client_failed(struct conn *c) {
  set_busy(c, 0);
  settle(c);
  if (ss.win < 2) backoff_push(c);
  else grace_check();
}

static void client_close_ok(struct conn *c) {
  if (c->state == C_DONE) return;
  ev_io_stop(loop, &c->io);
  close(c->fd);
  c->fd = -1;
  c->state = C_DONE;
}

/* The connection is closed without a failure: on to the next stream, if any. */
static void client_next(struct conn *c) {
  if (ss.win < 2) client_connect(c);
  else grace_check();
}

/* Writes the request (from the start or where EAGAIN left it). */
static void stream_send(struct conn *c) {
  while (c->sent < request_len) {
    ssize_t n = send(c->fd, request + c->sent, request_len - c->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) { /* connecting, or a full buffer */
        watch(c, EV_WRITE);
        return;
      }
      if (c->reused) {
        ss.closed_early++;
        note_once(&said_closed, "the server closed a kept-alive connection (send: %s)", strerror(errno));
      } else {
        st.connect_errors++;
        note_once(&said_connect, "connect: %s", strerror(errno));
      }
      conn_close(c);
      return;
    }
    if (c->state == C_CONNECTING) {
      c->state = C_SENDING;
      ss.opened++;
    }
    c->sent += (size_t)n;
  }
  c->state = C_HEAD;
  watch(c, EV_READ);
}

static void stream_io(struct ev_loop *l, ev_io *w, int revents) {
  (void)l;
  struct conn *c = w->data;
  if (c->state == C_CONNECTING || c->state == C_SENDING) {
    if (revents & EV_WRITE) stream_send(c); /* a connect error shows in send's errno */
  } else if (revents & EV_READ) {
    on_read(c);
  }
}

/* A new connection and its first request. The request goes out at once:
 * on loopback the handshake is usually done when connect() returns. */
static void client_connect(struct conn *c) {
  stream_begin(c, 0);
  int fd = socket(addr->ai_family, addr->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, addr->ai_protocol);
  if (fd < 0) {
    st.connect_errors++;
    note_once(&said_connect, "socket: %s", strerror(errno));
    client_failed(c);
    return;
  }
  int rc = bind_source(fd);
  if (rc < 0) {
    st.connect_errors++;
    note_once(&said_connect, "bind (--bind): %s", strerror(errno));
    close(fd);
    client_failed(c);
    return;
  }
  do rc = connect(fd, addr->ai_addr, addr->ai_addrlen);
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINPROGRESS) { /* EADDRNOTAVAIL: out of ephemeral ports */
    st.connect_errors++;
    note_once(&said_connect, "connect: %s", strerror(errno));
    close(fd);
    client_failed(c);
    return;
  }
  c->fd = fd;
  c->state = C_CONNECTING;
  ev_io_init(&c->io, stream_io, fd, EV_READ);
  c->io.data = c;
  stream_send(c);
}

/* The next stream on the same (kept-alive) connection. */
static void stream_request(struct conn *c) {
  stream_begin(c, 1);
  c->state = C_SENDING;
  stream_send(c);
}

/* The body ended properly (status 200, text/event-stream). */
static void stream_done(struct conn *c) {
  double now = ev_now(loop);
  unsigned int nev = c->sse.nev;
  if (nev != (unsigned long)opt.events)
    note_once(&said_short, "a stream ended after %u events, not %ld", nev, opt.events);
  if (ss.win == 1 && now < ss.t_win_end) {
    if (nev == (unsigned long)opt.events) {
      ss.streams++;
      hist_add((long long)((now - c->t_req) * 1e9));
    } else {
      ss.short_streams++;
    }
    ss.events += nev;
  }
  set_busy(c, 0);
  if (c->body == BODY_CLOSE) { /* it ended with the server's close */
    client_close_ok(c);
    client_next(c);
    return;
  }
  if (opt.close || c->hdr_close) { /* let the server close first: its side keeps the TIME_WAIT */
    c->state = C_DRAIN;
    c->t_begin = now;
    return;
  }
  if (ss.win < 2) {
    stream_request(c);
  } else {
    client_close_ok(c);
    grace_check();
  }
}

/* The server closed the connection (EOF or reset). */
static void stream_closed(struct conn *c, int err) {
  if (c->state == C_DRAIN) {
    client_close_ok(c);
    client_next(c);
    return;
  }
  if (c->state == C_BODY && c->body == BODY_CLOSE && !err) {
    stream_done(c);
    return;
  }
  ss.closed_early++;
  note_once(&said_closed, "the server closed a connection mid-stream (%s, %s)",
            err ? strerror(err) : "EOF",
            c->state == C_BODY ? "in the body" : c->head_bytes ? "in the response head"
            : c->reused ? "before any response byte, on a kept-alive connection" : "before any response byte");
  conn_close(c);
}

static void on_backoff(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l; (void)w; (void)revents;
  double now = ev_now(loop);
  while (ring_len) {
    struct conn *c = &conns[ring[ring_head]];
    if (c->t_begin > now + 1e-4) break;
    ring_head = (ring_head + 1) % nconns;
    ring_len--;
    if (ss.win < 2) client_connect(c);
  }
  if (ring_len) {
    double d = conns[ring[ring_head]].t_begin - now;
    ev_timer_set(&backoff_timer, d > 1e-4 ? d : 1e-4, 0.);
    ev_timer_start(loop, &backoff_timer);
  }
  grace_check();
}

/* Stalled streams, and servers that do not close after "Connection: close". */
static void on_sweep(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l; (void)w; (void)revents;
  double now = ev_now(loop);
  for (long i = 0; i < st.opened; i++) {
    struct conn *c = &conns[i];
    if (c->busy && c->state != C_DONE && now - c->t_begin > opt.timeout) {
      st.timeouts++;
      note_once(&said_timeout, "a stream took longer than %g s (connect, request and response)", opt.timeout);
      conn_close(c);
    } else if (c->state == C_DRAIN && now - c->t_begin > DRAIN_MAX) {
      st.timeouts++;
      note_once(&said_drain, "the server did not close the connection within %g s of a response"
                " that said it would (Connection: close)", DRAIN_MAX);
      client_close_ok(c);
      client_next(c);
    }
  }
  grace_check();
}

static void on_window(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l; (void)revents;
  if (ss.win == 1) { /* the window ends; the grace begins */
    ss.win = 2;
    ss.cpu_s = cpu_now() - ss.cpu_win;
    fprintf(stderr, "loadgen: window ended: %lld streams, %lld events; waiting up to %g s for %ld in flight\n",
            ss.streams, ss.events, opt.grace, ss.busy);
    fflush(stderr);
    ev_timer_set(w, opt.grace, 0.);
    ev_timer_start(loop, w);
    grace_check();
    return;
  }
  for (long i = 0; i < st.opened; i++) /* the grace ended: what still runs has stalled */
    if (conns[i].busy) {
      st.timeouts++;
      note_once(&said_timeout, "streams still in flight %g s after the window", opt.grace);
    }
  finish();
}

static void window_start(void) {
  if (ss.win != 0) return;
  phase = 1;
  ss.win = 1;
  ss.t_win = ev_now(loop);
  ss.t_win_end = ss.t_win + opt.duration;
  ss.cpu_win = cpu_now();
  ev_timer_stop(loop, &deadline_timer);
  fprintf(stderr, "loadgen: window of %g s starts after %.2f s (%ld clients started, %ld not answered yet,"
          " %lld connections, errors=%ld)\n", opt.duration, ss.t_win - t_start, st.opened, pending, ss.opened,
          st.connect_errors + st.timeouts + st.http_errors + st.not_sse + st.parse_errors + (long)ss.closed_early);
  fflush(stderr);
  ev_timer_init(&window_timer, on_window, opt.duration, 0.);
  ev_timer_start(loop, &window_timer);
}

/* The pacer starts client i: its first stream. */
static void client_start(struct conn *c) {
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->state = C_DONE;
  st.opened++;
  c->pending = 1; /* until its first response head, or a failure */
  pending++;
  client_connect(c);
}

/* ------------------------------------------------------------------------ */
/* Phases                                                                    */

static void finish(void) {
  if (phase == 2) return;
  if (phase == 0) { /* stopped while connecting: no hold */
    t_hold = ev_now(loop);
    st.events_at_hold = st.events;
    st.heartbeats_at_hold = st.heartbeats;
  }
  phase = 2;
  t_end = ev_now(loop);
  ev_break(loop, EVBREAK_ALL);
}

static void on_hold_end(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l; (void)w; (void)revents;
  finish();
}

static void start_hold(void) {
  if (phase != 0) return;
  if (streams_mode) { /* every client answered (or failed) once */
    window_start();
    return;
  }
  phase = 1;
  ev_timer_stop(loop, &pace_timer);
  ev_timer_stop(loop, &deadline_timer);
  t_hold = ev_now(loop);
  st.events_at_hold = st.events;
  st.heartbeats_at_hold = st.heartbeats;
  if (fanout_mode) {
    fanout_start();
    return;
  }
  long open = 0;
  for (long i = 0; i < nconns; i++) open += conns[i].state == C_BODY;
  fprintf(stderr, "loadgen: holding %ld streams for %.0f s (established=%ld errors=%ld) after %.2f s\n",
          open, opt.hold, st.established,
          st.connect_errors + st.timeouts + st.http_errors + st.not_sse + st.parse_errors,
          t_hold - t_start);
  fflush(stderr);
  ev_timer_init(&hold_timer, on_hold_end, opt.hold, 0.);
  ev_timer_start(loop, &hold_timer);
}

static void on_pace(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l; (void)revents;
  double due = (ev_now(loop) - t_start) * opt.rate + 1;
  long want = due >= (double)nconns ? nconns : (long)due;
  for (int k = 0; k < OPENS_PER_TICK && st.opened < want && pending < opt.max_pending; k++) {
    if (streams_mode) client_start(&conns[st.opened]);
    else conn_open(&conns[st.opened]);
  }
  if (st.opened == nconns) {
    ev_timer_stop(loop, w);
    if (pending == 0) start_hold();
  }
}

static void on_deadline(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l; (void)w; (void)revents;
  if (phase != 0) return;
  if (streams_mode) { /* late clients go on starting (and time out by themselves) */
    fprintf(stderr, "loadgen: %ld clients not answered once by the deadline; the window starts anyway\n",
            pending + (nconns - st.opened));
    window_start();
    return;
  }
  for (long i = 0; i < st.opened; i++) {
    struct conn *c = &conns[i];
    if (c->pending) {
      st.timeouts++;
      note_once(&said_timeout, "no response head within the connect deadline");
      conn_close(c);
    }
  }
  if (nconns > st.opened) { /* never opened: they count as failed connects */
    st.connect_errors += nconns - st.opened;
    note_once(&said_connect, "%ld connections not opened before the deadline", nconns - st.opened);
  }
  start_hold();
}

static void on_signal(struct ev_loop *l, ev_signal *w, int revents) {
  (void)l; (void)revents;
  fprintf(stderr, "loadgen: signal %d: stopping early\n", w->signum);
  aborted = 1;
  finish();
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                    */

static void usage(const char *msg) {
  if (msg) fprintf(stderr, "loadgen: %s\n", msg);
  fprintf(stderr,
          "usage: loadgen idle --port P --conns N --hold SECONDS [--host H] [--path P]\n"
          "                    [--rate R] [--max-pending M] [--connect-timeout S]\n"
          "  --host H             server address (default 127.0.0.1)\n"
          "  --bind A             source address of every connection, e.g. 127.0.0.2 (each source\n"
          "                       address has its own ephemeral ports: default the kernel's choice)\n"
          "  --port P             server port (required)\n"
          "  --path P             request target (default /)\n"
          "  --conns N            connections to open and hold\n"
          "  --hold S             seconds to hold them once all are answered\n"
          "  --rate R             new connections a second at most (default 2000)\n"
          "  --max-pending M      connections not yet answered at once at most (default 512)\n"
          "  --connect-timeout S  the connect phase may last N/R + S seconds (default 30)\n"
          "\n"
          "       loadgen fanout --port P --path SUB --conns N --pub-path PUB [--events M]\n"
          "                      [--pub-rate R] [--pub-conns K] [--quiet S] [--hist FILE]\n"
          "       loadgen fanout --port P --path SUB --conns N --subscribe-only [--events M]\n"
          "                      [--start-timeout S] [--quiet S] [--hist FILE]\n"
          "  (--host, --rate, --max-pending and --connect-timeout as above)\n"
          "  --path SUB           the subscribers' SSE URL path\n"
          "  --pub-path PUB       POST \"t=<CLOCK_MONOTONIC ns> n=<seq>\" here (text/plain)\n"
          "  --events M           events to publish, and to expect on every subscriber (default 100)\n"
          "  --pub-rate R         events a second (default 50)\n"
          "  --pub-conns K        keep-alive publisher connections (default 2)\n"
          "  --subscribe-only     no publisher: another process publishes\n"
          "  --start-timeout S    subscribe-only: wait S seconds for the first event (default 120)\n"
          "  --quiet S            stop S seconds after the last delivery (or publish) (default 5)\n"
          "  --hist FILE          write the latency histogram (\"<us> <count>\" lines) to FILE\n"
          "  --pub-wait S         publisher: wait S seconds after its subscribers are established\n"
          "                       before the first publish (default 0)\n"
          "  --linger S           when done, say \"loadgen: finished\" on stderr and keep every\n"
          "                       connection open S seconds more before closing (default 0)\n"
          "\n"
          "       loadgen streams --port P --path P --conns C --duration D [--events N] [--close]\n"
          "                       [--timeout T] [--grace G]\n"
          "  (--host, --rate, --max-pending and --connect-timeout as above; --rate: no limit by default)\n"
          "  --conns C            clients, each running finite streams one after another\n"
          "  --duration D         seconds of measurement, once every client was answered once\n"
          "  --events N           events each stream must have to count as complete (default 10)\n"
          "  --close              \"Connection: close\": a new connection for every stream\n"
          "                       (default: keep-alive, as long as the server keeps it)\n"
          "  --timeout T          a stream running longer is a timeout (default 30)\n"
          "  --grace G            seconds for streams in flight after the window (default 2)\n");
  exit(2);
}

static double num(const char *flag, const char *v, double lo, double hi) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || d < lo || d > hi) {
    fprintf(stderr, "loadgen: %s takes a number from %g to %g, not %s\n", flag, lo, hi, v);
    exit(2);
  }
  return d;
}

static void parse_args(int argc, char **argv) {
  if (argc < 2) usage(NULL);
  opt.mode = argv[1];
  if (strcmp(opt.mode, "-h") == 0 || strcmp(opt.mode, "--help") == 0) usage(NULL);
  if (strcmp(opt.mode, "fanout") == 0) {
    fanout_mode = 1;
  } else if (strcmp(opt.mode, "streams") == 0) {
    streams_mode = 1;
  } else if (strcmp(opt.mode, "idle") != 0) {
    fprintf(stderr, "loadgen: mode %s is not implemented (idle, fanout and streams are)\n", opt.mode);
    exit(2);
  }
  int rate_set = 0, events_set = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (fanout_mode && strcmp(a, "--subscribe-only") == 0) { opt.subscribe_only = 1; continue; }
    if (streams_mode && strcmp(a, "--close") == 0) { opt.close = 1; continue; }
    if (i + 1 >= argc) usage("every option takes a value");
    const char *v = argv[++i];
    if (strcmp(a, "--host") == 0) opt.host = v;
    else if (strcmp(a, "--bind") == 0) opt.bind = v;
    else if (strcmp(a, "--port") == 0) { num(a, v, 1, 65535); opt.port = v; }
    else if (strcmp(a, "--path") == 0) opt.path = v;
    else if (strcmp(a, "--conns") == 0) opt.conns = (long)num(a, v, 1, 10000000);
    else if (strcmp(a, "--hold") == 0) opt.hold = num(a, v, 0, 86400);
    else if (strcmp(a, "--rate") == 0) { opt.rate = num(a, v, 1, 1e7); rate_set = 1; }
    else if (strcmp(a, "--max-pending") == 0) opt.max_pending = (long)num(a, v, 1, 1e7);
    else if (strcmp(a, "--connect-timeout") == 0) opt.connect_timeout = num(a, v, 0, 86400);
    else if (fanout_mode && strcmp(a, "--pub-path") == 0) opt.pub_path = v;
    else if (fanout_mode && strcmp(a, "--events") == 0) opt.events = (long)num(a, v, 1, 1000000);
    else if (fanout_mode && strcmp(a, "--pub-rate") == 0) opt.pub_rate = num(a, v, 0.01, 1e7);
    else if (fanout_mode && strcmp(a, "--pub-conns") == 0) opt.pub_conns = (long)num(a, v, 1, 1000);
    else if (fanout_mode && strcmp(a, "--quiet") == 0) opt.quiet = num(a, v, 0.1, 3600);
    else if (fanout_mode && strcmp(a, "--start-timeout") == 0) opt.start_timeout = num(a, v, 1, 86400);
    else if (fanout_mode && strcmp(a, "--pub-wait") == 0) opt.pub_wait = num(a, v, 0, 3600);
    else if (fanout_mode && strcmp(a, "--linger") == 0) opt.linger = num(a, v, 0, 3600);
    else if (fanout_mode && strcmp(a, "--hist") == 0) opt.hist_file = v;
    else if (streams_mode && strcmp(a, "--events") == 0) { opt.events = (long)num(a, v, 0, 1000000); events_set = 1; }
    else if (streams_mode && strcmp(a, "--duration") == 0) opt.duration = num(a, v, 0.001, 86400);
    else if (streams_mode && strcmp(a, "--timeout") == 0) opt.timeout = num(a, v, 0.01, 86400);
    else if (streams_mode && strcmp(a, "--grace") == 0) opt.grace = num(a, v, 0, 3600);
    else {
      fprintf(stderr, "loadgen: unknown option %s\n", a);
      usage(NULL);
    }
  }
  if (!opt.port) usage("--port is required");
  if (opt.conns <= 0) usage("--conns is required");
  if (!fanout_mode && !streams_mode && opt.hold < 0) usage("--hold is required");
  if (streams_mode && opt.duration < 0) usage("--duration is required");
  if (streams_mode && !rate_set) opt.rate = 1e7; /* all at once, but at most --max-pending unanswered */
  if (streams_mode && !events_set) opt.events = 10;
  if (fanout_mode && !opt.subscribe_only && !opt.pub_path) usage("--pub-path or --subscribe-only is required");
  if (opt.pub_path && (opt.pub_path[0] != '/' || strpbrk(opt.pub_path, " \r\n")))
    usage("--pub-path must start with / and hold no space or line end");
  if (fanout_mode && opt.subscribe_only) opt.pub_conns = 0;
  if (opt.path[0] != '/' || strpbrk(opt.path, " \r\n")) usage("--path must start with / and hold no space or line end");
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) { perror("loadgen: getrlimit"); exit(1); }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) perror("loadgen: setrlimit");
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  /* stdio, the loop's own descriptors and a margin */
  if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)opt.conns + (rlim_t)(fanout_mode ? opt.pub_conns : 0) + 32 > rl.rlim_cur) {
    fprintf(stderr,
            "loadgen: %ld connections need more descriptors than this process may open (%llu);"
            " split them over several processes\n",
            opt.conns, (unsigned long long)rl.rlim_cur);
    exit(2);
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  raise_nofile();
  signal(SIGPIPE, SIG_IGN);

  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int gai = getaddrinfo(opt.host, opt.port, &hints, &addr);
  if (gai) {
    fprintf(stderr, "loadgen: %s: %s\n", opt.host, gai_strerror(gai));
    return 2;
  }
  if (opt.bind) {
    struct addrinfo bh;
    memset(&bh, 0, sizeof bh);
    bh.ai_family = addr->ai_family;
    bh.ai_socktype = SOCK_STREAM;
    bh.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    gai = getaddrinfo(opt.bind, "0", &bh, &src_addr);
    if (gai) {
      fprintf(stderr, "loadgen: --bind %s: %s\n", opt.bind, gai_strerror(gai));
      return 2;
    }
  }
  int n = snprintf(request, sizeof request,
                   strchr(opt.host, ':') ? "GET %s HTTP/1.1\r\nHost: [%s]:%s\r\nAccept: text/event-stream\r\n%s\r\n"
                                         : "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAccept: text/event-stream\r\n%s\r\n",
                   opt.path, opt.host, opt.port, opt.close ? "Connection: close\r\n" : "");
  if (n < 0 || (size_t)n >= sizeof request) { fprintf(stderr, "loadgen: request too long\n"); return 2; }
  request_len = (size_t)n;

  nconns = opt.conns;
  conns = calloc((size_t)nconns, sizeof *conns);
  if (!conns) { perror("loadgen: calloc"); return 1; }
  if (fanout_mode) {
    seen_stride = ((size_t)opt.events + 7) / 8;
    if ((double)seen_stride * (double)nconns > 512.0 * 1024 * 1024) {
      fprintf(stderr, "loadgen: --conns x --events is too large (512 MiB of bookkeeping at most)\n");
      return 2;
    }
    seen = calloc((size_t)nconns, seen_stride);
    hist = calloc(HIST_N, sizeof *hist);
    pubs = calloc((size_t)opt.pub_conns + 1, sizeof *pubs);
    if (!seen || !hist || !pubs) { perror("loadgen: calloc"); return 1; }
    for (long k = 0; k < opt.pub_conns; k++) {
      pubs[k].req = malloc(PUBREQ_CAP);
      if (!pubs[k].req) { perror("loadgen: malloc"); return 1; }
      pubs[k].is_pub = 1;
    }
  }
  if (streams_mode) {
    hist = calloc(HIST_N, sizeof *hist);
    ring = calloc((size_t)nconns, sizeof *ring);
    if (!hist || !ring) { perror("loadgen: calloc"); return 1; }
  }

  loop = ev_default_loop(EVFLAG_AUTO);
  if (!loop) { fprintf(stderr, "loadgen: cannot start libev\n"); return 1; }
  ev_signal_init(&sigint_w, on_signal, SIGINT);
  ev_signal_init(&sigterm_w, on_signal, SIGTERM);
  ev_signal_start(loop, &sigint_w);
  ev_signal_start(loop, &sigterm_w);
  ev_unref(loop); /* the signal watchers alone do not keep the loop alive */
  ev_unref(loop);

  ev_now_update(loop);
  t_start = ev_now(loop);
  ev_timer_init(&pace_timer, on_pace, 0., PACE_TICK);
  ev_timer_start(loop, &pace_timer);
  ev_timer_init(&deadline_timer, on_deadline, (double)nconns / opt.rate + opt.connect_timeout, 0.);
  ev_timer_start(loop, &deadline_timer);
  if (streams_mode) {
    ev_timer_init(&backoff_timer, on_backoff, BACKOFF, 0.);
    ev_timer_init(&sweep_timer, on_sweep, SWEEP_TICK, SWEEP_TICK);
    ev_timer_start(loop, &sweep_timer);
  }

  ev_run(loop, 0);
  if (phase != 2) finish(); /* nothing left to watch (cannot happen while a timer runs) */
  if (fanout_mode && opt.linger > 0 && !aborted) {
    /* a runner reading the servers' CPU time between the first publish and the
     * last delivery does it now, before the closing of every connection */
    fprintf(stderr, "loadgen: finished (deliveries=%lld duplicated=%lld); lingering %g s\n", fo.deliveries,
            fo.duplicated, opt.linger);
    fflush(stderr);
    struct timespec ts = { (time_t)opt.linger, (long)((opt.linger - (double)(time_t)opt.linger) * 1e9) };
    nanosleep(&ts, NULL); /* a signal cuts it short */
  }

  if (streams_mode) {
    double dur = 0;
    if (ss.win == 1) { /* stopped by a signal inside the window */
      dur = t_end - ss.t_win;
      ss.cpu_s = cpu_now() - ss.cpu_win;
    } else if (ss.win >= 2) {
      dur = opt.duration;
    }
    ss.win = 3;
    for (long i = 0; i < st.opened; i++) client_close_ok(&conns[i]);
    long long errors = st.connect_errors + st.timeouts + st.http_errors + st.not_sse + st.parse_errors +
                       ss.closed_early;
    printf("mode=streams conns=%ld duration_s=%.3f streams=%lld streams_per_s=%.1f events=%lld"
           " events_per_s=%.1f short_streams=%lld connections_opened=%lld errors=%lld connect_errors=%ld"
           " timeouts=%ld http_errors=%ld not_sse=%ld parse_errors=%ld closed_early=%lld bytes=%lld"
           " stream_p50_ms=%.3f stream_p99_ms=%.3f loadgen_cpu_s=%.3f aborted=%d\n",
           nconns, dur, ss.streams, dur > 0 ? (double)ss.streams / dur : 0, ss.events,
           dur > 0 ? (double)ss.events / dur : 0, ss.short_streams, ss.opened, errors, st.connect_errors,
           st.timeouts, st.http_errors, st.not_sse, st.parse_errors, ss.closed_early, st.bytes,
           hist_pct(0.50) / 1000.0, hist_pct(0.99) / 1000.0, ss.cpu_s, aborted);
    fflush(stdout);
    freeaddrinfo(addr);
    return 0;
  }

  for (long i = 0; i < st.opened; i++) {
    struct conn *c = &conns[i];
    if (c->state == C_BODY) st.open_at_end++;
    if (c->state != C_DONE) {
      if (c->pending) { st.timeouts++; c->pending = 0; } /* only when aborted early */
      ev_io_stop(loop, &c->io);
      close(c->fd);
      c->state = C_DONE;
    }
  }
  long errors = st.connect_errors + st.timeouts + st.http_errors + st.not_sse + st.parse_errors;
  if (fanout_mode) {
    for (long k = 0; k < opt.pub_conns; k++)
      if (pubs[k].state != C_DONE) { ev_io_stop(loop, &pubs[k].io); close(pubs[k].fd); pubs[k].state = C_DONE; }
    long long first = fo.first_pub_ns;
    if (fo.first_send_ns && (!first || fo.first_send_ns < first)) first = fo.first_send_ns;
    double span = fo.last_delivery_ns > first && first ? (double)(fo.last_delivery_ns - first) / 1e9 : 0;
    long long expected = (long long)nconns * opt.events;
    if (opt.hist_file) {
      FILE *f = fopen(opt.hist_file, "w");
      if (!f) { perror(opt.hist_file); }
      else {
        for (long b = 0; b < HIST_N; b++) if (hist[b]) fprintf(f, "%lld %u\n", hist_us(b), hist[b]);
        fclose(f);
      }
    }
    printf("mode=fanout subs=%ld established=%ld events=%ld deliveries=%lld expected=%lld lost=%lld"
           " duplicated=%lld deliveries_per_s=%.0f p50_us=%lld p99_us=%lld max_us=%lld errors=%ld"
           " published=%ld pub_ok=%ld pub_errors=%ld open_at_end=%ld closed_by_server=%ld"
           " ended_by_server=%ld out_of_order=%lld foreign_events=%lld heartbeats=%lld"
           " connect_errors=%ld timeouts=%ld http_errors=%ld not_sse=%ld parse_errors=%ld"
           " first_pub_ns=%lld last_delivery_ns=%lld span_s=%.3f connect_s=%.3f publish_s=%.3f"
           " subscribe_only=%d aborted=%d\n",
           nconns, st.established, opt.events, fo.deliveries, expected, expected - fo.deliveries,
           fo.duplicated, span > 0 ? (double)fo.deliveries / span : 0, hist_pct(0.50), hist_pct(0.99),
           fo.max_ns / 1000, errors + fo.pub_errors, fo.published, fo.pub_ok, fo.pub_errors,
           st.open_at_end, st.closed_by_server, st.ended_by_server, fo.out_of_order, fo.foreign,
           st.heartbeats, st.connect_errors, st.timeouts, st.http_errors, st.not_sse, st.parse_errors,
           first, fo.last_delivery_ns, span, t_hold - t_start,
           fo.t_pub_end > fo.t_pub_start ? fo.t_pub_end - fo.t_pub_start : 0, opt.subscribe_only, aborted);
    fflush(stdout);
    freeaddrinfo(addr);
    return 0;
  }
  printf("mode=idle conns=%ld established=%ld open_at_end=%ld closed_by_server=%ld ended_by_server=%ld"
         " events=%lld heartbeats=%lld events_hold=%lld heartbeats_hold=%lld other_frames=%lld"
         " errors=%ld connect_errors=%ld timeouts=%ld http_errors=%ld not_sse=%ld parse_errors=%ld"
         " bytes=%lld connect_s=%.3f hold_s=%.3f aborted=%d\n",
         nconns, st.established, st.open_at_end, st.closed_by_server, st.ended_by_server,
         st.events, st.heartbeats, st.events - st.events_at_hold, st.heartbeats - st.heartbeats_at_hold,
         st.other_frames, errors, st.connect_errors, st.timeouts, st.http_errors, st.not_sse,
         st.parse_errors, st.bytes, t_hold - t_start, t_end - t_hold, aborted);
  fflush(stdout);
  freeaddrinfo(addr);
  free(conns);
  return 0;
}
