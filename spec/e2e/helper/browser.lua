-- spec/e2e/helper/browser.lua: a headless Chromium for the specs that need a
-- real browser (its EventSource, its CORS checks): e2e.CHROMIUM (the command,
-- $CHROMIUM or "chromium"), e2e.have_chromium, e2e.dump_dom.
local base = require "spec.e2e.helper.base"

local M = {}

M.CHROMIUM = os.getenv("CHROMIUM") or "chromium"

-- Asserts Chromium is installed.
function M.have_chromium()
  assert(os.execute("command -v " .. M.CHROMIUM .. " >/dev/null"),
    "chromium is not installed (make test installs it)")
end

-- Loads url in a fresh profile and returns the DOM once the page is idle
-- or budget_ms of virtual time (default 20000) is spent: the page's
-- EventSource runs in page time.
function M.dump_dom(url, budget_ms)
  local profile = os.tmpname()
  os.remove(profile)
  local cmd = table.concat({
    "timeout -k 5 90", M.CHROMIUM, "--headless --no-sandbox --disable-gpu --disable-quic",
    "--no-first-run --disable-background-networking --disable-component-update --disable-sync",
    "--user-data-dir=" .. base.shell_quote(profile),
    "--virtual-time-budget=" .. tostring(budget_ms or 20000), "--dump-dom",
    base.shell_quote(url), "2>/dev/null",
  }, " ")
  local p = assert(io.popen(cmd, "r"))
  local dom = p:read("a")
  p:close()
  os.execute("rm -rf " .. base.shell_quote(profile))
  return dom
end

return M
