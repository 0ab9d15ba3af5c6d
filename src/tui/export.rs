//! `:export md|json FILE`: the current view as Markdown or JSON. From the
//! overview and the findings list it is the incident ticket (verdict,
//! window, stories, every finding with its start, state and requests, the
//! selected finding in full with its steps, proposals and decisions); the
//! operations and backends views export their tables. Pure: the UI loop
//! writes the text. (The logs view's rows are written by the logs thread.)

use super::app::{App, Screen};
use super::data::age_text;
use super::view::verdict;
use crate::model::Finding;
use serde_json::{Value, json};
use std::fmt::Write;

/// The text of the current view.
pub fn view(app: &App, markdown: bool) -> String {
    match app.screen() {
        Screen::Operations => operations(app, markdown),
        Screen::Backends => backends(app, markdown),
        _ => ticket(app, markdown),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn window_label(app: &App) -> String {
    match app.range() {
        Some((a, b)) => super::view::window_label(a, b, app.cursor),
        None => "no time-stamped data".into(),
    }
}

fn state_text(app: &App, f: &Finding) -> (String, String, String) {
    match app.finding_time(f) {
        Some(t) => (
            t.start.to_rfc3339(),
            match t.ended {
                None => "ongoing".into(),
                Some(e) => format!("ended {}", e.to_rfc3339()),
            },
            age_text(t.age_minutes),
        ),
        None => (String::new(), "configuration".into(), String::new()),
    }
}

/// The incident ticket.
fn ticket(app: &App, markdown: bool) -> String {
    let Some(l) = app.loaded() else {
        return String::new();
    };
    let d = &l.scoped.diagnosis;
    let (word, _) = verdict(d);
    let rows = app.finding_rows();
    let selected = app.current_finding().or(rows.first().copied());
    if !markdown {
        let findings: Vec<Value> = rows
            .iter()
            .map(|f| {
                let (start, state, age) = state_text(app, f);
                let c = app.request_count(&f.id).unwrap_or_default();
                json!({
                    "id": f.id,
                    "story": app.story_of(&f.id).map(|(s, _)| s + 1),
                    "severity": f.severity,
                    "kind": f.kind,
                    "subject": f.subject,
                    "summary": f.summary,
                    "start": start,
                    "state": state,
                    "age": age,
                    "requests": c.requests,
                    "failing": c.failing,
                })
            })
            .collect();
        let decisions: Vec<Value> = app
            .decisions
            .iter()
            .map(|(p, dec)| json!({"proposal": p, "decision": dec.label()}))
            .collect();
        let doc = json!({
            "source": app.source,
            "window": window_label(app),
            "verdict": word,
            "stories": d.stories,
            "findings": findings,
            "selected": selected,
            "steps": selected.map(|f| app.playbooks.steps(f)),
            "proposals": selected.map(|f| app.proposals_of(&f.id)),
            "decisions": decisions,
        });
        return serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    let _ = writeln!(out, "# Incident: {word} — {}\n", app.source);
    let _ = writeln!(out, "Window: {}\n", window_label(app));
    if !d.stories.is_empty() {
        let _ = writeln!(out, "## Stories\n");
        for (i, s) in d.stories.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}. **{}** ({}) — {}",
                i + 1,
                s.title,
                s.severity,
                s.narrative
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Findings\n");
    let _ = writeln!(
        out,
        "| severity | story | state | start | age | requests | failing | kind | subject | id |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for f in &rows {
        let (start, state, age) = state_text(app, f);
        let c = app.request_count(&f.id).unwrap_or_default();
        let story = app
            .story_of(&f.id)
            .map(|(s, _)| format!("S{}", s + 1))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {story} | {state} | {start} | {age} | {} | {} | {} | {} | `{}` |",
            f.severity,
            c.requests,
            c.failing,
            f.kind,
            cell(&f.subject.to_string()),
            f.id
        );
    }
    if let Some(f) = selected {
        let _ = writeln!(out, "\n## {}\n", cell(&f.summary));
        let _ = writeln!(out, "- id: `{}`", f.id);
        let (start, state, _) = state_text(app, f);
        if !start.is_empty() {
            let _ = writeln!(out, "- since {start}, {state}");
        }
        for e in &f.evidence {
            let _ = writeln!(out, "- {}", cell(&e.text));
            for r in &e.records {
                let _ = writeln!(
                    out,
                    "  - {} {} {} {} ms at `{}`",
                    r.time,
                    r.response_code,
                    r.last_error_reason.as_deref().unwrap_or(""),
                    r.total_time_ms,
                    r.origin
                );
            }
        }
        let steps = app.playbooks.steps(f);
        if !steps.is_empty() {
            let _ = writeln!(out, "\n### Steps\n");
            for (i, s) in steps.iter().enumerate() {
                let _ = writeln!(out, "{}. {s}", i + 1);
            }
        }
        let proposals = app.proposals_of(&f.id);
        if !proposals.is_empty() {
            let _ = writeln!(out, "\n### Proposed remediations\n");
            for p in proposals {
                let decided = app
                    .decisions
                    .get(&p.id)
                    .map(|d| format!(" — {}", d.label()))
                    .unwrap_or_default();
                let _ = writeln!(out, "- {} [{:?} risk]{decided}", p.title, p.risk);
            }
        }
    }
    out
}

fn operations(app: &App, markdown: bool) -> String {
    let rows = app.op_rows();
    if !markdown {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "api": r.api, "operation": r.operation, "requests": r.requests,
                    "status_5xx": r.errors, "status_4xx": r.client_errors,
                    "status_429": r.throttled, "p95_ms": r.p95_ms,
                    "backends": r.backends, "health": format!("{:?}", r.health).to_lowercase(),
                })
            })
            .collect();
        return serde_json::to_string_pretty(
            &json!({"window": window_label(app), "operations": v}),
        )
        .unwrap_or_default()
            + "\n";
    }
    let mut out = format!("# Operations — {}\n\n", window_label(app));
    out.push_str("| operation | requests | 5xx % | 4xx | 429 | p95 ms | backend | health |\n");
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {} | {} | {} | {:?} |",
            cell(&r.label()),
            r.requests,
            r.error_percent(),
            r.client_errors,
            r.throttled,
            r.p95_ms.map(|p| p.to_string()).unwrap_or_default(),
            cell(&r.backends.join(", ")),
            r.health
        );
    }
    out
}

fn backends(app: &App, markdown: bool) -> String {
    let rows = app.backend_rows();
    if !markdown {
        let v: Vec<Value> = rows
            .iter()
            .map(|b| {
                json!({
                    "backend": b.id, "url": b.url, "seen_as": b.seen_as,
                    "requests": b.requests, "status_5xx": b.errors,
                    "status_4xx": b.client_errors, "status_429": b.throttled,
                    "health": format!("{:?}", b.health).to_lowercase(),
                    "operations": b.operations, "failing_operations": b.failing,
                })
            })
            .collect();
        return serde_json::to_string_pretty(&json!({"window": window_label(app), "backends": v}))
            .unwrap_or_default()
            + "\n";
    }
    let mut out = format!("# Backends — {}\n\n", window_label(app));
    out.push_str(
        "| backend | url | health | requests | 5xx | 4xx | 429 | operations | failing |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for b in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:?} | {} | {} | {} | {} | {} | {} |",
            cell(&b.id),
            cell(b.url.as_deref().unwrap_or("")),
            b.health,
            b.requests,
            b.errors,
            b.client_errors,
            b.throttled,
            cell(&b.operations.join(", ")),
            cell(&b.failing.join(", ")),
        );
    }
    out
}
