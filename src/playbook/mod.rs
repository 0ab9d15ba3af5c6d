//! Playbooks: files in `playbooks/` that map a finding kind to diagnosis
//! steps and remediation proposals. They are data a user may edit; this
//! module loads and validates them (unknown keys and kinds are errors naming
//! file and line) and turns findings into concrete `Proposal`s (pure).
//!
//! The defaults are compiled into the binary, so apimedic works anywhere;
//! `--playbooks DIR` replaces them with a folder of the user's.

pub mod apply;
mod propose;

use crate::analyze;
use crate::model::{Diagnosis, Finding, FindingKind, Proposal, Risk, Snapshot, Story};
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
    /// Conditions that must hold for the proposal to make sense; a proposal
    /// whose condition is known false is not shown.
    #[serde(default)]
    pub when: Vec<Condition>,
}

/// What a proposal may depend on, checked against what the diagnosis knows.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// A deployment precedes the symptom (a suspect of its story, or a
    /// deployment within the hour before its onset).
    DeploymentBefore,
    /// The finding is a policy change whose previous version is known.
    PolicyChangeKnown,
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
        let fill = propose::Fill::from_finding(finding);
        self.get(finding.kind)
            .map(|b| b.diagnosis.iter().map(|s| fill.apply(s)).collect())
            .unwrap_or_default()
    }

    /// Concrete proposals (pure), ranked by the story they serve: stories
    /// in their order, each story's own fix first, then proposals for
    /// findings outside any story in finding order. Proposals whose
    /// condition is known false are left out; duplicates merge. Info
    /// findings get none: there is nothing to remediate.
    pub fn propose(
        &self,
        snapshot: &Snapshot,
        findings: &[Finding],
        stories: &[Story],
    ) -> Vec<Proposal> {
        propose::propose(self, snapshot, findings, stories)
    }
}

/// The whole pipeline after loading (pure): findings, backend map, stories,
/// the verdict and proposals for a snapshot.
pub fn diagnose(
    snapshot: &Snapshot,
    options: &analyze::Options,
    playbooks: &Playbooks,
) -> Diagnosis {
    let analyze::Judged {
        findings,
        backend_map,
        backends,
        stories,
        verdict,
    } = analyze::analyze_judged(snapshot, options);
    let proposals = playbooks.propose(snapshot, &findings, &stories);
    Diagnosis {
        verdict,
        findings,
        stories,
        backend_map,
        backends,
        proposals,
        loaded: snapshot.loaded.clone(),
    }
}

/// Parses one playbook, with serde's line and column in the error.
pub fn parse_playbook(name: &str, text: &str) -> anyhow::Result<Playbook> {
    let book = serde_yaml_ng::from_str::<Playbook>(text).map_err(|e| match e.location() {
        Some(loc) => anyhow::anyhow!("{name}:{}:{}: {e}", loc.line(), loc.column()),
        None => anyhow::anyhow!("{name}: {e}"),
    })?;
    for t in book.texts() {
        if let Some(p) = unknown_placeholder(t) {
            let line = text
                .lines()
                .position(|l| l.contains(&p))
                .map(|i| format!(":{}", i + 1))
                .unwrap_or_default();
            anyhow::bail!(
                "{name}{line}: unknown placeholder `{p}`: use one of {} (or write the text without braces)",
                PLACEHOLDERS.join(", ")
            );
        }
    }
    Ok(book)
}

/// The placeholders a finding fills (`propose::Fill::apply`); any other
/// `{word}` would reach a reader unfilled, so loading rejects it.
pub const PLACEHOLDERS: [&str; 8] = [
    "{api}",
    "{operation}",
    "{backend}",
    "{scope}",
    "{nsg}",
    "{rule}",
    "{units}",
    "{seconds}",
];

/// The first `{word}` in `text` that is not a known placeholder.
fn unknown_placeholder(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else { break };
        let word = &after[..j];
        if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let p = format!("{{{word}}}");
            if !PLACEHOLDERS.contains(&p.as_str()) {
                return Some(p);
            }
        }
        rest = after;
    }
    None
}

impl Playbook {
    /// Every text a reader sees, before filling.
    fn texts(&self) -> impl Iterator<Item = &str> {
        let proposals = self.proposals.iter().flat_map(|p| {
            let steps: &[String] = match &p.action {
                ActionSpec::Manual { steps } => steps,
                _ => &[],
            };
            std::iter::once(p.title.as_str())
                .chain(p.preconditions.iter().map(String::as_str))
                .chain(steps.iter().map(String::as_str))
        });
        std::iter::once(self.title.as_str())
            .chain(self.diagnosis.iter().map(String::as_str))
            .chain(proposals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Action, Evidence, PolicyScope, Proposal, Severity, Subject, Timestamp, Window,
    };

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
    fn unknown_placeholder_is_an_error_with_line() {
        let err = parse_playbook(
            "z.yaml",
            "kind: capacity\ntitle: t\ndiagnosis:\n  - check {gateway} load\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("z.yaml:4: unknown placeholder `{gateway}`"),
            "{err}"
        );
        // JSON braces in a step are not placeholders.
        assert!(
            parse_playbook(
                "j.yaml",
                "kind: capacity\ntitle: t\ndiagnosis:\n  - 'send {\"a\": 1}'\n"
            )
            .is_ok()
        );
    }

    /// Every placeholder the loader accepts is filled, from a finding that
    /// knows nothing as from one that knows everything.
    #[test]
    fn every_known_placeholder_is_filled() {
        let all = PLACEHOLDERS.join(" ");
        let bare = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::default(),
            "x",
        );
        let filled = propose::Fill::from_finding(&bare).apply(&all);
        assert!(!filled.contains('{'), "{filled}");
        for (_, book) in Playbooks::built_in().books {
            for t in book.texts() {
                let out = propose::Fill::from_finding(&bare).apply(t);
                assert!(
                    unknown_placeholder(t).is_none()
                        && PLACEHOLDERS.iter().all(|p| !out.contains(p)),
                    "{out}"
                );
            }
        }
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

    fn propose(s: &Snapshot, f: &[Finding], stories: &[Story]) -> Vec<Proposal> {
        Playbooks::built_in().propose(s, f, stories)
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
        let props = propose(&Snapshot::default(), &[f], &[]);
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
        // The whole policy it would PUT, and the command to do it.
        let doc = set.document.as_ref().unwrap();
        assert!(
            doc.text.contains("<forward-request timeout=\"11\" />"),
            "{}",
            doc.text
        );
        assert!(
            set.command
                .as_deref()
                .unwrap()
                .starts_with("az rest --method put")
        );
        assert!(set.needs[0].starts_with("APIM_ID"));
    }

    #[test]
    fn timeout_proposal_without_a_scope_is_not_a_guess() {
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
        // No traffic, no policy: nothing says where the timeout is set.
        assert!(propose(&Snapshot::default(), &[f], &[]).is_empty());
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
        let props = propose(&Snapshot::default(), &[f], &[]);
        assert_eq!(
            props[0].action,
            Action::RollbackPolicy {
                scope: PolicyScope::Global,
                to: t
            }
        );
    }

    #[test]
    fn rollback_is_not_proposed_without_a_policy_change() {
        // A deployment change has no policy to roll back.
        let f = Finding::new(
            FindingKind::ConfigChange,
            Severity::Medium,
            Subject::backend("orders-app"),
            "deployed",
        )
        .window(Window::minutes(10, 11));
        assert!(propose(&Snapshot::default(), &[f], &[]).is_empty());
    }

    #[test]
    fn deployment_rollback_only_when_a_deployment_precedes() {
        let f = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::operation("orders", "get"),
            "spike",
        )
        .window(Window::minutes(100, 120));
        let none = propose(&Snapshot::default(), std::slice::from_ref(&f), &[]);
        assert!(
            none.iter()
                .all(|p| !p.title.contains("Roll back the deployment")),
            "{none:?}"
        );
        let mut s = Snapshot::default();
        s.changes.push(crate::model::Change {
            time: Timestamp::from_minute(90),
            kind: crate::model::ChangeKind::Deployment,
            operation: "Microsoft.App/containerApps/write".into(),
            ..crate::model::Change::default()
        });
        let some = propose(&s, &[f], &[]);
        assert!(
            some.iter()
                .any(|p| p.title.contains("Roll back the deployment")),
            "{some:?}"
        );
    }

    #[test]
    fn story_fix_comes_first_and_duplicates_merge() {
        // An NSG story: the rule fix leads even though a spike outranks
        // the network finding in finding order.
        let spike = Finding::new(
            FindingKind::ErrorSpike,
            Severity::Critical,
            Subject::operation("orders", "get"),
            "spike",
        )
        .window(Window::minutes(100, 120));
        let mut rule = Evidence::text("allow it");
        rule.excerpt = Some(
            serde_json::json!({"name":"Allow_Backend","properties":{"protocol":"Tcp","sourcePortRange":"*","sourceAddressPrefix":"VirtualNetwork","destinationAddressPrefix":"10.0.0.4","destinationPortRanges":["443"],"access":"Allow","priority":190,"direction":"Outbound"}})
                .to_string(),
        );
        let gap = Finding::new(
            FindingKind::NetworkGap,
            Severity::High,
            Subject {
                nsg: Some("apim-nsg".into()),
                rule: Some("deny-all-out".into()),
                ..Subject::default()
            },
            "denied",
        )
        .evidence(rule);
        let twin = Finding::new(
            FindingKind::NetworkGap,
            Severity::High,
            Subject {
                nsg: Some("apim-nsg".into()),
                rule: Some("deny-all-out".into()),
                backend: Some("b".into()),
                ..Subject::default()
            },
            "denied again",
        )
        .evidence(gap.evidence[0].clone());
        let story = Story {
            id: "s1".into(),
            title: "NSG rule deny-all-out blocks backend b".into(),
            narrative: String::new(),
            severity: Severity::Critical,
            confidence: 0.9,
            findings: vec![gap.id.clone(), twin.id.clone(), spike.id.clone()],
            suspects: vec![],
            timeline: None,
        };
        let props = propose(&Snapshot::default(), &[spike, gap, twin], &[story]);
        assert!(
            matches!(props[0].action, Action::AddNsgRule { priority: 190, .. }),
            "{props:?}"
        );
        assert_eq!(props[0].story.as_deref(), Some("s1"));
        assert_eq!(
            props
                .iter()
                .filter(|p| matches!(p.action, Action::AddNsgRule { .. }))
                .count(),
            1,
            "the same rule twice is one proposal"
        );
        assert!(
            props[0]
                .document
                .as_ref()
                .unwrap()
                .text
                .contains("\"priority\": 190")
        );
        assert!(
            props[0]
                .command
                .as_deref()
                .unwrap()
                .contains("--priority 190")
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
        assert!(propose(&Snapshot::default(), &[f], &[]).is_empty());
    }
}
