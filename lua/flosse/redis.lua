--- flosse.redis: the Redis client of views and tasks, and the `redis`
-- setting.
--
--   local r = flosse.redis()            -- the configured server (settings' redis, or --redis)
--   local r = flosse.redis("redis://127.0.0.1:6379/1")   -- any other
--   local n, err = r:call("INCR", "visits")
--   local res, err = r:pipeline { { "INCR", "a" }, { "GET", "b" } }
--
-- A call suspends only the calling coroutine (a view, a permission or
-- authentication class, a background task) until Redis answered; it never
-- raises for an error reply or a network failure: it returns nil, err.
-- Replies: integers as integers, bulk and status replies as strings,
-- arrays as tables; a null is nil at the top and false inside a table; an
-- error reply is nil, its text at the top, and {false, text} inside a
-- table (a pipeline's results, an EXEC's). The client is the worker's,
-- one per URL, over a pool of connections (settings' redis.pool).
local core = require "flosse.core"

local redis = {}

--- flosse.redis([url]) -> the client for url (default: the configured one).
function redis.client(url)
  if url ~= nil and type(url) ~= "string" then
    error("flosse.redis(url): url must be a string (redis://HOST:PORT/DB or unix:///path)", 2)
  end
  return core.redis_client(url)
end

local KEYS = { url = true, shards = true, prefix = true, timeout = true, pool = true }

--- The `redis` setting (a URL, or a table { url =, shards =, prefix =,
-- timeout =, pool = }) as core.configure_redis takes it, with the defaults
-- filled in: a table, or nil when there is no Redis (nil or false), or
-- nil, message when the value is bad.
function redis.settings(value)
  if value == nil or value == false then return nil end
  if type(value) == "string" then value = { url = value } end
  if type(value) ~= "table" then
    return nil, "must be a URL (redis://HOST:PORT/DB) or a table { url =, prefix =, timeout =, shards =, pool = }"
  end
  for k in pairs(value) do
    if not KEYS[k] then return nil, ("unknown key %s (url, shards, prefix, timeout, pool)"):format(tostring(k)) end
  end
  local d = core.defaults.redis
  local out = { prefix = d.prefix, timeout = d.timeout, pool = d.pool }
  if value.url ~= nil then
    if type(value.url) ~= "string" then return nil, "url must be a string" end
    local ok, err = core.redis_url_check(value.url)
    if not ok then return nil, err end
    out.url = value.url
  end
  if value.shards ~= nil then
    if type(value.shards) ~= "table" or #value.shards == 0 or #value.shards > 16 then
      return nil, "shards must be a list of 1 to 16 URLs"
    end
    out.shards = {}
    for i, u in ipairs(value.shards) do
      if type(u) ~= "string" then return nil, ("shards[%d] must be a URL string"):format(i) end
      local ok, err = core.redis_url_check(u)
      if not ok then return nil, ("shards[%d]: %s"):format(i, err) end
      out.shards[i] = u
    end
  end
  if not out.url and not out.shards then return nil, "needs url (or shards)" end
  if value.prefix ~= nil then
    if type(value.prefix) ~= "string" or #value.prefix > 127 then
      return nil, "prefix must be a string of at most 127 bytes"
    end
    out.prefix = value.prefix
  end
  if value.timeout ~= nil then
    local t = value.timeout
    if type(t) ~= "number" or t ~= t or t <= 0 or t > 1e9 then
      return nil, "timeout must be a positive number of seconds"
    end
    out.timeout = value.timeout
  end
  if value.pool ~= nil then
    if math.type(value.pool) ~= "integer" or value.pool < 1 or value.pool > 64 then
      return nil, "pool must be an integer from 1 to 64"
    end
    out.pool = value.pool
  end
  return out
end

--- true if two results of redis.settings say the same.
function redis.same(a, b)
  if a == nil or b == nil then return a == b end
  if a.url ~= b.url or a.prefix ~= b.prefix or a.timeout ~= b.timeout or a.pool ~= b.pool then return false end
  local sa, sb = a.shards or {}, b.shards or {}
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  return true
end

return redis
