//! What apimedic reads from Azure for one API Management instance, kept as
//! documents in the shapes the exported-file readers already understand
//! (ARM list and resource answers, Azure Monitor metrics answers, the
//! activity log's `{value: [...]}`), each under a relative path such as
//! `contoso-apim/config/apis.json`. `collect` parses them like files, and
//! `--save DIR` writes them as they are, so a saved folder diagnoses to the
//! same findings.
//!
//! Reads (api-versions and shapes: ../shared/docs/azure-rest.md): the
//! service; APIs, their operations and revisions; products; backends;
//! named values (names and whether secret: the list never carries a secret
//! or Key Vault value, and `listValue` is never called); policy fragments;
//! policies at every scope as raw XML (global, product, API, operation;
//! 404 = no policy there); diagnostic settings (which Log Analytics
//! workspace the gateway logs go to) and each such workspace (its
//! `customerId`, the id its query API takes); the gateway subnet and its NSG; autoscale
//! settings of the resource group that target the service; Azure Monitor
//! metrics at 1-minute grain for the gateway and for each backend app found
//! (Container Apps, App Service, Functions); the activity log of the
//! service's, the NSG's and the apps' resource groups, kept when it is about
//! one of them. A read that fails is a `Problem` naming its resource; the
//! rest still loads.

use super::arm::{ArmClient, ArmError, Failure, Role, api_version as v};
use crate::model::{LogWorkspace, Origin, Problem};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tokio::task::JoinSet;

/// The time range pulled (metrics and activity log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Span {
    /// `start/end` for the metrics API.
    pub fn timespan(&self) -> String {
        format!("{}/{}", iso(self.start), iso(self.end))
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What to read besides configuration.
#[derive(Clone, Copy, Debug)]
pub struct PullOptions {
    pub span: Span,
    pub metrics: bool,
    pub activity: bool,
    /// Read the policy of every operation (one request per operation).
    pub operation_policies: bool,
}

/// The documents read for one instance and what could not be read.
#[derive(Clone, Debug, Default)]
pub struct Pulled {
    pub service_id: String,
    /// The service's name (the folder its documents sit in).
    pub name: String,
    /// (relative path, JSON bytes), in the order read.
    pub documents: Vec<(String, Vec<u8>)>,
    pub problems: Vec<Problem>,
    /// Log Analytics workspaces the diagnostic settings send gateway logs
    /// to, with their customerId once the workspace was read.
    pub log_workspaces: Vec<LogWorkspace>,
}

impl Pulled {
    fn add(&mut self, path: String, body: &Value) {
        // serde_json cannot fail on a Value. Configuration is kept readable
        // (it is diffed and read by people); metrics and events compact.
        let bytes = if path.contains("/config/") {
            serde_json::to_vec_pretty(body)
        } else {
            serde_json::to_vec(body)
        }
        .unwrap_or_default();
        self.documents.push((path, bytes));
    }

    fn problem(&mut self, e: &ArmError) {
        self.problems.push(problem_of(e));
    }
}

/// A failed read as a load problem: origin = the resource id.
pub fn problem_of(e: &ArmError) -> Problem {
    Problem {
        origin: Origin::file(format!("azure:{}", e.resource)),
        message: e.message.clone(),
    }
}

/// An APIM service id split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceId {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

impl ServiceId {
    /// `/subscriptions/S/resourceGroups/RG/providers/Microsoft.ApiManagement/service/N`
    /// (case-insensitive, a trailing slash or child path refused).
    pub fn parse(id: &str) -> Result<ServiceId, String> {
        let parts: Vec<&str> = id.trim().trim_matches('/').split('/').collect();
        let ok = parts.len() == 8
            && parts[0].eq_ignore_ascii_case("subscriptions")
            && parts[2].eq_ignore_ascii_case("resourceGroups")
            && parts[4].eq_ignore_ascii_case("providers")
            && parts[5].eq_ignore_ascii_case("Microsoft.ApiManagement")
            && parts[6].eq_ignore_ascii_case("service")
            && parts.iter().all(|p| !p.is_empty() && is_safe_segment(p));
        if !ok {
            return Err(format!(
                "`{id}` is not an API Management service id; it looks like \
                 /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/NAME"
            ));
        }
        Ok(ServiceId {
            subscription: parts[1].to_string(),
            resource_group: parts[3].to_string(),
            name: parts[7].to_string(),
        })
    }

    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ApiManagement/service/{}",
            self.subscription, self.resource_group, self.name
        )
    }
}

/// Characters allowed in an id segment we put in a URL path ourselves.
pub fn is_safe_segment(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')' | ';' | '='))
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The id part of an ARM id or a `https://management.azure.com/...` URL.
pub fn arm_id_of(s: &str) -> Option<String> {
    let s = s.trim();
    let i = s.to_ascii_lowercase().find("/subscriptions/")?;
    Some(s[i..].trim_end_matches('/').to_string())
}

/// What kind of app a backend's `resourceId` is, for its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    ContainerApp,
    WebApp,
}

pub fn app_kind(id: &str) -> Option<AppKind> {
    let l = id.to_ascii_lowercase();
    if l.contains("/providers/microsoft.app/containerapps/") {
        Some(AppKind::ContainerApp)
    } else if l.contains("/providers/microsoft.web/sites/") {
        Some(AppKind::WebApp)
    } else {
        None
    }
}

/// The metric requests for the gateway: (file stem, metric names,
/// aggregations, filter). v2 tiers add the gateway CPU and memory.
fn gateway_metrics(
    sku: &str,
) -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
)> {
    let mut m = vec![
        (
            "apim-requests",
            "Requests",
            "Total",
            Some("GatewayResponseCodeCategory eq '*'"),
        ),
        (
            "apim-performance",
            "Capacity,Duration,BackendDuration",
            "Average,Maximum",
            None,
        ),
    ];
    if sku.to_ascii_lowercase().ends_with("v2") {
        m.push((
            "apim-gateway-resources",
            "CpuPercent_Gateway,MemoryPercent_Gateway",
            "Average,Maximum",
            None,
        ));
    }
    m
}

fn app_metrics(
    kind: AppKind,
) -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
)> {
    match kind {
        AppKind::ContainerApp => vec![
            (
                "",
                "UsageNanoCores,WorkingSetBytes,MemoryPercentage,RestartCount,Replicas",
                "Average,Maximum,Total",
                None,
            ),
            (
                "-requests",
                "Requests",
                "Total",
                Some("statusCodeCategory eq '*'"),
            ),
        ],
        AppKind::WebApp => vec![(
            "",
            "Requests,Http4xx,Http5xx,AverageResponseTime,MemoryWorkingSet,CpuTime",
            "Average,Total",
            None,
        )],
    }
}

/// The metrics URL for one resource.
pub fn metrics_path(
    resource: &str,
    names: &str,
    aggregation: &str,
    filter: Option<&str>,
    span: &Span,
) -> String {
    let mut p = format!(
        "{resource}/providers/Microsoft.Insights/metrics?api-version={}&metricnames={}&timespan={}&interval=PT1M&aggregation={}",
        v::METRICS,
        enc(names),
        enc(&span.timespan()),
        enc(aggregation),
    );
    if let Some(f) = filter {
        p.push_str(&format!("&$filter={}&top=50", enc(f)));
    }
    p
}

/// The activity-log URL for a resource group and span.
pub fn activity_path(subscription: &str, resource_group: &str, span: &Span) -> String {
    let filter = format!(
        "eventTimestamp ge '{}' and eventTimestamp le '{}' and resourceGroupName eq '{}'",
        iso(span.start),
        iso(span.end),
        resource_group
    );
    format!(
        "/subscriptions/{subscription}/providers/Microsoft.Insights/eventtypes/management/values?api-version={}&$filter={}",
        v::ACTIVITY_LOG,
        enc(&filter)
    )
}

/// The first network interface with an IP configuration in a subnet
/// (`properties.ipConfigurations[].id`); none for a VNet-injected stv2
/// gateway, whose NICs are not in the customer's subscription.
pub fn nic_in_subnet(subnet: &Value) -> Option<String> {
    subnet
        .pointer("/properties/ipConfigurations")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("id").and_then(Value::as_str))
        .find_map(|id| {
            let lower = id.to_ascii_lowercase();
            let at = lower.find("/providers/microsoft.network/networkinterfaces/")?;
            let rest = &id[at..];
            // .../networkInterfaces/{nic}/ipConfigurations/{name}
            let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
            (parts.len() >= 4)
                .then(|| format!("{}/{}", &id[..at], parts[..4].join("/")))
                .and_then(|nic| arm_id_of(&nic))
        })
}

/// One read in flight: its label, and the answer.
enum Got {
    Doc(String, Result<Value, ArmError>),
    List(String, Result<Vec<Value>, ArmError>),
}

/// Reads everything about one instance (see the module doc).
pub async fn pull_service(client: &ArmClient, id: &ServiceId, opts: PullOptions) -> Pulled {
    let svc = id.id();
    let name = id.name.clone();
    let mut out = Pulled {
        service_id: svc.clone(),
        name: name.clone(),
        ..Default::default()
    };
    let apim = |child: &str| format!("{svc}{child}?api-version={}", v::APIM);

    // Round 1: everything that needs nothing else.
    let mut set: JoinSet<Got> = JoinSet::new();
    let doc = |set: &mut JoinSet<Got>, label: String, path: String, role: Role| {
        let c = client.clone();
        set.spawn(async move { Got::Doc(label, c.get(&path, role).await) });
    };
    let list = |set: &mut JoinSet<Got>, label: String, path: String, role: Role| {
        let c = client.clone();
        set.spawn(async move { Got::List(label, c.list(&path, role).await) });
    };
    doc(&mut set, "service".into(), apim(""), Role::Reader);
    list(&mut set, "apis".into(), apim("/apis"), Role::Reader);
    list(&mut set, "products".into(), apim("/products"), Role::Reader);
    list(&mut set, "backends".into(), apim("/backends"), Role::Reader);
    list(
        &mut set,
        "named-values".into(),
        apim("/namedValues"),
        Role::Reader,
    );
    list(
        &mut set,
        "policy-fragments".into(),
        format!(
            "{svc}/policyFragments?api-version={}&format=rawxml",
            v::APIM
        ),
        Role::Reader,
    );
    doc(
        &mut set,
        "policy:global".into(),
        format!(
            "{svc}/policies/policy?api-version={}&format=rawxml",
            v::APIM
        ),
        Role::Reader,
    );
    list(
        &mut set,
        "diagnostic-settings".into(),
        format!(
            "{svc}/providers/Microsoft.Insights/diagnosticSettings?api-version={}",
            v::DIAGNOSTIC_SETTINGS
        ),
        Role::MonitoringReader,
    );
    list(
        &mut set,
        "autoscale".into(),
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Insights/autoscalesettings?api-version={}",
            id.subscription,
            id.resource_group,
            v::AUTOSCALE
        ),
        Role::Reader,
    );

    let mut service: Option<Value> = None;
    let mut apis: Vec<Value> = Vec::new();
    let mut products: Vec<Value> = Vec::new();
    let mut backends: Vec<Value> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok(got) = joined else { continue };
        match got {
            Got::Doc(label, Ok(v)) if label == "service" => {
                out.add(format!("{name}/config/service.json"), &v);
                service = Some(v);
            }
            Got::Doc(label, Ok(v)) if label == "policy:global" => {
                out.add(format!("{name}/config/policies/global.json"), &v);
            }
            Got::Doc(label, Err(e))
                if label.starts_with("policy:") && e.failure == Failure::NotFound => {}
            Got::Doc(_, Ok(_)) => {}
            Got::Doc(_, Err(e)) => out.problem(&e),
            Got::List(label, Ok(items)) => {
                match label.as_str() {
                    "apis" => apis = items.clone(),
                    "products" => products = items.clone(),
                    "backends" => backends = items.clone(),
                    "diagnostic-settings" => {
                        let (found, notes) = gateway_log_workspaces(&svc, &items);
                        out.log_workspaces = found;
                        out.problems.extend(notes);
                    }
                    _ => {}
                }
                let items = if label == "autoscale" {
                    items.into_iter().filter(|a| targets(a, &svc)).collect()
                } else {
                    items
                };
                if !(label == "autoscale" && items.is_empty()) {
                    out.add(
                        format!("{name}/config/{label}.json"),
                        &json!({ "value": items }),
                    );
                }
            }
            Got::List(_, Err(e)) => out.problem(&e),
        }
    }

    // Round 2: what the first answers point at.
    let mut set: JoinSet<Got> = JoinSet::new();
    let workspaces: BTreeSet<String> = out
        .log_workspaces
        .iter()
        .map(|w| w.resource_id.clone())
        .collect();
    for ws in workspaces {
        doc(
            &mut set,
            format!("workspace:{ws}"),
            format!("{ws}?api-version={}", v::LOG_ANALYTICS_WORKSPACES),
            Role::Reader,
        );
    }
    let api_ids: Vec<String> = apis.iter().filter_map(child_name).collect();
    for api in &api_ids {
        list(
            &mut set,
            format!("operations:{api}"),
            apim(&format!("/apis/{api}/operations")),
            Role::Reader,
        );
        doc(
            &mut set,
            format!("policy:api:{api}"),
            format!(
                "{svc}/apis/{api}/policies/policy?api-version={}&format=rawxml",
                v::APIM
            ),
            Role::Reader,
        );
        list(
            &mut set,
            format!("revisions:{api}"),
            apim(&format!("/apis/{api}/revisions")),
            Role::Reader,
        );
    }
    for p in products.iter().filter_map(child_name) {
        doc(
            &mut set,
            format!("policy:product:{p}"),
            format!(
                "{svc}/products/{p}/policies/policy?api-version={}&format=rawxml",
                v::APIM
            ),
            Role::Reader,
        );
    }
    let subnet = service.as_ref().and_then(|s| {
        s.pointer("/properties/virtualNetworkConfiguration/subnetResourceId")
            .and_then(Value::as_str)
            .and_then(arm_id_of)
    });
    if let Some(subnet) = &subnet {
        doc(
            &mut set,
            "subnet".into(),
            format!("{subnet}?api-version={}", v::NETWORK),
            Role::Reader,
        );
    }
    let sku = service
        .as_ref()
        .and_then(|s| s.pointer("/sku/name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if opts.metrics {
        for (stem, names, agg, filter) in gateway_metrics(&sku) {
            doc(
                &mut set,
                format!("metrics:{stem}"),
                metrics_path(&svc, names, agg, filter, &opts.span),
                Role::MonitoringReader,
            );
        }
    }
    let apps: Vec<String> = backends
        .iter()
        .filter_map(|b| b.pointer("/properties/resourceId").and_then(Value::as_str))
        .filter_map(arm_id_of)
        .filter(|id| app_kind(id).is_some())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if opts.metrics {
        for app in &apps {
            let kind = app_kind(app).unwrap_or(AppKind::WebApp);
            let app_name = app.rsplit('/').next().unwrap_or("app").to_string();
            for (suffix, names, agg, filter) in app_metrics(kind) {
                doc(
                    &mut set,
                    format!("metrics:apps/{app_name}{suffix}"),
                    metrics_path(app, names, agg, filter, &opts.span),
                    Role::MonitoringReader,
                );
            }
        }
    }

    let mut operations: Vec<(String, Vec<Value>)> = Vec::new();
    let mut nsg: Option<String> = None;
    let mut nic: Option<String> = None;
    while let Some(joined) = set.join_next().await {
        let Ok(got) = joined else { continue };
        match got {
            Got::List(label, Ok(items)) => {
                if let Some(api) = label.strip_prefix("operations:") {
                    out.add(
                        format!("{name}/config/operations/{api}.json"),
                        &json!({ "value": items }),
                    );
                    operations.push((api.to_string(), items));
                } else if let Some(api) = label.strip_prefix("revisions:") {
                    // Only worth keeping when there is more than the current one.
                    if items.len() > 1 {
                        out.add(
                            format!("{name}/config/revisions/{api}.json"),
                            &json!({ "value": items }),
                        );
                    }
                }
            }
            Got::List(_, Err(e)) => out.problem(&e),
            Got::Doc(label, Ok(v)) => {
                if let Some(scope) = label.strip_prefix("policy:") {
                    let file = scope.replace(':', "-");
                    out.add(format!("{name}/config/policies/{file}.json"), &v);
                } else if label == "subnet" {
                    nsg = v
                        .pointer("/properties/networkSecurityGroup/id")
                        .and_then(Value::as_str)
                        .and_then(arm_id_of);
                    nic = nic_in_subnet(&v);
                } else if let Some(stem) = label.strip_prefix("metrics:") {
                    out.add(format!("{name}/metrics/{stem}.json"), &v);
                } else if let Some(ws) = label.strip_prefix("workspace:") {
                    match customer_id_of(&v) {
                        Some(id) => {
                            for w in out.log_workspaces.iter_mut() {
                                if w.resource_id.eq_ignore_ascii_case(ws) {
                                    w.customer_id = Some(id.clone());
                                }
                            }
                        }
                        None => out.problems.push(Problem {
                            origin: Origin::file(format!("azure:{ws}")),
                            message: "the Log Analytics workspace answered without a GUID in properties.customerId: its gateway logs cannot be queried (give --logs la:WORKSPACE_GUID)".into(),
                        }),
                    }
                }
            }
            Got::Doc(label, Err(e))
                if label.starts_with("policy:") && e.failure == Failure::NotFound => {}
            Got::Doc(_, Err(e)) => out.problem(&e),
        }
    }

    // Round 3: operation policies, the NSG, the activity log.
    let mut set: JoinSet<Got> = JoinSet::new();
    if opts.operation_policies {
        for (api, ops) in &operations {
            for op in ops.iter().filter_map(child_name) {
                doc(
                    &mut set,
                    format!("policy:operation:{api}:{op}"),
                    format!(
                        "{svc}/apis/{api}/operations/{op}/policies/policy?api-version={}&format=rawxml",
                        v::APIM
                    ),
                    Role::Reader,
                );
            }
        }
    }
    if let Some(nsg) = &nsg {
        doc(
            &mut set,
            "nsg".into(),
            format!("{nsg}?api-version={}", v::NETWORK),
            Role::Reader,
        );
    }
    // What Azure enforces on the gateway subnet: a NIC's effective rules
    // (a long-running POST the client follows), when there is a NIC in
    // the subnet the principal may ask about.
    if let (Some(nic), Some(_)) = (&nic, &nsg) {
        let (c, path) = (
            client.clone(),
            format!(
                "{nic}/effectiveNetworkSecurityGroups?api-version={}",
                v::NETWORK
            ),
        );
        set.spawn(async move {
            Got::Doc(
                "effective".into(),
                c.post(&path, &json!({}), Role::Reader).await,
            )
        });
    }
    // The resource groups whose activity matters, and the ids inside them.
    let mut watched: Vec<String> = vec![svc.clone()];
    watched.extend(nsg.iter().cloned());
    watched.extend(apps.iter().cloned());
    if opts.activity {
        let groups: BTreeSet<(String, String)> = watched
            .iter()
            .filter_map(|w| {
                let p: Vec<&str> = w.trim_matches('/').split('/').collect();
                (p.len() > 3).then(|| (p[1].to_ascii_lowercase(), p[3].to_ascii_lowercase()))
            })
            .collect();
        for (sub, rg) in groups {
            list(
                &mut set,
                format!("activity:{rg}"),
                activity_path(&sub, &rg, &opts.span),
                Role::MonitoringReader,
            );
        }
    }
    let watched_lower: Vec<String> = watched.iter().map(|w| w.to_ascii_lowercase()).collect();
    let mut events: Vec<Value> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok(got) = joined else { continue };
        match got {
            Got::Doc(label, Ok(v)) => {
                if let Some(scope) = label.strip_prefix("policy:") {
                    let file = scope.replace(':', "-");
                    out.add(format!("{name}/config/policies/{file}.json"), &v);
                } else if label == "nsg" {
                    let nsg_name = v
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("nsg")
                        .to_string();
                    out.add(format!("{name}/config/network/{nsg_name}.json"), &v);
                } else if label == "effective" {
                    let nic_name = nic
                        .as_deref()
                        .and_then(|n| n.rsplit('/').next())
                        .unwrap_or("nic");
                    out.add(
                        format!("{name}/config/network/effective-{nic_name}.json"),
                        &v,
                    );
                }
            }
            Got::Doc(label, Err(e)) if label == "effective" => out.problems.push(Problem {
                origin: Origin::file(format!("azure:{}", e.resource)),
                message: format!(
                    "the effective security rules of the gateway subnet's NIC cannot be read ({}); the NSG's declared rules are used (reading them needs Microsoft.Network/networkInterfaces/effectiveNetworkSecurityGroups/action, e.g. Network Contributor)",
                    e.message
                ),
            }),
            Got::Doc(label, Err(e))
                if label.starts_with("policy:") && e.failure == Failure::NotFound => {}
            Got::Doc(_, Err(e)) => out.problem(&e),
            Got::List(_, Ok(items)) => {
                events.extend(items.into_iter().filter(|e| {
                    let rid = e
                        .get("resourceId")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    watched_lower.iter().any(|w| rid.starts_with(w.as_str()))
                }));
            }
            Got::List(_, Err(e)) => out.problem(&e),
        }
    }
    if opts.activity {
        events.sort_by(|a, b| {
            let t = |e: &Value| {
                e.get("eventTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            t(a).cmp(&t(b))
        });
        out.add(
            format!("{name}/activity-log.json"),
            &json!({ "value": events }),
        );
    }
    // Policies are read in parallel; keep the saved order stable.
    out.documents.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The last segment of a resource's `id` (or its `name`), when it is safe
/// to put back in a URL path.
fn child_name(item: &Value) -> Option<String> {
    let n = item
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            item.get("id")
                .and_then(Value::as_str)
                .and_then(|id| id.rsplit('/').next())
                .map(str::to_string)
        })?;
    (!n.is_empty() && is_safe_segment(&n)).then_some(n)
}

/// Whether an autoscale setting targets `service` (ids compared case-insensitively).
fn targets(setting: &Value, service: &str) -> bool {
    setting
        .pointer("/properties/targetResourceUri")
        .and_then(Value::as_str)
        .and_then(arm_id_of)
        .is_some_and(|t| t.eq_ignore_ascii_case(service))
}

/// The Log Analytics workspaces the diagnostic settings of `service` send
/// gateway logs to (the `GatewayLogs` category or the `allLogs` group
/// enabled), one per (setting, workspace) in setting order; and a problem
/// for each setting that has a workspace but leaves gateway logs out, or
/// names something that is not a workspace id.
fn gateway_log_workspaces(service: &str, settings: &[Value]) -> (Vec<LogWorkspace>, Vec<Problem>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for s in settings {
        let Some(raw) = s.pointer("/properties/workspaceId").and_then(Value::as_str) else {
            continue;
        };
        let setting = s
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let origin = Origin::file(format!(
            "azure:{service}/providers/Microsoft.Insights/diagnosticSettings/{setting}"
        ));
        let Some(resource_id) = workspace_id_of(raw) else {
            notes.push(Problem {
                origin,
                message: format!(
                    "workspaceId `{raw}` is not a Log Analytics workspace id (/subscriptions/…/providers/Microsoft.OperationalInsights/workspaces/NAME)"
                ),
            });
            continue;
        };
        let sends_gateway_logs = s
            .pointer("/properties/logs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|l| l.get("enabled").and_then(Value::as_bool) == Some(true))
            .any(|l| {
                let is = |k: &str, want: &str| {
                    l.get(k)
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.eq_ignore_ascii_case(want))
                };
                is("category", "GatewayLogs") || is("categoryGroup", "allLogs")
            });
        if !sends_gateway_logs {
            notes.push(Problem {
                origin,
                message: format!(
                    "sends to workspace {resource_id} but not the GatewayLogs category: the gateway's requests are not there (enable GatewayLogs or allLogs in this setting, or give --logs)"
                ),
            });
            continue;
        }
        found.push(LogWorkspace {
            resource_id,
            setting,
            customer_id: None,
        });
    }
    (found, notes)
}

/// A Log Analytics workspace's ARM id, checked segment by segment (it is
/// read next, so nothing but a workspace id may pass).
fn workspace_id_of(s: &str) -> Option<String> {
    let id = arm_id_of(s)?;
    let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
    let ok = parts.len() == 8
        && parts[0].eq_ignore_ascii_case("subscriptions")
        && parts[2].eq_ignore_ascii_case("resourceGroups")
        && parts[4].eq_ignore_ascii_case("providers")
        && parts[5].eq_ignore_ascii_case("Microsoft.OperationalInsights")
        && parts[6].eq_ignore_ascii_case("workspaces")
        && parts.iter().all(|p| !p.is_empty() && is_safe_segment(p));
    ok.then_some(id)
}

/// A workspace resource's `properties.customerId`, when it is a GUID.
fn customer_id_of(workspace: &Value) -> Option<String> {
    let id = workspace
        .pointer("/properties/customerId")
        .and_then(Value::as_str)?
        .trim();
    let parts: Vec<&str> = id.split('-').collect();
    let guid = parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()));
    guid.then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_and_effective_rules_of_one_nsg_are_one_nsg_with_the_effective_rules() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpus/azure-rest/arm-nsg-get.json");
        let Ok(text) = std::fs::read(&path) else {
            eprintln!("skipping: {} is absent", path.display());
            return;
        };
        let exchange: serde_json::Value = serde_json::from_slice(&text).unwrap();
        let declared = &exchange["response"]["body"];
        let id = declared["id"].as_str().unwrap();
        let subnet = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/apim";
        let effective = crate::simulate::standin::effective_rules(declared, id, subnet);
        let d = (
            "a/config/network/nsg.json".to_string(),
            serde_json::to_vec(declared).unwrap(),
        );
        let e = (
            "a/config/network/effective-nic.json".to_string(),
            serde_json::to_vec(&effective).unwrap(),
        );
        for files in [vec![d.clone(), e.clone()], vec![e, d]] {
            let snap = crate::collect::collect_files(&files);
            assert_eq!(snap.nsgs.len(), 1, "{:#?}", snap.nsgs);
            let n = &snap.nsgs[0];
            assert!(n.effective, "{n:#?} {:?}", snap.loaded);
            assert_eq!(n.name, declared["name"].as_str().unwrap());
            assert!(n.subnets.iter().any(|s| s == subnet), "{:?}", n.subnets);
            let rules = declared
                .pointer("/properties/securityRules")
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len);
            assert_eq!(n.rules.len(), rules);
            assert!(
                snap.loaded.problems.is_empty(),
                "{:?}",
                snap.loaded.problems
            );
        }
    }

    #[test]
    fn the_nic_of_a_subnet_is_found_from_its_ip_configurations() {
        let subnet = json!({"properties": {"ipConfigurations": [
            {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb/frontendIPConfigurations/f"},
            {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vm1-nic/ipConfigurations/ipconfig1"},
        ]}});
        assert_eq!(
            nic_in_subnet(&subnet).as_deref(),
            Some(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/vm1-nic"
            )
        );
        // A VNet-injected stv2 gateway: no NIC the customer can see.
        assert_eq!(nic_in_subnet(&json!({"properties": {}})), None);
    }

    #[test]
    fn diagnostic_settings_name_the_workspaces_that_hold_gateway_logs() {
        let svc =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim";
        let ws = |n: &str| {
            format!(
                "/subscriptions/s/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/{n}"
            )
        };
        let setting = |name: &str, workspace: &str, logs: Value| {
            json!({"id": format!("{svc}/providers/microsoft.insights/diagnosticSettings/{name}"), "name": name,
                   "properties": {"workspaceId": workspace, "logAnalyticsDestinationType": "Dedicated",
                                  "logs": logs, "metrics": [{"category": "AllMetrics", "enabled": true}]}})
        };
        let settings = vec![
            setting(
                "gw",
                &ws("main"),
                json!([{"category": "GatewayLogs", "categoryGroup": null, "enabled": true}]),
            ),
            setting(
                "all",
                &ws("other"),
                json!([{"category": null, "categoryGroup": "allLogs", "enabled": true}]),
            ),
            setting(
                "metrics-only",
                &ws("metrics"),
                json!([{"category": "GatewayLogs", "enabled": false}]),
            ),
            setting(
                "odd",
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
                json!([{"category": "GatewayLogs", "enabled": true}]),
            ),
            json!({"name": "to-eventhub", "properties": {"eventHubName": "eh", "logs": [{"category": "GatewayLogs", "enabled": true}]}}),
        ];
        let (found, notes) = gateway_log_workspaces(svc, &settings);
        let got: Vec<(&str, &str)> = found
            .iter()
            .map(|w| (w.setting.as_str(), w.resource_id.as_str()))
            .collect();
        assert_eq!(
            got,
            [("gw", ws("main").as_str()), ("all", ws("other").as_str())]
        );
        assert!(found.iter().all(|w| w.customer_id.is_none()));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].message.contains("not the GatewayLogs category"));
        assert!(
            notes[0]
                .origin
                .file
                .ends_with("diagnosticSettings/metrics-only")
        );
        assert!(
            notes[1]
                .message
                .contains("is not a Log Analytics workspace id")
        );
        // Nothing but a workspace id is read next.
        assert!(workspace_id_of(&format!("{}?api-version=1", ws("x"))).is_none());
        assert!(workspace_id_of(&format!("{}/tables/t", ws("x"))).is_none());
        assert_eq!(workspace_id_of(&ws("x")).as_deref(), Some(ws("x").as_str()));
    }

    #[test]
    fn a_workspace_gives_its_customer_id_only_when_it_is_a_guid() {
        let w =
            |id: &str| json!({"properties": {"customerId": id, "provisioningState": "Succeeded"}});
        assert_eq!(
            customer_id_of(&w("6F1D2C3B-4A5E-4F60-8B7C-9D0E1F2A3B4C")).as_deref(),
            Some("6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c")
        );
        assert_eq!(customer_id_of(&w("main")), None);
        assert_eq!(customer_id_of(&json!({"properties": {}})), None);
    }

    #[test]
    fn service_ids_are_checked() {
        let id = ServiceId::parse(
            "/subscriptions/s-1/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim",
        )
        .unwrap();
        assert_eq!(id.name, "apim");
        assert_eq!(
            id.id(),
            "/subscriptions/s-1/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim"
        );
        assert!(ServiceId::parse("/subscriptions/s/resourceGroups/rg").is_err());
        assert!(
            ServiceId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/x")
                .is_err()
        );
        assert!(
            ServiceId::parse(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/a?x=1"
            )
            .is_err()
        );
    }

    #[test]
    fn urls_are_built_and_encoded() {
        let span = Span {
            start: DateTime::parse_from_rfc3339("2024-05-14T09:00:00Z")
                .unwrap()
                .to_utc(),
            end: DateTime::parse_from_rfc3339("2024-05-14T10:00:00Z")
                .unwrap()
                .to_utc(),
        };
        let p = metrics_path(
            "/x",
            "Requests",
            "Total",
            Some("GatewayResponseCodeCategory eq '*'"),
            &span,
        );
        assert!(
            p.contains("timespan=2024-05-14T09%3A00%3A00Z%2F2024-05-14T10%3A00%3A00Z"),
            "{p}"
        );
        assert!(
            p.contains("$filter=GatewayResponseCodeCategory%20eq%20%27%2A%27"),
            "{p}"
        );
        let a = activity_path("s", "rg", &span);
        assert!(a.contains("resourceGroupName%20eq%20%27rg%27"), "{a}");
        assert_eq!(
            arm_id_of("https://management.azure.com/subscriptions/s/resourceGroups/r/providers/Microsoft.App/containerApps/a/").as_deref(),
            Some("/subscriptions/s/resourceGroups/r/providers/Microsoft.App/containerApps/a")
        );
        assert_eq!(
            app_kind("/subscriptions/s/resourceGroups/r/providers/Microsoft.Web/sites/f"),
            Some(AppKind::WebApp)
        );
        assert_eq!(
            app_kind("/subscriptions/s/resourceGroups/r/providers/Microsoft.Sql/servers/q"),
            None
        );
    }
}
