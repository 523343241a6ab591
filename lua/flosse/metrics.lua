--- flosse.metrics: the server's counters, as a table and as a Prometheus
-- text-format view (docs/metrics.md).
--
--   path("metrics", flosse.metrics_view{ permission_classes = { HasMetricsToken } }),
--
-- The counters live in C (core/metrics.c): each worker adds to its own;
-- a snapshot sums them over every worker of the process.
local core = require "flosse.core"
local response = require "flosse.response"
local builtin = require "flosse.builtin"

local metrics = {}

local VERSION = core.version

-- Late require: flosse (init.lua) requires this module.
local function flosse() return require "flosse" end

--- snapshot{ busiest = 10 } -> the table the status page and metrics_view read:
-- time, uptime, version, workers, connections, streams, streams_by_route,
-- requests (by status, as strings), events_sent, bytes_sent, publishes,
-- deliveries, heartbeats, slow_dropped, reloads = { ok, failed }, channels,
-- subscribers, busiest (most subscribers first), lua_memory (bytes per
-- worker, the main thread's first), redis (nil without Redis configured).
function metrics.snapshot(opts)
  opts = opts or {}
  local busiest = opts.busiest
  if busiest == nil then busiest = 10 end
  if math.type(busiest) ~= "integer" or busiest < 0 or busiest > 1000 then
    error("metrics.snapshot: busiest must be an integer from 0 to 1000", 2)
  end
  local raw = core.metrics(busiest)
  local streams = 0
  for _, n in pairs(raw.streams_by_route) do streams = streams + n end
  local redis
  if core.redis_settings() ~= nil then
    local up = next(raw.redis_links) ~= nil
    for _, v in pairs(raw.redis_links) do up = up and v end
    redis = {
      state = up and "up" or "down",
      links = raw.redis_links,
      latency = { count = raw.redis_latency.count, sum = raw.redis_latency.sum,
                  buckets = { table.unpack(raw.redis_latency) } },
    }
  end
  return {
    time = raw.time, uptime = raw.time - raw.start_time, start_time = raw.start_time,
    version = VERSION, workers = raw.workers,
    connections = raw.conns_opened - raw.conns_closed, streams = streams,
    streams_by_route = raw.streams_by_route,
    requests = raw.requests,
    events_sent = raw.events_sent, bytes_sent = raw.bytes_sent,
    publishes = raw.publishes, deliveries = raw.deliveries,
    heartbeats = raw.heartbeats, slow_dropped = raw.slow_dropped,
    reloads = { ok = raw.reloads_ok, failed = raw.reloads_failed },
    channels = raw.channels, subscribers = raw.subscribers,
    busiest = raw.busiest,
    lua_memory = raw.lua_memory,
    redis = redis,
  }
end

-- ---- the Prometheus text format (version 0.0.4) -------------------------------

local ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }

--- escape_label(value) -> the value as a label value's text (\\, \" and \n escaped)
function metrics.escape_label(v)
  return (tostring(v):gsub('[\\"\n]', ESCAPES))
end

local function num(v)
  if math.type(v) == "integer" then return ("%d"):format(v) end
  if v ~= v then return "NaN" end
  if v == math.huge then return "+Inf" end
  -- The shortest of these that reads back as v.
  local short = ("%.15g"):format(v)
  if tonumber(short) == v then return short end
  return ("%.17g"):format(v)
end

local function sorted_keys(t, cmp)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, cmp)
  return ks
end

--- prometheus(snapshot) -> the text of every metric, each family with # HELP and # TYPE
function metrics.prometheus(s)
  local out = {}
  local function family(name, kind, help)
    out[#out + 1] = ("# HELP %s %s\n# TYPE %s %s\n"):format(name, help, name, kind)
  end
  local function sample(name, value, label, lvalue)
    if label then
      out[#out + 1] = ('%s{%s="%s"} %s\n'):format(name, label, metrics.escape_label(lvalue), num(value))
    else
      out[#out + 1] = ("%s %s\n"):format(name, num(value))
    end
  end
  family("flosse_build_info", "gauge", "The server's version (always 1).")
  sample("flosse_build_info", 1, "version", s.version)
  family("flosse_start_time_seconds", "gauge", "When the process started, in unix seconds.")
  local function ms(v) return math.floor(v * 1000 + 0.5) / 1000 end
  sample("flosse_start_time_seconds", ms(s.start_time))
  family("flosse_uptime_seconds", "gauge", "Seconds since the process started.")
  sample("flosse_uptime_seconds", ms(s.uptime))
  family("flosse_workers", "gauge", "Event loops (threads) serving.")
  sample("flosse_workers", s.workers)
  family("flosse_connections", "gauge", "Open client connections.")
  sample("flosse_connections", s.connections)
  family("flosse_streams", "gauge", "Open event streams: the total, and by route.")
  sample("flosse_streams", s.streams)
  for _, r in ipairs(sorted_keys(s.streams_by_route)) do
    sample("flosse_streams", s.streams_by_route[r], "route", r)
  end
  family("flosse_requests_total", "counter", "HTTP responses written, by status.")
  for _, st in ipairs(sorted_keys(s.requests)) do sample("flosse_requests_total", s.requests[st], "status", st) end
  family("flosse_events_sent_total", "counter", "Events framed into streams (view yields and channel deliveries).")
  sample("flosse_events_sent_total", s.events_sent)
  family("flosse_bytes_sent_total", "counter", "Bytes written to client sockets.")
  sample("flosse_bytes_sent_total", s.bytes_sent)
  family("flosse_publishes_total", "counter", "Messages published to channels by this node.")
  sample("flosse_publishes_total", s.publishes)
  family("flosse_deliveries_total", "counter", "Channel messages queued to subscribers.")
  sample("flosse_deliveries_total", s.deliveries)
  family("flosse_slow_subscribers_dropped_total", "counter",
    "Subscribers dropped for falling too far behind (channel_backlog).")
  sample("flosse_slow_subscribers_dropped_total", s.slow_dropped)
  family("flosse_heartbeats_total", "counter", "Heartbeat comments sent to idle streams.")
  sample("flosse_heartbeats_total", s.heartbeats)
  family("flosse_reloads_total", "counter", "App reloads, by result.")
  sample("flosse_reloads_total", s.reloads.failed, "result", "failed")
  sample("flosse_reloads_total", s.reloads.ok, "result", "ok")
  family("flosse_channels", "gauge", "Channels held by this node.")
  sample("flosse_channels", s.channels)
  family("flosse_channel_subscribers", "gauge",
    "Channel subscriptions on this node: the total, and the busiest channels'.")
  sample("flosse_channel_subscribers", s.subscribers)
  for _, b in ipairs(s.busiest) do sample("flosse_channel_subscribers", b.subscribers, "channel", b.name) end
  family("flosse_lua_memory_bytes", "gauge", "Bytes held by each worker's Lua state.")
  for i, n in ipairs(s.lua_memory) do sample("flosse_lua_memory_bytes", n, "worker", i) end
  if s.redis then
    family("flosse_redis_up", "gauge", "1 while a Redis link is connected, by link.")
    for _, name in ipairs(sorted_keys(s.redis.links)) do
      sample("flosse_redis_up", s.redis.links[name] and 1 or 0, "link", name)
    end
    family("flosse_redis_command_duration_seconds", "histogram", "Round trips of Redis commands.")
    for _, b in ipairs(s.redis.latency.buckets) do
      sample("flosse_redis_command_duration_seconds_bucket", b[2], "le", num(b[1] + 0.0))
    end
    sample("flosse_redis_command_duration_seconds_bucket", s.redis.latency.count, "le", "+Inf")
    sample("flosse_redis_command_duration_seconds_sum", s.redis.latency.sum)
    sample("flosse_redis_command_duration_seconds_count", s.redis.latency.count)
  end
  return table.concat(out)
end

-- ---- the view ----------------------------------------------------------------

local OPTIONS = { "permission_classes", "busiest", "name", "cors" }

--- metrics_view{ permission_classes =, busiest = 10, name =, cors = } -> a view (GET, HEAD)
-- permission_classes must be given (the figures name channels and routes):
-- { AllowAny } says so explicitly for a scraper on a private network.
function metrics.metrics_view(opts)
  builtin.options("metrics_view", opts, OPTIONS)
  if opts.permission_classes == nil then
    error("metrics_view: permission_classes is required (a list such as { IsAdminUser }, "
      .. "or { AllowAny } for a scraper on a private network)", 2)
  end
  local busiest = builtin.integer("metrics_view", "busiest", opts.busiest, 10, 0, 1000)
  -- Not a tail call: builtin's errors name this function's caller.
  local view = builtin.make("metrics_view", flosse().view,
    { methods = { "GET" }, permission_classes = opts.permission_classes, name = opts.name, cors = opts.cors },
    function()
      return response.new {
        status = 200,
        headers = {
          ["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8",
          ["Cache-Control"] = "no-store",
        },
        body = metrics.prometheus(metrics.snapshot { busiest = busiest }),
      }
    end)
  return view
end

-- Route ids for core.start_stream, interned once per label.
local route_ids = {}

--- route_id(label) -> the small integer the core counts label's streams under
function metrics.route_id(label)
  local id = route_ids[label]
  if id == nil then
    id = core.metrics_route(label)
    route_ids[label] = id
  end
  return id
end

return metrics
