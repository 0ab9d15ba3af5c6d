//! Alert rules (pure): findings seen on each tick become alerts with a
//! Prometheus-style lifecycle, pending → firing → resolved, with `for` and
//! `keep_firing_for`. An alert's identity is its finding's fingerprint
//! (kind + subject), never its text, so a reworded summary is the same
//! alert. Deduplication, re-notification and grouping live here; delivery
//! does not. No I/O, no clock: `now` comes in.

use super::config::Rules;
use crate::model::{Finding, FindingKind, Severity, Subject, Timestamp, Window};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where an alert is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Seen, waiting out `for`.
    Pending,
    Firing,
}

/// One alert the book tracks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    pub kind: FindingKind,
    pub severity: Severity,
    pub subject: Subject,
    pub summary: String,
    pub evidence: Vec<String>,
    /// The finding's window in data time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    pub state: AlertState,
    /// When the finding was first seen (wall time).
    pub active_at: Timestamp,
    /// When the finding was last seen.
    pub last_seen: Timestamp,
    /// When the last firing notification was emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<Timestamp>,
    /// Severity of the last firing notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_severity: Option<Severity>,
}

/// Firing or resolved, as receivers name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One notification-worthy change of an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub status: Status,
    pub fingerprint: String,
    pub kind: FindingKind,
    pub severity: Severity,
    pub subject: Subject,
    pub summary: String,
    pub evidence: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// When the alert became active (wall time).
    pub starts_at: Timestamp,
    /// When it resolved; `None` while firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// When this event was emitted.
    pub at: Timestamp,
    /// True for a re-notification of an alert already announced.
    #[serde(default)]
    pub repeat: bool,
    /// Alertmanager-style labels: alertname, severity, fingerprint, subject keys.
    pub labels: BTreeMap<String, String>,
    /// Grouping key (values of the rules' `group_by` labels).
    pub group: String,
    pub generator_url: String,
}

/// The labels of an alert: `alertname` (the finding kind), `severity`,
/// `fingerprint`, `source`, and every subject key that is set.
pub fn labels(
    kind: FindingKind,
    severity: Severity,
    fp: &str,
    subject: &Subject,
) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("alertname".to_string(), kind.as_str().to_string());
    l.insert("severity".to_string(), severity.as_str().to_string());
    l.insert("fingerprint".to_string(), fp.to_string());
    l.insert("source".to_string(), "apimedic".to_string());
    for (k, v) in subject.pairs() {
        l.insert(k.to_string(), v);
    }
    l
}

/// The alerts being tracked, and the rules they follow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBook {
    pub alerts: BTreeMap<String, Alert>,
    #[serde(skip)]
    pub rules: Rules,
}

fn elapsed(from: Timestamp, to: Timestamp) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(to.0 - from.0).unwrap_or(0))
}

impl AlertBook {
    pub fn new(rules: Rules) -> Self {
        AlertBook {
            alerts: BTreeMap::new(),
            rules,
        }
    }

    /// Alerts currently firing.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .values()
            .filter(|a| a.state == AlertState::Firing)
    }

    /// How many alerts are pending and firing.
    pub fn counts(&self) -> (usize, usize) {
        let firing = self.firing().count();
        (self.alerts.len() - firing, firing)
    }

    /// True when the rules let this finding become an alert.
    pub fn wants(&self, f: &Finding) -> bool {
        self.rules.kinds.contains(&f.kind) && f.severity >= self.rules.min_severity
    }

    /// Takes the findings current at `now` (wall time) and returns the
    /// events to notify: new firing alerts (after `for`), re-notifications
    /// (after `renotify`, or when severity rose), and resolutions (after
    /// `keep_firing_for` without the finding). Pending alerts whose finding
    /// vanished are dropped silently, as Prometheus does.
    pub fn observe(&mut self, findings: &[Finding], now: Timestamp) -> Vec<AlertEvent> {
        // Deduplicate: one finding per fingerprint, the most severe.
        let mut current: BTreeMap<&str, &Finding> = BTreeMap::new();
        for f in findings.iter().filter(|f| self.wants(f)) {
            match current.get(f.id.as_str()) {
                Some(old) if old.severity >= f.severity => {}
                _ => {
                    current.insert(&f.id, f);
                }
            }
        }
        let mut events = Vec::new();
        let rules = self.rules.clone();
        for (id, f) in &current {
            let alert = self.alerts.entry(id.to_string()).or_insert_with(|| Alert {
                fingerprint: id.to_string(),
                kind: f.kind,
                severity: f.severity,
                subject: f.subject.clone(),
                summary: String::new(),
                evidence: Vec::new(),
                window: None,
                state: AlertState::Pending,
                active_at: now,
                last_seen: now,
                notified_at: None,
                notified_severity: None,
            });
            alert.severity = f.severity;
            alert.summary = f.summary.clone();
            alert.evidence = f.evidence.iter().take(3).map(|e| e.text.clone()).collect();
            alert.window = f.window;
            alert.last_seen = now;
            match alert.state {
                AlertState::Pending => {
                    if elapsed(alert.active_at, now) >= rules.for_ {
                        alert.state = AlertState::Firing;
                        alert.notified_at = Some(now);
                        alert.notified_severity = Some(alert.severity);
                        events.push(event(alert, Status::Firing, now, false, &rules));
                    }
                }
                AlertState::Firing => {
                    let rose = alert.notified_severity.is_some_and(|s| alert.severity > s);
                    let due = !rules.renotify.is_zero()
                        && alert
                            .notified_at
                            .is_none_or(|t| elapsed(t, now) >= rules.renotify);
                    if rose || due {
                        alert.notified_at = Some(now);
                        alert.notified_severity = Some(alert.severity);
                        events.push(event(alert, Status::Firing, now, true, &rules));
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .alerts
            .keys()
            .filter(|id| !current.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            let Some(alert) = self.alerts.get(&id) else {
                continue;
            };
            match alert.state {
                AlertState::Pending => {
                    self.alerts.remove(&id);
                }
                AlertState::Firing => {
                    if elapsed(alert.last_seen, now) >= rules.keep_firing_for {
                        events.push(event(alert, Status::Resolved, now, false, &rules));
                        self.alerts.remove(&id);
                    }
                }
            }
        }
        events
    }
}

fn event(a: &Alert, status: Status, now: Timestamp, repeat: bool, rules: &Rules) -> AlertEvent {
    let labels = labels(a.kind, a.severity, &a.fingerprint, &a.subject);
    let group: Vec<String> = rules
        .group_by
        .iter()
        .map(|k| format!("{k}={}", labels.get(k).map_or("", String::as_str)))
        .collect();
    AlertEvent {
        status,
        fingerprint: a.fingerprint.clone(),
        kind: a.kind,
        severity: a.severity,
        subject: a.subject.clone(),
        summary: a.summary.clone(),
        evidence: a.evidence.clone(),
        window: a.window,
        starts_at: a.active_at,
        ends_at: (status == Status::Resolved).then_some(now),
        at: now,
        repeat,
        group: group.join(","),
        generator_url: format!("{}#{}", rules.generator_url, a.fingerprint),
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rules(for_s: u64, keep_s: u64) -> Rules {
        Rules {
            for_: Duration::from_secs(for_s),
            keep_firing_for: Duration::from_secs(keep_s),
            renotify: Duration::from_secs(3600),
            ..Rules::default()
        }
    }

    fn spike(op: &str, summary: &str, sev: Severity) -> Finding {
        Finding::new(
            FindingKind::ErrorSpike,
            sev,
            Subject::operation("orders-api", op),
            summary,
        )
    }

    fn at(s: i64) -> Timestamp {
        Timestamp(1_700_000_000_000 + s * 1000)
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved_after_keep() {
        let mut b = AlertBook::new(rules(2, 3));
        let f = [spike("get", "5xx 40%", Severity::High)];
        assert!(b.observe(&f, at(0)).is_empty());
        assert_eq!(b.counts(), (1, 0));
        assert!(b.observe(&f, at(1)).is_empty());
        let ev = b.observe(&f, at(2));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].status, Status::Firing);
        assert_eq!(ev[0].starts_at, at(0));
        assert_eq!(ev[0].labels["alertname"], "error_spike");
        assert_eq!(ev[0].labels["operation"], "get");
        // Still firing: deduplicated.
        assert!(b.observe(&f, at(3)).is_empty());
        // Gone, but kept firing for 3 s after last seen (t=3).
        assert!(b.observe(&[], at(5)).is_empty());
        let ev = b.observe(&[], at(6));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].status, Status::Resolved);
        assert_eq!(ev[0].ends_at, Some(at(6)));
        assert!(b.alerts.is_empty());
    }

    #[test]
    fn reworded_summary_is_the_same_alert() {
        let mut b = AlertBook::new(rules(0, 0));
        let ev = b.observe(&[spike("get", "one wording", Severity::High)], at(0));
        assert_eq!(ev.len(), 1);
        let ev = b.observe(&[spike("get", "another wording", Severity::High)], at(1));
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(b.alerts.len(), 1);
    }

    #[test]
    fn pending_that_vanishes_never_notifies() {
        let mut b = AlertBook::new(rules(5, 0));
        assert!(
            b.observe(&[spike("get", "x", Severity::High)], at(0))
                .is_empty()
        );
        assert!(b.observe(&[], at(1)).is_empty());
        assert!(b.alerts.is_empty());
        // A flap restarts the `for` clock.
        assert!(
            b.observe(&[spike("get", "x", Severity::High)], at(2))
                .is_empty()
        );
        assert!(
            b.observe(&[spike("get", "x", Severity::High)], at(6))
                .is_empty()
        );
        assert_eq!(
            b.observe(&[spike("get", "x", Severity::High)], at(7)).len(),
            1
        );
    }

    #[test]
    fn renotify_and_severity_rise() {
        let mut r = rules(0, 0);
        r.renotify = Duration::from_secs(10);
        let mut b = AlertBook::new(r);
        assert_eq!(
            b.observe(&[spike("get", "x", Severity::Medium)], at(0))
                .len(),
            1
        );
        assert!(
            b.observe(&[spike("get", "x", Severity::Medium)], at(5))
                .is_empty()
        );
        let ev = b.observe(&[spike("get", "x", Severity::Critical)], at(6));
        assert_eq!(ev.len(), 1);
        assert!(ev[0].repeat);
        assert_eq!(ev[0].labels["severity"], "critical");
        let ev = b.observe(&[spike("get", "x", Severity::Critical)], at(16));
        assert_eq!(ev.len(), 1, "renotified after 10 s");
    }

    #[test]
    fn rules_filter_kind_and_severity_and_duplicates_merge() {
        let mut b = AlertBook::new(rules(0, 0));
        let policy = Finding::new(
            FindingKind::PolicyRisk,
            Severity::Critical,
            Subject::default(),
            "x",
        );
        let low = spike("a", "x", Severity::Low);
        let twice = [
            spike("b", "x", Severity::Medium),
            spike("b", "y", Severity::High),
        ];
        let mut all = vec![policy, low];
        all.extend(twice);
        let ev = b.observe(&all, at(0));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].severity, Severity::High);
        assert_eq!(ev[0].group, "alertname=error_spike,api=orders-api");
    }

    #[test]
    fn survives_a_round_trip_through_json() {
        let mut b = AlertBook::new(rules(0, 0));
        b.observe(&[spike("get", "x", Severity::High)], at(0));
        let text = serde_json::to_string(&b).unwrap();
        let mut back: AlertBook = serde_json::from_str(&text).unwrap();
        back.rules = rules(0, 0);
        assert_eq!(back.alerts, b.alerts);
        // Restarted: still firing, so no second firing notification.
        assert!(
            back.observe(&[spike("get", "x", Severity::High)], at(1))
                .is_empty()
        );
    }
}
