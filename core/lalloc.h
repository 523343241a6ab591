/* The allocator of a Lua state that serves requests: small blocks from
 * per-size free lists, and the Lua memory cap.
 *
 * Every request makes and drops a few dozen small Lua objects (its thread,
 * the request table, each event's table), and an idle stream keeps some of
 * them for as long as it lives. Lua passes the size of every block it frees
 * or resizes, so blocks up to FLOSSE_LALLOC_MAX bytes can come from slabs
 * with no per-block header and no malloc call. Bigger blocks, and blocks the
 * state allocated before the allocator was installed, go to the previous
 * allocator. */
#ifndef FLOSSE_LALLOC_H
#define FLOSSE_LALLOC_H

#include <lua.h>
#include <stddef.h>

#define FLOSSE_LALLOC_MAX 512

struct flosse_lalloc;

/* A lua_newstate for a new state on the pool (NULL when out of memory);
 * the pool is freed by flosse_lalloc_close_state. */
lua_State *flosse_lalloc_newstate(void);
void flosse_lalloc_close_state(lua_State *L);

/* The pool of L, installed on top of its allocator if it has none (the
 * interpreter's own state: that pool lives as long as the process). */
struct flosse_lalloc *flosse_lalloc_of(lua_State *L);

/* The cap: 0 for none. It only applies while enforce is set (a view runs). */
void flosse_lalloc_limit(struct flosse_lalloc *a, size_t limit);
void flosse_lalloc_enforce(struct flosse_lalloc *a, int on);

/* Bytes the state holds, as Lua counts them. */
size_t flosse_lalloc_used(const struct flosse_lalloc *a);

#endif
