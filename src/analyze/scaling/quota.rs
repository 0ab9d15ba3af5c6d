//! 429 surges tied to the rate-limit or quota policy that explains them.
//!
//! A surge is judged against the series' own baseline, not a fixed count,
//! and works at any volume. For each API (all its operations summed) and
//! each operation, the detector scans every stretch of minutes that starts
//! and ends on a minute with a 429 and keeps the one with the largest
//! binomial log-likelihood ratio of "higher 429 share inside than outside"
//! (an epidemic change-point). The stretch is a surge when its 429 count is
//! improbable under Binomial(requests inside, p0) with p0 the share outside
//! (floored at 0.1%), at 1% Bonferroni-corrected over the stretches tried
//! (with more than 400 minutes holding 429s, minutes are bucketed first);
//! and it holds at least 20 429s, at least 5% of its requests and at least
//! twice p0; and at least 10 minutes outside it carry traffic. An API-level
//! surge carried by one operation (≥ 80% of its 429s) is reported on that
//! operation; an operation surge inside an API surge is not repeated. Pure.

use crate::analyze::policy::{Element, effective_policy, parse_policy};
use crate::model::{
    Evidence, Finding, FindingKind, Minute, PolicyScope, Severity, Snapshot, Subject, Timestamp,
    Window,
};
use statrs::distribution::{Binomial, DiscreteCDF};
use std::collections::BTreeMap;

const ALPHA: f64 = 0.01;
const MIN_WINDOW_429: u64 = 20;
const MIN_WINDOW_SHARE: f64 = 0.05;
const MIN_RATIO: f64 = 2.0;
const MIN_BASELINE_MINUTES: usize = 10;
const P0_FLOOR: f64 = 0.001;
/// Above this many minutes with 429s, the scan runs on coarser buckets.
const MAX_CANDIDATES: usize = 400;
/// Share of an API surge's 429s that makes it one operation's surge.
const DOMINANT_SHARE: f64 = 0.8;

/// Policies that answer 429 on their own.
pub const THROTTLING_POLICIES: [&str; 4] =
    ["rate-limit", "rate-limit-by-key", "quota", "quota-by-key"];

/// `P(X >= k)` for `X ~ Binomial(n, p)`.
fn tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    match Binomial::new(p.clamp(0.0, 1.0), n) {
        Ok(b) => b.sf(k - 1),
        Err(_) => 1.0,
    }
}

/// A detected surge on an API or one of its operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Surge {
    pub api: String,
    /// Set when one operation carries the surge.
    pub operation: Option<String>,
    /// Operations with 429s in the window, most first, with their counts.
    pub operations: Vec<(String, u64)>,
    pub start: Minute,
    /// Exclusive.
    pub end: Minute,
    pub throttled: u64,
    pub requests: u64,
    pub baseline_share: f64,
    pub p_value: f64,
    /// Peak requests in one minute inside the window.
    pub peak_rpm: u64,
    /// 429s the backend itself returned, among kept samples.
    pub backend_429_samples: usize,
    pub samples: usize,
}

/// One minute of one series, backends summed.
#[derive(Clone, Copy, Debug, Default)]
struct MinuteCount {
    requests: u64,
    throttled: u64,
    /// Kept samples that are 429s, and those the backend itself sent.
    samples: usize,
    backend_samples: usize,
}

type Minutes = BTreeMap<Minute, MinuteCount>;

/// Per-minute counts of every operation, keyed (api, operation).
fn per_operation(snapshot: &Snapshot) -> BTreeMap<(String, String), Minutes> {
    let mut out: BTreeMap<(String, String), Minutes> = BTreeMap::new();
    for s in &snapshot.traffic.series {
        let key = (s.key.api_id.clone(), s.key.operation_id.clone());
        let minutes = out.entry(key).or_default();
        for (m, st) in &s.minutes {
            let e = minutes.entry(*m).or_default();
            e.requests += u64::from(st.requests);
            e.throttled += u64::from(st.status_429);
            for r in st.samples.iter().filter(|r| r.response_code == 429) {
                e.samples += 1;
                if r.backend_response_code == Some(429) {
                    e.backend_samples += 1;
                }
            }
        }
    }
    out
}

fn add_into(into: &mut Minutes, from: &Minutes) {
    for (m, c) in from {
        let e = into.entry(*m).or_default();
        e.requests += c.requests;
        e.throttled += c.throttled;
        e.samples += c.samples;
        e.backend_samples += c.backend_samples;
    }
}

/// Binomial log-likelihood of `x` in `n` at share `p` (0·ln 0 = 0).
fn loglik(x: f64, n: f64, p: f64) -> f64 {
    let a = if x > 0.0 { x * p.ln() } else { 0.0 };
    let b = if n - x > 0.0 {
        (n - x) * (1.0 - p).ln()
    } else {
        0.0
    };
    a + b
}

/// The window found by the scan, before the significance test.
struct Window429 {
    start: Minute,
    end: Minute,
    tried: usize,
}

/// The stretch of buckets with the strongest rise in 429 share.
fn best_window(minutes: &Minutes) -> Option<Window429> {
    // The coarsest grain needed to keep the O(k²) scan small.
    let bucket: Minute = [1, 5, 15, 60, 240]
        .into_iter()
        .find(|b| {
            let mut hit: Vec<Minute> = minutes
                .iter()
                .filter(|(_, c)| c.throttled > 0)
                .map(|(m, _)| m - m.rem_euclid(*b))
                .collect();
            hit.dedup();
            hit.len() <= MAX_CANDIDATES
        })
        .unwrap_or(1440);
    // (bucket start, requests, 429s) with traffic.
    let mut rows: Vec<(Minute, u64, u64)> = Vec::new();
    for (m, c) in minutes.iter().filter(|(_, c)| c.requests > 0) {
        let b = m - m.rem_euclid(bucket);
        match rows.last_mut() {
            Some(last) if last.0 == b => {
                last.1 += c.requests;
                last.2 += c.throttled;
            }
            _ => rows.push((b, c.requests, c.throttled)),
        }
    }
    let (tn, tx) = rows
        .iter()
        .fold((0u64, 0u64), |a, r| (a.0 + r.1, a.1 + r.2));
    if tx == 0 {
        return None;
    }
    let mut pre_n = vec![0u64; rows.len() + 1];
    let mut pre_x = vec![0u64; rows.len() + 1];
    for (i, r) in rows.iter().enumerate() {
        pre_n[i + 1] = pre_n[i] + r.1;
        pre_x[i + 1] = pre_x[i] + r.2;
    }
    let hits: Vec<usize> = (0..rows.len()).filter(|i| rows[*i].2 > 0).collect();
    let p_all = tx as f64 / tn as f64;
    let base = loglik(tx as f64, tn as f64, p_all);
    let mut best: Option<(f64, usize, usize)> = None;
    let mut tried = 0usize;
    for (a, &i) in hits.iter().enumerate() {
        for &j in &hits[a..] {
            let (ns, xs) = (pre_n[j + 1] - pre_n[i], pre_x[j + 1] - pre_x[i]);
            let (no, xo) = (tn - ns, tx - xs);
            if ns == 0 || no == 0 {
                continue;
            }
            tried += 1;
            let (ps, po) = (xs as f64 / ns as f64, xo as f64 / no as f64);
            if ps <= po {
                continue;
            }
            let llr = loglik(xs as f64, ns as f64, ps) + loglik(xo as f64, no as f64, po) - base;
            if best.is_none_or(|b| llr > b.0) {
                best = Some((llr, i, j));
            }
        }
    }
    let (_, i, j) = best?;
    Some(Window429 {
        start: rows.get(i)?.0,
        end: rows.get(j)?.0 + bucket,
        tried: tried.max(1),
    })
}

/// Tests the best window of `minutes`; `ops` are the operations summed in.
fn surge_of(api: &str, minutes: &Minutes, ops: &[(&str, &Minutes)]) -> Option<Surge> {
    let w = best_window(minutes)?;
    let (mut n, mut x, mut samples, mut backend, mut peak) = (0u64, 0u64, 0usize, 0usize, 0u64);
    let (mut no, mut xo, mut outside_minutes) = (0u64, 0u64, 0usize);
    for (m, c) in minutes {
        if w.start <= *m && *m < w.end {
            n += c.requests;
            x += c.throttled;
            samples += c.samples;
            backend += c.backend_samples;
            peak = peak.max(c.requests);
        } else if c.requests > 0 {
            no += c.requests;
            xo += c.throttled;
            outside_minutes += 1;
        }
    }
    if outside_minutes < MIN_BASELINE_MINUTES || n == 0 || no == 0 {
        return None;
    }
    let p0 = (xo as f64 / no as f64).max(P0_FLOOR);
    let share = x as f64 / n as f64;
    let p = tail(x, n, p0);
    let ok = x >= MIN_WINDOW_429
        && share >= MIN_WINDOW_SHARE
        && share >= MIN_RATIO * p0
        && p < ALPHA / w.tried as f64;
    if !ok {
        return None;
    }
    let mut operations: Vec<(String, u64)> = ops
        .iter()
        .map(|(op, m)| {
            let k: u64 = m.range(w.start..w.end).map(|(_, c)| c.throttled).sum();
            (op.to_string(), k)
        })
        .filter(|(_, k)| *k > 0)
        .collect();
    operations.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let operation = operations
        .first()
        .filter(|(_, k)| *k as f64 >= DOMINANT_SHARE * x as f64)
        .map(|(op, _)| op.clone());
    Some(Surge {
        api: api.to_string(),
        operation,
        operations,
        start: w.start,
        end: w.end,
        throttled: x,
        requests: n,
        baseline_share: p0,
        p_value: p,
        peak_rpm: peak,
        backend_429_samples: backend,
        samples,
    })
}

/// Every API's 429 surge, and operation surges an API surge does not cover.
pub fn surges(snapshot: &Snapshot) -> Vec<Surge> {
    let per_op = per_operation(snapshot);
    let mut by_api: BTreeMap<&str, Vec<(&str, &Minutes)>> = BTreeMap::new();
    for ((api, op), m) in &per_op {
        by_api
            .entry(api.as_str())
            .or_default()
            .push((op.as_str(), m));
    }
    let mut out = Vec::new();
    for (api, ops) in by_api {
        let mut total = Minutes::new();
        for (_, m) in &ops {
            add_into(&mut total, m);
        }
        let api_surge = surge_of(api, &total, &ops);
        for (op, m) in &ops {
            let covered = api_surge
                .as_ref()
                .is_some_and(|s| s.operations.iter().any(|(o, _)| o == op));
            if covered || ops.len() == 1 {
                continue;
            }
            if let Some(mut s) = surge_of(api, m, &[(op, m)]) {
                s.operation = Some(op.to_string());
                out.push(s);
            }
        }
        out.extend(api_surge);
    }
    out
}

/// A throttling policy in force on an operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    pub policy: String,
    pub scope: PolicyScope,
    pub calls: Option<u64>,
    pub renewal_secs: Option<f64>,
    pub counter_key: Option<String>,
    pub conditional: bool,
    /// Exceeding it answers 429 (rate limits, token limits); `quota` and
    /// `quota-by-key` answer 403 instead.
    pub answers_429: bool,
    /// A product policy whose product's API list was not loaded: it may or
    /// may not apply to the API.
    pub membership_unknown: bool,
}

impl Limit {
    fn describe(&self) -> String {
        let mut s = format!("{} at {}", self.policy, self.scope);
        if let Some(c) = self.calls {
            s.push_str(&format!(", calls={c}"));
        }
        if let Some(r) = self.renewal_secs {
            s.push_str(&format!(", renewal-period={r}s"));
        }
        if let Some(k) = &self.counter_key {
            s.push_str(&format!(", counter-key={k}"));
        }
        if self.conditional {
            s.push_str(" (inside choose)");
        }
        if self.membership_unknown {
            s.push_str(" (the product's APIs are not in the data)");
        }
        s
    }
}

/// Policies that answer 429 when exceeded.
const ANSWERS_429: [&str; 4] = [
    "rate-limit",
    "rate-limit-by-key",
    "llm-token-limit",
    "azure-openai-token-limit",
];

fn limit_of(e: &Element, scope: PolicyScope, conditional: bool, unknown: bool) -> Limit {
    Limit {
        policy: e.name.clone(),
        scope,
        calls: e
            .attr("calls")
            .or_else(|| e.attr("tokens-per-minute"))
            .and_then(|v| v.trim().parse().ok()),
        renewal_secs: e
            .attr("renewal-period")
            .and_then(|v| v.trim().parse().ok())
            .or_else(|| e.attr("tokens-per-minute").map(|_| 60.0)),
        counter_key: e.attr("counter-key").map(str::to_string),
        conditional,
        answers_429: ANSWERS_429.contains(&e.name.as_str()),
        membership_unknown: unknown,
    }
}

fn is_throttling(name: &str) -> bool {
    THROTTLING_POLICIES.contains(&name) || ANSWERS_429.contains(&name)
}

/// The throttling policies in the operation's effective policy; when it has
/// none and product membership is unknown, those of every product policy
/// (marked `membership_unknown`). Limits that answer 429 come first.
pub fn limits_for(snapshot: &Snapshot, api: &str, op: &str) -> Vec<Limit> {
    let eff = effective_policy(snapshot, api, op);
    let mut out: Vec<Limit> = eff
        .all()
        .iter()
        .filter(|p| is_throttling(&p.element.name))
        .map(|p| limit_of(&p.element, p.scope.clone(), p.conditional, false))
        .collect();
    let membership_known = snapshot
        .products
        .iter()
        .any(|p| p.apis.iter().any(|a| a.eq_ignore_ascii_case(api)));
    if out.is_empty() && !membership_known {
        for doc in &snapshot.policies {
            let PolicyScope::Product(product) = &doc.scope else {
                continue;
            };
            let lists_others = snapshot
                .products
                .iter()
                .any(|p| p.id.eq_ignore_ascii_case(product) && !p.apis.is_empty());
            if lists_others {
                continue;
            }
            let parsed = parse_policy(&doc.xml);
            let Some(root) = parsed.root.as_ref() else {
                continue;
            };
            for e in root.walk().into_iter().filter(|e| is_throttling(&e.name)) {
                out.push(limit_of(e, doc.scope.clone(), false, true));
            }
        }
    }
    out.sort_by_key(|l| (!l.answers_429, l.membership_unknown));
    out
}

fn pct(x: f64) -> String {
    if x < 0.01 {
        format!("{:.2}%", x * 100.0)
    } else {
        format!("{:.0}%", x * 100.0)
    }
}

/// One `quota` finding per API (or operation) with a 429 surge.
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in surges(snapshot) {
        let lead_op = s
            .operation
            .clone()
            .or_else(|| s.operations.first().map(|(o, _)| o.clone()))
            .unwrap_or_default();
        let limits = limits_for(snapshot, &s.api, &lead_op);
        let target = match &s.operation {
            Some(op) => format!("{}/{op}", s.api),
            None => s.api.clone(),
        };
        let share = s.throttled as f64 / s.requests as f64;
        let (start, end) = (
            Timestamp::from_minute(s.start),
            Timestamp::from_minute(s.end),
        );
        let mut summary = format!(
            "429 surge on {target}: {} of {} requests ({}) throttled {}–{} vs a baseline of {}",
            s.throttled,
            s.requests,
            pct(share),
            start.hhmm(),
            end.hhmm(),
            pct(s.baseline_share)
        );
        let mut subject = Subject {
            api: Some(s.api.clone()),
            operation: s.operation.clone(),
            ..Subject::default()
        };
        // Every sampled 429 carries BackendResponseCode 429: the backend
        // throttles, not a gateway policy.
        let from_backend = s.samples > 0 && s.backend_429_samples == s.samples;
        let primary = limits
            .iter()
            .find(|l| l.answers_429)
            .filter(|_| !from_backend);
        match primary {
            Some(l) => {
                summary.push_str(&format!("; {}", l.describe()));
                subject.policy_scope = Some(l.scope.clone());
            }
            None if from_backend => {
                summary.push_str("; the backend itself answers 429 (BackendResponseCode 429)")
            }
            None => summary.push_str(
                "; no rate-limit policy (which answers 429) found in the loaded policies",
            ),
        }
        let severity = if share >= 0.25 && s.throttled >= 100 {
            Severity::High
        } else {
            Severity::Medium
        };
        let e = Evidence::text(format!(
            "{} 429s in {} minutes ({} of {} requests) against a baseline 429 share of {}; binomial tail p = {:.1e}.",
            s.throttled,
            s.end - s.start,
            pct(share),
            s.requests,
            pct(s.baseline_share),
            s.p_value
        ))
        .value("throttled", s.throttled as f64)
        .value("requests", s.requests as f64)
        .value("baseline_share", s.baseline_share)
        .value("p_value", s.p_value)
        .value("peak_rpm", s.peak_rpm as f64);
        let mut f = Finding::new(FindingKind::Quota, severity, subject, summary)
            .window(Window { start, end })
            .evidence(e);
        if s.operation.is_none() && !s.operations.is_empty() {
            let list: Vec<String> = s
                .operations
                .iter()
                .map(|(o, k)| format!("{o} ({k})"))
                .collect();
            f = f.evidence(Evidence::text(format!(
                "429s by operation: {}.",
                list.join(", ")
            )));
        }
        for l in &limits {
            let mut text = if l.membership_unknown {
                format!("Candidate policy: {}.", l.describe())
            } else {
                format!("Policy in force: {}.", l.describe())
            };
            if !l.answers_429 {
                text.push_str(" It answers 403, not 429, when exceeded.");
            }
            let mut ev = Evidence::default();
            if let (Some(c), Some(r)) = (l.calls, l.renewal_secs)
                && r > 0.0
            {
                let allowed_per_min = c as f64 * 60.0 / r;
                ev = ev.value("calls", c as f64).value("renewal_period_s", r);
                if l.policy == "rate-limit" && (s.peak_rpm as f64) > allowed_per_min {
                    text.push_str(&format!(
                        " Peak traffic of {} requests/min exceeds its {:.0} calls/min (counted per subscription): the 429s are the policy working.",
                        s.peak_rpm, allowed_per_min
                    ));
                } else if l.counter_key.is_some() {
                    text.push_str(" The limit is per key: one caller can exhaust its own counter.");
                }
            }
            ev.text = text;
            f = f.evidence(ev);
        }
        if s.backend_429_samples > 0 {
            f = f.evidence(Evidence::text(format!(
                "{} of {} sampled 429s came from the backend itself (BackendResponseCode 429).",
                s.backend_429_samples, s.samples
            )));
        }
        let confidence = match primary {
            Some(l) if !l.membership_unknown => 0.9,
            Some(_) => 0.75,
            None if from_backend => 0.8,
            None => 0.6,
        };
        f = f.confidence(confidence);
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, PolicyDoc, Request, Traffic};

    const M0: Minute = 28_594_620; // 2024-05-14T09:00Z

    /// `minutes` minutes of `rpm` requests; `throttled(minute)` 429s each.
    fn traffic(minutes: i64, rpm: u32, throttled: impl Fn(i64) -> u32) -> Traffic {
        let mut t = Traffic::default();
        add_op(&mut t, "create", minutes, rpm, throttled);
        t
    }

    fn add_op(t: &mut Traffic, op: &str, minutes: i64, rpm: u32, throttled: impl Fn(i64) -> u32) {
        for m in 0..minutes {
            let bad = throttled(m);
            for i in 0..rpm {
                let code = if i < bad { 429 } else { 200 };
                t.add(
                    &Request {
                        time: Timestamp::from_minute(M0 + m),
                        api_id: "orders",
                        operation_id: op,
                        response_code: code,
                        total_time_ms: 50,
                        ..Request::default()
                    },
                    Origin::default,
                );
            }
        }
    }

    fn snap(t: Traffic) -> Snapshot {
        Snapshot {
            traffic: t,
            ..Snapshot::default()
        }
    }

    #[test]
    fn surge_with_policy_names_it() {
        let mut s = snap(traffic(
            60,
            100,
            |m| if (40..50).contains(&m) { 30 } else { 0 },
        ));
        s.policies.push(PolicyDoc {
            scope: PolicyScope::Api("orders".into()),
            xml: r#"<policies><inbound><base /><rate-limit calls="50" renewal-period="60" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"#.into(),
            format: "rawxml".into(),
            origin: Origin::file("api.xml"),
        });
        let fs = findings(&s);
        assert_eq!(fs.len(), 1, "{fs:#?}");
        let f = &fs[0];
        assert_eq!(f.kind, FindingKind::Quota);
        assert!(f.summary.contains("300 of 1000"), "{}", f.summary);
        assert!(
            f.summary.contains("rate-limit at api:orders"),
            "{}",
            f.summary
        );
        assert_eq!(
            f.subject.policy_scope,
            Some(PolicyScope::Api("orders".into()))
        );
        assert_eq!(f.severity, Severity::High);
        assert!(
            f.evidence
                .iter()
                .any(|e| e.text.contains("exceeds its 50 calls/min"))
        );
        let w = f.window.unwrap_or(Window {
            start: Timestamp(0),
            end: Timestamp(0),
        });
        assert_eq!(w.duration_minutes(), 10);
    }

    #[test]
    fn surge_without_policy_says_so() {
        let s = snap(traffic(
            60,
            100,
            |m| if (40..45).contains(&m) { 10 } else { 0 },
        ));
        let fs = findings(&s);
        assert_eq!(fs.len(), 1, "{fs:#?}");
        assert!(fs[0].summary.contains("no rate-limit policy"));
        assert_eq!(fs[0].severity, Severity::Medium);
        assert!(fs[0].confidence < 0.7);
    }

    #[test]
    fn a_few_429s_or_steady_throttling_is_not_a_surge() {
        // A handful of 429s.
        let s = snap(traffic(60, 100, |m| if m == 40 { 6 } else { 0 }));
        assert!(findings(&s).is_empty());
        // Steady 5% throttling all along: its own baseline.
        let s = snap(traffic(60, 100, |_| 5));
        assert!(findings(&s).is_empty());
        // Too little history to have a baseline.
        let s = snap(traffic(8, 100, |_| 30));
        assert!(findings(&s).is_empty());
    }

    #[test]
    fn low_volume_sustained_shift_is_a_surge() {
        // 2 requests a minute; from minute 140 one in four is a 429.
        let s = snap(traffic(240, 2, |m| u32::from(m >= 140 && m % 2 == 0)));
        let fs = findings(&s);
        assert_eq!(fs.len(), 1, "{fs:#?}");
        let w = fs[0].window.unwrap_or(Window {
            start: Timestamp(0),
            end: Timestamp(0),
        });
        assert_eq!(w.start, Timestamp::from_minute(M0 + 140));
        assert_eq!(w.end, Timestamp::from_minute(M0 + 239));
        // The same 429s scattered over the whole day are not a surge.
        let s = snap(traffic(240, 2, |m| u32::from(m % 5 == 0)));
        assert!(findings(&s).is_empty(), "{:#?}", findings(&s));
    }

    #[test]
    fn surge_spread_over_operations_is_reported_on_the_api() {
        let mut t = Traffic::default();
        add_op(&mut t, "create", 60, 10, |m| if m >= 40 { 2 } else { 0 });
        add_op(&mut t, "list", 60, 10, |m| if m >= 40 { 2 } else { 0 });
        add_op(&mut t, "get", 60, 10, |_| 0);
        let fs = findings(&snap(t));
        assert_eq!(fs.len(), 1, "{fs:#?}");
        assert_eq!(fs[0].subject.api.as_deref(), Some("orders"));
        assert_eq!(fs[0].subject.operation, None);
        assert!(
            fs.iter()
                .flat_map(|f| &f.evidence)
                .any(|e| e.text.contains("create (40)") && e.text.contains("list (40)"))
        );
    }

    #[test]
    fn operation_surge_hidden_in_a_busy_api_is_found() {
        let mut t = Traffic::default();
        add_op(&mut t, "busy", 60, 400, |m| u32::from(m % 3 == 0) * 8);
        add_op(&mut t, "small", 60, 5, |m| if m >= 50 { 3 } else { 0 });
        let fs = findings(&snap(t));
        assert!(
            fs.iter()
                .any(|f| f.subject.operation.as_deref() == Some("small")),
            "{fs:#?}"
        );
    }

    fn product_policy(product: &str, body: &str) -> PolicyDoc {
        PolicyDoc {
            scope: PolicyScope::Product(product.into()),
            xml: format!(
                "<policies><inbound><base />{body}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"
            ),
            format: "rawxml".into(),
            origin: Origin::file("product.json"),
        }
    }

    #[test]
    fn product_policy_is_a_candidate_when_membership_is_unknown() {
        let mut s = snap(traffic(
            60,
            100,
            |m| if (40..50).contains(&m) { 30 } else { 0 },
        ));
        s.policies.push(product_policy(
            "starter",
            r#"<quota calls="1000" renewal-period="3600" /><rate-limit-by-key calls="2" renewal-period="300" counter-key="@(context.Subscription.Id)" />"#,
        ));
        let fs = findings(&s);
        assert_eq!(fs.len(), 1, "{fs:#?}");
        let f = &fs[0];
        assert!(
            f.summary
                .contains("rate-limit-by-key at product:starter, calls=2, renewal-period=300s"),
            "{}",
            f.summary
        );
        assert!(f.summary.contains("not in the data"));
        assert!(f.evidence.iter().any(|e| e.text.contains("answers 403")));
        assert!((f.confidence - 0.75).abs() < 1e-9);
        // Membership known and the product does not hold the API: no link.
        s.products.push(crate::model::Product {
            id: "starter".into(),
            apis: vec!["users".into()],
            ..Default::default()
        });
        let fs = findings(&s);
        assert!(
            fs[0].summary.contains("no rate-limit policy"),
            "{}",
            fs[0].summary
        );
    }

    #[test]
    fn long_steady_throttling_stays_quiet() {
        // A week of minutes with one 429 in 20 requests: bucketed scan, no surge.
        let mut t = Traffic::default();
        add_op(&mut t, "create", 7 * 1440, 20, |m| u32::from(m % 2 == 0));
        assert!(findings(&snap(t)).is_empty());
    }

    #[test]
    fn backend_throttling_is_not_blamed_on_the_policy() {
        let mut t = Traffic::default();
        for m in 0..60i64 {
            for i in 0..50u32 {
                let throttled = (40..50).contains(&m) && i < 10;
                t.add(
                    &Request {
                        time: Timestamp::from_minute(M0 + m),
                        api_id: "orders",
                        operation_id: "create",
                        response_code: if throttled { 429 } else { 200 },
                        backend_response_code: if throttled { 429 } else { 200 },
                        total_time_ms: 50,
                        ..Request::default()
                    },
                    Origin::default,
                );
            }
        }
        let mut s = snap(t);
        s.policies.push(product_policy(
            "starter",
            r#"<rate-limit calls="5" renewal-period="60" />"#,
        ));
        let fs = findings(&s);
        assert_eq!(fs.len(), 1, "{fs:#?}");
        assert!(
            fs[0].summary.contains("backend itself"),
            "{}",
            fs[0].summary
        );
        assert_eq!(fs[0].subject.policy_scope, None);
    }

    #[test]
    fn tail_is_sane() {
        assert!(tail(30, 100, 0.001) < 1e-30);
        assert!(tail(1, 100, 0.01) > 0.5);
        assert_eq!(tail(0, 10, 0.5), 1.0);
    }
}
