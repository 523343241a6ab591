-- spec/helper.lua: the end-to-end harness, assembled.
--
-- busted runs this file once before any spec (see .busted); it registers the
-- harness as package.loaded["e2e"] and returns it, so a spec does
--
--   local e2e = require "e2e"
--
-- (and `require "spec.helper"` works too). It starts the real server on a free
-- loopback port, talks raw HTTP to it over luasocket and parses SSE. The
-- parts, one concern each, live in spec/e2e/helper/:
--
--   base.lua      the e2e table itself: settings (TEST_TIMEOUT, BIN, WRAP and
--                 the environment variables behind them), clock, JSON, files,
--                 e2e.lines, e2e.eventually
--   process.lua   server processes: start/serve/stop, foreground runs, logs,
--                 RSS and fd counts
--   http.lua      the raw HTTP client: connect, Client, request bytes, chunk
--                 decoding, request/get/post/raw_request, open_stream/open
--   sse.lua       SSE parsing: parse_sse, read_event, pump, frames,
--                 heartbeats, events
--   fixtures.lua  the fixture apps' conventions: new_key, stats, wait_stats,
--                 ticks_in_order
--   browser.lua   a headless Chromium: CHROMIUM, have_chromium, dump_dom
--   redis.lua     a redis-server of the spec's own: start_redis (port, url,
--                 cli, stop{save}, kill, start, flush), stop_all_redis
--   jwt.lua       tokens minted by python3 and openssl (jwt_mint), and key
--                 pairs (jwt_keys)
--
-- Every part's names are set on the one e2e table. A helper that two spec
-- files need belongs in one of the parts, not copied into the specs.

if package.loaded["e2e"] then return package.loaded["e2e"] end

local e2e = require "spec.e2e.helper.base"

for _, part in ipairs { "process", "http", "sse", "fixtures", "browser", "redis", "jwt" } do
  for name, value in pairs(require("spec.e2e.helper." .. part)) do
    assert(e2e[name] == nil, "spec/e2e/helper/" .. part .. ".lua: e2e." .. name .. " is set twice")
    e2e[name] = value
  end
end

package.loaded["e2e"] = e2e
return e2e
