//! Operations: the daemon's own counters in Prometheus text format on
//! `/metrics`, `/healthz`, and host/self sampling with sysinfo. The HTTP
//! server is a few lines on a tokio `TcpListener` (GET only, one request
//! per connection) that cannot be starved: at most `MAX_CONNECTIONS` at
//! once (more are answered 503 and closed), and a connection that has not
//! sent its request within `REQUEST_TIMEOUT`, or not taken the answer
//! within `WRITE_TIMEOUT`, is closed. `render` and `respond` are pure.
//! `/healthz` is 503 while the baseline is read and while the state
//! directory cannot be written (a restart would then repeat or lose
//! notifications).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Counters and gauges, shared by every task.
#[derive(Debug, Default)]
pub struct Metrics {
    pub lines_ingested: AtomicU64,
    pub records_rejected: AtomicU64,
    pub rows_too_old: AtomicU64,
    /// Rows stamped too far ahead of this host's clock (also rejected).
    pub rows_future: AtomicU64,
    /// Lines of `tail::MAX_LINE` bytes or more, skipped.
    pub lines_too_long: AtomicU64,
    /// NUL bytes skipped in followed files.
    pub nul_bytes: AtomicU64,
    /// Saves of the state directory that failed.
    pub state_save_failures: AtomicU64,
    /// Why the state directory cannot be written now (None: it can).
    pub persist_error: Mutex<Option<String>>,
    /// Open connections to this listener.
    pub http_connections: AtomicU64,
    /// Connections refused (over the cap) or closed for being too slow.
    pub http_rejected: AtomicU64,
    pub static_files_read: AtomicU64,
    /// Live Azure instances read (one per instance per poll).
    pub azure_reads: AtomicU64,
    /// Polls of Azure that failed as a whole (sign-in, nothing found).
    pub azure_poll_failures: AtomicU64,
    /// Resources of live instances that could not be read (403, 404, budget).
    pub azure_problems: AtomicU64,
    pub ticks: AtomicU64,
    /// Sum and last of tick durations, in microseconds.
    pub tick_micros_sum: AtomicU64,
    pub tick_micros_last: AtomicU64,
    pub alerts_pending: AtomicU64,
    pub alerts_firing: AtomicU64,
    pub outbox_size: AtomicU64,
    pub series: AtomicU64,
    pub series_minutes: AtomicU64,
    /// Data watermark, Unix milliseconds.
    pub watermark_ms: AtomicU64,
    pub ready: AtomicU64,
    /// Per sink: (delivered notifications, failed attempts).
    pub sinks: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Events emitted per status.
    pub events: Mutex<BTreeMap<&'static str, u64>>,
    /// Host and process gauges (name → value).
    pub host: Mutex<BTreeMap<&'static str, f64>>,
    /// Pages served as text (path → body): `/alerts/<fingerprint>` for each
    /// tracked alert (what `generatorURL` opens) and `/playbooks/<kind>`.
    pub pages: Mutex<BTreeMap<String, String>>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(gauge: &AtomicU64, v: u64) {
        gauge.store(v, Ordering::Relaxed);
    }

    /// Replaces the served pages.
    pub fn set_pages(&self, pages: BTreeMap<String, String>) {
        if let Ok(mut p) = self.pages.lock() {
            *p = pages;
        }
    }

    /// A served page, if there is one at `path`.
    pub fn page(&self, path: &str) -> Option<String> {
        self.pages.lock().ok()?.get(path).cloned()
    }

    pub fn sink(&self, name: &str, delivered: u64, failed: u64) {
        if let Ok(mut m) = self.sinks.lock() {
            let e = m.entry(name.to_string()).or_default();
            e.0 += delivered;
            e.1 += failed;
        }
    }

    pub fn event(&self, status: &'static str) {
        if let Ok(mut m) = self.events.lock() {
            *m.entry(status).or_default() += 1;
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut s = String::new();
        let mut one = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one(
            "apimedic_lines_ingested_total",
            "counter",
            "Gateway log rows accepted from followed files.",
            g(&self.lines_ingested).to_string(),
        );
        one(
            "apimedic_records_rejected_total",
            "counter",
            "Gateway log lines rejected (not a valid row).",
            g(&self.records_rejected).to_string(),
        );
        one(
            "apimedic_rows_too_old_total",
            "counter",
            "Rows older than the retention window, dropped.",
            g(&self.rows_too_old).to_string(),
        );
        one(
            "apimedic_rows_future_total",
            "counter",
            "Rows stamped more than the tolerance after this host's clock, rejected.",
            g(&self.rows_future).to_string(),
        );
        one(
            "apimedic_lines_too_long_total",
            "counter",
            "Lines of 4 MiB or more in followed files, skipped.",
            g(&self.lines_too_long).to_string(),
        );
        one(
            "apimedic_nul_bytes_skipped_total",
            "counter",
            "NUL bytes in followed files (crash holes), skipped.",
            g(&self.nul_bytes).to_string(),
        );
        one(
            "apimedic_state_save_failures_total",
            "counter",
            "Failed writes to the state directory (checkpoints, alert state, outbox).",
            g(&self.state_save_failures).to_string(),
        );
        one(
            "apimedic_state_persisted",
            "gauge",
            "1 when the last write to the state directory succeeded.",
            u8::from(
                self.persist_error
                    .lock()
                    .map(|e| e.is_none())
                    .unwrap_or(false),
            )
            .to_string(),
        );
        one(
            "apimedic_http_connections",
            "gauge",
            "Open connections to /metrics and /healthz.",
            g(&self.http_connections).to_string(),
        );
        one(
            "apimedic_http_rejected_total",
            "counter",
            "Connections refused over the cap or closed for being too slow.",
            g(&self.http_rejected).to_string(),
        );
        one(
            "apimedic_static_files_read_total",
            "counter",
            "Configuration, metric and activity files (re-)read.",
            g(&self.static_files_read).to_string(),
        );
        one(
            "apimedic_azure_reads_total",
            "counter",
            "Live Azure instances read (config, metrics, activity log), one per instance per poll.",
            g(&self.azure_reads).to_string(),
        );
        one(
            "apimedic_azure_poll_failures_total",
            "counter",
            "Polls of Azure that failed as a whole (sign-in, no instance found).",
            g(&self.azure_poll_failures).to_string(),
        );
        one(
            "apimedic_azure_problems_total",
            "counter",
            "Resources of live instances that could not be read (403, 404, throttled, over budget).",
            g(&self.azure_problems).to_string(),
        );
        one(
            "apimedic_ticks_total",
            "counter",
            "Detector runs.",
            g(&self.ticks).to_string(),
        );
        one(
            "apimedic_tick_duration_seconds_sum",
            "counter",
            "Total time spent in detector runs.",
            format!("{:.6}", g(&self.tick_micros_sum) as f64 / 1e6),
        );
        one(
            "apimedic_tick_duration_seconds",
            "gauge",
            "Duration of the last detector run.",
            format!("{:.6}", g(&self.tick_micros_last) as f64 / 1e6),
        );
        one(
            "apimedic_outbox_size",
            "gauge",
            "Notifications waiting for delivery.",
            g(&self.outbox_size).to_string(),
        );
        one(
            "apimedic_series",
            "gauge",
            "Traffic series (API, operation, backend) retained.",
            g(&self.series).to_string(),
        );
        one(
            "apimedic_series_minutes",
            "gauge",
            "Per-minute aggregates retained.",
            g(&self.series_minutes).to_string(),
        );
        one(
            "apimedic_watermark_seconds",
            "gauge",
            "Latest log timestamp seen (Unix seconds).",
            format!("{:.3}", g(&self.watermark_ms) as f64 / 1000.0),
        );
        let _ = writeln!(
            s,
            "# HELP apimedic_alerts Alerts by state.\n# TYPE apimedic_alerts gauge\napimedic_alerts{{state=\"pending\"}} {}\napimedic_alerts{{state=\"firing\"}} {}",
            g(&self.alerts_pending),
            g(&self.alerts_firing)
        );
        let _ = writeln!(
            s,
            "# HELP apimedic_alert_events_total Notifications emitted by status.\n# TYPE apimedic_alert_events_total counter"
        );
        if let Ok(m) = self.events.lock() {
            for status in ["firing", "resolved"] {
                let _ = writeln!(
                    s,
                    "apimedic_alert_events_total{{status=\"{status}\"}} {}",
                    m.get(status).copied().unwrap_or(0)
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP apimedic_sink_deliveries_total Notifications delivered per sink.\n# TYPE apimedic_sink_deliveries_total counter"
        );
        let sinks = self.sinks.lock().map(|m| m.clone()).unwrap_or_default();
        for (name, (ok, _)) in &sinks {
            let _ = writeln!(
                s,
                "apimedic_sink_deliveries_total{{sink=\"{}\"}} {ok}",
                escape(name)
            );
        }
        let _ = writeln!(
            s,
            "# HELP apimedic_sink_failures_total Failed delivery attempts per sink.\n# TYPE apimedic_sink_failures_total counter"
        );
        for (name, (_, bad)) in &sinks {
            let _ = writeln!(
                s,
                "apimedic_sink_failures_total{{sink=\"{}\"}} {bad}",
                escape(name)
            );
        }
        if let Ok(h) = self.host.lock() {
            for (name, v) in h.iter() {
                let _ = writeln!(s, "# TYPE {name} gauge\n{name} {v}");
            }
        }
        s
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Samples the host and this process (CPU %, memory) into `metrics.host`;
/// returns (host CPU %, host memory used %) for the analysis.
pub struct HostSampler {
    sys: Option<sysinfo::System>,
    pid: Option<sysinfo::Pid>,
}

impl HostSampler {
    pub fn new() -> Self {
        HostSampler {
            sys: sysinfo::System::new().ok(),
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    pub fn sample(&mut self, metrics: &Metrics) -> Option<(f64, f64)> {
        let sys = self.sys.as_mut()?;
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let cpu = f64::from(sys.global_cpu_usage());
        let total = sys.total_memory() as f64;
        let mem = if total > 0.0 {
            sys.used_memory() as f64 / total * 100.0
        } else {
            0.0
        };
        let mut g: Vec<(&'static str, f64)> = vec![
            ("apimedic_host_cpu_percent", cpu),
            ("apimedic_host_memory_used_percent", mem),
        ];
        if let Ok(l) = sysinfo::System::load_average() {
            g.push(("apimedic_host_load1", l.one));
        }
        if let Some(pid) = self.pid {
            sys.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), false);
            if let Some(p) = sys.process(pid) {
                g.push(("apimedic_process_resident_memory_bytes", p.memory() as f64));
                g.push(("apimedic_process_cpu_percent", f64::from(p.cpu_usage())));
            }
        }
        if let Ok(mut h) = metrics.host.lock() {
            h.extend(g);
        }
        Some((cpu, mem))
    }
}

impl Default for HostSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// The answer to one request line: (status line, content type, body).
pub fn respond(request_line: &str, metrics: &Metrics) -> (&'static str, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET", "/healthz") => {
            let persist = metrics.persist_error.lock().ok().and_then(|e| e.clone());
            if let Some(e) = persist {
                (
                    "503 Service Unavailable",
                    "text/plain",
                    format!(
                        "state directory not writable: {e}\nalerts are still evaluated and delivered, but a restart would lose or repeat notifications\n"
                    ),
                )
            } else if metrics.ready.load(Ordering::Relaxed) > 0 {
                ("200 OK", "text/plain", "ok\n".into())
            } else {
                (
                    "503 Service Unavailable",
                    "text/plain",
                    "starting: reading the baseline\n".into(),
                )
            }
        }
        ("GET", p) if metrics.page(p).is_some() => (
            "200 OK",
            "text/plain; charset=utf-8",
            metrics.page(p).unwrap_or_default(),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /metrics, /healthz, /alerts or /playbooks/<kind>\n".into(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET is served\n".into(),
        ),
    }
}

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// The longest a client may take to send its request (all of it).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest a client may take to read the answer.
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `/metrics` and `/healthz` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    metrics: std::sync::Arc<Metrics>,
    shutdown: CancellationToken,
) {
    serve_with(
        listener,
        metrics,
        shutdown,
        MAX_CONNECTIONS,
        REQUEST_TIMEOUT,
    )
    .await
}

/// `serve` with its limits given (tests use small ones).
pub async fn serve_with(
    listener: TcpListener,
    metrics: std::sync::Arc<Metrics>,
    shutdown: CancellationToken,
    max_connections: usize,
    request_timeout: std::time::Duration,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(max_connections));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let mut sock = match accepted {
            Ok((sock, _)) => sock,
            Err(_) => {
                // Out of file descriptors (or a reset): wait, never spin.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            Metrics::add(&metrics.http_rejected, 1);
            let _ = sock.try_write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            drop(sock);
            continue;
        };
        let metrics = metrics.clone();
        Metrics::add(&metrics.http_connections, 1);
        tokio::spawn(async move {
            let _slot = permit;
            let head = tokio::time::timeout(request_timeout, read_head(&mut sock)).await;
            match head {
                Ok(Some(head)) => {
                    let line = head.lines().next().unwrap_or("");
                    let (status, ctype, body) = respond(line, &metrics);
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let write = async {
                        sock.write_all(resp.as_bytes()).await?;
                        sock.shutdown().await
                    };
                    if tokio::time::timeout(WRITE_TIMEOUT, write).await.is_err() {
                        Metrics::add(&metrics.http_rejected, 1);
                    }
                }
                Ok(None) => {}
                Err(_) => Metrics::add(&metrics.http_rejected, 1),
            }
            metrics.http_connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// The request head (up to 8 KiB, through its blank line); None when the
/// client closed first.
async fn read_head(sock: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    while n < buf.len() {
        match sock.read(&mut buf[n..]).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n")
            || buf[..n].windows(2).any(|w| w == b"\n\n")
        {
            break;
        }
    }
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        Metrics::add(&m.lines_ingested, 42);
        Metrics::set(&m.alerts_firing, 2);
        m.sink("am \"1\"", 3, 1);
        m.event("firing");
        let text = m.render();
        assert!(
            text.contains("apimedic_lines_ingested_total 42\n"),
            "{text}"
        );
        assert!(
            text.contains("apimedic_alerts{state=\"firing\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("apimedic_sink_failures_total{sink=\"am \\\"1\\\"\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("apimedic_alert_events_total{status=\"firing\"} 1\n"));
        assert!(text.contains("# TYPE apimedic_tick_duration_seconds gauge"));
    }

    #[test]
    fn healthz_waits_for_the_baseline() {
        let m = Metrics::default();
        assert_eq!(
            respond("GET /healthz HTTP/1.1", &m).0,
            "503 Service Unavailable"
        );
        Metrics::set(&m.ready, 1);
        assert_eq!(respond("GET /healthz HTTP/1.1", &m).0, "200 OK");
        assert_eq!(
            respond("POST /metrics HTTP/1.1", &m).0,
            "405 Method Not Allowed"
        );
        assert_eq!(respond("GET /nope HTTP/1.1", &m).0, "404 Not Found");
        // A state directory that cannot be written is not healthy.
        *m.persist_error.lock().unwrap() =
            Some("cannot write /s/alerts.tmp: No space left on device".into());
        let (status, _, body) = respond("GET /healthz HTTP/1.1", &m);
        assert_eq!(status, "503 Service Unavailable");
        assert!(body.contains("No space left"), "{body}");
        assert!(m.render().contains("apimedic_state_persisted 0\n"));
    }

    #[tokio::test]
    async fn idle_and_half_sent_connections_are_closed_and_capped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let m = std::sync::Arc::new(Metrics::default());
        Metrics::set(&m.ready, 1);
        let stop = CancellationToken::new();
        tokio::spawn(serve_with(
            l,
            m.clone(),
            stop.clone(),
            4,
            std::time::Duration::from_millis(300),
        ));
        // Four slow clients fill the cap; a fifth is answered 503 at once.
        let mut idle = Vec::new();
        for _ in 0..4 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /metr").await.unwrap();
            idle.push(s);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut text = String::new();
        let _ = extra.read_to_string(&mut text).await;
        assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
        // The slow ones are closed after the request timeout.
        for s in &mut idle {
            let mut b = Vec::new();
            let r = tokio::time::timeout(std::time::Duration::from_secs(3), s.read_to_end(&mut b))
                .await;
            assert!(r.is_ok(), "closed by the server");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(m.http_connections.load(Ordering::Relaxed), 0);
        // And a normal client is served again.
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET /healthz HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        ok.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(m.http_rejected.load(Ordering::Relaxed) >= 5);
        stop.cancel();
    }
}
