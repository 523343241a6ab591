-- flosse.permissions: permission classes, checked before a view runs.
--
-- A class is a table; its instances get it as their metatable (class.__index
-- is the class itself), and a subclass has its parent as metatable, so lookups
-- walk up the chain. check() runs inside the view's coroutine, so a
-- has_permission may wait (flosse.sleep, a channel...): nothing here wraps it
-- in a C boundary that cannot yield.

local grants = require "flosse.grants"

local permissions = {}

local DEFAULT_MESSAGE = "You do not have permission to perform this action."

local BaseSSEPermission = {
  __name = "flosse.SSEPermission",
  message = DEFAULT_MESSAGE,
}
BaseSSEPermission.__index = BaseSSEPermission

--- BaseSSEPermission:has_permission(request) -> true (allow everything).
function BaseSSEPermission:has_permission(request) -- luacheck: ignore 212
  return true
end

--- cls:new() -> an instance (a new table whose metatable is cls).
function BaseSSEPermission:new()
  return setmetatable({}, self)
end

--- cls:extend(fields?) -> subclass of cls, holding a copy of fields.
-- Subclasses can :extend() again.
function BaseSSEPermission:extend(fields)
  if fields ~= nil and type(fields) ~= "table" then
    error("flosse.permissions: extend(fields) expects a table", 2)
  end
  local cls = {}
  for k, v in pairs(fields or {}) do cls[k] = v end
  cls.__index = cls
  if rawget(cls, "__name") == nil then cls.__name = rawget(self, "__name") end
  return setmetatable(cls, self)
end

local AllowAny = BaseSSEPermission:extend {
  __name = "flosse.AllowAny",
  has_permission = function() return true end,
}

local IsAuthenticated = BaseSSEPermission:extend {
  __name = "flosse.IsAuthenticated",
  has_permission = function(_, request)
    local user = request.user
    return (user and user.is_authenticated) and true or false
  end,
}

local IsAdminUser = BaseSSEPermission:extend {
  __name = "flosse.IsAdminUser",
  has_permission = function(_, request)
    local user = request.user
    return (user and user.is_staff) and true or false
  end,
}

-- The channel a request's view serves: the view's own channel (relay_view{
-- channel = } and publish_view{ channel = } record it on the view object,
-- which request.route holds), else the route's <name> parameter. The fixed
-- channel comes first since it is the one the view subscribes or publishes.
local function channel_of(request)
  local route = request.route
  local view = type(route) == "table" and route.view
  local fixed = type(view) == "table" and rawget(view, "channel")
  if type(fixed) == "string" then return fixed end
  local params = request.params
  local name = type(params) == "table" and params.name
  if type(name) == "string" then return name end
  return nil
end
permissions.channel_of = channel_of

-- request.user:may_subscribe / :may_publish answer for the channel (a user
-- table without the methods is asked through flosse.grants, the same rule).
local function may(request, kind)
  local name = channel_of(request)
  if not name then return false end
  return grants.user_may(request.user, kind, name)
end

local CanSubscribe = BaseSSEPermission:extend {
  __name = "flosse.CanSubscribe",
  has_permission = function(_, request) return may(request, "subscribe") end,
}

local CanPublish = BaseSSEPermission:extend {
  __name = "flosse.CanPublish",
  has_permission = function(_, request) return may(request, "publish") end,
}

-- One instance per request: cls:new() when the class has one, otherwise a
-- table that inherits from cls (a plain table with has_permission works).
local function instantiate(cls, i)
  if type(cls) ~= "table" then
    error(string.format("flosse.permissions: permission_classes[%d] is a %s, not a class",
      i, type(cls)), 3)
  end
  local perm
  if type(cls.new) == "function" then
    perm = cls:new()
  else
    perm = setmetatable({}, { __index = cls })
  end
  if type(perm) ~= "table" or perm.has_permission == nil then
    error(string.format("flosse.permissions: permission_classes[%d] has no has_permission", i), 3)
  end
  return perm
end

--- check(permission_classes, request) -> true | false, message
-- Left to right; the first class whose has_permission returns a falsy value
-- stops the check (later classes are not instantiated nor called) and its
-- message is returned. nil or an empty list allows.
function permissions.check(permission_classes, request)
  if permission_classes == nil then return true end
  if type(permission_classes) ~= "table" then
    error("flosse.permissions.check: permission_classes must be a list", 2)
  end
  for i = 1, #permission_classes do
    local perm = instantiate(permission_classes[i], i)
    if not perm:has_permission(request) then
      local message = perm.message
      if message == nil then message = DEFAULT_MESSAGE end
      return false, tostring(message)
    end
  end
  return true
end

permissions.DEFAULT_MESSAGE = DEFAULT_MESSAGE
permissions.BaseSSEPermission = BaseSSEPermission
permissions.AllowAny = AllowAny
permissions.IsAuthenticated = IsAuthenticated
permissions.IsAdminUser = IsAdminUser
permissions.CanSubscribe = CanSubscribe
permissions.CanPublish = CanPublish

return permissions
