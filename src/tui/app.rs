//! The dashboard's state (`App`), everything that can happen to it (`Msg`)
//! and the one transition function, `update`, which returns the side effect
//! the UI loop should start (`Cmd`). Pure: no terminal, no threads, no
//! clock; background results arrive as messages. Tests drive this module
//! with messages and assert on fields.

use super::chat::{self, ChatMsg, ChatPane, ChatReply};
use super::data::{Loaded, OpRow, PolicyView, Scoped, concerns_op};
use super::keys;
use super::theme::Theme;
use crate::model::{Finding, Minute, Proposal, RouteEntry};
use crate::playbook::Playbooks;
use crossterm::event::KeyEvent;
use regex::Regex;
use std::collections::BTreeMap;

/// A screen on the breadcrumb stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    Overview,
    Operations,
    Operation {
        api: String,
        op: String,
    },
    Backends,
    Backend {
        id: String,
    },
    Findings,
    Changes,
    /// The chat pane: questions in plain language, answered by the engine
    /// `apimedic chat` uses.
    Chat,
}

impl Screen {
    /// The breadcrumb text.
    pub fn title(&self) -> String {
        match self {
            Screen::Overview => "Overview".into(),
            Screen::Operations => "Operations".into(),
            Screen::Operation { api, op } => format!("{api}/{op}"),
            Screen::Backends => "Backends".into(),
            Screen::Backend { id } => format!("backend {id}"),
            Screen::Findings => "Findings".into(),
            Screen::Changes => "Changes".into(),
            Screen::Chat => "Chat".into(),
        }
    }

    /// Panes Tab moves between.
    pub fn panes(&self) -> usize {
        match self {
            Screen::Overview | Screen::Operations | Screen::Backends | Screen::Chat => 1,
            Screen::Operation { .. } => 3,
            Screen::Backend { .. } | Screen::Findings | Screen::Changes => 2,
        }
    }

    /// Whether j/k moves a selection (a list) or scrolls text in a pane.
    pub fn is_list(&self, pane: usize) -> bool {
        match self {
            Screen::Operation { .. } => pane != 1,
            Screen::Backend { .. } | Screen::Findings | Screen::Changes => pane == 0,
            Screen::Chat => false,
            _ => true,
        }
    }
}

/// A `/` filter: a regex, inverted with a leading `!`.
#[derive(Clone, Debug)]
pub struct Filter {
    /// As typed, `!` included.
    pub text: String,
    regex: Regex,
    invert: bool,
}

impl Filter {
    /// Case-insensitive unless the pattern has an upper-case letter.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let (invert, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let smart = if pattern.chars().any(char::is_uppercase) {
            pattern.to_string()
        } else {
            format!("(?i){pattern}")
        };
        let regex = Regex::new(&smart).map_err(|e| format!("bad filter /{text}/: {e}"))?;
        Ok(Filter {
            text: text.to_string(),
            regex,
            invert,
        })
    }

    pub fn keeps(&self, row: &str) -> bool {
        self.regex.is_match(row) != self.invert
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.text == other.text
    }
}

/// One breadcrumb: a screen with its selections, scroll offsets, focused
/// pane and filter, restored when Esc comes back to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Crumb {
    pub screen: Screen,
    pub focus: usize,
    /// Selected row per pane (list panes).
    pub selected: [usize; 3],
    /// Scroll offset per pane (text panes).
    pub scroll: [u16; 3],
    pub filter: Option<Filter>,
}

impl Crumb {
    pub fn new(screen: Screen) -> Crumb {
        Crumb {
            screen,
            focus: 0,
            selected: [0; 3],
            scroll: [0; 3],
            filter: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    Command,
    Filter,
}

/// The line being typed after `:` or `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    pub fn label(self) -> &'static str {
        match self {
            Decision::Approved => "approved (execution not available in this build)",
            Decision::Rejected => "rejected",
        }
    }
}

/// The proposal dialog of one finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanDialog {
    pub finding: String,
    /// Index into the finding's proposals.
    pub selected: usize,
    /// A decision waiting for `y`.
    pub confirm: Option<Decision>,
    pub scroll: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overlay {
    Help { scroll: u16 },
    Plan(PlanDialog),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    Name,
    Requests,
    Errors,
    P95,
    Backend,
    Health,
}

impl SortColumn {
    pub const ALL: [SortColumn; 6] = [
        SortColumn::Name,
        SortColumn::Requests,
        SortColumn::Errors,
        SortColumn::P95,
        SortColumn::Backend,
        SortColumn::Health,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortColumn::Name => "name",
            SortColumn::Requests => "requests",
            SortColumn::Errors => "errors",
            SortColumn::P95 => "p95",
            SortColumn::Backend => "backend",
            SortColumn::Health => "health",
        }
    }

    pub fn parse(s: &str) -> Option<SortColumn> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "req" | "rps" => "requests",
            "err" | "error" | "5xx" => "errors",
            "latency" => "p95",
            "op" | "operation" => "name",
            other => other,
        }
        .to_string();
        SortColumn::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Names read best A→Z; numbers and health read best worst-first.
    fn default_descending(self) -> bool {
        !matches!(self, SortColumn::Name | SortColumn::Backend)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub column: SortColumn,
    pub descending: bool,
}

/// Where loading stands.
#[derive(Clone, Debug)]
pub enum Load {
    Loading,
    Ready(Box<Loaded>),
    Failed(String),
}

/// A line for the status bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

/// The whole state of the dashboard. Owned by the UI loop; only `update`
/// changes it; views borrow it.
#[derive(Clone, Debug)]
pub struct App {
    pub theme: Theme,
    /// `--readonly`: no proposal dialog, no decision keys.
    pub readonly: bool,
    /// What is shown: `demo` or the folder given.
    pub source: String,
    pub load: Load,
    /// A diagnosis for a new window is being computed.
    pub busy: bool,
    /// The last minute of the selected window; `None`: all data.
    pub cursor: Option<Minute>,
    /// Bumped on every window change; answers for older ones are dropped.
    pub generation: u64,
    /// Breadcrumbs; never empty, the first is always the overview.
    pub stack: Vec<Crumb>,
    pub prompt: Option<Prompt>,
    pub overlay: Option<Overlay>,
    pub message: Option<Message>,
    pub sort: Sort,
    /// Proposal id → what the user decided.
    pub decisions: BTreeMap<String, Decision>,
    /// The effective policy of the operation on screen, once computed.
    pub policy: Option<PolicyView>,
    pub playbooks: Playbooks,
    /// The chat pane: transcript, input line, pending question.
    pub chat: ChatPane,
}

/// Everything that can happen.
#[derive(Debug)]
pub enum Msg {
    /// The worker loaded and diagnosed the data (or could not).
    Loaded(Result<Box<Loaded>, String>),
    /// The worker diagnosed a window.
    Scoped(Box<Scoped>),
    /// The worker panicked: the dashboard ends with this message.
    Crashed(String),
    /// The worker computed an operation's effective policy.
    Inspected(Box<PolicyView>),
    /// A key, translated by `keys::translate` in the current mode.
    Key(KeyEvent),
    /// The terminal changed size (just redraw).
    Resize,
    /// Time to re-read a live source (`tui --refresh`).
    Refresh,
    Nav(Nav),
    Time(TimeMsg),
    Sort(SortMsg),
    Prompt(PromptMsg),
    Plan(PlanMsg),
    /// Show the key list.
    Help,
    /// Close the help or the dialog.
    CloseOverlay,
    /// A key in the chat pane, or opening it.
    Chat(ChatMsg),
    /// A fragment of the pending answer (a model streaming its text).
    ChatDelta(String),
    /// The chat thread answered the pending line.
    ChatAnswer(Box<ChatReply>),
    Quit,
}

/// Moving around: shared by every screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Back,
    NextPane,
    PrevPane,
}

/// The time cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeMsg {
    /// Move the window's end by this many minutes.
    Step(i64),
    /// Back to all data.
    Reset,
}

/// The operations table's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortMsg {
    Next,
    Reverse,
    By(SortColumn),
}

/// The `:` and `/` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptMsg {
    Open(PromptKind),
    Input(char),
    Backspace,
    Submit,
    Cancel,
}

/// The proposal dialog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanMsg {
    Open,
    Select(i64),
    Scroll(i64),
    /// Ask to approve or reject the selected proposal (needs `Confirm`).
    Ask(Decision),
    Confirm,
    Cancel,
}

/// Side effects `update` asks the UI loop to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Load and diagnose the data (at start, and on each refresh).
    Load,
    /// Diagnose the window ending at `cursor`.
    Diagnose {
        generation: u64,
        cursor: Option<Minute>,
    },
    /// Compute an operation's effective policy.
    Inspect {
        api: String,
        op: String,
    },
    /// Answer a chat line (a question or slash command) on the chat thread.
    Chat(String),
    Quit,
}

/// A row of the changes timeline: a change, or the start of an anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeRow {
    /// Index into `Snapshot::changes`.
    Change(usize),
    /// Index into the diagnosis' findings.
    Onset(usize),
}

const PAGE: usize = 10;

impl App {
    /// A dashboard that is loading; the first frame can be drawn at once.
    /// The returned command starts the load.
    pub fn new(source: &str, theme: Theme, readonly: bool, playbooks: Playbooks) -> (App, Cmd) {
        let app = App {
            theme,
            readonly,
            source: source.to_string(),
            load: Load::Loading,
            busy: false,
            cursor: None,
            generation: 0,
            stack: vec![Crumb::new(Screen::Overview)],
            prompt: None,
            overlay: None,
            message: None,
            sort: Sort {
                column: SortColumn::Errors,
                descending: true,
            },
            decisions: BTreeMap::new(),
            policy: None,
            playbooks,
            chat: ChatPane {
                engine: "offline".into(),
                ..ChatPane::default()
            },
        };
        (app, Cmd::Load)
    }

    pub fn loaded(&self) -> Option<&Loaded> {
        match &self.load {
            Load::Ready(l) => Some(l),
            _ => None,
        }
    }

    pub fn crumb(&self) -> &Crumb {
        // The stack is never empty (see `pop`); the fallback only satisfies the type.
        self.stack.last().unwrap_or(&self.stack[0])
    }

    fn crumb_mut(&mut self) -> &mut Crumb {
        let i = self.stack.len().saturating_sub(1);
        &mut self.stack[i]
    }

    pub fn screen(&self) -> &Screen {
        &self.crumb().screen
    }

    /// Findings of the selected window, most urgent first.
    pub fn findings(&self) -> &[Finding] {
        self.loaded()
            .map(|l| l.scoped.diagnosis.findings.as_slice())
            .unwrap_or(&[])
    }

    pub fn proposals_of(&self, finding: &str) -> Vec<&Proposal> {
        self.loaded()
            .map(|l| {
                l.scoped
                    .diagnosis
                    .proposals
                    .iter()
                    .filter(|p| p.finding == finding)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// First and last minute of the data.
    pub fn range(&self) -> Option<(Minute, Minute)> {
        self.loaded().and_then(|l| l.range)
    }

    fn keeps(&self, text: &str) -> bool {
        self.crumb().filter.as_ref().is_none_or(|f| f.keeps(text))
    }

    /// Operations of the window, filtered and sorted as shown.
    pub fn op_rows(&self) -> Vec<&OpRow> {
        let Some(l) = self.loaded() else {
            return Vec::new();
        };
        let mut rows: Vec<&OpRow> = l
            .scoped
            .ops
            .iter()
            .filter(|r| self.keeps(&op_text(r)))
            .collect();
        let Sort { column, descending } = self.sort;
        rows.sort_by(|a, b| {
            let ord = match column {
                SortColumn::Name => a.label().cmp(&b.label()),
                SortColumn::Requests => a.requests.cmp(&b.requests),
                SortColumn::Errors => a
                    .error_percent()
                    .total_cmp(&b.error_percent())
                    .then(a.errors.cmp(&b.errors)),
                SortColumn::P95 => a.p95_ms.cmp(&b.p95_ms),
                SortColumn::Backend => a.backends.first().cmp(&b.backends.first()),
                SortColumn::Health => a.health.cmp(&b.health),
            };
            let ord = if descending { ord.reverse() } else { ord };
            ord.then_with(|| a.label().cmp(&b.label()))
        });
        rows
    }

    /// Rows of the backend map, filtered.
    pub fn route_rows(&self) -> Vec<&RouteEntry> {
        self.loaded()
            .map(|l| {
                l.scoped
                    .diagnosis
                    .backend_map
                    .iter()
                    .filter(|e| self.keeps(&route_text(e)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Findings as the findings list (and the overview) show them, filtered.
    pub fn finding_rows(&self) -> Vec<&Finding> {
        self.findings()
            .iter()
            .filter(|f| self.keeps(&finding_text(f)))
            .collect()
    }

    /// Changes and anomaly onsets in time order, filtered.
    pub fn change_rows(&self) -> Vec<ChangeRow> {
        let Some(l) = self.loaded() else {
            return Vec::new();
        };
        let s = &l.snapshot;
        let mut rows: Vec<(i64, u8, ChangeRow)> = s
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.time.millis(), 0, ChangeRow::Change(i)))
            .collect();
        for (i, f) in l.scoped.diagnosis.findings.iter().enumerate() {
            if let Some(w) = f.window.filter(|_| f.kind.is_anomaly()) {
                rows.push((w.start.millis(), 1, ChangeRow::Onset(i)));
            }
        }
        rows.sort_by_key(|(t, order, _)| (*t, *order));
        rows.into_iter()
            .map(|(_, _, r)| r)
            .filter(|r| self.keeps(&self.change_text(*r)))
            .collect()
    }

    pub fn change_text(&self, row: ChangeRow) -> String {
        let Some(l) = self.loaded() else {
            return String::new();
        };
        match row {
            ChangeRow::Change(i) => l
                .snapshot
                .changes
                .get(i)
                .map(|c| {
                    format!(
                        "{} {:?} {} {} {}",
                        c.time.hhmm(),
                        c.kind,
                        c.operation,
                        c.policy_scope
                            .as_ref()
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                        c.caller.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_default(),
            ChangeRow::Onset(i) => l
                .scoped
                .diagnosis
                .findings
                .get(i)
                .map(|f| format!("anomaly begins {} {}", f.kind, f.subject))
                .unwrap_or_default(),
        }
    }

    /// Findings that concern an operation (or its backends).
    pub fn findings_of_op(&self, api: &str, op: &str) -> Vec<&Finding> {
        let backends = self.op_backends(api, op);
        self.findings()
            .iter()
            .filter(|f| concerns_op(f, api, op, &backends))
            .collect()
    }

    /// The backends an operation uses: observed in traffic, else configured.
    pub fn op_backends(&self, api: &str, op: &str) -> Vec<String> {
        let Some(l) = self.loaded() else {
            return Vec::new();
        };
        let mut out: Vec<String> = l
            .full
            .operation(api, op)
            .map(|o| o.backends.iter().map(|(b, _)| b.clone()).collect())
            .unwrap_or_default();
        if let Some(e) = l
            .scoped
            .diagnosis
            .backend_map
            .iter()
            .find(|e| e.api == api && e.operation == op)
        {
            for r in e.observed.iter().chain(&e.configured) {
                if !out.iter().any(|b| b.eq_ignore_ascii_case(&r.backend)) {
                    out.push(r.backend.clone());
                }
            }
        }
        out
    }

    /// Operations routed to a backend (configured or observed).
    pub fn backend_ops(&self, id: &str) -> Vec<&RouteEntry> {
        self.loaded()
            .map(|l| {
                l.scoped
                    .diagnosis
                    .backend_map
                    .iter()
                    .filter(|e| {
                        e.configured
                            .iter()
                            .chain(&e.observed)
                            .any(|r| r.backend.eq_ignore_ascii_case(id))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rows in a list pane of the current screen.
    pub fn list_len(&self, pane: usize) -> usize {
        match (self.screen(), pane) {
            (Screen::Overview | Screen::Findings, 0) => self.finding_rows().len(),
            (Screen::Operations, 0) => self.op_rows().len(),
            (Screen::Backends, 0) => self.route_rows().len(),
            (Screen::Changes, 0) => self.change_rows().len(),
            (Screen::Operation { api, op }, 0) => self.findings_of_op(api, op).len(),
            (Screen::Operation { api, op }, 2) => self.op_backends(api, op).len(),
            (Screen::Backend { id }, 0) => self.backend_ops(id).len(),
            _ => 0,
        }
    }

    /// The selected row of the focused-or-first list, clamped.
    pub fn selected(&self, pane: usize) -> usize {
        let n = self.list_len(pane);
        self.crumb()
            .selected
            .get(pane)
            .copied()
            .unwrap_or(0)
            .min(n.saturating_sub(1))
    }

    /// The finding the user is looking at, if any (for the dialog).
    pub fn current_finding(&self) -> Option<&Finding> {
        let c = self.crumb();
        match &c.screen {
            Screen::Overview | Screen::Findings => {
                self.finding_rows().get(self.selected(0)).copied()
            }
            Screen::Operation { api, op } => {
                self.findings_of_op(api, op).get(self.selected(0)).copied()
            }
            _ => None,
        }
    }

    /// Says something in the status bar.
    pub(super) fn say(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
        });
    }

    pub(super) fn complain(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
        });
    }

    fn push(&mut self, screen: Screen) -> Option<Cmd> {
        let cmd = self.inspect_cmd(&screen);
        self.stack.push(Crumb::new(screen));
        cmd
    }

    /// Switches to a top-level view: the breadcrumbs become Overview › view.
    fn go(&mut self, screen: Screen) -> Option<Cmd> {
        if *self.screen() == screen {
            return None;
        }
        self.stack.truncate(1);
        if screen != Screen::Overview {
            self.stack.push(Crumb::new(screen));
        }
        None
    }

    pub(super) fn inspect_cmd(&self, screen: &Screen) -> Option<Cmd> {
        match screen {
            Screen::Operation { api, op } => {
                let have = self
                    .policy
                    .as_ref()
                    .is_some_and(|p| &p.api == api && &p.operation == op);
                (!have).then(|| Cmd::Inspect {
                    api: api.clone(),
                    op: op.clone(),
                })
            }
            _ => None,
        }
    }
}

/// The text a filter matches for an operation row.
pub fn op_text(r: &OpRow) -> String {
    format!("{} {} {:?}", r.label(), r.backends.join(" "), r.health)
}

pub fn route_text(e: &RouteEntry) -> String {
    let backends: Vec<&str> = e
        .configured
        .iter()
        .chain(&e.observed)
        .map(|r| r.backend.as_str())
        .collect();
    format!(
        "{}/{} {} {:?}",
        e.api,
        e.operation,
        backends.join(" "),
        e.health
    )
}

pub fn finding_text(f: &Finding) -> String {
    format!("{} {} {} {}", f.severity, f.kind, f.subject, f.summary)
}

/// The one transition function. Returns the side effect to start, if any.
pub fn update(app: &mut App, msg: Msg) -> Option<Cmd> {
    match msg {
        Msg::Key(key) => {
            let next = keys::translate(app, key)?;
            update(app, next)
        }
        Msg::Resize => None,
        Msg::Quit => Some(Cmd::Quit),
        // A refresh re-reads only once the previous load is done.
        Msg::Refresh => matches!(app.load, Load::Ready(_)).then_some(Cmd::Load),
        Msg::Loaded(Ok(loaded)) => {
            // On a refresh the screen, selection and time cursor stay; a
            // cursor the user set is re-diagnosed on the new data.
            let keep = matches!(app.load, Load::Ready(_))
                .then_some(app.cursor)
                .flatten();
            app.generation = app.generation.max(loaded.scoped.generation);
            app.cursor = loaded.scoped.cursor;
            app.load = Load::Ready(loaded);
            keep.and_then(|cursor| set_cursor(app, Some(cursor)))
        }
        Msg::Loaded(Err(e)) => {
            app.load = Load::Failed(e);
            None
        }
        Msg::Crashed(e) => {
            app.load = Load::Failed(e);
            Some(Cmd::Quit)
        }
        Msg::Scoped(scoped) => {
            if scoped.generation == app.generation
                && let Load::Ready(l) = &mut app.load
            {
                l.scoped = *scoped;
                app.busy = false;
            }
            None
        }
        Msg::Inspected(view) => {
            app.policy = Some(*view);
            None
        }
        Msg::Help => {
            app.overlay = Some(Overlay::Help { scroll: 0 });
            None
        }
        Msg::CloseOverlay => {
            app.overlay = None;
            None
        }
        Msg::Nav(nav) => navigate(app, nav),
        Msg::Time(t) => time(app, t),
        Msg::Sort(s) => {
            sort(app, s);
            None
        }
        Msg::Prompt(p) => prompt(app, p),
        Msg::Plan(p) => {
            plan(app, p);
            None
        }
        Msg::Chat(m) => chat::update(app, m),
        Msg::ChatDelta(text) => {
            app.chat.stream(&text);
            None
        }
        Msg::ChatAnswer(reply) => {
            app.chat.receive(*reply);
            if *app.screen() != Screen::Chat {
                app.say("the chat answer is in (a opens the chat pane)");
            }
            None
        }
    }
}

fn navigate(app: &mut App, nav: Nav) -> Option<Cmd> {
    if let Some(Overlay::Help { scroll }) = &mut app.overlay {
        match nav {
            Nav::Up => *scroll = scroll.saturating_sub(1),
            Nav::Down => *scroll = scroll.saturating_add(1).min(200),
            Nav::Back => app.overlay = None,
            _ => {}
        }
        return None;
    }
    app.loaded()?;
    let focus = app.crumb().focus;
    let panes = app.screen().panes();
    let is_list = app.screen().is_list(focus);
    let len = app.list_len(focus);
    match nav {
        Nav::Up | Nav::Down | Nav::PageUp | Nav::PageDown | Nav::Top | Nav::Bottom => {
            let c = app.crumb_mut();
            if is_list {
                let cur = c.selected[focus].min(len.saturating_sub(1));
                c.selected[focus] = match nav {
                    Nav::Up => cur.saturating_sub(1),
                    Nav::Down => (cur + 1).min(len.saturating_sub(1)),
                    Nav::PageUp => cur.saturating_sub(PAGE),
                    Nav::PageDown => (cur + PAGE).min(len.saturating_sub(1)),
                    Nav::Top => 0,
                    _ => len.saturating_sub(1),
                };
            } else {
                let s = c.scroll[focus];
                c.scroll[focus] = match nav {
                    Nav::Up => s.saturating_sub(1),
                    Nav::Down => s.saturating_add(1),
                    Nav::PageUp => s.saturating_sub(PAGE as u16),
                    Nav::PageDown => s.saturating_add(PAGE as u16),
                    Nav::Top => 0,
                    _ => u16::MAX / 2,
                }
                .min(MAX_SCROLL);
            }
            None
        }
        Nav::NextPane => {
            let c = app.crumb_mut();
            c.focus = (c.focus + 1) % panes;
            None
        }
        Nav::PrevPane => {
            let c = app.crumb_mut();
            c.focus = (c.focus + panes - 1) % panes;
            None
        }
        Nav::Back => {
            if app.crumb().filter.is_some() {
                app.crumb_mut().filter = None;
                return None;
            }
            if app.stack.len() > 1 {
                app.stack.pop();
                let screen = app.screen().clone();
                return app.inspect_cmd(&screen);
            }
            None
        }
        Nav::Enter => enter(app),
    }
}

/// Text panes scroll at most this far; views clamp to their content.
pub const MAX_SCROLL: u16 = 2000;

fn enter(app: &mut App) -> Option<Cmd> {
    let focus = app.crumb().focus;
    let sel = app.selected(focus);
    let screen = app.screen().clone();
    let next = match (&screen, focus) {
        (Screen::Overview, 0) => {
            let id = app.finding_rows().get(sel).map(|f| f.id.clone())?;
            app.go(Screen::Findings);
            let pos = app.finding_rows().iter().position(|f| f.id == id)?;
            app.crumb_mut().selected[0] = pos;
            return None;
        }
        (Screen::Operations, 0) => {
            let r = app.op_rows().get(sel).copied()?;
            Screen::Operation {
                api: r.api.clone(),
                op: r.operation.clone(),
            }
        }
        (Screen::Backends, 0) => {
            let e = app.route_rows().get(sel).copied()?;
            let b = e.observed.first().or(e.configured.first())?;
            Screen::Backend {
                id: b.backend.clone(),
            }
        }
        (Screen::Operation { api, op }, 0) => {
            let id = app.findings_of_op(api, op).get(sel).map(|f| f.id.clone())?;
            app.stack.push(Crumb::new(Screen::Findings));
            let pos = app.finding_rows().iter().position(|f| f.id == id)?;
            app.crumb_mut().selected[0] = pos;
            return None;
        }
        (Screen::Findings, 0) => {
            let s = &app.finding_rows().get(sel).copied()?.subject;
            match (&s.api, &s.operation, &s.backend) {
                (Some(api), Some(op), _) => Screen::Operation {
                    api: api.clone(),
                    op: op.clone(),
                },
                (_, None, Some(b)) => Screen::Backend { id: b.clone() },
                _ => {
                    app.crumb_mut().focus = 1;
                    return None;
                }
            }
        }
        (Screen::Operation { api, op }, 2) => {
            let b = app.op_backends(api, op).get(sel).cloned()?;
            Screen::Backend { id: b }
        }
        (Screen::Backend { id }, 0) => {
            let e = app.backend_ops(id).get(sel).copied()?;
            Screen::Operation {
                api: e.api.clone(),
                op: e.operation.clone(),
            }
        }
        (Screen::Changes, 0) => {
            app.crumb_mut().focus = 1;
            return None;
        }
        _ => return None,
    };
    app.push(next)
}

fn time(app: &mut App, t: TimeMsg) -> Option<Cmd> {
    let Some((first, last)) = app.range() else {
        app.complain("no time-stamped data to step through");
        return None;
    };
    let cursor = match t {
        TimeMsg::Reset => None,
        TimeMsg::Step(d) => {
            let c = app
                .cursor
                .unwrap_or(last)
                .saturating_add(d)
                .clamp(first, last);
            (c < last).then_some(c)
        }
    };
    if cursor == app.cursor {
        return None;
    }
    set_cursor(app, cursor)
}

fn set_cursor(app: &mut App, cursor: Option<Minute>) -> Option<Cmd> {
    app.cursor = cursor;
    app.generation += 1;
    app.busy = true;
    Some(Cmd::Diagnose {
        generation: app.generation,
        cursor,
    })
}

fn sort(app: &mut App, s: SortMsg) {
    let Sort { column, descending } = app.sort;
    app.sort = match s {
        SortMsg::Reverse => Sort {
            column,
            descending: !descending,
        },
        SortMsg::Next => {
            let i = SortColumn::ALL
                .iter()
                .position(|c| *c == column)
                .unwrap_or(0);
            let next = SortColumn::ALL[(i + 1) % SortColumn::ALL.len()];
            Sort {
                column: next,
                descending: next.default_descending(),
            }
        }
        SortMsg::By(c) => Sort {
            column: c,
            descending: c.default_descending(),
        },
    };
    app.say(format!(
        "sorted by {} {}",
        app.sort.column.name(),
        if app.sort.descending { "↓" } else { "↑" }
    ));
}

fn prompt(app: &mut App, p: PromptMsg) -> Option<Cmd> {
    match p {
        PromptMsg::Open(kind) => {
            let text = match kind {
                PromptKind::Filter => app
                    .crumb()
                    .filter
                    .as_ref()
                    .map(|f| f.text.clone())
                    .unwrap_or_default(),
                PromptKind::Command => String::new(),
            };
            app.prompt = Some(Prompt { kind, text });
            app.message = None;
            None
        }
        PromptMsg::Input(c) => {
            let p = app.prompt.as_mut()?;
            p.text.push(c);
            live_filter(app);
            None
        }
        PromptMsg::Backspace => {
            let p = app.prompt.as_mut()?;
            p.text.pop();
            live_filter(app);
            None
        }
        PromptMsg::Cancel => {
            if app.prompt.take()?.kind == PromptKind::Filter {
                app.crumb_mut().filter = None;
            }
            app.message = None;
            None
        }
        PromptMsg::Submit => {
            let p = app.prompt.take()?;
            match p.kind {
                PromptKind::Filter => {
                    live_filter_text(app, &p.text);
                    None
                }
                PromptKind::Command => command(app, p.text.trim()),
            }
        }
    }
}

fn live_filter(app: &mut App) {
    if let Some(Prompt {
        kind: PromptKind::Filter,
        text,
    }) = &app.prompt
    {
        let text = text.clone();
        live_filter_text(app, &text);
    }
}

fn live_filter_text(app: &mut App, text: &str) {
    if text.is_empty() || text == "!" {
        app.crumb_mut().filter = None;
        app.message = None;
        return;
    }
    match Filter::parse(text) {
        Ok(f) => {
            let c = app.crumb_mut();
            c.filter = Some(f);
            c.selected = [0; 3];
            app.message = None;
        }
        Err(e) => app.complain(e),
    }
}

/// The `:` commands and their aliases.
fn command(app: &mut App, line: &str) -> Option<Cmd> {
    let mut words = line.split_whitespace();
    let word = words.next().unwrap_or("").to_ascii_lowercase();
    let arg = words.collect::<Vec<_>>().join(" ");
    match word.as_str() {
        "" => None,
        "q" | "q!" | "quit" | "exit" => Some(Cmd::Quit),
        "ov" | "overview" | "home" | "health" => app.go(Screen::Overview),
        "ops" | "op" | "operations" | "operation" => app.go(Screen::Operations),
        "be" | "backends" | "backend" | "map" => app.go(Screen::Backends),
        "fi" | "findings" | "finding" => app.go(Screen::Findings),
        "ch" | "changes" | "change" | "history" => app.go(Screen::Changes),
        "help" | "h" => update(app, Msg::Help),
        "chat" | "ask" | "a" => chat::update(app, ChatMsg::Open),
        "sort" => {
            match SortColumn::parse(&arg) {
                Some(c) => sort(app, SortMsg::By(c)),
                None => {
                    let names: Vec<&str> = SortColumn::ALL.iter().map(|c| c.name()).collect();
                    app.complain(format!(
                        "unknown sort column `{arg}`; use one of {}",
                        names.join(", ")
                    ));
                }
            }
            None
        }
        "time" | "t" => time_command(app, &arg),
        other => {
            app.complain(format!(
                "unknown command `{other}`; try :ops :backends :findings :changes :chat :time :sort :q (? lists every key)"
            ));
            None
        }
    }
}

/// `:time HH:MM` puts the cursor on that minute; `:time all` resets.
fn time_command(app: &mut App, arg: &str) -> Option<Cmd> {
    let Some((first, last)) = app.range() else {
        app.complain("no time-stamped data to step through");
        return None;
    };
    if arg.is_empty() || arg == "all" || arg == "reset" {
        return if app.cursor.is_some() {
            set_cursor(app, None)
        } else {
            None
        };
    }
    let parsed = arg.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.trim().parse::<i64>().ok()?, m.trim().parse::<i64>().ok()?);
        ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
    });
    let Some(minute_of_day) = parsed else {
        app.complain(format!("`{arg}` is not a time; use HH:MM (UTC) or `all`"));
        return None;
    };
    let found = (first..=last).find(|m| m.rem_euclid(1440) == minute_of_day);
    match found {
        Some(m) if m >= last => {
            if app.cursor.is_some() {
                set_cursor(app, None)
            } else {
                None
            }
        }
        Some(m) => set_cursor(app, Some(m)),
        None => {
            app.complain(format!("{arg} UTC is outside the data"));
            None
        }
    }
}

fn plan(app: &mut App, p: PlanMsg) {
    if p == PlanMsg::Open {
        if app.readonly {
            app.say("read-only: actions are hidden");
            return;
        }
        let Some(f) = app.current_finding() else {
            app.say("select a finding first (:findings)");
            return;
        };
        let id = f.id.clone();
        if app.proposals_of(&id).is_empty() {
            app.say("no remediation is proposed for this finding");
            return;
        }
        app.overlay = Some(Overlay::Plan(PlanDialog {
            finding: id,
            selected: 0,
            confirm: None,
            scroll: 0,
        }));
        return;
    }
    let Some(Overlay::Plan(dialog)) = app.overlay.clone() else {
        return;
    };
    let proposals: Vec<String> = app
        .proposals_of(&dialog.finding)
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let mut d = dialog;
    match p {
        PlanMsg::Open => {}
        PlanMsg::Select(delta) => {
            let n = proposals.len() as i64;
            d.selected = (d.selected as i64 + delta).clamp(0, (n - 1).max(0)) as usize;
            d.confirm = None;
            d.scroll = 0;
        }
        PlanMsg::Scroll(delta) => {
            d.scroll = (i64::from(d.scroll) + delta).clamp(0, i64::from(MAX_SCROLL)) as u16;
        }
        PlanMsg::Ask(decision) => d.confirm = Some(decision),
        PlanMsg::Confirm => {
            if let (Some(decision), Some(id)) = (d.confirm.take(), proposals.get(d.selected)) {
                app.decisions.insert(id.clone(), decision);
                app.say(format!("{id}: {}", decision.label()));
            }
        }
        PlanMsg::Cancel => {
            if d.confirm.take().is_none() {
                app.overlay = None;
                return;
            }
        }
    }
    app.overlay = Some(Overlay::Plan(d));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::data::{self, tests::incident};
    use crossterm::event::{KeyCode, KeyModifiers};

    fn ready() -> App {
        let books = Playbooks::built_in();
        let (mut app, cmd) = App::new("test", Theme::COLOR, false, books.clone());
        assert_eq!(cmd, Cmd::Load);
        let loaded = data::prepare(incident(), &books);
        update(&mut app, Msg::Loaded(Ok(Box::new(loaded))));
        app
    }

    fn key(app: &mut App, c: char) -> Option<Cmd> {
        update(
            app,
            Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)),
        )
    }

    fn code(app: &mut App, code: KeyCode) -> Option<Cmd> {
        update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn typed(app: &mut App, text: &str) -> Option<Cmd> {
        let mut last = None;
        for c in text.chars() {
            last = key(app, c);
        }
        last
    }

    #[test]
    fn starts_loading_and_becomes_ready() {
        let (app, _) = App::new("demo", Theme::COLOR, false, Playbooks::default());
        assert!(matches!(app.load, Load::Loading));
        assert_eq!(app.screen(), &Screen::Overview);
        let app = ready();
        assert!(app.loaded().is_some());
        assert!(!app.findings().is_empty(), "the incident yields findings");
    }

    #[test]
    fn load_failure_is_kept_for_the_screen() {
        let (mut app, _) = App::new("x", Theme::COLOR, false, Playbooks::default());
        update(&mut app, Msg::Loaded(Err("cannot read x".into())));
        assert!(matches!(&app.load, Load::Failed(e) if e == "cannot read x"));
        assert_eq!(key(&mut app, 'q'), Some(Cmd::Quit));
    }

    #[test]
    fn q_and_colon_q_quit() {
        let mut app = ready();
        assert_eq!(key(&mut app, 'q'), Some(Cmd::Quit));
        key(&mut app, ':');
        assert_eq!(
            typed(&mut app, "q"),
            None,
            "typing q in the prompt does not quit"
        );
        assert_eq!(code(&mut app, KeyCode::Enter), Some(Cmd::Quit));
    }

    #[test]
    fn command_aliases_switch_views_and_esc_walks_back() {
        let mut app = ready();
        for (alias, screen) in [
            ("ops", Screen::Operations),
            ("backends", Screen::Backends),
            ("findings", Screen::Findings),
            ("changes", Screen::Changes),
            ("be", Screen::Backends),
        ] {
            key(&mut app, ':');
            typed(&mut app, alias);
            code(&mut app, KeyCode::Enter);
            assert_eq!(app.screen(), &screen, ":{alias}");
            assert_eq!(app.stack.len(), 2, "breadcrumbs are Overview › view");
        }
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.screen(), &Screen::Overview);
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.stack.len(), 1, "Esc at the root stays");
    }

    #[test]
    fn unknown_command_says_so_and_chat_opens_the_pane() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "nope");
        code(&mut app, KeyCode::Enter);
        let m = app.message.clone().unwrap();
        assert!(
            m.error && m.text.contains("unknown command `nope`") && m.text.contains(":chat"),
            "{m:?}"
        );
        key(&mut app, ':');
        typed(&mut app, "chat");
        assert_eq!(code(&mut app, KeyCode::Enter), None);
        assert_eq!(app.screen(), &Screen::Chat);
        assert_eq!(app.stack.len(), 2, "Overview › Chat");
        assert_eq!(app.message, None);
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.screen(), &Screen::Overview);
    }

    #[test]
    fn enter_drills_from_operations_to_detail_and_asks_for_its_policy() {
        let mut app = ready();
        update(&mut app, Msg::Sort(SortMsg::By(SortColumn::Errors)));
        key(&mut app, ':');
        typed(&mut app, "ops");
        code(&mut app, KeyCode::Enter);
        assert_eq!(app.op_rows()[0].operation, "get-order", "worst first");
        let cmd = code(&mut app, KeyCode::Enter);
        let want = Screen::Operation {
            api: "orders-api".into(),
            op: "get-order".into(),
        };
        assert_eq!(app.screen(), &want);
        assert_eq!(
            cmd,
            Some(Cmd::Inspect {
                api: "orders-api".into(),
                op: "get-order".into()
            })
        );
        assert_eq!(app.stack.len(), 3);
        assert!(!app.findings_of_op("orders-api", "get-order").is_empty());
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.screen(), &Screen::Operations);
    }

    #[test]
    fn j_k_move_and_clamp() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "ops");
        code(&mut app, KeyCode::Enter);
        let n = app.list_len(0);
        assert_eq!(n, 2);
        key(&mut app, 'j');
        key(&mut app, 'j');
        key(&mut app, 'j');
        assert_eq!(app.selected(0), 1);
        code(&mut app, KeyCode::Up);
        assert_eq!(app.selected(0), 0);
        key(&mut app, 'k');
        assert_eq!(app.selected(0), 0);
        key(&mut app, 'G');
        assert_eq!(app.selected(0), 1);
    }

    #[test]
    fn tab_cycles_panes_and_text_panes_scroll() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "findings");
        code(&mut app, KeyCode::Enter);
        code(&mut app, KeyCode::Tab);
        assert_eq!(app.crumb().focus, 1);
        key(&mut app, 'j');
        key(&mut app, 'j');
        assert_eq!(app.crumb().scroll[1], 2);
        assert_eq!(app.crumb().selected[0], 0, "the list stays");
        code(&mut app, KeyCode::Tab);
        assert_eq!(app.crumb().focus, 0);
        code(&mut app, KeyCode::BackTab);
        assert_eq!(app.crumb().focus, 1);
    }

    #[test]
    fn filter_is_a_regex_and_bang_inverts() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "ops");
        code(&mut app, KeyCode::Enter);
        key(&mut app, '/');
        typed(&mut app, "get-.*");
        assert_eq!(app.op_rows().len(), 1, "live while typing");
        code(&mut app, KeyCode::Enter);
        assert_eq!(app.op_rows()[0].operation, "get-order");
        key(&mut app, '/');
        code(&mut app, KeyCode::Backspace);
        code(&mut app, KeyCode::Backspace);
        code(&mut app, KeyCode::Backspace);
        code(&mut app, KeyCode::Backspace);
        code(&mut app, KeyCode::Backspace);
        code(&mut app, KeyCode::Backspace);
        typed(&mut app, "!get");
        code(&mut app, KeyCode::Enter);
        let rows = app.op_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].operation, "list-orders");
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.op_rows().len(), 2, "Esc clears the filter first");
        assert_eq!(app.screen(), &Screen::Operations);
    }

    #[test]
    fn bad_regex_is_reported_and_the_old_filter_kept() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "ops");
        code(&mut app, KeyCode::Enter);
        key(&mut app, '/');
        typed(&mut app, "list");
        typed(&mut app, "(");
        assert!(app.message.as_ref().unwrap().error);
        assert_eq!(app.crumb().filter.as_ref().unwrap().text, "list");
    }

    #[test]
    fn sort_keys_and_command() {
        let mut app = ready();
        key(&mut app, 's');
        assert_eq!(app.sort.column, SortColumn::P95);
        key(&mut app, 'S');
        assert!(!app.sort.descending);
        key(&mut app, ':');
        typed(&mut app, "sort name");
        code(&mut app, KeyCode::Enter);
        assert_eq!(
            app.sort,
            Sort {
                column: SortColumn::Name,
                descending: false
            }
        );
        key(&mut app, ':');
        typed(&mut app, "sort colour");
        code(&mut app, KeyCode::Enter);
        assert!(app.message.unwrap().error);
    }

    #[test]
    fn time_cursor_steps_clamps_resets_and_drops_stale_answers() {
        let mut app = ready();
        let (first, last) = app.range().unwrap();
        let cmd = key(&mut app, '[');
        assert_eq!(app.cursor, Some(last - 1));
        assert_eq!(
            cmd,
            Some(Cmd::Diagnose {
                generation: 1,
                cursor: Some(last - 1)
            })
        );
        assert!(app.busy);
        key(&mut app, '{');
        assert_eq!(app.cursor, Some(last - 11));
        for _ in 0..10 {
            key(&mut app, '{');
        }
        assert_eq!(app.cursor, Some(first));
        assert_eq!(key(&mut app, '['), None, "clamped at the start");
        key(&mut app, '}');
        assert_eq!(app.cursor, Some(first + 10));
        let generation = app.generation;
        // An answer for an older window is dropped.
        let books = Playbooks::built_in();
        let stale = data::scope(
            &data::tests::incident(),
            &books,
            generation - 1,
            Some(first),
        );
        update(&mut app, Msg::Scoped(Box::new(stale)));
        assert!(app.busy);
        let fresh = data::scope(
            &data::tests::incident(),
            &books,
            generation,
            Some(first + 10),
        );
        update(&mut app, Msg::Scoped(Box::new(fresh)));
        assert!(!app.busy);
        assert_eq!(
            app.loaded().unwrap().scoped.cursor,
            Some(first + 10),
            "the fresh answer is applied"
        );
        assert_eq!(
            key(&mut app, '0'),
            Some(Cmd::Diagnose {
                generation: generation + 1,
                cursor: None
            })
        );
        assert_eq!(app.cursor, None);
    }

    #[test]
    fn time_command_jumps_to_a_minute() {
        let mut app = ready();
        let (first, _) = app.range().unwrap();
        let hhmm = crate::model::Timestamp::from_minute(first + 5).hhmm();
        key(&mut app, ':');
        typed(&mut app, &format!("time {hhmm}"));
        let cmd = code(&mut app, KeyCode::Enter);
        assert_eq!(app.cursor, Some(first + 5));
        assert!(matches!(cmd, Some(Cmd::Diagnose { .. })));
        key(&mut app, ':');
        typed(&mut app, "time 25:99");
        code(&mut app, KeyCode::Enter);
        assert!(app.message.unwrap().error);
    }

    #[test]
    fn help_opens_and_closes() {
        let mut app = ready();
        key(&mut app, '?');
        assert_eq!(app.overlay, Some(Overlay::Help { scroll: 0 }));
        key(&mut app, 'j');
        assert_eq!(app.overlay, Some(Overlay::Help { scroll: 1 }));
        assert_eq!(key(&mut app, 'q'), None, "q closes help, it does not quit");
        assert_eq!(app.overlay, None);
        key(&mut app, '?');
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.overlay, None);
    }

    fn open_plan(app: &mut App) {
        key(app, ':');
        typed(app, "findings");
        code(app, KeyCode::Enter);
        let pos = app
            .finding_rows()
            .iter()
            .position(|f| !app.proposals_of(&f.id).is_empty())
            .expect("a finding with proposals");
        app.crumb_mut().selected[0] = pos;
        key(app, 'p');
    }

    #[test]
    fn approving_needs_an_explicit_key_and_a_confirmation() {
        let mut app = ready();
        open_plan(&mut app);
        let Some(Overlay::Plan(d)) = app.overlay.clone() else {
            panic!("dialog not open: {:?}", app.message);
        };
        let first = app.proposals_of(&d.finding)[0].id.clone();
        code(&mut app, KeyCode::Enter);
        key(&mut app, 'y');
        assert!(
            app.decisions.is_empty(),
            "neither Enter nor a bare y decides"
        );
        key(&mut app, 'A');
        assert!(
            matches!(&app.overlay, Some(Overlay::Plan(d)) if d.confirm == Some(Decision::Approved))
        );
        key(&mut app, 'n');
        assert!(app.decisions.is_empty(), "n cancels the confirmation");
        assert!(app.overlay.is_some(), "and keeps the dialog");
        key(&mut app, 'A');
        key(&mut app, 'y');
        assert_eq!(app.decisions.get(&first), Some(&Decision::Approved));
        assert!(
            app.message
                .as_ref()
                .unwrap()
                .text
                .contains("execution not available")
        );
        key(&mut app, 'R');
        key(&mut app, 'y');
        assert_eq!(app.decisions.get(&first), Some(&Decision::Rejected));
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.overlay, None);
    }

    #[test]
    fn readonly_hides_the_dialog() {
        let books = Playbooks::built_in();
        let (mut app, _) = App::new("t", Theme::COLOR, true, books.clone());
        update(
            &mut app,
            Msg::Loaded(Ok(Box::new(data::prepare(incident(), &books)))),
        );
        open_plan(&mut app);
        assert_eq!(app.overlay, None);
        assert!(app.decisions.is_empty());
        assert!(app.message.unwrap().text.contains("read-only"));
    }

    #[test]
    fn overview_enter_opens_the_finding_and_findings_enter_its_subject() {
        let mut app = ready();
        let top = app.findings()[0].id.clone();
        code(&mut app, KeyCode::Enter);
        assert_eq!(app.screen(), &Screen::Findings);
        assert_eq!(app.current_finding().unwrap().id, top);
        let f = app
            .finding_rows()
            .iter()
            .position(|f| {
                f.subject.backend.as_deref() == Some("orders-app") && f.subject.operation.is_none()
            })
            .unwrap();
        app.crumb_mut().selected[0] = f;
        code(&mut app, KeyCode::Enter);
        assert_eq!(
            app.screen(),
            &Screen::Backend {
                id: "orders-app".into()
            }
        );
        code(&mut app, KeyCode::Esc);
        let policy = app
            .finding_rows()
            .iter()
            .position(|f| {
                f.subject.backend.is_none()
                    && f.subject.operation.is_none()
                    && f.subject.api.is_some()
            })
            .unwrap();
        app.crumb_mut().selected[0] = policy;
        code(&mut app, KeyCode::Enter);
        assert_eq!(
            app.screen(),
            &Screen::Findings,
            "no operation or backend: the detail pane gets focus"
        );
        assert_eq!(app.crumb().focus, 1);
    }

    #[test]
    fn backends_drill_to_backend_and_back_to_operation() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "backends");
        code(&mut app, KeyCode::Enter);
        assert!(app.list_len(0) >= 1);
        code(&mut app, KeyCode::Enter);
        assert_eq!(
            app.screen(),
            &Screen::Backend {
                id: "orders-app".into()
            }
        );
        assert_eq!(app.backend_ops("orders-app").len(), 2);
        let cmd = code(&mut app, KeyCode::Enter);
        assert!(matches!(cmd, Some(Cmd::Inspect { .. })));
        assert_eq!(app.stack.len(), 4);
    }

    #[test]
    fn changes_interleave_onsets_in_time_order() {
        let app = ready();
        let rows = app.change_rows();
        let l = app.loaded().unwrap();
        let time = |r: &ChangeRow| match *r {
            ChangeRow::Change(i) => l.snapshot.changes[i].time,
            ChangeRow::Onset(i) => l.scoped.diagnosis.findings[i].window.unwrap().start,
        };
        assert!(
            rows.windows(2).all(|w| time(&w[0]) <= time(&w[1])),
            "{rows:?}"
        );
        assert_eq!(
            rows.iter()
                .filter(|r| matches!(r, ChangeRow::Change(_)))
                .count(),
            2
        );
        assert!(rows.iter().any(|r| matches!(r, ChangeRow::Onset(_))));
    }

    #[test]
    fn keys_are_ignored_while_loading_except_quit_and_help() {
        let (mut app, _) = App::new("demo", Theme::COLOR, false, Playbooks::default());
        assert_eq!(key(&mut app, 'j'), None);
        assert_eq!(key(&mut app, '['), None);
        assert_eq!(app.cursor, None);
        key(&mut app, '?');
        assert!(app.overlay.is_some());
        code(&mut app, KeyCode::Esc);
        assert_eq!(key(&mut app, 'q'), Some(Cmd::Quit));
    }

    #[test]
    fn refresh_reloads_only_when_ready_and_keeps_the_time_cursor() {
        let books = Playbooks::built_in();
        let (mut app, _) = App::new("live", Theme::PLAIN, false, books.clone());
        assert_eq!(
            update(&mut app, Msg::Refresh),
            None,
            "no reload while the first load runs"
        );
        update(
            &mut app,
            Msg::Loaded(Ok(Box::new(data::prepare(data::tests::incident(), &books)))),
        );
        assert_eq!(update(&mut app, Msg::Refresh), Some(Cmd::Load));
        app.cursor = Some(1234);
        let cmd = update(
            &mut app,
            Msg::Loaded(Ok(Box::new(data::prepare(data::tests::incident(), &books)))),
        );
        assert_eq!(app.cursor, Some(1234));
        assert!(
            matches!(
                cmd,
                Some(Cmd::Diagnose {
                    cursor: Some(1234),
                    ..
                })
            ),
            "{cmd:?}"
        );
    }
}
