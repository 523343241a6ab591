-- End to end (issue 3): backpressure and the write timeout.
-- A view that yields 64 KiB events without end to a client that never reads
-- must not be resumed past the connection's high-water mark (256 KiB), so the
-- server's memory stays bounded; a client that stops reading is dropped after
-- --write-timeout; events that are ready together are written together and
-- arrive whole and in order. The fixture app is spec/fixtures/limits.
local e2e = require "e2e"

local APP = "spec/fixtures/limits"

-- The bound this spec states: while a client that never reads holds a flood
-- stream for 6 s, the server's resident set stays below its baseline plus
-- 64 MiB. (Without backpressure a 64 KiB-per-yield view queues gigabytes in
-- that time; with it, a few hundred KiB per connection.)
local RSS_MARGIN_KIB = 64 * 1024
-- The same bound counted in yields of the flood view: 64 MiB / 64 KiB. The
-- kernel's socket buffers (a few MiB on loopback) and the 256 KiB high-water
-- mark fit well inside it.
local MAX_FLOOD_YIELDS = RSS_MARGIN_KIB // 64

-- Sends a flood request on a connection that will never be read.
local function stuck_client(port, key)
  local c = e2e.connect(port)
  assert(c:send(e2e.request_bytes("GET", "/flood/?key=" .. key)))
  return c
end

describe("#e2e backpressure: a client that never reads", function()
  local server

  setup(function()
    server = e2e.start(APP)  -- default --write-timeout (30 s): the stuck client stays
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  it("the flood view is not resumed without bound, and another client's stream flows", function()
    local key = e2e.new_key("bp")
    local stuck = stuck_client(server.port, key)
    local other = e2e.open(server.port, "/ticker/?every=0.1")
    finally(function()
      stuck:close()
      other:close()
    end)
    assert.is_true(e2e.pump({ other }, nil, 3))
    local mid = #other:events()
    local s_mid = e2e.stats(server.port, key)
    assert.is_true(e2e.pump({ other }, nil, 3))
    local s_end = e2e.stats(server.port, key)
    assert.equal(1, s_end.started)
    assert.is_true(s_end.yields >= 2, "the flood view hardly ran: " .. e2e.json_encode(s_end))
    assert.is_true(s_end.yields < MAX_FLOOD_YIELDS, string.format(
      "the flood view was resumed %d times (%d KiB queued or sent) for a client that reads nothing;"
      .. " bound: %d", s_end.yields, s_end.yields * 64, MAX_FLOOD_YIELDS))
    -- it was not closed either (30 s write timeout)
    assert.equal(0, s_end.on_close)
    assert.is_true(s_mid.yields <= s_end.yields)
    -- the other stream kept arriving, in both halves of the 6 s
    local events = other:events()
    assert.is_nil(other.stream_error)
    assert.is_true(mid >= 5, "only " .. mid .. " events in the first 3 s")
    assert.is_true(#events - mid >= 5, "only " .. (#events - mid) .. " events in the next 3 s")
    e2e.ticks_in_order(events, true)
  end)

  it("the server's RSS stays below its baseline + 64 MiB", function()
    if e2e.WRAP ~= "" then
      pending("FLOSSE_TEST_WRAP is set: server.pid is the wrapper's process, its RSS is not the server's")
    end
    local base = assert(e2e.rss_kib(server.pid), "no VmRSS for pid " .. server.pid)
    local key = e2e.new_key("bp")
    local stuck = {}
    for i = 1, 4 do stuck[i] = stuck_client(server.port, key .. "_" .. i) end
    local other = e2e.open(server.port, "/ticker/?every=0.1")
    finally(function()
      for _, c in ipairs(stuck) do c:close() end
      other:close()
    end)
    local max_rss = base
    e2e.pump({ other }, function()
      local r = e2e.rss_kib(server.pid)
      if r and r > max_rss then max_rss = r end
      return false
    end, 6)
    assert.is_true(max_rss < base + RSS_MARGIN_KIB, string.format(
      "RSS rose from %d KiB to %d KiB (bound: baseline + %d KiB) with 4 clients that read nothing",
      base, max_rss, RSS_MARGIN_KIB))
    for i = 1, 4 do
      local s = e2e.stats(server.port, key .. "_" .. i)
      assert.equal(1, s.started)
      assert.is_true(s.yields < MAX_FLOOD_YIELDS, e2e.json_encode(s))
    end
    assert.is_true(#other:events() >= 10, "the other stream got " .. #other:events() .. " events in 6 s")
    e2e.ticks_in_order(other:events(), true)
  end)

  it("a fast reader of the same flood gets every event whole and in order", function()
    local key = e2e.new_key("bp")
    local c = e2e.open(server.port, "/flood/?size=1000&key=" .. key)
    local ok = e2e.pump({ c }, function() return #c.stream_body > 4 * 1024 * 1024 end, 60)
    c:close()
    assert.is_true(ok, "less than 4 MiB within 60 s: " .. #c.stream_body .. " bytes")
    assert.is_nil(c.stream_error)
    local blob = string.rep("x", 1000)
    local frames = c:frames()
    assert.is_true(#frames > 4000)
    for i, frame in ipairs(frames) do
      if frame ~= "event: blob\ndata: " .. blob .. "\nid: " .. i then
        error(string.format("frame %d is wrong: %q", i, frame:sub(1, 200)))
      end
    end
    -- the view is closed once the client leaves
    local s = e2e.wait_stats(server.port, key, function(st) return st.on_close == 1 and st.closed == 1 end)
    assert.equal(1, s.on_close)
    assert.equal(1, s.closed)
  end)

  it("1000 events yielded at once arrive complete and in order (coalesced writes)", function()
    local resp = e2e.get(server.port, "/burst/?n=1000")
    assert.equal(200, resp.status)
    local events = e2e.parse_sse(resp.body)
    assert.equal(1000, #events)
    for i, ev in ipairs(events) do
      assert.equal(tostring(i), ev.data)
      assert.is_nil(ev.event)
    end
    -- nothing but the events on the wire
    local expected = {}
    for i = 1, 1000 do expected[i] = "data: " .. i .. "\n\n" end
    assert.equal(table.concat(expected), resp.body)
  end)

  it("1000 events at once, on HTTP/1.0 (close-delimited)", function()
    local resp = e2e.get(server.port, "/burst/?n=1000", nil, { version = "1.0" })
    assert.equal(200, resp.status)
    local expected = {}
    for i = 1, 1000 do expected[i] = "data: " .. i .. "\n\n" end
    assert.equal(table.concat(expected), resp.body)
  end)
end)

describe("#e2e backpressure: --write-timeout 2", function()
  local server = e2e.serve(setup, teardown, APP, { args = { "--write-timeout", "2" } })

  it("drops a client that stopped reading: on_close runs, the log has its access line", function()
    local key = e2e.new_key("bp")
    local stuck = stuck_client(server.port, key)
    local other = e2e.open(server.port, "/ticker/?every=0.1")
    finally(function()
      stuck:close()
      other:close()
    end)
    local s
    e2e.pump({ other }, function()
      s = e2e.stats(server.port, key)
      return s.on_close == 1 and s.closed == 1
    end, 30)
    assert.same(1, s.on_close, "the stuck stream was not dropped within 30 s: " .. e2e.json_encode(s))
    assert.same(1, s.closed)
    assert.same(1, s.started)
    -- its access line: GET /flood/... 200 with the events queued before the drop
    local line
    local deadline = e2e.now() + e2e.TEST_TIMEOUT
    repeat
      for _, a in ipairs(e2e.access_lines(server:log())) do
        if a.method == "GET" and a.path:find("^/flood/") then line = a end
      end
      if not line then e2e.sleep(0.1) end
    until line or e2e.now() > deadline
    assert.is_table(line, "no access line for /flood/ in the log:\n" .. server:log())
    assert.equal(200, line.status)
    assert.equal("127.0.0.1", line.addr)
    assert.is_true(line.events >= 1, line.line)
    assert.is_true(line.bytes > 0, line.line)
    -- the reading client was not dropped: it is still receiving
    local before = #other:events()
    assert.is_true(e2e.pump({ other }, function() return #other:events() >= before + 5 end, 10),
      "the reading stream stopped after the stuck one was dropped")
    assert.is_false(other.stream_ended or other.stream_closed or false)
    e2e.ticks_in_order(other:events(), true)
    -- and new requests are served
    assert.equal(200, e2e.get(server.port, "/plain/").status)
  end)

  it("does not drop a client that reads slowly but steadily", function()
    local key = e2e.new_key("bp")
    local c = e2e.open(server.port, "/flood/?key=" .. key)
    finally(function() c:close() end)
    -- about 256 KiB every 0.25 s for 6 s: the socket accepts bytes all along
    local deadline = e2e.now() + 6
    while e2e.now() < deadline do
      c:pump(4)
      e2e.sleep(0.25)
    end
    local s = e2e.stats(server.port, key)
    assert.equal(0, s.on_close, "a steadily reading client was dropped: " .. e2e.json_encode(s))
    assert.is_nil(c.stream_error)
    assert.is_false(c.stream_ended or c.stream_closed or false)
    local blob = string.rep("x", 65536)
    local frames = c:frames()
    assert.is_true(#frames >= 4, #frames .. " frames")
    for i, frame in ipairs(frames) do
      if frame ~= "event: blob\ndata: " .. blob .. "\nid: " .. i then
        error(string.format("frame %d is wrong: %q", i, frame:sub(1, 100)))
      end
    end
  end)
end)
