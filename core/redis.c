#include "redis.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <http_parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "defaults.h"
#include "list.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"

#define RETRY_SECONDS 1.0

/* ---- URLs ------------------------------------------------------------------- */

static int url_error(char *err, size_t errlen, const char *url, const char *why) {
  snprintf(err, errlen, "bad Redis URL '%.200s': %s", url, why);
  return FLOSSE_ERR;
}

/* Copies field f of the parsed URL into out (NUL-terminated); FLOSSE_ERR
 * when it does not fit. */
static int copy_field(const char *url, const struct http_parser_url *pu, int f, char *out, size_t size) {
  out[0] = '\0';
  if (!(pu->field_set & (1 << f))) return FLOSSE_OK;
  size_t len = pu->field_data[f].len;
  if (len >= size) return FLOSSE_ERR;
  memcpy(out, url + pu->field_data[f].off, len);
  out[len] = '\0';
  return FLOSSE_OK;
}

/* A database number: digits only, 0 to 1e6 (Redis' own limit is its
 * `databases` setting). */
static int parse_db(const char *s, int *db) {
  if (!*s) return FLOSSE_OK;
  long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9' || v > 1000000) return FLOSSE_ERR;
    v = v * 10 + (*p - '0');
  }
  if (v > 1000000) return FLOSSE_ERR;
  *db = (int)v;
  return FLOSSE_OK;
}

/* The text for logs: the URL with its password replaced by "...". */
static void redact(const char *url, const struct http_parser_url *pu, const char *base, char *out, size_t size) {
  if (!(pu->field_set & (1 << UF_USERINFO))) {
    snprintf(out, size, "%s", url);
    return;
  }
  size_t off = (size_t)(base - url) + pu->field_data[UF_USERINFO].off;
  size_t len = pu->field_data[UF_USERINFO].len;
  const char *colon = memchr(url + off, ':', len);
  size_t keep = colon ? (size_t)(colon - (url + off)) + 1 : 0; /* "user:" */
  snprintf(out, size, "%.*s...%s", (int)(off + keep), url, url + off + len);
}

int flosse_redis_url_parse(const char *url, struct flosse_redis_url *out, char *err, size_t errlen) {
  struct http_parser_url pu;
  char field[512];
  memset(out, 0, sizeof *out);
  size_t n = strlen(url);
  if (n >= sizeof out->text) return url_error(err, errlen, url, "too long");
  if (strncmp(url, "unix://", 7) == 0) {
    /* http-parser wants a host after a schema: the rest ("/path?db=N") is
     * parsed as a path and its query. */
    const char *rest = url + 7;
    http_parser_url_init(&pu);
    if (*rest != '/' || http_parser_parse_url(rest, strlen(rest), 0, &pu) != 0)
      return url_error(err, errlen, url, "expected unix:///path/to/socket[?db=N]");
    if (copy_field(rest, &pu, UF_PATH, out->path, sizeof out->path) != FLOSSE_OK)
      return url_error(err, errlen, url, "the socket path is too long");
    if (copy_field(rest, &pu, UF_QUERY, field, sizeof field) != FLOSSE_OK)
      return url_error(err, errlen, url, "the query is too long");
    if (field[0]) {
      if (strncmp(field, "db=", 3) != 0 || parse_db(field + 3, &out->db) != FLOSSE_OK || !field[3])
        return url_error(err, errlen, url, "the only query is db=N (a database number)");
    }
    snprintf(out->text, sizeof out->text, "%s", url);
    return FLOSSE_OK;
  }
  http_parser_url_init(&pu);
  if (http_parser_parse_url(url, n, 0, &pu) != 0)
    return url_error(err, errlen, url, "expected redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///path");
  if (copy_field(url, &pu, UF_SCHEMA, field, sizeof field) != FLOSSE_OK || strcmp(field, "redis") != 0)
    return url_error(err, errlen, url, "the scheme must be redis:// or unix://");
  if (copy_field(url, &pu, UF_HOST, out->host, sizeof out->host) != FLOSSE_OK || !out->host[0])
    return url_error(err, errlen, url, "no host, or too long a one");
  if (pu.field_set & ((1 << UF_QUERY) | (1 << UF_FRAGMENT)))
    return url_error(err, errlen, url, "a redis:// URL takes no query or fragment (the database is /DB)");
  out->port = (pu.field_set & (1 << UF_PORT)) ? pu.port : 6379;
  if (out->port == 0) return url_error(err, errlen, url, "port 0");
  if (copy_field(url, &pu, UF_PATH, field, sizeof field) != FLOSSE_OK)
    return url_error(err, errlen, url, "the path is too long");
  if (field[0] && (field[0] != '/' || parse_db(field + 1, &out->db) != FLOSSE_OK))
    return url_error(err, errlen, url, "the path must be /DB, a database number");
  if (copy_field(url, &pu, UF_USERINFO, field, sizeof field) != FLOSSE_OK)
    return url_error(err, errlen, url, "the user and password are too long");
  if (field[0]) {
    char *colon = strchr(field, ':');
    const char *pass = field;
    if (colon) {
      size_t ulen = (size_t)(colon - field);
      if (ulen >= sizeof out->user) return url_error(err, errlen, url, "the user is too long");
      memcpy(out->user, field, ulen);
      out->user[ulen] = '\0';
      pass = colon + 1;
    }
    size_t plen = strlen(pass);
    if (plen >= sizeof out->password) return url_error(err, errlen, url, "the password is too long");
    memcpy(out->password, pass, plen + 1);
  }
  redact(url, &pu, url, out->text, sizeof out->text);
  return FLOSSE_OK;
}

int flosse_redis_url_same(const struct flosse_redis_url *a, const struct flosse_redis_url *b) {
  return strcmp(a->host, b->host) == 0 && a->port == b->port && strcmp(a->path, b->path) == 0 &&
         strcmp(a->user, b->user) == 0 && strcmp(a->password, b->password) == 0 && a->db == b->db;
}

/* ---- connections ------------------------------------------------------------ */

/* down: no context, the retry timer runs (or nothing, being freed);
 * connecting: a context, the connect and handshake under way (the
 * connect timer runs); up: answering. */
enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP };

struct flosse_redis_conn {
  struct ev_loop *loop;
  struct flosse_redis_url url;
  double timeout;
  struct flosse_redis_conn_callbacks cb;
  void *data;
  enum conn_state state;
  redisAsyncContext *ac;     /* NULL while down */
  ev_timer connect_timer;    /* bounds the connect and the handshake */
  ev_timer retry_timer;
  struct flosse_list reqs;   /* in flight, in the order sent */
  int inflight;
  int handshake;             /* AUTH/SELECT/PING replies still to come */
  int failing;               /* it could not connect and said so: fail commands at once */
  int logged_lost;           /* the failure line is out; "back" is logged when up again */
  int freeing;
  char why[160];             /* the last failure, for "not connected (...)" */
  char errbuf[200];
};

struct flosse_redis_req {
  struct flosse_list link;
  struct flosse_redis_conn *conn;
  flosse_redis_reply_fn fn;  /* NULL: cancelled, or answered already */
  void *arg;
  ev_timer timer;
  int timed_out;
  double sent;               /* the loop's time when it went (its round trip, for metrics) */
};

static void connect_now(struct flosse_redis_conn *c);

/* Whether a URL was said to be down, over the whole process: the workers'
 * pools and the channels' link each hold connections to one server, and
 * it is one server that went away (one line), and one that is back. */
static pthread_mutex_t announced_lock = PTHREAD_MUTEX_INITIALIZER;
static struct { char text[512]; int down; } announced[32];

/* 1 if the caller is the one to say that url changed (down: went down). */
static int announce(const char *url, int down) {
  int say = 0, free_slot = -1, i;
  pthread_mutex_lock(&announced_lock);
  for (i = 0; i < 32; i++) {
    if (announced[i].text[0] && strcmp(announced[i].text, url) == 0) break;
    if (!announced[i].text[0] && free_slot < 0) free_slot = i;
  }
  if (i == 32 && down && free_slot >= 0) {
    i = free_slot;
    snprintf(announced[i].text, sizeof announced[i].text, "%s", url);
    announced[i].down = 0;
  }
  if (i < 32 && announced[i].down != down) {
    announced[i].down = down;
    say = 1;
  } else if (i == 32) {
    say = 1; /* more servers than slots: say it per connection */
  }
  pthread_mutex_unlock(&announced_lock);
  return say;
}

static void set_why(struct flosse_redis_conn *c, const char *why) {
  snprintf(c->why, sizeof c->why, "%s", why && *why ? why : "unknown error");
}

/* Throws the context away: every command pending on it is answered with
 * (NULL, reason) now; hiredis then runs their callbacks with a NULL reply,
 * which finds them answered. hiredis_frees: it frees the context itself
 * (it failed to connect, or its disconnect callback runs). */
static void drop_context(struct flosse_redis_conn *c, const char *reason, int hiredis_frees) {
  redisAsyncContext *ac = c->ac;
  ev_timer_stop(c->loop, &c->connect_timer);
  if (!ac) return;
  c->ac = NULL;
  c->handshake = 0;
  ac->data = NULL; /* its disconnect callback must not find us */
  struct flosse_list *pos;
  for (pos = c->reqs.next; pos != &c->reqs; pos = pos->next) {
    struct flosse_redis_req *r = flosse_container_of(pos, struct flosse_redis_req, link);
    if (r->fn && !r->timed_out) {
      flosse_redis_reply_fn fn = r->fn;
      r->fn = NULL;
      ev_timer_stop(c->loop, &r->timer);
      fn(r->arg, NULL, reason);
    }
  }
  if (!hiredis_frees) redisAsyncFree(ac);
}

/* It could not connect, or was lost: tell (once, until it is back), and
 * retry: at once when it was up (or we closed it after a timeout), else in
 * RETRY_SECONDS. reason: what pending commands get (NULL: "connection
 * lost" when it was up, "not connected (why)" else). */
static void went_down(struct flosse_redis_conn *c, const char *why, const char *reason, int hiredis_frees) {
  int was_up = c->state == CONN_UP;
  set_why(c, why);
  c->state = CONN_DOWN;
  flosse_metrics_redis_state(flosse_metrics_redis_link(c->url.text), 0);
  char lost[240];
  snprintf(lost, sizeof lost, was_up ? "connection lost" : "not connected (%s)", c->why);
  drop_context(c, reason ? reason : lost, hiredis_frees);
  if (c->freeing) return;
  int now = was_up;
  if (!now) c->failing = 1;
  if (!c->logged_lost) {
    if (announce(c->url.text, 1)) {
      if (was_up)
        flosse_log(FLOSSE_LOG_WARN, "redis %s: connection lost (%s); reconnecting", c->url.text, c->why);
      else
        flosse_log(FLOSSE_LOG_WARN, "redis %s: cannot connect (%s); retrying every %g s", c->url.text,
                   c->why, RETRY_SECONDS);
    }
    c->logged_lost = 1;
  }
  ev_timer_stop(c->loop, &c->retry_timer);
  ev_timer_set(&c->retry_timer, now ? 0. : RETRY_SECONDS, 0.);
  ev_timer_start(c->loop, &c->retry_timer);
  if (was_up && c->cb.down) c->cb.down(c, c->data, c->why);
}

static void became_up(struct flosse_redis_conn *c) {
  ev_timer_stop(c->loop, &c->connect_timer);
  c->state = CONN_UP;
  flosse_metrics_redis_state(flosse_metrics_redis_link(c->url.text), 1);
  c->failing = 0;
  if (c->logged_lost) {
    if (announce(c->url.text, 0)) flosse_log(FLOSSE_LOG_INFO, "redis %s: connected again", c->url.text);
    c->logged_lost = 0;
  }
  if (c->cb.up) c->cb.up(c, c->data);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  connect_now(flosse_container_of(w, struct flosse_redis_conn, retry_timer));
}

static void on_connect_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_redis_conn *c = flosse_container_of(w, struct flosse_redis_conn, connect_timer);
  went_down(c, "connect timed out", NULL, 0);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  struct flosse_redis_conn *c = ac->data;
  if (!c || c->ac != ac) return;
  if (status != REDIS_OK) {
    went_down(c, ac->errstr, NULL, 1); /* hiredis frees the context once this returns */
    return;
  }
  if (c->handshake == 0) became_up(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  struct flosse_redis_conn *c = ac->data;
  if (!c || c->ac != ac) return;
  /* hiredis frees the context once this returns; the commands pending on
   * it have had their NULL replies already. */
  went_down(c, status == REDIS_OK ? "closed by the server" : ac->errstr, NULL, 1);
}

/* AUTH, SELECT or PING's answers: an error (a wrong password, a database
 * out of range) is a failure to connect, retried like any other. */
static void on_handshake(redisAsyncContext *ac, void *r, void *privdata) {
  struct flosse_redis_conn *c = privdata;
  redisReply *reply = r;
  if (!ac->data || c->ac != ac) return;
  if (!reply || reply->type == REDIS_REPLY_ERROR) {
    char why[200];
    snprintf(why, sizeof why, "%s", reply ? reply->str : (ac->errstr[0] ? ac->errstr : "handshake failed"));
    /* Inside hiredis' callback: redisAsyncFree is deferred until it returns. */
    went_down(c, why, NULL, 0);
    return;
  }
  if (--c->handshake == 0 && (c->ac->c.flags & REDIS_CONNECTED)) became_up(c);
}

static void connect_now(struct flosse_redis_conn *c) {
  redisAsyncContext *ac = c->url.path[0] ? redisAsyncConnectUnix(c->url.path)
                                         : redisAsyncConnect(c->url.host, c->url.port);
  if (!ac) {
    went_down(c, "out of memory", NULL, 0);
    return;
  }
  if (ac->err) {
    char why[160];
    snprintf(why, sizeof why, "%s", ac->errstr);
    redisAsyncFree(ac);
    went_down(c, why, NULL, 0);
    return;
  }
  c->ac = ac;
  ac->data = c;
  c->state = CONN_CONNECTING;
  redisLibevAttach(c->loop, ac);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  /* Queued before any command, so they go first on the wire. */
  c->handshake = 0;
  if (c->url.password[0]) {
    if (c->url.user[0])
      redisAsyncCommand(ac, on_handshake, c, "AUTH %s %s", c->url.user, c->url.password);
    else
      redisAsyncCommand(ac, on_handshake, c, "AUTH %s", c->url.password);
    c->handshake++;
  }
  if (c->url.db) {
    redisAsyncCommand(ac, on_handshake, c, "SELECT %d", c->url.db);
    c->handshake++;
  }
  /* It is up once Redis answered, not once the socket connected: a socket
   * can connect and be reset at once (a server going away). */
  if (!c->handshake) {
    redisAsyncCommand(ac, on_handshake, c, "PING");
    c->handshake++;
  }
  ev_timer_set(&c->connect_timer, c->timeout > 0 ? c->timeout : FLOSSE_DEFAULT_REDIS_TIMEOUT, 0.);
  ev_timer_start(c->loop, &c->connect_timer);
}

struct flosse_redis_conn *flosse_redis_conn_new(struct ev_loop *loop, const struct flosse_redis_url *u,
                                                double timeout,
                                                const struct flosse_redis_conn_callbacks *cb, void *data) {
  struct flosse_redis_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->loop = loop;
  c->url = *u;
  c->timeout = timeout;
  if (cb) c->cb = *cb;
  c->data = data;
  c->state = CONN_DOWN;
  flosse_list_init(&c->reqs);
  ev_timer_init(&c->connect_timer, on_connect_timeout, 0., 0.);
  ev_timer_init(&c->retry_timer, on_retry, 0., 0.);
  set_why(c, "connecting");
  connect_now(c);
  return c;
}

void flosse_redis_conn_free(struct flosse_redis_conn *c) {
  if (!c) return;
  c->freeing = 1;
  ev_timer_stop(c->loop, &c->retry_timer);
  drop_context(c, "closed", 0);
  /* What hiredis still holds was answered above and is freed with it;
   * what is left here is nobody's now. */
  while (!flosse_list_empty(&c->reqs)) {
    struct flosse_redis_req *r = flosse_container_of(c->reqs.next, struct flosse_redis_req, link);
    flosse_list_unlink(&r->link);
    ev_timer_stop(c->loop, &r->timer);
    free(r);
  }
  free(c);
}

int flosse_redis_conn_is_up(const struct flosse_redis_conn *c) { return c->state == CONN_UP; }

int flosse_redis_conn_inflight(const struct flosse_redis_conn *c) { return c->inflight; }

struct redisAsyncContext *flosse_redis_conn_ctx(struct flosse_redis_conn *c) {
  return c->state == CONN_UP ? c->ac : NULL;
}

/* hiredis' callback for a command: answers it (unless cancelled or timed
 * out) and frees it. */
static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
  (void)ac;
  struct flosse_redis_req *req = privdata;
  struct flosse_redis_conn *c = req->conn;
  flosse_list_unlink(&req->link);
  c->inflight--;
  ev_timer_stop(c->loop, &req->timer);
  flosse_redis_reply_fn fn = req->fn;
  req->fn = NULL;
  if (r) flosse_metrics_redis(ev_now(c->loop) - req->sent);
  if (fn) fn(req->arg, r, r ? NULL : "connection lost");
  free(req);
}

/* No answer in time: the connection is in an unknown state (a reply may
 * still come, out of step with the callbacks), so it is closed and
 * reopened at once. */
static void on_req_timeout(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  struct flosse_redis_req *req = flosse_container_of(w, struct flosse_redis_req, timer);
  struct flosse_redis_conn *c = req->conn;
  flosse_redis_reply_fn fn = req->fn;
  req->fn = NULL;
  req->timed_out = 1;
  if (fn) fn(req->arg, NULL, "timeout");
  if (c->ac && !c->freeing) went_down(c, "a command timed out", "connection lost", 0);
}

/* Why a command cannot go now, or NULL when it can. */
static const char *refuse(struct flosse_redis_conn *c) {
  if (c->freeing) return "closed";
  if (c->state == CONN_UP || (c->state == CONN_CONNECTING && !c->failing)) return NULL;
  snprintf(c->errbuf, sizeof c->errbuf, "not connected (%s)", c->why);
  return c->errbuf;
}

static struct flosse_redis_req *send_one(struct flosse_redis_conn *c, int argc, const char **argv,
                                         const size_t *lens, double timeout, flosse_redis_reply_fn fn,
                                         void *arg) {
  struct flosse_redis_req *req = calloc(1, sizeof *req);
  if (!req) return NULL;
  req->conn = c;
  req->fn = fn;
  req->arg = arg;
  req->sent = ev_now(c->loop);
  if (redisAsyncCommandArgv(c->ac, on_reply, req, argc, argv, lens) != REDIS_OK) {
    free(req);
    return NULL;
  }
  flosse_list_push(&c->reqs, &req->link);
  c->inflight++;
  ev_timer_init(&req->timer, on_req_timeout, timeout, 0.);
  if (timeout > 0) ev_timer_start(c->loop, &req->timer);
  return req;
}

struct flosse_redis_req *flosse_redis_command(struct flosse_redis_conn *c, int argc, const char **argv,
                                              const size_t *lens, double timeout,
                                              flosse_redis_reply_fn fn, void *arg, const char **err) {
  const char *why = refuse(c);
  if (why) {
    *err = why;
    return NULL;
  }
  struct flosse_redis_req *req = send_one(c, argc, argv, lens, timeout, fn, arg);
  if (!req) *err = "out of memory";
  return req;
}

int flosse_redis_pipeline(struct flosse_redis_conn *c, int n, const int *argcs, const char *const *const *argvs,
                          const size_t *const *lenss, double timeout, flosse_redis_reply_fn fn, void *arg,
                          struct flosse_redis_req **reqs, const char **err) {
  const char *why = refuse(c);
  if (why) {
    *err = why;
    return FLOSSE_ERR;
  }
  /* hiredis appends each to its output buffer and writes them together
   * once the loop sees the socket writable. */
  for (int i = 0; i < n; i++) {
    reqs[i] = send_one(c, argcs[i], (const char **)argvs[i], lenss[i], timeout, fn, arg);
    if (!reqs[i]) {
      while (i > 0) flosse_redis_req_cancel(reqs[--i]);
      *err = "out of memory";
      return FLOSSE_ERR;
    }
  }
  return FLOSSE_OK;
}

void flosse_redis_req_cancel(struct flosse_redis_req *req) {
  if (!req) return;
  req->fn = NULL;
  ev_timer_stop(req->conn->loop, &req->timer);
}

/* ---- pools ------------------------------------------------------------------ */

#define POOL_MAX 64

struct flosse_redis_pool {
  struct flosse_redis_pool *next;
  struct flosse_loop *loop;
  struct flosse_redis_url url;
  double timeout;
  int size, n;
  struct flosse_redis_conn *conns[POOL_MAX];
};

struct flosse_redis_pools {
  struct flosse_redis_pool *head;
};

struct flosse_redis_pool *flosse_redis_pool_of(struct flosse_loop *loop, const struct flosse_redis_url *u) {
  if (!loop->redis) {
    loop->redis = calloc(1, sizeof *loop->redis);
    if (!loop->redis) return NULL;
  }
  for (struct flosse_redis_pool *p = loop->redis->head; p; p = p->next)
    if (flosse_redis_url_same(&p->url, u)) return p;
  struct flosse_redis_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  const struct flosse_redis_settings *s = flosse_redis_settings();
  p->loop = loop;
  p->url = *u;
  p->timeout = s->timeout;
  p->size = s->pool < 1 ? 1 : s->pool > POOL_MAX ? POOL_MAX : s->pool;
  p->next = loop->redis->head;
  loop->redis->head = p;
  return p;
}

const struct flosse_redis_url *flosse_redis_pool_url(const struct flosse_redis_pool *p) { return &p->url; }

/* The connection for the next command: the up one with the fewest in
 * flight (opening another when that one is busy and there is room), else
 * one still making its first connect, else a new one; NULL (with *err)
 * when every connection is down and retrying. */
static struct flosse_redis_conn *pick(struct flosse_redis_pool *p, const char **err) {
  struct flosse_redis_conn *best = NULL, *connecting = NULL;
  for (int i = 0; i < p->n; i++) {
    struct flosse_redis_conn *c = p->conns[i];
    if (c->state == CONN_UP) {
      if (!best || c->inflight < best->inflight) best = c;
    } else if (c->state == CONN_CONNECTING && !c->failing && !connecting) {
      connecting = c;
    }
  }
  int grow = p->n < p->size && (p->n == 0 || (best && best->inflight > 0 && !connecting));
  if (grow) {
    struct flosse_redis_conn *c = flosse_redis_conn_new(p->loop->ev, &p->url, p->timeout, NULL, NULL);
    if (c) {
      p->conns[p->n++] = c;
      if (!best && !connecting) connecting = c;
    }
  }
  if (best) return best;
  if (connecting) return connecting;
  if (p->n == 0) {
    *err = "out of memory";
    return NULL;
  }
  *err = refuse(p->conns[0]);
  if (!*err) return p->conns[0];
  return NULL;
}

struct flosse_redis_req *flosse_redis_pool_command(struct flosse_redis_pool *p, int argc, const char **argv,
                                                   const size_t *lens, double timeout,
                                                   flosse_redis_reply_fn fn, void *arg, const char **err) {
  struct flosse_redis_conn *c = pick(p, err);
  return c ? flosse_redis_command(c, argc, argv, lens, timeout, fn, arg, err) : NULL;
}

int flosse_redis_pool_pipeline(struct flosse_redis_pool *p, int n, const int *argcs,
                               const char *const *const *argvs, const size_t *const *lenss, double timeout,
                               flosse_redis_reply_fn fn, void *arg, struct flosse_redis_req **reqs,
                               const char **err) {
  struct flosse_redis_conn *c = pick(p, err);
  return c ? flosse_redis_pipeline(c, n, argcs, argvs, lenss, timeout, fn, arg, reqs, err) : FLOSSE_ERR;
}

void flosse_redis_pools_free(struct flosse_loop *loop) {
  if (!loop->redis) return;
  struct flosse_redis_pool *p = loop->redis->head;
  while (p) {
    struct flosse_redis_pool *next = p->next;
    for (int i = 0; i < p->n; i++) flosse_redis_conn_free(p->conns[i]);
    free(p);
    p = next;
  }
  free(loop->redis);
  loop->redis = NULL;
}

/* ---- settings --------------------------------------------------------------- */

static struct flosse_redis_settings settings;
static int settings_set;

void flosse_redis_settings_defaults(struct flosse_redis_settings *s) {
  memset(s, 0, sizeof *s);
  snprintf(s->prefix, sizeof s->prefix, "%s", FLOSSE_DEFAULT_REDIS_PREFIX);
  s->timeout = FLOSSE_DEFAULT_REDIS_TIMEOUT;
  s->pool = FLOSSE_DEFAULT_REDIS_POOL;
}

const struct flosse_redis_settings *flosse_redis_settings(void) {
  if (!settings_set) {
    flosse_redis_settings_defaults(&settings);
    settings_set = 1;
  }
  return &settings;
}

void flosse_redis_configure(const struct flosse_redis_settings *s) {
  settings = *s;
  settings_set = 1;
}

void flosse_redis_set_name(struct flosse_redis_conn *c, const char *name) {
  const char *argv[3] = {"CLIENT", "SETNAME", name};
  size_t lens[3] = {6, 7, strlen(name)};
  const char *why;
  flosse_redis_command(c, 3, argv, lens, flosse_redis_settings()->timeout, NULL, NULL, &why);
}
