#!/usr/bin/env bash
# Gateway-log benchmark: 10 million generated NDJSON rows (~4.4 GB), each
# measurement RUNS times with a warm page cache:
# The first three run in rounds (reader, diagnose, DuckDB; RUNS rounds) and
# each round's diagnose/DuckDB wall ratio is printed, with their median and
# worst.
#   reader    - collect::gateway_logs::parse_map alone (an #[ignore]d test
#               that only reads, folds and prints its time)
#   diagnose  - the whole `apimedic diagnose FILE --format json` (default
#               settings: the file memory-mapped)
#   duckdb    - ../shared/tools/duckdb_agg.py (DuckDB from PyPI, in a venv):
#               the columns diagnose uses, aggregated per operation and minute
#   ops N     - `diagnose` on N distinct operations with two rows each
#               (benches/gen_ops.py), the operation-count sweep: time must
#               grow linearly with N
#   pushdown  - the same 10M rows held by a KQL engine (duckdb-kql behind
#               fixtures/kql/serve_kql.py, the Log Analytics wire shape on
#               loopback): apimedic's side of `diagnose --logs la:…` (its wall
#               time and memory, rows and bytes received). PUSHDOWN=0 skips it.
# Wall time and memory come from benches/peak_mem.py: maxrss (what
# /usr/bin/time %M reports) and, apart, the peaks of anonymous (RssAnon)
# and file-backed (RssFile: the mapped log) resident memory.
#
#   benches/logs.sh                 # ROWS=10000000 RUNS=3 by default
#   ROWS=1000000 RUNS=1 OPS="5000 10000" benches/logs.sh
#
# The data, the venvs and the timings live in $APIMEDIC_BENCH_DIR (default
# /work/cache), outside the repository; files are generated once. Heavy: run
# it niced on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${APIMEDIC_BENCH_DIR:-/work/cache}
rows=${ROWS:-10000000}
runs=${RUNS:-3}
ops_sweep=${OPS:-5000 10000 20000 40000}
gen=../shared/tools/gen_gateway_logs.py
duck=../shared/tools/duckdb_agg.py
file=$dir/logs-$rows-seed42.ndjson
mkdir -p "$dir"

if [[ ! -s $file ]]; then
    [[ -f $gen ]] || { echo "logs.sh: generator not found at $gen" >&2; exit 2; }
    echo "generating $rows rows into $file ..." >&2
    python3 "$gen" --rows "$rows" --seed 42 --out "$file.tmp" --truth "$file.truth.json"
    mv "$file.tmp" "$file"
fi

# BENCH_PYTHON: a python that already has duckdb and duckdb-kql (e.g. the
# venv .ci/run makes); otherwise venvs are made under $dir.
venv=$dir/venv-duckdb
duck_py=${BENCH_PYTHON:-$venv/bin/python}
if [[ -z ${BENCH_PYTHON:-} ]] && { [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; }; then
    echo "installing duckdb into $venv ..." >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q duckdb
fi

# --all-targets: the same feature set as the test builds (dev-dependencies
# unified), so the dependencies already built for the tests are reused.
cargo build --release --all-targets --quiet
bin=${CARGO_TARGET_DIR:-target}/release/apimedic
# The test binary holding the reader-only timing.
testbin=$(cargo test --release --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])')

echo "warming the page cache ..." >&2
cat "$file" >/dev/null
bytes=$(stat -c %s "$file")

out=$dir/logs-bench-$(date -u +%Y%m%dT%H%M%SZ).txt
WALL=0
measure_once() { # name, run, rows, command... (exit 0 or 1 is success:
                 # diagnose exits 1 when it has findings, and this data has
                 # incidents); sets WALL
    local name=$1 run=$2 n=$3; shift 3
    local line wall maxrss anon filemem rc _cpu
    line=$(python3 benches/peak_mem.py "$@" 2>"$dir/.bench.err")
    read -r wall maxrss anon filemem rc _cpu <<<"$line"
    if ((rc > 1)); then
        echo "logs.sh: $name failed (exit $rc):" >&2; cat "$dir/.bench.err" >&2; exit 1
    fi
    awk -v n="$name" -v r="$run" -v w="$wall" -v m="$maxrss" -v a="$anon" -v f="$filemem" -v rows="$n" \
        'BEGIN { printf "%-12s %3d %8.2f %9d %8d %8d %10.2f\n", n, r, w, m, a, f, rows/w/1e6 }'
    WALL=$wall
}
measure() { # name, rows, command...: RUNS runs in a row
    local name=$1 n=$2; shift 2
    for run in $(seq "$runs"); do measure_once "$name" "$run" "$n" "$@"; done
}

{
    echo "# $rows rows, $((bytes / 1000000)) MB, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r), $(date -u +%FT%TZ)"
    printf '%-12s %3s %8s %9s %8s %8s %10s\n' tool run wall_s maxrss_mb anon_mb file_mb Mrows_s
    # Rounds of reader, diagnose, DuckDB back to back, so each round's
    # ratio compares runs made under the same load (a shared machine's
    # speed drifts over minutes; one tool's runs all together, then the
    # other's, compared different moments).
    ratios=()
    for run in $(seq "$runs"); do
        APIMEDIC_BENCH_FILE=$file measure_once reader "$run" "$rows" "$testbin" --ignored --exact \
            collect::gateway_logs::tests::bench_read_ndjson
        measure_once diagnose "$run" "$rows" "$bin" diagnose "$file" --format json
        d=$WALL
        measure_once duckdb "$run" "$rows" "$duck_py" "$duck" "$file"
        ratios+=("$(awk -v d="$d" -v k="$WALL" 'BEGIN { printf "%.3f", d/k }')")
    done
    printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END {
        printf "# diagnose / DuckDB wall, round by round (sorted): "
        for (i = 1; i <= NR; i++) printf "%s%s", r[i], (i < NR ? " " : "\n")
        printf "# median %.3f, worst %.3f\n", (NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2), r[NR] }'
    for n in $ops_sweep; do
        f=$dir/ops-$n.ndjson
        [[ -s $f ]] || python3 benches/gen_ops.py "$n" 2 "$f"
        measure "ops $n" $((2 * n)) "$bin" diagnose "$f" --format json
    done
} | tee "$out"

if [[ ${PUSHDOWN:-1} != 0 ]]; then
    kvenv=$dir/venv-kql
    kql_py=${BENCH_PYTHON:-$kvenv/bin/python}
    if [[ -z ${BENCH_PYTHON:-} ]] && { [[ ! -x $kvenv/bin/python ]] || ! "$kvenv/bin/python" -c 'import duckdb_kql' 2>/dev/null; }; then
        echo "installing duckdb-kql into $kvenv ..." >&2
        python3 -m venv "$kvenv"
        "$kvenv/bin/pip" install -q duckdb-kql==1.1.2 "duckdb>=2.0.0"
    fi
    rid=/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/bench
    echo "loading $rows rows into the KQL engine (takes a while) ..." >&2
    fifo=$dir/.kql-url
    rm -f "$fifo"
    "$kql_py" fixtures/kql/serve_kql.py --rows "$file" --resource-id "$rid" --token bench >"$fifo" 2>"$dir/.kql.err" &
    kql_pid=$!
    trap 'kill "$kql_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 1 1200); do grep -q listening "$fifo" 2>/dev/null && break; sleep 1; done
    url=$(sed -n 's/^listening on //p' "$fifo")
    [[ -n $url ]] || { echo "logs.sh: the KQL stand-in did not start:" >&2; cat "$dir/.kql.err" >&2; exit 1; }
    first=$(head -c 40 "$file" | sed -n 's/.*"TimeGenerated":"\([0-9T:-]\{16\}\).*/\1/p')
    since="${first}:00Z"
    until=$(date -u -d "$since + 1 day" +%FT%TZ)
    {
        echo "# pushdown: the same $rows rows held by duckdb-kql (Log Analytics wire shape, loopback, gzip); apimedic's side"
        printf '%-12s %3s %8s %6s %9s %8s %8s %8s %12s %10s %8s\n' tool run wall_s cpu_s maxrss_mb anon_mb file_mb queries rows_recv bytes_recv pct_raw
        for run in $(seq "$runs"); do
            line=$(APIMEDIC_LOGS_URL=$url APIMEDIC_LOGS_TOKEN=bench python3 benches/peak_mem.py \
                "$bin" diagnose --logs la:00000000-0000-0000-0000-000000000001 --logs-resource "$rid" \
                --since "$since" --until "$until" --format json --timings 2>"$dir/.bench.err")
            read -r wall maxrss anon filemem rc cpu <<<"$line"
            ((rc <= 1)) || { echo "logs.sh: pushdown failed (exit $rc):" >&2; cat "$dir/.bench.err" >&2; exit 1; }
            stats=$(grep '^pushdown:' "$dir/.bench.err")
            q=$(sed -n 's/.* \([0-9]*\) queries.*/\1/p' <<<"$stats")
            rr=$(sed -n 's/.*engine, \([0-9]*\) rows and.*/\1/p' <<<"$stats")
            br=$(sed -n 's/.* rows and \([0-9]*\) bytes received.*/\1/p' <<<"$stats")
            awk -v r="$run" -v w="$wall" -v c="$cpu" -v m="$maxrss" -v a="$anon" -v f="$filemem" -v q="$q" -v rr="$rr" -v br="$br" -v raw="$bytes" \
                'BEGIN { printf "%-12s %3d %8.2f %6.2f %9d %8d %8d %8d %12d %10d %7.3f%%\n", "pushdown", r, w, c, m, a, f, q, rr, br, 100*br/raw }'
        done
    } | tee -a "$out"
fi
echo "saved to $out" >&2
