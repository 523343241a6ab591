/* The JSON encoder for Lua values (core/ljson.c), private to the bindings.
 * It writes what lua-cjson 2.1.0's cjson.encode writes with its default
 * settings, byte for byte, except numbers: an integer is written exactly and
 * a float in the shortest text that reads back to it (core/json.h). */
#ifndef FLOSSE_LJSON_H
#define FLOSSE_LJSON_H

#include <lua.h>
#include <stddef.h>

/* Tables nested deeper than this are refused (cjson's encode_max_depth). */
#define FLOSSE_LJSON_MAX_DEPTH 1000

/* Pushes the JSON text of the value at idx (borrowed, not changed) as a Lua
 * string and returns 1; or returns 0 with err filled (cjson's error text,
 * e.g. "Cannot serialise function: type not supported") and nothing pushed.
 * Never raises: the work runs under lua_pcall, so out of memory is an error
 * returned too ("not enough memory"), and no metamethod is called (tables
 * are read raw, as cjson does). The output buffer belongs to L (a userdata
 * in the registry, made on first use), so no malloc is made per value. */
int flosse_ljson_encode(lua_State *L, int idx, char *err, size_t errlen);

/* Adds to the table on top of L:
 *   json_encode(v) -> text | nil, message
 *   json_members(text) -> { key1, value1, key2, value2, ... } | nil, message
 * where json_members reports the raw text of each top-level member of the
 * JSON object text (a key with its quotes, a value exactly as written), in
 * order, duplicates included. Leaves the table on top. */
void flosse_ljson_register(lua_State *L);

#endif
