/* Unit tests of core/clients.c: the process's counts of streams per
 * address and per user, the caps, and the refusals of revoked users.
 * Prints TAP (spec/c/tap.h).
 *
 * Build and run (from the checkout's root):
 *   mkdir -p build/test && cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -g \
 *     -fsanitize=address,undefined -fno-omit-frame-pointer \
 *     -o build/test/clients_test spec/c/clients_test.c core/clients.c -lpthread && build/test/clients_test
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../core/clients.h"

#define TAP_PREFIX "clients"
#include "tap.h"

#define S(x) x, strlen(x)

static void *churn(void *arg) {
  char ip[32];
  int t = *(int *)arg;
  for (int round = 0; round < 200; round++)
    for (int i = 0; i < 50; i++) {
      snprintf(ip, sizeof ip, "10.%d.0.%d", t, i);
      if (flosse_clients_admit(S(ip), 0, S("shared"), 0, 1.0) == FLOSSE_ADMIT_OK)
        flosse_clients_leave(S(ip), S("shared"), 1.0);
    }
  return NULL;
}

int main(void) {
  char detail[200];
  double now = 1000.0;

  /* caps per address */
  check(flosse_clients_admit(S("192.0.2.1"), 2, NULL, 0, 0, now) == FLOSSE_ADMIT_OK, "first stream of an address", NULL);
  check(flosse_clients_admit(S("192.0.2.1"), 2, NULL, 0, 0, now) == FLOSSE_ADMIT_OK, "second stream of an address", NULL);
  check(flosse_clients_admit(S("192.0.2.1"), 2, NULL, 0, 0, now) == FLOSSE_ADMIT_OVER_IP, "the third is over the cap", NULL);
  check(flosse_clients_count('i', S("192.0.2.1")) == 2, "a refused stream is not counted", NULL);
  check(flosse_clients_admit(S("192.0.2.2"), 2, NULL, 0, 0, now) == FLOSSE_ADMIT_OK, "another address is not", NULL);
  flosse_clients_leave(S("192.0.2.1"), NULL, 0, now);
  check(flosse_clients_admit(S("192.0.2.1"), 2, NULL, 0, 0, now) == FLOSSE_ADMIT_OK, "a place freed is taken again", NULL);
  check(flosse_clients_admit(S("192.0.2.1"), 0, NULL, 0, 0, now) == FLOSSE_ADMIT_OK, "no cap: admitted", NULL);
  check(flosse_clients_count('i', S("192.0.2.1")) == 3, "and counted", NULL);
  for (int i = 0; i < 3; i++) flosse_clients_leave(S("192.0.2.1"), NULL, 0, now);
  flosse_clients_leave(S("192.0.2.2"), NULL, 0, now);
  check(flosse_clients_count('i', S("192.0.2.1")) == 0, "all left", NULL);

  /* caps per user, and a user id that equals an address is another key */
  check(flosse_clients_admit(NULL, 0, 0, S("192.0.2.1"), 1, now) == FLOSSE_ADMIT_OK, "a user named like an address", NULL);
  check(flosse_clients_count('i', S("192.0.2.1")) == 0, "is not the address", NULL);
  check(flosse_clients_admit(S("192.0.2.9"), 5, S("192.0.2.1"), 1, now) == FLOSSE_ADMIT_OVER_USER,
        "the user's cap", NULL);
  check(flosse_clients_count('i', S("192.0.2.9")) == 0, "a refusal counts nothing for the address either", NULL);
  flosse_clients_leave(NULL, 0, S("192.0.2.1"), now);

  /* refusals */
  check(flosse_clients_refuse_until(S("42"), now + 10, now) == FLOSSE_OK, "refuse user 42 for 10 s", NULL);
  check(flosse_clients_admit(NULL, 0, 0, S("42"), 0, now + 1) == FLOSSE_ADMIT_REVOKED, "refused meanwhile", NULL);
  check(flosse_clients_admit(S("192.0.2.3"), 1, S("42"), 0, now + 1) == FLOSSE_ADMIT_REVOKED,
        "refused before the address is counted", NULL);
  check(flosse_clients_admit(S("192.0.2.3"), 1, NULL, 0, 0, now + 1) == FLOSSE_ADMIT_OK, "the address itself is not", NULL);
  flosse_clients_leave(S("192.0.2.3"), NULL, 0, now + 1);
  check(flosse_clients_refuse_until(S("42"), now + 5, now) == FLOSSE_OK, "a shorter refusal", NULL);
  check(flosse_clients_admit(NULL, 0, 0, S("42"), 0, now + 7) == FLOSSE_ADMIT_REVOKED, "does not shorten the longer", NULL);
  check(flosse_clients_admit(NULL, 0, 0, S("42"), 0, now + 10.5) == FLOSSE_ADMIT_OK, "admitted once it ran out", NULL);
  flosse_clients_leave(NULL, 0, S("42"), now + 10.5);

  /* many keys: the table grows and every count stays right */
  char k[32];
  int ok = 1;
  for (int i = 0; i < 5000; i++) {
    snprintf(k, sizeof k, "u%d", i);
    ok &= flosse_clients_admit(NULL, 0, 0, S(k), 0, now) == FLOSSE_ADMIT_OK;
  }
  for (int i = 0; i < 5000; i += 7) {
    snprintf(k, sizeof k, "u%d", i);
    ok &= flosse_clients_count('u', S(k)) == 1;
  }
  for (int i = 0; i < 5000; i++) {
    snprintf(k, sizeof k, "u%d", i);
    flosse_clients_leave(NULL, 0, S(k), now);
  }
  check(ok && flosse_clients_count('u', S("u4999")) == 0, "5000 users counted and let go", NULL);

  /* threads: every admit is matched by its leave */
  pthread_t th[4];
  int ids[4] = {1, 2, 3, 4};
  for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, churn, &ids[i]);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  long left = flosse_clients_count('u', S("shared"));
  snprintf(detail, sizeof detail, "user shared still counts %ld", left);
  check(left == 0, "four threads admitting and leaving leave nothing counted", detail);

  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
