/* Unit tests of core/tls.c over socketpairs, against an OpenSSL client in
 * the same thread: loading errors, ALPN, reads and ends, writev's retry
 * contract on a full socket, and reloads (also while other threads make
 * sessions). Prints TAP: one "ok N - tls: ..." line a check.
 *   cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -g \
 *     -fsanitize=address,undefined -o build/test/tls_test spec/c/tls_test.c core/tls.c core/log.c \
 *     -lssl -lcrypto -lpthread
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/buf.h"
#include "../../core/tls.h"

#define TAP_PREFIX "tls"
#include "tap.h"

static char dir[64];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* A self-signed P-256 certificate with this serial, and its key, to files. */
static void make_cert(const char *certname, const char *keyname, long serial) {
  char p[128];
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, k);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, k, EVP_sha256());
  path_of(p, sizeof p, certname);
  FILE *f = fopen(p, "w");
  PEM_write_X509(f, x);
  fclose(f);
  if (keyname) {
    path_of(p, sizeof p, keyname);
    f = fopen(p, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
  }
  X509_free(x);
  EVP_PKEY_free(k);
}

static struct flosse_tls *load(const char *cert, const char *key, char *err, size_t errlen) {
  char c[128], k[128];
  path_of(c, sizeof c, cert);
  path_of(k, sizeof k, key);
  return flosse_tls_new(c, k, err, errlen);
}

struct pair {
  int sfd, cfd;
  SSL *server, *client;
  SSL_CTX *cctx;
};

/* A server session and a client (offering alpn, wire format) on a socketpair. */
static void pair_open(struct pair *p, struct flosse_tls *t, const char *alpn, size_t alpn_len) {
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  p->sfd = sv[0];
  p->cfd = sv[1];
  fcntl(p->sfd, F_SETFL, O_NONBLOCK);
  fcntl(p->cfd, F_SETFL, O_NONBLOCK);
  p->server = flosse_tls_session(t, p->sfd);
  p->cctx = SSL_CTX_new(TLS_client_method());
  p->client = SSL_new(p->cctx);
  if (alpn) SSL_set_alpn_protos(p->client, (const unsigned char *)alpn, (unsigned)alpn_len);
  SSL_set_fd(p->client, p->cfd);
  SSL_set_connect_state(p->client);
}

static void pair_close(struct pair *p) {
  if (p->server) flosse_tls_close(p->server);
  SSL_free(p->client);
  SSL_CTX_free(p->cctx);
  close(p->sfd);
  close(p->cfd);
  ERR_clear_error();
}

/* Drives both ends until the handshake is over (bounded). Returns 1 then. */
static int handshake(struct pair *p) {
  char buf[64];
  for (int i = 0; i < 100; i++) {
    int c = SSL_do_handshake(p->client);
    int w;
    ssize_t r = flosse_tls_read(p->server, buf, sizeof buf, &w);
    if (r < 0 && errno != EAGAIN) return 0;
    if (c == 1 && SSL_is_init_finished(p->server)) return 1;
  }
  return 0;
}

static long peer_serial(SSL *client) {
  X509 *x = SSL_get1_peer_certificate(client);
  if (!x) return -1;
  long s = ASN1_INTEGER_get(X509_get_serialNumber(x));
  X509_free(x);
  return s;
}

static void test_loading(void) {
  char err[512];
  struct flosse_tls *t = load("missing.pem", "key1.pem", err, sizeof err);
  check(!t && strstr(err, "missing.pem") && strstr(err, "No such file"), "a missing certificate: its path and why", err);
  t = load("key1.pem", "key1.pem", err, sizeof err);
  check(!t && strstr(err, "certificate") && strstr(err, "key1.pem"), "a key given as the certificate", err);
  t = load("cert1.pem", "key2.pem", err, sizeof err);
  check(!t && strstr(err, "does not match"), "a key of another certificate", err);
  t = load("cert1.pem", "key1.pem", err, sizeof err);
  check(t != NULL, "a certificate and its key load", err);
  check(ERR_peek_error() == 0, "the error queue is left empty", NULL);
  flosse_tls_free(t);
}

static void test_alpn(struct flosse_tls *t) {
  struct pair p;
  pair_open(&p, t, "\x08http/1.1\x02h2", 12);
  check(handshake(&p), "handshake (client offers http/1.1, h2)", NULL);
  check(flosse_tls_h2(p.server) == 1, "ALPN prefers h2 whatever the client's order", NULL);
  check(SSL_version(p.client) >= TLS1_2_VERSION, "TLS 1.2 or later", NULL);
  pair_close(&p);
  pair_open(&p, t, "\x08http/1.1", 9);
  check(handshake(&p) && flosse_tls_h2(p.server) == 0, "ALPN: http/1.1 when the client offers only it", NULL);
  const unsigned char *proto;
  unsigned len;
  SSL_get0_alpn_selected(p.client, &proto, &len);
  check(len == 8 && memcmp(proto, "http/1.1", 8) == 0, "the client sees http/1.1 chosen", NULL);
  pair_close(&p);
  pair_open(&p, t, NULL, 0);
  check(handshake(&p) && flosse_tls_h2(p.server) == 0, "no ALPN: HTTP/1.1", NULL);
  pair_close(&p);
}

static void test_read_and_end(struct flosse_tls *t) {
  struct pair p;
  char buf[64];
  int w;
  pair_open(&p, t, NULL, 0);
  handshake(&p);
  SSL_write(p.client, "GET / HTTP/1.1\r\n", 16);
  ssize_t r = flosse_tls_read(p.server, buf, sizeof buf, &w);
  check(r == 16 && memcmp(buf, "GET / HTTP/1.1\r\n", 16) == 0, "read: the plaintext", NULL);
  r = flosse_tls_read(p.server, buf, sizeof buf, &w);
  check(r == -1 && errno == EAGAIN && w == 0, "read: EAGAIN, waiting to read, when nothing came", NULL);
  SSL_shutdown(p.client);
  r = flosse_tls_read(p.server, buf, sizeof buf, &w);
  check(r == 0, "read: 0 after close_notify", NULL);
  pair_close(&p);

  pair_open(&p, t, NULL, 0);
  handshake(&p);
  shutdown(p.cfd, SHUT_WR); /* the peer goes without close_notify */
  r = flosse_tls_read(p.server, buf, sizeof buf, &w);
  check(r == 0, "read: 0 when the socket ends without close_notify", NULL);
  pair_close(&p);

  pair_open(&p, t, NULL, 0);
  const char plain[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ssize_t sent = write(p.cfd, plain, sizeof plain - 1);
  (void)sent;
  r = flosse_tls_read(p.server, buf, sizeof buf, &w);
  check(r == -1 && errno == EPROTO, "read: plain HTTP on the TLS port is EPROTO", NULL);
  check(ERR_peek_error() == 0, "the error queue is cleared after a TLS failure", NULL);
  pair_close(&p); /* no close_notify after a fatal error (ASan/UBSan would see misuse) */
}

/* Everything the client can read now, appended to got. */
static void drain_client(struct pair *p, unsigned char *got, size_t *n, size_t cap) {
  for (;;) {
    size_t k = 0;
    if (SSL_read_ex(p->client, got + *n, cap - *n, &k) != 1) break;
    *n += k;
  }
  ERR_clear_error();
}

static void test_writev(struct flosse_tls *t) {
  struct pair p;
  pair_open(&p, t, NULL, 0);
  handshake(&p);
  int small = 4096;
  setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(p.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  /* The output queue: many small segments, a large one, small ones; it
   * grows at its end while a write waits. */
  enum { TOTAL = 300000, NSEG = 64 };
  unsigned char *src = malloc(TOTAL), *got = malloc(TOTAL);
  for (int i = 0; i < TOTAL; i++) src[i] = (unsigned char)(i * 7 + i / 251);
  size_t seg[NSEG];
  for (int i = 0; i < NSEG; i++) seg[i] = i == 20 ? 100000 : (size_t)(97 + i * 311 % 7000);
  size_t sum = 0;
  int nseg = 0;
  while (nseg < NSEG && sum + seg[nseg] <= TOTAL) sum += seg[nseg++];
  size_t done = 0, n = 0;
  int visible = 8, eagains = 0, bad = 0, calls = 0;
  while (done < sum && calls < 100000) {
    calls++;
    /* The iovs from the first byte not taken, over the segments visible. */
    struct iovec iov[NSEG];
    int k = 0;
    size_t at = 0;
    for (int i = 0; i < visible && i < nseg; i++) {
      size_t a = at, b = at + seg[i];
      at = b;
      if (b <= done) continue;
      size_t from = done > a ? done - a : 0;
      iov[k].iov_base = src + a + from;
      iov[k].iov_len = seg[i] - from;
      k++;
    }
    int wr;
    ssize_t r = flosse_tls_writev(p.server, iov, k, &wr);
    if (r > 0) done += (size_t)r;
    else if (r < 0 && errno == EAGAIN) eagains++;
    else bad = 1;
    if (bad) break;
    if (visible < nseg) visible++; /* more queued meanwhile */
    drain_client(&p, got, &n, TOTAL);
  }
  for (int i = 0; i < 200 && n < sum; i++) drain_client(&p, got, &n, TOTAL);
  char detail[128];
  snprintf(detail, sizeof detail, "sent %zu of %zu, received %zu, %d EAGAINs, %d calls", done, sum, n, eagains, calls);
  check(!bad && done == sum && n == sum && memcmp(src, got, sum) == 0,
        "writev: every byte once, in order, through a full socket and retries", detail);
  check(eagains > 0, "writev: the socket filled up (the retry path ran)", detail);
  free(src);
  free(got);
  pair_close(&p);
}

static struct flosse_tls *shared;
static volatile int stop_threads;

static void *sessions(void *arg) {
  (void)arg;
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  while (!stop_threads) {
    SSL *s = flosse_tls_session(shared, sv[0]);
    flosse_tls_close(s);
  }
  close(sv[0]);
  close(sv[1]);
  return NULL;
}

static void test_reload(void) {
  char err[512];
  shared = load("cert.pem", "key.pem", err, sizeof err);
  struct pair before, after;
  pair_open(&before, shared, NULL, 0);
  check(handshake(&before) && peer_serial(before.client) == 1, "before a reload: the first certificate", NULL);
  make_cert("cert.pem", "key.pem", 2);
  pthread_t th[3];
  for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, sessions, NULL);
  int ok = 1;
  for (int i = 0; i < 50; i++) ok = ok && flosse_tls_reload(shared, err, sizeof err) == FLOSSE_OK;
  stop_threads = 1;
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
  check(ok, "reloads while three threads make sessions", err);
  pair_open(&after, shared, NULL, 0);
  check(handshake(&after) && peer_serial(after.client) == 2, "after a reload: a new session gets the new one", NULL);
  /* The session begun before still works on its own context. */
  char buf[8];
  int w;
  SSL_write(before.client, "ping", 4);
  check(flosse_tls_read(before.server, buf, sizeof buf, &w) == 4, "a session begun before goes on", NULL);
  char p[128];
  path_of(p, sizeof p, "cert.pem");
  FILE *f = fopen(p, "w");
  fputs("not a certificate\n", f);
  fclose(f);
  int rc = flosse_tls_reload(shared, err, sizeof err);
  check(rc == FLOSSE_ERR && strstr(err, "cert.pem") != NULL, "a broken certificate: the reload fails, saying why", err);
  pair_close(&after);
  pair_open(&after, shared, NULL, 0);
  check(handshake(&after) && peer_serial(after.client) == 2, "... and the previous one stays", NULL);
  pair_close(&after);
  pair_close(&before);
  flosse_tls_free(shared);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/flosse-tls-test.XXXXXX");
  if (!mkdtemp(dir)) return 1;
  make_cert("cert1.pem", "key1.pem", 1);
  make_cert("cert2.pem", "key2.pem", 2);
  make_cert("cert.pem", "key.pem", 1);
  test_loading();
  char err[512];
  struct flosse_tls *t = load("cert1.pem", "key1.pem", err, sizeof err);
  test_alpn(t);
  test_read_and_end(t);
  test_writev(t);
  flosse_tls_free(t);
  test_reload();
  const char *files[] = {"cert1.pem", "key1.pem", "cert2.pem", "key2.pem", "cert.pem", "key.pem"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char p[128];
    path_of(p, sizeof p, files[i]);
    unlink(p);
  }
  rmdir(dir);
  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
