//! Is it still happening? Every symptom finding gets a `Timeline`: its
//! onset, whether it is ongoing or ended at the end of the analysed data,
//! and since when its subject is healthy again; then the `Verdict` of the
//! whole diagnosis (unhealthy now, recovered at, healthy, or unknown when
//! there is no traffic to judge from). Severities are capped by how many
//! requests a traffic finding rests on.
//!
//! An incident is *ended* only when the traffic after its window shows it:
//! enough requests that, failing at the incident's own rate, at least one
//! would have failed with 99% probability, and at least `QUIET_MINUTES` of
//! data, with the failure (or latency) level back well below the
//! incident's. Anything else is ongoing — saying "recovered" on thin
//! evidence is the false all-clear on-call people fear most. Findings from
//! metrics (no request counts) end when their window closed at least
//! `METRIC_QUIET_MINUTES` before the end of the data.

use super::Ctx;
use super::rollup::{MinuteRow, Stats};
use crate::model::{
    Activity, Finding, FindingKind, MetricSource, Severity, Story, Timeline, Timestamp, Verdict,
    VerdictState, Window,
};

/// Data after a traffic incident's window needed to call it ended.
pub const QUIET_MINUTES: i64 = 5;
/// Quiet time after a metric finding's window needed to call it ended.
pub const METRIC_QUIET_MINUTES: i64 = 10;
/// Below this many requests a traffic finding is at most `low`; below
/// `MEDIUM_MIN_REQUESTS` at most `medium`. One slow minute of four requests
/// is not an incident.
pub const LOW_MAX_REQUESTS: u64 = 10;
pub const MEDIUM_MIN_REQUESTS: u64 = 30;

/// The end of the analysed data: the last minute with traffic or a metric
/// point inside the scope (never after `--until`).
pub fn as_of(ctx: &Ctx) -> Option<Timestamp> {
    let traffic = ctx.rollup.window.map(|w| w.end);
    let metrics = ctx
        .snapshot
        .metrics
        .iter()
        .flat_map(|s| s.points.iter().map(|(t, _)| *t))
        .filter(|t| ctx.in_scope(*t))
        .max()
        .map(|t| Timestamp::from_minute(t.minute() + 1));
    let end = traffic.max(metrics)?;
    Some(match ctx.options.until {
        Some(u) => end.min(u),
        None => end,
    })
}

/// The analysed window: the scope clipped to the data in it.
pub fn analysed_window(ctx: &Ctx) -> Option<Window> {
    let end = as_of(ctx)?;
    let traffic = ctx.rollup.window.map(|w| w.start);
    let metrics = ctx
        .snapshot
        .metrics
        .iter()
        .flat_map(|s| s.points.iter().map(|(t, _)| *t))
        .filter(|t| ctx.in_scope(*t))
        .min();
    let start = match (traffic, metrics) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let start = match ctx.options.since {
        Some(s) => start.max(s),
        None => start,
    };
    Some(Window { start, end })
}

/// Requests seen in scope: gateway log rows, else the gateway's `Requests` metric.
pub fn requests_seen(ctx: &Ctx) -> u64 {
    let rows: u64 = ctx
        .rollup
        .operations
        .iter()
        .map(|o| o.totals.requests)
        .sum();
    if rows > 0 {
        return rows;
    }
    ctx.snapshot
        .metrics
        .iter()
        .filter(|s| s.source == MetricSource::Gateway && s.name.eq_ignore_ascii_case("Requests"))
        .flat_map(|s| s.points.iter())
        .filter(|(t, _)| ctx.in_scope(*t))
        .map(|(_, v)| v.max(0.0).round() as u64)
        .sum()
}

/// The per-minute rows of the traffic a finding is about, if any.
fn minutes_of<'a>(ctx: &'a Ctx, f: &Finding) -> Option<&'a [MinuteRow]> {
    let s = &f.subject;
    if let (Some(a), Some(o)) = (&s.api, &s.operation)
        && let Some(r) = ctx.rollup.operation(a, o)
    {
        return Some(&r.minutes);
    }
    if let Some(b) = &s.backend
        && let Some(r) = ctx.rollup.backend(b)
    {
        return Some(&r.minutes);
    }
    None
}

/// What counts as a bad request for a finding kind.
fn bad(kind: FindingKind, s: &Stats) -> u64 {
    match kind {
        FindingKind::Quota => s.status_429,
        FindingKind::BackendTimeout => s.timeouts,
        _ => s.status_5xx,
    }
}

fn sum(rows: &[MinuteRow], from: Timestamp, to: Timestamp) -> (u64, u64, Vec<u32>, Stats) {
    let (a, b) = (from.minute(), to.minute());
    let mut total = Stats::default();
    let mut p95s = Vec::new();
    let mut minutes = 0u64;
    for r in rows.iter().filter(|r| r.minute >= a && r.minute < b) {
        total.requests += r.stats.requests;
        total.status_5xx += r.stats.status_5xx;
        total.status_429 += r.stats.status_429;
        total.timeouts += r.stats.timeouts;
        if let Some(p) = r.stats.total_time.p95 {
            p95s.push(p);
        }
        minutes += 1;
    }
    (total.requests, minutes, p95s, total)
}

fn median(v: &mut [u32]) -> Option<u32> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// Requests needed to see at least one failure with 99% probability when
/// requests fail at `rate`.
pub fn requests_to_rule_out(rate: f64) -> u64 {
    if rate >= 1.0 {
        return 3;
    }
    if rate <= 0.0 {
        return u64::MAX;
    }
    ((0.01f64).ln() / (1.0 - rate).ln()).ceil().max(3.0) as u64
}

/// The timeline of one finding, judged at `as_of`; `None` for findings
/// that are not about a span of time (configuration, changes).
pub fn timeline_of(ctx: &Ctx, f: &Finding, as_of: Timestamp) -> Option<Timeline> {
    if !f.kind.is_anomaly() {
        return None;
    }
    let w = f.window?;
    let since = w.start;
    if w.end >= as_of {
        return Some(Timeline::ongoing(since, as_of));
    }
    let Some(rows) = minutes_of(ctx, f) else {
        // Metric findings: ended when quiet long enough before the end.
        let quiet = (as_of.0 - w.end.0) / 60_000;
        return Some(if quiet >= METRIC_QUIET_MINUTES {
            Timeline::ended(since, w.end, as_of)
        } else {
            Timeline::ongoing(since, as_of)
        });
    };
    let (n_in, _, mut p95_in, during) = sum(rows, w.start, w.end);
    let (n_after, _, mut p95_after, after) = sum(rows, w.end, as_of);
    let quiet = (as_of.0 - w.end.0) / 60_000;
    let ended = if f.kind == FindingKind::LatencyRegression {
        let (Some(a), Some(d)) = (median(&mut p95_after), median(&mut p95_in)) else {
            return Some(Timeline::ongoing(since, as_of));
        };
        quiet >= QUIET_MINUTES && n_after >= 10 && f64::from(a) < 0.67 * f64::from(d)
    } else {
        let rate_in = if n_in == 0 {
            0.0
        } else {
            bad(f.kind, &during) as f64 / n_in as f64
        };
        let rate_after = if n_after == 0 {
            1.0
        } else {
            bad(f.kind, &after) as f64 / n_after as f64
        };
        quiet >= QUIET_MINUTES
            && rate_in > 0.0
            && n_after >= requests_to_rule_out(rate_in)
            && rate_after <= rate_in / 2.0
    };
    Some(if ended {
        Timeline::ended(since, w.end, as_of)
    } else {
        Timeline::ongoing(since, as_of)
    })
}

/// Requests inside a traffic finding's window on its subject.
pub fn requests_behind(ctx: &Ctx, f: &Finding) -> Option<u64> {
    if !super::is_traffic_symptom(f.kind) {
        return None;
    }
    let w = f.window?;
    let rows = minutes_of(ctx, f)?;
    Some(sum(rows, w.start, w.end).0)
}

/// The highest severity a finding resting on `requests` requests may have.
pub fn severity_cap(requests: u64) -> Severity {
    if requests < LOW_MAX_REQUESTS {
        Severity::Low
    } else if requests < MEDIUM_MIN_REQUESTS {
        Severity::Medium
    } else {
        Severity::Critical
    }
}

/// Sets every finding's timeline and caps traffic severities by the
/// requests behind them.
pub fn annotate(ctx: &Ctx, findings: &mut [Finding]) {
    let Some(end) = as_of(ctx) else {
        return;
    };
    for f in findings.iter_mut() {
        f.timeline = timeline_of(ctx, f, end);
        if let Some(n) = requests_behind(ctx, f) {
            let cap = severity_cap(n);
            if f.severity > cap {
                f.severity = cap;
                f.evidence.push(
                    crate::model::Evidence::text(format!(
                        "severity capped at {cap}: the finding rests on {n} request{} in its window",
                        if n == 1 { "" } else { "s" }
                    ))
                    .value("requests_in_window", n as f64),
                );
            }
        }
    }
}

/// Findings that hold at the end of the data: ongoing symptoms,
/// configuration findings, and changes behind an ongoing story.
pub fn current(findings: &[Finding], stories: &[Story]) -> Vec<String> {
    let ongoing_story_members: Vec<&str> = stories
        .iter()
        .filter(|s| s.timeline.is_some_and(|t| t.is_ongoing()))
        .flat_map(|s| s.findings.iter().map(String::as_str))
        .collect();
    findings
        .iter()
        .filter(|f| match (f.kind, f.timeline) {
            (_, Some(t)) => t.is_ongoing(),
            (FindingKind::ConfigChange, None) => ongoing_story_members.contains(&f.id.as_str()),
            (_, None) => true,
        })
        .map(|f| f.id.clone())
        .collect()
}

/// The verdict of a diagnosis (pure): see `VerdictState`.
pub fn verdict(ctx: &Ctx, findings: &[Finding], stories: &[Story]) -> Verdict {
    let current = current(findings, stories);
    let window = analysed_window(ctx);
    let as_of = window.map(|w| w.end);
    let is_current = |f: &&Finding| current.iter().any(|c| c == &f.id);
    let severity = findings.iter().filter(is_current).map(|f| f.severity).max();
    let mut v = Verdict {
        severity,
        window,
        as_of,
        current: current.clone(),
        ..Verdict::default()
    };
    if requests_seen(ctx) == 0 {
        v.state = VerdictState::Unknown;
        v.missing = Some(match (ctx.options.since, ctx.options.until) {
            (None, None) => "no traffic data (no gateway log rows or request metrics)".into(),
            _ => "no traffic data in the window analysed".into(),
        });
        return v;
    }
    let ongoing: Vec<Timeline> = findings
        .iter()
        .filter(is_current)
        .filter_map(|f| f.timeline)
        .collect();
    let ended: Vec<Timeline> = findings
        .iter()
        .filter_map(|f| f.timeline)
        .filter(|t| t.state == Activity::Ended)
        .collect();
    v.since = ongoing.iter().map(|t| t.since).min();
    if severity.is_some_and(|s| s >= Severity::Medium) {
        v.state = VerdictState::Unhealthy;
    } else if !ended.is_empty() {
        v.state = VerdictState::Recovered;
        v.recovered_at = ended.iter().filter_map(|t| t.healthy_since).max();
    } else {
        v.state = VerdictState::Healthy;
    }
    if v.state == VerdictState::Unhealthy && ongoing.is_empty() && !ended.is_empty() {
        // Only configuration findings hold; the incident itself is over.
        v.recovered_at = ended.iter().filter_map(|t| t.healthy_since).max();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_out_counts() {
        // At a 32% failure rate 12 healthy requests are needed to be 99% sure.
        assert_eq!(requests_to_rule_out(0.32), 12);
        assert_eq!(requests_to_rule_out(1.0), 3);
        assert_eq!(requests_to_rule_out(0.01), 459);
        assert_eq!(requests_to_rule_out(0.0), u64::MAX);
    }

    #[test]
    fn caps_follow_request_counts() {
        assert_eq!(severity_cap(4), Severity::Low);
        assert_eq!(severity_cap(20), Severity::Medium);
        assert_eq!(severity_cap(200), Severity::Critical);
    }
}
