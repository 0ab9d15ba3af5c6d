//! The engine: incremental per-minute aggregates in bounded memory, and the
//! tick that runs the same detectors as `diagnose` over them.
//!
//! Recent minutes (`exact`) are kept as `model::MinuteStats` (counters,
//! latency histograms, a few failing requests as evidence). Older
//! minutes are compacted into a fixed-size `Cell` (counters, an 8-point
//! latency sketch per latency, the two most common error reasons) and
//! dropped after `retention`. Time is data time: the watermark is the
//! latest row seen, so late or replayed logs age correctly. It never jumps
//! past the wall clock (when the caller sets that limit): a row stamped
//! more than `FUTURE_TOLERANCE_MS` after both the clock and the data before
//! it is rejected and counted (`future`), so one bad timestamp cannot make
//! every later row "too old". Data that runs ahead of the clock minute by
//! minute (a feed replayed faster than real time) is followed.
//!
//! `evaluate` builds a `Snapshot` from the last `lookback` of aggregates
//! plus the static configuration and calls `analyze::analyze`; findings
//! whose window no longer reaches the last `active` minutes are history,
//! not current. No I/O here.

use super::config::EngineConfig;
use crate::analyze;
use crate::model::{
    Finding, LatencyHistogram, LoadReport, Minute, MinuteStats, Origin, Problem, Snapshot,
    Timestamp, Traffic, histogram::bucket_of,
};
use std::time::Duration;

/// How far ahead of the wall clock a row may be stamped (clock skew
/// between the gateway and this host); later rows are rejected.
pub const FUTURE_TOLERANCE_MS: i64 = 5 * 60_000;

/// Latency points kept per compacted minute.
const SKETCH: usize = 8;

/// One compacted minute of one series (80 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Cell {
    minute: u32,
    /// requests, 4xx, 429, 5xx, backend 5xx, timeouts, connection failures
    /// (2xx and 3xx are not kept: the detectors do not read them).
    counts: [u32; 7],
    total: [u16; SKETCH],
    backend: [u16; SKETCH],
    backend_n: u32,
    /// Interned `LastErrorReason` ids (0 = none) and their counts.
    reason_ids: [u16; 2],
    reason_counts: [u32; 2],
}

/// Cells per block: blocks of one size keep the allocator from fragmenting
/// as 24 hours of cells per series accumulate.
const BLOCK: usize = 120;

/// One series' compacted minutes, in minute order, in fixed-size blocks.
#[derive(Debug, Default)]
struct Cells {
    blocks: Vec<Vec<Cell>>,
}

impl Cells {
    fn len(&self) -> usize {
        self.blocks.iter().map(Vec::len).sum()
    }

    /// Inserts in minute order, merging with a cell of the same minute.
    fn insert(&mut self, c: Cell) {
        let after_last = self
            .blocks
            .last()
            .and_then(|b| b.last())
            .is_none_or(|x| x.minute < c.minute);
        if after_last {
            match self.blocks.last_mut() {
                Some(b) if b.len() < BLOCK => b.push(c),
                _ => {
                    let mut b = Vec::with_capacity(BLOCK);
                    b.push(c);
                    self.blocks.push(b);
                }
            }
            return;
        }
        // A late minute: the block whose first minute is at or before it.
        let i = self
            .blocks
            .partition_point(|b| b.first().is_some_and(|x| x.minute <= c.minute))
            .saturating_sub(1);
        let Some(b) = self.blocks.get_mut(i) else {
            return;
        };
        let at = b.partition_point(|x| x.minute < c.minute);
        match b.get_mut(at) {
            Some(x) if x.minute == c.minute => merge_cells(x, &c),
            _ => b.insert(at, c),
        }
    }

    /// Drops cells before `floor`.
    fn drop_before(&mut self, floor: i64) {
        let whole = self
            .blocks
            .iter()
            .take_while(|b| b.last().is_none_or(|x| i64::from(x.minute) < floor))
            .count();
        self.blocks.drain(..whole);
        if let Some(b) = self.blocks.first_mut() {
            let cut = b.partition_point(|x| i64::from(x.minute) < floor);
            b.drain(..cut);
        }
    }

    /// Cells at or after `floor`.
    fn from(&self, floor: i64) -> impl Iterator<Item = &Cell> {
        self.blocks
            .iter()
            .filter(move |b| b.last().is_some_and(|x| i64::from(x.minute) >= floor))
            .flat_map(|b| b.iter())
            .filter(move |x| i64::from(x.minute) >= floor)
    }
}

/// Evenly spaced percentiles of a histogram, clamped to u16 ms.
fn sketch(h: &LatencyHistogram) -> [u16; SKETCH] {
    let ps: [f64; SKETCH] =
        std::array::from_fn(|i| (2 * i + 1) as f64 * 100.0 / (2 * SKETCH) as f64);
    h.percentiles(ps)
        .map(|v| v.map_or(0, |x| u16::try_from(x).unwrap_or(u16::MAX)))
}

/// A histogram of `n` latencies spread like the sketch.
fn expand(s: &[u16; SKETCH], n: u32) -> LatencyHistogram {
    let mut h = LatencyHistogram::default();
    let n = u64::from(n);
    let k = SKETCH as u64;
    for (i, x) in (0u64..).zip(s) {
        let share = n * (i + 1) / k - n * i / k;
        h.add_bucket(
            bucket_of(u32::from(*x)),
            u32::try_from(share).unwrap_or(u32::MAX),
        );
    }
    h
}

/// How fast the followed data advances against the wall clock. The
/// alert rules wait in wall time (`for`, the tick), so on a feed faster
/// than real time (a replay, `simulate --live --speed 60`) one tick spans
/// many data minutes and a short incident can pass between two looks.
/// Measured from the first tick after the baseline, over at least three
/// ticks; said once (pure).
#[derive(Debug, Default)]
pub struct Pace {
    start: Option<(Timestamp, Timestamp)>,
    said: bool,
}

impl Pace {
    /// A warning, the first time the feed is seen running so fast that a
    /// tick spans more than one data minute.
    pub fn observe(
        &mut self,
        wall: Timestamp,
        watermark: Option<Timestamp>,
        tick: Duration,
        for_: Duration,
    ) -> Option<String> {
        let data = watermark?;
        if self.said {
            return None;
        }
        let Some((w0, d0)) = self.start else {
            self.start = Some((wall, data));
            return None;
        };
        let wall_ms = wall.0 - w0.0;
        let need = (3 * tick.as_millis() as i64).max(10_000);
        if wall_ms < need {
            return None;
        }
        let ratio = (data.0 - d0.0) as f64 / wall_ms as f64;
        self.start = Some((wall, data));
        let per_tick_min = ratio * tick.as_secs_f64() / 60.0;
        if per_tick_min <= 1.0 {
            return None;
        }
        self.said = true;
        let must_last = ratio * (for_ + tick).as_secs_f64() / 60.0;
        Some(format!(
            "The followed data runs {ratio:.0}x faster than real time: each tick ({}) covers {per_tick_min:.0} data minutes and an incident must last about {must_last:.0} data minutes to alert (for = {}). For a replay or an accelerated feed, set [daemon] tick and [alerts] for shorter by the same factor, or read the files with `apimedic diagnose`.",
            humantime(tick),
            humantime(for_),
        ))
    }
}

fn humantime(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}

/// Retained traffic, in two tiers.
#[derive(Debug, Default)]
pub struct Store {
    cfg: EngineConfig,
    /// Exact recent minutes; series indices are shared with `history`.
    exact: Traffic,
    /// Compacted minutes per series, in minute order.
    history: Vec<Cells>,
    /// Interned error reasons (id = index + 1).
    reasons: Vec<String>,
    /// Latest data instant seen.
    watermark: Option<Timestamp>,
    /// Minute of the last compaction.
    compacted_at: Option<Minute>,
    /// Rows stamped after this instant are rejected (None: no limit).
    future_limit: Option<Timestamp>,
    /// Rows accepted and rejected, rows too old to keep, rows rejected for
    /// a time after `future_limit` (also counted in `rejected`).
    pub rows: u64,
    pub rejected: u64,
    pub too_old: u64,
    pub future: u64,
    /// The latest rejected records (at most a few), for logs.
    pub problems: Vec<Problem>,
}

impl Store {
    pub fn new(cfg: EngineConfig) -> Self {
        Store {
            cfg,
            ..Store::default()
        }
    }

    pub fn set_config(&mut self, cfg: EngineConfig) {
        self.cfg = cfg;
    }

    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    /// Rows stamped after `limit` are rejected from now on (the daemon
    /// sets the wall clock plus `FUTURE_TOLERANCE_MS` before each chunk).
    pub fn set_future_limit(&mut self, limit: Option<Timestamp>) {
        self.future_limit = limit;
    }

    /// Number of series and retained series-minutes (both tiers).
    pub fn size(&self) -> (usize, usize) {
        let exact: usize = self.exact.series.iter().map(|s| s.minutes.len()).sum();
        let hist: usize = self.history.iter().map(Cells::len).sum();
        (self.exact.series.len(), exact + hist)
    }

    /// Folds complete NDJSON gateway-log lines in. `first_line` is the
    /// 1-based line number of the first line in `file`, so evidence points
    /// at the right place. Returns (rows accepted, rows rejected).
    pub fn ingest_ndjson(&mut self, file: &str, bytes: &[u8], first_line: u64) -> (u64, u64) {
        let mut tmp = Traffic::default();
        let mut report = LoadReport::default();
        crate::collect::gateway_logs::parse_ndjson(file, bytes, &mut tmp, &mut report);
        let shift = u32::try_from(first_line.saturating_sub(1)).unwrap_or(u32::MAX);
        for mut p in std::mem::take(&mut report.problems) {
            if let Some(l) = p.origin.line.as_mut() {
                *l = l.saturating_add(shift);
            }
            if self.problems.len() >= 20 {
                self.problems.remove(0);
            }
            self.problems.push(p);
        }
        let future = self.reject_future(file, bytes, first_line, &mut tmp, &mut report);
        self.rejected += report.rejected + future;
        let accepted = tmp.rows;
        self.rows += accepted;
        if let Some(w) = report.time_range
            && accepted > 0
        {
            // Rejected future rows do not move the watermark.
            let end = match self.future_limit {
                Some(limit) if w.end > limit && future > 0 => tmp
                    .series
                    .iter()
                    .filter_map(|s| s.minutes.keys().next_back())
                    .max()
                    .map(|m| Timestamp(Timestamp::from_minute(*m + 1).0 - 1).min(w.end))
                    .unwrap_or(limit),
                _ => w.end,
            };
            self.watermark = Some(self.watermark.map_or(end, |x| x.max(end)));
        }
        for s in &mut tmp.series {
            for st in s.minutes.values_mut() {
                for r in &mut st.samples {
                    if let Some(l) = r.origin.line.as_mut() {
                        *l = l.saturating_add(shift);
                    }
                }
            }
        }
        self.absorb(tmp);
        self.compact_if_due();
        (accepted, report.rejected + future)
    }

    /// Removes the minutes after the future limit from freshly parsed
    /// traffic; returns how many rows they held. The first such row is
    /// kept as a problem with its file and line.
    fn reject_future(
        &mut self,
        file: &str,
        bytes: &[u8],
        first_line: u64,
        tmp: &mut Traffic,
        report: &mut LoadReport,
    ) -> u64 {
        let Some(limit) = self.future_limit else {
            return 0;
        };
        if report.time_range.is_none_or(|w| w.end <= limit) {
            return 0;
        }
        // Minutes past the limit are kept only while they continue the data
        // already seen without a jump of more than the tolerance (a feed
        // replayed faster than real time); the first jump and all after it
        // are rejected (one row stamped 9999 cannot move the watermark).
        let tolerance = FUTURE_TOLERANCE_MS / 60_000;
        let mut reach = limit
            .minute()
            .max(self.watermark.map_or(i64::MIN, Timestamp::minute));
        let mut ahead: Vec<Minute> = tmp
            .series
            .iter()
            .flat_map(|s| s.minutes.range(reach + 1..).map(|(m, _)| *m))
            .collect();
        ahead.sort_unstable();
        ahead.dedup();
        for m in ahead {
            if m > reach.saturating_add(tolerance) {
                break;
            }
            reach = m;
        }
        let last_ok = reach;
        let mut n = 0u64;
        for s in &mut tmp.series {
            let late = s.minutes.split_off(&(last_ok + 1));
            n += late.values().map(|st| u64::from(st.requests)).sum::<u64>();
        }
        tmp.rows = tmp.rows.saturating_sub(n);
        if n > 0 {
            self.future += n;
            // Find the first offending line (rare: only when there is one).
            for (line_no, line) in (first_line..).zip(bytes.split(|b| *b == b'\n')) {
                let mut t1 = Traffic::default();
                let mut r1 = LoadReport::default();
                crate::collect::gateway_logs::parse_ndjson(file, line, &mut t1, &mut r1);
                if let Some(w) = r1.time_range
                    && w.end.minute() > last_ok
                {
                    if self.problems.len() >= 20 {
                        self.problems.remove(0);
                    }
                    self.problems.push(Problem {
                        origin: line_origin(file, line_no),
                        message: format!(
                            "timestamp {} is more than {} minutes after this host's clock ({}) and after the data before it; the row is rejected ({n} such rows in this read)",
                            w.end.to_rfc3339(),
                            FUTURE_TOLERANCE_MS / 60_000,
                            Timestamp(limit.0 - FUTURE_TOLERANCE_MS).to_rfc3339()
                        ),
                    });
                    break;
                }
            }
        }
        n
    }

    /// Merges parsed traffic into the tiers by the age of each minute.
    pub fn absorb(&mut self, t: Traffic) {
        let Some(wm) = self.watermark.map(Timestamp::minute) else {
            return;
        };
        let exact_floor = wm - self.cfg.exact_minutes;
        let keep_floor = wm - self.cfg.retention_minutes;
        for s in t.series {
            let i = self
                .exact
                .series_index(&s.key.api_id, &s.key.operation_id, &s.key.backend);
            if self.history.len() <= i {
                self.history.resize_with(i + 1, Cells::default);
            }
            for (m, st) in s.minutes {
                if m >= exact_floor {
                    self.exact.rows += u64::from(st.requests);
                    self.exact.series[i].minutes.entry(m).or_default().merge(st);
                } else if m >= keep_floor {
                    let cell = self.compact_one(m, st);
                    self.history[i].insert(cell);
                } else {
                    self.too_old += u64::from(st.requests);
                }
            }
        }
    }

    fn intern(&mut self, reason: &str) -> u16 {
        if let Some(i) = self.reasons.iter().position(|r| r == reason) {
            return u16::try_from(i + 1).unwrap_or(0);
        }
        if self.reasons.len() >= usize::from(u16::MAX - 1) {
            return 0;
        }
        self.reasons.push(reason.to_string());
        u16::try_from(self.reasons.len()).unwrap_or(0)
    }

    fn compact_one(&mut self, m: Minute, mut st: MinuteStats) -> Cell {
        let mut reasons: Vec<(u32, String)> = std::mem::take(&mut st.error_reasons)
            .into_iter()
            .map(|(k, v)| (v, k))
            .collect();
        reasons.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut cell = Cell {
            minute: u32::try_from(m).unwrap_or(0),
            counts: [
                st.requests,
                st.status_4xx,
                st.status_429,
                st.status_5xx,
                st.backend_5xx,
                st.timeouts,
                st.connection_failures,
            ],
            total: sketch(&st.total_latency),
            backend: sketch(&st.backend_latency),
            backend_n: u32::try_from(st.backend_latency.count()).unwrap_or(u32::MAX),
            ..Cell::default()
        };
        for (slot, (count, reason)) in reasons.into_iter().take(2).enumerate() {
            cell.reason_ids[slot] = self.intern(&reason);
            cell.reason_counts[slot] = count;
        }
        cell
    }

    fn expand_cell(&self, c: &Cell) -> MinuteStats {
        let [requests, s4, s429, s5, b5, timeouts, conn] = c.counts;
        let mut st = MinuteStats {
            requests,
            // 3xx count as 2xx once compacted.
            status_2xx: requests.saturating_sub(s4).saturating_sub(s5),
            status_4xx: s4,
            status_429: s429,
            status_5xx: s5,
            backend_5xx: b5,
            timeouts,
            connection_failures: conn,
            total_latency: expand(&c.total, requests),
            backend_latency: expand(&c.backend, c.backend_n),
            ..MinuteStats::default()
        };
        for (id, n) in c.reason_ids.iter().zip(c.reason_counts) {
            if let Some(r) = usize::from(*id)
                .checked_sub(1)
                .and_then(|i| self.reasons.get(i))
            {
                st.error_reasons.insert(r.clone(), n);
            }
        }
        st
    }

    fn compact_if_due(&mut self) {
        let wm = self.watermark.map(Timestamp::minute);
        if wm.is_some() && wm != self.compacted_at {
            self.compact();
        }
    }

    /// Moves minutes older than `exact` into cells and drops cells older
    /// than `retention`. Cheap when nothing aged.
    pub fn compact(&mut self) {
        let Some(wm) = self.watermark.map(Timestamp::minute) else {
            return;
        };
        self.compacted_at = Some(wm);
        let exact_floor = wm - self.cfg.exact_minutes;
        let keep_floor = wm - self.cfg.retention_minutes;
        if self.history.len() < self.exact.series.len() {
            self.history
                .resize_with(self.exact.series.len(), Cells::default);
        }
        for i in 0..self.exact.series.len() {
            let old: Vec<Minute> = self.exact.series[i]
                .minutes
                .range(..exact_floor)
                .map(|(m, _)| *m)
                .collect();
            for m in old {
                let Some(st) = self.exact.series[i].minutes.remove(&m) else {
                    continue;
                };
                self.exact.rows = self.exact.rows.saturating_sub(u64::from(st.requests));
                if m >= keep_floor {
                    let cell = self.compact_one(m, st);
                    self.history[i].insert(cell);
                }
            }
            self.history[i].drop_before(keep_floor);
        }
    }

    /// Traffic of the last `lookback` minutes, as the detectors read it.
    pub fn traffic(&self) -> Traffic {
        let mut t = Traffic::default();
        let Some(wm) = self.watermark.map(Timestamp::minute) else {
            return t;
        };
        let floor = wm - self.cfg.lookback_minutes;
        for (i, s) in self.exact.series.iter().enumerate() {
            let recent: Vec<&Cell> = self
                .history
                .get(i)
                .map(|c| c.from(floor).collect())
                .unwrap_or_default();
            if recent.is_empty() && s.minutes.is_empty() {
                continue;
            }
            let j = t.series_index(&s.key.api_id, &s.key.operation_id, &s.key.backend);
            for c in recent {
                let st = self.expand_cell(c);
                t.rows += u64::from(st.requests);
                t.series[j].minutes.insert(i64::from(c.minute), st);
            }
            for (m, st) in s.minutes.range(floor..) {
                t.rows += u64::from(st.requests);
                t.series[j].minutes.insert(*m, st.clone());
            }
        }
        t
    }

    /// Findings current at the watermark, from the retained traffic and the
    /// static part of the snapshot (configuration, metrics, changes).
    pub fn evaluate(&self, statics: &Snapshot) -> Vec<Finding> {
        let mut snap = Snapshot {
            traffic: self.traffic(),
            ..statics.clone()
        };
        snap.loaded
            .counts
            .insert(crate::model::InputKind::GatewayLogs, snap.traffic.rows);
        let findings = analyze::analyze(&snap, &analyze::Options::default());
        let Some(wm) = self.watermark.map(Timestamp::minute) else {
            return findings
                .into_iter()
                .filter(|f| f.window.is_none())
                .collect();
        };
        let active_from = wm + 1 - self.cfg.active_minutes;
        findings
            .into_iter()
            .filter(|f| f.window.is_none_or(|w| w.end.minute() > active_from))
            .collect()
    }
}

fn merge_cells(a: &mut Cell, b: &Cell) {
    let mut total = expand(&a.total, a.counts[0]);
    total.merge(&expand(&b.total, b.counts[0]));
    let mut backend = expand(&a.backend, a.backend_n);
    backend.merge(&expand(&b.backend, b.backend_n));
    for (x, y) in a.counts.iter_mut().zip(b.counts) {
        *x = x.saturating_add(y);
    }
    a.total = sketch(&total);
    a.backend = sketch(&backend);
    a.backend_n = a.backend_n.saturating_add(b.backend_n);
    for (id, n) in b.reason_ids.iter().zip(b.reason_counts) {
        if *id == 0 {
            continue;
        }
        if let Some(k) = a.reason_ids.iter().position(|x| x == id) {
            a.reason_counts[k] = a.reason_counts[k].saturating_add(n);
        } else if let Some(k) = a.reason_ids.iter().position(|x| *x == 0) {
            a.reason_ids[k] = *id;
            a.reason_counts[k] = n;
        }
    }
}

/// The origin of a line in a followed file.
pub fn line_origin(file: &str, line: u64) -> Origin {
    Origin::at_line(file, u32::try_from(line).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {

    /// A feed at 60x real time with the default tick (15 s) and `for`
    /// (60 s) is named, once; a real-time feed is not.
    #[test]
    fn pace_warns_once_when_a_tick_spans_data_minutes() {
        let tick = Duration::from_secs(15);
        let for_ = Duration::from_secs(60);
        let mut fast = Pace::default();
        let mut said = Vec::new();
        for i in 0..20i64 {
            let wall = Timestamp(1_000_000 + i * 15_000);
            let data = Timestamp(5_000_000 + i * 15_000 * 60);
            said.extend(fast.observe(wall, Some(data), tick, for_));
        }
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains("60x faster") && said[0].contains("covers 15 data minutes"),
            "{}",
            said[0]
        );
        assert!(said[0].contains("about 75 data minutes"), "{}", said[0]);
        let mut real = Pace::default();
        for i in 0..20i64 {
            let t = Timestamp(1_000_000 + i * 15_000);
            assert_eq!(real.observe(t, Some(Timestamp(t.0 + 7)), tick, for_), None);
        }
        // No data yet: nothing to judge.
        assert_eq!(
            Pace::default().observe(Timestamp(0), None, tick, for_),
            None
        );
    }
    use super::*;
    use crate::model::FindingKind;

    const T0: i64 = 29_000_000; // a minute in 2025

    fn line(minute: i64, sec: i64, op: &str, code: u16, ms: u32) -> String {
        let t = Timestamp::from_millis(minute * 60_000 + sec * 1000).to_rfc3339();
        format!(
            "{{\"TimeGenerated\":\"{t}\",\"ApiId\":\"orders-api\",\"OperationId\":\"{op}\",\"BackendId\":\"orders-app\",\"ResponseCode\":{code},\"BackendResponseCode\":{code},\"TotalTime\":{ms},\"BackendTime\":{}}}\n",
            ms.saturating_sub(2)
        )
    }

    fn feed(store: &mut Store, minutes: std::ops::Range<i64>, bad: impl Fn(i64, i64) -> bool) {
        let mut text = String::new();
        for m in minutes {
            for s in 0..60 {
                let code = if bad(m, s) { 503 } else { 200 };
                text.push_str(&line(T0 + m, s, "get-order", code, 40 + (s as u32 % 7)));
            }
        }
        store.ingest_ndjson("gw.ndjson", text.as_bytes(), 1);
    }

    fn cfg() -> EngineConfig {
        EngineConfig {
            retention_minutes: 120,
            lookback_minutes: 60,
            exact_minutes: 5,
            active_minutes: 2,
        }
    }

    #[test]
    fn compacts_old_minutes_and_drops_beyond_retention() {
        let mut s = Store::new(cfg());
        feed(&mut s, 0..200, |_, _| false);
        let (series, minutes) = s.size();
        assert_eq!(series, 1);
        // 120 retained + the watermark minute (+ exact tier boundary).
        assert!((120..=122).contains(&minutes), "{minutes}");
        assert_eq!(s.rows, 200 * 60);
        let t = s.traffic();
        let m = &t.series[0].minutes;
        assert_eq!(m.len(), 61);
        // Compacted minutes keep exact counters and a sketched histogram.
        let old = &m[&(T0 + 150)];
        assert_eq!(old.requests, 60);
        assert_eq!(old.total_latency.count(), 60);
        assert!(old.total_latency.bins().len() <= 8);
        let (lo, hi) = (old.total_latency.percentile(0.0), old.total_latency.max());
        assert!(lo >= Some(40) && hi <= Some(46), "{lo:?} {hi:?}");
        let recent = &m[&(T0 + 198)];
        assert_eq!(recent.total_latency.count(), 60);
    }

    #[test]
    fn late_rows_merge_into_their_minute() {
        let mut s = Store::new(cfg());
        feed(&mut s, 0..30, |_, _| false);
        s.ingest_ndjson("late", line(T0 + 3, 1, "get-order", 500, 10).as_bytes(), 9);
        let t = s.traffic();
        let m = &t.series[0].minutes[&(T0 + 3)];
        assert_eq!((m.requests, m.status_5xx), (61, 1));
    }

    #[test]
    fn a_current_spike_is_found_and_an_old_one_is_history() {
        let mut s = Store::new(cfg());
        // Baseline, then 6 minutes where half the requests fail.
        feed(&mut s, 0..40, |m, sec| m >= 34 && sec % 2 == 0);
        let f = s.evaluate(&Snapshot::default());
        let spike = f.iter().find(|f| f.kind == FindingKind::ErrorSpike);
        assert!(spike.is_some(), "{f:#?}");
        // Ten more healthy minutes: the spike is no longer current.
        feed(&mut s, 40..50, |_, _| false);
        let f = s.evaluate(&Snapshot::default());
        assert!(
            f.iter().all(|f| f.kind != FindingKind::ErrorSpike),
            "{f:#?}"
        );
    }

    #[test]
    fn bad_lines_are_counted_with_their_real_line() {
        let mut s = Store::new(cfg());
        let text = format!("{}not json\n", line(T0, 0, "x", 200, 5));
        let (ok, bad) = s.ingest_ndjson("gw", text.as_bytes(), 101);
        assert_eq!((ok, bad), (1, 1));
        assert_eq!(s.problems[0].origin.line, Some(102));
    }

    #[test]
    fn a_future_row_is_rejected_counted_and_never_moves_the_watermark() {
        let mut s = Store::new(cfg());
        let now = Timestamp::from_minute(T0 + 40);
        s.set_future_limit(Some(Timestamp(now.0 + FUTURE_TOLERANCE_MS)));
        feed(&mut s, 0..30, |_, _| false);
        let wm = s.watermark();
        // Three hours ahead: plausible as a timestamp, impossible as "now".
        let far = line(T0 + 220, 0, "get-order", 200, 5);
        let text = format!(
            "{}{far}{}",
            line(T0 + 30, 0, "get-order", 200, 5),
            line(T0 + 30, 1, "get-order", 200, 5)
        );
        let (ok, bad) = s.ingest_ndjson("gw.ndjson", text.as_bytes(), 1801);
        assert_eq!((ok, bad, s.future), (2, 1, 1));
        assert!(
            s.watermark() > wm && s.watermark() <= Some(now),
            "{:?}",
            s.watermark()
        );
        let p = s.problems.last().unwrap();
        assert_eq!(p.origin.line, Some(1802));
        assert!(
            p.message
                .contains(&Timestamp::from_minute(T0 + 220).to_rfc3339()),
            "{}",
            p.message
        );
        // Later rows are not "too old": the daemon is not blind.
        feed(&mut s, 31..35, |_, _| false);
        assert_eq!(s.too_old, 0);
        assert_eq!(s.rows, 30 * 60 + 2 + 4 * 60);
        // A chunk of only future rows leaves the watermark alone.
        let before = s.watermark();
        s.ingest_ndjson("gw.ndjson", far.as_bytes(), 9000);
        assert_eq!(s.watermark(), before);
        assert_eq!(s.future, 2);
        // Data replayed faster than real time runs ahead minute by minute: kept.
        feed(&mut s, 35..60, |_, _| false);
        assert_eq!(s.future, 2);
        assert_eq!(s.watermark().map(Timestamp::minute), Some(T0 + 59));
    }

    #[test]
    fn cells_stay_ordered_across_blocks() {
        let cell = |m: u32, n: u32| Cell {
            minute: m,
            counts: [n, 0, 0, 0, 0, 0, 0],
            ..Cell::default()
        };
        let mut c = Cells::default();
        for m in (0..300).filter(|m| m % 100 != 50) {
            c.insert(cell(m, 1));
        }
        assert_eq!(c.blocks.len(), 3);
        c.insert(cell(150, 1)); // late, new minute
        c.insert(cell(10, 2)); // late, same minute: merged
        let all: Vec<(u32, u32)> = c.from(0).map(|x| (x.minute, x.counts[0])).collect();
        assert_eq!(all.len(), 298);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(all.contains(&(150, 1)) && all.contains(&(10, 3)));
        c.drop_before(200);
        assert_eq!(c.len(), 99);
        assert_eq!(c.from(0).next().map(|x| x.minute), Some(200));
        assert_eq!(c.from(290).count(), 10);
    }

    #[test]
    fn sketch_and_expand_keep_the_shape() {
        let h: LatencyHistogram = (1..=100).collect();
        let s = sketch(&h);
        assert_eq!(s[0], 7);
        assert!((93..=95).contains(&s[7]), "{s:?}");
        assert_eq!(expand(&s, 3).count(), 3);
        let many = expand(&s, 1000);
        assert_eq!(many.count(), 1000);
        assert_eq!(many.percentile(50.0), Some(u32::from(s[3])));
        assert!(expand(&s, 0).is_empty());
        assert_eq!(std::mem::size_of::<Cell>(), 80);
    }
}
