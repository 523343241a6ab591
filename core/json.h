/* The JSON writer's pure parts: number texts, string escaping, and a scanner
 * of a JSON object's top-level members. Bytes in, bytes out: no Lua, no
 * loop, no fds, no allocation, so every function here can be unit-tested
 * and fuzzed. The Lua encoder on top of it is core/ljson.c. */
#ifndef FLOSSE_JSON_H
#define FLOSSE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Room for any number's text and its NUL ("-2.2250738585072014e-308" is 24). */
#define FLOSSE_JSON_NUMBER_MAX 32

/* The most bytes the escaped form of len bytes can take (each byte at most
 * "\u00XX"), without and with the two quotes. */
#define FLOSSE_JSON_ESCAPE_MAX(len) ((size_t)(len) * 6)
#define FLOSSE_JSON_STRING_MAX(len) ((size_t)(len) * 6 + 2)

/* The deepest nesting flosse_json_scan_next follows inside a member's value
 * (cjson.decode stops at 1000 by default, so no text it accepts is refused). */
#define FLOSSE_JSON_SCAN_DEPTH 1024

/* Writes v in decimal, exactly (INT64_MIN included), NUL-terminated, to
 * out, which has room for FLOSSE_JSON_NUMBER_MAX bytes. Returns the length
 * without the NUL. */
size_t flosse_json_integer(char *out, int64_t v);

/* Writes the shortest decimal text that strtod reads back as exactly v
 * (the same bits: -0.0 is "-0"), NUL-terminated, to out (room for
 * FLOSSE_JSON_NUMBER_MAX bytes); always with '.', whatever the locale.
 * An integral v up to 2^53 in magnitude is written as the integer in full
 * ("100", "1796150648138900", "9007199254740992"). Any other is printf's
 * %.*g with the fewest significant digits p that read back, but with the
 * fixed or exponent form %.14g would choose when p < 14 (so 1e14 is
 * "1e+14" and 0.1 is "0.1"): every such double with 14 significant digits
 * or fewer is written exactly as lua-cjson 2.1 (%.14g) writes it. Returns
 * the length without the NUL, or 0 (out is "") when v is NaN or infinite,
 * which JSON cannot carry. */
size_t flosse_json_double(char *out, double v);

/* Writes the escaped form of the len bytes of s, without quotes, to out
 * (room for FLOSSE_JSON_ESCAPE_MAX(len) bytes; not NUL-terminated), as
 * lua-cjson 2.1.0 escapes a string: '"' '\\' and '/' with a backslash
 * ("\/"), \b \f \n \r \t, every other byte below 0x20 and 0x7f as \u00xx
 * (lowercase hex), every other byte (UTF-8 or not) as it is. Escaping is
 * byte by byte, so a long string may be escaped in pieces. Returns the
 * number of bytes written. */
size_t flosse_json_escape(char *out, const char *s, size_t len);

/* The same between two quotes: a JSON string. out has room for
 * FLOSSE_JSON_STRING_MAX(len) bytes. Returns the number of bytes written. */
size_t flosse_json_string(char *out, const char *s, size_t len);

/* ---- the member scanner -------------------------------------------------
 *
 * Reports the raw text of each top-level member of a JSON object: its key
 * with the quotes and its value exactly as the text has it, as byte spans
 * of the caller's text (borrowed; nothing is copied). It is meant for a
 * text that cjson.decode accepted, but any bytes are safe: it reads none
 * past len, uses no recursion and a fixed amount of memory, and takes time
 * linear in len.
 *
 * What it checks: the top level's grammar (a '{', members "key": value
 * separated by commas, the '}', then only whitespace), strings closed
 * (a backslash escapes the next byte; a NUL is refused, as cjson does),
 * brackets balanced and matched up to FLOSSE_JSON_SCAN_DEPTH, and no byte
 * outside strings that no JSON token (nor cjson's inf, nan, hex numbers)
 * can hold. What it leaves to cjson.decode: the grammar inside a nested
 * value, escapes, numbers' exact form, UTF-8. */

struct flosse_json_span {
  size_t off, len; /* the bytes text[off .. off+len) */
};

struct flosse_json_member {
  struct flosse_json_span key;   /* with its quotes, escapes as written */
  struct flosse_json_span value; /* a string, number, literal, object or array */
};

struct flosse_json_scan {
  const char *text;
  size_t len, pos;
  int state; /* private */
};

/* Starts scanning the len bytes of text, which must hold one JSON object
 * (whitespace around it allowed). text is borrowed and must outlive the
 * scan. Returns FLOSSE_OK, or FLOSSE_ERR with err filled when text does not
 * start with '{'. */
int flosse_json_scan_init(struct flosse_json_scan *sc, const char *text, size_t len, char *err,
                          size_t errlen);

/* Reads the next member. Returns 1 with it in *m, 0 once the object's end
 * is reached (and only whitespace follows it), or FLOSSE_ERR with err
 * filled ("malformed JSON object at byte N: ...") when the text is not a
 * well-formed object; members reported before an error are not to be
 * trusted. After 0 or FLOSSE_ERR every further call returns the same. */
int flosse_json_scan_next(struct flosse_json_scan *sc, struct flosse_json_member *m, char *err,
                          size_t errlen);

#endif
