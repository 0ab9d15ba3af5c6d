//! 429 surges tied to the rate-limit or quota policy that explains them.
//!
//! A surge is judged against the operation's own baseline, not a fixed
//! count. Baseline p0: the median per-minute 429 share, then re-estimated as
//! the pooled share of the minutes not flagged (floored at 0.1%). A minute is
//! flagged when its 429 count is improbable under Binomial(requests, p0) at
//! a Bonferroni-corrected 1% level (over all minutes of the operation), it
//! has at least 3 429s and at least twice the baseline share. Flagged minutes
//! at most 2 minutes apart form a window; a window is a surge when it holds
//! at least 20 429s, at least 5% of its requests, passes the same tail test
//! as a whole, and at least 10 baseline minutes exist to compare with. Pure.

use crate::analyze::policy::effective_policy;
use crate::model::{
    Evidence, Finding, FindingKind, Minute, PolicyScope, Severity, Snapshot, Subject, Timestamp,
    Window,
};
use statrs::distribution::{Binomial, DiscreteCDF};
use std::collections::BTreeMap;

const ALPHA: f64 = 0.01;
const MIN_MINUTE_429: u64 = 3;
const MIN_WINDOW_429: u64 = 20;
const MIN_WINDOW_SHARE: f64 = 0.05;
const MIN_BASELINE_MINUTES: usize = 10;
const P0_FLOOR: f64 = 0.001;
const MERGE_GAP: Minute = 2;

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

/// A detected surge on one operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Surge {
    pub api: String,
    pub operation: String,
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

/// One minute of one operation, backends summed.
#[derive(Clone, Copy, Debug, Default)]
struct MinuteCount {
    requests: u64,
    throttled: u64,
    /// Kept samples that are 429s, and those the backend itself sent.
    samples: usize,
    backend_samples: usize,
}

type OperationMinutes = BTreeMap<Minute, MinuteCount>;

/// Per-minute counts of every operation.
fn per_operation(snapshot: &Snapshot) -> BTreeMap<(String, String), OperationMinutes> {
    let mut out: BTreeMap<(String, String), OperationMinutes> = BTreeMap::new();
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The strongest 429 surge of one operation's minutes, if any.
fn surge_of(api: &str, op: &str, minutes: &OperationMinutes) -> Option<Surge> {
    let active: Vec<(Minute, u64, u64)> = minutes
        .iter()
        .filter(|(_, v)| v.requests > 0)
        .map(|(m, v)| (*m, v.requests, v.throttled))
        .collect();
    let total_429: u64 = active.iter().map(|a| a.2).sum();
    if total_429 < MIN_WINDOW_429 || active.len() < MIN_BASELINE_MINUTES {
        return None;
    }
    let cutoff = ALPHA / active.len() as f64;
    let flag = |p0: f64| -> Vec<bool> {
        active
            .iter()
            .map(|(_, n, x)| {
                *x >= MIN_MINUTE_429
                    && (*x as f64) / (*n as f64) >= 2.0 * p0
                    && tail(*x, *n, p0) < cutoff
            })
            .collect()
    };
    let p_start = median(
        active
            .iter()
            .map(|(_, n, x)| *x as f64 / *n as f64)
            .collect(),
    )
    .max(P0_FLOOR);
    let first = flag(p_start);
    let (bn, bx) = active
        .iter()
        .zip(&first)
        .filter(|(_, f)| !**f)
        .fold((0u64, 0u64), |acc, ((_, n, x), _)| (acc.0 + n, acc.1 + x));
    let p0 = if bn > 0 {
        (bx as f64 / bn as f64).max(P0_FLOOR)
    } else {
        p_start
    };
    let flags = flag(p0);
    let baseline_minutes = flags.iter().filter(|f| !**f).count();
    if baseline_minutes < MIN_BASELINE_MINUTES {
        return None;
    }
    // Group flagged minutes.
    let mut windows: Vec<(Minute, Minute)> = Vec::new();
    for ((m, _, _), f) in active.iter().zip(&flags) {
        if !*f {
            continue;
        }
        match windows.last_mut() {
            Some(w) if *m - (w.1 - 1) <= MERGE_GAP => w.1 = *m + 1,
            _ => windows.push((*m, *m + 1)),
        }
    }
    windows
        .into_iter()
        .filter_map(|(start, end)| {
            let inside = minutes.range(start..end);
            let (mut n, mut x, mut samples, mut backend, mut peak) =
                (0u64, 0u64, 0usize, 0usize, 0u64);
            for (_, v) in inside {
                n += v.requests;
                x += v.throttled;
                samples += v.samples;
                backend += v.backend_samples;
                peak = peak.max(v.requests);
            }
            let p = tail(x, n, p0);
            let ok = x >= MIN_WINDOW_429
                && n > 0
                && x as f64 / n as f64 >= MIN_WINDOW_SHARE
                && p < ALPHA;
            ok.then(|| Surge {
                api: api.to_string(),
                operation: op.to_string(),
                start,
                end,
                throttled: x,
                requests: n,
                baseline_share: p0,
                p_value: p,
                peak_rpm: peak,
                backend_429_samples: backend,
                samples,
            })
        })
        .max_by_key(|s| s.throttled)
}

/// Every operation's strongest 429 surge.
pub fn surges(snapshot: &Snapshot) -> Vec<Surge> {
    per_operation(snapshot)
        .iter()
        .filter_map(|((api, op), minutes)| surge_of(api, op, minutes))
        .collect()
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
        s
    }
}

/// The throttling policies in the operation's effective policy.
pub fn limits_for(snapshot: &Snapshot, api: &str, op: &str) -> Vec<Limit> {
    let eff = effective_policy(snapshot, api, op);
    eff.all()
        .iter()
        .filter(|p| THROTTLING_POLICIES.contains(&p.element.name.as_str()))
        .map(|p| {
            let e = &p.element;
            Limit {
                policy: e.name.clone(),
                scope: p.scope.clone(),
                calls: e.attr("calls").and_then(|v| v.trim().parse().ok()),
                renewal_secs: e.attr("renewal-period").and_then(|v| v.trim().parse().ok()),
                counter_key: e.attr("counter-key").map(str::to_string),
                conditional: p.conditional,
            }
        })
        .collect()
}

fn pct(x: f64) -> String {
    if x < 0.01 {
        format!("{:.2}%", x * 100.0)
    } else {
        format!("{:.0}%", x * 100.0)
    }
}

/// One `quota` finding per operation with a 429 surge.
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in surges(snapshot) {
        let limits = limits_for(snapshot, &s.api, &s.operation);
        let share = s.throttled as f64 / s.requests as f64;
        let (start, end) = (
            Timestamp::from_minute(s.start),
            Timestamp::from_minute(s.end),
        );
        let mut summary = format!(
            "429 surge on {}/{}: {} of {} requests ({}) throttled {}–{} vs a baseline of {}",
            s.api,
            s.operation,
            s.throttled,
            s.requests,
            pct(share),
            start.hhmm(),
            end.hhmm(),
            pct(s.baseline_share)
        );
        let mut subject = Subject::operation(&s.api, &s.operation);
        match limits.first() {
            Some(l) => {
                summary.push_str(&format!("; {}", l.describe()));
                subject.policy_scope = Some(l.scope.clone());
            }
            None => {
                summary.push_str("; no rate-limit or quota policy found in the loaded policies")
            }
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
        for l in &limits {
            let mut text = format!("Policy in force: {}.", l.describe());
            let mut ev = Evidence::default();
            if let (Some(c), Some(r)) = (l.calls, l.renewal_secs)
                && r > 0.0
            {
                let allowed_per_min = c as f64 * 60.0 / r;
                ev = ev.value("calls", c as f64).value("renewal_period_s", r);
                if l.counter_key.is_none() && (s.peak_rpm as f64) > allowed_per_min {
                    text.push_str(&format!(
                        " Peak traffic of {} requests/min exceeds its {:.0} calls/min: the 429s are the policy working.",
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
        f = f.confidence(if limits.is_empty() { 0.6 } else { 0.9 });
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
        for m in 0..minutes {
            let bad = throttled(m);
            for i in 0..rpm {
                let code = if i < bad { 429 } else { 200 };
                t.add(
                    &Request {
                        time: Timestamp::from_minute(M0 + m),
                        api_id: "orders",
                        operation_id: "create",
                        response_code: code,
                        total_time_ms: 50,
                        ..Request::default()
                    },
                    Origin::default,
                );
            }
        }
        t
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
        assert!(fs[0].summary.contains("no rate-limit"));
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
    fn tail_is_sane() {
        assert!(tail(30, 100, 0.001) < 1e-30);
        assert!(tail(1, 100, 0.01) > 0.5);
        assert_eq!(tail(0, 10, 0.5), 1.0);
    }
}
