-- End to end (issue 3): heartbeat comment frames ": heartbeat\n\n" on streams
-- on which nothing was written for `heartbeat` seconds; none on busy streams.
-- The fixture app is spec/fixtures/limits. Every wait is bounded; the only
-- timing in here is "within a generous deadline".
local e2e = require "e2e"

local APP = "spec/fixtures/limits"

-- Every frame is an event or exactly ": heartbeat" (no other comment, nothing torn).
local function only_events_and_heartbeats(c)
  for _, frame in ipairs(c:frames()) do
    if frame:sub(1, 1) == ":" then
      assert.equal(": heartbeat", frame)
    else
      assert.matches("^event: %a+\ndata: [^\n]*", frame)
    end
  end
end

describe("#e2e heartbeats with --heartbeat 1", function()
  local server = e2e.serve(setup, teardown, APP, { args = { "--heartbeat", "1" } })

  it("an idle (sleeping) stream gets ': heartbeat' frames, again and again", function()
    local c = e2e.open(server.port, "/sleepy/")
    local ok = e2e.pump({ c }, function() return c:heartbeats() >= 3 end, 20)
    c:close()
    assert.is_true(ok, "fewer than 3 heartbeats within 20 s; got " .. c:show())
    local frames = c:frames()
    assert.equal('event: hello\ndata: {"n":0}', frames[1])
    for i = 2, #frames do assert.equal(": heartbeat", frames[i]) end
    -- the exact bytes: a comment line and a blank line, right after the event
    assert.equal('event: hello\ndata: {"n":0}\n\n: heartbeat\n\n',
      c.stream_body:sub(1, #'event: hello\ndata: {"n":0}\n\n: heartbeat\n\n'))
    -- comments are not events
    assert.equal(1, #c:events())
    assert.is_false(c.stream_ended)
    assert.is_nil(c.stream_error)
  end)

  it("a busy stream (an event every 0.2 s) gets none while busy", function()
    local c = e2e.open(server.port, "/ticker/?every=0.2")
    local t0 = e2e.now()
    e2e.pump({ c }, nil, 3.5)
    c:close()
    assert.is_nil(c.stream_error)
    assert.equal(0, c:heartbeats(), "heartbeat on a busy stream: " .. c:show())
    local events = c:events()
    assert.is_true(#events >= 5, #events .. " events in " .. (e2e.now() - t0) .. " s: " .. c:show())
    for i, ev in ipairs(events) do
      assert.equal("tick", ev.event)
      assert.same({ i = i }, e2e.json_decode(ev.data))
    end
  end)

  it("heartbeats neither end nor corrupt the stream: the events after them are intact", function()
    -- hello, ~2.5 s of sleep, tick 1, ~2.5 s of sleep, tick 2, the end
    local c = e2e.open(server.port, "/sleepy/?sleep=2.5&n=2")
    local ok = e2e.pump({ c }, function() return c.stream_ended or c.stream_closed end, 30)
    assert.is_true(ok, "the stream did not end within 30 s: " .. c:show())
    assert.is_true(c.stream_ended, "closed without the last chunk: " .. c:show())
    assert.equal("0\r\n\r\n", c.stream_terminator)
    assert.is_nil(c.stream_error)
    assert.is_true(c:heartbeats() >= 2, "expected heartbeats during 5 s of sleep: " .. c:show())
    only_events_and_heartbeats(c)
    local events = c:events()
    assert.equal(3, #events, c:show())
    assert.equal("hello", events[1].event)
    for i = 1, 2 do
      local ev = events[i + 1]
      assert.equal("tick", ev.event)
      assert.equal("tick-" .. i, ev.id)
      assert.same({ i = i, text = "intact after a pause" }, e2e.json_decode(ev.data))
    end
    -- and the connection is still good for the next request
    assert(c:send(e2e.request_bytes("GET", "/plain/")))
    local resp = assert(c:read_response())
    c:close()
    assert.equal(200, resp.status)
    assert.equal("plain text\n", resp.body)
  end)

  it("every one of many idle streams gets its heartbeats", function()
    local clients = {}
    for i = 1, 40 do clients[i] = e2e.open(server.port, "/sleepy/") end
    local ok = e2e.pump(clients, function()
      for _, c in ipairs(clients) do
        if c:heartbeats() < 2 then return false end
      end
      return true
    end, 30)
    local short = {}
    for i, c in ipairs(clients) do
      if c:heartbeats() < 2 then short[#short + 1] = i .. ":" .. c:heartbeats() end
      only_events_and_heartbeats(c)
      c:close()
    end
    assert.is_true(ok, "streams with fewer than 2 heartbeats after 30 s: " .. table.concat(short, " "))
  end)

  it("an HTTP/1.0 stream (no chunks) gets the frame as it is", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("GET", "/sleepy/", nil, "1.0")))
    local head = assert(c:read_head())
    assert.equal(200, head.status)
    assert.is_nil(head.headers["transfer-encoding"])
    local got = c:read_until(": heartbeat\n\n", 15)
    c:close()
    assert.is_string(got, "no heartbeat within 15 s: " .. string.format("%q", c.buf))
    assert.equal('event: hello\ndata: {"n":0}\n\n: heartbeat\n\n', got)
  end)

  it("a view's heartbeat = 0 option turns them off for that view only", function()
    local off = e2e.open(server.port, "/hb0/")
    local on = e2e.open(server.port, "/sleepy/")
    local ok = e2e.pump({ off, on }, function() return on:heartbeats() >= 2 end, 20)
    off:close()
    on:close()
    assert.is_true(ok, "the control stream got fewer than 2 heartbeats: " .. on:show())
    assert.equal(0, off:heartbeats(), off:show())
    assert.is_false(off.stream_ended or off.stream_closed or false)
  end)
end)

describe("#e2e heartbeats off with --heartbeat 0", function()
  local server

  setup(function()
    -- the setting says 1 s: the flag beats it
    server = e2e.start(APP, { args = { "--heartbeat", "0" }, env = { FLOSSE_TEST_HEARTBEAT = "1" } })
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  it("an idle stream gets none (and stays open)", function()
    local c = e2e.open(server.port, "/sleepy/")
    e2e.pump({ c }, nil, 3.5)
    c:close()
    assert.equal(0, c:heartbeats(), c:show())
    assert.equal(1, #c:frames(), c:show())
    assert.is_false(c.stream_ended or c.stream_closed or false)
  end)
end)

describe("#e2e the heartbeat setting (settings.lua) without the flag", function()
  local server = e2e.serve(setup, teardown, APP, { env = { FLOSSE_TEST_HEARTBEAT = "1" } })

  it("heartbeat = 1 in settings gives an idle stream heartbeats", function()
    local c = e2e.open(server.port, "/sleepy/")
    local ok = e2e.pump({ c }, function() return c:heartbeats() >= 2 end, 20)
    c:close()
    assert.is_true(ok, "fewer than 2 heartbeats within 20 s: " .. c:show())
  end)
end)

describe("#e2e a view's heartbeat option beats --heartbeat 30", function()
  local server = e2e.serve(setup, teardown, APP, { args = { "--heartbeat", "30" } })

  it("sse_stream{heartbeat = 1} beats every second; an ordinary idle stream does not", function()
    local fast = e2e.open(server.port, "/hb1/")
    local plain = e2e.open(server.port, "/sleepy/")
    local ok = e2e.pump({ fast, plain }, function() return fast:heartbeats() >= 2 end, 20)
    fast:close()
    plain:close()
    assert.is_true(ok, "the heartbeat = 1 view got fewer than 2 heartbeats in 20 s: " .. fast:show())
    only_events_and_heartbeats(fast)
    -- well under 30 s have passed: the server-wide interval gave the other none
    assert.equal(0, plain:heartbeats(), plain:show())
  end)
end)
