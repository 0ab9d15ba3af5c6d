//! The daemon loop under paused time: a 60 s tick fires at once, alert
//! events arrive on a channel, cancelling the token ends `run` with `Ok`.

use super::*;
use crate::model::FindingKind;
use std::io::Write;

const T0: i64 = 29_000_000;

fn lines(minutes: std::ops::Range<i64>, bad: impl Fn(i64, i64) -> bool) -> String {
    let mut out = String::new();
    for m in minutes {
        for s in 0..60 {
            let code = if bad(m, s) { 503 } else { 200 };
            let t = Timestamp::from_millis((T0 + m) * 60_000 + s * 1000).to_rfc3339();
            out.push_str(&format!(
                "{{\"TimeGenerated\":\"{t}\",\"ApiId\":\"orders-api\",\"OperationId\":\"get-order\",\"BackendId\":\"orders-app\",\"ResponseCode\":{code},\"BackendResponseCode\":{code},\"TotalTime\":40,\"BackendTime\":38}}\n"
            ));
        }
    }
    out
}

fn config(dir: &Path) -> DaemonConfig {
    let mut cfg = DaemonConfig {
        paths: vec![dir.join("logs")],
        state_dir: dir.join("state"),
        tick: Duration::from_secs(60),
        poll: Duration::from_secs(1),
        ..DaemonConfig::default()
    };
    cfg.engine.retention_minutes = 120;
    cfg.engine.lookback_minutes = 60;
    cfg.engine.exact_minutes = 5;
    cfg.rules.for_ = Duration::ZERO;
    cfg.rules.keep_firing_for = Duration::ZERO;
    cfg
}

async fn next(rx: &mut mpsc::UnboundedReceiver<AlertEvent>) -> AlertEvent {
    tokio::time::timeout(Duration::from_secs(3600), rx.recv())
        .await
        .expect("an alert event within an hour of paused time")
        .expect("the channel stays open")
}

#[tokio::test(start_paused = true)]
async fn spike_fires_then_resolves_and_shutdown_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let log = dir.path().join("logs/gw.ndjson");
    std::fs::write(&log, lines(0..40, |m, s| m >= 34 && s % 2 == 0)).unwrap();
    let token = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(run_with(config(dir.path()), token.clone(), Some(tx)));
    let fired = next(&mut rx).await;
    assert_eq!(fired.status, alerts::Status::Firing);
    assert_eq!(fired.kind, FindingKind::ErrorSpike);
    assert_eq!(fired.labels["operation"], "get-order");
    // Healthy minutes appended: the spike becomes history and resolves.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(lines(40..50, |_, _| false).as_bytes()).unwrap();
    // Other alerts about the same incident (the backend) may come and go.
    let mut resolved = next(&mut rx).await;
    while resolved.fingerprint != fired.fingerprint {
        resolved = next(&mut rx).await;
    }
    assert_eq!(resolved.status, alerts::Status::Resolved, "{resolved:?}");
    assert_eq!(resolved.fingerprint, fired.fingerprint);
    token.cancel();
    handle.await.unwrap().unwrap();
    // State and offsets were saved on the way out.
    let d = Durable::load(&dir.path().join("state")).unwrap();
    assert!(d.alerts.is_empty());
    let cp = tail::Checkpoints::load(&dir.path().join("state"));
    assert_eq!(cp.files[&log].line, 50 * 60 + 1);
}

#[tokio::test(start_paused = true)]
async fn restart_keeps_a_firing_alert_without_announcing_it_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::write(
        dir.path().join("logs/gw.ndjson"),
        lines(0..40, |m, s| m >= 34 && s % 2 == 0),
    )
    .unwrap();
    for round in 0..2 {
        let token = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(run_with(config(dir.path()), token.clone(), Some(tx)));
        if round == 0 {
            assert_eq!(next(&mut rx).await.status, alerts::Status::Firing);
        } else {
            // Several ticks of paused time: nothing new to say.
            tokio::time::sleep(Duration::from_secs(600)).await;
            assert!(
                rx.try_recv().is_err(),
                "a restart announced the alert again"
            );
        }
        token.cancel();
        handle.await.unwrap().unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_changed_config_file_reloads_the_alert_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::write(
        dir.path().join("logs/gw.ndjson"),
        lines(0..40, |m, s| m >= 34 && s % 2 == 0),
    )
    .unwrap();
    let file = dir.path().join("daemon.toml");
    std::fs::write(&file, "[alerts]\nkinds = [\"quota\"]\n").unwrap();
    let mut cfg = config(dir.path());
    cfg.rules.kinds = vec![FindingKind::Quota];
    cfg.config_file = Some(file.clone());
    let token = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handle = tokio::spawn(run_with(cfg, token.clone(), Some(tx)));
    tokio::time::sleep(Duration::from_secs(180)).await;
    assert!(rx.try_recv().is_err(), "error spikes are not alerted yet");
    std::fs::write(&file, "[alerts]\nkinds = [\"error_spike\"]\nfor = \"0s\"\n").unwrap();
    let fired = next(&mut rx).await;
    assert_eq!(fired.kind, FindingKind::ErrorSpike);
    token.cancel();
    handle.await.unwrap().unwrap();
}
