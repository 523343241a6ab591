-- SSE framing: core.frame(...) returns the exact bytes a yield of the same
-- values puts on the wire (without the chunk framing), or nil, err.
local core = require "flosse.core"
local flosse = require "flosse"
local cjson = require "cjson"

local frame = core.frame

local function fails(...)
  local bytes, err = frame(...)
  assert.is_nil(bytes)
  assert.is_string(err)
  assert.is_true(#err > 0)
  return err
end

describe("core.frame", function()
  describe("the yield-style table", function()
    it("a string is one data line", function()
      assert.equal("data: hello\n\n", frame("hello"))
    end)

    it("event and data (JSON)", function()
      assert.equal('event: update\ndata: {"count":1}\n\n', frame("update", { count = 1 }))
    end)

    it("event, data and id", function()
      assert.equal('event: update\ndata: {"count":1}\nid: evt-001\n\n',
                   frame("update", { count = 1 }, "evt-001"))
    end)

    it("a fields table", function()
      assert.equal("event: e\ndata: x\nid: 1\nretry: 5000\n\n",
                   frame{ data = "x", event = "e", id = "1", retry = 5000 })
    end)

    it("a fields table with only data", function()
      assert.equal("data: x\n\n", frame{ data = "x" })
    end)

    it("a fields table with non-string data encodes it as JSON", function()
      assert.equal('event: e\ndata: {"a":1}\n\n', frame{ data = { a = 1 }, event = "e" })
    end)

    it("a table without a data key is JSON data", function()
      assert.equal('data: {"foo":"bar"}\n\n', frame{ foo = "bar" })
    end)

    it("an SSEEvent gives the same bytes as the fields table", function()
      local ev = flosse.SSEEvent{ data = "x", event = "e", id = "1", retry = 5000 }
      assert.equal("event: e\ndata: x\nid: 1\nretry: 5000\n\n", frame(ev))
      assert.equal(frame{ data = "x", event = "e", id = "1", retry = 5000 }, frame(ev))
    end)

    it("an SSEEvent with only data and event", function()
      assert.equal("event: complete\ndata: All done!\n\n",
                   frame(flosse.SSEEvent{ data = "All done!", event = "complete" }))
    end)

    it("an integer", function()
      assert.equal("data: 42\n\n", frame(42))
    end)

    it("event and string data is not JSON-quoted", function()
      assert.equal("event: e\ndata: plain\n\n", frame("e", "plain"))
    end)

    it("the quick start's progress event", function()
      local bytes = assert(frame("progress", { step = 1, total = 10, pct = 10 }))
      local json = bytes:match("^event: progress\ndata: ({.*})\n\n$")
      assert.is_string(json)
      assert.same({ step = 1, total = 10, pct = 10 }, cjson.decode(json))
    end)
  end)

  describe("multi-line data", function()
    it("splits on LF, CRLF and CR", function()
      assert.equal("data: a\ndata: b\ndata: c\ndata: d\n\n", frame("a\nb\r\nc\rd"))
    end)

    it("splits LF only", function()
      assert.equal("data: one\ndata: two\n\n", frame("one\ntwo"))
    end)

    it("splits CR only", function()
      assert.equal("data: one\ndata: two\n\n", frame("one\rtwo"))
    end)

    it("splits CRLF as one line break", function()
      assert.equal("data: one\ndata: two\n\n", frame("one\r\ntwo"))
    end)

    it("LF CR is two line breaks", function()
      assert.equal("data: one\ndata: \ndata: two\n\n", frame("one\n\rtwo"))
    end)

    it("keeps a trailing newline as an empty last data line", function()
      assert.equal("data: a\ndata: \n\n", frame("a\n"))
      assert.equal("data: a\ndata: \n\n", frame("a\r\n"))
    end)

    it("keeps empty lines in the middle", function()
      assert.equal("data: a\ndata: \ndata: b\n\n", frame("a\n\nb"))
    end)

    it("an empty string is one empty data line", function()
      assert.equal("data: \n\n", frame(""))
    end)

    it("splits multi-line data with an event and id", function()
      assert.equal("event: e\ndata: a\ndata: b\nid: 7\n\n", frame("e", "a\nb", "7"))
    end)

    it("splits multi-line data in a fields table", function()
      assert.equal("event: e\ndata: a\ndata: b\n\n", frame{ event = "e", data = "a\r\nb" })
    end)
  end)

  describe("field injection", function()
    it("rejects an event name with LF, CR or NUL", function()
      fails("bad\nevent", "x")
      fails("bad\revent", "x")
      fails("bad\0event", "x")
      fails("bad\r\nevent: injected", "x")
    end)

    it("rejects an id with LF, CR or NUL", function()
      fails("e", "x", "1\n2")
      fails("e", "x", "1\r2")
      fails("e", "x", "1\0002")
      fails("e", "x", "1\ndata: injected")
    end)

    it("rejects injection through a fields table", function()
      fails{ data = "x", event = "a\nb" }
      fails{ data = "x", id = "a\rb" }
      fails{ data = "x", event = "a\0b" }
    end)

    it("rejects injection through an SSEEvent (when built, or when framed)", function()
      for _, fields in ipairs{ { data = "x", event = "a\nb" }, { data = "x", id = "1\r\nretry: 1" } } do
        local ok, ev = pcall(flosse.SSEEvent, fields)
        if ok then fails(ev) end
      end
    end)

    it("data cannot inject a field: every line is prefixed", function()
      assert.equal("data: x\ndata: event: injected\ndata: id: 9\n\n",
                   frame("x\nevent: injected\nid: 9"))
    end)
  end)

  describe("retry", function()
    it("accepts zero and positive integers", function()
      assert.equal("data: x\nretry: 0\n\n", frame{ data = "x", retry = 0 })
      assert.equal("data: x\nretry: 1\n\n", frame{ data = "x", retry = 1 })
      assert.equal("data: x\nretry: 86400000\n\n", frame{ data = "x", retry = 86400000 })
    end)

    it("rejects a negative retry", function()
      fails{ data = "x", retry = -1 }
    end)

    it("rejects a fractional retry", function()
      fails{ data = "x", retry = 1.5 }
    end)

    it("rejects a retry that is not a number", function()
      fails{ data = "x", retry = "soon" }
      fails{ data = "x", retry = true }
      fails{ data = "x", retry = {} }
    end)

    it("rejects NaN and infinity", function()
      fails{ data = "x", retry = 0 / 0 }
      fails{ data = "x", retry = math.huge }
    end)
  end)

  describe("JSON data", function()
    it("numbers", function()
      assert.equal("data: 42\n\n", frame(42))
      assert.equal("data: -7\n\n", frame(-7))
      assert.equal("data: 1.5\n\n", frame(1.5))
      assert.equal("event: n\ndata: 3\n\n", frame("n", 3))
    end)

    it("booleans", function()
      assert.equal("data: true\n\n", frame(true))
      assert.equal("data: false\n\n", frame(false))
      assert.equal("event: b\ndata: true\n\n", frame("b", true))
    end)

    it("arrays", function()
      assert.equal("data: [1,2,3]\n\n", frame{ 1, 2, 3 })
      assert.equal('event: list\ndata: ["a","b"]\n\n', frame("list", { "a", "b" }))
    end)

    it("nested tables", function()
      local bytes = assert(frame("nested", { a = { b = { 1, 2, { c = true } } } }))
      assert.equal('event: nested\ndata: {"a":{"b":[1,2,{"c":true}]}}\n\n', bytes)
    end)

    it("escapes like cjson (a / is \\/, a newline in a string is \\n)", function()
      assert.equal('event: e\ndata: {"url":"a\\/b"}\n\n', frame("e", { url = "a/b" }))
      assert.equal('event: e\ndata: {"s":"x\\ny"}\n\n', frame("e", { s = "x\ny" }))
    end)

    it("a table with several keys round-trips through JSON", function()
      local value = { step = 3, total = 10, pct = 30, label = "three", ok = true }
      local bytes = assert(frame("progress", value))
      local json = bytes:match("^event: progress\ndata: ([^\n]*)\n\n$")
      assert.same(value, cjson.decode(json))
    end)

    it("fails on values JSON cannot encode", function()
      fails("e", { f = function() end })
      fails{ data = { co = coroutine.create(function() end) } }
    end)
  end)

  describe("unencodable yields", function()
    it("nothing", function()
      fails()
    end)

    it("a lone nil", function()
      fails(nil)
    end)

    it("a function", function()
      fails(function() end)
    end)

    it("a coroutine", function()
      fails(coroutine.create(function() end))
    end)

    it("more than three values", function()
      fails("e", "x", "1", "extra")
      fails("a", "b", "c", "d", "e")
    end)
  end)

  it("is pure: the same values give the same bytes", function()
    for _ = 1, 3 do
      assert.equal("event: e\ndata: x\nid: 1\nretry: 5000\n\n",
                   frame{ data = "x", event = "e", id = "1", retry = 5000 })
    end
  end)
end)
