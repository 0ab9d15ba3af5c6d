//! The proposal dialog: a finding's remediations, the selected one's plan
//! (action, risk, preconditions, steps) and a dry-run description of what
//! it would change. Deciding takes `A` or `R` and then `y`. On folder data
//! a decision is recorded only (the dialog says so); connected to a live
//! instance, `A` shows the exact plan read from ARM, and approving it
//! (`y`; the proposal id typed for high risk) executes it with progress,
//! then the verification and an undo offer.

use super::{centered, clear, pane, scrolled_text};
use crate::model::{Action, Proposal, Snapshot};
use crate::tui::app::{App, Decision, PlanDialog, Run};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// What carrying out the action would change, in words. Pure; nothing runs.
pub fn dry_run(p: &Proposal, s: &Snapshot) -> Vec<String> {
    let service = s
        .service
        .as_ref()
        .map(|s| s.name.as_str())
        .unwrap_or("the gateway");
    let mut out = vec!["DRY RUN: nothing is changed.".to_string()];
    match &p.action {
        Action::ScaleOut { units, from } => match from {
            Some(f) => out.push(format!("would scale {service} from {f} to {} unit(s) (sku capacity)", f + units)),
            None => out.push(format!("would add {units} unit(s) to {service} (current capacity unknown)")),
        },
        Action::SetTimeout { scope, seconds, from } => out.push(format!(
            "would set <forward-request timeout=\"{seconds}\" /> in the {scope} policy{}",
            from.map(|f| format!(" (now {f} s)")).unwrap_or_default()
        )),
        Action::RollbackPolicy { scope, to } => {
            out.push(format!("would restore the {scope} policy as it was before {to}"))
        }
        Action::AddNsgRule { nsg, rule, priority, direction, port, destination } => out.push(format!(
            "would add {direction:?} rule {rule} (priority {priority}) to NSG {nsg}: allow port {port} to {destination}"
        )),
        Action::FixNsgRule { nsg, rule, change } => {
            out.push(format!("would change rule {rule} of NSG {nsg}: {change}"))
        }
        Action::FixRoute { api, operation, backend } => {
            out.push(format!("would route {api}/{operation} to backend {backend}"))
        }
        Action::RaiseLimit { scope, policy } => out.push(format!("would raise the limit at {scope}: {policy}")),
        Action::Manual { steps } => {
            out.push("nothing automatic: a person carries out these steps".to_string());
            out.extend(steps.iter().map(|s| format!("  - {s}")));
        }
    }
    out
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::ScaleOut { .. } => "scale out",
        Action::SetTimeout { .. } => "set timeout",
        Action::RollbackPolicy { .. } => "roll back policy",
        Action::AddNsgRule { .. } => "add NSG rule",
        Action::FixNsgRule { .. } => "fix NSG rule",
        Action::FixRoute { .. } => "fix route",
        Action::RaiseLimit { .. } => "raise limit",
        Action::Manual { .. } => "manual",
    }
}

/// The dialog while a remediation runs: the plan, progress, the outcome.
fn run_lines<'a>(app: &App, run: &Run) -> Vec<Line<'a>> {
    let t = app.theme;
    let service = app
        .live
        .as_deref()
        .and_then(|s| s.rsplit('/').next())
        .unwrap_or("the live instance");
    let mut out = Vec::new();
    match run {
        Run::Planning { undo_of } => out.push(Line::styled(
            match undo_of {
                Some(a) => format!("Reading the live state of {service} to plan the undo of {a}…"),
                None => format!("Reading the live state of {service} to plan…"),
            },
            t.dim(),
        )),
        Run::Review {
            plan,
            typed,
            undo_of,
        } => {
            if let Some(a) = undo_of {
                out.push(Line::styled(format!("Undo of {a}"), t.title()));
            }
            out.extend(
                crate::remediate::render::render(plan)
                    .lines()
                    .map(|l| Line::from(l.to_string())),
            );
            out.push(Line::from(""));
            let prompt = if !plan.ready() {
                "A precondition failed: approving records the refusal, nothing is written. Esc cancels".to_string()
            } else if plan.risk == crate::model::Risk::High {
                format!(
                    "HIGH RISK. Type the proposal id {} and Enter to execute on {service}; Esc cancels: {typed}▏",
                    plan.proposal
                )
            } else {
                format!("Execute this plan on {service}? y executes, n cancels")
            };
            out.push(Line::styled(prompt, t.error()));
        }
        Run::Running { lines } => {
            out.push(Line::styled(format!("Executing on {service}…"), t.header()));
            out.extend(lines.iter().map(|l| Line::from(l.clone())));
            out.push(Line::styled(
                "Esc hides this; the operation goes on and its result shows in the status line",
                t.dim(),
            ));
        }
        Run::Done {
            ok,
            lines,
            applied,
            verify,
        } => {
            out.push(Line::styled(
                if *ok { "Done" } else { "Not done" },
                if *ok { t.approved() } else { t.error() },
            ));
            out.extend(lines.iter().map(|l| Line::from(l.clone())));
            if let Some(v) = verify {
                out.push(Line::from(""));
                out.push(Line::styled("Verify", t.header()));
                out.push(Line::from(v.clone()));
            }
            out.push(Line::from(""));
            out.push(Line::styled(
                match applied {
                    Some((a, _)) => format!(
                        "U undo {a} (shows the undo plan first) · v verify again · Esc close"
                    ),
                    None => "Esc close".to_string(),
                },
                t.dim(),
            ));
        }
    }
    out
}

pub fn lines<'a>(app: &App, d: &PlanDialog) -> Vec<Line<'a>> {
    if let Some(run) = &d.run {
        return run_lines(app, run);
    }
    let t = app.theme;
    let proposals = app.proposals_of(&d.finding);
    let mut out = Vec::new();
    if let Some(f) = app.findings().iter().find(|f| f.id == d.finding) {
        out.push(Line::styled(f.summary.clone(), t.title()));
        out.push(Line::from(""));
    }
    for (i, p) in proposals.iter().enumerate() {
        let mark = if i == d.selected { "›" } else { " " };
        let mut spans = vec![Span::raw(format!("{mark} {} ", p.title))];
        spans.push(Span::styled(
            format!("[{}]", action_name(&p.action)),
            t.dim(),
        ));
        if let Some(dec) = app.decisions.get(&p.id) {
            spans.push(Span::styled(format!("  {}", dec.label()), t.approved()));
        }
        let line = Line::from(spans);
        out.push(if i == d.selected {
            line.style(t.selected())
        } else {
            line
        });
    }
    let Some(p) = proposals.get(d.selected) else {
        return out;
    };
    out.push(Line::from(""));
    out.push(Line::styled("Plan", t.header()));
    out.push(Line::from(
        format!("action: {}   risk: {:?}", action_name(&p.action), p.risk).to_lowercase(),
    ));
    if !p.preconditions.is_empty() {
        out.push(Line::styled("Preconditions", t.header()));
        out.extend(
            p.preconditions
                .iter()
                .map(|c| Line::from(format!("  □ {c}"))),
        );
    }
    if !p.steps.is_empty() {
        out.push(Line::styled("Check first", t.header()));
        out.extend(
            p.steps
                .iter()
                .enumerate()
                .map(|(i, s)| Line::from(format!("  {}. {s}", i + 1))),
        );
    }
    out.push(Line::styled("Dry run", t.header()));
    if let Some(l) = app.loaded() {
        out.extend(
            dry_run(p, &l.snapshot)
                .into_iter()
                .map(|s| Line::styled(format!("  {s}"), t.dim())),
        );
    }
    out.push(Line::from(""));
    match d.confirm {
        Some(Decision::Approved) => out.push(Line::styled(
            format!("Approve \"{}\"? y confirms, n cancels", p.title),
            t.error(),
        )),
        Some(Decision::Rejected) => out.push(Line::styled(
            format!("Reject \"{}\"? y confirms, n cancels", p.title),
            t.error(),
        )),
        None if app.live.is_some() => out.push(Line::styled(
            "A plan on the live instance (review, then execute) · R reject (then y) · j/k choose · PgDn scroll · Esc close",
            t.dim(),
        )),
        None => out.push(Line::styled(
            "A approve · R reject (then y) · j/k choose · Esc close — folder data: recorded only, not executed",
            t.dim(),
        )),
    }
    out
}

pub fn render(app: &App, d: &PlanDialog, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let w = (area.width as u32 * 9 / 10) as u16;
    let h = (area.height as u32 * 9 / 10) as u16;
    let box_area = centered(area, w.max(40), h.max(10));
    clear(box_area, buf);
    scrolled_text(
        lines(app, d),
        d.scroll,
        pane("Remediation plan", true, t),
        box_area,
        buf,
    );
}
