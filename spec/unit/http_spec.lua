-- flosse.http without a server (issue 14): the argument checks, which
-- raise at the caller's line before anything is sent, and the response
-- header table. spec/e2e/http_client_spec.lua sends real requests.
local http = require "flosse.http"

-- The error f raises, and the line of this file that called flosse.http.
local function raised(f)
  local ok, err = pcall(f)
  assert.is_false(ok)
  return err
end

describe("flosse.http arguments", function()
  it("a bad argument names this file and line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local err = raised(function() local r = http.request { url = "http://x/", timeout = -1 } return r end)
    assert.matches("http_spec.lua:" .. line .. ": flosse.http.request: timeout must be a positive number", err, 1, true)
  end)

  it("rejects each kind of bad option", function()
    local cases = {
      { "x", "expected a table of options" },
      { {}, "url is required" },
      { { url = 42 }, "url must be a string" },
      { { url = "file:///etc/passwd" }, "url must be an http:// or https:// URL" },
      { { url = "http://h/\r\nX: y" }, "url must be an http:// or https:// URL" },
      { { url = "http://h/", method = "GE T" }, "method must be a method name" },
      { { url = "http://h/", method = "HEAD", body = "x" }, "a HEAD request has no body" },
      { { url = "http://h/", headers = "A: b" }, "headers must be a table" },
      { { url = "http://h/", headers = { [1] = "A: b" } }, "header name \"1\" is not a token" },
      { { url = "http://h/", headers = { A = true } }, "header A must be a string, not boolean" },
      { { url = "http://h/", headers = { A = "b\nC: d" } }, "header A holds a CR, LF or NUL byte" },
      { { url = "http://h/", timeout = 0 }, "timeout must be a positive number" },
      { { url = "http://h/", timeout = 0 / 0 }, "timeout must be a positive number" },
      { { url = "http://h/", max_body = -1 }, "max_body must be a non-negative integer" },
      { { url = "http://h/", follow = "yes" }, "follow must be a boolean" },
      { { url = "http://h/", ca_file = "" }, "ca_file must be the path of a PEM file" },
      { { url = "http://h/", verify = false }, "unknown option \"verify\"" },
    }
    for _, c in ipairs(cases) do
      local err = raised(function() local r = http.request(c[1]) return r end)
      assert.matches("flosse.http.request: " .. c[2], err, 1, true)
    end
  end)

  it("good arguments, outside a view or task: an error saying where it may be called", function()
    local err = raised(function()
      local r = http.request { url = "https://h/", method = "post", headers = { A = "" }, body = "\0",
        timeout = 1.5, max_body = 0, follow = true, ca_file = "/tmp/ca.pem" }
      return r
    end)
    assert.matches("flosse.http.request: must be called from a view, a permission or authentication class, or a task",
      err, 1, true)
    err = raised(function() local r = http.get("http://h/", { timeout = 1 }) return r end)
    assert.matches("flosse.http.get: must be called from a view", err, 1, true)
    err = raised(function() local r = http.get("http://h/", { method = "POST" }) return r end)
    assert.matches("flosse.http.get: method is not an option of get", err, 1, true)
  end)
end)

describe("flosse.http response headers", function()
  it("lower-cases names, joins repeated ones with \", \", trims, unfolds", function()
    local h = http.parse_headers("Content-Type: text/plain\r\nX-Multi: a\r\nx-multi:b  \r\n"
      .. "X-Folded: one\r\n  two\r\nX-Empty:\r\nnot a header line\r\n")
    assert.same({ ["content-type"] = "text/plain", ["x-multi"] = "a, b", ["x-folded"] = "one two",
      ["x-empty"] = "" }, h)
    assert.same({}, http.parse_headers(""))
  end)
end)
