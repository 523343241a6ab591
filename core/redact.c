#include "redact.h"

#include <string.h>

void flosse_redact_init(struct flosse_redact *r) { memset(r, 0, sizeof *r); }

int flosse_redact_add(struct flosse_redact *r, const char *name, size_t len) {
  for (int i = 0; i < r->n; i++)
    if (r->len[i] == len && memcmp(r->name[i], name, len) == 0) return FLOSSE_OK;
  if (len > FLOSSE_REDACT_MAX_NAME || r->n == FLOSSE_REDACT_MAX_NAMES) {
    r->all = 1;
    return FLOSSE_ERR;
  }
  memcpy(r->name[r->n], name, len);
  r->len[r->n++] = (unsigned char)len;
  return FLOSSE_OK;
}

static int hex(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Is the name p[0..len), decoded as request.unquote(name, true) decodes
 * it, in r? Decoded into a bounded buffer: a longer name matches nothing. */
static int listed(const struct flosse_redact *r, const char *p, size_t len) {
  if (r->all) return 1;
  char dec[FLOSSE_REDACT_MAX_NAME];
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    int hi, lo;
    if (c == '+') {
      c = ' ';
    } else if (c == '%' && i + 2 < len && (hi = hex((unsigned char)p[i + 1])) >= 0 &&
               (lo = hex((unsigned char)p[i + 2])) >= 0) {
      c = (unsigned char)(hi << 4 | lo);
      i += 2;
    }
    if (n == sizeof dec) return 0;
    dec[n++] = (char)c;
  }
  for (int k = 0; k < r->n; k++)
    if (r->len[k] == n && memcmp(r->name[k], dec, n) == 0) return 1;
  return 0;
}

/* Copies what fits of p[0..len) to out at *o (cap bytes in all). */
static void put(char *out, size_t *o, size_t cap, const char *p, size_t len) {
  size_t room = cap - *o;
  if (len > room) len = room;
  memcpy(out + *o, p, len);
  *o += len;
}

size_t flosse_redact_url(const struct flosse_redact *r, const char *url, size_t len, char *out,
                         size_t cap) {
  size_t o = 0;
  const char *hash = memchr(url, '#', len);
  size_t end = hash ? (size_t)(hash - url) : len; /* request.lua drops the fragment first */
  const char *q = (r->n || r->all) ? memchr(url, '?', end) : NULL;
  if (!q) {
    put(out, &o, cap, url, len);
    return o;
  }
  size_t i = (size_t)(q - url) + 1;
  put(out, &o, cap, url, i);
  while (i < end && o < cap) {
    const char *amp = memchr(url + i, '&', end - i);
    size_t pend = amp ? (size_t)(amp - url) : end; /* the pair is url[i..pend) */
    const char *eq = memchr(url + i, '=', pend - i);
    if (eq && (size_t)(eq - url) + 1 < pend && listed(r, url + i, (size_t)(eq - url) - i)) {
      size_t upto = (size_t)(eq - url) + 1;
      put(out, &o, cap, url + i, upto - i);
      if (cap - o < FLOSSE_REDACT_MARK_LEN) return o; /* the mark is never cut */
      put(out, &o, cap, FLOSSE_REDACT_MARK, FLOSSE_REDACT_MARK_LEN);
    } else {
      put(out, &o, cap, url + i, pend - i);
    }
    i = pend;
    if (amp) {
      put(out, &o, cap, "&", 1);
      i++;
    }
  }
  if (i < len) put(out, &o, cap, url + i, len - i); /* the fragment, as it came */
  return o;
}
