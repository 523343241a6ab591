--- flosse.revoke: ends a user's open streams, everywhere, at once.
-- For a credential that must stop working before it expires (a stolen
-- token, a user logged out or banned): every worker ends the user's streams
-- with `event: flosse-revoked`, and, for `seconds`, refuses the user's new
-- streams with 403, so a client reconnecting with the same credential does
-- not get back in while the credential is being withdrawn. With Redis the
-- other nodes do the same (docs/security.md).
local core = require "flosse.core"

local revoke = {}

local function user_id(v)
  if math.type(v) == "float" and math.tointeger(v) then v = math.tointeger(v) end
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "string" and v ~= "" and #v <= 256 then return v end
  return nil
end

--- revoke{ user = id, seconds = 0 } -> true | nil, message
-- id: a user's id as request.user carries it (user.id, else user.username;
-- a JWT's sub).
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
  return core.revoke(id, seconds)
end

return revoke
