//! `apimedic lint`: load policy files, folders or an exported instance,
//! lint every policy (plus the backend/named-value/traffic checks the
//! snapshot allows) and print text, JSON or SARIF. Exit 0 when no finding
//! is at error level, 1 otherwise (Deny mode: a missing `<base />` too), 2 on
//! error.

use crate::analyze::policy::{self, Mode, rules::level_of};
use crate::model::{Finding, Severity};
use anyhow::Context;
use clap::ValueEnum;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::report::sarif;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintMode {
    /// Report missing `<base />` as a warning.
    Audit,
    /// A missing `<base />` fails the run (like Azure Policy's Deny effect).
    Deny,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Policy XML files, folders, or an exported instance folder (apiops,
    /// ARM/REST JSON). None: the built-in demo.
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "audit")]
    pub mode: LintMode,
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// List the rules (id, level, name, explanation, fix) and exit.
    #[arg(long)]
    pub rules: bool,
    #[arg(long, value_enum, default_value = "auto")]
    pub color: super::ColorChoice,
}

pub fn run(args: LintArgs) -> anyhow::Result<ExitCode> {
    let color = super::use_color(args.color);
    if args.rules {
        let out = match args.format {
            LintFormat::Text => rules_text(color),
            LintFormat::Json => {
                let rules: Vec<serde_json::Value> = policy::rules()
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id, "name": r.name, "kind": r.kind.as_str(),
                            "severity": r.severity.as_str(), "level": r.level(),
                            "summary": r.summary, "fix": r.fix
                        })
                    })
                    .collect();
                pretty(&serde_json::json!({ "rules": rules }))?
            }
            LintFormat::Sarif => pretty(&sarif::render(
                &[],
                policy::rules(),
                env!("CARGO_PKG_VERSION"),
            ))?,
        };
        write_stdout(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut snapshot = super::load(&args.paths)?;
    // Every file is linted, including those analysis does not apply
    // (another file gives their scope); the load problems say which.
    let shadowed = std::mem::take(&mut snapshot.shadowed_policies);
    snapshot.policies.extend(shadowed);
    if snapshot.policies.is_empty() {
        for p in snapshot.loaded.problems.iter().take(20) {
            eprintln!("apimedic: {p}");
        }
        anyhow::bail!(
            "no policy documents found in {}; give policy .xml files, a folder holding them, or an exported instance",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mode = match args.mode {
        LintMode::Audit => Mode::Audit,
        LintMode::Deny => Mode::Deny,
    };
    let findings = policy::lint(&snapshot, mode);
    let out = match args.format {
        LintFormat::Text => {
            for p in snapshot.loaded.problems.iter().take(20) {
                eprintln!("apimedic: note: {p}");
            }
            // Secrets a policy holds (a key in a header) are never printed.
            crate::model::redact::scrub(&text(&findings, snapshot.policies.len(), color))
        }
        LintFormat::Json => {
            let mut v = serde_json::json!({ "findings": findings });
            crate::model::redact::scrub_value(&mut v);
            pretty(&v)?
        }
        LintFormat::Sarif => {
            let mut v = sarif::render(&findings, policy::rules(), env!("CARGO_PKG_VERSION"));
            crate::model::redact::scrub_value(&mut v);
            pretty(&v)?
        }
    };
    write_stdout(&out)?;
    Ok(if failing(&findings) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// True when a finding is at error level (Deny mode has already raised the
/// inheritance rule to error).
pub fn failing(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity >= Severity::High)
}

fn pretty(v: &serde_json::Value) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(v).context("cannot render JSON")?;
    s.push('\n');
    Ok(s)
}

fn write_stdout(s: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(s.as_bytes()).and_then(|_| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("cannot write the lint report");
    }
    Ok(())
}

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
        if let Some(r) = f.rule.as_deref().and_then(policy::rule_by_id) {
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

fn rules_text(color: bool) -> String {
    let mut out = String::new();
    for r in policy::rules() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Location, PolicyDoc, PolicyScope, Snapshot};

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
    fn deny_mode_fails_on_missing_base_audit_does_not() {
        let s = snap(NO_BASE, "api:a");
        let audit = policy::lint(&s, Mode::Audit);
        assert!(audit.iter().any(|f| f.rule.as_deref() == Some("APIM020")));
        assert!(!failing(&audit), "{audit:#?}");
        let deny = policy::lint(&s, Mode::Deny);
        assert!(failing(&deny));
    }

    #[test]
    fn text_lines_are_file_line_col_level_rule() {
        let s = snap(NO_BASE, "api:a");
        let out = text(&policy::lint(&s, Mode::Audit), 1, false);
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
        let _ = Location::default();
    }

    #[test]
    fn rules_listing_names_every_rule() {
        let out = rules_text(false);
        for r in policy::rules() {
            assert!(out.contains(r.id) && out.contains(r.fix));
        }
    }
}
