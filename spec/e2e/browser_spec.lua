-- A real browser's EventSource (headless Chromium) on the example app's page.
local e2e = require "e2e"

describe("#e2e a browser's EventSource on the example page", function()
  local server
  setup(function() server = e2e.start("scripts") end)
  teardown(function() if server then server:cleanup() end end)

  it("receives the quick start's events in order, then All done!", function()
    e2e.have_chromium()
    -- Virtual time lets the page run its EventSource for up to 20 s of page
    -- time; Chromium returns once the budget is spent or the page is idle.
    local dom = e2e.dump_dom(("http://127.0.0.1:%d/"):format(server.port))
    local items = {}
    for li in dom:match('<ul id="events">(.-)</ul>'):gmatch("<li[^>]*>(.-)</li>") do
      items[#items + 1] = li
    end
    local want = {}
    for i = 1, 10 do
      want[i] = ("progress: step %d of 10 (%d%%)"):format(i, i * 10)
    end
    want[11] = "All done!"
    assert.same(want, items)
    assert.truthy(dom:find('<p id="status">Finished.</p>', 1, true))
  end)
end)
