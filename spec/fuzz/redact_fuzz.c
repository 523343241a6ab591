/* fuzz-sources: core/redact.c  fuzz-libs: */
/* libFuzzer harness for the redaction of log lines (core/redact.c). The
 * input's first byte picks the cap (0..255 bytes: around the request
 * line's 200), the rest is a request target. The names are "token" and
 * "a b" (a space: '+' and "%20" decode to it); every pair whose decoded
 * name is one of them must lose its value. Checked against the harness's
 * own reading of the query (a slow, obvious one, as request.lua reads it):
 * - at most cap bytes written, none past them (ASan);
 * - without a cap (cap = 4 * len + 8) the output is exactly the expected
 *   redaction; with a cap it is a prefix of it, cut only before a mark
 *   (so no byte of a redacted value is ever written);
 * - the same with r->all: every non-empty value a mark. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/redact.h"

static int hexv(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* request.unquote(name, true) into out; returns its length. */
static size_t unquote(const unsigned char *p, size_t n, unsigned char *out) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '+') {
      out[k++] = ' ';
    } else if (p[i] == '%' && i + 2 < n && hexv(p[i + 1]) >= 0 && hexv(p[i + 2]) >= 0) {
      out[k++] = (unsigned char)(hexv(p[i + 1]) * 16 + hexv(p[i + 2]));
      i += 2;
    } else {
      out[k++] = p[i];
    }
  }
  return k;
}

static int named(const unsigned char *p, size_t n, int all) {
  if (all) return 1;
  unsigned char *d = malloc(n + 1);
  size_t k = unquote(p, n, d);
  int hit = (k == 5 && memcmp(d, "token", 5) == 0) || (k == 3 && memcmp(d, "a b", 3) == 0);
  free(d);
  return hit;
}

/* The expected redaction, uncut; *marks gets where each mark starts. */
static size_t expect(const unsigned char *u, size_t len, int all, unsigned char *out, size_t *marks,
                     size_t *nmarks) {
  size_t o = 0, end = len;
  for (size_t i = 0; i < len; i++)
    if (u[i] == '#') { end = i; break; }
  size_t q = end;
  for (size_t i = 0; i < end; i++)
    if (u[i] == '?') { q = i; break; }
  *nmarks = 0;
  if (q == end) {
    memcpy(out, u, len);
    return len;
  }
  memcpy(out, u, q + 1);
  o = q + 1;
  size_t i = q + 1;
  while (i < end) {
    size_t pe = i;
    while (pe < end && u[pe] != '&') pe++;
    size_t eq = i;
    while (eq < pe && u[eq] != '=') eq++;
    if (eq < pe && eq + 1 < pe && named(u + i, eq - i, all)) {
      memcpy(out + o, u + i, eq + 1 - i);
      o += eq + 1 - i;
      marks[(*nmarks)++] = o;
      memcpy(out + o, FLOSSE_REDACT_MARK, 3);
      o += 3;
    } else {
      memcpy(out + o, u + i, pe - i);
      o += pe - i;
    }
    i = pe;
    if (i < end) out[o++] = u[i++];
  }
  memcpy(out + o, u + end, len - end);
  return o + len - end;
}

static void run(const struct flosse_redact *r, const unsigned char *u, size_t len, size_t cap) {
  unsigned char *want = malloc(4 * len + 8);
  size_t *marks = malloc((len + 1) * sizeof *marks);
  size_t nmarks;
  size_t wlen = expect(u, len, r->all, want, marks, &nmarks);
  char *whole = malloc(4 * len + 8);
  size_t n = flosse_redact_url(r, (const char *)u, len, whole, 4 * len + 8);
  if (n != wlen || memcmp(whole, want, n) != 0) abort();
  char *cut = malloc(cap ? cap : 1);
  size_t m = flosse_redact_url(r, (const char *)u, len, cut, cap);
  if (m > cap || memcmp(cut, want, m) != 0) abort();
  if (m < cap && m < wlen) {
    /* cut short of the cap only before a mark that did not fit */
    int before_mark = 0;
    for (size_t k = 0; k < nmarks; k++) before_mark |= marks[k] == m && m + 3 > cap;
    if (!before_mark) abort();
  }
  free(cut);
  free(whole);
  free(marks);
  free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t cap = data[0];
  const unsigned char *u = data + 1;
  size_t len = size - 1;
  struct flosse_redact r;
  flosse_redact_init(&r);
  flosse_redact_add(&r, "token", 5);
  flosse_redact_add(&r, "a b", 3);
  run(&r, u, len, cap);
  struct flosse_redact all;
  flosse_redact_init(&all);
  all.all = 1;
  run(&all, u, len, cap);
  return 0;
}
