//! Alert rules (pure): findings seen on each tick become alerts with a
//! Prometheus-style lifecycle, pending → firing → resolved, with `for` and
//! `keep_firing_for`. An alert's identity is its finding's fingerprint
//! (kind + subject), never its text, so a reworded summary is the same
//! alert and a recurring incident on the same kind and subject has the
//! same fingerprint. Deduplication, re-notification and grouping live here;
//! delivery does not. No I/O, no clock: `now` comes in.
//!
//! Receivers such as Alertmanager identify an alert by its label set, and
//! `severity` is a label: when an alert's severity changes, the label set
//! last announced is resolved and the new one fires, so no orphan stays
//! active. A rise is announced at once; a fall waits for the next
//! re-notification (a flapping severity does not churn). Labels carry
//! `instance`, `service`, the subject keys (`api`, `operation`,
//! `backend`…); annotations a `runbook_url` and the playbook's first steps;
//! `generatorURL` points at something that opens (the daemon's `/alerts/<fp>`
//! page with `--listen`, else its alert state file).

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
    /// Where the alert comes from (`instance` label).
    #[serde(default)]
    pub instance: String,
    /// The API Management service (`service` label), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Links and texts for people: `runbook_url`, `playbook`, `command`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// What `generatorURL` opens for this alert.
    #[serde(default)]
    pub generator_url: String,
}

impl Alert {
    /// The label set receivers know this alert by: the one last announced
    /// (its severity is the notified one until a new announcement).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let severity = self.notified_severity.unwrap_or(self.severity);
        let mut l = labels(self.kind, severity, &self.fingerprint, &self.subject);
        if !self.instance.is_empty() {
            l.insert("instance".into(), self.instance.clone());
        }
        if let Some(s) = &self.service
            && !l.contains_key("service")
        {
            l.insert("service".into(), s.clone());
        }
        l
    }
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
    /// Alertmanager-style labels: alertname, severity, fingerprint, source,
    /// instance, service and the subject keys.
    pub labels: BTreeMap<String, String>,
    /// `runbook_url`, `playbook` (its first steps), `command` (how to open it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
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
                instance: String::new(),
                service: None,
                annotations: BTreeMap::new(),
                generator_url: String::new(),
            });
            alert.severity = f.severity;
            // A finding of a named instance (a watched Azure instance)
            // carries its own `instance` label; file sources share the rules'.
            alert.instance = f.instance.clone().unwrap_or_else(|| rules.instance.clone());
            alert.service = f.subject.service.clone().or_else(|| rules.service.clone());
            alert.generator_url = fill_url(&rules.generator_url, id, f.kind);
            alert.annotations = annotations(&rules, f);
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
                    let changed = alert.notified_severity.is_some_and(|s| alert.severity != s);
                    let due = !rules.renotify.is_zero()
                        && alert
                            .notified_at
                            .is_none_or(|t| elapsed(t, now) >= rules.renotify);
                    if changed && (rose || due) {
                        // One identity, two label sets: resolve the one
                        // receivers know, then announce the new one.
                        events.push(event(alert, Status::Resolved, now, false, &rules));
                        alert.notified_at = Some(now);
                        alert.notified_severity = Some(alert.severity);
                        events.push(event(alert, Status::Firing, now, true, &rules));
                    } else if due {
                        alert.notified_at = Some(now);
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

/// `{fingerprint}` and `{kind}` in a URL template filled; a template
/// without `{fingerprint}` gets `#<fingerprint>` appended.
pub fn fill_url(template: &str, fp: &str, kind: FindingKind) -> String {
    if template.contains("{fingerprint}") {
        template
            .replace("{fingerprint}", fp)
            .replace("{kind}", kind.as_str())
    } else {
        format!("{}#{fp}", template.replace("{kind}", kind.as_str()))
    }
}

/// Annotations for people: the runbook link, the playbook's first steps
/// (with the finding's subject filled) and the command that opens it.
fn annotations(rules: &Rules, f: &Finding) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    if !rules.runbook_url.is_empty() {
        a.insert(
            "runbook_url".into(),
            fill_url(&rules.runbook_url, &f.id, f.kind)
                .trim_end_matches(&format!("#{}", f.id))
                .to_string(),
        );
    }
    let steps = playbooks().steps(f);
    if !steps.is_empty() {
        a.insert("playbook".into(), steps.join("\n"));
    }
    if let Some(t) = f.timeline {
        a.insert("timeline".into(), t.describe());
    }
    // The command opens the watched files; a live instance's finding
    // is not among them.
    if !rules.command.is_empty() && f.instance.is_none() {
        a.insert("command".into(), rules.command.clone());
    }
    a
}

/// The pages the daemon serves for people: `/alerts` (every tracked alert),
/// `/alerts/<fingerprint>` (one alert: labels, timeline, evidence, playbook,
/// how to open it) and `/playbooks/<kind>` (the playbook as shipped).
pub fn pages(book: &AlertBook) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut index = String::from("apimedic alerts (pending and firing)\n\n");
    for a in book.alerts.values() {
        index.push_str(&format!(
            "{:<8} {:<8} {:<18} {}  /alerts/{}\n",
            match a.state {
                AlertState::Pending => "pending",
                AlertState::Firing => "firing",
            },
            a.severity,
            a.kind,
            a.subject,
            a.fingerprint
        ));
        let mut page = format!(
            "{} {} on {}\n\n{}\n\nstate: {:?} since {} (last seen {})\n",
            a.severity, a.kind, a.subject, a.summary, a.state, a.active_at, a.last_seen
        );
        if let Some(w) = a.window {
            page.push_str(&format!("window: {} → {}\n", w.start, w.end));
        }
        page.push_str("\nlabels:\n");
        for (k, v) in a.labels() {
            page.push_str(&format!("  {k}={v}\n"));
        }
        if !a.evidence.is_empty() {
            page.push_str("\nevidence:\n");
            for e in &a.evidence {
                page.push_str(&format!("  - {e}\n"));
            }
        }
        for (k, v) in &a.annotations {
            page.push_str(&format!("\n{k}:\n"));
            for l in v.lines() {
                page.push_str(&format!("  {l}\n"));
            }
        }
        out.insert(format!("/alerts/{}", a.fingerprint), page);
    }
    out.insert("/alerts".into(), index);
    for (kind, book) in &playbooks().books {
        let mut text = format!("{}\n\nDiagnosis:\n", book.title);
        for s in &book.diagnosis {
            text.push_str(&format!("  - {s}\n"));
        }
        if !book.proposals.is_empty() {
            text.push_str("\nProposals (apimedic diagnose fills them from the data):\n");
            for p in &book.proposals {
                text.push_str(&format!("  - {} (risk {:?})\n", p.title, p.risk));
            }
        }
        out.insert(format!("/playbooks/{}", kind.as_str()), text);
    }
    out
}

/// The built-in playbooks, parsed once.
fn playbooks() -> &'static crate::playbook::Playbooks {
    static BOOKS: std::sync::OnceLock<crate::playbook::Playbooks> = std::sync::OnceLock::new();
    BOOKS.get_or_init(crate::playbook::Playbooks::built_in)
}

fn event(a: &Alert, status: Status, now: Timestamp, repeat: bool, rules: &Rules) -> AlertEvent {
    let labels = a.labels();
    let group: Vec<String> = rules
        .group_by
        .iter()
        .map(|k| format!("{k}={}", labels.get(k).map_or("", String::as_str)))
        .collect();
    AlertEvent {
        status,
        fingerprint: a.fingerprint.clone(),
        kind: a.kind,
        severity: a.notified_severity.unwrap_or(a.severity),
        subject: a.subject.clone(),
        summary: a.summary.clone(),
        evidence: a.evidence.clone(),
        window: a.window,
        starts_at: a.active_at,
        ends_at: (status == Status::Resolved).then_some(now),
        at: now,
        repeat,
        group: group.join(","),
        generator_url: if a.generator_url.is_empty() {
            fill_url(&rules.generator_url, &a.fingerprint, a.kind)
        } else {
            a.generator_url.clone()
        },
        annotations: a.annotations.clone(),
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
    fn the_same_problem_on_two_instances_is_two_alerts_with_their_instance_label() {
        let mut r = rules(0, 0);
        r.instance = "files".into();
        let mut b = AlertBook::new(r);
        let mut weu = spike("get", "x", Severity::High);
        weu.in_instance("prod-weu");
        let mut neu = spike("get", "x", Severity::High);
        neu.in_instance("prod-neu");
        let plain = spike("get", "x", Severity::High);
        let ev = b.observe(&[weu, neu, plain], at(0));
        let mut got: Vec<&str> = ev.iter().map(|e| e.labels["instance"].as_str()).collect();
        got.sort();
        assert_eq!(got, ["files", "prod-neu", "prod-weu"]);
        assert!(ev.iter().all(|e| e.status == Status::Firing));
        let live = ev
            .iter()
            .find(|e| e.labels["instance"] == "prod-weu")
            .unwrap();
        assert!(!live.annotations.contains_key("command"));
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
    fn severity_change_resolves_the_old_label_set() {
        let mut r = rules(0, 0);
        r.renotify = Duration::from_secs(10);
        r.instance = "apim-prod".into();
        let mut b = AlertBook::new(r);
        let ev = b.observe(&[spike("get", "x", Severity::Medium)], at(0));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].labels["severity"], "medium");
        assert_eq!(ev[0].labels["instance"], "apim-prod");
        // A rise: the medium label set is resolved, the critical one fires,
        // one fingerprint throughout.
        let ev = b.observe(&[spike("get", "x", Severity::Critical)], at(1));
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].status, Status::Resolved);
        assert_eq!(ev[0].labels["severity"], "medium");
        assert_eq!(ev[1].status, Status::Firing);
        assert_eq!(ev[1].labels["severity"], "critical");
        assert_eq!(ev[0].fingerprint, ev[1].fingerprint);
        // A fall waits for the re-notification, then swaps label sets too.
        assert!(
            b.observe(&[spike("get", "x", Severity::High)], at(2))
                .is_empty()
        );
        // Until then receivers keep the critical label set, and the refresh
        // re-posts exactly that one.
        assert_eq!(
            b.alerts.values().next().unwrap().labels()["severity"],
            "critical"
        );
        let ev = b.observe(&[spike("get", "x", Severity::High)], at(11));
        assert_eq!(ev.len(), 2);
        assert_eq!(
            (ev[0].status, ev[0].labels["severity"].as_str()),
            (Status::Resolved, "critical")
        );
        assert_eq!(
            (ev[1].status, ev[1].labels["severity"].as_str()),
            (Status::Firing, "high")
        );
        // Resolution names the label set last announced.
        let ev = b.observe(&[], at(12));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].labels["severity"], "high");
    }

    #[test]
    fn recurring_incident_keeps_fingerprint_and_labels() {
        let mut b = AlertBook::new(rules(0, 0));
        let first = b.observe(&[spike("get", "5xx 40%", Severity::High)], at(0));
        let resolved = b.observe(&[], at(1));
        assert_eq!(resolved[0].status, Status::Resolved);
        let again = b.observe(
            &[spike("get", "5xx 12% this time", Severity::High)],
            at(100),
        );
        assert_eq!(first[0].fingerprint, again[0].fingerprint);
        assert_eq!(first[0].labels, again[0].labels);
    }

    #[test]
    fn links_and_labels_for_people() {
        let mut r = rules(0, 0);
        r.generator_url = "http://127.0.0.1:9187/alerts/{fingerprint}".into();
        r.runbook_url = "http://127.0.0.1:9187/playbooks/{kind}".into();
        r.service = Some("contoso-apim".into());
        let mut b = AlertBook::new(r);
        let f = Finding::new(
            FindingKind::BackendFailure,
            Severity::High,
            Subject::backend("orders-app"),
            "failing",
        );
        let ev = b.observe(std::slice::from_ref(&f), at(0));
        assert_eq!(
            ev[0].generator_url,
            format!("http://127.0.0.1:9187/alerts/{}", f.id)
        );
        assert_eq!(
            ev[0].annotations["runbook_url"],
            "http://127.0.0.1:9187/playbooks/backend_failure"
        );
        assert!(ev[0].annotations["playbook"].contains("LastErrorReason"));
        assert_eq!(ev[0].labels["backend"], "orders-app");
        assert_eq!(ev[0].labels["service"], "contoso-apim");
        assert_eq!(
            fill_url("http://x/apimedic", "ab", FindingKind::Quota),
            "http://x/apimedic#ab"
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
        assert_eq!(ev.len(), 2, "the medium label set resolves, critical fires");
        assert!(ev[1].repeat);
        assert_eq!(ev[1].labels["severity"], "critical");
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
