//! `apimedic daemon` end to end: the real binary on a live simulated feed
//! (`apimedic daemon live --speed 60`: a minute of traffic per second),
//! a real Alertmanager (Debian's `prometheus-alertmanager`, started here on
//! a free loopback port; skipped with a message where it is not installed),
//! a webhook receiver run by the test, SIGKILL and restart, a receiver that
//! is down, and every config fixture. Nothing leaves 127.0.0.1. Every wait
//! polls against a deadline; no test asserts on speed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed on drop (stderr kept in a file for messages).
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let f = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("the process starts");
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (within a deadline).
    fn term(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET over plain TCP: (status code, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let code = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // Chunked answers (Alertmanager): keep the JSON between the size lines.
    let body = if out
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((code, body))
}

fn dechunk(mut b: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = b.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        b = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn wait_for<T>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> Option<T>,
    log: &dyn Fn() -> String,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A webhook receiver: records every POST body, answers 200.
struct Receiver {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(port: u16) -> Receiver {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver port");
        l.set_nonblocking(true).expect("nonblocking");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, st) = (bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        if let Some(body) = read_request(&mut s)
                            && let Ok(v) = serde_json::from_slice(&body)
                        {
                            b.lock().unwrap().push(v);
                        }
                        let _ = s.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Receiver { bodies, stop }
    }

    /// Firing notifications (first ones, not re-notifications) per fingerprint.
    fn firing(&self, kind: &str, operation: &str) -> Vec<String> {
        let mut out = Vec::new();
        for body in self.bodies.lock().unwrap().iter() {
            for a in body["alerts"].as_array().into_iter().flatten() {
                if a["status"] == "firing"
                    && a["repeat"] != true
                    && a["kind"] == kind
                    && a["subject"]["operation"] == operation
                {
                    out.push(a["fingerprint"].as_str().unwrap_or("").to_string());
                }
            }
        }
        out
    }
}

impl Receiver {
    /// Every notification, in arrival order: (fingerprint, status,
    /// whether it is a re-notification).
    fn lifecycle(&self, kind: &str, operation: &str) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        for body in self.bodies.lock().unwrap().iter() {
            for a in body["alerts"].as_array().into_iter().flatten() {
                if a["kind"] == kind && a["subject"]["operation"] == operation {
                    out.push((
                        a["fingerprint"].as_str().unwrap_or("").to_string(),
                        a["status"].as_str().unwrap_or("").to_string(),
                        a["repeat"] == true,
                    ));
                }
            }
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf.get(end + 4..end + 4 + len)?.to_vec());
        }
    }
}

/// `apimedic daemon live` into `dir`: 30 minutes of backlog, then a
/// minute of data per second, a 5xx incident on check-stock `after`
/// minutes in, lasting `len` minutes.
fn live_feed(dir: &Path, after: u32, len: u32) -> Proc {
    Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_apimedic")).args([
            "daemon",
            "live",
            "--out",
            dir.to_str().unwrap(),
            "--speed",
            "60",
            "--rate",
            "600",
            "--backlog",
            "30m",
            "--incident-after",
            &format!("{after}m"),
            "--incident-for",
            &format!("{len}m"),
            "--incident-every",
            "0s",
        ]),
        dir.with_extension("live.log"),
    )
}

fn write_config(path: &Path, sinks: &str) {
    let text = format!(
        r#"[daemon]
tick = "1s"

[sources]
poll = "200ms"

[engine]
retention = "2h"
lookback = "1h"
exact = "5m"
active = "2m"

[alerts]
for = "2s"
keep_firing_for = "2s"
kinds = ["error_spike"]

[delivery]
retry_initial = "200ms"
retry_max = "1s"
timeout = "2s"
resend = "2s"

{sinks}
"#
    );
    std::fs::write(path, text).unwrap();
}

fn daemon(dir: &Path, config: &Path, state: &Path, listen: u16, log: &str) -> Proc {
    Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_apimedic")).args([
            "daemon",
            dir.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{listen}"),
        ]),
        dir.with_extension(log),
    )
}

/// A metric's value from /metrics.
fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics")?;
    body.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn alertmanager_binary() -> Option<PathBuf> {
    [
        "/usr/bin/prometheus-alertmanager",
        "/usr/local/bin/prometheus-alertmanager",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn live_spike_reaches_a_real_alertmanager_then_resolves() {
    let Some(am_bin) = alertmanager_binary() else {
        eprintln!(
            "skipped: prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager; CI installs it)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let am_port = free_port();
    let am_dir = tmp.path().join("am");
    std::fs::create_dir_all(am_dir.join("data")).unwrap();
    std::fs::write(
        am_dir.join("alertmanager.yml"),
        "route: {receiver: 'null', group_wait: 1s, group_interval: 2s, repeat_interval: 1h}\nreceivers: [{name: 'null'}]\n",
    )
    .unwrap();
    let am = Proc::spawn(
        Command::new(am_bin).args([
            format!(
                "--config.file={}",
                am_dir.join("alertmanager.yml").display()
            ),
            format!("--storage.path={}", am_dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".to_string(),
        ]),
        tmp.path().join("am.log"),
    );
    wait_for(
        "Alertmanager ready",
        30,
        || http_get(am_port, "/-/ready").filter(|r| r.0 == 200),
        &|| am.log(),
    );
    let inst = tmp.path().join("instance");
    std::fs::create_dir_all(&inst).unwrap();
    let _feed = live_feed(&inst, 10, 5);
    let cfg = tmp.path().join("daemon.toml");
    write_config(
        &cfg,
        &format!("[[sinks]]\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:{am_port}\"\n"),
    );
    let listen = free_port();
    let mut d = daemon(&inst, &cfg, &tmp.path().join("state"), listen, "daemon.log");
    let dlog = || d_log(&inst);
    wait_for(
        "/healthz ok",
        60,
        || http_get(listen, "/healthz").filter(|r| r.0 == 200),
        &dlog,
    );
    let am_alerts = || -> Vec<serde_json::Value> {
        http_get(am_port, "/api/v2/alerts")
            .and_then(|(_, b)| serde_json::from_str::<Vec<serde_json::Value>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                a["labels"]["alertname"] == "error_spike"
                    && a["labels"]["operation"] == "check-stock"
            })
            .collect()
    };
    let firing = wait_for(
        "the error_spike alert at Alertmanager",
        90,
        || am_alerts().into_iter().next(),
        &dlog,
    );
    let labels = &firing["labels"];
    assert_eq!(labels["api"], "inventory-api");
    assert_eq!(labels["source"], "apimedic");
    assert!(matches!(
        labels["severity"].as_str(),
        Some("medium" | "high" | "critical")
    ));
    assert_eq!(labels["fingerprint"].as_str().map(str::len), Some(16));
    assert!(
        firing["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("check-stock")),
        "{firing}"
    );
    assert_eq!(firing["status"]["state"], "active");
    wait_for(
        "the alert resolved at Alertmanager",
        90,
        || am_alerts().is_empty().then_some(()),
        &dlog,
    );
    let ingested = metric(listen, "apimedic_lines_ingested_total").unwrap_or(0.0);
    assert!(ingested > 1000.0, "lines ingested: {ingested}");
    assert!(metric(listen, "apimedic_ticks_total").unwrap_or(0.0) >= 1.0);
    let resolved = metric(listen, "apimedic_alert_events_total{status=\"resolved\"}");
    assert!(resolved.unwrap_or(0.0) >= 1.0, "{resolved:?}");
    let status = d.term();
    assert!(status.success(), "exit {status:?}\n{}", d.log());
    assert!(
        tmp.path().join("state/offsets.json").exists(),
        "offsets saved on SIGTERM"
    );
}

fn d_log(inst: &Path) -> String {
    std::fs::read_to_string(inst.with_extension("daemon.log")).unwrap_or_default()
}

#[test]
fn sigkill_and_restart_send_no_duplicate_firing_notification() {
    let tmp = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let hook = Receiver::start(hook_port);
    let inst = tmp.path().join("instance");
    std::fs::create_dir_all(&inst).unwrap();
    // A long incident: still going on across the restart.
    let _feed = live_feed(&inst, 6, 600);
    let cfg = tmp.path().join("daemon.toml");
    write_config(
        &cfg,
        &format!("[[sinks]]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/alert\"\n"),
    );
    let state = tmp.path().join("state");
    let listen = free_port();
    let mut first = daemon(&inst, &cfg, &state, listen, "daemon.log");
    let fps = wait_for(
        "the firing notification",
        90,
        || Some(hook.firing("error_spike", "check-stock")).filter(|v| !v.is_empty()),
        &|| d_log(&inst),
    );
    assert_eq!(fps.len(), 1, "{fps:?}");
    first.kill9();
    let listen2 = free_port();
    let _second = daemon(&inst, &cfg, &state, listen2, "daemon2.log");
    // Let the restarted daemon read its baseline and tick several times.
    let log2 = || std::fs::read_to_string(inst.with_extension("daemon2.log")).unwrap_or_default();
    wait_for(
        "five ticks after the restart",
        90,
        || metric(listen2, "apimedic_ticks_total").filter(|t| *t >= 5.0),
        &log2,
    );
    assert_eq!(
        metric(listen2, "apimedic_alerts{state=\"firing\"}"),
        Some(1.0),
        "the restarted daemon still holds the alert as firing\n{}",
        log2()
    );
    let again = hook.firing("error_spike", "check-stock");
    assert_eq!(
        again, fps,
        "a duplicate firing notification after SIGKILL + restart"
    );
}

#[test]
fn a_receiver_down_for_a_while_gets_the_alert_once_when_back() {
    let tmp = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let inst = tmp.path().join("instance");
    std::fs::create_dir_all(&inst).unwrap();
    let _feed = live_feed(&inst, 6, 600);
    let cfg = tmp.path().join("daemon.toml");
    write_config(
        &cfg,
        &format!(
            "[[sinks]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"http://127.0.0.1:{hook_port}/alert\"\n"
        ),
    );
    let listen = free_port();
    let _d = daemon(&inst, &cfg, &tmp.path().join("state"), listen, "daemon.log");
    // The receiver is down: delivery fails and is retried with backoff.
    wait_for(
        "failed deliveries",
        90,
        || metric(listen, "apimedic_sink_failures_total{sink=\"hook\"}").filter(|n| *n >= 3.0),
        &|| d_log(&inst),
    );
    assert!(metric(listen, "apimedic_outbox_size").unwrap_or(0.0) >= 1.0);
    let hook = Receiver::start(hook_port);
    let fps = wait_for(
        "the notification after the outage",
        60,
        || Some(hook.firing("error_spike", "check-stock")).filter(|v| !v.is_empty()),
        &|| d_log(&inst),
    );
    wait_for(
        "an empty outbox",
        30,
        || metric(listen, "apimedic_outbox_size").filter(|n| *n == 0.0),
        &|| d_log(&inst),
    );
    let after = hook.firing("error_spike", "check-stock");
    assert_eq!(after.len(), 1, "retries must not duplicate: {after:?}");
    assert_eq!(after, fps);
}

/// Issue #12.9: a state directory the daemon cannot write. Root ignores
/// permissions, so a directory stands where the daemon writes its state
/// files' temporary copies (`alerts.tmp`, `offsets.tmp`): every save fails
/// as on a full or read-only disk. The alert fires and is saved; then the
/// saves fail, `/healthz` answers 503 naming the file, the alert resolves
/// and its "resolved" is delivered (only the delivery journal records
/// it), and the shutdown says the state was NOT saved. Restarted with the
/// obstruction gone on the stale state of before, the daemon sends nothing
/// again: the receiver saw exactly one "firing" then one "resolved".
#[test]
fn an_unwritable_state_directory_is_reported_and_nothing_is_sent_again() {
    let tmp = tempfile::tempdir().unwrap();
    let hook_port = free_port();
    let hook = Receiver::start(hook_port);
    let inst = tmp.path().join("instance");
    std::fs::create_dir_all(&inst).unwrap();
    // An incident of 20 data minutes (20 s): it fires, then resolves.
    let _feed = live_feed(&inst, 6, 20);
    let cfg = tmp.path().join("daemon.toml");
    write_config(
        &cfg,
        &format!(
            "[[sinks]]\ntype = \"webhook\"\nname = \"hook\"\nurl = \"http://127.0.0.1:{hook_port}/alert\"\n"
        ),
    );
    let state = tmp.path().join("state");
    let listen = free_port();
    let mut first = daemon(&inst, &cfg, &state, listen, "daemon.log");
    let dlog = || d_log(&inst);
    let fired = wait_for(
        "the firing notification",
        90,
        || Some(hook.firing("error_spike", "check-stock")).filter(|v| !v.is_empty()),
        &dlog,
    );
    // Delivered and saved: the book holds the alert as firing.
    wait_for(
        "an empty outbox",
        30,
        || metric(listen, "apimedic_outbox_size").filter(|n| *n == 0.0),
        &dlog,
    );
    assert_eq!(http_get(listen, "/healthz").map(|r| r.0), Some(200));
    let blocks = [state.join("alerts.tmp"), state.join("offsets.tmp")];
    for b in &blocks {
        std::fs::create_dir_all(b).unwrap();
    }
    let unhealthy = wait_for(
        "/healthz 503 naming the failed save",
        60,
        || http_get(listen, "/healthz").filter(|r| r.0 == 503),
        &dlog,
    );
    assert!(
        unhealthy.1.contains("state directory not writable")
            && (unhealthy.1.contains("alerts.tmp") || unhealthy.1.contains("offsets.tmp")),
        "{}",
        unhealthy.1
    );
    let resolved = |h: &Receiver| {
        h.lifecycle("error_spike", "check-stock")
            .iter()
            .any(|(fp, st, _)| fp == &fired[0] && st == "resolved")
    };
    wait_for(
        "the resolved notification",
        90,
        || resolved(&hook).then_some(()),
        &dlog,
    );
    // Still failing: health never turned back to ok while saves fail.
    let still = http_get(listen, "/healthz").unwrap();
    assert_eq!(still.0, 503, "{}", still.1);
    let status = first.term();
    let log = first.log();
    assert!(
        !status.success(),
        "a stop without saving is an error:\n{log}"
    );
    assert!(
        log.contains("state was NOT saved") && !log.contains("checkpoints and outbox saved"),
        "{log}"
    );
    for b in &blocks {
        std::fs::remove_dir(b).unwrap();
    }
    let seen = hook.lifecycle("error_spike", "check-stock");
    let listen2 = free_port();
    let _second = daemon(&inst, &cfg, &state, listen2, "daemon2.log");
    let log2 = || std::fs::read_to_string(inst.with_extension("daemon2.log")).unwrap_or_default();
    wait_for(
        "/healthz ok after the restart",
        60,
        || http_get(listen2, "/healthz").filter(|r| r.0 == 200),
        &log2,
    );
    wait_for(
        "five ticks and an empty outbox after the restart",
        90,
        || {
            let ticks = metric(listen2, "apimedic_ticks_total")?;
            let outbox = metric(listen2, "apimedic_outbox_size")?;
            (ticks >= 5.0 && outbox == 0.0).then_some(())
        },
        &log2,
    );
    let after = hook.lifecycle("error_spike", "check-stock");
    assert_eq!(after, seen, "sent again after the restart\n{}", log2());
    let mine: Vec<&str> = after
        .iter()
        .filter(|(fp, _, repeat)| fp == &fired[0] && !repeat)
        .map(|(_, st, _)| st.as_str())
        .collect();
    assert_eq!(mine, ["firing", "resolved"], "{after:?}");
}

/// Every file in fixtures/config/valid/ parses and validates.
#[test]
fn every_valid_config_fixture_loads() {
    let dir = root().join("fixtures/config/valid");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            apimedic::daemon::config::load(&p)
                .unwrap_or_else(|err| panic!("{} is rejected: {err:#}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 3, "only {n} valid fixtures");
}

/// Each file in fixtures/config/invalid/ holds one mistake; the message the
/// user reads is pinned here (file, line, field, what to change).
#[test]
fn every_invalid_config_fixture_says_what_to_fix() {
    let want: BTreeMap<&str, &str> = [
        (
            "bad_duration.toml",
            "bad_duration.toml:2:7: `5 minutes` is not a duration: write a number and a unit, e.g. \"500ms\", \"15s\", \"2m\", \"4h\", \"1d\" (field `for`)",
        ),
        (
            "bad_listen.toml",
            "bad_listen.toml:2: [daemon] listen = \"9187\" is not an address: write host:port, e.g. \"127.0.0.1:9187\"",
        ),
        (
            "bad_severity.toml",
            "bad_severity.toml:2:16: unknown severity `urgent`: use info, low, medium, high or critical (field `min_severity`)",
        ),
        (
            "duration_as_number.toml",
            "duration_as_number.toml:2:7: `60` has no unit: write durations as quoted strings, e.g. \"60s\" or \"60m\" (field `for`)",
        ),
        (
            "https_url.toml",
            "https_url.toml:3:7: `https://hooks.slack.com/services/T0/B0/X`: https is not supported (the binary has no TLS); use http:// to a local relay or proxy (field `url`)",
        ),
        (
            "lookback_over_retention.toml",
            "lookback_over_retention.toml:3: [engine] lookback (180 min) must be between \"10m\" and retention (60 min): shorten lookback or lengthen retention",
        ),
        (
            "sink_without_url.toml",
            "sink_without_url.toml:4: sink `webhook-1` of type webhook needs `url = \"http://host:port/path\"`",
        ),
        (
            "unknown_key.toml",
            "unknown_key.toml:2:1: unknown field `tik`, expected one of `tick`, `state_dir`, `listen` (field `tik`)",
        ),
        (
            "unknown_kind.toml",
            "unknown_kind.toml:2:9: unknown finding kind `5xx`: use one of error_spike, backend_timeout, backend_failure, backend_unhealthy, latency_regression, config_change, malformed_policy, policy_inheritance, policy_risk, network_gap, capacity, scaling_config, quota, route_mismatch, metric_anomaly (field `kinds`)",
        ),
        (
            "unknown_sink_type.toml",
            "unknown_sink_type.toml:2:8: unknown variant `pagerduty`, expected one of `stdout`, `file`, `webhook`, `slack`, `teams`, `alertmanager` (field `type`)",
        ),
    ]
    .into_iter()
    .collect();
    let dir = root().join("fixtures/config/invalid");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let Some(expected) = want.get(name.as_str()) else {
            panic!("{name}: add the message it must give to this test");
        };
        let err = apimedic::daemon::config::load(&p)
            .err()
            .unwrap_or_else(|| panic!("{name} is accepted"));
        let msg = format!("{err:#}").replace(&format!("{}/", dir.display()), "");
        assert_eq!(&msg, expected, "{name}");
        seen.push(name);
    }
    assert_eq!(seen.len(), want.len(), "fixtures missing: {seen:?}");
}

/// `apimedic daemon DIR` with every setting at its default (no --config):
/// alerts go to stdout, here into `out`.
fn default_daemon(dir: &Path, state: &Path, listen: u16, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args([
            "daemon",
            dir.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{listen}"),
        ])
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("log")).unwrap())
        .spawn()
        .expect("the daemon starts")
}

/// #11 item 10: with the daemon's defaults, a sustained incident on a feed
/// running in real time (`simulate --live`'s default speed) alerts within
/// minutes of its start, and the pace draws no warning. Runs in real time:
/// about three minutes.
#[test]
fn default_settings_alert_on_a_real_time_feed_within_minutes() {
    let tmp = tempfile::tempdir().unwrap();
    let inst = tmp.path().join("inst");
    let _feed = Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_apimedic")).args([
            "daemon",
            "live",
            "--out",
            inst.to_str().unwrap(),
            "--speed",
            "1",
            "--backlog",
            "60m",
            "--incident-after",
            "1m",
            "--incident-for",
            "30m",
            "--incident-every",
            "0s",
        ]),
        tmp.path().join("feed.log"),
    );
    let logs = inst.join("logs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&logs).map_or(true, |mut d| d.next().is_none()) {
        assert!(Instant::now() < deadline, "the feed wrote no backlog");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = tmp.path().join("alerts.ndjson");
    let started = Instant::now();
    let mut d = default_daemon(&inst, &tmp.path().join("state"), free_port(), &out);
    // The incident begins a minute in; "within minutes" is five after it.
    let deadline = started + Duration::from_secs(6 * 60);
    let firing = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("\"firing\"")) {
            break l.to_string();
        }
        if Instant::now() > deadline {
            let _ = d.kill();
            panic!(
                "no alert within 6 minutes with default settings:\n{}",
                std::fs::read_to_string(out.with_extension("log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let _ = d.kill();
    let _ = d.wait();
    eprintln!("first alert after {:?}: {firing}", started.elapsed());
    assert!(firing.contains("check-stock"), "{firing}");
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap_or_default();
    assert!(!log.contains("faster than real time"), "{log}");
}

/// The other side of #11 item 10: on a feed 60 times faster than real time
/// the default tick cannot see an incident's pace, and the daemon says so
/// (with what to set) within its first minute of watching.
#[test]
fn an_accelerated_feed_with_default_ticks_draws_a_pace_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let inst = tmp.path().join("inst");
    let _feed = live_feed(&inst, 600, 5);
    let logs = inst.join("logs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&logs).map_or(true, |mut d| d.next().is_none()) {
        assert!(Instant::now() < deadline, "the feed wrote no backlog");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = tmp.path().join("alerts.ndjson");
    let mut d = default_daemon(&inst, &tmp.path().join("state"), free_port(), &out);
    let deadline = Instant::now() + Duration::from_secs(120);
    let log = loop {
        let log = std::fs::read_to_string(out.with_extension("log")).unwrap_or_default();
        if log.contains("faster than real time") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = d.kill();
    let _ = d.wait();
    assert!(log.contains("x faster than real time"), "{log}");
    assert!(log.contains("[daemon] tick"), "{log}");
}
