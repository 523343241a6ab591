-- flosse.response: what an ordinary (non-stream) view returns.
-- The server writes the status line, these headers, Content-Length and the
-- body; users never set Content-Length (nor Transfer-Encoding) themselves.

local core = require "flosse.core"

local response = {}

local Response = { __name = "flosse.Response" }
Response.__index = Response

-- Header names the server owns.
local RESERVED = { ["content-length"] = true, ["transfer-encoding"] = true }

local function check_status(status, level)
  local n = math.type(status) and math.tointeger(status)
  if not n or n < 100 or n > 599 then
    error("flosse.response: status must be an integer from 100 to 599, got "
      .. tostring(status), level + 1)
  end
  return n
end

-- Copies and checks the headers: names are tokens, values strings (numbers
-- are turned into strings) without CR, LF or NUL, so nothing can be injected
-- into the response head.
local function copy_headers(headers, level)
  local out = {}
  if headers == nil then return out end
  if type(headers) ~= "table" then
    error("flosse.response: headers must be a table", level + 1)
  end
  for name, value in pairs(headers) do
    if type(name) ~= "string" or not name:match("^[!#$%%&'*+%-.^_`|~%w]+$") then
      error("flosse.response: bad header name " .. tostring(name), level + 1)
    end
    if RESERVED[name:lower()] then
      error("flosse.response: " .. name .. " is set by the server", level + 1)
    end
    if type(value) == "number" then value = tostring(value) end
    if type(value) ~= "string" or value:find("[\r\n%z]") then
      error("flosse.response: bad value for header " .. name, level + 1)
    end
    out[name] = value
  end
  return out
end

-- What a stream's head is written with by the core, besides these two.
local STREAM_RESERVED = {
  ["content-length"] = true, ["transfer-encoding"] = true, ["connection"] = true,
  ["content-type"] = true, ["cache-control"] = true, ["x-accel-buffering"] = true,
}

--- check_stream_headers(headers, what, level) -> a checked copy
-- A stream view's headers option (or what its function returned): names
-- are tokens and not headers the core writes, values strings (or numbers)
-- without CR, LF or NUL. Raises naming what.
function response.check_stream_headers(headers, what, level)
  level = (level or 1) + 1
  if type(headers) ~= "table" then error(what .. " must be a table of header names and values", level) end
  local out = {}
  for name, value in pairs(headers) do
    if type(name) ~= "string" or not name:match("^[!#$%%&'*+%-.^_`|~%w]+$") then
      error(("%s: %q is not a header name"):format(what, tostring(name)), level)
    end
    if STREAM_RESERVED[name:lower()] then
      error(("%s: %s is set by the server"):format(what, name), level)
    end
    if math.type(value) then value = tostring(value) end
    if type(value) ~= "string" or value:find("[\r\n%z]") then
      error(("%s: the value of %s must be a string without CR, LF or NUL"):format(what, name), level)
    end
    out[name] = value
  end
  return out
end

--- new{ status = 200, headers = {}, body = "" } -> Response
function response.new(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then
    error("flosse.response.new: expects a table, got " .. type(t), 2)
  end
  local status = 200
  if t.status ~= nil then status = check_status(t.status, 2) end
  local body = t.body
  if body == nil then body = "" end
  if type(body) ~= "string" then
    error("flosse.response.new: body must be a string, got " .. type(body), 2)
  end
  return setmetatable({
    status = status,
    headers = copy_headers(t.headers, 2),
    body = body,
  }, Response)
end

--- is_response(v) -> boolean
function response.is_response(v)
  return getmetatable(v) == Response
end

--- text(status, body) -> Response (text/plain; charset=utf-8)
-- text(body) is text(200, body).
function response.text(status, body)
  if body == nil and type(status) == "string" then status, body = 200, status end
  return response.new {
    status = status,
    headers = { ["Content-Type"] = "text/plain; charset=utf-8" },
    body = body,
  }
end

--- json(value, status) -> Response (application/json)
-- Encoded by the core as lua-cjson would, except numbers: integers exactly,
-- floats in the shortest text that reads back to them.
function response.json(value, status)
  local body, err = core.json_encode(value)
  if not body then error("flosse.response.json: " .. err, 2) end
  return response.new {
    status = status,
    headers = { ["Content-Type"] = "application/json" },
    body = body,
  }
end

--- response:header(name) -> value | nil (case-insensitive lookup)
function Response:header(name)
  local lname = name:lower()
  for k, v in pairs(self.headers) do
    if k:lower() == lname then return v end
  end
  return nil
end

response.Response = Response

return response
