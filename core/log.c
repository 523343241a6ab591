#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int flosse_log_level = FLOSSE_LOG_INFO;
int flosse_log_json = 0;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Input bytes of one field a JSON line keeps (escaped, at most 6 each):
 * the text format cuts a whole line at 1 KiB; a traceback gets more room. */
#define FIELD_MAX 2048
#define TRACE_MAX 8192
#define JSON_LINE_MAX (6 * (FIELD_MAX * 3 + TRACE_MAX) + 512)

/* One write per line, so that lines from several threads never mix. */
static void emit(const char *line, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, line, len);
    if (n <= 0) return;
    line += n;
    len -= (size_t)n;
  }
}

/* The length of the well-formed UTF-8 sequence at s (at most len bytes), or
 * 0 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else return 0;
  if (len < n || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return n;
}

size_t flosse_log_json_escape(char *out, const char *str, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
      i++;
    } else if (c == '\n') {
      memcpy(out + o, "\\n", 2), o += 2, i++;
    } else if (c == '\t') {
      memcpy(out + o, "\\t", 2), o += 2, i++;
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(out + o, "\\u00", 4);
      out[o + 4] = hex[c >> 4];
      out[o + 5] = hex[c & 15];
      o += 6, i++;
    } else if (c < 0x80) {
      out[o++] = (char)c, i++;
    } else {
      size_t n = utf8_len(s + i, len - i);
      if (n) {
        memcpy(out + o, s + i, n), o += n, i += n;
      } else {
        memcpy(out + o, "\\ufffd", 6), o += 6, i++;
      }
    }
  }
  return o;
}

/* A JSON line under construction; full: later fields are dropped whole. */
struct jline {
  char buf[JSON_LINE_MAX];
  size_t len;
};

static void put(struct jline *j, const char *s, size_t n) {
  if (j->len + n > sizeof j->buf - 2) return;
  memcpy(j->buf + j->len, s, n);
  j->len += n;
}

/* ,"key":"value" with value cut at max input bytes (not inside a UTF-8
 * sequence: the escape turns a cut sequence into \ufffd). */
static void put_str(struct jline *j, const char *key, const char *v, size_t n, size_t max) {
  if (n > max) n = max;
  if (j->len + strlen(key) + 6 * n + 8 > sizeof j->buf - 2) return;
  j->len += (size_t)sprintf(j->buf + j->len, ",\"%s\":\"", key);
  j->len += flosse_log_json_escape(j->buf + j->len, v, n);
  j->buf[j->len++] = '"';
}

static void put_cstr(struct jline *j, const char *key, const char *v) {
  put_str(j, key, v, strlen(v), FIELD_MAX);
}

static void put_num(struct jline *j, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_num(struct jline *j, const char *key, const char *fmt, ...) {
  char num[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(num, sizeof num, fmt, ap);
  va_end(ap);
  if (n <= 0 || (size_t)n >= sizeof num) return;
  char head[80];
  int h = snprintf(head, sizeof head, ",\"%s\":", key);
  if (h > 0 && j->len + (size_t)h + (size_t)n < sizeof j->buf - 2) {
    put(j, head, (size_t)h);
    put(j, num, (size_t)n);
  }
}

/* {"ts":"2026-12-02T12:00:00.123Z","level":...,"kind":... */
static void begin(struct jline *j, int level, const char *kind) {
  struct timespec now;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  char ts[40];
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  if (level < FLOSSE_LOG_ERROR || level > FLOSSE_LOG_DEBUG) level = FLOSSE_LOG_INFO;
  j->len = (size_t)snprintf(j->buf, sizeof j->buf, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"kind\":\"%s\"", ts,
                            now.tv_nsec / 1000000, level_names[level], kind);
}

static void finish(struct jline *j) {
  j->buf[j->len++] = '}';
  j->buf[j->len++] = '\n';
  emit(j->buf, j->len);
  free(j);
}

/* Lines of the server's life, told by how the text begins (or ends): their
 * kind is "lifecycle" with this event. */
static const struct {
  const char *prefix, *suffix, *event;
} lifecycle[] = {
    {"listening on ", NULL, "listening"},
    {"reloaded ", NULL, "reload"},
    {"reload failed", NULL, "reload_failed"},
    {"SIGHUP: reloading", NULL, "reload_signal"},
    {"TLS certificate reloaded", NULL, "tls_reload"},
    {"TLS certificate reload failed", NULL, "tls_reload_failed"},
    {NULL, ": shutting down", "shutdown"},
    {NULL, " again: exiting now", "exit_now"},
    {"grace period over", NULL, "grace_over"},
    {"stopped", NULL, "stopped"},
    {"redis ", NULL, "redis"},
    {"tasks.lua failed", NULL, "tasks_failed"},
};

static const char *lifecycle_event(const char *text, size_t n) {
  for (size_t i = 0; i < sizeof lifecycle / sizeof lifecycle[0]; i++) {
    const char *p = lifecycle[i].prefix, *s = lifecycle[i].suffix;
    if (p && strncmp(text, p, strlen(p)) == 0) return lifecycle[i].event;
    if (s && n >= strlen(s) && memcmp(text + n - strlen(s), s, strlen(s)) == 0) return lifecycle[i].event;
  }
  return NULL;
}

/* Large, so not on a worker's stack (nor in every thread's TLS): JSON
 * lines are the operator's choice, and a malloc per line is cheap beside
 * the write. NULL: out of memory, the line is lost. */
static struct jline *line_buffer(void) { return malloc(sizeof(struct jline)); }

static void write_text(int level, const char *text, int n) {
  if (!flosse_log_json) {
    char line[8 + 1022 + 1]; /* the text cut at 1022 bytes, as always */
    if (n > 1022) n = 1022;
    memcpy(line, "flosse: ", 8);
    memcpy(line + 8, text, (size_t)n);
    line[8 + n] = '\n';
    emit(line, (size_t)n + 9);
    return;
  }
  struct jline *j = line_buffer();
  if (!j) return;
  const char *event = lifecycle_event(text, (size_t)n);
  begin(j, level, event ? "lifecycle" : "log");
  if (event) put_cstr(j, "event", event);
  if (event && strcmp(event, "listening") == 0) put_cstr(j, "url", text + strlen("listening on "));
  put_str(j, "msg", text, (size_t)n, FIELD_MAX);
  finish(j);
}

static void vlog(int level, const char *fmt, va_list ap) {
  char text[FIELD_MAX + 1];
  int n = vsnprintf(text, sizeof text, fmt, ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof text) n = (int)sizeof text - 1;
  write_text(level, text, n);
}

void flosse_log_at(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}

void flosse_log_write(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(FLOSSE_LOG_INFO, fmt, ap);
  va_end(ap);
}

void flosse_log_access(const char *remote, const char *reqline, int status, double took,
                       unsigned long events, unsigned long long bytes) {
  if (!flosse_log_json) {
    flosse_log_write("access %s \"%s\" %d %.3fs events=%lu bytes=%llu", remote, reqline ? reqline : "-", status,
                     took, events, bytes);
    return;
  }
  struct jline *j = line_buffer();
  if (!j) return;
  begin(j, FLOSSE_LOG_INFO, "access");
  put_cstr(j, "remote_addr", remote);
  if (reqline) {
    const char *sp = strchr(reqline, ' ');
    put_str(j, "method", reqline, sp ? (size_t)(sp - reqline) : strlen(reqline), FIELD_MAX);
    if (sp) put_cstr(j, "path", sp + 1);
  }
  put_num(j, "status", "%d", status);
  put_num(j, "duration", "%.6f", took);
  put_num(j, "events", "%lu", events);
  put_num(j, "bytes", "%llu", bytes);
  finish(j);
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
  if (FLOSSE_LOG_ERROR > flosse_log_level) return;
  if (!flosse_log_json) {
    flosse_log_at(FLOSSE_LOG_ERROR, "error %s %s: %s", id, where ? where : "-", text);
    return;
  }
  struct jline *j = line_buffer();
  if (!j) return;
  begin(j, FLOSSE_LOG_ERROR, "error");
  put_cstr(j, "error_id", id);
  put_cstr(j, "where", where ? where : "-");
  const char *trace = strstr(text, "\nstack traceback:\n");
  put_str(j, "message", text, trace ? (size_t)(trace - text) : strlen(text), FIELD_MAX);
  if (trace) put_str(j, "traceback", trace + 1, strlen(trace + 1), TRACE_MAX);
  finish(j);
}
