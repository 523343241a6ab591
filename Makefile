# flosse: `make run` serves the example app, `make test` runs every test.
# Every path is a ?= variable so that luarocks (or a packager) can drive it.

LUA ?= lua5.4
LUA_VERSION ?= 5.4
PKG_CONFIG ?= pkg-config
LUA_INCDIR ?= $(shell $(PKG_CONFIG) --variable=includedir lua$(LUA_VERSION) 2>/dev/null || echo /usr/include)/lua$(LUA_VERSION)
LIBEV_INCDIR ?= /usr/include
LIBEV_LIBDIR ?= /usr/lib/x86_64-linux-gnu
HTTP_PARSER_INCDIR ?= /usr/include
HTTP_PARSER_LIBDIR ?= /usr/lib/x86_64-linux-gnu
CC ?= cc
CFLAGS ?= -O2 -g
WARN = -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter
LIBFLAG ?= -shared
PREFIX ?= /usr/local
DESTDIR ?=
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
INST_BINDIR ?= $(PREFIX)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

CORE_SRC = core/buf.c core/rbuf.c core/sse.c core/response.c core/framing.c core/http.c core/json.c core/log.c core/metrics.c core/redact.c core/tls.c core/cidr.c core/tq.c core/inbox.c core/loop.c core/lalloc.c core/watch.c core/redis.c core/redis_event.c core/channel.c core/channel_redis.c core/revoke_redis.c core/presence_redis.c core/conn.c core/h2.c core/lvalues.c core/task.c core/wait_sleep.c core/wait_drain.c core/wait_channel.c core/wait_relay.c core/wait_redis.c core/http_client.c core/wait_http.c core/clients.c core/guard.c core/stream.c core/background.c core/ljson.c core/lstream.c core/ltask.c core/lchannel.c core/lsocket.c core/lredis.c core/lhttp.c core/jwt.c core/ljwt.c core/lcidr.c core/lmetrics.c core/worker.c core/server.c core/lcore.c
CORE_HDR = $(wildcard core/*.h)
CORE_SO = build/flosse/core.so
ALL_CFLAGS = $(WARN) $(CFLAGS) -fPIC -I$(LUA_INCDIR) -I$(LIBEV_INCDIR) -I$(HTTP_PARSER_INCDIR)
LIBS = -L$(LIBEV_LIBDIR) -lev -L$(HTTP_PARSER_LIBDIR) -lhttp_parser -lhiredis -lcurl -lssl -lcrypto -lnghttp2 -lm -lpthread

# Debian packages the build, the example app and the tests need.
DEB_PACKAGES = lua5.4 liblua5.4-dev libev-dev lua-cjson lua-busted lua-socket \
  libhttp-parser-dev libhiredis-dev libcurl4-openssl-dev libssl-dev libnghttp2-dev redis-server luarocks pkg-config gcc make curl valgrind

.PHONY: all deps test-deps run test clean check bench bench-quick

all: $(CORE_SO)

$(CORE_SO): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LIBFLAG) -o $@ $(CORE_SRC) $(LIBS)

# The tests also drive a real browser, build the fuzz harnesses with clang, and
# mint JWTs with python3 and the openssl command line, run nginx in front,
# and check the metrics' format with promtool (prometheus); HTTP/2 is checked
# with nghttp and h2load (nghttp2-client) and python3-h2's raw frames.
TEST_PACKAGES = chromium lua-check clang libclang-rt-14-dev python3 openssl nginx-light prometheus \
  nghttp2-client python3-h2

# Installs what is missing when run as root; otherwise says what to run.
deps: PACKAGES = $(DEB_PACKAGES)
test-deps: PACKAGES = $(DEB_PACKAGES) $(TEST_PACKAGES)
deps test-deps:
	@missing=$$(for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done | tr '\n' ' '); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make deps: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
	  echo "make deps: missing Debian packages; run: sudo apt-get install -y $$missing"; exit 1; \
	fi

run: deps all
	bin/flosse serve scripts --host $(HOST) --port $(PORT)

test: test-deps all
	spec/run

check: test

# The libFuzzer harnesses of spec/fuzz/, FUZZ_SECONDS each (docs/fuzzing.md);
# `make test` runs them for 10 s each.
FUZZ_SECONDS ?= 300
.PHONY: fuzz
fuzz: test-deps
	spec/fuzz/run $(FUZZ_SECONDS)

# Benchmarks (not tests: `make test` never runs them). bench/run builds what it
# needs, installs the peers (nginx + lua, nginx + nchan) and gnuplot when
# missing, and writes bench/out/<time>/; the full run also rewrites
# docs/benchmarks.md and docs/img/ (see docs/benchmarks.md).
bench: deps
	bench/run full

bench-quick: deps
	bench/run quick

# bench/soak: 10 minutes of churn against one server, sampled; says whether
# RSS, fds, channels or Lua memory grow (SOAK_SECONDS=120 for a short run).
.PHONY: soak
soak: deps
	bench/soak

# A source rock of the release (flosse-$(ROCK_VERSION)-1.rockspec): the
# committed tree (git archive HEAD) as flosse-$(ROCK_VERSION).tar.gz, packed by
# luarocks with a copy of the rockspec whose source is that archive, so it
# needs no network. `luarocks install ./flosse-$(ROCK_VERSION)-1.src.rock`
# then builds and installs it on a machine with no checkout.
ROCK_VERSION ?= 0.1.0
ROCK_DIR ?= build/rock
ROCK_OUT ?= .
.PHONY: rock
rock: deps
	rm -rf $(ROCK_DIR) && mkdir -p $(ROCK_DIR)
	git archive --format=tar.gz --prefix=flosse-$(ROCK_VERSION)/ -o $(ROCK_DIR)/flosse-$(ROCK_VERSION).tar.gz HEAD
	sed -e 's|^   url = .*|   url = "file://$(abspath $(ROCK_DIR))/flosse-$(ROCK_VERSION).tar.gz",|' \
	    -e 's|^   tag = .*|   dir = "flosse-$(ROCK_VERSION)",|' \
	    flosse-$(ROCK_VERSION)-1.rockspec >$(ROCK_DIR)/flosse-$(ROCK_VERSION)-1.rockspec
	cd $(ROCK_DIR) && luarocks --lua-version 5.4 pack flosse-$(ROCK_VERSION)-1.rockspec
	mv $(ROCK_DIR)/flosse-$(ROCK_VERSION)-1.src.rock $(ROCK_OUT)/
	@echo "made $(ROCK_OUT)/flosse-$(ROCK_VERSION)-1.src.rock (luarocks install ./flosse-$(ROCK_VERSION)-1.src.rock)"

clean:
	rm -rf build
