--- flosse.cors: Cross-Origin Resource Sharing (the Fetch standard's CORS
-- protocol) for the routes a policy covers: the settings' cors, or a view's
-- own cors option (false turns it off for that view).
--
-- A policy as written: { origins = { "https://app.example" } | "*",
--   credentials = false, max_age = 600, headers = { ... }, expose = { ... } }
-- normalize() checks it and returns the table the dispatcher uses.

local cors = {}

--- Request headers a preflight allows when the policy names none.
cors.DEFAULT_HEADERS = { "Authorization", "Content-Type", "Last-Event-ID" }
--- Seconds a browser may cache a preflight's answer when max_age is not set.
cors.DEFAULT_MAX_AGE = 600

local KEYS = { origins = true, credentials = true, max_age = true, headers = true, expose = true }
local TOKEN = "^[!#$%%&'*+%-.^_`|~%w]+$"

local function token_list(v, key, what)
  if type(v) ~= "table" then return nil, ("%s.%s must be a list of header names"):format(what, key) end
  local list = {}
  for i, name in ipairs(v) do
    if type(name) ~= "string" or not name:match(TOKEN) then
      return nil, ("%s.%s[%d] is not a header name"):format(what, key, i)
    end
    list[i] = name
  end
  return list
end

--- normalize(value, what) -> policy | false | nil, err
-- value: nil (no policy: nil), false (off: false) or a policy table; what
-- names it in errors ("settings.lua: cors", "sse_stream: cors").
function cors.normalize(value, what)
  if value == nil or value == false then return value end
  if type(value) ~= "table" then
    return nil, ("%s must be a table or false, got %s"):format(what, type(value))
  end
  for k in pairs(value) do
    if not KEYS[k] then return nil, ("%s: unknown key %q"):format(what, tostring(k)) end
  end
  local p = { origins = {}, credentials = false, max_age = cors.DEFAULT_MAX_AGE }
  local o = value.origins
  if o == "*" then
    p.any = true
  elseif type(o) == "table" then
    for i, origin in ipairs(o) do
      -- an origin is scheme://host[:port], what a browser sends in Origin
      if type(origin) ~= "string" or not origin:match("^%a[%w+.-]*://[^/%s%z]+$") then
        return nil, ("%s.origins[%d] must be an origin such as \"https://app.example\""):format(what, i)
      end
      p.origins[origin:lower()] = true
    end
  else
    return nil, ("%s.origins must be a list of origins or \"*\""):format(what)
  end
  if value.credentials ~= nil then
    if type(value.credentials) ~= "boolean" then return nil, what .. ".credentials must be a boolean" end
    p.credentials = value.credentials
  end
  if value.max_age ~= nil then
    local n = math.type(value.max_age) and math.tointeger(value.max_age)
    if not n or n < 0 then return nil, what .. ".max_age must be a non-negative integer (seconds)" end
    p.max_age = n
  end
  local err
  p.headers, err = token_list(value.headers or cors.DEFAULT_HEADERS, "headers", what)
  if not p.headers then return nil, err end
  p.expose, err = token_list(value.expose or {}, "expose", what)
  if not p.expose then return nil, err end
  p.allow_headers = table.concat(p.headers, ", ")
  p.expose_headers = table.concat(p.expose, ", ")
  return p
end

--- policy_for(view_cors, settings_cors) -> the policy covering the view, or nil.
function cors.policy_for(view_cors, settings_cors)
  if view_cors == false then return nil end
  return view_cors or settings_cors or nil
end

-- The value of Access-Control-Allow-Origin for origin, or nil (not listed).
local function allowed(p, origin)
  if type(origin) ~= "string" then return nil end
  if p.any then return p.credentials and origin or "*" end
  if p.origins[origin:lower()] then return origin end
  return nil
end

--- headers(policy, origin, into) -> into
-- The headers of an actual response on a covered route: Vary: Origin
-- always; Access-Control-* only for a listed origin.
function cors.headers(p, origin, into)
  into = into or {}
  local vary = into.Vary
  into.Vary = vary and (vary .. ", Origin") or "Origin"
  local value = allowed(p, origin)
  if value then
    into["Access-Control-Allow-Origin"] = value
    if p.credentials then into["Access-Control-Allow-Credentials"] = "true" end
    if p.expose_headers ~= "" then into["Access-Control-Expose-Headers"] = p.expose_headers end
  end
  return into
end

--- preflight(policy, req, allow) -> headers | nil
-- For an OPTIONS with Origin and Access-Control-Request-Method from a
-- listed origin: the 204's headers (allow: the view's methods, "GET, HEAD").
-- nil when it is not a preflight CORS answers.
function cors.preflight(p, req, allow)
  local origin = req.headers["origin"]
  if req.headers["access-control-request-method"] == nil then return nil end
  local value = allowed(p, origin)
  if not value then return nil end
  local h = {
    Vary = "Origin",
    ["Access-Control-Allow-Origin"] = value,
    ["Access-Control-Allow-Methods"] = allow,
    ["Access-Control-Max-Age"] = tostring(p.max_age),
  }
  if p.allow_headers ~= "" then h["Access-Control-Allow-Headers"] = p.allow_headers end
  if p.credentials then h["Access-Control-Allow-Credentials"] = "true" end
  return h
end

return cors
