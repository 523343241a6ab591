-- flosse.auth: authentication classes turn a credential into request.user.
--
-- Browsers' EventSource cannot send an Authorization header, so
-- TokenAuthentication also reads a cookie and a query parameter. Like
-- permission checks, authenticate() runs in the view's coroutine: a token
-- function may wait (a sleep, a channel, a Redis look-up).

local trim = require("flosse.request").trim

local auth = {}

--- anonymous() -> a new anonymous user table.
function auth.anonymous()
  return { username = "", is_authenticated = false, is_staff = false }
end

-- Deep copy of a user table (cycles kept, metatables shared), so that a view
-- mutating request.user cannot change the configured user.
local function deep_copy(v, seen)
  if type(v) ~= "table" then return v end
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[deep_copy(k, seen)] = deep_copy(x, seen) end
  return setmetatable(out, getmetatable(v))
end

-- A user given as a string becomes { username = s }; a table is copied.
-- is_authenticated defaults to true and is_staff to false.
local function normalize_user(user)
  local u
  if type(user) == "string" then
    u = { username = user }
  elseif type(user) == "table" then
    u = deep_copy(user, {})
  else
    error("flosse.auth: a user must be a table or a string, got " .. type(user), 0)
  end
  if rawget(u, "is_authenticated") == nil then u.is_authenticated = true end
  if rawget(u, "is_staff") == nil then u.is_staff = false end
  return u
end
auth.normalize_user = normalize_user

-- The token of "Authorization: <keyword> <token>" (keyword case-insensitive,
-- spaces around the token trimmed), or nil.
-- Linear in the header's length, whatever it holds (see flosse.request.trim).
local function bearer_token(value, keyword)
  if type(value) ~= "string" then return nil end
  local first = value:find("%S")
  if not first then return nil end
  local gap = value:find("%s", first)
  if not gap then return nil end
  if value:sub(first, gap - 1):lower() ~= keyword:lower() then return nil end
  local rest = trim(value:sub(gap))
  -- a token never holds spaces (a repeated header is joined with ", ")
  if rest == "" or rest:find("%s") then return nil end
  return rest
end

-- A function, or a table/userdata with __call (such a table is a function
-- source, not a token table).
local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

local TokenAuthentication = { __name = "flosse.TokenAuthentication" }
TokenAuthentication.__index = TokenAuthentication

local function check_source(opts, key, default)
  local v = opts[key]
  if v == nil then return default end
  if v == false then return false end
  if type(v) ~= "string" or v == "" then
    error(string.format("flosse.auth.TokenAuthentication: %s must be a name or false", key), 3)
  end
  return v
end

--- TokenAuthentication{ tokens = table|function, header = true, keyword = "Bearer",
---   cookie = "flosse_token", query = "token" } -> object with :authenticate(request)
-- tokens: a table token -> user, or function(token, request) -> user | nil.
-- header/cookie/query: false disables that source.
function TokenAuthentication.new(opts)
  if type(opts) ~= "table" then
    error("flosse.auth.TokenAuthentication: expects an options table", 2)
  end
  local tokens = opts.tokens
  if type(tokens) ~= "table" and not is_callable(tokens) then
    error("flosse.auth.TokenAuthentication: tokens must be a table or a function", 2)
  end
  local header = opts.header
  if header == nil then header = true end
  if type(header) ~= "boolean" then
    error("flosse.auth.TokenAuthentication: header must be true or false", 2)
  end
  local keyword = opts.keyword or "Bearer"
  if type(keyword) ~= "string" or not keyword:match("^%S+$") then
    error("flosse.auth.TokenAuthentication: keyword must be a word", 2)
  end
  return setmetatable({
    tokens = tokens,
    header = header,
    keyword = keyword,
    cookie = check_source(opts, "cookie", "flosse_token"),
    query = check_source(opts, "query", "token"),
  }, TokenAuthentication)
end

-- The credentials the request carries, in order: header, cookie, query.
function TokenAuthentication:credentials(request)
  local found, seen = {}, {}
  local function add(tok)
    if type(tok) == "string" and tok ~= "" and not seen[tok] then
      seen[tok] = true
      found[#found + 1] = tok
    end
  end
  if self.header and request.headers then
    add(bearer_token(request.headers["authorization"], self.keyword))
  end
  if self.cookie and request.cookies then add(request.cookies[self.cookie]) end
  if self.query and request.query then add(request.query[self.query]) end
  return found
end

--- obj:authenticate(request) -> user (a fresh copy) | nil
-- Each credential present is looked up in order; the first known one wins.
function TokenAuthentication:authenticate(request)
  local tokens = self.tokens
  for _, tok in ipairs(self:credentials(request)) do
    local user
    if is_callable(tokens) then
      user = tokens(tok, request)
    else
      user = tokens[tok]
    end
    if user then return normalize_user(user) end
  end
  return nil
end

auth.TokenAuthentication = setmetatable({}, {
  __index = TokenAuthentication,
  __call = function(_, opts) return TokenAuthentication.new(opts) end,
})

--- authenticate(authentication_classes, request) -> user
-- The first class whose authenticate returns a user wins (a string becomes
-- { username = s }); otherwise auth.anonymous(). A class is an object with an
-- :authenticate(request) method, or a function(request).
function auth.authenticate(authentication_classes, request)
  if authentication_classes ~= nil and type(authentication_classes) ~= "table" then
    error("flosse.auth.authenticate: authentication_classes must be a list", 2)
  end
  for i, cls in ipairs(authentication_classes or {}) do
    local user
    if type(cls) == "table" and cls.authenticate ~= nil then
      user = cls:authenticate(request)
    elseif is_callable(cls) then
      user = cls(request)
    else
      error(string.format("flosse.auth.authenticate: authentication_classes[%d] has no authenticate",
        i), 2)
    end
    if user then return normalize_user(user) end
  end
  return auth.anonymous()
end

return auth
