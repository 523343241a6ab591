/* The server's configuration, as core.listen was given it (defaults in
 * defaults.h). Each layer reads the part it needs through a const pointer. */
#ifndef FLOSSE_CONFIG_H
#define FLOSSE_CONFIG_H

#include <stddef.h>

#include "http.h"

struct flosse_tls; /* tls.h */

struct flosse_config {
  struct flosse_http_limits http;
  size_t high_water;    /* a view is not resumed while its output is above this */
  size_t low_water;     /* ... and is resumed once it drains below this */
  int resume_budget;    /* events per resume before other work gets a turn */
  int debug;            /* error events carry the error text */
  double heartbeat;     /* seconds of silence before a comment frame; 0: none */
  double header_timeout;/* to receive a request's headers */
  double write_timeout; /* without the socket taking a byte while output waits */
  double grace;         /* graceful shutdown: time to drain */
  long max_conns;       /* 0: from the open-file limit */
  long instruction_budget; /* VM instructions between two yields; 0: none */
  size_t lua_memory;    /* bytes the Lua state may hold; 0: no cap */
  struct flosse_tls *tls;   /* the certificate, one for every worker; NULL: cleartext */
  unsigned h2_max_streams;  /* concurrent streams per HTTP/2 connection */
};

#endif
