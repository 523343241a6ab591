/* Request threads: the Lua side of a connection. A request runs in its own
 * Lua thread; every yield is an event to frame or a wait marked by the core. */
#ifndef FLOSSE_STREAM_H
#define FLOSSE_STREAM_H

#include <lua.h>

#include "buf.h"
#include "conn.h"

/* Starts the request thread for the request the parser just completed.
 * On failure the connection gets a 500 (or is closed). */
void flosse_stream_dispatch(struct flosse_conn *c);

/* Resumes the thread with nargs values already pushed on it. */
void flosse_stream_resume(struct flosse_conn *c, int nargs);

/* Closes the thread (to-be-closed variables run), runs the on_close
 * handler, and drops both references. Safe to call twice. */
void flosse_stream_release(struct flosse_conn *c);

/* Graceful shutdown of one connection: a stream is ended (view closed,
 * on_close run, terminator queued), an unanswered request gets 503, and
 * the connection closes once its output is sent. */
void flosse_stream_shutdown(struct flosse_conn *c);

/* Frames the n values at L[base..base+n) the way a yield of them is framed.
 * Appends to out and returns FLOSSE_OK, or FLOSSE_ERR with err filled in.
 * May call the JSON encoder (protected); leaves L's stack as it found it. */
int flosse_stream_frame(lua_State *L, int base, int n, struct flosse_buf *out,
                        char *err, size_t errlen);

/* Reads the n values at L[base..] as a yield into ev, whose strings stay
 * valid while the caller keeps the values pushed meanwhile (the caller
 * resets the stack). Returns FLOSSE_OK, or FLOSSE_ERR with err filled in. */
struct flosse_sse_event;
int flosse_stream_event(lua_State *L, int base, int n, struct flosse_sse_event *ev, char *err,
                        size_t errlen);

/* The channel message at L[idx], or NULL (core/lchannel.c). */
struct flosse_msg *flosse_lchannel_testmsg(lua_State *L, int idx);
/* Adds publish and subscribe to the table on top of L (core/lchannel.c). */
void flosse_lchannel_register(lua_State *L);

/* Raises a refusal: an error that answers the request with status and
 * text (400 to 599) when it ends a request whose answer has not started
 * (a stream's head is written when its view first yields, waits or ends),
 * and becomes an error event with that text on a stream already going.
 * Logged as one warning, never with a traceback. Does not return. */
int flosse_stream_refuse(lua_State *L, int status, const char *text);

/* Adds sleep, start_stream, report_error, refuse, on_close, in_stream and
 * frame to the table on top of L. */
void flosse_stream_register(lua_State *L);

/* Clears the main thread's extra space, which every new thread copies
 * (luaopen_flosse_core calls it before any request thread exists). */
void flosse_stream_init_threads(lua_State *L);

#endif
