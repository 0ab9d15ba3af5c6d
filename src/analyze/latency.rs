//! Latency regressions: an operation's p95 or p99 TotalTime sustained well
//! above its own baseline. Minutes are grouped into buckets just big enough
//! for the percentile to rest on several requests (about 40 requests for
//! p95, 300 for p99: a p99 of 30 requests is just their maximum, which a
//! rare heavy tail moves at random); exact percentiles per bucket. The baseline is
//! the median and MAD of the bucket percentiles with the candidate windows
//! left out. A bucket is slow when it is 6 robust sigmas and 1.5x above the
//! median; a regression needs several slow buckets in a row covering at
//! least five minutes. Daily swings widen the MAD, so they do not alarm.
//!
//! A slow creep (p95 climbing over hours) lifts the median and widens the
//! MAD of the whole span, so it hides from that test. Where it finds
//! nothing, the p95 buckets are judged again against the calmer half of the
//! span (the four of eight time blocks with the lowest level), and a run of
//! at least 30 minutes counts only when the requests themselves support it:
//! the share of its requests slower than the calm half's p95 must beat the
//! 5% expected by a binomial tail test. Every operation is judged on its
//! own traffic alone, so another incident cannot hide it; buckets grow to
//! four hours so a low-traffic operation is judged too.

use super::Ctx;
use super::rollup::OpRollup;
use super::stats::{median, median_mad};
use crate::model::{
    Evidence, Finding, FindingKind, LatencyHistogram, MinuteStats, Severity, Subject, histogram,
};
use rayon::prelude::*;

/// Requests a bucket should hold for its p95 / p99 to mean something;
/// buckets with fewer than two thirds of that are ignored.
const P95_REQUESTS: f64 = 40.0;
const P99_REQUESTS: f64 = 300.0;
const SIGMAS: f64 = 6.0;
const MIN_RATIO: f64 = 1.5;
const MIN_MINUTES: usize = 5;
/// Buckets with enough requests a baseline needs.
const MIN_BUCKETS: usize = 8;

/// One bucket of an operation: requests and exact latency percentiles.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Bucket {
    requests: u64,
    p95: Option<u32>,
    p99: Option<u32>,
    backend_p95: Option<u32>,
}

/// Latency-regression findings, at most one per operation.
pub fn findings(ctx: &Ctx) -> Vec<Finding> {
    ctx.rollup
        .operations
        .par_iter()
        .filter_map(|op| regression(ctx, op))
        .collect()
}

fn bucket_size(op: &OpRollup, len: usize, target: f64) -> Option<usize> {
    // Requests per minute over the whole span, quiet minutes included.
    let per_minute = op.totals.requests as f64 / len.max(1) as f64;
    [1usize, 2, 3, 5, 10, 15, 30, 60, 120, 240]
        .into_iter()
        .find(|b| per_minute * *b as f64 >= target)
}

fn buckets(ctx: &Ctx, op: &OpRollup, size: usize) -> Vec<Bucket> {
    let n = ctx.len.div_ceil(size);
    if size == 1 {
        let mut out = vec![Bucket::default(); n];
        for m in &op.minutes {
            if let Some(b) = ctx.index_of(m.minute).and_then(|i| out.get_mut(i)) {
                *b = Bucket {
                    requests: m.stats.requests,
                    p95: m.stats.total_time.p95,
                    p99: m.stats.total_time.p99,
                    backend_p95: m.stats.backend_time.p95,
                };
            }
        }
        return out;
    }
    // Each bucket's cells, then their sums (a dense add per cell, not a
    // merge into a growing vector).
    let mut cells: Vec<(usize, &MinuteStats)> = Vec::new();
    for s in op
        .series
        .iter()
        .filter_map(|&i| ctx.snapshot.traffic.series.get(i))
    {
        for (m, st) in &s.minutes {
            if !super::rollup::in_scope(ctx.options, *m) {
                continue;
            }
            if let Some(i) = ctx.index_of(*m).map(|i| i / size)
                && i < n
            {
                cells.push((i, st));
            }
        }
    }
    cells.sort_by_key(|c| c.0);
    // A bucket without cells has no requests and no percentiles.
    let mut out = vec![Bucket::default(); n];
    for group in cells.chunk_by(|a, b| a.0 == b.0) {
        let Some(b) = group.first().and_then(|&(i, _)| out.get_mut(i)) else {
            continue;
        };
        let (requests, [p95, p99]) =
            histogram::with_sum(group.iter().map(|c| &c.1.total_latency), |d| {
                (d.count(), d.percentiles([95.0, 99.0]))
            });
        let [backend_p95] = histogram::with_sum(group.iter().map(|c| &c.1.backend_latency), |d| {
            d.percentiles([95.0])
        });
        *b = Bucket {
            requests,
            p95,
            p99,
            backend_p95,
        };
    }
    out
}

/// A run of slow buckets `[start, end)` and how slow it got.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Run {
    start: usize,
    end: usize,
    slow: usize,
    peak: f64,
    peak_at: usize,
    baseline: f64,
    score: f64,
}

fn runs(values: &[Option<f64>], size: usize) -> Vec<Run> {
    let valid: Vec<f64> = values.iter().flatten().copied().collect();
    if valid.len() < MIN_BUCKETS {
        return Vec::new();
    }
    let mut found = flag(values, &valid, size);
    // Second pass: the baseline without the candidate windows.
    if !found.is_empty() {
        let kept: Vec<f64> = values
            .iter()
            .enumerate()
            .filter(|(i, _)| !found.iter().any(|r| *i + 2 >= r.start && *i < r.end + 2))
            .filter_map(|(_, v)| *v)
            .collect();
        if kept.len() >= MIN_BUCKETS {
            found = flag(values, &kept, size);
        }
    }
    found
}

fn flag(values: &[Option<f64>], baseline: &[f64], size: usize) -> Vec<Run> {
    let Some((med, mad)) = median_mad(baseline) else {
        return Vec::new();
    };
    let sigma = (1.4826 * mad).max(0.05 * med).max(1.0);
    let limit = (med + SIGMAS * sigma).max(MIN_RATIO * med);
    let slow = |i: usize| values.get(i).copied().flatten().is_some_and(|v| v >= limit);
    let need = MIN_MINUTES.div_ceil(size).max(3).min(MIN_MINUTES.max(3));
    let mut out = Vec::new();
    let mut i = 0;
    while i < values.len() {
        if !slow(i) {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        let mut count = 1;
        let mut j = i + 1;
        let mut gap = 0;
        while j < values.len() && gap <= 1 {
            if slow(j) {
                end = j + 1;
                count += 1;
                gap = 0;
            } else {
                gap += 1;
            }
            j += 1;
        }
        if count >= need && (end - i) * size >= MIN_MINUTES {
            let (mut peak, mut peak_at, mut score) = (0.0, i, 0.0);
            for k in i..end {
                if let Some(v) = values.get(k).copied().flatten() {
                    if v > peak {
                        peak = v;
                        peak_at = k;
                    }
                    if v >= limit {
                        score += (v - med) / sigma;
                    }
                }
            }
            out.push(Run {
                start: i,
                end,
                slow: count,
                peak,
                peak_at,
                baseline: med,
                score,
            });
        }
        i = end;
    }
    out
}

/// Blocks a span is cut into to find its calmer half.
const BLOCKS: usize = 8;
/// A creep must stay above the calm baseline this long.
const CREEP_MINUTES: usize = 30;
/// Share of requests slower than the calm p95 a creep must reach (three
/// times the 5% expected), and the binomial tail it must beat.
const CREEP_SHARE: f64 = 0.15;
const CREEP_P: f64 = 1e-4;

/// The bucket values of the calmer half of the span, and which buckets
/// they are: the half of `BLOCKS` time blocks with the lowest median.
fn calm_half(values: &[Option<f64>]) -> (Vec<f64>, Vec<bool>) {
    let n = values.len();
    let per = n.div_ceil(BLOCKS).max(1);
    let mut blocks: Vec<(f64, usize)> = (0..n.div_ceil(per))
        .filter_map(|b| {
            let v: Vec<f64> = values[b * per..((b + 1) * per).min(n)]
                .iter()
                .flatten()
                .copied()
                .collect();
            median(&v).map(|m| (m, b))
        })
        .collect();
    blocks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let keep = blocks.len().div_ceil(2);
    let mut mask = vec![false; n];
    for &(_, b) in blocks.iter().take(keep) {
        for slot in mask.iter_mut().take(((b + 1) * per).min(n)).skip(b * per) {
            *slot = true;
        }
    }
    let calm = values
        .iter()
        .zip(&mask)
        .filter(|(_, m)| **m)
        .filter_map(|(v, _)| *v)
        .collect();
    (calm, mask)
}

/// The latency histogram of an operation per bucket of `size` minutes.
fn bucket_latencies(ctx: &Ctx, op: &OpRollup, size: usize) -> Vec<LatencyHistogram> {
    let mut out: Vec<LatencyHistogram> = vec![LatencyHistogram::default(); ctx.len.div_ceil(size)];
    for s in op
        .series
        .iter()
        .filter_map(|&i| ctx.snapshot.traffic.series.get(i))
    {
        for (m, st) in &s.minutes {
            if !super::rollup::in_scope(ctx.options, *m) {
                continue;
            }
            if let Some(v) = ctx.index_of(*m).and_then(|i| out.get_mut(i / size)) {
                v.merge(&st.total_latency);
            }
        }
    }
    out
}

/// A sustained regression's onset: a creep crosses the strict limit hours
/// after it began, so the start moves back over the buckets that are
/// already clearly above the calm half (3 robust sigmas and 1.25x its
/// median; one missing bucket is stepped over).
fn extend_onset(values: &[Option<f64>], run: &mut Run, size: usize) {
    if (run.end - run.start) * size < CREEP_MINUTES {
        return;
    }
    let (calm, _) = calm_half(values);
    let Some((med, mad)) = median_mad(&calm) else {
        return;
    };
    let sigma = (1.4826 * mad).max(0.05 * med).max(1.0);
    let entry = (med + 3.0 * sigma).max(1.25 * med);
    let mut start = run.start;
    while start > 0 {
        match values[start - 1] {
            Some(v) if v >= entry => start -= 1,
            None if start >= 2 && values[start - 2].is_some_and(|v| v >= entry) => start -= 2,
            _ => break,
        }
    }
    run.start = start;
}

/// A slow creep against the calmer half of the span, backed by the
/// requests: the run, and the sentence saying what supports it.
fn creep(ctx: &Ctx, op: &OpRollup, size: usize, values: &[Option<f64>]) -> Option<(Run, String)> {
    let (calm, mask) = calm_half(values);
    if calm.len() < MIN_BUCKETS / 2 {
        return None;
    }
    let candidates: Vec<Run> = flag(values, &calm, size)
        .into_iter()
        .filter(|r| r.slow >= 3 && (r.end - r.start) * size >= CREEP_MINUTES)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let lat = bucket_latencies(ctx, op, size);
    let mut base = LatencyHistogram::default();
    for (v, _) in lat.iter().zip(&mask).filter(|(_, m)| **m) {
        base.merge(v);
    }
    let calm_p95 = base.percentile(95.0)?;
    let above_base = base.count_between(calm_p95.saturating_add(1), u32::MAX) as f64;
    // What the calm half itself shows (about 5%), never below 5%.
    let q0 = (above_base / base.count().max(1) as f64).max(0.05);
    let mut best: Option<(Run, String, f64)> = None;
    for r in candidates {
        let mut inside = LatencyHistogram::default();
        for v in lat.get(r.start..r.end.min(lat.len())).unwrap_or_default() {
            inside.merge(v);
        }
        let n = inside.count();
        let k = inside.count_between(calm_p95.saturating_add(1), u32::MAX);
        let share = k as f64 / n.max(1) as f64;
        let p = super::stats::binom_tail(k, n, q0);
        if share < CREEP_SHARE || p >= CREEP_P {
            continue;
        }
        if best.as_ref().is_none_or(|b| p < b.2) {
            let note = format!(
                "judged against the calmer half of the span (a creep lifts the whole span's median); {k} of {n} requests in the window took longer than the calm p95 of {calm_p95} ms ({:.0}%, {:.0}% expected; binomial tail p {})",
                share * 100.0,
                q0 * 100.0,
                super::fmt_p(p)
            );
            best = Some((r, note, p));
        }
    }
    best.map(|(r, note, _)| (r, note))
}

fn regression(ctx: &Ctx, op: &OpRollup) -> Option<Finding> {
    // p95 first; p99 only where p95 shows nothing; then a slow creep of p95.
    let mut found = None;
    let mut note = None;
    for (metric, target) in [("p95", P95_REQUESTS), ("p99", P99_REQUESTS)] {
        let Some(size) = bucket_size(op, ctx.len, target) else {
            continue;
        };
        let bs = buckets(ctx, op, size);
        let min = (target * 2.0 / 3.0) as u64;
        let values = percentile_series(&bs, min, |b| if metric == "p95" { b.p95 } else { b.p99 });
        if let Some(run) = runs(&values, size)
            .into_iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
        {
            found = Some((metric, size, bs, values, run, min));
            break;
        }
    }
    if found.is_none()
        && let Some(size) = bucket_size(op, ctx.len, P95_REQUESTS)
    {
        let bs = buckets(ctx, op, size);
        let min = (P95_REQUESTS * 2.0 / 3.0) as u64;
        let values = percentile_series(&bs, min, |b| b.p95);
        if let Some((run, why)) = creep(ctx, op, size, &values) {
            note = Some(why);
            found = Some(("p95", size, bs, values, run, min));
        }
    }
    let (metric, size, bs, values, mut run, min) = found?;
    extend_onset(&values, &mut run, size);
    let window = ctx.window(run.start * size, (run.end * size).min(ctx.len));
    let ratio = run.peak / run.baseline.max(1.0);
    let requests: u64 = bs[run.start..run.end].iter().map(|b| b.requests).sum();
    // Did the backend get slower, or the gateway (policies, client)?
    let backend = percentile_series(&bs, min, |b| b.backend_p95);
    let base_backend = median(&backend.iter().flatten().copied().collect::<Vec<_>>());
    let in_backend = median(
        &backend[run.start..run.end]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>(),
    );
    let in_total = median(
        &values[run.start..run.end]
            .iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>(),
    );
    let where_ = match (base_backend, in_backend, in_total) {
        (Some(bb), Some(ib), Some(it)) if ib - bb >= 0.6 * (it - run.baseline) => {
            "BackendTime rose with it: the backend got slower"
        }
        (Some(_), Some(_), Some(_)) => {
            "BackendTime did not rise as much: time is spent in the gateway (policies) or the client"
        }
        _ => "no BackendTime to attribute it",
    };
    let minutes = window.duration_minutes();
    let severity = if ratio >= 3.0 || (ratio >= 2.0 && minutes >= 60) {
        Severity::High
    } else {
        Severity::Medium
    };
    let label = ctx.op_label(&op.api, &op.operation);
    let summary = format!(
        "{metric} latency of {label} rose to {:.0} ms ({ratio:.1}x its baseline of {:.0} ms) {}–{} UTC, sustained {minutes} min",
        run.peak,
        run.baseline,
        window.start.hhmm(),
        window.end.hhmm(),
    );
    let peak_time = ctx.time_of(run.peak_at * size);
    let mut ev = Evidence::text(format!(
        "{} of {} buckets of {size} min above {:.0} ms (median + {SIGMAS} robust sigmas, at least {MIN_RATIO}x); peak {:.0} ms at {} UTC; {requests} requests in the window; {where_}",
        run.slow,
        run.end - run.start,
        run.baseline,
        run.peak,
        peak_time.hhmm()
    ))
    .value("baseline_ms", run.baseline)
    .value("peak_ms", run.peak)
    .value("ratio", ratio)
    .value("duration_minutes", minutes as f64)
    .value("bucket_minutes", size as f64)
    .value("requests", requests as f64);
    if let Some(n) = &note {
        ev.text = format!("{}; {n}", ev.text);
    }
    if let (Some(bb), Some(ib)) = (base_backend, in_backend) {
        ev = ev
            .value("backend_p95_baseline_ms", bb)
            .value("backend_p95_in_window_ms", ib);
    }
    ev.records = slow_records(ctx, op, window, run.baseline);
    ev.sources = super::sources_of(&ev.records);
    let confidence = (0.6 + 0.03 * run.slow as f64).min(0.95);
    Some(
        Finding::new(
            FindingKind::LatencyRegression,
            severity,
            Subject::operation(&op.api, &op.operation),
            summary,
        )
        .window(window)
        .evidence(ev)
        .confidence(confidence),
    )
}

/// Bucket values with enough requests, `None` elsewhere.
fn percentile_series(
    bs: &[Bucket],
    min: u64,
    f: impl Fn(&Bucket) -> Option<u32>,
) -> Vec<Option<f64>> {
    bs.iter()
        .map(|b| (b.requests >= min).then(|| f(b).map(f64::from)).flatten())
        .collect()
}

/// Samples are kept for failing requests only; show the slow ones among
/// them, else any from the window.
fn slow_records(
    ctx: &Ctx,
    op: &OpRollup,
    window: crate::model::Window,
    baseline: f64,
) -> Vec<crate::model::RequestRecord> {
    let key = |k: &crate::model::SeriesKey| k.api_id == op.api && k.operation_id == op.operation;
    let slow = ctx.samples(window, key, |r| f64::from(r.total_time_ms) > baseline, 3);
    if slow.is_empty() {
        ctx.samples(window, key, |_| true, 3)
    } else {
        slow
    }
}
