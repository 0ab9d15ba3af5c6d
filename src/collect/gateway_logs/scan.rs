//! The fast path of NDJSON reading: a hand-written scanner that walks one
//! JSON object once, keeps the values of the keys apimedic uses as borrowed
//! slices, and skips everything else without building a tree. It accepts a
//! subset of JSON (no escapes inside used string values, `properties` as an
//! object) and says `false` for anything else, so the caller falls back to
//! serde_json, which decides and words the error. It never panics: every
//! index goes through `get`.

use super::fields::{Context, Field, Fields, Raw, classify};

/// Deepest nesting the scanner follows before handing the row to serde.
const MAX_DEPTH: u32 = 48;

/// Scans one row object. `true` when `out` holds the row's fields; `false`
/// when the line needs the serde path (escapes in a used value, odd shapes,
/// or not valid JSON at all).
pub(super) fn scan_row<'a>(s: &'a str, out: &mut Fields<'a>) -> bool {
    let b = s.as_bytes();
    let i = ws(b, 0);
    match object(s, i, Context::Row, out, 0) {
        Some(end) => ws(b, end) == b.len(),
        None => false,
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = b.get(i) {
        i += 1;
    }
    i
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` equal to `c`, and possibly in bytes
/// after such a byte (borrows): only the lowest set bit is meaningful.
fn bytes_equal(w: u64, c: u8) -> u64 {
    let v = w ^ (LO * u64::from(c));
    v.wrapping_sub(LO) & !v & HI
}

/// The index of the first `"` or `\` at or after `i`. Eight bytes at a
/// time: strings are short, so this beats a SIMD search's setup cost.
fn quote_or_backslash(b: &[u8], mut i: usize) -> Option<usize> {
    while let Some(word) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let m = bytes_equal(w, b'"') | bytes_equal(w, b'\\');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// A string without escapes starting after its opening quote: the index of
/// its closing quote, or `None` when it has a backslash or does not end.
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

fn is_number_byte(c: u8) -> bool {
    matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

/// A number token's end (loosely checked: the conversion of used values
/// validates it, skipped values only need their extent).
fn number_end(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while b.get(j).is_some_and(|&c| is_number_byte(c)) {
        j += 1;
    }
    j
}

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
fn scalar<'a>(s: &'a str, i: usize, depth: u32) -> Option<(Raw<'a>, usize)> {
    let b = s.as_bytes();
    match *b.get(i)? {
        b'"' => {
            let end = plain_string_end(b, i + 1)?;
            Some((Raw::Str(s.get(i + 1..end)?), end + 1))
        }
        b'-' | b'0'..=b'9' => {
            let end = number_end(b, i);
            Some((Raw::Num(s.get(i..end)?), end))
        }
        b'{' | b'[' => Some((Raw::Nested, skip_value(b, i, depth)?)),
        _ => literal(b, i),
    }
}

/// Skips any JSON value; the index after it.
fn skip_value(b: &[u8], i: usize, depth: u32) -> Option<usize> {
    match *b.get(i)? {
        b'"' => skip_string(b, i + 1),
        b'-' | b'0'..=b'9' => Some(number_end(b, i)),
        b'{' | b'[' => skip_nested(b, i, depth),
        _ => literal(b, i).map(|(_, end)| end),
    }
}

/// Skips an object or array by matching brackets (strings skipped whole),
/// checking that each closer matches its opener.
fn skip_nested(b: &[u8], mut i: usize, depth: u32) -> Option<usize> {
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
            b'"' => i = skip_string(b, i + 1)?,
            _ => i += 1,
        }
    }
}

/// Scans the object at `i` (which must be `{`), filling `out`; the index
/// after its closing brace.
fn object<'a>(
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
        let key_end = plain_string_end(b, i + 1)?;
        let key = b.get(i + 1..key_end)?;
        i = ws(b, key_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        i = match classify(key, ctx) {
            None => skip_value(b, i, depth)?,
            Some(Field::Properties) => match b.get(i) {
                Some(b'{') => object(s, i, Context::Row, out, depth + 1)?,
                // A string `properties` holds JSON to decode: serde's job.
                _ => return None,
            },
            Some(Field::LastError) => match b.get(i) {
                Some(b'{') => object(s, i, Context::LastError, out, depth + 1)?,
                _ => skip_value(b, i, depth)?,
            },
            Some(f) => {
                let (v, end) = scalar(s, i, depth)?;
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
