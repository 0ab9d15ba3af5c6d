//! The built binary end to end: stdout, stderr and exit codes as a user sees
//! them, with colour off (NO_COLOR=1).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn apimedic<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the apimedic binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scenario(name: &str) -> PathBuf {
    root().join("fixtures/scenarios").join(name)
}

#[test]
fn no_arguments_runs_the_demo_and_says_so() {
    let out = apimedic(Vec::<String>::new());
    let text = stdout(&out);
    assert!(
        text.contains("built-in demo scenario"),
        "stdout:\n{text}\nstderr:\n{}",
        stderr(&out)
    );
    assert!(text.contains("Findings"), "{text}");
    // The demo's incident ended (a deployment fixed it) half an hour before
    // its data ends: reported as recovered, and only what holds now sets
    // the exit code (its configuration findings are medium).
    assert!(text.contains("the incident ended at 12:28"), "{text}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "an ended incident does not fail the run: {text}"
    );
    assert!(!text.contains('\x1b'), "NO_COLOR must turn colour off");
}

#[test]
fn diagnose_json_has_the_documented_schema() {
    let out = apimedic(["diagnose", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    for key in [
        "schema_version",
        "findings",
        "stories",
        "backend_map",
        "proposals",
        "loaded",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    let f = &v["findings"][0];
    for key in [
        "id",
        "kind",
        "severity",
        "subject",
        "summary",
        "evidence",
        "confidence",
    ] {
        assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
    }
}

#[test]
fn healthy_scenario_exits_zero() {
    let dir = scenario("healthy");
    let out = apimedic([Path::new("diagnose"), dir.as_path()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn fail_on_changes_the_exit_code() {
    let out = apimedic(["diagnose", "--fail-on", "info"]);
    assert_eq!(out.status.code(), Some(1));
    let bad = apimedic(["diagnose", "--fail-on", "severe"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("unknown severity `severe`"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn missing_path_is_an_error_naming_it() {
    let out = apimedic(["diagnose", "no/such/export"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no/such/export"), "{}", stderr(&out));
}

#[test]
fn markdown_is_a_ticket() {
    let out = apimedic(["diagnose", "--format", "markdown"]);
    let text = stdout(&out);
    assert!(text.starts_with("# apimedic diagnosis"), "{text}");
    assert!(
        text.contains("| severity | kind | subject | window | now | summary |"),
        "{text}"
    );
}

/// Bad records are reported with file and line; the good ones around them still count.
#[test]
fn bad_rows_are_located_and_neighbours_kept() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"TimeGenerated":"2024-05-14T09:12:03.512Z","ApiId":"orders-api","OperationId":"get-order","ResponseCode":200,"BackendResponseCode":200,"TotalTime":20,"BackendTime":15}"#;
    let mut text = String::new();
    text.push_str(good);
    text.push('\n');
    text.push_str(
        r#"{"TimeGenerated":"2024-05-14T09:12:04Z","ApiId":"orders-api","ResponseCode":"#,
    );
    text.push('\n');
    text.push_str(good);
    text.push('\n');
    std::fs::write(dir.path().join("gateway.ndjson"), text).unwrap();
    std::fs::write(dir.path().join("junk.bin"), [0u8, 159, 146, 150, 255, 0, 1]).unwrap();
    std::fs::write(dir.path().join("empty.json"), "").unwrap();
    let out = apimedic([Path::new("diagnose"), dir.path()]);
    let text = stdout(&out);
    assert!(
        text.contains("Loaded 2 gateway log rows"),
        "{text}\n{}",
        stderr(&out)
    );
    assert!(
        text.contains("gateway.ndjson:2"),
        "the broken line is named: {text}"
    );
    assert!(
        text.contains("junk.bin"),
        "the binary file is named: {text}"
    );
    assert!(
        text.contains("empty.json"),
        "the empty file is named: {text}"
    );
    assert_ne!(
        out.status.code(),
        Some(2),
        "bad records are not a fatal error"
    );
}

/// `simulate --live` writes gateway rows while it runs, in a shape the readers accept.
#[test]
fn simulate_live_writes_rows_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(["simulate", "--live", "--speed", "120", "--out"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = dir.path().join("logs/ApiManagementGatewayLogs.ndjson");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut lines = 0;
    while std::time::Instant::now() < deadline {
        lines = std::fs::read_to_string(&log)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines > 100 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(lines > 100, "only {lines} rows written");
    let out = apimedic([Path::new("diagnose"), dir.path()]);
    assert!(
        stdout(&out).contains("gateway log rows"),
        "{}",
        stdout(&out)
    );
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
}
