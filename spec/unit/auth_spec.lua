local auth = require "flosse.auth"
local request = require "flosse.request"

local function req(url, headers)
  return request.new { method = "GET", url = url or "/", headers = headers or {} }
end

describe("flosse.auth", function()
  describe("anonymous()", function()
    it("is not authenticated and is a new table each call", function()
      local a, b = auth.anonymous(), auth.anonymous()
      assert.are.same({ username = "", is_authenticated = false, is_staff = false }, a)
      assert.are_not.equal(a, b)
    end)
  end)

  describe("TokenAuthentication", function()
    local alice = { username = "alice" }
    local tokens = { ["tok-alice"] = alice, ["tok-bob"] = "bob",
      ["tok-admin"] = { username = "root", is_staff = true } }
    local ta = auth.TokenAuthentication { tokens = tokens }

    it("reads an Authorization: Bearer header", function()
      local u = ta:authenticate(req("/", { authorization = "Bearer tok-alice" }))
      assert.are.same({ username = "alice", is_authenticated = true, is_staff = false }, u)
    end)

    it("takes the scheme case-insensitively and trims spaces", function()
      for _, h in ipairs { "bearer tok-alice", "BEARER tok-alice", "Bearer  tok-alice",
                           "  Bearer\t tok-alice  " } do
        local u = ta:authenticate(req("/", { authorization = h }))
        assert.is_table(u, h)
        assert.are.equal("alice", u.username, h)
      end
    end)

    it("ignores other schemes and malformed bearer values", function()
      for _, h in ipairs { "Basic tok-alice", "Token tok-alice", "Bearer", "Bearer ",
                           "tok-alice", "Bearertok-alice", "Bearer tok-alice extra",
                           "Bearer tok-alice, Bearer tok-bob" } do
        assert.is_nil(ta:authenticate(req("/", { authorization = h })), h)
      end
    end)

    it("reads the cookie", function()
      local u = ta:authenticate(req("/", { cookie = "a=1; flosse_token=tok-bob; c=3" }))
      assert.are.same({ username = "bob", is_authenticated = true, is_staff = false }, u)
    end)

    it("reads the query parameter", function()
      local u = ta:authenticate(req("/sse/?x=1&token=tok-admin"))
      assert.are.same({ username = "root", is_authenticated = true, is_staff = true }, u)
    end)

    it("returns nil for an unknown token or no credential", function()
      assert.is_nil(ta:authenticate(req("/", { authorization = "Bearer nope" })))
      assert.is_nil(ta:authenticate(req("/?token=nope")))
      assert.is_nil(ta:authenticate(req("/", { cookie = "flosse_token=nope" })))
      assert.is_nil(ta:authenticate(req("/")))
      assert.is_nil(ta:authenticate(req("/?token=")))
    end)

    it("tries the header, then the cookie, then the query", function()
      local u = ta:authenticate(req("/?token=tok-admin",
        { authorization = "Bearer tok-alice", cookie = "flosse_token=tok-bob" }))
      assert.are.equal("alice", u.username)
      u = ta:authenticate(req("/?token=tok-admin", { cookie = "flosse_token=tok-bob" }))
      assert.are.equal("bob", u.username)
      -- an unknown credential does not hide a known one from a later source
      u = ta:authenticate(req("/?token=tok-admin", { authorization = "Bearer nope" }))
      assert.are.equal("root", u.username)
    end)

    it("can disable sources and rename the cookie and the query parameter", function()
      local only_query = auth.TokenAuthentication { tokens = tokens, header = false,
        cookie = false, query = "access_token" }
      assert.is_nil(only_query:authenticate(req("/", { authorization = "Bearer tok-alice" })))
      assert.is_nil(only_query:authenticate(req("/", { cookie = "flosse_token=tok-alice" })))
      assert.is_nil(only_query:authenticate(req("/?token=tok-alice")))
      assert.are.equal("alice",
        only_query:authenticate(req("/?access_token=tok-alice")).username)
      local cookie_only = auth.TokenAuthentication { tokens = tokens, header = false,
        cookie = "sid", query = false }
      assert.are.equal("bob", cookie_only:authenticate(req("/", { cookie = "sid=tok-bob" })).username)
      assert.is_nil(cookie_only:authenticate(req("/?token=tok-bob")))
    end)

    it("accepts another keyword for the header", function()
      local drf = auth.TokenAuthentication { tokens = tokens, keyword = "Token" }
      assert.are.equal("alice", drf:authenticate(req("/", { authorization = "token tok-alice" })).username)
      assert.is_nil(drf:authenticate(req("/", { authorization = "Bearer tok-alice" })))
    end)

    it("accepts a function as the token source", function()
      local seen = {}
      local fa = auth.TokenAuthentication { tokens = function(token, r)
        seen[#seen + 1] = { token, r }
        if token == "good" then return { username = "fn-user", is_staff = true } end
        return nil
      end }
      local r = req("/", { authorization = "Bearer good" })
      local u = fa:authenticate(r)
      assert.are.same({ username = "fn-user", is_authenticated = true, is_staff = true }, u)
      assert.are.equal("good", seen[1][1])
      assert.are.equal(r, seen[1][2])
      assert.is_nil(fa:authenticate(req("/?token=bad")))
      local sf = auth.TokenAuthentication { tokens = function() return "s" end }
      assert.are.same({ username = "s", is_authenticated = true, is_staff = false },
        sf:authenticate(req("/?token=x")))
    end)

    it("calls the token function once per distinct credential", function()
      local fn = spy.new(function() return nil end)
      local fa = auth.TokenAuthentication { tokens = fn }
      fa:authenticate(req("/?token=same", { authorization = "Bearer same",
        cookie = "flosse_token=same" }))
      assert.spy(fn).was.called(1)
    end)

    it("lets the token function yield", function()
      local fa = auth.TokenAuthentication { tokens = function(token)
        local ok = coroutine.yield("lookup " .. token)
        return ok and "waited" or nil
      end }
      local co = coroutine.create(function() return fa:authenticate(req("/?token=t")) end)
      local _, asked = coroutine.resume(co)
      assert.are.equal("lookup t", asked)
      local _, u = coroutine.resume(co, true)
      assert.are.equal("waited", u.username)
    end)

    it("keeps is_authenticated = false when the user says so", function()
      local t = auth.TokenAuthentication { tokens = { x = { username = "x", is_authenticated = false } } }
      assert.is_false(t:authenticate(req("/?token=x")).is_authenticated)
    end)

    it("returns a copy: mutating it does not change the configured user", function()
      local cfg = { username = "carol", groups = { "a" } }
      local t = auth.TokenAuthentication { tokens = { c = cfg } }
      local u1 = t:authenticate(req("/?token=c"))
      assert.are_not.equal(cfg, u1)
      u1.username = "mallory"
      u1.is_staff = true
      u1.groups[1] = "admin"
      assert.are.same({ username = "carol", groups = { "a" } }, cfg)
      local u2 = t:authenticate(req("/?token=c"))
      assert.are.equal("carol", u2.username)
      assert.is_false(u2.is_staff)
      assert.are.equal("a", u2.groups[1])
      assert.are_not.equal(u1, u2)
    end)

    it("rejects bad options", function()
      assert.has_error(function() auth.TokenAuthentication() end)
      assert.has_error(function() auth.TokenAuthentication {} end)
      assert.has_error(function() auth.TokenAuthentication { tokens = "x" } end)
      assert.has_error(function() auth.TokenAuthentication { tokens = {}, header = "yes" } end)
      assert.has_error(function() auth.TokenAuthentication { tokens = {}, cookie = 1 } end)
      assert.has_error(function() auth.TokenAuthentication { tokens = {}, query = "" } end)
    end)

    it("raises when the token source gives something that is not a user", function()
      local t = auth.TokenAuthentication { tokens = { x = 42 } }
      assert.has_error(function() t:authenticate(req("/?token=x")) end)
    end)
  end)

  describe("authenticate()", function()
    local r = req("/?token=t")

    it("returns an anonymous user with no classes or no match", function()
      assert.are.same(auth.anonymous(), auth.authenticate({}, r))
      assert.are.same(auth.anonymous(), auth.authenticate(nil, r))
      local none = auth.TokenAuthentication { tokens = {} }
      assert.are.same(auth.anonymous(), auth.authenticate({ none }, r))
    end)

    it("lets the first class that returns a user win", function()
      local first = { authenticate = spy.new(function() return nil end) }
      local second = auth.TokenAuthentication { tokens = { t = "second" } }
      local third = { authenticate = spy.new(function() return { username = "third" } end) }
      local u = auth.authenticate({ first, second, third }, r)
      assert.are.equal("second", u.username)
      assert.is_true(u.is_authenticated)
      assert.spy(first.authenticate).was.called(1)
      assert.spy(third.authenticate).was_not.called()
    end)

    it("accepts plain functions and normalizes string users", function()
      local u = auth.authenticate({ function() return nil end, function(rq)
        return rq.query.token == "t" and "fn" or nil
      end }, r)
      assert.are.same({ username = "fn", is_authenticated = true, is_staff = false }, u)
    end)

    it("rejects bad classes", function()
      assert.has_error(function() auth.authenticate({ 42 }, r) end)
      assert.has_error(function() auth.authenticate({ {} }, r) end)
      assert.has_error(function() auth.authenticate("x", r) end)
    end)
  end)
end)
