-- bench/app's stream views. The nginx + lua peer (bench/peers/nginx-lua.conf)
-- writes the same bytes: "event: tick\ndata: event <i>\nid: <i>\n\n".
local flosse = require "flosse"

local views = {}

-- A finite stream: 10 events, then the view returns and the response ends.
views.ten = flosse.sse_stream(function()
  for i = 1, 10 do
    coroutine.yield{ event = "tick", data = "event " .. i, id = tostring(i) }
  end
end)

-- An idle stream: one event, then an hour of sleep (nothing on the wire with
-- heartbeats off, as bench/run serves it).
views.quiet = flosse.sse_stream(function()
  coroutine.yield{ event = "tick", data = "event 1", id = "1" }
  flosse.sleep(3600)
end)

return views
