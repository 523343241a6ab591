-- Regression (issue 10, defect 4): pipelined requests were reordered. 600
-- pipelined GETs in one write got 2 answers and a 400: the bytes kept past a
-- request were parsed after newer socket bytes. Every pipelined request is
-- answered, in order, whatever the read sizes.
local e2e = require "e2e"

local N = 1000

local function requests(from, to, extra)
  local parts = {}
  for i = from, to do
    parts[#parts + 1] = ("GET /echo/%d/ HTTP/1.1\r\nHost: x\r\n%s\r\n"):format(i, extra or "")
  end
  return table.concat(parts)
end

-- Reads n responses; returns their bodies in order (or fails).
local function read_bodies(c, n)
  local bodies = {}
  for i = 1, n do
    local resp, err = c:read_response()
    assert(resp, ("answer %d of %d: %s"):format(i, n, tostring(err)))
    bodies[i] = resp.status == 200 and resp.body or ("status " .. resp.status)
  end
  return bodies
end

local function in_order(bodies, from)
  for i, b in ipairs(bodies) do
    if b ~= tostring(from + i - 1) then
      return false, ("answer %d is %q, not %d"):format(i, b, from + i - 1)
    end
  end
  return true
end

describe("#e2e pipelined requests (issue 10)", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/hostile")

  it("answers 1,000 pipelined requests sent in one write, in order", function()
    local c = e2e.connect(server.port)
    assert(c:send(requests(1, N)))
    local ok, why = in_order(read_bodies(c, N), 1)
    assert.is_true(ok, why)
    -- and the connection is still good for one more
    assert(c:send(requests(N + 1, N + 1)))
    assert.same({ tostring(N + 1) }, read_bodies(c, 1))
    c:close()
  end)

  it("answers them in order when they come in random splits", function()
    math.randomseed(10)
    for round = 1, 3 do
      local bytes = requests(1, N)
      local c = e2e.connect(server.port)
      local i = 1
      while i <= #bytes do
        local n = math.random(1, round == 1 and 7 or 3000)
        assert(c:send(bytes:sub(i, i + n - 1)))
        i = i + n
        if math.random() < 0.05 then e2e.sleep(0.002) end
      end
      local ok, why = in_order(read_bodies(c, N), 1)
      assert.is_true(ok, "round " .. round .. ": " .. tostring(why))
      c:close()
    end
  end)

  it("answers a stream and the requests pipelined behind it, in order", function()
    local c = e2e.connect(server.port)
    assert(c:send(requests(1, 3) .. "GET /finite/ HTTP/1.1\r\nHost: x\r\n\r\n" .. requests(4, 6)))
    assert.same({ "1", "2", "3" }, read_bodies(c, 3))
    local head = assert(c:read_head())
    assert.equal(200, head.status)
    local body = assert(c:read_chunked())
    assert.equal(3, #e2e.parse_sse(body))
    assert.same({ "4", "5", "6" }, read_bodies(c, 3))
    c:close()
  end)

  it("answers every request of a client that half-closes after sending them", function()
    local c = e2e.connect(server.port)
    assert(c:send(requests(1, 200)))
    c.sock:shutdown("send")
    local ok, why = in_order(read_bodies(c, 200), 1)
    assert.is_true(ok, why)
    assert.is_true(c:wait_closed(), "the server closes once it has answered")
    c:close()
  end)

  it("keeps its output bounded for a client that pipelines and never reads", function()
    if e2e.WRAP ~= "" then pending("FLOSSE_TEST_WRAP is set: server.pid is the wrapper's") return end
    local before = e2e.rss_kib(server.pid)
    local c = e2e.connect(server.port)
    c.sock:settimeout(0)
    local chunk = requests(1, 2000)
    local sent = 0
    local deadline = e2e.now() + 3
    while e2e.now() < deadline do -- send until the server stops taking them
      local last, err, partial = c.sock:send(chunk)
      local n = last or partial or 0
      sent = sent + n
      if err == "timeout" or n < #chunk then e2e.sleep(0.05) end
    end
    local grew = e2e.rss_kib(server.pid) - before
    c:close()
    -- The server stops parsing (and reading) while a client's answers wait
    -- unread: its queue stays near the high-water mark, whatever was sent.
    assert.is_true(grew < 32 * 1024, ("RSS grew %d KiB after %d bytes of requests"):format(grew, sent))
    assert.equal(200, e2e.get(server.port, "/echo/1/").status)
  end)
end)
