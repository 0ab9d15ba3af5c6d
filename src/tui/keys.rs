//! Keys, following k9s: what each key means in the current mode (typing a
//! command or filter, help open, proposal dialog open, the chat pane where
//! letters are text, browsing), and the key list `?` shows. Pure. Deciding keys (approve, reject) need a capital
//! letter and then `y`: nothing that acts sits on a key pressed by reflex.

use super::app::{
    App, Decision, Load, Msg, Nav, Overlay, PlanMsg, PromptKind, PromptMsg, Run, Screen, SortMsg,
    TimeMsg,
};
use super::chat::{ChatMsg, PAGE};
use crate::model::Risk;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// One line of the help screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyHelp {
    pub keys: &'static str,
    pub what: &'static str,
    /// An action key: hidden with `--readonly`.
    pub action: bool,
}

const fn k(keys: &'static str, what: &'static str) -> KeyHelp {
    KeyHelp {
        keys,
        what,
        action: false,
    }
}

const fn act(keys: &'static str, what: &'static str) -> KeyHelp {
    KeyHelp {
        keys,
        what,
        action: true,
    }
}

/// Every key, by section: the help screen and the README list come from here.
pub const HELP: &[(&str, &[KeyHelp])] = &[
    (
        "Views",
        &[
            k(":", "command line (Enter runs, Esc cancels)"),
            k(
                ":ops :backends :findings :changes :ov",
                "switch view (aliases :op :be :fi :ch; :ov the overview)",
            ),
            k(
                ":ops API/OP  :be ID  :logs API/OP",
                "open an operation, a backend, an operation's rows",
            ),
            k(
                ":export md|json FILE",
                "write the view (rows: all of them; findings: the incident ticket)",
            ),
            k(
                "Tab  ↑ ↓ (on the : line)",
                "complete the word / earlier lines",
            ),
            k(":chat  a", "ask about the instance in plain language"),
            k(
                ":sort COLUMN   s  S",
                "sort by a column (Tab lists them) / by the next one / reverse",
            ),
            k(
                ":time HH:MM  DATE HH:MM  -2h  yesterday",
                "time cursor to a minute, UTC (also +30m, timestamps); all resets",
            ),
            k("?", "this help (Esc or ? closes)"),
        ],
    ),
    (
        "Moving",
        &[
            k(
                "j k  ↓ ↑",
                "next / previous row, or scroll the focused text",
            ),
            k("g G  Home End", "first / last row"),
            k("PgDn PgUp  Ctrl-d Ctrl-u", "ten rows down / up"),
            k("Enter", "drill down: operation, backend, finding"),
            k(
                "l",
                "request rows of the selected finding, operation or backend",
            ),
            k(
                "y  Y",
                "copy the id (finding, correlation id) / the file:line",
            ),
            k("Esc", "clear the filter, else back along the breadcrumbs"),
            k("Tab  Shift-Tab", "next / previous pane"),
            k(
                "/",
                "filter rows by regex (!regex keeps rows that do not match)",
            ),
            k("q  Ctrl-c  :q", "quit"),
        ],
    ),
    (
        "Time",
        &[
            k("[  ]", "window ends one minute earlier / later"),
            k("{  }", "ten minutes earlier / later"),
            k("0", "all data again"),
        ],
    ),
    (
        "Proposals",
        &[
            act("p", "open the remediation plan of the selected finding"),
            act(
                "A  then y",
                "approve; live: ARM plan, y (high risk: its id + Enter) runs it",
            ),
            act("U  v", "after a live apply: undo it / verify again"),
            act("R  then y", "reject the selected proposal"),
            act("n  Esc", "cancel the confirmation / close the dialog"),
            act("j k", "choose a proposal in the dialog"),
        ],
    ),
    (
        "Chat",
        &[
            k(
                "Enter  Esc",
                "send (one question at a time) / back; the transcript stays",
            ),
            k(
                "↑ ↓  PgUp PgDn",
                "earlier questions / scroll the transcript",
            ),
            k("← → Home End  Ctrl-u", "move in the line / clear it"),
            k(
                "/findings /backends /explain ID",
                "as in apimedic chat; also /history /help /quit",
            ),
        ],
    ),
];

/// The help lines that apply (`--readonly` drops the action keys).
pub fn help(readonly: bool) -> Vec<(&'static str, Vec<KeyHelp>)> {
    HELP.iter()
        .map(|(section, keys)| {
            let keys: Vec<KeyHelp> = keys
                .iter()
                .copied()
                .filter(|k| !(readonly && k.action))
                .collect();
            (*section, keys)
        })
        .filter(|(_, keys)| !keys.is_empty())
        .collect()
}

/// What a key means now; `None` when it means nothing here.
pub fn translate(app: &App, key: KeyEvent) -> Option<Msg> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Msg::Quit);
    }
    if app.prompt.is_some() {
        return Some(Msg::Prompt(match key.code {
            KeyCode::Enter => PromptMsg::Submit,
            KeyCode::Esc => PromptMsg::Cancel,
            KeyCode::Backspace => PromptMsg::Backspace,
            KeyCode::Tab => PromptMsg::Complete,
            KeyCode::Up => PromptMsg::Older,
            KeyCode::Down => PromptMsg::Newer,
            KeyCode::Char(c) if !ctrl => PromptMsg::Input(c),
            _ => return None,
        }));
    }
    match &app.overlay {
        Some(Overlay::Help { .. }) => {
            return match key.code {
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') => Some(Msg::CloseOverlay),
                KeyCode::Char('j') | KeyCode::Down => Some(Msg::Nav(Nav::Down)),
                KeyCode::Char('k') | KeyCode::Up => Some(Msg::Nav(Nav::Up)),
                _ => None,
            };
        }
        Some(Overlay::Plan(d)) => {
            return match &d.run {
                Some(run) => run_key(run, key),
                None => plan_key(key),
            };
        }
        None => {}
    }
    if !matches!(app.load, Load::Ready(_)) {
        return match key.code {
            KeyCode::Char('q') => Some(Msg::Quit),
            KeyCode::Char('?') => Some(Msg::Help),
            // Typed ahead: the command runs once the data is loaded.
            KeyCode::Char(':') => Some(Msg::Prompt(PromptMsg::Open(PromptKind::Command))),
            _ => None,
        };
    }
    if *app.screen() == Screen::Chat {
        return chat_key(key, ctrl).map(Msg::Chat);
    }
    let nav = |n| Some(Msg::Nav(n));
    match key.code {
        KeyCode::Char('d') if ctrl => nav(Nav::PageDown),
        KeyCode::Char('u') if ctrl => nav(Nav::PageUp),
        _ if ctrl => None,
        KeyCode::Char('q') => Some(Msg::Quit),
        KeyCode::Char('?') => Some(Msg::Help),
        KeyCode::Char(':') => Some(Msg::Prompt(PromptMsg::Open(PromptKind::Command))),
        KeyCode::Char('/') => Some(Msg::Prompt(PromptMsg::Open(PromptKind::Filter))),
        KeyCode::Char('j') | KeyCode::Down => nav(Nav::Down),
        KeyCode::Char('k') | KeyCode::Up => nav(Nav::Up),
        KeyCode::Char('g') | KeyCode::Home => nav(Nav::Top),
        KeyCode::Char('G') | KeyCode::End => nav(Nav::Bottom),
        KeyCode::PageDown => nav(Nav::PageDown),
        KeyCode::PageUp => nav(Nav::PageUp),
        KeyCode::Enter => nav(Nav::Enter),
        KeyCode::Esc => nav(Nav::Back),
        KeyCode::Tab => nav(Nav::NextPane),
        KeyCode::BackTab => nav(Nav::PrevPane),
        KeyCode::Char('[') => Some(Msg::Time(TimeMsg::Step(-1))),
        KeyCode::Char(']') => Some(Msg::Time(TimeMsg::Step(1))),
        KeyCode::Char('{') => Some(Msg::Time(TimeMsg::Step(-10))),
        KeyCode::Char('}') => Some(Msg::Time(TimeMsg::Step(10))),
        KeyCode::Char('0') => Some(Msg::Time(TimeMsg::Reset)),
        KeyCode::Char('s') => Some(Msg::Sort(SortMsg::Next)),
        KeyCode::Char('S') => Some(Msg::Sort(SortMsg::Reverse)),
        KeyCode::Char('p') => Some(Msg::Plan(PlanMsg::Open)),
        KeyCode::Char('a') => Some(Msg::Chat(ChatMsg::Open)),
        KeyCode::Char('l') => Some(Msg::OpenLogs),
        KeyCode::Char('y') => Some(Msg::Copy { location: false }),
        KeyCode::Char('Y') => Some(Msg::Copy { location: true }),
        _ => None,
    }
}

/// Keys in the chat pane: letters are text; editing keys as in a shell.
fn chat_key(key: KeyEvent, ctrl: bool) -> Option<ChatMsg> {
    Some(match key.code {
        KeyCode::Char('u') if ctrl => ChatMsg::Clear,
        KeyCode::Char('a') if ctrl => ChatMsg::Home,
        KeyCode::Char('e') if ctrl => ChatMsg::End,
        _ if ctrl => return None,
        KeyCode::Char(c) => ChatMsg::Input(c),
        KeyCode::Enter => ChatMsg::Send,
        KeyCode::Esc => ChatMsg::Leave,
        KeyCode::Backspace => ChatMsg::Backspace,
        KeyCode::Delete => ChatMsg::Delete,
        KeyCode::Left => ChatMsg::Left,
        KeyCode::Right => ChatMsg::Right,
        KeyCode::Home => ChatMsg::Home,
        KeyCode::End => ChatMsg::End,
        KeyCode::Up => ChatMsg::Older,
        KeyCode::Down => ChatMsg::Newer,
        KeyCode::PageUp => ChatMsg::Scroll(-PAGE),
        KeyCode::PageDown => ChatMsg::Scroll(PAGE),
        _ => return None,
    })
}

/// Keys inside the proposal dialog: deciding takes a capital letter, then `y`.
fn plan_key(key: KeyEvent) -> Option<Msg> {
    let m = match key.code {
        KeyCode::Char('j') | KeyCode::Down => PlanMsg::Select(1),
        KeyCode::Char('k') | KeyCode::Up => PlanMsg::Select(-1),
        KeyCode::PageDown | KeyCode::Char(' ') => PlanMsg::Scroll(5),
        KeyCode::PageUp => PlanMsg::Scroll(-5),
        KeyCode::Char('A') => PlanMsg::Ask(Decision::Approved),
        KeyCode::Char('R') => PlanMsg::Ask(Decision::Rejected),
        KeyCode::Char('y') | KeyCode::Char('Y') => PlanMsg::Confirm,
        KeyCode::Char('n') | KeyCode::Char('q') | KeyCode::Esc => PlanMsg::Cancel,
        _ => return None,
    };
    Some(Msg::Plan(m))
}

/// Keys while a remediation runs in the dialog. Approving a high-risk plan
/// takes its proposal id typed in full, then Enter; a lower risk takes `y`.
fn run_key(run: &Run, key: KeyEvent) -> Option<Msg> {
    let scroll = match key.code {
        KeyCode::PageDown => Some(PlanMsg::Scroll(5)),
        KeyCode::PageUp => Some(PlanMsg::Scroll(-5)),
        _ => None,
    };
    let m = match run {
        Run::Review { plan, .. } if plan.risk == Risk::High => match key.code {
            KeyCode::Enter => PlanMsg::Confirm,
            KeyCode::Esc => PlanMsg::Cancel,
            KeyCode::Backspace => PlanMsg::Erase,
            KeyCode::Char(c) => PlanMsg::Input(c),
            _ => scroll?,
        },
        Run::Review { .. } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => PlanMsg::Confirm,
            KeyCode::Char('n') | KeyCode::Char('q') | KeyCode::Esc => PlanMsg::Cancel,
            KeyCode::Char(' ') => PlanMsg::Scroll(5),
            _ => scroll?,
        },
        Run::Done { .. } => match key.code {
            KeyCode::Char('U') => PlanMsg::Undo,
            KeyCode::Char('v') => PlanMsg::Verify,
            KeyCode::Char('n') | KeyCode::Char('q') | KeyCode::Esc => PlanMsg::Cancel,
            KeyCode::Char(' ') => PlanMsg::Scroll(5),
            _ => scroll?,
        },
        Run::Planning { .. } | Run::Running { .. } => match key.code {
            KeyCode::Esc | KeyCode::Char('q') => PlanMsg::Cancel,
            _ => scroll?,
        },
    };
    Some(Msg::Plan(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::Playbooks;
    use crate::tui::theme::Theme;

    #[test]
    fn readonly_help_has_no_action_keys() {
        let all: usize = help(false).iter().map(|(_, k)| k.len()).sum();
        let ro: Vec<_> = help(true);
        let ro_n: usize = ro.iter().map(|(_, k)| k.len()).sum();
        assert!(ro_n < all);
        assert!(
            ro.iter()
                .all(|(s, keys)| *s != "Proposals" && keys.iter().all(|k| !k.action))
        );
    }

    #[test]
    fn release_events_are_ignored() {
        let (app, _) = App::new("t", Theme::COLOR, false, Playbooks::default());
        let mut key = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        key.kind = KeyEventKind::Release;
        assert!(translate(&app, key).is_none());
    }
}
