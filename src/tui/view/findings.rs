//! Findings, ranked, and the selected one in full: its evidence (numbers,
//! excerpts, raw records with file:line), the playbook's steps and the
//! proposed remediations with any decision taken.

use super::{count, list_rows, pane, scrolled_text, subject_short};
use crate::model::{Finding, Timestamp};
use crate::tui::app::App;
use crate::tui::data::age_text;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

/// `10:42`, or `03-05 10:42` on data spanning several days.
pub fn when(t: Timestamp, with_date: bool) -> String {
    if with_date {
        let d = t.to_rfc3339();
        format!("{} {}", d.get(5..10).unwrap_or(""), t.hhmm())
    } else {
        t.hhmm()
    }
}

/// Whether the data spans more than one UTC day.
pub fn multi_day(app: &App) -> bool {
    app.range()
        .is_some_and(|(a, b)| a.div_euclid(1440) != b.div_euclid(1440))
}

/// A finding as a row of the findings list: severity, story, ongoing or
/// ended, start, age, requests and failing ones behind it, kind, subject, id.
pub fn finding_row<'a>(app: &App, f: &Finding) -> Line<'a> {
    let t = app.theme;
    let days = multi_day(app);
    let story = app
        .story_of(&f.id)
        .map(|(s, _)| format!("S{}", s + 1))
        .unwrap_or_else(|| "–".into());
    let time = app.finding_time(f);
    let (state, state_style) = match time {
        Some(ft) => match ft.ended {
            None => ("● ongoing".to_string(), t.severity(f.severity)),
            Some(e) => (format!("○ ended {}", e.hhmm()), t.dim()),
        },
        None => ("  config".to_string(), t.dim()),
    };
    let start = time.map(|ft| when(ft.start, days)).unwrap_or_default();
    let age = time.map(|ft| age_text(ft.age_minutes)).unwrap_or_default();
    let (reqs, fail) = match app.request_count(&f.id) {
        Some(c) if c.requests > 0 => (count(c.requests), count(c.failing)),
        _ => ("–".into(), "–".into()),
    };
    let sw = if days { 11 } else { 5 };
    Line::from(vec![
        Span::styled(f.severity.tag(), t.severity(f.severity)),
        Span::raw(format!(" {story:<3} ")),
        Span::styled(format!("{state:<13} "), state_style),
        Span::raw(format!("{start:<sw$} {age:>6} {reqs:>6} ")),
        Span::styled(
            format!("{fail:>6} "),
            if fail == "–" || fail == "0" {
                t.dim()
            } else {
                t.severity(f.severity)
            },
        ),
        Span::raw(format!("{} ", f.kind)),
        Span::styled(format!("{}  ", subject_short(&f.subject)), t.title()),
        Span::styled(f.id.clone(), t.dim()),
    ])
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let focus = app.crumb().focus;
    let [left, right] = if area.width >= 160 {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area)
    };
    let rows = app.finding_rows();
    let block = pane(
        format!(
            "Findings ({}) · by story, cause first · l rows · y id · p plan",
            rows.len()
        ),
        focus == 0,
        t,
    );
    let inner = block.inner(left);
    block.render(left, buf);
    if rows.is_empty() {
        Line::styled("nothing found in this window", t.dim()).render(inner, buf);
    } else {
        let [head, list] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
        let sw = if multi_day(app) { 11 } else { 5 };
        Line::styled(
            format!(
                "SEV  STORY STATE         {:<sw$}    AGE   REQS   FAIL KIND SUBJECT ID",
                "START"
            ),
            t.header(),
        )
        .render(head, buf);
        let lines: Vec<Line> = rows.iter().map(|f| finding_row(app, f)).collect();
        list_rows(lines, Some(app.selected(0)), focus == 0, t, list, buf);
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

fn window_text(app: &App, f: &Finding) -> Option<String> {
    let w = f.window?;
    let state = match app.finding_time(f) {
        Some(ft) if ft.ended.is_none() => {
            format!(" · ongoing, started {} ago", age_text(ft.age_minutes))
        }
        Some(_) => " · ended".to_string(),
        None => String::new(),
    };
    Some(format!(
        "{} – {} UTC ({} min){state}",
        w.start.to_rfc3339(),
        w.end.to_rfc3339(),
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
            Span::styled(f.severity.tag(), t.severity(f.severity)),
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
        Line::styled(format!("id:      {} (y copies)", f.id), t.dim()),
    ];
    if let Some(w) = window_text(app, f) {
        out.push(Line::from(format!("window:  {w}")));
    }
    if let Some(c) = app.request_count(&f.id).filter(|c| c.requests > 0) {
        out.push(Line::from(format!(
            "requests: {} in the window, {} failing (5xx or 429) · l lists them",
            c.requests, c.failing
        )));
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
