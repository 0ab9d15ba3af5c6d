//! Plain data shared by every layer: what was loaded (`Snapshot`), what was
//! found (`Finding`, `Evidence`) and what is concluded (`Diagnosis`).
//!
//! This module imports nothing else from the crate and does no I/O. Types
//! here are the contract between `collect`, `analyze`, `playbook` and the
//! surfaces; serde shapes of `Finding` and `Diagnosis` are the documented JSON
//! schema of `diagnose --format json`, so renaming a field is a breaking change.

pub mod config;
pub mod diff;
pub mod finding;
pub mod histogram;
pub mod lint_rules;
pub mod network;
pub mod redact;
pub mod time;
pub mod traffic;

pub use config::*;
pub use finding::*;
pub use histogram::{DenseCounts, LatencyHistogram};
pub use time::*;
pub use traffic::*;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a record came from: the file, and the line (1-based) or record
/// index (0-based, for JSON arrays) inside it. Every problem and every piece
/// of evidence carries one so a user can go and look.
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
pub struct Origin {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<u32>,
}

impl Origin {
    pub fn file(file: impl Into<String>) -> Self {
        Origin {
            file: file.into(),
            line: None,
            record: None,
        }
    }
    pub fn at_line(file: impl Into<String>, line: u32) -> Self {
        Origin {
            file: file.into(),
            line: Some(line),
            record: None,
        }
    }
    pub fn at_record(file: impl Into<String>, record: u32) -> Self {
        Origin {
            file: file.into(),
            line: None,
            record: Some(record),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(record) = self.record {
            write!(f, " record {record}")?;
        }
        Ok(())
    }
}

/// A record or file that could not be used, and why. Loading goes on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub origin: Origin,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// The kinds of input `collect` recognises by content.
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
pub enum InputKind {
    GatewayLogs,
    Metrics,
    Service,
    Apis,
    Operations,
    Products,
    Backends,
    Policies,
    NamedValues,
    Nsgs,
    Autoscale,
    ActivityLog,
    Other,
}

impl InputKind {
    pub fn label(self) -> &'static str {
        match self {
            InputKind::GatewayLogs => "gateway log rows",
            InputKind::Metrics => "metric series",
            InputKind::Service => "services",
            InputKind::Apis => "APIs",
            InputKind::Operations => "operations",
            InputKind::Products => "products",
            InputKind::Backends => "backends",
            InputKind::Policies => "policies",
            InputKind::NamedValues => "named values",
            InputKind::Nsgs => "network security groups",
            InputKind::Autoscale => "autoscale settings",
            InputKind::ActivityLog => "activity log events",
            InputKind::Other => "other",
        }
    }
}

/// What a `collect` run loaded: counts per kind, the time range of the
/// time-stamped data, the files read and every rejected record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Count of accepted items per kind (rows, series, resources, events).
    pub counts: BTreeMap<InputKind, u64>,
    pub files: u64,
    /// Earliest and latest timestamp seen in logs, metrics and events.
    pub time_range: Option<Window>,
    /// Total rejected records; `problems` may be capped, this is not.
    pub rejected: u64,
    pub problems: Vec<Problem>,
    /// Set when the data is the demo built into the binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<String>,
}

impl LoadReport {
    /// Most problems kept verbatim; beyond this only `rejected` grows.
    pub const MAX_PROBLEMS: usize = 1000;

    pub fn count(&mut self, kind: InputKind, n: u64) {
        *self.counts.entry(kind).or_default() += n;
    }

    pub fn reject(&mut self, problem: Problem) {
        self.rejected += 1;
        if self.problems.len() < Self::MAX_PROBLEMS {
            self.problems.push(problem);
        }
    }

    pub fn see_time(&mut self, t: Timestamp) {
        self.time_range = Some(match self.time_range {
            None => Window { start: t, end: t },
            Some(w) => Window {
                start: w.start.min(t),
                end: w.end.max(t),
            },
        });
    }

    pub fn merge(&mut self, other: LoadReport) {
        for (k, v) in other.counts {
            self.count(k, v);
        }
        self.files += other.files;
        if let Some(w) = other.time_range {
            self.see_time(w.start);
            self.see_time(w.end);
        }
        self.rejected += other.rejected;
        for p in other.problems {
            if self.problems.len() < Self::MAX_PROBLEMS {
                self.problems.push(p);
            }
        }
        if self.demo.is_none() {
            self.demo = other.demo;
        }
    }
}

/// Everything known about one gateway instance at one moment: configuration,
/// its history, metrics and aggregated traffic. Built by `collect`, read by
/// `analyze`; never mutated by analysis.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub service: Option<Service>,
    pub apis: Vec<Api>,
    pub operations: Vec<Operation>,
    pub products: Vec<Product>,
    pub backends: Vec<Backend>,
    pub policies: Vec<PolicyDoc>,
    /// Policy documents analysis does not use because another file gives
    /// the same scope (each has a `Problem` saying so); `lint` still lints them.
    pub shadowed_policies: Vec<PolicyDoc>,
    pub named_values: Vec<NamedValue>,
    pub nsgs: Vec<Nsg>,
    pub autoscale: Vec<AutoscaleSetting>,
    pub metrics: Vec<MetricSeries>,
    pub changes: Vec<Change>,
    /// Earlier versions of configuration objects (history folders, git
    /// logs of apiops repositories, live snapshots), oldest first per object.
    pub history: Vec<ConfigHistory>,
    pub traffic: Traffic,
    pub loaded: LoadReport,
    /// Where the service's diagnostic settings send its gateway logs (a
    /// live pull reads them); `diagnose` queries the logs there when no
    /// `--logs` is given.
    pub log_workspaces: Vec<LogWorkspace>,
}

impl Snapshot {
    /// Adds everything from `other` (a second file's worth of data).
    pub fn merge(&mut self, other: Snapshot) {
        if other.service.is_some() {
            self.service = other.service;
        }
        self.apis.extend(other.apis);
        self.operations.extend(other.operations);
        self.products.extend(other.products);
        self.backends.extend(other.backends);
        self.policies.extend(other.policies);
        self.shadowed_policies.extend(other.shadowed_policies);
        self.named_values.extend(other.named_values);
        self.nsgs.extend(other.nsgs);
        self.autoscale.extend(other.autoscale);
        self.metrics.extend(other.metrics);
        self.changes.extend(other.changes);
        merge_histories(&mut self.history, other.history);
        self.traffic.merge(other.traffic);
        self.loaded.merge(other.loaded);
        for w in other.log_workspaces {
            if !self.log_workspaces.contains(&w) {
                self.log_workspaces.push(w);
            }
        }
    }

    pub fn api(&self, id: &str) -> Option<&Api> {
        self.apis.iter().find(|a| a.id.eq_ignore_ascii_case(id))
    }

    pub fn backend(&self, id: &str) -> Option<&Backend> {
        self.backends.iter().find(|b| b.id.eq_ignore_ascii_case(id))
    }

    pub fn policy(&self, scope: &PolicyScope) -> Option<&PolicyDoc> {
        self.policies.iter().find(|p| &p.scope == scope)
    }
}
