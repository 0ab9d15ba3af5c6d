//! A live traffic feed for demos and tests: gateway-log rows (Log Analytics
//! `ApiManagementGatewayLogs` NDJSON) appended in real time, optionally
//! faster than real time (`speed`), with a backlog written first as the
//! daemon's baseline and 5xx incidents on a schedule.
//!
//! `rows` is pure (time in, text out, seeded randomness); `run` is the
//! writing edge. Timestamps are data time: with `speed = 60` one real
//! second writes one minute of traffic.

use anyhow::Context;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the feed writes.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveConfig {
    /// Instance folder; rows go to `logs/ApiManagementGatewayLogs.ndjson`.
    pub out: PathBuf,
    /// Data-time seconds per real second.
    pub speed: f64,
    /// Requests per (data) minute, over all operations.
    pub rate: u32,
    /// Operations (6 named ones; more are numbered).
    pub ops: usize,
    /// Data written at once before going live.
    pub backlog: Duration,
    /// First incident this long (data time) after the live start.
    pub incident_after: Duration,
    /// Incidents repeat this often (zero: once).
    pub incident_every: Duration,
    /// Each incident lasts this long (zero: never).
    pub incident_for: Duration,
    pub seed: u64,
    /// Write the backlog and stop.
    pub backlog_only: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            out: PathBuf::from("live"),
            speed: 1.0,
            rate: 600,
            ops: 6,
            backlog: Duration::from_secs(3600),
            incident_after: Duration::from_secs(600),
            incident_every: Duration::from_secs(3600),
            incident_for: Duration::from_secs(300),
            seed: 1,
            backlog_only: false,
        }
    }
}

/// (api, operation, method, path, backend, weight).
const CATALOG: [(&str, &str, &str, &str, &str, u32); 6] = [
    (
        "orders-api",
        "get-order",
        "GET",
        "/orders/{id}",
        "orders-app",
        30,
    ),
    (
        "orders-api",
        "create-order",
        "POST",
        "/orders",
        "orders-app",
        10,
    ),
    (
        "inventory-api",
        "check-stock",
        "GET",
        "/stock/{sku}",
        "inventory-app",
        25,
    ),
    (
        "inventory-api",
        "list-items",
        "GET",
        "/items",
        "inventory-app",
        10,
    ),
    (
        "catalog-api",
        "get-product",
        "GET",
        "/products/{id}",
        "catalog-web",
        20,
    ),
    (
        "catalog-api",
        "search-products",
        "GET",
        "/products",
        "catalog-web",
        5,
    ),
];

/// The operation incidents hit.
pub const INCIDENT_API: &str = "inventory-api";
pub const INCIDENT_OP: &str = "check-stock";

/// xorshift64*: small, seeded, good enough for traffic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Op {
    api: String,
    id: String,
    method: &'static str,
    path: String,
    backend: String,
    weight: u32,
}

fn catalog(n: usize) -> Vec<Op> {
    let mut ops: Vec<Op> = CATALOG
        .iter()
        .take(n.max(1))
        .map(|&(api, id, method, path, backend, weight)| Op {
            api: api.into(),
            id: id.into(),
            method,
            path: path.into(),
            backend: backend.into(),
            weight,
        })
        .collect();
    for i in CATALOG.len()..n {
        ops.push(Op {
            api: format!("api-{:03}", i / 10),
            id: format!("op-{i:04}"),
            method: "GET",
            path: format!("/r{i}/{{id}}"),
            backend: format!("backend-{:03}", i / 10),
            weight: 10,
        });
    }
    ops
}

/// True when data instant `t_ms` is inside an incident; `live0` is the
/// data instant the live part started at.
pub fn in_incident(cfg: &LiveConfig, live0: i64, t_ms: i64) -> bool {
    let len = cfg.incident_for.as_millis() as i64;
    if len == 0 {
        return false;
    }
    let first = live0 + cfg.incident_after.as_millis() as i64;
    if t_ms < first {
        return false;
    }
    let every = cfg.incident_every.as_millis() as i64;
    let into = if every > 0 {
        (t_ms - first) % every
    } else {
        t_ms - first
    };
    into < len
}

/// Generates the rows of data time `[from_ms, to_ms)`: requests evenly
/// spaced at `rate` per minute, operations drawn by weight. Pure.
pub fn rows(cfg: &LiveConfig, live0: i64, from_ms: i64, to_ms: i64, rng: &mut Rng) -> String {
    let ops = catalog(cfg.ops);
    let total_weight: u32 = ops.iter().map(|o| o.weight).sum();
    let step = 60_000.0 / f64::from(cfg.rate.max(1));
    let mut out = String::new();
    // Arrivals on a fixed grid from the epoch, so chunks join seamlessly.
    let mut k = (from_ms as f64 / step).ceil() as i64;
    loop {
        let t = (k as f64 * step) as i64;
        if t >= to_ms {
            break;
        }
        k += 1;
        let mut pick = (rng.next_u64() % u64::from(total_weight.max(1))) as u32;
        let op = ops
            .iter()
            .find(|o| {
                if pick < o.weight {
                    true
                } else {
                    pick -= o.weight;
                    false
                }
            })
            .unwrap_or(&ops[0]);
        let incident = op.api == INCIDENT_API && op.id == INCIDENT_OP && in_incident(cfg, live0, t);
        let backend_ms = (25.0 * (1.0 + rng.unit() * 1.5) * (1.0 + rng.unit())) as u32;
        let (code, backend_code, reason) = if incident && rng.unit() < 0.5 {
            if rng.unit() < 0.5 {
                (503, Some(503), "")
            } else {
                (502, None, "BackendConnectionFailure")
            }
        } else if rng.unit() < 0.001 {
            (500, Some(500), "")
        } else {
            (200, Some(200), "")
        };
        let total = backend_ms + 2 + (rng.next_u64() % 4) as u32;
        let ts = crate::model::Timestamp(t).to_rfc3339();
        let corr = rng.next_u64();
        let _ = write!(
            out,
            "{{\"TimeGenerated\":\"{ts}\",\"CorrelationId\":\"{corr:016x}\",\"Region\":\"West Europe\",\"IsRequestSuccess\":{},\"TotalTime\":{total},\"Method\":\"{}\",\"Url\":\"https://contoso.azure-api.net/{}{}\",\"ResponseCode\":{code}",
            code < 400,
            op.method,
            op.api.trim_end_matches("-api"),
            op.path
        );
        let _ = write!(
            out,
            ",\"BackendUrl\":\"https://{}.internal{}\"",
            op.backend, op.path
        );
        if let Some(b) = backend_code {
            let _ = write!(
                out,
                ",\"BackendResponseCode\":{b},\"BackendTime\":{backend_ms}"
            );
        }
        let _ = write!(
            out,
            ",\"ApiId\":\"{}\",\"OperationId\":\"{}\",\"BackendId\":\"{}\"",
            op.api, op.id, op.backend
        );
        if !reason.is_empty() {
            let _ = write!(
                out,
                ",\"LastErrorSource\":\"forward-request\",\"LastErrorReason\":\"{reason}\",\"LastErrorMessage\":\"connection refused\""
            );
        }
        out.push_str(",\"Type\":\"ApiManagementGatewayLogs\"}\n");
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes the backlog, then live rows every 100 ms until `shutdown`.
pub async fn run(cfg: LiveConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    if !(cfg.speed.is_finite() && cfg.speed > 0.0) {
        anyhow::bail!("--speed must be a positive number, got {}", cfg.speed);
    }
    let dir = cfg.out.join("logs");
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let path = dir.join("ApiManagementGatewayLogs.ndjson");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut rng = Rng::new(cfg.seed);
    let live0 = now_ms();
    let started = tokio::time::Instant::now();
    let mut cursor = live0 - cfg.backlog.as_millis() as i64;
    // The backlog, a data hour at a time.
    while cursor < live0 {
        let to = (cursor + 3_600_000).min(live0);
        file.write_all(rows(&cfg, live0, cursor, to, &mut rng).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        cursor = to;
    }
    file.flush()?;
    tracing::info!(file = %path.display(), backlog_s = cfg.backlog.as_secs(), "Backlog written.");
    if cfg.backlog_only {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let elapsed = started.elapsed().as_secs_f64();
        let target = live0 + (elapsed * cfg.speed * 1000.0) as i64;
        if target <= cursor {
            continue;
        }
        let text = rows(&cfg, live0, cursor, target, &mut rng);
        cursor = target;
        if !text.is_empty() {
            file.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    file.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_gateway_log_lines_at_the_rate() {
        let cfg = LiveConfig {
            rate: 120,
            ..LiveConfig::default()
        };
        // 2026-03-07T08:00Z: the readers reject times before 2000.
        let t0 = 1_772_870_400_000;
        let mut rng = Rng::new(1);
        let text = rows(&cfg, t0, t0, t0 + 60_000, &mut rng);
        assert_eq!(text.lines().count(), 120);
        let mut t = crate::model::Traffic::default();
        let mut r = crate::model::LoadReport::default();
        crate::collect::gateway_logs::parse_ndjson("x", text.as_bytes(), &mut t, &mut r);
        assert_eq!((t.rows, r.rejected), (120, 0), "{:?}", r.problems);
        assert!(crate::collect::gateway_logs::is_log_line(
            text.lines().next().unwrap().as_bytes()
        ));
        // Chunks join without gaps or duplicates.
        let mut rng = Rng::new(1);
        let a = rows(&cfg, t0, t0, t0 + 30_250, &mut rng);
        let b = rows(&cfg, t0, t0 + 30_250, t0 + 60_000, &mut rng);
        assert_eq!(a.lines().count() + b.lines().count(), 120);
    }

    #[test]
    fn incidents_follow_the_schedule() {
        let cfg = LiveConfig {
            incident_after: Duration::from_secs(60),
            incident_every: Duration::from_secs(600),
            incident_for: Duration::from_secs(120),
            ..LiveConfig::default()
        };
        assert!(!in_incident(&cfg, 0, 59_999));
        assert!(in_incident(&cfg, 0, 60_000));
        assert!(in_incident(&cfg, 0, 179_999));
        assert!(!in_incident(&cfg, 0, 180_000));
        assert!(in_incident(&cfg, 0, 660_000));
        let mut rng = Rng::new(3);
        let text = rows(&cfg, 0, 60_000, 180_000, &mut rng);
        let failing = text
            .lines()
            .filter(|l| l.contains("check-stock") && !l.contains("\"ResponseCode\":200"))
            .count();
        assert!(failing > 20, "{failing}");
    }
}
