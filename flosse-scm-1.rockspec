-- flosse: `luarocks --lua-version 5.4 make` in a checkout builds the C core
-- (flosse.core), installs the Lua modules and the `flosse` command.
-- How to install: docs/install.md.
rockspec_format = "3.0"
package = "flosse"
version = "scm-1"

source = {
   url = "git+https://github.com/flosse/flosse.git",
   branch = "main",
}

description = {
   summary = "A Server-Sent Events server with a C core (libev) and Lua 5.4 views.",
   detailed = [[
flosse serves Server-Sent Events: a C core on libev and http-parser does the
networking, HTTP/1.1, SSE framing, timers and writes; views are Lua 5.4
functions run as coroutines, where every coroutine.yield becomes an event on
the wire and flosse.sleep suspends one stream, never the server. Routes are
Django-style paths, permission classes and authentication are written in Lua,
and `flosse serve` reloads the app when its files change. The Lua/C
counterpart of django-flosse.
]],
   homepage = "https://github.com/flosse/flosse",
   license = "MIT",
   labels = { "sse", "server-sent-events", "http", "server", "libev" },
}

supported_platforms = { "linux" }  -- the hot reload uses inotify

dependencies = {
   "lua >= 5.4, < 5.5",
   "lua-cjson",
}

external_dependencies = {
   LIBEV = { header = "ev.h", library = "ev" },
   HTTP_PARSER = { header = "http_parser.h", library = "http_parser" },
   HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
   -- OpenSSL's libcrypto (Debian: libssl-dev) checks JWT signatures.
   CRYPTO = { header = "openssl/evp.h", library = "crypto" },
   -- libcurl (Debian: libcurl4-openssl-dev) makes flosse.http's requests.
   -- The library alone: Debian keeps curl/curl.h in the multiarch folder
   -- (/usr/include/x86_64-linux-gnu), where the compiler finds it and
   -- luarocks' header check does not look.
   CURL = { library = "curl" },
   -- OpenSSL's libssl serves TLS; nghttp2 (Debian: libnghttp2-dev) HTTP/2.
   SSL = { header = "openssl/ssl.h", library = "ssl" },
   NGHTTP2 = { header = "nghttp2/nghttp2.h", library = "nghttp2" },
}

build = {
   type = "builtin",
   modules = {
      -- The C core: the sources the Makefile's CORE_SRC lists.
      ["flosse.core"] = {
         sources = {
            "core/buf.c",
            "core/rbuf.c",
            "core/sse.c",
            "core/response.c",
            "core/framing.c",
            "core/http.c",
            "core/json.c",
            "core/log.c",
            "core/metrics.c",
            "core/redact.c",
            "core/tls.c",
            "core/cidr.c",
            "core/tq.c",
            "core/inbox.c",
            "core/loop.c",
            "core/lalloc.c",
            "core/watch.c",
            "core/redis.c",
            "core/redis_event.c",
            "core/channel.c",
            "core/channel_redis.c",
            "core/revoke_redis.c",
            "core/presence_redis.c",
            "core/conn.c",
            "core/h2.c",
            "core/lvalues.c",
            "core/task.c",
            "core/wait_sleep.c",
            "core/wait_drain.c",
            "core/wait_channel.c",
            "core/wait_relay.c",
            "core/wait_redis.c",
            "core/http_client.c",
            "core/wait_http.c",
            "core/clients.c",
            "core/guard.c",
            "core/stream.c",
            "core/background.c",
            "core/ljson.c",
            "core/lstream.c",
            "core/ltask.c",
            "core/lchannel.c",
            "core/lsocket.c",
            "core/lredis.c",
            "core/lhttp.c",
            "core/jwt.c",
            "core/ljwt.c",
            "core/lcidr.c",
            "core/lmetrics.c",
            "core/worker.c",
            "core/server.c",
            "core/lcore.c",
         },
         defines = { "_GNU_SOURCE" },
         incdirs = { "$(LIBEV_INCDIR)", "$(HTTP_PARSER_INCDIR)", "$(HIREDIS_INCDIR)",
                    "$(CRYPTO_INCDIR)", "$(CURL_INCDIR)", "$(SSL_INCDIR)", "$(NGHTTP2_INCDIR)" },
         libdirs = { "$(LIBEV_LIBDIR)", "$(HTTP_PARSER_LIBDIR)", "$(HIREDIS_LIBDIR)",
                    "$(CRYPTO_LIBDIR)", "$(CURL_LIBDIR)", "$(SSL_LIBDIR)", "$(NGHTTP2_LIBDIR)" },
         libraries = { "ev", "http_parser", "hiredis", "curl", "ssl", "crypto", "nghttp2", "m", "pthread" },
      },
      -- Every Lua module of lua/flosse/.
      ["flosse"] = "lua/flosse/init.lua",
      ["flosse.app"] = "lua/flosse/app.lua",
      ["flosse.auth"] = "lua/flosse/auth.lua",
      ["flosse.builtin"] = "lua/flosse/builtin.lua",
      ["flosse.channels"] = "lua/flosse/channels.lua",
      ["flosse.check"] = "lua/flosse/check.lua",
      ["flosse.cli"] = "lua/flosse/cli.lua",
      ["flosse.new"] = "lua/flosse/new.lua",
      ["flosse.permissions"] = "lua/flosse/permissions.lua",
      ["flosse.proxies"] = "lua/flosse/proxies.lua",
      ["flosse.redact"] = "lua/flosse/redact.lua",
      ["flosse.request"] = "lua/flosse/request.lua",
      ["flosse.cors"] = "lua/flosse/cors.lua",
      ["flosse.current"] = "lua/flosse/current.lua",
      ["flosse.grants"] = "lua/flosse/grants.lua",
      ["flosse.health"] = "lua/flosse/health.lua",
      ["flosse.metrics"] = "lua/flosse/metrics.lua",
      ["flosse.status"] = "lua/flosse/status.lua",
      ["flosse.status_page"] = "lua/flosse/status_page.lua",
      ["flosse.response"] = "lua/flosse/response.lua",
      ["flosse.revoke"] = "lua/flosse/revoke.lua",
      ["flosse.server"] = "lua/flosse/server.lua",
      ["flosse.settings"] = "lua/flosse/settings.lua",
      ["flosse.static"] = "lua/flosse/static.lua",
      ["flosse.tasks"] = "lua/flosse/tasks.lua",
      ["flosse.tls"] = "lua/flosse/tls.lua",
      ["flosse.redis"] = "lua/flosse/redis.lua",
      ["flosse.http"] = "lua/flosse/http.lua",
      ["flosse.urls"] = "lua/flosse/urls.lua",
   },
   install = {
      bin = { flosse = "bin/flosse" },
   },
}
