//! Configuration history from exports: earlier versions of policies, from a
//! history folder of dated copies or from the git log of an apiops
//! repository. Versions become `ConfigHistory` (oldest first per object)
//! and each change between two versions a `Change` with both texts, so
//! diagnose, markdown, the TUI and chat show the diff.
//!
//! Dated copies sit under a folder named `history` (or `policy-history`):
//! either a dated folder holding an export (`history/2026-03-07T10-58-27Z/
//! apis/orders/policy.xml`, apiops or flat layout) or a dated file name
//! (`history/apis/orders/policy.2026-03-07T10-58-27Z.xml`). Dates may be
//! RFC 3339, with `-` for `:` (file-name safe), compact (`20260307T105827Z`)
//! or a bare day. These files are versions, never the current configuration.
//!
//! Git: a folder given on the command line that is inside a git work tree
//! is read with `git log` (commit time, author, message) and `git cat-file`
//! for every `.xml` policy file under it — two processes, however many
//! commits; at most `MAX_COMMITS` commits are read.

use super::policy_files::scope_from_path;
use crate::model::{
    Change, ConfigHistory, ConfigObject, ConfigVersion, Origin, PolicyScope, Problem, Snapshot,
    Timestamp, days_from_civil, merge_histories, parse_timestamp,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Most commits read from one repository's log.
pub const MAX_COMMITS: usize = 500;

const HISTORY_DIRS: [&str; 3] = ["history", "policy-history", "policies-history"];

/// A date as history folders and file names write it.
pub fn parse_dated(s: &str) -> Option<Timestamp> {
    if let Some(t) = parse_timestamp(s) {
        return Some(t);
    }
    let re = regex::Regex::new(
        r"^(\d{4})-?(\d{2})-?(\d{2})(?:[T_ ](\d{2})[-:]?(\d{2})(?:[-:]?(\d{2}))?(?:\.\d+)?)?Z?$",
    )
    .ok()?;
    let c = re.captures(s.trim())?;
    let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<i64>().ok());
    let (y, mo, d) = (n(1)?, n(2)?, n(3)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    let (h, mi, sec) = (n(4).unwrap_or(0), n(5).unwrap_or(0), n(6).unwrap_or(0));
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(Timestamp(
        ((days * 86_400) + h * 3600 + mi * 60 + sec) * 1000,
    ))
}

/// For a file under a history folder: its version time and the path of
/// the object it is a copy of (what the scope is read from).
pub fn dated_copy(path: &str) -> Option<(Timestamp, String)> {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let at = parts
        .iter()
        .position(|p| HISTORY_DIRS.iter().any(|h| p.eq_ignore_ascii_case(h)))?;
    let rest = &parts[at + 1..];
    let (first, tail) = rest.split_first()?;
    // history/<date>/<export…>
    if !tail.is_empty()
        && let Some(t) = parse_dated(first)
    {
        return Some((t, tail.join("/")));
    }
    // history/<dirs…>/<name>.<date>.xml
    let (name, dirs) = rest.split_last()?;
    let stem = name
        .strip_suffix(".xml")
        .or_else(|| name.strip_suffix(".XML"))?;
    let (base, date) = stem.rsplit_once(['.', '@', '_'])?;
    let t = parse_dated(date)?;
    let mut out = dirs.join("/");
    if !out.is_empty() {
        out.push('/');
    }
    out.push_str(&format!("{base}.xml"));
    Some((t, out))
}

/// Histories from dated copies: (file name, text) pairs of files under a
/// history folder. Copies whose scope cannot be read are problems.
pub fn from_dated_copies(files: &[(String, String)]) -> (Vec<ConfigHistory>, Vec<Problem>) {
    let mut out: Vec<ConfigHistory> = Vec::new();
    let mut problems = Vec::new();
    for (file, text) in files {
        let Some((time, object_path)) = dated_copy(file) else {
            continue;
        };
        if !object_path.to_ascii_lowercase().ends_with(".xml") {
            problems.push(Problem {
                origin: Origin::file(file),
                message: "history copy of a non-policy file: only policy XML versions are read"
                    .into(),
            });
            continue;
        }
        let scope = scope_from_path(&object_path);
        if scope == PolicyScope::Unknown {
            problems.push(Problem {
                origin: Origin::file(file),
                message: format!(
                    "history copy {object_path}: no scope in its path (use the apiops or flat layout below the dated folder)"
                ),
            });
            continue;
        }
        merge_histories(
            &mut out,
            vec![ConfigHistory {
                object: ConfigObject::policy(&scope),
                versions: vec![ConfigVersion {
                    time,
                    content: text.trim_start_matches('\u{feff}').to_string(),
                    revision: Some(file.rsplit(['/', '\\']).next().unwrap_or(file).to_string()),
                    origin: Origin::at_line(file, 1),
                    ..ConfigVersion::default()
                }],
            }],
        );
    }
    (out, problems)
}

/// The git log of policy files under `dir`, when `dir` is in a git work
/// tree and git is installed; `None` otherwise (not a repository).
pub fn from_git(dir: &Path) -> Option<Result<Vec<ConfigHistory>, String>> {
    let top = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !top.status.success() {
        return None;
    }
    let top = PathBuf::from(String::from_utf8_lossy(&top.stdout).trim());
    // An export that merely sits in some repository (a notes repo, this
    // project's fixtures) has commit times that say nothing about the
    // gateway: only the repository itself, or an apiops repository, counts.
    let same = std::fs::canonicalize(dir).ok()? == std::fs::canonicalize(&top).ok()?;
    if !same && !looks_like_apiops(&top) {
        return None;
    }
    Some(read_git(dir))
}

/// An apiops repository: a `configuration.*.yaml` or an artifacts folder
/// (`apimartifacts`, `artifacts`) at its top.
fn looks_like_apiops(top: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(top) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name().to_string_lossy().to_ascii_lowercase();
        name == "apimartifacts"
            || name == "artifacts"
            || (name.starts_with("configuration.") && name.ends_with(".yaml"))
    })
}

fn read_git(dir: &Path) -> Result<Vec<ConfigHistory>, String> {
    let log = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "log",
            "--no-renames",
            "--relative",
            "--name-only",
            "--format=%x1e%H%x1f%cI%x1f%an <%ae>%x1f%s",
            &format!("-n{MAX_COMMITS}"),
            "--",
            ".",
        ])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run git log: {e}"))?;
    if !log.status.success() {
        return Err(format!(
            "git log failed: {}",
            String::from_utf8_lossy(&log.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&log.stdout);
    // (commit, time, author, subject, file)
    let mut wanted: Vec<(String, Timestamp, String, String, String)> = Vec::new();
    for rec in text.split('\u{1e}').filter(|r| !r.trim().is_empty()) {
        let mut lines = rec.lines();
        let head = lines.next().unwrap_or("");
        let f: Vec<&str> = head.split('\u{1f}').collect();
        let [hash, time, author, subject] = f.as_slice() else {
            continue;
        };
        let Some(t) = parse_timestamp(time) else {
            continue;
        };
        for file in lines.map(str::trim).filter(|l| !l.is_empty()) {
            if file.to_ascii_lowercase().ends_with(".xml")
                && scope_from_path(file) != PolicyScope::Unknown
            {
                wanted.push((
                    hash.to_string(),
                    t,
                    author.to_string(),
                    subject.to_string(),
                    file.to_string(),
                ));
            }
        }
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // Paths from `--relative` are relative to `dir`; cat-file wants `./`.
    let mut input = String::new();
    for (hash, _, _, _, file) in &wanted {
        input.push_str(&format!("{hash}:./{file}\n"));
    }
    let contents = cat_files(dir, &input)?;
    let mut out: Vec<ConfigHistory> = Vec::new();
    for ((hash, time, author, subject, file), content) in wanted.into_iter().zip(contents) {
        let scope = scope_from_path(&file);
        // A commit that deleted the file has no content: not a version.
        let Some(content) = content else {
            continue;
        };
        let shown = dir.join(&file).display().to_string();
        merge_histories(
            &mut out,
            vec![ConfigHistory {
                object: ConfigObject::policy(&scope),
                versions: vec![ConfigVersion {
                    time,
                    author: Some(author),
                    revision: Some(hash.chars().take(12).collect()),
                    message: Some(subject),
                    content,
                    origin: Origin::file(format!("{shown}@{}", &hash[..hash.len().min(12)])),
                }],
            }],
        );
    }
    Ok(out)
}

/// Contents of `rev:path` lines through one `git cat-file --batch`.
fn cat_files(dir: &Path, input: &str) -> Result<Vec<Option<String>>, String> {
    use std::io::Write;
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run git cat-file: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("git cat-file has no stdin")?;
    let owned = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(owned.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("git cat-file failed: {e}"))?;
    let _ = writer.join();
    let bytes = output.stdout;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(nl) = bytes[at..].iter().position(|b| *b == b'\n') else {
            break;
        };
        let header = String::from_utf8_lossy(&bytes[at..at + nl]).to_string();
        at += nl + 1;
        if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            out.push(None);
            continue;
        }
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("unexpected git cat-file header {header:?}"))?;
        let end = (at + size).min(bytes.len());
        out.push(Some(
            String::from_utf8_lossy(&bytes[at..end])
                .trim_start_matches('\u{feff}')
                .to_string(),
        ));
        at = end + 1;
    }
    Ok(out)
}

/// Changes between consecutive versions, folded into the snapshot: a
/// history change within ten minutes of an activity-log write to the same
/// policy scope fills that event's missing texts instead of adding a
/// second change.
pub fn add_changes(snap: &mut Snapshot) {
    let derived: Vec<Change> = snap
        .history
        .iter()
        .flat_map(ConfigHistory::changes)
        .collect();
    for c in derived {
        let near = snap.changes.iter_mut().find(|e| {
            e.policy_scope.is_some()
                && e.policy_scope == c.policy_scope
                && (e.time.0 - c.time.0).abs() <= 10 * 60_000
        });
        match near {
            Some(e) => {
                if e.policy_before.is_none() {
                    e.policy_before = c.policy_before.clone();
                }
                if e.policy_after.is_none() {
                    e.policy_after = c.policy_after.clone();
                }
                if e.description.is_none() {
                    e.description = c.description.clone();
                }
            }
            None => snap.changes.push(c),
        }
    }
    snap.changes.sort_by_key(|c| c.time);
}

/// Git histories of the folders given, with a problem for a repository
/// that could not be read.
pub fn from_paths(paths: &[PathBuf]) -> (Vec<ConfigHistory>, Vec<Problem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for p in paths.iter().filter(|p| p.is_dir()) {
        match from_git(p) {
            None => {}
            Some(Ok(h)) => merge_histories(&mut out, h),
            Some(Err(e)) => problems.push(Problem {
                origin: Origin::file(p.display().to_string()),
                message: format!("{e}; its history is not used"),
            }),
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_forms_history_folders_use() {
        let t = parse_timestamp("2026-03-07T10:58:27Z").unwrap();
        for s in [
            "2026-03-07T10:58:27Z",
            "2026-03-07T10-58-27Z",
            "20260307T105827Z",
            "2026-03-07_10-58-27",
        ] {
            assert_eq!(parse_dated(s), Some(t), "{s}");
        }
        assert_eq!(
            parse_dated("2026-03-07"),
            parse_timestamp("2026-03-07T00:00:00Z")
        );
        assert_eq!(parse_dated("v2"), None);
        assert_eq!(parse_dated("2026-13-07"), None);
    }

    #[test]
    fn dated_folders_and_dated_file_names() {
        let t = parse_dated("2026-03-07T10-58-27Z").unwrap();
        assert_eq!(
            dated_copy("export/history/2026-03-07T10-58-27Z/apis/orders/policy.xml"),
            Some((t, "apis/orders/policy.xml".to_string()))
        );
        assert_eq!(
            dated_copy("export/history/apis/orders/policy.2026-03-07T10-58-27Z.xml"),
            Some((t, "apis/orders/policy.xml".to_string()))
        );
        assert_eq!(
            dated_copy("history/policies/apis/orders@20260307T105827Z.xml"),
            Some((t, "policies/apis/orders.xml".to_string()))
        );
        assert_eq!(dated_copy("export/apis/orders/policy.xml"), None);
    }

    #[test]
    fn copies_become_versions_and_changes_with_diffs() {
        let old = "<policies><backend><forward-request timeout=\"30\" /></backend></policies>";
        let new = "<policies><backend><forward-request timeout=\"5\" /></backend></policies>";
        let files = vec![
            (
                "h/history/2026-03-07T10-00-00Z/apis/orders/policy.xml".to_string(),
                old.to_string(),
            ),
            (
                "h/history/2026-03-07T10-58-00Z/apis/orders/policy.xml".to_string(),
                new.to_string(),
            ),
            // Saved again unchanged: not a new version.
            (
                "h/history/2026-03-07T11-30-00Z/apis/orders/policy.xml".to_string(),
                new.to_string(),
            ),
            (
                "h/history/2026-03-07T11-30-00Z/notes/readme.xml".to_string(),
                "<x/>".to_string(),
            ),
        ];
        let (h, problems) = from_dated_copies(&files);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].object.to_string(), "policy api:orders");
        assert_eq!(h[0].versions.len(), 2);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let changes = h[0].changes();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].time,
            parse_dated("2026-03-07T10-58-00Z").unwrap()
        );
        assert_eq!(changes[0].policy_before.as_deref(), Some(old));
        assert_eq!(changes[0].policy_after.as_deref(), Some(new));
    }
}
