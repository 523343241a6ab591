/* TEMPORARY STUB (not committed) */
#include "tls.h"
#include <errno.h>
#include <unistd.h>
struct flosse_tls *flosse_tls_new(const char *cert, const char *key, char *err, size_t errlen) {(void)cert;(void)key;(void)err;(void)errlen;return 0;}
void flosse_tls_free(struct flosse_tls *t){(void)t;}
int flosse_tls_reload(struct flosse_tls *t, char *err, size_t errlen){(void)t;(void)err;(void)errlen;return -1;}
SSL *flosse_tls_session(struct flosse_tls *t, int fd){(void)t;(void)fd;return 0;}
ssize_t flosse_tls_read(SSL *s, void *buf, size_t len, int *w){(void)s;(void)buf;(void)len;(void)w;errno=EIO;return -1;}
ssize_t flosse_tls_writev(SSL *s, const struct iovec *iov, int n, int *w){(void)s;(void)iov;(void)n;(void)w;errno=EIO;return -1;}
int flosse_tls_h2(SSL *s){(void)s;return 0;}
void flosse_tls_close(SSL *s){(void)s;}
