//! The fast path of NDJSON reading: a hand-written scanner that walks one
//! JSON object once, keeps the values of the keys apimedic uses as borrowed
//! slices, and skips everything else without building a tree. It accepts a
//! subset of JSON (no escapes inside used string values, `properties` as an
//! object) and says `false` for anything else, so the caller falls back to
//! serde_json, which decides and words the error. It never panics: every
//! index goes through `get`.
//!
//! Finding where strings end is most of the work. A first pass (SSE2 on
//! x86_64) marks every quote, backslash and non-ASCII byte of the line in
//! bitmasks, and lists the quote positions; on a line without backslashes
//! every quote delimits a string, so the walk takes string ends from that
//! list instead of searching byte by byte (a search per string mispredicts a
//! branch per string and chains each token on the previous one). Lines with
//! backslashes use an eight-bytes-at-a-time search.
//!
//! Rows of one export share their key order, so a flat row is first walked
//! against the layout of the last one (`Template`) straight over its bytes,
//! before any quote pass: each key compared whole with the `{`/`,` before
//! it and the `:` after, string values run to their closing quote. NDJSON
//! walks it over the chunk before splitting the line off
//! ([`Scanner::row_at`]: strings there must be plain ASCII, and the row must
//! end at a newline). Any difference sends the row through the quote pass
//! and the general walk, which then teaches the template the new layout.

use super::fields::{Context, Field, Fields, Raw, classify};
use crate::model::same_bytes;
use std::cell::Cell;

mod quotes;

pub(super) use quotes::next_line;
use quotes::quote_or_backslash;

/// Deepest nesting the scanner follows before handing the row to serde.
const MAX_DEPTH: u32 = 48;

/// Scans one row object. `true` when `out` holds the row's fields; `false`
/// when the line needs the serde path (escapes in a used value, odd shapes,
/// or not valid JSON at all).
pub(super) fn scan_row<'a>(s: &'a str, out: &mut Fields<'a>) -> bool {
    scan_with(&Swar, s, out)
}

fn scan_with<'a, S: Strings>(strings: &S, s: &'a str, out: &mut Fields<'a>) -> bool {
    let b = s.as_bytes();
    let i = ws(b, 0);
    match object(strings, s, i, Context::Row, out, 0) {
        Some(end) => ws(b, end) == b.len(),
        None => false,
    }
}

/// What a line turned out to be.
pub(super) enum Line<'a> {
    /// Valid UTF-8 and scanned: the fields are in `out`.
    Scanned,
    /// Valid UTF-8 the scanner does not handle: for serde.
    Other(&'a str),
    /// Not UTF-8: the 1-based index of the first bad byte.
    BadUtf8(usize),
}

/// The per-thread state of the fast path: the quote positions, reused.
#[derive(Default)]
pub(super) struct Scanner {
    /// Quote positions of the line being scanned at its front; the
    /// buffer only grows, and is kept longer than the line so positions
    /// can be written eight at a time.
    quotes: Vec<u32>,
    template: Template,
}

impl Scanner {
    /// The fast path over a chunk: a row at the front of `data` with the
    /// last row's layout, every string in it plain ASCII. `out` holds its
    /// fields; the answer is the index after its closing `}` (the caller
    /// checks a line ends there). `None`: split the line off and take
    /// [`line`](Self::line).
    #[inline]
    pub(super) fn row_at<'a>(&self, data: &'a [u8], out: &mut Fields<'a>) -> Option<usize> {
        self.template.walk_bytes(data, out)
    }

    /// Validates and scans one line (without its newline); `ascii` is the
    /// same line as text when [`next_line`] already found it all ASCII.
    pub(super) fn line<'a>(
        &mut self,
        line: &'a [u8],
        ascii: Option<&'a str>,
        out: &mut Fields<'a>,
    ) -> Line<'a> {
        let text = match ascii.map_or_else(|| std::str::from_utf8(line), Ok) {
            Ok(t) => t,
            Err(e) => return Line::BadUtf8(e.valid_up_to() + 1),
        };
        // Most rows have the last row's layout: walked straight over the
        // bytes, with no quote pass.
        if self.template.walk(text, out) {
            return Line::Scanned;
        }
        *out = Fields::default();
        let Some(marks) = quotes::mark(&mut self.quotes, line) else {
            return Line::Other(text);
        };
        let scanned = if marks.backslash {
            scan_with(&Swar, text, out)
        } else {
            let at = self.quotes.get(..marks.count).unwrap_or_default();
            let quotes = Quotes {
                at,
                next: Cell::new(0),
            };
            let scanned = scan_with(&quotes, text, out);
            if scanned {
                self.template = Template::learn(text, at).unwrap_or_default();
            }
            scanned
        };
        if scanned {
            Line::Scanned
        } else {
            Line::Other(text)
        }
    }
}

/// How the scanner finds the end of a string.
trait Strings {
    /// The index of the closing quote of a string starting at `start` (after
    /// its opening quote), or `None` if it holds a backslash or does not end.
    fn plain_end(&self, b: &[u8], start: usize) -> Option<usize>;
    /// The index after the closing quote of any string starting at `start`.
    fn skip(&self, b: &[u8], start: usize) -> Option<usize>;
}

/// Eight bytes at a time; handles escapes.
struct Swar;

impl Strings for Swar {
    fn plain_end(&self, b: &[u8], start: usize) -> Option<usize> {
        plain_string_end(b, start)
    }
    fn skip(&self, b: &[u8], start: usize) -> Option<usize> {
        skip_string(b, start)
    }
}

/// Quote positions of a line without backslashes: every quote delimits a
/// string, and strings are visited in order, so the string opening at a
/// quote is the `next` pair of positions.
struct Quotes<'q> {
    at: &'q [u32],
    next: Cell<usize>,
}

impl Quotes<'_> {
    /// The closing quote of the string whose opening quote is at `start - 1`.
    #[inline(always)]
    fn end(&self, start: usize) -> Option<usize> {
        let k = self.next.get();
        let open = *self.at.get(k)? as usize;
        let close = *self.at.get(k + 1)? as usize;
        self.next.set(k + 2);
        (open + 1 == start).then_some(close)
    }
}

impl Strings for Quotes<'_> {
    #[inline(always)]
    fn plain_end(&self, _: &[u8], start: usize) -> Option<usize> {
        self.end(start)
    }
    #[inline(always)]
    fn skip(&self, _: &[u8], start: usize) -> Option<usize> {
        self.end(start).map(|q| q + 1)
    }
}

/// One key of a flat row layout.
struct Entry {
    /// What precedes the value: `{` or `,`, then the key in quotes exactly
    /// as the rows write it, then `:`, and a string value's opening quote
    /// (one compare checks them all).
    pat: Box<[u8]>,
    field: Option<Field>,
    /// The value is a string (two quotes); else a number or literal.
    string: bool,
}

/// The key layout of a flat row (`{"k":v,...}`, no whitespace, no nested
/// values, no `properties`/`lastError`), learnt from one row and checked
/// against the next.
#[derive(Default)]
struct Template {
    entries: Vec<Entry>,
}

/// A number or literal value at `i`: the value and the index after it.
#[inline(always)]
fn bare_scalar(s: &str, i: usize) -> Option<(Raw<'_>, usize)> {
    let b = s.as_bytes();
    match *b.get(i)? {
        b'-' | b'0'..=b'9' => {
            let end = number_end(b, i);
            Some((Raw::Num(s.get(i..end)?), end))
        }
        _ => literal(b, i),
    }
}

impl Template {
    /// The layout of a flat row whose quote positions are `at`; `None` for
    /// a row the template cannot describe.
    fn learn(s: &str, at: &[u32]) -> Option<Template> {
        let b = s.as_bytes();
        if b.first() != Some(&b'{') {
            return None;
        }
        let mut entries = Vec::new();
        let mut i = 0usize;
        let mut q = 0usize;
        loop {
            let open = *at.get(q)? as usize;
            let close = *at.get(q + 1)? as usize;
            if open != i + 1 || b.get(close + 1) != Some(&b':') {
                return None;
            }
            let key = b.get(open + 1..close)?;
            let field = classify(key, Context::Row);
            if matches!(field, Some(Field::Properties | Field::LastError)) {
                return None;
            }
            let v = close + 2;
            let (string, end) = if b.get(v) == Some(&b'"') {
                if *at.get(q + 2)? as usize != v {
                    return None;
                }
                q += 4;
                (true, *at.get(q - 1)? as usize + 1)
            } else {
                q += 2;
                (false, bare_scalar(s, v)?.1)
            };
            let mut pat = Vec::with_capacity(key.len() + 5);
            pat.push(if entries.is_empty() { b'{' } else { b',' });
            pat.push(b'"');
            pat.extend_from_slice(key);
            pat.extend_from_slice(b"\":");
            if string {
                pat.push(b'"');
            }
            entries.push(Entry {
                pat: pat.into(),
                field,
                string,
            });
            match b.get(end) {
                Some(b',') => i = end,
                Some(b'}') if end + 1 == b.len() && q == at.len() => {
                    return Some(Template { entries });
                }
                _ => return None,
            }
        }
    }

    /// Scans a row with this layout into `out`, straight over its bytes:
    /// each key, with the `{` or `,` before it and the `:` after, compared
    /// whole; string values run to the next quote (a backslash anywhere in
    /// one, used or not, sends the row to the general walk), numbers and
    /// literals as the general walk reads them. `false` (with `out` partly
    /// filled) at the first difference.
    #[inline]
    fn walk<'a>(&self, s: &'a str, out: &mut Fields<'a>) -> bool {
        let b = s.as_bytes();
        let string = |start: usize| {
            let end = plain_string_end(b, start)?;
            Some((s.get(start..end)?, end))
        };
        let number = |i: usize| {
            let end = number_end(b, i);
            Some((s.get(i..end)?, end))
        };
        self.walk_in(b, out, string, number) == Some(b.len())
    }

    /// [`walk`](Self::walk) over the front of a chunk's bytes, before they
    /// are split into lines: the index after the row's closing `}`. `None`
    /// as soon as a string value holds a newline, a backslash or a byte
    /// >= 0x80 (the line way validates and unescapes those rows).
    #[inline]
    fn walk_bytes<'a>(&self, b: &'a [u8], out: &mut Fields<'a>) -> Option<usize> {
        let number = |i: usize| Some(quotes::number_token(b, i));
        self.walk_in(b, out, |start| quotes::ascii_string(b, start), number)
    }

    /// The walk itself: `string(start)` reads a string value starting after
    /// its opening quote (its text and closing quote), `number(i)` the
    /// number token at `i` (its text and the index after it). The index
    /// after the closing `}`.
    #[inline(always)]
    fn walk_in<'a>(
        &self,
        b: &'a [u8],
        out: &mut Fields<'a>,
        string: impl Fn(usize) -> Option<(&'a str, usize)>,
        number: impl Fn(usize) -> Option<(&'a str, usize)>,
    ) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let mut i = 0usize;
        for e in &self.entries {
            let v = i + e.pat.len();
            if !b.get(i..v).is_some_and(|p| same_bytes(p, &e.pat)) {
                return None;
            }
            i = if e.string {
                let (text, end) = string(v)?;
                if let Some(f) = e.field {
                    out.set(f, Raw::Str(text));
                }
                end + 1
            } else {
                let (raw, end) = match *b.get(v)? {
                    b'-' | b'0'..=b'9' => {
                        let (text, end) = number(v)?;
                        (Raw::Num(text), end)
                    }
                    _ => literal(b, v)?,
                };
                if let Some(f) = e.field {
                    out.set(f, raw);
                }
                end
            };
        }
        (b.get(i) == Some(&b'}')).then_some(i + 1)
    }
}

#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = b.get(i) {
        i += 1;
    }
    i
}

/// A string without escapes starting after its opening quote: the index of
/// its closing quote, or `None` when it has a backslash or does not end.
#[inline(always)]
fn plain_string_end(b: &[u8], start: usize) -> Option<usize> {
    let p = quote_or_backslash(b, start)?;
    (b.get(p) == Some(&b'"')).then_some(p)
}

/// Skips a string with any escapes, starting after its opening quote; the
/// index after its closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let p = quote_or_backslash(b, i)?;
        if b.get(p) == Some(&b'"') {
            return Some(p + 1);
        }
        i = p + 2;
    }
}

#[inline(always)]
fn is_number_byte(c: u8) -> bool {
    matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

/// A number token's end (loosely checked: the conversion of used values
/// validates it, skipped values only need their extent).
#[inline(always)]
fn number_end(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while b.get(j).is_some_and(|&c| is_number_byte(c)) {
        j += 1;
    }
    j
}

#[inline(always)]
fn literal(b: &[u8], i: usize) -> Option<(Raw<'static>, usize)> {
    let rest = b.get(i..)?;
    if rest.starts_with(b"true") {
        Some((Raw::Bool(true), i + 4))
    } else if rest.starts_with(b"false") {
        Some((Raw::Bool(false), i + 5))
    } else if rest.starts_with(b"null") {
        Some((Raw::Null, i + 4))
    } else {
        None
    }
}

/// A scalar value for a used key: the value and the index after it.
#[inline(always)]
fn scalar<'a, S: Strings>(
    strings: &S,
    s: &'a str,
    i: usize,
    depth: u32,
) -> Option<(Raw<'a>, usize)> {
    let b = s.as_bytes();
    match *b.get(i)? {
        b'"' => {
            let end = strings.plain_end(b, i + 1)?;
            Some((Raw::Str(s.get(i + 1..end)?), end + 1))
        }
        b'-' | b'0'..=b'9' => {
            let end = number_end(b, i);
            Some((Raw::Num(s.get(i..end)?), end))
        }
        b'{' | b'[' => Some((Raw::Nested, skip_value(strings, b, i, depth)?)),
        _ => literal(b, i),
    }
}

/// Skips any JSON value; the index after it.
#[inline(always)]
fn skip_value<S: Strings>(strings: &S, b: &[u8], i: usize, depth: u32) -> Option<usize> {
    match *b.get(i)? {
        b'"' => strings.skip(b, i + 1),
        b'-' | b'0'..=b'9' => Some(number_end(b, i)),
        b'{' | b'[' => skip_nested(strings, b, i, depth),
        _ => literal(b, i).map(|(_, end)| end),
    }
}

/// Skips an object or array by matching brackets (strings skipped whole),
/// checking that each closer matches its opener.
fn skip_nested<S: Strings>(strings: &S, b: &[u8], mut i: usize, depth: u32) -> Option<usize> {
    // One bit per open bracket: 1 = object, 0 = array.
    let mut stack: u64 = 0;
    let mut open: u32 = 0;
    let limit = MAX_DEPTH.saturating_sub(depth).min(63);
    loop {
        let c = *b.get(i)?;
        match c {
            b'{' | b'[' => {
                open += 1;
                if open > limit {
                    return None;
                }
                stack = (stack << 1) | u64::from(c == b'{');
                i += 1;
            }
            b'}' | b']' => {
                if open == 0 || (stack & 1 == 1) != (c == b'}') {
                    return None;
                }
                open -= 1;
                stack >>= 1;
                i += 1;
                if open == 0 {
                    return Some(i);
                }
            }
            b'"' => i = strings.skip(b, i + 1)?,
            _ => i += 1,
        }
    }
}

/// Scans the object at `i` (which must be `{`), filling `out`; the index
/// after its closing brace.
fn object<'a, S: Strings>(
    strings: &S,
    s: &'a str,
    mut i: usize,
    ctx: Context,
    out: &mut Fields<'a>,
    depth: u32,
) -> Option<usize> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'{') || depth > MAX_DEPTH {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = strings.plain_end(b, i + 1)?;
        let key = b.get(i + 1..key_end)?;
        i = ws(b, key_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        i = match classify(key, ctx) {
            None => skip_value(strings, b, i, depth)?,
            Some(Field::Properties) => match b.get(i) {
                Some(b'{') => object(strings, s, i, Context::Row, out, depth + 1)?,
                // A string `properties` holds JSON to decode: serde's job.
                _ => return None,
            },
            Some(Field::LastError) => match b.get(i) {
                Some(b'{') => object(strings, s, i, Context::LastError, out, depth + 1)?,
                _ => skip_value(strings, b, i, depth)?,
            },
            Some(f) => {
                let (v, end) = scalar(strings, s, i, depth)?;
                out.set(f, v);
                end
            }
        };
        i = ws(b, i);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return Some(i + 1),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields::to_request;
    use super::*;

    fn scan(s: &str) -> Option<Fields<'_>> {
        let mut f = Fields::default();
        scan_row(s, &mut f).then_some(f)
    }

    #[test]
    fn scans_the_flat_table_shape() {
        let line = r#"{"TimeGenerated":"2024-05-14T09:12:03.512Z","ApiId":"orders-api","OperationId":"get-order","Headers":{"a":["x","y\"z"]},"ResponseCode":503,"BackendResponseCode":503,"IsRequestSuccess":false,"TotalTime":2140,"BackendTime":2101,"Extra":null,"Neg":-1.5e3,"LastErrorReason":""}"#;
        let f = scan(line).expect("fast path");
        let r = to_request(&f).unwrap();
        assert_eq!(
            (r.api_id, r.operation_id, r.response_code),
            ("orders-api", "get-order", 503)
        );
        assert_eq!((r.total_time_ms, r.backend_time_ms), (2140, Some(2101)));
    }

    #[test]
    fn scans_nested_storage_shape() {
        let line = r#"{ "time": "2024-05-14T09:12:05Z", "durationMs": 4, "location": "West Europe",
            "properties": {"responseCode": 401, "apiId": "orders-api",
              "lastError": {"source": "validate-jwt", "reason": "TokenExpired"}}}"#;
        let f = scan(line).expect("fast path");
        let r = to_request(&f).unwrap();
        assert_eq!(
            (r.response_code, r.total_time_ms, r.region),
            (401, 4, "West Europe")
        );
        assert_eq!(
            (r.last_error_reason, r.last_error_source),
            ("TokenExpired", "validate-jwt")
        );
    }

    /// The template path must give exactly what the general walk gives,
    /// and refuse whatever that walk would not take.
    #[test]
    fn template_matches_the_general_walk() {
        let base = r#"{"TimeGenerated":"2024-05-14T09:12:03.512Z","ApiId":"orders-api","ResponseCode":503,"IsRequestSuccess":false,"Caller":"10.1.2.3","TotalTime":2140,"X":null,"Region":"West Europe"}"#;
        let variants = [
            base.to_string(),
            base.replace("orders-api", "payments"),
            base.replace("\"ApiId\"", "\"apiid\""),
            base.replace("503", "\"503\""),
            base.replace("false", "\"False\""),
            base.replace(",\"X\":null", ""),
            base.replace("}", ",\"Y\":1}"),
            base.replace("{", "{ "),
            base.replace(":503", ":[503]"),
            base.replace(":503", ":tru"),
            base.replace("}", "}x"),
            base.replace(",\"Region\"", ",,\"Region\""),
            // Escapes in a skipped and in a used value, non-ASCII text, a
            // value cut short, an empty one.
            base.replace("10.1.2.3", "10.1\\\\2\\\"3"),
            base.replace("West Europe", "West \\\"Europe\\\""),
            base.replace("West Europe", "Westeuropa \u{e9}\u{1F600}"),
            base.replace("\"West Europe\"}", "\"West Europe}"),
            base.replace("orders-api", ""),
            base.replace("2140", "21.4e2"),
            base.replace(
                "\"ApiId\":\"orders-api\"",
                "\"ApiId\":\"orders\",\"a\":\"x\"",
            ),
        ];
        let mut scanner = Scanner::default();
        let mut walked = 0;
        for v in &variants {
            // Teach the template the base layout, then scan the variant.
            let mut f = Fields::default();
            assert!(matches!(
                scanner.line(base.as_bytes(), None, &mut f),
                Line::Scanned
            ));
            // The fast path itself, where it takes the row: what it read
            // must be what the general walk reads.
            let mut walk = Fields::default();
            if scanner.template.walk(v, &mut walk) {
                walked += 1;
                let mut general = Fields::default();
                assert!(scan_row(v, &mut general), "{v}");
                assert_eq!(walk, general, "{v}");
            }
            let mut via_template = Fields::default();
            let got = matches!(
                scanner.line(v.as_bytes(), None, &mut via_template),
                Line::Scanned
            );
            let mut general = Fields::default();
            let want = scan_row(v, &mut general);
            assert_eq!(got, want, "{v}");
            if want {
                assert_eq!(via_template, general, "{v}");
            }
        }
        // The base itself, a changed value, a changed string literal, the
        // non-ASCII value and the empty one take the fast path.
        assert_eq!(walked, 5);
    }

    #[test]
    fn hands_odd_lines_to_serde() {
        for line in [
            r#"{"ApiId":"a\"b","ResponseCode":200}"#,
            r#"{"properties":"{\"ApiId\":\"x\"}"}"#,
            r#"{"ApiId":"a","ResponseCode":200"#,
            r#"{"ApiId":"a",}"#,
            r#"{"ApiId":"a"} x"#,
            r#"{"a":[1,2}"#,
            r#"{"a":tru}"#,
            "[1,2]",
            "",
            "{",
            "{\"",
        ] {
            assert!(scan(line).is_none(), "{line}");
        }
        assert!(scan("{}").is_some());
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(scan(&deep).is_none());
    }
}
