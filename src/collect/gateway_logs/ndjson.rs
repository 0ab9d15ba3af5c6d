//! Newline-delimited JSON rows: one gateway log row per line, any shape
//! (flat table row, AzureDiagnostics row, storage record with `properties`,
//! or a whole `{"records":[...]}` Event Hub payload on one line). Each line
//! goes through the fast scanner; lines it cannot handle go through
//! serde_json, which also words the error for lines that are not JSON.

use super::fields::{Fields, fields_of_object, to_request};
use super::fold::{ChunkInfo, Fold, chunk_origin};
use super::scan::{Line, Scanner, next_line};
use super::stream::{Format, too_long};
use crate::model::Request;
use serde_json::{Map, Value};

/// The NDJSON format for the stream reader.
pub(super) struct Ndjson {
    pub(super) max_line: usize,
}

impl Format for Ndjson {
    fn cut(&self, block: &[u8]) -> Option<usize> {
        memchr::memrchr(b'\n', block).map(|p| p + 1)
    }

    fn cut_forward(&self, data: &[u8]) -> Option<usize> {
        memchr::memchr(b'\n', data).map(|p| p + 1)
    }

    fn chunk(&self, file: &str, seq: u32, data: &[u8], fold: &mut Fold) -> ChunkInfo {
        let mut info = ChunkInfo::new(seq);
        let mut rest = data;
        let mut line_no = 0u32;
        let mut scanner = Scanner::default();
        while !rest.is_empty() {
            line_no = line_no.saturating_add(1);
            // Most rows: the last row's layout, walked straight over the
            // chunk, ending at a newline (no separate line split).
            let mut fields = Fields::default();
            if let Some(end) = scanner.row_at(rest, &mut fields)
                && end < self.max_line
                && let Some(tail) = line_break(rest, end)
                && fields.looks_like_log_row()
            {
                rest = tail;
                // `ref`: the request is read where `to_request` wrote it
                // (moving it out was a 232-byte copy per row).
                match to_request(&fields) {
                    Ok(ref r) => fold.add(r, || chunk_origin(file, seq, line_no)),
                    Err(message) => info.reject(line_no, message),
                }
                continue;
            }
            let (line, ascii, tail) = next_line(rest);
            rest = tail;
            if line.len() > self.max_line {
                info.reject(line_no, too_long(line.len() as u64, self.max_line));
                continue;
            }
            parse_text(&mut scanner, line, ascii, |row| match row {
                Ok(r) => fold.add(&r, || chunk_origin(file, seq, line_no)),
                Err(message) => info.reject(line_no, message),
            });
        }
        info.lines = line_no;
        info
    }
}

/// What follows a row that ends at `end` when its line ends there too
/// (`\n`, `\r\n` or the end of the data); `None` when anything else
/// follows it on the line.
#[inline(always)]
fn line_break(data: &[u8], end: usize) -> Option<&[u8]> {
    match data.get(end) {
        None => Some(&[]),
        Some(b'\n') => data.get(end + 1..),
        Some(b'\r') if data.get(end + 1) == Some(&b'\n') => data.get(end + 2..),
        Some(_) => None,
    }
}

/// Parses one line, calling `row` for each row it holds: none for a blank
/// line, one for a row, one per element of a `records` payload.
pub(super) fn parse_line(
    scanner: &mut Scanner,
    line: &[u8],
    row: impl FnMut(Result<Request<'_>, String>),
) {
    parse_text(scanner, line, None, row);
}

/// [`parse_line`] for a line [`next_line`] split off, with its text when
/// that found it all ASCII.
fn parse_text(
    scanner: &mut Scanner,
    line: &[u8],
    ascii: Option<&str>,
    mut row: impl FnMut(Result<Request<'_>, String>),
) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let ascii = ascii.map(|t| t.strip_suffix('\r').unwrap_or(t));
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let mut fields = Fields::default();
    let text = match scanner.line(line, ascii, &mut fields) {
        // A line without a timestamp and code may be a `records` payload:
        // serde decides (and words the error) then.
        Line::Scanned if fields.looks_like_log_row() => return row(to_request(&fields)),
        Line::Scanned => match std::str::from_utf8(line) {
            Ok(t) => t,
            Err(_) => return,
        },
        Line::Other(t) => t,
        Line::BadUtf8(at) => {
            return row(Err(format!(
                "invalid UTF-8 at byte {at} of the line; gateway logs are UTF-8 JSON"
            )));
        }
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return row(Err(format!("not valid JSON: {e}"))),
    };
    let Value::Object(map) = &value else {
        return row(Err(format!(
            "not a JSON object but {}: each line must be one {{...}} row",
            kind(&value)
        )));
    };
    match records_of(map) {
        Some(records) => {
            for (i, r) in records.iter().enumerate() {
                object_row(r, &mut |res: Result<Request<'_>, String>| {
                    row(res.map_err(|m| format!("records[{i}]: {m}")))
                });
            }
        }
        None => object_row(&value, &mut row),
    }
}

/// The `records` array of an Event Hub payload, when the object is one.
pub(super) fn records_of(map: &Map<String, Value>) -> Option<&Vec<Value>> {
    if map.len() > 3 {
        return None;
    }
    map.iter().find_map(|(k, v)| match v {
        Value::Array(a) if k.eq_ignore_ascii_case("records") => Some(a),
        _ => None,
    })
}

/// One parsed row object.
pub(super) fn object_row(v: &Value, row: &mut impl FnMut(Result<Request<'_>, String>)) {
    let Value::Object(map) = v else {
        return row(Err(format!("a row must be a JSON object, not {}", kind(v))));
    };
    let mut scratch = None;
    match fields_of_object(map, &mut scratch) {
        Ok(fields) => row(to_request(&fields)),
        Err(m) => row(Err(m)),
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
