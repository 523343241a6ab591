-- spec/e2e/helper/jwt.lua: JSON Web Tokens for the specs, minted by tools
-- that are not flosse's (spec/tools/jwt_mint.py: python3's hmac, the openssl
-- command line), and the key pairs they sign with.

local M = {}

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>/dev/null"))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "failed: " .. cmd)
  return out
end

--- e2e.jwt_mint(sign, header, claims, key) -> token
-- sign: HS256/384/512 (key: the secret, or "@FILE"), RS256/ES256 (key: a
-- private PEM file) or "none". header and claims: a JSON text, or a table
-- (encoded with lua-cjson); a header table without alg gets alg = sign.
function M.jwt_mint(sign, header, claims, key)
  local cjson = require "cjson"
  if type(header) == "table" then
    if header.alg == nil then header.alg = sign end
    header = cjson.encode(header)
  end
  if type(claims) == "table" then claims = cjson.encode(claims) end
  local cmd = table.concat({ "python3 spec/tools/jwt_mint.py", sh_quote(sign), sh_quote(header),
    sh_quote(claims), sh_quote(key or "") }, " ")
  return (run(cmd):gsub("%s+$", ""))
end

--- e2e.jwt_keys() -> { dir, rsa, rsa_pub, ec, ec_pub, rsa2, rsa2_pub }
-- Fresh key pairs in a temporary folder (openssl genpkey): RSA 2048, EC
-- P-256, and a second RSA pair (the "wrong key"). Paths of PEM files.
function M.jwt_keys()
  local dir = (run("mktemp -d"):gsub("%s+$", ""))
  local k = { dir = dir }
  for name, alg in pairs { rsa = "-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
                           rsa2 = "-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
                           ec = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" } do
    k[name] = dir .. "/" .. name .. ".pem"
    k[name .. "_pub"] = dir .. "/" .. name .. ".pub.pem"
    run(("openssl genpkey %s -out %s && openssl pkey -in %s -pubout -out %s"):format(
      alg, sh_quote(k[name]), sh_quote(k[name]), sh_quote(k[name .. "_pub"])))
  end
  return k
end

return M
