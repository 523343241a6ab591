#include "response.h"

#include <string.h>
#include <strings.h>

const char *flosse_response_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

int flosse_response_status(struct flosse_buf *o, int status) {
  return flosse_buf_printf(o, "HTTP/1.1 %d %s\r\n", status, flosse_response_reason(status));
}

int flosse_response_header(struct flosse_buf *o, const char *name, size_t nlen,
                           const char *value, size_t vlen) {
  return flosse_buf_printf(o, "%.*s: %.*s\r\n", (int)nlen, name, (int)vlen, value);
}

int flosse_response_end_head(struct flosse_buf *o, enum flosse_body body, size_t len,
                             const struct flosse_response_conn *c) {
  int rc = FLOSSE_OK;
  if (body == FLOSSE_BODY_LENGTH) rc |= flosse_buf_printf(o, "Content-Length: %zu\r\n", len);
  else if (body == FLOSSE_BODY_CHUNKED) rc |= flosse_buf_append(o, "Transfer-Encoding: chunked\r\n", 28);
  /* A close-delimited body always ends the connection. */
  if (!c->keep_alive || body == FLOSSE_BODY_CLOSE) rc |= flosse_buf_append(o, "Connection: close\r\n", 19);
  else if (c->http10) rc |= flosse_buf_append(o, "Connection: keep-alive\r\n", 24);
  return rc | flosse_buf_append(o, "\r\n", 2);
}

int flosse_response_simple(struct flosse_buf *o, int status, const char *ctype,
                           const char *body, size_t len, int head_only,
                           const struct flosse_response_conn *c) {
  int rc = flosse_response_status(o, status);
  if (ctype) rc |= flosse_response_header(o, "Content-Type", 12, ctype, strlen(ctype));
  rc |= flosse_response_end_head(o, FLOSSE_BODY_LENGTH, len, c);
  if (!head_only && len) rc |= flosse_buf_append(o, body, len);
  return rc ? FLOSSE_ERR : FLOSSE_OK;
}

size_t flosse_response_chunk_head(char *out, size_t len) {
  static const char hex[] = "0123456789abcdef";
  char tmp[16];
  size_t n = 0;
  do {
    tmp[n++] = hex[len & 15];
    len >>= 4;
  } while (len);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = '\r';
  out[n + 1] = '\n';
  return n + 2;
}

size_t flosse_response_chunk_open(char *dst, size_t len, int chunked) {
  return chunked ? flosse_response_chunk_head(dst, len) : 0;
}

size_t flosse_response_chunk_close(char *dst, int chunked) {
  if (!chunked) return 0;
  dst[0] = '\r';
  dst[1] = '\n';
  return 2;
}

int flosse_response_terminator(struct flosse_buf *o) { return flosse_buf_append(o, "0\r\n\r\n", 5); }

int flosse_response_header_name_ok(const char *s, size_t len) {
  if (len == 0) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 32 || ch >= 127 || strchr("()<>@,;:\\\"/[]?={}", ch)) return 0;
  }
  return 1;
}

int flosse_response_managed_header(const char *s, size_t len) {
  static const char *names[] = {"content-length", "connection", "transfer-encoding"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strlen(names[i]) == len && strncasecmp(names[i], s, len) == 0) return 1;
  return 0;
}
