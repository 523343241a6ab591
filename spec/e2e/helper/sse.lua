-- spec/e2e/helper/sse.lua: SSE parsing. e2e.parse_sse turns stream bytes into
-- events; a Client (spec/e2e/helper/http.lua) reads one event at a time
-- (Client:read_event) or pulls a stream incrementally (Client:pump, and
-- e2e.pump for several clients) and shows what arrived so far
-- (Client:frames, Client:heartbeats, Client:events, Client:show).
--
-- Every loop here has a deadline: a broken server makes a spec fail, never hang.

local e2e = require "spec.e2e.helper.base"
local http = require "spec.e2e.helper.http"
local socket = e2e.socket
local now = e2e.now
local Client = http.Client
local next_chunk = http.next_chunk

local M = {}

-- Parses SSE bytes (per the HTML spec's rules) into a list of events
-- { event =, data =, id =, retry = (number) }; comments are collected in
-- .comments of the list. A frame with only a retry field is kept as an event
-- too (browsers would not dispatch it, tests want to see it). Fields not
-- present are nil.
function M.parse_sse(bytes)
  local events = { comments = {} }
  local cur = nil
  local data = nil
  bytes = bytes:gsub("\r\n", "\n"):gsub("\r", "\n")
  for line in bytes:gmatch("([^\n]*)\n") do
    if line == "" then
      if cur then
        if data then cur.data = table.concat(data, "\n") end
        events[#events + 1] = cur
      end
      cur, data = nil, nil
    elseif line:sub(1, 1) == ":" then
      events.comments[#events.comments + 1] = line:sub(2):gsub("^ ", "")
    else
      local field, value = line:match("^([^:]*):? ?(.*)$")
      cur = cur or {}
      if field == "data" then
        data = data or {}
        data[#data + 1] = value
      elseif field == "event" then
        cur.event = value
      elseif field == "id" then
        cur.id = value
      elseif field == "retry" then
        cur.retry = tonumber(value)
      end
    end
  end
  return events
end

-- Reads one SSE event from a chunked stream (chunk by chunk until a blank
-- line ends the event). Returns the event table (with .raw), or nil, err.
function Client:read_event(timeout)
  local acc = ""
  while true do
    local data, err = self:read_chunk(timeout)
    if not data then return nil, err end
    if data == "" then return nil, "end of stream" end
    acc = acc .. data
    if acc:find("\n\n$") or acc:find("\r\r$") or acc:find("\r\n\r\n$") then
      local evs = M.parse_sse(acc)
      local ev = evs[1] or { comments = evs.comments }
      ev.raw = acc
      return ev
    end
  end
end

-- Reads a stream incrementally: pulls whatever has arrived (never waits) and
-- de-chunks every complete chunk into self.stream_body (the SSE bytes so far).
-- Sets self.stream_ended when the last chunk "0\r\n\r\n" arrived
-- (self.stream_terminator: its exact bytes), self.stream_closed when the peer
-- closed, self.stream_error on bad chunk framing. Call it after the head was
-- read (e2e.open_stream). max_reads (default 64) bounds the socket reads of
-- up to 64 KiB each. Returns true if new body bytes arrived.
function Client:pump(max_reads)
  if not self.stream_body then
    self.stream_body, self.stream_chunks, self.stream_ended = "", 0, false
  end
  if self.sock and not self.eof then
    for _ = 1, max_reads or 64 do  -- bounded, so that one busy client cannot starve others
      local before = #self.buf
      self:fill(now())
      if #self.buf == before or self.eof then break end
    end
  end
  local grew = false
  local parts = {}
  local pos = 1
  local buf = self.buf
  while not self.stream_ended and not self.stream_error do
    local data, next_pos, terminator = next_chunk(buf, pos)
    if data == nil then
      self.stream_error = next_pos  -- nil: the next chunk is not complete yet
      break
    end
    pos = next_pos
    if data == "" then
      self.stream_terminator = terminator
      self.stream_ended = true
      break
    end
    parts[#parts + 1] = data
    self.stream_chunks = self.stream_chunks + 1
    grew = true
  end
  if pos > 1 then self.buf = buf:sub(pos) end
  if #parts > 0 then self.stream_body = self.stream_body .. table.concat(parts) end
  if self.eof then self.stream_closed = true end
  return grew
end

-- The SSE frames received so far (each without its final blank line), in order.
function Client:frames()
  local list = {}
  for frame in (self.stream_body or ""):gmatch("(.-)\n\n") do list[#list + 1] = frame end
  return list
end

-- How many ": heartbeat" comment frames were received so far.
function Client:heartbeats()
  local n = 0
  for _, frame in ipairs(self:frames()) do
    if frame == ": heartbeat" then n = n + 1 end
  end
  return n
end

-- The events received so far (e2e.parse_sse of the body: comments in .comments).
function Client:events()
  return M.parse_sse(self.stream_body or "")
end

-- The body received so far (Client:pump), quoted for a message; at most max
-- bytes of it when max is given.
function Client:show(max)
  return string.format("%q", (self.stream_body or ""):sub(1, max or -1))
end

-- Pumps every client (Client:pump) until done() returns true (returns true) or
-- the timeout passes (returns false). Without done: pumps for `timeout`
-- seconds and returns true.
function M.pump(clients, done, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  while true do
    for _, c in ipairs(clients) do c:pump() end
    if done and done() then return true end
    local remaining = deadline - now()
    if remaining <= 0 then return done == nil end
    local socks = {}
    for _, c in ipairs(clients) do
      if c.sock and not c.eof then socks[#socks + 1] = c.sock end
    end
    if #socks > 0 then
      socket.select(socks, nil, math.min(0.1, remaining))
    else
      socket.sleep(math.min(0.05, remaining))
    end
  end
end

-- The notice a client gets first when its Last-Event-ID cannot be resumed
-- without a gap, as a frame without its blank line (no id line; last_id nil:
-- the JSON null of a live stream whose node took no event yet).
function M.gap_frame(channel, last_id)
  return ('event: flosse-gap\ndata: {"channel":%s,"last_event_id":%s}'):format(
    e2e.json_encode(channel), last_id == nil and "null" or e2e.json_encode(last_id))
end

return M
