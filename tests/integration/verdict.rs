//! Verdicts safe to act on (#11), through the built binary and the library.

use crate::cli::{apimedic, stderr, stdout};
use std::path::Path;
use std::process::Command;

fn scenario(name: &str) -> std::path::PathBuf {
    crate::cli::root().join("fixtures/scenarios").join(name)
}

#[test]
fn no_traffic_is_unknown_and_exit_2_never_healthy() {
    // An empty folder.
    let empty = tempfile::tempdir().unwrap();
    let out = apimedic([Path::new("diagnose"), empty.path()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("UNKNOWN — no traffic data"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("HEALTHY"), "{}", stdout(&out));
    // A file with no usable record.
    std::fs::write(empty.path().join("junk.json"), "{\"nothing\": true}").unwrap();
    let out = apimedic([Path::new("diagnose"), empty.path()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    // Configuration without any traffic.
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("policy.xml"),
        "<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>",
    )
    .unwrap();
    let out = apimedic([Path::new("diagnose"), config.path()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("UNKNOWN"), "{}", stdout(&out));
    let json = apimedic([
        Path::new("diagnose"),
        Path::new("--format"),
        Path::new("json"),
        config.path(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v["verdict"]["state"], "unknown");
}

#[test]
fn an_empty_or_inverted_window_is_not_an_all_clear() {
    let dir = scenario("healthy");
    let late = apimedic([
        Path::new("diagnose"),
        Path::new("--since"),
        Path::new("2030-01-01T00:00:00Z"),
        dir.as_path(),
    ]);
    assert_eq!(late.status.code(), Some(2), "{}", stdout(&late));
    assert!(
        stdout(&late).contains("no traffic data in the window"),
        "{}",
        stdout(&late)
    );
    let inverted = apimedic([
        Path::new("diagnose"),
        Path::new("--since"),
        Path::new("1h"),
        Path::new("--until"),
        Path::new("2h"),
        dir.as_path(),
    ]);
    assert_eq!(inverted.status.code(), Some(2));
    assert!(
        stderr(&inverted).contains("is not before --until"),
        "{}",
        stderr(&inverted)
    );
}

#[test]
fn every_finding_and_story_says_ongoing_or_ended() {
    let out = apimedic([
        Path::new("diagnose"),
        Path::new("--format"),
        Path::new("json"),
        scenario("policy-timeout").as_path(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for f in v["findings"].as_array().unwrap() {
        let anomaly = matches!(
            f["kind"].as_str().unwrap(),
            "error_spike" | "backend_timeout" | "backend_failure" | "latency_regression" | "quota"
        );
        if anomaly {
            let state = f["timeline"]["state"].as_str().unwrap_or("");
            assert!(state == "ongoing" || state == "ended", "{f}");
            assert!(f["timeline"]["since"].is_string(), "{f}");
        }
    }
    for s in v["stories"].as_array().unwrap() {
        assert!(s["timeline"]["state"].is_string(), "{s}");
        assert!(s["id"].as_str().is_some_and(|i| i.len() == 16), "{s}");
        for sus in s["suspects"].as_array().unwrap() {
            assert!(sus["lead_minutes"].as_i64().unwrap() >= 0, "{sus}");
        }
    }
    let state = v["verdict"]["state"].as_str().unwrap();
    assert!(
        state == "unhealthy" || state == "recovered",
        "{}",
        v["verdict"]
    );
}

#[test]
fn proposals_follow_the_story_and_carry_what_to_run() {
    let out = apimedic([
        Path::new("diagnose"),
        Path::new("--format"),
        Path::new("json"),
        scenario("policy-timeout").as_path(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let props = v["proposals"].as_array().unwrap();
    let first = &props[0];
    // The policy-change story's own fix first: restore the policy or its timeout.
    let t = first["action"]["type"].as_str().unwrap();
    assert!(t == "rollback_policy" || t == "set_timeout", "{first}");
    assert_eq!(first["story"], v["stories"][0]["id"], "{first}");
    assert!(
        first["command"]
            .as_str()
            .unwrap()
            .starts_with("az rest --method put"),
        "{first}"
    );
    assert!(
        first["document"]["text"]
            .as_str()
            .unwrap()
            .contains("forward-request"),
        "{first}"
    );
    // No "roll back the deployment" without a deployment before the spike.
    assert!(
        props.iter().all(|p| !p["title"]
            .as_str()
            .unwrap()
            .contains("Roll back the deployment")),
        "{props:#?}"
    );
    // Duplicates merge.
    let mut seen = std::collections::BTreeSet::new();
    for p in props {
        assert!(
            seen.insert((p["title"].to_string(), p["action"].to_string())),
            "duplicate {p}"
        );
    }
    // No unfilled placeholder anywhere.
    let text = stdout(&apimedic([
        Path::new("diagnose"),
        scenario("policy-timeout").as_path(),
    ]));
    assert!(
        !text.contains("{scope}") && !text.contains("{seconds}"),
        "{text}"
    );
}

#[test]
fn nsg_story_first_proposal_fixes_the_rule() {
    let out = apimedic([
        Path::new("diagnose"),
        Path::new("--format"),
        Path::new("json"),
        scenario("nsg-block").as_path(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let first = &v["proposals"][0];
    assert_eq!(
        first["action"]["type"], "add_nsg_rule",
        "{:#}",
        v["proposals"]
    );
    assert_eq!(first["document"]["format"], "rule_json", "{first}");
    assert!(
        first["command"]
            .as_str()
            .unwrap()
            .starts_with("az network nsg rule create"),
        "{first}"
    );
}

#[test]
fn lint_lints_every_policy_file_and_says_why_one_is_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    for (team, body) in [
        ("team-a", "<policies><inbound /></policies>"),
        (
            "team-b",
            "<policies><inbound><base /><set-header name=\"x\" exists-action=\"override\"><value>1</value></set-header></inbound><outbound /></policies>",
        ),
    ] {
        std::fs::create_dir_all(dir.path().join(team)).unwrap();
        std::fs::write(dir.path().join(team).join("policy.xml"), body).unwrap();
    }
    let out = apimedic([Path::new("lint"), dir.path()]);
    let text = stdout(&out);
    assert!(text.contains("team-a/policy.xml"), "{text}");
    assert!(text.contains("team-b/policy.xml"), "{text}");
    assert!(text.contains("in 2 policy documents"), "{text}");
    assert!(
        stderr(&out).contains("linted, not applied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn net_check_names_its_direction_and_rejects_unknown_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nsg.json");
    std::fs::write(
        &file,
        r#"{"name":"apim-nsg","properties":{"securityRules":[{"name":"deny-backend","properties":{"protocol":"Tcp","access":"Deny","direction":"Outbound","priority":200,"sourceAddressPrefix":"VirtualNetwork","sourcePortRange":"*","destinationAddressPrefix":"10.1.0.0/24","destinationPortRange":"443"}}]}}"#,
    )
    .unwrap();
    let out = apimedic([
        "net",
        "check",
        "--nsg",
        file.to_str().unwrap(),
        "--from",
        "gateway",
        "--to",
        "10.1.0.4",
        "--port",
        "443",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("denied by deny-backend (priority 200)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("direction outbound (inferred"),
        "{}",
        stdout(&out)
    );
    let bad = apimedic([
        "net",
        "check",
        "--nsg",
        file.to_str().unwrap(),
        "--from",
        "gateway",
        "--to",
        "backend-app",
        "--port",
        "443",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("is not an endpoint"),
        "{}",
        stderr(&bad)
    );
    assert!(
        stderr(&bad).contains("AzureLoadBalancer"),
        "{}",
        stderr(&bad)
    );
}

fn git(dir: &Path, args: &[&str], when: &str) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_DATE", when)
        .env("GIT_COMMITTER_DATE", when)
        .env("GIT_AUTHOR_NAME", "Alex")
        .env("GIT_AUTHOR_EMAIL", "alex@contoso.com")
        .env("GIT_COMMITTER_NAME", "Alex")
        .env("GIT_COMMITTER_EMAIL", "alex@contoso.com")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn an_apiops_repository_log_is_the_config_history() {
    let repo = tempfile::tempdir().unwrap();
    if !git(repo.path(), &["init", "-q"], "2026-03-07T09:00:00Z") {
        eprintln!("skipping: git is not installed");
        return;
    }
    let policy = repo.path().join("apis/orders-api");
    std::fs::create_dir_all(&policy).unwrap();
    let file = policy.join("policy.xml");
    std::fs::write(
        &file,
        "<policies>\n<backend>\n<forward-request timeout=\"30\" />\n</backend>\n</policies>\n",
    )
    .unwrap();
    assert!(git(repo.path(), &["add", "."], "2026-03-07T09:00:00Z"));
    assert!(git(
        repo.path(),
        &["commit", "-qm", "orders: first"],
        "2026-03-07T09:00:00Z"
    ));
    std::fs::write(
        &file,
        "<policies>\n<backend>\n<forward-request timeout=\"5\" />\n</backend>\n</policies>\n",
    )
    .unwrap();
    assert!(git(
        repo.path(),
        &["commit", "-qam", "orders: faster timeout"],
        "2026-03-07T10:58:00Z"
    ));
    let snap = apimedic::collect::collect(&[repo.path().to_path_buf()]).unwrap();
    assert_eq!(snap.history.len(), 1, "{:?}", snap.history);
    assert_eq!(snap.history[0].versions.len(), 2);
    assert_eq!(
        snap.history[0].versions[1].author.as_deref(),
        Some("Alex <alex@contoso.com>")
    );
    let change = snap
        .changes
        .iter()
        .find(|c| c.time == apimedic::model::parse_timestamp("2026-03-07T10:58:00Z").unwrap())
        .expect("the commit is a change");
    assert!(
        change
            .policy_before
            .as_deref()
            .unwrap()
            .contains("timeout=\"30\"")
    );
    assert!(
        change
            .policy_after
            .as_deref()
            .unwrap()
            .contains("timeout=\"5\"")
    );
    assert_eq!(change.caller.as_deref(), Some("Alex <alex@contoso.com>"));
}
