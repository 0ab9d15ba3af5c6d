//! The backend map: each operation, where its configuration routes it,
//! where its traffic actually went, and that backend's health.

use super::operations::health_word;
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
    let rows = app.route_rows();
    let title = format!("Backend map ({}) · Enter opens the backend", rows.len());
    if rows.is_empty() {
        let block = pane(title, true, t);
        let inner = block.inner(area);
        block.render(area, buf);
        Line::styled("no routes (or none match the filter)", t.dim()).render(inner, buf);
        return;
    }
    let header = Row::new([
        "OPERATION",
        "CONFIGURED",
        "OBSERVED",
        "HEALTH",
        "REQUESTS",
        "5XX %",
    ])
    .style(t.header());
    let body: Vec<Row> = rows
        .iter()
        .map(|e| {
            let observed = if e.mismatch {
                format!("≠ {}", routes(&e.observed))
            } else {
                routes(&e.observed)
            };
            Row::new([
                Cell::from(format!("{}/{}", e.api, e.operation)),
                Cell::from(routes(&e.configured)),
                Cell::from(observed).style(if e.mismatch {
                    t.error()
                } else {
                    ratatui::style::Style::new()
                }),
                Cell::from(health_word(e.health)).style(t.health(e.health)),
                Cell::from(Line::from(count(e.requests)).right_aligned()),
                Cell::from(Line::from(format!("{:.1}", 100.0 * e.error_rate)).right_aligned()),
            ])
        })
        .collect();
    let table = Table::new(
        body,
        [
            Constraint::Fill(3),
            Constraint::Fill(3),
            Constraint::Fill(3),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(6),
        ],
    )
    .header(header)
    .block(pane(title, true, t))
    .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(Some(app.selected(0)));
    StatefulWidget::render(table, area, buf, &mut state);
}
