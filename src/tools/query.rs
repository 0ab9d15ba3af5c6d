//! Typed read-only queries for the surfaces that draw rather than ask (the
//! dashboard's views, the offline answerer's facts): the diagnosis and the
//! traffic of the data before an instant, the app behind each backend, and
//! an operation's effective policy with the file:line of each statement.
//! The views, the offline answerer and the `policies` tool read these
//! instead of `analyze`; a backend's health is
//! [`Diagnosis::backend_health`] everywhere. Pure.

use crate::analyze::{self, Ctx, Options, policy};
use crate::model::{ChangeKind, Diagnosis, MetricSource, Origin, PolicyScope, Snapshot, Timestamp};
use crate::playbook::{self, Playbooks};
use std::collections::BTreeMap;

pub use crate::analyze::backends::AppHealth;
pub use crate::analyze::rollup::{MinuteRow, Rollup, Stats};

/// The analysis scope of the data before `until` (all data when `None`).
fn before(until: Option<Timestamp>) -> Options {
    Options { since: None, until }
}

/// The diagnosis of the data before `until` (all data when `None`) by the
/// playbooks: what an [`Instance`](super::Instance) holds.
pub fn diagnose(snapshot: &Snapshot, playbooks: &Playbooks, until: Option<Timestamp>) -> Diagnosis {
    playbook::diagnose(snapshot, &before(until), playbooks)
}

/// Traffic per operation and per backend before `until` (all data when
/// `None`), minute by minute.
pub fn traffic(snapshot: &Snapshot, until: Option<Timestamp>) -> Rollup {
    analyze::rollup(snapshot, &before(until))
}

/// The app behind one backend: its metric series and deployments (indices
/// into `Snapshot::metrics` and `Snapshot::changes`) and what its own
/// metrics say, by the analysis' one rule (`AppHealth`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppInfo {
    pub series: Vec<usize>,
    pub deployments: Vec<usize>,
    pub health: Option<AppHealth>,
}

/// All data: its traffic, and the app behind each backend.
#[derive(Clone, Debug, Default)]
pub struct BackendApps {
    pub traffic: Rollup,
    /// Backend name (lower case: entities, then hosts seen in traffic) →
    /// its app, for those with app metrics or deployments.
    pub apps: BTreeMap<String, AppInfo>,
}

/// The traffic of all data and the app behind every backend name known.
pub fn backend_apps(snapshot: &Snapshot) -> BackendApps {
    let options = Options::default();
    let ctx = Ctx::new(snapshot, &options);
    let mut names: Vec<String> = snapshot
        .backends
        .iter()
        .map(|b| b.id.to_ascii_lowercase())
        .chain(
            ctx.rollup
                .backends
                .iter()
                .map(|b| b.backend.to_ascii_lowercase()),
        )
        .collect();
    names.sort();
    names.dedup();
    let mut apps = BTreeMap::new();
    for name in names {
        let series: Vec<usize> = snapshot
            .metrics
            .iter()
            .enumerate()
            .filter(|(_, m)| m.source == MetricSource::BackendApp)
            .filter(|(_, m)| {
                analyze::apps::app_matches(
                    &ctx,
                    &name,
                    m.resource_id.as_deref(),
                    m.resource.as_deref(),
                )
            })
            .map(|(i, _)| i)
            .collect();
        let deployments: Vec<usize> = snapshot
            .changes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == ChangeKind::Deployment)
            .filter(|(_, c)| {
                analyze::apps::app_matches(&ctx, &name, c.resource_id.as_deref(), None)
            })
            .map(|(i, _)| i)
            .collect();
        if series.is_empty() && deployments.is_empty() {
            continue;
        }
        let health = analyze::backends::app_health(&ctx, &name, None);
        apps.insert(
            name,
            AppInfo {
                series,
                deployments,
                health,
            },
        );
    }
    BackendApps {
        traffic: ctx.rollup,
        apps,
    }
}

/// One statement of an effective policy and where it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// The element name (`forward-request`, `rate-limit-by-key`…).
    pub name: String,
    /// Its attributes as written.
    pub attributes: Vec<(String, String)>,
    /// The scope whose document holds it (`Fragment` for fragment content).
    pub scope: PolicyScope,
    /// `inbound`, `backend`, `outbound` or `on-error`.
    pub section: &'static str,
    /// Inside `choose/when|otherwise`: runs only on some requests.
    pub conditional: bool,
    /// Inside another statement, not at its section's top level.
    pub nested: bool,
    /// File and absolute line of the element.
    pub origin: Origin,
}

impl Placement {
    /// The value of an attribute as written.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where `set-backend-service` sends a request, and where that is written.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendTarget {
    /// The `backend-id` or the `base-url` as written.
    pub target: String,
    pub scope: PolicyScope,
    pub conditional: bool,
    pub origin: Origin,
}

/// The policy an operation runs, typed: what the `policies` tool's
/// effective rows say, with the file:line of each statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EffectivePolicy {
    pub api: String,
    pub operation: String,
    /// The forward-request timeout in force (seconds) and the scope that
    /// sets it; `None`: no forward-request, requests never reach a backend.
    pub forward_timeout: Option<(f64, PolicyScope)>,
    /// Every statement, nested ones included, in run order.
    pub statements: Vec<Placement>,
    /// `set-backend-service` targets, in run order.
    pub backend_targets: Vec<BackendTarget>,
    /// The scopes that contributed, broad to narrow.
    pub scopes: Vec<PolicyScope>,
    /// Things a reader should know (several products, unknown fragments…).
    pub notes: Vec<String>,
}

impl EffectivePolicy {
    /// Every statement with this element name, nested ones included.
    pub fn find<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Placement> + 'a {
        self.statements.iter().filter(move |p| p.name == name)
    }
}

/// The effective policy of one operation (ids as configured).
pub fn effective_policy(snapshot: &Snapshot, api: &str, op: &str) -> EffectivePolicy {
    let e = policy::effective_policy(snapshot, api, op);
    EffectivePolicy {
        api: e.api.clone(),
        operation: e.operation.clone(),
        forward_timeout: e.forward_timeout(),
        statements: e
            .all()
            .iter()
            .map(|p| Placement {
                name: p.element.name.clone(),
                attributes: p.element.attrs.clone(),
                scope: p.scope.clone(),
                section: p.section.as_str(),
                conditional: p.conditional,
                nested: p.nested,
                origin: p.origin.clone(),
            })
            .collect(),
        backend_targets: e
            .backend_targets()
            .into_iter()
            .map(|t| BackendTarget {
                target: t.target,
                scope: t.scope,
                conditional: t.conditional,
                origin: t.origin,
            })
            .collect(),
        scopes: e.scopes.clone(),
        notes: e.notes.clone(),
    }
}
