//! Analysis: pure functions from a `Snapshot` to `Finding`s. No I/O, no
//! clock (time comes in through `Options`). The home of polars and statrs.

pub mod detect;
pub mod network;
pub mod policy;
pub mod rollup;
pub mod scaling;
pub mod stats;

pub use rollup::{Rollup, rollup};

use crate::model::{Finding, RouteEntry, Snapshot, Story, Timestamp};

/// What an analysis run looks at.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only data at or after this instant.
    pub since: Option<Timestamp>,
    /// Only data before this instant.
    pub until: Option<Timestamp>,
}

/// Every analyzer over the snapshot; findings most urgent first.
pub fn analyze(snapshot: &Snapshot, options: &Options) -> Vec<Finding> {
    let _ = (snapshot, options);
    Vec::new()
}

/// For every operation: where it routes, and that backend's health.
pub fn backend_map(snapshot: &Snapshot) -> Vec<RouteEntry> {
    let _ = snapshot;
    Vec::new()
}

/// Root-cause stories tying symptoms to changes and backend faults.
pub fn stories(snapshot: &Snapshot, findings: &[Finding]) -> Vec<Story> {
    let _ = (snapshot, findings);
    Vec::new()
}
