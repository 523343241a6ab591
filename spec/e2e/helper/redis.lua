-- spec/e2e/helper/redis.lua: a redis-server of the spec's own. e2e.start_redis
-- starts one on a free loopback port in a fresh temporary directory, with no
-- configuration file of the system (no persistence unless a spec stops it with
-- save; DEBUG allowed from loopback), and waits until it answers PING:
--
--   local redis = e2e.start_redis()        -- opts: { port =, args =, password =, unixsocket = true }
--   redis.port, redis.url ("redis://127.0.0.1:P/0", with :PASSWORD@ when it has one),
--   redis.pid, redis.dir, redis.socket (with unixsocket: its path, in dir)
--   redis:cli("SET", "k", "v")   -- runs redis-cli -p P ... ; returns its output (trailing newline cut)
--   redis:flush()                -- FLUSHALL
--   redis:stop()                 -- SHUTDOWN NOSAVE (then TERM, then KILL, bounded)
--   redis:stop{ save = true }    -- SHUTDOWN SAVE: a later start() finds the data (dump.rdb in dir)
--   redis:kill()                 -- SIGKILL: a crash, nothing saved
--   redis:start()                -- again, same port and dir (a restart)
--   redis:cleanup()              -- stop, and remove dir
--
-- Every server still running is stopped by e2e.stop_all_redis(), which also
-- runs when the Lua state closes (a spec that failed before its teardown).
-- Every loop here has a deadline.

local e2e = require "spec.e2e.helper.base"
local socket = e2e.socket
local now = e2e.now
local read_file = e2e.read_file
local shell_quote = e2e.shell_quote

local M = {}

local running = {}  -- redis -> true while its process may be up

local alive = require("spec.e2e.helper.process").alive

-- A port nobody listens on right now (the kernel's choice for 127.0.0.1:0);
-- e2e.free_port for the specs that start a server of their own before it.
local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end
M.free_port = free_port

local Redis = {}
Redis.__index = Redis
Redis.__name = "e2e.Redis"
M.Redis = Redis

-- Runs redis-cli -p PORT args... and returns its output (stdout and stderr),
-- with the trailing newline cut.
function Redis:cli(...)
  local parts = { "redis-cli", "-h", "127.0.0.1", "-p", tostring(self.port) }
  if self.password then
    parts[#parts + 1] = "--no-auth-warning -a " .. shell_quote(self.password)
  end
  for _, a in ipairs { ... } do parts[#parts + 1] = shell_quote(a) end
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>&1 </dev/null", "r"))
  local out = p:read("a") or ""
  p:close()
  return (out:gsub("\n$", ""))
end

function Redis:alive()
  return self.pid ~= nil and alive(self.pid)
end

function Redis:log()
  return read_file(self.logfile)
end

-- Waits (bounded) until it answers PING; true, or false once the deadline passed
-- or the process died.
function Redis:wait_ready(timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  repeat
    if not self:alive() then return false end
    if self:cli("PING") == "PONG" then return true end
    socket.sleep(0.05)
  until now() > deadline
  return false
end

-- Starts (or restarts) redis-server on self.port with self.dir; raises with
-- its log when it does not answer PING in time.
function Redis:start()
  assert(not self:alive(), "e2e.Redis: already running (pid " .. tostring(self.pid) .. ")")
  local args = { "redis-server", "--port", tostring(self.port), "--bind", "127.0.0.1",
    "--dir", self.dir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
    "--daemonize", "no", "--protected-mode", "no", "--logfile", "",
    -- DEBUG SLEEP: how a spec makes Redis slow.
    "--enable-debug-command", "local" }
  if self.password then
    args[#args + 1] = "--requirepass"
    args[#args + 1] = self.password
  end
  if self.socket then
    args[#args + 1] = "--unixsocket"
    args[#args + 1] = self.socket
    args[#args + 1] = "--unixsocketperm"
    args[#args + 1] = "700"
  end
  for _, a in ipairs(self.args or {}) do args[#args + 1] = a end
  for i = 2, #args do args[i] = shell_quote(args[i]) end
  -- A restart keeps its port (the nodes point at it). The port can be
  -- taken for a moment between the kill and the restart (seen on a loaded
  -- machine: "bind: Address already in use"): try again, bounded.
  for attempt = 1, 10 do
    local logged = #self:log()
    local p = assert(io.popen("exec " .. table.concat(args, " ") .. " >>" .. shell_quote(self.logfile)
      .. " 2>&1 </dev/null & echo $!", "r"))
    self.pid = tonumber(p:read("l"))
    p:close()
    assert(self.pid, "e2e.Redis: could not start redis-server")
    running[self] = true
    if self:wait_ready() then return self end
    local log = self:log()
    self:kill()
    if attempt == 10 or not log:sub(logged + 1):find("Address already in use", 1, true) then
      error("e2e.Redis: redis-server on port " .. self.port .. " did not answer PING:\n" .. log, 2)
    end
    socket.sleep(0.3)
  end
end

-- Waits (bounded) for the process to be gone; true if it is.
local function wait_gone(self, timeout)
  local deadline = now() + timeout
  while alive(self.pid) and now() < deadline do socket.sleep(0.05) end
  return not alive(self.pid)
end

-- SHUTDOWN NOSAVE (opts.save: SHUTDOWN SAVE, so that start() gets the data
-- back), then TERM, then KILL, each bounded. Safe when already stopped.
function Redis:stop(opts)
  running[self] = nil
  if not self:alive() then return end
  self:cli("SHUTDOWN", (opts and opts.save) and "SAVE" or "NOSAVE")
  if wait_gone(self, 5) then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  if wait_gone(self, 5) then return end
  os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
  wait_gone(self, 5)
end

-- SIGKILL: as if it crashed.
function Redis:kill()
  running[self] = nil
  if not self:alive() then return end
  os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
  wait_gone(self, 5)
end

function Redis:flush()
  return self:cli("FLUSHALL")
end

-- Stops it and removes its directory and log.
function Redis:cleanup()
  self:stop()
  os.remove(self.logfile)
  e2e.remove_tree(self.dir)
end

-- e2e.start_redis(opts) -> a running Redis. opts.port: that port (default a
-- free one); opts.args: more redis-server arguments; opts.started = false:
-- set it up but do not start it (a spec that needs Redis down first calls
-- :start() later); opts.password: requirepass (cli and url use it);
-- opts.unixsocket = true: listen on dir/redis.sock too.
function M.start_redis(opts)
  opts = opts or {}
  local self = setmetatable({ args = opts.args, password = opts.password }, Redis)
  self.dir = e2e.tempdir()
  self.logfile = self.dir .. "/redis.log"
  if opts.unixsocket then self.socket = self.dir .. "/redis.sock" end
  local last
  -- The free port may be taken between the probe and the bind: try again.
  for _ = 1, 3 do
    self.port = opts.port or free_port()
    self.url = "redis://" .. (self.password and ":" .. self.password .. "@" or "") .. "127.0.0.1:"
      .. self.port .. "/0"
    if opts.started == false then return self end
    local ok, err = pcall(self.start, self)
    if ok then return self end
    last = err
    if opts.port then break end
  end
  error(last, 2)
end

-- Stops every redis-server a spec started and did not stop.
function M.stop_all_redis()
  local list = {}
  for r in pairs(running) do list[#list + 1] = r end
  for _, r in ipairs(list) do r:stop() end
end

M._redis_sentinel = setmetatable({}, { __gc = function() M.stop_all_redis() end })

return M
