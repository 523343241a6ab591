-- The example app's background tasks: this file runs at start-up and after
-- every reload (a reload cancels the tasks of the previous one first).
local flosse = require "flosse"

-- A ticker: once a second, on one worker (so once per server), the
-- channel "ticks" gets the time. /channel/ shows it live.
local ticks = flosse.channel("ticks")
local n = 0
flosse.every(1, function()
  n = n + 1
  ticks:publish { event = "tick", data = { n = n, time = os.date("!%H:%M:%S") } }
end, { name = "ticker" })
