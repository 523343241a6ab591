/* Connections: the transport. A connection owns its socket, its request
 * parser and its output queue, and is the only code that changes its state,
 * through named transitions that refuse an illegal move. It knows nothing of
 * Lua: it calls the layer above (the stream) through the callbacks of its
 * struct flosse_conns. */
#ifndef FLOSSE_CONN_H
#define FLOSSE_CONN_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "config.h"
#include "http.h"
#include "list.h"
#include "loop.h"
#include "rbuf.h"
#include "response.h"
#include "tq.h"

#define FLOSSE_MAX_HBQ 16 /* distinct heartbeat intervals */
#define FLOSSE_REQLINE_URL 200 /* bytes of the request target kept for log lines */

struct flosse_redact;
struct flosse_h2;

enum flosse_conn_state {
  FLOSSE_CONN_READING,   /* waiting for (the rest of) a request */
  FLOSSE_CONN_HANDLING,  /* a request was handed up; nothing of its answer sent */
  FLOSSE_CONN_STREAMING, /* a response head is out and its body is open */
  FLOSSE_CONN_DRAINING,  /* the last answer is queued; close once it is sent */
  FLOSSE_CONN_CLOSED,    /* waiting to be freed */
};

struct flosse_conn;

/* What a connection tells the layer above. Each runs on the loop's thread. */
struct flosse_conn_callbacks {
  /* A request was read (h is valid until this returns). The state is
   * HANDLING; the layer answers with flosse_conn_respond, or writes a head
   * and calls flosse_conn_begin_body, then flosse_conn_end_response. */
  void (*request)(struct flosse_conn *c, const struct flosse_http *h);
  /* The output went back under the low-water mark after flosse_conn_full
   * said it was over the high-water mark. */
  void (*drained)(struct flosse_conn *c);
  /* A heartbeat interval passed with nothing written on an open body. */
  void (*idle)(struct flosse_conn *c);
  /* Graceful shutdown of a connection with a request in hand. */
  void (*shutdown)(struct flosse_conn *c);
  /* The connection is closing: release what the layer holds for it. */
  void (*closed)(struct flosse_conn *c);
};

/* What HTTP/2 does for the transport (h2.h's flosse_h2_ops). A table the
 * process layer hands over, since HTTP/2 sits above the connections it runs
 * on: a connection that sends the HTTP/2 preface becomes a session, whose
 * streams are connections too (fd -1, parent set), each carrying one
 * request for the layer above. Each runs on the loop's thread, never
 * inside another of its calls. */
struct flosse_conn_h2_ops {
  /* c's first bytes are the client preface: make it a session. FLOSSE_OK,
   * or FLOSSE_ERR (out of memory: c is closed). */
  int (*begin)(struct flosse_conn *c);
  /* Bytes read on a session (FLOSSE_ERR: c was told to close). */
  int (*input)(struct flosse_conn *c, const char *p, size_t n);
  /* Frames into c->out, up to about max bytes; 1 if more may be waiting. */
  int (*produce)(struct flosse_conn *c, size_t max);
  /* A stream's output grew, or its answer ended. */
  void (*stream_ready)(struct flosse_conn *s);
  /* A stream's deferred work (its request complete, its end, its drain). */
  void (*stream_run)(struct flosse_conn *s);
  /* A stream closes (the layer above has let go): reset it if unfinished. */
  void (*stream_closed)(struct flosse_conn *s);
  /* Graceful stop: every stream ended, then GOAWAY. */
  void (*shutdown)(struct flosse_conn *c);
  /* No stream for header_timeout: GOAWAY and close. */
  void (*idle)(struct flosse_conn *c);
  /* The session's connection closes: its streams close first. */
  void (*closed)(struct flosse_conn *c);
};

/* A worker's connections, their timeout queues and their configuration. */
struct flosse_conns {
  struct flosse_loop *loop;
  const struct flosse_config *cfg;
  const struct flosse_conn_callbacks *cb;
  const struct flosse_conn_h2_ops *h2; /* NULL: HTTP/1.1 only */
  void *data;                    /* the layer above's context for these connections */
  struct flosse_list all;        /* every open connection */
  long n;                        /* how many */
  long *open;                    /* the whole server's count, shared by its workers (atomic) */
  struct flosse_tq header_tq, write_tq;
  struct flosse_tq linger_tq;    /* closing connections waiting for their client's FIN */
  struct flosse_tq hbq[FLOSSE_MAX_HBQ];
  int nhbq;
  struct flosse_http *spare_http;/* a finished request reader, kept for the next */
};

struct flosse_conn {
  struct flosse_conns *ctx;
  void *up;                  /* the layer above's (its stream), NULL when none */
  int fd;
  enum flosse_conn_state state;
  ev_io rio, wio;
  struct flosse_list node;   /* in ctx->all */
  struct flosse_job run;     /* pipelined bytes to parse, a close to do; then its free */
  struct flosse_job flush;   /* output to send */
  struct flosse_tq_node rd;  /* in header_tq while a request is awaited, linger_tq after */
  struct flosse_tq_node wr;  /* in write_tq while the socket is full */
  struct flosse_tq_node hb;  /* in *hbq while a body is open with heartbeats */
  struct flosse_tq *hbq;
  struct flosse_http *http;  /* only while a request is being read: an idle
                                stream keeps no parser state */
  struct flosse_buf out;
  struct flosse_rbuf in;     /* bytes read past the current request, oldest first */
  SSL *ssl;                  /* TLS over fd; NULL: cleartext */
  /* HTTP/2: on a session, its state; on a stream, its session's */
  struct flosse_h2 *h2;
  struct flosse_conn *parent;/* a stream's connection; NULL: a connection */
  struct flosse_list sibling;/* a stream in its session's list */
  int32_t stream_id;
  unsigned h2_flags : 8;     /* h2.c's, on a stream */
  unsigned proto_known : 1;  /* the first bytes said HTTP/1.1 or HTTP/2 */
  unsigned tls_read_blocked : 1; /* a TLS read waits for the socket to be writable */
  unsigned tls_write_blocked : 1;/* a TLS write waits for it to be readable */
  unsigned drain_due : 1;    /* a stream's output went under the low-water mark */
  unsigned in_dropped : 1;   /* bytes were dropped while a response ran: close after it */
  unsigned in_paused : 1;    /* pipelined requests wait for the output to drain */
  unsigned peer_closed : 1;  /* the client half-closed: answer what it sent, then close */
  unsigned want_drained : 1; /* tell the layer above when the output drains */
  unsigned keep_alive : 1;   /* the current request allows another after it */
  unsigned http10 : 1;
  unsigned head : 1;         /* a HEAD request: no body */
  unsigned linger : 2;       /* enum flosse_linger */
  const char *close_reason;  /* set: close it at its next turn */
  char *reqline;             /* "GET /path?q" for log lines, credentials redacted (redact.h) */
  /* for the access line */
  ev_tstamp req_start;
  int status;
  unsigned long events;
  uint64_t req_base;         /* out.total when the request began */
  char remote[46];           /* the client for log lines: the peer, or what a trusted
                                proxy said (flosse_conn_set_client), for one request */
  char peer[46];             /* the socket's peer address */
};

enum flosse_linger {
  FLOSSE_LINGER_NO,
  FLOSSE_LINGER_WANTED,      /* the client may still be sending: once the answer is out,
                                half-close and read until its FIN (or a timeout) first,
                                so that closing with unread bytes does not reset the
                                connection and destroy the answer in transit */
  FLOSSE_LINGER_ON,          /* half-closed, dropping what it sends until its FIN */
};

/* Sets up a worker's connections (cfg and cb are borrowed for its life). */
void flosse_conns_init(struct flosse_conns *cs, struct flosse_loop *loop,
                       const struct flosse_config *cfg, const struct flosse_conn_callbacks *cb,
                       long *open);
/* Starts its timeout queues (the loop is about to run). */
void flosse_conns_start(struct flosse_conns *cs);
/* Graceful stop: idle connections close, busy ones get the shutdown callback. */
void flosse_conns_shutdown(struct flosse_conns *cs);
/* Closes every connection now. */
void flosse_conns_close_all(struct flosse_conns *cs);
/* Stops the timeout queues and frees the spare reader. */
void flosse_conns_stop(struct flosse_conns *cs);

/* Takes ownership of fd (a non-blocking, accepted socket). NULL (fd closed)
 * when out of memory. */
struct flosse_conn *flosse_conn_new(struct flosse_conns *cs, int fd, const struct sockaddr *sa);

/* Closes the socket; the layer above gets its closed callback. The struct
 * is freed at the end of the loop's turn, so callers up the stack may still
 * look at it. why: a reason for a warning line, or NULL for none. */
void flosse_conn_close(struct flosse_conn *c, const char *why);
/* The same at the connection's next turn: for code that must not close it
 * where it runs (a publish, a callback). */
void flosse_conn_close_soon(struct flosse_conn *c, const char *why);

/* Named transitions (each refuses an illegal move, with a log line):
 * HANDLING -> STREAMING once a response head is queued and its body stays
 * open; HANDLING or STREAMING -> READING (keep-alive) or DRAINING once the
 * answer is complete. */
int flosse_conn_begin_body(struct flosse_conn *c);
void flosse_conn_end_response(struct flosse_conn *c);

static inline int flosse_conn_is_open(const struct flosse_conn *c) {
  return c->state != FLOSSE_CONN_CLOSED;
}
static inline int flosse_conn_streaming(const struct flosse_conn *c) {
  return c->state == FLOSSE_CONN_STREAMING;
}

/* What the response writer needs to know of this connection. */
static inline struct flosse_response_conn flosse_conn_response(const struct flosse_conn *c) {
  struct flosse_response_conn r = {c->keep_alive, c->http10};
  return r;
}

/* The connection closes after this answer (a close-delimited body, a shutdown). */
static inline void flosse_conn_no_keep_alive(struct flosse_conn *c) { c->keep_alive = 0; }

/* Queues a complete short response. Returns FLOSSE_OK/FLOSSE_ERR. */
int flosse_conn_respond(struct flosse_conn *c, int status, const char *ctype,
                        const char *body, size_t len);

/* Bytes were queued on c->out: flush them, and restart the heartbeat clock. */
void flosse_conn_wrote(struct flosse_conn *c);

/* 1 if the output is over the high-water mark; the drained callback then
 * comes once it is under the low-water mark. */
int flosse_conn_full(struct flosse_conn *c);

/* Writes what it can now, rather than at the end of the turn. */
void flosse_conn_flush(struct flosse_conn *c);

/* Heartbeats every interval seconds of silence on the open body (0: none). */
void flosse_conn_heartbeat(struct flosse_conn *c, double interval);

/* The query parameters never shown in this thread's log lines (copied):
 * every later request line of this worker's connections. */
void flosse_conn_redact_query(const struct flosse_redact *r);

/* The client address the log lines name for c's current request (a
 * trusted proxy's client; addr is copied, at most 45 bytes). Reset to the
 * peer's at the next request. Returns FLOSSE_OK, or FLOSSE_ERR if too long. */
int flosse_conn_set_client(struct flosse_conn *c, const char *addr);

/* Answers a refused request (400, 408, 413, 414, 431, 503) and closes after. */
void flosse_conn_refuse(struct flosse_conn *c, int status, const char *why);

/* ---- for HTTP/2 (h2.c) ------------------------------------------------------ */

/* A stream of session c (READING, no socket): NULL when out of memory. */
struct flosse_conn *flosse_conn_new_stream(struct flosse_conn *c);
/* A request reader for a stream (the worker's spare, or a new one). */
struct flosse_http *flosse_conn_reader(struct flosse_conn *s);
/* A stream's request is complete in s->http: it goes up as a request read
 * from a socket does. */
void flosse_conn_hand_up(struct flosse_conn *s);
/* n bytes of s->out were framed: the write clock restarts, and the layer
 * above hears of a drain (at the stream's next run). */
void flosse_conn_took(struct flosse_conn *s, size_t n);
/* The drained callback, if the output went under the low-water mark. */
void flosse_conn_drained(struct flosse_conn *s);
/* One try at writing what c->out holds, as c closes (never waits). */
void flosse_conn_last_write(struct flosse_conn *c);
/* No more input on c: it closes once its output is sent. */
void flosse_conn_finish(struct flosse_conn *c);
/* Its turn is wanted: run (stream_run on a stream) or flush. */
void flosse_conn_want_run(struct flosse_conn *c);
void flosse_conn_want_flush(struct flosse_conn *c);
/* The idle clock of a session (header_timeout) starts or stops. */
void flosse_conn_idle_clock(struct flosse_conn *c, int on);

#endif
