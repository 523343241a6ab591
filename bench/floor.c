/* bench/floor.c: the physical floor of the fan-out benchmark.
 *
 * Why: bench/fanout.sh measures flosse and nginx + nchan with one client,
 * `bench/loadgen fanout`. This program answers that same client with the
 * least work any server could do for it on this machine: it writes the same
 * SSE frames (byte for byte what flosse writes for a published message) to
 * the same number of loopback sockets, as fast as it can. No HTTP parser
 * library, no Lua, no channel registry, no history: the end of a request
 * head, its first word and its Content-Length, then one write per socket per
 * event. What flosse (or nchan) costs beyond this is the price of being a
 * server rather than a benchmark.
 *
 * Build (C99, libev and pthreads only):
 *   cc -std=c99 -D_GNU_SOURCE -O2 -g -Wall -Wextra -o bench/floor bench/floor.c -lev -lpthread
 * Run:
 *   bench/floor --port P [--workers W]     (port 0: pick one)
 * It says `floor: listening on 127.0.0.1:<port>` on stderr once it accepts,
 * then serve it the way bench/fanout.sh serves flosse, e.g.
 *   bench/loadgen fanout --host 127.0.0.1 --port P --path /sub/x/ --conns 1000 \
 *     --events 100 --pub-path /pub/x/ --pub-rate 50 --pub-conns 2
 * and stop it with SIGINT or SIGTERM.
 *
 * What it does: W worker threads, each with its own libev loop and its own
 * SO_REUSEPORT listener on 127.0.0.1:PORT (as flosse --workers W). Any GET
 * is a subscriber of the one channel (the path is ignored): it gets flosse's
 * SSE response head, then every event. Any POST's body (Content-Length
 * bytes) is one event: the thread that read it frames it once, as flosse
 * does (one HTTP chunk holding "data: <line>\n" per body line and
 * "id: <n>\n\n", n a global counter from 1), into a refcounted buffer; under
 * one lock (so every subscriber sees the same order) it appends a reference
 * to every worker's queue and wakes the others (ev_async); then it answers
 * the publisher as flosse's publish_view does (200, {"id":"<n>","delivered":
 * <subscribers>}, keep-alive). Once per loop iteration (ev_prepare, so the
 * events queued in one iteration go out together, as flosse coalesces them)
 * each worker writes what its queue holds to each of its subscribers with
 * one write (writev when several events wait); a socket that would block
 * keeps references to the rest and an EV_WRITE watcher, nothing is dropped
 * and nothing blocks. A subscriber more than MAX_PENDING events behind is
 * closed (flosse's channel_backlog in bench/fanout.sh), so memory stays
 * bounded; so are request heads and bodies.
 */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
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
#include <sys/uio.h>
#include <unistd.h>

#define MAX_WORKERS 64
#define HEAD_MAX 8192            /* a longer request head: 431 and close */
#define BODY_MAX (64 * 1024)     /* a longer POST body: 413 and close */
#define IN_START 1024            /* first size of a request buffer */
#define MAX_PENDING 100000       /* events a subscriber may be behind, then it is closed */
#define IOV_BATCH 64             /* events per writev */
#define ACCEPT_BATCH 64
#define READS_PER_CB 8

/* The subscribers' response head: flosse's, byte for byte. */
static const char SSE_HEAD[] =
  "HTTP/1.1 200 OK\r\n"
  "Content-Type: text/event-stream; charset=utf-8\r\n"
  "Cache-Control: no-cache, no-transform\r\n"
  "X-Accel-Buffering: no\r\n"
  "Transfer-Encoding: chunked\r\n"
  "\r\n";

/* ------------------------------------------------------------------------ */
/* Refcounted, immutable wire bytes (one framed event, or one response)     */

struct msg {
  int refs; /* atomic */
  size_t len;
  char data[];
};

static struct msg *msg_new(size_t len) {
  struct msg *m = malloc(sizeof *m + len);
  if (!m) return NULL;
  m->refs = 1;
  m->len = len;
  return m;
}
static void msg_ref(struct msg *m) { __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED); }
static void msg_unref(struct msg *m) {
  if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) free(m);
}

/* ------------------------------------------------------------------------ */
/* Connections and workers                                                   */

struct link { struct link *prev, *next; };
static void link_init(struct link *l) { l->prev = l->next = l; }
static void link_add(struct link *head, struct link *l) {
  l->prev = head->prev;
  l->next = head;
  head->prev->next = l;
  head->prev = l;
}
static void link_del(struct link *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  link_init(l);
}

struct worker;

struct conn {
  ev_io io;               /* first: the watcher is the connection */
  struct link link;       /* in its worker's subs or others */
  struct worker *w;
  int fd;
  int sub;                /* a subscriber (else reading requests) */
  /* request bytes (NULL for subscribers) */
  char *in;
  size_t inlen, incap;
  size_t head_len, body_len; /* of the request being read; head_len 0: head not yet complete */
  int method;             /* 1 GET, 2 POST, 0 other */
  /* output waiting for the socket: a ring of references, the first partly written */
  struct msg **q;
  uint32_t qhead, qlen, qcap;
  size_t qoff;
};

struct worker {
  int idx;
  pthread_t th;
  struct ev_loop *loop;
  int lfd;
  ev_io accept_io;
  ev_timer accept_backoff;
  ev_async async;
  ev_prepare prepare;     /* drains the inbox once per loop iteration */
  /* the inbox, under mu: events other threads (and this one) published */
  pthread_mutex_t mu;
  struct msg **inq, **spare;
  size_t inq_len, inq_cap, spare_cap;
  int stopping;
  /* this thread's own */
  struct link subs, others;
  long nsubs; /* atomic: read by publishers of other threads */
};

static struct worker workers[MAX_WORKERS];
static int nworkers = 1;
static pthread_mutex_t pub_mu = PTHREAD_MUTEX_INITIALIZER; /* the id counter and the order */
static unsigned long long next_id = 1;
static long long n_published; /* atomic */
static long n_slow_closed;    /* atomic */

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("floor: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void conn_close(struct conn *c) {
  struct worker *w = c->w;
  ev_io_stop(w->loop, &c->io);
  close(c->fd);
  link_del(&c->link);
  if (c->sub) __atomic_sub_fetch(&w->nsubs, 1, __ATOMIC_RELAXED);
  for (uint32_t i = 0; i < c->qlen; i++) msg_unref(c->q[(c->qhead + i) % c->qcap]);
  free(c->q);
  free(c->in);
  free(c);
}

static void conn_events(struct conn *c) {
  int want = EV_READ | (c->qlen ? EV_WRITE : 0);
  if ((c->io.events & (EV_READ | EV_WRITE)) == want) return;
  ev_io_stop(c->w->loop, &c->io);
  ev_io_set(&c->io, c->fd, want);
  ev_io_start(c->w->loop, &c->io);
}

/* Keeps a reference to m for later; 0 when the connection is too far behind. */
static int q_push(struct conn *c, struct msg *m) {
  if (c->qlen == c->qcap) {
    if (c->qcap >= MAX_PENDING) return 0;
    uint32_t ncap = c->qcap ? c->qcap * 2 : 8;
    if (ncap > MAX_PENDING) ncap = MAX_PENDING;
    struct msg **nq = malloc(ncap * sizeof *nq);
    if (!nq) return 0;
    for (uint32_t i = 0; i < c->qlen; i++) nq[i] = c->q[(c->qhead + i) % c->qcap];
    free(c->q);
    c->q = nq;
    c->qcap = ncap;
    c->qhead = 0;
  }
  c->q[(c->qhead + c->qlen) % c->qcap] = m;
  c->qlen++;
  msg_ref(m);
  return 1;
}

/* Writes what waits in c's queue, until it is empty or the socket is full.
 * Returns -1 when c was closed. */
static int conn_flush(struct conn *c) {
  while (c->qlen) {
    struct iovec iov[IOV_BATCH];
    int n = 0;
    size_t total = 0;
    for (uint32_t i = 0; i < c->qlen && n < IOV_BATCH; i++, n++) {
      struct msg *m = c->q[(c->qhead + i) % c->qcap];
      size_t off = i == 0 ? c->qoff : 0;
      iov[n].iov_base = m->data + off;
      iov[n].iov_len = m->len - off;
      total += m->len - off;
    }
    ssize_t r = writev(c->fd, iov, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      conn_close(c);
      return -1;
    }
    size_t left = (size_t)r;
    while (c->qlen) {
      struct msg *m = c->q[c->qhead];
      size_t rest = m->len - c->qoff;
      if (left < rest) { c->qoff += left; break; }
      left -= rest;
      c->qoff = 0;
      c->qhead = (c->qhead + 1) % c->qcap;
      c->qlen--;
      msg_unref(m);
    }
    if ((size_t)r < total) break; /* short write: the socket is full */
  }
  conn_events(c);
  return 0;
}

/* Sends k messages to c with one write (when nothing waits already);
 * what the socket does not take waits in c's queue. -1: c was closed. */
static int conn_send(struct conn *c, struct msg **ms, int k) {
  int i = 0;
  size_t done = 0;
  if (!c->qlen) {
    ssize_t r;
    for (;;) {
      if (k == 1) {
        r = write(c->fd, ms[0]->data, ms[0]->len);
      } else {
        struct iovec iov[IOV_BATCH];
        for (int j = 0; j < k; j++) { iov[j].iov_base = ms[j]->data; iov[j].iov_len = ms[j]->len; }
        r = writev(c->fd, iov, k);
      }
      if (r >= 0 || errno != EINTR) break;
    }
    if (r < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) { conn_close(c); return -1; }
      r = 0;
    }
    done = (size_t)r;
    while (i < k && done >= ms[i]->len) { done -= ms[i]->len; i++; }
    if (i == k) return 0;
  }
  int was_empty = !c->qlen;
  for (; i < k; i++) {
    if (!q_push(c, ms[i])) {
      if (__atomic_add_fetch(&n_slow_closed, 1, __ATOMIC_RELAXED) == 1)
        say("closed a subscriber %d events behind (and counts the others quietly)", MAX_PENDING);
      conn_close(c);
      return -1;
    }
    if (was_empty) { c->qoff = done; was_empty = 0; }
  }
  conn_events(c);
  return 0;
}

static int send_bytes(struct conn *c, const char *p, size_t len) {
  struct msg *m = msg_new(len);
  if (!m) { conn_close(c); return -1; }
  memcpy(m->data, p, len);
  int rc = conn_send(c, &m, 1);
  msg_unref(m);
  return rc;
}

/* A request this floor does not serve: a short answer, then close. */
static void refuse(struct conn *c, const char *status) {
  char buf[160];
  int n = snprintf(buf, sizeof buf, "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
  ssize_t r = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)r; /* best effort */
  conn_close(c);
}

/* ------------------------------------------------------------------------ */
/* Fan-out                                                                   */

/* Writes what the worker's inbox holds to each of its subscribers. */
static void drain(struct worker *w) {
  pthread_mutex_lock(&w->mu);
  if (!w->inq_len) { pthread_mutex_unlock(&w->mu); return; }
  struct msg **batch = w->inq;
  size_t n = w->inq_len, cap = w->inq_cap;
  w->inq = w->spare;
  w->inq_cap = w->spare_cap;
  w->inq_len = 0;
  w->spare = NULL;
  w->spare_cap = 0;
  pthread_mutex_unlock(&w->mu);
  for (size_t off = 0; off < n; off += IOV_BATCH) {
    int k = n - off < IOV_BATCH ? (int)(n - off) : IOV_BATCH;
    struct link *it = w->subs.next;
    while (it != &w->subs) {
      struct link *next = it->next; /* c may close */
      struct conn *c = (struct conn *)((char *)it - offsetof(struct conn, link));
      conn_send(c, batch + off, k);
      it = next;
    }
  }
  for (size_t i = 0; i < n; i++) msg_unref(batch[i]);
  /* hand the array back for the next swap */
  pthread_mutex_lock(&w->mu);
  if (!w->spare) { w->spare = batch; w->spare_cap = cap; batch = NULL; }
  pthread_mutex_unlock(&w->mu);
  free(batch);
}

static void on_async(struct ev_loop *loop, ev_async *a, int revents) {
  (void)revents;
  struct worker *w = (struct worker *)((char *)a - offsetof(struct worker, async));
  pthread_mutex_lock(&w->mu);
  int stop = w->stopping;
  pthread_mutex_unlock(&w->mu);
  if (stop) ev_break(loop, EVBREAK_ALL);
  /* else the prepare watcher drains, with whatever else this iteration queued */
}

static void on_prepare(struct ev_loop *loop, ev_prepare *p, int revents) {
  (void)loop; (void)revents;
  drain((struct worker *)((char *)p - offsetof(struct worker, prepare)));
}

/* Frames body as flosse frames a published message: one chunk of
 * "data: <line>\n" per line (CR, LF or CRLF ends one) and "id: <id>\n\n". */
static struct msg *frame(const char *body, size_t blen, unsigned long long id) {
  size_t lines = 1;
  for (size_t i = 0; i < blen; i++) lines += body[i] == '\n' || body[i] == '\r';
  size_t flen = blen + lines * 7 + 4 + 20 + 2;  /* an upper bound of the frame */
  struct msg *m = msg_new(flen + 16 + 2);
  if (!m) return NULL;
  char *f = m->data + 16; /* the frame first, the chunk size in front of it after */
  size_t o = 0, start = 0;
  for (size_t i = 0; i <= blen; i++) {
    if (i < blen && body[i] != '\n' && body[i] != '\r') continue;
    memcpy(f + o, "data: ", 6);
    o += 6;
    memcpy(f + o, body + start, i - start);
    o += i - start;
    f[o++] = '\n';
    if (i < blen && body[i] == '\r' && i + 1 < blen && body[i + 1] == '\n') i++;
    start = i + 1;
  }
  o += (size_t)sprintf(f + o, "id: %llu\n\n", id);
  char hex[17];
  int hl = snprintf(hex, sizeof hex, "%zx\r\n", o);
  memmove(m->data + hl, f, o);
  memcpy(m->data, hex, (size_t)hl);
  memcpy(m->data + hl + o, "\r\n", 2);
  m->len = (size_t)hl + o + 2;
  return m;
}

/* Hands one event to every worker; 0 on success, with its id and the
 * subscriber count at that moment. */
static int publish(struct worker *self, const char *body, size_t blen, unsigned long long *id,
                   long *delivered) {
  pthread_mutex_lock(&pub_mu);
  struct msg *m = frame(body, blen, next_id);
  if (!m) { pthread_mutex_unlock(&pub_mu); return -1; }
  *id = next_id++;
  m->refs = nworkers; /* one per inbox */
  long subs = 0;
  for (int i = 0; i < nworkers; i++) {
    struct worker *w = &workers[i];
    pthread_mutex_lock(&w->mu);
    int stop = w->stopping, ok = !stop;
    if (ok && w->inq_len == w->inq_cap) {
      size_t ncap = w->inq_cap ? w->inq_cap * 2 : 64;
      struct msg **nq = ncap <= MAX_PENDING ? realloc(w->inq, ncap * sizeof *nq) : NULL;
      if (nq) { w->inq = nq; w->inq_cap = ncap; }
      else ok = 0;
    }
    if (ok) w->inq[w->inq_len++] = m;
    pthread_mutex_unlock(&w->mu);
    if (!ok) { /* stopping (or, never seen, a worker MAX_PENDING events behind) */
      if (!stop) say("worker %d: inbox full: an event not handed to it", i);
      msg_unref(m);
      continue;
    }
    subs += __atomic_load_n(&w->nsubs, __ATOMIC_RELAXED);
    if (w != self) ev_async_send(w->loop, &w->async);
  }
  pthread_mutex_unlock(&pub_mu);
  __atomic_add_fetch(&n_published, 1, __ATOMIC_RELAXED);
  *delivered = subs;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Requests: the end of the head, the first word, Content-Length            */

static void become_subscriber(struct conn *c) {
  struct worker *w = c->w;
  free(c->in);
  c->in = NULL;
  c->inlen = c->incap = 0;
  c->sub = 1;
  link_del(&c->link);
  link_add(&w->subs, &c->link);
  __atomic_add_fetch(&w->nsubs, 1, __ATOMIC_RELAXED);
  send_bytes(c, SSE_HEAD, sizeof SSE_HEAD - 1);
}

/* Looks at a complete head in c->in[0 .. head_len). -1: refused and closed. */
static int parse_head(struct conn *c) {
  const char *p = c->in, *end = c->in + c->head_len;
  c->method = c->head_len >= 4 && memcmp(p, "GET ", 4) == 0 ? 1
            : c->head_len >= 5 && memcmp(p, "POST ", 5) == 0 ? 2 : 0;
  c->body_len = 0;
  if (c->method != 2) return 0;
  for (const char *line = memchr(p, '\n', c->head_len); line && line + 1 < end;
       line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
    const char *h = line + 1;
    if (end - h < 15 || strncasecmp(h, "content-length:", 15) != 0) continue;
    h += 15;
    while (h < end && (*h == ' ' || *h == '\t')) h++;
    size_t v = 0;
    int digits = 0;
    for (; h < end && *h >= '0' && *h <= '9'; h++, digits++) {
      v = v * 10 + (size_t)(*h - '0');
      if (v > BODY_MAX) { refuse(c, "413 Payload Too Large"); return -1; }
    }
    if (!digits) { refuse(c, "400 Bad Request"); return -1; }
    c->body_len = v;
    break;
  }
  return 0;
}

/* Acts on every complete request in c->in. -1: c was closed or became a subscriber. */
static int handle_requests(struct conn *c) {
  for (;;) {
    if (!c->head_len) {
      const char *e = c->inlen >= 4 ? memmem(c->in, c->inlen, "\r\n\r\n", 4) : NULL;
      if (!e) {
        if (c->inlen >= HEAD_MAX) { refuse(c, "431 Request Header Fields Too Large"); return -1; }
        return 0;
      }
      c->head_len = (size_t)(e - c->in) + 4;
      if (parse_head(c) < 0) return -1;
    }
    if (c->method == 1) { become_subscriber(c); return -1; }
    if (c->method != 2) { refuse(c, "405 Method Not Allowed"); return -1; }
    size_t need = c->head_len + c->body_len;
    if (c->inlen < need) return 0;
    unsigned long long id;
    long delivered;
    if (publish(c->w, c->in + c->head_len, c->body_len, &id, &delivered) < 0) {
      refuse(c, "503 Service Unavailable");
      return -1;
    }
    char body[80], resp[256];
    int bl = snprintf(body, sizeof body, "{\"id\":\"%llu\",\"delivered\":%ld}", id, delivered);
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      bl, body);
    if (send_bytes(c, resp, (size_t)rl) < 0) return -1;
    memmove(c->in, c->in + need, c->inlen - need);
    c->inlen -= need;
    c->head_len = 0;
  }
}

static void on_read(struct conn *c) {
  for (int r = 0; r < READS_PER_CB; r++) {
    if (c->sub) { /* a subscriber says nothing more: only its end matters */
      char junk[512];
      ssize_t n = read(c->fd, junk, sizeof junk);
      if (n > 0) continue;
      if (n < 0 && (errno == EINTR)) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      conn_close(c);
      return;
    }
    size_t want = c->head_len ? c->head_len + c->body_len : HEAD_MAX;
    if (want < c->inlen + 512) want = c->inlen + 512;
    if (want > HEAD_MAX + BODY_MAX) want = HEAD_MAX + BODY_MAX;
    if (c->incap < want) {
      size_t ncap = c->incap ? c->incap : IN_START;
      while (ncap < want) ncap *= 2;
      char *nb = realloc(c->in, ncap);
      if (!nb) { conn_close(c); return; }
      c->in = nb;
      c->incap = ncap;
    }
    if (c->inlen == c->incap) { refuse(c, "413 Payload Too Large"); return; }
    ssize_t n = read(c->fd, c->in + c->inlen, c->incap - c->inlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      conn_close(c);
      return;
    }
    if (n == 0) { conn_close(c); return; }
    c->inlen += (size_t)n;
    if (handle_requests(c) < 0) return;
  }
}

static void on_conn(struct ev_loop *loop, ev_io *io, int revents) {
  (void)loop;
  struct conn *c = (struct conn *)io;
  if ((revents & EV_WRITE) && conn_flush(c) < 0) return;
  if (revents & EV_READ) on_read(c);
}

/* ------------------------------------------------------------------------ */
/* Accepting                                                                 */

static void accept_resume(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)revents;
  struct worker *w = (struct worker *)((char *)t - offsetof(struct worker, accept_backoff));
  ev_io_start(loop, &w->accept_io);
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents) {
  (void)revents;
  struct worker *w = (struct worker *)((char *)io - offsetof(struct worker, accept_io));
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        say("accept: %s; pausing accepts for 0.5 s", strerror(errno));
        ev_io_stop(loop, &w->accept_io);
        ev_timer_stop(loop, &w->accept_backoff);
        ev_timer_set(&w->accept_backoff, 0.5, 0.);
        ev_timer_start(loop, &w->accept_backoff);
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) { close(fd); continue; }
    c->w = w;
    c->fd = fd;
    link_add(&w->others, &c->link);
    ev_io_init(&c->io, on_conn, fd, EV_READ);
    ev_io_start(loop, &c->io);
  }
}

/* ------------------------------------------------------------------------ */
/* Workers, signals, set-up                                                  */

static void *worker_main(void *arg) {
  struct worker *w = arg;
  ev_run(w->loop, 0);
  /* stopping: nothing more enters the inbox; free what is left */
  pthread_mutex_lock(&w->mu);
  w->stopping = 1;
  for (size_t i = 0; i < w->inq_len; i++) msg_unref(w->inq[i]);
  free(w->inq);
  free(w->spare);
  w->inq = w->spare = NULL;
  w->inq_len = w->inq_cap = w->spare_cap = 0;
  pthread_mutex_unlock(&w->mu);
  struct link *lists[2] = { &w->subs, &w->others };
  for (int k = 0; k < 2; k++)
    while (lists[k]->next != lists[k])
      conn_close((struct conn *)((char *)lists[k]->next - offsetof(struct conn, link)));
  ev_io_stop(w->loop, &w->accept_io);
  ev_timer_stop(w->loop, &w->accept_backoff);
  ev_async_stop(w->loop, &w->async);
  ev_prepare_stop(w->loop, &w->prepare);
  close(w->lfd);
  return NULL;
}

static void on_signal(struct ev_loop *loop, ev_signal *s, int revents) {
  (void)revents;
  say("signal %d: stopping (%lld events published)", s->signum,
      __atomic_load_n(&n_published, __ATOMIC_RELAXED));
  for (int i = 0; i < nworkers; i++) {
    pthread_mutex_lock(&workers[i].mu);
    workers[i].stopping = 1;
    pthread_mutex_unlock(&workers[i].mu);
    ev_async_send(workers[i].loop, &workers[i].async);
  }
  ev_break(loop, EVBREAK_ALL);
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static void usage(const char *msg) {
  if (msg) fprintf(stderr, "floor: %s\n", msg);
  fprintf(stderr,
          "usage: floor --port P [--workers W]\n"
          "  --port P      port on 127.0.0.1 (0: pick one; it is said on stderr)\n"
          "  --workers W   threads, each with its own loop and SO_REUSEPORT listener (default 1)\n");
  exit(2);
}

static long num(const char *flag, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || end == v || *end || n < lo || n > hi) {
    fprintf(stderr, "floor: %s takes a number from %ld to %ld, not %s\n", flag, lo, hi, v);
    exit(2);
  }
  return n;
}

int main(int argc, char **argv) {
  long port = -1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) usage(NULL);
    if (i + 1 >= argc) usage("every option takes a value");
    if (strcmp(argv[i], "--port") == 0) port = num(argv[i], argv[i + 1], 0, 65535);
    else if (strcmp(argv[i], "--workers") == 0) nworkers = (int)num(argv[i], argv[i + 1], 1, MAX_WORKERS);
    else { fprintf(stderr, "floor: unknown option %s\n", argv[i]); usage(NULL); }
    i++;
  }
  if (port < 0) usage("--port is required");

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);

  /* listeners: the first picks the port when it is 0, the others share it */
  for (int i = 0; i < nworkers; i++) {
    int fd = listen_on((int)port);
    if (fd < 0) {
      say("cannot listen on 127.0.0.1:%ld: %s", port, strerror(errno));
      for (int k = 0; k < i; k++) close(workers[k].lfd);
      return 1;
    }
    if (port == 0) {
      struct sockaddr_in sa;
      socklen_t sl = sizeof sa;
      if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) { perror("floor: getsockname"); return 1; }
      port = ntohs(sa.sin_port);
    }
    workers[i].lfd = fd;
  }

  /* workers: signals belong to the main thread */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (int i = 0; i < nworkers; i++) {
    struct worker *w = &workers[i];
    w->idx = i;
    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (!w->loop) { say("cannot start libev"); return 1; }
    pthread_mutex_init(&w->mu, NULL);
    link_init(&w->subs);
    link_init(&w->others);
    ev_io_init(&w->accept_io, on_accept, w->lfd, EV_READ);
    ev_io_start(w->loop, &w->accept_io);
    ev_timer_init(&w->accept_backoff, accept_resume, 0.5, 0.);
    ev_async_init(&w->async, on_async);
    ev_async_start(w->loop, &w->async);
    ev_prepare_init(&w->prepare, on_prepare);
    ev_prepare_start(w->loop, &w->prepare);
  }
  int started = 0;
  for (; started < nworkers; started++)
    if (pthread_create(&workers[started].th, NULL, worker_main, &workers[started]) != 0) break;
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  struct ev_loop *main_loop = ev_default_loop(EVFLAG_AUTO);
  ev_signal sigint_w, sigterm_w;
  ev_signal_init(&sigint_w, on_signal, SIGINT);
  ev_signal_init(&sigterm_w, on_signal, SIGTERM);
  ev_signal_start(main_loop, &sigint_w);
  ev_signal_start(main_loop, &sigterm_w);
  if (started == nworkers) {
    say("listening on 127.0.0.1:%ld", port);
    ev_run(main_loop, 0);
  } else {
    say("cannot start worker thread %d", started);
    for (int i = 0; i < started; i++) {
      pthread_mutex_lock(&workers[i].mu);
      workers[i].stopping = 1;
      pthread_mutex_unlock(&workers[i].mu);
      ev_async_send(workers[i].loop, &workers[i].async);
    }
  }
  for (int i = 0; i < started; i++) pthread_join(workers[i].th, NULL);
  for (int i = 0; i < nworkers; i++) {
    if (i >= started) close(workers[i].lfd);
    ev_loop_destroy(workers[i].loop);
    pthread_mutex_destroy(&workers[i].mu);
  }
  ev_signal_stop(main_loop, &sigint_w);
  ev_signal_stop(main_loop, &sigterm_w);
  ev_loop_destroy(main_loop);
  if (n_slow_closed) say("%ld slow subscribers closed", n_slow_closed);
  return started == nworkers ? 0 : 1;
}
