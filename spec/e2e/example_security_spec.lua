-- End to end: the example app's security demo (issue 13): its JWT class
-- (the documented demo secret), its CORS setting and its cross-origin page
-- in a real browser (headless Chromium), with tokens minted outside flosse.
local e2e = require "e2e"

local DEMO_SECRET = "flosse-demo-secret-change-me" -- scripts/settings.lua's, documented as a demo


describe("#e2e the example app's JWT class, CORS and cross-origin page", function()
  local server = {}

  setup(function()
    for _ = 1, 5 do -- the free port may be taken between the probe and the bind
      local port = e2e.free_port()
      local ok, s = pcall(e2e.start, "scripts", { port = port, env = { FLOSSE_DEMO_PORT = tostring(port) } })
      if ok then
        server = s
        return
      end
    end
    error("could not start the example app")
  end)
  teardown(function() if server.pid then server:cleanup() end end)

  it("takes a JWT minted for the demo secret, and ends its stream at exp", function()
    local tok = e2e.jwt_mint("HS256", { typ = "JWT" }, { sub = "42", exp = os.time() + 4 }, DEMO_SECRET)
    local c = e2e.open(server.port, "/sse/me/", { "Authorization: Bearer " .. tok })
    local me = assert(c:read_event())
    assert.equal("me", me.event)
    local got = e2e.json_decode(me.data)
    assert.equal("42", got.username)
    assert.is_true(e2e.pump({ c }, function() return c.stream_ended end, 15), c:show())
    local frames = c:frames()
    assert.equal('event: flosse-expired\ndata: {"reason":"expired"}', frames[#frames])
    c:close()
    -- the same token again: expired, so the anonymous 403
    assert.equal(403, e2e.get(server.port, "/sse/me/", { "Authorization: Bearer " .. tok }).status)
    -- a token signed with another secret
    local forged = e2e.jwt_mint("HS256", {}, { sub = "42" }, "not-the-demo-secret")
    assert.equal(403, e2e.get(server.port, "/sse/me/", { "Authorization: Bearer " .. forged }).status)
  end)

  it("answers CORS for its two demo origins only", function()
    local listed = ("http://localhost:%d"):format(server.port)
    local c, head = e2e.open(server.port, "/sse/me/?token=demo-token", { "Origin: " .. listed })
    c:close()
    assert.equal(listed, head.headers["access-control-allow-origin"])
    assert.equal("true", head.headers["access-control-allow-credentials"])
    local c2, head2 = e2e.open(server.port, "/sse/me/?token=demo-token", { "Origin: https://evil.example" })
    c2:close()
    assert.is_nil(head2.headers["access-control-allow-origin"])
    assert.equal("Origin", head2.headers["vary"])
  end)

  it("its cross-origin page, on http://localhost, reads a stream of http://127.0.0.1 in Chromium", function()
    e2e.have_chromium()
    local dom = e2e.dump_dom(("http://localhost:%d/cross-origin/?open=1&events=2&token=demo-token")
      :format(server.port), 10000)
    local log = dom:match('<div id="log">(.-)</div>') or ""
    assert.truthy(log:find('me  {', 1, true), dom)
    assert.truthy(log:find('&quot;username&quot;:&quot;demo&quot;', 1, true)
      or log:find('"username":"demo"', 1, true), log)
    assert.truthy(dom:find(("Done: 2 events from http://127.0.0.1:%d read by http://localhost:%d")
      :format(server.port, server.port), 1, true), dom)
  end)
end)
