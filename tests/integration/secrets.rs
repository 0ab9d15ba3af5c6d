//! Secrets planted where real ones turn up — a subscription key and a SAS
//! signature in request URLs, a password in a backend URL (in the logs and
//! in the backend list), a key and a password in policy XML — never appear
//! in any output: diagnose (text, markdown, JSON), lint (text, JSON,
//! SARIF), ask (text, JSON) and the daemon's summary. One redaction
//! (`model::redact`), applied once per output.

use crate::cli::{apimedic, root, stderr, stdout};
use std::path::Path;

const KEY: &str = "5ec7e75ba1b2c3d4e5f60718293a4b5c";
const SIG: &str = "q8Zr3x2YtWvU1sR0pQ9oN8mL7kJ6iH5g";
const PASSWORD: &str = "Pa55w0rdXyzzy";
const POLICY_KEY: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const BASIC_PASSWORD: &str = "Winter2026Basic";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let q = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &q);
        } else {
            std::fs::copy(&p, &q).unwrap();
        }
    }
}

fn edit(path: &Path, f: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let new = f(&text);
    assert_ne!(new, text, "{} was not changed", path.display());
    std::fs::write(path, new).unwrap();
}

/// The backend-oom scenario with secrets planted in logs, backends and a policy.
fn planted() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("fixtures/scenarios/backend-oom"), dir.path());
    for e in std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .flatten()
    {
        edit(&e.path(), |t| {
            t.replace(
                "warehouse=ams-3\"",
                &format!("warehouse=ams-3&subscription-key={KEY}&sig={SIG}\""),
            )
            .replace(
                "\"BackendUrl\":\"https://inventory-app",
                &format!("\"BackendUrl\":\"https://svc:{PASSWORD}@inventory-app"),
            )
        });
    }
    edit(&dir.path().join("config/backends.json"), |t| {
        t.replace(
            "\"url\": \"https://inventory-app",
            &format!("\"url\": \"https://svc:{PASSWORD}@inventory-app"),
        )
    });
    edit(&dir.path().join("policies/apis/orders-api.xml"), |t| {
        t.replacen(
            "<inbound>",
            &format!(
                "<inbound>\n    <set-header name=\"Ocp-Apim-Subscription-Key\" exists-action=\"override\"><value>{POLICY_KEY}</value></set-header>\n    <authentication-basic username=\"svc\" password=\"{BASIC_PASSWORD}\" />"
            ),
            1,
        )
    });
    dir
}

fn assert_clean(what: &str, text: &str) {
    assert!(!text.is_empty(), "{what}: no output");
    assert_no_secret(what, text);
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [KEY, SIG, PASSWORD, POLICY_KEY, BASIC_PASSWORD] {
        assert!(!text.contains(s), "{what} printed the secret {s}:\n{text}");
    }
}

#[test]
fn no_output_prints_a_secret_found_in_logs_backends_or_policies() {
    let dir = planted();
    let d = dir.path().to_str().unwrap();
    // The planted data is really read: the raw files hold the secrets.
    let raw = std::fs::read_to_string(dir.path().join("config/backends.json")).unwrap();
    assert!(raw.contains(PASSWORD));
    let mut redacted = 0;
    for fmt in ["text", "markdown", "json"] {
        let out = apimedic(["diagnose", d, "--format", fmt, "--records", "5"]);
        let text = stdout(&out);
        assert_clean(&format!("diagnose --format {fmt}"), &text);
        assert_no_secret(&format!("diagnose --format {fmt} (stderr)"), &stderr(&out));
        redacted += text.matches("[SECRET-").count();
        if fmt == "json" {
            serde_json::from_str::<serde_json::Value>(&text).expect("still valid JSON");
        }
    }
    assert!(redacted > 0, "the secrets were in the reports, redacted");
    for fmt in ["text", "json", "sarif"] {
        let out = apimedic(["lint", d, "--format", fmt]);
        assert_clean(&format!("lint --format {fmt}"), &stdout(&out));
        assert_no_secret(&format!("lint --format {fmt} (stderr)"), &stderr(&out));
    }
    for q in [
        "why is inventory failing?",
        "show me the failing requests",
        "what backends are there?",
        "what does the policy of orders-api do?",
    ] {
        for fmt in ["text", "json"] {
            let out = apimedic(["ask", "--offline", "--format", fmt, q, d]);
            assert_clean(&format!("ask {q:?} --format {fmt}"), &stdout(&out));
        }
    }
    let state = tempfile::tempdir().unwrap();
    let out = apimedic([
        "daemon",
        "--once",
        "--state-dir",
        state.path().to_str().unwrap(),
        d,
    ]);
    assert_clean("daemon --once", &stdout(&out));
}
