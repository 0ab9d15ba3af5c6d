//! The check after: on fresh data over a stated window, did the finding that
//! motivated the fix clear? Pure: the caller loads the fresh snapshot.
//! Never a false all-clear: with no fresh data in the window, or none of the
//! kind the finding is judged on, the verdict is "cannot tell".

use super::plan::Plan;
use crate::model::{Diagnosis, FindingKind, InputKind, Snapshot, Timestamp};
use serde::Serialize;

/// The verdict on fresh data.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    /// The finding is gone from the window.
    Cleared { window: String, rows: u64 },
    /// Still there: the fix did not help (offer undo).
    NotCleared { window: String, summary: String },
    /// Nothing to judge on.
    CannotTell { why: String },
}

impl Verdict {
    pub fn status(&self) -> &'static str {
        match self {
            Verdict::Cleared { .. } => "cleared",
            Verdict::NotCleared { .. } => "not_cleared",
            Verdict::CannotTell { .. } => "cannot_tell",
        }
    }
}

/// The `since` bound of the last `minutes` of the fresh data.
pub fn window_start(snapshot: &Snapshot, minutes: u32) -> Option<Timestamp> {
    let end = snapshot.loaded.time_range?.end;
    Some(Timestamp(end.0 - i64::from(minutes) * 60_000))
}

/// What data a finding kind is judged on.
fn needs(kind: FindingKind) -> &'static [InputKind] {
    use FindingKind as K;
    match kind {
        K::Capacity | K::ScalingConfig => &[InputKind::Metrics, InputKind::GatewayLogs],
        K::NetworkGap => &[InputKind::Nsgs],
        K::MalformedPolicy | K::PolicyRisk | K::PolicyInheritance => &[InputKind::Policies],
        _ => &[InputKind::GatewayLogs, InputKind::Metrics],
    }
}

/// Judges the finding `id` of `kind` (first seen up to `seen_until`)
/// against a diagnosis of fresh data restricted to the last `minutes`.
pub fn judge(
    id: &str,
    kind: FindingKind,
    seen_until: Option<Timestamp>,
    fresh: &Snapshot,
    diagnosis: &Diagnosis,
    minutes: u32,
) -> Verdict {
    let loaded = &fresh.loaded;
    let have = needs(kind)
        .iter()
        .any(|k| loaded.counts.get(k).copied().unwrap_or(0) > 0);
    if !have {
        return Verdict::CannotTell {
            why: format!(
                "the fresh data holds no {} to judge a {kind} finding on",
                needs(kind)
                    .iter()
                    .map(|k| k.label())
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        };
    }
    let timed = needs(kind)
        .iter()
        .any(|k| matches!(k, InputKind::GatewayLogs | InputKind::Metrics));
    let Some(range) = loaded.time_range.filter(|_| timed) else {
        if !timed {
            // Configuration findings are judged on the configuration itself.
            return judge_present(id, diagnosis, "the current configuration".into(), 0);
        }
        return Verdict::CannotTell {
            why: "the fresh data has no timestamps".into(),
        };
    };
    if let Some(end) = seen_until
        && range.end <= end
    {
        return Verdict::CannotTell {
            why: format!(
                "the fresh data ends at {}, not after the finding was last seen ({end}); wait for newer data",
                range.end
            ),
        };
    }
    let window = format!("{minutes} min to {}", range.end);
    judge_present(id, diagnosis, window, fresh.traffic.rows)
}

fn judge_present(id: &str, diagnosis: &Diagnosis, window: String, rows: u64) -> Verdict {
    match diagnosis.findings.iter().find(|f| f.id == id) {
        Some(f) => Verdict::NotCleared {
            window,
            summary: f.summary.clone(),
        },
        None => Verdict::Cleared { window, rows },
    }
}

/// The finding kind an action fixes (for plans recorded without one).
pub fn kind_of(action: &str) -> FindingKind {
    use FindingKind as K;
    match action.trim_start_matches("undo_") {
        "scale_out" => K::Capacity,
        "set_timeout" => K::BackendTimeout,
        "rollback_policy" => K::ConfigChange,
        "fix_nsg_rule" => K::NetworkGap,
        "fix_route" => K::RouteMismatch,
        "raise_limit" => K::Quota,
        _ => K::ErrorSpike,
    }
}

/// Re-diagnoses `fresh` over the last `minutes` (default: the plan's
/// window) and judges whether the finding `plan` targeted cleared; with the
/// sentence to show and audit (`apply` is the apply's audit id, for undo).
pub fn on_fresh(
    plan: &Plan,
    apply: &str,
    fresh: &Snapshot,
    playbooks: &crate::playbook::Playbooks,
    minutes: Option<u32>,
) -> (Verdict, String) {
    let minutes = minutes.unwrap_or(plan.verify.window_minutes);
    let options = crate::analyze::Options {
        since: window_start(fresh, minutes),
        until: None,
    };
    let diagnosis = crate::playbook::diagnose(fresh, &options, playbooks);
    // A finding's id is a fingerprint of its kind and subject: the same
    // problem on fresh data has the same id.
    let kind = plan.verify.kind.unwrap_or_else(|| kind_of(&plan.action));
    let verdict = judge(
        &plan.finding,
        kind,
        plan.verify.seen_until,
        fresh,
        &diagnosis,
        minutes,
    );
    let message = match &verdict {
        Verdict::Cleared { window, rows } => {
            format!(
                "finding {} cleared over {window} ({rows} log rows)",
                plan.finding
            )
        }
        Verdict::NotCleared { window, summary } => format!(
            "finding {} did NOT clear over {window}: {summary}. Undo: `apimedic remediate undo {apply}`",
            plan.finding
        ),
        Verdict::CannotTell { why } => {
            format!(
                "cannot tell whether finding {} cleared: {why}",
                plan.finding
            )
        }
    };
    (verdict, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, Severity, Subject, Window};

    #[test]
    fn no_data_is_never_an_all_clear() {
        let f = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::operation("a", "b"),
            "x",
        );
        let v = judge(
            &f.id,
            f.kind,
            None,
            &Snapshot::default(),
            &Diagnosis::default(),
            15,
        );
        assert!(matches!(v, Verdict::CannotTell { .. }), "{v:?}");
    }

    #[test]
    fn present_or_gone() {
        let mut f = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::operation("a", "b"),
            "x",
        );
        f.window = Some(Window {
            start: Timestamp::from_minute(10),
            end: Timestamp::from_minute(20),
        });
        let mut snap = Snapshot::default();
        snap.loaded.counts.insert(InputKind::GatewayLogs, 100);
        snap.loaded.time_range = Some(Window {
            start: Timestamp::from_minute(30),
            end: Timestamp::from_minute(60),
        });
        let end = f.window.map(|w| w.end);
        let mut d = Diagnosis::default();
        assert!(matches!(
            judge(&f.id, f.kind, end, &snap, &d, 15),
            Verdict::Cleared { .. }
        ));
        d.findings.push(f.clone());
        assert!(matches!(
            judge(&f.id, f.kind, end, &snap, &d, 15),
            Verdict::NotCleared { .. }
        ));
        // Data that stops before the finding's window ended says nothing new.
        snap.loaded.time_range = Some(Window {
            start: Timestamp::from_minute(0),
            end: Timestamp::from_minute(20),
        });
        assert!(matches!(
            judge(&f.id, f.kind, end, &snap, &Diagnosis::default(), 15),
            Verdict::CannotTell { .. }
        ));
    }
}
