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

fn text(r: &CallToolResult) -> String {
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
    assert!(!text(&r).is_empty());
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
        assert!(text(&r).contains(want), "{tool} {a}: {}", text(&r));
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
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
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
