//! The approve key's edge: when the dashboard is connected to a live
//! instance, a thread of its own plans a proposal against the live state
//! (ARM reads), executes the plan a person approved in the dialog through
//! [`crate::remediate::exec::Engine::apply`] (If-Match, long-running
//! operations, 409/412/429/403), reports progress line by line, verifies
//! the result on the dashboard's data and plans the undo. Every step is
//! audited like the CLI's (surface `tui`). The UI thread never waits on
//! any of it: jobs come in as [`Job`], answers go out as `Msg::Remedy`.
//!
//! On exported folders there is no live instance: the dialog records the
//! decision only and says so; this thread is never started.

use super::app::Msg;
use crate::audit::{Kind, Log};
use crate::model::{Finding, Proposal, Snapshot};
use crate::playbook::Playbooks;
use crate::remediate::arm::Arm;
use crate::remediate::exec::{self, Approval, Engine, Outcome};
use crate::remediate::plan::{Plan, ServiceId};
use crate::remediate::{TokenSource, verify};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The surface name the audit log records for the dashboard.
pub const SURFACE: &str = "tui";

/// The live instance the dashboard may act on.
#[derive(Clone)]
pub struct Live {
    /// The API Management service id.
    pub service: String,
    /// The ARM endpoint (`https://management.azure.com`; loopback in tests).
    pub arm_base: String,
    pub tokens: Arc<dyn TokenSource>,
    /// Where the audit log is (the same as `apimedic remediate log` reads).
    pub state_dir: PathBuf,
    /// Poll interval when ARM gives no Retry-After.
    pub poll: Duration,
    /// How long to follow a long-running operation.
    pub max_wait: Duration,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("service", &self.service)
            .field("arm_base", &self.arm_base)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

/// A job for the remediation thread.
#[derive(Clone, Debug)]
pub enum Job {
    /// Read the live state and plan this proposal.
    Plan {
        proposal: Box<Proposal>,
        finding: Option<Box<Finding>>,
        snapshot: Arc<Snapshot>,
    },
    /// Plan restoring the before-state of the apply `apply`.
    PlanUndo { apply: String, plan: Box<Plan> },
    /// Execute an approved plan (`undo_of`: the apply it undoes).
    Apply {
        plan: Box<Plan>,
        how: String,
        undo_of: Option<String>,
    },
    /// Judge on the dashboard's data whether the finding cleared.
    Verify {
        apply: String,
        plan: Box<Plan>,
        snapshot: Arc<Snapshot>,
    },
}

impl Job {
    fn key(&self) -> (u8, &str) {
        match self {
            Job::Plan { proposal, .. } => (0, &proposal.id),
            Job::PlanUndo { apply, .. } => (1, apply),
            Job::Apply { plan, .. } => (2, &plan.hash),
            Job::Verify { apply, .. } => (3, apply),
        }
    }
}

impl PartialEq for Job {
    fn eq(&self, other: &Job) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Job {}

/// What the thread reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A plan to review (`undo_of`: it undoes that apply), or why none.
    Planned {
        plan: Result<Box<Plan>, String>,
        undo_of: Option<String>,
    },
    /// One line of progress of a running apply or undo.
    Progress(String),
    /// An apply or undo ended. `applied`: the apply's audit id and plan when
    /// an apply succeeded (verify and undo are offered).
    Finished {
        ok: bool,
        lines: Vec<String>,
        applied: Option<(String, Box<Plan>)>,
    },
    /// The verification's sentence.
    Verified(String),
}

/// The handle the UI loop sends jobs to.
pub struct Remedy {
    jobs: Sender<Job>,
}

impl Remedy {
    /// Starts the thread; its answers arrive on `out` as `Msg::Remedy`.
    pub fn spawn(live: Live, playbooks: Playbooks, out: Sender<Msg>) -> Remedy {
        let (jobs, rx) = channel::<Job>();
        std::thread::spawn(move || serve(live, playbooks, rx, out));
        Remedy { jobs }
    }

    pub fn send(&self, job: Job) {
        let _ = self.jobs.send(job);
    }
}

fn serve(live: Live, playbooks: Playbooks, rx: Receiver<Job>, out: Sender<Msg>) {
    let send = |e: Event| out.send(Msg::Remedy(e)).is_ok();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = send(Event::Finished {
                ok: false,
                lines: vec![format!("cannot start the async runtime: {e}")],
                applied: None,
            });
            return;
        }
    };
    let engine = match Arm::new(&live.arm_base, live.tokens.clone()) {
        Ok(arm) => {
            let mut e = Engine::new(arm, Log::new(&live.state_dir));
            e.poll = live.poll;
            e.max_wait = live.max_wait;
            e.principal = rt.block_on(e.arm.principal());
            e
        }
        Err(e) => {
            let _ = send(Event::Finished {
                ok: false,
                lines: vec![e],
                applied: None,
            });
            return;
        }
    };
    let svc = ServiceId::parse(&live.service);
    let cancel = CancellationToken::new();
    let mut reconciled = false;
    while let Ok(job) = rx.recv() {
        // Entries a killed run left in progress are settled first (by
        // reading state), as every CLI run does.
        if !reconciled {
            reconciled = true;
            if let Ok(done) = rt.block_on(engine.reconcile()) {
                for r in done {
                    send(Event::Progress(format!(
                        "reconciled audit entry {}: {} — {}",
                        r.apply, r.status, r.message
                    )));
                }
            }
        }
        let event = match job {
            Job::Plan {
                proposal,
                finding,
                snapshot,
            } => {
                let plan = match &svc {
                    Ok(svc) => rt
                        .block_on(engine.plan(&proposal, finding.as_deref(), &snapshot, svc))
                        .map(Box::new),
                    Err(e) => Err(e.clone()),
                };
                Event::Planned {
                    plan,
                    undo_of: None,
                }
            }
            Job::PlanUndo { apply, plan } => Event::Planned {
                plan: rt
                    .block_on(engine.plan_undo(&plan))
                    .map(Box::new)
                    .map_err(|e| format!("cannot read the live state: {e}")),
                undo_of: Some(apply),
            },
            Job::Apply { plan, how, undo_of } => {
                apply(&engine, &rt, &plan, how, undo_of, &cancel, &out)
            }
            Job::Verify {
                apply,
                plan,
                snapshot,
            } => {
                let (verdict, message) =
                    verify::on_fresh(&plan, &apply, &snapshot, &playbooks, None);
                let message = match engine.record_verify(&plan, &apply, &verdict, SURFACE, &message)
                {
                    Ok(s) => format!("{message} (audit {})", s.id),
                    Err(e) => format!("{message} (not audited: {e:#})"),
                };
                Event::Verified(message)
            }
        };
        if !send(event) {
            return;
        }
    }
}

fn apply(
    engine: &Engine,
    rt: &tokio::runtime::Runtime,
    plan: &Plan,
    how: String,
    undo_of: Option<String>,
    cancel: &CancellationToken,
    out: &Sender<Msg>,
) -> Event {
    let fail = |lines: Vec<String>| Event::Finished {
        ok: false,
        lines,
        applied: None,
    };
    let entries = match engine.log.read() {
        Ok(e) => e,
        Err(e) => return fail(vec![format!("cannot read the audit log: {e:#}")]),
    };
    if undo_of.is_none()
        && let Some(prev) = exec::already_applied(&entries, &plan.proposal)
    {
        return fail(vec![format!(
            "proposal {} was applied already (audit {} at {}): not applying it twice; undo it first",
            plan.proposal, prev.id, prev.entry.time
        )]);
    }
    if let Some(p) = exec::pending(&entries)
        .into_iter()
        .find(|p| p.entry.proposal.as_deref() == Some(plan.proposal.as_str()))
    {
        return fail(vec![format!(
            "an apply of proposal {} is still in progress (audit {}): not starting another",
            plan.proposal, p.id
        )]);
    }
    let approval = Approval {
        plan_hash: plan.hash.clone(),
        surface: SURFACE.into(),
        how,
    };
    let kind = if undo_of.is_some() {
        Kind::Undo
    } else {
        Kind::Apply
    };
    let mut progress = |p: exec::Progress| {
        let _ = out.send(Msg::Remedy(Event::Progress(p.to_string())));
    };
    let outcome = rt.block_on(engine.apply(
        plan,
        &approval,
        kind,
        undo_of.clone(),
        &mut progress,
        cancel,
    ));
    let what = if undo_of.is_some() { "undo" } else { "apply" };
    match outcome {
        Err(e) => fail(vec![format!("not applied: {e:#}")]),
        Ok(Outcome::Succeeded { audit, .. }) => Event::Finished {
            ok: true,
            lines: vec![match &undo_of {
                Some(of) => format!("undone (audit {audit}): the before-state of {of} is restored"),
                None => format!(
                    "applied (audit {audit}): the re-read shows the planned state. Verify: {}",
                    plan.verify.how
                ),
            }],
            applied: undo_of.is_none().then(|| (audit, Box::new(plan.clone()))),
        },
        Ok(Outcome::Failed { audit, error }) => {
            fail(vec![format!("{what} failed (audit {audit}): {error}")])
        }
        Ok(Outcome::Stale { what: changed, .. }) => fail(vec![
            format!("live state changed since the plan: {changed}"),
            "nothing was written: close and approve again to re-plan".into(),
        ]),
        Ok(Outcome::Interrupted { audit, operation }) => fail(vec![format!(
            "stopped watching (audit {audit}){}; the next run reconciles it",
            operation
                .map(|o| format!("; the operation continues in Azure: {o}"))
                .unwrap_or_default()
        )]),
    }
}
