//! The operations table: requests, 5xx %, 4xx and 429, p95, backend and health over the
//! selected window, sorted by the chosen column (`s`, `S`, `:sort`).

use super::{count, millis, pane};
use crate::model::Health;
use crate::tui::app::{App, SortColumn};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row, StatefulWidget, Table, TableState, Widget};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let rows = app.op_rows();
    let arrow = if app.sort.descending { "↓" } else { "↑" };
    let head = |name: &'static str, col: SortColumn| {
        if app.sort.column == col {
            Cell::from(format!("{name}{arrow}"))
        } else {
            Cell::from(name)
        }
    };
    let header = Row::new([
        head("OPERATION", SortColumn::Name),
        head("REQUESTS", SortColumn::Requests),
        head("5XX %", SortColumn::Errors),
        Cell::from("4XX"),
        Cell::from("429"),
        head("P95 MS", SortColumn::P95),
        head("BACKEND", SortColumn::Backend),
        head("HEALTH", SortColumn::Health),
    ])
    .style(t.header());
    let body: Vec<Row> = rows
        .iter()
        .map(|r| {
            let err = r.error_percent();
            let err_style = if err >= 5.0 {
                t.health(Health::Unhealthy)
            } else if err > 0.0 {
                t.health(Health::Degraded)
            } else {
                t.dim()
            };
            Row::new([
                Cell::from(r.label()),
                Cell::from(Line::from(count(r.requests)).right_aligned()),
                Cell::from(Line::from(format!("{err:.1}")).right_aligned()).style(err_style),
                Cell::from(Line::from(count(r.client_errors)).right_aligned()).style(
                    if r.client_errors > 0 {
                        t.health(Health::Degraded)
                    } else {
                        t.dim()
                    },
                ),
                Cell::from(Line::from(count(r.throttled)).right_aligned()).style(
                    if r.throttled > 0 {
                        t.health(Health::Degraded)
                    } else {
                        t.dim()
                    },
                ),
                Cell::from(Line::from(millis(r.p95_ms)).right_aligned()),
                Cell::from(r.backends.first().cloned().unwrap_or_else(|| "–".into())),
                Cell::from(r.health.as_str()).style(t.health(r.health)),
            ])
        })
        .collect();
    let title = format!(
        "Operations ({}) · sorted by {} {arrow} · s/S/:sort",
        rows.len(),
        app.sort.column.name()
    );
    if rows.is_empty() {
        let block = pane(title, true, t);
        let inner = block.inner(area);
        block.render(area, buf);
        Line::styled("no operations (or none match the filter)", t.dim()).render(inner, buf);
        return;
    }
    let table = Table::new(
        body,
        [
            Constraint::Fill(3),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Fill(2),
            Constraint::Length(9),
        ],
    )
    .header(header)
    .block(pane(title, true, t))
    .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(Some(app.selected(0)));
    StatefulWidget::render(table, area, buf, &mut state);
}
