--- flosse.http: calling other services from views, permission and
-- authentication classes, and tasks, without blocking the server.
--
--   local res, err = flosse.http.request {
--     method = "POST", url = "https://api.example.com/orders",
--     headers = { ["Content-Type"] = "application/json" }, body = json,
--     timeout = 5, max_body = 64 * 1024,
--   }
--   local res, err = flosse.http.get("http://127.0.0.1:9000/status", { timeout = 2 })
--
-- A call suspends only the calling coroutine until the response came;
-- the worker serves everyone else meanwhile. res is { status = 200,
-- headers = { ["content-type"] = "..." }, body = "..." }; a network failure
-- is nil, err ("timeout", "refused", "too large", "resolve", "tls", ...),
-- never an error. A bad argument is an error, at the caller's line.
-- docs/http.md has the options, the defaults and the limits.
local core = require "flosse.core"

local http = {}

local OPTIONS = {
  method = true, url = true, headers = true, body = true, timeout = true, max_body = true,
  follow = true, ca_file = true,
}
local TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"
local USER_AGENT = "flosse/" .. core.version

-- Raises msg at the line that called flosse.http.request or .get (bad, then
-- check, then request or get, then the caller).
local function bad(what, msg)
  error(("%s: %s"):format(what, msg), 4)
end

-- The options as core.http_request takes them: headers as a list of
-- {name, value} pairs (sorted by name, so that a request is always sent the
-- same way), the method upper-cased, a User-Agent unless one was given.
local function check(opts, what)
  if type(opts) ~= "table" then bad(what, "expected a table of options, got " .. type(opts)) end
  for k in pairs(opts) do
    if not OPTIONS[k] then bad(what, ("unknown option %q"):format(tostring(k))) end
  end
  local url = opts.url
  if url == nil then bad(what, "url is required") end
  if type(url) ~= "string" then bad(what, "url must be a string") end
  if not url:lower():find("^https?://[^/?#]") or url:find("[%z\r\n]") then
    bad(what, ("url must be an http:// or https:// URL, not %q"):format(url:sub(1, 100)))
  end
  local method = opts.method or "GET"
  if type(method) ~= "string" or not method:find(TOKEN) then
    bad(what, "method must be a method name such as \"POST\"")
  end
  method = method:upper()
  local body = opts.body
  if body ~= nil and type(body) ~= "string" then bad(what, "body must be a string") end
  if body ~= nil and method == "HEAD" then bad(what, "a HEAD request has no body") end
  local t = opts.timeout
  if t ~= nil and (type(t) ~= "number" or t ~= t or t <= 0 or t > 1e6) then
    bad(what, "timeout must be a positive number of seconds")
  end
  local m = opts.max_body
  if m ~= nil and (type(m) ~= "number" or m ~= m or m < 0 or m ~= math.floor(m) or m > 2 ^ 53) then
    bad(what, "max_body must be a non-negative integer (bytes)")
  end
  if opts.follow ~= nil and type(opts.follow) ~= "boolean" then bad(what, "follow must be a boolean") end
  local ca = opts.ca_file
  if ca ~= nil and (type(ca) ~= "string" or ca == "" or ca:find("%z")) then
    bad(what, "ca_file must be the path of a PEM file")
  end
  local list, agent = {}, false
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then bad(what, "headers must be a table of names and string values") end
    for name, value in pairs(opts.headers) do
      if type(name) ~= "string" or not name:find(TOKEN) then
        bad(what, ("header name %q is not a token"):format(tostring(name)))
      end
      if type(value) ~= "string" then
        bad(what, ("header %s must be a string, not %s"):format(name, type(value)))
      end
      if value:find("[%z\r\n]") then bad(what, ("header %s holds a CR, LF or NUL byte"):format(name)) end
      if name:lower() == "user-agent" then agent = true end
      list[#list + 1] = { name, value }
    end
    table.sort(list, function(a, b) return a[1] < b[1] end)
  end
  if not agent then list[#list + 1] = { "User-Agent", USER_AGENT } end
  local ok, why = core.http_can_wait()
  if not ok then bad(what, why) end
  return {
    method = method, url = url, headers = list, body = body, timeout = t,
    max_body = m and math.tointeger(m), follow = opts.follow, ca_file = ca,
  }
end

--- http.parse_headers(raw): the header lines of a response as a table: names lower-cased, a
-- repeated header's values joined with ", " (RFC 9110's list form; for
-- Set-Cookie, which cannot be joined safely, read them from the raw
-- field). An obsolete folded line continues the one before.
function http.parse_headers(raw)
  local headers, last = {}, nil
  for line in raw:gmatch("([^\n]*)\n") do
    line = line:gsub("\r$", "")
    if line:find("^[ \t]") then
      if last then headers[last] = headers[last] .. " " .. line:match("^%s*(.-)%s*$") end
    else
      local name, value = line:match("^([^:]+):%s*(.-)%s*$")
      if name then
        name = name:lower()
        headers[name] = headers[name] and (headers[name] .. ", " .. value) or value
        last = name
      end
    end
  end
  return headers
end

local function send(o)
  local status, raw, body = core.http_request(o)
  if not status then return nil, raw end
  return { status = status, headers = http.parse_headers(raw), body = body, raw_headers = raw }
end

--- flosse.http.request{ method =, url =, headers =, body =, timeout =,
-- max_body =, follow =, ca_file = } -> res | nil, err
function http.request(opts)
  return send(check(opts, "flosse.http.request"))
end

--- flosse.http.get(url[, opts]) -> res | nil, err (opts: request's, but
-- url and method).
function http.get(url, opts)
  local what = "flosse.http.get"
  if opts ~= nil and type(opts) ~= "table" then
    error(what .. ": opts must be a table of options", 2)
  end
  local o = {}
  for k, v in pairs(opts or {}) do
    if k == "url" or k == "method" then error(("%s: %s is not an option of get"):format(what, k), 2) end
    o[k] = v
  end
  o.url = url
  return send(check(o, what))
end

return http
