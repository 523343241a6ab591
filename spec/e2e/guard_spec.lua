-- End to end: what ends a stream before its view does (issue 13):
-- a credential's expiry (`event: flosse-expired`), flosse.revoke
-- (`event: flosse-revoked`, on every worker, and new streams refused for
-- `seconds`), and the per-client caps max_streams_per_ip and
-- max_streams_per_user (429 and Retry-After, counted across workers).
-- Tokens are minted outside flosse (spec/tools/jwt_mint.py).
local e2e = require "e2e"
local socket = require "socket"
local permissions = require "flosse.permissions"

local APP = "spec/fixtures/guard"
local SECRET = "guard-secret-" .. tostring(os.time())

local function bearer(claims)
  return { "Authorization: Bearer " .. e2e.jwt_mint("HS256", {}, claims, SECRET) }
end

-- Pumps c until its stream ended (the terminator arrived) or it closed.
local function until_ended(c, timeout)
  return e2e.pump({ c }, function() return c.stream_ended or c.stream_closed end, timeout or 15)
end

local function last_frame(c)
  local f = c:frames()
  return f[#f]
end

local EXPIRED = 'event: flosse-expired\ndata: {"reason":"expired"}'
local REVOKED = 'event: flosse-revoked\ndata: {"reason":"revoked"}'

local function json_get(port, target)
  local resp = e2e.get(port, target)
  assert.equal(200, resp.status, resp.body)
  return e2e.json_decode(resp.body)
end

describe("#e2e credentials that expire on open streams", function()
  local server = e2e.serve(setup, teardown, APP, { env = { FLOSSE_JWT_SECRET = SECRET } })

  it("a JWT stream ends at exp with flosse-expired (no id), the terminator, close handlers run", function()
    local exp = os.time() + 4 -- room for a slow server (valgrind) to take it first
    local c = e2e.open(server.port, "/feed/?who=jwt-exp", bearer { sub = "carol", exp = exp })
    assert.is_true(until_ended(c), c:show())
    assert.is_true(c.stream_ended, "the stream ended with its terminator: " .. c:show())
    assert.equal("0\r\n\r\n", c.stream_terminator)
    assert.equal(EXPIRED, last_frame(c))
    assert.is_nil(last_frame(c):find("\nid:", 1, true))
    assert.is_true(socket.gettime() >= exp, ("not before exp: ended at %.3f, exp %d"):format(socket.gettime(), exp))
    local ticks = 0
    for _, ev in ipairs(c:events()) do if ev.event == "tick" then ticks = ticks + 1 end end
    assert.is_true(ticks >= 2, "it streamed until then: " .. c:show())
    c:close()
    assert.truthy(e2e.eventually(function()
      local closed = json_get(server.port, "/closed/")
      return closed["jwt-exp"] == 1 and closed["jwt-exp:tbc"] == true
    end), "on_close and the to-be-closed variable ran")
  end)

  it("a reconnect with the expired token meets the permission check: 403", function()
    local h = bearer { sub = "carol", exp = os.time() - 1 }
    local resp = e2e.get(server.port, "/feed/", h)
    assert.equal(403, resp.status)
    assert.equal(permissions.IsAuthenticated.message, resp.body)
  end)

  it("a token-table user's expires_at ends a relayed stream too", function()
    local c = e2e.open(server.port, "/relay/expiring/", { "Authorization: Bearer brief-2" })
    local pub = e2e.post(server.port, "/publish/expiring/", "one")
    assert.equal(200, pub.status, pub.body)
    assert.is_true(until_ended(c), c:show())
    assert.is_true(c.stream_ended, c:show())
    local frames = c:frames()
    assert.equal(EXPIRED, frames[#frames])
    assert.matches("data: one", table.concat(frames, "\n"))
    c:close()
  end)

  it("a token without exp is not ended", function()
    local c = e2e.open(server.port, "/feed/", bearer { sub = "dave" })
    e2e.pump({ c }, nil, 1.5)
    assert.is_false(c.stream_ended or c.stream_closed or false)
    assert.is_nil(c:show():find("flosse-expired", 1, true))
    c:close()
  end)
end)

describe("#e2e flosse.revoke", function()
  local server = e2e.serve(setup, teardown, APP, { workers = 2, env = { FLOSSE_JWT_SECRET = SECRET } })

  it("ends the user's streams on every worker with flosse-revoked, and only theirs", function()
    local alice, bob = {}, {}
    for i = 1, 6 do alice[i] = e2e.open(server.port, "/feed/", { "Authorization: Bearer alice" }) end
    for i = 1, 3 do bob[i] = e2e.open(server.port, "/feed/", { "Authorization: Bearer bob" }) end
    -- a JWT user whose sub is the same id as alice's: the same user
    alice[#alice + 1] = e2e.open(server.port, "/relay/news/", bearer { sub = "1" })
    local all = {}
    for _, c in ipairs(alice) do all[#all + 1] = c end
    for _, c in ipairs(bob) do all[#all + 1] = c end
    e2e.pump(all, nil, 0.5)
    assert.same({ ok = true }, json_get(server.port, "/revoke/?user=1"))
    assert.is_true(e2e.pump(alice, function()
      for _, c in ipairs(alice) do if not c.stream_ended then return false end end
      return true
    end, 15), "every stream of user 1 ended")
    for _, c in ipairs(alice) do assert.equal(REVOKED, last_frame(c)) end
    e2e.pump(bob, nil, 1)
    for _, c in ipairs(bob) do
      assert.is_false(c.stream_ended or c.stream_closed or false)
      assert.is_nil(c:show():find("flosse-revoked", 1, true))
    end
    for _, c in ipairs(all) do c:close() end
  end)

  it("seconds = 0 lets the user back at once; seconds = N refuses new streams (403) for N s", function()
    local c = e2e.open(server.port, "/feed/", { "Authorization: Bearer bob" })
    c:close()
    assert.same({ ok = true }, json_get(server.port, "/revoke/?user=bob&seconds=2"))
    local t0 = socket.gettime()
    for _ = 1, 4 do -- whichever worker takes it
      local resp = e2e.get(server.port, "/feed/", { "Authorization: Bearer bob" })
      assert.equal(403, resp.status)
      assert.equal(permissions.DEFAULT_MESSAGE, resp.body)
    end
    -- alice is not refused
    local a = e2e.open(server.port, "/feed/", { "Authorization: Bearer alice" })
    a:close()
    assert.truthy(e2e.eventually(function()
      local s, head = e2e.open_stream(server.port, "/feed/", { "Authorization: Bearer bob" })
      s:close()
      return head.status == 200
    end, 10), "bob is let back in once the seconds passed")
    assert.is_true(socket.gettime() - t0 >= 1.5, "not before")
  end)

  it("refuses a bad call", function()
    local resp = e2e.get(server.port, "/revoke/?user=")
    assert.equal(500, resp.status)
  end)
end)

describe("#e2e max_streams_per_ip and max_streams_per_user", function()
  local server = e2e.serve(setup, teardown, APP, {
    workers = 2,
    env = { FLOSSE_JWT_SECRET = SECRET, FLOSSE_GUARD_MAX_IP = "4", FLOSSE_GUARD_MAX_USER = "2" },
  })

  it("counts an address's streams across workers: 429 with Retry-After past the cap", function()
    local open = {}
    for i = 1, 4 do open[i] = e2e.open(server.port, "/open/") end
    assert.equal("4", e2e.get(server.port, "/count/?ip=127.0.0.1").body)
    for _ = 1, 3 do -- on whichever worker
      local resp = e2e.get(server.port, "/open/")
      assert.equal(429, resp.status)
      assert.equal("5", resp.headers["retry-after"])
    end
    -- ordinary requests are not streams: not capped
    assert.equal(200, e2e.get(server.port, "/closed/").status)
    open[1]:close()
    assert.truthy(e2e.eventually(function()
      return e2e.get(server.port, "/count/?ip=127.0.0.1").body == "3"
    end), "a closed stream frees its place")
    open[1] = e2e.open(server.port, "/open/")
    for _, c in ipairs(open) do c:close() end
    assert.truthy(e2e.eventually(function()
      return e2e.get(server.port, "/count/?ip=127.0.0.1").body == "0"
    end))
  end)

  it("counts a user's streams whatever the credential: 429 for the user, others go on", function()
    local a1 = e2e.open(server.port, "/feed/", { "Authorization: Bearer alice" })
    local a2 = e2e.open(server.port, "/relay/x/", bearer { sub = "1" })
    local resp = e2e.get(server.port, "/feed/", { "Authorization: Bearer alice" })
    assert.equal(429, resp.status)
    assert.equal("5", resp.headers["retry-after"])
    assert.matches("user", resp.body)
    local b = e2e.open(server.port, "/feed/", { "Authorization: Bearer bob" })
    a1:close()
    assert.truthy(e2e.eventually(function()
      return e2e.get(server.port, "/count/?user=1").body == "1"
    end))
    local a3 = e2e.open(server.port, "/feed/", { "Authorization: Bearer alice" })
    for _, c in ipairs { a2, a3, b } do c:close() end
  end)
end)

describe("#e2e flosse.revoke across nodes (Redis)", function()
  local redis
  local nodes = {}
  local function node(workers)
    local n = e2e.start(APP, { workers = workers,
      env = { FLOSSE_JWT_SECRET = SECRET, FLOSSE_GUARD_REDIS = redis.url } })
    nodes[#nodes + 1] = n
    return n
  end
  setup(function()
    redis = e2e.start_redis()
  end)
  teardown(function()
    for _, n in ipairs(nodes) do n:cleanup() end
    if redis then redis:cleanup() end
  end)

  -- Waits until a node's revocation link subscribed (CLIENT LIST names it).
  local function linked(count)
    return e2e.eventually(function()
      local n = 0
      for _ in redis:cli("CLIENT", "LIST"):gmatch("name=flosse%-revocations") do n = n + 1 end
      return n >= count
    end, 10)
  end

  it("a revoke on one node ends the user's streams on the others, and refuses them there for seconds", function()
    local a, b = node(2), node(1)
    assert.truthy(linked(2), redis:cli("CLIENT", "LIST"))
    local on_b = {}
    for i = 1, 3 do on_b[i] = e2e.open(b.port, "/feed/", { "Authorization: Bearer alice" }) end
    local bob = e2e.open(b.port, "/feed/", { "Authorization: Bearer bob" })
    local on_a = e2e.open(a.port, "/relay/r/", bearer { sub = "1" })
    assert.same({ ok = true }, json_get(a.port, "/revoke/?user=1&seconds=3"))
    local alice = { on_a, on_b[1], on_b[2], on_b[3] }
    assert.is_true(e2e.pump(alice, function()
      for _, c in ipairs(alice) do if not c.stream_ended then return false end end
      return true
    end, 15), "every stream of user 1 ended, on both nodes")
    for _, c in ipairs(alice) do assert.equal(REVOKED, last_frame(c)) end
    e2e.pump({ bob }, nil, 0.5)
    assert.is_false(bob.stream_ended or bob.stream_closed or false)
    local resp = e2e.get(b.port, "/feed/", { "Authorization: Bearer alice" })
    assert.equal(403, resp.status)
    -- a node that starts now learns the refusal still running from Redis
    local c = node(1)
    assert.truthy(linked(3))
    assert.truthy(e2e.eventually(function()
      return e2e.get(c.port, "/feed/", { "Authorization: Bearer alice" }, { timeout = 2 }).status == 403
    end, 2), "the new node refuses the revoked user")
    assert.truthy(e2e.eventually(function()
      local s, head = e2e.open_stream(b.port, "/feed/", { "Authorization: Bearer alice" })
      s:close()
      return head.status == 200
    end, 10), "let back in once the seconds passed")
    for _, x in ipairs(alice) do x:close() end
    bob:close()
  end)
end)

describe("#e2e max_streams_per_ip behind a trusted proxy", function()
  local server = e2e.serve(setup, teardown, APP, {
    env = { FLOSSE_JWT_SECRET = SECRET, FLOSSE_GUARD_MAX_IP = "1", FLOSSE_GUARD_TRUSTED = "127.0.0.1" },
  })

  it("counts the client the proxy names, not the proxy", function()
    local a = e2e.open(server.port, "/open/", { "X-Forwarded-For: 203.0.113.1" })
    local resp = e2e.get(server.port, "/open/", { "X-Forwarded-For: 203.0.113.1" })
    assert.equal(429, resp.status)
    local b = e2e.open(server.port, "/open/", { "X-Forwarded-For: 203.0.113.2" })
    assert.equal("1", e2e.get(server.port, "/count/?ip=203.0.113.1").body)
    assert.equal("0", e2e.get(server.port, "/count/?ip=127.0.0.1").body)
    a:close()
    b:close()
  end)
end)
