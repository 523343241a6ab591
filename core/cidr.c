#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const unsigned char V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int flosse_cidr_addr(const char *s, size_t len, struct flosse_cidr *out) {
  char text[64];
  if (len == 0 || len >= sizeof text || memchr(s, '\0', len)) return FLOSSE_ERR;
  memcpy(text, s, len);
  text[len] = '\0';
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, text, out->addr) == 1) {
    out->family = AF_INET;
    out->bits = 32;
    return FLOSSE_OK;
  }
  if (inet_pton(AF_INET6, text, out->addr) == 1) {
    if (memcmp(out->addr, V4_MAPPED, sizeof V4_MAPPED) == 0) {
      memmove(out->addr, out->addr + 12, 4);
      memset(out->addr + 4, 0, 12);
      out->family = AF_INET;
      out->bits = 32;
      return FLOSSE_OK;
    }
    out->family = AF_INET6;
    out->bits = 128;
    return FLOSSE_OK;
  }
  return FLOSSE_ERR;
}

int flosse_cidr_parse(const char *s, size_t len, struct flosse_cidr *out) {
  const char *slash = memchr(s, '/', len);
  size_t alen = slash ? (size_t)(slash - s) : len;
  if (flosse_cidr_addr(s, alen, out) != FLOSSE_OK) return FLOSSE_ERR;
  if (!slash) return FLOSSE_OK;
  size_t digits = len - alen - 1;
  if (digits == 0 || digits > 3) return FLOSSE_ERR;
  int bits = 0;
  for (size_t i = 0; i < digits; i++) {
    char c = slash[1 + i];
    if (c < '0' || c > '9') return FLOSSE_ERR;
    bits = bits * 10 + (c - '0');
  }
  /* A mapped address's prefix counts the 96 bits of ::ffff:0:0/96. */
  int mapped = out->family == AF_INET && memchr(s, ':', alen) != NULL;
  if (mapped) bits -= 96;
  if (bits < 0 || bits > out->bits) return FLOSSE_ERR;
  out->bits = bits;
  for (int b = bits; b < 128; b++) out->addr[b / 8] &= (unsigned char)~(0x80u >> (b % 8));
  return FLOSSE_OK;
}

int flosse_cidr_contains(const struct flosse_cidr *block, const struct flosse_cidr *addr) {
  if (block->family != addr->family) return 0;
  int full = block->bits / 8, rest = block->bits % 8;
  if (memcmp(block->addr, addr->addr, (size_t)full) != 0) return 0;
  if (!rest) return 1;
  unsigned char mask = (unsigned char)(0xff00u >> rest);
  return (block->addr[full] & mask) == (addr->addr[full] & mask);
}

int flosse_cidr_format(const struct flosse_cidr *addr, char *out, size_t cap) {
  return inet_ntop(addr->family, addr->addr, out, (socklen_t)cap) ? FLOSSE_OK : FLOSSE_ERR;
}
