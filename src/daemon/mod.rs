//! `apimedic daemon`: watch sources continuously and emit alerts.
//!
//! ```text
//! watcher (tail) --Input--> engine: Store (per-minute aggregates) --tick--> analyze
//!   -> AlertBook::observe (pure) -> outbox (state dir) -> sink tasks -> receivers
//! ```
//!
//! - [`config`]: the TOML file, validated into `DaemonConfig`.
//! - [`tail`]: followed log files (rotation, truncation, checkpoints) and static files.
//! - [`engine`]: bounded aggregates and the tick over `analyze::analyze` (pure).
//! - [`alerts`]: the alert lifecycle (pure).
//! - [`sink`]: payloads (pure), outbox and delivery.
//! - [`metrics`]: `/metrics`, `/healthz`, host sampling.
//! - [`azure`]: live Azure instances polled on an interval (findings only
//!   reach the engine, marked with their instance).
//!
//! Shutdown comes in as a `CancellationToken` (mini-redis style): every task
//! selects on it; `run` returns after checkpoints and the outbox are saved.

pub mod act;
pub mod alerts;
pub mod azure;
pub mod config;
pub mod engine;
pub mod metrics;
pub mod sink;
pub mod tail;

pub use alerts::{AlertBook, AlertEvent};
pub use config::DaemonConfig;

use crate::model::{Snapshot, Timestamp};
use anyhow::Context;
use metrics::Metrics;
use sink::Durable;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the watcher sends the engine.
#[derive(Debug)]
pub enum Input {
    /// Complete log lines appended to a followed file.
    Lines(tail::Chunk),
    /// The static part of the instance, re-read after a change.
    Statics(Box<Snapshot>),
    /// Everything present at start has been read: ticks may begin.
    BaselineDone,
    /// The daemon's config file changed and still validates: new rules
    /// and engine sizes apply from the next tick.
    Reload(Box<DaemonConfig>),
    /// A live Azure instance was read and judged: its current findings
    /// replace the ones of its last read.
    Azure(Box<azure::Reading>),
}

/// Wall time that follows tokio's clock, so paused-time tests are exact.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall0: i64,
    inst0: tokio::time::Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let wall0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Clock {
            wall0,
            inst0: tokio::time::Instant::now(),
        }
    }
    pub fn now(&self) -> Timestamp {
        Timestamp(self.wall0 + self.inst0.elapsed().as_millis() as i64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// State shared by the engine and the sink tasks.
struct Shared {
    durable: Mutex<Durable>,
    state_dir: PathBuf,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// Deliveries recorded as they happen (see `sink::Acks`).
    acks: Mutex<sink::Acks>,
    /// What cannot be saved now, by state file.
    failing: Mutex<BTreeMap<&'static str, String>>,
}

impl Shared {
    /// Saves the alert book and outbox; true when it was written. After a
    /// save the delivery journal is no longer needed.
    fn save(&self, d: &Durable) -> bool {
        let result = d.save(&self.state_dir);
        let ok = result.is_ok();
        self.persisted("alerts", result);
        if ok && let Ok(mut a) = self.acks.lock() {
            a.keep_only(&d.outbox);
        }
        Metrics::set(&self.metrics.outbox_size, d.outbox.len() as u64);
        ok
    }

    /// Records the outcome of a write to the state directory: a failure is
    /// said once (and again when it changes), health turns 503, and a
    /// recovery is said too.
    fn persisted(&self, what: &'static str, result: anyhow::Result<()>) {
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        match result {
            Ok(()) => {
                if failing.remove(what).is_some() {
                    tracing::info!(state = what, dir = %self.state_dir.display(), "State saved again.");
                }
            }
            Err(e) => {
                Metrics::add(&self.metrics.state_save_failures, 1);
                let msg = format!("{e:#}");
                if failing.get(what) != Some(&msg) {
                    tracing::error!(state = what, error = %msg, "Cannot save to the state directory; /healthz reports it until a save succeeds. A restart now would lose or repeat notifications.");
                    failing.insert(what, msg);
                }
            }
        }
        if let Ok(mut p) = self.metrics.persist_error.lock() {
            *p = failing.iter().next().map(|(w, e)| format!("{w}: {e}"));
        }
    }

    /// The first failure to save, if any.
    fn persist_failure(&self) -> Option<String> {
        self.metrics
            .persist_error
            .lock()
            .ok()
            .and_then(|p| p.clone())
    }
}

/// Runs the daemon until `shutdown` is cancelled; then saves checkpoints
/// and the outbox and returns. `events`, when given, receives every alert
/// event as it is queued (tests and embedding).
pub async fn run(cfg: DaemonConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(cfg, shutdown, None).await
}

/// `run`, with an optional channel that sees every alert event.
pub async fn run_with(
    cfg: DaemonConfig,
    shutdown: CancellationToken,
    events: Option<mpsc::UnboundedSender<AlertEvent>>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.state_dir).with_context(|| {
        format!(
            "cannot create the state directory {}: check --state-dir",
            cfg.state_dir.display()
        )
    })?;
    let (acks, delivered) = sink::Acks::open(&cfg.state_dir)?;
    let mut durable = Durable::load(&cfg.state_dir)?;
    let resent = durable.forget_delivered(&delivered);
    if resent > 0 {
        tracing::info!(
            entries = resent,
            "Outbox entries delivered before the last stop (journalled, not yet saved) are not sent again."
        );
    }
    let metrics = Arc::new(Metrics::default());
    Metrics::set(&metrics.outbox_size, durable.outbox.len() as u64);
    if !durable.outbox.is_empty() {
        tracing::info!(
            pending = durable.outbox.len(),
            "Outbox from the last run reloaded; delivering."
        );
    }
    let shared = Arc::new(Shared {
        durable: Mutex::new(durable),
        state_dir: cfg.state_dir.clone(),
        metrics: metrics.clone(),
        clock: Clock::new(),
        acks: Mutex::new(acks),
        failing: Mutex::new(BTreeMap::new()),
    });
    let listener = match &cfg.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}: is the port in use?"))?,
        ),
        None => None,
    };
    let tracker = TaskTracker::new();
    if let Some(l) = listener {
        tracing::info!(addr = %l.local_addr().map(|a| a.to_string()).unwrap_or_default(), "Serving /metrics and /healthz.");
        tracker.spawn(metrics::serve(l, metrics.clone(), shutdown.child_token()));
    }
    let client = crate::http::client_builder(None)
        .map_err(anyhow::Error::msg)?
        .timeout(cfg.delivery.timeout)
        .no_proxy()
        .build()
        .context("cannot build the HTTP client")?;
    let mut notifies = Vec::new();
    for spec in &cfg.sinks {
        let notify = Arc::new(Notify::new());
        notify.notify_one();
        notifies.push(notify.clone());
        tracker.spawn(sink_task(
            spec.clone(),
            cfg.delivery,
            cfg.rules.generator_url.clone(),
            shared.clone(),
            client.clone(),
            notify,
            shutdown.child_token(),
        ));
    }
    // Autonomy (off by default): its own task, so a long-running operation
    // never holds up a tick; a tick while it acts is skipped for it.
    let act = match &cfg.autonomy {
        Some(a) => {
            let actor = act::Actor::start(a, &cfg.state_dir)?;
            tracing::info!(policy = %a.policy_file.display(), service = %a.service, rules = actor.policy.allow.len(), "Autonomy on: the policy's actions run on their own, audited.");
            let (atx, arx) = mpsc::channel(1);
            tracker.spawn(act_task(actor, arx, shared.clone(), shutdown.child_token()));
            Some(atx)
        }
        None => None,
    };
    let (tx, rx) = mpsc::channel(8);
    tracker.spawn(watch(
        cfg.clone(),
        tx.clone(),
        shared.clone(),
        shutdown.child_token(),
    ));
    if !cfg.azure.is_empty() {
        tracker.spawn(poll_azure(
            cfg.clone(),
            tx,
            shared.clone(),
            shutdown.child_token(),
        ));
    } else {
        drop(tx);
    }
    let engine = tracker.spawn(engine_task(
        cfg.clone(),
        rx,
        shared.clone(),
        notifies,
        events,
        act,
        shutdown.child_token(),
    ));
    tracker.close();
    let result = engine.await;
    shutdown.cancel();
    tracker.wait().await;
    if let Ok(d) = shared.durable.lock() {
        shared.save(&d);
    }
    let result = match result {
        Ok(r) => r,
        Err(e) => Err(anyhow::anyhow!("the engine task failed: {e}")),
    };
    match shared.persist_failure() {
        None => {
            tracing::info!("Stopped; checkpoints and outbox saved.");
            result
        }
        Some(e) => {
            tracing::error!(error = %e, "Stopped, but the state was NOT saved.");
            result.and(Err(anyhow::anyhow!(
                "stopped without saving the state in {}: {e}; on the next start, offsets and the outbox are those of the last successful save (delivered notifications are journalled when the journal could be written)",
                cfg.state_dir.display()
            )))
        }
    }
}

/// Follows the files, reads static ones, saves offsets.
async fn watch(
    cfg: DaemonConfig,
    tx: mpsc::Sender<Input>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut tailer = tail::Tailer::new(
        tail::Checkpoints::load(&cfg.state_dir),
        cfg.config_file.clone(),
    );
    let mut config_stamp = cfg.config_file.as_deref().and_then(tail::stamp);
    let mut first = true;
    let mut last_save = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(cfg.poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let m = &shared.metrics;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let (statics_changed, notes) = tailer.scan(&cfg.paths, !(cfg.replay && first));
        log_notes(&notes);
        if statics_changed {
            let paths = tailer.statics();
            let n = paths.len() as u64;
            let snap = tokio::task::spawn_blocking(move || read_statics(&paths))
                .await
                .unwrap_or_default();
            Metrics::add(&m.static_files_read, n);
            if tx.send(Input::Statics(Box::new(snap))).await.is_err() {
                break;
            }
        }
        loop {
            let mut chunks = Vec::new();
            log_notes(&tailer.poll(&mut chunks));
            if chunks.is_empty() {
                break;
            }
            for c in chunks {
                report_skips(&c, m);
                if tx.send(Input::Lines(c)).await.is_err() {
                    return;
                }
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
        if let Some(cf) = cfg.config_file.as_deref() {
            let now = tail::stamp(cf);
            if now != config_stamp {
                config_stamp = now;
                match config::load(cf) {
                    Ok(new) => {
                        tracing::info!(file = %cf.display(), "Config file changed; alert rules and engine sizes reloaded (sinks, paths, tick and listen apply on restart).");
                        if tx.send(Input::Reload(Box::new(new))).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "Config file changed but is invalid; the running configuration is kept.")
                    }
                }
            }
        }
        if first {
            first = false;
            if tx.send(Input::BaselineDone).await.is_err() {
                break;
            }
        }
        if last_save.elapsed() >= Duration::from_secs(2) {
            last_save = tokio::time::Instant::now();
            save_offsets(&cfg.state_dir, &tailer, &shared);
        }
    }
    save_offsets(&cfg.state_dir, &tailer, &shared);
}

/// Reads the live Azure instances every `[azure] interval` (see [`azure`]).
/// A read runs on a blocking thread with its own runtime; on shutdown it
/// is left to finish on its own (its results are no longer taken).
async fn poll_azure(
    cfg: DaemonConfig,
    tx: mpsc::Sender<Input>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(cfg.azure.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        instances = cfg.azure.instances.len(),
        interval_s = cfg.azure.interval.as_secs_f64(),
        "Watching live Azure instances."
    );
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let (watch, dir) = (cfg.azure.clone(), cfg.state_dir.clone());
        let active = cfg.engine.active_minutes;
        let (tx, m, stop) = (tx.clone(), shared.metrics.clone(), shutdown.clone());
        let started = std::time::Instant::now();
        let job = tokio::task::spawn_blocking(move || {
            azure::poll_blocking(&watch, &dir, active, |r| {
                Metrics::add(&m.azure_reads, 1);
                Metrics::add(&m.azure_problems, r.problems.len() as u64);
                !stop.is_cancelled() && tx.blocking_send(Input::Azure(Box::new(r))).is_ok()
            })
        });
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = job => match r {
                Ok(Ok(())) => tracing::debug!(seconds = started.elapsed().as_secs_f64(), "Azure read."),
                Ok(Err(e)) => {
                    Metrics::add(&shared.metrics.azure_poll_failures, 1);
                    tracing::error!(error = %format!("{e:#}"), "Cannot read Azure; the findings of the last read stay in force; retrying at the next interval.");
                }
                Err(e) => {
                    Metrics::add(&shared.metrics.azure_poll_failures, 1);
                    tracing::error!(error = %e, "The Azure reader stopped unexpectedly; retrying at the next interval.");
                }
            }
        }
    }
}

/// What a scan or a poll noticed, in the log: each thing once.
fn log_notes(notes: &[tail::Note]) {
    for n in notes {
        match n {
            tail::Note::Following { path, offset } => {
                tracing::info!(file = %path.display(), offset, "Following gateway log.")
            }
            tail::Note::Renamed { from, to } => {
                tracing::info!(from = %from.display(), to = %to.display(), "Followed log renamed (rotation); finishing it under its new name.")
            }
            tail::Note::Compressed {
                path,
                followed: true,
            } => {
                tracing::info!(file = %path.display(), "Compressed rotated log not read: its rows were read from the live file.")
            }
            tail::Note::Compressed {
                path,
                followed: false,
            } => {
                tracing::warn!(file = %path.display(), "Compressed gateway log not followed (the daemon follows live NDJSON files); read it with `apimedic diagnose`.")
            }
            tail::Note::Gone { path } => {
                tracing::info!(file = %path.display(), "Followed log gone after being read to its end.")
            }
            tail::Note::Error { path, error } => {
                tracing::warn!(file = %path.display(), error = %error, "Cannot read the log; retrying.")
            }
        }
    }
}

/// Skipped long lines and NUL bytes: counted and said with file and line.
fn report_skips(c: &tail::Chunk, m: &Metrics) {
    for s in &c.skipped {
        match s.kind {
            tail::SkipKind::TooLong => {
                Metrics::add(&m.lines_too_long, 1);
                tracing::warn!(file = %c.file, line = s.line, "Skipped a line of {} MiB or more (bounded memory); reading on after its end.", tail::MAX_LINE >> 20);
            }
            tail::SkipKind::Nul => {
                Metrics::add(&m.nul_bytes, s.bytes);
                tracing::warn!(file = %c.file, line = s.line, bytes = s.bytes, "Skipped NUL bytes (a crash leaves them in a preallocated log); reading on.");
            }
        }
    }
}

fn save_offsets(dir: &Path, tailer: &tail::Tailer, shared: &Shared) {
    let result = tailer.checkpoints().save(dir);
    shared.persisted("offsets", result);
}

/// The static files as one snapshot, without traffic (logs are followed).
fn read_statics(paths: &[PathBuf]) -> Snapshot {
    match crate::collect::collect(paths) {
        Ok(mut s) => {
            if !s.traffic.is_empty() {
                tracing::warn!(
                    rows = s.traffic.rows,
                    "Gateway logs that are not NDJSON are not followed; their rows are ignored (export them as JSON Lines)."
                );
            }
            s.traffic = Default::default();
            s
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "Cannot read a configuration file.");
            Snapshot::default()
        }
    }
}

/// Owns the store and the alert book; ticks.
async fn engine_task(
    cfg: DaemonConfig,
    mut rx: mpsc::Receiver<Input>,
    shared: Arc<Shared>,
    notifies: Vec<Arc<Notify>>,
    events: Option<mpsc::UnboundedSender<AlertEvent>>,
    act: Option<mpsc::Sender<(Snapshot, Vec<crate::model::Finding>)>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut store = engine::Store::new(cfg.engine);
    let mut book = AlertBook::new(cfg.rules.clone());
    if let Ok(d) = shared.durable.lock() {
        book.alerts = d.alerts.clone();
    }
    let mut statics = Snapshot::default();
    // Live Azure instances: label → (current findings, problems of the last read).
    let mut live: BTreeMap<String, (Vec<crate::model::Finding>, Vec<String>)> = BTreeMap::new();
    let mut host = metrics::HostSampler::new();
    let mut host_series: Vec<crate::model::MetricSeries> = Vec::new();
    let mut ready = false;
    let mut pace = engine::Pace::default();
    let mut ticker = tokio::time::interval(cfg.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let m = shared.metrics.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            input = rx.recv() => match input {
                Some(Input::Lines(c)) => {
                    store.set_future_limit(Some(Timestamp(shared.clock.now().0 + engine::FUTURE_TOLERANCE_MS)));
                    let (ok, bad) = store.ingest_ndjson(&c.file, &c.bytes, c.first_line);
                    Metrics::set(&m.rows_future, store.future);
                    Metrics::add(&m.lines_ingested, ok);
                    Metrics::add(&m.records_rejected, bad);
                    if bad > 0
                        && let Some(p) = store.problems.last()
                    {
                        tracing::warn!(rejected = bad, example = %crate::model::redact::scrub(&p.to_string()), "Rejected log lines.");
                    }
                }
                Some(Input::Statics(s)) => statics = *s,
                Some(Input::Azure(r)) => {
                    let r = *r;
                    let before = live.get(&r.label).map(|(_, p)| p.clone());
                    if before.as_ref() != Some(&r.problems) {
                        for p in &r.problems {
                            tracing::warn!(instance = %r.label, problem = %crate::model::redact::scrub(p), "Part of a live instance cannot be read; the rest is judged.");
                        }
                    }
                    if before.is_none() {
                        tracing::info!(instance = %r.label, id = %r.service_id, findings = r.findings.len(), "Live instance read.");
                    }
                    if r.changes > 0 && before.is_some() {
                        tracing::info!(instance = %r.label, documents = r.changes, "Configuration changed; recorded in the history (apimedic history).");
                    }
                    live.insert(r.label, (r.findings, r.problems));
                }
                Some(Input::Reload(new)) => {
                    let mut rules = new.rules.clone();
                    rules.inherit_links(&book.rules);
                    book.rules = rules;
                    store.set_config(new.engine);
                }
                Some(Input::BaselineDone) => {
                    ready = true;
                    Metrics::set(&m.ready, 1);
                    tracing::info!(rows = store.rows, "Baseline read; watching.");
                }
                None => break,
            },
            _ = ticker.tick(), if ready => {
                let started = std::time::Instant::now();
                store.compact();
                if cfg.host {
                    sample_host(&mut host, &m, shared.clock.now(), cfg.engine.retention_minutes, &mut host_series);
                } else {
                    host.sample(&m);
                }
                let mut findings = if !cfg.paths.is_empty() || cfg.azure.is_empty() {
                    if host_series.is_empty() {
                        store.evaluate(&statics)
                    } else {
                        let mut s = statics.clone();
                        s.metrics.extend(host_series.iter().cloned());
                        store.evaluate(&s)
                    }
                } else {
                    Vec::new()
                };
                findings.extend(live.values().flat_map(|(f, _)| f.iter().cloned()));
                // Secrets in findings (a key in a request URL, a password in a
                // backend URL) never reach the alert book, the outbox or a sink.
                for f in &mut findings {
                    crate::model::redact::Scrub::scrub(f);
                }
                if let Some(act) = &act
                    && !findings.is_empty()
                {
                    // Busy acting: this tick's findings wait for the next.
                    let _ = act.try_send((statics.clone(), findings.clone()));
                }
                let now = shared.clock.now();
                if let Some(w) = pace.observe(now, store.watermark(), cfg.tick, book.rules.for_) {
                    tracing::warn!("{w}");
                }
                let evs = book.observe(&findings, now);
                m.set_pages(alerts::pages(&book));
                let mut dropped = 0;
                if let Ok(mut d) = shared.durable.lock() {
                    d.alerts = book.alerts.clone();
                    for e in &evs {
                        dropped += d.enqueue(e, &cfg.sinks);
                    }
                    shared.save(&d);
                }
                if dropped > 0 {
                    tracing::error!(dropped, "Outbox full for a sink; the oldest notifications were dropped.");
                }
                for e in evs {
                    tracing::info!(status = e.status.as_str(), kind = %e.kind, severity = %e.severity, subject = %e.subject, fingerprint = %e.fingerprint, "Alert {}.", e.status.as_str());
                    m.event(e.status.as_str());
                    if let Some(tx) = &events {
                        let _ = tx.send(e);
                    }
                }
                for n in &notifies {
                    n.notify_one();
                }
                let (pending, firing) = book.counts();
                Metrics::set(&m.alerts_pending, pending as u64);
                Metrics::set(&m.alerts_firing, firing as u64);
                let (series, cells) = store.size();
                Metrics::set(&m.series, series as u64);
                Metrics::set(&m.series_minutes, cells as u64);
                Metrics::set(&m.rows_too_old, store.too_old);
                if let Some(w) = store.watermark() {
                    Metrics::set(&m.watermark_ms, u64::try_from(w.0).unwrap_or(0));
                }
                let micros = started.elapsed().as_micros() as u64;
                Metrics::add(&m.ticks, 1);
                Metrics::add(&m.tick_micros_sum, micros);
                Metrics::set(&m.tick_micros_last, micros);
            }
        }
    }
    // Lines already read are folded in before the state is saved.
    rx.close();
    while let Some(input) = rx.recv().await {
        if let Input::Lines(c) = input {
            store.ingest_ndjson(&c.file, &c.bytes, c.first_line);
        }
    }
    if let Ok(d) = shared.durable.lock() {
        shared.save(&d);
    }
    Ok(())
}

/// Runs the autonomy policy on the findings the engine hands over.
async fn act_task(
    mut actor: act::Actor,
    mut rx: mpsc::Receiver<(Snapshot, Vec<crate::model::Finding>)>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    loop {
        let (snapshot, findings) = tokio::select! {
            _ = shutdown.cancelled() => break,
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let now = shared.clock.now().0;
        for step in actor.consider(&snapshot, &findings, now, &shutdown).await {
            match step {
                act::Step::Applied { proposal, audit } => {
                    tracing::warn!(%proposal, %audit, "Autonomous remediation applied (audited).")
                }
                act::Step::Refused { proposal, why } => {
                    tracing::debug!(%proposal, %why, "Autonomy policy refused a proposal.")
                }
                act::Step::Failed { proposal, why } => {
                    tracing::error!(%proposal, why = %crate::model::redact::scrub(&why), "Autonomous remediation failed.")
                }
            }
        }
    }
}

/// Host CPU and memory as metric series for the analysis.
fn sample_host(
    host: &mut metrics::HostSampler,
    m: &Metrics,
    now: Timestamp,
    retention_minutes: i64,
    series: &mut Vec<crate::model::MetricSeries>,
) {
    let Some((cpu, mem)) = host.sample(m) else {
        return;
    };
    if series.is_empty() {
        let name = sysinfo::System::host_name().unwrap_or_else(|_| "host".into());
        for metric in ["HostCpuPercent", "HostMemoryPercent"] {
            series.push(crate::model::MetricSeries {
                resource: Some(name.clone()),
                source: crate::model::MetricSource::Other,
                name: metric.into(),
                unit: Some("Percent".into()),
                aggregation: "average".into(),
                origin: crate::model::Origin::file("sysinfo"),
                ..Default::default()
            });
        }
    }
    let minute = Timestamp::from_minute(now.minute());
    for (s, v) in series.iter_mut().zip([cpu, mem]) {
        // One point per minute: the latest sample of the minute wins.
        match s.points.last_mut() {
            Some(p) if p.0 == minute => p.1 = v,
            _ => s.points.push((minute, v)),
        }
        let floor = Timestamp::from_minute(now.minute() - retention_minutes);
        let cut = s.points.partition_point(|p| p.0 < floor);
        s.points.drain(..cut);
    }
}

/// Delivers one sink's outbox entries, grouped, with backoff; keeps an
/// Alertmanager's firing alerts open by re-posting them.
async fn sink_task(
    spec: config::SinkSpec,
    delivery: config::Delivery,
    generator_url: String,
    shared: Arc<Shared>,
    client: reqwest::Client,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let am = matches!(spec.target, config::Target::Alertmanager(_));
    let mut failures: u32 = 0;
    let mut retry_at = tokio::time::Instant::now();
    let mut refresh_at = tokio::time::Instant::now() + delivery.resend;
    let far = Duration::from_secs(86_400 * 365);
    loop {
        let wake = if failures > 0 {
            retry_at
        } else {
            tokio::time::Instant::now() + far
        };
        let mut refresh = false;
        let mut last = false;
        tokio::select! {
            _ = shutdown.cancelled() => last = true,
            _ = notify.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
            _ = tokio::time::sleep_until(refresh_at), if am => refresh = true,
        }
        if refresh {
            refresh_at = tokio::time::Instant::now() + delivery.resend;
            if let config::Target::Alertmanager(url) = &spec.target {
                let body = match shared.durable.lock() {
                    Ok(d) => sink::alertmanager_refresh(
                        d.alerts
                            .values()
                            .filter(|a| a.state == alerts::AlertState::Firing),
                        shared.clock.now(),
                        delivery.resend,
                        &generator_url,
                    ),
                    Err(_) => continue,
                };
                if body.as_array().is_some_and(|a| !a.is_empty())
                    && let Err(e) = sink::post(&client, &sink::alertmanager_url(url), &body).await
                {
                    tracing::warn!(sink = %spec.name, error = %e, "Cannot refresh firing alerts.");
                }
            }
            continue;
        }
        if failures > 0 && tokio::time::Instant::now() < retry_at && !last {
            continue;
        }
        match flush(&spec, &delivery, &shared, &client).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                let backoff = delivery
                    .retry_initial
                    .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
                    .min(delivery.retry_max);
                retry_at = tokio::time::Instant::now() + backoff;
                shared.metrics.sink(&spec.name, 0, 1);
                tracing::warn!(sink = %spec.name, error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "Delivery failed; the notification stays in the outbox.");
            }
        }
        if last {
            break;
        }
    }
}

/// Delivers every queued entry of one sink in queue order, one request
/// per run of entries of the same group (so an alert's lifecycle is never
/// reordered); stops at the first failure. Each delivery is journalled
/// before it leaves the outbox, so a restart never sends it again.
async fn flush(
    spec: &config::SinkSpec,
    delivery: &config::Delivery,
    shared: &Shared,
    client: &reqwest::Client,
) -> anyhow::Result<()> {
    let mine: Vec<sink::Entry> = match shared.durable.lock() {
        Ok(d) => d
            .outbox
            .iter()
            .filter(|e| e.sink == spec.name)
            .cloned()
            .collect(),
        Err(_) => return Ok(()),
    };
    if mine.is_empty() {
        return Ok(());
    }
    let mut runs: Vec<(String, Vec<sink::Entry>)> = Vec::new();
    for e in mine {
        match runs.last_mut() {
            Some((g, v)) if *g == e.event.group => v.push(e),
            _ => runs.push((e.event.group.clone(), vec![e])),
        }
    }
    for (group, entries) in runs {
        let events: Vec<AlertEvent> = entries.iter().map(|e| e.event.clone()).collect();
        sink::deliver(
            client,
            &spec.target,
            &group,
            &events,
            shared.clock.now(),
            delivery.resend,
        )
        .await?;
        shared.metrics.sink(&spec.name, entries.len() as u64, 0);
        let ids: Vec<u64> = entries.iter().map(|e| e.id).collect();
        let journalled = match shared.acks.lock() {
            Ok(mut a) => a.record(&entries),
            Err(_) => Err(anyhow::anyhow!("the delivery journal lock is poisoned")),
        };
        shared.persisted("delivery journal", journalled);
        if let Ok(mut d) = shared.durable.lock() {
            d.outbox.retain(|e| !ids.contains(&e.id));
            shared.save(&d);
        }
    }
    Ok(())
}

/// Reads the baseline once, evaluates once and returns a summary (the
/// `--once` mode and the benchmark).
pub fn once(cfg: &DaemonConfig) -> anyhow::Result<serde_json::Value> {
    let started = std::time::Instant::now();
    let mut store = engine::Store::new(cfg.engine);
    store.set_future_limit(Some(Timestamp(
        Clock::new().now().0 + engine::FUTURE_TOLERANCE_MS,
    )));
    let mut tailer = tail::Tailer::new(tail::Checkpoints::default(), cfg.config_file.clone());
    let (_, notes) = tailer.scan(&cfg.paths, false);
    log_notes(&notes);
    loop {
        let mut chunks = Vec::new();
        let notes = tailer.poll(&mut chunks);
        if let Some(tail::Note::Error { path, error }) = notes.first() {
            anyhow::bail!("cannot read {}: {error}", path.display());
        }
        if chunks.is_empty() {
            break;
        }
        for c in chunks {
            store.ingest_ndjson(&c.file, &c.bytes, c.first_line);
        }
    }
    let statics = tailer.statics();
    let read = started.elapsed();
    let snap = read_statics(&statics);
    store.compact();
    let tick0 = std::time::Instant::now();
    let mut findings = if !cfg.paths.is_empty() || cfg.azure.is_empty() {
        store.evaluate(&snap)
    } else {
        Vec::new()
    };
    let tick = tick0.elapsed();
    let mut instances = Vec::new();
    if !cfg.azure.is_empty() {
        azure::poll_blocking(&cfg.azure, &cfg.state_dir, cfg.engine.active_minutes, |r| {
            instances.push(serde_json::json!({
                "instance": r.label, "id": r.service_id, "findings": r.findings.len(),
                "problems": r.problems, "config_changes": r.changes,
            }));
            findings.extend(r.findings);
            true
        })?;
    }
    for f in &mut findings {
        crate::model::redact::Scrub::scrub(f);
    }
    let (series, minutes) = store.size();
    Ok(serde_json::json!({
        "rows": store.rows,
        "rejected": store.rejected,
        "too_old": store.too_old,
        "future": store.future,
        "series": series,
        "series_minutes": minutes,
        "read_seconds": read.as_secs_f64(),
        "rows_per_second": store.rows as f64 / read.as_secs_f64().max(1e-9),
        "tick_seconds": tick.as_secs_f64(),
        "watermark": store.watermark(),
        "instances": instances,
        "findings": findings.iter().map(|f| serde_json::json!({
            "id": f.id, "kind": f.kind, "severity": f.severity, "subject": f.subject.to_string(), "summary": f.summary,
            "instance": f.instance,
        })).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests;
