//! `apimedic lint` output for people and machines (pure): findings as
//! `file:line:col: level RULE message` lines with the fix below and a
//! summary, and the rule table as text or JSON. SARIF is `report::sarif`.

use crate::model::Finding;
use crate::model::lint_rules::{level_of, rule_by_id, rules};
use std::fmt::Write as _;

fn paint(on: bool, level: &str, s: &str) -> String {
    if !on {
        return s.to_string();
    }
    let code = match level {
        "error" => "1;31",
        "warning" => "33",
        "note" => "36",
        _ => "2",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// `file:line:col: level APIM0xx message`, the fix hint indented below, and
/// a summary line.
pub fn text(findings: &[Finding], documents: usize, color: bool) -> String {
    let mut out = String::new();
    let (mut errors, mut warnings, mut notes) = (0, 0, 0);
    for f in findings {
        let level = level_of(f.severity);
        match level {
            "error" => errors += 1,
            "warning" => warnings += 1,
            _ => notes += 1,
        }
        let place = f
            .location
            .as_ref()
            .map(|l| {
                let mut s = l.file.clone();
                if let Some(line) = l.line {
                    let _ = write!(s, ":{line}");
                    if let Some(c) = l.column {
                        let _ = write!(s, ":{c}");
                    }
                }
                s
            })
            .unwrap_or_else(|| f.subject.to_string());
        let rule = f.rule.as_deref().unwrap_or(f.kind.as_str());
        let _ = writeln!(
            out,
            "{place}: {} {rule} {}",
            paint(color, level, level),
            f.summary
        );
        if let Some(r) = f.rule.as_deref().and_then(rule_by_id) {
            let _ = writeln!(out, "    fix: {}", r.fix);
        }
    }
    let _ = writeln!(
        out,
        "{} finding{} ({errors} error{}, {warnings} warning{}, {notes} note{}) in {documents} policy document{}",
        findings.len(),
        plural(findings.len()),
        plural(errors),
        plural(warnings),
        plural(notes),
        plural(documents)
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The rule table, one rule a line with its fix below (`lint --rules`).
pub fn rules_text(color: bool) -> String {
    let mut out = String::new();
    for r in rules() {
        let level = r.level();
        let _ = writeln!(
            out,
            "{} {:<7} {:<28} {}",
            r.id,
            paint(color, level, level),
            r.name,
            r.summary
        );
        let _ = writeln!(out, "{:<46}fix: {}", "", r.fix);
    }
    out
}

/// The rule table as JSON (`lint --rules --format json`).
pub fn rules_json() -> serde_json::Value {
    let rules: Vec<serde_json::Value> = rules()
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id, "name": r.name, "kind": r.kind.as_str(),
                "severity": r.severity.as_str(), "level": r.level(),
                "summary": r.summary, "fix": r.fix
            })
        })
        .collect();
    serde_json::json!({ "rules": rules })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::policy::{Mode, lint};
    use crate::model::{PolicyDoc, PolicyScope, Snapshot};

    fn snap(xml: &str, scope: &str) -> Snapshot {
        Snapshot {
            policies: vec![PolicyDoc {
                scope: PolicyScope::parse(scope).unwrap(),
                xml: xml.into(),
                format: "file".into(),
                origin: crate::model::Origin::at_line("p.xml", 1),
            }],
            ..Snapshot::default()
        }
    }

    const NO_BASE: &str = "<policies><inbound /><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>";

    #[test]
    fn text_lines_are_file_line_col_level_rule() {
        let s = snap(NO_BASE, "api:a");
        let out = text(&lint(&s, Mode::Audit), 1, false);
        let first = out.lines().next().unwrap();
        assert_eq!(
            first,
            "p.xml:1:11: warning APIM020 <inbound> at api:a has no <base />: the parent scope's inbound policies do not run"
        );
        assert!(
            out.lines()
                .nth(1)
                .unwrap()
                .starts_with("    fix: Add <base />")
        );
        assert!(
            out.trim_end()
                .ends_with("1 finding (0 errors, 1 warning, 0 notes) in 1 policy document"),
            "{out}"
        );
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn text_without_findings_is_one_summary_line() {
        let out = text(&[], 3, true);
        assert_eq!(
            out,
            "0 findings (0 errors, 0 warnings, 0 notes) in 3 policy documents\n"
        );
    }

    #[test]
    fn rules_listing_names_every_rule() {
        let out = rules_text(false);
        for r in rules() {
            assert!(out.contains(r.id) && out.contains(r.fix));
        }
    }
}
