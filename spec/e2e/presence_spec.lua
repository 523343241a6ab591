-- End to end (issue 14): presence. flosse.channel(name):count() and
-- flosse.channels() count the subscribers of every worker, and with Redis
-- of every node (each node writes its counts every second; a node that
-- stops gracefully leaves at once, one that dies when its TTL ends).
local e2e = require "e2e"

local APP = "spec/fixtures/presence"

local function get_json(port, target)
  local r = e2e.get(port, target, nil, { timeout = 5 })
  assert.equal(200, r.status, r.raw .. (r.body or ""))
  return e2e.json_decode(r.body)
end

local function count(port, name) return get_json(port, "/count/" .. name .. "/").count end

-- The channels() reply as { name = subscribers }.
local function listing(port, query)
  local out = {}
  local reply = get_json(port, "/channels/" .. (query or ""))
  for _, c in ipairs(reply.channels) do out[c.name] = c.subscribers end
  return out, reply
end

local function open_many(port, name, n, into)
  for _ = 1, n do into[#into + 1] = e2e.open(port, "/sse/room/" .. name .. "/") end
end

-- Polls until f() equals want (bounded); fails with what it last saw.
local function wait_equal(want, f, what)
  local last
  local ok = e2e.eventually(function()
    last = f()
    return last == want
  end, 15)
  assert.is_truthy(ok, ("%s: wanted %s, last saw %s"):format(what, tostring(want), tostring(last)))
end

describe("#e2e presence on one node (2 workers)", function()
  local server = e2e.serve(setup, teardown, APP, { workers = 2 })

  it("count() is every worker's subscribers; a disconnect lowers it; channels() lists them", function()
    local clients = {}
    open_many(server.port, "pa", 5, clients)
    open_many(server.port, "pb", 2, clients)
    -- Several requests land on either worker: each must give the total.
    for _ = 1, 6 do
      assert.equal(5, count(server.port, "pa"))
      assert.equal(2, count(server.port, "pb"))
    end
    assert.equal(0, count(server.port, "nobody-here"))
    local l = listing(server.port)
    assert.equal(5, l.pa)
    assert.equal(2, l.pb)
    assert.is_nil(l["nobody-here"])
    clients[1]:close()
    clients[2]:close()
    wait_equal(3, function() return count(server.port, "pa") end, "pa after two left")
    for i = 3, #clients do clients[i]:close() end
    wait_equal(0, function() return count(server.port, "pb") end, "pb after all left")
    assert.is_nil(listing(server.port).pb)
  end)

  it("channels() is sorted by name and bounded by limit", function()
    local clients = {}
    for _, name in ipairs({ "zz", "aa", "mm" }) do open_many(server.port, "ls-" .. name, 1, clients) end
    local _, reply = listing(server.port, "?limit=2")
    assert.equal(2, #reply.channels)
    assert.equal("ls-aa", reply.channels[1].name)
    assert.equal("ls-mm", reply.channels[2].name)
    for _, c in ipairs(clients) do c:close() end
  end)

  it("a name no channel may have raises (a 500), the server goes on", function()
    local r = e2e.get(server.port, "/count/" .. ("x"):rep(300) .. "/")
    assert.equal(500, r.status)
    assert.equal(0, count(server.port, "fine"))
  end)
end)

describe("#e2e presence across nodes (Redis)", function()
  local redis
  local nodes = {}
  local function node(workers)
    local n = e2e.start(APP, { workers = workers, env = { FLOSSE_TEST_REDIS = redis.url } })
    nodes[#nodes + 1] = n
    return n
  end

  setup(function() redis = e2e.start_redis() end)
  teardown(function()
    for _, n in ipairs(nodes) do n:cleanup() end
    if redis then redis:cleanup() end
  end)

  it("every node counts every node's subscribers; a graceful stop leaves at once, a killed one at its TTL", function()
    local a, b, c = node(2), node(1), node(1)
    local on_a, on_b, on_c = {}, {}, {}
    open_many(a.port, "room", 3, on_a)
    open_many(b.port, "room", 2, on_b)
    open_many(c.port, "room", 4, on_c)
    open_many(b.port, "side", 1, on_b)
    for _, n in ipairs({ a, b, c }) do
      wait_equal(9, function() return count(n.port, "room") end, "room seen from port " .. n.port)
      wait_equal(1, function() return listing(n.port).side end, "side in channels()")
    end
    assert.equal(9, listing(a.port).room)
    -- c stops gracefully: its part goes with it.
    c:stop()
    for _, x in ipairs(on_c) do x:close() end
    wait_equal(5, function() return count(a.port, "room") end, "after c stopped")
    -- b dies: a counts its part until the TTL (5 s) ends, then not.
    b:signal("KILL")
    for _, x in ipairs(on_b) do x:close() end
    wait_equal(3, function() return count(a.port, "room") end, "after b was killed")
    assert.is_nil(listing(a.port).side)
    for _, x in ipairs(on_a) do x:close() end
  end)

  it("Redis gone: nil, \"redis: ...\", and the node keeps serving streams", function()
    local a = node(1)
    local s = e2e.open(a.port, "/sse/room/alone/")
    wait_equal(1, function() return count(a.port, "alone") end, "before Redis stops")
    redis:stop()
    local reply = e2e.eventually(function()
      local r = get_json(a.port, "/count/alone/")
      return type(r.err) == "string" and r
    end, 15)
    assert.is_table(reply, "count() kept answering without Redis")
    assert.matches("^redis: ", reply.err)
    assert.matches("^redis: ", get_json(a.port, "/channels/").err)
    assert.truthy(a:wait_log("presence: redis: "), a:log())
    assert.is_true(a:alive())
    local other = e2e.open(a.port, "/sse/room/still/")
    other:close()
    s:close()
    redis:start()
  end)
end)
