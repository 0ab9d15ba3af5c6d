//! `apimedic tui`: the interactive dashboard. This module owns the terminal
//! and the threads; everything else in `tui` is pure.
//!
//! ```text
//! input thread  ── Msg::Key ──┐
//! worker thread ── Msg::Loaded / Scoped / Inspected ──┤
//! chat thread   ── Msg::ChatDelta / ChatAnswer ──┤
//!                             ▼
//!   UI loop: app::update(&mut App, Msg) -> Option<Cmd> ; draw &App
//!                             │ Cmd::Load / Diagnose / Inspect      │ Cmd::Chat(line)
//!                             ▼                                     ▼
//!   worker thread (load, diagnose a window,          chat thread (Conversation +
//!   effective policy) ── each load's data ──────────▶ Assistant, one line at a time)
//! ```
//!
//! A logs thread finds the request rows of the logs view (`Cmd::Logs`,
//! answered with `Msg::LogsProgress` / `LogsPage`); the UI loop itself
//! writes `:export` files, OSC 52 copies and approval records (small
//! writes at the edge) and reports them as `Msg::Written`.
//!
//! The chat thread is separate so a slow model never holds up a
//! re-diagnosis; it builds its `tools::Instance` from the worker's latest
//! load (all data, as `apimedic chat` sees it) when a line first needs it.
//!
//! The first frame (a loading screen) is drawn before any data is read;
//! loading and every diagnosis run on the worker, so no frame waits on I/O
//! or analysis. `ratatui::try_init` installs a panic hook that restores the
//! terminal; `run` restores it on every normal or error return, and
//! [`terminal`] on an abort, a crash or a signal.
//!
//! - [`app`]: state, messages, `update`.
//! - [`chat`]: the chat pane's state and keys; the chat thread's `reply`.
//! - [`keys`]: what a key means in each mode; the help table.
//! - [`logs`]: the logs view's queries and the logs thread (rows found by
//!   scanning the source again, read back a page at a time).
//! - [`export`]: `:export` of the current view as Markdown or JSON.
//! - [`data`]: what the worker computes for the views.
//! - [`view`]: `impl Widget for &App`, one file per pane.
//! - [`theme`]: every colour; `NO_COLOR` honoured.

pub mod app;
pub mod chat;
pub mod data;
pub mod export;
pub mod keys;
pub mod logs;
pub mod remedy;
pub mod terminal;
pub mod theme;
pub mod view;

use crate::collect::rows::RowSource;
use crate::llm::Assistant;
use crate::llm::Conversation;
use crate::model::{Diagnosis, Snapshot};
use crate::playbook::Playbooks;
use crate::tools::Instance;
use anyhow::Context;
use app::{App, Cmd, Load, Msg};
use crossterm::event::{self, Event};
use ratatui::Terminal;
use ratatui::backend::Backend;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// Reads the data (files or the demo); runs on the worker thread.
/// Called again on every refresh of a live source.
pub type Loader = Box<dyn FnMut() -> anyhow::Result<Snapshot> + Send>;

/// How the dashboard runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// What the top bar calls the data: `demo` or the folder.
    pub source: String,
    /// Hide every action (the proposal dialog and its keys).
    pub readonly: bool,
    pub theme: theme::Theme,
    pub playbooks: Playbooks,
    /// Re-read the source this often (a live folder being appended to).
    pub refresh: Option<Duration>,
    /// Who answers in the chat pane (offline unless a model is configured).
    pub assistant: Assistant,
    /// The chat pane's name for it: `offline` or `model NAME`.
    pub engine: String,
    /// Where the logs view reads request rows (`None`: it says there are
    /// no files to read rows from).
    pub rows: Option<RowSource>,
    /// Where approvals and rejections are recorded (`None`: nowhere to
    /// write, and the dialog says so).
    pub state_dir: Option<PathBuf>,
    /// The instances `:ctx` switches between, and the shared index of the
    /// one shown (the loader reads it). Empty: one source.
    pub contexts: Vec<String>,
    pub context: Arc<std::sync::atomic::AtomicUsize>,
    /// The live instance the approve key executes against (`None`: folder
    /// data or the demo; a decision is recorded, never executed).
    pub live: Option<remedy::Live>,
}

/// The state directory: `$XDG_STATE_HOME/apimedic`, else
/// `~/.local/state/apimedic`; `None` without either.
pub fn state_dir(xdg_state_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match (xdg_state_home.filter(|s| !s.is_empty()), home) {
        (Some(x), _) => PathBuf::from(x),
        (None, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".local/state"),
        _ => return None,
    };
    Some(base.join("apimedic"))
}

/// File of the dashboard's approvals and rejections in the state directory
/// (one JSON object a line, appended).
pub const DECISIONS_FILE: &str = "decisions.jsonl";

/// Appends a decision with the time and the OS user.
fn record_decision(dir: &Path, d: &app::DecisionRecord) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(DECISIONS_FILE);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    let line = serde_json::json!({
        "time": crate::model::Timestamp(now),
        "user": user,
        "surface": "tui",
        "decision": match d.decision {
            app::Decision::Approved => "approved",
            app::Decision::Rejected => "rejected",
        },
        "proposal": d.proposal,
        "finding": d.finding,
        "title": d.title,
        "source": d.source,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    writeln!(f, "{line}")?;
    f.sync_data()?;
    // The same decision in the remediation audit log (hash-chained), so an
    // auditor reads approvals and executions in one place.
    let status = match d.decision {
        app::Decision::Approved => "approved",
        app::Decision::Rejected => "rejected",
    };
    crate::audit::Log::new(dir)
        .append(crate::audit::Entry {
            kind: Some(crate::audit::Kind::Decision),
            status: status.into(),
            user: crate::audit::os_user(),
            surface: "tui".into(),
            proposal: Some(d.proposal.clone()),
            finding: Some(d.finding.clone()),
            message: format!(
                "{status} in the dashboard: {} (data: {})",
                d.title, d.source
            ),
            ..crate::audit::Entry::default()
        })
        .map_err(std::io::Error::other)?;
    Ok(path)
}

/// The decisions recorded earlier for this source: the latest per proposal.
pub fn load_decisions(dir: &Path, source: &str) -> BTreeMap<String, app::Decision> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(dir.join(DECISIONS_FILE)) else {
        return out;
    };
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["source"].as_str() != Some(source) {
            continue;
        }
        let (Some(p), Some(d)) = (v["proposal"].as_str(), v["decision"].as_str()) else {
            continue;
        };
        let d = match d {
            "approved" => app::Decision::Approved,
            "rejected" => app::Decision::Rejected,
            _ => continue,
        };
        out.insert(p.to_string(), d);
    }
    out
}

/// Runs the dashboard until the user quits. Errors when the terminal cannot
/// be used, or when the data could not be loaded (after the user has seen
/// the message and quit), so the caller exits non-zero.
pub fn run(loader: Loader, options: Options) -> anyhow::Result<()> {
    let (tx, rx) = channel::<Msg>();
    let (mut app, first) = App::new(
        &options.source,
        options.theme,
        options.readonly,
        options.playbooks.clone(),
    );
    app.chat.engine = options.engine.clone();
    app.contexts = options.contexts.clone();
    app.context = options.context.clone();
    if let Some(dir) = &options.state_dir {
        app.decisions = load_decisions(dir, &options.source);
    }
    app.live = options.live.as_ref().map(|l| l.service.clone());
    let remedy = options
        .live
        .clone()
        .map(|l| remedy::Remedy::spawn(l, options.playbooks.clone(), tx.clone()));
    let chat = ChatThread::spawn(options.assistant, tx.clone());
    let worker = Worker::spawn(loader, options.playbooks, tx.clone(), chat.jobs.clone());
    let logs = LogsThread::spawn(options.rows, tx.clone());
    let done = tx.clone();
    let state = options.state_dir.clone();
    // Before raw mode: saves the modes an abort or a signal restores.
    let _restore = terminal::RestoreOnSignal::install();
    let mut terminal = ratatui::try_init()
        .context("cannot start the terminal UI; `apimedic tui` needs an interactive terminal")?;
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(every) = options.refresh {
        spawn_refresh(tx.clone(), every, stop.clone());
    }
    spawn_input(tx, stop.clone());
    let result = run_loop(&mut terminal, app, first, &rx, |cmd| match cmd {
        Cmd::Chat(line, window) => chat.send(ChatJob::Line(line, window)),
        Cmd::Logs(job) => logs.send(job),
        Cmd::Copy(text) => {
            // OSC 52 goes to the terminal between frames; the status line
            // already shows the text for terminals that ignore it.
            let mut out = std::io::stdout();
            let _ = write!(out, "{}", logs::osc52(&text));
            let _ = out.flush();
        }
        Cmd::Write { path, text } => {
            let msg = match std::fs::write(&path, text) {
                Ok(()) => Ok(format!("wrote {path}")),
                Err(e) => Err(format!("cannot write {path}: {e}")),
            };
            let _ = done.send(Msg::Written(msg));
        }
        Cmd::Remedy(job) => match &remedy {
            Some(r) => r.send(job),
            None => {
                let _ = done.send(Msg::Written(Err(
                    "not connected to a live instance: nothing is executed".into(),
                )));
            }
        },
        Cmd::Decide(d) => {
            let msg = match &state {
                Some(dir) => match record_decision(dir, &d) {
                    Ok(path) => Ok(format!(
                        "{}: {} — recorded in {}",
                        d.proposal,
                        d.decision.label(),
                        path.display()
                    )),
                    Err(e) => Err(format!(
                        "{}: {} in this session only — cannot record it in {}: {e}",
                        d.proposal,
                        d.decision.label(),
                        dir.display()
                    )),
                },
                None => Err(format!(
                    "{}: {} in this session only — no state directory (set XDG_STATE_HOME or HOME)",
                    d.proposal,
                    d.decision.label()
                )),
            };
            let _ = done.send(Msg::Written(msg));
        }
        other => worker.send(other),
    });
    stop.store(true, Ordering::Relaxed);
    ratatui::restore();
    let app = result?;
    match app.load {
        Load::Failed(e) => Err(anyhow::anyhow!(e)),
        _ => Ok(()),
    }
}

/// The UI loop, generic over the backend so tests draw into a `TestBackend`:
/// draw, wait for messages, apply them all, start their commands, draw
/// again. Returns the final state when a `Cmd::Quit` comes, or when every
/// sender is gone.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    mut app: App,
    first: Cmd,
    rx: &Receiver<Msg>,
    mut exec: impl FnMut(Cmd),
) -> anyhow::Result<App> {
    draw(terminal, &app)?;
    let mut cmds = vec![first];
    loop {
        for cmd in cmds.drain(..) {
            if cmd == Cmd::Quit {
                return Ok(app);
            }
            exec(cmd);
        }
        let Ok(msg) = rx.recv() else {
            return Ok(app);
        };
        cmds.extend(app::update(&mut app, msg));
        // Apply everything already queued before drawing once.
        while let Ok(msg) = rx.try_recv() {
            cmds.extend(app::update(&mut app, msg));
        }
        if !cmds.contains(&Cmd::Quit) {
            draw(terminal, &app)?;
        }
    }
}

fn draw<B: Backend>(terminal: &mut Terminal<B>, app: &App) -> anyhow::Result<()> {
    terminal
        .draw(|f| f.render_widget(app, f.area()))
        .map_err(|e| anyhow::anyhow!("cannot draw the screen: {e}"))?;
    Ok(())
}

/// Asks for a reload every `every` until `stop` (a live source).
fn spawn_refresh(tx: Sender<Msg>, every: Duration, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(every);
            if tx.send(Msg::Refresh).is_err() {
                break;
            }
        }
    });
}

/// Reads terminal events and forwards keys and resizes until `stop`.
fn spawn_input(tx: Sender<Msg>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => {
                    let msg = match event::read() {
                        Ok(Event::Key(k)) => Msg::Key(k),
                        Ok(Event::Resize(..)) => Msg::Resize,
                        Ok(_) => continue,
                        Err(_) => break,
                    };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
                Ok(false) => {}
                Err(_) => break,
            }
        }
    });
}

/// The background thread: loads once, then diagnoses windows and reads
/// policies on request. Queued diagnoses collapse to the newest one, so
/// holding `]` never builds a backlog.
struct Worker {
    jobs: Sender<Cmd>,
}

impl Worker {
    /// `chat` receives every load's data for the chat thread.
    fn spawn(
        loader: Loader,
        playbooks: Playbooks,
        out: Sender<Msg>,
        chat: Sender<ChatJob>,
    ) -> Worker {
        let (jobs, rx) = channel::<Cmd>();
        std::thread::spawn(move || work(loader, playbooks, rx, out, chat));
        Worker { jobs }
    }

    fn send(&self, cmd: Cmd) {
        // The worker only stops when this sender is dropped.
        let _ = self.jobs.send(cmd);
    }
}

/// Runs jobs until the UI loop drops its sender. A panic in analysis ends
/// the dashboard with a message instead of leaving it on a terminal the
/// panic hook has already restored.
fn work(
    loader: Loader,
    playbooks: Playbooks,
    rx: Receiver<Cmd>,
    out: Sender<Msg>,
    chat: Sender<ChatJob>,
) {
    let run = std::panic::AssertUnwindSafe(|| jobs(loader, &playbooks, &rx, &out, &chat));
    if let Err(panic) = std::panic::catch_unwind(run) {
        let what = panic_text(panic.as_ref());
        let _ = out.send(Msg::Crashed(format!(
            "internal error in the background analysis: {what}; please report it with the data that caused it"
        )));
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn jobs(
    mut loader: Loader,
    playbooks: &Playbooks,
    rx: &Receiver<Cmd>,
    out: &Sender<Msg>,
    chat: &Sender<ChatJob>,
) {
    let mut snapshot: Option<Arc<Snapshot>> = None;
    // A copy with past policies, made when a cursor first precedes a change.
    let mut past: Option<Snapshot> = None;
    while let Ok(job) = rx.recv() {
        let mut jobs = vec![job];
        jobs.extend(rx.try_iter());
        let newest_diagnose = jobs.iter().rposition(|j| matches!(j, Cmd::Diagnose { .. }));
        for (i, job) in jobs.into_iter().enumerate() {
            let msg = match job {
                Cmd::Load => {
                    let loaded = loader().map(|s| Box::new(data::prepare(s, playbooks)));
                    if let Ok(l) = &loaded {
                        snapshot = Some(l.snapshot.clone());
                        past = None;
                        // The first scope covers all data: the diagnosis
                        // `tools::Instance::new` would compute. The chat
                        // thread may be gone; the dashboard goes on.
                        let _ = chat.send(ChatJob::Data {
                            snapshot: l.snapshot.clone(),
                            diagnosis: Box::new(l.scoped.diagnosis.clone()),
                        });
                    }
                    Msg::Loaded(loaded.map_err(|e| format!("{e:#}")))
                }
                Cmd::Diagnose { generation, cursor } if Some(i) == newest_diagnose => {
                    let Some(s) = &snapshot else { continue };
                    Msg::Scoped(Box::new(data::scope_in_time(
                        s, &mut past, playbooks, generation, cursor,
                    )))
                }
                Cmd::Inspect { api, op, cursor } => {
                    let Some(s) = &snapshot else { continue };
                    Msg::Inspected(Box::new(data::policy_view_at(
                        s, &mut past, &api, &op, cursor,
                    )))
                }
                Cmd::Diagnose { .. }
                | Cmd::Chat(..)
                | Cmd::Logs(_)
                | Cmd::Copy(_)
                | Cmd::Write { .. }
                | Cmd::Decide(_)
                | Cmd::Remedy(_)
                | Cmd::Quit => continue,
            };
            if out.send(msg).is_err() {
                return;
            }
        }
    }
}

/// The thread that finds request rows for the logs view, so a scan over
/// a big log holds up neither drawing nor re-diagnosis.
struct LogsThread {
    jobs: Sender<logs::LogsJob>,
}

impl LogsThread {
    fn spawn(source: Option<RowSource>, out: Sender<Msg>) -> LogsThread {
        let (jobs, rx) = channel::<logs::LogsJob>();
        std::thread::spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| logs::serve(source, &rx, &out));
            if let Err(panic) = std::panic::catch_unwind(run) {
                let _ = out.send(Msg::Written(Err(format!(
                    "internal error while listing rows: {}; the logs view is unavailable",
                    panic_text(panic.as_ref())
                ))));
            }
        });
        LogsThread { jobs }
    }

    fn send(&self, job: logs::LogsJob) {
        let _ = self.jobs.send(job);
    }
}

/// What the chat thread is asked to do.
#[derive(Debug)]
pub enum ChatJob {
    /// A load's data (the first, or a refresh): lines after it use it.
    Data {
        snapshot: Arc<Snapshot>,
        diagnosis: Box<Diagnosis>,
    },
    /// A question or slash command to answer, about this window (the time
    /// cursor's; `None`: all data).
    Line(String, Option<crate::model::Window>),
}

/// The thread that answers chat lines, one at a time, so a slow model
/// holds up neither drawing nor re-diagnosis.
struct ChatThread {
    jobs: Sender<ChatJob>,
}

impl ChatThread {
    fn spawn(assistant: Assistant, out: Sender<Msg>) -> ChatThread {
        let (jobs, rx) = channel::<ChatJob>();
        std::thread::spawn(move || converse(&assistant, &rx, &out));
        ChatThread { jobs }
    }

    fn send(&self, job: ChatJob) {
        // The thread only stops when this sender is dropped.
        let _ = self.jobs.send(job);
    }
}

/// Answers lines until every sender is gone. Keeps one `Conversation` for
/// the session (follow-ups reuse the names asked about). The instance is
/// built from the newest data when a line needs it; a panic while
/// answering is reported as that line's reply and the thread goes on.
fn converse(assistant: &Assistant, rx: &Receiver<ChatJob>, out: &Sender<Msg>) {
    let mut conversation = Conversation::default();
    let mut fresh: Option<(Arc<Snapshot>, Box<Diagnosis>)> = None;
    let mut inst: Option<Instance> = None;
    while let Ok(job) = rx.recv() {
        let line = match job {
            ChatJob::Data {
                snapshot,
                diagnosis,
            } => {
                fresh = Some((snapshot, diagnosis));
                continue;
            }
            ChatJob::Line(line, window) => {
                // Answers are about the window on screen, as the title says.
                conversation.window = window;
                line
            }
        };
        if let Some((snapshot, diagnosis)) = fresh.take() {
            inst = Some(Instance {
                snapshot,
                diagnosis: *diagnosis,
            });
        }
        let reply = match &inst {
            None => {
                chat::ChatReply::Failed("the data is not loaded yet; ask again in a moment".into())
            }
            Some(inst) => {
                let mut stream = |text: &str| {
                    let _ = out.send(Msg::ChatDelta(text.to_string()));
                };
                let answer = std::panic::AssertUnwindSafe(|| {
                    chat::reply(&mut conversation, inst, assistant, &line, &mut stream)
                });
                std::panic::catch_unwind(answer).unwrap_or_else(|panic| {
                    chat::ChatReply::Failed(format!(
                        "internal error while answering: {}; please report it with the question",
                        panic_text(panic.as_ref())
                    ))
                })
            }
        };
        if out.send(Msg::ChatAnswer(Box::new(reply))).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::Theme;

    #[test]
    fn decisions_persist_and_reach_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |p: &str, d: app::Decision| app::DecisionRecord {
            proposal: p.into(),
            finding: "f1".into(),
            title: "Roll back the policy".into(),
            decision: d,
            source: "demo".into(),
        };
        record_decision(dir.path(), &rec("p1", app::Decision::Approved)).unwrap();
        record_decision(dir.path(), &rec("p2", app::Decision::Rejected)).unwrap();
        record_decision(dir.path(), &rec("p1", app::Decision::Rejected)).unwrap();
        let back = load_decisions(dir.path(), "demo");
        assert_eq!(
            back.get("p1"),
            Some(&app::Decision::Rejected),
            "the latest wins"
        );
        assert_eq!(back.get("p2"), Some(&app::Decision::Rejected));
        assert!(load_decisions(dir.path(), "other-folder").is_empty());
        let (entries, v) = crate::audit::Log::new(dir.path()).verify().unwrap();
        assert!(v.broken.is_empty(), "the chain verifies: {:?}", v.broken);
        let kinds: Vec<_> = entries
            .iter()
            .map(|e| {
                (
                    e.entry.kind,
                    e.entry.status.as_str(),
                    e.entry.surface.as_str(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (Some(crate::audit::Kind::Decision), "approved", "tui"),
                (Some(crate::audit::Kind::Decision), "rejected", "tui"),
                (Some(crate::audit::Kind::Decision), "rejected", "tui"),
            ]
        );
    }
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::backend::TestBackend;

    fn key(c: char) -> Msg {
        Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }

    fn screen_text(t: &Terminal<TestBackend>) -> String {
        let buf = t.backend().buffer();
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    #[test]
    fn the_loop_draws_applies_messages_runs_commands_and_quits() {
        let books = Playbooks::built_in();
        let (app, first) = App::new("test", Theme::PLAIN, false, books.clone());
        let (tx, rx) = channel();
        tx.send(Msg::Loaded(Ok(Box::new(data::prepare(
            data::tests::incident(),
            &books,
        )))))
        .unwrap();
        for c in ":ops".chars() {
            tx.send(key(c)).unwrap();
        }
        tx.send(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)))
            .unwrap();
        tx.send(key('[')).unwrap();
        tx.send(key('q')).unwrap();
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let mut ran = Vec::new();
        let app = run_loop(&mut term, app, first, &rx, |c| ran.push(c)).unwrap();
        assert_eq!(ran.first(), Some(&Cmd::Load));
        assert!(
            matches!(ran.get(1), Some(Cmd::Diagnose { generation: 1, .. })),
            "{ran:?}"
        );
        assert_eq!(app.screen(), &app::Screen::Operations);
        // Everything queued was applied before one draw; q ended the loop
        // without another draw, so the screen is the loading frame.
        assert!(
            screen_text(&term).contains("Loading test"),
            "{}",
            screen_text(&term)
        );
    }

    #[test]
    fn the_first_frame_is_the_loading_screen_and_a_closed_channel_ends_the_loop() {
        let (app, first) = App::new("demo", Theme::COLOR, false, Playbooks::default());
        let (tx, rx) = channel::<Msg>();
        drop(tx);
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let app = run_loop(&mut term, app, first, &rx, |_| {}).unwrap();
        assert!(matches!(app.load, Load::Loading));
        let text = screen_text(&term);
        assert!(text.contains("Loading demo"), "{text}");
        assert!(text.contains("apimedic"), "{text}");
    }

    #[test]
    fn the_worker_loads_then_answers_only_the_newest_diagnosis() {
        let (jtx, jrx) = channel();
        let (otx, orx) = channel();
        // Queue everything before the worker looks: diagnoses collapse.
        jtx.send(Cmd::Load).unwrap();
        for g in 1..=3 {
            jtx.send(Cmd::Diagnose {
                generation: g,
                cursor: None,
            })
            .unwrap();
        }
        jtx.send(Cmd::Inspect {
            api: "orders-api".into(),
            op: "get-order".into(),
            cursor: None,
        })
        .unwrap();
        drop(jtx);
        let (ctx, crx) = channel();
        work(
            Box::new(|| Ok(data::tests::incident())),
            Playbooks::built_in(),
            jrx,
            otx,
            ctx,
        );
        assert!(
            matches!(crx.try_recv(), Ok(ChatJob::Data { .. })),
            "the chat thread gets the loaded data"
        );
        let msgs: Vec<Msg> = orx.try_iter().collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(matches!(&msgs[0], Msg::Loaded(Ok(_))));
        assert!(matches!(&msgs[1], Msg::Scoped(s) if s.generation == 3));
        assert!(matches!(&msgs[2], Msg::Inspected(p) if p.operation == "get-order"));
    }

    #[test]
    fn a_panic_in_the_worker_ends_the_loop_with_its_message() {
        let (tx, rx) = channel();
        let worker = Worker::spawn(
            Box::new(|| panic!("boom in analysis")),
            Playbooks::built_in(),
            tx,
            channel().0,
        );
        worker.send(Cmd::Load);
        let msg = rx.recv().expect("a message");
        assert!(
            matches!(&msg, Msg::Crashed(e) if e.contains("boom in analysis")),
            "{msg:?}"
        );
        let (mut app, _) = App::new("t", Theme::PLAIN, false, Playbooks::default());
        assert_eq!(app::update(&mut app, msg), Some(Cmd::Quit));
        assert!(matches!(app.load, Load::Failed(_)));
    }

    /// Nothing below the surfaces imports the dashboard (data flows one way).
    #[test]
    fn only_cli_imports_the_tui() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        assert!(files.len() > 10, "no sources under {}", src.display());
        for f in files {
            let rel = f
                .strip_prefix(&src)
                .unwrap_or(&f)
                .to_string_lossy()
                .replace('\\', "/");
            if rel.starts_with("tui/") || rel.starts_with("cli/") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(!text.contains("crate::tui"), "src/{rel} imports the tui");
        }
    }

    #[test]
    fn the_chat_thread_answers_about_the_window_it_is_given() {
        // The window reaches the answerer as the conversation's window (the
        // answer's entities carry it); how each intent narrows its text to
        // it is the answerer's (llm) job.
        use crate::model::{Timestamp, Window};
        let (jobs, rx) = channel();
        let (out, msgs) = channel();
        let loaded = data::prepare(data::tests::incident(), &Playbooks::built_in());
        jobs.send(ChatJob::Data {
            snapshot: loaded.snapshot.clone(),
            diagnosis: Box::new(loaded.scoped.diagnosis.clone()),
        })
        .unwrap();
        // The incident's get-order failures start at 07:10 (minute 30).
        let before = Window {
            start: Timestamp::from_minute(28_600_000),
            end: Timestamp::from_minute(28_600_020),
        };
        let q = "is orders-api/get-order failing?";
        jobs.send(ChatJob::Line(q.into(), None)).unwrap();
        jobs.send(ChatJob::Line(q.into(), Some(before))).unwrap();
        drop(jobs);
        converse(&Assistant::Offline, &rx, &out);
        let answers: Vec<crate::llm::Answer> = msgs
            .try_iter()
            .filter_map(|m| match m {
                Msg::ChatAnswer(r) => match *r {
                    chat::ChatReply::Answer(a) => Some(*a),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(answers.len(), 2, "{answers:?}");
        assert_ne!(answers[0].entities.window, Some(before));
        assert_eq!(answers[1].entities.window, Some(before), "{:?}", answers[1]);
    }

    #[test]
    fn the_chat_thread_answers_in_order_once_the_data_is_in() {
        let (jobs, rx) = channel();
        let (out, msgs) = channel();
        jobs.send(ChatJob::Line("/backends".into(), None)).unwrap();
        let loaded = data::prepare(data::tests::incident(), &Playbooks::built_in());
        jobs.send(ChatJob::Data {
            snapshot: loaded.snapshot.clone(),
            diagnosis: Box::new(loaded.scoped.diagnosis.clone()),
        })
        .unwrap();
        for line in [
            "what backends does my instance have",
            "and are any unhealthy?",
            "/history",
        ] {
            jobs.send(ChatJob::Line(line.into(), None)).unwrap();
        }
        drop(jobs);
        converse(&Assistant::Offline, &rx, &out);
        let msgs: Vec<Msg> = msgs.try_iter().collect();
        let replies: Vec<&chat::ChatReply> = msgs
            .iter()
            .filter_map(|m| match m {
                Msg::ChatAnswer(r) => Some(r.as_ref()),
                _ => None,
            })
            .collect();
        assert_eq!(replies.len(), 4, "{msgs:?}");
        assert!(
            matches!(replies[0], chat::ChatReply::Failed(e) if e.contains("not loaded yet")),
            "{:?}",
            replies[0]
        );
        let chat::ChatReply::Answer(first) = replies[1] else {
            panic!("{:?}", replies[1]);
        };
        assert!(first.text.contains("orders-app"), "{}", first.text);
        assert!(
            matches!(replies[2], chat::ChatReply::Answer(a) if a.entities.backends.contains(&"orders-app".to_string())
                || a.text.contains("orders-app")),
            "a follow-up keeps the conversation: {:?}",
            replies[2]
        );
        assert_eq!(
            replies[3],
            &chat::ChatReply::Text(
                "1. what backends does my instance have\n2. and are any unhealthy?".into()
            )
        );
        assert!(
            matches!(&msgs[1], Msg::ChatDelta(t) if *t == first.text),
            "the text streams before the answer: {:?}",
            msgs[1]
        );
    }

    #[test]
    fn a_load_error_reaches_the_app() {
        let (tx, rx) = channel();
        let worker = Worker::spawn(
            Box::new(|| anyhow::bail!("no such folder x")),
            Playbooks::built_in(),
            tx,
            channel().0,
        );
        worker.send(Cmd::Load);
        match rx.recv() {
            Ok(Msg::Loaded(Err(e))) => assert!(e.contains("no such folder x")),
            other => panic!("{other:?}"),
        }
    }
}
