-- End to end (issue 15): a real browser over HTTP/2. Headless Chromium opens
-- the fixture's page over TLS (a self-signed certificate made here,
-- --ignore-certificate-errors) and the page opens 12 EventSources at once.
-- Over HTTP/1.1 a browser holds at most 6 connections to one host, so the
-- 12 can be open together only as streams of one HTTP/2 connection: the page
-- counts them (max_open) and reports its own protocol (nextHopProtocol).
-- One browser launch (Chromium is slow to start on this machine).
local e2e = require "e2e"
local h2 = require "spec.e2e.helper.h2"

local APP = "spec/fixtures/h2app"

-- e2e.dump_dom with the flags a self-signed certificate needs: loads url in
-- a fresh profile, returns the DOM once the page is idle or budget_ms of
-- virtual time is spent.
local function dump_dom(url, budget_ms)
  local profile = e2e.tempdir()
  local code, dom, err = h2.run(table.concat({
    e2e.CHROMIUM, "--headless --no-sandbox --disable-gpu --disable-quic",
    "--no-first-run --disable-background-networking --disable-component-update --disable-sync",
    "--ignore-certificate-errors",
    "--user-data-dir=" .. e2e.shell_quote(profile .. "/profile"),
    "--virtual-time-budget=" .. tostring(budget_ms or 20000), "--dump-dom",
    e2e.shell_quote(url),
  }, " "), 90)
  e2e.remove_tree(profile)
  return dom, code, err
end

describe("#e2e HTTP/2 in a browser: 12 EventSources from one page", function()
  local tmp = e2e.tempdir()
  local cert, key = h2.make_cert(tmp)
  local server = h2.serve(setup, teardown, APP, { args = { "--tls-cert", cert, "--tls-key", key } })
  teardown(function() e2e.remove_tree(tmp) end)

  it("all 12 are open at once over h2, each gets hello and both ticks", function()
    e2e.have_chromium()
    local dom, code, err = dump_dom(("https://127.0.0.1:%d/page/?n=12"):format(server.port))
    local state, json = dom:match('<pre id="result">(%a+) ({.-})</pre>')
    assert.is_string(json, "no result on the page (chromium exit " .. tostring(code) .. "):\n"
      .. dom:sub(1, 2000) .. "\n" .. err:sub(-2000))
    local r = e2e.json_decode(json)
    assert.equal("h2", r.protocol, json)
    assert.equal(12, r.hellos, json)
    assert.equal(12, r.max_open, "the 12 EventSources were not open together: " .. json)
    assert.equal(24, r.ticks, json)
    assert.equal(12, r.closed, json)
    assert.equal(0, r.errors, json)
    assert.equal("done", state, json)
    -- the server saw 12 streams, each a task that ran to its end
    local body
    e2e.eventually(function()
      local st = h2.curl(("https://127.0.0.1:%d/stats/?key=browser"):format(server.port), { cacert = cert })
      body = st.body
      return st.status == 200 and e2e.json_decode(body).finished == 12
    end)
    local s = e2e.json_decode(body)
    assert.equal(12, s.started, body)
    assert.equal(12, s.finished, body)
  end)
end)
