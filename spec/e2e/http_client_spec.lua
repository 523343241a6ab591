-- Calling other services (issue 14): flosse.http.request / .get from views,
-- streams, a permission class and a background task, against an upstream of
-- the spec's own (spec/tools/http_upstream.py, plain and HTTPS with a
-- certificate made here by the openssl command line): round trips with
-- exact bytes, timeouts, refusals, bodies over max_body, a slow upstream
-- while other streams keep flowing, a client that leaves mid-request, a
-- shutdown mid-request, and bad arguments.
local e2e = require "spec.helper"

local FIXTURE = "spec/fixtures/http_client"

local function urlencode(s)
  return (s:gsub("[^%w%-_%.]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function free_port()
  local s = assert(e2e.socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- The upstream: python3 http_upstream.py in the background; its port, its
-- event log, and stop.
local function start_upstream(dir, name, cert, key)
  local portfile, logfile = dir .. "/" .. name .. ".port", dir .. "/" .. name .. ".log"
  local cmd = "exec python3 spec/tools/http_upstream.py " .. e2e.shell_quote(portfile) .. " "
    .. e2e.shell_quote(logfile)
  if cert then cmd = cmd .. " " .. e2e.shell_quote(cert) .. " " .. e2e.shell_quote(key) end
  local errfile = dir .. "/" .. name .. ".err"
  local p = assert(io.popen(cmd .. " >" .. e2e.shell_quote(errfile) .. " 2>&1 </dev/null & echo $!"))
  local pid = tonumber(p:read("l"))
  p:close()
  local port = e2e.eventually(function()
    local f = io.open(portfile)
    if not f then return nil end
    local v = tonumber(f:read("a"))
    f:close()
    return v
  end)
  assert(port, "the upstream did not start: " .. (e2e.read_file(errfile) or ""))
  return {
    pid = pid, port = port, url = (cert and "https" or "http") .. "://127.0.0.1:" .. port,
    log = function() return e2e.read_file(logfile) or "" end,
    stop = function() os.execute("kill " .. pid .. " 2>/dev/null") end,
  }
end

-- Waits (bounded) until the upstream logged line; returns the log, or nil.
local function upstream_logged(up, line)
  return e2e.eventually(function()
    local log = up.log()
    return log:find(line, 1, true) and log
  end)
end

describe("#e2e flosse.http", function()
  local dir, up, tls, server

  local function call(q)
    local resp = e2e.get(server.port, "/call/?" .. q)
    assert.equal(200, resp.status, resp.body)
    return e2e.json_decode(resp.body)
  end

  local function start_server(env)
    local base = { FLOSSE_TEST_UPSTREAM = up.url, FLOSSE_TEST_UPSTREAM_TLS = tls.url,
      FLOSSE_TEST_CA = dir .. "/cert.pem", FLOSSE_TEST_REFUSED_PORT = tostring(free_port()) }
    for k, v in pairs(env or {}) do base[k] = v end
    return e2e.start(FIXTURE, { env = base, workers = 1 })
  end

  setup(function()
    dir = e2e.tempdir()
    assert(os.execute("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
      .. " -addext subjectAltName=IP:127.0.0.1 -keyout " .. e2e.shell_quote(dir .. "/key.pem")
      .. " -out " .. e2e.shell_quote(dir .. "/cert.pem") .. " >/dev/null 2>&1"), "openssl could not make a certificate")
    up = start_upstream(dir, "plain")
    tls = start_upstream(dir, "tls", dir .. "/cert.pem", dir .. "/key.pem")
    server = start_server()
  end)

  teardown(function()
    if server then server:cleanup() end
    if up then up.stop() end
    if tls then tls.stop() end
    if dir then e2e.remove_tree(dir) end
  end)

  it("GET: status, headers (lower-cased, repeated ones joined) and body as sent", function()
    local r = call("path=/echo")
    assert.equal(201, r.status)
    assert.equal("yes", r.headers["x-upstream"])
    assert.equal("a, b", r.headers["x-multi"])
    assert.equal("application/json", r.headers["content-type"])
    local echo = e2e.json_decode(unhex(r.body_hex))
    assert.equal("GET", echo.method)
    assert.equal("", echo.body)
    assert.same({ "flosse/0.1.0" }, echo.headers["user-agent"])
    assert.is_nil(echo.headers["content-type"])  -- nothing the caller did not ask for
  end)

  it("POST: a binary body and the caller's headers arrive exactly; a binary answer comes back exactly", function()
    local r = call("path=/echo&method=post&body=binary&h_X-Test=" .. urlencode("a value"))
    assert.equal(201, r.status)
    local echo = e2e.json_decode(unhex(r.body_hex))
    assert.equal("POST", echo.method)
    local all = {}
    for i = 0, 255 do all[#all + 1] = ("%02x"):format(i) end
    assert.equal(table.concat(all), echo.body)
    assert.same({ "a value" }, echo.headers["x-test"])
    assert.same({ "256" }, echo.headers["content-length"])
    assert.is_nil(echo.headers["expect"])

    local b = call("path=/binary")
    assert.equal(200, b.status)
    assert.equal(1024, b.body_len)
    assert.equal(table.concat(all):rep(4), b.body_hex)
  end)

  it("other methods, HEAD, an error status and redirects (followed only with follow = true)", function()
    local put = call("path=/echo&method=PUT&body=x")
    assert.equal("PUT", e2e.json_decode(unhex(put.body_hex)).method)
    local del = call("path=/echo&method=DELETE")
    assert.equal("DELETE", e2e.json_decode(unhex(del.body_hex)).method)
    local head = call("path=/echo&method=HEAD")
    assert.equal(201, head.status)
    assert.equal(0, head.body_len)
    assert.equal(404, call("path=" .. urlencode("/status?code=404")).status)
    local redirect = call("path=/redirect")
    assert.equal(302, redirect.status)
    assert.equal("/echo", redirect.headers.location)
    local followed = call("path=/redirect&follow=1")
    assert.equal(201, followed.status)
    assert.equal("yes", followed.headers["x-upstream"])
  end)

  it("failures are nil and a short text: refused, resolve, timeout, too large (body and headers)", function()
    assert.same({ is_nil = true, err = "refused" }, call("refused=1"))
    assert.same({ is_nil = true, err = "resolve" }, call("resolve=1&timeout=5"))
    local t0 = e2e.now()
    assert.same({ is_nil = true, err = "timeout" }, call("path=" .. urlencode("/slow?s=5&id=t") .. "&timeout=0.5"))
    assert.is_true(e2e.now() - t0 < 4, "the timeout took " .. (e2e.now() - t0) .. " s")
    assert.same({ is_nil = true, err = "too large" }, call("path=" .. urlencode("/binary") .. "&max_body=1000"))
    assert.same({ is_nil = true, err = "too large" }, call("path=/big-headers"))
    assert.equal(1024, call("path=/binary&max_body=1024").body_len)  -- exactly max_body is fine
  end)

  it("a body over max_body is cut off as soon as it is over: the server's memory stays bounded", function()
    local before = e2e.rss_kib(server.pid)
    for _, chunked in ipairs { "0", "1" } do
      local r = call("path=" .. urlencode("/huge?n=300000000&chunked=" .. chunked) .. "&timeout=20")
      assert.same({ is_nil = true, err = "too large" }, r)
    end
    local log = assert(upstream_logged(up, "huge aborted"), up.log())
    for sent in log:gmatch("huge aborted sent=(%d+)") do
      assert.is_true(tonumber(sent) < 100000000, "the upstream sent " .. sent .. " bytes before the cut")
    end
    assert.is_nil(log:find("huge sent=300000000", 1, true))
    local after = e2e.rss_kib(server.pid)
    assert.is_true(after - before < 64 * 1024, ("RSS grew from %d to %d KiB"):format(before, after))
  end)

  it("a slow upstream (3 s) suspends only its stream: other streams and requests keep flowing", function()
    local ticks = e2e.open(server.port, "/ticks/")
    assert(ticks:read_event())
    local slow = e2e.open(server.port, "/slow/?s=3&id=flow")
    local ev = assert(slow:read_event())
    assert.equal("before", ev.event)
    local t0 = e2e.now()
    -- While it waits: ticks arrive at their pace, and a plain view answers.
    local arrivals, done = {}, nil
    local hello_at
    while e2e.now() - t0 < 15 and not done do
      local tk = ticks:read_event(0.05)
      if tk and tk.event == "tick" then arrivals[#arrivals + 1] = e2e.now() end
      if not hello_at and e2e.now() - t0 > 1 then
        local h0 = e2e.now()
        assert.equal("hello\n", e2e.get(server.port, "/hello/").body)
        hello_at = e2e.now() - h0
      end
      local s = slow:read_event(0.01)
      if s then done = s end
    end
    assert(done, "the slow stream never answered")
    assert.equal("after", done.event)
    local after = e2e.json_decode(done.data)
    assert.equal(200, after.status)
    assert.equal("slow flow done", unhex(after.body_hex))
    local waited = e2e.now() - t0
    assert.is_true(waited > 2.5, "answered after " .. waited .. " s")
    assert.is_true(#arrivals >= 15, #arrivals .. " ticks during the 3 s wait")
    local gap = 0
    for i = 2, #arrivals do gap = math.max(gap, arrivals[i] - arrivals[i - 1]) end
    assert.is_true(gap < 1.5, "ticks stalled for " .. gap .. " s")
    assert.is_true(hello_at < 1.5, "a plain view took " .. hello_at .. " s")
    assert.equal("still", assert(slow:read_event()).event)
    ticks:close()
    slow:close()
  end)

  it("many requests in flight at once on one worker: they wait side by side, not one after another", function()
    local streams = {}
    for i = 1, 20 do
      local c = e2e.open(server.port, "/slow/?s=2&id=many" .. i)
      assert.equal("before", assert(c:read_event()).event)
      streams[i] = c
    end
    local t0 = e2e.now()
    for i, c in ipairs(streams) do
      local ev = assert(c:read_event(30))
      assert.equal("after", ev.event)
      assert.equal("slow many" .. i .. " done", unhex(e2e.json_decode(ev.data).body_hex))
      c:close()
    end
    -- One after another would be 40 s.
    assert.is_true(e2e.now() - t0 < 15, "20 requests of 2 s took " .. (e2e.now() - t0) .. " s")
  end)

  it("a timeout inside a stream: nil, \"timeout\", and the view goes on", function()
    local c = e2e.open(server.port, "/slow/?s=5&id=st&timeout=0.5")
    assert.equal("before", assert(c:read_event()).event)
    local ev = assert(c:read_event())
    assert.equal("after", ev.event)
    assert.same({ is_nil = true, err = "timeout" }, e2e.json_decode(ev.data))
    assert.equal("still", assert(c:read_event()).event)
    c:close()
  end)

  it("a client that leaves mid-request: the request is aborted (the upstream sees it close)", function()
    local c = e2e.open(server.port, "/slow/?s=20&id=gone")
    assert.equal("before", assert(c:read_event()).event)
    assert(upstream_logged(up, "slow gone started"))
    c:close()
    assert(upstream_logged(up, "slow gone closed"), up.log())
    assert.is_nil(up.log():find("slow gone done", 1, true))
    assert.equal("hello\n", e2e.get(server.port, "/hello/").body)
  end)

  it("from a permission class", function()
    local c = e2e.open(server.port, "/guarded/?user=alice")
    assert.equal("in", assert(c:read_event()).event)
    c:close()
    local denied = e2e.get(server.port, "/guarded/?user=bob")
    assert.equal(403, denied.status)
  end)

  it("from a background task; not from the top of tasks.lua", function()
    local r = e2e.eventually(function()
      local v = e2e.json_decode(e2e.get(server.port, "/task/").body)
      return v.task and v
    end)
    assert(r, "the task's request never finished")
    assert.equal(201, r.task.status)
    local echo = e2e.json_decode(r.task.body)
    assert.equal("POST", echo.method)
    assert.equal("/echo?from=task", echo.path)
    assert.equal(("from a task"):gsub(".", function(ch) return ("%02x"):format(ch:byte()) end), echo.body)
    assert.matches("flosse.http.get: must be called from a view, a permission or authentication class, or a task",
      r.top_level, 1, true)
  end)

  it("HTTPS: verified against the system's store by default (a self-signed server fails: \"tls\"), " ..
     "and against ca_file when given", function()
    assert.same({ is_nil = true, err = "tls" }, call("tls=1"))
    local r = call("tls=1&ca=1&path=/echo")
    assert.equal(201, r.status)
    assert.equal("GET", e2e.json_decode(unhex(r.body_hex)).method)
  end)

  it("bad arguments raise a clear error at the caller's line", function()
    local lines = {}
    local n = 0
    for line in io.lines(FIXTURE .. "/urls.lua") do
      n = n + 1
      local case = line:match("%-%- case:(%w[%w_]*)")
      if case then lines[case] = n end
    end
    local got = e2e.json_decode(e2e.get(server.port, "/bad/").body)
    local want = {
      not_table = "flosse.http.request: expected a table of options",
      no_url = "flosse.http.request: url is required",
      scheme = "flosse.http.request: url must be an http:// or https:// URL",
      no_host = "flosse.http.request: url must be an http:// or https:// URL",
      header_value = "flosse.http.request: header A must be a string, not number",
      header_crlf = "flosse.http.request: header A holds a CR, LF or NUL byte",
      header_nul = "flosse.http.request: header A holds a CR, LF or NUL byte",
      header_name = "flosse.http.request: header name \"A B\" is not a token",
      timeout = "flosse.http.request: timeout must be a positive number of seconds",
      max_body = "flosse.http.request: max_body must be a non-negative integer",
      unknown = "flosse.http.request: unknown option \"tiemout\"",
      body = "flosse.http.request: body must be a string",
      get_url = "flosse.http.get: url is required",
      get_opts = "flosse.http.get: opts must be a table",
    }
    for case, text in pairs(want) do
      assert(lines[case], "no line marked case:" .. case)
      assert.matches("urls.lua:" .. lines[case] .. ": " .. text, got[case], 1, true)
    end
    assert.matches("flosse.http.get: must be called from a view", got.own_coroutine, 1, true)
    assert.equal("hello\n", e2e.get(server.port, "/hello/").body)
  end)
end)

describe("#e2e flosse.http at shutdown", function()
  it("a task waiting on a request at a reload, then at a stop: aborted each time, the server exits 0", function()
    local dir = e2e.tempdir()
    local up = start_upstream(dir, "plain")
    local server = e2e.start_with_status(FIXTURE, { workers = 1, env = { FLOSSE_TEST_UPSTREAM = up.url,
      FLOSSE_TEST_HTTP_BLOCKER = "1", FLOSSE_TEST_REFUSED_PORT = tostring(free_port()) } })
    local ok, err = pcall(function()
      assert(upstream_logged(up, "slow blocker started"), up.log())
      -- A reload cancels the old generation's task: its request is aborted,
      -- and the new generation's task makes its own.
      server:signal("HUP")
      assert(upstream_logged(up, "slow blocker closed"), up.log())
      assert(e2e.eventually(function()
        local _, n = up.log():gsub("slow blocker started", "")
        return n == 2
      end), up.log())
      server:signal("TERM")
      assert.equal(0, server:exit_status(e2e.TEST_TIMEOUT), server:log())
      assert(e2e.eventually(function()
        local _, n = up.log():gsub("slow blocker closed", "")
        return n == 2
      end), up.log())
    end)
    server:cleanup()
    up.stop()
    e2e.remove_tree(dir)
    assert(ok, err)
  end)
end)
