//! Sources: the files under the watched paths, followed as they grow.
//!
//! A file whose first line is an NDJSON gateway-log row is *followed*:
//! complete lines appended since the last poll are read (a partial last
//! line waits for its newline), a truncated file is read again from the
//! start, and a rotated one (same path, new inode) is finished through the
//! old handle before the new file is opened. Any other file is *static*
//! (configuration, metrics, activity log, policies): it is parsed whole by
//! `collect::parse_document` when its size or mtime changes. Offsets are
//! checkpointed in the state directory. Blocking file I/O, small and local.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Most bytes read from one file in one poll (the rest waits a poll).
const MAX_READ: usize = 4 << 20;

/// Where reading a followed file got to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    pub dev: u64,
    pub ino: u64,
    /// Bytes consumed (always just after a newline).
    pub offset: u64,
    /// 1-based number of the next line.
    pub line: u64,
}

/// Offsets of every followed file, saved in `offsets.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoints {
    pub files: BTreeMap<PathBuf, Offset>,
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
}

/// Writes a file so that a crash leaves either the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Complete lines read from a followed file.
#[derive(Debug)]
pub struct Chunk {
    pub file: String,
    pub bytes: Vec<u8>,
    pub first_line: u64,
}

/// A followed file.
#[derive(Debug)]
pub struct Follower {
    pub path: PathBuf,
    pub at: Offset,
    handle: Option<File>,
}

impl Follower {
    /// Starts following; resumes at `resume` when it is the same file and
    /// not shorter, else from the start.
    pub fn new(path: PathBuf, resume: Option<Offset>) -> Follower {
        Follower {
            path,
            at: resume.unwrap_or(Offset {
                line: 1,
                ..Offset::default()
            }),
            handle: None,
        }
    }

    fn open(&mut self) -> std::io::Result<()> {
        let f = File::open(&self.path)?;
        let meta = f.metadata()?;
        let same = meta.dev() == self.at.dev && meta.ino() == self.at.ino;
        if !same || meta.len() < self.at.offset {
            self.at = Offset {
                dev: meta.dev(),
                ino: meta.ino(),
                offset: 0,
                line: 1,
            };
        }
        self.handle = Some(f);
        Ok(())
    }

    /// Reads the next chunk (at most 4 MiB of complete lines) appended
    /// since the last call; call again until it adds nothing. Handles
    /// truncation and rotation. A missing file is not an error (it may be
    /// mid-rotation).
    pub fn poll(&mut self, out: &mut Vec<Chunk>) -> std::io::Result<()> {
        if self.handle.is_none() {
            match self.open() {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        loop {
            let Some(h) = self.handle.as_mut() else {
                return Ok(());
            };
            let len = h.metadata()?.len();
            if len < self.at.offset {
                // Truncated in place (copytruncate): start over.
                self.at.offset = 0;
                self.at.line = 1;
            }
            if read_lines(h, &mut self.at, &self.path, out)? {
                // One chunk per call: the caller polls again while data comes.
                return Ok(());
            }
            // Rotated: the path now names another file. The old one has
            // been read to its end; switch to the new one.
            let rotated = match std::fs::metadata(&self.path) {
                Ok(m) => m.ino() != self.at.ino || m.dev() != self.at.dev,
                Err(_) => false,
            };
            if !rotated {
                return Ok(());
            }
            self.handle = None;
            self.at = Offset {
                line: 1,
                ..Offset::default()
            };
            match self.open() {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads complete lines from `at.offset`; true when any were read.
fn read_lines(
    h: &mut File,
    at: &mut Offset,
    path: &Path,
    out: &mut Vec<Chunk>,
) -> std::io::Result<bool> {
    h.seek(SeekFrom::Start(at.offset))?;
    let mut buf = Vec::new();
    h.take(MAX_READ as u64).read_to_end(&mut buf)?;
    let Some(end) = memchr::memrchr(b'\n', &buf).map(|p| p + 1) else {
        return Ok(false);
    };
    buf.truncate(end);
    let lines = memchr::memchr_iter(b'\n', &buf).count() as u64;
    out.push(Chunk {
        file: path.display().to_string(),
        bytes: buf,
        first_line: at.line,
    });
    at.offset += end as u64;
    at.line += lines;
    Ok(true)
}

/// How a file under a watched path is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Follow,
    Static,
    /// Empty so far: decided when it has a first line.
    Undecided,
}

/// Looks at the first line: an NDJSON gateway-log row means follow.
pub fn classify(path: &Path) -> FileKind {
    let mut head = Vec::new();
    let read = File::open(path).and_then(|f| f.take(64 << 10).read_to_end(&mut head));
    if read.is_err() || head.is_empty() {
        return FileKind::Undecided;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return FileKind::Static;
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
            .map(|c| (String::from_utf8_lossy(&c.bytes).into_owned(), c.first_line))
            .collect()
    }

    #[test]
    fn follows_appends_waits_for_newlines_and_handles_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "one\ntwo\nthr");
        let mut f = Follower::new(p.clone(), None);
        let mut out = Vec::new();
        f.poll(&mut out).unwrap();
        assert_eq!(texts(&out), vec![("one\ntwo\n".to_string(), 1)]);
        out.clear();
        append(&p, "ee\n");
        f.poll(&mut out).unwrap();
        assert_eq!(texts(&out), vec![("three\n".to_string(), 3)]);
        out.clear();
        std::fs::write(&p, "x\n").unwrap();
        f.poll(&mut out).unwrap();
        assert_eq!(texts(&out), vec![("x\n".to_string(), 1)]);
    }

    #[test]
    fn rotation_finishes_the_old_file_then_opens_the_new() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "1\n");
        let mut f = Follower::new(p.clone(), None);
        let mut out = Vec::new();
        f.poll(&mut out).unwrap();
        append(&p, "2\n");
        std::fs::rename(&p, dir.path().join("a.log.1")).unwrap();
        append(&p, "new\n");
        out.clear();
        f.poll(&mut out).unwrap();
        f.poll(&mut out).unwrap();
        f.poll(&mut out).unwrap();
        assert_eq!(
            texts(&out),
            vec![("2\n".to_string(), 2), ("new\n".to_string(), 1)]
        );
    }

    #[test]
    fn resumes_from_a_checkpoint_of_the_same_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        append(&p, "1\n2\n");
        let mut f = Follower::new(p.clone(), None);
        let mut out = Vec::new();
        f.poll(&mut out).unwrap();
        let mut cp = Checkpoints::default();
        cp.files.insert(p.clone(), f.at);
        cp.save(dir.path()).unwrap();
        append(&p, "3\n");
        let back = Checkpoints::load(dir.path());
        let mut g = Follower::new(p.clone(), back.files.get(&p).copied());
        out.clear();
        g.poll(&mut out).unwrap();
        assert_eq!(texts(&out), vec![("3\n".to_string(), 3)]);
        // Another file at the same path: from the start.
        std::fs::remove_file(&p).unwrap();
        append(&p, "other\n");
        let mut h = Follower::new(p.clone(), back.files.get(&p).copied());
        out.clear();
        h.poll(&mut out).unwrap();
        assert_eq!(texts(&out), vec![("other\n".to_string(), 1)]);
    }

    #[test]
    fn classifies_by_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.ndjson");
        append(
            &log,
            "{\"TimeGenerated\":\"2026-01-01T00:00:00Z\",\"ResponseCode\":200,\"ApiId\":\"a\"}\n",
        );
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
