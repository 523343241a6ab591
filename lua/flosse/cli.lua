--- flosse.cli: the `flosse` command.
local core = require "flosse.core"
local app_mod = require "flosse.app"
local server = require "flosse.server"
local check = require "flosse.check"
local tasks = require "flosse.tasks"
local new = require "flosse.new"
local redis = require "flosse.redis"
local redact = require "flosse.redact"
local tls = require "flosse.tls"

local cli = {}

local USAGE = [[
usage: flosse serve [DIR] [options]   serve the app in DIR (default: ./scripts), reloading it on changes
       flosse check [DIR]             load the app and list its routes, views and permission classes
       flosse new NAME                write a new app folder NAME that `flosse serve NAME` runs
       flosse --version
       flosse help [COMMAND]          this text, or a command's
]]

local SERVE_USAGE = [[
usage: flosse serve [DIR] [options]

Serves the app in DIR (default: ./scripts): DIR/urls.lua, DIR/settings.lua and
the modules they require. Changes to DIR's .lua files reload the app; SIGHUP too.

options (each also a settings.lua key, with - written _; a flag wins):
  --reload, --no-reload      watch DIR and reload on changes (default: on)
  --workers N                event loops (threads, each with its own Lua state) sharing the
                             port and the channels (default: one per core)
  --host HOST                address to listen on (default 127.0.0.1; "::" or "0.0.0.0" for all)
  --port PORT                port to listen on (default 8080; 0 picks a free one)
  --heartbeat SECONDS        comment frame after this long without a write; 0 = off (default 15)
  --max-connections N        beyond it new connections get 503 (default: open-file limit - 64)
  --max-header-bytes N       request line + headers; larger gets 431 (default 16384)
  --header-timeout SECONDS   to receive a request's headers (default 10)
  --write-timeout SECONDS    drop a client whose socket takes nothing for this long (default 30)
  --max-body-bytes N         request bodies; larger gets 413 (default 1048576)
  --max-channels N           channels the server may hold; a request that would make one more
                             gets 503 (default 100000)
  --lua-memory MIB           cap on the Lua state's memory (default 1024)
  --instruction-budget N     VM instructions a view may run without yielding (default 100000000)
  --grace SECONDS            on SIGTERM/SIGINT, time to drain before exiting (default 5)
  --log-level LEVEL          error, warn, info or debug (default info)
  --log-format FORMAT        text, or json: one JSON object per line (default text; docs/logging.md)
  --redis URL                the Redis server of flosse.redis() and of channels across nodes:
                             redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///path[?db=N]
                             (default: none; settings.lua's redis may also be a table
                             { url =, prefix =, timeout =, shards =, pool = })
  --tls-cert FILE            serve HTTPS: the certificate chain (PEM), with --tls-key FILE its
  --tls-key FILE             private key; ALPN offers h2 and http/1.1; SIGHUP reloads them
                             (settings.lua: tls = { cert =, key = }, relative to DIR; docs/tls.md)
  --max-concurrent-streams N HTTP/2 streams per connection (default 128)
  --debug                    send error texts to clients in error events (never in production)
  -h, --help                 show this help
]]

local CHECK_USAGE = [[
usage: flosse check [DIR]

Loads the app in DIR (default: ./scripts) as `flosse serve` would, prints its
routes with their views and permission classes, and exits 0; on any error it
prints one line naming the file and line, and exits 2.
]]

local NEW_USAGE = [[
usage: flosse new NAME

Writes a new app folder NAME (views.lua, urls.lua, settings.lua, index.html)
with a hello stream at /sse/hello/ and a page at / that listens to it.
Then: flosse serve NAME
]]

-- A line on stderr that the operator must see: through the core, so that
-- it takes the log format (text until the settings are read).
local function say(fmt, ...)
  core.say(fmt:format(...))
end

local function usage_error(msg) error({ usage = msg }, 0) end

local function number_arg(flag, v, integer)
  local n = tonumber(v)
  if integer then n = n and math.tointeger(n) end
  if not n or n < 0 or n ~= n then
    usage_error(("%s takes a non-negative %s, not %s"):format(flag, integer and "integer" or "number", v))
  end
  return n
end

-- flag -> { setting name, kind }
local VALUE_FLAGS = {
  ["--host"] = { "host", "string" },
  ["--port"] = { "port", "port" },
  ["--heartbeat"] = { "heartbeat", "number" },
  ["--max-connections"] = { "max_connections", "integer" },
  ["--max-header-bytes"] = { "max_header_bytes", "integer" },
  ["--header-timeout"] = { "header_timeout", "number" },
  ["--write-timeout"] = { "write_timeout", "number" },
  ["--max-body-bytes"] = { "max_body_bytes", "integer" },
  ["--lua-memory"] = { "lua_memory", "number" },
  ["--instruction-budget"] = { "instruction_budget", "integer" },
  ["--grace"] = { "grace", "number" },
  ["--log-level"] = { "log_level", "level" },
  ["--log-format"] = { "log_format", "format" },
  ["--workers"] = { "workers", "integer" },
  ["--max-channels"] = { "max_channels", "integer" },
  ["--redis"] = { "redis", "string" },
  ["--max-concurrent-streams"] = { "max_concurrent_streams", "integer" },
  ["--tls-cert"] = { "cert", "tls" },
  ["--tls-key"] = { "key", "tls" },
}

local LEVELS = { error = true, warn = true, info = true, debug = true }

-- Parses serve's arguments into { dir =, help =, settings = {name = value} }.
local function parse_serve(args)
  local opts = { settings = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if flag then a = flag end
    local spec = VALUE_FLAGS[a]
    if spec then
      local v = inline
      if v == nil then
        i = i + 1
        v = args[i]
      end
      if v == nil then usage_error(a .. " needs a value") end
      local name, kind = spec[1], spec[2]
      if kind == "port" then
        local p = math.tointeger(tonumber(v))
        if not p or p < 0 or p > 65535 then usage_error("--port takes a number from 0 to 65535, not " .. v) end
        v = p
      elseif kind == "number" or kind == "integer" then
        v = number_arg(a, v, kind == "integer")
      elseif kind == "level" and not LEVELS[v] then
        usage_error("--log-level takes error, warn, info or debug, not " .. v)
      elseif kind == "format" and v ~= "text" and v ~= "json" then
        usage_error("--log-format takes text or json, not " .. v)
      end
      if kind == "tls" then
        opts.tls = opts.tls or {}
        opts.tls[name] = v
      else
        opts.settings[name] = v
      end
    elseif a == "--debug" then
      opts.settings.debug = true
    elseif a == "--reload" then
      opts.reload = true
    elseif a == "--no-reload" then
      opts.reload = false
    elseif a == "-h" or a == "--help" then
      opts.help = true
    elseif a:sub(1, 1) == "-" then
      usage_error("unknown option " .. a .. " (see flosse serve --help)")
    elseif opts.dir == nil then
      opts.dir = a
    else
      usage_error("serve takes one folder, got another: " .. a)
    end
    i = i + 1
  end
  if opts.tls then
    -- One setting for both: the flags' pair replaces settings.lua's tls.
    local paths, err = tls.from_flags(opts.tls.cert, opts.tls.key)
    if not paths then usage_error(err) end
    opts.settings.tls = paths
  end
  return opts
end

-- What is left to check once the flags are applied: settings.lua's values
-- were checked when the app loaded (flosse.settings) and each flag when it
-- was parsed; a flag may still say --max-channels 0, and the redis value
-- (a flag or the setting) is read by flosse.redis.
local function check_settings(s)
  if s.max_channels < 1 then return nil, "max_channels (--max-channels) must be at least 1" end
  if s.max_concurrent_streams < 1 or s.max_concurrent_streams > 1000000 then
    return nil, "max_concurrent_streams (--max-concurrent-streams) must be from 1 to 1000000"
  end
  local _, rerr = redis.settings(s.redis)
  if rerr then return nil, "redis (settings.lua's redis, or --redis): " .. rerr end
  return true
end

-- The folder argument: must exist. Returns dir or nil after saying why.
local function app_dir(dir)
  dir = dir or "scripts"
  local f = io.open(dir .. "/.", "r")
  if not f then
    say("%s: no such folder (give the app folder: flosse serve DIR; flosse new NAME makes one)", dir)
    return nil
  end
  f:close()
  return dir
end

-- Plain values (flags, the port) as Lua source, for the workers' states.
local function serialize(v)
  local t = type(v)
  if t == "string" then return ("%q"):format(v) end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  if t == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = ("[%s]=%s"):format(serialize(k), serialize(x)) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot pass a " .. t .. " to a worker", 0)
end

local function configure_channels(settings)
  core.configure_channels {
    history = settings.channel_history,
    history_seconds = settings.channel_history_seconds,
    backlog = settings.channel_backlog,
    max_channels = settings.max_channels,
  }
end

local function same_tls(a, b)
  if a == nil or b == nil then return a == b end
  return a.cert == b.cert and a.key == b.key
end

-- Loads the app in dir and makes this thread's server for it. flags beat
-- settings.lua, at start-up and after every reload. listen holds what the
-- core needs beyond the settings (a worker's handle, the shared port...).
-- Returns srv, settings, or nil, exit status, message.
local function build(dir, flags, listen, app)
  if not app then
    local err
    app, err = app_mod.load(dir)
    if not app then return nil, 2, err end
  end
  local s = app.settings
  local function apply_flags(settings)
    for k, v in pairs(flags) do settings[k] = v end
  end
  apply_flags(s)
  local valid, why = check_settings(s)
  if not valid then return nil, 2, why end
  redact.apply(s)
  local current = app
  local function reload()
    local fresh, rerr = app_mod.load(dir)
    if fresh then
      apply_flags(fresh.settings)
      local fine, bad = check_settings(fresh.settings)
      if not fine then fresh, rerr = nil, bad end
    end
    if not fresh then
      if not listen.worker then
        core.log("error", "reload failed, still serving the previous app: " .. tostring(rerr))
        core.metrics_reloaded(false) -- once per process: the main worker's
      end
      return
    end
    if not listen.worker and not redis.same(redis.settings(fresh.settings.redis), redis.settings(s.redis)) then
      core.log("warn", "the redis setting changed: a reload does not change it (restart the server to apply it)")
    end
    if not listen.worker and not same_tls(fresh.settings.tls, s.tls) then
      core.log("warn", "the tls setting changed: a reload only reads its files again (restart the server "
        .. "to serve other files)")
    end
    current = fresh
    redact.apply(fresh.settings)
    configure_channels(fresh.settings)
    tasks.run(fresh) -- the old generation's tasks are cancelled first
    if not listen.worker then core.log("info", ("reloaded %s (%d routes)"):format(dir, #check.rows(fresh))) end
    if not listen.worker then core.metrics_reloaded(true) end
  end
  local config = {
    host = listen.host or s.host,
    port = listen.port or s.port,
    debug = s.debug,
    max_url_bytes = s.max_url_bytes,
    max_header_bytes = s.max_header_bytes,
    max_body_bytes = s.max_body_bytes,
    max_connections = s.max_connections,
    heartbeat = s.heartbeat,
    header_timeout = s.header_timeout,
    write_timeout = s.write_timeout,
    grace = s.grace,
    instruction_budget = s.instruction_budget,
    lua_memory = math.floor(s.lua_memory * 1024 * 1024),
    high_water = s.high_water,
    low_water = s.low_water,
    max_concurrent_streams = s.max_concurrent_streams,
    tls_cert = s.tls and s.tls.cert,
    tls_key = s.tls and s.tls.key,
    dispatch = server.dispatcher(function() return current end),
    reload = reload,
    start = function() tasks.run(current) end,
  }
  for k, v in pairs(listen) do config[k] = v end
  local srv, lerr = core.listen(config)
  if not srv then
    if lerr:find("^cannot listen") then
      lerr = lerr .. " (is another server running? choose another port with --port)"
    end
    return nil, 2, lerr
  end
  return srv, s
end

local WORKER_BOOTSTRAP = 'local handle, index, spec = ...; return require("flosse.cli").worker(handle, index, spec)'

--- worker(handle, index, spec): runs in a worker thread's own Lua state.
function cli.worker(handle, index, spec)
  local cfg = assert(load("return " .. spec, "=worker spec", "t", {}))()
  local srv, _, err = build(cfg.dir, cfg.flags, {
    worker = handle, host = cfg.host, port = cfg.port,
  })
  if not srv then error(("worker %d: %s"):format(index, err), 0) end
  srv:run()
  srv:close()
end

local function cpu_count()
  local p = io.popen("nproc 2>/dev/null")
  local n = p and tonumber(p:read("l") or "")
  if p then p:close() end
  return n and n >= 1 and n or 1
end

local function serve(args)
  local ok, opts = pcall(parse_serve, args)
  if not ok then
    if type(opts) == "table" then say("%s", opts.usage); return 2 end
    error(opts, 0)
  end
  if opts.help then io.stdout:write(SERVE_USAGE); return 0 end
  local dir = app_dir(opts.dir)
  if not dir then return 2 end
  local app, aerr = app_mod.load(dir)
  if not app then say("%s", aerr); return 2 end
  local workers = opts.settings.workers or app.settings.workers or cpu_count()
  if math.type(workers) ~= "integer" or workers < 1 or workers > 256 then
    say("workers must be an integer from 1 to 256"); return 2
  end
  local srv, s_or_code, err = build(dir, opts.settings, {
    reuseport = workers > 1,
  }, app)
  if not srv then say("%s", err); return s_or_code end
  local s = s_or_code
  core.set_log_level(s.log_level)
  core.set_log_format(s.log_format)
  configure_channels(s)
  -- Before any loop runs: every worker reads it.
  local rs = redis.settings(s.redis)
  core.configure_redis(rs)
  if rs then
    say("redis %s (prefix %q, timeout %g s, pool %d)", core.redis_settings().url, rs.prefix, rs.timeout, rs.pool)
  end
  if opts.reload ~= false then
    local watching, werr = srv:watch(dir)
    if not watching then say("%s (run with --no-reload to serve without watching)", werr); return 2 end
  end
  local addresses = srv:addresses()
  if workers > 1 then
    -- The others listen on the same port (SO_REUSEPORT): the kernel spreads
    -- connections over the workers.
    local port = tonumber(addresses[1]:match(":(%d+)/$"))
    local spec = serialize { dir = dir, flags = opts.settings, host = s.host, port = port, workers = workers }
    local started, werr = srv:start_workers(workers - 1, WORKER_BOOTSTRAP, spec)
    if not started then say("%s", werr); srv:close(); return 2 end
  end
  for _, url in ipairs(addresses) do say("listening on %s", url) end
  local graceful = srv:run()
  srv:close()
  return graceful and 0 or 1
end

-- The arguments of a command that takes at most one positional argument
-- and --help. Returns "help", the argument (or nil), or false after saying why.
local function one_argument(args, command, what)
  local value
  for _, a in ipairs(args) do
    if a == "-h" or a == "--help" then return "help" end
    if a:sub(1, 1) == "-" then say("unknown option %s (see flosse %s --help)", a, command); return false end
    if value then say("%s takes one %s, got another: %s", command, what, a); return false end
    value = a
  end
  return nil, value
end

local function run_check(args)
  local flag, dir = one_argument(args, "check", "folder")
  if flag == "help" then io.stdout:write(CHECK_USAGE); return 0 end
  if flag == false then return 2 end
  dir = app_dir(dir)
  if not dir then return 2 end
  local app, err = app_mod.load(dir)
  if not app then say("%s", err); return 2 end
  local _, rerr = redis.settings(app.settings.redis)
  if rerr then say("%s/settings.lua: redis: %s", dir, rerr); return 2 end
  local ok, report = pcall(check.report, app)
  if not ok then say("%s", app_mod.one_line(report)); return 2 end
  io.stdout:write(report)
  return 0
end

-- The command as the user can type it again where they ran `new`: arg[0]
-- (bin/flosse from a checkout, an absolute path), or plain "flosse" when
-- that is what PATH finds. Installed by luarocks, arg[0] is the rock's copy
-- (TREE/lib/luarocks/rocks-5.4/flosse/V/bin/flosse): TREE/bin/flosse is the
-- one to type.
local function program(arg0)
  if type(arg0) ~= "string" or arg0 == "" then return "flosse" end
  arg0 = arg0:match("^(.*)/lib/luarocks/rocks%-[%d.]+/flosse/[^/]+/bin/flosse$") and
    arg0:match("^(.*)/lib/luarocks/") .. "/bin/flosse" or arg0
  if not arg0:find("/", 1, true) then return arg0 end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    if dir:gsub("/+$", "") .. "/flosse" == arg0 then return "flosse" end
  end
  return arg0
end

local function shell_word(s)
  if s:match("^[%w%._/%-+=:@]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function run_new(args, arg0)
  local flag, name = one_argument(args, "new", "name")
  if flag == "help" then io.stdout:write(NEW_USAGE); return 0 end
  if flag == false then return 2 end
  local written, err = new.create(name)
  if not written then say("%s", err); return 2 end
  for _, path in ipairs(written) do io.stdout:write("wrote ", path, "\n") end
  io.stdout:write("run: ", shell_word(program(arg0)), " serve ", shell_word(name), "\n")
  return 0
end

local HELP = { serve = SERVE_USAGE, check = CHECK_USAGE, new = NEW_USAGE }

--- main(args) -> exit status
function cli.main(args)
  local arg0 = args and args[0] -- how bin/flosse was invoked (`flosse new` repeats it)
  args = { table.unpack(args or {}) }
  local cmd = table.remove(args, 1)
  if cmd == nil then
    io.stderr:write(USAGE)
    return 2
  elseif cmd == "-h" or cmd == "--help" or cmd == "help" then
    local topic = args[1]
    if topic and not HELP[topic] then say("no such command %s (try flosse help)", topic); return 2 end
    io.stdout:write(topic and HELP[topic] or USAGE)
    return 0
  elseif cmd == "--version" or cmd == "version" then
    io.stdout:write("flosse ", core.version, "\n")
    return 0
  elseif cmd == "serve" then
    return serve(args)
  elseif cmd == "check" then
    return run_check(args)
  elseif cmd == "new" then
    return run_new(args, arg0)
  end
  say("unknown command %s (try flosse help)", cmd)
  return 2
end

return cli
