//! Per-minute tables per operation and per backend, with whole-window
//! totals: requests, 4xx, 429, 5xx, timeouts, connection failures, counts by
//! `LastErrorReason` and exact p50/p95/p99 of `TotalTime` and `BackendTime`.
//! Every detector, the TUI and chat read traffic through this one rollup.
//!
//! Percentiles are nearest-rank over the cells' latency histograms
//! (`model::LatencyHistogram`): a group-minute's and a whole window's are
//! read from the merged histogram of its cells, so they carry the
//! histogram's stated relative error (1%) and nothing else. The counter
//! tables go to polars (`frame`, `buckets`) for windowed views.

use super::Options;
use crate::model::{
    DenseCounts, LatencyHistogram, Minute, MinuteStats, Snapshot, Timestamp, Window, histogram,
};
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// Nearest-rank percentiles in milliseconds, within the latency
/// histogram's relative error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: Option<u32>,
    pub p95: Option<u32>,
    pub p99: Option<u32>,
}

impl Percentiles {
    pub fn of_histogram(h: &LatencyHistogram) -> Percentiles {
        let [p50, p95, p99] = h.percentiles([50.0, 95.0, 99.0]);
        Percentiles { p50, p95, p99 }
    }

    /// The same, of latencies in a dense counter.
    pub fn of_counts(d: &DenseCounts) -> Percentiles {
        let [p50, p95, p99] = d.percentiles([50.0, 95.0, 99.0]);
        Percentiles { p50, p95, p99 }
    }
}

/// Counters and latencies of one group over one minute or a whole window.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub status_4xx: u64,
    pub status_429: u64,
    pub status_5xx: u64,
    /// 5xx the backend answered itself.
    pub backend_5xx: u64,
    /// Gateway timeouts (`Timeout` reason, or 504 without a backend answer).
    pub timeouts: u64,
    pub connection_failures: u64,
    pub total_time: Percentiles,
    pub backend_time: Percentiles,
    /// Count per `LastErrorReason`.
    pub error_reasons: BTreeMap<String, u64>,
}

impl Stats {
    /// Share of requests answered with a 5xx.
    pub fn error_rate(&self) -> f64 {
        ratio(self.status_5xx, self.requests)
    }
    /// 5xx that are not gateway timeouts: what a failing backend produces
    /// (its own 5xx, refused or dropped connections, 502/503).
    pub fn failures(&self) -> u64 {
        self.status_5xx.saturating_sub(self.timeouts)
    }

    fn add_counts(&mut self, m: &MinuteStats) {
        self.requests += u64::from(m.requests);
        self.status_4xx += u64::from(m.status_4xx);
        self.status_429 += u64::from(m.status_429);
        self.status_5xx += u64::from(m.status_5xx);
        self.backend_5xx += u64::from(m.backend_5xx);
        self.timeouts += u64::from(m.timeouts);
        self.connection_failures += u64::from(m.connection_failures);
        for (k, v) in &m.error_reasons {
            match self.error_reasons.get_mut(k) {
                Some(n) => *n += u64::from(*v),
                None => {
                    self.error_reasons.insert(k.clone(), u64::from(*v));
                }
            }
        }
    }
}

/// Orders strings as their ASCII-lower-cased forms would order.
fn cmp_ignore_ascii_case(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// One minute of one group.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MinuteRow {
    pub minute: Minute,
    #[serde(flatten)]
    pub stats: Stats,
}

/// One operation: its minutes (only those with traffic, in time order) and totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OpRollup {
    pub api: String,
    pub operation: String,
    /// Backends its traffic went to (series keys), busiest first.
    pub backends: Vec<(String, u64)>,
    pub minutes: Vec<MinuteRow>,
    pub totals: Stats,
    /// Indices of its series in `snapshot.traffic.series`, ascending.
    #[serde(skip)]
    pub series: Vec<usize>,
}

/// One backend (entity id or URL host): its minutes and totals over every
/// operation that called it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BackendRollup {
    pub backend: String,
    /// (api, operation, requests) that called it, busiest first.
    pub operations: Vec<(String, String, u64)>,
    pub minutes: Vec<MinuteRow>,
    pub totals: Stats,
    /// Indices of its series in `snapshot.traffic.series`, ascending.
    #[serde(skip)]
    pub series: Vec<usize>,
}

/// Traffic of a snapshot rolled up per operation and per backend.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rollup {
    /// First minute to one past the last minute with traffic in scope.
    pub window: Option<Window>,
    pub operations: Vec<OpRollup>,
    pub backends: Vec<BackendRollup>,
}

impl Rollup {
    /// An operation's rollup (a binary search: `operations` is in (api,
    /// operation) order).
    pub fn operation(&self, api: &str, operation: &str) -> Option<&OpRollup> {
        self.operations
            .binary_search_by(|o| (o.api.as_str(), o.operation.as_str()).cmp(&(api, operation)))
            .ok()
            .and_then(|i| self.operations.get(i))
    }

    /// A backend's rollup, by name in any case (a binary search:
    /// `backends` is in lower-case name order).
    pub fn backend(&self, backend: &str) -> Option<&BackendRollup> {
        self.backends
            .binary_search_by(|b| cmp_ignore_ascii_case(&b.backend, backend))
            .ok()
            .and_then(|i| self.backends.get(i))
    }

    /// Minutes `[first, last]` covered, as (start, length).
    pub fn span(&self) -> Option<(Minute, usize)> {
        let w = self.window?;
        let start = w.start.minute();
        let len = (w.end.minute() - start).max(0) as usize;
        Some((start, len))
    }

    /// The per-operation minute table as a polars frame: one row per
    /// (api, operation, minute) with the counters, the 5xx rate and the
    /// TotalTime/BackendTime percentiles.
    pub fn frame(&self) -> PolarsResult<DataFrame> {
        let rows = self.operations.iter().flat_map(|o| {
            o.minutes
                .iter()
                .map(move |m| (o.api.as_str(), o.operation.as_str(), m))
        });
        minute_frame(rows)
    }

    /// The per-backend minute table as a polars frame (column `api` empty,
    /// `operation` holds the backend).
    pub fn backend_frame(&self) -> PolarsResult<DataFrame> {
        let rows = self
            .backends
            .iter()
            .flat_map(|b| b.minutes.iter().map(move |m| ("", b.backend.as_str(), m)));
        minute_frame(rows)
    }

    /// Counters per operation summed over buckets of `minutes` minutes
    /// (e.g. 60 for hourly), with the 5xx rate per bucket. Percentiles do not
    /// add up, so they are not in this view; read them from the minute rows.
    pub fn buckets(&self, minutes: i64) -> PolarsResult<DataFrame> {
        let minutes = minutes.max(1);
        let counters = [
            "requests",
            "status_4xx",
            "status_429",
            "status_5xx",
            "timeouts",
            "connection_failures",
        ];
        self.frame()?
            .lazy()
            .with_column(((col("minute") / lit(minutes)) * lit(minutes)).alias("bucket"))
            .group_by([col("api"), col("operation"), col("bucket")])
            .agg(counters.map(|c| col(c).sum()))
            .with_column(
                (col("status_5xx").cast(DataType::Float64)
                    / col("requests").cast(DataType::Float64))
                .alias("error_rate"),
            )
            .sort(
                ["api", "operation", "bucket"],
                SortMultipleOptions::default(),
            )
            .collect()
    }
}

fn minute_frame<'a>(
    rows: impl Iterator<Item = (&'a str, &'a str, &'a MinuteRow)>,
) -> PolarsResult<DataFrame> {
    let mut api = Vec::new();
    let mut op = Vec::new();
    let mut minute = Vec::new();
    let mut time = Vec::new();
    let mut c: [Vec<u64>; 6] = Default::default();
    let mut rate = Vec::new();
    let mut p: [Vec<Option<u32>>; 4] = Default::default();
    for (a, o, m) in rows {
        let s = &m.stats;
        api.push(a);
        op.push(o);
        minute.push(m.minute);
        time.push(Timestamp::from_minute(m.minute).millis());
        for (v, x) in c.iter_mut().zip([
            s.requests,
            s.status_4xx,
            s.status_429,
            s.status_5xx,
            s.timeouts,
            s.connection_failures,
        ]) {
            v.push(x);
        }
        rate.push(s.error_rate());
        for (v, x) in p.iter_mut().zip([
            s.total_time.p50,
            s.total_time.p95,
            s.total_time.p99,
            s.backend_time.p95,
        ]) {
            v.push(x);
        }
    }
    let [requests, s4, s429, s5, timeouts, conn] = c;
    let [p50, p95, p99, bp95] = p;
    let time = Column::new("time".into(), time).cast(&DataType::Datetime(
        TimeUnit::Milliseconds,
        Some(TimeZone::UTC),
    ))?;
    DataFrame::new_infer_height(vec![
        Column::new("api".into(), api),
        Column::new("operation".into(), op),
        Column::new("minute".into(), minute),
        time,
        Column::new("requests".into(), requests),
        Column::new("status_4xx".into(), s4),
        Column::new("status_429".into(), s429),
        Column::new("status_5xx".into(), s5),
        Column::new("timeouts".into(), timeouts),
        Column::new("connection_failures".into(), conn),
        Column::new("error_rate".into(), rate),
        Column::new("p50_ms".into(), p50),
        Column::new("p95_ms".into(), p95),
        Column::new("p99_ms".into(), p99),
        Column::new("backend_p95_ms".into(), bp95),
    ])
}

/// True when minute `m` is inside the analysis scope.
pub fn in_scope(options: &Options, m: Minute) -> bool {
    options.since.is_none_or(|s| m >= s.minute())
        && options.until.is_none_or(|u| Timestamp::from_minute(m) < u)
}

/// Rolls the snapshot's traffic up per operation and per backend, within
/// `options.since`/`until`.
pub fn rollup(snapshot: &Snapshot, options: &Options) -> Rollup {
    let series = &snapshot.traffic.series;
    let mut by_op: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    let mut by_backend: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        by_op
            .entry((s.key.api_id.as_str(), s.key.operation_id.as_str()))
            .or_default()
            .push(i);
        if !s.key.backend.is_empty() {
            by_backend
                .entry(s.key.backend.to_ascii_lowercase())
                .or_default()
                .push(i);
        }
    }
    let op_groups: Vec<_> = by_op.into_iter().collect();
    let operations: Vec<OpRollup> = op_groups
        .par_iter()
        .map(|((api, op), idx)| {
            let (minutes, totals) = roll_group(snapshot, idx, options);
            let mut backends: Vec<(String, u64)> = idx
                .iter()
                .filter_map(|&i| series.get(i))
                .filter(|s| !s.key.backend.is_empty())
                .map(|s| (s.key.backend.clone(), requests_in_scope(s, options)))
                .filter(|(_, n)| *n > 0)
                .collect();
            backends.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            OpRollup {
                api: api.to_string(),
                operation: op.to_string(),
                backends,
                minutes,
                totals,
                series: idx.clone(),
            }
        })
        .filter(|o| o.totals.requests > 0)
        .collect();
    let be_groups: Vec<_> = by_backend.into_iter().collect();
    let backends: Vec<BackendRollup> = be_groups
        .par_iter()
        .map(|(_, idx)| {
            let (minutes, totals) = roll_group(snapshot, idx, options);
            let mut ops: Vec<(String, String, u64)> = idx
                .iter()
                .filter_map(|&i| series.get(i))
                .map(|s| {
                    (
                        s.key.api_id.clone(),
                        s.key.operation_id.clone(),
                        requests_in_scope(s, options),
                    )
                })
                .filter(|o| o.2 > 0)
                .collect();
            ops.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
            // Display the backend as first written in the data.
            let name = idx
                .first()
                .and_then(|&i| series.get(i))
                .map(|s| s.key.backend.clone())
                .unwrap_or_default();
            BackendRollup {
                backend: name,
                operations: ops,
                minutes,
                totals,
                series: idx.clone(),
            }
        })
        .filter(|b| b.totals.requests > 0)
        .collect();
    let lo = operations
        .iter()
        .filter_map(|o| o.minutes.first())
        .map(|m| m.minute)
        .min();
    let hi = operations
        .iter()
        .filter_map(|o| o.minutes.last())
        .map(|m| m.minute)
        .max();
    let window = lo.zip(hi).map(|(lo, hi)| Window::minutes(lo, hi + 1));
    Rollup {
        window,
        operations,
        backends,
    }
}

fn requests_in_scope(s: &crate::model::Series, options: &Options) -> u64 {
    s.minutes
        .iter()
        .filter(|(m, _)| in_scope(options, **m))
        .map(|(_, st)| u64::from(st.requests))
        .sum()
}

/// Minute rows and totals of the series `idx`.
/// Exact totals over every series `keep` selects (all operations of an API,
/// every series of a backend…): percentiles come from the raw latencies,
/// not from combining per-operation percentiles, which do not add.
pub fn group_stats(
    snapshot: &Snapshot,
    options: &Options,
    keep: impl Fn(&crate::model::SeriesKey) -> bool,
) -> Stats {
    let idx: Vec<usize> = (0..snapshot.traffic.series.len())
        .filter(|&i| keep(&snapshot.traffic.series[i].key))
        .collect();
    roll_group(snapshot, &idx, options).1
}

fn roll_group(snapshot: &Snapshot, idx: &[usize], options: &Options) -> (Vec<MinuteRow>, Stats) {
    let mut cells: Vec<(Minute, &MinuteStats)> = idx
        .iter()
        .filter_map(|&i| snapshot.traffic.series.get(i))
        .flat_map(|s| s.minutes.iter().map(|(m, st)| (*m, st)))
        .filter(|(m, _)| in_scope(options, *m))
        .collect();
    if idx.len() > 1 {
        cells.sort_by_key(|c| c.0);
    }
    let mut rows = Vec::new();
    let mut totals = Stats::default();
    // The group's whole-scope histograms: each minute's (summed once for the
    // minute, not again per cell) counted in as the minutes go.
    let mut all_total = DenseCounts::default();
    let mut all_backend = DenseCounts::default();
    let mut i = 0;
    while i < cells.len() {
        let minute = cells[i].0;
        let mut j = i;
        let mut st = Stats::default();
        while j < cells.len() && cells[j].0 == minute {
            st.add_counts(cells[j].1);
            j += 1;
        }
        let here = cells.get(i..j).unwrap_or_default();
        if let [(_, one)] = here {
            // One series this minute (every per-series rollup): its own
            // histograms, not a copy.
            st.total_time = Percentiles::of_histogram(&one.total_latency);
            st.backend_time = Percentiles::of_histogram(&one.backend_latency);
            all_total.add_histogram(&one.total_latency);
            all_backend.add_histogram(&one.backend_latency);
        } else {
            // The minute's sums, read off the dense counter.
            st.total_time = histogram::with_sum(here.iter().map(|c| &c.1.total_latency), |d| {
                all_total.add_counts(d);
                Percentiles::of_counts(d)
            });
            st.backend_time = histogram::with_sum(here.iter().map(|c| &c.1.backend_latency), |d| {
                all_backend.add_counts(d);
                Percentiles::of_counts(d)
            });
        }
        for c in here {
            totals.add_counts(c.1);
        }
        rows.push(MinuteRow { minute, stats: st });
        i = j;
    }
    totals.total_time = Percentiles::of_counts(&all_total);
    totals.backend_time = Percentiles::of_counts(&all_backend);
    (rows, totals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Origin, Request, Timestamp};

    fn req<'a>(minute: i64, op: &'a str, backend_url: &'a str, code: u16, ms: u32) -> Request<'a> {
        Request {
            time: Timestamp::from_minute(minute),
            api_id: "shop",
            operation_id: op,
            backend_url,
            response_code: code,
            backend_response_code: code,
            total_time_ms: ms,
            backend_time_ms: Some(ms.saturating_sub(2)),
            ..Request::default()
        }
    }

    fn snap() -> Snapshot {
        let mut s = Snapshot::default();
        for ms in 1..=100u32 {
            s.traffic
                .add(&req(10, "a", "https://x.int/p", 200, ms), Origin::default);
        }
        s.traffic
            .add(&req(10, "b", "https://x.int/q", 503, 500), Origin::default);
        s.traffic
            .add(&req(11, "a", "https://y.int/p", 500, 7), Origin::default);
        s
    }

    #[test]
    fn groups_by_operation_and_backend_with_percentiles() {
        let r = rollup(&snap(), &Options::default());
        assert_eq!(r.operations.len(), 2);
        let a = r.operation("shop", "a").unwrap();
        assert_eq!(a.minutes.len(), 2);
        assert_eq!(a.minutes[0].stats.total_time.p95, Some(95));
        assert_eq!(a.minutes[0].stats.total_time.p50, Some(50));
        assert_eq!(a.totals.requests, 101);
        assert_eq!(a.totals.status_5xx, 1);
        assert_eq!(a.backends[0], ("x.int".to_string(), 100));
        let x = r.backend("x.int").unwrap();
        assert_eq!(x.totals.requests, 101);
        assert_eq!(x.minutes[0].stats.total_time.p99, Some(100));
        assert_eq!(x.operations.len(), 2);
        assert_eq!(r.window, Some(Window::minutes(10, 12)));
    }

    #[test]
    fn options_scope_the_minutes() {
        let o = Options {
            since: Some(Timestamp::from_minute(11)),
            until: None,
        };
        let r = rollup(&snap(), &o);
        assert_eq!(r.operations.len(), 1);
        assert_eq!(r.operations[0].totals.requests, 1);
    }

    #[test]
    fn histogram_percentiles_are_within_the_stated_error() {
        let h: LatencyHistogram = (1..=1000).rev().collect();
        let p = Percentiles::of_histogram(&h);
        for (got, want) in [(p.p50, 500.0), (p.p95, 950.0), (p.p99, 990.0)] {
            let got = f64::from(got.unwrap());
            let err = crate::model::histogram::RELATIVE_ERROR * want + 0.5;
            assert!((got - want).abs() <= err, "{got} vs {want}");
        }
    }

    #[test]
    fn frames_and_buckets() {
        let r = rollup(&snap(), &Options::default());
        let f = r.frame().unwrap();
        assert_eq!(f.height(), 3);
        let b = r.buckets(60).unwrap();
        assert_eq!(b.height(), 2);
        let req = b.column("requests").unwrap().u64().unwrap().get(0);
        assert_eq!(req, Some(101));
    }

    #[test]
    fn group_stats_merge_the_selected_series() {
        let s = snap();
        let all = group_stats(&s, &Options::default(), |k| k.api_id == "shop");
        assert_eq!(all.requests, 102);
        assert_eq!(all.status_5xx, 2);
        // Latencies 1..=100, 7 and 500: the nearest-rank p95 is 96 (97 read
        // from its histogram bucket, within 1%), not the larger of the two
        // operations' own p95s (95 and 500).
        assert_eq!(all.total_time.p95, Some(97));
        let none = group_stats(&s, &Options::default(), |k| k.api_id == "other");
        assert_eq!(none.requests, 0);
    }
}
