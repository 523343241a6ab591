-- The flosse example app: the quick start plus one small view per feature.
-- Every `coroutine.yield` of a stream view is one event on the wire.
local flosse = require "flosse"
local permissions = require "flosse.permissions"

local IsAuthenticated = permissions.IsAuthenticated
local IsAdminUser = permissions.IsAdminUser
local BaseSSEPermission = permissions.BaseSSEPermission

local views = {}

-- The quick start: ten progress events a second apart, then "All done!".
-- Needs a user: try `curl -N -H 'Authorization: Bearer demo-token' .../sse/progress/`.
views.progress = flosse.sse_stream({ permission_classes = { IsAuthenticated } },
  function(request) -- luacheck: ignore 212
    for i = 1, 10 do
      coroutine.yield("progress", { step = i, total = 10, pct = i * 10 })
      flosse.sleep(1)            -- suspends this stream only; never blocks the server
    end
    coroutine.yield(flosse.SSEEvent{ data = "All done!", event = "complete" })
  end)

-- One view per yield style (see the table in the README), each one event.
views.styles = {}

-- data: hello
views.styles.string = flosse.sse_stream(function()
  coroutine.yield("hello")
end)

-- event: update / data: {"count":1}
views.styles["event-data"] = flosse.sse_stream(function()
  coroutine.yield("update", { count = 1 })
end)

-- event: update / data: {"count":1} / id: evt-001
views.styles["event-data-id"] = flosse.sse_stream(function()
  coroutine.yield("update", { count = 1 }, "evt-001")
end)

-- event: e / data: x / id: 1 / retry: 5000
views.styles.fields = flosse.sse_stream(function()
  coroutine.yield{ data = "x", event = "e", id = "1", retry = 5000 }
end)

-- A table without a data key is sent as JSON: data: {"foo":"bar"}
views.styles.table = flosse.sse_stream(function()
  coroutine.yield{ foo = "bar" }
end)

-- Same bytes as the fields table.
views.styles.sseevent = flosse.sse_stream(function()
  coroutine.yield(flosse.SSEEvent{ data = "x", event = "e", id = "1", retry = 5000 })
end)

-- One data: line per line; LF, CRLF and CR all split.
views.styles.multiline = flosse.sse_stream(function()
  coroutine.yield("a\nb\r\nc\rd")
end)

-- A path converter: /sse/orders/42/ gives request.params.order_id == 42, a number.
views.order = flosse.sse_stream(function(request)
  local order_id = request.params.order_id
  coroutine.yield("order", {
    order_id = order_id,
    type = type(order_id),              -- "number"
    subtype = math.type(order_id),      -- "integer"
  })
end)

-- A custom permission class: an API key in a header.
local HasAPIKey = BaseSSEPermission:extend{ message = "Invalid or missing API key." }

function HasAPIKey:has_permission(request) -- luacheck: ignore 212
  local expected = os.getenv("FLOSSE_API_KEY") or "demo-api-key"
  return request.headers["X-API-Key"] == expected
end

views.HasAPIKey = HasAPIKey

views.apikey = flosse.sse_stream({ permission_classes = { HasAPIKey } }, function()
  coroutine.yield("apikey", { ok = true })
end)

-- Staff only: Authorization: Bearer demo-admin-token.
views.admin = flosse.sse_stream({ permission_classes = { IsAdminUser } }, function(request)
  coroutine.yield("admin", { username = request.user.username })
end)

-- Raises after one event: the client gets an `event: error` frame, the stream ends.
views.boom = flosse.sse_stream(function()
  coroutine.yield("tick", { n = 1 })
  error("boom: the example view failed on purpose")
end)

-- One event, then an hour of silence between events (heartbeats keep it alive).
views.quiet = flosse.sse_stream(function()
  local n = 0
  while true do
    n = n + 1
    coroutine.yield("quiet", { n = n })
    flosse.sleep(3600)
  end
end)

-- The first frame is `retry: 5000`: the browser waits 5 s before reconnecting.
views.retry = flosse.sse_stream({ retry = 5000 }, function()
  coroutine.yield("hello")
end)

-- Echoes the Last-Event-ID header a reconnecting browser sends.
views.resume = flosse.sse_stream(function(request)
  coroutine.yield(request.last_event_id or "none")
end)

-- Channels: one event, published once, reaches every stream subscribed to it.
-- GET /sse/channel/<name>/ relays channel <name> to anyone (a reconnecting
-- browser's Last-Event-ID replays what it missed from the channel's history).
views.channel_relay = flosse.relay_view{}

-- POST /publish/<name>/ publishes to channel <name>; staff only:
--   curl -X POST -H 'Authorization: Bearer demo-admin-token' -d 'hello' http://127.0.0.1:8080/publish/news/
-- A JSON body ({"event": ..., "data": ..., "id": ..., "retry": ...}, with
-- Content-Type: application/json) sets the fields; any other body is the data.
-- The answer: {"id": "<the event's id>", "delivered": <streams reached>}.
-- The user a credential gives (a demo token, or a JWT: docs/security.md,
-- "Issuing tokens"), then a tick a second. A JWT's stream ends with
-- `event: flosse-expired` when the token's exp passes.
-- Its CORS policy is the cross-origin demo's (/cross-origin/): a page on
-- http://localhost:8080 reading this stream on http://127.0.0.1:8080, and
-- the other way round (two origins, one server; FLOSSE_DEMO_PORT when the
-- app serves on another port). Other origins get no Access-Control-*
-- headers. (The demo token goes in the URL, which logs redact; a real app
-- would rather use a cookie, sent cross-origin thanks to credentials.)
local demo_port = os.getenv("FLOSSE_DEMO_PORT") or "8080"
views.me = flosse.sse_stream({
  permission_classes = { IsAuthenticated },
  cors = { origins = { "http://localhost:" .. demo_port, "http://127.0.0.1:" .. demo_port }, credentials = true },
}, function(request)
  local user = request.user
  coroutine.yield("me", { username = user.username, is_staff = user.is_staff,
                          expires_at = user.expires_at, claims = user.claims })
  for n = 1, 3600 do
    flosse.sleep(1)
    coroutine.yield("tick", n)
  end
end)

views.channel_publish = flosse.publish_view{ permission_classes = { IsAdminUser } }

-- GET /healthz: 200 {"status":"ok","redis":"none"} (with --redis, "ok" once
-- Redis answers PING; 503 and the reason while it does not). Open: a load
-- balancer polls it without credentials.
views.health = flosse.health_view{}

--- /metrics: the Prometheus text format (docs/metrics.md), for staff only:
-- curl -H 'Authorization: Bearer demo-admin-token' http://127.0.0.1:8080/metrics
views.metrics = flosse.metrics_view{ permission_classes = { IsAdminUser } }

--- /status/: the live status page (docs/status.md), for staff only; the
-- page carries its ?token= to its own stream:
-- http://127.0.0.1:8080/status/?token=demo-admin-token
views.status = flosse.status_view{ permission_classes = { IsAdminUser } }

return views
