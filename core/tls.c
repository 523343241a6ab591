#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

struct flosse_tls {
  pthread_mutex_t lock; /* guards ctx: workers take it as they accept, a reload swaps it */
  SSL_CTX *ctx;
  char *cert, *key;
};

/* OpenSSL's reason for the last failure, its queue emptied. */
static void reason(char *out, size_t len) {
  unsigned long e = ERR_get_error();
  if (e) ERR_error_string_n(e, out, len);
  else snprintf(out, len, "unknown error");
  ERR_clear_error();
}

/* ALPN: h2 first, then http/1.1; a client that offers neither gets
 * HTTP/1.1 without ALPN (as curl without --http2 expects). */
static int select_alpn(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
  (void)s;
  (void)arg;
  static const unsigned char ours[] = "\x02h2\x08http/1.1";
  unsigned char *sel;
  if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *load(const char *cert, const char *key, char *err, size_t errlen) {
  char why[256];
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    reason(why, sizeof why);
    snprintf(err, errlen, "TLS: %s", why);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    reason(why, sizeof why);
    snprintf(err, errlen, "TLS certificate %s: %s", cert, why);
  } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    reason(why, sizeof why);
    snprintf(err, errlen, "TLS key %s: %s", key, why);
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    reason(why, sizeof why);
    snprintf(err, errlen, "TLS key %s does not match the certificate %s: %s", key, cert, why);
  } else {
    return ctx;
  }
  SSL_CTX_free(ctx);
  return NULL;
}

struct flosse_tls *flosse_tls_new(const char *cert, const char *key, char *err, size_t errlen) {
  SSL_CTX *ctx = load(cert, key, err, errlen);
  if (!ctx) return NULL;
  struct flosse_tls *t = calloc(1, sizeof *t);
  if (t) {
    t->cert = strdup(cert);
    t->key = strdup(key);
  }
  if (!t || !t->cert || !t->key) {
    if (t) {
      free(t->cert);
      free(t->key);
    }
    free(t);
    SSL_CTX_free(ctx);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&t->lock, NULL);
  t->ctx = ctx;
  return t;
}

void flosse_tls_free(struct flosse_tls *t) {
  if (!t) return;
  SSL_CTX_free(t->ctx);
  pthread_mutex_destroy(&t->lock);
  free(t->cert);
  free(t->key);
  free(t);
}

int flosse_tls_reload(struct flosse_tls *t, char *err, size_t errlen) {
  SSL_CTX *ctx = load(t->cert, t->key, err, errlen);
  if (!ctx) return FLOSSE_ERR;
  pthread_mutex_lock(&t->lock);
  SSL_CTX *old = t->ctx;
  t->ctx = ctx;
  pthread_mutex_unlock(&t->lock);
  SSL_CTX_free(old); /* open sessions hold their own reference to it */
  return FLOSSE_OK;
}

SSL *flosse_tls_session(struct flosse_tls *t, int fd) {
  pthread_mutex_lock(&t->lock);
  SSL *s = SSL_new(t->ctx); /* takes a reference to the context */
  pthread_mutex_unlock(&t->lock);
  if (!s) {
    ERR_clear_error();
    return NULL;
  }
  if (SSL_set_fd(s, fd) != 1) {
    SSL_free(s);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_accept_state(s);
  return s;
}

/* What an SSL_read or SSL_write that returned r <= 0 means, as errno. */
static ssize_t failed(SSL *s, int r, int *want_other, int other) {
  int e = SSL_get_error(s, r);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      *want_other = other == SSL_ERROR_WANT_READ;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_WANT_WRITE:
      *want_other = other == SSL_ERROR_WANT_WRITE;
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL:
      ERR_clear_error();
      if (errno == 0 || errno == EAGAIN) return 0; /* EOF without close_notify */
      return -1;
    default: {
      char why[256];
      reason(why, sizeof why);
      flosse_log(FLOSSE_LOG_DEBUG, "TLS: %s", why);
      errno = EPROTO;
      return -1;
    }
  }
}

ssize_t flosse_tls_read(SSL *s, void *buf, size_t len, int *want_write) {
  *want_write = 0;
  ERR_clear_error();
  errno = 0;
  size_t got = 0;
  int r = SSL_read_ex(s, buf, len, &got);
  if (r == 1) return (ssize_t)got;
  return failed(s, 0, want_write, SSL_ERROR_WANT_WRITE);
}

#define COALESCE (16 << 10) /* a full TLS record */

ssize_t flosse_tls_writev(SSL *s, const struct iovec *iov, int n, int *want_read) {
  *want_read = 0;
  unsigned char tmp[COALESCE];
  const void *p = iov[0].iov_base;
  size_t len = iov[0].iov_len;
  /* Small pieces (events, frame heads) go out together in one record,
   * rather than one record each; the same bytes are offered again after
   * EAGAIN, since the queue only grows at its end. */
  if (len < COALESCE && n > 1) {
    size_t at = 0;
    for (int i = 0; i < n && at < COALESCE; i++) {
      size_t k = iov[i].iov_len < COALESCE - at ? iov[i].iov_len : COALESCE - at;
      memcpy(tmp + at, iov[i].iov_base, k);
      at += k;
    }
    p = tmp;
    len = at;
  }
  ERR_clear_error();
  errno = 0;
  size_t wrote = 0;
  int r = SSL_write_ex(s, p, len, &wrote);
  if (r == 1) return (ssize_t)wrote;
  ssize_t rc = failed(s, 0, want_read, SSL_ERROR_WANT_READ);
  if (rc == 0) { /* the peer is gone */
    errno = EPIPE;
    return -1;
  }
  return rc;
}

int flosse_tls_h2(SSL *s) {
  const unsigned char *p;
  unsigned int len;
  SSL_get0_alpn_selected(s, &p, &len);
  return len == 2 && memcmp(p, "h2", 2) == 0;
}

void flosse_tls_close(SSL *s) {
  ERR_clear_error();
  if (SSL_is_init_finished(s)) SSL_shutdown(s); /* one try: the socket is non-blocking */
  ERR_clear_error();
  SSL_free(s);
}
