local permissions = require "flosse.permissions"

local BaseSSEPermission = permissions.BaseSSEPermission
local AllowAny = permissions.AllowAny
local IsAuthenticated = permissions.IsAuthenticated
local IsAdminUser = permissions.IsAdminUser
local check = permissions.check

local DEFAULT = "You do not have permission to perform this action."

local function req(user, headers)
  return { user = user, headers = headers or {} }
end

describe("flosse.permissions", function()
  describe("BaseSSEPermission", function()
    it("allows and carries the default message", function()
      local p = BaseSSEPermission:new()
      assert.is_true(p:has_permission(req()))
      assert.are.equal(DEFAULT, p.message)
      assert.are.equal(DEFAULT, BaseSSEPermission.message)
    end)

    it("extends into subclasses that inherit and can extend again", function()
      local A = BaseSSEPermission:extend { message = "A says no" }
      function A:has_permission() return false end
      local B = A:extend()
      local C = B:extend { message = "C says no" }
      assert.are.equal("A says no", B.message)
      assert.are.equal("C says no", C.message)
      assert.is_false(C:new():has_permission(req()))
      assert.are.equal(BaseSSEPermission.extend, C.extend)
      -- defining a method on a subclass does not touch its parent
      function B:has_permission() return true end
      assert.is_true(B:new():has_permission(req()))
      assert.is_false(A:new():has_permission(req()))
      assert.is_true(BaseSSEPermission:new():has_permission(req()))
    end)

    it("rejects extend() with something other than a table", function()
      assert.has_error(function() BaseSSEPermission:extend("x") end)
    end)

    it("copies the fields given to extend()", function()
      local fields = { message = "m" }
      local A = BaseSSEPermission:extend(fields)
      fields.message = "changed"
      assert.are.equal("m", A.message)
    end)

    it("gives instances a __name", function()
      assert.matches("^flosse%.SSEPermission", tostring(BaseSSEPermission:new()))
      assert.matches("^flosse%.IsAuthenticated", tostring(IsAuthenticated:new()))
    end)
  end)

  describe("built-in classes", function()
    local alice = { username = "alice", is_authenticated = true, is_staff = false }
    local admin = { username = "root", is_authenticated = true, is_staff = true }
    local anon = { username = "", is_authenticated = false, is_staff = false }

    it("AllowAny allows everyone", function()
      assert.is_true(AllowAny:new():has_permission(req()))
      assert.is_true(AllowAny:new():has_permission(req(anon)))
    end)

    it("IsAuthenticated needs an authenticated user", function()
      local p = IsAuthenticated:new()
      assert.is_true(p:has_permission(req(alice)))
      assert.is_false(p:has_permission(req(anon)))
      assert.is_false(p:has_permission(req(nil)))
    end)

    it("IsAdminUser needs a staff user", function()
      local p = IsAdminUser:new()
      assert.is_true(p:has_permission(req(admin)))
      assert.is_false(p:has_permission(req(alice)))
      assert.is_false(p:has_permission(req(nil)))
    end)
  end)

  describe("check()", function()
    it("allows with no classes", function()
      assert.are.same({ true }, { check({}, req()) })
      assert.are.same({ true }, { check(nil, req()) })
    end)

    it("returns false and the default message on failure", function()
      local ok, msg = check({ IsAuthenticated }, req(nil))
      assert.is_false(ok)
      assert.are.equal(DEFAULT, msg)
    end)

    it("allows when every class allows", function()
      local user = { is_authenticated = true, is_staff = true }
      assert.are.same({ true }, { check({ AllowAny, IsAuthenticated, IsAdminUser }, req(user)) })
    end)

    it("stops at the first failure and never calls later classes", function()
      local calls = {}
      local function make(name, result)
        local cls = BaseSSEPermission:extend { message = name .. " denied" }
        cls.has_permission = spy.new(function()
          calls[#calls + 1] = name
          return result
        end)
        return cls
      end
      local first, second, third = make("first", true), make("second", false), make("third", true)
      local new_spy = spy.on(third, "new")
      local ok, msg = check({ first, second, third }, req())
      assert.is_false(ok)
      assert.are.equal("second denied", msg)
      assert.are.same({ "first", "second" }, calls)
      assert.spy(first.has_permission).was.called(1)
      assert.spy(second.has_permission).was.called(1)
      assert.spy(third.has_permission).was_not.called()
      assert.spy(new_spy).was_not.called()
    end)

    it("passes the instance and the request to has_permission", function()
      local seen_self, seen_req
      local P = BaseSSEPermission:extend()
      function P:has_permission(request)
        seen_self, seen_req = self, request
        return true
      end
      local r = req()
      assert.is_true(check({ P }, r))
      assert.are.equal(P, getmetatable(seen_self))
      assert.are.equal(r, seen_req)
    end)

    it("makes a fresh instance per check", function()
      local P = BaseSSEPermission:extend()
      local instances = {}
      function P:has_permission()
        instances[#instances + 1] = self
        self.touched = true
        return true
      end
      check({ P }, req())
      check({ P }, req())
      assert.are.equal(2, #instances)
      assert.are_not.equal(instances[1], instances[2])
      assert.is_nil(rawget(P, "touched"))
    end)

    it("runs a custom API-key class reading a header", function()
      local HasAPIKey = BaseSSEPermission:extend()
      function HasAPIKey:has_permission(request)
        return request.headers["X-API-Key"] == "s3cret"
      end
      assert.is_true(check({ HasAPIKey }, req(nil, { ["X-API-Key"] = "s3cret" })))
      local ok, msg = check({ HasAPIKey }, req(nil, { ["X-API-Key"] = "wrong" }))
      assert.is_false(ok)
      assert.are.equal(DEFAULT, msg)
      assert.is_false((check({ HasAPIKey }, req(nil, {}))))
    end)

    it("runs a custom class with a real request's case-insensitive headers", function()
      local request = require "flosse.request"
      local HasAPIKey = BaseSSEPermission:extend()
      function HasAPIKey:has_permission(r) return r.headers["X-API-Key"] == "k" end
      local r = request.new { method = "GET", url = "/", headers = { ["x-api-key"] = "k" } }
      assert.is_true(check({ HasAPIKey }, r))
    end)

    it("returns a class's own message", function()
      local NeedsPlan = BaseSSEPermission:extend { message = "Upgrade your plan." }
      function NeedsPlan:has_permission(request) return request.user and request.user.plan == "pro" end
      local ok, msg = check({ AllowAny, NeedsPlan }, req({ plan = "free" }))
      assert.is_false(ok)
      assert.are.equal("Upgrade your plan.", msg)
      assert.is_true(check({ NeedsPlan }, req({ plan = "pro" })))
    end)

    it("returns a message set on the instance by has_permission", function()
      local P = BaseSSEPermission:extend()
      function P:has_permission()
        self.message = "quota exceeded"
        return false
      end
      assert.are.same({ false, "quota exceeded" }, { check({ P }, req()) })
      assert.are.equal(DEFAULT, P.message)
    end)

    it("accepts a plain table with has_permission as a class", function()
      local plain = { message = "plain no", has_permission = function() return nil end }
      assert.are.same({ false, "plain no" }, { check({ plain }, req()) })
      local nomsg = { has_permission = function() return false end }
      assert.are.same({ false, DEFAULT }, { check({ nomsg }, req()) })
    end)

    it("lets has_permission yield (it runs in the view's coroutine)", function()
      local Slow = BaseSSEPermission:extend()
      function Slow:has_permission()
        local answer = coroutine.yield("waiting")
        return answer == "yes"
      end
      local co = coroutine.create(function() return check({ Slow }, req()) end)
      local ok, v = coroutine.resume(co)
      assert.is_true(ok)
      assert.are.equal("waiting", v)
      local ok2, allowed = coroutine.resume(co, "yes")
      assert.is_true(ok2)
      assert.is_true(allowed)
    end)

    it("lets an error in has_permission propagate", function()
      local Boom = BaseSSEPermission:extend()
      function Boom:has_permission() error("boom") end
      assert.has_error(function() check({ Boom }, req()) end)
    end)

    it("rejects bad classes", function()
      assert.has_error(function() check({ 42 }, req()) end)
      assert.has_error(function() check({ {} }, req()) end)
      assert.has_error(function() check("AllowAny", req()) end)
    end)
  end)
end)
