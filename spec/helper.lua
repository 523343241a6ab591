-- spec/helper.lua: the end-to-end harness.
--
-- busted runs this file once before any spec (see .busted); it registers the
-- module as package.loaded["e2e"] and returns it, so a spec does
--
--   local e2e = require "e2e"
--
-- (and `require "spec.helper"` works too). It starts the real server on a free
-- loopback port, talks raw HTTP to it over luasocket and parses SSE.
--
-- Environment:
--   FLOSSE_TEST_WRAP     prefixes the server command line, e.g.
--                          FLOSSE_TEST_WRAP="valgrind -q --trace-children=yes --log-file=/tmp/vg.%p"
--                          FLOSSE_TEST_WRAP="env LD_PRELOAD=$(gcc -print-file-name=libasan.so)"
--                        bin/flosse is a `#!/usr/bin/env lua5.4` script, so
--                        valgrind needs --trace-children=yes to follow the exec
--                        into lua5.4. The harness stops the pid it started, so
--                        the wrapper must exec the server in the same process
--                        (valgrind and env do; `sh -c` or `timeout` do not).
--   FLOSSE_BIN           the server command (default "bin/flosse", from the repo root).
--   FLOSSE_TEST_TIMEOUT  seconds a single read may wait (default 10); raise it
--                        under slow wrappers.
--
-- Every loop here has a deadline: a broken server makes a spec fail, never hang.

if package.loaded["e2e"] then return package.loaded["e2e"] end

local socket = require "socket"
local cjson = require "cjson"

local e2e = {}

e2e.TEST_TIMEOUT = tonumber(os.getenv("FLOSSE_TEST_TIMEOUT")) or 10
e2e.BIN = os.getenv("FLOSSE_BIN") or "bin/flosse"
e2e.WRAP = os.getenv("FLOSSE_TEST_WRAP") or ""

local servers = {}  -- pid -> server, the ones not stopped yet

local function now() return socket.gettime() end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
e2e.shell_quote = shell_quote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a") or ""
  f:close()
  return s
end

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
e2e.serve_command = serve_command

-- Process state from /proc: nil when gone (or a zombie nobody reaps yet).
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat == "" then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end
e2e.alive = alive

------------------------------------------------------------------------------
-- Server

local Server = {}
Server.__index = Server
Server.__name = "e2e.Server"

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
  local pattern = "flosse: listening on http://" .. (server.host:find(":") and "%[.-%]" or "[%d%.]+")
    .. ":(%d+)/"
  while true do
    local log = server:log()
    local port = log:match(pattern)
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

-- e2e.start(dir, opts) starts `flosse serve dir --host 127.0.0.1 --port 0 [opts.args]`
-- in the background, stdout and stderr to a temp log, and waits (bounded) for
-- "flosse: listening on http://127.0.0.1:PORT/". opts.env: name -> value|false.
-- Returns a server { port, pid, logfile } or raises with the log.
local function start_into(server, dir, opts)
  opts = opts or {}
  local host = opts.host or "127.0.0.1"
  -- One worker unless a spec asks for more: several specs read a view's
  -- counters back through another request, which needs one Lua state.
  local args = { "--host", host, "--port", tostring(opts.port or 0), "--workers", tostring(opts.workers or 1) }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
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

function e2e.start(dir, opts)
  return start_into({}, dir, opts)
end

-- e2e.serve(setup, teardown, dir, opts): the server of a describe block,
-- started (as e2e.start) by the block's setup and cleaned up by its teardown.
-- busted's hooks belong to the spec file, so the block hands them over:
--   local server = e2e.serve(setup, teardown, APP, { args = { ... } })
function e2e.serve(setup_hook, teardown_hook, dir, opts)
  local server = setmetatable({}, Server)
  setup_hook(function() start_into(server, dir, opts) end)
  teardown_hook(function()
    if server.pid then server:cleanup() end
  end)
  return server
end

-- Runs `flosse serve dir args...` in the foreground (for start-up failures),
-- bounded by `timeout`. Returns exit code (124 = timed out), stdout, stderr.
function e2e.run_serve(dir, args, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local cmd = "timeout -k 2 " .. tostring(opts.timeout or e2e.TEST_TIMEOUT) .. " "
    .. serve_command(dir, args, opts.env)
    .. " >" .. shell_quote(out) .. " 2>" .. shell_quote(err) .. " </dev/null"
  local ok, how, code = os.execute(cmd)
  local stdout, stderr = read_file(out), read_file(err)
  os.remove(out)
  os.remove(err)
  if how == "signal" then code = 128 + code end
  if ok == true and code == nil then code = 0 end
  return code, stdout, stderr
end

-- Stops every server still running, e.g. when a spec failed before its
-- teardown (also run when the Lua state closes).
function e2e.stop_all()
  local list = {}
  for _, s in pairs(servers) do list[#list + 1] = s end
  for _, s in ipairs(list) do s:stop() end
end

e2e._sentinel = setmetatable({}, { __gc = function() e2e.stop_all() end })

------------------------------------------------------------------------------
-- Raw client

local Client = {}
Client.__index = Client
Client.__name = "e2e.Client"

-- Connects to host:port (default 127.0.0.1); raises on failure.
function e2e.connect(port, host)
  host = host or "127.0.0.1"
  local sock = host:find(":") and assert(socket.tcp6()) or assert(socket.tcp())
  sock:settimeout(e2e.TEST_TIMEOUT)
  assert(sock:connect(host, port))
  sock:setoption("tcp-nodelay", true)
  sock:settimeout(0)
  return setmetatable({ sock = sock, buf = "", eof = false }, Client)
end

-- Sends every byte (bounded).
function Client:send(bytes)
  local deadline = now() + e2e.TEST_TIMEOUT
  local i = 1
  while i <= #bytes do
    local last, err, partial = self.sock:send(bytes, i)
    local sent = last or partial
    if sent and sent >= i then i = sent + 1 end
    if err and err ~= "timeout" then return nil, err end
    if i <= #bytes then
      if now() > deadline then return nil, "timeout" end
      socket.select(nil, { self.sock }, 0.1)
    end
  end
  return true
end

-- Reads whatever arrives (at least one byte) into the buffer, waiting until
-- the deadline. Returns true, or nil, "closed" | "timeout".
function Client:fill(deadline)
  if self.eof then return nil, "closed" end
  deadline = deadline or now() + e2e.TEST_TIMEOUT
  while true do
    local data, err, partial = self.sock:receive(65536)
    local got = data or partial
    if got and #got > 0 then
      self.buf = self.buf .. got
      if err == "closed" then self.eof = true end
      return true
    end
    if err == "closed" then
      self.eof = true
      return nil, "closed"
    elseif err and err ~= "timeout" then
      self.eof = true
      return nil, err
    end
    local remaining = deadline - now()
    if remaining <= 0 then return nil, "timeout" end
    socket.select({ self.sock }, nil, math.min(remaining, 0.5))
  end
end

local function take(self, n)
  local s = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return s
end

-- Bytes up to and including the plain delimiter; nil, err on close/timeout
-- (the bytes read so far stay in the buffer).
function Client:read_until(delim, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  while true do
    local e = select(2, self.buf:find(delim, 1, true))
    if e then return take(self, e) end
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
end

-- Exactly n bytes; nil, err on close/timeout.
function Client:read_n(n, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  while #self.buf < n do
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
  return take(self, n)
end

-- Everything until the peer closes (bounded); returns the bytes and
-- "closed" or "timeout".
function Client:read_until_close(timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  while true do
    local ok, err = self:fill(deadline)
    if not ok then return take(self, #self.buf), err end
  end
end

-- Waits for the peer to close; true if it did (with nothing more to read).
function Client:wait_closed(timeout)
  local rest, how = self:read_until_close(timeout)
  return how == "closed", rest
end

-- Reads a response head. Returns {
--   raw = head bytes (with the final CRLF CRLF), version, status (number),
--   reason, headers (lowercased name -> value, repeated joined with ", "),
--   header_lines (list of "Name: value" in order) }  or nil, err.
function Client:read_head(timeout)
  local raw, err = self:read_until("\r\n\r\n", timeout)
  if not raw then return nil, err end
  local head = { raw = raw, headers = {}, header_lines = {} }
  local first = true
  for line in raw:gmatch("(.-)\r\n") do
    if first then
      head.version, head.status, head.reason = line:match("^HTTP/(%d%.%d) (%d%d%d) ?(.*)$")
      head.status = tonumber(head.status)
      head.status_line = line
      first = false
    elseif line ~= "" then
      head.header_lines[#head.header_lines + 1] = line
      local name, value = line:match("^([^:]+):%s*(.-)%s*$")
      if name then
        name = name:lower()
        head.headers[name] = head.headers[name] and (head.headers[name] .. ", " .. value) or value
      end
    end
  end
  return head
end

-- Reads one chunk of a chunked body. Returns data, raw (the exact chunk
-- bytes, size line and CRLFs included); data == "" for the last chunk (whose
-- trailers are consumed). nil, err on close/timeout/bad framing.
function Client:read_chunk(timeout)
  local line, err = self:read_until("\r\n", timeout)
  if not line then return nil, err end
  local size = tonumber(line:match("^(%x+)[^\r]*\r\n$") or "", 16)
  if not size then return nil, "bad chunk size line: " .. string.format("%q", line) end
  if size == 0 then
    local raw = line
    while true do  -- trailers, then the empty line
      local t, terr = self:read_until("\r\n", timeout)
      if not t then return nil, terr end
      raw = raw .. t
      if t == "\r\n" then return "", raw end
    end
  end
  local data, derr = self:read_n(size + 2, timeout)
  if not data then return nil, derr end
  if data:sub(-2) ~= "\r\n" then
    return nil, "chunk not followed by CRLF: " .. string.format("%q", data)
  end
  return data:sub(1, -3), line .. data
end

-- Reads chunks until the last one. Returns body, list of chunk data, raw
-- bytes; or nil, err, chunks-so-far.
function Client:read_chunked(timeout)
  local chunks, raws = {}, {}
  while true do
    local data, raw = self:read_chunk(timeout)
    if not data then return nil, raw, chunks end
    raws[#raws + 1] = raw
    if data == "" then break end
    chunks[#chunks + 1] = data
  end
  return table.concat(chunks), chunks, table.concat(raws)
end

-- Reads a whole response: head, then the body by Content-Length, chunked or
-- until close (opts.head_request: no body). Returns the head table with
-- .body (and .chunks for chunked bodies), or nil, err.
function Client:read_response(opts)
  opts = opts or {}
  local head, err = self:read_head(opts.timeout)
  if not head then return nil, err end
  local te = (head.headers["transfer-encoding"] or ""):lower()
  local cl = tonumber(head.headers["content-length"])
  if opts.head_request or head.status == 204 or head.status == 304 then
    head.body = ""
  elseif te:find("chunked", 1, true) then
    local body, chunks, raw = self:read_chunked(opts.timeout)
    if not body then return nil, chunks end
    head.body, head.chunks, head.raw_body = body, chunks, raw
  elseif cl then
    local body, berr = self:read_n(cl, opts.timeout)
    if not body then return nil, berr end
    head.body = body
  else
    local body, how = self:read_until_close(opts.timeout)
    head.body, head.closed = body, how == "closed"
  end
  return head
end

function Client:close()
  if self.sock then
    self.sock:close()
    self.sock = nil
  end
end

------------------------------------------------------------------------------
-- Requests

-- Builds raw request bytes. headers: list of "Name: value" strings or a
-- name -> value table.
function e2e.request_bytes(method, target, headers, version)
  local lines = { string.format("%s %s HTTP/%s", method, target, version or "1.1") }
  local has_host = false
  local hs = {}
  if headers then
    if #headers > 0 then
      for _, h in ipairs(headers) do hs[#hs + 1] = h end
    else
      local names = {}
      for k in pairs(headers) do names[#names + 1] = k end
      table.sort(names)
      for _, k in ipairs(names) do hs[#hs + 1] = k .. ": " .. headers[k] end
    end
  end
  for _, h in ipairs(hs) do
    if h:lower():match("^host:") then has_host = true end
  end
  if not has_host then lines[#lines + 1] = "Host: 127.0.0.1" end
  for _, h in ipairs(hs) do lines[#lines + 1] = h end
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

-- One request on a fresh connection: returns the response (see read_response)
-- after closing the connection; raises on a network error.
function e2e.request(port, method, target, headers, opts)
  local c = e2e.connect(port)
  assert(c:send(e2e.request_bytes(method, target, headers, opts and opts.version)))
  local resp, err = c:read_response({ head_request = method == "HEAD",
    timeout = opts and opts.timeout })
  c:close()
  assert(resp, "no response to " .. method .. " " .. target .. ": " .. tostring(err))
  return resp
end

function e2e.get(port, target, headers, opts)
  return e2e.request(port, "GET", target, headers, opts)
end

-- Opens a stream: connects, sends GET, reads the head. Returns client, head.
function e2e.open_stream(port, target, headers)
  local c = e2e.connect(port)
  assert(c:send(e2e.request_bytes("GET", target, headers)))
  local head, err = c:read_head()
  assert(head, "no response head for " .. target .. ": " .. tostring(err))
  return c, head
end

------------------------------------------------------------------------------
-- SSE

-- Parses SSE bytes (per the HTML spec's rules) into a list of events
-- { event =, data =, id =, retry = (number) }; comments are collected in
-- .comments of the list. A frame with only a retry field is kept as an event
-- too (browsers would not dispatch it, tests want to see it). Fields not
-- present are nil.
function e2e.parse_sse(bytes)
  local events = { comments = {} }
  local cur = nil
  local data = nil
  bytes = bytes:gsub("\r\n", "\n"):gsub("\r", "\n")
  for line in bytes:gmatch("([^\n]*)\n") do
    if line == "" then
      if cur then
        if data then cur.data = table.concat(data, "\n") end
        events[#events + 1] = cur
      end
      cur, data = nil, nil
    elseif line:sub(1, 1) == ":" then
      events.comments[#events.comments + 1] = line:sub(2):gsub("^ ", "")
    else
      local field, value = line:match("^([^:]*):? ?(.*)$")
      cur = cur or {}
      if field == "data" then
        data = data or {}
        data[#data + 1] = value
      elseif field == "event" then
        cur.event = value
      elseif field == "id" then
        cur.id = value
      elseif field == "retry" then
        cur.retry = tonumber(value)
      end
    end
  end
  return events
end

-- Reads one SSE event from a chunked stream (chunk by chunk until a blank
-- line ends the event). Returns the event table (with .raw), or nil, err.
function Client:read_event(timeout)
  local acc = ""
  while true do
    local data, err = self:read_chunk(timeout)
    if not data then return nil, err end
    if data == "" then return nil, "end of stream" end
    acc = acc .. data
    if acc:find("\n\n$") or acc:find("\r\r$") or acc:find("\r\n\r\n$") then
      local evs = e2e.parse_sse(acc)
      local ev = evs[1] or { comments = evs.comments }
      ev.raw = acc
      return ev
    end
  end
end

e2e.json_decode = cjson.decode
e2e.json_encode = cjson.encode
e2e.now = now
e2e.sleep = socket.sleep
e2e.socket = socket

------------------------------------------------------------------------------
-- Added for issue 3 (heartbeats, backpressure, limits, shutdown, logs).

-- Reads a stream incrementally: pulls whatever has arrived (never waits) and
-- de-chunks every complete chunk into self.stream_body (the SSE bytes so far).
-- Sets self.stream_ended when the last chunk "0\r\n\r\n" arrived
-- (self.stream_terminator: its exact bytes), self.stream_closed when the peer
-- closed, self.stream_error on bad chunk framing. Call it after the head was
-- read (e2e.open_stream). max_reads (default 64) bounds the socket reads of
-- up to 64 KiB each. Returns true if new body bytes arrived.
function Client:pump(max_reads)
  if not self.stream_body then
    self.stream_body, self.stream_chunks, self.stream_ended = "", 0, false
  end
  if self.sock and not self.eof then
    for _ = 1, max_reads or 64 do  -- bounded, so that one busy client cannot starve others
      local before = #self.buf
      self:fill(now())
      if #self.buf == before or self.eof then break end
    end
  end
  local grew = false
  local parts = {}
  local pos = 1
  local buf = self.buf
  while not self.stream_ended and not self.stream_error do
    local line_end = buf:find("\r\n", pos, true)
    if not line_end then
      if #buf - pos > 64 then self.stream_error = "no chunk size line" end
      break
    end
    local size = tonumber(buf:sub(pos, line_end - 1):match("^(%x+)[^\r\n]*$") or "", 16)
    if not size then
      self.stream_error = "bad chunk size line: " .. string.format("%q", buf:sub(pos, line_end + 1))
      break
    end
    if size == 0 then
      if buf:sub(line_end + 2, line_end + 3) ~= "\r\n" then
        if #buf >= line_end + 3 then
          self.stream_error = "trailers after the last chunk: " .. string.format("%q", buf:sub(pos))
        end
        break
      end
      self.stream_terminator = buf:sub(pos, line_end + 3)
      self.stream_ended = true
      pos = line_end + 4
      break
    end
    local data_start, data_end = line_end + 2, line_end + 1 + size
    if #buf < data_end + 2 then break end
    if buf:sub(data_end + 1, data_end + 2) ~= "\r\n" then
      self.stream_error = "chunk not followed by CRLF"
      break
    end
    parts[#parts + 1] = buf:sub(data_start, data_end)
    self.stream_chunks = self.stream_chunks + 1
    grew = true
    pos = data_end + 3
  end
  if pos > 1 then self.buf = buf:sub(pos) end
  if #parts > 0 then self.stream_body = self.stream_body .. table.concat(parts) end
  if self.eof then self.stream_closed = true end
  return grew
end

-- The SSE frames received so far (each without its final blank line), in order.
function Client:frames()
  local list = {}
  for frame in (self.stream_body or ""):gmatch("(.-)\n\n") do list[#list + 1] = frame end
  return list
end

-- How many ": heartbeat" comment frames were received so far.
function Client:heartbeats()
  local n = 0
  for _, frame in ipairs(self:frames()) do
    if frame == ": heartbeat" then n = n + 1 end
  end
  return n
end

-- The events received so far (e2e.parse_sse of the body: comments in .comments).
function Client:events()
  return e2e.parse_sse(self.stream_body or "")
end

-- Pumps every client (Client:pump) until done() returns true (returns true) or
-- the timeout passes (returns false). Without done: pumps for `timeout`
-- seconds and returns true.
function e2e.pump(clients, done, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  while true do
    for _, c in ipairs(clients) do c:pump() end
    if done and done() then return true end
    local remaining = deadline - now()
    if remaining <= 0 then return done == nil end
    local socks = {}
    for _, c in ipairs(clients) do
      if c.sock and not c.eof then socks[#socks + 1] = c.sock end
    end
    if #socks > 0 then
      socket.select(socks, nil, math.min(0.1, remaining))
    else
      socket.sleep(math.min(0.05, remaining))
    end
  end
end

-- The resident set size of a process in KiB (VmRSS), or nil.
function e2e.rss_kib(pid)
  return tonumber(read_file("/proc/" .. pid .. "/status"):match("VmRSS:%s*(%d+)"))
end

-- The access lines of a log:
--   flosse: access 127.0.0.1 "GET /sse/progress/" 200 10.012s events=11 bytes=1290
-- as a list of { line, addr, request, method, path, status, duration, events, bytes }.
function e2e.access_lines(log)
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

-- Like e2e.start, but the server runs as the child of a small shell that
-- writes its exit status (128 + N when killed by signal N) to a file:
-- server:exit_status(timeout) waits for it (nil if it did not exit in time).
-- server.pid is still the server itself (or its wrapper), so signals reach it.
function e2e.start_with_status(dir, opts)
  opts = opts or {}
  local host = opts.host or "127.0.0.1"
  -- One worker unless a spec asks for more: several specs read a view's
  -- counters back through another request, which needs one Lua state.
  local args = { "--host", host, "--port", tostring(opts.port or 0), "--workers", tostring(opts.workers or 1) }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
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


------------------------------------------------------------------------------
-- Added for issue 4 (hot reload, the command).

local function cwd()
  local p = io.popen("pwd", "r")
  local d = p and p:read("l")
  if p then p:close() end
  return d or "."
end
e2e.CWD = cwd()

-- An absolute form of a path given relative to the repository root.
local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return e2e.CWD .. "/" .. path
end
e2e.absolute = absolute

-- Runs `flosse args...` in the foreground, bounded by opts.timeout (default
-- e2e.TEST_TIMEOUT); opts.env as for e2e.start; opts.cwd: the folder to run
-- in (the command and FLOSSE_BUILD_DIR are made absolute for it).
-- Returns exit code (124 = timed out), stdout, stderr.
function e2e.run_flosse(args, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd " .. shell_quote(opts.cwd) .. " &&" end
  parts[#parts + 1] = "timeout -k 2 " .. tostring(opts.timeout or e2e.TEST_TIMEOUT)
  local env = {}
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local build_dir = os.getenv("FLOSSE_BUILD_DIR")
  if opts.cwd and build_dir and env.FLOSSE_BUILD_DIR == nil then
    env.FLOSSE_BUILD_DIR = absolute(build_dir)
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
  parts[#parts + 1] = opts.cwd and absolute(e2e.BIN) or e2e.BIN
  for _, a in ipairs(args or {}) do parts[#parts + 1] = shell_quote(a) end
  local cmd = table.concat(parts, " ") .. " >" .. shell_quote(out) .. " 2>" .. shell_quote(err)
    .. " </dev/null"
  local ok, how, code = os.execute(cmd)
  local stdout, stderr = read_file(out), read_file(err)
  os.remove(out)
  os.remove(err)
  if how == "signal" then code = 128 + code end
  if ok == true and code == nil then code = 0 end
  return code, stdout, stderr
end

-- A fresh temporary folder (mktemp -d); remove it with e2e.remove_tree.
function e2e.tempdir()
  local p = assert(io.popen("mktemp -d \"${TMPDIR:-/tmp}/flosse-e2e.XXXXXX\"", "r"))
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  return dir
end

-- Removes a folder e2e.tempdir made (only below the temp folder, as a guard).
function e2e.remove_tree(dir)
  if type(dir) == "string" and dir:match("/flosse%-e2e%.[%w]+$") then
    os.execute("rm -rf " .. shell_quote(dir))
  end
end

-- Copies a folder's contents into a fresh temporary folder's "app" subfolder;
-- returns the app folder and the temporary folder (to remove).
function e2e.copy_app(src)
  local tmp = e2e.tempdir()
  local dir = tmp .. "/app"
  assert(os.execute("cp -r " .. shell_quote(src) .. " " .. shell_quote(dir)), "cp -r failed")
  return dir, tmp
end

-- Reads and writes whole files (write: in place, truncating).
e2e.read_file = read_file
function e2e.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  assert(f:write(bytes))
  assert(f:close())
end

------------------------------------------------------------------------------
-- Added for issue 10 (hostile clients).

-- How many file descriptors a process holds (nil when it is gone).
function e2e.fd_count(pid)
  local p = io.popen("ls /proc/" .. tonumber(pid) .. "/fd 2>/dev/null | wc -l", "r")
  local n = p and tonumber(p:read("l") or "")
  if p then p:close() end
  return n ~= 0 and n or nil
end

-- Sends raw bytes on a fresh connection and reads one response; returns it
-- and whether the server then closed the connection.
function e2e.raw_request(port, bytes)
  local c = e2e.connect(port)
  assert(c:send(bytes))
  local resp, err = c:read_response()
  assert(resp, "no response: " .. tostring(err))
  local closed = c:wait_closed(e2e.TEST_TIMEOUT)
  c:close()
  return resp, closed
end

-- Polls f() (every 50 ms, bounded) until it returns a true value; returns it,
-- or nil once the timeout passed.
function e2e.eventually(f, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  repeat
    local v = f()
    if v then return v end
    socket.sleep(0.05)
  until now() > deadline
  return nil
end

package.loaded["e2e"] = e2e
return e2e
