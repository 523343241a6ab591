#!/bin/sh
# spec/tools/status_screenshot.sh [out.png]: makes docs/img/status.png, the
# status page (docs/status.md) of spec/fixtures/status with some activity:
# subscribers joining four channels and publishes at a varying rate for
# about 25 s, while a status stream is open (it fills the history ring),
# then headless Chromium's screenshot at 1200x900. Needs curl and chromium.
# One worker: the history is kept per worker, and the page's stream must
# land where the sampling stream did.
set -eu
cd "$(dirname "$0")/../.."
out=$(pwd)/${1:-docs/img/status.png}
log=$(mktemp)
profile=$(mktemp -d)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -f "$log"
  rm -rf "$profile"
}
trap cleanup EXIT INT TERM

bin/flosse serve spec/fixtures/status --port 0 --workers 1 --no-reload >"$log" 2>&1 &
pids=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's#.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*#\1#p' "$log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$log" >&2; echo "status_screenshot: the server did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"

background() { "$@" >/dev/null 2>&1 & pids="$pids $!"; }

# The status stream that samples the activity into the history.
background curl -sN -H "Accept: text/event-stream" "$base/status/?token=staff-token"
channels="orders chat.lobby prices.eur %3Cb%3Enot-bold"
i=0
while [ $i -lt 50 ]; do
  i=$((i + 1))
  # Subscribers join over time, the first channel fastest.
  n=0
  for c in $channels; do
    n=$((n + 1))
    if [ $((i % (n * 2))) -eq 0 ]; then background curl -sN "$base/channels/$c/"; fi
  done
  # Publishes: a burst whose size rises and falls.
  burst=$(( (i % 20) < 10 ? (i % 20) : 20 - (i % 20) ))
  j=0
  while [ $j -lt $burst ]; do
    j=$((j + 1))
    curl -s -o /dev/null -X POST --data "tick $i.$j" "$base/publish/orders/"
  done
  curl -s -o /dev/null -X POST --data "hello" "$base/publish/chat.lobby/"
  sleep 0.5
done

# Publishing goes on while the picture is taken.
background sh -c "while :; do curl -s -o /dev/null -X POST --data more '$base/publish/orders/'; sleep 0.05; done"

# ?samples=2: the page closes its stream after two samples, so that
# Chromium sees it idle and takes the picture.
timeout -k 5 90 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1200,900 --virtual-time-budget=10000 \
  --screenshot="$out" "$base/status/?token=staff-token&samples=2" 2>/dev/null
echo "status_screenshot: wrote $out"
