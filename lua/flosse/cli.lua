--- flosse.cli: the `flosse` command.
local core = require "flosse.core"
local app_mod = require "flosse.app"
local server = require "flosse.server"

local cli = {}

local USAGE = [[
usage: flosse serve [DIR] [options]    serve the app in DIR (default: ./scripts)
       flosse --version
       flosse --help

serve options:
  --host HOST      address to listen on (default 127.0.0.1; "::" or "0.0.0.0" for all)
  --port PORT      port to listen on (default 8080; 0 picks a free one)
  --debug          send error texts to clients in error events (never in production)
  -h, --help       show this help
]]

local function say(fmt, ...)
  io.stderr:write("flosse: ", fmt:format(...), "\n")
end

-- Parses serve's arguments; returns opts or nil, message.
local function parse_serve(args)
  local opts = { dir = nil }
  local i = 1
  local function value(flag)
    i = i + 1
    local v = args[i]
    if v == nil then error({ usage = flag .. " needs a value" }) end
    return v
  end
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if flag then a = flag; table.insert(args, i + 1, inline) end
    if a == "--host" then
      opts.host = value(a)
    elseif a == "--port" then
      local v = value(a)
      local p = math.tointeger(tonumber(v))
      if not p or p < 0 or p > 65535 then error({ usage = "--port takes a number from 0 to 65535, not " .. v }) end
      opts.port = p
    elseif a == "--debug" then
      opts.debug = true
    elseif a == "-h" or a == "--help" then
      opts.help = true
    elseif a:sub(1, 1) == "-" then
      error({ usage = "unknown option " .. a .. " (see flosse serve --help)" })
    elseif opts.dir == nil then
      opts.dir = a
    else
      error({ usage = "serve takes one folder, got another: " .. a })
    end
    i = i + 1
  end
  return opts
end

local function serve(args)
  local ok, opts = pcall(parse_serve, args)
  if not ok then
    if type(opts) == "table" then say("%s", opts.usage); return 2 end
    error(opts, 0)
  end
  if opts.help then io.stdout:write(USAGE); return 0 end
  local dir = opts.dir or "scripts"
  local f = io.open(dir, "r")
  if not f then say("%s: no such folder (give the app folder: flosse serve DIR)", dir); return 2 end
  f:close()
  local app, err = app_mod.load(dir)
  if not app then say("%s", err); return 1 end
  local s = app.settings
  if opts.debug then s.debug = true end
  local current = app
  local srv, lerr = core.listen {
    host = opts.host or s.host,
    port = opts.port or s.port,
    debug = s.debug,
    max_url_bytes = s.max_url_bytes,
    max_header_bytes = s.max_header_bytes,
    max_body_bytes = s.max_body_bytes,
    dispatch = server.dispatcher(function() return current end),
  }
  if not srv then
    say("%s (is another server running? choose another port with --port)", lerr)
    return 2
  end
  for _, url in ipairs(srv:addresses()) do say("listening on %s", url) end
  srv:run()
  srv:close()
  return 0
end

--- main(args) -> exit status
function cli.main(args)
  args = { table.unpack(args or {}) }
  local cmd = table.remove(args, 1)
  if cmd == nil or cmd == "-h" or cmd == "--help" or cmd == "help" then
    io.stdout:write(USAGE)
    return cmd == nil and 2 or 0
  elseif cmd == "--version" or cmd == "version" then
    io.stdout:write("flosse ", core.version, "\n")
    return 0
  elseif cmd == "serve" then
    return serve(args)
  end
  say("unknown command %s (try flosse --help)", cmd)
  return 2
end

return cli
