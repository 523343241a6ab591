/* Channels: named fan-out of framed events, with a bounded history.
 * A message is framed once at publish time; every subscriber's output
 * queues the same reference-counted segment. */
#ifndef FLOSSE_CHANNEL_H
#define FLOSSE_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "defaults.h"
#include "list.h"
#include "sse.h"

/* Who a subscription belongs to (a task, or a stream relaying in C).
 * notify runs under the channels' lock, on the publisher's thread: a
 * message was queued to a waiting subscription (drop = 0), or one fell too
 * far behind (drop = 1). It must only post work, never take that lock or
 * close anything. */
struct flosse_sub_owner {
  void (*notify)(struct flosse_sub_owner *self, int drop);
};

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

/* A channel lives while it has a subscriber or history: the last
 * subscriber leaving an empty channel frees it, and so does its history
 * expiring (channel_history_seconds) once nobody is subscribed. With a
 * back end (Redis), the history is a mirror of the back end's, and the
 * channel lives exactly while it has subscribers on this node. */
struct flosse_chan {
  char *name;
  size_t name_len;
  struct flosse_chan *next;  /* hash chain */
  struct flosse_msg **hist;  /* ring: oldest at hist_head */
  size_t hist_cap, hist_head, hist_len;
  struct flosse_list subs;   /* struct flosse_subref.link */
  size_t nsubs;              /* in subs */
  struct flosse_list age;    /* in the age list (newest publish last) while it has history */
  double last_publish;
  uint64_t dropped;          /* the newest seq that may have been on it and is gone */
  uint64_t last;             /* the newest seq it took (a back end's messages come once) */
  uint64_t base;             /* back end: the first id of the back end's epoch (0: none yet) */
  int synced;                /* back end: its mirror is in place */
};

struct flosse_sub;

struct flosse_subref {
  struct flosse_list link;   /* in chan->subs */
  struct flosse_chan *chan;
  struct flosse_sub *sub;
};

/* One subscription of a stream to one or more channels. */
struct flosse_sub {
  struct flosse_sub_owner *owner; /* NULL once closed */
  struct flosse_list owner_link;  /* in its owner's list */
  struct flosse_msg **q;     /* ring of messages the stream has not taken */
  size_t qcap, qhead, qlen, backlog;
  uint64_t after;            /* messages up to this seq are the client's already */
  double since;              /* when it was made: a back end's first read brings it what came after */
  char *resume;              /* back end: the Last-Event-ID to resume from once synced */
  int unsynced;              /* back end: channels whose mirror is not in place yet */
  int waiting;               /* the stream is suspended in sub:wait() */
  int nrefs;
  struct flosse_subref refs[];
};

struct flosse_channel_config {
  size_t history;            /* events kept per channel */
  double history_seconds;    /* 0: no age limit */
  size_t backlog;            /* queued events per subscription before it is dropped */
  size_t max_channels;       /* channels the registry may hold */
};


/* Why a channel operation was refused. */
enum flosse_chan_rc {
  FLOSSE_CHAN_OK,
  FLOSSE_CHAN_BAD_NAME,   /* not 1 to 200 bytes, or holds CR, LF or NUL */
  FLOSSE_CHAN_FULL,       /* it would make more than max_channels */
  FLOSSE_CHAN_BAD_EVENT,  /* the event cannot be framed (err says why) */
  FLOSSE_CHAN_NOMEM,
};

void flosse_channel_configure(const struct flosse_channel_config *cfg);
const struct flosse_channel_config *flosse_channel_config(void);

/* 1 if name can be a channel's: 1 to 200 bytes without CR, LF or NUL. */
int flosse_channel_name_ok(const char *name, size_t len);
/* How many channels the registry holds. */
size_t flosse_channel_count(void);
/* 1 if the registry holds the channel (for tests and inspection). */
int flosse_channel_exists(const char *name, size_t len);

/* Makes a message of ev (an id is assigned when ev has none), keeps it in
 * the named channel's history (making the channel if need be) and queues
 * it to every subscriber. Returns the message with a reference for the
 * caller (flosse_msg_unref it) and sets *delivered, or NULL with *rc and
 * err saying why. Subscribers' owners are notified under the channels'
 * lock (struct flosse_sub_owner). */
struct flosse_msg *flosse_channel_publish(const char *name, size_t len,
                                          struct flosse_sse_event *ev, double now,
                                          size_t *delivered,
                                          enum flosse_chan_rc *rc, char *err, size_t errlen);

/* Frees the channels whose whole history is older than history_seconds
 * and that nobody is subscribed to; trims the histories of the others.
 * Cheap when nothing expired (the main worker calls it every second). */
void flosse_channel_sweep(double now);

/* Queues m on a subscriber's output by reference: the whole chunk, or the
 * bare frame inside it when the response is not chunked (HTTP/1.0).
 * Returns FLOSSE_OK or FLOSSE_ERR (no memory). */
static inline int flosse_msg_append(struct flosse_buf *out, struct flosse_msg *m, int chunked) {
  return chunked ? flosse_buf_append_seg(out, m->seg)
                 : flosse_buf_append_range(out, m->seg, m->frame_off, m->frame_len);
}

/* The event a client is sent first when it cannot be resumed without a
 * gap: no id, so the client keeps the Last-Event-ID it had. */
#define FLOSSE_GAP_EVENT "flosse-gap"

/* ---- a shared back end (Redis: channel_redis.c) ------------------------------
 * With one set, channels span every node sharing the back end: publishes go
 * to it (not through flosse_channel_publish), ids are its, and what it
 * sends comes in through flosse_channel_sync, in id order. */
struct flosse_channel_backend {
  /* Under the lock: name got its first subscriber on this node (on = 1),
   * or lost its last (on = 0: the channel is freed). Must only queue work. */
  void (*watch)(const char *name, size_t len, int on);
};
void flosse_channel_set_backend(const struct flosse_channel_backend *b);
int flosse_channel_has_backend(void);

/* A message from the back end: its id (decimal digits), its time on this
 * node's clock, the event to frame (without id: the id is added). */
struct flosse_remote_msg {
  uint64_t id;
  double time;
  struct flosse_sse_event ev;
};
/* Takes what the back end holds or sends for name, oldest first: on a
 * channel not synced yet, it becomes the history (the subscriptions waiting
 * for it resume from it and are woken); on a synced one, what is newer than
 * the channel's last message is published to its subscribers. dropped: the
 * newest id the back end no longer holds for it; base: the first id of the
 * back end's epoch; gap: the node may have missed messages (it was cut off
 * from the back end and history was lost meanwhile): subscribers are sent
 * a flosse-gap event. complete: msgs is all the back end holds after the
 * channel's last (a read), not just what pub/sub brought: only a complete
 * sync puts a mirror in place. No-op for a channel nobody here subscribes to. */
void flosse_channel_sync(const char *name, size_t len, const struct flosse_remote_msg *msgs, size_t n,
                         uint64_t dropped, uint64_t base, int gap, int complete);
/* The newest id name took (0: none), and whether it is synced. */
uint64_t flosse_channel_last(const char *name, size_t len, int *synced);
/* Subscriptions to name on this node. */
size_t flosse_channel_subscribers(const char *name, size_t len);
/* Calls fn for every channel of this node with its subscriptions here, and
 * returns the channel count. fn runs under the registry's lock: it must not
 * call back into channels, and should only copy what it keeps. */
size_t flosse_channel_each(void (*fn)(const char *name, size_t len, size_t subscribers, void *ud),
                           void *ud);

/* 1 if every channel of s has its mirror in place (always, without a back
 * end); otherwise marks s as waiting, so that the last sync wakes it. */
int flosse_sub_synced(struct flosse_sub *s);

void flosse_msg_ref(struct flosse_msg *m);
void flosse_msg_unref(struct flosse_msg *m);

/* Initialises a subscription (memory from the caller, sized with
 * flosse_sub_size) to the named channels (made if need be), queuing what it
 * missed after last_event_id (NULL: live only), after one flosse-gap event
 * for each channel on which some of it is gone (docs/channels.md, "History
 * and Last-Event-ID"). With a back end, channels not synced yet do that
 * when they are (flosse_sub_synced waits for it). Returns FLOSSE_CHAN_OK, or
 * why nothing was subscribed (nothing made either); either way the
 * subscription can be closed. */
size_t flosse_sub_size(int nchans);
enum flosse_chan_rc flosse_sub_init(struct flosse_sub *s, struct flosse_sub_owner *owner,
                                    const char *const *names, const size_t *lens, int nchans,
                                    const char *last_event_id, double now);
/* Takes the oldest queued message (the caller owns a reference), or NULL. */
struct flosse_msg *flosse_sub_pop(struct flosse_sub *s);
/* Takes up to max queued messages into out (the caller owns a reference to
 * each); when that empties the queue, marks the subscription as waiting, in
 * the same critical section, so the next publish wakes it. */
size_t flosse_sub_take(struct flosse_sub *s, struct flosse_msg **out, size_t max);
/* Marks the subscription as waiting if nothing is queued (atomically with
 * publishers); returns 1 if the stream must wait. */
int flosse_sub_wait(struct flosse_sub *s);
/* Hands the subscription to another owner (it leaves the old owner's list;
 * the new one links it where it wants). Nothing changes once closed. */
void flosse_sub_set_owner(struct flosse_sub *s, struct flosse_sub_owner *owner);
/* Unlinks from every channel and drops what is queued. Safe twice. */
void flosse_sub_close(struct flosse_sub *s);

#endif
