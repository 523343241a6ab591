-- End to end (issue 14): the README's Quick start runs as pasted. Its Lua
-- blocks, each written to the file its first line names, make an app that
-- `flosse check` passes; its curl line, against that app, gets the events the
-- README shows; every route its urls.lua declares answers. And the README
-- names every Debian package `make deps`/`make test-deps` installs.
--
-- Everything is read from README.md and the Makefile at run time, so editing
-- the README's Quick start into something that does not run fails here.
local e2e = require "e2e"

local README = e2e.read_file("README.md")

-- The "## Quick start..." section: from its heading to the next "## ".
local function quick_start()
  local from = README:find("\n## Quick start", 1, true)
  assert(from, "README.md has no \"## Quick start\" section")
  local to = README:find("\n## ", from + 1, true) or #README + 1
  return README:sub(from + 1, to)
end

-- The fenced blocks of text, in order: { lang =, body = } with the fence's
-- indentation (the blocks sit in a numbered list) taken off every line.
local function fenced_blocks(text)
  local blocks, cur = {}, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local indent, lang = line:match("^(%s*)```(%S*)%s*$")
    if not cur and indent then
      cur = { lang = lang, indent = #indent, lines = {} }
    elseif cur and indent then
      cur.body = table.concat(cur.lines, "\n") .. "\n"
      blocks[#blocks + 1] = cur
      cur = nil
    elseif cur then
      -- only blanks are taken off: a line indented less keeps its text
      local cut = line:match("^" .. (" "):rep(cur.indent)) and cur.indent or #line:match("^%s*")
      cur.lines[#cur.lines + 1] = line:sub(cut + 1)
    end
  end
  assert(not cur, "README.md's Quick start has a fence that is not closed")
  return blocks
end

-- The Lua blocks of the Quick start, each with the file its first line names
-- (`-- myapp/views.lua` -> views.lua).
local function lua_files()
  local files = {}
  for _, b in ipairs(fenced_blocks(quick_start())) do
    if b.lang == "lua" then
      local first = b.body:match("^[^\n]*")
      local file = first:match("^%-%-%s*[%w_.-]+/([%w_.-]+%.lua)%s*$")
      assert(file, "a Lua block of the Quick start does not say its file on its first line"
        .. " (like -- myapp/views.lua): " .. first)
      assert(not files[file], "two Lua blocks of the Quick start are " .. file)
      files[file] = b.body
      files[#files + 1] = file
    end
  end
  return files
end

-- The curl command lines of the Quick start's shell blocks.
local function curl_lines()
  local lines = {}
  for _, b in ipairs(fenced_blocks(quick_start())) do
    if b.lang == "sh" or b.lang == "bash" or b.lang == "console" then
      for line in b.body:gmatch("[^\n]+") do
        local cmd = line:gsub("^%$%s*", ""):gsub("%s+#.*$", "")
        if cmd:match("^curl%s") then lines[#lines + 1] = cmd end
      end
    end
  end
  return lines
end

-- The output the Quick start shows: its bare ``` block (no language).
local function shown_output()
  for _, b in ipairs(fenced_blocks(quick_start())) do
    if b.lang == "" and b.body:find("event:", 1, true) then return b.body end
  end
end

-- Writes the Quick start's files into a fresh app folder; returns it and the
-- temporary folder to remove.
local function pasted_app()
  local tmp = e2e.tempdir()
  local dir = tmp .. "/myapp"
  assert(os.execute("mkdir " .. e2e.shell_quote(dir)))
  for _, file in ipairs(lua_files()) do e2e.write_file(dir .. "/" .. file, lua_files()[file]) end
  return dir, tmp
end

-- An event's data as a value to compare: JSON objects decoded (the key order
-- of an encoded table is not fixed), anything else as is.
local function data_value(data)
  if data and data:match("^[%[{]") then
    local ok, v = pcall(e2e.json_decode, data)
    if ok then return v end
  end
  return data
end

-- Deep equality of two decoded values.
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

describe("#e2e README: the Quick start as pasted", function()
  it("has Lua blocks for views.lua, urls.lua and settings.lua, and a curl line", function()
    local files = lua_files()
    for _, file in ipairs({ "views.lua", "urls.lua", "settings.lua" }) do
      assert(files[file], "the Quick start has no block for " .. file)
    end
    assert.is_true(#curl_lines() >= 1, "the Quick start has no curl line")
  end)

  it("flosse check passes the app its blocks make, with every route urls.lua declares", function()
    local dir, tmp = pasted_app()
    finally(function() e2e.remove_tree(tmp) end)
    local code, stdout, stderr = e2e.run_flosse({ "check", dir })
    assert.equal(0, code, "flosse check: exit status; stderr:\n" .. stderr .. "\nstdout:\n" .. stdout)
    for route in lua_files()["urls.lua"]:gmatch('path%(%s*"([^"]*)"') do
      assert.truthy(stdout:find("/" .. route, 1, true), "flosse check does not list /" .. route .. ":\n" .. stdout)
    end
  end)

  it("its curl line, against the pasted app, gets the events the README shows", function()
    local dir, tmp = pasted_app()
    local server
    finally(function()
      if server then server:cleanup() end
      e2e.remove_tree(tmp)
    end)
    server = e2e.start(dir)
    for _, line in ipairs(curl_lines()) do
      local url_port = line:match("https?://[^/%s']+:(%d+)/")
      assert(url_port, "the curl line has no http://HOST:PORT/ URL: " .. line)
      -- the test server's port; bounded, so a stream that never ends fails
      local cmd = line:gsub(":" .. url_port .. "/", ":" .. server.port .. "/", 1)
        :gsub("^curl%s", "curl -sS --max-time 20 ", 1)
      local p = assert(io.popen(cmd .. " 2>&1", "r"))
      local out = p:read("a")
      p:close()
      local events = e2e.parse_sse(out)
      local names = {}
      for _, ev in ipairs(events) do names[#names + 1] = ev.event or "message" end
      assert.is_true(#events >= 2, cmd .. ": got\n" .. out)
      assert.equal("progress", names[1], cmd .. ": got\n" .. out)
      assert.equal("complete", names[#names], cmd .. ": got\n" .. out)

      -- What the README shows is the stream with events left out: each shown
      -- event comes, in order, with the same name and data.
      local shown = shown_output()
      assert(shown, "the Quick start does not show the output")
      local at = 1
      -- the block ends without the blank line that ends its last event
      local wants = e2e.parse_sse(shown .. "\n")
      assert.is_true(#wants >= 2, "the output the README shows:\n" .. shown)
      for _, want in ipairs(wants) do
        local wanted = data_value(want.data)
        while at <= #events and not (events[at].event == want.event
            and same(wanted, data_value(events[at].data))) do
          at = at + 1
        end
        assert.is_true(at <= #events, "the stream has no event " .. tostring(want.event) .. " with data "
          .. tostring(want.data) .. " where the README shows it; got:\n" .. out)
        at = at + 1
      end
    end
  end)

  it("every route its urls.lua declares answers (not 404)", function()
    local dir, tmp = pasted_app()
    local server, c
    finally(function()
      if c then c:close() end
      if server then server:cleanup() end
      e2e.remove_tree(tmp)
    end)
    server = e2e.start(dir)
    local samples = { int = "42", str = "abc", slug = "a-b", path = "a/b",
      uuid = "123e4567-e89b-12d3-a456-426614174000" }
    local n = 0
    for route in lua_files()["urls.lua"]:gmatch('path%(%s*"([^"]*)"') do
      local target = "/" .. route:gsub("<(%w+):[%w_]+>", function(conv)
        return assert(samples[conv], "no sample for converter " .. conv)
      end):gsub("<[%w_]+>", "abc")
      -- the head is enough: a stream may run for seconds
      local head
      c, head = e2e.open_stream(server.port, target)
      c:close()
      c = nil
      assert.are_not.equal(404, head.status, target .. ":\n" .. head.raw)
      assert.is_true(head.status < 500, target .. ":\n" .. head.raw)
      n = n + 1
    end
    assert.is_true(n >= 1, "the Quick start's urls.lua declares no path()")
  end)
end)

describe("README: the Debian packages", function()
  it("names every package make deps and make test-deps install", function()
    local makefile = e2e.read_file("Makefile"):gsub("\\\n", " ")
    local n = 0
    for _, var in ipairs({ "DEB_PACKAGES", "TEST_PACKAGES" }) do
      local list = makefile:match("\n" .. var .. "%s*=%s*([^\n]*)")
      assert(list, "the Makefile has no " .. var)
      for pkg in list:gmatch("%S+") do
        n = n + 1
        -- as a word: "lua5.4" must not pass by "liblua5.4-dev"
        local pattern = "%f[%w%-%.]" .. pkg:gsub("%p", "%%%0") .. "%f[^%w%-%.]"
        assert.truthy(README:find(pattern), "README.md does not name " .. var .. "'s " .. pkg)
      end
    end
    assert.is_true(n > 10, "too few packages parsed from the Makefile")
  end)
end)
