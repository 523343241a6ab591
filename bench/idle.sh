#!/usr/bin/env bash
# bench/idle.sh: hold N idle SSE streams on flosse and report its memory and
# CPU. A benchmark, not a test. bench/run (make bench) measures the same RSS
# side by side with nginx + lua, at several N, with heartbeats off.
#
#   bench/idle.sh [N [HOLD [HEARTBEAT]]]      defaults: 10000 60 15
#
# It builds flosse (make -C <repo>) and bench/loadgen, starts
#   bin/flosse serve scripts --host 127.0.0.1 --port 0 --heartbeat HEARTBEAT --log-level warn
# reads the server's RSS (VmRSS of its process and any children) before any
# connection, opens N streams to /sse/quiet/ (one event, then an hour of
# sleep: only heartbeats after that) with loadgen, split over
# ceil(N / 9000) processes, and once every stream is established reads the
# RSS again and the server's CPU time (utime + stime) over an idle window of
# HOLD - 1 seconds inside the hold. loadgen holds the streams for HOLD seconds
# and counts the heartbeat frames; the expected count is N * HOLD / HEARTBEAT.
#
# Environment: RATE (new connections a second over all loadgen processes,
# default 2000), KEEP=1 keeps the work folder (logs, loadgen output).
# Everything it starts it stops (by pid) on exit, whatever the exit.
set -u

N=${1:-10000}
HOLD=${2:-60}
HB=${3:-15}
RATE=${RATE:-2000}
PER_PROC=9000
PATH_SSE=/sse/quiet/

case "$N$HOLD$HB$RATE" in *[!0-9.]*) echo "usage: bench/idle.sh [N [HOLD [HEARTBEAT]]] (numbers)" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=$(mktemp -d /tmp/flosse-idle.XXXXXX)
server_pid=""
lg_pids=()

cleanup() {
  local p
  for p in "${lg_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
  fi
  for p in "${lg_pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "idle.sh: $*" >&2; exit 1; }

# --- build -----------------------------------------------------------------
make -C "$root" -s >"$work/make.log" 2>&1 || { cat "$work/make.log" >&2; die "building flosse failed"; }
make -C "$here" -s >"$work/make-bench.log" 2>&1 || { cat "$work/make-bench.log" >&2; die "building loadgen failed"; }

# Both the server and loadgen may use every descriptor the hard limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$N" -gt $((nofile - 64)) ]; then
  echo "idle.sh: warning: $N streams exceed the server's open-file limit $nofile - 64" >&2
fi

# --- /proc readers ---------------------------------------------------------
# The server's process and all its descendants (workers, if it ever forks).
tree() {
  local pids=("$1") i=0 p c
  while [ $i -lt ${#pids[@]} ]; do
    p=${pids[$i]}
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do pids+=("$c"); done
    i=$((i + 1))
  done
  echo "${pids[@]}"
}
rss_kib() { # sum of VmRSS (KiB) over the tree; VmRSS covers all threads of a process
  local sum=0 p v
  for p in $(tree "$server_pid"); do
    v=$(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null)
    sum=$((sum + ${v:-0}))
  done
  echo $sum
}
cpu_ticks() { # utime + stime (clock ticks) over the tree
  local sum=0 p v
  for p in $(tree "$server_pid"); do
    # fields after the ")" that closes comm: state is 3, utime 14, stime 15
    v=$(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12 + $13}')
    sum=$((sum + ${v:-0}))
  done
  echo $sum
}
now() { date +%s.%N; }

# --- server ----------------------------------------------------------------
cd "$root" || die "no $root"
bin/flosse serve scripts --host 127.0.0.1 --port 0 --heartbeat "$HB" --log-level warn \
  >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$work/server.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log" >&2; die "the server did not start"; }
sleep 1
rss_before=$(rss_kib)

# --- loadgen ---------------------------------------------------------------
nproc_lg=$(( (N + PER_PROC - 1) / PER_PROC ))
rate_each=$(awk -v r="$RATE" -v k="$nproc_lg" 'BEGIN { printf "%.0f", r / k < 1 ? 1 : r / k }')
for k in $(seq 1 "$nproc_lg"); do
  n_k=$(( N / nproc_lg + (k <= N % nproc_lg ? 1 : 0) ))
  "$here/loadgen" idle --host 127.0.0.1 --port "$port" --path "$PATH_SSE" --conns "$n_k" \
    --hold "$HOLD" --rate "$rate_each" >"$work/lg.$k.out" 2>"$work/lg.$k.err" &
  lg_pids+=($!)
done

# Wait until every loadgen holds (its connect phase is bounded: N/rate + 30 s).
limit=$(awk -v n="$N" -v r="$RATE" 'BEGIN { printf "%d", (n / r + 40) * 10 }')
for _ in $(seq 1 "$limit"); do
  holding=$(cat "$work"/lg.*.err 2>/dev/null | grep -c '^loadgen: holding')
  [ "$holding" -ge "$nproc_lg" ] && break
  alive=0
  for p in "${lg_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 1 ] || break
  sleep 0.1
done
[ "${holding:-0}" -ge "$nproc_lg" ] || { cat "$work"/lg.*.err >&2; die "loadgen did not reach its hold"; }

# --- the idle window -------------------------------------------------------
window=$(awk -v h="$HOLD" 'BEGIN { w = h - 1; if (w < 0.5) w = h * 0.8; printf "%.1f", w }')
rss_after=$(rss_kib)
t0=$(now); c0=$(cpu_ticks)
sleep "$window"
t1=$(now); c1=$(cpu_ticks)
rss_end=$(rss_kib)
server_alive=yes
kill -0 "$server_pid" 2>/dev/null || server_alive=no

# loadgen exits by itself at the end of its hold.
for _ in $(seq 1 300); do
  alive=0
  for p in "${lg_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 1 ] || break
  sleep 0.1
done
for p in "${lg_pids[@]}"; do wait "$p" 2>/dev/null; done
lg_pids=()

# Stop the server now and time its shutdown (its streams are closed by then).
t_stop=$(now)
kill -TERM "$server_pid" 2>/dev/null
for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then
  server_exit="still running after 15 s: killed"
  kill -KILL "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null
else
  wait "$server_pid"; rc=$?
  server_exit="exit status $rc after $(awk -v a="$t_stop" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
fi
server_pid=""

# --- report ----------------------------------------------------------------
sum() { cat "$work"/lg.*.out | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { s += $2 } END { printf "%d", s }'; }
tck=$(getconf CLK_TCK)
echo "flosse idle streams: N=$N hold=${HOLD}s heartbeat=${HB}s rate=${RATE}/s over $nproc_lg loadgen process(es)"
echo "machine: $(nproc) CPUs, $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r); $(date -u '+%Y-%m-%d %H:%M UTC')"
for f in "$work"/lg.*.out; do echo "loadgen: $(cat "$f")"; done
awk -v n="$N" -v est="$(sum established)" -v open="$(sum open_at_end)" \
    -v closed="$(sum closed_by_server)" -v errs="$(sum errors)" \
    -v rb="$rss_before" -v ra="$rss_after" -v re="$rss_end" \
    -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v tck="$tck" \
    -v hb="$(sum heartbeats_hold)" -v hball="$(sum heartbeats)" -v ev="$(sum events)" \
    -v hold="$HOLD" -v hbs="$HB" '
BEGIN {
  wall = t1 - t0
  cpu = (c1 - c0) / tck
  printf "%-34s %s\n", "streams requested", n
  printf "%-34s %d (open at end %d, closed by server %d, errors %d)\n", "established", est, open, closed, errs
  printf "%-34s %.1f MiB before, %.1f MiB with the streams, %.1f MiB at the end of the window\n", \
    "server RSS", rb / 1024, ra / 1024, re / 1024
  printf "%-34s %.0f bytes ((after - before) / %d)\n", "RSS per stream", (ra - rb) * 1024 / n, n
  printf "%-34s %.2f %% of one CPU (%.2f s CPU over %.1f s)\n", "server CPU while idle", 100 * cpu / wall, cpu, wall
  if (hbs > 0)
    printf "%-34s %d during the hold (%d in all), expected %d (N * hold / heartbeat)\n", \
      "heartbeats counted by loadgen", hb, hball, n * hold / hbs
  else
    printf "%-34s %d (heartbeats off)\n", "heartbeats counted by loadgen", hball
  printf "%-34s %d\n", "events counted by loadgen", ev
}'
echo "server: $server_exit; alive through the window: $server_alive"
if [ -s "$work/server.log" ] && grep -qv 'listening on\|shutting down\|stopped' "$work/server.log"; then
  echo "server log (warnings and errors, first 10):"
  grep -v 'listening on' "$work/server.log" | head -10 | sed 's/^/  /'
fi
