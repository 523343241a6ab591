# shellcheck shell=bash disable=SC2154  # root, work, here, repo, t_start...: bench/run's, which sources this
# bench/h2.sh: `bench/run h2`, HTTP/2 over TLS, flosse against nginx + lua
# (bench/peers/nginx-h2.conf) in the same run. Sourced by bench/run, whose
# helpers it uses (start_flosse, start_nginx, stop_server, rss_kib,
# cpu_ticks, record, med, num, ratio...); not a script of its own.
#
#   h2-streams    h2load -c C -m M -D H2_DURATION against /bench/ten/ (10
#                 events, then the stream ends), for each CxM of H2_LOADS:
#                 streams/s and server CPU per 1000 streams
#   h2-idle       H2_IDLE idle streams (/bench/quiet/) multiplexed over
#                 ceil(H2_IDLE / H2_IDLE_PER_CONN) connections
#                 (bench/h2idle.py), a fresh server each time: RSS per
#                 stream, summed over every process of the server
#   h2-handshake  h2load -c H2_HANDSHAKES -n H2_HANDSHAKES -m 1: every
#                 connection a new full TLS handshake (no resumption on
#                 either server) and one stream: handshakes/s and server CPU
#                 per handshake
# The server CPU is utime + stime from /proc/PID/stat of every process of
# the server (the nginx master and workers; flosse's one process, its
# threads included), read just before and just after each load generator
# run: h2load shares the machine's 2 CPUs with the server, so the CPU a unit
# of work costs the server is the figure to compare, beside the throughput.
# The run makes its own self-signed certificate (openssl req, H2_KEY: ec =
# ECDSA P-256, rsa = RSA 2048) in its temp folder; both servers serve it.

H2BEGIN='<!-- h2:begin: this section is written by bench/run h2 (WRITE_DOCS=1), which touches nothing else of the page; a full make bench keeps it as it is -->'
H2END='<!-- h2:end -->'
H2_TEN_BYTES=332   # the body of one /bench/ten/ stream: 9 x 33 + 35 bytes of event frames
PY_H2=/usr/bin/python3   # Debian's, with python3-h2 (a pyenv python3 on PATH may lack it)

h2_flosse_tls() { # 0 when this flosse serves TLS (its help lists --tls-cert)
  (cd "$root" && bin/flosse serve --help 2>&1) | grep -q -- '--tls-cert'
}
h2_cert() { # makes the run's certificate: sets H2_CERT and H2_KEY_FILE
  local dir=$work/h2-tls args
  mkdir -p "$dir"
  case "$H2_KEY" in
    ec) args=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
    rsa) args=(-newkey rsa:2048) ;;
  esac
  H2_CERT=$dir/cert.pem; H2_KEY_FILE=$dir/key.pem
  openssl req -x509 "${args[@]}" -nodes -keyout "$H2_KEY_FILE" -out "$H2_CERT" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >"$RAW/h2-cert.log" 2>&1 ||
    { cat "$RAW/h2-cert.log" >&2; die "h2: openssl req failed"; }
  chmod 644 "$H2_KEY_FILE"   # nginx's workers run as @USER@
  echo "openssl req -x509 ${args[*]} -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1" >>"$OUT/commands.txt"
}
h2_key_name() { [ "$H2_KEY" = rsa ] && echo "RSA 2048" || echo "ECDSA P-256"; }
h2_start() { # srv tag: a server of the h2 benchmark (SRV_PID, SRV_PORT)
  if [ "$1" = flosse ]; then start_flosse "$2" "$WORKERS" --tls-cert "$H2_CERT" --tls-key "$H2_KEY_FILE"
  else start_nginx "$2" nginx-h2; fi
}
h2_stop() { # srv tag pid
  if [ "$1" = flosse ]; then stop_server "$3"; else stop_nginx "$2" "$3"; fi
}

# h2load's report as key=value: finished_s succeeded failed errored timeout
# s2xx non2xx data_bytes tls cipher temp_key alpn, and the connect / first
# byte / request means in ms
h2load_kv() { # file
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^finished in/ { s = $3; sub(/,$/, "", s); printf "finished_s=%.4f ", ms(s) / 1000 }
    /^requests:/ { printf "requests=%d started=%d done=%d succeeded=%d failed=%d errored=%d timeout=%d ", $2, $4, $6, $8, $10, $12, $14 }
    /^status codes:/ { printf "s2xx=%d non2xx=%d ", $3, $5 + $7 + $9 }
    /^traffic:/ { for (i = 1; i <= NF; i++) if ($i == "data") { d = $(i - 1); gsub(/[()]/, "", d); printf "data_bytes=%d ", d } }
    /^TLS Protocol:/ { printf "tls=%s ", $3 }
    /^Cipher:/ { printf "cipher=%s ", $2 }
    /^Server Temp Key:/ { printf "temp_key=%s ", $4 }
    /^Application protocol:/ { printf "alpn=%s ", $3 }
    /^time for request:/ { printf "request_mean_ms=%.2f ", ms($6) }
    /^time for connect:/ { printf "connect_mean_ms=%.2f ", ms($6) }
    /^time to 1st byte:/ { printf "ttfb_mean_ms=%.2f ", ms($7) }' "$1"
}
# runs h2load (bounded), reading the server's CPU just before and after and
# h2load's own (/usr/bin/time when there); prints the key=value line
h2load_run() { # bound_s tag srv_pid h2load-args...
  local bound=$1 tag=$2 pid=$3 s0 s1 m0 m1 t0 t1 rc lg=""; shift 3
  echo "h2load $*" >>"$OUT/commands.txt"
  t0=$(date +%s.%N); m0=$(machine_ticks); s0=$(cpu_ticks "$pid")
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f '%U %S' -o "$RAW/$tag.time" timeout -k 5 "$bound" "$H2LOAD" "$@" >"$RAW/$tag.out" 2>"$RAW/$tag.err"
  else
    timeout -k 5 "$bound" "$H2LOAD" "$@" >"$RAW/$tag.out" 2>"$RAW/$tag.err"
  fi
  rc=$?
  s1=$(cpu_ticks "$pid"); m1=$(machine_ticks); t1=$(date +%s.%N)
  [ -s "$RAW/$tag.time" ] && lg=$(awk 'NR == 1 && NF == 2 { printf "%.2f", $1 + $2 }' "$RAW/$tag.time")
  local kv; kv=$(h2load_kv "$RAW/$tag.out")
  awk -v s0="$s0" -v s1="$s1" -v m0="$m0" -v m1="$m1" -v t0="$t0" -v t1="$t1" -v t="$TCK" -v lg="$lg" -v rc="$rc" -v kv="$kv" 'BEGIN {
    s = (s1 - s0) / t; m = (m1 - m0) / t; o = m - s - (lg == "" ? 0 : lg); if (o < 0) o = 0
    printf "%s h2load_rc=%d window_s=%.2f srv_cpu_s=%.2f lg_cpu_s=%s machine_cpu_s=%.2f other_cpu_s=%s", kv, rc, t1 - t0, s, (lg == "" ? "?" : lg), m, (lg == "" ? "?" : sprintf("%.2f", o)) }'
}

h2_streams_one() { # srv port pid CxM round
  local srv=$1 port=$2 pid=$3 cm=$4 r=$5 c=${4%x*} m=${4#*x} tag=h2-streams.$1.$4.$5 line
  line=$(h2load_run $((H2_DURATION + 60)) "$tag" "$pid" -c "$c" -m "$m" -t 1 -D "$H2_DURATION" "https://127.0.0.1:$port/bench/ten/")
  record "bench=h2-streams srv=$srv g=$cm round=$r conns=$c streams_per_conn=$m duration_s=$H2_DURATION $line $(echo "$line" | tr ' ' '\n' | awk -F= -v want="$H2_TEN_BYTES" '
    { v[$1] = $2 } END {
      ok = v["succeeded"] + 0; f = v["finished_s"] + 0
      printf "streams_per_s=%.0f", (f > 0 ? ok / f : 0)
      if (ok > 0) printf " srv_cpu_ms_per_1000=%.1f data_bytes_per_stream=%.1f", v["srv_cpu_s"] * 1e6 / ok, v["data_bytes"] / ok
      if (v["srv_cpu_s"] > 0) printf " streams_per_srv_cpu_s=%.0f", ok / v["srv_cpu_s"]
      if (v["window_s"] > 0) printf " srv_cpus_busy=%.2f", v["srv_cpu_s"] / v["window_s"]
      printf " expected_bytes_per_stream=%d", want }')"
}
h2_idle_one() { # srv n round
  local srv=$1 n=$2 r=$3 tag=h2-idle.$1.$2.$3 pid port before after end k
  k=$(( (n + H2_IDLE_PER_CONN - 1) / H2_IDLE_PER_CONN ))
  h2_start "$srv" "$tag"; pid=$SRV_PID; port=$SRV_PORT
  # warm-up: a few short streams on a few connections, so that what a server
  # sets up once (its first TLS connection, its first request's code) is in
  # the baseline, not shared out over the idle streams
  timeout -k 5 30 "$H2LOAD" -c 8 -n 32 -m 4 "https://127.0.0.1:$port/bench/ten/" >"$RAW/$tag.warm.out" 2>&1 ||
    say "h2: $tag: the warm-up failed (see $RAW/$tag.warm.out)"
  sleep 1
  before=$(rss_kib "$pid")
  echo "$PY_H2 bench/h2idle.py --port $port --path /bench/quiet/ --conns $k --streams $n --hold $H2_IDLE_HOLD --timeout 60" >>"$OUT/commands.txt"
  timeout -k 5 $((H2_IDLE_HOLD + 90)) "$PY_H2" "$here/h2idle.py" --port "$port" --path /bench/quiet/ --conns "$k" --streams "$n" \
    --hold "$H2_IDLE_HOLD" --timeout 60 >"$RAW/$tag.out" 2>"$RAW/$tag.err" &
  local lp=$!; lg_pids+=("$lp")
  for _ in $(seq 1 700); do
    grep -q '^h2idle: holding' "$RAW/$tag.err" 2>/dev/null && break
    kill -0 "$lp" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^h2idle: holding' "$RAW/$tag.err" 2>/dev/null || say "h2: $tag: bench/h2idle.py never said it holds its streams"
  sleep 0.5
  after=$(rss_kib "$pid")
  wait_lg
  end=$(rss_kib "$pid")
  local alive=1; kill -0 "$pid" 2>/dev/null || alive=0
  local procs; procs=$(nprocs "$pid")
  h2_stop "$srv" "$tag" "$pid"
  record "bench=h2-idle srv=$srv g=$n round=$r n=$n conns=$k hold_s=$H2_IDLE_HOLD $(head -1 "$RAW/$tag.out") rss_before_kib=$before rss_after_kib=$after rss_end_kib=$end per_stream_b=$(( (after - before) * 1024 / n )) per_conn_b=$(( (after - before) * 1024 / k )) server_procs=$procs server_alive=$alive"
}
h2_handshake_one() { # srv port pid n round
  local srv=$1 port=$2 pid=$3 n=$4 r=$5 tag=h2-handshake.$1.$4.$5 line
  line=$(h2load_run 120 "$tag" "$pid" -c "$n" -n "$n" -m 1 -t 1 "https://127.0.0.1:$port/bench/ten/")
  record "bench=h2-handshake srv=$srv g=$n round=$r handshakes=$n $line $(echo "$line" | tr ' ' '\n' | awk -F= '
    { v[$1] = $2 } END {
      ok = v["succeeded"] + 0; f = v["finished_s"] + 0
      printf "handshakes_per_s=%.0f", (f > 0 ? ok / f : 0)
      if (ok > 0) printf " srv_cpu_ms_per_handshake=%.3f", v["srv_cpu_s"] * 1000 / ok
      if (v["srv_cpu_s"] > 0) printf " handshakes_per_srv_cpu_s=%.0f", ok / v["srv_cpu_s"]
      if (v["window_s"] > 0) printf " srv_cpus_busy=%.2f", v["srv_cpu_s"] / v["window_s"] }')"
}

bench_h2() {
  local servers=() srv r cm pid port
  if [ "$H2_FLOSSE" = 1 ] || { [ "$H2_FLOSSE" = auto ] && h2_flosse_tls; }; then servers+=(flosse)
  else
    say "h2: this flosse has no --tls-cert (or H2_FLOSSE=0): nginx + lua alone, flosse's figures are missing"
    echo "h2: flosse not measured: its \`flosse serve\` has no --tls-cert (not in this tree yet), or H2_FLOSSE=0" >>"$OUT/notes.txt"
  fi
  servers+=(nginx-h2)
  say "h2: h2load $H2_LOADS (c x m) for ${H2_DURATION}s, $H2_IDLE idle streams over ceil(/$H2_IDLE_PER_CONN) connections, $H2_HANDSHAKES handshakes, $ROUNDS round(s); ${servers[*]}"
  echo "h2 load before: $(cat /proc/loadavg)" >>"$OUT/load.txt"
  h2_cert
  # finite streams and handshakes: the servers stay up across rounds
  declare -A hpid hport
  for srv in "${servers[@]}"; do h2_start "$srv" "h2.$srv"; hpid[$srv]=$SRV_PID; hport[$srv]=$SRV_PORT; done
  sleep 1
  for cm in ${H2_LOADS//,/ }; do
    for r in $(seq 1 "$ROUNDS"); do
      for srv in "${servers[@]}"; do
        kill -0 "${hpid[$srv]}" 2>/dev/null || die "h2: $srv died (pid ${hpid[$srv]}); logs in $RAW"
        h2_streams_one "$srv" "${hport[$srv]}" "${hpid[$srv]}" "$cm" "$r"
        sleep 1
      done
    done
  done
  for r in $(seq 1 "$ROUNDS"); do
    for srv in "${servers[@]}"; do
      kill -0 "${hpid[$srv]}" 2>/dev/null || die "h2: $srv died (pid ${hpid[$srv]}); logs in $RAW"
      h2_handshake_one "$srv" "${hport[$srv]}" "${hpid[$srv]}" "$H2_HANDSHAKES" "$r"
      sleep 1
    done
  done
  for srv in "${servers[@]}"; do h2_stop "$srv" "h2.$srv" "${hpid[$srv]}"; done
  # idle streams: a fresh server each time
  for r in $(seq 1 "$ROUNDS"); do
    for srv in "${servers[@]}"; do h2_idle_one "$srv" "$H2_IDLE" "$r"; sleep 1; done
  done
  echo "h2 load after: $(cat /proc/loadavg)" >>"$OUT/load.txt"
}

# --- the report: $H2REPORT (tables), $OUT/h2.md (the page's section)
h2_report() {
  H2REPORT=$OUT/h2-report.md
  : >"$H2REPORT"
  grep -q '^bench=h2-' "$RESULTS" || return 0
  local s g v f n
  local servers=(flosse nginx-h2)
  tlsof() { grep -m1 "^bench=h2-[a-z]* srv=$1 " "$RESULTS" | tr ' ' '\n' | awk -F= '
    { v[$1] = $2 } END { if (v["tls"] != "") printf "%s %s %s, ALPN %s", v["tls"], v["cipher"], v["temp_key"], (v["alpn"] == "" ? "none" : v["alpn"]) }'; }
  {
    if ! grep -q '^bench=h2-[a-z]* srv=flosse ' "$RESULTS"; then
      echo "**flosse was not measured**: this tree's \`flosse serve\` has no \`--tls-cert\` yet (or H2_FLOSSE=0);"
      echo "the nginx + lua figures below stand alone, with no ratio."
      echo
    fi
    echo "- Certificate: self-signed, $(h2_key_name) (H2_KEY=$H2_KEY), the same file for both servers."
    for s in "${servers[@]}"; do v=$(tlsof "$s"); [ -n "$v" ] && echo "- TLS negotiated with $s (h2load): $v."; done
    [ -n "$(tlsof flosse)" ] && [ -n "$(tlsof nginx-h2)" ] && [ "$(tlsof flosse)" != "$(tlsof nginx-h2)" ] &&
      echo "- **The servers negotiated different TLS parameters** (above): their CPU per unit of work is not measured on the same cipher."
    echo
    if grep -q '^bench=h2-streams ' "$RESULTS"; then
      echo "### Finite streams over h2 (h2load, 10 events a stream, $H2_DURATION s a round)"
      echo
      echo "| connections x streams each | server | streams/s | server CPU ms / 1000 streams | streams per server CPU-second | server CPUs busy | h2load CPU s | failed | errored | timeout | non-2xx | body bytes / stream |"
      echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for g in $(groups h2-streams); do
        for s in "${servers[@]}"; do
          [ -n "$(med h2-streams $s "$g" streams_per_s)" ] || continue
          echo "| ${g/x/ x } | $s | **$(num "$(med h2-streams $s "$g" streams_per_s)")** | $(num "$(med h2-streams $s "$g" srv_cpu_ms_per_1000)" 1) | $(num "$(med h2-streams $s "$g" streams_per_srv_cpu_s)") | $(med h2-streams $s "$g" srv_cpus_busy) | $(med h2-streams $s "$g" lg_cpu_s) | $(num "$(med h2-streams $s "$g" failed)") | $(num "$(med h2-streams $s "$g" errored)") | $(num "$(med h2-streams $s "$g" timeout)") | $(num "$(med h2-streams $s "$g" non2xx)") | $(med h2-streams $s "$g" data_bytes_per_stream) |"
        done
      done
      echo
      for g in $(groups h2-streams); do
        v=$(ratio "$(med h2-streams flosse "$g" streams_per_s)" "$(med h2-streams nginx-h2 "$g" streams_per_s)")
        f=$(ratio "$(med h2-streams flosse "$g" srv_cpu_ms_per_1000)" "$(med h2-streams nginx-h2 "$g" srv_cpu_ms_per_1000)")
        [ -n "$v" ] && echo "- ${g/x/ x }: flosse / nginx + lua streams/s **$v**, server CPU per stream **$f** (below 1: flosse spends less)"
      done
      echo
      echo "Rounds (streams/s; server CPU ms / 1000 streams):"
      echo
      for g in $(groups h2-streams); do for s in "${servers[@]}"; do
        v=$(rounds_of h2-streams $s "$g" streams_per_s); [ -n "$v" ] && echo "- ${g/x/ x }, $s: $v; $(rounds_of h2-streams $s "$g" srv_cpu_ms_per_1000)"
      done; done
      echo
    fi
    if grep -q '^bench=h2-handshake ' "$RESULTS"; then
      g=$(groups h2-handshake | head -1)
      echo "### TLS handshakes ($(num "$g") new connections at once, one stream each)"
      echo
      echo "| server | handshakes/s | server CPU ms / handshake | handshakes per server CPU-second | server CPUs busy | h2load CPU s | connect mean ms | failed | errored |"
      echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
      for s in "${servers[@]}"; do
        [ -n "$(med h2-handshake $s "$g" handshakes_per_s)" ] || continue
        echo "| $s | **$(num "$(med h2-handshake $s "$g" handshakes_per_s)")** | $(med h2-handshake $s "$g" srv_cpu_ms_per_handshake) | $(num "$(med h2-handshake $s "$g" handshakes_per_srv_cpu_s)") | $(med h2-handshake $s "$g" srv_cpus_busy) | $(med h2-handshake $s "$g" lg_cpu_s) | $(num "$(med h2-handshake $s "$g" connect_mean_ms)" 1) | $(num "$(med h2-handshake $s "$g" failed)") | $(num "$(med h2-handshake $s "$g" errored)") |"
      done
      echo
      v=$(ratio "$(med h2-handshake flosse "$g" handshakes_per_s)" "$(med h2-handshake nginx-h2 "$g" handshakes_per_s)")
      f=$(ratio "$(med h2-handshake flosse "$g" srv_cpu_ms_per_handshake)" "$(med h2-handshake nginx-h2 "$g" srv_cpu_ms_per_handshake)")
      [ -n "$v" ] && { echo "- flosse / nginx + lua handshakes/s **$v**, server CPU per handshake **$f** (below 1: flosse spends less)"; echo; }
      echo "Rounds (handshakes/s; server CPU ms / handshake):"
      echo
      for s in "${servers[@]}"; do
        v=$(rounds_of h2-handshake $s "$g" handshakes_per_s); [ -n "$v" ] && echo "- $s: $v; $(rounds_of h2-handshake $s "$g" srv_cpu_ms_per_handshake)"
      done
      echo
    fi
    if grep -q '^bench=h2-idle ' "$RESULTS"; then
      g=$(groups h2-idle | head -1)
      echo "### Idle streams over h2 ($(num "$g") streams, $(grep -m1 '^bench=h2-idle ' "$RESULTS" | tr ' ' '\n' | awk -F= '$1 == "conns" { print $2 }') connections, RSS of every process of the server)"
      echo
      echo "| server | streams with their first event | open at end | reset | errors | server processes | RSS before MiB | RSS with the streams MiB | RSS per stream, bytes |"
      echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
      for s in "${servers[@]}"; do
        [ -n "$(med h2-idle $s "$g" per_stream_b)" ] || continue
        echo "| $s | $(num "$(med h2-idle $s "$g" first_event)") | $(num "$(med h2-idle $s "$g" open_at_end)") | $(num "$(med h2-idle $s "$g" reset)") | $(num "$(med h2-idle $s "$g" errors)") | $(med h2-idle $s "$g" server_procs) | $(num "$(awk -v k="$(med h2-idle $s "$g" rss_before_kib)" 'BEGIN { print k / 1024 }')" 1) | $(num "$(awk -v k="$(med h2-idle $s "$g" rss_after_kib)" 'BEGIN { print k / 1024 }')" 1) | **$(num "$(med h2-idle $s "$g" per_stream_b)")** |"
      done
      echo
      v=$(ratio "$(med h2-idle flosse "$g" per_stream_b)" "$(med h2-idle nginx-h2 "$g" per_stream_b)")
      [ -n "$v" ] && { echo "- flosse / nginx + lua RSS per idle h2 stream **$v** (below 1: flosse is smaller)"; echo; }
      echo "Rounds (RSS per stream, bytes):"
      echo
      for s in "${servers[@]}"; do
        v=$(rounds_of h2-idle $s "$g" per_stream_b); [ -n "$v" ] && echo "- $s: $v"
      done
      echo
    fi
    echo "Anomalies (rounds with a failed, errored or timed-out stream, a non-2xx status, a body of"
    echo "other than $H2_TEN_BYTES bytes a stream, no h2 ALPN, an idle stream without its event or closed early):"
    echo
    v=$(awk -v want="$H2_TEN_BYTES" '$1 ~ /^bench=h2-/ {
        delete x; for (i = 1; i <= NF; i++) { j = index($i, "="); x[substr($i, 1, j - 1)] = substr($i, j + 1) }
        bad = ""
        if (x["bench"] == "h2-streams" || x["bench"] == "h2-handshake") {
          if (x["succeeded"] + 0 == 0) bad = bad " succeeded=0"
          for (k in x) if ((k == "failed" || k == "errored" || k == "timeout" || k == "non2xx") && x[k] + 0) bad = bad " " k "=" x[k]
          if (x["alpn"] != "h2") bad = bad " alpn=" (x["alpn"] == "" ? "none" : x["alpn"])
          if (x["h2load_rc"] + 0) bad = bad " h2load_rc=" x["h2load_rc"]
          if (x["bench"] == "h2-streams" && x["data_bytes_per_stream"] != "" && x["data_bytes_per_stream"] + 0 != want) bad = bad " body_bytes_per_stream=" x["data_bytes_per_stream"]
          if (x["bench"] == "h2-handshake" && x["succeeded"] + 0 < x["handshakes"] + 0) bad = bad " succeeded=" x["succeeded"] "/" x["handshakes"]
        } else if (x["bench"] == "h2-idle") {
          if (x["first_event"] + 0 < x["n"] + 0) bad = bad " first_event=" x["first_event"] "/" x["n"]
          if (x["open_at_end"] + 0 < x["n"] + 0) bad = bad " open_at_end=" x["open_at_end"]
          for (k in x) if ((k == "errors" || k == "reset" || k == "goaway" || k == "ended_by_server" || k == "not_h2" || k == "bad_status" || k == "refused_over_limit") && x[k] + 0) bad = bad " " k "=" x[k]
          if (x["server_alive"] != "1") bad = bad " server_alive=" x["server_alive"]
        }
        if (bad != "") printf "- %s, %s, %s, round %s:%s\n", x["bench"], x["srv"], x["g"], x["round"], bad
      }' "$RESULTS")
    echo "${v:-- none}"
    echo
    n=$(cat "$RAW"/h2*.flosse.log 2>/dev/null | grep -v 'listening on' | grep -c .)
    echo "Server logs: flosse (--log-level warn) $n line(s) past 'listening on'; nginx's error logs (warn) $(cat "$RAW"/h2*.nginx-error.log 2>/dev/null | grep -c .) line(s)."
    { cat "$RAW"/h2*.flosse.log 2>/dev/null | grep -v 'listening on' | sed 's/^[0-9TZ:. -]*//'
      cat "$RAW"/h2*.nginx-error.log 2>/dev/null | sed 's/^[0-9\/: ]*//; s/\*[0-9]* //; s/, client: .*//'; } | sort | uniq -c | sort -rn | head -5 | sed 's/^ */- /'
    echo
    echo "CPU the rest of the machine used in the streams and handshake windows (machine busy time minus"
    echo "the server and h2load; other sessions share this machine): $(grep '^bench=h2-\(streams\|handshake\) ' "$RESULTS" | tr ' ' '\n' | awk -F= '$1 == "other_cpu_s" && $2 != "?" { s += $2; n++ } $1 == "window_s" { w += $2 } END { if (n) printf "%.1f CPU-s over %.0f s of windows", s, w; else printf "not known" }')."
    echo
  } >>"$H2REPORT"
}

h2_section() { # $OUT/h2.md: the page's h2 section, between its markers
  [ -s "$H2REPORT" ] || return 0
  local rev when knobs inv
  rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "${FLOSSE_REV:-?}")
  when=$(date -u -d "@$t_start" '+%Y-%m-%d %H:%M UTC')
  knobs="ROUNDS=$ROUNDS WORKERS=$WORKERS H2_LOADS=$H2_LOADS H2_DURATION=$H2_DURATION H2_IDLE=$H2_IDLE H2_IDLE_PER_CONN=$H2_IDLE_PER_CONN H2_IDLE_HOLD=$H2_IDLE_HOLD H2_HANDSHAKES=$H2_HANDSHAKES H2_KEY=$H2_KEY"
  [ -n "${FLOSSE_ROOT:-}" ] && knobs="FLOSSE_ROOT=$root FLOSSE_REV=${FLOSSE_REV:-$rev} $knobs"
  inv="bench/run $( [ "$PROFILE" = quick ] && echo "quick ")h2"
  h2_cmd() { grep -m1 -e "$1" "$OUT/commands.txt" | sed 's|127\.0\.0\.1:[0-9]*|127.0.0.1:P|; s/--port [0-9]*/--port P/'; }
  {
    echo "$H2BEGIN"
    echo "## HTTP/2 over TLS (bench/run h2)"
    echo
    echo "flosse serving bench/app over TLS with HTTP/2 (\`--tls-cert\`, \`--tls-key\`) against nginx + lua"
    echo "(\`bench/peers/nginx-h2.conf\`: \`listen ... ssl http2\`, the same two stream locations as"
    echo "nginx-lua.conf), side by side in one run, each with $WORKERS workers and the same self-signed"
    echo "certificate. Like the rest of this page a benchmark, not a test; this section alone is rewritten by its run."
    echo
    echo "- **Date**: $when ($(awk '$1 == "h2" { print $2 " s" }' "$OUT/times.txt" 2>/dev/null))."
    echo "- **Command** (every knob spelled out; \`WRITE_DOCS=1\` in front also rewrites this section): \`$knobs $inv\`."
    echo "- **flosse**: commit $rev; **peer**: nginx-light $(dpkg-query -W -f='${Version}' nginx-light 2>/dev/null), libnginx-mod-http-lua $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua 2>/dev/null); **load generators**: $("$H2LOAD" --version 2>/dev/null | head -1), python3-h2 $(dpkg-query -W -f='${Version}' python3-h2 2>/dev/null) (bench/h2idle.py); $(openssl version | cut -d' ' -f1-2)."
    echo "- **Machine**: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r); the load generator runs on the same CPUs as the server, and other work shares them (/proc/loadavg $(sed -n 's/^h2 load before: \([^ ]* [^ ]* [^ ]*\).*/\1/p' "$OUT/load.txt" | head -1) before, $(sed -n 's/^h2 load after: \([^ ]* [^ ]* [^ ]*\).*/\1/p' "$OUT/load.txt" | head -1) after): read the ratios and the server CPU per unit of work rather than the absolute rates."
    echo "- **Rounds**: every figure is the median of $ROUNDS round(s); the servers run one after the other, never at once."
    echo
    cat "$H2REPORT"
    echo "### Method"
    echo
    echo '```sh'
    h2_cmd '^openssl req'
    echo "bin/flosse serve bench/app --host 127.0.0.1 --port 0 --workers $WORKERS --heartbeat 0 --no-reload --log-level warn --tls-cert cert.pem --tls-key key.pem"
    echo "nginx -p PREFIX -c PREFIX/nginx.conf -g 'daemon off;'   # bench/peers/nginx-h2.conf, worker_processes $WORKERS"
    for g in ${H2_LOADS//,/ }; do h2_cmd "^h2load -c ${g%x*} -m ${g#*x} "; done
    h2_cmd '^h2load -c [0-9]* -n '
    h2_cmd 'h2idle.py'
    echo '```'
    echo
    echo "- **Finite streams.** Both servers up across the rounds. h2load opens C TLS connections and keeps M"
    echo "  streams open on each (\`GET /bench/ten/\`: 10 events, then the stream ends), a new stream as soon"
    echo "  as one ends, for $H2_DURATION s. *streams/s*: h2load's succeeded streams over its measured time;"
    echo "  every stream's body is checked by size ($H2_TEN_BYTES bytes: the ten event frames)."
    echo "- **Server CPU.** utime + stime (\`/proc/PID/stat\`) of every process of the server (the nginx master"
    echo "  and its workers; flosse's one process with its threads), read just before h2load starts and just"
    echo "  after it exits, over the streams (or handshakes) it counted: connection set-up and the last"
    echo "  in-flight streams are in the window too, the same for both servers. *server CPUs busy*: that CPU"
    echo "  time over the window (2 would be both CPUs); h2load's own CPU (\`/usr/bin/time\`) beside it. A server"
    echo "  well below 2 is not held back by the CPU but by its own pace (or the client's): the CPU per stream"
    echo "  compares the work, the rate what the pair achieves on this machine."
    echo "- **Handshakes.** h2load with as many clients as requests (\`-c N -n N -m 1\`): N new TCP + TLS"
    echo "  connections at once, each one full handshake (the certificate's key: $(h2_key_name); no session"
    echo "  resumption: nginx with \`ssl_session_cache off\` and \`ssl_session_tickets off\`, and h2load resumes"
    echo "  none), one stream, then closed. *handshakes/s*: N over h2load's time; the CPU per handshake"
    echo "  holds that stream's work too."
    echo "- **Idle streams.** A fresh server each round; a warm-up of 32 short streams over 8 connections"
    echo "  (\`h2load -c 8 -n 32 -m 4\`: what a server sets up once belongs to its baseline); VmRSS of all"
    echo "  its processes a second later, then"
    echo "  \`bench/h2idle.py\` (python3-h2, one thread a connection) opens the streams over"
    echo "  ceil(N / $H2_IDLE_PER_CONN) TLS connections (below both servers' 128 concurrent streams a connection),"
    echo "  waits until each stream has its first event, and holds them $H2_IDLE_HOLD s; half a second after"
    echo "  it says so, VmRSS again. *RSS per stream* = (with the streams - before) / N: the connections' TLS"
    echo "  and HTTP/2 state is shared out over their streams."
    echo
    echo "$H2END"
  } >"$OUT/h2.md"
}
write_h2_section() { # puts $OUT/h2.md between the markers of docs/benchmarks.md (else before "## Earlier measurements", else at the end)
  local page=$repo/docs/benchmarks.md tmp
  [ -s "$OUT/h2.md" ] || return 0
  [ -f "$page" ] || : >"$page"
  tmp=$(mktemp "$page.XXXXXX")
  if grep -q '^<!-- h2:begin' "$page"; then
    awk -v f="$OUT/h2.md" '
      /^<!-- h2:begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
      skip && /^<!-- h2:end/ { skip = 0; next }
      !skip { print }' "$page" >"$tmp"
  elif grep -q '^## Earlier measurements' "$page"; then
    awk -v f="$OUT/h2.md" '
      /^## Earlier measurements/ && !done { while ((getline l < f) > 0) print l; print ""; done = 1 }
      { print }' "$page" >"$tmp"
  else
    { cat "$page"; echo; cat "$OUT/h2.md"; } >"$tmp"
  fi
  mv "$tmp" "$page"
}
