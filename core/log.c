#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int flosse_log_level = FLOSSE_LOG_INFO;

void flosse_log_write(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
  line[n] = '\n';
  /* One write per line, so that lines from several threads never mix. */
  fprintf(stderr, "flosse: %.*s", n + 1, line);
  fflush(stderr);
}

static uint64_t error_seed, error_count;

static void seed_error_ids(void) {
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(&error_seed, sizeof error_seed, 1, f) != 1)
    error_seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
  if (f) fclose(f);
  error_seed |= 1;
}

void flosse_log_error_id(char out[13]) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, seed_error_ids);
  /* splitmix64 of a counter: unique, and no count shows through */
  uint64_t n = __atomic_add_fetch(&error_count, 1, __ATOMIC_RELAXED);
  uint64_t z = error_seed + 0x9e3779b97f4a7c15ULL * n;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  snprintf(out, 13, "%012llx", (unsigned long long)(z & 0xffffffffffffULL));
}

void flosse_log_error(char id[13], const char *where, const char *text) {
  flosse_log_error_id(id);
  flosse_log(FLOSSE_LOG_ERROR, "error %s %s: %s", id, where ? where : "-", text);
}
