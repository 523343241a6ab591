-- flosse.metrics: the Prometheus text of a snapshot (label escaping, the
-- families) and metrics_view's options; spec/e2e/metrics_spec.lua has the
-- counts on the wire.
local flosse = require "flosse"
local metrics = require "flosse.metrics"
local permissions = require "flosse.permissions"

-- A snapshot as metrics.snapshot returns it, with what a test changes.
local function snapshot(over)
  local s = {
    time = 100.5, uptime = 10.2504, start_time = 90.25, version = "0.1.0", workers = 2,
    connections = 3, streams = 2, streams_by_route = { wait = 2 },
    requests = { ["200"] = 5, ["404"] = 1 },
    events_sent = 7, bytes_sent = 900, publishes = 1, deliveries = 2, heartbeats = 0, slow_dropped = 0,
    reloads = { ok = 1, failed = 0 }, channels = 1, subscribers = 2,
    busiest = { { name = "room", subscribers = 2 } },
    lua_memory = { 1000, 2000 },
  }
  for k, v in pairs(over or {}) do s[k] = v end
  return s
end

describe("flosse.metrics", function()
  it("escapes label values as the text format says: backslash, double quote, newline", function()
    assert.equal([[a\\b]], metrics.escape_label([[a\b]]))
    assert.equal([[say \"hi\"]], metrics.escape_label([[say "hi"]]))
    assert.equal([[two\nlines]], metrics.escape_label("two\nlines"))
    assert.equal([[\\\"\n]], metrics.escape_label('\\"\n'))
    assert.equal("plain room/1 é", metrics.escape_label("plain room/1 é"))
  end)

  it("writes a channel name with quotes and backslashes as an escaped label", function()
    local text = metrics.prometheus(snapshot { busiest = { { name = 'we"ird\\na\nme', subscribers = 4 } } })
    assert.truthy(text:find('\nflosse_channel_subscribers{channel="we\\"ird\\\\na\\nme"} 4\n', 1, true), text)
  end)

  it("types every family once, totals first, labels sorted", function()
    local text = metrics.prometheus(snapshot())
    local types = {}
    for name, kind in text:gmatch("# TYPE (%S+) (%S+)") do
      assert.is_nil(types[name], name .. " typed twice")
      types[name] = kind
    end
    assert.equal("gauge", types.flosse_connections)
    assert.equal("gauge", types.flosse_streams)
    assert.equal("counter", types.flosse_requests_total)
    assert.equal("counter", types.flosse_events_sent_total)
    assert.equal("gauge", types.flosse_channel_subscribers)
    assert.is_nil(types.flosse_redis_up) -- no Redis in the snapshot
    assert.truthy(text:find('flosse_requests_total{status="200"} 5\nflosse_requests_total{status="404"} 1\n', 1, true))
    assert.truthy(text:find('flosse_streams 2\nflosse_streams{route="wait"} 2\n', 1, true))
    assert.truthy(text:find('flosse_lua_memory_bytes{worker="1"} 1000\nflosse_lua_memory_bytes{worker="2"} 2000\n',
      1, true))
    assert.truthy(text:find("\nflosse_uptime_seconds 10.25\n", 1, true))
  end)

  it("writes the Redis histogram with cumulative buckets and +Inf", function()
    local text = metrics.prometheus(snapshot { redis = {
      state = "up", links = { ["redis://127.0.0.1:6379/0"] = true },
      latency = { count = 3, sum = 0.0125, buckets = { { 0.001, 1 }, { 0.01, 3 } } },
    } })
    assert.truthy(text:find('flosse_redis_up{link="redis://127.0.0.1:6379/0"} 1\n', 1, true), text)
    assert.truthy(text:find('flosse_redis_command_duration_seconds_bucket{le="0.001"} 1\n'
      .. 'flosse_redis_command_duration_seconds_bucket{le="0.01"} 3\n'
      .. 'flosse_redis_command_duration_seconds_bucket{le="+Inf"} 3\n'
      .. "flosse_redis_command_duration_seconds_sum 0.0125\n"
      .. "flosse_redis_command_duration_seconds_count 3\n", 1, true), text)
  end)

  it("metrics_view needs permission_classes, and refuses unknown options and a bad busiest", function()
    assert.error_matches(function() flosse.metrics_view{} end, "permission_classes is required")
    assert.error_matches(function() flosse.metrics_view() end, "expected an options table")
    assert.error_matches(function() flosse.metrics_view{ permission_classes = {}, bogus = 1 } end,
      'unknown option "bogus"')
    assert.error_matches(function() flosse.metrics_view{ permission_classes = {}, busiest = -1 } end,
      "busiest must be an integer")
    local view = flosse.metrics_view{ permission_classes = { permissions.IsAdminUser } }
    assert.equal("plain", view.kind)
    assert.same({ GET = true, HEAD = true }, view.methods)
    assert.same({ permissions.IsAdminUser }, view.permission_classes)
  end)
end)
