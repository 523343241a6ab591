-- bench/soak-app's views. bench/soak serves a copy of this folder and
-- reloads it every ~10 s (SIGHUP, or a touch of the copy's views.lua): each
-- load is a new generation (GENERATION, reported by stats/ and quiet/).
local flosse = require "flosse"
local core = require "flosse.core"

local views = {}

local GENERATION = ("%d-%06d"):format(os.time(), math.random(0, 999999))
local PAYLOAD = ("x"):rep(48)

-- Yields as fast as the client reads: 50 events, a 10 ms sleep, again; ?n=
-- events in all (default: until the client goes away). Abandoned and reset
-- streams end while this view runs (mid-batch or asleep); a slow client
-- holds it paused above the high-water mark.
views.fast = flosse.sse_stream(function(request)
  local n = math.tointeger(tonumber(request.query.n)) or math.maxinteger
  for i = 1, n do
    coroutine.yield{ event = "tick", data = PAYLOAD, id = tostring(i) }
    if i % 50 == 0 then flosse.sleep(0.01) end
  end
end)

-- An idle stream: one event, then an hour of sleep (heartbeats only).
views.quiet = flosse.sse_stream(function()
  coroutine.yield{ event = "hello", data = GENERATION }
  flosse.sleep(3600)
end)

-- POST /flood/<name>/?n=32&size=4096: publishes n events of size bytes to
-- channel name, enough to fill the sockets of the clients that relay it and
-- never read.
views.flood = flosse.view({ methods = { "POST" } }, function(request)
  local n = math.min(math.tointeger(tonumber(request.query.n)) or 32, 1000)
  local size = math.min(math.tointeger(tonumber(request.query.size)) or 4096, 65536)
  local ch = flosse.channel(request.params.name)
  local data = ("f"):rep(size)
  local delivered = 0
  for _ = 1, n do
    local id, d = ch:publish("flood", data)
    if not id then return flosse.response.text(400, tostring(d) .. "\n") end
    delivered = delivered + d
  end
  return flosse.response.json{ published = n, delivered = delivered }
end)

-- The whole server's figures (every worker's), and which generation of the
-- app and which worker answered.
views.stats = function()
  local s = core.stats()
  s.generation = GENERATION
  s.worker = flosse.worker()
  return flosse.response.json(s)
end

return views
