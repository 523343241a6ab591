/* Streams: a request on a connection, answered by a task. The stream owns
 * the request's task, frames what it yields into the connection's output,
 * writes its response head (a stream's when the view first yields, waits or
 * ends), and relays a subscription in C once the view hands it over. */
#ifndef FLOSSE_STREAM_H
#define FLOSSE_STREAM_H

#include "conn.h"
#include "guard.h"
#include "task.h"
#include "wait_relay.h"

/* A worker's streams: what every request's task starts with. */
struct flosse_streams {
  struct flosse_tasks *tasks;
  const struct flosse_config *cfg;
  int dispatch_ref;          /* the Lua function every request's task starts in */
  struct flosse_guards guards; /* its streams that may end early (expiry, revocation) */
};

struct flosse_stream {
  struct flosse_conn *conn;
  struct flosse_streams *ctx;
  struct flosse_task task;   /* the request's; released once relaying */
  struct flosse_relay relay;
  struct flosse_job free;    /* the struct is freed at the end of the turn, since
                                its task may be on the C stack when it closes */
  struct flosse_sub *relay_pending; /* handed over by the view, taken after its yield */
  int onclose_ref, onclose_arg_ref; /* the task's close handler, kept while relaying */
  long long head_retry;      /* the stream's retry frame (< 0: none) */
  double head_heartbeat;     /* its heartbeat interval (0: none) */
  struct flosse_guard *guard;/* its caps, expiry and revocation; NULL: none */
  char *head_extra;          /* the view's own header lines ("Name: value\r\n"...), owned */
  size_t head_extra_len;
  int route;                 /* its route's metrics id (core.metrics_route); counted
                                as open from its head to its end */
  unsigned sse : 1;          /* start_stream was called: an event stream */
  unsigned head_pending : 1; /* its head is not written yet: a refusal can still
                                answer with its own status */
  unsigned chunked : 1;
  unsigned counted : 1;      /* in its route's open streams (metrics) */
};

/* Sets up a worker's streams. */
void flosse_streams_init(struct flosse_streams *ss, struct flosse_tasks *tasks,
                         const struct flosse_config *cfg);

/* Admits a started stream with what o says (see flosse_guard_new): its
 * client's caps, its credential's expiry, its user's revocation. */
enum flosse_admit flosse_stream_admit(struct flosse_stream *s, const struct flosse_guard_opts *o);

/* The connection callbacks of the stream layer (conns->data must point at
 * the worker's struct flosse_streams). */
extern const struct flosse_conn_callbacks flosse_stream_conn_callbacks;

/* The stream whose task t is, or NULL (a background task). */
struct flosse_stream *flosse_stream_of(struct flosse_task *t);

/* core.start_stream: the request is an event stream from now on; extra
 * (borrowed, copied) holds header lines the head carries besides the
 * core's, already checked. Returns FLOSSE_ERR if it already is one, or
 * on no memory. */
int flosse_stream_start(struct flosse_stream *s, long long retry, double heartbeat,
                        const char *extra, size_t extra_len);

/* 1 for the headers a stream's head writes itself (Content-Type,
 * Cache-Control, X-Accel-Buffering): a view may not set them. */
int flosse_stream_head_header(const char *name, size_t len);

/* Logs an error with a new id (written to id) and, on a running stream,
 * sends the error event: the text itself in debug mode, a generic one
 * otherwise. s may be NULL (logged only). */
void flosse_stream_report_error(struct flosse_stream *s, const char *log_text,
                                const char *client_text, char id[13]);

#endif
