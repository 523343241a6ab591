--- flosse.server: what every request runs first, inside its own coroutine.
-- The C core calls the dispatcher with the parsed request; the dispatcher
-- routes, authenticates, checks permissions and runs the view. An ordinary
-- answer is returned as status, headers, body; a stream is started with
-- core.start_stream and the view's yields go straight to the core.
local core = require "flosse.core"
local flosse = require "flosse"
local urls = require "flosse.urls"
local auth = require "flosse.auth"
local permissions = require "flosse.permissions"
local request_mod = require "flosse.request"
local response = require "flosse.response"
local cors = require "flosse.cors"
local current = require "flosse.current"
local revoke_key = require("flosse.revoke").key
local proxies = require "flosse.proxies"
local metrics = require "flosse.metrics"

local server = {}

local TEXT = "text/plain; charset=utf-8"

local function text(status, body, extra)
  local headers = { ["Content-Type"] = TEXT }
  for k, v in pairs(extra or {}) do headers[k] = v end
  return status, headers, body
end

local function allow_header(methods)
  local list = {}
  for m in pairs(methods) do list[#list + 1] = m end
  table.sort(list)
  return table.concat(list, ", ")
end

-- Turns an ordinary view's result into status, headers, body (with the
-- CORS headers when a policy covers the route: extra).
local function answer(result, extra)
  if response.is_response(result) then
    local headers = result.headers
    if extra then
      headers = {}
      for k, v in pairs(result.headers) do headers[k] = v end
      for k, v in pairs(extra) do
        if k == "Vary" then
          local own = result:header("Vary")
          for name in pairs(headers) do if name:lower() == "vary" then headers[name] = nil end end
          if own then v = own .. ", " .. v end
        end
        headers[k] = v
      end
    end
    return result.status, headers, result.body
  elseif type(result) == "string" then
    return text(200, result, extra)
  end
  error(("the view returned %s; return flosse.response{...} or a string"):format(type(result)), 0)
end

-- Seconds a client over a per-client cap is told to wait (Retry-After).
local RETRY_AFTER = "5"

--- user_key(user) -> the id a user's streams are counted and revoked by
-- (user.id, else user.username, as flosse.revoke takes it), or nil for an
-- anonymous user.
function server.user_key(user)
  if type(user) ~= "table" or not user.is_authenticated then return nil end
  local id = user.id
  if id == nil or id == "" then id = user.username end
  return revoke_key(id)
end

-- Admits a stream (see core.admit_stream): nil when it may start, else the
-- status, headers and body refusing it.
local function admit(req, settings, extra)
  local user = req.user
  local key = server.user_key(user)
  local max_ip, max_user = settings.max_streams_per_ip, settings.max_streams_per_user
  local expires = type(user) == "table" and user.expires_at or nil
  if type(expires) ~= "number" then expires = nil end
  if not (key or max_ip or expires) then return nil end
  local ok, why = core.admit_stream(max_ip and req.remote_addr or nil, key, max_ip, max_user, expires)
  if ok then return nil end
  if why == "revoked" then
    core.log("info", ("refused %s %s: the user %s is revoked"):format(req.remote_addr, req.path, key))
    return text(403, permissions.DEFAULT_MESSAGE, extra)
  elseif why == "memory" then
    return text(503, "Service Unavailable\n", extra)
  end
  local h = { ["Retry-After"] = RETRY_AFTER }
  for k, v in pairs(extra or {}) do h[k] = v end
  if why == "ip" then
    core.log("info", ("refused %s %s: 429 max_streams_per_ip (%d)"):format(req.remote_addr, req.path, max_ip))
    return text(429, "Too many streams from this address\n", h)
  end
  core.log("info", ("refused %s %s: 429 max_streams_per_user (%d) for %s"):format(req.remote_addr,
    req.path, max_user, key))
  return text(429, "Too many streams for this user\n", h)
end

-- Runs the request's close handlers; the core calls it with the request
-- once the request ends (one function for all requests: no closure each).
local function close_request(req)
  if rawget(req, "_close_handlers") == nil then -- none registered: nothing to run
    req._closed = true
    return
  end
  for _, e in ipairs(req:run_close_handlers()) do
    core.report_error("on_close handler: " .. tostring(e))
  end
end

--- Returns the function the core starts every request with.
-- get_app() returns the app to route with (hot reload swaps it between requests).
-- Errors are not caught here: the core turns them into a 500 or an error
-- event, with the traceback in the log. A pcall would keep a C call's stack
-- reserve (about 800 bytes) in every suspended stream.
function server.dispatcher(get_app)
  return function(raw)
    local app = get_app()
    local req = request_mod.new(raw, true)
    local route, params = urls.resolve(app.urlpatterns, req.path)
    if not route then return text(404, "Not Found\n") end
    local view = flosse.as_view(route.view)
    local policy = cors.policy_for(view.cors, app.cors)
    if not view.methods[req.method] then
      local allow = allow_header(view.methods)
      if policy then
        -- A preflight: answered before authentication and permissions,
        -- since a browser sends no credentials with it.
        if req.method == "OPTIONS" then
          local h = cors.preflight(policy, req, allow)
          if h then return 204, h, "" end
        end
        return text(405, "Method Not Allowed\n", { Allow = allow, Vary = "Origin" })
      end
      return text(405, "Method Not Allowed\n", { Allow = allow })
    end
    local extra = policy and cors.headers(policy, req.headers["origin"])
    if next(params) ~= nil then req.params = params end -- else made on first use
    req.route = route
    current.bind(req)
    -- Before authentication and permissions: they may read remote_addr.
    if app.proxies then proxies.resolve(app.proxies, req) end
    core.on_close(close_request, req)
    req.user = auth.authenticate(app.settings.authentication_classes, req)
    local ok, why = permissions.check(view.permission_classes, req)
    if not ok then return text(403, tostring(why or "Forbidden"), extra) end
    -- A stream view with a page (flosse.status_view) answers a request
    -- that does not ask for a stream with the page.
    local page = view.page and view.page(req)
    if page then return answer(page, extra) end
    if view.kind == "stream" then
      local retry = view.retry
      if retry == nil then retry = app.settings.retry end
      local headers = view.headers
      if type(headers) == "function" then
        headers = response.check_stream_headers(headers(req), "sse_stream: what headers(request) returned", 1)
      end
      if policy then
        local all = {}
        for k, v in pairs(headers or {}) do all[k] = v end
        headers = cors.headers(policy, req.headers["origin"], all)
      end
      local status, h, body = admit(req, app.settings, extra)
      if status then return status, h, body end
      core.start_stream(retry, view.heartbeat, headers, metrics.route_id(route.name or route.route))
      return view.fn(req) -- a tail call: the stream keeps no dispatcher frame
    end
    return answer(view.fn(req), extra)
  end
end

return server
