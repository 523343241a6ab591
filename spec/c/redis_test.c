/* Unit tests of core/redis.c's URL parser and settings defaults.
 * Prints TAP: one "ok N - redis: ..." or "not ok N - redis: ..." line a check.
 *
 * Build and run (from the checkout's root):
 *   mkdir -p build/test && cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -g \
 *     -fsanitize=address,undefined -fno-omit-frame-pointer -I/usr/include/lua5.4 \
 *     -o build/test/redis_test spec/c/redis_test.c core/redis.c core/log.c \
 *     -lhiredis -lhttp_parser -lev -lpthread && build/test/redis_test
 */
#include <stdio.h>
#include <string.h>

#include "../../core/buf.h"
#include "../../core/defaults.h"
#include "../../core/redis.h"

#define TAP_PREFIX "redis"
#include "tap.h"

/* url parses into host, port, path, user, password, db and text. */
static void good(const char *url, const char *host, int port, const char *path, const char *user,
                 const char *password, int db, const char *text) {
  struct flosse_redis_url u;
  char err[300] = "", what[600], detail[2400];
  int rc = flosse_redis_url_parse(url, &u, err, sizeof err);
  snprintf(what, sizeof what, "%s parses", url);
  snprintf(detail, sizeof detail, "rc %d err [%s] host [%s] port %d path [%s] user [%s] password [%s] db %d text [%s]",
           rc, err, u.host, u.port, u.path, u.user, u.password, u.db, u.text);
  check(rc == FLOSSE_OK && strcmp(u.host, host) == 0 && u.port == port && strcmp(u.path, path) == 0 &&
            strcmp(u.user, user) == 0 && strcmp(u.password, password) == 0 && u.db == db &&
            strcmp(u.text, text) == 0,
        what, detail);
}

/* url is refused with an error that contains want. */
static void bad(const char *url, const char *want) {
  struct flosse_redis_url u;
  char err[300] = "", what[600], detail[400];
  int rc = flosse_redis_url_parse(url, &u, err, sizeof err);
  snprintf(what, sizeof what, "%s is refused (%s)", url, want);
  snprintf(detail, sizeof detail, "rc %d err [%s]", rc, err);
  check(rc == FLOSSE_ERR && strstr(err, want) != NULL, what, detail);
}

int main(void) {
  good("redis://127.0.0.1", "127.0.0.1", 6379, "", "", "", 0, "redis://127.0.0.1");
  good("redis://127.0.0.1:6399/0", "127.0.0.1", 6399, "", "", "", 0, "redis://127.0.0.1:6399/0");
  good("redis://localhost:6380/3", "localhost", 6380, "", "", "", 3, "redis://localhost:6380/3");
  good("redis://cache.example/", "cache.example", 6379, "", "", "", 0, "redis://cache.example/");
  good("redis://:s3cret@10.0.0.1:6379/2", "10.0.0.1", 6379, "", "", "s3cret", 2, "redis://:...@10.0.0.1:6379/2");
  good("redis://app:pw@h/1", "h", 6379, "", "app", "pw", 1, "redis://app:...@h/1");
  good("redis://[::1]:7000/0", "::1", 7000, "", "", "", 0, "redis://[::1]:7000/0");
  good("unix:///run/redis/redis.sock", "", 0, "/run/redis/redis.sock", "", "", 0, "unix:///run/redis/redis.sock");
  good("unix:///tmp/r.sock?db=5", "", 0, "/tmp/r.sock", "", "", 5, "unix:///tmp/r.sock?db=5");
  bad("http://127.0.0.1:6379/", "the scheme must be redis:// or unix://");
  bad("127.0.0.1:6379", "bad Redis URL '127.0.0.1:6379'");
  bad("redis://", "bad Redis URL");
  bad("redis://h/db", "the path must be /DB");
  bad("redis://h/1/2", "the path must be /DB");
  bad("redis://h:99999/", "bad Redis URL");
  bad("redis://h:0/", "port 0");
  bad("redis://h/0?x=1", "no query");
  bad("unix://relative.sock", "expected unix:///path");
  bad("unix:///tmp/r.sock?db=x", "db=N");
  bad("unix:///tmp/r.sock?foo=1", "db=N");
  bad("", "bad Redis URL");

  struct flosse_redis_url a, b;
  char err[300];
  flosse_redis_url_parse("redis://h:1/2", &a, err, sizeof err);
  flosse_redis_url_parse("redis://h:1/2", &b, err, sizeof err);
  check(flosse_redis_url_same(&a, &b), "the same URL names the same server", NULL);
  flosse_redis_url_parse("redis://h:1/3", &b, err, sizeof err);
  check(!flosse_redis_url_same(&a, &b), "another database is another server", NULL);

  const struct flosse_redis_settings *s = flosse_redis_settings();
  check(!s->configured && strcmp(s->prefix, FLOSSE_DEFAULT_REDIS_PREFIX) == 0 &&
            s->timeout == FLOSSE_DEFAULT_REDIS_TIMEOUT && s->pool == FLOSSE_DEFAULT_REDIS_POOL,
        "unconfigured settings hold the defaults", NULL);
  printf("1..%d\n", n_checks);
  return n_failed ? 1 : 0;
}
