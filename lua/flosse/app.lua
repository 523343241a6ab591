--- flosse.app: loads an app folder (settings.lua, urls.lua and the modules
-- they require) into a table the dispatcher routes with.
local core = require "flosse.core"
local static = require "flosse.static"
local auth = require "flosse.auth"
local cors = require "flosse.cors"
local urls = require "flosse.urls"
local proxies = require "flosse.proxies"
local settings_mod = require "flosse.settings"
local tls = require "flosse.tls"

local app = {}

--- Every setting with its default; settings.lua and flags override them.
-- The values are the C core's (core/defaults.h, as core.defaults): one place.
-- Those with no default: retry (none), max_connections (nil: the open-file
-- limit less 64), workers (nil: one per CPU), redis (nil: no Redis;
-- core.defaults.redis holds the defaults of its table's keys).
app.DEFAULTS = {
  debug = false,
  authentication_classes = {},
}
for k, v in pairs(core.defaults) do
  if k ~= "redis" then app.DEFAULTS[k] = v end
end

local function file_exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- Lua's loader errors span lines ("error loading module 'views' from file
-- ...:\n\tviews.lua:3: ..."); the line that names the file and line is the
-- useful one.
function app.one_line(msg)
  msg = tostring(msg)
  local inner = msg:match("^error loading module .-:\n%s*(.-)$")
  if inner then msg = inner end
  return (msg:match("^[^\n]*"))
end

-- Runs one of the app's files in the app's environment; it must return a table.
local function run_file(path, what, env)
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, app.one_line(err) end
  local ok, result = pcall(chunk)
  if not ok then return nil, app.one_line(result) end
  if type(result) ~= "table" then
    return nil, ("%s: must return a table (%s), not %s"):format(path, what, type(result))
  end
  return result
end

-- What an app module that returned nothing stands for: any use of it
-- fails with a message naming the module and its file.
local function forgot_return(name, path)
  local function fail()
    error(("%s: module '%s' returned nothing (does it end with `return %s`?)"):format(path, name,
      name:match("[%w_]+$") or name), 0)
  end
  return setmetatable({}, { __index = fail, __newindex = fail, __call = fail })
end

-- A fresh generation of the app: its own global environment (reads fall
-- back to _G) and its own require, which loads the app's modules from dir
-- into this generation's table and leaves everything else (flosse, rocks)
-- to the shared require. A reload makes a new generation; streams running
-- on the old one keep the code they started with.
local function new_generation(dir)
  local env = setmetatable({}, { __index = _G })
  local modules, loading = {}, {}
  local search = dir .. "/?.lua;" .. dir .. "/?/init.lua"
  local function app_require(name)
    if type(name) ~= "string" then error("bad argument #1 to 'require' (string expected)", 2) end
    local mod = modules[name]
    if mod ~= nil then return mod end
    local path = package.searchpath(name, search)
    if not path then
      local ok, shared = pcall(require, name)
      if ok then return shared end
      -- Name the require in the app's file, as Lua's own require would.
      local msg = tostring(shared)
      if msg:match("^module '.-' not found:") then
        msg = ("module '%s' not found (not in %s, not installed)"):format(name, dir)
      end
      error(msg, 2)
    end
    if loading[name] then error(("module '%s' requires itself (a require loop)"):format(name), 2) end
    local chunk, err = loadfile(path, "t", env)
    if not chunk then error(err, 0) end
    loading[name] = true
    local ok, result = pcall(chunk, name, path)
    loading[name] = nil
    if not ok then error(result, 0) end
    -- A module that forgot its `return` is found out where it is used
    -- (urls.lua's views.x): the error then names the module, not urls.lua.
    if result == nil then result = forgot_return(name, path) end
    modules[name] = result
    return result, path
  end
  env.require = app_require
  return env, modules
end

-- Safe default: a publish_view without permission_classes (channels.lua
-- marks it unguarded_publish) would let anyone publish, so the app does not
-- load; the message names the route. Walks include()'s nested lists.
local function check_publish_views(list, where, depth)
  if depth > 32 then return nil end -- urls.resolve reports the nesting
  for _, item in ipairs(list) do
    if type(item) == "table" then
      local view = item.view
      if type(item.route) == "string" and type(view) == "table" then
        if rawget(view, "unguarded_publish") then
          return ("%s: route %q: publish_view has no permission_classes (nil or {}; write permission_classes = "
            .. "{ flosse.permissions.AllowAny } to make it public)"):format(where, item.route)
        end
      elseif item.route == nil then
        local err = check_publish_views(item, where, depth + 1)
        if err then return err end
      end
    end
  end
  return nil
end

-- Every entry of urls.lua must be made by path() (include()'s lists hold
-- such entries too): a table written by hand would skip path()'s checks.
local function check_entries(list, where, label, depth)
  if depth > 32 then return ("%s: urls nested more than 32 deep"):format(where) end
  for i, entry in ipairs(list) do
    local name = label .. i
    if type(entry) ~= "table" then
      return ("%s: %s is a %s, not a path(...) entry"):format(where, name, type(entry))
    end
    if not urls.is_path_entry(entry) then
      if entry.route ~= nil or entry[1] == nil then
        return ("%s: %s is not made by path()%s: write path(route, view[, name])"):format(where, name,
          type(entry.route) == "string" and (" (route %q)"):format(entry.route) or "")
      end
      local err = check_entries(entry, where, name .. ".", depth + 1)
      if err then return err end
    end
  end
  return nil
end

--- load(dir) -> app | nil, one-line message
-- app = { dir =, settings =, urlpatterns =, modules = (the app's modules by name) }
function app.load(dir)
  dir = (dir or "scripts"):gsub("/+$", "")
  if dir == "" then dir = "/" end
  if not file_exists(dir .. "/urls.lua") then
    return nil, ("%s/urls.lua: not found (is %s an app folder?)"):format(dir, dir)
  end
  static.root = dir
  local env, modules = new_generation(dir)

  local settings = {}
  for k, v in pairs(app.DEFAULTS) do settings[k] = v end
  local text
  if file_exists(dir .. "/settings.lua") then
    local user, err = run_file(dir .. "/settings.lua", "the settings", env)
    if not user then return nil, err end
    local f = io.open(dir .. "/settings.lua", "r")
    text = f and f:read("a")
    if f then f:close() end
    local ok, why = settings_mod.check(user, dir .. "/settings.lua", text)
    if not ok then return nil, why end
    for k, v in pairs(user) do settings[k] = v end
  end
  if type(settings.authentication_classes) ~= "table" then
    return nil, ("%s/settings.lua: authentication_classes must be a list"):format(dir)
  end
  for i, cls in ipairs(settings.authentication_classes) do
    if type(cls) ~= "table" or type(cls.authenticate) ~= "function" then
      return nil, ("%s/settings.lua: authentication_classes[%d] has no authenticate method"):format(dir, i)
    end
  end
  local policy, cerr = cors.normalize(settings.cors, "settings.lua: cors")
  if cerr then return nil, ("%s/%s"):format(dir, cerr) end
  local trusted, perr = proxies.normalize(settings.trusted_proxies, "settings.lua: trusted_proxies")
  if perr then return nil, ("%s/%s"):format(dir, perr) end
  if settings.tls ~= nil then
    local at = settings_mod.line_of(text, "tls")
    local where = dir .. "/settings.lua" .. (at and (":" .. at) or "")
    local paths, terr = tls.normalize(settings.tls, dir, where)
    if not paths then return nil, terr end
    settings.tls = paths -- relative to the current folder now, as the flags' are
  end

  local patterns, err = run_file(dir .. "/urls.lua", "a list of path(...) entries", env)
  if not patterns then return nil, err end
  if patterns.urlpatterns then patterns = patterns.urlpatterns end
  local perr_entry = check_entries(patterns, dir .. "/urls.lua", "entry ", 0)
  if perr_entry then return nil, perr_entry end
  local uerr = check_publish_views(patterns, dir .. "/urls.lua", 0)
  if uerr then return nil, uerr end
  -- tasks.lua is compiled now (a syntax error fails the load, keeping the
  -- old app), and run once the server runs (flosse.tasks.run).
  local tasks
  if file_exists(dir .. "/tasks.lua") then
    local chunk, terr = loadfile(dir .. "/tasks.lua", "t", env)
    if not chunk then return nil, app.one_line(terr) end
    tasks = chunk
  end
  return { dir = dir, settings = settings, urlpatterns = patterns, modules = modules, auth = auth,
           tasks = tasks, cors = policy or nil, proxies = trusted }
end

return app
