//! The chat pane: the transcript (questions, answers with their checked /
//! could-not-check lines, command output, the pending answer as it
//! streams), wrapped to the pane's width and scrolled as `ChatPane::view`
//! says; the input line with its cursor below it.

use super::pane;
use crate::llm::Answer;
use crate::tui::app::App;
use crate::tui::chat::{ChatPane, Entry};
use crate::tui::theme::Theme;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let [log, input] = Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    transcript(app, log, buf);
    input_line(app, input, buf);
}

fn transcript(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let chat = &app.chat;
    let mut title = format!(
        "Chat · {} · {} question{}",
        chat.engine,
        chat.questions(),
        if chat.questions() == 1 { "" } else { "s" }
    );
    if let Some(w) = app.cursor_window() {
        title.push_str(&format!(
            " · answers cover the time window {}–{} UTC",
            w.start.hhmm(),
            w.end.hhmm()
        ));
    }
    let block = pane(title, false, t);
    let inner = block.inner(area);
    let width = inner.width as usize;
    let height = inner.height as usize;
    let (lines, starts) = transcript_lines(app, width);
    let total = lines.len();
    let max_top = total.saturating_sub(height) as i64;
    let base = match chat.view.anchor {
        None => max_top,
        Some(i) => starts.get(i).map(|&s| s as i64).unwrap_or(max_top),
    };
    let top = (base + i64::from(chat.view.offset)).clamp(0, max_top) as usize;
    let block = if total > height && height > 0 {
        block.title_bottom(
            Line::styled(
                format!(
                    " lines {}–{} of {total} · PgUp PgDn ",
                    top + 1,
                    (top + height).min(total)
                ),
                t.dim(),
            )
            .right_aligned(),
        )
    } else {
        block
    };
    block.render(area, buf);
    for (row, line) in lines.into_iter().skip(top).take(height).enumerate() {
        let y = inner.y + row as u16;
        line.render(Rect::new(inner.x, y, inner.width, 1), buf);
    }
}

/// The transcript as lines wrapped to `width`, and the first line of each
/// entry (where a view anchored on it starts).
pub fn transcript_lines(app: &App, width: usize) -> (Vec<Line<'static>>, Vec<usize>) {
    let t = app.theme;
    let chat = &app.chat;
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut starts = Vec::with_capacity(chat.entries.len());
    if chat.entries.is_empty() && chat.pending.is_none() {
        welcome(app, width, &mut out);
    }
    for (i, entry) in chat.entries.iter().enumerate() {
        if i > 0 && matches!(entry, Entry::Asked(_)) {
            out.push(Line::from(""));
        }
        starts.push(out.len());
        entry_lines(entry, t, width, &mut out);
    }
    if let Some(p) = &chat.pending {
        for l in p.partial.trim_end().lines() {
            push_wrapped(&mut out, "", Style::new(), l, Style::new(), width);
        }
        push_wrapped(
            &mut out,
            "",
            Style::new(),
            &format!("thinking… ({})", chat.engine),
            t.note(),
            width,
        );
    }
    (out, starts)
}

fn welcome(app: &App, width: usize, out: &mut Vec<Line<'static>>) {
    let t = app.theme;
    let name = app
        .loaded()
        .and_then(|l| l.snapshot.service.as_ref().map(|s| s.name.clone()))
        .unwrap_or_else(|| "the instance".to_string());
    let mut say = |text: &str, style: Style| push_wrapped(out, "", style, text, style, width);
    say(
        &format!("Ask about {name} in plain language, for example:"),
        t.title(),
    );
    for q in [
        "  what backends does my instance have, and are any unhealthy?",
        "  why are requests failing?",
        "  show me recent changes",
    ] {
        say(q, Style::new());
    }
    say("", Style::new());
    say(
        "/findings /backends /explain ID /history /help work as in `apimedic chat`.",
        t.dim(),
    );
    let engine = if app.chat.engine == "offline" {
        "the offline answerer (no model, nothing leaves the machine)".to_string()
    } else {
        format!("{} (the offline answer if it fails)", app.chat.engine)
    };
    say(
        &format!("Answers come from {engine}, over all loaded data."),
        t.dim(),
    );
    let acting = if app.readonly {
        "Read-only: nothing here can act; proposals are text."
    } else {
        "Proposals in answers are text only: acting stays with the plan dialog (p) and your approval."
    };
    say(acting, t.dim());
}

fn entry_lines(entry: &Entry, t: Theme, width: usize, out: &mut Vec<Line<'static>>) {
    match entry {
        Entry::Asked(q) => push_wrapped(out, "> ", t.cursor(), q, t.title(), width),
        Entry::Answer(a) => answer_lines(a, t, width, out),
        Entry::Text(text) => {
            for l in text.lines() {
                push_wrapped(out, "", Style::new(), l, Style::new(), width);
            }
        }
        Entry::Failed(e) => push_wrapped(out, "", t.error(), e, t.error(), width),
    }
}

fn answer_lines(a: &Answer, t: Theme, width: usize, out: &mut Vec<Line<'static>>) {
    if let Some(n) = &a.note {
        push_wrapped(out, "Note: ", t.note(), n, t.note(), width);
    }
    for l in a.text.trim_end().lines() {
        push_wrapped(out, "", Style::new(), l, Style::new(), width);
    }
    if !a.refused.is_empty() {
        push_wrapped(
            out,
            "Refused tool calls: ",
            t.error(),
            &a.refused.join("; "),
            Style::new(),
            width,
        );
    }
    if !a.checked.is_empty() || !a.unchecked.is_empty() {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join("; ")
            }
        };
        push_wrapped(
            out,
            "Checked: ",
            t.dim(),
            &list(&a.checked),
            Style::new(),
            width,
        );
        push_wrapped(
            out,
            "Could not check: ",
            t.note(),
            &list(&a.unchecked),
            Style::new(),
            width,
        );
        push_wrapped(
            out,
            "Confidence: ",
            t.dim(),
            &a.confidence,
            Style::new(),
            width,
        );
    }
}

/// One logical line, `label` then `text`, wrapped to `width`: the label
/// keeps its style on the first row, continuation rows hang under the text.
fn push_wrapped(
    out: &mut Vec<Line<'static>>,
    label: &str,
    label_style: Style,
    text: &str,
    style: Style,
    width: usize,
) {
    let whole = format!("{label}{text}");
    let label_chars = label.chars().count();
    let hang = hanging_indent(&whole, label_chars, width);
    for (i, row) in wrap(&whole, width, hang).into_iter().enumerate() {
        if i == 0 && label_chars > 0 {
            let split = row
                .char_indices()
                .nth(label_chars)
                .map(|(b, _)| b)
                .unwrap_or(row.len());
            let (l, rest) = row.split_at(split);
            out.push(Line::from(vec![
                Span::styled(l.to_string(), label_style),
                Span::styled(rest.to_string(), style),
            ]));
        } else {
            out.push(Line::styled(row, style));
        }
    }
}

/// Continuation rows start under the text: after a label, a list bullet
/// (`- `, `* `, `1. `) or leading spaces; never more than half the width.
fn hanging_indent(line: &str, label: usize, width: usize) -> usize {
    let lead = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    let bullet = if rest.starts_with("- ") || rest.starts_with("* ") {
        2
    } else {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && rest[digits..].starts_with(". ") {
            digits + 2
        } else {
            0
        }
    };
    let hang = if label > 0 { label } else { lead + bullet };
    if hang * 2 <= width { hang } else { 0 }
}

/// Columns a string takes on the terminal.
fn cols(s: &str) -> usize {
    Span::raw(s).width()
}

/// Wraps one line at spaces into rows of at most `width` columns; words
/// longer than a row are split. Spacing inside a row is kept (aligned
/// columns stay aligned); rows after the first start with `hang` spaces.
/// Tabs become four spaces.
pub fn wrap(line: &str, width: usize, hang: usize) -> Vec<String> {
    let width = width.max(1);
    let line = line.replace('\t', "    ");
    let hang = hang.min(width - 1);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    // The row holds no word yet (only its indent or leading spaces).
    let mut empty = true;
    let mut space = "";
    for token in tokens(&line) {
        if token.starts_with(char::is_whitespace) {
            space = token;
            continue;
        }
        let w = cols(token);
        let mut gap = if empty && !rows.is_empty() {
            0
        } else {
            cols(space)
        };
        if !empty && used + gap + w > width {
            rows.push(std::mem::take(&mut row));
            row.push_str(&" ".repeat(hang));
            used = hang;
            empty = true;
            gap = 0;
        }
        if gap > 0 && used + gap < width {
            row.push_str(space);
            used += gap;
        }
        if used + w <= width {
            row.push_str(token);
            used += w;
        } else {
            // Longer than a row: split it where the row is full.
            for c in token.chars() {
                let mut b = [0u8; 4];
                let cw = cols(c.encode_utf8(&mut b));
                if used + cw > width && !empty {
                    rows.push(std::mem::take(&mut row));
                    row.push_str(&" ".repeat(hang));
                    used = hang;
                }
                row.push(c);
                used += cw;
                empty = false;
            }
        }
        empty = false;
        space = "";
    }
    if !empty || rows.is_empty() {
        rows.push(row);
    }
    rows
}

/// Runs of whitespace and of anything else, in order.
fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut last_ws: Option<bool> = None;
    for (i, c) in s.char_indices() {
        let ws = c.is_whitespace();
        if last_ws.is_some_and(|l| l != ws) {
            out.push(&s[start..i]);
            start = i;
        }
        last_ws = Some(ws);
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn input_line(app: &App, area: Rect, buf: &mut Buffer) {
    let t = app.theme;
    let chat: &ChatPane = &app.chat;
    let mut block = pane("Ask · Enter sends · ↑↓ earlier · Esc back", true, t);
    if chat.pending.is_some() {
        block = block.title_top(
            Line::styled(format!(" thinking… ({}) ", chat.engine), t.note()).right_aligned(),
        );
    }
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width < 3 || inner.height == 0 {
        return;
    }
    // Keep the cursor in view: as much as fits before it, then after it.
    let chars: Vec<char> = chat.input.chars().collect();
    let cursor = chat.cursor.min(chars.len());
    let width = |c: &char| {
        let mut b = [0u8; 4];
        cols(c.encode_utf8(&mut b)).max(1)
    };
    let room = inner.width as usize - 2;
    let at = chars.get(cursor).copied().unwrap_or(' ');
    let mut used = width(&at);
    let mut start = cursor;
    while start > 0 && used + width(&chars[start - 1]) <= room {
        start -= 1;
        used += width(&chars[start]);
    }
    let before: String = chars[start..cursor].iter().collect();
    let mut after = String::new();
    for c in chars.iter().skip(cursor + 1) {
        used += width(c);
        if used > room {
            break;
        }
        after.push(*c);
    }
    Line::from(vec![
        Span::styled("> ", t.cursor()),
        Span::raw(before),
        Span::styled(at.to_string(), t.selected()),
        Span::raw(after),
    ])
    .render(Rect::new(inner.x, inner.y, inner.width, 1), buf);
}
