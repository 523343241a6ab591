-- End to end (issue 3): graceful shutdown. SIGTERM (or SIGINT) stops
-- accepting, ends every stream cleanly (to-be-closed variables and on_close
-- run, the chunked terminator is sent), answers an unanswered request 503,
-- closes idle connections, waits up to --grace for buffers to drain and exits
-- 0; a second signal exits at once with status 1.
-- The fixture views record their life to $FLOSSE_TEST_RECORD (the server is
-- gone when the spec reads it); e2e.start_with_status gives the exit status.
local e2e = require "e2e"

local APP = "spec/fixtures/limits"

local function read_lines(path)
  local lines = {}
  local f = io.open(path, "r")
  if not f then return lines end
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  return lines
end

-- Starts a server recording to a fresh file; returns server, record path.
local function start(args)
  local record = os.tmpname()
  local server = e2e.start_with_status(APP, { args = args, env = { FLOSSE_TEST_RECORD = record } })
  return server, record
end

-- Waits (bounded) until the record file has every one of the lines.
local function wait_record(record, wanted, timeout)
  local deadline = e2e.now() + (timeout or e2e.TEST_TIMEOUT)
  while true do
    local have = {}
    for _, l in ipairs(read_lines(record)) do have[l] = true end
    local missing = {}
    for _, w in ipairs(wanted) do
      if not have[w] then missing[#missing + 1] = w end
    end
    if #missing == 0 then return true end
    if e2e.now() > deadline then return false, missing end
    e2e.sleep(0.05)
  end
end

-- Every name has exactly one "close N" (its to-be-closed variable) followed
-- by exactly one "on_close N".
local function assert_closed_once(record, names)
  local lines = read_lines(record)
  for _, name in ipairs(names) do
    local close_at, on_close_at, n_close, n_on_close = nil, nil, 0, 0
    for i, l in ipairs(lines) do
      if l == "close " .. name then close_at, n_close = i, n_close + 1 end
      if l == "on_close " .. name then on_close_at, n_on_close = i, n_on_close + 1 end
    end
    local all = table.concat(lines, "\n")
    assert.equal(1, n_close, "to-be-closed variable of " .. name .. " ran " .. n_close .. " times:\n" .. all)
    assert.equal(1, n_on_close, "on_close of " .. name .. " ran " .. n_on_close .. " times:\n" .. all)
    assert.is_true(close_at < on_close_at, "on_close ran before the to-be-closed variable:\n" .. all)
  end
end

local function last_line(log)
  local last
  for line in log:gmatch("[^\n]+") do last = line end
  return last
end

local function sig_masks(pid)
  local f = io.open("/proc/" .. pid .. "/status", "r")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return table.concat({ s:match("SigIgn:%s*(%x+)") or "?", s:match("SigCgt:%s*(%x+)") or "?" }, "/")
end

describe("#e2e graceful shutdown", function()
  local server, record

  after_each(function()
    if server then server:cleanup() end
    if record then os.remove(record) end
    server, record = nil, nil
  end)

  it("SIGTERM with sleeping and writing streams: every stream ends cleanly, exit 0", function()
    server, record = start()
    local clients, names = {}, {}
    for i = 1, 3 do
      names[#names + 1] = "sleep" .. i
      clients[#clients + 1] = e2e.open(server.port, "/record/?mode=sleep&name=sleep" .. i)
    end
    for i = 1, 3 do
      names[#names + 1] = "write" .. i
      clients[#clients + 1] = e2e.open(server.port, "/record/?mode=write&name=write" .. i)
    end
    finally(function() for _, c in ipairs(clients) do c:close() end end)
    -- every stream is running: its first event arrived; the writers are writing
    assert.is_true(e2e.pump(clients, function()
      for i, c in ipairs(clients) do
        if #c:events() < (i > 3 and 5 or 1) then return false end
      end
      return true
    end, 20))
    local started = {}
    for _, n in ipairs(names) do started[#started + 1] = "start " .. n end
    assert.is_true(wait_record(record, started))

    assert.is_true(server:signal("TERM"))
    local ok = e2e.pump(clients, function()
      for _, c in ipairs(clients) do
        if not (c.stream_ended or c.stream_closed) then return false end
      end
      return true
    end, 30)
    assert.is_true(ok, "not every stream ended within 30 s of SIGTERM")
    for i, c in ipairs(clients) do
      assert.is_true(c.stream_ended, names[i] .. ": closed without the chunked terminator")
      assert.equal("0\r\n\r\n", c.stream_terminator)
      assert.is_nil(c.stream_error)
      local events = c:events()
      assert.equal("hello", events[1].event)
      for j = 2, #events do  -- the writers' events are whole
        assert.equal("data", events[j].event)
        assert.equal(string.rep("w", 8192), events[j].data)
      end
    end
    local status = server:exit_status(30)
    assert.equal(0, status, "exit status " .. tostring(status) .. "; log:\n" .. server:log())
    assert_closed_once(record, names)
    -- and the connections are closed
    for _, c in ipairs(clients) do
      assert.is_true(c:wait_closed(10))
    end
    local log = server:log()
    assert.truthy(log:find("flosse: SIGTERM: shutting down", 1, true), log)
    assert.equal("flosse: stopped", last_line(log))
    -- one access line per stream
    local n = 0
    for _, a in ipairs(e2e.access_lines(log)) do
      if a.path and a.path:find("^/record/") then
        n = n + 1
        assert.equal(200, a.status)
      end
    end
    assert.equal(#names, n, log)
  end)

  it("an unanswered request gets 503; an idle kept-alive connection is closed", function()
    server, record = start()
    local stream = e2e.open(server.port, "/record/?mode=sleep&name=s")
    local waiting = e2e.connect(server.port)  -- its permission class sleeps an hour
    assert(waiting:send(e2e.request_bytes("GET", "/slow-perm/")))
    local idle = e2e.connect(server.port)
    assert(idle:send(e2e.request_bytes("GET", "/plain/")))
    assert.equal(200, assert(idle:read_response()).status)
    finally(function()
      stream:close()
      waiting:close()
      idle:close()
    end)
    assert.is_true(e2e.pump({ stream }, function() return #stream:events() >= 1 end, 10))
    e2e.sleep(0.3)  -- the slow permission is sleeping now
    assert.is_true(server:signal("TERM"))
    local resp, err = waiting:read_response({ timeout = 15 })
    assert.is_table(resp, "no response to the unanswered request: " .. tostring(err))
    assert.equal(503, resp.status)
    local closed, rest = idle:wait_closed(15)
    assert.is_true(closed, "the idle connection was not closed")
    assert.equal("", rest)
    assert.is_true(e2e.pump({ stream }, function() return stream.stream_ended or stream.stream_closed end, 15))
    assert.is_true(stream.stream_ended)
    local status = server:exit_status(30)
    assert.equal(0, status, "exit status " .. tostring(status) .. "; log:\n" .. server:log())
    assert_closed_once(record, { "s" })
  end)

  it("a client that never reads holds it for the grace period at most, then exit 0", function()
    server, record = start({ "--grace", "2" })
    local stuck = e2e.connect(server.port)
    -- one 16 MiB event: the kernel's socket buffers take a few MiB (4 MiB
    -- with Linux's default tcp_wmem), the rest waits in the server's output
    -- buffer and cannot drain
    assert(stuck:send(e2e.request_bytes("GET", "/record/?mode=huge&name=stuck")))
    finally(function() stuck:close() end)
    assert.is_true(wait_record(record, { "start stuck" }))
    e2e.sleep(1)
    assert.is_true(server:signal("TERM"))
    assert.is_string(server:wait_log("flosse: SIGTERM: shutting down"), server:log())
    -- it no longer accepts: a new request is not served
    local ok, c = pcall(e2e.connect, server.port)
    if ok then
      c:send(e2e.request_bytes("GET", "/plain/"))
      local resp = c:read_response({ timeout = 1 })
      c:close()
      assert.is_true(resp == nil or resp.status ~= 200, "served a new request after SIGTERM")
    end
    local status = server:exit_status(30)
    assert.equal(0, status, "exit status " .. tostring(status) .. "; log:\n" .. server:log())
    assert_closed_once(record, { "stuck" })
    assert.equal("flosse: stopped", last_line(server:log()))
  end)

  it("a second SIGTERM during the grace period exits at once with status 1", function()
    server, record = start({ "--grace", "60" })
    local stuck = e2e.connect(server.port)
    -- one 16 MiB event: the kernel's socket buffers take a few MiB (4 MiB
    -- with Linux's default tcp_wmem), the rest waits in the server's output
    -- buffer and cannot drain
    assert(stuck:send(e2e.request_bytes("GET", "/record/?mode=huge&name=stuck")))
    finally(function() stuck:close() end)
    assert.is_true(wait_record(record, { "start stuck" }))
    e2e.sleep(1)
    assert.is_true(server:signal("TERM"))
    assert.is_string(server:wait_log("flosse: SIGTERM: shutting down"), server:log())
    e2e.sleep(1)
    assert.is_true(server:alive(), "exited although a client holds undrained output (grace 60 s):\n"
      .. server:log())
    assert.is_true(server:signal("TERM"))
    local status = server:exit_status(15)
    assert.equal(1, status, "exit status " .. tostring(status) .. " within 15 s of the second SIGTERM;"
      .. " log:\n" .. server:log())
  end)

  it("SIGINT does the same as SIGTERM", function()
    server, record = start()
    local c = e2e.open(server.port, "/record/?mode=sleep&name=int")
    finally(function() c:close() end)
    assert.is_true(e2e.pump({ c }, function() return #c:events() >= 1 end, 10))
    local masks = sig_masks(server.pid)
    assert.is_true(server:signal("INT"))
    assert.is_true(e2e.pump({ c }, function() return c.stream_ended or c.stream_closed end, 15),
      "the stream did not end within 15 s of SIGINT (SigIgn/SigCgt before: " .. masks .. ")")
    assert.is_true(c.stream_ended)
    local status = server:exit_status(30)
    assert.equal(0, status, "exit status " .. tostring(status) .. "; log:\n" .. server:log())
    assert_closed_once(record, { "int" })
    assert.equal("flosse: stopped", last_line(server:log()))
  end)
end)
