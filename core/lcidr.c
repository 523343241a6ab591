/* Addresses for Lua: core.cidr_list (trusted_proxies) and core.ip_address.
 * Every address is read by inet_pton (core/cidr.c), never in Lua. */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>

#include "cidr.h"
#include "lprivate.h"

#define CIDR_LIST_MT "flosse.CIDRList"
#define CIDR_LIST_MAX 1024

struct lcidr_list {
  int n;
  struct flosse_cidr blocks[]; /* n of them; the GC owns the memory */
};

static struct lcidr_list *check_list(lua_State *L) {
  return luaL_checkudata(L, 1, CIDR_LIST_MT);
}

/* core.cidr_list(list) -> cidrs | nil, i
 * list: strings, each an address or a block ("10.0.0.0/8", "::1"). nil, i
 * when list[i] is not one (the caller names it). */
static int l_cidr_list(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n >= 0 && n <= CIDR_LIST_MAX, 1, "at most 1024 entries");
  struct lcidr_list *cl =
      lua_newuserdatauv(L, sizeof *cl + (size_t)n * sizeof cl->blocks[0], 0);
  cl->n = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    if (lua_geti(L, 1, i) != LUA_TSTRING) return luaL_argerror(L, 1, "a list of strings");
    const char *s = lua_tolstring(L, -1, &len);
    if (flosse_cidr_parse(s, len, &cl->blocks[cl->n]) != FLOSSE_OK) {
      luaL_pushfail(L);
      lua_pushinteger(L, i);
      return 2;
    }
    cl->n++;
    lua_pop(L, 1);
  }
  luaL_setmetatable(L, CIDR_LIST_MT);
  return 1;
}

/* cidrs:contains(addr) -> boolean | nil when addr is not an address */
static int cidr_contains(lua_State *L) {
  struct lcidr_list *cl = check_list(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  struct flosse_cidr a;
  if (flosse_cidr_addr(s, len, &a) != FLOSSE_OK) {
    luaL_pushfail(L);
    return 1;
  }
  int in = 0;
  for (int i = 0; i < cl->n && !in; i++) in = flosse_cidr_contains(&cl->blocks[i], &a);
  lua_pushboolean(L, in);
  return 1;
}

static int cidr_len(lua_State *L) {
  lua_pushinteger(L, check_list(L)->n);
  return 1;
}

static int cidr_tostring(lua_State *L) {
  lua_pushfstring(L, CIDR_LIST_MT " (%d)", check_list(L)->n);
  return 1;
}

/* core.ip_address(s) -> the address in its canonical form ("2001:db8::1",
 * an IPv4-mapped one as IPv4), or nil when s is not one. */
static int l_ip_address(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  struct flosse_cidr a;
  char text[64];
  if (flosse_cidr_addr(s, len, &a) != FLOSSE_OK || flosse_cidr_format(&a, text, sizeof text) != FLOSSE_OK) {
    luaL_pushfail(L);
    return 1;
  }
  lua_pushstring(L, text);
  return 1;
}

void flosse_lcidr_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"contains", cidr_contains}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__len", cidr_len}, {"__tostring", cidr_tostring}, {NULL, NULL}};
  static const luaL_Reg fns[] = {{"cidr_list", l_cidr_list}, {"ip_address", l_ip_address}, {NULL, NULL}};
  if (luaL_newmetatable(L, CIDR_LIST_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
}
