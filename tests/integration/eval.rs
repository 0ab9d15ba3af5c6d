//! The offline answerer's evaluation set (`tests/eval/cases.yaml`): each
//! case is a question over a scenario fixture with texts the answer must and
//! must not contain. Every case must pass; failures are listed together.

use apimedic::llm::offline;
use apimedic::playbook::Playbooks;
use apimedic::tools::Instance;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    question: String,
    scenario: String,
    #[serde(default)]
    must: Vec<String>,
    #[serde(default)]
    must_not: Vec<String>,
    #[serde(default = "yes")]
    answered: bool,
}

fn yes() -> bool {
    true
}

pub fn instance(scenario: &str) -> Instance {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/scenarios")
        .join(scenario);
    let snapshot = apimedic::collect::collect(std::slice::from_ref(&dir))
        .unwrap_or_else(|e| panic!("cannot collect {}: {e:#}", dir.display()));
    Instance::new(snapshot, &Playbooks::built_in())
}

#[test]
fn every_eval_case_passes_offline() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eval/cases.yaml");
    let text = std::fs::read_to_string(&path).expect("tests/eval/cases.yaml is readable");
    let cases: Cases = serde_yaml_ng::from_str(&text).expect("tests/eval/cases.yaml parses");
    assert!(cases.cases.len() >= 25, "the eval set shrank");
    let mut instances: BTreeMap<String, Instance> = BTreeMap::new();
    let mut failures = Vec::new();
    for (n, case) in cases.cases.iter().enumerate() {
        let inst = instances
            .entry(case.scenario.clone())
            .or_insert_with(|| instance(&case.scenario));
        let answer = offline::answer(inst, &case.question);
        let rendered = answer.render();
        let lower = rendered.to_lowercase();
        let mut problems = Vec::new();
        if answer.answered != case.answered {
            problems.push(format!(
                "answered = {}, expected {}",
                answer.answered, case.answered
            ));
        }
        for m in &case.must {
            if !lower.contains(&m.to_lowercase()) {
                problems.push(format!("missing {m:?}"));
            }
        }
        for m in &case.must_not {
            if lower.contains(&m.to_lowercase()) {
                problems.push(format!("must not contain {m:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case {} ({} / {:?}): {}\n--- answer ---\n{rendered}",
                n + 1,
                case.scenario,
                case.question,
                problems.join("; ")
            ));
        }
    }
    eprintln!(
        "eval: {} of {} cases pass",
        cases.cases.len() - failures.len(),
        cases.cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `ask` and `chat` as a user runs them: the built binary, NO_COLOR=1.
#[test]
fn ask_and_chat_run_from_the_command_line() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/nsg-block");
    let out = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args([
            "ask",
            "What NSG rules does my instance have?",
            "--offline",
            "--format",
            "json",
        ])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("apimedic runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("ask --format json is JSON");
    assert_eq!(v["answered"], true);
    assert!(
        v["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "30fed72b24af183c")),
        "{v}"
    );
    assert!(
        v["text"]
            .as_str()
            .is_some_and(|t| t.contains("deny-payments-subnet-outbound"))
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(["chat", "--offline"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("apimedic chat starts");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(
            b"/help\nwhich backend is failing?\n/explain 30fed72b24af183c\n/quit\nnot read\n",
        );
    }
    let out = child.wait_with_output().expect("chat ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/explain ID"), "{text}");
    assert!(text.contains("Backend responsible: payments-svc"), "{text}");
    assert!(text.contains("proposal 30fed72b24af183c-1"), "{text}");
    assert!(!text.contains("not read"));

    let out = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(["ask", "why?", "--llm", "--offline"])
        .output()
        .expect("apimedic runs");
    assert!(!out.status.success(), "--llm and --offline conflict");
}
