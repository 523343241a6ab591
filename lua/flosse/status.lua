--- flosse.status: the live status page (docs/status.md).
--
--   path("status/", flosse.status_view{ permission_classes = { IsAdminUser } }),
--
-- One route, two answers: a request whose Accept lacks text/event-stream
-- (a browser's navigation) gets the page (flosse.status_page), one with it
-- (the page's EventSource) a stream: a `history` event (the samples this
-- worker kept), then a `sample` event every interval.
--
-- The history is a ring per worker (each worker has its own Lua state),
-- fed by the open status streams themselves: each takes a snapshot every
-- interval, and the ring keeps one sample per interval however many streams
-- are open. It holds numbers only (no view, no closure, nothing of the
-- app's), in this module's table (shared by every generation of the app),
-- keyed by interval and size: a hot reload keeps it, a reload that changes
-- them makes a new one (at most 8, the least recently fed dropped), and it
-- never exceeds `history` samples. While no status stream is open on a worker nothing is
-- sampled there; the page shows that time as a gap.
local core = require "flosse.core"
local metrics = require "flosse.metrics"
local page = require "flosse.status_page"
local response = require "flosse.response"
local builtin = require "flosse.builtin"

local status = {}

-- Late require: flosse (init.lua) requires this module.
local function flosse() return require "flosse" end

-- The page loads nothing from elsewhere: its script and style are inline,
-- and it connects only to its own origin (the stream).
local CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
  .. "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

-- ---- the history ring ----------------------------------------------------------

local Ring = {}
Ring.__index = Ring

local function new_ring(interval, size)
  return setmetatable({ interval = interval, size = size, first = 1, count = 0, items = {},
                        last = nil }, Ring)
end

--- ring:samples() -> the kept samples, oldest first
function Ring:samples()
  local out = {}
  for i = 0, self.count - 1 do
    out[#out + 1] = self.items[(self.first + i - 1) % self.size + 1]
  end
  return out
end

local function push(ring, sample)
  if ring.count < ring.size then
    ring.items[(ring.first + ring.count - 1) % ring.size + 1] = sample
    ring.count = ring.count + 1
  else
    ring.items[ring.first] = sample
    ring.first = ring.first % ring.size + 1
  end
end

-- The rates between two snapshots' counters, per second.
local function rate(now, before, key, dt)
  local d = now[key] - before[key]
  if d < 0 then d = 0 end
  return d / dt
end

--- ring:feed(snapshot) -> the newest sample (nil while there is no earlier
-- snapshot to take rates from). A snapshot closer than half an interval to
-- the last one taken adds nothing: several open streams share the samples.
-- One more than three intervals after it starts anew (a gap, no rate
-- averaged over it).
function Ring:feed(s)
  local last = self.last
  if last and s.time - last.time < self.interval / 2 then return self.newest end
  self.last = { time = s.time, events_sent = s.events_sent, deliveries = s.deliveries,
                publishes = s.publishes }
  if not last or s.time - last.time > 3 * self.interval then
    self.newest = nil
    return nil
  end
  local dt = s.time - last.time
  local sample = {
    t = s.time,
    connections = s.connections,
    streams = s.streams,
    events_per_s = rate(s, last, "events_sent", dt),
    deliveries_per_s = rate(s, last, "deliveries", dt),
    publishes_per_s = rate(s, last, "publishes", dt),
  }
  push(self, sample)
  self.newest = sample
  return sample
end

-- interval .. ":" .. size -> ring, for this worker. At most MAX_RINGS: a
-- reload that changes a view's interval or history makes a new one, and
-- the one fed least recently goes (the old generation's, in practice).
local rings, ring_count = {}, 0
local MAX_RINGS = 8

--- ring_for(interval, size) -> this worker's ring for status views of that
-- interval and history size (created on first use)
function status.ring_for(interval, size)
  local key = ("%g:%d"):format(interval, size)
  local ring = rings[key]
  if not ring then
    if ring_count >= MAX_RINGS then
      local oldest, at
      for k, r in pairs(rings) do
        local fed = r.last and r.last.time or -math.huge
        if at == nil or fed < at then oldest, at = k, fed end
      end
      rings[oldest] = nil
      ring_count = ring_count - 1
    end
    ring = new_ring(interval, size)
    rings[key] = ring
    ring_count = ring_count + 1
  end
  return ring
end

status.new_ring = new_ring -- for spec/unit/status_spec.lua

-- ---- the stream ----------------------------------------------------------------

local function event(name, value)
  return flosse().SSEEvent { event = name, data = assert(core.json_encode(value)) }
end

-- The `sample` event's fields: the newest rates, and the figures the page
-- shows beside the charts.
local function sample_fields(s, newest, interval)
  local redis
  if s.redis then redis = s.redis.state end
  local busiest = {}
  for i, b in ipairs(s.busiest) do busiest[i] = { name = b.name, subscribers = b.subscribers } end
  return {
    t = s.time, interval = interval,
    connections = s.connections, streams = s.streams,
    -- Absent (no rate yet, or after a gap) rather than a made-up 0.
    events_per_s = newest and newest.events_per_s,
    deliveries_per_s = newest and newest.deliveries_per_s,
    publishes_per_s = newest and newest.publishes_per_s,
    workers = s.workers, uptime = s.uptime, version = s.version,
    reloads_ok = s.reloads.ok, reloads_failed = s.reloads.failed,
    channels = s.channels, subscribers = s.subscribers, busiest = busiest,
    slow_dropped = s.slow_dropped, redis = redis or "none",
  }
end

local function stream(opts)
  return function()
    local ring = status.ring_for(opts.interval, opts.history)
    local s = metrics.snapshot { busiest = opts.busiest }
    ring:feed(s)
    -- current: the figures beside the charts, so that the page fills in at
    -- once; the first sample follows one interval later, with rates.
    coroutine.yield(event("history", { interval = opts.interval, history = opts.history,
                                       samples = ring:samples(),
                                       current = sample_fields(s, nil, opts.interval) }))
    while true do
      flosse().sleep(opts.interval)
      s = metrics.snapshot { busiest = opts.busiest }
      coroutine.yield(event("sample", sample_fields(s, ring:feed(s), opts.interval)))
    end
  end
end

-- ---- the view ------------------------------------------------------------------

local OPTIONS = { "permission_classes", "interval", "history", "busiest", "name" }

--- wants_stream(request) -> true when the request's Accept names text/event-stream
function status.wants_stream(request)
  local accept = request.headers["accept"]
  return accept ~= nil and accept:lower():find("text/event-stream", 1, true) ~= nil
end

--- status_view{ permission_classes =, interval = 1, history = 300, busiest = 20, name = } -> a view (GET)
-- permission_classes must be given: the page names channels and shows the
-- server's load. interval is in seconds, history in samples, busiest the
-- number of channels listed.
function status.status_view(opts)
  builtin.options("status_view", opts, OPTIONS)
  if opts.permission_classes == nil then
    error("status_view: permission_classes is required in urls.lua (a list such as "
      .. "{ flosse.permissions.IsAdminUser }: the page names channels and shows the server's load)", 2)
  end
  local interval = opts.interval
  if interval == nil then interval = 1 end
  if type(interval) ~= "number" or interval ~= interval or interval < 0.1 or interval > 3600 then
    error("status_view: interval must be a number of seconds from 0.1 to 3600", 2)
  end
  local history = builtin.integer("status_view", "history", opts.history, 300, 1, 3600, " (samples kept)")
  local busiest = builtin.integer("status_view", "busiest", opts.busiest, 20, 0, 1000)
  local view = builtin.make("status_view", flosse().sse_stream,
    { permission_classes = opts.permission_classes, heartbeat = 0, name = opts.name },
    stream { interval = interval, history = history, busiest = busiest })
  -- Read by the dispatcher (flosse.server): a request that does not ask
  -- for a stream gets this answer instead.
  view.page = function(request)
    if status.wants_stream(request) then return nil end
    return response.new {
      status = 200,
      headers = {
        ["Content-Type"] = "text/html; charset=utf-8",
        ["Cache-Control"] = "no-store",
        ["Content-Security-Policy"] = CSP,
        ["X-Content-Type-Options"] = "nosniff",
        ["Referrer-Policy"] = "no-referrer",
      },
      body = page.html,
    }
  end
  return view
end

return status
