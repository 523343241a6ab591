/* HTTP/2 through nghttp2: a connection whose client sends the preface
 * (after ALPN chose h2 on TLS, or with prior knowledge in cleartext)
 * becomes a session, and each of its streams is a connection of its own to
 * the layer above (conn.h's flosse_conn_new_stream): one request, one task.
 * The stream's answer is what the HTTP/1.1 response writer wrote into its
 * output, turned into HEADERS (its head) and DATA frames (its body), under
 * per-stream flow control; its end is END_STREAM. Part of the transport: it
 * knows nothing of Lua. */
#ifndef FLOSSE_H2_H
#define FLOSSE_H2_H

#include "conn.h"

/* What the process layer gives the connections (conns->h2). */
extern const struct flosse_conn_h2_ops flosse_h2_ops;

#endif
