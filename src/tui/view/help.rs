//! The `?` overlay: every key, from the one table in `keys`.

use super::{centered, clear, pane};
use crate::tui::app::App;
use crate::tui::keys;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// The help text, one line per key.
pub fn lines<'a>(app: &App) -> Vec<Line<'a>> {
    let t = app.theme;
    let mut out = Vec::new();
    for (section, keys) in keys::help(app.readonly) {
        if !out.is_empty() {
            out.push(Line::from(""));
        }
        out.push(Line::styled(section, t.header()));
        for k in keys {
            out.push(Line::from(vec![
                Span::styled(format!("  {:<38} ", k.keys), t.title()),
                Span::raw(k.what),
            ]));
        }
    }
    if app.readonly {
        out.push(Line::from(""));
        out.push(Line::styled(
            "read-only: proposal actions are hidden",
            t.dim(),
        ));
    }
    out
}

pub fn render(app: &App, scroll: u16, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let text = lines(app);
    let h = (text.len() as u16 + 2).min(area.height.saturating_sub(2));
    let box_area = centered(area, 110, h);
    clear(box_area, buf);
    super::scrolled_text(
        text,
        scroll,
        pane("Keys · Esc closes · j/k scroll", true, t),
        box_area,
        buf,
    );
}
