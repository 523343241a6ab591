--- flosse.grants: channel grants, the patterns a user's subscribe and
-- publish lists hold, and the matching of a channel name against them.
--
-- A pattern is split on "/" into segments. A segment written as exactly
-- "**" matches zero or more whole segments of the name; anywhere else a run
-- of "*" matches any run of characters within one segment (possibly empty;
-- "a**b" is "a*b": "**" means something only as a whole segment). "{claim}"
-- is replaced by that claim's value taken literally: its "*", "{" and "/"
-- only match themselves (a "/" still lines up with a "/" of the name, so
-- "{sub}" of "a/b" matches "a/b"). A "}" outside braces, an unclosed "{" or
-- an empty "{}" makes a malformed pattern, which matches nothing.
--
-- Channel names come from clients and patterns may come from tokens, so a
-- match never backtracks more than once: the greedy wildcard algorithm with
-- a single backtrack point, for "**" over segments and for "*" within one,
-- costs at most O(#name x #pattern). What is processed is capped (below).
-- Nothing here raises on what a token carries: a bad pattern, list or claim
-- only matches nothing.

local grants = {}

--- Caps: patterns after the first MAX_PATTERNS of a list are ignored; a
-- pattern longer than MAX_PATTERN_BYTES, or one whose claims make it longer
-- once substituted, matches nothing.
grants.MAX_PATTERNS = 256
grants.MAX_PATTERN_BYTES = 1024

local DOUBLE = {} -- the "**" segment
local STAR = {}   -- a "*" token within a segment

-- Compiled patterns by text: a pattern is parsed once while it is in use
-- (weak values: the cache never grows with what clients send).
local cache = setmetatable({}, { __mode = "v" })
local MALFORMED = { malformed = true }

-- Parses a pattern's text into raw segments: DOUBLE, or a list of tokens
-- (a literal string, STAR, or { var = name }). nil when it is malformed.
local function parse(text)
  local segs, seg = {}, {}
  local seg_start = 1
  local i, n = 1, #text
  local function close_segment()
    -- exactly "**" written in the pattern, nothing else in the segment
    if text:sub(seg_start, i - 1) == "**" then seg = DOUBLE end
    segs[#segs + 1] = seg
    seg, seg_start = {}, i + 1
  end
  while i <= n do
    local c = text:sub(i, i)
    if c == "/" then
      close_segment()
      i = i + 1
    elseif c == "*" then
      -- a run of stars is one "*" (consecutive ones add nothing)
      if seg[#seg] ~= STAR then seg[#seg + 1] = STAR end
      i = i + 1
    elseif c == "{" then
      local close = text:find("}", i + 1, true)
      if not close then return nil end
      local name = text:sub(i + 1, close - 1)
      if name == "" or name:find("{", 1, true) then return nil end
      seg[#seg + 1] = { var = name }
      i = close + 1
    elseif c == "}" then
      return nil
    else
      local j = text:find("[/*{}]", i) or n + 1
      seg[#seg + 1] = text:sub(i, j - 1)
      i = j
    end
  end
  close_segment()
  return segs
end

local function compile(text)
  local c = cache[text]
  if c then return c end
  c = parse(text) or MALFORMED
  cache[text] = c
  return c
end

-- A claim's value as the text it stands for, or nil: a non-empty string,
-- or an integer (lua-cjson decodes 42 as 42.0: that is "42").
local function claim_text(v)
  if type(v) == "string" then return v ~= "" and v or nil end
  if type(v) == "number" then
    local i = math.tointeger(v)
    if i then return string.format("%d", i) end
  end
  return nil
end

-- The compiled pattern (size: its length) with its claims substituted,
-- at most MAX_PATTERN_BYTES long: a list of segments,
-- each DOUBLE or a list of literal pieces with a "*" between two pieces
-- ({ "a", "b" } is "a*b", { "x" } is "x"). nil when it matches nothing.
local function resolve(raw, vars, size)
  local out = {}
  local pieces = { "" }
  local function add_literal(s)
    -- a "/" in a claim's value lines up with the name's "/"
    local from = 1
    while true do
      local slash = s:find("/", from, true)
      pieces[#pieces] = pieces[#pieces] .. s:sub(from, (slash or 0) - 1)
      if not slash then break end
      out[#out + 1] = pieces
      pieces = { "" }
      from = slash + 1
    end
  end
  for s = 1, #raw do
    local seg = raw[s]
    if seg == DOUBLE then
      out[#out + 1] = DOUBLE
    else
      for t = 1, #seg do
        local tok = seg[t]
        if tok == STAR then
          pieces[#pieces + 1] = ""
        elseif type(tok) == "table" then
          local value = claim_text(vars and vars[tok.var])
          if not value then return nil end
          size = size - (#tok.var + 2) + #value -- "{name}" becomes the value
          if size > grants.MAX_PATTERN_BYTES then return nil end
          add_literal(value)
        else
          add_literal(tok)
        end
      end
      out[#out + 1] = pieces
      pieces = { "" }
    end
  end
  return out
end

-- Does one name segment (the bytes name[from..to]) match a list of pieces
-- with "*" between them? The first piece anchors the start, the last the
-- end, and each middle one is taken at its leftmost place (the greedy
-- algorithm: the leftmost place never loses a match).
local function segment_matches(pieces, name, from, to)
  local len = to - from + 1
  local k = #pieces
  if k == 1 then
    return len == #pieces[1] and name:sub(from, to) == pieces[1]
  end
  local first, last = pieces[1], pieces[k]
  if #first + #last > len then return false end
  if name:sub(from, from + #first - 1) ~= first then return false end
  if name:sub(to - #last + 1, to) ~= last then return false end
  local pos, stop = from + #first, to - #last
  for p = 2, k - 1 do
    local piece = pieces[p]
    if piece ~= "" then
      local at = name:find(piece, pos, true)
      if not at or at + #piece - 1 > stop then return false end
      pos = at + #piece
    end
  end
  return true
end

-- The start and end of each "/"-separated segment of name.
local function split_name(name)
  local starts, ends = {}, {}
  local from = 1
  while true do
    local slash = name:find("/", from, true)
    starts[#starts + 1] = from
    ends[#ends + 1] = (slash or #name + 1) - 1
    if not slash then break end
    from = slash + 1
  end
  return starts, ends
end

-- The greedy algorithm over segments: a DOUBLE records the one backtrack
-- point; on a mismatch the last DOUBLE takes one more segment.
local function segments_match(segs, starts, ends, name)
  local p, s, np, ns = 1, 1, #segs, #starts
  local back_p, back_s
  while s <= ns do
    local seg = segs[p]
    if seg == DOUBLE then
      back_p, back_s = p, s
      p = p + 1
    elseif seg and segment_matches(seg, name, starts[s], ends[s]) then
      p, s = p + 1, s + 1
    elseif back_p then
      back_s = back_s + 1
      p, s = back_p + 1, back_s
    else
      return false
    end
  end
  while segs[p] == DOUBLE do p = p + 1 end
  return p > np
end

--- grants.valid(pattern) -> true | false, why
-- Whether a pattern is well formed (a string of at most MAX_PATTERN_BYTES,
-- braces closed, no stray "}").
function grants.valid(pattern)
  if type(pattern) ~= "string" then return false, "a " .. type(pattern) .. ", not a string" end
  if #pattern > grants.MAX_PATTERN_BYTES then
    return false, ("longer than %d bytes"):format(grants.MAX_PATTERN_BYTES)
  end
  if compile(pattern) == MALFORMED then return false, "a \"{\" without its \"}\", an empty \"{}\" or a stray \"}\"" end
  return true
end

--- grants.match(pattern, name, vars?) -> boolean
-- vars: the claims {claim} reads (a table, or nil: a pattern with a claim
-- then matches nothing). Never raises.
function grants.match(pattern, name, vars)
  if type(pattern) ~= "string" or type(name) ~= "string" then return false end
  if #pattern > grants.MAX_PATTERN_BYTES then return false end
  local raw = compile(pattern)
  if raw == MALFORMED then return false end
  if type(vars) ~= "table" then vars = nil end
  local segs = resolve(raw, vars, #pattern)
  if not segs then return false end
  local starts, ends = split_name(name)
  return segments_match(segs, starts, ends, name)
end

--- grants.any(list, name, vars?) -> boolean
-- Whether one of the first MAX_PATTERNS patterns of list matches name. A
-- list that is not a table matches nothing.
function grants.any(list, name, vars)
  if type(list) ~= "table" or type(name) ~= "string" then return false end
  local starts, ends
  for i = 1, math.min(#list, grants.MAX_PATTERNS) do
    local pattern = list[i]
    if type(pattern) == "string" and #pattern <= grants.MAX_PATTERN_BYTES then
      local raw = compile(pattern)
      local segs = raw ~= MALFORMED and resolve(raw, vars, #pattern)
      if segs then
        if not starts then starts, ends = split_name(name) end
        if segments_match(segs, starts, ends, name) then return true end
      end
    end
  end
  return false
end

--- grants.check_list(list, what) -> true | nil, message
-- For lists written in settings: a list of at most MAX_PATTERNS valid
-- patterns. what names the list in the message.
function grants.check_list(list, what)
  if type(list) ~= "table" then return nil, ("%s must be a list of channel patterns"):format(what) end
  if #list > grants.MAX_PATTERNS then
    return nil, ("%s holds more than %d patterns"):format(what, grants.MAX_PATTERNS)
  end
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      return nil, ("%s must be a list of channel patterns"):format(what)
    end
  end
  for i, pattern in ipairs(list) do
    local ok, why = grants.valid(pattern)
    if not ok then return nil, ("%s[%d]: %s"):format(what, i, why) end
  end
  return true
end

--- grants.carries(user) -> boolean
-- A user carries grants when it has a subscribe or a publish list (any
-- value but nil: a malformed list still restricts the user, to nothing).
function grants.carries(user)
  return type(user) == "table" and (user.subscribe ~= nil or user.publish ~= nil)
end

-- What {claim} reads for a user: a JWT user's claims, otherwise its id and
-- username.
local function vars_of(user)
  local claims = user.claims
  if type(claims) == "table" then return claims end
  return { id = user.id, username = user.username }
end

--- grants.user_may(user, kind, name) -> boolean
-- kind: "subscribe" or "publish". True only when a pattern of the user's
-- list matches name: no grant, no right (a user without grants may
-- nothing, an anonymous user nothing, a name that is not a non-empty
-- string nothing).
function grants.user_may(user, kind, name)
  if type(user) ~= "table" or not user.is_authenticated then return false end
  if type(name) ~= "string" or name == "" then return false end
  return grants.any(user[kind], name, vars_of(user))
end

return grants
