-- End to end (issue 13): trusted_proxies. Only a peer in the list may say
-- who the client is (X-Forwarded-For, Forwarded); request.remote_addr is
-- then the client, request.peer_addr the peer, authentication sees the
-- client, and the access line names it.
local e2e = require "e2e"

local APP = "spec/fixtures/proxies"

-- GET target with headers (a list of "Name: value") from host (default
-- 127.0.0.1); returns the decoded JSON body.
local function addr(server, target, headers, host)
  local c = e2e.connect(server.port, host)
  assert(c:send(e2e.request_bytes("GET", target, headers)))
  local resp = assert(c:read_response())
  c:close()
  assert.equal(200, resp.status, resp.raw .. (resp.body or ""))
  return e2e.json_decode(resp.body)
end

-- The access line of the request whose path is target (the n-th one).
local function access_for(server, target, n)
  local found = e2e.eventually(function()
    local seen = 0
    for _, a in ipairs(e2e.access_lines(server:log())) do
      if a.path == target then
        seen = seen + 1
        if seen == (n or 1) then return a end
      end
    end
  end)
  assert.is_table(found, "no access line for " .. target .. " in:\n" .. server:log())
  return found
end

describe("#e2e trusted_proxies: a trusted peer (127.0.0.1, 10.0.0.0/8, ::1, fd00::/8)", function()
  local server = e2e.serve(setup, teardown, APP)

  it("X-Forwarded-For: the client becomes remote_addr, before authentication", function()
    local r = addr(server, "/addr/?n=1", { "X-Forwarded-For: 203.0.113.7" })
    assert.same({ remote_addr = "203.0.113.7", peer_addr = "127.0.0.1", auth_saw = "203.0.113.7" }, r)
  end)

  it("the access line names the client", function()
    addr(server, "/addr/?n=2", { "X-Forwarded-For: 203.0.113.8" })
    local a = access_for(server, "/addr/?n=2")
    assert.equal("203.0.113.8", a.addr, a.line)
    -- a stream's too
    local c = e2e.open_stream(server.port, "/sse/addr/?n=3", { "X-Forwarded-For: 198.51.100.9" })
    local ev = assert(c:read_event())
    c:close()
    assert.equal("198.51.100.9", e2e.json_decode(ev.data).remote_addr)
    assert.equal("198.51.100.9", access_for(server, "/sse/addr/?n=3").addr)
  end)

  it("a kept-alive connection: each request's own client, the next without headers is the peer", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("GET", "/addr/?n=4", { "X-Forwarded-For: 203.0.113.20" })))
    local r1 = assert(c:read_response())
    assert(c:send(e2e.request_bytes("GET", "/addr/?n=5")))
    local r2 = assert(c:read_response())
    assert(c:send(e2e.request_bytes("GET", "/addr/?n=6", { "X-Forwarded-For: 203.0.113.21" })))
    local r3 = assert(c:read_response())
    c:close()
    assert.equal("203.0.113.20", e2e.json_decode(r1.body).remote_addr)
    assert.equal("127.0.0.1", e2e.json_decode(r2.body).remote_addr)
    assert.equal("203.0.113.21", e2e.json_decode(r3.body).remote_addr)
    assert.equal("203.0.113.20", access_for(server, "/addr/?n=4").addr)
    assert.equal("127.0.0.1", access_for(server, "/addr/?n=5").addr)
    assert.equal("203.0.113.21", access_for(server, "/addr/?n=6").addr)
  end)

  it("chains: trusted hops skipped from the right; repeated headers joined", function()
    assert.equal("203.0.113.7", addr(server, "/addr/", { "X-Forwarded-For: 203.0.113.7, 10.0.0.2" }).remote_addr)
    assert.equal("203.0.113.7", addr(server, "/addr/", {
      "X-Forwarded-For: 192.0.2.1, 203.0.113.7", "X-Forwarded-For: 10.0.0.2" }).remote_addr)
    assert.equal("10.0.0.1", addr(server, "/addr/", { "X-Forwarded-For: 10.0.0.1, 10.0.0.2" }).remote_addr)
  end)

  it("garbage: the peer stays", function()
    for _, v in ipairs({ "garbage", "203.0.113.7:8080", "unknown", "203.0.113.7, nonsense", "1.2.3.4.5",
      ("9"):rep(3000) }) do
      local r = addr(server, "/addr/", { "X-Forwarded-For: " .. v })
      assert.equal("127.0.0.1", r.remote_addr, v)
      assert.equal("127.0.0.1", r.peer_addr, v)
    end
  end)

  it("Forwarded: quoted IPv6 with a port, IPv4 with a port; it beats X-Forwarded-For", function()
    assert.equal("2001:db8::1", addr(server, "/addr/", { 'Forwarded: for="[2001:db8::1]:4711"' }).remote_addr)
    assert.equal("192.0.2.43", addr(server, "/addr/", { "Forwarded: for=192.0.2.43:1234;proto=http" }).remote_addr)
    assert.equal("192.0.2.60", addr(server, "/addr/", { "Forwarded: for=192.0.2.60",
      "X-Forwarded-For: 203.0.113.7" }).remote_addr)
    assert.equal("127.0.0.1", addr(server, "/addr/", { "Forwarded: for=_hidden" }).remote_addr)
  end)

  it("IPv6 CIDR: fd00::/8 hops are skipped", function()
    local r = addr(server, "/addr/?n=7", { "X-Forwarded-For: 2001:db8::5, fd00::1, fd12::2" })
    assert.equal("2001:db8::5", r.remote_addr)
    assert.equal("2001:db8::5", access_for(server, "/addr/?n=7").addr)
  end)
end)

describe("#e2e trusted_proxies: an IPv6 peer (::1)", function()
  it("a peer on ::1 in the list may name the client", function()
    local probe = e2e.socket.tcp6()
    local can = probe and probe:bind("::1", 0)
    if probe then probe:close() end
    if not can then
      pending("no IPv6 loopback here")
      return
    end
    local server = e2e.start(APP, { host = "::1" })
    finally(function() server:cleanup() end)
    local r = addr(server, "/addr/", { "X-Forwarded-For: 203.0.113.7" }, "::1")
    assert.same({ remote_addr = "203.0.113.7", peer_addr = "::1", auth_saw = "203.0.113.7" }, r)
  end)
end)

describe("#e2e trusted_proxies: an untrusted peer (only 10.0.0.0/8 trusted)", function()
  local server = e2e.serve(setup, teardown, APP, { env = { FLOSSE_TEST_TRUSTED = "10.0.0.0/8" } })

  it("the headers are ignored whatever they say", function()
    for _, h in ipairs({ { "X-Forwarded-For: 203.0.113.7" }, { "Forwarded: for=203.0.113.7" },
      { "X-Forwarded-For: 10.0.0.1" }, { "X-Forwarded-For: 127.0.0.1, 203.0.113.7" } }) do
      local r = addr(server, "/addr/", h)
      assert.same({ remote_addr = "127.0.0.1", peer_addr = "127.0.0.1", auth_saw = "127.0.0.1" }, r)
    end
    addr(server, "/addr/?n=8", { "X-Forwarded-For: 203.0.113.7" })
    assert.equal("127.0.0.1", access_for(server, "/addr/?n=8").addr)
  end)
end)

describe("#e2e trusted_proxies: no setting", function()
  local server = e2e.serve(setup, teardown, APP, { env = { FLOSSE_TEST_TRUSTED = "none" } })

  it("no proxy is trusted", function()
    local r = addr(server, "/addr/", { "X-Forwarded-For: 203.0.113.7" })
    assert.equal("127.0.0.1", r.remote_addr)
  end)
end)

describe("#e2e trusted_proxies: bad settings", function()
  local function check_with(settings)
    local dir, tmp = e2e.copy_app(APP)
    e2e.write_file(dir .. "/settings.lua", settings)
    local code, out, err = e2e.run_flosse({ "check", dir })
    e2e.remove_tree(tmp)
    return code, out, err, dir
  end

  it("a block that does not parse fails flosse check, naming it", function()
    local code, _, err = check_with('return { trusted_proxies = { "127.0.0.1", "10.0.0.0/33" } }')
    assert.equal(2, code)
    assert.matches('settings.lua: trusted_proxies%[2%]: "10.0.0.0/33" is not an address or CIDR', err)
  end)

  it("a wrong type fails flosse check", function()
    local code, _, err = check_with('return { trusted_proxies = "10.0.0.0/8" }')
    assert.equal(2, code)
    assert.matches("settings.lua: trusted_proxies must be a list of addresses and CIDRs, got string", err)
    code, _, err = check_with('return { trusted_proxies = { "::1", 42 } }')
    assert.equal(2, code)
    assert.matches("settings.lua: trusted_proxies%[2%] must be a string", err)
  end)

  it("a good list passes flosse check", function()
    local code, out, err = check_with('return { trusted_proxies = { "127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8" } }')
    assert.equal(0, code, out .. err)
  end)
end)
