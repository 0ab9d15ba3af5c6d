//! Plans, purely: a proposal plus what is known of the live resources
//! (their bodies and ETags) becomes the exact ARM requests, the diff, the
//! checks that must hold, the risk and blast radius, how success will be
//! checked and how to undo it. No I/O here: the edge reads the resources
//! [`reads`] names and passes them in as [`Facts`].

use crate::model::{Action, Direction, Finding, PolicyScope, Proposal, Risk, Snapshot};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const APIM_API: &str = "2024-05-01";
pub const NETWORK_API: &str = "2024-05-01";
pub const AUTOSCALE_API: &str = "2022-10-01";
pub const WHATIF_API: &str = "2024-03-01";

/// One ARM request, relative to the ARM base URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    /// Path and query, e.g. `/subscriptions/…/service/x?api-version=2024-05-01`.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// A resource as read before the change: its body and ETag, or absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Path without the query.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `None`: the resource does not exist (404).
    pub body: Option<Value>,
}

/// The resources read for a plan, by lower-cased path.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub resources: BTreeMap<String, Resource>,
    /// True when read from ARM just now; false when built from exported files.
    pub live: bool,
}

impl Facts {
    pub fn insert(&mut self, r: Resource) {
        self.resources.insert(key(&r.path), r);
    }
    pub fn get(&self, path: &str) -> Option<&Resource> {
        self.resources.get(&key(path))
    }
}

/// Resource ids compare case-insensitively and without the query.
pub fn key(path: &str) -> String {
    path.split('?')
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

/// A precondition and whether it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// One thing to compare after the write: the value at a JSON pointer of a re-read resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Expect {
    pub path: String,
    pub pointer: String,
    pub value: Value,
}

/// How the change will be checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verify {
    /// Re-read these and compare.
    pub expect: Vec<Expect>,
    /// The finding that must clear on fresh data.
    pub finding: String,
    /// Its kind (what data it is judged on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::model::FindingKind>,
    /// The end of the window it was seen in: fresh data must reach past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_until: Option<crate::model::Timestamp>,
    /// Minutes of fresh data to judge it on.
    pub window_minutes: u32,
    pub how: String,
}

/// An exact, approvable change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub proposal: String,
    pub finding: String,
    pub title: String,
    /// `scale_out`, `set_timeout`, `rollback_policy`, `fix_nsg_rule`, `fix_route`, `raise_limit`.
    pub action: String,
    /// The APIM service.
    pub service: String,
    pub live: bool,
    pub before: Vec<Resource>,
    pub requests: Vec<Request>,
    pub diff: String,
    pub checks: Vec<Check>,
    pub warnings: Vec<String>,
    pub risk: Risk,
    pub blast_radius: String,
    pub expected: String,
    pub verify: Verify,
    /// Restores the before-state; `if_match` is filled with the ETag read at undo time.
    pub undo: Vec<Request>,
    /// An ARM template of the changed resources for a what-if dry run, where it helps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatif: Option<Value>,
    /// The role a 403 most likely lacks.
    pub role: String,
    /// sha256 of everything above: what an approval binds.
    pub hash: String,
}

impl Plan {
    /// Whether every precondition holds.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// Sets `hash` over everything else.
    pub fn seal(mut self) -> Plan {
        self.hash = String::new();
        let v = serde_json::to_vec(&self).unwrap_or_default();
        let d = Sha256::digest(&v);
        self.hash = d.iter().map(|b| format!("{b:02x}")).collect();
        self
    }
}

/// Why no plan can be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("proposal {0} is manual: {1}")]
    Manual(String, String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Missing(String),
}

/// The service id's parts.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceId {
    pub id: String,
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
}

impl ServiceId {
    /// Parses `/subscriptions/S/resourceGroups/RG/providers/Microsoft.ApiManagement/service/N`.
    pub fn parse(id: &str) -> Result<ServiceId, String> {
        let id = id.trim().trim_end_matches('/');
        let parts: Vec<&str> = id.split('/').collect();
        let ok = parts.len() == 9
            && parts[0].is_empty()
            && parts[1].eq_ignore_ascii_case("subscriptions")
            && parts[3].eq_ignore_ascii_case("resourceGroups")
            && parts[5].eq_ignore_ascii_case("providers")
            && parts[6].eq_ignore_ascii_case("Microsoft.ApiManagement")
            && parts[7].eq_ignore_ascii_case("service")
            && parts.iter().skip(1).all(|p| !p.is_empty());
        if !ok {
            return Err(format!(
                "`{id}` is not an API Management service id; expected /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.ApiManagement/service/<name>"
            ));
        }
        Ok(ServiceId {
            id: id.to_string(),
            subscription: parts[2].to_string(),
            resource_group: parts[4].to_string(),
            name: parts[8].to_string(),
        })
    }

    fn rg_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.resource_group
        )
    }

    pub fn autoscale_list(&self) -> String {
        format!(
            "{}/providers/Microsoft.Insights/autoscalesettings",
            self.rg_path()
        )
    }

    pub fn skus(&self) -> String {
        format!("{}/skus", self.id)
    }

    /// An NSG named in the snapshot, or assumed to be in the service's resource group.
    pub fn nsg(&self, name_or_id: &str) -> String {
        if name_or_id.starts_with('/') {
            name_or_id.trim_end_matches('/').to_string()
        } else {
            format!(
                "{}/providers/Microsoft.Network/networkSecurityGroups/{name_or_id}",
                self.rg_path()
            )
        }
    }

    pub fn whatif(&self, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.Resources/deployments/{name}/whatIf?api-version={WHATIF_API}",
            self.rg_path()
        )
    }

    /// Where a scope's policy lives.
    pub fn policy(&self, scope: &PolicyScope) -> Result<String, PlanError> {
        let s = &self.id;
        Ok(match scope {
            PolicyScope::Global => format!("{s}/policies/policy"),
            PolicyScope::Product(p) => format!("{s}/products/{p}/policies/policy"),
            PolicyScope::Api(a) => format!("{s}/apis/{a}/policies/policy"),
            PolicyScope::Operation(a, o) => format!("{s}/apis/{a}/operations/{o}/policies/policy"),
            PolicyScope::Workspace(w) => format!("{s}/workspaces/{w}/policies/policy"),
            PolicyScope::Fragment(_) | PolicyScope::Unknown => {
                return Err(PlanError::Unsupported(format!(
                    "a policy at scope {scope} cannot be written by apimedic; edit it by hand"
                )));
            }
        })
    }
}

/// The api-version for a path.
pub fn api_version(path: &str) -> &'static str {
    let l = path.to_ascii_lowercase();
    if l.contains("/microsoft.network/") {
        NETWORK_API
    } else if l.contains("/microsoft.insights/") {
        AUTOSCALE_API
    } else {
        APIM_API
    }
}

/// `path?api-version=…` (plus `format=rawxml` for policies).
pub fn with_version(path: &str) -> String {
    let mut s = format!("{path}?api-version={}", api_version(path));
    if path.to_ascii_lowercase().ends_with("/policies/policy") {
        s.push_str("&format=rawxml");
    }
    s
}

/// The resources a plan for `proposal` needs read first.
pub fn reads(
    proposal: &Proposal,
    svc: &ServiceId,
    snapshot: &Snapshot,
) -> Result<Vec<String>, PlanError> {
    Ok(match &proposal.action {
        Action::ScaleOut { .. } => vec![svc.id.clone(), svc.skus(), svc.autoscale_list()],
        Action::SetTimeout { scope, .. }
        | Action::RollbackPolicy { scope, .. }
        | Action::RaiseLimit { scope, .. } => vec![svc.policy(scope)?],
        Action::FixRoute { api, operation, .. } => {
            vec![svc.policy(&PolicyScope::Operation(api.clone(), operation.clone()))?]
        }
        Action::AddNsgRule { nsg, .. } | Action::FixNsgRule { nsg, .. } => {
            vec![svc.nsg(&nsg_id(snapshot, nsg))]
        }
        Action::Manual { steps } => {
            return Err(PlanError::Manual(proposal.id.clone(), steps.join("; ")));
        }
    })
}

fn nsg_id(snapshot: &Snapshot, name: &str) -> String {
    snapshot
        .nsgs
        .iter()
        .find(|n| n.name.eq_ignore_ascii_case(name))
        .and_then(|n| n.resource_id.clone())
        .unwrap_or_else(|| name.to_string())
}

/// Builds the plan. `finding` is the proposal's finding (its evidence
/// carries numbers such as the suggested rule or the peak rate).
pub fn build(
    proposal: &Proposal,
    finding: Option<&Finding>,
    snapshot: &Snapshot,
    svc: &ServiceId,
    facts: &Facts,
) -> Result<Plan, PlanError> {
    let mut plan = Plan {
        proposal: proposal.id.clone(),
        finding: proposal.finding.clone(),
        title: proposal.title.clone(),
        action: String::new(),
        service: svc.id.clone(),
        live: facts.live,
        before: Vec::new(),
        requests: Vec::new(),
        diff: String::new(),
        checks: Vec::new(),
        warnings: Vec::new(),
        risk: proposal.risk,
        blast_radius: String::new(),
        expected: String::new(),
        verify: Verify {
            expect: Vec::new(),
            finding: proposal.finding.clone(),
            kind: finding.map(|f| f.kind),
            seen_until: finding.and_then(|f| f.window).map(|w| w.end),
            window_minutes: 15,
            how: String::new(),
        },
        undo: Vec::new(),
        whatif: None,
        role: "API Management Service Contributor".into(),
        hash: String::new(),
    };
    if !facts.live {
        plan.warnings.push(
            "computed from exported files, not live state: no ETag is known; re-plan against the live instance before running it"
                .into(),
        );
    }
    match &proposal.action {
        Action::ScaleOut { units, from } => scale_out(&mut plan, *units, *from, svc, facts)?,
        Action::SetTimeout { scope, seconds, .. } => {
            let path = svc.policy(scope)?;
            let xml = policy_xml(facts, &path, scope)?;
            let new = set_forward_timeout(&xml, *seconds).map_err(PlanError::Missing)?;
            plan.action = "set_timeout".into();
            policy_put(&mut plan, facts, &path, &xml, &new, scope);
            plan.expected = format!(
                "requests through {scope} wait up to {seconds} s for the backend instead of being cut; backend-timeout errors fall"
            );
            plan.verify.window_minutes = 15;
        }
        Action::RollbackPolicy { scope, to } => {
            let path = svc.policy(scope)?;
            let xml = policy_xml(facts, &path, scope)?;
            plan.action = "rollback_policy".into();
            let change = snapshot
                .changes
                .iter()
                .filter(|c| c.policy_scope.as_ref() == Some(scope) && c.time <= *to)
                .max_by_key(|c| c.time)
                .or_else(|| {
                    snapshot
                        .changes
                        .iter()
                        .filter(|c| c.policy_scope.as_ref() == Some(scope))
                        .min_by_key(|c| (c.time.0 - to.0).abs())
                });
            let Some(change) = change else {
                return Err(PlanError::Missing(format!(
                    "no recorded change of the policy at {scope} near {to}: the version to restore is unknown"
                )));
            };
            let Some(old) = crate::analyze::policy::policy_before(snapshot, change) else {
                return Err(PlanError::Missing(format!(
                    "the change at {} ({}) does not carry the previous policy text; restore it from source control",
                    change.time, change.operation
                )));
            };
            match &crate::analyze::policy::policy_after(snapshot, change) {
                Some(after) => {
                    let same = normalise_xml(after) == normalise_xml(&xml);
                    plan.checks.push(Check {
                        name: "policy unchanged since the change".into(),
                        ok: same,
                        detail: if same {
                            format!("the policy in force is the one written at {}", change.time)
                        } else {
                            format!(
                                "the policy was changed again after {}: rolling back would also undo the later change; re-diagnose",
                                change.time
                            )
                        },
                    });
                }
                None => plan.warnings.push(
                    "the change does not carry the new text; cannot confirm the policy in force is the one written then"
                        .into(),
                ),
            }
            plan.checks.push(Check {
                name: "version to restore".into(),
                ok: true,
                detail: format!(
                    "the text in force before the write at {} by {}",
                    change.time,
                    change.caller.as_deref().unwrap_or("an unknown caller")
                ),
            });
            policy_put(&mut plan, facts, &path, &xml, &old, scope);
            plan.expected = format!(
                "the policy at {scope} is back to its version before {}; the symptoms that started after it end",
                change.time
            );
        }
        Action::RaiseLimit { scope, .. } => {
            let path = svc.policy(scope)?;
            let xml = policy_xml(facts, &path, scope)?;
            let f = finding
                .ok_or_else(|| PlanError::Missing("the finding is not in this diagnosis".into()))?;
            let value = |k: &str| f.evidence.iter().find_map(|e| e.values.get(k).copied());
            let peak = value("peak_rpm").unwrap_or(0.0);
            let (new, old_calls, new_calls) =
                raise_limit(&xml, peak).map_err(PlanError::Missing)?;
            plan.action = "raise_limit".into();
            plan.checks.push(Check {
                name: "bounded raise".into(),
                ok: new_calls <= old_calls.saturating_mul(4).max(old_calls + 1),
                detail: format!(
                    "calls {old_calls} -> {new_calls} (peak {peak:.0} requests/min + 25 %, at most 4x in one step)"
                ),
            });
            if new_calls == old_calls.saturating_mul(4) {
                plan.warnings.push(
                    "the peak may need more than 4x the current limit: this step raises it 4x; check the backend's headroom before raising again"
                        .into(),
                );
            }
            policy_put(&mut plan, facts, &path, &xml, &new, scope);
            plan.blast_radius = format!(
                "{}; the backend behind {scope} may receive up to {}x the requests it got under the old limit",
                plan.blast_radius,
                (new_calls as f64 / old_calls.max(1) as f64 * 10.0).round() / 10.0
            );
            plan.expected = "429 responses from the limit stop for legitimate callers".into();
        }
        Action::FixRoute {
            api,
            operation,
            backend,
        } => {
            let scope = PolicyScope::Operation(api.clone(), operation.clone());
            let path = svc.policy(&scope)?;
            plan.action = "fix_route".into();
            let known = snapshot.backend(backend).is_some();
            plan.checks.push(Check {
                name: "backend entity exists".into(),
                ok: known,
                detail: if known {
                    format!("backend `{backend}` is defined in the service")
                } else {
                    format!("no backend entity `{backend}` in the loaded configuration")
                },
            });
            let old = facts
                .get(&path)
                .and_then(|r| r.body.as_ref())
                .and_then(|b| b.pointer("/properties/value"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let new = set_backend(old.as_deref(), backend);
            match old {
                Some(xml) => policy_put(&mut plan, facts, &path, &xml, &new, &scope),
                None => policy_create(&mut plan, &path, &new, &scope),
            }
            plan.expected =
                format!("{api}/{operation} is sent to backend {backend} again; its errors stop");
        }
        Action::AddNsgRule {
            nsg,
            rule,
            priority,
            direction,
            port,
            destination,
        } => {
            let path = svc.nsg(&nsg_id(snapshot, nsg));
            let props = json!({
                "protocol": "Tcp", "access": "Allow", "direction": direction_word(*direction),
                "priority": priority, "sourceAddressPrefix": "*", "sourcePortRange": "*",
                "destinationAddressPrefix": destination, "destinationPortRange": port,
            });
            nsg_rule(&mut plan, facts, &path, rule, props, proposal)?;
        }
        Action::FixNsgRule { nsg, .. } => {
            let path = svc.nsg(&nsg_id(snapshot, nsg));
            // The finding carries the ARM-shaped Allow rule that lets the
            // required flow through.
            let rule = finding
                .and_then(|f| {
                    f.evidence.iter().find_map(|e| {
                        let v: Value = serde_json::from_str(e.excerpt.as_deref()?).ok()?;
                        (v.get("name").is_some() && v.get("properties").is_some()).then_some(v)
                    })
                })
                .ok_or_else(|| {
                    PlanError::Missing(
                        "the finding names no rule to add (no ARM rule in its evidence); fix the NSG by hand".into(),
                    )
                })?;
            let name = rule["name"]
                .as_str()
                .unwrap_or("apimedic-allow")
                .to_string();
            nsg_rule(
                &mut plan,
                facts,
                &path,
                &name,
                rule["properties"].clone(),
                proposal,
            )?;
        }
        Action::Manual { steps } => {
            return Err(PlanError::Manual(proposal.id.clone(), steps.join("; ")));
        }
    }
    if plan.verify.how.is_empty() {
        plan.verify.how = format!(
            "re-read the changed resources and compare; then re-diagnose {} minutes of fresh data and check finding {} is gone",
            plan.verify.window_minutes, plan.verify.finding
        );
    }
    Ok(plan.seal())
}

fn direction_word(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "Inbound",
        Direction::Outbound => "Outbound",
    }
}

fn resource<'a>(facts: &'a Facts, path: &str) -> Result<&'a Resource, PlanError> {
    facts
        .get(path)
        .ok_or_else(|| PlanError::Missing(format!("{path} was not read")))
}

fn scale_out(
    plan: &mut Plan,
    units: u32,
    from: Option<u32>,
    svc: &ServiceId,
    facts: &Facts,
) -> Result<(), PlanError> {
    plan.action = "scale_out".into();
    let service = resource(facts, &svc.id)?;
    let body = service
        .body
        .clone()
        .ok_or_else(|| PlanError::Missing(format!("the service {} does not exist", svc.id)))?;
    let sku = body
        .pointer("/sku/name")
        .and_then(Value::as_str)
        .ok_or_else(|| PlanError::Missing("the service has no sku.name".into()))?
        .to_string();
    let capacity = body
        .pointer("/sku/capacity")
        .and_then(Value::as_u64)
        .unwrap_or(1) as u32;
    // From the proposal's own starting point when known: re-planning after
    // the change was applied must not add units again.
    let base = from.unwrap_or(capacity);
    let target = base + units;
    plan.checks.push(Check {
        name: "not already scaled".into(),
        ok: capacity < target,
        detail: format!("{sku} runs {capacity} unit(s); the proposal goes from {base} to {target}"),
    });
    let state = body
        .pointer("/properties/provisioningState")
        .and_then(Value::as_str);
    plan.checks.push(match state {
        Some(state) => Check {
            name: "no operation running".into(),
            ok: state.eq_ignore_ascii_case("Succeeded"),
            detail: format!("provisioningState is {state}"),
        },
        None => Check {
            name: "no operation running".into(),
            ok: !facts.live,
            detail: if facts.live {
                "the service shows no provisioningState".into()
            } else {
                "not in the export; checked when planned against the live service".into()
            },
        },
    });
    let max = sku_maximum(facts, svc, &sku);
    plan.checks.push(match max {
        Some((m, src)) => Check {
            name: "tier supports the unit count".into(),
            ok: target <= m,
            detail: format!("{sku} allows up to {m} unit(s) ({src})"),
        },
        None => Check {
            name: "tier supports the unit count".into(),
            ok: false,
            detail: format!(
                "{sku} cannot be scaled by units (Consumption scales itself; Developer has 1)"
            ),
        },
    });
    let zones = body
        .get("zones")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as u32;
    if zones > 1 {
        plan.checks.push(Check {
            name: "units a multiple of the zones".into(),
            ok: target.is_multiple_of(zones),
            detail: format!("{zones} availability zones; {target} units"),
        });
    }
    plan.blast_radius = format!(
        "the whole gateway {} (every API); billing follows units ({capacity} -> {target}); the change takes 15-45 minutes",
        svc.name
    );
    plan.expected =
        "gateway Capacity falls below 80 % and the latency that came with it recovers".into();
    plan.verify.window_minutes = 30;
    // An enabled autoscale setting would undo a manual change at its next
    // evaluation: raise its minimum instead.
    let autoscale = facts
        .get(&svc.autoscale_list())
        .and_then(|r| r.body.as_ref())
        .and_then(|b| b.get("value"))
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter().find(|s| {
                s.pointer("/properties/targetResourceUri")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case(&svc.id))
                    && s.pointer("/properties/enabled").and_then(Value::as_bool) != Some(false)
            })
        })
        .cloned();
    if let Some(setting) = autoscale {
        let id = setting["id"].as_str().unwrap_or_default().to_string();
        let path = if id.is_empty() {
            format!(
                "{}/{}",
                svc.autoscale_list(),
                setting["name"].as_str().unwrap_or("")
            )
        } else {
            id
        };
        let mut props = setting["properties"].clone();
        let mut changed = Vec::new();
        if let Some(profiles) = props.get_mut("profiles").and_then(Value::as_array_mut) {
            for p in profiles.iter_mut() {
                let pname = p["name"].as_str().unwrap_or("?").to_string();
                let cap = &mut p["capacity"];
                let get = |v: &Value, k: &str| {
                    v.get(k)
                        .and_then(|x| {
                            x.as_str()
                                .and_then(|s| s.parse::<u32>().ok())
                                .or(x.as_u64().map(|n| n as u32))
                        })
                        .unwrap_or(0)
                };
                let (min, def, maxc) = (
                    get(cap, "minimum"),
                    get(cap, "default"),
                    get(cap, "maximum"),
                );
                let (nmin, ndef, nmax) = (min.max(target), def.max(target), maxc.max(target));
                changed.push(format!(
                    "profile {pname}: minimum {min} -> {nmin}, default {def} -> {ndef}, maximum {maxc} -> {nmax}"
                ));
                cap["minimum"] = json!(nmin.to_string());
                cap["default"] = json!(ndef.to_string());
                cap["maximum"] = json!(nmax.to_string());
            }
        }
        plan.warnings.push(format!(
            "autoscale setting {} manages this service: its minimum is raised instead of patching the units (autoscale would undo a manual change)",
            setting["name"].as_str().unwrap_or("?")
        ));
        plan.role = "Monitoring Contributor (autoscale settings)".into();
        let before_props = setting["properties"].clone();
        plan.before.push(Resource {
            path: key_case(&path),
            etag: setting
                .get("etag")
                .and_then(Value::as_str)
                .map(str::to_string),
            body: Some(setting.clone()),
        });
        plan.diff = changed.join("\n");
        plan.requests.push(Request {
            method: "PATCH".into(),
            path: with_version(&path),
            if_match: None,
            body: Some(json!({"properties": props})),
        });
        plan.undo.push(Request {
            method: "PATCH".into(),
            path: with_version(&path),
            if_match: None,
            body: Some(json!({"properties": before_props})),
        });
        plan.verify.expect.push(Expect {
            path: path.clone(),
            pointer: "/properties/profiles/0/capacity/minimum".into(),
            value: json!(target.to_string()),
        });
        plan.expected = format!(
            "autoscale brings the gateway to at least {target} unit(s) at its next evaluation; then {}",
            plan.expected
        );
        return Ok(());
    }
    plan.before.push(service.clone());
    plan.diff = format!("sku.capacity: {capacity} -> {target}   ({sku})");
    let new_sku = json!({"sku": {"name": sku, "capacity": target}});
    plan.requests.push(Request {
        method: "PATCH".into(),
        path: with_version(&svc.id),
        if_match: Some(service.etag.clone().unwrap_or_else(|| "*".into())),
        body: Some(new_sku.clone()),
    });
    plan.undo.push(Request {
        method: "PATCH".into(),
        path: with_version(&svc.id),
        if_match: None,
        body: Some(json!({"sku": {"name": sku, "capacity": capacity}})),
    });
    plan.verify.expect.push(Expect {
        path: svc.id.clone(),
        pointer: "/sku/capacity".into(),
        value: json!(target),
    });
    plan.verify.expect.push(Expect {
        path: svc.id.clone(),
        pointer: "/properties/provisioningState".into(),
        value: json!("Succeeded"),
    });
    let mut res = json!({
        "type": "Microsoft.ApiManagement/service", "apiVersion": APIM_API, "name": svc.name,
        "sku": {"name": sku, "capacity": target},
    });
    for k in ["location", "properties"] {
        if let Some(v) = body.get(k) {
            // Only what a template may set: publisher fields are required.
            res[k] = if k == "properties" {
                json!({"publisherEmail": v.get("publisherEmail"), "publisherName": v.get("publisherName")})
            } else {
                v.clone()
            };
        }
    }
    plan.whatif = Some(template(res));
    Ok(())
}

fn key_case(path: &str) -> String {
    path.split('?').next().unwrap_or("").to_string()
}

fn template(resource: Value) -> Value {
    json!({"properties": {"mode": "Incremental", "parameters": {}, "template": {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0", "resources": [resource]}}})
}

/// The tier's maximum units: from the service's `/skus` when read, else the documented limits.
fn sku_maximum(facts: &Facts, svc: &ServiceId, sku: &str) -> Option<(u32, &'static str)> {
    let listed = facts
        .get(&svc.skus())
        .and_then(|r| r.body.as_ref())
        .and_then(|b| b.get("value"))
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter().find(|s| {
                s.pointer("/sku/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(sku))
            })
        })
        .and_then(|s| s.pointer("/capacity/maximum"))
        .and_then(Value::as_u64);
    if let Some(m) = listed {
        return Some((m as u32, "the service's SKU list"));
    }
    let m = match sku.to_ascii_lowercase().as_str() {
        "basic" => 2,
        "standard" => 4,
        "premium" => 12,
        "basicv2" | "standardv2" | "premiumv2" => 10,
        "isolated" => 1,
        _ => return None,
    };
    Some((m, "documented tier limit"))
}

fn policy_xml(facts: &Facts, path: &str, scope: &PolicyScope) -> Result<String, PlanError> {
    let r = resource(facts, path)?;
    r.body
        .as_ref()
        .and_then(|b| b.pointer("/properties/value"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| PlanError::Missing(format!("there is no policy at {scope} to change")))
}

fn policy_put(
    plan: &mut Plan,
    facts: &Facts,
    path: &str,
    old: &str,
    new: &str,
    scope: &PolicyScope,
) {
    let before = facts.get(path).cloned().unwrap_or(Resource {
        path: path.to_string(),
        etag: None,
        body: None,
    });
    plan.checks.push(Check {
        name: "a change to make".into(),
        ok: normalise_xml(old) != normalise_xml(new),
        detail: "the new policy differs from the one in force".into(),
    });
    plan.diff = crate::model::diff::unified(
        old,
        new,
        &format!("{scope} (now)"),
        &format!("{scope} (planned)"),
    )
    .unwrap_or_default();
    plan.requests.push(Request {
        method: "PUT".into(),
        path: with_version(path),
        if_match: Some(before.etag.clone().unwrap_or_else(|| "*".into())),
        body: Some(json!({"properties": {"format": "rawxml", "value": new}})),
    });
    plan.undo.push(Request {
        method: "PUT".into(),
        path: with_version(path),
        if_match: None,
        body: Some(json!({"properties": {"format": "rawxml", "value": old}})),
    });
    plan.before.push(before);
    plan.verify.expect.push(Expect {
        path: path.to_string(),
        pointer: "/properties/value".into(),
        value: json!(new),
    });
    if plan.blast_radius.is_empty() {
        plan.blast_radius = blast(scope);
    }
}

fn policy_create(plan: &mut Plan, path: &str, new: &str, scope: &PolicyScope) {
    plan.diff = crate::model::diff::unified(
        "",
        new,
        &format!("{scope} (none)"),
        &format!("{scope} (planned)"),
    )
    .unwrap_or_default();
    plan.before.push(Resource {
        path: path.to_string(),
        etag: None,
        body: None,
    });
    plan.requests.push(Request {
        method: "PUT".into(),
        path: with_version(path),
        if_match: None,
        body: Some(json!({"properties": {"format": "rawxml", "value": new}})),
    });
    plan.undo.push(Request {
        method: "DELETE".into(),
        path: with_version(path),
        if_match: None,
        body: None,
    });
    plan.verify.expect.push(Expect {
        path: path.to_string(),
        pointer: "/properties/value".into(),
        value: json!(new),
    });
    plan.blast_radius = blast(scope);
}

fn blast(scope: &PolicyScope) -> String {
    match scope {
        PolicyScope::Global => "every API and operation of the service (global policy)".into(),
        PolicyScope::Product(p) => format!("every API in product {p}"),
        PolicyScope::Api(a) => format!("every operation of API {a}"),
        PolicyScope::Operation(a, o) => format!("operation {a}/{o} only"),
        other => format!("everything under {other}"),
    }
}

fn nsg_rule(
    plan: &mut Plan,
    facts: &Facts,
    nsg_path: &str,
    name: &str,
    mut props: Value,
    proposal: &Proposal,
) -> Result<(), PlanError> {
    plan.action = "fix_nsg_rule".into();
    plan.role = "Network Contributor".into();
    let nsg = resource(facts, nsg_path)?;
    let body = nsg
        .body
        .as_ref()
        .ok_or_else(|| PlanError::Missing(format!("the NSG {nsg_path} does not exist")))?;
    let rules: Vec<Value> = body
        .pointer("/properties/securityRules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let existing = rules
        .iter()
        .find(|r| {
            r["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .cloned();
    let taken: Vec<(u64, String)> = rules
        .iter()
        .filter(|r| {
            !r["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .filter_map(|r| {
            Some((
                r.pointer("/properties/priority")?.as_u64()?,
                r["name"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect();
    let wanted = props["priority"].as_u64().unwrap_or(100);
    // Free in both directions (whether Azure allows sharing is unconfirmed).
    let free = |p: u64| !taken.iter().any(|(q, _)| *q == p);
    let priority = if free(wanted) {
        wanted
    } else {
        (100..wanted).rev().find(|p| free(*p)).unwrap_or(wanted)
    };
    plan.checks.push(Check {
        name: "free priority".into(),
        ok: free(priority),
        detail: if priority == wanted {
            format!("priority {priority} is free in {}", name_of(nsg_path))
        } else if free(priority) {
            format!(
                "priority {wanted} is taken by {}; using {priority}, the next free one above it",
                taken
                    .iter()
                    .find(|(q, _)| *q == wanted)
                    .map_or("", |(_, n)| n)
            )
        } else {
            format!("no free priority at or above {wanted}")
        },
    });
    props["priority"] = json!(priority);
    if props.get("description").is_none() {
        props["description"] = json!(
            format!("apimedic {}: {}", proposal.id, proposal.title)
                .chars()
                .take(140)
                .collect::<String>()
        );
    }
    let path = format!("{nsg_path}/securityRules/{name}");
    let new_body = json!({"properties": props});
    let before_rule = existing
        .clone()
        .map(|r| json!({"properties": r["properties"].clone()}));
    plan.diff = match &before_rule {
        Some(b) => crate::model::diff::unified(
            &serde_json::to_string_pretty(b).unwrap_or_default(),
            &serde_json::to_string_pretty(&new_body).unwrap_or_default(),
            &format!("{name} (now)"),
            &format!("{name} (planned)"),
        )
        .unwrap_or_default(),
        None => format!(
            "+ new rule {name} in {}:\n{}",
            name_of(nsg_path),
            serde_json::to_string_pretty(&new_body).unwrap_or_default()
        ),
    };
    // The NSG's ETag binds the plan: any rule change since shows.
    plan.before.push(nsg.clone());
    plan.requests.push(Request {
        method: "PUT".into(),
        path: with_version(&path),
        if_match: existing
            .as_ref()
            .and_then(|r| r["etag"].as_str())
            .map(str::to_string),
        body: Some(new_body.clone()),
    });
    plan.undo.push(match before_rule {
        Some(b) => Request {
            method: "PUT".into(),
            path: with_version(&path),
            if_match: None,
            body: Some(b),
        },
        None => Request {
            method: "DELETE".into(),
            path: with_version(&path),
            if_match: None,
            body: None,
        },
    });
    plan.verify.expect.push(Expect {
        path: path.clone(),
        pointer: "/properties/access".into(),
        value: props["access"].clone(),
    });
    plan.verify.expect.push(Expect {
        path: path.clone(),
        pointer: "/properties/priority".into(),
        value: json!(priority),
    });
    plan.blast_radius = format!(
        "every subnet and NIC using NSG {}: the rule admits {} {} traffic to {} port {}",
        name_of(nsg_path),
        props["direction"].as_str().unwrap_or("?"),
        props["sourceAddressPrefix"].as_str().unwrap_or("*"),
        props["destinationAddressPrefix"].as_str().unwrap_or("*"),
        props
            .get("destinationPortRange")
            .or_else(|| props.get("destinationPortRanges"))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    );
    plan.expected =
        "the required flow is allowed; the network finding clears and dependent traffic recovers"
            .into();
    let mut res = json!({
        "type": "Microsoft.Network/networkSecurityGroups/securityRules", "apiVersion": NETWORK_API,
        "name": format!("{}/{name}", name_of(nsg_path)),
    });
    res["properties"] = props;
    plan.whatif = Some(template(res));
    Ok(())
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whitespace-insensitive form of a policy, for "is it the same policy".
pub fn normalise_xml(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut last_space = false;
    for c in xml.trim().chars() {
        if c.is_whitespace() {
            last_space = true;
            continue;
        }
        if last_space && !out.ends_with('>') && c != '<' && c != '/' && c != '>' {
            out.push(' ');
        }
        last_space = false;
        out.push(c);
    }
    out
}

/// Sets `timeout` on every `<forward-request>` of the policy.
pub fn set_forward_timeout(xml: &str, seconds: u32) -> Result<String, String> {
    let mut out = String::with_capacity(xml.len() + 16);
    let mut rest = xml;
    let mut found = false;
    while let Some(i) = rest.find("<forward-request") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let end = tail
            .find('>')
            .ok_or("a <forward-request> element is not closed")?;
        let tag = &tail[..end];
        let self_closing = tag.ends_with('/');
        let tag_body = tag.trim_end_matches('/');
        out.push_str(set_attr(tag_body, "timeout", &seconds.to_string()).trim_end());
        if self_closing {
            out.push_str(" /");
        }
        rest = &tail[end..];
        found = true;
    }
    out.push_str(rest);
    if !found {
        return Err(
            "this scope has no <forward-request> (it inherits the timeout through <base/>): set the timeout at the scope that forwards"
                .into(),
        );
    }
    Ok(out)
}

/// `tag` (from `<name` up to but excluding `>`/`/>`) with `attr` set.
fn set_attr(tag: &str, attr: &str, value: &str) -> String {
    for quote in ['"', '\''] {
        let pat = format!(" {attr}={quote}");
        if let Some(i) = tag.find(&pat) {
            let start = i + pat.len();
            if let Some(len) = tag[start..].find(quote) {
                return format!("{}{value}{}", &tag[..start], &tag[start + len..]);
            }
        }
    }
    format!("{} {attr}=\"{value}\"", tag.trim_end())
}

fn get_attr(tag: &str, attr: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let pat = format!(" {attr}={quote}");
        if let Some(i) = tag.find(&pat) {
            let start = i + pat.len();
            let len = tag[start..].find(quote)?;
            return Some(tag[start..start + len].to_string());
        }
    }
    None
}

/// Raises `calls` of the rate-limit/quota elements to the peak rate per
/// renewal period plus 25 %; returns the new XML and the first old/new calls.
pub fn raise_limit(xml: &str, peak_rpm: f64) -> Result<(String, u64, u64), String> {
    let mut out = String::with_capacity(xml.len() + 16);
    let mut rest = xml;
    let mut first: Option<(u64, u64)> = None;
    loop {
        let next = [
            "<rate-limit-by-key",
            "<rate-limit",
            "<quota-by-key",
            "<quota",
        ]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, *p)))
        .min_by_key(|(i, p)| (*i, std::cmp::Reverse(p.len())));
        let Some((i, _)) = next else { break };
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let end = tail.find('>').ok_or("a limit element is not closed")?;
        let tag = &tail[..end];
        let calls = get_attr(tag, "calls").and_then(|c| c.parse::<u64>().ok());
        let period = get_attr(tag, "renewal-period")
            .and_then(|c| c.parse::<f64>().ok())
            .unwrap_or(60.0);
        match calls {
            Some(c) => {
                let needed = (peak_rpm * period / 60.0 * 1.25).ceil() as u64;
                // At most 4x in one step: a bigger jump is a capacity
                // decision for the backend's owner.
                let new = needed
                    .max(c + c / 2)
                    .max(c + 1)
                    .min(c.saturating_mul(4).max(c + 1));
                first.get_or_insert((c, new));
                out.push_str(
                    set_attr(tag.trim_end_matches('/'), "calls", &new.to_string()).trim_end(),
                );
                if tag.ends_with('/') {
                    out.push_str(" /");
                }
            }
            None => out.push_str(tag),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    let (old, new) = first.ok_or("no rate-limit or quota with `calls` at this scope")?;
    Ok((out, old, new))
}

/// The operation policy with `set-backend-service backend-id` pointing at `backend`.
pub fn set_backend(xml: Option<&str>, backend: &str) -> String {
    let element = format!("<set-backend-service backend-id=\"{backend}\" />");
    let Some(xml) = xml else {
        return format!(
            "<policies>\n\t<inbound>\n\t\t<base />\n\t\t{element}\n\t</inbound>\n\t<backend>\n\t\t<base />\n\t</backend>\n\t<outbound>\n\t\t<base />\n\t</outbound>\n\t<on-error>\n\t\t<base />\n\t</on-error>\n</policies>"
        );
    };
    if let Some(i) = xml.find("<set-backend-service") {
        let end = xml[i..].find('>').map_or(xml.len(), |e| i + e + 1);
        return format!("{}{element}{}", &xml[..i], &xml[end..]);
    }
    if let Some(i) = xml.find("</inbound>") {
        let head = &xml[..i];
        let line_start = head.rfind('\n').map_or(0, |n| n + 1);
        let indent = &head[line_start..];
        if indent.chars().all(|c| c == ' ' || c == '\t') {
            let unit = if indent.is_empty() || indent.contains('\t') {
                "\t"
            } else {
                "    "
            };
            return format!(
                "{}{indent}{unit}{element}\n{indent}{}",
                &head[..line_start],
                &xml[i..]
            );
        }
        return format!("{head}{element}{}", &xml[i..]);
    }
    if let Some(i) = xml.find("<policies>") {
        let at = i + "<policies>".len();
        return format!(
            "{}\n\t<inbound>\n\t\t<base />\n\t\t{element}\n\t</inbound>{}",
            &xml[..at],
            &xml[at..]
        );
    }
    format!("{xml}{element}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ids_parse_and_reject() {
        let s = ServiceId::parse(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim1",
        )
        .unwrap();
        assert_eq!(
            (
                s.subscription.as_str(),
                s.resource_group.as_str(),
                s.name.as_str()
            ),
            ("s1", "rg", "apim1")
        );
        assert!(ServiceId::parse("/subscriptions/s1/resourceGroups/rg").is_err());
        assert!(
            ServiceId::parse("apim1")
                .unwrap_err()
                .contains("not an API Management service id")
        );
    }

    #[test]
    fn timeout_is_set_or_added() {
        let x = "<backend><forward-request timeout=\"5\" /></backend>";
        assert_eq!(
            set_forward_timeout(x, 30).unwrap(),
            "<backend><forward-request timeout=\"30\" /></backend>"
        );
        let y = "<backend><forward-request buffer-request-body=\"true\"/></backend>";
        assert_eq!(
            set_forward_timeout(y, 12).unwrap(),
            "<backend><forward-request buffer-request-body=\"true\" timeout=\"12\" /></backend>"
        );
        assert!(set_forward_timeout("<backend><base /></backend>", 3).is_err());
    }

    #[test]
    fn limits_rise_to_the_peak_with_headroom() {
        let x = "<inbound><rate-limit calls=\"100\" renewal-period=\"60\" /><quota calls=\"1000\" renewal-period=\"3600\"/></inbound>";
        let (y, old, new) = raise_limit(x, 200.0).unwrap();
        assert_eq!((old, new), (100, 250));
        assert!(
            y.contains("<rate-limit calls=\"250\" renewal-period=\"60\" />"),
            "{y}"
        );
        assert!(
            y.contains("<quota calls=\"4000\" renewal-period=\"3600\" />"),
            "{y}"
        );
        assert!(raise_limit("<inbound/>", 1.0).is_err());
        // rate-limit-by-key is not mistaken for rate-limit twice.
        let (z, _, _) = raise_limit(
            "<rate-limit-by-key calls=\"10\" renewal-period=\"60\" counter-key=\"k\" />",
            0.0,
        )
        .unwrap();
        assert_eq!(
            z,
            "<rate-limit-by-key calls=\"15\" renewal-period=\"60\" counter-key=\"k\" />"
        );
    }

    #[test]
    fn backend_is_set_replaced_or_created() {
        let fresh = set_backend(None, "b2");
        assert!(fresh.contains("<set-backend-service backend-id=\"b2\" />"));
        let x = "<policies><inbound><base /><set-backend-service base-url=\"https://x\" /></inbound></policies>";
        assert_eq!(
            set_backend(Some(x), "b2"),
            "<policies><inbound><base /><set-backend-service backend-id=\"b2\" /></inbound></policies>"
        );
        let y = "<policies>\n\t<inbound>\n\t\t<base />\n\t</inbound>\n</policies>";
        assert!(
            set_backend(Some(y), "b")
                .contains("<base />\n\t\t<set-backend-service backend-id=\"b\" />\n\t</inbound>")
        );
    }

    #[test]
    fn normalised_xml_ignores_layout() {
        assert_eq!(
            normalise_xml("<a>\n  <b x=\"1\" />\n</a>"),
            normalise_xml("<a><b x=\"1\" /></a>")
        );
        assert_ne!(normalise_xml("<a x=\"1\"/>"), normalise_xml("<a x=\"2\"/>"));
    }
}
