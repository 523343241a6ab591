-- End to end (issue 4): the flosse command. --version and --help; `flosse
-- check` (the route table, errors); `flosse new` (a new app that check passes
-- and serve runs at once); every error a user can cause is one line on stderr
-- starting "flosse: ", exit status 2.
local e2e = require "e2e"

local function flosse(args, opts) return e2e.run_flosse(args, opts) end

-- A user error: exit 2, exactly one stderr line starting "flosse: ".
local function assert_user_error(args, opts, pattern)
  local code, stdout, stderr = flosse(args, opts)
  local what = "flosse " .. table.concat(args, " ")
  assert.are_not.equal(124, code, what .. ": still running at the deadline")
  assert.equal(2, code, what .. ": exit status; stdout:\n" .. stdout .. "\nstderr:\n" .. stderr)
  local ls = e2e.lines(stderr)
  assert.equal(1, #ls, what .. ": stderr lines:\n" .. stderr)
  assert.matches("^flosse: ", ls[1], what)
  assert.is_true(#ls[1] > #"flosse: " + 10, what .. ": a line that says little: " .. ls[1])
  if pattern then assert.matches(pattern, ls[1], what) end
  assert.is_falsy(stdout:find("listening", 1, true), what .. ": it served")
  return ls[1], stdout
end

-- Splits a route line of `flosse check`: route, kind, view, permissions.
local function route_line(line)
  local route, kind, rest = line:match("^(%S+)%s+(%S+)%s+(.-)%s*$")
  if not route then return nil end
  local view, perms = rest:match("^(.-)%s+(%S+)$")
  return { route = route, kind = kind, view = view, perms = perms, line = line }
end

-- Runs `flosse check args...`; expects success. Returns the header line, the
-- route lines (parsed, by route and in order) and the OK line.
local function check_ok(args, opts)
  local code, stdout, stderr = flosse(args, opts)
  assert.equal(0, code, "flosse " .. table.concat(args, " ") .. ": exit status; stderr:\n" .. stderr
    .. "\nstdout:\n" .. stdout)
  assert.equal("", stderr)
  local ls = e2e.lines(stdout)
  assert.is_true(#ls >= 2, stdout)
  local routes, by_route = {}, {}
  for i = 2, #ls - 1 do
    if ls[i]:match("^TASK%s") then break end -- the tasks tasks.lua starts follow the routes
    local r = route_line(ls[i])
    assert(r, "not a route line: " .. ls[i])
    routes[#routes + 1] = r
    by_route[r.route] = r
  end
  return ls[1], routes, by_route, ls[#ls], stdout
end

describe("#e2e flosse --version and --help", function()
  it("--version prints flosse 0.1.0", function()
    local code, stdout, stderr = flosse({ "--version" })
    assert.equal(0, code, stderr)
    assert.equal("flosse 0.1.0\n", stdout)
    assert.equal("", stderr)
  end)

  it("--help, help and -h/--help on every subcommand print usage on stdout, exit 0", function()
    local tmp = e2e.tempdir()
    finally(function() e2e.remove_tree(tmp) end)
    local cases = {
      { { "--help" }, { "serve", "check", "new", "--version" } },
      { { "help" }, { "serve", "check", "new" } },
      { { "serve", "--help" }, { "--host", "--port", "--reload", "--no-reload", "--log-level", "--heartbeat",
                                 "--max-connections", "--grace" } },
      { { "serve", "-h" }, { "--port" } },
      { { "check", "--help" }, { "check" } },
      { { "check", "-h" }, { "check" } },
      { { "new", "--help" }, { "new" } },
      { { "new", "-h" }, { "new" } },
    }
    for _, case in ipairs(cases) do
      local args, words = case[1], case[2]
      local what = "flosse " .. table.concat(args, " ")
      -- run in an empty folder: `new --help` must not make a folder
      local code, stdout, stderr = flosse(args, { cwd = tmp })
      assert.equal(0, code, what .. ": exit status; stderr:\n" .. stderr)
      assert.equal("", stderr, what)
      assert.truthy(stdout:lower():find("usage", 1, true), what .. ": no usage:\n" .. stdout)
      for _, w in ipairs(words) do
        assert.truthy(stdout:find(w, 1, true), what .. ": usage does not mention " .. w .. ":\n" .. stdout)
      end
    end
    local p = assert(io.popen("ls -A " .. e2e.shell_quote(tmp)))
    local listing = p:read("a")
    p:close()
    assert.equal("", listing, "--help made files")
  end)
end)

-- How many routes the example app has, counted from its urlpatterns here
-- (the app grows with the features; the command must list every route).
local function example_route_count()
  local app = assert(require("flosse.app").load("scripts"))
  local n = 0
  local function count(list)
    for _, item in ipairs(list) do
      if item.route then n = n + 1 else count(item) end
    end
  end
  count(app.urlpatterns)
  return n
end

describe("#e2e flosse check", function()
  it("prints the example app's routes, views and permissions, then OK", function()
    local header, routes, by_route, ok_line = check_ok({ "check", "scripts" })
    assert.matches("^ROUTE%s+KIND%s+VIEW%s+PERMISSIONS%s*$", header)
    assert.equal("OK: " .. #routes .. " routes in scripts", ok_line)
    assert.equal(example_route_count(), #routes)
    -- urlpatterns order
    assert.equal("/", routes[1].route)
    assert.equal("/sse/progress/", routes[2].route)
    assert.same({ route = "/", kind = "plain", view = 'static.file("index.html")', perms = "-",
                  line = routes[1].line }, routes[1])
    local progress = by_route["/sse/progress/"]
    assert.equal("stream", progress.kind)
    assert.equal("views.progress", progress.view)
    assert.equal("IsAuthenticated", progress.perms)
    assert.equal("IsAdminUser", by_route["/sse/admin/"].perms)
    assert.truthy(by_route["/sse/apikey/"].perms:find("HasAPIKey", 1, true), by_route["/sse/apikey/"].line)
    assert.equal("views.apikey", by_route["/sse/apikey/"].view)
    assert.equal("views.order", by_route["/sse/orders/<int:order_id>/"].view)
    assert.equal("views.styles.string", by_route["/sse/styles/string/"].view)
    assert.equal("-", by_route["/sse/styles/string/"].perms)
    assert.equal("stream", by_route["/sse/boom/"].kind)
  end)

  it("without a folder checks ./scripts", function()
    local _, routes, _, ok_line = check_ok({ "check" })
    local n = example_route_count()
    assert.equal(n, #routes)
    assert.equal("OK: " .. n .. " routes in scripts", ok_line)
  end)

  it("names static views, nested tables, inline functions and custom permission classes", function()
    local _, routes, by_route, ok_line = check_ok({ "check", "spec/fixtures/check" })
    assert.equal(6, #routes)
    assert.matches("^OK: 6 routes in .*spec/fixtures/check/?$", ok_line)
    local function row(route) return assert(by_route[route], "no line for " .. route) end
    assert.equal("/", routes[1].route)
    assert.equal('static.file("index.html")', row("/").view)
    assert.equal("plain", row("/files/<path:path>").kind)
    assert.equal('static.dir("public")', row("/files/<path:path>").view)
    assert.equal("plain", row("/plain/").kind)
    assert.equal("views.plain", row("/plain/").view)
    assert.equal("-", row("/plain/").perms)
    assert.equal("stream", row("/nested/").kind)
    assert.equal("views.nested.stream", row("/nested/").view)
    assert.equal("stream", row("/guarded/").kind)
    assert.equal("IsAuthenticated,NamedPermission,views.Held", row("/guarded/").perms)
    assert.equal("plain", row("/inline/").kind)
    assert.matches("^function at .*urls%.lua:12$", row("/inline/").view)
  end)

  it("a broken app: one line naming file and line on stderr, exit 2", function()
    local line, stdout = assert_user_error({ "check", "spec/fixtures/broken_urls" }, nil, "urls%.lua:3: ")
    assert.is_falsy(stdout:find("OK:", 1, true))
    assert.matches("^flosse: .*urls%.lua:3: ", line)
    line = assert_user_error({ "check", "spec/fixtures/error_urls" }, nil, "urls%.lua:2: ")
    assert.truthy(line:find("fixture urls.lua raised on purpose", 1, true), line)
    assert_user_error({ "check", "spec/fixtures/no_urls" }, nil, "urls%.lua")

    -- a syntax error in a module urls.lua requires
    local dir, tmp = e2e.copy_app("spec/fixtures/check")
    finally(function() e2e.remove_tree(tmp) end)
    e2e.write_file(dir .. "/views.lua", "-- broken on purpose\nlocal views = {\nreturn views\n")
    assert_user_error({ "check", dir }, nil, "^flosse: .*views%.lua:3: ")
    -- a module urls.lua requires that is not there: the file and line of the require
    os.remove(dir .. "/views.lua")
    line = assert_user_error({ "check", dir }, nil, "^flosse: .*urls%.lua:4: ")
    assert.truthy(line:find("views", 1, true), line)
    -- and in settings.lua
    e2e.write_file(dir .. "/views.lua", e2e.read_file("spec/fixtures/check/views.lua"))
    e2e.write_file(dir .. "/settings.lua", "return {\n  debug = ,\n}\n")
    assert_user_error({ "check", dir }, nil, "^flosse: .*settings%.lua:2: ")
  end)

  it("a missing folder or an unknown flag: one line, exit 2", function()
    assert_user_error({ "check", "spec/fixtures/does-not-exist" })
    assert_user_error({ "check", "scripts", "--bogus" })
  end)
end)

describe("#e2e flosse new", function()
  it("writes a new app that check passes and serve runs at once", function()
    -- busted keeps only the last finally of a test: one for all
    local tmp, server, c = e2e.tempdir(), nil, nil
    finally(function()
      if c then c:close() end
      if server then server:cleanup() end
      e2e.remove_tree(tmp)
    end)
    local code, stdout, stderr = flosse({ "new", "myapp" }, { cwd = tmp })
    assert.equal(0, code, "exit status; stderr:\n" .. stderr)
    for _, name in ipairs({ "views.lua", "urls.lua", "settings.lua", "index.html" }) do
      local f = io.open(tmp .. "/myapp/" .. name, "r")
      assert(f, "flosse new did not write myapp/" .. name)
      f:close()
      assert.truthy(stdout:find(name, 1, true), "the output does not say it wrote " .. name .. ":\n" .. stdout)
    end
    -- run from tmp through an absolute path to the command: it says that path
    assert.truthy(stdout:find("run: " .. e2e.absolute(e2e.BIN) .. " serve myapp", 1, true), stdout)

    local _, routes, by_route, ok_line = check_ok({ "check", "myapp" }, { cwd = tmp })
    assert.equal("OK: " .. #routes .. " routes in myapp", ok_line)
    assert(by_route["/"], "no / route")
    assert(by_route["/sse/hello/"], "no /sse/hello/ route")
    assert.equal("stream", by_route["/sse/hello/"].kind)

    server = e2e.start(tmp .. "/myapp")
    local page = e2e.get(server.port, "/")
    assert.equal(200, page.status, page.raw)
    assert.matches("^text/html", page.headers["content-type"])
    assert.truthy(page.body:find("/sse/hello/", 1, true), "the page does not listen to /sse/hello/:\n" .. page.body)
    local head
    c, head = e2e.open_stream(server.port, "/sse/hello/")
    assert.equal(200, head.status, head.raw)
    assert.matches("^text/event%-stream", head.headers["content-type"])
    local got = e2e.pump({ c }, function()
      for _, ev in ipairs(c:events()) do
        if ev.data then return true end
      end
      return false
    end)
    assert.is_true(got, "no event from /sse/hello/; got:\n" .. tostring(c.stream_body))
  end)

  -- Runs the command `flosse new` printed (its "run: " line) in cwd, in the
  -- background on a free port, and waits (bounded) until it listens; returns
  -- the port. env: as for e2e.run_flosse.
  local function run_printed(stdout, cwd, env, cleanup)
    local cmd = stdout:match("\nrun: ([^\n]+)\n") or stdout:match("^run: ([^\n]+)\n")
    assert(cmd, "flosse new printed no run: line:\n" .. stdout)
    local log = os.tmpname()
    cleanup[#cleanup + 1] = log
    local vars = {}
    for k, v in pairs(env) do vars[#vars + 1] = e2e.shell_quote(k .. "=" .. v) end
    local build_dir = os.getenv("FLOSSE_BUILD_DIR")
    if build_dir then vars[#vars + 1] = e2e.shell_quote("FLOSSE_BUILD_DIR=" .. e2e.absolute(build_dir)) end
    -- timeout bounds it should the kill below never come; the suite's wrapper
    -- (the sanitizer build's LD_PRELOAD, valgrind) goes before the command
    local wrap = os.getenv("FLOSSE_TEST_WRAP")
    wrap = wrap and (wrap .. " ") or ""
    local p = assert(io.popen("cd " .. e2e.shell_quote(cwd) .. " && exec env " .. table.concat(vars, " ")
      .. " timeout -k 2 60 " .. wrap .. cmd .. " --host 127.0.0.1 --port 0 >" .. e2e.shell_quote(log)
      .. " 2>&1 </dev/null & echo $!", "r"))
    local pid = tonumber(p:read("l"))
    p:close()
    cleanup.pids[#cleanup.pids + 1] = pid
    local port = e2e.eventually(function()
      return e2e.read_file(log):match("flosse: listening on http://127%.0%.0%.1:(%d+)/")
    end)
    assert(port, "the printed command did not listen: " .. cmd .. "\n" .. e2e.read_file(log))
    return tonumber(port), cmd
  end

  it("prints the command that works from where it was run, and that command serves the app", function()
    local tmp = e2e.tempdir()
    local cleanup = { pids = {} }
    finally(function()
      for _, pid in ipairs(cleanup.pids) do os.execute("kill " .. pid .. " 2>/dev/null") end
      for _, f in ipairs(cleanup) do os.remove(f) end
      e2e.remove_tree(tmp)
    end)
    local abs_bin = e2e.absolute(e2e.BIN)
    local cases = {
      -- from the checkout, through the relative bin/flosse, a folder elsewhere
      { args = { "new", tmp .. "/rel" }, cwd = e2e.CWD, env = {},
        want = e2e.BIN .. " serve " .. tmp .. "/rel" },
      -- elsewhere, through an absolute path to the command (run_flosse makes it so)
      { args = { "new", "abs" }, cwd = tmp, env = {}, want = abs_bin .. " serve abs" },
    }
    -- through PATH, as an installed flosse runs: plain `flosse`
    local bin_dir, name = abs_bin:match("^(.*)/([^/]+)$")
    if name == "flosse" then
      cases[#cases + 1] = { args = { "new", "onpath" }, cwd = tmp, path = true,
        env = { PATH = bin_dir .. ":" .. os.getenv("PATH") }, want = "flosse serve onpath" }
    end
    for _, case in ipairs(cases) do
      local code, stdout, stderr
      if case.path then
        -- run_flosse would name the command by its path: go through the shell's PATH
        local out = os.tmpname()
        cleanup[#cleanup + 1] = out
        local ok = os.execute("cd " .. e2e.shell_quote(tmp) .. " && env " .. e2e.shell_quote("PATH=" .. case.env.PATH)
          .. (os.getenv("FLOSSE_BUILD_DIR") and (" " .. e2e.shell_quote("FLOSSE_BUILD_DIR="
            .. e2e.absolute(os.getenv("FLOSSE_BUILD_DIR")))) or "")
          .. " timeout -k 2 " .. e2e.TEST_TIMEOUT .. " " .. (os.getenv("FLOSSE_TEST_WRAP") or "")
          .. " flosse new onpath >" .. e2e.shell_quote(out) .. " 2>&1")
        code, stdout, stderr = ok and 0 or 1, e2e.read_file(out), ""
      else
        code, stdout, stderr = flosse(case.args, { cwd = case.cwd ~= e2e.CWD and case.cwd or nil })
      end
      local what = table.concat(case.args, " ")
      assert.equal(0, code, what .. ": exit status; stderr:\n" .. stderr .. stdout)
      assert.truthy(stdout:find("run: " .. case.want .. "\n", 1, true), what .. ": wants run: " .. case.want
        .. "; printed:\n" .. stdout)
      local port, cmd = run_printed(stdout, case.cwd, case.env, cleanup)
      local page = e2e.get(port, "/")
      assert.equal(200, page.status, cmd .. ": GET /\n" .. page.raw)
    end
  end)

  it("a folder that exists already: one line, exit 2, nothing written", function()
    local tmp = e2e.tempdir()
    finally(function() e2e.remove_tree(tmp) end)
    assert(os.execute("mkdir " .. e2e.shell_quote(tmp .. "/taken")))
    e2e.write_file(tmp .. "/taken/keep.txt", "mine\n")
    assert_user_error({ "new", "taken" }, { cwd = tmp }, "taken")
    assert.equal("mine\n", e2e.read_file(tmp .. "/taken/keep.txt"))
    assert.is_nil(io.open(tmp .. "/taken/views.lua", "r"), "it wrote into the existing folder")
  end)

  it("without a name, or with an unknown flag: one line, exit 2", function()
    local tmp = e2e.tempdir()
    finally(function() e2e.remove_tree(tmp) end)
    assert_user_error({ "new" }, { cwd = tmp })
    assert_user_error({ "new", "--bogus", "x" }, { cwd = tmp })
    assert.is_nil(io.open(tmp .. "/x/views.lua", "r"))
    assert.is_nil(io.open(tmp .. "/--bogus/views.lua", "r"))
  end)
end)

describe("#e2e flosse user errors: one line starting \"flosse: \", exit 2", function()
  it("an unknown subcommand", function()
    assert_user_error({ "frobnicate" }, nil, "frobnicate")
    assert_user_error({ "--bogus" })
  end)

  it("a missing folder", function()
    assert_user_error({ "serve", "spec/fixtures/does-not-exist", "--port", "0" }, nil, "does%-not%-exist")
  end)

  it("an unknown flag", function()
    assert_user_error({ "serve", "scripts", "--bogus" }, nil, "%-%-bogus")
    assert_user_error({ "serve", "scripts", "--port", "0", "-x" })
  end)

  it("a flag without its value", function()
    assert_user_error({ "serve", "scripts", "--port" }, nil, "%-%-port")
    assert_user_error({ "serve", "scripts", "--host" }, nil, "%-%-host")
    assert_user_error({ "serve", "scripts", "--log-level" }, nil, "%-%-log%-level")
    assert_user_error({ "serve", "scripts", "--heartbeat" }, nil, "%-%-heartbeat")
  end)

  it("a flag with a bad value", function()
    local cases = {
      { "--port", "abc" }, { "--port", "70000" }, { "--port", "-1" },
      { "--heartbeat", "-1" }, { "--heartbeat", "soon" },
      { "--max-connections", "1.5" }, { "--grace", "x" },
      { "--log-level", "loud" },
    }
    for _, case in ipairs(cases) do
      local line = assert_user_error({ "serve", "scripts", "--host", "127.0.0.1", case[1], case[2] })
      assert.truthy(line:find(case[1], 1, true), "the line does not name the flag: " .. line)
    end
  end)

  it("a taken port", function()
    local server = e2e.start("scripts")
    finally(function() server:cleanup() end)
    assert_user_error({ "serve", "scripts", "--host", "127.0.0.1", "--port", tostring(server.port) }, nil,
      "127%.0%.0%.1:" .. server.port)
    assert.equal(200, e2e.get(server.port, "/sse/styles/string/").status)
  end)

  it("a broken urls.lua or settings.lua at start-up", function()
    assert_user_error({ "serve", "spec/fixtures/broken_urls", "--port", "0" }, nil, "urls%.lua:3: ")
    assert_user_error({ "serve", "spec/fixtures/error_urls", "--port", "0" }, nil, "urls%.lua:2: ")
    local dir, tmp = e2e.copy_app("spec/fixtures/check")
    finally(function() e2e.remove_tree(tmp) end)
    e2e.write_file(dir .. "/settings.lua", "-- broken on purpose\nreturn { debug = = 1 }\n")
    assert_user_error({ "serve", dir, "--port", "0" }, nil, "settings%.lua:2: ")
  end)
end)
