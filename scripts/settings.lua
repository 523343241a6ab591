-- The example app's settings. Every key has a default; CLI flags override.
local auth = require "flosse.auth"

-- The port the cross-origin demo's origins name (the app serves on 8080
-- with `make run`; FLOSSE_DEMO_PORT when it serves on another).
local demo_port = os.getenv("FLOSSE_DEMO_PORT") or "8080"

return {
  debug = false,  -- true sends error texts to clients; keep false outside development

  -- Demo credentials. A browser's EventSource cannot send headers, so the
  -- token may also come from the flosse_token cookie or ?token=.
  --   curl -N -H 'Authorization: Bearer demo-token' http://127.0.0.1:8080/sse/progress/
  authentication_classes = {
    auth.TokenAuthentication{
      tokens = {
        ["demo-token"] = { username = "demo" },
        ["demo-admin-token"] = { username = "admin", is_staff = true },
      },
      cookie = "flosse_token",
      query = "token",
    },
    -- Signed tokens (docs/security.md). A DEMO secret, public in this file:
    -- anyone can mint tokens for it. Set FLOSSE_DEMO_JWT_SECRET, or replace
    -- it, before serving anything real. docs/security.md ("Issuing tokens")
    -- has a shell line that mints one for it.
    auth.JWTAuthentication{
      secret = os.getenv("FLOSSE_DEMO_JWT_SECRET") or "flosse-demo-secret-change-me",
      algorithms = { "HS256" },
    },
  },

  -- The cross-origin demo (/cross-origin/): a page on http://localhost:8080
  -- opening streams on http://127.0.0.1:8080, and the other way round (two
  -- origins, one server). Other origins get no Access-Control-* headers.
  -- (The demo token goes in the URL, which logs redact; with a real app
  -- prefer a cookie, sent cross-origin thanks to credentials = true.)
  cors = {
    origins = { "http://localhost:" .. demo_port, "http://127.0.0.1:" .. demo_port },
    credentials = true,
  },
}
