/* TLS through OpenSSL (tls.h): the server's context, swapped whole on a
 * reload, and the read and write of a session on a non-blocking socket. */
#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h" /* FLOSSE_OK */
#include "log.h"

/* A record's plaintext at most: small iovs are gathered up to this so that
 * each record is full, and an iov this large is written from where it is. */
#define RECORD_BYTES 16384

struct flosse_tls {
  pthread_mutex_t lock; /* guards ctx: workers take it while SIGHUP swaps it */
  SSL_CTX *ctx;         /* what new sessions get; open ones hold their own reference */
  char *cert, *key;     /* the paths, read again on a reload */
};

/* ALPN, in our order of preference (wire format: length-prefixed names). */
static const unsigned char alpn_ours[] = "\x02h2\x08http/1.1";

static int select_alpn(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  (void)s;
  (void)arg;
  unsigned char *chosen;
  /* The first of ours the client also offers: h2 over http/1.1. */
  if (SSL_select_next_proto(&chosen, outlen, alpn_ours, sizeof alpn_ours - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK; /* nothing in common: no ALPN, HTTP/1.1 */
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

/* A key under a passphrase would make OpenSSL ask on the terminal (and a
 * reload would hang the main loop): there is no one to ask, so it fails. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return 0;
}

/* OpenSSL's reason for the first error queued (the root cause: a missing
 * file's errno comes before "system lib"), then the queue emptied. */
static void openssl_reason(char *out, size_t outlen) {
  unsigned long e = ERR_get_error();
  if (e) ERR_error_string_n(e, out, outlen);
  else snprintf(out, outlen, "unknown error");
  ERR_clear_error();
}

/* A fresh server context for cert and key, or NULL with err filled in. */
static SSL_CTX *make_ctx(const char *cert, const char *key, char *err, size_t errlen) {
  char why[256];
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    openssl_reason(why, sizeof why);
    snprintf(err, errlen, "cannot make a TLS context: %s", why);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  /* Partial writes: a write returns once a record is out, so a slow
   * socket never holds more than one record of ours inside OpenSSL;
   * moving buffer: writev gathers into a buffer of its stack; release
   * buffers: an idle stream (most of an SSE server's) holds no 2 x 16 KiB. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  long opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  /* Browsers and proxies often close without close_notify: that is an
   * end, not an attack, for a server that reads length-delimited requests. */
  opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
  SSL_CTX_set_options(ctx, opts);
  /* Resumption: an SSE client reconnects often (after a drop, on every
   * retry); the server cache serves TLS 1.2 ids, tickets TLS 1.3. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"flosse", 6);
  SSL_CTX_sess_set_cache_size(ctx, 20480);
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    openssl_reason(why, sizeof why);
    snprintf(err, errlen, "cannot load the TLS certificate %s: %s", cert, why);
    goto err;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    /* OpenSSL compares the key with the certificate as it loads it. */
    unsigned long e = ERR_peek_error();
    int mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 &&
                   (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
                    ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
    openssl_reason(why, sizeof why);
    if (mismatch)
      snprintf(err, errlen, "the TLS key %s does not match the certificate %s: %s", key, cert, why);
    else
      snprintf(err, errlen, "cannot load the TLS key %s: %s", key, why);
    goto err;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    openssl_reason(why, sizeof why);
    snprintf(err, errlen, "the TLS key %s does not match the certificate %s: %s", key, cert, why);
    goto err;
  }
  ERR_clear_error();
  return ctx;
err:
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return NULL;
}

struct flosse_tls *flosse_tls_new(const char *cert, const char *key, char *err, size_t errlen) {
  struct flosse_tls *t = calloc(1, sizeof *t);
  if (!t || !(t->cert = strdup(cert)) || !(t->key = strdup(key))) {
    snprintf(err, errlen, "out of memory");
    goto err;
  }
  t->ctx = make_ctx(cert, key, err, errlen);
  if (!t->ctx) goto err;
  pthread_mutex_init(&t->lock, NULL);
  return t;
err:
  if (t) {
    free(t->cert);
    free(t->key);
    free(t);
  }
  return NULL;
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
  /* Read outside the lock: the workers' accepts never wait on the disk. */
  SSL_CTX *fresh = make_ctx(t->cert, t->key, err, errlen);
  if (!fresh) return FLOSSE_ERR;
  pthread_mutex_lock(&t->lock);
  SSL_CTX *old = t->ctx;
  t->ctx = fresh;
  pthread_mutex_unlock(&t->lock);
  SSL_CTX_free(old); /* gone once its last session is */
  return FLOSSE_OK;
}

SSL *flosse_tls_session(struct flosse_tls *t, int fd) {
  pthread_mutex_lock(&t->lock);
  SSL_CTX *ctx = t->ctx;
  SSL_CTX_up_ref(ctx); /* a reload may free t's reference meanwhile */
  pthread_mutex_unlock(&t->lock);
  ERR_clear_error();
  SSL *s = SSL_new(ctx); /* holds a reference of its own */
  SSL_CTX_free(ctx);
  if (s && SSL_set_fd(s, fd) != 1) {
    SSL_free(s);
    s = NULL;
  }
  if (s) SSL_set_accept_state(s);
  ERR_clear_error();
  return s;
}

/* What a failed SSL_read_ex/SSL_write_ex (ret) means, as read(2) would say
 * it: -1 with errno EAGAIN and *want_other when it waits for the other
 * direction; 0 at the end; -1 with errno otherwise. */
static ssize_t failed(SSL *s, int ret, int want_other_code, int *want_other, int at_eof,
                      const char *op) {
  int saved = errno;
  int e = SSL_get_error(s, ret);
  char why[256];
  switch (e) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    *want_other = e == want_other_code;
    errno = EAGAIN;
    return -1;
  case SSL_ERROR_ZERO_RETURN: /* close_notify */
    ERR_clear_error();
    if (at_eof) return 0;
    errno = EPIPE;
    return -1;
  case SSL_ERROR_SYSCALL:
    ERR_clear_error();
    SSL_set_quiet_shutdown(s, 1); /* fatal: no close_notify after it */
    if (saved == 0) {
      if (at_eof) return 0; /* the peer closed the socket */
      saved = EPIPE;
    }
    errno = saved;
    return -1;
  default: /* SSL_ERROR_SSL: the peer spoke something else, or broke the protocol */
    openssl_reason(why, sizeof why);
    SSL_set_quiet_shutdown(s, 1);
    flosse_log(FLOSSE_LOG_DEBUG, "TLS %s failed on fd %d: %s", op, SSL_get_fd(s), why);
    errno = EPROTO;
    return -1;
  }
}

ssize_t flosse_tls_read(SSL *s, void *buf, size_t len, int *want_write) {
  *want_write = 0;
  size_t got = 0;
  ERR_clear_error();
  errno = 0;
  int ret = SSL_read_ex(s, buf, len, &got);
  if (ret == 1) return (ssize_t)(got > SSIZE_MAX ? SSIZE_MAX : got);
  return failed(s, ret, SSL_ERROR_WANT_WRITE, want_write, 1, "read");
}

ssize_t flosse_tls_writev(SSL *s, const struct iovec *iov, int n, int *want_read) {
  *want_read = 0;
  unsigned char gather[RECORD_BYTES];
  size_t taken = 0;
  int i = 0;
  size_t off = 0; /* into iov[i] */
  for (;;) {
    while (i < n && off == iov[i].iov_len) i++, off = 0;
    if (i == n) return (ssize_t)taken;
    /* The next write is a function of the bytes from here on only, so a
     * retry (offered at least the same bytes) repeats it, as OpenSSL
     * requires of a write it could not finish. */
    const unsigned char *p;
    size_t len;
    size_t rem = iov[i].iov_len - off;
    if (rem >= RECORD_BYTES) {
      p = (const unsigned char *)iov[i].iov_base + off;
      len = rem > INT_MAX ? INT_MAX : rem;
    } else {
      len = 0;
      for (int j = i; j < n && len < RECORD_BYTES; j++) {
        size_t from = j == i ? off : 0;
        size_t k = iov[j].iov_len - from;
        if (k > RECORD_BYTES - len) k = RECORD_BYTES - len;
        memcpy(gather + len, (const unsigned char *)iov[j].iov_base + from, k);
        len += k;
      }
      p = gather;
    }
    size_t wrote = 0;
    ERR_clear_error();
    errno = 0;
    int ret = SSL_write_ex(s, p, len, &wrote);
    if (ret != 1) {
      ssize_t r = failed(s, ret, SSL_ERROR_WANT_READ, want_read, 0, "write");
      /* Bytes already taken are the caller's to count; the record OpenSSL
       * keeps begins with the first byte not taken, where the caller's
       * next call begins. */
      if (r < 0 && errno == EAGAIN && taken > 0) {
        *want_read = 0;
        return (ssize_t)taken;
      }
      return r;
    }
    taken += wrote;
    /* Advance the cursor over what went out. */
    while (wrote > 0) {
      size_t k = iov[i].iov_len - off;
      if (k > wrote) k = wrote;
      off += k;
      wrote -= k;
      if (off == iov[i].iov_len) i++, off = 0;
    }
  }
}

int flosse_tls_h2(SSL *s) {
  if (!SSL_is_init_finished(s)) return 0;
  const unsigned char *proto = NULL;
  unsigned int len = 0;
  SSL_get0_alpn_selected(s, &proto, &len);
  return len == 2 && memcmp(proto, "h2", 2) == 0;
}

void flosse_tls_close(SSL *s) {
  if (!s) return;
  /* One try: a socket that does not take the alert now is not waited
   * for (the fd is closed next). Not after a fatal error (quiet), nor
   * before the handshake ended. */
  if (SSL_is_init_finished(s) && !SSL_get_quiet_shutdown(s)) {
    ERR_clear_error();
    (void)SSL_shutdown(s);
  }
  ERR_clear_error();
  SSL_free(s);
}
