/* Unit tests of core/log.c's JSON escape: whatever bytes a client sent, a
 * JSON log line stays valid JSON and valid UTF-8.
 * Prints TAP: one "ok N - log: ..." or "not ok N - ..." line a check.
 *   cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -g \
 *     -fsanitize=address,undefined -o build/test/log_test spec/c/log_test.c core/log.c -lpthread
 */
#include <stdio.h>
#include <string.h>

#include "../../core/log.h"

#define TAP_PREFIX "log"
#include "tap.h"

static void check_escape(const char *in, size_t len, const char *want, const char *what) {
  char out[6 * 64 + 1];
  size_t n = flosse_log_json_escape(out, in, len);
  out[n] = '\0';
  check(n <= 6 * len && strcmp(out, want) == 0, what, out);
}

int main(void) {
  check_escape("plain /path?a=1", 15, "plain /path?a=1", "ASCII passes as it is");
  check_escape("a\"b\\c", 5, "a\\\"b\\\\c", "quotes and backslashes are escaped");
  check_escape("l1\nl2\tx", 7, "l1\\nl2\\tx", "newline and tab");
  check_escape("\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f", "other control characters as \\u00XX");
  check_escape("a\0b", 3, "a\\u0000b", "a NUL inside");
  check_escape("caf\xc3\xa9", 5, "caf\xc3\xa9", "well-formed 2-byte UTF-8 passes");
  check_escape("\xe2\x82\xac\xf0\x9f\x98\x80", 7, "\xe2\x82\xac\xf0\x9f\x98\x80", "3- and 4-byte UTF-8 pass");
  check_escape("\xff\xfe", 2, "\\ufffd\\ufffd", "bytes that never start UTF-8 become U+FFFD");
  check_escape("\xc0\xaf", 2, "\\ufffd\\ufffd", "an overlong '/' is not let through");
  check_escape("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd", "a surrogate's encoding is refused");
  check_escape("\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd", "above U+10FFFF is refused");
  check_escape("\xc3", 1, "\\ufffd", "a sequence cut at the end");
  check_escape("\xe2\x82x", 3, "\\ufffd\\ufffdx", "a sequence cut by ASCII");
  char all[256], out[6 * 256 + 1];
  for (int i = 0; i < 256; i++) all[i] = (char)i;
  size_t n = flosse_log_json_escape(out, all, sizeof all);
  check(n <= 6 * sizeof all, "every byte value fits the promised room", NULL);
  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
