//! Per-thread aggregation of requests, and the final merge into `Traffic`.
//!
//! Chunks of a file are read in parallel, so a worker does not know the
//! absolute line numbers of its rows. It records them relative to its chunk
//! (origin `line` = line within the chunk, `record` = chunk sequence number);
//! `finish` turns them into file line numbers once every chunk's line count
//! is known. Samples kept as evidence are then the first failing rows of each
//! series-minute in file order, whatever the thread scheduling was, so the
//! result is deterministic.

use crate::model::{
    DenseCounts, InputKind, LoadReport, MinuteStats, Origin, Problem, Request, Timestamp, Traffic,
    same_bytes, url_host,
};
use rayon::prelude::*;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (rustc's hasher): a multiply-rotate per 8 bytes. The keys are
/// short strings hashed once per row, where SipHash would cost more than
/// the rest of the row.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    /// Eight bytes at a time, the last word overlapping the one before
    /// (deterministic, so equal strings hash equal); no remainder copy.
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            if let Some(c) = bytes.get(at..at + 8) {
                w.copy_from_slice(c);
            }
            u64::from_le_bytes(w)
        };
        let n = bytes.len();
        if n >= 8 {
            let mut at = 0;
            while at + 8 < n {
                self.add(word(at));
                at += 8;
            }
            self.add(word(n - 8));
        } else {
            let small = bytes
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b));
            self.add(small);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One series-minute being folded.
struct Cell {
    series: u32,
    minute: i64,
    stats: MinuteStats,
}

/// One (api, operation, backend) series of a thread's fold.
struct SeriesCells {
    hash: u64,
    names: [String; 3],
    /// Minute → index into `Fold::cells`.
    minutes: FxMap<i64, u32>,
    /// The minute looked up last and its cell: rows come roughly in time
    /// order, so this answers nearly every lookup.
    last: Option<(i64, u32)>,
}

/// Latencies of a cell being filled, counted densely until the cell's
/// series moves to another minute (or another series takes the slot).
#[derive(Default)]
struct Open {
    /// The cell they belong to.
    cell: Option<u32>,
    total: DenseCounts,
    backend: DenseCounts,
}

/// Cells whose latencies are counted densely at a time: one slot per
/// series modulo this (at most ~570 KB per thread, whatever the series).
const OPEN_SLOTS: usize = 64;

/// A thread's aggregate. A row costs one hash of its three names (no
/// copy, no allocation), a probe of a small open-addressing table and,
/// nearly always, the series' last-minute shortcut; its latencies go to
/// the series' open slot (an index and an add each), flushed into the
/// cell's histograms when the slot changes cell and before the fold is
/// read.
#[derive(Default)]
pub(super) struct Fold {
    /// Open addressing over `series`: 0 = empty, else index + 1.
    slots: Vec<u32>,
    series: Vec<SeriesCells>,
    cells: Vec<Cell>,
    open: Vec<Open>,
    /// The last URL-named series of each (API, operation) slot.
    memo: Vec<Option<Memo>>,
    pub(super) accepted: u64,
    pub(super) first: Option<Timestamp>,
    pub(super) last: Option<Timestamp>,
}

/// Memo slots per thread (direct-mapped by API and operation).
const MEMO_SLOTS: usize = 256;

/// A series whose backend is a URL's host, and the `scheme://host` its
/// URLs start with.
struct Memo {
    api: String,
    op: String,
    /// `https://host` or `http://host` (the host has no `/`, `?`, `#` or
    /// `@`), or empty for rows without a `BackendUrl`.
    prefix: String,
    /// Where the host starts in `prefix`.
    host_at: usize,
    series: u32,
}

impl Memo {
    /// Makes `slot` the memo of a row whose URL's host `url_host` cut as
    /// `host`, reusing its strings (an operation whose rows alternate
    /// between backends refills it row after row); empty when the URL is
    /// not plainly `http(s)://host[/?#...]`.
    fn refill(slot: &mut Option<Memo>, api: &str, op: &str, url: &str, host: &str, series: u32) {
        let prefix = if url.is_empty() {
            Some("")
        } else {
            ["https://", "http://"]
                .into_iter()
                .find(|s| url.starts_with(s))
                .and_then(|scheme| {
                    let prefix = url.get(..scheme.len() + host.len())?;
                    let plain = prefix.get(scheme.len()..) == Some(host)
                        && !host.is_empty()
                        && !host.bytes().any(|c| matches!(c, b'/' | b'?' | b'#' | b'@'));
                    plain.then_some(prefix)
                })
        };
        let Some(prefix) = prefix else {
            *slot = None;
            return;
        };
        let m = slot.get_or_insert_with(|| Memo {
            api: String::new(),
            op: String::new(),
            prefix: String::new(),
            host_at: 0,
            series,
        });
        for (into, from) in [(&mut m.api, api), (&mut m.op, op), (&mut m.prefix, prefix)] {
            into.clear();
            into.push_str(from);
        }
        m.host_at = prefix.find("://").map_or(0, |i| i + 3);
        m.series = series;
    }

    /// `url`'s host when `url` is this memo's `scheme://host` followed by
    /// its end, `/`, `?` or `#` (then `url_host(url)` is that host).
    #[inline(always)]
    fn host_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        let n = self.prefix.len();
        if n == 0 {
            return url.is_empty().then_some("");
        }
        let head = url.as_bytes().get(..n)?;
        if !same_bytes(head, self.prefix.as_bytes())
            || !matches!(url.as_bytes().get(n), None | Some(b'/' | b'?' | b'#'))
        {
            return None;
        }
        url.get(self.host_at..n)
    }
}

/// The memo slot of an (API, operation): their lengths and first and last
/// eight bytes, mixed.
#[inline(always)]
fn memo_index(api: &str, op: &str) -> usize {
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        if let Some(c) = s.get(at..at + 8) {
            w.copy_from_slice(c);
        } else {
            for (d, c) in w.iter_mut().zip(s.get(at..).unwrap_or_default()) {
                *d = *c;
            }
        }
        u64::from_le_bytes(w)
    };
    let (a, o) = (api.as_bytes(), op.as_bytes());
    let mixed = word(a, 0)
        ^ word(a, a.len().saturating_sub(8)).rotate_left(17)
        ^ word(o, 0).rotate_left(31)
        ^ word(o, o.len().saturating_sub(8)).rotate_left(47)
        ^ ((a.len() as u64) << 8 | (o.len() as u64) << 24);
    (mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % MEMO_SLOTS
}

fn series_hash(names: [&str; 3]) -> u64 {
    // Each name hashed on its own, then the three combined: three short
    // chains of multiplies the CPU runs side by side, not one long one.
    let part = |n: &str| {
        let mut h = FxHasher::default();
        h.write(n.as_bytes());
        h.write_usize(n.len());
        h.finish()
    };
    let mut h = FxHasher::default();
    for n in names {
        h.add(part(n));
    }
    // Fx leaves the low bits weak; the table indexes with the high ones.
    h.finish()
}

/// What a worker learnt about one chunk besides its rows.
#[derive(Debug, Default)]
pub(super) struct ChunkInfo {
    /// The chunk's number: unique, `0..n` over a file's chunks (samples
    /// name it until line numbers are known).
    pub(super) seq: u32,
    /// Where the chunk lies in the file: chunks in ascending `order` are in
    /// file order (`seq` itself unless the reader hands chunks out of
    /// order; then their byte offsets).
    pub(super) order: u64,
    pub(super) lines: u32,
    /// Rejected rows: line within the chunk (1-based), message.
    pub(super) problems: Vec<(u32, String)>,
    /// Rejected rows beyond the kept problems.
    pub(super) dropped: u64,
}

impl ChunkInfo {
    pub(super) fn new(seq: u32) -> Self {
        ChunkInfo {
            seq,
            order: u64::from(seq),
            ..ChunkInfo::default()
        }
    }

    pub(super) fn reject(&mut self, line: u32, message: String) {
        if self.problems.len() < LoadReport::MAX_PROBLEMS {
            self.problems.push((line, message));
        } else {
            self.dropped += 1;
        }
    }
}

/// The origin a worker gives a sample before line numbers are known.
pub(super) fn chunk_origin(file: &str, seq: u32, line: u32) -> Origin {
    Origin {
        file: file.to_string(),
        line: Some(line),
        record: Some(seq),
    }
}

impl Fold {
    /// Folds one request in; `origin` is called only if it becomes a sample.
    pub(super) fn add(&mut self, r: &Request<'_>, origin: impl FnOnce() -> Origin) {
        let (series, host) = if r.backend_id.is_empty() {
            self.series_by_url(r)
        } else {
            // The host is cut once: the cell lists it.
            let series = self.series_of([r.api_id, r.operation_id, r.backend_id]);
            (series, url_host(r.backend_url))
        };
        let cell = self.cell_of(series, r.time.minute());
        if let Some(c) = self.cells.get_mut(cell as usize) {
            c.stats.add_counts(r, host, origin);
        }
        if self.open.is_empty() {
            self.open.resize_with(OPEN_SLOTS, Open::default);
        }
        let Fold { open, cells, .. } = self;
        if let Some(slot) = open.get_mut(series as usize % OPEN_SLOTS) {
            if slot.cell != Some(cell) {
                flush(slot, cells);
                slot.cell = Some(cell);
            }
            slot.total.add(r.total_time_ms);
            if let Some(b) = r.backend_time_ms {
                slot.backend.add(b);
            }
        }
        self.accepted += 1;
        self.first = Some(self.first.map_or(r.time, |t| t.min(r.time)));
        self.last = Some(self.last.map_or(r.time, |t| t.max(r.time)));
    }

    /// The series of a row that names no backend entity (its backend is
    /// its `BackendUrl`'s host), and that host. Rows of one operation
    /// nearly always go to the host the last such row went to: a memo per
    /// (API, operation) answers with three compares (the URL against the
    /// memo's `scheme://host`), without cutting the host or hashing the
    /// names. Anything else goes the full way and refills the memo.
    #[inline]
    fn series_by_url<'a>(&mut self, r: &Request<'a>) -> (u32, &'a str) {
        let (api, op, url) = (r.api_id, r.operation_id, r.backend_url);
        let k = memo_index(api, op);
        if let Some(m) = self.memo.get(k).and_then(Option::as_ref)
            && same_bytes(m.api.as_bytes(), api.as_bytes())
            && same_bytes(m.op.as_bytes(), op.as_bytes())
            && let Some(host) = m.host_of(url)
        {
            return (m.series, host);
        }
        let host = url_host(url);
        let series = self.series_of([api, op, host]);
        if self.memo.is_empty() {
            self.memo.resize_with(MEMO_SLOTS, || None);
        }
        if let Some(slot) = self.memo.get_mut(k) {
            Memo::refill(slot, api, op, url, host, series);
        }
        (series, host)
    }

    /// The index of a series, created when new.
    fn series_of(&mut self, names: [&str; 3]) -> u32 {
        let hash = series_hash(names);
        if (self.series.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (hash >> 40) as usize;
        loop {
            let slot = i & mask;
            match self.slots.get(slot).copied() {
                Some(0) | None => {
                    let id = self.series.len() as u32;
                    self.series.push(SeriesCells {
                        hash,
                        names: names.map(str::to_string),
                        minutes: FxMap::default(),
                        last: None,
                    });
                    if let Some(s) = self.slots.get_mut(slot) {
                        *s = id + 1;
                    }
                    return id;
                }
                Some(s) => {
                    let id = s - 1;
                    if let Some(e) = self.series.get(id as usize)
                        && e.hash == hash
                        && same_bytes(e.names[0].as_bytes(), names[0].as_bytes())
                        && same_bytes(e.names[1].as_bytes(), names[1].as_bytes())
                        && same_bytes(e.names[2].as_bytes(), names[2].as_bytes())
                    {
                        return id;
                    }
                }
            }
            i += 1;
        }
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(64);
        self.slots = vec![0; len];
        let mask = len - 1;
        for (id, e) in self.series.iter().enumerate() {
            let mut i = (e.hash >> 40) as usize;
            while self.slots.get(i & mask).is_some_and(|&s| s != 0) {
                i += 1;
            }
            if let Some(s) = self.slots.get_mut(i & mask) {
                *s = id as u32 + 1;
            }
        }
    }

    /// The index of a series-minute cell, created when new.
    fn cell_of(&mut self, series: u32, minute: i64) -> u32 {
        let Fold {
            series: all, cells, ..
        } = self;
        let Some(s) = all.get_mut(series as usize) else {
            return u32::MAX;
        };
        if let Some((m, c)) = s.last
            && m == minute
        {
            return c;
        }
        let c = *s.minutes.entry(minute).or_insert_with(|| {
            cells.push(Cell {
                series,
                minute,
                stats: MinuteStats::default(),
            });
            cells.len() as u32 - 1
        });
        s.last = Some((minute, c));
        c
    }

    /// Moves every open slot's latencies into their cells.
    fn flush_open(&mut self) {
        let Fold { open, cells, .. } = self;
        for slot in open.iter_mut() {
            flush(slot, cells);
        }
    }
}

/// Moves a slot's latencies into its cell's histograms; the slot is then
/// empty (and still names its cell).
fn flush(slot: &mut Open, cells: &mut [Cell]) {
    if let Some(c) = slot.cell.and_then(|i| cells.get_mut(i as usize)) {
        slot.total.flush_into(&mut c.stats.total_latency);
        slot.backend.flush_into(&mut c.stats.backend_latency);
    }
}

/// Merges minute stats keeping the first samples in file order (chunk
/// sequence, then line within the chunk).
fn merge_in_file_order(into: &mut MinuteStats, mut other: MinuteStats) {
    if into.requests == 0 {
        // New here: move, do not copy the histograms.
        *into = other;
        return;
    }
    let mut samples = std::mem::take(&mut into.samples);
    samples.append(&mut other.samples);
    into.merge(other);
    samples.sort_by_key(|s| (s.origin.record, s.origin.line));
    samples.truncate(MinuteStats::MAX_SAMPLES);
    into.samples = samples;
}

/// Turns the workers' folds and chunk notes into `traffic` and `report`,
/// with file line numbers. `chunks` must cover sequence numbers 0..n.
pub(super) fn finish(
    file: &str,
    folds: Vec<Fold>,
    mut chunks: Vec<ChunkInfo>,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) {
    chunks.sort_by_key(|c| c.order);
    let mut base = vec![0u64; chunks.iter().map(|c| c.seq as usize + 1).max().unwrap_or(0)];
    let mut lines = 0u64;
    for c in &chunks {
        if let Some(b) = base.get_mut(c.seq as usize) {
            *b = lines;
        }
        lines += u64::from(c.lines);
    }
    let at = |seq: Option<u32>, line: Option<u32>| -> u32 {
        let b = seq.and_then(|s| base.get(s as usize)).copied().unwrap_or(0);
        u32::try_from(b + u64::from(line.unwrap_or(0))).unwrap_or(u32::MAX)
    };
    for c in chunks {
        for (line, message) in c.problems {
            report.reject(Problem {
                origin: Origin::at_line(file, at(Some(c.seq), Some(line))),
                message,
            });
        }
        report.rejected += c.dropped;
    }

    // Each thread's open latencies into its cells, the threads' folds in
    // parallel.
    let mut folds = folds;
    folds.par_iter_mut().for_each(Fold::flush_open);
    let mut accepted = 0u64;
    for f in &folds {
        accepted += f.accepted;
        for t in [f.first, f.last].into_iter().flatten() {
            report.see_time(t);
        }
    }
    if accepted > 0 {
        report.count(InputKind::GatewayLogs, accepted);
    }
    traffic.rows += accepted;

    // The series of every fold under one index, then their cells, in fold
    // order (the order the earlier folds' cells are merged into).
    let cells: Vec<Vec<Cell>> = folds
        .iter_mut()
        .map(|f| std::mem::take(&mut f.cells))
        .collect();
    let mut union: FxMap<[&str; 3], usize> = FxMap::default();
    let mut keys: Vec<[&str; 3]> = Vec::new();
    let ids: Vec<Vec<usize>> = folds
        .iter()
        .map(|f| {
            f.series
                .iter()
                .map(|s| {
                    let key = [s.names[0].as_str(), &s.names[1], &s.names[2]];
                    *union.entry(key).or_insert_with(|| {
                        keys.push(key);
                        keys.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    let mut grouped: Vec<Vec<(i64, MinuteStats)>> = Vec::new();
    grouped.resize_with(keys.len(), Vec::new);
    for (fold_ids, cells) in ids.iter().zip(cells) {
        for cell in cells {
            if let Some(g) = fold_ids
                .get(cell.series as usize)
                .and_then(|&u| grouped.get_mut(u))
            {
                g.push((cell.minute, cell.stats));
            }
        }
    }
    // Each series' minutes merged (same minute: in file order) and their
    // samples given file line numbers, the series in parallel; new series
    // then join `traffic` in key order, deterministic whatever the threads
    // did.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys.get(a).cmp(&keys.get(b)));
    let mut merged: Vec<Option<BTreeMap<i64, MinuteStats>>> = Vec::new();
    merged.resize_with(keys.len(), || None);
    grouped
        .into_par_iter()
        .zip(merged.par_iter_mut())
        .for_each(|(mut cells, out)| {
            // Stable: cells of one minute stay in fold order.
            cells.sort_by_key(|c| c.0);
            let mut minutes: Vec<(i64, MinuteStats)> = Vec::with_capacity(cells.len());
            for (minute, mut stats) in cells {
                for s in &mut stats.samples {
                    s.origin.line = Some(at(s.origin.record, s.origin.line));
                    s.origin.record = None;
                }
                match minutes.last_mut() {
                    Some((m, into)) if *m == minute => merge_in_file_order(into, stats),
                    _ => minutes.push((minute, stats)),
                }
            }
            *out = Some(minutes.into_iter().collect());
        });
    for i in order {
        let (Some([api, op, backend]), Some(Some(minutes))) =
            (keys.get(i), merged.get_mut(i).map(Option::take))
        else {
            continue;
        };
        let s = traffic.series_index(api, op, backend);
        let Some(s) = traffic.series.get_mut(s) else {
            continue;
        };
        if s.minutes.is_empty() {
            s.minutes = minutes;
            continue;
        }
        for (minute, stats) in minutes {
            match s.minutes.entry(minute) {
                Entry::Vacant(v) => {
                    v.insert(stats);
                }
                Entry::Occupied(mut o) => o.get_mut().merge(stats),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memo answers exactly what cutting the host and looking the
    /// series up answers, over URLs that share, extend or differ from a
    /// memo's `scheme://host` in every way the check must catch.
    #[test]
    fn the_url_memo_answers_like_the_full_way() {
        let apis = ["orders-api", "o", "orders-apiX", ""];
        let ops = ["get-order", "get-orders", "list-orders-by-customer", ""];
        let urls = [
            "https://a.internal/x",
            "https://a.internal",
            "https://a.internal?q",
            "https://a.internal#f",
            "https://a.internalx/x",
            "https://a.interna/x",
            "https://a.internal:8443/x",
            "https://u:p@a.internal/x",
            "https://a.internal@b.internal/x",
            "http://a.internal/x",
            "HTTPS://a.internal/x",
            "ftp://a.internal/x",
            "https://b.internal/x",
            "not a url",
            "",
        ];
        let mut fold = Fold::default();
        let mut reference = Fold::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = Request {
                api_id: apis[(x % 4) as usize],
                operation_id: ops[((x >> 8) % 4) as usize],
                backend_url: urls[((x >> 16) % urls.len() as u64) as usize],
                ..Request::default()
            };
            let host = url_host(r.backend_url);
            let want = reference.series_of([r.api_id, r.operation_id, host]);
            let got = fold.series_by_url(&r);
            assert_eq!(got, (want, host), "{r:?}");
        }
    }
}
