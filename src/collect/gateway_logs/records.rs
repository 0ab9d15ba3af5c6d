//! Record by record: the rows of a line-oriented log (NDJSON, nginx JSON,
//! CSV) one at a time, each with where it was read (byte offset, line,
//! index within a `records` payload), for listing rows instead of folding
//! them (`collect::rows`). The same parsers as the fold, so a row listed
//! is a row counted, and a bad record gets the same message.

use super::csv::{self, Csv};
use super::fields::{Fields, Raw, to_request};
use super::ndjson;
use super::nginx;
use super::scan::Scanner;
use super::stream::{Format, Limits, too_long};
use crate::model::Request;

/// How to cut and parse one file's records.
pub struct Records {
    kind: Kind,
}

enum Kind {
    Ndjson,
    Nginx,
    Csv(Csv),
}

/// Where a record sits in the data given to [`Records::each`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct At {
    /// Byte offset of the record's first byte.
    pub offset: usize,
    /// Its length in bytes, newline excluded.
    pub len: usize,
    /// 1-based line of its first byte.
    pub line: u32,
    /// Index of the row within the record (an Event Hub `records` line
    /// holds several; 0 otherwise).
    pub sub: u16,
}

impl Records {
    /// Recognises a line-oriented gateway log from the start of a file (BOM
    /// already removed): NDJSON rows, nginx JSON lines, or a CSV header.
    /// Returns the reader and the bytes and lines of the header to skip.
    pub fn sniff(head: &[u8]) -> Option<(Records, usize, u32)> {
        let mut skipped_lines = 0u32;
        let mut rest = head;
        // The first non-blank line decides.
        let line = loop {
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let line = rest.get(..end).unwrap_or_default();
            if !line.trim_ascii().is_empty() || end >= rest.len() {
                break line;
            }
            skipped_lines += 1;
            rest = rest.get(end + 1..).unwrap_or_default();
        };
        let trimmed = line.trim_ascii();
        if trimmed.first() == Some(&b'{') {
            if super::is_log_line(trimmed) {
                return Some((Records { kind: Kind::Ndjson }, 0, 0));
            }
            if super::is_nginx_line(trimmed) {
                return Some((Records { kind: Kind::Nginx }, 0, 0));
            }
            return None;
        }
        let end = csv::first_record_end(rest).unwrap_or(rest.len());
        let text = std::str::from_utf8(rest.get(..end).unwrap_or_default()).ok()?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let format = Csv::from_header(text, Limits::MAX_LINE).ok()?;
        let header_lines = skipped_lines + text.matches('\n').count() as u32 + 1;
        let skip = head.len() - rest.len() + end;
        Some((
            Records {
                kind: Kind::Csv(format),
            },
            skip,
            header_lines,
        ))
    }

    /// Where the last complete record of `block` ends (just after its
    /// newline), or `None` when it holds no newline outside quotes.
    pub fn cut(&self, block: &[u8]) -> Option<usize> {
        match &self.kind {
            Kind::Ndjson | Kind::Nginx => memchr::memrchr(b'\n', block).map(|p| p + 1),
            Kind::Csv(c) => c.cut(block),
        }
    }

    /// Calls `visit` for every row of `data` (which starts at a record
    /// start and ends at a record end), with its place, or the reason it
    /// is not a row (located the same way). Blank lines are skipped.
    pub fn each(&self, data: &[u8], visit: &mut dyn FnMut(At, Result<&Request<'_>, String>)) {
        let max = Limits::MAX_LINE;
        match &self.kind {
            Kind::Ndjson | Kind::Nginx => {
                let mut scanner = Scanner::default();
                let mut operation = String::new();
                let mut offset = 0usize;
                let mut line_no = 0u32;
                for raw in data.split_inclusive(|&c| c == b'\n') {
                    line_no = line_no.saturating_add(1);
                    let line = raw.strip_suffix(b"\n").unwrap_or(raw);
                    let mut at = At {
                        offset,
                        len: line.len(),
                        line: line_no,
                        sub: 0,
                    };
                    offset += raw.len();
                    if line.len() > max {
                        visit(at, Err(too_long(line.len() as u64, max)));
                        continue;
                    }
                    if matches!(self.kind, Kind::Ndjson) {
                        ndjson::parse_line(&mut scanner, line, |row| {
                            match row {
                                Ok(r) => visit(at, Ok(&r)),
                                Err(m) => visit(at, Err(m)),
                            }
                            at.sub = at.sub.saturating_add(1);
                        });
                    } else if let Err(m) =
                        nginx::parse_line(line, &mut operation, |r| visit(at, Ok(r)))
                    {
                        visit(at, Err(m));
                    }
                }
            }
            Kind::Csv(format) => {
                let mut rest = data;
                let mut line_no = 0u32;
                let mut rec = Vec::new();
                while !rest.is_empty() {
                    let offset = data.len() - rest.len();
                    let start = line_no.saturating_add(1);
                    let (parsed, tail, lines) = csv::record(rest, &mut rec);
                    let len = rest.len() - tail.len();
                    rest = tail;
                    line_no = line_no.saturating_add(lines);
                    let raw = data.get(offset..offset + len).unwrap_or_default();
                    let at = At {
                        offset,
                        len: raw.strip_suffix(b"\n").unwrap_or(raw).len(),
                        line: start,
                        sub: 0,
                    };
                    if len > max {
                        visit(at, Err(too_long(len as u64, max)));
                        continue;
                    }
                    if let Err(m) = parsed {
                        visit(at, Err(m));
                        continue;
                    }
                    if rec.len() == 1 && rec.first().is_some_and(|f| f.trim().is_empty()) {
                        continue;
                    }
                    if rec.len() != format.columns.len() {
                        let m = format!(
                            "row has {} fields, the header has {}",
                            rec.len(),
                            format.columns.len()
                        );
                        visit(at, Err(m));
                        continue;
                    }
                    let mut fields = Fields::default();
                    for (col, value) in format.columns.iter().zip(&rec) {
                        if let Some(f) = col {
                            fields.set(*f, Raw::Str(value.as_ref()));
                        }
                    }
                    match to_request(&fields) {
                        Ok(r) => visit(at, Ok(&r)),
                        Err(m) => visit(at, Err(m)),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (At, Result<(u16, String), String>);

    fn rows(text: &str) -> Vec<Row> {
        let (records, skip, _) = Records::sniff(text.as_bytes()).expect("a log");
        let mut out = Vec::new();
        records.each(&text.as_bytes()[skip..], &mut |at, r| {
            out.push((at, r.map(|r| (r.response_code, r.operation_id.to_string()))))
        });
        out
    }

    #[test]
    fn ndjson_rows_are_located_and_bad_lines_named() {
        let text = "{\"TimeGenerated\":\"2024-05-18T06:40:00Z\",\"ResponseCode\":200,\"OperationId\":\"a\"}\n\
                    \n\
                    {\"TimeGenerated\":\"2024-05-18T06:41:00Z\",\"ResponseCode\":\"x\"}\n\
                    {\"TimeGenerated\":\"2024-05-18T06:42:00Z\",\"ResponseCode\":503,\"OperationId\":\"b\"}\n";
        let got = rows(text);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].1, Ok((200, "a".into())));
        assert_eq!((got[0].0.offset, got[0].0.line), (0, 1));
        assert!(got[1].1.is_err());
        assert_eq!(got[1].0.line, 3);
        assert_eq!(got[2].0.line, 4);
        let at = got[2].0;
        assert!(text[at.offset..at.offset + at.len].ends_with("\"b\"}"));
    }

    #[test]
    fn records_payload_rows_get_sub_indexes() {
        let text = "{\"records\":[{\"time\":\"2024-05-18T06:40:00Z\",\"properties\":{\"responseCode\":200,\"operationId\":\"a\"}},{\"time\":\"2024-05-18T06:40:01Z\",\"properties\":{\"responseCode\":500,\"operationId\":\"b\"}}]}\n";
        let (records, _, _) = Records::sniff(text.as_bytes()).expect("a log");
        let mut subs = Vec::new();
        records.each(text.as_bytes(), &mut |at, r| {
            subs.push((at.sub, r.map(|r| r.response_code).ok()))
        });
        assert_eq!(subs, vec![(0, Some(200)), (1, Some(500))]);
    }

    #[test]
    fn csv_skips_its_header_and_counts_quoted_newlines() {
        let text = "TimeGenerated,ResponseCode,OperationId,LastErrorMessage\n\
                    2024-05-18T06:40:00Z,200,a,\n\
                    2024-05-18T06:41:00Z,500,b,\"two\nlines\"\n\
                    2024-05-18T06:42:00Z,404,c,\n";
        let got = rows(text);
        let lines: Vec<u32> = got.iter().map(|(a, _)| a.line).collect();
        assert_eq!(
            lines,
            vec![1, 2, 4],
            "relative to the data after the header"
        );
        assert_eq!(got[1].1, Ok((500, "b".into())));
        let (_, skip, header_lines) = Records::sniff(text.as_bytes()).unwrap();
        assert_eq!((skip, header_lines), (56, 1));
    }

    #[test]
    fn not_a_line_log() {
        assert!(Records::sniff(b"[{\"a\":1}]").is_none());
        assert!(Records::sniff(b"{\"value\":[]}\n").is_none());
        assert!(Records::sniff(b"a,b,c\n1,2,3\n").is_none());
    }
}
