-- End to end: concurrent sleeping streams, client disconnects, on_close.
local e2e = require "e2e"

-- Reads from several clients at once until each stream ended (or, with
-- `want`, has that many events); records the arrival time of every event.
-- Returns { [i] = { times = {...}, events = {...}, ended = bool } }.
local function read_all(clients, want, timeout)
  local deadline = e2e.now() + (timeout or 30)
  local state = {}
  for i = 1, #clients do state[i] = { times = {}, events = {}, ended = false, pending = "" } end
  local function done()
    for i = 1, #clients do
      if not state[i].ended and not (want and #state[i].events >= want) then
        return false
      end
    end
    return true
  end
  while not done() do
    assert(e2e.now() < deadline, "streams did not finish before the deadline")
    local socks = {}
    for i, c in ipairs(clients) do
      if not state[i].ended then socks[#socks + 1] = c.sock end
    end
    e2e.socket.select(socks, nil, 0.2)
    for i, c in ipairs(clients) do
      local s = state[i]
      if not s.ended then
        -- pull whatever is there without waiting, then take complete chunks
        c:fill(e2e.now())
        while true do
          local data, next_pos = e2e.next_chunk(c.buf)
          if data == nil then
            assert(next_pos == nil, "stream " .. i .. ": " .. tostring(next_pos))
            break
          end
          c.buf = c.buf:sub(next_pos)
          if data == "" then
            s.ended = true
            break
          end
          s.events[#s.events + 1] = data
          s.times[#s.times + 1] = e2e.now()
        end
        if c.eof then s.ended = true end
      end
    end
  end
  return state
end

describe("#e2e concurrent streams (fixture app)", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/app")

  it("two sleeping streams run concurrently: neither waits for the other", function()
    -- each: 5 events, 0.5 s apart (about 2 s in all)
    local a = e2e.connect(server.port)
    local b = e2e.connect(server.port)
    assert(a:send(e2e.request_bytes("GET", "/ticker/?n=5&every=0.5")))
    assert(b:send(e2e.request_bytes("GET", "/ticker/?n=5&every=0.5")))
    local ha, hb = assert(a:read_head()), assert(b:read_head())
    assert.equal(200, ha.status)
    assert.equal(200, hb.status)
    local st = read_all({ a, b }, nil, 40)
    a:close()
    b:close()
    for i = 1, 2 do
      assert.equal(5, #st[i].events)
      assert.is_true(st[i].ended)
      for n = 1, 5 do
        assert.equal('event: tick\ndata: {"i":' .. n .. '}\n\n', st[i].events[n])
      end
    end
    -- interleaved in time: each got its first event before the other's last
    assert.is_true(st[1].times[1] < st[2].times[5], "stream 1 waited for stream 2")
    assert.is_true(st[2].times[1] < st[1].times[5], "stream 2 waited for stream 1")
    -- and each stream's events really were spread out by its sleeps
    assert.is_true(st[1].times[5] - st[1].times[1] > 1.5)
    assert.is_true(st[2].times[5] - st[2].times[1] > 1.5)
  end)

  it("a long sleep in one stream does not delay another", function()
    local key = e2e.new_key("k")
    local idle, ih = e2e.open_stream(server.port, "/tracked/?mode=idle&key=" .. key)
    assert.equal(200, ih.status)
    assert(idle:read_event())  -- now sleeping for an hour
    local started = e2e.now()
    local resp = e2e.get(server.port, "/ticker/?n=3&every=0.1")
    assert.equal(200, resp.status)
    assert.equal(3, #resp.chunks)
    assert.is_true(e2e.now() - started < 5)
    idle:close()
  end)

  it("many streams at once all finish", function()
    local clients = {}
    for i = 1, 20 do
      clients[i] = e2e.connect(server.port)
      assert(clients[i]:send(e2e.request_bytes("GET", "/ticker/?n=3&every=0.2")))
    end
    for i = 1, 20 do assert.equal(200, assert(clients[i]:read_head()).status) end
    local st = read_all(clients, nil, 40)
    for i = 1, 20 do
      clients[i]:close()
      assert.equal(3, #st[i].events)
      assert.is_true(st[i].ended)
    end
  end)
end)

describe("#e2e client disconnect (fixture app)", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/app")

  it("a stream that ends normally runs on_close and its <close> variable once", function()
    local key = e2e.new_key("k")
    local resp = e2e.get(server.port, "/tracked/?n=2&key=" .. key)
    assert.equal(200, resp.status)
    assert.equal(2, #resp.chunks)
    local stats = e2e.wait_stats(server.port, key, function(s)
      return s.on_close == 1 and s.closed == 1
    end)
    assert.same({ started = 1, on_close = 1, closed = 1, finished = 1 }, stats)
  end)

  it("a client leaving a writing stream runs on_close and closes the coroutine", function()
    local key = e2e.new_key("k")
    local c, head = e2e.open_stream(server.port, "/tracked/?key=" .. key)
    assert.equal(200, head.status)
    assert(c:read_event())
    assert(c:read_event())
    c:close()
    local stats = e2e.wait_stats(server.port, key, function(s)
      return s.on_close == 1 and s.closed == 1
    end)
    assert.same({ started = 1, on_close = 1, closed = 1, finished = 0 }, stats)
    -- and exactly once: nothing more happens later
    e2e.sleep(0.5)
    assert.same(stats, e2e.wait_stats(server.port, key, function() return true end))
  end)

  it("a client leaving an idle (sleeping) stream is noticed too", function()
    local key = e2e.new_key("k")
    local c, head = e2e.open_stream(server.port, "/tracked/?mode=idle&key=" .. key)
    assert.equal(200, head.status)
    assert(c:read_event())  -- the view now sleeps for an hour
    c:close()
    local stats = e2e.wait_stats(server.port, key, function(s)
      return s.on_close == 1 and s.closed == 1
    end)
    assert.same({ started = 1, on_close = 1, closed = 1, finished = 0 }, stats)
  end)

  it("many clients leaving: every stream is closed once", function()
    local key = e2e.new_key("k")
    local clients = {}
    for i = 1, 10 do
      clients[i] = e2e.open_stream(server.port, "/tracked/?key=" .. key)
      assert(clients[i]:read_event())
    end
    for i = 1, 10 do clients[i]:close() end
    local stats = e2e.wait_stats(server.port, key, function(s)
      return s.on_close == 10 and s.closed == 10
    end)
    assert.same({ started = 10, on_close = 10, closed = 10, finished = 0 }, stats)
  end)

  it("stopping the server with streams open exits promptly", function()
    local s2 = e2e.start("spec/fixtures/app")
    local c = e2e.open_stream(s2.port, "/tracked/?mode=idle&key=shutdown")
    assert(c:read_event())
    local t0 = e2e.now()
    s2:signal("TERM")
    local deadline = t0 + 5
    while s2:alive() and e2e.now() < deadline do e2e.sleep(0.05) end
    local exited = not s2:alive()
    s2:cleanup()
    c:close()
    assert.is_true(exited, "the server did not exit within 5 s of SIGTERM")
  end)
end)

describe("#e2e the quiet stream (example app)", function()
  local server = e2e.serve(setup, teardown, "scripts")

  it("sends its first event at once, then nothing (it sleeps an hour)", function()
    local c, head = e2e.open_stream(server.port, "/sse/quiet/")
    assert.equal(200, head.status)
    local ev = assert(c:read_event())
    assert.equal("quiet", ev.event)
    assert.same({ n = 1 }, e2e.json_decode(ev.data))
    -- nothing but (possibly) heartbeat comments within the next second
    local ok = c:fill(e2e.now() + 1)
    if ok then
      local evs = e2e.parse_sse((c.buf:gsub("%x+\r\n", ""):gsub("\r\n", "")))
      assert.equal(0, #evs)
    end
    c:close()
    -- the server still serves others
    assert.equal(200, e2e.get(server.port, "/sse/styles/string/").status)
  end)
end)
