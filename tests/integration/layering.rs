//! The architecture, checked: every `crate::MODULE` a source file names
//! (outside its `#[cfg(test)]` part and `tests.rs` files) must be an edge
//! the layering allows. Data flows one way — collect → model → analyze →
//! playbook → tools → surfaces — a surface never imports another surface
//! (`cli` is the composition root and may name anything), and nothing a
//! model can drive (llm, mcp, chat, tools) reaches `remediate` or an Azure
//! write. `report` renders model types only (the lint rule table and the NSG
//! flow vocabulary live in `model`), and analyze's submodules import each
//! other without a cycle. A new edge means changing this table on purpose.

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
        // The answerers read the analysis through the tools only, so an
        // answer and a tool's output cannot disagree.
        "llm" => &["model", "playbook", "tools", "http"],
        // Live Azure reads (never writes): sign-in and the ARM client.
        "azure" => &["model", "collect", "http", "simulate"],
        // Surfaces: each may use the layers below, never another surface.
        // Renders model types only: what it prints (findings, the lint rule
        // table, an NSG verdict) is shared vocabulary, not analysis.
        "report" => &["model"],
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
        // The TUI's approve key hands an approved plan to remediate. Its
        // views read the analysis through the tools' queries only.
        "tui" => &[
            "model",
            "collect",
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

/// Every non-test source file under `dir` (not `tests.rs`, `*_tests.rs`):
/// its path relative to `dir` and its code before `#[cfg(test)]`, comment
/// lines dropped.
fn sources(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
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
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let lines = code
                .lines()
                .map(str::trim_start)
                .filter(|l| !l.starts_with("//"))
                .map(str::to_string)
                .collect();
            out.push((rel, lines));
        }
    }
    out.sort();
    out
}

/// `(module, imported module) -> files`, from non-test code under src/.
fn edges() -> BTreeMap<(String, String), BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let re = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (rel, lines) in sources(&src) {
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        for line in &lines {
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
    out
}

/// Imports between analyze's submodules (`backends`, `changes`, `policy`…):
/// `(from, to) -> files`. The root (`analyze/mod.rs`, which runs them all and
/// holds `Ctx` and the shared helpers) is not a submodule. A path names a
/// submodule as `crate::analyze::X`, as `super::X` from a file directly under
/// analyze/ or a folder's `mod.rs`, or as `super::super::X` one folder down.
fn analyze_edges() -> BTreeMap<(String, String), BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/analyze");
    let is_submodule = |name: &str| {
        name != "mod" && (dir.join(format!("{name}.rs")).is_file() || dir.join(name).is_dir())
    };
    let abs = regex::Regex::new(r"crate::analyze::([a-z_]+)").unwrap();
    let up1 = regex::Regex::new(r"(?:^|[^:a-z_])super::([a-z_]+)").unwrap();
    let up1_group = regex::Regex::new(r"(?:^|[^:a-z_])super::\{([^}]*)\}").unwrap();
    let up2 = regex::Regex::new(r"super::super::([a-z_]+)").unwrap();
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (rel, lines) in sources(&dir) {
        let parts: Vec<&str> = rel.split('/').collect();
        let from = parts[0].trim_end_matches(".rs").to_string();
        if from == "mod" {
            continue;
        }
        // Which `super` is analyze itself: one level up from analyze/x.rs
        // and analyze/x/mod.rs, two from analyze/x/y.rs.
        let super_is_analyze = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod.rs");
        let mut names: Vec<String> = Vec::new();
        for line in &lines {
            names.extend(abs.captures_iter(line).map(|c| c[1].to_string()));
            if super_is_analyze {
                names.extend(up1.captures_iter(line).map(|c| c[1].to_string()));
                for g in up1_group.captures_iter(line) {
                    names.extend(g[1].split(',').filter_map(|item| {
                        let head = item.trim().split("::").next().unwrap_or("");
                        (!head.is_empty()).then(|| head.to_string())
                    }));
                }
            } else if parts.len() == 2 {
                names.extend(up2.captures_iter(line).map(|c| c[1].to_string()));
            }
        }
        for to in names {
            if to != from && is_submodule(&to) {
                out.entry((from.clone(), to))
                    .or_default()
                    .insert(format!("src/analyze/{rel}"));
            }
        }
    }
    out
}

/// A cycle in a directed graph, as the list of nodes around it.
fn find_cycle(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeSet<(String, String)>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for (_, to) in edges.iter().filter(|(f, _)| f == node) {
            if let Some(c) = visit(to, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for (from, _) in edges {
        if let Some(c) = visit(from, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
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

#[test]
fn analyze_submodules_import_each_other_without_a_cycle() {
    let e = analyze_edges();
    // Not vacuous: the reader sees real edges of each form.
    for (from, to) in [
        ("backends", "apps"),  // super::apps
        ("changes", "policy"), // super::policy
        ("scaling", "policy"), // from a folder
        ("story", "changes"),  // super::changes
    ] {
        assert!(
            e.contains_key(&(from.to_string(), to.to_string())),
            "analyze edge {from} -> {to} not seen: {:?}",
            e.keys().collect::<Vec<_>>()
        );
    }
    let graph: BTreeSet<(String, String)> = e.keys().cloned().collect();
    if let Some(cycle) = find_cycle(&graph) {
        let files: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                format!(
                    "{} -> {} in {:?}",
                    w[0],
                    w[1],
                    e[&(w[0].clone(), w[1].clone())]
                )
            })
            .collect();
        panic!("analyze import cycle:\n{}", files.join("\n"));
    }
    // And the detector finds one when there is one.
    let mut looped = graph.clone();
    looped.insert(("policy".into(), "changes".into()));
    assert!(find_cycle(&looped).is_some());
}

#[test]
fn report_renders_model_types_only() {
    // The table says so (report once reached into analyze for the lint rule
    // table); loosening it is a decision, not a drive-by.
    assert_eq!(allowed("report"), Some(&["model"][..]));
    assert!(edges().contains_key(&("report".into(), "model".into())));
}
