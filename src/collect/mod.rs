//! Reading inputs (the I/O edge): files and folders given on the command
//! line, recognised by content, not name. `collect` walks and opens files,
//! decompresses gzip and streams large gateway logs; `parse_document` is the
//! pure dispatcher over one document's bytes. A file or record that cannot
//! be used becomes a located `Problem`; everything else still loads.
//!
//! Recognised (BOM, UTF-16 with BOM, gzip and trailing commas tolerated):
//! gateway logs (NDJSON, CSV, `az` JSON rows, Log Analytics and Data
//! Explorer query answers, storage/Event Hub `records`), Azure Monitor
//! metrics (REST answers and the diagnostic-settings export), activity logs
//! (REST, `az`, storage/Event Hub forms), Azure resources (REST, `az`, ARM
//! templates, REST spec examples, apiops artifacts and API specifications),
//! fake-server exchange files (`{request, response}`), and policy XML files.
//! Error answers, access tokens and anything else are reported, not loaded.
//! `series` reads the `timestamp,value` CSV that `apimedic detect` scores.

pub mod activity;
pub mod arm;
pub mod gateway_logs;
pub mod history;
pub mod input;
pub mod json;
pub mod kql;
pub mod metrics;
pub mod openapi;
pub mod policy_files;
pub mod rows;
pub mod series;

#[cfg(test)]
mod corpus_tests;

use crate::model::{InputKind, Origin, Problem, Snapshot};
use anyhow::Context;
use arm::Doc;
use json::{get, key_list, obj, str_at};
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Bytes sniffed before deciding how to read a file.
const SNIFF_BYTES: usize = 64 * 1024;

/// Reads every file given and every file under each folder (recursively,
/// sorted, skipping hidden files and folders such as `.git`). Fails only
/// when a given path does not exist or cannot be read at all; anything
/// wrong inside is reported in `loaded.problems`.
pub fn collect(paths: &[PathBuf]) -> anyhow::Result<Snapshot> {
    let mut files = Vec::new();
    let mut walk_problems = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}: check the path exists", path.display()))?;
        if meta.is_dir() {
            std::fs::read_dir(path).with_context(|| {
                format!(
                    "cannot list folder {}: check its permissions",
                    path.display()
                )
            })?;
            walk(path, &mut files, &mut walk_problems);
        } else {
            // Not a FIFO: opening one only to check it could take its
            // writer's data with it when closed.
            if !std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) {
                input::open(path).with_context(|| {
                    format!("cannot open {}: check its permissions", path.display())
                })?;
            }
            files.push(path.clone());
        }
    }
    // A file named twice (a folder and a file in it) is read once.
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    // Dated copies under a history folder are earlier versions, not the
    // current configuration.
    let (copies, files): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|f| history::dated_copy(&f.display().to_string()).is_some());
    let parts: Vec<Snapshot> = files.par_iter().map(|f| read_path(f)).collect();
    let mut snap = Snapshot::default();
    for p in walk_problems {
        snap.loaded.reject(p);
    }
    for part in parts {
        snap.merge(part);
    }
    let mut texts = Vec::new();
    for c in &copies {
        let name = c.display().to_string();
        match std::fs::read(c) {
            Ok(bytes) => texts.push((name, String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) => snap.loaded.reject(Problem {
                origin: Origin::file(name),
                message: format!("cannot read history copy: {e}"),
            }),
        }
    }
    snap.loaded.files += copies.len() as u64;
    let (dated, problems) = history::from_dated_copies(&texts);
    let (logged, git_problems) = history::from_paths(paths);
    for p in problems.into_iter().chain(git_problems) {
        snap.loaded.reject(p);
    }
    crate::model::merge_histories(&mut snap.history, dated);
    crate::model::merge_histories(&mut snap.history, logged);
    finalize(&mut snap);
    history::add_changes(&mut snap);
    Ok(snap)
}

/// The same as `collect` over in-memory files (relative path, bytes): the
/// embedded demo and tests use it. Gzip content is decompressed.
pub fn collect_files(files: &[(String, Vec<u8>)]) -> Snapshot {
    let parts: Vec<Snapshot> = files
        .par_iter()
        .map(|(name, bytes)| {
            let mut s = parse_document(name, bytes);
            s.loaded.files += 1;
            s
        })
        .collect();
    let mut snap = Snapshot::default();
    for part in parts {
        snap.merge(part);
    }
    finalize(&mut snap);
    snap
}

/// `collect_files` for an export that has a history folder: dated copies
/// become versions (and changes with diffs) instead of current config.
pub fn collect_files_with_history(files: &[(String, Vec<u8>)]) -> Snapshot {
    let (copies, current): (Vec<_>, Vec<_>) = files
        .iter()
        .cloned()
        .partition(|(name, _)| history::dated_copy(name).is_some());
    let mut snap = collect_files(&current);
    let texts: Vec<(String, String)> = copies
        .into_iter()
        .map(|(n, b)| (n, String::from_utf8_lossy(&b).into_owned()))
        .collect();
    let (dated, problems) = history::from_dated_copies(&texts);
    for p in problems {
        snap.loaded.reject(p);
    }
    crate::model::merge_histories(&mut snap.history, dated);
    history::add_changes(&mut snap);
    snap
}

/// One document's bytes (gzip is decompressed if still compressed) → what it
/// holds. Pure; does not count the file in `loaded.files`.
pub fn parse_document(file: &str, bytes: &[u8]) -> Snapshot {
    let mut snap = Snapshot::default();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        // The same guards as a file read: the ratio cap, the document cap,
        // and a cut-short stream used up to the cut.
        let (counted, compressed) = input::Counted::new(bytes);
        let decoder = flate2::read::MultiGzDecoder::new(counted);
        let (mut g, seen) = input::Guard::new(decoder, Some(compressed));
        match input::read_document(&mut g, Vec::new()) {
            Ok(out) => parse_plain(file, &out, &mut snap),
            Err(size) => problem(&mut snap, file, None, too_big(size)),
        }
        report_cut(&mut snap, file, true, &seen);
    } else {
        parse_plain(file, bytes, &mut snap);
    }
    snap
}

// ---------------------------------------------------------------------------
// Files and folders

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Files under `dir`, depth first in name order, hidden entries skipped.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let mut visited = std::collections::HashSet::new();
    walk_inner(dir, files, problems, &mut visited);
}

fn walk_inner(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
    visited: &mut std::collections::HashSet<PathBuf>,
) {
    // A symlink back up the tree would otherwise recurse forever.
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !visited.insert(real) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                origin: Origin::file(dir.display().to_string()),
                message: format!("cannot list folder: {e}"),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if is_hidden(&p) {
            continue;
        }
        if p.is_dir() {
            walk_inner(&p, files, problems, visited);
        } else if p.is_file() {
            files.push(p);
        } else if p.exists() {
            // A FIFO, socket or device inside a folder could block or never
            // end: named, not read (given directly, it is read with a deadline).
            problems.push(Problem {
                origin: Origin::file(p.display().to_string()),
                message: "not a regular file (a FIFO, socket or device): skipped inside a folder; give it directly to read it".into(),
            });
        }
    }
}

/// Reads up to `limit` bytes (fewer only at end of input).
fn read_head(r: &mut dyn Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(limit.min(1 << 16));
    r.take(limit as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Opens, decompresses and reads one file. Gateway logs are streamed into
/// the log reader after sniffing the first 64 KB; anything else is read
/// whole and parsed by `parse_document`.
fn read_path(path: &Path) -> Snapshot {
    let file = path.display().to_string();
    let mut snap = match read_path_inner(path, &file) {
        Ok(s) => s,
        Err(e) => {
            let mut s = Snapshot::default();
            problem(&mut s, &file, None, format!("cannot read the file: {e}"));
            s
        }
    };
    snap.loaded.files += 1;
    snap
}

fn read_path_inner(path: &Path, file: &str) -> io::Result<Snapshot> {
    // Never blocks in open (a FIFO with no writer would, forever).
    let raw = input::open(path)?;
    let is_stream = input::is_stream(&raw)?;
    // The same open file, for mapping later (not the path again: it may
    // name another file by then).
    let handle = raw.try_clone()?;
    let mut plain: Box<dyn Read + Send> = if is_stream {
        Box::new(input::Pipe::new(raw, input::pipe_timeout()))
    } else {
        Box::new(raw)
    };
    // Peeked, not sought back: a pipe cannot seek.
    let magic = read_head(&mut plain, 2)?;
    let gz = magic == [0x1f, 0x8b];
    let chained = io::Cursor::new(magic).chain(plain);
    // Every read below goes through a guard: a read error or a cut-short
    // gzip ends the input cleanly and is reported after the parse, with
    // how much was read.
    let (mut reader, seen): (Box<dyn Read + Send>, input::Seen) = if gz {
        let (counted, compressed) = input::Counted::new(chained);
        let decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(counted));
        let (g, seen) = input::Guard::new(decoder, Some(compressed));
        (Box::new(g), seen)
    } else {
        let (g, seen) = input::Guard::new(io::BufReader::with_capacity(1 << 20, chained), None);
        (Box::new(g), seen)
    };
    let mut snap = Snapshot::default();
    read_framed(file, &handle, gz, is_stream, &mut reader, &mut snap)?;
    report_cut(&mut snap, file, gz, &seen);
    Ok(snap)
}

/// Reads one opened input: the first 64 KB decide how (refused from the
/// prefix alone, streamed as logs, mapped, or read whole up to
/// `input::MAX_DOCUMENT`).
fn read_framed(
    file: &str,
    handle: &std::fs::File,
    gz: bool,
    is_stream: bool,
    reader: &mut Box<dyn Read + Send>,
    snap: &mut Snapshot,
) -> io::Result<()> {
    let head = read_head(reader, SNIFF_BYTES)?;
    if let Some(why) = input::refuse(strip_bom(&head)) {
        problem(snap, file, None, why);
        return Ok(());
    }
    let body = strip_bom(&head);
    // Large logs stream into the log reader; everything else is read whole.
    let shape = if head.len() == SNIFF_BYTES {
        sniff_logs(body)
    } else {
        LogShape::None
    };
    if shape == LogShape::None
        && !gz
        && !is_stream
        && logs::is_row_array(body)
        && let Some(map) = map_big_file(handle)
    {
        logs::parse_row_array(file, &map, &mut snap.traffic, &mut snap.loaded);
        return Ok(());
    }
    if shape == LogShape::None {
        match input::read_document(reader, head) {
            Ok(all) => parse_plain(file, &all, snap),
            Err(size) => problem(snap, file, None, too_big(size)),
        }
        return Ok(());
    }
    let Snapshot {
        traffic, loaded, ..
    } = snap;
    if !gz && let Some(map) = map_big_file(handle) {
        let format = match shape {
            LogShape::Ndjson => logs::LineFormat::Ndjson,
            LogShape::Nginx => logs::LineFormat::Nginx,
            LogShape::Csv | LogShape::None => logs::LineFormat::Csv,
        };
        logs::parse_map(format, file, &map, traffic, loaded);
        return Ok(());
    }
    let stream = io::Cursor::new(body.to_vec()).chain(reader);
    let result = match shape {
        LogShape::Ndjson => logs::read_ndjson(file, stream, traffic, loaded),
        LogShape::Nginx => logs::read_nginx(file, stream, traffic, loaded),
        LogShape::Csv | LogShape::None => logs::read_csv(file, stream, traffic, loaded),
    };
    if let Err(e) = result {
        problem(
            snap,
            file,
            None,
            format!("read error: {e}; the rows read before it are used"),
        );
    }
    Ok(())
}

/// A document too big to read whole.
fn too_big(size: u64) -> String {
    format!(
        "more than {} MiB ({size} bytes read) of a document that is not a gateway log stream: \
         only JSON Lines, CSV and nginx logs stream, anything else is read whole up to that size \
         (export big logs as JSON Lines; a big `az` JSON array of rows is read row by row when not compressed)",
        input::MAX_DOCUMENT >> 20
    )
}

/// Reports how an input that ended early ended, and what of it was used.
fn report_cut(snap: &mut Snapshot, file: &str, gz: bool, seen: &input::Seen) {
    let Some(cut) = seen.cut() else {
        return;
    };
    let read = seen.bytes();
    let rows = snap.traffic.rows;
    let kept = if rows > 0 {
        format!(
            "the {rows} complete row{} before the cut {} used",
            if rows == 1 { "" } else { "s" },
            if rows == 1 { "is" } else { "are" }
        )
    } else if snap.loaded.counts.values().any(|n| *n > 0) {
        "what was read before the cut is used".to_string()
    } else {
        "nothing before the cut could be used".to_string()
    };
    let message = match cut {
        input::Cut::Bomb { compressed } => format!(
            "decompression stopped after {read} bytes from {compressed} compressed bytes: more than {}:1, \
             a likely decompression bomb; {kept}",
            input::MAX_RATIO
        ),
        input::Cut::Error(e) if gz => format!(
            "gzip data is corrupt or truncated after {read} decompressed bytes ({e}); {kept}"
        ),
        input::Cut::Error(e) => format!("read stopped after {read} bytes: {e}; {kept}"),
    };
    problem(snap, file, None, message);
}

/// Files at least this big are mapped rather than read, when allowed.
const MAP_FROM_BYTES: u64 = 64 << 20;

/// A big regular file mapped into memory, or `None` to stream it instead
/// (small, not a regular file, `APIMEDIC_MMAP=0`, or the map failed).
/// As with ripgrep's memory maps, a file truncated while it is being read
/// can end the process with SIGBUS; set `APIMEDIC_MMAP=0` to read such
/// files through buffers (the daemon's live follow always does).
fn map_big_file(file: &std::fs::File) -> Option<memmap2::Mmap> {
    if std::env::var_os("APIMEDIC_MMAP").is_some_and(|v| v == "0") {
        return None;
    }
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() < MAP_FROM_BYTES {
        return None;
    }
    // SAFETY: the map is only read. Another process changing the file while
    // it is read can change the bytes seen (they are parsed like any other
    // untrusted input) or, on truncation, raise SIGBUS; see above.
    unsafe { memmap2::Mmap::map(file) }.ok()
}

// ---------------------------------------------------------------------------
// Sniffing

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(b)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LogShape {
    Ndjson,
    /// nginx JSON access log lines (the second gateway).
    Nginx,
    Csv,
    None,
}

/// The first non-blank line and the rest after it.
fn first_line(b: &[u8]) -> (&[u8], &[u8]) {
    let mut rest = b;
    loop {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest[..end].trim_ascii();
        let after = rest.get(end + 1..).unwrap_or(&[]);
        if !line.is_empty() || after.is_empty() {
            return (line, after);
        }
        rest = after;
    }
}

/// Gateway logs as JSON Lines (a first line that is a whole log record) or
/// CSV (a header naming gateway log columns).
fn sniff_logs(b: &[u8]) -> LogShape {
    let (line, rest) = first_line(b);
    if line.first() == Some(&b'{') {
        // A whole first line must be one complete JSON object; a line cut
        // short by the sniff buffer is judged by its keys, unless it opens a
        // wrapper document (`tables`, `value`) that only parses whole.
        let whole = !rest.is_empty() || b.ends_with(b"\n");
        let complete = matches!(serde_json::from_slice::<Value>(line), Ok(Value::Object(_)));
        let wrapper = first_key(line)
            .is_some_and(|k| k.eq_ignore_ascii_case("tables") || k.eq_ignore_ascii_case("value"));
        if (whole && !complete) || (!whole && wrapper) {
            return LogShape::None;
        }
        return if logs::is_log_line(line) {
            LogShape::Ndjson
        } else if logs::is_nginx_line(line) {
            LogShape::Nginx
        } else {
            LogShape::None
        };
    }
    if line.contains(&b',') && logs::is_csv_header(line) {
        return LogShape::Csv;
    }
    LogShape::None
}

/// The first key of a JSON object text (`{"tables": …` → `tables`).
fn first_key(line: &[u8]) -> Option<&str> {
    let rest = line.strip_prefix(b"{")?.trim_ascii_start();
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// Decodes UTF-16 text to UTF-8: with a BOM (what PowerShell 5 `>` writes)
/// or without one, recognised by its zero bytes (`input::utf16_without_bom`).
fn decode_utf16(b: &[u8]) -> Option<Vec<u8>> {
    let (le, skip) = if b.starts_with(&[0xff, 0xfe]) {
        (true, 2)
    } else if b.starts_with(&[0xfe, 0xff]) {
        (false, 2)
    } else {
        (input::utf16_without_bom(b)?, 0)
    };
    let units: Vec<u16> = b[skip..]
        .chunks_exact(2)
        .map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        })
        .collect();
    Some(String::from_utf16_lossy(&units).into_bytes())
}

fn problem(snap: &mut Snapshot, file: &str, line: Option<u32>, message: String) {
    snap.loaded.reject(Problem {
        origin: Origin {
            file: file.to_string(),
            line,
            record: None,
        },
        message,
    });
}

/// Dispatch over decompressed bytes.
fn parse_plain(file: &str, bytes: &[u8], snap: &mut Snapshot) {
    let decoded;
    let bytes = match decode_utf16(bytes) {
        Some(d) => {
            decoded = d;
            &decoded[..]
        }
        None => bytes,
    };
    let body = strip_bom(bytes);
    if body.trim_ascii().is_empty() {
        problem(snap, file, None, "the file is empty".into());
        return;
    }
    if let Some(why) = input::refuse(body) {
        problem(snap, file, None, why);
        return;
    }
    match sniff_logs(body) {
        LogShape::Ndjson => {
            logs::parse_ndjson(file, body, &mut snap.traffic, &mut snap.loaded);
            return;
        }
        LogShape::Nginx => {
            logs::parse_nginx(file, body, &mut snap.traffic, &mut snap.loaded);
            return;
        }
        LogShape::Csv => {
            logs::parse_csv(file, body, &mut snap.traffic, &mut snap.loaded);
            return;
        }
        LogShape::None => {}
    }
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            let line = memchr::memchr_iter(b'\n', &body[..at]).count() + 1;
            problem(
                snap,
                file,
                u32::try_from(line).ok(),
                format!("not valid UTF-8 (byte {at}): save the file as UTF-8"),
            );
            return;
        }
    };
    let trimmed = text.trim_start();
    match trimmed.as_bytes().first() {
        Some(b'<') => match policy_files::is_policy_xml(file, text) {
            Ok(()) => {
                snap.policies.push(policy_files::policy_doc(file, text));
                snap.loaded.count(InputKind::Policies, 1);
            }
            Err(why) => problem(
                snap,
                file,
                None,
                format!("not a recognised gateway export: {why}"),
            ),
        },
        Some(b'{') | Some(b'[') => parse_json_text(file, text, snap),
        _ if openapi::is_yaml_spec(text) => match serde_yaml_ng::from_str::<Value>(text) {
            Ok(Value::Object(o)) if openapi::is_spec(&o) => {
                openapi::load_spec(&Doc { file, text }, &o, snap)
            }
            Ok(_) => problem(
                snap,
                file,
                None,
                "a YAML API specification without paths".into(),
            ),
            Err(e) => {
                let line = e.location().and_then(|l| u32::try_from(l.line()).ok());
                problem(
                    snap,
                    file,
                    line,
                    format!("invalid YAML API specification: {e}"),
                )
            }
        },
        _ => {
            let (line, _) = first_line(body);
            let shown: String = String::from_utf8_lossy(line).chars().take(60).collect();
            let why = if line.contains(&b',') {
                format!("CSV whose header names no gateway log columns ({shown})")
            } else {
                format!("text starting with {shown:?} is not JSON, CSV, NDJSON or policy XML")
            };
            problem(
                snap,
                file,
                Some(1),
                format!("not a recognised gateway export: {why}"),
            );
        }
    }
}

/// NDJSON (two or more one-line objects) or one JSON document.
fn parse_json_text(file: &str, text: &str, snap: &mut Snapshot) {
    let doc = Doc { file, text };
    let (first, rest) = first_line(text.as_bytes());
    let first_obj = first.first() == Some(&b'{')
        && matches!(serde_json::from_slice::<Value>(first), Ok(Value::Object(_)));
    let (second, _) = first_line(rest);
    let second_obj = second.first() == Some(&b'{')
        && matches!(
            serde_json::from_slice::<Value>(second),
            Ok(Value::Object(_))
        );
    if first_obj && second_obj {
        parse_json_lines(&doc, snap);
        return;
    }
    match json::parse_lenient(text) {
        Ok(l) => {
            if let Some(&first) = l.recovered_commas.first() {
                let lines: Vec<String> = l.recovered_commas.iter().map(u32::to_string).collect();
                let strict = l.strict_error.as_deref().unwrap_or("a syntax error");
                snap.loaded.reject(Problem {
                    origin: Origin::at_line(file, first),
                    message: format!(
                        "recovered: dropped the trailing comma before a closing bracket on line {} (strict JSON readers reject this file: {strict}); the file is loaded",
                        lines.join(", ")
                    ),
                });
            }
            dispatch_value(&doc, &l.value, snap, 0);
        }
        Err(why) => {
            let line = why
                .strip_prefix("invalid JSON at line ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok());
            problem(snap, file, line, why);
        }
    }
}

/// JSON Lines that are not gateway logs (activity log exports): one record
/// per line, a bad line is one problem.
fn parse_json_lines(doc: &Doc, snap: &mut Snapshot) {
    let mut rows = Vec::new();
    let mut metric_records = Vec::new();
    for (i, line) in doc.text.lines().enumerate() {
        let line_no = u32::try_from(i + 1).ok();
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(o)) => {
                if logs::is_log_row(&o) {
                    rows.push(Value::Object(o));
                } else if metrics::is_metric_record(&o) {
                    let origin = Origin {
                        file: doc.file.to_string(),
                        line: line_no,
                        record: None,
                    };
                    metric_records.push((origin, o));
                } else {
                    let mut part = Snapshot::default();
                    if let Some(records) = get(&o, "records").and_then(Value::as_array) {
                        load_records(doc, records, &mut part);
                    } else if !dispatch_item(doc, &o, None, &mut part) {
                        problem(
                            &mut part,
                            doc.file,
                            None,
                            format!("not a recognised record (keys {})", key_list(&o)),
                        );
                    }
                    set_line(&mut part, line_no);
                    snap.merge(part);
                }
            }
            Ok(_) => problem(
                snap,
                doc.file,
                line_no,
                "a JSON Lines record must be an object".into(),
            ),
            Err(e) => problem(
                snap,
                doc.file,
                line_no,
                json::describe_error(&e).replacen("line 1 ", "", 1),
            ),
        }
    }
    if !rows.is_empty() {
        logs::parse_json_rows(doc.file, &rows, &mut snap.traffic, &mut snap.loaded);
    }
    if !metric_records.is_empty() {
        let refs: Vec<_> = metric_records.iter().map(|(o, r)| (o.clone(), r)).collect();
        metrics::load_metric_records(&refs, snap);
    }
}

/// Gives everything read from one JSON Lines line that line as its origin.
fn set_line(part: &mut Snapshot, line: Option<u32>) {
    let fix = |o: &mut Origin| {
        if o.line.is_none() {
            o.line = line;
        }
    };
    part.loaded
        .problems
        .iter_mut()
        .for_each(|p| fix(&mut p.origin));
    part.changes.iter_mut().for_each(|c| fix(&mut c.origin));
    part.apis.iter_mut().for_each(|x| fix(&mut x.origin));
    part.operations.iter_mut().for_each(|x| fix(&mut x.origin));
    part.products.iter_mut().for_each(|x| fix(&mut x.origin));
    part.backends.iter_mut().for_each(|x| fix(&mut x.origin));
    part.policies.iter_mut().for_each(|x| fix(&mut x.origin));
    part.named_values
        .iter_mut()
        .for_each(|x| fix(&mut x.origin));
    part.nsgs.iter_mut().for_each(|x| fix(&mut x.origin));
    part.autoscale.iter_mut().for_each(|x| fix(&mut x.origin));
    part.metrics.iter_mut().for_each(|x| fix(&mut x.origin));
    if let Some(svc) = part.service.as_mut() {
        fix(&mut svc.origin);
    }
}

/// The HTTP error an error body describes (`{"error":{code,message}}`,
/// OAuth `{error, error_description}`, Prometheus `{status:"error"}`).
fn error_text(o: &Map<String, Value>) -> Option<String> {
    match get(o, "error") {
        Some(Value::Object(e)) => {
            let code = str_at(e, "code").unwrap_or_default();
            let msg = str_at(e, "message").unwrap_or_default();
            let inner = obj(e, "innererror")
                .and_then(|i| str_at(i, "message"))
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            Some(format!("{code}: {msg}{inner}"))
        }
        Some(Value::String(message)) => {
            // OAuth: {error: code, error_description}; Prometheus: {errorType, error: message}.
            Some(
                match (str_at(o, "error_description"), str_at(o, "errorType")) {
                    (Some(d), _) => format!("{message}: {}", d.lines().next().unwrap_or_default()),
                    (None, Some(kind)) => format!("{kind}: {message}"),
                    (None, None) => message.clone(),
                },
            )
        }
        _ => None,
    }
}

/// One parsed JSON document.
fn dispatch_value(doc: &Doc, v: &Value, snap: &mut Snapshot, depth: u32) {
    if depth > 8 {
        problem(
            snap,
            doc.file,
            None,
            "JSON nested too deeply in envelopes".into(),
        );
        return;
    }
    match v {
        Value::Array(items) => dispatch_array(doc, items, snap),
        // Log Analytics query answers: the log reader checks the columns.
        Value::Object(o) if get(o, "tables").is_some_and(Value::is_array) => {
            logs::parse_query_tables(doc.file, v, &mut snap.traffic, &mut snap.loaded)
        }
        Value::Object(o) => dispatch_object(doc, o, snap, depth),
        _ => problem(
            snap,
            doc.file,
            None,
            "not a recognised gateway export: a bare JSON value, not an object or array".into(),
        ),
    }
}

fn dispatch_array(doc: &Doc, items: &[Value], snap: &mut Snapshot) {
    let Some(first) = items.first() else {
        return; // An empty list is a valid answer.
    };
    if first
        .as_object()
        .is_some_and(|o| get(o, "FrameType").is_some())
    {
        load_adx_frames(doc, items, snap);
        return;
    }
    load_records(doc, items, snap);
}

/// One record of a list (`value`, `records`, an array, a JSON Lines line):
/// activity event, resource or a known-unused shape.
fn dispatch_item(
    doc: &Doc,
    o: &Map<String, Value>,
    record: Option<u32>,
    snap: &mut Snapshot,
) -> bool {
    if activity::is_activity_event(o) {
        activity::load_event(doc, o, record, snap);
        return true;
    }
    if arm::load_resource(doc, o, None, record, snap) {
        return true;
    }
    // SKU lists and network status: APIM answers apimedic does not use.
    let known = (get(o, "resourceType").is_some() && get(o, "sku").is_some())
        || get(o, "networkStatus").is_some();
    if known {
        snap.loaded.count(InputKind::Other, 1);
    }
    known
}

/// A list of records (`records`, `value`, a top-level array): gateway log
/// rows go to the log reader, exported metric records fold into series,
/// the rest are activity events or resources; anything else is one problem
/// per record.
fn load_records(doc: &Doc, records: &[Value], snap: &mut Snapshot) {
    // All gateway rows (the usual Event Hub payload): no copy, exact indexes.
    if records
        .iter()
        .all(|r| r.as_object().is_some_and(logs::is_log_row))
    {
        logs::parse_json_rows(doc.file, records, &mut snap.traffic, &mut snap.loaded);
        return;
    }
    // Mixed: log rows are copied out, so their record indexes count rows only.
    let mut rows = Vec::new();
    let mut metric_records = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let record = u32::try_from(i).ok();
        let Some(ro) = r.as_object() else {
            doc.reject(snap, record, "a list item is not a JSON object".into());
            continue;
        };
        if logs::is_log_row(ro) {
            rows.push(r.clone());
        } else if metrics::is_metric_record(ro) {
            metric_records.push((doc.origin(record), ro));
        } else if !dispatch_item(doc, ro, record, snap) {
            doc.reject(
                snap,
                record,
                format!(
                    "not a recognised record: neither a gateway log row, a metric, an activity log event nor an Azure resource (keys {})",
                    key_list(ro)
                ),
            );
        }
    }
    if !rows.is_empty() {
        logs::parse_json_rows(doc.file, &rows, &mut snap.traffic, &mut snap.loaded);
    }
    if !metric_records.is_empty() {
        metrics::load_metric_records(&metric_records, snap);
    }
}

fn dispatch_object(doc: &Doc, o: &Map<String, Value>, snap: &mut Snapshot, depth: u32) {
    let has = |k: &str| get(o, k).is_some();
    // Exchange files of the fake Azure server: {request, response{status, body}}.
    if let (Some(resp), true) = (obj(o, "response"), has("request")) {
        let status = json::u32_of(get(resp, "status")).unwrap_or(200);
        let body = get(resp, "body").filter(|b| !b.is_null());
        if status >= 400 {
            let detail = body
                .and_then(Value::as_object)
                .and_then(error_text)
                .map(|t| format!(": {t}"))
                .unwrap_or_default();
            problem(
                snap,
                doc.file,
                None,
                format!("an HTTP {status} error response{detail}"),
            );
            return;
        }
        match body {
            Some(b) => dispatch_value(doc, b, snap, depth + 1),
            None => snap.loaded.count(InputKind::Other, 1),
        }
        return;
    }
    if has("polls") || has("command") && has("exit_code") {
        match get(o, "stdout").filter(|s| s.is_object() || s.is_array()) {
            Some(out) => dispatch_value(doc, out, snap, depth + 1),
            None => snap.loaded.count(InputKind::Other, 1),
        }
        return;
    }
    // REST spec example: the body of the first 2xx response.
    if let Some(responses) = obj(o, "responses").filter(|_| has("parameters")) {
        let mut codes: Vec<&String> = responses.keys().filter(|k| k.starts_with('2')).collect();
        codes.sort();
        match codes
            .first()
            .and_then(|c| responses.get(*c))
            .and_then(|r| r.as_object())
            .and_then(|r| get(r, "body"))
        {
            Some(b) => dispatch_value(doc, b, snap, depth + 1),
            None => snap.loaded.count(InputKind::Other, 1),
        }
        return;
    }
    let error = error_text(o);
    if metrics::is_prometheus(o) {
        match error {
            Some(e) => problem(
                snap,
                doc.file,
                None,
                format!("a Prometheus error response: {e}"),
            ),
            None => snap.loaded.count(InputKind::Other, 1),
        }
        return;
    }
    if let Some(e) = error {
        problem(
            snap,
            doc.file,
            None,
            format!("an error response from Azure: {e}"),
        );
        return;
    }
    if has("access_token") || has("accessToken") {
        problem(
            snap,
            doc.file,
            None,
            "an access-token response (a credential), not gateway data: remove it from the input"
                .into(),
        );
        return;
    }
    if metrics::is_metrics_response(o) {
        metrics::load_metrics(doc, o, snap);
        return;
    }
    if let Some(resources) = get(o, "resources").and_then(Value::as_array)
        && (has("$schema") || has("contentVersion"))
    {
        arm::load_template(doc, resources, snap);
        return;
    }
    if let Some(records) = get(o, "records").and_then(Value::as_array) {
        load_records(doc, records, snap);
        return;
    }
    if let Some(items) = get(o, "value").and_then(Value::as_array) {
        dispatch_array(doc, items, snap);
        return;
    }
    if get(o, "value").is_some_and(Value::is_string) && o.len() == 1 {
        // A named value's listValue answer: the secret alone, unattributable.
        snap.loaded.count(InputKind::Other, 1);
        return;
    }
    if logs::is_log_row(o) {
        logs::parse_json_rows(
            doc.file,
            std::slice::from_ref(&Value::Object(o.clone())),
            &mut snap.traffic,
            &mut snap.loaded,
        );
        return;
    }
    if openapi::is_spec(o) {
        openapi::load_spec(doc, o, snap);
        return;
    }
    if o.is_empty() {
        // apiops association file: a product-API link where the path says so.
        if arm::apiops_hint(doc.file).is_some() {
            arm::load_resource(doc, o, None, None, snap);
        }
        return;
    }
    if dispatch_item(doc, o, None, snap) {
        return;
    }
    // API specs, what-if results, operation status polls and the
    // simulator's ground truth (`expected.json`): known, not used.
    let known_unused = has("openapi")
        || (has("scenario") && has("incidents") && has("findings"))
        || has("swagger")
        || obj(o, "properties").is_some_and(|p| get(p, "changes").is_some())
        || (has("status") && (has("startTime") || o.len() == 1));
    if known_unused {
        snap.loaded.count(InputKind::Other, 1);
        return;
    }
    problem(
        snap,
        doc.file,
        None,
        format!(
            "not a recognised gateway export: JSON object with keys {}",
            key_list(o)
        ),
    );
}

/// Azure Data Explorer v2 frames: PrimaryResult tables become the Log
/// Analytics `tables` shape; errors the service reported become problems.
fn load_adx_frames(doc: &Doc, frames: &[Value], snap: &mut Snapshot) {
    let mut tables: Vec<Map<String, Value>> = Vec::new();
    let mut ids: Vec<Option<u64>> = Vec::new();
    let mut reported: Vec<String> = Vec::new();
    for f in frames.iter().filter_map(Value::as_object) {
        let frame = str_at(f, "FrameType").unwrap_or_default();
        if let Some(errs) = get(f, "OneApiErrors").and_then(Value::as_array) {
            for e in errs.iter().filter_map(Value::as_object) {
                let text = error_text(e).unwrap_or_else(|| "an error".into());
                if reported.contains(&text) {
                    continue; // The same error repeats in the completion frames.
                }
                reported.push(text.clone());
                problem(
                    snap,
                    doc.file,
                    None,
                    format!("the query reported an error ({frame}): {text}"),
                );
            }
        }
        let kind = str_at(f, "TableKind").unwrap_or_default();
        match frame.as_str() {
            "DataTable" | "TableHeader" if kind == "PrimaryResult" => {
                let columns: Vec<Value> = json::arr(f, "Columns")
                    .iter()
                    .filter_map(Value::as_object)
                    .map(|c| {
                        serde_json::json!({"name": str_at(c, "ColumnName"), "type": str_at(c, "ColumnType")})
                    })
                    .collect();
                let mut t = Map::new();
                t.insert(
                    "name".into(),
                    Value::String(str_at(f, "TableName").unwrap_or_default()),
                );
                t.insert("columns".into(), Value::Array(columns));
                t.insert("rows".into(), Value::Array(json::arr(f, "Rows").to_vec()));
                tables.push(t);
                ids.push(get(f, "TableId").and_then(Value::as_u64));
            }
            "TableFragment" => {
                let id = get(f, "TableId").and_then(Value::as_u64);
                if let Some(pos) = ids.iter().position(|i| *i == id)
                    && let Some(Value::Array(rows)) = tables[pos].get_mut("rows")
                {
                    rows.extend(json::arr(f, "Rows").iter().cloned());
                }
            }
            _ => {}
        }
    }
    if tables.is_empty() {
        snap.loaded.count(InputKind::Other, 1);
        return;
    }
    let doc_value = serde_json::json!({ "tables": tables });
    logs::parse_query_tables(doc.file, &doc_value, &mut snap.traffic, &mut snap.loaded);
}

// ---------------------------------------------------------------------------
// After all files: one entity per identity

/// Merges what several files said about the same entity: product links into
/// their product, rules of an NSG into one NSG, and drops exact repeats of
/// APIs, operations, backends, named values and scoped policies (first wins).
fn finalize(snap: &mut Snapshot) {
    let mut products: Vec<crate::model::Product> = Vec::new();
    for p in std::mem::take(&mut snap.products) {
        match products
            .iter_mut()
            .find(|q| q.id.eq_ignore_ascii_case(&p.id))
        {
            Some(q) => {
                for a in p.apis {
                    if !q.apis.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                        q.apis.push(a);
                    }
                }
                if q.display_name.is_none() && p.display_name.is_some() {
                    q.display_name = p.display_name;
                    q.subscription_required = p.subscription_required;
                    q.state = p.state;
                    q.origin = p.origin;
                }
            }
            None => products.push(p),
        }
    }
    snap.products = products;

    let mut nsgs: Vec<crate::model::Nsg> = Vec::new();
    for n in std::mem::take(&mut snap.nsgs) {
        match nsgs
            .iter_mut()
            .find(|m| m.name.eq_ignore_ascii_case(&n.name) && !n.name.is_empty())
        {
            Some(m) if m.effective != n.effective => {
                // The NSG as declared and as a NIC's effective rules: one
                // NSG with the effective rules (what Azure enforces) and
                // the subnets of both, whichever document came first.
                let (mut eff, decl) = if n.effective {
                    (n, std::mem::take(m))
                } else {
                    (std::mem::take(m), n)
                };
                for s in decl.subnets {
                    if !eff.subnets.iter().any(|x| x.eq_ignore_ascii_case(&s)) {
                        eff.subnets.push(s);
                    }
                }
                if eff.resource_id.is_none() {
                    eff.resource_id = decl.resource_id;
                }
                *m = eff;
            }
            Some(m) => {
                for r in n.rules {
                    if !m.rules.iter().any(|x| x.name == r.name) {
                        m.rules.push(r);
                    }
                }
                for r in n.default_rules {
                    if !m.default_rules.iter().any(|x| x.name == r.name) {
                        m.default_rules.push(r);
                    }
                }
                for s in n.subnets {
                    if !m.subnets.contains(&s) {
                        m.subnets.push(s);
                    }
                }
                if m.resource_id.is_none() {
                    m.resource_id = n.resource_id;
                }
            }
            None => nsgs.push(n),
        }
    }
    // One NSG read twice (as declared and as a NIC's effective rules, or
    // from two exports) is one NSG in the counts too.
    if let Some(c) = snap.loaded.counts.get_mut(&InputKind::Nsgs) {
        *c = nsgs.len() as u64;
    }
    snap.nsgs = nsgs;

    dedup_by(&mut snap.apis, |a| a.id.to_ascii_lowercase());
    dedup_by(&mut snap.operations, |o| {
        format!("{}/{}", o.api_id, o.id).to_ascii_lowercase()
    });
    dedup_by(&mut snap.backends, |b| b.id.to_ascii_lowercase());
    dedup_by(&mut snap.named_values, |n| n.name.to_ascii_lowercase());
    rescope_stray_globals(snap);
    // One document per scope for analysis; a different document for a scope
    // already given is kept for lint and says why analysis skips it.
    let mut first: std::collections::HashMap<crate::model::PolicyScope, (String, String)> =
        std::collections::HashMap::new();
    let mut kept = Vec::new();
    for p in std::mem::take(&mut snap.policies) {
        if p.scope == crate::model::PolicyScope::Unknown {
            kept.push(p);
            continue;
        }
        match first.get(&p.scope) {
            None => {
                first.insert(
                    p.scope.clone(),
                    (p.origin.file.clone(), p.xml.trim().to_string()),
                );
                kept.push(p);
            }
            // The same text twice (a template and an apiops file): one document.
            Some((_, xml)) if xml == p.xml.trim() => {}
            Some((file, _)) => {
                snap.loaded.reject(crate::model::Problem {
                    origin: p.origin.clone(),
                    message: format!(
                        "policy for scope {} not used for analysis: {file} already gives that scope (lint still checks this file)",
                        p.scope
                    ),
                });
                snap.shadowed_policies.push(p);
            }
        }
    }
    snap.policies = kept;
}

/// `policy.xml` files read as global because no apiops folder names them
/// (`team-a/policy.xml`, `team-b/policy.xml`): only the shallowest one, when
/// it is alone at its depth, stays global; the others get an unknown scope
/// (linted, not applied) and a problem saying why.
fn rescope_stray_globals(snap: &mut Snapshot) {
    use crate::model::PolicyScope;
    let is_file_global = |p: &crate::model::PolicyDoc| {
        p.scope == PolicyScope::Global
            && p.format == "file"
            && p.origin
                .file
                .rsplit(['/', '\\'])
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case("policy.xml"))
    };
    let depth = |f: &str| f.split(['/', '\\']).filter(|c| !c.is_empty()).count();
    let globals: Vec<usize> = snap
        .policies
        .iter()
        .enumerate()
        .filter(|(_, p)| is_file_global(p))
        .map(|(i, _)| i)
        .collect();
    if globals.len() < 2 {
        return;
    }
    let min = globals
        .iter()
        .map(|&i| depth(&snap.policies[i].origin.file))
        .min()
        .unwrap_or(0);
    let at_min: Vec<usize> = globals
        .iter()
        .copied()
        .filter(|&i| depth(&snap.policies[i].origin.file) == min)
        .collect();
    let keeper = (at_min.len() == 1).then(|| at_min[0]);
    for i in globals {
        if Some(i) == keeper {
            continue;
        }
        let why = match keeper {
            Some(k) => format!(
                "policy.xml outside the apiops layout: {} is the global policy, so this file's scope is unknown (linted, not applied)",
                snap.policies[k].origin.file
            ),
            None => "several policy.xml files outside the apiops layout could each be the global policy: scope unknown (linted, not applied); put the export's root folder first or use the apiops layout".to_string(),
        };
        let p = &mut snap.policies[i];
        p.scope = PolicyScope::Unknown;
        let origin = p.origin.clone();
        snap.loaded.reject(crate::model::Problem {
            origin,
            message: why,
        });
    }
}

fn dedup_by<T>(items: &mut Vec<T>, key: impl Fn(&T) -> String) {
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| seen.insert(key(i)));
}

// ---------------------------------------------------------------------------
// Gateway log rows (helper module `gateway_logs` parses them)

/// The gateway-log reader's entry points, plus the CSV header sniff.
mod logs {
    pub use super::gateway_logs::{
        LineFormat, is_log_line, is_log_row, is_nginx_line, is_row_array, parse_csv,
        parse_json_rows, parse_map, parse_ndjson, parse_nginx, parse_query_tables, parse_row_array,
        read_csv, read_ndjson, read_nginx,
    };

    /// A CSV header with a timestamp and a response-code column (the log
    /// reader's minimum for a gateway log row).
    pub fn is_csv_header(line: &[u8]) -> bool {
        let text = String::from_utf8_lossy(line).to_ascii_lowercase();
        let cols: Vec<&str> = text
            .split(',')
            .map(|c| c.trim().trim_matches('"').trim())
            .collect();
        let any = |names: &[&str]| cols.iter().any(|c| names.contains(c));
        any(&["timegenerated", "time", "timegenerated [utc]", "timestamp"])
            && any(&["responsecode", "responsecode_d"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PolicyScope;
    use std::io::Write;

    fn one(file: &str, bytes: &[u8]) -> Snapshot {
        collect_files(&[(file.to_string(), bytes.to_vec())])
    }

    fn only_problem(s: &Snapshot) -> String {
        assert_eq!(s.loaded.problems.len(), 1, "{:?}", s.loaded.problems);
        s.loaded.problems[0].to_string()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    const APIS: &str = r#"{"value":[{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/svc/apis/orders",
        "type":"Microsoft.ApiManagement/service/apis","name":"orders","properties":{"path":"orders","serviceUrl":"https://o"}}]}"#;

    #[test]
    fn policy_files_outside_the_apiops_layout_are_all_kept() {
        let a = "<policies><inbound><base /><rate-limit calls=\"5\" renewal-period=\"60\" /></inbound></policies>";
        let b = "<policies><inbound><base /><set-variable name=\"x\" value=\"1\" /></inbound></policies>";
        let c = "<policies><inbound /></policies>";
        let s = collect_files(&[
            (
                "export/team-a/policy.xml".to_string(),
                a.as_bytes().to_vec(),
            ),
            (
                "export/team-b/policy.xml".to_string(),
                b.as_bytes().to_vec(),
            ),
            (
                "export/team-c/policy.xml".to_string(),
                c.as_bytes().to_vec(),
            ),
        ]);
        // None is the global policy: all three are kept, scope unknown, each
        // with a problem saying why it is not applied.
        assert_eq!(s.policies.len(), 3, "{:?}", s.policies);
        assert!(s.policies.iter().all(|p| p.scope == PolicyScope::Unknown));
        assert_eq!(s.loaded.problems.len(), 3, "{:?}", s.loaded.problems);
        assert!(s.loaded.problems[0].message.contains("linted, not applied"));
        // A root policy.xml stays global; the deeper ones do not.
        let s = collect_files(&[
            ("x/policy.xml".to_string(), a.as_bytes().to_vec()),
            ("x/old/policy.xml".to_string(), b.as_bytes().to_vec()),
        ]);
        let global: Vec<&str> = s
            .policies
            .iter()
            .filter(|p| p.scope == PolicyScope::Global)
            .map(|p| p.origin.file.as_str())
            .collect();
        assert_eq!(global, ["x/policy.xml"]);
        assert!(
            s.loaded.problems[0]
                .to_string()
                .starts_with("x/old/policy.xml")
        );
        // Two different documents for one scope: the second is kept for lint.
        let s = collect_files(&[
            (
                "a/policies/apis/orders.xml".to_string(),
                a.as_bytes().to_vec(),
            ),
            (
                "b/policies/apis/orders.xml".to_string(),
                b.as_bytes().to_vec(),
            ),
        ]);
        assert_eq!(s.policies.len(), 1);
        assert_eq!(s.shadowed_policies.len(), 1);
        assert!(
            s.loaded.problems[0]
                .message
                .contains("already gives that scope"),
            "{:?}",
            s.loaded.problems
        );
    }

    #[test]
    fn empty_whitespace_and_binary_files() {
        for bytes in [&b""[..], b"  \n\t\r\n", b"\xef\xbb\xbf"] {
            let s = one("dump/empty.json", bytes);
            assert_eq!(only_problem(&s), "dump/empty.json: the file is empty");
            assert_eq!(s.loaded.files, 1);
        }
        let s = one("dump/core", b"\x7fELF\x02\x01\x01\x00\x00\x00junk");
        assert!(only_problem(&s).contains("binary content"));
    }

    #[test]
    fn invalid_utf8_in_json_names_the_line() {
        let s = one("a.json", b"{\n \"name\": \"caf\xe9\"\n}");
        let p = only_problem(&s);
        assert!(p.starts_with("a.json:2: not valid UTF-8"), "{p}");
    }

    #[test]
    fn truncated_json_names_file_and_line() {
        let s = one("apis.json", &APIS.as_bytes()[..120]);
        let p = only_problem(&s);
        assert!(
            p.starts_with("apis.json:2: invalid JSON at line 2 column"),
            "{p}"
        );
        assert!(p.contains("ends early"), "{p}");
        assert!(s.apis.is_empty());
    }

    #[test]
    fn wrong_types_never_panic_and_stay_unknown() {
        let s = one(
            "apis.json",
            br#"{"value":[{"type":"Microsoft.ApiManagement/service/apis","name":5,
                "properties":{"path":["x"],"isCurrent":"maybe","protocols":"https","serviceUrl":{"a":1}}},
                {"type":"Microsoft.ApiManagement/service","sku":"Premium","zones":3,"properties":[]},
                7, {"unrelated":true}]}"#,
        );
        assert_eq!(s.apis.len(), 1);
        let a = &s.apis[0];
        assert_eq!(
            (a.path.as_deref(), a.is_current, a.service_url.as_deref()),
            (None, None, None)
        );
        assert_eq!(a.protocols, vec!["https"]);
        let svc = s.service.as_ref().unwrap();
        assert_eq!(
            (svc.sku.as_deref(), svc.capacity, svc.zones.len()),
            (None, None, 0)
        );
        let p: Vec<String> = s.loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0], "apis.json record 2: a list item is not a JSON object");
        assert!(
            p[1].starts_with(
                "apis.json record 3: not a recognised record: neither a gateway log row, a metric, an activity log event nor an Azure resource (keys unrelated)"
            ),
            "{p:?}"
        );
        let s = one("x.json", br#"{"value": 5, "other": []}"#);
        assert!(only_problem(&s).contains("JSON object with keys other, value"));
        let s = one("x.json", b"42");
        assert!(only_problem(&s).contains("x.json:1: not a recognised gateway export"));
        let s = one("x.json", b"[[1]]");
        assert!(only_problem(&s).contains("x.json record 0: a list item is not a JSON object"));
    }

    #[test]
    fn gzip_bom_and_utf16_are_read() {
        let s = one("apis.json.gz", &gzip(APIS.as_bytes()));
        assert_eq!(s.apis.len(), 1, "{:?}", s.loaded.problems);
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(APIS.as_bytes());
        assert_eq!(one("apis.json", &bom).apis.len(), 1);
        let mut utf16 = vec![0xff, 0xfe];
        for u in APIS.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let s = one("ps-redirect.json", &utf16);
        assert_eq!(s.apis.len(), 1, "{:?}", s.loaded.problems);
        let mut broken = gzip(APIS.as_bytes());
        broken.truncate(broken.len() / 2);
        let s = one("apis.json.gz", &broken);
        let p: Vec<String> = s.loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("apis.json.gz:1: invalid JSON"), "{p:?}");
        assert!(
            p[1].starts_with("apis.json.gz: gzip data is corrupt or truncated after ")
                && p[1].ends_with("nothing before the cut could be used"),
            "{p:?}"
        );
    }

    #[test]
    fn activity_json_lines_with_a_broken_line() {
        let lines = concat!(
            r#"{"time":"2024-05-14T08:58:41Z","operationName":"Microsoft.ApiManagement/service/policies/write","resultType":"Success","resourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso/policies/policy","category":"Administrative"}"#,
            "\n",
            r#"{"time":"2024-05-14T09:01:00Z","operationName":"Microsoft.Network/networkSecurityGroups/write","resultType":"Success","resourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n","category":"Administrative"}"#,
            "\n{\"time\": \"2024-05-14T09:02:00Z\", \"operationName\":\n",
            r#"{"time":"not a time","operationName":"x/write","resultType":"Success","resourceId":"/x","category":"Administrative"}"#,
            "\n"
        );
        let s = one("PT1H.json", lines.as_bytes());
        assert_eq!(s.changes.len(), 2);
        assert_eq!(s.changes[0].policy_scope, Some(PolicyScope::Global));
        let p: Vec<String> = s.loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("PT1H.json:3: invalid JSON"), "{p:?}");
        assert!(p[1].starts_with("PT1H.json:4: activity log event"), "{p:?}");
        assert_eq!(s.changes[1].origin.to_string(), "PT1H.json:2");
        let w = s.loaded.time_range.unwrap();
        assert_eq!(w.end.to_rfc3339(), "2024-05-14T09:01:00Z");
    }

    #[test]
    fn xml_and_text_recognition() {
        let s = one(
            "art/apis/orders/policy.xml",
            b"\xef\xbb\xbf<policies><inbound><base /></inbound></policies>",
        );
        assert_eq!(s.policies[0].scope, PolicyScope::Api("orders".into()));
        assert_eq!(
            s.policies[0].xml,
            "<policies><inbound><base /></inbound></policies>"
        );
        let s = one(
            "page.xml",
            b"<!DOCTYPE html>\n<html><body>login</body></html>",
        );
        assert!(only_problem(&s).contains("root element <html>"));
        let s = one("notes.txt", b"remember to check the backend\n");
        assert!(only_problem(&s).contains("notes.txt:1: not a recognised gateway export"));
        let s = one("data.csv", b"name,value\nx,1\n");
        assert!(only_problem(&s).contains("CSV whose header names no gateway log columns"));
    }

    #[test]
    fn products_links_and_duplicates_merge() {
        let s = collect_files(&[
            (
                "a/products/p1/apis/orders/productApiInformation.json".into(),
                b"{}".to_vec(),
            ),
            (
                "a/products/p1/productInformation.json".into(),
                br#"{"properties":{"displayName":"P1","state":"published"}}"#.to_vec(),
            ),
            (
                "a/products/p1/apis/users/productApiInformation.json".into(),
                b"{}".to_vec(),
            ),
            ("one.json".into(), APIS.as_bytes().to_vec()),
            ("two.json".into(), APIS.as_bytes().to_vec()),
        ]);
        assert_eq!(s.products.len(), 1);
        assert_eq!(s.products[0].display_name.as_deref(), Some("P1"));
        assert_eq!(s.products[0].apis, vec!["orders", "users"]);
        assert_eq!(s.apis.len(), 1);
        assert_eq!(s.loaded.files, 5);
        assert!(s.loaded.problems.is_empty(), "{:?}", s.loaded.problems);
    }

    #[test]
    fn collect_walks_sorted_skips_hidden_and_fails_on_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::write(root.join(".git/objects/x.json"), "not json").unwrap();
        std::fs::write(root.join(".DS_Store"), [0u8, 1, 2]).unwrap();
        std::fs::create_dir_all(root.join("policies/apis")).unwrap();
        std::fs::write(root.join("policies/global.xml"), "<policies/>").unwrap();
        std::fs::write(root.join("policies/apis/orders.xml"), "<policies/>").unwrap();
        std::fs::write(root.join("apis.json.gz"), gzip(APIS.as_bytes())).unwrap();
        let snap = collect(&[root.to_path_buf()]).unwrap();
        assert_eq!(snap.loaded.files, 3);
        assert!(
            snap.loaded.problems.is_empty(),
            "{:?}",
            snap.loaded.problems
        );
        assert_eq!(snap.apis.len(), 1);
        let scopes: Vec<String> = snap.policies.iter().map(|p| p.scope.to_string()).collect();
        assert_eq!(scopes, vec!["api:orders", "global"]);

        let twice = collect(&[root.to_path_buf(), root.join("apis.json.gz")]).unwrap();
        assert_eq!((twice.loaded.files, twice.apis.len()), (3, 1), "read once");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root, root.join("policies/loop")).unwrap();
            let again = collect(&[root.to_path_buf()]).unwrap();
            assert_eq!(again.loaded.files, 3, "a symlink loop is walked once");
        }
        let s = one("logs.zip", b"PK\x03\x04\x14\x00rest");
        assert!(only_problem(&s).contains("zip archive"));

        let missing = root.join("nope");
        let err = collect(std::slice::from_ref(&missing)).unwrap_err();
        assert!(
            format!("{err:#}").contains(&missing.display().to_string()),
            "{err:#}"
        );
        // A single file given directly is read even if hidden.
        let single = collect(&[root.join(".DS_Store")]).unwrap();
        assert!(single.loaded.problems[0].message.contains("binary"));
    }

    #[test]
    fn envelope_and_spec_example_unwrap() {
        let s = one(
            "x.json",
            br#"{"request":{"method":"GET","url":"u"},"response":{"status":200,"body":{"value":[]}}}"#,
        );
        assert!(s.loaded.problems.is_empty() && s.loaded.counts.is_empty());
        let s = one(
            "x.json",
            br#"{"request":{},"response":{"status":503,"body":{"error":{"code":"ServiceUnavailable","message":"try later"}}}}"#,
        );
        assert_eq!(
            only_problem(&s),
            "x.json: an HTTP 503 error response: ServiceUnavailable: try later"
        );
        let s = one(
            "x.json",
            br#"{"error":{"code":"AuthorizationFailed","message":"no access"}}"#,
        );
        assert!(only_problem(&s).contains("an error response from Azure: AuthorizationFailed"));
        let s = one(
            "spec.json",
            br#"{"parameters":{},"responses":{"404":{},"201":{"body":{"name":"b","type":"Microsoft.ApiManagement/service/backends","properties":{"url":"https://b","protocol":"http"}}}}}"#,
        );
        assert_eq!(s.backends.len(), 1);
    }

    #[test]
    fn exported_metrics_and_mixed_records() {
        let m = |t: &str, v: u32| {
            format!(
                r#"{{"time":"{t}","resourceId":"/subscriptions/s/resourceGroups/r/providers/Microsoft.App/containerApps/orders-app","metricName":"RestartCount","timeGrain":"PT1M","count":1,"total":{v},"minimum":{v},"maximum":{v},"average":{v}}}"#
            )
        };
        let lines = format!(
            "{}\n{}\n",
            m("2024-05-14T09:00:00Z", 0),
            m("2024-05-14T09:01:00Z", 3)
        );
        let s = one("insights-metrics-pt1m/PT1H.json", lines.as_bytes());
        assert!(s.loaded.problems.is_empty(), "{:?}", s.loaded.problems);
        assert_eq!(s.metrics.len(), 5);
        assert!(
            s.metrics
                .iter()
                .all(|x| x.resource.as_deref() == Some("orders-app"))
        );
        let doc = format!(
            r#"{{"records":[{},{{"time":"2024-05-14T09:02:00Z","operationName":"Microsoft.App/containerApps/write","resultType":"Success","resourceId":"/x","category":"Administrative"}},{{"junk":1}}]}}"#,
            m("2024-05-14T09:00:00Z", 1)
        );
        let s = one("eh.json", doc.as_bytes());
        assert_eq!((s.metrics.len(), s.changes.len()), (5, 1));
        assert_eq!(
            only_problem(&s),
            "eh.json record 2: not a recognised record: neither a gateway log row, a metric, an activity log event nor an Azure resource (keys junk)"
        );
    }

    #[test]
    fn a_multi_line_query_answer_is_not_ndjson() {
        let doc = concat!(
            "{\"tables\":[{\"name\":\"PrimaryResult\",\"columns\":[{\"name\":\"TimeGenerated\",\"type\":\"datetime\"},",
            "{\"name\":\"ApiId\",\"type\":\"string\"},{\"name\":\"ResponseCode\",\"type\":\"int\"}],\"rows\":[\n",
            "[\"2024-05-14T09:00:00Z\",\"orders\",200],\n",
            "[\"2024-05-14T09:00:01Z\",\"orders\",503]\n",
            "]}]}\n"
        );
        assert_eq!(sniff_logs(doc.as_bytes()), LogShape::None);
        let s = one("q.json", doc.as_bytes());
        assert!(s.loaded.problems.is_empty(), "{:?}", s.loaded.problems);
        assert_eq!(s.loaded.counts.get(&InputKind::GatewayLogs), Some(&2));
        // Cut short by the sniff buffer: judged by the first key.
        assert_eq!(sniff_logs(&doc.as_bytes()[..60]), LogShape::None);
        let row =
            br#"{"TimeGenerated":"2024-05-14T09:00:00Z","ApiId":"orders","ResponseCode":200}"#;
        assert_eq!(sniff_logs(&row[..row.len() - 3]), LogShape::Ndjson);
        assert_eq!(sniff_logs(row), LogShape::Ndjson);
        assert_eq!(first_key(b"{ \"value\": ["), Some("value"));
        let nginx = br#"{"time":"2026-11-26T09:03:37+00:00","request_id":"a","remote_addr":"127.0.0.1","method":"GET","uri":"/a/hello","host":"h","status":200,"body_bytes_sent":52,"request_time":0.005,"upstream_name":"svc_a","upstream_addr":"127.0.0.1:8081","upstream_status":"200","upstream_connect_time":"0.000","upstream_header_time":"0.005","upstream_response_time":"0.005","user_agent":"curl"}"#;
        assert_eq!(sniff_logs(nginx), LogShape::Nginx);
        let snap = parse_document("access.json", nginx);
        assert_eq!(snap.traffic.rows, 1, "{:?}", snap.loaded.problems);
    }

    #[test]
    fn large_logs_stream_from_disk_plain_gzip_and_csv() {
        let mut ndjson = String::new();
        let mut csv = String::from("TimeGenerated,ApiId,OperationId,ResponseCode,TotalTime\n");
        for i in 0..3000 {
            let t = format!("2024-05-14T09:{:02}:{:02}Z", i / 60 % 60, i % 60);
            let code = if i % 10 == 0 { 503 } else { 200 };
            ndjson.push_str(&format!(
                r#"{{"TimeGenerated":"{t}","ApiId":"orders-api","OperationId":"get-order","ResponseCode":{code},"TotalTime":{i},"Url":"https://contoso.azure-api.net/orders/{i}"}}"#
            ));
            ndjson.push('\n');
            csv.push_str(&format!("{t},orders-api,get-order,{code},{i}\n"));
            if i == 1500 {
                ndjson.push_str("{\"TimeGenerated\": broken\n");
            }
        }
        assert!(ndjson.len() > 2 * SNIFF_BYTES && csv.len() > SNIFF_BYTES);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.ndjson"), &ndjson).unwrap();
        std::fs::write(root.join("b.ndjson.gz"), gzip(ndjson.as_bytes())).unwrap();
        std::fs::write(root.join("c.csv"), &csv).unwrap();
        for name in ["a.ndjson", "b.ndjson.gz", "c.csv"] {
            let s = collect(&[root.join(name)]).unwrap();
            assert_eq!(
                s.loaded.counts.get(&InputKind::GatewayLogs),
                Some(&3000),
                "{name}"
            );
            assert_eq!(s.loaded.files, 1);
            assert_eq!(s.traffic.series.len(), 1, "{name}");
            if name.ends_with("csv") {
                assert!(s.loaded.problems.is_empty(), "{:?}", s.loaded.problems);
            } else {
                let p = only_problem(&s);
                assert!(p.contains(&format!("{name}:1502")), "{p}");
            }
        }
        // The same bytes in memory give the same counts.
        let s = one("a.ndjson", ndjson.as_bytes());
        assert_eq!(s.loaded.counts.get(&InputKind::GatewayLogs), Some(&3000));
    }

    #[test]
    fn apiops_yaml_specification_gives_operations() {
        let yaml = "openapi: 3.0.1\ninfo:\n  title: orders\npaths:\n  /orders/{id}:\n    get:\n      operationId: get-order\n";
        let s = one("art/apis/orders-api/specification.yaml", yaml.as_bytes());
        assert!(s.loaded.problems.is_empty(), "{:?}", s.loaded.problems);
        assert_eq!(s.operations[0].api_id, "orders-api");
        assert_eq!(s.operations[0].id, "get-order");
        let s = one(
            "art/apis/orders-api/specification.yaml",
            b"openapi: 3.0.1\npaths: [unclosed\n",
        );
        assert!(only_problem(&s).contains("invalid YAML API specification"));
    }

    #[test]
    fn records_wrappers_one_per_line() {
        let ev = |t: &str| {
            format!(
                r#"{{"records":[{{"time":"{t}","operationName":"Microsoft.ApiManagement/service/backends/write","resultType":"Success","resourceId":"/subscriptions/s/resourceGroups/r/providers/Microsoft.ApiManagement/service/c/backends/b","category":"Administrative"}},{{"junk":1}}]}}"#
            )
        };
        let text = format!(
            "{}\n{}\n",
            ev("2024-05-14T09:00:00Z"),
            ev("2024-05-14T09:05:00Z")
        );
        let s = one("hub.json", text.as_bytes());
        assert_eq!(s.changes.len(), 2);
        assert_eq!(s.changes[1].origin.to_string(), "hub.json:2 record 0");
        let p: Vec<String> = s.loaded.problems.iter().map(ToString::to_string).collect();
        assert_eq!(p.len(), 2);
        assert!(
            p[0].starts_with("hub.json:1 record 1: not a recognised record"),
            "{p:?}"
        );
    }
}
