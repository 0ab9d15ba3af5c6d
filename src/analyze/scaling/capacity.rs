//! Gateway saturation from platform metrics: `Capacity`,
//! `CpuPercent_Gateway` and `MemoryPercent_Gateway` held high.
//!
//! Definition (principled, and documented in the finding): a series is
//! *saturated* at time t when its average over the 10 minutes ending at t is
//! at least 80%, with at least 80% of that window's points present (missing
//! points are missing, not 0). Overlapping saturated windows merge into one
//! episode. 80% is the scale-out threshold the APIM autoscale page suggests
//! for `Capacity`; 10 minutes rules out single-minute spikes. Latency counts
//! as rising when the gateway's `Duration` (or, without it, the p95 of the
//! gateway log) during the episode is at least 1.5× and 50 ms above the
//! hour before it. Pure.

use crate::model::{
    Evidence, Finding, FindingKind, LatencyHistogram, MetricSeries, MetricSource, Origin, Severity,
    Snapshot, Subject, Timestamp, Window, fingerprint, fingerprint_with,
};

/// Saturation metrics, as the REST API names them.
pub const SATURATION_METRICS: [&str; 3] =
    ["Capacity", "CpuPercent_Gateway", "MemoryPercent_Gateway"];
/// Percent at or above which a window counts as saturated.
pub const THRESHOLD_PCT: f64 = 80.0;
/// Length of the averaging window.
pub const WINDOW_MINUTES: i64 = 10;
/// Share of a window's points that must be present.
const COVERAGE: f64 = 0.8;
/// How far back the latency baseline looks.
const BASELINE_MINUTES: i64 = 60;

/// One stretch of sustained saturation in one series.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub metric: String,
    /// The `location` dimension, when the series has one.
    pub location: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub mean: f64,
    pub peak: f64,
    pub origin: Origin,
}

impl Episode {
    pub fn minutes(&self) -> i64 {
        (self.end.millis() - self.start.millis()) / 60_000
    }
}

/// Latency before and during an episode.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyRise {
    pub before_ms: f64,
    pub during_ms: f64,
    /// `Duration metric` or `gateway log p95`.
    pub source: &'static str,
}

fn is_saturation_series(s: &MetricSeries) -> bool {
    s.source == MetricSource::Gateway
        && s.aggregation.eq_ignore_ascii_case("average")
        && SATURATION_METRICS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&s.name))
}

/// Sorted, de-duplicated finite points.
fn clean_points(s: &MetricSeries) -> Vec<(Timestamp, f64)> {
    let mut pts: Vec<(Timestamp, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    pts.sort_by_key(|(t, _)| *t);
    pts.dedup_by_key(|(t, _)| *t);
    pts
}

/// The series' time grain in minutes: the median gap, at least 1.
fn grain_minutes(pts: &[(Timestamp, f64)]) -> i64 {
    let mut gaps: Vec<i64> = pts
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some((b.0.millis() - a.0.millis()) / 60_000),
            _ => None,
        })
        .filter(|g| *g > 0)
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().unwrap_or(1).max(1)
}

/// Saturated episodes of one series.
pub fn episodes_of(s: &MetricSeries) -> Vec<Episode> {
    let pts = clean_points(s);
    let grain = grain_minutes(&pts);
    let expected = (WINDOW_MINUTES / grain).max(1);
    let needed = ((expected as f64) * COVERAGE).ceil().max(1.0) as usize;
    let window_ms = WINDOW_MINUTES * 60_000;
    let grain_ms = grain * 60_000;
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let mut lo = 0usize;
    for (hi, (t, _)) in pts.iter().enumerate() {
        while pts
            .get(lo)
            .is_some_and(|(s, _)| s.millis() <= t.millis() - window_ms)
        {
            lo += 1;
        }
        let Some(window) = pts.get(lo..=hi) else {
            continue;
        };
        if window.len() < needed {
            continue;
        }
        let mean = window.iter().map(|(_, v)| v).sum::<f64>() / window.len() as f64;
        if mean < THRESHOLD_PCT {
            continue;
        }
        let start = window.first().map_or(t.millis(), |(s, _)| s.millis());
        let end = t.millis() + grain_ms;
        match spans.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => spans.push((start, end)),
        }
    }
    spans
        .into_iter()
        .filter_map(|(start, end)| {
            // Trim the quiet edges a window average carried in.
            let hot = |(t, v): &&(Timestamp, f64)| {
                start <= t.millis() && t.millis() < end && *v >= THRESHOLD_PCT
            };
            let start = pts.iter().find(hot)?.0.millis();
            let end = pts.iter().rev().find(hot)?.0.millis() + grain_ms;
            Some((start, end))
        })
        .map(|(start, end)| {
            let inside: Vec<f64> = pts
                .iter()
                .filter(|(t, _)| start <= t.millis() && t.millis() < end)
                .map(|(_, v)| *v)
                .collect();
            let mean = inside.iter().sum::<f64>() / inside.len().max(1) as f64;
            let peak = inside.iter().copied().fold(f64::MIN, f64::max);
            Episode {
                metric: s.name.clone(),
                location: s.dimensions.get("location").cloned(),
                start: Timestamp::from_millis(start),
                end: Timestamp::from_millis(end),
                mean,
                peak,
                origin: s.origin.clone(),
            }
        })
        .collect()
}

/// Every saturated episode of the gateway's saturation metrics.
pub fn saturation_episodes(snapshot: &Snapshot) -> Vec<Episode> {
    snapshot
        .metrics
        .iter()
        .filter(|s| is_saturation_series(s))
        .flat_map(episodes_of)
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn rising(before: f64, during: f64) -> bool {
    during >= 1.5 * before && during - before >= 50.0
}

/// Whether gateway latency rose during the episode.
pub fn latency_rise(snapshot: &Snapshot, ep: &Episode) -> Option<LatencyRise> {
    let base_start = ep.start.millis() - BASELINE_MINUTES * 60_000;
    let (mut before, mut during) = (Vec::new(), Vec::new());
    for s in snapshot.metrics.iter().filter(|s| {
        s.source == MetricSource::Gateway
            && s.name.eq_ignore_ascii_case("Duration")
            && s.aggregation.eq_ignore_ascii_case("average")
    }) {
        for (t, v) in s.points.iter().filter(|(_, v)| v.is_finite()) {
            if base_start <= t.millis() && *t < ep.start {
                before.push(*v);
            } else if ep.start <= *t && *t < ep.end {
                during.push(*v);
            }
        }
    }
    if before.len() >= 5 && during.len() >= 3 {
        let mut sorted = before.clone();
        sorted.sort_by(f64::total_cmp);
        let b = sorted.get(sorted.len() / 2).copied()?;
        let d = mean(&during)?;
        return rising(b, d).then_some(LatencyRise {
            before_ms: b,
            during_ms: d,
            source: "Duration metric",
        });
    }
    let (start_m, end_m, base_m) = (
        ep.start.minute(),
        ep.end.minute(),
        base_start.div_euclid(60_000),
    );
    let (mut tb, mut td) = (LatencyHistogram::default(), LatencyHistogram::default());
    for s in &snapshot.traffic.series {
        for (m, st) in s.minutes.range(base_m..end_m) {
            if *m < start_m {
                tb.merge(&st.total_latency);
            } else {
                td.merge(&st.total_latency);
            }
        }
    }
    if tb.count() < 50 || td.count() < 50 {
        return None;
    }
    let b = f64::from(tb.percentile(95.0)?);
    let d = f64::from(td.percentile(95.0)?);
    rising(b, d).then_some(LatencyRise {
        before_ms: b,
        during_ms: d,
        source: "gateway log p95",
    })
}

/// The capacity subject of a metric (service name where known).
pub fn subject_of(snapshot: &Snapshot, metric: &str) -> Subject {
    Subject {
        service: snapshot
            .service
            .as_ref()
            .map(|s| s.name.clone())
            .filter(|n| !n.is_empty()),
        metric: Some(metric.to_string()),
        ..Subject::default()
    }
}

/// One `capacity` finding per saturated series: its worst episode.
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in snapshot.metrics.iter().filter(|s| is_saturation_series(s)) {
        let eps = episodes_of(s);
        let Some(ep) = eps
            .iter()
            .max_by(|a, b| (a.mean * a.minutes() as f64).total_cmp(&(b.mean * b.minutes() as f64)))
        else {
            continue;
        };
        let rise = latency_rise(snapshot, ep);
        let severity = if rise.is_some() || ep.mean >= 95.0 {
            Severity::High
        } else {
            Severity::Medium
        };
        let loc = ep
            .location
            .as_deref()
            .map(|l| format!(" in {l}"))
            .unwrap_or_default();
        let mut summary = format!(
            "Gateway {}{loc} averaged {:.0}% (peak {:.0}%) for {} min, {}–{}",
            ep.metric,
            ep.mean,
            ep.peak,
            ep.minutes(),
            ep.start.hhmm(),
            ep.end.hhmm()
        );
        if let Some(r) = &rise {
            summary.push_str(&format!(
                ", latency up from {:.0} ms to {:.0} ms",
                r.before_ms, r.during_ms
            ));
        }
        let mut e = Evidence::text(format!(
            "{} held a 10-minute average of at least {THRESHOLD_PCT:.0}% from {} to {} ({} episode(s) in the data).",
            ep.metric,
            ep.start,
            ep.end,
            eps.len()
        ))
        .value("mean_pct", ep.mean)
        .value("peak_pct", ep.peak)
        .value("minutes", ep.minutes() as f64)
        .value("threshold_pct", THRESHOLD_PCT);
        e.sources.push(ep.origin.clone());
        let mut f = Finding::new(
            FindingKind::Capacity,
            severity,
            subject_of(snapshot, &ep.metric),
            summary,
        )
        .window(Window {
            start: ep.start,
            end: ep.end,
        })
        .evidence(e)
        .confidence(if rise.is_some() { 0.9 } else { 0.75 });
        if let Some(r) = rise {
            f = f.evidence(
                Evidence::text(format!(
                    "Latency ({}) rose from {:.0} ms in the hour before to {:.0} ms during the episode.",
                    r.source, r.before_ms, r.during_ms
                ))
                .value("latency_before_ms", r.before_ms)
                .value("latency_during_ms", r.during_ms),
            );
        }
        if let Some(l) = &ep.location {
            f.id = fingerprint_with(f.kind, &f.subject, l);
        } else {
            f.id = fingerprint(f.kind, &f.subject);
        }
        out.push(f);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Request, Traffic};

    pub(crate) const T0: i64 = 1_715_677_200_000; // 2024-05-14T09:00:00Z

    pub(crate) fn series(name: &str, agg: &str, values: &[f64]) -> MetricSeries {
        MetricSeries {
            name: name.into(),
            aggregation: agg.into(),
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| (Timestamp::from_millis(T0 + i as i64 * 60_000), *v))
                .collect(),
            ..MetricSeries::default()
        }
    }

    fn snap(metrics: Vec<MetricSeries>) -> Snapshot {
        Snapshot {
            metrics,
            ..Snapshot::default()
        }
    }

    /// 30 quiet minutes, then `hot` minutes at `level`, then 10 quiet.
    pub(crate) fn shape(hot: usize, level: f64) -> Vec<f64> {
        let mut v = vec![40.0; 30];
        v.extend(std::iter::repeat_n(level, hot));
        v.extend(std::iter::repeat_n(40.0, 10));
        v
    }

    #[test]
    fn sustained_capacity_fires() {
        let fs = findings(&snap(vec![series("Capacity", "average", &shape(20, 88.0))]));
        assert_eq!(fs.len(), 1, "{fs:#?}");
        assert_eq!(fs[0].kind, FindingKind::Capacity);
        assert_eq!(fs[0].severity, Severity::Medium);
        assert_eq!(fs[0].subject.metric.as_deref(), Some("Capacity"));
        let w = fs[0].window.unwrap_or(Window {
            start: Timestamp(0),
            end: Timestamp(0),
        });
        assert_eq!(w.start, Timestamp::from_millis(T0 + 30 * 60_000));
        assert!(fs[0].evidence[0].values["mean_pct"] >= 85.0);
    }

    #[test]
    fn short_spike_or_low_load_does_not_fire() {
        let m = vec![
            series("Capacity", "average", &shape(6, 99.0)),
            series("CpuPercent_Gateway", "average", &shape(60, 75.0)),
            // Maximum is not the sustained average.
            series("Capacity", "maximum", &shape(60, 99.0)),
        ];
        assert!(findings(&snap(m)).is_empty());
    }

    #[test]
    fn gaps_are_missing_not_zero() {
        // Two of three points missing while hot: coverage below 80% in
        // every window of this one-minute series.
        let mut s = series("MemoryPercent_Gateway", "average", &shape(30, 90.0));
        s.points
            .retain(|(t, v)| *v < 80.0 || (t.millis() / 60_000) % 3 == 0);
        assert!(findings(&snap(vec![s])).is_empty());
    }

    #[test]
    fn coarser_grain_still_works() {
        // PT5M points: 4 points at 85% = 20 minutes.
        let mut s = series("Capacity", "average", &[]);
        for (i, v) in [40.0, 40.0, 85.0, 85.0, 85.0, 85.0, 40.0]
            .iter()
            .enumerate()
        {
            s.points
                .push((Timestamp::from_millis(T0 + i as i64 * 300_000), *v));
        }
        assert_eq!(findings(&snap(vec![s])).len(), 1);
    }

    #[test]
    fn latency_rise_from_duration_metric_raises_severity() {
        let mut d = vec![120.0; 30];
        d.extend(std::iter::repeat_n(480.0, 20));
        d.extend(std::iter::repeat_n(120.0, 10));
        let fs = findings(&snap(vec![
            series("Capacity", "average", &shape(20, 88.0)),
            series("Duration", "average", &d),
        ]));
        assert_eq!(fs[0].severity, Severity::High);
        assert!(fs[0].summary.contains("latency up"), "{}", fs[0].summary);
        // Flat latency: no rise.
        let fs = findings(&snap(vec![
            series("Capacity", "average", &shape(20, 88.0)),
            series("Duration", "average", &[120.0; 60]),
        ]));
        assert_eq!(fs[0].severity, Severity::Medium);
    }

    #[test]
    fn latency_rise_from_gateway_logs() {
        let mut traffic = Traffic::default();
        for m in 0..60i64 {
            let ms = if (30..50).contains(&m) { 900 } else { 100 };
            for _ in 0..10 {
                traffic.add(
                    &Request {
                        time: Timestamp::from_millis(T0 + m * 60_000),
                        api_id: "a",
                        operation_id: "o",
                        response_code: 200,
                        total_time_ms: ms,
                        ..Request::default()
                    },
                    Origin::default,
                );
            }
        }
        let mut s = snap(vec![series("Capacity", "average", &shape(20, 88.0))]);
        s.traffic = traffic;
        let eps = saturation_episodes(&s);
        let rise = eps.first().and_then(|e| latency_rise(&s, e));
        assert_eq!(rise.map(|r| r.source), Some("gateway log p95"));
    }
}
