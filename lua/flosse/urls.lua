-- flosse.urls: Django's path() routing.
--
-- A route such as "sse/orders/<int:order_id>/" is compiled once, when path()
-- is called, into an anchored Lua pattern plus the list of its parameters and
-- their converters. resolve() tries the patterns in order against the decoded
-- request path (which starts with "/") and returns the first whole match.

local math_tointeger = math.tointeger
local tonumber = tonumber

local urls = {}

-- Converters: a Lua pattern piece for one capture (no captures of its own, and
-- no anchors) and a function turning the captured text into the Lua value, or
-- nil when it cannot (then the route does not match, as Django's to_python
-- raising ValueError).
local HEX = "[0-9a-f]"

local function identity(s) return s end

local CONVERTERS = {
  int = {
    pattern = "[0-9]+",
    to_lua = function(s)
      -- "[0-9]+" only, so tonumber() gives an integer unless it overflows
      -- (then a float): refuse that rather than hand the view a float.
      return math_tointeger(tonumber(s))
    end,
  },
  str = { pattern = "[^/]+", to_lua = identity },
  slug = { pattern = "[-a-zA-Z0-9_]+", to_lua = identity },
  uuid = {
    pattern = HEX:rep(8) .. "%-" .. HEX:rep(4) .. "%-" .. HEX:rep(4) .. "%-"
      .. HEX:rep(4) .. "%-" .. HEX:rep(12),
    to_lua = identity,
  },
  path = { pattern = ".+", to_lua = identity },
}

-- Lua patterns accept at most LUA_MAXCAPTURES (32) captures.
local MAX_PARAMS = 32

-- Escapes every magic character of a Lua pattern.
local function escape(literal)
  return (literal:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__call ~= nil then return true end
  if type(v) == "table" and rawget(v, "is_flosse_view") == true then return true end
  return false
end

-- Compiles a route. Returns the anchored pattern and the list of parameters
-- { { name = "order_id", converter = "int" }, ... }; raises on a malformed route.
local function compile(route)
  local function bad(why)
    error(string.format("flosse.urls: bad route %q: %s", route, why), 4)
  end
  if route:sub(1, 1) == "/" then
    bad("a route must not start with '/' (Django's path() style: \"sse/x/\")")
  end
  local pieces, params, seen = { "^/" }, {}, {}
  local pos = 1
  while true do
    local lt = route:find("<", pos, true)
    local literal = route:sub(pos, (lt or #route + 1) - 1)
    if literal:find(">", 1, true) then bad("'>' without a matching '<'") end
    pieces[#pieces + 1] = escape(literal)
    if not lt then break end
    local gt = route:find(">", lt + 1, true)
    if not gt then bad("'<' without a matching '>'") end
    local spec = route:sub(lt + 1, gt - 1)
    if spec:find("<", 1, true) then bad("nested '<'") end
    local conv, name = spec:match("^([^:]*):(.*)$")
    if not conv then conv, name = "str", spec end
    if not name:match("^[%a_][%w_]*$") then
      bad(string.format("parameter name %q is not an identifier", name))
    end
    if not CONVERTERS[conv] then
      bad(string.format("unknown converter %q in <%s>", conv, spec))
    end
    if seen[name] then bad(string.format("parameter %q appears twice", name)) end
    seen[name] = true
    params[#params + 1] = { name = name, converter = conv }
    if #params > MAX_PARAMS then bad("more than " .. MAX_PARAMS .. " parameters") end
    pieces[#pieces + 1] = "(" .. CONVERTERS[conv].pattern .. ")"
    pos = gt + 1
  end
  pieces[#pieces + 1] = "$"
  return table.concat(pieces), params
end

-- The metatable of what path() makes: an entry written by hand (a table
-- with route and view) is refused when the app loads, since it would skip
-- path()'s checks of the route and the view.
local Entry = { __name = "flosse.urls.Entry" }

--- is_entry(v) -> true when v was made by path() (or include()).
function urls.is_path_entry(v)
  return getmetatable(v) == Entry
end

--- path(route, view, name) -> route entry
-- route: Django-style route without a leading "/"; view: a callable (a
-- function, a table or userdata with __call, or a flosse view object);
-- name: an optional string used by reverse().
function urls.path(route, view, name)
  if type(route) ~= "string" then
    error("flosse.urls.path: route must be a string, got " .. type(route), 2)
  end
  if not is_callable(view) then
    error(string.format("flosse.urls.path: view for route %q must be callable, got %s",
      route, type(view)), 2)
  end
  if name ~= nil and type(name) ~= "string" then
    error(string.format("flosse.urls.path: name for route %q must be a string", route), 2)
  end
  local pattern, params = compile(route)
  return setmetatable({
    route = route, view = view, name = name,
    _pattern = pattern, _params = params,
  }, Entry)
end

local function is_entry(v)
  return type(v) == "table" and type(v.route) == "string" and v._pattern ~= nil
end

-- Tries one entry; returns the params table on a whole match.
local function match_entry(entry, path)
  local caps = table.pack(path:match(entry._pattern))
  if caps[1] == nil then return nil end
  local params = {}
  local specs = entry._params
  if #specs == 0 then return params end
  for i = 1, #specs do
    local spec = specs[i]
    local value = CONVERTERS[spec.converter].to_lua(caps[i])
    if value == nil then return nil end
    params[spec.name] = value
  end
  return params
end

-- Depth-first over nested lists (so that include() results can be put
-- straight into a urlpatterns list).
local function resolve_in(list, path, depth)
  if depth > 32 then error("flosse.urls.resolve: urlpatterns nested too deeply", 0) end
  for i = 1, #list do
    local item = list[i]
    if is_entry(item) then
      local params = match_entry(item, path)
      if params then return item, params end
    elseif type(item) == "table" then
      local entry, params = resolve_in(item, path, depth + 1)
      if entry then return entry, params end
    else
      error(string.format("flosse.urls.resolve: urlpatterns[%d] is not a route (%s)",
        i, type(item)), 0)
    end
  end
  return nil
end

--- resolve(urlpatterns, path) -> entry, params | nil
-- path is the decoded request path, with its leading "/".
function urls.resolve(urlpatterns, path)
  if type(urlpatterns) ~= "table" then
    error("flosse.urls.resolve: urlpatterns must be a list", 2)
  end
  if type(path) ~= "string" then
    error("flosse.urls.resolve: path must be a string", 2)
  end
  return resolve_in(urlpatterns, path, 0)
end

-- Appends every entry of a (possibly nested) list to out, in order.
local function flatten(list, out, depth)
  if depth > 32 then error("flosse.urls: urlpatterns nested too deeply", 0) end
  for i = 1, #list do
    local item = list[i]
    if is_entry(item) then
      out[#out + 1] = item
    elseif type(item) == "table" then
      flatten(item, out, depth + 1)
    else
      error(string.format("flosse.urls: urlpatterns[%d] is not a route (%s)", i, type(item)), 0)
    end
  end
  return out
end

--- include(prefix, urlpatterns) -> list of route entries
-- Every route gets prefix prepended (prefix follows the route syntax, e.g.
-- "api/" or "users/<int:uid>/").
function urls.include(prefix, urlpatterns)
  if type(prefix) ~= "string" then
    error("flosse.urls.include: prefix must be a string", 2)
  end
  if type(urlpatterns) ~= "table" then
    error("flosse.urls.include: urlpatterns must be a list", 2)
  end
  local out = {}
  for _, entry in ipairs(flatten(urlpatterns, {}, 0)) do
    out[#out + 1] = urls.path(prefix .. entry.route, entry.view, entry.name)
  end
  return out
end

--- reverse(urlpatterns, name, params?) -> path | nil, err
-- Builds the path ("/..." ) of the first route called name, filling its
-- parameters from params; the result must resolve back to that route.
function urls.reverse(urlpatterns, name, params)
  if type(urlpatterns) ~= "table" then
    error("flosse.urls.reverse: urlpatterns must be a list", 2)
  end
  if type(name) ~= "string" then error("flosse.urls.reverse: name must be a string", 2) end
  params = params or {}
  local found = false
  for _, entry in ipairs(flatten(urlpatterns, {}, 0)) do
    if entry.name == name then
      found = true
      local ok = true
      local path = "/" .. entry.route:gsub("<([^>]*)>", function(spec)
        local pname = spec:match(":(.*)$") or spec
        local v = params[pname]
        if v == nil then ok = false; return "" end
        return tostring(v)
      end)
      if ok then
        local got = urls.resolve({ entry }, path)
        if got then return path end
      end
    end
  end
  if not found then return nil, "no route named " .. name end
  return nil, "no route named " .. name .. " matches these parameters"
end

return urls
