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
    let snapshot = apimedic::collect::collect(&[dir.clone()])
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
