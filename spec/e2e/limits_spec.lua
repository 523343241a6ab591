-- End to end (issue 3): limits and their statuses. --max-connections (503),
-- request target (414), request head (431), body (413), --header-timeout
-- (slowloris: 408 and the close), --instruction-budget (a view that never
-- yields), --lua-memory (a view that allocates without bound). Each time the
-- server goes on serving everyone else. The fixture app is spec/fixtures/limits
-- (debug on: error events carry the error text).
local e2e = require "e2e"

local APP = "spec/fixtures/limits"

local raw_request = e2e.raw_request

-- The error frame of a stream: the decoded data of its "error" event.
local function error_event(c)
  for _, ev in ipairs(c:events()) do
    if ev.event == "error" then return e2e.json_decode(ev.data) end
  end
  error("no error event in " .. c:show(2000))
end

describe("#e2e --max-connections 3", function()
  local server = e2e.serve(setup, teardown, APP, { args = { "--max-connections", "3" } })

  it("the 4th connection gets 503 and is closed; the server serves again after one closes", function()
    local held = {}
    for i = 1, 3 do held[i] = e2e.open(server.port, "/ticker/?every=0.2") end
    finally(function() for _, c in ipairs(held) do c:close() end end)
    for _ = 1, 3 do  -- again and again: the listener keeps working
      local c = e2e.connect(server.port)
      assert(c:send(e2e.request_bytes("GET", "/plain/")))
      local resp = assert(c:read_response())
      local closed = c:wait_closed()
      c:close()
      assert.equal(503, resp.status)
      assert.equal("HTTP/1.1 503 Service Unavailable", resp.status_line)
      assert.equal("Service Unavailable\n", resp.body)
      assert.equal("close", (resp.headers["connection"] or ""):lower())
      assert.is_true(closed, "the refused connection was not closed")
    end
    -- the three held streams were not disturbed
    assert.is_true(e2e.pump(held, function()
      for _, c in ipairs(held) do if #c:events() < 3 then return false end end
      return true
    end, 15))
    for _, c in ipairs(held) do
      assert.is_false(c.stream_closed or c.stream_ended or false)
      e2e.ticks_in_order(c:events())
    end
    -- one of them leaves: a new connection is served (once the server noticed)
    held[1]:close()
    local status
    local deadline = e2e.now() + 15
    repeat
      status = e2e.get(server.port, "/plain/").status
      if status ~= 200 then e2e.sleep(0.2) end
    until status == 200 or e2e.now() > deadline
    assert.equal(200, status)
  end)
end)

describe("#e2e request size limits (defaults)", function()
  local server = e2e.serve(setup, teardown, APP)

  it("a 9 KiB request target gets 414 and the connection closes", function()
    local target = "/plain/?q=" .. string.rep("a", 9 * 1024)
    local resp, closed = raw_request(server.port, e2e.request_bytes("GET", target))
    assert.equal(414, resp.status)
    assert.equal("URI Too Long\n", resp.body)
    assert.is_true(closed)
    -- just under the 8192-byte default is fine
    assert.equal(200, e2e.get(server.port, "/plain/?q=" .. string.rep("a", 8000)).status)
  end)
end)

describe("#e2e --max-header-bytes 2048 --max-body-bytes 100", function()
  local server = e2e.serve(setup, teardown, APP, { args = { "--max-header-bytes", "2048", "--max-body-bytes", "100" } })

  it("one header over 2048 bytes gets 431 and the connection closes", function()
    local resp, closed = raw_request(server.port,
      e2e.request_bytes("GET", "/plain/", { "X-Big: " .. string.rep("b", 3000) }))
    assert.equal(431, resp.status)
    assert.equal("Request Header Fields Too Large\n", resp.body)
    assert.is_true(closed)
  end)

  it("many small headers adding up to over 2048 bytes get 431", function()
    local hs = {}
    for i = 1, 60 do hs[i] = string.format("X-H%02d: %s", i, string.rep("h", 40)) end
    local resp, closed = raw_request(server.port, e2e.request_bytes("GET", "/plain/", hs))
    assert.equal(431, resp.status)
    assert.is_true(closed)
  end)

  it("a head under 2048 bytes is served", function()
    local resp = e2e.get(server.port, "/plain/", { "X-Big: " .. string.rep("b", 1500) })
    assert.equal(200, resp.status)
  end)

  it("a POST body over 100 bytes gets 413 and the connection closes", function()
    local body = string.rep("p", 200)
    local resp, closed = raw_request(server.port,
      e2e.request_bytes("POST", "/post/", { "Content-Length: " .. #body }) .. body)
    assert.equal(413, resp.status)
    assert.equal("Content Too Large\n", resp.body)
    assert.is_true(closed)
  end)

  it("a chunked POST body over 100 bytes gets 413", function()
    local chunk = string.rep("p", 80)
    local bytes = e2e.request_bytes("POST", "/post/", { "Transfer-Encoding: chunked" })
      .. "50\r\n" .. chunk .. "\r\n50\r\n" .. chunk .. "\r\n0\r\n\r\n"
    local resp = raw_request(server.port, bytes)
    assert.equal(413, resp.status)
  end)

  it("a POST body of 100 bytes is served", function()
    local body = string.rep("p", 100)
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("POST", "/post/", { "Content-Length: " .. #body }) .. body))
    local ok = assert(c:read_response())
    c:close()
    assert.equal(200, ok.status)
    assert.equal("got 100 bytes\n", ok.body)
  end)
end)

describe("#e2e --header-timeout 1 (slowloris)", function()
  local server = e2e.serve(setup, teardown, APP, { args = { "--header-timeout", "1" } })

  it("half a request line: 408, then the close; others are served meanwhile", function()
    local stream = e2e.open(server.port, "/ticker/?every=0.2")
    finally(function() stream:close() end)
    local slow = e2e.connect(server.port)
    assert(slow:send("GET /pla"))
    -- while it waits, others are served
    assert.equal(200, e2e.get(server.port, "/plain/").status)
    local resp, err = slow:read_response({ timeout = 15 })
    assert.is_table(resp, "no 408 within 15 s: " .. tostring(err))
    assert.equal(408, resp.status)
    assert.equal("HTTP/1.1 408 Request Timeout", resp.status_line)
    local closed = slow:wait_closed(15)
    slow:close()
    assert.is_true(closed, "not closed after the 408")
    assert.equal(200, e2e.get(server.port, "/plain/").status)
    -- the stream, open much longer than the header timeout, is untouched
    local n = #stream:events()
    assert.is_true(e2e.pump({ stream }, function() return #stream:events() >= n + 3 end, 10))
    assert.is_false(stream.stream_closed or stream.stream_ended or false)
    e2e.ticks_in_order(stream:events())
  end)

  it("a connection that sends nothing is closed (without a response)", function()
    local silent = e2e.connect(server.port)
    local closed, rest = silent:wait_closed(15)
    silent:close()
    assert.is_true(closed, "not closed within 15 s")
    assert.equal("", rest)
  end)

  it("a request dripped one byte at a time is dropped all the same", function()
    local drip = e2e.connect(server.port)
    local line = "GET /plain/?" .. string.rep("d", 200) .. " HTTP/1.1\r\n"
    local deadline = e2e.now() + 15
    local i = 1
    while e2e.now() < deadline and i <= #line do
      if not drip:send(line:sub(i, i)) then break end
      i = i + 1
      if drip:fill(e2e.now() + 0.2) or drip.eof then break end
    end
    local resp = drip:read_response({ timeout = 5 })
    local closed = drip:wait_closed(5)
    drip:close()
    assert.is_table(resp, "no response to the dripping client (sent " .. (i - 1) .. " bytes)")
    assert.equal(408, resp.status)
    assert.is_true(closed)
    assert.is_true(i <= #line, "the whole line went out: the dripping client was not dropped")
  end)

  it("a kept-alive connection idle after its response is closed", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("GET", "/plain/")))
    local resp = assert(c:read_response())
    assert.equal(200, resp.status)
    local closed, rest = c:wait_closed(15)
    c:close()
    assert.is_true(closed, "an idle kept-alive connection stayed open for 15 s")
    assert.equal("", rest)
  end)
end)

-- Runs a misbehaving view next to a ticker: the view's stream must get an
-- error event and end, the ticker must go on, and new requests are served.
-- Returns the error event's data and the misbehaving client.
local function misbehaving_next_to_ticker(port, target, timeout)
  local other = e2e.open(port, "/ticker/?every=0.1")
  local bad = e2e.open(port, target)
  local ok = e2e.pump({ other, bad }, function() return bad.stream_ended or bad.stream_closed end, timeout)
  assert.is_true(ok, target .. " did not end within " .. timeout .. " s: " .. bad:show(2000))
  assert.is_true(bad.stream_ended, target .. ": closed without the last chunk: " .. bad:show(2000))
  assert.is_nil(bad.stream_error)
  local events = bad:events()
  assert.is_true(#events >= 2, bad:show(2000))
  assert.equal("started", events[1].data)
  assert.equal("error", events[#events].event)
  local err = error_event(bad)
  assert.matches("^%x+$", err.error_id)
  bad:close()
  -- the other stream keeps receiving
  local n = #other:events()
  assert.is_true(e2e.pump({ other }, function() return #other:events() >= n + 5 end, 15),
    "the other stream stopped: " .. other:show(2000))
  assert.is_false(other.stream_closed or other.stream_ended or false)
  e2e.ticks_in_order(other:events())
  other:close()
  -- and new requests are served
  assert.equal(200, e2e.get(port, "/plain/").status)
  return err
end

describe("#e2e --instruction-budget 1000000", function()
  local server = e2e.serve(setup, teardown, APP, { args = { "--instruction-budget", "1000000" } })

  it("a view in an endless loop gets an error event about the budget; its stream ends", function()
    local err = misbehaving_next_to_ticker(server.port, "/spin/", 30)
    assert.truthy(err.message:find("instruction budget", 1, true), err.message)
    local log = server:wait_log(err.error_id)
    assert.is_string(log, "error id " .. err.error_id .. " not in the log:\n" .. server:log())
  end)

  it("an endless loop inside pcall is still stopped", function()
    local err = misbehaving_next_to_ticker(server.port, "/spin-pcall/", 30)
    assert.truthy(err.message:find("instruction budget", 1, true), err.message)
  end)

  it("again: the budget holds for every resume, not just the first", function()
    misbehaving_next_to_ticker(server.port, "/spin/", 30)
    misbehaving_next_to_ticker(server.port, "/spin-pcall/", 30)
  end)

  it("an ordinary stream of 1000 events is not cut short by the budget", function()
    local resp = e2e.get(server.port, "/burst/?n=1000")
    assert.equal(200, resp.status)
    assert.equal(1000, #e2e.parse_sse(resp.body))
  end)
end)

describe("#e2e --lua-memory 64", function()
  local server = e2e.serve(setup, teardown, APP, { args = { "--lua-memory", "64" } })

  it("a view that allocates without bound gets an error event; its stream ends; others go on", function()
    local key = e2e.new_key("lim")
    local err = misbehaving_next_to_ticker(server.port, "/hog/?key=" .. key, 60)
    assert.truthy(err.message:lower():find("memory", 1, true), err.message)
    -- its to-be-closed variable and on_close ran
    local s
    local deadline = e2e.now() + e2e.TEST_TIMEOUT
    repeat
      s = e2e.stats(server.port, key)
      if s.on_close ~= 1 then e2e.sleep(0.1) end
    until s.on_close == 1 or e2e.now() > deadline
    assert.same({ started = 1, yields = 0, on_close = 1, closed = 1 }, s)
  end)

  it("the memory comes back: a second and third hog are stopped the same way, and streams work", function()
    for _ = 1, 2 do
      local err = misbehaving_next_to_ticker(server.port, "/hog/?key=" .. e2e.new_key("lim"), 60)
      assert.truthy(err.message:lower():find("memory", 1, true), err.message)
    end
    local resp = e2e.get(server.port, "/burst/?n=1000")
    assert.equal(200, resp.status)
    assert.equal(1000, #e2e.parse_sse(resp.body))
  end)
end)
