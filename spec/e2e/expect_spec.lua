-- Expect: 100-continue: the server says "100 Continue" once it has the
-- headers, so clients like curl send their body at once instead of waiting.
local e2e = require "e2e"

describe("#e2e Expect: 100-continue", function()
  local server
  setup(function() server = e2e.start("spec/fixtures/expect") end)
  teardown(function() if server then server:cleanup() end end)

  it("answers 100 Continue before the body, then the response", function()
    local c = e2e.connect(server.port)
    assert(c:send("POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"))
    local interim = assert(c:read_until("\r\n\r\n"))
    assert.equal("HTTP/1.1 100 Continue\r\n\r\n", interim)
    assert(c:send("hello"))
    local resp = assert(c:read_response())
    assert.equal(200, resp.status)
    assert.equal("5", resp.body)
    c:close()
  end)

  it("sends no 100 Continue to a client that did not ask, nor with a refused body", function()
    local c = e2e.connect(server.port)
    assert(c:send("POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"))
    local resp = assert(c:read_response())
    assert.equal(200, resp.status)
    assert.equal("2", resp.body)
    c:close()
    -- A declared body over max_body_bytes is refused at once: 413, no 100.
    local r = e2e.connect(server.port)
    assert(r:send("POST /echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n"))
    local refused = assert(r:read_response())
    assert.equal(413, refused.status)
    r:close()
  end)
end)
