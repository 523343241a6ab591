-- flosse.static: views that serve files from the app folder.
--   path("", static.file("index.html")),
--   path("static/<path:path>", static.dir("public")),
-- Paths are resolved against static.root when a request comes in (the app
-- loader sets static.root to the app folder before it loads urls.lua).

local response = require "flosse.response"

local has_lfs, lfs = pcall(require, "lfs")

local static = {}

static.root = "."

-- What each view made here serves, for `flosse check` (weak keys).
static.described = setmetatable({}, { __mode = "k" })

-- Files larger than this are not served (a 500): a guard against a symlink
-- to a device that never ends, and against filling memory.
static.max_size = 64 * 1024 * 1024

static.content_types = {
  html = "text/html; charset=utf-8",
  htm = "text/html; charset=utf-8",
  css = "text/css; charset=utf-8",
  js = "text/javascript; charset=utf-8",
  mjs = "text/javascript; charset=utf-8",
  json = "application/json",
  map = "application/json",
  txt = "text/plain; charset=utf-8",
  svg = "image/svg+xml",
  png = "image/png",
  jpg = "image/jpeg",
  jpeg = "image/jpeg",
  gif = "image/gif",
  webp = "image/webp",
  ico = "image/x-icon",
}

local DEFAULT_TYPE = "application/octet-stream"
local CHUNK = 64 * 1024

--- content_type(filename) -> the Content-Type for its extension
function static.content_type(filename)
  local ext = filename:match("%.([^./]+)$")
  return ext and static.content_types[ext:lower()] or DEFAULT_TYPE
end

local function not_found()
  return response.text(404, "Not Found\n")
end

local function join(root, rel)
  if rel:sub(1, 1) == "/" then return rel end
  if root == "" then return rel end
  if root:sub(-1) == "/" then return root .. rel end
  return root .. "/" .. rel
end

-- Reads a whole regular file in binary mode: its bytes, or nil, status
-- (404 when missing or not a regular file, 500 when too large or unreadable).
local function read_file(fullpath)
  if has_lfs then
    -- Refuses FIFOs and devices before open() can block on them.
    local mode = lfs.attributes(fullpath, "mode")
    if mode ~= "file" then return nil, 404 end
  end
  local f = io.open(fullpath, "rb")
  if not f then return nil, 404 end
  local parts, size = {}, 0
  while true do
    local chunk, err = f:read(CHUNK)
    if chunk == nil then
      f:close()
      -- EISDIR and friends: not a regular file
      if err then return nil, 404 end
      break
    end
    size = size + #chunk
    if size > static.max_size then
      f:close()
      return nil, 500
    end
    parts[#parts + 1] = chunk
  end
  return table.concat(parts)
end

local function serve(fullpath, opts)
  local body, status = read_file(fullpath)
  if not body then
    if status == 404 then return not_found() end
    return response.text(500, "Internal Server Error\n")
  end
  local headers, has_type = {}, false
  if opts.headers then
    for k, v in pairs(opts.headers) do
      if type(k) == "string" and k:lower() == "content-type" then
        has_type = true
        if not opts.content_type then headers[k] = v end
      else
        headers[k] = v
      end
    end
  end
  if opts.content_type or not has_type then
    headers["Content-Type"] = opts.content_type or static.content_type(fullpath)
  end
  return response.new { status = 200, headers = headers, body = body }
end

local function check_opts(opts, fname)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("flosse.static." .. fname .. ": opts must be a table", 3) end
  if opts.content_type ~= nil and type(opts.content_type) ~= "string" then
    error("flosse.static." .. fname .. ": opts.content_type must be a string", 3)
  end
  if opts.headers ~= nil and type(opts.headers) ~= "table" then
    error("flosse.static." .. fname .. ": opts.headers must be a table", 3)
  end
  return opts
end

--- file(relpath, opts?) -> view function(request) -> Response
-- Serves static.root/relpath. opts.content_type overrides the type from the
-- extension; opts.headers are added to the response.
function static.file(relpath, opts)
  if type(relpath) ~= "string" or relpath == "" then
    error("flosse.static.file: expects a file path", 2)
  end
  opts = check_opts(opts, "file")
  local view = function(request) -- luacheck: ignore 212
    return serve(join(static.root, relpath), opts)
  end
  static.described[view] = ("static.file(%q)"):format(relpath)
  return view
end

-- A client-given path is safe when it is relative, has no ".." segment and
-- no NUL (a "\" is an ordinary character on POSIX, but refuse it as a
-- separator too so nothing on any platform climbs out).
local function safe_relpath(p)
  if type(p) ~= "string" or p == "" then return false end
  if p:find("%z") or p:sub(1, 1) == "/" or p:sub(1, 1) == "\\" then return false end
  for segment in p:gmatch("[^/\\]+") do
    if segment == ".." then return false end
  end
  return true
end
static.safe_relpath = safe_relpath

--- dir(reldir, opts?) -> view function(request) -> Response
-- Serves static.root/reldir/<request.params[opts.param or "path"]>; a path
-- with a ".." segment, a NUL or a leading "/" answers 404, and only regular
-- files are served.
function static.dir(reldir, opts)
  if type(reldir) ~= "string" or reldir == "" then
    error("flosse.static.dir: expects a folder path", 2)
  end
  opts = check_opts(opts, "dir")
  local param = opts.param or "path"
  local view = function(request)
    local rel = request.params and request.params[param]
    if not safe_relpath(rel) then return not_found() end
    return serve(join(join(static.root, reldir), rel), opts)
  end
  static.described[view] = ("static.dir(%q)"):format(reldir)
  return view
end

return static
