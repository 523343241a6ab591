/* A client connection: reading requests, writing responses and streams. */
#ifndef FLOSSE_CONN_H
#define FLOSSE_CONN_H

#include <ev.h>
#include <lua.h>
#include <sys/socket.h>

#include "buf.h"
#include "http.h"
#include "list.h"
#include "rbuf.h"
#include "server.h"
#include "tq.h"

enum flosse_conn_state {
  FLOSSE_CONN_READING,   /* waiting for (the rest of) a request */
  FLOSSE_CONN_HANDLING,  /* a request thread runs; nothing sent yet */
  FLOSSE_CONN_STREAMING, /* the stream's head is sent; events follow */
  FLOSSE_CONN_DRAINING,  /* the answer is queued; close once it is sent */
  FLOSSE_CONN_CLOSED,    /* waiting to be freed */
};

enum flosse_wait {
  FLOSSE_WAIT_NONE,      /* runnable */
  FLOSSE_WAIT_SLEEP,     /* sleep_timer will resume it */
  FLOSSE_WAIT_DRAIN,     /* output above the high-water mark */
  FLOSSE_WAIT_CHANNEL,   /* a subscription will wake it */
  FLOSSE_WAIT_RELAY,     /* for good: the core relays `relay` with no Lua */
};

struct flosse_conn {
  struct flosse_server *srv;
  int fd;
  enum flosse_conn_state state;
  enum flosse_wait wait;
  ev_io rio, wio;
  ev_timer sleep_timer;
  struct flosse_list node;   /* in srv->conns */
  struct flosse_list qnode;  /* in srv->runq, or srv->freeq once closed */
  struct flosse_list wnode;  /* in srv->writeq */
  struct flosse_tq_node rd;  /* in srv->header_tq while a request is awaited */
  struct flosse_tq_node wr;  /* in srv->write_tq while the socket is full */
  struct flosse_tq_node hb;  /* in *hbq while streaming with heartbeats */
  struct flosse_tq *hbq;
  struct flosse_http *http;  /* only while a request is being read: an idle
                                stream keeps no parser state */
  struct flosse_buf out;
  struct flosse_rbuf in;     /* bytes read past the current request, oldest first */
  int in_dropped;            /* bytes were dropped while a response ran: close after it */
  int in_paused;             /* pipelined requests wait for the output to drain */
  int peer_closed;           /* the client half-closed: answer what it sent, then close */
  enum {
    FLOSSE_LINGER_NO,
    FLOSSE_LINGER_WANTED,    /* the client may still be sending: once the answer is out,
                                half-close and read until its FIN (or a timeout) first,
                                so that closing with unread bytes does not reset the
                                connection and destroy the answer in transit */
    FLOSSE_LINGER_ON,        /* half-closed, dropping what it sends until its FIN */
  } linger;
  lua_State *T;              /* the request's thread, anchored by thread_ref */
  int thread_ref, onclose_ref, onclose_arg_ref;
  int keep_alive, chunked, http10, head;
  int over_budget;           /* the instruction hook stopped the view */
  int head_pending;          /* a started stream's head is written when its view
                                first yields, waits or ends: until then a refusal
                                can still answer with its own status */
  long long head_retry;      /* the stream's retry frame (< 0: none) */
  double head_heartbeat;     /* its heartbeat interval (0: none) */
  struct flosse_list subs;   /* its channel subscriptions (struct flosse_sub) */
  struct flosse_sub *relay;  /* the one relayed in C (FLOSSE_WAIT_RELAY) */
  int relay_full;            /* relaying paused above the high-water mark */
  const char *drop_reason;   /* set: close it at its next turn */
  char *reqline;             /* "GET /path" for log lines */
  /* for the access line */
  ev_tstamp req_start;
  int status;
  unsigned long events;
  uint64_t req_base;         /* out.total when the request began */
  char remote[64];
};

/* Takes ownership of fd (a non-blocking, accepted socket). */
struct flosse_conn *flosse_conn_new(struct flosse_server *srv, int fd,
                                    const struct sockaddr *sa);

/* Closes the socket and the request thread (to-be-closed variables and the
 * on_close handler run). The struct is freed later, in the prepare watcher,
 * so callers up the stack may still look at it. */
void flosse_conn_close(struct flosse_conn *c, const char *why);
void flosse_conn_free(struct flosse_conn *c);

/* Queues c for a flush before the loop next blocks. */
void flosse_conn_want_write(struct flosse_conn *c);
/* Queues c to be resumed (or its pending bytes parsed) in the prepare watcher. */
void flosse_conn_want_run(struct flosse_conn *c);
/* Writes what it can; called from the prepare watcher and on EV_WRITE. */
void flosse_conn_flush(struct flosse_conn *c);
/* Resumes the view, or parses pipelined bytes, as the conn needs. */
void flosse_conn_run(struct flosse_conn *c);

/* Ends a response head: Content-Length (when has_length), the Connection
 * header the keep-alive decision needs, the blank line. */
int flosse_conn_end_head(struct flosse_conn *c, size_t body_len, int has_length);

/* Queues a complete non-stream response. Returns FLOSSE_OK/FLOSSE_ERR. */
int flosse_conn_respond(struct flosse_conn *c, int status, const char *ctype,
                        const char *body, size_t len);

/* Drops the request reader once its request is handed over. */
void flosse_conn_http_release(struct flosse_conn *c);

/* Called when the request thread finished: back to reading, or close. */
void flosse_conn_request_done(struct flosse_conn *c);

/* Queues a channel message, framed at publish time: the shared bytes, by
 * reference (the whole chunk, or the bare frame for HTTP/1.0). */
struct flosse_msg;
int flosse_conn_queue_msg(struct flosse_conn *c, struct flosse_msg *m);

/* Marks bytes just queued on a stream, for heartbeats and flushing. */
void flosse_conn_stream_wrote(struct flosse_conn *c);

/* Answers a refused request (400, 408, 413, 414, 431, 503) and closes after. */
void flosse_conn_refuse(struct flosse_conn *c, int status, const char *why);

/* Writes the access-log line of the request that just ended. */
void flosse_conn_log_access(struct flosse_conn *c);

const char *flosse_http_reason(int status);

/* Channel callbacks: a subscription has a message; a subscription fell too
 * far behind (the conn is closed at its next turn, never inside publish). */
void flosse_conn_wake(struct flosse_conn *c);
void flosse_conn_drop(struct flosse_conn *c);

/* Expiry callbacks of the server's timeout queues. */
void flosse_conn_on_heartbeat(struct flosse_tq *tq, struct flosse_tq_node *n);
void flosse_conn_on_header_timeout(struct flosse_tq *tq, struct flosse_tq_node *n);
void flosse_conn_on_write_timeout(struct flosse_tq *tq, struct flosse_tq_node *n);
void flosse_conn_on_linger_timeout(struct flosse_tq *tq, struct flosse_tq_node *n);

/* How long a closing connection waits for its client's FIN. */
#define FLOSSE_LINGER_SECONDS 2.0

#endif
