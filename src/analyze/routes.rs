//! The backend map: for every operation, where configuration says it routes
//! (the API's `serviceUrl`, or `set-backend-service` in its effective policy,
//! conditional ones and pool members included) and where the logs say it
//! went (BackendId / BackendUrl), with that backend's health. Observed
//! traffic going, for a meaningful share of requests, to a backend that no
//! configured route names is a `route_mismatch`.

use super::Ctx;
use super::backends::app_health;
use super::policy::{TargetKind, effective_policy};
use super::rollup::ratio;
use crate::model::{
    BackendHealth, BackendKind, Evidence, Finding, FindingKind, Health, Minute, PolicyScope, Route,
    RouteEntry, RouteSource, Severity, Snapshot, Subject, url_host,
};
use std::collections::{BTreeMap, BTreeSet};

/// Share of an operation's requests to an unconfigured backend that makes
/// a mismatch (with at least `MISMATCH_MIN_REQUESTS`).
pub const MISMATCH_SHARE: f64 = 0.05;
pub const MISMATCH_MIN_REQUESTS: u64 = 10;

/// The backend map over the context's scope; `findings` are the backend
/// findings already made (a backend that failed or timed out in the window
/// is at least degraded).
pub fn backend_map_in(ctx: &Ctx, findings: &[Finding]) -> Vec<RouteEntry> {
    backend_map_with(ctx, &backends_in(ctx, findings))
}

/// The backend map over the context's scope, each route rated by the
/// health [`backends_in`] already judged.
pub fn backend_map_with(ctx: &Ctx, backends: &[BackendHealth]) -> Vec<RouteEntry> {
    let mut ops: BTreeSet<(String, String)> = ctx
        .snapshot
        .operations
        .iter()
        .map(|o| (o.api_id.clone(), o.id.clone()))
        .collect();
    ops.extend(
        ctx.rollup
            .operations
            .iter()
            .map(|o| (o.api.clone(), o.operation.clone())),
    );
    let health: BTreeMap<String, Health> = backends
        .iter()
        .map(|b| (b.backend.to_ascii_lowercase(), b.health))
        .collect();
    ops.into_iter()
        .map(|(api, op)| entry(ctx, &api, &op, &health))
        .collect()
}

fn entry(ctx: &Ctx, api: &str, op: &str, health: &BTreeMap<String, Health>) -> RouteEntry {
    let (configured, unresolved) = configured_routes(ctx.snapshot, api, op);
    let traffic = ctx.rollup.operation(api, op);
    let mut observed = Vec::new();
    if let Some(t) = traffic {
        for (b, _) in &t.backends {
            let host = if b.contains('.') || b.contains(':') {
                Some(format!("https://{b}"))
            } else {
                ctx.snapshot
                    .backend(b)
                    .and_then(|e| e.url.clone())
                    .or_else(|| first_host(ctx, api, op, b).map(|h| format!("https://{h}")))
            };
            observed.push(Route {
                backend: b.clone(),
                url: host,
                source: RouteSource::Observed,
                conditional: false,
            });
        }
    }
    let mismatch = !unresolved && mismatch_of(ctx, api, op, &configured).is_some();
    let worst = observed
        .iter()
        .chain(configured.iter())
        .filter_map(|r| health.get(&r.backend.to_ascii_lowercase()))
        .max()
        .copied()
        .unwrap_or_default();
    let (requests, error_rate, p95) = traffic
        .map(|t| {
            (
                t.totals.requests,
                t.totals.error_rate(),
                t.totals.total_time.p95,
            )
        })
        .unwrap_or((0, 0.0, None));
    RouteEntry {
        api: api.to_string(),
        operation: op.to_string(),
        configured,
        observed,
        health: worst,
        requests,
        error_rate,
        p95_ms: p95,
        mismatch,
    }
}

fn first_host(ctx: &Ctx, api: &str, op: &str, backend: &str) -> Option<String> {
    operation_series(ctx, api, op)
        .filter(|s| s.key.backend == backend)
        .flat_map(|s| s.minutes.values())
        .flat_map(|m| m.backend_hosts.iter())
        .next()
        .cloned()
}

/// The traffic series of one operation, in snapshot order, through the
/// rollup's index (an operation without traffic in scope has none).
fn operation_series<'a>(
    ctx: &'a Ctx,
    api: &str,
    op: &str,
) -> impl Iterator<Item = &'a crate::model::Series> + 'a {
    ctx.rollup
        .operation(api, op)
        .map(|o| o.series.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|&i| ctx.snapshot.traffic.series.get(i))
}

/// Named values substituted into a URL (`{{name}}`), where known and not secret.
fn resolve_named(snapshot: &Snapshot, s: &str) -> String {
    let mut out = s.to_string();
    for nv in snapshot.named_values.iter().filter(|n| !n.secret) {
        if let Some(v) = &nv.value {
            out = out.replace(&format!("{{{{{}}}}}", nv.name), v);
            if let Some(d) = &nv.display_name {
                out = out.replace(&format!("{{{{{d}}}}}"), v);
            }
        }
    }
    out
}

/// The backend entity a URL belongs to: same URL (ignoring a trailing
/// slash), else same host.
pub fn entity_for_url(snapshot: &Snapshot, url: &str) -> Option<String> {
    let norm = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
    let want = norm(url);
    snapshot
        .backends
        .iter()
        .find(|b| b.url.as_deref().is_some_and(|u| norm(u) == want))
        .or_else(|| {
            let host = url_host(url).to_ascii_lowercase();
            snapshot.backends.iter().find(|b| {
                !host.is_empty()
                    && b.url
                        .as_deref()
                        .is_some_and(|u| url_host(u).eq_ignore_ascii_case(&host))
            })
        })
        .map(|b| b.id.clone())
}

/// Configured routes of an operation, and whether any could not be
/// resolved (expressions in `base-url`/`backend-id`).
pub fn configured_routes(snapshot: &Snapshot, api: &str, op: &str) -> (Vec<Route>, bool) {
    let mut out = Vec::new();
    let mut unresolved = false;
    let mut unconditional_policy = false;
    if !snapshot.policies.is_empty() {
        let eff = effective_policy(snapshot, api, op);
        for t in eff.backend_targets() {
            let target = resolve_named(snapshot, &t.target);
            if target.contains("@(") || target.contains("@{") || target.contains("{{") {
                unresolved = true;
                continue;
            }
            unconditional_policy |= !t.conditional;
            match t.kind {
                TargetKind::BackendId => {
                    out.extend(expand_backend(snapshot, &target, &t.scope, t.conditional))
                }
                TargetKind::BaseUrl => out.push(Route {
                    backend: entity_for_url(snapshot, &target)
                        .unwrap_or_else(|| url_host(&target).to_string()),
                    url: Some(target.clone()),
                    source: RouteSource::Policy(t.scope.clone()),
                    conditional: t.conditional,
                }),
            }
        }
    }
    if !unconditional_policy
        && let Some(url) = snapshot.api(api).and_then(|a| a.service_url.clone())
        && !url.trim().is_empty()
    {
        let url = resolve_named(snapshot, &url);
        out.insert(
            0,
            Route {
                backend: entity_for_url(snapshot, &url)
                    .unwrap_or_else(|| url_host(&url).to_string()),
                url: Some(url),
                source: RouteSource::ServiceUrl,
                conditional: false,
            },
        );
    }
    (out, unresolved)
}

/// A backend-id route; a pool expands to its members.
fn expand_backend(
    snapshot: &Snapshot,
    id: &str,
    scope: &PolicyScope,
    conditional: bool,
) -> Vec<Route> {
    let route = |b: &str, url: Option<String>| Route {
        backend: b.to_string(),
        url,
        source: RouteSource::Policy(scope.clone()),
        conditional,
    };
    match snapshot.backend(id) {
        Some(b) if b.kind == BackendKind::Pool => {
            let mut out = vec![route(&b.id, None)];
            for m in &b.pool {
                let url = snapshot.backend(&m.id).and_then(|x| x.url.clone());
                out.push(route(&m.id, url));
            }
            out
        }
        Some(b) => vec![route(&b.id, b.url.clone())],
        None => vec![route(id, None)],
    }
}

/// Names (entity ids and URL hosts, lower-case) a set of routes covers.
fn covered(snapshot: &Snapshot, routes: &[Route]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in routes {
        out.insert(r.backend.to_ascii_lowercase());
        if let Some(u) = &r.url {
            out.insert(url_host(u).to_ascii_lowercase());
        }
        if let Some(b) = snapshot.backend(&r.backend)
            && let Some(u) = &b.url
        {
            out.insert(url_host(u).to_ascii_lowercase());
        }
    }
    out.remove("");
    out
}

/// Observed backends no configured route names, with their request counts,
/// when they carry a meaningful share of the operation's traffic.
fn unexpected(
    snapshot: &Snapshot,
    configured: &[Route],
    observed: &[(String, u64)],
) -> Vec<(String, u64)> {
    let total: u64 = observed.iter().map(|o| o.1).sum();
    let names = covered(snapshot, configured);
    observed
        .iter()
        .filter(|(b, n)| {
            !names_backend(snapshot, &names, b)
                && *n >= MISMATCH_MIN_REQUESTS
                && ratio(*n, total) >= MISMATCH_SHARE
        })
        .cloned()
        .collect()
}

fn names_backend(snapshot: &Snapshot, names: &BTreeSet<String>, b: &str) -> bool {
    let key = b.to_ascii_lowercase();
    let host = snapshot
        .backend(b)
        .and_then(|e| e.url.as_deref().map(|u| url_host(u).to_ascii_lowercase()));
    names.contains(&key) || host.is_some_and(|h| names.contains(&h))
}

/// An operation's traffic moving from one backend to another inside the
/// window: `to` first appears after the start and `from` stops within five
/// minutes of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Switch {
    pub at: Minute,
    pub from: String,
    pub to: String,
    /// Requests per backend from `at` on.
    pub after: Vec<(String, u64)>,
}

pub fn route_switch(ctx: &Ctx, api: &str, op: &str) -> Option<Switch> {
    let mut spans: Vec<(String, Minute, Minute, u64)> = Vec::new();
    for s in operation_series(ctx, api, op).filter(|s| !s.key.backend.is_empty()) {
        let mins: Vec<(&Minute, u32)> = s
            .minutes
            .iter()
            .filter(|(m, _)| super::rollup::in_scope(ctx.options, **m))
            .map(|(m, st)| (m, st.requests))
            .collect();
        let (Some(first), Some(last)) = (mins.first(), mins.last()) else {
            continue;
        };
        let n = mins.iter().map(|m| u64::from(m.1)).sum();
        spans.push((s.key.backend.clone(), *first.0, *last.0, n));
    }
    if spans.len() < 2 {
        return None;
    }
    let to = spans.iter().max_by_key(|s| s.1)?.clone();
    let from = spans
        .iter()
        .filter(|s| s.0 != to.0 && s.3 >= MISMATCH_MIN_REQUESTS && s.2 <= to.1 + 5)
        .max_by_key(|s| s.3)?
        .clone();
    if to.1 < ctx.start + 10 || to.3 < MISMATCH_MIN_REQUESTS || from.1 >= to.1 {
        return None;
    }
    let mut after: BTreeMap<String, u64> = BTreeMap::new();
    for s in operation_series(ctx, api, op).filter(|s| !s.key.backend.is_empty()) {
        let n: u64 = s
            .minutes
            .range(to.1..)
            .filter(|(m, _)| super::rollup::in_scope(ctx.options, **m))
            .map(|(_, st)| u64::from(st.requests))
            .sum();
        if n > 0 {
            *after.entry(s.key.backend.clone()).or_default() += n;
        }
    }
    Some(Switch {
        at: to.1,
        from: from.0,
        to: to.0,
        after: after.into_iter().collect(),
    })
}

/// The backend the API's `serviceUrl` names, as names routes cover.
fn service_url_names(snapshot: &Snapshot, api: &str) -> BTreeSet<String> {
    let Some(url) = snapshot.api(api).and_then(|a| a.service_url.clone()) else {
        return BTreeSet::new();
    };
    let url = resolve_named(snapshot, &url);
    let route = Route {
        backend: entity_for_url(snapshot, &url).unwrap_or_else(|| url_host(&url).to_string()),
        url: Some(url),
        source: RouteSource::ServiceUrl,
        conditional: false,
    };
    covered(snapshot, &[route])
}

/// What is wrong with an operation's routing, if anything.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// Traffic reaches backends no configured route names.
    Unconfigured(Vec<(String, u64)>),
    /// Traffic moved away from the backend the API's serviceUrl names.
    Switched(Switch),
}

pub fn mismatch_of(ctx: &Ctx, api: &str, op: &str, configured: &[Route]) -> Option<Mismatch> {
    let traffic = ctx.rollup.operation(api, op)?;
    let switch = route_switch(ctx, api, op);
    let observed = switch
        .as_ref()
        .map(|s| s.after.clone())
        .unwrap_or_else(|| traffic.backends.clone());
    if !configured.is_empty() {
        let wrong = unexpected(ctx.snapshot, configured, &observed);
        if !wrong.is_empty() {
            return Some(Mismatch::Unconfigured(wrong));
        }
    }
    let sw = switch?;
    let service = service_url_names(ctx.snapshot, api);
    (!service.is_empty()
        && names_backend(ctx.snapshot, &service, &sw.from)
        && !names_backend(ctx.snapshot, &service, &sw.to))
    .then_some(Mismatch::Switched(sw))
}

/// Every backend's own health over the context's scope (see
/// [`BackendHealth`]), sorted by name; `findings` as for [`backend_map_in`].
pub fn backends_in(ctx: &Ctx, findings: &[Finding]) -> Vec<BackendHealth> {
    backend_health(ctx, findings)
        .into_values()
        .map(|(backend, health)| BackendHealth { backend, health })
        .collect()
}

/// Health of every backend seen in traffic or configured, by lower-case
/// name (with the name as written): unhealthy when it fails or times out on 5% of requests overall, in
/// its last 15 minutes, or its app is unhealthy; degraded at 1%, or when a
/// backend finding shows an incident inside the window.
fn backend_health(ctx: &Ctx, findings: &[Finding]) -> BTreeMap<String, (String, Health)> {
    let mut out = BTreeMap::new();
    for b in &ctx.rollup.backends {
        let t = &b.totals;
        let recent_from = ctx.end_minute() - 15;
        let (mut rn, mut rk) = (0, 0);
        for m in b.minutes.iter().filter(|m| m.minute >= recent_from) {
            rn += m.stats.requests;
            rk += m.stats.failures().max(m.stats.timeouts);
        }
        let recent = if rn >= 20 { ratio(rk, rn) } else { 0.0 };
        let fail = ratio(t.failures(), t.requests)
            .max(ratio(t.timeouts, t.requests))
            .max(recent);
        let mut h = if t.requests == 0 {
            Health::Unknown
        } else if fail >= 0.05 {
            Health::Unhealthy
        } else if fail >= 0.01 {
            Health::Degraded
        } else {
            Health::Healthy
        };
        let incident = findings.iter().any(|f| {
            matches!(
                f.kind,
                FindingKind::BackendFailure
                    | FindingKind::BackendTimeout
                    | FindingKind::BackendUnhealthy
            ) && f.subject.backend.as_deref().is_some_and(|x| {
                x.eq_ignore_ascii_case(&b.backend)
                    || x.eq_ignore_ascii_case(&ctx.backend_label(&b.backend))
            })
        });
        if incident && h < Health::Degraded {
            h = Health::Degraded;
        }
        if app_health(ctx, &b.backend, None).is_some_and(|a| a.is_unhealthy()) {
            h = Health::Unhealthy;
        }
        let label = ctx.backend_label(&b.backend);
        if !label.eq_ignore_ascii_case(&b.backend) {
            let e = out
                .entry(label.to_ascii_lowercase())
                .or_insert((label.to_string(), h));
            e.1 = e.1.max(h);
        }
        let e = out
            .entry(b.backend.to_ascii_lowercase())
            .or_insert((b.backend.clone(), h));
        e.1 = e.1.max(h);
    }
    for e in &ctx.snapshot.backends {
        if !out.contains_key(&e.id.to_ascii_lowercase())
            && let Some(a) = app_health(ctx, &e.id, None)
        {
            out.insert(
                e.id.to_ascii_lowercase(),
                (
                    e.id.clone(),
                    if a.is_unhealthy() {
                        Health::Unhealthy
                    } else {
                        Health::Unknown
                    },
                ),
            );
        }
    }
    out
}

/// Route-mismatch findings for entries of the map.
pub fn findings(ctx: &Ctx, map: &[RouteEntry]) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in map.iter().filter(|e| e.mismatch) {
        let Some(m) = mismatch_of(ctx, &e.api, &e.operation, &e.configured) else {
            continue;
        };
        let traffic = ctx.rollup.operation(&e.api, &e.operation);
        let total = traffic.map(|t| t.totals.requests).unwrap_or(0);
        let configured: Vec<String> = e
            .configured
            .iter()
            .map(|r| {
                format!(
                    "{}{} ({})",
                    r.backend,
                    if r.conditional { " [conditional]" } else { "" },
                    match &r.source {
                        RouteSource::ServiceUrl => "serviceUrl".to_string(),
                        RouteSource::Policy(s) => format!("set-backend-service at {s}"),
                        RouteSource::Observed => "observed".to_string(),
                    }
                )
            })
            .collect();
        let label = ctx.op_label(&e.api, &e.operation);
        let (summary, wrong, share, window) = match &m {
            Mismatch::Unconfigured(wrong) => {
                let wrong_n: u64 = wrong.iter().map(|w| w.1).sum();
                let share = ratio(wrong_n, total);
                let text: Vec<String> = wrong
                    .iter()
                    .map(|(b, n)| format!("{b} ({n} requests)"))
                    .collect();
                (
                    format!(
                        "{label} sends {:.0}% of its requests to {} although configuration routes it to {}",
                        share * 100.0,
                        text.join(", "),
                        configured.join(", ")
                    ),
                    wrong.iter().map(|w| w.0.clone()).collect::<Vec<_>>(),
                    share,
                    ctx.rollup.window,
                )
            }
            Mismatch::Switched(sw) => {
                let after: u64 = sw.after.iter().map(|a| a.1).sum();
                let to_n = sw
                    .after
                    .iter()
                    .find(|a| a.0 == sw.to)
                    .map(|a| a.1)
                    .unwrap_or(0);
                let window = ctx.rollup.window.map(|w| crate::model::Window {
                    start: crate::model::Timestamp::from_minute(sw.at),
                    end: w.end,
                });
                let impact = window
                    .and_then(|w| traffic.map(|t| error_shift(t, w)))
                    .unwrap_or_default();
                let by = e
                    .configured
                    .iter()
                    .find(|r| {
                        names_backend(
                            ctx.snapshot,
                            &covered(ctx.snapshot, std::slice::from_ref(r)),
                            &sw.to,
                        )
                    })
                    .map(|r| match &r.source {
                        RouteSource::Policy(s) => format!(" (set-backend-service at {s})"),
                        _ => String::new(),
                    })
                    .unwrap_or_default();
                (
                    format!(
                        "since {} UTC {label} goes to {}{by} instead of {}, the backend the API's serviceUrl names and that served it before ({to_n} of {after} requests since){impact}",
                        crate::model::Timestamp::from_minute(sw.at).hhmm(),
                        sw.to,
                        sw.from,
                    ),
                    vec![sw.to.clone()],
                    ratio(to_n, after),
                    window,
                )
            }
        };
        let mut ev = Evidence::text(format!(
            "observed backends: {}; configured: {}",
            e.observed
                .iter()
                .map(|r| r.backend.clone())
                .collect::<Vec<_>>()
                .join(", "),
            configured.join(", ")
        ))
        .value("requests", total as f64)
        .value("share_affected", share);
        if let Some(w) = window {
            let names: Vec<String> = wrong.iter().map(|w| w.to_ascii_lowercase()).collect();
            ev.records = ctx.samples(
                w,
                |k| {
                    k.api_id == e.api
                        && k.operation_id == e.operation
                        && names.contains(&k.backend.to_ascii_lowercase())
                },
                |_| true,
                3,
            );
            ev.sources = super::sources_of(&ev.records);
        }
        let severity = if share >= 0.5 {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut f = Finding::new(
            FindingKind::RouteMismatch,
            severity,
            Subject::operation(&e.api, &e.operation),
            summary,
        )
        .evidence(ev)
        .confidence(if share >= 0.5 { 0.9 } else { 0.7 });
        f.window = window;
        out.push(f);
    }
    out
}

/// "; 4xx 2% → 88%" when the error mix changed at the switch.
fn error_shift(t: &super::rollup::OpRollup, w: crate::model::Window) -> String {
    let (mut bn, mut b4, mut b5, mut an, mut a4, mut a5) = (0, 0, 0, 0, 0, 0);
    for m in &t.minutes {
        let s = &m.stats;
        if crate::model::Timestamp::from_minute(m.minute) < w.start {
            bn += s.requests;
            b4 += s.status_4xx;
            b5 += s.status_5xx;
        } else {
            an += s.requests;
            a4 += s.status_4xx;
            a5 += s.status_5xx;
        }
    }
    let mut parts = Vec::new();
    for (name, b, a) in [
        ("4xx", ratio(b4, bn), ratio(a4, an)),
        ("5xx", ratio(b5, bn), ratio(a5, an)),
    ] {
        if a >= 0.05 && a >= 3.0 * b {
            parts.push(format!("{name} {:.0}% → {:.0}%", b * 100.0, a * 100.0));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}
