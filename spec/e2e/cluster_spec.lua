-- End to end (issue 12): channels across nodes through Redis. Every describe
-- block has a private redis-server (e2e.start_redis) and three `flosse serve`
-- processes (nodes) on their own ports sharing it, some with --workers 2.
--
-- The fixture app is spec/fixtures/cluster (channel_history = 5; the Redis URL
-- and timeout come from the environment, see its settings.lua): a relay view
-- (/sse/channel/<name>/), the publish view open to all (/publish/<name>/), a
-- view publishing from Lua (/pub/<name>/) and a view subscribing to two
-- channels with flosse.subscribe (/sub2/<a>/<b>/).
--
-- With Redis a stream's head goes out once its subscription is in place, so a
-- spec publishes as soon as it has the head: no probes. Every wait is bounded;
-- timing is only ever a generous upper bound.
local e2e = require "e2e"

local APP = "spec/fixtures/cluster"
local DEFAULT_TIMEOUT = 2  -- flosse's default redis timeout (seconds)

local uniq_n = 0
local function uniq(prefix)
  uniq_n = uniq_n + 1
  return ("%s-%d-%d"):format(prefix, uniq_n, math.random(1, 1e9))
end

local TEXT = { "Content-Type: text/plain" }
local JSON = { "Content-Type: application/json" }

------------------------------------------------------------------------------
-- Nodes

-- Starts one node on redis (opts.workers, opts.timeout: the redis timeout,
-- opts.args: more flags). Every node sends heartbeats each second.
local function start_node(redis, opts)
  opts = opts or {}
  local env = { FLOSSE_CLUSTER_REDIS = redis.url }
  if opts.timeout then env.FLOSSE_CLUSTER_TIMEOUT = tostring(opts.timeout) end
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local args = { "--heartbeat", "1", "--no-reload" }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  return e2e.start(APP, { workers = opts.workers or 1, env = env, args = args })
end

-- The setup and teardown of a describe block: a redis-server (opts.redis:
-- start_redis's options) and three nodes (workers 2, 1, 2; opts.timeout).
-- Returns a table filled in by setup: { redis =, nodes = { n1, n2, n3 } }.
local function cluster(setup_hook, teardown_hook, opts)
  opts = opts or {}
  local c = { nodes = {} }
  setup_hook(function()
    c.redis = e2e.start_redis(opts.redis)
    for i, w in ipairs({ 2, 1, 2 }) do
      c.nodes[i] = start_node(c.redis, { workers = w, timeout = opts.timeout })
    end
  end)
  teardown_hook(function()
    for _, n in pairs(c.nodes) do n:cleanup() end
    if c.redis then c.redis:cleanup() end
  end)
  return c
end

-- Redis' clock in microseconds (TIME).
local function redis_time_us(redis)
  local s, us = redis:cli("TIME"):match("^(%d+)\n(%d+)$")
  assert(s, "redis TIME: " .. redis:cli("TIME"))
  return math.tointeger(tonumber(s)) * 1000000 + math.tointeger(tonumber(us))
end

------------------------------------------------------------------------------
-- Publishing

-- Publishes through a node: how = "text" (the publish view, body = the data),
-- "json" (the publish view, body = a JSON object text) or "lua" (the fixture's
-- /pub/ view; opts.event: the event name, opts.id: an id of its own).
-- Returns the response (with .elapsed, and .r: the decoded JSON of a 200).
local function publish(node, channel, how, body, opts)
  opts = opts or {}
  local t0 = e2e.now()
  local resp
  if how == "text" then
    resp = e2e.post(node.port, "/publish/" .. channel .. "/", body, TEXT)
  elseif how == "json" then
    resp = e2e.post(node.port, "/publish/" .. channel .. "/", body, JSON)
  else
    local q = {}
    if opts.event then q[#q + 1] = "event=" .. opts.event end
    if opts.id then q[#q + 1] = "id=" .. opts.id end
    local target = "/pub/" .. channel .. "/" .. (#q > 0 and ("?" .. table.concat(q, "&")) or "")
    resp = e2e.post(node.port, target, body, TEXT)
  end
  resp.elapsed = e2e.now() - t0
  if resp.status == 200 then resp.r = e2e.json_decode(resp.body) end
  return resp
end

local function is_id(id)
  return type(id) == "string" and id:match("^%d+$") ~= nil
end

local function num(id) return math.tointeger(tonumber(id)) end

-- Publishes text data that must be taken: asserts 200 and a decimal id;
-- returns the id and the delivered count.
local function must_publish(node, channel, how, body, opts)
  local resp = publish(node, channel, how, body, opts)
  assert(resp.status == 200, ("publish %q on %s through port %d (%s): %d %s"):format(
    body, channel, node.port, how, resp.status, resp.body))
  assert(is_id(resp.r.id), "not a decimal id: " .. resp.body)
  return resp.r.id, resp.r.delivered
end

------------------------------------------------------------------------------
-- Frames

-- One SSE frame (without its blank line), in the wire's field order; data
-- splits into one data: line per line (LF, CRLF, CR).
local function frame(f)
  local lines = {}
  if f.event then lines[#lines + 1] = "event: " .. f.event end
  local data = f.data:gsub("\r\n", "\n"):gsub("\r", "\n")
  for line in (data .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = "data: " .. line end
  if f.id then lines[#lines + 1] = "id: " .. f.id end
  return table.concat(lines, "\n")
end

local gap_frame = e2e.gap_frame

local function is_gap(f) return f:find("^event: flosse%-gap\n") ~= nil end

local function id_of(f) return f:match("\nid: (%d+)$") or f:match("\nid: ([^\n]+)") end

-- Pulls what has arrived on c (never waits): its complete frames go to
-- c.got, heartbeat comments are counted in c.hb.
local function drain(c)
  c:pump(8)
  local body, pos = c.stream_body, 1
  while true do
    local s, e = body:find("\n\n", pos, true)
    if not s then break end
    local f = body:sub(pos, s - 1)
    if f == ": heartbeat" then c.hb = c.hb + 1 else c.got[#c.got + 1] = f end
    pos = e + 1
  end
  if pos > 1 then c.stream_body = body:sub(pos) end
end

-- Waits (bounded) until every client has at least n frames; true, or false.
local function wait_frames(list, n, timeout)
  if list.sock ~= nil or list.got then list = { list } end
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

-- Pumps the clients for `seconds` (collecting frames and heartbeats).
local function pump_for(list, seconds)
  local deadline = e2e.now() + seconds
  while e2e.now() < deadline do
    for _, c in ipairs(list) do drain(c) end
    local socks = {}
    for _, c in ipairs(list) do
      if c.sock and not c.eof then socks[#socks + 1] = c.sock end
    end
    if #socks > 0 then e2e.socket.select(socks, nil, 0.05) else e2e.sleep(0.05) end
  end
  for _, c in ipairs(list) do drain(c) end
end

-- Waits for exactly the expected frames on c (then a short while more, so
-- that a duplicate or a stray frame would show).
local function expect_frames(c, expected, what)
  local ok = wait_frames(c, #expected)
  assert(ok, (what or "frames") .. ": only " .. #c.got .. " of " .. #expected .. " arrived; got "
    .. e2e.json_encode(c.got) .. "; expected " .. e2e.json_encode(expected))
  pump_for({ c }, 0.2)
  assert.same(expected, c.got, what)
end

-- Opens a stream on a node (target: a path), asserting 200 and the SSE type.
local function open(node, target, last_event_id)
  local headers = {}
  if last_event_id then headers[1] = "Last-Event-ID: " .. last_event_id end
  local c, head = e2e.open(node.port, target, headers)
  assert.equal("text/event-stream; charset=utf-8", head.headers["content-type"])
  c.got, c.hb = {}, 0
  return c
end

local function relay(node, channel, last_event_id)
  return open(node, "/sse/channel/" .. channel .. "/", last_event_id)
end

local function sub2(node, a, b, last_event_id)
  return open(node, "/sub2/" .. a .. "/" .. b .. "/", last_event_id)
end

local function close_all(list)
  for _, c in ipairs(list) do c:close() end
end

-- The ids of the frames (asserting each has one) are strictly increasing.
local function assert_increasing(frames, what)
  local last = -1
  for i, f in ipairs(frames) do
    local id = id_of(f)
    assert(is_id(id), (what or "") .. ": frame " .. i .. " has no decimal id: " .. f)
    assert(num(id) > last, (what or "") .. ": id " .. id .. " after " .. last)
    last = num(id)
  end
end

-- Publishes through node (text) until one answers 200, bounded by `seconds`;
-- the data of each attempt is label .. "#" .. n. Returns the frame of the one
-- taken (or nil), and the list of the refused attempts' data.
local function publish_until_taken(node, channel, label, seconds)
  local deadline = e2e.now() + seconds
  local refused, n = {}, 0
  while true do
    n = n + 1
    local data = label .. "#" .. n
    local resp = publish(node, channel, "text", data)
    if resp.status == 200 then
      return frame{ data = data, id = resp.r.id }, refused, resp
    end
    assert.equal(503, resp.status, "publish while Redis comes back: " .. resp.status .. " " .. resp.body)
    refused[#refused + 1] = data
    if e2e.now() > deadline then return nil, refused, resp end
    e2e.sleep(0.1)
  end
end

------------------------------------------------------------------------------

describe("#e2e #redis cluster: three nodes on one Redis", function()
  local c = cluster(setup, teardown)
  local t_start

  setup(function() t_start = redis_time_us(c.redis) end)

  it("every subscriber on every node gets every event published on every node, once, in order, as sent", function()
    local n = c.nodes
    local a, b = uniq("all-a"), uniq("all-b")
    -- relays of a on every node, and two-channel streams (a, b) on two of them
    local relays = { relay(n[1], a), relay(n[2], a), relay(n[3], a) }
    local pairs_ = { sub2(n[1], a, b), sub2(n[3], a, b) }
    local for_relay, for_pair = {}, {}
    local unicode = "héllo — 日本語 🎉 ünïcödé"
    for i = 1, 30 do
      local node = n[(i - 1) % 3 + 1]
      local ch = (i % 4 == 0) and b or a
      local kind = i % 5
      local f
      if kind == 0 then
        -- the JSON form: the data as written, big integers and all
        local raw = '{"n":' .. i .. ',"big":123456789012345678901234567890,"ts":1796150648138900}'
        local id = must_publish(node, ch, "json", '{"event":"big","data":' .. raw .. '}')
        f = frame{ event = "big", data = raw, id = id }
      elseif kind == 1 then
        local data = "line " .. i .. "\nsecond\r\nthird\rfourth"
        local id = must_publish(node, ch, "text", data)
        f = frame{ data = data, id = id }
      elseif kind == 2 then
        local data = unicode .. " " .. i
        local id = must_publish(node, ch, "lua", data, { event = "uni" })
        f = frame{ event = "uni", data = data, id = id }
      elseif kind == 3 then
        local data = "from lua " .. i .. "\nline two"
        local id = must_publish(node, ch, "lua", data)
        f = frame{ data = data, id = id }
      else
        local id = must_publish(node, ch, "json", '{"event":"named","data":"json string ' .. i
          .. ' \\u00e9\\n2nd"}')
        f = frame{ event = "named", data = "json string " .. i .. " é\n2nd", id = id }
      end
      if ch == a then for_relay[#for_relay + 1] = f end
      for_pair[#for_pair + 1] = f
    end
    assert_increasing(for_pair, "publish answers")
    -- ids start at Redis' clock in microseconds when the epoch starts
    assert(num(id_of(for_pair[1])) > t_start, "the first id " .. id_of(for_pair[1])
      .. " is not above Redis' clock at the start (" .. t_start .. ")")
    for i, s in ipairs(relays) do expect_frames(s, for_relay, "relay on node " .. i) end
    for i, s in ipairs(pairs_) do expect_frames(s, for_pair, "two channels, stream " .. i) end
    for _, s in ipairs(relays) do assert_increasing(s.got, "relay") end
    close_all(relays)
    close_all(pairs_)
  end)

  it("an event with an id of its own is refused (400 from the publish view, nil, err from Lua), sent to nobody",
    function()
    local n = c.nodes
    local ch = uniq("own-id")
    local s1, s2 = relay(n[1], ch), relay(n[2], ch)
    local resp = publish(n[1], ch, "json", '{"data":"mine","id":"evt-1"}')
    assert.equal(400, resp.status, resp.body)
    assert.is_true(#resp.body > 0)
    local lua = publish(n[2], ch, "lua", "mine too", { id = "evt-2" })
    assert.equal(409, lua.status, "the Lua view's publish did not return nil, err: " .. lua.status
      .. " " .. lua.body)
    assert.is_true(#e2e.json_decode(lua.body).error > 0, lua.body)
    local id = must_publish(n[3], ch, "text", "after")
    local want = { frame{ data = "after", id = id } }
    expect_frames(s1, want, "node 1")
    expect_frames(s2, want, "node 2")
    close_all({ s1, s2 })
  end)

  it("a client that reconnects to another node with Last-Event-ID gets exactly what it missed, then live ones",
    function()
    local n = c.nodes
    local ch, other = uniq("resume"), uniq("resume-other")
    local s1 = relay(n[1], ch)
    local e = {}
    for i = 1, 2 do e[i] = frame{ data = "e" .. i, id = must_publish(n[(i % 3) + 1], ch, "text", "e" .. i) } end
    expect_frames(s1, { e[1], e[2] }, "before")
    s1:close()
    for i = 3, 5 do e[i] = frame{ data = "e" .. i, id = must_publish(n[(i % 3) + 1], ch, "lua", "e" .. i) } end
    local s2 = relay(n[2], ch, id_of(e[2]))
    expect_frames(s2, { e[3], e[4], e[5] }, "replay on node 2")
    -- the same through flosse.subscribe on two channels, on node 3
    local o1 = frame{ data = "o1", id = must_publish(n[1], other, "text", "o1") }
    local s3 = sub2(n[3], ch, other, id_of(e[3]))
    expect_frames(s3, { e[4], e[5], o1 }, "replay on node 3 (two channels)")
    e[6] = frame{ data = "e6", id = must_publish(n[3], ch, "text", "e6") }
    expect_frames(s2, { e[3], e[4], e[5], e[6] }, "then live on node 2")
    expect_frames(s3, { e[4], e[5], o1, e[6] }, "then live on node 3")
    close_all({ s2, s3 })
  end)

  it("more than channel_history events missed: flosse-gap first, then what is left, then live events", function()
    local n = c.nodes
    local ch = uniq("trimmed")
    local s1 = relay(n[1], ch)
    local e = {}
    e[1] = frame{ data = "e1", id = must_publish(n[2], ch, "text", "e1") }
    expect_frames(s1, { e[1] }, "before")
    s1:close()
    for i = 2, 9 do e[i] = frame{ data = "e" .. i, id = must_publish(n[(i % 3) + 1], ch, "text", "e" .. i) } end
    -- the history keeps e5..e9
    local s2 = relay(n[3], ch, id_of(e[1]))
    local kept = { e[5], e[6], e[7], e[8], e[9] }
    local want = { gap_frame(ch, id_of(e[1])), e[5], e[6], e[7], e[8], e[9] }
    expect_frames(s2, want, "gap, then what is left")
    -- an id fully covered by history: no gap
    local s3 = relay(n[2], ch, id_of(e[4]))
    expect_frames(s3, kept, "e4: covered, no gap")
    e[10] = frame{ data = "e10", id = must_publish(n[1], ch, "text", "e10") }
    want[#want + 1] = e[10]
    kept[#kept + 1] = e[10]
    expect_frames(s2, want, "then live")
    expect_frames(s3, kept, "then live (no gap)")
    close_all({ s2, s3 })
  end)

  it("a channel whose key Redis holds as something else: 503 with Redis' error, the others unaffected", function()
    local n = c.nodes
    local bad, good = uniq("wrongtype"), uniq("fine")
    c.redis:cli("SET", "flosse:s:" .. bad, "not a stream")
    local s = relay(n[2], bad) -- its head comes after the timeout: the read fails
    local resp = publish(n[1], bad, "text", "refused")
    assert.equal(503, resp.status, resp.body)
    assert.truthy(resp.body:find("WRONGTYPE", 1, true), resp.body)
    local g = relay(n[3], good)
    local gid = must_publish(n[1], good, "text", "unaffected")
    expect_frames(g, { frame{ data = "unaffected", id = gid } }, "another channel")
    assert(n[2]:wait_log("reading channel " .. bad .. " failed: WRONGTYPE"), "no log line on node 2:\n" .. n[2]:log())
    c.redis:cli("DEL", "flosse:s:" .. bad)
    local id = must_publish(n[1], bad, "text", "fixed")
    expect_frames(s, { frame{ data = "fixed", id = id } }, "once the key is gone")
    local _, lines = n[2]:log():gsub("reading channel " .. bad:gsub("%p", "%%%0") .. " failed", "")
    assert.equal(1, lines, "the failing read is logged once:\n" .. n[2]:log())
    close_all({ s, g })
  end)

  it("delivered counts the publishing node's subscribers only", function()
    local n = c.nodes
    local ch = uniq("delivered")
    local subs = { relay(n[1], ch), sub2(n[1], ch, uniq("x")), relay(n[2], ch) }  -- 2 on node 1, 1 on node 2, none on 3
    local want = {}
    for i, expected in ipairs({ 2, 1, 0 }) do
      local id, delivered = must_publish(n[i], ch, "text", "d" .. i)
      assert.equal(expected, delivered, "node " .. i)
      want[#want + 1] = frame{ data = "d" .. i, id = id }
    end
    local _, lua_delivered = must_publish(n[1], ch, "lua", "d4")
    assert.equal(2, lua_delivered, "node 1, from Lua")
    for _, s in ipairs(subs) do assert(wait_frames(s, 4), "an event is missing: " .. e2e.json_encode(s.got)) end
    for i, s in ipairs(subs) do
      assert.same(want, { table.unpack(s.got, 1, 3) }, "subscriber " .. i)
      assert.equal(4, #s.got, "subscriber " .. i)
    end
    close_all(subs)
  end)

  it("a node killed with SIGKILL: its clients reconnect to another node with Last-Event-ID and miss nothing", function()
    local n = c.nodes
    local ch, other = uniq("killed"), uniq("killed-other")
    local victim = start_node(c.redis, { workers = 2 })
    local ok, err = pcall(function()
      local r = relay(victim, ch)
      local s = sub2(victim, ch, other)
      local e = {}
      for i = 1, 3 do e[i] = frame{ data = "e" .. i, id = must_publish(n[i], ch, "text", "e" .. i) } end
      expect_frames(r, { e[1], e[2], e[3] }, "relay before")
      expect_frames(s, { e[1], e[2], e[3] }, "sub2 before")
      -- one more, and the node dies at once: its clients may or may not have it
      e[4] = frame{ data = "e4", id = must_publish(n[1], ch, "text", "e4") }
      victim:signal("KILL")
      assert(e2e.eventually(function() return not victim:alive() end, 5), "the node did not die")
      for _, cl in ipairs({ r, s }) do
        local _, how = cl:read_until_close(5)
        assert.equal("closed", how, "the killed node's connection is still open")
        drain(cl)
      end
      for i = 5, 6 do e[i] = frame{ data = "e" .. i, id = must_publish(n[i - 3], ch, "lua", "e" .. i) } end
      local function rest_after(cl)
        local last = cl.got[#cl.got]
        local from
        for i, f in ipairs(e) do if f == last then from = i end end
        assert(from and from >= 3, "the last frame the client had is not one of the events: " .. tostring(last))
        return { table.unpack(e, from + 1) }, id_of(last)
      end
      local want_r, lei_r = rest_after(r)
      local want_s, lei_s = rest_after(s)
      local r2 = relay(n[2], ch, lei_r)
      local s2 = sub2(n[3], ch, other, lei_s)
      expect_frames(r2, want_r, "relay after the reconnect")
      expect_frames(s2, want_s, "sub2 after the reconnect")
      e[7] = frame{ data = "e7", id = must_publish(n[2], ch, "text", "e7") }
      want_r[#want_r + 1], want_s[#want_s + 1] = e[7], e[7]
      expect_frames(r2, want_r, "relay, then live")
      expect_frames(s2, want_s, "sub2, then live")
      close_all({ r, s, r2, s2 })
    end)
    victim:cleanup()
    assert(ok, err)
  end)

  it("flosse check takes the fixture with a redis setting; --redis not-a-url is refused at start", function()
    local code, out, errout = e2e.run_flosse({ "check", APP }, { env = { FLOSSE_CLUSTER_REDIS = c.redis.url } })
    assert.equal(0, code, out .. errout)
    assert.truthy((out .. errout):find("/sse/channel/<str:name>/", 1, true), out .. errout)
    local bad, bout, berr = e2e.run_flosse({ "check", APP }, { env = { FLOSSE_CLUSTER_REDIS = "not-a-url" } })
    assert.are_not.equal(0, bad, bout .. berr)
    assert.truthy((bout .. berr):find("not-a-url", 1, true), bout .. berr)
    local scode, sout, serr = e2e.run_serve(APP, { "--port", "0", "--redis", "not-a-url" },
      { env = { FLOSSE_CLUSTER_REDIS = false }, timeout = 10 })
    assert.are_not.equal(0, scode, sout .. serr)
    assert.are_not.equal(124, scode, "flosse serve --redis not-a-url did not exit: " .. sout .. serr)
    assert.truthy((sout .. serr):find("not-a-url", 1, true), "no clear message: " .. sout .. serr)
    assert.truthy((sout .. serr):lower():find("redis", 1, true), "no clear message: " .. sout .. serr)
  end)
end)

------------------------------------------------------------------------------

describe("#e2e #redis cluster: Redis restarts", function()
  local c = cluster(setup, teardown)

  it("Redis restarted empty: a reconnect with an old Last-Event-ID and a stream that stayed open get flosse-gap;"
    .. " new ids are larger", function()
    local n = c.nodes
    local ch = uniq("empty")
    local open1, open2 = relay(n[1], ch), relay(n[2], ch)
    local e1 = frame{ data = "e1", id = must_publish(n[1], ch, "text", "e1") }
    local e2 = frame{ data = "e2", id = must_publish(n[3], ch, "text", "e2") }
    expect_frames(open1, { e1, e2 }, "before, node 1")
    expect_frames(open2, { e1, e2 }, "before, node 2")
    c.redis:stop()
    os.remove(c.redis.dir .. "/dump.rdb")
    c.redis:start()
    assert.equal("0", c.redis:cli("DBSIZE"), "Redis did not come back empty")
    local restarted = e2e.now()
    local n1, refused = publish_until_taken(n[2], ch, "n1", 8)
    assert(n1, "no publish was taken within 8 s of Redis coming back: " .. e2e.json_encode(refused))
    local n2 = publish_until_taken(n[3], ch, "n2", math.max(1, 6 - (e2e.now() - restarted)))
    assert(n2, "node 3 did not publish within ~6 s of Redis coming back")
    local n3 = publish_until_taken(n[1], ch, "n3", math.max(1, 6 - (e2e.now() - restarted)))
    assert(n3, "node 1 did not publish within ~6 s of Redis coming back")
    assert.is_true(num(id_of(n1)) > num(id_of(e2)), "new id " .. id_of(n1) .. " not above the old " .. id_of(e2))
    assert_increasing({ e1, e2, n1, n2, n3 }, "ids across the restart")
    -- the streams that stayed open: the gap, then the new events
    for i, s in ipairs({ open1, open2 }) do
      local want = { e1, e2, gap_frame(ch, id_of(e2)), n1, n2, n3 }
      expect_frames(s, want, "stayed open on node " .. i)
    end
    -- a reconnect with an id of the old epoch
    local back = relay(n[3], ch, id_of(e1))
    expect_frames(back, { gap_frame(ch, id_of(e1)), n1, n2, n3 }, "old Last-Event-ID")
    for _, r in ipairs(refused) do
      for _, s in ipairs({ open1, open2, back }) do
        for _, f in ipairs(s.got) do
          assert.is_nil(f:find(r, 1, true), "a refused publish was delivered: " .. f)
        end
      end
    end
    local n4 = frame{ data = "n4", id = must_publish(n[2], ch, "lua", "n4") }
    expect_frames(back, { gap_frame(ch, id_of(e1)), n1, n2, n3, n4 }, "then live")
    close_all({ open1, open2, back })
  end)

  it("Redis back from an older snapshot: the id counter is moved past what the nodes had, no id twice", function()
    local n = c.nodes
    local ch = uniq("rollback")
    local s = relay(n[2], ch)
    local e1 = frame{ data = "e1", id = must_publish(n[1], ch, "text", "e1") }
    c.redis:cli("SAVE") -- the snapshot holds e1 only
    local e2 = frame{ data = "e2", id = must_publish(n[1], ch, "text", "e2") }
    local e3 = frame{ data = "e3", id = must_publish(n[3], ch, "text", "e3") }
    expect_frames(s, { e1, e2, e3 }, "before")
    c.redis:kill()
    c.redis:start() -- from the snapshot: its counter is behind e3
    assert(n[2]:wait_log("its id counter was behind"), "node 2 did not see the counter behind:\n" .. n[2]:log())
    local after = publish_until_taken(n[1], ch, "after", 8)
    assert(after, "no publish was taken after the restart")
    assert.is_true(num(id_of(after)) > num(id_of(e3)), "id " .. id_of(after) .. " given again (e3 had "
      .. id_of(e3) .. ")")
    expect_frames(s, { e1, e2, e3, after }, "the stream that stayed open")
    s:close()
  end)

  it("Redis stopped and restarted with its data mid-stream: streams stay open with heartbeats, 503 meanwhile,"
    .. " then every taken event once, in order, no gap", function()
    local n = c.nodes
    local ch, other = uniq("outage"), uniq("outage-other")
    local r1, r2 = relay(n[1], ch), relay(n[2], ch)
    local s3 = sub2(n[3], ch, other)
    local streams = { r1, r2, s3 }
    local for_relay, for_pair, for_late = {}, {}, {}
    local p1 = frame{ data = "p1", id = must_publish(n[1], ch, "text", "p1") }
    local p2 = frame{ data = "p2", id = must_publish(n[2], other, "text", "p2") }
    for_relay[1], for_pair[1], for_pair[2] = p1, p1, p2
    expect_frames(r1, for_relay, "before, node 1")
    expect_frames(s3, for_pair, "before, node 3")
    c.redis:stop{ save = true }
    assert.is_false(c.redis:alive())
    -- publishes answer 503 within the timeout (generously bounded)
    local refused = {}
    for i, node in ipairs(n) do
      local data = "down" .. i
      local resp = publish(node, ch, "text", data)
      assert.equal(503, resp.status, "publish through node " .. i .. " with Redis down: " .. resp.status
        .. " " .. resp.body)
      assert.is_true(#resp.body > 0 and #resp.body < 500, "503 body: " .. resp.body)
      assert.is_true(resp.elapsed < DEFAULT_TIMEOUT + 2, ("the 503 took %.2f s"):format(resp.elapsed))
      refused[#refused + 1] = data
    end
    local lua = publish(n[3], ch, "lua", "down-lua")
    assert.equal(409, lua.status, "publish from Lua with Redis down: " .. lua.status .. " " .. lua.body)
    assert.is_true(lua.elapsed < DEFAULT_TIMEOUT + 2, ("the Lua publish took %.2f s"):format(lua.elapsed))
    refused[#refused + 1] = "down-lua"
    -- the streams stay open and keep getting heartbeats
    local hb_before = {}
    for i, s in ipairs(streams) do drain(s); hb_before[i] = s.hb end
    -- meanwhile, a stream opened during the outage gets its head after the timeout at most
    local t0 = e2e.now()
    local late = relay(n[2], ch)
    local head_took = e2e.now() - t0
    assert.is_true(head_took < DEFAULT_TIMEOUT + 2, ("the head took %.2f s with Redis away"):format(head_took))
    pump_for(streams, math.max(1.5, 2.5 - head_took))
    for i, s in ipairs(streams) do
      assert.is_falsy(s.eof, "stream " .. i .. " closed while Redis was down")
      assert.is_true(s.hb > hb_before[i], "stream " .. i .. " got no heartbeat while Redis was down")
    end
    c.redis:start()
    assert.are_not.equal("0", c.redis:cli("DBSIZE"), "Redis did not come back with its data")
    local restarted = e2e.now()
    for i, node in ipairs(n) do
      local f, no = publish_until_taken(node, i == 3 and other or ch, "up" .. i,
        math.max(1, 6 - (e2e.now() - restarted)))
      assert(f, "node " .. i .. " did not publish within ~6 s of Redis coming back")
      for _, r in ipairs(no) do refused[#refused + 1] = r end
      if i ~= 3 then for_relay[#for_relay + 1], for_late[#for_late + 1] = f, f end
      for_pair[#for_pair + 1] = f
    end
    for i = 1, 3 do
      local id = must_publish(n[i], ch, "lua", "after" .. i)
      local f = frame{ data = "after" .. i, id = id }
      for_relay[#for_relay + 1], for_pair[#for_pair + 1], for_late[#for_late + 1] = f, f, f
    end
    assert_increasing(for_pair, "ids across the restart")
    streams[#streams + 1] = late
    expect_frames(late, for_late, "the relay opened during the outage")
    expect_frames(r1, for_relay, "relay on node 1")
    expect_frames(r2, for_relay, "relay on node 2")
    expect_frames(s3, for_pair, "two channels on node 3")
    for _, s in ipairs(streams) do
      for _, f in ipairs(s.got) do
        assert.is_false(is_gap(f), "a gap was told: " .. f)
        for _, r in ipairs(refused) do
          assert.is_nil(f:find("data: " .. r .. "\n", 1, true), "a refused publish was delivered: " .. f)
        end
      end
    end
    close_all(streams)
  end)
end)

------------------------------------------------------------------------------

describe("#e2e #redis cluster: Redis down at start", function()
  local c = { nodes = {} }

  setup(function()
    c.redis = e2e.start_redis{ started = false }
    for i, w in ipairs({ 2, 1, 2 }) do c.nodes[i] = start_node(c.redis, { workers = w }) end
  end)

  teardown(function()
    for _, n in pairs(c.nodes) do n:cleanup() end
    if c.redis then c.redis:cleanup() end
  end)

  it("the nodes start, serve other routes, log the URL, and work within a few seconds of Redis starting", function()
    local n = c.nodes
    local port = tostring(c.redis.port)
    for i, node in ipairs(n) do
      local resp = e2e.get(node.port, "/hello/")
      assert.equal(200, resp.status, "node " .. i)
      assert.equal("hello", resp.body, "node " .. i)
      -- a line about the failure that names the URL (not just the start-up line)
      local found = e2e.eventually(function()
        for line in node:log():gmatch("[^\n]+") do
          if line:find("127.0.0.1:" .. port, 1, true) and not line:find("(prefix", 1, true)
            and not line:find("listening on", 1, true) then
            return line
          end
        end
      end, 4)
      assert(found, "node " .. i .. " logged no line naming " .. c.redis.url .. ":\n" .. node:log())
    end
    -- a publish answers 503 in time; a stream's head comes after the timeout at most
    local ch = uniq("late")
    local resp = publish(n[1], ch, "text", "too early")
    assert.equal(503, resp.status, resp.body)
    assert.is_true(resp.elapsed < DEFAULT_TIMEOUT + 2, ("the 503 took %.2f s"):format(resp.elapsed))
    local t0 = e2e.now()
    local early = relay(n[2], ch)
    assert.is_true(e2e.now() - t0 < DEFAULT_TIMEOUT + 2, "the head took too long with Redis away")
    c.redis:start()
    local started = e2e.now()
    local f1, refused = publish_until_taken(n[1], ch, "first", 6)
    assert(f1, "node 1 did not publish within 6 s of Redis starting")
    local late = relay(n[3], ch)
    local f2 = publish_until_taken(n[3], ch, "second", math.max(1, 6 - (e2e.now() - started)))
    assert(f2, "node 3 did not publish within ~6 s of Redis starting")
    expect_frames(early, { f1, f2 }, "the stream opened while Redis was away")
    expect_frames(late, { f2 }, "a stream opened after")
    for _, r in ipairs(refused) do
      for _, f in ipairs(early.got) do assert.is_nil(f:find(r .. "\n", 1, true), f) end
    end
    close_all({ early, late })
  end)
end)

------------------------------------------------------------------------------

describe("#e2e #redis cluster: a slow Redis (timeout = 0.5)", function()
  local TIMEOUT = 0.5
  -- Redis 7 refuses DEBUG unless enable-debug-command allows it
  local c = cluster(setup, teardown, { timeout = TIMEOUT,
    redis = { args = { "--enable-debug-command", "local" } } })

  it("a publish answers 503 within about the timeout, and that event is never delivered", function()
    local n = c.nodes
    local ch = uniq("slow")
    local subs = { relay(n[1], ch), relay(n[2], ch), sub2(n[3], ch, uniq("y")) }
    local before = frame{ data = "before", id = must_publish(n[2], ch, "text", "before") }
    for _, s in ipairs(subs) do expect_frames(s, { before }, "before") end
    os.execute("redis-cli -h 127.0.0.1 -p " .. c.redis.port .. " DEBUG SLEEP 3 >/dev/null 2>&1 </dev/null &")
    -- the sleep has begun once a PING goes unanswered for 0.3 s (bounded)
    local asleep = e2e.eventually(function()
      local p = assert(io.popen("timeout 0.3 redis-cli -h 127.0.0.1 -p " .. c.redis.port
        .. " PING 2>/dev/null </dev/null", "r"))
      local out = p:read("a") or ""
      p:close()
      return not out:find("PONG", 1, true)
    end, 2)
    assert(asleep, "Redis did not start sleeping")
    local resp = publish(n[1], ch, "text", "slow-one")
    assert.equal(503, resp.status, "publish to a sleeping Redis: " .. resp.status .. " " .. resp.body)
    assert.is_true(resp.elapsed < TIMEOUT + 1.5, ("the 503 took %.2f s (timeout %.1f)"):format(resp.elapsed, TIMEOUT))
    local lua = publish(n[2], ch, "lua", "slow-lua")
    assert.equal(409, lua.status, "publish from Lua to a sleeping Redis: " .. lua.status .. " " .. lua.body)
    assert(e2e.eventually(function() return c.redis:cli("PING") == "PONG" end, 6), "Redis did not wake up")
    local refused = { "slow-one", "slow-lua" }
    local want = { before }
    for i, node in ipairs(n) do
      local f, no = publish_until_taken(node, ch, "awake" .. i, 6)
      assert(f, "node " .. i .. " did not publish within 6 s of Redis waking up")
      for _, r in ipairs(no) do refused[#refused + 1] = r end
      want[#want + 1] = f
    end
    pump_for(subs, 0.5)
    for i, s in ipairs(subs) do expect_frames(s, want, "subscriber " .. i) end
    for _, s in ipairs(subs) do
      for _, f in ipairs(s.got) do
        for _, r in ipairs(refused) do
          assert.is_nil(f:find("data: " .. r .. "\n", 1, true), "a refused publish was delivered: " .. f)
        end
      end
    end
    close_all(subs)
  end)
end)

------------------------------------------------------------------------------

-- The documented shard of a channel: FNV-1a (32 bits) of its name, modulo the
-- number of shards (1-based, as the shards list).
local function shard_of(name, n)
  local h = 2166136261
  for i = 1, #name do h = ((h ~ name:byte(i)) * 16777619) & 0xffffffff end
  return h % n + 1
end

describe("#e2e #redis cluster: two shards, history by age", function()
  local r1, r2, nodes = nil, nil, {}

  setup(function()
    r1, r2 = e2e.start_redis(), e2e.start_redis()
    local env = { FLOSSE_CLUSTER_SHARDS = r1.url .. "," .. r2.url, FLOSSE_CLUSTER_HISTORY_SECONDS = "1" }
    for i, w in ipairs({ 2, 1 }) do nodes[i] = start_node(r1, { workers = w, env = env }) end
  end)
  teardown(function()
    for _, n in pairs(nodes) do n:cleanup() end
    if r1 then r1:cleanup() end
    if r2 then r2:cleanup() end
  end)

  it("each channel lives on the shard its name hashes to, and works across nodes", function()
    -- four names on each shard (by the documented hash), so both are used
    local names, on, want_on = {}, { 0, 0 }, { 0, 0 }
    while #names < 8 do
      local ch = uniq("shard")
      local k = shard_of(ch, 2)
      if want_on[k] < 4 then
        want_on[k] = want_on[k] + 1
        names[#names + 1] = ch
      end
    end
    local subs, want = {}, {}
    for i, ch in ipairs(names) do subs[i] = relay(nodes[2], ch) end
    for i, ch in ipairs(names) do
      want[i] = { frame{ data = "to " .. ch, id = must_publish(nodes[1], ch, "text", "to " .. ch) } }
    end
    for i, ch in ipairs(names) do
      expect_frames(subs[i], want[i], ch)
      local k = shard_of(ch, 2)
      local mine, other = (k == 1 and r1 or r2), (k == 1 and r2 or r1)
      assert.equal("1", mine:cli("EXISTS", "flosse:m:" .. ch), ch .. " is not on shard " .. k)
      assert.equal("0", other:cli("EXISTS", "flosse:m:" .. ch), ch .. " is on the other shard too")
      for j, r in ipairs({ r1, r2 }) do
        if r:cli("EXISTS", "flosse:m:" .. ch) == "1" then on[j] = on[j] + 1 end
      end
    end
    assert.is_true(on[1] == 4 and on[2] == 4, "the servers hold the 8 channels as " .. e2e.json_encode(on)
      .. ", not 4 and 4")
    close_all(subs)
  end)

  it("channel_history_seconds ages history on Redis: a late resume gets flosse-gap, an early one the events", function()
    local ch = uniq("aged")
    local first = must_publish(nodes[1], ch, "text", "old")
    local second = must_publish(nodes[1], ch, "text", "newer")
    local early = relay(nodes[2], ch, first)
    expect_frames(early, { frame{ data = "newer", id = second } }, "resumed within the age limit")
    early:close()
    e2e.sleep(2.2) -- past channel_history_seconds = 1 (and the key's expiry)
    local late = relay(nodes[2], ch, first)
    local live = must_publish(nodes[1], ch, "text", "live")
    expect_frames(late, { gap_frame(ch, first), frame{ data = "live", id = live } }, "resumed after the age limit")
    late:close()
  end)
end)
