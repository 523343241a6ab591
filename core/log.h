/* Log lines: one write per line to stderr, so that lines from several
 * worker threads never mix; and the ids that tie an error's log line to
 * what its client was told. */
#ifndef FLOSSE_LOG_H
#define FLOSSE_LOG_H

enum { FLOSSE_LOG_ERROR, FLOSSE_LOG_WARN, FLOSSE_LOG_INFO, FLOSSE_LOG_DEBUG };

/* Lines above this level are not written (the whole process's). */
extern int flosse_log_level;

/* Writes "flosse: <text>\n" (the text cut at about 1 KiB). */
void flosse_log_write(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define flosse_log(level, ...) \
  do { if ((level) <= flosse_log_level) flosse_log_write(__VA_ARGS__); } while (0)

/* Writes a new error id (12 hex digits and a NUL) to out: distinct ids that
 * do not reveal how many errors there were. Any thread. */
void flosse_log_error_id(char out[13]);

/* Logs "error <id> <where>: <text>" with a new id, written to id: the line
 * an error event's or a 500's error_id points at. */
void flosse_log_error(char id[13], const char *where, const char *text);

#endif
