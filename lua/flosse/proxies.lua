--- flosse.proxies: the trusted_proxies setting, and the client a trusted
-- proxy names in its headers (X-Forwarded-For, or Forwarded: RFC 7239).
--
-- Only a connection whose peer is in trusted_proxies may say who the client
-- is; from any other peer the headers are ignored. Each proxy appends the
-- address it got its request from, so the list is walked from the right:
-- hops that are trusted proxies themselves are skipped, and the first one
-- that is not is the client (all trusted: the leftmost). A hop that is not
-- an IP address (garbage, "unknown", an obfuscated "_name") ends the walk
-- with no answer, and the peer stays the client: what is left of it was
-- written by someone not known to be trusted. Addresses are read by the
-- core (inet_pton); here they are only cut out of the headers, with plain
-- finds and [^x]+ runs, linear in the header's length.
local core = require "flosse.core"
local trim = require("flosse.request").trim

local find, sub, lower = string.find, string.sub, string.lower

local proxies = {}

--- Hops examined from the right, at most: a longer chain is cut there.
proxies.MAX_HOPS = 32
local MAX_ENTRIES = 1024

--- normalize(value, what) -> cidrs | nil (none trusted) | nil, err
-- value: nil or a list of addresses and CIDRs ("127.0.0.1", "10.0.0.0/8",
-- "::1", "fd00::/8"); what names it in errors ("settings.lua:
-- trusted_proxies"). cidrs is the core's list (core.cidr_list), with
-- :contains(addr).
function proxies.normalize(value, what)
  if value == nil then return nil end
  if type(value) ~= "table" then
    return nil, ("%s must be a list of addresses and CIDRs, got %s"):format(what, type(value))
  end
  local n = #value
  for k in pairs(value) do
    if math.type(k) ~= "integer" or k < 1 or k > n then
      return nil, ("%s must be a list of addresses and CIDRs (it has the key %s)"):format(what, tostring(k))
    end
  end
  if n > MAX_ENTRIES then return nil, ("%s: at most %d entries"):format(what, MAX_ENTRIES) end
  for i = 1, n do
    if type(value[i]) ~= "string" then
      return nil, ("%s[%d] must be a string (an address or a CIDR), got %s"):format(what, i, type(value[i]))
    end
  end
  if n == 0 then return nil end
  local list, bad = core.cidr_list(value)
  if not list then return nil, ("%s[%d]: %q is not an address or CIDR"):format(what, bad, value[bad]) end
  return list
end

-- The comma-separated items of s, rightmost first, at most MAX_HOPS,
-- each trimmed (possibly repeated headers, joined by the core with ", ").
-- Empty items are no hops (RFC 9110 5.6.1: a list's empty elements are
-- ignored).
local function items_from_right(s)
  local all = {}
  for item in s:gmatch("[^,]+") do all[#all + 1] = item end
  local hops = {}
  for i = #all, 1, -1 do
    local item = trim(all[i])
    if item ~= "" then
      hops[#hops + 1] = item
      if #hops == proxies.MAX_HOPS then break end
    end
  end
  return hops
end

--- forwarded_for(value) -> the address text of a Forwarded for= value, or
-- nil when it names none. A quoted value loses its quotes; "[v6]:port"
-- and "v4:port" lose the port and brackets. What is left is not checked
-- here (the core reads it).
function proxies.forwarded_for(value)
  if #value >= 2 and sub(value, 1, 1) == '"' and sub(value, -1) == '"' then value = sub(value, 2, -2) end
  if sub(value, 1, 1) == "[" then
    local close = find(value, "]", 2, true)
    if not close then return nil end
    return sub(value, 2, close - 1)
  end
  local colon = find(value, ":", 1, true)
  if colon and not find(value, ":", colon + 1, true) then return sub(value, 1, colon - 1) end
  return value
end

--- forwarded_hops(header) -> list, rightmost first (at most MAX_HOPS) | nil
-- The for= of each element of a Forwarded header (RFC 7239); an element
-- without one is false (its client is not known). nil when no element has
-- a for= (the header says nothing of clients).
function proxies.forwarded_hops(header)
  local hops, any = {}, false
  for i, element in ipairs(items_from_right(header)) do
    local hop = false
    for pair in element:gmatch("[^;]+") do
      local eq = find(pair, "=", 1, true)
      if eq and lower(trim(sub(pair, 1, eq - 1))) == "for" then
        hop = proxies.forwarded_for(trim(sub(pair, eq + 1))) or false
        any = true
        break
      end
    end
    hops[i] = hop
  end
  return any and hops or nil
end

--- x_forwarded_for_hops(header) -> list, rightmost first (at most MAX_HOPS)
-- The hops of an X-Forwarded-For header.
function proxies.x_forwarded_for_hops(header)
  return items_from_right(header)
end

--- pick(trusted, hops) -> the client address (canonical) | nil
-- Skips trusted hops from the right; the first untrusted one is the
-- client, if it is an address (else nil); all trusted: the leftmost.
function proxies.pick(trusted, hops)
  local last
  for i = 1, math.min(#hops, proxies.MAX_HOPS) do
    local addr = hops[i] and core.ip_address(hops[i])
    if not addr then return nil end
    if not trusted:contains(addr) then return addr end
    last = addr
  end
  return last
end

--- client_addr(trusted, peer, headers) -> address | nil (the peer stays)
-- headers: the request's (lowercase names). Forwarded wins over
-- X-Forwarded-For when it has a for= (both mean the same; Forwarded is
-- the standard one, and a proxy that writes it means it).
function proxies.client_addr(trusted, peer, headers)
  if not trusted or type(peer) ~= "string" or not trusted:contains(peer) then return nil end
  local fwd, xff = headers["forwarded"], headers["x-forwarded-for"]
  local hops = type(fwd) == "string" and proxies.forwarded_hops(fwd)
  if not hops then
    if type(xff) ~= "string" then return nil end
    hops = proxies.x_forwarded_for_hops(xff)
  end
  return proxies.pick(trusted, hops)
end

--- resolve(trusted, request): when the request came through a trusted
-- proxy, request.remote_addr becomes the client the proxy named,
-- request.peer_addr keeps the peer, and the request's log lines (its
-- access line) name the client. Runs before authentication.
function proxies.resolve(trusted, req)
  local peer = req.remote_addr
  local client = proxies.client_addr(trusted, peer, req.headers)
  if not client or client == peer then return end
  client = core.set_client_addr(client)
  if not client then return end
  req.peer_addr = peer
  req.remote_addr = client
end

return proxies
