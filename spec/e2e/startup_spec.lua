-- End to end: `flosse serve` start-up: the listening line, broken apps, a taken port.
local e2e = require "e2e"

describe("#e2e flosse serve start-up", function()
  it("prints exactly one listening line with the real port", function()
    local server = e2e.start("scripts")
    finally(function() server:cleanup() end)
    local log = server:log()
    local found = {}
    for _, line in ipairs(e2e.lines(log)) do
      if line:find("listening", 1, true) then found[#found + 1] = line end
    end
    assert.same({ "flosse: listening on http://127.0.0.1:" .. server.port .. "/" }, found)
    assert.is_true(server.port > 0)
    assert.equal(200, e2e.get(server.port, "/sse/styles/string/").status)
  end)

  it("serves on IPv6 loopback when asked", function()
    -- skip quietly where the machine has no ::1
    local probe = e2e.socket.tcp6()
    local can = probe and probe:bind("::1", 0)
    if probe then probe:close() end
    if not can then return end
    local server = e2e.start("scripts", { host = "::1" })
    finally(function() server:cleanup() end)
    assert.truthy(server:log():find("flosse: listening on http://[::1]:" .. server.port .. "/",
                                    1, true))
    local c = e2e.connect(server.port, "::1")
    assert(c:send(e2e.request_bytes("GET", "/sse/styles/string/", { "Host: [::1]" })))
    local resp = assert(c:read_response())
    c:close()
    assert.equal(200, resp.status)
    assert.equal("data: hello\n\n", resp.body)
  end)

  it("a urls.lua with a syntax error: one line naming file and line, exit 2", function()
    local code, stdout, stderr = e2e.run_serve("spec/fixtures/broken_urls",
      { "--host", "127.0.0.1", "--port", "0" })
    assert.equal(2, code, "exit code; stderr:\n" .. stderr)
    assert.equal("", stdout)
    local ls = e2e.lines(stderr)
    assert.equal(1, #ls, "stderr:\n" .. stderr)
    assert.matches("^flosse: .*urls%.lua:3: ", ls[1])
  end)

  it("a urls.lua that raises: one line naming file and line, exit 2", function()
    local code, _, stderr = e2e.run_serve("spec/fixtures/error_urls",
      { "--host", "127.0.0.1", "--port", "0" })
    assert.equal(2, code, "exit code; stderr:\n" .. stderr)
    local ls = e2e.lines(stderr)
    assert.equal(1, #ls, "stderr:\n" .. stderr)
    assert.matches("^flosse: .*urls%.lua:2: ", ls[1])
    assert.truthy(ls[1]:find("fixture urls.lua raised on purpose", 1, true))
  end)

  it("an app folder without urls.lua: one line naming it, non-zero exit", function()
    local code, _, stderr = e2e.run_serve("spec/fixtures/no_urls",
      { "--host", "127.0.0.1", "--port", "0" })
    assert.are_not.equal(0, code)
    assert.are_not.equal(124, code, "it kept running")
    local ls = e2e.lines(stderr)
    assert.equal(1, #ls, "stderr:\n" .. stderr)
    assert.matches("^flosse: .*urls%.lua", ls[1])
  end)

  it("a port that is taken: one line naming the address, exit 2", function()
    local server = e2e.start("scripts")
    finally(function() server:cleanup() end)
    local code, _, stderr = e2e.run_serve("scripts",
      { "--host", "127.0.0.1", "--port", tostring(server.port) })
    assert.equal(2, code, "exit code; stderr:\n" .. stderr)
    local ls = e2e.lines(stderr)
    assert.equal(1, #ls, "stderr:\n" .. stderr)
    assert.truthy(ls[1]:find("127.0.0.1:" .. server.port, 1, true), ls[1])
    -- the first server is unharmed
    assert.equal(200, e2e.get(server.port, "/sse/styles/string/").status)
  end)
end)
