/* Unit tests of core/cidr.c: addresses and blocks of trusted_proxies.
 * Prints TAP: one "ok N - cidr: ..." or "not ok N - ..." line a check.
 *   cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -g \
 *     -fsanitize=address,undefined -o build/test/cidr_test spec/c/cidr_test.c core/cidr.c
 */
#include <stdio.h>
#include <string.h>

#include "../../core/cidr.h"

#define TAP_PREFIX "cidr"
#include "tap.h"

static int in(const char *block, const char *addr) {
  struct flosse_cidr b, a;
  if (flosse_cidr_parse(block, strlen(block), &b) != FLOSSE_OK) return -1;
  if (flosse_cidr_addr(addr, strlen(addr), &a) != FLOSSE_OK) return -2;
  return flosse_cidr_contains(&b, &a);
}

static void check_in(const char *block, const char *addr, int want) {
  char what[160], detail[64];
  int got = in(block, addr);
  snprintf(what, sizeof what, "%s %s %s", addr, want ? "is in" : "is not in", block);
  snprintf(detail, sizeof detail, "got %d", got);
  check(got == want, what, detail);
}

static void check_bad_block(const char *block) {
  struct flosse_cidr b;
  char what[160];
  snprintf(what, sizeof what, "[%s] is not an address or CIDR", block);
  check(flosse_cidr_parse(block, strlen(block), &b) == FLOSSE_ERR, what, NULL);
}

static void check_bad_addr(const char *addr) {
  struct flosse_cidr a;
  char what[160];
  snprintf(what, sizeof what, "[%s] is not an address", addr);
  check(flosse_cidr_addr(addr, strlen(addr), &a) == FLOSSE_ERR, what, NULL);
}

static void check_format(const char *addr, const char *want) {
  struct flosse_cidr a;
  char out[64] = "", what[160];
  int ok = flosse_cidr_addr(addr, strlen(addr), &a) == FLOSSE_OK &&
           flosse_cidr_format(&a, out, sizeof out) == FLOSSE_OK;
  snprintf(what, sizeof what, "[%s] reads as %s", addr, want);
  check(ok && strcmp(out, want) == 0, what, out);
}

int main(void) {
  check_in("127.0.0.1", "127.0.0.1", 1);
  check_in("127.0.0.1", "127.0.0.2", 0);
  check_in("10.0.0.0/8", "10.255.3.4", 1);
  check_in("10.0.0.0/8", "11.0.0.1", 0);
  check_in("10.1.2.3/8", "10.9.9.9", 1); /* host bits past the prefix are cleared */
  check_in("192.168.1.128/25", "192.168.1.200", 1);
  check_in("192.168.1.128/25", "192.168.1.127", 0);
  check_in("0.0.0.0/0", "203.0.113.7", 1);
  check_in("0.0.0.0/0", "2001:db8::1", 0); /* another family never matches */
  check_in("::1", "::1", 1);
  check_in("::1", "::2", 0);
  check_in("fd00::/8", "fd12:3456::1", 1);
  check_in("fd00::/8", "fe80::1", 0);
  check_in("2001:db8::/33", "2001:db8:7fff::1", 1);
  check_in("2001:db8::/33", "2001:db8:8000::1", 0);
  check_in("::/0", "2001:db8::1", 1);
  check_in("10.0.0.0/8", "::ffff:10.1.2.3", 1); /* a dual-stack socket's IPv4 peer */
  check_in("::ffff:10.0.0.0/104", "10.1.2.3", 1);
  check_in("::ffff:10.0.0.0/104", "11.1.2.3", 0);
  check_in("10.0.0.0/32", "10.0.0.0", 1);

  check_bad_block("10.0.0.0/33");
  check_bad_block("::/129");
  check_bad_block("10.0.0.0/");
  check_bad_block("10.0.0.0/8/8");
  check_bad_block("10.0.0.0/-1");
  check_bad_block("10.0.0.0/ 8");
  check_bad_block("10.0.0.0/0008");
  check_bad_block("10.0.0/8");
  check_bad_block("");
  check_bad_block("/8");
  check_bad_block("::ffff:10.0.0.0/80");
  check_bad_block("localhost");

  check_bad_addr("");
  check_bad_addr("1.2.3.4:80");
  check_bad_addr("[::1]");
  check_bad_addr(" 1.2.3.4");
  check_bad_addr("1.2.3.4 ");
  check_bad_addr("01.2.3.4"); /* inet_pton takes no octal forms */
  check_bad_addr("1.2.3");
  check_bad_addr("unknown");
  check_bad_addr("_hidden");
  check_bad_addr("fe80::1%eth0");
  check_bad_addr("1.2.3.4/32"); /* an address, not a block */
  struct flosse_cidr a;
  check(flosse_cidr_addr("1.2.3.4\0x", 9, &a) == FLOSSE_ERR, "a NUL inside is not an address", NULL);
  char longer[100];
  memset(longer, '1', sizeof longer);
  check(flosse_cidr_addr(longer, sizeof longer, &a) == FLOSSE_ERR, "100 bytes are not an address", NULL);

  check_format("2001:DB8:0:0::1", "2001:db8::1");
  check_format("::ffff:192.0.2.1", "192.0.2.1");
  check_format("203.0.113.7", "203.0.113.7");
  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
