//! Anomaly detection for any metric series (latency, CPU, memory, capacity,
//! request rate): a robust, streaming detector that scores every point in
//! 0..1 with the band it expected, raises one alarm per incident, and turns
//! alarms into `metric_anomaly` findings with evidence.
//!
//! How it decides (details in `engine`): each point is compared with a
//! reference that leaves out the last few hours, so an incident in progress
//! is not "normal" yet. A point alarms when it leaves the range of the past
//! week by a margin, or the robust band (median ± 6 robust σ, with a floor of
//! 5% of the series' level so flat series ignore tiny changes); a sustained
//! shift alarms when the median of the last 12 points leaves the band of
//! past medians. Daily and weekly seasonal profiles are used where the
//! history covers them and they explain the series clearly better. After an
//! alarm the detector is muted for 72 points. Count-based signals (5xx
//! among requests) are judged by the statistical tests in `spikes`, not here.

mod engine;

pub use engine::{DetectorConfig, Signal};

use crate::model::{
    Evidence, Finding, FindingKind, MetricSeries, MetricSource, Severity, Snapshot, Subject,
    Timestamp, Window,
};

/// One scored point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub time: Timestamp,
    pub value: f64,
    /// 0..1: how far outside the expected band (0.5 = on its edge). 0 while
    /// the detector is still learning and for non-finite values.
    pub score: f64,
    /// The expected band for this point (NaN while learning).
    pub expected_low: f64,
    pub expected_high: f64,
    /// The expected value: the centre of the band.
    pub expected: f64,
    /// What drove the score: the value itself or a sustained shift.
    pub signal: Signal,
    /// An alarm is raised here: out of band, persistent, not muted.
    pub alarm: bool,
}

impl Scored {
    /// The score as `detect` writes it: the score itself on alarming rows,
    /// capped below 0.5 everywhere else (muted, not yet persistent), so
    /// "score >= 0.5" is exactly "alarm".
    pub fn alarm_score(&self) -> f64 {
        if self.alarm {
            self.score.max(0.5)
        } else {
            self.score.min(0.49)
        }
    }
}

/// Scores every point of a series, judging each only on the points before
/// it. Points need not be sorted (they are judged in time order and
/// returned in input order); non-finite values are scored 0 and ignored.
pub fn score_series(points: &[(Timestamp, f64)], cfg: &DetectorConfig) -> Vec<Scored> {
    let sorted = points.windows(2).all(|w| match w {
        [a, b] => a.0 <= b.0,
        _ => true,
    });
    let order: Vec<usize> = if sorted {
        (0..points.len()).collect()
    } else {
        let mut o: Vec<usize> = (0..points.len()).collect();
        o.sort_by_key(|&i| points.get(i).map(|p| p.0));
        o
    };
    let times: Vec<i64> = order
        .iter()
        .filter_map(|&i| points.get(i))
        .map(|p| p.0.millis())
        .collect();
    let values: Vec<f64> = order
        .iter()
        .filter_map(|&i| points.get(i))
        .map(|p| p.1)
        .collect();
    let verdicts = engine::run(&times, &values, cfg);
    let mut out: Vec<Scored> = points
        .iter()
        .map(|&(time, value)| Scored {
            time,
            value,
            score: 0.0,
            expected_low: f64::NAN,
            expected_high: f64::NAN,
            expected: f64::NAN,
            signal: Signal::None,
            alarm: false,
        })
        .collect();
    for (&i, v) in order.iter().zip(verdicts) {
        if let Some(s) = out.get_mut(i) {
            s.score = v.score;
            s.expected_low = v.low;
            s.expected_high = v.high;
            s.expected = v.expected;
            s.signal = v.signal;
            s.alarm = v.alarm;
        }
    }
    out
}

/// Which way an anomaly went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Above the band.
    Up,
    /// Below the band.
    Down,
}

/// One anomaly: from an alarm to the last point of the run of out-of-band
/// points that follows it, with the band expected at the alarm.
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    pub start: Timestamp,
    /// Time of the last out-of-band point (inclusive).
    pub end: Timestamp,
    /// The observed value farthest from the expected one.
    pub peak: f64,
    pub expected_low: f64,
    pub expected_high: f64,
    pub expected: f64,
    /// The highest score in the run.
    pub score: f64,
    pub direction: Direction,
    /// A single point (spike or dip) or a sustained shift of the level.
    pub signal: Signal,
    /// The points of the run, in time order.
    pub points: Vec<(Timestamp, f64)>,
}

impl Anomaly {
    /// One line: what was seen against what was expected.
    pub fn describe(&self) -> String {
        let what = match (self.signal, self.direction) {
            (Signal::Shift, Direction::Up) => "shifted up to",
            (Signal::Shift, Direction::Down) => "shifted down to",
            (_, Direction::Up) => "rose to",
            (_, Direction::Down) => "fell to",
        };
        format!(
            "{what} {} at {}, expected {} to {} (score {:.2})",
            num(self.peak),
            self.start.to_rfc3339(),
            num(self.expected_low),
            num(self.expected_high),
            self.score
        )
    }
}

/// Anomaly windows (merged consecutive out-of-band points after each alarm)
/// with their explanation, in time order.
pub fn anomalies(points: &[(Timestamp, f64)], cfg: &DetectorConfig) -> Vec<Anomaly> {
    let mut scored = score_series(points, cfg);
    scored.sort_by_key(|s| s.time);
    let mut out: Vec<Anomaly> = Vec::new();
    let mut open: Option<Anomaly> = None;
    for s in &scored {
        if s.alarm {
            if let Some(a) = open.take() {
                out.push(a);
            }
            let direction = if s.value >= s.expected {
                Direction::Up
            } else {
                Direction::Down
            };
            open = Some(Anomaly {
                start: s.time,
                end: s.time,
                peak: s.value,
                expected_low: s.expected_low,
                expected_high: s.expected_high,
                expected: s.expected,
                score: s.score,
                direction,
                signal: s.signal,
                points: vec![(s.time, s.value)],
            });
            continue;
        }
        let Some(a) = open.as_mut() else {
            continue;
        };
        if !s.value.is_finite() {
            continue;
        }
        if s.score < 0.5 {
            if let Some(a) = open.take() {
                out.push(a);
            }
            continue;
        }
        a.end = s.time;
        a.score = a.score.max(s.score);
        a.points.push((s.time, s.value));
        if (s.value - a.expected).abs() > (a.peak - a.expected).abs() {
            a.peak = s.value;
        }
    }
    out.extend(open);
    out
}

/// Fewest finite points a series needs before it is judged at all.
pub fn min_points(cfg: &DetectorConfig) -> usize {
    cfg.holdout_rows + cfg.min_rows + 1
}

/// Error and response-code counts: judged by the count-based tests of the
/// traffic detectors, not by this generic detector.
fn is_error_count(s: &MetricSeries) -> bool {
    let name = s.name.to_ascii_lowercase();
    if matches!(
        name.as_str(),
        "failedrequests" | "unauthorizedrequests" | "otherrequests"
    ) {
        return true;
    }
    s.dimensions.iter().any(|(k, v)| {
        let k = k.to_ascii_lowercase();
        k == "lasterrorreason"
            || ((k.contains("responsecode") || k.contains("statuscode"))
                && (v.starts_with('4') || v.starts_with('5')))
    })
}

/// The series' name as a finding subject: `Requests[hostname=x]`,
/// `CpuPercentage (average)`.
fn metric_label(s: &MetricSeries) -> String {
    let mut label = s.name.clone();
    if !s.dimensions.is_empty() {
        let dims: Vec<String> = s
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        label.push('[');
        label.push_str(&dims.join(","));
        label.push(']');
    }
    if !s.aggregation.is_empty() {
        label.push_str(&format!(" ({})", s.aggregation.to_ascii_lowercase()));
    }
    label
}

/// `metric_anomaly` findings for the snapshot's metric series (CPU, memory,
/// capacity, latency, request rate): one finding per series that has
/// anomalies, about its latest anomaly, with one piece of evidence per
/// anomaly (expected band, observed peak, the points). Series too short to
/// judge and error counts are skipped.
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let cfg = DetectorConfig::default();
    let mut out = Vec::new();
    for series in &snapshot.metrics {
        if is_error_count(series) {
            continue;
        }
        let finite = series.points.iter().filter(|p| p.1.is_finite()).count();
        if finite < min_points(&cfg) {
            continue;
        }
        let found = anomalies(&series.points, &cfg);
        if let Some(f) = series_finding(series, &found) {
            out.push(f);
        }
    }
    out
}

/// Evidence pieces kept per finding (the most recent anomalies).
const MAX_EVIDENCE: usize = 5;
/// Points listed per anomaly in the evidence excerpt.
const MAX_POINTS: usize = 12;

fn series_finding(series: &MetricSeries, found: &[Anomaly]) -> Option<Finding> {
    let latest = found.last()?;
    let label = metric_label(series);
    let mut subject = Subject {
        metric: Some(label.clone()),
        ..Subject::default()
    };
    match series.source {
        MetricSource::Gateway => subject.service = series.resource.clone(),
        MetricSource::BackendApp => subject.backend = series.resource.clone(),
        MetricSource::Other => {}
    }
    let severity = if latest.score >= 0.9 {
        Severity::Medium
    } else {
        Severity::Low
    };
    let unit = series.unit.as_deref().unwrap_or("");
    let on = series
        .resource
        .as_deref()
        .map(|r| format!(" on {r}"))
        .unwrap_or_default();
    let more = match found.len() {
        1 => String::new(),
        n => format!(" ({n} anomalies in the series)"),
    };
    let summary = format!("{label}{on} {}{more}", latest.describe());
    let step = typical_step_ms(&series.points);
    let window = Window {
        start: latest.start,
        end: Timestamp::from_millis(latest.end.millis().saturating_add(step)),
    };
    let mut finding = Finding::new(FindingKind::MetricAnomaly, severity, subject, summary)
        .window(window)
        .confidence(latest.score);
    let skip = found.len().saturating_sub(MAX_EVIDENCE);
    for a in found.iter().skip(skip).rev() {
        let listed: Vec<String> = a
            .points
            .iter()
            .take(MAX_POINTS)
            .map(|(t, v)| {
                format!(
                    "{} {}{unit_sp}{unit}",
                    t.to_rfc3339(),
                    num(*v),
                    unit_sp = if unit.is_empty() { "" } else { " " }
                )
            })
            .collect();
        let mut excerpt = listed.join("\n");
        if a.points.len() > MAX_POINTS {
            excerpt.push_str(&format!("\n… {} more points", a.points.len() - MAX_POINTS));
        }
        let mut e = Evidence::text(format!("{label} {}", a.describe()))
            .value("observed", a.peak)
            .value("expected", a.expected)
            .value("expected_low", a.expected_low)
            .value("expected_high", a.expected_high)
            .value("score", a.score)
            .value("points", a.points.len() as f64);
        e.excerpt = Some(excerpt);
        e.sources.push(series.origin.clone());
        finding = finding.evidence(e);
    }
    Some(finding)
}

fn typical_step_ms(points: &[(Timestamp, f64)]) -> i64 {
    let mut d: Vec<i64> = points
        .windows(2)
        .filter_map(|w| match w {
            [a, b] if b.0 > a.0 => Some(b.0.millis() - a.0.millis()),
            _ => None,
        })
        .collect();
    d.sort_unstable();
    d.get(d.len() / 2).copied().unwrap_or(60_000)
}

/// A number for a sentence: few digits, no exponent for everyday sizes.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.3e}", v)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}
