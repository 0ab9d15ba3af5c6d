//! Configuration entities of a gateway instance, in the form analysis needs
//! them: service, APIs, operations, products, backends, policies, named
//! values, network security groups, autoscale settings, metric series and
//! the change history. Readers fill these from REST, `az`, ARM-template and
//! apiops shapes alike; fields a source does not give stay `None`/empty.

use super::{Origin, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API Management service resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub resource_id: Option<String>,
    pub location: Option<String>,
    /// `Developer`, `Basic`, `Standard`, `Premium`, `Consumption`, `BasicV2`…
    pub sku: Option<String>,
    /// Units; `None` when absent or an unresolved template expression.
    pub capacity: Option<u32>,
    pub zones: Vec<String>,
    /// `None`, `External` or `Internal`.
    pub vnet_type: Option<String>,
    pub subnet_id: Option<String>,
    pub platform_version: Option<String>,
    pub gateway_url: Option<String>,
    pub public_ips: Vec<String>,
    pub private_ips: Vec<String>,
    pub additional_locations: Vec<String>,
    pub workspaces: Vec<String>,
    pub origin: Origin,
}

/// A Log Analytics workspace a diagnostic setting of the service sends
/// its gateway logs (`GatewayLogs`, or the `allLogs` group) to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogWorkspace {
    /// The workspace's ARM id, as the diagnostic setting names it.
    pub resource_id: String,
    /// The diagnostic setting's name.
    pub setting: String,
    /// The workspace's `customerId` (the GUID its query API takes); `None`
    /// when the workspace itself could not be read.
    pub customer_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Api {
    /// The API's name (last id segment), e.g. `orders-api` or `echo;rev=2`.
    pub id: String,
    pub display_name: Option<String>,
    pub path: Option<String>,
    pub service_url: Option<String>,
    pub subscription_required: Option<bool>,
    pub revision: Option<String>,
    pub is_current: Option<bool>,
    pub api_type: Option<String>,
    pub protocols: Vec<String>,
    pub origin: Origin,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub api_id: String,
    pub id: String,
    pub display_name: Option<String>,
    pub method: Option<String>,
    pub url_template: Option<String>,
    pub origin: Origin,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub display_name: Option<String>,
    pub subscription_required: Option<bool>,
    pub state: Option<String>,
    /// API ids in this product, where an association file or list said so.
    pub apis: Vec<String>,
    pub origin: Origin,
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    #[default]
    Single,
    Pool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolMember {
    /// Backend name (last segment of the full id).
    pub id: String,
    pub priority: Option<u32>,
    pub weight: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BreakerRule {
    pub name: String,
    pub count: Option<u32>,
    pub interval_secs: Option<f64>,
    pub trip_duration_secs: Option<f64>,
    pub status_ranges: Vec<(u16, u16)>,
    pub error_reasons: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    pub id: String,
    pub kind: BackendKind,
    pub url: Option<String>,
    pub protocol: Option<String>,
    /// The Azure resource of the app behind it (`resourceId`), where given.
    pub resource_id: Option<String>,
    pub pool: Vec<PoolMember>,
    pub circuit_breaker: Vec<BreakerRule>,
    pub origin: Origin,
}

/// Where a policy document applies. Displayed and parsed as `global`,
/// `workspace:<id>`, `product:<id>`, `api:<id>`, `operation:<api>/<op>`,
/// `fragment:<id>`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(into = "String", try_from = "String")]
pub enum PolicyScope {
    Global,
    Workspace(String),
    Product(String),
    Api(String),
    Operation(String, String),
    Fragment(String),
    /// A policy file whose scope could not be inferred.
    Unknown,
}

impl PolicyScope {
    pub fn parse(s: &str) -> Option<PolicyScope> {
        let s = s.trim();
        if s == "global" {
            return Some(PolicyScope::Global);
        }
        if s == "unknown" {
            return Some(PolicyScope::Unknown);
        }
        let (kind, rest) = s.split_once(':')?;
        if rest.is_empty() {
            return None;
        }
        Some(match kind {
            "workspace" => PolicyScope::Workspace(rest.into()),
            "product" => PolicyScope::Product(rest.into()),
            "api" => PolicyScope::Api(rest.into()),
            "fragment" => PolicyScope::Fragment(rest.into()),
            "operation" => {
                let (api, op) = rest.split_once('/')?;
                PolicyScope::Operation(api.into(), op.into())
            }
            _ => return None,
        })
    }
}

impl std::fmt::Display for PolicyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyScope::Global => f.write_str("global"),
            PolicyScope::Workspace(w) => write!(f, "workspace:{w}"),
            PolicyScope::Product(p) => write!(f, "product:{p}"),
            PolicyScope::Api(a) => write!(f, "api:{a}"),
            PolicyScope::Operation(a, o) => write!(f, "operation:{a}/{o}"),
            PolicyScope::Fragment(x) => write!(f, "fragment:{x}"),
            PolicyScope::Unknown => f.write_str("unknown"),
        }
    }
}

impl From<PolicyScope> for String {
    fn from(s: PolicyScope) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for PolicyScope {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        PolicyScope::parse(&s).ok_or_else(|| format!("not a policy scope: {s:?}"))
    }
}

/// One policy document as loaded: raw XML text (never pre-parsed here; the
/// policy reader in `analyze` owns parsing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDoc {
    pub scope: PolicyScope,
    /// The XML as APIM would run it (entity-escaped `xml` format decoded by JSON).
    pub xml: String,
    /// `xml`, `rawxml`, `file` (a bare .xml file), …
    pub format: String,
    /// Where the XML text starts inside `origin.file`, for line numbers of
    /// findings: 1 for a bare file; for XML embedded in JSON, the JSON line.
    pub origin: Origin,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedValue {
    pub name: String,
    pub display_name: Option<String>,
    pub value: Option<String>,
    pub secret: bool,
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Allow,
    Deny,
}

/// One NSG security rule, singular and plural fields already unioned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityRule {
    pub name: String,
    pub priority: u32,
    pub direction: Direction,
    pub access: Access,
    /// `Tcp`, `Udp`, `Icmp`, `*` (as written).
    pub protocol: String,
    pub source_prefixes: Vec<String>,
    pub source_ports: Vec<String>,
    pub destination_prefixes: Vec<String>,
    pub destination_ports: Vec<String>,
    pub description: Option<String>,
    /// True for Azure's built-in default rules.
    pub default: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Nsg {
    pub name: String,
    pub resource_id: Option<String>,
    pub rules: Vec<SecurityRule>,
    /// Default rules as given by the source; empty when it gave none (the
    /// evaluator then adds Azure's six defaults).
    pub default_rules: Vec<SecurityRule>,
    pub subnets: Vec<String>,
    pub origin: Origin,
    /// The rules are Azure's effective rules (a NIC's
    /// `effectiveNetworkSecurityGroups`: what Azure enforces, tags
    /// expanded), not the rules as declared on the NSG.
    #[serde(default)]
    pub effective: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleRule {
    pub metric: String,
    pub metric_resource: Option<String>,
    pub statistic: Option<String>,
    pub time_window_secs: Option<f64>,
    pub time_aggregation: Option<String>,
    /// `GreaterThan`, `LessThan`, …
    pub operator: String,
    pub threshold: f64,
    /// `Increase` or `Decrease`.
    pub direction: String,
    pub change: Option<u32>,
    pub cooldown_secs: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleProfile {
    pub name: String,
    pub minimum: Option<u32>,
    pub maximum: Option<u32>,
    pub default: Option<u32>,
    pub rules: Vec<ScaleRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoscaleSetting {
    pub name: String,
    pub enabled: Option<bool>,
    pub target_resource: Option<String>,
    pub profiles: Vec<ScaleProfile>,
    pub origin: Origin,
}

/// What a metric series is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricSource {
    /// The API Management service itself.
    #[default]
    Gateway,
    /// An app behind a backend: Container Apps, App Service, Functions.
    BackendApp,
    Other,
}

/// One time series from an Azure Monitor metrics response: one metric, one
/// aggregation, one combination of dimension values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub resource_id: Option<String>,
    /// Short resource name (last id segment), e.g. `inventory-app`.
    pub resource: Option<String>,
    pub source: MetricSource,
    /// As the REST response names it: `Requests`, `Capacity`, `RestartCount`…
    pub name: String,
    pub unit: Option<String>,
    /// `total`, `average`, `maximum`, `minimum` or `count`.
    pub aggregation: String,
    /// Dimension names lower-cased, as Azure returns them.
    pub dimensions: BTreeMap<String, String>,
    /// Points with a value; a point with only a timestamp is missing, not 0.
    pub points: Vec<(Timestamp, f64)>,
    pub origin: Origin,
}

/// What kind of change an activity-log event records.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A write to an API Management resource (policy, API, backend, service…).
    #[default]
    Config,
    /// A code or revision deployment of a backend app.
    Deployment,
    /// A network change (NSG, rule, route table, subnet).
    Network,
    /// Scale or autoscale change.
    Scale,
    Delete,
    Other,
}

/// One entry of the configuration history (activity log event).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub time: Timestamp,
    pub kind: ChangeKind,
    /// e.g. `Microsoft.ApiManagement/service/apis/policies/write`.
    pub operation: String,
    /// `Succeeded`, `Failed`, `Started`, `Accepted`…
    pub status: Option<String>,
    pub resource_id: Option<String>,
    pub caller: Option<String>,
    /// The policy scope a policy write targets, derived from the resource id.
    pub policy_scope: Option<PolicyScope>,
    /// The policy XML the write set, where the event carries the request body.
    pub policy_after: Option<String>,
    /// The policy XML before the write, where known.
    pub policy_before: Option<String>,
    pub description: Option<String>,
    pub origin: Origin,
}

impl Change {
    /// The write failed (`Failed`, `Failure`): it changed nothing.
    pub fn failed(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Failure"))
    }
}

/// Which Azure service hosts an app behind a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppProvider {
    /// `Microsoft.Web/sites`: App Service web apps and Function apps.
    AppService,
    /// `Microsoft.App/containerApps`.
    ContainerApp,
}

/// The app an Azure resource id belongs to. Ids below an app name that app:
/// a site's deployments, slots, functions and config
/// (`…/Microsoft.Web/sites/NAME/deployments/ID` is a deployment of NAME, not
/// an app called ID), a container app's revisions, and metric ids
/// (`…/sites/NAME/providers/Microsoft.Insights/metrics/X`). A deployment
/// slot is an app of its own (`slot`), as Azure runs it apart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppRef {
    pub provider: AppProvider,
    /// The site or container app name.
    pub name: String,
    /// The deployment slot (App Service), if the id is in one.
    pub slot: Option<String>,
    /// What happened below the app: `deployments/ID`, `revisions/REV`,
    /// `functions/FN`, … (empty for the app itself).
    pub child: Option<(String, String)>,
}

impl AppRef {
    /// The first label of the app's default host name: `NAME`, or
    /// `NAME-SLOT` for a slot (`NAME-SLOT.azurewebsites.net`).
    pub fn host_label(&self) -> String {
        match &self.slot {
            Some(s) => format!("{}-{s}", self.name),
            None => self.name.clone(),
        }
    }

    /// The same app (provider, name and slot, ignoring case): a deployment
    /// of a site ties to the backend whose resourceId names that site.
    pub fn same_app(&self, other: &AppRef) -> bool {
        self.provider == other.provider
            && self.name.eq_ignore_ascii_case(&other.name)
            && match (&self.slot, &other.slot) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }

    /// How people name it: `site catalog-web`, `site catalog-web slot
    /// staging`, `container app orders-app`.
    pub fn label(&self) -> String {
        let kind = match self.provider {
            AppProvider::AppService => "site",
            AppProvider::ContainerApp => "container app",
        };
        match &self.slot {
            Some(s) => format!("{kind} {} slot {s}", self.name),
            None => format!("{kind} {}", self.name),
        }
    }
}

/// The app a resource id (full id, or a management URL) is about; `None`
/// when the id is not under an App Service site or a container app.
pub fn app_of_resource(id: &str) -> Option<AppRef> {
    let segs: Vec<&str> = id
        .split(['/', '?'])
        .filter(|s| !s.is_empty())
        .take(64)
        .collect();
    let eq = |i: usize, want: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(want));
    // The first provider section that names an app; a metric id carries a
    // second `providers/Microsoft.Insights` below it.
    let at = (0..segs.len()).find(|&i| {
        eq(i, "providers")
            && ((eq(i + 1, "Microsoft.Web") && eq(i + 2, "sites"))
                || (eq(i + 1, "Microsoft.App") && eq(i + 2, "containerApps")))
    })?;
    let provider = if eq(at + 1, "Microsoft.Web") {
        AppProvider::AppService
    } else {
        AppProvider::ContainerApp
    };
    let name = segs.get(at + 3)?.to_string();
    let mut rest = at + 4;
    let mut slot = None;
    if provider == AppProvider::AppService && eq(rest, "slots") {
        slot = segs.get(rest + 1).map(|s| s.to_string());
        rest += 2;
    }
    let child = match (segs.get(rest), segs.get(rest + 1)) {
        (Some(kind), _) if kind.eq_ignore_ascii_case("providers") => None,
        (Some(kind), Some(n)) => Some((kind.to_ascii_lowercase(), n.to_string())),
        (Some(kind), None) => Some((kind.to_ascii_lowercase(), String::new())),
        _ => None,
    };
    Some(AppRef {
        provider,
        name,
        slot,
        child,
    })
}

#[cfg(test)]
mod app_tests {
    use super::*;

    const SITE: &str =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/catalog-web";

    #[test]
    fn deployments_slots_revisions_and_metric_ids_name_their_app() {
        let d = app_of_resource(&format!("{SITE}/deployments/4f2a9c1be8d7")).unwrap();
        assert_eq!(d.name, "catalog-web");
        assert_eq!(d.provider, AppProvider::AppService);
        assert_eq!(d.slot, None);
        assert_eq!(d.child, Some(("deployments".into(), "4f2a9c1be8d7".into())));
        assert!(d.same_app(&app_of_resource(SITE).unwrap()));

        let slot = app_of_resource(&format!("{SITE}/slots/staging/deployments/9")).unwrap();
        assert_eq!(slot.slot.as_deref(), Some("staging"));
        assert_eq!(slot.host_label(), "catalog-web-staging");
        assert!(!slot.same_app(&d), "a slot is not the production site");

        let m = app_of_resource(&format!(
            "{SITE}/providers/Microsoft.Insights/metrics/HealthCheckStatus"
        ))
        .unwrap();
        assert!(m.same_app(&d) && m.child.is_none());

        let f = app_of_resource(&format!("{SITE}/functions/ingest")).unwrap();
        assert!(f.same_app(&d));

        let rev = app_of_resource(
            "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/orders-app/revisions/orders-app--v7?api-version=2024-03-01",
        )
        .unwrap();
        assert_eq!(rev.provider, AppProvider::ContainerApp);
        assert_eq!(rev.name, "orders-app");
        assert_eq!(rev.label(), "container app orders-app");

        assert_eq!(
            app_of_resource(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/x/backends/catalog-web"
            ),
            None
        );
        assert_eq!(app_of_resource("/providers/Microsoft.Web/sites"), None);
        assert_eq!(app_of_resource(""), None);
    }
}

/// What kind of configuration object a history follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigObjectKind {
    /// A policy document; the object's name is its scope (`api:orders`).
    Policy,
    Service,
    Api,
    Operation,
    Product,
    Backend,
    NamedValue,
    Nsg,
    Autoscale,
    Other,
}

impl ConfigObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigObjectKind::Policy => "policy",
            ConfigObjectKind::Service => "service",
            ConfigObjectKind::Api => "api",
            ConfigObjectKind::Operation => "operation",
            ConfigObjectKind::Product => "product",
            ConfigObjectKind::Backend => "backend",
            ConfigObjectKind::NamedValue => "named_value",
            ConfigObjectKind::Nsg => "nsg",
            ConfigObjectKind::Autoscale => "autoscale",
            ConfigObjectKind::Other => "other",
        }
    }
}

/// One configuration object whose versions are known: a policy at a scope,
/// or a resource by kind and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConfigObject {
    pub kind: ConfigObjectKind,
    /// The scope for a policy (`api:orders`), else the resource's name.
    pub name: String,
}

impl ConfigObject {
    pub fn policy(scope: &PolicyScope) -> ConfigObject {
        ConfigObject {
            kind: ConfigObjectKind::Policy,
            name: scope.to_string(),
        }
    }

    /// The policy scope, for a policy object.
    pub fn policy_scope(&self) -> Option<PolicyScope> {
        (self.kind == ConfigObjectKind::Policy)
            .then(|| PolicyScope::parse(&self.name))
            .flatten()
    }
}

impl std::fmt::Display for ConfigObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// One version of a configuration object, as a history source recorded it:
/// a dated copy in a history folder, a git commit of an apiops repository,
/// or a live snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigVersion {
    /// When this version took effect (commit or copy time).
    pub time: Timestamp,
    /// Who made it (commit author, caller), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The source's own name for it: a commit id, a file name, a snapshot id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// A commit message or note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The object's text in this version (policy XML, resource JSON).
    pub content: String,
    pub origin: Origin,
}

/// The known versions of one configuration object, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigHistory {
    pub object: ConfigObject,
    pub versions: Vec<ConfigVersion>,
}

impl ConfigHistory {
    /// Puts versions in time order and drops a version whose content equals
    /// the one before it (a copy saved twice is one version).
    pub fn normalise(&mut self) {
        self.versions
            .sort_by(|a, b| a.time.cmp(&b.time).then(a.revision.cmp(&b.revision)));
        self.versions
            .dedup_by(|later, earlier| later.content.trim() == earlier.content.trim());
    }

    /// The version in force at `t` (the latest at or before it).
    pub fn at(&self, t: Timestamp) -> Option<&ConfigVersion> {
        self.versions.iter().rev().find(|v| v.time <= t)
    }

    /// One `Change` per version that differs from the one before, carrying
    /// both texts (policy objects fill `policy_before`/`policy_after`).
    pub fn changes(&self) -> Vec<Change> {
        let scope = self.object.policy_scope();
        self.versions
            .windows(2)
            .map(|pair| {
                let (before, after) = (&pair[0], &pair[1]);
                let operation = match self.object.kind {
                    ConfigObjectKind::Policy => {
                        "Microsoft.ApiManagement/service/policies/write".to_string()
                    }
                    k => format!("{} write", k.as_str()),
                };
                Change {
                    time: after.time,
                    kind: match self.object.kind {
                        ConfigObjectKind::Nsg => ChangeKind::Network,
                        ConfigObjectKind::Autoscale => ChangeKind::Scale,
                        _ => ChangeKind::Config,
                    },
                    operation,
                    status: Some("Succeeded".into()),
                    resource_id: None,
                    caller: after.author.clone(),
                    policy_scope: scope.clone(),
                    policy_after: Some(after.content.clone()),
                    policy_before: Some(before.content.clone()),
                    description: Some(format!(
                        "{} changed{}{}",
                        self.object,
                        after
                            .revision
                            .as_deref()
                            .map(|r| format!(" in {r}"))
                            .unwrap_or_default(),
                        after
                            .message
                            .as_deref()
                            .map(|m| format!(": {}", m.lines().next().unwrap_or("")))
                            .unwrap_or_default()
                    )),
                    origin: after.origin.clone(),
                }
            })
            .collect()
    }
}

/// Adds `incoming` histories to `into`, merging versions of the same object.
pub fn merge_histories(into: &mut Vec<ConfigHistory>, incoming: Vec<ConfigHistory>) {
    for h in incoming {
        match into.iter_mut().find(|x| x.object == h.object) {
            Some(x) => {
                x.versions.extend(h.versions);
                x.normalise();
            }
            None => {
                let mut h = h;
                h.normalise();
                into.push(h);
            }
        }
    }
}
