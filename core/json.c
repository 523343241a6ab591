#include "json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ------------------------------------------------------------- */

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

size_t flosse_json_integer(char *out, int64_t v) {
  char tmp[24];
  char *p = tmp + sizeof tmp;
  /* The magnitude as unsigned, so INT64_MIN negates without overflow. */
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  while (u >= 100) {
    unsigned k = (unsigned)(u % 100) * 2;
    u /= 100;
    *--p = digit_pairs[k + 1];
    *--p = digit_pairs[k];
  }
  if (u >= 10) {
    unsigned k = (unsigned)u * 2;
    *--p = digit_pairs[k + 1];
    *--p = digit_pairs[k];
  } else {
    *--p = (char)('0' + u);
  }
  if (v < 0) *--p = '-';
  size_t n = (size_t)(tmp + sizeof tmp - p);
  memcpy(out, p, n);
  out[n] = '\0';
  return n;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The 17 significant digits and the exponent of printf's %.16e (or fewer
 * digits for another precision), skipping the decimal point, which is the
 * locale's and may be several bytes (U+066B is two): every other byte %e
 * writes is an ASCII digit, '-', 'e' or '+' in every locale. Returns the
 * number of digits. */
static int parse_e(const char *s, char *digits, int *exp) {
  int n = 0;
  if (*s == '-') s++;
  for (; *s && *s != 'e'; s++)
    if (is_digit(*s) && n < 17) digits[n++] = *s;
  *exp = *s ? (int)strtol(s + 1, NULL, 10) : 0;
  return n;
}

/* Rounds v to p significant digits (p < 17) from r, its 17 digits (exponent
 * *exp), into c, adjusting *exp on a carry. r is itself rounded, so it can
 * decide only when its tail past p is not exactly 5000...: no midpoint of
 * p digits then lies between r and v. On that tie it asks printf, which
 * rounds v itself. */
static void round_to(double v, const char *r, int p, char *c, int *exp) {
  int up = r[p] > '5';
  if (r[p] == '5') {
    int rest = 0;
    for (int i = p + 1; i < 17; i++) rest |= r[i] != '0';
    if (!rest) {
      char tmp[64];
      snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
      parse_e(tmp, c, exp);
      return;
    }
    up = 1;
  }
  memcpy(c, r, (size_t)p);
  if (!up) return;
  int i = p - 1;
  while (i >= 0 && c[i] == '9') c[i--] = '0';
  if (i >= 0) {
    c[i]++;
  } else { /* 99..9 became 100..0 */
    c[0] = '1';
    (*exp)++;
  }
}

/* Writes digits c[0..k) (no trailing zeros) times 10^(exp-k+1) as printf's
 * %.<P>g would: exponent form when exp < -4 or exp >= P, else fixed. */
static size_t format_g(char *out, int neg, const char *c, int k, int exp, int P) {
  char *o = out;
  if (neg) *o++ = '-';
  if (exp < -4 || exp >= P) {
    *o++ = c[0];
    if (k > 1) {
      *o++ = '.';
      memcpy(o, c + 1, (size_t)(k - 1));
      o += k - 1;
    }
    *o++ = 'e';
    *o++ = exp < 0 ? '-' : '+';
    int ax = exp < 0 ? -exp : exp;
    if (ax < 10) *o++ = '0';
    o += flosse_json_integer(o, ax);
  } else if (exp >= 0) {
    int whole = exp + 1;
    for (int i = 0; i < whole; i++) *o++ = i < k ? c[i] : '0';
    if (k > whole) {
      *o++ = '.';
      memcpy(o, c + whole, (size_t)(k - whole));
      o += k - whole;
    }
  } else {
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -exp - 1; i++) *o++ = '0';
    memcpy(o, c, (size_t)k);
    o += k;
  }
  *o = '\0';
  return (size_t)(o - out);
}

#if FLT_EVAL_METHOD == 0
static const double exact_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Without printf, for a (> 0, normal) of 14 significant digits or fewer:
 * N = a * 10^k rounded, with k putting 14 digits before the point. If
 * N / 10^k gives a back (N < 2^53 and 10^k are exact doubles, so IEEE
 * division rounds N / 10^k correctly, as strtod would), a 14-digit decimal
 * reads back, hence (see below) N is what %.14g writes. Writes its digits
 * without trailing zeros to c and its exponent to *exp and returns their
 * count. Returns -1 when no decimal of 14 digits reads back (a 14-digit one
 * that did would be within 0.03 of a * 10^k, so N would be it), and 0 when
 * it cannot tell (a out of the exact range, or the estimate of its exponent
 * was off). */
static int short_decimal(double a, char *c, int *exp) {
  if (!(a >= 1e-9 && a < 1e14)) return 0;
  int k = 13 - (int)floor(log10(a));
  if (k < 0 || k > 22) return 0;
  double scaled = a * exact_pow10[k];
  if (scaled >= 1e14 - 0.5) {
    if (k == 0) return 0;
    k--;
    scaled = a * exact_pow10[k];
  }
  double n = floor(scaled + 0.5);
  if (n / exact_pow10[k] != a) return scaled >= 1e13 && n < 1e14 ? -1 : 0;
  char tmp[FLOSSE_JSON_NUMBER_MAX];
  int nd = (int)flosse_json_integer(tmp, (int64_t)n), m = nd;
  while (m > 1 && tmp[m - 1] == '0') m--;
  memcpy(c, tmp, (size_t)m);
  *exp = nd - 1 - k;
  return m;
}
#else
static int short_decimal(double a, char *c, int *exp) { /* x87: no exact fast path */
  (void)a, (void)c, (void)exp;
  return 0;
}
#endif

size_t flosse_json_double(char *out, double v) {
  if (!isfinite(v)) {
    out[0] = '\0';
    return 0;
  }
  /* Integral, up to 2^53 (where every integer is a double): the integer in
   * full, as %.14g also prints it below 1e14, and with no printf call.
   * Floats are common here (in Lua 5.4 done / total * 100 is one, and
   * cjson.decode gives only floats), and a decoded 1796150648138900 must not
   * come out as 1.7961506481389e+15. */
  if (v >= -9007199254740992.0 && v <= 9007199254740992.0) {
    int64_t i = (int64_t)v;
    if ((double)i == v) {
      if (i == 0 && signbit(v)) {
        memcpy(out, "-0", 3);
        return 2;
      }
      return flosse_json_integer(out, i);
    }
  }
  /* The smallest p whose %.<p>g reads back. A normal double has 53
   * significant bits, so if some p <= 14 reads back, rounding to 14 digits
   * lands on the same decimal (with trailing zeros, which %g drops): trying
   * 14 first finds every such number at once, and prints it as lua-cjson's
   * %.14g does. A subnormal has fewer bits (5e-324 is one digit but %.14g
   * writes 14), so it is searched from 1. 17 digits always read back.
   *
   * Most floats a view yields are short decimals (12.5, 0.1, 99.99):
   * short_decimal finds those with no printf call. Otherwise one printf call
   * gives the 17 digits; each shorter candidate is rounded from them and
   * read back as "<digits>e<exp>", a form strtod reads the same way in
   * every locale. */
  char buf[64], r[17], c[17], cand[48];
  int x17, neg = v < 0, k, x;
  int more = 0; /* known to need more than 14 digits */
  if (fabs(v) >= DBL_MIN) {
    k = short_decimal(fabs(v), c, &x);
    if (k > 0) return format_g(out, neg, c, k, x, 14);
    more = k < 0;
  }
  snprintf(buf, sizeof buf, "%.16e", v);
  memset(r, '0', sizeof r);
  parse_e(buf, r, &x17); /* 17 digits: %.16e always writes them */
  int p = more ? 15 : fabs(v) >= DBL_MIN ? 14 : 1;
  k = 17;
  x = x17;
  for (; p < 17; p++) {
    x = x17;
    round_to(v, r, p, c, &x);
    for (k = p; k > 1 && c[k - 1] == '0'; k--) {}
    size_t n = 0;
    if (neg) cand[n++] = '-';
    memcpy(cand + n, c, (size_t)k);
    n += (size_t)k;
    cand[n++] = 'e';
    flosse_json_integer(cand + n, x - (k - 1));
    double back = strtod(cand, NULL);
    if (memcmp(&back, &v, sizeof v) == 0) break;
  }
  if (p == 17) {
    memcpy(c, r, 17);
    x = x17;
    for (k = 17; k > 1 && c[k - 1] == '0'; k--) {}
  }
  return format_g(out, neg, c, k, x, fabs(v) >= DBL_MIN && p < 14 ? 14 : p);
}

/* ---- strings ------------------------------------------------------------- */

/* 0: the byte as it is; 'u': \u00xx; any other: a backslash and that. */
static const unsigned char escape_of[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    0,   0,   '"', 0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   '/',
    ['\\'] = '\\',
    [0x7f] = 'u',
};

size_t flosse_json_escape(char *out, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  char *o = out;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    unsigned char e = escape_of[c];
    if (!e) {
      *o++ = (char)c;
    } else if (e != 'u') {
      o[0] = '\\';
      o[1] = (char)e;
      o += 2;
    } else {
      memcpy(o, "\\u00", 4);
      o[4] = hex[c >> 4];
      o[5] = hex[c & 15];
      o += 6;
    }
  }
  return (size_t)(o - out);
}

size_t flosse_json_string(char *out, const char *s, size_t len) {
  out[0] = '"';
  size_t n = 1 + flosse_json_escape(out + 1, s, len);
  out[n++] = '"';
  return n;
}

/* ---- the member scanner -------------------------------------------------- */

enum { C_BAD, C_WS, C_OPEN, C_CLOSE, C_COMMA, C_COLON, C_QUOTE, C_SCALAR };

/* Byte classes outside strings. A scalar byte is one that true, false,
 * null, a JSON number or what cjson's strtod also takes (inf, nan(...),
 * 0x1p3, +1) can hold; NUL, other controls and bytes >= 0x80 are C_BAD. */
static unsigned char class_of(unsigned char c) {
  switch (c) {
  case ' ': case '\t': case '\n': case '\r': return C_WS;
  case '{': case '[': return C_OPEN;
  case '}': case ']': return C_CLOSE;
  case ',': return C_COMMA;
  case ':': return C_COLON;
  case '"': return C_QUOTE;
  case '+': case '-': case '.': case '_': case '(': case ')': return C_SCALAR;
  default:
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return C_SCALAR;
    return C_BAD;
  }
}

enum { ST_FIRST, ST_AFTER, ST_END, ST_ERR };

/* Why a scan failed. */
static const char *const reasons[] = {
    "expected '{'",
    "expected '\"' (a key) or '}'",
    "expected ',' or '}'",
    "expected ':'",
    "expected a value",
    "string not closed",
    "NUL byte",
    "unexpected byte",
    "value not closed",
    "brackets do not match",
    "nested too deep",
    "bytes after the object",
};
enum {
  R_OPEN, R_KEY, R_SEP, R_COLON, R_VALUE, R_STRING, R_NUL, R_BYTE, R_UNCLOSED, R_MATCH,
  R_DEEP, R_TRAILING
};

struct failure {
  int reason;
  size_t at;
};

static size_t skip_ws(const char *t, size_t len, size_t i) {
  while (i < len && class_of((unsigned char)t[i]) == C_WS) i++;
  return i;
}

/* t[*i] is '"': moves *i past the closing quote. */
static int skip_string(const char *t, size_t len, size_t *i, struct failure *f) {
  size_t j = *i + 1;
  while (j < len) {
    char c = t[j];
    if (c == '"') {
      *i = j + 1;
      return FLOSSE_OK;
    }
    if (c == '\\') j++; /* the escaped byte is checked below (a NUL) */
    if (j < len && t[j] == '\0') {
      f->reason = R_NUL;
      f->at = j;
      return FLOSSE_ERR;
    }
    j++;
  }
  f->reason = R_STRING;
  f->at = *i;
  return FLOSSE_ERR;
}

/* Moves *i past the value that starts there. A container is followed with
 * a counter and one bit a level (was it '[' or '{'), not with recursion. */
static int skip_value(const char *t, size_t len, size_t *i, struct failure *f) {
  size_t j = *i;
  int k = j < len ? class_of((unsigned char)t[j]) : C_BAD;
  if (k == C_QUOTE) return skip_string(t, len, i, f);
  if (k == C_SCALAR) {
    while (j < len && class_of((unsigned char)t[j]) == C_SCALAR) j++;
    *i = j;
    return FLOSSE_OK;
  }
  if (k != C_OPEN) {
    f->reason = R_VALUE;
    f->at = j;
    return FLOSSE_ERR;
  }
  unsigned char square[FLOSSE_JSON_SCAN_DEPTH / 8];
  size_t depth = 0;
  while (j < len) {
    unsigned char c = (unsigned char)t[j];
    switch (class_of(c)) {
    case C_QUOTE:
      if (skip_string(t, len, &j, f) != FLOSSE_OK) return FLOSSE_ERR;
      continue;
    case C_OPEN:
      if (depth == FLOSSE_JSON_SCAN_DEPTH) {
        f->reason = R_DEEP;
        f->at = j;
        return FLOSSE_ERR;
      }
      if (c == '[') square[depth / 8] |= (unsigned char)(1u << (depth % 8));
      else square[depth / 8] &= (unsigned char)~(1u << (depth % 8));
      depth++;
      break;
    case C_CLOSE:
      depth--; /* >= 1 here: the loop starts on an opening bracket and ends at 0 */
      if (!!(square[depth / 8] & (1u << (depth % 8))) != (c == ']')) {
        f->reason = R_MATCH;
        f->at = j;
        return FLOSSE_ERR;
      }
      if (depth == 0) {
        *i = j + 1;
        return FLOSSE_OK;
      }
      break;
    case C_BAD:
      f->reason = c ? R_BYTE : R_NUL;
      f->at = j;
      return FLOSSE_ERR;
    default: /* whitespace, ',' ':' and scalars: cjson checked their order */
      break;
    }
    j++;
  }
  f->reason = R_UNCLOSED;
  f->at = *i;
  return FLOSSE_ERR;
}

/* A failed scan keeps its reason in state (ST_ERR + reason) and the byte in
 * pos, so that every later call reports the same error. */
static int fail(struct flosse_json_scan *sc, struct failure f, char *err, size_t errlen) {
  sc->state = ST_ERR + f.reason;
  sc->pos = f.at;
  snprintf(err, errlen, "malformed JSON object at byte %zu: %s", f.at, reasons[f.reason]);
  return FLOSSE_ERR;
}

int flosse_json_scan_init(struct flosse_json_scan *sc, const char *text, size_t len, char *err,
                          size_t errlen) {
  sc->text = text;
  sc->len = len;
  sc->pos = skip_ws(text, len, 0);
  sc->state = ST_FIRST;
  if (sc->pos < len && text[sc->pos] == '{') {
    sc->pos++;
    return FLOSSE_OK;
  }
  struct failure f = {R_OPEN, sc->pos};
  return fail(sc, f, err, errlen);
}

int flosse_json_scan_next(struct flosse_json_scan *sc, struct flosse_json_member *m, char *err,
                          size_t errlen) {
  const char *t = sc->text;
  size_t len = sc->len, i = sc->pos;
  struct failure f = {R_KEY, i};
  if (sc->state == ST_END) return 0;
  if (sc->state >= ST_ERR) {
    f.reason = sc->state - ST_ERR;
    f.at = sc->pos;
    return fail(sc, f, err, errlen);
  }
  i = skip_ws(t, len, i);
  if (i < len && t[i] == '}' && sc->state == ST_FIRST) goto end;
  if (sc->state == ST_AFTER) {
    if (i < len && t[i] == '}') goto end;
    if (i >= len || t[i] != ',') {
      f.reason = R_SEP;
      goto bad;
    }
    i = skip_ws(t, len, i + 1);
  }
  if (i >= len || t[i] != '"') {
    f.reason = R_KEY;
    goto bad;
  }
  m->key.off = i;
  if (skip_string(t, len, &i, &f) != FLOSSE_OK) return fail(sc, f, err, errlen);
  m->key.len = i - m->key.off;
  i = skip_ws(t, len, i);
  if (i >= len || t[i] != ':') {
    f.reason = R_COLON;
    goto bad;
  }
  i = skip_ws(t, len, i + 1);
  m->value.off = i;
  if (skip_value(t, len, &i, &f) != FLOSSE_OK) return fail(sc, f, err, errlen);
  m->value.len = i - m->value.off;
  sc->pos = i;
  sc->state = ST_AFTER;
  return 1;

end:
  i = skip_ws(t, len, i + 1);
  if (i < len) {
    f.reason = R_TRAILING;
    goto bad;
  }
  sc->pos = i;
  sc->state = ST_END;
  return 0;

bad:
  f.at = i;
  return fail(sc, f, err, errlen);
}
