//! Drawing: `impl Widget for &App`. The frame (top bar, breadcrumbs, the
//! current screen, the footer with the prompt or key hints) and the
//! overlays (help, proposal dialog); one file per pane beside this one.
//! Rendering reads the state and never changes it, and never computes
//! analysis: everything heavy arrives precomputed from the worker.

pub mod backend;
pub mod backends;
pub mod changes;
pub mod chart;
pub mod chat;
pub mod dialog;
pub mod findings;
pub mod help;
pub mod logs;
pub mod operation;
pub mod operations;
pub mod overview;

use super::app::{App, Load, Overlay, PromptKind, Screen};
use super::data::Grid;
use super::theme::Theme;
use crate::model::{
    Diagnosis, Finding, Health, Minute, Severity, Subject, Timestamp, VerdictState,
};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let [top, crumbs, body, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area);
        top_bar(self, top, buf);
        breadcrumbs(self, crumbs, buf);
        match &self.load {
            Load::Loading => {
                let text = vec![
                    Line::from(""),
                    Line::styled(format!("Loading {} …", self.source), t.title()),
                    Line::styled("reading and diagnosing in the background; q quits", t.dim()),
                ];
                Paragraph::new(text).centered().render(body, buf);
            }
            Load::Failed(e) => {
                let text = vec![
                    Line::styled("Could not load the data", t.error()),
                    Line::from(""),
                    Line::from(e.as_str()),
                    Line::from(""),
                    Line::styled("q quits", t.dim()),
                ];
                Paragraph::new(text)
                    .wrap(Wrap { trim: false })
                    .render(body, buf);
            }
            Load::Ready(_) => match self.screen() {
                Screen::Overview => overview::render(self, body, buf),
                Screen::Operations => operations::render(self, body, buf),
                Screen::Operation { api, op } => operation::render(self, api, op, body, buf),
                Screen::Backends => backends::render(self, body, buf),
                Screen::Backend { id } => backend::render(self, id, body, buf),
                Screen::Findings => findings::render(self, body, buf),
                Screen::Changes => changes::render(self, body, buf),
                Screen::Chat => chat::render(self, body, buf),
                Screen::Logs { .. } => logs::render(self, body, buf),
            },
        }
        footer_line(self, footer, buf);
        match &self.overlay {
            Some(Overlay::Help { scroll }) => help::render(self, *scroll, area, buf),
            Some(Overlay::Plan(d)) => dialog::render(self, d, area, buf),
            None => {}
        }
    }
}

/// The diagnosis' own verdict (`model::Verdict`, the one `diagnose` and the
/// report print) as the dashboard's word, with the severity of what holds
/// now when it is unhealthy. Never computed here from the findings.
pub fn verdict(d: &Diagnosis) -> (&'static str, Option<Severity>) {
    match d.verdict.state {
        VerdictState::Unhealthy => (
            "UNHEALTHY",
            Some(d.verdict.severity.unwrap_or(Severity::Medium)),
        ),
        VerdictState::Recovered => ("RECOVERED", None),
        VerdictState::Healthy => ("HEALTHY", None),
        VerdictState::Unknown => ("UNKNOWN", None),
    }
}

/// The verdict's colour: a severity while unhealthy, healthy green once
/// healthy or recovered, the unknown colour when there is nothing to judge
/// (never green without evidence).
pub fn verdict_style(t: Theme, d: &Diagnosis) -> Style {
    match (d.verdict.state, verdict(d).1) {
        (VerdictState::Unhealthy, Some(s)) => t.severity(s),
        (VerdictState::Healthy | VerdictState::Recovered, _) => t.health(Health::Healthy),
        _ => t.health(Health::Unknown),
    }
}

/// What the verdict rests on, in a line: since when it is unhealthy, when
/// it recovered, or what is missing to judge.
pub fn verdict_detail(d: &Diagnosis) -> Option<String> {
    let v = &d.verdict;
    match v.state {
        VerdictState::Unhealthy => v.since.map(|t| format!("ongoing since {} UTC", t.hhmm())),
        VerdictState::Recovered => v
            .recovered_at
            .map(|t| format!("recovered at {} UTC", t.hhmm())),
        VerdictState::Unknown => Some(format!(
            "cannot judge: {}",
            v.missing.as_deref().unwrap_or("nothing to judge from")
        )),
        VerdictState::Healthy => None,
    }
}

/// The top bar: source, window, activity, and the verdict, which is drawn
/// whole at the right end; the rest is shortened to fit (the source path
/// first, to its last folders), never the verdict.
fn top_bar(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    buf.set_style(area, t.bar());
    let verdict_span = app.loaded().map(|l| {
        let (word, sev) = verdict(&l.scoped.diagnosis);
        let style = match (sev, t.color) {
            (Some(s), true) => t.severity(s).bg(ratatui::style::Color::Black),
            _ => t.bar().add_modifier(ratatui::style::Modifier::BOLD),
        };
        Span::styled(format!(" ● {word} "), style)
    });
    let verdict_w = verdict_span.as_ref().map_or(0, |s| s.width()) as u16;
    let mut tail: Vec<String> = Vec::new();
    if let Some((first, last)) = app.range() {
        tail.push(format!("│ {} ", window_label(first, last, app.cursor)));
    }
    if app.busy {
        tail.push("│ diagnosing… ".into());
    }
    if app.chat.pending.is_some() && *app.screen() != Screen::Chat {
        tail.push("│ chat: thinking… ".into());
    }
    let source = match app.loaded().and_then(|l| l.snapshot.loaded.demo.clone()) {
        Some(name) => format!("demo: {name}"),
        None => app.source.clone(),
    };
    let room = area.width.saturating_sub(verdict_w) as usize;
    let fixed = " apimedic ".len() + tail.iter().map(|s| s.chars().count()).sum::<usize>();
    let source = shorten_path(&source, room.saturating_sub(fixed + 3).max(8));
    let mut spans = vec![
        Span::styled(
            " apimedic ",
            t.bar().add_modifier(ratatui::style::Modifier::BOLD),
        ),
        Span::styled(format!("│ {source} "), t.bar()),
    ];
    spans.extend(tail.into_iter().map(|s| Span::styled(s, t.bar())));
    let left = Rect::new(area.x, area.y, area.width.saturating_sub(verdict_w), 1);
    Line::from(spans).render(left, buf);
    if let Some(v) = verdict_span {
        let x = area.x + area.width.saturating_sub(verdict_w);
        Line::from(v).render(Rect::new(x, area.y, verdict_w.min(area.width), 1), buf);
    }
}

/// A path cut to `max` characters from the left, keeping its last folders:
/// `/very/long/path/to/export` → `…/to/export`.
pub fn shorten_path(path: &str, max: usize) -> String {
    if path.chars().count() <= max {
        return path.to_string();
    }
    let chars: Vec<char> = path.chars().collect();
    let keep = max.saturating_sub(1);
    let tail: String = chars[chars.len() - keep..].iter().collect();
    // Start at a folder boundary when one is inside the kept part.
    match tail.find('/') {
        Some(i) if i + 1 < tail.len() => format!("…{}", &tail[i..]),
        _ => format!("…{tail}"),
    }
}

/// `2024-05-18 06:40–07:39 UTC`, or up to the cursor when one is set; the
/// end carries its date too when it falls on another day.
pub fn window_label(first: Minute, last: Minute, cursor: Option<Minute>) -> String {
    let start = Timestamp::from_minute(first);
    let date = start.to_rfc3339().get(..10).unwrap_or("").to_string();
    let at = |m: Minute| {
        let ts = Timestamp::from_minute(m);
        if m.div_euclid(1440) == first.div_euclid(1440) {
            ts.hhmm()
        } else {
            format!("{} {}", ts.to_rfc3339().get(..10).unwrap_or(""), ts.hhmm())
        }
    };
    match cursor {
        None => format!("{date} {}–{} UTC", start.hhmm(), at(last)),
        Some(c) => format!(
            "{date} {}–{} UTC of –{} ([ ] step, 0 all)",
            start.hhmm(),
            at(c),
            at(last)
        ),
    }
}

fn breadcrumbs(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let mut spans = Vec::new();
    let n = app.stack.len();
    for (i, c) in app.stack.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" › ", t.dim()));
        }
        let style = if i + 1 == n { t.title() } else { t.dim() };
        spans.push(Span::styled(c.screen.title(), style));
    }
    if let Some(f) = &app.crumb().filter {
        spans.push(Span::styled(format!("  /{}", f.text), t.cursor()));
    }
    // The past judged by the past: say when the analysis used policies
    // as they were at the cursor.
    if let Some(notes) = app
        .loaded()
        .map(|l| &l.scoped.past_config)
        .filter(|n| !n.is_empty())
    {
        let more = if notes.len() > 1 {
            format!(" (+{} more)", notes.len() - 1)
        } else {
            String::new()
        };
        spans.push(Span::styled(
            format!("  ⟲ config as at the cursor: {}{more}", notes[0]),
            t.note(),
        ));
    }
    Line::from(spans).render(area, buf);
}

const HINTS: &str =
    "?:help  :cmd  /:filter  ↵:open  l:logs  y:copy  esc:back  []:time  a:ask  q:quit";
const CHAT_HINTS: &str =
    "↵:send  esc:back  ↑↓:earlier  PgUp PgDn:scroll  /help:commands  ctrl-c:quit";

fn footer_line(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let line = if let Some(p) = &app.prompt {
        let lead = match p.kind {
            PromptKind::Command => ":",
            PromptKind::Filter => "/",
        };
        let mut spans = vec![
            Span::styled(lead, t.title()),
            Span::raw(p.text.clone()),
            Span::styled(" ", t.selected()),
        ];
        if let Some(m) = app.message.as_ref().filter(|m| m.error) {
            spans.push(Span::styled(format!("   {}", m.text), t.error()));
        }
        Line::from(spans)
    } else if let Some(m) = &app.message {
        Line::styled(m.text.clone(), if m.error { t.error() } else { t.title() })
    } else if *app.screen() == Screen::Chat {
        Line::styled(CHAT_HINTS, t.dim())
    } else {
        Line::styled(HINTS, t.dim())
    };
    line.render(area, buf);
}

/// A pane's frame; the focused pane's border stands out.
pub fn pane<'a>(title: impl Into<Line<'a>>, focused: bool, t: Theme) -> Block<'a> {
    Block::bordered()
        .title(title)
        .border_style(t.border(focused))
        .title_style(t.title())
}

/// A finding as a list row: severity tag, kind, subject.
pub fn finding_line<'a>(f: &Finding, t: Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(f.severity.tag(), t.severity(f.severity)),
        Span::raw(format!(" {} ", f.kind)),
        Span::styled(subject_short(&f.subject), t.dim()),
    ])
}

/// A subject in a few words: `api/op`, `backend x`, a policy scope…
pub fn subject_short(s: &Subject) -> String {
    match (&s.api, &s.operation, &s.backend, &s.policy_scope) {
        (Some(a), Some(o), _, _) => format!("{a}/{o}"),
        (_, _, Some(b), _) => format!("backend {b}"),
        (_, _, _, Some(p)) => p.to_string(),
        (Some(a), None, None, None) => format!("api {a}"),
        _ => s.to_string(),
    }
}

/// `12`, `1.2k`, `3.4M`.
pub fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1000.0),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0),
    }
}

pub fn millis(ms: Option<u32>) -> String {
    ms.map(|m| m.to_string()).unwrap_or_else(|| "–".into())
}

/// The offset that keeps `selected` visible in `height` rows.
pub fn scroll_to(selected: usize, height: usize) -> usize {
    if height == 0 {
        0
    } else {
        selected.saturating_sub(height - 1)
    }
}

/// Draws list rows (already styled) into an area, the selection kept in view.
pub fn list_rows(
    rows: Vec<Line<'_>>,
    selected: Option<usize>,
    focused: bool,
    t: Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let height = area.height as usize;
    let offset = selected.map(|s| scroll_to(s, height)).unwrap_or(0);
    for (i, line) in rows.into_iter().enumerate().skip(offset).take(height) {
        let y = area.y + (i - offset) as u16;
        let row = Rect::new(area.x, y, area.width, 1);
        line.render(row, buf);
        if Some(i) == selected {
            let style = if focused {
                t.selected()
            } else {
                t.selected_unfocused()
            };
            buf.set_style(row, style);
        }
    }
}

/// Text with a scroll offset clamped to its length.
pub fn scrolled_text(
    lines: Vec<Line<'_>>,
    scroll: u16,
    block: Block<'_>,
    area: Rect,
    buf: &mut Buffer,
) {
    let inner_h = area.height.saturating_sub(2) as usize;
    let max = lines.len().saturating_sub(inner_h.max(1));
    let scroll = (scroll as usize).min(max) as u16;
    Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((scroll, 0))
        .render(area, buf);
}

/// Code-like text (policy XML): not wrapped, so line numbers stay true;
/// the scroll offset is clamped to its length.
pub fn scrolled_code(
    lines: Vec<Line<'_>>,
    scroll: u16,
    block: Block<'_>,
    area: Rect,
    buf: &mut Buffer,
) {
    let inner_h = area.height.saturating_sub(2) as usize;
    let max = lines.len().saturating_sub(inner_h.max(1));
    let scroll = (scroll as usize).min(max) as u16;
    Paragraph::new(lines)
        .block(block)
        .scroll((scroll, 0))
        .render(area, buf);
}

/// A rectangle of at most `w`×`h` in the middle of `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Clears an overlay's area before drawing it.
pub fn clear(area: Rect, buf: &mut Buffer) {
    Clear.render(area, buf);
}

/// A label/value line.
pub fn field<'a>(label: &'a str, value: String, t: Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{label:<12}"), t.dim()),
        Span::raw(value),
    ])
}

/// The points of `grid` inside any anomaly finding's window.
pub fn anomaly_marks<'a>(findings: impl Iterator<Item = &'a Finding>, grid: Grid) -> Vec<bool> {
    let mut marks = vec![false; grid.len];
    for f in findings.filter(|f| f.kind.is_anomaly()) {
        if let Some(w) = f.window {
            // At least its first minute.
            let (first, end) = (w.start.minute(), w.end.minute().max(w.start.minute() + 1));
            if grid.len == 0 || end <= grid.start || first >= grid.minute(grid.len) {
                continue;
            }
            let a = grid.slot_clamped(first);
            let b = grid.slot_clamped(end - 1) + 1;
            for m in marks.iter_mut().take(b).skip(a) {
                *m = true;
            }
        }
    }
    marks
}

/// A style for a line's whole width (selection in text panes).
pub fn styled_line<'a>(text: String, style: Style) -> Line<'a> {
    Line::styled(text, style)
}

#[cfg(test)]
mod tests;
