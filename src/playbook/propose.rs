//! From findings and stories to ranked, concrete proposals (pure).
//!
//! Each playbook proposal is filled from what the finding and the snapshot
//! already know (the scope and value of the timeout in force, the backend's
//! p99 before the incident, the rule an NSG needs, the backend entity a
//! wrong route should point at), dropped when its condition is known false,
//! merged with an identical one, and given the exact `az` command, ARM
//! request and document (`apply`). Ranking follows the stories: story by
//! story, the story's own fix first (an NSG story's rule, a capacity
//! story's scale-out, a route story's route, a policy change's rollback),
//! then the rest of its findings' proposals cause first; then proposals for
//! findings outside any story.

use super::apply::{self, Apply};
use super::{ActionSpec, Condition, Playbook, Playbooks, ProposalSpec};
use crate::analyze;
use crate::model::{
    Action, ChangeKind, Direction, Finding, FindingKind, PolicyScope, Proposal, RouteSource,
    Severity, Snapshot, Story,
};

/// Values a finding gives to placeholders.
pub(super) struct Fill {
    api: String,
    operation: String,
    backend: String,
    scope: Option<PolicyScope>,
    nsg: String,
    rule: String,
    units: Option<u32>,
    seconds: Option<u32>,
}

impl Fill {
    pub(super) fn from_finding(f: &Finding) -> Fill {
        let s = &f.subject;
        let scope = s
            .policy_scope
            .clone()
            .or_else(|| match (&s.api, &s.operation) {
                (Some(a), Some(o)) => Some(PolicyScope::Operation(a.clone(), o.clone())),
                (Some(a), None) => Some(PolicyScope::Api(a.clone())),
                _ => None,
            });
        Fill {
            api: s.api.clone().unwrap_or_else(|| "the API".into()),
            operation: s
                .operation
                .clone()
                .unwrap_or_else(|| "its operations".into()),
            backend: s.backend.clone().unwrap_or_else(|| "the backend".into()),
            scope,
            nsg: s.nsg.clone().unwrap_or_else(|| "the NSG".into()),
            rule: s.rule.clone().unwrap_or_else(|| "the rule".into()),
            units: None,
            seconds: None,
        }
    }

    pub(super) fn apply(&self, text: &str) -> String {
        let scope = self
            .scope
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "the scope that sets it".into());
        let units = self
            .units
            .map(|u| u.to_string())
            .unwrap_or_else(|| "one".into());
        let seconds = self
            .seconds
            .map(|u| format!("{u} s"))
            .unwrap_or_else(|| "a value above the backend's p99 latency".into());
        text.replace("{api}", &self.api)
            .replace("{operation}", &self.operation)
            .replace("{backend}", &self.backend)
            .replace("{scope}", &scope)
            .replace("{nsg}", &self.nsg)
            .replace("{rule}", &self.rule)
            .replace("{units}", &units)
            .replace("{seconds}", &seconds)
    }
}

/// Evidence keys analyzers set for playbooks: `suggested_timeout_s`,
/// `previous_timeout_s`, `timeout_s` or `timeout_seconds`, `backend_p99_ms`.
fn evidence_value(f: &Finding, key: &str) -> Option<f64> {
    f.evidence.iter().find_map(|e| e.values.get(key).copied())
}

fn current_timeout(f: &Finding) -> Option<f64> {
    evidence_value(f, "timeout_s").or_else(|| evidence_value(f, "timeout_seconds"))
}

/// The forward-request timeout in force for the operations behind a
/// finding: (seconds, scope that sets it), by the busiest operation.
fn timeout_in_force(snapshot: &Snapshot, f: &Finding) -> Option<(f64, PolicyScope)> {
    let ops = operations_of(snapshot, f);
    ops.iter().find_map(|(a, o)| {
        let eff = analyze::policy::effective_policy(snapshot, a, o);
        let configured = eff
            .find("forward-request")
            .any(|p| p.section == analyze::policy::Section::Backend && !p.implicit);
        eff.forward_timeout().filter(|_| configured)
    })
}

/// The operations a finding concerns, busiest first.
fn operations_of(snapshot: &Snapshot, f: &Finding) -> Vec<(String, String)> {
    if let (Some(a), Some(o)) = (&f.subject.api, &f.subject.operation) {
        return vec![(a.clone(), o.clone())];
    }
    let Some(b) = &f.subject.backend else {
        return Vec::new();
    };
    let mut ops: Vec<(String, String, u64)> = Vec::new();
    for s in snapshot
        .traffic
        .series
        .iter()
        .filter(|s| s.key.backend.eq_ignore_ascii_case(b))
    {
        let n: u64 = s.minutes.values().map(|m| u64::from(m.requests)).sum();
        match ops
            .iter_mut()
            .find(|(a, o, _)| a == &s.key.api_id && o == &s.key.operation_id)
        {
            Some(x) => x.2 += n,
            None => ops.push((s.key.api_id.clone(), s.key.operation_id.clone(), n)),
        }
    }
    ops.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    ops.into_iter().map(|(a, o, _)| (a, o)).collect()
}

/// The backend's p99 BackendTime before the finding began (its normal).
fn baseline_p99_ms(snapshot: &Snapshot, f: &Finding) -> Option<f64> {
    if let Some(v) = evidence_value(f, "backend_p99_ms") {
        return Some(v);
    }
    let w = f.window?;
    let options = analyze::Options {
        since: None,
        until: Some(w.start),
    };
    let ops = operations_of(snapshot, f);
    let backend = f.subject.backend.clone();
    let stats = analyze::rollup::group_stats(snapshot, &options, |k| match &backend {
        Some(b) => k.backend.eq_ignore_ascii_case(b),
        None => ops
            .iter()
            .any(|(a, o)| &k.api_id == a && &k.operation_id == o),
    });
    stats
        .backend_time
        .p99
        .or(stats.total_time.p99)
        .map(f64::from)
}

/// A timeout that covers the backend's normal p99 with headroom, in whole
/// seconds; restoring the value a change replaced beats a guess.
fn suggested_timeout(snapshot: &Snapshot, f: &Finding) -> Option<u32> {
    if let Some(s) = evidence_value(f, "suggested_timeout_s") {
        return Some(s.ceil().max(1.0) as u32);
    }
    if let Some(prev) = evidence_value(f, "previous_timeout_s") {
        let now = current_timeout(f).unwrap_or(0.0);
        if prev > now {
            return Some(prev.ceil() as u32);
        }
    }
    let p99 = baseline_p99_ms(snapshot, f)?;
    let s = ((p99 * 1.5) / 1000.0).ceil().max(1.0) as u32;
    // Never propose lowering the timeout in force.
    match current_timeout(f) {
        Some(now) if f64::from(s) <= now => None,
        _ => Some(s),
    }
}

/// The change a config_change finding records (its window starts at it).
fn change_of<'a>(snapshot: &'a Snapshot, f: &Finding) -> Option<&'a crate::model::Change> {
    let w = f.window?;
    let scope = f.subject.policy_scope.as_ref()?;
    snapshot
        .changes
        .iter()
        .find(|c| c.time == w.start && c.policy_scope.as_ref() == Some(scope))
}

fn condition_holds(c: Condition, snapshot: &Snapshot, f: &Finding, story: Option<&Story>) -> bool {
    match c {
        Condition::DeploymentBefore => {
            if let Some(s) = story
                && s.suspects.iter().any(|x| x.kind == ChangeKind::Deployment)
            {
                return true;
            }
            let Some(w) = f.window else {
                return false;
            };
            snapshot.changes.iter().any(|c| {
                c.kind == ChangeKind::Deployment
                    && c.time <= w.start.plus_minutes(1)
                    && c.time >= w.start.plus_minutes(-analyze::changes::LOOKBACK_MINUTES)
            })
        }
        Condition::PolicyChangeKnown => {
            f.kind == FindingKind::ConfigChange
                && change_of(snapshot, f)
                    .is_some_and(|c| analyze::policy::policy_before(snapshot, c).is_some())
        }
    }
}

/// The intended backend of a mis-routed operation: the backend entity
/// whose URL is the one its configured `serviceUrl` (the route traffic used
/// before) reaches, else that route's own name.
fn intended_backend(snapshot: &Snapshot, api: &str) -> Option<String> {
    let url = snapshot.api(api).and_then(|a| a.service_url.clone())?;
    analyze::routes::entity_for_url(snapshot, &url).or_else(|| {
        let host = url.split("://").nth(1).unwrap_or(&url);
        host.split('/').next().map(str::to_string)
    })
}

/// The scope whose `set-backend-service` routes an operation now.
fn routing_scope(snapshot: &Snapshot, api: &str, op: &str) -> Option<PolicyScope> {
    let (routes, _) = analyze::routes::configured_routes(snapshot, api, op);
    routes.into_iter().find_map(|r| match r.source {
        RouteSource::Policy(s) => Some(s),
        _ => None,
    })
}

/// One playbook proposal for one finding, or `None` when its condition is
/// known false or it cannot be made concrete enough to be worth showing.
fn propose_one(
    book: &Playbook,
    spec: &ProposalSpec,
    index: usize,
    f: &Finding,
    story: Option<&Story>,
    snapshot: &Snapshot,
) -> Option<Proposal> {
    if spec
        .when
        .iter()
        .any(|c| !condition_holds(*c, snapshot, f, story))
    {
        return None;
    }
    let service = snapshot.service.as_ref();
    let mut fill = Fill::from_finding(f);
    let mut apply = Apply::default();
    let mut extra_pre: Vec<String> = Vec::new();
    let manual = |fill: &Fill, why: &str| Action::Manual {
        steps: vec![format!("{} ({why})", fill.apply(&spec.title))],
    };
    let action = match &spec.action {
        ActionSpec::ScaleOut { units } => {
            let sku = service.and_then(|s| s.sku.as_deref()).unwrap_or("");
            if ["developer", "consumption"].contains(&sku.to_ascii_lowercase().as_str()) {
                // Known false: these tiers cannot add units.
                return None;
            }
            fill.units = Some(*units);
            let from = service.and_then(|s| s.capacity);
            if let Some(now) = from {
                apply = apply::scale(snapshot, now + units);
            }
            Action::ScaleOut {
                units: *units,
                from,
            }
        }
        ActionSpec::SetTimeout => {
            let in_force = timeout_in_force(snapshot, f);
            let scope = f
                .subject
                .policy_scope
                .clone()
                .or_else(|| in_force.as_ref().map(|(_, s)| s.clone()))
                .or_else(|| {
                    operations_of(snapshot, f)
                        .first()
                        .map(|(a, _)| PolicyScope::Api(a.clone()))
                });
            let from = current_timeout(f).or(in_force.as_ref().map(|(s, _)| *s));
            let seconds = suggested_timeout(snapshot, f);
            fill.scope = scope.clone();
            fill.seconds = seconds;
            match (scope, seconds) {
                (Some(scope), Some(seconds)) => {
                    let xml = snapshot
                        .policy(&scope)
                        .map(|p| p.xml.clone())
                        .unwrap_or_else(|| apply::EMPTY_POLICY.to_string());
                    if let Some(new) = apply::with_timeout(&xml, seconds) {
                        apply = apply::put_policy(snapshot, &scope, &new);
                    }
                    if let Some(p99) = baseline_p99_ms(snapshot, f) {
                        extra_pre.push(format!(
                            "The backend's p99 before the incident was {:.1} s, below the new {seconds} s.",
                            p99 / 1000.0
                        ));
                    }
                    Action::SetTimeout {
                        scope,
                        seconds,
                        from: from.map(|v| v.round() as u32),
                    }
                }
                _ => return None,
            }
        }
        // Only a change finding's window starts at the change itself.
        ActionSpec::RollbackPolicy => {
            let (Some(scope), Some(w), FindingKind::ConfigChange) =
                (&f.subject.policy_scope, f.window, f.kind)
            else {
                return None;
            };
            let before =
                change_of(snapshot, f).and_then(|c| analyze::policy::policy_before(snapshot, c));
            match before {
                Some(xml) => apply = apply::put_policy(snapshot, scope, &xml),
                None => extra_pre.push(
                    "The version before the change is not in the data: take it from source control or the portal's revision history.".into(),
                ),
            }
            Action::RollbackPolicy {
                scope: scope.clone(),
                to: w.start,
            }
        }
        ActionSpec::FixNsgRule => {
            // The network analyzer gives the rule the flow needs as ARM JSON.
            let rule = f.evidence.iter().find_map(|e| {
                let v: serde_json::Value = serde_json::from_str(e.excerpt.as_deref()?).ok()?;
                (v["properties"]["access"].as_str() == Some("Allow")).then_some(v)
            });
            match rule {
                Some(rule) => {
                    let p = &rule["properties"];
                    let nsg = snapshot
                        .nsgs
                        .iter()
                        .find(|n| Some(&n.name) == f.subject.nsg.as_ref());
                    apply = apply::put_nsg_rule(&fill.nsg, nsg, &rule);
                    let ports: Vec<String> = p["destinationPortRanges"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    Action::AddNsgRule {
                        nsg: fill.nsg.clone(),
                        rule: rule["name"].as_str().unwrap_or("rule").to_string(),
                        priority: p["priority"].as_u64().unwrap_or(0) as u32,
                        direction: if p["direction"].as_str() == Some("Inbound") {
                            Direction::Inbound
                        } else {
                            Direction::Outbound
                        },
                        port: ports.join(","),
                        destination: p["destinationAddressPrefix"]
                            .as_str()
                            .unwrap_or("*")
                            .to_string(),
                    }
                }
                None => Action::FixNsgRule {
                    nsg: fill.nsg.clone(),
                    rule: fill.rule.clone(),
                    change: f.summary.clone(),
                },
            }
        }
        ActionSpec::FixRoute => {
            let (Some(a), Some(o)) = (&f.subject.api, &f.subject.operation) else {
                return None;
            };
            let Some(to) = intended_backend(snapshot, a) else {
                fill.backend = "the backend it used before".into();
                return Some(finish(
                    book,
                    spec,
                    index,
                    f,
                    story,
                    fill,
                    manual_route(),
                    Apply::default(),
                    vec![],
                ));
            };
            fill.backend = to.clone();
            if snapshot.backend(&to).is_some()
                && let Some(scope) = routing_scope(snapshot, a, o)
                && let Some(doc) = snapshot.policy(&scope)
                && let Some(new) = apply::with_backend(&doc.xml, &to)
            {
                apply = apply::put_policy(snapshot, &scope, &new);
            }
            Action::FixRoute {
                api: a.clone(),
                operation: o.clone(),
                backend: to,
            }
        }
        ActionSpec::RaiseLimit => match &fill.scope {
            Some(scope) => Action::RaiseLimit {
                scope: scope.clone(),
                policy: f.summary.clone(),
            },
            None => manual(&fill, "the policy scope is unknown"),
        },
        ActionSpec::Manual { steps } => Action::Manual {
            steps: steps.iter().map(|s| fill.apply(s)).collect(),
        },
    };
    Some(finish(
        book, spec, index, f, story, fill, action, apply, extra_pre,
    ))
}

fn manual_route() -> Action {
    Action::Manual {
        steps: vec![
            "Find the set-backend-service that sends the operation to the new backend (apimedic diagnose shows its scope) and point it back at the backend it used before.".into(),
        ],
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    book: &Playbook,
    spec: &ProposalSpec,
    index: usize,
    f: &Finding,
    story: Option<&Story>,
    fill: Fill,
    action: Action,
    apply: Apply,
    extra_pre: Vec<String>,
) -> Proposal {
    let mut preconditions: Vec<String> = spec.preconditions.iter().map(|s| fill.apply(s)).collect();
    preconditions.extend(extra_pre);
    Proposal {
        id: format!("{}-{}", f.id, index + 1),
        finding: f.id.clone(),
        story: story.map(|s| s.id.clone()),
        title: fill.apply(&spec.title),
        action,
        risk: spec.risk,
        preconditions,
        steps: book.diagnosis.iter().map(|s| fill.apply(s)).collect(),
        command: apply.command,
        request: apply.request,
        document: apply.document,
        needs: apply.needs,
    }
}

/// What kind of fix a story calls for first, from its members.
fn own_fix_rank(story: &Story, findings: &[Finding], a: &Action) -> u8 {
    let kinds: Vec<FindingKind> = story
        .findings
        .iter()
        .filter_map(|id| findings.iter().find(|f| &f.id == id))
        .map(|f| f.kind)
        .collect();
    let has = |k: FindingKind| kinds.contains(&k);
    let order: &[fn(&Action) -> bool] = if has(FindingKind::NetworkGap) {
        &[|a| matches!(a, Action::AddNsgRule { .. } | Action::FixNsgRule { .. })]
    } else if has(FindingKind::RouteMismatch) {
        &[|a| matches!(a, Action::FixRoute { .. })]
    } else if has(FindingKind::ConfigChange) {
        &[
            |a| matches!(a, Action::RollbackPolicy { .. }),
            |a| matches!(a, Action::SetTimeout { .. }),
        ]
    } else if kinds.first() == Some(&FindingKind::Capacity) {
        &[|a| matches!(a, Action::ScaleOut { .. })]
    } else if has(FindingKind::BackendTimeout) {
        &[|a| matches!(a, Action::SetTimeout { .. })]
    } else if has(FindingKind::Quota) {
        &[|a| matches!(a, Action::RaiseLimit { .. })]
    } else {
        &[]
    };
    order
        .iter()
        .position(|m| m(a))
        .map(|p| p as u8)
        .unwrap_or(u8::MAX)
}

/// Two proposals that would do the same thing.
fn same(a: &Proposal, b: &Proposal) -> bool {
    match (&a.action, &b.action) {
        (Action::Manual { steps: x }, Action::Manual { steps: y }) => x == y && a.title == b.title,
        (
            Action::SetTimeout {
                scope: s1,
                seconds: n1,
                ..
            },
            Action::SetTimeout {
                scope: s2,
                seconds: n2,
                ..
            },
        ) => s1 == s2 && n1 == n2,
        (x, y) => x == y,
    }
}

pub(super) fn propose(
    books: &Playbooks,
    snapshot: &Snapshot,
    findings: &[Finding],
    stories: &[Story],
) -> Vec<Proposal> {
    // (story rank, own-fix rank, member position, proposal)
    let mut ranked: Vec<(usize, u8, usize, Proposal)> = Vec::new();
    let story_of = |f: &Finding| {
        stories
            .iter()
            .enumerate()
            .find(|(_, s)| s.findings.iter().any(|id| id == &f.id))
    };
    for (pos, f) in findings.iter().enumerate() {
        if f.severity <= Severity::Info {
            continue;
        }
        let Some(book) = books.get(f.kind) else {
            continue;
        };
        let story = story_of(f);
        let member_pos = story
            .and_then(|(_, s)| s.findings.iter().position(|id| id == &f.id))
            .unwrap_or(pos);
        for (i, spec) in book.proposals.iter().enumerate() {
            let Some(p) = propose_one(book, spec, i, f, story.map(|(_, s)| s), snapshot) else {
                continue;
            };
            let (srank, own) = match story {
                Some((k, s)) => (k, own_fix_rank(s, findings, &p.action)),
                None => (stories.len(), u8::MAX),
            };
            ranked.push((srank, own, member_pos * 16 + i, p));
        }
    }
    ranked.sort_by_key(|a| (a.0, a.1, a.2));
    let mut out: Vec<Proposal> = Vec::new();
    for (_, _, _, p) in ranked {
        if out.iter().any(|q| same(q, &p)) {
            continue;
        }
        out.push(p);
    }
    out
}
