//! A stand-in for Azure on loopback, for tests, benchmarks and trying live
//! mode without a subscription (`apimedic simulate --serve-azure`). It serves
//! instances built from documents in the real shapes (a simulated
//! instance's files, an exported folder, or the request/response exchanges
//! of ../shared/corpus/azure-rest at their request paths) the way ARM does:
//! resources by id, lists with `nextLink` paging, policies (404 where there
//! is none), Azure Monitor metrics cut to the requested names and time span
//! (400 for an unknown metric, like Azure), the activity log filtered by
//! `$filter`, Resource Graph discovery of the services, a subnet for each
//! NSG's subnet, and the sign-in endpoints: client credentials (secret,
//! certificate assertion checked against the key, federated token) over
//! TLS and an App Service style identity endpoint.
//!
//! Faults are injected per instance of the server: page size, 429 with
//! `Retry-After` on chosen paths, 403 on chosen paths, slow paths, and
//! tokens revoked after some requests (the client must refresh on 401).
//! Everything listens on 127.0.0.1 only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the stand-in serves and how it misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Items per list page (0: everything in one page).
    pub page_size: usize,
    /// (path fragment, n): the first n requests whose path contains the
    /// fragment are answered 429 with `Retry-After: 1`.
    pub throttle: Vec<(String, u32)>,
    /// Path fragments answered 403 AuthorizationFailed.
    pub forbidden: Vec<String>,
    /// (path fragment, delay) before answering.
    pub slow: Vec<(String, Duration)>,
    /// After this many ARM requests every token seen so far is revoked (401).
    pub revoke_after: Option<u64>,
    /// The service principal the token endpoint accepts.
    pub tenant: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// PEM of the RSA key whose certificate assertions are accepted.
    pub client_key_pem: Option<Vec<u8>>,
    /// The federated token (workload identity) accepted as an assertion.
    pub federated_token: Option<String>,
    /// The `X-IDENTITY-HEADER` the identity endpoint expects.
    pub identity_header: Option<String>,
    /// Seconds a token is valid for.
    pub token_lifetime: i64,
}

/// Resources, lists, metrics and events of every instance served.
#[derive(Debug, Default)]
pub struct Store {
    /// Lower-cased path → resource body.
    resources: HashMap<String, Value>,
    /// Lower-cased collection path → items.
    lists: BTreeMap<String, Vec<Value>>,
    /// (lower-cased resource id, lower-cased metric name) → metric item.
    metrics: HashMap<(String, String), Value>,
    /// Lower-cased resource id → (namespace, region) of its metrics answers.
    metric_meta: HashMap<String, (String, String)>,
    events: Vec<Value>,
    /// Lower-cased paths whose answer is a bare JSON document from the corpus.
    bare: HashMap<String, Value>,
    /// Lower-cased NIC id → (NSG id, subnet id): the one NIC served in
    /// each NSG's subnet, whose effective rules are that NSG's.
    nics: HashMap<String, (String, String)>,
}

impl Store {
    /// Adds one document (a file's bytes); returns false when it holds
    /// nothing the stand-in serves (gateway logs, XML, expected.json).
    pub fn add_document(&mut self, bytes: &[u8]) -> bool {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return false;
        };
        self.add_value(v, None)
    }

    /// The request/response exchanges of ../shared/corpus/azure-rest: each
    /// GET answer of ARM is served at its request path.
    pub fn add_exchange(&mut self, bytes: &[u8]) -> bool {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return false;
        };
        let (Some(method), Some(url), Some(body)) = (
            v.pointer("/request/method").and_then(Value::as_str),
            v.pointer("/request/url").and_then(Value::as_str),
            v.pointer("/response/body"),
        ) else {
            return false;
        };
        if method != "GET" || !url.contains("management.azure.com") {
            return false;
        }
        if v.pointer("/response/status").and_then(Value::as_u64) != Some(200) {
            return false;
        }
        let path = url
            .split_once("management.azure.com")
            .map(|(_, p)| p.split('?').next().unwrap_or(p))
            .unwrap_or("")
            .to_string();
        let mut body = body.clone();
        // Some spec examples' bodies name another resource than their URL
        // (the service GET example answers for `OGF-Z3-06162021-Premium`
        // at `.../service/apimService1`): the URL wins, as it would on ARM.
        if body.get("value").is_none()
            && let Some(id) = body.get("id").and_then(Value::as_str)
            && !id.eq_ignore_ascii_case(&path)
            && path.to_ascii_lowercase().starts_with("/subscriptions/")
        {
            body["id"] = json!(path);
            body["name"] = json!(path.rsplit('/').next().unwrap_or(""));
        }
        self.add_value(body, Some(&path))
    }

    fn add_value(&mut self, v: Value, at: Option<&str>) -> bool {
        if let Some(items) = v.get("value").and_then(Value::as_array) {
            // A metrics answer.
            if v.get("timespan").is_some() || v.get("interval").is_some() {
                let ns = v
                    .get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let region = v
                    .get("resourceregion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                for m in items {
                    let (Some(id), Some(name)) = (
                        m.get("id").and_then(Value::as_str),
                        m.pointer("/name/value").and_then(Value::as_str),
                    ) else {
                        continue;
                    };
                    let rid = id
                        .to_ascii_lowercase()
                        .split("/providers/microsoft.insights/metrics")
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let rid = if rid.starts_with('/') {
                        rid
                    } else {
                        format!("/{rid}")
                    };
                    self.metric_meta
                        .insert(rid.clone(), (ns.clone(), region.clone()));
                    self.metrics
                        .insert((rid, name.to_ascii_lowercase()), m.clone());
                }
                return true;
            }
            let mut any = false;
            for item in items {
                if item.get("eventTimestamp").is_some() {
                    self.events.push(item.clone());
                    any = true;
                } else if let Some(id) = item.get("id").and_then(Value::as_str) {
                    self.add_resource(id, item.clone());
                    any = true;
                } else if let Some(path) = at {
                    // Flat items (API revisions) live only in their list.
                    self.lists
                        .entry(path.to_ascii_lowercase())
                        .or_default()
                        .push(item.clone());
                    any = true;
                }
            }
            if let (Some(path), false) = (at, any) {
                self.lists.entry(path.to_ascii_lowercase()).or_default();
                return true;
            }
            return any;
        }
        if v.is_array() {
            if let Some(path) = at {
                self.bare.insert(path.to_ascii_lowercase(), v);
                return true;
            }
            return false;
        }
        match v.get("id").and_then(Value::as_str).map(str::to_string) {
            Some(id) if id.to_ascii_lowercase().starts_with("/subscriptions/") => {
                self.add_resource(&id, v);
                true
            }
            _ => match at {
                Some(path) => {
                    self.resources.insert(path.to_ascii_lowercase(), v);
                    true
                }
                None => false,
            },
        }
    }

    fn add_resource(&mut self, id: &str, v: Value) {
        let key = id.trim_end_matches('/').to_ascii_lowercase();
        // An NSG names its subnets: serve each subnet pointing back at it.
        if key.contains("/providers/microsoft.network/networksecuritygroups/")
            && key.matches('/').count() == 8
        {
            for s in v
                .pointer("/properties/subnets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(sid) = s.get("id").and_then(Value::as_str) {
                    // One NIC in the subnet (a VM or an stv1 gateway's).
                    let rg: Vec<&str> = sid.trim_matches('/').split('/').take(4).collect();
                    let nic = format!(
                        "/{}/providers/Microsoft.Network/networkInterfaces/{}-nic",
                        rg.join("/"),
                        sid.rsplit('/').next().unwrap_or("subnet")
                    );
                    self.nics
                        .insert(nic.to_ascii_lowercase(), (id.to_string(), sid.to_string()));
                    self.resources.entry(sid.to_ascii_lowercase()).or_insert_with(|| {
                        json!({"id": sid, "name": sid.rsplit('/').next(), "type": "Microsoft.Network/virtualNetworks/subnets",
                               "properties": {"provisioningState": "Succeeded", "networkSecurityGroup": {"id": id},
                                              "ipConfigurations": [{"id": format!("{nic}/ipConfigurations/ipconfig1")}]}})
                    });
                }
            }
        }
        if let Some((parent, _)) = key.rsplit_once('/') {
            let list = self.lists.entry(parent.to_string()).or_default();
            let same = |x: &Value| {
                x.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|i| i.eq_ignore_ascii_case(id))
            };
            if let Some(old) = list.iter_mut().find(|x| same(x)) {
                *old = v.clone();
            } else {
                list.push(v.clone());
            }
        }
        self.resources.insert(key, v);
    }

    /// The services (for Resource Graph).
    fn services(&self) -> Vec<&Value> {
        let mut out: Vec<&Value> = self
            .resources
            .iter()
            .filter(|(k, _)| {
                k.contains("/providers/microsoft.apimanagement/service/")
                    && k.matches('/').count() == 8
            })
            .map(|(_, v)| v)
            .collect();
        out.sort_by_key(|v| {
            v.get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        });
        out
    }

    pub fn service_ids(&self) -> Vec<String> {
        self.services()
            .iter()
            .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
            .collect()
    }
}

/// Documents of a simulated instance renamed to `name` in `subscription`
/// (every id and name of the service rewritten), for fleets.
pub fn rename_instance(
    files: &[(String, Vec<u8>)],
    subscription: &str,
    name: &str,
) -> Vec<(String, Vec<u8>)> {
    use super::catalog::{SERVICE, SUBSCRIPTION};
    files
        .iter()
        .map(|(p, b)| {
            let text = String::from_utf8_lossy(b)
                .replace(SUBSCRIPTION, subscription)
                .replace(&SUBSCRIPTION.to_uppercase(), &subscription.to_uppercase())
                .replace(&format!("/service/{SERVICE}"), &format!("/service/{name}"))
                .replace(&format!("\"{SERVICE}\""), &format!("\"{name}\""));
            (p.clone(), text.into_bytes())
        })
        .collect()
}

/// `n_apis` more APIs with `ops_per_api` operations each (and a policy on
/// every operation) added to the service `service_id`, for benchmarks.
pub fn bulk_apis(service_id: &str, n_apis: usize, ops_per_api: usize) -> Vec<Vec<u8>> {
    let mut docs = Vec::new();
    let mut apis = Vec::new();
    for a in 0..n_apis {
        let api = format!("bulk-api-{a:03}");
        apis.push(json!({
            "id": format!("{service_id}/apis/{api}"), "name": api, "type": "Microsoft.ApiManagement/service/apis",
            "properties": {"displayName": format!("Bulk API {a}"), "path": format!("bulk/{a}"), "protocols": ["https"],
                           "serviceUrl": format!("https://bulk-{a}.internal.contoso.com"), "apiRevision": "1", "isCurrent": true}
        }));
        let ops: Vec<Value> = (0..ops_per_api)
            .map(|o| {
                json!({
                    "id": format!("{service_id}/apis/{api}/operations/op-{o:03}"), "name": format!("op-{o:03}"),
                    "type": "Microsoft.ApiManagement/service/apis/operations",
                    "properties": {"displayName": format!("Operation {o}"), "method": if o % 2 == 0 { "GET" } else { "POST" },
                                   "urlTemplate": format!("/items/{o}"), "templateParameters": [], "responses": []}
                })
            })
            .collect();
        for o in 0..ops_per_api {
            docs.push(
                serde_json::to_vec(&json!({
                    "id": format!("{service_id}/apis/{api}/operations/op-{o:03}/policies/policy"), "name": "policy",
                    "type": "Microsoft.ApiManagement/service/apis/operations/policies",
                    "properties": {"format": "rawxml", "value": format!(
                        "<policies><inbound><base /><set-header name=\"x-op\" exists-action=\"override\"><value>{o}</value></set-header></inbound><backend><forward-request timeout=\"30\" /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")}
                }))
                .unwrap_or_default(),
            );
        }
        docs.push(serde_json::to_vec(&json!({"value": ops})).unwrap_or_default());
    }
    docs.push(serde_json::to_vec(&json!({"value": apis})).unwrap_or_default());
    docs
}

/// Counters of what the stand-in answered.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub arm: AtomicU64,
    pub tokens: AtomicU64,
    pub throttled: AtomicU64,
    pub unauthorized: AtomicU64,
    pub forbidden: AtomicU64,
}

struct State {
    store: Store,
    config: Config,
    counters: Counters,
    /// Path fragment → throttled answers left.
    throttle_left: Mutex<HashMap<String, u32>>,
    revoked: Mutex<HashSet<String>>,
    seen: Mutex<HashSet<String>>,
    next_token: AtomicU64,
    http_base: String,
}

/// A running stand-in.
pub struct StandIn {
    /// `http://127.0.0.1:PORT`: ARM (`APIMEDIC_ARM_URL`).
    pub arm_url: String,
    /// `https://127.0.0.1:PORT`: sign-in (`AZURE_AUTHORITY_HOST`); also serves ARM.
    pub login_url: String,
    /// `http://127.0.0.1:PORT/msi/token`: the identity endpoint (`IDENTITY_ENDPOINT`).
    pub identity_endpoint: String,
    state: Arc<State>,
}

impl StandIn {
    /// Starts listening on 127.0.0.1 (ephemeral ports, or `port` for the
    /// ARM listener), serving `store`. `tls` is the server certificate and
    /// key (PEM) for the sign-in listener.
    pub fn start(
        store: Store,
        config: Config,
        tls: (&[u8], &[u8]),
        port: u16,
    ) -> Result<StandIn, String> {
        let http = TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let https = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let addr = |l: &TcpListener| l.local_addr().map_err(|e| e.to_string());
        let (ha, sa): (SocketAddr, SocketAddr) = (addr(&http)?, addr(&https)?);
        let arm_url = format!("http://{ha}");
        let throttle_left = config.throttle.iter().cloned().collect();
        let state = Arc::new(State {
            store,
            config,
            counters: Counters::default(),
            throttle_left: Mutex::new(throttle_left),
            revoked: Mutex::new(HashSet::new()),
            seen: Mutex::new(HashSet::new()),
            next_token: AtomicU64::new(1),
            http_base: arm_url.clone(),
        });
        let tls = server_tls(tls.0, tls.1)?;
        let s1 = Arc::clone(&state);
        std::thread::spawn(move || accept(http, s1, None));
        let s2 = Arc::clone(&state);
        std::thread::spawn(move || accept(https, s2, Some(tls)));
        Ok(StandIn {
            identity_endpoint: format!("{arm_url}/msi/token"),
            arm_url,
            login_url: format!("https://{sa}"),
            state,
        })
    }

    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    pub fn service_ids(&self) -> Vec<String> {
        self.state.store.service_ids()
    }
}

fn server_tls(cert: &[u8], key: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("server certificate: {e:?}"))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("server key: {e:?}"))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map(Arc::new)
        .map_err(|e| format!("server certificate: {e}"))
}

fn accept(listener: TcpListener, state: Arc<State>, tls: Option<Arc<rustls::ServerConfig>>) {
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        let state = Arc::clone(&state);
        let tls = tls.clone();
        std::thread::spawn(move || {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = tcp.set_nodelay(true);
            match tls {
                None => serve_conn(tcp, &state),
                Some(cfg) => {
                    if let Ok(conn) = rustls::ServerConnection::new(cfg) {
                        serve_conn(rustls::StreamOwned::new(conn, tcp), &state);
                    }
                }
            }
        });
    }
}

/// One parsed request.
#[derive(Debug, Default)]
pub struct Req {
    pub method: String,
    /// Path without the query, as sent.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An answer.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn resp(status: u16, body: &Value) -> Resp {
    Resp {
        status,
        headers: Vec::new(),
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

fn arm_error(status: u16, code: &str, message: &str) -> Resp {
    resp(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn serve_conn<S: Read + Write>(stream: S, state: &State) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        let close = req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        if let Some((_, delay)) = state
            .config
            .slow
            .iter()
            .find(|(f, _)| req.path.contains(f.as_str()))
        {
            std::thread::sleep(*delay);
        }
        let r = handle(state, &req);
        let reason = match r.status {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            429 => "Too Many Requests",
            _ => "Status",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            r.status,
            r.body.len()
        );
        for (k, v) in &r.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let w = reader.get_mut();
        if w.write_all(head.as_bytes())
            .and_then(|_| w.write_all(&r.body))
            .and_then(|_| w.flush())
            .is_err()
            || close
        {
            return;
        }
    }
}

fn read_request<R: BufRead>(r: &mut R) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(16 << 20)];
    r.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Req {
        method,
        path: percent_decode(path),
        query: parse_query(query),
        headers,
        body,
    })
}

/// `a=b&c=d` with percent-decoding (and `+` as a space).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(state: &State, req: &Req) -> Resp {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let lower = req.path.to_ascii_lowercase();
    if lower.ends_with("/oauth2/v2.0/token") && req.method == "POST" {
        return token_endpoint(state, req);
    }
    if lower == "/msi/token" {
        return identity_endpoint(state, req);
    }
    state.counters.arm.fetch_add(1, Ordering::Relaxed);
    // Authorization.
    let token = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    let n = state.counters.arm.load(Ordering::Relaxed);
    {
        let mut seen = state.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !token.is_empty() {
            seen.insert(token.clone());
        }
        if state.config.revoke_after == Some(n) {
            let mut revoked = state.revoked.lock().unwrap_or_else(|e| e.into_inner());
            revoked.extend(seen.iter().cloned());
        }
    }
    let revoked = state
        .revoked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&token);
    if token.is_empty() || !token.starts_with("standin.") || revoked {
        state.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        return arm_error(
            401,
            if revoked {
                "ExpiredAuthenticationToken"
            } else {
                "InvalidAuthenticationToken"
            },
            "The access token is missing, invalid or has expired.",
        );
    }
    if state
        .config
        .forbidden
        .iter()
        .any(|f| req.path.contains(f.as_str()))
    {
        state.counters.forbidden.fetch_add(1, Ordering::Relaxed);
        return arm_error(
            403,
            "AuthorizationFailed",
            &format!(
                "The client 'standin' with object id '00000000-0000-0000-0000-0000000000aa' does not have authorization to perform action 'read' over scope '{}' or the scope is invalid.",
                req.path
            ),
        );
    }
    {
        let mut left = state
            .throttle_left
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = left
            .iter_mut()
            .find(|(f, n)| **n > 0 && req.path.contains(f.as_str()))
        {
            *n -= 1;
            state.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let mut r = arm_error(429, "TooManyRequests", "The request is being throttled.");
            r.headers.push(("Retry-After".into(), "1".into()));
            r.headers.push((
                "x-ms-ratelimit-remaining-subscription-reads".into(),
                "0".into(),
            ));
            return r;
        }
    }
    match req.method.as_str() {
        "GET" => get(state, req, &lower),
        "POST" if lower == "/providers/microsoft.resourcegraph/resources" => {
            resource_graph(state, req)
        }
        // A NIC's effective rules: a long-running operation (202 and a
        // Location to poll), as ARM answers it.
        "POST" if lower.ends_with("/effectivenetworksecuritygroups") => {
            let nic = lower.trim_end_matches("/effectivenetworksecuritygroups");
            if !state.store.nics.contains_key(nic) {
                return arm_error(404, "NotFound", "no such network interface");
            }
            let mut r = resp(202, &Value::Null);
            r.headers
                .push(("Location".into(), format!("/lro/effective{nic}")));
            r.headers.push(("Retry-After".into(), "0".into()));
            r
        }
        "POST" => arm_error(404, "NotFound", "no such operation in the stand-in"),
        _ => arm_error(
            405,
            "MethodNotAllowed",
            "the read stand-in only answers GET and read-only POST",
        ),
    }
}

fn get(state: &State, req: &Req, lower: &str) -> Resp {
    let store = &state.store;
    if let Some(nic) = lower.strip_prefix("/lro/effective") {
        return match store.nics.get(nic).and_then(|(nsg, subnet)| {
            store
                .resources
                .get(&nsg.to_ascii_lowercase())
                .map(|v| effective_rules(v, nsg, subnet))
        }) {
            Some(body) => resp(200, &body),
            None => arm_error(404, "NotFound", "no such operation"),
        };
    }
    if lower.ends_with("/providers/microsoft.insights/metrics") {
        return metrics(state, req, lower);
    }
    if lower.ends_with("/providers/microsoft.insights/eventtypes/management/values") {
        return activity(state, req, lower);
    }
    if let Some(v) = store.bare.get(lower) {
        return resp(200, v);
    }
    if let Some(v) = store.resources.get(lower) {
        return resp(200, v);
    }
    if let Some(items) = store.lists.get(lower) {
        return page(state, req, items);
    }
    // A collection nobody filled (no fragments, no diagnostic settings) is
    // an empty list; a policy nobody set is a 404, like ARM.
    let last = lower.rsplit('/').next().unwrap_or("");
    let parent_exists = lower.rsplit_once('/').is_some_and(|(p, _)| {
        store.resources.contains_key(p) || p.ends_with("/providers/microsoft.insights")
    });
    if parent_exists
        && !lower.ends_with("/policies/policy")
        && last.chars().all(|c| c.is_ascii_alphabetic())
    {
        return page(state, req, &[]);
    }
    if lower.contains("/providers/microsoft.insights/diagnosticsettings")
        || lower.ends_with("/autoscalesettings")
    {
        return page(state, req, &[]);
    }
    arm_error(
        404,
        "ResourceNotFound",
        &format!("The Resource '{}' was not found.", req.path),
    )
}

fn page(state: &State, req: &Req, items: &[Value]) -> Resp {
    let size = state.config.page_size;
    let skip: usize = req.param("$skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    if size == 0 {
        return resp(
            200,
            &json!({"value": items, "count": items.len(), "nextLink": null}),
        );
    }
    let end = (skip + size).min(items.len());
    let slice = items.get(skip..end).unwrap_or(&[]);
    let next = if end < items.len() {
        let mut q: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "$skip")
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        q.push(format!("$skip={end}"));
        json!(format!("{}{}?{}", state.http_base, req.path, q.join("&")))
    } else {
        // The last page says so with "" (ApiManagementListApis.json does).
        json!("")
    };
    resp(
        200,
        &json!({"value": slice, "count": items.len(), "nextLink": next}),
    )
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'$') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.to_utc())
}

fn metrics(state: &State, req: &Req, lower: &str) -> Resp {
    let rid = lower
        .trim_end_matches("/providers/microsoft.insights/metrics")
        .to_string();
    let (start, end) = match req.param("timespan").and_then(|t| t.split_once('/')) {
        Some((a, b)) => match (parse_time(a), parse_time(b)) {
            (Some(a), Some(b)) => (a, b),
            _ => return arm_error(400, "BadRequest", "timespan must be start/end in ISO 8601"),
        },
        None => return arm_error(400, "BadRequest", "timespan is required by the stand-in"),
    };
    let names = req.param("metricnames").unwrap_or("");
    let mut out = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(m) = state
            .store
            .metrics
            .get(&(rid.clone(), name.to_ascii_lowercase()))
        else {
            let (ns, _) = state
                .store
                .metric_meta
                .get(&rid)
                .cloned()
                .unwrap_or_default();
            if !state.store.resources.contains_key(&rid)
                && !state.store.metric_meta.contains_key(&rid)
            {
                return arm_error(
                    404,
                    "ResourceNotFound",
                    &format!("The Resource '{rid}' was not found."),
                );
            }
            return arm_error(
                400,
                "BadRequest",
                &format!(
                    "Failed to find metric configuration for provider: {ns}, resource Type: , metric: {name}, Valid metrics: "
                ),
            );
        };
        let mut m = m.clone();
        if let Some(ts) = m.get_mut("timeseries").and_then(Value::as_array_mut) {
            for series in ts.iter_mut() {
                if let Some(data) = series.get_mut("data").and_then(Value::as_array_mut) {
                    data.retain(|p| {
                        p.get("timeStamp")
                            .and_then(Value::as_str)
                            .and_then(parse_time)
                            .is_some_and(|t| t >= start && t < end)
                    });
                }
            }
        }
        out.push(m);
    }
    let (ns, region) = state
        .store
        .metric_meta
        .get(&rid)
        .cloned()
        .unwrap_or_default();
    resp(
        200,
        &json!({
            "cost": 0, "timespan": req.param("timespan"), "interval": req.param("interval").unwrap_or("PT1M"),
            "namespace": ns, "resourceregion": region, "value": out
        }),
    )
}

fn activity(state: &State, req: &Req, lower: &str) -> Resp {
    let sub = lower.split('/').nth(2).unwrap_or("").to_string();
    let filter = req.param("$filter").unwrap_or("");
    let quoted = |key: &str| -> Option<String> {
        let i = filter.find(key)?;
        let rest = &filter[i + key.len()..];
        let a = rest.find('\'')?;
        let b = rest[a + 1..].find('\'')?;
        Some(rest[a + 1..a + 1 + b].to_string())
    };
    let (Some(ge), Some(le)) = (
        quoted("eventTimestamp ge").and_then(|s| parse_time(&s)),
        quoted("eventTimestamp le").and_then(|s| parse_time(&s)),
    ) else {
        return resp(
            400,
            &json!({"code": "BadRequest", "message": "The $filter must give eventTimestamp ge and le."}),
        );
    };
    let rg = quoted("resourceGroupName eq").map(|s| s.to_ascii_lowercase());
    let items: Vec<Value> = state
        .store
        .events
        .iter()
        .filter(|e| {
            let rid = e
                .get("resourceId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let t = e
                .get("eventTimestamp")
                .and_then(Value::as_str)
                .and_then(parse_time);
            rid.split('/').nth(2) == Some(sub.as_str())
                && t.is_some_and(|t| t >= ge && t <= le)
                && rg.as_ref().is_none_or(|g| {
                    e.get("resourceGroupName")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(g))
                        || rid.split('/').nth(4) == Some(g.as_str())
                })
        })
        .cloned()
        .collect();
    page(state, req, &items)
}

/// A NIC's `effectiveNetworkSecurityGroups` answer for an NSG on its
/// subnet (pure): every rule flattened with its `securityRules/` or
/// `defaultSecurityRules/` prefix, `*` written as Azure writes it in
/// effective listings (`0.0.0.0/0`, `0-65535`, protocol `All`).
pub fn effective_rules(nsg: &Value, nsg_id: &str, subnet: &str) -> Value {
    let port = |v: &Value| match v.as_str() {
        Some("*") | None => "0-65535".to_string(),
        Some(p) if !p.contains('-') => format!("{p}-{p}"),
        Some(p) => p.to_string(),
    };
    let addr = |v: &Value| match v.as_str() {
        Some("*") | None => "0.0.0.0/0".to_string(),
        Some(a) => a.to_string(),
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let mut rules = Vec::new();
    for (key, prefix) in [
        ("securityRules", "securityRules"),
        ("defaultSecurityRules", "defaultSecurityRules"),
    ] {
        for r in nsg
            .pointer(&format!("/properties/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let p = &r["properties"];
            let one = |single: &str, plural: &str, f: &dyn Fn(&Value) -> String| {
                if list(&p[plural]).is_empty() {
                    Value::String(f(&p[single]))
                } else {
                    Value::Null
                }
            };
            rules.push(json!({
                "name": format!("{prefix}/{}", r["name"].as_str().unwrap_or("rule")),
                "protocol": match p["protocol"].as_str() { Some("*") | None => "All", Some(x) => x },
                "sourcePortRange": one("sourcePortRange", "sourcePortRanges", &port),
                "destinationPortRange": one("destinationPortRange", "destinationPortRanges", &port),
                "sourcePortRanges": list(&p["sourcePortRanges"]),
                "destinationPortRanges": list(&p["destinationPortRanges"]),
                "sourceAddressPrefix": one("sourceAddressPrefix", "sourceAddressPrefixes", &addr),
                "destinationAddressPrefix": one("destinationAddressPrefix", "destinationAddressPrefixes", &addr),
                "sourceAddressPrefixes": list(&p["sourceAddressPrefixes"]),
                "destinationAddressPrefixes": list(&p["destinationAddressPrefixes"]),
                "expandedSourceAddressPrefix": [],
                "expandedDestinationAddressPrefix": [],
                "access": p["access"],
                "priority": p["priority"],
                "direction": p["direction"],
            }));
        }
    }
    json!({"value": [{
        "networkSecurityGroup": {"id": nsg_id},
        "association": {"subnet": {"id": subnet}},
        "effectiveSecurityRules": rules,
        "tagMap": "{}",
    }]})
}

fn resource_graph(state: &State, req: &Req) -> Resp {
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return arm_error(400, "BadRequest", "the body is not JSON");
    };
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !query
        .to_ascii_lowercase()
        .contains("microsoft.apimanagement/service")
    {
        return arm_error(
            400,
            "BadRequest",
            "the stand-in answers API Management discovery queries only",
        );
    }
    let subs: Option<Vec<String>> = body
        .get("subscriptions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        });
    let eq = |key: &str| -> Option<String> {
        let i = query.find(key)?;
        let rest = &query[i + key.len()..];
        let a = rest.find('\'')?;
        let b = rest[a + 1..].find('\'')?;
        Some(rest[a + 1..a + 1 + b].to_ascii_lowercase())
    };
    let (rg, name) = (eq("resourceGroup =~"), eq("name =~"));
    let rows: Vec<Value> = state
        .store
        .services()
        .into_iter()
        .filter_map(|s| {
            let id = s.get("id").and_then(Value::as_str)?;
            let p: Vec<&str> = id.trim_matches('/').split('/').collect();
            let (sub, group, n) = (p.get(1)?, p.get(3)?, p.get(7)?);
            let keep = subs.as_ref().is_none_or(|l| l.contains(&sub.to_ascii_lowercase()))
                && rg.as_ref().is_none_or(|g| g.eq_ignore_ascii_case(group))
                && name.as_ref().is_none_or(|x| x.eq_ignore_ascii_case(n));
            keep.then(|| {
                json!({"id": id, "name": n, "type": "microsoft.apimanagement/service", "resourceGroup": group,
                       "subscriptionId": sub, "location": s.get("location"), "sku": s.get("sku")})
            })
        })
        .collect();
    let skip: usize = body
        .pointer("/options/$skipToken")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let size = if state.config.page_size == 0 {
        rows.len().max(1)
    } else {
        state.config.page_size
    };
    let end = (skip + size).min(rows.len());
    let mut out = json!({"totalRecords": rows.len(), "count": end.saturating_sub(skip), "data": rows.get(skip..end).unwrap_or(&[]),
                         "facets": [], "resultTruncated": "false"});
    if end < rows.len() {
        out["$skipToken"] = json!(end.to_string());
    }
    resp(200, &out)
}

fn issue_token(state: &State, subject: &Value) -> (String, i64) {
    let n = state.next_token.fetch_add(1, Ordering::Relaxed);
    state.counters.tokens.fetch_add(1, Ordering::Relaxed);
    let exp = chrono::Utc::now().timestamp() + state.config.token_lifetime.max(60);
    let mut claims = subject.clone();
    claims["exp"] = json!(exp);
    claims["tid"] = json!(state.config.tenant);
    claims["n"] = json!(n);
    // "standin." + an unsigned JWT body: the client reads the principal from it.
    let token = format!(
        "standin.{}.",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default())
    );
    (token, exp)
}

fn entra_error(status: u16, error: &str, code: u32, description: &str) -> Resp {
    resp(
        status,
        &json!({"error": error, "error_description": format!("AADSTS{code}: {description}"), "error_codes": [code],
                "timestamp": "2026-01-01 00:00:00Z", "trace_id": "00000000-0000-0000-0000-000000000001",
                "correlation_id": "00000000-0000-0000-0000-000000000002"}),
    )
}

fn token_endpoint(state: &State, req: &Req) -> Resp {
    let tenant = req
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    if !tenant.eq_ignore_ascii_case(&state.config.tenant) {
        return entra_error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let form: HashMap<String, String> = parse_query(&String::from_utf8_lossy(&req.body))
        .into_iter()
        .collect();
    let f = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if f("grant_type") != "client_credentials" {
        return entra_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if f("client_id") != state.config.client_id {
        return entra_error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory.",
                f("client_id")
            ),
        );
    }
    let scope = f("scope");
    if !scope.ends_with("/.default") {
        return entra_error(
            400,
            "invalid_scope",
            70011,
            "The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let ok =
        if let Some(secret) = form.get("client_secret") {
            state.config.client_secret.as_deref() == Some(secret.as_str())
        } else if let Some(assertion) = form.get("client_assertion") {
            state.config.federated_token.as_deref() == Some(assertion.as_str())
                || state.config.client_key_pem.as_deref().is_some_and(|pem| {
                    assertion_ok(pem, assertion, &state.config.client_id, &req.path)
                })
        } else {
            false
        };
    if !ok {
        return entra_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
        );
    }
    let (token, _) = issue_token(
        state,
        &json!({"appid": state.config.client_id, "app_displayname": "apimedic-standin-sp", "oid": "00000000-0000-0000-0000-0000000000aa", "scp": scope}),
    );
    resp(
        200,
        &json!({"token_type": "Bearer", "expires_in": state.config.token_lifetime.max(60), "ext_expires_in": state.config.token_lifetime.max(60), "access_token": token}),
    )
}

/// A certificate assertion: RS256 signature by the configured key, the
/// right issuer and audience, not expired.
fn assertion_ok(key_pem: &[u8], jwt: &str, client_id: &str, path: &str) -> bool {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let Ok(PrivateKeyDer::Pkcs8(k)) = PrivateKeyDer::from_pem_slice(key_pem) else {
        return false;
    };
    let Ok(pair) = ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()) else {
        return false;
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let Ok(sig) = URL_SAFE_NO_PAD.decode(parts[2]) else {
        return false;
    };
    let public = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public().as_ref(),
    );
    if public
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .is_err()
    {
        return false;
    }
    let Some(claims) = URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return false;
    };
    let now = chrono::Utc::now().timestamp();
    claims["iss"] == client_id
        && claims["sub"] == client_id
        && claims["aud"].as_str().is_some_and(|a| a.ends_with(path))
        && claims["exp"].as_i64().is_some_and(|e| e > now)
}

fn identity_endpoint(state: &State, req: &Req) -> Resp {
    let Some(expected) = &state.config.identity_header else {
        return resp(404, &json!({"error": "no identity endpoint configured"}));
    };
    if req.header("x-identity-header") != Some(expected.as_str()) {
        return resp(
            401,
            &json!({"statusCode": 401, "message": "Unauthorized request: the X-IDENTITY-HEADER is missing or wrong."}),
        );
    }
    let resource = req.param("resource").unwrap_or("").to_string();
    if resource.is_empty() {
        return resp(
            400,
            &json!({"statusCode": 400, "message": "resource is required"}),
        );
    }
    let (token, exp) = issue_token(
        state,
        &json!({"oid": "00000000-0000-0000-0000-0000000000bb", "app_displayname": "apimedic-standin-identity", "appid": "5e29463d-71da-4fe0-8e69-999b57db23b0"}),
    );
    resp(
        200,
        &json!({"access_token": token, "expires_on": exp.to_string(), "resource": resource, "token_type": "Bearer",
                "client_id": "5E29463D-71DA-4FE0-8E69-999B57DB23B0"}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        let q = parse_query("a=b%20c&%24filter=x+eq+%27y%27&empty");
        assert_eq!(q[0], ("a".into(), "b c".into()));
        assert_eq!(q[1], ("$filter".into(), "x eq 'y'".into()));
        assert_eq!(q[2], ("empty".into(), "".into()));
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("50%"), "50%");
    }

    #[test]
    fn the_store_indexes_lists_resources_metrics_and_events() {
        let files = super::super::generate(super::super::Scenario::BackendOom, 1, 0.02, 60);
        let mut store = Store::default();
        for (_, b) in &files {
            store.add_document(b);
        }
        let svc = super::super::catalog::service_id().to_ascii_lowercase();
        assert!(store.resources.contains_key(&svc));
        assert_eq!(store.lists[&format!("{svc}/apis")].len(), 6);
        assert!(
            store
                .resources
                .contains_key(&format!("{svc}/policies/policy"))
        );
        assert!(
            store
                .metrics
                .contains_key(&(svc.clone(), "requests".into()))
        );
        assert!(!store.events.is_empty());
        // The NSG's subnet is served, pointing back at the NSG.
        let subnet = super::super::catalog::apim_subnet_id().to_ascii_lowercase();
        assert!(
            store.resources[&subnet]
                .pointer("/properties/networkSecurityGroup/id")
                .is_some()
        );
        assert_eq!(store.service_ids().len(), 1);
    }
}
