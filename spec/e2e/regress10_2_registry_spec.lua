-- Regression (issue 10, defect 2): the channel registry only grew. Every new
-- name in /sse/channel/<name>/ made a channel that was never freed (246,853
-- names took RSS from 3.7 to 81 MB for good). A channel with no subscriber
-- and no history left is freed; max_channels caps the registry, and a
-- request that would pass it gets 503 with a text and one log line.
local e2e = require "e2e"

local APP = "spec/fixtures/hostile" -- channel_history_seconds = 1

local function subscribe(port, name)
  local c, head = e2e.open_stream(port, "/relay/" .. name .. "/")
  return c, head
end

-- n streams relaying the channels prefix1 .. prefixN, each answered 200.
local function hold(port, prefix, n)
  local held = {}
  for i = 1, n do
    local c, head = subscribe(port, prefix .. i)
    assert.equal(200, head.status)
    held[i] = c
  end
  return held
end

describe("#e2e the channel registry (issue 10)", function()
  local server = e2e.serve(setup, teardown, APP, { workers = 2 })

  it("frees a channel when its last subscriber leaves and it has no history", function()
    local base = e2e.stats(server.port).channels
    for round = 1, 5 do
      local held = hold(server.port, ("r%d-"):format(round), 200)
      assert.is_true(e2e.stats(server.port).channels >= base + 200)
      for _, c in ipairs(held) do c:close() end
    end
    assert.truthy(e2e.eventually(function() return e2e.stats(server.port).channels == base end),
      "channels after 1,000 names subscribed and left: " .. e2e.stats(server.port).channels)
  end)

  it("frees a published channel once its history expires and nobody listens", function()
    local base = e2e.stats(server.port).channels
    local c = e2e.connect(server.port)
    for i = 1, 50 do
      assert(c:send(("POST /publish/p%d/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"):format(i)))
      assert.equal(200, assert(c:read_response()).status)
    end
    c:close()
    assert.is_true(e2e.stats(server.port).channels >= base + 50)
    assert.truthy(e2e.eventually(function() return e2e.stats(server.port).channels == base end, 8),
      "channels 8 s after their history expired: " .. e2e.stats(server.port).channels)
  end)

  it("keeps a channel whose history has not expired, for Last-Event-ID", function()
    local c = e2e.connect(server.port)
    assert(c:send("POST /publish/keep/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"))
    local id = e2e.json_decode(assert(c:read_response()).body).id
    c:close()
    local s, head = e2e.open_stream(server.port, "/relay/keep/", { "Last-Event-ID: " .. (tonumber(id) - 1) })
    assert.equal(200, head.status)
    local ev = assert(s:read_event())
    assert.equal("one", ev.data)
    s:close()
  end)
end)

describe("#e2e --max-channels (issue 10)", function()
  local server = e2e.serve(setup, teardown, APP, { workers = 2, args = { "--max-channels", "5" } })

  it("refuses a subscription past the cap with 503 and a text, and logs it once", function()
    local held = hold(server.port, "cap", 5)
    local resp = e2e.get(server.port, "/relay/cap6/")
    assert.equal(503, resp.status)
    assert.matches("Too many channels", resp.body)
    local log = server:log()
    local n = select(2, log:gsub("refused 127%.0%.0%.1 GET /relay/cap6/: 503", ""))
    assert.equal(1, n, log)
    assert.falsy(log:find("error [%x]+ GET /relay/cap6/"), "no error line, no traceback: " .. log)
    -- a channel that exists is still open to more subscribers
    local c, head = subscribe(server.port, "cap1")
    assert.equal(200, head.status)
    c:close()
    -- and one leaving makes room
    held[1]:close()
    local room = e2e.eventually(function()
      local s, h = subscribe(server.port, "cap6")
      if h.status == 200 then return s end
      s:close()
    end)
    assert.truthy(room, "a subscriber leaving an empty channel makes room for a new one")
    room:close()
    for i = 2, 5 do held[i]:close() end
  end)

  it("refuses a publish that would make a channel past the cap with 503", function()
    local held = hold(server.port, "pc", 5)
    local c = e2e.connect(server.port)
    assert(c:send("POST /publish/pc6/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"))
    local resp = assert(c:read_response())
    assert.equal(503, resp.status)
    assert.matches("Too many channels", resp.body)
    assert(c:send("POST /publish/pc1/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"))
    assert.equal(200, assert(c:read_response()).status, "an existing channel still takes events")
    c:close()
    local ev = assert(held[1]:read_event())
    assert.equal("hi", ev.data)
    for _, h in ipairs(held) do h:close() end
  end)

  it("refuses --max-channels 0 with one line", function()
    local code, _, err = e2e.run_serve(APP, { "--port", "0", "--max-channels", "0" })
    assert.equal(2, code)
    assert.matches("max_channels", err)
  end)
end)
