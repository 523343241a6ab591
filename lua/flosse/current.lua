--- flosse.current: the request a coroutine serves.
-- The dispatcher binds each request to the coroutine that runs it, so that
-- library functions called from a view without the request in hand
-- (flosse.subscribe checking the user's channel grants) can find it. Keyed
-- weakly: a finished request's coroutine is collected with its entry.
local current = {}

local by_thread = setmetatable({}, { __mode = "k" })

--- current.bind(request): the running coroutine serves request.
function current.bind(request)
  by_thread[coroutine.running()] = request
end

--- current.request() -> the request the running coroutine serves, or nil
-- (a background task, the main chunk).
function current.request()
  return by_thread[coroutine.running()]
end

return current
