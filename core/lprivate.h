/* What the binding files (l*.c) share, and nothing else includes. */
#ifndef FLOSSE_LPRIVATE_H
#define FLOSSE_LPRIVATE_H

#include <lua.h>

#include "server.h"

/* Each adds its functions to the table on top of L (flosse.core). */
void flosse_lstream_register(lua_State *L);
void flosse_ltask_register(lua_State *L);
void flosse_lchannel_register(lua_State *L);
void flosse_lsocket_register(lua_State *L);
void flosse_lredis_register(lua_State *L);
void flosse_ljwt_register(lua_State *L);
void flosse_lcidr_register(lua_State *L);
void flosse_lmetrics_register(lua_State *L);

/* The task running L, or a raised error naming fname (called outside a view
 * or task). Does not return on error. */
struct flosse_task *flosse_lcheck_task(lua_State *L, const char *fname);

/* The worker running the caller, or a raised error naming fname. */
struct flosse_server *flosse_lcheck_server(lua_State *L, const char *fname);

#endif
