--- flosse.channels: publish to named channels, subscribe streams to them.
-- The C core frames each event once, when it is published, and queues the
-- same bytes to every subscribed stream; channels keep a bounded history so
-- that a client reconnecting with Last-Event-ID gets what it missed.
local core = require "flosse.core"
local cjson = require("cjson.safe").new()
-- Only JSON: no NaN, Infinity or hex numbers (lua-cjson takes them by default),
-- since the text of what is accepted goes to subscribers as it came.
cjson.decode_invalid_numbers(false)
local response = require "flosse.response"
local current = require "flosse.current"
local grants = require "flosse.grants"
local permissions = require "flosse.permissions"

local channels = {}

local Channel = { __name = "flosse.Channel" }
Channel.__index = Channel

-- core.publish, sent again with the script's text when Redis (restarted)
-- no longer knows its digest. The third value says why it failed: nil (the
-- event itself), "unavailable" (Redis did not take it).
local function publish(name, ...)
  local id, n, code = core.publish(name, ...)
  if code == "noscript" then id, n, code = core.publish_eval(name, ...) end
  if code == "noscript" then code = "unavailable" end
  return id, n, code
end

--- ch:publish(...) -> id, delivered | nil, message
-- Takes any yield style; an event without an id gets the next sequence
-- number. With Redis (docs/scaling.md) the id is Redis', delivered counts
-- this node's subscribers, and the calling view or task waits for Redis.
-- Not checked against the user's grants: server code publishes on its own
-- behalf (publish_view, the client's way in, is checked).
function Channel:publish(...)
  local id, n = publish(self.name, ...)
  return id, n
end

-- Presence across nodes (core/presence_redis.c writes each node's counts
-- every second): the other live nodes' counts, summed by Redis. KEYS: the
-- node set; ARGV: the hash prefix, this node (left out: its own count is
-- read live), the channel (count) or nothing (every channel, as name,
-- count pairs).
local PRESENCE_LUA = [==[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local nodes = redis.call('ZRANGE', KEYS[1], 0, -1)
if ARGV[3] then
  local n = 0
  for _, node in ipairs(nodes) do
    if node ~= ARGV[2] then n = n + (tonumber(redis.call('HGET', ARGV[1] .. node, ARGV[3])) or 0) end
  end
  return n
end
local sum, names = {}, {}
for _, node in ipairs(nodes) do
  if node ~= ARGV[2] then
    local kv = redis.call('HGETALL', ARGV[1] .. node)
    for i = 1, #kv, 2 do
      if not sum[kv[i]] then names[#names + 1] = kv[i]; sum[kv[i]] = 0 end
      sum[kv[i]] = sum[kv[i]] + tonumber(kv[i + 1])
    end
  end
end
local out = {}
for _, name in ipairs(names) do out[#out + 1] = name; out[#out + 1] = sum[name] end
return out
]==]

-- The other nodes' part, through the worker's Redis client (the calling
-- coroutine waits): a number, a { name = count } table, or nil, err.
local function remote_presence(name)
  local rs = core.redis_settings()
  if not rs then return name and 0 or {} end
  local prefix = rs.prefix .. "presence:"
  local client = require("flosse.redis").client()
  local reply, err
  if name then
    reply, err = client:call("EVAL", PRESENCE_LUA, "1", prefix .. "nodes", prefix, core.node_id(), name)
  else
    reply, err = client:call("EVAL", PRESENCE_LUA, "1", prefix .. "nodes", prefix, core.node_id())
  end
  if reply == nil then
    core.log("warn", "presence: redis: " .. tostring(err))
    return nil, "redis: " .. tostring(err)
  end
  if name then return reply end
  local t = {}
  for i = 1, #reply, 2 do t[reply[i]] = reply[i + 1] end
  return t
end

--- ch:count() -> subscribers | nil, "redis: ..."
-- Every worker's subscriptions to the channel; with Redis, every node's
-- (this node's live, the others' as they wrote them at most a second ago),
-- and the calling view or task waits for Redis.
function Channel:count()
  local here = core.channel_count(self.name)
  if here == nil then error(("flosse.channel(%q): not a channel name"):format(self.name), 2) end
  local there, err = remote_presence(self.name)
  if there == nil then return nil, err end
  return here + there
end

--- flosse.channels{ limit = 1000 } -> { { name =, subscribers = }, ... } | nil, "redis: ..."
-- The channels with at least one subscriber (every worker; with Redis,
-- every node), sorted by name, at most limit of them.
function channels.list(opts)
  if opts ~= nil and type(opts) ~= "table" then error("flosse.channels(opts): opts must be a table", 2) end
  local limit = opts and opts.limit or 1000
  if math.type(limit) ~= "integer" or limit < 0 then
    error("flosse.channels: limit must be a non-negative integer", 2)
  end
  local counts = core.channel_list()
  local there, err = remote_presence(nil)
  if there == nil then return nil, err end
  for name, n in pairs(there) do counts[name] = (counts[name] or 0) + n end
  local names = {}
  for name in pairs(counts) do names[#names + 1] = name end
  table.sort(names)
  local out = {}
  for i = 1, math.min(limit, #names) do out[i] = { name = names[i], subscribers = counts[names[i]] } end
  return out
end

function Channel:__tostring()
  return ("flosse.Channel(%s)"):format(self.name)
end

--- channel(name) -> a channel object
function channels.channel(name)
  if type(name) ~= "string" then error("flosse.channel: the name must be a string", 2) end
  return setmetatable({ name = name }, Channel)
end

-- A request whose user carries grants (flosse.grants) subscribes only to
-- the channels its subscribe list allows: otherwise the stream is refused
-- with the permission classes' 403, the same answer whatever failed (an
-- error event once the stream's head is out). A request whose user has no
-- grants, and a background task (no request), are not checked here.
local function check_subscribe(request, names)
  local user = request and request.user
  if not grants.carries(user) then return end
  local list = type(names) == "table" and names or { names }
  for i = 1, #list do
    if not grants.user_may(user, "subscribe", list[i]) then
      core.refuse(403, permissions.DEFAULT_MESSAGE, true) -- exact: the permission 403, byte for byte
    end
  end
end

--- subscribe(name | {names}, { last_event_id = }) -> iterator
-- for event in flosse.subscribe(...) do coroutine.yield(event) end
-- The loop suspends this stream until the next event. Leaving the loop (or
-- the stream ending) releases the subscription. In a view whose user
-- carries grants, every name must pass request.user:may_subscribe.
function channels.subscribe(names, opts)
  if opts ~= nil and type(opts) ~= "table" then error("flosse.subscribe: opts must be a table", 2) end
  local last = opts and opts.last_event_id
  check_subscribe(current.request(), names)
  local sub = core.subscribe(names, last)
  -- With Redis: in place on every node before the stream's head goes out.
  sub:ready()
  local function next_event()
    while true do
      local m = sub:poll()
      if m then return m end
      sub:wait()
    end
  end
  -- The fourth value is closed when the loop ends, even by break or error.
  return next_event, nil, nil, sub
end

-- Late require: flosse (init.lua) requires this module.
local function flosse() return require "flosse" end

--- relay_view{ channel = name | nil, permission_classes =, retry =, heartbeat =, cors =, headers = }
-- A stream view relaying one channel (the route's <str:name> when channel is nil).
-- The fixed channel is recorded as view.channel (permissions.CanSubscribe
-- reads it). A user with grants gets only a channel it may subscribe to,
-- with CanSubscribe or without.
function channels.relay_view(opts)
  opts = opts or {}
  local fixed = opts.channel
  local view = flosse().sse_stream({
    permission_classes = opts.permission_classes, retry = opts.retry, heartbeat = opts.heartbeat,
    cors = opts.cors, headers = opts.headers,
  }, function(request)
    local name = fixed or request.params.name
    check_subscribe(request, name)
    local sub = core.subscribe(name, request.last_event_id)
    sub:ready()
    -- Nothing registered to run at close (no request:on_close so far, and no
    -- Lua runs after this): the stream need not keep the request.
    if rawget(request, "_close_handlers") == nil then core.on_close(nil) end
    -- No per-event Lua here: the core moves each message to the connection
    -- (the loop form, for event in flosse.subscribe(...), resumes the view),
    -- and the view's thread is let go.
    sub:relay()
  end)
  view.channel = fixed
  return view
end

local function bad_request(why)
  return response.text(400, why .. "\n")
end

-- The raw text of each top-level member of a JSON object text, by decoded
-- key (the last of a repeated key, as cjson.decode keeps it).
local function raw_members(text)
  local list = core.json_members(text)
  if not list then return nil end -- an array, not an object
  local raw = {}
  for i = 1, #list, 2 do
    local key = list[i]
    -- a key with escapes ("d\u0061ta") is decoded by cjson, like the body
    key = key:find("\\", 1, true) and cjson.decode(key) or key:sub(2, -2)
    raw[key] = list[i + 1]
  end
  return raw
end

-- The fields to publish from a request body, or nil, why. A JSON body's
-- data (and a numeric id) go out as the client wrote them, never decoded
-- and encoded again: the numbers of {"ts":1796150648138900} arrive whole.
local function fields_from(request)
  local ctype = (request.headers["content-type"] or ""):lower()
  if not ctype:find("application/json", 1, true) then
    return { data = request.body }
  end
  local body, err = cjson.decode(request.body)
  local raw = type(body) == "table" and raw_members(request.body)
  if not raw then
    return nil, "the body is not a JSON object" .. (err and (": " .. err) or "")
  end
  if body.data == nil or body.data == cjson.null then return nil, "the JSON body has no \"data\"" end
  for _, k in ipairs({ "event", "id" }) do
    if body[k] ~= nil and type(body[k]) ~= "string" and type(body[k]) ~= "number" then
      return nil, ("\"%s\" must be a string"):format(k)
    end
  end
  local data, id = body.data, body.id
  if type(data) ~= "string" then data = raw.data or data end -- a string is its decoded text
  if type(id) == "number" then id = raw.id end
  return { data = data, event = body.event, id = id, retry = body.retry }
end

--- publish_view{ channel = name | nil, permission_classes =, cors = }
-- POST a JSON object (data, event, id, retry) or any other body (the data);
-- answers {"id": ..., "delivered": N}. The fixed channel is recorded as
-- view.channel (permissions.CanPublish reads it). A user with grants
-- publishes only where it may publish (403 otherwise, CanPublish or not).
-- Safe default: without permission_classes (or with an empty list) the view
-- is marked unguarded_publish and the app refuses to load (flosse.app):
-- publishing for anyone must be written out, { AllowAny }.
function channels.publish_view(opts)
  opts = opts or {}
  local fixed = opts.channel
  local view = flosse().view({ methods = { "POST" }, permission_classes = opts.permission_classes,
                               cors = opts.cors },
    function(request)
      local name = fixed or request.params.name
      local user = request.user
      if grants.carries(user) and not grants.user_may(user, "publish", name) then
        return response.text(403, permissions.DEFAULT_MESSAGE)
      end
      local fields, why = fields_from(request)
      if not fields then return bad_request(why) end
      local id, delivered, code = publish(name, fields)
      if code == "unavailable" then
        return response.text(503, "cannot publish: " .. tostring(delivered) .. "\n")
      end
      if not id then return bad_request("cannot publish: " .. tostring(delivered)) end
      return response.new {
        status = 200,
        headers = { ["Content-Type"] = "application/json" },
        body = ('{"id":%s,"delivered":%d}'):format(core.json_encode(id), delivered),
      }
    end)
  view.channel = fixed
  local pcs = opts.permission_classes
  if pcs == nil or (type(pcs) == "table" and next(pcs) == nil) then view.unguarded_publish = true end
  return view
end

return channels
