//! One operation: its charts, its findings, its effective policy with the
//! lines findings point at highlighted, and the backends it reaches.

use super::chart::{Chart, Series, fmt_count, fmt_ms, fmt_percent};
use super::{anomaly_marks, count, list_rows, millis, pane, scrolled_code};
use crate::model::{Finding, FindingKind, Severity};
use crate::tools::MinuteRow;
use crate::tui::app::App;
use crate::tui::data::{Grid, Loaded, PolicyView};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

pub fn render(app: &App, api: &str, op: &str, area: Rect, buf: &mut Buffer) {
    let Some(l) = app.loaded() else { return };
    let t = app.theme;
    let focus = app.crumb().focus;
    let [head, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(4)]).areas(area);
    header(app, l, api, op, head, buf);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(48), Constraint::Percentage(52)]).areas(body);
    charts(app, l, api, op, left, buf);
    let findings = app.findings_of_op(api, op);
    let backends = app.op_backends(api, op);
    let fh = (findings.len().clamp(1, 5) + 2) as u16;
    let bh = (backends.len().clamp(1, 4) + 2) as u16;
    let [fa, pa, ba] = Layout::vertical([
        Constraint::Length(fh),
        Constraint::Min(4),
        Constraint::Length(bh),
    ])
    .areas(right);

    let block = pane(format!("Findings ({})", findings.len()), focus == 0, t);
    let inner = block.inner(fa);
    block.render(fa, buf);
    if findings.is_empty() {
        Line::styled("none in this window", t.dim()).render(inner, buf);
    } else {
        let lines: Vec<Line> = findings
            .iter()
            .map(|f| {
                Line::from(vec![
                    Span::styled(f.severity.tag(), t.severity(f.severity)),
                    Span::raw(format!(" {} ", f.kind)),
                    Span::styled(f.summary.clone(), t.dim()),
                ])
            })
            .collect();
        list_rows(lines, Some(app.selected(0)), focus == 0, t, inner, buf);
    }

    let policy_lines = match app
        .policy
        .as_ref()
        .filter(|p| p.api == api && p.operation == op && p.cursor == app.cursor)
    {
        Some(p) => policy_lines(p, &findings, t),
        None => vec![Line::styled("reading the effective policy…", t.dim())],
    };
    scrolled_code(
        policy_lines,
        app.crumb().scroll[1],
        pane("Effective policy", focus == 1, t),
        pa,
        buf,
    );

    let block = pane("Backend (Enter opens)", focus == 2, t);
    let inner = block.inner(ba);
    block.render(ba, buf);
    let entry = l
        .scoped
        .diagnosis
        .backend_map
        .iter()
        .find(|e| e.api == api && e.operation == op);
    let lines: Vec<Line> = backends
        .iter()
        .map(|b| {
            let health = entry.map(|e| e.health).unwrap_or_default();
            let app_note = l
                .apps
                .get(&b.to_ascii_lowercase())
                .and_then(|a| a.health.as_ref())
                .and_then(|h| h.phrase())
                .unwrap_or_default();
            Line::from(vec![
                Span::raw(format!("{b}  ")),
                Span::styled(health.as_str(), t.health(health)),
                Span::styled(format!("  {app_note}"), t.dim()),
            ])
        })
        .collect();
    if lines.is_empty() {
        Line::styled("no backend seen or configured", t.dim()).render(inner, buf);
    } else {
        list_rows(lines, Some(app.selected(2)), focus == 2, t, inner, buf);
    }
}

fn header(app: &App, l: &Loaded, api: &str, op: &str, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let known = l
        .snapshot
        .operations
        .iter()
        .find(|o| o.api_id.eq_ignore_ascii_case(api) && o.id.eq_ignore_ascii_case(op));
    let route = known
        .map(|o| {
            format!(
                "  {} {}",
                o.method.as_deref().unwrap_or(""),
                o.url_template.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{api}/{op}"), t.title()),
        Span::styled(route, t.dim()),
    ])];
    match l
        .scoped
        .ops
        .iter()
        .find(|r| r.api == api && r.operation == op)
    {
        Some(r) => lines.push(Line::from(vec![
            Span::raw(format!(
                "in window: {} requests · {:.1}% 5xx · p95 {} ms · ",
                count(r.requests),
                r.error_percent(),
                millis(r.p95_ms)
            )),
            Span::styled(r.health.as_str(), t.health(r.health)),
        ])),
        None => lines.push(Line::styled("no traffic in this window", t.dim())),
    }
    Paragraph::new(lines).render(area, buf);
}

/// A sparse per-minute table made dense on the views' grid (the largest
/// value of a point's minutes).
pub fn dense(
    rows: &[MinuteRow],
    grid: Grid,
    value: impl Fn(&MinuteRow) -> Option<f64>,
) -> Vec<Option<f64>> {
    let mut out = vec![None; grid.len];
    for r in rows {
        if let Some(slot) = grid.slot(r.minute).and_then(|i| out.get_mut(i))
            && let Some(v) = value(r)
        {
            *slot = Some(slot.map_or(v, |o: f64| o.max(v)));
        }
    }
    out
}

fn charts(app: &App, l: &Loaded, api: &str, op: &str, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let (Some(_), Some(o)) = (l.range, l.full.operation(api, op)) else {
        Paragraph::new("no traffic for this operation")
            .block(pane("Traffic", false, t))
            .render(area, buf);
        return;
    };
    let grid = l.grid;
    let marks = anomaly_marks(app.findings_of_op(api, op).into_iter(), grid);
    let zero_filled = |v: Vec<Option<f64>>| {
        v.into_iter()
            .map(|x| Some(x.unwrap_or(0.0)))
            .collect::<Vec<_>>()
    };
    let series: [Series; 3] = [
        (
            "requests/min",
            zero_filled(dense(&o.minutes, grid, |r| Some(r.stats.requests as f64))),
            fmt_count,
        ),
        (
            "5xx %",
            dense(&o.minutes, grid, |r| {
                (r.stats.requests > 0).then(|| 100.0 * r.stats.error_rate())
            }),
            fmt_percent,
        ),
        (
            "p95 latency",
            dense(&o.minutes, grid, |r| r.stats.total_time.p95.map(f64::from)),
            fmt_ms,
        ),
    ];
    let areas: [Rect; 3] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(area);
    for ((title, values, format), a) in series.into_iter().zip(areas) {
        Chart {
            title,
            values,
            marks: marks.clone(),
            cursor: app.cursor,
            grid,
            format,
            theme: t,
        }
        .render(a, buf);
    }
}

/// Which statement a finding kind blames, when it carries no location.
fn blamed_element(kind: FindingKind) -> Option<&'static str> {
    match kind {
        FindingKind::BackendTimeout => Some("forward-request"),
        FindingKind::RouteMismatch => Some("set-backend-service"),
        _ => None,
    }
}

/// The severity of the worst finding pointing at `file:line`.
fn blame(findings: &[&Finding], view: &PolicyView, file: &str, line: u32) -> Option<Severity> {
    let at = |f: &Finding| {
        let located = f
            .location
            .as_ref()
            .is_some_and(|l| l.file == file && l.line == Some(line));
        let sourced = f
            .evidence
            .iter()
            .flat_map(|e| &e.sources)
            .any(|o| o.file == file && o.line == Some(line));
        let by_kind = blamed_element(f.kind).is_some_and(|name| {
            view.key_lines
                .iter()
                .any(|(kf, kl, kn)| kf == file && *kl == line && kn == name)
        });
        located || sourced || by_kind
    };
    findings.iter().filter(|f| at(f)).map(|f| f.severity).max()
}

pub fn policy_lines<'a>(view: &PolicyView, findings: &[&Finding], t: Theme) -> Vec<Line<'a>> {
    let mut lines: Vec<Line> = view
        .in_force
        .iter()
        .map(|s| Line::styled(format!("◷ {s}"), t.header()))
        .collect();
    lines.extend(
        view.summary
            .iter()
            .map(|s| Line::styled(format!("▸ {s}"), t.dim())),
    );
    if view.docs.is_empty() {
        lines.push(Line::styled(
            "no policy document loaded on this operation's chain",
            t.dim(),
        ));
    }
    // The lines findings point at first, so they show without scrolling.
    let mut pointed = Vec::new();
    for doc in &view.docs {
        for (i, text) in doc.lines.iter().enumerate() {
            let n = doc.first_line + i as u32;
            if let Some(sev) = blame(findings, view, &doc.file, n) {
                pointed.push(Line::styled(
                    format!("▶ {}:{n} {}", doc.scope, text.trim()),
                    t.highlight(sev),
                ));
            }
        }
    }
    if !pointed.is_empty() {
        lines.push(Line::styled("Lines findings point at", t.header()));
        lines.extend(pointed);
    }
    for doc in &view.docs {
        lines.push(Line::styled(
            format!("── {}  {} ──", doc.scope, doc.file),
            t.header(),
        ));
        for (i, text) in doc.lines.iter().enumerate() {
            let n = doc.first_line + i as u32;
            match blame(findings, view, &doc.file, n) {
                Some(sev) => lines.push(Line::styled(format!("▶{n:>4} {text}"), t.highlight(sev))),
                None => lines.push(Line::from(vec![
                    Span::styled(format!(" {n:>4} "), t.dim()),
                    Span::raw(text.clone()),
                ])),
            }
        }
    }
    lines
}
