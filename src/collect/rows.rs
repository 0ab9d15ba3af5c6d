//! Request rows, listed rather than folded: the gateway log files of a
//! source (the same folders and in-memory files `collect` reads), scanned
//! row by row with where each row is (file, byte offset, line), and rows
//! read back from those places. The dashboard's logs view scans for the
//! rows of one subject and window in the background and keeps only these
//! places, so millions of rows cost a few bytes each, never a screen model.
//!
//! Line-oriented logs (NDJSON, nginx JSON, CSV; plain or gzip) are listed.
//! A JSON document holding rows (the `az` array, a query answer) is named
//! in [`Catalog::unlisted`] instead: never silently left out.

use super::gateway_logs::{At, Records};
use super::input::{Counted, Cut, Guard, MAX_RATIO, Seen};
use crate::model::{Origin, Problem, Request, RequestRecord};
use std::io::{self, Read, Seek};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the rows come from: files and folders, or files in memory (the
/// built-in demo).
#[derive(Clone, Debug)]
pub enum RowSource {
    Paths(Vec<PathBuf>),
    Memory(Arc<Vec<(String, Vec<u8>)>>),
}

/// One row's place: enough to read it again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    /// Index into [`Catalog::files`].
    pub file: u32,
    /// Byte offset of its record in the (decompressed) file.
    pub offset: u64,
    /// Record length in bytes, newline excluded.
    pub len: u32,
    /// 1-based line in the file.
    pub line: u32,
    /// Row within the record (`records` payloads); usually 0.
    pub sub: u16,
}

/// A log file of the source.
pub struct LogFile {
    /// As shown in `file:line` (the path, or the in-memory name).
    pub name: String,
    at: FileAt,
    gz: bool,
    records: Records,
    /// Bytes before the first record (BOM, CSV header).
    skip: usize,
    /// Lines before the first record.
    skip_lines: u32,
}

enum FileAt {
    Path(PathBuf),
    Memory(usize),
}

/// The line-oriented log files of a source.
pub struct Catalog {
    source: RowSource,
    pub files: Vec<LogFile>,
    /// Files that hold gateway rows this module cannot list, and why.
    pub unlisted: Vec<Problem>,
}

const SNIFF: usize = 64 * 1024;
const BLOCK: usize = 4 << 20;

/// Why a file that holds rows is not listed.
/// Why a compressed file's rows end early, for the logs view.
fn stream_cut(cut: &Cut) -> String {
    match cut {
        Cut::Bomb { compressed } => format!(
            "stopped listing: more than {MAX_RATIO} bytes decompressed per compressed byte after {compressed} compressed bytes (a decompression bomb?)"
        ),
        Cut::Error(e) => {
            format!("the compressed stream ends early ({e}): rows before the cut are listed")
        }
    }
}

/// Why a stream is not listed.
const NOT_REREADABLE: &str = "is a stream (FIFO, device or socket): its rows were read once at load and cannot be listed again; save them to a file to browse them";

const NOT_LINES: &str = "holds gateway log rows in a JSON document; its rows are counted but not listed (NDJSON, CSV and nginx logs are)";

impl Catalog {
    /// Finds the log files (folders walked as `collect` walks them).
    /// Unreadable files are skipped here: the load already reported them.
    pub fn open(source: &RowSource) -> Catalog {
        let mut cat = Catalog {
            source: source.clone(),
            files: Vec::new(),
            unlisted: Vec::new(),
        };
        match source {
            RowSource::Memory(files) => {
                for (i, (name, bytes)) in files.iter().enumerate() {
                    let gz = bytes.starts_with(&[0x1f, 0x8b]);
                    let head = if gz {
                        let mut head = Vec::new();
                        let _ = flate2::read::MultiGzDecoder::new(bytes.as_slice())
                            .take(SNIFF as u64)
                            .read_to_end(&mut head);
                        head
                    } else {
                        bytes
                            .get(..SNIFF.min(bytes.len()))
                            .unwrap_or_default()
                            .to_vec()
                    };
                    cat.add(name.clone(), FileAt::Memory(i), gz, &head);
                }
            }
            RowSource::Paths(paths) => {
                let mut files = Vec::new();
                let mut problems = Vec::new();
                for p in paths {
                    if p.is_dir() {
                        super::walk(p, &mut files, &mut problems);
                    } else {
                        files.push(p.clone());
                    }
                }
                let mut seen = std::collections::HashSet::new();
                files.retain(|f| {
                    seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone()))
                });
                for f in files {
                    // Never blocks on a FIFO; a stream (FIFO, device,
                    // socket) was read once at load and cannot be read again.
                    let Ok(mut file) = super::input::open(&f) else {
                        continue;
                    };
                    if super::input::is_stream(&file).unwrap_or(true) {
                        cat.unlisted.push(Problem {
                            origin: Origin::file(f.display().to_string()),
                            message: NOT_REREADABLE.into(),
                        });
                        continue;
                    }
                    let mut magic = [0u8; 2];
                    let gz = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
                    if file.seek(io::SeekFrom::Start(0)).is_err() {
                        continue;
                    }
                    let mut head = Vec::new();
                    let read = if gz {
                        flate2::read::MultiGzDecoder::new(io::BufReader::new(file))
                            .take(SNIFF as u64)
                            .read_to_end(&mut head)
                    } else {
                        file.take(SNIFF as u64).read_to_end(&mut head)
                    };
                    if read.is_err() && head.is_empty() {
                        continue;
                    }
                    cat.add(f.display().to_string(), FileAt::Path(f), gz, &head);
                }
            }
        }
        cat
    }

    fn add(&mut self, name: String, at: FileAt, gz: bool, head: &[u8]) {
        let bom = if head.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        let body = head.get(bom..).unwrap_or_default();
        match Records::sniff(body) {
            Some((records, skip, skip_lines)) => self.files.push(LogFile {
                name,
                at,
                gz,
                records,
                skip: bom + skip,
                skip_lines,
            }),
            None => {
                if super::gateway_logs::is_row_array(body) || holds_rows(body) {
                    self.unlisted.push(Problem {
                        origin: Origin::file(name),
                        message: NOT_LINES.into(),
                    });
                }
            }
        }
    }

    /// Reads the whole (decompressed) content of a file as a stream. A
    /// compressed file goes through the same guard as the load: past the
    /// decompression-ratio cap, or at a corrupt or cut-short stream, it
    /// ends, and [`stream_cut`] says why.
    fn reader(&self, file: &LogFile) -> io::Result<(Box<dyn Read + '_>, Option<Seen>)> {
        fn guarded<'a>(r: impl Read + 'a) -> (Box<dyn Read + 'a>, Option<Seen>) {
            let (counted, n) = Counted::new(r);
            let (g, seen) = Guard::new(flate2::read::MultiGzDecoder::new(counted), Some(n));
            (Box::new(g), Some(seen))
        }
        Ok(match (&file.at, &self.source) {
            (FileAt::Memory(i), RowSource::Memory(files)) => {
                let bytes = files.get(*i).map(|(_, b)| b.as_slice()).unwrap_or_default();
                if file.gz {
                    guarded(bytes)
                } else {
                    (Box::new(bytes), None)
                }
            }
            (FileAt::Path(p), _) => {
                let f = super::input::open(p)?;
                if file.gz {
                    guarded(io::BufReader::new(f))
                } else {
                    (Box::new(f), None)
                }
            }
            (FileAt::Memory(_), RowSource::Paths(_)) => (Box::new(io::empty()), None),
        })
    }

    /// Calls `visit` for every row of file `index` in file order, with its
    /// place, or the reason a record is not a row. `visit` returns false to
    /// stop early (a newer query). Rows read before an I/O error are kept;
    /// the error is returned.
    pub fn scan(
        &self,
        index: usize,
        visit: &mut dyn FnMut(Loc, Result<&Request<'_>, String>) -> bool,
    ) -> io::Result<()> {
        let Some(file) = self.files.get(index) else {
            return Ok(());
        };
        let (mut input, seen) = self.reader(file)?;
        let mut skip = vec![0u8; file.skip];
        input.read_exact(&mut skip)?;
        let mut buf: Vec<u8> = Vec::with_capacity(BLOCK);
        let mut base = file.skip as u64;
        let mut base_line = file.skip_lines;
        let mut eof = false;
        let mut go = true;
        while go && !(eof && buf.is_empty()) {
            if !eof {
                let want = BLOCK.max(buf.len() * 2);
                let have = buf.len();
                buf.resize(want, 0);
                let mut filled = have;
                while filled < want {
                    match input.read(&mut buf[filled..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            buf.truncate(filled);
                            // Rows before the error first, then the error.
                            self.visit_block(index, file, &buf, base, base_line, visit);
                            return Err(e);
                        }
                    }
                }
                buf.truncate(filled);
            }
            let end = if eof {
                buf.len()
            } else {
                match file.records.cut(&buf) {
                    Some(e) => e,
                    // No record end yet: read more (lines over the limit are
                    // still bounded: the parser rejects them by length).
                    None if buf.len() < 64 << 20 => continue,
                    None => buf.len(),
                }
            };
            let block = buf.get(..end).unwrap_or_default();
            go = self.visit_block(index, file, block, base, base_line, visit);
            base += end as u64;
            base_line = base_line.saturating_add(memchr::memchr_iter(b'\n', block).count() as u32);
            buf.drain(..end);
        }
        match seen.and_then(|s| s.cut()) {
            Some(cut) if go => Err(io::Error::other(stream_cut(&cut))),
            _ => Ok(()),
        }
    }

    fn visit_block(
        &self,
        index: usize,
        file: &LogFile,
        block: &[u8],
        base: u64,
        base_line: u32,
        visit: &mut dyn FnMut(Loc, Result<&Request<'_>, String>) -> bool,
    ) -> bool {
        let mut go = true;
        file.records.each(block, &mut |at: At, row| {
            if go {
                let loc = Loc {
                    file: index as u32,
                    offset: base + at.offset as u64,
                    len: u32::try_from(at.len).unwrap_or(u32::MAX),
                    line: base_line.saturating_add(at.line),
                    sub: at.sub,
                };
                go = visit(loc, row);
            }
        });
        go
    }

    /// `file:line` of a place.
    pub fn origin(&self, loc: &Loc) -> Origin {
        let name = self
            .files
            .get(loc.file as usize)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        Origin::at_line(name, loc.line)
    }

    /// Reads the rows at `locs` again, in the order given. A row that can
    /// no longer be read (the file changed) is an error naming its place.
    pub fn read(&self, locs: &[Loc]) -> Vec<Result<RequestRecord, String>> {
        let mut out: Vec<Option<Result<RequestRecord, String>>> = vec![None; locs.len()];
        let mut order: Vec<usize> = (0..locs.len()).collect();
        order.sort_by_key(|&i| locs[i]);
        let mut i = 0;
        while i < order.len() {
            let file = locs[order[i]].file;
            let mut j = i;
            while j < order.len() && locs[order[j]].file == file {
                j += 1;
            }
            self.read_file(file as usize, locs, &order[i..j], &mut out);
            i = j;
        }
        out.into_iter()
            .zip(locs)
            .map(|(r, loc)| {
                r.unwrap_or_else(|| Err(format!("{}: the row is gone", self.origin(loc))))
            })
            .collect()
    }

    /// Reads the records of one file at `which` (indexes into `locs`, in
    /// offset order): a seek per record for plain files, one pass for
    /// compressed ones.
    fn read_file(
        &self,
        index: usize,
        locs: &[Loc],
        which: &[usize],
        out: &mut [Option<Result<RequestRecord, String>>],
    ) {
        let Some(file) = self.files.get(index) else {
            return;
        };
        let mut record = Vec::new();
        let mut plain = match (&file.at, file.gz) {
            (FileAt::Path(p), false) => super::input::open(p).ok(),
            _ => None,
        };
        let mut stream = match &plain {
            Some(_) => None,
            None => self.reader(file).ok().map(|r| r.0),
        };
        let mut pos = 0u64;
        for &k in which {
            let loc = locs[k];
            record.clear();
            record.resize(loc.len as usize, 0);
            let got = if let Some(f) = plain.as_mut() {
                f.seek(io::SeekFrom::Start(loc.offset))
                    .and_then(|_| f.read_exact(&mut record))
            } else {
                if loc.offset < pos {
                    // Two rows of one record: read it again from the start.
                    stream = self.reader(file).ok().map(|r| r.0);
                    pos = 0;
                }
                match stream.as_mut() {
                    Some(s) => {
                        let r = io::copy(&mut s.by_ref().take(loc.offset - pos), &mut io::sink())
                            .and_then(|_| s.read_exact(&mut record));
                        pos = loc.offset + u64::from(loc.len);
                        r
                    }
                    None => Err(io::Error::other("cannot open the file again")),
                }
            };
            let origin = self.origin(&loc);
            out[k] = Some(match got {
                Err(e) => Err(format!("{origin}: cannot read the row again: {e}")),
                Ok(()) => {
                    let mut found = None;
                    let mut data = record.clone();
                    data.push(b'\n');
                    file.records.each(&data, &mut |at, row| {
                        if at.sub == loc.sub && found.is_none() {
                            found = Some(row.map(|r| r.to_record(origin.clone())));
                        }
                    });
                    found.unwrap_or_else(|| Err(format!("{origin}: the row is gone")))
                }
            });
        }
    }
}

/// A JSON document whose text names gateway log columns (an `az` array
/// the sniff cut short, a query answer).
fn holds_rows(head: &[u8]) -> bool {
    let start = head.trim_ascii_start();
    if !(start.starts_with(b"{") || start.starts_with(b"[")) {
        return false;
    }
    let lower = head.to_ascii_lowercase();
    let has = |n: &[u8]| memchr::memmem::find(&lower, n).is_some();
    has(b"\"responsecode\"") && (has(b"\"timegenerated\"") || has(b"\"time\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(minute: u32, code: u16, op: &str) -> String {
        format!(
            "{{\"TimeGenerated\":\"2024-05-18T06:{minute:02}:00Z\",\"ResponseCode\":{code},\"ApiId\":\"orders-api\",\"OperationId\":\"{op}\",\"CorrelationId\":\"c-{minute}-{code}\"}}\n"
        )
    }

    fn memory(files: Vec<(&str, Vec<u8>)>) -> RowSource {
        RowSource::Memory(Arc::new(
            files.into_iter().map(|(n, b)| (n.to_string(), b)).collect(),
        ))
    }

    fn all(cat: &Catalog) -> (Vec<Loc>, Vec<String>) {
        let mut locs = Vec::new();
        let mut bad = Vec::new();
        for i in 0..cat.files.len() {
            cat.scan(i, &mut |loc, row| {
                match row {
                    Ok(_) => locs.push(loc),
                    Err(m) => bad.push(format!("{}: {m}", cat.origin(&loc))),
                }
                true
            })
            .unwrap();
        }
        (locs, bad)
    }

    /// A `.gz` cut short lists every complete row before the cut and then
    /// says why it stopped (the same guard as the load).
    #[test]
    fn a_cut_gzip_lists_rows_before_the_cut_then_says_so() {
        let mut text = String::new();
        for m in 0..2000u32 {
            text.push_str(&line(m % 60, 200, &format!("op-{m}")));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let mut bytes = gz.finish().unwrap();
        bytes.truncate(bytes.len() / 2);
        let cat = Catalog::open(&memory(vec![("logs/a.ndjson.gz", bytes)]));
        assert_eq!(cat.files.len(), 1);
        let mut rows = 0;
        let err = cat
            .scan(0, &mut |_, row| {
                rows += usize::from(row.is_ok());
                true
            })
            .unwrap_err();
        assert!(rows > 100 && rows < 2000, "{rows}");
        assert!(err.to_string().contains("ends early"), "{err}");
    }

    /// A FIFO among the paths is named as not listable, never opened in a
    /// way that blocks.
    #[test]
    fn a_fifo_is_unlisted_without_blocking() {
        let dir = std::env::temp_dir().join(format!("apimedic-rows-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("gateway.ndjson");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let cat = Catalog::open(&RowSource::Paths(vec![fifo.clone()]));
        assert!(cat.files.is_empty());
        assert_eq!(cat.unlisted.len(), 1);
        assert!(
            cat.unlisted[0].message.contains("is a stream"),
            "{:?}",
            cat.unlisted
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rows_are_found_located_and_read_back_in_any_order() {
        let mut text = String::new();
        for m in 0..50 {
            text.push_str(&line(m, if m % 7 == 0 { 503 } else { 200 }, "get-order"));
        }
        text.push_str("{not json\n");
        text.push_str(&line(51, 200, "list-orders"));
        let source = memory(vec![
            ("logs/a.ndjson", text.clone().into_bytes()),
            ("metrics.json", b"{\"value\":[]}".to_vec()),
        ]);
        let cat = Catalog::open(&source);
        assert_eq!(cat.files.len(), 1, "metrics are not logs");
        assert!(cat.unlisted.is_empty());
        let (locs, bad) = all(&cat);
        assert_eq!(locs.len(), 51);
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].starts_with("logs/a.ndjson:51: not valid JSON"),
            "{bad:?}"
        );
        assert_eq!(locs[50].line, 52, "the row after the bad line");
        let pick = vec![locs[50], locs[0], locs[7]];
        let back = cat.read(&pick);
        let codes: Vec<(u16, String, String)> = back
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                (r.response_code, r.operation_id, r.origin.to_string())
            })
            .collect();
        assert_eq!(
            codes,
            vec![
                (200, "list-orders".into(), "logs/a.ndjson:52".into()),
                (503, "get-order".into(), "logs/a.ndjson:1".into()),
                (503, "get-order".into(), "logs/a.ndjson:8".into()),
            ]
        );
    }

    #[test]
    fn files_on_disk_plain_gzip_and_csv_and_an_unlisted_array() {
        let dir = std::env::temp_dir().join(format!("apimedic-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Big enough to take several blocks.
        let mut text = String::new();
        for i in 0..60_000u32 {
            text.push_str(&line(i % 60, if i % 1000 == 0 { 500 } else { 200 }, "op"));
        }
        std::fs::write(dir.join("a.ndjson"), &text).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        std::fs::write(dir.join("b.ndjson.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(
            dir.join("c.csv"),
            "\u{feff}TimeGenerated,ResponseCode,OperationId\n2024-05-18T06:40:00Z,429,x\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("d.json"),
            "[{\"TimeGenerated\":\"2024-05-18T06:40:00Z\",\"ResponseCode\":200}]",
        )
        .unwrap();
        let cat = Catalog::open(&RowSource::Paths(vec![dir.clone()]));
        assert_eq!(cat.files.len(), 3);
        assert_eq!(cat.unlisted.len(), 1);
        assert!(cat.unlisted[0].origin.file.ends_with("d.json"));
        let (locs, bad) = all(&cat);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(locs.len(), 120_001);
        let failing: Vec<Loc> = locs
            .iter()
            .copied()
            .filter(|l| l.file < 2 && (l.line - 1) % 1000 == 0)
            .collect();
        assert_eq!(failing.len(), 120);
        let mut pick: Vec<Loc> = failing.iter().rev().copied().collect();
        pick.push(*locs.last().unwrap());
        let back = cat.read(&pick);
        for (r, loc) in back.iter().zip(&pick) {
            let r = r.as_ref().unwrap();
            if loc.file < 2 {
                assert_eq!(r.response_code, 500, "{loc:?}");
            } else {
                assert_eq!(r.response_code, 429);
                assert!(r.origin.to_string().ends_with("c.csv:2"), "{}", r.origin);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
