//! What each tool answers, typed: plain structs that serialise to the tool's
//! JSON (`ToolOutput::data`, MCP `structuredContent`) and that `render`
//! turns into the tool's text. In-process readers (the offline answerer)
//! read these fields instead of picking at JSON. Words come from `model`
//! (health, severity and finding kind serialise as their `as_str`).
//!
//! Values are kept exact; ratios are rounded to 4 decimals only when
//! serialised, so the text and the JSON never round differently.

use crate::analyze::rollup::Stats;
use crate::model::network::Verdict;
use crate::model::{
    BackendKind, Change, ChangeKind, Finding, FindingKind, Health, Origin, PolicyScope, Proposal,
    RequestRecord, RouteEntry, SecurityRule, Severity, Story, Suspect, Timestamp, Window,
};
use schemars::JsonSchema;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;

/// One tool's answer. Serialises as the answer itself (no tag): the tool
/// name travels beside it in `ToolOutput::tool`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolResult {
    Summary(Summary),
    Apis(Vec<ApiRow>),
    Operations(Vec<OperationRow>),
    Products(Vec<ProductRow>),
    /// `list_backends` and `backend_health`.
    Backends(Backends),
    FailureRate(FailureRate),
    FailureLog(Vec<RequestRecord>),
    Changes(Changes),
    BackendMap(Vec<RouteEntry>),
    Policies(Policies),
    Nsgs(Vec<NsgRow>),
    NetworkCheck(Vec<FlowCheck>),
    Capacity(Capacity),
    Findings(Vec<FindingView>),
    Explain(Box<Explained>),
    Proposals(Vec<Proposal>),
    /// The call could not be answered (a name that resolves to nothing).
    Error(ToolError),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolError {
    pub error: String,
}

/// Rounded to 4 decimals, as ratios are serialised.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn ser_round4<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round4(*x))
}

/// Traffic counts and latency of a scope (the rollup's `Stats`).
/// Serialises (and has the JSON Schema) of [`TrafficJson`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic(pub Stats);

/// What [`Traffic`] writes: the counters, the 5xx rate and the latency
/// percentiles, flat.
#[derive(Serialize, JsonSchema)]
struct TrafficJson<'a> {
    requests: u64,
    status_5xx: u64,
    /// Share of requests answered with a 5xx, 4 decimals.
    #[serde(serialize_with = "ser_round4")]
    error_rate: f64,
    status_4xx: u64,
    status_429: u64,
    timeouts: u64,
    connection_failures: u64,
    backend_5xx: u64,
    p50_ms: Option<u32>,
    p95_ms: Option<u32>,
    p99_ms: Option<u32>,
    backend_p95_ms: Option<u32>,
    /// Count per `LastErrorReason`.
    error_reasons: &'a BTreeMap<String, u64>,
}

impl Serialize for Traffic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = &self.0;
        TrafficJson {
            requests: t.requests,
            status_5xx: t.status_5xx,
            error_rate: t.error_rate(),
            status_4xx: t.status_4xx,
            status_429: t.status_429,
            timeouts: t.timeouts,
            connection_failures: t.connection_failures,
            backend_5xx: t.backend_5xx,
            p50_ms: t.total_time.p50,
            p95_ms: t.total_time.p95,
            p99_ms: t.total_time.p99,
            backend_p95_ms: t.backend_time.p95,
            error_reasons: &t.error_reasons,
        }
        .serialize(s)
    }
}

impl JsonSchema for Traffic {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Traffic".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        TrafficJson::json_schema(g)
    }
}

/// The schema of a type that serialises as its `Display` text.
fn string_schema(description: &str) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "description": description})
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ApiRow {
    pub id: String,
    pub display_name: Option<String>,
    pub path: Option<String>,
    pub service_url: Option<String>,
    pub operations: usize,
    pub requests: u64,
    pub status_5xx: u64,
    #[serde(serialize_with = "ser_round4")]
    pub error_rate: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct OperationRow {
    pub api: String,
    pub id: String,
    pub method: Option<String>,
    pub url_template: Option<String>,
    pub requests: u64,
    #[serde(serialize_with = "ser_round4")]
    pub error_rate: f64,
    pub p95_ms: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ProductRow {
    pub id: String,
    pub display_name: Option<String>,
    pub state: Option<String>,
    pub subscription_required: Option<bool>,
    pub apis: Vec<String>,
}

/// Backends with their health and traffic. Serialises as the list; `asked`
/// and `known` only shape the text when nothing matched.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Backends {
    pub rows: Vec<BackendRow>,
    /// The backend the call named, if any.
    #[serde(skip)]
    pub asked: Option<String>,
    /// Every backend id loaded.
    #[serde(skip)]
    pub known: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct BackendRow {
    pub id: String,
    pub kind: BackendKind,
    pub url: Option<String>,
    /// Pool member ids.
    pub pool: Vec<String>,
    pub circuit_breaker: bool,
    /// Its own health (`Diagnosis::backend_health`): its traffic, its
    /// incidents and its app; `unknown` when the data says nothing of it.
    pub health: Health,
    pub traffic: Traffic,
    /// Findings about it (serialised as their ids).
    #[serde(serialize_with = "ser_finding_ids")]
    #[schemars(with = "Vec<String>")]
    pub findings: Vec<FindingBrief>,
}

/// What a list shows of a finding: enough for `[id] severity kind: summary`.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingBrief {
    pub id: String,
    pub severity: Severity,
    pub kind: FindingKind,
    pub summary: String,
}

impl FindingBrief {
    pub fn of(f: &Finding) -> FindingBrief {
        FindingBrief {
            id: f.id.clone(),
            severity: f.severity,
            kind: f.kind,
            summary: f.summary.clone(),
        }
    }
}

fn ser_finding_ids<S: Serializer>(fs: &[FindingBrief], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(fs.iter().map(|f| f.id.as_str()))
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct FailureRate {
    /// `operation orders-api/get-order`, `API orders-api`, `backend b`, `every API`.
    pub scope: String,
    /// The period's label (`last hour`, `all data`…).
    pub period: &'static str,
    pub window: Option<Window>,
    pub data_shorter_than_period: bool,
    pub totals: Traffic,
    /// Per operation, most 5xx first (empty for a backend).
    pub operations: Vec<OperationTraffic>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct OperationTraffic {
    pub api: String,
    pub operation: String,
    pub requests: u64,
    pub status_5xx: u64,
    #[serde(serialize_with = "ser_round4")]
    pub error_rate: f64,
    pub timeouts: u64,
    pub p95_ms: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Changes {
    /// Changes in the activity log.
    pub total: usize,
    /// The newest, newest first.
    pub changes: Vec<ChangeRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ChangeRow {
    pub time: Timestamp,
    pub kind: ChangeKind,
    pub operation: String,
    /// The policy scope written, else the last segments of the resource id.
    pub target: String,
    pub caller: Option<String>,
    pub status: Option<String>,
    pub policy_changed: bool,
    #[serde(serialize_with = "ser_display")]
    #[schemars(with = "String")]
    pub origin: Origin,
    /// The policy scope written, if a policy was.
    #[serde(skip)]
    pub policy_scope: Option<PolicyScope>,
    #[serde(skip)]
    pub resource_id: Option<String>,
    /// What it deployed, in words: `container app orders-app (revision
    /// orders-app--v7)`; `an app` without a resource id.
    #[serde(skip)]
    pub deployed: String,
    /// What it did to the forward-request timeout: `forward-request
    /// timeout 120 s → 5 s`, `… set to 5 s`.
    #[serde(skip)]
    pub timeout_detail: Option<String>,
}

impl ChangeRow {
    pub fn of(
        c: &Change,
        target: String,
        deployed: String,
        timeout_detail: Option<String>,
    ) -> ChangeRow {
        ChangeRow {
            time: c.time,
            kind: c.kind,
            operation: c.operation.clone(),
            target,
            caller: c.caller.clone(),
            status: c.status.clone(),
            policy_changed: c.policy_after.is_some(),
            origin: c.origin.clone(),
            policy_scope: c.policy_scope.clone(),
            resource_id: c.resource_id.clone(),
            deployed,
            timeout_detail,
        }
    }
}

fn ser_display<T: std::fmt::Display, S: Serializer>(x: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(x)
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Policies {
    pub documents: Vec<PolicyDocument>,
    /// The effective policy of each operation asked about (none without an API).
    pub effective: Vec<EffectiveRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct PolicyDocument {
    pub scope: String,
    pub origin: String,
    /// The XML, its middle cut when long.
    pub xml: String,
}

/// A policy statement and the scope it comes from: `name @scope`.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub name: String,
    pub scope: String,
}

impl std::fmt::Display for Statement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} @{}", self.name, self.scope)
    }
}

impl Serialize for Statement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Statement {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Statement".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        string_schema("a policy statement and its scope: `name @scope`")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SectionRow {
    pub section: &'static str,
    pub statements: Vec<Statement>,
}

/// A rate limit or quota in force: `policy @scope calls=N renewal=Ns`.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitRow {
    pub policy: String,
    pub scope: String,
    pub calls: Option<u64>,
    pub renewal_secs: Option<f64>,
}

impl std::fmt::Display for LimitRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".to_string());
        write!(
            f,
            "{} @{} calls={} renewal={}",
            self.policy,
            self.scope,
            or_unknown(self.calls.map(|c| c.to_string())),
            or_unknown(self.renewal_secs.map(|s| format!("{s}s")))
        )
    }
}

impl Serialize for LimitRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for LimitRow {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LimitRow".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        string_schema("a rate limit or quota in force: `policy @scope calls=N renewal=Ns`")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct EffectiveRow {
    pub api: String,
    pub operation: String,
    pub sections: Vec<SectionRow>,
    pub forward_timeout_secs: Option<f64>,
    pub forward_timeout_scope: Option<String>,
    /// `set-backend-service` targets, `target @scope` (none: the API's serviceUrl).
    pub backend_targets: Vec<String>,
    pub limits: Vec<LimitRow>,
    pub scopes: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct NsgRow {
    pub name: String,
    pub subnets: Vec<String>,
    pub origin: String,
    /// Inbound then outbound, by priority.
    #[serde(serialize_with = "ser_rules")]
    #[schemars(with = "Vec<RuleRow<'static>>")]
    pub rules: Vec<SecurityRule>,
}

/// One NSG rule as `nsg_rules` writes it.
#[derive(Serialize, JsonSchema)]
struct RuleRow<'a> {
    name: &'a str,
    priority: u32,
    direction: crate::model::Direction,
    access: crate::model::Access,
    protocol: &'a str,
    source: &'a [String],
    source_ports: &'a [String],
    destination: &'a [String],
    destination_ports: &'a [String],
    default: bool,
}

fn ser_rules<S: Serializer>(rules: &[SecurityRule], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rules.iter().map(|r| RuleRow {
        name: &r.name,
        priority: r.priority,
        direction: r.direction,
        access: r.access,
        protocol: &r.protocol,
        source: &r.source_prefixes,
        source_ports: &r.source_ports,
        destination: &r.destination_prefixes,
        destination_ports: &r.destination_ports,
        default: r.default,
    }))
}

/// One NSG's verdict on the flow asked about.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct FlowCheck {
    pub nsg: String,
    /// `outbound tcp VirtualNetwork -> Internet:80`.
    pub flow: String,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Capacity {
    pub service: Option<ServiceSize>,
    pub autoscale: Vec<AutoscaleRow>,
    pub saturation: Vec<SaturationRow>,
    pub findings: Vec<FindingView>,
    /// Autoscale settings loaded (a setting may have no profile).
    #[serde(skip)]
    pub autoscale_settings: usize,
    /// The highest `Capacity` metric point, when any was loaded.
    #[serde(skip)]
    pub capacity_peak: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ServiceSize {
    pub name: String,
    pub sku: Option<String>,
    pub capacity: Option<u32>,
    pub zones: Vec<String>,
    pub vnet_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AutoscaleRow {
    pub setting: String,
    pub profile: String,
    pub minimum: Option<u32>,
    pub maximum: Option<u32>,
    pub default: Option<u32>,
    pub enabled: Option<bool>,
    /// `metric aggregation operator threshold → direction change`.
    pub rules: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SaturationRow {
    pub metric: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub minutes: i64,
    #[serde(serialize_with = "ser_round4")]
    pub mean: f64,
    #[serde(serialize_with = "ser_round4")]
    pub peak: f64,
}

/// A finding as a tool shows it: in brief (the first two evidence texts)
/// or in full (up to eight pieces of evidence with values, three log rows
/// each, sources and excerpt).
#[derive(Clone, Debug, PartialEq)]
pub struct FindingView {
    pub finding: Finding,
    pub full: bool,
}

impl FindingView {
    pub fn brief(f: &Finding) -> FindingView {
        FindingView {
            finding: f.clone(),
            full: false,
        }
    }

    pub fn full(f: &Finding) -> FindingView {
        FindingView {
            finding: f.clone(),
            full: true,
        }
    }
}

/// What a [`FindingView`] writes (and its JSON Schema).
#[derive(Serialize, JsonSchema)]
struct FindingJson<'a> {
    id: &'a str,
    kind: FindingKind,
    severity: Severity,
    subject: &'a crate::model::Subject,
    window: Option<Window>,
    /// One line, numbers included.
    summary: &'a str,
    /// 0..1: how sure the detector is, 4 decimals.
    #[serde(serialize_with = "ser_round4")]
    confidence: f64,
    /// Rule id for configuration findings (`APIM001`…).
    rule: Option<&'a str>,
    /// `file:line:column` in a source file, for configuration findings.
    location: Option<String>,
    /// In brief the first two, text only; in full up to eight.
    evidence: Vec<EvidenceJson<'a>>,
}

/// One piece of a finding's evidence: its text, and in full its numbers,
/// up to three log rows, its sources and excerpt.
#[derive(Serialize, JsonSchema)]
struct EvidenceJson<'a> {
    text: &'a str,
    /// In full only.
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<&'a BTreeMap<String, f64>>,
    /// In full only: up to three.
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<&'a [RequestRecord]>,
    /// In full only: files and lines, config excerpts, metric points.
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<Vec<String>>,
    /// In full only, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    excerpt: Option<&'a str>,
}

impl<'a> EvidenceJson<'a> {
    fn of(e: &'a crate::model::Evidence, full: bool) -> EvidenceJson<'a> {
        EvidenceJson {
            text: &e.text,
            values: full.then_some(&e.values),
            records: full.then(|| &e.records[..e.records.len().min(3)]),
            sources: full.then(|| e.sources.iter().map(|s| s.to_string()).collect()),
            excerpt: e.excerpt.as_deref().filter(|_| full),
        }
    }
}

impl Serialize for FindingView {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = &self.finding;
        FindingJson {
            id: &f.id,
            kind: f.kind,
            severity: f.severity,
            subject: &f.subject,
            window: f.window,
            summary: &f.summary,
            confidence: f.confidence,
            rule: f.rule.as_deref(),
            location: f.location.as_ref().map(|l| l.to_string()),
            evidence: f
                .evidence
                .iter()
                .take(if self.full { 8 } else { 2 })
                .map(|e| EvidenceJson::of(e, self.full))
                .collect(),
        }
        .serialize(s)
    }
}

impl JsonSchema for FindingView {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Finding".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        FindingJson::json_schema(g)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Explained {
    pub finding: FindingView,
    /// The root-cause stories it is part of.
    pub stories: Vec<Story>,
    pub proposals: Vec<Proposal>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Summary {
    /// Anomaly findings (configuration findings are not counted).
    pub anomalies: usize,
    /// Anomalies per severity word.
    pub by_severity: BTreeMap<&'static str, usize>,
    /// Every finding.
    pub findings: usize,
    pub no_traffic_data: bool,
    pub time_range: Option<Window>,
    pub stories: Vec<StoryBrief>,
    /// The first three proposals.
    pub proposals: Vec<Proposal>,
    pub loaded: BTreeMap<crate::model::InputKind, u64>,
    pub rejected_records: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct StoryBrief {
    pub title: String,
    pub severity: Severity,
    pub confidence: f64,
    pub narrative: String,
    pub findings: Vec<String>,
    pub suspects: Vec<Suspect>,
}

impl StoryBrief {
    pub fn of(s: &Story) -> StoryBrief {
        StoryBrief {
            title: s.title.clone(),
            severity: s.severity,
            confidence: s.confidence,
            narrative: s.narrative.clone(),
            findings: s.findings.clone(),
            suspects: s.suspects.clone(),
        }
    }
}
