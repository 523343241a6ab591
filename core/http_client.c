#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "defaults.h"
#include "list.h"
#include "loop.h"

/* A loop's client: its multi handle, the one timer curl asks for, the
 * sockets curl watches and the requests in flight. */
struct flosse_http_client {
  CURLM *multi;
  struct flosse_loop *loop;
  ev_timer timer;
  struct flosse_list socks; /* struct sock.link */
  struct flosse_list reqs;  /* struct flosse_http_req.link, while in the multi handle */
};

/* A socket curl asked us to watch (curl_multi_assign keeps it with the fd). */
struct sock {
  ev_io io;
  struct flosse_http_client *c;
  struct flosse_list link;
};

/* A growable byte buffer that never grows past its cap. */
struct bytes {
  char *p;
  size_t len, cap, max;
};

struct flosse_http_req {
  struct flosse_http_client *c; /* NULL once out of the multi handle */
  CURL *easy;
  struct curl_slist *headers;
  struct flosse_list link;
  flosse_http_done_fn done;
  void *arg;
  struct bytes head, body;
  int too_large;                /* a callback refused more bytes */
  struct flosse_http_result result;
};

/* ---- bytes ------------------------------------------------------------------ */

/* Appends n bytes; returns 0 when that would go over b->max (nothing added)
 * or memory ran out (*oom set). */
static int bytes_add(struct bytes *b, const char *p, size_t n, int *oom) {
  if (n > b->max - b->len) return 0;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    if (cap > b->max) cap = b->max;
    char *np = realloc(b->p, cap);
    if (!np) {
      *oom = 1;
      return 0;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 1;
}

/* ---- curl's callbacks ------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg) {
  struct flosse_http_req *r = arg;
  size_t n = size * nmemb; /* size is 1, says curl; multiply anyway */
  int oom = 0;
  if (bytes_add(&r->body, p, n, &oom)) return n;
  /* Over max_body: abort now, so memory stays bounded by it. */
  if (!oom) r->too_large = 1;
  return 0;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg) {
  struct flosse_http_req *r = arg;
  size_t n = size * nmemb;
  /* Each response (a 1xx, a redirect followed, the final one) starts with
   * its status line: keep only the last one's headers. */
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    r->head.len = 0;
    return n;
  }
  if (n == 2 && p[0] == '\r' && p[1] == '\n') return n;
  int oom = 0;
  if (bytes_add(&r->head, p, n, &oom)) return n;
  if (!oom) r->too_large = 1;
  return 0;
}

/* ---- the multi handle's watchers -------------------------------------------- */

static void check_done(struct flosse_http_client *c);

static void on_io(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  struct sock *k = flosse_container_of(w, struct sock, io);
  struct flosse_http_client *c = k->c;
  int flags = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
  int running;
  curl_multi_socket_action(c->multi, w->fd, flags, &running);
  check_done(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_http_client *c = flosse_container_of(w, struct flosse_http_client, timer);
  int running;
  curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(c);
}

static void sock_free(struct sock *k) {
  ev_io_stop(k->c->loop->ev, &k->io);
  flosse_list_unlink(&k->link);
  free(k);
}

/* curl says which events it wants on s (or that it is done with s). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
  (void)easy;
  struct flosse_http_client *c = userp;
  struct sock *k = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (k) {
      curl_multi_assign(c->multi, s, NULL);
      sock_free(k);
    }
    return 0;
  }
  if (!k) {
    if (!(k = calloc(1, sizeof *k))) return -1;
    k->c = c;
    flosse_list_push(&c->socks, &k->link);
    curl_multi_assign(c->multi, s, k);
  } else {
    ev_io_stop(c->loop->ev, &k->io);
  }
  int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
  ev_io_init(&k->io, on_io, s, events);
  ev_io_start(c->loop->ev, &k->io);
  return 0;
}

/* curl wants to be called back after ms (-1: never). Never called back
 * from here: the timer fires from the loop, even for 0. */
static int on_timer_set(CURLM *multi, long ms, void *userp) {
  (void)multi;
  struct flosse_http_client *c = userp;
  ev_timer_stop(c->loop->ev, &c->timer);
  if (ms >= 0) {
    ev_timer_set(&c->timer, (double)ms / 1000., 0.);
    ev_timer_start(c->loop->ev, &c->timer);
  }
  return 0;
}

/* ---- requests --------------------------------------------------------------- */

static const char *error_text(struct flosse_http_req *r, CURLcode code) {
  switch (code) {
  case CURLE_OK:
    return NULL;
  case CURLE_OPERATION_TIMEDOUT:
    return "timeout";
  case CURLE_COULDNT_CONNECT: {
    long os = 0;
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os);
    return os == ECONNREFUSED ? "refused" : "connect failed";
  }
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return "resolve";
  case CURLE_FILESIZE_EXCEEDED:
    return "too large";
  case CURLE_WRITE_ERROR:
    return r->too_large ? "too large" : "out of memory";
  case CURLE_TOO_MANY_REDIRECTS:
    return "too many redirects";
  case CURLE_OUT_OF_MEMORY:
    return "out of memory";
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CLIENTCERT:
  case CURLE_USE_SSL_FAILED:
    return "tls";
  default:
    return curl_easy_strerror(code);
  }
}

/* Takes r out of the multi handle (its connection goes back to the cache,
 * or is closed when it was cut short). */
static void detach(struct flosse_http_req *r) {
  if (!r->c) return;
  curl_multi_remove_handle(r->c->multi, r->easy);
  flosse_list_unlink(&r->link);
  r->c = NULL;
}

static void check_done(struct flosse_http_client *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURLcode code = m->data.result;
    struct flosse_http_req *r = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    const char *err = error_text(r, code);
    if (!err) {
      curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->result.status);
      r->result.headers = r->head.p ? r->head.p : "";
      r->result.headers_len = r->head.len;
      r->result.body = r->body.p ? r->body.p : "";
      r->result.body_len = r->body.len;
    }
    detach(r); /* m is gone from here on */
    r->done(r->arg, r, err);
  }
}

static struct flosse_http_client *client_of(struct flosse_loop *loop) {
  if (loop->http) return loop->http;
  struct flosse_http_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (!(c->multi = curl_multi_init())) {
    free(c);
    return NULL;
  }
  c->loop = loop;
  flosse_list_init(&c->socks);
  flosse_list_init(&c->reqs);
  ev_timer_init(&c->timer, on_timer, 0., 0.);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
  curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
  loop->http = c;
  return c;
}

/* 1 if the caller gave a header called name. */
static int has_header(const struct flosse_http_opts *o, const char *name) {
  for (int i = 0; i < o->nheaders; i++)
    if (strcasecmp(o->names[i], name) == 0) return 1;
  return 0;
}

/* Appends "Name: value" (or "Name;", curl's way of sending an empty value:
 * "Name:" would remove the header) to *list. */
static int add_header(struct curl_slist **list, const char *name, const char *value) {
  size_t nl = strlen(name), vl = strlen(value);
  char *line = malloc(nl + vl + 3);
  if (!line) return 0;
  memcpy(line, name, nl);
  if (vl) {
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, value, vl + 1);
  } else {
    memcpy(line + nl, ";", 2);
  }
  struct curl_slist *n = curl_slist_append(*list, line);
  free(line);
  if (!n) return 0;
  *list = n;
  return 1;
}

#define SET(opt, val)                                                                                    \
  do {                                                                                                   \
    CURLcode rc_ = curl_easy_setopt(r->easy, opt, val);                                                  \
    if (rc_ != CURLE_OK) {                                                                               \
      *err = rc_ == CURLE_OUT_OF_MEMORY ? "out of memory" : curl_easy_strerror(rc_);                     \
      goto fail;                                                                                         \
    }                                                                                                    \
  } while (0)

struct flosse_http_req *flosse_http_start(struct flosse_loop *loop, const struct flosse_http_opts *o,
                                          flosse_http_done_fn done, void *arg, const char **err) {
  *err = "out of memory";
  struct flosse_http_client *c = client_of(loop);
  if (!c) return NULL;
  struct flosse_http_req *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  flosse_list_init(&r->link);
  r->done = done;
  r->arg = arg;
  r->body.max = o->max_body;
  r->head.max = FLOSSE_HTTP_MAX_HEADER_BYTES;
  if (!(r->easy = curl_easy_init())) goto fail;
  for (int i = 0; i < o->nheaders; i++)
    if (!add_header(&r->headers, o->names[i], o->values[i])) goto fail;
  /* Only what the caller said: no form Content-Type for a body, no
   * "Expect: 100-continue" (a second's stall with a server that ignores it). */
  if (!has_header(o, "Content-Type") && !(r->headers = curl_slist_append(r->headers, "Content-Type:")))
    goto fail;
  if (!has_header(o, "Expect") && !(r->headers = curl_slist_append(r->headers, "Expect:"))) goto fail;
  SET(CURLOPT_PRIVATE, (char *)r);
  SET(CURLOPT_URL, o->url);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
  long ms = o->timeout * 1000. < 1. ? 1L : (long)(o->timeout * 1000.);
  SET(CURLOPT_TIMEOUT_MS, ms);
  /* 0 would mean no limit to curl; on_body enforces max_body in any case,
   * this only fails early when Content-Length already says too much. */
  if (o->max_body > 0) SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, r);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, r);
  SET(CURLOPT_HTTPHEADER, r->headers);
  if (o->follow) {
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, (long)FLOSSE_HTTP_MAX_REDIRECTS);
  }
  if (o->ca_file) {
    SET(CURLOPT_CAINFO, o->ca_file);
    SET(CURLOPT_CAPATH, (char *)NULL); /* that file alone, not also the system's folder */
  }
  if (strcmp(o->method, "HEAD") == 0) {
    SET(CURLOPT_NOBODY, 1L);
  } else if (strcmp(o->method, "POST") == 0 || o->body) {
    /* Binary-safe: the size first, then the bytes (copied). */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(o->body ? o->body_len : 0));
    SET(CURLOPT_COPYPOSTFIELDS, o->body ? o->body : "");
    if (strcmp(o->method, "POST") != 0) SET(CURLOPT_CUSTOMREQUEST, o->method);
  } else if (strcmp(o->method, "GET") != 0) {
    SET(CURLOPT_CUSTOMREQUEST, o->method);
  }
  if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) goto fail;
  r->c = c;
  flosse_list_push(&c->reqs, &r->link);
  return r;
fail:
  flosse_http_req_free(r);
  return NULL;
}
#undef SET

const struct flosse_http_result *flosse_http_req_result(const struct flosse_http_req *req) {
  return &req->result;
}

void flosse_http_req_free(struct flosse_http_req *r) {
  if (!r) return;
  detach(r);
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  free(r->head.p);
  free(r->body.p);
  free(r);
}

void flosse_http_client_free(struct flosse_loop *loop) {
  struct flosse_http_client *c = loop->http;
  if (!c) return;
  while (!flosse_list_empty(&c->reqs))
    detach(flosse_container_of(c->reqs.next, struct flosse_http_req, link));
  /* Closes the cached connections (telling on_socket so, mostly). */
  curl_multi_cleanup(c->multi);
  while (!flosse_list_empty(&c->socks)) sock_free(flosse_container_of(c->socks.next, struct sock, link));
  ev_timer_stop(loop->ev, &c->timer);
  free(c);
  loop->http = NULL;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void flosse_http_global_init(void) { pthread_once(&global_once, global_init); }
