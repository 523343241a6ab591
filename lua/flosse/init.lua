--- flosse: Server-Sent Events views for Lua 5.4.
-- A view is a function run as a coroutine; each coroutine.yield is an event.
local core = require "flosse.core"
local response = require "flosse.response"
local cors = require "flosse.cors"

local flosse = {
  _VERSION = core.version,
  urls = require "flosse.urls",
  permissions = require "flosse.permissions",
  auth = require "flosse.auth",
  static = require "flosse.static",
}

local View = { __name = "flosse.View" }
View.__index = View

function View:__tostring()
  return ("flosse.View(%s)"):format(self.kind)
end

-- The folder of flosse's own modules: a frame whose source is there is the
-- library's, not the app's.
local LIB = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "\0"

-- Raises msg at the app's call that made the view (the first frame outside
-- flosse's modules, tail calls and curried forms included), so that
-- "views.lua:12: sse_stream: unknown option ..." names the file and line.
local function view_error(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then error(msg, 2) end
    if info.what ~= "C" and info.source:sub(1, #LIB + 1) ~= "@" .. LIB then error(msg, level) end
    level = level + 1
  end
end

local STREAM_OPTIONS = {
  permission_classes = true, retry = true, heartbeat = true, name = true, cors = true, headers = true,
}
local PLAIN_OPTIONS = { permission_classes = true, methods = true, name = true, cors = true }

local function check_options(opts, allowed, what)
  for k in pairs(opts) do
    if not allowed[k] then
      view_error(("%s: unknown option %q"):format(what, tostring(k)))
    end
  end
  local pcs = opts.permission_classes
  if pcs ~= nil then
    if type(pcs) ~= "table" then view_error(what .. ": permission_classes must be a list") end
    for i, cls in ipairs(pcs) do
      if type(cls) ~= "table" or type(cls.has_permission) ~= "function" then
        view_error(("%s: permission_classes[%d] has no has_permission method"):format(what, i))
      end
    end
  end
  local policy, err = cors.normalize(opts.cors, what .. ": cors")
  if err then view_error(err) end
  return policy
end

local function is_nonneg_int(v)
  return math.type(v) == "integer" and v >= 0
    or (type(v) == "number" and v >= 0 and v == math.floor(v))
end

local function new_stream(opts, fn)
  if type(fn) ~= "function" then view_error("sse_stream: the view must be a function") end
  local policy = check_options(opts, STREAM_OPTIONS, "sse_stream")
  local headers = opts.headers
  if headers ~= nil and type(headers) ~= "table" and type(headers) ~= "function" then
    view_error("sse_stream: headers must be a table or a function of the request")
  end
  if type(headers) == "table" then headers = response.check_stream_headers(headers, "sse_stream: headers", 3) end
  if opts.retry ~= nil and not is_nonneg_int(opts.retry) then
    view_error("sse_stream: retry must be a non-negative integer (milliseconds)")
  end
  if opts.heartbeat ~= nil and (type(opts.heartbeat) ~= "number" or opts.heartbeat < 0) then
    view_error("sse_stream: heartbeat must be a non-negative number of seconds")
  end
  return setmetatable({
    is_flosse_view = true,
    kind = "stream",
    fn = fn,
    methods = { GET = true },
    permission_classes = opts.permission_classes or {},
    retry = opts.retry and math.tointeger(opts.retry),
    heartbeat = opts.heartbeat,
    name = opts.name,
    cors = policy,
    headers = headers,
  }, View)
end

--- Makes a stream view: sse_stream(fn), sse_stream(opts, fn) or sse_stream(opts)(fn).
function flosse.sse_stream(a, b)
  if type(a) == "function" and b == nil then return new_stream({}, a) end
  if type(a) ~= "table" then view_error("sse_stream: expected a function or an options table") end
  if b == nil then
    return function(fn) return new_stream(a, fn) end
  end
  return new_stream(a, b)
end

local function new_plain(opts, fn)
  if type(fn) ~= "function" then view_error("view: the view must be a function") end
  local policy = check_options(opts, PLAIN_OPTIONS, "view")
  local methods = {}
  for _, m in ipairs(opts.methods or { "GET", "HEAD" }) do
    methods[tostring(m):upper()] = true
  end
  if methods.GET then methods.HEAD = true end
  return setmetatable({
    is_flosse_view = true,
    kind = "plain",
    fn = fn,
    methods = methods,
    permission_classes = opts.permission_classes or {},
    name = opts.name,
    cors = policy,
  }, View)
end

--- Makes an ordinary (non-stream) view: view(fn), view(opts, fn) or view(opts)(fn).
-- It returns a flosse.response{...} or a string (200, text/plain).
function flosse.view(a, b)
  if type(a) == "function" and b == nil then return new_plain({}, a) end
  if type(a) ~= "table" then view_error("view: expected a function or an options table") end
  if b == nil then
    return function(fn) return new_plain(a, fn) end
  end
  return new_plain(a, b)
end

--- Turns whatever path() was given into a view object (plain functions are GET views).
function flosse.as_view(v)
  if getmetatable(v) == View then return v end
  if type(v) == "table" and v.is_flosse_view then return v end
  return new_plain({}, v)
end

local SSEEvent = { __name = "flosse.SSEEvent" }
SSEEvent.__index = SSEEvent

function SSEEvent:__tostring()
  return core.frame(self) or "flosse.SSEEvent(invalid)"
end

--- flosse.SSEEvent{ data = x, event = "e", id = "1", retry = 5000 }
flosse.SSEEvent = setmetatable(SSEEvent, {
  __call = function(_, t)
    if type(t) ~= "table" then error("SSEEvent: expected a table of fields", 2) end
    if t.data == nil then error("SSEEvent: data is required", 2) end
    return setmetatable({ data = t.data, event = t.event, id = t.id, retry = t.retry }, SSEEvent)
  end,
})

--- Suspends the calling view or task for the given seconds; the server goes on.
flosse.sleep = core.sleep

local tasks = require "flosse.tasks"
--- Background tasks: flosse.spawn(fn), flosse.after(s, fn), flosse.every(s, fn).
flosse.spawn = tasks.spawn
flosse.after = tasks.after
flosse.every = tasks.every

--- flosse.redis([url]): the worker's Redis client (flosse.redis), for the
-- configured server (settings' redis, or --redis) or url.
flosse.redis = require("flosse.redis").client
--- flosse.http.request{...} and flosse.http.get(url, opts): calling other services (flosse.http).
flosse.http = require "flosse.http"

--- The index of the worker running the caller (0 is the main thread's).
-- Each worker has its own Lua state: module tables are not shared.
flosse.worker = core.worker

--- flosse.revoke{ user = id, seconds = N }: ends the user's streams on every
-- worker (and node, with Redis) and refuses its new ones for N seconds.
flosse.revoke = require("flosse.revoke").revoke

local channels = require "flosse.channels"
flosse.channel = channels.channel
--- flosse.channels{ limit = }: the channels with subscribers, on every worker and node.
flosse.channels = channels.list
flosse.subscribe = channels.subscribe
flosse.relay_view = channels.relay_view
flosse.publish_view = channels.publish_view

--- flosse.health_view{}: 200 while the app is loaded and Redis (if any) answers, else 503.
flosse.health_view = require("flosse.health").health_view
flosse.metrics_view = require("flosse.metrics").metrics_view
flosse.status_view = require("flosse.status").status_view

--- flosse.response{ status =, headers =, body = }, with .text and .json helpers.
flosse.response = setmetatable({ text = response.text, json = response.json }, {
  __call = function(_, t) return response.new(t) end,
})

return flosse
