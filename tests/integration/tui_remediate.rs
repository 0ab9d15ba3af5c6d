//! The dashboard's approve key on a live instance, end to end against the
//! stateful ARM stand-in: the real `App` driven by keys through
//! `app::update`, its `Cmd::Remedy` jobs run by the real remediation thread
//! (`tui::remedy`, which calls `remediate::exec::Engine::apply`), its
//! answers fed back as messages — the UI loop without a terminal. Checks:
//! the plan is shown before anything is written, a high-risk plan needs the
//! proposal id typed (a bare `y` writes nothing), progress and the
//! verification reach the dialog, undo is offered and restores the state,
//! and every step is in the audit log under surface `tui`. On folder data
//! the same key records the decision only.

use super::arm_standin::{StandIn, TOKEN};
use super::cli::root;
use apimedic::model::{Action, Risk};
use apimedic::playbook::Playbooks;
use apimedic::remediate::StaticToken;
use apimedic::tui::app::{self, App, Cmd, Msg, Overlay, PlanDialog, Run};
use apimedic::tui::remedy::{Live, Remedy};
use apimedic::tui::{data, theme::Theme};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

struct Dash {
    app: App,
    rx: Receiver<Msg>,
    remedy: Option<Remedy>,
    decided: Vec<app::DecisionRecord>,
    /// What a reload reads (the live loader's stand-in: the scenario).
    scenario: String,
    reloads: usize,
}

impl Dash {
    fn run_cmd(&mut self, cmd: Option<Cmd>) {
        match cmd {
            Some(Cmd::Remedy(job)) => self
                .remedy
                .as_ref()
                .expect("a remediation job on folder data")
                .send(job),
            Some(Cmd::Decide(d)) => self.decided.push(d),
            Some(Cmd::Load) => {
                self.reloads += 1;
                let books = Playbooks::built_in();
                let s =
                    apimedic::cli::load(&[root().join("fixtures/scenarios").join(&self.scenario)])
                        .expect("reload");
                let cmd = app::update(
                    &mut self.app,
                    Msg::Loaded(Ok(Box::new(data::prepare(s, &books)))),
                );
                self.run_cmd(cmd);
            }
            _ => {}
        }
    }

    fn key(&mut self, code: KeyCode) {
        let cmd = app::update(
            &mut self.app,
            Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)),
        );
        self.run_cmd(cmd);
    }

    fn run(&self) -> Option<&Run> {
        match &self.app.overlay {
            Some(Overlay::Plan(d)) => d.run.as_ref(),
            _ => None,
        }
    }

    /// Feeds the thread's answers to `update` until `done` holds.
    fn wait(&mut self, what: &str, done: impl Fn(&Dash) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self.rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!("timed out waiting for {what}; dialog: {:?}", self.run())
            });
            let cmd = app::update(&mut self.app, msg);
            self.run_cmd(cmd);
        }
    }
}

/// The dashboard on a scenario, its dialog open on the executable
/// proposal of the highest risk; `live`: connected to the stand-in.
fn dashboard(scenario: &str, live: Option<(&StandIn, &std::path::Path)>) -> (Dash, String) {
    let books = Playbooks::built_in();
    let snapshot =
        apimedic::cli::load(&[root().join("fixtures/scenarios").join(scenario)]).expect("load");
    let service = snapshot
        .service
        .as_ref()
        .and_then(|s| s.resource_id.clone())
        .expect("the scenario names its service id");
    let (mut app, _) = App::new(scenario, Theme::PLAIN, false, books.clone());
    let (tx, rx) = channel();
    let remedy = live.map(|(arm, state)| {
        app.live = Some(service.clone());
        Remedy::spawn(
            Live {
                service: service.clone(),
                arm_base: arm.url.clone(),
                tokens: Arc::new(StaticToken::new(TOKEN)),
                state_dir: state.to_path_buf(),
                poll: Duration::from_millis(100),
                max_wait: Duration::from_secs(30),
            },
            books.clone(),
            tx,
        )
    });
    app::update(
        &mut app,
        Msg::Loaded(Ok(Box::new(data::prepare(snapshot, &books)))),
    );
    let (finding, selected, id) = {
        let d = &app.loaded().expect("loaded").scoped.diagnosis;
        let p = d
            .proposals
            .iter()
            .filter(|p| !matches!(p.action, Action::Manual { .. }))
            .max_by_key(|p| p.risk)
            .expect("an executable proposal");
        let selected = app
            .proposals_of(&p.finding)
            .iter()
            .position(|x| x.id == p.id)
            .expect("listed under its finding");
        (p.finding.clone(), selected, p.id.clone())
    };
    app.overlay = Some(Overlay::Plan(PlanDialog {
        finding,
        selected,
        confirm: None,
        scroll: 0,
        run: None,
    }));
    (
        Dash {
            app,
            rx,
            remedy,
            decided: Vec::new(),
            scenario: scenario.to_string(),
            reloads: 0,
        },
        id,
    )
}

fn audit(state: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(_, json)| serde_json::from_str(json).expect("entry json"))
        .collect()
}

fn type_id(d: &mut Dash, id: &str) {
    for c in id.chars() {
        d.key(KeyCode::Char(c));
    }
    d.key(KeyCode::Enter);
}

#[test]
fn approving_on_a_live_instance_plans_executes_verifies_and_undoes() {
    let arm = StandIn::start(&root().join("fixtures/scenarios/nsg-block"));
    let state = tempfile::tempdir().expect("tempdir");
    let (mut d, id) = dashboard("nsg-block", Some((&arm, state.path())));
    d.key(KeyCode::Char('A'));
    assert!(matches!(d.run(), Some(Run::Planning { .. })));
    d.wait("the plan", |d| matches!(d.run(), Some(Run::Review { .. })));
    let Some(Run::Review { plan, .. }) = d.run() else {
        unreachable!()
    };
    assert_eq!(plan.risk, Risk::High, "the test wants a high-risk plan");
    assert!(plan.live && plan.ready(), "{plan:?}");
    assert!(arm.writes().is_empty(), "reviewing never writes");
    let text = format!(
        "{:?}",
        apimedic::tui::view::dialog::lines(&d.app, d.app_dialog())
    );
    assert!(text.contains("Type the proposal id"), "{text}");
    assert!(text.contains("Preconditions"), "the plan is shown: {text}");

    // A bare y (and Enter) on a high-risk plan is not an approval.
    d.key(KeyCode::Char('y'));
    d.key(KeyCode::Enter);
    assert!(matches!(d.run(), Some(Run::Review { .. })), "{:?}", d.run());
    assert!(arm.writes().is_empty(), "y alone writes nothing");
    d.key(KeyCode::Backspace);

    type_id(&mut d, &id);
    assert!(
        matches!(d.run(), Some(Run::Running { .. })),
        "{:?}",
        d.run()
    );
    d.wait(
        "the outcome and the verification",
        |d| matches!(d.run(), Some(Run::Done { verify: Some(v), .. }) if !v.ends_with('…')),
    );
    let Some(Run::Done {
        ok,
        lines,
        applied,
        verify,
    }) = d.run().cloned()
    else {
        unreachable!()
    };
    assert!(ok, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("sent PUT")),
        "progress reached the dialog: {lines:?}"
    );
    let (apply_id, _) = applied.expect("an apply to undo");
    assert_eq!(d.reloads, 1, "the instance is re-read before verifying");
    // The reload here reads the scenario folder (the rule still there):
    // the verification says so instead of claiming an all-clear.
    let verify = verify.unwrap_or_default();
    assert!(verify.contains("did NOT clear"), "{verify}");
    assert!(
        verify.contains("(audit "),
        "the verification is audited: {verify}"
    );
    let writes = arm.writes();
    assert!(
        writes
            .iter()
            .any(|w| w.starts_with("PUT") && w.to_ascii_lowercase().contains("/securityrules/")),
        "{writes:?}"
    );
    let log = audit(state.path());
    let tui: Vec<(String, String)> = log
        .iter()
        .filter(|e| e["surface"] == "tui")
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_string(),
                e["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in ["apply", "result", "verify"] {
        assert!(tui.iter().any(|(k, _)| k == want), "{want}: {tui:?}");
    }
    assert!(
        tui.contains(&("result".into(), "succeeded".into())),
        "{tui:?}"
    );
    let apply = log.iter().find(|e| e["kind"] == "apply").unwrap();
    assert_eq!(apply["approval"], "typed the proposal id via tui");

    // Undo: its plan first, then the same approval rule.
    d.key(KeyCode::Char('U'));
    d.wait("the undo plan", |d| {
        matches!(d.run(), Some(Run::Review { .. }))
    });
    let Some(Run::Review { plan, undo_of, .. }) = d.run().cloned() else {
        unreachable!()
    };
    assert_eq!(undo_of.as_deref(), Some(apply_id.as_str()));
    assert_eq!(
        arm.writes().len(),
        writes.len(),
        "the undo plan is not run yet"
    );
    if plan.risk == Risk::High {
        type_id(&mut d, &plan.proposal);
    } else {
        d.key(KeyCode::Char('y'));
    }
    d.wait("the undo", |d| matches!(d.run(), Some(Run::Done { .. })));
    let Some(Run::Done { ok, lines, .. }) = d.run().cloned() else {
        unreachable!()
    };
    assert!(
        ok && lines.iter().any(|l| l.contains("undone")),
        "{lines:?}"
    );
    assert!(
        arm.writes().iter().any(|w| w.starts_with("DELETE")),
        "{:?}",
        arm.writes()
    );
    let log = audit(state.path());
    assert!(
        log.iter()
            .any(|e| e["kind"] == "undo" && e["surface"] == "tui"),
        "{log:?}"
    );
    for e in &log {
        assert!(
            !e.to_string().contains(TOKEN),
            "the token never reaches the log"
        );
    }
}

#[test]
fn on_folder_data_approving_records_only_and_says_so() {
    let (mut d, id) = dashboard("nsg-block", None);
    let text = format!(
        "{:?}",
        apimedic::tui::view::dialog::lines(&d.app, d.app_dialog())
    );
    assert!(text.contains("recorded only, not executed"), "{text}");
    d.key(KeyCode::Char('A'));
    d.key(KeyCode::Char('y'));
    assert!(d.run().is_none(), "nothing runs on folder data");
    let rec = d.decided.pop().expect("the decision is recorded");
    assert_eq!(rec.proposal, id);
    assert!(
        d.app.decisions[&id].label().contains("not executed"),
        "{}",
        d.app.decisions[&id].label()
    );
}

impl Dash {
    fn app_dialog(&self) -> &PlanDialog {
        match &self.app.overlay {
            Some(Overlay::Plan(d)) => d,
            _ => panic!("the dialog is not open"),
        }
    }
}
