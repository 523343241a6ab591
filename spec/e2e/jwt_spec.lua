-- End to end: auth.JWTAuthentication (issue 13) on the spec/fixtures/jwt
-- app, with tokens minted by python3 and openssl (spec/tools/jwt_mint.py).
local e2e = require "e2e"
local permissions = require "flosse.permissions"

local SECRET = "e2e-secret-" .. tostring(os.time())
local ISS, AUD = "https://issuer.example", "flosse"
local mint = e2e.jwt_mint
local keys = e2e.jwt_keys()

local function claims(extra)
  local c = { sub = "alice", iss = ISS, aud = AUD, exp = os.time() + 600, name = "Alice" }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

local function me(port, target, headers)
  local c, head = e2e.open(port, target, headers)
  assert.equal(200, head.status)
  local ev = assert(c:read_event())
  c:close()
  assert.equal("me", ev.event)
  return e2e.json_decode(ev.data)
end

describe("#e2e auth.JWTAuthentication on the jwt fixture", function()
  local server = e2e.serve(setup, teardown, "spec/fixtures/jwt",
    { env = { FLOSSE_JWT_SECRET = SECRET, FLOSSE_JWT_RSA_PUB = keys.rsa_pub } })

  teardown(function() os.execute("rm -rf '" .. keys.dir .. "'") end)

  it("a view sees user.id, user.claims and user.expires_at (HS256 bearer)", function()
    local c = claims()
    local got = me(server.port, "/me/", { "Authorization: Bearer " .. mint("HS256", {}, c, SECRET) })
    assert.equal("alice", got.id)
    assert.equal("alice", got.username)
    assert.equal("Alice", got.claims.name)
    assert.equal(AUD, got.claims.aud)
    assert.equal(c.exp + 5, got.expires_at) -- exp + the class's leeway
    assert.is_false(got.is_staff)
  end)

  it("HS512, and RS256 from the cookie and from the query parameter", function()
    assert.equal("alice", me(server.port, "/me/",
      { "Authorization: Bearer " .. mint("HS512", {}, claims(), SECRET) }).id)
    local rs = mint("RS256", {}, { sub = 7 }, keys.rsa)
    assert.equal("7", me(server.port, "/me/", { "Cookie: theme=dark; jwt=" .. rs }).id)
    assert.equal("7", me(server.port, "/me/?access_token=" .. rs).id)
  end)

  it("IsAdminUser takes a token whose is_staff claim is true, and only that", function()
    local c, head = e2e.open(server.port, "/admin/",
      { "Authorization: Bearer " .. mint("HS256", {}, claims { is_staff = true }, SECRET) })
    assert.equal(200, head.status)
    assert.equal("admin", assert(c:read_event()).event)
    c:close()
    local resp = e2e.get(server.port, "/admin/",
      { "Authorization: Bearer " .. mint("HS256", {}, claims(), SECRET) })
    assert.equal(403, resp.status)
    assert.equal(permissions.IsAdminUser.message, resp.body)
  end)

  it("every invalid token gets the anonymous 403, byte for byte, and the reason only in the debug log", function()
    local now = os.time()
    local good = mint("HS256", {}, claims(), SECRET)
    local h, p, s = good:match("^([^.]+)%.([^.]+)%.([^.]+)$")
    local evil_p = mint("HS256", {}, claims { sub = "root" }, "x"):match("^[^.]+%.([^.]+)")
    local cases = {
      expired = mint("HS256", {}, claims { exp = now - 60 }, SECRET),
      not_yet = mint("HS256", {}, claims { nbf = now + 600 }, SECRET),
      wrong_issuer = mint("HS256", {}, claims { iss = "https://evil.example" }, SECRET),
      wrong_audience = mint("HS256", {}, claims { aud = "other" }, SECRET),
      wrong_audience_list = mint("HS256", {}, claims { aud = { "a", "b" } }, SECRET),
      wrong_secret = mint("HS256", {}, claims(), "not the secret"),
      wrong_rsa_key = mint("RS256", {}, claims(), keys.rsa2),
      alg_none = mint("none", { alg = "none" }, claims()),
      alg_none_signed = mint("HS256", { alg = "none" }, claims(), SECRET),
      confusion = mint("HS256", {}, claims(), "@" .. keys.rsa_pub),
      es256_unconfigured = mint("ES256", {}, claims(), keys.ec),
      tampered_payload = h .. "." .. evil_p .. "." .. s,
      tampered_header = mint("HS256", { alg = "HS256", kid = "k" }, claims(), "x"):match("^[^.]+")
        .. "." .. p .. "." .. s,
      two_parts = h .. "." .. p,
      bad_base64 = h .. "." .. p .. "." .. s .. "=",
      array_claims = mint("HS256", {}, "[1,2]", SECRET),
    }
    local anonymous = e2e.get(server.port, "/me/")
    assert.equal(403, anonymous.status)
    assert.equal(permissions.IsAuthenticated.message, anonymous.body)
    for name, tok in pairs(cases) do
      for _, place in ipairs { { "/me/", { "Authorization: Bearer " .. tok } },
                               { "/me/?access_token=" .. tok },
                               { "/me/", { "Cookie: jwt=" .. tok } } } do
        local resp = e2e.get(server.port, place[1], place[2])
        assert.equal(403, resp.status, name)
        assert.equal(anonymous.body, resp.body, name)
        assert.equal(anonymous.headers["content-type"], resp.headers["content-type"], name)
        assert.equal(anonymous.headers["content-length"], resp.headers["content-length"], name)
      end
    end
    assert.is_truthy(server:log():find("JWTAuthentication: token refused: expired", 1, true))
    assert.is_truthy(server:log():find("JWTAuthentication: token refused: alg none is not allowed", 1, true))
  end)
end)

describe("#e2e auth.JWTAuthentication misconfigured", function()
  it("a missing public key file fails the settings with the option named", function()
    local code, out, err = e2e.run_serve("spec/fixtures/jwt", {},
      { env = { FLOSSE_JWT_SECRET = "x", FLOSSE_JWT_RSA_PUB = keys.dir .. "/nope.pem" } })
    assert.are_not.equal(0, code)
    assert.matches("JWTAuthentication: public_key: [^\n]*nope.pem", out .. err)
  end)
end)
