/* TLS through OpenSSL: the server's certificate, reloadable while
 * connections run, and a connection's session over its socket. ALPN offers
 * h2 and http/1.1. One struct flosse_tls serves every worker: a reload swaps
 * the context new connections get, and open ones keep the one they began
 * with. */
#ifndef FLOSSE_TLS_H
#define FLOSSE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct flosse_tls;

/* Loads cert (a PEM chain) and key (PEM) from these paths (copied: a
 * reload reads them again). NULL with err filled in, naming the file and
 * OpenSSL's reason, when either cannot be loaded or they do not match. */
struct flosse_tls *flosse_tls_new(const char *cert, const char *key, char *err, size_t errlen);
void flosse_tls_free(struct flosse_tls *t);

/* Reads the certificate and key again. On success new connections get the
 * new one; on failure the old one stays, err says why, FLOSSE_ERR. Safe to
 * call from any thread while the workers accept. */
int flosse_tls_reload(struct flosse_tls *t, char *err, size_t errlen);

/* A server session on an accepted non-blocking socket (NULL: out of
 * memory). The handshake happens in the first reads. */
SSL *flosse_tls_session(struct flosse_tls *t, int fd);

/* Like read(2): > 0 bytes of plaintext, 0 the peer closed, -1 with errno
 * EAGAIN when it must wait for the socket to be readable, or, with
 * *want_write set to 1, writable (a handshake message did not fit); any
 * other -1 is an error (errno EPROTO for a TLS failure, whose reason is
 * logged at debug level). Call again while SSL_pending() says bytes are
 * decrypted and waiting. */
ssize_t flosse_tls_read(SSL *s, void *buf, size_t len, int *want_write);

/* Like sendmsg(2) of iov: the bytes of the iovs taken (some, maybe not
 * all), or -1 with errno EAGAIN (*want_read 1 if it waits for readability,
 * else writability) or another errno. A call after EAGAIN must offer at
 * least the bytes offered before, in the same order (the output queue
 * only grows at its end). */
ssize_t flosse_tls_writev(SSL *s, const struct iovec *iov, int n, int *want_read);

/* 1 once the handshake is over and ALPN chose h2. */
int flosse_tls_h2(SSL *s);

/* Sends close_notify if the socket takes it now, then frees the session
 * (the caller closes the fd). */
void flosse_tls_close(SSL *s);

#endif
