/* Unit tests of core/redact.c: credentials in the query never reach a log
 * line. Prints TAP: one "ok N - redact: ..." or "not ok N - ..." line a check.
 *   cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -g \
 *     -fsanitize=address,undefined -o build/test/redact_test spec/c/redact_test.c core/redact.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/redact.h"

#define TAP_PREFIX "redact"
#include "tap.h"

#define E FLOSSE_REDACT_MARK

static struct flosse_redact names(const char *a, const char *b) {
  struct flosse_redact r;
  flosse_redact_init(&r);
  if (a) flosse_redact_add(&r, a, strlen(a));
  if (b) flosse_redact_add(&r, b, strlen(b));
  return r;
}

/* Redacts url into a buffer of cap bytes (plus guard bytes) and compares. */
static void check_url(const struct flosse_redact *r, const char *url, size_t cap, const char *want,
                      const char *what) {
  char *out = malloc(cap + 8);
  memset(out, '#', cap + 8);
  size_t n = flosse_redact_url(r, url, strlen(url), out, cap);
  int guard = 1;
  for (size_t i = cap; i < cap + 8; i++) guard = guard && out[i] == '#';
  char detail[1024];
  snprintf(detail, sizeof detail, "got [%.*s] (%zu bytes), want [%s]", (int)(n <= cap ? n : cap), out, n, want);
  check(n <= cap && guard && n == strlen(want) && memcmp(out, want, n) == 0, what, detail);
  free(out);
}

static void test_values(void) {
  struct flosse_redact tok = names("token", NULL);
  check_url(&tok, "/sse/private/?token=abc123&x=1", 200, "/sse/private/?token=" E "&x=1",
            "the named parameter's value becomes an ellipsis, the others stay");
  check_url(&tok, "/sse/?x=1&token=abc", 200, "/sse/?x=1&token=" E, "a last parameter");
  check_url(&tok, "/sse/?token=a&token=b&token=c", 200, "/sse/?token=" E "&token=" E "&token=" E,
            "repeated parameters: all redacted");
  check_url(&tok, "/sse/?%74oken=abc&tok%65n=d&%74%6F%6b%65%6e=e", 200,
            "/sse/?%74oken=" E "&tok%65n=" E "&%74%6F%6b%65%6e=" E,
            "percent-encoded names are decoded before comparing (either case)");
  check_url(&tok, "/sse/?token=a=b=c&x", 200, "/sse/?token=" E "&x", "the value runs from the first '=' to '&'");
  check_url(&tok, "/sse/?token=&token&x=token", 200, "/sse/?token=&token&x=token",
            "an empty or missing value stays; a value that says token is not a name");
  check_url(&tok, "/sse/?tokens=a&atoken=b&Token=c&token%20=d", 200, "/sse/?tokens=a&atoken=b&Token=c&token%20=d",
            "names match exactly (case and length)");
  check_url(&tok, "/sse/?%zz=1&%=2&%7=3", 200, "/sse/?%zz=1&%=2&%7=3", "malformed escapes are kept, as request.lua does");
  check_url(&tok, "/token=abc?x=1", 200, "/token=abc?x=1", "the path is not the query");
  check_url(&tok, "/sse/?a=1&&&token=s&&", 200, "/sse/?a=1&&&token=" E "&&", "empty pairs are kept as they came");
  check_url(&tok, "/sse/?x=1#token=abc", 200, "/sse/?x=1#token=abc",
            "the fragment is not the query (request.lua drops it first)");
  check_url(&tok, "/sse/?token=abc#frag", 200, "/sse/?token=" E "#frag", "a value ends at the fragment");
  check_url(&tok, "http://example.com/sse/?token=abc", 200, "http://example.com/sse/?token=" E,
            "an absolute-form target");
  check_url(&tok, "/plain/path/", 200, "/plain/path/", "no query: the target as it came");

  struct flosse_redact sp = names("access token", "token");
  check_url(&sp, "/?access+token=1&access%20token=2&token=3", 200, "/?access+token=" E "&access%20token=" E "&token=" E,
            "'+' is a space in a name, as in request.unquote(name, true); two names");
  struct flosse_redact plus = names("a+b", NULL);
  check_url(&plus, "/?a%2Bb=1&a+b=2", 200, "/?a%2Bb=" E "&a+b=2", "\"%2B\" is a '+', and '+' is not");

  struct flosse_redact none;
  flosse_redact_init(&none);
  check_url(&none, "/?token=abc", 200, "/?token=abc", "an empty list redacts nothing");
}

static void test_cut(void) {
  struct flosse_redact tok = names("token", NULL);
  /* the value straddles the cut: never half kept */
  char url[400], want[400];
  memset(url, 0, sizeof url);
  strcpy(url, "/sse/?pad=");
  size_t p = strlen(url);
  memset(url + p, 'p', 180 - p);
  strcpy(url + 180, "&token=SECRETSECRETSECRETSECRETSECRET");
  snprintf(want, sizeof want, "%.*s&token=" E, 180, url);
  check_url(&tok, url, 200, want, "a token across the 200-byte cut: redacted before the cut");
  /* the mark itself does not fit: cut before it */
  check_url(&tok, "/?token=SECRET", 9, "/?token=", "a mark that does not fit is left out, never cut");
  check_url(&tok, "/?token=SECRET", 10, "/?token=", "a mark is never cut (2 of its 3 bytes)");
  check_url(&tok, "/?token=SECRET", 11, "/?token=" E, "a mark that just fits");
  check_url(&tok, "/?x=SECRET", 5, "/?x=S", "other values are cut like the rest");
  /* expansion: one-byte values become three-byte marks, within cap */
  check_url(&tok, "/?token=a&token=b&token=c&token=d", 24, "/?token=" E "&token=" E "&to",
            "marks longer than the values they replace: still within the cap");
  check_url(&tok, "/?token=x", 0, "", "a cap of 0");
}

static void test_list(void) {
  struct flosse_redact r;
  flosse_redact_init(&r);
  char name[80];
  int ok = 1;
  for (int i = 0; i < FLOSSE_REDACT_MAX_NAMES; i++) {
    snprintf(name, sizeof name, "n%d", i);
    ok = ok && flosse_redact_add(&r, name, strlen(name)) == FLOSSE_OK;
  }
  ok = ok && flosse_redact_add(&r, "n3", 2) == FLOSSE_OK && r.n == FLOSSE_REDACT_MAX_NAMES && !r.all;
  check(ok, "16 names fit, and a name already there is not added twice", NULL);
  check(flosse_redact_add(&r, "n16", 3) == FLOSSE_ERR && r.all, "a 17th name: every value is redacted", NULL);
  check_url(&r, "/?a=1&b=&c=3", 200, "/?a=" E "&b=&c=" E, "all: every non-empty value redacted");

  struct flosse_redact longn;
  flosse_redact_init(&longn);
  memset(name, 'x', sizeof name);
  check(flosse_redact_add(&longn, name, 64) == FLOSSE_OK && !longn.all, "a 64-byte name fits", NULL);
  char url[200];
  snprintf(url, sizeof url, "/?%.*s=1&%.*s=2", 64, name, 65, name);
  char want[200];
  snprintf(want, sizeof want, "/?%.*s=" E "&%.*s=2", 64, name, 65, name);
  check_url(&longn, url, 200, want, "a 64-byte name matches; a 65-byte one does not");
  check(flosse_redact_add(&longn, name, 65) == FLOSSE_ERR && longn.all, "a 65-byte name: every value is redacted",
        NULL);
}

int main(void) {
  test_values();
  test_cut();
  test_list();
  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
