-- flosse.settings: the tls and max_concurrent_streams settings (issue 15),
-- as `flosse check`, `flosse serve` and a reload judge them.
local settings = require "flosse.settings"

local PATH = "app/settings.lua"

-- check(user, text) -> true | nil, message
local function check(user, text) return settings.check(user, PATH, text) end

describe("flosse.settings: tls", function()
  local TLS_MUST = "tls must be a table { cert = FILE, key = FILE } (PEM files, relative to the app folder)"

  it("is known", function()
    assert.is_true(settings.known("tls"))
    assert.is_true(settings.known("max_concurrent_streams"))
  end)

  it("takes { cert = FILE, key = FILE }", function()
    assert.is_true(check({ tls = { cert = "cert.pem", key = "key.pem" } }))
    assert.is_true(check({ tls = { cert = "/etc/letsencrypt/live/x/fullchain.pem",
      key = "/etc/letsencrypt/live/x/privkey.pem" } }))
  end)

  it("rejects anything else with the file, the line and what it must be", function()
    local text = 'return {\n  debug = false,\n  tls = X,\n}\n'
    for _, bad in ipairs({
      "cert.pem",
      true,
      {},
      { cert = 1, key = "key.pem" },
      { cert = "cert.pem", key = 2 },
      { cert = "cert.pem" },
      { key = "key.pem" },
      { cert = "", key = "key.pem" },
      { cert = "cert.pem", key = "" },
      { cert = "cert.pem", key = "key.pem", chain = "chain.pem" },
      { cert = "cert.pem", key = "key.pem", "extra" },
      { "cert.pem", "key.pem" },
    }) do
      local ok, err = check({ debug = false, tls = bad }, text)
      assert.is_nil(ok)
      assert.equal(PATH .. ":3: " .. TLS_MUST .. ", not " .. (type(bad) == "string" and ("%q"):format(bad)
        or tostring(bad)), err)
    end
  end)

  it("a near miss of the name is a typo with the nearest key", function()
    local ok, err = check({ tsl = { cert = "c", key = "k" } }, 'return { tsl = { cert = "c", key = "k" } }\n')
    assert.is_nil(ok)
    assert.equal(PATH .. ':1: unknown setting "tsl" (did you mean "tls"?)', err)
  end)
end)

describe("flosse.settings: max_concurrent_streams", function()
  it("takes an integer from 1 to 1000000", function()
    for _, v in ipairs({ 1, 128, 1000000, 2.0 }) do
      assert.is_true(check({ max_concurrent_streams = v }))
    end
  end)

  it("rejects 0, negatives, fractions, too many and other types", function()
    for _, v in ipairs({ 0, -1, 1.5, 1000001, "128", math.huge, 0 / 0 }) do
      local ok, err = check({ max_concurrent_streams = v }, "return {\n  max_concurrent_streams = X,\n}\n")
      assert.is_nil(ok, tostring(v))
      assert.truthy(err:find(PATH .. ":2: max_concurrent_streams must be an integer from 1 to 1000000"
        .. " (streams per HTTP/2 connection), not ", 1, true), err)
    end
  end)
end)
