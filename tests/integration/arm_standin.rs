//! A stateful ARM stand-in on 127.0.0.1:0 for remediation tests. Seeded
//! from a scenario's exported ARM files (every JSON with an `id`, the bare
//! policy XML files), it keeps resources by id and answers like ARM does
//! (../shared/docs/azure-rest.md §0, §5): an ETag per entity that changes on
//! every write; If-Match checked (412 when stale); the APIM service PATCH
//! answered 202 with Azure-AsyncOperation and Location (same URL) and applied
//! when the operation completes after N polls; 409 while an operation runs
//! on the resource; NSG rule PUT 201 + Azure-AsyncOperation; policy PUT
//! synchronous; autoscale PATCH synchronous; what-if 202 + Location then the
//! predicted changes; the SKU list from the corpus. Faults (429 with
//! Retry-After, 403, 409) are scripted per method and path. Every request is
//! recorded. It is not a string matcher: answers come from the state.

use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "loopback-test-token";

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub if_match: Option<String>,
    pub body: Option<Value>,
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub method: String,
    pub path_contains: String,
    pub status: u16,
    pub code: String,
    pub retry_after: Option<u64>,
}

/// What completing an operation does to the state.
type Done = Box<dyn FnOnce(&mut State) + Send>;

struct Op {
    /// The resource the operation locks (lower-cased id).
    lock: String,
    polls_left: u32,
    /// What completion does.
    done: Option<Done>,
    status: &'static str,
    /// What-if result body, for what-if operations.
    result: Option<Value>,
}

#[derive(Default)]
struct State {
    resources: BTreeMap<String, Value>,
    etags: BTreeMap<String, String>,
    counter: u64,
    ops: BTreeMap<u64, Op>,
    faults: VecDeque<Fault>,
    seen: Vec<Seen>,
    polls: u32,
    base: String,
}

impl State {
    fn bump(&mut self, key: &str) -> String {
        self.counter += 1;
        let tag = format!(
            "\"{:08x}-{}\"",
            self.counter * 2654435761 % 0xffff_ffff,
            self.counter
        );
        self.etags.insert(key.to_string(), tag.clone());
        if let Some(body) = self.resources.get_mut(key)
            && key.contains("/microsoft.network/")
        {
            body["etag"] = json!(format!("W/{tag}"));
        }
        tag
    }

    fn etag(&self, key: &str) -> Option<String> {
        self.etags.get(key).cloned()
    }

    fn insert(&mut self, id: &str, body: Value) {
        let key = key(id);
        self.resources.insert(key.clone(), body);
        self.bump(&key);
    }

    fn locked(&self, k: &str) -> bool {
        self.ops.values().any(|o| {
            o.status == "InProgress"
                && o.result.is_none()
                && (k == o.lock || k.starts_with(&format!("{}/", o.lock)))
        })
    }
}

fn key(path: &str) -> String {
    path.split('?')
        .next()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

pub struct StandIn {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl StandIn {
    /// Seeds from a scenario folder (`fixtures/scenarios/NAME`).
    pub fn start(scenario: &Path) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut st = State {
            polls: 2,
            base: url.clone(),
            ..State::default()
        };
        seed(&mut st, scenario);
        let state = Arc::new(Mutex::new(st));
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        StandIn { url, state }
    }

    /// Polls an operation answers InProgress before it completes.
    pub fn set_polls(&self, n: u32) {
        self.state.lock().unwrap().polls = n;
    }

    pub fn fault(
        &self,
        method: &str,
        path_contains: &str,
        status: u16,
        code: &str,
        retry_after: Option<u64>,
    ) {
        self.state.lock().unwrap().faults.push_back(Fault {
            method: method.into(),
            path_contains: path_contains.to_ascii_lowercase(),
            status,
            code: code.into(),
            retry_after,
        });
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Writes (PUT, PATCH, DELETE) seen, as `METHOD path`.
    pub fn writes(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| matches!(s.method.as_str(), "PUT" | "PATCH" | "DELETE"))
            .map(|s| format!("{} {}", s.method, s.path.split('?').next().unwrap_or("")))
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().resources.get(&key(id)).cloned()
    }

    /// Someone else changes a resource (its ETag moves).
    pub fn touch(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let mut st = self.state.lock().unwrap();
        let k = key(id);
        if let Some(v) = st.resources.get_mut(&k) {
            f(v);
        }
        st.bump(&k);
    }

    /// Completes every running operation now.
    pub fn finish_all(&self) {
        let mut st = self.state.lock().unwrap();
        let ids: Vec<u64> = st.ops.keys().copied().collect();
        for id in ids {
            if let Some(op) = st.ops.get_mut(&id) {
                op.polls_left = 0;
            }
            complete(&mut st, id);
        }
    }
}

fn seed(st: &mut State, dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut service = String::new();
    for f in &files {
        if f.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&std::fs::read_to_string(f).unwrap_or_default())
        else {
            continue;
        };
        let items: Vec<Value> = match v.get("value").and_then(Value::as_array) {
            Some(list) => list.clone(),
            None => vec![v],
        };
        for item in items {
            if let Some(id) = item.get("id").and_then(Value::as_str) {
                if id
                    .to_ascii_lowercase()
                    .ends_with("/microsoft.apimanagement/service/contoso-apim")
                    || (item.get("type").and_then(Value::as_str)
                        == Some("Microsoft.ApiManagement/service"))
                {
                    service = id.to_string();
                }
                let id = id.to_string();
                st.insert(&id, item);
            }
        }
    }
    // Bare policy files: policies/apis/<api>.xml, policies/apis/<api>/operations/<op>.xml.
    if !service.is_empty() {
        for f in &files {
            if f.extension().and_then(|e| e.to_str()) != Some("xml") {
                continue;
            }
            let rel = f
                .strip_prefix(dir)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/");
            let Some(rest) = rel.strip_prefix("policies/apis/") else {
                continue;
            };
            let rest = rest.trim_end_matches(".xml");
            let path = match rest.split_once("/operations/") {
                Some((api, op)) => format!("{service}/apis/{api}/operations/{op}/policies/policy"),
                None => format!("{service}/apis/{rest}/policies/policy"),
            };
            if st.resources.contains_key(&key(&path)) {
                continue;
            }
            let xml = std::fs::read_to_string(f).unwrap_or_default();
            st.insert(&path, json!({"id": path, "name": "policy", "properties": {"format": "rawxml", "value": xml}}));
        }
    }
    // Policies with `xml` format are served as rawxml when asked.
}

struct Req {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Option<Value>,
}

fn read_req(stream: &mut TcpStream) -> Option<Req> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    let body = if len == 0 {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    Some(Req {
        method,
        path,
        headers,
        body,
    })
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, String)], body: Option<&Value>) {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        payload.len()
    );
    if body.is_some() {
        head.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(payload.as_bytes());
    let _ = stream.flush();
}

fn error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let Some(req) = read_req(&mut stream) else {
        return;
    };
    let (status, headers, body) = {
        let mut st = state.lock().unwrap();
        st.seen.push(Seen {
            method: req.method.clone(),
            path: req.path.clone(),
            if_match: req.headers.get("if-match").cloned(),
            body: req.body.clone(),
        });
        handle(&mut st, &req)
    };
    respond(&mut stream, status, &headers, body.as_ref());
}

type Answer = (u16, Vec<(&'static str, String)>, Option<Value>);

fn handle(st: &mut State, req: &Req) -> Answer {
    if req.headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
        return (
            401,
            vec![],
            Some(error(
                "InvalidAuthenticationToken",
                "The access token is invalid.",
            )),
        );
    }
    let k = key(&req.path);
    if let Some(i) = st
        .faults
        .iter()
        .position(|f| f.method == req.method && k.contains(&f.path_contains))
    {
        let f = st.faults.remove(i).expect("present");
        let mut h = vec![];
        if let Some(s) = f.retry_after {
            h.push(("retry-after", s.to_string()));
        }
        let msg = match f.status {
            403 => {
                "The client does not have authorization to perform action over scope.".to_string()
            }
            409 => "Another operation is in progress on the resource.".to_string(),
            429 => "Number of write requests for subscription exceeded the limit.".to_string(),
            _ => "scripted fault".to_string(),
        };
        return (f.status, h, Some(error(&f.code, &msg)));
    }
    if let Some(rest) = k.strip_prefix("/operations/") {
        return poll(st, rest.parse().unwrap_or(0));
    }
    match req.method.as_str() {
        "GET" => get(st, &k),
        "PUT" | "PATCH" | "DELETE" => write(st, req, &k),
        "POST" if k.ends_with("/whatif") => whatif(st, req),
        _ => (405, vec![], Some(error("MethodNotAllowed", "not served"))),
    }
}

fn poll(st: &mut State, id: u64) -> Answer {
    let Some(op) = st.ops.get_mut(&id) else {
        return (404, vec![], Some(error("NotFound", "no such operation")));
    };
    if op.polls_left > 0 {
        op.polls_left -= 1;
        let pct = 100 - op.polls_left * 10;
        if op.result.is_some() {
            return (202, vec![], None);
        }
        return (
            200,
            vec![],
            Some(json!({"status": "InProgress", "percentComplete": pct.min(99)})),
        );
    }
    complete(st, id);
    let op = &st.ops[&id];
    if let Some(r) = &op.result {
        return (200, vec![], Some(r.clone()));
    }
    (
        200,
        vec![],
        Some(
            json!({"status": op.status, "startTime": "2026-12-06T10:00:00Z", "endTime": "2026-12-06T10:20:00Z"}),
        ),
    )
}

fn complete(st: &mut State, id: u64) {
    let done = st.ops.get_mut(&id).and_then(|o| {
        if o.status == "InProgress" {
            o.status = "Succeeded";
        }
        o.done.take()
    });
    if let Some(f) = done {
        f(st);
    }
}

fn get(st: &mut State, k: &str) -> Answer {
    if k.ends_with("/skus") {
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpus/azure-rest/write-dryrun-apim-list-skus.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(corpus).unwrap_or_default())
            .unwrap_or(Value::Null);
        return (200, vec![], Some(v["response"]["body"].clone()));
    }
    if k.ends_with("/autoscalesettings") {
        let items: Vec<Value> = st
            .resources
            .iter()
            .filter(|(r, _)| r.starts_with(&format!("{k}/")))
            .map(|(_, v)| v.clone())
            .collect();
        return (200, vec![], Some(json!({"value": items, "nextLink": null})));
    }
    if let Some((nsg, rule)) = k.split_once("/securityrules/") {
        let found = st.resources.get(nsg).and_then(|n| {
            n.pointer("/properties/securityRules")?
                .as_array()?
                .iter()
                .find(|r| {
                    r["name"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(rule))
                })
                .cloned()
        });
        return match found {
            Some(r) => (200, vec![], Some(r)),
            None => (404, vec![], Some(error("NotFound", "rule not found"))),
        };
    }
    match st.resources.get(k) {
        Some(v) => (
            200,
            vec![("etag", st.etag(k).unwrap_or_default())],
            Some(v.clone()),
        ),
        None => (
            404,
            vec![],
            Some(error("ResourceNotFound", &format!("{k} was not found"))),
        ),
    }
}

fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

fn new_op(st: &mut State, lock: &str, done: Done) -> (u64, String) {
    let id = st.ops.len() as u64 + 1;
    let polls = st.polls;
    st.ops.insert(
        id,
        Op {
            lock: lock.to_string(),
            polls_left: polls,
            done: Some(done),
            status: "InProgress",
            result: None,
        },
    );
    (
        id,
        format!(
            "{}/operations/{id}?api-version=2024-05-01&asyncResponse",
            st.base
        ),
    )
}

fn write(st: &mut State, req: &Req, k: &str) -> Answer {
    // The resource that holds the ETag: an NSG rule's NSG.
    let (owner, rule) = match k.split_once("/securityrules/") {
        Some((nsg, r)) => (nsg.to_string(), Some(r.to_string())),
        None => (k.to_string(), None),
    };
    if st.locked(&owner) {
        return (
            409,
            vec![],
            Some(error(
                "AnotherOperationInProgress",
                "Another operation on this or dependent resource is in progress.",
            )),
        );
    }
    let exists = match &rule {
        Some(r) => st
            .resources
            .get(&owner)
            .and_then(|n| {
                n.pointer("/properties/securityRules")
                    .and_then(Value::as_array)
                    .cloned()
            })
            .is_some_and(|l| {
                l.iter().any(|x| {
                    x["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(r))
                })
            }),
        None => st.resources.contains_key(k),
    };
    if let Some(m) = req.headers.get("if-match")
        && m != "*"
    {
        let current = match &rule {
            Some(r) => st.resources.get(&owner).and_then(|n| {
                n.pointer("/properties/securityRules")?
                    .as_array()?
                    .iter()
                    .find(|x| {
                        x["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(r))
                    })
                    .and_then(|x| x["etag"].as_str().map(str::to_string))
            }),
            None => st.etag(k),
        };
        if !exists || current.as_deref() != Some(m.as_str()) {
            return (
                412,
                vec![],
                Some(error(
                    "PreconditionFailed",
                    "The entity's ETag does not match the If-Match header.",
                )),
            );
        }
    }
    let body = req.body.clone().unwrap_or(Value::Null);
    if let Some(rule) = rule {
        let Some(_) = st.resources.get(&owner) else {
            return (
                404,
                vec![],
                Some(error("ResourceNotFound", "NSG not found")),
            );
        };
        let owner2 = owner.clone();
        let rule_id = req.path.split('?').next().unwrap_or("").to_string();
        let method = req.method.clone();
        let done: Done = Box::new(move |st: &mut State| {
            if let Some(nsg) = st.resources.get_mut(&owner2) {
                let list = nsg["properties"]["securityRules"].as_array_mut();
                if let Some(list) = list {
                    list.retain(|x| {
                        !x["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(&rule))
                    });
                    if method == "PUT" {
                        let mut r = body.clone();
                        r["id"] = json!(rule_id);
                        r["name"] = json!(rule);
                        r["properties"]["provisioningState"] = json!("Succeeded");
                        r["etag"] = json!(format!("W/\"rule-{}\"", list.len() + 7));
                        list.push(r);
                    }
                }
            }
            st.bump(&owner2);
        });
        let (_, url) = new_op(st, &owner, done);
        if req.method == "DELETE" {
            return (202, vec![("location", url)], None);
        }
        let mut echo = req.body.clone().unwrap_or(Value::Null);
        echo["properties"]["provisioningState"] = json!("Updating");
        return (
            if exists { 200 } else { 201 },
            vec![("azure-asyncoperation", url)],
            Some(echo),
        );
    }
    if k.contains("/microsoft.apimanagement/service/") && k.ends_with("/policies/policy") {
        if req.method == "DELETE" {
            st.resources.remove(k);
            st.etags.remove(k);
            return (200, vec![], None);
        }
        let id = req.path.split('?').next().unwrap_or("").to_string();
        let mut v =
            json!({"id": id, "type": "Microsoft.ApiManagement/service/policies", "name": "policy"});
        v["properties"] = body["properties"].clone();
        st.resources.insert(k.to_string(), v.clone());
        let tag = st.bump(k);
        return (if exists { 200 } else { 201 }, vec![("etag", tag)], Some(v));
    }
    if k.contains("/microsoft.insights/autoscalesettings/") && req.method == "PATCH" {
        let Some(cur) = st.resources.get_mut(k) else {
            return (
                404,
                vec![],
                Some(error("ResourceNotFound", "autoscale setting not found")),
            );
        };
        if let Some(p) = body.get("properties") {
            // PATCH replaces the profiles array wholesale.
            for (f, v) in p.as_object().into_iter().flatten() {
                cur["properties"][f] = v.clone();
            }
        }
        let v = cur.clone();
        st.bump(k);
        return (200, vec![], Some(v));
    }
    if req.method == "PATCH" && st.resources.contains_key(k) {
        // The APIM service: 202, applied when the operation completes.
        if let Some(v) = st.resources.get_mut(k) {
            v["properties"]["provisioningState"] = json!("Updating");
        }
        let k2 = k.to_string();
        let patch = body.clone();
        let done: Done = Box::new(move |st: &mut State| {
            if let Some(v) = st.resources.get_mut(&k2) {
                merge(v, &patch);
                v["properties"]["provisioningState"] = json!("Succeeded");
            }
            st.bump(&k2);
        });
        let (_, url) = new_op(st, k, done);
        return (
            202,
            vec![
                ("azure-asyncoperation", url.clone()),
                ("location", url),
                ("retry-after", "1".into()),
            ],
            None,
        );
    }
    (
        404,
        vec![],
        Some(error(
            "ResourceNotFound",
            &format!("{k} is not served for {}", req.method),
        )),
    )
}

/// Predicts the changes a template makes against the current state.
fn whatif(st: &mut State, req: &Req) -> Answer {
    let resources = req
        .body
        .as_ref()
        .and_then(|b| b.pointer("/properties/template/resources"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut changes = Vec::new();
    for r in resources {
        let name = r["name"].as_str().unwrap_or("").to_ascii_lowercase();
        let ty = r["type"].as_str().unwrap_or("");
        let current = st
            .resources
            .iter()
            .find(|(k, _)| {
                k.ends_with(&format!("/{}", name.replace('/', "/securityrules/")))
                    || k.ends_with(&format!("/service/{name}"))
            })
            .map(|(k, v)| (k.clone(), v.clone()));
        match current {
            Some((id, cur)) => {
                let mut delta = Vec::new();
                if let (Some(a), Some(b)) =
                    (cur.pointer("/sku/capacity"), r.pointer("/sku/capacity"))
                    && a != b
                {
                    delta.push(json!({"path": "sku.capacity", "propertyChangeType": "Modify", "before": a, "after": b}));
                }
                changes.push(json!({"resourceId": id, "changeType": if delta.is_empty() { "NoChange" } else { "Modify" }, "delta": delta}));
            }
            None => changes.push(
                json!({"resourceId": format!("{ty}/{name}"), "changeType": "Create", "after": r}),
            ),
        }
    }
    let result = json!({"status": "Succeeded", "properties": {"changes": changes}});
    let id = st.ops.len() as u64 + 1;
    let url = format!("{}/operations/{id}?api-version=2024-03-01", st.base);
    st.ops.insert(
        id,
        Op {
            lock: String::new(),
            polls_left: 1,
            done: None,
            status: "InProgress",
            result: Some(result),
        },
    );
    (
        202,
        vec![("location", url), ("retry-after", "1".into())],
        None,
    )
}
