-- The example app's routes (Django's path(): no leading slash).
local path = require("flosse.urls").path
local static = require "flosse.static"
local views = require "views"

local urlpatterns = {
  path("", static.file("index.html"), "index"),
  path("sse/progress/", views.progress, "progress"),
  path("sse/orders/<int:order_id>/", views.order, "order"),
  path("sse/apikey/", views.apikey, "apikey"),
  path("sse/admin/", views.admin, "admin"),
  path("sse/boom/", views.boom, "boom"),
  path("sse/quiet/", views.quiet, "quiet"),
  path("sse/retry/", views.retry, "retry"),
  path("sse/resume/", views.resume, "resume"),
  -- channels: the page, the relay (open to all) and the publish view (staff)
  path("channel/", static.file("channel.html"), "channel-page"),
  path("sse/channel/<str:name>/", views.channel_relay, "channel"),
  path("publish/<str:name>/", views.channel_publish, "publish"),
  -- who the credential says you are, until it expires (JWT or demo token),
  -- and the cross-origin demo page
  path("sse/me/", views.me, "me"),
  path("cross-origin/", static.file("cross-origin.html"), "cross-origin"),
  path("healthz", views.health, "health"),  -- for load balancers: open, no trailing slash
  path("metrics", views.metrics, "metrics"),  -- Prometheus, staff token
  path("status/", views.status, "status"),    -- the live status page, staff token
}

local styles = { "string", "event-data", "event-data-id", "fields", "table",
                 "sseevent", "multiline" }
for _, name in ipairs(styles) do
  urlpatterns[#urlpatterns + 1] = path("sse/styles/" .. name .. "/", views.styles[name],
                                       "style-" .. name)
end

return urlpatterns
