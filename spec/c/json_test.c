/* Unit tests of core/json.c (numbers, string escapes, the member scanner).
 * Prints TAP: one "ok N - json: ..." or "not ok N - json: ..." line a check.
 *
 * Build and run (from the checkout's root):
 *   mkdir -p build/test && cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -g \
 *     -fsanitize=address,undefined -fno-omit-frame-pointer \
 *     -o build/test/json_test spec/c/json_test.c core/json.c -lm && build/test/json_test
 * The locale checks need a locale whose decimal point is not '.'; without one
 * they are skipped. To run them without installing locales:
 *   mkdir -p build/test/locale && localedef -i de_DE -f UTF-8 build/test/locale/de_DE.UTF-8
 *   localedef -i ps_AF -f UTF-8 build/test/locale/ps_AF.UTF-8
 *   LOCPATH=build/test/locale build/test/json_test
 */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/json.h"

#define TAP_PREFIX "json"
#include "tap.h"

static void skip(const char *what, const char *why) {
  n_checks++;
  printf("ok %d - json: %s # SKIP %s\n", n_checks, what, why);
}

/* ---- numbers ------------------------------------------------------------- */

static void check_int(int64_t v, const char *want) {
  char out[FLOSSE_JSON_NUMBER_MAX], what[96], detail[96];
  memset(out, 'x', sizeof out);
  size_t n = flosse_json_integer(out, v);
  snprintf(what, sizeof what, "integer %s", want);
  snprintf(detail, sizeof detail, "got [%s] (%zu)", out, n);
  check(n == strlen(want) && strcmp(out, want) == 0, what, detail);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void check_double(double v, const char *want, const char *label) {
  char out[FLOSSE_JSON_NUMBER_MAX], what[128], detail[128];
  size_t n = flosse_json_double(out, v);
  snprintf(what, sizeof what, "double %s is %s", label, want);
  snprintf(detail, sizeof detail, "got [%s] (%zu)", out, n);
  check(n == strlen(want) && strcmp(out, want) == 0 && same_bits(strtod(out, NULL), v), what,
        detail);
}

/* Significant digits of a number text: leading zeros and the zeros that
 * only place the point (trailing zeros of an integer part) do not count. */
static int sig_digits(const char *s) {
  char d[40];
  int n = 0;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9' && n < 39) d[n++] = *s;
  int lo = 0;
  while (lo < n && d[lo] == '0') lo++;
  while (n > lo && d[n - 1] == '0') n--;
  return n - lo;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ULL;
}

/* One double: reads back, has the fewest digits (no fewer reads back), and
 * is printed as %.14g (lua-cjson) when 14 digits or fewer suffice, else as
 * %.<digits>g. Returns 1 if all holds; fills why otherwise. */
static int good_double(double v, char *why, size_t whylen) {
  char out[FLOSSE_JSON_NUMBER_MAX], ref[400];
  size_t n = flosse_json_double(out, v);
  if (n == 0 || n != strlen(out)) {
    snprintf(why, whylen, "%.17g: no text", v);
    return 0;
  }
  if (strspn(out, "0123456789.e+-") != n) {
    snprintf(why, whylen, "%.17g: [%s] has other bytes", v, out);
    return 0;
  }
  if (!same_bits(strtod(out, NULL), v)) {
    snprintf(why, whylen, "%.17g: [%s] does not read back", v, out);
    return 0;
  }
  int p = sig_digits(out);
  if (p < 1) p = 1;
  if (p > 1) {
    snprintf(ref, sizeof ref, "%.*g", p - 1, v);
    if (same_bits(strtod(ref, NULL), v)) {
      snprintf(why, whylen, "%.17g: [%s] but [%s] reads back too", v, out, ref);
      return 0;
    }
  }
  int subnormal = fabs(v) < DBL_MIN && v != 0;
  if (fabs(v) <= 9007199254740992.0 && v == floor(v))
    snprintf(ref, sizeof ref, "%.0f", v); /* the integer in full */
  else
    snprintf(ref, sizeof ref, "%.*g", subnormal ? p : (p < 14 ? 14 : p), v);
  if (strcmp(ref, out) != 0) {
    snprintf(why, whylen, "%.17g: [%s], want [%s]", v, out, ref);
    return 0;
  }
  return 1;
}

static void test_numbers(void) {
  check_int(0, "0");
  check_int(-1, "-1");
  check_int(1, "1");
  check_int(9, "9");
  check_int(10, "10");
  check_int(99, "99");
  check_int(100, "100");
  check_int(-100, "-100");
  check_int(1796150648138900LL, "1796150648138900");
  check_int(INT64_MAX, "9223372036854775807");
  check_int(INT64_MIN, "-9223372036854775808");
  check_int(INT64_MIN + 1, "-9223372036854775807");

  check_double(0.1, "0.1", "0.1");
  check_double(1.0 / 3, "0.3333333333333333", "1/3");
  check_double(2.0 / 3, "0.6666666666666666", "2/3");
  check_double(5e-324, "5e-324", "5e-324");
  check_double(-5e-324, "-5e-324", "-5e-324");
  check_double(2.5e-323, "2.5e-323", "2.5e-323");
  check_double(9007199254740992.0, "9007199254740992", "2^53");
  check_double(9007199254740993.0, "9007199254740992", "2^53 + 1 (is 2^53)");
  check_double(1e300, "1e+300", "1e300");
  check_double(-0.0, "-0", "-0.0");
  check_double(0.0, "0", "0.0");
  check_double(1.0, "1", "1.0");
  check_double(-1.0, "-1", "-1.0");
  check_double(50.0, "50", "50.0");
  check_double(100.0, "100", "100.0 (not 1e+02)");
  check_double(99999999999999.0, "99999999999999", "99999999999999.0");
  check_double(1e14, "100000000000000", "1e14 (an integer up to 2^53)");
  check_double(123456789012345.0, "123456789012345", "123456789012345.0");
  check_double(1e15, "1000000000000000", "1e15");
  check_double(1e16, "1e+16", "1e16 (above 2^53: as %.14g)");
  check_double(18014398509481984.0, "18014398509481984", "2^54 (17 digits)");
  check_double(1.5e15 + 0.5, "1500000000000000.5", "1.5e15 + 0.5");
  check_double(1234.5, "1234.5", "1234.5");
  check_double(1e21, "1e+21", "1e21");
  check_double(1e-7, "1e-07", "1e-7 (printf's exponent)");
  check_double(0.0001, "0.0001", "0.0001");
  check_double(1e-5, "1e-05", "1e-5");
  check_double(123456789012345680.0, "1.2345678901234568e+17", "123456789012345680");
  check_double(0.1 + 0.2, "0.30000000000000004", "0.1 + 0.2");
  check_double(-1.5, "-1.5", "-1.5");
  check_double(3.14159, "3.14159", "3.14159");
  check_double(1796150648138900.0, "1796150648138900", "1796150648138900.0");
  check_double(9223372036854775808.0, "9.223372036854776e+18", "2^63");
  check_double(DBL_MAX, "1.7976931348623157e+308", "DBL_MAX");
  check_double(DBL_MIN, "2.2250738585072014e-308", "DBL_MIN");
  check_double(4.9406564584124654e-324 * 3, "1.5e-323", "3 * 5e-324");

  char out[FLOSSE_JSON_NUMBER_MAX];
  check(flosse_json_double(out, NAN) == 0 && out[0] == '\0', "NaN is refused", NULL);
  check(flosse_json_double(out, -NAN) == 0, "-NaN is refused", NULL);
  check(flosse_json_double(out, INFINITY) == 0 && out[0] == '\0', "Infinity is refused", NULL);
  check(flosse_json_double(out, -INFINITY) == 0, "-Infinity is refused", NULL);

  /* random doubles from all bit patterns, then short decimals */
  char why[256] = "";
  int bad = 0, tried = 0;
  for (int i = 0; i < 200000 && !bad; i++) {
    uint64_t bits = next_rand();
    double v;
    memcpy(&v, &bits, sizeof v);
    if (!isfinite(v)) continue;
    tried++;
    if (!good_double(v, why, sizeof why)) bad = 1;
  }
  check(!bad && tried > 190000, "random bit patterns read back, shortest, as %.14g when it can",
        why);
  bad = 0;
  for (int i = 0; i < 100000 && !bad; i++) {
    double v = (double)(int64_t)(next_rand() % 100000000) / pow(10, (double)(next_rand() % 30));
    if (next_rand() & 1) v = -v;
    if (!good_double(v, why, sizeof why)) bad = 1;
  }
  check(!bad, "random short decimals read back, shortest, as %.14g", why);
  bad = 0;
  for (int i = 0; i < 20000 && !bad; i++) {
    uint64_t bits = next_rand() & 0x000fffffffffffffULL; /* subnormals */
    double v;
    memcpy(&v, &bits, sizeof v);
    if (!good_double(v, why, sizeof why)) bad = 1;
  }
  check(!bad, "random subnormals read back in the fewest digits", why);
  bad = 0;
  for (int i = 0; i < 100000 && !bad; i++) {
    double v = ldexp((double)(next_rand() >> 11), (int)(next_rand() % 40)); /* big integral */
    if (!good_double(v, why, sizeof why)) bad = 1;
  }
  check(!bad, "random integral doubles read back, shortest", why);
  bad = 0;
  for (int i = 0; i < 200000 && !bad; i++) { /* decimals of 12 to 17 digits */
    uint64_t bits = next_rand();
    double v;
    memcpy(&v, &bits, sizeof v);
    if (!isfinite(v)) continue;
    char text[64];
    snprintf(text, sizeof text, "%.*e", 11 + (int)(next_rand() % 6), ldexp(v, -(int)(next_rand() % 900)));
    v = strtod(text, NULL);
    if (!good_double(v, why, sizeof why)) bad = 1;
  }
  check(!bad, "random decimals of 12 to 17 digits read back, shortest", why);
  bad = 0;
  for (int e = -12; e <= 16 && !bad; e++) { /* around powers of ten */
    for (int d = -40; d <= 40 && !bad; d++) {
      double v = pow(10, e);
      for (int k = 0; k < (d < 0 ? -d : d); k++) v = nextafter(v, d < 0 ? 0 : INFINITY);
      if (!good_double(v, why, sizeof why) || !good_double(-v, why, sizeof why)) bad = 1;
    }
  }
  check(!bad, "doubles a few ulps around powers of ten read back, shortest", why);
}

/* The decimal point of the current locale does not leak into the text. */
static void test_locale(const char *name) {
  char what[96];
  snprintf(what, sizeof what, "numbers use '.' in the %s locale", name);
  if (!setlocale(LC_NUMERIC, name)) {
    skip(what, "locale not available (see LOCPATH at the top of this file)");
    return;
  }
  const char *point = localeconv()->decimal_point;
  char out[5][FLOSSE_JSON_NUMBER_MAX];
  double vs[5] = {0.5, 1.0 / 3, -2.5e-7, 1.2345678901234568e+17, 5e-324};
  for (int i = 0; i < 5; i++) flosse_json_double(out[i], vs[i]);
  int native = strcmp(point, ".") != 0;
  setlocale(LC_NUMERIC, "C");
  char detail[256];
  snprintf(detail, sizeof detail, "point [%s]: %s %s %s %s %s", point, out[0], out[1], out[2],
           out[3], out[4]);
  check(native && strcmp(out[0], "0.5") == 0 && strcmp(out[1], "0.3333333333333333") == 0 &&
            strcmp(out[2], "-2.5e-07") == 0 && strcmp(out[3], "1.2345678901234568e+17") == 0 &&
            strcmp(out[4], "5e-324") == 0,
        what, detail);
}

/* ---- strings ------------------------------------------------------------- */

/* lua-cjson 2.1.0's char2escape, written out from its rules. */
static const char *cjson_escape(unsigned char c, char tmp[8]) {
  switch (c) {
  case '"': return "\\\"";
  case '\\': return "\\\\";
  case '/': return "\\/";
  case '\b': return "\\b";
  case '\f': return "\\f";
  case '\n': return "\\n";
  case '\r': return "\\r";
  case '\t': return "\\t";
  default:
    if (c < 0x20 || c == 0x7f) {
      snprintf(tmp, 8, "\\u%04x", c);
      return tmp;
    }
    tmp[0] = (char)c;
    tmp[1] = '\0';
    return tmp;
  }
}

static void test_strings(void) {
  /* every byte alone */
  int bad = 0;
  char detail[320] = "";
  for (int c = 0; c < 256 && !bad; c++) {
    char in = (char)c, out[8], tmp[8];
    size_t n = flosse_json_escape(out, &in, 1);
    const char *want = cjson_escape((unsigned char)c, tmp);
    size_t wl = c == 0 ? 6 : strlen(want);
    if (n != wl || memcmp(out, want, n) != 0) {
      bad = 1;
      snprintf(detail, sizeof detail, "byte 0x%02x: got %zu bytes", c, n);
    }
  }
  check(!bad, "each of the 256 bytes escaped as cjson 2.1.0 does", detail);

  /* all bytes in one string, against the concatenation */
  char in[512], want[6 * 512 + 2], got[6 * 512 + 2], tmp[8];
  size_t wl = 0;
  want[wl++] = '"';
  for (int i = 0; i < 512; i++) {
    in[i] = (char)(i & 255);
    const char *e = cjson_escape((unsigned char)in[i], tmp);
    size_t el = (i & 255) == 0 ? 6 : strlen(e);
    memcpy(want + wl, e, el);
    wl += el;
  }
  want[wl++] = '"';
  size_t gl = flosse_json_string(got, in, sizeof in);
  check(gl == wl && memcmp(got, want, wl) == 0, "a string of every byte, twice, byte for byte",
        NULL);
  check(gl <= FLOSSE_JSON_STRING_MAX(sizeof in), "FLOSSE_JSON_STRING_MAX bounds it", NULL);

  struct { const char *in, *out, *what; } cases[] = {
      {"", "\"\"", "the empty string"},
      {"hello", "\"hello\"", "plain ASCII as it is"},
      {"a/b", "\"a\\/b\"", "'/' is written \\/ (cjson does, the README says so)"},
      {"\x1a\x1f\x7f", "\"\\u001a\\u001f\\u007f\"", "\\u00xx in lowercase hex"},
      {"\x0b", "\"\\u000b\"", "vertical tab as \\u000b (no \\v)"},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
       "UTF-8 as it is"},
      {"\xff\xfe\x80", "\"\xff\xfe\x80\"", "invalid UTF-8 as it is"},
      {"\"\\\b\f\n\r\t", "\"\\\"\\\\\\b\\f\\n\\r\\t\"", "the named escapes"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = strlen(cases[i].in);
    char *src = malloc(len + 1); /* exact size: ASan sees an over-read */
    memcpy(src, cases[i].in, len);
    char out2[256];
    size_t n = flosse_json_string(out2, src, len);
    out2[n] = '\0';
    snprintf(detail, sizeof detail, "got [%s]", out2);
    check(n == strlen(cases[i].out) && strcmp(out2, cases[i].out) == 0, cases[i].what, detail);
    free(src);
  }
  char nul[3] = {'a', '\0', 'b'}, out3[32];
  size_t n = flosse_json_string(out3, nul, 3);
  check(n == 10 && memcmp(out3, "\"a\\u0000b\"", 10) == 0, "an embedded NUL is \\u0000", NULL);
}

/* ---- the member scanner -------------------------------------------------- */

/* Scans text (copied to a block of its exact size) and writes the members
 * as key=value lines, "END" or "ERR <message>" into out. */
static int scan(const char *text, size_t len, char *out, size_t cap) {
  char *t = malloc(len ? len : 1);
  memcpy(t, text, len);
  struct flosse_json_scan sc;
  struct flosse_json_member m;
  char err[128];
  size_t o = 0;
  int rc = flosse_json_scan_init(&sc, t, len, err, sizeof err);
  int members = 0;
  if (rc == FLOSSE_OK) {
    while ((rc = flosse_json_scan_next(&sc, &m, err, sizeof err)) == 1) {
      members++;
      if (m.key.off + m.key.len > len || m.value.off + m.value.len > len) {
        rc = -2;
        break;
      }
      o += (size_t)snprintf(out + o, cap - o, "%.*s=%.*s\n", (int)m.key.len, t + m.key.off,
                            (int)m.value.len, t + m.value.off);
      if (o >= cap) o = cap - 1;
    }
  }
  if (rc == 0) {
    snprintf(out + o, cap - o, "END");
    /* and it stays at the end */
    if (flosse_json_scan_next(&sc, &m, err, sizeof err) != 0) rc = -3;
  } else if (rc == FLOSSE_ERR) {
    char again[128];
    snprintf(out + o, cap - o, "ERR %s", err);
    if (flosse_json_scan_next(&sc, &m, again, sizeof again) != FLOSSE_ERR ||
        strcmp(again, err) != 0)
      rc = -3;
  }
  free(t);
  return rc == 0 || rc == FLOSSE_ERR ? members : -1;
}

static void check_scan(const char *text, const char *want, const char *what) {
  char out[2048], detail[2300];
  int n = scan(text, strlen(text), out, sizeof out);
  snprintf(detail, sizeof detail, "got [%s] (%d)", out, n);
  check(n >= 0 && strcmp(out, want) == 0, what, detail);
}

static void check_scan_err(const char *text, size_t len, const char *reason, const char *what) {
  char out[2048], detail[2300];
  int n = scan(text, len, out, sizeof out);
  snprintf(detail, sizeof detail, "got [%s] (%d)", out, n);
  check(n >= 0 && strstr(out, "ERR malformed JSON object at byte ") && strstr(out, reason), what,
        detail);
}

#define SCAN_ERR(lit, reason, what) check_scan_err(lit, sizeof(lit) - 1, reason, what)

static void test_scanner(void) {
  check_scan("{}", "END", "scan: the empty object");
  check_scan(" \t\r\n{ \t\r\n} \t\r\n", "END", "scan: the empty object in whitespace");
  check_scan("{\"a\":1}", "\"a\"=1\nEND", "scan: one member");
  check_scan("{\"a\":1,\"b\":\"x\",\"c\":null,\"d\":true,\"e\":false,\"f\":-1.5e+3}",
             "\"a\"=1\n\"b\"=\"x\"\n\"c\"=null\n\"d\"=true\n\"e\"=false\n\"f\"=-1.5e+3\nEND",
             "scan: scalars as written");
  check_scan("{\"ts\":1796150648138900,\"x\":0.10000000000000000555}",
             "\"ts\"=1796150648138900\n\"x\"=0.10000000000000000555\nEND",
             "scan: numbers keep every digit the client sent");
  check_scan("{ \"a\" :\t{\"b\" : [1, {\"c\": \"]}\"}, [ ] ]} ,\n\"d\"\r\n:\n[\"{\", \"[\"]\n}",
             "\"a\"={\"b\" : [1, {\"c\": \"]}\"}, [ ] ]}\n\"d\"=[\"{\", \"[\"]\nEND",
             "scan: nested values with brackets in strings and whitespace everywhere");
  check_scan("{\"k\\\"ey\":\"v\\\\\",\"\\\\\":\"\\\"}\\\"\",\"\\u00e9\":\"\\/\"}",
             "\"k\\\"ey\"=\"v\\\\\"\n\"\\\\\"=\"\\\"}\\\"\"\n\"\\u00e9\"=\"\\/\"\nEND",
             "scan: escaped quotes and backslashes in keys and values");
  check_scan("{\"a\":1,\"a\":2}", "\"a\"=1\n\"a\"=2\nEND", "scan: duplicate keys both reported");
  check_scan("{\"a\":nan,\"b\":-inf,\"c\":0x1p3,\"d\":Infinity,\"e\":nan(x_1)}",
             "\"a\"=nan\n\"b\"=-inf\n\"c\"=0x1p3\n\"d\"=Infinity\n\"e\"=nan(x_1)\nEND",
             "scan: the numbers cjson's strtod also takes");
  check_scan("{\"a\":\"raw \x01 control\"}", "\"a\"=\"raw \x01 control\"\nEND",
             "scan: raw control bytes in a string (cjson takes them)");
  check_scan("{\"\xc3\xa9\":\"\xff\"}", "\"\xc3\xa9\"=\"\xff\"\nEND",
             "scan: bytes >= 0x80 in strings");

  SCAN_ERR("", "expected '{'", "scan: the empty text is refused");
  SCAN_ERR("  ", "expected '{'", "scan: whitespace alone is refused");
  SCAN_ERR("[1]", "expected '{'", "scan: an array is refused");
  SCAN_ERR("\"a\"", "expected '{'", "scan: a string is refused");
  SCAN_ERR("{", "a key", "scan: an open object");
  SCAN_ERR("{\"a\"", "expected ':'", "scan: a key alone");
  SCAN_ERR("{\"a\":", "expected a value", "scan: no value");
  SCAN_ERR("{\"a\":}", "expected a value", "scan: '}' for a value");
  SCAN_ERR("{\"a\":1", "expected ',' or '}'", "scan: no '}'");
  SCAN_ERR("{\"a\":1,}", "a key", "scan: a trailing comma");
  SCAN_ERR("{,}", "a key", "scan: a comma alone");
  SCAN_ERR("{\"a\" 1}", "expected ':'", "scan: no colon");
  SCAN_ERR("{\"a\":1 \"b\":2}", "expected ',' or '}'", "scan: no comma");
  SCAN_ERR("{\"a\":1}x", "bytes after the object", "scan: trailing bytes");
  SCAN_ERR("{\"a\":1}{}", "bytes after the object", "scan: two objects");
  SCAN_ERR("{\"a\":1}\0", "bytes after the object", "scan: a NUL after the object");
  SCAN_ERR("{\"a\":\"abc}", "string not closed", "scan: an unclosed string");
  SCAN_ERR("{\"a\":\"abc\\\"}", "string not closed", "scan: an escaped closing quote");
  SCAN_ERR("{\"a\":\"abc\\", "string not closed", "scan: a backslash at the end");
  SCAN_ERR("{\"ab", "string not closed", "scan: an unclosed key");
  SCAN_ERR("{\"a\":\"x\0y\"}", "NUL byte", "scan: a NUL in a string");
  SCAN_ERR("{\"a\":\"x\\\0y\"}", "NUL byte", "scan: an escaped NUL");
  SCAN_ERR("{\"a\":[1,2}", "brackets do not match", "scan: [ closed by }");
  SCAN_ERR("{\"a\":{\"b\":1]}", "brackets do not match", "scan: { closed by ]");
  SCAN_ERR("{\"a\":[[1]", "value not closed", "scan: an unclosed array");
  SCAN_ERR("{\"a\":[1,\"]\"", "value not closed", "scan: an unclosed array (string)");
  SCAN_ERR("{\"a\":#}", "expected a value", "scan: a byte no value starts with");
  SCAN_ERR("{\"a\":[1,#]}", "unexpected byte", "scan: a stray byte in a nested value");
  SCAN_ERR("{\"a\":[\xc3\xa9]}", "unexpected byte", "scan: UTF-8 outside a string");
  SCAN_ERR("{\"a\":[1,\0]}", "NUL byte", "scan: a NUL in a nested value");
  SCAN_ERR("{\"a\":1}}", "bytes after the object", "scan: an extra '}'");
  SCAN_ERR("{\"a\":1]", "expected ',' or '}'", "scan: ']' closing the object");

  /* nesting: FLOSSE_JSON_SCAN_DEPTH levels are followed, one more is refused */
  size_t depth = FLOSSE_JSON_SCAN_DEPTH;
  char *deep = malloc(2 * depth + 16);
  for (int extra = 0; extra < 2; extra++) {
    size_t d = depth + (size_t)extra, n = 0;
    memcpy(deep, "{\"a\":", 5);
    n = 5;
    for (size_t i = 0; i < d; i++) deep[n++] = (i & 1) ? '{' : '[';
    for (size_t i = d; i-- > 0;) deep[n++] = (i & 1) ? '}' : ']';
    deep[n++] = '}';
    char out[4096];
    int members = scan(deep, n, out, sizeof out);
    if (extra == 0)
      check(members == 1 && strstr(out, "END"), "scan: 1024 nested levels in a value", out);
    else
      check(strstr(out, "nested too deep") != NULL, "scan: 1025 nested levels are refused", out);
  }
  free(deep);

  /* every prefix and every one-byte change of a valid text: no crash, spans
   * in bounds (ASan watches the exact-size copies) */
  const char *good =
      "{\"a\":[1,{\"b\":\"c\\\"]\"}],\"d\":{\"e\":null},\"f\":\"\\\\\",\"g\":-0.5e-3}";
  size_t gl = strlen(good);
  char out[2048];
  int crashed = 0;
  for (size_t cut = 0; cut <= gl; cut++)
    if (scan(good, cut, out, sizeof out) < 0) crashed = 1;
  char *mut = malloc(gl);
  for (size_t i = 0; i < gl; i++) {
    for (int c = 0; c < 256; c += 7) {
      memcpy(mut, good, gl);
      mut[i] = (char)c;
      if (scan(mut, gl, out, sizeof out) < 0) crashed = 1;
    }
  }
  free(mut);
  check(!crashed, "scan: every prefix and many one-byte changes end cleanly", NULL);
  check(scan(good, gl, out, sizeof out) == 4, "scan: the unchanged text has its 4 members", out);
}

int main(void) {
  test_numbers();
  test_locale("de_DE.UTF-8");
  test_locale("ps_AF.UTF-8");
  test_strings();
  test_scanner();
  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
