-- Several workers (threads, each with its own loop and Lua state) behind one
-- port: the kernel spreads connections over them, and a channel is shared by
-- all of them.
local e2e = require "e2e"
local socket = require "socket"

local APP = "spec/fixtures/workers"

-- Opens subscribers to channel name until both workers hold at least `each`
-- (bounded); returns the list of { client =, worker = }.
local function subscribers(port, name, count, each, headers)
  local subs, per = {}, { ["0"] = 0, ["1"] = 0 }
  local attempts = 0
  while (#subs < count or per["0"] < each or per["1"] < each) and attempts < count * 10 do
    attempts = attempts + 1
    local c = e2e.open_stream(port, "/sub/" .. name .. "/", headers)
    local ev = assert(c:read_event())
    assert.equal("worker", ev.event)
    per[ev.data] = per[ev.data] + 1
    subs[#subs + 1] = { client = c, worker = ev.data }
  end
  assert.is_true(per["0"] >= each and per["1"] >= each,
    ("connections did not spread over both workers: %d and %d"):format(per["0"], per["1"]))
  return subs
end

local function post(port, name, data)
  local resp = e2e.post(port, "/pub/" .. name .. "/", data, { "Content-Type: text/plain" })
  assert.equal(200, resp.status, resp.body)
  return resp
end

describe("#e2e workers", function()
  local server
  setup(function() server = e2e.start(APP, { workers = 2 }) end)
  teardown(function() if server then server:cleanup() end end)

  it("serves from both workers on one port", function()
    local seen = {}
    for _ = 1, 200 do
      local resp = e2e.get(server.port, "/whoami/")
      assert.equal(200, resp.status)
      seen[resp.body:match("^(%d+)")] = true
      if seen["0"] and seen["1"] then break end
    end
    assert.is_true(seen["0"] and seen["1"], "only one worker answered 200 requests")
  end)

  it("delivers every event published on any worker to every subscriber on every worker, in order, once", function()
    local subs = subscribers(server.port, "all", 20, 3)
    local ids = {}
    for i = 1, 50 do
      local resp = post(server.port, "all", "event " .. i)
      local body = require("cjson").decode(resp.body)
      assert.equal(#subs, body.delivered)
      ids[i] = body.id
    end
    for _, s in ipairs(subs) do
      for i = 1, 50 do
        local ev = assert(s.client:read_event(), "subscriber on worker " .. s.worker .. " missed event " .. i)
        assert.equal("event " .. i, ev.data)
        assert.equal(ids[i], ev.id)
      end
      s.client:close()
    end
  end)

  it("replays what a client missed from the shared history, whichever worker it lands on", function()
    local first = subscribers(server.port, "replay", 2, 1)
    local r1 = require("cjson").decode(post(server.port, "replay", "one").body)
    for _, s in ipairs(first) do
      assert.equal("one", assert(s.client:read_event()).data)
      s.client:close()
    end
    for i = 2, 4 do post(server.port, "replay", "missed " .. i) end
    -- Reconnect with the last id seen, several times so both workers answer.
    local again = subscribers(server.port, "replay", 4, 1, { "Last-Event-ID: " .. r1.id })
    post(server.port, "replay", "live")
    for _, s in ipairs(again) do
      local got = {}
      for _ = 1, 4 do got[#got + 1] = assert(s.client:read_event()).data end
      assert.same({ "missed 2", "missed 3", "missed 4", "live" }, got)
      s.client:close()
    end
  end)

  it("releases subscriptions on every worker when streams end", function()
    local subs = subscribers(server.port, "gone", 10, 2)
    for i = 1, 6 do subs[i].client:close() end
    local deadline = socket.gettime() + e2e.TEST_TIMEOUT
    local delivered
    repeat
      delivered = require("cjson").decode(post(server.port, "gone", "ping").body).delivered
      if delivered ~= #subs - 6 then socket.sleep(0.1) end
    until delivered == #subs - 6 or socket.gettime() > deadline
    assert.equal(#subs - 6, delivered)
    for i = 7, #subs do subs[i].client:close() end
  end)
end)

describe("#e2e workers stop and reload together", function()
  it("SIGTERM ends the streams on every worker and exits 0", function()
    local server = e2e.start_with_status(APP, { workers = 2 })
    finally(function() server:cleanup() end)
    local subs = subscribers(server.port, "bye", 6, 2)
    server:signal("TERM")
    for _, s in ipairs(subs) do
      local rest = s.client:read_until_close()
      assert.truthy(rest and rest:find("0\r\n\r\n", 1, true), "no terminator on worker " .. s.worker)
    end
    assert.equal(0, server:exit_status(15))
  end)

  it("a second SIGTERM while the workers drain exits at once with status 1", function()
    -- A grace period far longer than the wait below: only the forced stop
    -- can give status 1 (the grace running out gives 0).
    local server = e2e.start_with_status(APP, { workers = 2, args = { "--grace", "600" } })
    local clients = {}
    -- busted keeps only the last finally of a test: one clean-up for all.
    finally(function()
      for _, c in ipairs(clients) do c:close() end
      server:cleanup()
    end)
    for i = 1, 4 do -- never read: every worker that got one keeps draining
      clients[i] = e2e.connect(server.port)
      assert(clients[i]:send(e2e.request_bytes("GET", "/big/")))
    end
    socket.sleep(1)
    server:signal("TERM")
    -- Two signals of one kind that arrive before the loop took the first are
    -- one (libev, like the kernel, keeps a flag, not a count): on a loaded
    -- machine the second must wait until the first was seen.
    assert(server:wait_log("SIGTERM: shutting down"), "the first SIGTERM was not taken:\n" .. server:log())
    socket.sleep(0.5)
    assert.is_true(server:alive(), "exited before the grace period although clients hold it:\n" .. server:log())
    server:signal("TERM")
    -- Generous: under ASan, freeing the queued 16 MiB frames and the exit
    -- checks take a while on a loaded machine.
    assert.equal(1, server:exit_status(60), "no exit status 1 after the second SIGTERM; log:\n" .. server:log())
  end)

  it("a reload reaches every worker", function()
    local dir = e2e.copy_app(APP)
    local server = e2e.start(dir, { workers = 2 })
    finally(function()
      server:cleanup()
      e2e.remove_tree(dir)
    end)
    local views = e2e.read_file(dir .. "/views.lua")
    e2e.write_file(dir .. "/views.lua", (views:gsub('"v1"', '"v2"')))
    assert.truthy(server:wait_log("reloaded", 15), server:log())
    -- Each worker reloads on its own loop: poll until both answer v2.
    local deadline = socket.gettime() + 15
    local v2 = {}
    repeat
      local body = e2e.get(server.port, "/whoami/").body
      local w, v = body:match("^(%d+) (v%d)$")
      if v == "v2" then v2[w] = true end
    until (v2["0"] and v2["1"]) or socket.gettime() > deadline
    assert.is_true(v2["0"] and v2["1"], "not every worker serves the reloaded code")
  end)
end)

describe("#e2e workers fan out to hundreds of subscribers", function()
  it("600 subscribers over two workers all receive every one of 100 events, in order", function()
    local server = e2e.start("spec/fixtures/channels", { workers = 2, args = { "--log-level", "warn" } })
    finally(function() server:cleanup() end)
    local N, M = 600, 100
    -- The same reading client as the one-worker fan-out spec (it polls
    -- sockets without select, in its own process with a raised fd limit).
    local script = "ulimit -n 2048 2>/dev/null || ulimit -n \"$(ulimit -Hn)\" 2>/dev/null; "
      .. "exec timeout -k 5 300 lua5.4 spec/fixtures/channels/fanout_client.lua "
      .. server.port .. " workers-fanout " .. N .. " " .. M .. " \"$(ulimit -n)\""
    local p = assert(io.popen("sh -c " .. e2e.shell_quote(script) .. " 2>&1", "r"))
    local out = p:read("a")
    p:close()
    local json = out:match("FANOUT (%b{})")
    assert(json, "the fan-out client printed no result:\n" .. out)
    local r = e2e.json_decode(json)
    assert.equal(0, #r.errors, json)
    assert.equal(N, r.ready, json)
    for i = 1, M do assert.equal(N, r.delivered[i], json) end
    assert.equal(N, r.complete, json)
  end)
end)
