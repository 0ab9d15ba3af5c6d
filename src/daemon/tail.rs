//! Sources: the files under the watched paths, followed as they grow.
//!
//! A file whose first line is an NDJSON gateway-log row is *followed*:
//! complete lines appended since the last poll are read (a partial last
//! line waits for its newline). Files are known by identity (device and
//! inode) and by content (a fingerprint of the first line), never by name,
//! so each byte is read once whatever rotation does:
//! - rename + create: the renamed file is the same file (it is finished
//!   through its own handle, late writes included); the new one at the old
//!   name starts from its beginning;
//! - copytruncate: the copy has the fingerprint of the file being read, so
//!   it continues from the offset already read; the truncated original
//!   starts again from its beginning;
//! - a compressed rotated copy (`.gz`) is not read: its rows came from the
//!   live file (said once, at info level, or once as a warning when its
//!   content was never followed).
//!
//! Like `diagnose`, a line longer than `MAX_LINE` is skipped in bounded
//! memory (reading resumes after its newline) and NUL bytes (the hole a
//! crash leaves in a preallocated log) are dropped; both are counted and
//! reported with file and line. Any other file is *static* (configuration,
//! metrics, activity log, policies): it is parsed whole by
//! `collect::parse_document` when its size or mtime changes. Offsets (with
//! identity and fingerprint) are checkpointed in the state directory.
//! Blocking file I/O, small and local.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Most bytes read from one file in one poll (the rest waits a poll).
pub const MAX_READ: usize = 4 << 20;

/// A line this long or longer is skipped, as `diagnose` does.
pub const MAX_LINE: usize = MAX_READ;

/// Bytes of the first line the fingerprint covers.
const FINGERPRINT_BYTES: usize = 4096;

/// Retired fingerprints kept (files truncated or gone, for copies of them).
const MAX_RETIRED: usize = 64;

/// Where reading a followed file got to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    pub dev: u64,
    pub ino: u64,
    /// Bytes consumed (just after a newline, or inside a skipped line).
    pub offset: u64,
    /// 1-based number of the next line.
    pub line: u64,
    /// FNV-1a of the first line (its first 4 KiB); 0 while not known.
    #[serde(default)]
    pub fingerprint: u64,
    /// Inside a line too long to keep: bytes up to its newline are skipped.
    #[serde(default)]
    pub skipping: bool,
}

/// Offsets of every followed file, saved in `offsets.json`, and the
/// offsets of content no longer under its name (truncated by
/// copytruncate, or removed), so a copy of it continues where reading was.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoints {
    pub files: BTreeMap<PathBuf, Offset>,
    #[serde(default)]
    pub retired: Vec<Offset>,
}

impl Checkpoints {
    pub fn load(dir: &Path) -> Checkpoints {
        std::fs::read(dir.join("offsets.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        write_atomic(&dir.join("offsets.json"), &bytes)
    }

    /// Where to resume a file of this identity and fingerprint: the
    /// checkpoint of the same file (same identity, same first line), else
    /// of the same content under another identity (a copy).
    pub fn find(&self, id: (u64, u64), fingerprint: u64) -> Option<Offset> {
        let same = self
            .files
            .values()
            .find(|o| (o.dev, o.ino) == id && (o.fingerprint == 0 || o.fingerprint == fingerprint));
        if let Some(o) = same {
            return Some(*o);
        }
        if fingerprint == 0 {
            return None;
        }
        self.files
            .values()
            .chain(self.retired.iter())
            .filter(|o| o.fingerprint == fingerprint)
            .max_by_key(|o| o.offset)
            .map(|o| Offset {
                dev: id.0,
                ino: id.1,
                ..*o
            })
    }

    /// Remembers content that left its name, most recent first, bounded.
    pub fn retire(&mut self, o: Offset) {
        if o.fingerprint == 0 {
            return;
        }
        self.retired.retain(|r| r.fingerprint != o.fingerprint);
        self.retired.insert(0, o);
        self.retired.truncate(MAX_RETIRED);
    }
}

/// Writes a file so that a crash leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        // A full disk must not keep a half-written temporary file.
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Why bytes of a followed file were not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipKind {
    /// A line of `MAX_LINE` bytes or more (`bytes` counts what was skipped
    /// in this read; the line's number is where it starts).
    TooLong,
    /// NUL bytes.
    Nul,
}

/// Bytes skipped, where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skip {
    pub kind: SkipKind,
    /// The line they were on (1-based).
    pub line: u64,
    pub bytes: u64,
}

/// Complete lines read from a followed file, and what was skipped.
#[derive(Debug, Default)]
pub struct Chunk {
    pub file: String,
    pub bytes: Vec<u8>,
    pub first_line: u64,
    pub skipped: Vec<Skip>,
}

/// A followed file, held open: it is the same file whatever its name
/// becomes.
#[derive(Debug)]
pub struct Follower {
    /// Where it was last seen (messages and checkpoints name it).
    pub path: PathBuf,
    pub at: Offset,
    handle: File,
    buf: Vec<u8>,
}

/// The identity of the file at `path` (device, inode), following symlinks.
pub fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// FNV-1a, 64 bits: stable across runs and versions (checkpoints keep it).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
}

/// The fingerprint of a head of content: its first line (with newline),
/// or its first 4 KiB; None while the first line is not complete.
pub fn fingerprint_of_head(head: &[u8]) -> Option<u64> {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    match memchr::memchr(b'\n', head) {
        Some(i) => Some(fnv1a(&head[..=i])),
        None if head.len() >= FINGERPRINT_BYTES => Some(fnv1a(head)),
        None => None,
    }
}

fn fingerprint_of_file(f: &File) -> std::io::Result<Option<u64>> {
    let mut head = vec![0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < head.len() {
        let k = f.read_at(&mut head[n..], n as u64)?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(fingerprint_of_head(&head[..n]))
}

/// True when a checkpoint is for this file: the same identity with the
/// same first line (or a checkpoint too old to have one), or the same
/// first line under another identity (a copy).
fn describes(r: &Offset, id: (u64, u64), fingerprint: u64) -> bool {
    let same_content = r.fingerprint != 0 && r.fingerprint == fingerprint;
    let same_file = (r.dev, r.ino) == id && r.fingerprint == 0;
    same_content || same_file
}

impl Follower {
    /// Opens `path` and resumes at `resume` when it describes this file
    /// (same identity, or the same first line: a copy) and the file is not
    /// shorter; else reads from the start.
    pub fn open(path: PathBuf, resume: Option<Offset>) -> std::io::Result<Follower> {
        let handle = File::open(&path)?;
        let meta = handle.metadata()?;
        let fingerprint = fingerprint_of_file(&handle)?.unwrap_or(0);
        let start = Offset {
            dev: meta.dev(),
            ino: meta.ino(),
            offset: 0,
            line: 1,
            fingerprint,
            skipping: false,
        };
        let at = match resume {
            Some(r)
                if meta.len() >= r.offset
                    && describes(&r, (meta.dev(), meta.ino()), fingerprint) =>
            {
                Offset {
                    dev: meta.dev(),
                    ino: meta.ino(),
                    fingerprint,
                    ..r
                }
            }
            _ => start,
        };
        Ok(Follower {
            path,
            at,
            handle,
            buf: Vec::new(),
        })
    }

    /// The file's identity.
    pub fn id(&self) -> (u64, u64) {
        (self.at.dev, self.at.ino)
    }

    /// Reads the next chunk (at most 4 MiB) appended since the last call;
    /// call again while it adds chunks. A file truncated in place starts
    /// again from its beginning; the content read until then is returned
    /// as retired (a copy of it continues from there).
    pub fn poll(&mut self, out: &mut Vec<Chunk>) -> std::io::Result<Option<Offset>> {
        let len = self.handle.metadata()?.len();
        let mut retired = None;
        if len < self.at.offset {
            // Truncated in place (copytruncate): start over.
            retired = Some(self.at);
            self.at = Offset {
                dev: self.at.dev,
                ino: self.at.ino,
                line: 1,
                ..Offset::default()
            };
        }
        if self.at.fingerprint == 0 {
            self.at.fingerprint = fingerprint_of_file(&self.handle)?.unwrap_or(0);
        }
        if len > self.at.offset {
            self.read_lines(len, out)?;
        }
        Ok(retired)
    }

    /// Reads what the file holds past the offset (its length was `len`),
    /// at most `MAX_READ` bytes: a small append costs a small read, not a
    /// zeroed 4 MiB buffer.
    fn fill(&mut self, len: u64) -> std::io::Result<()> {
        let want = usize::try_from(len.saturating_sub(self.at.offset))
            .map_or(MAX_READ, |n| n.min(MAX_READ));
        self.buf.clear();
        self.buf.resize(want, 0);
        let mut n = 0;
        while n < want {
            let k = self
                .handle
                .read_at(&mut self.buf[n..], self.at.offset + n as u64)?;
            if k == 0 {
                break;
            }
            n += k;
        }
        self.buf.truncate(n);
        Ok(())
    }

    /// One read: complete lines, or progress through a skipped line or a
    /// run of NULs. Pushes a chunk when anything moved.
    fn read_lines(&mut self, len: u64, out: &mut Vec<Chunk>) -> std::io::Result<()> {
        self.fill(len)?;
        let full = self.buf.len() == MAX_READ;
        let mut chunk = Chunk {
            file: self.path.display().to_string(),
            first_line: self.at.line,
            ..Chunk::default()
        };
        let mut start = 0;
        if self.at.skipping {
            match memchr::memchr(b'\n', &self.buf) {
                Some(i) => {
                    start = i + 1;
                    self.at.skipping = false;
                    self.at.line += 1;
                    chunk.first_line = self.at.line;
                }
                None => {
                    self.at.offset += self.buf.len() as u64;
                    out.push(chunk);
                    return Ok(());
                }
            }
        }
        let rest = &self.buf[start..];
        match memchr::memrchr(b'\n', rest) {
            Some(e) => {
                let lines = &rest[..=e];
                let nul = memchr::memchr_iter(0, lines).count() as u64;
                chunk.bytes = if nul > 0 {
                    chunk.skipped.push(Skip {
                        kind: SkipKind::Nul,
                        line: self.at.line,
                        bytes: nul,
                    });
                    lines.iter().copied().filter(|b| *b != 0).collect()
                } else {
                    lines.to_vec()
                };
                self.at.line += memchr::memchr_iter(b'\n', lines).count() as u64;
                self.at.offset += (start + e + 1) as u64;
                out.push(chunk);
            }
            None if rest.iter().all(|b| *b == 0) && !rest.is_empty() => {
                // A run of NULs with nothing after it yet: never data.
                chunk.skipped.push(Skip {
                    kind: SkipKind::Nul,
                    line: self.at.line,
                    bytes: rest.len() as u64,
                });
                self.at.offset += (start + rest.len()) as u64;
                out.push(chunk);
            }
            None if full && start == 0 => {
                // No newline in MAX_LINE bytes: skip this line to its end.
                chunk.skipped.push(Skip {
                    kind: SkipKind::TooLong,
                    line: self.at.line,
                    bytes: rest.len() as u64,
                });
                self.at.skipping = true;
                self.at.offset += rest.len() as u64;
                out.push(chunk);
            }
            None => {
                // A partial last line: wait for its newline (after a
                // skipped line, what was skipped is still progress).
                if start > 0 {
                    self.at.offset += start as u64;
                    out.push(chunk);
                }
            }
        }
        Ok(())
    }
}

/// How a file under a watched path is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Follow,
    Static,
    /// A compressed gateway log (a rotated copy): not read; its first
    /// line's fingerprint says whether its content was followed.
    Compressed(Option<u64>),
    /// Empty so far: decided when it has a first line.
    Undecided,
}

/// Looks at the first line: an NDJSON gateway-log row means follow; a
/// gzip file whose first line is one is a compressed log.
pub fn classify(path: &Path) -> FileKind {
    let mut head = Vec::new();
    let read = File::open(path).and_then(|f| f.take(64 << 10).read_to_end(&mut head));
    if read.is_err() || head.is_empty() {
        return FileKind::Undecided;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        // At most 64 KiB of output, whatever the file claims.
        let mut plain = Vec::new();
        let _ = File::open(path).map(|f| {
            flate2::read::MultiGzDecoder::new(f)
                .take(64 << 10)
                .read_to_end(&mut plain)
        });
        let first = memchr::memchr(b'\n', &plain).map_or(&plain[..], |i| &plain[..i]);
        return if crate::collect::gateway_logs::is_log_line(first) {
            FileKind::Compressed(fingerprint_of_head(&plain))
        } else {
            FileKind::Static
        };
    }
    let Some(end) = memchr::memchr(b'\n', &head) else {
        // One incomplete line: wait unless it cannot be a log row.
        return if head.first() == Some(&b'{') {
            FileKind::Undecided
        } else {
            FileKind::Static
        };
    };
    let first = head.get(..end).unwrap_or_default();
    if crate::collect::gateway_logs::is_log_line(first) {
        FileKind::Follow
    } else {
        FileKind::Static
    }
}

/// Every file under the paths (folders recursively, hidden entries skipped), sorted.
pub fn files_under(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out, 0);
    }
    out.sort();
    out.dedup();
    out
}

fn walk(p: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    if depth > 16 {
        return;
    }
    if p.is_dir() {
        let Ok(rd) = std::fs::read_dir(p) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden {
                walk(&path, out, depth + 1);
            }
        }
    } else if p.is_file() {
        out.push(p.to_path_buf());
    }
}

/// Size and mtime: a static file is re-read when these change.
pub fn stamp(path: &Path) -> Option<(u64, i64, i64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec()))
}

/// What a scan of the watched paths noticed, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Note {
    /// A gateway log is followed from `offset` (0: its beginning).
    Following { path: PathBuf, offset: u64 },
    /// A followed file was found under another name (rotated by rename).
    Renamed { from: PathBuf, to: PathBuf },
    /// A compressed gateway log is not read; `followed` when its content
    /// is a file that was followed (a rotated copy, already read).
    Compressed { path: PathBuf, followed: bool },
    /// A followed file left the watched paths after being read to its end.
    Gone { path: PathBuf },
    /// A file could not be opened or read.
    Error { path: PathBuf, error: String },
}

/// The files under the watched paths and how each is read: followers by
/// identity, static files by stamp, compressed logs noted once.
#[derive(Debug, Default)]
pub struct Tailer {
    pub followers: Vec<Follower>,
    /// Checkpoints loaded at start, and content retired since.
    pub saved: Checkpoints,
    statics: BTreeMap<PathBuf, Option<(u64, i64, i64)>>,
    compressed: BTreeMap<PathBuf, Option<(u64, i64, i64)>>,
    /// Never read as a source (the daemon's own config file).
    exclude: Option<PathBuf>,
}

impl Tailer {
    pub fn new(saved: Checkpoints, exclude: Option<PathBuf>) -> Tailer {
        Tailer {
            saved,
            exclude,
            ..Tailer::default()
        }
    }

    /// Static files known now.
    pub fn statics(&self) -> Vec<PathBuf> {
        self.statics.keys().cloned().collect()
    }

    /// Looks at the files under `paths`: new logs are followed (resuming
    /// from a checkpoint when `resume`), renamed ones recognised, static
    /// files stamped. True in `.0` when the set of static files or one of
    /// them changed.
    pub fn scan(&mut self, paths: &[PathBuf], resume: bool) -> (bool, Vec<Note>) {
        let mut notes = Vec::new();
        let mut changed = false;
        let mut present = Vec::new();
        for path in files_under(paths) {
            if Some(path.as_path()) == self.exclude.as_deref() {
                continue;
            }
            let Some(id) = identity(&path) else {
                continue;
            };
            present.push(id);
            if let Some(f) = self.followers.iter_mut().find(|f| f.id() == id) {
                if f.path != path && identity(&f.path) != Some(id) {
                    notes.push(Note::Renamed {
                        from: std::mem::replace(&mut f.path, path),
                        to: f.path.clone(),
                    });
                }
                continue;
            }
            if let Some(old) = self.statics.get(&path) {
                let now = stamp(&path);
                if *old != now {
                    self.statics.insert(path, now);
                    changed = true;
                }
                continue;
            }
            if let Some(old) = self.compressed.get(&path)
                && *old == stamp(&path)
            {
                continue;
            }
            match classify(&path) {
                FileKind::Follow => {
                    let fingerprint = File::open(&path)
                        .and_then(|f| fingerprint_of_file(&f))
                        .ok()
                        .flatten()
                        .unwrap_or(0);
                    let from = if resume {
                        self.resume_point(id, fingerprint)
                    } else {
                        self.live_copy(fingerprint, id)
                    };
                    match Follower::open(path.clone(), from) {
                        Ok(f) => {
                            notes.push(Note::Following {
                                path,
                                offset: f.at.offset,
                            });
                            self.followers.push(f);
                        }
                        Err(e) => notes.push(Note::Error {
                            path,
                            error: e.to_string(),
                        }),
                    }
                }
                FileKind::Compressed(fp) => {
                    let followed = fp.is_some_and(|fp| {
                        self.followers.iter().any(|f| f.at.fingerprint == fp)
                            || self.saved.find((0, 0), fp).is_some()
                    });
                    self.compressed.insert(path.clone(), stamp(&path));
                    notes.push(Note::Compressed { path, followed });
                }
                FileKind::Static => {
                    self.statics.insert(path.clone(), stamp(&path));
                    changed = true;
                }
                FileKind::Undecided => {}
            }
        }
        // Files that disappeared stop counting as configuration.
        let before = self.statics.len();
        self.statics.retain(|p, _| p.exists());
        changed |= self.statics.len() != before;
        self.compressed.retain(|p, _| p.exists());
        // A followed file no longer under the paths is dropped once read
        // to its end; its content is remembered for copies of it.
        let mut kept = Vec::with_capacity(self.followers.len());
        for f in std::mem::take(&mut self.followers) {
            let gone = !present.contains(&f.id());
            let drained = f
                .handle
                .metadata()
                .map(|m| m.len() <= f.at.offset)
                .unwrap_or(true);
            if gone && drained {
                self.saved.retire(f.at);
                notes.push(Note::Gone { path: f.path });
            } else {
                kept.push(f);
            }
        }
        self.followers = kept;
        (changed, notes)
    }

    /// The checkpoint for a file, or the offset of a followed file it is a
    /// copy of (copytruncate, or a rename to another filesystem).
    fn resume_point(&self, id: (u64, u64), fingerprint: u64) -> Option<Offset> {
        self.live_copy(fingerprint, id)
            .or_else(|| self.saved.find(id, fingerprint))
    }

    /// A followed file with this content under another identity.
    fn live_copy(&self, fingerprint: u64, id: (u64, u64)) -> Option<Offset> {
        if fingerprint == 0 {
            return None;
        }
        self.followers
            .iter()
            .filter(|f| f.at.fingerprint == fingerprint && f.id() != id)
            .map(|f| f.at)
            .max_by_key(|o| o.offset)
            .or_else(|| {
                self.saved
                    .retired
                    .iter()
                    .find(|o| o.fingerprint == fingerprint)
                    .copied()
            })
    }

    /// One read of every followed file. Errors are per file; the others
    /// are still read.
    pub fn poll(&mut self, out: &mut Vec<Chunk>) -> Vec<Note> {
        let mut notes = Vec::new();
        for f in &mut self.followers {
            match f.poll(out) {
                Ok(Some(retired)) => self.saved.retire(retired),
                Ok(None) => {}
                Err(e) => notes.push(Note::Error {
                    path: f.path.clone(),
                    error: e.to_string(),
                }),
            }
        }
        notes
    }

    /// The checkpoints to save now.
    pub fn checkpoints(&self) -> Checkpoints {
        Checkpoints {
            files: self
                .followers
                .iter()
                .map(|f| (f.path.clone(), f.at))
                .collect(),
            retired: self.saved.retired.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn texts(chunks: &[Chunk]) -> Vec<(String, u64)> {
        chunks
            .iter()
            .filter(|c| !c.bytes.is_empty())
            .map(|c| (String::from_utf8_lossy(&c.bytes).into_owned(), c.first_line))
            .collect()
    }

    /// Polls until nothing moves; all chunks.
    fn drain(t: &mut Tailer) -> Vec<Chunk> {
        let mut all = Vec::new();
        loop {
            let mut out = Vec::new();
            assert!(t.poll(&mut out).is_empty());
            if out.is_empty() {
                return all;
            }
            all.extend(out);
        }
    }

    fn rows(chunks: &[Chunk]) -> Vec<String> {
        chunks
            .iter()
            .flat_map(|c| {
                String::from_utf8_lossy(&c.bytes)
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn row(i: usize) -> String {
        format!(
            "{{\"TimeGenerated\":\"2026-01-01T00:00:{:02}Z\",\"ResponseCode\":200,\"ApiId\":\"a\",\"CorrelationId\":\"{i}\"}}\n",
            i % 60
        )
    }

    #[test]
    fn follows_appends_waits_for_newlines_and_handles_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "one\ntwo\nthr");
        let mut f = Follower::open(p.clone(), None).unwrap();
        let mut out = Vec::new();
        f.poll(&mut out).unwrap();
        assert_eq!(texts(&out), vec![("one\ntwo\n".to_string(), 1)]);
        out.clear();
        append(&p, "ee\n");
        f.poll(&mut out).unwrap();
        assert_eq!(texts(&out), vec![("three\n".to_string(), 3)]);
        out.clear();
        std::fs::write(&p, "x\n").unwrap();
        let retired = f.poll(&mut out).unwrap();
        assert_eq!(texts(&out), vec![("x\n".to_string(), 1)]);
        assert_eq!(
            retired.map(|r| r.offset),
            Some(14),
            "the content read before the cut"
        );
    }

    #[test]
    fn a_line_of_4_mib_or_more_is_skipped_in_bounded_memory_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "before\n");
        append(&p, &"x".repeat(MAX_LINE * 2 + 123));
        let mut t = Tailer::default();
        t.followers.push(Follower::open(p.clone(), None).unwrap());
        let got = drain(&mut t);
        assert_eq!(rows(&got), vec!["before"]);
        assert!(t.followers[0].at.skipping, "waits inside the long line");
        append(&p, "tail of the long line\nafter\n");
        let got = drain(&mut t);
        assert_eq!(rows(&got), vec!["after"]);
        assert_eq!(
            got.iter()
                .find(|c| !c.bytes.is_empty())
                .map(|c| c.first_line),
            Some(3)
        );
        let skips: Vec<Skip> = got.iter().flat_map(|c| c.skipped.clone()).collect();
        assert!(skips.is_empty(), "the skip was reported when it began");
        assert!(t.followers[0].buf.capacity() <= MAX_READ, "bounded memory");
        assert!(!t.followers[0].at.skipping);
    }

    #[test]
    fn a_block_of_nul_bytes_from_a_crash_is_skipped_counted_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "one\n");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(&vec![0u8; MAX_READ + 10])
            .unwrap();
        let mut t = Tailer::default();
        t.followers.push(Follower::open(p.clone(), None).unwrap());
        let got = drain(&mut t);
        assert_eq!(rows(&got), vec!["one"]);
        append(&p, "two\nthree\n");
        let more = drain(&mut t);
        assert_eq!(rows(&more), vec!["two", "three"]);
        let nul: u64 = got
            .iter()
            .chain(more.iter())
            .flat_map(|c| c.skipped.iter())
            .filter(|s| s.kind == SkipKind::Nul)
            .map(|s| s.bytes)
            .sum();
        assert_eq!(nul, MAX_READ as u64 + 10);
    }

    /// Writes `n` rows, rotating the way `how` says after every `every`.
    fn rotate_run(how: &str) -> (usize, usize) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gw.ndjson");
        let mut t = Tailer::default();
        let paths = [dir.path().to_path_buf()];
        let mut read = 0;
        let mut written = 0;
        for round in 0..3 {
            for _ in 0..500 {
                append(&p, &row(written));
                written += 1;
                if written % 97 == 0 {
                    t.scan(&paths, true);
                    read += rows(&drain(&mut t)).len();
                }
            }
            let rotated = dir.path().join(format!("gw.ndjson.{round}"));
            match how {
                "rename" => std::fs::rename(&p, &rotated).unwrap(),
                "copytruncate" => {
                    std::fs::copy(&p, &rotated).unwrap();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&p)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                _ => unreachable!(),
            }
            // Late rows to the old file through a writer still holding it.
            t.scan(&paths, true);
            read += rows(&drain(&mut t)).len();
        }
        append(&p, &row(written));
        written += 1;
        t.scan(&paths, true);
        read += rows(&drain(&mut t)).len();
        t.scan(&paths, true);
        read += rows(&drain(&mut t)).len();
        (written, read)
    }

    #[test]
    fn rename_and_create_rotation_reads_every_row_once() {
        let (written, read) = rotate_run("rename");
        assert_eq!(read, written);
    }

    #[test]
    fn copytruncate_rotation_reads_every_row_once() {
        let (written, read) = rotate_run("copytruncate");
        assert_eq!(read, written);
    }

    #[test]
    fn a_renamed_file_is_finished_through_its_handle_and_the_new_one_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, &row(0));
        let paths = [dir.path().to_path_buf()];
        let mut t = Tailer::default();
        t.scan(&paths, true);
        assert_eq!(rows(&drain(&mut t)).len(), 1);
        let mut old = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::fs::rename(&p, dir.path().join("a.log.1")).unwrap();
        old.write_all(row(1).as_bytes()).unwrap();
        append(&p, &row(2));
        let (_, notes) = t.scan(&paths, true);
        assert!(
            notes.iter().any(|n| matches!(n, Note::Renamed { .. })),
            "{notes:?}"
        );
        let got = rows(&drain(&mut t));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.iter().any(|l| l.contains("\"CorrelationId\":\"1\"")));
        assert!(got.iter().any(|l| l.contains("\"CorrelationId\":\"2\"")));
        // Removed once read: dropped, and its content remembered.
        std::fs::remove_file(dir.path().join("a.log.1")).unwrap();
        let (_, notes) = t.scan(&paths, true);
        assert!(
            notes.iter().any(|n| matches!(n, Note::Gone { .. })),
            "{notes:?}"
        );
        assert_eq!(t.followers.len(), 1);
        assert_eq!(t.saved.retired.len(), 1);
    }

    #[test]
    fn a_gzipped_rotated_copy_is_noted_once_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, &row(0));
        let paths = [dir.path().to_path_buf()];
        let mut t = Tailer::default();
        t.scan(&paths, true);
        drain(&mut t);
        let gz = dir.path().join("a.log.1.gz");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(row(0).as_bytes()).unwrap();
        enc.finish().unwrap();
        let (_, notes) = t.scan(&paths, true);
        assert_eq!(
            notes,
            vec![Note::Compressed {
                path: gz.clone(),
                followed: true
            }]
        );
        for _ in 0..3 {
            let (changed, notes) = t.scan(&paths, true);
            assert!(notes.is_empty() && !changed, "said once: {notes:?}");
        }
        assert!(t.statics().is_empty(), "not read as configuration");
    }

    #[test]
    fn resumes_from_a_checkpoint_of_the_same_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, &row(0));
        append(&p, &row(1));
        let paths = [dir.path().to_path_buf()];
        let mut t = Tailer::default();
        t.scan(&paths, true);
        drain(&mut t);
        t.checkpoints().save(state.path()).unwrap();
        append(&p, &row(2));
        let mut g = Tailer::new(Checkpoints::load(state.path()), None);
        g.scan(&paths, true);
        let got = drain(&mut g);
        assert_eq!(texts(&got), vec![(row(2), 3)]);
        // Another file at the same path (even on a reused inode): from the start.
        std::fs::remove_file(&p).unwrap();
        append(&p, &row(7));
        append(&p, &row(8));
        append(&p, &row(9));
        let mut h = Tailer::new(Checkpoints::load(state.path()), None);
        h.scan(&paths, true);
        assert_eq!(rows(&drain(&mut h)).len(), 3);
    }

    #[test]
    fn classifies_by_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.ndjson");
        append(&log, &row(0));
        let cfg = dir.path().join("service.json");
        append(&cfg, "{\n \"name\": \"x\"\n}\n");
        let empty = dir.path().join("empty.ndjson");
        append(&empty, "");
        assert_eq!(classify(&log), FileKind::Follow);
        assert_eq!(classify(&cfg), FileKind::Static);
        assert_eq!(classify(&empty), FileKind::Undecided);
        let all = files_under(&[dir.path().to_path_buf()]);
        assert_eq!(all.len(), 3);
    }
}
