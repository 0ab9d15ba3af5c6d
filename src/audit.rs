//! The remediation audit log: an append-only, hash-chained file in the
//! state directory (`audit.log`). Every plan applied, dry run, undo,
//! verification, refusal (a model's or MCP client's request to act) and
//! crash reconciliation is one line: `<sha256> <entry json>`, where the hash
//! covers the previous line's hash and the exact entry bytes, and the entry
//! names the previous hash (`prev`). Editing, reordering or removing a line
//! breaks the chain at that line; [`verify`] finds it.
//!
//! Nothing secret lands in the log: every string of an entry (messages,
//! request and policy bodies, before/after states, the plan) passes through
//! the one redaction, `model::redact`, before it is written — a named-value
//! secret, a key in a URL, an `Authorization` value become `[SECRET-n]`.
//! Undo needs the exact before-state, so a plan the redaction changed is
//! kept beside the log in `plans/<sha256>.json` (owner-only, 0600), named
//! by the digest its entry records (`plan_sha256`); [`Log::plan_of`] reads
//! it back and refuses one whose digest no longer matches.
//!
//! This module only records and reads; it cannot execute anything, so every
//! surface (the model's refusals included) may write to it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// File name of the log inside the state directory.
pub const FILE: &str = "audit.log";
/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A plan was approved and its writes are about to be sent.
    Apply,
    /// Restoring an applied plan's before-state.
    Undo,
    /// A dry run (what-if, checks); nothing written.
    DryRun,
    /// Execution was asked for and refused (a model, MCP, a failed check, a rejected prompt).
    Refused,
    /// A write was accepted and is running (its operation URL).
    Accepted,
    /// The end of an apply or undo: succeeded, failed, interrupted.
    Result,
    /// An in-progress entry left by a killed process, settled by reading state.
    Reconcile,
    /// The check after: did the finding clear.
    Verify,
    /// A person approved or rejected a proposal in the dashboard; this
    /// records the decision only (execution is `apimedic remediate apply`).
    Decision,
}

/// One audit entry. `seq`, `prev` and `time` are set by [`Log::append`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub prev: String,
    #[serde(default)]
    pub time: String,
    pub kind: Option<Kind>,
    /// `in_progress`, `accepted`, `succeeded`, `failed`, `interrupted`,
    /// `refused`, `applied`, `not_applied`, `cleared`, `not_cleared`, …
    pub status: String,
    /// The OS user running apimedic.
    pub user: String,
    /// The Azure principal of the token (upn, app id or object id), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// `cli`, `tui`, `daemon (autonomous)`, `llm`, `mcp`.
    pub surface: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// The entry this one completes (an apply's id for its result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub requests: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub before: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub after: Vec<Value>,
    /// The plan applied (its requests, before-state, checks, undo), for
    /// undo and crash reconciliation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    /// sha256 of the exact plan kept in `plans/` when `plan` (as logged)
    /// had secrets redacted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub plan_sha256: Option<String>,
    /// How the person approved (typed the proposal id, `--approve HASH`, an autonomy rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// A long-running operation's URL (Azure-AsyncOperation or Location).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    pub message: String,
}

/// An entry as read back, with its hash and id (the hash's first 12 hex digits).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stored {
    pub id: String,
    pub hash: String,
    pub line: usize,
    #[serde(flatten)]
    pub entry: Entry,
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verification {
    pub entries: usize,
    /// The last good hash: anchor it elsewhere to detect a truncated tail.
    pub head: String,
    /// Each break: line and what is wrong. Empty = intact.
    pub broken: Vec<String>,
    /// A last line cut by a crash mid-write (not an entry, not tampering).
    pub torn_tail: bool,
}

/// The audit log of one state directory.
#[derive(Clone, Debug)]
pub struct Log {
    path: PathBuf,
}

/// The state directory: `--state-dir`, else `APIMEDIC_STATE_DIR`, else
/// `$XDG_STATE_HOME/apimedic`, else `~/.local/state/apimedic`.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("APIMEDIC_STATE_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(p).join("apimedic");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/state/apimedic"),
        None => PathBuf::from("apimedic-state"),
    }
}

/// The OS user name (`USER`, `LOGNAME`, else the uid).
pub fn os_user() -> String {
    for k in ["USER", "LOGNAME"] {
        if let Some(v) = std::env::var_os(k).filter(|v| !v.is_empty()) {
            return v.to_string_lossy().into_owned();
        }
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    format!("uid {}", unsafe { libc::getuid() })
}

fn sha256_hex(prev: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` to `path` readable by the owner only (0600), creating
/// its directory (0700). An existing file with the same name holds the
/// same bytes (the name is their digest) and is left as it is.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(bytes)?;
            f.sync_data()
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// An exclusive lock on the open log for the duration of an append.
struct Locked(std::fs::File);

impl Locked {
    fn open(path: &Path) -> std::io::Result<Locked> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        // SAFETY: flock on a valid, open descriptor; released on close.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Locked(f))
    }
}

impl Log {
    /// The log in `dir` (created on first append).
    pub fn new(dir: &Path) -> Log {
        Log {
            path: dir.join(FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` (setting its `seq`, `prev`, `time`) and returns it as
    /// stored. The line is written with one `write` and synced before this
    /// returns, under an exclusive lock, so two processes never interleave.
    pub fn append(&self, mut entry: Entry) -> anyhow::Result<Stored> {
        use anyhow::Context;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "cannot create the state directory {} (set --state-dir)",
                    dir.display()
                )
            })?;
        }
        let mut locked = Locked::open(&self.path)
            .with_context(|| format!("cannot open the audit log {}", self.path.display()))?;
        let mut text = String::new();
        locked.0.seek(SeekFrom::Start(0))?;
        locked
            .0
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read the audit log {}", self.path.display()))?;
        let (last, last_seq, torn) = tail_of(&text);
        let lines = text.lines().count();
        let mut prefix = String::new();
        if torn {
            // A crash cut the last line; start ours on a fresh line.
            prefix.push('\n');
        }
        self.redact(&mut entry)?;
        entry.seq = last_seq + 1;
        entry.prev = last.clone();
        entry.time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = serde_json::to_string(&entry)?;
        let hash = sha256_hex(&last, body.as_bytes());
        let line = format!("{prefix}{hash} {body}\n");
        locked
            .0
            .write_all(line.as_bytes())
            .and_then(|_| locked.0.sync_data())
            .with_context(|| format!("cannot write the audit log {}", self.path.display()))?;
        Ok(Stored {
            id: hash[..12].to_string(),
            hash,
            line: lines + 1,
            entry,
        })
    }

    /// Passes every string of `entry` through the one redaction; keeps an
    /// exact plan the redaction changed in `plans/` for undo.
    fn redact(&self, entry: &mut Entry) -> anyhow::Result<()> {
        use anyhow::Context;
        let mut r = crate::model::redact::Redactor::new(false);
        if let Some(plan) = entry.plan.as_mut() {
            let mut logged = plan.clone();
            r.redact_value(&mut logged);
            if logged != *plan {
                let exact = serde_json::to_vec(plan)?;
                let digest = sha256_hex("", &exact);
                let path = self.plans_dir().join(format!("{digest}.json"));
                write_private(&path, &exact)
                    .with_context(|| format!("cannot keep the exact plan in {}", path.display()))?;
                entry.plan_sha256 = Some(digest);
                *plan = logged;
            }
        }
        entry.message = r.redact(&entry.message);
        if let Some(op) = entry.operation.as_mut() {
            *op = r.redact(op);
        }
        for v in entry
            .requests
            .iter_mut()
            .chain(entry.before.iter_mut())
            .chain(entry.after.iter_mut())
        {
            r.redact_value(v);
        }
        Ok(())
    }

    fn plans_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(|d| d.join("plans"))
            .unwrap_or_else(|| PathBuf::from("plans"))
    }

    /// The exact plan of an entry: from `plans/` when the logged one was
    /// redacted (its digest checked), else the logged one.
    pub fn plan_of(&self, stored: &Stored) -> anyhow::Result<Option<Value>> {
        let Some(digest) = &stored.entry.plan_sha256 else {
            return Ok(stored.entry.plan.clone());
        };
        let path = self.plans_dir().join(format!("{digest}.json"));
        let bytes = std::fs::read(&path).map_err(|e| {
            anyhow::anyhow!(
                "audit entry {}: its exact plan {} cannot be read ({e}); the logged plan has secrets redacted and cannot restore them",
                stored.id,
                path.display()
            )
        })?;
        if sha256_hex("", &bytes) != *digest {
            anyhow::bail!(
                "audit entry {}: {} was altered (its sha256 is not the one the log recorded)",
                stored.id,
                path.display()
            );
        }
        Ok(Some(serde_json::from_slice(&bytes)?))
    }

    /// Every readable entry, in order (lines that do not parse are skipped
    /// here; [`verify`] reports them).
    pub fn read(&self) -> anyhow::Result<Vec<Stored>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot read the audit log {}: {e}",
                    self.path.display()
                ));
            }
        };
        Ok(parse(&text).0)
    }

    /// Reads and checks the whole chain.
    pub fn verify(&self) -> anyhow::Result<(Vec<Stored>, Verification)> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot read the audit log {}: {e}",
                    self.path.display()
                ));
            }
        };
        Ok(parse(&text))
    }

    /// The entry with this id (or a unique prefix of it, at least 6 digits),
    /// or `#seq`.
    pub fn find(&self, id: &str) -> anyhow::Result<Stored> {
        let all = self.read()?;
        let id = id.trim();
        if let Some(seq) = id.strip_prefix('#').and_then(|s| s.parse::<u64>().ok()) {
            return all.into_iter().find(|s| s.entry.seq == seq).ok_or_else(|| {
                anyhow::anyhow!("no audit entry #{seq} in {}", self.path.display())
            });
        }
        if id.len() < 6 {
            anyhow::bail!("an audit id has at least 6 hex digits (see `apimedic remediate log`)");
        }
        let lower = id.to_ascii_lowercase();
        let mut hits: Vec<Stored> = all
            .into_iter()
            .filter(|s| s.hash.starts_with(&lower))
            .collect();
        match hits.len() {
            0 => anyhow::bail!(
                "no audit entry {id} in {} (see `apimedic remediate log`)",
                self.path.display()
            ),
            1 => Ok(hits.remove(0)),
            n => anyhow::bail!("{n} audit entries start with {id}; give more digits"),
        }
    }
}

/// The last entry's hash and sequence number, and whether the text ends in
/// a cut line.
fn tail_of(text: &str) -> (String, u64, bool) {
    let torn = !text.is_empty() && !text.ends_with('\n');
    let complete = if torn {
        &text[..text.rfind('\n').map_or(0, |i| i + 1)]
    } else {
        text
    };
    let last = complete.lines().rev().find_map(|l| {
        let (h, body) = l.split_once(' ')?;
        let e: Entry = serde_json::from_str(body).ok()?;
        Some((h.to_string(), e.seq))
    });
    let (hash, seq) = last.unwrap_or_else(|| (GENESIS.to_string(), 0));
    (hash, seq, torn)
}

fn parse(text: &str) -> (Vec<Stored>, Verification) {
    let mut out = Vec::new();
    let mut v = Verification {
        head: GENESIS.to_string(),
        ..Verification::default()
    };
    let torn = !text.is_empty() && !text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let last_index = lines.len().saturating_sub(1);
    let mut prev = GENESIS.to_string();
    let mut seq = 0u64;
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if torn && i == last_index {
            v.torn_tail = true;
            continue;
        }
        let Some((hash, body)) = raw.split_once(' ') else {
            v.broken.push(format!("line {n}: not `<hash> <entry>`"));
            continue;
        };
        let entry: Entry = match serde_json::from_str(body) {
            Ok(e) => e,
            Err(e) => {
                v.broken.push(format!("line {n}: not an entry ({e})"));
                continue;
            }
        };
        seq += 1;
        if sha256_hex(&prev, body.as_bytes()) != hash {
            v.broken.push(format!(
                "line {n}: hash mismatch (the entry was edited, or a line before it removed)"
            ));
        } else if entry.prev != prev {
            v.broken
                .push(format!("line {n}: `prev` does not name the line before it"));
        }
        if entry.seq != seq {
            v.broken.push(format!(
                "line {n}: sequence {} where {seq} was expected (a line was removed or inserted)",
                entry.seq
            ));
            seq = entry.seq;
        }
        prev = hash.to_string();
        v.entries += 1;
        out.push(Stored {
            id: hash.get(..12).unwrap_or(hash).to_string(),
            hash: hash.to_string(),
            line: n,
            entry,
        });
    }
    v.head = prev;
    (out, v)
}

/// Records that a surface that may not act (a model's tool call, an MCP
/// call) asked to execute something, and was refused.
pub fn record_refusal(
    dir: &Path,
    surface: &str,
    request: &str,
    detail: &str,
) -> anyhow::Result<Stored> {
    Log::new(dir).append(Entry {
        kind: Some(Kind::Refused),
        status: "refused".into(),
        user: os_user(),
        surface: surface.into(),
        message: format!(
            "{surface} asked to execute `{request}`: refused; only a person can approve a remediation (`apimedic remediate apply`). {detail}"
        ),
        ..Entry::default()
    })
}

/// A model's tool calls that asked to act, refused by the read-only tool
/// layer: each is recorded in the audit log of the default state directory
/// so an auditor sees the attempt. A log that cannot be written is reported
/// on stderr, not fatal: the answer still prints.
pub fn record_model_refusals(refused: &[String]) {
    if refused.is_empty() {
        return;
    }
    let dir = state_dir(None);
    for name in refused {
        if let Err(e) = record_refusal(
            &dir,
            "llm",
            name,
            "The tools a model may call are read-only.",
        ) {
            eprintln!(
                "apimedic: cannot record the refused tool call `{name}` in the audit log: {e:#}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_log_and_undo_reads_the_exact_plan() {
        use serde_json::json;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(dir.path());
        let xml = "<policies><inbound><set-header name=\"Ocp-Apim-Subscription-Key\" exists-action=\"override\"><value>4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f</value></set-header><set-header name=\"Authorization\"><value>Basic dXNlcjpodW50ZXIy</value></set-header><send-request><set-url>https://backend.example.com/x?code=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5</set-url></send-request></inbound></policies>";
        let secrets = [
            "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f",
            "dXNlcjpodW50ZXIy",
            "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5",
        ];
        let plan = json!({"action": "rollback_policy",
            "before": [{"path": "/p", "body": {"properties": {"value": xml}}}],
            "undo": [{"method": "PUT", "body": {"properties": {"value": xml}}}]});
        let stored = log
            .append(Entry {
                kind: Some(Kind::Apply),
                plan: Some(plan.clone()),
                before: vec![json!({"properties": {"value": xml}})],
                requests: vec![json!({"body": {"properties": {"value": xml}}})],
                after: vec![json!({"properties": {"value": xml}})],
                message: format!("restoring {xml}"),
                ..entry("")
            })
            .unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        for s in secrets {
            assert!(!text.contains(s), "{s} in the log:\n{text}");
        }
        assert!(text.contains("[SECRET-"), "{text}");
        let (entries, v) = log.verify().unwrap();
        assert!(v.broken.is_empty(), "{v:?}");
        // Undo gets the exact before-state back, from an owner-only file.
        let back = &entries[0];
        assert_eq!(back.id, stored.id);
        assert_eq!(log.plan_of(back).unwrap(), Some(plan));
        let digest = back.entry.plan_sha256.clone().expect("kept aside");
        let kept = dir.path().join("plans").join(format!("{digest}.json"));
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
        // Altered or missing: refused, never a redacted restore.
        std::fs::write(&kept, b"{\"action\":\"x\"}").unwrap();
        assert!(
            log.plan_of(back)
                .unwrap_err()
                .to_string()
                .contains("altered")
        );
        std::fs::remove_file(&kept).unwrap();
        assert!(log.plan_of(back).is_err());
        // An entry without secrets keeps its plan inline.
        let plain = log
            .append(Entry {
                plan: Some(json!({"action": "scale_out"})),
                ..entry("scale")
            })
            .unwrap();
        assert!(plain.entry.plan_sha256.is_none());
        assert_eq!(
            log.plan_of(&plain).unwrap(),
            Some(json!({"action": "scale_out"}))
        );
    }

    fn entry(msg: &str) -> Entry {
        Entry {
            kind: Some(Kind::DryRun),
            status: "ok".into(),
            user: "u".into(),
            surface: "cli".into(),
            message: msg.into(),
            ..Entry::default()
        }
    }

    #[test]
    fn chain_verifies_and_edits_break_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(dir.path());
        let a = log.append(entry("one")).unwrap();
        let b = log.append(entry("two")).unwrap();
        log.append(entry("three")).unwrap();
        assert_eq!(b.entry.prev, a.hash);
        let (all, v) = log.verify().unwrap();
        assert_eq!(all.len(), 3);
        assert!(v.broken.is_empty(), "{:?}", v.broken);
        assert_eq!(log.find(&b.id).unwrap().entry.message, "two");
        assert_eq!(log.find("#3").unwrap().entry.message, "three");

        // Edit a message in place.
        let text = std::fs::read_to_string(log.path()).unwrap();
        std::fs::write(log.path(), text.replace("\"two\"", "\"TWO\"")).unwrap();
        let (_, v) = log.verify().unwrap();
        assert_eq!(v.broken.len(), 1, "{:?}", v.broken);
        assert!(
            v.broken[0].starts_with("line 2: hash mismatch"),
            "{:?}",
            v.broken
        );

        // Remove the middle line instead.
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(log.path(), format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let (_, v) = log.verify().unwrap();
        assert!(!v.broken.is_empty());
        assert!(
            v.broken.iter().any(|b| b.contains("line 2")),
            "{:?}",
            v.broken
        );
    }

    #[test]
    fn a_torn_last_line_is_reported_and_the_next_append_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(dir.path());
        log.append(entry("one")).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap();
        f.write_all(b"abc {\"seq\":2,").unwrap();
        drop(f);
        let (all, v) = log.verify().unwrap();
        assert_eq!(all.len(), 1);
        assert!(v.torn_tail && v.broken.is_empty());
        log.append(entry("two")).unwrap();
        let (all, v) = log.verify().unwrap();
        assert_eq!(all.len(), 2);
        // The cut line stays (append-only) and is reported as not an entry.
        assert_eq!(v.broken.len(), 1, "{:?}", v.broken);
        assert_eq!(all[1].entry.prev, all[0].hash);
    }

    #[test]
    fn refusal_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let s = record_refusal(dir.path(), "llm", "execute_remediation", "").unwrap();
        assert_eq!(s.entry.kind, Some(Kind::Refused));
        assert!(s.entry.message.contains("only a person"));
    }
}
