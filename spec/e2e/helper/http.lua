-- spec/e2e/helper/http.lua: the raw HTTP client. A Client is one loopback
-- connection over luasocket with a read buffer (e2e.connect): sending,
-- bounded reads (bytes, a head, a whole response), chunked bodies (one
-- decoder, e2e.next_chunk, for the blocking and the incremental readers),
-- request bytes and the one-request helpers (e2e.request, e2e.get, e2e.post,
-- e2e.raw_request), and opening a stream (e2e.open_stream, e2e.open).
--
-- Every loop here has a deadline: a broken server makes a spec fail, never hang.

local e2e = require "spec.e2e.helper.base"
local luassert = require "luassert"
local socket = e2e.socket
local now = e2e.now

local M = {}

local Client = {}
Client.__index = Client
Client.__name = "e2e.Client"
M.Client = Client

-- Connects to host:port (default 127.0.0.1); raises on failure.
function M.connect(port, host)
  host = host or "127.0.0.1"
  local sock = host:find(":") and assert(socket.tcp6()) or assert(socket.tcp())
  sock:settimeout(e2e.TEST_TIMEOUT)
  assert(sock:connect(host, port))
  sock:setoption("tcp-nodelay", true)
  sock:settimeout(0)
  return setmetatable({ sock = sock, buf = "", eof = false }, Client)
end

-- Sends every byte (bounded).
function Client:send(bytes)
  local deadline = now() + e2e.TEST_TIMEOUT
  local i = 1
  while i <= #bytes do
    local last, err, partial = self.sock:send(bytes, i)
    local sent = last or partial
    if sent and sent >= i then i = sent + 1 end
    if err and err ~= "timeout" then return nil, err end
    if i <= #bytes then
      if now() > deadline then return nil, "timeout" end
      socket.select(nil, { self.sock }, 0.1)
    end
  end
  return true
end

-- Reads whatever arrives (at least one byte) into the buffer, waiting until
-- the deadline. Returns true, or nil, "closed" | "timeout".
function Client:fill(deadline)
  if self.eof then return nil, "closed" end
  deadline = deadline or now() + e2e.TEST_TIMEOUT
  while true do
    local data, err, partial = self.sock:receive(65536)
    local got = data or partial
    if got and #got > 0 then
      self.buf = self.buf .. got
      if err == "closed" then self.eof = true end
      return true
    end
    if err == "closed" then
      self.eof = true
      return nil, "closed"
    elseif err and err ~= "timeout" then
      self.eof = true
      return nil, err
    end
    local remaining = deadline - now()
    if remaining <= 0 then return nil, "timeout" end
    socket.select({ self.sock }, nil, math.min(remaining, 0.5))
  end
end

local function take(self, n)
  local s = self.buf:sub(1, n)
  self.buf = self.buf:sub(n + 1)
  return s
end

-- Bytes up to and including the plain delimiter; nil, err on close/timeout
-- (the bytes read so far stay in the buffer).
function Client:read_until(delim, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  while true do
    local e = select(2, self.buf:find(delim, 1, true))
    if e then return take(self, e) end
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
end

-- Exactly n bytes; nil, err on close/timeout.
function Client:read_n(n, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  while #self.buf < n do
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
  return take(self, n)
end

-- Everything until the peer closes (bounded); returns the bytes and
-- "closed" or "timeout".
function Client:read_until_close(timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  while true do
    local ok, err = self:fill(deadline)
    if not ok then return take(self, #self.buf), err end
  end
end

-- Waits for the peer to close; true if it did (with nothing more to read).
function Client:wait_closed(timeout)
  local rest, how = self:read_until_close(timeout)
  return how == "closed", rest
end

-- Reads a response head. Returns {
--   raw = head bytes (with the final CRLF CRLF), version, status (number),
--   reason, headers (lowercased name -> value, repeated joined with ", "),
--   header_lines (list of "Name: value" in order) }  or nil, err.
function Client:read_head(timeout)
  local raw, err = self:read_until("\r\n\r\n", timeout)
  if not raw then return nil, err end
  local head = { raw = raw, headers = {}, header_lines = {} }
  local first = true
  for line in raw:gmatch("(.-)\r\n") do
    if first then
      head.version, head.status, head.reason = line:match("^HTTP/(%d%.%d) (%d%d%d) ?(.*)$")
      head.status = tonumber(head.status)
      head.status_line = line
      first = false
    elseif line ~= "" then
      head.header_lines[#head.header_lines + 1] = line
      local name, value = line:match("^([^:]+):%s*(.-)%s*$")
      if name then
        name = name:lower()
        head.headers[name] = head.headers[name] and (head.headers[name] .. ", " .. value) or value
      end
    end
  end
  return head
end

-- Reads one chunk of a chunked body. Returns data, raw (the exact chunk
-- bytes, size line and CRLFs included); data == "" for the last chunk (whose
-- trailers are consumed). nil, err on close/timeout/bad framing.
function Client:read_chunk(timeout)
  local line, err = self:read_until("\r\n", timeout)
  if not line then return nil, err end
  local size = tonumber(line:match("^(%x+)[^\r]*\r\n$") or "", 16)
  if not size then return nil, "bad chunk size line: " .. string.format("%q", line) end
  if size == 0 then
    local raw = line
    while true do  -- trailers, then the empty line
      local t, terr = self:read_until("\r\n", timeout)
      if not t then return nil, terr end
      raw = raw .. t
      if t == "\r\n" then return "", raw end
    end
  end
  local data, derr = self:read_n(size + 2, timeout)
  if not data then return nil, derr end
  if data:sub(-2) ~= "\r\n" then
    return nil, "chunk not followed by CRLF: " .. string.format("%q", data)
  end
  return data:sub(1, -3), line .. data
end

-- Decodes the chunk of a chunked body that starts at buf's byte pos (the
-- incremental readers' decoder: nothing is consumed). Returns
--   data, next_pos                  a data chunk (next_pos: the byte after it);
--   "", next_pos, terminator        the last chunk "0\r\n\r\n" (its exact bytes);
--   nil                             the chunk is not complete in buf yet;
--   nil, err                        bad framing (trailers after the last
--                                   chunk count as bad: the server sends none).
function M.next_chunk(buf, pos)
  pos = pos or 1
  local line_end = buf:find("\r\n", pos, true)
  if not line_end then
    if #buf - pos > 64 then return nil, "no chunk size line" end
    return nil
  end
  local size = tonumber(buf:sub(pos, line_end - 1):match("^(%x+)[^\r\n]*$") or "", 16)
  if not size then
    return nil, "bad chunk size line: " .. string.format("%q", buf:sub(pos, line_end + 1))
  end
  if size == 0 then
    if buf:sub(line_end + 2, line_end + 3) ~= "\r\n" then
      if #buf >= line_end + 3 then
        return nil, "trailers after the last chunk: " .. string.format("%q", buf:sub(pos))
      end
      return nil
    end
    return "", line_end + 4, buf:sub(pos, line_end + 3)
  end
  local data_start, data_end = line_end + 2, line_end + 1 + size
  if #buf < data_end + 2 then return nil end
  if buf:sub(data_end + 1, data_end + 2) ~= "\r\n" then return nil, "chunk not followed by CRLF" end
  return buf:sub(data_start, data_end), data_end + 3
end

-- Reads chunks until the last one. Returns body, list of chunk data, raw
-- bytes; or nil, err, chunks-so-far.
function Client:read_chunked(timeout)
  local chunks, raws = {}, {}
  while true do
    local data, raw = self:read_chunk(timeout)
    if not data then return nil, raw, chunks end
    raws[#raws + 1] = raw
    if data == "" then break end
    chunks[#chunks + 1] = data
  end
  return table.concat(chunks), chunks, table.concat(raws)
end

-- Reads a whole response: head, then the body by Content-Length, chunked or
-- until close (opts.head_request: no body). Returns the head table with
-- .body (and .chunks for chunked bodies), or nil, err.
function Client:read_response(opts)
  opts = opts or {}
  local head, err = self:read_head(opts.timeout)
  if not head then return nil, err end
  local te = (head.headers["transfer-encoding"] or ""):lower()
  local cl = tonumber(head.headers["content-length"])
  if opts.head_request or head.status == 204 or head.status == 304 then
    head.body = ""
  elseif te:find("chunked", 1, true) then
    local body, chunks, raw = self:read_chunked(opts.timeout)
    if not body then return nil, chunks end
    head.body, head.chunks, head.raw_body = body, chunks, raw
  elseif cl then
    local body, berr = self:read_n(cl, opts.timeout)
    if not body then return nil, berr end
    head.body = body
  else
    local body, how = self:read_until_close(opts.timeout)
    head.body, head.closed = body, how == "closed"
  end
  return head
end

function Client:close()
  if self.sock then
    self.sock:close()
    self.sock = nil
  end
end

------------------------------------------------------------------------------
-- Requests

-- Builds raw request bytes. headers: list of "Name: value" strings or a
-- name -> value table.
function M.request_bytes(method, target, headers, version)
  local lines = { string.format("%s %s HTTP/%s", method, target, version or "1.1") }
  local has_host = false
  local hs = {}
  if headers then
    if #headers > 0 then
      for _, h in ipairs(headers) do hs[#hs + 1] = h end
    else
      local names = {}
      for k in pairs(headers) do names[#names + 1] = k end
      table.sort(names)
      for _, k in ipairs(names) do hs[#hs + 1] = k .. ": " .. headers[k] end
    end
  end
  for _, h in ipairs(hs) do
    if h:lower():match("^host:") then has_host = true end
  end
  if not has_host then lines[#lines + 1] = "Host: 127.0.0.1" end
  for _, h in ipairs(hs) do lines[#lines + 1] = h end
  return table.concat(lines, "\r\n") .. "\r\n\r\n"
end

-- One request on a fresh connection: returns the response (see read_response)
-- after closing the connection; raises on a network error.
function M.request(port, method, target, headers, opts)
  local c = M.connect(port)
  assert(c:send(M.request_bytes(method, target, headers, opts and opts.version)))
  local resp, err = c:read_response({ head_request = method == "HEAD",
    timeout = opts and opts.timeout })
  c:close()
  assert(resp, "no response to " .. method .. " " .. target .. ": " .. tostring(err))
  return resp
end

function M.get(port, target, headers, opts)
  return M.request(port, "GET", target, headers, opts)
end

-- Opens a stream: connects, sends GET, reads the head. Returns client, head.
function M.open_stream(port, target, headers)
  local c = M.connect(port)
  assert(c:send(M.request_bytes("GET", target, headers)))
  local head, err = c:read_head()
  assert(head, "no response head for " .. target .. ": " .. tostring(err))
  return c, head
end

-- Opens a stream that must be answered 200 (asserted, with the head in the
-- message). Returns client, head.
function M.open(port, target, headers)
  local c, head = M.open_stream(port, target, headers)
  luassert.equal(200, head.status, head.raw)
  return c, head
end

-- A POST of body (default "") with its Content-Length and the headers (a
-- list of "Name: value") on a fresh connection; returns the response (see
-- Client:read_response) after closing the connection; raises on a network
-- error.
function M.post(port, target, body, headers)
  body = body or ""
  local hs = { "Content-Length: " .. #body }
  for _, h in ipairs(headers or {}) do hs[#hs + 1] = h end
  local c = M.connect(port)
  assert(c:send(M.request_bytes("POST", target, hs) .. body))
  local resp, err = c:read_response()
  c:close()
  assert(resp, "no response to POST " .. target .. ": " .. tostring(err))
  return resp
end

-- Sends raw bytes on a fresh connection and reads one response; returns it
-- and whether the server then closed the connection.
function M.raw_request(port, bytes)
  local c = M.connect(port)
  assert(c:send(bytes))
  local resp, err = c:read_response()
  assert(resp, "no response: " .. tostring(err))
  local closed = c:wait_closed(e2e.TEST_TIMEOUT)
  c:close()
  return resp, closed
end

return M
