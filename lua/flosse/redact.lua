--- flosse.redact: credentials out of the logs. The query parameters the
-- app's authentication classes read a credential from (their `query`:
-- TokenAuthentication's and JWTAuthentication's, "token" by default) are
-- handed to the core, which shows their values as "…" in every log line
-- naming the request. Called on every load and reload of the app, on every
-- worker (each keeps its own list: a worker still on the old app redacts
-- what the old app reads).
local core = require "flosse.core"

local redact = {}

--- query_names(authentication_classes) -> list of names (each once)
function redact.query_names(classes)
  local names, seen = {}, {}
  for _, cls in ipairs(type(classes) == "table" and classes or {}) do
    local q = type(cls) == "table" and cls.query
    if type(q) == "string" and not seen[q] then
      seen[q] = true
      names[#names + 1] = q
    end
  end
  return names
end

--- apply(settings): this worker's log lines redact settings' classes' names.
function redact.apply(settings)
  core.redact_query(redact.query_names(settings.authentication_classes))
end

return redact
