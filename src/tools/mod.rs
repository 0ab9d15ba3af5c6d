//! The typed tool layer over one analysed instance: every question the
//! answerer, the LLM or an MCP server may ask of the data goes through a
//! `Tool` and comes back as a `ToolOutput`: the typed answer
//! (`result::ToolResult`, what in-process readers use), its JSON (serde of
//! that answer) and its one text form (`render`). Caps and secret
//! redaction are applied here, once, for every caller. The surfaces that
//! draw rather than ask (the TUI's views, the offline answerer's facts)
//! read the typed queries of [`query`], which the tools answer from too.
//! Read-only by construction: no tool changes anything; remediation exists
//! here only as proposals. Pure.

pub mod query;
mod render;
pub mod resolve;
pub mod result;
mod run;
mod schema;

pub use query::{
    AppHealth, AppInfo, BackendApps, EffectivePolicy, MinuteRow, Placement, Rollup, Stats,
    backend_apps, diagnose, effective_policy, traffic,
};
pub use result::{ToolError, ToolResult};
pub use run::{Period, period_window, recent_changes};
pub use schema::output_schema;

use crate::model::{Diagnosis, Snapshot};
use crate::playbook;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most items a list in a tool's data holds; the rest is counted in `omitted`.
pub const MAX_ITEMS: usize = 40;
/// Most characters of a tool's text form.
pub const MAX_TEXT: usize = 6000;

/// The instance every tool reads: the snapshot and its diagnosis. The
/// snapshot is shared (the TUI's chat thread reads the dashboard's own).
#[derive(Clone, Debug, Default)]
pub struct Instance {
    pub snapshot: Arc<Snapshot>,
    pub diagnosis: Diagnosis,
}

impl Instance {
    /// Analyses a snapshot over all its data with the given playbooks.
    pub fn new(snapshot: impl Into<Arc<Snapshot>>, playbooks: &playbook::Playbooks) -> Instance {
        let snapshot = snapshot.into();
        let diagnosis = query::diagnose(&snapshot, playbooks, None);
        Instance {
            snapshot,
            diagnosis,
        }
    }

    /// The instance's name, or `the instance`.
    pub fn name(&self) -> String {
        self.snapshot
            .service
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_else(|| "the instance".to_string())
    }
}

/// One call of one tool, arguments typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "tool", rename_all = "snake_case")]
pub enum Tool {
    Summary,
    ListApis,
    ListOperations {
        api: Option<String>,
    },
    ListProducts,
    ListBackends,
    FailureRate {
        api: Option<String>,
        operation: Option<String>,
        backend: Option<String>,
        period: Option<String>,
    },
    FailureLog {
        api: Option<String>,
        operation: Option<String>,
        backend: Option<String>,
        limit: Option<usize>,
    },
    RecentChanges {
        limit: Option<usize>,
    },
    BackendMap {
        api: Option<String>,
    },
    BackendHealth {
        backend: Option<String>,
    },
    Policies {
        api: Option<String>,
        operation: Option<String>,
    },
    NsgRules {
        nsg: Option<String>,
    },
    NetworkCheck {
        source: Option<String>,
        destination: String,
        port: u16,
        outbound: bool,
    },
    Capacity,
    Findings {
        kind: Option<String>,
        api: Option<String>,
        backend: Option<String>,
    },
    Explain {
        id: String,
    },
    Proposals {
        finding: Option<String>,
    },
}

/// A finding id as written in text (`[3f2a…]`), without the brackets.
pub(crate) fn finding_id(id: &str) -> &str {
    id.trim().trim_matches(|c| c == '[' || c == ']')
}

/// What a tool returns: data for machines, text for people and models.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolOutput {
    pub tool: String,
    /// The typed answer, uncapped and unredacted: for in-process readers
    /// only, never sent (it is `data` that leaves).
    #[serde(skip)]
    pub result: ToolResult,
    /// `result` as JSON, lists capped at `MAX_ITEMS`, secrets redacted.
    pub data: Value,
    /// `result` as text (`ToolResult::text`), capped at `MAX_TEXT`,
    /// secrets redacted.
    pub text: String,
    /// True when a list or the text was cut to its cap.
    pub truncated: bool,
}

impl ToolOutput {
    /// The output of one answer: its JSON and its text, each capped, then
    /// passed through the one redaction (`model::redact`, secrets only:
    /// hosts stay, a person needs them). The only place outputs are made.
    pub fn of(tool: &str, result: ToolResult) -> ToolOutput {
        let mut data = serde_json::to_value(&result).unwrap_or(Value::Null);
        let mut truncated = cap_data(&mut data);
        let mut text = result.text();
        if text.chars().count() > MAX_TEXT {
            text = head_tail(&text, MAX_TEXT);
            truncated = true;
        }
        let mut r = crate::model::redact::Redactor::new(false);
        let text = r.redact(&text);
        r.redact_value(&mut data);
        ToolOutput {
            tool: tool.to_string(),
            result,
            data,
            text,
            truncated,
        }
    }
}

/// A tool's description for an LLM: name, purpose and a JSON schema of its
/// parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: Value,
}

fn s_opt(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn n_opt(v: &Value, k: &str) -> Option<usize> {
    match v.get(k) {
        Some(Value::Number(n)) => n.as_u64().map(|x| x as usize),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Tool {
    /// Every tool name, in the order `specs` lists them.
    pub const NAMES: [&'static str; 17] = [
        "summary",
        "list_apis",
        "list_operations",
        "list_products",
        "list_backends",
        "failure_rate",
        "failure_log",
        "recent_changes",
        "backend_map",
        "backend_health",
        "policies",
        "nsg_rules",
        "network_check",
        "capacity",
        "findings",
        "explain",
        "proposals",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Tool::Summary => "summary",
            Tool::ListApis => "list_apis",
            Tool::ListOperations { .. } => "list_operations",
            Tool::ListProducts => "list_products",
            Tool::ListBackends => "list_backends",
            Tool::FailureRate { .. } => "failure_rate",
            Tool::FailureLog { .. } => "failure_log",
            Tool::RecentChanges { .. } => "recent_changes",
            Tool::BackendMap { .. } => "backend_map",
            Tool::BackendHealth { .. } => "backend_health",
            Tool::Policies { .. } => "policies",
            Tool::NsgRules { .. } => "nsg_rules",
            Tool::NetworkCheck { .. } => "network_check",
            Tool::Capacity => "capacity",
            Tool::Findings { .. } => "findings",
            Tool::Explain { .. } => "explain",
            Tool::Proposals { .. } => "proposals",
        }
    }

    /// A tool from a name and JSON arguments (an LLM's call). Unknown names
    /// and missing required arguments are errors a model can read.
    pub fn from_call(name: &str, args: &Value) -> Result<Tool, String> {
        let a = args;
        Ok(match name.trim() {
            "summary" => Tool::Summary,
            "list_apis" => Tool::ListApis,
            "list_operations" => Tool::ListOperations {
                api: s_opt(a, "api"),
            },
            "list_products" => Tool::ListProducts,
            "list_backends" => Tool::ListBackends,
            "failure_rate" => Tool::FailureRate {
                api: s_opt(a, "api"),
                operation: s_opt(a, "operation"),
                backend: s_opt(a, "backend"),
                period: s_opt(a, "period"),
            },
            "failure_log" => Tool::FailureLog {
                api: s_opt(a, "api"),
                operation: s_opt(a, "operation"),
                backend: s_opt(a, "backend"),
                limit: n_opt(a, "limit"),
            },
            "recent_changes" => Tool::RecentChanges {
                limit: n_opt(a, "limit"),
            },
            "backend_map" => Tool::BackendMap {
                api: s_opt(a, "api"),
            },
            "backend_health" => Tool::BackendHealth {
                backend: s_opt(a, "backend"),
            },
            "policies" => Tool::Policies {
                api: s_opt(a, "api"),
                operation: s_opt(a, "operation"),
            },
            "nsg_rules" => Tool::NsgRules {
                nsg: s_opt(a, "nsg"),
            },
            "network_check" => Tool::NetworkCheck {
                source: s_opt(a, "source"),
                destination: s_opt(a, "destination")
                    .ok_or("network_check needs `destination` (an IP, CIDR or service tag)")?,
                port: n_opt(a, "port")
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or("network_check needs `port` (1-65535)")?,
                outbound: !matches!(
                    s_opt(a, "direction").as_deref(),
                    Some("inbound") | Some("Inbound")
                ),
            },
            "capacity" => Tool::Capacity,
            "findings" => Tool::Findings {
                kind: s_opt(a, "kind"),
                api: s_opt(a, "api"),
                backend: s_opt(a, "backend"),
            },
            "explain" => Tool::Explain {
                id: s_opt(a, "id").ok_or("explain needs `id`, a finding id")?,
            },
            "proposals" => Tool::Proposals {
                finding: s_opt(a, "finding"),
            },
            other => {
                return Err(format!(
                    "unknown tool `{other}`; the tools are read-only: {}",
                    Tool::NAMES.join(", ")
                ));
            }
        })
    }

    /// The names a call gives (API, operation, backend, finding id).
    fn names(&self) -> [Option<&str>; 4] {
        fn s(o: &Option<String>) -> Option<&str> {
            o.as_deref().map(str::trim).filter(|x| !x.is_empty())
        }
        match self {
            Tool::ListOperations { api } | Tool::BackendMap { api } => [s(api), None, None, None],
            Tool::FailureRate {
                api,
                operation,
                backend,
                ..
            }
            | Tool::FailureLog {
                api,
                operation,
                backend,
                ..
            } => [s(api), s(operation), s(backend), None],
            Tool::BackendHealth { backend } => [None, None, s(backend), None],
            Tool::Policies { api, operation } => [s(api), s(operation), None, None],
            Tool::Findings { api, backend, .. } => [s(api), None, s(backend), None],
            Tool::Explain { id } => [None, None, None, Some(finding_id(id))],
            Tool::Proposals { finding } => [None, None, None, s(finding).map(finding_id)],
            _ => [None; 4],
        }
    }

    /// Every name in the call must mean one thing in this data, by the one
    /// resolver ([`resolve`]): otherwise the message names what did not
    /// resolve and the closest ids ("did you mean"). Every caller (the LLM
    /// tool loop, the MCP server, the offline answerer) gets the same answer.
    pub fn check(&self, inst: &Instance) -> Result<(), String> {
        let snap = &inst.snapshot;
        let [api, operation, backend, finding] = self.names();
        let mut api_id = None;
        if let Some(api) = api {
            let r = resolve::api(snap, api);
            if let Some(p) = r.problem("API", api) {
                return Err(p);
            }
            api_id = r.found().map(str::to_string);
        }
        if let Some(op) = operation
            && let Some(p) =
                resolve::operation(snap, api_id.as_deref(), op).problem("operation", op)
        {
            return Err(p);
        }
        if let Some(b) = backend
            && let Some(p) = resolve::backend(snap, b).problem("backend", b)
        {
            return Err(p);
        }
        if let Some(id) = finding
            && let Some(p) = resolve::finding(&inst.diagnosis, id).problem("finding", id)
        {
            return Err(format!("{p}; the `findings` tool lists the ids"));
        }
        Ok(())
    }

    /// Runs the tool over the instance; never fails (a bad argument gives an
    /// output that says so).
    pub fn run(&self, inst: &Instance) -> ToolOutput {
        let result = match self.check(inst) {
            Err(error) => ToolResult::Error(ToolError { error }),
            Ok(()) => run::run(self, inst),
        };
        ToolOutput::of(self.name(), result)
    }

    /// The tool descriptions an LLM is given.
    pub fn specs() -> Vec<ToolSpec> {
        let none = json!({"type": "object", "properties": {}});
        let s = |d: &str| json!({"type": "string", "description": d});
        let api = s("API id, display name or path, e.g. orders-api");
        let op = s("operation id, e.g. get-order");
        let backend = s("backend id or host");
        let obj = |props: Value, req: &[&str]| json!({"type": "object", "properties": props, "required": req});
        vec![
            ToolSpec {
                name: "summary",
                description: "the diagnosis in brief: findings by severity, root-cause stories with their suspects, the first proposals, what was loaded",
                parameters: none.clone(),
            },
            ToolSpec {
                name: "list_apis",
                description: "APIs with path, backend URL, requests and 5xx rate",
                parameters: none.clone(),
            },
            ToolSpec {
                name: "list_operations",
                description: "operations of one API (or all) with method, URL template, requests, 5xx rate",
                parameters: obj(json!({"api": api}), &[]),
            },
            ToolSpec {
                name: "list_products",
                description: "products and the APIs in them",
                parameters: none.clone(),
            },
            ToolSpec {
                name: "list_backends",
                description: "backends (single and pools) with URL, health, requests, 5xx and timeouts",
                parameters: none.clone(),
            },
            ToolSpec {
                name: "failure_rate",
                description: "requests, 5xx, 4xx, 429, timeouts and p95 latency of an API, operation or backend over a period (1h, 24h, 7d, all)",
                parameters: obj(
                    json!({"api": api, "operation": op, "backend": backend,
                           "period": s("1h, 24h, 7d or all; counted back from the end of the data")}),
                    &[],
                ),
            },
            ToolSpec {
                name: "failure_log",
                description: "recent failing gateway log rows (sampled per minute), newest first",
                parameters: obj(
                    json!({"api": api, "operation": op, "backend": backend,
                           "limit": {"type": "integer", "description": "rows, at most 20"}}),
                    &[],
                ),
            },
            ToolSpec {
                name: "recent_changes",
                description: "configuration, deployment, network and scale changes, newest first",
                parameters: obj(json!({"limit": {"type": "integer"}}), &[]),
            },
            ToolSpec {
                name: "backend_map",
                description: "per operation: configured and observed backend, health, error rate, p95",
                parameters: obj(json!({"api": api}), &[]),
            },
            ToolSpec {
                name: "backend_health",
                description: "one backend's (or every backend's) traffic and the findings about it",
                parameters: obj(json!({"backend": backend}), &[]),
            },
            ToolSpec {
                name: "policies",
                description: "policy documents at global, product, API and operation scope and the effective policy of an operation (forward timeout, backend, limits)",
                parameters: obj(json!({"api": api, "operation": op}), &[]),
            },
            ToolSpec {
                name: "nsg_rules",
                description: "network security groups and their rules",
                parameters: obj(json!({"nsg": s("NSG name")}), &[]),
            },
            ToolSpec {
                name: "network_check",
                description: "evaluate NSG rules for one flow from the gateway subnet",
                parameters: obj(
                    json!({"source": s("IP, CIDR or tag; default the gateway subnet"),
                           "destination": s("IP, CIDR or service tag"),
                           "port": {"type": "integer"},
                           "direction": s("outbound (default) or inbound")}),
                    &["destination", "port"],
                ),
            },
            ToolSpec {
                name: "capacity",
                description: "tier, units, autoscale settings and saturation episodes",
                parameters: none.clone(),
            },
            ToolSpec {
                name: "findings",
                description: "findings of the analysis, most urgent first, with evidence",
                parameters: obj(
                    json!({"kind": s("finding kind, e.g. error_spike, backend_timeout"),
                           "api": api, "backend": backend}),
                    &[],
                ),
            },
            ToolSpec {
                name: "explain",
                description: "one finding in full: evidence, log rows, story and proposals",
                parameters: obj(json!({"id": s("finding id (16 hex digits)")}), &["id"]),
            },
            ToolSpec {
                name: "proposals",
                description: "remediation proposals (never executed; a person approves)",
                parameters: obj(json!({"finding": s("finding id")}), &[]),
            },
        ]
    }
}

/// Caps every array in `v` at `MAX_ITEMS`, recording what was cut.
fn cap_data(v: &mut Value) -> bool {
    match v {
        Value::Array(items) => {
            let mut cut = false;
            if items.len() > MAX_ITEMS {
                let omitted = items.len() - MAX_ITEMS;
                items.truncate(MAX_ITEMS);
                items.push(json!({"omitted": omitted}));
                cut = true;
            }
            for i in items.iter_mut() {
                cut |= cap_data(i);
            }
            cut
        }
        Value::Object(map) => {
            let mut cut = false;
            for (_, x) in map.iter_mut() {
                cut |= cap_data(x);
            }
            cut
        }
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            *s = head_tail(s, MAX_TEXT);
            true
        }
        _ => false,
    }
}

/// The head and tail of a long text with a marker between them.
pub fn head_tail(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(40) / 2;
    let head: String = chars.iter().take(keep).collect();
    let tail: String = chars[chars.len().saturating_sub(keep)..].iter().collect();
    format!(
        "{head}\n[… {} characters cut …]\n{tail}",
        chars.len() - 2 * keep
    )
}

#[cfg(test)]
mod tests;
