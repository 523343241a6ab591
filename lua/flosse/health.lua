--- flosse.health: the view a load balancer or an orchestrator polls.
--
--   path("healthz", flosse.health_view{}),
--
-- 200 {"status":"ok","redis":"ok"} when the app is loaded (the view runs at
-- all only in a loaded app) and, with `redis` configured, Redis answers
-- PING; {"redis":"none"} without Redis. 503
-- {"status":"unavailable","redis":"<why>"} when it does not, why being the
-- client's own error text ("not connected (Connection refused)",
-- "timeout", an error reply).
local core = require "flosse.core"
local response = require "flosse.response"
local permissions = require "flosse.permissions"
local redis = require "flosse.redis"
local builtin = require "flosse.builtin"

local health = {}

local OPTIONS = { "permission_classes", "name", "cors" }

-- Late require: flosse (init.lua) requires this module.
local function flosse() return require "flosse" end

-- "ok", "none" (no Redis configured), or nil, why. The PING goes through
-- the worker's pooled client of the configured URL (the first shard's when
-- only shards are given): it suspends only this request, for at most the
-- setting's timeout, and fails at once while the pool is reconnecting.
-- Shards are not each PINGed: core.redis_settings() has only their log
-- texts (no password), which a client could not authenticate with.
local function check_redis()
  if core.redis_settings() == nil then return "none" end
  local reply, err = redis.client():call("PING")
  if reply == "PONG" then return "ok" end
  if reply == nil then return nil, tostring(err) end
  return nil, "unexpected reply to PING: " .. tostring(reply)
end

-- The body is written here, not by response.json, so that its keys keep
-- the order a reader expects (status first); the reason is JSON-encoded.
local function answer(status, state, redis_state)
  return response.new {
    status = status,
    headers = {
      ["Content-Type"] = "application/json",
      -- A cached "ok" would hide an outage from whoever polls through a cache.
      ["Cache-Control"] = "no-store",
    },
    body = ('{"status":"%s","redis":%s}'):format(state, core.json_encode(redis_state)),
  }
end

--- health_view{ permission_classes =, name =, cors = } -> a view (GET, HEAD)
-- Open by default (permission_classes = { AllowAny }): load balancers call
-- it without credentials. Other options are refused when the app loads.
function health.health_view(opts)
  opts = opts or {}
  builtin.options("health_view", opts, OPTIONS)
  local pcs = opts.permission_classes
  if pcs == nil then pcs = { permissions.AllowAny } end
  -- Not a tail call: builtin's errors name this function's caller.
  local view = builtin.make("health_view", flosse().view,
    { methods = { "GET" }, permission_classes = pcs, name = opts.name, cors = opts.cors },
    function()
      local state, why = check_redis()
      if not state then return answer(503, "unavailable", why) end
      return answer(200, "ok", state)
    end)
  return view
end

return health
