-- flosse.proxies: trusted_proxies as written, and the client a trusted
-- proxy's X-Forwarded-For or Forwarded header names.
local proxies = require "flosse.proxies"
local redact = require "flosse.redact"
local auth = require "flosse.auth"

local W = "settings.lua: trusted_proxies"

local function trusted(list) return assert(proxies.normalize(list, W)) end

describe("flosse.proxies", function()
  local T = trusted { "127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8" }

  it("normalize: nil and {} trust no one; a list becomes the core's", function()
    assert.is_nil(proxies.normalize(nil, W))
    local none, err = proxies.normalize({}, W)
    assert.is_nil(none)
    assert.is_nil(err)
    assert.equal(4, #T)
    assert.is_true(T:contains("10.1.2.3"))
    assert.is_true(T:contains("fd12::7"))
    assert.is_true(T:contains("::ffff:127.0.0.1"))
    assert.is_false(T:contains("203.0.113.7"))
    assert.is_nil(T:contains("not an address"))
  end)

  it("normalize: a wrong type or an entry that does not parse names it", function()
    for _, case in ipairs({
      { "10.0.0.0/8", 'settings.lua: trusted_proxies must be a list of addresses and CIDRs, got string' },
      { { "127.0.0.1", "10.0.0.0/33" }, 'settings.lua: trusted_proxies[2]: "10.0.0.0/33" is not an address or CIDR' },
      { { "localhost" }, 'settings.lua: trusted_proxies[1]: "localhost" is not an address or CIDR' },
      { { "::1", "fd00::/129" }, 'settings.lua: trusted_proxies[2]: "fd00::/129" is not an address or CIDR' },
      { { "127.0.0.1", 10 }, "settings.lua: trusted_proxies[2] must be a string (an address or a CIDR), got number" },
      { { proxy = "127.0.0.1" },
        "settings.lua: trusted_proxies must be a list of addresses and CIDRs (it has the key proxy)" },
      { { " 127.0.0.1" }, 'settings.lua: trusted_proxies[1]: " 127.0.0.1" is not an address or CIDR' },
    }) do
      local list, err = proxies.normalize(case[1], W)
      assert.is_nil(list)
      assert.equal(case[2], err)
    end
  end)

  local function client(headers, peer, list)
    return proxies.client_addr(list or T, peer or "127.0.0.1", headers)
  end

  it("X-Forwarded-For from a trusted peer: the client", function()
    assert.equal("203.0.113.7", client { ["x-forwarded-for"] = "203.0.113.7" })
    assert.equal("203.0.113.7", client { ["x-forwarded-for"] = "  203.0.113.7  " })
    assert.equal("2001:db8::1", client { ["x-forwarded-for"] = "2001:DB8:0::1" }) -- canonical form
    assert.equal("203.0.113.7", client { ["x-forwarded-for"] = "::ffff:203.0.113.7" })
  end)

  it("X-Forwarded-For chains: from the right, trusted hops skipped", function()
    assert.equal("203.0.113.7", client { ["x-forwarded-for"] = "203.0.113.7, 10.0.0.2" })
    assert.equal("203.0.113.7", client { ["x-forwarded-for"] = "198.51.100.1, 203.0.113.7, 10.0.0.2, 10.9.9.9" })
    -- what the client wrote itself is left of what the proxies added
    assert.equal("203.0.113.7", client { ["x-forwarded-for"] = "1.1.1.1, evil, 203.0.113.7" })
    -- repeated headers, joined by the core with ", "
    assert.equal("203.0.113.7", client { ["x-forwarded-for"] = "203.0.113.7, 10.0.0.2, 10.0.0.3" })
    -- every hop trusted: the leftmost
    assert.equal("10.0.0.1", client { ["x-forwarded-for"] = "10.0.0.1, 10.0.0.2" })
    -- empty list elements are no hops
    assert.equal("203.0.113.7", client { ["x-forwarded-for"] = ",,203.0.113.7,, ,10.0.0.2" })
  end)

  it("garbage: the peer stays (nil)", function()
    for _, v in ipairs({ "", " ", ",", " , " }) do assert.is_nil(client { ["x-forwarded-for"] = v }, v) end
    for _, v in ipairs({ "garbage", "203.0.113.7:80", "[2001:db8::1]", "203.0.113.7, garbage",
      "unknown", "1.2.3", "203.0.113.7\0", ("9"):rep(5000), "10.0.0.0/8" }) do
      assert.is_nil(client { ["x-forwarded-for"] = v }, v)
    end
  end)

  it("from an untrusted peer the headers are ignored", function()
    local only10 = trusted { "10.0.0.0/8" }
    assert.is_nil(client({ ["x-forwarded-for"] = "203.0.113.7" }, "127.0.0.1", only10))
    assert.is_nil(client({ forwarded = "for=203.0.113.7" }, "127.0.0.1", only10))
    assert.is_nil(client({ ["x-forwarded-for"] = "203.0.113.7" }, "203.0.113.9"))
    assert.is_nil(proxies.client_addr(nil, "127.0.0.1", { ["x-forwarded-for"] = "203.0.113.7" }))
    assert.equal("203.0.113.7", client({ ["x-forwarded-for"] = "203.0.113.7" }, "10.1.1.1", only10))
  end)

  it("IPv6 peers and blocks", function()
    assert.equal("203.0.113.7", client({ ["x-forwarded-for"] = "203.0.113.7" }, "::1"))
    assert.equal("2001:db8::5", client({ ["x-forwarded-for"] = "2001:db8::5, fd00::1" }, "fd99::2"))
    assert.is_nil(client({ ["x-forwarded-for"] = "2001:db8::5" }, "fe80::1"))
  end)

  it("Forwarded (RFC 7239): for= values, quoted, bracketed, with ports", function()
    assert.equal("2001:db8::1", client { forwarded = 'for="[2001:db8::1]:4711"' })
    assert.equal("2001:db8::1", client { forwarded = 'for="[2001:db8::1]"' })
    assert.equal("192.0.2.43", client { forwarded = "for=192.0.2.43:1234" })
    assert.equal("192.0.2.43", client { forwarded = 'for="192.0.2.43"' })
    assert.equal("192.0.2.60", client { forwarded = "for=192.0.2.60;proto=http;by=203.0.113.43" })
    assert.equal("192.0.2.60", client { forwarded = "proto=https; For=192.0.2.60" })
    assert.equal("192.0.2.60", client { forwarded = "for=192.0.2.60, for=10.0.0.2;by=10.0.0.3" })
    assert.equal("198.51.100.17", client { forwarded = 'for=192.0.2.43, for="[2001:db8:cafe::17]", for=198.51.100.17' })
  end)

  it("Forwarded: unknown, obfuscated and missing for= are not addresses", function()
    assert.is_nil(client { forwarded = "for=unknown" })
    assert.is_nil(client { forwarded = "for=_hidden" })
    assert.is_nil(client { forwarded = 'for="_mdn"' })
    assert.is_nil(client { forwarded = "for=192.0.2.60, for=_hidden" })
    assert.is_nil(client { forwarded = 'for="[2001:db8::1"' })
    assert.is_nil(client { forwarded = "for=192.0.2.60, proto=https" }) -- the last hop's client unknown
    assert.is_nil(client { forwarded = "for=" })
  end)

  it("Forwarded beats X-Forwarded-For when it has a for=", function()
    assert.equal("192.0.2.60", client { forwarded = "for=192.0.2.60", ["x-forwarded-for"] = "203.0.113.7" })
    assert.equal("203.0.113.7", client { forwarded = "proto=https", ["x-forwarded-for"] = "203.0.113.7" })
  end)

  it("at most 32 hops are examined from the right", function()
    local hops = { "203.0.113.7" }
    for i = 1, 40 do hops[#hops + 1] = "10.0.0." .. i end
    -- every examined hop trusted: the leftmost examined, not the client beyond them
    assert.equal("10.0.0.9", client { ["x-forwarded-for"] = table.concat(hops, ", ") })
    assert.equal(32, #proxies.x_forwarded_for_hops(table.concat(hops, ", ")))
  end)

  it("linear in the header's length", function()
    for _, s in ipairs({ ("1"):rep(200000), (","):rep(200000), ("1, "):rep(70000), (" "):rep(200000),
      ("for=;"):rep(40000), ('"['):rep(100000), ("a=b;"):rep(50000) .. ",", ("10.0.0.1,"):rep(20000) }) do
      local t0 = os.clock()
      client { ["x-forwarded-for"] = s }
      client { forwarded = s }
      assert.is_true(os.clock() - t0 < 0.5, ("%d bytes took %.3f s"):format(#s, os.clock() - t0))
    end
  end)

  it("forwarded_for strips quotes, brackets and ports only", function()
    assert.equal("2001:db8::1", proxies.forwarded_for('"[2001:db8::1]:4711"'))
    assert.equal("192.0.2.43", proxies.forwarded_for("192.0.2.43:1234"))
    assert.equal("2001:db8::1", proxies.forwarded_for("2001:db8::1"))
    assert.equal("unknown", proxies.forwarded_for("unknown"))
    assert.is_nil(proxies.forwarded_for("[2001:db8::1"))
  end)
end)

describe("flosse.redact", function()
  it("query_names: each authentication class's query, once; false and non-strings left out", function()
    local classes = {
      auth.TokenAuthentication { tokens = {} },
      auth.TokenAuthentication { tokens = {}, query = "access_token" },
      auth.TokenAuthentication { tokens = {}, query = false },
      auth.TokenAuthentication { tokens = {}, query = "token" },
      { authenticate = function() end },
    }
    assert.same({ "token", "access_token" }, redact.query_names(classes))
    assert.same({}, redact.query_names({}))
    assert.same({}, redact.query_names(nil))
  end)
end)
