-- bench/soak-app's settings (bench/soak serves a copy of this folder).
-- bench/soak also passes --workers, --write-timeout (short: never-reading
-- clients are dropped within the run), --log-level (info) and, when
-- `flosse serve --help` lists it, --max-channels.
local defaults = require("flosse.app").DEFAULTS

local settings = {
  -- Published channels' histories expire, so that a channel published once
  -- and never subscribed holds nothing after 30 s.
  channel_history = 100,
  channel_history_seconds = 30,
  -- The relayed never-readers are dropped by the write timeout, not by
  -- their backlog (the churn's floods queue them 64 events a second).
  channel_backlog = 10000,
  heartbeat = 15,
  log_level = "warn",
}

-- A cap on the channel registry, where the server has one (SOAK_MAX_CHANNELS,
-- set by bench/soak; a checkout without the setting ignores it).
if defaults.max_channels ~= nil and os.getenv("SOAK_MAX_CHANNELS") then
  settings.max_channels = math.tointeger(tonumber(os.getenv("SOAK_MAX_CHANNELS")))
end

return settings
