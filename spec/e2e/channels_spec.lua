-- End to end (issue 5): channels on one worker. Publishing from Lua in every
-- yield style, subscribing to one or several channels, ids, history and
-- Last-Event-ID, dropping a subscriber that stops reading, the publish view's
-- statuses, fan-out to 1,000 subscribers, subscriptions released when a
-- stream ends, and the example app's channel routes.
--
-- The fixture app is spec/fixtures/channels (channel_history = 5,
-- channel_backlog = 50). Its subscribe view yields "event: ready" once it has
-- subscribed, so a spec knows when live events will reach it; the relay views
-- have no such event, so a spec publishes probes until one reports
-- delivered = 1 (an event delivered to nobody is not seen by a subscriber
-- without Last-Event-ID). Every wait is bounded; nothing here times anything.
local e2e = require "e2e"

local APP = "spec/fixtures/channels"

local uniq_n = 0
local function uniq(prefix)
  uniq_n = uniq_n + 1
  return ("%s-%d-%d"):format(prefix, uniq_n, math.random(1, 1e9))
end

-- One SSE frame (without its blank line), fields in the wire's order.
local function frame(f)
  local lines = {}
  if f.event then lines[#lines + 1] = "event: " .. f.event end
  lines[#lines + 1] = "data: " .. f.data
  if f.id then lines[#lines + 1] = "id: " .. f.id end
  if f.retry then lines[#lines + 1] = "retry: " .. f.retry end
  return table.concat(lines, "\n")
end

local gap_frame = e2e.gap_frame

-- Publishes from Lua through the fixture's POST /pub/<channel>/?style=...;
-- returns the decoded answer { id, delivered, ids, counts }.
local function pub(port, channel, style, query)
  local target = "/pub/" .. channel .. "/?style=" .. style .. (query and ("&" .. query) or "")
  local resp = e2e.post(port, target)
  assert.equal(200, resp.status, "POST " .. target .. ": " .. resp.status .. " " .. resp.body)
  local r = e2e.json_decode(resp.body)
  assert.equal("string", type(r.id), resp.body)
  return r
end

-- Pulls what has arrived on c (never waits): its complete SSE frames
-- (heartbeat comments left out) go to c.got, and their exact bytes to c.raw
-- (unless c.no_raw).
local function drain(c)
  c:pump(8)
  c.got = c.got or {}
  c.raw = c.raw or ""
  local body, pos = c.stream_body, 1
  while true do
    local s, e = body:find("\n\n", pos, true)
    if not s then break end
    local f = body:sub(pos, s - 1)
    if f ~= ": heartbeat" then
      c.got[#c.got + 1] = f
      if not c.no_raw then c.raw = c.raw .. f .. "\n\n" end
    end
    pos = e + 1
  end
  if pos > 1 then c.stream_body = body:sub(pos) end
end

-- Waits (bounded) until every client (one, or a list) has at least n frames
-- in c.got. Returns true, or false at the deadline.
local function wait_frames(clients, n, timeout)
  local list = clients.sock and { clients } or clients
  local deadline = e2e.now() + (timeout or e2e.TEST_TIMEOUT)
  while true do
    local done = true
    for _, c in ipairs(list) do
      drain(c)
      if #c.got < n then done = false end
    end
    if done then return true end
    if e2e.now() > deadline then return false end
    local socks = {}
    for _, c in ipairs(list) do
      if c.sock and not c.eof then socks[#socks + 1] = c.sock end
    end
    if #socks > 0 then e2e.socket.select(socks, nil, 0.05) else e2e.sleep(0.05) end
  end
end

-- Waits for exactly the expected frames (a list of frame strings): the
-- frames, and the bytes on the wire (each frame and a blank line, no more).
local function expect_frames(c, expected, what)
  local ok = wait_frames(c, #expected)
  assert(ok, (what or "frames") .. ": only " .. #c.got .. " of " .. #expected .. " arrived: "
    .. e2e.json_encode(c.got))
  assert.same(expected, c.got, what)
  if not c.no_raw then
    assert.equal(table.concat(expected, "\n\n") .. "\n\n", c.raw, what)
  end
end

-- Opens the fixture's subscribe view on the channels and waits for its
-- "ready" event; afterwards c.got and c.raw hold only the channels' events.
-- opts: key (for the stats view), last_event_id, query (more parameters),
-- no_raw.
local function subscribe(port, channels, opts)
  opts = opts or {}
  local list = table.concat(channels, ",")
  local target = "/sub/?channels=" .. list .. "&key=" .. (opts.key or "none")
    .. (opts.query and ("&" .. opts.query) or "")
  local headers = {}
  if opts.last_event_id then headers[1] = "Last-Event-ID: " .. opts.last_event_id end
  local c, head = e2e.open(port, target, headers)
  assert.equal("text/event-stream; charset=utf-8", head.headers["content-type"])
  c.no_raw = opts.no_raw
  assert(wait_frames(c, 1), "no ready event from " .. target)
  local ready = "event: ready\ndata: " .. list
  assert.equal(ready, c.got[1])
  table.remove(c.got, 1)
  if not c.no_raw then
    assert.equal(ready .. "\n\n", c.raw:sub(1, #ready + 2))
    c.raw = c.raw:sub(#ready + 3)
  end
  return c
end

-- Opens a stream on another view (a relay); c.got and c.raw as above.
local function open_relay(port, target, headers)
  local c, head = e2e.open(port, target, headers or {})
  assert.equal("text/event-stream; charset=utf-8", head.headers["content-type"])
  c.got, c.raw = {}, ""
  return c
end

-- Publishes probe events (style "named", event "probe") to a channel until
-- one reports `count` deliveries (bounded): a relay stream has subscribed.
-- Returns that probe's frame.
local function probe_until(port, channel, count)
  local deadline = e2e.now() + e2e.TEST_TIMEOUT
  while true do
    local r = pub(port, channel, "named", "event=probe&data=p")
    if r.delivered == count then return frame{ event = "probe", data = "p", id = r.id } end
    assert(r.delivered < count, "probe delivered to " .. r.delivered .. ", expected " .. count)
    assert(e2e.now() < deadline, "the relay streams did not subscribe before the deadline")
    e2e.sleep(0.05)
  end
end

local function is_seq(id)
  return type(id) == "string" and id:match("^%d+$") ~= nil
end

------------------------------------------------------------------------------

describe("#e2e channels: publish and subscribe (fixture app)", function()
  local server, port

  setup(function()
    server = e2e.start(APP)
    port = server.port
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  it("every yield style published from Lua arrives as framed at publish time, with its id", function()
    local ch = uniq("styles")
    local c = subscribe(port, { ch })
    local custom, fields_id = uniq("evt"), uniq("f")
    local expected = {}
    local function check(r, want_id)
      assert.equal(1, r.delivered)
      if want_id then assert.equal(want_id, r.id) else assert.is_true(is_seq(r.id), r.id) end
      return r.id
    end
    local id
    id = check(pub(port, ch, "string"))
    expected[#expected + 1] = "data: hello\nid: " .. id
    id = check(pub(port, ch, "event-data"))
    expected[#expected + 1] = 'event: update\ndata: {"count":1}\nid: ' .. id
    check(pub(port, ch, "event-data-id", "id=" .. custom), custom)
    expected[#expected + 1] = 'event: update\ndata: {"count":1}\nid: ' .. custom
    id = check(pub(port, ch, "fields"))
    expected[#expected + 1] = "event: e\ndata: x\nid: " .. id .. "\nretry: 5000"
    check(pub(port, ch, "fields", "id=" .. fields_id), fields_id)
    expected[#expected + 1] = "event: e\ndata: x\nid: " .. fields_id .. "\nretry: 5000"
    id = check(pub(port, ch, "table"))
    expected[#expected + 1] = 'data: {"foo":"bar"}\nid: ' .. id
    id = check(pub(port, ch, "sseevent"))
    expected[#expected + 1] = "event: e\ndata: x\nid: " .. id
    id = check(pub(port, ch, "multiline"))
    expected[#expected + 1] = "data: a\ndata: b\ndata: c\ndata: d\nid: " .. id
    id = check(pub(port, ch, "number"))
    expected[#expected + 1] = "data: 42\nid: " .. id
    expect_frames(c, expected, "yield styles")
    c:close()
  end)

  it("assigns increasing ids across channels; a channel nobody hears reports 0 deliveries", function()
    local a, b = uniq("ids-a"), uniq("ids-b")
    local last = 0
    for _, ch in ipairs({ a, b, a, a, b }) do
      local r = pub(port, ch, "string")
      assert.equal(0, r.delivered)
      assert.is_true(is_seq(r.id), r.id)
      assert.is_true(tonumber(r.id) > last, r.id .. " after " .. last)
      last = tonumber(r.id)
    end
  end)

  it("refuses values it cannot encode (nil, errmsg) and sends nothing", function()
    local ch = uniq("bad")
    local c = subscribe(port, { ch })
    for _, style in ipairs({ "bad_event", "bad_id", "nothing", "bad_function" }) do
      local resp = e2e.post(port, "/pub/" .. ch .. "/?style=" .. style)
      assert.equal(400, resp.status, style .. ": " .. resp.status .. " " .. resp.body)
      local err = e2e.json_decode(resp.body).error
      assert.is_string(err, style)
      assert.is_true(#err > 0, style)
    end
    local r = pub(port, ch, "named", "event=after&data=ok")
    assert.equal(1, r.delivered)
    expect_frames(c, { frame{ event = "after", data = "ok", id = r.id } })
    c:close()
  end)

  it("a subscriber can read event.channel, event.id, event.event and event.data", function()
    local ch = uniq("inspect")
    local c = subscribe(port, { ch }, { query = "inspect=1" })
    local r1 = pub(port, ch, "event-data")
    local r2 = pub(port, ch, "string")
    assert(wait_frames(c, 2), "inspect events missing: " .. e2e.json_encode(c.got))
    local function inspected(f)
      assert.equal("inspect", f:match("^event: (%w+)\n"), f)
      return e2e.json_decode(f:match("\ndata: (.*)$"))
    end
    assert.same({ channel = ch, id = r1.id, event = "update", data = '{"count":1}' }, inspected(c.got[1]))
    assert.same({ channel = ch, id = r2.id, data = "hello" }, inspected(c.got[2]))
    c:close()
  end)

  it("200 events on one stream arrive in publish order, with increasing ids", function()
    local ch = uniq("order")
    local c = subscribe(port, { ch })
    local expected, last = {}, 0
    for i = 1, 200 do
      local r = pub(port, ch, "named", "data=" .. i)
      assert.equal(1, r.delivered)
      assert.is_true(tonumber(r.id) > last, r.id)
      last = tonumber(r.id)
      expected[i] = frame{ event = "msg", data = tostring(i), id = r.id }
    end
    expect_frames(c, expected, "200 events")
    c:close()
  end)

  it("one stream subscribed to two channels gets both, in publish order", function()
    local a, b, other = uniq("two-a"), uniq("two-b"), uniq("two-other")
    local c = subscribe(port, { a, b })
    local expected = {}
    local plan = { a, b, b, a, other, b, a, a, other, b, a, b }
    for i, ch in ipairs(plan) do
      local name = ch == a and "A" or ch == b and "B" or "O"
      local r = pub(port, ch, "named", "event=" .. name .. "&data=" .. i)
      assert.equal(ch == other and 0 or 1, r.delivered)
      if ch ~= other then
        expected[#expected + 1] = frame{ event = name, data = tostring(i), id = r.id }
      end
    end
    expect_frames(c, expected, "two channels")
    c:close()
  end)

  it("a relay view relays the channel named in the path", function()
    local ch = uniq("relay")
    local c = open_relay(port, "/relay/" .. ch .. "/")
    local probe = probe_until(port, ch, 1)
    local r = pub(port, ch, "event-data")
    expect_frames(c, { probe, 'event: update\ndata: {"count":1}\nid: ' .. r.id })
    c:close()
  end)

  it("a relay view with a fixed channel and retry sends the retry frame first", function()
    local c = open_relay(port, "/relay-fixed/")
    assert(wait_frames(c, 1), "no retry frame")
    assert.equal("retry: 2500", c.got[1])
    c.got, c.raw = {}, ""
    local probe = probe_until(port, "fixed", 1)
    local r = pub(port, "fixed", "string")
    expect_frames(c, { probe, "data: hello\nid: " .. r.id })
    c:close()
  end)
end)

------------------------------------------------------------------------------

describe("#e2e channels: history and Last-Event-ID (channel_history = 5)", function()
  local server, port

  setup(function()
    server = e2e.start(APP)
    port = server.port
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  -- Publishes event i (style "named", data = the label) and returns its frame.
  local function publish(ch, label)
    local r = pub(port, ch, "named", "data=" .. label)
    return frame{ event = "msg", data = label, id = r.id }, r
  end

  local function id_of(f) return f:match("\nid: ([^\n]+)") end

  it("a reconnect with an id still in history gets exactly the missed events, then live ones", function()
    local ch = uniq("resume")
    local s1 = subscribe(port, { ch })
    local e1, e2 = publish(ch, "e1"), publish(ch, "e2")
    expect_frames(s1, { e1, e2 })
    s1:close()
    local e3, e4, e5 = publish(ch, "e3"), publish(ch, "e4"), publish(ch, "e5")  -- missed
    local s2 = subscribe(port, { ch }, { last_event_id = id_of(e2) })
    expect_frames(s2, { e3, e4, e5 }, "replay")
    local e6, r6 = publish(ch, "e6")
    assert.equal(1, r6.delivered)
    local e7 = publish(ch, "e7")
    expect_frames(s2, { e3, e4, e5, e6, e7 }, "replay then live")
    s2:close()
  end)

  it("the same with a custom id (evt-...) still in history", function()
    local ch = uniq("resume-custom")
    local custom = uniq("evt")
    local r = pub(port, ch, "event-data-id", "id=" .. custom)
    assert.equal(custom, r.id)
    local e2, e3 = publish(ch, "e2"), publish(ch, "e3")
    local s = subscribe(port, { ch }, { last_event_id = custom })
    expect_frames(s, { e2, e3 }, "replay after a custom id")
    local e4 = publish(ch, "e4")
    expect_frames(s, { e2, e3, e4 })
    s:close()
  end)

  it("across two channels: the missed events of both, in publish order, then live ones", function()
    local a, b = uniq("resume-a"), uniq("resume-b")
    local s1 = subscribe(port, { a, b })
    local a1, b1 = publish(a, "a1"), publish(b, "b1")
    expect_frames(s1, { a1, b1 })
    s1:close()
    local b2, a2, b3 = publish(b, "b2"), publish(a, "a2"), publish(b, "b3")  -- missed
    -- the id of the last event seen (on b): b2, a2, b3
    local s2 = subscribe(port, { a, b }, { last_event_id = id_of(b1) })
    expect_frames(s2, { b2, a2, b3 }, "replay after b1")
    -- the id of an earlier event (on a): everything after it on both channels
    local s3 = subscribe(port, { a, b }, { last_event_id = id_of(a1) })
    expect_frames(s3, { b1, b2, a2, b3 }, "replay after a1")
    local a3 = publish(a, "a3")
    local b4 = publish(b, "b4")
    expect_frames(s2, { b2, a2, b3, a3, b4 }, "s2 live")
    expect_frames(s3, { b1, b2, a2, b3, a3, b4 }, "s3 live")
    s2:close()
    s3:close()
  end)

  it("an unknown non-numeric id is told as a gap, then gets only live events (none: only live)", function()
    local ch = uniq("unknown")
    for i = 1, 3 do publish(ch, "old" .. i) end
    local unknown = "no-such-id-" .. uniq("x")
    local s1 = subscribe(port, { ch }, { last_event_id = unknown })
    local s2 = subscribe(port, { ch })
    local live, r = publish(ch, "live")
    assert.equal(2, r.delivered)
    local live2 = publish(ch, "live2")
    expect_frames(s1, { gap_frame(ch, unknown), live, live2 }, "unknown id")
    expect_frames(s2, { live, live2 }, "no id")
    s1:close()
    s2:close()
  end)

  it("a numeric id older than the history: a gap notice, what is still in history, then live ones", function()
    local ch = uniq("old")
    local f = {}
    for i = 1, 8 do f[i] = publish(ch, "e" .. i) end  -- history keeps e4..e8
    local s1 = subscribe(port, { ch }, { last_event_id = id_of(f[1]) })
    local s2 = subscribe(port, { ch }, { last_event_id = id_of(f[3]) })  -- the last one that fell out: no gap
    local kept = { f[4], f[5], f[6], f[7], f[8] }
    local told = { gap_frame(ch, id_of(f[1])), f[4], f[5], f[6], f[7], f[8] }
    expect_frames(s1, told, "id of e1")
    expect_frames(s2, kept, "id of e3")
    local e9 = publish(ch, "e9")
    kept[#kept + 1] = e9
    told[#told + 1] = e9
    expect_frames(s1, told, "then live")
    expect_frames(s2, kept, "then live")
    s1:close()
    s2:close()
  end)

  it("a relay view honours Last-Event-ID", function()
    local ch = uniq("relay-resume")
    local e1, e2, e3 = publish(ch, "e1"), publish(ch, "e2"), publish(ch, "e3")
    local c = open_relay(port, "/relay/" .. ch .. "/", { "Last-Event-ID: " .. id_of(e1) })
    expect_frames(c, { e2, e3 }, "relay replay")
    local e4 = publish(ch, "e4")
    expect_frames(c, { e2, e3, e4 }, "relay live")
    c:close()
  end)
end)

------------------------------------------------------------------------------

describe("#e2e channels: the publish view (fixture app, open to all)", function()
  local server, port

  setup(function()
    server = e2e.start(APP)
    port = server.port
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  local JSON = { "Content-Type: application/json" }
  local TEXT = { "Content-Type: text/plain" }

  local function answer(resp, delivered)
    assert.equal(200, resp.status, resp.body)
    assert.equal("application/json", resp.headers["content-type"])
    local r = e2e.json_decode(resp.body)
    assert.is_string(r.id, resp.body)
    assert.same({ id = r.id, delivered = delivered }, r)
    return r.id
  end

  it("a JSON body publishes its fields; 200 with {id, delivered}", function()
    local ch = uniq("pv-json")
    local c = subscribe(port, { ch })
    local custom = uniq("j")
    local target = "/publish/" .. ch .. "/"
    local id1 = answer(e2e.post(port, target,
      '{"event":"greet","data":{"n":1},"id":"' .. custom .. '","retry":3000}', JSON), 1)
    assert.equal(custom, id1)
    local id2 = answer(e2e.post(port, target, '{"data":"plain string"}', JSON), 1)
    assert.is_true(is_seq(id2), id2)
    local id3 = answer(e2e.post(port, target, '{"data":42}', JSON), 1)
    local id4 = answer(e2e.post(port, target, '{"data":[1,2]}', JSON), 1)
    local id5 = answer(e2e.post(port, target, '{"data":"two\\nlines","event":"multi"}', JSON), 1)
    expect_frames(c, {
      'event: greet\ndata: {"n":1}\nid: ' .. custom .. "\nretry: 3000",
      "data: plain string\nid: " .. id2,
      "data: 42\nid: " .. id3,
      "data: [1,2]\nid: " .. id4,
      "event: multi\ndata: two\ndata: lines\nid: " .. id5,
    })
    c:close()
  end)

  it("a text/plain body is the data; 200 with {id, delivered}", function()
    local ch = uniq("pv-text")
    local c = subscribe(port, { ch })
    local id1 = answer(e2e.post(port, "/publish/" .. ch .. "/", "hello", TEXT), 1)
    local id2 = answer(e2e.post(port, "/publish/" .. ch .. "/", "hello\nworld", TEXT), 1)
    -- a JSON-looking body sent as text is text
    local id3 = answer(e2e.post(port, "/publish/" .. ch .. "/", '{"data":1}', TEXT), 1)
    expect_frames(c, {
      "data: hello\nid: " .. id1,
      "data: hello\ndata: world\nid: " .. id2,
      'data: {"data":1}\nid: ' .. id3,
    })
    -- nobody listening: delivered 0
    answer(e2e.post(port, "/publish/" .. uniq("nobody") .. "/", "x", TEXT), 0)
    c:close()
  end)

  it("a publish view with a fixed channel publishes there", function()
    local c = open_relay(port, "/relay-fixed/")
    assert(wait_frames(c, 1), "no retry frame")
    c.got, c.raw = {}, ""
    local probe = probe_until(port, "fixed", 1)
    local id = answer(e2e.post(port, "/publish-fixed/", "to fixed", TEXT), 1)
    expect_frames(c, { probe, "data: to fixed\nid: " .. id })
    c:close()
  end)

  it("GET (or PUT) gets 405 with Allow: POST", function()
    local resp = e2e.get(port, "/publish/" .. uniq("m") .. "/")
    assert.equal(405, resp.status)
    assert.equal("POST", resp.headers["allow"])
    local put = e2e.request(port, "PUT", "/publish/" .. uniq("m") .. "/", { "Content-Length: 0" })
    assert.equal(405, put.status)
    assert.equal("POST", put.headers["allow"])
  end)

  it("400 with a text reason for bad JSON, no data, or a field that cannot be encoded; nothing sent",
    function()
      local ch = uniq("pv-bad")
      local c = subscribe(port, { ch })
      local bodies = {
        "{not json",
        '{"event":"x"}',
        "[1,2]",
        '{"data":"x","event":"a\\nb"}',
        '{"data":"x","id":"1\\n2"}',
      }
      for _, body in ipairs(bodies) do
        local resp = e2e.post(port, "/publish/" .. ch .. "/", body, JSON)
        assert.equal(400, resp.status, body .. ": " .. resp.status .. " " .. resp.body)
        assert.truthy((resp.headers["content-type"] or ""):find("^text/plain"), body)
        assert.is_true(#resp.body > 0, body)
      end
      local id = answer(e2e.post(port, "/publish/" .. ch .. "/", '{"data":"good"}', JSON), 1)
      expect_frames(c, { "data: good\nid: " .. id })
      c:close()
    end)

  it("413 for a body over --max-body-bytes", function()
    local s = e2e.start(APP, { args = { "--max-body-bytes", "64" } })
    local ok, err = pcall(function()
      local ch = uniq("pv-big")
      local resp = e2e.post(s.port, "/publish/" .. ch .. "/", string.rep("x", 200), TEXT)
      assert.equal(413, resp.status)
      local small = e2e.post(s.port, "/publish/" .. ch .. "/", string.rep("x", 60), TEXT)
      assert.equal(200, small.status, small.body)
    end)
    s:cleanup()
    assert(ok, err)
  end)
end)

------------------------------------------------------------------------------

describe("#e2e channels: subscriptions end with their stream", function()
  local server, port

  setup(function()
    server = e2e.start(APP)
    port = server.port
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  it("after 50 of 60 subscribers disconnect, a publish reports delivered = 10", function()
    local ch, key = uniq("release"), uniq("release")
    local clients = {}
    for i = 1, 60 do clients[i] = subscribe(port, { ch }, { key = key }) end
    assert.equal(60, pub(port, ch, "string").delivered)
    for i = 1, 50 do clients[i]:close() end
    local s = e2e.wait_stats(port, key, function(x) return x.on_close >= 50 end, nil, 0.05)
    assert.equal(50, s.on_close)
    assert.equal(10, pub(port, ch, "string").delivered)
    assert(wait_frames({ table.unpack(clients, 51, 60) }, 2), "the remaining subscribers missed events")
    for i = 51, 60 do clients[i]:close() end
    e2e.wait_stats(port, key, function(x) return x.on_close >= 60 end, nil, 0.05)
    assert.equal(0, pub(port, ch, "string").delivered)
  end)

  it("a view that returns or raises releases its subscription too", function()
    local ch, key = uniq("release-end"), uniq("release-end")
    local ends = subscribe(port, { ch }, { key = key, query = "max=1" })
    local raises = subscribe(port, { ch }, { key = key, query = "raise=1" })
    local stays = subscribe(port, { ch }, { key = uniq("stays") })
    assert.equal(3, pub(port, ch, "string").delivered)
    local s = e2e.wait_stats(port, key, function(x) return x.on_close >= 2 end, nil, 0.05)
    assert.equal(2, s.on_close)
    assert.equal(1, s.finished)  -- the one with max=1; the other raised
    assert.equal(1, pub(port, ch, "string").delivered)
    assert(wait_frames(stays, 2), "the remaining subscriber missed events")
    ends:close()
    raises:close()
    stays:close()
  end)
end)

------------------------------------------------------------------------------

describe("#e2e channels: a subscriber that stops reading", function()
  local server, port

  setup(function()
    -- a long write timeout, so that only the backlog can drop the stuck client
    server = e2e.start(APP, { args = { "--write-timeout", "600" } })
    port = server.port
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  it("is dropped (closed, its on_close run, logged) while two others get every event", function()
    local ch = uniq("slow")
    local stuck_key, good_key = uniq("stuck"), uniq("good")
    local SIZE = 10240
    -- far beyond what the kernel's socket buffers, the connection's
    -- high-water mark (256 KiB) and the backlog (50 events) can hold
    local MAX_EVENTS = 3000
    local stuck = subscribe(port, { ch }, { key = stuck_key })  -- reads "ready", then nothing
    local readers = {
      subscribe(port, { ch }, { key = good_key, no_raw = true }),
      subscribe(port, { ch }, { key = good_key, no_raw = true }),
    }
    local ids = {}
    local dropped_at, rounds_after = nil, 0
    -- Replaces each new frame of a reader by its id once its bytes are checked.
    local function check_new(c)
      c.checked = c.checked or 0
      for i = c.checked + 1, #c.got do
        local data, id = c.got[i]:match("^event: big\ndata: (x+)\nid: (%d+)$")
        assert(data and #data == SIZE, "reader frame " .. i .. " malformed: " .. c.got[i]:sub(1, 80))
        c.got[i] = id
      end
      c.checked = #c.got
    end
    while rounds_after < 3 do
      assert(#ids < MAX_EVENTS, "the stuck subscriber was not dropped after " .. #ids
        .. " events of " .. SIZE .. " bytes")
      local r = pub(port, ch, "big", "size=" .. SIZE .. "&n=10")
      for i, id in ipairs(r.ids) do
        ids[#ids + 1] = id
        if dropped_at then
          assert.equal(2, r.counts[i], "delivered after the drop")
        end
      end
      assert(wait_frames(readers, #ids, 20), "a reader did not get every event: "
        .. #readers[1].got .. ", " .. #readers[2].got .. " of " .. #ids)
      for _, c in ipairs(readers) do check_new(c) end
      if dropped_at then
        rounds_after = rounds_after + 1
      elseif e2e.stats(port, stuck_key).on_close == 1 then
        dropped_at = #ids
      end
    end
    for n, c in ipairs(readers) do
      assert.equal(#ids, #c.got, "reader " .. n)
      assert.same(ids, c.got, "reader " .. n .. ": every event, in order")
    end
    local good = e2e.stats(port, good_key)
    assert.equal(0, good.on_close)
    -- the stuck client's connection was closed (after what the kernel held)
    local _, how = stuck:read_until_close(30)
    assert.are_not.equal("timeout", how, "the stuck subscriber's connection is still open")
    stuck:close()
    -- the access log has the dropped stream
    local log = server:wait_log(stuck_key) or server:log()
    local logged = false
    for _, a in ipairs(e2e.access_lines(log)) do
      if a.path and a.path:find(stuck_key, 1, true) then logged = true end
    end
    assert.is_true(logged, "no access line for the dropped stream in:\n" .. log:sub(-3000))
    for _, c in ipairs(readers) do c:close() end
  end)

  -- relay_view moves messages to the connection in C (no Lua per event):
  -- the same backlog rule must hold there.
  it("on a relay view is dropped and closed while two relay readers get every event, in order", function()
    local ch = uniq("relayslow")
    local SIZE, MAX_EVENTS = 10240, 3000
    local target = "/relay/" .. ch .. "/"
    local stuck = open_relay(port, target)
    local readers = { open_relay(port, target), open_relay(port, target) }
    for _, c in ipairs(readers) do c.no_raw = true end
    local probe = probe_until(port, ch, 3)
    for _, c in ipairs(readers) do
      local deadline = e2e.now() + e2e.TEST_TIMEOUT
      while c.got[#c.got] ~= probe do
        assert(e2e.now() < deadline, "a relay reader did not get the probe")
        wait_frames(c, #c.got + 1, 1)
      end
      c.got = {}
    end
    local ids, dropped_at, rounds_after = {}, nil, 0
    while rounds_after < 3 do
      assert(#ids < MAX_EVENTS, "the stuck relay subscriber was not dropped after " .. #ids .. " events")
      local r = pub(port, ch, "big", "size=" .. SIZE .. "&n=10")
      for i, id in ipairs(r.ids) do
        ids[#ids + 1] = id
        if dropped_at then assert.equal(2, r.counts[i], "delivered after the drop") end
        if not dropped_at and r.counts[i] == 2 then dropped_at = #ids end
      end
      assert(wait_frames(readers, #ids, 20), "a relay reader did not get every event: "
        .. #readers[1].got .. ", " .. #readers[2].got .. " of " .. #ids)
      if dropped_at then rounds_after = rounds_after + 1 end
    end
    for n, c in ipairs(readers) do
      local got = {}
      for i, f in ipairs(c.got) do
        local data, id = f:match("^event: big\ndata: (x+)\nid: (%d+)$")
        assert(data and #data == SIZE, "reader " .. n .. " frame " .. i .. " malformed: " .. f:sub(1, 80))
        got[i] = id
      end
      assert.same(ids, got, "reader " .. n .. ": every event, in order")
    end
    local _, how = stuck:read_until_close(30)
    assert.are_not.equal("timeout", how, "the stuck relay subscriber's connection is still open")
    stuck:close()
    for _, c in ipairs(readers) do c:close() end
  end)
end)

------------------------------------------------------------------------------

describe("#e2e channels: fan-out", function()
  local server = e2e.serve(setup, teardown, APP)

  it("1,000 subscribers on one channel all receive every one of 100 events", function()
    local N, M = 1000, 100
    local ch = uniq("fanout")
    -- The streams are read by a child process (spec/fixtures/channels/fanout_client.lua)
    -- whose open-file limit is raised first: 1,000 sockets do not fit in the
    -- common soft limit of 1024 (the server raises its own limit by itself).
    -- If the hard limit is lower than 4096, the child uses the hard limit and
    -- reports a limit below N + 64 as an error.
    local script = "ulimit -n 4096 2>/dev/null || ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; "
      .. "exec timeout -k 5 300 lua5.4 spec/fixtures/channels/fanout_client.lua "
      .. server.port .. " " .. ch .. " " .. N .. " " .. M .. " \"$(ulimit -n)\""
    local p = assert(io.popen("sh -c " .. e2e.shell_quote(script) .. " 2>&1", "r"))
    local out = p:read("a")
    p:close()
    local json = out:match("FANOUT (%b{})")
    assert(json, "the fan-out client printed no result:\n" .. out)
    local r = e2e.json_decode(json)
    local why = "fan-out: " .. json
    assert.equal(0, #r.errors, why)
    assert.equal(N, r.opened, why)
    assert.equal(N, r.ready, why)
    assert.equal(M, #r.delivered, why)
    for i = 1, M do assert.equal(N, r.delivered[i], why) end
    assert.equal(N, r.complete, why)
  end)
end)

------------------------------------------------------------------------------

describe("#e2e channels: the example app", function()
  local server, port

  setup(function()
    server = e2e.start("scripts")
    port = server.port
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  local ADMIN = "Authorization: Bearer demo-admin-token"
  local CURL = "curl -X POST -H 'Authorization: Bearer demo-admin-token' -d 'hello' "
    .. "http://127.0.0.1:8080/publish/news/"

  it("/channel/ is the page: an EventSource on /sse/channel/news/ and the curl line", function()
    local resp = e2e.get(port, "/channel/")
    assert.equal(200, resp.status)
    assert.equal("text/html; charset=utf-8", resp.headers["content-type"])
    assert.equal(e2e.read_file("scripts/channel.html"), resp.body)
    assert.truthy(resp.body:find('new EventSource("/sse/channel/news/")', 1, true))
    assert.truthy(resp.body:find(CURL, 1, true), "the page does not show: " .. CURL)
    -- the README may break the line with a backslash-newline (the same command)
    local readme = e2e.read_file("README.md"):gsub("\\\n%s*", "")
    assert.truthy(readme:find(CURL, 1, true), "README.md does not show: " .. CURL)
  end)

  it("the curl line reaches a relay subscriber", function()
    local c = open_relay(port, "/sse/channel/news/")
    local line = CURL:gsub(":8080/", ":" .. port .. "/")
    -- Run it until it reports one delivery (until then the relay has not
    -- subscribed, and an event delivered to nobody is not replayed to it).
    local deadline = e2e.now() + e2e.TEST_TIMEOUT
    local r
    repeat
      local p = assert(io.popen(line .. " -s --max-time 10", "r"))
      local out = p:read("a")
      p:close()
      local decoded, value = pcall(e2e.json_decode, out)
      assert(decoded, "the curl line printed: " .. out)
      r = value
      assert.is_string(r.id, out)
      if r.delivered ~= 1 then e2e.sleep(0.05) end
    until r.delivered == 1 or e2e.now() > deadline
    assert.equal(1, r.delivered)
    expect_frames(c, { "data: hello\nid: " .. r.id })
    c:close()
  end)

  it("publishing needs the staff credential (403 otherwise); GET is 405", function()
    local ch = uniq("ex")
    local none = e2e.post(port, "/publish/" .. ch .. "/", "x", { "Content-Type: text/plain" })
    assert.equal(403, none.status)
    local user = e2e.post(port, "/publish/" .. ch .. "/", "x",
      { "Content-Type: text/plain", "Authorization: Bearer demo-token" })
    assert.equal(403, user.status)
    local admin = e2e.post(port, "/publish/" .. ch .. "/", "x", { "Content-Type: text/plain", ADMIN })
    assert.equal(200, admin.status, admin.body)
    assert.same({ id = e2e.json_decode(admin.body).id, delivered = 0 }, e2e.json_decode(admin.body))
    local get = e2e.get(port, "/publish/" .. ch .. "/", { ADMIN })
    assert.equal(405, get.status)
    assert.equal("POST", get.headers["allow"])
  end)

  it("the relay route honours Last-Event-ID", function()
    local ch = uniq("ex-resume")
    local ids = {}
    for i = 1, 3 do
      local resp = e2e.post(port, "/publish/" .. ch .. "/", "m" .. i, { "Content-Type: text/plain", ADMIN })
      assert.equal(200, resp.status, resp.body)
      ids[i] = e2e.json_decode(resp.body).id
    end
    local c = open_relay(port, "/sse/channel/" .. ch .. "/", { "Last-Event-ID: " .. ids[1] })
    expect_frames(c, { "data: m2\nid: " .. ids[2], "data: m3\nid: " .. ids[3] })
    c:close()
  end)
end)
