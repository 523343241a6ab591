-- spec/e2e/helper/process.lua: server processes. Starting `flosse serve` on a
-- free loopback port (127.0.0.1:0) in the background and stopping it
-- (e2e.start, e2e.serve, e2e.start_with_status, Server:stop, e2e.stop_all),
-- running the command in the foreground (e2e.run_serve, e2e.run_flosse), and
-- what a spec reads about a process: its log (Server:log, Server:wait_log,
-- e2e.access_lines), whether it is alive, its RSS and its fd count.
--
-- Every loop here has a deadline: a broken server makes a spec fail, never hang.

local e2e = require "spec.e2e.helper.base"
local socket = e2e.socket
local now = e2e.now
local read_file = e2e.read_file
local shell_quote = e2e.shell_quote

local M = {}

local servers = {}  -- pid -> server, the ones not stopped yet

-- The command line for `flosse serve dir ...`, with env settings
-- (name -> value, or false to unset) and the wrapper.
local function serve_command(dir, args, env)
  local parts = {}
  if env and next(env) then
    parts[#parts + 1] = "env"
    local names = {}
    for name in pairs(env) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      if env[name] == false then
        parts[#parts + 1] = "-u " .. shell_quote(name)
      end
    end
    for _, name in ipairs(names) do
      if env[name] ~= false then
        parts[#parts + 1] = shell_quote(name .. "=" .. tostring(env[name]))
      end
    end
  end
  if e2e.WRAP ~= "" then parts[#parts + 1] = e2e.WRAP end
  parts[#parts + 1] = e2e.BIN
  parts[#parts + 1] = "serve"
  parts[#parts + 1] = shell_quote(dir)
  for _, a in ipairs(args or {}) do parts[#parts + 1] = shell_quote(a) end
  return table.concat(parts, " ")
end
M.serve_command = serve_command

-- Process state from /proc: nil when gone (or a zombie nobody reaps yet).
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat == "" then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end
M.alive = alive

------------------------------------------------------------------------------
-- Server

local Server = {}
Server.__index = Server
Server.__name = "e2e.Server"
M.Server = Server

function Server:log()
  return read_file(self.logfile)
end

-- Waits until the log contains the plain text s; returns the log, or nil, log.
function Server:wait_log(s, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  repeat
    local log = self:log()
    if log:find(s, 1, true) then return log end
    socket.sleep(0.05)
  until now() > deadline
  return nil, self:log()
end

function Server:alive()
  return alive(self.pid)
end

-- Sends a signal ("TERM", "HUP", ...) to the server.
function Server:signal(sig)
  self.signalled = true
  return os.execute("kill -" .. sig .. " " .. self.pid .. " 2>/dev/null")
end

-- TERM, wait (bounded), then KILL. Safe to call twice.
function Server:stop()
  if self.stopped then return end
  self.stopped = true
  servers[self.pid] = nil
  if self.port and not self.signalled and not alive(self.pid) then
    -- It died on its own (a crash): say so, with its log, for the report.
    self.died = true
    io.stderr:write(string.format("\ne2e: the server (pid %d, %s) had exited before it was stopped;"
      .. " its log:\n%s\n", self.pid, self.cmd, self:log()))
  end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local deadline = now() + 5
  while alive(self.pid) and now() < deadline do socket.sleep(0.05) end
  if alive(self.pid) then
    os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
    deadline = now() + 5
    while alive(self.pid) and now() < deadline do socket.sleep(0.05) end
  end
end

-- Removes the log file too (call after the last :log()).
function Server:cleanup()
  self:stop()
  os.remove(self.logfile)
end

-- Waits (until deadline) for the server's "listening on" line and sets
-- server.port; on failure cleans it up and raises with its log.
local function wait_listening(server, deadline)
  local pattern = "flosse: listening on https?://" .. (server.host:find(":") and "%[.-%]" or "[%d%.]+")
    .. ":(%d+)/"
  -- the same line as JSON (--log-format json): "msg":"listening on http://..."
  local json_pattern = "\"msg\":\"listening on https?://" .. (server.host:find(":") and "%[.-%]" or "[%d%.]+")
    .. ":(%d+)/"
  while true do
    local log = server:log()
    local port = log:match(pattern) or log:match(json_pattern)
    if port then
      server.port = tonumber(port)
      return server
    end
    if not server:alive() then
      server:cleanup()
      error("server exited before listening: " .. server.cmd .. "\n" .. log, 3)
    end
    if now() > deadline then
      server:cleanup()
      error("server did not report listening within the deadline: " .. server.cmd .. "\n" .. log, 3)
    end
    socket.sleep(0.05)
  end
end

-- The arguments e2e.start passes: --host, --port (0: a free port), --workers,
-- then opts.args. Returns the list and the host.
local function serve_args(opts)
  local host = opts.host or "127.0.0.1"
  -- One worker unless a spec asks for more: several specs read a view's
  -- counters back through another request, which needs one Lua state.
  local args = { "--host", host, "--port", tostring(opts.port or 0), "--workers", tostring(opts.workers or 1) }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  return args, host
end

-- e2e.start(dir, opts) starts `flosse serve dir --host 127.0.0.1 --port 0 [opts.args]`
-- in the background, stdout and stderr to a temp log, and waits (bounded) for
-- "flosse: listening on http://127.0.0.1:PORT/". opts.env: name -> value|false.
-- Returns a server { port, pid, logfile } or raises with the log.
local function start_into(server, dir, opts)
  opts = opts or {}
  local args, host = serve_args(opts)
  local logfile = os.tmpname()
  local cmd = serve_command(dir, args, opts.env)
  -- exec so that $! is the server (or the wrapper) itself.
  local p = assert(io.popen("exec " .. cmd .. " >" .. shell_quote(logfile)
    .. " 2>&1 </dev/null & echo $!", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "could not start: " .. cmd)
  server.pid, server.logfile, server.cmd, server.host = pid, logfile, cmd, host
  setmetatable(server, Server)
  servers[pid] = server
  local deadline = now() + (opts.timeout or e2e.TEST_TIMEOUT)
  return wait_listening(server, deadline)
end

function M.start(dir, opts)
  return start_into({}, dir, opts)
end

-- e2e.serve(setup, teardown, dir, opts): the server of a describe block,
-- started (as e2e.start) by the block's setup and cleaned up by its teardown.
-- busted's hooks belong to the spec file, so the block hands them over:
--   local server = e2e.serve(setup, teardown, APP, { args = { ... } })
function M.serve(setup_hook, teardown_hook, dir, opts)
  local server = setmetatable({}, Server)
  setup_hook(function() start_into(server, dir, opts) end)
  teardown_hook(function()
    if server.pid then server:cleanup() end
  end)
  return server
end

-- Like e2e.start, but the server runs as the child of a small shell that
-- writes its exit status (128 + N when killed by signal N) to a file:
-- server:exit_status(timeout) waits for it (nil if it did not exit in time).
-- server.pid is still the server itself (or its wrapper), so signals reach it.
function M.start_with_status(dir, opts)
  opts = opts or {}
  local args, host = serve_args(opts)
  local logfile, pidfile, statusfile = os.tmpname(), os.tmpname(), os.tmpname()
  local cmd = serve_command(dir, args, opts.env)
  os.execute("( " .. cmd .. " >" .. shell_quote(logfile) .. " 2>&1 </dev/null & echo $! >"
    .. shell_quote(pidfile) .. "; wait $!; echo $? >" .. shell_quote(statusfile)
    .. " ) >/dev/null 2>&1 </dev/null &")
  local deadline = now() + (opts.timeout or e2e.TEST_TIMEOUT)
  local pid
  repeat
    pid = tonumber(read_file(pidfile):match("%d+"))
    if not pid then socket.sleep(0.02) end
  until pid or now() > deadline
  os.remove(pidfile)
  assert(pid, "could not start: " .. cmd)
  local server = setmetatable({ pid = pid, logfile = logfile, cmd = cmd, host = host,
    statusfile = statusfile }, Server)
  servers[pid] = server
  function server.exit_status(self, timeout)
    local until_t = now() + (timeout or e2e.TEST_TIMEOUT)
    repeat
      local code = tonumber(read_file(self.statusfile):match("%d+"))
      if code then return code end
      socket.sleep(0.05)
    until now() > until_t
    return nil
  end
  function server.cleanup(self)
    Server.cleanup(self)
    os.remove(self.statusfile)
  end
  return wait_listening(server, deadline)
end

-- Stops every server still running, e.g. when a spec failed before its
-- teardown (also run when the Lua state closes).
function M.stop_all()
  local list = {}
  for _, s in pairs(servers) do list[#list + 1] = s end
  for _, s in ipairs(list) do s:stop() end
end

M._sentinel = setmetatable({}, { __gc = function() M.stop_all() end })

------------------------------------------------------------------------------
-- Foreground runs

-- Runs cmd (a shell command line, output already redirected to the files
-- out and err); returns exit code (124 = timed out), stdout, stderr.
local function run_captured(cmd, out, err)
  local ok, how, code = os.execute(cmd)
  local stdout, stderr = read_file(out), read_file(err)
  os.remove(out)
  os.remove(err)
  if how == "signal" then code = 128 + code end
  if ok == true and code == nil then code = 0 end
  return code, stdout, stderr
end

-- Runs `flosse serve dir args...` in the foreground (for start-up failures),
-- bounded by `timeout`. Returns exit code (124 = timed out), stdout, stderr.
function M.run_serve(dir, args, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local cmd = "timeout -k 2 " .. tostring(opts.timeout or e2e.TEST_TIMEOUT) .. " "
    .. serve_command(dir, args, opts.env)
    .. " >" .. shell_quote(out) .. " 2>" .. shell_quote(err) .. " </dev/null"
  return run_captured(cmd, out, err)
end

-- Runs `flosse args...` in the foreground, bounded by opts.timeout (default
-- e2e.TEST_TIMEOUT); opts.env as for e2e.start; opts.cwd: the folder to run
-- in (the command and FLOSSE_BUILD_DIR are made absolute for it).
-- Returns exit code (124 = timed out), stdout, stderr.
function M.run_flosse(args, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd " .. shell_quote(opts.cwd) .. " &&" end
  parts[#parts + 1] = "timeout -k 2 " .. tostring(opts.timeout or e2e.TEST_TIMEOUT)
  local env = {}
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local build_dir = os.getenv("FLOSSE_BUILD_DIR")
  if opts.cwd and build_dir and env.FLOSSE_BUILD_DIR == nil then
    env.FLOSSE_BUILD_DIR = e2e.absolute(build_dir)
  end
  local names = {}
  for name in pairs(env) do names[#names + 1] = name end
  table.sort(names)
  if #names > 0 then
    parts[#parts + 1] = "env"
    for _, name in ipairs(names) do
      if env[name] == false then parts[#parts + 1] = "-u " .. shell_quote(name) end
    end
    for _, name in ipairs(names) do
      if env[name] ~= false then parts[#parts + 1] = shell_quote(name .. "=" .. tostring(env[name])) end
    end
  end
  if e2e.WRAP ~= "" then parts[#parts + 1] = e2e.WRAP end
  parts[#parts + 1] = opts.cwd and e2e.absolute(e2e.BIN) or e2e.BIN
  for _, a in ipairs(args or {}) do parts[#parts + 1] = shell_quote(a) end
  local cmd = table.concat(parts, " ") .. " >" .. shell_quote(out) .. " 2>" .. shell_quote(err)
    .. " </dev/null"
  return run_captured(cmd, out, err)
end

------------------------------------------------------------------------------
-- What a process shows

-- The resident set size of a process in KiB (VmRSS), or nil.
function M.rss_kib(pid)
  return tonumber(read_file("/proc/" .. pid .. "/status"):match("VmRSS:%s*(%d+)"))
end

-- How many file descriptors a process holds (nil when it is gone).
function M.fd_count(pid)
  local p = io.popen("ls /proc/" .. tonumber(pid) .. "/fd 2>/dev/null | wc -l", "r")
  local n = p and tonumber(p:read("l") or "")
  if p then p:close() end
  return n ~= 0 and n or nil
end

-- The access lines of a log:
--   flosse: access 127.0.0.1 "GET /sse/progress/" 200 10.012s events=11 bytes=1290
-- as a list of { line, addr, request, method, path, status, duration, events, bytes }.
function M.access_lines(log)
  local list = {}
  for line in log:gmatch("[^\n]+") do
    local addr, req, status, dur, events, bytes = line:match(
      '^flosse: access (%S+) "(.-)" (%d%d%d) (%d+%.?%d*)s events=(%d+) bytes=(%d+)$')
    if addr then
      local method, path = req:match("^(%S+) (.*)$")
      list[#list + 1] = { line = line, addr = addr, request = req, method = method, path = path,
        status = tonumber(status), duration = tonumber(dur), events = tonumber(events),
        bytes = tonumber(bytes) }
    end
  end
  return list
end

return M
