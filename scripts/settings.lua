-- The example app's settings. Every key has a default; CLI flags override.
local auth = require "flosse.auth"

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
}
