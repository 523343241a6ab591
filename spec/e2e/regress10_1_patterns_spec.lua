-- Regression (issue 10, defect 1): one request stalled a worker. A 15 KB
-- Cookie or Authorization header padded with spaces took 1.8 s to match
-- ("^%s*(.-)%s*$" and "^%s*(%S+)%s+(.-)%s*$" are quadratic on a run of
-- spaces, and the instruction budget does not see time inside one C string
-- function). Every parser of client bytes is fed 1 MB adversarial inputs
-- here and must stay linear; the bounds are generous (they catch the
-- quadratic case, which takes minutes at 1 MB, not a slow machine).
local e2e = require "e2e"
local request = require "flosse.request"
local auth = require "flosse.auth"

local MB = 1024 * 1024
local BOUND = 5 -- seconds for 1 MB; linear code takes well under 0.5

local function timed(f, ...)
  local t0 = os.clock()
  local r = f(...)
  return os.clock() - t0, r
end

describe("parsers of client bytes on 1 MB adversarial inputs (issue 10)", function()
  local spaces = string.rep(" ", MB)
  local ta = auth.TokenAuthentication{ tokens = { tok = { username = "u" } } }
  local function credentials(headers, url)
    return ta:credentials(request.new({ method = "GET", url = url or "/", headers = headers }))
  end

  local cases = {
    { "a cookie padded with spaces", request.parse_cookies, "a=x" .. spaces .. "y" },
    { "a cookie header of spaces only", request.parse_cookies, spaces },
    { "a cookie name padded with spaces", request.parse_cookies, "a" .. spaces .. "=b" },
    { "many tiny cookies", request.parse_cookies, string.rep("a=b;", MB // 4) },
    { "a quoted cookie of escapes", request.parse_cookies, 'a="' .. string.rep("\\\\", MB // 2) .. '"' },
    { "a quoted cookie of octal escapes", request.parse_cookies, 'a="' .. string.rep("\\101", MB // 4) .. '"' },
    { "Authorization padded with spaces", function(v) return credentials({ authorization = v }) end,
      "Bearer x" .. spaces .. "y" },
    { "Authorization of spaces then a word", function(v) return credentials({ authorization = v }) end,
      spaces .. "x" },
    { "Authorization of many words", function(v) return credentials({ authorization = v }) end,
      string.rep("a ", MB // 2) },
    { "a query of many pairs", request.parse_query, string.rep("a=b&", MB // 4) },
    { "a query of escapes", request.parse_query, "a=" .. string.rep("%41", MB // 3) },
    { "a query of plus signs", request.parse_query, "a=" .. string.rep("+", MB) },
    { "a query of &", request.parse_query, string.rep("&", MB) },
    { "a query of =", request.parse_query, string.rep("=", MB) },
    { "a trim of spaces around a word", request.trim, spaces .. "x" .. spaces },
    { "a path of %", function(u) return request.new({ method = "GET", url = u }) end, "/" .. string.rep("%", MB) },
    { "a path of #", function(u) return request.new({ method = "GET", url = u }) end, "/" .. string.rep("#", MB) },
    { "an absolute-form target of letters", function(u) return request.new({ method = "GET", url = u }) end,
      string.rep("a", MB) },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. " is parsed in linear time", function()
      local took = timed(case[2], case[3])
      assert.is_true(took < BOUND, ("%s took %.2f s"):format(case[1], took))
    end)
  end

  it("still parses what it parsed before", function()
    assert.same({ a = "x  y" }, request.parse_cookies(" a = x  y ; "))
    assert.same({ tok = true }, (function()
      local out = {}
      for _, t in ipairs(credentials({ authorization = "  bearer   tok  " })) do out[t] = true end
      return out
    end)())
    assert.equal("", request.trim("   "))
    assert.equal("a b", request.trim(" \t a b \r\n"))
  end)
end)

describe("#e2e padded headers do not hold up other requests (issue 10)", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/hostile")

  it("answers an unrelated request at once while padded requests arrive", function()
    local pad = string.rep(" ", 15000)
    local hostile = {}
    for i = 1, 10 do
      local c = e2e.connect(server.port)
      local header = i % 2 == 0 and ("Cookie: a=x" .. pad .. "y") or ("Authorization: Bearer x" .. pad .. "y")
      assert(c:send("GET /private/ HTTP/1.1\r\nHost: x\r\n" .. header .. "\r\n\r\n"))
      hostile[#hostile + 1] = c
    end
    local t0 = e2e.now()
    local resp = e2e.get(server.port, "/echo/7/")
    local took = e2e.now() - t0
    assert.equal(200, resp.status)
    assert.equal("7", resp.body)
    -- Before the fix ten of these held the worker for about 18 s.
    assert.is_true(took < 5, ("the unrelated request took %.2f s"):format(took))
    for _, c in ipairs(hostile) do
      local head = assert(c:read_head())
      assert.equal(403, head.status)
      c:close()
    end
  end)

  it("reads a padded credential right", function()
    local resp = e2e.get(server.port, "/cookies/", { "Cookie: a=1;" .. string.rep(" ", 8000) .. "b=2" })
    assert.same({ count = 2 }, e2e.json_decode(resp.body))
    local c, head = e2e.open_stream(server.port, "/private/",
      { "Authorization: Bearer " .. "good-token" .. string.rep(" ", 8000) })
    assert.equal(200, head.status)
    local ev = assert(c:read_event())
    assert.equal("user", ev.event)
    c:close()
  end)
end)
