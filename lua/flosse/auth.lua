-- flosse.auth: authentication classes turn a credential into request.user.
--
-- Browsers' EventSource cannot send an Authorization header, so
-- TokenAuthentication also reads a cookie and a query parameter. Like
-- permission checks, authenticate() runs in the view's coroutine: a token
-- function may wait (a sleep, a channel, a Redis look-up).

local trim = require("flosse.request").trim
local grants = require "flosse.grants"

-- JWTAuthentication's C core (libcrypto) and JSON decoder, loaded by its
-- constructor: the token parsers here stay loadable without the C module
-- (spec/fuzz/lua_parsers_fuzz embeds Lua with no C modules).
local core, cjson
local function load_jwt_libs()
  if core then return end
  core = require "flosse.core"
  cjson = require("cjson.safe").new()
  -- Only JSON: no NaN, Infinity or hex numbers (lua-cjson takes them by default).
  cjson.decode_invalid_numbers(false)
end

local auth = {}

-- The methods every user has (request.user:may_subscribe(name)): the
-- metatable of a user table that has none of its own.
local User = { __name = "flosse.User" }
User.__index = User

--- user:may_subscribe(name) -> boolean
-- True only when a pattern of the user's subscribe list matches name (no
-- grant, no right: a user without grants, or anonymous, may not).
function User:may_subscribe(name) return grants.user_may(self, "subscribe", name) end

--- user:may_publish(name) -> boolean, likewise with the publish list.
function User:may_publish(name) return grants.user_may(self, "publish", name) end

auth.User = User

-- Gives u the user methods: User as its metatable, or, when it has a
-- metatable of its own, the methods as fields (unless it defines them).
local function with_methods(u)
  if getmetatable(u) == nil then return setmetatable(u, User) end
  if u.may_subscribe == nil then rawset(u, "may_subscribe", User.may_subscribe) end
  if u.may_publish == nil then rawset(u, "may_publish", User.may_publish) end
  return u
end

--- anonymous() -> a new anonymous user table.
function auth.anonymous()
  return setmetatable({ username = "", is_authenticated = false, is_staff = false }, User)
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
  return with_methods(u)
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

local function check_source(opts, key, default, cls)
  local v = opts[key]
  if v == nil then return default end
  if v == false then return false end
  if type(v) ~= "string" or v == "" then
    error(string.format("flosse.auth.%s: %s must be a name or false", cls, key), 4)
  end
  return v
end

-- The credential sources of opts (header, keyword, cookie, query) into obj,
-- for TokenAuthentication and JWTAuthentication alike. cls names the class
-- in errors, which point at the caller of cls's constructor.
local function check_sources(opts, obj, cls)
  local header = opts.header
  if header == nil then header = true end
  if type(header) ~= "boolean" then
    error(string.format("flosse.auth.%s: header must be true or false", cls), 3)
  end
  local keyword = opts.keyword or "Bearer"
  if type(keyword) ~= "string" or not keyword:match("^%S+$") then
    error(string.format("flosse.auth.%s: keyword must be a word", cls), 3)
  end
  obj.header, obj.keyword = header, keyword
  obj.cookie = check_source(opts, "cookie", "flosse_token", cls)
  obj.query = check_source(opts, "query", "token", cls)
  return obj
end

-- The credentials a request carries for obj's sources, in order: header,
-- cookie, query (each once).
local function credentials(obj, request)
  local found, seen = {}, {}
  local function add(tok)
    if type(tok) == "string" and tok ~= "" and not seen[tok] then
      seen[tok] = true
      found[#found + 1] = tok
    end
  end
  if obj.header and request.headers then
    add(bearer_token(request.headers["authorization"], obj.keyword))
  end
  if obj.cookie and request.cookies then add(request.cookies[obj.cookie]) end
  if obj.query and request.query then add(request.query[obj.query]) end
  return found
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
  if type(tokens) == "table" and not is_callable(tokens) then
    -- A token table's grants are checked once, here; a function's users
    -- (and a JWT's) only match nothing where a pattern is malformed.
    -- (the message names the user, never its token)
    for _, user in pairs(tokens) do
      if type(user) == "table" then
        for _, kind in ipairs { "subscribe", "publish" } do
          if user[kind] ~= nil then
            local ok, why = grants.check_list(user[kind], ("user %q: %s"):format(
              tostring(user.username or user.id or "?"), kind))
            if not ok then error("flosse.auth.TokenAuthentication: " .. why, 2) end
          end
        end
      end
    end
  end
  return setmetatable(check_sources(opts, { tokens = tokens }, "TokenAuthentication"),
    TokenAuthentication)
end

-- The credentials the request carries, in order: header, cookie, query.
TokenAuthentication.credentials = credentials

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

local JWTAuthentication = { __name = "flosse.JWTAuthentication" }
JWTAuthentication.__index = JWTAuthentication

-- The algorithms and the key each needs: HS* a secret, RS256/ES256 a public
-- key. "none" is not among them, so it can never be configured.
local JWT_ALGORITHMS = {
  HS256 = "secret", HS384 = "secret", HS512 = "secret",
  RS256 = "public_key", ES256 = "public_key",
}

-- A token longer than this is refused before it is decoded.
local JWT_MAX_BYTES = 16384

local function jwt_error(fmt, ...)
  error("flosse.auth.JWTAuthentication: " .. fmt:format(...), 3)
end

--- JWTAuthentication{ secret = S | public_key = "FILE.pem", algorithms = { ... },
---   issuer = nil, audience = nil, leeway = 0,
---   header = true, keyword = "Bearer", cookie = "flosse_token", query = "token" }
---   -> object with :authenticate(request)
-- algorithms: a non-empty list of HS256, HS384, HS512 (with secret) or RS256,
-- ES256 (with public_key, a PEM file read and parsed here, once).
function JWTAuthentication.new(opts)
  load_jwt_libs()
  if type(opts) ~= "table" then jwt_error("expects an options table") end
  local secret, public_key = opts.secret, opts.public_key
  if secret ~= nil and public_key ~= nil then
    jwt_error("give secret or public_key, not both")
  end
  if secret == nil and public_key == nil then
    jwt_error("secret (for HS256/384/512) or public_key (a PEM file, for RS256/ES256) is required")
  end
  if secret ~= nil and (type(secret) ~= "string" or secret == "") then
    jwt_error("secret must be a non-empty string")
  end
  if public_key ~= nil and (type(public_key) ~= "string" or public_key == "") then
    jwt_error("public_key must be the path of a PEM file")
  end
  local kind = secret and "secret" or "public_key"
  local algorithms = opts.algorithms
  if type(algorithms) ~= "table" or #algorithms == 0 then
    jwt_error("algorithms must be a non-empty list, e.g. { \"HS256\" }")
  end
  local allowed = {}
  for i, alg in ipairs(algorithms) do
    local needs = JWT_ALGORITHMS[alg]
    if not needs then
      jwt_error("algorithms[%d]: %s is not HS256, HS384, HS512, RS256 or ES256", i, tostring(alg))
    end
    if needs ~= kind then
      jwt_error("algorithms[%d]: %s needs %s, not %s", i, alg, needs, kind)
    end
    allowed[alg] = true
  end
  local key = secret
  if public_key then
    local f, ferr = io.open(public_key, "rb")
    if not f then jwt_error("public_key: %s", ferr) end
    local pem = f:read("a")
    f:close()
    local k, kerr = core.jwt_key(pem or "")
    if not k then jwt_error("public_key %s: %s", public_key, kerr) end
    local ktype = k:type()
    for i, alg in ipairs(algorithms) do
      if (alg == "RS256" and ktype ~= "RSA") or (alg == "ES256" and ktype ~= "EC P-256") then
        jwt_error("algorithms[%d]: %s does not take the %s key of %s", i, alg, ktype, public_key)
      end
    end
    key = k
  end
  for _, name in ipairs { "issuer", "audience" } do
    local v = opts[name]
    if v ~= nil and (type(v) ~= "string" or v == "") then
      jwt_error("%s must be a non-empty string", name)
    end
  end
  local leeway = opts.leeway
  if leeway == nil then leeway = 0 end
  if math.type(leeway) == nil or leeway < 0 or leeway ~= leeway or leeway == math.huge then
    jwt_error("leeway must be a number of seconds >= 0")
  end
  local obj = {
    key = key,
    allowed = allowed,
    issuer = opts.issuer,
    audience = opts.audience,
    leeway = leeway,
  }
  return setmetatable(check_sources(opts, obj, "JWTAuthentication"), JWTAuthentication)
end

JWTAuthentication.credentials = credentials

-- A JSON object's text decoded to a table, or nil (an array, a scalar and
-- text that is not JSON are not objects).
local function json_object(text)
  if not text:find("^[ \t\r\n]*{") then return nil end
  local v = cjson.decode(text)
  if type(v) ~= "table" then return nil end
  return v
end

local function is_time(v) return math.type(v) ~= nil and v == v and v > -math.huge and v < math.huge end

--- obj:check(token, now?) -> claims, id | nil, why
-- The checks, in order: three base64url parts; a header that is a JSON
-- object with an allowed alg (and no crit); the signature; a payload that
-- is a JSON object; exp, nbf, iat (leeway seconds); iss; aud; sub.
function JWTAuthentication:check(token, now)
  if type(token) ~= "string" or #token > JWT_MAX_BYTES then return nil, "too long" end
  local header_json, payload_json, input, sig = core.jwt_decode(token)
  if not header_json then return nil, payload_json end
  local header = json_object(header_json)
  if not header then return nil, "the header is not a JSON object" end
  local alg = header.alg
  if type(alg) ~= "string" or not self.allowed[alg] then
    -- the token's own text goes to the log only when it is a short word
    local shown = type(alg) == "string" and alg:match("^[%w%-]+$") and #alg <= 16 and alg or "?"
    return nil, "alg " .. shown .. " is not allowed"
  end
  if header.crit ~= nil then return nil, "crit is not supported" end
  local ok, why = core.jwt_verify(alg, self.key, input, sig)
  if not ok then return nil, why end
  local claims = json_object(payload_json)
  if not claims then return nil, "the claims are not a JSON object" end
  -- to the microsecond: a stream with this user ends at expires_at by the
  -- same clock, so a reconnect just after it must be refused
  now = now or core.time()
  local leeway = self.leeway
  local exp, nbf, iat = claims.exp, claims.nbf, claims.iat
  if exp ~= nil and not (is_time(exp) and now < exp + leeway) then return nil, "expired" end
  if nbf ~= nil and not (is_time(nbf) and nbf <= now + leeway) then return nil, "not yet valid (nbf)" end
  if iat ~= nil and not (is_time(iat) and iat <= now + leeway) then return nil, "issued in the future (iat)" end
  if self.issuer and claims.iss ~= self.issuer then return nil, "wrong issuer" end
  local aud = claims.aud
  if aud ~= nil or self.audience then
    -- a token meant for an audience is refused where none is configured
    if not self.audience then return nil, "an audience but none configured" end
    local found = aud == self.audience
    if type(aud) == "table" then
      for _, a in ipairs(aud) do if a == self.audience then found = true end end
    end
    if not found then return nil, "wrong audience" end
  end
  -- lua-cjson decodes every number as a float: 42 is 42.0, its id "42"
  local sub = claims.sub
  if type(sub) == "number" and math.tointeger(sub) then sub = string.format("%d", math.tointeger(sub)) end
  if type(sub) ~= "string" or sub == "" then return nil, "no sub (a string or an integer)" end
  return claims, sub
end

--- obj:authenticate(request) -> user | nil
-- The first credential that passes every check gives the user:
-- { id = sub, username = sub, claims = the payload, is_authenticated = true,
--   is_staff = (claims.is_staff == true), expires_at = exp + leeway or nil,
--   subscribe =, publish = (the flosse claim's grants, below) }.
-- expires_at is exp + leeway: the moment the token stops being accepted.
-- A flosse claim gives the user its channel grants (flosse.grants): subscribe
-- = claims.flosse.subscribe, publish = claims.flosse.publish; a flosse claim
-- with neither (or that is not an object) still restricts the user, to
-- nothing (subscribe = {}).
-- Every refusal is the same nil (anonymous; the permission class answers
-- 403); why is only in a debug log line.
function JWTAuthentication:authenticate(request)
  for _, tok in ipairs(self:credentials(request)) do
    local claims, sub = self:check(tok)
    if claims then
      local subscribe, publish
      local g = claims.flosse
      if g ~= nil then
        if type(g) == "table" then subscribe, publish = g.subscribe, g.publish end
        if subscribe == nil and publish == nil then subscribe = {} end
      end
      return {
        id = sub,
        username = sub,
        claims = claims,
        is_authenticated = true,
        is_staff = claims.is_staff == true,
        expires_at = is_time(claims.exp) and claims.exp + self.leeway or nil,
        subscribe = subscribe,
        publish = publish,
      }
    end
    core.log("debug", "JWTAuthentication: token refused: " .. sub)
  end
  return nil
end

auth.JWTAuthentication = setmetatable({}, {
  __index = JWTAuthentication,
  __call = function(_, opts) return JWTAuthentication.new(opts) end,
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
