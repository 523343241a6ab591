-- bench/app: the views bench/run (and bench/fanout.sh) measure flosse on.
-- Their nginx peers are in bench/peers/ and answer the same paths with
-- byte-identical event frames.
local path = require("flosse.urls").path
local flosse = require "flosse"
local views = require "views"

return {
  path("bench/ten/", views.ten, "ten"),          -- 10 events, then the view returns
  path("bench/quiet/", views.quiet, "quiet"),    -- 1 event, then an hour of sleep
  path("sub/<str:name>/", flosse.relay_view{}, "sub"),    -- fan-out: subscribe
  -- fan-out: POST publishes (open: a load generator has no credential)
  path("pub/<str:name>/", flosse.publish_view{ permission_classes = { flosse.permissions.AllowAny } }, "pub"),
}
