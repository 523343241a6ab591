-- End to end: authentication (bearer header, query, cookie) and permissions.
local e2e = require "e2e"
local permissions = require "flosse.permissions"

local function first_event(port, target, headers)
  local c, head = e2e.open(port, target, headers)
  assert.equal("text/event-stream; charset=utf-8", head.headers["content-type"])
  local ev = assert(c:read_event())
  c:close()
  return ev
end

local function forbidden(port, target, headers, message)
  local resp = e2e.get(port, target, headers)
  assert.equal(403, resp.status)
  assert.matches("^text/plain", resp.headers["content-type"])
  assert.equal(tostring(#resp.body), resp.headers["content-length"])
  if message then assert.equal(message, resp.body) end
  return resp
end

describe("#e2e authentication and permissions on the example app", function()
  local server

  setup(function()
    -- Unset FLOSSE_API_KEY so the example's default key applies.
    server = e2e.start("scripts", { env = { FLOSSE_API_KEY = false } })
  end)

  teardown(function()
    if server then server:cleanup() end
  end)

  describe("IsAuthenticated on /sse/progress/", function()
    it("403 with the permission's message without a credential", function()
      forbidden(server.port, "/sse/progress/", nil, permissions.IsAuthenticated.message)
    end)

    it("403 with an unknown token", function()
      forbidden(server.port, "/sse/progress/", { "Authorization: Bearer nope" })
      forbidden(server.port, "/sse/progress/?token=nope")
      forbidden(server.port, "/sse/progress/", { "Cookie: flosse_token=nope" })
    end)

    it("403 with a credential in the wrong scheme or place", function()
      forbidden(server.port, "/sse/progress/", { "Authorization: Basic demo-token" })
      forbidden(server.port, "/sse/progress/", { "Cookie: other=demo-token" })
      forbidden(server.port, "/sse/progress/?tok=demo-token")
    end)

    it("200 with Authorization: Bearer demo-token", function()
      local ev = first_event(server.port, "/sse/progress/",
                             { "Authorization: Bearer demo-token" })
      assert.equal("progress", ev.event)
      assert.same({ step = 1, total = 10, pct = 10 }, e2e.json_decode(ev.data))
    end)

    it("200 with the token in the query (?token=)", function()
      local ev = first_event(server.port, "/sse/progress/?token=demo-token")
      assert.equal("progress", ev.event)
    end)

    it("200 with the token in the flosse_token cookie", function()
      local ev = first_event(server.port, "/sse/progress/",
                             { "Cookie: theme=dark; flosse_token=demo-token" })
      assert.equal("progress", ev.event)
    end)

    it("the quick start: ten progress events in order, then All done!", function()
      local c, head = e2e.open_stream(server.port, "/sse/progress/",
                                      { "Authorization: Bearer demo-token" })
      assert.equal(200, head.status)
      local started = e2e.now()
      for i = 1, 10 do
        local ev = assert(c:read_event())
        assert.equal("progress", ev.event)
        assert.same({ step = i, total = 10, pct = i * 10 }, e2e.json_decode(ev.data))
      end
      local last = assert(c:read_chunk())
      assert.equal("event: complete\ndata: All done!\n\n", last)
      assert.equal("", assert(c:read_chunk()))  -- the stream ended
      c:close()
      -- the view sleeps 1 s between events: at least ~9 s in all
      assert.is_true(e2e.now() - started > 8.5)
    end)
  end)

  describe("IsAdminUser on /sse/admin/", function()
    it("403 for an anonymous client", function()
      forbidden(server.port, "/sse/admin/", nil, permissions.IsAdminUser.message)
    end)

    it("403 for a non-staff user (demo-token)", function()
      forbidden(server.port, "/sse/admin/", { "Authorization: Bearer demo-token" },
                permissions.IsAdminUser.message)
    end)

    it("200 for the staff user (demo-admin-token)", function()
      local ev = first_event(server.port, "/sse/admin/",
                             { "Authorization: Bearer demo-admin-token" })
      assert.equal("admin", ev.event)
      assert.same({ username = "admin" }, e2e.json_decode(ev.data))
    end)

    it("200 for the staff user by query", function()
      local ev = first_event(server.port, "/sse/admin/?token=demo-admin-token")
      assert.equal("admin", ev.event)
    end)
  end)

  describe("a custom permission class (HasAPIKey) on /sse/apikey/", function()
    it("403 with its message without the header", function()
      forbidden(server.port, "/sse/apikey/", nil, "Invalid or missing API key.")
    end)

    it("403 with a wrong key", function()
      forbidden(server.port, "/sse/apikey/", { "X-API-Key: wrong" }, "Invalid or missing API key.")
    end)

    it("200 with X-API-Key: demo-api-key (any header case)", function()
      local ev = first_event(server.port, "/sse/apikey/", { "X-API-Key: demo-api-key" })
      assert.equal("apikey", ev.event)
      assert.same({ ok = true }, e2e.json_decode(ev.data))
      ev = first_event(server.port, "/sse/apikey/", { "x-api-key: demo-api-key" })
      assert.equal("apikey", ev.event)
    end)

    it("the user token is not an API key", function()
      forbidden(server.port, "/sse/apikey/", { "Authorization: Bearer demo-admin-token" })
    end)
  end)

  it("the 403 keeps the connection alive", function()
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("GET", "/sse/progress/")))
    assert.equal(403, assert(c:read_response()).status)
    assert(c:send(e2e.request_bytes("GET", "/sse/styles/string/")))
    local resp = assert(c:read_response())
    assert.equal(200, resp.status)
    assert.equal("data: hello\n\n", resp.body)
    c:close()
  end)
end)

describe("#e2e the API key comes from FLOSSE_API_KEY", function()
  local server = e2e.serve(setup, teardown, "scripts", { env = { FLOSSE_API_KEY = "spec-secret" } })

  it("accepts the configured key and refuses the demo one", function()
    local c, head = e2e.open_stream(server.port, "/sse/apikey/", { "X-API-Key: spec-secret" })
    assert.equal(200, head.status)
    c:close()
    forbidden(server.port, "/sse/apikey/", { "X-API-Key: demo-api-key" })
  end)
end)

describe("#e2e permission classes on the fixture app", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/app")

  it("a permission may sleep (it runs in the view's coroutine)", function()
    local resp = e2e.get(server.port, "/slow-perm/")
    assert.equal(200, resp.status)
    assert.equal("data: allowed\n\n", resp.body)
  end)

  it("the first failing class answers 403 and the next is not called", function()
    local resp = e2e.get(server.port, "/deny-first/")
    assert.equal(403, resp.status)
    assert.equal("denied by the fixture", resp.body)
    assert.falsy(server:log():find("NeverCalled ran", 1, true))
  end)

  it("a permission that raises is a 500 before the stream starts", function()
    local resp = e2e.get(server.port, "/perm-boom/")
    assert.equal(500, resp.status)
    assert.matches("^text/plain", resp.headers["content-type"])
    assert.is_string(server:wait_log("Explode raised on purpose"), "the error is logged")
    assert.equal(200, e2e.get(server.port, "/plain/").status)
  end)
end)
