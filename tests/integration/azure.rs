//! Live Azure against the loopback stand-in (`apimedic::simulate::standin`):
//! every sign-in method through `azure_identity` (client secret, client
//! certificate, workload identity, an App Service identity endpoint, a stub
//! `az` on PATH), a live pull with paging, throttling, a revoked token, a
//! 403 and a slow resource, Resource Graph discovery of several instances,
//! the real corpus shapes, and `--save` replayed offline to the same
//! findings. Nothing here talks to anything but 127.0.0.1.

use apimedic::azure::credential::{Credential, CredentialOptions, Env, SignIn};
use apimedic::azure::{ARM_SCOPE, AuthProblem};
use apimedic::simulate::standin::{Config, StandIn, Store, rename_instance};
use apimedic::simulate::{Scenario, generate};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::Duration;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "535fb089-9ff3-47b6-9bfb-4f1264799865";
const SECRET: &str = "s3cr3t-value";
/// A span holding the simulated data (seed 1 ends 2026-03-03T13:00Z).
const SINCE: &str = "2026-03-01T00:00:00Z";
const UNTIL: &str = "2026-03-09T00:00:00Z";

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/azure/tls")
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn config() -> Config {
    Config {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        client_secret: Some(SECRET.into()),
        client_key_pem: Some(read(&tls_dir().join("client.key"))),
        federated_token: Some("federated.jwt.from-the-pod".into()),
        identity_header: Some("853b9a84-5bfa-4b22-a3f3-0b9a43d9ad8a".into()),
        token_lifetime: 3600,
        ..Config::default()
    }
}

/// The simulated instance (backend-oom, 6 hours), `copies` more copies
/// renamed in other subscriptions' style, and the corpus instance.
fn store(copies: usize, corpus: bool) -> Store {
    let files = generate(Scenario::BackendOom, 1, 0.05, 360);
    let mut s = Store::default();
    for (_, b) in &files {
        s.add_document(b);
    }
    for i in 0..copies {
        for (_, b) in rename_instance(
            &files,
            "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c",
            &format!("fleet-apim-{i:02}"),
        ) {
            s.add_document(&b);
        }
    }
    if corpus {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/azure-rest");
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.unwrap().path();
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("arm-"))
            {
                s.add_exchange(&read(&p));
            }
        }
    }
    s
}

fn start(store: Store, config: Config) -> StandIn {
    let d = tls_dir();
    StandIn::start(
        store,
        config,
        (&read(&d.join("server.crt")), &read(&d.join("server.key"))),
        0,
    )
    .expect("stand-in starts")
}

const SIM_ID: &str = "/subscriptions/6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c/resourceGroups/rg-apim-prod/providers/Microsoft.ApiManagement/service/contoso-apim";

/// `apimedic` with a clean Azure environment pointed at the stand-in.
fn apimedic(s: &StandIn, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_apimedic"));
    for k in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "APIMEDIC_AZURE_SIGN_IN",
    ] {
        c.env_remove(k);
    }
    c.env("NO_COLOR", "1")
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("apimedic-azure-tests-state"),
        )
        .env("APIMEDIC_ARM_URL", &s.arm_url)
        .env("AZURE_AUTHORITY_HOST", &s.login_url)
        .env("APIMEDIC_AZURE_CA_FILE", tls_dir().join("ca.crt"))
        .env("HTTPS_PROXY", "")
        .env("NO_PROXY", "127.0.0.1,localhost");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().expect("apimedic runs")
}

fn sp_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", SECRET),
    ]
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

/// (kind, subject) of every finding: what must agree between a live pull and its replay.
fn findings(report: &Value) -> Vec<String> {
    let mut out: Vec<String> = report["findings"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|f| format!("{} {} {}", f["kind"], f["subject"], f["title"]))
        .collect();
    out.sort();
    out
}

fn problems(report: &Value) -> Vec<String> {
    report["loaded"]["problems"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|p| format!("{}: {}", p["origin"]["file"], p["message"]))
        .collect()
}

#[test]
fn a_live_pull_survives_paging_throttling_a_revoked_token_and_a_403_and_replays_offline() {
    let s = start(
        store(0, false),
        Config {
            page_size: 2,
            throttle: vec![
                ("/apis".into(), 3),
                ("/providers/Microsoft.Insights/metrics".into(), 1),
            ],
            forbidden: vec!["/namedValues".into()],
            revoke_after: Some(10),
            ..config()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("incident-4711");
    let saved_s = saved.to_str().unwrap();
    let live = apimedic(
        &s,
        &sp_env(),
        &[
            "diagnose", "--azure", SIM_ID, "--since", SINCE, "--until", UNTIL, "--format", "json",
            "--save", saved_s,
        ],
    );
    assert!(
        matches!(live.status.code(), Some(0 | 1)),
        "{}",
        stderr(&live)
    );
    let report = json_of(&live);
    // Everything but the named values loaded.
    let counts = &report["loaded"]["counts"];
    assert_eq!(counts["apis"], 6, "{counts}");
    assert!(counts["operations"].as_u64().unwrap_or(0) >= 12, "{counts}");
    assert!(counts["metrics"].as_u64().unwrap_or(0) > 0, "{counts}");
    assert!(counts["activity_log"].as_u64().unwrap_or(0) > 0, "{counts}");
    assert!(counts["policies"].as_u64().unwrap_or(0) >= 5, "{counts}");
    assert!(counts["nsgs"].as_u64().unwrap_or(0) == 1, "{counts}");
    assert!(counts.get("named_values").is_none(), "{counts}");
    let probs = problems(&report);
    let nv = probs
        .iter()
        .find(|p| p.contains("/namedValues"))
        .unwrap_or_else(|| panic!("no problem for the 403: {probs:?}"));
    assert!(
        nv.contains("Reader") && nv.contains("az role assignment create"),
        "{nv}"
    );
    // The 403, and that no request was read: this instance has no
    // diagnostic setting sending gateway logs to a workspace.
    assert_eq!(probs.len(), 2, "{probs:?}");
    assert!(
        probs
            .iter()
            .any(|p| p.contains("no diagnostic setting sends GatewayLogs") && p.contains("--logs")),
        "{probs:?}"
    );
    // The stand-in saw the throttling, the revoked token and the refresh.
    let c = s.counters();
    assert_eq!(c.throttled.load(Ordering::Relaxed), 4);
    assert!(c.unauthorized.load(Ordering::Relaxed) >= 1);
    assert!(
        c.tokens.load(Ordering::Relaxed) >= 2,
        "no new token after the 401"
    );
    assert!(
        !findings(&report).is_empty(),
        "the backend-oom instance has findings"
    );

    // The saved folder diagnoses offline to the same findings.
    assert!(saved.join("contoso-apim/config/apis.json").exists());
    assert!(saved.join(".apimedic-pull.json").exists());
    let replay = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(["diagnose", saved_s, "--format", "json"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let replayed = json_of(&replay);
    assert_eq!(findings(&replayed), findings(&report));
    assert_eq!(replayed["loaded"]["counts"], report["loaded"]["counts"]);
    // No secret in anything written.
    for out in [&live.stdout, &live.stderr, &replay.stdout] {
        assert!(!String::from_utf8_lossy(out).contains(SECRET));
        assert!(!String::from_utf8_lossy(out).contains("standin."));
    }
    let manifest = std::fs::read_to_string(saved.join(".apimedic-pull.json")).unwrap();
    assert!(!manifest.contains(SECRET) && !manifest.contains("standin."));
}

#[test]
fn a_slow_resource_hits_the_budget_and_the_rest_still_loads() {
    let s = start(
        store(0, false),
        Config {
            slow: vec![("/backends".into(), Duration::from_secs(8))],
            ..config()
        },
    );
    let out = apimedic(
        &s,
        &sp_env(),
        &[
            "diagnose", "--azure", SIM_ID, "--since", SINCE, "--until", UNTIL, "--format", "json",
            "--budget", "3s",
        ],
    );
    let report = json_of(&out);
    let probs = problems(&report);
    assert!(
        probs.iter().any(|p| p.contains("/backends")
            && (p.contains("time budget") || p.contains("no answer in time"))),
        "{probs:?}"
    );
    assert_eq!(report["loaded"]["counts"]["apis"], 6);
}

#[test]
fn resource_graph_finds_every_instance_of_a_subscription() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/azure-rest");
    if !corpus.is_dir() {
        eprintln!(
            "skipping: {} is absent (the real ARM shapes this test serves)",
            corpus.display()
        );
        return;
    }
    let s = start(
        store(2, true),
        Config {
            page_size: 1,
            ..config()
        },
    );
    let out = apimedic(
        &s,
        &sp_env(),
        &[
            "diagnose",
            "--subscription",
            "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c",
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--format",
            "text",
            "--budget",
            "60s",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["contoso-apim", "fleet-apim-00", "fleet-apim-01"] {
        assert!(
            text.contains(&format!("/service/{name}\n")),
            "{name} missing:\n{text}\n{}",
            stderr(&out)
        );
    }
    assert!(
        !text.contains("apimService1"),
        "another subscription's instance was read"
    );
    // --all also finds the corpus instance (another subscription).
    let dir = tempfile::tempdir().unwrap();
    let out = apimedic(
        &s,
        &sp_env(),
        &[
            "diagnose",
            "--all",
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--format",
            "json",
            "--save",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    for name in [
        "contoso-apim",
        "fleet-apim-00",
        "fleet-apim-01",
        "apimService1",
    ] {
        assert!(
            dir.path().join(name).join("config/service.json").exists(),
            "{name} not saved"
        );
    }
    // The corpus instance: the spec examples' APIs, operations and policies.
    let corpus = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args([
            "diagnose",
            dir.path().join("apimService1").to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let r = json_of(&corpus);
    assert!(
        r["loaded"]["counts"]["apis"].as_u64().unwrap_or(0) >= 2,
        "{}",
        r["loaded"]
    );
    assert!(
        r["loaded"]["counts"]["named_values"].as_u64().unwrap_or(0) >= 1,
        "{}",
        r["loaded"]
    );
}

fn token(options: CredentialOptions) -> Result<apimedic::azure::Token, apimedic::azure::AuthError> {
    let cred = Credential::new(options)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { cred.token(ARM_SCOPE).await })
}

fn options(s: &StandIn, pairs: &[(&str, &str)]) -> CredentialOptions {
    let mut all: Vec<(&str, &str)> = vec![("AZURE_AUTHORITY_HOST", s.login_url.as_str())];
    all.extend_from_slice(pairs);
    CredentialOptions {
        env: Some(Env::from_pairs(all)),
        ca_file: Some(tls_dir().join("ca.crt")),
        timeout: Some(Duration::from_secs(20)),
        ..Default::default()
    }
}

#[test]
fn service_principal_sign_in_with_a_secret_or_a_certificate() {
    let s = start(Store::default(), config());
    let t = token(options(
        &s,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", SECRET),
        ],
    ))
    .unwrap();
    assert!(t.secret().starts_with("standin."));
    assert_eq!(
        t.principal.as_ref().and_then(|p| p.name.as_deref()),
        Some("apimedic-standin-sp")
    );
    // A wrong secret, a wrong tenant: each says what to do.
    let e = token(options(
        &s,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", "nope"),
        ],
    ))
    .unwrap_err();
    assert_eq!(e.problem, AuthProblem::BadSecret, "{e}");
    assert!(!e.to_string().contains("nope"));
    let e = token(options(
        &s,
        &[
            ("AZURE_TENANT_ID", "contoso-wrong"),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", SECRET),
        ],
    ))
    .unwrap_err();
    assert_eq!(e.problem, AuthProblem::WrongTenant, "{e}");
    assert!(e.to_string().contains("AZURE_TENANT_ID"), "{e}");
    // The certificate: a PEM with the certificate and key, signed with ring.
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("sp.pem");
    let mut both = read(&tls_dir().join("client.crt"));
    both.extend(read(&tls_dir().join("client.key")));
    std::fs::write(&pem, both).unwrap();
    let t = token(options(
        &s,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_CERTIFICATE_PATH", pem.to_str().unwrap()),
        ],
    ))
    .unwrap();
    assert!(t.secret().starts_with("standin."));
    // Another key's certificate is refused.
    let wrong = dir.path().join("wrong.pem");
    let mut other = read(&tls_dir().join("server.crt"));
    other.extend(read(&tls_dir().join("server.key")));
    std::fs::write(&wrong, other).unwrap();
    let e = token(options(
        &s,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_CERTIFICATE_PATH", wrong.to_str().unwrap()),
        ],
    ))
    .unwrap_err();
    assert_eq!(e.problem, AuthProblem::BadSecret, "{e}");
    // Workload identity: the federated token file.
    let fed = dir.path().join("token");
    std::fs::write(&fed, "federated.jwt.from-the-pod").unwrap();
    let t = token(options(
        &s,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_FEDERATED_TOKEN_FILE", fed.to_str().unwrap()),
        ],
    ))
    .unwrap();
    assert!(t.secret().starts_with("standin."));
    // The authority must be trusted: without the test CA, no token.
    let mut o = options(
        &s,
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", SECRET),
        ],
    );
    o.ca_file = None;
    let e = token(o).unwrap_err();
    assert_eq!(e.problem, AuthProblem::Unreachable, "{e}");
}

/// A stub `az` that answers `account get-access-token` like Azure CLI 2.54+
/// and appends each call to `calls`.
fn stub_az(dir: &Path, logged_in: bool) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("calls");
    let body = if logged_in {
        r#"exp=$(( $(date +%s) + 3600 ))
claims=$(printf '{"upn":"sre@contoso.com","oid":"o-cli","n":"%s"}' "$(date +%s%N)" | base64 | tr -d '\n=' | tr '+/' '-_')
printf '{"accessToken":"standin.%s.","expiresOn":"2030-01-02 03:04:05.000000","expires_on":%s,"subscription":"s","tenant":"t","tokenType":"Bearer"}\n' "$claims" "$exp""#
    } else {
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1"
    };
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *'account get-access-token'*) ;; *) echo unsupported >&2; exit 2;; esac\n{body}\n",
        calls.display()
    );
    let az = bin.join("az");
    std::fs::write(&az, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[test]
fn azure_cli_sign_in_runs_the_az_on_path_and_is_cached() {
    let s = start(
        store(0, false),
        Config {
            revoke_after: Some(20),
            ..config()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = stub_az(dir.path(), true);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = apimedic(
        &s,
        &[("PATH", &path)],
        &[
            "diagnose", "--azure", SIM_ID, "--since", SINCE, "--until", UNTIL, "--format", "json",
        ],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert_eq!(json_of(&out)["loaded"]["counts"]["apis"], 6);
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    // One token for the first ~20 requests, one more after the revocation.
    assert_eq!(calls.lines().count(), 2, "{calls}");
    assert!(calls.contains(
        "account get-access-token -o json --scope https://management.azure.com/.default"
    ));
    assert!(s.counters().arm.load(Ordering::Relaxed) > 40);

    // Not signed in: say `az login`.
    let dir2 = tempfile::tempdir().unwrap();
    let bin2 = stub_az(dir2.path(), false);
    let path2 = format!("{}:/usr/bin:/bin", bin2.display());
    let out = apimedic(&s, &[("PATH", &path2)], &["diagnose", "--azure", SIM_ID]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("run `az login`"), "{}", stderr(&out));
    // No az at all: say how to install it or sign in otherwise.
    let empty = tempfile::tempdir().unwrap();
    let out = apimedic(
        &s,
        &[("PATH", empty.path().to_str().unwrap())],
        &["diagnose", "--azure", SIM_ID],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("install the Azure CLI"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn managed_identity_only_where_the_host_says_it_exists() {
    let s = start(store(0, false), config());
    // Container Apps / App Service advertise IDENTITY_ENDPOINT + IDENTITY_HEADER.
    let out = apimedic(
        &s,
        &[
            ("IDENTITY_ENDPOINT", &s.identity_endpoint),
            ("IDENTITY_HEADER", "853b9a84-5bfa-4b22-a3f3-0b9a43d9ad8a"),
            ("PATH", "/nonexistent"),
        ],
        &[
            "diagnose", "--azure", SIM_ID, "--since", SINCE, "--until", UNTIL, "--format", "json",
        ],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert_eq!(json_of(&out)["loaded"]["counts"]["apis"], 6);
    // A wrong header: the endpoint refuses and the message says so.
    let out = apimedic(
        &s,
        &[
            ("IDENTITY_ENDPOINT", &s.identity_endpoint),
            ("IDENTITY_HEADER", "wrong"),
            ("PATH", "/nonexistent"),
        ],
        &["diagnose", "--azure", SIM_ID],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("managed identity sign-in failed"),
        "{}",
        stderr(&out)
    );
    // Without those variables the CLI is used, never the metadata address.
    let choice =
        apimedic::azure::credential::choose(&Env::from_pairs([("AZURE_CLIENT_ID", "x")]), None)
            .unwrap();
    assert_eq!(choice.method, SignIn::AzureCli);
}

/// Reads `path` until `ok` holds for its text or `secs` pass.
fn wait_for(path: &Path, secs: u64, ok: impl Fn(&str) -> bool) -> String {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if ok(&text) || std::time::Instant::now() > until {
            return text;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_daemon_polls_several_live_instances_alerts_with_their_instance_and_keeps_history() {
    let s = start(
        store(1, false),
        Config {
            page_size: 3,
            forbidden: vec!["fleet-apim-00/namedValues".into()],
            ..config()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let alerts = dir.path().join("alerts.jsonl");
    let cfg = dir.path().join("daemon.toml");
    // Named instances: `prod` is one service; `team` a subscription, which
    // also finds prod's service (labelled prod, read once) and fleet-apim-00.
    std::fs::write(
        &cfg,
        format!(
            r#"[daemon]
tick = "200ms"
[engine]
active = "10m"
[alerts]
for = "0s"
[azure]
interval = "1s"
budget = "30s"
[[instances]]
name = "prod"
azure = "{SIM_ID}"
[[instances]]
name = "team"
subscription = "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c"
[[sinks]]
type = "file"
path = "{}"
"#,
            alerts.display()
        ),
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_apimedic"));
    for k in [
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
        "IDENTITY_ENDPOINT",
        "MSI_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    // The data lies in the past: watch the span where inventory-app is
    // going down (memory from 10:10, restarts from 11:00).
    let child = c
        .env("APIMEDIC_ARM_URL", &s.arm_url)
        .env("AZURE_AUTHORITY_HOST", &s.login_url)
        .env("APIMEDIC_AZURE_CA_FILE", tls_dir().join("ca.crt"))
        .env("HTTPS_PROXY", "")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .envs(sp_env())
        .args([
            "daemon",
            "--config",
            cfg.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .args([
            "--since",
            "2026-03-02T11:05:00Z",
            "--until",
            "2026-03-03T11:05:00Z",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = wait_for(&alerts, 60, |t| {
        t.contains("\"instance\":\"prod\"") && t.contains("\"instance\":\"team/fleet-apim-00\"")
    });
    // Several polls: the requests of one read, at least twice.
    let after_first = s.counters().arm.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(2500));
    let later = s.counters().arm.load(Ordering::Relaxed);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        text.contains("\"instance\":\"prod\"")
            && text.contains("\"instance\":\"team/fleet-apim-00\""),
        "alerts without both instances:\n{text}\nstderr:\n{err}"
    );
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    for inst in ["prod", "team/fleet-apim-00"] {
        let mine: Vec<&Value> = events
            .iter()
            .filter(|e| e.to_string().contains(&format!("\"instance\":\"{inst}\"")))
            .collect();
        assert!(
            mine.iter().any(|e| e.to_string().contains("inventory-app")),
            "{inst}: no alert on inventory-app: {mine:?}"
        );
    }
    assert!(
        later > after_first,
        "no second poll ({after_first} then {later} requests)\n{err}"
    );
    // The 403 on one instance is said, with the instance; the rest was judged.
    assert!(
        err.contains("team/fleet-apim-00") && err.contains("namedValues"),
        "{err}"
    );
    assert!(!err.contains(SECRET) && !text.contains(SECRET));
    // Configuration history of both instances, in the state directory.
    let log = std::fs::read_to_string(state.join("azure-history/log.ndjson")).unwrap();
    assert!(log.contains("/service/contoso-apim") && log.contains("/service/fleet-apim-00"));
    let history = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(["history", "--history-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(history.status.success(), "{}", stderr(&history));
    // Polled again, nothing changed: each document recorded once.
    let lines = log.lines().count();
    let docs: std::collections::HashSet<(String, String)> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| (v["instance"].to_string(), v["document"].to_string()))
        .collect();
    assert_eq!(lines, docs.len(), "an unchanged document recorded twice");
}

#[test]
fn net_check_reads_the_gateway_subnet_nsg_live_with_effective_rules_or_says_it_fell_back() {
    let args = [
        "net", "check", "--azure", SIM_ID, "--from", "gateway", "--to", "Internet", "--port",
        "443", "--since", SINCE, "--until", UNTIL,
    ];
    // The NIC's effective rules (a long-running POST) are read and used.
    let s = start(store(0, false), config());
    let out = apimedic(&s, &sp_env(), &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{text}\n{}",
        stderr(&out)
    );
    assert!(
        text.contains("(effective rules)"),
        "{text}\n{}",
        stderr(&out)
    );
    let effective_verdict = text.lines().next().unwrap_or("").to_string();
    // Not allowed to ask for them: the declared rules decide, with a note.
    let s = start(
        store(0, false),
        Config {
            forbidden: vec!["effectiveNetworkSecurityGroups".into()],
            ..config()
        },
    );
    let out = apimedic(&s, &sp_env(), &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("(declared rules)"),
        "{text}\n{}",
        stderr(&out)
    );
    assert!(
        text.contains("note: the effective security rules") && text.contains("Network Contributor"),
        "{text}"
    );
    // The same NSG either way: the same decision, by the same rule
    // (effective listings prefix the name).
    let declared_verdict = text.lines().next().unwrap_or("");
    let norm = |l: &str| l.replace("securityRules/", "").replace("default", "");
    assert_eq!(norm(&effective_verdict), norm(declared_verdict));
}

/// `remediate plan` on a live target without `--data` reads the instance
/// through the azure loader (the same pull `diagnose --azure` makes) and
/// finds the proposal there: the capacity scenario, whose story's own fix
/// (scale out) comes from the capacity metric alone (no gateway logs live).
#[test]
fn remediate_reads_a_live_target_through_the_azure_loader() {
    let mut capacity = Store::default();
    for (_, b) in &generate(Scenario::Capacity, 1, 0.05, 360) {
        capacity.add_document(b);
    }
    let s = start(capacity, config());
    let live = apimedic(
        &s,
        &sp_env(),
        &[
            "diagnose", "--azure", SIM_ID, "--since", SINCE, "--until", UNTIL, "--format", "json",
        ],
    );
    let report = json_of(&live);
    let id = report["proposals"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a proposal: {report}"))
        .to_string();
    let state = tempfile::tempdir().unwrap();
    let out = apimedic(
        &s,
        &[
            sp_env(),
            vec![("APIMEDIC_STATE_DIR", state.path().to_str().unwrap())],
        ]
        .concat(),
        &[
            "remediate",
            "plan",
            &id,
            SIM_ID,
            "--since",
            SINCE,
            "--until",
            UNTIL,
        ],
    );
    let err = stderr(&out);
    assert!(!err.contains("--data"), "no export needed: {err}");
    // Found in the live diagnosis and planned against the live instance.
    let text = format!("{}{err}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        report["proposals"][0]["action"]["type"], "scale_out",
        "{report}"
    );
    assert!(text.contains(&format!("Plan for proposal {id}")), "{text}");
}
