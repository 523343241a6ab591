-- End to end: TLS's edges (issue 15), beyond spec/e2e/tls_spec.lua (which
-- covers HTTPS with curl, ALPN, the same head as cleartext, a plain-HTTP and
-- a silent client, SIGHUP with a new and a broken certificate, settings.lua's
-- paths and the start-up refusals). Here: 404/403 as in cleartext, ALPN as
-- openssl s_client sees it, TLS 1.2 as the minimum, settings.lua's tls from
-- another current folder and the flags winning, each refusal one line that
-- names the file, an HTTP/2 stream across reloads, the JSON reload events,
-- handshakes that stall or carry garbage, max_connections over TLS, and two
-- workers sharing (and reloading) one certificate. Each test makes its own
-- certificates with the openssl CLI (EC P-256, CN=localhost, SAN
-- DNS:localhost and IP:127.0.0.1) and reads with curl --cacert that
-- certificate, so a success also says which certificate the server showed.
local e2e = require "e2e"

local APP = "spec/fixtures/tlsapp"
local q = e2e.shell_quote
local socket = e2e.socket

------------------------------------------------------------------------------
-- Commands

local sh = e2e.sh

-- Makes dir/NAME-cert.pem and dir/NAME-key.pem: self-signed, subject
-- CN=localhost/O=org, the given serial. Returns the two paths.
local function make_cert(dir, name, org, serial)
  return e2e.make_cert{ cert = dir .. "/" .. name .. "-cert.pem", key = dir .. "/" .. name .. "-key.pem",
                        subject = "/CN=localhost/O=" .. org, serial = serial }
end

-- "serial=...\nsubject=..." of a certificate file.
local function cert_id(cert)
  local code, out, err = sh("openssl x509 -noout -serial -subject -in " .. q(cert))
  assert(code == 0, err)
  return out
end

-- The same for the certificate the server on port presents to a new
-- connection ("" when the handshake fails).
local function peer_id(port)
  local _, out = sh("openssl s_client -connect 127.0.0.1:" .. port .. " -servername localhost </dev/null 2>/dev/null"
    .. " | openssl x509 -noout -serial -subject")
  return out
end

local function copy(from, to) e2e.write_file(to, e2e.read_file(from)) end

-- curl url: returns exit code, the response head, the body, stderr.
-- opts: ca (--cacert), http ("--http1.1" default, or "--http2"), verbose,
-- max_time (seconds).
local function curl(url, opts)
  opts = opts or {}
  local headfile = os.tmpname()
  local args = { "curl", "-sS", "-N", "--max-time", tostring(opts.max_time or 10), "-D", headfile,
    opts.http or "--http1.1" }
  if opts.ca then args[#args + 1] = "--cacert"; args[#args + 1] = opts.ca end
  if opts.verbose then args[#args + 1] = "-v" end
  args[#args + 1] = url
  for i, a in ipairs(args) do args[i] = q(a) end
  local code, out, err = sh(table.concat(args, " "), (opts.max_time or 10) + 5)
  local head = e2e.read_file(headfile)
  os.remove(headfile)
  return code, head, out, err
end

-- A header's value in a response head (case-insensitive name), or nil.
local function header(head, name)
  for line in head:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k and k:lower() == name then return v end
  end
  return nil
end

local function status_line(head) return (head:match("^([^\r\n]*)")) end

-- Starts `curl -N url` in the background writing to outfile; returns its pid
-- (stop it with kill_pid). http: "--http1.1" (default) or "--http2".
local function background_curl(url, ca, outfile, http)
  local p = assert(io.popen("exec curl -sS -N " .. (http or "--http1.1") .. " --cacert " .. q(ca) .. " " .. q(url)
    .. " >" .. q(outfile) .. " 2>&1 </dev/null & echo $!", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  assert(pid, "could not start curl")
  return pid
end

local function kill_pid(pid)
  if pid then os.execute("kill " .. tonumber(pid) .. " 2>/dev/null") end
end

-- How many events of the forever view a background curl got so far.
local function beats(outfile)
  local n = 0
  for _ in e2e.read_file(outfile):gmatch("data: beat %d+\n") do n = n + 1 end
  return n
end

local function count(s, plain)
  local n, at = 0, 1
  while true do
    local i = s:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, i + #plain
  end
end

------------------------------------------------------------------------------
-- Raw sockets

-- A real ClientHello (offering h2 and http/1.1), caught from openssl
-- s_client by a listening socket of our own: the bytes a hostile client
-- starts with.
local function client_hello()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  srv:settimeout(e2e.TEST_TIMEOUT)
  os.execute("timeout 10 openssl s_client -connect 127.0.0.1:" .. port
    .. " -servername localhost -alpn h2,http/1.1 </dev/null >/dev/null 2>&1 &")
  local c = assert(srv:accept())
  srv:close()
  c:settimeout(e2e.TEST_TIMEOUT)
  local head = assert(c:receive(5))
  assert(head:byte(1) == 22, "not a TLS handshake record")
  local body = assert(c:receive(head:byte(4) * 256 + head:byte(5)))
  c:close()
  return head .. body
end

-- Reads c until the server closes it (or resets it), at most bound seconds.
-- Returns closed (true/false), the bytes read, the seconds it took.
local function read_until_closed(c, bound)
  c:settimeout(0.1)
  local got, start = {}, e2e.now()
  while e2e.now() - start < bound do
    local data, err, partial = c:receive(4096)
    local chunk = data or partial
    if chunk and #chunk > 0 then got[#got + 1] = chunk end
    if err and err ~= "timeout" then return true, table.concat(got), e2e.now() - start end
  end
  return false, table.concat(got), e2e.now() - start
end

local function connect(port)
  local c = assert(socket.tcp())
  c:settimeout(e2e.TEST_TIMEOUT)
  assert(c:connect("127.0.0.1", port))
  return c
end

------------------------------------------------------------------------------

local function tls_args(cert, key, more)
  local args = { "--tls-cert", cert, "--tls-key", key }
  for _, a in ipairs(more or {}) do args[#args + 1] = a end
  return args
end

describe("#e2e TLS", function()
  local tmp, cert, key
  setup(function()
    tmp = e2e.tempdir()
    cert, key = make_cert(tmp, "first", "flosse-first", 1001)
  end)
  teardown(function() e2e.remove_tree(tmp) end)

  describe("HTTP/1.1 over TLS", function()
    local plain, tls
    setup(function()
      plain = e2e.start(APP)
      tls = e2e.start(APP, { args = tls_args(cert, key) })
    end)
    teardown(function()
      if plain then plain:cleanup() end
      if tls then tls:cleanup() end
    end)

    it("404 and 403 as in cleartext", function()
      for _, path in ipairs({ "/nowhere/", "/sse/denied/" }) do
        local pcode, phead, pbody = curl("http://127.0.0.1:" .. plain.port .. path)
        local tcode, thead, tbody, terr = curl("https://127.0.0.1:" .. tls.port .. path, { ca = cert })
        assert.equal(0, pcode)
        assert.equal(0, tcode, terr)
        assert.equal(status_line(phead), status_line(thead))
        assert.equal(header(phead, "content-type"), header(thead, "content-type"))
        assert.equal(pbody, tbody)
      end
      local _, h404 = curl("https://127.0.0.1:" .. tls.port .. "/nowhere/", { ca = cert })
      local _, h403, b403 = curl("https://127.0.0.1:" .. tls.port .. "/sse/denied/", { ca = cert })
      assert.equal("HTTP/1.1 404 Not Found", status_line(h404))
      assert.equal("HTTP/1.1 403 Forbidden", status_line(h403))
      assert.equal("not over TLS either", b403)
    end)

    it("ALPN as openssl s_client sees it: h2 first, http/1.1 when only that is offered", function()
      local _, out = sh("openssl s_client -connect 127.0.0.1:" .. tls.port
        .. " -servername localhost -alpn h2,http/1.1 </dev/null 2>&1")
      assert.truthy(out:find("ALPN protocol: h2\n", 1, true), out)
      _, out = sh("openssl s_client -connect 127.0.0.1:" .. tls.port
        .. " -servername localhost -alpn http/1.1,h2 </dev/null 2>&1")
      assert.truthy(out:find("ALPN protocol: h2\n", 1, true), "the server's order, not the client's: " .. out)
      _, out = sh("openssl s_client -connect 127.0.0.1:" .. tls.port
        .. " -servername localhost -alpn http/1.1 </dev/null 2>&1")
      assert.truthy(out:find("ALPN protocol: http/1.1\n", 1, true), out)
      _, out = sh("openssl s_client -connect 127.0.0.1:" .. tls.port .. " -servername localhost </dev/null 2>&1")
      assert.truthy(out:find("No ALPN negotiated", 1, true), out)
    end)

    it("speaks TLS 1.2 and 1.3; a TLS 1.1 client gets the protocol_version alert", function()
      local _, out = sh("openssl s_client -connect 127.0.0.1:" .. tls.port .. " -tls1_2 </dev/null 2>&1")
      assert.truthy(out:find("New, TLSv1.2, Cipher is", 1, true), out)
      _, out = sh("openssl s_client -connect 127.0.0.1:" .. tls.port .. " -tls1_3 </dev/null 2>&1")
      assert.truthy(out:find("New, TLSv1.3, Cipher is", 1, true), out)
      -- SECLEVEL=0 so that the client really offers TLS 1.1: the refusal is the server's
      _, out = sh("openssl s_client -connect 127.0.0.1:" .. tls.port
        .. " -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1")
      assert.truthy(out:find("alert protocol version", 1, true), out)
      assert.falsy(out:find("New, TLSv1.1", 1, true), out)
    end)
  end)

  describe("settings.lua's tls", function()
    it("names files in the app folder, from any current folder; the flags win", function()
      local dir, top = e2e.copy_app(APP)
      copy(cert, dir .. "/cert.pem")
      copy(key, dir .. "/key.pem")
      e2e.write_file(dir .. "/settings.lua", 'return {\n  tls = { cert = "cert.pem", key = "key.pem" },\n}\n')
      local elsewhere = top .. "/elsewhere"
      assert(os.execute("mkdir " .. q(elsewhere)))
      local other_cert = make_cert(elsewhere, "flag", "flosse-flag", 3003)

      -- Started in another folder (env -C keeps the server the same
      -- process, so the harness's pid is still the server).
      local wrap, bin = e2e.WRAP, e2e.BIN
      e2e.WRAP = "env -C " .. q(elsewhere) .. (wrap ~= "" and " " .. wrap or "")
      e2e.BIN = e2e.absolute(bin)
      local env = { FLOSSE_BUILD_DIR = os.getenv("FLOSSE_BUILD_DIR") and e2e.absolute(os.getenv("FLOSSE_BUILD_DIR"))
        or e2e.absolute("build") }
      local ok, server = pcall(e2e.start, "../app", { env = env })
      local ok2, flagged = pcall(e2e.start, "../app",
        { env = env, args = { "--tls-cert", "flag-cert.pem", "--tls-key", "flag-key.pem" } })
      e2e.WRAP, e2e.BIN = wrap, bin
      assert(ok, server)
      assert(ok2, flagged)

      assert.truthy(server:log():find("listening on https://", 1, true))
      assert.equal(cert_id(cert), peer_id(server.port))
      local code, _, body, err = curl("https://127.0.0.1:" .. server.port .. "/hello/", { ca = cert })
      assert.equal(0, code, err)
      assert.equal("hello from worker 0", body)

      -- the flags, relative to the current folder, beat the setting
      assert.equal(cert_id(other_cert), peer_id(flagged.port))
      code, _, body, err = curl("https://127.0.0.1:" .. flagged.port .. "/hello/", { ca = other_cert })
      assert.equal(0, code, err)
      assert.equal("hello from worker 0", body)
      server:cleanup()
      flagged:cleanup()
      e2e.remove_tree(top)
    end)
  end)

  describe("mistakes", function()
    -- flosse serve exits 2 with one stderr line containing want (plain),
    -- and nothing that points at the port.
    local function refused(args, want, dir)
      local code, out, err = e2e.run_serve(dir or APP, args, { timeout = 10 })
      assert.equal(2, code, out .. err)
      local lines = e2e.lines(err)
      assert.equal(1, #lines, err)
      assert.truthy(lines[1]:find(want, 1, true), err)
      -- a file that will not load is not a port in use
      assert.falsy(lines[1]:find("another server", 1, true), "misleading: " .. lines[1])
      assert.falsy(lines[1]:find("--port", 1, true), "misleading: " .. lines[1])
      return lines[1]
    end

    it("each file that will not load: one line naming it, not blamed on the port", function()
      refused({ "--port", "0", "--tls-cert", tmp .. "/nope.pem", "--tls-key", key },
        "--tls-cert: cannot read " .. tmp .. "/nope.pem: No such file or directory")
      refused({ "--port", "0", "--tls-cert", cert, "--tls-key", tmp .. "/nokey.pem" },
        "--tls-key: cannot read " .. tmp .. "/nokey.pem: No such file or directory")
      e2e.write_file(tmp .. "/garbage.pem", "this is not PEM\n")
      refused({ "--port", "0", "--tls-cert", tmp .. "/garbage.pem", "--tls-key", key },
        "cannot load the TLS certificate " .. tmp .. "/garbage.pem: ")
      refused({ "--port", "0", "--tls-cert", cert, "--tls-key", tmp .. "/garbage.pem" }, tmp .. "/garbage.pem")
      local _, other_key = make_cert(tmp, "mismatch", "flosse-mismatch", 4004)
      refused({ "--port", "0", "--tls-cert", cert, "--tls-key", other_key },
        "the TLS key " .. other_key .. " does not match the certificate " .. cert)
    end)

    it("settings.lua's tls naming a file that is not a certificate: the file in the app folder", function()
      local dir, top = e2e.copy_app(APP)
      copy(key, dir .. "/key.pem")
      e2e.write_file(dir .. "/junk.pem", "not a certificate\n")
      e2e.write_file(dir .. "/settings.lua", 'return { tls = { cert = "junk.pem", key = "key.pem" } }\n')
      refused({ "--port", "0" }, "cannot load the TLS certificate " .. dir .. "/junk.pem", dir)
      e2e.remove_tree(top)
    end)

    it("--max-concurrent-streams above 1000000 is refused", function()
      refused({ "--port", "0", "--max-concurrent-streams", "1000001" },
        "max_concurrent_streams (--max-concurrent-streams) must be from 1 to 1000000")
    end)

    it("flosse check and serve: tls = { cert = 1 }, a string, a missing key, with FILE:LINE", function()
      for _, case in ipairs({
        { 'return {\n  debug = false,\n  tls = { cert = 1, key = "key.pem" },\n}\n',
          ":3: tls.cert must be a file's path (a string), not 1" },
        { 'return {\n  tls = "cert.pem",\n}\n', ":2: tls must be a table { cert = FILE, key = FILE }, not string" },
        { 'return {\n  debug = false,\n  tls = { cert = "cert.pem" },\n}\n',
          ":3: tls needs both cert and key (key is missing" },
      }) do
        local dir, top = e2e.copy_app(APP)
        copy(cert, dir .. "/cert.pem")
        e2e.write_file(dir .. "/settings.lua", case[1])
        local want = dir .. "/settings.lua" .. case[2]
        local code, out, err = e2e.run_flosse({ "check", dir })
        assert.equal(2, code, out .. err)
        assert.truthy(err:find(want, 1, true), want .. "\n" .. err)
        local scode, sout, serr = e2e.run_serve(dir, { "--port", "0" }, { timeout = 10 })
        assert.equal(2, scode, sout .. serr)
        assert.truthy(serr:find(want, 1, true), serr)
        e2e.remove_tree(top)
      end
    end)
  end)

  describe("SIGHUP reloads the certificate", function()
    local function live_server(extra, workers)
      local dir = e2e.tempdir()
      local a_cert, a_key = make_cert(dir, "a", "flosse-before", 5005)
      local b_cert, b_key = make_cert(dir, "b", "flosse-after", 6006)
      local live_cert, live_key = dir .. "/live-cert.pem", dir .. "/live-key.pem"
      copy(a_cert, live_cert)
      copy(a_key, live_key)
      local server = e2e.start(APP, { workers = workers, args = tls_args(live_cert, live_key, extra) })
      return server, {
        dir = dir, a = a_cert, b = b_cert, live = live_cert,
        swap = function() copy(b_key, live_key); copy(b_cert, live_cert) end,
      }
    end

    it("an HTTP/2 stream and an HTTP/1.1 one opened before go on across a reload and a failed one", function()
      local server, c = live_server()
      local out, out2 = c.dir .. "/stream.out", c.dir .. "/stream-h2.out"
      local pid = background_curl("https://127.0.0.1:" .. server.port .. "/sse/forever/", c.a, out)
      local pid2 = background_curl("https://127.0.0.1:" .. server.port .. "/sse/forever/", c.a, out2, "--http2")
      finally(function()
        kill_pid(pid)
        kill_pid(pid2)
        server:cleanup()
        e2e.remove_tree(c.dir)
      end)
      assert.equal(cert_id(c.a), peer_id(server.port))
      assert.truthy(e2e.eventually(function() return beats(out) >= 2 end), e2e.read_file(out))
      assert.truthy(e2e.eventually(function() return beats(out2) >= 2 end), e2e.read_file(out2))

      c.swap()
      server:signal("HUP")
      assert.truthy(server:wait_log("flosse: TLS certificate reloaded\n"), server:log())
      local at, at2 = beats(out), beats(out2)
      assert.truthy(e2e.eventually(function() return beats(out) >= at + 3 end),
        "the stream stopped after the reload: " .. e2e.read_file(out))
      assert.truthy(e2e.eventually(function() return beats(out2) >= at2 + 3 end),
        "the HTTP/2 stream stopped after the reload: " .. e2e.read_file(out2))
      assert.are_not.equal(cert_id(c.a), cert_id(c.b))
      assert.equal(cert_id(c.b), peer_id(server.port))
      local code, _, body, err = curl("https://127.0.0.1:" .. server.port .. "/hello/", { ca = c.b, verbose = true })
      assert.equal(0, code, err)
      assert.truthy(err:find("O=flosse-after", 1, true), err)
      assert.equal("hello from worker 0", body)

      -- a broken file: one line, the old (now: b) certificate stays, streams go on
      e2e.write_file(c.live, "garbage, not a certificate\n")
      server:signal("HUP")
      local log = server:wait_log("flosse: TLS certificate reload failed, keeping the old one: ")
      assert.truthy(log, server:log())
      assert.equal(1, count(log, "TLS certificate reload failed"))
      local named = "TLS certificate reload failed, keeping the old one: [^\n]*" .. c.live:gsub("%p", "%%%0")
      assert.truthy(log:find(named), log)
      assert.equal(1, count(log, "TLS certificate reloaded"))
      assert.equal(cert_id(c.b), peer_id(server.port))
      code, _, body, err = curl("https://127.0.0.1:" .. server.port .. "/hello/", { ca = c.b })
      assert.equal(0, code, err)
      assert.equal("hello from worker 0", body)
      at = beats(out)
      at2 = beats(out2)
      assert.truthy(e2e.eventually(function() return beats(out) >= at + 3 end),
        "the stream stopped after the failed reload: " .. e2e.read_file(out))
      assert.truthy(e2e.eventually(function() return beats(out2) >= at2 + 3 end),
        "the HTTP/2 stream stopped after the failed reload: " .. e2e.read_file(out2))
      assert.is_true(server:alive())
    end)

    it("--log-format json: the lifecycle events tls_reload and tls_reload_failed", function()
      local server, c = live_server({ "--log-format", "json" })
      finally(function()
        server:cleanup()
        e2e.remove_tree(c.dir)
      end)
      local function event(name)
        return e2e.eventually(function()
          for line in server:log():gmatch("[^\n]+") do
            local okj, o = pcall(e2e.json_decode, line)
            if okj and type(o) == "table" and o.event == name then return o end
          end
        end)
      end
      c.swap()
      server:signal("HUP")
      local o = event("tls_reload")
      assert.truthy(o, server:log())
      assert.equal("lifecycle", o.kind)
      assert.equal("info", o.level)
      assert.equal("TLS certificate reloaded", o.msg)
      e2e.write_file(c.live, "garbage\n")
      server:signal("HUP")
      o = event("tls_reload_failed")
      assert.truthy(o, server:log())
      assert.equal("lifecycle", o.kind)
      assert.equal("error", o.level)
      assert.truthy(o.msg:find("TLS certificate reload failed, keeping the old one: ", 1, true), o.msg)
      assert.equal(cert_id(c.b), peer_id(server.port))
    end)
  end)

  describe("hostile clients", function()
    local server, hello, baseline
    setup(function()
      server = e2e.start(APP, { args = tls_args(cert, key, { "--header-timeout", "1" }) })
      hello = client_hello()
      -- the fds of a server that has served one TLS client
      assert.equal(0, (curl("https://127.0.0.1:" .. server.port .. "/hello/", { ca = cert })))
      baseline = e2e.fd_count(server.pid)
    end)
    teardown(function() if server then server:cleanup() end end)

    -- another client is served; the server let go of the hostile one's fd
    local function still_serving()
      local code, _, body, err = curl("https://127.0.0.1:" .. server.port .. "/hello/", { ca = cert })
      assert.equal(0, code, err)
      assert.equal("hello from worker 0", body)
      assert.is_true(server:alive())
      assert.truthy(e2e.eventually(function() return e2e.fd_count(server.pid) <= baseline end),
        "fds: " .. tostring(e2e.fd_count(server.pid)) .. " > " .. baseline)
    end

    it("a handshake that stops halfway through the ClientHello is closed after header_timeout", function()
      local c = connect(server.port)
      assert(c:send(hello:sub(1, 40)))
      local closed, _, took = read_until_closed(c, 1 + e2e.TEST_TIMEOUT)
      c:close()
      assert.is_true(closed, "still open after " .. took .. " s")
      still_serving()
    end)

    it("a client that sends its ClientHello and then nothing is closed after header_timeout", function()
      local c = connect(server.port)
      assert(c:send(hello))
      local closed, bytes, took = read_until_closed(c, 1 + e2e.TEST_TIMEOUT)
      c:close()
      assert.is_true(closed, "still open after " .. took .. " s")
      assert.equal(22, bytes:byte(1), "no ServerHello came back") -- the server did answer the hello
      still_serving()
    end)

    it("garbage after the ClientHello closes that connection", function()
      local c = connect(server.port)
      assert(c:send(hello .. string.rep("\255\0garbage", 64)))
      local closed, bytes, took = read_until_closed(c, e2e.TEST_TIMEOUT)
      c:close()
      assert.is_true(closed, "still open after " .. took .. " s")
      assert.falsy(bytes:find("HTTP/", 1, true), bytes)
      still_serving()
    end)

    it("random bytes instead of a ClientHello close that connection", function()
      local c = connect(server.port)
      local junk = {}
      for i = 1, 2048 do junk[i] = string.char((i * 73 + 41) % 256) end
      assert(c:send(table.concat(junk)))
      local closed, bytes = read_until_closed(c, e2e.TEST_TIMEOUT)
      c:close()
      assert.is_true(closed)
      assert.falsy(bytes:find("HTTP/", 1, true), bytes)
      still_serving()
    end)
  end)

  it("over max_connections a TLS client is closed, not sent a plain-text 503", function()
    local server = e2e.start(APP, { args = tls_args(cert, key, { "--max-connections", "1" }) })
    local out = tmp .. "/capped.out"
    local pid = background_curl("https://127.0.0.1:" .. server.port .. "/sse/forever/", cert, out)
    finally(function()
      kill_pid(pid)
      server:cleanup()
    end)
    assert.truthy(e2e.eventually(function() return beats(out) >= 1 end), e2e.read_file(out))
    local c = connect(server.port)
    assert(c:send(client_hello()))
    local closed, bytes = read_until_closed(c, e2e.TEST_TIMEOUT)
    c:close()
    assert.is_true(closed)
    assert.falsy(bytes:find("HTTP/1.1 503", 1, true), bytes)
    assert.falsy(bytes:find("HTTP/", 1, true), bytes)
    assert.truthy(server:wait_log("refused a connection"), server:log())
    kill_pid(pid)
    pid = nil
    assert.truthy(e2e.eventually(function()
      return curl("https://127.0.0.1:" .. server.port .. "/hello/", { ca = cert }) == 0
    end), server:log())
  end)

  describe("--workers 2", function()
    it("a burst of 20 TLS connections all succeed, and SIGHUP reloads the certificate for every worker", function()
      local dir = e2e.tempdir()
      local a_cert, a_key = make_cert(dir, "a", "flosse-before", 7007)
      local b_cert, b_key = make_cert(dir, "b", "flosse-after", 8008)
      local live_cert, live_key = dir .. "/live-cert.pem", dir .. "/live-key.pem"
      copy(a_cert, live_cert)
      copy(a_key, live_key)
      local server = e2e.start(APP, { workers = 2, args = tls_args(live_cert, live_key) })
      finally(function()
        server:cleanup()
        e2e.remove_tree(dir)
      end)
      local url = "https://127.0.0.1:" .. server.port .. "/hello/"

      -- 20 at once, each its own connection; --cacert a: each saw a
      local code, out, err = sh(("for i in $(seq 20); do (curl -sS --http1.1 --max-time 15 --cacert %s %s;"
        .. " echo \" rc=$?\") >%s/burst.$i 2>&1 & done; wait; cat %s/burst.*")
        :format(q(a_cert), q(url), q(dir), q(dir)), 30)
      assert.equal(0, code, err)
      local workers_seen, ok = {}, 0
      for w, rc in out:gmatch("hello from worker (%d+) rc=(%d+)") do
        if rc == "0" then ok = ok + 1 end
        workers_seen[w] = true
      end
      assert.equal(20, ok, out)

      -- Both workers serve TLS with the shared certificate (more
      -- connections until each has answered one, bounded).
      local function both_workers(ca, seen)
        for _ = 1, 100 do
          if seen["0"] and seen["1"] then return seen end
          local rc, _, body, cerr = curl(url, { ca = ca })
          assert.equal(0, rc, cerr)
          local w = body:match("^hello from worker (%d+)$")
          assert.truthy(w, body)
          seen[w] = true
        end
        return seen
      end
      local seen = both_workers(a_cert, workers_seen)
      assert.truthy(seen["0"] and seen["1"], "one worker served every connection")

      copy(b_key, live_key)
      copy(b_cert, live_cert)
      server:signal("HUP")
      assert.truthy(server:wait_log("flosse: TLS certificate reloaded\n"), server:log())
      -- --cacert b only: every connection, on either worker, saw b
      seen = both_workers(b_cert, {})
      assert.truthy(seen["0"] and seen["1"], "after the reload, one worker served every connection")
      for _ = 1, 6 do assert.equal(cert_id(b_cert), peer_id(server.port)) end
      -- one reload for all the workers
      assert.truthy(e2e.eventually(function() return server:log():find("reloaded " .. APP, 1, true) end),
        server:log())
      assert.equal(1, count(server:log(), "TLS certificate reloaded"))
    end)
  end)
end)
