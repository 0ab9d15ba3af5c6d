#!/usr/bin/env bash
# The offline answerer's eval set: in-sample pass rate (tests/eval/cases.yaml,
# every case must pass) and held-out pass rate per paraphrase family
# (tests/eval/heldout.yaml, report only). EVAL_VERBOSE=1 prints failing
# held-out answers.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet --test integration eval::every_eval_case_passes_offline -- --nocapture 2>&1 | grep -E '^eval|FAILED|panicked' || true
cargo test --release --quiet --test integration eval::heldout_eval_report -- --ignored --nocapture 2>&1 | grep -E '^(eval|held-out)|panicked' || true
