#!/usr/bin/env bash
# Live-Azure benchmark (not a test): apimedic reads instances from the
# loopback stand-in (`apimedic simulate --serve-azure`) and diagnoses them.
#   1. one instance with 50 APIs / ~500 operations (6 simulated + 44 bulk APIs
#      of 11 operations, a policy on each), 24 h of 1-minute metrics;
#   2. a fleet of 50 such instances found through Resource Graph (--subscription).
# Prints wall time, requests made (from --save's .apimedic-pull.json) and peak RSS.
# Usage: benches/azure.sh [path/to/apimedic]   (default: target/release/apimedic)
set -euo pipefail
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/apimedic}
[ -x "$BIN" ] || { echo "build first: cargo build --release (or pass the binary)"; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 1; }
WORK=$(mktemp -d)
cleanup() { [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
SINCE=2026-03-02T13:00:00Z   # the simulated day (seed 1)
UNTIL=2026-03-03T13:00:00Z

serve() { # $1 = instances
  "$BIN" simulate --serve-azure 0 --instances "$1" --bulk-apis 44 --bulk-ops 11 \
    --minutes 1440 --scale 0.05 >"$WORK/env" 2>"$WORK/serve.err" &
  SERVER=$!
  for _ in $(seq 1 600); do grep -q AZURE_CLIENT_SECRET "$WORK/env" 2>/dev/null && break; sleep 0.1; done
  set -a; . <(grep '^export ' "$WORK/env" | sed 's/^export //'); set +a
}

run() { # $1 = label, rest = apimedic args
  local label=$1; shift
  rm -rf "$WORK/save"
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$BIN" diagnose "$@" --since "$SINCE" --until "$UNTIL" \
    --format json --save "$WORK/save" >"$WORK/out.json" 2>"$WORK/err" || [ $? -eq 1 ]
  read -r wall rss <"$WORK/time"
  local req thr docs probs
  req=$(python3 -c "import json;d=json.load(open('$WORK/save/.apimedic-pull.json'));print(d['requests']['requests'], d['requests']['throttled'], sum(i['documents'] for i in d['instances']), len(d['problems']), len(d['instances']))")
  echo "$label: wall ${wall}s, peak RSS $((rss / 1024)) MB, requests/throttled/documents/problems/instances: $req"
}

serve 1
ID=$(grep '^# /subscriptions' "$WORK/env" | head -1 | cut -c3-)
run "one instance, 50 APIs / 509 operations, 24 h metrics" --azure "$ID"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=

serve 50
run "fleet of 50 instances (Resource Graph, --concurrency 8)" --subscription 6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c --concurrency 8 --budget 10m
