-- End to end (issue 14): the deployment files of examples/, as a user runs
-- them. Debian's nginx (nginx-light) runs examples/nginx.conf itself, only
-- its two addresses rewritten to free loopback ports, in front of flosse:
-- a stream passes unbuffered, heartbeats arrive, X-Forwarded-For reaches
-- request.remote_addr through trusted_proxies, and a reload of flosse keeps
-- the streams nginx carries. Then examples/flosse.service is checked by
-- systemd-analyze verify, and the signals it relies on (HUP reloads, TERM
-- drains) by the real server.
local e2e = require "e2e"
local socket = require "socket"

local APP = "spec/fixtures/deployment"
local NGINX = os.getenv("FLOSSE_TEST_NGINX") or "/usr/sbin/nginx"

local function executable(path)
  return os.execute("test -x " .. e2e.shell_quote(path)) == true
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok == true, out, code
end

-- examples/nginx.conf with its upstream and listen addresses rewritten; fails
-- if either is not there exactly once (the example changed under the spec).
local function example_conf(listen_port, upstream_port)
  local src = e2e.read_file("examples/nginx.conf")
  local conf, n1 = src:gsub("\n(%s*)server 127%.0%.0%.1:8080;", "\n%1server 127.0.0.1:" .. upstream_port .. ";")
  local n2
  conf, n2 = conf:gsub("\n(%s*)listen 80;", "\n%1listen 127.0.0.1:" .. listen_port .. ";")
  assert(n1 == 1 and n2 == 1, "examples/nginx.conf: expected one 'server 127.0.0.1:8080;' and one 'listen 80;'")
  return conf
end

-- An nginx master of the spec's own: a temp prefix holding its main config
-- (which includes the example as Debian's conf.d would), pid, logs and temp
-- folders, so it runs as any user beside a system nginx.
local Nginx = {}
Nginx.__index = Nginx

local function start_nginx(upstream_port)
  local tmp = e2e.tempdir()
  local self = setmetatable({ tmp = tmp, port = e2e.free_port() }, Nginx)
  e2e.write_file(tmp .. "/flosse.conf", example_conf(self.port, upstream_port))
  local temps = {}
  for _, t in ipairs({ "client_body", "proxy", "fastcgi", "uwsgi", "scgi" }) do
    temps[#temps + 1] = ("%s_temp_path %s/%s;"):format(t, tmp, t)
  end
  e2e.write_file(tmp .. "/nginx.conf", table.concat({
    "worker_processes 1;",
    "pid " .. tmp .. "/nginx.pid;",
    "error_log " .. tmp .. "/error.log info;",
    "events { worker_connections 512; }",
    "http {",
    "  access_log " .. tmp .. "/access.log;",
    "  " .. table.concat(temps, "\n  "),
    "  include " .. tmp .. "/flosse.conf;",
    "}", "" }, "\n"))
  local ok, out = run(("%s -t -p %s -c %s/nginx.conf -e %s/error.log"):format(NGINX, tmp, tmp, tmp))
  assert(ok, "nginx -t refused the config:\n" .. out)
  os.execute(("%s -p %s -c %s/nginx.conf -e %s/error.log -g 'daemon off;' >%s/stdout.log 2>&1 &")
    :format(NGINX, tmp, tmp, tmp, tmp))
  local up = e2e.eventually(function()
    local c = socket.tcp()
    c:settimeout(0.5)
    local connected = c:connect("127.0.0.1", self.port)
    c:close()
    return connected and e2e.read_file(tmp .. "/nginx.pid") ~= ""
  end)
  if not up then
    local log = e2e.read_file(tmp .. "/error.log") or ""
    self:stop()
    error("nginx did not start on port " .. self.port .. ":\n" .. log)
  end
  return self
end

function Nginx:pid()
  local s = e2e.read_file(self.tmp .. "/nginx.pid")
  return s and s:match("%d+")
end

-- Stops the master (QUIT: graceful; KILL after a bound) and removes its folder.
function Nginx:stop()
  local pid = self:pid()
  if pid then
    os.execute("kill -QUIT " .. pid .. " 2>/dev/null")
    local gone = e2e.eventually(function() return os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= true end, 10)
    if not gone then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  end
  e2e.remove_tree(self.tmp)
end

function Nginx:error_log() return e2e.read_file(self.tmp .. "/error.log") or "" end

-- The next event with data (heartbeats are events without).
local function next_data(c, timeout)
  repeat
    local ev, err = c:read_event(timeout)
    if not ev then return nil, err end
    if ev.data then return ev end
  until false
end

describe("#e2e deployment: flosse behind nginx with examples/nginx.conf", function()
  if not executable(NGINX) then
    pending("nginx is not installed (apt-get install nginx-light): " .. NGINX)
    return
  end

  local server, nginx, dir, tmp

  setup(function()
    dir, tmp = e2e.copy_app(APP)
    server = e2e.start(dir, { workers = 2 })
    nginx = start_nginx(server.port)
  end)

  teardown(function()
    if nginx then nginx:stop() end
    if server then server:cleanup() end
    e2e.remove_tree(tmp)
  end)

  local function why() return "\nflosse:\n" .. server:log() .. "\nnginx:\n" .. nginx:error_log() end

  it("passes a stream unbuffered: the first event arrives while the view still sleeps", function()
    local c, head = e2e.open_stream(nginx.port, "/sse/slow/?pause=4")
    assert.equal(200, head.status, why())
    assert.matches("^text/event%-stream", head.headers["content-type"])
    assert.is_nil(head.headers["content-length"])
    local first = assert(next_data(c))
    assert.equal("first", first.data)
    -- A proxy that held the response (a cache, a whole-response buffer)
    -- would hand both events over together once the view returned; passed
    -- through, nothing of the second has arrived yet.
    c:fill(e2e.now() + 0.5)
    assert.is_nil(c.buf:find("second", 1, true), "the second event came with the first:" .. why())
    local second = assert(next_data(c, e2e.TEST_TIMEOUT + 4))
    assert.equal("second", second.data)
    c:close()
  end)

  it("heartbeats (heartbeat = 1) reach the client through nginx", function()
    local c, head = e2e.open_stream(nginx.port, "/sse/slow/?pause=3.5")
    assert.equal(200, head.status, why())
    assert.is_true(e2e.pump({ c }, function() return c:heartbeats() >= 2 end, e2e.TEST_TIMEOUT + 3.5),
      "heartbeats through nginx: " .. c:show(400) .. why())
    c:close()
  end)

  it("X-Forwarded-For: nginx appends the peer, trusted_proxies makes the client remote_addr", function()
    local r = e2e.get(nginx.port, "/addr/", { "X-Forwarded-For: 203.0.113.7" })
    assert.equal(200, r.status, why())
    assert.same({ remote_addr = "203.0.113.7", peer_addr = "127.0.0.1" }, e2e.json_decode(r.body))
    -- Without the header, the client is nginx's peer: this test's socket.
    r = e2e.get(nginx.port, "/addr/")
    assert.same({ remote_addr = "127.0.0.1", peer_addr = "127.0.0.1" }, e2e.json_decode(r.body))
  end)

  it("a 404 passes through as flosse's", function()
    local r = e2e.get(nginx.port, "/no/such/route/")
    assert.equal(404, r.status, why())
  end)

  it("a reload of flosse (an edit, then SIGHUP) keeps the streams nginx carries; new requests get new code", function()
    local c, head = e2e.open_stream(nginx.port, "/sse/ticks/?n=200")
    assert.equal(200, head.status, why())
    assert.equal("v1 1", assert(next_data(c)).data)
    local views = dir .. "/views.lua"
    e2e.write_file(views, (e2e.read_file(views):gsub('local VERSION = "v1"', 'local VERSION = "v2"')))
    assert.is_true(e2e.eventually(function()
      local r = e2e.get(nginx.port, "/version/")
      return r.status == 200 and r.body == "v2"
    end), "the edit was not served through nginx" .. why())
    server:signal("HUP")
    assert.truthy(server:wait_log("flosse: SIGHUP: reloading"), why())
    -- The stream that started before both reloads goes on, in order, with
    -- the code it started with.
    local last = 1
    for _ = 1, 6 do
      local ev = assert(next_data(c), "the stream ended at the reload" .. why())
      local v, i = ev.data:match("^(v%d) (%d+)$")
      assert.equal("v1", v)
      assert.equal(last + 1, tonumber(i))
      last = tonumber(i)
    end
    c:close()
    local c2 = e2e.open_stream(nginx.port, "/sse/ticks/?n=1")
    assert.equal("v2 1", assert(next_data(c2)).data)
    c2:close()
  end)
end)

describe("#e2e deployment: examples/flosse.service", function()
  local UNIT = "examples/flosse.service"

  -- The unit with ExecStart pointing at this checkout's bin/flosse (verify
  -- checks that the program exists) and the app at the example app.
  local function unit_copy(tmp, edit)
    local src = e2e.read_file(UNIT)
    local text, n = src:gsub("/usr/local/bin/flosse", e2e.absolute("bin/flosse"))
    assert(n >= 1, UNIT .. ": ExecStart is expected to run /usr/local/bin/flosse")
    text = text:gsub("/srv/flosse/app", e2e.absolute("scripts"))
    if edit then text = edit(text) end
    local path = tmp .. "/flosse.service"
    e2e.write_file(path, text)
    return path
  end

  it("has the directives the docs promise", function()
    local src = e2e.read_file(UNIT)
    assert.truthy(src:find("\nKillSignal=SIGTERM", 1, true))
    assert.truthy(src:find("\nExecReload=/bin/kill -HUP $MAINPID", 1, true))
    assert.truthy(src:find("\nLimitNOFILE=%d+"))
    local stop = tonumber(src:match("\nTimeoutStopSec=(%d+)"))
    local grace = tonumber(src:match("%-%-grace (%d+)")) or 5
    assert.is_true(stop ~= nil and stop > grace, "TimeoutStopSec must cover the drain (--grace)")
  end)

  it("passes systemd-analyze verify (and a broken copy does not)", function()
    if not executable("/usr/bin/systemd-analyze") then
      pending("systemd-analyze is not installed")
      return
    end
    local tmp = e2e.tempdir()
    finally(function() e2e.remove_tree(tmp) end)
    local ok, out = run("systemd-analyze verify " .. e2e.shell_quote(unit_copy(tmp)))
    assert.is_true(ok, out)
    assert.is_nil(out:find(tmp .. "/flosse.service:", 1, true), "verify warned about the unit:\n" .. out)
    local broken = tmp .. "/broken"
    os.execute("mkdir " .. broken)
    local bad = unit_copy(broken, function(t)
      return (t:gsub("\nExecStart=[^\n]*", "\nExecStart=/nonexistent/flosse serve"))
    end)
    local ok2, out2 = run("systemd-analyze verify " .. e2e.shell_quote(bad))
    assert.is_false(ok2 and not out2:find("nonexistent", 1, true), "verify accepted a unit with no program:\n" .. out2)
  end)

  it("the signals it sends: HUP reloads, TERM ends every stream and exits within TimeoutStopSec", function()
    local s = e2e.start(APP, { workers = 2 })
    finally(function() s:cleanup() end)
    local c = e2e.open_stream(s.port, "/sse/ticks/?n=1000")
    assert(next_data(c))
    s:signal("HUP")
    assert.truthy(s:wait_log("flosse: reloaded"), s:log())
    assert(next_data(c), "the stream ended at SIGHUP")
    local stop = tonumber(e2e.read_file(UNIT):match("\nTimeoutStopSec=(%d+)"))
    s:signal("TERM")
    assert.is_true(e2e.pump({ c }, function() return c.stream_ended or c.stream_closed end, stop),
      "the stream did not end within TimeoutStopSec after SIGTERM:\n" .. s:log())
    assert.is_true(e2e.eventually(function() return not s:alive() end, stop), s:log())
  end)
end)
