//! One backend: the entity, the operations routed to it, its app's own
//! metrics (restarts, memory, CPU…) charted over time, and deployments.

use super::chart::{Chart, fmt_plain};
use super::{anomaly_marks, list_rows, pane};
use crate::model::{BackendKind, MetricSeries};
use crate::tui::app::App;
use crate::tui::data::{Grid, Loaded};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

const CHART_HEIGHT: u16 = 6;

pub fn render(app: &App, id: &str, area: Rect, buf: &mut Buffer) {
    let Some(l) = app.loaded() else { return };
    let t = app.theme;
    let focus = app.crumb().focus;
    let info = l.apps.get(&id.to_ascii_lowercase());
    let entity = l.snapshot.backend(id);

    let mut head = vec![Line::from(vec![
        Span::styled(format!("backend {id}"), t.title()),
        Span::styled(
            match entity {
                Some(b) => format!(
                    "  {} · {}",
                    if b.kind == BackendKind::Pool {
                        "pool"
                    } else {
                        "single"
                    },
                    b.url
                        .as_deref()
                        .map_or_else(|| "no url".into(), crate::model::redact::scrub)
                ),
                None => "  (seen in traffic only; no backend entity loaded)".into(),
            },
            t.dim(),
        ),
    ])];
    match info.and_then(|i| i.health.as_ref()) {
        Some(h) => {
            let mut words = vec![Span::raw(format!("app {}: ", h.resource))];
            match h.phrase() {
                Some(p) if h.is_unhealthy() => {
                    words.push(Span::styled(p, t.health(crate::model::Health::Unhealthy)))
                }
                Some(p) => words.push(Span::raw(p)),
                None => words.push(Span::styled("no trouble in its metrics", t.dim())),
            }
            head.push(Line::from(words));
            let first = h
                .first_restart
                .map(|t| format!(" (first at {})", t.hhmm()))
                .unwrap_or_default();
            head.push(Line::styled(
                format!(
                    "restarts {}{first} · deployments {}",
                    h.restarts as u64,
                    h.deployments.len()
                ),
                t.dim(),
            ));
        }
        None => head.push(Line::styled(
            "no metrics or deployments of the app behind it",
            t.dim(),
        )),
    }
    let [ha, body] = Layout::vertical([Constraint::Length(3), Constraint::Min(4)]).areas(area);
    Paragraph::new(head).render(ha, buf);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(42), Constraint::Percentage(58)]).areas(body);

    let ops = app.backend_ops(id);
    let oh = (ops.len().clamp(1, 8) + 2) as u16;
    let [oa, da] = Layout::vertical([Constraint::Length(oh), Constraint::Min(3)]).areas(left);
    let block = pane(
        format!("Operations routed here ({})", ops.len()),
        focus == 0,
        t,
    );
    let inner = block.inner(oa);
    block.render(oa, buf);
    let lines: Vec<Line> = ops
        .iter()
        .map(|e| {
            Line::from(vec![
                Span::raw(format!("{}/{}  ", e.api, e.operation)),
                Span::styled(e.health.as_str(), t.health(e.health)),
            ])
        })
        .collect();
    if lines.is_empty() {
        Line::styled("none", t.dim()).render(inner, buf);
    } else {
        list_rows(lines, Some(app.selected(0)), focus == 0, t, inner, buf);
    }

    let mut detail: Vec<Line> = Vec::new();
    detail.push(Line::styled("Deployments", t.header()));
    let mut deployments: Vec<usize> = info.map(|i| i.deployments.clone()).unwrap_or_default();
    deployments.sort_by_key(|&i| l.snapshot.changes.get(i).map(|c| c.time));
    if deployments.is_empty() {
        detail.push(Line::styled("none recorded", t.dim()));
    }
    for c in deployments
        .iter()
        .filter_map(|&i| l.snapshot.changes.get(i))
    {
        detail.push(Line::from(vec![
            Span::styled(c.time.hhmm(), t.cursor()),
            Span::raw(format!(
                " {} {}",
                short_op(&c.operation),
                c.status.as_deref().unwrap_or("")
            )),
        ]));
        if let Some(who) = &c.caller {
            detail.push(Line::styled(format!("      by {who}"), t.dim()));
        }
    }
    if let Some(b) = entity {
        if !b.pool.is_empty() {
            detail.push(Line::styled("Pool", t.header()));
            for m in &b.pool {
                detail.push(Line::from(format!(
                    "{}  priority {} weight {}",
                    m.id,
                    m.priority
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "–".into()),
                    m.weight
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "–".into())
                )));
            }
        }
        for r in &b.circuit_breaker {
            detail.push(Line::styled("Circuit breaker", t.header()));
            detail.push(Line::from(format!(
                "{}: trips after {} failures",
                r.name,
                r.count.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
            )));
        }
        if let Some(rid) = &b.resource_id {
            detail.push(Line::styled(format!("resource {rid}"), t.dim()));
        }
    }
    Paragraph::new(detail)
        .block(pane("App", false, t))
        .wrap(Wrap { trim: false })
        .render(da, buf);

    metrics(app, l, id, right, buf);
}

/// `Microsoft.App/containerApps/write` → `containerApps/write`.
pub fn short_op(op: &str) -> String {
    let parts: Vec<&str> = op.split('/').collect();
    if parts.len() > 2 {
        parts[parts.len() - 2..].join("/")
    } else {
        op.to_string()
    }
}

/// A metric series as values on the views' grid (the largest value where
/// several points share a grid point).
pub fn metric_values(m: &MetricSeries, grid: Grid) -> Vec<Option<f64>> {
    let mut out: Vec<Option<f64>> = vec![None; grid.len];
    for (ts, v) in &m.points {
        if v.is_finite()
            && let Some(slot) = grid.slot(ts.minute()).and_then(|i| out.get_mut(i))
        {
            *slot = Some(slot.map_or(*v, |o: f64| o.max(*v)));
        }
    }
    out
}

fn metrics(app: &App, l: &Loaded, id: &str, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let focus = app.crumb().focus == 1;
    let series: Vec<&MetricSeries> = l
        .apps
        .get(&id.to_ascii_lowercase())
        .map(|i| {
            i.series
                .iter()
                .filter_map(|&k| l.snapshot.metrics.get(k))
                .collect()
        })
        .unwrap_or_default();
    let block = pane(
        format!("App metrics ({}) · j/k scroll", series.len()),
        focus,
        t,
    );
    let inner = block.inner(area);
    block.render(area, buf);
    if l.range.is_none() {
        return;
    }
    if series.is_empty() {
        Line::styled("no metrics of the app behind this backend", t.dim()).render(inner, buf);
        return;
    }
    let grid = l.grid;
    let marks = anomaly_marks(
        app.findings().iter().filter(|f| {
            f.subject
                .backend
                .as_deref()
                .is_some_and(|b| b.eq_ignore_ascii_case(id))
        }),
        grid,
    );
    let fit = (inner.height / CHART_HEIGHT).max(1) as usize;
    let first = (app.crumb().scroll[1] as usize).min(series.len().saturating_sub(fit));
    for (k, m) in series.iter().skip(first).take(fit).enumerate() {
        let a = Rect::new(
            inner.x,
            inner.y + k as u16 * CHART_HEIGHT,
            inner.width,
            CHART_HEIGHT.min(inner.height),
        );
        let dims: Vec<String> = m
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let title = format!("{} ({}) {}", m.name, m.aggregation, dims.join(" "))
            .trim_end()
            .to_string();
        Chart {
            title: &title,
            values: metric_values(m, grid),
            marks: marks.clone(),
            cursor: app.cursor,
            grid,
            format: fmt_plain,
            theme: t,
        }
        .render(a, buf);
    }
}
