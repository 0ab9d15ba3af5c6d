//! Reading a big line-oriented file in parallel with bounded memory.
//!
//! The calling thread reads the input into large blocks (`Limits::block`),
//! cuts each block after its last complete record and carries the partial
//! tail into the next block. Workers (one per core) take blocks from a small
//! queue, fold their rows into a per-thread `Fold` and hand the buffer back
//! for reuse, so at most `threads + 2` blocks exist at once. A record longer
//! than `Limits::max_line` is never held whole: the reader skips it to its
//! end and reports it. In-memory input goes through the same workers without
//! copying.

use super::fold::{ChunkInfo, Fold, finish};
use crate::model::{LoadReport, Origin, Problem, Traffic};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel, sync_channel};
use std::sync::{Arc, Mutex};

/// Sizes the reader works with; tests shrink them to exercise every path.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) block: usize,
    pub(super) max_line: usize,
    pub(super) threads: usize,
}

impl Limits {
    pub(super) const MAX_LINE: usize = 16 << 20;

    pub(super) fn standard() -> Self {
        Limits {
            block: 4 << 20,
            max_line: Self::MAX_LINE,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 16)),
        }
    }
}

/// The message for a record over the limit.
pub(super) fn too_long(len: u64, limit: usize) -> String {
    let limit = if limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    };
    format!(
        "line is {len} bytes, longer than the {limit} limit; a gateway log row is a few KB, \
         so this is not one (was the file concatenated without newlines?)"
    )
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What a format supplies: where the last complete record of a block ends
/// (index just after its terminating newline), and how to fold a chunk.
pub(super) trait Format: Sync {
    fn cut(&self, block: &[u8]) -> Option<usize>;
    /// Where the first record of `data` (which starts at a record start) ends.
    fn cut_forward(&self, data: &[u8]) -> Option<usize>;
    fn chunk(&self, file: &str, seq: u32, data: &[u8], fold: &mut Fold) -> ChunkInfo;
}

/// Folds bytes already in memory: split into blocks at record ends, blocks
/// folded in parallel.
pub(super) fn parse_bytes<F: Format>(
    file: &str,
    bytes: &[u8],
    format: &F,
    limits: Limits,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) {
    parse_chunks(file, bytes, None, format, limits, traffic, report);
}

/// Folds a whole file mapped into memory (no copy into buffers: the read
/// copy was a sixth of the CPU time on big logs). Each chunk's pages are
/// handed back to the kernel once folded, so resident memory stays a few
/// blocks however big the file (the data stays in the page cache).
pub(super) fn parse_map<F: Format>(
    file: &str,
    map: &memmap2::Mmap,
    format: &F,
    limits: Limits,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) {
    // Readahead in big steps; the order of access is roughly sequential.
    let _ = map.advise(memmap2::Advice::Sequential);
    parse_chunks(file, map, Some(map), format, limits, traffic, report);
}

/// Drops the page mappings wholly inside `data`, a slice of `map`.
pub(super) fn release(map: &memmap2::Mmap, data: &[u8]) {
    const PAGE: usize = 4096;
    let base = map.as_ptr() as usize;
    let start = (data.as_ptr() as usize).saturating_sub(base);
    let end = start + data.len();
    let (from, to) = (start.div_ceil(PAGE) * PAGE, end / PAGE * PAGE);
    if to > from {
        // SAFETY: the map is a read-only view of a file, so MADV_DONTNEED
        // only drops page-table entries: a later read of these bytes faults
        // the same file contents back in (nothing is zeroed, unlike private
        // anonymous memory). No slice of the map is written.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
        };
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_chunks<F: Format>(
    file: &str,
    bytes: &[u8],
    map: Option<&memmap2::Mmap>,
    format: &F,
    limits: Limits,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    // Workers take runs of consecutive blocks, in file order under a lock:
    // big runs while much is left, single blocks at the end (so the threads
    // finish together). A thread's fold then holds whole stretches of the
    // file, so few series-minutes are split between threads and merged
    // after, and each thread still meets its rows in file order (the
    // samples a cell keeps are its first). A run is cut at a record end
    // found near its end; its blocks are cut by the worker as it goes, not
    // up front: finding every cut first touched a page every block through
    // the whole file, and with a mapped file (large folios, fault around)
    // that mapped most of it at once. Only the blocks in flight are
    // mapped; each is released once folded.
    let threads = limits
        .threads
        .clamp(1, bytes.len().div_ceil(limits.block.max(1)).max(1));
    let cursor = Mutex::new((bytes, 0u64));
    let seqs = AtomicU32::new(0);
    let take_run = || -> Option<(u64, &[u8])> {
        let mut guard = cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (rest, offset) = &mut *guard;
        if rest.is_empty() {
            return None;
        }
        let blocks = (rest.len() / limits.block.max(1) / (threads * RUNS_PER_THREAD))
            .clamp(1, MAX_RUN_BLOCKS);
        let cut = cut_at(format, rest, blocks * limits.block, limits.block);
        let (head, tail) = rest.split_at(cut.min(rest.len()));
        let at = *offset;
        *rest = tail;
        *offset += head.len() as u64;
        Some((at, head))
    };
    let work = || {
        let mut fold = Fold::default();
        let mut infos = Vec::new();
        while let Some((mut offset, mut run)) = take_run() {
            while !run.is_empty() {
                let cut = cut_at(format, run, limits.block, limits.block);
                let (data, tail) = run.split_at(cut.min(run.len()));
                let seq = seqs.fetch_add(1, Ordering::Relaxed);
                let mut info = format.chunk(file, seq, data, &mut fold);
                info.order = offset;
                infos.push(info);
                if let Some(map) = map {
                    release(map, data);
                }
                offset += data.len() as u64;
                run = tail;
            }
        }
        (fold, infos)
    };
    let results: Vec<(Fold, Vec<ChunkInfo>)> = if threads == 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    };
    let (folds, infos): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    finish(
        file,
        folds,
        infos.into_iter().flatten().collect(),
        traffic,
        report,
    );
}

/// A thread's share of what is left, in runs: the first run of a file is
/// a quarter of its share; later runs shrink with what is left.
const RUNS_PER_THREAD: usize = 4;

/// The longest run, in blocks (256 MiB at the standard block).
const MAX_RUN_BLOCKS: usize = 64;

/// Where to cut `rest` for a piece of about `want` bytes: after the last
/// record end in the `window` bytes before `want` (the search stays near
/// the cut, so only pages there are touched), else after the first record
/// end past it, else at the end.
fn cut_at<F: Format>(format: &F, rest: &[u8], want: usize, window: usize) -> usize {
    if want >= rest.len() {
        return rest.len();
    }
    let from = want.saturating_sub(window.max(1));
    match rest.get(from..want).and_then(|b| format.cut(b)) {
        Some(c) if from + c > 0 => from + c,
        // No record end near the cut: take up to the next one.
        _ => rest
            .get(want..)
            .and_then(|tail| format.cut_forward(tail))
            .map_or(rest.len(), |c| want + c),
    }
}

/// A block handed to a worker.
struct Job {
    seq: u32,
    buf: Vec<u8>,
    len: usize,
}

/// Folds a stream. Rows read before an I/O error are kept; the error is
/// returned after they are merged.
pub(super) fn read_stream<F: Format, R: Read + Send>(
    file: &str,
    mut reader: R,
    format: &F,
    limits: Limits,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) -> io::Result<()> {
    // Most files are small: one block read to the end is folded here,
    // without starting threads.
    let mut head = Vec::new();
    let cap = limits.block.min(limits.max_line).min(1 << 20);
    (&mut reader).take(cap as u64 + 1).read_to_end(&mut head)?;
    if head.len() <= cap {
        parse_bytes(file, &head, format, limits, traffic, report);
        return Ok(());
    }
    read_threaded(
        file,
        io::Cursor::new(head).chain(reader),
        format,
        limits,
        traffic,
        report,
    )
}

fn read_threaded<F: Format, R: Read + Send>(
    file: &str,
    mut reader: R,
    format: &F,
    limits: Limits,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) -> io::Result<()> {
    let threads = limits.threads.max(1);
    let (work_tx, work_rx) = sync_channel::<Job>(threads);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (free_tx, free_rx) = channel::<Vec<u8>>();
    let (folds, mut infos, result) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&work_rx);
                let free_tx = free_tx.clone();
                s.spawn(move || {
                    let mut fold = Fold::default();
                    let mut infos = Vec::new();
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => break,
                        };
                        let Ok(job) = job else { break };
                        let data = job.buf.get(..job.len).unwrap_or_default();
                        infos.push(format.chunk(file, job.seq, data, &mut fold));
                        // The reader may have finished: a closed pool is fine.
                        let _ = free_tx.send(job.buf);
                    }
                    (fold, infos)
                })
            })
            .collect();
        drop(work_rx);
        drop(free_tx);
        let mut reader_infos = Vec::new();
        let result = split_stream(
            &mut reader,
            format,
            limits,
            threads + 2,
            &free_rx,
            |job| work_tx.send(job).is_ok(),
            &mut reader_infos,
        );
        drop(work_tx);
        let mut folds = Vec::new();
        let mut infos = reader_infos;
        for h in handles {
            match h.join() {
                Ok((f, i)) => {
                    folds.push(f);
                    infos.extend(i);
                }
                Err(_) => report.reject(Problem {
                    origin: Origin::file(file),
                    message: "internal error: a log reader thread failed; some rows are missing"
                        .into(),
                }),
            }
        }
        (folds, infos, result)
    });
    // A worker that died leaves holes in the sequence: keep numbering going.
    infos.sort_by_key(|c| c.seq);
    finish(file, folds, infos, traffic, report);
    result
}

/// The reader's loop: fills blocks, cuts them at record ends, sends them
/// to workers and skips over-long records.
#[allow(clippy::too_many_arguments)]
fn split_stream<F: Format, R: Read>(
    reader: &mut R,
    format: &F,
    limits: Limits,
    max_buffers: usize,
    free: &Receiver<Vec<u8>>,
    mut send: impl FnMut(Job) -> bool,
    infos: &mut Vec<ChunkInfo>,
) -> io::Result<()> {
    let block = limits.block.max(1);
    let mut allocated = 0usize;
    let mut carry: Vec<u8> = Vec::new();
    let mut seq = 0u32;
    let mut eof = false;
    let mut first = true;
    // Bytes of an over-long record skipped so far.
    let mut skipping: Option<u64> = None;
    // A buffer not handed to a worker, reused by the next round.
    let mut spare: Option<Vec<u8>> = None;
    while !eof {
        let taken = spare.take().map_or_else(|| free.try_recv(), Ok);
        let mut buf = match taken {
            Ok(b) => b,
            Err(_) if allocated < max_buffers => {
                allocated += 1;
                vec![0u8; block]
            }
            Err(_) => match free.recv() {
                Ok(b) => b,
                // Every worker is gone: nothing can take more blocks.
                Err(_) => return Err(io::Error::other("log reader threads stopped")),
            },
        };
        if buf.len() != block {
            buf = vec![0u8; block];
        }
        if carry.len() >= buf.len() {
            buf.resize(carry.len() + block, 0);
        }
        let mut len = carry.len();
        if let Some(dst) = buf.get_mut(..len) {
            dst.copy_from_slice(&carry);
        }
        carry.clear();
        while len < buf.len() {
            let Some(dst) = buf.get_mut(len..) else { break };
            match reader.read(dst) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut start = 0usize;
        if first {
            first = false;
            if buf.get(..len).is_some_and(|b| b.starts_with(BOM)) {
                start = BOM.len();
            }
        }
        if let Some(skipped) = skipping {
            let data = buf.get(start..len).unwrap_or_default();
            match memchr::memchr(b'\n', data) {
                Some(p) => {
                    infos.push(long_line(seq, skipped + p as u64, limits.max_line));
                    seq += 1;
                    skipping = None;
                    start += p + 1;
                }
                None => {
                    let total = skipped + data.len() as u64;
                    if eof {
                        infos.push(long_line(seq, total, limits.max_line));
                        seq += 1;
                    } else {
                        skipping = Some(total);
                    }
                    spare = Some(buf);
                    continue;
                }
            }
        }
        let data = buf.get(start..len).unwrap_or_default();
        let cut = if eof {
            data.len()
        } else {
            match format.cut(data) {
                Some(c) => c,
                None if data.len() > limits.max_line => {
                    skipping = Some(data.len() as u64);
                    spare = Some(buf);
                    continue;
                }
                None => 0,
            }
        };
        carry.extend_from_slice(data.get(cut..).unwrap_or_default());
        if cut == 0 {
            spare = Some(buf);
            continue;
        }
        if start > 0 {
            buf.copy_within(start..start + cut, 0);
        }
        if !send(Job { seq, buf, len: cut }) {
            return Err(io::Error::other("log reader threads stopped"));
        }
        seq += 1;
    }
    Ok(())
}

fn long_line(seq: u32, len: u64, limit: usize) -> ChunkInfo {
    let mut info = ChunkInfo::new(seq);
    info.lines = 1;
    info.reject(1, too_long(len, limit));
    info
}
