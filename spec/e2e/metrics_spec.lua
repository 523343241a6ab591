-- flosse.metrics_view{} (issue 14): the Prometheus text format of the
-- core's counters, summed over both workers (--workers 2), checked value by
-- value between two scrapes and by promtool (Debian's prometheus package).
local e2e = require "spec.helper"

local FIXTURE = "spec/fixtures/metrics"
local TOKEN = { "Authorization: Bearer metrics-token" }

-- GET /metrics: the response and its samples, "name" or 'name{label="v"}' -> number.
local function scrape(port)
  local resp = e2e.get(port, "/metrics", TOKEN)
  assert.equal(200, resp.status, resp.raw)
  local samples = {}
  for line in resp.body:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local key, value = line:match("^(.-) (%S+)$")
      assert(key, "not a sample line: " .. line)
      samples[key] = tonumber(value)
    end
  end
  return samples, resp
end

local function value(port, key) return scrape(port)[key] end

-- Polls until the sample key reads want; asserts it does (with what it read).
local function wait_value(port, key, want)
  local last
  e2e.eventually(function()
    last = value(port, key)
    return last == want
  end)
  assert.equal(want, last, key)
end

local function promtool(text)
  local file = os.tmpname()
  e2e.write_file(file, text)
  local p = assert(io.popen("promtool check metrics < " .. e2e.shell_quote(file) .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  os.remove(file)
  return ok and code or code, out
end

local function url_escape(s)
  return (s:gsub("[^%w%-_%.~]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end

-- Reads chunks until the stream has sent text (bounded).
local function read_event(c, text)
  local buf = ""
  repeat
    local chunk, err = c:read_chunk()
    assert(chunk, ("no %q on the stream: %s"):format(text, tostring(err)))
    buf = buf .. chunk
  until buf:find(text, 1, true)
  return buf
end

describe("#e2e metrics view, two workers", function()
  local app, server
  setup(function()
    -- A copy: the reload test rewrites its urls.lua.
    app = e2e.copy_app(FIXTURE)
    server = e2e.start(app, { workers = 2, args = { "--no-reload" } })
  end)
  teardown(function()
    if server then server:cleanup() end
    if app then e2e.remove_tree(app) end
  end)

  it("refuses without the token (403), answers HEAD with no body, and is text/plain 0.0.4", function()
    assert.equal(403, e2e.get(server.port, "/metrics").status)
    local resp = e2e.get(server.port, "/metrics", TOKEN)
    assert.equal(200, resp.status)
    assert.equal("text/plain; version=0.0.4; charset=utf-8", resp.headers["content-type"])
    assert.equal("no-store", resp.headers["cache-control"])
    local head = e2e.request(server.port, "HEAD", "/metrics", TOKEN)
    assert.equal(200, head.status)
    assert.equal("", head.body)
    assert.equal("text/plain; version=0.0.4; charset=utf-8", head.headers["content-type"])
    assert.equal(405, e2e.post(server.port, "/metrics", "", TOKEN).status)
  end)

  it("counts streams by route, responses by status, events and bytes across both workers", function()
    -- Nothing else is open: the gauges start from what this test holds.
    wait_value(server.port, "flosse_streams", 0)
    local before = scrape(server.port)
    local streams = {}
    for i = 1, 4 do
      streams[i] = e2e.open(server.port, "/sse/wait/")
      read_event(streams[i], "data: ready\n")
    end
    for _ = 1, 3 do assert.equal(200, e2e.get(server.port, "/hello/").status) end
    for _ = 1, 2 do assert.equal(404, e2e.get(server.port, "/nope/").status) end
    assert.equal(403, e2e.get(server.port, "/private/").status)
    wait_value(server.port, "flosse_connections", 5) -- the 4 streams and the scrape's own
    local after = scrape(server.port)
    assert.equal(4, after["flosse_streams"])
    assert.equal(4, after['flosse_streams{route="wait"}'])
    assert.equal(0, after['flosse_streams{route="beat"}'] or 0)
    local function delta(k) return (after[k] or 0) - (before[k] or 0) end
    -- The 200s between: 3 hellos, 4 streams, the first scrape and each wait_value poll.
    assert.is_true(delta('flosse_requests_total{status="200"}') >= 8)
    assert.equal(2, delta('flosse_requests_total{status="404"}'))
    assert.equal(1, delta('flosse_requests_total{status="403"}'))
    assert.equal(4, delta("flosse_events_sent_total"))
    assert.is_true(after['flosse_lua_memory_bytes{worker="1"}'] > 0)
    assert.is_true(after['flosse_lua_memory_bytes{worker="2"}'] > 0)
    assert.is_nil(after['flosse_lua_memory_bytes{worker="3"}'])
    assert.equal(2, after["flosse_workers"])
    for _, c in ipairs(streams) do c:close() end
    wait_value(server.port, "flosse_streams", 0)
    wait_value(server.port, 'flosse_streams{route="wait"}', 0)
    wait_value(server.port, "flosse_connections", 1)
    -- Exact bytes: what a scrape and three hellos were sent (a snapshot is
    -- taken before its own answer is written). A client may read bytes
    -- before their writer has counted them, so a scrape can miss the last
    -- answer's: measured again until the pair is clean (never less).
    local got, sent
    assert(e2e.eventually(function()
      local b1, r1 = scrape(server.port)
      sent = #r1.raw + #r1.body
      for _ = 1, 3 do
        local r = e2e.get(server.port, "/hello/")
        sent = sent + #r.raw + #r.body
      end
      got = scrape(server.port)["flosse_bytes_sent_total"] - b1["flosse_bytes_sent_total"]
      assert.is_true(got >= sent, "bytes counted: " .. got .. ", sent: " .. sent)
      return got == sent
    end), ("bytes counted: %d, sent: %d"):format(got, sent))
  end)

  it("counts channels, subscribers (the busiest 3 by name), publishes, deliveries, a dropped subscriber", function()
    local weird = 'we"ird\\name'
    local plan = { [weird] = 3, b = 2, c = 1, d = 1 }
    local clients = {}
    for name, n in pairs(plan) do
      for _ = 1, n do
        local c = e2e.open(server.port, "/sse/sub/?name=" .. url_escape(name))
        read_event(c, "data: subscribed\n")
        clients[#clients + 1] = { c = c, name = name }
      end
    end
    local stuck = e2e.open(server.port, "/sse/stuck/?name=slow")
    read_event(stuck, "data: subscribed\n")
    local before = scrape(server.port)
    assert.equal(5, before["flosse_channels"])
    assert.equal(8, before["flosse_channel_subscribers"])
    assert.equal(3, before['flosse_channel_subscribers{channel="we\\"ird\\\\name"}'])
    assert.equal(2, before['flosse_channel_subscribers{channel="b"}'])
    -- c and d tie: the first by name is kept, and only 3 are listed.
    assert.equal(1, before['flosse_channel_subscribers{channel="c"}'])
    assert.is_nil(before['flosse_channel_subscribers{channel="d"}'])
    assert.is_nil(before['flosse_channel_subscribers{channel="slow"}'])
    assert.equal(200, e2e.post(server.port, "/publish/?name=" .. url_escape(weird) .. "&n=1", "").status)
    assert.equal(200, e2e.post(server.port, "/publish/?name=b&n=2", "").status)
    -- channel_backlog is 4: the fifth message overflows the stuck subscriber.
    assert.equal(200, e2e.post(server.port, "/publish/?name=slow&n=5", "").status)
    for _, cl in ipairs(clients) do
      if cl.name == weird or cl.name == "b" then read_event(cl.c, "event: msg\n") end
    end
    stuck:wait_closed()
    local after = scrape(server.port)
    local function delta(k) return after[k] - before[k] end
    assert.equal(8, delta("flosse_publishes_total"))
    -- 3 + 2 * 2 to the relays, 4 queued to the stuck one before its backlog was full.
    assert.equal(11, delta("flosse_deliveries_total"))
    assert.equal(1, delta("flosse_slow_subscribers_dropped_total"))
    for _, cl in ipairs(clients) do cl.c:close() end
    wait_value(server.port, "flosse_channel_subscribers", 0)
  end)

  it("counts heartbeats", function()
    local before = value(server.port, "flosse_heartbeats_total")
    local c = e2e.open(server.port, "/sse/beat/")
    read_event(c, "data: ready\n")
    assert(c:read_until(":", 5), "no heartbeat")
    c:close() -- the next one would be a second later
    wait_value(server.port, "flosse_streams", 0)
    assert.equal(before + 1, value(server.port, "flosse_heartbeats_total"))
  end)

  it("counts reloads, ok and failed (SIGHUP)", function()
    local urls = app .. "/urls.lua"
    local good = e2e.read_file(urls)
    e2e.write_file(urls, "return {")
    server:signal("HUP")
    wait_value(server.port, 'flosse_reloads_total{result="failed"}', 1)
    assert.equal(0, value(server.port, 'flosse_reloads_total{result="ok"}'))
    e2e.write_file(urls, good)
    server:signal("HUP")
    wait_value(server.port, 'flosse_reloads_total{result="ok"}', 1)
    assert.equal(1, value(server.port, 'flosse_reloads_total{result="failed"}'))
  end)

  it("passes promtool check metrics, with every family typed, build info and uptime", function()
    local c = e2e.open(server.port, "/sse/sub/?name=" .. url_escape('q"uote\\d'))
    read_event(c, "data: subscribed\n")
    local samples, resp = scrape(server.port)
    local code, out = promtool(resp.body)
    assert.equal(0, code, out)
    assert.equal("", out)
    assert.equal(1, samples['flosse_build_info{version="0.1.0"}'])
    assert.is_true(samples["flosse_uptime_seconds"] > 0)
    assert.is_true(math.abs(samples["flosse_start_time_seconds"] + samples["flosse_uptime_seconds"] - os.time()) < 5)
    for _, name in ipairs { "flosse_connections", "flosse_streams", "flosse_channel_subscribers", "flosse_channels" } do
      assert.truthy(resp.body:find("\n# TYPE " .. name .. " gauge\n", 1, true), name)
    end
    for _, name in ipairs { "flosse_requests_total", "flosse_events_sent_total", "flosse_bytes_sent_total" } do
      assert.truthy(resp.body:find("\n# TYPE " .. name .. " counter\n", 1, true), name)
    end
    assert.is_nil(resp.body:find("flosse_redis", 1, true)) -- no Redis configured
    c:close()
  end)
end)

describe("#e2e metrics view with Redis", function()
  local redis, server
  setup(function()
    redis = e2e.start_redis()
    server = e2e.start(FIXTURE, { workers = 2, env = { FLOSSE_METRICS_REDIS = redis.url } })
  end)
  teardown(function()
    if server then server:cleanup() end
    if redis then redis:cleanup() end
  end)

  it("shows the link up, then down, and the round trips of flosse.redis() calls", function()
    local link = 'flosse_redis_up{link="' .. redis.url .. '"}'
    wait_value(server.port, link, 1)
    local before = scrape(server.port)
    for _ = 1, 3 do assert.equal("PONG\n", e2e.get(server.port, "/ping/").body) end
    local samples, resp = scrape(server.port)
    local count = "flosse_redis_command_duration_seconds_count"
    assert.equal(3, samples[count] - before[count])
    assert.equal(samples[count], samples['flosse_redis_command_duration_seconds_bucket{le="+Inf"}'])
    assert.is_true(samples["flosse_redis_command_duration_seconds_sum"] >= 0)
    local code, out = promtool(resp.body)
    assert.equal(0, code, out)
    assert.equal("", out)
    redis:stop()
    wait_value(server.port, link, 0)
  end)
end)

describe("#e2e metrics view's options", function()
  it("fails the load without permission_classes, naming them", function()
    local app = e2e.tempdir()
    e2e.write_file(app .. "/urls.lua",
      'local flosse = require "flosse"\nreturn { flosse.urls.path("m", flosse.metrics_view{}) }\n')
    local code, out, err = e2e.run_serve(app, { "--port", "0" }, { timeout = 20 })
    e2e.remove_tree(app)
    out = out .. err
    assert.are_not.equal(0, code)
    assert.truthy(out:find("metrics_view: permission_classes is required", 1, true), out)
  end)
end)
