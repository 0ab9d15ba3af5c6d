//! Execution at the edge: reads for plans, the ETag binding check, the
//! writes with If-Match, long-running operations followed to the end,
//! retries on 429 and 409, what-if dry runs, the audit entries around every
//! write, and reconciliation of entries a killed process left in progress.

use super::arm::{Arm, ArmError, Reply};
use super::plan::{self, Check, Expect, Facts, Plan, Request, Resource};
use crate::audit::{Entry, Kind, Log, Stored};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a person (or an autonomy rule) approved: the plan's hash, by whom, how.
#[derive(Clone, Debug, PartialEq)]
pub struct Approval {
    pub plan_hash: String,
    /// `cli`, `tui`, `daemon (autonomous)`.
    pub surface: String,
    /// `typed the proposal id`, `--approve <hash>`, `autonomy rule scale_out`.
    pub how: String,
}

/// Progress of an apply, for a terminal line or the TUI.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    Sent {
        method: String,
        path: String,
        status: u16,
    },
    Accepted {
        operation: String,
    },
    Polling {
        status: String,
        percent: Option<f64>,
        elapsed: Duration,
    },
    Waiting {
        reason: String,
        seconds: u64,
    },
    Note(String),
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Sent {
                method,
                path,
                status,
            } => write!(
                f,
                "sent {method} {} -> {status}",
                path.split('?').next().unwrap_or("")
            ),
            Progress::Accepted { operation } => {
                write!(f, "accepted: long-running operation {operation}")
            }
            Progress::Polling {
                status,
                percent,
                elapsed,
            } => write!(
                f,
                "  {status}{} after {}s",
                percent.map(|p| format!(" {p:.0}%")).unwrap_or_default(),
                elapsed.as_secs()
            ),
            Progress::Waiting { reason, seconds } => write!(f, "  waiting {seconds}s: {reason}"),
            Progress::Note(n) => write!(f, "  {n}"),
        }
    }
}

/// How an apply ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Written and re-read as planned (`audit` is the apply entry's id).
    Succeeded { audit: String, after: Vec<Resource> },
    /// Written, but the re-read does not show what was planned, or ARM
    /// refused; `error` says which.
    Failed { audit: String, error: String },
    /// Live state changed since the plan (ETag): nothing written; re-plan.
    Stale { audit: Option<String>, what: String },
    /// Ctrl-C or the wait limit while a long-running operation runs on in
    /// Azure; the next run reconciles it.
    Interrupted {
        audit: String,
        operation: Option<String>,
    },
}

/// One settled in-progress entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Reconciled {
    pub apply: String,
    pub status: String,
    pub message: String,
}

/// The executor: an ARM client, the audit log and who is running it.
pub struct Engine {
    pub arm: Arm,
    pub log: Log,
    pub user: String,
    pub principal: Option<String>,
    /// Poll interval when ARM gives no Retry-After (APIM scale: 30-60 s in production).
    pub poll: Duration,
    /// How long to keep retrying a 409 (another operation on the resource).
    pub busy_wait: Duration,
    /// How long to follow a long-running operation before handing back its id.
    pub max_wait: Duration,
}

impl Engine {
    pub fn new(arm: Arm, log: Log) -> Engine {
        Engine {
            arm,
            log,
            user: crate::audit::os_user(),
            principal: None,
            poll: Duration::from_secs(15),
            busy_wait: Duration::from_secs(120),
            max_wait: Duration::from_secs(3600),
        }
    }

    fn entry(&self, kind: Kind, status: &str, surface: &str) -> Entry {
        Entry {
            kind: Some(kind),
            status: status.into(),
            user: self.user.clone(),
            principal: self.principal.clone(),
            surface: surface.into(),
            ..Entry::default()
        }
    }

    /// GET a resource: its body and ETag, or absent on 404. Retries 429.
    pub async fn read(&self, path: &str) -> Result<Resource, ArmError> {
        let mut tries = 0;
        loop {
            match self
                .arm
                .send("GET", &plan::with_version(path), None, None)
                .await
            {
                Ok(r) => {
                    return Ok(Resource {
                        path: path.to_string(),
                        etag: r.etag,
                        body: r.body,
                    });
                }
                Err(ArmError::Status { status: 404, .. }) => {
                    return Ok(Resource {
                        path: path.to_string(),
                        etag: None,
                        body: None,
                    });
                }
                Err(ArmError::Throttled { retry_after, .. }) if tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_secs(retry_after.unwrap_or(2).min(60))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads every path (a list GET keeps its `value`).
    pub async fn facts(&self, paths: &[String]) -> Result<Facts, ArmError> {
        let mut facts = Facts {
            live: true,
            ..Facts::default()
        };
        for p in paths {
            facts.insert(self.read(p).await?);
        }
        Ok(facts)
    }

    /// Reads the live state a proposal's plan needs and builds the plan.
    pub async fn plan(
        &self,
        proposal: &crate::model::Proposal,
        finding: Option<&crate::model::Finding>,
        snapshot: &crate::model::Snapshot,
        svc: &plan::ServiceId,
    ) -> Result<Plan, String> {
        let reads =
            plan::reads(proposal, svc, snapshot).map_err(|e| format!("cannot plan: {e}"))?;
        let facts = self
            .facts(&reads)
            .await
            .map_err(|e| format!("cannot read the live state: {e}"))?;
        plan::build(proposal, finding, snapshot, svc, &facts)
            .map_err(|e| format!("cannot plan: {e}"))
    }

    /// The plan restoring an applied plan's before-state, against the
    /// live state read now.
    pub async fn plan_undo(&self, applied: &Plan) -> Result<Plan, ArmError> {
        let paths: Vec<String> = applied
            .undo
            .iter()
            .map(|r| r.path.split('?').next().unwrap_or("").to_string())
            .chain(applied.verify.expect.iter().map(|e| e.path.clone()))
            .collect();
        let facts = self.facts(&paths).await?;
        Ok(undo_plan(applied, &facts))
    }

    /// Records a verification on fresh data (the check after an apply).
    pub fn record_verify(
        &self,
        plan: &Plan,
        apply: &str,
        verdict: &super::verify::Verdict,
        surface: &str,
        message: &str,
    ) -> anyhow::Result<Stored> {
        self.log.append(Entry {
            proposal: Some(plan.proposal.clone()),
            finding: Some(plan.finding.clone()),
            target: Some(plan.service.clone()),
            refers_to: Some(apply.to_string()),
            message: message.into(),
            ..self.entry(Kind::Verify, verdict.status(), surface)
        })
    }

    /// Records a dry run (nothing written).
    pub fn record_dry_run(
        &self,
        plan: &Plan,
        surface: &str,
        message: &str,
    ) -> anyhow::Result<Stored> {
        self.log.append(Entry {
            proposal: Some(plan.proposal.clone()),
            finding: Some(plan.finding.clone()),
            target: Some(plan.service.clone()),
            plan_hash: Some(plan.hash.clone()),
            requests: requests_json(&plan.requests),
            message: message.into(),
            ..self.entry(Kind::DryRun, "not_executed", surface)
        })
    }

    /// Records a refusal (a failed check, a rejected prompt, a stale approval).
    pub fn record_refusal(
        &self,
        plan: Option<&Plan>,
        surface: &str,
        message: &str,
    ) -> anyhow::Result<Stored> {
        self.log.append(Entry {
            proposal: plan.map(|p| p.proposal.clone()),
            finding: plan.map(|p| p.finding.clone()),
            target: plan.map(|p| p.service.clone()),
            plan_hash: plan.map(|p| p.hash.clone()),
            message: message.into(),
            ..self.entry(Kind::Refused, "refused", surface)
        })
    }

    /// Runs an ARM what-if for the plan's template: the changes ARM
    /// predicts, as text lines. Never writes.
    pub async fn whatif(
        &self,
        svc: &plan::ServiceId,
        plan: &Plan,
    ) -> Result<Vec<String>, ArmError> {
        let Some(template) = &plan.whatif else {
            return Ok(Vec::new());
        };
        let name = format!("apimedic-{}", &plan.hash[..12]);
        let reply = self
            .send_retrying(
                "POST",
                &svc.whatif(&name),
                None,
                Some(template),
                &mut |_| {},
            )
            .await?;
        let body = match reply.operation.clone() {
            Some(op) if reply.status == 202 => {
                let started = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_secs(reply.retry_after.unwrap_or(1).min(30)))
                        .await;
                    let r = self.arm.send("GET", &op, None, None).await?;
                    if r.status != 202 {
                        break r.body.unwrap_or(Value::Null);
                    }
                    if started.elapsed() > Duration::from_secs(300) {
                        return Err(ArmError::Transport {
                            path: op,
                            message: "what-if still running after 5 minutes".into(),
                        });
                    }
                }
            }
            _ => reply.body.unwrap_or(Value::Null),
        };
        Ok(render_whatif(&body))
    }

    /// Sends one request, waiting out 429 (Retry-After) and, for up to
    /// `busy_wait`, 409 (another operation running).
    async fn send_retrying(
        &self,
        method: &str,
        path: &str,
        if_match: Option<&str>,
        body: Option<&Value>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Reply, ArmError> {
        let started = Instant::now();
        let mut throttled = 0;
        loop {
            match self.arm.send(method, path, if_match, body).await {
                Err(ArmError::Throttled {
                    retry_after,
                    message,
                    path: p,
                }) => {
                    throttled += 1;
                    if throttled > 6 {
                        return Err(ArmError::Throttled {
                            retry_after,
                            message,
                            path: p,
                        });
                    }
                    let secs = retry_after.unwrap_or(5).clamp(1, 120);
                    progress(Progress::Waiting {
                        reason: format!("throttled (429): {message}"),
                        seconds: secs,
                    });
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                }
                Err(ArmError::Busy {
                    retry_after,
                    message,
                    path: p,
                }) => {
                    let secs = retry_after.unwrap_or(15).clamp(1, 60);
                    if started.elapsed() + Duration::from_secs(secs) > self.busy_wait {
                        return Err(ArmError::Busy {
                            retry_after,
                            message,
                            path: p,
                        });
                    }
                    progress(Progress::Waiting {
                        reason: format!("another operation is running (409): {message}"),
                        seconds: secs,
                    });
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                }
                other => return other,
            }
        }
    }

    /// Whether the live state still is the plan's before-state: `None` if
    /// so, else what changed.
    pub async fn changed_since(&self, plan: &Plan) -> Result<Option<String>, ArmError> {
        for b in &plan.before {
            let now = self.read(&b.path).await?;
            let same = match (&b.etag, &now.etag) {
                (Some(a), Some(n)) => a == n,
                _ => b.body == now.body,
            };
            if !same {
                return Ok(Some(format!(
                    "{} changed since the plan (ETag {} -> {})",
                    b.path,
                    b.etag.as_deref().unwrap_or("none"),
                    now.etag.as_deref().unwrap_or(if now.body.is_none() {
                        "deleted"
                    } else {
                        "none"
                    })
                )));
            }
        }
        Ok(None)
    }

    /// Executes an approved plan. Refuses a plan with a failed check or an
    /// approval for another hash; re-checks the before-state first (any
    /// change: [`Outcome::Stale`], nothing written).
    pub async fn apply(
        &self,
        plan: &Plan,
        approval: &Approval,
        kind: Kind,
        refers_to: Option<String>,
        progress: &mut (dyn FnMut(Progress) + Send),
        cancel: &CancellationToken,
    ) -> anyhow::Result<Outcome> {
        if approval.plan_hash != plan.hash {
            self.record_refusal(
                Some(plan),
                &approval.surface,
                "the approval is for another plan (hash differs)",
            )?;
            anyhow::bail!(
                "the approval names plan {} but the plan is {}: approve the plan as it is now",
                short(&approval.plan_hash),
                short(&plan.hash)
            );
        }
        if !plan.live {
            anyhow::bail!(
                "this plan was computed from exported files; plan it against the live instance first"
            );
        }
        if let Some(bad) = plan.checks.iter().find(|c| !c.ok) {
            self.record_refusal(
                Some(plan),
                &approval.surface,
                &format!("precondition failed: {}: {}", bad.name, bad.detail),
            )?;
            anyhow::bail!("precondition failed: {}: {}", bad.name, bad.detail);
        }
        if let Some(what) = self.changed_since(plan).await? {
            let s = self.record_refusal(
                Some(plan),
                &approval.surface,
                &format!("stale plan: {what}"),
            )?;
            return Ok(Outcome::Stale {
                audit: Some(s.id),
                what,
            });
        }
        let start = self.log.append(Entry {
            proposal: Some(plan.proposal.clone()),
            finding: Some(plan.finding.clone()),
            target: Some(plan.service.clone()),
            plan_hash: Some(plan.hash.clone()),
            refers_to,
            requests: requests_json(&plan.requests),
            before: plan.before.iter().map(resource_json).collect(),
            plan: serde_json::to_value(plan).ok(),
            approval: Some(format!("{} via {}", approval.how, approval.surface)),
            message: format!("{}: {}", plan.action, plan.title),
            ..self.entry(kind, "in_progress", &approval.surface)
        })?;
        let done = |status: &str, message: String, operation: Option<String>, after: Vec<Value>| {
            self.log.append(Entry {
                proposal: Some(plan.proposal.clone()),
                target: Some(plan.service.clone()),
                plan_hash: Some(plan.hash.clone()),
                refers_to: Some(start.id.clone()),
                operation,
                after,
                message,
                ..self.entry(Kind::Result, status, &approval.surface)
            })
        };
        for req in &plan.requests {
            let reply = tokio::select! {
                r = self.send_retrying(&req.method, &req.path, req.if_match.as_deref(), req.body.as_ref(), progress) => r,
                _ = cancel.cancelled() => {
                    // The request may or may not have reached ARM.
                    done("interrupted", format!("interrupted while sending {} {}; the next run reconciles by reading state", req.method, req.path), None, Vec::new())?;
                    return Ok(Outcome::Interrupted { audit: start.id.clone(), operation: None });
                }
            };
            let reply = match reply {
                Ok(r) => r,
                Err(ArmError::Stale { path }) => {
                    done(
                        "stale",
                        format!("412 on {path}: changed since the plan; nothing written"),
                        None,
                        Vec::new(),
                    )?;
                    return Ok(Outcome::Stale {
                        audit: Some(start.id.clone()),
                        what: format!("{path} changed since the plan (412 Precondition Failed)"),
                    });
                }
                Err(e) => {
                    let msg = match &e {
                        ArmError::Forbidden { .. } => format!(
                            "{e}. The signed-in principal ({}) lacks the role to write this: assign `{}` on the resource or its resource group",
                            self.principal.as_deref().unwrap_or("unknown"),
                            plan.role
                        ),
                        ArmError::Busy { .. } => format!(
                            "{e}; still busy after {} s: wait for the running operation to finish, then re-plan",
                            self.busy_wait.as_secs()
                        ),
                        _ => e.to_string(),
                    };
                    done("failed", msg.clone(), None, Vec::new())?;
                    return Ok(Outcome::Failed {
                        audit: start.id.clone(),
                        error: msg,
                    });
                }
            };
            progress(Progress::Sent {
                method: req.method.clone(),
                path: req.path.clone(),
                status: reply.status,
            });
            let running = reply
                .body
                .as_ref()
                .and_then(|b| b.pointer("/properties/provisioningState"))
                .and_then(Value::as_str)
                .is_some_and(|s| !terminal(s));
            if let Some(op) = reply
                .operation
                .clone()
                .filter(|_| reply.status == 201 || reply.status == 202 || running)
            {
                self.log.append(Entry {
                    proposal: Some(plan.proposal.clone()),
                    target: Some(plan.service.clone()),
                    refers_to: Some(start.id.clone()),
                    operation: Some(op.clone()),
                    message: format!(
                        "{} {} accepted ({}); following {op}",
                        req.method, req.path, reply.status
                    ),
                    ..self.entry(Kind::Accepted, "accepted", &approval.surface)
                })?;
                progress(Progress::Accepted {
                    operation: op.clone(),
                });
                match self
                    .follow(
                        &op,
                        reply.status_object,
                        reply.retry_after,
                        progress,
                        cancel,
                    )
                    .await
                {
                    Follow::Done => {}
                    Follow::Failed(why) => {
                        done(
                            "failed",
                            format!("the operation failed: {why}"),
                            Some(op),
                            Vec::new(),
                        )?;
                        return Ok(Outcome::Failed {
                            audit: start.id.clone(),
                            error: why,
                        });
                    }
                    Follow::Interrupted(why) => {
                        done(
                            "interrupted",
                            format!("{why}; the operation continues in Azure: {op}"),
                            Some(op.clone()),
                            Vec::new(),
                        )?;
                        return Ok(Outcome::Interrupted {
                            audit: start.id.clone(),
                            operation: Some(op),
                        });
                    }
                }
            } else if running {
                // 200 with a running provisioningState and no operation URL:
                // watch the resource itself.
                let path = req.path.split('?').next().unwrap_or("").to_string();
                if let Follow::Interrupted(why) =
                    self.follow_resource(&path, progress, cancel).await
                {
                    done("interrupted", why, None, Vec::new())?;
                    return Ok(Outcome::Interrupted {
                        audit: start.id.clone(),
                        operation: None,
                    });
                }
            }
        }
        let (after, misses) = self.check(&plan.verify.expect).await?;
        let after_json: Vec<Value> = after.iter().map(resource_json).collect();
        if misses.is_empty() {
            done(
                "succeeded",
                format!("{} done; re-read shows the planned state", plan.action),
                None,
                after_json,
            )?;
            Ok(Outcome::Succeeded {
                audit: start.id.clone(),
                after,
            })
        } else {
            let error = format!("written, but the re-read differs: {}", misses.join("; "));
            done("failed", error.clone(), None, after_json)?;
            Ok(Outcome::Failed {
                audit: start.id.clone(),
                error,
            })
        }
    }

    /// Re-reads the expectations' resources: what was read and what does not match.
    pub async fn check(&self, expect: &[Expect]) -> Result<(Vec<Resource>, Vec<String>), ArmError> {
        let mut read: Vec<Resource> = Vec::new();
        let mut misses = Vec::new();
        for e in expect {
            if !read
                .iter()
                .any(|r| plan::key(&r.path) == plan::key(&e.path))
            {
                read.push(self.read(&e.path).await?);
            }
            let r = read
                .iter()
                .find(|r| plan::key(&r.path) == plan::key(&e.path))
                .expect("read above");
            if let Some(miss) = mismatch(r, e) {
                misses.push(miss);
            }
        }
        Ok((read, misses))
    }

    async fn follow(
        &self,
        op: &str,
        status_object: bool,
        first_wait: Option<u64>,
        progress: &mut (dyn FnMut(Progress) + Send),
        cancel: &CancellationToken,
    ) -> Follow {
        let started = Instant::now();
        let mut wait = first_wait.map(Duration::from_secs).unwrap_or(self.poll);
        let mut errors = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait.min(Duration::from_secs(60))) => {}
                _ = cancel.cancelled() => return Follow::Interrupted("interrupted (Ctrl-C)".into()),
            }
            if started.elapsed() > self.max_wait {
                return Follow::Interrupted(format!(
                    "still running after {} min",
                    self.max_wait.as_secs() / 60
                ));
            }
            let r = tokio::select! {
                r = self.arm.send("GET", op, None, None) => r,
                _ = cancel.cancelled() => return Follow::Interrupted("interrupted (Ctrl-C)".into()),
            };
            match r {
                Ok(r) => {
                    errors = 0;
                    wait = r.retry_after.map(Duration::from_secs).unwrap_or(self.poll);
                    let status = r
                        .body
                        .as_ref()
                        .and_then(|b| b.get("status"))
                        .and_then(Value::as_str);
                    match status {
                        Some(s) if status_object || r.status == 200 => {
                            progress(Progress::Polling {
                                status: s.to_string(),
                                percent: r
                                    .body
                                    .as_ref()
                                    .and_then(|b| b.get("percentComplete"))
                                    .and_then(Value::as_f64),
                                elapsed: started.elapsed(),
                            });
                            if s.eq_ignore_ascii_case("Succeeded") {
                                return Follow::Done;
                            }
                            if s.eq_ignore_ascii_case("Failed")
                                || s.eq_ignore_ascii_case("Canceled")
                            {
                                let why = r
                                    .body
                                    .as_ref()
                                    .and_then(|b| b.pointer("/error/message"))
                                    .and_then(Value::as_str)
                                    .unwrap_or("no error message");
                                return Follow::Failed(format!("{s}: {why}"));
                            }
                        }
                        _ => {
                            // Location flavour: 202 while running, 200/204 when done.
                            progress(Progress::Polling {
                                status: if r.status == 202 {
                                    "InProgress".into()
                                } else {
                                    "Succeeded".into()
                                },
                                percent: None,
                                elapsed: started.elapsed(),
                            });
                            if r.status != 202 {
                                return Follow::Done;
                            }
                        }
                    }
                }
                Err(ArmError::Throttled { retry_after, .. }) => {
                    wait = Duration::from_secs(retry_after.unwrap_or(10));
                }
                Err(e) => {
                    errors += 1;
                    progress(Progress::Note(format!("polling failed ({e}); retrying")));
                    if errors >= 5 {
                        return Follow::Interrupted(format!("cannot poll the operation: {e}"));
                    }
                }
            }
        }
    }

    async fn follow_resource(
        &self,
        path: &str,
        progress: &mut (dyn FnMut(Progress) + Send),
        cancel: &CancellationToken,
    ) -> Follow {
        let started = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.poll) => {}
                _ = cancel.cancelled() => return Follow::Interrupted("interrupted (Ctrl-C)".into()),
            }
            if started.elapsed() > self.max_wait {
                return Follow::Interrupted(format!(
                    "{path} still updating after {} min",
                    self.max_wait.as_secs() / 60
                ));
            }
            if let Ok(r) = self.read(path).await {
                let s = r
                    .body
                    .as_ref()
                    .and_then(|b| b.pointer("/properties/provisioningState"))
                    .and_then(Value::as_str)
                    .unwrap_or("Succeeded")
                    .to_string();
                progress(Progress::Polling {
                    status: s.clone(),
                    percent: None,
                    elapsed: started.elapsed(),
                });
                if terminal(&s) {
                    return Follow::Done;
                }
            }
        }
    }

    /// Apply/undo entries left in progress (a killed process) or
    /// interrupted, settled by reading state: never sent again.
    pub async fn reconcile(&self) -> anyhow::Result<Vec<Reconciled>> {
        let entries = self.log.read()?;
        let mut out = Vec::new();
        for p in pending(&entries) {
            let Some(plan) = self
                .log
                .plan_of(p)
                .ok()
                .flatten()
                .and_then(|v| serde_json::from_value::<Plan>(v).ok())
            else {
                continue;
            };
            if plan::key(&plan.service) != plan::key(&p.entry.target.clone().unwrap_or_default()) {
                continue;
            }
            // A long-running operation still running stays pending.
            let op = entries
                .iter()
                .filter(|e| e.entry.refers_to.as_deref() == Some(p.id.as_str()))
                .filter_map(|e| e.entry.operation.clone())
                .next_back();
            if let Some(op) = &op
                && let Ok(r) = self.arm.send("GET", op, None, None).await
            {
                let status = r
                    .body
                    .as_ref()
                    .and_then(|b| b.get("status"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if r.status == 202 || (!status.is_empty() && !terminal(status)) {
                    out.push(Reconciled {
                        apply: p.id.clone(),
                        status: "running".into(),
                        message: format!("still running in Azure: {op}"),
                    });
                    continue;
                }
            }
            let (_, misses) = self.check(&plan.verify.expect).await?;
            let (status, message) = if misses.is_empty() {
                (
                    "applied",
                    "the live state shows the planned change: it was applied; not sending it again"
                        .to_string(),
                )
            } else if self.changed_since(&plan).await?.is_none() {
                (
                    "not_applied",
                    "the live state is still the before-state: the change was not applied"
                        .to_string(),
                )
            } else {
                (
                    "diverged",
                    format!(
                        "the live state is neither the before- nor the planned state: {}",
                        misses.join("; ")
                    ),
                )
            };
            self.log.append(Entry {
                proposal: Some(plan.proposal.clone()),
                target: Some(plan.service.clone()),
                plan_hash: Some(plan.hash.clone()),
                refers_to: Some(p.id.clone()),
                operation: op,
                message: message.clone(),
                ..self.entry(Kind::Reconcile, status, "cli")
            })?;
            out.push(Reconciled {
                apply: p.id.clone(),
                status: status.into(),
                message,
            });
        }
        Ok(out)
    }
}

enum Follow {
    Done,
    Failed(String),
    Interrupted(String),
}

fn terminal(s: &str) -> bool {
    ["Succeeded", "Failed", "Canceled"]
        .iter()
        .any(|t| s.eq_ignore_ascii_case(t))
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

fn requests_json(reqs: &[Request]) -> Vec<Value> {
    reqs.iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect()
}

fn resource_json(r: &Resource) -> Value {
    json!({"path": r.path, "etag": r.etag, "body": r.body})
}

/// Why a re-read resource does not meet an expectation; `None` when it does.
/// A `null` value at pointer `""` means "the resource is absent".
pub fn mismatch(r: &Resource, e: &Expect) -> Option<String> {
    if e.pointer.is_empty() && e.value.is_null() {
        return r.body.as_ref().map(|_| format!("{} still exists", e.path));
    }
    let Some(body) = &r.body else {
        return Some(format!("{} does not exist", e.path));
    };
    let got = body.pointer(&e.pointer);
    let same = match (got, &e.value) {
        (Some(Value::String(a)), Value::String(b)) if e.pointer.ends_with("/value") => {
            plan::normalise_xml(a) == plan::normalise_xml(b)
        }
        (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Some(g), v) => {
            g == v || g.to_string().trim_matches('"') == v.to_string().trim_matches('"')
        }
        (None, _) => false,
    };
    (!same).then(|| {
        format!(
            "{}{} is {} (planned {})",
            e.path.rsplit('/').next().unwrap_or(""),
            e.pointer,
            got.map(short_json).unwrap_or_else(|| "absent".into()),
            short_json(&e.value)
        )
    })
}

fn short_json(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Apply/undo entries with no settling entry after them.
pub fn pending(entries: &[Stored]) -> Vec<&Stored> {
    entries
        .iter()
        .filter(|e| matches!(e.entry.kind, Some(Kind::Apply) | Some(Kind::Undo)))
        .filter(|e| {
            let last = entries.iter().rfind(|x| {
                x.entry.refers_to.as_deref() == Some(e.id.as_str())
                    && matches!(x.entry.kind, Some(Kind::Result) | Some(Kind::Reconcile))
            });
            match last {
                None => true,
                Some(x) => matches!(x.entry.status.as_str(), "interrupted" | "running"),
            }
        })
        .collect()
}

/// The latest settled apply of a proposal that no undo has reversed: the
/// reason not to apply it twice.
pub fn already_applied<'a>(entries: &'a [Stored], proposal: &str) -> Option<&'a Stored> {
    let applied: Vec<&Stored> = entries
        .iter()
        .filter(|e| {
            e.entry.kind == Some(Kind::Apply) && e.entry.proposal.as_deref() == Some(proposal)
        })
        .filter(|e| {
            entries.iter().any(|x| {
                x.entry.refers_to.as_deref() == Some(e.id.as_str())
                    && matches!(
                        (x.entry.kind, x.entry.status.as_str()),
                        (Some(Kind::Result), "succeeded") | (Some(Kind::Reconcile), "applied")
                    )
            })
        })
        .collect();
    let last = *applied.last()?;
    let undone = entries.iter().any(|u| {
        u.entry.kind == Some(Kind::Undo)
            && u.entry.refers_to.as_deref() == Some(last.id.as_str())
            && entries.iter().any(|x| {
                x.entry.refers_to.as_deref() == Some(u.id.as_str())
                    && matches!(
                        (x.entry.kind, x.entry.status.as_str()),
                        (Some(Kind::Result), "succeeded") | (Some(Kind::Reconcile), "applied")
                    )
            })
    });
    (!undone).then_some(last)
}

/// The plan that restores an applied plan's before-state, against the
/// resources as they are now (`facts` holds the undo requests' paths).
pub fn undo_plan(applied: &Plan, facts: &Facts) -> Plan {
    let mut checks = Vec::new();
    let mut before = Vec::new();
    let mut requests = Vec::new();
    let mut expect = Vec::new();
    // The state now should be what the apply left.
    let misses: Vec<String> = applied
        .verify
        .expect
        .iter()
        .filter_map(|e| {
            let r = facts.get(&e.path).cloned().unwrap_or(Resource {
                path: e.path.clone(),
                etag: None,
                body: None,
            });
            mismatch(&r, e)
        })
        .collect();
    checks.push(Check {
        name: "unchanged since the apply".into(),
        ok: misses.is_empty(),
        detail: if misses.is_empty() {
            "the live state is what the apply left".into()
        } else {
            format!(
                "changed since the apply, undo would overwrite it: {}",
                misses.join("; ")
            )
        },
    });
    for u in &applied.undo {
        let path = u.path.split('?').next().unwrap_or("").to_string();
        let now = facts.get(&path).cloned().unwrap_or(Resource {
            path: path.clone(),
            etag: None,
            body: None,
        });
        let apim = path
            .to_ascii_lowercase()
            .contains("/microsoft.apimanagement/");
        let mut req = u.clone();
        req.if_match = if apim {
            now.etag.clone().or(Some("*".into()))
        } else {
            now.body
                .as_ref()
                .and_then(|b| b.get("etag"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        match &u.body {
            Some(b) => {
                for (pointer, value) in leaves(b, String::new()) {
                    expect.push(Expect {
                        path: path.clone(),
                        pointer,
                        value,
                    });
                }
            }
            None => expect.push(Expect {
                path: path.clone(),
                pointer: String::new(),
                value: Value::Null,
            }),
        }
        before.push(now);
        requests.push(req);
    }
    let diff = applied
        .diff
        .lines()
        .map(|l| {
            if let Some(r) = l.strip_prefix('+') {
                format!("-{r}")
            } else if let Some(r) = l.strip_prefix('-') {
                format!("+{r}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = Plan {
        proposal: applied.proposal.clone(),
        finding: applied.finding.clone(),
        title: format!("Undo: {}", applied.title),
        action: format!("undo_{}", applied.action),
        service: applied.service.clone(),
        live: facts.live,
        before,
        requests,
        diff,
        checks,
        warnings: Vec::new(),
        risk: applied.risk,
        blast_radius: applied.blast_radius.clone(),
        expected: "the before-state of the apply is restored".into(),
        verify: plan::Verify {
            expect,
            finding: applied.finding.clone(),
            kind: applied.verify.kind,
            seen_until: applied.verify.seen_until,
            window_minutes: applied.verify.window_minutes,
            how: "re-read the restored resources and compare with the saved before-state".into(),
        },
        undo: applied
            .requests
            .iter()
            .map(|r| Request {
                if_match: None,
                ..r.clone()
            })
            .collect(),
        whatif: None,
        role: applied.role.clone(),
        hash: String::new(),
    };
    p.seal()
}

/// Every scalar leaf of a JSON value with its pointer (arrays by index).
fn leaves(v: &Value, at: String) -> Vec<(String, Value)> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| {
                leaves(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                )
            })
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .flat_map(|(i, v)| leaves(v, format!("{at}/{i}")))
            .collect(),
        other => vec![(at, other.clone())],
    }
}

/// ARM what-if changes as lines: `Modify …/service/x: sku.capacity 1 -> 2`.
pub fn render_whatif(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = body.pointer("/error/message").and_then(Value::as_str) {
        out.push(format!("what-if error: {e}"));
    }
    let status = body.get("status").and_then(Value::as_str).unwrap_or("");
    if !status.is_empty() && !status.eq_ignore_ascii_case("Succeeded") {
        out.push(format!("what-if status: {status}"));
    }
    for c in body
        .pointer("/properties/changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = c["resourceId"].as_str().unwrap_or("?");
        let kind = c["changeType"].as_str().unwrap_or("?");
        out.push(format!("{kind} {id}"));
        for d in c["delta"].as_array().into_iter().flatten() {
            out.push(format!(
                "    {} {}: {} -> {}",
                d["propertyChangeType"].as_str().unwrap_or("?"),
                d["path"].as_str().unwrap_or("?"),
                short_json(&d["before"]),
                short_json(&d["after"])
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, kind: Kind, status: &str, proposal: &str, refers: Option<&str>) -> Stored {
        Stored {
            id: id.into(),
            hash: id.into(),
            line: 0,
            entry: Entry {
                kind: Some(kind),
                status: status.into(),
                proposal: Some(proposal.into()),
                refers_to: refers.map(str::to_string),
                ..Entry::default()
            },
        }
    }

    #[test]
    fn pending_and_applied_follow_the_entries() {
        let mut log = vec![stored("a1", Kind::Apply, "in_progress", "p", None)];
        assert_eq!(pending(&log).len(), 1);
        assert!(already_applied(&log, "p").is_none());
        log.push(stored("r1", Kind::Result, "interrupted", "p", Some("a1")));
        assert_eq!(pending(&log).len(), 1, "interrupted stays pending");
        log.push(stored("c1", Kind::Reconcile, "applied", "p", Some("a1")));
        assert!(pending(&log).is_empty());
        assert_eq!(
            already_applied(&log, "p").map(|s| s.id.as_str()),
            Some("a1")
        );
        log.push(stored("u1", Kind::Undo, "in_progress", "p", Some("a1")));
        log.push(stored("r2", Kind::Result, "succeeded", "p", Some("u1")));
        assert!(already_applied(&log, "p").is_none(), "undone");
    }

    #[test]
    fn mismatch_compares_values_xml_and_absence() {
        let r = Resource {
            path: "/x".into(),
            etag: None,
            body: Some(json!({"sku": {"capacity": 2}, "properties": {"value": "<a>\n <b/></a>"}})),
        };
        let e = |p: &str, v: Value| Expect {
            path: "/x".into(),
            pointer: p.into(),
            value: v,
        };
        assert!(mismatch(&r, &e("/sku/capacity", json!(2))).is_none());
        assert!(mismatch(&r, &e("/sku/capacity", json!("2"))).is_none());
        assert!(
            mismatch(&r, &e("/sku/capacity", json!(3)))
                .unwrap()
                .contains("planned 3")
        );
        assert!(mismatch(&r, &e("/properties/value", json!("<a><b/></a>"))).is_none());
        assert!(
            mismatch(&r, &e("", Value::Null))
                .unwrap()
                .contains("still exists")
        );
        let gone = Resource { body: None, ..r };
        assert!(mismatch(&gone, &e("", Value::Null)).is_none());
    }

    #[test]
    fn whatif_renders_changes() {
        let body = json!({"status": "Succeeded", "properties": {"changes": [{"resourceId": "/s/x", "changeType": "Modify",
            "delta": [{"path": "sku.capacity", "propertyChangeType": "Modify", "before": 1, "after": 2}]}]}});
        assert_eq!(
            render_whatif(&body),
            vec!["Modify /s/x", "    Modify sku.capacity: 1 -> 2"]
        );
    }
}
