-- flosse.health_view's options, as the app's urls.lua meets them when it
-- loads (spec/e2e/health_spec.lua has the answers on the wire).
local e2e = require "spec.helper"
local flosse = require "flosse"
local app_mod = require "flosse.app"
local permissions = require "flosse.permissions"

describe("flosse.health_view options", function()
  it("is an ordinary GET and HEAD view, open by default (AllowAny)", function()
    local view = flosse.health_view{}
    assert.equal("plain", view.kind)
    assert.same({ GET = true, HEAD = true }, view.methods)
    assert.same({ permissions.AllowAny }, view.permission_classes)
    assert.equal("plain", flosse.health_view().kind)
  end)

  it("takes permission_classes, name and cors", function()
    local view = flosse.health_view{ permission_classes = { permissions.IsAuthenticated }, name = "hz",
                                     cors = { origins = "*" } }
    assert.same({ permissions.IsAuthenticated }, view.permission_classes)
    assert.equal("hz", view.name)
    assert.is_table(view.cors)
    assert.same({}, flosse.health_view{ permission_classes = {} }.permission_classes)
  end)

  describe("a bad option fails the app's load, naming urls.lua's line and health_view", function()
    local tmp
    before_each(function() tmp = e2e.tempdir() end)
    after_each(function() e2e.remove_tree(tmp) end)

    local function load_urls(urls)
      e2e.write_file(tmp .. "/urls.lua", "local flosse = require 'flosse'\nlocal path = flosse.urls.path\n"
        .. "return { " .. urls .. " }\n")
      return app_mod.load(tmp)
    end

    it("an unknown option", function()
      local app, err = load_urls('path("healthz", flosse.health_view{ methods = { "POST" } })')
      assert.is_nil(app)
      assert.equal(tmp .. '/urls.lua:3: health_view: unknown option "methods" (permission_classes, name, cors)', err)
    end)

    it("a permission class without has_permission, a bad cors", function()
      local _, err = load_urls('path("healthz", flosse.health_view{ permission_classes = { {} } })')
      assert.equal(tmp .. "/urls.lua:3: health_view: permission_classes[1] has no has_permission method", err)
      _, err = load_urls('path("healthz", flosse.health_view{ cors = 42 })')
      assert.matches("^" .. tmp:gsub("%p", "%%%0") .. "/urls.lua:3: health_view: cors", err)
    end)
  end)
end)
