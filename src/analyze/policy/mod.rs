//! APIM policy XML: expression-aware reading (`reader`), the effective
//! policy of an operation with `<base />` resolved (`effective`), and the
//! linter behind `apimedic lint` (`rules`, `lint`). Pure: no I/O.

pub mod effective;
pub mod reader;

pub use effective::{
    BackendTarget, EffectivePolicy, Placed, Section, TargetKind, effective_policy,
};
pub use reader::{Element, Expression, ParsedPolicy, PolicyProblem, ProblemKind, parse_policy};

use crate::model::{Finding, Snapshot};

/// All lint findings for every policy in the snapshot (Audit mode severities).
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    let _ = snapshot;
    Vec::new()
}
