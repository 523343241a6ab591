/* Outbound HTTP for one worker's loop: one libcurl multi handle per loop,
 * driven by the loop's libev watchers through the multi_socket API (an
 * ev_io per socket curl opens, one ev_timer for curl's timeouts), so that a
 * request never blocks the loop. No Lua, no tasks: a request reports to the
 * callback it was started with. Layer 2 (loop utilities), beside redis.c. */
#ifndef FLOSSE_HTTP_CLIENT_H
#define FLOSSE_HTTP_CLIENT_H

#include <stddef.h>

struct flosse_loop;
struct flosse_http_req; /* one request: its caller's until flosse_http_req_free */

/* What to send. Everything is copied by flosse_http_start. */
struct flosse_http_opts {
  const char *method;          /* "GET", "HEAD", "POST", any token */
  const char *url;             /* http:// or https:// (no other scheme is let through) */
  const char *const *names;    /* nheaders header names and values, checked by */
  const char *const *values;   /* the caller (a token; no CR, LF or NUL) */
  int nheaders;
  const char *body;            /* NULL: no body */
  size_t body_len;
  double timeout;              /* seconds for the whole exchange, > 0 */
  size_t max_body;             /* bytes of response body at most */
  int follow;                  /* follow redirects (FLOSSE_HTTP_MAX_REDIRECTS) */
  const char *ca_file;         /* NULL: verify against the system's CA store */
};

/* A finished request's response (the last one, when redirects were
 * followed). Borrowed from the request: valid until it is freed. */
struct flosse_http_result {
  long status;
  const char *headers;         /* its header lines as received ("Name: value\r\n"...),
                                  without the status line */
  size_t headers_len;
  const char *body;            /* its body, exact bytes (may hold NULs) */
  size_t body_len;
};

/* Called once when the request ended: err is NULL (then
 * flosse_http_req_result has the response) or a short text: "timeout",
 * "refused", "too large", "resolve", "tls", "connect failed", "too many
 * redirects", "out of memory", or libcurl's own text for the rest. Runs from
 * the loop (never from inside flosse_http_start); it may free req. */
typedef void (*flosse_http_done_fn)(void *arg, struct flosse_http_req *req, const char *err);

/* Starts a request on loop's client (made on first use). Returns it (the
 * caller must free it once, with flosse_http_req_free), or NULL with *err
 * set when it could not be started ("out of memory", or libcurl's text for
 * an option it refused). */
struct flosse_http_req *flosse_http_start(struct flosse_loop *loop, const struct flosse_http_opts *o,
                                          flosse_http_done_fn done, void *arg, const char **err);

/* The response of a request whose done callback said err == NULL. */
const struct flosse_http_result *flosse_http_req_result(const struct flosse_http_req *req);

/* Frees the request; one still in flight is aborted (its connection
 * closed) and its callback never runs. NULL is allowed. */
void flosse_http_req_free(struct flosse_http_req *req);

/* Frees loop's client (at the worker's end, after every task that could own
 * a request is gone). A request still unfreed is aborted and left to its
 * owner to free. */
void flosse_http_client_free(struct flosse_loop *loop);

/* Once per process, before any thread starts (curl_global_init). */
void flosse_http_global_init(void);

#endif
