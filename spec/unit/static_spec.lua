local static = require "flosse.static"
local response = require "flosse.response"
local request = require "flosse.request"
local urls = require "flosse.urls"
local lfs = require "lfs"

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  assert(f:write(bytes))
  assert(f:close())
end

local function rm_rf(path)
  local mode = lfs.symlinkattributes(path, "mode")
  if mode == "directory" then
    for entry in lfs.dir(path) do
      if entry ~= "." and entry ~= ".." then rm_rf(path .. "/" .. entry) end
    end
    assert(lfs.rmdir(path))
  elseif mode then
    assert(os.remove(path))
  end
end

-- Every byte value, twice, with CR LF and NUL in the middle: a text-mode read
-- or a string function that stops at NUL would not give this back.
local BINARY = {}
for i = 0, 255 do BINARY[#BINARY + 1] = string.char(i) end
BINARY = table.concat(BINARY) .. "\r\n\0\26" .. table.concat(BINARY)

describe("flosse.static", function()
  local root, saved_root, saved_max

  local function get(view, params)
    local r = request.new { method = "GET", url = "/" }
    r.params = params or {}
    return view(r)
  end

  before_each(function()
    saved_root, saved_max = static.root, static.max_size
    root = os.tmpname()
    os.remove(root)
    assert(lfs.mkdir(root))
    assert(lfs.mkdir(root .. "/public"))
    assert(lfs.mkdir(root .. "/public/css"))
    assert(lfs.mkdir(root .. "/public/sub.dir"))
    write(root .. "/index.html", "<h1>hi</h1>\n")
    write(root .. "/secret.txt", "top secret\n")
    write(root .. "/public/app.js", "console.log(1)\n")
    write(root .. "/public/css/site.css", "body{}\n")
    write(root .. "/public/blob.bin", BINARY)
    write(root .. "/public/.hidden", "h")
    write(root .. "/public/sub.dir/x..y.txt", "dots\n")
    static.root = root
  end)

  after_each(function()
    static.root, static.max_size = saved_root, saved_max
    rm_rf(root)
  end)

  it("defaults root to the current folder", function()
    assert.are.equal(".", saved_root)
  end)

  describe("content_type()", function()
    it("maps the extensions the contract lists", function()
      local expected = {
        ["a.html"] = "text/html; charset=utf-8",
        ["a.css"] = "text/css; charset=utf-8",
        ["a.js"] = "text/javascript; charset=utf-8",
        ["a.json"] = "application/json",
        ["a.txt"] = "text/plain; charset=utf-8",
        ["a.svg"] = "image/svg+xml",
        ["a.png"] = "image/png",
        ["a.jpg"] = "image/jpeg",
        ["a.ico"] = "image/x-icon",
        ["a.js.map"] = "application/json",
      }
      for name, ctype in pairs(expected) do
        assert.are.equal(ctype, static.content_type(name), name)
      end
    end)

    it("ignores case and falls back to application/octet-stream", function()
      assert.are.equal("image/png", static.content_type("LOGO.PNG"))
      assert.are.equal("application/octet-stream", static.content_type("a.tar.gz"))
      assert.are.equal("application/octet-stream", static.content_type("Makefile"))
      assert.are.equal("application/octet-stream", static.content_type("dir.html/file"))
    end)

    it("can be extended through content_types", function()
      static.content_types.wasm = "application/wasm"
      finally(function() static.content_types.wasm = nil end)
      assert.are.equal("application/wasm", static.content_type("m.wasm"))
    end)
  end)

  describe("file()", function()
    it("serves a file with its content type", function()
      local r = get(static.file("index.html"))
      assert.is_true(response.is_response(r))
      assert.are.equal(200, r.status)
      assert.are.equal("<h1>hi</h1>\n", r.body)
      assert.are.equal("text/html; charset=utf-8", r.headers["Content-Type"])
    end)

    it("reads in binary mode, byte for byte", function()
      local r = get(static.file("public/blob.bin"))
      assert.are.equal(200, r.status)
      assert.are.equal(#BINARY, #r.body)
      assert.is_true(r.body == BINARY)
      assert.are.equal("application/octet-stream", r.headers["Content-Type"])
    end)

    it("answers 404 when the file is missing", function()
      local r = get(static.file("nope.html"))
      assert.are.equal(404, r.status)
      assert.are.equal("Not Found\n", r.body)
      assert.are.equal("text/plain; charset=utf-8", r.headers["Content-Type"])
    end)

    it("answers 404 for a folder", function()
      assert.are.equal(404, get(static.file("public")).status)
    end)

    it("resolves against static.root at request time", function()
      local view = static.file("index.html")
      static.root = root .. "/public"
      assert.are.equal(404, get(view).status)
      static.root = root
      assert.are.equal(200, get(view).status)
      static.root = root .. "/"
      assert.are.equal("<h1>hi</h1>\n", get(view).body)
    end)

    it("takes a content type and extra headers", function()
      local r = get(static.file("secret.txt", { content_type = "text/x-secret",
        headers = { ["Cache-Control"] = "no-store" } }))
      assert.are.equal("text/x-secret", r.headers["Content-Type"])
      assert.are.equal("no-store", r.headers["Cache-Control"])
      local r2 = get(static.file("secret.txt", { headers = { ["content-type"] = "text/y" } }))
      assert.are.same({ ["content-type"] = "text/y" }, r2.headers)
    end)

    it("answers 500 for a file above max_size", function()
      static.max_size = 5
      local r = get(static.file("index.html"))
      assert.are.equal(500, r.status)
      static.max_size = #"<h1>hi</h1>\n"
      assert.are.equal(200, get(static.file("index.html")).status)
    end)

    it("answers 404 for a FIFO without blocking", function()
      if os.execute("mkfifo '" .. root .. "/fifo' 2>/dev/null") ~= true then
        pending("mkfifo is not available")
        return
      end
      assert.are.equal(404, get(static.file("fifo")).status)
    end)

    it("rejects bad arguments", function()
      assert.has_error(function() static.file(nil) end)
      assert.has_error(function() static.file("") end)
      assert.has_error(function() static.file("a", "text/html") end)
      assert.has_error(function() static.file("a", { content_type = 1 }) end)
    end)
  end)

  describe("dir()", function()
    local view
    before_each(function() view = static.dir("public") end)

    it("serves files below the folder, nested too", function()
      local r = get(view, { path = "app.js" })
      assert.are.equal(200, r.status)
      assert.are.equal("console.log(1)\n", r.body)
      assert.are.equal("text/javascript; charset=utf-8", r.headers["Content-Type"])
      local css = get(view, { path = "css/site.css" })
      assert.are.equal("body{}\n", css.body)
      assert.are.equal("text/css; charset=utf-8", css.headers["Content-Type"])
      assert.are.equal("h", get(view, { path = ".hidden" }).body)
      assert.are.equal("body{}\n", get(view, { path = "./css/./site.css" }).body)
      assert.are.equal("dots\n", get(view, { path = "sub.dir/x..y.txt" }).body)
    end)

    it("answers 404 for a missing file or a folder", function()
      assert.are.equal(404, get(view, { path = "missing.js" }).status)
      assert.are.equal(404, get(view, { path = "css" }).status)
      assert.are.equal(404, get(view, { path = "css/" }).status)
      assert.are.equal(404, get(view, {}).status)
      assert.are.equal(404, get(view, { path = "" }).status)
    end)

    it("refuses any .. segment even when the target exists", function()
      -- root/secret.txt is there: without the check these would serve it
      for _, p in ipairs { "../secret.txt", "css/../../secret.txt", "..", "../",
                           "css/..", "..\\secret.txt", "css\\..\\..\\secret.txt" } do
        local r = get(view, { path = p })
        assert.are.equal(404, r.status, p)
        assert.are.equal("Not Found\n", r.body, p)
      end
    end)

    it("refuses an absolute path and a NUL", function()
      local abs = root .. "/secret.txt"
      assert.are.equal(404, get(view, { path = abs }).status)
      assert.are.equal(404, get(view, { path = "/etc/passwd" }).status)
      assert.are.equal(404, get(view, { path = "app.js\0.png" }).status)
    end)

    it("refuses traversal that arrives percent-encoded, through request and urls", function()
      local patterns = { urls.path("static/<path:path>", view) }
      local function fetch(url)
        local r = request.new { method = "GET", url = url }
        local entry, params = urls.resolve(patterns, r.path)
        if not entry then return nil end
        r.params = params
        return entry.view(r)
      end
      assert.are.equal("console.log(1)\n", fetch("/static/app.js").body)
      for _, url in ipairs { "/static/%2e%2e/secret.txt", "/static/%2E%2E%2Fsecret.txt",
                             "/static/css/..%2f..%2fsecret.txt", "/static/%2fetc%2fpasswd",
                             "/static/app.js%00.png" } do
        local res = fetch(url)
        assert.are.equal(404, res.status, url)
      end
    end)

    it("uses another parameter name when asked", function()
      local v = static.dir("public", { param = "file" })
      assert.are.equal(200, get(v, { file = "app.js" }).status)
      assert.are.equal(404, get(v, { path = "app.js" }).status)
    end)

    it("rejects bad arguments", function()
      assert.has_error(function() static.dir(nil) end)
      assert.has_error(function() static.dir("") end)
    end)
  end)

  describe("safe_relpath()", function()
    it("accepts relative paths and refuses the rest", function()
      assert.is_true(static.safe_relpath("a/b.c"))
      assert.is_true(static.safe_relpath("a..b/..c"))
      assert.is_false(static.safe_relpath("a/../b"))
      assert.is_false(static.safe_relpath("/a"))
      assert.is_false(static.safe_relpath("a\0"))
      assert.is_false(static.safe_relpath(""))
      assert.is_false(static.safe_relpath(nil))
    end)
  end)
end)
