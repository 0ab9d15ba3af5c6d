//! Configuration history from live pulls. ARM keeps no old versions of a
//! policy, so every live pull records the configuration it read in the
//! state directory: each document's bytes once, under their SHA-256
//! (`objects/ab/abcd…`), and one line in `log.ndjson` per document whose
//! content differs from the last recorded version (or that appears for the
//! first time). A change is joined with the activity log's write events on
//! that resource since the version before, so `apimedic history` can say
//! "policy api:orders changed between 10:50 and 11:00, written at 10:58 by
//! alice@contoso.com" and show the diff.

use super::pull::Pulled;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One recorded version of one configuration document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// When the pull that saw it ran (RFC 3339).
    pub seen: String,
    /// The instance's service id.
    pub instance: String,
    /// The document (`config/policies/api-orders-api.json`).
    pub document: String,
    /// What it is, for people: `policy api:orders-api`, `backends`.
    pub object: String,
    pub sha256: String,
    /// The version before, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_seen: Option<String>,
    /// Write events of the activity log on this resource since the version
    /// before: "2026-03-03T10:58:12Z alice@contoso.com Microsoft.ApiManagement/service/apis/policies/write".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<String>,
}

/// The history of the instances pulled, in `<state dir>/azure-history`.
pub struct History {
    root: PathBuf,
}

impl History {
    pub fn new(state_dir: &Path) -> History {
        History {
            root: state_dir.join("azure-history"),
        }
    }

    fn log(&self) -> PathBuf {
        self.root.join("log.ndjson")
    }

    fn object(&self, sha: &str) -> PathBuf {
        self.root
            .join("objects")
            .join(&sha[..2.min(sha.len())])
            .join(sha)
    }

    /// Every version recorded, oldest first. Lines that cannot be read are
    /// reported (file and line), the rest kept.
    pub fn versions(&self) -> (Vec<Version>, Vec<String>) {
        let Ok(text) = std::fs::read_to_string(self.log()) else {
            return (Vec::new(), Vec::new());
        };
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Version>(line) {
                Ok(v) => out.push(v),
                Err(e) => bad.push(format!("{}:{}: {e}", self.log().display(), i + 1)),
            }
        }
        (out, bad)
    }

    /// The content of a recorded version.
    pub fn content(&self, sha: &str) -> Option<String> {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        std::fs::read_to_string(self.object(sha)).ok()
    }

    /// Records the configuration documents of one pull seen at `seen`;
    /// returns the versions that were new.
    pub fn record(&self, pulled: &Pulled, seen: &str) -> std::io::Result<Vec<Version>> {
        let (known, _) = self.versions();
        let last = |doc: &str| {
            known
                .iter()
                .rev()
                .find(|v| v.instance.eq_ignore_ascii_case(&pulled.service_id) && v.document == doc)
        };
        let events = activity_events(pulled);
        let mut new = Vec::new();
        for (path, bytes) in &pulled.documents {
            let Some(doc) = path.split_once('/').map(|(_, d)| d) else {
                continue;
            };
            if !doc.starts_with("config/") {
                continue;
            }
            let content = content_of(bytes);
            let sha = sha256(content.as_bytes());
            let before = last(doc);
            if before.is_some_and(|b| b.sha256 == sha) {
                continue;
            }
            let obj = self.object(&sha);
            if !obj.exists() {
                if let Some(parent) = obj.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&obj, content.as_bytes())?;
            }
            let writes = match (before, resource_id_of(bytes)) {
                (Some(b), Some(id)) => writes_on(&events, &id, &b.seen),
                _ => Vec::new(),
            };
            new.push(Version {
                seen: seen.to_string(),
                instance: pulled.service_id.clone(),
                document: doc.to_string(),
                object: object_name(doc),
                sha256: sha,
                previous: before.map(|b| b.sha256.clone()),
                previous_seen: before.map(|b| b.seen.clone()),
                writes,
            });
        }
        if !new.is_empty() {
            std::fs::create_dir_all(&self.root)?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log())?;
            let mut buf = String::new();
            for v in &new {
                buf.push_str(&serde_json::to_string(v).unwrap_or_default());
                buf.push('\n');
            }
            f.write_all(buf.as_bytes())?;
        }
        Ok(new)
    }
}

/// What a document holds, as text to diff: a policy's XML, else the JSON.
fn content_of(bytes: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        if let Some(xml) = v.pointer("/properties/value").and_then(Value::as_str)
            && xml.trim_start().starts_with('<')
        {
            return xml.to_string();
        }
        return serde_json::to_string_pretty(&v).unwrap_or_default();
    }
    String::from_utf8_lossy(bytes).into_owned()
}

fn resource_id_of(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("id").and_then(Value::as_str).map(str::to_string)
}

/// `policy api:orders-api` for `config/policies/api-orders-api.json`.
pub fn object_name(doc: &str) -> String {
    let stem = doc.trim_end_matches(".json");
    if let Some(p) = stem.strip_prefix("config/policies/") {
        return match p.split_once('-') {
            Some((kind, rest)) if kind != "global" => {
                // operation-<api>-<op> was written as operation:api:op.
                format!("policy {kind}:{rest}")
            }
            _ => "policy global".to_string(),
        };
    }
    stem.trim_start_matches("config/").replace('/', " ")
}

fn activity_events(pulled: &Pulled) -> Vec<Value> {
    pulled
        .documents
        .iter()
        .filter(|(p, _)| p.ends_with("/activity-log.json"))
        .filter_map(|(_, b)| serde_json::from_slice::<Value>(b).ok())
        .filter_map(|v| v.get("value").and_then(Value::as_array).cloned())
        .flatten()
        .collect()
}

/// Write or delete events on `id` (or a parent of it, for a policy) after `since`.
fn writes_on(events: &[Value], id: &str, since: &str) -> Vec<String> {
    let id = id.to_ascii_lowercase();
    let mut out: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let rid = e.get("resourceId")?.as_str()?.to_ascii_lowercase();
            let op = e
                .pointer("/operationName/value")
                .and_then(Value::as_str)
                .or_else(|| e.get("operationName").and_then(Value::as_str))?;
            let at = e.get("eventTimestamp")?.as_str()?;
            let write = op.to_ascii_lowercase().ends_with("/write")
                || op.to_ascii_lowercase().ends_with("/delete");
            let status = e
                .pointer("/status/value")
                .and_then(Value::as_str)
                .unwrap_or("");
            // The resource itself, a child of it, or a parent below the
            // service (an API's write for its policy); not the service's own.
            let related = rid == id
                || rid.starts_with(&format!("{id}/"))
                || (id.starts_with(&format!("{rid}/")) && rid.matches('/').count() > 8);
            (write && related && at > since && !status.eq_ignore_ascii_case("Started")).then(|| {
                let who = e
                    .get("caller")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown caller");
                format!("{at} {who} {op}")
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The default state directory: `$XDG_STATE_HOME/apimedic`, else
/// `~/.local/state/apimedic`, else `./apimedic-state`.
pub fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("apimedic");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/state/apimedic");
    }
    PathBuf::from("apimedic-state")
}

/// The changes recorded (versions with a version before), as text with a
/// unified diff each; `filter` keeps instances whose id contains it.
pub fn render(history: &History, filter: Option<&str>) -> String {
    let (versions, bad) = history.versions();
    let mut out = String::new();
    for b in &bad {
        out.push_str(&format!("unreadable history line: {b}\n"));
    }
    let keep = |v: &&Version| {
        filter.is_none_or(|f| {
            v.instance
                .to_ascii_lowercase()
                .contains(&f.to_ascii_lowercase())
        })
    };
    let seen: Vec<&Version> = versions.iter().filter(keep).collect();
    let changes: Vec<&&Version> = seen.iter().filter(|v| v.previous.is_some()).collect();
    if seen.is_empty() {
        out.push_str(&format!(
            "No configuration recorded yet in {}: live pulls (diagnose/tui/ask/daemon with --azure, --subscription or --all) record it.\n",
            history.root.display()
        ));
        return out;
    }
    let first = seen.first().map(|v| v.seen.as_str()).unwrap_or("");
    let last = seen.last().map(|v| v.seen.as_str()).unwrap_or("");
    if changes.is_empty() {
        out.push_str(&format!(
            "No configuration change seen: {} documents recorded between {first} and {last}.\n",
            seen.len()
        ));
        return out;
    }
    out.push_str(&format!(
        "{} configuration change(s) seen between {first} and {last}:\n\n",
        changes.len()
    ));
    for v in changes {
        let prev = v.previous.as_deref().unwrap_or("");
        out.push_str(&format!(
            "{} changed between {} and {} on {}\n",
            v.object,
            v.previous_seen.as_deref().unwrap_or("?"),
            v.seen,
            v.instance
        ));
        if v.writes.is_empty() {
            out.push_str("  no write in the activity log read with it\n");
        }
        for w in &v.writes {
            out.push_str(&format!("  written {w}\n"));
        }
        match (history.content(prev), history.content(&v.sha256)) {
            (Some(a), Some(b)) => {
                if let Some(d) = crate::model::diff::unified(&a, &b, "before", "after") {
                    for line in d.lines() {
                        out.push_str("  ");
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
            _ => out.push_str("  (a version's content is missing from the state directory)\n"),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulled(policy: &str, events: Value) -> Pulled {
        let id =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim";
        Pulled {
            service_id: id.into(),
            name: "apim".into(),
            documents: vec![
                (
                    "apim/config/policies/api-orders.json".into(),
                    serde_json::to_vec(&serde_json::json!({
                        "id": format!("{id}/apis/orders/policies/policy"),
                        "properties": {"format": "rawxml", "value": policy}
                    }))
                    .unwrap(),
                ),
                (
                    "apim/activity-log.json".into(),
                    serde_json::to_vec(&events).unwrap(),
                ),
                ("apim/metrics/apim-requests.json".into(), b"{}".to_vec()),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_changed_policy_is_recorded_once_with_its_writer_and_diff() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path());
        let none = serde_json::json!({"value": []});
        let v1 = h
            .record(
                &pulled(
                    "<policies><inbound><base /></inbound></policies>",
                    none.clone(),
                ),
                "2026-03-03T10:50:00Z",
            )
            .unwrap();
        assert_eq!(v1.len(), 1);
        assert_eq!(v1[0].object, "policy api:orders");
        // The same content again: nothing new.
        assert!(
            h.record(
                &pulled(
                    "<policies><inbound><base /></inbound></policies>",
                    none.clone()
                ),
                "2026-03-03T10:55:00Z"
            )
            .unwrap()
            .is_empty()
        );
        let write = serde_json::json!({"value": [{
            "resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim/apis/orders/policies/policy",
            "operationName": {"value": "Microsoft.ApiManagement/service/apis/policies/write"},
            "eventTimestamp": "2026-03-03T10:58:12Z", "caller": "alice@contoso.com", "status": {"value": "Succeeded"}}]});
        let v2 = h
            .record(&pulled("<policies><inbound><base /><rate-limit calls=\"5\" renewal-period=\"60\" /></inbound></policies>", write), "2026-03-03T11:00:00Z")
            .unwrap();
        assert_eq!(v2.len(), 1);
        assert_eq!(v2[0].previous_seen.as_deref(), Some("2026-03-03T10:50:00Z"));
        assert_eq!(v2[0].writes.len(), 1);
        assert!(v2[0].writes[0].contains("alice@contoso.com"));
        let text = render(&h, Some("apim"));
        assert!(text.contains("1 configuration change(s)"), "{text}");
        assert!(
            text.contains(
                "policy api:orders changed between 2026-03-03T10:50:00Z and 2026-03-03T11:00:00Z"
            ),
            "{text}"
        );
        assert!(text.contains("+") && text.contains("rate-limit"), "{text}");
        assert!(render(&h, Some("other")).contains("No configuration recorded"));
        // A damaged log line is named and the rest still read.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(h.log())
            .unwrap();
        f.write_all(b"{not json\n").unwrap();
        let (versions, bad) = h.versions();
        assert_eq!(versions.len(), 2);
        assert!(bad[0].contains("log.ndjson:3"), "{bad:?}");
    }

    #[test]
    fn object_names() {
        assert_eq!(object_name("config/policies/global.json"), "policy global");
        assert_eq!(
            object_name("config/policies/product-starter.json"),
            "policy product:starter"
        );
        assert_eq!(object_name("config/backends.json"), "backends");
        assert_eq!(
            object_name("config/operations/orders-api.json"),
            "operations orders-api"
        );
    }
}
