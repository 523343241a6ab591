--- flosse.check: what `flosse check` prints about a loaded app.
local flosse = require "flosse"
local permissions = require "flosse.permissions"
local static = require "flosse.static"
local tasks = require "flosse.tasks"

local check = {}

-- Names for the values the app's modules expose: module.field, and one
-- level of nested tables (views.styles.string). Built-in permission classes
-- go by their own names.
local function name_index(app)
  local names = {}
  for k, v in pairs(permissions) do
    if type(v) == "table" and type(v.has_permission) == "function" then names[v] = k end
  end
  local mods = {}
  for name in pairs(app.modules or {}) do mods[#mods + 1] = name end
  table.sort(mods)
  for _, modname in ipairs(mods) do
    local m = app.modules[modname]
    if type(m) == "table" then
      local keys = {}
      for k in pairs(m) do if type(k) == "string" then keys[#keys + 1] = k end end
      table.sort(keys)
      for _, k in ipairs(keys) do
        local v = m[k]
        if names[v] == nil then names[v] = modname .. "." .. k end
        if type(v) == "table" and not v.is_flosse_view then
          for k2, v2 in pairs(v) do
            if type(k2) == "string" and names[v2] == nil then names[v2] = modname .. "." .. k .. "." .. k2 end
          end
        end
      end
    end
  end
  return names
end

local function where(fn)
  local info = type(fn) == "function" and debug.getinfo(fn, "S")
  if not info then return "?" end
  return ("%s:%d"):format(info.short_src, info.linedefined)
end

local function view_name(names, raw, view)
  return names[raw] or names[view] or static.described[raw] or static.described[view.fn]
    or ("function at %s"):format(where(view.fn))
end

local function permission_name(names, cls)
  local own = rawget(cls, "name")
  if type(own) == "string" then return own end
  return names[cls] or ("permission at %s"):format(where(rawget(cls, "has_permission")))
end

-- Every route entry in order, nested lists (include) flattened.
local function each_route(list, out)
  for _, item in ipairs(list) do
    if type(item) == "table" and item.route ~= nil then
      out[#out + 1] = item
    elseif type(item) == "table" then
      each_route(item, out)
    end
  end
  return out
end

--- rows(app) -> list of { route, kind, view, permissions }
function check.rows(app)
  local names = name_index(app)
  local rows = {}
  for _, entry in ipairs(each_route(app.urlpatterns, {})) do
    local view = flosse.as_view(entry.view)
    local perms = {}
    for _, cls in ipairs(view.permission_classes or {}) do perms[#perms + 1] = permission_name(names, cls) end
    rows[#rows + 1] = {
      route = "/" .. entry.route,
      kind = view.kind,
      view = view_name(names, entry.view, view),
      permissions = #perms > 0 and table.concat(perms, ",") or "-",
    }
  end
  return rows
end

--- report(app) -> the text `flosse check` prints
function check.report(app)
  local rows = check.rows(app)
  local w1, w3 = #"ROUTE", #"VIEW"
  for _, r in ipairs(rows) do
    w1 = math.max(w1, #r.route)
    w3 = math.max(w3, #r.view)
  end
  local fmt = "%-" .. w1 .. "s  %-6s  %-" .. w3 .. "s  %s\n"
  local out = { fmt:format("ROUTE", "KIND", "VIEW", "PERMISSIONS") }
  for _, r in ipairs(rows) do out[#out + 1] = fmt:format(r.route, r.kind, r.view, r.permissions) end
  local list, terr = tasks.list(app)
  if not list then error(terr, 0) end
  if #list > 0 then
    -- What tasks.lua starts, without starting it: a listing, not a run.
    local t1, t4 = #"TASK", #"WHERE"
    for _, t in ipairs(list) do
      t1 = math.max(t1, #t.name)
      t4 = math.max(t4, #t.where)
    end
    local tfmt = "%-" .. t1 .. "s  %-5s  %-8s  %-7s  %s\n"
    out[#out + 1] = "\n" .. tfmt:format("TASK", "KIND", "SECONDS", "WORKERS", "WHERE")
    for _, t in ipairs(list) do
      out[#out + 1] = tfmt:format(t.name, t.kind, t.kind == "spawn" and "-" or ("%g"):format(t.seconds),
                                  t.each_worker and "each" or "one", t.where)
    end
  end
  out[#out + 1] = ("OK: %d routes in %s\n"):format(#rows, app.dir)
  return table.concat(out)
end

return check
