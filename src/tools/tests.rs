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

/// The typed answers carry what in-process readers need (what a deployment
/// deployed, what a policy write did to the timeout, where each policy
/// statement is written) without changing a tool's JSON.
#[test]
fn typed_answers_carry_change_details_and_policy_lines_outside_the_json() {
    use crate::model::{Change, ChangeKind, Origin, PolicyDoc, PolicyScope, Timestamp};
    let api = PolicyScope::Api("orders-api".into());
    let mut s = Snapshot::default();
    s.policies.push(PolicyDoc {
        scope: api.clone(),
        xml: "<policies>\n  <inbound><base /></inbound>\n  <backend>\n    <forward-request timeout=\"5\" />\n  </backend>\n</policies>".into(),
        format: "file".into(),
        origin: Origin::at_line("policies/orders-api.xml", 1),
    });
    s.changes.push(Change {
        time: Timestamp::from_minute(28_600_010),
        kind: ChangeKind::Config,
        operation: "Microsoft.ApiManagement/service/apis/policies/write".into(),
        policy_scope: Some(api.clone()),
        policy_before: Some(
            "<policies><backend><forward-request timeout=\"30\" /></backend></policies>".into(),
        ),
        policy_after: Some(
            "<policies><backend><forward-request timeout=\"5\" /></backend></policies>".into(),
        ),
        ..Change::default()
    });
    s.changes.push(Change {
        time: Timestamp::from_minute(28_600_027),
        kind: ChangeKind::Deployment,
        operation: "Microsoft.App/containerApps/write".into(),
        resource_id: Some(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/orders-app"
                .into(),
        ),
        ..Change::default()
    });
    let changes = recent_changes(&s, usize::MAX);
    assert_eq!(changes.total, 2);
    let deploy = &changes.changes[0];
    assert_eq!(deploy.deployed, "container app orders-app");
    assert_eq!(deploy.timeout_detail, None);
    let write = &changes.changes[1];
    assert_eq!(
        write.timeout_detail.as_deref(),
        Some("forward-request timeout 30 s → 5 s")
    );
    assert_eq!(write.policy_scope, Some(api.clone()));
    let json = serde_json::to_value(&changes).unwrap();
    for skipped in ["deployed", "timeout_detail", "policy_scope", "resource_id"] {
        assert!(json["changes"][1].get(skipped).is_none(), "{json}");
    }
    let e = effective_policy(&s, "orders-api", "get-order");
    assert_eq!(e.forward_timeout, Some((5.0, api)));
    let forward = e.find("forward-request").next().expect("a forward-request");
    assert_eq!(forward.attr("timeout"), Some("5"));
    assert_eq!(
        (forward.origin.file.as_str(), forward.origin.line),
        ("policies/orders-api.xml", Some(4))
    );
}
