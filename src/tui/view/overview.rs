//! The overview: verdict, request rate / 5xx rate / p95 over time with
//! finding windows marked, gateway capacity, CPU and memory gauges at the
//! cursor, and the top findings.

use super::chart::{Chart, Series, fmt_count, fmt_ms, fmt_percent};
use super::{anomaly_marks, finding_line, list_rows, pane, verdict, verdict_detail, verdict_style};
use crate::model::{MetricSeries, Timestamp};
use crate::tui::app::App;
use crate::tui::data::Loaded;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(l) = app.loaded() else { return };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(area);
    charts(app, l, left, buf);
    let [v, g, f] = Layout::vertical([
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Min(3),
    ])
    .areas(right);
    verdict_pane(app, l, v, buf);
    gauges(app, l, g, buf);
    top_findings(app, f, buf);
}

fn charts(app: &App, l: &Loaded, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    if l.range.is_none() {
        Paragraph::new("no traffic in the data")
            .block(pane("Traffic", false, t))
            .render(area, buf);
        return;
    }
    let marks = anomaly_marks(l.scoped.diagnosis.findings.iter(), l.grid);
    let areas: [Rect; 3] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(area);
    let series: [Series; 3] = [
        (
            "requests/min",
            l.total.iter().map(|p| Some(p.requests as f64)).collect(),
            fmt_count,
        ),
        (
            "5xx %",
            l.total.iter().map(|p| p.error_percent).collect(),
            fmt_percent,
        ),
        (
            "p95 latency",
            l.total.iter().map(|p| p.p95_ms.map(f64::from)).collect(),
            fmt_ms,
        ),
    ];
    for ((title, values, format), a) in series.into_iter().zip(areas) {
        Chart {
            title,
            values,
            marks: marks.clone(),
            cursor: app.cursor,
            grid: l.grid,
            format,
            theme: t,
        }
        .render(a, buf);
    }
}

fn verdict_pane(app: &App, l: &Loaded, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let d = &l.scoped.diagnosis;
    let (word, _) = verdict(d);
    let style = verdict_style(t, d);
    let mut lines = vec![Line::styled(
        format!("● {word}"),
        style.add_modifier(ratatui::style::Modifier::BOLD),
    )];
    if let Some(detail) = verdict_detail(d) {
        lines.push(Line::styled(detail, t.dim()));
    }
    if let Some(story) = d.stories.first() {
        lines.push(Line::from(story.title.clone()));
    } else if let Some(f) = d.findings.first() {
        lines.push(Line::from(f.summary.clone()));
    } else {
        lines.push(Line::styled("no findings in this window", t.dim()));
    }
    let mut counts = Vec::new();
    for s in crate::model::Severity::ALL.iter().rev() {
        let n = d.findings.iter().filter(|f| f.severity == *s).count();
        if n > 0 {
            counts.push(format!("{n} {s}"));
        }
    }
    if !counts.is_empty() {
        lines.push(Line::styled(
            format!("findings: {}", counts.join(", ")),
            t.dim(),
        ));
    }
    Paragraph::new(lines)
        .block(pane("Health", false, t))
        .wrap(Wrap { trim: true })
        .render(area, buf);
}

/// The last point of a series at or before the cursor's minute.
fn latest(m: &MetricSeries, app: &App) -> Option<(Timestamp, f64)> {
    let until = app.cursor.map(|c| Timestamp::from_minute(c + 1));
    m.points
        .iter()
        .rev()
        .find(|(ts, v)| until.is_none_or(|u| *ts < u) && v.is_finite())
        .copied()
}

fn gauges(app: &App, l: &Loaded, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let block = pane("Gateway", false, t);
    let inner = block.inner(area);
    block.render(area, buf);
    let rows = [
        ("capacity", l.gauges.capacity),
        ("CPU", l.gauges.cpu),
        ("memory", l.gauges.memory),
    ];
    for (i, (label, series)) in rows.into_iter().enumerate() {
        if i as u16 >= inner.height {
            break;
        }
        let row = Rect::new(inner.x, inner.y + i as u16, inner.width, 1);
        let value = series
            .and_then(|i| l.snapshot.metrics.get(i))
            .and_then(|m| latest(m, app))
            .map(|(_, v)| v);
        gauge_line(label, value, t, row, buf);
    }
}

/// `capacity [█████░░░░░]  48%`, or `n/a` when the metric is absent.
pub fn gauge_line(label: &str, value: Option<f64>, t: Theme, area: Rect, buf: &mut Buffer) {
    let w = area.width as usize;
    let bar_w = w.saturating_sub(9 + 7);
    let mut spans = vec![Span::styled(format!("{label:<9}"), t.dim())];
    match value {
        Some(v) => {
            let filled = ((v.clamp(0.0, 100.0) / 100.0) * bar_w as f64).round() as usize;
            spans.push(Span::styled("█".repeat(filled), t.gauge(v)));
            spans.push(Span::styled("░".repeat(bar_w - filled), t.dim()));
            spans.push(Span::styled(format!(" {v:>4.0}%"), t.gauge(v)));
        }
        None => spans.push(Span::styled("n/a", t.dim())),
    }
    Line::from(spans).render(area, buf);
}

pub fn top_findings(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let rows = app.finding_rows();
    let block = pane(format!("Top findings ({})", rows.len()), true, t);
    let inner = block.inner(area);
    block.render(area, buf);
    if rows.is_empty() {
        Line::styled("nothing found in this window", t.dim()).render(inner, buf);
        return;
    }
    let lines: Vec<Line> = rows.iter().map(|f| finding_line(f, t)).collect();
    list_rows(lines, Some(app.selected(0)), true, t, inner, buf);
}
