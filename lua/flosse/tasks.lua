--- flosse.tasks: background tasks, with no client.
-- flosse.spawn(fn, opts) runs fn from the next loop turn, flosse.after(s, fn,
-- opts) once s seconds later, flosse.every(s, fn, opts) every s seconds (the
-- first run after one interval; a tick that comes while the previous run is
-- still going is skipped). Each returns a handle with :cancel(). A task runs
-- on the worker that started it, with the budget, memory cap and error
-- handling of a view; it may sleep, publish and subscribe.
--
-- An app's tasks.lua runs at start-up and after every reload, on each
-- worker. The tasks it starts belong to that generation of the app: a
-- reload cancels them before the next generation's start, and they run on
-- the first worker only, unless opts.each_worker is true.
local core = require "flosse.core"

local tasks = {}

-- While an app's tasks.lua runs: { generation =, worker = } when serving,
-- { record = {} } when `flosse check` lists what it starts.
local loading = nil
local generation, current = 0, nil

-- A task that does not run here (another worker's, or a listed one).
local Inert = { __name = "flosse.Task" }
Inert.__index = Inert
function Inert.cancel() return false end
function Inert.active() return false end
function Inert.runs() return 0 end
function Inert:__tostring() return ("flosse.Task (%s, not on this worker)"):format(self.name) end

local function where(fn)
  local info = debug.getinfo(fn, "S")
  return ("%s:%d"):format(info.short_src, info.linedefined)
end

local OPTIONS = { name = true, each_worker = true }

local function start(what, kind, delay, interval, fn, opts, level)
  if type(fn) ~= "function" then error(what .. ": the task must be a function", level) end
  if opts ~= nil and type(opts) ~= "table" then error(what .. ": opts must be a table", level) end
  opts = opts or {}
  for k in pairs(opts) do
    if not OPTIONS[k] then error(("%s: unknown option %q"):format(what, tostring(k)), level) end
  end
  if opts.name ~= nil and type(opts.name) ~= "string" then error(what .. ": name must be a string", level) end
  local name = opts.name or where(fn)
  if loading and loading.record then
    local list = loading.record
    list[#list + 1] = { kind = kind, seconds = kind == "every" and interval or delay, name = name,
                        each_worker = opts.each_worker and true or false, where = where(fn) }
    return setmetatable({ name = name }, Inert)
  end
  if loading and not opts.each_worker and loading.worker ~= 0 then
    return setmetatable({ name = name }, Inert)
  end
  return core.spawn(fn, delay, interval, name, loading and loading.generation or nil)
end

local function seconds(what, s, positive)
  if type(s) ~= "number" or s ~= s or s < 0 or (positive and s == 0) or s == math.huge then
    error(("%s: seconds must be a %s number"):format(what, positive and "positive" or "non-negative"), 3)
  end
  return s
end

--- spawn(fn [, opts]) -> handle: runs fn as a task from the next loop turn.
function tasks.spawn(fn, opts)
  return start("flosse.spawn", "spawn", 0, 0, fn, opts, 3)
end

--- after(seconds, fn [, opts]) -> handle: runs fn once, seconds from now.
function tasks.after(s, fn, opts)
  return start("flosse.after", "after", seconds("flosse.after", s), 0, fn, opts, 3)
end

--- every(seconds, fn [, opts]) -> handle: runs fn every seconds, at a fixed rate.
function tasks.every(s, fn, opts)
  s = seconds("flosse.every", s, true)
  return start("flosse.every", "every", s, s, fn, opts, 3)
end

-- The first line of an error, as flosse.app writes load errors.
local function one_line(msg)
  return (tostring(msg):match("^[^\n]*"))
end

--- run(app): this worker's generation of app's tasks: cancels the previous
-- generation's (their to-be-closed variables run), then runs app.tasks
-- (the compiled tasks.lua, if the app has one). Called once the server runs.
function tasks.run(app)
  if current then core.cancel_tasks(current) end
  generation = generation + 1
  current = generation
  if not app.tasks then return end
  loading = { generation = generation, worker = core.worker() or 0 }
  local ok, err = pcall(app.tasks)
  loading = nil
  if not ok then core.log("error", "tasks.lua failed: " .. one_line(err)) end
end

--- list(app) -> what app's tasks.lua starts, without starting anything:
-- { kind =, seconds =, name =, each_worker =, where = } each, or nil, message.
function tasks.list(app)
  if not app.tasks then return {} end
  loading = { record = {} }
  local ok, err = pcall(app.tasks)
  local list = loading.record
  loading = nil
  if not ok then return nil, "tasks.lua: " .. one_line(err) end
  return list
end

return tasks
