/* Raw sockets for in-process tests: core.socketpair, core.fd_write,
 * core.fd_read and core.fd_close let a spec be the client of a server it
 * drives with srv:add_socket and srv:step, with no server process and no
 * port (lua-http's cs.pair()). */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lprivate.h"

/* core.socketpair() -> fd, fd (connected, the first non-blocking for the client) */
static int l_socketpair(lua_State *L) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
    luaL_pushfail(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushinteger(L, sv[0]);
  lua_pushinteger(L, sv[1]);
  return 2;
}

/* core.fd_write(fd, bytes) -> bytes written (0 when the socket is full) | nil, message */
static int l_fd_write(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) n = 0;
  if (n < 0) {
    luaL_pushfail(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* core.fd_read(fd) -> bytes ("" when none yet) | nil, "closed" | nil, message */
static int l_fd_read(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  char buf[16384];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) n = -2;
  if (n == -2) return lua_pushliteral(L, ""), 1;
  if (n <= 0) {
    luaL_pushfail(L);
    lua_pushstring(L, n == 0 ? "closed" : strerror(errno));
    return 2;
  }
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

static int l_fd_close(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

void flosse_lsocket_register(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"socketpair", l_socketpair}, {"fd_write", l_fd_write}, {"fd_read", l_fd_read},
      {"fd_close", l_fd_close}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
