-- End to end: `flosse check` and `flosse serve` judge an app with the same
-- code (issue 14, "The first ten minutes"): a setting of the wrong type, an
-- unknown setting (with the nearest known one), an entry of urls.lua not
-- made by path(), and a view made with an unknown option each fail both,
-- with one line naming the file and the line.
local e2e = require "e2e"

local URLS = [[
local path = require("flosse.urls").path
local views = require "views"
return { path("a/", views.a) }
]]
local VIEWS = [[
local flosse = require "flosse"
local views = {}
views.a = flosse.sse_stream(function() coroutine.yield("x") end)
return views
]]

-- A fresh app with the given files (nil: the defaults above).
local function app(files)
  local tmp = e2e.tempdir()
  local dir = tmp .. "/app"
  assert(os.execute("mkdir " .. e2e.shell_quote(dir)))
  e2e.write_file(dir .. "/urls.lua", files.urls or URLS)
  e2e.write_file(dir .. "/views.lua", files.views or VIEWS)
  if files.settings then e2e.write_file(dir .. "/settings.lua", files.settings) end
  return dir, tmp
end

-- check and serve both exit 2 with one stderr line matching want (plain).
local function both_fail(files, want)
  local dir, tmp = app(files)
  local code, out, err = e2e.run_flosse({ "check", dir })
  assert.equal(2, code, out .. err)
  assert.truthy(err:find(want, 1, true), "check: " .. err)
  local scode, sout, serr = e2e.run_serve(dir, { "--port", "0" }, { timeout = 10 })
  assert.equal(2, scode, sout .. serr)
  assert.truthy(serr:find(want, 1, true), "serve: " .. serr)
  assert.equal(err:match("[^\n]*" .. want:gsub("%p", "%%%0") .. "[^\n]*"),
    serr:match("[^\n]*" .. want:gsub("%p", "%%%0") .. "[^\n]*"), "the same line from both")
  e2e.remove_tree(tmp)
  return dir
end

describe("#e2e flosse check and flosse serve judge settings and urls alike", function()
  it("heartbeat = \"soon\": the file, the line, what it must be", function()
    both_fail({ settings = 'return {\n  debug = false,\n  heartbeat = "soon",\n}\n' },
      '/app/settings.lua:3: heartbeat must be a non-negative number of seconds, not "soon"')
  end)

  it("retry = \"soon\"", function()
    both_fail({ settings = 'return { retry = "soon" }\n' },
      '/app/settings.lua:1: retry must be a non-negative integer (milliseconds), not "soon"')
  end)

  it("other types: workers, debug, port, log_level", function()
    both_fail({ settings = "return {\n  workers = 0,\n}\n" },
      "settings.lua:2: workers must be a positive integer, not 0")
    both_fail({ settings = 'return { debug = "yes" }\n' }, 'settings.lua:1: debug must be true or false, not "yes"')
    both_fail({ settings = "return { port = 70000 }\n" },
      "settings.lua:1: port must be a port from 0 to 65535, not 70000")
    both_fail({ settings = 'return { log_level = "loud" }\n' },
      'settings.lua:1: log_level must be error, warn, info or debug, not "loud"')
  end)

  it("an unknown setting suggests the nearest known one", function()
    both_fail({ settings = "return {\n  debug = false,\n\n  hartbeat = 5,\n}\n" },
      'settings.lua:4: unknown setting "hartbeat" (did you mean "heartbeat"?)')
    both_fail({ settings = "return { max_conections = 10 }\n" },
      'settings.lua:1: unknown setting "max_conections" (did you mean "max_connections"?)')
    both_fail({ settings = "return { completely_else = 1 }\n" },
      'settings.lua:1: unknown setting "completely_else" (README.md, Settings, lists them)')
  end)

  it("an entry of urls.lua not made by path() is refused", function()
    both_fail({ urls = [[
local path = require("flosse.urls").path
local views = require "views"
return { path("a/", views.a), { route = "b/", view = views.a } }
]] }, '/app/urls.lua: entry 2 is not made by path() (route "b/"): write path(route, view[, name])')
  end)

  it("sse_stream with an unknown option names the file and line of the call", function()
    both_fail({ views = [[
local flosse = require "flosse"
local views = {}

views.a = flosse.sse_stream({ hartbeat = 5 }, function() coroutine.yield("x") end)
return views
]] }, '/app/views.lua:4: sse_stream: unknown option "hartbeat"')
    -- the curried form, and a relay_view's option
    both_fail({ views = [[
local flosse = require "flosse"
local views = {}
views.a = flosse.sse_stream { retry = -1 } (function() end)
return views
]] }, "/app/views.lua:3: sse_stream: retry must be a non-negative integer (milliseconds)")
    both_fail({ views = [[
local flosse = require "flosse"
local views = {}
views.a = flosse.relay_view { permission_classes = { 5 } }
return views
]] }, "/app/views.lua:3: sse_stream: permission_classes[1] has no has_permission method")
  end)

  it("a good app still loads", function()
    local dir, tmp = app({
      settings = "return { heartbeat = 5, retry = 1000, workers = 2, max_streams_per_ip = 10 }\n",
    })
    local code, out, err = e2e.run_flosse({ "check", dir })
    assert.equal(0, code, out .. err)
    e2e.remove_tree(tmp)
  end)
end)

describe("#e2e clear hints for the common mistakes", function()
  it("a module that forgot to return its table is named (not urls.lua)", function()
    both_fail({ views = "local views = {}\nviews.a = 1\n" },
      "/app/views.lua: module 'views' returned nothing (does it end with `return views`?)")
  end)

  it("a plain function that yields, and a yield JSON cannot encode (its file and line)", function()
    local dir, tmp = app({
      urls = [[
local path = require("flosse.urls").path
local views = require "views"
return { path("a/", views.a), path("b/", views.b) }
]],
      views = [[
local flosse = require "flosse"
local views = {}
views.a = flosse.sse_stream(function()
  coroutine.yield("ok", { n = 1 })
  coroutine.yield("bad", { f = print })
end)
views.b = function() coroutine.yield("x") end
return views
]],
    })
    local server = e2e.start(dir)
    local c = e2e.open(server.port, "/a/")
    assert.equal("ok", assert(c:read_event()).event)
    assert.equal("error", assert(c:read_event()).event)
    c:close()
    assert.equal(500, e2e.get(server.port, "/b/").status)
    assert.truthy(server:wait_log("views.lua:5: cannot send what the view yielded"), server:log())
    assert.truthy(server:wait_log("a plain view (path(route, fn)) cannot send events; make it flosse.sse_stream(fn)"),
      server:log())
    server:cleanup()
    e2e.remove_tree(tmp)
  end)
end)
