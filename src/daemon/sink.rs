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
//! (`Acks`) before it leaves the outbox: when `alerts.json` cannot be
//! replaced (a full or read-only state directory), a restart still knows
//! what was delivered and never sends it again, and so never replays a
//! "firing" after its "resolved".

use super::alerts::{Alert, AlertEvent, Status};
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

    /// Drops outbox entries a journal says were delivered; ids are never
    /// reused after them. Returns how many were dropped.
    pub fn forget_delivered(&mut self, delivered: &[u64]) -> usize {
        if let Some(max) = delivered.iter().max() {
            self.next_id = self.next_id.max(*max);
        }
        let before = self.outbox.len();
        self.outbox.retain(|e| !delivered.contains(&e.id));
        before - self.outbox.len()
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

/// The delivery journal (`delivered.log`): ids of delivered outbox
/// entries, appended and synced as each delivery succeeds, to a file
/// opened at start and kept open. Appending to an open file still works
/// where replacing `alerts.json` does not (a directory made read-only, a
/// disk with a block to spare). After a save it keeps only ids still in
/// the saved outbox.
#[derive(Debug)]
pub struct Acks {
    path: PathBuf,
    file: Option<std::fs::File>,
    ids: Vec<u64>,
}

impl Acks {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("delivered.log")
    }

    /// Opens the journal; returns it and the ids it already holds.
    pub fn open(dir: &Path) -> anyhow::Result<(Acks, Vec<u64>)> {
        let path = Self::path(dir);
        let ids: Vec<u64> = match std::fs::read_to_string(&path) {
            Ok(text) => text.lines().filter_map(|l| l.trim().parse().ok()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok();
        Ok((
            Acks {
                path,
                file,
                ids: ids.clone(),
            },
            ids,
        ))
    }

    /// Journals delivered ids (synced before returning).
    pub fn record(&mut self, ids: &[u64]) -> anyhow::Result<()> {
        use std::io::Write;
        let Some(f) = self.file.as_mut() else {
            anyhow::bail!("cannot open {} for writing", self.path.display());
        };
        let mut text = String::new();
        for id in ids {
            text.push_str(&format!("{id}\n"));
        }
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| anyhow::anyhow!("cannot append to {}: {e}", self.path.display()))?;
        self.ids.extend_from_slice(ids);
        Ok(())
    }

    /// After a successful save: keeps only ids still in the saved outbox
    /// (another sink's delivery may be journalled but not yet saved).
    pub fn keep_only(&mut self, outbox: &[Entry]) {
        use std::io::Write;
        let keep: Vec<u64> = self
            .ids
            .iter()
            .copied()
            .filter(|id| outbox.iter().any(|e| e.id == *id))
            .collect();
        if keep.len() == self.ids.len() {
            return;
        }
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let text: String = keep.iter().map(|id| format!("{id}\n")).collect();
        if f.set_len(0)
            .and_then(|_| f.write_all(text.as_bytes()))
            .and_then(|_| f.sync_data())
            .is_ok()
        {
            self.ids = keep;
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
        acks.record(&[1]).unwrap();
        d.enqueue(&ev[1], &sinks); // resolved, id 2, delivered too
        acks.record(&[2]).unwrap();
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
