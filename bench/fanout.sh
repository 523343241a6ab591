#!/usr/bin/env bash
# bench/fanout.sh: fan-out of events to many SSE subscribers, flosse and
# nginx + nchan side by side in the same run. A benchmark, not a test.
#
#   bench/fanout.sh [SUBS [EVENTS [RATE [ROUNDS]]]]   defaults: 1000,10000 100 50 3
#
# SUBS is a comma-separated list of subscriber counts. It builds flosse and
# bench/loadgen, installs nginx-light and libnginx-mod-nchan when nginx or the
# nchan module is missing (apt-get, as root), and starts both servers with
# WORKERS workers each (default 2):
#   bin/flosse serve bench/app --port P --workers W --log-level warn --no-reload --heartbeat 0
# (bench/app: sub/<str:name>/ -> flosse.relay_view{}, pub/<str:name>/ ->
# flosse.publish_view{ permission_classes = { AllowAny } }; its settings.lua reads the channel history from
# BENCH_HISTORY, set here to HISTORY, and sets channel_backlog = 100000), and
#   nginx -p PREFIX -c PREFIX/nginx.conf -g 'daemon off;'
# with bench/peers/nchan.conf filled in (subscriber and publisher locations,
# nchan_message_buffer_length HISTORY). For every count N, every round and
# each server in turn it runs `bench/loadgen fanout` on a fresh channel: N
# subscribers spread over ceil(N / 9000) processes (all but the last
# --subscribe-only, started first; the last one publishes once its own
# subscribers are established), EVENTS events POSTed at RATE a second. Each
# figure in the table is the median over ROUNDS rounds.
#
# bench/run (make bench) runs the same measurement with the floor as a third
# server, alongside the other benchmarks.
#
# Environment: FLOSSE_ROOT (the flosse tree to build and serve, default this
# repository; e.g. a `git archive HEAD` export, then FLOSSE_REV names its
# commit in the output), CONN_RATE (new connections a second over all loadgen
# processes, default 2000), HISTORY (default 100), PUB_CONNS (default 2),
# KEEP=1 keeps the work folder (logs, loadgen output, histograms).
# Everything it starts it stops (by pid) on exit, whatever the exit.
set -u

SUBS=${1:-1000,10000}
EVENTS=${2:-100}
RATE=${3:-50}
ROUNDS=${4:-3}
CONN_RATE=${CONN_RATE:-2000}
HISTORY=${HISTORY:-100}
PUB_CONNS=${PUB_CONNS:-2}
WORKERS=${WORKERS:-2}   # flosse --workers and nginx worker_processes alike
PER_PROC=9000

case "$SUBS" in *[!0-9,]*|"") echo "usage: bench/fanout.sh [SUBS[,SUBS...] [EVENTS [RATE [ROUNDS]]]] (numbers)" >&2; exit 2 ;; esac
case "$EVENTS$RATE$ROUNDS$CONN_RATE$HISTORY$PUB_CONNS" in *[!0-9.]*) echo "usage: bench/fanout.sh [SUBS[,SUBS...] [EVENTS [RATE [ROUNDS]]]] (numbers)" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${FLOSSE_ROOT:-$here/..}" && pwd)
work=$(mktemp -d /tmp/flosse-fanout.XXXXXX)
chmod 755 "$work"
flosse_pid=""
nginx_pid=""
lg_pids=()

stop_pid() { # TERM (or the given signal), wait up to 10 s, then KILL
  local p=$1 sig=${2:-TERM}
  [ -n "$p" ] || return 0
  kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
  kill -"$sig" "$p" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
}
cleanup() {
  local p
  for p in "${lg_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${lg_pids[@]}"; do wait "$p" 2>/dev/null; done
  stop_pid "$flosse_pid"
  stop_pid "$nginx_pid" QUIT # the master stops its worker
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "fanout.sh: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- build and install --------------------------------------------------------
make -C "$root" -s >"$work/make.log" 2>&1 || { cat "$work/make.log" >&2; die "building flosse failed"; }
make -C "$here" -s >"$work/make-bench.log" 2>&1 || { cat "$work/make-bench.log" >&2; die "building loadgen failed"; }
NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null 2>&1 || [ ! -f "$NCHAN_SO" ]; then
  [ "$(id -u)" = 0 ] || die "nginx + nchan missing: run as root or apt-get install nginx-light libnginx-mod-nchan"
  echo "fanout.sh: installing nginx-light libnginx-mod-nchan" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light libnginx-mod-nchan \
    >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; die "apt-get install failed"; }
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null

# --- servers ---------------------------------------------------------------------
app=$here/app   # bench/app: sub/<str:name>/ relay_view, pub/<str:name>/ publish_view
export BENCH_HISTORY=$HISTORY

cd "$root" || die "no $root"
flosse_port=$(free_port)
bin/flosse serve "$app" --port "$flosse_port" --workers "$WORKERS" --log-level warn --no-reload --heartbeat 0 \
  >"$work/flosse.out" 2>"$work/flosse.log" &
flosse_pid=$!

ngx=$work/nginx
mkdir -p "$ngx"
chmod 755 "$ngx"
nginx_port=$(free_port)
if [ "$(id -u)" = 0 ]; then ngx_user="root root"; else ngx_user="$(id -un) $(id -gn)"; fi
sed -e "s|@PREFIX@|$ngx|g; s|@PORT@|$nginx_port|g; s|@USER@|$ngx_user|g; s|@HISTORY@|$HISTORY|g; s|@WORKERS@|$WORKERS|g" \
  "$here/peers/nchan.conf" >"$ngx/nginx.conf"
nginx -p "$ngx" -c "$ngx/nginx.conf" -g 'daemon off;' >"$work/nginx.out" 2>&1 &
nginx_pid=$!

up() { # port: accepts connections
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
up "$flosse_port" || { cat "$work/flosse.log" >&2; die "flosse did not start"; }
up "$nginx_port" || { cat "$work/nginx.out" "$ngx/error.log" >&2; die "nginx did not start"; }

# --- one measurement: N subscribers on SERVER, channel CH -> a merged key=value line
measure() {
  local server=$1 port=$2 n=$3 ch=$4 tag=$5
  local nproc_lg=$(( (n + PER_PROC - 1) / PER_PROC ))
  local rate_each
  rate_each=$(awk -v r="$CONN_RATE" -v k="$nproc_lg" 'BEGIN { printf "%.0f", r / k < 1 ? 1 : r / k }')
  local k n_k args
  lg_pids=()
  for k in $(seq 1 "$nproc_lg"); do
    n_k=$(( n / nproc_lg + (k <= n % nproc_lg ? 1 : 0) ))
    args=(fanout --host 127.0.0.1 --port "$port" --path "/sub/$ch/" --conns "$n_k"
          --events "$EVENTS" --rate "$rate_each" --hist "$work/$tag.$k.hist")
    if [ "$k" -lt "$nproc_lg" ]; then
      "$here/loadgen" "${args[@]}" --subscribe-only >"$work/$tag.$k.out" 2>"$work/$tag.$k.err" &
      lg_pids+=($!)
      continue
    fi
    # the publisher starts once every subscribe-only process is established
    local want=$((nproc_lg - 1)) got=0
    for _ in $(seq 1 $(( (n / CONN_RATE + 60) * 10 ))); do
      got=$(cat "$work/$tag".*.err 2>/dev/null | grep -c '^loadgen: subscribed')
      [ "$got" -ge "$want" ] && break
      sleep 0.1
    done
    [ "$got" -ge "$want" ] || echo "fanout.sh: $tag: only $got of $want subscriber processes established" >&2
    "$here/loadgen" "${args[@]}" --pub-path "/pub/$ch/" --pub-rate "$RATE" --pub-conns "$PUB_CONNS" \
      >"$work/$tag.$k.out" 2>"$work/$tag.$k.err" &
    lg_pids+=($!)
  done
  for k in "${lg_pids[@]}"; do wait "$k"; done
  lg_pids=()
  # merge: sums, the span from the first publish to the last delivery, percentiles of the merged histogram
  local hp
  hp=$(cat "$work/$tag".*.hist 2>/dev/null | awk '{ c[$1] += $2 } END { for (u in c) print u, c[u] }' |
    sort -n | awk '{ us[NR] = $1; c[NR] = $2; t += $2 } END {
    if (!t) { print "0 0"; exit }
    w50 = int(0.5 * t); if (w50 < 1) w50 = 1; w99 = int(0.99 * t); if (w99 < 1) w99 = 1
    cum = 0; p50 = ""; p99 = ""
    for (i = 1; i <= NR; i++) { cum += c[i]; if (p50 == "" && cum >= w50) p50 = us[i]; if (p99 == "" && cum >= w99) p99 = us[i] }
    print p50, p99 }')
  cat "$work/$tag".*.out | awk -v server="$server" -v n="$n" -v ev="$EVENTS" -v hp="$hp" '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      est += v["established"]; del += v["deliveries"]; dup += v["duplicated"]; err += v["errors"]
      closed += v["closed_by_server"]; ooo += v["out_of_order"]; aborted += v["aborted"]
      if (v["first_pub_ns"] > 0 && (first == "" || v["first_pub_ns"] < first)) first = v["first_pub_ns"]
      if (v["last_delivery_ns"] > last) last = v["last_delivery_ns"]
      if (v["max_us"] > mx) mx = v["max_us"]; procs++ }
    END {
      split(hp, p, " "); ex = n * ev; span = (last - first) / 1e9
      printf "server=%s subs=%d established=%d deliveries=%d expected=%d lost=%d duplicated=%d deliveries_per_s=%.0f p50_us=%d p99_us=%d max_us=%d errors=%d closed_by_server=%d out_of_order=%d procs=%d aborted=%d\n",
        server, n, est, del, ex, ex - del, dup, (span > 0 ? del / span : 0), p[1], p[2], mx, err, closed, ooo, procs, aborted }'
}

get() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "fan-out: subscribers $SUBS, $EVENTS events at $RATE/s, $ROUNDS round(s); history $HISTORY; $WORKERS worker(s) each (flosse --workers, nginx worker_processes)"
echo "machine: $(nproc) CPUs, $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC')"
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "${FLOSSE_REV:-(not a git tree)}")
echo "flosse $rev ($root) on port $flosse_port; $(nginx -v 2>&1) + nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null) on port $nginx_port"

results=$work/results
: >"$results"
for n in ${SUBS//,/ }; do
  for r in $(seq 1 "$ROUNDS"); do
    for server in flosse nchan; do
      if [ $server = flosse ]; then port=$flosse_port; else port=$nginx_port; fi
      for p in $flosse_pid $nginx_pid; do kill -0 "$p" 2>/dev/null || die "a server died (pid $p); logs in $work (KEEP=1 keeps them)"; done
      measure $server "$port" "$n" "n${n}r${r}" "$server.$n.$r" >"$work/line"
      line=$(cat "$work/line")
      echo "round $r: $line"
      echo "$line" >>"$results"
      sleep 1
    done
  done
done

# --- table -------------------------------------------------------------------------
echo
printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" subscribers server deliveries/s "p50 ms" "p99 ms" "max ms" lost duplicated errors
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
ratios=()
for n in ${SUBS//,/ }; do
  declare -A med=()
  for server in flosse nchan; do
    rows=$(grep "^server=$server subs=$n " "$results")
    for key in deliveries_per_s p50_us p99_us max_us lost duplicated errors; do
      med[$server.$key]=$(echo "$rows" | while read -r row; do get "$row" "$key"; done | median)
    done
    awk -v n="$n" -v s="$server" -v d="${med[$server.deliveries_per_s]}" -v p50="${med[$server.p50_us]}" \
        -v p99="${med[$server.p99_us]}" -v mx="${med[$server.max_us]}" -v lost="${med[$server.lost]}" \
        -v dup="${med[$server.duplicated]}" -v err="${med[$server.errors]}" \
      'BEGIN { printf "| %d | %s | %d | %.2f | %.2f | %.2f | %d | %d | %d |\n", n, s, d, p50 / 1000, p99 / 1000, mx / 1000, lost, dup, err }'
  done
  ratios+=("$(awk -v n="$n" -v fd="${med[flosse.deliveries_per_s]}" -v nd="${med[nchan.deliveries_per_s]}" \
      -v fp="${med[flosse.p99_us]}" -v np="${med[nchan.p99_us]}" \
      'BEGIN { printf "%d subscribers: flosse / nchan deliveries/s %.2f, p99 latency %.2f (below 1 is better)", n, nd ? fd / nd : 0, np ? fp / np : 0 }')")
  unset med
done
echo
for l in "${ratios[@]}"; do echo "$l"; done
echo "(medians over $ROUNDS round(s); lost, duplicated and errors are medians too: every round is listed above)"
if [ -s "$work/flosse.log" ] && grep -qv 'listening on' "$work/flosse.log"; then
  echo "flosse log (first 10 lines past 'listening'):"
  grep -v 'listening on' "$work/flosse.log" | head -10 | sed 's/^/  /'
fi
if [ -s "$ngx/error.log" ]; then
  echo "nginx error log (first 10 lines):"
  head -10 "$ngx/error.log" | sed 's/^/  /'
fi
