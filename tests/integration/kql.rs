//! The KQL pushdown against a real KQL engine: `fixtures/kql/serve_kql.py`
//! runs duckdb-kql (PyPI) behind a loopback server answering in the Log
//! Analytics and ADX wire shapes, over the same simulated rows the file path
//! reads. Parity: the same findings (kind, subject, window) and percentiles
//! within the histogram's stated error. Bad answers: each ends in a clear
//! message naming the query, never in a healthy verdict.
//!
//! Needs a Python with duckdb-kql: `APIMEDIC_TEST_KQL_PYTHON` (set by
//! `.ci/run`); without it every test here skips with a message.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const WORKSPACE: &str = "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c";
const RID: &str = "/subscriptions/6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c/resourceGroups/rg-apim-prod/providers/Microsoft.ApiManagement/service/contoso-apim";
const TOKEN: &str = "test-token-not-a-secret";

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("APIMEDIC_TEST_KQL_PYTHON").map(PathBuf::from)?;
    let ok = Command::new(&p)
        .args(["-c", "import duckdb_kql"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(p)
}

macro_rules! need_engine {
    () => {
        match python() {
            Some(p) => p,
            None => {
                eprintln!(
                    "skipped: no KQL engine (set APIMEDIC_TEST_KQL_PYTHON to a python with duckdb-kql; .ci/run installs it)"
                );
                return;
            }
        }
    };
}

struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(py: &Path, rows: &[&Path], extra: &[&str], dir: &Path) -> Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kql/serve_kql.py");
    let log = dir.join(format!(
        "queries-{}.jsonl",
        extra.join("_").replace(['-', ' '], "")
    ));
    let mut cmd = Command::new(py);
    cmd.arg(&script)
        .args(["--port", "0", "--resource-id", RID, "--token", TOKEN])
        .arg("--log")
        .arg(&log)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for r in rows {
        cmd.arg("--rows").arg(r);
    }
    let mut child = cmd.spawn().expect("start serve_kql.py");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve_kql.py said {line:?}"))
        .to_string();
    Server { child, url, log }
}

fn apimedic(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apimedic"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("APIMEDIC_LOGS_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A simulated instance with its logs as Log Analytics rows; returns the
/// folder and the rows file moved out of it (the config stays).
fn instance(dir: &Path, scenario: &str) -> (PathBuf, PathBuf, PathBuf) {
    let full = dir.join(format!("{scenario}-full"));
    let out = apimedic(
        &[
            "simulate",
            "--scenario",
            scenario,
            "--out",
            full.to_str().unwrap(),
            "--log-shape",
            "la-ndjson",
            "--scale",
            "0.05",
            "--minutes",
            "240",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.join(format!("{scenario}-config"));
    copy_dir(&full, &config);
    let rows = dir.join(format!("{scenario}.ndjson"));
    std::fs::rename(config.join("logs/ApiManagementGatewayLogs.ndjson"), &rows).unwrap();
    std::fs::remove_file(config.join("expected.json")).ok();
    (full, config, rows)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// (kind, subject, window) of every finding.
fn findings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}", f["kind"], f["subject"], f["window"]))
        .collect();
    out.sort();
    out
}

/// The data window of the rows, as --since/--until.
fn window(rows: &Path) -> (String, String) {
    let text = std::fs::read_to_string(rows).unwrap();
    let times: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["TimeGenerated"].as_str().map(str::to_string))
        .collect();
    let lo = times.iter().min().unwrap();
    let hi = times.iter().max().unwrap();
    // Whole minutes around them.
    (format!("{}:00Z", &lo[..16]), format!("{}:59Z", &hi[..16]))
}

fn pushdown(
    server: &Server,
    config: &Path,
    logs: &str,
    window: &(String, String),
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "diagnose",
        config.to_str().unwrap(),
        "--logs",
        logs,
        "--since",
        &window.0,
        "--until",
        &window.1,
        "--format",
        "json",
        "--logs-resource",
        RID,
    ];
    args.extend(extra);
    apimedic(
        &args,
        &[
            ("APIMEDIC_LOGS_URL", &server.url),
            ("APIMEDIC_LOGS_TOKEN", TOKEN),
        ],
    )
}

fn la(_server: &Server) -> String {
    format!("la:{WORKSPACE}")
}

fn adx(server: &Server) -> String {
    format!("adx:{}/memory/ApiManagementGatewayLogs", server.url)
}

fn within(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 0.01 * y.abs().max(x.abs()) + 1.0,
        _ => a == b,
    }
}

#[test]
fn pushdown_finds_what_the_files_show_through_both_engines() {
    let py = need_engine!();
    let dir = tempfile::tempdir().unwrap();
    for scenario in ["policy-timeout", "backend-oom", "healthy"] {
        let (full, config, rows) = instance(dir.path(), scenario);
        let local_out = apimedic(
            &["diagnose", full.to_str().unwrap(), "--format", "json"],
            &[],
        );
        let local = json_of(&local_out);
        let w = window(&rows);
        let server = serve(&py, &[&rows], &[], dir.path());
        for logs in [la(&server), adx(&server)] {
            let out = pushdown(&server, &config, &logs, &w, &["--timings"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                local_out.status.code(),
                "{scenario} {logs}: {stderr}"
            );
            let remote = json_of(&out);
            assert_eq!(
                findings(&remote),
                findings(&local),
                "{scenario} through {logs}: {stderr}"
            );
            if scenario != "healthy" {
                assert!(!findings(&local).is_empty());
            }
            // The backend map: same requests and error rates, p95 within
            // the histogram's error (both paths use the same histogram).
            let (a, b) = (&remote["backend_map"], &local["backend_map"]);
            assert_eq!(a.as_array().map(Vec::len), b.as_array().map(Vec::len));
            for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
                assert_eq!(x["requests"], y["requests"], "{scenario} {logs}");
                assert!(within(&x["p95_ms"], &y["p95_ms"]), "{x} vs {y}");
            }
            assert!(stderr.contains("pushdown:"), "{stderr}");
            // Evidence rows were fetched after detection, from the engine.
            if scenario == "policy-timeout" {
                let records: Vec<&Value> = remote["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|f| f["evidence"].as_array().into_iter().flatten())
                    .flat_map(|e| e["records"].as_array().into_iter().flatten())
                    .collect();
                assert!(!records.is_empty(), "no evidence rows via {logs}");
                assert!(
                    records.iter().all(|r| r["origin"]["file"]
                        .as_str()
                        .unwrap()
                        .contains("query samples")),
                    "{records:?}"
                );
            }
        }
        // Every query had the time range and the instance filter.
        let log = std::fs::read_to_string(&server.log).unwrap();
        let queries: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(queries.len() >= 8);
        for q in &queries {
            let text = q["query"].as_str().unwrap();
            assert!(
                text.contains("TimeGenerated >= start and TimeGenerated < end"),
                "{text}"
            );
            assert!(text.contains("_ResourceId =~ rid"), "{text}");
        }
    }
}

#[test]
fn chunks_stay_under_the_result_limit_and_throttling_is_waited_out() {
    let py = need_engine!();
    let dir = tempfile::tempdir().unwrap();
    let (full, config, rows) = instance(dir.path(), "policy-timeout");
    let local = json_of(&apimedic(
        &["diagnose", full.to_str().unwrap(), "--format", "json"],
        &[],
    ));
    let w = window(&rows);
    // A 300-row limit: a 240-minute window of ~25 series is ~6,000 cells,
    // so the answers come back cut and the chunks are halved until they fit.
    let server = serve(
        &py,
        &[&rows],
        &["--max-rows", "300", "--fault", "throttle"],
        dir.path(),
    );
    for logs in [la(&server), adx(&server)] {
        let out = pushdown(&server, &config, &logs, &w, &["--timings"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            findings(&json_of(&out)),
            findings(&local),
            "{logs}: {stderr}"
        );
        let chunks: u64 = stderr
            .split("pushdown: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(chunks >= 10, "{stderr}");
    }
}

#[test]
fn bad_answers_get_clear_messages_never_a_healthy_verdict() {
    let py = need_engine!();
    let dir = tempfile::tempdir().unwrap();
    let (_, config, rows) = instance(dir.path(), "policy-timeout");
    let w = window(&rows);
    let empty = dir.path().join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    let partial = ["query `cells`", "partial answer", "incomplete"];
    let no_logs = ["no API Management gateway logs", "diagnostic setting"];
    // (rows, server options, wanted in the Log Analytics message, in the ADX one)
    type Case<'a> = (Vec<&'a Path>, Vec<&'a str>, Vec<&'a str>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![&rows],
            vec!["--fault", "partial"],
            partial.to_vec(),
            partial.to_vec(),
        ),
        (
            vec![&rows],
            vec!["--fault", "drop-column"],
            vec!["query `cells`", "`s5xx` is missing"],
            vec!["query `cells`", "`s5xx` is missing"],
        ),
        (
            vec![&rows],
            vec!["--fault", "wrong-type"],
            vec!["query `cells`", "`requests` is of type string"],
            vec!["query `cells`", "`requests` is of type string"],
        ),
        (vec![&empty], vec![], no_logs.to_vec(), no_logs.to_vec()),
        // The table is not there: Log Analytics tries both tables, ADX was
        // told which one (a KQL error, 400, naming the query).
        (
            vec![&rows],
            vec!["--table", "OtherLogs"],
            vec!["no API Management gateway logs", "not queryable"],
            vec!["query `series`", "HTTP 400"],
        ),
    ];
    for (rows, extra, want_la, want_adx) in cases {
        let server = serve(&py, &rows, &extra, dir.path());
        for (logs, want) in [(la(&server), &want_la), (adx(&server), &want_adx)] {
            let out = pushdown(&server, &config, &logs, &w, &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{extra:?} {logs}: {stderr}");
            assert!(out.stdout.is_empty(), "{extra:?}: a verdict was printed");
            for w in want {
                assert!(
                    stderr.contains(w),
                    "{extra:?} {logs}: want {w:?} in {stderr}"
                );
            }
        }
    }
    // A refused token: 401 with what to do.
    let server = serve(&py, &[&rows], &[], dir.path());
    let out = apimedic(
        &[
            "diagnose",
            config.to_str().unwrap(),
            "--logs",
            &la(&server),
            "--since",
            &w.0,
            "--until",
            &w.1,
        ],
        &[
            ("APIMEDIC_LOGS_URL", &server.url),
            ("APIMEDIC_LOGS_TOKEN", "wrong"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("sign in again"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong"), "the token was printed: {stderr}");
}

#[test]
fn explain_shows_every_query_sent() {
    let py = need_engine!();
    let dir = tempfile::tempdir().unwrap();
    let (_, config, rows) = instance(dir.path(), "policy-timeout");
    let w = window(&rows);
    let server = serve(&py, &[&rows], &[], dir.path());
    let out = pushdown(&server, &config, &la(&server), &w, &["--explain"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let sent = std::fs::read_to_string(&server.log).unwrap();
    let sent: Vec<Value> = sent
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!sent.is_empty());
    for q in &sent {
        assert!(
            stderr.contains(q["query"].as_str().unwrap().trim_end()),
            "not explained: {q}"
        );
    }
    for name in [
        "`series`",
        "`cells`",
        "`backend_latency`",
        "`reasons`",
        "`hosts`",
        "`samples`",
    ] {
        assert!(
            stderr.contains(&format!("-- query {name}")),
            "{name} missing in {stderr}"
        );
    }
}

/// A diagnostic setting of the simulated service sending `logs` to the
/// workspace `name`, and that workspace (customerId `WORKSPACE`).
fn diagnostic_setting(name: &str, logs: Value) -> [Vec<u8>; 2] {
    let ws = format!(
        "/subscriptions/6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/{name}"
    );
    let setting = serde_json::json!({
        "id": format!("{RID}/providers/microsoft.insights/diagnosticSettings/to-{name}"),
        "name": format!("to-{name}"),
        "type": "Microsoft.Insights/diagnosticSettings",
        "properties": {"workspaceId": ws, "logAnalyticsDestinationType": "Dedicated", "logs": logs,
                       "metrics": [{"category": "AllMetrics", "enabled": true}]}
    });
    let workspace = serde_json::json!({
        "id": ws, "name": name, "type": "Microsoft.OperationalInsights/workspaces", "location": "westeurope",
        "properties": {"customerId": WORKSPACE, "provisioningState": "Succeeded", "sku": {"name": "PerGB2018"},
                       "retentionInDays": 30}
    });
    [setting, workspace].map(|v| serde_json::to_vec(&v).unwrap())
}

/// The loopback Azure stand-in serving the instance's configuration and
/// metrics (`config`, its logs moved out) plus `extra` documents.
fn azure_standin(config: &Path, extra: &[Vec<u8>]) -> apimedic::simulate::standin::StandIn {
    use apimedic::simulate::standin::{Config, StandIn, Store};
    fn add_dir(store: &mut Store, dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                add_dir(store, &p);
            } else {
                store.add_document(&std::fs::read(&p).unwrap());
            }
        }
    }
    let mut store = Store::default();
    add_dir(&mut store, config);
    for d in extra {
        assert!(store.add_document(d));
    }
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/azure/tls");
    StandIn::start(
        store,
        Config {
            tenant: AZ_TENANT.into(),
            client_id: AZ_CLIENT.into(),
            client_secret: Some(AZ_SECRET.into()),
            token_lifetime: 3600,
            ..Config::default()
        },
        (
            &std::fs::read(tls.join("server.crt")).unwrap(),
            &std::fs::read(tls.join("server.key")).unwrap(),
        ),
        0,
    )
    .expect("the Azure stand-in starts")
}

const AZ_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AZ_CLIENT: &str = "535fb089-9ff3-47b6-9bfb-4f1264799865";
const AZ_SECRET: &str = "s3cr3t-value";

/// `diagnose --azure RID` (no --logs) against the stand-in, the logs
/// query API at `logs_url`.
fn live_diagnose(
    s: &apimedic::simulate::standin::StandIn,
    logs_url: &str,
    w: &(String, String),
    state: &Path,
) -> Output {
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/azure/tls");
    let mut c = Command::new(env!("CARGO_BIN_EXE_apimedic"));
    for k in [
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "APIMEDIC_AZURE_SIGN_IN",
    ] {
        c.env_remove(k);
    }
    c.env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", state)
        .env("APIMEDIC_ARM_URL", &s.arm_url)
        .env("AZURE_AUTHORITY_HOST", &s.login_url)
        .env("APIMEDIC_AZURE_CA_FILE", tls.join("ca.crt"))
        .env("AZURE_TENANT_ID", AZ_TENANT)
        .env("AZURE_CLIENT_ID", AZ_CLIENT)
        .env("AZURE_CLIENT_SECRET", AZ_SECRET)
        .env("HTTPS_PROXY", "")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("APIMEDIC_LOGS_URL", logs_url)
        .env("APIMEDIC_LOGS_TOKEN", TOKEN)
        .args([
            "diagnose",
            "--azure",
            RID,
            "--since",
            &w.0,
            "--until",
            &w.1,
            "--format",
            "json",
            "--timings",
        ]);
    c.output().unwrap()
}

#[test]
fn a_live_instance_reads_its_logs_where_its_diagnostic_setting_sends_them() {
    let py = need_engine!();
    let dir = tempfile::tempdir().unwrap();
    let (full, config, rows) = instance(dir.path(), "backend-oom");
    let w = window(&rows);
    let server = serve(&py, &[&rows], &[], dir.path());
    // The same traffic through --logs with the configuration from files:
    // what the discovered workspace must give.
    let explicit = json_of(&pushdown(&server, &config, &la(&server), &w, &[]));
    let files = json_of(&apimedic(
        &["diagnose", full.to_str().unwrap(), "--format", "json"],
        &[],
    ));
    // Findings read from the requests (configuration comes from the live
    // pull here and from files there, so the rest may differ).
    let traffic = |v: &Value| -> Vec<String> {
        findings(v)
            .into_iter()
            .filter(|f| {
                [
                    "error_spike",
                    "backend_timeout",
                    "backend_failure",
                    "backend_unhealthy",
                    "latency_regression",
                ]
                .iter()
                .any(|k| f.starts_with(&format!("\"{k}\"")))
            })
            .collect()
    };
    assert!(!traffic(&files).is_empty());

    let [setting, workspace] = diagnostic_setting(
        "main",
        serde_json::json!([{"category": "GatewayLogs", "categoryGroup": null, "enabled": true}]),
    );
    let s = azure_standin(&config, &[setting, workspace]);
    let out = live_diagnose(&s, &server.url, &w, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gateway logs from Log Analytics workspace")
            && stderr.contains("workspaces/main")
            && stderr.contains(&format!("la:{WORKSPACE}")),
        "{stderr}"
    );
    assert!(stderr.contains("pushdown:"), "{stderr}");
    let live = json_of(&out);
    // The same requests per operation as the explicit --logs run.
    let requests = |v: &Value| -> Vec<String> {
        v["backend_map"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| format!("{} {} {}", b["api"], b["operation"], b["requests"]))
            .collect()
    };
    assert!(!requests(&explicit).is_empty());
    assert_eq!(requests(&live), requests(&explicit), "{stderr}");
    assert_eq!(traffic(&live), traffic(&explicit), "{stderr}");
    // The queries were filtered to the instance's own id.
    let sent = std::fs::read_to_string(&server.log).unwrap();
    assert!(sent.contains(&RID.to_ascii_lowercase()), "{sent}");

    // A setting that sends only metrics there: no request is read, and the
    // report says why and what to give, never a healthy traffic verdict.
    let [setting, workspace] = diagnostic_setting(
        "metrics-only",
        serde_json::json!([{"category": "GatewayLogs", "enabled": false}]),
    );
    let s = azure_standin(&config, &[setting, workspace]);
    let out = live_diagnose(&s, &server.url, &w, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let live = json_of(&out);
    let problems = live["loaded"]["problems"].to_string();
    assert!(
        problems.contains("not the GatewayLogs category")
            && problems.contains("no diagnostic setting sends GatewayLogs")
            && problems.contains("--logs"),
        "{problems}\n{stderr}"
    );
    assert!(traffic(&live).is_empty(), "{stderr}");
    assert!(!stderr.contains("pushdown:"), "{stderr}");
}
