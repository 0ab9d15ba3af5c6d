//! APIM policy XML: expression-aware reading (`reader`), the effective
//! policy of an operation with `<base />` resolved (`effective`), and the
//! linter behind `apimedic lint` (`catalog` of elements, `lint`; its rule
//! table is shared vocabulary, `model::lint_rules`),
//! and the versions a policy write moved between (`versions`).
//! Pure: no I/O, no clock.

pub mod catalog;
pub mod effective;
pub mod lint;
pub mod reader;
pub mod versions;

pub use effective::{
    BackendTarget, EffectivePolicy, Placed, PolicyIndex, Section, TargetKind, effective_policy,
    timeout_in_xml,
};
pub use lint::{Mode, lint};
pub use reader::{Element, Expression, ParsedPolicy, PolicyProblem, ProblemKind, parse_policy};
pub use versions::{policy_after, policy_before, policy_diff};

use crate::model::{Finding, Snapshot};

/// All lint findings for every policy in the snapshot (Audit mode severities).
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    lint(snapshot, Mode::Audit)
}
