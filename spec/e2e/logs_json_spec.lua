-- End to end (issue 14): --log-format json and log_format = "json". Every
-- line the server writes on stderr must be one JSON object with ts, level
-- and kind; access, error and lifecycle lines carry their fields typed.
local e2e = require "e2e"
local cjson = require "cjson"

local APP = "spec/fixtures/logs_json"
local SECRET = "secret-token-123"

-- Every line of log as a decoded object; fails on a line that is not one.
local function objects(log)
  local list = {}
  for line in log:gmatch("[^\n]+") do
    assert.is_truthy(utf8.len(line), "a line that is not UTF-8: " .. line)
    local ok, obj = pcall(cjson.decode, line)
    assert.is_true(ok and type(obj) == "table", "a line that is not a JSON object: " .. line)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", obj.ts, line)
    assert.truthy(({ error = 1, warn = 1, info = 1, debug = 1 })[obj.level], line)
    assert.is_string(obj.kind, line)
    obj.line = line
    list[#list + 1] = obj
  end
  return list
end

local function find(log, pred)
  for _, o in ipairs(objects(log)) do
    if pred(o) then return o end
  end
end

local function wait_find(server, pred, what)
  local o = e2e.eventually(function() return find(server:log(), pred) end)
  assert.is_table(o, "no " .. what .. " line in:\n" .. server:log())
  return o
end

describe("#e2e JSON logs: --log-format json", function()
  local server, dir, tmp

  setup(function()
    dir, tmp = e2e.copy_app(APP)
    server = e2e.start(dir, { workers = 2, args = { "--log-format", "json" } })
  end)

  teardown(function()
    if server then server:cleanup() end
    e2e.remove_tree(tmp)
  end)

  it("starts with a lifecycle line: listening, with its url", function()
    local o = wait_find(server, function(x) return x.kind == "lifecycle" and x.event == "listening" end, "listening")
    assert.equal("info", o.level)
    assert.equal("http://127.0.0.1:" .. server.port .. "/", o.url)
  end)

  it("access lines: a stream's and a 404's fields, typed", function()
    local c = e2e.open_stream(server.port, "/sse/ticks/?n=3")
    for _ = 1, 3 do assert(c:read_event()) end
    c:close()
    local a = wait_find(server, function(x) return x.kind == "access" and x.path == "/sse/ticks/?n=3" end, "access")
    assert.equal("info", a.level)
    assert.equal("GET", a.method)
    assert.equal(200, a.status)
    assert.equal(3, a.events)
    assert.equal("127.0.0.1", a.remote_addr)
    assert.is_number(a.duration)
    assert.is_true(a.bytes > 0 and a.bytes == math.floor(a.bytes), a.line)
    assert.equal(404, e2e.get(server.port, "/no/such/").status)
    local n = wait_find(server, function(x) return x.kind == "access" and x.path == "/no/such/" end, "404 access")
    assert.equal(404, n.status)
    assert.equal(0, n.events)
  end)

  it("a query credential is redacted, and appears nowhere on stderr", function()
    local r = e2e.get(server.port, "/hello/?token=" .. SECRET .. "&x=1")
    assert.equal("hello ann", r.body)
    local a = wait_find(server, function(x) return x.kind == "access" and (x.path or ""):find("^/hello/") end,
      "access for /hello/")
    assert.equal("/hello/?token=…&x=1", a.path)
    assert.is_nil(server:log():find(SECRET, 1, true), server:log())
  end)

  it("an error line: the error_id the client got, the message, the Lua traceback", function()
    local c = e2e.open_stream(server.port, "/sse/boom/")
    assert.equal("before", assert(c:read_event()).data)
    local ev = assert(c:read_event())
    c:close()
    assert.equal("error", ev.event)
    local id = cjson.decode(ev.data).error_id
    local o = wait_find(server, function(x) return x.kind == "error" and x.error_id == id end, "error " .. id)
    assert.equal("error", o.level)
    assert.equal("GET /sse/boom/", o.where)
    assert.matches("views%.lua:%d+: boom from the fixture$", o.message)
    assert.matches("^stack traceback:\n", o.traceback)
    assert.truthy(o.traceback:find("views.lua:%d+: in"), o.traceback)
    assert.truthy(o.traceback:find("fail_deeper", 1, true), o.traceback)
  end)

  it("control characters and bytes that are not UTF-8 from a client still give valid JSON lines", function()
    -- A view that raises with what the client sent, percent-decoded: \xff,
    -- \x01, a well-formed "é", a lone surrogate's encoding, a newline.
    local c = e2e.open_stream(server.port, "/sse/echo/?q=%ff%01%c3%a9%ed%a0%80%0aend")
    local ev = assert(c:read_event())
    c:close()
    local id = cjson.decode(ev.data).error_id
    local o = wait_find(server, function(x) return x.kind == "error" and x.error_id == id end, "error " .. id)
    assert.matches("bad input: \u{fffd}\1é\u{fffd}\u{fffd}\u{fffd}\nend$", o.message)
    -- Raw bytes in the request line: refused (400) or routed (404), and the
    -- lines still parse; a routed one's path has its bad bytes replaced.
    local seen = {}
    for _, target in ipairs({ "/x\1y/", "/caf\xc3\xa9/\xff\xfe/", "/\x7f/" }) do
      local resp = e2e.raw_request(server.port, "GET " .. target .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.truthy(resp.status == 400 or resp.status == 404, resp.raw)
      seen[target] = resp.status
    end
    if seen["/caf\xc3\xa9/\xff\xfe/"] == 404 then
      local a = wait_find(server, function(x) return x.kind == "access" and (x.path or ""):find("^/caf") end, "access")
      assert.equal("/café/\u{fffd}\u{fffd}/", a.path)
    end
    objects(server:log())
  end)

  it("two workers under concurrent requests never break a line", function()
    local clients = {}
    for i = 1, 40 do
      local c = e2e.connect(server.port)
      assert(c:send(e2e.request_bytes("GET", "/hello/?i=" .. i)))
      clients[#clients + 1] = c
    end
    for _, c in ipairs(clients) do
      assert.equal(200, assert(c:read_response()).status)
      c:close()
    end
    assert.truthy(e2e.eventually(function()
      local n = 0
      for _, o in ipairs(objects(server:log())) do
        if o.kind == "access" and (o.path or ""):find("^/hello/%?i=") then n = n + 1 end
      end
      return n == 40
    end), server:log())
  end)

  it("reloads: a SIGHUP, a good reload and a failed one are lifecycle lines", function()
    server:signal("HUP")
    wait_find(server, function(x) return x.kind == "lifecycle" and x.event == "reload_signal" end, "SIGHUP")
    wait_find(server, function(x) return x.kind == "lifecycle" and x.event == "reload" end, "reload")
    local views = dir .. "/views.lua"
    local good = e2e.read_file(views)
    e2e.write_file(views, good .. "\nthis is not Lua\n")
    local f = wait_find(server, function(x) return x.kind == "lifecycle" and x.event == "reload_failed" end,
      "reload_failed")
    assert.equal("error", f.level)
    assert.truthy(f.msg:find("views.lua:%d+:"), f.msg)
    e2e.write_file(views, good)
  end)

  it("shutdown: lifecycle lines to the end", function()
    server:signal("TERM")
    assert.truthy(e2e.eventually(function() return not server:alive() end), server:log())
    local log = server:log()
    assert.is_table(find(log, function(x) return x.event == "shutdown" end), log)
    assert.is_table(find(log, function(x) return x.event == "stopped" end), log)
  end)
end)

describe("#e2e JSON logs: the log_format setting", function()
  it("log_format = \"json\" in settings.lua", function()
    local s = e2e.start(APP, { env = { FLOSSE_TEST_LOG_FORMAT = "json" } })
    finally(function() s:cleanup() end)
    e2e.get(s.port, "/hello/")
    assert.is_table(e2e.eventually(function()
      return find(s:log(), function(x) return x.kind == "access" and x.path == "/hello/" end)
    end), s:log())
  end)

  it("the flag wins over the setting", function()
    local s = e2e.start(APP, { env = { FLOSSE_TEST_LOG_FORMAT = "json" }, args = { "--log-format", "text" } })
    finally(function() s:cleanup() end)
    e2e.get(s.port, "/hello/")
    assert.truthy(s:wait_log('flosse: access 127.0.0.1 "GET /hello/" 200'), s:log())
  end)

  it("a bad value fails serve and check, naming the file and line", function()
    local code, _, err = e2e.run_serve(APP, { "--port", "0" }, { env = { FLOSSE_TEST_LOG_FORMAT = "yaml" } })
    assert.equal(2, code, err)
    assert.truthy(err:find("settings.lua:6:", 1, true) and err:find("log_format", 1, true), err)
    local ccode, cout, cerr = e2e.run_flosse({ "check", APP }, { env = { FLOSSE_TEST_LOG_FORMAT = "yaml" } })
    assert.equal(2, ccode, cout .. cerr)
    assert.truthy((cout .. cerr):find("settings.lua:6:", 1, true), cout .. cerr)
    local fcode, _, ferr = e2e.run_serve(APP, { "--port", "0", "--log-format", "yaml" })
    assert.equal(2, fcode, ferr)
    assert.truthy(ferr:find("--log-format takes text or json, not yaml", 1, true), ferr)
  end)
end)
