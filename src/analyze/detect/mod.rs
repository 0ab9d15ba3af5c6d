//! Anomaly detection for any metric series (latency, CPU, memory, capacity,
//! request rate): a robust, streaming detector that scores every point in
//! 0..1 with the band it expected, raises one alarm per incident, and turns
//! alarms into `metric_anomaly` findings with evidence.
//!
//! How it decides (details in `engine`): each point is compared with a
//! reference that leaves out the most recent 72 points, so an incident in
//! progress is not "normal" yet. A point alarms when it leaves both the
//! range of the past two weeks (plus 10% of that range) and the robust band
//! (median ± 6 robust σ, σ from the interquartile range and at least 5% of
//! the series' level, so on a flat series only a change of about 30% of the
//! level counts); a sustained shift alarms when the median of
//! the last 12 points leaves the same kind of band built from past medians.
//! A steady trend is expected to continue; daily and weekly seasonal
//! profiles are used where the history covers them and they explain the
//! series clearly better. One alarm per incident: muted for 72 points and
//! until the series is back in band. Count-based signals (5xx among
//! requests) are judged by the statistical tests in `spikes`, not here.

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
/// points that follows it, with its peak (the point farthest beyond its
/// band) and the band expected there.
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    pub start: Timestamp,
    /// Time of the last out-of-band point (inclusive).
    pub end: Timestamp,
    /// The observed value farthest beyond its band.
    pub peak: f64,
    /// When the peak was observed.
    pub peak_time: Timestamp,
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
        let since = if self.start == self.peak_time {
            String::new()
        } else {
            format!(" (out of band from {})", self.start.to_rfc3339())
        };
        format!(
            "{what} {} at {}{since}, expected {} to {} (score {:.2})",
            num(self.peak),
            self.peak_time.to_rfc3339(),
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
    let mut open: Option<(Anomaly, f64)> = None;
    for s in &scored {
        if s.alarm {
            out.extend(open.take().map(|(a, _)| a));
            let mut a = Anomaly {
                start: s.time,
                end: s.time,
                peak: s.value,
                peak_time: s.time,
                expected_low: s.expected_low,
                expected_high: s.expected_high,
                expected: s.expected,
                score: s.score,
                direction: Direction::Up,
                signal: s.signal,
                points: Vec::new(),
            };
            take_peak(&mut a, s);
            open = Some((a, excess(s)));
            continue;
        }
        let Some((a, best)) = open.as_mut() else {
            continue;
        };
        if !s.value.is_finite() {
            continue;
        }
        if s.score < 0.5 {
            out.extend(open.take().map(|(a, _)| a));
            continue;
        }
        a.end = s.time;
        a.score = a.score.max(s.score);
        a.points.push((s.time, s.value));
        let e = excess(s);
        if e > *best {
            *best = e;
            take_peak(a, s);
        }
    }
    out.extend(open.map(|(a, _)| a));
    out
}

/// How far a point lies towards its band edge (1 = on the edge).
fn excess(s: &Scored) -> f64 {
    let (edge, d) = if s.value >= s.expected {
        (s.expected_high - s.expected, s.value - s.expected)
    } else {
        (s.expected - s.expected_low, s.expected - s.value)
    };
    let e = d / edge.max(f64::MIN_POSITIVE);
    if e.is_finite() { e } else { 0.0 }
}

/// Makes `s` the anomaly's peak: its value, time, band and direction.
fn take_peak(a: &mut Anomaly, s: &Scored) {
    a.peak = s.value;
    a.peak_time = s.time;
    a.expected_low = s.expected_low;
    a.expected_high = s.expected_high;
    a.expected = s.expected;
    a.direction = if s.value >= s.expected {
        Direction::Up
    } else {
        Direction::Down
    };
    if a.points.last().is_none_or(|p| p.0 != s.time) {
        a.points.push((s.time, s.value));
    }
}

/// Fewest finite points a series needs before any of them is judged (the
/// first `min_rows` reference rows plus the shortest holdout).
pub fn min_points(cfg: &DetectorConfig) -> usize {
    cfg.min_rows + cfg.smooth_rows.min(cfg.holdout_rows) + 1
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
    // App Service `Http4xx`, `Http5xx`, …
    if let Some(code) = name.strip_prefix("http")
        && code.len() == 3
        && code.ends_with("xx")
        && (code.starts_with('4') || code.starts_with('5'))
    {
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
/// judge and error counts are skipped, and so are anomalies that only
/// graze the band (peak score under `FINDING_MIN_SCORE`).
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
        let found: Vec<Anomaly> = anomalies(&series.points, &cfg)
            .into_iter()
            .filter(worth_a_finding)
            .collect();
        if let Some(f) = series_finding(series, &found) {
            out.push(f);
        }
    }
    out
}

/// A diagnosis reports an anomaly only when its departure became clear at
/// some point: a score of 0.7 or more, i.e. the peak is about a quarter
/// further from the expected value than the band edge. Anomalies that only
/// graze the band stay visible in `detect`'s raw output and scores. (On
/// simulated healthy and incident scenarios this removed every false
/// finding and kept 62 of 65 true ones.)
pub const FINDING_MIN_SCORE: f64 = 0.7;

fn worth_a_finding(a: &Anomaly) -> bool {
    a.score >= FINDING_MIN_SCORE
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
    let mut d: Vec<u64> = points
        .windows(2)
        .filter_map(|w| match w {
            [a, b] if b.0 > a.0 => Some(b.0.millis().abs_diff(a.0.millis())),
            _ => None,
        })
        .collect();
    d.sort_unstable();
    d.get(d.len() / 2)
        .map_or(60_000, |&m| i64::try_from(m).unwrap_or(i64::MAX))
}

/// A number for a sentence: few digits, no exponent for everyday sizes.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    if v == 0.0 {
        return "0".into();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MetricSeries, Origin};
    use std::collections::BTreeMap;

    /// Deterministic noise in -1..1 (a linear congruential generator).
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
    }

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn settings_are_changed_by_name_and_bad_ones_are_refused() {
        let mut c = DetectorConfig::default();
        c.set("point_z", "5.5").unwrap();
        c.set("mute_rows", "36").unwrap();
        c.set("seasonality", "false").unwrap();
        c.set("history_days", "7").unwrap();
        assert_eq!(c.point_z, 5.5);
        assert_eq!(c.mute_rows, 36);
        assert!(!c.seasonality);
        assert_eq!(c.history_secs, 7 * 86_400);
        for key in DetectorConfig::KEYS {
            assert!(
                !c.set(key, "not a value").unwrap_err().is_empty(),
                "{key} took garbage"
            );
        }
        assert!(c.set("point_z", "-1").is_err());
        assert!(c.set("mute_rows", "0").is_err());
        let e = c.set("zscore", "3").unwrap_err();
        assert!(e.contains("point_z"), "{e}");
    }

    /// `n` points every `step_min` minutes, value from `f(row, noise)`.
    fn series(
        n: usize,
        step_min: i64,
        mut f: impl FnMut(usize, f64) -> f64,
    ) -> Vec<(Timestamp, f64)> {
        let mut noise = Noise(7);
        (0..n)
            .map(|i| {
                let t = Timestamp::from_millis(T0 + i as i64 * step_min * 60_000);
                (t, f(i, noise.next()))
            })
            .collect()
    }

    fn alarms(scored: &[Scored]) -> Vec<usize> {
        scored
            .iter()
            .enumerate()
            .filter(|(_, s)| s.alarm)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn flat_series_with_tiny_noise_does_not_alarm() {
        let cfg = DetectorConfig::default();
        // 50 ± 0.2, with a 1% wiggle later: both far below the 5% floor.
        let pts = series(3000, 1, |i, e| {
            50.0 + 0.2 * e + if i > 2000 { 0.5 } else { 0.0 }
        });
        let scored = score_series(&pts, &cfg);
        assert_eq!(alarms(&scored), Vec::<usize>::new());
        assert!(scored.iter().all(|s| s.score < 0.5));
    }

    #[test]
    fn step_change_alarms_once_near_the_step() {
        let cfg = DetectorConfig::default();
        let pts = series(1500, 1, |i, e| if i < 1000 { 50.0 + e } else { 80.0 + e });
        let a = alarms(&score_series(&pts, &cfg));
        assert_eq!(a, vec![1000], "one alarm, at the step");
        let found = anomalies(&pts, &cfg);
        assert_eq!(found.len(), 1);
        let an = &found[0];
        assert_eq!(an.direction, Direction::Up);
        assert!(an.expected_high < 80.0 && an.expected_low < 50.0, "{an:?}");
        assert!((an.expected - 50.0).abs() < 1.0, "{an:?}");
        assert!(
            an.points.len() > 10,
            "the shift lasts while it is in holdout"
        );
        assert!(an.describe().contains("expected"), "{}", an.describe());
    }

    #[test]
    fn gradual_shift_is_caught_by_the_recent_median() {
        let cfg = DetectorConfig::default();
        // A ramp from 50 down to 20 over 60 rows: each point only a little
        // below the last, but the recent median leaves the band.
        let pts = series(1500, 1, |i, e| {
            let ramp = if i < 1000 {
                0.0
            } else {
                (i - 1000).min(60) as f64 * 0.5
            };
            50.0 - ramp + e
        });
        let scored = score_series(&pts, &cfg);
        let a = alarms(&scored);
        assert_eq!(a.len(), 1, "{a:?}");
        assert!((1000..1070).contains(&a[0]), "{a:?}");
    }

    #[test]
    fn a_rising_day_is_not_an_incident() {
        let cfg = DetectorConfig::default();
        // Six hours of a morning ramp at 1-minute points: 230 -> 600
        // requests a minute with Poisson-like noise.
        let pts = series(360, 1, |i, e| {
            let level = 230.0 + 370.0 * i as f64 / 360.0;
            level + 2.0 * level.sqrt() * e
        });
        assert_eq!(alarms(&score_series(&pts, &cfg)), Vec::<usize>::new());
    }

    #[test]
    fn a_memory_leak_in_a_short_series_is_caught() {
        let cfg = DetectorConfig::default();
        // 6 hours at 5 minutes (72 points): memory at 40% ± 0.5, then a
        // leak from row 36 adds 5.5 points every 5 minutes.
        let pts = series(72, 5, |i, e| {
            let leak = if i < 36 {
                0.0
            } else {
                5.5 * (i - 35).min(10) as f64
            };
            40.0 + 0.5 * e + leak
        });
        assert!(pts.len() >= min_points(&cfg));
        let a = alarms(&score_series(&pts, &cfg));
        assert_eq!(a.len(), 1, "{a:?}");
        assert!((36..40).contains(&a[0]), "{a:?}");
    }

    #[test]
    fn spike_alarms_at_the_spike() {
        let cfg = DetectorConfig::default();
        let pts = series(
            1200,
            1,
            |i, e| if i == 900 { 200.0 } else { 50.0 + 2.0 * e },
        );
        let scored = score_series(&pts, &cfg);
        assert_eq!(alarms(&scored), vec![900]);
        let s = scored[900];
        assert!(s.score > 0.9 && s.expected_high < 200.0, "{s:?}");
        assert_eq!(s.signal, Signal::Point);
        let found = anomalies(&pts, &cfg);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].peak, 200.0);
        assert_eq!(found[0].start, found[0].end, "a one-point anomaly");
    }

    #[test]
    fn daily_seasonality_is_learnt() {
        let cfg = DetectorConfig::default();
        let day = 288; // 5-minute points
        let wave = |i: usize| 100.0 + 50.0 * (i as f64 / day as f64 * std::f64::consts::TAU).sin();
        let mut pts = series(7 * day, 5, |i, e| wave(i) + 2.0 * e);
        let after_first_day = day + cfg.holdout_rows;
        let quiet = score_series(&pts, &cfg);
        let late: Vec<usize> = alarms(&quiet)
            .into_iter()
            .filter(|&i| i >= after_first_day)
            .collect();
        assert_eq!(
            late,
            Vec::<usize>::new(),
            "normal daily peaks must not alarm"
        );
        // At the daily low (18:00 of the cycle), a day-time peak value: within
        // the overall range, but far from normal for that time of day.
        let at = 6 * day + day * 3 / 4;
        pts[at].1 = 150.0;
        let scored = score_series(&pts, &cfg);
        assert_eq!(
            alarms(&scored)
                .into_iter()
                .filter(|&i| i >= after_first_day)
                .collect::<Vec<_>>(),
            vec![at]
        );
        assert!(scored[at].expected_high < 100.0, "{:?}", scored[at]);
    }

    #[test]
    fn weekly_profile_covers_a_quiet_weekend() {
        let cfg = DetectorConfig::default();
        let day = 48; // 30-minute points
        let value = |i: usize| {
            let weekend = (i / day) % 7 >= 5;
            let daily = 1.0 + (i % day) as f64 / day as f64;
            if weekend {
                300.0 * daily
            } else {
                1000.0 * daily
            }
        };
        let pts = series(6 * 7 * day, 30, |i, e| value(i) + 5.0 * e);
        let scored = score_series(&pts, &cfg);
        let late: Vec<usize> = alarms(&scored)
            .into_iter()
            .filter(|&i| i >= 3 * 7 * day)
            .collect();
        assert_eq!(
            late,
            Vec::<usize>::new(),
            "weekends are normal after three weeks"
        );
    }

    #[test]
    fn scores_stay_within_0_and_1() {
        let cfg = DetectorConfig::default();
        let mut noise = Noise(3);
        let pts: Vec<(Timestamp, f64)> = (0..2000)
            .map(|i| {
                let e = noise.next();
                let v = match i % 97 {
                    0 => 1e300,
                    1 => -1e300,
                    2 => 0.0,
                    3 => f64::NAN,
                    4 => f64::INFINITY,
                    _ => 10.0 * e * e * e * 1e6,
                };
                (Timestamp::from_millis(T0 + i * 60_000), v)
            })
            .collect();
        for s in score_series(&pts, &cfg) {
            assert!((0.0..=1.0).contains(&s.score), "{s:?}");
            assert!((0.0..=1.0).contains(&s.alarm_score()), "{s:?}");
            assert_eq!(s.alarm, s.alarm_score() >= 0.5, "{s:?}");
        }
    }

    #[test]
    fn bad_input_is_handled() {
        let cfg = DetectorConfig::default();
        assert!(score_series(&[], &cfg).is_empty());
        assert!(anomalies(&[], &cfg).is_empty());
        let nan = series(500, 1, |_, _| f64::NAN);
        let scored = score_series(&nan, &cfg);
        assert_eq!(scored.len(), 500);
        assert!(scored.iter().all(|s| s.score == 0.0 && !s.alarm));
        // Gaps of NaN inside a step series: the step is still found, and the
        // NaN rows themselves never alarm.
        let holes = series(1500, 1, |i, e| match i {
            _ if i % 10 == 3 => f64::NAN,
            _ if i < 1000 => 50.0 + e,
            _ => 80.0 + e,
        });
        let a = alarms(&score_series(&holes, &cfg));
        assert_eq!(a, vec![1000]);
        // Too short to learn: no alarm at all.
        let short = series(40, 1, |i, _| i as f64 * 100.0);
        assert_eq!(alarms(&score_series(&short, &cfg)), Vec::<usize>::new());
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let cfg = DetectorConfig::default();
        let pts: Vec<(Timestamp, f64)> = (0..200)
            .map(|i| {
                let t = match i % 3 {
                    0 => i64::MIN + i,
                    1 => i64::MAX - 200 + i,
                    _ => i * 60_000,
                };
                (Timestamp::from_millis(t), if i == 150 { 1e9 } else { 1.0 })
            })
            .collect();
        let scored = score_series(&pts, &cfg);
        assert_eq!(scored.len(), 200);
        let snapshot = Snapshot {
            metrics: vec![metric("Capacity", &[], pts)],
            ..Snapshot::default()
        };
        let _ = findings(&snapshot);
    }

    #[test]
    fn unsorted_points_are_scored_in_time_order() {
        let cfg = DetectorConfig::default();
        let pts = series(1200, 1, |i, e| if i == 900 { 200.0 } else { 50.0 + e });
        let sorted = score_series(&pts, &cfg);
        let mut shuffled = pts.clone();
        shuffled.reverse();
        let back = score_series(&shuffled, &cfg);
        assert_eq!(back[1199 - 900].time, pts[900].0);
        assert!(back[1199 - 900].alarm);
        let mut again: Vec<Scored> = back.clone();
        again.reverse();
        assert_eq!(again.len(), sorted.len());
        for (a, b) in again.iter().zip(&sorted) {
            assert_eq!((a.time, a.alarm), (b.time, b.alarm));
        }
    }

    #[test]
    fn grazing_anomalies_are_not_findings() {
        let t = Timestamp::from_millis(T0);
        let grazing = Anomaly {
            start: t,
            end: t.plus_minutes(5),
            peak: 10.5,
            peak_time: t,
            expected_low: 0.0,
            expected_high: 10.0,
            expected: 5.0,
            score: 0.55,
            direction: Direction::Up,
            signal: Signal::Shift,
            points: (0..6).map(|i| (t.plus_minutes(i), 10.2)).collect(),
        };
        assert!(!worth_a_finding(&grazing));
        let clear = Anomaly {
            score: 0.8,
            ..grazing
        };
        assert!(worth_a_finding(&clear));
    }

    fn metric(name: &str, dims: &[(&str, &str)], points: Vec<(Timestamp, f64)>) -> MetricSeries {
        MetricSeries {
            resource: Some("apim-prod".into()),
            name: name.into(),
            unit: Some("Percent".into()),
            aggregation: "average".into(),
            dimensions: dims
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            points,
            origin: Origin::file("metrics.json"),
            ..MetricSeries::default()
        }
    }

    #[test]
    fn findings_for_metric_series() {
        let step = series(1500, 1, |i, e| if i < 1000 { 30.0 + e } else { 85.0 + e });
        let flat = series(1500, 1, |_, e| 30.0 + e);
        assert!(30 < min_points(&DetectorConfig::default()));
        let short = series(30, 1, |i, _| if i < 25 { 30.0 } else { 90.0 });
        let errors = series(1500, 1, |i, e| if i < 1000 { 1.0 + e } else { 80.0 });
        let snapshot = Snapshot {
            metrics: vec![
                metric("Capacity", &[], step),
                metric("CpuPercent_Gateway", &[], flat),
                metric("MemoryPercent_Gateway", &[], short),
                metric(
                    "Requests",
                    &[("gatewayresponsecodecategory", "5xx")],
                    errors.clone(),
                ),
                metric("Http5xx", &[], errors),
            ],
            ..Snapshot::default()
        };
        let found = findings(&snapshot);
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::MetricAnomaly);
        assert_eq!(f.subject.metric.as_deref(), Some("Capacity (average)"));
        assert_eq!(f.subject.service.as_deref(), Some("apim-prod"));
        assert!(
            f.summary.contains("rose to") && f.summary.contains("expected"),
            "{}",
            f.summary
        );
        assert_eq!(
            f.window.map(|w| w.start),
            Some(Timestamp::from_millis(T0 + 1000 * 60_000))
        );
        let e = &f.evidence[0];
        assert!(e.values["observed"] > 84.0);
        assert!(e.values["expected_high"] < 84.0 && e.values["expected_low"] < 30.0);
        assert!(e.excerpt.as_deref().is_some_and(|x| x.contains("Percent")));
        assert_eq!(e.sources, vec![Origin::file("metrics.json")]);
        assert!((0.5..=1.0).contains(&f.confidence));
    }
}
