-- flosse.cors: policies as written, and the headers they answer with.
local cors = require "flosse.cors"

describe("flosse.cors", function()
  it("normalize: nil and false pass through, defaults filled in", function()
    assert.is_nil(cors.normalize(nil, "cors"))
    assert.is_false(cors.normalize(false, "cors"))
    local p = assert(cors.normalize({ origins = { "https://App.example" } }, "cors"))
    assert.is_true(p.origins["https://app.example"])
    assert.is_false(p.credentials)
    assert.equal(600, p.max_age)
    assert.equal("Authorization, Content-Type, Last-Event-ID", p.allow_headers)
  end)

  it("normalize: a wrong type names the key", function()
    for value, message in pairs({
      [{ origins = "https://a.example" }] = "x.origins must be",
      [{ origins = { "a.example" } }] = "x.origins%[1%] must be an origin",
      [{ origins = { "https://a.example\r\nX: y" } }] = "x.origins%[1%] must be an origin",
      [{ origins = "*", credentials = 1 }] = "x.credentials must be a boolean",
      [{ origins = "*", max_age = 1.5 }] = "x.max_age must be",
      [{ origins = "*", headers = "Authorization" }] = "x.headers must be a list",
      [{ origins = "*", expose = { "a b" } }] = "x.expose%[1%] is not a header name",
      [{ origins = "*", origin = "*" }] = 'x: unknown key "origin"',
    }) do
      local p, err = cors.normalize(value, "x")
      assert.is_nil(p)
      assert.matches(message, err)
    end
  end)

  it("headers: Vary always, Access-Control-* for a listed origin only", function()
    local p = cors.normalize({ origins = { "https://a.example" }, credentials = true, expose = { "X-Id" } }, "x")
    assert.same({ Vary = "Origin" }, cors.headers(p, "https://b.example"))
    assert.same({ Vary = "Origin" }, cors.headers(p, nil))
    assert.same({
      Vary = "Accept, Origin",
      ["Access-Control-Allow-Origin"] = "https://a.example",
      ["Access-Control-Allow-Credentials"] = "true",
      ["Access-Control-Expose-Headers"] = "X-Id",
    }, cors.headers(p, "https://a.example", { Vary = "Accept" }))
    local star = cors.normalize({ origins = "*" }, "x")
    assert.equal("*", cors.headers(star, "https://b.example")["Access-Control-Allow-Origin"])
    local star_c = cors.normalize({ origins = "*", credentials = true }, "x")
    assert.equal("https://b.example", cors.headers(star_c, "https://b.example")["Access-Control-Allow-Origin"])
  end)

  it("preflight: only with Access-Control-Request-Method from a listed origin", function()
    local p = cors.normalize({ origins = { "https://a.example" }, max_age = 60, headers = {} }, "x")
    local function req(h) return { headers = h } end
    assert.is_nil(cors.preflight(p, req({ origin = "https://a.example" }), "GET"))
    assert.is_nil(cors.preflight(p, req({ origin = "https://b.example",
      ["access-control-request-method"] = "GET" }), "GET"))
    assert.same({
      Vary = "Origin",
      ["Access-Control-Allow-Origin"] = "https://a.example",
      ["Access-Control-Allow-Methods"] = "POST",
      ["Access-Control-Max-Age"] = "60",
    }, cors.preflight(p, req({ origin = "https://a.example", ["access-control-request-method"] = "POST" }), "POST"))
  end)

  it("policy_for: a view's policy, false, or the setting's", function()
    assert.equal("v", cors.policy_for("v", "s"))
    assert.equal("s", cors.policy_for(nil, "s"))
    assert.is_nil(cors.policy_for(false, "s"))
    assert.is_nil(cors.policy_for(nil, nil))
  end)
end)
