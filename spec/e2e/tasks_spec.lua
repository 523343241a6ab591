-- Background tasks (issue 11): flosse.spawn / after / every, an app's
-- tasks.lua, reloads, shutdown, errors and flosse check, against the real
-- server over real sockets.
local e2e = require "spec.helper"

local FIXTURE = "spec/fixtures/tasks"

-- Reads events from a relayed channel until done(events) or the timeout.
local function collect(port, channel, done, timeout)
  local c = e2e.open_stream(port, "/sub/" .. channel .. "/")
  local events, deadline = {}, e2e.now() + (timeout or e2e.TEST_TIMEOUT)
  while not done(events) and e2e.now() < deadline do
    local ev = c:read_event(math.max(0.1, deadline - e2e.now()))
    if not ev then break end
    if ev.data then events[#events + 1] = ev end
  end
  c:close()
  return events
end


describe("#e2e background tasks", function()
  local server = e2e.serve(setup, teardown, FIXTURE, { workers = 2 })

  it("an every task in tasks.lua runs at a fixed rate on one worker: once per server", function()
    local evs = collect(server.port, "tick", function(e) return #e >= 4 end)
    assert.is_true(#evs >= 4, "ticks: " .. #evs)
    local prev
    for _, ev in ipairs(evs) do
      local t = e2e.json_decode(ev.data)
      assert.equal(0, t.worker) -- the first worker's, not each worker's
      if prev then assert.equal(prev + 1, t.n) end -- one ticker: no tick twice, none lost
      prev = t.n
    end
  end)

  it("each_worker = true runs it on every worker", function()
    local seen = {}
    collect(server.port, "each", function(e)
      for _, ev in ipairs(e) do seen[e2e.json_decode(ev.data).worker] = true end
      return seen[0] and seen[1]
    end)
    assert.is_true(seen[0] and seen[1], "workers seen: " .. e2e.json_encode(seen))
  end)

  it("a run that raises is logged with an error id, and the every task goes on", function()
    local evs = collect(server.port, "failing", function(e) return #e >= 2 end)
    assert.is_true(#evs >= 2)
    local log = assert(server:wait_log("failing run 2"))
    assert.matches("error %x+ task failing: [^\n]*failing run 1", log)
    assert.matches("error %x+ task failing: [^\n]*failing run 2", log)
  end)

  it("after runs once", function()
    assert(server:wait_log("flosse-test: after ran"))
    e2e.sleep(0.5)
    local log = server:log()
    local _, n = log:gsub("flosse%-test: after ran", "")
    assert.equal(1, n)
  end)

  it("a task may subscribe and publish: it echoes what is published", function()
    local c = e2e.open_stream(server.port, "/sub/out/")
    assert.equal(200, e2e.post(server.port, "/pub/in/", "hello").status)
    local ev = assert(c:read_event())
    assert.equal("echo hello", ev.data)
    c:close()
  end)

  it("a task started by a view outlives the request", function()
    local c = e2e.open_stream(server.port, "/sub/late/")
    -- both workers may have answered: each spawns one task on its own worker
    local r = assert(e2e.get(server.port, "/spawn/late/"))
    assert.equal(200, r.status)
    assert.equal("spawned\n", r.body)
    local ev = assert(c:read_event())
    assert.equal("from a task a view started", ev.data)
    c:close()
  end)

  it("a task that never yields is stopped by the instruction budget; one that yields a value is an error", function()
    local log = assert(server:wait_log("task spinner"))
    assert.matches("error %x+ task spinner: ran %d+ instructions without yielding", log)
    assert(server:wait_log("task yielder"))
    assert.matches("error %x+ task yielder: a background task yielded a value", server:log())
    -- and the server still serves
    assert.equal(200, assert(e2e.get(server.port, "/count/")).status)
  end)

  it("handle:cancel() stops a task", function()
    -- cancellable runs on worker 0 only: ask until worker 0 answers true
    local answered
    for _ = 1, 40 do
      local r = assert(e2e.get(server.port, "/cancel/"))
      if r.body == "true false\n" then answered = true break end
      assert.equal("false false\n", r.body) -- the other worker's handle is inert
    end
    assert.is_true(answered)
    -- nothing more is published on the channel once it is cancelled: a live
    -- tick would come every 0.1 s (a relay without Last-Event-ID replays none)
    local c = e2e.open_stream(server.port, "/sub/cancellable/")
    local ev = c:read_event(0.5)
    c:close()
    assert.is_nil(ev)
  end)
end)

describe("#e2e background tasks across a reload and a shutdown", function()
  it("a reload cancels the old generation (its to-be-closed variables run) before the new one starts; "
    .. "shutdown cancels them all", function()
    local dir, tmp = e2e.copy_app(FIXTURE)
    -- --no-reload: the SIGHUP is the only reload (the watcher would add one)
    local server = e2e.start(dir, { workers = 1, args = { "--no-reload" } })
    finally(function() server:cleanup(); e2e.remove_tree(tmp) end)
    local function gen_of_next_tick()
      local evs = collect(server.port, "tick", function(e) return #e >= 1 end)
      return evs[1] and e2e.json_decode(evs[1].data).gen
    end
    assert.equal(1, gen_of_next_tick())
    -- a task a view started belongs to no generation: it survives the reload
    assert.equal(200, assert(e2e.get(server.port, "/spawn/survivor/")).status)
    e2e.write_file(dir .. "/tasks.lua",
      (e2e.read_file(dir .. "/tasks.lua"):gsub("local GENERATION = 1", "local GENERATION = 2")))
    server:signal("HUP")
    assert(server:wait_log("generation 1 guard closed"))
    local log = server:log()
    -- the old guard closes before the new generation's first tick
    local deadline = e2e.now() + e2e.TEST_TIMEOUT
    local gen
    repeat
      local c = e2e.open_stream(server.port, "/sub/tick/")
      local ev = c:read_event(1)
      c:close()
      gen = ev and e2e.json_decode(ev.data).gen
    until gen == 2 or e2e.now() > deadline
    assert.equal(2, gen, log)
    local c = e2e.open_stream(server.port, "/sub/survivor/")
    local ev = c:read_event()
    c:close()
    assert.equal("from a task a view started", ev and ev.data)
    -- shutdown: the new generation's guard closes, and the server exits 0
    server:signal("TERM")
    assert(server:wait_log("generation 2 guard closed"))
    assert(server:wait_log("stopped"))
    assert.is_nil(server:log():find("generation 2 guard closed.*generation 2 guard closed"))
  end)

  it("flosse check lists what tasks.lua starts, without starting it", function()
    -- through the harness, so that a sanitizer build's wrapper applies
    local code, stdout, stderr = e2e.run_flosse({ "check", FIXTURE })
    assert.equal(0, code, stderr)
    local out = stdout .. stderr
    assert.matches("\nTASK +KIND +SECONDS +WORKERS +WHERE\n", out)
    assert.matches("\nticker +every +0%.2 +one +[^\n]*tasks%.lua:%d+\n", out)
    assert.matches("\neach +every +0%.2 +each ", out)
    assert.matches("\nlater +after +0%.3 +one ", out)
    assert.matches("\nguarded +spawn +%- +one ", out)
    local _, ntasks = out:gsub("\n[%w]+ +[a-z]+ +[%d.-]+ +[a-z]+ +[^\n]*tasks%.lua:%d+", "")
    assert.equal(9, ntasks)
    assert.matches("\nOK: 5 routes in spec/fixtures/tasks\n$", out)
    assert.is_nil(out:find("guard closed", 1, true))
  end)
end)

describe("#e2e the example app's ticker", function()
  local server = e2e.serve(setup, teardown, "scripts", { workers = 2 })

  it("publishes the time to channel ticks every second, once per server; the channel page shows it", function()
    local c = e2e.open_stream(server.port, "/sse/channel/ticks/")
    local a = assert(c:read_event(3))
    local b = assert(c:read_event(3))
    c:close()
    assert.equal("tick", a.event)
    local ta, tb = e2e.json_decode(a.data), e2e.json_decode(b.data)
    assert.equal(ta.n + 1, tb.n) -- one ticker for both workers
    assert.matches("^%d%d:%d%d:%d%d$", tb.time)
    local page = assert(e2e.get(server.port, "/channel/"))
    assert.equal(200, page.status)
    assert.truthy(page.body:find('new EventSource("/sse/channel/ticks/")', 1, true))
    assert.truthy(page.body:find('addEventListener("tick"', 1, true))
  end)
end)
