/* fuzz-sources: core/redis_event.c core/redis.c core/log.c core/metrics.c core/buf.c  fuzz-libs: -lhiredis -lev -lhttp_parser -lpthread */
/* What comes from Redis (a pub/sub message, a stream entry's record) and
 * what the settings give (a Redis URL): whatever the bytes, parsing stays
 * inside them, and a record that parses is encoded back to the same event. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/redis.h"
#include "../../core/redis_event.h"

static void same_event(const struct flosse_sse_event *a, const struct flosse_sse_event *b) {
  if ((a->event == NULL) != (b->event == NULL) || a->event_len != b->event_len ||
      (a->event && memcmp(a->event, b->event, a->event_len) != 0) || (a->data == NULL) != (b->data == NULL) ||
      a->data_len != b->data_len || (a->data && memcmp(a->data, b->data, a->data_len) != 0) ||
      a->retry != b->retry || b->id)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  const char *end = s + size;
  uint64_t id, base, t;
  const char *record;
  size_t record_len;
  struct flosse_sse_event ev;
  if (flosse_redis_message_parse(s, size, &id, &base, &t, &record, &record_len, &ev) == FLOSSE_OK) {
    if (record < s || record + record_len != end) abort();
    if (ev.event && (ev.event < record || ev.event + ev.event_len > end)) abort();
    if (ev.data && (ev.data < record || ev.data + ev.data_len > end)) abort();
    char *again;
    size_t again_len;
    struct flosse_sse_event back;
    if (flosse_redis_event_encode(&ev, &again, &again_len) != FLOSSE_OK) abort();
    if (flosse_redis_event_decode(again, again_len, &back) != FLOSSE_OK) abort();
    same_event(&ev, &back);
    free(again);
  }
  if (flosse_redis_event_decode(s, size, &ev) == FLOSSE_OK) {
    if (ev.event && (ev.event < s || ev.event + ev.event_len > end)) abort();
    if (ev.data && (ev.data < s || ev.data + ev.data_len > end)) abort();
  }
  char *url = malloc(size + 1);
  if (!url) return 0;
  memcpy(url, data, size);
  url[size] = '\0';
  struct flosse_redis_url u;
  char err[256];
  if (flosse_redis_url_parse(url, &u, err, sizeof err) == FLOSSE_OK) {
    if (u.port < 0 || u.port > 65535 || u.db < 0) abort();
    if (!memchr(u.host, 0, sizeof u.host) || !memchr(u.path, 0, sizeof u.path) ||
        !memchr(u.password, 0, sizeof u.password) || !memchr(u.text, 0, sizeof u.text))
      abort();
  }
  free(url);
  return 0;
}
