//! The simulator: a realistic API Management instance with one injected
//! incident per scenario, written in the real export formats (gateway logs,
//! Azure Monitor metrics, ARM resources, policy XML, NSG, autoscale, activity
//! log) plus the ground truth a correct diagnosis must find.
//!
//! Pure and deterministic: the same (scenario, seed, scale, minutes) gives
//! the same bytes on every machine. There is no clock: the data ends at a
//! fixed instant derived from the seed (see `plan::end_minute`). The CLI
//! (`cli::simulate`) only writes what `generate` returns. Two edges live
//! here too: `live` writes a gateway-log feed in real time (`simulate --live`,
//! `daemon live`) and `standin` serves a scenario as a loopback ARM API.

mod activity;
mod catalog;
mod config;
mod json;
pub mod live;
mod logs;
mod metrics;
mod plan;
mod rng;
pub mod standin;
mod traffic;

pub use logs::LogShape;

use crate::model::{FindingKind, Timestamp, Window};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use traffic::Req;

/// Shortest span `generate` accepts; shorter requests are raised to it.
pub const MIN_MINUTES: u32 = 60;

/// The incidents the simulator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    BackendOom,
    PolicyTimeout,
    WrongRoute,
    NsgBlock,
    Capacity,
    RateLimit,
    Healthy,
    Misconfig,
    AppServiceDeploy,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::BackendOom,
        Scenario::PolicyTimeout,
        Scenario::WrongRoute,
        Scenario::NsgBlock,
        Scenario::Capacity,
        Scenario::RateLimit,
        Scenario::Healthy,
        Scenario::Misconfig,
        Scenario::AppServiceDeploy,
    ];

    /// The `--scenario` name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::BackendOom => "backend-oom",
            Scenario::PolicyTimeout => "policy-timeout",
            Scenario::WrongRoute => "wrong-route",
            Scenario::NsgBlock => "nsg-block",
            Scenario::Capacity => "capacity",
            Scenario::RateLimit => "rate-limit",
            Scenario::Healthy => "healthy",
            Scenario::Misconfig => "misconfig",
            Scenario::AppServiceDeploy => "app-service-deploy",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        let s = s.trim();
        Scenario::ALL
            .into_iter()
            .find(|x| x.name().eq_ignore_ascii_case(s))
    }

    /// One line for `simulate --list`.
    pub fn summary(self) -> &'static str {
        match self {
            Scenario::BackendOom => {
                "inventory container app leaks memory after a deployment, is OOM-killed and restarts; 502/503 on inventory-api/check-stock until rollback"
            }
            Scenario::PolicyTimeout => {
                "an API policy write lowers forward-request timeout 30 s -> 5 s on orders-api; 504 Timeout on search-orders minutes later"
            }
            Scenario::WrongRoute => {
                "an operation policy adds set-backend-service to the legacy catalog; catalog-api/get-product answers 404 from the wrong backend"
            }
            Scenario::NsgBlock => {
                "an NSG rule denies the APIM subnet -> payments subnet (https://10.1.2.4); BackendConnectionFailure 500/502 on payments-api"
            }
            Scenario::Capacity => {
                "traffic surge on a Standard instance at its autoscale maximum; Capacity >= 85 % for an hour, latency up on every operation"
            }
            Scenario::RateLimit => {
                "starter product's rate-limit-by-key lowered; 429 RateLimitExceeded surge on catalog-api for the partner subscription"
            }
            Scenario::Healthy => {
                "strong daily swing, isolated 500s, 401/404 noise, a harmless policy change, one rare operation failing 1 in 3 — no incident"
            }
            Scenario::Misconfig => {
                "healthy traffic, broken configuration: API policy without <base/> in inbound, plain-text secret, malformed operation policy file, NSG deny blocking certificate validation"
            }
            Scenario::AppServiceDeploy => {
                "a deployment of App Service site catalog-web breaks one endpoint: 503 on catalog-api/get-price, HealthCheckStatus falls to 0 and the working set drops; still going on"
            }
        }
    }

    /// Label mixed into every random stream, so scenarios differ.
    pub fn code(self) -> u64 {
        match self {
            Scenario::BackendOom => 1,
            Scenario::PolicyTimeout => 2,
            Scenario::WrongRoute => 3,
            Scenario::NsgBlock => 4,
            Scenario::Capacity => 5,
            Scenario::RateLimit => 6,
            Scenario::Healthy => 7,
            Scenario::Misconfig => 8,
            Scenario::AppServiceDeploy => 9,
        }
    }

    /// How the scenario's gateway logs are exported (variety on purpose:
    /// readers must handle every shape).
    pub fn log_shape(self) -> LogShape {
        match self {
            Scenario::BackendOom => LogShape::LogAnalyticsNdjson,
            Scenario::NsgBlock | Scenario::AppServiceDeploy => LogShape::LogAnalyticsNdjsonGzip,
            Scenario::RateLimit => LogShape::QueryTables,
            Scenario::PolicyTimeout
            | Scenario::Capacity
            | Scenario::Healthy
            | Scenario::Misconfig => LogShape::StorageGzip,
            Scenario::WrongRoute => LogShape::AzCli,
        }
    }

    /// (seed, scale, minutes) of the committed copy in `fixtures/scenarios/`.
    /// Kept small: every fixture folder stays well under 2 MB.
    pub fn fixture_params(self) -> (u64, f64, u32) {
        match self {
            Scenario::BackendOom => (11, 0.016, 240),
            Scenario::PolicyTimeout => (12, 0.1, 300),
            Scenario::WrongRoute => (13, 0.01, 240),
            Scenario::NsgBlock => (14, 0.1, 240),
            Scenario::Capacity => (15, 0.05, 300),
            Scenario::RateLimit => (16, 0.025, 240),
            Scenario::Healthy => (17, 0.1, 360),
            Scenario::Misconfig => (18, 0.08, 240),
            Scenario::AppServiceDeploy => (19, 0.05, 240),
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn default_tolerance() -> u32 {
    5
}

/// One finding a correct analysis must report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpectedFinding {
    pub kind: FindingKind,
    /// Subject keys that must be equal (`api`, `operation`, `backend`,
    /// `policy_scope`, `nsg`, `rule`, …); keys not listed are not compared.
    #[serde(default)]
    pub subject: BTreeMap<String, String>,
    /// When the problem was observable; `None` for configuration states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// How far a reported window's start and end may be from this one.
    #[serde(default = "default_tolerance")]
    pub tolerance_minutes: u32,
    /// Why the finding is expected, from the injected incident.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// One injected event of the ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub what: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// `expected.json`: the scenario's ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    pub scenario: String,
    pub seed: u64,
    pub scale: f64,
    pub minutes: u32,
    pub summary: String,
    /// The span the generated data covers.
    pub data_window: Window,
    pub findings: Vec<ExpectedFinding>,
    /// No finding whose kind `is_anomaly()` may be reported.
    pub forbid_anomalies: bool,
    /// Root-cause stories a correct diagnosis must tell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stories: Vec<ExpectedStory>,
    #[serde(default)]
    pub incidents: Vec<Incident>,
}

/// A root-cause story a correct analysis must tell: one story holds a
/// finding with these subject keys and names a suspect change whose
/// resource id contains `suspect`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpectedStory {
    pub subject: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

impl Expected {
    pub fn scenario(&self) -> Option<Scenario> {
        Scenario::parse(&self.scenario)
    }
}

/// Everything one generation produces.
struct Built {
    files: Vec<(String, Vec<u8>)>,
    truth: Expected,
}

fn build(scenario: Scenario, seed: u64, scale: f64, minutes: u32) -> Built {
    build_as(scenario, seed, scale, minutes, scenario.log_shape())
}

fn build_as(scenario: Scenario, seed: u64, scale: f64, minutes: u32, shape: LogShape) -> Built {
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    };
    let minutes = minutes.max(MIN_MINUTES);
    let plan = plan::Plan::new(scenario, seed, scale, minutes);
    let reqs = traffic::requests(&plan);
    let truth = ground_truth(&plan, &reqs, minutes, scale);
    let mut files = logs::write(shape, &reqs);
    files.extend(metrics::files(&plan, &reqs));
    files.extend(config::files(&plan));
    files.push(activity::file(&plan));
    files.push((
        "expected.json".to_string(),
        json::pretty(&serde_json::to_value(&truth).unwrap_or_default()).into_bytes(),
    ));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Built { files, truth }
}

/// Every file of the instance as (path relative to the output folder,
/// bytes), `expected.json` included. Gzip members have mtime 0, so the bytes
/// are stable.
pub fn generate(scenario: Scenario, seed: u64, scale: f64, minutes: u32) -> Vec<(String, Vec<u8>)> {
    build(scenario, seed, scale, minutes).files
}

/// `generate` and `truth` from one generation (the CLI writes the files and
/// prints the incidents).
pub fn generate_with_truth(
    scenario: Scenario,
    seed: u64,
    scale: f64,
    minutes: u32,
) -> (Vec<(String, Vec<u8>)>, Expected) {
    let b = build(scenario, seed, scale, minutes);
    (b.files, b.truth)
}

/// `generate_with_truth` with the logs written in `shape` instead of the
/// scenario's own (`simulate --log-shape`).
pub fn generate_with_truth_as(
    scenario: Scenario,
    seed: u64,
    scale: f64,
    minutes: u32,
    shape: LogShape,
) -> (Vec<(String, Vec<u8>)>, Expected) {
    let b = build_as(scenario, seed, scale, minutes, shape);
    (b.files, b.truth)
}

/// The ground truth of a generation: injected incidents and the findings a
/// correct analysis must report.
pub fn truth(scenario: Scenario, seed: u64, scale: f64, minutes: u32) -> Expected {
    build(scenario, seed, scale, minutes).truth
}

/// The demo: a backend running out of memory behind a 5xx spike, small
/// enough to load and analyse in well under 100 ms. No `expected.json`.
pub fn demo_files() -> Vec<(String, Vec<u8>)> {
    let (scenario, seed, scale, minutes) = DEMO;
    let mut files = generate(scenario, seed, scale, minutes);
    files.retain(|(p, _)| p != "expected.json");
    files
}

/// (scenario, seed, scale, minutes) of `demo_files`.
pub const DEMO: (Scenario, u64, f64, u32) = (Scenario::BackendOom, 1, 0.02, 180);

/// `[first, last + 1)` minute of the requests matching `pred`.
fn span(reqs: &[Req], pred: impl Fn(&Req) -> bool) -> Option<Window> {
    let mut it = reqs.iter().filter(|r| pred(r)).map(Req::minute);
    let first = it.next()?;
    let last = it.last().unwrap_or(first);
    Some(Window::minutes(first, last + 1))
}

fn subject(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn expect(
    kind: FindingKind,
    pairs: &[(&str, &str)],
    window: Option<Window>,
    tolerance: u32,
    why: &str,
) -> ExpectedFinding {
    ExpectedFinding {
        kind,
        subject: subject(pairs),
        window,
        tolerance_minutes: tolerance,
        why: why.to_string(),
    }
}

fn ground_truth(p: &plan::Plan, reqs: &[Req], minutes: u32, scale: f64) -> Expected {
    use FindingKind as K;
    let at = |m: i64| Timestamp::from_minute(m);
    let change = Window::minutes(p.change_minute(), p.change_minute() + 1);
    let change_at = Timestamp::from_millis(p.change_ms);
    // Observed from the first affected request; an incident still going on
    // when the data ends lasts to the end of the data.
    let injected = |f: &dyn Fn(&Req) -> bool| {
        span(reqs, |r| r.injected && f(r)).map(|w| {
            if p.recover >= p.end {
                Window::minutes(w.start.minute(), p.end)
            } else {
                w
            }
        })
    };
    let mut findings = Vec::new();
    let mut stories = Vec::new();
    let mut incidents = Vec::new();
    let mut incident = |what: String, start: Timestamp, end: Timestamp| {
        incidents.push(Incident { what, start, end });
    };
    match p.scenario {
        Scenario::BackendOom => {
            let spike = injected(&|r| r.op == catalog::O_CHECK_STOCK && r.code >= 500);
            findings.push(expect(
                K::ErrorSpike,
                &[("api", "inventory-api"), ("operation", "check-stock")],
                spike,
                5,
                "502 BackendConnectionFailure while the container restarts, 503 from the app under memory pressure",
            ));
            let first_kill = p.kills.first().copied().unwrap_or(p.incident);
            findings.push(expect(
                K::BackendUnhealthy,
                &[("backend", "inventory-app")],
                Some(Window::minutes(first_kill, p.recover)),
                10,
                "WorkingSetBytes at the 1 GiB limit, RestartCount > 0 every few minutes, 5xx from the app",
            ));
            incident(
                "deployment of revision inventory-app--v142 (memory leak): WorkingSetBytes climbs to the limit".into(),
                change_at,
                at(p.incident),
            );
            incident(
                format!("{} OOM kills, each followed by a restart", p.kills.len()),
                at(first_kill),
                at(p.recover),
            );
            incident(
                "rollback to inventory-app--v141; errors stop".into(),
                at(p.recover - 2),
                at(p.recover),
            );
        }
        Scenario::PolicyTimeout => {
            let timeouts = injected(&|r| r.code == 504);
            let slow_op = injected(&|r| r.code == 504 && r.op == catalog::O_SEARCH_ORDERS);
            findings.push(expect(
                K::BackendTimeout,
                &[("backend", "orders-app")],
                timeouts,
                5,
                "504 with LastErrorReason Timeout, BackendTime ~5000 ms, no BackendResponseCode",
            ));
            findings.push(expect(
                K::ErrorSpike,
                &[("api", "orders-api"), ("operation", "search-orders")],
                slow_op,
                5,
                "about 28 % of search-orders take longer than the new 5 s timeout",
            ));
            findings.push(expect(
                K::ConfigChange,
                &[(
                    "policy_scope",
                    &config::Scope::Api(catalog::A_ORDERS).display(),
                )],
                Some(change),
                5,
                "the API policy write that set forward-request timeout=\"5\" (was 30)",
            ));
            incident(
                "orders-api policy: forward-request timeout 30 s -> 5 s".into(),
                change_at,
                change_at,
            );
            if let Some(w) = timeouts {
                incident("504 Timeout on search-orders".into(), w.start, w.end);
            }
        }
        Scenario::WrongRoute => {
            let wrong = injected(&|r| r.op == catalog::O_GET_PRODUCT);
            findings.push(expect(
                K::RouteMismatch,
                &[("api", "catalog-api"), ("operation", "get-product")],
                None,
                5,
                "BackendId catalog-legacy / host catalog-legacy.azurewebsites.net, while the API's serviceUrl is catalog-web",
            ));
            findings.push(expect(
                K::ConfigChange,
                &[("policy_scope", &config::Scope::Operation(catalog::O_GET_PRODUCT).display())],
                Some(change),
                5,
                "the operation policy write that added set-backend-service backend-id=\"catalog-legacy\"",
            ));
            incident(
                "get-product policy routes to backend catalog-legacy".into(),
                change_at,
                change_at,
            );
            if let Some(w) = wrong {
                incident(
                    "get-product answered by the legacy catalog (88 % 404)".into(),
                    w.start,
                    w.end,
                );
            }
        }
        Scenario::NsgBlock => {
            let failing = injected(&|r| r.api() == "payments-api");
            findings.push(expect(
                K::ErrorSpike,
                &[("api", "payments-api")],
                failing,
                5,
                "every payments-api request fails with 500/502 BackendConnectionFailure after ~21 s",
            ));
            findings.push(expect(
                K::BackendFailure,
                &[("backend", "payments-svc")],
                failing,
                5,
                "connection failures to https://10.1.2.4 (no BackendResponseCode)",
            ));
            findings.push(expect(
                K::NetworkGap,
                &[("nsg", catalog::NSG), ("rule", "deny-payments-subnet-outbound")],
                None,
                5,
                "outbound Deny 10.0.1.0/24 -> 10.1.2.0/24:443 at priority 105 blocks the gateway from the payments backend",
            ));
            incident(
                "NSG rule deny-payments-subnet-outbound written".into(),
                change_at,
                change_at,
            );
            if let Some(w) = failing {
                incident(
                    "payments-api BackendConnectionFailure".into(),
                    w.start,
                    w.end,
                );
            }
        }
        Scenario::Capacity => {
            let first = (p.start..p.end)
                .find(|m| p.capacity(*m) >= 85.0)
                .unwrap_or(p.incident);
            let w = Window::minutes(first, p.end);
            findings.push(expect(
                K::Capacity,
                &[],
                Some(w),
                10,
                "Capacity average >= 85 % sustained; Standard tier, 2 units, autoscale maximum 2 already reached",
            ));
            findings.push(expect(
                K::LatencyRegression,
                &[],
                Some(w),
                15,
                "gateway time (TotalTime - BackendTime) rises from ~3 ms to hundreds of ms on every operation",
            ));
            findings.push(expect(
                K::ScalingConfig,
                &[],
                None,
                5,
                "autoscale maximum (2) equals the current units while the gateway is saturated: scale out or raise the maximum",
            ));
            incident(
                "traffic surge x2.1 ramps in".into(),
                at(p.surge_start),
                at(p.incident),
            );
            incident("Capacity >= 85 %".into(), w.start, w.end);
        }
        Scenario::RateLimit => {
            let throttled = injected(&|r| r.code == 429);
            findings.push(expect(
                K::Quota,
                &[("api", "catalog-api")],
                throttled,
                5,
                "429 RateLimitExceeded from rate-limit-by-key (scope product) for subscription partner-acme",
            ));
            findings.push(expect(
                K::ConfigChange,
                &[("policy_scope", &config::Scope::Product("starter").display())],
                Some(change),
                5,
                "the product policy write that lowered rate-limit-by-key calls",
            ));
            incident(
                format!(
                    "starter product rate-limit-by-key {} -> {} calls per 300 s",
                    p.calls_before, p.calls_after
                ),
                change_at,
                change_at,
            );
            if let Some(w) = throttled {
                incident("429 surge on catalog-api".into(), w.start, w.end);
            }
        }
        Scenario::Misconfig => {
            findings.push(expect(
                K::PolicyInheritance,
                &[("policy_scope", &config::Scope::Api(catalog::A_PAYMENTS).display())],
                None,
                5,
                "the payments-api policy's <inbound> has no <base />: the global cors and X-Correlation-Id policies do not run",
            ));
            findings.push(expect(
                K::PolicyRisk,
                &[("policy_scope", &config::Scope::Api(catalog::A_SHIPPING).display())],
                None,
                5,
                "the shipping-api policy sends a bearer token written in plain text instead of the {{carrierhub-token}} named value",
            ));
            findings.push(expect(
                K::MalformedPolicy,
                &[("policy_scope", &config::Scope::Operation(catalog::O_CREATE_ORDER).display())],
                None,
                5,
                "policies/apis/orders-api/operations/create-order.xml closes <set-header> with </set-heade>",
            ));
            findings.push(expect(
                K::NetworkGap,
                &[("nsg", catalog::NSG), ("rule", config::CERT_DENY_RULE)],
                None,
                5,
                "outbound Deny VirtualNetwork -> Internet at priority 4000 with no Internet:80 allow blocks certificate validation",
            ));
            incident(
                "payments-api policy written without <base /> in <inbound>".into(),
                change_at,
                change_at,
            );
        }
        Scenario::AppServiceDeploy => {
            let failing = injected(&|r| r.op == catalog::O_GET_PRICE && r.code == 503);
            findings.push(expect(
                K::ErrorSpike,
                &[("api", "catalog-api"), ("operation", "get-price")],
                failing,
                5,
                "the new build of catalog-web answers 503 on most get-price calls",
            ));
            findings.push(expect(
                K::BackendFailure,
                &[("backend", "catalog-web")],
                failing,
                10,
                "503 answered by the backend itself (BackendResponseCode 503) while its health check fails",
            ));
            findings.push(expect(
                K::BackendUnhealthy,
                &[("backend", "catalog-web")],
                failing,
                10,
                "HealthCheckStatus of site catalog-web falls to 0 and its MemoryWorkingSet drops after the deployment",
            ));
            stories.push(ExpectedStory {
                subject: subject(&[("backend", "catalog-web")]),
                suspect: Some("/sites/catalog-web/deployments/".into()),
                why: "the activity log's Microsoft.Web/sites/catalog-web/deployments/ID is a deployment of site catalog-web, the app behind backend catalog-web".into(),
            });
            incident(
                "deployment 9c03e7d1a45b of App Service site catalog-web".into(),
                change_at,
                change_at,
            );
            if let Some(w) = failing {
                incident(
                    "get-price answers 503; HealthCheckStatus 0; working set down (still going on)"
                        .into(),
                    w.start,
                    w.end,
                );
            }
        }
        Scenario::Healthy => {
            incident(
                "harmless inventory-api policy change (adds a Cache-Control header)".into(),
                change_at,
                change_at,
            );
            incident(
                "create-shipment: 1 failure in 3 requests (not an incident)".into(),
                at(p.incident),
                at(p.incident + 14),
            );
        }
    }
    // A symptom no request shows (too little traffic) cannot be required.
    findings.retain(|f| !f.kind.is_anomaly() || f.window.is_some());
    Expected {
        scenario: p.scenario.name().to_string(),
        seed: p.seed,
        scale,
        minutes,
        summary: p.scenario.summary().to_string(),
        data_window: Window::minutes(p.start, p.end),
        forbid_anomalies: matches!(p.scenario, Scenario::Healthy | Scenario::Misconfig),
        findings,
        stories,
        incidents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Read;

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(Scenario::parse(s.name()), Some(s));
            assert!(!s.summary().is_empty());
        }
        assert_eq!(Scenario::parse("BACKEND-OOM"), Some(Scenario::BackendOom));
        assert_eq!(Scenario::parse("nope"), None);
    }

    #[test]
    fn every_scenario_writes_parseable_files() {
        for s in Scenario::ALL {
            let files = generate(s, 5, 0.01, 120);
            let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
            for want in [
                "activity-log.json",
                "config/service.json",
                "config/backends.json",
                "metrics/apim-requests.json",
                "expected.json",
            ] {
                assert!(paths.contains(&want), "{s}: no {want} in {paths:?}");
            }
            assert!(paths.iter().any(|p| p.starts_with("logs/")), "{s}");
            assert!(paths.iter().any(|p| p.starts_with("policies/apis/")), "{s}");
            for (path, bytes) in &files {
                let text = if path.ends_with(".gz") {
                    let mut t = String::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_string(&mut t)
                        .unwrap();
                    t
                } else {
                    String::from_utf8(bytes.clone()).unwrap()
                };
                if path.ends_with(".json") {
                    serde_json::from_str::<Value>(&text)
                        .unwrap_or_else(|e| panic!("{s} {path}: {e}"));
                } else if path.ends_with(".ndjson")
                    || path.ends_with(".ndjson.gz")
                    || path.ends_with(".json.gz")
                {
                    for (i, line) in text.lines().enumerate() {
                        serde_json::from_str::<Value>(line)
                            .unwrap_or_else(|e| panic!("{s} {path}:{}: {e}", i + 1));
                    }
                } else {
                    assert!(path.ends_with(".xml"), "{path}");
                }
            }
        }
    }

    #[test]
    fn bad_parameters_fall_back_instead_of_panicking() {
        for scale in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
            let t = truth(Scenario::Healthy, 1, scale, 0);
            assert_eq!(t.minutes, MIN_MINUTES);
            assert_eq!(t.scale, 1.0);
            assert_eq!(t.data_window.duration_minutes(), i64::from(MIN_MINUTES));
        }
        // So little traffic that no payments request may fall in the
        // incident: symptoms nobody could observe are not expected.
        let t = truth(Scenario::NsgBlock, u64::MAX, 0.0001, 61);
        assert!(t.findings.iter().any(|f| f.kind == FindingKind::NetworkGap));
        assert!(
            !t.findings.iter().any(|f| f.kind.is_anomaly()),
            "{:?}",
            t.findings
        );
    }

    #[test]
    fn deterministic_per_seed() {
        let a = generate(Scenario::RateLimit, 3, 0.01, 90);
        let b = generate(Scenario::RateLimit, 3, 0.01, 90);
        assert_eq!(a, b);
        let c = generate(Scenario::RateLimit, 4, 0.01, 90);
        assert_ne!(a, c);
    }

    #[test]
    fn truth_matches_expected_json_and_scenarios() {
        for s in Scenario::ALL {
            let (seed, scale, minutes) = s.fixture_params();
            let files = generate(s, seed, scale, minutes);
            let (_, bytes) = files.iter().find(|(p, _)| p == "expected.json").unwrap();
            let parsed: Expected = serde_json::from_slice(bytes).unwrap();
            assert_eq!(parsed, truth(s, seed, scale, minutes), "{s}");
            assert_eq!(parsed.scenario(), Some(s));
            assert_eq!(
                parsed.forbid_anomalies,
                matches!(s, Scenario::Healthy | Scenario::Misconfig)
            );
            assert_eq!(parsed.findings.is_empty(), s == Scenario::Healthy, "{s}");
            for f in &parsed.findings {
                if let Some(w) = f.window {
                    assert!(w.start < w.end, "{s} {:?}", f.kind);
                    assert!(
                        w.start >= parsed.data_window.start && w.end <= parsed.data_window.end,
                        "{s} {:?}",
                        f.kind
                    );
                }
            }
            // Symptom findings must carry a window.
            for f in parsed.findings.iter().filter(|f| f.kind.is_anomaly()) {
                assert!(f.window.is_some(), "{s}: {:?} has no window", f.kind);
            }
        }
    }

    #[test]
    fn demo_is_small_and_has_no_truth() {
        let files = demo_files();
        assert!(files.iter().all(|(p, _)| p != "expected.json"));
        let total: usize = files.iter().map(|(_, b)| b.len()).sum();
        assert!(total < 2_000_000, "{total}");
    }
}
