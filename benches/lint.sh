#!/usr/bin/env bash
# Lint benchmark: `apimedic lint` over the 154 real policy files of the
# corpus (../shared/corpus/apim/policies), all three output formats, RUNS
# times each with a warm page cache. Uses hyperfine when installed, else a
# loop timed with `date +%s%N` (mean, min, max in milliseconds).
#
#   benches/lint.sh              # RUNS=20 by default
#   RUNS=50 benches/lint.sh
#
# Exit status 1 from lint (findings at error level) is expected here.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-20}
corpus=../shared/corpus/apim/policies
bin=target/release/apimedic
[[ -d $corpus ]] || { echo "lint.sh: corpus not found at $corpus" >&2; exit 2; }
[[ -x $bin ]] || cargo build --release --quiet
# A private copy: a parallel `cargo build` may replace the binary mid-run.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$bin" "$tmp/apimedic"
bin=$tmp/apimedic
files=$(find "$corpus" -type f | wc -l)
echo "apimedic lint over $files policy files, $runs runs per format"

if command -v hyperfine >/dev/null; then
    hyperfine --warmup 3 --runs "$runs" -i -N \
        "$bin lint $corpus" \
        "$bin lint --format json $corpus" \
        "$bin lint --format sarif $corpus"
    exit 0
fi

for format in text json sarif; do
    run() { "$bin" lint --format "$format" "$corpus" >/dev/null || [[ $? -eq 1 ]]; }
    run # warm-up
    total=0 min= max=0
    for _ in $(seq "$runs"); do
        start=$(date +%s%N)
        run
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        total=$((total + ms))
        (( ms > max )) && max=$ms
        [[ -z $min || ms -lt min ]] && min=$ms
    done
    echo "$format: mean $((total / runs)) ms, min $min ms, max $max ms"
done
