//! The streaming detector behind `detect`: one pass over a series, each
//! row judged only on the rows before it. Plain numbers in, plain numbers
//! out (times in milliseconds); the public types live in `detect`.
//!
//! For every row it asks two questions, each against a reference that
//! leaves out the most recent `holdout_rows` rows (so an incident that is
//! still going on is not yet part of "normal"; a quarter of the rows seen
//! while the series is young):
//!
//! - *point*: does the value leave the band `[min - m, max + m]` of the last
//!   `history_secs` of reference values (m = `range_margin` of that range)
//!   and `median ± point_z·scale` of the last `baseline_rows`?
//! - *shift*: does the median of the last `smooth_rows` rows leave the same
//!   kind of band built from past medians? This is the persistence rule: half
//!   of the recent rows must agree before a sustained shift alarms.
//!
//! Until the series covers a day (so the daily swing is not known yet), a
//! steady trend in the reference, like the morning ramp, is expected to go
//! on through the holdout: the band is widened on that side by the trend
//! times the holdout, so a rising morning is not an incident.
//!
//! Both run on the raw values and, where the history covers it, on the
//! residuals of a daily and a weekly seasonal profile (the median of the
//! same time of day over the past 7 days, or of the same time of week over
//! the past 4 weeks); the model whose residuals are clearly tighter wins.
//! After an alarm the detector stays quiet for `mute_rows` rows, and until
//! `smooth_rows` rows in a row are back in band: one alarm per incident.

use std::collections::VecDeque;

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// The detector's settings. The defaults are the settings every caller
/// (`detect`, `diagnose`, the daemon) uses; they were fixed for 1- and
/// 5-minute operational metrics, and row counts scale with the sampling.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Rows of reference for the level and scale (288: a day of 5-minute
    /// points, 4.8 hours of 1-minute points).
    pub baseline_rows: usize,
    /// The most recent rows kept out of the reference (72: 6 h at 5 min;
    /// while the series is young, a quarter of the rows seen, at least
    /// `smooth_rows`).
    pub holdout_rows: usize,
    /// Rows whose median must leave the band for a sustained shift (12).
    pub smooth_rows: usize,
    /// Rows to stay quiet after an alarm (72): one alarm per incident.
    pub mute_rows: usize,
    /// Reference rows needed before any row is scored (24); until twice as
    /// many, a lone out-of-band point must be confirmed by the next one.
    pub min_rows: usize,
    /// How far back the range of normal values reaches (14 days: two
    /// weekly cycles).
    pub history_secs: i64,
    /// Band half-width around the median in robust standard deviations (6).
    pub point_z: f64,
    /// The same for the recent median (6).
    pub shift_z: f64,
    /// A new extreme must beat the historical range by this fraction of it (0.1).
    pub range_margin: f64,
    /// Scale floor as a fraction of the series' typical magnitude (0.05), so
    /// a flat series does not alarm on tiny changes.
    pub rel_floor: f64,
    /// A seasonal model is used only when its residual spread is below this
    /// fraction of the plain spread (0.3).
    pub season_ratio: f64,
    /// Use daily/weekly seasonal profiles when the history covers them.
    pub seasonality: bool,
    /// Consecutive out-of-band rows before a point alarm (1).
    pub persist_rows: usize,
    /// Until the series covers a day, expect a steady trend in the
    /// reference to continue (true).
    pub follow_trend: bool,
    /// Shorter holdout while the series is young (true).
    pub young_holdout: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            baseline_rows: 288,
            holdout_rows: 72,
            smooth_rows: 12,
            mute_rows: 72,
            min_rows: 24,
            history_secs: 14 * 86_400,
            point_z: 6.0,
            shift_z: 6.0,
            range_margin: 0.1,
            rel_floor: 0.05,
            season_ratio: 0.3,
            seasonality: true,
            persist_rows: 1,
            follow_trend: true,
            young_holdout: true,
        }
    }
}

impl DetectorConfig {
    /// The setting names `set` accepts, as `detect --set NAME=VALUE` takes them.
    pub const KEYS: [&'static str; 15] = [
        "baseline_rows",
        "holdout_rows",
        "smooth_rows",
        "mute_rows",
        "min_rows",
        "history_days",
        "point_z",
        "shift_z",
        "range_margin",
        "rel_floor",
        "season_ratio",
        "seasonality",
        "persist_rows",
        "follow_trend",
        "young_holdout",
    ];

    /// Changes one setting from text (`point_z=5.5`): for experiments and
    /// the cross-validation script (`benches/nab_cv.py`). An unknown name or
    /// a value of the wrong type is an error naming what is accepted.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        let rows = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| format!("{key}: {v:?} is not a row count (1 to 1000000)"))
        };
        let real = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("{key}: {v:?} is not a number >= 0"))
        };
        let flag = |v: &str| match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("{key}: {v:?} is not true or false")),
        };
        match key.trim() {
            "baseline_rows" => self.baseline_rows = rows(value)?,
            "holdout_rows" => self.holdout_rows = rows(value)?,
            "smooth_rows" => self.smooth_rows = rows(value)?,
            "mute_rows" => self.mute_rows = rows(value)?,
            "min_rows" => self.min_rows = rows(value)?,
            "history_days" => {
                let d = real(value)?;
                self.history_secs = (d.min(3650.0) * 86_400.0) as i64;
            }
            "point_z" => self.point_z = real(value)?,
            "shift_z" => self.shift_z = real(value)?,
            "range_margin" => self.range_margin = real(value)?,
            "rel_floor" => self.rel_floor = real(value)?,
            "season_ratio" => self.season_ratio = real(value)?,
            "seasonality" => self.seasonality = flag(value)?,
            "persist_rows" => self.persist_rows = rows(value)?,
            "follow_trend" => self.follow_trend = flag(value)?,
            "young_holdout" => self.young_holdout = flag(value)?,
            other => {
                return Err(format!(
                    "unknown detector setting {other:?}; settings: {}",
                    Self::KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// Which question made a row anomalous.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Signal {
    #[default]
    None,
    /// The value itself left the band.
    Point,
    /// The recent median left the band of past medians.
    Shift,
}

/// The verdict on one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// 0..1; 0.5 means "on the band edge". 0 while learning.
    pub score: f64,
    /// Expected band for the value (NaN while learning or for a bad value).
    pub low: f64,
    pub high: f64,
    /// Expected value (centre of the reference).
    pub expected: f64,
    /// Median of the recent `smooth_rows` values.
    pub recent: f64,
    /// What drove the score.
    pub signal: Signal,
    /// Raised: out of band, persistent, and not muted.
    pub alarm: bool,
}

impl Verdict {
    fn learning() -> Self {
        Verdict {
            score: 0.0,
            low: f64::NAN,
            high: f64::NAN,
            expected: f64::NAN,
            recent: f64::NAN,
            signal: Signal::None,
            alarm: false,
        }
    }
}

/// A window of values kept sorted, for medians and quantiles.
#[derive(Default)]
struct Sorted {
    order: VecDeque<f64>,
    sorted: Vec<f64>,
    abs_sum: f64,
}

impl Sorted {
    fn push(&mut self, x: f64, cap: usize) {
        self.order.push_back(x);
        let at = self.sorted.partition_point(|v| v.total_cmp(&x).is_lt());
        self.sorted.insert(at, x);
        self.abs_sum += x.abs();
        while self.order.len() > cap.max(1) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            let at = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            if at < self.sorted.len() {
                self.sorted.remove(at);
            }
            self.abs_sum -= old.abs();
        }
        if !self.abs_sum.is_finite() && self.sorted.iter().all(|v| v.abs() < 1e300) {
            self.abs_sum = self.sorted.iter().map(|v| v.abs()).sum();
        }
    }
    fn len(&self) -> usize {
        self.sorted.len()
    }
    fn quantile(&self, q: f64) -> f64 {
        let n = self.sorted.len();
        if n == 0 {
            return f64::NAN;
        }
        let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let i = pos.floor() as usize;
        let f = pos - i as f64;
        let a = self.sorted.get(i).copied().unwrap_or(f64::NAN);
        let b = self.sorted.get(i + 1).copied().unwrap_or(a);
        a + (b - a) * f
    }
    /// Interquartile range as a robust standard deviation.
    fn scale(&self) -> f64 {
        (self.quantile(0.75) - self.quantile(0.25)) / 1.349
    }
    fn mean_abs(&self) -> f64 {
        let n = self.sorted.len().max(1) as f64;
        if self.abs_sum.is_finite() {
            (self.abs_sum / n).max(0.0)
        } else {
            // Huge values overflowed the running sum: add up afresh.
            let m = self.sorted.iter().map(|v| v.abs() / n).sum::<f64>();
            if m.is_finite() { m } else { f64::MAX }
        }
    }
}

/// Sliding minimum and maximum over a time horizon (monotonic queues).
#[derive(Default)]
struct Range {
    max: VecDeque<(i64, f64)>,
    min: VecDeque<(i64, f64)>,
}

impl Range {
    fn push(&mut self, t: i64, x: f64) {
        while self.max.back().is_some_and(|&(_, v)| v <= x) {
            self.max.pop_back();
        }
        self.max.push_back((t, x));
        while self.min.back().is_some_and(|&(_, v)| v >= x) {
            self.min.pop_back();
        }
        self.min.push_back((t, x));
    }
    fn evict_before(&mut self, t0: i64) {
        while self.max.front().is_some_and(|&(t, _)| t < t0) {
            self.max.pop_front();
        }
        while self.min.front().is_some_and(|&(t, _)| t < t0) {
            self.min.pop_front();
        }
    }
    fn get(&self) -> Option<(f64, f64)> {
        Some((self.min.front()?.1, self.max.front()?.1))
    }
}

/// One stream of numbers (values, residuals or recent medians): the rows in
/// holdout, then the reference behind them.
#[derive(Default)]
struct Stream {
    recent: VecDeque<(i64, f64)>,
    reference: Sorted,
    range: Range,
    seen: usize,
    /// Times of the first and the latest row pushed.
    span: Option<(i64, i64)>,
}

impl Stream {
    /// Rows kept out of the reference: `holdout_rows`, or while the series
    /// is young a quarter of it (at least `smooth_rows`), so short series
    /// are judged too.
    fn holdout(&self, cfg: &DetectorConfig) -> usize {
        if cfg.young_holdout {
            cfg.holdout_rows.min((self.seen / 4).max(cfg.smooth_rows))
        } else {
            cfg.holdout_rows
        }
    }

    fn push(&mut self, t: i64, x: f64, cfg: &DetectorConfig) {
        self.recent.push_back((t, x));
        self.seen = self.seen.saturating_add(1);
        self.span = Some(self.span.map_or((t, t), |(first, _)| (first, t)));
        let holdout = self.holdout(cfg);
        while self.recent.len() > holdout {
            let Some((tp, xp)) = self.recent.pop_front() else {
                break;
            };
            self.reference.push(xp, cfg.baseline_rows);
            self.range.push(tp, xp);
        }
        self.range
            .evict_before(t.saturating_sub(cfg.history_secs.saturating_mul(1000)));
    }

    /// Median of the last `smooth_rows` values and `x` (the current one).
    fn recent_median(&self, x: f64, cfg: &DetectorConfig) -> Option<f64> {
        let take = cfg.smooth_rows.saturating_sub(1);
        let mut v: Vec<f64> = self
            .recent
            .iter()
            .rev()
            .take(take)
            .map(|&(_, v)| v)
            .collect();
        v.push(x);
        if v.len() < 3.min(cfg.smooth_rows.max(1)) {
            return None;
        }
        median(&mut v)
    }

    /// Change per row over the newest `span` reference rows: between the
    /// medians of the `k` rows ending `span` rows back and of the newest `k`
    /// (fewer while the reference is short; 0 when too short to tell).
    fn trend_per_row(&self, k: usize, span: usize) -> f64 {
        let order = &self.reference.order;
        let n = order.len();
        let k = k.min(n / 4);
        let span = span.min(n - k);
        if k < 3 || span < k {
            return 0.0;
        }
        let mut old: Vec<f64> = order.iter().skip(n - k - span).take(k).copied().collect();
        let mut new: Vec<f64> = order.iter().skip(n - k).copied().collect();
        match (median(&mut old), median(&mut new)) {
            (Some(a), Some(b)) if (b - a).is_finite() => (b - a) / span as f64,
            _ => 0.0,
        }
    }

    /// True until the stream has seen a day of data.
    fn under_a_day(&self) -> bool {
        self.span
            .is_none_or(|(first, last)| last.saturating_sub(first) < DAY_MS)
    }

    /// Where `r` sits relative to the band (1 = on its edge), and the band.
    fn judge(&self, r: f64, floor: f64, z: f64, trend: bool, cfg: &DetectorConfig) -> Judged {
        let scale = self.reference.scale().max(floor);
        let mid = self.reference.quantile(0.5);
        let mut low = mid - z * scale;
        let mut high = mid + z * scale;
        if let Some((mn, mx)) = self.range.get() {
            let margin = cfg.range_margin * (mx - mn);
            low = low.min(mn - margin);
            high = high.max(mx + margin);
        }
        if trend {
            // A steady trend in the reference is expected to go on through
            // the holdout: widen the band on that side by as much.
            let ahead = self.recent.len() + cfg.smooth_rows / 2;
            let drift = self.trend_per_row(cfg.smooth_rows, ahead) * ahead as f64;
            if drift > 0.0 {
                high += drift;
            } else if drift < 0.0 {
                low += drift;
            }
        }
        let u = if r >= mid {
            (r - mid) / (high - mid).max(f64::MIN_POSITIVE)
        } else {
            (mid - r) / (mid - low).max(f64::MIN_POSITIVE)
        };
        Judged { u, low, high, mid }
    }
}

struct Judged {
    u: f64,
    low: f64,
    high: f64,
    mid: f64,
}

/// The raw values, or residuals against a seasonal profile, with the
/// stream of their recent medians.
#[derive(Default)]
struct Model {
    values: Stream,
    medians: Stream,
}

impl Model {
    fn push(&mut self, t: i64, r: f64, cfg: &DetectorConfig) {
        if let Some(m) = self.values.recent_median(r, cfg) {
            self.medians.push(t, m, cfg);
        }
        self.values.push(t, r, cfg);
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let hi = *v.get(n / 2)?;
    Some(if n % 2 == 1 {
        hi
    } else {
        (v.get(n / 2 - 1)? + hi) / 2.0
    })
}

/// Typical spacing of the first rows, in milliseconds.
fn typical_step(times: &[i64]) -> i64 {
    let mut d: Vec<f64> = times
        .windows(2)
        .take(64)
        .filter_map(|w| match w {
            [a, b] if b > a => Some(b.abs_diff(*a) as f64),
            _ => None,
        })
        .collect();
    median(&mut d).map_or(60_000, |m| m as i64).max(1)
}

/// The finite value recorded within `tol` of time `t`, among rows before `end`.
fn value_near(times: &[i64], values: &[f64], end: usize, t: i64, tol: i64) -> Option<f64> {
    let head = times.get(..end)?;
    let at = head.partition_point(|&x| x < t);
    let mut best: Option<(u64, f64)> = None;
    for j in [at.checked_sub(1), Some(at)].into_iter().flatten() {
        if let (Some(&tj), Some(&vj)) = (head.get(j), values.get(j)) {
            let d = tj.abs_diff(t);
            if d <= tol.unsigned_abs() && vj.is_finite() && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, vj));
            }
        }
    }
    best.map(|(_, v)| v)
}

/// Median of the values one, two, … `k` periods before row `i` (at least 2).
fn seasonal(times: &[i64], values: &[f64], i: usize, period: i64, k: i64, tol: i64) -> Option<f64> {
    let t = *times.get(i)?;
    let mut v: Vec<f64> = (1..=k)
        .filter_map(|j| {
            value_near(
                times,
                values,
                i,
                t.saturating_sub(j.saturating_mul(period)),
                tol,
            )
        })
        .collect();
    if v.len() < 2 {
        return None;
    }
    median(&mut v)
}

/// Scores every row of a series. `times` (ms) must be ascending and as long
/// as `values`; non-finite values are skipped (scored 0, never learnt).
pub fn run(times: &[i64], values: &[f64], cfg: &DetectorConfig) -> Vec<Verdict> {
    let tol = (typical_step(times) / 2).max(1);
    let mut models: [Model; 3] = Default::default();
    let mut out = Vec::with_capacity(values.len());
    let mut run_len = 0usize;
    let mut since_alarm = usize::MAX;
    let mut in_incident = false;
    let mut calm = 0usize;
    let mut never_negative = true;
    for (i, (&t, &x)) in times.iter().zip(values).enumerate() {
        since_alarm = since_alarm.saturating_add(1);
        if !x.is_finite() {
            out.push(Verdict::learning());
            continue;
        }
        let bases = if cfg.seasonality {
            [
                Some(0.0),
                seasonal(times, values, i, DAY_MS, 7, tol),
                seasonal(times, values, i, WEEK_MS, 4, tol),
            ]
        } else {
            [Some(0.0), None, None]
        };
        let verdict = judge_row(&models, &bases, x, cfg);
        let verdict = match verdict {
            Some(mut v) => {
                let out_of_band = v.score >= 0.5;
                run_len = if out_of_band { run_len + 1 } else { 0 };
                // One alarm per incident: an incident lasts at least
                // `mute_rows`, and until `smooth_rows` rows in a row are
                // back in band.
                calm = if out_of_band { 0 } else { calm + 1 };
                in_incident &= calm < cfg.smooth_rows.max(1);
                // While the reference is short its spread is uncertain: a
                // lone point must be confirmed by the next one.
                let young = models[0].values.reference.len() < 2 * cfg.min_rows;
                let persist = cfg.persist_rows.max(if young { 2 } else { 1 });
                v.alarm = out_of_band
                    && run_len >= persist
                    && !in_incident
                    && since_alarm > cfg.mute_rows;
                if v.alarm {
                    since_alarm = 0;
                    in_incident = true;
                }
                // A series that has never gone below zero is not expected
                // to (the band as shown; the score is already decided).
                if never_negative {
                    v.low = v.low.max(0.0);
                }
                v
            }
            None => Verdict::learning(),
        };
        out.push(verdict);
        never_negative &= x >= 0.0;
        for (m, b) in models.iter_mut().zip(bases) {
            if let Some(b) = b {
                m.push(t, x - b, cfg);
            }
        }
    }
    out
}

/// The verdict on value `x` given the models so far (`None` while learning).
fn judge_row(
    models: &[Model; 3],
    bases: &[Option<f64>; 3],
    x: f64,
    cfg: &DetectorConfig,
) -> Option<Verdict> {
    let [plain, ..] = models;
    if plain.values.reference.len() < cfg.min_rows.max(1) {
        return None;
    }
    let level = plain.values.reference.quantile(0.5);
    let floor = (cfg.rel_floor * plain.values.reference.mean_abs().max(level.abs()))
        .max(1e-9 * (1.0 + level.abs()));
    // The plainest model unless a seasonal one is clearly tighter.
    let mut pick = (plain, 0.0, plain.values.reference.scale());
    for (m, base) in models.iter().zip(bases).skip(1) {
        if let Some(b) = *base
            && m.values.reference.len() >= cfg.min_rows.max(1)
        {
            let s = m.values.reference.scale();
            if s < cfg.season_ratio * pick.2 {
                pick = (m, b, s);
            }
        }
    }
    let (m, base, _) = pick;
    let r = x - base;
    // Until a day has been seen, the daily swing is unknown: a steady trend
    // is taken as its rising or falling side.
    let trend = cfg.follow_trend && plain.values.under_a_day();
    let point = m.values.judge(r, floor, cfg.point_z, trend, cfg);
    let recent = m.values.recent_median(r, cfg);
    let shift = match recent {
        // Recent medians overlap, so their reference needs several
        // independent windows' worth before its spread means anything.
        Some(med) if m.medians.reference.len() >= cfg.min_rows.max(4 * cfg.smooth_rows).max(1) => {
            Some(m.medians.judge(med, floor, cfg.shift_z, trend, cfg).u)
        }
        _ => None,
    };
    let (u, signal) = match shift {
        Some(us) if us > point.u => (us, Signal::Shift),
        _ => (point.u, Signal::Point),
    };
    let u = if u.is_finite() { u.max(0.0) } else { 0.0 };
    let u4 = u.powi(4);
    let score = if u4.is_finite() { u4 / (1.0 + u4) } else { 1.0 };
    Some(Verdict {
        score: score.clamp(0.0, 1.0),
        low: base + point.low,
        high: base + point.high,
        expected: base + point.mid,
        recent: recent.map_or(f64::NAN, |r| base + r),
        signal: if score >= 0.5 { signal } else { Signal::None },
        alarm: false,
    })
}
