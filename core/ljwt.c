/* flosse.core's JWT functions (core/jwt.c underneath):
 *   core.jwt_decode(token) -> header_json, payload_json, signing_input, signature
 *                           | nil, why
 *   core.jwt_key(pem) -> key (a flosse.jwt_key userdata) | nil, why
 *   core.jwt_verify(alg, secret_or_key, signing_input, signature) -> true | nil, why
 * jwt_verify takes a string as an HMAC secret and a jwt_key as a public key,
 * and refuses the other pairings, so that a key of one kind never checks an
 * algorithm of the other. The JSON texts are parsed in Lua (lua-cjson). */
#include <lauxlib.h>
#include <string.h>

#include "jwt.h"
#include "lprivate.h"

#define KEY_MT "flosse.jwt_key"

struct key_box {
  struct flosse_jwt_key *key;
};

/* Decodes one base64url part and pushes it; 0 (nothing pushed) if it is not
 * base64url. */
static int push_b64(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, FLOSSE_JWT_B64_MAX(len) + 1);
  size_t n = 0;
  if (flosse_jwt_b64url_decode(s, len, out, &n) != FLOSSE_OK) {
    luaL_pushresultsize(&b, 0);
    lua_pop(L, 1);
    return 0;
  }
  luaL_pushresultsize(&b, n);
  return 1;
}

static int l_jwt_decode(lua_State *L) {
  size_t len;
  const char *t = luaL_checklstring(L, 1, &len);
  const char *d1 = memchr(t, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - t)) : NULL;
  const char *why = "not three parts";
  if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - t))) goto fail;
  why = "a part is not base64url";
  if (d1 == t || d2 == d1 + 1) goto fail; /* an empty header or payload */
  if (!push_b64(L, t, (size_t)(d1 - t))) goto fail;
  if (!push_b64(L, d1 + 1, (size_t)(d2 - d1 - 1))) goto fail;
  lua_pushlstring(L, t, (size_t)(d2 - t));
  if (!push_b64(L, d2 + 1, len - (size_t)(d2 + 1 - t))) goto fail;
  return 4;
fail:
  luaL_pushfail(L);
  lua_pushstring(L, why);
  return 2;
}

static int key_close(lua_State *L) {
  struct key_box *kb = luaL_checkudata(L, 1, KEY_MT);
  flosse_jwt_key_free(kb->key);
  kb->key = NULL;
  return 0;
}

static int key_tostring(lua_State *L) {
  struct key_box *kb = luaL_checkudata(L, 1, KEY_MT);
  if (kb->key) lua_pushfstring(L, "flosse.jwt_key (%s)", flosse_jwt_key_type(kb->key));
  else lua_pushliteral(L, "flosse.jwt_key (closed)");
  return 1;
}

static int key_type(lua_State *L) {
  struct key_box *kb = luaL_checkudata(L, 1, KEY_MT);
  if (!kb->key) return luaL_error(L, "flosse.jwt_key: closed");
  lua_pushstring(L, flosse_jwt_key_type(kb->key));
  return 1;
}

static int l_jwt_key(lua_State *L) {
  size_t len;
  const char *pem = luaL_checklstring(L, 1, &len);
  char err[128];
  /* the box first, so that a failing allocation raises before the key exists */
  struct key_box *kb = lua_newuserdatauv(L, sizeof *kb, 0);
  kb->key = NULL;
  luaL_setmetatable(L, KEY_MT);
  kb->key = flosse_jwt_key_load(pem, len, err, sizeof err);
  if (!kb->key) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int l_jwt_verify(lua_State *L) {
  size_t alen, inlen, siglen, secretlen = 0;
  const char *aname = luaL_checklstring(L, 1, &alen);
  const char *input = luaL_checklstring(L, 3, &inlen);
  const char *sig = luaL_checklstring(L, 4, &siglen);
  const unsigned char *secret = NULL;
  const struct flosse_jwt_key *key = NULL;
  int alg = flosse_jwt_alg_from_name(aname, alen);
  if (alg < 0) return luaL_argerror(L, 1, "not HS256, HS384, HS512, RS256 or ES256");
  if (lua_type(L, 2) == LUA_TSTRING) {
    secret = (const unsigned char *)lua_tolstring(L, 2, &secretlen);
  } else {
    struct key_box *kb = luaL_testudata(L, 2, KEY_MT);
    if (!kb) return luaL_typeerror(L, 2, "string or flosse.jwt_key");
    if (!kb->key) return luaL_argerror(L, 2, "a closed flosse.jwt_key");
    key = kb->key;
  }
  char err[128];
  if (flosse_jwt_verify(alg, secret, secretlen, key, input, inlen, (const unsigned char *)sig,
                        siglen, err, sizeof err) != FLOSSE_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

void flosse_ljwt_register(lua_State *L) {
  static const luaL_Reg methods[] = {{"type", key_type}, {"close", key_close}, {NULL, NULL}};
  static const luaL_Reg meta[] = {
      {"__gc", key_close}, {"__close", key_close}, {"__tostring", key_tostring}, {NULL, NULL}};
  if (luaL_newmetatable(L, KEY_MT)) {
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_jwt_decode);
  lua_setfield(L, -2, "jwt_decode");
  lua_pushcfunction(L, l_jwt_key);
  lua_setfield(L, -2, "jwt_key");
  lua_pushcfunction(L, l_jwt_verify);
  lua_setfield(L, -2, "jwt_verify");
}
