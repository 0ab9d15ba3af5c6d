//! Every colour the dashboard uses, in one place. Two themes: `COLOR`, and
//! `PLAIN` for `NO_COLOR` (no colours at all; bold and reverse still mark
//! what matters, so selection and severity stay visible). Pure.

use crate::model::{Health, Severity};
use ratatui::style::{Color, Modifier, Style};

/// The styles views draw with. Views never name a colour themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    /// False under `NO_COLOR`: only modifiers are used.
    pub color: bool,
}

impl Theme {
    pub const COLOR: Theme = Theme { color: true };
    pub const PLAIN: Theme = Theme { color: false };

    /// `PLAIN` when `NO_COLOR` is set to anything non-empty (no-color.org).
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if no_color { Theme::PLAIN } else { Theme::COLOR }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// A finding's severity: red for critical and high, yellow for medium.
    pub fn severity(self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Severity::High => self.fg(Color::LightRed).add_modifier(Modifier::BOLD),
            Severity::Medium => self.fg(Color::Yellow),
            Severity::Low => self.fg(Color::Cyan),
            Severity::Info => self.fg(Color::Gray),
        }
    }

    /// A backend's or operation's health.
    pub fn health(self, h: Health) -> Style {
        match h {
            Health::Unhealthy => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Health::Degraded => self.fg(Color::Yellow),
            Health::Healthy => self.fg(Color::Green),
            Health::Unknown => self.fg(Color::Gray),
        }
    }

    /// The selected row of the focused list.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// The selected row of a list whose pane has no focus.
    pub fn selected_unfocused(self) -> Style {
        Style::new().add_modifier(Modifier::UNDERLINED)
    }

    /// Pane borders: the focused pane stands out.
    pub fn border(self, focused: bool) -> Style {
        match (focused, self.color) {
            (true, true) => Style::new().fg(Color::Cyan),
            (true, false) => Style::new().add_modifier(Modifier::BOLD),
            (false, _) => self.fg(Color::DarkGray),
        }
    }

    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// Column headers of tables.
    pub fn header(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// Secondary text: labels, hints, file names.
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    /// The top bar and the key-hint line.
    pub fn bar(self) -> Style {
        if self.color {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    /// Chart bars in normal minutes.
    pub fn chart(self) -> Style {
        self.fg(Color::Cyan)
    }

    /// Chart bars and marks inside a finding's window.
    pub fn anomaly(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// The time cursor.
    pub fn cursor(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// A line a finding points at (policy line, diff line).
    pub fn highlight(self, s: Severity) -> Style {
        self.severity(s).add_modifier(Modifier::REVERSED)
    }

    pub fn diff_added(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn diff_removed(self) -> Style {
        self.fg(Color::Red)
    }

    /// Messages that report a problem (bad regex, load failure).
    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Caveats: an answer's note, what could not be checked, "thinking…".
    pub fn note(self) -> Style {
        self.fg(Color::Yellow)
    }

    /// Decisions and confirmations in the proposal dialog.
    pub fn approved(self) -> Style {
        self.fg(Color::Green).add_modifier(Modifier::BOLD)
    }

    /// Gauge fill by how full: green, yellow from 70 %, red from 90 %.
    pub fn gauge(self, percent: f64) -> Style {
        let c = if percent >= 90.0 {
            Color::Red
        } else if percent >= 70.0 {
            Color::Yellow
        } else {
            Color::Green
        };
        self.fg(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_theme_has_no_colours_but_keeps_modifiers() {
        let t = Theme::PLAIN;
        for s in Severity::ALL {
            assert_eq!(t.severity(s).fg, None);
        }
        assert_eq!(t.health(Health::Unhealthy).fg, None);
        assert!(
            t.severity(Severity::Critical)
                .add_modifier
                .contains(Modifier::BOLD)
        );
        assert!(t.selected().add_modifier.contains(Modifier::REVERSED));
        assert_eq!(t.bar().bg, None);
    }

    #[test]
    fn colour_theme_marks_severity() {
        let t = Theme::COLOR;
        assert_eq!(t.severity(Severity::Critical).fg, Some(Color::Red));
        assert_eq!(t.severity(Severity::Medium).fg, Some(Color::Yellow));
        assert_eq!(t.health(Health::Healthy).fg, Some(Color::Green));
    }
}
