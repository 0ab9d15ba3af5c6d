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
    BackendKind, Evidence, Finding, FindingKind, Health, PolicyScope, Route, RouteEntry,
    RouteSource, Severity, Snapshot, Subject, url_host,
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
    let health = backend_health(ctx, findings);
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
    let mismatch = !configured.is_empty()
        && !unresolved
        && !unexpected(ctx.snapshot, &configured, traffic).is_empty();
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
    ctx.snapshot
        .traffic
        .series
        .iter()
        .filter(|s| s.key.api_id == api && s.key.operation_id == op && s.key.backend == backend)
        .flat_map(|s| s.minutes.values())
        .flat_map(|m| m.backend_hosts.iter())
        .next()
        .cloned()
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
fn entity_for_url(snapshot: &Snapshot, url: &str) -> Option<String> {
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
    traffic: Option<&super::rollup::OpRollup>,
) -> Vec<(String, u64)> {
    let Some(t) = traffic else {
        return Vec::new();
    };
    let names = covered(snapshot, configured);
    t.backends
        .iter()
        .filter(|(b, n)| {
            let key = b.to_ascii_lowercase();
            let host = snapshot
                .backend(b)
                .and_then(|e| e.url.as_deref().map(|u| url_host(u).to_ascii_lowercase()));
            !names.contains(&key)
                && !host.is_some_and(|h| names.contains(&h))
                && *n >= MISMATCH_MIN_REQUESTS
                && ratio(*n, t.totals.requests) >= MISMATCH_SHARE
        })
        .cloned()
        .collect()
}

/// Health of every backend seen in traffic or configured, by lower-case
/// name: unhealthy when it fails or times out on 5% of requests overall, in
/// its last 15 minutes, or its app is unhealthy; degraded at 1%, or when a
/// backend finding shows an incident inside the window.
fn backend_health(ctx: &Ctx, findings: &[Finding]) -> BTreeMap<String, Health> {
    let mut out = BTreeMap::new();
    for b in &ctx.rollup.backends {
        let t = &b.totals;
        let recent_from = ctx.start + ctx.len as i64 - 15;
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
            ) && f
                .subject
                .backend
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(&b.backend))
        });
        if incident && h < Health::Degraded {
            h = Health::Degraded;
        }
        if app_health(ctx, &b.backend, None).is_some_and(|a| a.is_unhealthy()) {
            h = Health::Unhealthy;
        }
        out.insert(b.backend.to_ascii_lowercase(), h);
    }
    for e in &ctx.snapshot.backends {
        if !out.contains_key(&e.id.to_ascii_lowercase())
            && let Some(a) = app_health(ctx, &e.id, None)
        {
            out.insert(
                e.id.to_ascii_lowercase(),
                if a.is_unhealthy() {
                    Health::Unhealthy
                } else {
                    Health::Unknown
                },
            );
        }
    }
    out
}

/// Route-mismatch findings for entries of the map.
pub fn findings(ctx: &Ctx, map: &[RouteEntry]) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in map.iter().filter(|e| e.mismatch) {
        let traffic = ctx.rollup.operation(&e.api, &e.operation);
        let wrong = unexpected(ctx.snapshot, &e.configured, traffic);
        let total = traffic.map(|t| t.totals.requests).unwrap_or(0);
        let wrong_n: u64 = wrong.iter().map(|w| w.1).sum();
        let share = ratio(wrong_n, total);
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
        let wrong_text: Vec<String> = wrong
            .iter()
            .map(|(b, n)| format!("{b} ({n} requests)"))
            .collect();
        let summary = format!(
            "{} sends {:.0}% of its requests to {} although configuration routes it to {}",
            ctx.op_label(&e.api, &e.operation),
            share * 100.0,
            wrong_text.join(", "),
            configured.join(", ")
        );
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
        .value("unexpected_requests", wrong_n as f64)
        .value("share_affected", share);
        if let Some(w) = ctx.rollup.window {
            let names: Vec<String> = wrong.iter().map(|w| w.0.to_ascii_lowercase()).collect();
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
        f.window = ctx.rollup.window;
        out.push(f);
    }
    out
}
