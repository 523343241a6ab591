-- flosse.health_view{} (issue 14): 200 when the app is loaded and (with
-- Redis configured) Redis answers PING, 503 with the reason otherwise;
-- against a redis-server of the spec's own (spec/e2e/helper/redis.lua),
-- stopped, restarted and made slow. And the example app's /healthz.
local e2e = require "spec.helper"

local FIXTURE = "spec/fixtures/health"

-- Starts the fixture with Redis at url (nil: no Redis).
local function start(url)
  return e2e.start(FIXTURE, { env = { FLOSSE_HEALTH_REDIS = url or false } })
end

-- GET (or method) /healthz; the response, its decoded body and how long it took.
local function health(port, method)
  local t0 = e2e.now()
  local resp = e2e.request(port, method or "GET", "/healthz")
  local took = e2e.now() - t0
  local body = resp.body ~= "" and e2e.json_decode(resp.body) or nil
  return resp, body, took
end

describe("#e2e health view without Redis", function()
  local server = e2e.serve(setup, teardown, FIXTURE, { env = { FLOSSE_HEALTH_REDIS = false } })

  it("answers 200, JSON, no-store, with redis \"none\"", function()
    local resp = health(server.port)
    assert.equal(200, resp.status, resp.raw)
    assert.equal('{"status":"ok","redis":"none"}', resp.body)
    assert.equal("application/json", resp.headers["content-type"])
    assert.equal("no-store", resp.headers["cache-control"])
    assert.equal(tostring(#resp.body), resp.headers["content-length"])
  end)

  it("answers HEAD with the same head and no body; other methods 405", function()
    local get = health(server.port)
    local c = e2e.connect(server.port)
    assert(c:send(e2e.request_bytes("HEAD", "/healthz") .. e2e.request_bytes("GET", "/hello/")))
    local head = assert(c:read_response { head_request = true })
    assert.equal(200, head.status)
    assert.equal("application/json", head.headers["content-type"])
    assert.equal("no-store", head.headers["cache-control"])
    assert.equal(get.headers["content-length"], head.headers["content-length"])
    -- No body bytes came: the next response on the connection starts right away.
    local after = assert(c:read_response())
    assert.equal("hello\n", after.body)
    c:close()
    local post = e2e.post(server.port, "/healthz", "x")
    assert.equal(405, post.status)
    assert.equal("GET, HEAD", post.headers["allow"])
  end)

  it("is open without credentials; a permission class given replaces the default", function()
    assert.equal(403, e2e.get(server.port, "/healthz/private/").status)
    local resp = e2e.get(server.port, "/healthz/private/", { "Authorization: Bearer health-token" })
    assert.equal(200, resp.status)
    assert.equal('{"status":"ok","redis":"none"}', resp.body)
  end)

  it("matches /healthz only (no trailing slash)", function()
    assert.equal(404, e2e.get(server.port, "/healthz/").status)
  end)
end)

describe("#e2e health view with Redis", function()
  local redis, server

  setup(function()
    redis = e2e.start_redis()
    server = start(redis.url)
  end)

  teardown(function()
    if server then server:cleanup() end
    if redis then redis:cleanup() end
  end)

  it("200 while Redis answers; 503 with the reason once it is down, in bounded time; 200 again after", function()
    local resp, body = health(server.port)
    assert.equal(200, resp.status, resp.body)
    assert.equal('{"status":"ok","redis":"ok"}', resp.body)
    assert.same({ status = "ok", redis = "ok" }, body)
    assert.truthy(redis:cli("INFO", "commandstats"):find("cmdstat_ping:", 1, true), "no PING reached Redis")

    redis:stop()
    local took
    resp, body, took = health(server.port)
    assert.equal(503, resp.status, resp.body)
    assert.equal("application/json", resp.headers["content-type"])
    assert.equal("no-store", resp.headers["cache-control"])
    assert.equal("unavailable", body.status)
    assert.truthy(body.redis == "connection lost" or body.redis:match("^not connected %("), body.redis)
    assert.is_true(took < 1.5, "answered after " .. took .. " s")
    -- Once the pool knows, the reason is the connect's, at once.
    assert.truthy(e2e.eventually(function()
      local r, b = health(server.port)
      return r.status == 503 and b.redis == "not connected (Connection refused)"
    end, 5))
    local head, _, head_took = health(server.port, "HEAD")
    assert.equal(503, head.status)
    assert.equal("application/json", head.headers["content-type"])
    assert.equal(tostring(#'{"status":"unavailable","redis":"not connected (Connection refused)"}'),
                 head.headers["content-length"])
    assert.is_true(head_took < 1, "HEAD answered after " .. head_took .. " s")

    -- Everything else is served meanwhile.
    assert.equal("hello\n", e2e.get(server.port, "/hello/").body)
    local c = e2e.open(server.port, "/sse/one/")
    assert.equal("one", assert(c:read_event()).data)
    c:close()

    redis:start()
    local back = e2e.eventually(function() return health(server.port).status == 200 end, 5)
    assert.truthy(back, "not 200 within 5 s of Redis' restart")
    assert.equal('{"status":"ok","redis":"ok"}', health(server.port).body)
  end)

  it("a Redis that does not answer: 503 \"timeout\" after the setting's timeout (0.5 s); others served", function()
    assert.equal(200, health(server.port).status)
    -- Redis busy for 2 s (its own client, in the background).
    os.execute("redis-cli -h 127.0.0.1 -p " .. redis.port .. " DEBUG SLEEP 2 >/dev/null 2>&1 &")
    e2e.sleep(0.2)
    local pending = e2e.connect(server.port)
    local t0 = e2e.now()
    assert(pending:send(e2e.request_bytes("GET", "/healthz")))
    -- While that health check waits on Redis, another request is answered.
    local t1 = e2e.now()
    assert.equal("hello\n", e2e.get(server.port, "/hello/").body)
    assert.is_true(e2e.now() - t1 < 0.5, "/hello/ waited " .. (e2e.now() - t1) .. " s")
    local resp = assert(pending:read_response())
    local took = e2e.now() - t0
    pending:close()
    assert.equal(503, resp.status, resp.body)
    assert.equal('{"status":"unavailable","redis":"timeout"}', resp.body)
    assert.is_true(took >= 0.4 and took < 1.5, "timed out after " .. took .. " s")
    assert.truthy(e2e.eventually(function() return health(server.port).status == 200 end, 5))
  end)
end)

describe("#e2e health view: Redis down at start", function()
  local redis, server

  setup(function()
    redis = e2e.start_redis { started = false }
    server = start(redis.url)
  end)

  teardown(function()
    if server then server:cleanup() end
    if redis then redis:cleanup() end
  end)

  it("the server serves, /healthz says 503 until Redis comes up", function()
    local resp, body = health(server.port)
    assert.equal(503, resp.status, resp.body)
    assert.same({ status = "unavailable", redis = "not connected (Connection refused)" }, body)
    assert.equal('{"status":"unavailable","redis":"not connected (Connection refused)"}', resp.body)
    redis:start()
    assert.truthy(e2e.eventually(function() return health(server.port).status == 200 end, 5))
  end)
end)

describe("#e2e health view: the example app", function()
  local server = e2e.serve(setup, teardown, "scripts")

  it("/healthz answers 200 without credentials", function()
    local resp = health(server.port)
    assert.equal(200, resp.status, resp.raw)
    assert.equal('{"status":"ok","redis":"none"}', resp.body)
    assert.equal("no-store", resp.headers["cache-control"])
  end)
end)
