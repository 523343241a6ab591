-- Out of file descriptors on accept: the server backs off instead of spinning
-- on a listener that stays readable, and serves again once descriptors free up.
local e2e = require "e2e"
local socket = require "socket"

-- utime + stime of a process, in seconds.
local function cpu_seconds(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local stat = f:read("a")
  f:close()
  local fields = {}
  for x in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = x end
  -- after the ")": state is field 3 of stat(5), so utime (14) and stime (15) are 12 and 13 here
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

describe("#e2e accept without file descriptors", function()
  local server, saved_wrap

  setup(function()
    -- A hard limit of 48 descriptors, which the server cannot raise.
    saved_wrap = e2e.WRAP
    e2e.WRAP = "sh -c 'ulimit -n 48; exec \"$0\" \"$@\"' " .. saved_wrap
    server = e2e.start("scripts")
  end)

  teardown(function()
    e2e.WRAP = saved_wrap
    if server then server:cleanup() end
  end)

  it("pauses accepts on EMFILE, does not spin, and serves again afterwards", function()
    local clients = {}
    for i = 1, 80 do
      clients[i] = e2e.connect(server.port) -- the kernel completes these in the backlog
      assert(clients[i]:send(e2e.request_bytes("GET", "/sse/quiet/")))
    end
    assert.truthy(server:wait_log("pausing accepts", e2e.TEST_TIMEOUT),
      "no back-off line in the log:\n" .. server:log())

    -- While the backlog still holds connections it cannot take, a server
    -- that spun would burn a whole CPU; allow a tenth of that.
    local before = cpu_seconds(server.pid)
    socket.sleep(2)
    local used = cpu_seconds(server.pid) - before
    assert.is_true(used < 0.2, ("server used %.2f s of CPU in 2 s while out of descriptors"):format(used))
    assert.is_true(server:alive())

    for _, c in ipairs(clients) do c:close() end
    -- Descriptors free up: a new request is served (bounded retries while
    -- the server works through the backlog of closed connections).
    local deadline = socket.gettime() + e2e.TEST_TIMEOUT
    local resp
    repeat
      local ok, r = pcall(e2e.get, server.port, "/sse/styles/string/", nil, { timeout = 2 })
      if ok then resp = r else socket.sleep(0.2) end
    until resp or socket.gettime() > deadline
    assert.truthy(resp, "not served after descriptors were freed")
    assert.equal(200, resp.status)
  end)
end)
