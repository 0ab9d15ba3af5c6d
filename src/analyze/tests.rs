//! End-to-end tests of `analyze`, `backend_map` and `stories` on small
//! snapshots built inline with a seeded generator.

use super::*;
use crate::model::{
    Api, Backend, Change, ChangeKind, FindingKind, Health, MetricSeries, MetricSource, Origin,
    PolicyDoc, PolicyScope, Request, Snapshot, Timestamp,
};

/// Minute 0 of the test day (2024-06-03T00:00Z).
const DAY: i64 = 28_622_880;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly normal (Irwin–Hall of four uniforms).
    fn normal(&mut self) -> f64 {
        (self.next() + self.next() + self.next() + self.next() - 2.0) * 1.732
    }
}

/// One simulated operation.
#[derive(Clone)]
struct Op {
    api: &'static str,
    op: &'static str,
    host: &'static str,
    /// Requests per minute at the daily peak.
    peak: f64,
    median_ms: f64,
    error_rate: f64,
}

/// What to inject into minute `m` of operation `op`: (error rate, latency
/// factor, timeout rate).
type Inject = dyn Fn(&str, i64) -> (Option<f64>, f64, f64);

fn simulate(ops: &[Op], minutes: i64, seed: u64, inject: &Inject) -> Snapshot {
    let mut s = Snapshot::default();
    let mut rng = Rng(seed | 1);
    for m in 0..minutes {
        // Strong daily swing: trough at 04:00, peak at 16:00.
        let hour = (m % 1440) as f64 / 60.0;
        let diurnal =
            0.15 + 0.85 * (0.5 - 0.5 * ((hour - 4.0) / 24.0 * std::f64::consts::TAU).cos());
        for o in ops {
            let (err, slow, timeout) = inject(o.op, m);
            let n = (o.peak * diurnal * (1.0 + 0.1 * rng.normal()))
                .max(0.0)
                .round() as u32;
            for i in 0..n {
                let t = Timestamp::from_minute(DAY + m).plus_minutes(0).millis()
                    + i64::from(i) * 60_000 / i64::from(n.max(1));
                // Latency rises 20% at peak load (healthy behaviour).
                let ms = o.median_ms * (1.0 + 0.2 * diurnal) * slow * (0.5 * rng.normal()).exp();
                let url = format!("https://{}/x", o.host);
                let mut r = Request {
                    time: Timestamp::from_millis(t),
                    api_id: o.api,
                    operation_id: o.op,
                    backend_url: &url,
                    response_code: 200,
                    backend_response_code: 200,
                    total_time_ms: ms as u32 + 2,
                    backend_time_ms: Some(ms as u32),
                    ..Request::default()
                };
                let x = rng.next();
                if x < timeout {
                    r.response_code = 504;
                    r.backend_response_code = 0;
                    r.last_error_reason = "Timeout";
                    r.backend_time_ms = Some(30_000);
                    r.total_time_ms = 30_002;
                } else if x < timeout + err.unwrap_or(o.error_rate) {
                    r.response_code = 503;
                    r.backend_response_code = 503;
                }
                let line = (m * 1000 + i64::from(i)) as u32;
                s.traffic.add(&r, || Origin::at_line("test.ndjson", line));
            }
        }
    }
    s
}

fn shop() -> Vec<Op> {
    vec![
        Op {
            api: "shop",
            op: "get-product",
            host: "catalog.internal",
            peak: 120.0,
            median_ms: 20.0,
            error_rate: 0.002,
        },
        Op {
            api: "shop",
            op: "search",
            host: "search.internal",
            peak: 60.0,
            median_ms: 80.0,
            error_rate: 0.002,
        },
        Op {
            api: "inventory",
            op: "check-stock",
            host: "inventory-app.internal",
            peak: 30.0,
            median_ms: 15.0,
            error_rate: 0.002,
        },
        Op {
            api: "shop",
            op: "rare",
            host: "catalog.internal",
            peak: 0.8,
            median_ms: 50.0,
            error_rate: 0.01,
        },
    ]
}

fn none(_: &str, _: i64) -> (Option<f64>, f64, f64) {
    (None, 1.0, 0.0)
}

fn anomalies(f: &[Finding]) -> Vec<&Finding> {
    f.iter().filter(|f| f.kind.is_anomaly()).collect()
}

#[test]
fn healthy_day_with_swings_and_sporadic_errors_has_no_anomaly() {
    for seed in [1, 2, 3] {
        let s = simulate(&shop(), 1440, seed, &none);
        let f = analyze(&s, &Options::default());
        assert!(
            anomalies(&f).is_empty(),
            "seed {seed}: {:#?}",
            anomalies(&f).iter().map(|f| &f.summary).collect::<Vec<_>>()
        );
        let map = backend_map(&s);
        assert_eq!(map.len(), 4);
        assert!(
            map.iter()
                .all(|e| e.health == Health::Healthy || e.requests < 100)
        );
    }
}

#[test]
fn finds_a_ten_minute_error_spike_with_start_end_peak_and_share() {
    let inject = |op: &str, m: i64| {
        if op == "check-stock" && (600..610).contains(&m) {
            (Some(0.38), 1.0, 0.0)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let s = simulate(&shop(), 1440, 9, &inject);
    let f = analyze(&s, &Options::default());
    let a = anomalies(&f);
    let spike = a
        .iter()
        .find(|f| f.kind == FindingKind::ErrorSpike)
        .expect("a spike");
    assert_eq!(spike.subject.operation.as_deref(), Some("check-stock"));
    let w = spike.window.unwrap();
    assert!((w.start.minute() - (DAY + 600)).abs() <= 2, "{w:?}");
    assert!((w.end.minute() - (DAY + 610)).abs() <= 2, "{w:?}");
    let v = &spike.evidence[0].values;
    assert!(
        v["share_affected"] > 0.2 && v["share_affected"] < 0.6,
        "{v:?}"
    );
    assert!(v["peak_rate"] >= v["share_affected"]);
    assert!(!spike.evidence[0].records.is_empty());
    assert_eq!(
        spike.evidence[0].records[0].origin.file, "test.ndjson",
        "records carry file:line"
    );
    // The backend serves one operation, so its failure is reported too and
    // the story ties them together.
    assert!(a.iter().all(|f| matches!(
        f.kind,
        FindingKind::ErrorSpike | FindingKind::BackendFailure
    )));
    let st = stories(&s, &f);
    assert_eq!(st.len(), 1, "{st:#?}");
    assert!(st[0].findings.contains(&spike.id));
}

/// Memory and time follow the rows, not the span: a day with a spike plus
/// a few requests decades and centuries away gives the same findings on an
/// axis of about a day, where a dense axis would be billions of minutes.
#[test]
fn rows_far_apart_keep_the_axis_short_and_the_findings_unchanged() {
    let inject = |op: &str, m: i64| {
        if op == "check-stock" && (600..610).contains(&m) {
            (Some(0.38), 1.0, 0.0)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let s = simulate(&shop(), 1440, 9, &inject);
    let base = analyze(&s, &Options::default());
    let mut far = s.clone();
    // 1970, 2000 and year 9999: the analyzer does not judge plausibility
    // (the readers do), it must only not be sized by it.
    for minute in [0, 15_778_080, 4_223_371_679] {
        let r = Request {
            time: Timestamp::from_minute(minute),
            api_id: "orders-api",
            operation_id: "get-order",
            backend_url: "https://orders.internal/x",
            response_code: 200,
            backend_response_code: 200,
            total_time_ms: 20,
            backend_time_ms: Some(18),
            ..Request::default()
        };
        far.traffic.add(&r, || Origin::at_line("far.ndjson", 1));
    }
    let options = Options::default();
    let ctx = Ctx::new(&far, &options);
    assert!(
        ctx.len <= 1440 + 3 * (axis::MAX_GAP + 1),
        "axis of {} minutes",
        ctx.len
    );
    let f = analyze(&far, &options);
    let key = |f: &[Finding]| -> Vec<(FindingKind, Option<Window>, String)> {
        anomalies(f)
            .iter()
            .map(|f| (f.kind, f.window, format!("{:?}", f.subject)))
            .collect()
    };
    assert_eq!(key(&f), key(&base));
    assert!(key(&f).iter().any(|k| k.0 == FindingKind::ErrorSpike));
}

#[test]
fn one_failure_in_three_requests_is_not_a_spike() {
    let mut s = Snapshot::default();
    for (i, code) in [200u16, 503, 200].into_iter().enumerate() {
        let r = Request {
            time: Timestamp::from_minute(DAY + i as i64),
            api_id: "a",
            operation_id: "quiet",
            backend_url: "https://q.internal/x",
            response_code: code,
            backend_response_code: code,
            total_time_ms: 10,
            ..Request::default()
        };
        s.traffic.add(&r, Origin::default);
    }
    let f = analyze(&s, &Options::default());
    assert!(anomalies(&f).is_empty(), "{f:#?}");
}

fn timeout_policy(secs: u32) -> String {
    format!(
        "<policies>\n  <inbound>\n    <base />\n  </inbound>\n  <backend>\n    <forward-request timeout=\"{secs}\" />\n  </backend>\n  <outbound>\n    <base />\n  </outbound>\n</policies>"
    )
}

#[test]
fn timeouts_name_the_policy_timeout_its_scope_and_last_change() {
    let inject = |op: &str, m: i64| {
        if op == "search" && (900..912).contains(&m) {
            (None, 1.0, 0.5)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let mut s = simulate(&shop(), 1440, 5, &inject);
    s.policies.push(PolicyDoc {
        scope: PolicyScope::Operation("shop".into(), "search".into()),
        xml: timeout_policy(30),
        format: "rawxml".into(),
        origin: Origin::at_line("policies/search.xml", 1),
    });
    // An earlier write set 120 s; the activity log's Started event of the
    // new write comes 20 s before its Succeeded event, and neither carries
    // the old XML.
    s.changes.push(Change {
        time: Timestamp::from_minute(DAY + 600),
        status: Some("Succeeded".into()),
        policy_after: Some(timeout_policy(120)),
        kind: ChangeKind::Config,
        operation: "Microsoft.ApiManagement/service/apis/operations/policies/write".into(),
        policy_scope: Some(PolicyScope::Operation("shop".into(), "search".into())),
        ..Change::default()
    });
    s.changes.push(Change {
        time: Timestamp::from_millis(Timestamp::from_minute(DAY + 894).millis() - 20_000),
        status: Some("Started".into()),
        policy_before: None,
        policy_after: Some(timeout_policy(30)),
        kind: ChangeKind::Config,
        operation: "Microsoft.ApiManagement/service/apis/operations/policies/write".into(),
        policy_scope: Some(PolicyScope::Operation("shop".into(), "search".into())),
        ..Change::default()
    });
    s.changes.push(Change {
        time: Timestamp::from_minute(DAY + 894).plus_minutes(0),
        kind: ChangeKind::Config,
        operation: "Microsoft.ApiManagement/service/apis/operations/policies/write".into(),
        status: Some("Succeeded".into()),
        caller: Some("ops@contoso.com".into()),
        policy_scope: Some(PolicyScope::Operation("shop".into(), "search".into())),
        policy_after: Some(timeout_policy(30)),
        policy_before: None,
        origin: Origin::at_line("activity.json", 4),
        ..Change::default()
    });
    let f = analyze(&s, &Options::default());
    let t = f
        .iter()
        .find(|f| f.kind == FindingKind::BackendTimeout)
        .expect("timeout finding");
    assert_eq!(t.subject.backend.as_deref(), Some("search.internal"));
    assert!(
        t.summary.contains("30 s forward-request timeout"),
        "{}",
        t.summary
    );
    assert!(t.summary.contains("operation:shop/search"), "{}", t.summary);
    assert!(t.summary.contains("ops@contoso.com"), "{}", t.summary);
    assert!(t.summary.contains("was 120 s"), "{}", t.summary);
    // The 504s are also the operation's 5xx spike, told in the same story.
    let spike = f
        .iter()
        .find(|f| f.kind == FindingKind::ErrorSpike)
        .expect("spike");
    assert_eq!(spike.subject.operation.as_deref(), Some("search"));
    let c = f
        .iter()
        .find(|f| f.kind == FindingKind::ConfigChange)
        .expect("config change");
    assert!(c.summary.contains("120 s → 30 s"), "{}", c.summary);
    let diff = c.evidence[0].excerpt.as_deref().unwrap();
    assert!(
        diff.contains("-<forward-request timeout=\"120\" />"),
        "{diff}"
    );
    assert!(
        diff.contains("+<forward-request timeout=\"30\" />"),
        "{diff}"
    );
    let st = stories(&s, &f);
    let story = &st[0];
    assert!(story.title.contains("policy change"), "{}", story.title);
    assert!(
        story.title.contains("timeouts on backend search.internal"),
        "{}",
        story.title
    );
    assert_eq!(story.findings[0], c.id, "cause first");
    assert!(story.findings.contains(&spike.id));
    assert_eq!(story.suspects.len(), 1);
    assert_eq!(story.suspects[0].lead_minutes, 6);
    assert!(story.suspects[0].diff.is_some());
}

fn metric(name: &str, unit: &str, agg: &str, points: Vec<(i64, f64)>) -> MetricSeries {
    MetricSeries {
        resource: Some("inventory-app".into()),
        resource_id: Some(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/inventory-app"
                .into(),
        ),
        source: MetricSource::BackendApp,
        name: name.into(),
        unit: Some(unit.into()),
        aggregation: agg.into(),
        points: points
            .into_iter()
            .map(|(m, v)| (Timestamp::from_minute(DAY + m), v))
            .collect(),
        origin: Origin::file("metrics/inventory-app.json"),
        ..MetricSeries::default()
    }
}

#[test]
fn out_of_memory_backend_is_one_sentence_and_one_story() {
    let inject = |op: &str, m: i64| {
        if op == "check-stock" && (1380..1440).contains(&m) {
            (Some(0.37), 1.0, 0.0)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let mut s = simulate(&shop(), 1440, 11, &inject);
    s.metrics.push(metric(
        "RestartCount",
        "Count",
        "total",
        (1300..1440)
            .map(|m| (m, if m % 15 == 0 && m > 1375 { 1.0 } else { 0.0 }))
            .collect(),
    ));
    s.metrics.push(metric(
        "MemoryPercentage",
        "Percent",
        "average",
        (1300..1440)
            .map(|m| (m, 60.0 + (m - 1300) as f64 * 0.28))
            .collect(),
    ));
    let f = analyze(&s, &Options::default());
    let fail = f
        .iter()
        .find(|f| f.kind == FindingKind::BackendFailure)
        .expect("backend failure");
    assert!(
        fail.summary
            .starts_with("backend inventory-app.internal failed 3"),
        "{}",
        fail.summary
    );
    assert!(
        fail.summary.contains("with out-of-memory restarts"),
        "{}",
        fail.summary
    );
    assert!(
        fail.summary
            .contains("this matches the 5xx spike on inventory/check-stock"),
        "{}",
        fail.summary
    );
    assert!(f.iter().any(|f| f.kind == FindingKind::BackendUnhealthy));
    let st = stories(&s, &f);
    assert!(st[0].title.contains("out of memory"), "{}", st[0].title);
    assert!(st[0].findings.len() >= 3, "{:?}", st[0].findings);
}

#[test]
fn sustained_latency_regression_is_found_against_its_own_baseline() {
    let inject = |op: &str, m: i64| {
        if op == "get-product" && (700..740).contains(&m) {
            (None, 3.0, 0.0)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let s = simulate(&shop(), 1440, 13, &inject);
    let f = analyze(&s, &Options::default());
    let a = anomalies(&f);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].kind, FindingKind::LatencyRegression);
    let w = a[0].window.unwrap();
    assert!(
        w.start.minute() >= DAY + 695 && w.end.minute() <= DAY + 745,
        "{w:?}"
    );
    assert!(a[0].evidence[0].values["ratio"] > 2.0);
}

/// A p95 that climbs over hours on a low-traffic operation (about one
/// request a minute) is found on its own traffic, while a loud error spike
/// happens on another API the same day.
#[test]
fn slow_latency_creep_on_a_quiet_operation_is_found_beside_a_loud_incident() {
    let mut ops = shop();
    ops.push(Op {
        api: "reports",
        op: "export",
        host: "reports.internal",
        peak: 1.6,
        median_ms: 120.0,
        error_rate: 0.0,
    });
    // export: latency ramps from 1x at 13:00 to 3x at 17:00, then stays;
    // check-stock: half its requests fail 14:00-14:30.
    let inject = |op: &str, m: i64| match op {
        "export" if m >= 780 => (None, 1.0 + 2.0 * ((m - 780) as f64 / 240.0).min(1.0), 0.0),
        "check-stock" if (840..870).contains(&m) => (Some(0.5), 1.0, 0.0),
        _ => (None, 1.0, 0.0),
    };
    for seed in [5, 6, 7] {
        let s = simulate(&ops, 1440, seed, &inject);
        let f = analyze(&s, &Options::default());
        assert!(
            f.iter().any(|f| f.kind == FindingKind::ErrorSpike
                && f.subject.operation.as_deref() == Some("check-stock")),
            "seed {seed}: the loud incident is found"
        );
        let creep: Vec<&Finding> = f
            .iter()
            .filter(|f| {
                f.kind == FindingKind::LatencyRegression
                    && f.subject.operation.as_deref() == Some("export")
            })
            .collect();
        assert_eq!(creep.len(), 1, "seed {seed}: {:#?}", anomalies(&f));
        let w = creep[0].window.unwrap();
        assert!(
            w.start.minute() >= DAY + 780 && w.start.minute() <= DAY + 1020,
            "seed {seed}: {w:?}"
        );
        // Nothing else is slow.
        assert!(
            f.iter()
                .filter(|f| f.kind == FindingKind::LatencyRegression)
                .all(|f| f.subject.operation.as_deref() == Some("export")),
            "seed {seed}: {:#?}",
            anomalies(&f)
        );
    }
    // The same quiet operation without the creep stays quiet.
    for seed in [5, 6, 7] {
        let s = simulate(&ops, 1440, seed, &none);
        let f = analyze(&s, &Options::default());
        assert!(
            anomalies(&f).is_empty(),
            "seed {seed}: {:#?}",
            anomalies(&f)
        );
    }
}

#[test]
fn traffic_to_an_unconfigured_backend_is_a_route_mismatch() {
    let mut ops = shop();
    ops.push(Op {
        api: "shop",
        op: "search",
        host: "search-old.internal",
        peak: 20.0,
        median_ms: 80.0,
        error_rate: 0.002,
    });
    let mut s = simulate(&ops, 120, 17, &none);
    s.apis.push(Api {
        id: "shop".into(),
        service_url: Some("https://search.internal/api".into()),
        ..Api::default()
    });
    s.backends.push(Backend {
        id: "search-backend".into(),
        url: Some("https://search.internal/api".into()),
        ..Backend::default()
    });
    let map = backend_map(&s);
    let e = map.iter().find(|e| e.operation == "search").unwrap();
    assert!(e.mismatch);
    assert_eq!(e.configured[0].backend, "search-backend");
    assert_eq!(e.observed.len(), 2);
    let f = analyze(&s, &Options::default());
    let m = f
        .iter()
        .find(|f| {
            f.kind == FindingKind::RouteMismatch && f.subject.operation.as_deref() == Some("search")
        })
        .expect("mismatch");
    assert!(m.summary.contains("search-old.internal"), "{}", m.summary);
    // get-product also routes through serviceUrl's host? No: its host is
    // catalog.internal, which the API's serviceUrl does not name either.
    assert!(
        map.iter()
            .find(|e| e.operation == "get-product")
            .unwrap()
            .mismatch
    );
}

#[test]
fn ranking_is_severity_then_confidence_then_time() {
    let mk = |sev, conf, start| {
        Finding::new(
            FindingKind::ErrorSpike,
            sev,
            crate::model::Subject::operation("a", &format!("{start}")),
            "x",
        )
        .confidence(conf)
        .window(Window::minutes(start, start + 1))
    };
    let mut f = vec![
        mk(crate::model::Severity::Medium, 0.9, 1),
        mk(crate::model::Severity::High, 0.5, 3),
        mk(crate::model::Severity::High, 0.9, 5),
        mk(crate::model::Severity::High, 0.9, 2),
    ];
    rank(&mut f);
    let order: Vec<i64> = f.iter().map(|f| f.window.unwrap().start.minute()).collect();
    assert_eq!(order, vec![2, 5, 3, 1]);
}

/// Runs the analysis on a generator file (`gen_gateway_logs.py`), scores it
/// against the truth sidecar and prints precision and recall. Manual:
/// `APIMEDIC_GEN=/tmp/gen7.ndjson cargo test --release --lib
/// analyze::tests::generator -- --ignored --nocapture`.
#[test]
#[ignore]
fn generator() {
    let Ok(path) = std::env::var("APIMEDIC_GEN") else {
        eprintln!("APIMEDIC_GEN not set; skipping");
        return;
    };
    for path in path.split(',') {
        let s = load_ndjson(path);
        let t0 = std::time::Instant::now();
        let o = Options::default();
        let ctx = Ctx::new(&s, &o);
        let t_rollup = t0.elapsed();
        let t1 = std::time::Instant::now();
        let sp = spikes::findings(&ctx);
        let t_spikes = t1.elapsed();
        let t1 = std::time::Instant::now();
        let _ = backends::findings(&ctx, &sp);
        let t_backends = t1.elapsed();
        let t1 = std::time::Instant::now();
        let _ = latency::findings(&ctx);
        let t_latency = t1.elapsed();
        eprintln!(
            "rollup {t_rollup:?}, spikes {t_spikes:?}, backends {t_backends:?}, latency {t_latency:?}"
        );
        let t0 = std::time::Instant::now();
        let f = analyze(&s, &Options::default());
        let took = t0.elapsed();
        let truth: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{path}.truth.json")).unwrap())
                .unwrap();
        let incidents = truth["incidents"].as_array().unwrap();
        let mut hit = vec![false; incidents.len()];
        let mut tp = 0;
        let a = anomalies(&f);
        for x in &a {
            let w = x.window.unwrap();
            let matched = incidents.iter().enumerate().find(|(_, i)| {
                let s = crate::model::parse_timestamp(i["start"].as_str().unwrap()).unwrap();
                let e = crate::model::parse_timestamp(i["end"].as_str().unwrap()).unwrap();
                let iw = Window { start: s, end: e };
                let same = x.subject.operation.as_deref() == i["operation_id"].as_str()
                    || x.subject.backend.as_deref() == i["backend_host"].as_str()
                    || i["affected_operations"].as_array().is_some_and(|v| {
                        v.iter()
                            .any(|o| o.as_str() == x.subject.operation.as_deref())
                    });
                same && w.overlaps(&iw)
            });
            match matched {
                Some((k, _)) => {
                    hit[k] = true;
                    tp += 1;
                }
                None => eprintln!("  FALSE POSITIVE: {}", x.summary),
            }
            eprintln!("  {} {} | {}", x.kind, x.severity, x.summary);
        }
        let recall = hit.iter().filter(|h| **h).count() as f64 / hit.len() as f64;
        let precision = if a.is_empty() {
            1.0
        } else {
            tp as f64 / a.len() as f64
        };
        eprintln!(
            "{path}: {} rows, {} findings ({} anomalies), precision {precision:.2}, recall {recall:.2}, analyze {took:?}",
            s.traffic.rows,
            f.len(),
            a.len()
        );
        for st in stories(&s, &f) {
            eprintln!("  STORY {} — {}", st.title, st.narrative);
        }
    }
}

fn load_ndjson(path: &str) -> Snapshot {
    crate::collect::collect(&[std::path::PathBuf::from(path)]).unwrap()
}

/// Prints an operation's minutes and bursts from a scenario folder.
/// Manual: `APIMEDIC_SCENARIO=fixtures/scenarios/x APIMEDIC_OP=api/op cargo
/// test --release --lib analyze::tests::debug_scenario -- --ignored --nocapture`.
#[test]
#[ignore]
fn debug_scenario() {
    let (Ok(dir), Ok(op)) = (
        std::env::var("APIMEDIC_SCENARIO"),
        std::env::var("APIMEDIC_OP"),
    ) else {
        eprintln!("APIMEDIC_SCENARIO / APIMEDIC_OP not set; skipping");
        return;
    };
    let s = crate::collect::collect(&[std::path::PathBuf::from(dir)]).unwrap();
    let o = Options::default();
    let ctx = Ctx::new(&s, &o);
    eprintln!("span {} minutes from {}", ctx.len, ctx.time_of(0));
    for b in &ctx.rollup.backends {
        eprintln!("backend {} {:?}", b.backend, b.totals);
    }
    let (api, name) = op.split_once('/').unwrap();
    let r = ctx.rollup.operation(api, name).unwrap();
    eprintln!("backends {:?} totals {:?}", r.backends, r.totals);
    for m in &r.minutes {
        let st = &m.stats;
        eprintln!(
            "{} n={} 5xx={} to={} conn={} p95={:?} bp95={:?} {:?}",
            Timestamp::from_minute(m.minute).hhmm(),
            st.requests,
            st.status_5xx,
            st.timeouts,
            st.connection_failures,
            st.total_time.p95,
            st.backend_time.p95,
            st.error_reasons
        );
    }
    let n = ctx.dense(&r.minutes, |s| s.requests);
    let k = ctx.dense(&r.minutes, |s| s.status_5xx);
    let p = stats::BurstParams {
        alpha: ctx.alpha(ctx.tests()),
        ..stats::BurstParams::default()
    };
    for b in stats::bursts(&n, &k, &p) {
        eprintln!("burst {b:?}");
    }
}

/// Prints a backend's bursts of timeouts and failures from a scenario.
#[test]
#[ignore]
fn debug_backend() {
    let (Ok(dir), Ok(name)) = (
        std::env::var("APIMEDIC_SCENARIO"),
        std::env::var("APIMEDIC_BACKEND"),
    ) else {
        eprintln!("APIMEDIC_SCENARIO / APIMEDIC_BACKEND not set; skipping");
        return;
    };
    let s = crate::collect::collect(&[std::path::PathBuf::from(dir)]).unwrap();
    let o = Options::default();
    let ctx = Ctx::new(&s, &o);
    let b = ctx.rollup.backend(&name).unwrap();
    let n = ctx.dense(&b.minutes, |s| s.requests);
    let p = stats::BurstParams {
        alpha: ctx.alpha(ctx.tests()),
        ..stats::BurstParams::default()
    };
    for (what, k) in [
        ("timeouts", ctx.dense(&b.minutes, |s| s.timeouts)),
        ("failures", ctx.dense(&b.minutes, |s| s.failures())),
    ] {
        eprintln!(
            "{what}: {} of {}",
            k.iter().sum::<u64>(),
            n.iter().sum::<u64>()
        );
        for x in stats::bursts(&n, &k, &p) {
            eprintln!("  burst {} {x:?}", ctx.window(x.start, x.end).start);
        }
    }
    let r = ctx.rollup.operation("orders-api", "search-orders");
    if let Some(r) = r {
        let n = ctx.dense(&r.minutes, |s| s.requests);
        let k = ctx.dense(&r.minutes, |s| s.status_5xx);
        for x in stats::bursts(&n, &k, &p) {
            eprintln!("  op burst {} {x:?}", ctx.window(x.start, x.end).start);
        }
    }
}

#[test]
fn analyze_all_matches_the_three_separate_calls() {
    use crate::simulate::{Scenario, generate};
    for scenario in [
        Scenario::BackendOom,
        Scenario::Healthy,
        Scenario::PolicyTimeout,
    ] {
        let s = crate::collect::collect_files(&generate(scenario, 3, 0.05, 120));
        for options in [
            Options::default(),
            Options {
                since: s
                    .loaded
                    .time_range
                    .map(|w| Timestamp(w.start.0 + 30 * 60_000)),
                until: None,
            },
        ] {
            let (findings, map, stories) = analyze_all(&s, &options);
            let want = analyze(&s, &options);
            assert_eq!(findings, want, "{scenario:?}");
            assert_eq!(map, backend_map_scoped(&s, &options), "{scenario:?}");
            assert_eq!(
                stories,
                super::stories_in(&s, &options, &want),
                "{scenario:?}"
            );
        }
    }
}

/// A spike that ended hours before the data ends is `ended`, with when and
/// how long healthy since; the verdict says recovered, not unhealthy.
#[test]
fn an_incident_that_ended_is_recovered_one_that_runs_to_the_end_is_ongoing() {
    let ended = |op: &str, m: i64| {
        if op == "check-stock" && (600..610).contains(&m) {
            (Some(0.38), 1.0, 0.0)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let s = simulate(&shop(), 900, 9, &ended);
    let Judged {
        findings: f,
        stories: st,
        verdict: v,
        ..
    } = analyze_judged(&s, &Options::default());
    let spike = f
        .iter()
        .find(|f| f.kind == FindingKind::ErrorSpike)
        .expect("a spike");
    let t = spike.timeline.expect("a timeline");
    assert_eq!(t.state, crate::model::Activity::Ended, "{t:?}");
    let end = t.ended_at.unwrap();
    assert!((end.minute() - (DAY + 610)).abs() <= 2, "{t:?}");
    assert!(t.healthy_minutes().unwrap() > 250, "{t:?}");
    assert!(
        st.iter()
            .all(|s| s.timeline.is_some_and(|t| !t.is_ongoing())),
        "{st:#?}"
    );
    assert_eq!(v.state, crate::model::VerdictState::Recovered, "{v:#?}");
    assert!(v.recovered_at.is_some());
    assert_eq!(v.exit_code(&f, crate::model::Severity::High), 0);

    // The same spike still running when the data ends.
    let running = |op: &str, m: i64| {
        if op == "check-stock" && m >= 880 {
            (Some(0.38), 1.0, 0.0)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let s = simulate(&shop(), 900, 9, &running);
    let Judged {
        findings: f,
        verdict: v,
        ..
    } = analyze_judged(&s, &Options::default());
    let spike = f
        .iter()
        .find(|f| f.kind == FindingKind::ErrorSpike)
        .expect("a spike");
    assert!(spike.timeline.unwrap().is_ongoing(), "{spike:#?}");
    assert_eq!(v.state, crate::model::VerdictState::Unhealthy, "{v:#?}");
    assert!(v.since.is_some());
    assert_eq!(v.exit_code(&f, crate::model::Severity::High), 1);
}

/// No traffic, or a window with none: unknown, exit 2 — never healthy.
#[test]
fn nothing_to_judge_is_unknown() {
    let empty = Snapshot::default();
    let v = analyze_judged(&empty, &Options::default()).verdict;
    assert_eq!(v.state, crate::model::VerdictState::Unknown);
    assert_eq!(v.exit_code(&[], crate::model::Severity::High), 2);
    // Configuration alone (a policy, no traffic) is not an all-clear either.
    let mut config = Snapshot::default();
    config.policies.push(PolicyDoc {
        scope: PolicyScope::Global,
        xml: "<policies><inbound><base /></inbound></policies>".into(),
        format: "file".into(),
        origin: Origin::at_line("policy.xml", 1),
    });
    let v = analyze_judged(&config, &Options::default()).verdict;
    assert_eq!(v.state, crate::model::VerdictState::Unknown);
    assert!(v.missing.as_deref().unwrap().contains("no traffic data"));
    // A --since window after the data ends.
    let s = simulate(&shop(), 120, 3, &none);
    let after = Options {
        since: Some(Timestamp::from_minute(DAY + 500)),
        until: None,
    };
    let v = analyze_judged(&s, &after).verdict;
    assert_eq!(v.state, crate::model::VerdictState::Unknown, "{v:#?}");
    assert!(v.missing.as_deref().unwrap().contains("window"));
    let v = analyze_judged(&s, &Options::default()).verdict;
    assert_eq!(v.state, crate::model::VerdictState::Healthy, "{v:#?}");
}

/// With --since after an incident began, the incident keeps its real onset
/// and the backend map covers the window only.
#[test]
fn an_incident_that_began_before_the_window_keeps_its_onset() {
    let inject = |op: &str, m: i64| {
        if op == "check-stock" && m >= 600 {
            (Some(0.38), 1.0, 0.0)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let s = simulate(&shop(), 700, 9, &inject);
    let window = Options {
        since: Some(Timestamp::from_minute(DAY + 650)),
        until: None,
    };
    let Judged {
        findings: f,
        backend_map: map,
        verdict: v,
        ..
    } = analyze_judged(&s, &window);
    let spike = f
        .iter()
        .find(|f| f.kind == FindingKind::ErrorSpike)
        .expect("the spike reaches into the window");
    let t = spike.timeline.unwrap();
    assert!(t.is_ongoing());
    assert!((t.since.minute() - (DAY + 600)).abs() <= 2, "{t:?}");
    assert_eq!(v.window.unwrap().start, Timestamp::from_minute(DAY + 650));
    let stock = map.iter().find(|r| r.operation == "check-stock").unwrap();
    let whole = backend_map(&s);
    let all = whole.iter().find(|r| r.operation == "check-stock").unwrap();
    assert!(
        stock.requests < all.requests / 5,
        "{} vs {}",
        stock.requests,
        all.requests
    );
}

/// One slow minute of a handful of requests is not DEGRADED.
#[test]
fn severity_respects_the_requests_behind_a_finding() {
    assert_eq!(timeline::severity_cap(4), crate::model::Severity::Low);
    let inject = |op: &str, m: i64| {
        if op == "rare" && (600..602).contains(&m) {
            (Some(1.0), 1.0, 0.0)
        } else {
            (None, 1.0, 0.0)
        }
    };
    let s = simulate(&shop(), 900, 5, &inject);
    let f = analyze_judged(&s, &Options::default()).findings;
    for x in f
        .iter()
        .filter(|x| x.subject.operation.as_deref() == Some("rare"))
    {
        assert!(x.severity <= crate::model::Severity::Low, "{x:#?}");
    }
}
