#!/usr/bin/env lua5.4
-- core_graph.lua: the file-level dependency graph of object files, read
-- from their symbols with nm, and any circle in it.
--   lua5.4 spec/tools/core_graph.lua [--dot] file.o...
-- A file depends on another when it uses (U) a symbol the other defines.
-- Prints the edges, then each circle (a strongly connected component of
-- more than one file) with the symbols that make its edges. Exit status: 0
-- no circle, 1 a circle, 2 a usage error or nm failing.
local args, dot = {}, false
for _, a in ipairs(arg) do
  if a == "--dot" then dot = true else args[#args + 1] = a end
end
if #args == 0 then
  io.stderr:write("usage: core_graph.lua [--dot] file.o...\n")
  os.exit(2)
end

local function name_of(path) return (path:match("([^/]+)%.o$") or path) end

local defines, uses, files = {}, {}, {}
for _, path in ipairs(args) do
  local f = name_of(path)
  files[#files + 1] = f
  uses[f] = {}
  -- -P: "name type value size", one symbol a line; -g: external symbols only
  local p = io.popen("nm -P -g " .. ("%q"):format(path) .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  if not ok then
    io.stderr:write("nm failed on ", path, ":\n", out)
    os.exit(2)
  end
  for name, kind in out:gmatch("([^%s]+) (%a)[^\n]*") do
    if kind == "U" then
      uses[f][#uses[f] + 1] = name
    elseif kind ~= "w" and kind ~= "v" then -- weak references are not dependencies
      defines[name] = f
    end
  end
end

-- edges[a][b] = { symbols a uses from b }
local edges = {}
for _, f in ipairs(files) do
  edges[f] = {}
  for _, sym in ipairs(uses[f]) do
    local to = defines[sym]
    if to and to ~= f then
      edges[f][to] = edges[f][to] or {}
      table.insert(edges[f][to], sym)
    end
  end
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

if dot then
  print("digraph core {")
  for _, a in ipairs(sorted_keys(edges)) do
    for _, b in ipairs(sorted_keys(edges[a])) do print(("  %q -> %q;"):format(a, b)) end
  end
  print("}")
end

-- Tarjan's strongly connected components.
local index, low, on, stack, comps, n = {}, {}, {}, {}, {}, 0
local function visit(v)
  n = n + 1
  index[v], low[v] = n, n
  stack[#stack + 1] = v
  on[v] = true
  for _, w in ipairs(sorted_keys(edges[v])) do
    if not index[w] then
      visit(w)
      low[v] = math.min(low[v], low[w])
    elseif on[w] then
      low[v] = math.min(low[v], index[w])
    end
  end
  if low[v] == index[v] then
    local comp = {}
    repeat
      local w = table.remove(stack)
      on[w] = nil
      comp[#comp + 1] = w
    until w == v
    if #comp > 1 then comps[#comps + 1] = comp end
  end
end
table.sort(files)
for _, f in ipairs(files) do
  if not index[f] then visit(f) end
end

if not dot then
  for _, a in ipairs(files) do
    for _, b in ipairs(sorted_keys(edges[a])) do
      table.sort(edges[a][b])
      print(("%s -> %s (%s)"):format(a, b, table.concat(edges[a][b], ", ")))
    end
  end
end

if #comps == 0 then
  if not dot then print("no circle between " .. #files .. " files") end
  os.exit(0)
end
for _, comp in ipairs(comps) do
  table.sort(comp)
  local inside = {}
  for _, f in ipairs(comp) do inside[f] = true end
  io.stdout:write("CIRCLE: ", table.concat(comp, " "), "\n")
  for _, a in ipairs(comp) do
    for _, b in ipairs(sorted_keys(edges[a])) do
      if inside[b] then io.stdout:write(("  %s -> %s: %s\n"):format(a, b, table.concat(edges[a][b], ", "))) end
    end
  end
end
os.exit(1)
