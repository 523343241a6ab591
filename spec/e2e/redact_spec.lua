-- End to end (issue 13): credentials are never written to the log. The
-- values of the query parameters the app's authentication classes read
-- are "…" in every line naming the request (access lines, warnings, error
-- lines); Authorization and Cookie values appear in no line at all, at
-- log level debug too. The names follow the app: a reload that changes
-- them changes what is redacted, on every worker.
local e2e = require "e2e"

local FIXTURE = "spec/fixtures/redact"
local E = "\u{2026}"
local WAIT = math.max(15, e2e.TEST_TIMEOUT * 1.5)

local function access_for(server, path)
  local found = e2e.eventually(function()
    for _, a in ipairs(e2e.access_lines(server:log())) do
      if a.path == path then return a end
    end
  end)
  assert.is_table(found, "no access line for " .. path .. " in:\n" .. server:log())
  return found
end

local function assert_no_secret(log, secrets)
  for _, s in ipairs(secrets) do
    assert.is_nil(log:find(s, 1, true), s .. " is in the log:\n" .. log)
  end
end

local CREDENTIALS = { "Authorization: Bearer SECRET1", "Cookie: flosse_token=SECRET2" }

describe("#e2e credentials in logs (log level debug, debug mode)", function()
  local server = e2e.serve(setup, teardown, FIXTURE, { args = { "--log-level", "debug", "--debug" } })

  it("a stream: the query token is … in its access line; header credentials nowhere", function()
    local c, head = e2e.open_stream(server.port, "/sse/private/?token=SECRET3&x=1", CREDENTIALS)
    assert.equal(200, head.status)
    assert(c:read_chunked())
    c:close()
    local a = access_for(server, "/sse/private/?token=" .. E .. "&x=1")
    assert.equal("GET /sse/private/?token=" .. E .. "&x=1", a.request)
    assert_no_secret(server:log(), { "SECRET1", "SECRET2", "SECRET3" })
  end)

  it("percent-encoded and repeated names, refusals, 404s and error lines", function()
    local r = e2e.get(server.port, "/sse/private/?%74oken=SECRET4&tok%65n=SECRET3&token=SECRET3&y=2")
    assert.equal(200, r.status)
    assert.equal(403, e2e.get(server.port, "/sse/private/?token=WRONGSECRET5").status)
    assert.equal(404, e2e.get(server.port, "/nowhere/?token=SECRET3", CREDENTIALS).status)
    assert.equal(500, e2e.get(server.port, "/boom/?token=SECRET3", CREDENTIALS).status)
    access_for(server, "/sse/private/?%74oken=" .. E .. "&tok%65n=" .. E .. "&token=" .. E .. "&y=2")
    access_for(server, "/sse/private/?token=" .. E)
    access_for(server, "/nowhere/?token=" .. E)
    access_for(server, "/boom/?token=" .. E)
    -- the error line names the request, redacted
    assert.truthy(e2e.eventually(function()
      return server:log():find("GET /boom/?token=" .. E, 1, true) and server:log():find("boom", 1, true)
    end))
    local errline
    for _, line in ipairs(e2e.lines(server:log())) do
      if line:find("^flosse: error ") and line:find("/boom/", 1, true) then errline = line end
    end
    assert.is_string(errline, server:log())
    assert.truthy(errline:find("GET /boom/?token=" .. E, 1, true), errline)
    assert_no_secret(server:log(), { "SECRET1", "SECRET2", "SECRET3", "SECRET4", "WRONGSECRET5" })
  end)

  it("a token across the 200-byte cut is redacted, not half kept", function()
    local pad = ("p"):rep(180)
    local r = e2e.get(server.port, "/whoami/?pad=" .. pad .. "&token=SECRET3SECRET3SECRET3SECRET3")
    assert.equal(200, r.status)
    local want = "/whoami/?pad=" .. pad .. "&token=" .. E
    want = want:sub(1, 200)
    local a = access_for(server, want)
    assert.equal("GET " .. want, a.request)
    assert_no_secret(server:log(), { "SECRET3", "SECRET" })
  end)
end)

describe("#e2e credentials in logs: a reload that renames the query parameter, --workers 2", function()
  -- Asks /whoami/ until both workers answered with `query` as the app's
  -- name and user; each request tagged n=<name><i>. Returns the tags used.
  local function both_workers(server, query, params, user)
    local seen, tags = {}, {}
    local i = 0
    local ok = e2e.eventually(function()
      i = i + 1
      local tag = query .. i
      local r = e2e.get(server.port, "/whoami/?n=" .. tag .. "&" .. params)
      if r.status == 200 then
        local w, name, who = r.body:match("^(%d) (%S+) (%S+)$")
        if name == query then
          assert.equal(user, who, r.body)
          seen[w] = true
          tags[#tags + 1] = tag
        end
      end
      return seen["0"] and seen["1"]
    end, WAIT)
    assert.truthy(ok, "both workers did not answer with " .. query .. ":\n" .. server:log())
    return tags
  end

  it("every worker redacts the loaded app's name", function()
    local dir, tmp = e2e.copy_app(FIXTURE)
    local function rename(name)
      local settings = e2e.read_file(dir .. "/settings.lua")
      local renamed = settings:gsub('local QUERY = "[%w_]+" %-%- QUERY', 'local QUERY = "' .. name .. '" -- QUERY')
      assert.are_not.equal(settings, renamed)
      e2e.write_file(dir .. "/settings.lua", renamed)
    end
    -- not the default "token": each worker's start-up load must hand it over
    rename("sid")
    local server = e2e.start(dir, { workers = 2, args = { "--log-level", "debug" } })
    finally(function()
      server:cleanup()
      e2e.remove_tree(tmp)
    end)
    for _, tag in ipairs(both_workers(server, "sid", "sid=SECRET3", "alice")) do
      local a = access_for(server, "/whoami/?n=" .. tag .. "&sid=" .. E)
      assert.equal("GET /whoami/?n=" .. tag .. "&sid=" .. E, a.request)
    end

    rename("access_token")
    assert.truthy(e2e.eventually(function() return server:log():find("flosse: reloaded ", 1, true) end, WAIT),
      server:log())

    -- Each worker reloads on its own thread, soon after the main one: until
    -- both answer with the new app, probe without a secret (an old app does
    -- not read access_token, so it logs it as it came).
    both_workers(server, "access_token", "access_token=probe", "anonymous")
    -- the new name is redacted on both workers; the old one is no longer a credential
    for _, tag in ipairs(both_workers(server, "access_token", "access_token=SECRET4&token=plain", "alice")) do
      access_for(server, "/whoami/?n=" .. tag .. "&access_token=" .. E .. "&token=plain")
    end
    assert_no_secret(server:log(), { "SECRET3", "SECRET4" })
  end)
end)
