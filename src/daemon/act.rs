//! The daemon's opt-in autonomy: off unless the config's `[autonomy]`
//! section names a policy file (`remediate::autonomy`) and the APIM service
//! to act on. On each tick's findings, the proposals of the actions the
//! policy names are planned against the live state and run only when
//! [`autonomy::decide`] allows them (risk, max step, capacity ceiling, once
//! per interval, quiet hours). Every run — and every refusal, once per
//! proposal and reason — is audited like a manual one, under the surface
//! `daemon (autonomous)`.
//!
//! Only this file of the daemon reaches `remediate`; the alerting
//! (alerts.rs, sink.rs) never does, and neither a model nor an alert
//! receiver can ask for an action: the input here is the daemon's own
//! analysis.

use crate::audit::{Kind, Log};
use crate::model::{Action, Finding, Proposal, Snapshot};
use crate::playbook::Playbooks;
use crate::remediate::TokenSource;
use crate::remediate::arm::Arm;
use crate::remediate::autonomy::{self, Policy};
use crate::remediate::exec::{self, Approval, Engine, Outcome};
use crate::remediate::plan::ServiceId;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The autonomy policy family an action belongs to.
pub fn family(action: &Action) -> Option<&'static str> {
    Some(match action {
        Action::ScaleOut { .. } => "scale_out",
        Action::SetTimeout { .. } => "set_timeout",
        Action::RollbackPolicy { .. } => "rollback_policy",
        Action::AddNsgRule { .. } | Action::FixNsgRule { .. } => "fix_nsg_rule",
        Action::FixRoute { .. } => "fix_route",
        Action::RaiseLimit { .. } => "raise_limit",
        Action::Manual { .. } => return None,
    })
}

/// What one consideration did, for the daemon's log and tests.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Applied { proposal: String, audit: String },
    Refused { proposal: String, why: String },
    Failed { proposal: String, why: String },
}

/// Runs what the policy allows on one service.
pub struct Actor {
    pub engine: Engine,
    pub policy: Policy,
    pub service: ServiceId,
    pub playbooks: Playbooks,
    /// (proposal, reason) refusals already audited: a refusal that holds on
    /// every tick is written once.
    refused: BTreeSet<(String, String)>,
}

impl Actor {
    pub fn new(
        policy: Policy,
        service: &str,
        arm_base: &str,
        tokens: Arc<dyn TokenSource>,
        state_dir: &Path,
        playbooks: Playbooks,
    ) -> Result<Actor, String> {
        let arm = Arm::new(arm_base, tokens)?;
        Ok(Actor {
            engine: Engine::new(arm, Log::new(state_dir)),
            policy,
            service: ServiceId::parse(service)?,
            playbooks,
            refused: BTreeSet::new(),
        })
    }

    /// The actor a config's `[autonomy]` section asks for: the policy file
    /// read and checked (errors name its file and line), ARM at
    /// `APIMEDIC_ARM_URL` or management.azure.com, the shared credential.
    pub fn start(a: &super::config::Autonomy, state_dir: &Path) -> anyhow::Result<Actor> {
        let text = std::fs::read_to_string(&a.policy_file).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the autonomy policy {}: {e}",
                a.policy_file.display()
            )
        })?;
        let policy = autonomy::parse(&a.policy_file.display().to_string(), &text)
            .map_err(anyhow::Error::msg)?;
        Actor::new(
            policy,
            &a.service,
            &crate::remediate::arm::base_url(),
            crate::remediate::token_source()?,
            state_dir,
            Playbooks::built_in(),
        )
        .map_err(anyhow::Error::msg)
    }

    /// Considers the proposals for `findings` on `snapshot` at `now_ms`.
    pub async fn consider(
        &mut self,
        snapshot: &Snapshot,
        findings: &[Finding],
        now_ms: i64,
        cancel: &CancellationToken,
    ) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.policy.allow.is_empty() {
            return steps;
        }
        let _ = self.engine.reconcile().await;
        let proposals: Vec<Proposal> = self.playbooks.propose(snapshot, findings, &[]);
        for p in proposals {
            let Some(fam) = family(&p.action) else {
                continue;
            };
            if !self.policy.allow.iter().any(|r| r.action == fam) {
                continue;
            }
            let Ok(entries) = self.engine.log.read() else {
                break;
            };
            if exec::already_applied(&entries, &p.id).is_some()
                || exec::pending(&entries)
                    .iter()
                    .any(|e| e.entry.proposal.as_deref() == Some(p.id.as_str()))
            {
                continue;
            }
            let finding = findings.iter().find(|f| f.id == p.finding);
            let plan = match self.engine.plan(&p, finding, snapshot, &self.service).await {
                Ok(plan) => plan,
                Err(why) => {
                    steps.push(Step::Failed {
                        proposal: p.id.clone(),
                        why,
                    });
                    continue;
                }
            };
            let how = match autonomy::decide(&self.policy, &plan, now_ms, &entries) {
                Ok(rule) => rule,
                Err(why) => {
                    if self.refused.insert((p.id.clone(), why.clone())) {
                        let _ = self.engine.record_refusal(
                            Some(&plan),
                            autonomy::SURFACE,
                            &format!("autonomy policy: {why}"),
                        );
                    }
                    steps.push(Step::Refused {
                        proposal: p.id.clone(),
                        why,
                    });
                    continue;
                }
            };
            let approval = Approval {
                plan_hash: plan.hash.clone(),
                surface: autonomy::SURFACE.into(),
                how,
            };
            let outcome = self
                .engine
                .apply(&plan, &approval, Kind::Apply, None, &mut |_| {}, cancel)
                .await;
            steps.push(match outcome {
                Ok(Outcome::Succeeded { audit, .. }) => Step::Applied {
                    proposal: p.id.clone(),
                    audit,
                },
                Ok(Outcome::Failed { error, .. }) => Step::Failed {
                    proposal: p.id.clone(),
                    why: error,
                },
                Ok(Outcome::Stale { what, .. }) => Step::Failed {
                    proposal: p.id.clone(),
                    why: format!("stale: {what}"),
                },
                Ok(Outcome::Interrupted { audit, .. }) => Step::Failed {
                    proposal: p.id.clone(),
                    why: format!("interrupted (audit {audit}); reconciled on a later tick"),
                },
                Err(e) => Step::Failed {
                    proposal: p.id.clone(),
                    why: format!("{e:#}"),
                },
            });
        }
        steps
    }
}
