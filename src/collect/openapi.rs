//! API specifications (OpenAPI 3 / Swagger 2, JSON or YAML) as apiops
//! stores them beside `apiInformation.json` in `apis/<api>/`: each path and
//! method becomes an `Operation` of that API (`operationId` as its name).
//! A spec outside that layout cannot be tied to an API and is only counted.

use super::arm::Doc;
use super::json::{get, str_at};
use crate::model::{InputKind, Operation, Origin, Snapshot};
use serde_json::{Map, Value};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// An OpenAPI or Swagger document.
pub fn is_spec(o: &Map<String, Value>) -> bool {
    (get(o, "openapi").is_some() || get(o, "swagger").is_some()) && get(o, "paths").is_some()
}

/// Text that opens like a YAML API specification (`openapi:` or `swagger:`
/// after comments and a `---`).
pub fn is_yaml_spec(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && *l != "---")
        .is_some_and(|l| l.starts_with("openapi:") || l.starts_with("swagger:"))
}

/// The API a spec file belongs to: the folder under `apis/`.
pub fn api_of_path(file: &str) -> Option<String> {
    let parts: Vec<&str> = file.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let n = parts.len();
    (n >= 3 && parts[n - 3].eq_ignore_ascii_case("apis")).then(|| parts[n - 2].to_string())
}

/// Loads the operations of a spec (or counts it as `Other` when its API is
/// unknown).
pub fn load_spec(doc: &Doc, o: &Map<String, Value>, snap: &mut Snapshot) {
    let Some(api_id) = api_of_path(doc.file) else {
        snap.loaded.count(InputKind::Other, 1);
        return;
    };
    let mut n = 0;
    for (path, item) in get(o, "paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let lower = method.to_ascii_lowercase();
            if !METHODS.contains(&lower.as_str()) {
                continue;
            }
            let op = op.as_object();
            let id = op
                .and_then(|op| str_at(op, "operationId"))
                .unwrap_or_else(|| format!("{lower} {path}"));
            snap.operations.push(Operation {
                api_id: api_id.clone(),
                id,
                display_name: op.and_then(|op| str_at(op, "summary")),
                method: Some(lower.to_ascii_uppercase()),
                url_template: Some(path.clone()),
                origin: Origin::file(doc.file),
            });
            n += 1;
        }
    }
    snap.loaded.count(InputKind::Operations, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: &str, json: &str) -> Snapshot {
        let v: Value = serde_json::from_str(json).unwrap();
        let o = v.as_object().unwrap();
        assert!(is_spec(o));
        let mut snap = Snapshot::default();
        load_spec(&Doc { file, text: json }, o, &mut snap);
        snap
    }

    const SPEC: &str = r#"{"openapi":"3.0.1","paths":{"/orders/{id}":{"get":{"operationId":"get-order","summary":"Get"},
        "parameters":[],"delete":{}},"/orders":{"post":{"operationId":"create-order"}}}}"#;

    #[test]
    fn operations_from_an_apiops_spec() {
        let s = load("art/apis/orders-api/specification.json", SPEC);
        let ops: Vec<(String, String, String)> = s
            .operations
            .iter()
            .map(|o| {
                (
                    o.id.clone(),
                    o.method.clone().unwrap(),
                    o.url_template.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            ops,
            vec![
                ("create-order".into(), "POST".into(), "/orders".into()),
                (
                    "delete /orders/{id}".into(),
                    "DELETE".into(),
                    "/orders/{id}".into()
                ),
                ("get-order".into(), "GET".into(), "/orders/{id}".into()),
            ]
        );
        assert!(s.operations.iter().all(|o| o.api_id == "orders-api"));
        assert_eq!(s.loaded.counts[&InputKind::Operations], 3);
    }

    #[test]
    fn a_spec_elsewhere_is_only_counted() {
        let s = load("downloads/spec.json", SPEC);
        assert!(s.operations.is_empty());
        assert_eq!(s.loaded.counts[&InputKind::Other], 1);
    }

    #[test]
    fn yaml_detection() {
        assert!(is_yaml_spec("# generated\n---\nopenapi: 3.0.1\ninfo:\n"));
        assert!(is_yaml_spec("swagger: '2.0'\n"));
        assert!(!is_yaml_spec("name: x\nopenapi: 3\n"));
    }
}
