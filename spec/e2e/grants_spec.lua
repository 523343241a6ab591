-- End to end: channel grants (issue 13) on the spec/fixtures/grants app,
-- with JWTs minted by python3 (spec/tools/jwt_mint.py) and a token table;
-- and the publish_view safe default refusing an app at load.
local e2e = require "e2e"
local permissions = require "flosse.permissions"

local SECRET = "grants-e2e-" .. tostring(os.time())
local DEFAULT = permissions.DEFAULT_MESSAGE

local function jwt(sub, grants, extra)
  local c = { sub = sub, exp = os.time() + 600, flosse = grants }
  for k, v in pairs(extra or {}) do c[k] = v end
  return "Authorization: Bearer " .. e2e.jwt_mint("HS256", {}, c, SECRET)
end

local ALICE = { subscribe = { "news", "user/{sub}/*" }, publish = { "user/{sub}/out" } }
local BOB = "Authorization: Bearer bob-token"     -- token table: id 7, username bob, grants
local CAROL = "Authorization: Bearer carol-token" -- token table: no grants

-- A 403 exactly as the permission classes answer it: status, body, type, length.
local function forbidden(resp, what)
  assert.equal(403, resp.status, what)
  assert.equal(DEFAULT, resp.body, what)
  assert.equal("text/plain; charset=utf-8", resp.headers["content-type"], what)
  assert.equal(tostring(#DEFAULT), resp.headers["content-length"], what)
end

local function opens(port, target, headers)
  local c, head = e2e.open_stream(port, target, headers)
  c:close()
  return head.status
end

describe("#e2e channel grants on the grants fixture", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/grants", { env = { FLOSSE_GRANTS_SECRET = SECRET } })

  it("user/{sub}/* allows user/42/inbox and refuses user/43/inbox (CanSubscribe)", function()
    local alice = jwt(42, ALICE)
    assert.equal(200, opens(server.port, "/sse/channel/user/42/inbox/", { alice }))
    assert.equal(200, opens(server.port, "/sse/channel/news/", { alice }))
    forbidden(e2e.get(server.port, "/sse/channel/user/43/inbox/", { alice }), "user/43/inbox")
    forbidden(e2e.get(server.port, "/sse/channel/user/42/inbox/x/", { alice }), "user/42/inbox/x")
    forbidden(e2e.get(server.port, "/sse/channel/newsroom/", { alice }), "newsroom")
  end)

  it("a sub of \"*\" matches only the channel named *", function()
    local star = jwt("*", ALICE)
    assert.equal(200, opens(server.port, "/sse/channel/user/*/inbox/", { star }))
    forbidden(e2e.get(server.port, "/sse/channel/user/42/inbox/", { star }), "a * sub")
  end)

  it("a token-table user's {id} grants, and a fixed channel", function()
    assert.equal(200, opens(server.port, "/sse/channel/user/7/inbox/", { BOB }))
    forbidden(e2e.get(server.port, "/sse/channel/user/8/inbox/", { BOB }), "bob, user/8")
    assert.equal(200, opens(server.port, "/sse/fixed/", { jwt(42, ALICE) }))
    forbidden(e2e.get(server.port, "/sse/fixed/", { jwt(43, ALICE) }), "fixed, sub 43")
  end)

  it("a refused stream is the same 403 as no credential, a bad token or no grants: no hint", function()
    local cases = {
      no_credential = {},
      bad_token = { "Authorization: Bearer nope" },
      wrong_secret = { "Authorization: Bearer " .. e2e.jwt_mint("HS256", {}, { sub = "42", flosse = ALICE }, "x") },
      expired = { jwt(42, ALICE, { exp = os.time() - 60 }) },
      no_grant = { jwt(43, ALICE) },
      no_grants_at_all = { CAROL },
      empty_flosse_claim = { jwt(42, {}) },
    }
    local first
    for name, headers in pairs(cases) do
      local resp = e2e.get(server.port, "/sse/channel/user/42/inbox/", headers)
      forbidden(resp, name)
      first = first or resp
      assert.same(first.headers, resp.headers, name)
    end
  end)

  it("a relay without CanSubscribe still refuses a user with grants a channel it has no grant for", function()
    local alice = jwt(42, ALICE)
    assert.equal(200, opens(server.port, "/sse/open/user/42/inbox/", { alice }))
    forbidden(e2e.get(server.port, "/sse/open/secret/", { alice }), "alice on secret")
    forbidden(e2e.get(server.port, "/sse/open/secret/", { BOB }), "bob on secret")
    -- a user without grants is not restricted there
    assert.equal(200, opens(server.port, "/sse/open/secret/", { CAROL }))
  end)

  it("the refusals of the grants inside a view are the permission classes' 403, byte for byte", function()
    local alice = jwt(42, ALICE)
    local anonymous = e2e.get(server.port, "/sse/open/secret/")
    forbidden(anonymous, "anonymous")
    for _, target in ipairs { "/sse/open/secret/", "/sse/multi/?ch=secret", "/sse/multi/?ch=news,secret" } do
      local resp = e2e.get(server.port, target, { alice })
      forbidden(resp, target)
      assert.same(anonymous.headers, resp.headers, target)
    end
  end)

  it("flosse.subscribe in a view refuses a channel not granted, before the head a plain 403", function()
    local alice = jwt(42, ALICE)
    local c = e2e.open(server.port, "/sse/multi/?ch=news,user/42/a", { alice })
    assert.equal("ready", assert(c:read_event()).event)
    c:close()
    forbidden(e2e.get(server.port, "/sse/multi/?ch=news,secret", { alice }), "news,secret")
    forbidden(e2e.get(server.port, "/sse/multi/?ch=user/43/a", { alice }), "user/43/a")
  end)

  it("flosse.subscribe after the head: an error event, the stream ends", function()
    local c = e2e.open(server.port, "/sse/late/?ch=secret", { jwt(42, ALICE) })
    assert.equal("hello", assert(c:read_event()).event)
    local ev = assert(c:read_event())
    assert.equal("error", ev.event)
    assert.is_nil(c:read_event())
    c:close()
  end)

  it("a user without grants is unaffected by flosse.subscribe's rule", function()
    local c = e2e.open(server.port, "/sse/multi/?ch=secret,anything/at/all", { CAROL })
    assert.equal("ready", assert(c:read_event()).event)
    c:close()
    local jc = e2e.open(server.port, "/sse/multi/?ch=secret", { jwt(42, nil) })
    assert.equal("ready", assert(jc:read_event()).event)
    jc:close()
  end)

  it("publish: allowed where granted, 403 elsewhere (CanPublish), and the event reaches a granted relay", function()
    local alice = jwt(42, ALICE)
    local c = e2e.open(server.port, "/sse/channel/user/42/out/", { alice })
    -- the relay has no ready event: publish until it counts a subscriber
    local resp
    e2e.eventually(function()
      resp = e2e.post(server.port, "/api/publish/user/42/out/", "hello", { alice })
      assert.equal(200, resp.status, resp.body)
      return e2e.json_decode(resp.body).delivered == 1
    end)
    local ev = assert(c:read_event())
    assert.equal("hello", ev.data)
    c:close()
    forbidden(e2e.post(server.port, "/api/publish/user/43/out/", "x", { alice }), "alice on user/43/out")
    forbidden(e2e.post(server.port, "/api/publish/news/", "x", { alice }), "alice on news")
    forbidden(e2e.post(server.port, "/api/publish/news/", "x", { CAROL }), "carol (no grants)")
    forbidden(e2e.post(server.port, "/api/publish/news/", "x"), "anonymous")
    assert.equal(200, e2e.post(server.port, "/api/publish/room/bob/", "x", { BOB }).status)
    forbidden(e2e.post(server.port, "/api/publish/room/carol/", "x", { BOB }), "bob on room/carol")
  end)

  it("publish without CanPublish: a user with grants still publishes only where granted", function()
    local alice = jwt(42, ALICE)
    assert.equal(200, e2e.post(server.port, "/api/open-publish/user/42/out/", "x", { alice }).status)
    forbidden(e2e.post(server.port, "/api/open-publish/news/", "x", { alice }), "alice on news")
    assert.equal(200, e2e.post(server.port, "/api/open-publish/news/", "x", { CAROL }).status)
  end)

  it("request.user:may_subscribe and :may_publish answer for any channel", function()
    local function may(name, headers)
      local resp = e2e.get(server.port, "/may/" .. name .. "/", headers)
      assert.equal(200, resp.status, resp.body)
      return e2e.json_decode(resp.body)
    end
    local alice = jwt(42, ALICE)
    assert.same({ subscribe = true, publish = false }, may("user/42/inbox", { alice }))
    assert.same({ subscribe = true, publish = true }, may("user/42/out", { alice }))
    assert.same({ subscribe = false, publish = false }, may("user/43/inbox", { alice }))
    assert.same({ subscribe = true, publish = false }, may("news", { BOB }))
    assert.same({ subscribe = false, publish = true }, may("room/bob", { BOB }))
    assert.same({ subscribe = false, publish = false }, may("news", { CAROL }))
    assert.same({ subscribe = false, publish = false }, may("news"))
  end)
end)

describe("#e2e publish_view's safe default", function()
  local tmp, dir
  before_each(function()
    dir, tmp = e2e.copy_app("spec/fixtures/grants")
    e2e.write_file(dir .. "/urls.lua", table.concat({
      "local flosse = require 'flosse'",
      "return {",
      "  flosse.urls.path('sse/', flosse.relay_view{ channel = 'x' }),",
      "  flosse.urls.include('api/', {",
      "    flosse.urls.path('publish/<str:name>/', flosse.publish_view{}),",
      "  }),",
      "}",
    }, "\n"))
  end)
  after_each(function() e2e.remove_tree(tmp) end)

  local MESSAGE = 'urls.lua: route "api/publish/<str:name>/": publish_view has no permission_classes'
    .. " (nil or {}; write permission_classes = { flosse.permissions.AllowAny } to make it public)"

  it("flosse check exits non-zero naming the route", function()
    local code, out, err = e2e.run_flosse({ "check", dir }, { env = { FLOSSE_GRANTS_SECRET = "x" } })
    assert.are_not.equal(0, code)
    assert.is_truthy((out .. err):find(MESSAGE, 1, true), out .. err)
  end)

  it("flosse serve refuses to start, naming the route", function()
    local code, out, err = e2e.run_serve(dir, { "--port", "0" }, { env = { FLOSSE_GRANTS_SECRET = "x" } })
    assert.are_not.equal(0, code)
    assert.is_truthy((out .. err):find(MESSAGE, 1, true), out .. err)
  end)

  it("and loads once { AllowAny } is written out", function()
    local urls = e2e.read_file(dir .. "/urls.lua")
    e2e.write_file(dir .. "/urls.lua", (urls:gsub("publish_view{}",
      "publish_view{ permission_classes = { flosse.permissions.AllowAny } }")))
    local code, out, err = e2e.run_flosse({ "check", dir }, { env = { FLOSSE_GRANTS_SECRET = "x" } })
    assert.equal(0, code, out .. err)
  end)
end)
