-- Connections and tasks in-process (issue 11): the spec drives a server
-- with srv:step() and is its client over socketpairs (srv:add_socket), with
-- no server process and no port (lua-http's server:step / add_socket).
local core = require "flosse.core"
local flosse = require "flosse"
local server_mod = require "flosse.server"
local app_mod = require "flosse.app"
local path = flosse.urls.path

local closed = {} -- what the views' to-be-closed variables and on_close saw

local function app_of(patterns)
  local settings = {}
  for k, v in pairs(app_mod.DEFAULTS) do settings[k] = v end
  return { urlpatterns = patterns, settings = settings }
end

local APP = app_of {
  path("hello/", function() return "hello\n" end),
  path("three/", flosse.sse_stream(function()
    for i = 1, 3 do
      flosse.sleep(0.01)
      coroutine.yield({ data = "n" .. i, id = tostring(i) })
    end
  end)),
  path("forever/", flosse.sse_stream(function(req)
    req:on_close(function() closed.on_close = true end)
    local guard <close> = setmetatable({}, { __close = function() closed.tbc = true end }) -- luacheck: ignore 211
    coroutine.yield("first")
    flosse.sleep(3600)
  end)),
  path("sub/<str:name>/", flosse.relay_view {}),
}

local srv
local function step_until(cond, what)
  for _ = 1, 2000 do
    if cond() then return true end
    srv:step(0.01)
  end
  error("timed out waiting for " .. what)
end

-- A client end: what it read so far.
local function client()
  local a, b = assert(core.socketpair())
  assert.is_true(srv:add_socket(b))
  local c = { fd = a, got = "" }
  function c.send(s) assert.equal(#s, core.fd_write(a, s)) end
  function c.pump()
    local s, err = core.fd_read(a)
    if s then c.got = c.got .. s else c.eof = err end
    return c.got
  end
  function c.close() core.fd_close(a) end
  return c
end

describe("in-process connections and tasks (srv:step over socketpairs)", function()
  setup(function()
    srv = assert(core.listen { host = "127.0.0.1", port = 0, heartbeat = 0,
                               dispatch = server_mod.dispatcher(function() return APP end) })
  end)
  teardown(function() srv:close() end)

  it("answers an ordinary request and keeps the connection alive", function()
    local c = client()
    c.send("GET /hello/ HTTP/1.1\r\nHost: x\r\n\r\n")
    step_until(function() return c.pump():find("hello\n", 1, true) end, "the answer")
    assert.matches("^HTTP/1.1 200 OK\r\n", c.got)
    assert.matches("Content%-Length: 6\r\n", c.got)
    c.got = ""
    c.send("GET /nowhere/ HTTP/1.1\r\nHost: x\r\n\r\n")
    step_until(function() return c.pump():find("Not Found\n", 1, true) end, "the second answer")
    assert.matches("^HTTP/1.1 404 Not Found\r\n", c.got)
    c.close()
  end)

  it("streams a view's events, framed and chunked, and ends with the terminator", function()
    local c = client()
    c.send("GET /three/ HTTP/1.1\r\nHost: x\r\n\r\n")
    step_until(function() return c.pump():find("0\r\n\r\n", 1, true) end, "the end of the stream")
    assert.matches("Content%-Type: text/event%-stream; charset=utf%-8\r\n", c.got)
    assert.matches("Transfer%-Encoding: chunked\r\n", c.got)
    local frames = {}
    for f in c.got:gmatch("data: (n%d)\nid: %d\n\n") do frames[#frames + 1] = f end
    assert.same({ "n1", "n2", "n3" }, frames)
    -- each event is one chunk: its size in hex, the frame, CRLF
    assert.truthy(c.got:find("\r\n10\r\ndata: n1\nid: 1\n\n\r\n", 1, true), c.got)
    c.close()
  end)

  it("a client that leaves closes the task: to-be-closed variables, then on_close", function()
    local c = client()
    c.send("GET /forever/ HTTP/1.1\r\nHost: x\r\n\r\n")
    step_until(function() return c.pump():find("data: first\n\n", 1, true) end, "the first event")
    assert.is_nil(closed.tbc)
    c.close()
    step_until(function() return closed.tbc and closed.on_close end, "the task to close")
  end)

  it("a background task publishes; a relayed stream (no Lua thread) delivers it", function()
    local c = client()
    c.send("GET /sub/inproc/ HTTP/1.1\r\nHost: x\r\n\r\n")
    step_until(function() return c.pump():find("\r\n\r\n", 1, true) end, "the stream's head")
    local h = core.spawn(function()
      flosse.sleep(0.02)
      flosse.channel("inproc"):publish("from a task")
    end, 0, 0, "inproc")
    assert.matches("flosse.Task", tostring(h))
    step_until(function() return c.pump():find("data: from a task\n", 1, true) end, "the event")
    step_until(function() return not h:active() end, "the task to end")
    assert.equal(1, h:runs())
    c.close()
  end)

  it("an every task is cancelled by its handle, and stops", function()
    local runs = 0
    local h = core.spawn(function() runs = runs + 1 end, 0.01, 0.01, "counter")
    step_until(function() return runs >= 3 end, "three runs")
    assert.is_true(h:cancel())
    local at = runs
    for _ = 1, 10 do srv:step(0.01) end
    assert.equal(at, runs)
    assert.is_false(h:active())
  end)
end)
