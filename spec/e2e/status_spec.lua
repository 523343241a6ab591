-- flosse.status_view{} (issue 14): the page (self-contained HTML), its
-- stream (a history event, then samples whose figures follow real
-- activity), and headless Chromium filling the page from the live stream.
local e2e = require "spec.helper"

local FIXTURE = "spec/fixtures/status"
local SSE = { "Accept: text/event-stream" }
local CHANNEL = "<b>bold&amp;"

local function url_escape(s)
  return (s:gsub("[^%w%-_%.~]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end

-- Opens the status stream with the staff token; returns the client.
local function open_status(port)
  local c, head = e2e.open(port, "/status/?token=staff-token", SSE)
  assert.truthy(head.headers["content-type"]:find("text/event-stream", 1, true), head.raw)
  return c
end

-- Reads events until a `sample` for which pred(fields) holds (bounded:
-- every read has a timeout, and at most max samples are read).
local function sample_until(c, pred, max)
  local last
  for _ = 1, max or 40 do
    local ev = assert(c:read_event(5))
    if ev.event == "sample" then
      last = e2e.json_decode(ev.data)
      if pred(last) then return last end
    end
  end
  error("no sample matched; the last: " .. e2e.json_encode(last))
end

describe("#e2e status view", function()
  local server
  local listeners = {}
  setup(function() -- One worker: each worker keeps its own history, and the spec reads it
    -- back from a second stream.
    server = e2e.start(FIXTURE, { workers = 1 }) end)
  teardown(function()
    for _, c in ipairs(listeners) do c:close() end
    if server then server:cleanup() end
  end)

  it("serves the page as self-contained HTML behind the token, 403 without", function()
    assert.equal(403, e2e.get(server.port, "/status/").status)
    assert.equal(403, e2e.get(server.port, "/status/?token=user-token").status)
    assert.equal(403, e2e.get(server.port, "/status/", SSE).status)
    local resp = e2e.get(server.port, "/status/?token=staff-token")
    assert.equal(200, resp.status, resp.raw)
    assert.equal("text/html; charset=utf-8", resp.headers["content-type"])
    local csp = resp.headers["content-security-policy"]
    assert.truthy(csp and csp:find("default-src 'none'", 1, true), resp.raw)
    assert.truthy(resp.body:find("<!DOCTYPE html>", 1, true))
    assert.truthy(resp.body:find("new EventSource(location.pathname + location.search)", 1, true))
    -- Nothing loaded from elsewhere: no src/href to http(s) or //host.
    for attr, value in resp.body:gmatch("([%w-]+)%s*=%s*[\"']([^\"']*)[\"']") do
      if attr:lower() == "src" or attr:lower() == "href" then
        assert.falsy(value:match("^%s*https?:") or value:match("^%s*//"), attr .. "=" .. value)
      end
    end
    assert.falsy(resp.body:find("@import", 1, true))
    assert.falsy(resp.body:find("url(", 1, true))
  end)

  it("streams history, then samples that follow streams opened and messages published", function()
    local c = open_status(server.port)
    local first = assert(c:read_event(5))
    assert.equal("history", first.event, first.raw)
    local h = e2e.json_decode(first.data)
    assert.equal(0.5, h.interval)
    assert.equal(120, h.history)
    assert.equal("table", type(h.samples))
    assert.equal("0.1.0", h.current.version)
    assert.equal(1, h.current.workers)

    -- k subscribers of one channel: the streams and the channel's count follow.
    local k = 3
    for i = 1, k do
      listeners[i] = e2e.open(server.port, "/channels/" .. url_escape(CHANNEL) .. "/")
    end
    local s = sample_until(c, function(f)
      return f.streams >= k + 1 and f.busiest[1] ~= nil and f.busiest[1].subscribers == k
    end)
    assert.equal(CHANNEL, s.busiest[1].name)
    assert.truthy(s.connections >= k + 1)
    assert.equal(1, s.channels)

    -- Publishing: events/s and deliveries/s above 0 in a following sample.
    for _ = 1, 5 do
      assert.equal(200, e2e.post(server.port, "/publish/" .. url_escape(CHANNEL) .. "/", "hi").status)
    end
    s = sample_until(c, function(f)
      return (f.deliveries_per_s or 0) > 0 and (f.events_per_s or 0) > 0
    end)
    assert.truthy(s.publishes_per_s > 0)
    c:close()

    -- A second status stream gets the samples the first one kept.
    local c2 = open_status(server.port)
    local again = assert(c2:read_event(5))
    c2:close()
    assert.equal("history", again.event)
    local samples = e2e.json_decode(again.data).samples
    -- One worker here: its ring kept the first stream's samples.
    assert.truthy(#samples >= 2, again.data)
    local busy = false
    for _, p in ipairs(samples) do busy = busy or p.deliveries_per_s > 0 end
    assert.truthy(busy, again.data)
    assert.truthy(samples[#samples].streams >= k + 1, again.data)
  end)

  it("fills the page in headless Chromium from the live stream; a channel name stays text", function()
    e2e.have_chromium()
    -- ?samples=3: the page closes its stream after three samples, so that
    -- Chromium sees it idle and dumps the DOM.
    local dom = e2e.dump_dom(("http://127.0.0.1:%d/status/?token=staff-token&samples=3"):format(server.port))
    assert.truthy(dom:find('data-samples="3"', 1, true), dom)
    assert.equal("0.1.0", dom:match('<b id="version">(.-)</b>'))
    assert.equal("1", dom:match('<b id="workers">(.-)</b>'))
    assert.equal("0 ok, 0 failed", dom:match('<b id="reloads">(.-)</b>'))
    assert.equal("none", dom:match('<b id="redis">(.-)</b>'))
    assert.truthy(tonumber(dom:match('<output id="streams%-now">(.-)</output>')) >= 4)
    -- Each chart drew the three samples.
    for _, name in ipairs { "connections", "streams", "events", "deliveries" } do
      local svg = dom:match('<svg id="chart%-' .. name .. '"[^>]*>')
      assert.truthy(svg, name)
      assert.truthy(tonumber(svg:match('data%-points="(%d+)"')) >= 2, svg)
    end
    local rows = dom:match('<tbody id="channels">(.-)</tbody>')
    assert.equal('<tr><td class="name">&lt;b&gt;bold&amp;amp;</td><td class="n">3</td></tr>', rows)
  end)
end)

describe("#e2e status view across a reload", function()
  local app, server
  setup(function()
    app = e2e.copy_app(FIXTURE)
    server = e2e.start(app, { workers = 1, args = { "--no-reload" } })
  end)
  teardown(function()
    if server then server:cleanup() end
    if app then e2e.remove_tree(app) end
  end)

  it("counts the reload and keeps the history (SIGHUP)", function()
    local c = open_status(server.port)
    assert.equal("history", assert(c:read_event(5)).event)
    sample_until(c, function(f) return f.events_per_s ~= nil end)
    sample_until(c, function(f) return f.events_per_s ~= nil end)
    server:signal("HUP")
    -- The stream of the old generation goes on, and sees the reload.
    sample_until(c, function(f) return f.reloads_ok == 1 end)
    local c2 = open_status(server.port)
    local h = assert(c2:read_event(5))
    c:close()
    c2:close()
    assert.equal("history", h.event)
    h = e2e.json_decode(h.data)
    assert.equal(1, h.current.reloads_ok)
    assert.equal(0, h.current.reloads_failed)
    assert.truthy(#h.samples >= 3, e2e.json_encode(h.samples))
  end)
end)

describe("#e2e status view with Redis", function()
  local redis, server
  setup(function()
    redis = e2e.start_redis()
    server = e2e.start(FIXTURE, { workers = 1, env = { FLOSSE_STATUS_REDIS = redis.url } })
  end)
  teardown(function()
    if server then server:cleanup() end
    if redis then redis:cleanup() end
  end)

  it("shows the Redis link up, then down", function()
    local c = open_status(server.port)
    sample_until(c, function(f) return f.redis == "up" end)
    redis:stop()
    sample_until(c, function(f) return f.redis == "down" end)
    c:close()
  end)
end)

describe("#e2e status view's options", function()
  it("fails the load without permission_classes, naming urls.lua", function()
    local app = e2e.tempdir()
    e2e.write_file(app .. "/urls.lua",
      'local flosse = require "flosse"\nreturn { flosse.urls.path("s/", flosse.status_view{}) }\n')
    local code, out, err = e2e.run_serve(app, { "--port", "0" }, { timeout = 20 })
    e2e.remove_tree(app)
    out = out .. err
    assert.are_not.equal(0, code)
    assert.truthy(out:find("urls.lua:2: status_view: permission_classes is required", 1, true), out)
  end)
end)

describe("#e2e status view: the example app", function()
  local server = e2e.serve(setup, teardown, "scripts")

  it("/status/ is for the demo staff token, and the page fills in from its stream", function()
    assert.equal(403, e2e.get(server.port, "/status/").status)
    assert.equal(403, e2e.get(server.port, "/status/?token=demo-token").status)
    local page = e2e.get(server.port, "/status/?token=demo-admin-token")
    assert.equal(200, page.status)
    assert.matches("^text/html", page.headers["content-type"])
    e2e.have_chromium()
    local c = e2e.open(server.port, "/sse/channel/news/")
    local dom = e2e.dump_dom(("http://127.0.0.1:%d/status/?token=demo-admin-token&samples=2"):format(server.port))
    c:close()
    assert.equal("0.1.0", dom:match('<b id="version">(.-)</b>'), dom)
    assert.truthy(dom:find('<td class="name">news</td><td class="n">1</td>', 1, true), dom)
  end)
end)
