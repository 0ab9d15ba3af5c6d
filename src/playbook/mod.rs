//! Playbooks: files in `playbooks/` that map a finding kind to diagnosis
//! steps and remediation proposals. They are data a user may edit; this
//! module loads and validates them (unknown keys and kinds are errors naming
//! file and line) and turns findings into concrete `Proposal`s (pure).
//!
//! The defaults are compiled into the binary, so apimedic works anywhere;
//! `--playbooks DIR` replaces them with a folder of the user's.

use crate::analyze;
use crate::model::{
    Action, Diagnosis, Finding, FindingKind, PolicyScope, Proposal, Risk, Service, Severity,
    Snapshot,
};
use anyhow::Context;
use serde::Deserialize;
use std::path::Path;

/// The playbooks shipped in `playbooks/`, compiled in.
const BUILT_IN: [(&str, &str); 15] = [
    (
        "playbooks/backend_failure.yaml",
        include_str!("../../playbooks/backend_failure.yaml"),
    ),
    (
        "playbooks/backend_timeout.yaml",
        include_str!("../../playbooks/backend_timeout.yaml"),
    ),
    (
        "playbooks/backend_unhealthy.yaml",
        include_str!("../../playbooks/backend_unhealthy.yaml"),
    ),
    (
        "playbooks/capacity.yaml",
        include_str!("../../playbooks/capacity.yaml"),
    ),
    (
        "playbooks/config_change.yaml",
        include_str!("../../playbooks/config_change.yaml"),
    ),
    (
        "playbooks/error_spike.yaml",
        include_str!("../../playbooks/error_spike.yaml"),
    ),
    (
        "playbooks/latency_regression.yaml",
        include_str!("../../playbooks/latency_regression.yaml"),
    ),
    (
        "playbooks/malformed_policy.yaml",
        include_str!("../../playbooks/malformed_policy.yaml"),
    ),
    (
        "playbooks/metric_anomaly.yaml",
        include_str!("../../playbooks/metric_anomaly.yaml"),
    ),
    (
        "playbooks/network_gap.yaml",
        include_str!("../../playbooks/network_gap.yaml"),
    ),
    (
        "playbooks/policy_inheritance.yaml",
        include_str!("../../playbooks/policy_inheritance.yaml"),
    ),
    (
        "playbooks/policy_risk.yaml",
        include_str!("../../playbooks/policy_risk.yaml"),
    ),
    (
        "playbooks/quota.yaml",
        include_str!("../../playbooks/quota.yaml"),
    ),
    (
        "playbooks/route_mismatch.yaml",
        include_str!("../../playbooks/route_mismatch.yaml"),
    ),
    (
        "playbooks/scaling_config.yaml",
        include_str!("../../playbooks/scaling_config.yaml"),
    ),
];

/// One playbook file as written.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// A finding kind (`error_spike`, `backend_timeout`…).
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub diagnosis: Vec<String>,
    #[serde(default)]
    pub proposals: Vec<ProposalSpec>,
}

/// A proposal template; `{api}`, `{operation}`, `{backend}`, `{scope}`,
/// `{nsg}`, `{rule}`, `{units}` and `{seconds}` in texts are filled from the finding.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProposalSpec {
    pub title: String,
    pub action: ActionSpec,
    pub risk: Risk,
    #[serde(default)]
    pub preconditions: Vec<String>,
}

/// The remediation an executor would carry out, before the finding fills it in.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    ScaleOut { units: u32 },
    SetTimeout,
    RollbackPolicy,
    FixNsgRule,
    FixRoute,
    RaiseLimit,
    Manual { steps: Vec<String> },
}

/// A validated set of playbooks, at most one per finding kind.
#[derive(Clone, Debug, Default)]
pub struct Playbooks {
    pub books: Vec<(FindingKind, Playbook)>,
}

impl Playbooks {
    /// The playbooks compiled into the binary.
    pub fn built_in() -> Playbooks {
        let files: Vec<(String, String)> = BUILT_IN
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        // The shipped files are checked by a test, so this cannot fail at run time.
        Playbooks::from_files(&files).unwrap_or_default()
    }

    /// Every `*.yaml`/`*.yml` file in a folder.
    pub fn load_dir(dir: &Path) -> anyhow::Result<Playbooks> {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read playbook folder {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext == "yaml" || ext == "yml" {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                files.push((path.display().to_string(), text));
            }
        }
        files.sort();
        if files.is_empty() {
            anyhow::bail!("no playbooks (*.yaml) in {}", dir.display());
        }
        Playbooks::from_files(&files)
    }

    /// Pure: parse and validate (file name, text) pairs.
    pub fn from_files(files: &[(String, String)]) -> anyhow::Result<Playbooks> {
        let mut books: Vec<(FindingKind, Playbook)> = Vec::new();
        for (name, text) in files {
            let book = parse_playbook(name, text)?;
            let kind = FindingKind::parse(&book.kind).ok_or_else(|| {
                let known: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
                anyhow::anyhow!(
                    "{name}: unknown finding kind `{}`; expected one of {}",
                    book.kind,
                    known.join(", ")
                )
            })?;
            if books.iter().any(|(k, _)| *k == kind) {
                anyhow::bail!(
                    "{name}: a second playbook for kind `{kind}`; keep one file per kind"
                );
            }
            books.push((kind, book));
        }
        Ok(Playbooks { books })
    }

    pub fn get(&self, kind: FindingKind) -> Option<&Playbook> {
        self.books.iter().find(|(k, _)| *k == kind).map(|(_, b)| b)
    }

    /// Diagnosis steps for a finding, placeholders filled.
    pub fn steps(&self, finding: &Finding) -> Vec<String> {
        let fill = Fill::from_finding(finding, None, None, None);
        self.get(finding.kind)
            .map(|b| b.diagnosis.iter().map(|s| fill.apply(s)).collect())
            .unwrap_or_default()
    }

    /// Concrete proposals for the findings (pure), in finding order.
    /// Info findings get none: there is nothing to remediate.
    pub fn propose(&self, findings: &[Finding], service: Option<&Service>) -> Vec<Proposal> {
        let mut out = Vec::new();
        for finding in findings.iter().filter(|f| f.severity > Severity::Info) {
            let Some(book) = self.get(finding.kind) else {
                continue;
            };
            for (i, spec) in book.proposals.iter().enumerate() {
                out.push(propose_one(book, spec, i, finding, service));
            }
        }
        out
    }
}

/// The whole pipeline after loading (pure): findings, backend map, stories
/// and proposals for a snapshot.
pub fn diagnose(
    snapshot: &Snapshot,
    options: &analyze::Options,
    playbooks: &Playbooks,
) -> Diagnosis {
    let (findings, backend_map, stories) = analyze::analyze_all(snapshot, options);
    let proposals = playbooks.propose(&findings, snapshot.service.as_ref());
    Diagnosis {
        findings,
        stories,
        backend_map,
        proposals,
        loaded: snapshot.loaded.clone(),
    }
}

/// Parses one playbook, with serde's line and column in the error.
pub fn parse_playbook(name: &str, text: &str) -> anyhow::Result<Playbook> {
    serde_yaml_ng::from_str::<Playbook>(text).map_err(|e| match e.location() {
        Some(loc) => anyhow::anyhow!("{name}:{}:{}: {e}", loc.line(), loc.column()),
        None => anyhow::anyhow!("{name}: {e}"),
    })
}

/// Values a finding gives to placeholders and actions.
struct Fill {
    api: String,
    operation: String,
    backend: String,
    scope: Option<PolicyScope>,
    nsg: String,
    rule: String,
    units: Option<u32>,
    seconds: Option<u32>,
}

impl Fill {
    fn from_finding(
        f: &Finding,
        units: Option<u32>,
        seconds: Option<u32>,
        _service: Option<&Service>,
    ) -> Fill {
        let s = &f.subject;
        let scope = s
            .policy_scope
            .clone()
            .or_else(|| match (&s.api, &s.operation) {
                (Some(a), Some(o)) => Some(PolicyScope::Operation(a.clone(), o.clone())),
                (Some(a), None) => Some(PolicyScope::Api(a.clone())),
                _ => None,
            });
        Fill {
            api: s.api.clone().unwrap_or_else(|| "the API".into()),
            operation: s
                .operation
                .clone()
                .unwrap_or_else(|| "its operations".into()),
            backend: s.backend.clone().unwrap_or_else(|| "the backend".into()),
            scope,
            nsg: s.nsg.clone().unwrap_or_else(|| "the NSG".into()),
            rule: s.rule.clone().unwrap_or_else(|| "the rule".into()),
            units,
            seconds,
        }
    }

    fn apply(&self, text: &str) -> String {
        let scope = self
            .scope
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "the scope that sets it".into());
        let units = self
            .units
            .map(|u| u.to_string())
            .unwrap_or_else(|| "N".into());
        let seconds = self
            .seconds
            .map(|u| format!("{u} s"))
            .unwrap_or_else(|| "a value above the backend's p99 latency".into());
        text.replace("{api}", &self.api)
            .replace("{operation}", &self.operation)
            .replace("{backend}", &self.backend)
            .replace("{scope}", &scope)
            .replace("{nsg}", &self.nsg)
            .replace("{rule}", &self.rule)
            .replace("{units}", &units)
            .replace("{seconds}", &seconds)
    }
}

/// Evidence keys analyzers set for playbooks: `suggested_timeout_s`,
/// `previous_timeout_s`, `timeout_s` or `timeout_seconds`, `backend_p99_ms`.
fn evidence_value(f: &Finding, key: &str) -> Option<f64> {
    f.evidence.iter().find_map(|e| e.values.get(key).copied())
}

/// A timeout that covers the backend's observed p99 with headroom, in whole seconds.
fn suggested_timeout(f: &Finding) -> Option<u32> {
    if let Some(s) = evidence_value(f, "suggested_timeout_s") {
        return Some(s.ceil().max(1.0) as u32);
    }
    // Restoring a timeout that worked before the change beats a guess.
    if let Some(prev) = evidence_value(f, "previous_timeout_s") {
        let now = current_timeout(f).unwrap_or(0.0);
        if prev > now {
            return Some(prev.ceil() as u32);
        }
    }
    let p99 = evidence_value(f, "backend_p99_ms")?;
    Some(((p99 * 1.5) / 1000.0).ceil().max(1.0) as u32)
}

fn current_timeout(f: &Finding) -> Option<f64> {
    evidence_value(f, "timeout_s").or_else(|| evidence_value(f, "timeout_seconds"))
}

fn propose_one(
    book: &Playbook,
    spec: &ProposalSpec,
    index: usize,
    f: &Finding,
    service: Option<&Service>,
) -> Proposal {
    let units = match spec.action {
        ActionSpec::ScaleOut { units } => Some(units),
        _ => None,
    };
    let seconds = suggested_timeout(f);
    let fill = Fill::from_finding(f, units, seconds, service);
    let manual = |why: &str| Action::Manual {
        steps: vec![format!("{} ({why})", fill.apply(&spec.title))],
    };
    let action = match &spec.action {
        ActionSpec::ScaleOut { units } => Action::ScaleOut {
            units: *units,
            from: service.and_then(|s| s.capacity),
        },
        ActionSpec::SetTimeout => match (&fill.scope, seconds) {
            (Some(scope), Some(seconds)) => Action::SetTimeout {
                scope: scope.clone(),
                seconds,
                from: current_timeout(f).map(|v| v.round() as u32),
            },
            _ => manual("the scope or the backend's latency is unknown"),
        },
        // Only a change finding's window starts at the change itself; any
        // other window starts at a symptom, after the change to undo.
        ActionSpec::RollbackPolicy => match (&f.subject.policy_scope, f.window, f.kind) {
            (Some(scope), Some(w), FindingKind::ConfigChange) => Action::RollbackPolicy {
                scope: scope.clone(),
                to: w.start,
            },
            _ => manual("no policy change with a known scope and time"),
        },
        ActionSpec::FixNsgRule => Action::FixNsgRule {
            nsg: fill.nsg.clone(),
            rule: fill.rule.clone(),
            change: f.summary.clone(),
        },
        ActionSpec::FixRoute => match (&f.subject.api, &f.subject.operation, &f.subject.backend) {
            (Some(a), Some(o), Some(b)) => Action::FixRoute {
                api: a.clone(),
                operation: o.clone(),
                backend: b.clone(),
            },
            _ => manual("the intended backend is unknown"),
        },
        ActionSpec::RaiseLimit => match &fill.scope {
            Some(scope) => Action::RaiseLimit {
                scope: scope.clone(),
                policy: f.summary.clone(),
            },
            None => manual("the policy scope is unknown"),
        },
        ActionSpec::Manual { steps } => Action::Manual {
            steps: steps.iter().map(|s| fill.apply(s)).collect(),
        },
    };
    Proposal {
        id: format!("{}-{}", f.id, index + 1),
        finding: f.id.clone(),
        title: fill.apply(&spec.title),
        action,
        risk: spec.risk,
        preconditions: spec.preconditions.iter().map(|s| fill.apply(s)).collect(),
        steps: book.diagnosis.iter().map(|s| fill.apply(s)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, Subject, Timestamp, Window};

    #[test]
    fn built_in_playbooks_cover_every_kind_and_parse() {
        let files: Vec<(String, String)> = BUILT_IN
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        let books = Playbooks::from_files(&files).expect("shipped playbooks are valid");
        for kind in FindingKind::ALL {
            assert!(books.get(kind).is_some(), "no playbook for {kind}");
        }
    }

    #[test]
    fn every_file_in_the_folder_is_compiled_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
        let on_disk = std::fs::read_dir(dir).unwrap().count();
        assert_eq!(
            on_disk,
            BUILT_IN.len(),
            "add new playbook files to BUILT_IN"
        );
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let err = parse_playbook("x.yaml", "kind: capacity\ntitle: t\nproposal: []\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.yaml:3:"), "{err}");
        assert!(err.contains("unknown field `proposal`"), "{err}");
    }

    #[test]
    fn unknown_kind_is_named() {
        let files = vec![(
            "y.yaml".to_string(),
            "kind: capacityy\ntitle: t\n".to_string(),
        )];
        let err = Playbooks::from_files(&files).unwrap_err().to_string();
        assert!(err.contains("unknown finding kind `capacityy`"), "{err}");
    }

    #[test]
    fn timeout_proposal_uses_scope_and_latency() {
        let f = Finding::new(
            FindingKind::BackendTimeout,
            Severity::High,
            Subject {
                policy_scope: Some(PolicyScope::Api("orders".into())),
                ..Subject::default()
            },
            "timeouts",
        )
        .evidence(
            Evidence::text("t")
                .value("backend_p99_ms", 7200.0)
                .value("timeout_s", 5.0),
        );
        let props = Playbooks::built_in().propose(&[f], None);
        let set = props
            .iter()
            .find(|p| matches!(p.action, Action::SetTimeout { .. }))
            .unwrap();
        assert_eq!(
            set.action,
            Action::SetTimeout {
                scope: PolicyScope::Api("orders".into()),
                seconds: 11,
                from: Some(5)
            }
        );
        assert_eq!(
            set.title,
            "Set the forward-request timeout at api:orders to 11 s"
        );
    }

    #[test]
    fn timeout_proposal_restores_the_previous_value_and_degrades_without_a_scope() {
        let f = Finding::new(
            FindingKind::BackendTimeout,
            Severity::High,
            Subject::backend("orders-app"),
            "timeouts",
        )
        .evidence(
            Evidence::text("t")
                .value("timeout_seconds", 5.0)
                .value("previous_timeout_s", 30.0),
        );
        let props = Playbooks::built_in().propose(&[f], None);
        assert_eq!(
            props[0].title,
            "Set the forward-request timeout at the scope that sets it to 30 s"
        );
        // Without a scope the action is a manual step, not a guess.
        assert!(matches!(props[0].action, Action::Manual { .. }));
    }

    #[test]
    fn rollback_targets_the_change_time() {
        let t = Timestamp::from_minute(1000);
        let f = Finding::new(
            FindingKind::ConfigChange,
            Severity::Medium,
            Subject::policy(PolicyScope::Global),
            "changed",
        )
        .window(Window { start: t, end: t });
        let props = Playbooks::built_in().propose(&[f], None);
        assert_eq!(
            props[0].action,
            Action::RollbackPolicy {
                scope: PolicyScope::Global,
                to: t
            }
        );
    }

    #[test]
    fn info_findings_get_no_proposal() {
        let f = Finding::new(
            FindingKind::Capacity,
            Severity::Info,
            Subject::default(),
            "fine",
        );
        assert!(Playbooks::built_in().propose(&[f], None).is_empty());
    }
}
