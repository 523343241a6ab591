--- flosse.revoke: ends a user's open streams, everywhere, at once.
-- For a credential that must stop working before it expires (a stolen
-- token, a user logged out or banned): every worker ends the user's streams
-- with `event: flosse-revoked`, and, for `seconds`, refuses the user's new
-- streams with 403, so a client reconnecting with the same credential does
-- not get back in while the credential is being withdrawn. With Redis the
-- other nodes do the same (docs/security.md).
local core = require "flosse.core"

local revoke = {}

-- On the first shard: keeps a refusal (the newest end wins) for the nodes
-- that are not listening now, drops those that ran out, and tells every
-- node. Redis' clock decides, so nodes' clocks need not agree.
-- KEYS: the set of refusals, the channel; ARGV: node, seconds, user.
local PUBLISH = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seconds = tonumber(ARGV[2])
if seconds > 0 then
  local ends = now + math.floor(seconds * 1000)
  if ends > tonumber(redis.call('ZSCORE', KEYS[1], ARGV[3]) or 0) then
    redis.call('ZADD', KEYS[1], ends, ARGV[3])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('PUBLISH', KEYS[2], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
]]

--- key(v) -> the id a user's streams are counted and revoked by: an
-- integer (42.0 is 42) or a string of 1 to 256 bytes, as a string; nil for
-- anything else (such a user is neither counted nor revocable).
function revoke.key(v)
  if math.type(v) == "float" and math.tointeger(v) then v = math.tointeger(v) end
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "string" and v ~= "" and #v <= 256 then return v end
  return nil
end
local user_id = revoke.key

--- revoke{ user = id, seconds = 0 } -> true | nil, message
-- id: a user's id as request.user carries it (user.id, else user.username;
-- a JWT's sub). This node's workers apply it at once; with Redis the call
-- then waits for Redis to take it (so it runs where Lua can yield: a view,
-- a task) and returns nil, "redis: ..." when Redis did not.
function revoke.revoke(opts)
  if type(opts) ~= "table" then error("flosse.revoke: expects { user = id, seconds = N }", 2) end
  local id = user_id(opts.user)
  if not id then error("flosse.revoke: user must be a non-empty string (at most 256 bytes) or an integer", 2) end
  local seconds = opts.seconds
  if seconds == nil then seconds = 0 end
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 or seconds == math.huge then
    error("flosse.revoke: seconds must be a number >= 0", 2)
  end
  for k in pairs(opts) do
    if k ~= "user" and k ~= "seconds" then error(("flosse.revoke: unknown option %q"):format(tostring(k)), 2) end
  end
  core.log("info", ("revoked user %s (new streams refused for %gs)"):format(id, seconds))
  local ok, err = core.revoke(id, seconds)
  if not ok then return nil, err end
  local rs = core.redis_settings()
  if not rs then return true end
  local _, rerr = core.redis_client():call("EVAL", PUBLISH, 2, rs.prefix .. "revoked", rs.prefix .. "revoke",
    core.node_id(), ("%.3f"):format(seconds), id)
  if rerr then
    core.log("warn", ("revoked user %s here, but not on the other nodes: redis: %s"):format(id, rerr))
    return nil, "redis: " .. rerr
  end
  return true
end

return revoke
