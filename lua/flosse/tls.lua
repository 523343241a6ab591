--- flosse.tls: the tls setting (settings.lua's `tls = { cert =, key = }`)
-- and the --tls-cert/--tls-key flags, checked and turned into the two paths
-- core.listen loads (docs/tls.md). settings.lua's paths are relative to the
-- app folder, the flags' to the current folder, as usual for each.
local tls = {}

local KEYS = { cert = "the certificate chain (PEM)", key = "its private key (PEM)" }

-- path as found from dir (nil: the current folder).
local function resolve(path, dir)
  if path:sub(1, 1) == "/" or not dir then return path end
  return dir .. "/" .. path
end

-- A file that cannot be opened is said now, naming the setting, rather
-- than by OpenSSL once the server binds.
local function readable(path)
  local f, err = io.open(path, "r")
  if not f then return nil, err end
  f:close()
  return true
end

--- normalize(value, dir, where) -> { cert =, key = } | nil (no TLS) | nil, err
-- value: the setting (nil, or a table with the strings cert and key, both
-- required); dir: the folder relative paths are read from; where names the
-- setting in messages ("app/settings.lua:3"). The paths returned are
-- relative to the current folder (or absolute), as core.listen takes them.
function tls.normalize(value, dir, where)
  if value == nil then return nil end
  if type(value) ~= "table" then
    return nil, ("%s: tls must be a table { cert = FILE, key = FILE }, not %s"):format(where, type(value))
  end
  local names = {}
  for k in pairs(value) do names[#names + 1] = tostring(k) end
  table.sort(names)
  for _, k in ipairs(names) do
    if not KEYS[k] then
      return nil, ("%s: tls has an unknown key %q (it takes cert and key)"):format(where, k)
    end
  end
  local out = {}
  for _, k in ipairs { "cert", "key" } do
    local v = value[k]
    if v == nil then
      return nil, ("%s: tls needs both cert and key (%s is missing: %s)"):format(where, k, KEYS[k])
    end
    if type(v) ~= "string" or v == "" then
      return nil, ("%s: tls.%s must be a file's path (a string), not %s"):format(where, k,
        type(v) == "string" and '""' or tostring(v))
    end
    local path = resolve(v, dir)
    local ok, err = readable(path)
    if not ok then return nil, ("%s: tls.%s: cannot read %s"):format(where, k, err) end
    out[k] = path
  end
  return out
end

--- from_flags(cert, key) -> { cert =, key = } | nil (neither given) | nil, err
-- The flags' values, relative to the current folder; one without the other
-- is refused.
function tls.from_flags(cert, key)
  if cert == nil and key == nil then return nil end
  if cert == nil then return nil, "--tls-key needs --tls-cert (the certificate chain, PEM) too" end
  if key == nil then return nil, "--tls-cert needs --tls-key (its private key, PEM) too" end
  for _, f in ipairs { { "--tls-cert", cert }, { "--tls-key", key } } do
    local ok, err = readable(f[2])
    if not ok then return nil, ("%s: cannot read %s"):format(f[1], err) end
  end
  return { cert = cert, key = key }
end

return tls
