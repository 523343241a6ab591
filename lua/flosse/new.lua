--- flosse.new: `flosse new NAME` writes a small app that runs at once.
local new = {}

new.FILES = {}

new.FILES["views.lua"] = [[
local flosse = require "flosse"

local views = {}

-- Every coroutine.yield is one event; flosse.sleep pauses this stream only.
views.hello = flosse.sse_stream(function(request)
  for i = 1, 5 do
    coroutine.yield("hello", { n = i, from = request.remote_addr })
    flosse.sleep(1)
  end
  coroutine.yield(flosse.SSEEvent{ event = "done", data = "bye" })
end)

return views
]]

new.FILES["urls.lua"] = [[
local path = require("flosse.urls").path
local static = require "flosse.static"
local views = require "views"

return {
  path("", static.file("index.html")),
  path("sse/hello/", views.hello),
}
]]

new.FILES["settings.lua"] = [[
-- Every key has a default; `flosse serve --help` lists them.
return {
  debug = true, -- error texts reach the browser: turn off in production
}
]]

new.FILES["index.html"] = [[
<!doctype html>
<meta charset="utf-8">
<title>flosse</title>
<h1>Hello from flosse</h1>
<ul id="events"></ul>
<script>
  var list = document.getElementById("events");
  var source = new EventSource("/sse/hello/");
  function add(text) {
    var li = document.createElement("li");
    li.textContent = text;
    list.appendChild(li);
  }
  source.addEventListener("hello", function (e) { add("hello " + JSON.parse(e.data).n); });
  source.addEventListener("done", function (e) { add(e.data); source.close(); });
</script>
]]

new.ORDER = { "views.lua", "urls.lua", "settings.lua", "index.html" }

--- create(name) -> list of written paths | nil, message
function new.create(name)
  if name == nil or name == "" or name:sub(1, 1) == "-" then
    return nil, "new needs a folder name: flosse new NAME"
  end
  local existing = io.open(name, "r")
  if existing then
    existing:close()
    return nil, ("%s already exists; choose another name"):format(name)
  end
  if not os.execute("mkdir -p -- '" .. name:gsub("'", "'\\''") .. "'") then
    return nil, ("cannot create %s"):format(name)
  end
  local written = {}
  for _, file in ipairs(new.ORDER) do
    local path = name .. "/" .. file
    local f, err = io.open(path, "w")
    if not f then return nil, ("cannot write %s: %s"):format(path, err) end
    f:write(new.FILES[file])
    f:close()
    written[#written + 1] = path
  end
  return written
end

return new
