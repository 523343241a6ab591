-- No dependency circle between the files of core/ (issue 11): the graph is
-- read from the objects' symbols (nm) by spec/tools/core_graph.lua.
local TOOL = "lua5.4 spec/tools/core_graph.lua"

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

local function compile(dir, src, obj)
  local code, out = run(("cc -std=c99 -D_GNU_SOURCE -c -I/usr/include/lua5.4 -o %q %q"):format(dir .. "/" .. obj, src))
  assert(code == 0, "cannot compile " .. src .. ":\n" .. out)
end

describe("the files of core/", function()
  local dir
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("depend on each other without a circle (from the objects' symbols)", function()
    local _, list = run("ls core/*.c")
    local n = 0
    for src in list:gmatch("[^\n]+") do
      compile(dir, src, src:match("([^/]+)%.c$") .. ".o")
      n = n + 1
    end
    assert.is_true(n >= 20, "core/ has " .. n .. " C files")
    local code, out = run(TOOL .. " " .. dir .. "/*.o")
    assert.equal(0, code, out)
    assert.matches("no circle between " .. n .. " files", out)
    -- the graph was read at all: the connection writes through the buffer
    assert.matches("\nconn %-> buf %(", "\n" .. out)
  end)

  it("the check fails on a circle, and names its files and symbols", function()
    local function c_file(name, text)
      local f = assert(io.open(dir .. "/" .. name, "w"))
      f:write(text)
      f:close()
    end
    c_file("a.c", "int b_fn(void);\nint a_fn(void) { return b_fn(); }\n")
    c_file("b.c", "int a_fn(void);\nint b_fn(void) { return a_fn(); }\n")
    c_file("c.c", "int c_fn(void) { return 1; }\n")
    c_file("d.c", "int c_fn(void);\nint d_fn(void) { return c_fn(); }\n")
    c_file("e.c", "int d_fn(void);\nint e_fn(void) { return d_fn(); }\n")
    for _, f in ipairs({ "a", "b", "c", "d", "e" }) do
      os.execute(("mkdir -p %q"):format(dir .. "/t"))
      compile(dir .. "/t", dir .. "/" .. f .. ".c", f .. ".o")
    end
    local code, out = run(("%s %s/t/a.o %s/t/b.o %s/t/c.o"):format(TOOL, dir, dir, dir))
    assert.equal(1, code, out)
    assert.matches("CIRCLE: a b", out)
    assert.matches("a %-> b: b_fn", out)
    assert.matches("b %-> a: a_fn", out)
    code, out = run(("%s %s/t/c.o %s/t/d.o %s/t/e.o"):format(TOOL, dir, dir, dir))
    assert.equal(0, code, out)
    assert.matches("e %-> d %(d_fn%)", out)
    assert.matches("no circle between 3 files", out)
  end)
end)
