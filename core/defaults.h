/* Every default of the server, in one place. The C core takes them from
 * here, and Lua gets them as core.defaults (flosse.app's settings start
 * from that table), so that a default never has two values. */
#ifndef FLOSSE_DEFAULTS_H
#define FLOSSE_DEFAULTS_H

#define FLOSSE_DEFAULT_HOST "127.0.0.1"
#define FLOSSE_DEFAULT_PORT 8080
#define FLOSSE_DEFAULT_MAX_URL_BYTES 8192
#define FLOSSE_DEFAULT_MAX_HEADER_BYTES 16384
#define FLOSSE_DEFAULT_MAX_BODY_BYTES (1 << 20)
#define FLOSSE_DEFAULT_HIGH_WATER (256 << 10)   /* bytes of output before a view waits */
#define FLOSSE_DEFAULT_LOW_WATER (64 << 10)     /* ... and below which it runs again */
#define FLOSSE_DEFAULT_RESUME_BUDGET 64         /* events per resume before others run */
#define FLOSSE_DEFAULT_HEARTBEAT 15.0           /* seconds of silence; 0: none */
#define FLOSSE_DEFAULT_HEADER_TIMEOUT 10.0
#define FLOSSE_DEFAULT_WRITE_TIMEOUT 30.0
#define FLOSSE_DEFAULT_GRACE 5.0
#define FLOSSE_DEFAULT_MAX_CONNECTIONS 0        /* 0: the open-file limit less 64 */
#define FLOSSE_DEFAULT_INSTRUCTION_BUDGET 100000000L
#define FLOSSE_DEFAULT_LUA_MEMORY_MIB 1024
#define FLOSSE_DEFAULT_MAX_CONCURRENT_STREAMS 128 /* per HTTP/2 connection */
#define FLOSSE_DEFAULT_CHANNEL_HISTORY 100
#define FLOSSE_DEFAULT_CHANNEL_HISTORY_SECONDS 0.0
#define FLOSSE_DEFAULT_CHANNEL_BACKLOG 1000
#define FLOSSE_DEFAULT_MAX_CHANNELS 100000
#define FLOSSE_DEFAULT_LOG_LEVEL "info"
#define FLOSSE_DEFAULT_REDIS_PREFIX "flosse:"   /* of every Redis key flosse makes */
#define FLOSSE_DEFAULT_REDIS_TIMEOUT 2.0        /* seconds: connect, and each command */
#define FLOSSE_DEFAULT_REDIS_POOL 4             /* connections per worker per Redis URL */
#define FLOSSE_DEFAULT_HTTP_TIMEOUT 30.0        /* seconds: a flosse.http request, start to end */
#define FLOSSE_DEFAULT_HTTP_MAX_BODY (1 << 20)  /* bytes of a flosse.http response body */

/* Not settings: how long a closing connection waits for its client's FIN,
 * and the longest channel name. */
#define FLOSSE_LINGER_SECONDS 2.0
#define FLOSSE_CHANNEL_NAME_MAX 200
/* Nor these: the header bytes of a flosse.http response, and how many
 * redirects follow = true follows. */
#define FLOSSE_HTTP_MAX_HEADER_BYTES (64 << 10)
#define FLOSSE_HTTP_MAX_REDIRECTS 5

#endif
