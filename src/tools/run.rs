//! What each tool computes: lookups over the snapshot, the rollup and the
//! diagnosis, turned into JSON and a short text. Names given by a person or
//! a model are resolved by the one resolver (`super::resolve`: exact id,
//! alias, unique prefix, near match); a call is checked before it runs.

use super::{Instance, Tool, ToolOutput, resolve};
use crate::analyze::rollup::{Stats, group_stats};
use crate::analyze::{self, network, policy, scaling};
use crate::model::{Access, Direction, Finding, Health, Snapshot, Timestamp, Window};
use serde_json::{Value, json};
use std::fmt::Write;

/// A period counted back from the end of the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
    Week,
    All,
}

impl Period {
    pub fn parse(s: &str) -> Period {
        match s.trim().to_ascii_lowercase().as_str() {
            "1h" | "hour" | "last hour" | "60m" => Period::Hour,
            "24h" | "1d" | "day" | "today" => Period::Day,
            "7d" | "week" | "1w" => Period::Week,
            _ => Period::All,
        }
    }
    pub fn minutes(self) -> Option<i64> {
        match self {
            Period::Hour => Some(60),
            Period::Day => Some(24 * 60),
            Period::Week => Some(7 * 24 * 60),
            Period::All => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Period::Hour => "last hour",
            Period::Day => "last 24 h",
            Period::Week => "last 7 days",
            Period::All => "all data",
        }
    }
}

/// The window a period covers in this data, and whether the data is
/// shorter than the period asked for.
pub fn period_window(snapshot: &Snapshot, period: Period) -> (Option<Window>, bool) {
    let Some(range) = snapshot.loaded.time_range else {
        return (None, false);
    };
    match period.minutes() {
        None => (Some(range), false),
        Some(m) => {
            let start = Timestamp(range.end.0 - m * 60_000);
            if start <= range.start {
                (Some(range), true)
            } else {
                (
                    Some(Window {
                        start,
                        end: range.end,
                    }),
                    false,
                )
            }
        }
    }
}

/// An API id from a name (configured, or only seen in traffic), or the name
/// itself when it resolves to none.
fn api_id(snapshot: &Snapshot, name: &str) -> String {
    resolve::api(snapshot, name)
        .found()
        .map_or_else(|| name.to_string(), str::to_string)
}

/// An operation of `api` (or any API) by id, display name or URL template:
/// (API id, operation id).
pub fn resolve_operation(
    snapshot: &Snapshot,
    api: Option<&str>,
    name: &str,
) -> Option<(String, String)> {
    let r = resolve::operation(snapshot, api, name);
    let op = r.found()?;
    let of_api = |a: &str| api.is_none_or(|w| w.eq_ignore_ascii_case(a));
    snapshot
        .operations
        .iter()
        .find(|o| o.id == op && of_api(&o.api_id))
        .map(|o| (o.api_id.clone(), o.id.clone()))
        .or_else(|| {
            snapshot
                .traffic
                .series
                .iter()
                .find(|s| s.key.operation_id == op && of_api(&s.key.api_id))
                .map(|s| (s.key.api_id.clone(), s.key.operation_id.clone()))
        })
}

/// A backend id from a name (configured, or only seen in traffic), or the
/// name itself.
fn backend_id(snapshot: &Snapshot, name: &str) -> String {
    resolve::backend(snapshot, name)
        .found()
        .map_or_else(|| name.to_string(), str::to_string)
}

fn stats_json(s: &Stats) -> Value {
    json!({
        "requests": s.requests,
        "status_5xx": s.status_5xx,
        "error_rate": round4(s.error_rate()),
        "status_4xx": s.status_4xx,
        "status_429": s.status_429,
        "timeouts": s.timeouts,
        "connection_failures": s.connection_failures,
        "backend_5xx": s.backend_5xx,
        "p50_ms": s.total_time.p50,
        "p95_ms": s.total_time.p95,
        "p99_ms": s.total_time.p99,
        "backend_p95_ms": s.backend_time.p95,
        "error_reasons": s.error_reasons,
    })
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// `12.3%`.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn stats_line(s: &Stats) -> String {
    let mut t = format!(
        "{} requests, {} 5xx ({}), {} 4xx, {} 429, {} timeouts",
        s.requests,
        s.status_5xx,
        pct(s.error_rate()),
        s.status_4xx,
        s.status_429,
        s.timeouts
    );
    if let Some(p) = s.total_time.p95 {
        let _ = write!(t, ", p95 {p} ms");
    }
    if !s.error_reasons.is_empty() {
        let reasons: Vec<String> = s
            .error_reasons
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = write!(t, "; error reasons: {}", reasons.join(", "));
    }
    t
}

fn options_for(w: Option<Window>) -> analyze::Options {
    analyze::Options {
        since: w.map(|w| w.start),
        until: w.map(|w| Timestamp(w.end.0 + 1)),
    }
}

fn finding_json(f: &Finding, full: bool) -> Value {
    let ev: Vec<Value> = f
        .evidence
        .iter()
        .take(if full { 8 } else { 2 })
        .map(|e| {
            let mut v = json!({"text": e.text});
            if full {
                v["values"] = json!(e.values);
                v["records"] = json!(e.records.iter().take(3).collect::<Vec<_>>());
                v["sources"] = json!(e.sources.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                if let Some(x) = &e.excerpt {
                    v["excerpt"] = json!(x);
                }
            }
            v
        })
        .collect();
    json!({
        "id": f.id,
        "kind": f.kind.as_str(),
        "severity": f.severity.as_str(),
        "subject": f.subject,
        "window": f.window,
        "summary": f.summary,
        "confidence": round4(f.confidence),
        "rule": f.rule,
        "location": f.location.as_ref().map(|l| l.to_string()),
        "evidence": ev,
    })
}

/// `[id] severity kind: summary`.
pub fn finding_line(f: &Finding) -> String {
    format!("[{}] {} {}: {}", f.id, f.severity, f.kind, f.summary)
}

/// The query layer's finding filter: [`Subject::concerns`](crate::model::Subject::concerns)
/// for the API and for the backend, both when both are given.
fn subject_matches(f: &Finding, api: Option<&str>, backend: Option<&str>) -> bool {
    let backends: Vec<String> = backend.map(str::to_string).into_iter().collect();
    (api.is_none() || f.subject.concerns(api, None, &[]))
        && (backend.is_none() || f.subject.concerns(None, None, &backends))
}

pub(super) fn run(tool: &Tool, inst: &Instance) -> ToolOutput {
    let snap = &inst.snapshot;
    let (data, text) = match tool {
        Tool::ListApis => list_apis(snap),
        Tool::ListOperations { api } => list_operations(snap, api.as_deref()),
        Tool::ListProducts => {
            let rows: Vec<Value> = snap
                .products
                .iter()
                .map(|p| json!({"id": p.id, "display_name": p.display_name, "state": p.state, "subscription_required": p.subscription_required, "apis": p.apis}))
                .collect();
            let mut t = format!("{} products", rows.len());
            for p in &snap.products {
                let _ = write!(
                    t,
                    "\n- {} ({} APIs: {})",
                    p.id,
                    p.apis.len(),
                    p.apis.join(", ")
                );
            }
            (json!(rows), t)
        }
        Tool::ListBackends => backend_health(inst, None),
        Tool::FailureRate {
            api,
            operation,
            backend,
            period,
        } => failure_rate(
            snap,
            api.as_deref(),
            operation.as_deref(),
            backend.as_deref(),
            Period::parse(period.as_deref().unwrap_or("all")),
        ),
        Tool::FailureLog {
            api,
            operation,
            backend,
            limit,
        } => failure_log(
            snap,
            api.as_deref(),
            operation.as_deref(),
            backend.as_deref(),
            limit.unwrap_or(5).min(20),
        ),
        Tool::RecentChanges { limit } => recent_changes(snap, limit.unwrap_or(10).min(40)),
        Tool::BackendMap { api } => backend_map(inst, api.as_deref()),
        Tool::BackendHealth { backend } => backend_health(inst, backend.as_deref()),
        Tool::Policies { api, operation } => policies(snap, api.as_deref(), operation.as_deref()),
        Tool::NsgRules { nsg } => nsg_rules(snap, nsg.as_deref()),
        Tool::NetworkCheck {
            source,
            destination,
            port,
            outbound,
        } => network_check(snap, source.as_deref(), destination, *port, *outbound),
        Tool::Capacity => capacity(inst),
        Tool::Summary => summary(inst),
        Tool::Findings { kind, api, backend } => {
            findings(inst, kind.as_deref(), api.as_deref(), backend.as_deref())
        }
        Tool::Explain { id } => explain(inst, id),
        Tool::Proposals { finding } => proposals(inst, finding.as_deref()),
    };
    ToolOutput {
        tool: tool.name().to_string(),
        data,
        text,
        truncated: false,
    }
}

fn list_apis(snap: &Snapshot) -> (Value, String) {
    let mut rows = Vec::new();
    let mut text = format!("{} APIs", snap.apis.len());
    for a in &snap.apis {
        let totals = group_stats(snap, &analyze::Options::default(), |k| {
            k.api_id.eq_ignore_ascii_case(&a.id)
        });
        let ops = snap.operations.iter().filter(|o| o.api_id == a.id).count();
        rows.push(json!({
            "id": a.id, "display_name": a.display_name, "path": a.path,
            "service_url": a.service_url, "operations": ops,
            "requests": totals.requests, "status_5xx": totals.status_5xx,
            "error_rate": round4(totals.error_rate()),
        }));
        let _ = write!(
            text,
            "\n- {} (/{}): {} operations, {} requests, 5xx {}",
            a.id,
            a.path.as_deref().unwrap_or(""),
            ops,
            totals.requests,
            pct(totals.error_rate())
        );
    }
    (json!(rows), text)
}

fn list_operations(snap: &Snapshot, api: Option<&str>) -> (Value, String) {
    let api = api.map(|a| api_id(snap, a));
    let r = analyze::rollup(snap, &analyze::Options::default());
    let mut rows = Vec::new();
    let mut text = String::new();
    for o in snap.operations.iter().filter(|o| {
        api.as_deref()
            .is_none_or(|a| o.api_id.eq_ignore_ascii_case(a))
    }) {
        let st = r
            .operation(&o.api_id, &o.id)
            .map(|x| x.totals.clone())
            .unwrap_or_default();
        rows.push(json!({
            "api": o.api_id, "id": o.id, "method": o.method, "url_template": o.url_template,
            "requests": st.requests, "error_rate": round4(st.error_rate()), "p95_ms": st.total_time.p95,
        }));
        let _ = writeln!(
            text,
            "- {}/{} ({} {}): {} requests, 5xx {}",
            o.api_id,
            o.id,
            o.method.as_deref().unwrap_or(""),
            o.url_template.as_deref().unwrap_or(""),
            st.requests,
            pct(st.error_rate())
        );
    }
    if rows.is_empty() {
        text = "no operations loaded for that API".to_string();
    }
    (json!(rows), text.trim_end().to_string())
}

/// Requests and failures over a period for an operation, an API, a backend
/// or the whole instance.
pub fn failure_rate(
    snap: &Snapshot,
    api: Option<&str>,
    operation: Option<&str>,
    backend: Option<&str>,
    period: Period,
) -> (Value, String) {
    let (window, short) = period_window(snap, period);
    let options = options_for(window);
    let r = analyze::rollup(snap, &options);
    let api = api.map(|a| api_id(snap, a));
    let op = operation.map(|o| {
        resolve_operation(snap, api.as_deref(), o)
            .map(|(_, id)| id)
            .unwrap_or_else(|| o.to_string())
    });
    let totals: Stats;
    let mut parts = Vec::new();
    let scope;
    if let Some(b) = backend {
        let id = backend_id(snap, b);
        scope = format!("backend {id}");
        totals = group_stats(snap, &options, |k| {
            !k.backend.is_empty() && k.backend.eq_ignore_ascii_case(&id)
        });
    } else {
        scope = match (&api, &op) {
            (Some(a), Some(o)) => format!("operation {a}/{o}"),
            (Some(a), None) => format!("API {a}"),
            (None, Some(o)) => format!("operation {o}"),
            (None, None) => "every API".to_string(),
        };
        totals = group_stats(snap, &options, |k| {
            api.as_deref()
                .is_none_or(|a| k.api_id.eq_ignore_ascii_case(a))
                && op
                    .as_deref()
                    .is_none_or(|x| k.operation_id.eq_ignore_ascii_case(x))
        });
        for o in r.operations.iter().filter(|o| {
            api.as_deref().is_none_or(|a| o.api.eq_ignore_ascii_case(a))
                && op
                    .as_deref()
                    .is_none_or(|x| o.operation.eq_ignore_ascii_case(x))
        }) {
            parts.push(
                json!({"api": o.api, "operation": o.operation, "requests": o.totals.requests,
                "status_5xx": o.totals.status_5xx, "error_rate": round4(o.totals.error_rate()),
                "timeouts": o.totals.timeouts, "p95_ms": o.totals.total_time.p95}),
            );
        }
    }
    let mut text = match window {
        Some(w) => format!(
            "{scope}, {} ({} – {}): {}",
            period.label(),
            w.start,
            w.end,
            stats_line(&totals)
        ),
        None => format!("{scope}: no time-stamped traffic loaded"),
    };
    if short {
        let _ = write!(
            text,
            "\nnote: the data covers only {} minutes, less than the {} asked for",
            window.map(|w| w.duration_minutes()).unwrap_or(0),
            period.label()
        );
    }
    if parts.len() > 1 {
        parts.sort_by(|a, b| b["status_5xx"].as_u64().cmp(&a["status_5xx"].as_u64()));
        for p in parts.iter().take(6) {
            let _ = write!(
                text,
                "\n- {}/{}: {} requests, 5xx {}",
                p["api"].as_str().unwrap_or(""),
                p["operation"].as_str().unwrap_or(""),
                p["requests"],
                pct(p["error_rate"].as_f64().unwrap_or(0.0))
            );
        }
    }
    let data = json!({"scope": scope, "period": period.label(), "window": window,
        "data_shorter_than_period": short, "totals": stats_json(&totals), "operations": parts});
    (data, text)
}

fn failure_log(
    snap: &Snapshot,
    api: Option<&str>,
    operation: Option<&str>,
    backend: Option<&str>,
    limit: usize,
) -> (Value, String) {
    let api = api.map(|a| api_id(snap, a));
    let operation = operation.map(|o| {
        resolve_operation(snap, api.as_deref(), o).map_or_else(|| o.to_string(), |(_, id)| id)
    });
    let operation = operation.as_deref();
    let backend = backend.map(|b| backend_id(snap, b));
    let mut rows: Vec<&crate::model::RequestRecord> = Vec::new();
    for s in &snap.traffic.series {
        let k = &s.key;
        if api
            .as_deref()
            .is_some_and(|a| !k.api_id.eq_ignore_ascii_case(a))
            || operation.is_some_and(|o| !k.operation_id.eq_ignore_ascii_case(o))
            || backend
                .as_deref()
                .is_some_and(|b| !k.backend.eq_ignore_ascii_case(b))
        {
            continue;
        }
        for m in s.minutes.values() {
            rows.extend(m.samples.iter());
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.time));
    rows.truncate(limit);
    let mut text = format!("{} failing log rows (newest first)", rows.len());
    for r in &rows {
        let _ = write!(
            text,
            "\n- {} {} {}/{} {} backend {} {} ms {} {} ({})",
            r.time,
            r.response_code,
            r.api_id,
            r.operation_id,
            r.method.as_deref().unwrap_or(""),
            r.backend_response_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            r.total_time_ms,
            r.last_error_reason.as_deref().unwrap_or(""),
            r.last_error_message.as_deref().unwrap_or(""),
            r.origin
        );
    }
    (json!(rows), text)
}

fn recent_changes(snap: &Snapshot, limit: usize) -> (Value, String) {
    let mut ch: Vec<&crate::model::Change> = snap.changes.iter().collect();
    ch.sort_by_key(|c| std::cmp::Reverse(c.time));
    let total = ch.len();
    ch.truncate(limit);
    let mut text = format!("{total} changes in the activity log; newest {}:", ch.len());
    let rows: Vec<Value> = ch
        .iter()
        .map(|c| {
            let target = c
                .policy_scope
                .as_ref()
                .map(|s| s.to_string())
                .or_else(|| c.resource_id.as_deref().map(short_resource))
                .unwrap_or_default();
            let _ = write!(
                text,
                "\n- {} {:?} {} on {} by {} ({})",
                c.time,
                c.kind,
                c.operation,
                target,
                c.caller.as_deref().unwrap_or("unknown"),
                c.status.as_deref().unwrap_or("")
            );
            json!({"time": c.time, "kind": format!("{:?}", c.kind).to_lowercase(), "operation": c.operation,
                "target": target, "caller": c.caller, "status": c.status,
                "policy_changed": c.policy_after.is_some(), "origin": c.origin.to_string()})
        })
        .collect();
    if total == 0 {
        text = "no changes loaded (no activity log in the data)".to_string();
    }
    (json!({"total": total, "changes": rows}), text)
}

/// The last three segments of a resource id.
fn short_resource(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    parts[parts.len().saturating_sub(3)..].join("/")
}

fn backend_map(inst: &Instance, api: Option<&str>) -> (Value, String) {
    let api = api.map(|a| api_id(&inst.snapshot, a));
    let rows: Vec<&crate::model::RouteEntry> = inst
        .diagnosis
        .backend_map
        .iter()
        .filter(|r| api.as_deref().is_none_or(|a| r.api.eq_ignore_ascii_case(a)))
        .collect();
    let mut text = String::new();
    for r in &rows {
        let conf: Vec<&str> = r.configured.iter().map(|x| x.backend.as_str()).collect();
        let obs: Vec<&str> = r.observed.iter().map(|x| x.backend.as_str()).collect();
        let _ = writeln!(
            text,
            "- {}/{} → configured {} observed {}: {}, {} requests, 5xx {}{}",
            r.api,
            r.operation,
            conf.join("|"),
            obs.join("|"),
            r.health.as_str(),
            r.requests,
            pct(r.error_rate),
            if r.mismatch { ", MISMATCH" } else { "" }
        );
    }
    if rows.is_empty() {
        text = "no routes for that API".to_string();
    }
    (json!(rows), text.trim_end().to_string())
}

/// Per backend: configuration, worst health on the backend map, traffic
/// totals and findings.
fn backend_health(inst: &Instance, backend: Option<&str>) -> (Value, String) {
    let snap = &inst.snapshot;
    let want = backend.map(|b| backend_id(snap, b).to_ascii_lowercase());
    let mut rows = Vec::new();
    let mut text = String::new();
    for b in &snap.backends {
        let id = b.id.to_ascii_lowercase();
        if want.as_deref().is_some_and(|w| id != w) {
            continue;
        }
        let host = b
            .url
            .as_deref()
            .map(crate::model::url_host)
            .unwrap_or("")
            .to_ascii_lowercase();
        let totals = group_stats(snap, &analyze::Options::default(), |k| {
            let k = k.backend.to_ascii_lowercase();
            !k.is_empty() && (k == id || (!host.is_empty() && k == host))
        });
        let health = inst
            .diagnosis
            .backend_map
            .iter()
            .filter(|e| e.calls(&b.id))
            .map(|e| e.health)
            .max()
            .unwrap_or(Health::Unknown);
        let fs: Vec<&Finding> = inst
            .diagnosis
            .findings
            .iter()
            .filter(|f| {
                f.subject
                    .backend
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&b.id))
            })
            .collect();
        let _ = writeln!(
            text,
            "- {} ({}{}): {}; {}",
            b.id,
            match b.kind {
                crate::model::BackendKind::Pool => "pool",
                crate::model::BackendKind::Single => "single",
            },
            b.url
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default(),
            health.as_str(),
            stats_line(&totals)
        );
        for f in &fs {
            let _ = writeln!(text, "    {}", finding_line(f));
        }
        rows.push(json!({
            "id": b.id, "kind": format!("{:?}", b.kind).to_lowercase(), "url": b.url,
            "pool": b.pool.iter().map(|m| &m.id).collect::<Vec<_>>(),
            "circuit_breaker": !b.circuit_breaker.is_empty(),
            "health": health.as_str(), "traffic": stats_json(&totals),
            "findings": fs.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        }));
    }
    if rows.is_empty() {
        text = match backend {
            Some(b) => format!(
                "no backend matches `{b}`; backends: {}",
                backend_names(snap)
            ),
            None => "no backends loaded".to_string(),
        };
    }
    (json!(rows), text.trim_end().to_string())
}

fn backend_names(snap: &Snapshot) -> String {
    let n: Vec<&str> = snap.backends.iter().map(|b| b.id.as_str()).collect();
    n.join(", ")
}

fn policies(snap: &Snapshot, api: Option<&str>, operation: Option<&str>) -> (Value, String) {
    let api = api.map(|a| api_id(snap, a));
    let docs: Vec<Value> = snap
        .policies
        .iter()
        .filter(|p| {
            use crate::model::PolicyScope as S;
            match (&p.scope, &api) {
                (_, None) => true,
                (S::Global | S::Product(_) | S::Fragment(_), Some(_)) => true,
                (S::Api(a), Some(x)) | (S::Operation(a, _), Some(x)) => a.eq_ignore_ascii_case(x),
                _ => false,
            }
        })
        .map(|p| json!({"scope": p.scope.to_string(), "origin": p.origin.to_string(), "xml": super::head_tail(&p.xml, 1500)}))
        .collect();
    let mut text = format!("{} policy documents", docs.len());
    for d in &docs {
        let _ = write!(
            text,
            "\n- {} ({})",
            d["scope"].as_str().unwrap_or(""),
            d["origin"].as_str().unwrap_or("")
        );
    }
    let mut effective = Vec::new();
    if let Some(a) = &api {
        let ops: Vec<String> = match operation {
            Some(o) => vec![
                resolve_operation(snap, Some(a), o)
                    .map(|x| x.1)
                    .unwrap_or_else(|| o.to_string()),
            ],
            None => snap
                .operations
                .iter()
                .filter(|o| o.api_id.eq_ignore_ascii_case(a))
                .map(|o| o.id.clone())
                .collect(),
        };
        for op in ops.iter().take(12) {
            let e = policy::effective_policy(snap, a, op);
            let per_section: Vec<Value> = policy::Section::ALL
                .iter()
                .map(|s| {
                    json!({"section": s.as_str(), "statements": e.section(*s).iter()
                        .map(|p| format!("{} @{}", p.element.name, p.scope)).collect::<Vec<_>>()})
                })
                .collect();
            let timeout = e.forward_timeout();
            let targets: Vec<String> = e
                .backend_targets()
                .iter()
                .map(|t| format!("{} @{}", t.target, t.scope))
                .collect();
            let limits: Vec<String> = scaling::quota::limits_for(snap, a, op)
                .iter()
                .map(|l| {
                    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".to_string());
                    format!(
                        "{} @{} calls={} renewal={}",
                        l.policy,
                        l.scope,
                        or_unknown(l.calls.map(|c| c.to_string())),
                        or_unknown(l.renewal_secs.map(|s| format!("{s}s")))
                    )
                })
                .collect();
            let _ = write!(
                text,
                "\n- effective {a}/{op}: {}; forward-request timeout {}; backend {}{}",
                policy::Section::ALL
                    .iter()
                    .map(|s| {
                        let names: Vec<String> = e
                            .section(*s)
                            .iter()
                            .map(|p| p.element.name.clone())
                            .collect();
                        format!("{}[{}]", s.as_str(), names.join(","))
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                timeout
                    .as_ref()
                    .map(|(t, s)| format!("{t} s at {s}"))
                    .unwrap_or_else(|| "none".into()),
                if targets.is_empty() {
                    "from serviceUrl".to_string()
                } else {
                    targets.join(", ")
                },
                if limits.is_empty() {
                    String::new()
                } else {
                    format!("; limits {}", limits.join(", "))
                }
            );
            effective.push(json!({"api": a, "operation": op, "sections": per_section,
                "forward_timeout_secs": timeout.as_ref().map(|t| t.0),
                "forward_timeout_scope": timeout.as_ref().map(|t| t.1.to_string()),
                "backend_targets": targets, "limits": limits, "scopes": e.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "notes": e.notes}));
        }
    }
    (json!({"documents": docs, "effective": effective}), text)
}

fn rule_json(r: &crate::model::SecurityRule) -> Value {
    json!({"name": r.name, "priority": r.priority,
        "direction": if r.direction == Direction::Inbound { "inbound" } else { "outbound" },
        "access": if r.access == Access::Allow { "allow" } else { "deny" },
        "protocol": r.protocol, "source": r.source_prefixes, "source_ports": r.source_ports,
        "destination": r.destination_prefixes, "destination_ports": r.destination_ports,
        "default": r.default})
}

fn nsg_rules(snap: &Snapshot, nsg: Option<&str>) -> (Value, String) {
    let mut rows = Vec::new();
    let mut text = String::new();
    for n in snap
        .nsgs
        .iter()
        .filter(|n| nsg.is_none_or(|x| n.name.eq_ignore_ascii_case(x)))
    {
        let _ = writeln!(
            text,
            "NSG {} (subnets: {}), {} rules:",
            n.name,
            n.subnets.join(", "),
            n.rules.len()
        );
        let mut rules = n.rules.clone();
        rules.sort_by_key(|r| (r.direction == Direction::Outbound, r.priority));
        for r in &rules {
            let _ = writeln!(
                text,
                "- {} {} {} {} {} {} -> {}:{}",
                r.priority,
                if r.direction == Direction::Inbound {
                    "in "
                } else {
                    "out"
                },
                if r.access == Access::Allow {
                    "allow"
                } else {
                    "DENY "
                },
                r.name,
                r.protocol,
                r.source_prefixes.join(","),
                r.destination_prefixes.join(","),
                r.destination_ports.join(",")
            );
        }
        rows.push(
            json!({"name": n.name, "subnets": n.subnets, "origin": n.origin.to_string(),
            "rules": rules.iter().map(rule_json).collect::<Vec<_>>()}),
        );
    }
    if rows.is_empty() {
        text = "no network security groups loaded (the gateway may not be VNet-injected, or the NSG export is missing)".to_string();
    }
    (json!(rows), text.trim_end().to_string())
}

fn network_check(
    snap: &Snapshot,
    source: Option<&str>,
    destination: &str,
    port: u16,
    outbound: bool,
) -> (Value, String) {
    let gateway = snap
        .service
        .as_ref()
        .and_then(|s| s.private_ips.first().cloned())
        .unwrap_or_else(|| "VirtualNetwork".to_string());
    let (dir, src, dst) = if outbound {
        (
            Direction::Outbound,
            source.map(str::to_string).unwrap_or(gateway),
            destination.to_string(),
        )
    } else {
        (
            Direction::Inbound,
            source
                .map(str::to_string)
                .unwrap_or_else(|| "Internet".into()),
            destination.to_string(),
        )
    };
    let flow = network::Flow::new(dir, &src, &dst, port);
    let ctx = network::eval::NetContext::with_region(
        snap.service.as_ref().and_then(|s| s.location.as_deref()),
    );
    let mut rows = Vec::new();
    let mut text = String::new();
    for n in &snap.nsgs {
        let v = network::evaluate_in(n, &flow, &ctx);
        let _ = writeln!(
            text,
            "{}: {} is {} by {} (priority {}){}",
            n.name,
            flow.describe(),
            if v.access == Access::Allow {
                "allowed"
            } else {
                "DENIED"
            },
            v.rule,
            v.priority,
            if v.certain() {
                ""
            } else {
                " (uncertain: a rule before it could not be decided)"
            }
        );
        rows.push(json!({"nsg": n.name, "flow": flow.describe(), "verdict": v}));
    }
    if rows.is_empty() {
        text = "no NSGs loaded: nothing to evaluate".to_string();
    }
    (json!(rows), text.trim_end().to_string())
}

/// The diagnosis in brief, from the diagnosis itself (stories and
/// proposals in the playbook's order).
fn summary(inst: &Instance) -> (Value, String) {
    let d = &inst.diagnosis;
    let mut by_severity = std::collections::BTreeMap::<&str, usize>::new();
    for f in d.findings.iter().filter(|f| f.kind.is_anomaly()) {
        *by_severity.entry(f.severity.as_str()).or_default() += 1;
    }
    let anomalies: usize = by_severity.values().sum();
    let loaded = &d.loaded;
    let no_traffic = inst.snapshot.traffic.series.is_empty();
    let stories: Vec<Value> = d
        .stories
        .iter()
        .map(|s| {
            json!({"title": s.title, "severity": s.severity.as_str(), "confidence": s.confidence,
                   "narrative": s.narrative, "findings": s.findings,
                   "suspects": s.suspects})
        })
        .collect();
    let proposals: Vec<Value> = d
        .proposals
        .iter()
        .take(3)
        .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
        .collect();
    let mut t = if no_traffic {
        "no traffic data loaded: the gateway's health cannot be judged".to_string()
    } else if anomalies == 0 {
        format!(
            "no anomaly found in {} findings over the loaded data",
            d.findings.len()
        )
    } else {
        format!(
            "{anomalies} anomalies ({})",
            by_severity
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if let Some(r) = loaded.time_range {
        let _ = write!(t, "; data {} → {}", r.start, r.end);
    }
    for s in &d.stories {
        let _ = write!(
            t,
            "\n- {} [{}]: {}",
            s.title,
            s.severity.as_str(),
            s.narrative
        );
    }
    for p in d.proposals.iter().take(3) {
        let _ = write!(t, "\n  fix: {}", p.title);
    }
    (
        json!({"anomalies": anomalies, "by_severity": by_severity, "findings": d.findings.len(),
               "no_traffic_data": no_traffic, "time_range": loaded.time_range,
               "stories": stories, "proposals": proposals, "loaded": loaded.counts,
               "rejected_records": loaded.rejected}),
        t,
    )
}

fn capacity(inst: &Instance) -> (Value, String) {
    let snap = &inst.snapshot;
    let svc = snap.service.as_ref();
    let mut text = match svc {
        Some(s) => format!(
            "{}: tier {}, {} unit(s), zones [{}], VNet {}",
            s.name,
            s.sku.as_deref().unwrap_or("unknown"),
            s.capacity
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            s.zones.join(","),
            s.vnet_type.as_deref().unwrap_or("none")
        ),
        None => "no service resource loaded (tier and units unknown)".to_string(),
    };
    let mut autoscale = Vec::new();
    for a in &snap.autoscale {
        for p in &a.profiles {
            let _ = write!(
                text,
                "\nautoscale {} profile {}: min {:?} max {:?} default {:?}, {} rules, enabled {:?}",
                a.name,
                p.name,
                p.minimum,
                p.maximum,
                p.default,
                p.rules.len(),
                a.enabled
            );
            autoscale.push(json!({"setting": a.name, "profile": p.name, "minimum": p.minimum, "maximum": p.maximum,
                "default": p.default, "enabled": a.enabled,
                "rules": p.rules.iter().map(|r| format!("{} {} {} {} → {} {:?}", r.metric, r.time_aggregation.as_deref().unwrap_or(""), r.operator, r.threshold, r.direction, r.change)).collect::<Vec<_>>()}));
        }
    }
    if snap.autoscale.is_empty() {
        text.push_str("\nno autoscale setting loaded");
    }
    let episodes = scaling::capacity::saturation_episodes(snap);
    let eps: Vec<Value> = episodes
        .iter()
        .map(|e| json!({"metric": e.metric, "start": e.start, "end": e.end, "minutes": e.minutes(), "mean": round4(e.mean), "peak": round4(e.peak)}))
        .collect();
    for e in &episodes {
        let _ = write!(
            text,
            "\nsaturated: {} mean {:.0}% peak {:.0}% {}–{} ({} min)",
            e.metric,
            e.mean,
            e.peak,
            e.start.hhmm(),
            e.end.hhmm(),
            e.minutes()
        );
    }
    if episodes.is_empty() {
        let peak = snap
            .metrics
            .iter()
            .filter(|m| m.name == "Capacity")
            .flat_map(|m| m.points.iter().map(|p| p.1))
            .fold(None, |acc: Option<f64>, x| {
                Some(acc.map_or(x, |a| a.max(x)))
            });
        match peak {
            Some(p) => {
                let _ = write!(
                    text,
                    "\nno sustained saturation; Capacity peaked at {p:.0}%"
                );
            }
            None => text.push_str("\nno Capacity metric loaded"),
        }
    }
    let fs: Vec<Value> = inst
        .diagnosis
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                crate::model::FindingKind::Capacity
                    | crate::model::FindingKind::ScalingConfig
                    | crate::model::FindingKind::Quota
            )
        })
        .map(|f| {
            let _ = write!(text, "\n{}", finding_line(f));
            finding_json(f, false)
        })
        .collect();
    let data = json!({"service": svc.map(|s| json!({"name": s.name, "sku": s.sku, "capacity": s.capacity, "zones": s.zones, "vnet_type": s.vnet_type})),
        "autoscale": autoscale, "saturation": eps, "findings": fs});
    (data, text)
}

/// Findings filtered by kind, API and backend.
pub fn select_findings<'a>(
    inst: &'a Instance,
    kind: Option<&str>,
    api: Option<&str>,
    backend: Option<&str>,
) -> Vec<&'a Finding> {
    let api = api.map(|a| api_id(&inst.snapshot, a));
    let backend = backend.map(|b| backend_id(&inst.snapshot, b));
    inst.diagnosis
        .findings
        .iter()
        .filter(|f| kind.is_none_or(|k| f.kind.as_str() == k.trim()))
        .filter(|f| subject_matches(f, api.as_deref(), backend.as_deref()))
        .collect()
}

fn findings(
    inst: &Instance,
    kind: Option<&str>,
    api: Option<&str>,
    backend: Option<&str>,
) -> (Value, String) {
    let fs = select_findings(inst, kind, api, backend);
    let mut text = format!("{} findings", fs.len());
    for f in &fs {
        let _ = write!(text, "\n- {}", finding_line(f));
        if let Some(e) = f.evidence.first() {
            let _ = write!(text, "\n    evidence: {}", e.text);
        }
    }
    (
        json!(
            fs.iter()
                .map(|f| finding_json(f, false))
                .collect::<Vec<_>>()
        ),
        text,
    )
}

fn explain(inst: &Instance, id: &str) -> (Value, String) {
    let id = super::finding_id(id);
    let found = resolve::finding(&inst.diagnosis, id);
    let Some(f) = found
        .found()
        .and_then(|full| inst.diagnosis.findings.iter().find(|f| f.id == full))
    else {
        return (
            json!({"error": format!("no finding with id {id}")}),
            format!("no finding with id `{id}`; list them with the findings tool"),
        );
    };
    let mut text = finding_line(f);
    if let Some(w) = f.window {
        let _ = write!(text, "\nwindow: {} – {}", w.start, w.end);
    }
    let _ = write!(text, "\nconfidence: {:.0}%", f.confidence * 100.0);
    for e in &f.evidence {
        let _ = write!(text, "\nevidence: {}", e.text);
        for r in e.records.iter().take(2) {
            let _ = write!(
                text,
                "\n    log: {} {} {}/{} {} ms {} ({})",
                r.time,
                r.response_code,
                r.api_id,
                r.operation_id,
                r.total_time_ms,
                r.last_error_reason.as_deref().unwrap_or(""),
                r.origin
            );
        }
    }
    if let Some(l) = &f.location {
        let _ = write!(text, "\nlocation: {l}");
    }
    let stories: Vec<&crate::model::Story> = inst
        .diagnosis
        .stories
        .iter()
        .filter(|s| s.findings.contains(&f.id))
        .collect();
    for s in &stories {
        let _ = write!(text, "\nstory: {}: {}", s.title, s.narrative);
    }
    let props: Vec<&crate::model::Proposal> = inst
        .diagnosis
        .proposals
        .iter()
        .filter(|p| p.finding == f.id)
        .collect();
    for p in &props {
        let _ = write!(text, "\nproposal {} ({:?} risk): {}", p.id, p.risk, p.title);
    }
    (
        json!({"finding": finding_json(f, true), "stories": stories, "proposals": props}),
        text,
    )
}

fn proposals(inst: &Instance, finding: Option<&str>) -> (Value, String) {
    let ps: Vec<&crate::model::Proposal> = inst
        .diagnosis
        .proposals
        .iter()
        .filter(|p| {
            finding.is_none_or(|f| {
                let f = super::finding_id(f);
                resolve::finding(&inst.diagnosis, f).found() == Some(p.finding.as_str())
            })
        })
        .collect();
    let mut text = format!(
        "{} proposals (proposals only: nothing is executed without approval)",
        ps.len()
    );
    for p in &ps {
        let _ = write!(
            text,
            "\n- {} ({:?} risk) for finding {}: {}",
            p.id, p.risk, p.finding, p.title
        );
    }
    (json!(ps), text)
}
