/* IP addresses and CIDR blocks (trusted_proxies), read by inet_pton: no
 * address is parsed by hand. Pure: no loop, no Lua. */
#ifndef FLOSSE_CIDR_H
#define FLOSSE_CIDR_H

#include <stddef.h>

#include "buf.h" /* FLOSSE_OK, FLOSSE_ERR */

/* An address (bits = its full length) or a block. An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is read as the IPv4 address it maps, so that a
 * dual-stack socket's peers match IPv4 blocks. */
struct flosse_cidr {
  int family; /* AF_INET or AF_INET6 */
  int bits;   /* prefix length: 0..32 or 0..128 */
  unsigned char addr[16];
};

/* Reads an address ("192.0.2.1", "2001:db8::1"; len bytes, no NUL needed)
 * into out (bits = 32 or 128). Returns FLOSSE_OK, or FLOSSE_ERR when it is
 * not one (no port, brackets, zone or spaces: the caller strips those). */
int flosse_cidr_addr(const char *s, size_t len, struct flosse_cidr *out);

/* Reads an address or "address/prefix" ("10.0.0.0/8", "fd00::/8") into out;
 * the address's bits past the prefix are cleared. Returns FLOSSE_OK, or
 * FLOSSE_ERR (not an address, a prefix that is not 0..32 or 0..128 in
 * decimal digits). */
int flosse_cidr_parse(const char *s, size_t len, struct flosse_cidr *out);

/* 1 if the address addr is inside block, else 0 (other families never match). */
int flosse_cidr_contains(const struct flosse_cidr *block, const struct flosse_cidr *addr);

/* Writes addr in its canonical text form (inet_ntop) to out (at least 46
 * bytes: INET6_ADDRSTRLEN). Returns FLOSSE_OK or FLOSSE_ERR. */
int flosse_cidr_format(const struct flosse_cidr *addr, char *out, size_t cap);

#endif
