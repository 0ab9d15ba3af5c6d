//! The architecture, checked: every `crate::MODULE` a source file names
//! (outside its `#[cfg(test)]` part and `tests.rs` files) must be an edge
//! the layering allows. Data flows one way — collect → model → analyze →
//! playbook → tools → surfaces — a surface never imports another surface
//! (`cli` is the composition root and may name anything), and nothing a
//! model can drive (llm, mcp, chat, tools) reaches `remediate` or an Azure
//! write. A new edge means changing this table on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What each top-level module may import (besides itself).
fn allowed(module: &str) -> Option<&'static [&'static str]> {
    Some(match module {
        "model" => &[],
        "http" => &[],
        "simulate" => &["model"],
        "collect" => &["model", "http"],
        "analyze" => &["model"],
        "playbook" => &["model", "analyze"],
        "tools" => &["model", "analyze", "playbook"],
        "llm" => &["model", "analyze", "playbook", "tools", "http"],
        // Live Azure reads (never writes): sign-in and the ARM client.
        "azure" => &["model", "collect", "http", "simulate"],
        // Surfaces: each may use the layers below, never another surface.
        "report" => &["model", "analyze", "playbook"],
        // `audit` only records (a refused request to act is written there);
        // it executes nothing, so what a model drives may write to it.
        "chat" => &["model", "tools", "llm", "audit"],
        "mcp" => &["model", "tools", "playbook", "audit"],
        // The daemon may run a remediation the autonomy policy allows; its
        // alerting (daemon/alerts.rs, sink.rs) may not (checked below).
        "daemon" => &[
            "model",
            "collect",
            "analyze",
            "playbook",
            "http",
            "azure",
            "simulate",
            "remediate",
            "audit",
        ],
        // The TUI's approve key hands an approved plan to remediate.
        "tui" => &[
            "model",
            "collect",
            "analyze",
            "playbook",
            "tools",
            "llm",
            "simulate",
            "azure",
            "remediate",
            "audit",
        ],
        // Plans purely, executes at the edge, only after a person approves.
        "remediate" => &[
            "model", "analyze", "playbook", "collect", "azure", "http", "audit",
        ],
        "audit" => &["model"],
        "cli" => return None,
        _ => return None,
    })
}

/// `(module, imported module) -> files`, from non-test code under src/.
fn edges() -> BTreeMap<(String, String), BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let re = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let module = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for line in code.lines() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                for c in re.captures_iter(line) {
                    let to = c[1].to_string();
                    if to != module {
                        out.entry((module.clone(), to))
                            .or_default()
                            .insert(rel.clone());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn imports_follow_the_layering() {
    let mut bad = Vec::new();
    for ((from, to), files) in edges() {
        if let Some(ok) = allowed(&from)
            && !ok.contains(&to.as_str())
        {
            bad.push(format!("{from} -> {to} in {files:?}"));
        }
    }
    assert!(bad.is_empty(), "forbidden imports:\n{}", bad.join("\n"));
}

#[test]
fn what_a_model_drives_never_reaches_remediation() {
    for from in ["llm", "mcp", "chat", "tools"] {
        let ok = allowed(from).unwrap();
        assert!(
            !ok.contains(&"remediate"),
            "{from} may not import remediate"
        );
        assert!(!ok.contains(&"cli"), "{from} may not import cli");
    }
    // And the table is not vacuous: the code really has the edges it allows.
    let e = edges();
    assert!(e.contains_key(&("mcp".into(), "tools".into())));
    assert!(e.contains_key(&("tui".into(), "llm".into())));
    assert!(
        !e.keys().any(|(f, t)| f == "tui" && t == "chat"),
        "tui imports chat"
    );
    // The daemon's alerting never names remediate.
    for ((from, to), files) in &e {
        if from == "daemon" && to == "remediate" {
            for f in files {
                assert!(
                    !f.ends_with("alerts.rs") && !f.ends_with("sink.rs"),
                    "daemon alerting reaches remediate in {f}"
                );
            }
        }
    }
}
