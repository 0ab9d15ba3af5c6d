//! A big JSON array of log rows (what `az monitor log-analytics query`
//! prints) read one element at a time: a byte-level splitter finds where
//! each top-level element ends (strings and escapes respected, nesting
//! counted) and only that element is parsed, so memory stays one row
//! however long the array (a whole-document parse costs ~6× the file).
//! Pure: bytes in, rows and problems out, each located by line and record.

use super::ndjson;
use crate::model::{InputKind, LoadReport, Origin, Problem, Traffic};
use serde_json::Value;

/// Where the next element is, or why the array cannot go on.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// `[start, end)` of one element.
    Element(usize, usize),
    /// The closing `]`.
    End,
    /// The text breaks off or is not an array's shape here.
    Broken(usize, &'static str),
}

/// The element that starts at or after `at` (after whitespace and one
/// comma).
fn next(b: &[u8], mut at: usize, first: bool) -> Next {
    at = skip_ws(b, at);
    match b.get(at) {
        None => return Next::Broken(at, "the array is not closed with ]"),
        Some(b']') => return Next::End,
        Some(b',') if !first => at = skip_ws(b, at + 1),
        Some(_) if !first => return Next::Broken(at, "expected , or ] between records"),
        Some(_) => {}
    }
    let start = at;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = at;
    while let Some(&c) = b.get(i) {
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        // A scalar element ended by the array's close.
                        return if c == b']' && i > start {
                            Next::Element(start, i)
                        } else {
                            Next::Broken(i, "unbalanced brackets")
                        };
                    }
                    depth -= 1;
                    if depth == 0 {
                        return Next::Element(start, i + 1);
                    }
                }
                b',' if depth == 0 => return Next::Element(start, i),
                _ => {}
            }
        }
        i += 1;
    }
    Next::Broken(start, "the text ends inside a record")
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// The first element of a JSON array text, if the text is one and that
/// element is complete within `head`.
pub(super) fn first_element(head: &[u8]) -> Option<&[u8]> {
    let at = skip_ws(head, 0);
    if head.get(at) != Some(&b'[') {
        return None;
    }
    match next(head, at + 1, true) {
        Next::Element(s, e) => head.get(s..e),
        _ => None,
    }
}

/// Folds every element of the array in `bytes` (which starts with `[`
/// after optional whitespace) into `traffic`; a bad element is one problem
/// at its line and record number, and the elements around it still load.
/// `done` is told how far the reading got, so a caller can release what is
/// behind it.
pub(super) fn fold_array(
    file: &str,
    bytes: &[u8],
    traffic: &mut Traffic,
    report: &mut LoadReport,
    done: &mut dyn FnMut(usize),
) {
    let mut at = skip_ws(bytes, 0) + 1;
    let mut line = 1 + memchr::memchr_iter(b'\n', bytes.get(..at).unwrap_or_default()).count();
    let mut counted = at;
    let mut accepted = 0u64;
    let mut record = 0u32;
    let mut first = true;
    loop {
        let step = next(bytes, at, first);
        first = false;
        let (start, end) = match step {
            Next::Element(s, e) => (s, e),
            Next::End => break,
            Next::Broken(pos, why) => {
                line += newlines(bytes, counted, pos);
                report.reject(Problem {
                    origin: Origin {
                        file: file.to_string(),
                        line: Some(line as u32),
                        record: Some(record),
                    },
                    message: format!("{why}; the {accepted} rows before it are used"),
                });
                break;
            }
        };
        line += newlines(bytes, counted, start);
        counted = start;
        let origin = |line: usize| Origin {
            file: file.to_string(),
            line: u32::try_from(line).ok(),
            record: Some(record),
        };
        let element = bytes.get(start..end).unwrap_or_default();
        match serde_json::from_slice::<Value>(element) {
            Ok(v) => ndjson::object_row(&v, &mut |res| match res {
                Ok(r) => {
                    traffic.add(&r, || origin(line));
                    report.see_time(r.time);
                    accepted += 1;
                }
                Err(message) => report.reject(Problem {
                    origin: origin(line),
                    message,
                }),
            }),
            Err(e) => report.reject(Problem {
                origin: origin(line + e.line().saturating_sub(1)),
                message: format!("not valid JSON: {e}"),
            }),
        }
        record = record.saturating_add(1);
        at = end;
        done(end);
    }
    if accepted > 0 {
        report.count(InputKind::GatewayLogs, accepted);
    }
}

fn newlines(b: &[u8], from: usize, to: usize) -> usize {
    b.get(from..to)
        .map_or(0, |s| memchr::memchr_iter(b'\n', s).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(text: &str) -> (Traffic, LoadReport, usize) {
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        let mut furthest = 0;
        fold_array("q.json", text.as_bytes(), &mut t, &mut r, &mut |n| {
            furthest = n
        });
        (t, r, furthest)
    }

    const ROW: &str = r#"{"TimeGenerated": "2024-05-14T09:00:01Z", "ApiId": "orders-api", "OperationId": "get-order", "ResponseCode": "503", "TotalTime": "12", "Note": "a ] and a } and a \" in a string"}"#;

    #[test]
    fn elements_are_split_whatever_the_strings_hold() {
        let text = format!("[\n  {ROW},\n  {ROW}\n]\n");
        let (t, r, furthest) = fold(&text);
        assert_eq!(t.rows, 2, "{:?}", r.problems);
        assert!(r.problems.is_empty());
        assert!(furthest > text.len() / 2);
        assert_eq!(first_element(text.as_bytes()), Some(ROW.as_bytes()));
        assert_eq!(first_element(b"{\"a\": 1}"), None);
        assert_eq!(first_element(b"[{\"a\": 1"), None);
    }

    #[test]
    fn a_bad_record_is_located_and_its_neighbours_load() {
        let bad = r#"{"TimeGenerated": "nope", "ResponseCode": 200}"#;
        let text = format!("[\n{ROW},\n{bad},\n{{\"x\": tru}},\n7,\n{ROW}\n]");
        let (t, r, _) = fold(&text);
        assert_eq!(t.rows, 2);
        let shown: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown[0].starts_with("q.json:3 record 1"), "{shown:?}");
        assert!(shown[1].starts_with("q.json:4 record 2") && shown[1].contains("not valid JSON"));
        assert!(shown[2].starts_with("q.json:5 record 3") && shown[2].contains("JSON object"));
        // The samples kept as evidence point at the rows' lines.
        let s = &t.series[0].minutes.values().next().unwrap().samples;
        assert_eq!(s[0].origin.line, Some(2));
        assert_eq!(s[1].origin.line, Some(6));
    }

    #[test]
    fn a_cut_array_keeps_the_rows_before_the_cut() {
        let text = format!("[{ROW}, {ROW}, {{\"TimeGenerated\": \"2024");
        let (t, r, _) = fold(&text);
        assert_eq!(t.rows, 2);
        assert_eq!(r.problems.len(), 1);
        assert!(
            r.problems[0]
                .message
                .contains("ends inside a record; the 2 rows before it are used"),
            "{:?}",
            r.problems
        );
        let (t, r, _) = fold(&format!("[{ROW} {ROW}]"));
        assert_eq!(t.rows, 1);
        assert!(r.problems[0].message.contains("expected , or ]"));
        let (t, r, _) = fold(&format!("[{ROW}, 7]"));
        assert_eq!(t.rows, 1);
        assert!(
            r.problems[0].message.contains("JSON object"),
            "{:?}",
            r.problems
        );
        let (t, r, _) = fold("[]");
        assert_eq!((t.rows, r.problems.len()), (0, 0));
        let (_, r, _) = fold("[");
        assert!(r.problems[0].message.contains("not closed"));
    }

    /// Random byte edits of a valid array: never a panic, every accepted
    /// row counted, and where the edited text is still one JSON array the
    /// element reader loads what the whole-document parse loads.
    #[test]
    fn mutated_arrays_never_panic_and_agree_with_the_whole_parse() {
        let base = format!("[\n  {ROW},\n  {ROW},\n  [1, \"x\\\"]\"],\n  {ROW}\n]\n");
        let alphabet = b"[]{},:\"\\ \n0a-";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut agreed = 0;
        for _ in 0..3000 {
            let mut b = base.clone().into_bytes();
            for _ in 0..=(rand() % 3) {
                let i = (rand() % b.len() as u64) as usize;
                match rand() % 3 {
                    0 => b[i] = alphabet[(rand() % alphabet.len() as u64) as usize],
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, alphabet[(rand() % alphabet.len() as u64) as usize]),
                }
            }
            let mut t = Traffic::default();
            let mut r = LoadReport::default();
            fold_array("m.json", &b, &mut t, &mut r, &mut |_| {});
            let accepted = r.counts.get(&InputKind::GatewayLogs).copied().unwrap_or(0);
            assert_eq!(accepted, t.rows);
            if let Ok(Value::Array(rows)) = serde_json::from_slice::<Value>(&b) {
                let mut t2 = Traffic::default();
                let mut r2 = LoadReport::default();
                super::super::parse_json_rows("m.json", &rows, &mut t2, &mut r2);
                assert_eq!(
                    (t.rows, r.rejected),
                    (t2.rows, r2.rejected),
                    "{}",
                    String::from_utf8_lossy(&b)
                );
                agreed += 1;
            }
        }
        assert!(agreed > 100, "too few valid mutants ({agreed}) to compare");
    }

    #[test]
    fn matches_the_whole_document_parse() {
        let mut text = String::from("[");
        for i in 0..500 {
            if i > 0 {
                text.push_str(",\n");
            }
            text.push_str(&format!(
                r#"{{"TimeGenerated": "2024-05-14T09:{:02}:{:02}Z", "ApiId": "a{}", "OperationId": "o", "ResponseCode": "{}", "TotalTime": "{}", "BackendTime": "{}"}}"#,
                i / 60,
                i % 60,
                i % 3,
                if i % 7 == 0 { 503 } else { 200 },
                i,
                i / 2
            ));
        }
        text.push(']');
        let (t, r, _) = fold(&text);
        let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
        let mut want_t = Traffic::default();
        let mut want_r = LoadReport::default();
        super::super::parse_json_rows("q.json", &rows, &mut want_t, &mut want_r);
        assert_eq!((t.rows, r.rejected), (want_t.rows, want_r.rejected));
        assert_eq!(t.series.len(), want_t.series.len());
        for (a, b) in t.series.iter().zip(&want_t.series) {
            assert_eq!(a.key, b.key);
            for ((ma, sa), (mb, sb)) in a.minutes.iter().zip(&b.minutes) {
                assert_eq!(ma, mb);
                assert_eq!(
                    (sa.requests, sa.status_5xx, &sa.total_latency),
                    (sb.requests, sb.status_5xx, &sb.total_latency)
                );
            }
        }
    }
}
