-- flosse.status: the history ring (one sample per interval, rates between
-- snapshots, bounded, gaps), the Accept test and status_view's options;
-- spec/e2e/status_spec.lua has the page and the stream on the wire.
local flosse = require "flosse"
local status = require "flosse.status"
local permissions = require "flosse.permissions"

local function snap(time, events, deliveries)
  return { time = time, connections = 2, streams = 1, events_sent = events, deliveries = deliveries,
           publishes = 0 }
end

describe("status history ring", function()
  it("takes rates between snapshots, one sample per interval", function()
    local ring = status.new_ring(1, 10)
    assert.is_nil(ring:feed(snap(100, 0, 0))) -- no earlier snapshot: no rate
    local s = ring:feed(snap(101, 10, 4))
    assert.equal(10, s.events_per_s)
    assert.equal(4, s.deliveries_per_s)
    assert.equal(101, s.t)
    -- A second stream's snapshot a moment later shares that sample.
    assert.equal(s, ring:feed(snap(101.2, 50, 50)))
    assert.equal(1, #ring:samples())
    s = ring:feed(snap(103, 30, 4))
    assert.equal(10, s.events_per_s)
    assert.equal(0, s.deliveries_per_s)
  end)

  it("keeps at most history samples, oldest first", function()
    local ring = status.new_ring(1, 3)
    for t = 0, 10 do ring:feed(snap(t, t * 2, 0)) end
    local samples = ring:samples()
    assert.equal(3, #samples)
    assert.same({ 8, 9, 10 }, { samples[1].t, samples[2].t, samples[3].t })
  end)

  it("starts anew after a gap, and a counter that went back counts as 0", function()
    local ring = status.new_ring(1, 10)
    ring:feed(snap(0, 0, 0))
    ring:feed(snap(1, 5, 0))
    assert.is_nil(ring:feed(snap(60, 500, 0)))
    assert.equal(0, ring:feed(snap(61, 400, 0)).events_per_s)
    assert.equal(2, #ring:samples())
  end)
end)

describe("status rings", function()
  it("are one per interval and size, at most 8, the least recently fed dropped", function()
    local a = status.ring_for(7, 5)
    assert.equal(a, status.ring_for(7, 5))
    a:feed(snap(1000, 0, 0))
    for i = 1, 7 do status.ring_for(i + 10, 5):feed(snap(2000 + i, 0, 0)) end
    assert.equal(a, status.ring_for(7, 5)) -- 8 rings: none dropped
    status.ring_for(99, 5)                  -- a ninth: the oldest fed (a) goes
    assert.are_not.equal(a, status.ring_for(7, 5))
  end)
end)

describe("status_view", function()
  it("serves the page unless Accept names text/event-stream", function()
    assert.is_true(status.wants_stream { headers = { accept = "text/event-stream" } })
    assert.is_true(status.wants_stream { headers = { accept = "text/html, Text/Event-Stream;q=0.5" } })
    assert.is_false(status.wants_stream { headers = { accept = "text/html" } })
    assert.is_false(status.wants_stream { headers = {} })
  end)

  it("refuses a missing permission_classes and bad options", function()
    assert.has_error(function() flosse.status_view {} end,
      "status_view: permission_classes is required in urls.lua (a list such as "
      .. "{ flosse.permissions.IsAdminUser }: the page names channels and shows the server's load)")
    local pcs = { permissions.IsAdminUser }
    assert.has_error(function() flosse.status_view { permission_classes = pcs, interval = 0 } end)
    assert.has_error(function() flosse.status_view { permission_classes = pcs, history = 1.5 } end)
    assert.has_error(function() flosse.status_view { permission_classes = pcs, busiest = -1 } end)
    assert.has_error(function() flosse.status_view { permission_classes = pcs, colour = "red" } end)
    assert.has_error(function() flosse.status_view { permission_classes = { "nope" } } end)
    local view = flosse.status_view { permission_classes = pcs }
    assert.equal("stream", view.kind)
    assert.equal("function", type(view.page))
  end)
end)
