//! `apimedic mcp` driven by real MCP clients: rmcp's own client over stdio
//! (always), the official MCP Inspector CLI (npm) and the official Python
//! SDK (PyPI `mcp`) over stdio and streamable HTTP when `.ci/run` installed
//! them (APIMEDIC_TEST_MCP_INSPECTOR, APIMEDIC_TEST_MCP_PYTHON; the tests
//! skip with a message otherwise), and the HTTP transport's guards (Origin,
//! Host, bearer token) with raw requests. Loopback only.

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str = "fixtures/scenarios/policy-timeout";

fn diagnose_json() -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(["diagnose", SCENARIO, "--format", "json"])
        .env("NO_COLOR", "1")
        .output()
        .expect("diagnose runs");
    serde_json::from_slice(&out.stdout).expect("diagnose JSON")
}

/// An API and a finding id of the scenario, from `diagnose --format json`.
fn api_and_finding(d: &Value) -> (String, String) {
    let api = d["backend_map"][0]["api"].as_str().unwrap_or("orders-api");
    let finding = d["findings"][0]["id"].as_str().expect("a finding id");
    (api.to_string(), finding.to_string())
}

/// Valid arguments for every tool.
fn every_call(api: &str, finding: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("summary", json!({})),
        ("list_apis", json!({})),
        ("list_operations", json!({"api": api})),
        ("list_products", json!({})),
        ("list_backends", json!({})),
        ("failure_rate", json!({"api": api, "period": "24h"})),
        ("failure_log", json!({"api": api, "limit": 5})),
        ("recent_changes", json!({"limit": 5})),
        ("backend_map", json!({"api": api})),
        ("backend_health", json!({})),
        ("policies", json!({"api": api})),
        ("nsg_rules", json!({})),
        (
            "network_check",
            json!({"destination": "Storage", "port": 443}),
        ),
        ("capacity", json!({})),
        ("findings", json!({"kind": "error_spike"})),
        ("explain", json!({"id": finding})),
        ("proposals", json!({})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_lists_and_calls_every_tool() {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_apimedic"));
    cmd.args(["mcp", SCENARIO]);
    let client =
        ().serve(TokioChildProcess::new(cmd).expect("spawn apimedic mcp"))
            .await
            .expect("initialize");
    let info = client.peer_info().expect("initialize result");
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "apimedic");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));

    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.len() >= 12, "{} tools", tools.len());
    for t in &tools {
        let a = t.annotations.as_ref().expect("annotations");
        assert_eq!(a.read_only_hint, Some(true), "{}", t.name);
    }

    // The same numbers as `diagnose --format json`.
    let d = diagnose_json();
    let call = |name: &'static str, args: Value| {
        let client = &client;
        async move {
            let mut p = CallToolRequestParams::new(name);
            if let Value::Object(m) = args {
                p = p.with_arguments(m);
            }
            client.call_tool(p).await.expect("tools/call")
        }
    };
    let findings = call("findings", json!({})).await;
    assert_eq!(findings.is_error, Some(false));
    let data = &findings.structured_content.as_ref().unwrap()["data"];
    let first_id = d["findings"][0]["id"].as_str().expect("a finding id");
    assert!(
        data.to_string().contains(first_id),
        "findings over MCP name diagnose's first finding {first_id}"
    );
    let summary = call("summary", json!({})).await;
    let sdata = &summary.structured_content.as_ref().unwrap()["data"];
    assert_eq!(
        sdata["findings"].as_u64(),
        d["findings"].as_array().map(|a| a.len() as u64)
    );

    // Every tool answers with valid arguments.
    let (api, _) = api_and_finding(&d);
    let calls = every_call(&api, first_id);
    let mut listed: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let mut called: Vec<&str> = calls.iter().map(|c| c.0).collect();
    listed.sort();
    called.sort();
    assert_eq!(listed, called, "a call for every listed tool");
    for (name, args) in calls {
        let r = call(name, args.clone()).await;
        assert_eq!(r.is_error, Some(false), "{name} {args}: {:?}", r.content);
        let sc = r.structured_content.as_ref().expect("structuredContent");
        assert_eq!(sc["tool"], name);
        // Its own schema: the Python SDK and the Inspector validate against it.
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let schema = tool.output_schema.as_ref().expect("an outputSchema");
        assert_eq!(schema["properties"]["tool"]["const"], name);
    }

    // Errors a client can fix come back as isError with a hint.
    let bad = call("failure_rate", json!({"api": "orderz-apii-nope"})).await;
    assert_eq!(bad.is_error, Some(true));
    let bad = call("failure_log", json!({"limit": -3})).await;
    assert_eq!(bad.is_error, Some(true));
    let unknown = client
        .call_tool(CallToolRequestParams::new("apply_remediation"))
        .await;
    assert!(unknown.is_err(), "an unknown tool is a protocol error");

    let res = client
        .read_resource(ReadResourceRequestParams::new("apimedic://backend-map"))
        .await
        .expect("resources/read");
    assert!(format!("{res:?}").contains("application/json"));
    let prompt = client
        .get_prompt(GetPromptRequestParams::new("incident_triage"))
        .await
        .expect("prompts/get");
    assert!(!prompt.messages.is_empty());
    client.cancel().await.expect("close");
}

/// A running `apimedic mcp --http 127.0.0.1:0`, killed on drop.
struct HttpServer {
    child: Child,
    addr: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_server(token: Option<&str>) -> HttpServer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apimedic"));
    cmd.args(["mcp", SCENARIO, "--http", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_remove("APIMEDIC_MCP_TOKEN");
    if let Some(t) = token {
        cmd.env("APIMEDIC_MCP_TOKEN", t);
    }
    let mut child = cmd.spawn().expect("spawn mcp --http");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut addr = None;
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(rest) = l.split("http://").nth(1) {
                    addr = rest.strip_suffix("/mcp").map(str::to_string);
                    break;
                }
            }
            _ => break,
        }
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    HttpServer {
        child,
        addr: addr.expect("the server printed its address"),
    }
}

/// One raw HTTP/1.1 POST of an initialize request; returns the status.
fn post_initialize(addr: &str, host: &str, extra: &[(&str, &str)]) -> u16 {
    let body = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}})
    .to_string();
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut head = [0u8; 64];
    let n = s.read(&mut head).unwrap_or(0);
    let line = String::from_utf8_lossy(&head[..n]).to_string();
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn http_transport_checks_origin_host_and_token() {
    let token = "test-token-0123456789abcdef";
    let srv = http_server(Some(token));
    let auth = format!("Bearer {token}");
    let host = srv.addr.clone();
    assert_eq!(post_initialize(&srv.addr, &host, &[]), 401, "no token");
    assert_eq!(
        post_initialize(
            &srv.addr,
            &host,
            &[("Authorization", "Bearer wrong-token-0000000000")]
        ),
        401
    );
    assert_eq!(
        post_initialize(&srv.addr, &host, &[("Authorization", &auth)]),
        200,
        "token, loopback host, no Origin"
    );
    assert_eq!(
        post_initialize(
            &srv.addr,
            &host,
            &[("Authorization", &auth), ("Origin", "http://evil.example")]
        ),
        403,
        "a foreign Origin (DNS rebinding)"
    );
    assert_eq!(
        post_initialize(&srv.addr, "evil.example", &[("Authorization", &auth)]),
        403,
        "a foreign Host"
    );
}

#[test]
fn http_refuses_a_public_bind_without_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_apimedic"))
        .args(["mcp", SCENARIO, "--http", "0.0.0.0:0"])
        .env_remove("APIMEDIC_MCP_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("APIMEDIC_MCP_TOKEN"), "{err}");
}

fn client_path(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) if std::path::Path::new(&p).exists() => Some(p),
        _ => {
            eprintln!("skipping: {what} not installed ({var} unset; .ci/run installs it)");
            None
        }
    }
}

/// Runs the MCP Inspector CLI against a target; returns (exit code, stdout).
fn inspector(bin: &str, target: &[&str], method: &[&str]) -> (i32, String) {
    let out = Command::new(bin)
        .arg("--cli")
        .args(target)
        .arg("--")
        .args(method)
        .args(["--format", "json"])
        .env("MCP_AUTO_OPEN_ENABLED", "false")
        .output()
        .expect("inspector runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn mcp_inspector_cli_over_stdio_and_http() {
    let Some(bin) = client_path("APIMEDIC_TEST_MCP_INSPECTOR", "MCP Inspector CLI") else {
        return;
    };
    let exe = env!("CARGO_BIN_EXE_apimedic");
    let stdio = [exe, "mcp", SCENARIO];
    let (code, out) = inspector(&bin, &stdio, &["--method", "tools/list", "--strict"]);
    assert_eq!(code, 0, "tools/list --strict: {out}");
    // Not even a portability warning, in input or output schemas.
    assert!(!out.contains("schemaFindings"), "{out}");
    assert!(
        out.contains("\"readOnlyHint\":true") || out.contains("\"readOnlyHint\": true"),
        "{out}"
    );
    // Every tool: the Inspector checks each structuredContent against the
    // tool's outputSchema (Ajv) and fails the call on a mismatch.
    let (api, finding) = api_and_finding(&diagnose_json());
    for (name, args) in every_call(&api, &finding) {
        let args = args.to_string();
        let (code, out) = inspector(
            &bin,
            &stdio,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                name,
                "--tool-args-json",
                &args,
            ],
        );
        assert_eq!(code, 0, "{name} {args}: {out}");
        assert!(out.contains("structuredContent"), "{name}: {out}");
    }
    let (code, out) = inspector(
        &bin,
        &stdio,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "failure_rate",
            "--tool-args-json",
            "{\"api\":\"no-such-api-at-all\"}",
        ],
    );
    assert_eq!(code, 5, "a bad argument is isError (exit 5): {out}");
    assert!(out.contains("no API named"), "{out}");
    let (code, out) = inspector(
        &bin,
        &stdio,
        &["--method", "resources/read", "--uri", "apimedic://findings"],
    );
    assert_eq!(code, 0, "resources/read: {out}");
    let (code, out) = inspector(
        &bin,
        &stdio,
        &[
            "--method",
            "prompts/get",
            "--prompt-name",
            "incident_triage",
        ],
    );
    assert_eq!(code, 0, "prompts/get: {out}");

    let srv = http_server(None);
    let url = format!("http://{}/mcp", srv.addr);
    let (code, out) = inspector(&bin, &[&url], &["--method", "tools/list"]);
    assert_eq!(code, 0, "tools/list over HTTP: {out}");
    assert!(out.contains("backend_map"), "{out}");
}

#[test]
fn python_sdk_client_over_stdio_and_http() {
    let Some(py) = client_path("APIMEDIC_TEST_MCP_PYTHON", "Python MCP SDK") else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/py_check.py");
    let exe = env!("CARGO_BIN_EXE_apimedic");
    let run = |args: &[&str]| {
        let out = Command::new(&py)
            .arg(script)
            .args(args)
            .output()
            .expect("python runs");
        assert!(
            out.status.success(),
            "py_check {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["stdio", exe, SCENARIO]);
    let srv = http_server(None);
    run(&["http", &format!("http://{}/mcp", srv.addr)]);
}
