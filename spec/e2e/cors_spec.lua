-- End to end: CORS (settings' cors and a view's own) and a stream view's
-- headers option, on spec/fixtures/cors (issue 13).
local e2e = require "e2e"

local APP = "https://app.example"

-- The Access-Control-* headers of a response, by lower-case name.
local function acl(resp)
  local t = {}
  for k, v in pairs(resp.headers) do
    if k:lower():find("^access%-control%-") then t[k:lower()] = v end
  end
  return t
end

local function preflight(port, target, origin, method, extra)
  local hs = { "Origin: " .. origin, "Access-Control-Request-Method: " .. method }
  for _, h in ipairs(extra or {}) do hs[#hs + 1] = h end
  return e2e.request(port, "OPTIONS", target, hs)
end

-- Opens a stream, reads its two events; returns the head and the events.
local function two_events(port, target, headers)
  local c, head = e2e.open(port, target, headers)
  local a, b = assert(c:read_event()), assert(c:read_event())
  c:close()
  return head, { a, b }
end

describe("#e2e CORS and stream headers", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/cors")

  describe("preflight", function()
    it("204 for a stream route, with the exact headers and no body", function()
      local r = preflight(server.port, "/stream/", APP, "GET", { "Access-Control-Request-Headers: last-event-id" })
      assert.equal(204, r.status, r.raw)
      assert.same({
        ["access-control-allow-origin"] = APP,
        ["access-control-allow-credentials"] = "true",
        ["access-control-allow-methods"] = "GET",
        ["access-control-allow-headers"] = "Authorization, Last-Event-ID, Content-Type",
        ["access-control-max-age"] = "600",
      }, acl(r))
      assert.equal("Origin", r.headers["vary"])
      assert.is_nil(r.headers["content-length"])
      assert.equal("", r.body)
    end)

    it("204 for a publish route: POST", function()
      local r = preflight(server.port, "/publish/", APP, "POST")
      assert.equal(204, r.status, r.raw)
      assert.equal("POST", r.headers["access-control-allow-methods"])
      assert.equal(APP, r.headers["access-control-allow-origin"])
    end)

    it("skips permission classes (a browser sends no credentials)", function()
      local r = preflight(server.port, "/guarded/", APP, "GET")
      assert.equal(204, r.status, r.raw)
    end)

    it("an unlisted origin, or no Access-Control-Request-Method: the 405 as without CORS", function()
      for _, r in ipairs({
        preflight(server.port, "/stream/", "https://evil.example", "GET"),
        e2e.request(server.port, "OPTIONS", "/stream/", { "Origin: " .. APP }),
      }) do
        assert.equal(405, r.status)
        assert.equal("GET", r.headers["allow"])
        assert.same({}, acl(r))
        assert.equal("Origin", r.headers["vary"])
      end
    end)

    it("a route with cors = false: the 405 of today, no Vary", function()
      local r = preflight(server.port, "/off/", APP, "GET")
      assert.equal(405, r.status)
      assert.equal("GET", r.headers["allow"])
      assert.same({}, acl(r))
      assert.is_nil(r.headers["vary"])
    end)

    it("a view's own policy: its origins, headers and max_age", function()
      local r = preflight(server.port, "/other/", "https://other.example", "GET")
      assert.equal(204, r.status)
      assert.equal("GET, HEAD", r.headers["access-control-allow-methods"])
      assert.is_nil(r.headers["access-control-allow-headers"])
      assert.is_nil(r.headers["access-control-allow-credentials"])
      assert.equal(405, preflight(server.port, "/other/", APP, "GET").status)
      r = preflight(server.port, "/star-credentials/", "https://any.example", "GET")
      assert.equal("https://any.example", r.headers["access-control-allow-origin"])
      assert.equal("5", r.headers["access-control-max-age"])
    end)
  end)

  describe("actual requests", function()
    it("a stream from a listed origin: the headers, and the events flow", function()
      local head, evs = two_events(server.port, "/stream/", { "Origin: " .. APP })
      assert.same({
        ["access-control-allow-origin"] = APP,
        ["access-control-allow-credentials"] = "true",
        ["access-control-expose-headers"] = "X-Request-Id",
      }, acl(head))
      assert.equal("Origin", head.headers["vary"])
      assert.equal("text/event-stream; charset=utf-8", head.headers["content-type"])
      assert.same({ n = 2 }, e2e.json_decode(evs[2].data))
    end)

    it("the origin is compared case-insensitively and echoed as sent", function()
      local head = two_events(server.port, "/stream/", { "Origin: HTTPS://App.Example" })
      assert.equal("HTTPS://App.Example", head.headers["access-control-allow-origin"])
    end)

    it("an unlisted origin or none: no Access-Control-*, still Vary: Origin", function()
      for _, hs in ipairs({ { "Origin: https://evil.example" }, {} }) do
        local head = two_events(server.port, "/stream/", hs)
        assert.same({}, acl(head))
        assert.equal("Origin", head.headers["vary"])
      end
    end)

    it("an ordinary view, and a view's own Vary kept", function()
      local r = e2e.get(server.port, "/plain/", { "Origin: " .. APP })
      assert.equal(200, r.status)
      assert.equal(APP, r.headers["access-control-allow-origin"])
      assert.equal("Origin", r.headers["vary"])
      r = e2e.get(server.port, "/own-vary/", { "Origin: " .. APP })
      assert.equal("Accept, Origin", r.headers["vary"])
    end)

    it("a publish view (POST) from a listed origin", function()
      local r = e2e.post(server.port, "/publish/", "hi", { "Origin: " .. APP })
      assert.equal(200, r.status, r.raw)
      assert.equal(APP, r.headers["access-control-allow-origin"])
    end)

    it("a 403 from a permission class carries them, so a browser can read it", function()
      local r = e2e.get(server.port, "/guarded/", { "Origin: " .. APP })
      assert.equal(403, r.status)
      assert.equal("no key", r.body)
      assert.equal(APP, r.headers["access-control-allow-origin"])
      assert.equal("true", r.headers["access-control-allow-credentials"])
      assert.equal("Origin", r.headers["vary"])
    end)

    it("\"*\" without credentials: *, no Allow-Credentials", function()
      local head = two_events(server.port, "/star/", { "Origin: https://any.example" })
      assert.same({ ["access-control-allow-origin"] = "*" }, acl(head))
    end)

    it("\"*\" with credentials: the origin itself", function()
      local r = e2e.get(server.port, "/star-credentials/", { "Origin: https://any.example" })
      assert.equal("https://any.example", r.headers["access-control-allow-origin"])
      assert.equal("true", r.headers["access-control-allow-credentials"])
    end)

    it("a view's own origins replace the setting's", function()
      local r = e2e.get(server.port, "/other/", { "Origin: " .. APP })
      assert.same({}, acl(r))
      r = e2e.get(server.port, "/other/", { "Origin: https://other.example" })
      assert.equal("https://other.example", r.headers["access-control-allow-origin"])
    end)

    it("cors = false: nothing, not even Vary", function()
      local head = two_events(server.port, "/off/", { "Origin: " .. APP })
      assert.same({}, acl(head))
      assert.is_nil(head.headers["vary"])
    end)

    it("relay_view passes cors and headers through", function()
      local c, head = e2e.open(server.port, "/relay/", { "Origin: https://relay.example" })
      c:close()
      assert.equal("https://relay.example", head.headers["access-control-allow-origin"])
      assert.equal("1", head.headers["x-relay"])
    end)
  end)

  describe("a stream's headers option", function()
    it("a table", function()
      local head, evs = two_events(server.port, "/with-headers/")
      assert.equal("bar", head.headers["x-foo"])
      assert.equal("7", head.headers["x-request-id"])
      assert.equal("1", evs[1].id)
    end)

    it("are the stream's own: the next request on a kept-alive connection has none", function()
      local c = e2e.connect(server.port)
      assert(c:send(e2e.request_bytes("GET", "/with-headers/")))
      local first = assert(c:read_response())
      assert.equal("bar", first.headers["x-foo"])
      assert(c:send(e2e.request_bytes("GET", "/stream/")))
      local second = assert(c:read_response())
      c:close()
      assert.equal(200, second.status)
      assert.is_nil(second.headers["x-foo"])
      assert.is_nil(second.headers["x-request-id"])
    end)

    it("a function of the request", function()
      local head = two_events(server.port, "/headers-fn/?v=hello")
      assert.equal("hello", head.headers["x-echo"])
    end)

    it("refuses CR LF, NUL, a bad name and the core's headers: a 500, never injected", function()
      for _, what in ipairs({ "value", "name", "managed", "type", "nul" }) do
        local r = e2e.get(server.port, "/headers-bad/?what=" .. what)
        assert.equal(500, r.status, what)
        assert.is_nil(r.headers["set-cookie"], what)
        assert.not_matches("Set%-Cookie", r.raw or "", nil, what)
      end
      assert.truthy(e2e.eventually(function() return server:log():find("set by the server", 1, true) end))
      assert.truthy(server:log():find("without CR, LF or NUL", 1, true))
    end)
  end)
end)

describe("#e2e CORS settings are checked", function()
  local function check_with(settings)
    local dir, tmp = e2e.copy_app("spec/fixtures/cors")
    e2e.write_file(dir .. "/settings.lua", settings)
    local code, out, err = e2e.run_flosse({ "check", dir })
    e2e.remove_tree(tmp)
    return code, out .. err
  end

  it("a wrong type fails naming the key", function()
    for settings, message in pairs({
      ['return { cors = { origins = "https://app.example" } }'] = "cors.origins must be",
      ['return { cors = { origins = "*", credentials = "yes" } }'] = "cors.credentials must be a boolean",
      ['return { cors = { origins = "*", max_age = -1 } }'] = "cors.max_age must be",
      ['return { cors = { origins = "*", headers = { "Bad Name" } } }'] = "cors.headers%[1%] is not a header name",
      ['return { cors = { origins = "*", maxage = 5 } }'] = 'unknown key "maxage"',
      ['return { cors = true }'] = "cors must be a table or false",
    }) do
      local code, out = check_with(settings)
      assert.not_equal(0, code, settings)
      assert.matches(message, out, nil, settings)
    end
  end)

  it("a good one passes", function()
    local code, out = check_with('return { cors = { origins = "*" } }')
    assert.equal(0, code, out)
  end)
end)

describe("#e2e a browser's EventSource from another origin (headless Chromium)", function()
  local page, sse, tmp

  setup(function()
    page = e2e.start("spec/fixtures/cors")
    -- The stream's server lists the page's origin (another port: another origin).
    local dir
    dir, tmp = e2e.copy_app("spec/fixtures/cors")
    e2e.write_file(dir .. "/settings.lua", ([[
      return { heartbeat = 0, cors = { origins = { "http://127.0.0.1:%d" }, credentials = true } }
    ]]):format(page.port))
    sse = e2e.start(dir)
  end)

  teardown(function()
    if sse then sse:cleanup() end
    if page then page:cleanup() end
    e2e.remove_tree(tmp)
  end)

  local function dump_dom(path)
    return e2e.dump_dom(("http://127.0.0.1:%d/page/?port=%d&path=%s"):format(page.port, sse.port, path), 10000)
  end

  it("withCredentials: the events of a listed origin arrive", function()
    e2e.have_chromium()
    local dom = dump_dom("/stream/")
    local items = {}
    for li in (dom:match('<ul id="events">(.-)</ul>') or ""):gmatch("<li>(.-)</li>") do
      items[#items + 1] = li
    end
    assert.same({ '1 {"n":1}', '2 {"n":2}' }, items)
    assert.truthy(dom:find('<p id="status">done</p>', 1, true))
  end)

  it("an unlisted origin, or \"*\" without credentials: the browser refuses the stream", function()
    -- /relay/ lists only https://relay.example; /star/ answers "*", which a
    -- withCredentials EventSource may not take.
    for _, path in ipairs({ "/relay/", "/star/" }) do
      local dom = dump_dom(path)
      assert.truthy(dom:find('<p id="status">error</p>', 1, true), path .. ": " .. dom)
      assert.falsy(dom:find("<li>", 1, true), path)
    end
  end)
end)
