-- End to end: error events (a view that raises, unencodable yields).
local e2e = require "e2e"

-- Checks an error frame's bytes; returns the decoded { message, error_id }.
local function error_frame(bytes)
  local json = bytes:match("^event: error\ndata: ({[^\n]*})\n\n$")
  assert.is_string(json, "not an error frame: " .. string.format("%q", tostring(bytes)))
  local e = e2e.json_decode(json)
  assert.is_string(e.message)
  assert.is_string(e.error_id)
  assert.matches("^%x%x%x%x%x%x%x%x%x%x%x%x$", e.error_id)
  local keys = {}
  for k in pairs(e) do keys[#keys + 1] = k end
  table.sort(keys)
  assert.same({ "error_id", "message" }, keys)
  return e
end

-- A whole stream: chunk data list (the stream must end).
local function stream(port, target)
  local c = e2e.open(port, target)
  local body, chunks = c:read_chunked()
  c:close()
  assert(body, "the stream did not end: " .. tostring(chunks))
  return chunks
end

describe("#e2e error events without debug (example app)", function()
  local server = e2e.serve(setup, teardown, "scripts")

  it("a view that raises: one event, an error frame, then the stream ends", function()
    local chunks = stream(server.port, "/sse/boom/")
    assert.equal(2, #chunks)
    assert.equal('event: tick\ndata: {"n":1}\n\n', chunks[1])
    local e = error_frame(chunks[2])
    assert.equal("Internal server error", e.message)
  end)

  it("the error text and the error_id are in the server log, not on the wire", function()
    local chunks = stream(server.port, "/sse/boom/")
    local e = error_frame(chunks[2])
    assert.falsy(chunks[2]:find("boom: the example view failed", 1, true))
    assert.falsy(chunks[2]:find("traceback", 1, true))
    local log = server:wait_log(e.error_id)
    assert.is_string(log, "error_id " .. e.error_id .. " not in the log:\n" .. server:log())
    -- one line has both the id and the full error
    local found = false
    for line in log:gmatch("[^\n]+") do
      if line:find(e.error_id, 1, true)
         and line:find("boom: the example view failed on purpose", 1, true) then
        found = true
      end
    end
    assert.is_true(found, "no log line with both the id and the error:\n" .. log)
  end)

  it("each error gets its own error_id", function()
    local a = error_frame(stream(server.port, "/sse/boom/")[2])
    local b = error_frame(stream(server.port, "/sse/boom/")[2])
    assert.are_not.equal(a.error_id, b.error_id)
  end)

  it("the connection is reusable after a view raised", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("GET", "/sse/boom/")))
    local resp = assert(c:read_response())
    assert.equal(2, #resp.chunks)
    assert(c:send(e2e.request_bytes("GET", "/sse/styles/string/")))
    resp = assert(c:read_response())
    assert.equal("data: hello\n\n", resp.body)
    c:close()
  end)

  it("the server keeps serving after errors", function()
    stream(server.port, "/sse/boom/")
    local resp = e2e.get(server.port, "/sse/styles/string/")
    assert.equal(200, resp.status)
    assert.is_true(server:alive())
  end)
end)

describe("#e2e error events with debug = true (fixture app)", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/app")

  it("a view that raises sends the error text", function()
    local chunks = stream(server.port, "/boom/")
    assert.equal(2, #chunks)
    assert.equal('event: tick\ndata: {"n":1}\n\n', chunks[1])
    local e = error_frame(chunks[2])
    assert.truthy(e.message:find("kaboom: fixture debug text 4711", 1, true), e.message)
    assert.is_string(server:wait_log(e.error_id))
  end)

  local kinds = {
    "function", "nothing", "event_newline", "event_cr", "id_newline", "id_nul",
    "fields_event_newline", "retry_negative", "retry_float", "retry_string",
    "too_many", "json_function",
  }
  for _, kind in ipairs(kinds) do
    it("an unencodable yield (" .. kind .. ") is an error frame and the stream goes on", function()
      local chunks = stream(server.port, "/bad/?kind=" .. kind)
      assert.equal(3, #chunks, table.concat(chunks, "|"))
      assert.equal("data: before\n\n", chunks[1])
      local e = error_frame(chunks[2])
      assert.are_not.equal("Internal server error", e.message)
      assert.is_true(#e.message > 0)
      assert.equal("data: after\n\n", chunks[3])
      assert.is_string(server:wait_log(e.error_id))
    end)
  end

  it("an injected event name never reaches the wire as a line", function()
    local chunks = stream(server.port, "/bad/?kind=event_newline")
    local all = table.concat(chunks)
    assert.falsy(all:find("\nevent\n", 1, true))
    assert.falsy(all:find("event: bad", 1, true))
  end)
end)
