local response = require "flosse.response"
local cjson = require "cjson"

describe("flosse.response", function()
  describe("new()", function()
    it("keeps status, headers and body", function()
      local r = response.new { status = 201, headers = { ["Content-Type"] = "text/html" }, body = "<p>" }
      assert.are.equal(201, r.status)
      assert.are.same({ ["Content-Type"] = "text/html" }, r.headers)
      assert.are.equal("<p>", r.body)
      assert.are.equal("flosse.Response", getmetatable(r).__name)
    end)

    it("defaults to 200, no headers and an empty body", function()
      local r = response.new {}
      assert.are.equal(200, r.status)
      assert.are.same({}, r.headers)
      assert.are.equal("", r.body)
      assert.are.equal(200, response.new().status)
    end)

    it("copies the headers table", function()
      local h = { ["X-A"] = "1" }
      local r = response.new { headers = h }
      h["X-A"] = "2"
      assert.are.equal("1", r.headers["X-A"])
    end)

    it("turns number header values into strings", function()
      assert.are.equal("3", response.new { headers = { ["X-N"] = 3 } }.headers["X-N"])
    end)

    it("accepts an integral float status as an integer", function()
      local r = response.new { status = 404.0 }
      assert.are.equal(404, r.status)
      assert.are.equal("integer", math.type(r.status))
    end)

    it("rejects a status that is not an integer from 100 to 599", function()
      for _, s in ipairs { 99, 600, 0, -200, 200.5, "200", true, {} } do
        assert.has_error(function() response.new { status = s } end, nil, tostring(s))
      end
      for _, s in ipairs { 100, 599 } do
        assert.are.equal(s, response.new { status = s }.status)
      end
    end)

    it("rejects a body that is not a string", function()
      for _, b in ipairs { 42, true, {}, function() end } do
        assert.has_error(function() response.new { body = b } end)
      end
    end)

    it("rejects headers that could inject into the response head", function()
      assert.has_error(function() response.new { headers = { ["X-A"] = "a\r\nSet-Cookie: x=1" } } end)
      assert.has_error(function() response.new { headers = { ["X-A"] = "a\nb" } } end)
      assert.has_error(function() response.new { headers = { ["X-A"] = "a\0b" } } end)
      assert.has_error(function() response.new { headers = { ["X A"] = "v" } } end)
      assert.has_error(function() response.new { headers = { ["X-A:"] = "v" } } end)
      assert.has_error(function() response.new { headers = { [""] = "v" } } end)
      assert.has_error(function() response.new { headers = { [1] = "v" } } end)
      assert.has_error(function() response.new { headers = { ["X-A"] = true } } end)
      assert.has_error(function() response.new { headers = "x" } end)
    end)

    it("refuses Content-Length and Transfer-Encoding (the server writes them)", function()
      assert.has_error(function() response.new { headers = { ["Content-Length"] = "3" } } end)
      assert.has_error(function() response.new { headers = { ["transfer-encoding"] = "chunked" } } end)
    end)

    it("rejects something that is not a table", function()
      assert.has_error(function() response.new("body") end)
    end)
  end)

  describe("is_response()", function()
    it("tells responses from other values", function()
      assert.is_true(response.is_response(response.new {}))
      assert.is_true(response.is_response(response.text(200, "x")))
      assert.is_false(response.is_response({ status = 200, headers = {}, body = "" }))
      assert.is_false(response.is_response("x"))
      assert.is_false(response.is_response(nil))
    end)
  end)

  describe("text()", function()
    it("makes a text/plain response", function()
      local r = response.text(403, "Forbidden\n")
      assert.are.equal(403, r.status)
      assert.are.equal("Forbidden\n", r.body)
      assert.are.same({ ["Content-Type"] = "text/plain; charset=utf-8" }, r.headers)
    end)

    it("takes a body alone as a 200", function()
      local r = response.text("hello")
      assert.are.equal(200, r.status)
      assert.are.equal("hello", r.body)
    end)

    it("checks its arguments", function()
      assert.has_error(function() response.text(200, 5) end)
      assert.has_error(function() response.text(700, "x") end)
    end)
  end)

  describe("json()", function()
    it("encodes the value with cjson", function()
      local r = response.json({ count = 1, path = "/a" }, 201)
      assert.are.equal(201, r.status)
      assert.are.equal("application/json", r.headers["Content-Type"])
      assert.are.same({ count = 1, path = "/a" }, cjson.decode(r.body))
      assert.matches('"path":"\\/a"', r.body, 1, true)
    end)

    it("defaults to 200 and encodes lists and scalars", function()
      local r = response.json({ 1, 2, 3 })
      assert.are.equal(200, r.status)
      assert.are.equal("[1,2,3]", r.body)
      assert.are.equal('"x"', response.json("x").body)
    end)

    it("raises on a value cjson cannot encode", function()
      assert.has_error(function() response.json({ f = function() end }) end)
    end)
  end)

  describe("Response:header()", function()
    it("looks a header up case-insensitively", function()
      local r = response.text(200, "x")
      assert.are.equal("text/plain; charset=utf-8", r:header("content-type"))
      assert.is_nil(r:header("X-None"))
    end)
  end)
end)
