local urls = require "flosse.urls"

local path, resolve = urls.path, urls.resolve

local function view() end

describe("flosse.urls", function()
  describe("path()", function()
    it("returns a route entry with route, view and name", function()
      local e = path("sse/orders/<int:order_id>/", view, "order")
      assert.are.equal("sse/orders/<int:order_id>/", e.route)
      assert.are.equal(view, e.view)
      assert.are.equal("order", e.name)
    end)

    it("compiles the route once, at path() time", function()
      local e = path("a/<int:x>/", view)
      assert.are.equal("^/a/([0-9]+)/$", e._pattern)
      assert.are.same({ { name = "x", converter = "int" } }, e._params)
    end)

    it("accepts callable tables and flosse view objects", function()
      local callable = setmetatable({}, { __call = function() end })
      assert.are.equal(callable, path("x/", callable).view)
      local v = { is_flosse_view = true, kind = "stream" }
      assert.are.equal(v, path("y/", v).view)
    end)

    it("rejects a view that is not callable", function()
      assert.has_error(function() path("x/", {}) end)
      assert.has_error(function() path("x/", "view") end)
      assert.has_error(function() path("x/", nil) end)
      assert.has_error(function() path("x/", { is_flosse_view = "yes" }) end)
    end)

    it("rejects a route that is not a string and a name that is not a string", function()
      assert.has_error(function() path(nil, view) end)
      assert.has_error(function() path(42, view) end)
      assert.has_error(function() path("x/", view, 1) end)
    end)

    it("rejects an unknown converter, naming the route", function()
      local ok, err = pcall(path, "a/<float:x>/", view)
      assert.is_false(ok)
      assert.matches("a/<float:x>/", err, 1, true)
      assert.matches("float", err, 1, true)
    end)

    it("rejects malformed routes, naming the route", function()
      for _, route in ipairs {
        "a/<int:x/", "a/int:x>/", "a/<>/", "a/<int:>/", "a/<:x>/", "a/<int:x y>/",
        "a/<1x>/", "a/<int:x>/<str:x>/", "a/<<x>>/", "/a/", "a/<int:x-y>/",
      } do
        local ok, err = pcall(path, route, view)
        assert.is_false(ok, route)
        assert.matches(route, err, 1, true)
      end
    end)

    it("reports the error at the caller's line", function()
      local ok, err = pcall(function() path("a/<nope:x>/", view) end)
      assert.is_false(ok)
      assert.matches("urls_spec.lua:%d+:", err)
    end)
  end)

  describe("resolve()", function()
    it("matches a literal route", function()
      local e = path("sse/progress/", view)
      local got, params = resolve({ e }, "/sse/progress/")
      assert.are.equal(e, got)
      assert.are.same({}, params)
    end)

    it("returns nil when nothing matches", function()
      assert.is_nil(resolve({ path("sse/progress/", view) }, "/sse/other/"))
      assert.is_nil(resolve({}, "/"))
    end)

    it("never matches partially: the whole path must match", function()
      local patterns = { path("sse/progress/", view) }
      assert.is_nil(resolve(patterns, "/sse/progress/extra"))
      assert.is_nil(resolve(patterns, "/sse/progress"))
      assert.is_nil(resolve(patterns, "/x/sse/progress/"))
      assert.is_nil(resolve(patterns, "sse/progress/"))
      assert.is_nil(resolve(patterns, "//sse/progress/"))
    end)

    it("matches the empty route on / only", function()
      local e = path("", view)
      assert.are.equal(e, (resolve({ e }, "/")))
      assert.is_nil(resolve({ e }, "/x"))
      assert.is_nil(resolve({ e }, "//"))
      assert.is_nil(resolve({ e }, ""))
    end)

    it("converts <int:x> to a Lua integer", function()
      local _, params = resolve({ path("sse/orders/<int:order_id>/", view) }, "/sse/orders/42/")
      assert.are.equal(42, params.order_id)
      assert.are.equal("integer", math.type(params.order_id))
      local _, p2 = resolve({ path("n/<int:n>", view) }, "/n/007")
      assert.are.equal(7, p2.n)
    end)

    it("refuses what <int:x> must not match", function()
      local patterns = { path("n/<int:n>/", view) }
      assert.is_nil(resolve(patterns, "/n/-1/"))
      assert.is_nil(resolve(patterns, "/n/1.5/"))
      assert.is_nil(resolve(patterns, "/n/0x10/"))
      assert.is_nil(resolve(patterns, "/n//"))
      assert.is_nil(resolve(patterns, "/n/ 1/"))
      -- too large for a Lua integer: no match rather than a float or a wrapped value
      assert.is_nil(resolve(patterns, "/n/99999999999999999999999/"))
      assert.is_nil(resolve(patterns, "/n/9223372036854775808/"))
      assert.are.equal(math.maxinteger, select(2, resolve(patterns, "/n/9223372036854775807/")).n)
    end)

    it("treats <name> as <str:name>: non-empty, no slash", function()
      local patterns = { path("u/<name>/", view) }
      local _, params = resolve(patterns, "/u/jo hn.doe/")
      assert.are.equal("jo hn.doe", params.name)
      assert.are.equal("string", type(params.name))
      assert.is_nil(resolve(patterns, "/u//"))
      assert.is_nil(resolve(patterns, "/u/a/b/"))
      local _, p2 = resolve({ path("s/<str:s>", view) }, "/s/x")
      assert.are.equal("x", p2.s)
    end)

    it("matches slugs", function()
      local patterns = { path("blog/<slug:slug>/", view) }
      local _, params = resolve(patterns, "/blog/Hello-World_2/")
      assert.are.equal("Hello-World_2", params.slug)
      assert.is_nil(resolve(patterns, "/blog/hello world/"))
      assert.is_nil(resolve(patterns, "/blog/hello.world/"))
      assert.is_nil(resolve(patterns, "/blog//"))
    end)

    it("matches lowercase canonical uuids only", function()
      local patterns = { path("o/<uuid:id>/", view) }
      local id = "123e4567-e89b-12d3-a456-426614174000"
      local _, params = resolve(patterns, "/o/" .. id .. "/")
      assert.are.equal(id, params.id)
      assert.is_nil(resolve(patterns, "/o/" .. id:upper() .. "/"))
      assert.is_nil(resolve(patterns, "/o/123E4567-e89b-12d3-a456-426614174000/"))
      assert.is_nil(resolve(patterns, "/o/123e4567e89b12d3a456426614174000/"))
      assert.is_nil(resolve(patterns, "/o/123e4567-e89b-12d3-a456-42661417400/"))
      assert.is_nil(resolve(patterns, "/o/123e4567-e89b-12d3-a456-4266141740000/"))
      assert.is_nil(resolve(patterns, "/o/g23e4567-e89b-12d3-a456-426614174000/"))
    end)

    it("matches <path:p> across slashes, but not empty", function()
      local patterns = { path("files/<path:p>", view) }
      local _, params = resolve(patterns, "/files/a/b/c.txt")
      assert.are.equal("a/b/c.txt", params.p)
      assert.is_nil(resolve(patterns, "/files/"))
    end)

    it("matches <path:p> followed by a literal suffix", function()
      local patterns = { path("files/<path:p>.txt", view) }
      local _, params = resolve(patterns, "/files/a/b.c/d.txt")
      assert.are.equal("a/b.c/d", params.p)
      assert.is_nil(resolve(patterns, "/files/a/b.txtx"))
      assert.is_nil(resolve(patterns, "/files/.txt"))
      local _, p2 = resolve({ path("<path:p>/edit/", view) }, "/x/edit/y/edit/")
      assert.are.equal("x/edit/y", p2.p)
    end)

    it("matches several parameters and converts each", function()
      local patterns = { path("u/<int:uid>/posts/<slug:post>/<path:rest>", view) }
      local _, params = resolve(patterns, "/u/3/posts/my-post/a/b")
      assert.are.same({ uid = 3, post = "my-post", rest = "a/b" }, params)
    end)

    it("treats dots, dashes and other Lua magic characters in literals literally", function()
      local patterns = { path("v1.0/a-b/x+y/(z)/[q]/^$*?/index.html", view) }
      assert.is_not_nil(resolve(patterns, "/v1.0/a-b/x+y/(z)/[q]/^$*?/index.html"))
      assert.is_nil(resolve(patterns, "/v1x0/a-b/x+y/(z)/[q]/^$*?/index.html"))
      assert.is_nil(resolve(patterns, "/v1.0/a-b/xxy/(z)/[q]/^$*?/index.html"))
      assert.is_nil(resolve(patterns, "/v1.0/a-b/x+y/(z)/[q]/^$*?/indexahtml"))
      local dot = { path("feed.json", view) }
      assert.is_not_nil(resolve(dot, "/feed.json"))
      assert.is_nil(resolve(dot, "/feedxjson"))
    end)

    it("treats percent signs in literals literally", function()
      local patterns = { path("100%/<int:n>%d", view) }
      local _, params = resolve(patterns, "/100%/5%d")
      assert.are.equal(5, params.n)
      assert.is_nil(resolve(patterns, "/100/5%d"))
      assert.is_nil(resolve(patterns, "/100%/55"))
      assert.is_nil(resolve({ path("a%20b", view) }, "/a b"))
      assert.is_not_nil(resolve({ path("a%20b", view) }, "/a%20b"))
    end)

    it("tries the patterns in order and returns the first match", function()
      local v1, v2, v3 = function() end, function() end, function() end
      local patterns = {
        path("items/new/", v1, "new"),
        path("items/<str:key>/", v2, "by_key"),
        path("items/<int:id>/", v3, "by_id"),
      }
      local e, params = resolve(patterns, "/items/new/")
      assert.are.equal(v1, e.view)
      assert.are.same({}, params)
      e, params = resolve(patterns, "/items/42/")
      assert.are.equal("by_key", e.name)
      assert.are.equal("42", params.key)
      -- the same patterns in the other order
      local reordered = { patterns[3], patterns[2], patterns[1] }
      e, params = resolve(reordered, "/items/42/")
      assert.are.equal("by_id", e.name)
      assert.are.equal(42, params.id)
    end)

    it("gives each match its own params table", function()
      local patterns = { path("n/<int:n>/", view) }
      local _, a = resolve(patterns, "/n/1/")
      local _, b = resolve(patterns, "/n/2/")
      assert.are_not.equal(a, b)
      assert.are.equal(1, a.n)
      assert.are.equal(2, b.n)
    end)

    it("rejects bad arguments", function()
      assert.has_error(function() resolve(nil, "/") end)
      assert.has_error(function() resolve({}, nil) end)
      assert.has_error(function() resolve({ 42 }, "/") end)
    end)
  end)

  describe("include()", function()
    it("prepends the prefix to every route", function()
      local inner = { path("a/", view, "a"), path("b/<int:n>/", view, "b") }
      local out = urls.include("api/v1/", inner)
      assert.are.equal(2, #out)
      assert.are.equal("api/v1/a/", out[1].route)
      assert.are.equal("api/v1/b/<int:n>/", out[2].route)
      assert.are.equal("b", out[2].name)
      local e, params = resolve(out, "/api/v1/b/9/")
      assert.are.equal(out[2], e)
      assert.are.equal(9, params.n)
      assert.is_nil(resolve(out, "/a/"))
    end)

    it("accepts parameters in the prefix and nests inside a urlpatterns list", function()
      local patterns = {
        path("", view, "home"),
        urls.include("u/<int:uid>/", { path("posts/<slug:s>/", view, "post") }),
      }
      local e, params = resolve(patterns, "/u/5/posts/x-y/")
      assert.are.equal("post", e.name)
      assert.are.same({ uid = 5, s = "x-y" }, params)
    end)

    it("rejects a parameter repeated between the prefix and the route", function()
      assert.has_error(function()
        urls.include("u/<int:id>/", { path("p/<int:id>/", view) })
      end)
    end)
  end)

  describe("reverse()", function()
    local patterns = {
      path("", view, "home"),
      path("sse/orders/<int:order_id>/", view, "order"),
      path("files/<path:p>", view, "file"),
    }

    it("builds the path of a named route", function()
      assert.are.equal("/", urls.reverse(patterns, "home"))
      assert.are.equal("/sse/orders/42/", urls.reverse(patterns, "order", { order_id = 42 }))
      assert.are.equal("/files/a/b", urls.reverse(patterns, "file", { p = "a/b" }))
    end)

    it("fails on an unknown name or parameters that do not match", function()
      local p, err = urls.reverse(patterns, "nope")
      assert.is_nil(p)
      assert.matches("nope", err)
      assert.is_nil(urls.reverse(patterns, "order", { order_id = "abc" }))
      assert.is_nil(urls.reverse(patterns, "order", {}))
    end)
  end)
end)
