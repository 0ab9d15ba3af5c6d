//! What analysis concludes: `Finding` (one problem, with evidence), and
//! `Diagnosis` (ranked findings, root-cause stories, the backend map and
//! remediation proposals). These serialise as the stable JSON schema of
//! `diagnose --format json` and `lint --format json`.

use super::{Origin, PolicyScope, RequestRecord, Timestamp, Window};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The four-character tag lists align on: `CRIT`, `HIGH`, `MED `,
    /// `LOW `, `INFO`.
    pub fn tag(self) -> &'static str {
        match self {
            Severity::Critical => "CRIT",
            Severity::High => "HIGH",
            Severity::Medium => "MED ",
            Severity::Low => "LOW ",
            Severity::Info => "INFO",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The vocabulary of finding kinds.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    ErrorSpike,
    BackendTimeout,
    BackendFailure,
    BackendUnhealthy,
    LatencyRegression,
    ConfigChange,
    MalformedPolicy,
    PolicyInheritance,
    PolicyRisk,
    NetworkGap,
    Capacity,
    ScalingConfig,
    Quota,
    RouteMismatch,
    /// A metric series leaves its expected band (the generic detector).
    MetricAnomaly,
}

impl FindingKind {
    pub const ALL: [FindingKind; 15] = [
        FindingKind::ErrorSpike,
        FindingKind::BackendTimeout,
        FindingKind::BackendFailure,
        FindingKind::BackendUnhealthy,
        FindingKind::LatencyRegression,
        FindingKind::ConfigChange,
        FindingKind::MalformedPolicy,
        FindingKind::PolicyInheritance,
        FindingKind::PolicyRisk,
        FindingKind::NetworkGap,
        FindingKind::Capacity,
        FindingKind::ScalingConfig,
        FindingKind::Quota,
        FindingKind::RouteMismatch,
        FindingKind::MetricAnomaly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::ErrorSpike => "error_spike",
            FindingKind::BackendTimeout => "backend_timeout",
            FindingKind::BackendFailure => "backend_failure",
            FindingKind::BackendUnhealthy => "backend_unhealthy",
            FindingKind::LatencyRegression => "latency_regression",
            FindingKind::ConfigChange => "config_change",
            FindingKind::MalformedPolicy => "malformed_policy",
            FindingKind::PolicyInheritance => "policy_inheritance",
            FindingKind::PolicyRisk => "policy_risk",
            FindingKind::NetworkGap => "network_gap",
            FindingKind::Capacity => "capacity",
            FindingKind::ScalingConfig => "scaling_config",
            FindingKind::Quota => "quota",
            FindingKind::RouteMismatch => "route_mismatch",
            FindingKind::MetricAnomaly => "metric_anomaly",
        }
    }

    pub fn parse(s: &str) -> Option<FindingKind> {
        FindingKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
    }

    /// Kinds that describe observed misbehaviour (as opposed to a risk in
    /// configuration): a healthy instance must produce none of these.
    pub fn is_anomaly(self) -> bool {
        matches!(
            self,
            FindingKind::ErrorSpike
                | FindingKind::BackendTimeout
                | FindingKind::BackendFailure
                | FindingKind::BackendUnhealthy
                | FindingKind::LatencyRegression
                | FindingKind::Capacity
                | FindingKind::Quota
                | FindingKind::MetricAnomaly
        )
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding is about. Only the keys that apply are set.
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct Subject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_scope: Option<PolicyScope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nsg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A metric name, for metric anomalies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Another resource inside the service, as `<kind>/<name>`
    /// (`subscriptions/abc`, `users/alice`, `namedValues/key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl Subject {
    /// The one "does this concern it" rule, for every surface (the query
    /// layer's filters, the dashboard's rows): exact ids, case-insensitive,
    /// never a substring (`order` is not `orders-api`). A subject concerns
    /// the API (and operation) given when it names them, directly or as its
    /// policy scope; and concerns a backend of `backends` when it names that
    /// backend — and no operation, when an API or operation is asked about
    /// (a backend finding of another operation is not this one's). With
    /// nothing given, everything concerns it.
    pub fn concerns(
        &self,
        api: Option<&str>,
        operation: Option<&str>,
        backends: &[String],
    ) -> bool {
        if api.is_none() && operation.is_none() && backends.is_empty() {
            return true;
        }
        let eq = |a: Option<&str>, b: &str| a.is_some_and(|x| x.eq_ignore_ascii_case(b));
        let (scope_api, scope_op) = match &self.policy_scope {
            Some(PolicyScope::Operation(a, o)) => (Some(a.as_str()), Some(o.as_str())),
            Some(PolicyScope::Api(a)) => (Some(a.as_str()), None),
            _ => (None, None),
        };
        let op_hit = |o: &str| eq(self.operation.as_deref(), o) || eq(scope_op, o);
        let direct = (api.is_some() || operation.is_some())
            && api.is_none_or(|a| eq(self.api.as_deref(), a) || eq(scope_api, a))
            && operation.is_none_or(op_hit);
        let via_backend = self
            .backend
            .as_deref()
            .is_some_and(|b| backends.iter().any(|x| x.eq_ignore_ascii_case(b)))
            && (self.operation.is_none() || (api.is_none() && operation.is_none()));
        direct || via_backend
    }

    pub fn operation(api: &str, op: &str) -> Self {
        Subject {
            api: Some(api.into()),
            operation: Some(op.into()),
            ..Subject::default()
        }
    }
    pub fn backend(b: &str) -> Self {
        Subject {
            backend: Some(b.into()),
            ..Subject::default()
        }
    }
    pub fn policy(scope: PolicyScope) -> Self {
        Subject {
            policy_scope: Some(scope),
            ..Subject::default()
        }
    }

    /// `key=value` pairs in a fixed order: the fingerprint input and a
    /// compact display form.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut push = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((k, v.clone()));
            }
        };
        push("service", &self.service);
        push("product", &self.product);
        push("api", &self.api);
        push("operation", &self.operation);
        push("backend", &self.backend);
        push(
            "policy_scope",
            &self.policy_scope.as_ref().map(|s| s.to_string()),
        );
        push("nsg", &self.nsg);
        push("rule", &self.rule);
        push("metric", &self.metric);
        push("resource", &self.resource);
        out
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs = self.pairs();
        if pairs.is_empty() {
            return f.write_str("instance");
        }
        let parts: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(" "))
    }
}

/// A place in a source file (policy XML, NSG JSON…), 1-based.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        Ok(())
    }
}

/// One piece of evidence: a sentence, the numbers behind it, and the raw
/// records or source lines it came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub text: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RequestRecord>,
    /// Other sources: files and lines, config excerpts, metric points.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Origin>,
    /// A short excerpt (policy lines, a diff, a rule) to show as is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

impl Evidence {
    pub fn text(text: impl Into<String>) -> Self {
        Evidence {
            text: text.into(),
            ..Evidence::default()
        }
    }
    pub fn value(mut self, key: &str, v: f64) -> Self {
        self.values.insert(key.to_string(), v);
        self
    }
}

/// Whether a problem is still happening when the analysed data ends.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Still happening in the last minutes of the analysed data.
    Ongoing,
    /// Over: the subject has been healthy since `healthy_since`.
    Ended,
}

impl Activity {
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Ongoing => "ongoing",
            Activity::Ended => "ended",
        }
    }
}

/// When a problem began, whether it is still going on and, once over, since
/// when its subject has been healthy. Judged at `as_of`, the end of the
/// analysed data (never the wall clock: an export is judged as of its end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Timeline {
    pub state: Activity,
    /// Onset: the first bad minute.
    pub since: Timestamp,
    /// End of the last bad minute, when `state` is `ended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// From when the subject's traffic is healthy again (`ended` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<Timestamp>,
    /// The instant the judgement is made: the end of the analysed data.
    pub as_of: Timestamp,
}

impl Timeline {
    pub fn ongoing(since: Timestamp, as_of: Timestamp) -> Timeline {
        Timeline {
            state: Activity::Ongoing,
            since,
            ended_at: None,
            healthy_since: None,
            as_of,
        }
    }

    pub fn ended(since: Timestamp, ended_at: Timestamp, as_of: Timestamp) -> Timeline {
        Timeline {
            state: Activity::Ended,
            since,
            ended_at: Some(ended_at),
            healthy_since: Some(ended_at),
            as_of,
        }
    }

    pub fn is_ongoing(&self) -> bool {
        self.state == Activity::Ongoing
    }

    /// Minutes the problem has lasted (until `as_of` while ongoing).
    pub fn duration_minutes(&self) -> i64 {
        let end = self.ended_at.unwrap_or(self.as_of);
        ((end.0 - self.since.0) / 60_000).max(0)
    }

    /// Minutes healthy at `as_of`, once ended.
    pub fn healthy_minutes(&self) -> Option<i64> {
        self.healthy_since
            .map(|h| ((self.as_of.0 - h.0) / 60_000).max(0))
    }

    /// The timeline of several problems taken as one: ongoing when any is,
    /// from the earliest onset; ended at the latest end otherwise.
    pub fn combine(all: impl IntoIterator<Item = Timeline>) -> Option<Timeline> {
        let mut out: Option<Timeline> = None;
        for t in all {
            out = Some(match out {
                None => t,
                Some(o) => {
                    let since = o.since.min(t.since);
                    let as_of = o.as_of.max(t.as_of);
                    if o.is_ongoing() || t.is_ongoing() {
                        Timeline::ongoing(since, as_of)
                    } else {
                        Timeline {
                            state: Activity::Ended,
                            since,
                            ended_at: o.ended_at.max(t.ended_at),
                            healthy_since: o.healthy_since.max(t.healthy_since),
                            as_of,
                        }
                    }
                }
            });
        }
        out
    }

    /// `ongoing since 11:01 (118 min)` or `ended 12:05, healthy 54 min`.
    pub fn describe(&self) -> String {
        match self.state {
            Activity::Ongoing => format!(
                "ongoing since {} ({} min)",
                self.since.hhmm(),
                self.duration_minutes()
            ),
            Activity::Ended => {
                let end = self.ended_at.unwrap_or(self.as_of);
                match self.healthy_minutes() {
                    Some(h) => format!(
                        "ended {} after {} min; healthy for {h} min",
                        end.hhmm(),
                        self.duration_minutes(),
                    ),
                    None => format!("ended {}", end.hhmm()),
                }
            }
        }
    }
}

/// One problem found, with its evidence. `id` is a fingerprint of `kind` and
/// `subject` only, so it is stable however the summary is worded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub kind: FindingKind,
    pub severity: Severity,
    pub subject: Subject,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// One line, numbers included.
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// 0..1: how sure the detector is.
    pub confidence: f64,
    /// Rule id for configuration findings (`APIM001`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Where in a source file, for configuration findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Whether the problem is still going on at the end of the analysed data,
    /// since when, and since when its subject is healthy again. `None` for
    /// configuration findings, which hold for as long as the configuration does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// The instance the finding belongs to, when one run judges several
    /// (a daemon watching a fleet, `diagnose --subscription`): the name
    /// shown in alert labels and TUI rows. `None` for a single instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Finding {
    pub fn new(
        kind: FindingKind,
        severity: Severity,
        subject: Subject,
        summary: impl Into<String>,
    ) -> Self {
        Finding {
            id: fingerprint(kind, &subject),
            kind,
            severity,
            subject,
            window: None,
            summary: summary.into(),
            evidence: Vec::new(),
            confidence: 1.0,
            rule: None,
            location: None,
            timeline: None,
            instance: None,
        }
    }

    /// Marks the finding as one of instance `name`: the same problem on two
    /// instances is two findings (two alerts), so the fingerprint takes
    /// the instance in.
    pub fn in_instance(&mut self, name: &str) {
        self.id = fingerprint_with(self.kind, &self.subject, &format!("{}@{name}", self.id));
        self.instance = Some(name.to_string());
    }

    /// Like `new`, with a discriminator added to the fingerprint (a rule id
    /// for lint findings, so two rules on one scope stay two findings).
    pub fn with_rule(mut self, rule: &str) -> Self {
        self.id = fingerprint_with(self.kind, &self.subject, rule);
        self.rule = Some(rule.to_string());
        self
    }

    pub fn window(mut self, w: Window) -> Self {
        self.window = Some(w);
        self
    }
    pub fn evidence(mut self, e: Evidence) -> Self {
        self.evidence.push(e);
        self
    }
    pub fn confidence(mut self, c: f64) -> Self {
        self.confidence = c.clamp(0.0, 1.0);
        self
    }
    pub fn location(mut self, l: Location) -> Self {
        self.location = Some(l);
        self
    }
}

/// Stable 64-bit FNV-1a fingerprint of kind + subject, as 16 hex digits.
pub fn fingerprint(kind: FindingKind, subject: &Subject) -> String {
    fingerprint_with(kind, subject, "")
}

pub fn fingerprint_with(kind: FindingKind, subject: &Subject, extra: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(kind.as_str());
    for (k, v) in subject.pairs() {
        eat(k);
        eat(&v);
    }
    if !extra.is_empty() {
        eat(extra);
    }
    format!("{h:016x}")
}

/// How healthy a backend looks from traffic and its app's metrics.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    #[default]
    Unknown,
    Healthy,
    Degraded,
    Unhealthy,
}

impl Health {
    /// `unknown`, `healthy`, `degraded`, `unhealthy` (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Unhealthy => "unhealthy",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a route to a backend was learnt.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case", tag = "type", content = "scope")]
pub enum RouteSource {
    /// The API's `serviceUrl`.
    ServiceUrl,
    /// A `set-backend-service` in the effective policy at this scope.
    Policy(PolicyScope),
    /// Seen in gateway logs (BackendId / BackendUrl).
    Observed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Route {
    /// Backend entity id, or the URL host when no entity matches.
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub source: RouteSource,
    /// True when the route sits inside `choose/when` (conditional).
    #[serde(default)]
    pub conditional: bool,
}

/// One row of the backend map: an operation, where it routes, and how
/// healthy that backend is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RouteEntry {
    pub api: String,
    pub operation: String,
    pub configured: Vec<Route>,
    pub observed: Vec<Route>,
    pub health: Health,
    /// Requests, error rate and p95 of this operation over the loaded window.
    pub requests: u64,
    pub error_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<u32>,
    /// Configured and observed routes disagree.
    pub mismatch: bool,
}

impl RouteEntry {
    /// Every route of the operation: configured first, then observed.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.configured.iter().chain(&self.observed)
    }

    /// The operation routes to `backend` (id or host, any case), configured
    /// or observed.
    pub fn calls(&self, backend: &str) -> bool {
        self.routes()
            .any(|r| r.backend.eq_ignore_ascii_case(backend))
    }
}

/// A backend's own health: judged from its own traffic (failures or
/// timeouts on 5% of its requests overall or in its last 15 minutes make it
/// unhealthy, 1% degraded), its backend incident findings (at least
/// degraded) and its app's health (unhealthy when the app is). Not from
/// gateway or capacity findings, and not from the routes that call it: a
/// backend the data says nothing about has no entry and is `unknown`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackendHealth {
    /// Entity id or the name traffic used (BackendId, else the URL host).
    pub backend: String,
    pub health: Health,
}

/// A change named as a likely cause of a symptom.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Suspect {
    pub time: Timestamp,
    /// Config write, deployment, network or scale change.
    #[serde(default)]
    pub kind: super::ChangeKind,
    pub operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// Minutes between the change and the symptom's onset.
    pub lead_minutes: i64,
    /// Unified diff of the policy, when both versions are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// One root-cause story: symptoms tied to a cause, in one sentence, with
/// the findings and changes behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Story {
    /// Stable id: the fingerprint of the story's lead finding (its first
    /// non-change finding), so it survives rewording and re-runs.
    #[serde(default)]
    pub id: String,
    pub title: String,
    pub narrative: String,
    pub severity: Severity,
    pub confidence: f64,
    /// Ids of the findings this story explains, cause first.
    pub findings: Vec<String>,
    pub suspects: Vec<Suspect>,
    /// Ongoing or ended, from the timelines of its symptoms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
}

/// The risk of carrying out a remediation.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    #[default]
    Low,
    Medium,
    High,
}

/// A concrete remediation, typed so an executor can carry it out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Action {
    ScaleOut {
        units: u32,
        from: Option<u32>,
    },
    SetTimeout {
        scope: PolicyScope,
        seconds: u32,
        from: Option<u32>,
    },
    RollbackPolicy {
        scope: PolicyScope,
        to: Timestamp,
    },
    AddNsgRule {
        nsg: String,
        rule: String,
        priority: u32,
        direction: super::Direction,
        port: String,
        destination: String,
    },
    FixNsgRule {
        nsg: String,
        rule: String,
        change: String,
    },
    FixRoute {
        api: String,
        operation: String,
        backend: String,
    },
    RaiseLimit {
        scope: PolicyScope,
        policy: String,
    },
    /// Steps only a person can take.
    Manual {
        steps: Vec<String>,
    },
}

impl Default for Action {
    fn default() -> Self {
        Action::Manual { steps: Vec::new() }
    }
}

/// One Azure Resource Manager request: what an executor sends to carry out
/// an action (`PUT`/`PATCH` on `https://management.azure.com{path}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArmRequest {
    pub method: String,
    /// Resource path with `api-version`, e.g.
    /// `/subscriptions/…/service/apim/apis/orders/policies/policy?api-version=2022-08-01`.
    pub path: String,
    /// Always a JSON object (the resource or its patch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub body: Option<serde_json::Value>,
}

/// The format of the document a proposal applies.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DocumentFormat {
    /// An APIM policy document (`<policies>…</policies>`), complete.
    #[default]
    PolicyXml,
    /// An NSG security rule as ARM JSON (`{"name":…,"properties":{…}}`).
    RuleJson,
    /// Any other ARM resource body.
    Json,
}

/// The document a proposal would apply, complete (not a fragment to merge).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Document {
    pub format: DocumentFormat,
    pub text: String,
}

/// A remediation proposed for a finding, from a playbook. Proposals are
/// ordered by the story they serve (the story's own fix first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Proposal {
    pub id: String,
    pub finding: String,
    /// The id of the root-cause story this proposal serves, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<String>,
    pub title: String,
    pub action: Action,
    pub risk: Risk,
    pub preconditions: Vec<String>,
    /// What a person should check first (the playbook's diagnosis steps).
    pub steps: Vec<String>,
    /// The exact `az` command that carries the action out. Names the data
    /// does not give are shell variables (`$APIM_RG`) listed in `needs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The ARM request an executor sends, when every name in it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<ArmRequest>,
    /// The policy XML or rule JSON the action applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Document>,
    /// Shell variables `command` uses that must be set first, with what they hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
}

/// What the diagnosis says about the instance as of the end of the data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictState {
    /// Traffic was seen and nothing is wrong.
    Healthy,
    /// A problem is going on at the end of the analysed data (or a
    /// configuration finding holds).
    Unhealthy,
    /// Incidents happened but all have ended; healthy since `recovered_at`.
    Recovered,
    /// Nothing to judge from: no traffic data in the analysed window.
    #[default]
    Unknown,
}

impl VerdictState {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictState::Healthy => "healthy",
            VerdictState::Unhealthy => "unhealthy",
            VerdictState::Recovered => "recovered",
            VerdictState::Unknown => "unknown",
        }
    }
}

/// The one-line judgement of a diagnosis, and what it rests on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub state: VerdictState,
    /// Worst severity among the findings that hold now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The analysed window: the data inside `--since/--until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// When the judgement is made: the end of the analysed data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Timestamp>,
    /// Onset of the earliest ongoing problem (`unhealthy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// When the last incident ended (`recovered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<Timestamp>,
    /// What is missing to judge (`unknown`), e.g. `no traffic data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// Ids of the findings that hold now: ongoing symptoms, configuration
    /// findings, and changes behind an ongoing story.
    #[serde(default)]
    pub current: Vec<String>,
}

impl Verdict {
    /// The process exit code: 2 when there is nothing to judge (`unknown`),
    /// 1 when a finding that holds now is at or above `fail_on`, 0 otherwise
    /// (healthy, or recovered with nothing current at that severity).
    pub fn exit_code(&self, findings: &[Finding], fail_on: Severity) -> u8 {
        if self.state == VerdictState::Unknown {
            return 2;
        }
        let failing = findings
            .iter()
            .any(|f| f.severity >= fail_on && self.current.iter().any(|c| c == &f.id));
        u8::from(failing)
    }
}

/// The result of a `diagnose` run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Healthy, unhealthy now, recovered, or unknown (nothing to judge).
    #[serde(default)]
    pub verdict: Verdict,
    /// Findings, most urgent first.
    pub findings: Vec<Finding>,
    pub stories: Vec<Story>,
    pub backend_map: Vec<RouteEntry>,
    /// Every backend the data judges, by its own evidence (sorted by name).
    #[serde(default)]
    pub backends: Vec<BackendHealth>,
    pub proposals: Vec<Proposal>,
    pub loaded: super::LoadReport,
}

impl Diagnosis {
    /// A backend's own health by entity id, traffic name or URL host (any
    /// case; the worst when several names match); `unknown` when the data
    /// says nothing about it. The one rule every surface rates a backend by.
    pub fn backend_health(&self, names: &[&str]) -> Health {
        self.backends
            .iter()
            .filter(|b| {
                names
                    .iter()
                    .any(|n| !n.is_empty() && b.backend.eq_ignore_ascii_case(n))
            })
            .map(|b| b.health)
            .max()
            .unwrap_or(Health::Unknown)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn concerns_is_exact_and_follows_scope_and_backend() {
        let op = Subject::operation("orders-api", "get-order");
        assert!(op.concerns(Some("Orders-API"), None, &[]));
        assert!(op.concerns(Some("orders-api"), Some("get-order"), &[]));
        assert!(!op.concerns(Some("order"), None, &[]), "never a substring");
        assert!(!op.concerns(Some("orders-api"), Some("list-orders"), &[]));
        assert!(op.concerns(None, None, &[]), "no filter");
        let scoped = Subject {
            policy_scope: Some(PolicyScope::Operation(
                "orders-api".into(),
                "get-order".into(),
            )),
            ..Subject::default()
        };
        assert!(scoped.concerns(Some("orders-api"), Some("get-order"), &[]));
        let backend = Subject {
            backend: Some("inventory-app".into()),
            ..Subject::default()
        };
        let routed = vec!["inventory-app".to_string()];
        assert!(backend.concerns(Some("orders-api"), Some("get-order"), &routed));
        assert!(!backend.concerns(Some("orders-api"), Some("get-order"), &[]));
        assert!(backend.concerns(None, None, &routed));
        let other_op = Subject {
            backend: Some("inventory-app".into()),
            ..Subject::operation("orders-api", "list-orders")
        };
        assert!(!other_op.concerns(Some("orders-api"), Some("get-order"), &routed));
        assert!(other_op.concerns(None, None, &routed));
    }

    use super::*;

    #[test]
    fn fingerprint_ignores_text_and_tracks_subject() {
        let a = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::operation("a", "b"),
            "one",
        );
        let b = Finding::new(
            FindingKind::ErrorSpike,
            Severity::Low,
            Subject::operation("a", "b"),
            "two",
        );
        let c = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::operation("a", "c"),
            "one",
        );
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_eq!(a.id.len(), 16);
        assert_ne!(a.clone().with_rule("APIM001").id, a.with_rule("APIM002").id);
    }

    #[test]
    fn scope_round_trips() {
        for s in [
            "global",
            "api:orders",
            "operation:orders/get-order",
            "product:starter",
            "fragment:f",
            "workspace:w",
        ] {
            assert_eq!(PolicyScope::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(PolicyScope::parse("operation:nope"), None);
    }

    #[test]
    fn severity_orders() {
        assert!(Severity::Critical > Severity::High);
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
    }
}
