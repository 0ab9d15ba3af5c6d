//! JSON text for the simulator's files with a fixed key order (sorted), so
//! the bytes do not depend on whether some dependency switched on
//! serde_json's `preserve_order`. Pretty output uses two-space indents like
//! `az` and `curl | jq`.

use serde_json::Value;

/// One line, no spaces.
pub fn compact(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v, None, 0);
    out
}

/// Two-space indented, with a trailing newline.
pub fn pretty(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v, Some(2), 0);
    out.push('\n');
    out
}

/// A JSON string literal for `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_str(&mut out, s);
    out
}

fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn newline(out: &mut String, indent: Option<usize>, depth: usize) {
    if let Some(n) = indent {
        out.push('\n');
        for _ in 0..n * depth {
            out.push(' ');
        }
    }
}

fn write(out: &mut String, v: &Value, indent: Option<usize>, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_str(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write(out, item, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                push_str(out, k);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                if let Some(item) = map.get(*k) {
                    write(out, item, indent, depth + 1);
                }
            }
            newline(out, indent, depth);
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_round_trips() {
        let v = json!({"b": 1, "a": {"z": [1, 2.5, "x\"y\n"], "c": null}, "e": [], "d": {}});
        let c = compact(&v);
        assert_eq!(
            c,
            r#"{"a":{"c":null,"z":[1,2.5,"x\"y\n"]},"b":1,"d":{},"e":[]}"#
        );
        let p = pretty(&v);
        assert!(p.starts_with("{\n  \"a\": {\n    \"c\": null,"), "{p}");
        let back: Value = serde_json::from_str(&p).unwrap();
        assert_eq!(back, v);
        assert_eq!(quote("a\u{1}b"), "\"a\\u0001b\"");
    }
}
