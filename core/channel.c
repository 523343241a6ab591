#include "channel.h"

#include "json.h"
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Channels live as long as the process and are shared by every worker
 * thread: one lock guards the registry, the histories and the
 * subscriptions' queues. Critical sections are short (no I/O, no Lua). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
#define LOCK() pthread_mutex_lock(&lock)
#define UNLOCK() pthread_mutex_unlock(&lock)
static struct flosse_chan **table;
static size_t table_cap, table_len;
static uint64_t next_seq = 1;
static struct flosse_channel_config config = {
    FLOSSE_DEFAULT_CHANNEL_HISTORY, FLOSSE_DEFAULT_CHANNEL_HISTORY_SECONDS,
    FLOSSE_DEFAULT_CHANNEL_BACKLOG, FLOSSE_DEFAULT_MAX_CHANNELS};
/* Channels with history, oldest last publish first: the sweep frees from
 * the front what has expired. */
static struct flosse_list by_age = {&by_age, &by_age};
/* With a back end, channels span nodes (channel_redis.c). */
static const struct flosse_channel_backend *backend;
/* The newest seq that fell out of a channel since freed: a channel made
 * again may have held it, so resuming from before it is told as a gap. */
static uint64_t lost_upto;

void flosse_channel_configure(const struct flosse_channel_config *cfg) {
  LOCK();
  config = *cfg;
  if (config.history == 0) config.history = 1;
  if (config.backlog == 0) config.backlog = 1;
  if (config.max_channels == 0) config.max_channels = 1;
  UNLOCK();
}

const struct flosse_channel_config *flosse_channel_config(void) { return &config; }

void flosse_channel_set_backend(const struct flosse_channel_backend *b) {
  LOCK();
  backend = b;
  UNLOCK();
}

int flosse_channel_has_backend(void) { return backend != NULL; }

int flosse_channel_name_ok(const char *name, size_t len) {
  return len > 0 && len <= FLOSSE_CHANNEL_NAME_MAX && flosse_sse_field_ok(name, len);
}

size_t flosse_channel_count(void) {
  LOCK();
  size_t n = table_len;
  UNLOCK();
  return n;
}

static size_t hash(const char *s, size_t len) {
  size_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

static struct flosse_chan *find_locked(const char *name, size_t len) {
  if (!table_cap) return NULL;
  for (struct flosse_chan *c = table[hash(name, len) & (table_cap - 1)]; c; c = c->next)
    if (c->name_len == len && memcmp(c->name, name, len) == 0) return c;
  return NULL;
}

int flosse_channel_exists(const char *name, size_t len) {
  LOCK();
  int found = find_locked(name, len) != NULL;
  UNLOCK();
  return found;
}

static int grow_table(void) {
  size_t ncap = table_cap ? table_cap * 2 : 64;
  struct flosse_chan **nt = calloc(ncap, sizeof *nt);
  if (!nt) return FLOSSE_ERR;
  for (size_t i = 0; i < table_cap; i++) {
    for (struct flosse_chan *c = table[i], *next; c; c = next) {
      next = c->next;
      size_t b = hash(c->name, c->name_len) & (ncap - 1);
      c->next = nt[b];
      nt[b] = c;
    }
  }
  free(table);
  table = nt;
  table_cap = ncap;
  return FLOSSE_OK;
}

/* Makes a channel the caller checked is missing and may be made. */
static struct flosse_chan *make_locked(const char *name, size_t len) {
  if (table_len + 1 > table_cap / 2 && grow_table() != FLOSSE_OK) return NULL;
  struct flosse_chan *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->name = malloc(len + 1);
  if (!c->name) {
    free(c);
    return NULL;
  }
  memcpy(c->name, name, len);
  c->name[len] = '\0';
  c->name_len = len;
  flosse_list_init(&c->subs);
  flosse_list_init(&c->age);
  c->dropped = backend ? 0 : lost_upto;
  c->synced = backend == NULL;
  size_t b = hash(name, len) & (table_cap - 1);
  c->next = table[b];
  table[b] = c;
  table_len++;
  if (backend) backend->watch(c->name, len, 1);
  return c;
}

static void hist_drop_oldest(struct flosse_chan *ch);

/* Unlinks and frees a channel nobody is subscribed to, with what is left
 * of its history. */
static void free_locked(struct flosse_chan *ch) {
  struct flosse_chan **pp = &table[hash(ch->name, ch->name_len) & (table_cap - 1)];
  while (*pp != ch) pp = &(*pp)->next;
  *pp = ch->next;
  table_len--;
  while (ch->hist_len) hist_drop_oldest(ch);
  if (ch->dropped > lost_upto) lost_upto = ch->dropped;
  if (backend) backend->watch(ch->name, ch->name_len, 0);
  flosse_list_unlink(&ch->age);
  free(ch->hist);
  free(ch->name);
  free(ch);
}

/* A channel with no history and no subscriber is not kept; with a back
 * end, one without subscribers is not (the back end keeps the history). */
static void release_if_unused(struct flosse_chan *ch) {
  if ((ch->hist_len == 0 || backend) && flosse_list_empty(&ch->subs)) free_locked(ch);
}

void flosse_msg_ref(struct flosse_msg *m) { __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED); }

void flosse_msg_unref(struct flosse_msg *m) {
  if (m && __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    flosse_seg_release(m->seg);
    free(m);
  }
}

static struct flosse_msg *hist_at(struct flosse_chan *ch, size_t i) {
  return ch->hist[(ch->hist_head + i) % ch->hist_cap];
}

static void hist_drop_oldest(struct flosse_chan *ch) {
  struct flosse_msg *m = ch->hist[ch->hist_head];
  if (m->seq > ch->dropped) ch->dropped = m->seq;
  flosse_msg_unref(m);
  ch->hist_head = (ch->hist_head + 1) % ch->hist_cap;
  ch->hist_len--;
  if (!ch->hist_len) flosse_list_unlink(&ch->age);
}

/* Drops what is over the size or past the age limit. */
static void hist_trim(struct flosse_chan *ch, double now) {
  while (ch->hist_len > config.history) hist_drop_oldest(ch);
  if (config.history_seconds > 0)
    while (ch->hist_len && now - hist_at(ch, 0)->time > config.history_seconds) hist_drop_oldest(ch);
}

static int hist_push(struct flosse_chan *ch, struct flosse_msg *m, double now) {
  if (ch->hist_len == ch->hist_cap) {
    size_t ncap = ch->hist_cap ? ch->hist_cap * 2 : 8;
    if (ncap > config.history + 1) ncap = config.history + 1;
    if (ncap <= ch->hist_cap) {
      hist_drop_oldest(ch);
    } else {
      struct flosse_msg **nh = malloc(ncap * sizeof *nh);
      if (!nh) return FLOSSE_ERR;
      for (size_t i = 0; i < ch->hist_len; i++) nh[i] = hist_at(ch, i);
      free(ch->hist);
      ch->hist = nh;
      ch->hist_cap = ncap;
      ch->hist_head = 0;
    }
  }
  ch->hist[(ch->hist_head + ch->hist_len) % ch->hist_cap] = m;
  ch->hist_len++;
  flosse_msg_ref(m);
  ch->last_publish = now;
  flosse_list_unlink(&ch->age);
  flosse_list_push(&by_age, &ch->age);
  hist_trim(ch, now);
  return FLOSSE_OK;
}

/* Queues m on s; returns 0 when the backlog is full. A message the client
 * has already (resumed on a node that had not taken it yet) is skipped. */
static int sub_push(struct flosse_sub *s, struct flosse_msg *m) {
  if (m->seq && m->seq <= s->after) return 1;
  if (s->qlen == s->qcap) {
    if (s->qcap >= s->backlog) return 0;
    size_t ncap = s->qcap ? s->qcap * 2 : 8;
    if (ncap > s->backlog) ncap = s->backlog;
    struct flosse_msg **nq = malloc(ncap * sizeof *nq);
    if (!nq) return 0;
    for (size_t i = 0; i < s->qlen; i++) nq[i] = s->q[(s->qhead + i) % s->qcap];
    free(s->q);
    s->q = nq;
    s->qcap = ncap;
    s->qhead = 0;
  }
  s->q[(s->qhead + s->qlen) % s->qcap] = m;
  s->qlen++;
  flosse_msg_ref(m);
  return 1;
}

/* A message of ev for channel ch: seq orders it (0: a notice outside the
 * sequence, never kept in a history), time is when it was published. */
static struct flosse_msg *new_msg(struct flosse_chan *ch, const struct flosse_sse_event *ev, uint64_t seq,
                                  double time, char *err, size_t errlen) {
  if (flosse_sse_check(ev, err, errlen) != FLOSSE_OK) return NULL;
  size_t name_len = ch->name_len, ev_len = ev->event ? ev->event_len : 0;
  size_t id_len = ev->id ? ev->id_len : 0, data_len = ev->data ? ev->data_len : 0;
  struct flosse_msg *m = malloc(sizeof *m + name_len + id_len + ev_len + data_len + 4);
  uint32_t frame_off = 0, frame_len = 0;
  struct flosse_seg *seg = m ? flosse_sse_chunk(ev, &frame_off, &frame_len) : NULL;
  if (!seg) {
    free(m);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }

  m->refs = 1;
  m->seq = seq;
  m->time = time;
  m->seg = seg;
  m->frame_off = frame_off;
  m->frame_len = frame_len;
  char *p = m->strings;
#define COPY(dst, src, len) do { memcpy(p, (src), (len)); p[len] = '\0'; dst = p; p += (len) + 1; } while (0)
  COPY(m->channel, ch->name, name_len);
  if (ev->id) COPY(m->id, ev->id, id_len); else m->id = NULL;
  if (ev->event) COPY(m->event, ev->event, ev_len); else m->event = NULL;
  COPY(m->data, ev->data ? ev->data : "", data_len);
#undef COPY
  m->data_len = data_len;
  return m;
}

/* A message published here: an event without an id gets its seq. */
static struct flosse_msg *make_msg(struct flosse_chan *ch, struct flosse_sse_event *ev, double now,
                                   char *err, size_t errlen) {
  char idbuf[24];
  if (!ev->id) {
    ev->id_len = (size_t)snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)next_seq);
    ev->id = idbuf;
  }
  struct flosse_msg *m = new_msg(ch, ev, next_seq, now, err, errlen);
  if (m) next_seq++;
  return m;
}

/* The flosse-gap notice for a client of ch that last saw last_id (NULL:
 * none yet, null in the JSON). */
static struct flosse_msg *gap_msg(struct flosse_chan *ch, const char *last_id) {
  size_t id_len = last_id ? strlen(last_id) : 0;
  char *data = malloc(FLOSSE_JSON_STRING_MAX(ch->name_len) + FLOSSE_JSON_STRING_MAX(id_len) + 40);
  if (!data) return NULL;
  size_t n = 0;
  n += (size_t)sprintf(data + n, "{\"channel\":");
  n += flosse_json_string(data + n, ch->name, ch->name_len);
  n += (size_t)sprintf(data + n, ",\"last_event_id\":");
  if (last_id) {
    n += flosse_json_string(data + n, last_id, id_len);
  } else {
    memcpy(data + n, "null", 4);
    n += 4;
  }
  data[n++] = '}';
  struct flosse_sse_event ev = {FLOSSE_GAP_EVENT, sizeof FLOSSE_GAP_EVENT - 1, data, n, NULL, 0, -1};
  char err[64];
  struct flosse_msg *m = new_msg(ch, &ev, 0, 0, err, sizeof err);
  free(data);
  return m;
}

/* Queues m to ch's subscribers and wakes those waiting; returns how many
 * took it. Subscriptions still waiting for a resume point skip it: they
 * take it from the history when they resume. first_read: m comes with a
 * back end's first read of ch: only the subscriptions made before it was
 * published take it (as live: their stream's head may have gone out after
 * the timeout, Redis being away), and synced_locked wakes them. */
static size_t fan_out_locked(struct flosse_chan *ch, struct flosse_msg *m, int first_read) {
  size_t n = 0;
  for (struct flosse_list *it = ch->subs.next; it != &ch->subs; it = it->next) {
    struct flosse_subref *r = flosse_container_of(it, struct flosse_subref, link);
    struct flosse_sub *s = r->sub;
    if (!s->owner || s->resume || (first_read && m->time < s->since)) continue;
    if (!sub_push(s, m)) {
      /* Too far behind: its client reconnects with Last-Event-ID and
       * replays from history; the others are not held back. */
      s->owner->notify(s->owner, 1);
      FLOSSE_METRIC_GLOBAL_ADD(slow_dropped, 1);
      continue;
    }
    n++;
    if (s->waiting && !first_read) {
      s->waiting = 0;
      s->owner->notify(s->owner, 0);
    }
  }
  FLOSSE_METRIC_GLOBAL_ADD(deliveries, n);
  return n;
}

struct flosse_msg *flosse_channel_publish(const char *name, size_t len,
                                          struct flosse_sse_event *ev, double now,
                                          size_t *delivered,
                                          enum flosse_chan_rc *rc, char *err, size_t errlen) {
  *delivered = 0;
  if (!flosse_channel_name_ok(name, len)) {
    *rc = FLOSSE_CHAN_BAD_NAME;
    snprintf(err, errlen, "a channel name is 1 to %d bytes without CR, LF or NUL", FLOSSE_CHANNEL_NAME_MAX);
    return NULL;
  }
  LOCK();
  struct flosse_chan *ch = find_locked(name, len);
  int made = 0;
  if (!ch) {
    if (table_len >= config.max_channels) {
      UNLOCK();
      *rc = FLOSSE_CHAN_FULL;
      snprintf(err, errlen, "too many channels (max_channels is %zu)", config.max_channels);
      return NULL;
    }
    ch = make_locked(name, len);
    made = 1;
    if (!ch) {
      UNLOCK();
      *rc = FLOSSE_CHAN_NOMEM;
      snprintf(err, errlen, "out of memory");
      return NULL;
    }
  }
  struct flosse_msg *m = make_msg(ch, ev, now, err, errlen);
  if (!m || hist_push(ch, m, now) != FLOSSE_OK) {
    *rc = m ? FLOSSE_CHAN_NOMEM : FLOSSE_CHAN_BAD_EVENT;
    if (m) {
      flosse_msg_unref(m);
      snprintf(err, errlen, "out of memory");
    }
    if (made) release_if_unused(ch);
    UNLOCK();
    return NULL;
  }
  ch->last = m->seq;
  size_t n = fan_out_locked(ch, m, 0);
  *delivered = n;
  FLOSSE_METRIC_GLOBAL_ADD(publishes, 1);
  *rc = FLOSSE_CHAN_OK;
  /* The history and the queues hold it now; the caller gets a reference
   * of its own, since another worker may push it out of the history. */
  UNLOCK();
  return m;
}

void flosse_channel_sweep(double now) {
  LOCK();
  while (config.history_seconds > 0 && !flosse_list_empty(&by_age)) {
    struct flosse_chan *ch = flosse_container_of(by_age.next, struct flosse_chan, age);
    if (now - ch->last_publish <= config.history_seconds) break;
    /* Its newest event has expired, so all of them have. */
    while (ch->hist_len) hist_drop_oldest(ch); /* unlinks it from by_age */
    release_if_unused(ch);
  }
  UNLOCK();
}

size_t flosse_sub_size(int nchans) {
  return sizeof(struct flosse_sub) + (size_t)nchans * sizeof(struct flosse_subref);
}

static int cmp_seq(const void *a, const void *b) {
  uint64_t x = (*(struct flosse_msg *const *)a)->seq, y = (*(struct flosse_msg *const *)b)->seq;
  return x < y ? -1 : x > y;
}

/* Where a client that last saw id x is in this server's sequence: sets
 * *after and returns 1, or returns 0 when x cannot be placed (an id no
 * history holds that is not one of our numbers, or a number from another
 * run: live only, after a gap notice). With a back end every id is the
 * back end's number. */
static int place_locked(struct flosse_sub *s, const char *x, uint64_t *after) {
  size_t len = strlen(x);
  int numeric = len > 0 && len < 20 && strspn(x, "0123456789") == len;
  if (backend) {
    *after = numeric ? strtoull(x, NULL, 10) : 0;
    return numeric;
  }
  int found = 0;
  for (int i = 0; i < s->nrefs; i++) {
    struct flosse_chan *ch = s->refs[i].chan;
    for (size_t k = 0; k < ch->hist_len; k++) {
      struct flosse_msg *m = hist_at(ch, k);
      if (m->id && strcmp(m->id, x) == 0 && (!found || m->seq > *after)) {
        *after = m->seq;
        found = 1;
      }
    }
  }
  if (found) return 1;
  if (!numeric) return 0;
  *after = strtoull(x, NULL, 10);
  return *after < next_seq;
}

/* 1 if a client of ch at after (placed or not) may have missed messages
 * that ch no longer holds. */
static int gap_locked(const struct flosse_chan *ch, uint64_t after, int placed) {
  if (!placed) return 1;
  /* A back end's epoch starts above every id of the one before. */
  if (backend && after && (ch->base == 0 || after < ch->base)) return 1;
  return ch->dropped > after;
}

/* Queues what a client that last saw x has not seen: a flosse-gap notice
 * for each channel where some of it is gone, then every message after it
 * still held, in seq order. */
static void resume_locked(struct flosse_sub *s, const char *x) {
  uint64_t after = 0;
  int placed = place_locked(s, x, &after);
  size_t total = 0, nm = 0;
  for (int i = 0; i < s->nrefs; i++) total += s->refs[i].chan->hist_len + 1;
  struct flosse_msg **missed = malloc(total * sizeof *missed);
  if (!missed) return; /* out of memory: live only */
  for (int i = 0; i < s->nrefs; i++)
    if (gap_locked(s->refs[i].chan, after, placed)) {
      struct flosse_msg *g = gap_msg(s->refs[i].chan, x);
      if (g) missed[nm++] = g;
    }
  size_t ngaps = nm;
  for (int i = 0; placed && i < s->nrefs; i++) {
    struct flosse_chan *ch = s->refs[i].chan;
    for (size_t k = 0; k < ch->hist_len; k++)
      if (hist_at(ch, k)->seq > after) {
        missed[nm] = hist_at(ch, k);
        flosse_msg_ref(missed[nm++]);
      }
  }
  qsort(missed + ngaps, nm - ngaps, sizeof *missed, cmp_seq);
  /* Replay is not held to the live backlog: it is bounded by history. */
  if (s->backlog < nm) s->backlog = nm;
  for (size_t k = 0; k < nm; k++) {
    sub_push(s, missed[k]);
    flosse_msg_unref(missed[k]);
  }
  free(missed);
  if (placed) s->after = after;
}

enum flosse_chan_rc flosse_sub_init(struct flosse_sub *s, struct flosse_sub_owner *owner,
                                    const char *const *names, const size_t *lens, int nchans,
                                    const char *last_event_id, double now) {
  memset(s, 0, flosse_sub_size(nchans));
  flosse_list_init(&s->owner_link);
  for (int i = 0; i < nchans; i++)
    if (!flosse_channel_name_ok(names[i], lens[i])) return FLOSSE_CHAN_BAD_NAME;
  LOCK();
  /* A name given twice is one subscription to it (its events come once).
   * All or nothing: count the channels to make before making any. */
  struct flosse_chan *chans[64];
  int uniq[64], nuniq = 0;
  size_t missing = 0;
  if (nchans > 64) nchans = 64;
  for (int i = 0; i < nchans; i++) {
    int dup = 0;
    for (int k = 0; k < nuniq && !dup; k++)
      dup = lens[uniq[k]] == lens[i] && memcmp(names[uniq[k]], names[i], lens[i]) == 0;
    if (dup) continue;
    uniq[nuniq++] = i;
    if (!find_locked(names[i], lens[i])) missing++;
  }
  if (missing && table_len + missing > config.max_channels) {
    UNLOCK();
    return FLOSSE_CHAN_FULL;
  }
  for (int i = 0; i < nuniq; i++) {
    const char *name = names[uniq[i]];
    size_t len = lens[uniq[i]];
    chans[i] = find_locked(name, len);
    if (!chans[i]) chans[i] = make_locked(name, len);
    if (!chans[i]) {
      for (int k = 0; k < i; k++) release_if_unused(chans[k]);
      UNLOCK();
      return FLOSSE_CHAN_NOMEM;
    }
  }
  nchans = nuniq;
  s->owner = owner;
  s->since = now;
  s->backlog = config.backlog;
  s->nrefs = nchans;
  for (int i = 0; i < nchans; i++) {
    hist_trim(chans[i], now);
    s->refs[i].chan = chans[i];
    s->refs[i].sub = s;
    flosse_list_push(&chans[i]->subs, &s->refs[i].link);
    chans[i]->nsubs++;
    if (!chans[i]->synced) s->unsynced++;
  }
  if (last_event_id && s->unsynced) {
    /* Resumed when the last of them is synced (flosse_channel_sync). */
    s->resume = strdup(last_event_id);
    if (!s->resume) s->unsynced = 0; /* out of memory: live only */
  } else if (last_event_id) {
    resume_locked(s, last_event_id);
  }
  UNLOCK();
  return FLOSSE_CHAN_OK;
}

static struct flosse_msg *pop_locked(struct flosse_sub *s) {
  if (!s->qlen) return NULL;
  struct flosse_msg *m = s->q[s->qhead];
  s->qhead = (s->qhead + 1) % s->qcap;
  s->qlen--;
  return m;
}

struct flosse_msg *flosse_sub_pop(struct flosse_sub *s) {
  LOCK();
  struct flosse_msg *m = pop_locked(s);
  UNLOCK();
  return m;
}

size_t flosse_sub_take(struct flosse_sub *s, struct flosse_msg **out, size_t max) {
  size_t n = 0;
  LOCK();
  while (n < max && s->qlen) out[n++] = pop_locked(s);
  if (!s->qlen && s->owner) s->waiting = 1;
  UNLOCK();
  return n;
}

int flosse_sub_wait(struct flosse_sub *s) {
  LOCK();
  int must_wait = s->owner && s->qlen == 0;
  if (must_wait) s->waiting = 1;
  UNLOCK();
  return must_wait;
}

void flosse_sub_close(struct flosse_sub *s) {
  LOCK();
  for (int i = 0; i < s->nrefs; i++)
    if (s->refs[i].chan) {
      flosse_list_unlink(&s->refs[i].link);
      s->refs[i].chan->nsubs--;
      release_if_unused(s->refs[i].chan);
      s->refs[i].chan = NULL;
    }
  while (s->qlen) flosse_msg_unref(pop_locked(s));
  free(s->q);
  s->q = NULL;
  s->qcap = 0;
  flosse_list_unlink(&s->owner_link);
  s->owner = NULL;
  s->waiting = 0;
  free(s->resume);
  s->resume = NULL;
  s->unsynced = 0;
  UNLOCK();
}

void flosse_sub_set_owner(struct flosse_sub *s, struct flosse_sub_owner *owner) {
  LOCK();
  flosse_list_unlink(&s->owner_link);
  if (s->owner) s->owner = owner;
  UNLOCK();
}

int flosse_sub_synced(struct flosse_sub *s) {
  LOCK();
  int synced = !s->owner || s->unsynced == 0;
  if (!synced) s->waiting = 1;
  UNLOCK();
  return synced;
}

/* ---- the back end's side ------------------------------------------------------ */

uint64_t flosse_channel_last(const char *name, size_t len, int *synced) {
  LOCK();
  struct flosse_chan *ch = find_locked(name, len);
  uint64_t last = ch ? ch->last : 0;
  if (synced) *synced = ch ? ch->synced : 0;
  UNLOCK();
  return last;
}

size_t flosse_channel_subscribers(const char *name, size_t len) {
  LOCK();
  struct flosse_chan *ch = find_locked(name, len);
  size_t n = ch ? ch->nsubs : 0;
  UNLOCK();
  return n;
}

size_t flosse_channel_each(void (*fn)(const char *name, size_t len, size_t subscribers, void *ud),
                           void *ud) {
  LOCK();
  for (size_t i = 0; i < table_cap; i++)
    for (struct flosse_chan *c = table[i]; c; c = c->next) fn(c->name, c->name_len, c->nsubs, ud);
  size_t n = table_len;
  UNLOCK();
  return n;
}

/* A back end's message as this node frames it: with its id. */
static struct flosse_msg *remote_msg(struct flosse_chan *ch, const struct flosse_remote_msg *r) {
  char idbuf[24], err[64];
  struct flosse_sse_event ev = r->ev;
  ev.id_len = (size_t)snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)r->id);
  ev.id = idbuf;
  return new_msg(ch, &ev, r->id, r->time, err, sizeof err);
}

/* The mirror is in place: the subscriptions that waited for it resume. */
static void synced_locked(struct flosse_chan *ch) {
  ch->synced = 1;
  for (struct flosse_list *it = ch->subs.next; it != &ch->subs; it = it->next) {
    struct flosse_sub *s = flosse_container_of(it, struct flosse_subref, link)->sub;
    if (!s->owner || s->unsynced == 0 || --s->unsynced > 0) continue;
    if (s->resume) {
      char *x = s->resume;
      s->resume = NULL;
      resume_locked(s, x);
      free(x);
    }
    if (s->waiting) {
      s->waiting = 0;
      s->owner->notify(s->owner, 0);
    }
  }
}

void flosse_channel_sync(const char *name, size_t len, const struct flosse_remote_msg *msgs, size_t n,
                         uint64_t dropped, uint64_t base, int gap, int complete) {
  double now = msgs && n ? msgs[n - 1].time : 0;
  LOCK();
  struct flosse_chan *ch = find_locked(name, len);
  if (!ch || (!ch->synced && !complete)) {
    UNLOCK();
    return;
  }
  /* A new epoch: the back end lost what it held (a first one, on a channel
   * that had none, is no gap). */
  if (ch->synced && ch->base != 0 && base != ch->base) gap = 1;
  if (ch->synced && gap) {
    /* What this node held is from before what it missed: a client resuming
     * from it is told, and the live subscribers are told now. */
    char last[24];
    snprintf(last, sizeof last, "%llu", (unsigned long long)ch->last);
    while (ch->hist_len) hist_drop_oldest(ch);
    if (ch->last > ch->dropped) ch->dropped = ch->last;
    struct flosse_msg *g = gap_msg(ch, ch->last ? last : NULL);
    if (g) {
      fan_out_locked(ch, g, 0);
      flosse_msg_unref(g);
    }
  }
  ch->base = base;
  if (dropped > ch->dropped) ch->dropped = dropped;
  for (size_t i = 0; i < n; i++) {
    if (msgs[i].id <= ch->last) continue; /* had it (pub/sub and a read overlap) */
    struct flosse_msg *m = remote_msg(ch, &msgs[i]);
    if (!m) continue;
    if (hist_push(ch, m, msgs[i].time) == FLOSSE_OK) {
      ch->last = m->seq;
      fan_out_locked(ch, m, !ch->synced);
    }
    flosse_msg_unref(m);
  }
  if (!ch->synced) synced_locked(ch);
  hist_trim(ch, now);
  UNLOCK();
}
