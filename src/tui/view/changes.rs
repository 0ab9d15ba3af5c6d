//! The change timeline: configuration writes and deployments in time
//! order, with `▶` rows where an anomaly begins, and the selected change's
//! policy diff and lead time before the next anomaly.

use super::backend::short_op;
use super::{list_rows, pane, scrolled_text, subject_short};
use crate::model::{Change, ChangeKind, Finding};
use crate::tui::app::{App, ChangeRow};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub fn kind_word(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Config => "config",
        ChangeKind::Deployment => "deploy",
        ChangeKind::Network => "network",
        ChangeKind::Scale => "scale",
        ChangeKind::Delete => "delete",
        ChangeKind::Other => "other",
    }
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(l) = app.loaded() else { return };
    let t = app.theme;
    let focus = app.crumb().focus;
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let rows = app.change_rows();
    let n_changes = rows
        .iter()
        .filter(|r| matches!(r, ChangeRow::Change(_)))
        .count();
    let block = pane(
        format!("Changes ({n_changes}) · ▶ anomaly begins"),
        focus == 0,
        t,
    );
    let inner = block.inner(left);
    block.render(left, buf);
    let findings = &l.scoped.diagnosis.findings;
    let lines: Vec<Line> = rows
        .iter()
        .map(|r| match *r {
            ChangeRow::Change(i) => match l.snapshot.changes.get(i) {
                Some(c) => change_line(c, t),
                None => Line::from(""),
            },
            ChangeRow::Onset(i) => match findings.get(i) {
                Some(f) => onset_line(f, t),
                None => Line::from(""),
            },
        })
        .collect();
    if lines.is_empty() {
        Line::styled("no changes in the data", t.dim()).render(inner, buf);
    } else {
        list_rows(lines, Some(app.selected(0)), focus == 0, t, inner, buf);
    }
    let detail = match rows.get(app.selected(0)) {
        Some(ChangeRow::Change(i)) => change_detail(app, *i),
        Some(ChangeRow::Onset(i)) => findings
            .get(*i)
            .map(|f| {
                vec![
                    Line::styled(
                        format!(
                            "Anomaly begins at {}",
                            f.window.map(|w| w.start.hhmm()).unwrap_or_default()
                        ),
                        t.severity(f.severity),
                    ),
                    Line::from(f.summary.clone()),
                    Line::styled(format!("{} · {}", f.kind, f.subject), t.dim()),
                ]
            })
            .unwrap_or_default(),
        None => vec![Line::styled("select a change", t.dim())],
    };
    scrolled_text(
        detail,
        app.crumb().scroll[1],
        pane("Change", focus == 1, t),
        right,
        buf,
    );
}

fn change_line<'a>(c: &Change, t: crate::tui::theme::Theme) -> Line<'a> {
    let target = c
        .policy_scope
        .as_ref()
        .map(|s| s.to_string())
        .or_else(|| {
            c.resource_id
                .as_deref()
                .and_then(|r| r.rsplit('/').next())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let status = match c.status.as_deref() {
        Some(s) if s.eq_ignore_ascii_case("Failed") => " (failed)".to_string(),
        Some(s) if !s.eq_ignore_ascii_case("Succeeded") => format!(" ({})", s.to_ascii_lowercase()),
        _ => String::new(),
    };
    Line::from(vec![
        Span::styled(c.time.hhmm(), t.cursor()),
        Span::raw(format!(
            " {:<7} {} ",
            kind_word(c.kind),
            short_op(&c.operation)
        )),
        Span::styled(target, t.dim()),
        Span::styled(
            status.clone(),
            if status == " (failed)" {
                t.error()
            } else {
                t.dim()
            },
        ),
    ])
}

fn onset_line<'a>(f: &Finding, t: crate::tui::theme::Theme) -> Line<'a> {
    let at = f.window.map(|w| w.start.hhmm()).unwrap_or_default();
    Line::styled(
        format!("{at} ▶ {} begins: {}", f.kind, subject_short(&f.subject)),
        t.severity(f.severity),
    )
}

fn change_detail<'a>(app: &App, i: usize) -> Vec<Line<'a>> {
    let t = app.theme;
    let Some(l) = app.loaded() else {
        return Vec::new();
    };
    let Some(c) = l.snapshot.changes.get(i) else {
        return Vec::new();
    };
    let mut out = vec![
        Line::styled(format!("{} {}", c.time, c.operation), t.title()),
        Line::from(format!(
            "{} · {}",
            kind_word(c.kind),
            c.status.as_deref().unwrap_or("status unknown")
        )),
    ];
    if let Some(who) = &c.caller {
        out.push(Line::from(format!("by {who}")));
    }
    if let Some(s) = &c.policy_scope {
        out.push(Line::from(format!("policy scope {s}")));
    }
    if let Some(r) = &c.resource_id {
        out.push(Line::styled(r.clone(), t.dim()));
    }
    if let Some(d) = &c.description {
        out.push(Line::from(d.clone()));
    }
    out.push(Line::styled(format!("from {}", c.origin), t.dim()));
    let next = l
        .scoped
        .diagnosis
        .findings
        .iter()
        .filter(|f| f.kind.is_anomaly())
        .filter_map(|f| f.window.map(|w| (w.start, f)))
        .filter(|(s, _)| *s >= c.time)
        .min_by_key(|(s, _)| *s);
    if let Some((start, f)) = next {
        let lead = (start.millis() - c.time.millis()) / 60_000;
        out.push(Line::styled(
            format!(
                "{lead} min before {} began ({})",
                f.kind,
                subject_short(&f.subject)
            ),
            t.severity(f.severity),
        ));
    }
    out.push(Line::from(""));
    match l.diffs.get(i).and_then(|d| d.as_deref()) {
        Some(diff) => {
            out.push(Line::styled("Policy diff", t.header()));
            for line in diff.lines() {
                let style = if line.starts_with("+++") || line.starts_with("---") {
                    t.dim()
                } else if line.starts_with('+') {
                    t.diff_added()
                } else if line.starts_with('-') {
                    t.diff_removed()
                } else if line.starts_with("@@") {
                    t.dim()
                } else {
                    ratatui::style::Style::new()
                };
                out.push(Line::styled(line.to_string(), style));
            }
        }
        None if c.policy_after.is_some() => {
            out.push(Line::styled(
                "Policy set (no earlier version known)",
                t.header(),
            ));
            for line in c.policy_after.as_deref().unwrap_or("").lines().take(200) {
                out.push(Line::from(line.to_string()));
            }
        }
        None => {}
    }
    out
}
