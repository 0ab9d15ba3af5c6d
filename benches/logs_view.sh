#!/usr/bin/env bash
# Logs-view benchmark (measures and prints; asserts nothing): the TUI's logs
# thread over ROWS generated gateway rows (NDJSON), driven as the view
# drives it, by an #[ignore]d test (tui::logs::tests::bench_logs_view):
#   index      - every row found and indexed (40 bytes a row: sort keys and
#                where the row is, never the row), sorted by time
#   page       - 300 rows from the middle read back from the file
#   re-sort    - the index by total time, descending
#   operation  - a rescan for the rows of one operation
#   filter     - a `/` rescan: each row formatted and matched (FILTER)
# Each phase prints its wall time and its own peak resident memory (VmHWM,
# reset between phases); benches/peak_mem.py samples the whole run's.
#
#   benches/logs_view.sh                      # ROWS=2000000 FILTER=tent
#   ROWS=10000000 benches/logs_view.sh        # the file benches/logs.sh uses
#
# Data in $APIMEDIC_BENCH_DIR (default /work/cache), generated once with
# ../shared/tools/gen_gateway_logs.py. Heavy: run it niced on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${APIMEDIC_BENCH_DIR:-/work/cache}
rows=${ROWS:-2000000}
gen=${GEN:-../shared/tools/gen_gateway_logs.py}
file=$dir/logs-$rows-seed42.ndjson
mkdir -p "$dir"
if [[ ! -s $file ]]; then
    [[ -f $gen ]] || { echo "logs_view.sh: generator not found at $gen (set GEN)" >&2; exit 2; }
    echo "generating $rows rows into $file ..." >&2
    python3 "$gen" --rows "$rows" --seed 42 --out "$file.tmp" --truth "$file.truth.json"
    mv "$file.tmp" "$file"
fi
# APIMEDIC_TESTBIN: the crate's unit-test binary already built (else built here).
testbin=${APIMEDIC_TESTBIN:-}
[[ -n $testbin ]] || testbin=$(cargo test --release --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])')
echo "warming the page cache ..." >&2
cat "$file" >/dev/null
echo "# $rows rows, $(($(stat -c %s "$file") / 1000000)) MB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
line=$(APIMEDIC_BENCH_FILE=$file APIMEDIC_BENCH_FILTER=${FILTER:-tent} python3 benches/peak_mem.py \
    "$testbin" --ignored --exact --nocapture tui::logs::tests::bench_logs_view)
read -r wall _maxrss anon filemem rc cpu <<<"$line"
((rc == 0)) || { echo "logs_view.sh: the benchmark failed (exit $rc)" >&2; exit 1; }
# maxrss is left out: the phases reset the kernel's high-water mark it reads.
echo "whole run: wall $wall s, cpu $cpu s, peak anonymous RSS $anon MB, peak file-backed RSS $filemem MB (sampled every 5 ms)"
