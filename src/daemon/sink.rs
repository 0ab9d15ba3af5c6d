//! Sinks: where alert events go, and the outbox that makes delivery
//! at-least-once. Payload builders are pure (`payload`, `alertmanager_body`);
//! `deliver` does the I/O.
//!
//! Every event is written to the outbox (with the alert book, in one atomic
//! file in the state directory) before any delivery is tried; a sink task
//! removes entries only after its receiver said 2xx, retrying with
//! exponential backoff meanwhile. A restart reloads the outbox, so neither
//! a receiver that is down nor a SIGKILL loses an alert, and since the book
//! is saved with the outbox, a restarted daemon does not announce an alert
//! that was already firing. Each delivery is also appended to a journal
//! (`Acks`), with its event, before it leaves the outbox: when
//! `alerts.json` cannot be replaced (a full or read-only state directory),
//! a restart still knows what was delivered and never sends it again, and
//! so never replays a "firing" after its "resolved"; and the book, as stale
//! as the file, is brought up to what receivers were told (an alert whose
//! "resolved" went out is not resolved a second time, one whose "firing"
//! went out is not announced again).

use super::alerts::{Alert, AlertEvent, AlertState, Status};
use super::config::{SinkSpec, Target};
use super::tail::write_atomic;
use crate::model::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One event waiting for one sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: u64,
    pub sink: String,
    pub event: AlertEvent,
    #[serde(default)]
    pub attempts: u32,
}

/// What survives a restart: the alert book's alerts and the outbox, saved
/// together in `alerts.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Durable {
    pub alerts: BTreeMap<String, Alert>,
    pub outbox: Vec<Entry>,
    pub next_id: u64,
}

/// Most entries kept per sink; beyond it the oldest are dropped (logged).
pub const MAX_OUTBOX_PER_SINK: usize = 10_000;

impl Durable {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("alerts.json")
    }

    pub fn load(dir: &Path) -> anyhow::Result<Durable> {
        let p = Self::path(dir);
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                anyhow::anyhow!(
                    "{}: the alert state is corrupt ({e}); move it aside to start with no alerts",
                    p.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Durable::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", p.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        write_atomic(&Self::path(dir), &serde_json::to_vec(self)?)
    }

    /// Reconciles the state as last saved with the journal: the events
    /// delivered after the save (entries the saved outbox does not hold)
    /// are applied to the alert book in the order they were queued, then
    /// outbox entries the journal says were delivered are dropped; ids are
    /// never reused after them. Returns how many entries were dropped.
    pub fn forget_delivered(&mut self, delivered: &[Delivered]) -> usize {
        if let Some(max) = delivered.iter().map(|d| d.id).max() {
            self.next_id = self.next_id.max(max);
        }
        let mut later: Vec<&Delivered> = delivered
            .iter()
            .filter(|d| !self.outbox.iter().any(|e| e.id == d.id))
            .collect();
        later.sort_by_key(|d| d.id);
        for d in later {
            if let Some(e) = &d.event {
                self.told(e);
            }
        }
        let before = self.outbox.len();
        self.outbox
            .retain(|e| !delivered.iter().any(|d| d.id == e.id));
        before - self.outbox.len()
    }

    /// The book after receivers were told `e`: a "resolved" ends the alert
    /// it resolved (the one that started when the event says), a "firing"
    /// makes its alert firing and notified then.
    fn told(&mut self, e: &AlertEvent) {
        match e.status {
            Status::Resolved => {
                if self
                    .alerts
                    .get(&e.fingerprint)
                    .is_some_and(|a| a.active_at == e.starts_at)
                {
                    self.alerts.remove(&e.fingerprint);
                }
            }
            Status::Firing => {
                let a = self
                    .alerts
                    .entry(e.fingerprint.clone())
                    .or_insert_with(|| Alert {
                        fingerprint: e.fingerprint.clone(),
                        kind: e.kind,
                        severity: e.severity,
                        subject: e.subject.clone(),
                        summary: e.summary.clone(),
                        evidence: e.evidence.clone(),
                        window: e.window,
                        state: AlertState::Pending,
                        active_at: e.starts_at,
                        last_seen: e.at,
                        notified_at: None,
                        notified_severity: None,
                        instance: e.labels.get("instance").cloned().unwrap_or_default(),
                        service: e.labels.get("service").cloned(),
                        annotations: e.annotations.clone(),
                        generator_url: e.generator_url.clone(),
                    });
                a.state = AlertState::Firing;
                a.last_seen = a.last_seen.max(e.at);
                a.notified_at = Some(a.notified_at.map_or(e.at, |t| t.max(e.at)));
                a.notified_severity = Some(e.severity);
            }
        }
    }

    /// Queues an event for every sink whose route takes it. Returns how
    /// many entries were dropped because a sink's queue was full.
    pub fn enqueue(&mut self, event: &AlertEvent, sinks: &[SinkSpec]) -> usize {
        let mut dropped = 0;
        for s in sinks.iter().filter(|s| routes(s, event)) {
            let queued = self.outbox.iter().filter(|e| e.sink == s.name).count();
            if queued >= MAX_OUTBOX_PER_SINK
                && let Some(i) = self.outbox.iter().position(|e| e.sink == s.name)
            {
                self.outbox.remove(i);
                dropped += 1;
            }
            self.next_id += 1;
            self.outbox.push(Entry {
                id: self.next_id,
                sink: s.name.clone(),
                event: event.clone(),
                attempts: 0,
            });
        }
        dropped
    }
}

/// One line of the delivery journal: a delivered outbox entry's id and
/// its event (a bare id, as older journals hold, has none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<AlertEvent>,
}

impl Delivered {
    fn parse(line: &str) -> Option<Delivered> {
        let line = line.trim();
        match line.parse::<u64>() {
            Ok(id) => Some(Delivered { id, event: None }),
            Err(_) => serde_json::from_str(line).ok(),
        }
    }
}

/// The delivery journal (`delivered.log`): delivered outbox entries (id
/// and event, one JSON line each), appended and synced as each delivery
/// succeeds, to a file opened at start and kept open. Appending to an
/// open file still works where replacing `alerts.json` does not (a
/// directory made read-only, a disk with a block to spare). After a save
/// it keeps only entries still in the saved outbox.
#[derive(Debug)]
pub struct Acks {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// Each journalled entry's id and line.
    lines: Vec<(u64, String)>,
}

impl Acks {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("delivered.log")
    }

    /// Opens the journal; returns it and the deliveries it already holds
    /// (a line cut short by a crash is skipped).
    pub fn open(dir: &Path) -> anyhow::Result<(Acks, Vec<Delivered>)> {
        let path = Self::path(dir);
        let (lines, delivered): (Vec<(u64, String)>, Vec<Delivered>) =
            match std::fs::read_to_string(&path) {
                Ok(text) => text
                    .lines()
                    .filter_map(|l| Delivered::parse(l).map(|d| ((d.id, l.trim().to_string()), d)))
                    .unzip(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), Vec::new()),
                Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
            };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok();
        Ok((Acks { path, file, lines }, delivered))
    }

    /// Journals delivered entries (synced before returning).
    pub fn record(&mut self, entries: &[Entry]) -> anyhow::Result<()> {
        use std::io::Write;
        let Some(f) = self.file.as_mut() else {
            anyhow::bail!("cannot open {} for writing", self.path.display());
        };
        let mut lines = Vec::new();
        for e in entries {
            let d = Delivered {
                id: e.id,
                event: Some(e.event.clone()),
            };
            lines.push((e.id, serde_json::to_string(&d)?));
        }
        let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| anyhow::anyhow!("cannot append to {}: {e}", self.path.display()))?;
        self.lines.extend(lines);
        Ok(())
    }

    /// After a successful save: keeps only entries still in the saved
    /// outbox (another sink's delivery may be journalled but not yet saved).
    pub fn keep_only(&mut self, outbox: &[Entry]) {
        use std::io::Write;
        let keep: Vec<(u64, String)> = self
            .lines
            .iter()
            .filter(|(id, _)| outbox.iter().any(|e| e.id == *id))
            .cloned()
            .collect();
        if keep.len() == self.lines.len() {
            return;
        }
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let text: String = keep.iter().map(|(_, l)| format!("{l}\n")).collect();
        if f.set_len(0)
            .and_then(|_| f.write_all(text.as_bytes()))
            .and_then(|_| f.sync_data())
            .is_ok()
        {
            self.lines = keep;
        }
    }
}

/// Routing: severity at or above the sink's minimum, kind in its list.
/// A resolution follows its firing notification wherever that went.
pub fn routes(s: &SinkSpec, e: &AlertEvent) -> bool {
    e.severity >= s.min_severity && (s.kinds.is_empty() || s.kinds.contains(&e.kind))
}

/// One line of the stdout and file sinks.
pub fn json_line(e: &AlertEvent) -> String {
    serde_json::to_string(e).unwrap_or_default()
}

fn emoji(e: &AlertEvent) -> &'static str {
    match e.status {
        Status::Resolved => "✅",
        Status::Firing => match e.severity {
            crate::model::Severity::Critical => "🔴",
            crate::model::Severity::High => "🟠",
            _ => "🟡",
        },
    }
}

fn title(e: &AlertEvent) -> String {
    format!(
        "[{}{}] {} {} ({})",
        e.status.as_str().to_uppercase(),
        if e.repeat { ", again" } else { "" },
        e.kind,
        e.subject,
        e.severity
    )
}

/// The body a webhook-style sink posts for a group of events.
pub fn payload(target: &Target, group: &str, events: &[AlertEvent]) -> Value {
    let status = if events.iter().any(|e| e.status == Status::Firing) {
        "firing"
    } else {
        "resolved"
    };
    match target {
        Target::Slack(_) => {
            let text: Vec<String> = events
                .iter()
                .map(|e| format!("{} *{}*\n{}", emoji(e), title(e), e.summary))
                .collect();
            let blocks: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({"type": "section", "text": {"type": "mrkdwn",
                        "text": format!("{} *{}*\n{}\n_{}_", emoji(e), title(e), e.summary,
                            e.evidence.first().map_or("", String::as_str))}})
                })
                .collect();
            json!({"text": text.join("\n"), "blocks": blocks})
        }
        Target::Teams(_) => {
            let mut body = vec![
                json!({"type": "TextBlock", "size": "Medium", "weight": "Bolder",
                "text": format!("apimedic: {} alert(s) {status}", events.len())}),
            ];
            for e in events {
                body.push(json!({"type": "TextBlock", "wrap": true,
                    "text": format!("{} **{}**", emoji(e), title(e))}));
                body.push(json!({"type": "TextBlock", "wrap": true, "text": e.summary}));
                body.push(json!({"type": "FactSet", "facts": [
                    {"title": "severity", "value": e.severity.as_str()},
                    {"title": "since", "value": e.starts_at.to_rfc3339()},
                    {"title": "fingerprint", "value": e.fingerprint},
                ]}));
            }
            json!({"type": "message", "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard", "version": "1.4", "body": body}}]})
        }
        _ => json!({
            "version": "1",
            "source": "apimedic",
            "status": status,
            "group": group,
            "alerts": events,
        }),
    }
}

/// Alertmanager's `endsAt` for a firing alert: a few resend intervals
/// ahead, so it resolves by itself if the daemon goes away.
pub fn firing_ends_at(now: Timestamp, resend: Duration) -> Timestamp {
    let ahead = (resend.as_millis() as i64 * 4).max(60_000);
    Timestamp(now.0 + ahead)
}

fn am_alert(
    labels: &BTreeMap<String, String>,
    summary: &str,
    evidence: &[String],
    starts: Timestamp,
    ends: Timestamp,
    url: &str,
) -> Value {
    json!({
        "labels": labels,
        "annotations": {"summary": summary, "evidence": evidence.join("\n")},
        "startsAt": starts.to_rfc3339(),
        "endsAt": ends.to_rfc3339(),
        "generatorURL": url,
    })
}

/// Adds `runbook_url`, `playbook`, `timeline` and `command` annotations.
fn add_annotations(alert: &mut Value, extra: &std::collections::BTreeMap<String, String>) {
    if let Some(a) = alert.get_mut("annotations").and_then(Value::as_object_mut) {
        for (k, v) in extra {
            a.insert(k.clone(), Value::String(v.clone()));
        }
    }
}

/// `POST /api/v2/alerts` body for events.
pub fn alertmanager_body(events: &[AlertEvent], now: Timestamp, resend: Duration) -> Value {
    Value::Array(
        events
            .iter()
            .map(|e| {
                let ends = match e.status {
                    Status::Resolved => e.ends_at.unwrap_or(now),
                    Status::Firing => firing_ends_at(now, resend),
                };
                let mut alert = am_alert(
                    &e.labels,
                    &e.summary,
                    &e.evidence,
                    e.starts_at,
                    ends,
                    &e.generator_url,
                );
                add_annotations(&mut alert, &e.annotations);
                alert
            })
            .collect(),
    )
}

/// The re-post of every firing alert Alertmanager needs to keep them open.
pub fn alertmanager_refresh<'a>(
    firing: impl Iterator<Item = &'a Alert>,
    now: Timestamp,
    resend: Duration,
    generator_url: &str,
) -> Value {
    Value::Array(
        firing
            .map(|a| {
                // The label set last announced, so a refresh never opens a
                // second alert beside the first.
                let labels = a.labels();
                let url = if a.generator_url.is_empty() {
                    super::alerts::fill_url(generator_url, &a.fingerprint, a.kind)
                } else {
                    a.generator_url.clone()
                };
                let mut alert = am_alert(
                    &labels,
                    &a.summary,
                    &a.evidence,
                    a.active_at,
                    firing_ends_at(now, resend),
                    &url,
                );
                add_annotations(&mut alert, &a.annotations);
                alert
            })
            .collect(),
    )
}

/// The Alertmanager endpoint for a base URL.
pub fn alertmanager_url(base: &str) -> String {
    if base.ends_with("/api/v2/alerts") {
        base.to_string()
    } else {
        format!("{}/api/v2/alerts", base.trim_end_matches('/'))
    }
}

/// Posts JSON; Ok on a 2xx answer.
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<()> {
    let resp = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("POST {url}: {e}"))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        let text = resp.text().await.unwrap_or_default();
        let text: String = text.chars().take(200).collect();
        Err(anyhow::anyhow!("POST {url}: {status} {text}"))
    }
}

/// Delivers one group of events to one sink.
pub async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    group: &str,
    events: &[AlertEvent],
    now: Timestamp,
    resend: Duration,
) -> anyhow::Result<()> {
    match target {
        Target::Stdout => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for e in events {
                writeln!(out, "{}", json_line(e))?;
            }
            out.flush()?;
            Ok(())
        }
        Target::File(path) => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            let mut text = String::new();
            for e in events {
                text.push_str(&json_line(e));
                text.push('\n');
            }
            f.write_all(text.as_bytes())?;
            f.sync_data()?;
            Ok(())
        }
        Target::Webhook(url) | Target::Slack(url) | Target::Teams(url) => {
            post(client, url, &payload(target, group, events)).await
        }
        Target::Alertmanager(url) => {
            post(
                client,
                &alertmanager_url(url),
                &alertmanager_body(events, now, resend),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::alerts::AlertBook;
    use crate::daemon::config::Rules;
    use crate::model::{Finding, FindingKind, Severity, Subject};

    fn events() -> Vec<AlertEvent> {
        let mut b = AlertBook::new(Rules {
            for_: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            ..Rules::default()
        });
        let f = Finding::new(
            FindingKind::ErrorSpike,
            Severity::Critical,
            Subject::operation("orders-api", "get-order"),
            "5xx spike on orders-api/get-order: 40%",
        );
        let mut ev = b.observe(&[f], Timestamp(1_800_000_000_000));
        ev.extend(b.observe(&[], Timestamp(1_800_000_060_000)));
        ev
    }

    #[test]
    fn alertmanager_body_has_labels_annotations_and_times() {
        let ev = events();
        let body = alertmanager_body(&ev, Timestamp(1_800_000_060_000), Duration::from_secs(60));
        let a = &body[0];
        assert_eq!(a["labels"]["alertname"], "error_spike");
        assert_eq!(a["labels"]["severity"], "critical");
        assert_eq!(a["labels"]["api"], "orders-api");
        assert_eq!(a["labels"]["operation"], "get-order");
        assert_eq!(a["labels"]["fingerprint"].as_str().unwrap().len(), 16);
        assert_eq!(
            a["annotations"]["summary"],
            "5xx spike on orders-api/get-order: 40%"
        );
        assert_eq!(a["startsAt"], "2027-01-15T08:00:00Z");
        assert_eq!(a["endsAt"], "2027-01-15T08:05:00Z");
        assert!(a["generatorURL"].as_str().unwrap().contains('#'));
        // Resolved: endsAt is the resolution time.
        assert_eq!(body[1]["endsAt"], "2027-01-15T08:01:00Z");
    }

    #[test]
    fn chat_payloads() {
        let ev = events();
        let slack = payload(&Target::Slack("http://x".into()), "g", &ev[..1]);
        assert!(
            slack["text"]
                .as_str()
                .unwrap()
                .contains("[FIRING] error_spike")
        );
        let teams = payload(&Target::Teams("http://x".into()), "g", &ev[..1]);
        assert_eq!(
            teams["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let hook = payload(&Target::Webhook("http://x".into()), "g", &ev);
        assert_eq!(hook["status"], "firing");
        assert_eq!(hook["alerts"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn outbox_routes_by_severity_and_kind_and_round_trips() {
        let ev = events();
        let sinks = vec![
            SinkSpec {
                name: "all".into(),
                target: Target::Stdout,
                min_severity: Severity::Info,
                kinds: vec![],
            },
            SinkSpec {
                name: "quota-only".into(),
                target: Target::Stdout,
                min_severity: Severity::Info,
                kinds: vec![FindingKind::Quota],
            },
        ];
        let mut d = Durable::default();
        d.enqueue(&ev[0], &sinks);
        assert_eq!(d.outbox.len(), 1);
        assert_eq!(d.outbox[0].sink, "all");
        let dir = tempfile::tempdir().unwrap();
        d.save(dir.path()).unwrap();
        assert_eq!(Durable::load(dir.path()).unwrap(), d);
        std::fs::write(Durable::path(dir.path()), "{").unwrap();
        let err = Durable::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("move it aside"), "{err}");
    }

    #[test]
    fn journalled_deliveries_are_never_sent_again_after_a_failed_save() {
        let ev = events();
        let sinks = vec![SinkSpec {
            name: "am".into(),
            target: Target::Stdout,
            min_severity: Severity::Info,
            kinds: vec![],
        }];
        let dir = tempfile::tempdir().unwrap();
        let mut d = Durable::default();
        d.enqueue(&ev[0], &sinks); // firing, id 1
        d.save(dir.path()).unwrap();
        let (mut acks, old) = Acks::open(dir.path()).unwrap();
        assert!(old.is_empty());
        // Delivered; then the save that would drop it fails (as on a full
        // disk): alerts.json still holds the firing.
        acks.record(&d.outbox[..1]).unwrap();
        d.enqueue(&ev[1], &sinks); // resolved, id 2, delivered too
        acks.record(&d.outbox[1..]).unwrap();
        drop(acks);
        // Restart: the stale outbox is reconciled with the journal.
        let mut back = Durable::load(dir.path()).unwrap();
        assert_eq!(back.outbox.len(), 1, "the stale file still has the firing");
        let (mut acks, delivered) = Acks::open(dir.path()).unwrap();
        assert_eq!(back.forget_delivered(&delivered), 1);
        assert!(back.outbox.is_empty(), "no firing after its resolved");
        assert!(back.next_id >= 2, "ids are never reused");
        // After a successful save the journal keeps only what is still queued.
        back.save(dir.path()).unwrap();
        acks.keep_only(&back.outbox);
        assert_eq!(std::fs::read_to_string(Acks::path(dir.path())).unwrap(), "");
    }

    #[test]
    fn the_book_learns_what_was_delivered_after_the_last_save() {
        let ev = events(); // firing, resolved
        let sinks = vec![SinkSpec {
            name: "am".into(),
            target: Target::Stdout,
            min_severity: Severity::Info,
            kinds: vec![],
        }];
        let fp = ev[0].fingerprint.clone();
        // Saved with nothing; then the firing is queued and delivered, and
        // every save fails.
        let dir = tempfile::tempdir().unwrap();
        Durable::default().save(dir.path()).unwrap();
        let (mut acks, _) = Acks::open(dir.path()).unwrap();
        let mut d = Durable::default();
        d.enqueue(&ev[0], &sinks);
        acks.record(&d.outbox).unwrap();
        drop(acks);
        let mut back = Durable::load(dir.path()).unwrap();
        let (_, delivered) = Acks::open(dir.path()).unwrap();
        assert_eq!(back.forget_delivered(&delivered), 0);
        let a = back
            .alerts
            .get(&fp)
            .expect("the announced alert is in the book");
        assert_eq!(a.state, AlertState::Firing);
        assert_eq!(a.notified_at, Some(ev[0].at));
        assert_eq!(a.active_at, ev[0].starts_at);
        assert_eq!(a.labels(), ev[0].labels, "the label set receivers know");

        // Saved with the alert firing; then its "resolved" is delivered
        // and every save fails: the restarted book has it resolved.
        let dir = tempfile::tempdir().unwrap();
        let mut d = Durable::default();
        d.told(&ev[0]);
        d.save(dir.path()).unwrap();
        let (mut acks, _) = Acks::open(dir.path()).unwrap();
        d.enqueue(&ev[1], &sinks);
        acks.record(&d.outbox).unwrap();
        drop(acks);
        let mut back = Durable::load(dir.path()).unwrap();
        assert!(back.alerts.contains_key(&fp), "the stale file");
        let (_, delivered) = Acks::open(dir.path()).unwrap();
        back.forget_delivered(&delivered);
        assert!(back.alerts.is_empty(), "{:?}", back.alerts);

        // An entry the saved outbox holds was queued before the save: its
        // event is already in the saved book and is not applied again (a
        // "firing" delivered after the save resolved the alert must not
        // bring it back).
        let dir = tempfile::tempdir().unwrap();
        let mut d = Durable::default();
        d.enqueue(&ev[0], &sinks);
        d.save(dir.path()).unwrap();
        let (mut acks, _) = Acks::open(dir.path()).unwrap();
        acks.record(&d.outbox).unwrap();
        drop(acks);
        let mut back = Durable::load(dir.path()).unwrap();
        let (_, delivered) = Acks::open(dir.path()).unwrap();
        assert_eq!(back.forget_delivered(&delivered), 1);
        assert!(back.alerts.is_empty() && back.outbox.is_empty());

        // A journal of bare ids (as written before events were kept).
        std::fs::write(Acks::path(dir.path()), "7\n{\"id\":8}\n{\"id\":9,\"ev").unwrap();
        let (_, delivered) = Acks::open(dir.path()).unwrap();
        let ids: Vec<u64> = delivered.iter().map(|d| d.id).collect();
        assert_eq!(ids, [7, 8], "a line cut by a crash is skipped");
    }

    #[test]
    fn alertmanager_url_from_base() {
        assert_eq!(
            alertmanager_url("http://127.0.0.1:9093/"),
            "http://127.0.0.1:9093/api/v2/alerts"
        );
        assert_eq!(
            alertmanager_url("http://h/api/v2/alerts"),
            "http://h/api/v2/alerts"
        );
    }
}
