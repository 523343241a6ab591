-- flosse.grants (issue 13): channel patterns, the user methods built on
-- them, CanSubscribe/CanPublish, flosse.subscribe's rule, and the
-- publish_view safe default at the app's load.
local grants = require "flosse.grants"
local auth = require "flosse.auth"
local permissions = require "flosse.permissions"
local current = require "flosse.current"
local request_mod = require "flosse.request"
local flosse = require "flosse"
local app_mod = require "flosse.app"
local e2e = require "e2e"

local match = grants.match

describe("flosse.grants.match", function()
  -- { pattern, name, vars or false, expected }
  local cases = {
    -- literals
    { "news", "news", false, true },
    { "news", "new", false, false },
    { "news", "newsx", false, false },
    { "news", "news/a", false, false },
    { "a/b", "a/b", false, true },
    { "a/b", "a/c", false, false },
    -- * within one segment
    { "news/*", "news/a", false, true },
    { "news/*", "news/", false, true },        -- an empty run
    { "news/*", "news", false, false },
    { "news/*", "news/a/b", false, false },    -- * never crosses /
    { "*", "a/b", false, false },
    { "n*s", "news", false, true },
    { "n*s", "n/s", false, false },
    { "*a*b*c", "xaybzc", false, true },
    { "*a*b*c", "xaybzcd", false, false },
    { "ab*ba", "aba", false, false },          -- the two ends do not overlap
    { "ab*ba", "abba", false, true },
    { "a*a*a", "aaa", false, true },
    { "a*a*a", "aa", false, false },
    { "a**b", "axxb", false, true },           -- ** inside a segment is *
    { "a**b", "ax/xb", false, false },
    { "***", "abc", false, true },
    { "***", "a/c", false, false },
    -- ** over whole segments
    { "**", "", false, true },
    { "**", "a", false, true },
    { "**", "a/b/c", false, true },
    { "news/**", "news", false, true },        -- zero segments
    { "news/**", "news/a", false, true },
    { "news/**", "news/a/b", false, true },
    { "news/**", "newsx", false, false },
    { "news/**", "other/news", false, false },
    { "**/b", "b", false, true },
    { "**/b", "x/y/b", false, true },
    { "**/b", "x/y/bb", false, false },
    { "a/**/b", "a/b", false, true },
    { "a/**/b", "a/x/y/b", false, true },
    { "a/**/b", "a/x/y/c", false, false },
    { "a/**/b/*", "a/x/b/y/b/z", false, true }, -- the backtrack point moves on
    { "**/x/**", "a/b/x", false, true },
    { "**/**", "a", false, true },
    -- {claim}, taken literally
    { "user/{sub}/*", "user/42/inbox", { sub = "42" }, true },
    { "user/{sub}/*", "user/43/inbox", { sub = "42" }, false },
    { "user/{sub}/*", "user/42/inbox", { sub = 42 }, true },
    { "user/{sub}/*", "user/42/inbox", { sub = 42.0 }, true }, -- lua-cjson's 42
    { "user/{sub}/*", "user/42.0/inbox", { sub = 42.0 }, false },
    { "user/{sub}/*", "user/*/inbox", { sub = "*" }, true },
    { "user/{sub}/*", "user/x/inbox", { sub = "*" }, false },  -- a * value is no wildcard
    { "u/{sub}", "u/**", { sub = "**" }, true },
    { "u/{sub}", "u/x", { sub = "**" }, false },
    { "u/{sub}", "u/a/b", { sub = "**" }, false },
    { "u/{sub}", "u/a/b", { sub = "a/b" }, true },             -- a / in the value is a /
    { "u/{sub}", "u/a/c", { sub = "a/b" }, false },
    { "u/{sub}/*", "u/a/b/c", { sub = "a/b" }, true },
    { "u/{sub}", "u/{x}", { sub = "{x}" }, true },
    { "u/{sub}", "u/y", { sub = "{x}", x = "y" }, false },     -- never substituted again
    { "t/{https://ex.example/tenant}/**", "t/acme/a", { ["https://ex.example/tenant"] = "acme" }, true },
    { "p{id}-{username}", "p7-bob", { id = 7, username = "bob" }, true },
    -- a claim that is missing, or not a string or an integer: nothing
    { "u/{sub}", "u/", {}, false },
    { "u/{sub}/**", "u/x", {}, false },
    { "u/{sub}", "u/1.5", { sub = 1.5 }, false },
    { "u/{sub}", "u/true", { sub = true }, false },
    { "u/{sub}", "u/", { sub = "" }, false },
    { "u/{sub}", "u/x", { sub = { "x" } }, false },
    { "u/{sub}", "u/inf", { sub = math.huge }, false },
    { "u/{sub}", "u/x", false, false },
    { "news", "news", {}, true },                              -- no claim needed
    -- malformed patterns: nothing
    { "u/{sub", "u/{sub", { sub = "x" }, false },
    { "u/{sub", "u/x", { sub = "x" }, false },
    { "u/}", "u/}", false, false },
    { "u/{}", "u/{}", false, false },
    { "u/{a{b}", "u/x", { ["a{b"] = "x" }, false },
    { 42, "42", false, false },
    { { "news" }, "news", false, false },
    { ("a"):rep(grants.MAX_PATTERN_BYTES + 1), ("a"):rep(grants.MAX_PATTERN_BYTES + 1), false, false },
    -- empty names and patterns
    { "", "", false, true },
    { "*", "", false, true },
    { "news", "", false, false },
    { "", "news", false, false },
    -- names that are not strings
    { "**", 42, false, false },
    { "**", nil, false, false },
  }

  for i, c in ipairs(cases) do
    local pattern, name, vars, want = c[1], c[2], c[3] or nil, c[4]
    it(("#%d %s against %s -> %s"):format(i, tostring(pattern):sub(1, 40), tostring(name):sub(1, 40),
      tostring(want)), function()
      assert.equal(want, match(pattern, name, vars))
    end)
  end

  it("a pattern of MAX_PATTERN_BYTES still matches; a claim that makes it longer matches nothing", function()
    local p = ("a"):rep(grants.MAX_PATTERN_BYTES)
    assert.is_true(match(p, p))
    assert.is_false(match("{x}", ("b"):rep(grants.MAX_PATTERN_BYTES + 1),
      { x = ("b"):rep(grants.MAX_PATTERN_BYTES + 1) }))
    -- the pattern's own text counts: 1000 bytes and a claim of 30 is over
    local long = ("a"):rep(1000) .. "/{x}"
    assert.is_true(match(long, ("a"):rep(1000) .. "/" .. ("b"):rep(20), { x = ("b"):rep(20) }))
    assert.is_false(match(long, ("a"):rep(1000) .. "/" .. ("b"):rep(30), { x = ("b"):rep(30) }))
  end)

  -- Generous bounds: only a backtracking blow-up (seconds to hours) fails.
  local function quick(pattern, name, want)
    local t0 = os.clock()
    assert.equal(want, match(pattern, name))
    local spent = os.clock() - t0
    assert(spent < 2, ("%s took %.2f s"):format(pattern, spent))
  end

  it("adversarial names finish fast (** over 4000 segments)", function()
    quick("**/**/**/b", ("a/"):rep(4000), false)
    quick("**/**/**/b", ("a/"):rep(4000) .. "b", true)
    quick("**/a/**/a/**/a/**/b", ("a/"):rep(4000) .. "c", false)
    quick(("**/a/"):rep(100) .. "b", ("a/"):rep(4000) .. "c", false)
  end)

  it("adversarial names finish fast (* within a long segment)", function()
    quick("*a*a*a*a*a*a*a*a*b", ("a"):rep(100000), false)
    quick("*a*a*a*a*a*a*a*a*b*", ("a"):rep(100000), false)
    quick(("*a"):rep(400) .. "*b*", ("a"):rep(20000), false)
    quick(("**/*a*a*a*b/"):rep(50) .. "**", ("aaaa/"):rep(4000), false)
  end)
end)

describe("flosse.grants lists", function()
  it("any(): the first MAX_PATTERNS patterns count, the rest are ignored", function()
    local list = {}
    for i = 1, grants.MAX_PATTERNS do list[i] = "ch" .. i end
    assert.is_true(grants.any(list, "ch" .. grants.MAX_PATTERNS))
    list[#list + 1] = "late"
    assert.is_false(grants.any(list, "late"))
  end)

  it("any(): what is not a list, or not a pattern, matches nothing", function()
    assert.is_false(grants.any("news", "news"))
    assert.is_false(grants.any(nil, "news"))
    assert.is_false(grants.any({ 1, true, {}, "u/{", "news" }, "u/{"))
    assert.is_true(grants.any({ 1, true, {}, "u/{", "news" }, "news"))
    assert.is_false(grants.any({ "**" }, 42))
  end)

  it("check_list(): the load-time check of settings' lists", function()
    assert.is_true(grants.check_list({ "news", "user/{id}/*", "**" }, "subscribe"))
    local ok, err = grants.check_list({ "news", "user/{id" }, "subscribe")
    assert.is_nil(ok)
    assert.matches("subscribe%[2%]", err)
    assert.is_nil((grants.check_list("news", "publish")))
    assert.is_nil((grants.check_list({ 42 }, "publish")))
    assert.is_nil((grants.check_list({ news = true }, "publish")))
    local long = {}
    for i = 1, grants.MAX_PATTERNS + 1 do long[i] = "x" end
    assert.matches("more than", select(2, grants.check_list(long, "publish")))
    assert.matches("longer than", select(2, grants.check_list({ ("a"):rep(grants.MAX_PATTERN_BYTES + 1) }, "p")))
  end)
end)

-- A request as the dispatcher makes it: route = the path() entry.
local function request_for(user, view, params)
  local req = request_mod.new({ method = "GET", url = "/", headers = {} })
  req.user = user
  req.route = { route = "x/", view = view }
  if params then req.params = params end
  return req
end

describe("user:may_subscribe / user:may_publish", function()
  local SECRET = "grants-unit-secret"

  local function jwt_user(claims, opts)
    opts = opts or {}
    local cls = auth.JWTAuthentication { secret = SECRET, algorithms = { "HS256" }, leeway = opts.leeway }
    local tok = e2e.jwt_mint("HS256", {}, claims, SECRET)
    local req = request_mod.new({ method = "GET", url = "/", headers = { authorization = "Bearer " .. tok } })
    return auth.authenticate({ cls }, req)
  end

  it("a JWT user's flosse claim, {sub} from its claims (42 is 42)", function()
    local u = jwt_user { sub = 42, exp = os.time() + 60,
                         flosse = { subscribe = { "news", "user/{sub}/*" }, publish = { "user/{sub}/out" } } }
    assert.is_true(u:may_subscribe("news"))
    assert.is_true(u:may_subscribe("user/42/inbox"))
    assert.is_false(u:may_subscribe("user/43/inbox"))
    assert.is_false(u:may_subscribe("user/42/inbox/x"))
    assert.is_true(u:may_publish("user/42/out"))
    assert.is_false(u:may_publish("news"))
    assert.same({ "news", "user/{sub}/*" }, u.subscribe)
    assert.is_true(grants.carries(u))
  end)

  it("a JWT sub of \"*\" matches only *", function()
    local u = jwt_user { sub = "*", flosse = { subscribe = { "user/{sub}/inbox" } } }
    assert.is_true(u:may_subscribe("user/*/inbox"))
    assert.is_false(u:may_subscribe("user/42/inbox"))
  end)

  it("a JWT with a flosse claim of no list restricts the user to nothing; without one, no grants", function()
    for _, g in ipairs { {}, "news", true } do
      local u = jwt_user { sub = "a", flosse = g }
      assert.is_true(grants.carries(u))
      assert.is_false(u:may_subscribe("news"))
    end
    local u = jwt_user { sub = "a", flosse = { subscribe = "news", publish = { "news" } } }
    assert.is_false(u:may_subscribe("news")) -- a string is not a list
    assert.is_true(u:may_publish("news"))
    local plain = jwt_user { sub = "a" }
    assert.is_false(grants.carries(plain))
    assert.is_false(plain:may_subscribe("news")) -- no grant, no right
    assert.is_false(plain:may_publish("news"))
  end)

  it("a JWT's malformed patterns never raise", function()
    local u = jwt_user { sub = "a", flosse = { subscribe = { "u/{", 42, { "x" }, "}", "ok" } } }
    assert.is_false(u:may_subscribe("u/{"))
    assert.is_true(u:may_subscribe("ok"))
  end)

  it("a JWT user's expires_at is exp + leeway", function()
    local exp = os.time() + 60
    assert.equal(exp + 7, jwt_user({ sub = "a", exp = exp }, { leeway = 7 }).expires_at)
    assert.equal(exp, jwt_user({ sub = "a", exp = exp }).expires_at)
  end)

  local function token_user(user)
    local cls = auth.TokenAuthentication { tokens = { tok = user } }
    return auth.authenticate({ cls }, request_mod.new({ method = "GET", url = "/?token=tok", headers = {} }))
  end

  it("a token-table user's fields, {id} and {username}", function()
    local u = token_user { id = 7, username = "bob", subscribe = { "user/{id}/*", "name/{username}" },
                           publish = { "room/**" } }
    assert.is_true(u:may_subscribe("user/7/inbox"))
    assert.is_false(u:may_subscribe("user/8/inbox"))
    assert.is_true(u:may_subscribe("name/bob"))
    assert.is_true(u:may_publish("room/a/b"))
    assert.is_false(u:may_publish("user/7/inbox"))
    assert.is_false(u:may_subscribe(""))
    assert.is_false(u:may_subscribe(nil))
    assert.is_false(u:may_subscribe(7))
  end)

  it("a token-table user without grants may nothing; a string user too", function()
    local u = token_user { username = "carol" }
    assert.is_false(grants.carries(u))
    assert.is_false(u:may_subscribe("news"))
    assert.is_false(u:may_publish("news"))
    local s = token_user("dave")
    assert.is_false(s:may_subscribe("news"))
  end)

  it("the copy per request keeps its grants, and a view changing them changes no other request", function()
    local conf = { username = "bob", subscribe = { "news" } }
    local u = token_user(conf)
    u.subscribe[1] = "other"
    assert.is_true(token_user(conf):may_subscribe("news"))
  end)

  it("a user with a metatable of its own gets the methods as fields", function()
    local mt = { __index = { kind = "custom" } }
    local u = token_user(setmetatable({ username = "eve", subscribe = { "e/*" } }, mt))
    assert.equal("custom", u.kind)
    assert.is_true(u:may_subscribe("e/1"))
    assert.is_false(u:may_publish("e/1"))
  end)

  it("anonymous may nothing, even with lists", function()
    local a = auth.anonymous()
    assert.is_false(a:may_subscribe("news"))
    assert.is_false(a:may_publish("news"))
    local anon = auth.authenticate({}, request_mod.new({ method = "GET", url = "/", headers = {} }))
    assert.is_false(anon:may_subscribe("news"))
    local fake = token_user { username = "x", is_authenticated = false, subscribe = { "**" } }
    assert.is_false(fake:may_subscribe("news"))
  end)

  it("a malformed token-table grant fails at load, naming the user and the list (not the token)", function()
    local ok, err = pcall(auth.TokenAuthentication, { tokens = { ["secret-token"] = {
      username = "bob", subscribe = { "user/{id" } } } })
    assert.is_false(ok)
    assert.matches('user "bob": subscribe%[1%]', err)
    assert.is_nil(err:find("secret-token", 1, true))
    assert.is_false((pcall(auth.TokenAuthentication, { tokens = { t = { publish = "news" } } })))
    assert.is_true((pcall(auth.TokenAuthentication, { tokens = { t = { publish = { "news/**" } } } })))
  end)
end)

describe("permissions.CanSubscribe / CanPublish", function()
  local user = setmetatable({ username = "bob", id = 7, is_authenticated = true,
                              subscribe = { "user/{id}/*" }, publish = { "fixed", "room/*" } }, auth.User)
  local CanSubscribe, CanPublish = permissions.CanSubscribe, permissions.CanPublish

  it("have their names and the default message", function()
    assert.equal("flosse.CanSubscribe", CanSubscribe.__name)
    assert.equal("flosse.CanPublish", CanPublish.__name)
    assert.equal(permissions.DEFAULT_MESSAGE, CanSubscribe.message)
  end)

  it("check the route's name parameter", function()
    local relay = flosse.relay_view { permission_classes = { CanSubscribe } }
    assert.is_true(permissions.check({ CanSubscribe }, request_for(user, relay, { name = "user/7/inbox" })))
    local ok, msg = permissions.check({ CanSubscribe }, request_for(user, relay, { name = "user/8/inbox" }))
    assert.is_false(ok)
    assert.equal(permissions.DEFAULT_MESSAGE, msg)
    local pub = flosse.publish_view { permission_classes = { CanPublish } }
    assert.is_true(permissions.check({ CanPublish }, request_for(user, pub, { name = "room/1" })))
    assert.is_false(permissions.check({ CanPublish }, request_for(user, pub, { name = "room/1/x" })))
  end)

  it("check the view's fixed channel (first: it is the one the view serves)", function()
    local relay = flosse.relay_view { channel = "user/7/box", permission_classes = { CanSubscribe } }
    assert.equal("user/7/box", relay.channel)
    assert.is_true(permissions.check({ CanSubscribe }, request_for(user, relay)))
    assert.is_true(permissions.check({ CanSubscribe }, request_for(user, relay, { name = "nope" })))
    local other = flosse.relay_view { channel = "user/8/box", permission_classes = { CanSubscribe } }
    assert.is_false(permissions.check({ CanSubscribe }, request_for(user, other, { name = "user/7/x" })))
    local pub = flosse.publish_view { channel = "fixed", permission_classes = { CanPublish } }
    assert.equal("fixed", pub.channel)
    assert.is_true(permissions.check({ CanPublish }, request_for(user, pub)))
    local pub2 = flosse.publish_view { channel = "room/1/2", permission_classes = { CanPublish } }
    assert.is_false(permissions.check({ CanPublish }, request_for(user, pub2)))
  end)

  it("no channel, no user, no grants: refused", function()
    local plain = flosse.view(function() return "" end)
    assert.is_false(permissions.check({ CanSubscribe }, request_for(user, plain)))
    assert.is_false(permissions.check({ CanSubscribe }, request_for(user, function() end)))
    local relay = flosse.relay_view { permission_classes = { CanSubscribe } }
    assert.is_false(permissions.check({ CanSubscribe }, request_for(auth.anonymous(), relay, { name = "x" })))
    assert.is_false(permissions.check({ CanSubscribe }, request_for(nil, relay, { name = "x" })))
    local nogrants = setmetatable({ username = "n", is_authenticated = true }, auth.User)
    assert.is_false(permissions.check({ CanPublish }, request_for(nogrants, relay, { name = "x" })))
  end)
end)

describe("flosse.subscribe's grant rule", function()
  local user = setmetatable({ username = "bob", id = 7, is_authenticated = true, subscribe = { "ok/*" } },
    auth.User)

  -- Runs flosse.subscribe(names) in a coroutine serving a request of user;
  -- returns the error it raised (the refusal) as a string, or nil.
  local function refusal(u, names)
    local co = coroutine.create(function()
      current.bind(request_for(u, flosse.view(function() return "" end)))
      local ok, err = pcall(flosse.subscribe, names)
      if ok then return nil end
      return tostring(err)
    end)
    local _, err = coroutine.resume(co)
    return err
  end

  it("refuses a channel the user has no grant for, with the 403 of the permission classes", function()
    assert.equal("refused (403): " .. permissions.DEFAULT_MESSAGE, refusal(user, "news"))
    assert.equal("refused (403): " .. permissions.DEFAULT_MESSAGE, refusal(user, { "ok/1", "news" }))
    assert.equal("refused (403): " .. permissions.DEFAULT_MESSAGE, refusal(user, { "ok/1", 42 }))
  end)

  it("lets the allowed names through to the core (which, outside a server, is what fails)", function()
    local err = refusal(user, { "ok/1", "ok/2" })
    assert.is_nil((tostring(err):find("refused (403)", 1, true)))
  end)

  it("a user without grants is not checked here", function()
    local plain = setmetatable({ username = "p", is_authenticated = true }, auth.User)
    assert.is_nil((tostring(refusal(plain, "news")):find("refused (403)", 1, true)))
  end)
end)

describe("publish_view's safe default at the app's load", function()
  local tmp
  before_each(function() tmp = e2e.tempdir() end)
  after_each(function() e2e.remove_tree(tmp) end)

  local function load_urls(urls)
    e2e.write_file(tmp .. "/urls.lua", "local flosse = require 'flosse'\nlocal path = flosse.urls.path\n"
      .. "local AllowAny = flosse.permissions.AllowAny\nreturn { " .. urls .. " }\n")
    return app_mod.load(tmp)
  end

  it("refuses a publish_view without permission_classes, naming the file and the route", function()
    local app, err = load_urls('path("api/publish/<str:name>/", flosse.publish_view{})')
    assert.is_nil(app)
    assert.equal(tmp .. '/urls.lua: route "api/publish/<str:name>/": publish_view has no permission_classes'
      .. " (nil or {}; write permission_classes = { flosse.permissions.AllowAny } to make it public)", err)
  end)

  it("refuses a fixed channel's one, an empty list, and one inside include()", function()
    assert.matches('route "pub/"', select(2, load_urls('path("pub/", flosse.publish_view{ channel = "x" })')))
    assert.matches('route "pub/"', select(2, load_urls('path("pub/", flosse.publish_view{ permission_classes = {} })')))
    assert.matches('route "api/v1/pub/"', select(2, load_urls(
      'flosse.urls.include("api/", { flosse.urls.include("v1/", { path("pub/", flosse.publish_view{}) }) })')))
    assert.matches('route "b/"', select(2, load_urls(
      'path("a/", flosse.publish_view{ permission_classes = { AllowAny } }), { path("b/", flosse.publish_view()) }')))
  end)

  it("loads one with { AllowAny } or any class written out", function()
    assert.is_table((load_urls('path("pub/<str:name>/", flosse.publish_view{ permission_classes = { AllowAny } })')))
    assert.is_table((load_urls('path("pub/", flosse.publish_view{ channel = "x", '
      .. "permission_classes = { flosse.permissions.CanPublish } })")))
  end)
end)
