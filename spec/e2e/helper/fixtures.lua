-- spec/e2e/helper/fixtures.lua: what the fixture apps of spec/fixtures/ have
-- in common, for the specs that drive them: fresh keys for the counters the
-- views keep (e2e.new_key), the stats view that reads them back (e2e.stats,
-- e2e.wait_stats), and the ticker view's events (e2e.ticks_in_order).
--
-- Every loop here has a deadline: a broken server makes a spec fail, never hang.

local e2e = require "spec.e2e.helper.base"
local http = require "spec.e2e.helper.http"
local luassert = require "luassert"

local M = {}

local key_n = 0

-- A fresh key for the fixture views' counters (?key=...): prefix, a counter
-- and a random number, e.g. "bp3_81722301".
function M.new_key(prefix)
  key_n = key_n + 1
  return string.format("%s%d_%d", prefix, key_n, math.random(1, 1e9))
end

-- The fixture's stats view, GET /stats/?key=KEY (or /stats/ without a key):
-- asserts 200 and returns the decoded JSON.
function M.stats(port, key)
  local resp = http.get(port, key and ("/stats/?key=" .. key) or "/stats/")
  luassert.equal(200, resp.status)
  return e2e.json_decode(resp.body)
end

-- Polls the stats view (every `every` seconds, default 0.1) until
-- pred(stats) (bounded by timeout); returns the last stats.
function M.wait_stats(port, key, pred, timeout, every)
  local deadline = e2e.now() + (timeout or e2e.TEST_TIMEOUT)
  local s
  repeat
    s = M.stats(port, key)
    if pred(s) then return s end
    e2e.sleep(every or 0.1)
  until e2e.now() > deadline
  return s
end

-- The ticker view's events must be tick 1, 2, 3... with matching ids (and,
-- with check_data, the data {"i": n}).
function M.ticks_in_order(events, check_data)
  for i, ev in ipairs(events) do
    luassert.equal("tick", ev.event)
    luassert.equal(tostring(i), ev.id)
    if check_data then luassert.same({ i = i }, e2e.json_decode(ev.data)) end
  end
end

return M
