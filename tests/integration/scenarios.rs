//! Scenario fixtures through the whole pipeline. Every folder in
//! `fixtures/scenarios/` holds a simulated instance in real export formats
//! and its `expected.json` (the simulator's ground truth): the folder is
//! collected and analysed as a user's export would be, and every expected
//! finding must be reported (kind, subject keys, window within tolerance);
//! `forbid_anomalies` folders must yield no symptom finding at all. A new
//! incident type is a new folder, not new code.
//!
//! The fixtures must also be exactly what the simulator generates from the
//! parameters in their `expected.json`, so they cannot drift silently:
//! regenerate them with `apimedic simulate --fixtures fixtures/scenarios`.

use apimedic::model::{Finding, Timestamp};
use apimedic::simulate::{self, Expected, ExpectedFinding, Scenario};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios")
}

/// Scenario folders (those with an `expected.json`), sorted.
fn scenario_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root())
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root().display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no scenario folders in {}",
        root().display()
    );
    dirs
}

fn expected(dir: &Path) -> Expected {
    let path = dir.join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn minutes_apart(a: Timestamp, b: Timestamp) -> f64 {
    (a.millis() - b.millis()).abs() as f64 / 60_000.0
}

/// Why `f` does not satisfy `want`, or `None` when it does.
fn mismatch(f: &Finding, want: &ExpectedFinding) -> Option<String> {
    if f.kind != want.kind {
        return Some("kind differs".into());
    }
    let pairs: BTreeMap<&str, String> = f.subject.pairs().into_iter().collect();
    for (k, v) in &want.subject {
        match pairs.get(k.as_str()) {
            Some(got) if got.eq_ignore_ascii_case(v) => {}
            Some(got) => return Some(format!("subject {k}={got}, want {v}")),
            None => return Some(format!("subject has no {k}, want {v}")),
        }
    }
    if let Some(w) = want.window {
        let tol = f64::from(want.tolerance_minutes);
        let Some(got) = f.window else {
            return Some("no window".into());
        };
        let (ds, de) = (
            minutes_apart(got.start, w.start),
            minutes_apart(got.end, w.end),
        );
        if ds > tol || de > tol {
            return Some(format!(
                "window {}..{} is {ds:.0}/{de:.0} min from {}..{} (tolerance {tol})",
                got.start, got.end, w.start, w.end
            ));
        }
    }
    None
}

fn describe(f: &Finding) -> String {
    let w = f
        .window
        .map(|w| format!(" {}..{}", w.start, w.end))
        .unwrap_or_default();
    format!("  - {} [{}]{w}: {}", f.kind, f.subject, f.summary)
}

fn want_text(e: &ExpectedFinding) -> String {
    let subject: Vec<String> = e.subject.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let w = e
        .window
        .map(|w| format!(" {}..{} ±{} min", w.start, w.end, e.tolerance_minutes))
        .unwrap_or_default();
    format!("{} [{}]{w}", e.kind, subject.join(" "))
}

/// Every problem with one scenario folder's diagnosis.
fn check(dir: &Path) -> Vec<String> {
    let exp = expected(dir);
    match apimedic::collect::collect(&[dir.to_path_buf()]) {
        Ok(snapshot) => check_snapshot(&exp, &snapshot),
        Err(e) => vec![format!("collect failed: {e:#}")],
    }
}

/// Every way the analysis of `snapshot` falls short of `exp`.
fn check_snapshot(exp: &Expected, snapshot: &apimedic::model::Snapshot) -> Vec<String> {
    let findings = apimedic::analyze::analyze(snapshot, &Default::default());
    let mut problems = Vec::new();
    for want in &exp.findings {
        if findings.iter().any(|f| mismatch(f, want).is_none()) {
            continue;
        }
        let near: Vec<String> = findings
            .iter()
            .filter(|f| f.kind == want.kind)
            .filter_map(|f| mismatch(f, want).map(|why| format!("{} ({why})", describe(f))))
            .collect();
        problems.push(format!(
            "missing {}\n    because: {}\n    same kind found:\n{}",
            want_text(want),
            want.why,
            if near.is_empty() {
                "  (none)".to_string()
            } else {
                near.join("\n")
            }
        ));
    }
    if !exp.stories.is_empty() {
        let stories = apimedic::analyze::stories(snapshot, &findings);
        for want in &exp.stories {
            let told = stories.iter().any(|s| {
                let holds = s.findings.iter().any(|id| {
                    findings.iter().any(|f| {
                        &f.id == id && {
                            let pairs: BTreeMap<&str, String> =
                                f.subject.pairs().into_iter().collect();
                            want.subject.iter().all(|(k, v)| {
                                pairs
                                    .get(k.as_str())
                                    .is_some_and(|g| g.eq_ignore_ascii_case(v))
                            })
                        }
                    })
                });
                let names = want.suspect.as_deref().is_none_or(|sus| {
                    s.suspects.iter().any(|x| {
                        x.resource_id.as_deref().is_some_and(|r| {
                            r.to_ascii_lowercase().contains(&sus.to_ascii_lowercase())
                        })
                    })
                });
                holds && names
            });
            if !told {
                let have: Vec<String> = stories
                    .iter()
                    .map(|s| {
                        let sus: Vec<&str> = s
                            .suspects
                            .iter()
                            .filter_map(|x| x.resource_id.as_deref())
                            .collect();
                        format!("  - {} (suspects: {})", s.title, sus.join(", "))
                    })
                    .collect();
                problems.push(format!(
                    "missing story on {:?} with suspect {:?}\n    because: {}\n    stories:\n{}",
                    want.subject,
                    want.suspect,
                    want.why,
                    have.join("\n")
                ));
            }
        }
    }
    if exp.forbid_anomalies {
        for f in findings.iter().filter(|f| f.kind.is_anomaly()) {
            problems.push(format!(
                "anomaly reported on a healthy instance:\n{}",
                describe(f)
            ));
        }
    }
    if !problems.is_empty() {
        let all: Vec<String> = findings.iter().map(describe).collect();
        problems.push(format!(
            "all findings ({}):\n{}\nloaded: {:?}, {} rejected",
            findings.len(),
            all.join("\n"),
            snapshot.loaded.counts,
            snapshot.loaded.rejected
        ));
    }
    problems
}

#[test]
fn every_scenario_is_diagnosed_as_expected() {
    let mut report = Vec::new();
    for dir in scenario_dirs() {
        let problems = check(&dir);
        if !problems.is_empty() {
            report.push(format!("== {}\n{}", dir.display(), problems.join("\n")));
        }
    }
    assert!(report.is_empty(), "\n{}", report.join("\n\n"));
}

/// The fixtures pin one seed per scenario; an analysis tuned to them could
/// still miss the same incident on other days and traffic. This sweep runs
/// five unseen seeds per scenario (fixture scale and span, generated in
/// memory). Slower, so opt in: `cargo test --release --test integration --
/// --ignored unseen_seeds`.
#[test]
#[ignore = "robustness sweep over unseen seeds; run with --ignored"]
fn unseen_seeds_are_diagnosed_too() {
    let mut report = Vec::new();
    for s in Scenario::ALL {
        let (_, scale, minutes) = s.fixture_params();
        for seed in 101..=105 {
            let (files, exp) = simulate::generate_with_truth(s, seed, scale, minutes);
            let snapshot = apimedic::collect::collect_files(&files);
            let problems = check_snapshot(&exp, &snapshot);
            if !problems.is_empty() {
                report.push(format!("== {s} seed {seed}\n{}", problems.join("\n")));
            }
        }
    }
    assert!(report.is_empty(), "\n{}", report.join("\n\n"));
}

#[test]
fn every_scenario_has_a_fixture() {
    let names: Vec<String> = scenario_dirs()
        .iter()
        .map(|d| expected(d).scenario)
        .collect();
    for s in Scenario::ALL {
        assert!(
            names.iter().any(|n| n == s.name()),
            "no fixture for {s}: run `apimedic simulate --fixtures fixtures/scenarios`"
        );
    }
}

/// Every file under `dir`, relative, with `/` separators.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(rel.join("/"), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Gzip members are compared by content: the compressor's output may
/// change between flate2 versions without the data changing.
fn content(path: &str, bytes: &[u8]) -> Vec<u8> {
    if !path.ends_with(".gz") {
        return bytes.to_vec();
    }
    let mut out = Vec::new();
    match flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out) {
        Ok(_) => out,
        Err(_) => bytes.to_vec(),
    }
}

#[test]
fn fixtures_equal_a_fresh_generation() {
    let mut drift = Vec::new();
    for dir in scenario_dirs() {
        let exp = expected(&dir);
        let Some(scenario) = exp.scenario() else {
            drift.push(format!(
                "{}: unknown scenario {:?}",
                dir.display(),
                exp.scenario
            ));
            continue;
        };
        let fresh: BTreeMap<String, Vec<u8>> =
            simulate::generate(scenario, exp.seed, exp.scale, exp.minutes)
                .into_iter()
                .collect();
        let committed = files_under(&dir);
        for (path, bytes) in &fresh {
            match committed.get(path) {
                None => drift.push(format!("{}: missing {path}", dir.display())),
                Some(old) if content(path, old) != content(path, bytes) => {
                    drift.push(format!("{}: {path} differs", dir.display()))
                }
                Some(_) => {}
            }
        }
        for path in committed.keys().filter(|p| !fresh.contains_key(*p)) {
            drift.push(format!(
                "{}: {path} is not generated any more",
                dir.display()
            ));
        }
    }
    assert!(
        drift.is_empty(),
        "fixtures differ from the simulator; if the change is intended, regenerate with \
         `apimedic simulate --fixtures fixtures/scenarios` and review the diff:\n{}",
        drift.join("\n")
    );
}

#[test]
fn simulator_is_deterministic() {
    for s in [Scenario::BackendOom, Scenario::Healthy] {
        let (seed, scale, minutes) = s.fixture_params();
        let a = simulate::generate(s, seed, scale, minutes);
        let b = simulate::generate(s, seed, scale, minutes);
        assert!(a == b, "{s}: two generations with seed {seed} differ");
        let other = simulate::generate(s, seed + 1, scale, minutes);
        assert!(
            a != other,
            "{s}: seed {seed} and {} give the same files",
            seed + 1
        );
    }
}

#[test]
fn fixtures_stay_small() {
    for dir in scenario_dirs() {
        let total: usize = files_under(&dir).values().map(Vec::len).sum();
        assert!(
            total < 1_800_000,
            "{} holds {total} bytes: keep scenario fixtures under 1.8 MB (lower --scale or --minutes)",
            dir.display()
        );
    }
}
