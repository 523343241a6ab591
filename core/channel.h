/* Channels: named fan-out of framed events, with a bounded history.
 * A message is framed once at publish time; every subscriber's output
 * queues the same reference-counted segment. */
#ifndef FLOSSE_CHANNEL_H
#define FLOSSE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "list.h"
#include "sse.h"

struct flosse_conn;

struct flosse_msg {
  uint32_t refs;
  uint64_t seq;              /* global publish order */
  double time;               /* when it was published */
  struct flosse_seg *seg;    /* "<hex>\r\n" frame "\r\n": the chunked form */
  uint32_t frame_off, frame_len; /* the bare frame inside seg */
  const char *channel, *id, *event, *data; /* copies, in the same block */
  size_t data_len;
  char strings[];
};

struct flosse_chan {
  char *name;
  struct flosse_chan *next;  /* hash chain */
  struct flosse_msg **hist;  /* ring: oldest at hist_head */
  size_t hist_cap, hist_head, hist_len;
  struct flosse_list subs;   /* struct flosse_subref.link */
};

struct flosse_sub;

struct flosse_subref {
  struct flosse_list link;   /* in chan->subs */
  struct flosse_chan *chan;
  struct flosse_sub *sub;
};

/* One subscription of a stream to one or more channels. */
struct flosse_sub {
  struct flosse_conn *conn;  /* NULL once the stream ended */
  struct flosse_list conn_link; /* in conn->subs */
  struct flosse_msg **q;     /* ring of messages the stream has not taken */
  size_t qcap, qhead, qlen, backlog;
  int waiting;               /* the stream is suspended in sub:wait() */
  int nrefs;
  struct flosse_subref refs[];
};

struct flosse_channel_config {
  size_t history;            /* events kept per channel */
  double history_seconds;    /* 0: no age limit */
  size_t backlog;            /* queued events per subscription before it is dropped */
};

void flosse_channel_configure(const struct flosse_channel_config *cfg);
const struct flosse_channel_config *flosse_channel_config(void);

/* Finds or makes the channel (name must be valid: see flosse_channel_name_ok). */
struct flosse_chan *flosse_channel_get(const char *name, size_t len);
struct flosse_chan *flosse_channel_find(const char *name, size_t len);
int flosse_channel_name_ok(const char *name, size_t len);
/* How many channels the registry holds. */
size_t flosse_channel_count(void);

/* Makes a message of ev (an id is assigned when ev has none), keeps it in
 * the channel's history and queues it to every subscriber. Returns the
 * message with a reference for the caller (flosse_msg_unref it) and sets
 * *delivered, or NULL with err filled in. Runs under the channels' lock:
 * wake(conn) and drop(conn) (a subscriber over its backlog) must only
 * post work, never close a connection or take that lock. */
struct flosse_msg *flosse_channel_publish(struct flosse_chan *ch, struct flosse_sse_event *ev,
                                          double now, size_t *delivered,
                                          void (*wake)(struct flosse_conn *c),
                                          void (*drop)(struct flosse_conn *c),
                                          char *err, size_t errlen);

void flosse_msg_ref(struct flosse_msg *m);
void flosse_msg_unref(struct flosse_msg *m);

/* Initialises a subscription (memory from the caller, sized with
 * flosse_sub_size) to the channels, queuing what it missed after
 * last_event_id (NULL: live only). */
size_t flosse_sub_size(int nchans);
void flosse_sub_init(struct flosse_sub *s, struct flosse_conn *conn, struct flosse_chan **chans,
                     int nchans, const char *last_event_id, double now);
/* Takes the oldest queued message (the caller owns a reference), or NULL. */
struct flosse_msg *flosse_sub_pop(struct flosse_sub *s);
/* Takes up to max queued messages into out (the caller owns a reference to
 * each); when that empties the queue, marks the subscription as waiting, in
 * the same critical section, so the next publish wakes it. */
size_t flosse_sub_take(struct flosse_sub *s, struct flosse_msg **out, size_t max);
/* Marks the subscription as waiting if nothing is queued (atomically with
 * publishers); returns 1 if the stream must wait. */
int flosse_sub_wait(struct flosse_sub *s);
/* Unlinks from every channel and drops what is queued. Safe twice. */
void flosse_sub_close(struct flosse_sub *s);

#endif
