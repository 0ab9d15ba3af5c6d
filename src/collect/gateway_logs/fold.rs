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
    InputKind, LoadReport, MinuteStats, Origin, Problem, Request, Timestamp, Traffic,
};
use std::collections::HashMap;
use std::collections::btree_map::Entry;
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
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
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

/// A thread's aggregate: cells keyed by (api, operation, backend, minute)
/// encoded into bytes, so a row costs one hash lookup and no allocation.
#[derive(Default)]
pub(super) struct Fold {
    cells: FxMap<Box<[u8]>, u32>,
    stats: Vec<Cell>,
    series_ids: FxMap<Box<[u8]>, u32>,
    series: Vec<[String; 3]>,
    key: Vec<u8>,
    pub(super) accepted: u64,
    pub(super) first: Option<Timestamp>,
    pub(super) last: Option<Timestamp>,
}

/// What a worker learnt about one chunk besides its rows.
#[derive(Debug, Default)]
pub(super) struct ChunkInfo {
    pub(super) seq: u32,
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

/// `Request::backend_key` without `str::find`'s searcher set-up per row:
/// `BackendId`, else the host of `BackendUrl` (same result as `url_host`).
fn backend_key<'a>(r: &Request<'a>) -> &'a str {
    if !r.backend_id.is_empty() {
        return r.backend_id;
    }
    let url = r.backend_url;
    let b = url.as_bytes();
    // Plain loops: the scheme is a few bytes and hosts are short, so a SIMD
    // search's call and set-up would cost more than it saves.
    let Some(colon) = (0..b.len()).find(|&i| b.get(i..i + 3) == Some(b"://")) else {
        return "";
    };
    let host = url.get(colon + 3..).unwrap_or_default();
    let end = host
        .bytes()
        .position(|c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(host.len());
    host.get(..end).unwrap_or_default()
}

fn push_str(key: &mut Vec<u8>, s: &str) {
    key.extend_from_slice(&(s.len() as u32).to_le_bytes());
    key.extend_from_slice(s.as_bytes());
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
        let backend = backend_key(r);
        self.key.clear();
        push_str(&mut self.key, r.api_id);
        push_str(&mut self.key, r.operation_id);
        push_str(&mut self.key, backend);
        let series_len = self.key.len();
        let minute = r.time.minute();
        self.key.extend_from_slice(&minute.to_le_bytes());
        let i = match self.cells.get(self.key.as_slice()) {
            Some(&i) => i as usize,
            None => self.new_cell(series_len, minute, [r.api_id, r.operation_id, backend]),
        };
        if let Some(cell) = self.stats.get_mut(i) {
            cell.stats.add(r, origin);
        }
        self.accepted += 1;
        self.first = Some(self.first.map_or(r.time, |t| t.min(r.time)));
        self.last = Some(self.last.map_or(r.time, |t| t.max(r.time)));
    }

    fn new_cell(&mut self, series_len: usize, minute: i64, names: [&str; 3]) -> usize {
        let series_key = self.key.get(..series_len).unwrap_or_default();
        let series = match self.series_ids.get(series_key) {
            Some(&s) => s,
            None => {
                let s = self.series.len() as u32;
                self.series.push(names.map(str::to_string));
                self.series_ids.insert(series_key.into(), s);
                s
            }
        };
        let i = self.stats.len();
        self.stats.push(Cell {
            series,
            minute,
            stats: MinuteStats::default(),
        });
        self.cells.insert(self.key.as_slice().into(), i as u32);
        i
    }

    /// Adds another thread's fold into this one.
    fn absorb(&mut self, other: Fold) {
        self.accepted += other.accepted;
        for t in [other.first, other.last].into_iter().flatten() {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
        let Fold {
            cells,
            mut stats,
            series,
            ..
        } = other;
        for (key, j) in cells {
            let Some(cell) = stats.get_mut(j as usize) else {
                continue;
            };
            let theirs = std::mem::take(&mut cell.stats);
            let i = match self.cells.get(&key) {
                Some(&i) => i as usize,
                None => {
                    let Some([a, o, b]) = series.get(cell.series as usize) else {
                        continue;
                    };
                    self.key.clear();
                    self.key.extend_from_slice(&key);
                    let series_len = key.len().saturating_sub(8);
                    self.new_cell(series_len, cell.minute, [a, o, b])
                }
            };
            if let Some(mine) = self.stats.get_mut(i) {
                merge_in_file_order(&mut mine.stats, theirs);
            }
        }
    }
}

/// Merges minute stats keeping the first samples in file order (chunk
/// sequence, then line within the chunk).
fn merge_in_file_order(into: &mut MinuteStats, mut other: MinuteStats) {
    if into.requests == 0 {
        // New here: move, do not copy the latency vectors.
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
    chunks.sort_by_key(|c| c.seq);
    let mut base = vec![0u64; chunks.last().map_or(0, |c| c.seq as usize + 1)];
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

    let mut folds = folds.into_iter();
    let Some(mut all) = folds.next() else {
        return;
    };
    for f in folds {
        all.absorb(f);
    }
    if all.accepted > 0 {
        report.count(InputKind::GatewayLogs, all.accepted);
    }
    for t in [all.first, all.last].into_iter().flatten() {
        report.see_time(t);
    }
    traffic.rows += all.accepted;
    let Fold { stats, series, .. } = all;
    let mut cells: Vec<Cell> = stats;
    // New series appear in key order: deterministic whatever the threads did.
    cells.sort_by(|a, b| {
        let ka = series.get(a.series as usize);
        let kb = series.get(b.series as usize);
        ka.cmp(&kb).then(a.minute.cmp(&b.minute))
    });
    for mut cell in cells {
        for s in &mut cell.stats.samples {
            s.origin.line = Some(at(s.origin.record, s.origin.line));
            s.origin.record = None;
        }
        let Some([api, op, backend]) = series.get(cell.series as usize) else {
            continue;
        };
        let i = traffic.series_index(api, op, backend);
        if let Some(s) = traffic.series.get_mut(i) {
            match s.minutes.entry(cell.minute) {
                Entry::Vacant(v) => {
                    v.insert(cell.stats);
                }
                Entry::Occupied(mut o) => o.get_mut().merge(cell.stats),
            }
        }
    }
}
