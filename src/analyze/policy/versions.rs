//! The versions of a policy a configuration change moved between: the XML
//! before and after an activity-log write (from the event, the history of
//! writes to the same scope, or the loaded policy) and their unified diff.
//! Pure.

use crate::model::{Change, Snapshot};

/// The policy XML before a change: the event's own `policy_before`, else the
/// `policy_after` of the previous write to the same scope, else — when the
/// event carries the new XML, it is the last write to its scope and the
/// loaded policy differs from it — the loaded policy (the export predates
/// the write, or the write was rolled back since; either way it is the
/// version the write replaced or returned to).
pub fn policy_before(snapshot: &Snapshot, c: &Change) -> Option<String> {
    if let Some(b) = &c.policy_before {
        return Some(b.clone());
    }
    let scope = c.policy_scope.as_ref()?;
    // The previous write's XML; a Started event of this same write (same
    // XML) is not a previous version.
    let previous = snapshot
        .changes
        .iter()
        .filter(|p| p.policy_scope.as_ref() == Some(scope) && p.time < c.time)
        .filter(|p| p.policy_after.is_some() && p.policy_after != c.policy_after)
        .max_by_key(|p| p.time);
    if let Some(p) = previous {
        return p.policy_after.clone();
    }
    let after = c.policy_after.as_deref()?;
    let later = snapshot
        .changes
        .iter()
        .any(|p| p.policy_scope.as_ref() == Some(scope) && p.time > c.time);
    let current = snapshot.policy(scope)?;
    (!later && normalise(&current.xml) != normalise(after)).then(|| current.xml.clone())
}

/// The policy XML a change set: the event's `policy_after`, else the loaded
/// policy when no later write to that scope is known.
pub fn policy_after(snapshot: &Snapshot, c: &Change) -> Option<String> {
    if let Some(a) = &c.policy_after {
        return Some(a.clone());
    }
    let scope = c.policy_scope.as_ref()?;
    let later = snapshot
        .changes
        .iter()
        .any(|p| p.policy_scope.as_ref() == Some(scope) && p.time > c.time);
    (!later)
        .then(|| snapshot.policy(scope).map(|d| d.xml.clone()))
        .flatten()
}

fn normalise(xml: &str) -> String {
    xml.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Unified diff of a policy change, when both versions are known.
pub fn policy_diff(snapshot: &Snapshot, c: &Change) -> Option<String> {
    let before = policy_before(snapshot, c)?;
    let after = policy_after(snapshot, c)?;
    let scope = c
        .policy_scope
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    crate::model::diff::unified(
        &normalise(&before),
        &normalise(&after),
        &format!("{scope} before"),
        &format!("{scope} after {}", c.time),
    )
}
