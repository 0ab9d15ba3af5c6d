//! The plan as text for people: what `apimedic remediate plan` prints and
//! the TUI's plan dialog shows (the change, the checks, the requests, the
//! undo), and the `az rest` commands a person can run by hand for an
//! offline plan. Pure.

use super::plan::Plan;
use crate::model::Risk;

/// `az rest` commands a person can run by hand.
pub fn az_commands(plan: &Plan) -> Vec<String> {
    plan.requests
        .iter()
        .map(|r| {
            let mut s = format!(
                "az rest --method {} --url '{}'",
                r.method.to_ascii_lowercase(),
                shell_quote_inner(&format!("https://management.azure.com{}", r.path))
            );
            if let Some(m) = &r.if_match {
                s.push_str(&format!(" --headers 'If-Match={}'", shell_quote_inner(m)));
            }
            if let Some(b) = &r.body {
                s.push_str(&format!(
                    " --body '{}'",
                    shell_quote_inner(&serde_json::to_string(b).unwrap_or_default())
                ));
            }
            s
        })
        .collect()
}

fn shell_quote_inner(s: &str) -> String {
    s.replace('\'', "'\\''")
}

pub fn risk_word(r: Risk) -> &'static str {
    match r {
        Risk::Low => "low",
        Risk::Medium => "medium",
        Risk::High => "high",
    }
}

/// The plan for people.
pub fn render(plan: &Plan) -> String {
    let mut o = String::new();
    let w = &mut o;
    use std::fmt::Write as _;
    let _ = writeln!(w, "Plan for proposal {}: {}", plan.proposal, plan.title);
    let _ = writeln!(
        w,
        "  action {}   risk {}   finding {}   plan {}",
        plan.action,
        risk_word(plan.risk),
        plan.finding,
        &plan.hash[..12]
    );
    let _ = writeln!(w, "  service {}", plan.service);
    if !plan.live {
        let _ = writeln!(
            w,
            "  NOT EXECUTED: offline plan from exported files; run the commands below by hand, or plan against the live service id."
        );
    }
    let _ = writeln!(w, "\nChange:");
    for l in plan.diff.lines() {
        let _ = writeln!(w, "  {l}");
    }
    let _ = writeln!(w, "\nPreconditions:");
    for c in &plan.checks {
        let _ = writeln!(
            w,
            "  [{}] {}: {}",
            if c.ok { "ok" } else { "FAILED" },
            c.name,
            c.detail
        );
    }
    for warn in &plan.warnings {
        let _ = writeln!(w, "  warning: {warn}");
    }
    let _ = writeln!(w, "\nBlast radius: {}", plan.blast_radius);
    let _ = writeln!(w, "Expected: {}", plan.expected);
    let _ = writeln!(w, "Verify: {}", plan.verify.how);
    let _ = writeln!(
        w,
        "\nRequests{}:",
        if plan.live { "" } else { " (not executed)" }
    );
    for r in &plan.requests {
        let _ = writeln!(w, "  {} {}", r.method, r.path);
        if let Some(m) = &r.if_match {
            let _ = writeln!(w, "  If-Match: {m}");
        }
        if let Some(b) = &r.body {
            for l in serde_json::to_string_pretty(b).unwrap_or_default().lines() {
                let _ = writeln!(w, "    {l}");
            }
        }
    }
    if !plan.live {
        let _ = writeln!(
            w,
            "\nBy hand (not executed; If-Match * overwrites whatever is there: compare first):"
        );
        for c in az_commands(plan) {
            let _ = writeln!(w, "  {c}");
        }
    }
    let _ = writeln!(w, "\nUndo:");
    for r in &plan.undo {
        let _ = writeln!(w, "  {} {}", r.method, r.path);
        if let Some(b) = &r.body {
            let s = serde_json::to_string(b).unwrap_or_default();
            let short: String = s.chars().take(160).collect();
            let _ = writeln!(
                w,
                "    {short}{}",
                if s.chars().count() > 160 { "…" } else { "" }
            );
        }
    }
    o
}
