-- End to end: HTTP status codes, ordinary responses, the page at /, bad input.
local e2e = require "e2e"

local function content_length_ok(resp)
  assert.equal(tostring(#resp.body), resp.headers["content-length"])
end

describe("#e2e HTTP on the example app", function()
  local server = e2e.serve(setup, teardown, "scripts")

  it("serves the page at / as text/html with an EventSource", function()
    local resp = e2e.get(server.port, "/")
    assert.equal(200, resp.status)
    assert.matches("^text/html", resp.headers["content-type"])
    content_length_ok(resp)
    assert.truthy(resp.body:find("EventSource", 1, true))
    assert.truthy(resp.body:find("/sse/progress/?token=demo-token", 1, true))
    assert.truthy(resp.body:find('"progress"', 1, true))
    assert.truthy(resp.body:find('"complete"', 1, true))
    assert.truthy(resp.body:find("demo-token", 1, true))
  end)

  it("the page matches scripts/index.html byte for byte", function()
    local f = assert(io.open("scripts/index.html", "rb"))
    local expected = f:read("a")
    f:close()
    assert.equal(expected, e2e.get(server.port, "/").body)
  end)

  it("HEAD / has the headers and no body", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("HEAD", "/")))
    local resp = assert(c:read_response({ head_request = true }))
    assert.equal(200, resp.status)
    assert.matches("^text/html", resp.headers["content-type"])
    -- the connection stays usable: no body bytes were sent
    assert(c:send(e2e.request_bytes("GET", "/no/such/")))
    local resp2 = assert(c:read_response())
    assert.equal(404, resp2.status)
    c:close()
  end)

  it("404 for an unknown path", function()
    local resp = e2e.get(server.port, "/no/such/page/")
    assert.equal(404, resp.status)
    assert.equal("Not Found\n", resp.body)
    assert.matches("^text/plain", resp.headers["content-type"])
    content_length_ok(resp)
  end)

  it("404: routes are anchored (a missing trailing slash does not match)", function()
    assert.equal(404, e2e.get(server.port, "/sse/styles/string").status)
    assert.equal(404, e2e.get(server.port, "/sse/styles/string/extra/").status)
    assert.equal(404, e2e.get(server.port, "/x/sse/styles/string/").status)
  end)

  it("a query string does not affect routing", function()
    local resp = e2e.get(server.port, "/sse/styles/string/?a=1&b=2")
    assert.equal(200, resp.status)
    assert.equal("data: hello\n\n", resp.body)
  end)

  it("405 for POST to a stream, with an Allow header", function()
    local resp = e2e.request(server.port, "POST", "/sse/styles/string/",
                             { "Content-Length: 0" })
    assert.equal(405, resp.status)
    assert.equal("Method Not Allowed\n", resp.body)
    assert.is_string(resp.headers["allow"])
    assert.truthy(resp.headers["allow"]:find("GET", 1, true))
    assert.falsy(resp.headers["allow"]:find("POST", 1, true))
    content_length_ok(resp)
  end)

  it("405 keeps the connection alive (the request body is consumed)", function()
    local c = e2e.connect(server.port)
    assert(c:send("POST /sse/styles/string/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"))
    local resp = assert(c:read_response())
    assert.equal(405, resp.status)
    assert(c:send(e2e.request_bytes("GET", "/sse/styles/string/")))
    resp = assert(c:read_response())
    assert.equal(200, resp.status)
    assert.equal("data: hello\n\n", resp.body)
    c:close()
  end)

  local garbage = {
    { "a line that is not HTTP", "HELLO\r\n\r\n" },
    { "binary bytes", "\0\1\2\3\255\254\r\n\r\n" },
    { "a header line without a colon", "GET / HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n" },
    { "a bad HTTP version", "GET / HTTP/9.Z\r\n\r\n" },
  }
  for _, g in ipairs(garbage) do
    it("400 for " .. g[1] .. ", and the connection closes", function()
      local c = e2e.connect(server.port)
      assert(c:send(g[2]))
      local resp = assert(c:read_response())
      assert.equal(400, resp.status)
      assert.equal("Bad Request\n", resp.body)
      assert.is_true(c:wait_closed())
      c:close()
    end)
  end

  it("still serves the next client after garbage", function()
    for _ = 1, 3 do
      local c = e2e.connect(server.port)
      assert(c:send("HELLO\r\n\r\n"))
      local resp = assert(c:read_response())
      assert.equal(400, resp.status)
      c:close()
    end
    local resp = e2e.get(server.port, "/sse/styles/string/")
    assert.equal(200, resp.status)
    assert.equal("data: hello\n\n", resp.body)
  end)

  it("survives a client that connects and leaves without a request", function()
    for _ = 1, 3 do
      local c = e2e.connect(server.port)
      c:close()
    end
    local c = e2e.connect(server.port)
    assert(c:send("GET /sse/sty"))  -- half a request line, then gone
    c:close()
    local resp = e2e.get(server.port, "/sse/styles/string/")
    assert.equal(200, resp.status)
  end)

  it("accepts a request that arrives in small pieces", function()
    local c = e2e.connect(server.port)
    local bytes = e2e.request_bytes("GET", "/sse/resume/", { "Last-Event-ID: slow" })
    for i = 1, #bytes, 7 do
      assert(c:send(bytes:sub(i, i + 6)))
      e2e.sleep(0.01)
    end
    local resp = assert(c:read_response())
    assert.equal(200, resp.status)
    assert.equal("data: slow\n\n", resp.body)
    c:close()
  end)
end)

describe("#e2e ordinary views on the fixture app", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/app")

  it("a view returning a string is 200 text/plain", function()
    local resp = e2e.get(server.port, "/plain/")
    assert.equal(200, resp.status)
    assert.equal("plain text\n", resp.body)
    assert.matches("^text/plain", resp.headers["content-type"])
    content_length_ok(resp)
  end)

  it("a view returning flosse.response: status, headers and body", function()
    local c = e2e.connect(server.port)
    assert(c:send("POST /created/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"))
    local resp = assert(c:read_response())
    c:close()
    assert.equal(201, resp.status)
    assert.equal("yes", resp.headers["x-fixture"])
    assert.equal("created 3 bytes\n", resp.body)
    content_length_ok(resp)
  end)

  it("405 on an ordinary view names its methods in Allow", function()
    local resp = e2e.get(server.port, "/created/")
    assert.equal(405, resp.status)
    assert.equal("Method Not Allowed\n", resp.body)
    assert.truthy(resp.headers["allow"]:find("POST", 1, true))
  end)

  it("an ordinary view that raises is a 500 and the server goes on", function()
    local resp = e2e.get(server.port, "/plain-boom/")
    assert.equal(500, resp.status)
    assert.matches("^text/plain", resp.headers["content-type"])
    assert.equal(200, e2e.get(server.port, "/plain/").status)
  end)

  it("the request object: decoded path, query, params, headers, cookies", function()
    local resp = e2e.get(server.port, "/echo/a%20b/c?x=1&y=hello%20world&z=a+b&x=2",
      { "X-Test: yes", "Cookie: a=1; b=two", "Last-Event-ID: 77" })
    assert.equal(200, resp.status)
    assert.matches("^application/json", resp.headers["content-type"])
    local r = e2e.json_decode(resp.body)
    assert.equal("GET", r.method)
    assert.equal("/echo/a b/c", r.path)
    assert.same({ x = "2", y = "hello world", z = "a b" }, r.query)
    assert.same({ rest = "a b/c" }, r.params)
    assert.same({ a = "1", b = "two" }, r.cookies)
    assert.equal("yes", r.x_test)
    assert.equal("77", r.last_event_id)
    assert.equal("127.0.0.1", r.remote_addr)
  end)
end)
