-- End to end (issue 4): hot reload. `flosse serve` runs on a copy of
-- spec/fixtures/reload in a temporary folder; the specs rewrite files there
-- and watch what the server serves and logs:
--   flosse: reloaded DIR (N routes)
--   flosse: reload failed, still serving the previous app: FILE:LINE: MESSAGE
--   flosse: SIGHUP: reloading
-- A reload is asynchronous (a 0.2 s quiet timer after the last change), so
-- every wait polls the log or the server, with a generous deadline.
local e2e = require "e2e"

local FIXTURE = "spec/fixtures/reload"
local WAIT = math.max(15, e2e.TEST_TIMEOUT * 1.5)  -- seconds a reload may take to show
local FAIL_PREFIX = "flosse: reload failed, still serving the previous app: "

-- The log lines that start with the plain prefix.
local function lines_with(log, prefix)
  local t = {}
  for _, line in ipairs(e2e.lines(log)) do
    if line:sub(1, #prefix) == prefix then t[#t + 1] = line end
  end
  return t
end

local function reloaded_lines(server) return lines_with(server:log(), "flosse: reloaded ") end
local function failed_lines(server) return lines_with(server:log(), FAIL_PREFIX) end

-- Waits (bounded, pumping the clients) until count() >= n; fails with the log.
local function wait_until(server, what, count, n, clients, timeout)
  local ok = e2e.pump(clients or {}, function() return count() >= n end, timeout or WAIT)
  if not ok then
    error(("waited %.1f s for %s #%d (have %d); the server's log:\n%s"):format(
      timeout or WAIT, what, n, count(), server:log()), 2)
  end
end

local function wait_reloads(server, n, clients)
  wait_until(server, "the log line \"flosse: reloaded ...\"", function() return #reloaded_lines(server) end,
    n, clients)
end

local function wait_failures(server, n, clients)
  wait_until(server, "the log line \"" .. FAIL_PREFIX .. "...\"", function() return #failed_lines(server) end,
    n, clients)
end

-- Pumps the clients for `seconds` (a quiet wait).
local function idle(seconds, clients)
  e2e.pump(clients or {}, nil, seconds)
end

-- GET target: the body of a 200 answer (fails otherwise).
local function body(server, target)
  local r = e2e.get(server.port, target)
  assert.equal(200, r.status, "GET " .. target .. ":\n" .. r.raw .. (r.body or ""))
  return r.body
end

-- Polls GET target until the answer is 200 with `want` as its body (or, when
-- want is a number, until that status); fails with the last answer and the log.
local function wait_serves(server, target, want, clients)
  local last
  local ok = e2e.pump(clients or {}, function()
    local r = e2e.get(server.port, target)
    last = r
    if type(want) == "number" then return r.status == want end
    return r.status == 200 and r.body == want
  end, WAIT)
  if not ok then
    error(("GET %s never answered %q; last answer:\n%s%s\nthe server's log:\n%s"):format(target,
      tostring(want), last and last.raw or "(none)", last and last.body or "", server:log()), 2)
  end
end

-- Starts `flosse serve` on a fresh copy of the fixture. Returns server, dir;
-- the caller's finally must call the returned cleanup.
local function start(opts)
  local dir, tmp = e2e.copy_app(FIXTURE)
  local ok, server = pcall(e2e.start, dir, opts)
  if not ok then
    e2e.remove_tree(tmp)
    error(server, 2)
  end
  return server, dir, function()
    server:cleanup()
    e2e.remove_tree(tmp)
  end
end

local function fixture(name) return e2e.read_file(FIXTURE .. "/" .. name) end

-- The line number of the first line of src that contains the plain text s.
local function line_of(src, s)
  local n = 0
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:find(s, 1, true) then return n end
  end
  error("no line with " .. s)
end

local VERSION_LINE = 'local VERSION = "v1"'
local MARKER = "  -- more routes here"

-- views.lua with its VERSION line replaced by `line` (same line number).
local function views_with(line)
  local src, n = fixture("views.lua"):gsub(VERSION_LINE:gsub("%p", "%%%0"), function() return line end)
  assert(n == 1, "the fixture's views.lua has no VERSION line")
  return src
end

local function set_version(dir, v)
  e2e.write_file(dir .. "/views.lua", views_with('local VERSION = "' .. v .. '"'))
end

-- urls.lua with `text` in place of the marker line.
local function urls_with(text)
  local src, n = fixture("urls.lua"):gsub(MARKER:gsub("%p", "%%%0"), function() return text end)
  assert(n == 1, "the fixture's urls.lua has no marker line")
  return src
end

-- A fresh short stream: the version of the code that serves it.
local function stream_version(server)
  local evs = e2e.parse_sse(body(server, "/sse/count/?n=1&every=0"))
  local count, done
  for _, ev in ipairs(evs) do
    if ev.event == "count" then count = ev end
    if ev.event == "done" then done = ev end
  end
  assert(count and done, "a short stream without its events")
  assert.equal("1", count.id)
  assert.equal(done.data .. " 1", count.data)
  return done.data
end

-- Opens /sse/count/?n=N&every=S and reads its first event.
local function open_count(server, n, every)
  local c = e2e.open(server.port, ("/sse/count/?n=%d&every=%s"):format(n, every))
  local ok = e2e.pump({ c }, function() return #c:events() >= 1 end)
  assert(ok, "the stream sent no first event; log:\n" .. server:log())
  return c
end

local function count_events(c)
  local n = 0
  for _, ev in ipairs(c:events()) do
    if ev.event == "count" then n = n + 1 end
  end
  return n
end

-- Reads a /sse/count/ stream to its end and checks it whole: the events
-- "count" with ids 1..n in order, each "VERSION i", then "done" VERSION, then
-- the chunked stream's last chunk; nothing lost, repeated or out of place.
local function finish_count(server, c, n, version, timeout)
  local ok = e2e.pump({ c }, function() return c.stream_ended or c.stream_closed or c.stream_error end,
    timeout)
  c:close()
  assert(ok, "the stream did not end in time; got so far:\n" .. (c.stream_body or ""))
  assert.is_nil(c.stream_error)
  assert.is_true(c.stream_ended, "the stream was closed without its last chunk:\n" .. c.stream_body
    .. "\nlog:\n" .. server:log())
  local got, bad = {}, {}
  local done
  for _, ev in ipairs(c:events()) do
    if ev.event == "count" then
      got[#got + 1] = ev
    elseif ev.event == "done" then
      done = ev
    elseif ev.event ~= nil or ev.data ~= nil then
      bad[#bad + 1] = (ev.event or "") .. ": " .. tostring(ev.data)
    end
  end
  assert.same({}, bad, "unexpected events in the stream")
  local ids = {}
  for i, ev in ipairs(got) do
    ids[i] = ev.id
    if ev.id ~= tostring(i) or ev.data ~= version .. " " .. i then
      error(("event #%d of the stream is id %s data %q, expected id %d data %q; ids: %s"):format(
        i, tostring(ev.id), tostring(ev.data), i, version .. " " .. i, table.concat(ids, ",")), 2)
    end
  end
  assert.equal(n, #got, "count events; ids: " .. table.concat(ids, ","))
  assert(done, "no done event")
  assert.equal(version, done.data)
end

-- Every log line is a "flosse: " line (no multi-line error dumps).
local function assert_one_line_log(server)
  for _, line in ipairs(e2e.lines(server:log())) do
    assert(line:sub(1, 8) == "flosse: ", "a log line that is not a flosse line: " .. line
      .. "\nthe whole log:\n" .. server:log())
  end
end

describe("#e2e hot reload", function()
  it("serves new requests with the new code while a running stream goes on with the old", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    assert.equal("v1", body(server, "/version/"))
    local c = open_count(server, 30, 0.1)

    set_version(dir, "v2")
    wait_reloads(server, 1, { c })
    local line = reloaded_lines(server)[1]
    local logged_dir, routes = line:match("^flosse: reloaded (.-) %((%d+) routes%)$")
    assert(logged_dir, "reload line not in the form \"flosse: reloaded DIR (N routes)\": " .. line)
    assert.truthy(logged_dir:find("app", 1, true), line)
    assert.equal("6", routes, line)
    assert.equal(0, #failed_lines(server))

    assert.equal("v2", body(server, "/version/"))
    assert.equal("v2", stream_version(server))
    -- the old stream is still live, still v1
    assert.is_falsy(c.stream_ended)
    finish_count(server, c, 30, "v1", WAIT)
    assert.is_true(server:alive())
  end)

  it("holds one live stream across ten reloads: ids 1..100, none lost or repeated", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    local c = open_count(server, 100, 0.2)   -- 20 s of events
    local at_first
    for k = 1, 10 do
      set_version(dir, "v" .. (k + 1))
      wait_reloads(server, k, { c })
      if k == 1 then at_first = count_events(c) end
      assert.equal("v" .. (k + 1), body(server, "/version/"))
      assert.equal("v" .. (k + 1), stream_version(server))
      assert.is_falsy(c.stream_ended, "the old stream ended during reload " .. k)
      assert.is_falsy(c.stream_closed, "the old stream was closed during reload " .. k)
    end
    c:pump()
    local at_last = count_events(c)
    assert.is_true(at_last < 100, "the stream ended before the tenth reload; make the reloads quicker")
    assert.is_true(at_last > at_first, "no events arrived on the old stream during the reloads")
    assert.equal(10, #reloaded_lines(server))
    assert.equal(0, #failed_lines(server))
    finish_count(server, c, 100, "v1", 20 + WAIT)
    assert.equal("v11", body(server, "/version/"))
    assert.is_true(server:alive())
  end)

  it("a syntax error keeps the previous app serving, logs FILE:LINE, and fixing it reloads", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    local c = open_count(server, 30, 0.1)
    local bad = views_with('local VERSION = = "v2"')
    local bad_line = line_of(bad, 'local VERSION = = "v2"')
    e2e.write_file(dir .. "/views.lua", bad)
    wait_failures(server, 1, { c })
    local line = failed_lines(server)[1]
    local file, lnum, msg = line:match("^" .. FAIL_PREFIX:gsub("%p", "%%%0") .. "(.-):(%d+): (.+)$")
    assert(file, "the failure line does not name FILE:LINE: MESSAGE: " .. line)
    assert.matches("views%.lua$", file, line)
    assert.equal(tostring(bad_line), lnum, line)
    assert.truthy(#msg > 0)
    assert_one_line_log(server)
    assert.equal(0, #reloaded_lines(server))
    -- the previous app still serves, old stream included
    assert.equal("v1", body(server, "/version/"))
    assert.equal("v1", stream_version(server))
    assert.equal("1", body(server, "/counter/"))
    assert.is_true(server:alive())

    set_version(dir, "v3")
    wait_reloads(server, 1, { c })
    assert.equal("v3", body(server, "/version/"))
    assert.equal("v3", stream_version(server))
    assert.equal(1, #failed_lines(server))
    finish_count(server, c, 30, "v1", WAIT)
  end)

  it("a runtime error while loading (in a module, in urls.lua) keeps the previous app", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    -- in views.lua, required by urls.lua
    local src = views_with('local VERSION = "v2"; error("raised while loading on purpose")')
    e2e.write_file(dir .. "/views.lua", src)
    wait_failures(server, 1)
    local line = failed_lines(server)[1]
    assert.matches("views%.lua:" .. line_of(src, "raised while loading") .. ": ", line)
    assert.truthy(line:find("raised while loading on purpose", 1, true), line)
    assert.equal("v1", body(server, "/version/"))

    -- in urls.lua itself (views.lua fixed in the same save)
    local urls = urls_with('  error("urls.lua raised on purpose"),')
    set_version(dir, "v2")
    e2e.write_file(dir .. "/urls.lua", urls)
    wait_failures(server, 2)
    line = failed_lines(server)[2]
    assert.matches("urls%.lua:" .. line_of(urls, "raised on purpose") .. ": ", line)
    assert.truthy(line:find("urls.lua raised on purpose", 1, true), line)
    assert.equal("v1", body(server, "/version/"))
    assert.equal(0, #reloaded_lines(server))
    assert_one_line_log(server)

    e2e.write_file(dir .. "/urls.lua", fixture("urls.lua"))
    wait_reloads(server, 1)
    assert.equal("v2", body(server, "/version/"))
  end)

  it("a urls.lua that returns something wrong, or a broken settings.lua, keeps the previous app", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    e2e.write_file(dir .. "/urls.lua", "-- not a list\nreturn 42\n")
    wait_failures(server, 1)
    assert.truthy(failed_lines(server)[1]:find("urls.lua", 1, true), failed_lines(server)[1])
    assert.equal("v1", body(server, "/version/"))

    e2e.write_file(dir .. "/urls.lua", "-- a list of something else\nreturn { 42 }\n")
    wait_failures(server, 2)
    assert.truthy(failed_lines(server)[2]:find("urls.lua", 1, true), failed_lines(server)[2])
    assert.equal("v1", body(server, "/version/"))

    -- settings.lua with a syntax error on line 3, urls.lua fixed in the same save
    e2e.write_file(dir .. "/urls.lua", fixture("urls.lua"))
    e2e.write_file(dir .. "/settings.lua", "-- broken on purpose\nreturn {\n  debug = = true,\n}\n")
    wait_failures(server, 3)
    assert.matches("settings%.lua:3: ", failed_lines(server)[3])
    assert.equal("v1", body(server, "/version/"))
    assert.equal(0, #reloaded_lines(server))
    assert_one_line_log(server)

    set_version(dir, "v2")
    e2e.write_file(dir .. "/settings.lua", fixture("settings.lua"))
    wait_reloads(server, 1)
    assert.equal("v2", body(server, "/version/"))
    assert.is_true(server:alive())
  end)

  it("a module deleted while still required keeps the previous app; one log line", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    os.remove(dir .. "/label.lua")   -- views.lua requires it
    wait_failures(server, 1)
    local line = failed_lines(server)[1]
    assert.truthy(line:find("label", 1, true), line)
    -- like Lua's own require: the file and line of the require call
    assert.matches("views%.lua:" .. line_of(fixture("views.lua"), 'require "label"') .. ": ", line)
    assert_one_line_log(server)
    assert.equal("v1", stream_version(server))
    e2e.write_file(dir .. "/label.lua", fixture("label.lua"))
    wait_reloads(server, 1)
    assert.equal("v1", stream_version(server))
  end)

  it("--log-level error: no reloaded line (info), but the failure line (error) is logged", function()
    local server, dir, cleanup = start({ args = { "--log-level", "error" } })
    finally(cleanup)
    set_version(dir, "v2")
    wait_serves(server, "/version/", "v2")
    assert.equal(0, #reloaded_lines(server), server:log())
    e2e.write_file(dir .. "/views.lua", views_with('local VERSION = = "v3"'))
    wait_failures(server, 1)
    assert.matches("views%.lua:%d+: ", failed_lines(server)[1])
    assert.equal("v2", body(server, "/version/"))
  end)

  it("a new route in a new module file is served; deleting it takes it away", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    assert.equal(404, e2e.get(server.port, "/extra/").status)
    e2e.write_file(dir .. "/extra.lua", 'return { view = function() return "extra v1" end }\n')
    e2e.write_file(dir .. "/urls.lua", urls_with('  path("extra/", require("extra").view),'))
    wait_serves(server, "/extra/", "extra v1")
    wait_reloads(server, 1)
    local last = reloaded_lines(server)[#reloaded_lines(server)]
    assert.matches("%(7 routes%)$", last)
    assert.equal("v1", body(server, "/version/"))

    -- an edit of the new file alone reloads it
    local before = #reloaded_lines(server)
    e2e.write_file(dir .. "/extra.lua", 'return { view = function() return "extra v2" end }\n')
    wait_reloads(server, before + 1)
    assert.equal("extra v2", body(server, "/extra/"))

    -- the route and its file go away
    e2e.write_file(dir .. "/urls.lua", fixture("urls.lua"))
    os.remove(dir .. "/extra.lua")
    wait_serves(server, "/extra/", 404)
    assert.equal(0, #failed_lines(server))
  end)

  it("a module in a subfolder created after start is served, and edits there reload", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    assert(os.execute("mkdir " .. e2e.shell_quote(dir .. "/pkg")))
    e2e.write_file(dir .. "/pkg/mod.lua", 'return { view = function() return "pkg v1" end }\n')
    e2e.write_file(dir .. "/urls.lua", urls_with('  path("pkg/", require("pkg.mod").view),'))
    wait_serves(server, "/pkg/", "pkg v1")

    local before = #reloaded_lines(server)
    e2e.write_file(dir .. "/pkg/mod.lua", 'return { view = function() return "pkg v2" end }\n')
    wait_reloads(server, before + 1)
    assert.equal("pkg v2", body(server, "/pkg/"))

    -- two levels made at once (mkdir -p), a package's init.lua in the inner one
    assert(os.execute("mkdir -p " .. e2e.shell_quote(dir .. "/deep/er")))
    e2e.write_file(dir .. "/deep/er/init.lua", 'return { view = function() return "deep v1" end }\n')
    e2e.write_file(dir .. "/urls.lua", urls_with('  path("pkg/", require("pkg.mod").view),\n'
      .. '  path("deep/", require("deep.er").view),'))
    wait_serves(server, "/deep/", "deep v1")
    before = #reloaded_lines(server)
    e2e.write_file(dir .. "/deep/er/init.lua", 'return { view = function() return "deep v2" end }\n')
    wait_reloads(server, before + 1)
    assert.equal("deep v2", body(server, "/deep/"))
    assert.equal("pkg v2", body(server, "/pkg/"))
    assert.equal(0, #failed_lines(server))
  end)

  it("several files saved within 0.1 s reload once; a burst of saves reloads once, after the last", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    local t0 = e2e.now()
    set_version(dir, "v2")
    e2e.write_file(dir .. "/label.lua", "-- edited\n" .. fixture("label.lua"))
    e2e.write_file(dir .. "/urls.lua", urls_with("  -- edited"))
    e2e.write_file(dir .. "/settings.lua", "-- edited\n" .. fixture("settings.lua"))
    assert.is_true(e2e.now() - t0 < 0.1, "the four saves took longer than 0.1 s")
    wait_reloads(server, 1)
    idle(1.0)
    assert.equal(1, #reloaded_lines(server), "reloads after one multi-file save:\n" .. server:log())
    assert.equal("v2", body(server, "/version/"))

    -- six saves 0.05 s apart: the quiet timer restarts on each
    local widest, last = 0, e2e.now()
    for k = 3, 8 do
      set_version(dir, "v" .. k)
      local t = e2e.now()
      widest = math.max(widest, t - last)
      last = t
      if k < 8 then e2e.sleep(0.05) end
    end
    wait_reloads(server, 2)
    idle(1.0)
    -- (a machine so loaded that two saves were 0.15 s apart may rightly reload twice)
    if widest < 0.15 then
      assert.equal(2, #reloaded_lines(server), "reloads after a burst of saves:\n" .. server:log())
    end
    assert.equal("v8", body(server, "/version/"))
  end)

  it("an editor's atomic save (a temp file renamed over views.lua) reloads", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    e2e.write_file(dir .. "/.views.lua.swp", views_with('local VERSION = "v2"'))
    assert(os.rename(dir .. "/.views.lua.swp", dir .. "/views.lua"))
    wait_reloads(server, 1)
    assert.equal("v2", body(server, "/version/"))
  end)

  it("SIGHUP reloads at once", function()
    local server, _, cleanup = start()
    finally(cleanup)
    assert.equal("1", body(server, "/counter/"))
    assert.equal("2", body(server, "/counter/"))
    server:signal("HUP")
    wait_reloads(server, 1)
    assert.truthy(server:log():find("flosse: SIGHUP: reloading", 1, true), server:log())
    assert.equal("1", body(server, "/counter/"))
    assert.is_true(server:alive())
    server:signal("HUP")
    wait_reloads(server, 2)
    assert.equal(2, #lines_with(server:log(), "flosse: SIGHUP: reloading"))
    assert.is_true(server:alive())
  end)

  it("--no-reload: an edit does not reload; SIGHUP still does", function()
    local server, dir, cleanup = start({ args = { "--no-reload" } })
    finally(cleanup)
    set_version(dir, "v2")
    idle(1.5)
    assert.equal("v1", body(server, "/version/"))
    assert.equal(0, #reloaded_lines(server), server:log())
    assert.equal(0, #failed_lines(server), server:log())
    server:signal("HUP")
    wait_reloads(server, 1)
    assert.equal("v2", body(server, "/version/"))
    assert.is_true(server:alive())
  end)

  it("--reload (the default, said explicitly) reloads on an edit", function()
    local server, dir, cleanup = start({ args = { "--reload" } })
    finally(cleanup)
    set_version(dir, "v2")
    wait_reloads(server, 1)
    assert.equal("v2", body(server, "/version/"))
  end)

  it("app modules and globals are fresh per reload; flosse's and installed modules are shared", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    assert.equal("1", body(server, "/counter/"))
    assert.equal("2", body(server, "/counter/"))
    assert.equal("3", body(server, "/counter/"))
    assert.equal("1", body(server, "/loads/"))
    local shared = body(server, "/shared/")
    for k = 1, 2 do
      -- an edit of a module that only views.lua requires
      e2e.write_file(dir .. "/label.lua", ("-- edit %d\n"):format(k) .. fixture("label.lua"))
      wait_reloads(server, k)
      assert.equal("1", body(server, "/counter/"), "the module-level counter after reload " .. k)
      assert.equal("2", body(server, "/counter/"))
      assert.equal("1", body(server, "/loads/"), "views.lua's global after reload " .. k)
      assert.equal(shared, body(server, "/shared/"), "flosse, flosse.urls, cjson after reload " .. k)
    end
  end)

  it("non-.lua files are served fresh and need no reload", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    assert.truthy(body(server, "/"):find("reload fixture page 1", 1, true))
    e2e.write_file(dir .. "/index.html", "<!doctype html>\n<p>reload fixture page 2</p>\n")
    assert.truthy(body(server, "/"):find("reload fixture page 2", 1, true))
    e2e.write_file(dir .. "/notes.txt", "not code\n")
    e2e.write_file(dir .. "/public/app.js", "console.log(2)\n")
    e2e.write_file(dir .. "/public/new.css", "p { color: red }\n")
    os.remove(dir .. "/notes.txt")
    idle(1.0)
    assert.equal(0, #reloaded_lines(server), server:log())
    assert.equal(0, #failed_lines(server), server:log())
  end)

  it("settings: retry takes effect for new requests after a reload; the port stays", function()
    local server, dir, cleanup = start()
    finally(cleanup)
    local before = e2e.parse_sse(body(server, "/sse/count/?n=1&every=0"))
    assert.is_nil(before[1].retry)
    e2e.write_file(dir .. "/settings.lua", "return { debug = true, retry = 1234, port = 1 }\n")
    wait_reloads(server, 1)
    local after = e2e.parse_sse(body(server, "/sse/count/?n=1&every=0"))
    assert.equal(1234, after[1].retry, "the first frame is not retry: 1234")
    assert.equal("v1", body(server, "/version/"))  -- still on the start-up port
  end)
end)
