-- spec/e2e/helper/base.lua: the e2e table itself, with its settings and the
-- small utilities every other part of the harness uses (clock, JSON, files,
-- polling). spec/helper.lua adds the other parts' names to this same table,
-- so a spec that sets e2e.WRAP or e2e.BIN changes what the process part runs.
--
-- Environment:
--   FLOSSE_TEST_WRAP     prefixes the server command line (e2e.WRAP), e.g.
--                          FLOSSE_TEST_WRAP="valgrind -q --trace-children=yes --log-file=/tmp/vg.%p"
--                          FLOSSE_TEST_WRAP="env LD_PRELOAD=$(gcc -print-file-name=libasan.so)"
--                        bin/flosse is a `#!/usr/bin/env lua5.4` script, so
--                        valgrind needs --trace-children=yes to follow the exec
--                        into lua5.4. The harness stops the pid it started, so
--                        the wrapper must exec the server in the same process
--                        (valgrind and env do; `sh -c` or `timeout` do not).
--   FLOSSE_BIN           the server command (e2e.BIN, default "bin/flosse", from the repo root).
--   FLOSSE_TEST_TIMEOUT  seconds a single read may wait (e2e.TEST_TIMEOUT,
--                        default 10); raise it under slow wrappers.

local socket = require "socket"
local cjson = require "cjson"

local e2e = {}

e2e.TEST_TIMEOUT = tonumber(os.getenv("FLOSSE_TEST_TIMEOUT")) or 10
e2e.BIN = os.getenv("FLOSSE_BIN") or "bin/flosse"
e2e.WRAP = os.getenv("FLOSSE_TEST_WRAP") or ""

local function now() return socket.gettime() end

e2e.now = now
e2e.sleep = socket.sleep
e2e.socket = socket
e2e.json_decode = cjson.decode
e2e.json_encode = cjson.encode

function e2e.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs a shell command line (sh -c) under `timeout -k 2 T` (default the
-- test timeout), stdin empty; returns its exit code (124: timed out; 128+N:
-- killed by signal N), stdout and stderr.
function e2e.sh(cmd, timeout)
  local out, err = os.tmpname(), os.tmpname()
  local ok, how, code = os.execute("timeout -k 2 " .. tostring(timeout or e2e.TEST_TIMEOUT) .. " sh -c "
    .. e2e.shell_quote(cmd) .. " >" .. e2e.shell_quote(out) .. " 2>" .. e2e.shell_quote(err) .. " </dev/null")
  local f = io.open(out, "rb")
  local stdout = f and f:read("a") or ""
  if f then f:close() end
  f = io.open(err, "rb")
  local stderr = f and f:read("a") or ""
  if f then f:close() end
  os.remove(out)
  os.remove(err)
  if how == "signal" then code = 128 + code end
  if ok == true and code == nil then code = 0 end
  return code, stdout, stderr
end

-- Makes a self-signed certificate for localhost and 127.0.0.1 with the
-- openssl command line (opts: cert, key = the paths; subject =
-- "/CN=localhost"; serial; kind = "ec" (P-256, the default) or "rsa"
-- (2048)); raises if openssl fails. Returns the cert and key paths.
function e2e.make_cert(opts)
  local newkey = opts.kind == "rsa" and "rsa:2048" or "ec -pkeyopt ec_paramgen_curve:P-256"
  local q = e2e.shell_quote
  local code, out, err = e2e.sh(("openssl req -x509 -newkey %s -nodes -days 2 -subj %s -addext %s%s"
    .. " -keyout %s -out %s"):format(newkey, q(opts.subject or "/CN=localhost"),
    q("subjectAltName=DNS:localhost,IP:127.0.0.1"), opts.serial and (" -set_serial " .. opts.serial) or "",
    q(opts.key), q(opts.cert)), 30)
  assert(code == 0, "openssl could not make a certificate: " .. out .. err)
  return opts.cert, opts.key
end

-- The lines of s that are not empty, in order.
function e2e.lines(s)
  local t = {}
  for line in s:gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

-- Polls f() (every 50 ms, bounded) until it returns a true value; returns it,
-- or nil once the timeout passed.
function e2e.eventually(f, timeout)
  local deadline = now() + (timeout or e2e.TEST_TIMEOUT)
  repeat
    local v = f()
    if v then return v end
    socket.sleep(0.05)
  until now() > deadline
  return nil
end

------------------------------------------------------------------------------
-- Files

-- Reads and writes whole files (read: "" when the file is missing; write: in
-- place, truncating).
function e2e.read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a") or ""
  f:close()
  return s
end

function e2e.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  assert(f:write(bytes))
  assert(f:close())
end

local function cwd()
  local p = io.popen("pwd", "r")
  local d = p and p:read("l")
  if p then p:close() end
  return d or "."
end
e2e.CWD = cwd()

-- An absolute form of a path given relative to the repository root.
function e2e.absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return e2e.CWD .. "/" .. path
end

-- A fresh temporary folder (mktemp -d); remove it with e2e.remove_tree.
function e2e.tempdir()
  local p = assert(io.popen("mktemp -d \"${TMPDIR:-/tmp}/flosse-e2e.XXXXXX\"", "r"))
  local dir = p:read("l")
  p:close()
  assert(dir and dir ~= "", "mktemp -d failed")
  return dir
end

-- Removes a folder e2e.tempdir made (only below the temp folder, as a guard).
function e2e.remove_tree(dir)
  if type(dir) == "string" and dir:match("/flosse%-e2e%.[%w]+$") then
    os.execute("rm -rf " .. e2e.shell_quote(dir))
  end
end

-- Copies a folder's contents into a fresh temporary folder's "app" subfolder;
-- returns the app folder and the temporary folder (to remove).
function e2e.copy_app(src)
  local tmp = e2e.tempdir()
  local dir = tmp .. "/app"
  assert(os.execute("cp -r " .. e2e.shell_quote(src) .. " " .. e2e.shell_quote(dir)), "cp -r failed")
  return dir, tmp
end

return e2e
