#!/usr/bin/env bash
# Full NAB run of `apimedic detect` with its default settings: time the
# detector on every series of the shared NAB subset, then score the output
# with the shared NAB scorer, at the fixed threshold 0.5 and NAB-style
# (threshold swept on this corpus: optimistic, see ../shared/tools/README.md).
#
#   benches/nab.sh [NAB_DIR] [--per-series]
#
# NAB_DIR defaults to ../shared/corpus/nab (labels.json + data/).
set -euo pipefail
cd "$(dirname "$0")/.."
nab=../shared/corpus/nab
per_series=()
for arg in "$@"; do
    case "$arg" in
        --per-series) per_series=(--per-series) ;;
        *) nab=$arg ;;
    esac
done
scorer=../shared/tools/nab_score.py
[[ -f $nab/labels.json && -d $nab/data ]] || { echo "nab.sh: no labels.json and data/ in $nab" >&2; exit 2; }
[[ -f $scorer ]] || { echo "nab.sh: scorer not found at $scorer" >&2; exit 2; }

cargo build --release --quiet
bin=target/release/apimedic
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

files=$(find "$nab/data" -name '*.csv' | wc -l)
rows=$(find "$nab/data" -name '*.csv' -exec cat {} + | wc -l)
best=
for run in 1 2 3 4 5; do
    rm -rf "$out/results"
    start=$(date +%s%N)
    "$bin" detect "$nab/data" --out "$out/results"
    end=$(date +%s%N)
    ms=$(( (end - start) / 1000000 ))
    if [[ -z $best || $ms -lt $best ]]; then best=$ms; fi
done
echo "detect: $files series, $rows lines, best of 5 runs: ${best} ms (whole process, $(nproc) cores)"
echo
echo "== fixed threshold 0.5 (the detector's own alarms)"
python3 "$scorer" "$nab/labels.json" "$nab/data" "$out/results" --strict --threshold 0.5 "${per_series[@]}"
echo
echo "== threshold swept on this corpus (NAB procedure; optimistic)"
python3 "$scorer" "$nab/labels.json" "$nab/data" "$out/results" --strict
