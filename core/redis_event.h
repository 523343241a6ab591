/* An event as Redis keeps it (channel_redis.c): the record
 * "<event length|->:<retry|->:<1: data|->:<event><data>" in a stream entry, and the
 * pub/sub message "<id> <base> <t> <record>". Bytes in, bytes out: layer 1,
 * fuzzed (spec/fuzz/redis_event_fuzz.c). */
#ifndef FLOSSE_REDIS_EVENT_H
#define FLOSSE_REDIS_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "sse.h"

/* The record of ev (its id is left out: Redis numbers events) in a new
 * malloc'd block. Returns FLOSSE_OK, or FLOSSE_ERR when out of memory. */
int flosse_redis_event_encode(const struct flosse_sse_event *ev, char **out, size_t *outlen);
/* The event in the record s (ev points into s; no id). */
int flosse_redis_event_decode(const char *s, size_t len, struct flosse_sse_event *ev);
/* A pub/sub message: its id, epoch base, Redis time (ms), and where its
 * record starts in s (*record, *record_len), decoded into ev. */
int flosse_redis_message_parse(const char *s, size_t len, uint64_t *id, uint64_t *base, uint64_t *t,
                               const char **record, size_t *record_len, struct flosse_sse_event *ev);
/* A decimal number of 1 to 19 digits, nothing else. */
int flosse_redis_u64(const char *s, size_t len, uint64_t *v);

#endif
