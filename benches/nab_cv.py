#!/usr/bin/env python3
"""Cross-validated NAB score of `apimedic detect`: how its settings would do
on series they were not chosen on.

For every candidate setting in a grid (the defaults first), the detector
scores every series of the NAB development subset once (`apimedic detect
DIR --out OUT --set NAME=VALUE ...`), and the shared scorer
(`../shared/tools/nab_score.py`, imported, fixed threshold 0.5: the
detector's own alarms) gives each series' raw NAB score. Then, fold by fold
(leave one series out by default, or k folds), the setting with the best
score on the *other* series is chosen and the held-out series is scored
with it. The held-out raw scores add up to the cross-validated NAB score
(NAB's normalisation is a sum over series: null = every window missed,
perfect = every window caught on its first row). No series is ever scored
with a setting chosen on it.

It also prints, for comparison, the in-sample score of the defaults and of
the best setting chosen on all series (optimistic: chosen and scored on the
same data).

    benches/nab_cv.py [--nab DIR] [--bin PATH] [--grid small|defaults|FILE.json]
                      [--folds loso|K] [--json OUT.json] [--keep DIR]

A grid file is a JSON list of objects {"name": ..., "set": {"point_z": 5}}.
Standard library only. Run from anywhere; paths default relative to the repo.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(REPO, "..", "shared")

# One setting changed at a time around the defaults (what README's
# sensitivity line measured by hand), plus the adaptive variants.
SMALL_GRID = [
    {"name": "defaults", "set": {}},
    {"name": "point_z=5", "set": {"point_z": 5, "shift_z": 5}},
    {"name": "point_z=7", "set": {"point_z": 7, "shift_z": 7}},
    {"name": "point_z=8", "set": {"point_z": 8, "shift_z": 8}},
    {"name": "holdout=48", "set": {"holdout_rows": 48}},
    {"name": "holdout=96", "set": {"holdout_rows": 96}},
    {"name": "mute=36", "set": {"mute_rows": 36}},
    {"name": "mute=144", "set": {"mute_rows": 144}},
    {"name": "mute=288", "set": {"mute_rows": 288}},
    {"name": "range_margin=0.05", "set": {"range_margin": 0.05}},
    {"name": "range_margin=0.2", "set": {"range_margin": 0.2}},
    {"name": "rel_floor=0.03", "set": {"rel_floor": 0.03}},
    {"name": "rel_floor=0.1", "set": {"rel_floor": 0.1}},
    {"name": "no seasonality", "set": {"seasonality": "false"}},
    {"name": "season_ratio=0.5", "set": {"season_ratio": 0.5}},
    {"name": "smooth=6", "set": {"smooth_rows": 6}},
    {"name": "smooth=24", "set": {"smooth_rows": 24}},
    {"name": "baseline=144", "set": {"baseline_rows": 144}},
    {"name": "baseline=576", "set": {"baseline_rows": 576}},
    {"name": "history=7d", "set": {"history_days": 7}},
    {"name": "history=28d", "set": {"history_days": 28}},
    {"name": "persist=2", "set": {"persist_rows": 2}},
]


def load_scorer():
    path = os.path.join(SHARED, "tools", "nab_score.py")
    if not os.path.isfile(path):
        sys.exit("nab_cv: scorer not found at %s" % path)
    spec = importlib.util.spec_from_file_location("nab_score", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_detector(binary, data, out, settings):
    cmd = [binary, "detect", data, "--out", out]
    for k, v in settings.items():
        cmd += ["--set", "%s=%s" % (k, str(v).lower() if isinstance(v, bool) else v)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("nab_cv: %s failed:\n%s" % (" ".join(cmd), r.stderr))


def per_series(scorer, labels, data, results):
    """{series: {profile: {raw, live, windows, detected, false_alarm_events}}}"""
    res = scorer.evaluate(labels, data, results, profiles=list(scorer.PROFILES),
                          threshold=0.5, strict=True, warn=lambda m: None)
    with open(labels) as f:
        n_windows = {k: len(v) for k, v in json.load(f).items()}
    out = {}
    for name, entry in res["per_series"].items():
        out[name] = {}
        for p in scorer.PROFILES:
            e = entry[p]
            out[name][p] = {"raw": e["raw"], "live": e["windows"],
                            "windows": n_windows[name], "detected": e["detected"],
                            "false_alarm_events": e["false_alarm_events"]}
    return out


def score(scorer, picks, profile):
    """Normalised NAB score and window counts of (series -> per-series
    entry) picks, for one profile."""
    prof = scorer.PROFILES[profile]
    raw = sum(e[profile]["raw"] for e in picks.values())
    null = -prof["fn"] * sum(e[profile]["live"] for e in picks.values())
    perfect = prof["tp"] * sum(e[profile]["windows"] for e in picks.values())
    det = sum(e[profile]["detected"] for e in picks.values())
    live = sum(e[profile]["live"] for e in picks.values())
    fa = sum(e[profile]["false_alarm_events"] for e in picks.values())
    s = scorer.normalise(raw, null, perfect)
    return {"score": s, "detected": det, "windows": live, "false_alarm_events": fa,
            "precision": det / (det + fa) if det + fa else None,
            "recall": det / live if live else None}


def folds_of(series, spec):
    if spec == "loso":
        return [[s] for s in series]
    k = int(spec)
    if k < 2 or k > len(series):
        sys.exit("nab_cv: --folds must be loso or 2..%d" % len(series))
    # Deterministic, spread over the folders (series are sorted by folder).
    return [[s for i, s in enumerate(series) if i % k == f] for f in range(k)]


def fmt(x, nd=1):
    return "-" if x is None else ("%.*f" % (nd, x))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab", default=os.path.join(SHARED, "corpus", "nab"))
    ap.add_argument("--bin", default=None, help="apimedic binary (default: build --release)")
    ap.add_argument("--grid", default="small")
    ap.add_argument("--folds", default="loso")
    ap.add_argument("--json", default=None, help="write the whole result here")
    ap.add_argument("--keep", default=None, help="keep per-setting outputs in this folder")
    a = ap.parse_args(argv)

    labels = os.path.join(a.nab, "labels.json")
    data = os.path.join(a.nab, "data")
    if not (os.path.isfile(labels) and os.path.isdir(data)):
        sys.exit("nab_cv: no labels.json and data/ in %s" % a.nab)
    scorer = load_scorer()
    if a.grid == "small":
        grid = SMALL_GRID
    elif a.grid == "defaults":
        grid = SMALL_GRID[:1]
    else:
        with open(a.grid) as f:
            grid = json.load(f)
    binary = a.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        binary = os.path.join(target, "release", "apimedic")

    work = a.keep or tempfile.mkdtemp(prefix="nab_cv_")
    table = []  # per setting: {series: entry}
    t0 = time.time()
    for i, g in enumerate(grid):
        out = os.path.join(work, "s%02d" % i)
        if os.path.isdir(out):
            subprocess.run(["rm", "-rf", out], check=True)
        run_detector(binary, data, out, g["set"])
        table.append(per_series(scorer, labels, data, out))
        sys.stderr.write("  %-22s in-sample %s\n" % (
            g["name"], fmt(score(scorer, table[-1], "standard")["score"])))
    series = sorted(table[0])

    def best_on(train):
        best, best_s = 0, None
        for i, t in enumerate(table):
            s = score(scorer, {n: t[n] for n in train}, "standard")["score"]
            if best_s is None or s > best_s + 1e-9:
                best, best_s = i, s
        return best

    picks, chosen = {}, {}
    for fold in folds_of(series, a.folds):
        train = [s for s in series if s not in fold]
        i = best_on(train)
        for s in fold:
            picks[s] = table[i][s]
            chosen[s] = grid[i]["name"]
    all_best = best_on(series)

    result = {"folds": a.folds, "settings": [g["name"] for g in grid],
              "seconds": round(time.time() - t0, 1), "profiles": {}, "chosen": chosen,
              "in_sample_best_setting": grid[all_best]["name"]}
    print("NAB development subset: %d series; %d candidate settings; folds: %s"
          % (len(series), len(grid), a.folds))
    print()
    print("%-40s %8s %8s %8s   %s" % ("", "standard", "low FP", "low FN",
                                      "windows, false-alarm events (standard)"))
    rows = [("defaults, in-sample", table[0]),
            ("best of grid, in-sample (optimistic)", table[all_best]),
            ("cross-validated (held-out)", picks)]
    for label, picked in rows:
        cells = {p: score(scorer, picked, p) for p in scorer.PROFILES}
        result["profiles"][label] = cells
        st = cells["standard"]
        print("%-40s %8s %8s %8s   %d/%d, %d" % (
            label, fmt(st["score"]), fmt(cells["reward_low_FP_rate"]["score"]),
            fmt(cells["reward_low_FN_rate"]["score"]), st["detected"], st["windows"],
            st["false_alarm_events"]))
    print()
    print("best setting on all series: %s" % grid[all_best]["name"])
    counts = {}
    for v in chosen.values():
        counts[v] = counts.get(v, 0) + 1
    print("settings chosen across folds: %s" % ", ".join(
        "%s x%d" % (k, v) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
    if not a.keep:
        subprocess.run(["rm", "-rf", work], check=True)


if __name__ == "__main__":
    main()
