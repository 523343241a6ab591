/* Lua values the core reads and makes: a yield as an SSE event, a view's
 * returned headers, the request table, channel messages. The Lua/C glue
 * the task layer needs (the bindings, l*.c, hold the rest). */
#ifndef FLOSSE_LVALUES_H
#define FLOSSE_LVALUES_H

#include <lua.h>

#include "buf.h"
#include "channel.h"
#include "http.h"
#include "sse.h"

/* Reads the n values at L[base..] as a yield into ev, whose strings stay
 * valid while the caller keeps the values pushed meanwhile (the caller
 * resets the stack). Returns FLOSSE_OK, or FLOSSE_ERR with err filled in. */
int flosse_lvalues_event(lua_State *L, int base, int n, struct flosse_sse_event *ev, char *err,
                         size_t errlen);

/* Frames the n values at L[base..base+n) the way a yield of them is framed.
 * Appends to out and returns FLOSSE_OK, or FLOSSE_ERR with err filled in.
 * May call the JSON encoder (protected); leaves L's stack as it found it. */
int flosse_lvalues_frame(lua_State *L, int base, int n, struct flosse_buf *out, char *err,
                         size_t errlen);

/* A retry value (milliseconds) at L[idx]: *out < 0 for nil. Returns 1, or 0
 * with err filled in. */
int flosse_lvalues_retry(lua_State *L, int idx, long long *out, char *err, size_t errlen);

/* Pushes the request table for h (method, url, version, body, remote_addr,
 * headers: repeated ones joined). May raise (no memory). */
void flosse_lvalues_push_request(lua_State *L, const struct flosse_http *h, const char *remote);

/* Writes the headers of the table at T[idx] (string keys; string or number
 * values) to out, dropping unsafe and managed ones (logged with what).
 * Returns FLOSSE_OK or FLOSSE_ERR (no memory). */
int flosse_lvalues_headers(lua_State *T, int idx, struct flosse_buf *out, const char *what);

/* Channel messages as Lua userdata (flosse.Message). push takes the
 * caller's reference; test returns the message at L[idx] or NULL. */
void flosse_lvalues_push_msg(lua_State *L, struct flosse_msg *m);
struct flosse_msg *flosse_lvalues_testmsg(lua_State *L, int idx);
/* Registers the Message metatable in L. */
void flosse_lvalues_register(lua_State *L);

#endif
