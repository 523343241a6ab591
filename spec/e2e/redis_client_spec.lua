-- The Redis client of Lua (issue 12): flosse.redis():call / :pipeline from
-- views, permission classes and background tasks, against a real
-- redis-server of the spec's own (spec/e2e/helper/redis.lua): replies,
-- errors, concurrency, Redis down at start, killed and restarted, slow
-- (timeouts), and a client that leaves while its call is pending.
local e2e = require "spec.helper"

local FIXTURE = "spec/fixtures/redis_client"

local function urlencode(s)
  return (s:gsub("[^%w%-_%.]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- GET path on port; the decoded JSON body.
local function get_json(port, target)
  local resp = e2e.get(port, target)
  assert.equal(200, resp.status, resp.body)
  return e2e.json_decode(resp.body)
end

-- One r:call of the words of q through the /call/ view.
local function call(port, q)
  return get_json(port, "/call/?q=" .. urlencode(q))
end

-- Starts the fixture (opts.dir: a copy of it) with Redis at redis (nil:
-- none; opts.url: that URL instead), opts.timeout, opts.pool, opts.quiet
-- (no ticker task), opts.blocker (a task always waiting on Redis),
-- opts.workers, opts.args.
local function start(redis, opts)
  opts = opts or {}
  local env = { FLOSSE_TEST_REDIS = opts.url or (redis and redis.url) or false,
    FLOSSE_TEST_REDIS_TIMEOUT = opts.timeout or false, FLOSSE_TEST_REDIS_QUIET = opts.quiet or false,
    FLOSSE_TEST_REDIS_POOL = opts.pool or false, FLOSSE_TEST_REDIS_BLOCKER = opts.blocker or false }
  return e2e.start(opts.dir or FIXTURE, { env = env, args = opts.args, workers = opts.workers })
end

local function count(s, plain)
  local n, from = 0, 1
  while true do
    local i, j = s:find(plain, from, true)
    if not i then return n end
    n, from = n + 1, j + 1
  end
end

describe("#e2e redis client", function()
  local redis, server

  setup(function()
    redis = e2e.start_redis()
    server = start(redis)
  end)

  teardown(function()
    if server then server:cleanup() end
    if redis then redis:cleanup() end
  end)

  before_each(function() redis:flush() end)

  it("r:call answers integers, bulk and status strings, null and arrays as documented", function()
    local r = call(server.port, "INCR visits")
    assert.same({ type = "number", v = 1 }, r)
    assert.equal("2", redis:cli("INCR", "visits"))
    assert.same({ type = "number", v = 3 }, call(server.port, "INCR visits"))
    assert.same({ type = "string", v = "OK" }, call(server.port, "SET greeting hello"))
    assert.same({ type = "string", v = "hello" }, call(server.port, "GET greeting"))
    assert.same({ type = "nil" }, call(server.port, "GET missing"))  -- a top-level null is nil
    redis:cli("RPUSH", "l", "a", "b")
    assert.same({ type = "table", v = { "a", "b" } }, call(server.port, "LRANGE l 0 -1"))
    -- Nested arrays, and a null inside an array is false.
    redis:cli("SET", "k1", "v1")
    assert.same({ type = "table", v = { "v1", false } }, call(server.port, "MGET k1 nokey"))
    local scan = call(server.port, "SCAN 0 MATCH k1")
    assert.equal("table", scan.type)
    assert.same({ "k1" }, scan.v[2])
  end)

  it("an error reply is nil, its text; it never raises", function()
    local r = call(server.port, "NOSUCHCOMMAND a")
    assert.equal("nil", r.type)
    assert.matches("^ERR unknown command", r.err)
    redis:cli("SET", "s", "text")
    r = call(server.port, "INCR s")
    assert.equal("nil", r.type)
    assert.matches("not an integer", r.err)
  end)

  it("integers and floats go as numbers (%.17g); other arguments are refused with a clear error", function()
    local r = get_json(server.port, "/numbers/")
    assert.equal("42", r.i)
    assert.equal(0.1, tonumber(r.f))
    assert.equal("0.10000000000000001", r.f)
    assert.equal(50, r.incr)
    assert.matches("a Redis argument must be a string or a number, not table", r.refused)
  end)

  it("r:pipeline sends the commands in one go and answers a table: null false, an error {false, text}", function()
    local r = get_json(server.port, "/pipeline/")
    assert.equal("table", r.type)
    assert.equal(6, #r.v)
    assert.equal("OK", r.v[1])
    assert.equal(2, r.v[2])
    assert.equal(false, r.v[3])
    assert.equal(1, r.v[4])
    assert.equal(2, r.v[5])
    assert.same({ "x", "y" }, r.v[6])
    redis:cli("SET", "p:list", "not a number")
    r = get_json(server.port, "/pipeline/")
    assert.equal(false, r.v[4][1])
    assert.matches("not an integer", r.v[4][2])
  end)

  it("works from a stream view", function()
    local c = e2e.open(server.port, "/stream/s1/")
    for i = 1, 5 do
      local ev = assert(c:read_event())
      assert.equal("n", ev.event)
      assert.same({ n = i }, e2e.json_decode(ev.data))
    end
    c:close()
    assert.equal("5", redis:cli("GET", "s1"))
  end)

  it("works in a permission class (it runs in the view's task)", function()
    local c, head = e2e.open_stream(server.port, "/guarded/")
    assert.equal(403, head.status)
    c:close()
    redis:cli("SET", "allow", "yes")
    c = e2e.open(server.port, "/guarded/")
    local ev = assert(c:read_event())
    assert.equal("in", ev.event)
    c:close()
  end)

  it("works in a background task (flosse.every writes a key)", function()
    local n = e2e.eventually(function()
      local v = tonumber(redis:cli("GET", "bg:ticks"))
      return v and v >= 3 and v
    end)
    assert.truthy(n, "bg:ticks: " .. redis:cli("GET", "bg:ticks"))
  end)

  it("says where it cannot wait, and refuses a bad URL", function()
    local r = get_json(server.port, "/misuse/")
    assert.matches("must be called from a view, a permission or authentication class, or a task", r.in_coroutine)
    assert.matches("cannot wait here", r.in_sort)
    assert.matches("bad Redis URL 'http://example.com/'", r.bad_url)
  end)

  it("many views call at once while a stream keeps flowing: it never blocks the server", function()
    local ticks = e2e.open(server.port, "/ticks/")
    assert(ticks:read_event())
    -- 30 clients, each 20 INCRs of one key, all in flight together.
    local clients = {}
    for i = 1, 30 do
      local c = e2e.connect(server.port)
      assert(c:send(e2e.request_bytes("GET", "/incr/many/20/")))
      clients[i] = c
    end
    -- And one that waits 1 s inside Redis (BLPOP on its own connection).
    local blocked = e2e.connect(server.port)
    assert(blocked:send(e2e.request_bytes("GET", "/call/?q=" .. urlencode("BLPOP nothing 1"))))
    local t0 = e2e.now()
    -- Meanwhile: the ticks go on and a plain view answers at once.
    local n = 0
    while e2e.now() - t0 < 0.6 do
      if ticks:read_event(1) then n = n + 1 end
    end
    assert.is_true(n >= 5, "ticks while the views waited: " .. n)
    local t1 = e2e.now()
    assert.equal("hello\n", e2e.get(server.port, "/hello/").body)
    assert.is_true(e2e.now() - t1 < 0.5)
    for _, c in ipairs(clients) do
      local resp = assert(c:read_response())
      assert.equal(200, resp.status)
      assert.equal("number", e2e.json_decode(resp.body).type, resp.body)
      c:close()
    end
    assert.equal("600", redis:cli("GET", "many"))
    local resp = assert(blocked:read_response())
    blocked:close()
    assert.same({ type = "nil" }, e2e.json_decode(resp.body))
    assert.is_true(e2e.now() - t0 >= 0.9, "BLPOP 1 answered after " .. (e2e.now() - t0))
    ticks:close()
  end)

  it("a client that leaves while its call is pending: the call is dropped, the server goes on", function()
    for _ = 1, 5 do
      local c = e2e.open(server.port, "/hold/1/")
      assert.equal("waiting", assert(c:read_event()).event)
      c:close()
    end
    e2e.sleep(1.3) -- the BLPOPs' answers come to cancelled calls
    assert.is_true(server:alive())
    assert.same({ type = "string", v = "PONG" }, call(server.port, "PING"))
    local c = e2e.open(server.port, "/hold/1/")
    assert.equal("waiting", assert(c:read_event()).event)
    local ev = assert(c:read_event(3))
    assert.equal("done", ev.event)
    assert.same({ type = "nil" }, e2e.json_decode(ev.data))
    c:close()
  end)

  it("Redis killed mid-run: calls return nil, err; once restarted they work again", function()
    assert.same({ type = "string", v = "PONG" }, call(server.port, "PING"))
    redis:kill()
    local r = call(server.port, "PING")
    assert.equal("nil", r.type)
    assert.truthy(r.err == "connection lost" or r.err:match("^not connected %("), r.err)
    r = call(server.port, "PING")
    assert.matches("^not connected %(", r.err or "")
    assert(server:wait_log("redis " .. redis.url .. ": connection lost"))
    redis:start()
    local t0 = e2e.now()
    local back = e2e.eventually(function()
      return call(server.port, "PING").v == "PONG"
    end, 5)
    assert.truthy(back, "no PONG within 5 s of the restart")
    assert.is_true(e2e.now() - t0 < 3, "back after " .. (e2e.now() - t0) .. " s")
    local log = assert(server:wait_log("redis " .. redis.url .. ": connected again"))
    assert.equal(1, count(log, "redis " .. redis.url .. ": connection lost"), log)
  end)
end)

describe("#e2e redis client: Redis down at start", function()
  local redis, server

  setup(function()
    redis = e2e.start_redis { started = false }
    server = start(redis)
  end)

  teardown(function()
    if server then server:cleanup() end
    if redis then redis:cleanup() end
  end)

  it("the server starts; calls say why; one log line; then Redis comes up and calls work", function()
    local r = call(server.port, "PING")
    assert.equal("nil", r.type)
    assert.equal("not connected (Connection refused)", r.err)
    assert.equal("hello\n", e2e.get(server.port, "/hello/").body)
    local line = "flosse: redis " .. redis.url .. ": cannot connect (Connection refused); retrying every 1 s"
    assert(server:wait_log(line))
    e2e.sleep(2.5) -- a few retries: still the one line
    assert.equal(1, count(server:log(), line))
    redis:start()
    local t0 = e2e.now()
    assert.truthy(e2e.eventually(function() return call(server.port, "PING").v == "PONG" end, 5))
    -- Retries at most 1 s apart (with room for a slow machine).
    assert.is_true(e2e.now() - t0 < 2.5, "back after " .. (e2e.now() - t0) .. " s")
    assert(server:wait_log("flosse: redis " .. redis.url .. ": connected again"))
  end)
end)

describe("#e2e redis client: timeouts", function()
  local redis, server

  setup(function()
    redis = e2e.start_redis()
    server = start(redis, { timeout = 0.5, quiet = 1 })
  end)

  teardown(function()
    if server then server:cleanup() end
    if redis then redis:cleanup() end
  end)

  it("a command with no answer in time gets nil, \"timeout\"; the server stays responsive", function()
    assert.same({ type = "string", v = "PONG" }, call(server.port, "PING"))
    -- Redis busy for 2 s (its own client, in the background).
    os.execute("redis-cli -h 127.0.0.1 -p " .. redis.port .. " DEBUG SLEEP 2 >/dev/null 2>&1 &")
    e2e.sleep(0.2)
    local t0 = e2e.now()
    local r = call(server.port, "PING")
    local took = e2e.now() - t0
    assert.same({ type = "nil", err = "timeout" }, r)
    assert.is_true(took >= 0.4 and took < 1.5, "timed out after " .. took .. " s")
    local t1 = e2e.now()
    assert.equal("hello\n", e2e.get(server.port, "/hello/").body)
    assert.is_true(e2e.now() - t1 < 0.5)
    -- Once Redis answers again, so do calls.
    assert.truthy(e2e.eventually(function() return call(server.port, "PING").v == "PONG" end, 5))
  end)
end)

describe("#e2e redis client: not configured", function()
  local server = e2e.serve(setup, teardown, FIXTURE, { env = { FLOSSE_TEST_REDIS = false } })

  it("flosse.redis() raises a clear error naming the setting", function()
    local r = get_json(server.port, "/unconfigured/")
    assert.is_false(r.ok)
    assert.matches("no Redis is configured", r.err)
    assert.matches("redis = ", r.err, 1, true)
    assert.matches("--redis URL", r.err, 1, true)
  end)
end)

describe("#e2e redis settings", function()
  it("a bad --redis URL: one clear line and exit 2", function()
    local code, _, err = e2e.run_serve(FIXTURE, { "--port", "0", "--redis", "http://nope" })
    assert.equal(2, code)
    assert.matches("bad Redis URL 'http://nope'", err, 1, true)
  end)

  it("serve --help lists --redis", function()
    local code, out = e2e.run_flosse { "serve", "--help" }
    assert.equal(0, code)
    assert.matches("--redis URL", out, 1, true)
  end)
end)

describe("#e2e redis client: AUTH, SELECT and unix sockets", function()
  local redis

  setup(function() redis = e2e.start_redis { password = "s3cret" } end)
  teardown(function() if redis then redis:cleanup() end end)

  it("sends AUTH and SELECT before a connection counts as up; the log shows no password", function()
    local url = "redis://:s3cret@127.0.0.1:" .. redis.port .. "/3"
    local server = start(nil, { url = url })
    assert.same({ type = "string", v = "OK" }, call(server.port, "SET where db3"))
    assert.equal("db3", redis:cli("-n", "3", "GET", "where"))
    assert.equal("", redis:cli("-n", "0", "GET", "where"))
    local log = server:log()
    server:cleanup()
    assert.matches("redis redis://:...@127.0.0.1:" .. redis.port .. "/3", log, 1, true)
    assert.is_nil(log:find("s3cret", 1, true))
  end)

  it("a wrong password: calls fail with Redis' reason, one log line, no password in it", function()
    local server = start(nil, { url = "redis://:wrongpw@127.0.0.1:" .. redis.port .. "/0" })
    local r = call(server.port, "PING")
    assert.equal("nil", r.type)
    assert.matches("^not connected %(WRONGPASS", r.err)
    local log = assert(server:wait_log(": cannot connect (WRONGPASS"))
    server:cleanup()
    assert.is_nil(log:find("wrongpw", 1, true))
  end)

  it("connects to a unix socket, with ?db=N", function()
    local plain = e2e.start_redis { unixsocket = true }
    local server = start(nil, { url = "unix://" .. plain.socket .. "?db=2" })
    assert.same({ type = "number", v = 1 }, call(server.port, "INCR over:unix"))
    server:cleanup()
    assert.equal("1", plain:cli("-n", "2", "GET", "over:unix"))
    plain:cleanup()
  end)
end)

describe("#e2e redis client: workers and the pool", function()
  local redis, server

  setup(function()
    redis = e2e.start_redis()
    server = start(redis, { workers = 2, pool = 2, quiet = 1 })
  end)

  teardown(function()
    if server then server:cleanup() end
    if redis then redis:cleanup() end
  end)

  it("every worker calls Redis; each keeps at most `pool` connections", function()
    local clients = {}
    for i = 1, 40 do
      local c = e2e.connect(server.port)
      assert(c:send(e2e.request_bytes("GET", "/incr/pooled/10/")))
      clients[i] = c
    end
    for _, c in ipairs(clients) do
      local resp = assert(c:read_response())
      assert.equal("number", e2e.json_decode(resp.body).type, resp.body)
      c:close()
    end
    assert.equal("400", redis:cli("GET", "pooled"))
    -- CLIENT LIST: one line per connection, this redis-cli's own included,
    -- the node's channel link (two, named flosse-channels*), its
    -- revocations' (two, named flosse-revocations) and its presence writer
    -- (one, named flosse-presence).
    local n = -1
    for _, line in ipairs(e2e.lines(redis:cli("CLIENT", "LIST"))) do
      if not line:find("name=flosse-channels", 1, true) and not line:find("name=flosse-revocations", 1, true)
          and not line:find("name=flosse-presence", 1, true) then
        n = n + 1
      end
    end
    assert.is_true(n >= 1 and n <= 4, "connections: " .. n)
  end)
end)

describe("#e2e redis client: reloads and shutdown cancel calls in flight", function()
  local redis

  setup(function() redis = e2e.start_redis() end)
  teardown(function() if redis then redis:cleanup() end end)

  it("a reload cancels a task waiting on Redis, and says the redis setting did not change", function()
    local dir, tmp = e2e.copy_app(FIXTURE)
    local server = start(redis, { dir = dir, blocker = 1, timeout = 5, quiet = 1 })
    assert.truthy(e2e.eventually(function() return redis:cli("GET", "blocker:calls") == "1" end))
    -- The same app with another prefix: reloaded, the task cancelled mid-BLPOP.
    local settings = e2e.read_file(dir .. "/settings.lua")
    e2e.write_file(dir .. "/settings.lua", (settings:gsub("heartbeat = 0,", "heartbeat = 0, -- changed")))
    assert(server:wait_log("reloaded"))
    assert.truthy(e2e.eventually(function() return redis:cli("GET", "blocker:calls") == "2" end))
    assert.is_nil(server:log():find("the redis setting changed", 1, true))
    local other = settings:gsub("timeout = tonumber", "prefix = \"other:\", timeout = tonumber")
    e2e.write_file(dir .. "/settings.lua", other)
    assert(server:wait_log("the redis setting changed: a reload does not change it"))
    assert.same({ type = "string", v = "PONG" }, call(server.port, "PING"))
    assert.is_true(server:alive())
    server:cleanup()
    e2e.remove_tree(tmp)
  end)

  it("a shutdown while views and tasks wait on Redis", function()
    local server = start(redis, { blocker = 1, timeout = 5, quiet = 1, args = { "--grace", "1" } })
    local c = e2e.open(server.port, "/hold/3/")
    assert.equal("waiting", assert(c:read_event()).event)
    server:signal("TERM")
    assert.truthy(e2e.eventually(function() return not server:alive() end, 8), "still running")
    c:close()
    local log = server:log()
    server:cleanup()
    assert.is_nil(log:find("error while closing", 1, true), log)
  end)
end)

describe("#e2e redis settings: flosse check", function()
  it("reports a bad redis setting and exits 2; serve refuses it too", function()
    local dir, tmp = e2e.copy_app(FIXTURE)
    e2e.write_file(dir .. "/settings.lua", 'return { redis = { url = "redis://h/x" } }')
    local code, _, err = e2e.run_flosse { "check", dir }
    assert.equal(2, code)
    assert.matches("redis: bad Redis URL 'redis://h/x': the path must be /DB", err, 1, true)
    code, _, err = e2e.run_serve(dir, { "--port", "0" })
    assert.equal(2, code)
    assert.matches("bad Redis URL 'redis://h/x'", err, 1, true)
    e2e.write_file(dir .. "/settings.lua", 'return { redis = { url = "redis://h/1", pool = 0 } }')
    code, _, err = e2e.run_flosse { "check", dir }
    assert.equal(2, code)
    assert.matches("pool must be an integer from 1 to 64", err, 1, true)
    e2e.write_file(dir .. "/settings.lua", 'return { redis = 42 }')
    code, _, err = e2e.run_flosse { "check", dir }
    assert.equal(2, code)
    assert.matches("redis: must be a URL", err, 1, true)
    e2e.remove_tree(tmp)
  end)
end)
