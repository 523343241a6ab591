-- End to end: installing flosse with luarocks. `luarocks lint` on the
-- rockspec, `luarocks make --deps-mode=none` into an empty temporary tree, then
-- the installed command: --version, check, serve; and proof that it runs the
-- tree's modules, not the checkout's.
--
-- The build runs in a temporary copy of the work tree (the files git would
-- put in a checkout, uncommitted ones included), so that luarocks's objects
-- (core/*.o, flosse/core.so) never land in the repository and a build here
-- cannot race with one in the work tree. Nothing is written into the repo.
--
-- Nothing here runs under FLOSSE_TEST_WRAP (spec/run's ASan preload): not
-- luarocks, whose build runs gcc, and not the installed command either: its
-- luarocks wrapper loads luarocks.loader, which runs `gcc -print-multiarch`
-- at every start, and gcc under the preload reports its own leaks. The
-- installed core is luarocks's plain build, not the sanitizer one, so the
-- preload would check nothing of flosse's there anyway.
local e2e = require "e2e"

local q = e2e.shell_quote
local LUAROCKS = "luarocks --lua-version 5.4"
local BUILD_TIMEOUT = 300
-- What the commands must not inherit: a Lua path that could reach the
-- checkout, or spec/run's sanitizer settings.
local CLEAN_ENV = "env -u LUA_PATH -u LUA_PATH_5_4 -u LUA_CPATH -u LUA_CPATH_5_4 -u LUA_INIT"
  .. " -u LUA_INIT_5_4 -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u FLOSSE_BUILD_DIR"

-- Set as LUA_INIT_5_4, it makes the command report where every flosse module
-- was loaded from (require's second result is the file it found, on the
-- module's first load only).
local PROBE = 'local r = require; require = function(name) local m, where = r(name);'
  .. ' if type(name) == "string" and name:match("^flosse") and where ~= nil then'
  .. ' io.stderr:write("flosse-e2e: loaded ", name, " from ", tostring(where), "\\n") end'
  .. ' return m, where end'

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Runs a shell command; returns its exit code, stdout and stderr.
local function run(cmd)
  local out, err = os.tmpname(), os.tmpname()
  local ok, how, code = os.execute("( " .. cmd .. " ) >" .. q(out) .. " 2>" .. q(err) .. " </dev/null")
  local stdout, stderr = read_file(out) or "", read_file(err) or ""
  os.remove(out)
  os.remove(err)
  if how == "signal" then code = 128 + code end
  if ok == true and code == nil then code = 0 end
  return code, stdout, stderr
end

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local s = p:read("a")
  p:close()
  return (s:gsub("%s+$", ""))
end

-- The "flosse-e2e: loaded NAME from WHERE" lines of the probe: name -> where.
local function loaded_modules(output)
  local t = {}
  for name, where in output:gmatch("flosse%-e2e: loaded (%S+) from ([^\n]*)") do
    t[name] = t[name] or where
  end
  return t
end

-- The Lua modules of lua/flosse/ (module name -> path from the repo root).
local function lua_modules(repo)
  local t = {}
  for file in capture("ls " .. q(repo .. "/lua/flosse")):gmatch("[^\n]+") do
    local base = file:match("^(.+)%.lua$")
    if base then
      t[base == "init" and "flosse" or "flosse." .. base] = "lua/flosse/" .. file
    end
  end
  return t
end

local function sorted(list)
  table.sort(list)
  return list
end

describe("#e2e luarocks install of flosse", function()
  local repo = capture("pwd -P")
  local rockspec = repo .. "/flosse-scm-1.rockspec"
  local tree, src
  local lint, build = {}, {}

  -- Everything the flosse modules were loaded from must be in the tree.
  local function assert_from_tree(loaded, output)
    assert.truthy(loaded["flosse.cli"], "the probe saw no flosse module load:\n" .. output)
    assert.truthy(loaded["flosse.core"], "the probe saw no flosse.core load:\n" .. output)
    for name, where in pairs(loaded) do
      local prefix = name == "flosse.core" and tree .. "/lib/lua/5.4/" or tree .. "/share/lua/5.4/"
      assert.equal(prefix, where:sub(1, #prefix), name .. " was not loaded from the tree:\n" .. output)
    end
  end

  setup(function()
    tree = capture("mktemp -d")
    src = capture("mktemp -d")
    assert(tree ~= "" and src ~= "", "mktemp -d failed")

    -- lint reads the rockspec where it is; it writes nothing.
    lint.code, lint.out, lint.err = run("cd " .. q(repo) .. " && " .. CLEAN_ENV .. " timeout -k 5 60 "
      .. LUAROCKS .. " lint flosse-scm-1.rockspec")

    -- The copy: tracked and untracked-but-not-ignored files that exist.
    local listfile = os.tmpname()
    local list = assert(io.open(listfile, "w"))
    local p = assert(io.popen("git -C " .. q(repo) .. " ls-files -co --exclude-standard 2>/dev/null"))
    local n = 0
    for file in p:lines() do
      if exists(repo .. "/" .. file) then
        list:write(file, "\n")
        n = n + 1
      end
    end
    p:close()
    list:close()
    local copy
    if n > 0 then
      copy = "tar -C " .. q(repo) .. " -cf - -T " .. q(listfile)
    else  -- not a git checkout: everything but the build output
      copy = "tar -C " .. q(repo) .. " --exclude=./.git --exclude=./build --exclude='*.o' --exclude='*.so' -cf - ."
    end
    local code, _, err = run(copy .. " | tar -xf - -C " .. q(src))
    os.remove(listfile)
    assert(code == 0, "copying the work tree failed: " .. err)

    local t0 = e2e.now()
    build.code, build.out, build.err = run("cd " .. q(src) .. " && " .. CLEAN_ENV
      .. " timeout -k 5 " .. BUILD_TIMEOUT .. " " .. LUAROCKS
      .. " make --deps-mode=none --tree=" .. q(tree))
    build.seconds = e2e.now() - t0
    build.log = "luarocks make exited " .. tostring(build.code) .. " after "
      .. string.format("%.1f", build.seconds) .. " s\n-- stdout:\n" .. build.out .. "\n-- stderr:\n" .. build.err
  end)

  teardown(function()
    if tree and tree:match("^/tmp/") then os.execute("rm -rf " .. q(tree)) end
    if src and src:match("^/tmp/") then os.execute("rm -rf " .. q(src)) end
  end)

  it("passes luarocks lint", function()
    assert.equal(0, lint.code, "luarocks lint failed:\n" .. lint.out .. lint.err)
  end)

  it("lists every C source of the Makefile and every Lua module of lua/flosse", function()
    local env = {}
    assert(loadfile(rockspec, "t", env))()
    assert.equal("builtin", env.build.type)
    local modules = env.build.modules

    local makefile = assert(read_file(repo .. "/Makefile")):gsub("\\\n", " ")
    local core_src = {}
    for file in assert(makefile:match("\nCORE_SRC%s*=%s*([^\n]*)")):gmatch("%S+") do
      core_src[#core_src + 1] = file
    end
    assert.same(sorted(core_src), sorted({ table.unpack(modules["flosse.core"].sources) }))

    local expected, listed = lua_modules(repo), {}
    for name, file in pairs(modules) do
      if type(file) == "string" then listed[name] = file end
    end
    assert.same(expected, listed)
    assert.equal("bin/flosse", env.build.install.bin.flosse)
  end)

  it("luarocks make installs the command, the C core and every module into the tree", function()
    assert.equal(0, build.code, build.log)
    assert.truthy(exists(tree .. "/bin/flosse"), build.log)
    assert.truthy(exists(tree .. "/lib/lua/5.4/flosse/core.so"), build.log)
    for _, file in pairs(lua_modules(repo)) do
      local installed = tree .. "/share/lua/5.4/" .. file:gsub("^lua/", "")
      assert.truthy(exists(installed), installed .. " missing\n" .. build.log)
    end
  end)

  it("the installed flosse --version prints the version, from any folder", function()
    assert.equal(0, build.code, build.log)
    local code, out, err = run("cd /tmp && " .. CLEAN_ENV .. " timeout -k 2 20 " .. q(tree .. "/bin/flosse")
      .. " --version")
    assert.equal(0, code, err)
    assert.equal("flosse 0.1.0\n", out)
  end)

  it("the installed flosse check, run from /tmp, loads the example app with the tree's modules", function()
    assert.equal(0, build.code, build.log)
    local code, out, err = run("cd /tmp && " .. CLEAN_ENV .. " LUA_INIT_5_4=" .. q(PROBE) .. " timeout -k 2 30 "
      .. q(tree .. "/bin/flosse") .. " check " .. q(repo .. "/scripts"))
    local all = "-- stdout:\n" .. out .. "\n-- stderr:\n" .. err
    assert.equal(0, code, all)
    local progress
    for _, line in ipairs(e2e.lines(out)) do
      if line:match("^/sse/progress/%s") then progress = line end
    end
    assert.truthy(progress, "no /sse/progress/ route listed:\n" .. all)
    assert.truthy(progress:match("%sstream%s"), progress)
    assert.truthy(progress:find("IsAuthenticated", 1, true), progress)
    assert.truthy(out:match("\nOK: %d+ routes in [^\n]*scripts\n?$"), all)
    assert_from_tree(loaded_modules(err), all)
  end)

  it("the installed flosse serves the example app", function()
    assert.equal(0, build.code, build.log)
    local saved_bin, saved_wrap = e2e.BIN, e2e.WRAP
    local server
    -- busted keeps only the last finally of a test: one clean-up for both.
    finally(function()
      e2e.BIN, e2e.WRAP = saved_bin, saved_wrap
      if server then server:cleanup() end
    end)
    e2e.BIN, e2e.WRAP = q(tree .. "/bin/flosse"), ""
    server = e2e.start(repo .. "/scripts", { env = {
      LUA_PATH = false, LUA_PATH_5_4 = false, LUA_CPATH = false, LUA_CPATH_5_4 = false,
      LUA_INIT = false, FLOSSE_BUILD_DIR = false, LUA_INIT_5_4 = PROBE,
    } })
    local resp = e2e.get(server.port, "/sse/styles/string/")
    assert.equal(200, resp.status)
    assert.equal("data: hello\n\n", resp.body)
    assert_from_tree(loaded_modules(server:log()), server:log())
  end)
end)

describe("#e2e the release rock (make rock, then luarocks install ./flosse-0.1.0-1.src.rock)", function()
  local repo = capture("pwd -P")
  local work, tree, rock
  local made, installed = {}, {}

  setup(function()
    work = capture("mktemp -d")
    tree = work .. "/tree"
    made.code, made.out, made.err = run("cd " .. q(repo) .. " && timeout -k 5 " .. BUILD_TIMEOUT
      .. " make -s rock ROCK_DIR=" .. q(work .. "/pack") .. " ROCK_OUT=" .. q(work))
    rock = work .. "/flosse-0.1.0-1.src.rock"
    -- installed from a folder with no checkout, with the rock's path only
    installed.code, installed.out, installed.err = run("cd " .. q(work) .. " && " .. CLEAN_ENV
      .. " timeout -k 5 " .. BUILD_TIMEOUT .. " " .. LUAROCKS .. " install --deps-mode=none --tree="
      .. q(tree) .. " ./flosse-0.1.0-1.src.rock")
  end)

  teardown(function()
    if work and work:match("^/tmp/") then os.execute("rm -rf " .. q(work)) end
  end)

  it("the release rockspec builds what the scm one builds, from a tag", function()
    local scm, rel = {}, {}
    assert(loadfile(repo .. "/flosse-scm-1.rockspec", "t", scm))()
    assert(loadfile(repo .. "/flosse-0.1.0-1.rockspec", "t", rel))()
    assert.equal("0.1.0-1", rel.version)
    assert.is_string(rel.source.tag)
    assert.same(scm.build, rel.build)
    assert.same(scm.dependencies, rel.dependencies)
    assert.same(scm.external_dependencies, rel.external_dependencies)
    local code, out, err = run("cd " .. q(repo) .. " && " .. CLEAN_ENV .. " timeout -k 5 60 "
      .. LUAROCKS .. " lint flosse-0.1.0-1.rockspec")
    assert.equal(0, code, out .. err)
  end)

  it("make rock packs a source rock holding the rockspec and the source", function()
    assert.equal(0, made.code, made.out .. made.err)
    assert.truthy(exists(rock), made.out .. made.err)
    local code, list = run("unzip -l " .. q(rock))
    assert.equal(0, code, list)
    assert.truthy(list:find("flosse-0.1.0-1.rockspec", 1, true), list)
    assert.truthy(list:find("flosse-0.1.0.tar.gz", 1, true), list)
  end)

  it("luarocks install ./flosse-0.1.0-1.src.rock installs a flosse that serves a new app", function()
    assert.equal(0, installed.code, installed.out .. installed.err)
    local flosse = tree .. "/bin/flosse"
    local code, out, err = run("cd /tmp && " .. CLEAN_ENV .. " timeout -k 2 20 " .. q(flosse) .. " --version")
    assert.equal(0, code, err)
    assert.equal("flosse 0.1.0\n", out)
    code, out, err = run("cd " .. q(work) .. " && " .. CLEAN_ENV .. " timeout -k 2 20 " .. q(flosse)
      .. " new myapp && " .. CLEAN_ENV .. " timeout -k 2 20 " .. q(flosse) .. " check myapp")
    assert.equal(0, code, out .. err)
    assert.truthy(out:find("OK:", 1, true), out)
  end)
end)
