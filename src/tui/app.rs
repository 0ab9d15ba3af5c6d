//! The dashboard's state (`App`), everything that can happen to it (`Msg`)
//! and the one transition function, `update`, which returns the side effect
//! the UI loop should start (`Cmd`). Pure: no terminal, no threads, no
//! clock; background results arrive as messages. Tests drive this module
//! with messages and assert on fields.

use super::chat::{self, ChatMsg, ChatPane, ChatReply};
use super::data::{Loaded, OpRow, PolicyView, Scoped, concerns_op};
use super::keys;
use super::logs::{LogColumn, LogQuery, LogSort, LogsJob, LogsPage, LogsProgress};
use super::remedy;
use super::theme::Theme;
use crate::model::{Finding, Minute, Proposal, RouteEntry, Timestamp, Window};
use crate::playbook::Playbooks;
use crate::remediate::plan::Plan;
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
    /// Request rows of a finding, an operation or a backend (`l`).
    Logs {
        title: String,
    },
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
            Screen::Logs { title } => format!("logs of {title}"),
        }
    }

    /// Panes Tab moves between.
    pub fn panes(&self) -> usize {
        match self {
            Screen::Overview | Screen::Operations | Screen::Backends | Screen::Chat => 1,
            Screen::Operation { .. } => 3,
            Screen::Backend { .. } | Screen::Findings | Screen::Changes | Screen::Logs { .. } => 2,
        }
    }

    /// Whether j/k moves a selection (a list) or scrolls text in a pane.
    pub fn is_list(&self, pane: usize) -> bool {
        match self {
            Screen::Operation { .. } => pane != 1,
            Screen::Backend { .. } | Screen::Findings | Screen::Changes | Screen::Logs { .. } => {
                pane == 0
            }
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
            Decision::Approved => "approved (record only, not executed: folder data)",
            Decision::Rejected => "rejected",
        }
    }
}

/// An approval or rejection, as the state directory records it (the
/// clock and the user are added where it is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRecord {
    pub proposal: String,
    pub finding: String,
    pub title: String,
    pub decision: Decision,
    /// The data it was decided on (`demo` or the folder).
    pub source: String,
}

/// The proposal dialog of one finding.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanDialog {
    pub finding: String,
    /// Index into the finding's proposals.
    pub selected: usize,
    /// A decision waiting for `y`.
    pub confirm: Option<Decision>,
    pub scroll: u16,
    /// Execution against the live instance, once approved (`None` on
    /// folder data, and before `A`).
    pub run: Option<Run>,
}

/// Where execution of the selected proposal stands (live instances only).
#[derive(Clone, Debug, PartialEq)]
pub enum Run {
    /// Reading the live state to plan (`undo_of`: planning that undo).
    Planning { undo_of: Option<String> },
    /// The exact plan, waiting for approval: `y` for low and medium risk,
    /// the proposal id typed and Enter for high risk.
    Review {
        plan: Box<Plan>,
        typed: String,
        undo_of: Option<String>,
    },
    /// Executing: progress lines as they come.
    Running { lines: Vec<String> },
    /// Ended. `applied`: the apply's audit id and plan (verify and undo
    /// are offered); `verify`: the verification's sentence once known.
    Done {
        ok: bool,
        lines: Vec<String>,
        applied: Option<(String, Box<Plan>)>,
        verify: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
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
    /// The instances of a live run that `:ctx` switches between (k9s
    /// contexts); empty or one: nothing to switch.
    pub contexts: Vec<String>,
    /// The one shown, shared with the loader (it reads that instance).
    pub context: std::sync::Arc<std::sync::atomic::AtomicUsize>,
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
    /// `:` commands submitted while the data was loading, run in order once
    /// it is ready (typing ahead is never lost).
    pub queued: Vec<String>,
    pub sort: Sort,
    /// Proposal id → what the user decided.
    pub decisions: BTreeMap<String, Decision>,
    /// The live APIM service the approve key executes against (`None`:
    /// folder data or the demo, where a decision is recorded only).
    pub live: Option<String>,
    /// A dialog closed (Esc) while its remediation runs: its answers land
    /// here, and `p` on the finding reopens it.
    pub hidden_run: Option<PlanDialog>,
    /// An apply to verify once the instance has been re-read.
    pub verify_after_load: Option<(String, Box<Plan>)>,
    /// The effective policy of the operation on screen, once computed.
    pub policy: Option<PolicyView>,
    pub playbooks: Playbooks,
    /// The chat pane: transcript, input line, pending question.
    pub chat: ChatPane,
    /// The rows of the logs view (the last one opened).
    pub logs: Option<LogsView>,
    /// Lines run on the `:` line, oldest first (Up and Down recall them).
    pub history: Vec<String>,
    /// Where Up/Down is in `history` while the `:` line is open.
    pub history_at: Option<usize>,
}

/// The logs view: a query, how its scan stands, and the rows read back
/// around the selection. The rows themselves stay in the files.
#[derive(Clone, Debug, PartialEq)]
pub struct LogsView {
    pub id: u64,
    pub query: LogQuery,
    pub sort: LogSort,
    pub progress: LogsProgress,
    /// Index of `page[0]` in the sorted rows.
    pub page_start: usize,
    pub page: Vec<Result<crate::model::RequestRecord, String>>,
    /// The page start last asked for and not yet answered.
    pub requested: Option<usize>,
}

impl LogsView {
    /// Row `i` of the sorted rows, if it has been read.
    pub fn row(&self, i: usize) -> Option<&Result<crate::model::RequestRecord, String>> {
        i.checked_sub(self.page_start)
            .and_then(|k| self.page.get(k))
    }

    pub fn len(&self) -> usize {
        usize::try_from(self.progress.matched).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.progress.matched == 0
    }
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
    /// `l`: open the request rows of what is selected.
    OpenLogs,
    /// How the logs thread's scan stands.
    LogsProgress(LogsProgress),
    /// Rows read back for the logs view.
    LogsPage(Box<LogsPage>),
    /// `y` (the id) or `Y` (the file:line) of what is selected.
    Copy {
        location: bool,
    },
    /// A file written by `:export` (what was written, or why not).
    Written(Result<String, String>),
    /// The remediation thread: a plan, progress, an outcome, a verification.
    Remedy(remedy::Event),
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
    /// Tab: complete the word (view names, sort columns, ids).
    Complete,
    /// Up / Down: earlier / later lines run.
    Older,
    Newer,
}

/// Lines kept in the `:` history.
const HISTORY: usize = 100;

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
    /// A character of the proposal id typed to approve a high-risk plan.
    Input(char),
    Erase,
    /// `U` after an apply: plan its undo.
    Undo,
    /// `v` after an apply: verify again on the dashboard's current data.
    Verify,
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
        /// The time cursor: the policy in force then.
        cursor: Option<Minute>,
    },
    /// Answer a chat line (a question or slash command) on the chat thread,
    /// about the time cursor's window (`None`: all data).
    Chat(String, Option<Window>),
    /// A job for the logs thread.
    Logs(LogsJob),
    /// Put text on the clipboard (OSC 52).
    Copy(String),
    /// Write a file (`:export`); the result comes back as `Msg::Written`.
    Write {
        path: String,
        text: String,
    },
    /// Record an approval or rejection in the state directory.
    Decide(DecisionRecord),
    /// A job for the remediation thread (live instances only).
    Remedy(remedy::Job),
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
            contexts: Vec::new(),
            context: Default::default(),
            load: Load::Loading,
            busy: false,
            cursor: None,
            generation: 0,
            stack: vec![Crumb::new(Screen::Overview)],
            prompt: None,
            overlay: None,
            message: None,
            queued: Vec::new(),
            sort: Sort {
                column: SortColumn::Errors,
                descending: true,
            },
            decisions: BTreeMap::new(),
            live: None,
            hidden_run: None,
            verify_after_load: None,
            policy: None,
            playbooks,
            chat: ChatPane {
                engine: "offline".into(),
                ..ChatPane::default()
            },
            logs: None,
            history: Vec::new(),
            history_at: None,
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

    /// The window the time cursor selects (the data's first minute to the
    /// cursor's), which chat answers are about; `None` without a cursor.
    pub fn cursor_window(&self) -> Option<Window> {
        let c = self.cursor?;
        let (first, _) = self.range()?;
        Some(Window {
            start: Timestamp::from_minute(first.min(c)),
            end: Timestamp::from_minute(c + 1),
        })
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

    /// One row per backend, filtered (`:backends`).
    pub fn backend_rows(&self) -> Vec<&super::data::BackendRow> {
        self.loaded()
            .map(|l| {
                l.scoped
                    .backends
                    .iter()
                    .filter(|b| {
                        self.keeps(&format!(
                            "{} {} {} {} {:?}",
                            b.id,
                            b.url.as_deref().unwrap_or(""),
                            b.seen_as.join(" "),
                            b.operations.join(" "),
                            b.health
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
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

    /// Findings as the findings list (and the overview) show them,
    /// filtered, grouped by story (the story's order, cause first), then
    /// the findings no story explains, most urgent first.
    pub fn finding_rows(&self) -> Vec<&Finding> {
        let mut rows: Vec<(usize, usize, &Finding)> = self
            .findings()
            .iter()
            .enumerate()
            .filter(|(_, f)| self.keeps(&finding_text(f)))
            .map(|(i, f)| {
                let (story, at) = self.story_of(&f.id).unwrap_or((usize::MAX, i));
                (story, at, f)
            })
            .collect();
        rows.sort_by_key(|(story, at, _)| (*story, *at));
        rows.into_iter().map(|(_, _, f)| f).collect()
    }

    /// The story explaining a finding, and its place in the story.
    pub fn story_of(&self, id: &str) -> Option<(usize, usize)> {
        let l = self.loaded()?;
        l.scoped
            .diagnosis
            .stories
            .iter()
            .enumerate()
            .find_map(|(s, story)| story.findings.iter().position(|f| f == id).map(|p| (s, p)))
    }

    /// Requests behind a finding of the current window.
    pub fn request_count(&self, id: &str) -> Option<super::data::RequestCount> {
        let l = self.loaded()?;
        let i = l
            .scoped
            .diagnosis
            .findings
            .iter()
            .position(|f| f.id == id)?;
        l.scoped.counts.get(i).copied()
    }

    /// When a finding happened: its timeline, as the analysis judged it.
    pub fn finding_time(&self, f: &Finding) -> Option<super::data::FindingTime> {
        super::data::finding_time(f)
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
                    .filter(|e| e.calls(id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every (API, operation) known: configured, or seen in traffic.
    pub fn operation_ids(&self) -> Vec<(String, String)> {
        let Some(l) = self.loaded() else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = l
            .snapshot
            .operations
            .iter()
            .map(|o| (o.api_id.clone(), o.id.clone()))
            .chain(
                l.scoped
                    .ops
                    .iter()
                    .map(|o| (o.api.clone(), o.operation.clone())),
            )
            .filter(|(a, o)| !a.is_empty() && !o.is_empty())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every backend id known: entities, and backends seen in traffic.
    pub fn backend_ids(&self) -> Vec<String> {
        let Some(l) = self.loaded() else {
            return Vec::new();
        };
        let mut out: Vec<String> = l
            .snapshot
            .backends
            .iter()
            .map(|b| b.id.clone())
            .chain(l.scoped.ops.iter().flat_map(|o| o.backends.iter().cloned()))
            .filter(|b| !b.is_empty())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Rows in a list pane of the current screen.
    pub fn list_len(&self, pane: usize) -> usize {
        match (self.screen(), pane) {
            (Screen::Overview | Screen::Findings, 0) => self.finding_rows().len(),
            (Screen::Operations, 0) => self.op_rows().len(),
            (Screen::Backends, 0) => self.backend_rows().len(),
            (Screen::Changes, 0) => self.change_rows().len(),
            (Screen::Operation { api, op }, 0) => self.findings_of_op(api, op).len(),
            (Screen::Operation { api, op }, 2) => self.op_backends(api, op).len(),
            (Screen::Backend { id }, 0) => self.backend_ops(id).len(),
            (Screen::Logs { .. }, 0) => self.logs.as_ref().map_or(0, LogsView::len),
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
                let have = self.policy.as_ref().is_some_and(|p| {
                    &p.api == api && &p.operation == op && p.cursor == self.cursor
                });
                (!have).then(|| Cmd::Inspect {
                    api: api.clone(),
                    op: op.clone(),
                    cursor: self.cursor,
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
    let backends: Vec<&str> = e.routes().map(|r| r.backend.as_str()).collect();
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
            let mut cmd = keep.and_then(|cursor| set_cursor(app, Some(cursor)));
            for line in std::mem::take(&mut app.queued) {
                if let Some(c) = command(app, &line) {
                    cmd = Some(c);
                }
            }
            if cmd.is_none()
                && let Some((apply, plan)) = app.verify_after_load.take()
                && let Some(l) = app.loaded()
            {
                cmd = Some(Cmd::Remedy(remedy::Job::Verify {
                    apply,
                    plan,
                    snapshot: l.snapshot.clone(),
                }));
            }
            cmd
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
                // The policy pane follows the cursor: the version in force then.
                return app.inspect_cmd(&app.screen().clone());
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
        Msg::Nav(nav) => {
            let cmd = navigate(app, nav);
            cmd.or_else(|| logs_page_cmd(app))
        }
        Msg::Time(t) => time(app, t),
        Msg::Sort(s) => sort(app, s),
        Msg::Prompt(p) => prompt(app, p),
        Msg::Plan(p) => plan(app, p),
        Msg::Chat(m) => chat::update(app, m),
        Msg::ChatDelta(text) => {
            app.chat.stream(&text);
            None
        }
        Msg::OpenLogs => open_logs(app),
        Msg::LogsProgress(p) => {
            let v = app.logs.as_mut().filter(|v| v.id == p.id)?;
            v.progress = p;
            logs_page_cmd(app)
        }
        Msg::LogsPage(page) => {
            let v = app.logs.as_mut().filter(|v| v.id == page.id)?;
            if v.requested == Some(page.start) {
                v.requested = None;
            }
            v.page_start = page.start;
            v.page = page.rows;
            logs_page_cmd(app)
        }
        Msg::Copy { location } => copy(app, location),
        Msg::Remedy(e) => remedy_event(app, e),
        Msg::Written(Ok(text)) => {
            app.say(text);
            None
        }
        Msg::Written(Err(text)) => {
            app.complain(text);
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
                return logs_requery(app);
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
        (Screen::Backends, 0) => Screen::Backend {
            id: app.backend_rows().get(sel)?.id.clone(),
        },
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
        (Screen::Changes, 0) | (Screen::Logs { .. }, 0) => {
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

fn sort(app: &mut App, s: SortMsg) -> Option<Cmd> {
    if matches!(app.screen(), Screen::Logs { .. }) {
        let v = app.logs.as_ref()?;
        let LogSort { column, descending } = v.sort;
        let sort = match s {
            SortMsg::Reverse => LogSort {
                column,
                descending: !descending,
            },
            SortMsg::Next | SortMsg::By(_) => {
                let i = LogColumn::ALL
                    .iter()
                    .position(|c| *c == column)
                    .unwrap_or(0);
                let next = LogColumn::ALL[(i + 1) % LogColumn::ALL.len()];
                LogSort {
                    column: next,
                    descending: next != LogColumn::Time,
                }
            }
        };
        return logs_sort(app, sort);
    }
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
    None
}

/// Reorders the logs view's rows (in the logs thread: no new scan).
fn logs_sort(app: &mut App, sort: LogSort) -> Option<Cmd> {
    let v = app.logs.as_mut()?;
    v.sort = sort;
    v.page.clear();
    v.requested = None;
    let id = v.id;
    app.crumb_mut().selected[0] = 0;
    app.say(format!(
        "rows sorted by {} {}",
        sort.column.name(),
        if sort.descending { "↓" } else { "↑" }
    ));
    Some(Cmd::Logs(LogsJob::Sort { id, sort }))
}

/// Rows around the selection the logs view shows.
const LOGS_PAGE: usize = super::logs::FIRST_PAGE;

/// Asks for the rows around the logs view's selection when they are not
/// read yet (and not already asked for).
pub(super) fn logs_page_cmd(app: &mut App) -> Option<Cmd> {
    if !matches!(app.screen(), Screen::Logs { .. }) {
        return None;
    }
    let sel = app.selected(0);
    let v = app.logs.as_mut()?;
    let len = v.len();
    if len == 0 {
        return None;
    }
    let lo = sel.saturating_sub(60);
    let hi = (sel + 60).min(len);
    let have_end = v.page_start + v.page.len();
    if v.page_start <= lo && have_end >= hi {
        return None;
    }
    let start = sel.saturating_sub(LOGS_PAGE / 3);
    if v.requested == Some(start) {
        return None;
    }
    v.requested = Some(start);
    Some(Cmd::Logs(LogsJob::Page {
        id: v.id,
        start,
        len: LOGS_PAGE,
    }))
}

/// Starts a scan for `query` and shows the logs view.
fn start_logs(app: &mut App, query: LogQuery) -> Option<Cmd> {
    let id = app.logs.as_ref().map_or(0, |v| v.id) + 1;
    let sort = app.logs.as_ref().map(|v| v.sort).unwrap_or_default();
    let title = query.title.clone();
    app.logs = Some(LogsView {
        id,
        query: query.clone(),
        sort,
        progress: LogsProgress {
            id,
            ..LogsProgress::default()
        },
        page_start: 0,
        page: Vec::new(),
        requested: Some(0),
    });
    let screen = Screen::Logs { title };
    if matches!(app.screen(), Screen::Logs { .. }) {
        let c = app.crumb_mut();
        c.screen = screen;
        c.selected = [0; 3];
    } else {
        app.stack.push(Crumb::new(screen));
    }
    Some(Cmd::Logs(LogsJob::Query { id, query, sort }))
}

/// The logs view's query again with the crumb's filter (after `/` or Esc).
fn logs_requery(app: &mut App) -> Option<Cmd> {
    if !matches!(app.screen(), Screen::Logs { .. }) {
        return None;
    }
    let mut query = app.logs.as_ref()?.query.clone();
    query.filter = app.crumb().filter.as_ref().map(|f| f.text.clone());
    let sort = app.logs.as_ref()?.sort;
    let cmd = start_logs(app, query);
    if let Some(v) = app.logs.as_mut() {
        v.sort = sort;
    }
    cmd
}

/// The window rows are listed for: a finding's window, else everything
/// up to the time cursor (each clipped to the cursor).
fn logs_window(app: &App, window: Option<Window>) -> Option<Window> {
    let end = app.cursor.map(|c| Timestamp::from_minute(c + 1));
    match (window, end) {
        (Some(w), Some(e)) => Some(Window {
            start: w.start,
            end: w.end.min(e),
        }),
        (Some(w), None) => Some(w),
        (None, Some(e)) => Some(Window {
            start: Timestamp(i64::MIN / 2),
            end: e,
        }),
        (None, None) => None,
    }
}

/// A backend's query: its id, and the host of its entity's URL (and any
/// other name traffic used for it).
fn backend_query(app: &App, id: &str) -> LogQuery {
    let mut hosts: Vec<String> = app
        .loaded()
        .and_then(|l| l.snapshot.backend(id).and_then(|b| b.url.clone()))
        .map(|u| vec![crate::model::url_host(&u).to_string()])
        .unwrap_or_default();
    if let Some(row) = app.loaded().and_then(|l| {
        l.scoped
            .backends
            .iter()
            .find(|b| b.id.eq_ignore_ascii_case(id))
    }) {
        for h in &row.seen_as {
            if !hosts.iter().any(|x| x.eq_ignore_ascii_case(h)) {
                hosts.push(h.clone());
            }
        }
    }
    hosts.retain(|h| !h.is_empty());
    LogQuery {
        title: format!("backend {id}"),
        backend: Some(id.to_string()),
        hosts,
        window: logs_window(app, None),
        ..LogQuery::default()
    }
}

/// `l`: the rows of the selected finding, operation or backend.
fn open_logs(app: &mut App) -> Option<Cmd> {
    app.loaded()?;
    let focus = app.crumb().focus;
    let query = match app.screen().clone() {
        Screen::Overview | Screen::Findings if focus == 0 => {
            let f = app.current_finding()?.clone();
            let mut q = match (&f.subject.backend, &f.subject.operation) {
                (Some(b), None) => backend_query(app, b),
                _ => LogQuery::default(),
            };
            q.title = format!("finding {}", f.id);
            if f.subject.operation.is_some() || f.subject.backend.is_none() {
                q.api = f.subject.api.clone();
                q.operation = f.subject.operation.clone();
            }
            q.window = logs_window(app, f.window);
            q
        }
        Screen::Operation { api, op } => LogQuery {
            title: format!("{api}/{op}"),
            api: Some(api),
            operation: Some(op),
            window: logs_window(app, None),
            ..LogQuery::default()
        },
        Screen::Operations => {
            let r = app.op_rows().get(app.selected(0)).copied()?;
            LogQuery {
                title: r.label(),
                api: Some(r.api.clone()),
                operation: Some(r.operation.clone()),
                window: logs_window(app, None),
                ..LogQuery::default()
            }
        }
        Screen::Backends => {
            let id = app.backend_rows().get(app.selected(0))?.id.clone();
            backend_query(app, &id)
        }
        Screen::Backend { id } => backend_query(app, &id),
        _ => {
            app.say("select a finding, an operation or a backend, then l lists its rows");
            return None;
        }
    };
    if query.api.is_none() && query.operation.is_none() && query.backend.is_none() {
        app.say("this finding is about configuration, not requests: no rows to list");
        return None;
    }
    start_logs(app, query)
}

/// `y` / `Y`: copies the selected thing's id or its file:line.
fn copy(app: &mut App, location: bool) -> Option<Cmd> {
    let text = match app.screen().clone() {
        Screen::Logs { .. } => {
            let v = app.logs.as_ref()?;
            match v.row(app.selected(0)) {
                Some(Ok(r)) if location => Some(r.origin.to_string()),
                Some(Ok(r)) => r
                    .correlation_id
                    .clone()
                    .or_else(|| Some(r.origin.to_string())),
                _ => None,
            }
        }
        Screen::Overview | Screen::Findings | Screen::Operation { .. } => {
            app.current_finding().and_then(|f| {
                if location {
                    f.location.as_ref().map(|l| l.to_string()).or_else(|| {
                        f.evidence
                            .iter()
                            .flat_map(|e| &e.records)
                            .map(|r| r.origin.to_string())
                            .next()
                    })
                } else {
                    Some(f.id.clone())
                }
            })
        }
        Screen::Backend { id } if !location => Some(id),
        _ => None,
    };
    let Some(text) = text else {
        app.say(if location {
            "nothing with a file:line is selected"
        } else {
            "nothing to copy here: select a finding or a row"
        });
        return None;
    };
    app.say(format!(
        "copied {text} (OSC 52; if the terminal ignores it, select it here)"
    ));
    Some(Cmd::Copy(text))
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
            app.history_at = None;
            app.message = None;
            if app.prompt.take()?.kind == PromptKind::Filter {
                app.crumb_mut().filter = None;
                let filtered = app.logs.as_ref().is_some_and(|v| v.query.filter.is_some());
                if filtered {
                    return logs_requery(app);
                }
            }
            None
        }
        PromptMsg::Submit => {
            let p = app.prompt.take()?;
            app.history_at = None;
            match p.kind {
                PromptKind::Filter => {
                    live_filter_text(app, &p.text);
                    logs_requery(app)
                }
                PromptKind::Command => {
                    let line = p.text.trim().to_string();
                    if !line.is_empty() && app.history.last() != Some(&line) {
                        app.history.push(line.clone());
                        if app.history.len() > HISTORY {
                            app.history.remove(0);
                        }
                    }
                    // While loading, quitting needs no data; anything else
                    // waits for it (typing ahead is never lost).
                    let quit = matches!(line.as_str(), "q" | "q!" | "quit" | "exit");
                    if matches!(app.load, Load::Ready(_)) || quit {
                        return command(app, &line);
                    }
                    if !line.is_empty() {
                        app.message = Some(Message {
                            text: format!(":{line} runs when the data is loaded"),
                            error: false,
                        });
                        app.queued.push(line);
                    }
                    None
                }
            }
        }
        PromptMsg::Complete => {
            let p = app
                .prompt
                .as_ref()
                .filter(|p| p.kind == PromptKind::Command)?;
            let (text, options) = complete(app, &p.text);
            if let Some(p) = app.prompt.as_mut() {
                p.text = text;
            }
            match options.len() {
                0 => app.complain("no completion"),
                1 => app.message = None,
                _ => app.say(options.join("  ")),
            }
            None
        }
        PromptMsg::Older | PromptMsg::Newer => {
            app.prompt
                .as_ref()
                .filter(|p| p.kind == PromptKind::Command)?;
            let n = app.history.len();
            if n == 0 {
                return None;
            }
            let at = match (p == PromptMsg::Older, app.history_at) {
                (true, None) => Some(n - 1),
                (true, Some(i)) => Some(i.saturating_sub(1)),
                (false, Some(i)) if i + 1 < n => Some(i + 1),
                (false, _) => None,
            };
            app.history_at = at;
            let text = at
                .and_then(|i| app.history.get(i).cloned())
                .unwrap_or_default();
            if let Some(p) = app.prompt.as_mut() {
                p.text = text;
            }
            None
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
        "ops" | "op" | "operations" | "operation" if !arg.is_empty() => {
            let (api, op) = find_operation(app, &arg)?;
            app.go(Screen::Operations);
            app.push(Screen::Operation { api, op })
        }
        "ops" | "op" | "operations" | "operation" => app.go(Screen::Operations),
        "be" | "backends" | "backend" | "map" if !arg.is_empty() => {
            let Some(id) = app
                .backend_ids()
                .into_iter()
                .find(|b| b.eq_ignore_ascii_case(&arg))
            else {
                app.complain(format!("no backend `{arg}` (Tab completes backend ids)"));
                return None;
            };
            app.go(Screen::Backends);
            app.push(Screen::Backend { id })
        }
        "be" | "backends" | "backend" | "map" => app.go(Screen::Backends),
        "fi" | "findings" | "finding" => app.go(Screen::Findings),
        "ch" | "changes" | "change" | "history" => app.go(Screen::Changes),
        "logs" | "log" | "l" if !arg.is_empty() => {
            let (api, op) = find_operation(app, &arg)?;
            let query = LogQuery {
                title: format!("{api}/{op}"),
                api: Some(api),
                operation: Some(op),
                window: logs_window(app, None),
                ..LogQuery::default()
            };
            start_logs(app, query)
        }
        "logs" | "log" | "l" => update(app, Msg::OpenLogs),
        "help" | "h" => update(app, Msg::Help),
        "chat" | "ask" | "a" => chat::update(app, ChatMsg::Open),
        "sort" if matches!(app.screen(), Screen::Logs { .. }) => match LogColumn::parse(&arg) {
            Some(column) => logs_sort(
                app,
                LogSort {
                    column,
                    descending: column != LogColumn::Time,
                },
            ),
            None => {
                let names: Vec<&str> = LogColumn::ALL.iter().map(|c| c.name()).collect();
                app.complain(format!(
                    "unknown sort column `{arg}` for rows; use one of {}",
                    names.join(", ")
                ));
                None
            }
        },
        "sort" => match SortColumn::parse(&arg) {
            Some(c) => sort(app, SortMsg::By(c)),
            None => {
                let names: Vec<&str> = SortColumn::ALL.iter().map(|c| c.name()).collect();
                app.complain(format!(
                    "unknown sort column `{arg}`; use one of {}",
                    names.join(", ")
                ));
                None
            }
        },
        "time" | "t" => time_command(app, &arg),
        "export" | "w" | "write" => export_command(app, &arg),
        "ctx" | "context" | "contexts" => ctx_command(app, &arg),
        other => {
            app.complain(format!(
                "unknown command `{other}`; try :ops :backends :findings :changes :logs :chat :time :sort :export :ctx :q (Tab completes, ? lists every key)"
            ));
            None
        }
    }
}

/// `:ctx [NAME]`: the instances of a live run, like k9s contexts. Without
/// a name it lists them (the current one starred); with one (exact, else
/// the one name containing it) it switches: back to the overview, all data,
/// and that instance is read.
fn ctx_command(app: &mut App, arg: &str) -> Option<Cmd> {
    use std::sync::atomic::Ordering;
    if app.contexts.len() < 2 {
        app.complain(
            "one instance only: read several (--subscription, --all, or [[instances]] in --config) to switch with :ctx",
        );
        return None;
    }
    let current = app.context.load(Ordering::Relaxed);
    if arg.is_empty() {
        let list: Vec<String> = app
            .contexts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == current {
                    format!("*{c}")
                } else {
                    c.clone()
                }
            })
            .collect();
        app.message = Some(Message {
            text: format!("contexts: {} (:ctx NAME switches)", list.join("  ")),
            error: false,
        });
        return None;
    }
    let want = arg.trim().to_ascii_lowercase();
    let exact = app
        .contexts
        .iter()
        .position(|c| c.to_ascii_lowercase() == want);
    let partial: Vec<usize> = (0..app.contexts.len())
        .filter(|&i| app.contexts[i].to_ascii_lowercase().contains(&want))
        .collect();
    let Some(i) = exact.or(match partial.as_slice() {
        [one] => Some(*one),
        _ => None,
    }) else {
        app.complain(if partial.is_empty() {
            format!("no context `{arg}` (:ctx lists them, Tab completes)")
        } else {
            format!("`{arg}` names several contexts; Tab completes")
        });
        return None;
    };
    if i == current {
        return None;
    }
    app.context.store(i, Ordering::Relaxed);
    app.source = app.contexts[i].clone();
    app.load = Load::Loading;
    app.cursor = None;
    app.policy = None;
    app.stack.truncate(1);
    Some(Cmd::Load)
}

/// `:export md|json FILE`: the logs view's rows (all of them, written by
/// the logs thread), else the current view or, from the findings and the
/// overview, the incident ticket.
fn export_command(app: &mut App, arg: &str) -> Option<Cmd> {
    let mut parts = arg.splitn(2, char::is_whitespace);
    let format = parts.next().unwrap_or("").to_ascii_lowercase();
    let path = parts.next().unwrap_or("").trim().to_string();
    let markdown = match format.as_str() {
        "md" | "markdown" => true,
        "json" => false,
        _ => {
            app.complain("use :export md FILE or :export json FILE");
            return None;
        }
    };
    if path.is_empty() {
        app.complain(format!("name the file: :export {format} FILE"));
        return None;
    }
    if matches!(app.screen(), Screen::Logs { .. }) {
        let id = app.logs.as_ref()?.id;
        app.say(format!("writing the rows to {path} …"));
        return Some(Cmd::Logs(LogsJob::Export { id, path, markdown }));
    }
    let text = super::export::view(app, markdown);
    Some(Cmd::Write { path, text })
}

/// An operation named `api/op` (or a unique `op`), case-insensitively.
fn find_operation(app: &mut App, arg: &str) -> Option<(String, String)> {
    let ops = app.operation_ids();
    let want = arg.trim();
    let found: Vec<&(String, String)> = ops
        .iter()
        .filter(|(a, o)| {
            format!("{a}/{o}").eq_ignore_ascii_case(want) || o.eq_ignore_ascii_case(want)
        })
        .collect();
    match found.as_slice() {
        [one] => Some((*one).clone()),
        [] => {
            app.complain(format!(
                "no operation `{want}` (Tab completes API/operation ids)"
            ));
            None
        }
        _ => {
            app.complain(format!(
                "`{want}` names several operations; give API/operation"
            ));
            None
        }
    }
}

/// Every command word, for completion.
const COMMANDS: &[&str] = &[
    "overview", "ops", "backends", "findings", "changes", "logs", "chat", "sort", "time", "export",
    "ctx", "help", "quit",
];

/// Tab on the `:` line: the text completed as far as it is unambiguous,
/// and the candidates (empty: nothing fits).
pub fn complete(app: &App, text: &str) -> (String, Vec<String>) {
    let (head, word) = match text.rfind(' ') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", text),
    };
    let first = head
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let candidates: Vec<String> = if head.is_empty() {
        COMMANDS.iter().map(|c| c.to_string()).collect()
    } else {
        match first.as_str() {
            "sort" if matches!(app.screen(), Screen::Logs { .. }) => LogColumn::ALL
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
            "sort" => SortColumn::ALL
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
            "export" | "w" | "write" if head.split_whitespace().count() == 1 => {
                vec!["md".into(), "json".into()]
            }
            "time" | "t" => ["all", "-1h", "-30m", "yesterday", "today"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "ops" | "op" | "operation" | "operations" | "logs" | "log" | "l" => app
                .operation_ids()
                .into_iter()
                .map(|(a, o)| format!("{a}/{o}"))
                .collect(),
            "be" | "backend" | "backends" | "map" => app.backend_ids(),
            "ctx" | "context" | "contexts" => app.contexts.clone(),
            _ => Vec::new(),
        }
    };
    let lower = word.to_ascii_lowercase();
    let mut fits: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.to_ascii_lowercase().starts_with(&lower))
        .collect();
    fits.sort();
    fits.dedup();
    let completed = match fits.as_slice() {
        [] => word.to_string(),
        [one] => format!("{one} "),
        many => {
            let mut prefix = many[0].clone();
            for c in &many[1..] {
                while !c
                    .to_ascii_lowercase()
                    .starts_with(&prefix.to_ascii_lowercase())
                {
                    prefix.pop();
                }
            }
            if prefix.len() < word.len() {
                word.to_string()
            } else {
                prefix
            }
        }
    };
    (format!("{head}{completed}"), fits)
}

/// `:time HH:MM` puts the cursor on that minute; `:time all` resets.
fn time_command(app: &mut App, arg: &str) -> Option<Cmd> {
    let Some((first, last)) = app.range() else {
        app.complain("no time-stamped data to step through");
        return None;
    };
    let arg = arg.trim();
    if arg.is_empty() || arg == "all" || arg == "reset" {
        return if app.cursor.is_some() {
            set_cursor(app, None)
        } else {
            None
        };
    }
    match parse_time(arg, first, last, app.cursor) {
        Ok(m) if m >= last => {
            if app.cursor.is_some() {
                set_cursor(app, None)
            } else {
                None
            }
        }
        Ok(m) => set_cursor(app, Some(m)),
        Err(e) => {
            app.complain(e);
            None
        }
    }
}

/// `HH:MM[:SS]` → minute of the day.
fn clock_minute(s: &str) -> Option<i64> {
    let mut parts = s.trim().split(':');
    let h: i64 = parts.next()?.trim().parse().ok()?;
    let m: i64 = parts.next()?.trim().parse().ok()?;
    if let Some(sec) = parts.next() {
        let sec: i64 = sec.trim().parse().ok()?;
        if !(0..60).contains(&sec) {
            return None;
        }
    }
    if parts.next().is_some() || !(0..24).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Some(h * 60 + m)
}

/// `-2h`, `+30m`, `-1d`, `-90s` → minutes (rounded toward the past).
fn relative_minutes(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => return None,
    };
    let split = rest.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = rest.split_at(split);
    let n: i64 = num.parse().ok()?;
    let minutes = match unit.trim() {
        "s" | "sec" => n.div_euclid(60),
        "m" | "min" => n,
        "h" | "hr" => n.checked_mul(60)?,
        "d" | "day" | "days" => n.checked_mul(1440)?,
        "w" => n.checked_mul(7 * 1440)?,
        _ => return None,
    };
    Some(sign * minutes)
}

/// The minute `:time ARG` means, in data running `first..=last` (UTC):
/// a full timestamp (`2024-05-18T06:40:00Z`), a date and time
/// (`2024-05-18 06:40`), a time on the cursor's day (`06:40`; the day
/// before when that is past the data), `today`/`yesterday` with or
/// without a time (days of the data's end), or a step from the cursor
/// (`-2h`, `+30m`, `-1d`). Outside the data is an error saying its range.
pub fn parse_time(
    arg: &str,
    first: Minute,
    last: Minute,
    cursor: Option<Minute>,
) -> Result<Minute, String> {
    let anchor = cursor.unwrap_or(last);
    let text = arg.trim();
    let lower = text.to_ascii_lowercase();
    let day_of = |m: Minute| m.div_euclid(1440) * 1440;
    let minute = if let Some(d) = relative_minutes(&lower) {
        Some(anchor.saturating_add(d))
    } else if lower == "now" || lower == "end" {
        Some(last)
    } else if lower == "start" {
        Some(first)
    } else if let Some(t) = crate::model::parse_timestamp(text) {
        Some(t.minute())
    } else if let Some(t) = crate::model::parse_timestamp(&format!("{text}:00")) {
        Some(t.minute())
    } else if let Some(t) =
        crate::model::parse_timestamp(&format!("{text}T00:00:00Z")).filter(|_| text.len() == 10)
    {
        Some(t.minute())
    } else if let Some(rest) = lower
        .strip_prefix("yesterday")
        .or_else(|| lower.strip_prefix("today"))
    {
        let back = if lower.starts_with("yesterday") {
            1440
        } else {
            0
        };
        let day = day_of(last) - back;
        match rest.trim() {
            "" if back > 0 => Some(anchor - 1440),
            "" => Some(day),
            clock => clock_minute(clock).map(|c| day + c),
        }
    } else if let Some(c) = clock_minute(&lower) {
        let on_day = day_of(anchor) + c;
        Some(if on_day > last { on_day - 1440 } else { on_day })
    } else {
        None
    };
    let Some(m) = minute else {
        return Err(format!(
            "`{arg}` is not a time; use HH:MM, 2024-05-18 06:40, a full timestamp, -2h, +30m, yesterday 15:30 (UTC) or all"
        ));
    };
    if m < first || m > last {
        let show = |m: Minute| {
            let t = Timestamp::from_minute(m).to_rfc3339();
            format!(
                "{} {}",
                t.get(..10).unwrap_or(""),
                t.get(11..16).unwrap_or("")
            )
        };
        return Err(format!(
            "{} UTC is outside the data ({} – {} UTC)",
            show(m.clamp(first - 100_000_000, last + 100_000_000)),
            show(first),
            show(last)
        ));
    }
    Ok(m)
}

fn plan(app: &mut App, p: PlanMsg) -> Option<Cmd> {
    if p == PlanMsg::Open {
        if app.readonly {
            app.say("read-only: actions are hidden");
            return None;
        }
        if let Some(d) = app.hidden_run.take() {
            // The remediation still running (or ended) in the background.
            app.overlay = Some(Overlay::Plan(d));
            return None;
        }
        let Some(f) = app.current_finding() else {
            app.say("select a finding first (:findings)");
            return None;
        };
        let id = f.id.clone();
        if app.proposals_of(&id).is_empty() {
            app.say("no remediation is proposed for this finding");
            return None;
        }
        app.overlay = Some(Overlay::Plan(PlanDialog {
            finding: id,
            selected: 0,
            confirm: None,
            scroll: 0,
            run: None,
        }));
        return None;
    }
    let Some(Overlay::Plan(dialog)) = app.overlay.clone() else {
        return None;
    };
    if dialog.run.is_some() {
        return run_step(app, dialog, p);
    }
    let proposals: Vec<String> = app
        .proposals_of(&dialog.finding)
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let mut d = dialog;
    let mut cmd = None;
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
        PlanMsg::Ask(Decision::Approved) if app.live.is_some() => {
            // Live: approving starts with the exact plan read from ARM;
            // the review that follows is the confirmation.
            let proposal = app
                .proposals_of(&d.finding)
                .get(d.selected)
                .map(|p| (*p).clone());
            match (proposal, app.loaded()) {
                (Some(p), _) if matches!(p.action, crate::model::Action::Manual { .. }) => {
                    app.say("this proposal is carried out by hand (its steps are above): nothing to execute");
                }
                (Some(p), Some(l)) => {
                    let finding = app
                        .findings()
                        .iter()
                        .find(|f| f.id == d.finding)
                        .cloned()
                        .map(Box::new);
                    cmd = Some(Cmd::Remedy(remedy::Job::Plan {
                        proposal: Box::new(p),
                        finding,
                        snapshot: l.snapshot.clone(),
                    }));
                    d.run = Some(Run::Planning { undo_of: None });
                    d.confirm = None;
                    d.scroll = 0;
                }
                _ => {}
            }
        }
        PlanMsg::Ask(decision) => d.confirm = Some(decision),
        PlanMsg::Input(_) | PlanMsg::Erase | PlanMsg::Undo | PlanMsg::Verify => {}
        PlanMsg::Confirm => {
            if let (Some(decision), Some(id)) = (d.confirm.take(), proposals.get(d.selected)) {
                app.decisions.insert(id.clone(), decision);
                app.say(format!("{id}: {} (recording…)", decision.label()));
                let title = app
                    .proposals_of(&d.finding)
                    .get(d.selected)
                    .map(|p| p.title.clone())
                    .unwrap_or_default();
                cmd = Some(Cmd::Decide(DecisionRecord {
                    proposal: id.clone(),
                    finding: d.finding.clone(),
                    title,
                    decision,
                    source: app.source.clone(),
                }));
            }
        }
        PlanMsg::Cancel => {
            if d.confirm.take().is_none() {
                app.overlay = None;
                return None;
            }
        }
    }
    app.overlay = Some(Overlay::Plan(d));
    cmd
}

/// A key while execution is under way in the dialog.
fn run_step(app: &mut App, mut d: PlanDialog, p: PlanMsg) -> Option<Cmd> {
    let mut cmd = None;
    let run = d.run.take()?;
    d.run = match (run, p) {
        (run, PlanMsg::Scroll(delta)) => {
            d.scroll = (i64::from(d.scroll) + delta).clamp(0, i64::from(MAX_SCROLL)) as u16;
            Some(run)
        }
        (Run::Review { .. } | Run::Done { .. }, PlanMsg::Cancel) => None,
        (run @ (Run::Planning { .. } | Run::Running { .. }), PlanMsg::Cancel) => {
            app.say("the remediation goes on in the background; its result shows on this line");
            app.overlay = None;
            d.run = Some(run);
            app.hidden_run = Some(d);
            return None;
        }
        (
            Run::Review {
                plan,
                mut typed,
                undo_of,
            },
            m @ (PlanMsg::Input(_) | PlanMsg::Erase),
        ) => {
            if let PlanMsg::Input(c) = m {
                if typed.chars().count() < 200 {
                    typed.push(c);
                }
            } else {
                typed.pop();
            }
            Some(Run::Review {
                plan,
                typed,
                undo_of,
            })
        }
        (
            Run::Review {
                plan,
                typed,
                undo_of,
            },
            PlanMsg::Confirm,
        ) => {
            let high = plan.risk == crate::model::Risk::High;
            if high && typed.trim() != plan.proposal {
                app.complain(format!(
                    "type the proposal id {} and Enter to approve this high-risk plan; Esc cancels",
                    plan.proposal
                ));
                Some(Run::Review {
                    plan,
                    typed,
                    undo_of,
                })
            } else {
                let how = if high {
                    "typed the proposal id"
                } else {
                    "confirmed the plan with y"
                };
                cmd = Some(Cmd::Remedy(remedy::Job::Apply {
                    plan,
                    how: how.into(),
                    undo_of,
                }));
                d.scroll = 0;
                Some(Run::Running { lines: Vec::new() })
            }
        }
        (
            Run::Done {
                applied: Some((apply, plan)),
                ..
            },
            PlanMsg::Undo,
        ) => {
            cmd = Some(Cmd::Remedy(remedy::Job::PlanUndo {
                apply: apply.clone(),
                plan,
            }));
            d.scroll = 0;
            Some(Run::Planning {
                undo_of: Some(apply),
            })
        }
        (
            Run::Done {
                ok,
                lines,
                applied: Some((apply, plan)),
                ..
            },
            PlanMsg::Verify,
        ) => {
            app.verify_after_load = Some((apply.clone(), plan.clone()));
            cmd = Some(Cmd::Load);
            Some(Run::Done {
                ok,
                lines,
                applied: Some((apply, plan)),
                verify: Some("re-reading the instance to verify…".into()),
            })
        }
        (run, _) => Some(run),
    };
    app.overlay = Some(Overlay::Plan(d));
    cmd
}

/// The remediation thread's answer, into the dialog (or the status line
/// when the dialog was closed meanwhile).
fn remedy_event(app: &mut App, e: remedy::Event) -> Option<Cmd> {
    use remedy::Event;
    let mut open = match app.overlay.take() {
        Some(Overlay::Plan(d)) if d.run.is_some() => Some(d),
        other => {
            app.overlay = other;
            None
        }
    };
    let hidden = open.is_none();
    let mut d = match open.take().or_else(|| app.hidden_run.take()) {
        Some(d) => d,
        None => {
            if let Event::Progress(l) | Event::Verified(l) = &e {
                app.say(l.clone());
            }
            return None;
        }
    };
    let mut cmd = None;
    let run = d.run.take();
    d.run = match (run, e) {
        (Some(Run::Planning { .. }), Event::Planned { plan, undo_of }) => Some(match plan {
            Ok(plan) => Run::Review {
                plan,
                typed: String::new(),
                undo_of,
            },
            Err(e) => Run::Done {
                ok: false,
                lines: vec![e],
                applied: None,
                verify: None,
            },
        }),
        (Some(Run::Running { mut lines }), Event::Progress(l)) => {
            lines.push(l);
            Some(Run::Running { lines })
        }
        (Some(Run::Running { lines: mut all }), Event::Finished { ok, lines, applied }) => {
            all.extend(lines);
            // The data on screen was read before the change: re-read the
            // instance, then verify on what it holds now.
            let verify = applied.as_ref().map(|(apply, plan)| {
                app.verify_after_load = Some((apply.clone(), plan.clone()));
                cmd = Some(Cmd::Load);
                "re-reading the instance to verify…".to_string()
            });
            if hidden {
                let last = all.last().cloned().unwrap_or_default();
                if ok {
                    app.say(last);
                } else {
                    app.complain(last);
                }
            }
            Some(Run::Done {
                ok,
                lines: all,
                applied,
                verify,
            })
        }
        (
            Some(Run::Done {
                ok, lines, applied, ..
            }),
            Event::Verified(v),
        ) => {
            if hidden {
                app.say(v.clone());
            }
            Some(Run::Done {
                ok,
                lines,
                applied,
                verify: Some(v),
            })
        }
        (run, Event::Progress(l)) => {
            app.say(l);
            run
        }
        (run, _) => run,
    };
    if hidden {
        app.hidden_run = Some(d);
    } else {
        app.overlay = Some(Overlay::Plan(d));
    }
    cmd
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
    fn commands_typed_while_loading_run_once_loaded() {
        let books = Playbooks::built_in();
        let (mut app, _) = App::new("test", Theme::COLOR, false, books.clone());
        typed(&mut app, ":backends");
        assert_eq!(code(&mut app, KeyCode::Enter), None);
        assert!(app.prompt.is_none());
        assert_eq!(app.queued, vec!["backends".to_string()]);
        let shown = app
            .message
            .as_ref()
            .map(|m| m.text.clone())
            .unwrap_or_default();
        assert!(
            shown.contains(":backends runs when the data is loaded"),
            "{shown}"
        );
        typed(&mut app, ":findings");
        code(&mut app, KeyCode::Enter);
        let loaded = data::prepare(incident(), &books);
        update(&mut app, Msg::Loaded(Ok(Box::new(loaded))));
        assert!(app.queued.is_empty());
        assert_eq!(app.screen(), &Screen::Findings, "both ran, in order");
        assert_eq!(app.stack.len(), 2);
        // Quitting while loading does not wait.
        let (mut app, _) = App::new("test", Theme::COLOR, false, books);
        typed(&mut app, ":q");
        assert_eq!(code(&mut app, KeyCode::Enter), Some(Cmd::Quit));
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
    fn ctx_switches_instances_like_k9s_contexts() {
        use std::sync::atomic::Ordering;
        let mut app = ready();
        // One source: nothing to switch, said so.
        assert_eq!(command(&mut app, "ctx prod"), None);
        assert!(app.message.as_ref().is_some_and(|m| m.error));
        app.contexts = vec!["prod-weu".into(), "prod-neu".into(), "staging".into()];
        app.go(Screen::Backends);
        assert_eq!(command(&mut app, "ctx"), None);
        let m = app.message.clone().unwrap();
        assert!(
            !m.error && m.text.contains("*prod-weu") && m.text.contains("staging"),
            "{}",
            m.text
        );
        // Ambiguous and unknown names change nothing.
        assert_eq!(command(&mut app, "ctx prod"), None);
        assert_eq!(command(&mut app, "ctx qa"), None);
        assert_eq!(app.context.load(Ordering::Relaxed), 0);
        // A unique part of a name switches: the loader reads that one.
        assert_eq!(command(&mut app, "ctx neu"), Some(Cmd::Load));
        assert_eq!(app.context.load(Ordering::Relaxed), 1);
        assert_eq!(app.source, "prod-neu");
        assert!(matches!(app.load, Load::Loading));
        assert_eq!(app.screen(), &Screen::Overview);
        assert_eq!(complete(&app, "ctx st").0, "ctx staging ");
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
                op: "get-order".into(),
                cursor: None,
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
                .contains("record only, not executed")
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
        let top = app.finding_rows()[0].id.clone();
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

    fn rows_page(id: u64, start: usize, n: usize) -> Msg {
        let rows = (start..start + n)
            .map(|i| {
                Ok(crate::model::RequestRecord {
                    response_code: 503,
                    correlation_id: Some(format!("corr-{i}")),
                    origin: crate::model::Origin::at_line("logs/a.ndjson", i as u32 + 1),
                    ..Default::default()
                })
            })
            .collect();
        Msg::LogsPage(Box::new(LogsPage { id, start, rows }))
    }

    fn progress(id: u64, matched: u64, done: bool) -> Msg {
        Msg::LogsProgress(LogsProgress {
            id,
            matched,
            done,
            ..LogsProgress::default()
        })
    }

    #[test]
    fn l_on_a_finding_lists_its_rows_in_its_window_and_pages_follow_the_selection() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "findings");
        code(&mut app, KeyCode::Enter);
        let pos = app
            .finding_rows()
            .iter()
            .position(|f| f.subject.operation.as_deref() == Some("get-order") && f.window.is_some())
            .expect("a get-order finding with a window");
        app.crumb_mut().selected[0] = pos;
        let f = app.finding_rows()[pos].clone();
        let Some(Cmd::Logs(LogsJob::Query { id, query, sort })) = key(&mut app, 'l') else {
            panic!("no query");
        };
        assert_eq!(id, 1);
        assert_eq!(sort, LogSort::default());
        assert_eq!(query.api.as_deref(), Some("orders-api"));
        assert_eq!(query.operation.as_deref(), Some("get-order"));
        assert_eq!(query.window, f.window);
        assert_eq!(query.title, format!("finding {}", f.id));
        assert!(matches!(app.screen(), Screen::Logs { .. }));
        // Progress, then the first page: nothing more is asked while the
        // selection is inside the page.
        assert_eq!(update(&mut app, progress(1, 1000, false)), None);
        assert_eq!(update(&mut app, rows_page(1, 0, 300)), None);
        assert_eq!(app.list_len(0), 1000);
        assert_eq!(key(&mut app, 'j'), None);
        // Far down: the rows around the selection are asked for, once.
        let cmd = key(&mut app, 'G');
        assert_eq!(
            cmd,
            Some(Cmd::Logs(LogsJob::Page {
                id: 1,
                start: 999 - LOGS_PAGE / 3,
                len: LOGS_PAGE
            }))
        );
        assert_eq!(code(&mut app, KeyCode::End), None, "already asked");
        // A stale page of another query is ignored.
        update(&mut app, rows_page(0, 0, 10));
        assert_eq!(app.logs.as_ref().unwrap().page_start, 0);
        update(&mut app, rows_page(1, 899, 101));
        assert_eq!(app.logs.as_ref().unwrap().requested, None);
        // y copies the correlation id, Y the file:line.
        assert_eq!(key(&mut app, 'y'), Some(Cmd::Copy("corr-999".into())));
        assert!(app.message.as_ref().unwrap().text.contains("corr-999"));
        assert_eq!(
            key(&mut app, 'Y'),
            Some(Cmd::Copy("logs/a.ndjson:1000".into()))
        );
        // Esc goes back to the findings, the selection kept.
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.screen(), &Screen::Findings);
        assert_eq!(app.selected(0), pos);
    }

    #[test]
    fn the_filter_and_sort_of_the_logs_view_go_to_the_logs_thread() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "ops");
        code(&mut app, KeyCode::Enter);
        let Some(Cmd::Logs(LogsJob::Query { query, .. })) = key(&mut app, 'l') else {
            panic!("no query");
        };
        assert_eq!(query.window, None, "all data");
        assert!(query.operation.is_some());
        update(&mut app, progress(1, 50, true));
        key(&mut app, '/');
        assert_eq!(typed(&mut app, "503"), None, "no scan per key");
        let Some(Cmd::Logs(LogsJob::Query { id, query, .. })) = code(&mut app, KeyCode::Enter)
        else {
            panic!("no requery");
        };
        assert_eq!((id, query.filter.as_deref()), (2, Some("503")));
        let crumbs: Vec<String> = app.stack.iter().map(|c| c.screen.title()).collect();
        assert_eq!(
            crumbs.join(" › "),
            format!("Overview › Operations › logs of {}", query.title)
        );
        let cmd = key(&mut app, 's');
        assert!(
            matches!(cmd, Some(Cmd::Logs(LogsJob::Sort { id: 2, sort })) if sort.column == LogColumn::Status && sort.descending),
            "{cmd:?}"
        );
        key(&mut app, ':');
        typed(&mut app, "sort total");
        let cmd = code(&mut app, KeyCode::Enter);
        assert!(
            matches!(cmd, Some(Cmd::Logs(LogsJob::Sort { sort, .. })) if sort.column == LogColumn::Total),
            "{cmd:?}"
        );
        // Esc clears the filter first: a new scan without it.
        let cmd = code(&mut app, KeyCode::Esc);
        assert!(
            matches!(&cmd, Some(Cmd::Logs(LogsJob::Query { id: 3, query, .. })) if query.filter.is_none()),
            "{cmd:?}"
        );
        assert!(matches!(app.screen(), Screen::Logs { .. }));
        key(&mut app, ':');
        typed(&mut app, "export json /tmp/x.json");
        assert_eq!(
            code(&mut app, KeyCode::Enter),
            Some(Cmd::Logs(LogsJob::Export {
                id: 3,
                path: "/tmp/x.json".into(),
                markdown: false
            }))
        );
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.screen(), &Screen::Operations);
    }

    #[test]
    fn logs_of_a_backend_match_its_url_host_and_of_config_findings_say_why_not() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "be orders-app");
        code(&mut app, KeyCode::Enter);
        assert_eq!(
            app.screen(),
            &Screen::Backend {
                id: "orders-app".into()
            }
        );
        let Some(Cmd::Logs(LogsJob::Query { query, .. })) = key(&mut app, 'l') else {
            panic!("no query");
        };
        assert_eq!(query.backend.as_deref(), Some("orders-app"));
        assert_eq!(query.hosts, vec!["orders-app.internal".to_string()]);
        key(&mut app, ':');
        typed(&mut app, "findings");
        code(&mut app, KeyCode::Enter);
        let policy = app.finding_rows().iter().position(|f| {
            f.subject.api.is_none() && f.subject.operation.is_none() && f.subject.backend.is_none()
        });
        if let Some(p) = policy {
            app.crumb_mut().selected[0] = p;
            assert_eq!(key(&mut app, 'l'), None);
            assert!(app.message.as_ref().unwrap().text.contains("no rows"));
        }
        key(&mut app, ':');
        typed(&mut app, "ch");
        code(&mut app, KeyCode::Enter);
        assert_eq!(key(&mut app, 'l'), None);
        assert!(
            app.message
                .as_ref()
                .unwrap()
                .text
                .contains("select a finding")
        );
    }

    #[test]
    fn y_copies_the_finding_id_and_export_writes_the_ticket() {
        let mut app = ready();
        let id = app.finding_rows()[0].id.clone();
        assert_eq!(key(&mut app, 'y'), Some(Cmd::Copy(id.clone())));
        key(&mut app, ':');
        typed(&mut app, "export md /tmp/t.md");
        let Some(Cmd::Write { path, text }) = code(&mut app, KeyCode::Enter) else {
            panic!("no write");
        };
        assert_eq!(path, "/tmp/t.md");
        assert!(text.starts_with("# Incident: UNHEALTHY"), "{text}");
        assert!(text.contains(&format!("`{id}`")), "{text}");
        assert!(text.contains("| severity | story | state |"), "{text}");
        key(&mut app, ':');
        typed(&mut app, "export json /tmp/t.json");
        let Some(Cmd::Write { text, .. }) = code(&mut app, KeyCode::Enter) else {
            panic!("no write");
        };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["verdict"], "UNHEALTHY");
        assert_eq!(v["findings"][0]["id"], id);
        key(&mut app, ':');
        typed(&mut app, "export csv x");
        code(&mut app, KeyCode::Enter);
        assert!(app.message.as_ref().unwrap().error);
        update(&mut app, Msg::Written(Err("cannot write x: denied".into())));
        assert!(app.message.as_ref().unwrap().error);
    }

    #[test]
    fn findings_are_grouped_by_story_with_counts_and_state() {
        let app = ready();
        let rows = app.finding_rows();
        let stories: Vec<usize> = rows
            .iter()
            .map(|f| app.story_of(&f.id).map_or(usize::MAX, |(s, _)| s))
            .collect();
        assert!(stories.windows(2).all(|w| w[0] <= w[1]), "{stories:?}");
        let spike = rows
            .iter()
            .find(|f| f.kind.is_anomaly() && f.subject.operation.as_deref() == Some("get-order"))
            .expect("the get-order anomaly");
        let c = app.request_count(&spike.id).unwrap();
        assert!(
            c.requests > 0 && c.failing > 0 && c.failing <= c.requests,
            "{c:?}"
        );
        let t = app.finding_time(spike).unwrap();
        assert_eq!(t.ended, None, "the incident runs to the end of the data");
        assert!(t.age_minutes >= 20, "{t:?}");
    }

    #[test]
    fn time_forms_resolve_inside_the_data() {
        // 2024-05-18 23:30 .. 2024-05-19 01:29
        let first = crate::model::parse_timestamp("2024-05-18T23:30:00Z")
            .unwrap()
            .minute();
        let last = first + 119;
        let at = |s: &str| crate::model::parse_timestamp(s).unwrap().minute();
        let ok = |arg: &str, cursor: Option<Minute>| parse_time(arg, first, last, cursor);
        assert_eq!(
            ok("2024-05-18T23:45:00Z", None),
            Ok(at("2024-05-18T23:45:00Z"))
        );
        assert_eq!(ok("2024-05-18 23:45", None), Ok(at("2024-05-18T23:45:00Z")));
        assert_eq!(ok("2024-05-19T00:10", None), Ok(at("2024-05-19T00:10:00Z")));
        assert_eq!(
            ok("00:10", None),
            Ok(at("2024-05-19T00:10:00Z")),
            "the end's day"
        );
        assert_eq!(
            ok("23:40", None),
            Ok(at("2024-05-18T23:40:00Z")),
            "the day before: past the data otherwise"
        );
        assert_eq!(ok("-1h", None), Ok(last - 60));
        assert_eq!(
            ok("-30m", Some(first + 40)),
            Ok(first + 10),
            "from the cursor"
        );
        assert_eq!(ok("+10m", Some(first)), Ok(first + 10));
        assert_eq!(ok("yesterday 23:50", None), Ok(at("2024-05-18T23:50:00Z")));
        assert_eq!(ok("today 01:00", None), Ok(at("2024-05-19T01:00:00Z")));
        assert_eq!(ok("start", None), Ok(first));
        let e = ok("-3h", None).unwrap_err();
        assert!(
            e.contains("outside the data (2024-05-18 23:30 – 2024-05-19 01:29 UTC)"),
            "{e}"
        );
        assert!(ok("25:00", None).is_err());
        assert!(ok("soon", None).unwrap_err().contains("not a time"));
        assert!(ok("-99999999999999d", None).is_err(), "no overflow");
    }

    #[test]
    fn the_command_line_completes_and_remembers() {
        let mut app = ready();
        key(&mut app, ':');
        typed(&mut app, "fi");
        code(&mut app, KeyCode::Tab);
        assert_eq!(app.prompt.as_ref().unwrap().text, "findings ");
        code(&mut app, KeyCode::Enter);
        assert_eq!(app.screen(), &Screen::Findings);
        key(&mut app, ':');
        typed(&mut app, "op orders-api/g");
        code(&mut app, KeyCode::Tab);
        assert_eq!(
            app.prompt.as_ref().unwrap().text,
            "op orders-api/get-order "
        );
        code(&mut app, KeyCode::Enter);
        assert_eq!(
            app.screen(),
            &Screen::Operation {
                api: "orders-api".into(),
                op: "get-order".into()
            }
        );
        key(&mut app, ':');
        typed(&mut app, "sort ");
        code(&mut app, KeyCode::Tab);
        assert!(
            app.message.as_ref().unwrap().text.contains("requests"),
            "{:?}",
            app.message
        );
        typed(&mut app, "p");
        code(&mut app, KeyCode::Tab);
        assert_eq!(app.prompt.as_ref().unwrap().text, "sort p95 ");
        code(&mut app, KeyCode::Esc);
        key(&mut app, ':');
        code(&mut app, KeyCode::Up);
        assert_eq!(app.prompt.as_ref().unwrap().text, "op orders-api/get-order");
        code(&mut app, KeyCode::Up);
        assert_eq!(app.prompt.as_ref().unwrap().text, "findings");
        code(&mut app, KeyCode::Up);
        assert_eq!(
            app.prompt.as_ref().unwrap().text,
            "findings",
            "the oldest stays"
        );
        code(&mut app, KeyCode::Down);
        code(&mut app, KeyCode::Down);
        assert_eq!(
            app.prompt.as_ref().unwrap().text,
            "",
            "past the newest: empty"
        );
        typed(&mut app, "zz");
        code(&mut app, KeyCode::Tab);
        assert!(app.message.as_ref().unwrap().error);
    }

    #[test]
    fn a_confirmed_decision_is_recorded() {
        let mut app = ready();
        open_plan(&mut app);
        key(&mut app, 'A');
        let cmd = key(&mut app, 'y');
        let Some(Cmd::Decide(d)) = cmd else {
            panic!("{cmd:?}");
        };
        assert_eq!(d.decision, Decision::Approved);
        assert_eq!(d.source, "test");
        assert!(app.decisions.contains_key(&d.proposal));
        assert!(!d.finding.is_empty() && !d.title.is_empty());
    }
}
