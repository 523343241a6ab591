-- auth.JWTAuthentication (issue 13) in-process: tokens minted by python3's
-- hmac and the openssl command line (spec/tools/jwt_mint.py), checked by
-- flosse.core's libcrypto binding and flosse.auth.
local auth = require "flosse.auth"
local core = require "flosse.core"
local request = require "flosse.request"
local e2e = require "e2e"

local mint = e2e.jwt_mint
local SECRET = "s3cret-for-the-specs"
local NOW = os.time()

local function req(url, headers)
  return request.new { method = "GET", url = url or "/", headers = headers or {} }
end

local function bearer(tok) return req("/", { authorization = "Bearer " .. tok }) end

local function claims(extra)
  local c = { sub = "alice", exp = NOW + 600 }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

describe("flosse.auth.JWTAuthentication", function()
  local keys
  setup(function() keys = e2e.jwt_keys() end)
  teardown(function() if keys then os.execute("rm -rf '" .. keys.dir .. "'") end end)

  local function hs(opts)
    opts = opts or {}
    opts.secret = opts.secret or SECRET
    opts.algorithms = opts.algorithms or { "HS256" }
    return auth.JWTAuthentication(opts)
  end

  -- Every refusal is the same: nil from authenticate, a reason from check.
  local function refused(cls, tok, why_pattern)
    assert.is_nil(cls:authenticate(bearer(tok)))
    local c, why = cls:check(tok)
    assert.is_nil(c)
    if why_pattern then assert.matches(why_pattern, why) end
  end

  describe("valid tokens", function()
    for _, alg in ipairs { "HS256", "HS384", "HS512" } do
      it(alg .. " with a secret", function()
        local cls = hs { algorithms = { alg } }
        local user = cls:authenticate(bearer(mint(alg, {}, claims { name = "Alice" }, SECRET)))
        assert.equal("alice", user.id)
        assert.equal("alice", user.username)
        assert.is_true(user.is_authenticated)
        assert.is_false(user.is_staff)
        assert.equal("Alice", user.claims.name)
        assert.equal(NOW + 600, user.expires_at)
      end)
    end

    it("RS256 with a public key file", function()
      local cls = auth.JWTAuthentication { public_key = keys.rsa_pub, algorithms = { "RS256" } }
      local user = cls:authenticate(bearer(mint("RS256", {}, claims(), keys.rsa)))
      assert.equal("alice", user.id)
    end)

    it("ES256 with a public key file (raw r||s signature)", function()
      local cls = auth.JWTAuthentication { public_key = keys.ec_pub, algorithms = { "ES256" } }
      local user = cls:authenticate(bearer(mint("ES256", {}, claims(), keys.ec)))
      assert.equal("alice", user.id)
    end)

    it("a numeric sub becomes a string id; is_staff from an is_staff = true claim", function()
      local user = hs():authenticate(bearer(mint("HS256", {}, { sub = 42, is_staff = true }, SECRET)))
      assert.equal("42", user.id)
      assert.is_true(user.is_staff)
      assert.is_nil(user.expires_at)
      local u2 = hs():authenticate(bearer(mint("HS256", {}, { sub = "b", is_staff = "yes" }, SECRET)))
      assert.is_false(u2.is_staff)
    end)

    it("from the cookie and from the query parameter, with their names configurable", function()
      local tok = mint("HS256", {}, claims(), SECRET)
      local cls = hs()
      assert.equal("alice", cls:authenticate(req("/", { cookie = "a=b; flosse_token=" .. tok })).id)
      assert.equal("alice", cls:authenticate(req("/?token=" .. tok)).id)
      local named = hs { cookie = "jwt", query = "access_token", header = false }
      assert.equal("alice", named:authenticate(req("/", { cookie = "jwt=" .. tok })).id)
      assert.equal("alice", named:authenticate(req("/?access_token=" .. tok)).id)
      assert.is_nil(named:authenticate(bearer(tok)))
      assert.is_nil(named:authenticate(req("/?token=" .. tok)))
    end)

    it("an invalid bearer header does not hide a valid cookie", function()
      local tok = mint("HS256", {}, claims(), SECRET)
      local r = req("/", { authorization = "Bearer x.y.z", cookie = "flosse_token=" .. tok })
      assert.equal("alice", hs():authenticate(r).id)
    end)

    it("through auth.authenticate and a view's permission (IsAuthenticated, IsAdminUser)", function()
      local permissions = require "flosse.permissions"
      local r = bearer(mint("HS256", {}, claims { is_staff = true }, SECRET))
      r.user = auth.authenticate({ hs() }, r)
      assert.is_true(permissions.IsAuthenticated:new():has_permission(r))
      assert.is_true(permissions.IsAdminUser:new():has_permission(r))
      local anon = bearer("garbage")
      anon.user = auth.authenticate({ hs() }, anon)
      assert.is_false(anon.user.is_authenticated)
      assert.is_false(permissions.IsAuthenticated:new():has_permission(anon))
    end)
  end)

  describe("time claims", function()
    it("refuses an expired token, takes it within leeway", function()
      local tok = mint("HS256", {}, { sub = "a", exp = NOW - 30 }, SECRET)
      refused(hs(), tok, "expired")
      assert.equal("a", hs { leeway = 60 }:authenticate(bearer(tok)).id)
      refused(hs { leeway = 10 }, tok, "expired")
    end)

    it("refuses exp == now (exp is the first instant it is invalid)", function()
      local tok = mint("HS256", {}, { sub = "a", exp = NOW }, SECRET)
      assert.is_nil(hs():check(tok, NOW))
      assert.equal("a", (select(2, hs():check(tok, NOW - 1))))
    end)

    it("refuses a token not yet valid (nbf) or issued in the future (iat), takes them within leeway", function()
      local nbf = mint("HS256", {}, { sub = "a", nbf = NOW + 120 }, SECRET)
      refused(hs(), nbf, "nbf")
      assert.equal("a", hs { leeway = 300 }:authenticate(bearer(nbf)).id)
      local iat = mint("HS256", {}, { sub = "a", iat = NOW + 120 }, SECRET)
      refused(hs(), iat, "iat")
      assert.equal("a", hs { leeway = 300 }:authenticate(bearer(iat)).id)
      local past = mint("HS256", {}, { sub = "a", iat = NOW - 5, nbf = NOW - 5 }, SECRET)
      assert.equal("a", hs():authenticate(bearer(past)).id)
    end)

    it("refuses time claims that are not numbers", function()
      refused(hs(), mint("HS256", {}, { sub = "a", exp = tostring(NOW + 600) }, SECRET), "expired")
      refused(hs(), mint("HS256", {}, { sub = "a", nbf = "0" }, SECRET), "nbf")
    end)
  end)

  describe("issuer and audience", function()
    local cls
    before_each(function() cls = hs { issuer = "https://issuer.example", audience = "flosse" } end)

    it("takes the right iss and aud (string or list)", function()
      assert.equal("alice", cls:authenticate(bearer(mint("HS256", {},
        claims { iss = "https://issuer.example", aud = "flosse" }, SECRET))).id)
      assert.equal("alice", cls:authenticate(bearer(mint("HS256", {},
        claims { iss = "https://issuer.example", aud = { "other", "flosse" } }, SECRET))).id)
    end)

    it("refuses a wrong or missing issuer", function()
      refused(cls, mint("HS256", {}, claims { iss = "https://evil.example", aud = "flosse" }, SECRET), "issuer")
      refused(cls, mint("HS256", {}, claims { aud = "flosse" }, SECRET), "issuer")
    end)

    it("refuses a wrong or missing audience (string and list)", function()
      local iss = "https://issuer.example"
      refused(cls, mint("HS256", {}, claims { iss = iss, aud = "other" }, SECRET), "audience")
      refused(cls, mint("HS256", {}, claims { iss = iss, aud = { "other", "flosse2" } }, SECRET), "audience")
      refused(cls, mint("HS256", {}, claims { iss = iss }, SECRET), "audience")
    end)

    it("refuses a token with an aud where no audience is configured", function()
      refused(hs(), mint("HS256", {}, claims { aud = "flosse" }, SECRET), "audience")
    end)
  end)

  describe("signatures and algorithms", function()
    it("refuses a wrong secret and a wrong public key", function()
      refused(hs(), mint("HS256", {}, claims(), "another secret"), "signature")
      local rs = auth.JWTAuthentication { public_key = keys.rsa_pub, algorithms = { "RS256" } }
      refused(rs, mint("RS256", {}, claims(), keys.rsa2), "signature")
    end)

    it("refuses alg none, with and without a signature, and in any case", function()
      refused(hs(), mint("none", { alg = "none" }, claims()), "not allowed")
      refused(hs(), mint("HS256", { alg = "none" }, claims(), SECRET), "not allowed")
      refused(hs(), mint("none", { alg = "NONE" }, claims()), "not allowed")
      refused(hs(), mint("none", { typ = "JWT" }, claims()), "not allowed")  -- no alg
      refused(hs(), mint("none", { alg = "HS256" }, claims()), "signature")  -- empty signature
    end)

    it("refuses an algorithm not configured", function()
      refused(hs(), mint("HS512", {}, claims(), SECRET), "not allowed")
      local es = auth.JWTAuthentication { public_key = keys.ec_pub, algorithms = { "ES256" } }
      refused(es, mint("RS256", {}, claims(), keys.rsa), "not allowed")
    end)

    it("refuses algorithm confusion: HS256 keyed with the RSA public key's PEM", function()
      local rs = auth.JWTAuthentication { public_key = keys.rsa_pub, algorithms = { "RS256" } }
      refused(rs, mint("HS256", {}, claims(), "@" .. keys.rsa_pub), "not allowed")
      -- and the C check refuses the pairing even if asked directly
      local k = assert(core.jwt_key(assert(io.open(keys.rsa_pub)):read("a")))
      local _, _, input, sig = core.jwt_decode(mint("HS256", {}, claims(), "@" .. keys.rsa_pub))
      local ok, why = core.jwt_verify("HS256", k, input, sig)
      assert.is_nil(ok)
      assert.matches("secret", why)
      assert.is_nil((core.jwt_verify("RS256", "a secret", input, sig)))
    end)

    it("refuses a header with crit", function()
      refused(hs(), mint("HS256", { crit = { "exp" }, exp = 1 }, claims(), SECRET), "crit")
    end)

    it("refuses a tampered payload and a tampered header", function()
      local tok = mint("HS256", {}, claims(), SECRET)
      local h, p, s = tok:match("^([^.]+)%.([^.]+)%.([^.]+)$")
      local evil = mint("HS256", {}, claims { sub = "admin", is_staff = true }, "x")
      local _, ep = evil:match("^([^.]+)%.([^.]+)")
      refused(hs(), h .. "." .. ep .. "." .. s, "signature")
      local eh = mint("HS256", { alg = "HS256", kid = "x" }, claims(), "x"):match("^[^.]+")
      refused(hs(), eh .. "." .. p .. "." .. s, "signature")
      -- one changed character of the signature
      local flipped = s:sub(1, 1) == "A" and "B" or "A"
      refused(hs(), h .. "." .. p .. "." .. flipped .. s:sub(2), "signature")
    end)
  end)

  describe("garbage", function()
    local good
    before_each(function() good = mint("HS256", {}, claims(), SECRET) end)

    it("refuses what is not three parts", function()
      refused(hs(), "abc", "three parts")
      refused(hs(), "a.b", "three parts")
      refused(hs(), good .. ".x", "three parts")
      refused(hs(), "..", "base64url")
    end)

    it("refuses bad base64url", function()
      local h, p, s = good:match("^([^.]+)%.([^.]+)%.([^.]+)$")
      refused(hs(), h .. "=." .. p .. "." .. s, "base64url")
      refused(hs(), h .. "." .. p .. "." .. s .. "=", "base64url")
      refused(hs(), h .. "." .. p .. "+/." .. s, "base64url")
      refused(hs(), "a" .. h .. "." .. p .. "." .. s, "")
    end)

    it("refuses a header or claims that are not a JSON object", function()
      refused(hs(), mint("HS256", '["HS256"]', claims(), SECRET), "header")
      refused(hs(), mint("HS256", "not json", claims(), SECRET), "header")
      refused(hs(), mint("HS256", {}, '["alice"]', SECRET), "claims")
      refused(hs(), mint("HS256", {}, '"alice"', SECRET), "claims")
      refused(hs(), mint("HS256", {}, "{", SECRET), "claims")
      refused(hs(), mint("HS256", {}, '{"sub": NaN}', SECRET), "claims")
    end)

    it("refuses a token without a usable sub", function()
      refused(hs(), mint("HS256", {}, { exp = NOW + 60 }, SECRET), "sub")
      refused(hs(), mint("HS256", {}, { sub = 1.5 }, SECRET), "sub")
      refused(hs(), mint("HS256", {}, { sub = "" }, SECRET), "sub")
    end)

    it("base64url in C: every length, the URL alphabet only", function()
      local h, p, _, sig = core.jwt_decode("eyJ9.e30._-8")
      assert.equal('{"}', h)   -- bytes, whatever they hold (the JSON check is Lua's)
      assert.equal("{}", p)
      assert.equal("\xff\xef", sig)
      assert.equal("", select(4, core.jwt_decode("e30.e30.")))
      assert.is_nil(core.jwt_decode("e30.e30.A"))   -- 4n+1 characters
      assert.is_nil(core.jwt_decode("e30.e3 0.AA"))
    end)
  end)

  describe("options, checked when the settings load", function()
    local function fails(opts, pattern)
      local ok, err = pcall(auth.JWTAuthentication, opts)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end

    it("needs a secret or a public_key, and not both", function()
      fails({ algorithms = { "HS256" } }, "secret .* or public_key")
      fails({ secret = "", algorithms = { "HS256" } }, "secret must be")
      fails({ secret = "x", public_key = keys.rsa_pub, algorithms = { "HS256" } }, "not both")
    end)

    it("needs known algorithms, matching the key's kind", function()
      fails({ secret = "x" }, "algorithms must be")
      fails({ secret = "x", algorithms = {} }, "algorithms must be")
      fails({ secret = "x", algorithms = { "none" } }, "algorithms%[1%]: none is not")
      fails({ secret = "x", algorithms = { "HS256", "RS256" } }, "algorithms%[2%]: RS256 needs public_key")
      fails({ public_key = keys.rsa_pub, algorithms = { "HS256" } }, "algorithms%[1%]: HS256 needs secret")
      fails({ public_key = keys.rsa_pub, algorithms = { "ES256" } }, "ES256 does not take the RSA key")
      fails({ public_key = keys.ec_pub, algorithms = { "RS256" } }, "RS256 does not take the EC P%-256 key")
    end)

    it("needs a readable PEM public key", function()
      fails({ public_key = keys.dir .. "/missing.pem", algorithms = { "RS256" } }, "public_key: .*missing.pem")
      fails({ public_key = keys.rsa, algorithms = { "RS256" } }, "not a PEM public key")
    end)

    it("checks issuer, audience, leeway and the sources", function()
      fails({ secret = "x", algorithms = { "HS256" }, issuer = 1 }, "issuer must be")
      fails({ secret = "x", algorithms = { "HS256" }, audience = { "a" } }, "audience must be")
      fails({ secret = "x", algorithms = { "HS256" }, leeway = -1 }, "leeway must be")
      fails({ secret = "x", algorithms = { "HS256" }, leeway = "5" }, "leeway must be")
      fails({ secret = "x", algorithms = { "HS256" }, cookie = "" }, "JWTAuthentication: cookie must be")
      fails({ secret = "x", algorithms = { "HS256" }, header = 1 }, "JWTAuthentication: header must be")
    end)

    it("the key is a flosse.jwt_key userdata, parsed once", function()
      local cls = auth.JWTAuthentication { public_key = keys.ec_pub, algorithms = { "ES256" } }
      assert.equal("userdata", type(cls.key))
      assert.equal("flosse.jwt_key (EC P-256)", tostring(cls.key))
    end)
  end)
end)
