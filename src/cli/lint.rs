//! `apimedic lint`: load policy files, folders or an exported instance,
//! lint every policy (plus the backend/named-value/traffic checks the
//! snapshot allows) and print text, JSON or SARIF. Exit 0 when no finding
//! is at error level, 1 otherwise (Deny mode: a missing `<base />` too), 2 on
//! error.

use crate::analyze::policy::{self, Mode};
use crate::model::lint_rules;
use crate::model::{Finding, Severity};
use crate::report::{lint, sarif};
use anyhow::Context;
use clap::ValueEnum;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

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
            LintFormat::Text => lint::rules_text(color),
            LintFormat::Json => pretty(&lint::rules_json())?,
            LintFormat::Sarif => pretty(&sarif::render(
                &[],
                lint_rules::rules(),
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
            crate::model::redact::scrub(&lint::text(&findings, snapshot.policies.len(), color))
        }
        LintFormat::Json => {
            let mut v = serde_json::json!({ "findings": findings });
            crate::model::redact::scrub_value(&mut v);
            pretty(&v)?
        }
        LintFormat::Sarif => {
            let mut v = sarif::render(&findings, lint_rules::rules(), env!("CARGO_PKG_VERSION"));
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

#[cfg(test)]
mod tests {
    use super::*;
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
    fn deny_mode_fails_on_missing_base_audit_does_not() {
        let s = snap(NO_BASE, "api:a");
        let audit = policy::lint(&s, Mode::Audit);
        assert!(audit.iter().any(|f| f.rule.as_deref() == Some("APIM020")));
        assert!(!failing(&audit), "{audit:#?}");
        let deny = policy::lint(&s, Mode::Deny);
        assert!(failing(&deny));
    }
}
