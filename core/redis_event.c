#include "redis_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int flosse_redis_event_encode(const struct flosse_sse_event *ev, char **out, size_t *outlen) {
  char head[48];
  char el[24] = "-", rt[24] = "-";
  if (ev->event) snprintf(el, sizeof el, "%zu", ev->event_len);
  if (ev->retry >= 0) snprintf(rt, sizeof rt, "%lld", ev->retry);
  int hl = snprintf(head, sizeof head, "%s:%s:%s:", el, rt, ev->data ? "1" : "-");
  size_t elen = ev->event ? ev->event_len : 0, dlen = ev->data ? ev->data_len : 0;
  char *p = malloc((size_t)hl + elen + dlen + 1);
  if (!p) return FLOSSE_ERR;
  memcpy(p, head, (size_t)hl);
  if (elen) memcpy(p + hl, ev->event, elen);
  if (dlen) memcpy(p + hl + elen, ev->data, dlen);
  *out = p;
  *outlen = (size_t)hl + elen + dlen;
  return FLOSSE_OK;
}

/* Reads one field ("-" or digits) up to ':'; returns the byte after it. */
static const char *field(const char *p, const char *end, long long *v) {
  *v = -1;
  if (p < end && *p == '-') {
    p++;
  } else {
    long long n = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 18) n = n * 10 + (*p++ - '0'), digits++;
    if (!digits) return NULL;
    *v = n;
  }
  return p < end && *p == ':' ? p + 1 : NULL;
}

int flosse_redis_event_decode(const char *s, size_t len, struct flosse_sse_event *ev) {
  const char *end = s + len;
  long long elen, retry, has_data;
  const char *p = field(s, end, &elen);
  if (p) p = field(p, end, &retry);
  if (p) p = field(p, end, &has_data);
  if (!p || (elen > 0 && elen > end - p) || has_data == 0 || has_data > 1 ||
      (has_data < 0 && end - p != (elen > 0 ? elen : 0)))
    return FLOSSE_ERR;
  ev->event = elen >= 0 ? p : NULL;
  ev->event_len = elen >= 0 ? (size_t)elen : 0;
  p += elen > 0 ? elen : 0;
  ev->data = has_data > 0 ? p : NULL;
  ev->data_len = has_data > 0 ? (size_t)(end - p) : 0;
  ev->id = NULL;
  ev->id_len = 0;
  ev->retry = retry;
  return FLOSSE_OK;
}

int flosse_redis_u64(const char *s, size_t len, uint64_t *v) {
  if (!len || len > 19) return FLOSSE_ERR;
  uint64_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return FLOSSE_ERR;
    n = n * 10 + (uint64_t)(s[i] - '0');
  }
  *v = n;
  return FLOSSE_OK;
}

int flosse_redis_message_parse(const char *s, size_t len, uint64_t *id, uint64_t *base, uint64_t *t,
                               const char **record, size_t *record_len, struct flosse_sse_event *ev) {
  const char *end = s + len;
  uint64_t *v[3] = {id, base, t};
  for (int i = 0; i < 3; i++) {
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    if (!sp || flosse_redis_u64(s, (size_t)(sp - s), v[i]) != FLOSSE_OK) return FLOSSE_ERR;
    s = sp + 1;
  }
  *record = s;
  *record_len = (size_t)(end - s);
  return flosse_redis_event_decode(s, (size_t)(end - s), ev);
}
