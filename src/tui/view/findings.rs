//! Findings, ranked, and the selected one in full: its evidence (numbers,
//! excerpts, raw records with file:line), the playbook's steps and the
//! proposed remediations with any decision taken.

use super::{finding_line, list_rows, pane, scrolled_text, tag};
use crate::model::{Finding, Timestamp};
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let focus = app.crumb().focus;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let rows = app.finding_rows();
    let block = pane(
        format!("Findings ({}) · most urgent first", rows.len()),
        focus == 0,
        t,
    );
    let inner = block.inner(left);
    block.render(left, buf);
    if rows.is_empty() {
        Line::styled("nothing found in this window", t.dim()).render(inner, buf);
    } else {
        let lines: Vec<Line> = rows.iter().map(|f| finding_line(f, t)).collect();
        list_rows(lines, Some(app.selected(0)), focus == 0, t, inner, buf);
    }
    let detail = match rows.get(app.selected(0)) {
        Some(f) => detail_lines(app, f),
        None => vec![Line::styled("select a finding", t.dim())],
    };
    scrolled_text(
        detail,
        app.crumb().scroll[1],
        pane("Detail", focus == 1, t),
        right,
        buf,
    );
}

fn window_text(f: &Finding) -> Option<String> {
    let w = f.window?;
    Some(format!(
        "{}–{} UTC ({} min)",
        w.start.hhmm(),
        w.end.hhmm(),
        w.duration_minutes()
    ))
}

fn value_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v != 0.0 && v.abs() < 0.001 {
        format!("{v:.1e}")
    } else {
        format!("{v:.3}")
    }
}

fn record_time(t: Timestamp) -> String {
    t.to_rfc3339().get(11..19).unwrap_or("").to_string()
}

/// The full text of one finding.
pub fn detail_lines<'a>(app: &App, f: &Finding) -> Vec<Line<'a>> {
    let t = app.theme;
    let mut out = vec![
        Line::from(vec![
            Span::styled(tag(f.severity), t.severity(f.severity)),
            Span::styled(format!(" {}", f.summary), t.title()),
        ]),
        Line::styled(
            format!(
                "{} · {} · confidence {:.2}{}",
                f.severity,
                f.kind,
                f.confidence,
                f.rule
                    .as_deref()
                    .map(|r| format!(" · rule {r}"))
                    .unwrap_or_default()
            ),
            t.dim(),
        ),
        Line::from(format!("subject: {}", f.subject)),
    ];
    if let Some(w) = window_text(f) {
        out.push(Line::from(format!("window:  {w}")));
    }
    if let Some(l) = &f.location {
        out.push(Line::from(format!("at:      {l}")));
    }
    out.push(Line::from(""));
    out.push(Line::styled("Evidence", t.header()));
    for e in &f.evidence {
        out.push(Line::from(format!("• {}", e.text)));
        if !e.values.is_empty() {
            let vals: Vec<String> = e
                .values
                .iter()
                .map(|(k, v)| format!("{k}={}", value_text(*v)))
                .collect();
            out.push(Line::styled(format!("    {}", vals.join("  ")), t.dim()));
        }
        if let Some(x) = &e.excerpt {
            for line in x.lines().take(20) {
                out.push(Line::styled(format!("    │ {line}"), t.dim()));
            }
        }
        for r in &e.records {
            let reason = r.last_error_reason.as_deref().unwrap_or("");
            out.push(Line::from(format!(
                "    {} {} {} {} {}ms {reason}",
                record_time(r.time),
                r.response_code,
                r.method.as_deref().unwrap_or(""),
                r.operation_id,
                r.total_time_ms,
            )));
            out.push(Line::styled(format!("      at {}", r.origin), t.cursor()));
        }
        for s in &e.sources {
            out.push(Line::styled(format!("    ↳ {s}"), t.dim()));
        }
    }
    let steps = app.playbooks.steps(f);
    if !steps.is_empty() {
        out.push(Line::from(""));
        out.push(Line::styled("Steps (playbook)", t.header()));
        for (i, s) in steps.iter().enumerate() {
            out.push(Line::from(format!("{}. {s}", i + 1)));
        }
    }
    let proposals = app.proposals_of(&f.id);
    if !proposals.is_empty() {
        out.push(Line::from(""));
        out.push(Line::styled("Proposed remediations", t.header()));
        for p in proposals {
            let mut spans = vec![
                Span::raw(format!("• {} ", p.title)),
                Span::styled(format!("[{:?} risk]", p.risk).to_lowercase(), t.dim()),
            ];
            if let Some(d) = app.decisions.get(&p.id) {
                spans.push(Span::styled(format!("  {}", d.label()), t.approved()));
            }
            out.push(Line::from(spans));
        }
        if !app.readonly {
            out.push(Line::styled("p: plan, dry run, approve or reject", t.dim()));
        }
    }
    out
}
