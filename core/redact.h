/* Credentials out of log lines: the request target as the logs show it,
 * with the value of every query parameter an authentication class reads
 * replaced by an ellipsis. Pure (bytes in, bytes out; no loop, no Lua), so
 * that it can be unit-tested and fuzzed. */
#ifndef FLOSSE_REDACT_H
#define FLOSSE_REDACT_H

#include <stddef.h>

#include "buf.h" /* FLOSSE_OK, FLOSSE_ERR */

#define FLOSSE_REDACT_MAX_NAMES 16
#define FLOSSE_REDACT_MAX_NAME 64
#define FLOSSE_REDACT_MARK "\xe2\x80\xa6" /* U+2026 HORIZONTAL ELLIPSIS */
#define FLOSSE_REDACT_MARK_LEN 3

/* The query parameters whose values are never logged, as their decoded
 * names. all: a name did not fit (too many, too long), so every value is
 * redacted: a credential is never logged because a list was full. */
struct flosse_redact {
  int n;
  int all;
  unsigned char len[FLOSSE_REDACT_MAX_NAMES];
  char name[FLOSSE_REDACT_MAX_NAMES][FLOSSE_REDACT_MAX_NAME];
};

/* An empty list (nothing redacted). */
void flosse_redact_init(struct flosse_redact *r);

/* Adds a decoded parameter name (len bytes, copied). A name already there
 * is not added twice; one that does not fit sets r->all. Returns FLOSSE_OK,
 * or FLOSSE_ERR when it did not fit (r->all is then set). */
int flosse_redact_add(struct flosse_redact *r, const char *name, size_t len);

/* Writes the request target url (len bytes) to out, at most cap bytes, with
 * the value of every query parameter whose decoded name is in r replaced by
 * FLOSSE_REDACT_MARK (all of them when r->all). The query is what
 * lua/flosse/request.lua reads: after the first '?', up to the first '#';
 * '&'-separated pairs, the name before the first '=', decoded as
 * request.unquote(name, true) does ('+' a space, "%XX" a byte). An empty
 * value stays empty (there is nothing to hide). Redacting comes before the
 * cut, and a mark is never cut: no byte of a redacted value is ever
 * written. Returns the bytes written (out is not NUL-terminated). */
size_t flosse_redact_url(const struct flosse_redact *r, const char *url, size_t len, char *out,
                         size_t cap);

#endif
