#!/usr/bin/env bash
# Gateway-log reading benchmark: 10 million generated NDJSON rows (~4.4 GB)
# read and aggregated per (API, operation, minute), three ways, each RUNS
# times with a warm page cache:
#   reader    - collect::gateway_logs::parse_map alone (an #[ignore]d test
#               that only reads, folds and prints its time)
#   diagnose  - the whole `apimedic diagnose FILE --format json`
#   duckdb    - DuckDB (PyPI, in a venv) doing the same aggregation:
#               count, 5xx count, exact p50/p95/p99 of TotalTime per
#               ApiId, OperationId, minute
# Wall time and max RSS come from /usr/bin/time.
#
#   benches/logs.sh            # ROWS=10000000 RUNS=3 by default
#   ROWS=1000000 RUNS=1 benches/logs.sh
#
# The data, the venv and the timings live in $APIMEDIC_BENCH_DIR (default
# /work/cache), outside the repository; the file is generated once.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${APIMEDIC_BENCH_DIR:-/work/cache}
rows=${ROWS:-10000000}
runs=${RUNS:-3}
gen=../shared/tools/gen_gateway_logs.py
file=$dir/logs-$rows-seed42.ndjson
mkdir -p "$dir"

if [[ ! -s $file ]]; then
    [[ -f $gen ]] || { echo "logs.sh: generator not found at $gen" >&2; exit 2; }
    echo "generating $rows rows into $file ..." >&2
    python3 "$gen" --rows "$rows" --seed 42 --out "$file.tmp" --truth "$file.truth.json"
    mv "$file.tmp" "$file"
fi

if [[ ! -x /usr/bin/time ]]; then
    echo "installing GNU time ..." >&2
    apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

venv=$dir/venv-duckdb
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import duckdb' 2>/dev/null; then
    echo "installing duckdb into $venv ..." >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q duckdb
fi

cargo build --release --quiet
bin=target/release/apimedic
# The test binary holding the reader-only timing.
testbin=$(cargo test --release --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])')

duck=$dir/duckdb_aggregate.py
cat >"$duck" <<'PY'
import sys, duckdb
path = sys.argv[1]
con = duckdb.connect()
q = f"""
SELECT count(*) FROM (
  SELECT ApiId, OperationId, substr(TimeGenerated, 1, 16) AS minute,
         count(*) AS requests,
         count(*) FILTER (WHERE ResponseCode >= 500) AS c5xx,
         quantile_disc(TotalTime, [0.5, 0.95, 0.99]) AS p
  FROM read_json('{path}', format = 'newline_delimited',
       columns = {{'TimeGenerated': 'VARCHAR', 'ApiId': 'VARCHAR', 'OperationId': 'VARCHAR',
                   'ResponseCode': 'INTEGER', 'TotalTime': 'INTEGER'}})
  GROUP BY ALL)
"""
print(con.execute(q).fetchone()[0], "groups", file=sys.stderr)
PY

echo "warming the page cache ..." >&2
cat "$file" >/dev/null
bytes=$(stat -c %s "$file")

out=$dir/logs-bench-$(date -u +%Y%m%dT%H%M%SZ).txt
measure() { # name, command... (exit 0 or 1 is success: diagnose exits 1
             # when it has findings, and this data has incidents)
    local name=$1; shift
    local t rc
    t=$(mktemp)
    for run in $(seq "$runs"); do
        rc=0
        /usr/bin/time -f '%e %M' -o "$t" "$@" >/dev/null 2>"$t.err" || rc=$?
        if ((rc > 1)); then
            echo "logs.sh: $name failed (exit $rc):" >&2; cat "$t.err" >&2; exit 1
        fi
        read -r wall rss < <(tail -n 1 "$t")
        awk -v n="$name" -v r="$run" -v w="$wall" -v m="$rss" -v rows="$rows" -v b="$bytes" \
            'BEGIN { printf "%-9s %3d %8.2f %9.0f %10.2f %8.2f\n", n, r, w, m/1024, rows/w/1e6, b/w/1e9 }'
    done
    rm -f "$t" "$t.err"
}

{
    echo "# $rows rows, $((bytes / 1000000)) MB, $(nproc) cores, $(date -u +%FT%TZ)"
    printf '%-9s %3s %8s %9s %10s %8s\n' tool run wall_s rss_mb Mrows_s GB_s
    APIMEDIC_BENCH_FILE=$file measure reader "$testbin" --ignored --exact \
        collect::gateway_logs::tests::bench_read_ndjson
    measure diagnose "$bin" diagnose "$file" --format json
    measure duckdb "$venv/bin/python" "$duck" "$file"
} | tee "$out"
echo "saved to $out" >&2
