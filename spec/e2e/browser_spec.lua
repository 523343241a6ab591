-- A real browser's EventSource (headless Chromium) on the example app's page.
local e2e = require "e2e"

local CHROMIUM = os.getenv("CHROMIUM") or "chromium"

local function dump_dom(url)
  local profile = os.tmpname()
  os.remove(profile)
  -- Virtual time lets the page run its EventSource for up to 20 s of page
  -- time; Chromium returns once the budget is spent or the page is idle.
  local cmd = table.concat({
    "timeout -k 5 90", CHROMIUM, "--headless --no-sandbox --disable-gpu --disable-quic",
    "--no-first-run --disable-background-networking --disable-component-update --disable-sync",
    "--user-data-dir=" .. e2e.shell_quote(profile),
    "--virtual-time-budget=20000 --dump-dom", e2e.shell_quote(url), "2>/dev/null",
  }, " ")
  local p = assert(io.popen(cmd, "r"))
  local dom = p:read("a")
  p:close()
  os.execute("rm -rf " .. e2e.shell_quote(profile))
  return dom
end

describe("#e2e a browser's EventSource on the example page", function()
  local server
  setup(function() server = e2e.start("scripts") end)
  teardown(function() if server then server:cleanup() end end)

  it("receives the quick start's events in order, then All done!", function()
    assert(os.execute("command -v " .. CHROMIUM .. " >/dev/null"),
      "chromium is not installed (make test installs it)")
    local dom = dump_dom(("http://127.0.0.1:%d/"):format(server.port))
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
