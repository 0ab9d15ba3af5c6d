//! Error spikes: windows where an operation's 5xx rate is significantly
//! above its own baseline. A window must pass an exact binomial tail test
//! against the operation's failure rate outside every candidate window
//! (Bonferroni-corrected for the minutes tested), hold at least
//! `MIN_EVENTS` failures and three times the baseline rate, and burn a
//! 99.9% SLO's error budget fast enough to page on one of the two
//! multiwindow pairs. Sporadic errors and low-traffic noise stay quiet.

use super::Ctx;
use super::rollup::OpRollup;
use super::stats::{BurstParams, bursts};
use crate::model::{Evidence, Finding, FindingKind, Severity, Subject};
use std::collections::BTreeMap;

/// Fewest 5xx a spike may have.
pub const MIN_EVENTS: u64 = 5;

/// Error-spike findings, one per (operation, window).
pub fn findings(ctx: &Ctx) -> Vec<Finding> {
    let tests = ctx.tests();
    let params = BurstParams {
        min_events: MIN_EVENTS,
        alpha: ctx.alpha(tests),
        ..BurstParams::default()
    };
    let mut out = Vec::new();
    for op in &ctx.rollup.operations {
        let n = ctx.dense(&op.minutes, |s| s.requests);
        let k = ctx.dense(&op.minutes, |s| s.status_5xx);
        let found: Vec<_> = bursts(&n, &k, &params)
            .into_iter()
            .filter(|b| b.burn.alerts())
            .collect();
        // The worst window carries the operation's stable identity (kind +
        // operation); other, separate spikes are findings of their own,
        // told apart by their start.
        let Some(worst) = found
            .iter()
            .max_by(|a, b| a.excess().total_cmp(&b.excess()))
        else {
            continue;
        };
        let f = spike_finding(ctx, op, worst);
        for other in found.iter().filter(|b| *b != worst) {
            let mut g = spike_finding(ctx, op, other);
            let start = g.window.map(|w| w.start.to_rfc3339()).unwrap_or_default();
            g.id = crate::model::fingerprint_with(g.kind, &g.subject, &start);
            out.push(g);
        }
        out.push(f);
    }
    out
}

fn spike_finding(ctx: &Ctx, op: &OpRollup, b: &super::stats::Burst) -> Finding {
    let window = ctx.window(b.start, b.end);
    let label = ctx.op_label(&op.api, &op.operation);
    let rows: Vec<_> = op
        .minutes
        .iter()
        .filter(|m| window.contains(crate::model::Timestamp::from_minute(m.minute)))
        .collect();
    let timeouts: u64 = rows.iter().map(|m| m.stats.timeouts).sum();
    let backend_5xx: u64 = rows.iter().map(|m| m.stats.backend_5xx).sum();
    let conn: u64 = rows.iter().map(|m| m.stats.connection_failures).sum();
    let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
    for m in &rows {
        for (r, c) in &m.stats.error_reasons {
            *reasons.entry(r.as_str()).or_default() += c;
        }
    }
    let rate = b.rate();
    let fast = b.burn.fast >= super::stats::FAST_BURN;
    let severity = if fast && rate >= 0.25 && b.requests >= 100 {
        Severity::Critical
    } else if fast {
        Severity::High
    } else {
        Severity::Medium
    };
    let who = if timeouts * 2 > b.events {
        "mostly gateway timeouts (504)".to_string()
    } else if backend_5xx * 2 > b.events {
        "answered by the backend itself".to_string()
    } else if conn * 2 > b.events {
        "backend connection failures (502)".to_string()
    } else {
        "raised at the gateway".to_string()
    };
    let summary = format!(
        "5xx spike on {label}: {:.0}% of {} requests failed {}–{} UTC ({} min, peak {:.0}% at {}), against a baseline of {:.2}%",
        rate * 100.0,
        b.requests,
        window.start.hhmm(),
        window.end.hhmm(),
        window.duration_minutes(),
        b.peak_rate * 100.0,
        ctx.time_of(b.peak_index).hhmm(),
        b.baseline * 100.0,
    );
    let mut reason_text: Vec<String> = reasons.iter().map(|(r, c)| format!("{r} ×{c}")).collect();
    reason_text.truncate(5);
    let mut numbers = Evidence::text(format!(
        "{} of {} requests answered 5xx ({who}); binomial tail p {} against the operation's own baseline; SLO 99.9% burn rate {:.0}x (fast pair) / {:.0}x (slow pair){}",
        b.events,
        b.requests,
        super::fmt_p(b.p_value),
        b.burn.fast,
        b.burn.slow,
        if reason_text.is_empty() {
            String::new()
        } else {
            format!("; LastErrorReason: {}", reason_text.join(", "))
        }
    ))
    .value("requests", b.requests as f64)
    .value("errors_5xx", b.events as f64)
    .value("error_rate", rate)
    .value("share_affected", rate)
    .value("baseline_rate", b.baseline)
    .value("peak_rate", b.peak_rate)
    .value("p_value", b.p_value)
    .value("burn_rate_fast", b.burn.fast)
    .value("burn_rate_slow", b.burn.slow)
    .value("timeouts", timeouts as f64)
    .value("backend_5xx", backend_5xx as f64)
    .value("connection_failures", conn as f64)
    .value("duration_minutes", window.duration_minutes() as f64);
    numbers.records = ctx.samples(
        window,
        |k| k.api_id == op.api && k.operation_id == op.operation,
        |r| r.response_code >= 500,
        3,
    );
    numbers.sources = super::sources_of(&numbers.records);
    Finding::new(
        FindingKind::ErrorSpike,
        severity,
        Subject::operation(&op.api, &op.operation),
        summary,
    )
    .window(window)
    .evidence(numbers)
    .confidence(super::confidence_from_p(b.p_value, b.events))
}
