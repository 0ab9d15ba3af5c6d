use super::resolve;
use super::*;
use crate::model::{Api, Backend, Snapshot};

fn inst() -> Instance {
    let snapshot = Snapshot {
        apis: vec![Api {
            id: "billing-api".into(),
            display_name: Some("Billing API".into()),
            path: Some("billing".into()),
            ..Api::default()
        }],
        backends: vec![Backend {
            id: "billing-app".into(),
            url: Some("https://billing.internal/api".into()),
            ..Backend::default()
        }],
        ..Snapshot::default()
    };
    Instance {
        snapshot: snapshot.into(),
        diagnosis: Diagnosis::default(),
    }
}

#[test]
fn calls_parse_and_unknown_tools_are_refused() {
    let t = Tool::from_call("failure_rate", &json!({"api": "billing", "period": "7d"})).unwrap();
    assert_eq!(
        t,
        Tool::FailureRate {
            api: Some("billing".into()),
            operation: None,
            backend: None,
            period: Some("7d".into())
        }
    );
    let err = Tool::from_call("execute_remediation", &json!({})).unwrap_err();
    assert!(err.contains("read-only"), "{err}");
    assert!(Tool::from_call("network_check", &json!({"port": 443})).is_err());
    for spec in Tool::specs() {
        assert!(Tool::NAMES.contains(&spec.name), "{}", spec.name);
    }
    assert_eq!(Tool::specs().len(), Tool::NAMES.len());
}

#[test]
fn names_resolve_by_id_display_name_and_path() {
    let i = inst();
    let api = |n: &str| resolve::api(&i.snapshot, n).found().map(str::to_string);
    assert_eq!(api("/billing").as_deref(), Some("billing-api"));
    assert_eq!(api("Billing API").as_deref(), Some("billing-api"));
    assert_eq!(api("checkout"), None);
    assert_eq!(
        resolve::backend(&i.snapshot, "billing.internal").found(),
        Some("billing-app")
    );
}

/// Every caller of the layer gets the resolver's answer: a name that means
/// nothing is an error with "did you mean", never a substring guess or an
/// empty result that reads as "all clear".
#[test]
fn a_name_that_does_not_resolve_is_an_error_for_every_caller() {
    let i = inst();
    let out = Tool::FailureRate {
        api: Some("biling-api".into()),
        operation: None,
        backend: None,
        period: None,
    }
    .run(&i);
    // A near match resolves (one edit away).
    assert!(out.data.get("error").is_none(), "{}", out.text);
    let out = Tool::Findings {
        kind: None,
        api: None,
        backend: Some("no-such-backend-at-all".into()),
    }
    .run(&i);
    assert!(
        out.text
            .starts_with("no backend named `no-such-backend-at-all`"),
        "{}",
        out.text
    );
    assert!(out.data["error"].is_string());
    let out = Tool::Explain { id: "zzzz".into() }.run(&i);
    assert!(
        out.text.contains("the `findings` tool lists the ids"),
        "{}",
        out.text
    );
}

#[test]
fn outputs_are_capped() {
    let mut v = json!({"rows": (0..100).collect::<Vec<i32>>()});
    assert!(cap_data(&mut v));
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(MAX_ITEMS + 1));
    let long = "x".repeat(MAX_TEXT * 2);
    let cut = head_tail(&long, MAX_TEXT);
    assert!(cut.chars().count() <= MAX_TEXT + 60, "{}", cut.len());
    assert!(cut.contains("characters cut"));
}

#[test]
fn tools_answer_on_empty_data_without_failing() {
    let i = inst();
    for name in Tool::NAMES {
        let args = json!({"destination": "10.0.0.1", "port": 443, "id": "nope"});
        let out = Tool::from_call(name, &args).unwrap().run(&i);
        assert_eq!(out.tool, name);
        assert!(!out.text.is_empty(), "{name}");
    }
    let out = Tool::BackendHealth {
        backend: Some("nothere".into()),
    }
    .run(&i);
    assert!(
        out.text.starts_with("no backend named `nothere`"),
        "{}",
        out.text
    );
}

/// Caps and redaction happen where outputs are made, for every caller (the
/// MCP server, the LLM loop, the answerer): a secret in a log row or in a
/// message never leaves in the data or the text.
#[test]
fn secrets_in_tool_output_are_redacted_in_data_and_text() {
    let row = crate::model::RequestRecord {
        url: Some("https://gw/x?subscription-key=abcdef0123456789abcdef".into()),
        last_error_message: Some(
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl".into(),
        ),
        ..Default::default()
    };
    let out = ToolOutput::of("failure_log", ToolResult::FailureLog(vec![row.clone()]));
    let all = format!("{} {}", out.text, out.data);
    assert!(all.contains("[SECRET-"), "{all}");
    assert!(!all.contains("abcdef0123456789abcdef"), "{all}");
    assert!(!all.contains("eyJhbGciOiJIUzI1NiJ9"), "{all}");
    // The typed answer is the in-process copy, as computed.
    assert_eq!(out.result, ToolResult::FailureLog(vec![row]));
    let out = ToolOutput::of(
        "failure_log",
        ToolResult::FailureLog(vec![crate::model::RequestRecord::default(); MAX_ITEMS + 5]),
    );
    assert!(out.truncated);
    assert_eq!(out.data.as_array().map(Vec::len), Some(MAX_ITEMS + 1));
}

/// The JSON of a typed answer keeps the shape the MCP output and the LLM
/// saw before answers were typed: ratios rounded, words not enum names.
#[test]
fn typed_answers_serialise_to_the_documented_shape() {
    use crate::model::{Health, Severity};
    let i = inst();
    let out = Tool::ListBackends.run(&i);
    let rows = out.data.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    for row in rows {
        assert!(
            row["health"].is_string() && row["traffic"]["requests"].is_u64(),
            "{row}"
        );
        assert!(
            row["findings"]
                .as_array()
                .is_some_and(|f| f.iter().all(Value::is_string))
        );
    }
    assert_eq!(serde_json::to_value(Health::Degraded).unwrap(), "degraded");
    assert_eq!(Health::Degraded.as_str(), "degraded");
    assert_eq!(Severity::Medium.tag(), "MED ");
}
