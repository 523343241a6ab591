-- End to end (issue 15, TLS): `flosse serve --tls-cert --tls-key` and
-- settings.lua's tls serve HTTPS, checked with curl and openssl s_client
-- against certificates the openssl command line makes here: events over
-- HTTP/1.1 with the same wire headers as cleartext, ALPN h2, a SIGHUP with a
-- new certificate (open streams go on, new connections get it) and with a
-- broken one (one error line, the old one stays), a plain-HTTP client and
-- one that never shakes hands dropped without harm to the others.
local e2e = require "e2e"

local q = e2e.shell_quote

-- Runs a shell command line; returns its exit code and output (stdout and stderr).
local function sh(cmd)
  local code, out, err = e2e.sh(cmd)
  return code, out .. err
end

-- A self-signed certificate for 127.0.0.1 and localhost with this serial
-- (RSA 2048 or EC P-256), written to cert and key.
local function make_cert(cert, key, serial, kind)
  e2e.make_cert{ cert = cert, key = key, serial = serial, kind = kind, subject = "/CN=flosse-test-" .. serial }
end

-- The serial (decimal) and subject of the certificate a new connection to
-- port is shown, from openssl s_client.
local function served_cert(port)
  local code, out = sh(("timeout 10 openssl s_client -connect 127.0.0.1:%d -servername localhost </dev/null"
    .. " 2>/dev/null | openssl x509 -noout -serial -subject"):format(port))
  if code ~= 0 then return nil, out end
  local hex = out:match("serial=(%x+)")
  return hex and tonumber(hex, 16), out:match("subject=[^\n]*")
end

-- curl in the background (its output to a file): an open stream to read
-- while something else happens. Returns { pid =, out = file }.
local function curl_stream(url, cacert)
  local out = os.tmpname()
  local p = assert(io.popen(("exec curl -sS -N --http1.1 --max-time 60 --cacert %s %s >%s 2>&1 </dev/null & echo $!")
    :format(q(cacert), q(url), q(out)), "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  return { pid = pid, out = out }
end

local function stop_curl(c)
  os.execute("kill " .. c.pid .. " 2>/dev/null")
  os.remove(c.out)
end

-- The number of "event: tick" frames a background curl has received.
local function ticks(c)
  local n = 0
  for _ in e2e.read_file(c.out):gmatch("event: tick\n") do n = n + 1 end
  return n
end

-- Waits (bounded) until c has received more than n ticks; returns the count.
local function more_ticks_than(c, n)
  return e2e.eventually(function()
    local now = ticks(c)
    return now > n and now
  end)
end

local function count(s, plain)
  local n, at = 0, 1
  while true do
    local i = s:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, i + #plain
  end
end

-- The head of a response (status line and headers, CR/LF stripped, sorted),
-- with curl -i; the body is the ticker's two events.
local function wire_head(url, extra)
  local code, out = sh("curl -sS -i --http1.1 --max-time 10 " .. (extra or "") .. " " .. q(url))
  assert(code == 0, out)
  local head = out:match("^(.-)\r\n\r\n")
  assert(head, out)
  local lines = {}
  for line in head:gmatch("[^\r\n]+") do lines[#lines + 1] = line end
  table.sort(lines)
  return lines, out:sub(#head + 5)
end

describe("#e2e TLS", function()
  local tmp, app, cert, key, server, plain
  setup(function()
    app, tmp = e2e.copy_app("spec/fixtures/app")
    assert(os.execute("mkdir " .. q(app .. "/certs")))
    cert, key = app .. "/certs/cert.pem", app .. "/certs/key.pem"
    make_cert(cert, key, 1, "rsa")
    -- Two workers: they share the certificate, and a reload is the main's.
    server = e2e.start(app, { workers = 2, args = { "--tls-cert", cert, "--tls-key", key,
      "--header-timeout", "1", "--no-reload" } })
    plain = e2e.start(app, { args = { "--no-reload" } })
  end)
  teardown(function()
    if server then server:cleanup() end
    if plain then plain:cleanup() end
    e2e.remove_tree(tmp)
  end)

  local function url(path, port) return ("https://127.0.0.1:%d%s"):format(port or server.port, path) end

  it("says https:// when it starts, and an SSE stream's events arrive over HTTP/1.1", function()
    assert.truthy(server:log():find("listening on https://127.0.0.1:" .. server.port .. "/", 1, true))
    local code, out = sh(("curl -sS -N --http1.1 --max-time 10 --cacert %s %s"):format(q(cert),
      q(url("/ticker/?n=3&every=0.05"))))
    assert.equal(0, code, out)
    assert.equal(3, count(out, "event: tick\n"), out)
    assert.truthy(out:find('data: {"i":3}', 1, true), out)
  end)

  it("sends the same head and body as over cleartext", function()
    local tls_head, tls_body = wire_head(url("/ticker/?n=2&every=0.05"), "--cacert " .. q(cert))
    local clear_head, clear_body = wire_head(("http://127.0.0.1:%d/ticker/?n=2&every=0.05"):format(plain.port))
    assert.same(clear_head, tls_head)
    assert.equal(clear_body, tls_body)
    assert.truthy(tls_body:find("event: tick", 1, true), tls_body)
  end)

  it("ALPN: curl --http2 gets h2, and the events", function()
    local code, out = sh(("curl -sS -v -N --http2 --max-time 10 --cacert %s %s"):format(q(cert),
      q(url("/ticker/?n=2&every=0.05"))))
    assert.equal(0, code, out)
    assert.truthy(out:find("ALPN: server accepted h2", 1, true), out)
    assert.truthy(out:find("< HTTP/2 200", 1, true), out)
    assert.equal(2, count(out, "event: tick\n"), out)
  end)

  it("ALPN: a client that offers only http/1.1 gets it", function()
    local code, out = sh(("curl -sS -v --http1.1 --max-time 10 --cacert %s %s"):format(q(cert),
      q(url("/ticker/?n=1"))))
    assert.equal(0, code, out)
    assert.truthy(out:find("ALPN: server accepted http/1.1", 1, true), out)
  end)

  it("drops a plain-HTTP client on the TLS port; a stream open meanwhile goes on", function()
    local stream = curl_stream(url("/tracked/?key=plain"), cert)
    local before = assert(more_ticks_than(stream, 0), "the stream did not start")
    local c = e2e.connect(server.port)
    assert(c:send("GET /ticker/?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"))
    local closed, rest = c:wait_closed()
    c:close()
    assert.is_true(closed)
    assert.is_nil(rest:find("HTTP/1.1", 1, true), "no cleartext answer")
    assert(more_ticks_than(stream, before + 2), "the stream stopped")
    assert.is_true(server:alive())
    stop_curl(stream)
  end)

  it("closes a connection that never starts its handshake after header_timeout", function()
    local stream = curl_stream(url("/tracked/?key=silent"), cert)
    local before = assert(more_ticks_than(stream, 0), "the stream did not start")
    local c = e2e.connect(server.port)
    -- header_timeout is 1 s here; the bound is generous.
    local closed = c:wait_closed(e2e.TEST_TIMEOUT)
    c:close()
    assert.is_true(closed, "still open")
    assert(more_ticks_than(stream, before + 2), "the stream stopped")
    stop_curl(stream)
  end)

  it("SIGHUP with a new certificate: an open stream goes on, a new connection gets it", function()
    assert.equal(1, (served_cert(server.port)))
    local stream = curl_stream(url("/tracked/?key=reload"), cert)
    local before = assert(more_ticks_than(stream, 0), "the stream did not start")
    -- The new pair, written under other names first and moved into place,
    -- as an operator's renewal would.
    make_cert(app .. "/certs/new.pem", app .. "/certs/new.key", 2)
    assert(os.rename(app .. "/certs/new.key", key))
    assert(os.rename(app .. "/certs/new.pem", cert))
    local marks = count(server:log(), "TLS certificate reloaded")
    server:signal("HUP")
    assert(e2e.eventually(function() return count(server:log(), "TLS certificate reloaded") > marks end),
      server:log())
    local serial, subject = served_cert(server.port)
    assert.equal(2, serial, subject)
    assert.truthy(subject:find("flosse-test-2", 1, true), subject)
    -- curl trusts the new certificate now (--cacert is the new file)
    local code, out = sh(("curl -sS --http1.1 --max-time 10 --cacert %s %s"):format(q(cert),
      q(url("/ticker/?n=1"))))
    assert.equal(0, code, out)
    assert(more_ticks_than(stream, before + 3), "the stream opened before the reload stopped")
    assert.equal(marks + 1, count(server:log(), "TLS certificate reloaded"), "one line, for every worker")
    stop_curl(stream)
  end)

  it("SIGHUP with a broken certificate: one error line, the old one stays, streams go on", function()
    local stream = curl_stream(url("/tracked/?key=broken"), cert)
    local before = assert(more_ticks_than(stream, 0), "the stream did not start")
    local good = e2e.read_file(cert)
    e2e.write_file(cert, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    local reloads = count(server:log(), "flosse: reloaded ")
    server:signal("HUP")
    local line = "TLS certificate reload failed, keeping the old one: "
    -- the app's reload comes after the certificate's: the SIGHUP is done then
    assert(e2e.eventually(function() return count(server:log(), "flosse: reloaded ") > reloads end),
      server:log())
    local log = server:log()
    assert.equal(1, count(log, line), log)
    assert.truthy(log:find(line .. "cannot load the TLS certificate " .. cert, 1, true), log)
    assert.equal(2, (served_cert(server.port)))
    assert(more_ticks_than(stream, before + 3), "the stream stopped")
    e2e.write_file(cert, good)
    stop_curl(stream)
  end)
end)

describe("#e2e TLS from settings.lua", function()
  local tmp, app
  setup(function()
    app, tmp = e2e.copy_app("spec/fixtures/app")
    assert(os.execute("mkdir " .. q(app .. "/certs")))
    make_cert(app .. "/certs/cert.pem", app .. "/certs/key.pem", 7)
  end)
  teardown(function() e2e.remove_tree(tmp) end)

  it("tls = { cert =, key = } is read from the app folder", function()
    e2e.write_file(app .. "/settings.lua",
      'return {\n  debug = true,\n  tls = { cert = "certs/cert.pem", key = "certs/key.pem" },\n}\n')
    local server = e2e.start(app, { args = { "--no-reload" } })
    local code, out = sh(("curl -sS -N --http1.1 --max-time 10 --cacert %s https://127.0.0.1:%d/ticker/?n=1")
      :format(q(app .. "/certs/cert.pem"), server.port))
    server:cleanup()
    assert.equal(0, code, out)
    assert.equal(1, count(out, "event: tick\n"), out)
  end)

  it("flosse check and serve name a certificate that cannot be read, with the line", function()
    e2e.write_file(app .. "/settings.lua",
      'return {\n  debug = true,\n  tls = { cert = "certs/nope.pem", key = "certs/key.pem" },\n}\n')
    local want = "/settings.lua:3: tls.cert: cannot read " .. app .. "/certs/nope.pem: No such file or directory"
    local code, out, err = e2e.run_flosse({ "check", app })
    assert.equal(2, code, out .. err)
    assert.truthy(err:find(want, 1, true), err)
    code, out, err = e2e.run_serve(app, { "--port", "0" })
    assert.equal(2, code, out .. err)
    assert.truthy(err:find(want, 1, true), err)
  end)

  it("an unknown key in tls is refused", function()
    e2e.write_file(app .. "/settings.lua",
      'return {\n  tls = { cert = "certs/cert.pem", key = "certs/key.pem", ca = "x" },\n}\n')
    local code, out, err = e2e.run_flosse({ "check", app })
    assert.equal(2, code, out .. err)
    assert.truthy(err:find('settings.lua:2: tls has an unknown key "ca"', 1, true), err)
  end)
end)

describe("#e2e TLS flags refused at start-up", function()
  local tmp, dir
  setup(function()
    tmp = e2e.tempdir()
    dir = tmp
    make_cert(dir .. "/cert.pem", dir .. "/key.pem", 3)
    make_cert(dir .. "/other.pem", dir .. "/other.key", 4)
    e2e.write_file(dir .. "/junk.pem", "not a certificate\n")
  end)
  teardown(function() e2e.remove_tree(tmp) end)

  local function refused(args, want)
    local code, out, err = e2e.run_serve("spec/fixtures/app", args)
    assert.equal(2, code, out .. err)
    assert.truthy(err:find(want, 1, true), err)
  end

  it("a certificate without a key, and the reverse", function()
    refused({ "--port", "0", "--tls-cert", dir .. "/cert.pem" }, "--tls-cert needs --tls-key")
    refused({ "--port", "0", "--tls-key", dir .. "/key.pem" }, "--tls-key needs --tls-cert")
  end)

  it("a file that is not a certificate, and a key of another certificate", function()
    refused({ "--port", "0", "--tls-cert", dir .. "/junk.pem", "--tls-key", dir .. "/key.pem" },
      "cannot load the TLS certificate " .. dir .. "/junk.pem: ")
    refused({ "--port", "0", "--tls-cert", dir .. "/cert.pem", "--tls-key", dir .. "/other.key" },
      "the TLS key " .. dir .. "/other.key does not match the certificate " .. dir .. "/cert.pem")
  end)

  it("--max-concurrent-streams 0 and settings out of range", function()
    refused({ "--port", "0", "--max-concurrent-streams", "0" },
      "max_concurrent_streams (--max-concurrent-streams) must be from 1 to 1000000")
  end)
end)
