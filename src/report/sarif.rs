//! Findings as SARIF 2.1.0, the format code-scanning tools read (GitHub
//! code scanning, Azure DevOps, VS Code SARIF viewer). Pure: findings and
//! the rule table in, a JSON value out.

use crate::model::Finding;
use crate::model::lint_rules::{Rule, level_of};
use serde_json::{Map, Value, json};

pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// A SARIF log with one run: the tool's rules and one result per finding.
pub fn render(findings: &[Finding], rules: &[Rule], tool_version: &str) -> Value {
    let driver_rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.summary },
                "help": { "text": r.fix },
                "defaultConfiguration": { "level": r.level() },
                "properties": { "kind": r.kind.as_str(), "severity": r.severity.as_str() }
            })
        })
        .collect();
    let results: Vec<Value> = findings.iter().map(|f| result(f, rules)).collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "apimedic",
                "version": tool_version,
                "rules": driver_rules
            }},
            "columnKind": "unicodeCodePoints",
            "results": results
        }]
    })
}

fn result(f: &Finding, rules: &[Rule]) -> Value {
    let rule_id = f
        .rule
        .clone()
        .unwrap_or_else(|| f.kind.as_str().to_string());
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(rule_id));
    if let Some(i) = rules.iter().position(|x| x.id == rule_id) {
        r.insert("ruleIndex".into(), json!(i));
    }
    r.insert("level".into(), json!(level_of(f.severity)));
    r.insert("message".into(), json!({ "text": f.summary }));
    if let Some(loc) = &f.location {
        let mut physical = Map::new();
        physical.insert("artifactLocation".into(), json!({ "uri": uri(&loc.file) }));
        if let Some(line) = loc.line.filter(|&l| l > 0) {
            let mut region = Map::new();
            region.insert("startLine".into(), json!(line));
            if let Some(c) = loc.column.filter(|&c| c > 0) {
                region.insert("startColumn".into(), json!(c));
            }
            if let Some(excerpt) = f.evidence.iter().find_map(|e| e.excerpt.as_deref()) {
                region.insert("snippet".into(), json!({ "text": excerpt }));
            }
            physical.insert("region".into(), Value::Object(region));
        }
        r.insert(
            "locations".into(),
            json!([{ "physicalLocation": Value::Object(physical) }]),
        );
    }
    r.insert(
        "partialFingerprints".into(),
        json!({ "apimedicFindingId/v1": f.id }),
    );
    r.insert(
        "properties".into(),
        json!({ "severity": f.severity.as_str(), "kind": f.kind.as_str(), "subject": f.subject.to_string() }),
    );
    Value::Object(r)
}

/// A file path as a URI reference: `/` separators, everything but
/// unreserved characters and `/` percent-encoded (apiops folders have
/// spaces); an absolute path becomes a `file://` URI.
pub fn uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    let drive = path.as_bytes().get(1) == Some(&b':') && path.as_bytes().get(2) == Some(&b'/');
    let mut out = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        out.push_str("file://");
    } else if drive {
        out.push_str("file:///");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/')
            || (drive && b == b':')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lint_rules::rules;
    use crate::model::{FindingKind, Location, PolicyScope, Severity, Subject};

    #[test]
    fn results_carry_rule_level_and_location() {
        let f = Finding::new(
            FindingKind::PolicyInheritance,
            Severity::Medium,
            Subject::policy(PolicyScope::Api("orders".into())),
            "no base",
        )
        .with_rule("APIM020")
        .location(Location {
            file: "apis/orders api/policy.xml".into(),
            line: Some(3),
            column: Some(5),
        });
        let v = render(&[f], rules(), "0.1.0");
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            rules().len()
        );
        let r = &run["results"][0];
        assert_eq!(r["ruleId"], "APIM020");
        assert_eq!(r["level"], "warning");
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], "APIM020");
        let phys = &r["locations"][0]["physicalLocation"];
        assert_eq!(
            phys["artifactLocation"]["uri"],
            "apis/orders%20api/policy.xml"
        );
        assert_eq!(phys["region"]["startLine"], 3);
        assert_eq!(phys["region"]["startColumn"], 5);
    }

    #[test]
    fn uris_are_encoded_and_absolute_paths_are_file_uris() {
        assert_eq!(
            uri("./apis/a;rev=2/policy.xml"),
            "apis/a%3Brev%3D2/policy.xml"
        );
        assert_eq!(uri("/tmp/x y.xml"), "file:///tmp/x%20y.xml");
        assert_eq!(
            uri("C:\\exports\\policy.xml"),
            "file:///C:/exports/policy.xml"
        );
    }

    #[test]
    fn finding_without_line_has_no_region() {
        let f = Finding::new(
            FindingKind::PolicyRisk,
            Severity::High,
            Subject::backend("pool"),
            "x",
        )
        .location(Location {
            file: "b.json".into(),
            line: None,
            column: None,
        });
        let v = render(&[f], &[], "0");
        let r = &v["runs"][0]["results"][0];
        assert_eq!(r["ruleId"], "policy_risk");
        assert_eq!(r["level"], "error");
        assert!(r.get("ruleIndex").is_none());
        assert!(
            r["locations"][0]["physicalLocation"]
                .get("region")
                .is_none()
        );
    }
}
