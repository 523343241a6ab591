-- bench/soak-app: the routes bench/churn drives (see bench/soak).
local path = require("flosse.urls").path
local flosse = require "flosse"
local views = require "views"

return {
  path("sse/fast/", views.fast, "fast"),                      -- yields fast, forever or ?n= events
  path("sse/quiet/", views.quiet, "quiet"),                   -- one event, then an hour of sleep
  path("sse/channel/<str:name>/", flosse.relay_view{}, "relay"),  -- relays channel name (Last-Event-ID)
  -- POST: publishes the body (open: the soak driver has no credential)
  path("pub/<str:name>/", flosse.publish_view{ permission_classes = { flosse.permissions.AllowAny } }, "publish"),
  path("flood/<str:name>/", views.flood, "flood"),            -- POST: ?n= events of ?size= bytes
  path("stats/", views.stats, "stats"),                       -- core.stats() as JSON
}
