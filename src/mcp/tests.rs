//! The MCP server's pure parts over the demo instance: the tool list a
//! client sees, argument checks, name resolution, redaction, resources and
//! the triage prompt.

use super::*;
use crate::playbook::Playbooks;

fn server() -> Server {
    let snapshot = crate::collect::collect_files(&crate::simulate::demo_files());
    Server::new(Instance::new(snapshot, &Playbooks::built_in()))
}

fn args(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => panic!("object"),
    }
}

fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

#[test]
fn every_tool_is_listed_read_only_with_a_portable_schema() {
    let list = server().tool_list();
    assert_eq!(list.len(), Tool::NAMES.len());
    let names: Vec<&str> = list.iter().map(|t| t.name.as_ref()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "deterministic order");
    for want in [
        "summary",
        "findings",
        "backend_map",
        "backend_health",
        "failure_rate",
        "failure_log",
        "recent_changes",
        "policies",
        "network_check",
        "capacity",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let name_re = regex::Regex::new("^[a-z][a-z0-9_]{0,63}$").unwrap();
    for t in &list {
        assert!(name_re.is_match(&t.name), "{}", t.name);
        let a = t.annotations.as_ref().expect("annotations");
        assert_eq!(a.read_only_hint, Some(true), "{}", t.name);
        assert_eq!(a.destructive_hint, Some(false), "{}", t.name);
        let schema = Value::Object((*t.input_schema).clone());
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false, "{}", t.name);
        assert!(schema.get("$schema").is_none());
        let text = schema.to_string();
        assert!(!text.contains("\"format\""), "{}: {text}", t.name);
        assert!(!text.contains("\"type\":["), "{}: nullable type", t.name);
        assert!(t.description.as_ref().is_some_and(|d| d.len() <= 1024));
        assert!(t.output_schema.is_some());
    }
}

#[test]
fn a_call_returns_structured_content_and_text() {
    let s = server();
    let r = s.call("summary", None).unwrap();
    assert_eq!(r.is_error, Some(false));
    let sc = r.structured_content.as_ref().expect("structured");
    assert_eq!(sc["tool"], "summary");
    assert!(
        sc["data"]["anomalies"].as_u64().unwrap() > 0,
        "the demo has an incident"
    );
    assert!(!text_of(&r).is_empty());
    // The findings resource and the findings tool agree.
    let res: Value = serde_json::from_str(&s.read("apimedic://findings").unwrap()).unwrap();
    let tool = s.call("findings", None).unwrap();
    assert_eq!(res, tool.structured_content.unwrap()["data"]);
}

#[test]
fn bad_arguments_are_tool_errors_a_client_can_fix() {
    let s = server();
    let cases = [
        (
            "failure_rate",
            json!({"apii": "x"}),
            "unknown argument `apii`",
        ),
        ("failure_rate", json!({"api": 42}), "must be a string"),
        ("failure_log", json!({"limit": "ten"}), "must be an integer"),
        ("failure_log", json!({"limit": 0}), "between 1 and"),
        (
            "network_check",
            json!({"port": 443}),
            "missing required argument `destination`",
        ),
        (
            "network_check",
            json!({"destination": "Internet", "port": 70000}),
            "between 1 and 65535",
        ),
        ("summary", json!({"x": 1}), "takes no arguments"),
        (
            "explain",
            json!({"id": "ffffffffffffffff"}),
            "no finding named",
        ),
        (
            "failure_rate",
            json!({"api": "no-such-api-anywhere"}),
            "no API named",
        ),
    ];
    for (tool, a, want) in cases {
        let r = s.call(tool, Some(&args(a.clone()))).unwrap();
        assert_eq!(r.is_error, Some(true), "{tool} {a}");
        assert!(text_of(&r).contains(want), "{tool} {a}: {}", text_of(&r));
    }
    let e = s.call("execute_remediation", None).unwrap_err();
    assert!(e.message.contains("tool not found"), "{}", e.message);
}

#[test]
fn names_resolve_with_did_you_mean() {
    let s = server();
    let api = s
        .inst
        .snapshot
        .apis
        .first()
        .expect("demo has APIs")
        .id
        .clone();
    // A near miss (one letter swapped) still resolves.
    let mut typo: Vec<char> = api.chars().collect();
    typo.swap(1, 2);
    let typo: String = typo.into_iter().collect();
    let r = s
        .call("failure_rate", Some(&args(json!({"api": typo}))))
        .unwrap();
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
}

#[test]
fn resources_and_prompt() {
    let s = server();
    for r in Server::resource_list() {
        assert!(s.read(&r.uri).is_some(), "{}", r.uri);
    }
    assert!(s.read("apimedic://nope").is_none());
    let id = s.inst.diagnosis.findings[0].id.clone();
    let one: Value =
        serde_json::from_str(&s.read(&format!("apimedic://findings/{id}")).unwrap()).unwrap();
    assert!(one.to_string().contains(&id));
    let p = s.triage_prompt(None).unwrap();
    assert_eq!(p.messages.len(), 1);
    let api = s.inst.snapshot.apis[0].id.clone();
    let p = s
        .triage_prompt(Some(&args(json!({"api": api.clone()}))))
        .unwrap();
    assert!(format!("{:?}", p.messages[0]).contains(&api));
    assert!(
        s.triage_prompt(Some(&args(json!({"api": "zzzz-not-here"}))))
            .is_err()
    );
}

#[test]
fn server_names_itself() {
    let info = server().get_info();
    assert_eq!(info.server_info.name, "apimedic");
    assert_eq!(info.server_info.version, env!("CARGO_PKG_VERSION"));
}

/// Valid arguments for every tool over an instance (no `explain` without
/// a finding to explain).
fn every_call(s: &Server) -> Vec<(&'static str, Value)> {
    let api = s.inst.snapshot.apis.first().map(|a| a.id.clone());
    let with_api = || match &api {
        Some(a) => json!({ "api": a }),
        None => json!({}),
    };
    let mut calls = vec![
        ("summary", json!({})),
        ("list_apis", json!({})),
        ("list_operations", json!({})),
        ("list_products", json!({})),
        ("list_backends", json!({})),
        ("failure_rate", with_api()),
        ("failure_log", json!({"limit": 20})),
        ("recent_changes", json!({"limit": 40})),
        ("backend_map", json!({})),
        ("backend_health", json!({})),
        ("policies", with_api()),
        ("nsg_rules", json!({})),
        (
            "network_check",
            json!({"destination": "Storage", "port": 443}),
        ),
        ("capacity", json!({})),
        ("findings", json!({})),
        ("proposals", json!({})),
    ];
    if let Some(f) = s.inst.diagnosis.findings.first() {
        calls.push(("explain", json!({"id": f.id})));
    }
    calls
}

fn declared_schema(s: &Server, name: &str) -> Value {
    let tool = s.tool_list().into_iter().find(|t| t.name == name).unwrap();
    Value::Object((*tool.output_schema.expect("an output schema")).clone())
}

/// The demo and every fixture scenario, by name.
fn instances() -> Vec<(String, Server)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut out = vec![("demo".to_string(), server())];
    for d in dirs {
        let snapshot = crate::collect::collect(std::slice::from_ref(&d)).unwrap();
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        out.push((
            name,
            Server::new(Instance::new(snapshot, &Playbooks::built_in())),
        ));
    }
    out
}

/// The lists in a tool's data that hold items: the data itself or its
/// top-level fields (`capacity.autoscale`), as `tool` or `tool.field`.
fn filled_lists(name: &str, data: &Value, into: &mut std::collections::BTreeSet<String>) {
    match data {
        Value::Array(a) if !a.is_empty() => {
            into.insert(name.to_string());
        }
        Value::Object(o) => {
            for (k, v) in o {
                if v.as_array().is_some_and(|a| !a.is_empty()) {
                    into.insert(format!("{name}.{k}"));
                }
            }
        }
        _ => {}
    }
}

#[test]
fn every_tool_answers_what_its_output_schema_declares() {
    let bare_true = regex::Regex::new(r#""([^"]+)":true[,}\]]"#).unwrap();
    let demo = server();
    let mut called: Vec<&str> = every_call(&demo).iter().map(|c| c.0).collect();
    called.sort();
    let mut names = Tool::NAMES.to_vec();
    names.sort();
    assert_eq!(called, names, "a call for every tool");
    let mut schemas = std::collections::BTreeSet::new();
    for name in Tool::NAMES {
        let schema = declared_schema(&demo, name);
        let text = schema.to_string();
        assert!(schema.get("$schema").is_none(), "{name}");
        assert!(!text.contains("\"format\":\""), "{name}: {text}");
        assert!(!text.contains("\"type\":["), "{name}: a type list");
        // No bare `true` schema (Inspector --strict refuses it).
        for c in bare_true.captures_iter(&text) {
            assert!(
                ["additionalProperties", "default", "const"].contains(&&c[1]),
                "{name}: `{}: true`",
                &c[1]
            );
        }
        assert_eq!(schema["type"], "object", "{name}");
        assert_eq!(schema["properties"]["tool"]["const"], name);
        schemas.insert(schema["properties"]["data"].to_string());
    }
    // One schema per result type (list_backends and backend_health share one).
    assert_eq!(schemas.len(), Tool::NAMES.len() - 1);

    let mut mismatches = Vec::new();
    let mut filled = std::collections::BTreeSet::new();
    for (instance, s) in instances() {
        for (name, a) in every_call(&s) {
            let schema = declared_schema(&s, name);
            let r = s.call(name, Some(&args(a.clone()))).unwrap();
            assert_eq!(
                r.is_error,
                Some(false),
                "{instance} {name} {a}: {}",
                text_of(&r)
            );
            let sc = r.structured_content.expect("structured content");
            if let Err(e) = super::validate::validate(&schema, &sc) {
                mismatches.push(format!("{instance} {name}: {e}"));
            }
            filled_lists(name, &sc["data"], &mut filled);
            // The schema says which tool answered: another tool's output fails.
            let other = if name == "summary" {
                "capacity"
            } else {
                "summary"
            };
            assert!(super::validate::validate(&declared_schema(&s, other), &sc).is_err());
        }
    }
    assert!(
        mismatches.is_empty(),
        "structuredContent that does not match its outputSchema:\n{}",
        mismatches.join("\n")
    );
    // Item schemas are only tried on items: every list some tool answers
    // with held items on some instance.
    let want = [
        "list_apis",
        "list_operations",
        "list_products",
        "list_backends",
        "backend_health",
        "failure_log",
        "backend_map",
        "nsg_rules",
        "network_check",
        "findings",
        "proposals",
        "summary.stories",
        "summary.proposals",
        "failure_rate.operations",
        "recent_changes.changes",
        "policies.documents",
        "policies.effective",
        "capacity.autoscale",
        "capacity.saturation",
        "capacity.findings",
        "explain.stories",
        "explain.proposals",
    ];
    let empty: Vec<&str> = want.into_iter().filter(|w| !filled.contains(*w)).collect();
    assert!(empty.is_empty(), "never filled on any instance: {empty:?}");
}

#[test]
fn an_output_that_strays_from_its_schema_is_caught() {
    let s = server();
    let schema = declared_schema(&s, "explain");
    let finding = s.inst.diagnosis.findings[0].id.clone();
    let r = s
        .call("explain", Some(&args(json!({"id": finding}))))
        .unwrap();
    let sc = r.structured_content.unwrap();
    assert_eq!(super::validate::validate(&schema, &sc), Ok(()));
    let mut extra = sc.clone();
    extra["data"]["finding"]["undeclared"] = json!(1);
    let mut missing = sc.clone();
    missing["data"]["finding"]
        .as_object_mut()
        .unwrap()
        .remove("severity");
    let mut retyped = sc.clone();
    retyped["data"]["finding"]["confidence"] = json!("high");
    let mut unknown_word = sc.clone();
    unknown_word["data"]["finding"]["kind"] = json!("gremlins");
    for (what, v) in [
        ("extra", extra),
        ("missing", missing),
        ("retyped", retyped),
        ("enum", unknown_word),
    ] {
        assert!(
            super::validate::validate(&schema, &v).is_err(),
            "{what} passed"
        );
    }
}

#[test]
fn a_capped_list_still_matches_its_schema() {
    let s = server();
    let rows = crate::tools::result::ApiRow {
        id: "a".into(),
        display_name: None,
        path: Some("/a".into()),
        service_url: None,
        operations: 1,
        requests: 2,
        status_5xx: 1,
        error_rate: 0.5,
    };
    let many = vec![rows; crate::tools::MAX_ITEMS + 5];
    let out = crate::tools::ToolOutput::of("list_apis", crate::tools::ToolResult::Apis(many));
    assert!(out.truncated);
    let sc = serde_json::to_value(&out).unwrap();
    assert_eq!(sc["data"][crate::tools::MAX_ITEMS]["omitted"], 5);
    let schema = declared_schema(&s, "list_apis");
    assert_eq!(super::validate::validate(&schema, &sc), Ok(()));
}

#[test]
fn an_error_result_carries_no_structured_content() {
    let r = server()
        .call("explain", Some(&args(json!({"id": "ffffffffffffffff"}))))
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(r.structured_content.is_none());
}
