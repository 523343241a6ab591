/* bench/churn.c: the churn client of bench/soak, in C99 on libev. An
 * instrument, not a test: it keeps one server busy with every way a
 * connection can come and go, for a fixed time, and counts what it saw.
 *
 * Build (or `make -C bench churn`):
 *   cc -std=c99 -D_GNU_SOURCE -O2 -g -Wall -Wextra -o bench/churn bench/churn.c -lev
 *
 * Usage:
 *   churn --host 127.0.0.1 --port P --duration SECONDS [--scale X]
 *         [--report SECONDS] [--noread-hold SECONDS] [--seed N] [--only KIND,...] [--names N]
 *   churn --self-test       (the response parser on canned answers; exit 0 when right)
 *
 * Against bench/soak-app, all at once (rates are new connections a second at
 * --scale 1; pools are connections held at once, refilled as they end):
 *
 *   abandon   150/s  GET /sse/fast/, read 1-16 KiB of events, shutdown(SHUT_WR),
 *                    read to the server's close (a client that leaves politely)
 *   reset     100/s  GET /sse/fast/, read 1-8 KiB (one in four: nothing), then
 *                    SO_LINGER 0 and close: the server sees an RST
 *   junk       20/s  GET /sse/fast/ and 100 KiB of garbage in the same writes,
 *                    read 2 KiB of events, close
 *   resume    100/s  GET /sse/channel/hist-K/ (16 names) with Last-Event-ID: an id
 *                    this client's publishes got back a few events ago; waits for
 *                    every later event it knows of (the replay), then closes
 *   sub       150/s  GET /sse/channel/sub-N/, N new each time; holds 0.2-2 s, closes
 *   malformed   4/s  one of 12 bad or odd requests (bad request line, HTTP/9.9,
 *                    space in a header name, Transfer-Encoding gzip, 20 KiB header,
 *                    a 100 MB Content-Length, CL + chunked, NUL bytes, a bad chunk
 *                    size, an unknown route, a head cut short, a negative
 *                    Content-Length); reads the answer, closes
 *   publish   400/s  POST /pub/NAME/ over 16 kept-alive connections: 65 % to a new
 *                    name once-N (published once), 20 % to hist-K, 15 % to a
 *                    recent sub-N (subscribed now or a moment ago)
 *   flood       4/s  POST /flood/flood-K/?n=64&size=4096 (4 names, once a second
 *                    each: 256 KiB a second on each, which fills a never-reader's
 *                    socket buffers, a few MiB, in 10-20 s)
 *   slow     16 held GET /sse/fast/ with a 4 KiB receive buffer, 64 bytes read every
 *                    100 ms, for 10-30 s; then it reads the rest at full speed for
 *                    5 s: a close then means the write timeout had dropped it
 *                    (slow_dropped; its FIN waited behind the unread bytes)
 *   noread   16 held GET /sse/channel/flood-K/ with a 4 KiB receive buffer, never
 *                    read; after --noread-hold s (default 30) it reads everything and
 *                    expects the server's close (the write timeout dropped it)
 *   quiet    32 held GET /sse/quiet/ for the whole run (a server close is counted
 *                    and the stream reopened)
 *
 * --only runs some kinds alone (pub includes the floods), to look at one
 * behaviour. --names N takes the once-N and sub-N names modulo N (default 0:
 * every one new), so that the channel registry stops growing whatever the
 * server does with unused channels: what grows then grows for another reason.
 *
 * Every connection has a deadline (a reply within 5 s, every stage bounded);
 * the process stops starting connections after SECONDS, closes everything
 * and exits. Every --report seconds (default 10) a line of cumulative counts
 * goes to stderr ("churn: t=.."); at the end one line of key=value pairs on
 * stdout: for each kind K, K_started, K_answered (a 200 head, or any answer
 * for malformed), K_done (went as planned), K_server_closed (the server
 * closed first: for slow readers its write timeout, elsewhere not
 * expected), K_errors (connect errors, timeouts, bad statuses, parse
 * errors), K_events; and resets, replayed, short_replays, replay_disorder,
 * noread_dropped, noread_not_dropped, slow_dropped, quiet_dropped, pub_ok,
 * pub_new_names, pub_refused, pub_errors, pub_reconnects, flood_ok,
 * flood_errors, malformed_statuses (code:count,...), connect_errors,
 * timeouts, parse_errors, bad_status, errors (their sum), junk_bytes,
 * bytes_in, active, duration_s, cpu_s (this process's), aborted. SIGINT /
 * SIGTERM end the run early (aborted=1).
 */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 6000
#define READ_BUF (64 * 1024)
#define JUNK_BYTES (100 * 1024)
#define REPLY_TIMEOUT 5.0 /* connect, request and response head */
#define NHIST 16          /* hist-K channels */
#define HIST_RING 16      /* ids remembered per hist channel */
#define NFLOOD 4          /* flood-K channels */
#define SUB_RING 64       /* recent sub-N names */
#define TICK 0.005
#define DRAIN_TIMEOUT 5.0 /* slow and never-reading clients: to read what is left */

/* ------------------------------------------------------------------------ */
/* The response parser: status line, headers, Content-Length / chunked /      */
/* close-delimited bodies, SSE events in the body. Bytes in, counts out.     */

enum { R_HEAD, R_CL, R_CSIZE, R_CDATA, R_CCRLF, R_TRAILER, R_EOF, R_DONE };

struct resp {
  unsigned char st, head_done, done, chunked, line_over, sse_cr, sse_data, sse_skip;
  int status;
  long long clen, left;
  char line[256];
  unsigned short llen;
  int nlines;
  /* SSE */
  char sline[64];
  unsigned char slen, idlen, has_id;
  char id[32];
  char last_id[32];
  long events;
  long long body;
  /* the first bytes of the body (a publish answer's JSON) */
  char keep[128];
  unsigned char keeplen;
};

static void resp_init(struct resp *r) {
  memset(r, 0, sizeof *r);
  r->clen = -1;
}

static void sse_line(struct resp *r) {
  if (r->slen == 0) {
    if (r->sse_data) {
      r->events++;
      if (r->has_id) {
        memcpy(r->last_id, r->id, r->idlen);
        r->last_id[r->idlen] = '\0';
      }
    }
    r->sse_data = 0;
    r->has_id = 0;
    return;
  }
  if (r->slen >= 4 && memcmp(r->sline, "data", 4) == 0 && (r->slen == 4 || r->sline[4] == ':')) {
    r->sse_data = 1;
  } else if (r->slen >= 3 && memcmp(r->sline, "id:", 3) == 0) {
    size_t off = r->slen > 3 && r->sline[3] == ' ' ? 4 : 3;
    size_t n = r->slen - off;
    if (n >= sizeof r->id) n = sizeof r->id - 1;
    memcpy(r->id, r->sline + off, n);
    r->idlen = (unsigned char)n;
    r->has_id = 1;
  }
}

/* Decoded body bytes: the SSE lines (LF, CR or CRLF end a line). */
static void body_bytes(struct resp *r, const char *p, size_t n) {
  r->body += (long long)n;
  if (r->keeplen < sizeof r->keep - 1) {
    size_t k = sizeof r->keep - 1 - r->keeplen;
    if (k > n) k = n;
    memcpy(r->keep + r->keeplen, p, k);
    r->keeplen = (unsigned char)(r->keeplen + k);
    r->keep[r->keeplen] = '\0';
  }
  for (size_t i = 0; i < n; i++) {
    char c = p[i];
    if (r->sse_cr) {
      r->sse_cr = 0;
      if (c == '\n') continue;
    }
    if (c == '\n' || c == '\r') {
      sse_line(r);
      r->slen = 0;
      r->sse_cr = c == '\r';
    } else if (r->slen < sizeof r->sline) {
      r->sline[r->slen++] = c;
    }
  }
}

static int head_line(struct resp *r) {
  char *l = r->line;
  size_t n = r->llen;
  if (r->nlines++ == 0) {
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[8] != ' ') return -1;
    r->status = atoi(l + 9);
    return r->status >= 100 && r->status <= 999 ? 0 : -1;
  }
  if (n == 0) {
    r->head_done = 1;
    if (r->chunked) r->st = R_CSIZE;
    else if (r->clen >= 0) {
      r->left = r->clen;
      r->st = r->clen ? R_CL : R_DONE;
    } else r->st = r->status == 204 || r->status == 304 ? R_DONE : R_EOF;
    if (r->st == R_DONE) r->done = 1;
    return 0;
  }
  if (n > 15 && strncasecmp(l, "content-length:", 15) == 0) r->clen = atoll(l + 15);
  else if (n > 18 && strncasecmp(l, "transfer-encoding:", 18) == 0 && strstr(l + 18, "chunked")) r->chunked = 1;
  return 0;
}

/* Feeds n bytes; returns -1 on a malformed response. r->head_done and
 * r->done say how far it got. Bytes after the end are ignored. */
static int resp_feed(struct resp *r, const char *p, size_t n) {
  size_t i = 0;
  while (i < n && r->st != R_DONE) {
    switch (r->st) {
    case R_HEAD:
    case R_CSIZE:
    case R_CCRLF:
    case R_TRAILER: {
      char c = p[i++];
      if (c != '\n') {
        if (r->llen < sizeof r->line - 1) r->line[r->llen++] = c;
        else r->line_over = 1;
        continue;
      }
      if (r->llen && r->line[r->llen - 1] == '\r') r->llen--;
      r->line[r->llen] = '\0';
      int rc = 0;
      if (r->st == R_HEAD) {
        rc = head_line(r);
      } else if (r->st == R_CSIZE) {
        char *end;
        long long sz = strtoll(r->line, &end, 16);
        if (end == r->line || sz < 0) rc = -1;
        else if (sz == 0) r->st = R_TRAILER;
        else {
          r->left = sz;
          r->st = R_CDATA;
        }
      } else if (r->st == R_CCRLF) {
        if (r->llen) rc = -1;
        r->st = R_CSIZE;
      } else if (r->llen == 0) {
        r->st = R_DONE;
        r->done = 1;
      }
      r->llen = 0;
      if (rc < 0) return -1;
      continue;
    }
    case R_CL:
    case R_CDATA: {
      size_t k = n - i;
      if ((long long)k > r->left) k = (size_t)r->left;
      body_bytes(r, p + i, k);
      i += k;
      r->left -= (long long)k;
      if (r->left == 0) {
        if (r->st == R_CL) {
          r->st = R_DONE;
          r->done = 1;
        } else r->st = R_CCRLF;
      }
      continue;
    }
    case R_EOF:
      body_bytes(r, p + i, n - i);
      i = n;
      continue;
    }
  }
  return 0;
}

/* The server closed: the end of a close-delimited body. */
static void resp_eof(struct resp *r) {
  if (r->st == R_EOF) {
    r->st = R_DONE;
    r->done = 1;
  }
}

/* ------------------------------------------------------------------------ */
/* Kinds and counts                                                          */

enum kind { K_ABANDON, K_RESET, K_JUNK, K_RESUME, K_SUB, K_MALFORMED, K_SLOW, K_NOREAD, K_QUIET, K_PUB, NKINDS };
static const char *const KIND[NKINDS] = {"abandon", "reset", "junk", "resume", "sub",
                                         "malformed", "slow", "noread", "quiet", "pub"};
/* new connections a second (rate kinds) or held at once (pool kinds), at --scale 1 */
static const double RATE[NKINDS] = {[K_ABANDON] = 150, [K_RESET] = 100, [K_JUNK] = 20,
                                    [K_RESUME] = 100, [K_SUB] = 150, [K_MALFORMED] = 4};
static const int POOL[NKINDS] = {[K_SLOW] = 16, [K_NOREAD] = 16, [K_QUIET] = 32, [K_PUB] = 16};
#define PUB_RATE 400.0
#define FLOOD_RATE ((double)NFLOOD)

struct kstats {
  long started, answered, done, server_closed, errors;
  long long events;
};
static struct kstats ks[NKINDS];
static long resets, replayed, short_replays, replay_disorder, noread_dropped, noread_not_dropped,
    slow_dropped, quiet_dropped, pub_ok, pub_new_names, pub_refused, pub_errors, flood_ok,
    flood_errors, connect_errors, timeouts, parse_errors, bad_status, pub_reconnects;
static long long junk_bytes, bytes_in;
#define NSTATUS 24
static int mal_code[NSTATUS];
static long mal_count[NSTATUS];

static void mal_status(int code) {
  for (int i = 0; i < NSTATUS; i++) {
    if (mal_code[i] == code && mal_count[i]) {
      mal_count[i]++;
      return;
    }
    if (!mal_count[i]) {
      mal_code[i] = code;
      mal_count[i] = 1;
      return;
    }
  }
}

static void note_once(const char *what, const char *fmt, ...) {
  static char said[32][24];
  static int nsaid;
  for (int i = 0; i < nsaid; i++)
    if (strcmp(said[i], what) == 0) return;
  if (nsaid < 32) snprintf(said[nsaid++], sizeof said[0], "%s", what);
  va_list ap;
  va_start(ap, fmt);
  fputs("churn: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (first of its kind; later ones are only counted)\n", stderr);
  va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */

enum stage { S_FREE, S_CONNECT, S_SEND, S_READ, S_SHUT, S_SLOW, S_NOREAD, S_DRAIN, S_IDLE };

struct conn {
  ev_io io;
  ev_timer tm;   /* the deadline of the current stage */
  ev_timer tick; /* slow readers' reads */
  int fd;
  unsigned char kind, stage, variant, junk_left_flag;
  const char *out;
  size_t out_len, out_off;
  size_t junk_off;
  char req[768];
  struct resp r;
  long long target;   /* body bytes to read before leaving */
  double end_at;      /* slow: when it leaves */
  int chan;           /* hist / flood channel, sub number */
  long expect;        /* resume: events it must get */
  uint64_t after;     /* resume: the Last-Event-ID sent */
  int is_flood;       /* pub: the request in flight is a flood */
  int hist_chan;      /* pub: the hist channel of the publish in flight, or -1 */
  struct conn *next;
};

static struct ev_loop *loop;
static struct conn conns[MAX_CONNS];
static struct conn *free_list;
static int active[NKINDS], total_active;
static struct sockaddr_in addr;
static double t_start, duration = 60, report_every = 10, noread_hold = 30, scale = 1;
static double cpu_start;
static int stopping, aborted;
static unsigned enabled = ~0u; /* --only: the kinds that run */
static char junk[JUNK_BYTES];
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t hist_ids[NHIST][HIST_RING];
static int hist_n[NHIST];
static long sub_ring[SUB_RING];
static int sub_ring_n;
static long next_sub = 1, next_once = 1;
static long names_cycle; /* --names: once-N and sub-N names taken modulo this (0: always new) */
static struct conn *pubs[128];
static int npubs;
static long paced[NKINDS], pubs_paced, floods_paced; /* started so far by the schedule */
static double pub_tokens, flood_tokens;
static int flood_next;

static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static long rnd_range(long lo, long hi) { return lo + (long)(rnd() % (uint64_t)(hi - lo + 1)); }
static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static void on_io(struct ev_loop *l, ev_io *w, int revents);
static void on_timer(struct ev_loop *l, ev_timer *w, int revents);
static void on_tick(struct ev_loop *l, ev_timer *w, int revents);
static void start_conn(int kind);
static void pub_pump(void);

static void watch(struct conn *c, int events) {
  if (ev_is_active(&c->io)) {
    if ((c->io.events & (EV_READ | EV_WRITE)) == events) return;
    ev_io_stop(loop, &c->io);
  }
  if (events) {
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(loop, &c->io);
  }
}

static void deadline(struct conn *c, double s) {
  ev_timer_stop(loop, &c->tm);
  ev_timer_set(&c->tm, s, 0.);
  ev_timer_start(loop, &c->tm);
}

/* Closes c; reset: with SO_LINGER 0, so the server sees an RST. */
static void conn_end(struct conn *c, int reset) {
  if (c->stage == S_FREE) return;
  ev_io_stop(loop, &c->io);
  ev_timer_stop(loop, &c->tm);
  ev_timer_stop(loop, &c->tick);
  if (reset) {
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(c->fd);
  c->fd = -1;
  active[c->kind]--;
  total_active--;
  if (c->kind == K_PUB)
    for (int i = 0; i < npubs; i++)
      if (pubs[i] == c) pubs[i] = pubs[--npubs];
  c->stage = S_FREE;
  c->next = free_list;
  free_list = c;
}

static void fail(struct conn *c, long *counter, const char *what) {
  if (counter) (*counter)++;
  ks[c->kind].errors++;
  if (c->kind == K_PUB) {
    if (c->is_flood) flood_errors++;
    else if (c->out_len) pub_errors++;
  }
  note_once(what, "%s: %s", KIND[c->kind], what);
  conn_end(c, 0);
}

/* ---- what each kind does once its answer's head is in ------------------- */

static void pub_answer(struct conn *c) {
  struct resp *r = &c->r;
  if (c->is_flood) {
    if (r->status == 200) flood_ok++;
    else {
      flood_errors++;
      note_once("flood status", "flood: status %d", r->status);
    }
  } else if (r->status == 200) {
    pub_ok++;
    const char *q = strstr(r->keep, "\"id\":\"");
    if (q && c->hist_chan >= 0) {
      uint64_t id = strtoull(q + 6, NULL, 10);
      int k = c->hist_chan;
      hist_ids[k][hist_n[k] % HIST_RING] = id;
      hist_n[k]++;
    }
  } else {
    pub_refused++;
    note_once("pub status", "pub: status %d: %.60s", r->status, r->keep);
  }
  ks[K_PUB].done++;
  c->out_len = 0;
  c->stage = S_IDLE;
  deadline(c, 3600);
  watch(c, EV_READ);
  pub_pump();
}

static void check_resume(struct conn *c) {
  struct resp *r = &c->r;
  if (r->last_id[0]) {
    uint64_t id = strtoull(r->last_id, NULL, 10);
    if (id <= c->after) {
      replay_disorder++;
      note_once("replay order", "resume: got id %s after Last-Event-ID %llu", r->last_id,
                (unsigned long long)c->after);
      r->last_id[0] = '\0';
    }
  }
  if (r->events >= c->expect) {
    replayed += r->events;
    ks[K_RESUME].done++;
    ks[K_RESUME].events += r->events;
    conn_end(c, 0);
  }
}

/* The body grew (or the head just came): act on it. Returns 0 when c was closed. */
static int progress(struct conn *c) {
  struct resp *r = &c->r;
  int k = c->kind;
  if (k == K_PUB) {
    if (r->done) pub_answer(c);
    return c->stage != S_FREE;
  }
  if (k == K_MALFORMED) {
    if (r->done) {
      mal_status(r->status);
      ks[k].done++;
      conn_end(c, 0);
      return 0;
    }
    return 1;
  }
  if (r->status != 200) {
    fail(c, &bad_status, "status not 200");
    return 0;
  }
  switch (k) {
  case K_ABANDON:
    if (r->body >= c->target && c->stage == S_READ) {
      shutdown(c->fd, SHUT_WR);
      c->stage = S_SHUT;
      deadline(c, 2.0);
    }
    break;
  case K_RESET:
    if (r->body >= c->target) {
      resets++;
      ks[k].done++;
      ks[k].events += r->events;
      conn_end(c, 1);
      return 0;
    }
    break;
  case K_JUNK:
    if (r->body >= c->target && c->junk_off >= JUNK_BYTES) {
      ks[k].done++;
      ks[k].events += r->events;
      conn_end(c, 0);
      return 0;
    }
    break;
  case K_RESUME:
    check_resume(c);
    return c->stage != S_FREE;
  default:
    break;
  }
  if (r->done) { /* a stream view ended its response: only ?n= streams do */
    ks[k].server_closed++;
    note_once("stream ended", "%s: the stream ended", KIND[k]);
    conn_end(c, 0);
    return 0;
  }
  return 1;
}

static void head_in(struct conn *c) {
  int k = c->kind;
  ks[k].answered++;
  if (c->stage == S_DRAIN) return;
  switch (k) {
  case K_SLOW: /* its life is counted by its tick */
    ev_timer_stop(loop, &c->tm);
    break;
  case K_SUB:
    deadline(c, 0.2 + 1.8 * rnd_unit());
    break;
  case K_QUIET:
    ev_timer_stop(loop, &c->tm); /* held to the end */
    break;
  case K_RESUME:
    deadline(c, 2.0);
    break;
  case K_PUB:
    break;
  default:
    deadline(c, REPLY_TIMEOUT);
  }
}

/* Bytes read from c: parse them. Returns 0 when c was closed. */
static int feed(struct conn *c, const char *buf, size_t n) {
  bytes_in += (long long)n;
  int had_head = c->r.head_done;
  if (resp_feed(&c->r, buf, n) < 0) {
    fail(c, &parse_errors, "malformed response");
    return 0;
  }
  if (!had_head && c->r.head_done) head_in(c);
  /* leaving (abandon) or draining (noread): count, do not act */
  if (c->stage == S_SHUT || c->stage == S_DRAIN) return 1;
  if (c->r.head_done) return progress(c);
  return 1;
}

/* The server closed (EOF, err 0) or reset (err) c. */
static void peer_closed(struct conn *c, int err) {
  int k = c->kind;
  resp_eof(&c->r);
  switch (c->stage) {
  case S_SHUT: /* abandon: the server saw us leave and closed */
    ks[k].done++;
    ks[k].events += c->r.events;
    conn_end(c, 0);
    return;
  case S_DRAIN: /* dropped by the write timeout, as it should be (noread) or may be (slow) */
    if (k == K_NOREAD) {
      noread_dropped++;
      ks[k].done++;
    } else {
      slow_dropped++;
      ks[k].server_closed++;
    }
    ks[k].events += c->r.events;
    conn_end(c, 0);
    return;
  default:
    break;
  }
  if (k == K_MALFORMED) {
    mal_status(c->r.head_done ? c->r.status : 0); /* 0: closed without an answer */
    if (c->r.head_done) ks[k].done++;
    else if (c->variant == 10) ks[k].done++; /* cut short: no answer is fine */
    else ks[k].server_closed++;
    conn_end(c, 0);
    return;
  }
  if (k == K_PUB && c->stage == S_IDLE) { /* a kept-alive connection closed: reconnect */
    pub_reconnects++;
    conn_end(c, 0);
    return;
  }
  if (k == K_SLOW) slow_dropped++; /* closed before its end (an RST from the server) */
  if (k == K_QUIET && c->r.head_done) quiet_dropped++;
  ks[k].server_closed++;
  ks[k].events += c->r.events;
  note_once(KIND[k], "%s: the server closed the connection (%s)", KIND[k], err ? strerror(err) : "EOF");
  conn_end(c, 0);
}

static void do_read(struct conn *c, size_t max) {
  static char buf[READ_BUF];
  for (int i = 0; i < 8; i++) {
    ssize_t n = read(c->fd, buf, max < sizeof buf ? max : sizeof buf);
    if (n > 0) {
      if (!feed(c, buf, (size_t)n)) return;
      if (max < sizeof buf) return; /* slow: one small read a tick */
      continue;
    }
    if (n == 0) {
      peer_closed(c, 0);
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    peer_closed(c, errno);
    return;
  }
}

/* Writes what is left of the request (and the junk after it). */
static void do_send(struct conn *c) {
  while (c->out_off < c->out_len || (c->kind == K_JUNK && c->junk_off < JUNK_BYTES)) {
    const char *p;
    size_t n;
    if (c->out_off < c->out_len) {
      p = c->out + c->out_off;
      n = c->out_len - c->out_off;
    } else {
      p = junk + c->junk_off;
      n = JUNK_BYTES - c->junk_off;
    }
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        watch(c, EV_READ | EV_WRITE);
        return;
      }
      if (c->kind == K_JUNK && (errno == EPIPE || errno == ECONNRESET) && c->r.head_done) {
        /* the server stopped reading and closed: counted as its close */
        peer_closed(c, errno);
        return;
      }
      peer_closed(c, errno);
      return;
    }
    if (c->out_off < c->out_len) c->out_off += (size_t)w;
    else {
      c->junk_off += (size_t)w;
      junk_bytes += w;
    }
  }
  /* all sent */
  switch (c->kind) {
  case K_RESET:
    if (c->variant == 0) { /* reset before any answer */
      resets++;
      ks[K_RESET].done++;
      conn_end(c, 1);
      return;
    }
    break;
  case K_SLOW:
    c->stage = S_SLOW;
    watch(c, 0);
    ev_timer_start(loop, &c->tick);
    return;
  case K_NOREAD:
    c->stage = S_NOREAD;
    watch(c, 0);
    deadline(c, noread_hold);
    return;
  case K_MALFORMED:
    if (c->variant == 10) { /* a head cut short: leave */
      mal_status(-1);
      ks[K_MALFORMED].done++;
      conn_end(c, 0);
      return;
    }
    break;
  case K_JUNK:
    if (c->r.head_done && !progress(c)) return;
    break;
  default:
    break;
  }
  c->stage = S_READ;
  watch(c, EV_READ);
}

static void connected(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    connect_errors++;
    ks[c->kind].errors++;
    note_once("connect", "%s: connect: %s", KIND[c->kind], strerror(err));
    conn_end(c, 0);
    return;
  }
  if (c->kind == K_PUB) {
    c->stage = S_IDLE;
    c->out_len = 0;
    deadline(c, 3600);
    watch(c, EV_READ);
    pub_pump();
    return;
  }
  c->stage = S_SEND;
  do_send(c);
}

static void on_io(struct ev_loop *l, ev_io *w, int revents) {
  (void)l;
  struct conn *c = (struct conn *)w;
  if (c->stage == S_CONNECT) {
    connected(c);
    return;
  }
  if (revents & EV_READ) {
    do_read(c, READ_BUF);
    if (c->stage == S_FREE) return;
  }
  if ((revents & EV_WRITE) && c->stage == S_SEND) do_send(c);
}

/* Reads what the server's socket holds (megabytes) at full speed, with a
 * receive buffer large enough for that; the server's close, if it came,
 * is behind those bytes. */
static void drain_start(struct conn *c) {
  int sz = 1 << 20;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  c->stage = S_DRAIN;
  watch(c, EV_READ);
  deadline(c, DRAIN_TIMEOUT);
}

static void on_tick(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l;
  (void)revents;
  struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, tick));
  if (ev_now(loop) >= c->end_at) {
    /* Read what is left as fast as it comes: a close behind it means the
     * write timeout had dropped this client (its FIN waits behind the bytes
     * in the server's socket buffer, unseen at this pace). */
    ev_timer_stop(loop, &c->tick);
    drain_start(c);
    return;
  }
  do_read(c, 64);
}

static void on_timer(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l;
  (void)revents;
  struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, tm));
  int k = c->kind;
  switch (c->stage) {
  case S_NOREAD: /* now read it all: the server should have closed */
    drain_start(c);
    return;
  case S_DRAIN:
    if (k == K_NOREAD) {
      noread_not_dropped++;
      note_once("noread", "noread: not closed by the server after %.0f s without a read", noread_hold);
    } else ks[k].done++; /* slow: still served when it left */
    ks[k].events += c->r.events;
    conn_end(c, 0);
    return;
  case S_SHUT: /* abandon: no close from the server within 2 s */
    timeouts++;
    ks[k].errors++;
    note_once("shut", "abandon: no close from the server 2 s after ours");
    conn_end(c, 0);
    return;
  case S_IDLE: /* pub: idle an hour */
    conn_end(c, 0);
    return;
  default:
    break;
  }
  if (c->r.head_done) {
    if (k == K_SUB) {
      ks[k].done++;
      ks[k].events += c->r.events;
      conn_end(c, 0);
      return;
    }
    if (k == K_RESUME) {
      short_replays++;
      note_once("short replay", "resume: %ld of %ld events replayed within 2 s (after %llu)",
                c->r.events, c->expect, (unsigned long long)c->after);
      ks[k].events += c->r.events;
      replayed += c->r.events;
      conn_end(c, 0);
      return;
    }
  }
  if (k == K_MALFORMED) mal_status(c->r.head_done ? c->r.status : -2); /* -2: no answer in time */
  fail(c, &timeouts, c->r.head_done ? "stage timed out" : "no answer in time");
}

/* ---- starting connections ------------------------------------------------ */

#define BAD(x) {x, sizeof x - 1}
static const struct { const char *p; size_t n; } MALFORMED[12] = {
    BAD("GARBAGE\r\n\r\n"),
    BAD("GET /sse/fast/ HTTP/9.9\r\nHost: x\r\n\r\n"),
    BAD("GET /sse/fast/ HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"),
    BAD("POST /pub/mal/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
    {NULL, 0}, /* 4: a 20 KiB header (built at start) */
    BAD("POST /pub/mal/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"),
    BAD("POST /pub/mal/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    BAD("GET /sse/\0fast/ HTTP/1.1\r\nHost: x\r\n\r\n"),
    BAD("POST /pub/mal/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    BAD("GET /no/such/route/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    BAD("GET /sse/fast/ HTTP/1.1\r\nHost: x\r\nX-Cut: "), /* 10: cut short, then we leave */
    BAD("POST /pub/mal/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
};
#undef BAD
static char big_header[21 * 1024];

static int open_socket(struct conn *c, int small_rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (small_rcvbuf) {
    int sz = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  c->fd = fd;
  return 0;
}

static void start_conn(int kind) {
  struct conn *c = free_list;
  if (!c) return;
  free_list = c->next;
  memset(&c->r, 0, sizeof c->r);
  c->kind = (unsigned char)kind;
  c->variant = 0;
  c->out_off = c->out_len = c->junk_off = 0;
  c->target = 0;
  c->expect = 0;
  c->after = 0;
  c->is_flood = 0;
  c->hist_chan = -1;
  resp_init(&c->r);
  if (kind != K_PUB) ks[kind].started++; /* a publisher counts its requests */
  active[kind]++;
  total_active++;
  c->stage = S_CONNECT;
  if (open_socket(c, kind == K_SLOW || kind == K_NOREAD) < 0) {
    int e = errno;
    connect_errors++;
    ks[kind].errors++;
    note_once("socket", "%s: socket/connect: %s", KIND[kind], strerror(e));
    active[kind]--;
    total_active--;
    c->stage = S_FREE;
    c->next = free_list;
    free_list = c;
    return;
  }
  const char *host = "Host: 127.0.0.1\r\n";
  int n = 0;
  switch (kind) {
  case K_ABANDON:
    c->target = rnd_range(1024, 16384);
    n = snprintf(c->req, sizeof c->req, "GET /sse/fast/ HTTP/1.1\r\n%sAccept: text/event-stream\r\n\r\n", host);
    break;
  case K_RESET:
    c->variant = rnd() % 4 == 0 ? 0 : 1;
    c->target = rnd_range(1024, 8192);
    n = snprintf(c->req, sizeof c->req, "GET /sse/fast/ HTTP/1.1\r\n%sAccept: text/event-stream\r\n\r\n", host);
    break;
  case K_JUNK:
    c->target = 2048;
    n = snprintf(c->req, sizeof c->req, "GET /sse/fast/ HTTP/1.1\r\n%sAccept: text/event-stream\r\n\r\n", host);
    break;
  case K_SLOW:
    c->end_at = ev_now(loop) + 10 + 20 * rnd_unit();
    n = snprintf(c->req, sizeof c->req, "GET /sse/fast/ HTTP/1.1\r\n%sAccept: text/event-stream\r\n\r\n", host);
    break;
  case K_QUIET:
    n = snprintf(c->req, sizeof c->req, "GET /sse/quiet/ HTTP/1.1\r\n%sAccept: text/event-stream\r\n\r\n", host);
    break;
  case K_NOREAD:
    c->chan = (int)(rnd() % NFLOOD);
    n = snprintf(c->req, sizeof c->req, "GET /sse/channel/flood-%d/ HTTP/1.1\r\n%sAccept: text/event-stream\r\n\r\n",
                 c->chan, host);
    break;
  case K_SUB:
    c->chan = (int)(names_cycle ? next_sub % names_cycle : next_sub);
    next_sub++;
    sub_ring[sub_ring_n++ % SUB_RING] = c->chan;
    n = snprintf(c->req, sizeof c->req, "GET /sse/channel/sub-%d/ HTTP/1.1\r\n%sAccept: text/event-stream\r\n\r\n",
                 c->chan, host);
    break;
  case K_RESUME: {
    int k = (int)(rnd() % NHIST);
    c->chan = k;
    int have = hist_n[k] < HIST_RING ? hist_n[k] : HIST_RING;
    if (have >= 2) {
      /* an id a few publishes back; every id this client knows above it must come */
      uint64_t pick = hist_ids[k][(hist_n[k] - 1 - rnd_range(1, have - 1)) % HIST_RING];
      long later = 0;
      for (int i = 0; i < have; i++)
        if (hist_ids[k][i] > pick) later++;
      c->after = pick;
      c->expect = later;
      n = snprintf(c->req, sizeof c->req,
                   "GET /sse/channel/hist-%d/ HTTP/1.1\r\n%sAccept: text/event-stream\r\nLast-Event-ID: %llu\r\n\r\n",
                   k, host, (unsigned long long)pick);
    } else { /* nothing published there yet: a plain subscription */
      c->expect = 0;
      n = snprintf(c->req, sizeof c->req, "GET /sse/channel/hist-%d/ HTTP/1.1\r\n%sAccept: text/event-stream\r\n\r\n",
                   k, host);
    }
    break;
  }
  case K_MALFORMED: {
    static unsigned next;
    c->variant = (unsigned char)(next++ % 12);
    if (c->variant == 4) {
      c->out = big_header;
      c->out_len = strlen(big_header);
    } else {
      c->out = MALFORMED[c->variant].p;
      c->out_len = MALFORMED[c->variant].n;
    }
    break;
  }
  default:
    break;
  }
  if (kind == K_PUB && npubs < (int)(sizeof pubs / sizeof pubs[0])) pubs[npubs++] = c;
  if (kind != K_MALFORMED && kind != K_PUB) {
    c->out = c->req;
    c->out_len = (size_t)n;
  }
  ev_io_set(&c->io, c->fd, EV_WRITE);
  ev_io_start(loop, &c->io);
  deadline(c, REPLY_TIMEOUT);
}

/* Sends the next publish (or flood) on every idle publisher connection. */
static void pub_pump(void) {
  for (int i = 0; i < npubs; i++) {
    struct conn *c = pubs[i];
    if (c->stage != S_IDLE || stopping) continue;
    char name[48];
    int flood = 0;
    c->hist_chan = -1;
    if (flood_tokens >= 1) {
      flood_tokens -= 1;
      flood = 1;
      snprintf(name, sizeof name, "flood-%d", flood_next++ % NFLOOD);
    } else if (pub_tokens >= 1) {
      pub_tokens -= 1;
      double p = rnd_unit();
      if (p < 0.65 || sub_ring_n == 0) {
        long n = next_once++;
        if (names_cycle) n %= names_cycle;
        else pub_new_names++;
        snprintf(name, sizeof name, "once-%ld", n);
      } else if (p < 0.85) {
        c->hist_chan = (int)(rnd() % NHIST);
        snprintf(name, sizeof name, "hist-%d", c->hist_chan);
      } else {
        int have = sub_ring_n < SUB_RING ? sub_ring_n : SUB_RING;
        snprintf(name, sizeof name, "sub-%ld", sub_ring[rnd() % (uint64_t)have]);
      }
    } else {
      return;
    }
    int n;
    if (flood)
      n = snprintf(c->req, sizeof c->req,
                   "POST /flood/%s/?n=64&size=4096 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", name);
    else {
      char body[64];
      int bl = snprintf(body, sizeof body, "soak %ld", pub_ok + pub_refused + 1);
      n = snprintf(c->req, sizeof c->req,
                   "POST /pub/%s/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
                   name, bl, body);
    }
    c->is_flood = flood;
    c->out = c->req;
    c->out_len = (size_t)n;
    c->out_off = 0;
    resp_init(&c->r);
    ks[K_PUB].started++;
    c->stage = S_SEND;
    deadline(c, REPLY_TIMEOUT);
    do_send(c);
  }
}

/* ---- the run ----------------------------------------------------------------- */

static ev_timer pace_timer, report_timer, end_timer;
static ev_signal sigint_w, sigterm_w;

static long sum_errors(void) {
  long e = 0;
  for (int k = 0; k < NKINDS; k++) e += ks[k].errors;
  return e;
}

/* Starts what the schedule says is due: rate x elapsed time connections of
 * each kind in all (a late loop, on a busy machine, catches up at most a
 * second's worth), and refills the pools. */
static void on_pace(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l;
  (void)w;
  (void)revents;
  if (stopping) return;
  double el = ev_now(loop) - t_start;
  for (int k = 0; k < NKINDS; k++) {
    if (!(enabled & (1u << k))) continue;
    if (RATE[k] > 0) {
      double r = RATE[k] * scale;
      long due = (long)(r * el) - paced[k];
      long most = (long)r + 1;
      int cap = (int)(r * 6) + 8; /* a 5 s deadline at the rate, and some */
      if (due > most) {             /* too far behind: forget the rest */
        paced[k] += due - most;
        due = most;
      }
      while (due-- > 0 && active[k] < cap && total_active < MAX_CONNS - 64 && free_list) {
        paced[k]++;
        start_conn(k);
      }
    } else if (POOL[k] > 0) {
      int want = (int)(POOL[k] * scale + 0.5);
      if (want < 1) want = 1;
      for (int i = 0; i < 8 && active[k] < want && free_list; i++) start_conn(k);
    }
  }
  if (enabled & (1u << K_PUB)) {
    long due = (long)(PUB_RATE * scale * el) - pubs_paced, most = (long)(PUB_RATE * scale) + 1;
    if (due > most) {
      pubs_paced += due - most;
      due = most;
    }
    if (due > 0) {
      pub_tokens += (double)due;
      pubs_paced += due;
    }
    due = (long)(FLOOD_RATE * el) - floods_paced;
    if (due > 0) {
      flood_tokens += (double)due;
      floods_paced += due;
    }
    if (pub_tokens > PUB_RATE * scale + 1) pub_tokens = PUB_RATE * scale + 1;
    if (flood_tokens > NFLOOD) flood_tokens = NFLOOD;
    pub_pump();
  }
}

static void print_line(FILE *f, const char *prefix) {
  double t = ev_now(loop) - t_start;
  fprintf(f, "%st=%.0f", prefix, t);
  for (int k = 0; k < NKINDS; k++)
    fprintf(f, " %s_started=%ld %s_answered=%ld %s_done=%ld %s_server_closed=%ld %s_errors=%ld %s_events=%lld",
            KIND[k], ks[k].started, KIND[k], ks[k].answered, KIND[k], ks[k].done, KIND[k],
            ks[k].server_closed, KIND[k], ks[k].errors, KIND[k], ks[k].events);
  fprintf(f, " resets=%ld replayed=%ld short_replays=%ld replay_disorder=%ld noread_dropped=%ld"
             " noread_not_dropped=%ld slow_dropped=%ld quiet_dropped=%ld pub_ok=%ld pub_new_names=%ld"
             " pub_refused=%ld pub_errors=%ld pub_reconnects=%ld flood_ok=%ld flood_errors=%ld"
             " connect_errors=%ld timeouts=%ld parse_errors=%ld bad_status=%ld errors=%ld"
             " junk_bytes=%lld bytes_in=%lld active=%d malformed_statuses=",
          resets, replayed, short_replays, replay_disorder, noread_dropped, noread_not_dropped,
          slow_dropped, quiet_dropped, pub_ok, pub_new_names, pub_refused, pub_errors, pub_reconnects,
          flood_ok, flood_errors, connect_errors, timeouts, parse_errors, bad_status, sum_errors(),
          junk_bytes, bytes_in, total_active);
  int any = 0;
  for (int i = 0; i < NSTATUS && mal_count[i]; i++)
    fprintf(f, "%s%d:%ld", any++ ? "," : "", mal_code[i], mal_count[i]);
  if (!any) fputs("-", f);
  fputc('\n', f);
  fflush(f);
}

static void on_report(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l;
  (void)w;
  (void)revents;
  print_line(stderr, "churn: ");
}

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void finish(int was_aborted) {
  if (stopping) return;
  stopping = 1;
  aborted = was_aborted;
  double t = ev_now(loop) - t_start;
  for (int i = 0; i < MAX_CONNS; i++)
    if (conns[i].stage != S_FREE) {
      /* what was held to the end went as planned */
      struct conn *c = &conns[i];
      if ((c->kind == K_QUIET || c->kind == K_SLOW) && c->r.head_done) {
        ks[c->kind].done++;
        ks[c->kind].events += c->r.events;
      }
      conn_end(c, 0);
    }
  printf("mode=churn duration_s=%.1f scale=%g aborted=%d cpu_s=%.2f ", t, scale, aborted, cpu_now() - cpu_start);
  print_line(stdout, "");
  ev_break(loop, EVBREAK_ALL);
}

static void on_end(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l;
  (void)w;
  (void)revents;
  finish(0);
}

static void on_signal(struct ev_loop *l, ev_signal *w, int revents) {
  (void)l;
  (void)w;
  (void)revents;
  finish(1);
}

/* ---- the parser's self-test ------------------------------------------------------ */

static int check_split(const char *what, const char *msg, size_t len, int status, long events,
                       const char *last_id, int done) {
  for (size_t cut = 0; cut <= len; cut++) {
    struct resp r;
    resp_init(&r);
    if (resp_feed(&r, msg, cut) < 0 || resp_feed(&r, msg + cut, len - cut) < 0) {
      fprintf(stderr, "churn: self-test %s: parse error (cut at %zu)\n", what, cut);
      return 1;
    }
    if (!done) resp_eof(&r);
    if (r.status != status || r.events != events || strcmp(r.last_id, last_id) != 0 || !r.done) {
      fprintf(stderr, "churn: self-test %s (cut at %zu): status %d events %ld last id '%s' done %d\n", what,
              cut, r.status, r.events, r.last_id, r.done);
      return 1;
    }
  }
  return 0;
}

static int self_test(void) {
  static const char chunked[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1b\r\nevent: tick\ndata: a\nid: 7\n\n\r\n"
      "d\r\n: heartbeat\n\n\r\n"
      "11\r\ndata: b\r\nid:8\r\n\r\n\r\n"
      "9\r\ndata: c\r\r\r\n"
      "0\r\n\r\n";
  static const char json[] =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{\"id\":\"42\",\"delivered\":0}";
  static const char closed[] = "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\ndata: y\n\n";
  static const char refused[] = "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 4\r\n\r\nbig\n";
  int bad = 0;
  bad |= check_split("chunked", chunked, sizeof chunked - 1, 200, 3, "8", 1);
  bad |= check_split("content-length", json, sizeof json - 1, 200, 0, "", 1);
  bad |= check_split("close-delimited", closed, sizeof closed - 1, 200, 2, "", 0);
  bad |= check_split("refused", refused, sizeof refused - 1, 431, 0, "", 1);
  struct resp r;
  resp_init(&r);
  resp_feed(&r, json, sizeof json - 1);
  if (!strstr(r.keep, "\"id\":\"42\"")) {
    fprintf(stderr, "churn: self-test: the body's start was not kept\n");
    bad = 1;
  }
  resp_init(&r);
  static const char badchunk[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n";
  if (resp_feed(&r, badchunk, sizeof badchunk - 1) >= 0) {
    fprintf(stderr, "churn: self-test: a bad chunk size was taken\n");
    bad = 1;
  }
  fprintf(stderr, "churn: self-test %s\n", bad ? "FAILED" : "passed");
  return bad;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr, "usage: churn --host 127.0.0.1 --port P --duration SECONDS [--scale X] [--report SECONDS]"
                  " [--noread-hold SECONDS] [--seed N] [--only KIND,...] [--names N] | churn --self-test\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0;
  unsigned long long seed = (unsigned long long)time(NULL);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--self-test") == 0) return self_test();
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (strcmp(a, "--host") == 0) host = v;
    else if (strcmp(a, "--port") == 0) port = atoi(v);
    else if (strcmp(a, "--duration") == 0) duration = atof(v);
    else if (strcmp(a, "--scale") == 0) scale = atof(v);
    else if (strcmp(a, "--report") == 0) report_every = atof(v);
    else if (strcmp(a, "--noread-hold") == 0) noread_hold = atof(v);
    else if (strcmp(a, "--seed") == 0) seed = strtoull(v, NULL, 10);
    else if (strcmp(a, "--names") == 0) names_cycle = atol(v);
    else if (strcmp(a, "--only") == 0) {
      enabled = 0;
      char list[256];
      snprintf(list, sizeof list, "%s", v);
      for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int k = 0;
        while (k < NKINDS && strcmp(KIND[k], tok) != 0) k++;
        if (k == NKINDS) {
          fprintf(stderr, "churn: --only takes kinds among abandon,reset,junk,resume,sub,malformed,slow,noread,quiet,pub, not %s\n", tok);
          return 2;
        }
        enabled |= 1u << k;
      }
    }
    else usage();
  }
  if (port <= 0 || port > 65535 || duration <= 0 || scale <= 0 || report_every <= 0) usage();
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "churn: --host takes an IPv4 address, not %s\n", host);
    return 2;
  }
  rng ^= seed * 0x2545F4914F6CDD1DULL;
  if (!rng) rng = 1;

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  for (size_t i = 0; i < JUNK_BYTES; i++) junk[i] = (char)(' ' + rnd() % 95);
  for (size_t i = 0; i + 2 < JUNK_BYTES; i += 100) junk[i] = '\r', junk[i + 1] = '\n';
  {
    int n = snprintf(big_header, sizeof big_header, "GET /sse/fast/ HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big_header + n, 'b', 20 * 1024);
    memcpy(big_header + n + 20 * 1024, "\r\n\r\n", 5);
  }

  loop = EV_DEFAULT;
  for (int i = MAX_CONNS - 1; i >= 0; i--) {
    struct conn *c = &conns[i];
    c->stage = S_FREE;
    c->fd = -1;
    ev_init(&c->io, on_io);
    ev_init(&c->tm, on_timer);
    ev_timer_init(&c->tick, on_tick, 0.1, 0.1);
    c->next = free_list;
    free_list = c;
  }
  /* publisher connections register themselves once started */
  t_start = ev_now(loop);
  cpu_start = cpu_now();
  ev_timer_init(&pace_timer, on_pace, TICK, TICK);
  ev_timer_start(loop, &pace_timer);
  ev_timer_init(&report_timer, on_report, report_every, report_every);
  ev_timer_start(loop, &report_timer);
  ev_timer_init(&end_timer, on_end, duration, 0.);
  ev_timer_start(loop, &end_timer);
  ev_signal_init(&sigint_w, on_signal, SIGINT);
  ev_signal_start(loop, &sigint_w);
  ev_signal_init(&sigterm_w, on_signal, SIGTERM);
  ev_signal_start(loop, &sigterm_w);
  fprintf(stderr, "churn: %.0f s against %s:%d at scale %g\n", duration, host, port, scale);
  ev_run(loop, 0);
  return 0;
}
