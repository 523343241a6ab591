--- flosse.builtin: what the built-in views (health_view, metrics_view,
-- status_view) share: their options checked alike, and the view made by
-- flosse.view or flosse.sse_stream with its load errors told under the
-- built-in's own name. Every error is raised at the caller of the
-- built-in (the app's urls.lua), level 3 from here.
local static = require "flosse.static"

local builtin = {}

--- options(name, opts, allowed): opts must be a table whose keys are in
-- the list allowed (named in that order in the message).
function builtin.options(name, opts, allowed)
  if type(opts) ~= "table" then error(name .. ": expected an options table", 3) end
  for k in pairs(opts) do
    local known = false
    for _, a in ipairs(allowed) do known = known or a == k end
    if not known then
      error(("%s: unknown option %q (%s)"):format(name, tostring(k), table.concat(allowed, ", ")), 3)
    end
  end
end

--- integer(name, value, default, lo, hi, what) -> value, or default when
-- nil; anything but an integer from lo to hi fails the load.
function builtin.integer(name, key, value, default, lo, hi, what)
  if value == nil then return default end
  if math.type(value) ~= "integer" or value < lo or value > hi then
    error(("%s: %s must be an integer from %d to %d%s"):format(name, key, lo, hi, what or ""), 3)
  end
  return value
end

--- make(name, maker, spec, fn) -> maker(spec, fn) (flosse.view or
-- flosse.sse_stream), which `flosse check` lists as flosse.NAME{}. Their
-- messages (a bad permission class, a bad cors) would name this file and
-- "view:" or "sse_stream:"; the app's urls.lua and the built-in are meant.
function builtin.make(name, maker, spec, fn)
  local ok, view = pcall(maker, spec, fn)
  if not ok then
    local msg = tostring(view):gsub("^[^\n]-:%d+: ", ""):gsub("^view:", name .. ":"):gsub("^sse_stream:", name .. ":")
    error(msg, 3)
  end
  static.described[view] = "flosse." .. name .. "{}"
  return view
end

return builtin
