//! CSV gateway logs as the Log Analytics portal exports them: a header row
//! of column names (any order, any case, legacy suffixes allowed), then one
//! row per request. RFC 4180 quoting: fields in double quotes may hold
//! commas, newlines and `""`. Read in parallel like NDJSON; blocks are cut
//! only at newlines outside quotes.

use super::fields::{Field, Fields, Raw, classify_row, shorten, to_request};
use super::fold::{ChunkInfo, Fold, chunk_origin};
use super::stream::{Format, too_long};
use std::borrow::Cow;

/// The CSV format: what each column means.
pub(super) struct Csv {
    pub(super) columns: Vec<Option<Field>>,
    pub(super) max_line: usize,
}

/// Splits the record starting at `data[0]` into `out` (cleared first);
/// returns why it is broken if it is, the bytes after it, and the number
/// of lines it spans.
pub(super) fn record<'a>(
    data: &'a [u8],
    out: &mut Vec<Cow<'a, str>>,
) -> (Result<(), String>, &'a [u8], u32) {
    out.clear();
    // Find the record's end first: the first newline outside quotes.
    let mut in_quotes = false;
    let mut end = data.len();
    let mut lines = 1u32;
    let mut i = 0;
    while let Some(p) = data.get(i..).and_then(|d| memchr::memchr2(b'"', b'\n', d)) {
        let at = i + p;
        if data.get(at) == Some(&b'"') {
            in_quotes = !in_quotes;
        } else if in_quotes {
            lines += 1;
        } else {
            end = at;
            break;
        }
        i = at + 1;
    }
    let rest = data.get(end + 1..).unwrap_or_default();
    let raw = data.get(..end).unwrap_or_default();
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t,
        Err(e) => {
            let msg = format!(
                "invalid UTF-8 at byte {} of the row; save the export as UTF-8",
                e.valid_up_to() + 1
            );
            return (Err(msg), rest, lines);
        }
    };
    (split_fields_into(text, out), rest, lines)
}

/// The fields of one record's text.
pub(super) fn split_fields(text: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut out = Vec::new();
    split_fields_into(text, &mut out)?;
    Ok(out)
}

/// Appends the fields of one record's text to `out` (reused per row).
fn split_fields_into<'a>(text: &'a str, out: &mut Vec<Cow<'a, str>>) -> Result<(), String> {
    let mut rest = text;
    loop {
        if let Some(after) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut s = after;
            loop {
                let Some(q) = s.find('"') else {
                    return Err(format!(
                        "column {}: a quoted field does not end",
                        out.len() + 1
                    ));
                };
                value.push_str(s.get(..q).unwrap_or_default());
                s = s.get(q + 1..).unwrap_or_default();
                match s.strip_prefix('"') {
                    Some(more) => {
                        value.push('"');
                        s = more;
                    }
                    None => break,
                }
            }
            out.push(Cow::Owned(value));
            if s.is_empty() {
                return Ok(());
            }
            match s.strip_prefix(',') {
                Some(more) => rest = more,
                None => {
                    return Err(format!(
                        "column {}: text after a closing quote: {}",
                        out.len(),
                        shorten(s)
                    ));
                }
            }
        } else {
            match rest.find(',') {
                Some(c) => {
                    out.push(Cow::Borrowed(rest.get(..c).unwrap_or_default()));
                    rest = rest.get(c + 1..).unwrap_or_default();
                }
                None => {
                    out.push(Cow::Borrowed(rest));
                    return Ok(());
                }
            }
        }
    }
}

impl Csv {
    /// The column map of a header row, or why it is not a gateway log CSV.
    pub(super) fn from_header(text: &str, max_line: usize) -> Result<Csv, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let names = split_fields(text)?;
        let columns: Vec<Option<Field>> = names
            .iter()
            .map(|n| {
                // The portal's export names it `TimeGenerated [UTC]`.
                let n = n.trim();
                let n = n.split_once(" [").map_or(n, |(name, _)| name);
                classify_row(n.as_bytes())
            })
            .collect();
        let has = |f: Field| columns.contains(&Some(f));
        if !(has(Field::TimeGenerated) || has(Field::Time)) || !has(Field::ResponseCode) {
            let listed: Vec<&str> = names.iter().take(12).map(|n| n.as_ref()).collect();
            return Err(format!(
                "the header has no {} column, so this is not a gateway log export \
                 (columns: {}{})",
                if has(Field::ResponseCode) {
                    "TimeGenerated"
                } else {
                    "ResponseCode"
                },
                listed.join(", "),
                if names.len() > 12 { ", …" } else { "" }
            ));
        }
        Ok(Csv { columns, max_line })
    }
}

/// Where the first record of `data` ends (after its newline), quotes honoured.
pub(super) fn first_record_end(data: &[u8]) -> Option<usize> {
    let mut in_quotes = false;
    let mut i = 0;
    while let Some(p) = data.get(i..).and_then(|d| memchr::memchr2(b'"', b'\n', d)) {
        let at = i + p;
        if data.get(at) == Some(&b'"') {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            return Some(at + 1);
        }
        i = at + 1;
    }
    None
}

impl Format for Csv {
    fn cut(&self, block: &[u8]) -> Option<usize> {
        // Quote parity at a newline = parity of all quotes minus those after it.
        let total = memchr::memchr_iter(b'"', block).count();
        let mut after = 0usize;
        for p in memchr::memrchr2_iter(b'"', b'\n', block) {
            if block.get(p) == Some(&b'"') {
                after += 1;
            } else if (total - after).is_multiple_of(2) {
                return Some(p + 1);
            }
        }
        None
    }

    fn cut_forward(&self, data: &[u8]) -> Option<usize> {
        first_record_end(data)
    }

    fn chunk(&self, file: &str, seq: u32, data: &[u8], fold: &mut Fold) -> ChunkInfo {
        let mut info = ChunkInfo::new(seq);
        let mut rest = data;
        let mut line_no = 0u32;
        let mut rec = Vec::new();
        if seq == 0 {
            // The header row heads the first chunk.
            let (_, tail, lines) = record(rest, &mut rec);
            rest = tail;
            line_no = lines;
        }
        while !rest.is_empty() {
            let start = line_no.saturating_add(1);
            let before = rest.len();
            let (parsed, tail, lines) = record(rest, &mut rec);
            let len = before - tail.len();
            rest = tail;
            line_no = line_no.saturating_add(lines);
            if len > self.max_line {
                info.reject(start, too_long(len as u64, self.max_line));
                continue;
            }
            if let Err(m) = parsed {
                info.reject(start, m);
                continue;
            }
            if rec.len() == 1 && rec.first().is_some_and(|f| f.trim().is_empty()) {
                continue;
            }
            if rec.len() != self.columns.len() {
                info.reject(
                    start,
                    format!(
                        "row has {} fields, the header has {}",
                        rec.len(),
                        self.columns.len()
                    ),
                );
                continue;
            }
            let mut fields = Fields::default();
            for (col, value) in self.columns.iter().zip(&rec) {
                if let Some(f) = col {
                    fields.set(*f, Raw::Str(value.as_ref()));
                }
            }
            match to_request(&fields) {
                Ok(r) => fold.add(&r, || chunk_origin(file, seq, start)),
                Err(m) => info.reject(start, m),
            }
        }
        info.lines = line_no;
        info
    }
}
