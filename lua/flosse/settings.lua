--- flosse.settings: what settings.lua may hold, and its check.
-- `flosse check`, `flosse serve` and a hot reload all load the app through
-- flosse.app, which runs this check, so a setting is judged the same way
-- everywhere: a wrong type, or a key nobody reads (a typo), is one line
-- naming the file, the line of the key, and (for a typo) the nearest key.
local settings = {}

local function nonneg_number(v) return type(v) == "number" and v >= 0 and v == v and v < math.huge end
local function nonneg_integer(v) return math.type(v) ~= nil and v >= 0 and math.tointeger(v) ~= nil end
local function pos_integer(v) return math.type(v) ~= nil and v >= 1 and math.tointeger(v) ~= nil end

-- Each known key: a test of its value and what it must be. Keys whose
-- check is richer live in their own modules (cors, trusted_proxies, redis,
-- tls, authentication_classes: flosse.app runs those) and only need to be known.
local KEYS = {
  debug = { function(v) return type(v) == "boolean" end, "true or false" },
  host = { function(v) return type(v) == "string" and v ~= "" end, "an address or host name (a string)" },
  port = { function(v) return math.tointeger(v) ~= nil and v >= 0 and v <= 65535 end, "a port from 0 to 65535" },
  retry = { nonneg_integer, "a non-negative integer (milliseconds)" },
  heartbeat = { nonneg_number, "a non-negative number of seconds" },
  header_timeout = { nonneg_number, "a non-negative number of seconds" },
  write_timeout = { nonneg_number, "a non-negative number of seconds" },
  grace = { nonneg_number, "a non-negative number of seconds" },
  max_connections = { nonneg_integer, "a non-negative integer" },
  max_header_bytes = { nonneg_integer, "a non-negative integer (bytes)" },
  max_url_bytes = { nonneg_integer, "a non-negative integer (bytes)" },
  max_body_bytes = { nonneg_integer, "a non-negative integer (bytes)" },
  high_water = { nonneg_integer, "a non-negative integer (bytes)" },
  low_water = { nonneg_integer, "a non-negative integer (bytes)" },
  lua_memory = { nonneg_number, "a non-negative number (MiB)" },
  instruction_budget = { nonneg_integer, "a non-negative integer" },
  log_level = { function(v) return v == "error" or v == "warn" or v == "info" or v == "debug" end,
                "error, warn, info or debug" },
  log_format = { function(v) return v == "text" or v == "json" end, "text or json" },
  workers = { pos_integer, "a positive integer" },
  channel_history = { nonneg_integer, "a non-negative integer (events)" },
  channel_history_seconds = { nonneg_number, "a non-negative number of seconds" },
  channel_backlog = { nonneg_integer, "a non-negative integer (events)" },
  max_channels = { pos_integer, "a positive integer" },
  max_streams_per_ip = { pos_integer, "a positive integer (streams)" },
  max_streams_per_user = { pos_integer, "a positive integer (streams)" },
  max_concurrent_streams = { function(v) return pos_integer(v) and v <= 1000000 end,
                             "an integer from 1 to 1000000 (HTTP/2 streams per connection)" },
  authentication_classes = { function(v) return type(v) == "table" end, "a list of authentication classes" },
  cors = true,
  trusted_proxies = true,
  redis = true,
  tls = true,
}
settings.KEYS = KEYS

--- known(key) -> true when settings.lua may set key.
function settings.known(key) return KEYS[key] ~= nil end

-- Levenshtein distance, bounded: keys are short, and only names are compared.
local function distance(a, b)
  if #a > 64 or #b > 64 then return math.huge end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

--- nearest(key) -> the known key closest to key, if close enough to be a typo.
function settings.nearest(key)
  local best, best_d
  for k in pairs(KEYS) do
    local d = distance(key:lower(), k)
    if not best_d or d < best_d or (d == best_d and k < best) then best, best_d = k, d end
  end
  if best_d and best_d <= math.max(2, #key // 3) then return best end
  return nil
end

--- line_of(text, key) -> the line of settings.lua (its source, text) where
-- key is set ("key =" at a line's start or after "{" or ","), or nil.
function settings.line_of(text, key)
  if not text then return nil end
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local s = line:find(key, 1, true)
    while s do
      local before, after = line:sub(1, s - 1), line:sub(s + #key)
      if (before:match("^%s*$") or before:match("[{,;]%s*$")) and after:match("^%s*=") then return n end
      s = line:find(key, s + 1, true)
    end
  end
  return nil
end

--- check(user, path, text) -> true | nil, message
-- user: the table settings.lua returned; path: the file's path (for the
-- message); text: its source (for the line). Checks every key it holds.
function settings.check(user, path, text)
  local keys = {}
  for k in pairs(user) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v = user[k]
    local at = type(k) == "string" and settings.line_of(text, k)
    local where = at and ("%s:%d"):format(path, at) or path
    if type(k) ~= "string" then
      return nil, ("%s: settings are name = value pairs, not a list (found %s)"):format(where, tostring(v))
    end
    local spec = KEYS[k]
    if spec == nil then
      local near = settings.nearest(k)
      return nil, ("%s: unknown setting %q%s"):format(where, k,
        near and (" (did you mean %q?)"):format(near) or " (README.md, Settings, lists them)")
    end
    if type(spec) == "table" and not spec[1](v) then
      local shown = type(v) == "string" and ("%q"):format(v) or tostring(v)
      return nil, ("%s: %s must be %s, not %s"):format(where, k, spec[2], shown)
    end
  end
  return true
end

return settings
