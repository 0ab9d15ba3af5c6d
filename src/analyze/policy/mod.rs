//! APIM policy XML: expression-aware reading (`reader`), the effective
//! policy of an operation with `<base />` resolved (`effective`), and the
//! linter behind `apimedic lint` (`catalog` of elements, `rules`, `lint`).
//! Pure: no I/O, no clock.

pub mod catalog;
pub mod effective;
pub mod lint;
pub mod reader;
pub mod rules;

pub use effective::{
    BackendTarget, EffectivePolicy, Placed, PolicyIndex, Section, TargetKind, effective_policy,
};
pub use lint::{Mode, lint};
pub use reader::{Element, Expression, ParsedPolicy, PolicyProblem, ProblemKind, parse_policy};
pub use rules::{INHERITANCE_RULE, Rule, rule_by_id, rules};

use crate::model::{Finding, Snapshot};

/// All lint findings for every policy in the snapshot (Audit mode severities).
pub fn findings(snapshot: &Snapshot) -> Vec<Finding> {
    lint(snapshot, Mode::Audit)
}
