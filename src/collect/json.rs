//! Lenient JSON for hand-exported files: strict parse first, then one
//! recovery (trailing commas before `}`/`]`, which real exports contain),
//! plus the small helpers every reader uses to pick values out of shapes
//! that differ in key casing and in whether numbers and booleans are strings.

use serde_json::{Map, Value};

/// A parsed document, and what had to be forgiven to parse it.
#[derive(Debug)]
pub struct Lenient {
    pub value: Value,
    /// 1-based lines of trailing commas that were dropped.
    pub recovered_commas: Vec<u32>,
    /// What a strict reader says about the original text, when recovered.
    pub strict_error: Option<String>,
}

/// Parses `text` as one JSON value; if strict parsing fails on a trailing
/// comma, drops every trailing comma and tries again. The error names the
/// line and column of the first fault in the original text.
pub fn parse_lenient(text: &str) -> Result<Lenient, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Ok(Lenient {
            value,
            recovered_commas: Vec::new(),
            strict_error: None,
        }),
        Err(e) => {
            let (fixed, lines) = strip_trailing_commas(text);
            if !lines.is_empty()
                && let Ok(value) = serde_json::from_str::<Value>(&fixed)
            {
                return Ok(Lenient {
                    value,
                    recovered_commas: lines,
                    strict_error: Some(e.to_string()),
                });
            }
            Err(describe_error(&e))
        }
    }
}

/// A serde_json error as a user-facing sentence with its position.
pub fn describe_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => {
            "the JSON ends early (truncated file, or an unclosed bracket or string)".to_string()
        }
        _ => {
            // serde_json's Display appends " at line L column C"; keep only the message.
            let full = e.to_string();
            match full.rfind(" at line ") {
                Some(i) => full[..i].to_string(),
                None => full,
            }
        }
    };
    format!(
        "invalid JSON at line {} column {}: {what}",
        e.line(),
        e.column()
    )
}

/// Removes commas followed (after whitespace) by `}` or `]`, outside strings.
/// Returns the text and the 1-based lines of the removed commas.
pub fn strip_trailing_commas(text: &str) -> (String, Vec<u32>) {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut lines = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut line = 1u32;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            out.push(c);
        } else if c == b'"' {
            in_string = true;
            out.push(c);
        } else if c == b',' {
            let next = bytes[i + 1..]
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .copied();
            if matches!(next, Some(b'}') | Some(b']')) {
                lines.push(line);
            } else {
                out.push(c);
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    // Only ASCII commas were removed, so the bytes are still valid UTF-8.
    (String::from_utf8_lossy(&out).into_owned(), lines)
}

/// 1-based line where `needle` first occurs in `text`, if it does.
pub fn line_of(text: &str, needle: &str) -> Option<u32> {
    if needle.is_empty() {
        return None;
    }
    let at = memchr::memmem::find(text.as_bytes(), needle.as_bytes())?;
    let newlines = memchr::memchr_iter(b'\n', &text.as_bytes()[..at]).count();
    u32::try_from(newlines + 1).ok()
}

/// Line of a string value inside the JSON text it was parsed from: looks for
/// the start of its JSON-escaped form. Cheap and approximate (first match).
pub fn line_of_string_value(text: &str, value: &str) -> Option<u32> {
    let encoded = serde_json::to_string(value).ok()?;
    let body = encoded.strip_prefix('"')?.strip_suffix('"')?;
    let mut end = body.len().min(80);
    while end > 0 && !body.is_char_boundary(end) {
        end -= 1;
    }
    let mut prefix = &body[..end];
    // Do not cut an escape sequence in half.
    if let Some(back) = prefix.rfind('\\')
        && prefix.len() - back < 6
    {
        prefix = &prefix[..back];
    }
    if prefix.len() < 8 {
        return None;
    }
    line_of(text, &format!("\"{prefix}"))
}

/// Key lookup: exact first, then ASCII case-insensitive (REST, `az` and
/// storage exports disagree on casing).
pub fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(key) {
        return Some(v);
    }
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// First of several keys that is present and not null.
pub fn get_any<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .filter_map(|k| get(obj, k))
        .find(|v| !v.is_null())
}

pub fn obj<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    get(obj, key).and_then(Value::as_object)
}

pub fn arr<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    get(obj, key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// True for an ARM template expression such as `[parameters('x')]`
/// (`[[` escapes a literal `[`).
pub fn is_expression(s: &str) -> bool {
    let t = s.trim();
    t.starts_with('[') && !t.starts_with("[[") && t.ends_with(']')
}

/// A usable string: not null, not empty, not the CLI's `"None"`, not an
/// unresolved template expression. Numbers and booleans are rendered.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || t == "None" || is_expression(t) {
                None
            } else if let Some(rest) = t.strip_prefix("[[") {
                Some(format!("[{rest}"))
            } else {
                Some(s.clone())
            }
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn str_at(o: &Map<String, Value>, key: &str) -> Option<String> {
    text(get(o, key))
}

/// A number given as a JSON number or a numeric string.
pub fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

pub fn u32_of(v: Option<&Value>) -> Option<u32> {
    let f = number(v)?;
    (f >= 0.0 && f <= f64::from(u32::MAX) && f.fract() == 0.0).then_some(f as u32)
}

/// A boolean given as a JSON bool or a string (`"True"`, `"false"`).
pub fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Strings of an array (or a single string), skipping blanks and expressions.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(|i| text(Some(i))).collect(),
        Some(s @ Value::String(_)) => text(Some(s)).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// `{"value": "x", "localizedValue": "X"}` or a plain string → `x`.
pub fn localized(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => str_at(o, "value"),
        other => text(Some(other)),
    }
}

/// The keys of an object, for "not recognised" messages.
pub fn key_list(o: &Map<String, Value>) -> String {
    let mut keys: Vec<&str> = o.keys().map(String::as_str).take(8).collect();
    if o.len() > 8 {
        keys.push("…");
    }
    keys.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_json_needs_no_recovery() {
        let l = parse_lenient(r#"{"a": [1, 2], "b": "x,]"}"#).unwrap();
        assert!(l.recovered_commas.is_empty());
        assert_eq!(l.value["b"], "x,]");
    }

    #[test]
    fn trailing_commas_are_dropped_and_located() {
        let l = parse_lenient("{\n \"a\": [1, 2,],\n \"b\": {\"c\": true,\n }\n}").unwrap();
        assert_eq!(l.recovered_commas, vec![2, 3]);
        assert_eq!(l.value["b"]["c"], true);
    }

    #[test]
    fn commas_inside_strings_are_kept() {
        let (fixed, lines) = strip_trailing_commas(r#"["a,]", "b\",}",]"#);
        assert_eq!(fixed, r#"["a,]", "b\",}"]"#);
        assert_eq!(lines, vec![1]);
    }

    #[test]
    fn truncated_json_says_so_with_position() {
        let e = parse_lenient("{\n \"value\": [\n  {\"id\": 1}").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("ends early"), "{e}");
        let e = parse_lenient("{\"a\": tru}").unwrap_err();
        assert!(e.starts_with("invalid JSON at line 1 column"), "{e}");
    }

    #[test]
    fn lenient_values() {
        let o: Map<String, Value> = serde_json::from_str(
            r#"{"Capacity": "4", "on": "True", "expr": "[parameters('x')]", "none": "None",
                "lit": "[[not an expression]", "n": 2.5}"#,
        )
        .unwrap();
        assert_eq!(u32_of(get(&o, "capacity")), Some(4));
        assert_eq!(boolean(get(&o, "ON")), Some(true));
        assert_eq!(str_at(&o, "expr"), None);
        assert_eq!(str_at(&o, "none"), None);
        assert_eq!(str_at(&o, "lit").as_deref(), Some("[not an expression]"));
        assert_eq!(u32_of(get(&o, "n")), None);
        assert_eq!(number(get(&o, "n")), Some(2.5));
    }

    #[test]
    fn finds_the_line_of_an_embedded_string() {
        let text = "{\n  \"properties\": {\n    \"value\": \"<policies>\\r\\n  <inbound />\\r\\n</policies>\"\n  }\n}";
        let v: Value = serde_json::from_str(text).unwrap();
        let xml = v["properties"]["value"].as_str().unwrap();
        assert_eq!(line_of_string_value(text, xml), Some(3));
        assert_eq!(line_of_string_value(text, "<short>"), None);
    }
}
