//! A per-minute bar chart that fits any width: the points of its
//! [`Grid`] (minutes, or round slots of minutes on long data) are bucketed
//! into columns (the peak of each bucket is drawn, so a one-minute spike
//! never disappears), finding windows are marked under the bars (`━`, and
//! the bars turn the anomaly colour), the time cursor is a `▲`, and points
//! starting after the cursor are not drawn. The marks row carries meaning
//! without colour.

use super::super::data::Grid;
use super::super::theme::Theme;
use crate::model::{Minute, Timestamp};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Widget};

const EIGHTHS: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/// A chart's title, its per-minute values and how to print a value.
pub type Series<'a> = (&'a str, Vec<Option<f64>>, fn(f64) -> String);

pub struct Chart<'a> {
    pub title: &'a str,
    /// One value per point of `grid`; `None` where there is none.
    pub values: Vec<Option<f64>>,
    /// Points inside a finding's window.
    pub marks: Vec<bool>,
    /// The last minute shown; `None`: all.
    pub cursor: Option<Minute>,
    pub grid: Grid,
    pub format: fn(f64) -> String,
    pub theme: Theme,
}

/// Minute indices `[lo, hi)` column `c` of `w` covers, for `n` minutes.
pub fn bucket(c: usize, w: usize, n: usize) -> (usize, usize) {
    if w == 0 || n == 0 {
        return (0, 0);
    }
    let lo = c * n / w;
    let hi = ((c + 1) * n / w).max(lo + 1).min(n);
    (lo, hi)
}

impl Chart<'_> {
    /// The point the cursor is in (past the end when it is after it).
    fn cursor_point(&self) -> Option<usize> {
        let c = self.cursor?;
        Some(((c - self.grid.start).max(0) / self.grid.step) as usize)
    }

    fn visible(&self, i: usize) -> bool {
        self.cursor_point().is_none_or(|c| i <= c)
    }

    /// The latest value at or before the cursor (or the end).
    fn now(&self) -> Option<f64> {
        let end = self
            .cursor_point()
            .unwrap_or(usize::MAX)
            .min(self.values.len().saturating_sub(1));
        self.values.get(..=end)?.iter().rev().find_map(|v| *v)
    }

    fn peak(&self) -> Option<f64> {
        self.values
            .iter()
            .enumerate()
            .filter(|(i, _)| self.visible(*i))
            .filter_map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .reduce(f64::max)
    }
}

impl Widget for Chart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = self.theme;
        let fmt = self.format;
        let title = format!(
            " {}  now {}  peak {} ",
            self.title,
            self.now().map(fmt).unwrap_or_else(|| "–".into()),
            self.peak().map(fmt).unwrap_or_else(|| "–".into())
        );
        let block = Block::bordered()
            .title(title)
            .title_style(t.title())
            .border_style(t.border(false));
        let inner = block.inner(area);
        block.render(area, buf);
        let n = self.values.len();
        let w = inner.width as usize;
        if n == 0 || w == 0 || inner.height == 0 {
            Line::styled("no data", t.dim()).render(inner, buf);
            return;
        }
        let (bars_h, marks_row, axis_row) = match inner.height {
            1 => (1, None, None),
            2 => (1, Some(inner.y + 1), None),
            h => (h - 2, Some(inner.y + h - 2), Some(inner.y + h - 1)),
        };
        let peak = self.peak().unwrap_or(0.0);
        let cursor_col = self
            .cursor_point()
            .and_then(|c| (0..w).find(|&col| bucket(col, w, n).1 > c));
        for col in 0..w {
            let (lo, hi) = bucket(col, w, n);
            let shown: Vec<usize> = (lo..hi).filter(|&i| self.visible(i)).collect();
            let value = shown
                .iter()
                .filter_map(|&i| self.values.get(i).copied().flatten())
                .filter(|v| v.is_finite())
                .reduce(f64::max);
            let marked = shown
                .iter()
                .any(|&i| self.marks.get(i).copied().unwrap_or(false));
            let style = if marked { t.anomaly() } else { t.chart() };
            let x = inner.x + col as u16;
            if let Some(v) = value.filter(|v| *v > 0.0 && peak > 0.0) {
                let total = bars_h as usize * 8;
                let eighths = ((v / peak) * total as f64).round().clamp(1.0, total as f64) as usize;
                for row in 0..bars_h as usize {
                    let fill = eighths.saturating_sub(row * 8).min(8);
                    if fill == 0 {
                        break;
                    }
                    let y = inner.y + bars_h - 1 - row as u16;
                    if let Some(cell) = buf.cell_mut((x, y)) {
                        cell.set_symbol(EIGHTHS[fill]).set_style(style);
                    }
                }
            }
            if let Some(y) = marks_row {
                let (sym, st) = if Some(col) == cursor_col {
                    ("▲", t.cursor())
                } else if marked {
                    ("━", t.anomaly())
                } else {
                    ("─", t.dim())
                };
                if let Some(cell) = buf.cell_mut((x, y)) {
                    cell.set_symbol(sym).set_style(st);
                }
            }
        }
        if let Some(y) = axis_row {
            // Data over several days: the ends and the cursor carry the
            // date; over several years, the year too.
            let start = self.grid.start;
            let end = self.grid.minute(n - 1);
            let days = start.div_euclid(1440) != end.div_euclid(1440);
            let year = |m: Minute| {
                Timestamp::from_minute(m)
                    .to_rfc3339()
                    .get(..4)
                    .map(String::from)
            };
            let date = if year(start) != year(end) {
                0..10
            } else {
                5..10
            };
            let label = |m: Minute| {
                let ts = Timestamp::from_minute(m);
                if days {
                    let d = ts.to_rfc3339();
                    format!("{} {}", d.get(date.clone()).unwrap_or(""), ts.hhmm())
                } else {
                    ts.hhmm()
                }
            };
            let first = label(start);
            let last = label(end);
            buf.set_string(inner.x, y, &first, t.dim());
            if w > first.len() + last.len() {
                buf.set_string(inner.x + (w - last.len()) as u16, y, &last, t.dim());
            }
            // The cursor's time under its column, where it does not hide the ends.
            if let (Some(c), Some(col)) = (self.cursor, cursor_col) {
                let label = label(c);
                let at = col.saturating_sub(label.len() / 2);
                if at > first.len() && at + label.len() < w.saturating_sub(last.len()) {
                    buf.set_string(inner.x + at as u16, y, &label, t.cursor());
                }
            }
        }
    }
}

pub fn fmt_count(v: f64) -> String {
    super::count(v.max(0.0).round() as u64)
}

pub fn fmt_percent(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}%")
    } else {
        format!("{v:.1}%")
    }
}

pub fn fmt_ms(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}s", v / 1000.0)
    } else {
        format!("{v:.0}ms")
    }
}

/// Small numbers as they are, large ones with k, M, G.
pub fn fmt_plain(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_minute_once_when_wide_or_narrow() {
        for (w, n) in [(10, 3), (3, 10), (7, 7), (120, 1440)] {
            let mut covered = vec![0; n];
            let mut last_hi = 0;
            for c in 0..w {
                let (lo, hi) = bucket(c, w, n);
                assert!(lo < hi && hi <= n, "{w} {n} {c}");
                if lo >= last_hi {
                    for m in covered.iter_mut().take(hi).skip(lo) {
                        *m += 1;
                    }
                }
                last_hi = hi;
            }
            assert!(covered.iter().all(|&c| c >= 1), "{w} {n}");
        }
    }

    #[test]
    fn spike_is_drawn_in_the_anomaly_style_and_marked() {
        let chart = Chart {
            title: "5xx",
            values: vec![Some(1.0), Some(1.0), Some(4.0), Some(4.0)],
            marks: vec![false, false, true, true],
            cursor: None,
            grid: Grid::over(0, 3),
            format: fmt_plain,
            theme: Theme::COLOR,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 6, 5));
        chart.render(buf.area, &mut buf);
        let t = Theme::COLOR;
        // 4 inner columns, one minute each; one bar row, a marks row, an axis row.
        assert_eq!(buf[(1, 1)].symbol(), "▂");
        assert_eq!(buf[(3, 1)].symbol(), "█");
        assert_eq!(buf[(3, 1)].style().fg, t.anomaly().fg);
        assert_eq!(buf[(1, 1)].style().fg, t.chart().fg);
        assert_eq!(buf[(3, 2)].symbol(), "━");
        assert_eq!(buf[(1, 2)].symbol(), "─");
    }

    #[test]
    fn minutes_after_the_cursor_are_not_drawn() {
        let chart = Chart {
            title: "req",
            values: vec![Some(1.0), Some(2.0), Some(3.0), Some(9.0)],
            marks: vec![false; 4],
            cursor: Some(1),
            grid: Grid::over(0, 3),
            format: fmt_plain,
            theme: Theme::PLAIN,
        };
        let mut buf = Buffer::empty(Rect::new(0, 0, 6, 5));
        chart.render(buf.area, &mut buf);
        assert_eq!(buf[(2, 1)].symbol(), "█", "the cursor's minute is the peak");
        assert_eq!(buf[(3, 1)].symbol(), " ");
        assert_eq!(buf[(4, 1)].symbol(), " ");
        assert_eq!(buf[(2, 2)].symbol(), "▲");
        let st = buf[(2, 2)].style();
        assert!(
            st.fg.is_none_or(|c| c == ratatui::style::Color::Reset),
            "no colour: {st:?}"
        );
        assert!(st.add_modifier.contains(ratatui::style::Modifier::BOLD));
    }
}
