//! Change correlation: configuration writes, deployments, network and scale
//! changes made shortly before an anomaly began (within `LOOKBACK_MINUTES`
//! of its onset, up to a minute after) are named as suspects. A change is
//! relevant when it touches what the anomaly is about: a policy scope on
//! the operation's chain (global, its product, its API, itself), the API or
//! backend resource, the app behind the backend (deployment), the network
//! path (NSG) or the gateway's scale. Each implicated change becomes one
//! `config_change` finding with the policy diff when both versions are
//! known.

use super::Ctx;
use super::apps::app_matches;
use super::policy::{policy_after, policy_before, policy_diff, timeout_in_xml};
use crate::model::{
    Change, ChangeKind, Evidence, Finding, FindingKind, PolicyScope, Severity, Snapshot, Subject,
    Suspect,
};
use std::collections::BTreeMap;

/// How long before an anomaly's onset a change is a suspect.
pub const LOOKBACK_MINUTES: i64 = 60;

/// A change implicated in one anomaly.
#[derive(Clone, Debug, PartialEq)]
pub struct Implicated {
    /// Index into `snapshot.changes`.
    pub change: usize,
    /// Minutes from the change to the anomaly's onset.
    pub lead_minutes: i64,
    /// 0..1: how directly the change touches the anomaly's subject.
    pub relevance: f64,
}

/// The changes implicated in `finding` (an anomaly with a window), most
/// relevant and closest first. Only the most relevant tier is kept: a
/// write to the operation's own policy outranks an unrelated write.
pub fn implicated(ctx: &Ctx, finding: &Finding) -> Vec<Implicated> {
    let Some(w) = finding.window else {
        return Vec::new();
    };
    let onset = w.start;
    let scopes = scopes_of(ctx, finding);
    let backends = backends_of(ctx, finding);
    let apis: Vec<String> = scopes
        .iter()
        .filter_map(|s| match s {
            PolicyScope::Api(a) => Some(a.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    let mut out: Vec<Implicated> = Vec::new();
    for (i, c) in ctx.snapshot.changes.iter().enumerate() {
        let lead = (onset.millis() - c.time.millis()).div_euclid(60_000);
        // A change before `--since` may still be the cause; one after
        // `--until` cannot be.
        let after_scope = ctx.options.until.is_some_and(|u| c.time >= u);
        if !(-1..=LOOKBACK_MINUTES).contains(&lead) || after_scope {
            continue;
        }
        if c.failed() || superseded(ctx.snapshot, i) {
            continue;
        }
        let rid = c.resource_id.as_deref().unwrap_or("").to_ascii_lowercase();
        let relevance = match c.kind {
            _ if c.policy_scope.as_ref().is_some_and(|s| scopes.contains(s)) => 1.0,
            // A write to a product, subscription, user or group acts on
            // traffic only through limits: a suspect for 429s on an API the
            // product holds (or any subscription write), nothing else.
            ChangeKind::Config | ChangeKind::Delete if access_write(&rid).is_some() => {
                match (access_write(&rid), finding.kind) {
                    (Some(Access::Product(p)), FindingKind::Quota)
                        if product_holds(ctx, &p, finding) =>
                    {
                        0.8
                    }
                    (Some(Access::Subscription | Access::User), FindingKind::Quota) => 0.3,
                    _ => 0.0,
                }
            }
            ChangeKind::Deployment
                if backends
                    .iter()
                    .any(|b| app_matches(ctx, b, c.resource_id.as_deref(), None)) =>
            {
                1.0
            }
            ChangeKind::Config | ChangeKind::Delete
                if backends
                    .iter()
                    .any(|b| rid.contains(&format!("/backends/{}", b.to_ascii_lowercase())))
                    || apis.iter().any(|a| {
                        rid.ends_with(&format!("/apis/{a}")) || rid.contains(&format!("/apis/{a}/"))
                    }) =>
            {
                0.9
            }
            ChangeKind::Network
                if matches!(
                    finding.kind,
                    FindingKind::BackendFailure | FindingKind::BackendTimeout
                ) =>
            {
                0.7
            }
            ChangeKind::Scale
                if matches!(
                    finding.kind,
                    FindingKind::LatencyRegression | FindingKind::Capacity
                ) =>
            {
                0.7
            }
            // A policy on a scope outside the operation's chain cannot act on it.
            _ if c.policy_scope.is_some() => 0.0,
            ChangeKind::Config | ChangeKind::Deployment | ChangeKind::Network => 0.3,
            _ => 0.1,
        };
        if relevance <= 0.0 {
            continue;
        }
        out.push(Implicated {
            change: i,
            // A change inside the onset minute leads by 0, never by -1.
            lead_minutes: lead.max(0),
            relevance,
        });
    }
    let best = out.iter().map(|x| x.relevance).fold(0.0, f64::max);
    // Weak matches only count when nothing better is there, and then only
    // the closest.
    out.retain(|x| x.relevance >= best && x.relevance >= 0.2);
    out.sort_by(|a, b| {
        b.relevance
            .total_cmp(&a.relevance)
            .then(a.lead_minutes.cmp(&b.lead_minutes))
    });
    if best < 0.5 {
        out.truncate(1);
    }
    out
}

/// What an access write (not a policy) touches inside an APIM service.
#[derive(Clone, Debug, PartialEq)]
enum Access {
    Product(String),
    Subscription,
    User,
}

/// `products/<p>`, `subscriptions/<s>`, `users/<u>` or `groups/<g>` below
/// an API Management service (not a product policy: that has a scope).
fn access_write(rid_lower: &str) -> Option<Access> {
    let (_, rel) = rid_lower.split_once("/microsoft.apimanagement/service/")?;
    let mut segs = rel.split('/').skip(1);
    let kind = segs.next()?;
    let name = segs.next().unwrap_or("");
    if segs.next().is_some_and(|s| s == "policies") {
        return None;
    }
    match kind {
        "products" => Some(Access::Product(name.to_string())),
        "subscriptions" => Some(Access::Subscription),
        "users" | "groups" => Some(Access::User),
        _ => None,
    }
}

/// True when product `p` holds the API of the finding.
fn product_holds(ctx: &Ctx, p: &str, f: &Finding) -> bool {
    let Some(api) = f.subject.api.as_deref() else {
        return f
            .subject
            .product
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(p));
    };
    ctx.snapshot
        .products
        .iter()
        .any(|x| x.id.eq_ignore_ascii_case(p) && x.apis.iter().any(|a| a.eq_ignore_ascii_case(api)))
        || f.subject
            .product
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(p))
}

/// An activity log holds a Started and a Succeeded event for one write:
/// keep the last event of the same operation on the same resource within
/// five minutes.
fn superseded(snapshot: &Snapshot, i: usize) -> bool {
    let Some(c) = snapshot.changes.get(i) else {
        return false;
    };
    snapshot.changes.iter().enumerate().any(|(j, d)| {
        j != i
            && d.operation.eq_ignore_ascii_case(&c.operation)
            && d.resource_id == c.resource_id
            && d.time >= c.time
            && (d.time.millis() - c.time.millis()) <= 5 * 60_000
            && (d.time > c.time || j > i)
            && !d.failed()
    })
}

/// Policy scopes on the chain of the operations a finding concerns.
fn scopes_of(ctx: &Ctx, f: &Finding) -> Vec<PolicyScope> {
    let mut ops: Vec<(String, String)> = Vec::new();
    if let (Some(a), Some(o)) = (&f.subject.api, &f.subject.operation) {
        ops.push((a.clone(), o.clone()));
    }
    if let Some(b) = &f.subject.backend
        && let Some(r) = ctx.rollup.backend(b)
    {
        ops.extend(r.operations.iter().map(|(a, o, _)| (a.clone(), o.clone())));
    }
    let mut out = vec![PolicyScope::Global];
    if let Some(s) = &f.subject.policy_scope {
        out.push(s.clone());
    }
    for (a, o) in ops {
        for p in ctx
            .snapshot
            .products
            .iter()
            .filter(|p| p.apis.iter().any(|x| x.eq_ignore_ascii_case(&a)))
        {
            out.push(PolicyScope::Product(p.id.clone()));
        }
        out.push(PolicyScope::Operation(a.clone(), o));
        out.push(PolicyScope::Api(a));
    }
    out.sort();
    out.dedup();
    out
}

fn backends_of(ctx: &Ctx, f: &Finding) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(b) = &f.subject.backend {
        out.push(b.clone());
    }
    if let (Some(a), Some(o)) = (&f.subject.api, &f.subject.operation) {
        out.extend(ctx.backends_of(a, o));
    }
    out.sort();
    out.dedup();
    out
}

/// A change as a story suspect.
pub fn suspect(snapshot: &Snapshot, x: &Implicated) -> Option<Suspect> {
    let c = snapshot.changes.get(x.change)?;
    Some(Suspect {
        time: c.time,
        kind: c.kind,
        operation: c.operation.clone(),
        resource_id: c.resource_id.clone(),
        caller: c.caller.clone(),
        lead_minutes: x.lead_minutes,
        diff: policy_diff(snapshot, c),
    })
}

/// The subject a change is about.
pub fn change_subject(ctx: &Ctx, c: &Change) -> Subject {
    if let Some(s) = &c.policy_scope {
        return Subject::policy(s.clone());
    }
    let rid = c.resource_id.as_deref().unwrap_or("");
    let segs: Vec<&str> = rid.split('/').filter(|s| !s.is_empty()).collect();
    let after = |name: &str| {
        segs.iter()
            .position(|s| s.eq_ignore_ascii_case(name))
            .and_then(|i| segs.get(i + 1))
            .map(|s| s.to_string())
    };
    if c.kind == ChangeKind::Deployment {
        let backend = ctx
            .rollup
            .backends
            .iter()
            .find(|b| app_matches(ctx, &b.backend, c.resource_id.as_deref(), None))
            .map(|b| b.backend.clone());
        // A deployment id is not a backend: name the app it deploys.
        let app = c
            .resource_id
            .as_deref()
            .and_then(crate::model::app_of_resource)
            .map(|a| a.host_label());
        return Subject {
            backend: backend
                .or(app)
                .or_else(|| segs.last().map(|s| s.to_string())),
            ..Subject::default()
        };
    }
    if let Some(nsg) = after("networkSecurityGroups") {
        return Subject {
            nsg: Some(nsg),
            rule: after("securityRules"),
            ..Subject::default()
        };
    }
    if let Some(b) = after("backends") {
        return Subject::backend(&b);
    }
    // Inside a service: a product is a product; a subscription, user or
    // group is a resource of the service, never the service itself.
    if let Some((_, rel)) = rid.split_once("/service/") {
        let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        if let [service, kind, name, ..] = parts.as_slice() {
            match kind.to_ascii_lowercase().as_str() {
                "products" => {
                    return Subject {
                        product: Some(name.to_string()),
                        ..Subject::default()
                    };
                }
                "subscriptions"
                | "users"
                | "groups"
                | "namedvalues"
                | "certificates"
                | "loggers"
                | "diagnostics"
                | "authorizationservers"
                | "identityproviders" => {
                    return Subject {
                        service: Some(service.to_string()),
                        resource: Some(format!("{kind}/{name}")),
                        ..Subject::default()
                    };
                }
                _ => {}
            }
        }
    }
    if let Some(a) = after("apis") {
        return Subject {
            api: Some(a),
            operation: after("operations"),
            ..Subject::default()
        };
    }
    Subject {
        service: segs.last().map(|s| s.to_string()),
        ..Subject::default()
    }
}

/// One `config_change` finding per implicated change (per subject; the
/// closest change leads), for the anomalies in `findings`.
pub fn findings(ctx: &Ctx, findings: &[Finding]) -> Vec<Finding> {
    let mut by_change: BTreeMap<usize, Vec<(&Finding, Implicated)>> = BTreeMap::new();
    for f in findings
        .iter()
        .filter(|f| f.kind.is_anomaly() || f.kind == FindingKind::RouteMismatch)
    {
        for x in implicated(ctx, f) {
            by_change.entry(x.change).or_default().push((f, x));
        }
    }
    let mut by_subject: BTreeMap<String, Finding> = BTreeMap::new();
    for (ci, hits) in by_change {
        let Some(c) = ctx.snapshot.changes.get(ci) else {
            continue;
        };
        let Some((lead_f, best)) = hits
            .iter()
            .max_by(|a, b| {
                a.1.relevance
                    .total_cmp(&b.1.relevance)
                    .then(b.1.lead_minutes.cmp(&a.1.lead_minutes))
            })
            .map(|(f, x)| (*f, x.clone()))
        else {
            continue;
        };
        let subject = change_subject(ctx, c);
        let what = match (&c.policy_scope, c.kind) {
            (Some(s), _) => format!("policy at scope {s}"),
            (None, ChangeKind::Deployment) => format!(
                "deployment of {}",
                deployment_target(c.resource_id.as_deref())
            ),
            _ => format!(
                "{} on {}",
                c.operation,
                c.resource_id
                    .as_deref()
                    .map(short_resource)
                    .unwrap_or_default()
            ),
        };
        let detail = timeout_detail(ctx.snapshot, c)
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        // Name the earliest symptom and count the lead to its onset: the
        // instant the story counts to as well.
        let mut hits = hits;
        hits.sort_by_key(|(f, _)| f.window.map(|w| w.start));
        let best = {
            let earliest = hits
                .first()
                .and_then(|(f, _)| f.window)
                .map(|w| ((w.start.0 - c.time.0).div_euclid(60_000)).max(0));
            Implicated {
                lead_minutes: earliest.unwrap_or(best.lead_minutes),
                ..best
            }
        };
        let symptoms: Vec<String> = hits
            .iter()
            .map(|(f, _)| format!("{} on {}", f.kind, f.subject))
            .collect();
        let summary = format!(
            "{what} changed at {} UTC{}{detail}, {} min before {} began",
            c.time.hhmm(),
            c.caller
                .as_deref()
                .map(|x| format!(" by {x}"))
                .unwrap_or_default(),
            best.lead_minutes.max(0),
            symptoms.first().cloned().unwrap_or_default(),
        );
        let mut ev = Evidence::text(format!(
            "{} {} at {}{}; precedes: {}",
            c.operation,
            c.resource_id.as_deref().unwrap_or(""),
            c.time,
            c.status
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default(),
            symptoms.join("; ")
        ))
        .value("lead_minutes", best.lead_minutes as f64)
        .value("relevance", best.relevance)
        .value("symptoms", hits.len() as f64);
        ev.sources = vec![c.origin.clone()];
        ev.excerpt = policy_diff(ctx.snapshot, c);
        let severity = if best.relevance >= 0.9 && lead_f.severity >= Severity::High {
            Severity::High
        } else if best.relevance >= 0.5 {
            Severity::Medium
        } else {
            Severity::Low
        };
        let confidence = best.relevance
            * (1.0 - 0.5 * best.lead_minutes.max(0) as f64 / LOOKBACK_MINUTES as f64);
        let f = Finding::new(FindingKind::ConfigChange, severity, subject, summary)
            .window(crate::model::Window {
                start: c.time,
                end: c.time.plus_minutes(1),
            })
            .evidence(ev)
            .confidence(confidence);
        match by_subject.get_mut(&f.id) {
            // Two changes to one subject: the later (closer) one leads.
            Some(prev) if prev.window.map(|w| w.start) < Some(c.time) => {
                let mut f = f;
                f.evidence.append(&mut prev.evidence);
                *prev = f;
            }
            Some(prev) => prev.evidence.extend(f.evidence),
            None => {
                by_subject.insert(f.id.clone(), f);
            }
        }
    }
    by_subject.into_values().collect()
}

/// "forward-request timeout 120 s → 5 s" when a policy change moved it
/// (or "set to 5 s" where the earlier version is unknown).
pub fn timeout_detail(snapshot: &Snapshot, c: &Change) -> Option<String> {
    let before = timeout_in_xml(&policy_before(snapshot, c)?);
    let after = timeout_in_xml(&policy_after(snapshot, c)?);
    match (before, after) {
        (Some(b), Some(a)) if (a - b).abs() > f64::EPSILON => {
            Some(format!("forward-request timeout {b} s → {a} s"))
        }
        (None, Some(a)) => Some(format!("forward-request timeout set to {a} s")),
        _ => None,
    }
}

fn short_resource(rid: &str) -> String {
    let segs: Vec<&str> = rid.split('/').filter(|s| !s.is_empty()).collect();
    let n = segs.len();
    if n >= 4 {
        segs[n - 4..].join("/")
    } else {
        rid.to_string()
    }
}

/// What a deployment deployed, in words: `site catalog-web (deployment
/// 4f2a9c1b)`, `container app orders-app (revision orders-app--v7)`.
pub fn deployment_target(resource_id: Option<&str>) -> String {
    let Some(rid) = resource_id else {
        return "an app".into();
    };
    match crate::model::app_of_resource(rid) {
        Some(app) => match &app.child {
            Some((kind, id)) if !id.is_empty() => {
                let kind = kind.trim_end_matches('s');
                format!("{} ({kind} {id})", app.label())
            }
            _ => app.label(),
        },
        None => rid.rsplit('/').next().unwrap_or("an app").to_string(),
    }
}
