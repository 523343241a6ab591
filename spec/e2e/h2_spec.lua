-- End to end (issue 15): HTTP/2. Over TLS by ALPN (`--tls-cert`, `--tls-key`,
-- or `tls = { cert =, key = }` in settings; a self-signed certificate made
-- here with openssl), and cleartext with prior knowledge (h2c) on the same
-- port as HTTP/1.1. The same wire as HTTP/1.1, framed as DATA frames (curl,
-- nghttp and h2load compared byte for byte with an HTTP/1.1 request to the
-- same route); many streams on one connection, each its own task; per-stream
-- flow control (a stalled stream is reset after write_timeout, the others go
-- on); RST_STREAM ends one task; GOAWAY on SIGTERM after every stream ended
-- with END_STREAM; max_concurrent_streams announced and enforced; the limits
-- per stream (max_streams_per_ip counts streams, max_connections
-- connections, 431 on one stream); bad frames get GOAWAY PROTOCOL_ERROR.
-- The raw HTTP/2 client is spec/tools/h2_client.py (python3-h2); the
-- fixture app is spec/fixtures/h2app (write_timeout 3, max_header_bytes
-- 4096, max_body_bytes 1024).
local e2e = require "e2e"
local h2 = require "spec.e2e.helper.h2"

local APP = "spec/fixtures/h2app"

local PROTOCOL_ERROR, REFUSED_STREAM, NO_ERROR = 1, 7, 0

-- The stream heads' headers: the same as HTTP/1.1's, none that HTTP/2 forbids.
local function assert_stream_head(resp, who)
  assert.equal("text/event-stream; charset=utf-8", resp.headers["content-type"], who)
  assert.equal("no-cache, no-transform", resp.headers["cache-control"], who)
  assert.equal("no", resp.headers["x-accel-buffering"], who)
  assert.is_nil(resp.headers["content-length"], who)
end

local function assert_no_connection_headers(resp, who)
  for _, name in ipairs(h2.CONNECTION_HEADERS) do
    assert.is_nil(resp.headers[name], who .. ": an HTTP/2 response carries " .. name)
  end
end

-- Headers of a python client's stream as name -> value.
local function headers_of(stream)
  local t = {}
  for _, kv in ipairs(stream.headers) do t[kv[1]] = t[kv[1]] and (t[kv[1]] .. ", " .. kv[2]) or kv[2] end
  return t
end

local function count(list, pred)
  local n = 0
  for _, x in ipairs(list) do if pred(x) then n = n + 1 end end
  return n
end

local BIG_HEADER = "X-Big: " .. string.rep("b", 5000)  -- over max_header_bytes (4096)

-- Routes whose every answer must be the same over HTTP/1.1 and HTTP/2:
-- target, the status, options (method, data, headers), stream (an SSE head).
local ROUTES = {
  { "/styles/string/", 200, stream = true },
  { "/styles/event-data/", 200, stream = true },
  { "/styles/event-data-id/", 200, stream = true },
  { "/styles/fields/", 200, stream = true },
  { "/styles/table/", 200, stream = true },
  { "/styles/sseevent/", 200, stream = true },
  { "/styles/multiline/", 200, stream = true },
  { "/styles/big/", 200, stream = true },
  { "/styles/burst/", 200, stream = true },
  { "/retry/", 200, stream = true },
  { "/resume/", 200, stream = true, headers = { "Last-Event-ID: evt-041" } },
  { "/resume/", 200, stream = true },
  { "/ticker/?n=3&every=0.05", 200, stream = true },
  { "/boom/", 200, stream = true },
  { "/deny/", 403 },
  { "/no/such/page/", 404 },
  { "/ticker/", 405, method = "POST", data = "" },
  { "/created/", 201, method = "POST", data = "abc" },
  { "/created/", 413, method = "POST", data = string.rep("z", 2048) },
  { "/plain/", 431, headers = { BIG_HEADER } },
  { "/plain/?" .. string.rep("q", 3000), 414 },  -- over max_url_bytes (2048)
  { "/plain/", 400, method = "BREW" },  -- a method nobody knows
  { "/plain/", 200 },
}

-- Asserts that every answer has the route's status, the body HTTP/1.1 gave
-- (error ids blanked) and, over HTTP/2, no connection-specific header.
local function assert_same_answers(r, base, answers)
  local status = r[2]
  local want = h2.normalize(base.body)
  for who, resp in pairs(answers) do
    assert.equal(status, resp.status, who .. ": " .. tostring(resp.stderr))
    assert.equal(want, h2.normalize(resp.body), who)
    if not who:find("HTTP/1.1", 1, true) then
      if who:match("^curl") then assert.equal("2", resp.version, who) end
      assert_no_connection_headers(resp, who)
    end
    if r.stream then assert_stream_head(resp, who) end
    if not r.stream and status ~= 200 then
      assert.equal(base.headers["content-type"], resp.headers["content-type"], who)
    end
    if status == 405 then assert.equal(base.headers["allow"], resp.headers["allow"], who) end
  end
end

local function route_name(r)
  return (r.method or "GET") .. " " .. r[1]:sub(1, 40) .. (r.headers and (" with " .. r.headers[1]:sub(1, 20)) or "")
end

describe("#e2e HTTP/2 cleartext (h2c): the same wire as HTTP/1.1 on the same port", function()
  local plain = h2.serve(setup, teardown, APP, { args = { "--heartbeat", "1" } })

  local function url(target) return ("http://127.0.0.1:%d%s"):format(plain.port, target) end

  it("h2c with prior knowledge and HTTP/1.1 share the port", function()
    local r2 = h2.curl(url("/plain/"), { mode = "h2c" })
    assert.equal(0, r2.code, r2.stderr)
    assert.equal("2", r2.version)
    assert.equal(200, r2.status)
    assert.equal("plain text\n", r2.body)
    local r1 = e2e.get(plain.port, "/plain/")
    assert.equal(200, r1.status)
    assert.equal("plain text\n", r1.body)
    -- and again h2c after HTTP/1.1: the server tells them apart by the preface
    assert.equal("2", h2.curl(url("/plain/")).version)
  end)

  it("a HEAD refused (413, its body over max_body_bytes) gets the head alone, with END_STREAM", function()
    local r = h2.curl(url("/created/"), { mode = "h2c", method = "HEAD", data = string.rep("z", 2048) })
    -- curl -X HEAD (-I cannot send a body) still waits for content-length's
    -- bytes and says so (exit 18) when END_STREAM comes without them
    assert.equal(413, r.status)
    assert.equal("18", r.headers["content-length"])
    assert.equal("", r.body)
    assert.matches("18 bytes remaining", r.stderr, 1, true)
  end)

  for _, r in ipairs(ROUTES) do
    it(route_name(r) .. ": " .. r[2] .. " and the same body over curl h2c, nghttp and HTTP/1.1", function()
      local base = h2.h1(plain.port, r[1], { method = r.method, data = r.data, headers = r.headers })
      assert.equal(r[2], base.status, "HTTP/1.1")
      local answers = {
        ["curl h2c"] = h2.curl(url(r[1]), { mode = "h2c", method = r.method, data = r.data, headers = r.headers }),
      }
      if r.method == nil or r.data then
        answers["nghttp h2c"] = h2.nghttp(url(r[1]), { headers = r.headers, data = r.method and r.data })
      end
      assert_same_answers(r, base, answers)
    end)
  end

  it("the request a view sees: version 2.0, host from :authority, headers case-insensitive", function()
    local r2 = h2.curl(url("/echo/?a=1&b=two%20words"), { headers = { "X-Test: yes", "Last-Event-ID: 41" } })
    local r1 = e2e.get(plain.port, "/echo/?a=1&b=two%20words", { "X-Test: yes", "Last-Event-ID: 41" })
    assert.equal(200, r2.status)
    local v2, v1 = e2e.json_decode(r2.body), e2e.json_decode(r1.body)
    assert.equal("2.0", v2.version)
    assert.equal("1.1", v1.version)
    assert.equal("127.0.0.1:" .. plain.port, v2.host)
    v2.version, v1.version, v2.host, v1.host = nil, nil, nil, nil
    assert.same(v1, v2)
    assert.same({ a = "1", b = "two words" }, v2.query)
    assert.equal("yes", v2.x_test)
    assert.equal("41", v2.last_event_id)
    assert.equal("127.0.0.1", v2.remote_addr)
  end)

  it("a view that raises: the error event (debug text) ends the stream, on h2 as on HTTP/1.1", function()
    local out = h2.client({ "streams", "--port", plain.port, "--plan", h2.plan{ "/boom/" } })
    local s = out.streams[1]
    assert.is_true(s.ended, "no END_STREAM")
    assert.is_false(s.reset)
    local events = e2e.parse_sse(s.body)
    assert.equal(2, #events)
    assert.equal("tick", events[1].event)
    assert.equal("error", events[2].event)
    assert.truthy(events[2].data:find("kaboom: h2 fixture text 4242", 1, true), events[2].data)
  end)

  it("heartbeats are comment frames on an idle h2 stream (--heartbeat 1)", function()
    local out = h2.client({ "streams", "--port", plain.port, "--stop-after-events", 3,
      "--plan", h2.plan{ "/sleepy/" } })
    local s = out.streams[1]
    assert.equal(200, s.status)
    assert.is_false(out.timed_out, "fewer than 3 frames in time: " .. tostring(s.body))
    assert.equal('event: hello\ndata: {"n":0}\n\n: heartbeat\n\n: heartbeat\n\n', s.body)
  end)

  it("POST publish (h2) reaches a subscriber (h2), and Last-Event-ID replays the rest", function()
    local ch = e2e.new_key("news")
    local ready = os.tmpname()
    local sub = h2.spawn("h2_client.py", { "streams", "--port", plain.port, "--ready-file", ready,
      "--stop-after-events", 4, "--plan", h2.plan{ "/sub/" .. ch .. "/" } }, 30)
    assert.truthy(e2e.eventually(function() return e2e.read_file(ready) ~= "" end), "the subscriber never got ready")
    os.remove(ready)
    local ids = {}
    for i = 1, 3 do
      local resp = h2.curl(url("/publish/" .. ch .. "/"), { mode = "h2c", data = "msg " .. i })
      assert.equal(200, resp.status, resp.body)
      local j = e2e.json_decode(resp.body)
      assert.equal(1, j.delivered)
      ids[i] = tostring(j.id)
    end
    local out = sub:wait()
    local events = e2e.parse_sse(out.streams[1].body)
    assert.equal("ready", events[1].event)
    for i = 1, 3 do
      assert.equal("msg " .. i, events[i + 1].data)
      assert.equal(ids[i], events[i + 1].id)
    end
    -- a client that saw the first event: Last-Event-ID (a request header) replays 2 and 3
    local replay = h2.client({ "streams", "--port", plain.port, "--stop-after-events", 3, "--plan",
      h2.plan{ { path = "/sub/" .. ch .. "/", headers = { { "last-event-id", ids[1] } } } } })
    local got = e2e.parse_sse(replay.streams[1].body)
    assert.equal(3, #got, replay.streams[1].body)
    assert.equal("msg 2", got[2].data)
    assert.equal(ids[2], got[2].id)
    assert.equal("msg 3", got[3].data)
    -- the same bytes as HTTP/1.1 delivers for the same request
    local c = e2e.open(plain.port, "/sub/" .. ch .. "/", { "Last-Event-ID: " .. ids[1] })
    assert.is_true(e2e.pump({ c }, function() return #c:frames() >= 3 end, 10))
    c:close()
    assert.equal(c.stream_body, replay.streams[1].body)
  end)

  it("h2load: 200 requests over 4 connections, 10 streams each at a time, all 200", function()
    local code, out, err = h2.run("h2load -n 200 -c 4 -m 10 " .. e2e.shell_quote(url("/plain/")), 60)
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("200 succeeded, 0 failed, 0 errored", 1, true), out)
    assert.truthy(out:find("status codes: 200 2xx", 1, true), out)
  end)

  it("h2load: 100 event streams at once on one connection, all 200 to their end", function()
    local code, out, err = h2.run("h2load -n 100 -c 1 -m 100 "
      .. e2e.shell_quote(url("/ticker/?n=3&every=0.2")), 60)
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("100 succeeded, 0 failed, 0 errored", 1, true), out)
    assert.truthy(out:find("status codes: 100 2xx", 1, true), out)
  end)

  it("curl --http2 on http:// (an Upgrade: h2c request) is answered over HTTP/1.1", function()
    local r = h2.curl(url("/styles/string/"), { mode = "h1", extra = { "--http2" } })
    assert.equal(0, r.code, r.stderr)
    assert.equal("1.1", r.version)
    assert.equal(200, r.status)
    assert.equal("data: hello\n\n", r.body)
  end)
end)

describe("#e2e HTTP/2 over TLS (ALPN), with a self-signed certificate made here", function()
  local tmp = e2e.tempdir()
  local cert, key = h2.make_cert(tmp)
  local tls = h2.serve(setup, teardown, APP, { args = { "--tls-cert", cert, "--tls-key", key } })
  teardown(function() e2e.remove_tree(tmp) end)

  local function url(target) return ("https://127.0.0.1:%d%s"):format(tls.port, target) end

  it("ALPN picks h2 for curl --http2, http/1.1 for curl --http1.1 (the certificate verifies)", function()
    local r2 = h2.curl(url("/plain/"), { mode = "h2", cacert = cert })
    assert.equal(0, r2.code, r2.stderr)  -- verified against cert.pem
    assert.equal("2", r2.version)
    assert.equal("plain text\n", r2.body)
    local r1 = h2.curl(url("/plain/"), { mode = "h1", cacert = cert })
    assert.equal(0, r1.code, r1.stderr)
    assert.equal("1.1", r1.version)
    assert.equal("plain text\n", r1.body)
    -- the python client over TLS (ALPN h2 checked inside it)
    local out = h2.client({ "streams", "--port", tls.port, "--tls", "--plan", h2.plan{ "/styles/string/" } })
    assert.equal(200, out.streams[1].status)
    assert.equal("data: hello\n\n", out.streams[1].body)
    assert.is_true(out.streams[1].ended)
  end)

  for _, r in ipairs(ROUTES) do
    it(route_name(r) .. ": " .. r[2] .. " and the same body over curl h2, nghttp and HTTP/1.1 (TLS)", function()
      local opts = { mode = "h1", cacert = cert, method = r.method, data = r.data, headers = r.headers }
      local base = h2.curl(url(r[1]), opts)
      assert.equal(r[2], base.status, "HTTP/1.1 over TLS: " .. base.stderr)
      assert.equal("1.1", base.version)
      opts.mode = "h2"
      local answers = { ["curl h2 over TLS"] = h2.curl(url(r[1]), opts) }
      if r.method == nil or r.data then
        answers["nghttp over TLS"] = h2.nghttp(url(r[1]), { headers = r.headers, data = r.method and r.data })
      end
      assert_same_answers(r, base, answers)
    end)
  end

  it("without ALPN a TLS client gets HTTP/1.1; plain HTTP on the TLS port is closed, others go on", function()
    local r = h2.curl(url("/styles/string/"), { mode = "h2", cacert = cert, extra = { "--no-alpn" } })
    assert.equal(0, r.code, r.stderr)
    assert.equal("1.1", r.version)
    assert.equal("data: hello\n\n", r.body)
    -- cleartext bytes to the TLS port: no HTTP answer in plain text, the connection ends
    local c = e2e.connect(tls.port)
    assert(c:send(e2e.request_bytes("GET", "/plain/")))
    local rest, how = c:read_until_close(e2e.TEST_TIMEOUT)
    c:close()
    assert.equal("closed", how)
    assert.is_nil(rest:find("plain text", 1, true), "a plain-text answer on the TLS port")
    local again = h2.curl(url("/plain/"), { mode = "h2", cacert = cert })
    assert.equal("2", again.version)
    assert.equal("plain text\n", again.body)
  end)

  it("h2load over TLS: 200 requests, all 200", function()
    local code, out, err = h2.run("h2load -n 200 -c 4 -m 10 " .. e2e.shell_quote(url("/plain/")), 60)
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("200 succeeded, 0 failed, 0 errored", 1, true), out)
    assert.truthy(out:find("Application protocol: h2", 1, true), out)
  end)
end)

describe("#e2e HTTP/2 over TLS: --max-connections 1", function()
  local tmp = e2e.tempdir()
  local cert, key = h2.make_cert(tmp)
  local server = h2.serve(setup, teardown, APP,
    { args = { "--tls-cert", cert, "--tls-key", key, "--max-connections", "1" } })
  teardown(function() e2e.remove_tree(tmp) end)

  it("one h2 connection with 3 streams is one connection; the next TLS client is closed", function()
    local ready = os.tmpname()
    local held = h2.spawn("h2_client.py", { "streams", "--port", server.port, "--tls", "--until-closed",
      "--timeout", 20, "--ready-file", ready, "--plan", h2.plan{ "/sleepy/", "/sleepy/", "/sleepy/" } }, 30)
    finally(function()
      held:kill()
      os.remove(ready)
    end)
    assert.truthy(e2e.eventually(function() return e2e.read_file(ready) ~= "" end), "the h2 streams did not start")
    local r = h2.curl(("https://127.0.0.1:%d/plain/"):format(server.port), { mode = "h2", cacert = cert })
    assert.are_not.equal(0, r.code, "a second connection was served over the cap")
    assert.is_nil(r.status)
  end)
end)

describe("#e2e HTTP/2: tls = { cert =, key = } in settings", function()
  local tmp = e2e.tempdir()
  local cert, key = h2.make_cert(tmp)
  local server = h2.serve(setup, teardown, APP, { env = { FLOSSE_H2_TLS_CERT = cert, FLOSSE_H2_TLS_KEY = key } })
  teardown(function() e2e.remove_tree(tmp) end)

  it("serves h2 over TLS from the setting", function()
    local r = h2.curl(("https://127.0.0.1:%d/styles/event-data-id/"):format(server.port),
      { mode = "h2", cacert = cert })
    assert.equal(0, r.code, r.stderr)
    assert.equal("2", r.version)
    assert.equal('event: update\ndata: {"count":1}\nid: evt-001\n\n', r.body)
  end)
end)

describe("#e2e HTTP/2: many streams on one connection", function()
  local server = h2.serve(setup, teardown, APP)

  it("100 concurrent streams, one never reads: 99 get every event, the stalled one is reset, its on_close ran",
    function()
      local tick_key, stall_key = e2e.new_key("t"), e2e.new_key("stall")
      local plan = { "/flood/?size=16384&key=" .. stall_key }
      for i = 2, 100 do plan[i] = "/ticker/?n=5&every=0.1&key=" .. tick_key end
      local out = h2.client({ "streams", "--port", server.port, "--stall", 0, "--max-body", 65536,
        "--timeout", 40, "--plan", h2.plan(plan) }, 50)
      assert.is_false(out.timed_out, "not every stream ended in 40 s: " .. table.concat(out.order, ", "))
      assert.is_nil(out.goaway, "the connection was ended")
      local stalled = out.streams[1]
      assert.equal(200, stalled.status)
      assert.is_true(stalled.reset, "the stalled stream was not reset (RST_STREAM)")
      assert.is_false(stalled.ended)
      -- it got what the flow-control window allows (64 KiB), and was reset only
      -- after write_timeout (3 s) of stalling, not before
      assert.is_true(stalled.body_len <= 65535, stalled.body_len)
      assert.is_true(stalled.t_end >= 2.5, "reset after " .. stalled.t_end .. " s")
      for i = 2, 100 do
        local s = out.streams[i]
        assert.equal(200, s.status, "stream " .. i)
        assert.is_true(s.ended, "stream " .. i .. " did not end")
        assert.is_false(s.reset, "stream " .. i .. " was reset")
        local events = e2e.parse_sse(s.body)
        assert.equal(5, #events, "stream " .. i)
        for n, ev in ipairs(events) do
          assert.equal("tick", ev.event)
          assert.equal(tostring(n), ev.id)
          assert.same({ i = n }, e2e.json_decode(ev.data))
        end
        -- the stalled stream did not hold them back: they all ended before it was reset
        assert.is_true(s.t_end < stalled.t_end, "stream " .. i .. " ended after the stalled one was reset")
      end
      -- every stream was its own task: 99 tickers ran and finished
      local t = e2e.wait_stats(server.port, tick_key, function(s) return s.on_close == 99 end)
      assert.same({ started = 99, on_close = 99, closed = 99, finished = 99 }, t)
      -- the stalled one's task was ended: its <close> variable and on_close ran
      local s = e2e.wait_stats(server.port, stall_key, function(st) return st.on_close == 1 end)
      -- and its view was not resumed without bound while stalled: what it
      -- yielded fits the stream's window (64 KiB) and the high-water mark
      -- (256 KiB) with room to spare (a bound of 2 MiB, 128 yields of 16 KiB)
      assert.is_true(s.yields >= 4, "the flood view hardly ran: " .. e2e.json_encode(s))
      assert.is_true(s.yields <= 128, "the stalled view was resumed " .. s.yields .. " times (16 KiB each)")
      s.yields = nil
      assert.same({ started = 1, on_close = 1, closed = 1, finished = 0 }, s)
    end)

  it("after the stalled stream's reset, a long stream on the same connection goes on to its end", function()
    local stall_key = e2e.new_key("stall")
    local out = h2.client({ "streams", "--port", server.port, "--stall", 0, "--max-body", 65536,
      "--timeout", 40, "--plan", h2.plan{ "/flood/?key=" .. stall_key, "/ticker/?n=25&every=0.2" } }, 50)
    assert.is_false(out.timed_out)
    assert.is_nil(out.goaway)
    local stalled, long = out.streams[1], out.streams[2]
    assert.is_true(stalled.reset, "the stalled stream was not reset")
    assert.is_true(long.ended, "the long stream did not end")
    assert.is_false(long.reset)
    local events = e2e.parse_sse(long.body)
    assert.equal(25, #events)
    for n, ev in ipairs(events) do assert.equal(tostring(n), ev.id) end
    assert.is_true(long.t_end > stalled.t_end, string.format(
      "the long stream (5 s) ended at %.2f s, before the stalled one was reset at %.2f s", long.t_end, stalled.t_end))
  end)

  it("a client that opens every window and then reads nothing is dropped after write_timeout", function()
    local key = e2e.new_key("deaf")
    local function frame(ftype, flags, sid, payload)
      return string.pack(">I3BBI4", #payload, ftype, flags, sid) .. payload
    end
    -- the preface; SETTINGS_INITIAL_WINDOW_SIZE 2^31-1 and a connection
    -- WINDOW_UPDATE of 2^30, so flow control never stops the server; one
    -- HEADERS (END_STREAM, END_HEADERS; HPACK: indexed :method GET and
    -- :scheme http, literal :path and :authority)
    local path = "/flood/?key=" .. key
    local block = "\x82\x86\x04" .. string.char(#path) .. path .. "\x01\x09127.0.0.1"
    local function timeouts() return select(2, server:log():gsub("write timeout", "")) end
    local timeouts_before = timeouts()
    local c = e2e.connect(server.port)
    finally(function() c:close() end)
    local t0 = e2e.now()
    assert(c:send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" .. frame(4, 0, 0, string.pack(">I2I4", 4, 0x7fffffff))
      .. frame(8, 0, 0, string.pack(">I4", 1 << 30)) .. frame(1, 5, 1, block)))
    -- never read: the flood fills the socket; write_timeout is 3 s
    local st = e2e.wait_stats(server.port, key, function(x) return x.on_close == 1 end, 20)
    local took = e2e.now() - t0
    assert.is_true(st.yields >= 4, "the flood view hardly ran: " .. e2e.json_encode(st))
    st.yields = nil
    assert.same({ started = 1, on_close = 1, closed = 1, finished = 0 }, st)
    assert.is_true(took >= 2.5, "dropped after " .. took .. " s, before write_timeout")
    -- and the connection is gone
    local _, how = c:read_until_close(10)
    assert.equal("closed", how)
    assert.is_true(timeouts() > timeouts_before, "no write timeout logged:\n" .. server:log())
  end)

  it("a slow reader (its window opens 1.5 s late each time, under write_timeout) is not reset", function()
    local key = e2e.new_key("slow")
    local out = h2.client({ "streams", "--port", server.port, "--stall", 0, "--stall-for", 1.5, "--max-body", 1024,
      "--timeout", 40, "--plan", h2.plan{ "/bulk/?n=12&size=16384&key=" .. key, "/ticker/?n=3&every=0.1" } }, 50)
    assert.is_false(out.timed_out)
    local slow = out.streams[1]
    assert.is_false(slow.reset, "the slow stream was reset")
    assert.is_true(slow.ended)
    assert.equal(12, slow.frames)
    -- 192 KiB through a 64 KiB window: it waited for the late window at least twice
    assert.is_true(slow.t_end >= 2.5, "not slowed: ended at " .. slow.t_end .. " s")
    assert.is_true(out.streams[2].ended)
    assert.is_true(out.streams[2].t_end < slow.t_end, "the other stream waited for the slow one")
    local st = e2e.wait_stats(server.port, key, function(x) return x.on_close == 1 end)
    assert.same({ started = 1, on_close = 1, closed = 1, finished = 1 }, st)
  end)

  it("RST_STREAM from the client ends that stream's task only", function()
    local gone, stay = e2e.new_key("gone"), e2e.new_key("stay")
    local out = h2.client({ "streams", "--port", server.port, "--reset", 0, "--reset-after", 2, "--plan", h2.plan{
      "/ticker/?n=50&every=0.1&key=" .. gone,
      "/ticker/?n=8&every=0.1&key=" .. stay,
      "/ticker/?n=8&every=0.1&key=" .. stay,
    } })
    assert.is_false(out.timed_out)
    assert.truthy(out.streams[1].client_reset, "the client did not reset stream 1")
    for i = 2, 3 do
      assert.is_true(out.streams[i].ended, "stream " .. i)
      assert.equal(8, #e2e.parse_sse(out.streams[i].body))
    end
    local g = e2e.wait_stats(server.port, gone, function(st) return st.on_close == 1 end)
    assert.same({ started = 1, on_close = 1, closed = 1, finished = 0 }, g)
    local s = e2e.wait_stats(server.port, stay, function(st) return st.finished == 2 end)
    assert.same({ started = 2, on_close = 2, closed = 2, finished = 2 }, s)
    -- and the server goes on
    assert.equal(200, h2.curl(("http://127.0.0.1:%d/plain/"):format(server.port)).status)
  end)

  it("a header block over max_header_bytes: 431 on that stream, the others on the connection go on", function()
    local out = h2.client({ "streams", "--port", server.port, "--plan", h2.plan{
      { path = "/plain/", headers = { { "x-big", string.rep("b", 5000) } } },
      "/styles/string/",
      "/plain/",
    } })
    assert.is_nil(out.goaway)
    assert.equal(431, out.streams[1].status)
    assert.equal("Request Header Fields Too Large\n", out.streams[1].body)
    assert.equal(200, out.streams[2].status)
    assert.equal("data: hello\n\n", out.streams[2].body)
    assert.equal(200, out.streams[3].status)
    assert.equal("plain text\n", out.streams[3].body)
  end)

  local bad = {
    { "garbage", "garbage after the preface" },
    { "data0", "a DATA frame on stream 0" },
    { "even", "HEADERS on an even stream id" },
  }
  for _, b in ipairs(bad) do
    it(b[2] .. ": GOAWAY PROTOCOL_ERROR, the connection closes, others are served", function()
      local out = h2.client({ "badframe", b[1], "--port", server.port, "--timeout", 10 })
      assert.is_false(out.timed_out, "the server kept the connection open")
      assert.is_truthy(out.goaway, "no GOAWAY: " .. e2e.json_encode(out))
      assert.equal(PROTOCOL_ERROR, out.goaway.error_code)
      assert.is_true(out.closed)
      local r = h2.curl(("http://127.0.0.1:%d/plain/"):format(server.port))
      assert.equal(200, r.status)
      assert.equal(200, e2e.get(server.port, "/plain/").status)
    end)
  end
end)

describe("#e2e HTTP/2: max_concurrent_streams by default", function()
  local default = h2.serve(setup, teardown, APP)

  it("SETTINGS announces 128 (nghttp and python3-h2 see it)", function()
    local ng = h2.nghttp(("http://127.0.0.1:%d/plain/"):format(default.port))
    assert.equal(128, ng.settings.MAX_CONCURRENT_STREAMS, ng.verbose)
    local out = h2.client({ "streams", "--port", default.port, "--plan", h2.plan{ "/plain/" } })
    assert.equal(128, out.settings.MAX_CONCURRENT_STREAMS)
  end)
end)

describe("#e2e HTTP/2: max_concurrent_streams by default is enforced", function()
  local default = h2.serve(setup, teardown, APP)

  it("130 streams at once: 128 run, the 129th and 130th are refused (RST_STREAM REFUSED_STREAM)", function()
    local key = e2e.new_key("mcs128")
    local plan = {}
    for i = 1, 130 do plan[i] = "/sleepy/?key=" .. key end
    local out = h2.client({ "streams", "--port", default.port, "--stop-after-events", 1, "--timeout", 40,
      "--max-body", 1024, "--plan", h2.plan(plan) }, 50)
    assert.is_false(out.timed_out)
    assert.equal(128, count(out.streams, function(s) return s.status == 200 and s.frames >= 1 end))
    assert.equal(2, count(out.streams, function(s) return s.reset and s.reset_code == REFUSED_STREAM end))
    assert.is_true(out.streams[129].reset and out.streams[130].reset, "not the last two refused")
    local s = e2e.wait_stats(default.port, key, function(st) return st.on_close == 128 end)
    assert.same({ started = 128, on_close = 128, closed = 128, finished = 0 }, s)
  end)
end)

describe("#e2e HTTP/2: max_concurrent_streams from the setting", function()
  local setting = h2.serve(setup, teardown, APP, { env = { FLOSSE_H2_MAX_STREAMS = "6" } })

  it("SETTINGS announces the setting's value", function()
    local out = h2.client({ "streams", "--port", setting.port, "--plan", h2.plan{ "/plain/" } })
    assert.equal(6, out.settings.MAX_CONCURRENT_STREAMS)
  end)
end)

describe("#e2e HTTP/2: --max-concurrent-streams 4", function()
  local flag = h2.serve(setup, teardown, APP, { args = { "--max-concurrent-streams", "4" } })

  it("SETTINGS announces the flag's value", function()
    local out = h2.client({ "streams", "--port", flag.port, "--plan", h2.plan{ "/plain/" } })
    assert.equal(4, out.settings.MAX_CONCURRENT_STREAMS)
  end)

  it("a stream beyond it is refused (RST_STREAM REFUSED_STREAM), the others run", function()
    local key = e2e.new_key("mcs")
    local plan = {}
    for i = 1, 5 do plan[i] = "/sleepy/?key=" .. key end
    local out = h2.client({ "streams", "--port", flag.port, "--stop-after-events", 1, "--plan", h2.plan(plan) })
    assert.is_false(out.timed_out)
    local refused = count(out.streams, function(s) return s.reset and s.reset_code == REFUSED_STREAM end)
    local served = count(out.streams, function(s) return s.status == 200 and s.frames >= 1 end)
    assert.equal(1, refused, e2e.json_encode(out.order))
    assert.equal(4, served)
    assert.is_true(out.streams[5].reset, "the fifth stream was not the one refused")
    -- the four were tasks; they end when the connection goes
    local s = e2e.wait_stats(flag.port, key, function(st) return st.on_close == 4 end)
    assert.same({ started = 4, on_close = 4, closed = 4, finished = 0 }, s)
  end)
end)

describe("#e2e HTTP/2: limits count streams and connections", function()
  local capped = h2.serve(setup, teardown, APP, { env = { FLOSSE_H2_MAX_IP = "3" } })
  local conns = h2.serve(setup, teardown, APP, { args = { "--max-connections", "2" } })

  it("max_streams_per_ip counts streams: on one connection the 4th and 5th get 429", function()
    local key = e2e.new_key("ip")
    local plan = {}
    for i = 1, 5 do plan[i] = "/sleepy/?key=" .. key end
    plan[6] = "/plain/"  -- an ordinary request is not a stream: not capped
    local out = h2.client({ "streams", "--port", capped.port, "--stop-after-events", 1, "--plan", h2.plan(plan) })
    assert.is_false(out.timed_out)
    assert.equal(3, count(out.streams, function(s) return s.status == 200 and s.frames >= 1 end))
    local refused = {}
    for _, s in ipairs(out.streams) do
      if s.status == 429 then refused[#refused + 1] = s end
    end
    assert.equal(2, #refused)
    for _, s in ipairs(refused) do assert.equal("5", headers_of(s)["retry-after"]) end
    assert.equal(200, out.streams[6].status)
    assert.equal("plain text\n", out.streams[6].body)
    -- the connection is gone: the three places are free again
    local st = e2e.wait_stats(capped.port, key, function(x) return x.on_close == 3 end)
    assert.equal(3, st.on_close)
    local again = h2.client({ "streams", "--port", capped.port, "--stop-after-events", 1, "--plan",
      h2.plan{ "/sleepy/?key=" .. key } })
    assert.equal(200, again.streams[1].status)
  end)

  it("a stream the client reset gives its place back: a new stream on the same connection gets 200", function()
    local key = e2e.new_key("ipr")
    local go = os.tmpname()
    os.remove(go)
    finally(function() os.remove(go) end)
    local plan = {}
    for i = 1, 3 do plan[i] = "/sleepy/?key=" .. key end
    plan[4] = { path = "/sleepy/?key=" .. key, after = go }
    local cl = h2.spawn("h2_client.py", { "streams", "--port", capped.port, "--reset", 0, "--reset-after", 1,
      "--stop-after-events", 1, "--timeout", 20, "--plan", h2.plan(plan) }, 30)
    -- the reset stream's task ended (on_close ran): then the fourth is sent
    local st = e2e.wait_stats(capped.port, key, function(x) return x.on_close == 1 end)
    assert.equal(1, st.on_close, e2e.json_encode(st))
    e2e.write_file(go, "go\n")
    local out = cl:wait()
    assert.is_false(out.timed_out)
    assert.equal(200, out.streams[4].status, "the fourth stream: " .. tostring(out.streams[4].status))
    assert.is_true(out.streams[4].frames >= 1)
  end)

  it("max_connections counts connections, not streams: one h2 connection with 4 streams is one", function()
    local key = e2e.new_key("mc")
    local ready = os.tmpname()
    local plan = {}
    for i = 1, 4 do plan[i] = "/sleepy/?key=" .. key end
    local held = h2.spawn("h2_client.py", { "streams", "--port", conns.port, "--until-closed", "--timeout", 20,
      "--ready-file", ready, "--plan", h2.plan(plan) }, 30)
    finally(function()
      held:kill()
      os.remove(ready)
    end)
    assert.truthy(e2e.eventually(function() return e2e.read_file(ready) ~= "" end), "the h2 streams did not start")
    local second = e2e.open(conns.port, "/sleepy/?key=" .. key)  -- the 2nd connection: 200
    local third = e2e.get(conns.port, "/plain/")
    second:close()
    assert.equal(503, third.status)
  end)
end)

describe("#e2e HTTP/2: max_streams_per_user", function()
  local server = h2.serve(setup, teardown, APP, { env = { FLOSSE_H2_MAX_USER = "2" } })

  it("counts a user's streams on one connection: the third gets 429, an anonymous stream goes on", function()
    local bearer = { { "authorization", "Bearer alice" } }
    local out = h2.client({ "streams", "--port", server.port, "--stop-after-events", 1, "--plan", h2.plan{
      { path = "/sleepy/", headers = bearer },
      { path = "/sleepy/", headers = bearer },
      { path = "/sleepy/", headers = bearer },
      "/sleepy/",
    } })
    assert.is_false(out.timed_out)
    local statuses = {}
    for i, st in ipairs(out.streams) do statuses[i] = st.status end
    table.sort(statuses, function(a, b) return a < b end)
    assert.same({ 200, 200, 200, 429 }, statuses)
    assert.equal(200, out.streams[4].status, "the anonymous stream")
    for _, st in ipairs(out.streams) do
      if st.status == 429 then assert.equal("5", headers_of(st)["retry-after"]) end
    end
  end)
end)

describe("#e2e HTTP/2: SIGTERM", function()
  it("every stream ends with END_STREAM (none reset), GOAWAY NO_ERROR, on_close ran, exit 0", function()
    local record = os.tmpname()
    local server = e2e.start_with_status(APP, { env = { FLOSSE_H2_RECORD = record } })
    finally(function()
      server:cleanup()
      os.remove(record)
    end)
    local ready = os.tmpname()
    local plan = {}
    for i = 1, 3 do plan[i] = "/sleepy/?key=term" .. i end
    local cl = h2.spawn("h2_client.py", { "streams", "--port", server.port, "--until-closed", "--timeout", 20,
      "--ready-file", ready, "--plan", h2.plan(plan) }, 30)
    assert.truthy(e2e.eventually(function() return e2e.read_file(ready) ~= "" end), "the streams did not start")
    os.remove(ready)
    server:signal("TERM")
    local out = cl:wait()
    assert.equal(0, server:exit_status(15), "the server did not exit 0 after SIGTERM")
    assert.is_true(out.closed)
    assert.is_truthy(out.goaway, "no GOAWAY before the close: " .. e2e.json_encode(out.order))
    assert.equal(NO_ERROR, out.goaway.error_code)
    -- after every stream ended, and naming the last stream opened (none was dropped)
    assert.equal("goaway", out.order[#out.order], e2e.json_encode(out.order))
    assert.equal(out.streams[3].id, out.goaway.last_stream_id)
    for i, s in ipairs(out.streams) do
      assert.is_true(s.ended, "stream " .. i .. " did not end with END_STREAM: " .. e2e.json_encode(out.order))
      assert.is_false(s.reset, "stream " .. i .. " was reset")
      assert.truthy(s.body:find('event: hello\ndata: {"n":0}\n\n', 1, true))
    end
    local lines = e2e.read_file(record)
    for i = 1, 3 do
      assert.truthy(lines:find("close term" .. i .. "\n", 1, true), lines)
      assert.truthy(lines:find("on_close term" .. i .. "\n", 1, true), lines)
    end
  end)
end)

describe("#e2e HTTP/2: SIGTERM with a stream stalled by flow control", function()
  -- Regression: the grace-over close once sent no GOAWAY (fixed in fd55f94).
  it("exits after --grace, the other stream ended, on_close ran, GOAWAY before the close", function()
    local record = os.tmpname()
    local server = e2e.start_with_status(APP, { args = { "--grace", "1" }, env = { FLOSSE_H2_RECORD = record } })
    finally(function()
      server:cleanup()
      os.remove(record)
    end)
    local ready = os.tmpname()
    local cl = h2.spawn("h2_client.py", { "streams", "--port", server.port, "--stall", 0, "--until-closed",
      "--timeout", 20, "--ready-file", ready, "--max-body", 65536,
      "--plan", h2.plan{ "/flood/?key=stalled", "/sleepy/?key=other" } }, 30)
    assert.truthy(e2e.eventually(function() return e2e.read_file(ready) ~= "" end), "the streams did not start")
    os.remove(ready)
    local t0 = e2e.now()
    server:signal("TERM")
    local code = server:exit_status(15)
    local took = e2e.now() - t0
    local out = cl:wait()
    assert.equal(0, code, "the server did not exit 0 after SIGTERM")
    assert.is_true(took < 1 + 5, "exited " .. took .. " s after SIGTERM with --grace 1")
    assert.is_true(out.closed)
    assert.is_true(out.streams[2].ended, "the other stream did not end with END_STREAM")
    assert.is_false(out.streams[1].ended)
    local lines = e2e.read_file(record)
    for _, k in ipairs{ "stalled", "other" } do
      assert.truthy(lines:find("close " .. k .. "\n", 1, true), lines)
      assert.truthy(lines:find("on_close " .. k .. "\n", 1, true), lines)
    end
    assert.is_truthy(out.goaway, "the connection was closed without a GOAWAY: " .. e2e.json_encode(out.order))
    assert.equal(NO_ERROR, out.goaway.error_code)
  end)
end)

describe("#e2e HTTP/2: --header-timeout 1", function()
  local server = h2.serve(setup, teardown, APP, { args = { "--header-timeout", "1" } })

  it("a connection left without a stream gets GOAWAY (NO_ERROR) and is closed", function()
    local out = h2.client({ "streams", "--port", server.port, "--until-closed", "--timeout", 15,
      "--plan", h2.plan{ "/plain/" } }, 25)
    assert.is_false(out.timed_out, "the idle connection was kept open")
    assert.equal("plain text\n", out.streams[1].body)
    assert.is_truthy(out.goaway, "closed without GOAWAY")
    assert.equal(NO_ERROR, out.goaway.error_code)
    assert.equal(out.streams[1].id, out.goaway.last_stream_id)
    assert.is_true(out.goaway.t >= 0.8, "GOAWAY after " .. out.goaway.t .. " s, before the timeout")
    assert.is_true(out.closed)
  end)
end)

describe("#e2e HTTP/2: a new stream during the shutdown", function()
  it("gets 503 on the connection a stalled stream keeps open", function()
    local server = e2e.start_with_status(APP, { args = { "--grace", "3" } })
    local ready, go = os.tmpname(), os.tmpname()
    os.remove(go)
    finally(function()
      server:cleanup()
      os.remove(ready)
      os.remove(go)
    end)
    local cl = h2.spawn("h2_client.py", { "streams", "--port", server.port, "--stall", 0, "--until-closed",
      "--timeout", 20, "--ready-file", ready, "--max-body", 65536,
      "--plan", h2.plan{ "/flood/", { path = "/plain/", after = go } } }, 30)
    assert.truthy(e2e.eventually(function() return e2e.read_file(ready) ~= "" end), "the stream did not start")
    server:signal("TERM")
    assert(server:wait_log("SIGTERM", 10), server:log())
    e2e.write_file(go, "go\n")
    local out = cl:wait()
    local late = out.streams[2]
    assert.equal(503, late.status, "the stream sent after SIGTERM: " .. e2e.json_encode(late))
    assert.equal("Service Unavailable\n", late.body)
    assert.is_true(late.ended)
    assert.equal(0, server:exit_status(15))
  end)
end)

describe("#e2e HTTP/2: hot reload", function()
  it("a new stream on an open connection gets the new code, the running one keeps its own", function()
    local dir, tmp = e2e.copy_app(APP)
    local server = h2.start(dir)
    local ready, go = os.tmpname(), os.tmpname()
    os.remove(go)
    finally(function()
      server:cleanup()
      e2e.remove_tree(tmp)
      os.remove(ready)
      os.remove(go)
    end)
    local cl = h2.spawn("h2_client.py", { "streams", "--port", server.port, "--ready-file", ready,
      "--stop-after-events", 3, "--timeout", 40, "--plan", h2.plan{
        "/sleepy/?sleep=0.2&n=100",
        { path = "/ticker/?n=3&every=0.4", after = go },
      } }, 50)
    assert.truthy(e2e.eventually(function() return e2e.read_file(ready) ~= "" end), "the first stream did not start")
    -- the new code names the ticker's events "tock"
    local views = e2e.read_file(dir .. "/views.lua")
    local changed = views:gsub('coroutine%.yield%("tick", { i = i }, tostring%(i%)%)',
      'coroutine.yield("tock", { i = i }, tostring(i))')
    assert.are_not.equal(views, changed)
    e2e.write_file(dir .. "/views.lua", changed)
    assert(server:wait_log("flosse: reloaded ", 20), "no reload:\n" .. server:log())
    e2e.write_file(go, "go\n")
    local out = cl:wait()
    assert.is_nil(out.goaway)
    local new, old = out.streams[2], out.streams[1]
    assert.is_true(new.ended)
    local events = e2e.parse_sse(new.body)
    assert.equal(3, #events, new.body)
    for _, ev in ipairs(events) do assert.equal("tock", ev.event) end
    -- the stream of the old code went on, on the same connection, while the new one ran
    assert.equal(200, old.status)
    assert.is_false(old.reset, "the running stream was reset by the reload")
    assert.is_false(old.ended)
    assert.truthy(old.body:find('event: hello\ndata: {"n":0}\n\n', 1, true), old.body)
    assert.is_true(old.t_last > new.t_sent, "no event of the old stream after the reload")
    assert.is_nil(old.body:find("tock", 1, true))
  end)
end)
