//! The backends: one row per backend (the entity, or a host traffic used
//! that no entity's URL has), its requests, 5xx, 4xx and 429, its health
//! and the operations routed to it (`✗`: a route that fails: a backend is
//! unhealthy only for those). `routes` formats routes for other views.

use super::{count, pane};
use crate::model::{Route, RouteSource};
use crate::tui::app::App;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row, StatefulWidget, Table, TableState, Widget};

/// `orders-app` / `orders-app?` (conditional) / `orders-app (svc url)`.
pub fn routes(rs: &[Route]) -> String {
    if rs.is_empty() {
        return "–".into();
    }
    let parts: Vec<String> = rs
        .iter()
        .map(|r| {
            let cond = if r.conditional { "?" } else { "" };
            let how = match r.source {
                RouteSource::ServiceUrl => " (serviceUrl)",
                RouteSource::Policy(_) | RouteSource::Observed => "",
            };
            format!("{}{cond}{how}", r.backend)
        })
        .collect();
    parts.join(", ")
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let rows = app.backend_rows();
    let title = format!(
        "Backends ({}) · one row each, its operations · Enter opens · l rows",
        rows.len()
    );
    if rows.is_empty() {
        let block = pane(title, true, t);
        let inner = block.inner(area);
        block.render(area, buf);
        Line::styled("no backends (or none match the filter)", t.dim()).render(inner, buf);
        return;
    }
    let header = Row::new([
        "BACKEND",
        "HOST",
        "HEALTH",
        "REQUESTS",
        "5XX",
        "4XX",
        "429",
        "OPERATIONS (✗ failing)",
    ])
    .style(t.header());
    let body: Vec<Row> = rows
        .iter()
        .map(|b| {
            let host = b
                .url
                .as_deref()
                .map(crate::model::url_host)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .or_else(|| b.seen_as.first().cloned())
                .unwrap_or_else(|| "–".into());
            let health = if b.failing.is_empty() || b.operations.len() <= 1 {
                b.health.as_str().to_string()
            } else {
                format!(
                    "{} {}/{}",
                    b.health.as_str(),
                    b.failing.len(),
                    b.operations.len()
                )
            };
            let ops = if b.operations.is_empty() {
                "no operations route here".to_string()
            } else {
                b.operations
                    .iter()
                    .map(|o| {
                        if b.failing.contains(o) {
                            format!("{o}✗")
                        } else {
                            o.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let n = |v: u64| {
                Cell::from(Line::from(count(v)).right_aligned()).style(if v > 0 {
                    t.health(crate::model::Health::Degraded)
                } else {
                    t.dim()
                })
            };
            Row::new([
                Cell::from(b.id.clone()),
                Cell::from(host).style(t.dim()),
                Cell::from(health).style(t.health(b.health)),
                Cell::from(Line::from(count(b.requests)).right_aligned()),
                n(b.errors),
                n(b.client_errors),
                n(b.throttled),
                Cell::from(ops),
            ])
        })
        .collect();
    let table = Table::new(
        body,
        [
            Constraint::Fill(2),
            Constraint::Fill(3),
            Constraint::Length(14),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Fill(4),
        ],
    )
    .header(header)
    .block(pane(title, true, t))
    .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(Some(app.selected(0)));
    StatefulWidget::render(table, area, buf, &mut state);
}
