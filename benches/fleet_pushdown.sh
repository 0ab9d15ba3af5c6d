#!/usr/bin/env bash
# Fleet through the KQL pushdown (not a test): 24 h of gateway logs for each
# of N instances (default 50) held by a real KQL engine (duckdb-kql behind
# fixtures/kql/serve_kql.py, the Log Analytics wire shape on loopback), the
# instances served by the loopback ARM stand-in (`simulate --serve-azure
# --instances N --logs-workspace GUID`: each has a diagnostic setting sending
# GatewayLogs to that workspace). One `apimedic diagnose --subscription SUB`
# finds the instances through Resource Graph, reads each one's configuration
# and metrics, finds its workspace from the diagnostic setting, and pushes the
# aggregation down with the instance's own id as the filter.
# Prints wall time and peak memory (benches/peak_mem.py: maxrss, anonymous and
# file-backed apart) and the summed pushdown counters (--timings).
#
#   BENCH_PYTHON=/path/to/python-with-duckdb-kql benches/fleet_pushdown.sh
#   INSTANCES=10 SCALE=0.05 benches/fleet_pushdown.sh
set -euo pipefail
cd "$(dirname "$0")/.."
n=${INSTANCES:-50}
scale=${SCALE:-0.05}
py=${BENCH_PYTHON:-python3}
"$py" -c 'import duckdb_kql' || { echo "fleet_pushdown.sh: BENCH_PYTHON needs duckdb-kql (.ci/run installs it)" >&2; exit 2; }
cargo build --release --all-targets --quiet
bin=${CARGO_TARGET_DIR:-target}/release/apimedic
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
guid=0b7e4d1c-2f3a-4c5b-8d6e-7f8091a2b3c4
sub=6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c
since=2026-03-02T13:00:00Z   # the simulated day (seed 1)
until=2026-03-03T13:00:00Z

# One instance's day of logs; every instance of the fleet gets a copy under its own id.
"$bin" simulate --scenario backend-oom --out "$work/sim" --minutes 1440 --scale "$scale" --log-shape la-ndjson >/dev/null
rows=$work/sim/logs/ApiManagementGatewayLogs.ndjson
per=$(wc -l <"$rows")
args=()
for i in $(seq 0 $((n - 1))); do
    if ((i == 0)); then name=contoso-apim; else name=$(printf 'fleet-apim-%02d' "$i"); fi
    args+=(--rows "$rows@/subscriptions/$sub/resourceGroups/rg-apim-prod/providers/Microsoft.ApiManagement/service/$name")
done
echo "loading $n x $per rows into the KQL engine ..." >&2
"$py" fixtures/kql/serve_kql.py "${args[@]}" --token bench >"$work/kql" 2>"$work/kql.err" &
pids+=($!)
"$bin" simulate --serve-azure 0 --instances "$n" --minutes 1440 --scale "$scale" --logs-workspace "$guid" >"$work/env" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 1 1200); do grep -q listening "$work/kql" 2>/dev/null && grep -q AZURE_CLIENT_SECRET "$work/env" 2>/dev/null && break; sleep 0.5; done
url=$(sed -n 's/^listening on //p' "$work/kql")
[[ -n $url ]] || { echo "the KQL stand-in did not start:" >&2; cat "$work/kql.err" >&2; exit 1; }
set -a; . <(grep '^export ' "$work/env" | sed 's/^export //'); set +a
export APIMEDIC_LOGS_URL=$url APIMEDIC_LOGS_TOKEN=bench XDG_STATE_HOME=$work/state

line=$(python3 benches/peak_mem.py "$bin" diagnose --subscription "$sub" --since "$since" --until "$until" \
    --format json --timings --concurrency 8 --budget 30m 2>"$work/err")
read -r wall maxrss anon filemem rc cpu <<<"$line"
((rc <= 1)) || { echo "diagnose failed (exit $rc):" >&2; tail -20 "$work/err" >&2; exit 1; }
found=$(grep -c 'gateway logs from Log Analytics workspace' "$work/err" || true)
python3 - "$work/err" <<PY
import re, sys
q = r = b = e = c = 0
for l in open(sys.argv[1]):
    m = re.match(r"pushdown: (\d+) chunks, (\d+) queries, (\d+) rows aggregated by the engine, (\d+) rows and (\d+) bytes received", l)
    if m:
        c += int(m[1]); q += int(m[2]); e += int(m[3]); r += int(m[4]); b += int(m[5])
print(f"# fleet of $n instances x 24 h ($per rows each, {e} rows aggregated by the engine), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)")
print(f"wall ${wall} s (apimedic CPU ${cpu} s), max RSS ${maxrss} MB (anonymous ${anon} MB, file-backed ${filemem} MB), exit ${rc}")
print(f"workspaces found from diagnostic settings: $found of $n; {c} chunks, {q} queries, {r} rows and {b} bytes received ({b / max(e, 1):.1f} bytes per engine row)")
PY
