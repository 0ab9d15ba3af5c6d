//! What each tool computes: lookups over the snapshot, the rollup and the
//! diagnosis, answered as a typed `ToolResult` (`super::result`; its text
//! is `super::render`). Names given by a person or a model are resolved by
//! the one resolver (`super::resolve`: exact id, alias, unique prefix, near
//! match); a call is checked before it runs.

use super::result::*;
use super::{Instance, Tool, resolve};
use crate::analyze::rollup::group_stats;
use crate::analyze::{self, network, policy, scaling};
use crate::model::{Direction, Finding, Snapshot, Timestamp, Window};

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

fn options_for(w: Option<Window>) -> analyze::Options {
    analyze::Options {
        since: w.map(|w| w.start),
        until: w.map(|w| Timestamp(w.end.0 + 1)),
    }
}

/// The query layer's finding filter: [`Subject::concerns`](crate::model::Subject::concerns)
/// for the API and for the backend, both when both are given.
fn subject_matches(f: &Finding, api: Option<&str>, backend: Option<&str>) -> bool {
    let backends: Vec<String> = backend.map(str::to_string).into_iter().collect();
    (api.is_none() || f.subject.concerns(api, None, &[]))
        && (backend.is_none() || f.subject.concerns(None, None, &backends))
}

pub(super) fn run(tool: &Tool, inst: &Instance) -> ToolResult {
    let snap = &inst.snapshot;
    match tool {
        Tool::ListApis => ToolResult::Apis(list_apis(snap)),
        Tool::ListOperations { api } => {
            ToolResult::Operations(list_operations(snap, api.as_deref()))
        }
        Tool::ListProducts => ToolResult::Products(
            snap.products
                .iter()
                .map(|p| ProductRow {
                    id: p.id.clone(),
                    display_name: p.display_name.clone(),
                    state: p.state.clone(),
                    subscription_required: p.subscription_required,
                    apis: p.apis.clone(),
                })
                .collect(),
        ),
        Tool::ListBackends => ToolResult::Backends(backend_health(inst, None)),
        Tool::FailureRate {
            api,
            operation,
            backend,
            period,
        } => ToolResult::FailureRate(failure_rate(
            snap,
            api.as_deref(),
            operation.as_deref(),
            backend.as_deref(),
            Period::parse(period.as_deref().unwrap_or("all")),
        )),
        Tool::FailureLog {
            api,
            operation,
            backend,
            limit,
        } => ToolResult::FailureLog(failure_log(
            snap,
            api.as_deref(),
            operation.as_deref(),
            backend.as_deref(),
            limit.unwrap_or(5).min(20),
        )),
        Tool::RecentChanges { limit } => {
            ToolResult::Changes(recent_changes(snap, limit.unwrap_or(10).min(40)))
        }
        Tool::BackendMap { api } => ToolResult::BackendMap(backend_map(inst, api.as_deref())),
        Tool::BackendHealth { backend } => {
            ToolResult::Backends(backend_health(inst, backend.as_deref()))
        }
        Tool::Policies { api, operation } => {
            ToolResult::Policies(policies(snap, api.as_deref(), operation.as_deref()))
        }
        Tool::NsgRules { nsg } => ToolResult::Nsgs(nsg_rules(snap, nsg.as_deref())),
        Tool::NetworkCheck {
            source,
            destination,
            port,
            outbound,
        } => ToolResult::NetworkCheck(network_check(
            snap,
            source.as_deref(),
            destination,
            *port,
            *outbound,
        )),
        Tool::Capacity => ToolResult::Capacity(capacity(inst)),
        Tool::Summary => ToolResult::Summary(summary(inst)),
        Tool::Findings { kind, api, backend } => ToolResult::Findings(
            select_findings(inst, kind.as_deref(), api.as_deref(), backend.as_deref())
                .into_iter()
                .map(FindingView::brief)
                .collect(),
        ),
        Tool::Explain { id } => explain(inst, id),
        Tool::Proposals { finding } => ToolResult::Proposals(proposals(inst, finding.as_deref())),
    }
}

fn list_apis(snap: &Snapshot) -> Vec<ApiRow> {
    snap.apis
        .iter()
        .map(|a| {
            let totals = group_stats(snap, &analyze::Options::default(), |k| {
                k.api_id.eq_ignore_ascii_case(&a.id)
            });
            ApiRow {
                id: a.id.clone(),
                display_name: a.display_name.clone(),
                path: a.path.clone(),
                service_url: a.service_url.clone(),
                operations: snap.operations.iter().filter(|o| o.api_id == a.id).count(),
                requests: totals.requests,
                status_5xx: totals.status_5xx,
                error_rate: totals.error_rate(),
            }
        })
        .collect()
}

fn list_operations(snap: &Snapshot, api: Option<&str>) -> Vec<OperationRow> {
    let api = api.map(|a| api_id(snap, a));
    let r = analyze::rollup(snap, &analyze::Options::default());
    snap.operations
        .iter()
        .filter(|o| {
            api.as_deref()
                .is_none_or(|a| o.api_id.eq_ignore_ascii_case(a))
        })
        .map(|o| {
            let st = r
                .operation(&o.api_id, &o.id)
                .map(|x| x.totals.clone())
                .unwrap_or_default();
            OperationRow {
                api: o.api_id.clone(),
                id: o.id.clone(),
                method: o.method.clone(),
                url_template: o.url_template.clone(),
                requests: st.requests,
                error_rate: st.error_rate(),
                p95_ms: st.total_time.p95,
            }
        })
        .collect()
}

/// Requests and failures over a period for an operation, an API, a backend
/// or the whole instance.
pub fn failure_rate(
    snap: &Snapshot,
    api: Option<&str>,
    operation: Option<&str>,
    backend: Option<&str>,
    period: Period,
) -> FailureRate {
    let (window, short) = period_window(snap, period);
    let options = options_for(window);
    let r = analyze::rollup(snap, &options);
    let api = api.map(|a| api_id(snap, a));
    let op = operation.map(|o| {
        resolve_operation(snap, api.as_deref(), o)
            .map(|(_, id)| id)
            .unwrap_or_else(|| o.to_string())
    });
    let totals;
    let mut operations = Vec::new();
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
            operations.push(OperationTraffic {
                api: o.api.clone(),
                operation: o.operation.clone(),
                requests: o.totals.requests,
                status_5xx: o.totals.status_5xx,
                error_rate: o.totals.error_rate(),
                timeouts: o.totals.timeouts,
                p95_ms: o.totals.total_time.p95,
            });
        }
        operations.sort_by_key(|o| std::cmp::Reverse(o.status_5xx));
    }
    FailureRate {
        scope,
        period: period.label(),
        window,
        data_shorter_than_period: short,
        totals: Traffic(totals),
        operations,
    }
}

fn failure_log(
    snap: &Snapshot,
    api: Option<&str>,
    operation: Option<&str>,
    backend: Option<&str>,
    limit: usize,
) -> Vec<crate::model::RequestRecord> {
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
    rows.into_iter().cloned().collect()
}

/// The activity log, newest first: every change counted, the newest
/// `limit` given (`usize::MAX`: all).
pub fn recent_changes(snap: &Snapshot, limit: usize) -> Changes {
    let mut ch: Vec<&crate::model::Change> = snap.changes.iter().collect();
    ch.sort_by_key(|c| std::cmp::Reverse(c.time));
    let total = ch.len();
    ch.truncate(limit);
    let changes = ch
        .iter()
        .map(|c| {
            let target = c
                .policy_scope
                .as_ref()
                .map(|s| s.to_string())
                .or_else(|| c.resource_id.as_deref().map(short_resource))
                .unwrap_or_default();
            ChangeRow::of(
                c,
                target,
                analyze::changes::deployment_target(c.resource_id.as_deref()),
                analyze::changes::timeout_detail(snap, c),
            )
        })
        .collect();
    Changes { total, changes }
}

/// The last three segments of a resource id.
fn short_resource(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    parts[parts.len().saturating_sub(3)..].join("/")
}

fn backend_map(inst: &Instance, api: Option<&str>) -> Vec<crate::model::RouteEntry> {
    let api = api.map(|a| api_id(&inst.snapshot, a));
    inst.diagnosis
        .backend_map
        .iter()
        .filter(|r| api.as_deref().is_none_or(|a| r.api.eq_ignore_ascii_case(a)))
        .cloned()
        .collect()
}

/// Per backend: configuration, its own health (by id or URL host; see
/// [`Diagnosis::backend_health`](crate::model::Diagnosis::backend_health)),
/// traffic totals and findings.
fn backend_health(inst: &Instance, backend: Option<&str>) -> Backends {
    let snap = &inst.snapshot;
    let want = backend.map(|b| backend_id(snap, b).to_ascii_lowercase());
    let mut rows = Vec::new();
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
        let health = inst.diagnosis.backend_health(&[&b.id, &host]);
        let findings = inst
            .diagnosis
            .findings
            .iter()
            .filter(|f| {
                f.subject
                    .backend
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(&b.id))
            })
            .map(FindingBrief::of)
            .collect();
        rows.push(BackendRow {
            id: b.id.clone(),
            kind: b.kind,
            url: b.url.clone(),
            pool: b.pool.iter().map(|m| m.id.clone()).collect(),
            circuit_breaker: !b.circuit_breaker.is_empty(),
            health,
            traffic: Traffic(totals),
            findings,
        });
    }
    Backends {
        rows,
        asked: backend.map(str::to_string),
        known: snap.backends.iter().map(|b| b.id.clone()).collect(),
    }
}

fn policies(snap: &Snapshot, api: Option<&str>, operation: Option<&str>) -> Policies {
    let api = api.map(|a| api_id(snap, a));
    let documents = snap
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
        .map(|p| PolicyDocument {
            scope: p.scope.to_string(),
            origin: p.origin.to_string(),
            xml: super::head_tail(&p.xml, 1500),
        })
        .collect();
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
            effective.push(effective_row(snap, a, op));
        }
    }
    Policies {
        documents,
        effective,
    }
}

/// The effective policy of one operation, as the `policies` tool shows it:
/// [`query::effective_policy`](super::query::effective_policy)'s top-level
/// statements per section.
fn effective_row(snap: &Snapshot, api: &str, op: &str) -> EffectiveRow {
    let e = super::query::effective_policy(snap, api, op);
    let sections = policy::Section::ALL
        .iter()
        .map(|s| SectionRow {
            section: s.as_str(),
            statements: e
                .statements
                .iter()
                .filter(|p| !p.nested && p.section == s.as_str())
                .map(|p| Statement {
                    name: p.name.clone(),
                    scope: p.scope.to_string(),
                })
                .collect(),
        })
        .collect();
    EffectiveRow {
        api: api.to_string(),
        operation: op.to_string(),
        sections,
        forward_timeout_secs: e.forward_timeout.as_ref().map(|t| t.0),
        forward_timeout_scope: e.forward_timeout.as_ref().map(|t| t.1.to_string()),
        backend_targets: e
            .backend_targets
            .iter()
            .map(|t| format!("{} @{}", t.target, t.scope))
            .collect(),
        limits: scaling::quota::limits_for(snap, api, op)
            .iter()
            .map(|l| LimitRow {
                policy: l.policy.clone(),
                scope: l.scope.to_string(),
                calls: l.calls,
                renewal_secs: l.renewal_secs,
            })
            .collect(),
        scopes: e.scopes.iter().map(|s| s.to_string()).collect(),
        notes: e.notes,
    }
}

fn nsg_rules(snap: &Snapshot, nsg: Option<&str>) -> Vec<NsgRow> {
    snap.nsgs
        .iter()
        .filter(|n| nsg.is_none_or(|x| n.name.eq_ignore_ascii_case(x)))
        .map(|n| {
            let mut rules = n.rules.clone();
            rules.sort_by_key(|r| (r.direction == Direction::Outbound, r.priority));
            NsgRow {
                name: n.name.clone(),
                subnets: n.subnets.clone(),
                origin: n.origin.to_string(),
                rules,
            }
        })
        .collect()
}

fn network_check(
    snap: &Snapshot,
    source: Option<&str>,
    destination: &str,
    port: u16,
    outbound: bool,
) -> Vec<FlowCheck> {
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
    snap.nsgs
        .iter()
        .map(|n| FlowCheck {
            nsg: n.name.clone(),
            flow: flow.describe(),
            verdict: network::evaluate_in(n, &flow, &ctx),
        })
        .collect()
}

/// The diagnosis in brief, from the diagnosis itself (stories and
/// proposals in the playbook's order).
fn summary(inst: &Instance) -> Summary {
    let d = &inst.diagnosis;
    let mut by_severity = std::collections::BTreeMap::<&'static str, usize>::new();
    for f in d.findings.iter().filter(|f| f.kind.is_anomaly()) {
        *by_severity.entry(f.severity.as_str()).or_default() += 1;
    }
    Summary {
        anomalies: by_severity.values().sum(),
        by_severity,
        findings: d.findings.len(),
        no_traffic_data: inst.snapshot.traffic.series.is_empty(),
        time_range: d.loaded.time_range,
        stories: d.stories.iter().map(StoryBrief::of).collect(),
        proposals: d.proposals.iter().take(3).cloned().collect(),
        loaded: d.loaded.counts.clone(),
        rejected_records: d.loaded.rejected,
    }
}

fn capacity(inst: &Instance) -> Capacity {
    let snap = &inst.snapshot;
    let service = snap.service.as_ref().map(|s| ServiceSize {
        name: s.name.clone(),
        sku: s.sku.clone(),
        capacity: s.capacity,
        zones: s.zones.clone(),
        vnet_type: s.vnet_type.clone(),
    });
    let mut autoscale = Vec::new();
    for a in &snap.autoscale {
        for p in &a.profiles {
            autoscale.push(AutoscaleRow {
                setting: a.name.clone(),
                profile: p.name.clone(),
                minimum: p.minimum,
                maximum: p.maximum,
                default: p.default,
                enabled: a.enabled,
                rules: p
                    .rules
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} {} {} → {} {:?}",
                            r.metric,
                            r.time_aggregation.as_deref().unwrap_or(""),
                            r.operator,
                            r.threshold,
                            r.direction,
                            r.change
                        )
                    })
                    .collect(),
            });
        }
    }
    let saturation = scaling::capacity::saturation_episodes(snap)
        .iter()
        .map(|e| SaturationRow {
            metric: e.metric.clone(),
            start: e.start,
            end: e.end,
            minutes: e.minutes(),
            mean: e.mean,
            peak: e.peak,
        })
        .collect();
    let capacity_peak = snap
        .metrics
        .iter()
        .filter(|m| m.name == "Capacity")
        .flat_map(|m| m.points.iter().map(|p| p.1))
        .fold(None, |acc: Option<f64>, x| {
            Some(acc.map_or(x, |a| a.max(x)))
        });
    let findings = inst
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
        .map(FindingView::brief)
        .collect();
    Capacity {
        service,
        autoscale,
        saturation,
        findings,
        autoscale_settings: snap.autoscale.len(),
        capacity_peak,
    }
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

fn explain(inst: &Instance, id: &str) -> ToolResult {
    let id = super::finding_id(id);
    let found = resolve::finding(&inst.diagnosis, id);
    let Some(f) = found
        .found()
        .and_then(|full| inst.diagnosis.findings.iter().find(|f| f.id == full))
    else {
        return ToolResult::Error(ToolError {
            error: format!("no finding with id `{id}`; list them with the findings tool"),
        });
    };
    ToolResult::Explain(Box::new(Explained {
        finding: FindingView::full(f),
        stories: inst
            .diagnosis
            .stories
            .iter()
            .filter(|s| s.findings.contains(&f.id))
            .cloned()
            .collect(),
        proposals: inst
            .diagnosis
            .proposals
            .iter()
            .filter(|p| p.finding == f.id)
            .cloned()
            .collect(),
    }))
}

fn proposals(inst: &Instance, finding: Option<&str>) -> Vec<crate::model::Proposal> {
    inst.diagnosis
        .proposals
        .iter()
        .filter(|p| {
            finding.is_none_or(|f| {
                let f = super::finding_id(f);
                resolve::finding(&inst.diagnosis, f).found() == Some(p.finding.as_str())
            })
        })
        .cloned()
        .collect()
}
