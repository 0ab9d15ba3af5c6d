//! A JSON Schema validator over the subset the tool output schemas use
//! (what schemars emits plus `tools::schema`'s additions): `type` (one or a
//! list), `properties`, `required`, `additionalProperties`, `items`,
//! `prefixItems`, `enum`, `const`, `$ref` into `$defs`, `anyOf`, `oneOf`,
//! `allOf`, `minimum`/`maximum`, `nullable` and boolean schemas. Any other
//! keyword is an error rather than ignored, so a schema this cannot judge
//! never passes silently. For tests (no validator crate is in Cargo.lock).

use serde_json::{Map, Value};

/// Keywords that describe and never constrain.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$defs",
    "$schema",
    "$comment",
];

/// Checks `value` against the schema document `root`; the error names
/// the JSON pointer of the first mismatch and why.
pub fn validate(root: &Value, value: &Value) -> Result<(), String> {
    check(root, root, value, "")
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let s = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{at}: nothing is allowed here, got {v}")),
        Value::Object(s) => s,
        other => return Err(format!("{at}: not a schema: {other}")),
    };
    for (k, kv) in s {
        match k.as_str() {
            "type" => check_type(kv, s, v, at)?,
            "nullable" => {}
            "enum" => {
                let options = kv.as_array().ok_or(format!("{at}: enum is not a list"))?;
                if !options.contains(v) {
                    return Err(format!("{at}: {v} is not one of {kv}"));
                }
            }
            "const" if kv != v => return Err(format!("{at}: {v} is not {kv}")),
            "const" => {}
            "$ref" => {
                let target = resolve(root, kv.as_str().unwrap_or_default())
                    .ok_or(format!("{at}: $ref {kv} does not resolve"))?;
                check(root, target, v, at)?;
            }
            "anyOf" | "oneOf" | "allOf" => {
                let subs = kv.as_array().ok_or(format!("{at}: {k} is not a list"))?;
                let errors: Vec<String> = subs
                    .iter()
                    .filter_map(|sub| check(root, sub, v, at).err())
                    .collect();
                let passed = subs.len() - errors.len();
                let ok = match k.as_str() {
                    "anyOf" => passed >= 1,
                    "oneOf" => passed == 1,
                    _ => errors.is_empty(),
                };
                if !ok {
                    return Err(format!(
                        "{at}: {k} matched {passed} of {} ({})",
                        subs.len(),
                        errors.join("; ")
                    ));
                }
            }
            // Checked together below.
            "properties" | "required" | "additionalProperties" | "items" | "prefixItems" => {}
            "minimum" | "maximum" => {
                if let (Some(n), Some(bound)) = (v.as_f64(), kv.as_f64()) {
                    let below = k == "minimum" && n < bound;
                    let above = k == "maximum" && n > bound;
                    if below || above {
                        return Err(format!("{at}: {n} is outside {k} {bound}"));
                    }
                }
            }
            other if ANNOTATIONS.contains(&other) => {}
            other => return Err(format!("{at}: unsupported keyword `{other}`")),
        }
    }
    match v {
        Value::Object(o) => check_object(root, s, o, at),
        Value::Array(a) => check_array(root, s, a, at),
        _ => Ok(()),
    }
}

fn check_type(ty: &Value, s: &Map<String, Value>, v: &Value, at: &str) -> Result<(), String> {
    let names: Vec<&str> = match ty {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        other => return Err(format!("{at}: bad type {other}")),
    };
    let nullable = s.get("nullable") == Some(&Value::Bool(true));
    let fits = |t: &str| match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    };
    if names.iter().any(|t| fits(t)) || (nullable && v.is_null()) {
        Ok(())
    } else {
        Err(format!("{at}: {v} is not of type {ty}"))
    }
}

/// `properties`, `required` and `additionalProperties` of one object.
fn check_object(
    root: &Value,
    s: &Map<String, Value>,
    o: &Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    let props = s.get("properties").and_then(Value::as_object);
    if let Some(req) = s.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !o.contains_key(r) {
                return Err(format!("{at}: missing required property `{r}`"));
            }
        }
    }
    for (k, x) in o {
        let here = format!("{at}/{k}");
        match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
            (Some(sub), _) => check(root, sub, x, &here)?,
            (None, Some(extra)) => check(root, extra, x, &here)
                .map_err(|e| format!("{e} (property `{k}` is not in the schema)"))?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// `prefixItems` then `items` over one array.
fn check_array(root: &Value, s: &Map<String, Value>, a: &[Value], at: &str) -> Result<(), String> {
    let prefix = s
        .get("prefixItems")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, x) in a.iter().enumerate() {
        let here = format!("{at}/{i}");
        match (prefix.get(i), s.get("items")) {
            (Some(sub), _) => check(root, sub, x, &here)?,
            (None, Some(items)) => check(root, items, x, &here)?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// A local reference (`#/$defs/Name`, any JSON pointer into the document).
fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::validate;
    use serde_json::json;

    #[test]
    fn each_keyword_rejects_what_it_should() {
        let schema = json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": 1},
                "s": {"type": ["string", "null"]},
                "e": {"enum": ["a", "b"]},
                "c": {"const": "x"},
                "r": {"$ref": "#/$defs/Pair"},
                "l": {"type": "array", "items": {"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/Pair"}]}},
                "o": {"oneOf": [{"type": "number"}, {"type": "integer"}]}
            },
            "required": ["n"],
            "additionalProperties": false,
            "$defs": {"Pair": {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["a"],
                "additionalProperties": false
            }}
        });
        let good = json!({"n": 2, "s": null, "e": "b", "c": "x", "r": {"a": "y"},
                          "l": [true, {"a": "z"}], "o": 1.5});
        assert_eq!(validate(&schema, &good), Ok(()));
        let bad = [
            (json!({}), "missing required property `n`"),
            (json!({"n": "2"}), "/n: \"2\" is not of type"),
            (json!({"n": 0}), "outside minimum"),
            (json!({"n": 1.5}), "is not of type \"integer\""),
            (json!({"n": 1, "s": 3}), "/s: 3"),
            (json!({"n": 1, "e": "c"}), "is not one of"),
            (json!({"n": 1, "c": "y"}), "is not \"x\""),
            (
                json!({"n": 1, "r": {}}),
                "/r: missing required property `a`",
            ),
            (
                json!({"n": 1, "r": {"a": "y", "b": 1}}),
                "`b` is not in the schema",
            ),
            (json!({"n": 1, "l": [true, 3]}), "/l/1: anyOf matched 0"),
            (json!({"n": 1, "o": 2}), "oneOf matched 2"),
            (json!({"n": 1, "extra": 1}), "`extra` is not in the schema"),
        ];
        for (v, want) in bad {
            let e = validate(&schema, &v).expect_err(&v.to_string());
            assert!(e.contains(want), "{v}: {e}");
        }
    }

    #[test]
    fn an_unknown_keyword_or_dangling_ref_is_an_error_not_a_pass() {
        let e = validate(&json!({"pattern": "^a$"}), &json!("b")).unwrap_err();
        assert!(e.contains("unsupported keyword `pattern`"), "{e}");
        let e = validate(&json!({"$ref": "#/$defs/None"}), &json!(1)).unwrap_err();
        assert!(e.contains("does not resolve"), "{e}");
        assert!(validate(&json!({"type": "string", "nullable": true}), &json!(null)).is_ok());
    }
}
