//! `apimedic remediate` end to end against the stateful ARM stand-in
//! (`arm_standin`): every action type through plan -> apply -> verify ->
//! undo, what-if dry runs, 412/409/429/403, kill -9 mid-apply then rerun,
//! Ctrl-C during a long-running operation, the approval prompt in tmux, a
//! model's request to act refused and audited, the audit chain's tamper
//! check, and a test that the crate's `use` lines keep llm/chat/tools/
//! daemon alerting/mcp away from `remediate`.

use super::arm_standin::{StandIn, TOKEN};
use super::cli::{root, stderr, stdout};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scenario(name: &str) -> PathBuf {
    root().join("fixtures/scenarios").join(name)
}

fn service_id(name: &str) -> String {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(scenario(name).join("config/service.json")).expect("service.json"),
    )
    .expect("json");
    v["id"].as_str().expect("id").to_string()
}

/// One test's world: a stand-in seeded from a scenario and a state dir.
struct World {
    arm: StandIn,
    state: tempfile::TempDir,
    scenario: String,
    svc: String,
}

impl World {
    fn new(name: &str) -> World {
        World {
            arm: StandIn::start(&scenario(name)),
            state: tempfile::tempdir().expect("tempdir"),
            scenario: name.to_string(),
            svc: service_id(name),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_apimedic"));
        c.args(args)
            .current_dir(root())
            .env("NO_COLOR", "1")
            .env("APIMEDIC_ARM_URL", &self.arm.url)
            .env("APIMEDIC_ARM_TOKEN", TOKEN)
            .env("APIMEDIC_STATE_DIR", self.state.path())
            .env_remove("APIMEDIC_LLM_BASE_URL");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("apimedic runs")
    }

    fn data(&self) -> String {
        scenario(&self.scenario).display().to_string()
    }

    /// `remediate SUB ID SERVICE --data SCENARIO EXTRA…`
    fn remediate(&self, sub: &str, id: &str, extra: &[&str]) -> Output {
        let data = self.data();
        let mut args = vec![
            "remediate",
            sub,
            id,
            &self.svc,
            "--data",
            &data,
            "--poll",
            "100ms",
        ];
        if sub == "plan" {
            args.retain(|a| *a != "--poll" && *a != "100ms");
        }
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn plan_json(&self, id: &str) -> Value {
        let out = self.remediate("plan", id, &["--format", "json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("plan json: {e}\n{}\n{}", stdout(&out), stderr(&out)))
    }

    fn log(&self) -> Value {
        let out = self.run(&["remediate", "log", "--format", "json"]);
        serde_json::from_slice(&out.stdout).expect("log json")
    }

    fn entries(&self) -> Vec<Value> {
        self.log()["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The first proposal of `action` type in the scenario's diagnosis.
fn proposal(scenario_name: &str, action: &str) -> String {
    let out = super::cli::apimedic([
        "diagnose",
        &scenario(scenario_name).display().to_string(),
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("diagnose json");
    v["proposals"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["action"]["type"] == action)
        .and_then(|p| p["id"].as_str())
        .unwrap_or_else(|| panic!("{scenario_name} proposes no {action}: {}", v["proposals"]))
        .to_string()
}

fn approve_hash(plan: &Value) -> String {
    plan["hash"].as_str().expect("hash")[..16].to_string()
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// The audit id of the last apply entry.
fn last_apply(w: &World) -> String {
    w.entries()
        .iter()
        .rev()
        .find(|e| e["kind"] == "apply")
        .and_then(|e| e["id"].as_str())
        .expect("an apply entry")
        .to_string()
}

/// plan -> apply (--approve hash) -> re-read -> undo -> re-read, for one
/// action; returns the world for more checks.
fn round_trip(
    scen: &str,
    action: &str,
    check_after: impl Fn(&World),
    check_undone: impl Fn(&World),
) -> World {
    let w = World::new(scen);
    let id = proposal(scen, action);
    let plan = w.plan_json(&id);
    // A plan names its action family: adding a rule and changing one are
    // both `fix_nsg_rule` (the name autonomy policies use).
    let family = if action == "add_nsg_rule" {
        "fix_nsg_rule"
    } else {
        action
    };
    assert_eq!(plan["action"], family, "{plan}");
    assert_eq!(plan["live"], true);
    assert_eq!(plan["ready"], true, "{plan}");
    assert!(!plan["requests"].as_array().expect("requests").is_empty());
    assert!(!plan["undo"].as_array().expect("undo").is_empty());
    assert!(!plan["diff"].as_str().unwrap_or("").is_empty());
    assert!(
        w.arm.writes().is_empty(),
        "plan never writes: {:?}",
        w.arm.writes()
    );
    let out = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    ok(&out);
    assert!(stderr(&out).contains("applied:"), "{}", stderr(&out));
    check_after(&w);
    let writes = w.arm.writes().len();
    assert!(writes >= 1);
    // Applying again is refused: the log shows it applied.
    let again = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("applied already"),
        "{}",
        stderr(&again)
    );
    assert_eq!(w.arm.writes().len(), writes, "nothing sent twice");
    // Undo, approved by its own plan's hash (shown by a dry run).
    let audit = last_apply(&w);
    let dry = w.run(&["remediate", "undo", &audit, "--dry-run"]);
    ok(&dry);
    assert_eq!(w.arm.writes().len(), writes, "a dry run never writes");
    let undo_hash = stderr(&dry)
        .lines()
        .find_map(|l| l.split("plan ").nth(1).map(|h| h.trim().to_string()))
        .expect("the undo plan's hash");
    let out = w.run(&[
        "remediate",
        "undo",
        &audit,
        "--approve",
        &undo_hash,
        "--poll",
        "100ms",
    ]);
    ok(&out);
    assert!(stderr(&out).contains("undone"), "{}", stderr(&out));
    check_undone(&w);
    let log = w.log();
    assert_eq!(log["verified"], true, "{log}");
    let statuses: Vec<(String, String)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_string(),
                e["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("apply", "in_progress"),
        ("result", "succeeded"),
        ("undo", "in_progress"),
        ("dry_run", "not_executed"),
    ] {
        assert!(
            statuses.iter().any(|(k, s)| k == want.0 && s == want.1),
            "{want:?} missing: {statuses:?}"
        );
    }
    for e in log["entries"].as_array().unwrap() {
        assert!(
            !e.to_string().contains(TOKEN),
            "the token never reaches the audit log"
        );
    }
    w
}

fn policy_value(w: &World, path_end: &str) -> String {
    let id = format!("{}{path_end}", w.svc);
    w.arm
        .get(&id)
        .and_then(|v| v["properties"]["value"].as_str().map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn scale_out_through_autoscale_then_undo() {
    let w = round_trip(
        "capacity",
        "scale_out",
        |w| {
            let seen = w.arm.writes();
            assert!(
                seen.iter().any(|s| s.starts_with("PATCH")
                    && s.to_ascii_lowercase().contains("autoscalesettings")),
                "{seen:?}"
            );
        },
        |_| {},
    );
    let setting = w
        .arm
        .get(&format!(
            "{}/providers/microsoft.insights/autoscalesettings/contoso-apim-autoscale",
            w.svc.split("/providers/").next().unwrap()
        ))
        .expect("setting");
    assert_eq!(
        setting["properties"]["profiles"][0]["capacity"]["minimum"], "1",
        "undo restored the minimum"
    );
    assert!(
        setting["properties"]["profiles"][0]["rules"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "rules kept"
    );
}

#[test]
fn scale_out_patches_the_service_and_follows_the_operation() {
    let w = World::new("capacity");
    // No autoscale setting: the units are patched directly (202 + polling).
    let rg = w.svc.split("/providers/").next().unwrap().to_string();
    w.arm.touch(
        &format!("{rg}/providers/microsoft.insights/autoscalesettings/contoso-apim-autoscale"),
        |v| {
            v["properties"]["enabled"] = Value::Bool(false);
        },
    );
    let id = proposal("capacity", "scale_out");
    let before = w.arm.get(&w.svc).unwrap()["sku"]["capacity"]
        .as_u64()
        .unwrap();
    let plan = w.plan_json(&id);
    assert_eq!(plan["requests"][0]["method"], "PATCH");
    assert!(
        plan["requests"][0]["if_match"]
            .as_str()
            .is_some_and(|m| m != "*"),
        "{plan}"
    );
    // Dry run: ARM what-if predicts the capacity change, nothing written.
    let dry = w.remediate("apply", &id, &["--dry-run"]);
    ok(&dry);
    assert!(stderr(&dry).contains("Modify"), "{}", stderr(&dry));
    assert!(stderr(&dry).contains("sku.capacity"), "{}", stderr(&dry));
    assert!(w.arm.writes().is_empty());
    w.arm.set_polls(3);
    let out = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("accepted: long-running operation"), "{err}");
    assert!(err.contains("InProgress"), "{err}");
    assert_eq!(
        w.arm.get(&w.svc).unwrap()["sku"]["capacity"].as_u64(),
        Some(before + 1)
    );
    let seen = w.arm.seen();
    let patch = seen.iter().find(|s| s.method == "PATCH").unwrap();
    assert!(
        patch.if_match.as_deref().is_some_and(|m| m != "*"),
        "If-Match carries the ETag"
    );
    assert!(
        seen.iter()
            .filter(|s| s.path.contains("/operations/"))
            .count()
            >= 3,
        "polled to the end"
    );
    let entries = w.entries();
    assert!(entries.iter().any(|e| {
        e["kind"] == "accepted"
            && e["operation"]
                .as_str()
                .is_some_and(|o| o.contains("/operations/"))
    }));
    // Undo: another PATCH back, followed the same way.
    let audit = last_apply(&w);
    let dry = w.run(&["remediate", "undo", &audit, "--dry-run"]);
    let hash = stderr(&dry)
        .lines()
        .find_map(|l| l.split("plan ").nth(1).map(|h| h.trim().to_string()))
        .unwrap();
    ok(&w.run(&[
        "remediate",
        "undo",
        &audit,
        "--approve",
        &hash,
        "--poll",
        "100ms",
    ]));
    assert_eq!(
        w.arm.get(&w.svc).unwrap()["sku"]["capacity"].as_u64(),
        Some(before)
    );
}

#[test]
fn rollback_puts_the_policy_with_if_match_then_undo_restores_it() {
    let mut original = String::new();
    let mut scope = String::new();
    let w = World::new("policy-timeout");
    let id = proposal("policy-timeout", "rollback_policy");
    let plan = w.plan_json(&id);
    let path = plan["requests"][0]["path"]
        .as_str()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    if let Some(s) = path.strip_prefix(&w.svc) {
        scope = s.to_string();
        original = policy_value(&w, s);
    }
    assert!(!original.is_empty(), "{plan}");
    drop(w);
    round_trip(
        "policy-timeout",
        "rollback_policy",
        |w| {
            assert_ne!(policy_value(w, &scope), original);
            let put = w
                .arm
                .seen()
                .into_iter()
                .find(|s| s.method == "PUT")
                .unwrap();
            assert!(
                put.if_match.is_some_and(|m| m != "*"),
                "If-Match carries the ETag"
            );
        },
        |w| assert_eq!(policy_value(w, &scope), original),
    );
}

#[test]
fn nsg_rule_put_and_delete_follow_their_operations() {
    round_trip(
        "nsg-block",
        "add_nsg_rule",
        |w| {
            let put = w
                .arm
                .writes()
                .into_iter()
                .find(|s| s.starts_with("PUT"))
                .unwrap();
            assert!(
                put.to_ascii_lowercase().contains("/securityrules/"),
                "{put}"
            );
        },
        |w| {
            assert!(
                w.arm.writes().iter().any(|s| s.starts_with("DELETE")),
                "{:?}",
                w.arm.writes()
            );
        },
    );
}

#[test]
fn limit_raise_round_trip() {
    round_trip(
        "rate-limit",
        "raise_limit",
        |w| {
            let put = w
                .arm
                .seen()
                .into_iter()
                .find(|s| s.method == "PUT")
                .unwrap();
            assert!(
                put.body.unwrap().to_string().contains("calls="),
                "new calls in the body"
            );
        },
        |_| {},
    );
}

#[test]
fn a_changed_etag_or_a_412_means_replan_and_nothing_written() {
    let w = World::new("rate-limit");
    let id = proposal("rate-limit", "raise_limit");
    let plan = w.plan_json(&id);
    let path = plan["requests"][0]["path"]
        .as_str()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    // Someone else writes the policy after it was approved.
    w.arm.touch(&path, |_| {});
    let out = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--approve names another plan"),
        "{}",
        stderr(&out)
    );
    assert!(w.arm.writes().is_empty());
    // A 412 from ARM itself (the ETag moved between check and write).
    let plan = w.plan_json(&id);
    w.arm
        .fault("PUT", "/policies/policy", 412, "PreconditionFailed", None);
    let out = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("412"), "{}", stderr(&out));
    assert!(
        w.entries()
            .iter()
            .any(|e| e["kind"] == "result" && e["status"] == "stale")
    );
}

#[test]
fn throttling_and_a_busy_resource_are_waited_out_and_403_names_the_role() {
    let w = World::new("rate-limit");
    let id = proposal("rate-limit", "raise_limit");
    let plan = w.plan_json(&id);
    w.arm
        .fault("PUT", "/policies/policy", 429, "TooManyRequests", Some(1));
    w.arm.fault(
        "PUT",
        "/policies/policy",
        409,
        "AnotherOperationInProgress",
        Some(1),
    );
    let out = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    ok(&out);
    let err = stderr(&out);
    assert!(err.contains("throttled (429)"), "{err}");
    assert!(err.contains("another operation is running (409)"), "{err}");
    assert_eq!(w.arm.writes().len(), 3, "two refused, one accepted");

    let w = World::new("nsg-block");
    let id = proposal("nsg-block", "add_nsg_rule");
    let plan = w.plan_json(&id);
    w.arm
        .fault("PUT", "/securityrules/", 403, "AuthorizationFailed", None);
    let out = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("Network Contributor"),
        "{}",
        stderr(&out)
    );
    assert!(
        w.entries()
            .iter()
            .any(|e| e["kind"] == "result" && e["status"] == "failed")
    );

    // Busy for longer than --busy-wait: a clear failure, not a hang.
    let w = World::new("rate-limit");
    let plan = w.plan_json(&id_of(&w, "raise_limit"));
    w.arm.fault(
        "PUT",
        "/policies/policy",
        409,
        "AnotherOperationInProgress",
        Some(5),
    );
    let out = w.remediate(
        "apply",
        &id_of(&w, "raise_limit"),
        &["--approve", &approve_hash(&plan), "--busy-wait", "1s"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("409 Conflict"), "{}", stderr(&out));
}

fn id_of(w: &World, action: &str) -> String {
    proposal(&w.scenario, action)
}

#[test]
fn kill_9_mid_apply_then_rerun_reconciles_and_never_applies_twice() {
    let w = World::new("capacity");
    let rg = w.svc.split("/providers/").next().unwrap().to_string();
    w.arm.touch(
        &format!("{rg}/providers/microsoft.insights/autoscalesettings/contoso-apim-autoscale"),
        |v| {
            v["properties"]["enabled"] = Value::Bool(false);
        },
    );
    let id = proposal("capacity", "scale_out");
    let plan = w.plan_json(&id);
    w.arm.set_polls(10_000);
    let data = w.data();
    let mut child = w
        .cmd(&[
            "remediate",
            "apply",
            &id,
            &w.svc,
            "--data",
            &data,
            "--approve",
            &approve_hash(&plan),
            "--poll",
            "100ms",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.arm.seen().iter().any(|s| s.path.contains("/operations/")) {
        assert!(Instant::now() < deadline, "the apply never started polling");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    assert!(
        w.entries()
            .iter()
            .any(|e| e["kind"] == "apply" && e["status"] == "in_progress")
    );
    // The operation finishes in Azure while apimedic is dead.
    w.arm.finish_all();
    let out = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    let err = stderr(&out);
    assert!(err.contains("reconciled audit entry"), "{err}");
    assert!(err.contains("applied already"), "{err}");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        w.arm
            .writes()
            .iter()
            .filter(|s| s.starts_with("PATCH"))
            .count(),
        1,
        "{:?}",
        w.arm.writes()
    );
    assert!(
        w.entries()
            .iter()
            .any(|e| e["kind"] == "reconcile" && e["status"] == "applied")
    );
    assert_eq!(w.log()["verified"], true);
}

#[test]
fn ctrl_c_during_a_long_operation_reports_the_operation_and_the_rerun_reconciles() {
    let w = World::new("capacity");
    let rg = w.svc.split("/providers/").next().unwrap().to_string();
    w.arm.touch(
        &format!("{rg}/providers/microsoft.insights/autoscalesettings/contoso-apim-autoscale"),
        |v| {
            v["properties"]["enabled"] = Value::Bool(false);
        },
    );
    let id = proposal("capacity", "scale_out");
    let plan = w.plan_json(&id);
    w.arm.set_polls(10_000);
    let data = w.data();
    let child = w
        .cmd(&[
            "remediate",
            "apply",
            &id,
            &w.svc,
            "--data",
            &data,
            "--approve",
            &approve_hash(&plan),
            "--poll",
            "100ms",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.arm.seen().iter().any(|s| s.path.contains("/operations/")) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("The operation continues in Azure"), "{err}");
    assert!(err.contains("/operations/"), "{err}");
    // Still running: the next run says so and does not write again.
    let out = w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]);
    assert!(stderr(&out).contains("still running"), "{}", stderr(&out));
    assert_eq!(
        w.arm
            .writes()
            .iter()
            .filter(|s| s.starts_with("PATCH"))
            .count(),
        1
    );
}

#[test]
fn offline_plans_print_az_commands_marked_not_executed() {
    let id = proposal("rate-limit", "raise_limit");
    let out = super::cli::apimedic([
        "remediate",
        "plan",
        &id,
        &scenario("rate-limit").display().to_string(),
    ]);
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("NOT EXECUTED"), "{text}");
    assert!(
        text.contains("az rest --method put --url 'https://management.azure.com/subscriptions/"),
        "{text}"
    );
    assert!(text.contains("api-version=2024-05-01"), "{text}");
    let out = super::cli::apimedic([
        "remediate",
        "plan",
        &id,
        &scenario("rate-limit").display().to_string(),
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["executed"], false);
    assert_eq!(v["live"], false);
    assert!(v["az"][0].as_str().unwrap().starts_with("az rest"));
    // Apply on exported data executes nothing.
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args([
            "remediate",
            "apply",
            &id,
            &scenario("rate-limit").display().to_string(),
        ])
        .env("APIMEDIC_STATE_DIR", state.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing was executed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verification_never_claims_an_all_clear_without_fresh_data() {
    let w = World::new("rate-limit");
    let id = proposal("rate-limit", "raise_limit");
    let plan = w.plan_json(&id);
    ok(&w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]));
    let audit = last_apply(&w);
    // The same export again holds nothing newer than the finding.
    let out = w.run(&["remediate", "verify", &audit, &w.data()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot tell"), "{}", stderr(&out));
    assert!(
        w.entries()
            .iter()
            .any(|e| e["kind"] == "verify" && e["status"] == "cannot_tell")
    );
}

#[test]
fn the_audit_chain_shows_tampering() {
    let w = World::new("rate-limit");
    let id = proposal("rate-limit", "raise_limit");
    let plan = w.plan_json(&id);
    ok(&w.remediate("apply", &id, &["--dry-run"]));
    ok(&w.remediate("apply", &id, &["--approve", &approve_hash(&plan)]));
    let out = w.run(&["remediate", "log"]);
    ok(&out);
    assert!(stdout(&out).contains("chain intact"), "{}", stdout(&out));
    let file = w.state.path().join("audit.log");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replacen("\"surface\":\"cli\"", "\"surface\":\"tui\"", 1),
    )
    .unwrap();
    let out = w.run(&["remediate", "log"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("CHAIN BROKEN"), "{}", stdout(&out));
}

#[test]
fn a_model_asking_to_execute_is_refused_and_audited() {
    // A scripted model that calls execute_remediation, then answers.
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let replies = [
        r#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"execute_remediation","arguments":"{\"proposal\":\"x-1\"}"}}]}}]}"#,
        r#"{"choices":[{"message":{"role":"assistant","content":"I scaled it out."}}]}"#,
    ];
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().flatten().enumerate() {
            let mut reader = BufReader::new(stream);
            let mut len = 0;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
                if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let reply = replies[i.min(1)];
            let mut s = reader.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    let w = World::new("policy-timeout");
    let out = w
        .cmd(&[
            "ask",
            "scale it out now",
            &w.data(),
            "--llm-url",
            &url,
            "--llm-model",
            "m",
        ])
        .env("APIMEDIC_LLM_NO_STREAM", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);
    let entries = w.entries();
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "refused" && e["surface"] == "llm")
        .collect();
    assert_eq!(refused.len(), 1, "{entries:?}");
    assert!(
        refused[0]["message"]
            .as_str()
            .unwrap()
            .contains("execute_remediation")
    );
    assert!(w.arm.seen().is_empty(), "the model reached nothing");
}

#[test]
fn the_approval_prompt_wants_the_id_typed_never_a_bare_y() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!(
            "skipping the approval prompt test: tmux is not installed (apt-get install tmux)"
        );
        return;
    }
    let w = World::new("nsg-block");
    let id = proposal("nsg-block", "add_nsg_rule");
    let sock = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("remediate-prompt.sock");
    let tm = |args: &[&str]| {
        Command::new("tmux")
            .arg("-S")
            .arg(&sock)
            .args(args)
            .output()
            .unwrap()
    };
    let _ = tm(&["kill-server"]);
    let line = |extra: &str| {
        format!(
            "env NO_COLOR=1 APIMEDIC_ARM_URL='{}' APIMEDIC_ARM_TOKEN='{TOKEN}' APIMEDIC_STATE_DIR='{}' '{}' remediate apply '{id}' '{}' --data '{}' --poll 100ms{extra}; echo EXIT=$?; sleep 600",
            w.arm.url,
            w.state.path().display(),
            env!("CARGO_BIN_EXE_apimedic"),
            w.svc,
            w.data()
        )
    };
    let screen = || {
        String::from_utf8_lossy(&tm(&["capture-pane", "-p", "-t", "p", "-S", "-200"]).stdout)
            .into_owned()
    };
    let wait_until = |ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ok() {
            assert!(Instant::now() < deadline, "timed out:\n{}", screen());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "waited for {what:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(
        tm(&[
            "new-session",
            "-d",
            "-s",
            "p",
            "-x",
            "200",
            "-y",
            "50",
            &line("")
        ])
        .status
        .success()
    );
    wait_for("Type the proposal id");
    tm(&["send-keys", "-t", "p", "y", "Enter"]);
    let s = wait_for("EXIT=");
    assert!(s.contains("not approved"), "{s}");
    assert!(s.contains("EXIT=3"), "{s}");
    assert!(
        w.arm.writes().is_empty(),
        "a bare y never approves a high-risk plan"
    );
    // A second window for the second run (the first one stays as it was).
    let second = line("").replace("; echo EXIT=$?", "; echo SECOND=$?");
    let o = tm(&["new-window", "-t", "p", &second]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    wait_until(&|| {
        let s = screen();
        s.contains("Type the proposal id") && !s.contains("not approved")
    });
    tm(&["send-keys", "-t", "p", &id, "Enter"]);
    let s = wait_for("SECOND=");
    let _ = tm(&["kill-server"]);
    assert!(s.contains("SECOND=0"), "{s}");
    assert_eq!(w.arm.writes().len(), 1, "{:?}", w.arm.writes());
    let entries = w.entries();
    assert!(
        entries.iter().any(|e| e["kind"] == "refused"
            && e["message"].as_str().unwrap_or("").contains("not approved"))
    );
    assert!(entries.iter().any(|e| {
        e["approval"]
            .as_str()
            .unwrap_or("")
            .contains("typed the proposal id")
    }));
}

/// Every `use crate::…`/`super::…` line of src/, resolved to files; the
/// surfaces that may never act must not reach src/remediate.
#[test]
fn llm_chat_tools_mcp_and_alerting_cannot_reach_remediate() {
    let src = root().join("src");
    let mut files = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let module_of = |p: &Path| -> Vec<String> {
        let rel = p.strip_prefix(&src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if parts
            .last()
            .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
        {
            parts.pop();
        }
        parts
    };
    let file_of = |module: &[String]| -> Option<PathBuf> {
        // The longest prefix that is a file.
        for n in (1..=module.len()).rev() {
            let base = src.join(module[..n].join("/"));
            for cand in [base.with_extension("rs"), base.join("mod.rs")] {
                if cand.exists() {
                    return Some(cand);
                }
            }
        }
        None
    };
    let mut edges: Vec<(PathBuf, PathBuf)> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let here = module_of(f);
        // `use` lines and any other `crate::x::y` path in the file.
        let mut paths: Vec<Vec<String>> = Vec::new();
        for (i, _) in text.match_indices("crate::") {
            let tail: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.push(
                tail.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("use super::") || l.starts_with("pub use super::"))
        {
            let tail = line.split("use ").nth(1).unwrap_or("");
            let mut module = here.clone();
            // A file that is not mod.rs is its own module: super is its parent.
            let mut rest = tail;
            while let Some(r) = rest.strip_prefix("super::") {
                module.pop();
                rest = r;
            }
            let seg: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            module.extend(
                seg.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            paths.push(module);
        }
        for p in paths {
            if let Some(target) = file_of(&p)
                && &target != f
            {
                edges.push((f.clone(), target));
            }
        }
    }
    let forbidden_roots = [
        "llm",
        "chat",
        "tools",
        "mcp",
        "daemon/alerts.rs",
        "daemon/sink.rs",
    ];
    let remediate = src.join("remediate");
    assert!(remediate.exists());
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if !forbidden_roots
            .iter()
            .any(|r| rel == *r || rel.starts_with(&format!("{r}/")))
        {
            continue;
        }
        // Breadth-first over the edges.
        let mut seen = vec![f.clone()];
        let mut queue = vec![(f.clone(), vec![rel.clone()])];
        while let Some((at, path)) = queue.pop() {
            for (_, to) in edges.iter().filter(|(from, _)| *from == at) {
                let trail: Vec<String> = path
                    .iter()
                    .cloned()
                    .chain([to
                        .strip_prefix(&src)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()])
                    .collect();
                assert!(
                    !to.starts_with(&remediate),
                    "{} reaches remediate: {}",
                    rel,
                    trail.join(" -> ")
                );
                if !seen.contains(to) {
                    seen.push(to.clone());
                    queue.push((to.clone(), trail));
                }
            }
        }
    }
    // The check can fail: the CLI does reach remediate.
    let cli = src.join("cli/remediate.rs");
    let mut reach = vec![cli.clone()];
    let mut i = 0;
    while i < reach.len() {
        let at = reach[i].clone();
        for (_, to) in edges.iter().filter(|(from, _)| *from == at) {
            if !reach.contains(to) {
                reach.push(to.clone());
            }
        }
        i += 1;
    }
    assert!(
        reach.iter().any(|p| p.starts_with(&remediate)),
        "the graph finds the CLI's path to remediate"
    );
}

/// The daemon's autonomy against the stand-in: off without rules; a rule's
/// limits (quiet hours) refuse and audit once; within them the action runs
/// on its own, audited as `daemon (autonomous)`, and never twice.
#[test]
fn daemon_autonomy_runs_only_what_the_policy_allows_and_audits_it() {
    use apimedic::daemon::act::{Actor, Step};
    use apimedic::remediate::{StaticToken, autonomy};
    let w = World::new("capacity");
    let snapshot = apimedic::cli::load(&[scenario("capacity")]).expect("load");
    let books = apimedic::playbook::Playbooks::built_in();
    let findings = apimedic::playbook::diagnose(&snapshot, &Default::default(), &books).findings;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let actor = |policy: &str| {
        let mut a = Actor::new(
            autonomy::parse("policy.toml", policy).expect("policy"),
            &w.svc,
            &w.arm.url,
            std::sync::Arc::new(StaticToken::new(TOKEN)),
            w.state.path(),
            books.clone(),
        )
        .expect("actor");
        a.engine.poll = Duration::from_millis(100);
        a
    };
    let noon = 1_700_000_000_000 / 86_400_000 * 86_400_000 + 12 * 3_600_000;
    let night = noon + 11 * 3_600_000;
    // Off by default: an empty policy does nothing, writes nothing.
    let steps = rt.block_on(actor("").consider(&snapshot, &findings, noon, &cancel));
    assert!(steps.is_empty(), "{steps:?}");
    // A rule for another action: the scale-out is not touched.
    let steps = rt.block_on(
        actor("[[allow]]\naction = \"set_timeout\"\n")
            .consider(&snapshot, &findings, noon, &cancel),
    );
    assert!(steps.is_empty(), "{steps:?}");
    assert!(w.arm.writes().is_empty());
    // The step limit: this scale-out adds 2 units; a rule allowing 1 refuses.
    let steps = rt.block_on(
        actor("[[allow]]\naction = \"scale_out\"\nmax_risk = \"medium\"\nmax_units = 1\n")
            .consider(&snapshot, &findings, noon, &cancel),
    );
    assert!(
        matches!(steps.as_slice(), [Step::Refused { why, .. }] if why.contains("adds 2")),
        "{steps:?}"
    );
    let policy = "[[allow]]\naction = \"scale_out\"\nmax_risk = \"medium\"\nmax_units = 2\nmax_capacity = 4\nmin_interval = \"1h\"\nquiet_hours = \"22:00-06:00\"\n";
    let mut a = actor(policy);
    // Inside the quiet hours: refused, audited once however many ticks.
    for _ in 0..3 {
        let steps = rt.block_on(a.consider(&snapshot, &findings, night, &cancel));
        assert!(
            matches!(steps.as_slice(), [Step::Refused { why, .. }] if why.contains("quiet")),
            "{steps:?}"
        );
    }
    assert!(w.arm.writes().is_empty(), "{:?}", w.arm.writes());
    let refusals = w
        .entries()
        .iter()
        .filter(|e| e["kind"] == "refused" && e["surface"] == autonomy::SURFACE)
        .count();
    assert_eq!(
        refusals,
        2,
        "step limit once, quiet hours once: {:?}",
        w.entries()
    );
    // At noon it runs, audited like a manual apply.
    let steps = rt.block_on(a.consider(&snapshot, &findings, noon, &cancel));
    assert!(
        matches!(steps.as_slice(), [Step::Applied { .. }]),
        "{steps:?}"
    );
    let writes = w.arm.writes();
    assert!(!writes.is_empty());
    let entries = w.entries();
    let apply = entries
        .iter()
        .find(|e| e["kind"] == "apply")
        .expect("apply entry");
    assert_eq!(apply["surface"], autonomy::SURFACE);
    assert!(
        apply["approval"]
            .as_str()
            .unwrap_or("")
            .contains("autonomy rule `scale_out`"),
        "{apply}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "result" && e["status"] == "succeeded"),
        "{entries:?}"
    );
    // The next tick sees it applied: nothing is sent twice.
    let steps = rt.block_on(a.consider(&snapshot, &findings, noon + 60_000, &cancel));
    assert!(steps.is_empty(), "{steps:?}");
    assert_eq!(w.arm.writes().len(), writes.len());
    assert_eq!(w.log()["verified"], true);
}

/// plan -> apply -> re-read -> undo through `remediate::exec::Engine` for a
/// proposal the scenario's playbooks leave manual (their scope or backend
/// is a person's call), given here as the typed action a person would pick.
fn engine_round_trip(
    scen: &str,
    action: apimedic::model::Action,
    policy_path: &str,
    after: impl Fn(&str),
) {
    use apimedic::audit::{Kind, Log};
    use apimedic::remediate::exec::{Approval, Engine, Outcome};
    use apimedic::remediate::plan::ServiceId;
    let w = World::new(scen);
    let snapshot = apimedic::cli::load(&[scenario(scen)]).expect("load");
    let proposal = apimedic::model::Proposal {
        id: format!("{scen}-manual-1"),
        finding: "f".into(),
        story: None,
        title: "test".into(),
        action,
        risk: apimedic::model::Risk::Low,
        preconditions: vec![],
        steps: vec![],
        command: None,
        request: None,
        document: None,
        needs: vec![],
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let arm = apimedic::remediate::arm::Arm::new(
        &w.arm.url,
        std::sync::Arc::new(apimedic::remediate::StaticToken::new(TOKEN)),
    )
    .unwrap();
    let mut eng = Engine::new(arm, Log::new(w.state.path()));
    eng.poll = Duration::from_millis(100);
    let svc = ServiceId::parse(&w.svc).unwrap();
    let plan = rt
        .block_on(eng.plan(&proposal, None, &snapshot, &svc))
        .expect("plan");
    assert!(plan.live && plan.ready(), "{plan:?}");
    assert!(w.arm.writes().is_empty(), "planning never writes");
    let before = policy_value(&w, policy_path);
    let cancel = tokio_util::sync::CancellationToken::new();
    let approval = |p: &apimedic::remediate::plan::Plan| Approval {
        plan_hash: p.hash.clone(),
        surface: "cli".into(),
        how: "test".into(),
    };
    let out = rt
        .block_on(eng.apply(
            &plan,
            &approval(&plan),
            Kind::Apply,
            None,
            &mut |_| {},
            &cancel,
        ))
        .unwrap();
    let Outcome::Succeeded { audit, .. } = out else {
        panic!("{out:?}")
    };
    let now = policy_value(&w, policy_path);
    assert!(
        w.arm
            .writes()
            .iter()
            .any(|s| s.starts_with("PUT") && s.to_ascii_lowercase().ends_with("/policies/policy")),
        "{:?}",
        w.arm.writes()
    );
    after(&now);
    let undo = rt.block_on(eng.plan_undo(&plan)).expect("undo plan");
    assert!(undo.ready(), "{undo:?}");
    let out = rt
        .block_on(eng.apply(
            &undo,
            &approval(&undo),
            Kind::Undo,
            Some(audit),
            &mut |_| {},
            &cancel,
        ))
        .unwrap();
    assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
    assert_eq!(
        apimedic::remediate::plan::normalise_xml(&policy_value(&w, policy_path)),
        apimedic::remediate::plan::normalise_xml(&before),
        "undo restores the text"
    );
    assert_eq!(w.log()["verified"], true);
}

#[test]
fn timeout_fix_round_trip() {
    engine_round_trip(
        "policy-timeout",
        apimedic::model::Action::SetTimeout {
            scope: apimedic::model::PolicyScope::Api("orders-api".into()),
            seconds: 45,
            from: None,
        },
        "/apis/orders-api/policies/policy",
        |xml| assert!(xml.contains("timeout=\"45\""), "{xml}"),
    );
}

#[test]
fn route_fix_round_trip() {
    engine_round_trip(
        "wrong-route",
        apimedic::model::Action::FixRoute {
            api: "catalog-api".into(),
            operation: "get-product".into(),
            backend: "catalog-web".into(),
        },
        "/apis/catalog-api/operations/get-product/policies/policy",
        |xml| assert!(xml.contains("backend-id=\"catalog-web\""), "{xml}"),
    );
}
