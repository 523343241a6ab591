-- spec/e2e/helper/h2.lua: what the HTTP/2 specs (spec/e2e/h2*_spec.lua)
-- share: a self-signed certificate made with the openssl CLI (h2.make_cert),
-- a server whose "listening on" line may say https (h2.start, h2.serve),
-- curl and nghttp runs parsed into responses (h2.curl, h2.nghttp), the
-- python3-h2 clients of spec/tools/ (h2.client, h2.flood, in the foreground
-- or in the background: h2.spawn), and the comparison with what HTTP/1.1
-- delivers for the same route (h2.h1).
--
-- Every command runs under `timeout`, every loop has a deadline: a broken
-- server makes a spec fail, never hang.

local e2e = require "e2e"

local M = {}

-- Debian's python3 (python3-h2 is installed for it; `python3` on PATH may be
-- another interpreter without it).
M.PYTHON = os.getenv("FLOSSE_H2_PYTHON") or "/usr/bin/python3"

local q = e2e.shell_quote

-- A shell command line, bounded: e2e.sh.
M.run = e2e.sh

------------------------------------------------------------------------------
-- Certificates

-- Makes a self-signed certificate for localhost and 127.0.0.1 (EC P-256) in
-- dir; returns the paths of cert.pem and key.pem.
function M.make_cert(dir)
  return e2e.make_cert{ cert = dir .. "/cert.pem", key = dir .. "/key.pem" }
end

------------------------------------------------------------------------------
-- The server

local started = {}  -- pid -> server not stopped yet

-- h2.start(dir, opts) starts `flosse serve dir --host 127.0.0.1 --port 0
-- --workers 1 [opts.args]` (opts.env as for e2e.start) and waits (bounded)
-- for its "listening on http://HOST:PORT/" or "https://" line. Returns an
-- e2e.Server (port, pid, log, stop, cleanup) or raises with the log.
function M.start(dir, opts)
  opts = opts or {}
  local args = { "--host", "127.0.0.1", "--port", "0", "--workers", tostring(opts.workers or 1) }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local logfile = os.tmpname()
  local cmd = e2e.serve_command(dir, args, opts.env)
  local p = assert(io.popen("exec " .. cmd .. " >" .. q(logfile) .. " 2>&1 </dev/null & echo $!", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "could not start: " .. cmd)
  local server = setmetatable({ pid = pid, logfile = logfile, cmd = cmd, host = "127.0.0.1" }, e2e.Server)
  started[pid] = server
  local deadline = e2e.now() + (opts.timeout or e2e.TEST_TIMEOUT)
  while true do
    local log = server:log()
    local scheme, port = log:match("listening on (https?)://127%.0%.0%.1:(%d+)/")
    if port then
      server.port, server.scheme = tonumber(port), scheme
      return server
    end
    if not server:alive() or e2e.now() > deadline then
      server:cleanup()
      started[pid] = nil
      error("server did not report listening: " .. cmd .. "\n" .. log, 2)
    end
    e2e.sleep(0.05)
  end
end

-- h2.serve(setup, teardown, dir, opts): the server of a describe block, as
-- e2e.serve (opts as h2.start; a function opts is called by setup).
function M.serve(setup_hook, teardown_hook, dir, opts)
  local server = setmetatable({}, e2e.Server)
  setup_hook(function()
    local s = M.start(dir, type(opts) == "function" and opts() or opts)
    for k, v in pairs(s) do server[k] = v end
    started[s.pid] = server
  end)
  teardown_hook(function()
    if server.pid then
      server:cleanup()
      started[server.pid] = nil
    end
  end)
  return server
end

M._sentinel = setmetatable({}, { __gc = function()
  for _, s in pairs(started) do s:stop() end
end })

------------------------------------------------------------------------------
-- curl and nghttp

-- Parses a header dump (curl -D) into status, version and lowercased
-- name -> value (repeats joined with ", "), and the lines in order.
local function parse_head(raw)
  local head = { headers = {}, header_lines = {} }
  for line in raw:gmatch("([^\r\n]*)\r?\n") do
    local version, status = line:match("^HTTP/(%S+) (%d%d%d)")
    if version then
      -- a later head (after a 100 Continue) replaces the earlier one
      head = { headers = {}, header_lines = {}, version = version, status = tonumber(status) }
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

-- h2.curl(url, opts) -> { code (curl's exit), version ("2", "1.1"), status,
-- headers, header_lines, body, stderr }.
-- opts.mode: "h2c" (--http2-prior-knowledge, the default for http://),
-- "h2" (--http2 over TLS, with opts.cacert or -k), "h1" (--http1.1);
-- opts.headers: list of "Name: value"; opts.method; opts.data (bytes, sent
-- with --data-binary from a file); opts.extra: more curl arguments; opts.max_time (seconds, default
-- e2e.TEST_TIMEOUT).
function M.curl(url, opts)
  opts = opts or {}
  local hdr, body, datafile = os.tmpname(), os.tmpname(), nil
  local parts = { "curl -sS -N", "--max-time", tostring(opts.max_time or e2e.TEST_TIMEOUT),
    "-D", q(hdr), "-o", q(body), "-w", q("%{http_version} %{response_code}") }
  local mode = opts.mode or (url:match("^https:") and "h2" or "h2c")
  if mode == "h2c" then
    parts[#parts + 1] = "--http2-prior-knowledge"
  elseif mode == "h2" then
    parts[#parts + 1] = "--http2"
    parts[#parts + 1] = opts.cacert and ("--cacert " .. q(opts.cacert)) or "-k"
  elseif mode == "h1" then
    parts[#parts + 1] = "--http1.1"
    if opts.cacert then parts[#parts + 1] = "--cacert " .. q(opts.cacert) end
  end
  for _, a in ipairs(opts.extra or {}) do parts[#parts + 1] = q(a) end
  if opts.method then parts[#parts + 1] = "-X " .. q(opts.method) end
  for _, h in ipairs(opts.headers or {}) do parts[#parts + 1] = "-H " .. q(h) end
  if opts.data then
    datafile = os.tmpname()
    e2e.write_file(datafile, opts.data)
    parts[#parts + 1] = "--data-binary @" .. q(datafile)
  end
  parts[#parts + 1] = q(url)
  local code, out, err = M.run(table.concat(parts, " "), (opts.max_time or e2e.TEST_TIMEOUT) + 5)
  local resp = parse_head(e2e.read_file(hdr))
  resp.body = e2e.read_file(body)
  os.remove(hdr)
  os.remove(body)
  if datafile then os.remove(datafile) end
  resp.code, resp.stderr, resp.written = code, err, out
  resp.version = out:match("^(%S+)") or resp.version
  return resp
end

-- h2.nghttp(url, opts) -> { code, body (stdout of a run without -v),
-- status, headers (lowercased, from a second run with -v), settings (the
-- server's SETTINGS: name -> number), verbose (that run's output) }.
-- opts.headers: list of "name: value"; opts.data: a body to POST (-d);
-- opts.timeout: nghttp's own (-t). opts.body_only: skip the -v run.
function M.nghttp(url, opts)
  opts = opts or {}
  local parts = { "nghttp" }
  if opts.timeout then parts[#parts + 1] = "-t " .. tostring(opts.timeout) end
  for _, h in ipairs(opts.headers or {}) do parts[#parts + 1] = "-H " .. q(h) end
  local datafile
  if opts.data then
    datafile = os.tmpname()
    e2e.write_file(datafile, opts.data)
    parts[#parts + 1] = "-d " .. q(datafile)
  end
  parts[#parts + 1] = q(url)
  local bound = (opts.timeout or e2e.TEST_TIMEOUT) + 5
  local code, body, err = M.run(table.concat(parts, " "), bound)
  local resp = { code = code, body = body, stderr = err, headers = {}, settings = {} }
  if opts.body_only then
    if datafile then os.remove(datafile) end
    return resp
  end
  table.insert(parts, 2, "-v")
  local vcode, verbose = M.run(table.concat(parts, " "), bound)
  if datafile then os.remove(datafile) end
  resp.vcode, resp.verbose = vcode, verbose
  local in_settings = false
  for line in verbose:gmatch("[^\n]+") do
    if line:match("^%[") then
      in_settings = line:match("%] recv SETTINGS frame <") ~= nil and resp.settings_seen == nil
      if in_settings then resp.settings_seen = true end
      local name, value = line:match("%] recv %(stream_id=%d+%) ([^:][^:]*): (.*)$")
      local status = line:match("%] recv %(stream_id=%d+%) :status: (%d+)")
      if status then
        resp.status = tonumber(status)
      elseif name then
        resp.headers[name] = resp.headers[name] and (resp.headers[name] .. ", " .. value) or value
      end
    elseif in_settings then
      local sname, v = line:match("%[SETTINGS_([%u_]+)%(0x%x+%):(%d+)%]")
      if sname then resp.settings[sname] = tonumber(v) end
    end
  end
  return resp
end

------------------------------------------------------------------------------
-- The python3-h2 clients (spec/tools/h2_client.py, spec/tools/h2_flood.py)

local function tool_command(tool, args)
  local parts = { q(M.PYTHON), q("spec/tools/" .. tool) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(tostring(a)) end
  return table.concat(parts, " ")
end

-- JSON null decodes to a sentinel (cjson.null); the specs want nil.
local function denull(v)
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if type(x) == "userdata" then v[k] = nil else denull(x) end
  end
  return v
end

local function decode_last_line(out, err, what)
  local line = out:match("([^\n]+)\n?$")
  local ok, v = pcall(e2e.json_decode, line or "")
  assert(ok and type(v) == "table", what .. " printed no JSON:\n" .. out .. "\n" .. err)
  return denull(v)
end

-- h2.client(args, timeout): runs h2_client.py args in the foreground
-- (bounded: timeout seconds, default 30) and returns its decoded JSON.
function M.client(args, timeout)
  local code, out, err = M.run(tool_command("h2_client.py", args), timeout or 30)
  assert(code == 0, "h2_client.py exited " .. tostring(code) .. ":\n" .. out .. "\n" .. err)
  return decode_last_line(out, err, "h2_client.py")
end

-- A plan for h2_client.py: the requests, each a path or a table
-- { path =, method =, headers = { {name, value}, ... }, body = }.
function M.plan(list)
  local plan = {}
  for i, r in ipairs(list) do plan[i] = type(r) == "string" and { path = r } or r end
  return e2e.json_encode(plan)
end

-- h2.spawn(tool, args, timeout): runs spec/tools/TOOL args in the
-- background (under `timeout`); returns a handle with pid, :done() (its
-- JSON has arrived), :wait(t) (the decoded JSON, bounded) and :kill().
function M.spawn(tool, args, timeout)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = "timeout -k 2 " .. tostring(timeout or 30) .. " " .. tool_command(tool, args)
  local p = assert(io.popen("exec " .. cmd .. " >" .. q(out) .. " 2>" .. q(err) .. " </dev/null & echo $!", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  local h = { pid = pid, out = out, err = err, tool = tool }
  function h.done() return e2e.read_file(out):find("\n", 1, true) ~= nil end
  function h.wait(_, t)
    assert(e2e.eventually(h.done, t or (timeout or 30) + 5), tool .. " did not finish:\n" .. e2e.read_file(err))
    local v = decode_last_line(e2e.read_file(out), e2e.read_file(err), tool)
    os.remove(out)
    os.remove(err)
    return v
  end
  function h.kill()
    if pid then os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
  end
  return h
end

------------------------------------------------------------------------------
-- Comparing with HTTP/1.1

-- The same route over HTTP/1.1 (e2e.get/e2e.request): { status, headers,
-- body (de-chunked) }.
function M.h1(port, target, opts)
  opts = opts or {}
  if opts.method == "POST" then return e2e.post(port, target, opts.data or "", opts.headers) end
  return e2e.request(port, opts.method or "GET", target, opts.headers)
end

-- An error event's error_id is random: the same body with it blanked.
function M.normalize(body)
  return (body:gsub('"error_id":"%x+"', '"error_id":"ID"'))
end

-- Headers an HTTP/2 response must not carry (RFC 9113 8.2.2).
M.CONNECTION_HEADERS = { "connection", "transfer-encoding", "keep-alive", "proxy-connection", "upgrade" }

return M
