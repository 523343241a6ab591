-- flosse.tls (issue 15): the tls setting and the --tls-cert/--tls-key flags,
-- checked and made into core.listen's paths; and max_concurrent_streams as
-- flosse.settings judges it.
local tls = require "flosse.tls"
local settings = require "flosse.settings"

local W = "app/settings.lua:3"

describe("flosse.tls", function()
  local dir
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. "/certs"))
    for _, f in ipairs { "certs/cert.pem", "certs/key.pem" } do
      local h = assert(io.open(dir .. "/" .. f, "w"))
      h:write("-----BEGIN CERTIFICATE-----\n")
      h:close()
    end
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("normalize: nil is cleartext; paths are read from the app folder", function()
    assert.is_nil(tls.normalize(nil, dir, W))
    local t = assert(tls.normalize({ cert = "certs/cert.pem", key = "certs/key.pem" }, dir, W))
    assert.same({ cert = dir .. "/certs/cert.pem", key = dir .. "/certs/key.pem" }, t)
    -- an absolute path stays as it is
    t = assert(tls.normalize({ cert = dir .. "/certs/cert.pem", key = dir .. "/certs/key.pem" }, "/elsewhere", W))
    assert.equal(dir .. "/certs/cert.pem", t.cert)
  end)

  it("normalize: each mistake is one line naming the setting", function()
    for _, case in ipairs {
      { "cert.pem", "app/settings.lua:3: tls must be a table { cert = FILE, key = FILE }, not string" },
      { { cert = "certs/cert.pem" }, "app/settings.lua:3: tls needs both cert and key (key is missing" },
      { { key = "certs/key.pem" }, "app/settings.lua:3: tls needs both cert and key (cert is missing" },
      { { cert = 1, key = "certs/key.pem" }, "app/settings.lua:3: tls.cert must be a file's path (a string), not 1" },
      { { cert = "", key = "certs/key.pem" }, 'tls.cert must be a file\'s path (a string), not ""' },
      { { cert = "certs/cert.pem", key = "certs/key.pem", chain = "x" },
        'app/settings.lua:3: tls has an unknown key "chain" (it takes cert and key)' },
      { { cert = "certs/nope.pem", key = "certs/key.pem" },
        "app/settings.lua:3: tls.cert: cannot read " .. dir .. "/certs/nope.pem: No such file or directory" },
      { { cert = "certs/cert.pem", key = "nope.pem" }, "tls.key: cannot read " .. dir .. "/nope.pem" },
    } do
      local t, err = tls.normalize(case[1], dir, W)
      assert.is_nil(t)
      assert.truthy(err:find(case[2], 1, true), err)
    end
  end)

  it("from_flags: both or neither, relative to the current folder", function()
    assert.is_nil(tls.from_flags(nil, nil))
    local t = assert(tls.from_flags(dir .. "/certs/cert.pem", dir .. "/certs/key.pem"))
    assert.same({ cert = dir .. "/certs/cert.pem", key = dir .. "/certs/key.pem" }, t)
    local _, err = tls.from_flags(dir .. "/certs/cert.pem", nil)
    assert.equal("--tls-cert needs --tls-key (its private key, PEM) too", err)
    _, err = tls.from_flags(nil, dir .. "/certs/key.pem")
    assert.equal("--tls-key needs --tls-cert (the certificate chain, PEM) too", err)
    _, err = tls.from_flags("certs/cert.pem", "certs/key.pem") -- not from the app folder
    assert.equal("--tls-cert: cannot read certs/cert.pem: No such file or directory", err)
  end)
end)

describe("flosse.settings: tls and max_concurrent_streams", function()
  it("max_concurrent_streams is an integer from 1 to 1000000", function()
    assert.is_true(settings.check({ max_concurrent_streams = 1 }, "s.lua", ""))
    assert.is_true(settings.check({ max_concurrent_streams = 1000000 }, "s.lua", ""))
    for _, bad in ipairs { 0, -1, 1.5, 1000001, "128" } do
      local ok, err = settings.check({ max_concurrent_streams = bad }, "s.lua",
        "return {\n max_concurrent_streams = x }")
      assert.is_nil(ok)
      assert.truthy(err:find("s.lua:2: max_concurrent_streams must be an integer from 1 to 1000000", 1, true), err)
    end
  end)

  it("tls is a known key, checked by flosse.tls; a typo is caught", function()
    assert.is_true(settings.known("tls"))
    local ok, err = settings.check({ tsl = {} }, "s.lua", "return { tsl = {} }")
    assert.is_nil(ok)
    assert.truthy(err:find('unknown setting "tsl" (did you mean "tls"?)', 1, true), err)
  end)

  it("line_of finds the key's line", function()
    assert.equal(3, settings.line_of("return {\n  debug = true,\n  tls = { cert = 'a' },\n}", "tls"))
    assert.is_nil(settings.line_of("return {}", "tls"))
  end)
end)
