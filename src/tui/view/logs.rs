//! The logs view: the request rows of a finding, an operation or a backend
//! (time, method, URL, status, LastErrorReason, total and backend time,
//! file:line), as many as there are. Only the visible rows are drawn, from
//! the page read around the selection; the selected row in full below.

use super::{count, pane, scroll_to};
use crate::model::{RequestRecord, Timestamp};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

/// `06:41:07.123`, with the date (`05-18 06:41:07.123`) on multi-day data.
pub fn clock(t: Timestamp, with_date: bool) -> String {
    let full = t.to_rfc3339();
    let ms = t.millis().rem_euclid(1000);
    let time = full.get(11..19).unwrap_or("");
    if with_date {
        format!("{} {time}.{ms:03}", full.get(5..10).unwrap_or(""))
    } else {
        format!("{time}.{ms:03}")
    }
}

/// The path and query of a URL (the host is the same on every row).
fn path_of(url: &str) -> &str {
    let host = crate::model::url_host(url);
    if host.is_empty() {
        return url;
    }
    url.find(host)
        .and_then(|i| url.get(i + host.len()..))
        .filter(|p| !p.is_empty())
        .unwrap_or(url)
}

fn status_style(code: u16, t: Theme) -> Style {
    match code {
        500..=599 => t.health(crate::model::Health::Unhealthy),
        400..=499 => t.health(crate::model::Health::Degraded),
        _ => t.dim(),
    }
}

fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s:<w$}")
    } else if w == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(w - 1).collect();
        out.push('…');
        out
    }
}

/// Cut from the left (`…Logs.ndjson:1066`): the line number stays.
fn fit_left(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s:<w$}")
    } else if w == 0 {
        String::new()
    } else {
        let tail: String = s.chars().skip(n - (w - 1)).collect();
        format!("…{tail}")
    }
}

/// One table line of a row, `width` columns wide.
pub fn row_line<'a>(r: &RequestRecord, with_date: bool, width: usize, t: Theme) -> Line<'a> {
    let time = clock(r.time, with_date);
    let method = r.method.as_deref().unwrap_or("");
    let fixed = time.len() + 1 + 7 + 4 + 7 + 7;
    let rest = width.saturating_sub(fixed);
    let reason_w = (rest / 5).clamp(6, 22).min(rest);
    let at_w = (rest / 4).clamp(8, 40).min(rest.saturating_sub(reason_w));
    let url_w = rest.saturating_sub(reason_w + at_w + 2);
    let url = r.url.as_deref().map(path_of).unwrap_or("");
    Line::from(vec![
        Span::raw(format!("{time} ")),
        Span::raw(fit(method, 6)),
        Span::raw(" "),
        Span::styled(
            format!("{:>3} ", r.response_code),
            status_style(r.response_code, t),
        ),
        Span::raw(format!("{:>6} ", r.total_time_ms)),
        Span::styled(
            format!(
                "{:>6} ",
                r.backend_time_ms
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "–".into())
            ),
            t.dim(),
        ),
        Span::styled(
            fit(r.last_error_reason.as_deref().unwrap_or(""), reason_w),
            status_style(r.response_code, t),
        ),
        Span::raw(" "),
        Span::raw(fit(url, url_w)),
        Span::raw(" "),
        Span::styled(fit_left(&short_origin(r), at_w), t.cursor()),
    ])
}

/// `file.ndjson:123`: the file name without its folders.
fn short_origin(r: &RequestRecord) -> String {
    let name = r.origin.file.rsplit(['/', '\\']).next().unwrap_or("");
    match r.origin.line {
        Some(l) => format!("{name}:{l}"),
        None => name.to_string(),
    }
}

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let focus = app.crumb().focus;
    let Some(v) = app.logs.as_ref() else {
        return;
    };
    let detail_h = if area.height >= 20 { 9 } else { 7 };
    let [top, bottom] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(detail_h)]).areas(area);
    let p = &v.progress;
    let state = if p.done {
        String::new()
    } else {
        format!(" · scanning, {} read", count(p.scanned))
    };
    let arrow = if v.sort.descending { "↓" } else { "↑" };
    let title = format!(
        "{} rows{state} · by {} {arrow} · s/S sort · / filter · y Y copy",
        count(p.matched),
        v.sort.column.name()
    );
    let block = pane(title, focus == 0, t);
    let inner = block.inner(top);
    block.render(top, buf);
    let with_date = app
        .range()
        .is_some_and(|(a, b)| a.div_euclid(1440) != b.div_euclid(1440));
    let mut notes: Vec<Line> = Vec::new();
    if let Some(e) = &p.error {
        notes.push(Line::styled(e.clone(), t.error()));
    }
    for u in &p.unlisted {
        notes.push(Line::styled(u.clone(), t.note()));
    }
    if p.bad > 0 {
        notes.push(Line::styled(
            format!(
                "{} records are not rows (each named when the data loaded)",
                p.bad
            ),
            t.dim(),
        ));
    }
    let len = v.len();
    if len == 0 {
        let mut lines = vec![Line::styled(
            if p.done {
                "no rows match (Esc clears the filter)"
            } else {
                "looking for rows…"
            },
            t.dim(),
        )];
        lines.extend(notes);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(inner, buf);
    } else {
        let [head, rows_area, notes_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(notes.len().min(2) as u16),
        ])
        .areas(inner);
        let tw = if with_date { 18 } else { 12 };
        Line::styled(
            format!(
                "{:<tw$} {:<6} {:>3} {:>6} {:>6} REASON / URL / AT",
                "TIME", "METHOD", "ST", "TOTAL", "BACKND"
            ),
            t.header(),
        )
        .render(head, buf);
        let height = rows_area.height as usize;
        let sel = app.selected(0);
        let offset = scroll_to(sel, height);
        for (y, i) in (offset..len.min(offset + height)).enumerate() {
            let row = Rect::new(rows_area.x, rows_area.y + y as u16, rows_area.width, 1);
            let line = match v.row(i) {
                Some(Ok(r)) => row_line(r, with_date, row.width as usize, t),
                Some(Err(e)) => Line::styled(e.clone(), t.error()),
                None => Line::styled("…", t.dim()),
            };
            line.render(row, buf);
            if i == sel {
                buf.set_style(
                    row,
                    if focus == 0 {
                        t.selected()
                    } else {
                        t.selected_unfocused()
                    },
                );
            }
        }
        Paragraph::new(notes).render(notes_area, buf);
    }
    let detail: Vec<Line> = match v.row(app.selected(0)) {
        Some(Ok(r)) => detail_lines(r, t),
        Some(Err(e)) => vec![Line::styled(e.clone(), t.error())],
        None if len > 0 => vec![Line::styled("reading the row…", t.dim())],
        None => Vec::new(),
    };
    super::scrolled_text(
        detail,
        app.crumb().scroll[1],
        pane("Row", focus == 1, t),
        bottom,
        buf,
    );
}

/// The selected row in full.
pub fn detail_lines<'a>(r: &RequestRecord, t: Theme) -> Vec<Line<'a>> {
    let o = |s: &Option<String>| s.clone().unwrap_or_else(|| "–".into());
    let mut out = vec![
        Line::from(vec![
            Span::styled(
                format!("{} ", r.response_code),
                status_style(r.response_code, t),
            ),
            Span::raw(format!(
                "{} {} · {}",
                o(&r.method),
                o(&r.url),
                r.time.to_rfc3339()
            )),
        ]),
        Line::from(vec![
            Span::styled("at ", t.dim()),
            Span::styled(r.origin.to_string(), t.cursor()),
            Span::styled("  correlation ", t.dim()),
            Span::raw(o(&r.correlation_id)),
        ]),
        Line::from(format!(
            "{}/{} → {} (backend {} · {} ms, total {} ms)",
            r.api_id,
            r.operation_id,
            o(&r.backend_url),
            r.backend_response_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "no answer".into()),
            r.backend_time_ms
                .map(|b| b.to_string())
                .unwrap_or_else(|| "–".into()),
            r.total_time_ms
        )),
    ];
    if r.last_error_reason.is_some() || r.last_error_message.is_some() {
        out.push(Line::styled(
            format!(
                "error: {} {} {} {}",
                o(&r.last_error_reason),
                o(&r.last_error_source),
                o(&r.last_error_section),
                r.last_error_message.clone().unwrap_or_default()
            ),
            t.error(),
        ));
    }
    if let Some(region) = &r.region {
        out.push(Line::styled(format!("region {region}"), t.dim()));
    }
    out
}
