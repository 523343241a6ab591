-- Regression (issue 10, defect 3): bad channel names were server errors.
-- %00, CR/LF or a 201-byte name answered 200, then an error event, with a
-- traceback logged at error level. Names are checked before the stream
-- starts: 400 with a short text, one warning line.
local e2e = require "e2e"

local BAD = { "%00", "a%00b", "a%0Db", "a%0Ab", "%0D%0A", string.rep("x", 201) }

describe("#e2e channel names (issue 10)", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/hostile")

  for _, route in ipairs({ "relay", "loop" }) do
    it("the " .. route .. " view answers a bad name with 400 before its stream starts", function()
      for _, name in ipairs(BAD) do
        local resp = e2e.get(server.port, "/" .. route .. "/" .. name .. "/")
        assert.equal(400, resp.status, name)
        assert.matches("^Bad channel name", resp.body)
        assert.falsy((resp.headers["content-type"] or ""):find("event%-stream"))
      end
      local log = server:log()
      assert.falsy(log:find("flosse: error "), "nothing at error level: " .. log)
      assert.falsy(log:find("traceback"), log)
      assert.matches("refused 127%.0%.0%.1 GET /" .. route .. "/%%00/: 400 Bad channel name", log)
    end)
  end

  it("takes a 200-byte name", function()
    local name = string.rep("y", 200)
    local c, head = e2e.open_stream(server.port, "/relay/" .. name .. "/")
    assert.equal(200, head.status)
    c:close()
  end)

  it("the publish view answers a bad name with 400", function()
    for _, name in ipairs(BAD) do
      local c = e2e.connect(server.port)
      assert(c:send("POST /publish/" .. name .. "/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"))
      local resp = assert(c:read_response())
      c:close()
      assert.equal(400, resp.status, name)
      assert.matches("^Bad channel name", resp.body)
    end
  end)

  it("a view that subscribes after its first event sends an error event with the text", function()
    local c, head = e2e.open_stream(server.port, "/late/%00/")
    assert.equal(200, head.status)
    assert.equal("hello", assert(c:read_event()).data)
    local ev = assert(c:read_event())
    assert.equal("error", ev.event)
    assert.matches("Bad channel name", e2e.json_decode(ev.data).message)
    local rest = c:read_chunk()
    assert.equal("", rest, "the stream ends with its terminator")
    c:close()
  end)
end)
