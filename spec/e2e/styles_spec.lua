-- End to end: the example app's yield styles, exact bytes and headers.
local e2e = require "e2e"

local STREAM_HEAD = "HTTP/1.1 200 OK\r\n"
  .. "Content-Type: text/event-stream; charset=utf-8\r\n"
  .. "Cache-Control: no-cache, no-transform\r\n"
  .. "X-Accel-Buffering: no\r\n"
  .. "Transfer-Encoding: chunked\r\n"
  .. "\r\n"

local function chunk(bytes)
  return string.format("%x\r\n%s\r\n", #bytes, bytes)
end

describe("#e2e yield styles on the example app", function()
  local server = e2e.serve(setup, teardown, "scripts")

  -- GET target on a fresh connection; returns head, list of chunk data, raw
  -- bytes after the head (the whole chunked body, terminator included).
  local function stream(target, headers)
    local c, head = e2e.open_stream(server.port, target, headers)
    local body, chunks, raw = c:read_chunked()
    c:close()
    assert(body, "stream " .. target .. " did not end: " .. tostring(chunks))
    return head, chunks, raw
  end

  it("sends the exact stream head", function()
    local head = stream("/sse/styles/string/")
    assert.equal(STREAM_HEAD, head.raw)
  end)

  it("sends each event as one chunk and ends with the last chunk", function()
    local _, chunks, raw = stream("/sse/styles/string/")
    assert.same({ "data: hello\n\n" }, chunks)
    assert.equal(chunk("data: hello\n\n") .. "0\r\n\r\n", raw)
  end)

  local styles = {
    { "string", "data: hello\n\n" },
    { "event-data", 'event: update\ndata: {"count":1}\n\n' },
    { "event-data-id", 'event: update\ndata: {"count":1}\nid: evt-001\n\n' },
    { "fields", "event: e\ndata: x\nid: 1\nretry: 5000\n\n" },
    { "table", 'data: {"foo":"bar"}\n\n' },
    { "sseevent", "event: e\ndata: x\nid: 1\nretry: 5000\n\n" },
    { "multiline", "data: a\ndata: b\ndata: c\ndata: d\n\n" },
  }
  for _, s in ipairs(styles) do
    local name, expected = s[1], s[2]
    it("style " .. name .. " has the exact bytes", function()
      local head, chunks, raw = stream("/sse/styles/" .. name .. "/")
      assert.equal(STREAM_HEAD, head.raw)
      assert.same({ expected }, chunks)
      assert.equal(chunk(expected) .. "0\r\n\r\n", raw)
    end)
  end

  it("retry option: the first frame is retry: 5000", function()
    local head, chunks = stream("/sse/retry/")
    assert.equal(STREAM_HEAD, head.raw)
    assert.same({ "retry: 5000\n\n", "data: hello\n\n" }, chunks)
  end)

  it("Last-Event-ID reaches the view", function()
    local _, chunks = stream("/sse/resume/", { "Last-Event-ID: evt-041" })
    assert.same({ "data: evt-041\n\n" }, chunks)
  end)

  it("Last-Event-ID header name is case-insensitive", function()
    local _, chunks = stream("/sse/resume/", { "last-event-id: 42" })
    assert.same({ "data: 42\n\n" }, chunks)
  end)

  it("without Last-Event-ID the view sees nil", function()
    local _, chunks = stream("/sse/resume/")
    assert.same({ "data: none\n\n" }, chunks)
  end)

  it("an <int:...> path parameter reaches the view as a Lua integer", function()
    local _, chunks = stream("/sse/orders/42/")
    assert.equal(1, #chunks)
    local json = chunks[1]:match("^event: order\ndata: ({[^\n]*})\n\n$")
    assert.is_string(json, chunks[1])
    assert.same({ order_id = 42, type = "number", subtype = "integer" }, e2e.json_decode(json))
  end)

  it("an <int:...> parameter that is not digits is a 404", function()
    local resp = e2e.get(server.port, "/sse/orders/abc/")
    assert.equal(404, resp.status)
    resp = e2e.get(server.port, "/sse/orders/-1/")
    assert.equal(404, resp.status)
  end)

  it("keeps the connection alive: two streams on one connection", function()
    local c = e2e.connect(server.port)
    for _, target in ipairs{ "/sse/styles/string/", "/sse/styles/table/" } do
      assert(c:send(e2e.request_bytes("GET", target)))
      local head = assert(c:read_head())
      assert.equal(STREAM_HEAD, head.raw)
      local body = assert(c:read_chunked())
      assert.is_true(#body > 0)
    end
    c:close()
  end)

  it("keeps the connection alive: an ordinary response, then a stream", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("GET", "/no/such/page/")))
    local resp = assert(c:read_response())
    assert.equal(404, resp.status)
    assert(c:send(e2e.request_bytes("GET", "/sse/styles/string/")))
    resp = assert(c:read_response())
    assert.equal(200, resp.status)
    assert.equal("data: hello\n\n", resp.body)
    c:close()
  end)

  it("accepts two pipelined requests sent in one write", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("GET", "/sse/styles/string/")
      .. e2e.request_bytes("GET", "/sse/resume/", { "Last-Event-ID: 9" })))
    local r1 = assert(c:read_response())
    local r2 = assert(c:read_response())
    assert.same({ "data: hello\n\n" }, r1.chunks)
    assert.same({ "data: 9\n\n" }, r2.chunks)
    c:close()
  end)

  it("closes after the stream when the client sent Connection: close", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("GET", "/sse/styles/string/", { "Connection: close" })))
    local resp = assert(c:read_response())
    assert.equal("data: hello\n\n", resp.body)
    assert.is_true(c:wait_closed())
    c:close()
  end)

  it("HTTP/1.0: close-delimited raw frames, Connection: close", function()
    local c = e2e.connect(server.port)
    assert(c:send("GET /sse/styles/event-data-id/ HTTP/1.0\r\n\r\n"))
    local head = assert(c:read_head())
    assert.matches("^HTTP/1%.[01] 200 OK$", head.status_line)
    assert.equal("text/event-stream; charset=utf-8", head.headers["content-type"])
    assert.equal("no-cache, no-transform", head.headers["cache-control"])
    assert.equal("no", head.headers["x-accel-buffering"])
    assert.equal("close", head.headers["connection"]:lower())
    assert.is_nil(head.headers["transfer-encoding"])
    assert.is_nil(head.headers["content-length"])
    local body, how = c:read_until_close()
    c:close()
    assert.equal("closed", how)
    assert.equal('event: update\ndata: {"count":1}\nid: evt-001\n\n', body)
  end)

  it("HTTP/1.0 with the retry option", function()
    local c = e2e.connect(server.port)
    assert(c:send("GET /sse/retry/ HTTP/1.0\r\n\r\n"))
    assert(c:read_head())
    local body, how = c:read_until_close()
    c:close()
    assert.equal("closed", how)
    assert.equal("retry: 5000\n\ndata: hello\n\n", body)
  end)

  it("parses the stream into events", function()
    local _, chunks = stream("/sse/styles/fields/")
    local events = e2e.parse_sse(table.concat(chunks))
    assert.same({ event = "e", data = "x", id = "1", retry = 5000 }, events[1])
  end)
end)
