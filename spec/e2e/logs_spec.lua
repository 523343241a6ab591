-- End to end (issue 3): the server's log on stderr. One access line per
-- request when it ends, whatever ended it:
--   flosse: access 127.0.0.1 "GET /sse/progress/" 200 10.012s events=11 bytes=1290
-- error lines with the script file and line, --log-level, and every flag with
-- its default in `flosse serve --help`.
local e2e = require "e2e"

local APP = "spec/fixtures/limits"

-- Waits (bounded) for an access line matching pred; returns it or nil.
local function wait_access(server, pred, timeout)
  local deadline = e2e.now() + (timeout or e2e.TEST_TIMEOUT)
  repeat
    for _, a in ipairs(e2e.access_lines(server:log())) do
      if pred(a) then return a end
    end
    e2e.sleep(0.05)
  until e2e.now() > deadline
  return nil
end

local function for_path(method, path)
  return function(a) return a.method == method and a.path == path end
end

-- The line of spec/fixtures/limits/views.lua that raises in the boom view.
local function boom_line()
  local n = 0
  for line in io.lines(APP .. "/views.lua") do
    n = n + 1
    if line:find("-- BOOM_LINE", 1, true) then return n end
  end
  error("no BOOM_LINE marker in the fixture")
end

-- Runs the boom view; returns the error id from its error event.
local function boom(port)
  local c, head = e2e.open_stream(port, "/boom/")
  assert.equal(200, head.status)
  local body = assert(c:read_chunked())
  c:close()
  for _, ev in ipairs(e2e.parse_sse(body)) do
    if ev.event == "error" then return e2e.json_decode(ev.data).error_id end
  end
  error("no error event: " .. body)
end

describe("#e2e access log lines (example app)", function()
  local server = e2e.serve(setup, teardown, "scripts")

  it("a stream: method, path, status, duration, events=1 and its bytes", function()
    local resp = e2e.get(server.port, "/sse/styles/string/")
    assert.equal(200, resp.status)
    local a = wait_access(server, for_path("GET", "/sse/styles/string/"))
    assert.is_table(a, "no access line for /sse/styles/string/ in:\n" .. server:log())
    assert.equal("127.0.0.1", a.addr)
    assert.equal(200, a.status)
    assert.equal(1, a.events)
    assert.is_true(a.duration >= 0 and a.duration < 60, a.line)
    assert.matches('^flosse: access 127%.0%.0%.1 "GET /sse/styles/string/" 200 %d+%.%d+s events=1 bytes=%d+$',
      a.line)
    -- bytes: the head and the frames (with or without the chunk framing)
    local low = #resp.raw + #resp.body
    local high = #resp.raw + #resp.raw_body
    assert.is_true(a.bytes >= low and a.bytes <= high,
      string.format("bytes=%d, expected from %d to %d: %s", a.bytes, low, high, a.line))
  end)

  it("an ordinary 404: events=0, bytes = head + body", function()
    local resp = e2e.get(server.port, "/no/such/page/")
    assert.equal(404, resp.status)
    local a = wait_access(server, for_path("GET", "/no/such/page/"))
    assert.is_table(a, "no access line for /no/such/page/ in:\n" .. server:log())
    assert.equal(404, a.status)
    assert.equal(0, a.events)
    assert.equal(#resp.raw + #resp.body, a.bytes, a.line)
  end)

  it("the page at /: 200, events=0", function()
    local resp = e2e.get(server.port, "/")
    local a = wait_access(server, for_path("GET", "/"))
    assert.is_table(a, "no access line for / in:\n" .. server:log())
    assert.equal(200, a.status)
    assert.equal(0, a.events)
    assert.equal(#resp.raw + #resp.body, a.bytes, a.line)
  end)

  it("a 403 has its line too", function()
    local resp = e2e.get(server.port, "/sse/admin/")
    assert.equal(403, resp.status)
    local a = wait_access(server, for_path("GET", "/sse/admin/"))
    assert.is_table(a, "no access line for /sse/admin/ in:\n" .. server:log())
    assert.equal(403, a.status)
  end)

  it("a malformed request is logged with \"-\" for the request", function()
    local before = #e2e.access_lines(server:log())
    local c = e2e.connect(server.port)
    assert(c:send("this is not http\r\n\r\n"))
    local resp = assert(c:read_response())
    c:close()
    assert.equal(400, resp.status)
    local a = wait_access(server, function(x) return x.request == "-" and x.status == 400 end)
    assert.is_table(a, "no access line with \"-\" and 400 in:\n" .. server:log())
    assert.equal("127.0.0.1", a.addr)
    assert.is_true(#e2e.access_lines(server:log()) > before)
  end)

  it("one line per request on a kept-alive connection", function()
    local c = e2e.connect(server.port)
    for _ = 1, 3 do
      assert(c:send(e2e.request_bytes("GET", "/sse/styles/event-data/")))
      assert.equal(200, assert(c:read_response()).status)
    end
    c:close()
    local n
    local deadline = e2e.now() + e2e.TEST_TIMEOUT
    repeat
      n = 0
      for _, a in ipairs(e2e.access_lines(server:log())) do
        if a.path == "/sse/styles/event-data/" then n = n + 1 end
      end
      if n < 3 then e2e.sleep(0.05) end
    until n >= 3 or e2e.now() > deadline
    assert.equal(3, n, server:log())
  end)
end)

describe("#e2e access and error lines (fixture app)", function()
  local server = e2e.serve(setup, teardown, APP)

  it("a stream the client left mid-way still gets its line, with the events sent", function()
    local c, head = e2e.open_stream(server.port, "/ticker/?every=0.1&key=left")
    assert.equal(200, head.status)
    assert.is_true(e2e.pump({ c }, function() return #c:events() >= 3 end, 10))
    c:close()
    local a = wait_access(server, function(x) return x.path and x.path:find("^/ticker/") ~= nil end)
    assert.is_table(a, "no access line for /ticker/ in:\n" .. server:log())
    assert.equal(200, a.status)
    assert.is_true(a.events >= 3, a.line)
    assert.is_true(a.bytes > 0, a.line)
  end)

  it("a view that raises: an error line with its id, the script file and the line", function()
    local id = boom(server.port)
    assert.matches("^%x%x%x%x%x%x%x%x%x%x%x%x$", id)
    local log = server:wait_log(id)
    assert.is_string(log, "error id " .. id .. " not in the log:\n" .. server:log())
    local line
    for l in log:gmatch("[^\n]+") do
      if l:find("flosse: error " .. id, 1, true) then line = l end
    end
    assert.is_string(line, "no line starting \"flosse: error " .. id .. "\":\n" .. log)
    assert.equal("flosse: error " .. id .. " GET /boom/: ", line:sub(1, #("flosse: error " .. id .. " GET /boom/: ")))
    local where = "views.lua:" .. boom_line() .. ": limits fixture boom 5150"
    assert.truthy(line:find(where, 1, true), "expected " .. where .. " in: " .. line)
    local a = wait_access(server, for_path("GET", "/boom/"))
    assert.is_table(a, "no access line for /boom/:\n" .. server:log())
    assert.equal(200, a.status)
  end)

  it("an ordinary POST: its line says POST", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("POST", "/post/", { "Content-Length: 3" }) .. "abc"))
    local resp = assert(c:read_response())
    c:close()
    assert.equal(200, resp.status)
    local a = wait_access(server, for_path("POST", "/post/"))
    assert.is_table(a, "no access line for POST /post/:\n" .. server:log())
    assert.equal(200, a.status)
    assert.equal(#resp.raw + #resp.body, a.bytes, a.line)
  end)
end)

describe("#e2e --log-level", function()
  local server

  after_each(function()
    if server then server:cleanup() end
    server = nil
  end)

  for _, level in ipairs({ "warn", "error" }) do
    it(level .. " hides access lines and keeps error lines", function()
      server = e2e.start(APP, { args = { "--log-level", level } })
      assert.equal(200, e2e.get(server.port, "/plain/").status)
      assert.equal(404, e2e.get(server.port, "/no/such/").status)
      local id = boom(server.port)
      assert.is_string(server:wait_log(id), "error line hidden at " .. level .. ":\n" .. server:log())
      e2e.sleep(0.3)
      local log = server:log()
      assert.falsy(log:find("flosse: access", 1, true), "access lines at " .. level .. ":\n" .. log)
    end)
  end

  it("debug keeps access lines", function()
    server = e2e.start(APP, { args = { "--log-level", "debug" } })
    assert.equal(200, e2e.get(server.port, "/plain/").status)
    assert.is_table(wait_access(server, for_path("GET", "/plain/")), server:log())
  end)

  it("info (the default) has access lines", function()
    server = e2e.start(APP, { args = { "--log-level", "info" } })
    assert.equal(200, e2e.get(server.port, "/plain/").status)
    assert.is_table(wait_access(server, for_path("GET", "/plain/")), server:log())
  end)

  it("an unknown level is a usage error: one line, exit status 2", function()
    local code, _, stderr = e2e.run_serve(APP, { "--port", "0", "--log-level", "loud" })
    assert.equal(2, code, stderr)
    assert.matches("^flosse: [^\n]+\n$", stderr)
  end)
end)

describe("#e2e flosse serve --help", function()
  -- flag -> accepted spellings of its default (nil: the flag takes no value)
  local FLAGS = {
    { "--heartbeat", { "15" } },
    { "--max-connections", { "64" } },  -- "open-file limit - 64"
    { "--max-header-bytes", { "16384" } },
    { "--header-timeout", { "10" } },
    { "--write-timeout", { "30" } },
    { "--max-body-bytes", { "1048576" } },
    { "--lua-memory", { "1024" } },
    { "--instruction-budget", { "100000000" } },
    { "--grace", { "5" } },
    { "--log-level", { "info" } },
    { "--debug" },
    { "--host", { "127.0.0.1" } },
    { "--port", { "8080" } },
  }

  local help, code, stderr

  setup(function()
    -- through the harness, so that FLOSSE_TEST_WRAP applies here too
    code, help, stderr = e2e.run_serve(APP, { "--help" })
  end)

  it("exits 0, the help on stdout", function()
    assert.equal(0, code, stderr)
    assert.truthy(help:find("--heartbeat", 1, true), help)
  end)

  for _, f in ipairs(FLAGS) do
    local flag, defaults = f[1], f[2]
    it("lists " .. flag .. (defaults and (" with its default " .. defaults[1]) or ""), function()
      -- the flag's entry: its line and any continuation lines (not starting a new flag)
      local lines = {}
      for line in help:gmatch("[^\n]*") do lines[#lines + 1] = line end
      local entry
      for i, line in ipairs(lines) do
        if line:find("^%s*" .. flag:gsub("%-", "%%-") .. "%f[^%w%-]") then
          entry = line
          for j = i + 1, #lines do
            if lines[j]:find("^%s*%-") or lines[j]:find("^%S") or lines[j] == "" then break end
            entry = entry .. " " .. lines[j]
          end
          break
        end
      end
      assert.is_string(entry, flag .. " is not listed:\n" .. help)
      if defaults then
        local found = false
        for _, d in ipairs(defaults) do
          if entry:find("%f[%w]" .. d:gsub("%.", "%%.") .. "%f[^%w.]") then found = true end
        end
        assert.is_true(found, flag .. ": default " .. defaults[1] .. " not in: " .. entry)
        assert.truthy(entry:lower():find("default", 1, true), flag .. ": no 'default' in: " .. entry)
      end
    end)
  end
end)
