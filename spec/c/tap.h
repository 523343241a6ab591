/* The TAP output of the C unit tests (spec/run tallies the lines): one
 * "ok N - <TAP_PREFIX>: what" or "not ok N - ..." line per check, with the
 * detail of a failure as a "# " comment. Define TAP_PREFIX before including. */
#ifndef FLOSSE_SPEC_TAP_H
#define FLOSSE_SPEC_TAP_H

#include <stdio.h>

static int n_checks, n_failed;

static void check(int cond, const char *what, const char *detail) {
  n_checks++;
  if (!cond) n_failed++;
  printf("%sok %d - " TAP_PREFIX ": %s\n", cond ? "" : "not ", n_checks, what);
  if (!cond && detail) printf("# %s\n", detail);
}

#endif
