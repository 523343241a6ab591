/* The HTTP/1.1 response writer: status line, headers, the end of the
 * head, chunk framing and the terminator. Pure: bytes into a buffer, no
 * socket, no Lua; every response the server sends is written here. */
#ifndef FLOSSE_RESPONSE_H
#define FLOSSE_RESPONSE_H

#include <stddef.h>

#include "buf.h"

/* How the body of a response is delimited. */
enum flosse_body {
  FLOSSE_BODY_LENGTH,   /* Content-Length: len */
  FLOSSE_BODY_NONE,     /* no body and no length (1xx, 204, 304) */
  FLOSSE_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
  FLOSSE_BODY_CLOSE,    /* ends with the connection (HTTP/1.0 streams) */
};

/* What the connection decided for this response. */
struct flosse_response_conn {
  int keep_alive;       /* 0: "Connection: close" */
  int http10;           /* a kept-alive HTTP/1.0 answer says "Connection: keep-alive" */
};

/* The reason phrase for status ("OK", "Not Found", ...). */
const char *flosse_response_reason(int status);

/* "HTTP/1.1 <status> <reason>\r\n". Returns FLOSSE_OK or FLOSSE_ERR (no memory). */
int flosse_response_status(struct flosse_buf *o, int status);

/* "name: value\r\n"; the caller has checked both (no CR, LF or NUL). */
int flosse_response_header(struct flosse_buf *o, const char *name, size_t nlen,
                           const char *value, size_t vlen);

/* Ends the head: the framing of the body, the Connection header, the blank line. */
int flosse_response_end_head(struct flosse_buf *o, enum flosse_body body, size_t len,
                             const struct flosse_response_conn *c);

/* A whole response with a short body (omitted when head_only, as for HEAD). */
int flosse_response_simple(struct flosse_buf *o, int status, const char *ctype,
                           const char *body, size_t len, int head_only,
                           const struct flosse_response_conn *c);

/* Writes "<hex len>\r\n", a chunk's head, to out (room for 20 bytes);
 * returns its length. */
size_t flosse_response_chunk_head(char *out, size_t len);

/* A body part of len bytes built in place, dst .. dst + open + len + close:
 * open writes what goes before it (the chunk head when chunked, else
 * nothing), close what goes after it ("\r\n" when chunked). Room needed
 * around the part: FLOSSE_RESPONSE_CHUNK_EXTRA bytes. Each returns its length. */
#define FLOSSE_RESPONSE_CHUNK_EXTRA 24
size_t flosse_response_chunk_open(char *dst, size_t len, int chunked);
size_t flosse_response_chunk_close(char *dst, int chunked);

/* The last chunk of a chunked body: "0\r\n\r\n". */
int flosse_response_terminator(struct flosse_buf *o);

/* 1 if s can be a response header's name (an HTTP token). */
int flosse_response_header_name_ok(const char *s, size_t len);

/* 1 for the headers the writer manages itself (Content-Length, Connection,
 * Transfer-Encoding): a view's own are dropped. */
int flosse_response_managed_header(const char *s, size_t len);

#endif
