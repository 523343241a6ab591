-- The cases spec/fuzz/lua_parsers_fuzz.c runs on each fuzz input: { name,
-- function(bytes) } pairs. Each calls a parser of client bytes and checks
-- what it returned; an error() fails the run, and so does a case that is
-- not linear in time (the harness bounds instructions and CPU time).
-- The checks are written to be linear themselves (a byte loop, no pattern
-- that backtracks).

local request = require "flosse.request"
local auth = require "flosse.auth"

local byte, find, sub = string.byte, string.find, string.sub

local function fail(fmt, ...)
  error(string.format(fmt, ...), 2)
end

-- A table of string names to string values.
local function check_map(t, what)
  if type(t) ~= "table" then fail("%s: a %s, not a table", what, type(t)) end
  if getmetatable(t) ~= nil then fail("%s: a table with a metatable", what) end
  for k, v in pairs(t) do
    if type(k) ~= "string" then fail("%s: a %s key", what, type(k)) end
    if type(v) ~= "string" then fail("%s[%q]: a %s value", what, k, type(v)) end
  end
end

local function check_string(v, what)
  if type(v) ~= "string" then fail("%s: a %s, not a string", what, type(v)) end
  return v
end

-- Lua's %s (C isspace): space, \t, \n, \v, \f, \r.
local SPACE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true, [32] = true }

-- trim by a byte loop: the reference for request.trim.
local function trim_ref(s)
  local i, j = 1, #s
  while i <= j and SPACE[byte(s, i)] do i = i + 1 end
  while j >= i and SPACE[byte(s, j)] do j = j - 1 end
  return sub(s, i, j)
end

-- The input cut at its first two LFs: url, cookie header, Authorization header.
local function split3(s)
  local a = find(s, "\n", 1, true)
  if not a then return s, "", "" end
  local b = find(s, "\n", a + 1, true)
  if not b then return sub(s, 1, a - 1), sub(s, a + 1), "" end
  return sub(s, 1, a - 1), sub(s, a + 1, b - 1), sub(s, b + 1)
end

local function new_request(url, cookie, authorization)
  return request.new({ method = "GET", url = url, version = "1.1",
    headers = { cookie = cookie, authorization = authorization }, remote_addr = "127.0.0.1" })
end

local function check_request(r, url, cookie, authorization)
  if not request.is_request(r) then fail("request.new: not a request") end
  if r.method ~= "GET" or r.url ~= url then fail("request.new: method or url changed") end
  local path = check_string(r.path, "request.path")
  if byte(path, 1) ~= 47 then fail("request.path %q does not start with /", sub(path, 1, 40)) end
  check_string(r.query_string, "request.query_string")
  check_map(r.query, "request.query")
  check_map(r.cookies, "request.cookies")
  if r.headers["Cookie"] ~= cookie or r.headers["AUTHORIZATION"] ~= authorization then
    fail("request.headers: a lookup in another case lost the value")
  end
  if r.last_event_id ~= nil then fail("request.last_event_id without the header") end
end

local tokens = { secret = "alice", s3cr3t = { username = "bob", is_staff = true } }
local classes = {
  table = auth.TokenAuthentication({ tokens = tokens }),
  ["function"] = auth.TokenAuthentication({ keyword = "Token", cookie = "tok", query = "t",
    tokens = function(token) return tokens[token] end }),
  header_only = auth.TokenAuthentication({ tokens = tokens, cookie = false, query = false }),
}

local function check_auth(r, authorization)
  for name, cls in pairs(classes) do
    local found = cls:credentials(r)
    if type(found) ~= "table" then fail("%s credentials: a %s", name, type(found)) end
    local seen = {}
    for i, tok in ipairs(found) do
      check_string(tok, name .. " credential")
      if tok == "" then fail("%s credential %d is empty", name, i) end
      if seen[tok] then fail("%s credential %d repeated", name, i) end
      seen[tok] = true
    end
    if #found > 3 then fail("%s: %d credentials from 3 sources", name, #found) end
    if name == "header_only" and found[1] then
      local tok = found[1]
      for i = 1, #tok do
        if SPACE[byte(tok, i)] then fail("a bearer token with whitespace") end
      end
      if not find(authorization, tok, 1, true) then fail("a bearer token not in the header") end
    end
    local user = cls:authenticate(r)
    if user ~= nil then
      if type(user) ~= "table" or user.is_authenticated ~= true or type(user.username) ~= "string" then
        fail("%s authenticate: not a user table", name)
      end
      if user.username ~= "alice" and user.username ~= "bob" then fail("%s: an unknown user", name) end
    end
  end
end

return {
  { "unquote", function(s)
    local u = check_string(request.unquote(s), "unquote")
    if #u > #s then fail("unquote made %d bytes of %d", #u, #s) end
    if not find(s, "%", 1, true) and u ~= s then fail("unquote changed a string without %%") end
  end },
  { "unquote+", function(s)
    local u = check_string(request.unquote(s, true), "unquote+")
    if #u > #s then fail("unquote+ made %d bytes of %d", #u, #s) end
  end },
  { "trim", function(s)
    if request.trim(s) ~= trim_ref(s) then fail("trim differs from the byte-loop trim") end
  end },
  { "parse_query", function(s) check_map(request.parse_query(s), "parse_query") end },
  { "parse_cookies", function(s)
    local c = request.parse_cookies(s)
    check_map(c, "parse_cookies")
    for k in pairs(c) do
      if k == "" or k ~= trim_ref(k) or find(k, ";", 1, true) then fail("cookie name %q", sub(k, 1, 40)) end
    end
  end },
  -- The whole input as the target, the Cookie and the Authorization header.
  { "request.new", function(s)
    local r = new_request(s, s, s)
    check_request(r, s, s, s)
    check_auth(r, s)
  end },
  -- The input cut at its first two LFs into the three.
  { "request.new split", function(s)
    local url, cookie, authorization = split3(s)
    local r = new_request(url, cookie, authorization)
    check_request(r, url, cookie, authorization)
    check_auth(r, authorization)
  end },
  -- A well-formed header round trip: the token comes back as it went.
  { "bearer", function(s)
    local tok = s:gsub("[%s]", "")
    local found = classes.header_only:credentials(new_request("/", nil, " Bearer \t" .. tok .. "  "))
    if tok == "" then
      if found[1] then fail("a token from an empty Authorization") end
    elseif found[1] ~= tok then
      fail("Bearer token of %d bytes not read back", #tok)
    end
  end },
}
