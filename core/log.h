/* Log lines: one write per line to stderr, so that lines from several
 * worker threads never mix; and the ids that tie an error's log line to
 * what its client was told. Two formats: text ("flosse: ..."), or one JSON
 * object per line (docs/logging.md). */
#ifndef FLOSSE_LOG_H
#define FLOSSE_LOG_H

#include <stddef.h>

enum { FLOSSE_LOG_ERROR, FLOSSE_LOG_WARN, FLOSSE_LOG_INFO, FLOSSE_LOG_DEBUG };

/* Lines above this level are not written (the whole process's). */
extern int flosse_log_level;
/* 1: JSON lines. Set once, before the workers start. */
extern int flosse_log_json;

/* Writes "flosse: <text>\n" (the text cut at about 1 KiB), or its JSON
 * object, at level. */
void flosse_log_at(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same at info, whatever flosse_log_level (lines the operator must see). */
void flosse_log_write(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define flosse_log(level, ...) \
  do { if ((level) <= flosse_log_level) flosse_log_at((level), __VA_ARGS__); } while (0)

/* The access line of a request that ended: remote (the client), reqline
 * ("METHOD TARGET", credentials already redacted), status, seconds taken,
 * events and bytes written. At info. */
void flosse_log_access(const char *remote, const char *reqline, int status, double took,
                       unsigned long events, unsigned long long bytes);

/* Writes a new error id (12 hex digits and a NUL) to out: distinct ids that
 * do not reveal how many errors there were. Any thread. */
void flosse_log_error_id(char out[13]);

/* Logs "error <id> <where>: <text>" with a new id, written to id: the line
 * an error event's or a 500's error_id points at. text may end with a Lua
 * traceback ("\nstack traceback:\n..."), which JSON lines carry apart. */
void flosse_log_error(char id[13], const char *where, const char *text);

/* Pure, for the tests: escapes len bytes of s as a JSON string's content
 * into out (room for 6 * len + 1 bytes), control characters as \uXXXX and
 * every byte that is not part of well-formed UTF-8 as \ufffd, so that the
 * line is valid JSON whatever a client sent. Returns the bytes written. */
size_t flosse_log_json_escape(char *out, const char *s, size_t len);

#endif
