-- flosse.request: the request object a view, a permission and an
-- authentication class see, built from the raw table the C core hands over:
--   raw = { method = "GET", url = "/sse/x/?a=1", version = "1.1",
--           headers = { ["last-event-id"] = "5", cookie = "a=1; b=2" },
--           body = "", remote_addr = "127.0.0.1" }

local byte, char, find, match, sub = string.byte, string.char, string.find, string.match, string.sub

local request = {}

local Request = { __name = "flosse.Request" }

-- Fields made on first read and then kept (query, cookies: parsed once).
local lazy = {
  query_string = function() return "" end,
  body = function() return "" end,
  query = function(self) return request.parse_query(self.query_string) end,
  cookies = function(self) return request.parse_cookies(self.headers["cookie"]) end,
  last_event_id = function(self) return self.headers["last-event-id"] end,
  -- the socket's peer; set apart only when a trusted proxy named the client
  peer_addr = function(self) return self.remote_addr end,
  _close_handlers = function() return {} end,
  params = function() return {} end,
}
local KEEP = { query = true, cookies = true, _close_handlers = true, params = true }

function Request.__index(self, k)
  local method = Request[k]
  if method ~= nil then return method end
  local make = lazy[k]
  if make == nil then return nil end
  local v = make(self)
  if KEEP[k] then rawset(self, k, v) end
  return v
end

--- unquote(s, plus_is_space) -> string
-- Percent-decodes s; with plus_is_space, "+" is a space (query strings only;
-- "%2B" stays a "+"). A malformed sequence ("%", "%4", "%zz") is kept as is.
-- Every "%XX" (either case) -> its byte: gsub with a table calls no Lua.
local HEX_BYTES = {}
for b = 0, 255 do
  local lo, up = ("%02x"):format(b), ("%02X"):format(b)
  for _, hex in ipairs({ lo, up, lo:sub(1, 1) .. up:sub(2), up:sub(1, 1) .. lo:sub(2) }) do
    HEX_BYTES[hex] = char(b)
  end
end

function request.unquote(s, plus_is_space)
  if type(s) ~= "string" then
    error("flosse.request.unquote: expects a string, got " .. type(s), 2)
  end
  if plus_is_space then s = s:gsub("%+", " ") end
  if not find(s, "%", 1, true) then return s end
  return (s:gsub("%%(%x%x)", HEX_BYTES))
end
local unquote = request.unquote

--- parse_query(qs) -> table name -> value
-- "&"-separated pairs; a pair without "=" has the value ""; names and values
-- are decoded ("+" is a space); the last value wins for a repeated name.
function request.parse_query(qs)
  local query = {}
  if qs == nil or qs == "" then return query end
  for pair in qs:gmatch("[^&]+") do
    local eq = pair:find("=", 1, true)
    local name, value
    if eq then
      name, value = pair:sub(1, eq - 1), pair:sub(eq + 1)
    else
      name, value = pair, ""
    end
    query[unquote(name, true)] = unquote(value, true)
  end
  return query
end

-- Every pattern here runs in time linear in the client's bytes: a
-- pattern like "^%s*(.-)%s*$" is quadratic on a run of spaces, and time
-- spent inside one C string function is not seen by the instruction budget.
local function trim(s)
  local first = find(s, "%S")
  if not first then return "" end
  -- ".*%S" from the first non-space: the greedy run backs off to the last
  -- non-space one byte at a time, each step a single test.
  return match(s, "^.*%S", first)
end
request.trim = trim

-- Like Python's http.cookies._unquote (what Django's parse_cookie uses): a
-- value in double quotes loses them, and \" \\ and \ooo escapes are undone.
local function cookie_unquote(v)
  if #v < 2 or byte(v, 1) ~= 34 or byte(v, -1) ~= 34 then return v end
  v = sub(v, 2, -2)
  if not find(v, "\\", 1, true) then return v end
  local out, i, n = {}, 1, #v
  while i <= n do
    local bs = find(v, "\\", i, true) -- the next escape; what is before it, as it is
    if not bs or bs == n then
      out[#out + 1] = sub(v, i)
      break
    end
    out[#out + 1] = sub(v, i, bs - 1)
    local oct = match(v, "^[0-3][0-7][0-7]", bs + 1)
    if oct then
      out[#out + 1] = char(tonumber(oct, 8))
      i = bs + 4
    else
      out[#out + 1] = sub(v, bs + 1, bs + 1)
      i = bs + 2
    end
  end
  return table.concat(out)
end

--- parse_cookies(header) -> table name -> value
-- Django's parse_cookie: "; "-separated name=value pairs, spaces trimmed
-- around names and values, "=" allowed inside a value, a quoted value
-- unquoted, no percent-decoding; the last value wins for a repeated name.
function request.parse_cookies(header)
  local cookies = {}
  if type(header) ~= "string" then return cookies end
  for chunk in header:gmatch("[^;]+") do
    local eq = chunk:find("=", 1, true)
    if eq then
      local name = trim(chunk:sub(1, eq - 1))
      if name ~= "" then cookies[name] = cookie_unquote(trim(chunk:sub(eq + 1))) end
    end
  end
  return cookies
end

-- Headers: stored under lowercase names; any string key is lowercased on
-- lookup and assignment, so headers["X-API-Key"] == headers["x-api-key"].
local headers_mt = {
  __name = "flosse.Headers",
  __index = function(t, k)
    if type(k) == "string" then return rawget(t, k:lower()) end
    return nil
  end,
  __newindex = function(t, k, v)
    if type(k) == "string" then k = k:lower() end
    rawset(t, k, v)
  end,
}

local function make_headers(raw_headers)
  local headers = setmetatable({}, headers_mt)
  if raw_headers ~= nil then
    if type(raw_headers) ~= "table" then
      error("flosse.request.new: raw.headers must be a table", 3)
    end
    for k, v in pairs(raw_headers) do
      if type(k) == "string" then headers[k] = v end
    end
  end
  return headers
end

-- Splits a request target into the path and the query string; an
-- absolute-form target ("http://host/p?q") loses its scheme and authority.
local function split_url(url)
  -- The common case, an origin-form target with nothing to unquote.
  if url:byte(1) == 47 and not url:find("[#%%]") then
    local q = url:find("?", 1, true)
    if not q then return url, nil end
    return url:sub(1, q - 1), url:sub(q + 1)
  end
  url = url:gsub("#.*$", "")
  local rest = url:match("^%a[%w+.-]*://[^/?]*(.*)$")
  if rest then url = rest end
  local q = url:find("?", 1, true)
  local path, qs = url, nil
  if q then path, qs = url:sub(1, q - 1), url:sub(q + 1) end
  path = unquote(path, false)
  if path:sub(1, 1) ~= "/" then path = "/" .. path end
  return path, qs
end

--- new(raw [, core_headers]) -> Request
-- core_headers: raw.headers comes from the core (names already lowercased,
-- the table is the request's own) and becomes request.headers as it is.
function request.new(raw, core_headers)
  if type(raw) ~= "table" then
    error("flosse.request.new: expects the raw request table, got " .. type(raw), 2)
  end
  if type(raw.method) ~= "string" then error("flosse.request.new: raw.method must be a string", 2) end
  if type(raw.url) ~= "string" then error("flosse.request.new: raw.url must be a string", 2) end
  local path, qs = split_url(raw.url)
  -- Six fields, so that with params and the route the table keeps 8 hash
  -- slots: an idle stream holds its request for as long as it lives. The
  -- rest is made on first use (see Request.__index).
  local req = setmetatable({
    method = raw.method,
    url = raw.url,
    version = raw.version,
    path = path,
    headers = core_headers and setmetatable(raw.headers, headers_mt) or make_headers(raw.headers),
    remote_addr = raw.remote_addr,
  }, Request)
  if qs then req.query_string = qs end
  if raw.body and raw.body ~= "" then req.body = raw.body end
  return req
end

local function is_callable(fn)
  if type(fn) == "function" then return true end
  local mt = getmetatable(fn)
  return type(mt) == "table" and mt.__call ~= nil
end

--- request:on_close(fn)
-- Registers fn to be called (with the request) once the stream ends. After
-- the handlers have run, fn is called at once (the client is already gone).
function Request:on_close(fn)
  if not is_callable(fn) then
    error("flosse.Request:on_close: expects a function, got " .. type(fn), 2)
  end
  if self._closed then
    fn(self)
    return
  end
  local handlers = self._close_handlers
  handlers[#handlers + 1] = fn
end

--- request:run_close_handlers() -> list of error messages (empty when none)
-- Calls every handler once, in order, each under pcall. A second call does
-- nothing and returns an empty list.
function Request:run_close_handlers()
  local errors = {}
  if self._closed then return errors end
  self._closed = true
  local handlers = rawget(self, "_close_handlers") -- nil when none was added
  self._close_handlers = nil
  for i = 1, handlers and #handlers or 0 do
    local ok, err = pcall(handlers[i], self)
    if not ok then errors[#errors + 1] = tostring(err) end
  end
  return errors
end

--- request:is_closed() -> boolean (true once the close handlers have run)
function Request:is_closed()
  return self._closed == true
end

request.Request = Request

--- is_request(v) -> boolean
function request.is_request(v)
  return getmetatable(v) == Request
end

return request
