#include "framing.h"

#include <string.h>

enum {
  LEAD,          /* empty lines before the request line */
  LEAD_CR,
  METHOD,
  TARGET_SP,     /* spaces before the request target */
  TARGET,
  VERSION,
  REQLINE_CR,
  FIELD_START,   /* the start of a header (or trailer) line */
  FIELD_NAME,
  FIELD_VALUE,
  FIELD_CR,
  END_CR,        /* the CR of the line that ends the head (or the trailers) */
  AT_BODY,       /* waiting for flosse_framing_body */
  UNCHECKED,     /* a Content-Length body or none: nothing to check */
  SIZE_START,
  SIZE,
  EXT,
  SIZE_CR,
  DATA,
  DATA_CR,
  DATA_LF,
  DONE,
};

void flosse_framing_init(struct flosse_framing *f, size_t max_url, size_t max_header, size_t max_body) {
  memset(f, 0, sizeof *f);
  f->max_url = max_url;
  f->max_header = max_header;
  f->max_body = max_body;
}

int flosse_framing_at_body(const struct flosse_framing *f) { return f->state == AT_BODY; }

void flosse_framing_body(struct flosse_framing *f, int chunked) {
  f->state = chunked ? SIZE_START : UNCHECKED;
}

static int hex(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* RFC 9110 5.6.2: the bytes of a token (a header name). */
static int tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 9110 5.5: a field value's bytes (VCHAR, SP, HTAB, obs-text). */
static int vchar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int version_ok(const struct flosse_framing *f) {
  const char *v = f->ver;
  return f->nver == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
         v[7] >= '0' && v[7] <= '9';
}

#define REFUSE(st, why) do { f->status = (st); f->error = (why); return i; } while (0)
#define BAD(why) REFUSE(400, why)
#define BARE_CR "a bare CR in the request (not followed by LF)"
/* A head's lines may end with a bare LF (RFC 9112 2.2); a chunked body's
 * framing, trailers included, ends its lines with CRLF. */
#define BARE_LF "a chunked body's line not ended by CRLF"
#define BAD_VERSION "a request line not ended by HTTP/x.y"

size_t flosse_framing_scan(struct flosse_framing *f, const char *p, size_t len) {
  size_t i = 0;
  if (f->error) return 0;
  for (; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    if (f->state >= METHOD && f->state <= END_CR && ++f->head > f->max_header)
      REFUSE(431, f->trailers ? "request trailers too large" : "request header block too large");
    switch (f->state) {
      case LEAD:
        if (c == '\r') {
          f->state = LEAD_CR;
        } else if (c != '\n') {
          f->state = METHOD;
          i--; /* the request line's first byte: counted and read as one */
        }
        break;
      case LEAD_CR:
        if (c != '\n') BAD(BARE_CR);
        f->state = LEAD;
        break;
      case METHOD:
        if (c == ' ') f->state = TARGET_SP;
        else if (c == '\r' || c == '\n') BAD(BAD_VERSION);
        break;
      case TARGET_SP:
        if (c == '\r' || c == '\n') BAD(BAD_VERSION);
        if (c == ' ') break;
        f->state = TARGET;
        /* fall through */
      case TARGET:
        if (c == ' ') {
          f->state = VERSION;
        } else if (c == '\r' || c == '\n') {
          BAD(BAD_VERSION);
        } else if (++f->target > f->max_url) {
          REFUSE(414, "request target too long");
        }
        break;
      case VERSION:
        if (c == '\r' || c == '\n') {
          if (!version_ok(f)) BAD(BAD_VERSION);
          f->state = c == '\r' ? REQLINE_CR : FIELD_START;
        } else if (f->nver == sizeof f->ver) {
          BAD(BAD_VERSION);
        } else {
          f->ver[f->nver++] = (char)c;
        }
        break;
      case REQLINE_CR:
      case FIELD_CR:
        if (c != '\n') BAD(BARE_CR);
        f->state = FIELD_START;
        break;
      case FIELD_START:
        if (c == '\r') {
          f->state = END_CR;
        } else if (c == '\n') {
          if (f->trailers) BAD(BARE_LF);
          goto end_of_fields;
        } else if (c == ' ' || c == '\t') {
          BAD("a folded header line (obsolete line folding)");
        } else if (!tchar(c)) {
          BAD("a header name that is not a token");
        } else {
          f->state = FIELD_NAME;
        }
        break;
      case FIELD_NAME:
        if (c == ':') f->state = FIELD_VALUE;
        else if (c == ' ' || c == '\t') BAD("whitespace in a header name");
        else if (!tchar(c)) BAD("a header name that is not a token");
        break;
      case FIELD_VALUE:
        if (c == '\r') f->state = FIELD_CR;
        else if (c == '\n' && f->trailers) BAD(BARE_LF);
        else if (c == '\n') f->state = FIELD_START;
        else if (!vchar(c)) BAD("a control byte in a header value");
        break;
      case END_CR:
        if (c != '\n') BAD(BARE_CR);
      end_of_fields:
        f->state = f->trailers ? DONE : AT_BODY;
        return i + 1;
      case AT_BODY:
      case DONE:
        return i;
      case UNCHECKED:
        return len;
      case SIZE_START:
      case SIZE: {
        int v = hex(c);
        if (v >= 0) {
          if (f->remaining > (UINT64_MAX >> 4)) REFUSE(413, "request body too large");
          f->remaining = f->remaining << 4 | (uint64_t)v;
          f->state = SIZE;
        } else if (f->state == SIZE && (c == ';' || c == ' ' || c == '\t')) {
          f->state = EXT;
        } else if (f->state == SIZE && c == '\r') {
          f->state = SIZE_CR;
        } else {
          BAD("a chunk size line that is not hex digits ended by CRLF");
        }
        break;
      }
      case EXT:
        if (c == '\r') f->state = SIZE_CR;
        else if (!vchar(c)) BAD("a control byte in a chunk extension");
        break;
      case SIZE_CR:
        if (c != '\n') BAD(BARE_CR);
        if (f->remaining) {
          f->state = DATA;
        } else { /* the last chunk: trailers, then the blank line */
          f->state = FIELD_START;
          f->trailers = 1;
          f->head = 0;
        }
        break;
      case DATA: {
        size_t take = len - i;
        if (take > f->remaining) take = (size_t)f->remaining;
        if (f->body + take > f->max_body) {
          i += (size_t)(f->max_body - f->body);
          REFUSE(413, "request body too large");
        }
        f->body += take;
        f->remaining -= take;
        i += take - 1;
        if (!f->remaining) f->state = DATA_CR;
        break;
      }
      case DATA_CR:
        if (c != '\r') BAD("a chunk's data not followed by CRLF");
        f->state = DATA_LF;
        break;
      case DATA_LF:
        if (c != '\n') BAD("a chunk's data not followed by CRLF");
        f->state = SIZE_START;
        break;
    }
  }
  return i;
}
