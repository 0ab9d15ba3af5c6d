#!/usr/bin/env bash
# Daemon benchmark (measures and prints; asserts nothing):
#   1. ingest capacity: log lines per second the daemon folds on ONE core
#      (taskset -c 0, RAYON_NUM_THREADS=1), reading a generated NDJSON
#      gateway log through the same path as live following (tail -> parse
#      -> per-minute aggregates); target >= 200k lines/s.
#   2. memory: max RSS holding 24 hours of per-minute aggregates for 500
#      operations (retention 24h), plus one tick over the last hour (the
#      default lookback; 3 h shown too); target <= 100 MB.
#   3. the tick: time of one detector run over the retained aggregates.
# Data comes from `apimedic daemon live --backlog-only` (seeded, so runs
# compare) into $APIMEDIC_BENCH_DIR (default /work/cache), generated once.
#
#   benches/daemon.sh                 # LINES_MIN=4000 (x 1440 min) ingest rows
#   RUNS=3 benches/daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${APIMEDIC_BENCH_DIR:-/work/cache}/daemon-bench
runs=${RUNS:-1}
rate=${LINES_MIN:-4000}
mkdir -p "$dir"

cargo build --release --quiet
bin=$dir/apimedic
cp target/release/apimedic "$bin"   # a private copy: other builds cannot swap it mid-run

ingest=$dir/ingest
if [[ ! -s $ingest/logs/ApiManagementGatewayLogs.ndjson ]]; then
    echo "generating 24 h x $rate rows/min (6 operations) into $ingest ..." >&2
    rm -rf "$ingest"
    "$bin" daemon live --out "$ingest" --backlog-only --backlog 24h --rate "$rate" --ops 6 --seed 42 2>/dev/null
fi
mem=$dir/ops500
if [[ ! -s $mem/logs/ApiManagementGatewayLogs.ndjson ]]; then
    echo "generating 24 h x 500 operations (~3 rows per operation-minute) into $mem ..." >&2
    rm -rf "$mem"
    "$bin" daemon live --out "$mem" --backlog-only --backlog 24h --rate 1500 --ops 500 --seed 43 2>/dev/null
fi
cfg=$dir/bench.toml
printf '[engine]\nretention = "24h"\nlookback = "1h"\nexact = "10m"\n' >"$cfg"

lines=$(wc -l <"$ingest/logs/ApiManagementGatewayLogs.ndjson")
bytes=$(stat -c %s "$ingest/logs/ApiManagementGatewayLogs.ndjson")
echo "ingest file: $lines lines, $((bytes / 1000000)) MB"
for i in $(seq "$runs"); do
    # Warm the page cache so the disk is not what is measured.
    cat "$ingest/logs/ApiManagementGatewayLogs.ndjson" >/dev/null
    out=$(RAYON_NUM_THREADS=1 taskset -c 0 /usr/bin/time -f '%e %M' -o "$dir/time.txt" \
        "$bin" daemon "$ingest" --config "$cfg" --state-dir "$dir/state" --once)
    read -r wall rss <"$dir/time.txt"
    python3 - "$out" "$wall" "$rss" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print(f"ingest run: {s['rows']} rows in {s['read_seconds']:.2f} s = {s['rows_per_second']/1000:.0f}k lines/s on one core "
      f"(process {float(sys.argv[2]):.2f} s wall, max RSS {int(sys.argv[3])/1024:.0f} MB; tick {s['tick_seconds']*1000:.0f} ms, "
      f"{s['series_minutes']} series-minutes kept, {len(s['findings'])} findings)")
PY
done

# The defaults (retention 24h, lookback 1h), then a 3 h lookback for comparison.
for lookback in 1h 3h; do
  printf '[engine]\nretention = "24h"\nlookback = "%s"\nexact = "10m"\n' "$lookback" >"$dir/mem.toml"
  for i in $(seq "$runs"); do
    cat "$mem/logs/ApiManagementGatewayLogs.ndjson" >/dev/null
    out=$(RAYON_NUM_THREADS=1 taskset -c 0 /usr/bin/time -f '%e %M' -o "$dir/time.txt" \
        "$bin" daemon "$mem" --config "$dir/mem.toml" --state-dir "$dir/state" --once)
    read -r wall rss <"$dir/time.txt"
    python3 - "$out" "$wall" "$rss" "$lookback" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print(f"memory run (lookback {sys.argv[4]}): {s['series']} series, {s['series_minutes']} series-minutes (24 h x 500 operations) "
      f"from {s['rows']} rows: max RSS {int(sys.argv[3])/1024:.0f} MB; read {s['read_seconds']:.2f} s "
      f"({s['rows_per_second']/1000:.0f}k lines/s), one tick {s['tick_seconds']*1000:.0f} ms")
PY
  done
done
