-- Regression (issue 10, defect 7): JSON numbers were corrupted. lua-cjson
-- 2.1 prints 14 significant digits, so {"ts":1796150648138900} posted to a
-- publish view reached subscribers as {"ts":1.7961506481389e+15}, and a
-- view yielding an integer past 14 digits was rewritten the same way. Lua
-- integers are written exactly, floats in the shortest text that reads back
-- to the same double, and the publish view passes a JSON body's data on as
-- the client wrote it.
local e2e = require "e2e"

local function post_json(port, name, body)
  return e2e.post(port, "/publish/" .. name .. "/", body, { "Content-Type: application/json" })
end

-- The data and id of the next event on a stream, as the client reads them.
local function next_event(c)
  local ev = assert(c:read_event())
  return ev.data, ev.id, ev
end

describe("#e2e JSON numbers (issue 10)", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/hostile")

  it("passes a published JSON body's data to subscribers byte for byte", function()
    local c, head = e2e.open_stream(server.port, "/relay/nums/")
    assert.equal(200, head.status)
    local bodies = {
      '{"ts":1796150648138900}',
      '{"n":9223372036854775807,"m":-9223372036854775808,"f":0.1,"e":1e-7,"big":123456789012345678901234567890}',
      '[1, 2.50, 3e0, -0, 0.30000000000000004]',
      '{ "spaced" :  [ 1 ,2 ] , "nested": {"x": {"y": 12345678901234567}} }',
      '"a JSON string is its text"',
      '12345678901234567890',
      'true',
    }
    for _, data in ipairs(bodies) do
      local resp = post_json(server.port, "nums", '{"event":"n","data":' .. data .. '}')
      assert.equal(200, resp.status, resp.body)
      local got = next_event(c)
      if data:sub(1, 1) == '"' then data = e2e.json_decode(data) end -- a string's decoded text
      assert.equal(data, got)
    end
    c:close()
  end)

  it("passes a numeric id on as written, and a pretty-printed body line for line", function()
    local c = e2e.open_stream(server.port, "/relay/nums2/")
    local resp = post_json(server.port, "nums2", '{"data":{"a":1},"id":12345678901234567890}')
    assert.same({ id = "12345678901234567890", delivered = 1 }, e2e.json_decode(resp.body))
    local _, id = next_event(c)
    assert.equal("12345678901234567890", id)
    post_json(server.port, "nums2", '{"data": {\n  "ts": 1796150648138900,\n  "f": 0.1\n}\n}')
    local data = next_event(c)
    assert.equal('{\n  "ts": 1796150648138900,\n  "f": 0.1\n}', data)
    c:close()
  end)

  it("refuses what is not JSON: NaN, Infinity, hex", function()
    for _, data in ipairs({ "NaN", "Infinity", "-Infinity", "0x10" }) do
      local resp = post_json(server.port, "nums3", '{"data":' .. data .. '}')
      assert.equal(400, resp.status, data)
    end
  end)

  it("writes a view's integers exactly and its floats shortest", function()
    local c, head = e2e.open_stream(server.port, "/numbers/")
    assert.equal(200, head.status)
    assert.equal('{"id":9007199254740992}', (next_event(c)))
    local ints = next_event(c) -- the test's own JSON decoder would make floats of them
    assert.truthy(ints:find('"n":9223372036854775807', 1, true), ints)
    assert.truthy(ints:find('"m":-9223372036854775808', 1, true), ints)
    assert.equal('{"ts":1796150648138900}', (next_event(c)))
    local raw = next_event(c)
    for _, want in ipairs({ '"f":0.1', '"third":0.3333333333333333', '"tiny":5e-324', '"big":1e+300',
      '"half":50' }) do
      assert.truthy(raw:find(want, 1, true), want .. " in " .. raw)
    end
    assert.equal('{"list":[1,2.5,12345678901234567]}', (next_event(c)))
    local _, id, ev = next_event(c)
    assert.equal("float-id", ev.event)
    assert.equal("9007199254740992", id)
    local _, _, err = next_event(c)
    assert.equal("error", err.event, "NaN cannot be sent: an error event")
    local after = next_event(c)
    assert.equal("the stream goes on", after)
    c:close()
  end)

  it("writes an ordinary view's JSON the same way", function()
    local resp = e2e.get(server.port, "/numbers.json")
    assert.equal(200, resp.status)
    assert.truthy(resp.body:find('{"ts":1796150648138900}', 1, true), resp.body)
    assert.truthy(resp.body:find('"n":9223372036854775807', 1, true), resp.body)
    assert.truthy(resp.body:find('{"id":9007199254740992}', 1, true), resp.body)
  end)
end)
