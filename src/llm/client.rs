//! The I/O edge to an OpenAI-compatible `/chat/completions` endpoint:
//! OpenAI, Azure OpenAI (its v1 API, or a deployment with an `api-version`),
//! Ollama, vLLM, a llama.cpp server. async-openai's configurations decide
//! the address and the credential headers; request bodies are built by the
//! caller as JSON (so redaction and the guards stay in one place) and sent
//! here, whole or streamed (server-sent events, decoded and assembled here).
//!
//! The transport is a reqwest client from `crate::http` (rustls with the
//! ring provider, the system's roots plus an optional CA file;
//! `HTTPS_PROXY`/`NO_PROXY` honoured). A redirect is followed only within
//! the endpoint's origin: the key and the prompt never go anywhere else. One
//! bounded retry on 429/5xx/refused connections, every wait capped by the
//! configured timeout; a 400 refusing `max_tokens` or `temperature` adapts
//! the body. What arrives is bounded: a whole reply by size, a stream by
//! line length and by the reply's token budget (the reply is cut there), and
//! decoding is linear in the bytes received (eventsource-stream, which
//! async-openai streams with, re-parses its buffer on every read).
//! Failures come back as `ClientError` so the caller can fall back to the
//! offline answer.

use async_openai::config::{AzureConfig, Config, OpenAIConfig};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Where the model is and how long to wait for it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteConfig {
    /// e.g. `http://127.0.0.1:8090/v1`, `https://api.openai.com/v1`,
    /// `https://RESOURCE.openai.azure.com/openai/v1`.
    pub base_url: String,
    /// The model name; with `api_version` set, the Azure deployment name.
    pub model: String,
    /// Sent as a bearer token (and as `api-key` to Azure); never logged,
    /// never sent anywhere else.
    pub api_key: Option<String>,
    /// Azure OpenAI's deployment API: `.../openai/deployments/MODEL/chat/completions?api-version=…`.
    pub api_version: Option<String>,
    /// A PEM file of extra trusted roots (a corporate TLS proxy).
    pub ca_file: Option<PathBuf>,
    /// Longest wait for a reply to start, and between two streamed pieces.
    pub timeout: Duration,
    /// Model round trips per question, the final summary included.
    pub max_steps: usize,
    /// Estimated prompt tokens per question before the loop stops calling tools.
    pub token_budget: usize,
    /// Mask hostnames and IPs (restored in the answer).
    pub mask: bool,
    /// `auto` (default) or `required` for models that only call tools when told to.
    pub tool_choice: String,
    /// Stream replies (server-sent events) so the answer shows as it is written.
    pub stream: bool,
    /// Retries after a 429, a 5xx or a refused connection (each within `timeout`).
    pub retries: usize,
    /// Estimated tokens one reply may bring before it is cut (what is asked
    /// for as `max_tokens`; a model that ignores it is cut here).
    pub reply_tokens: usize,
    /// The longest a whole question may take, all round trips included.
    pub deadline: Duration,
}

impl RemoteConfig {
    pub fn new(base_url: &str, model: &str) -> RemoteConfig {
        RemoteConfig {
            base_url: base_url.trim().trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key: None,
            api_version: None,
            ca_file: None,
            timeout: Duration::from_secs(60),
            max_steps: 6,
            token_budget: 16_000,
            mask: false,
            tool_choice: "auto".to_string(),
            stream: true,
            retries: 1,
            reply_tokens: 800,
            deadline: Duration::from_secs(300),
        }
    }
}

/// One tool call the model asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text as the model wrote it.
    pub arguments: String,
}

/// The model's reply to one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Completion {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub total_tokens: Option<u64>,
    /// The reply reached its token budget and was cut there.
    pub cut: bool,
}

/// Characters per token when estimating: generous, so a reply within its
/// `max_tokens` is never cut (most text runs 3 to 4 characters a token).
pub const CHARS_PER_TOKEN: usize = 6;

impl Completion {
    /// Cuts the text at `tokens` (estimated); tool calls of a cut reply are dropped.
    pub fn cut_to(&mut self, tokens: usize) {
        let max = tokens.saturating_mul(CHARS_PER_TOKEN);
        let args: usize = self.tool_calls.iter().map(|c| c.arguments.len()).sum();
        let text = self.content.as_ref().map_or(0, String::len);
        if text + args <= max {
            return;
        }
        self.cut = true;
        self.tool_calls.clear();
        if let Some(c) = self.content.as_mut() {
            let mut end = max.min(c.len());
            while !c.is_char_boundary(end) {
                end -= 1;
            }
            c.truncate(end);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the model did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the model endpoint answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("cannot reach the model endpoint: {0}")]
    Connect(String),
    #[error("the model's reply is not a chat completion: {0}")]
    Shape(String),
    #[error(
        "the model endpoint redirected (HTTP {status}) to {to}; not followed: the key and the prompt go only to the configured origin (set the final URL with --llm-url)"
    )]
    Redirect { status: u16, to: String },
    #[error("the model gave no answer: {0}")]
    NoAnswer(String),
    #[error("the model did not finish within the {0:?} deadline for one question")]
    Deadline(Duration),
}

/// How requests are addressed, decided from the configuration alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `{base}/chat/completions`, `Authorization: Bearer KEY`; `azure_key`
    /// adds `api-key: KEY` (Azure OpenAI's v1 API accepts either).
    OpenAi { base: String, azure_key: bool },
    /// `{resource}/openai/deployments/{deployment}/chat/completions?api-version=V`, `api-key: KEY`.
    AzureDeployment {
        resource: String,
        deployment: String,
        api_version: String,
    },
}

/// True for Azure OpenAI / AI Foundry hosts.
pub fn is_azure_host(base_url: &str) -> bool {
    let host = base_url
        .split("://")
        .nth(1)
        .unwrap_or(base_url)
        .split(['/', ':', '?'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    [
        ".openai.azure.com",
        ".cognitiveservices.azure.com",
        ".services.ai.azure.com",
    ]
    .iter()
    .any(|s| host.ends_with(s))
}

/// Where requests for `cfg` go. Pure.
pub fn endpoint(cfg: &RemoteConfig) -> Endpoint {
    let base = cfg.base_url.trim().trim_end_matches('/').to_string();
    let azure = is_azure_host(&base);
    if let Some(v) = cfg.api_version.as_deref().filter(|v| !v.trim().is_empty()) {
        // The resource root: whatever follows `/openai` is rebuilt.
        let resource = match base.find("/openai") {
            Some(i) => base[..i].to_string(),
            None => base.clone(),
        };
        return Endpoint::AzureDeployment {
            resource,
            deployment: cfg.model.clone(),
            api_version: v.trim().to_string(),
        };
    }
    let path_empty = base
        .split("://")
        .nth(1)
        .is_some_and(|rest| !rest.contains('/'));
    let base = if azure && path_empty {
        // A bare resource URL: Azure's OpenAI-compatible v1 API lives here.
        format!("{base}/openai/v1")
    } else {
        base
    };
    Endpoint::OpenAi {
        base,
        azure_key: azure,
    }
}

/// Checks what can be checked before a question is asked: the key fits in a
/// header and the CA file holds certificates. Messages say what to fix.
pub fn validate(cfg: &RemoteConfig) -> Result<(), String> {
    if let Some(k) = &cfg.api_key
        && reqwest::header::HeaderValue::from_str(&format!("Bearer {k}")).is_err()
    {
        return Err("APIMEDIC_LLM_API_KEY holds characters an HTTP header cannot carry (a line break or a control character?); set it to the bare key".into());
    }
    if !cfg.base_url.starts_with("http://") && !cfg.base_url.starts_with("https://") {
        return Err(format!(
            "the model endpoint `{}` is not an http:// or https:// URL; set APIMEDIC_LLM_BASE_URL or --llm-url to e.g. http://127.0.0.1:8090/v1",
            cfg.base_url
        ));
    }
    if let Some(path) = &cfg.ca_file {
        crate::http::extra_roots(path)
            .map_err(|e| format!("{e} (from APIMEDIC_LLM_CA_FILE or --llm-ca-file)"))?;
    }
    Ok(())
}

/// A client for one question's round trips. async-openai's configurations
/// decide the address and the credential headers; our transport sends the
/// request and reads the reply with bounds (see `read_stream`).
pub struct ModelClient {
    config: Box<dyn Config>,
    transport: Transport,
    timeout: Duration,
    /// Most estimated tokens one reply may bring before it is cut.
    reply_tokens: usize,
    /// Learned during this question from the endpoint's 400s.
    quirks: std::sync::Mutex<Quirks>,
}

impl ModelClient {
    pub fn new(cfg: &RemoteConfig) -> Result<ModelClient, ClientError> {
        validate(cfg).map_err(ClientError::Connect)?;
        let transport = Transport::new(cfg)?;
        let key = cfg.api_key.clone().unwrap_or_default();
        let config: Box<dyn Config> = match endpoint(cfg) {
            Endpoint::OpenAi { base, azure_key } => {
                // Explicit values, so OPENAI_* variables never reach this endpoint.
                let mut config = OpenAIConfig::new()
                    .with_api_base(base)
                    .with_api_key(key.clone())
                    .with_org_id("")
                    .with_project_id("");
                if azure_key {
                    config = config
                        .with_header("api-key", key.as_str())
                        .map_err(|e| ClientError::Connect(e.to_string()))?;
                }
                Box::new(config)
            }
            Endpoint::AzureDeployment {
                resource,
                deployment,
                api_version,
            } => Box::new(
                AzureConfig::new()
                    .with_api_base(resource)
                    .with_deployment_id(deployment)
                    .with_api_version(api_version)
                    .with_api_key(key),
            ),
        };
        Ok(ModelClient {
            config,
            transport,
            timeout: cfg.timeout,
            reply_tokens: cfg.reply_tokens,
            quirks: std::sync::Mutex::new(Quirks::default()),
        })
    }

    /// Sends one request and waits for the whole reply.
    pub async fn complete(&self, body: &Value) -> Result<Completion, ClientError> {
        let mut tries = 0;
        loop {
            let request = self.prepare(body, false);
            match self.complete_once(&request).await {
                Err(ClientError::Http { status: 400, body }) if tries < 2 && self.learn(&body) => {
                    tries += 1
                }
                other => return other,
            }
        }
    }

    /// Sends one request with `stream: true`; `on_delta` gets each piece of
    /// the reply's text as it arrives. The assembled reply is returned.
    pub async fn complete_streaming(
        &self,
        body: &Value,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Completion, ClientError> {
        let mut tries = 0;
        loop {
            let request = self.prepare(body, true);
            // A 400 comes before any piece, so a retry repeats nothing.
            match self.stream_once(&request, on_delta).await {
                Err(ClientError::Http { status: 400, body }) if tries < 2 && self.learn(&body) => {
                    tries += 1
                }
                other => return other,
            }
        }
    }

    /// The body as this endpoint takes it.
    fn prepare(&self, body: &Value, stream: bool) -> Value {
        let mut body = body.clone();
        body["stream"] = Value::Bool(stream);
        let quirks = self.quirks.lock().map(|q| *q).unwrap_or_default();
        quirks.apply(&mut body);
        body
    }

    /// Learns from a 400 what this endpoint does not take; true when there
    /// is something new to change (the request is then sent again).
    fn learn(&self, error: &str) -> bool {
        let Ok(mut q) = self.quirks.lock() else {
            return false;
        };
        match q.learn(error) {
            Some(n) => {
                *q = n;
                true
            }
            None => false,
        }
    }

    /// Sends the body to `/chat/completions` (retrying as `Transport` does)
    /// and returns the 2xx response.
    async fn send(&self, body: &Value) -> Result<reqwest::Response, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Shape(e.to_string()))?;
        let url = self.config.url("/chat/completions");
        let query: Vec<(String, String)> = self
            .config
            .query()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let headers = self.config.headers();
        let build = || {
            self.transport
                .client
                .post(url.as_str())
                .query(&query)
                .headers(headers.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone())
        };
        tokio::time::timeout(self.timeout, self.transport.send(build))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }

    async fn complete_once(&self, body: &Value) -> Result<Completion, ClientError> {
        let mut resp = self.send(body).await?;
        let mut bytes = Vec::new();
        loop {
            let next = tokio::time::timeout(self.timeout, resp.chunk())
                .await
                .map_err(|_| ClientError::Timeout(self.timeout))?
                .map_err(|e| ClientError::Connect(chain(&e)))?;
            let Some(piece) = next else { break };
            if bytes.len() + piece.len() > MAX_BODY {
                return Err(ClientError::Shape(format!(
                    "the reply is larger than {} MiB",
                    MAX_BODY >> 20
                )));
            }
            bytes.extend_from_slice(&piece);
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::Shape(format!(
                "{e}: {}",
                crate::tools::head_tail(&String::from_utf8_lossy(&bytes), 300)
            ))
        })?;
        let mut c = parse_completion(&value)?;
        c.cut_to(self.reply_tokens);
        Ok(c)
    }

    async fn stream_once(
        &self,
        body: &Value,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Completion, ClientError> {
        let mut resp = self.send(body).await?;
        let mut sse = SseDecoder::default();
        let mut asm = StreamAssembler::with_budget(self.reply_tokens);
        let mut events = Vec::new();
        loop {
            let next = tokio::time::timeout(self.timeout, resp.chunk())
                .await
                .map_err(|_| ClientError::Timeout(self.timeout))?
                .map_err(|e| ClientError::Connect(format!("the stream broke: {}", chain(&e))))?;
            let Some(piece) = next else {
                sse.finish(&mut events);
                feed_events(&mut asm, &mut events, on_delta)?;
                break;
            };
            sse.feed(&piece, &mut events).map_err(ClientError::Shape)?;
            if feed_events(&mut asm, &mut events, on_delta)? {
                break;
            }
        }
        asm.finish()
    }
}

/// Hands decoded events to the assembler; true when the stream is over
/// (`[DONE]`, or the reply reached its token budget and was cut).
fn feed_events(
    asm: &mut StreamAssembler,
    events: &mut Vec<String>,
    on_delta: &mut dyn FnMut(&str),
) -> Result<bool, ClientError> {
    for data in events.drain(..) {
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            ClientError::Shape(format!(
                "a streamed event is not JSON ({e}): {}",
                crate::tools::head_tail(data, 200)
            ))
        })?;
        if let Some(d) = asm.push(&chunk)? {
            on_delta(&d);
        }
        if asm.is_cut() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Most bytes of a whole (non-streamed) reply.
const MAX_BODY: usize = 16 << 20;

/// Most bytes of one server-sent-event line or event.
pub const MAX_EVENT: usize = 16 << 20;

/// Server-sent events decoded from bytes as they arrive: each byte is
/// looked at once (no re-scan of what is buffered), and a line or event
/// longer than `MAX_EVENT` is an error rather than a growing buffer. Only
/// `data:` fields matter here; comments and other fields are skipped. Pure.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// The first line is complete (a BOM before it has been dropped).
    started: bool,
}

impl SseDecoder {
    /// Feeds bytes; the data of each complete event goes to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), String> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (part, done) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], Some(i + 1)),
                None => (rest, None),
            };
            if self.line.len() + part.len() > MAX_EVENT {
                return Err(format!(
                    "a streamed event line is longer than {} MiB",
                    MAX_EVENT >> 20
                ));
            }
            self.line.extend_from_slice(part);
            let Some(next) = done else { break };
            rest = &rest[next..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line_done(&line, out)?;
            line.clear();
            self.line = line;
        }
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<String>) -> Result<(), String> {
        // A BOM opens the stream, so it is dropped from the first complete
        // line: however the bytes were cut, it is whole there.
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line)
        };
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.first() == Some(&b':') {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        if field != b"data" {
            return Ok(());
        }
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if self.data.len() + value.len() + 1 > MAX_EVENT {
            return Err(format!(
                "a streamed event is longer than {} MiB",
                MAX_EVENT >> 20
            ));
        }
        if self.has_data {
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(value);
        self.has_data = true;
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<String>) {
        if self.has_data {
            out.push(String::from_utf8_lossy(&self.data).into_owned());
        }
        self.data.clear();
        self.has_data = false;
    }

    /// The stream ended: a last event without its blank line still counts.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let line = line.strip_suffix(b"\r").unwrap_or(&line).to_vec();
            let _ = self.line_done(&line, out);
        }
        self.dispatch(out);
    }
}

/// What an endpoint refuses in our request body, learned from its 400s
/// (OpenAI's reasoning models: `max_tokens` → `max_completion_tokens`, and
/// only the default temperature). Pure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    pub max_completion_tokens: bool,
    pub default_temperature: bool,
}

impl Quirks {
    /// The quirks after an error message, when it names a new one.
    pub fn learn(&self, error: &str) -> Option<Quirks> {
        let e = error.to_ascii_lowercase();
        let mut next = *self;
        if e.contains("max_tokens") && e.contains("max_completion_tokens") {
            next.max_completion_tokens = true;
        }
        if e.contains("temperature")
            && (e.contains("unsupported")
                || e.contains("not support")
                || e.contains("only the default"))
        {
            next.default_temperature = true;
        }
        (next != *self).then_some(next)
    }

    /// Changes a request body to fit.
    pub fn apply(&self, body: &mut Value) {
        let Some(map) = body.as_object_mut() else {
            return;
        };
        if self.max_completion_tokens
            && let Some(v) = map.remove("max_tokens")
        {
            map.insert("max_completion_tokens".into(), v);
        }
        if self.default_temperature {
            map.remove("temperature");
        }
    }
}

/// The HTTP transport: a `crate::http` client (rustls with the ring
/// provider, the system's roots plus `ca_file`, proxies from the
/// environment) that follows a redirect only within the endpoint's own
/// origin, so neither the key nor the prompt ever goes anywhere else. One
/// bounded retry, and every non-2xx answer an error that keeps its status.
#[derive(Clone)]
struct Transport {
    client: reqwest::Client,
    retries: usize,
    timeout: Duration,
}

impl Transport {
    fn new(cfg: &RemoteConfig) -> Result<Transport, ClientError> {
        let client = crate::http::client_builder(cfg.ca_file.as_deref())
            .map_err(ClientError::Connect)?
            .connect_timeout(cfg.timeout)
            .redirect(crate::http::same_origin_redirects())
            .build()
            .map_err(|e| ClientError::Connect(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Transport {
            client,
            retries: cfg.retries,
            timeout: cfg.timeout,
        })
    }

    /// Sends one request, retrying a 429, a 5xx or a refused connection at
    /// most `retries` times when the wait fits in `timeout`.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut attempt = 0;
        loop {
            let result = build().send().await;
            let retry_after = match &result {
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                    Some(retry_delay(r.headers(), attempt))
                }
                Err(e) if e.is_connect() => {
                    Some(retry_delay(&reqwest::header::HeaderMap::new(), attempt))
                }
                _ => None,
            };
            if let Some(delay) = retry_after
                && attempt < self.retries
                && delay < self.timeout
            {
                attempt += 1;
                tokio::time::sleep(delay).await;
                continue;
            }
            let resp = result.map_err(|e| {
                if e.is_timeout() {
                    ClientError::Timeout(self.timeout)
                } else {
                    ClientError::Connect(chain(&e))
                }
            })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            if status.is_redirection() {
                let to = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(|l| crate::model::redact::scrub(&crate::tools::head_tail(l, 200)))
                    .unwrap_or_else(|| "nowhere".into());
                return Err(ClientError::Redirect {
                    status: status.as_u16(),
                    to,
                });
            }
            let body = read_capped(resp, 64 << 10, self.timeout).await;
            return Err(ClientError::Http {
                status: status.as_u16(),
                body: crate::tools::head_tail(&api_message(&body), 300),
            });
        }
    }
}

/// At most `cap` bytes of an error body (the rest is not read).
async fn read_capped(mut resp: reqwest::Response, cap: usize, timeout: Duration) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < cap {
        match tokio::time::timeout(timeout, resp.chunk()).await {
            Ok(Ok(Some(c))) => bytes.extend_from_slice(&c),
            _ => break,
        }
    }
    bytes.truncate(cap);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An error body's `error.message` when it is OpenAI's JSON shape, else the text.
fn api_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.get("message").or(Some(e)))
                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
        })
        .unwrap_or_else(|| body.to_string())
}

/// `Retry-After` seconds when given (at most 5 s), else 250 ms doubling.
fn retry_delay(headers: &reqwest::header::HeaderMap, attempt: usize) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(5)))
        .unwrap_or_else(|| Duration::from_millis(250 << attempt.min(4)))
}

/// An error with its causes (`error sending request: … invalid peer certificate: UnknownIssuer`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cause = c.source();
    }
    s
}

/// Reads a `/chat/completions` response body.
pub fn parse_completion(body: &Value) -> Result<Completion, ClientError> {
    let message = body
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("message"))
        .ok_or_else(|| ClientError::Shape("no choices[0].message".into()))?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty());
    let tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let f = c.get("function")?;
                    let arguments = match f.get("arguments") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => "{}".to_string(),
                    };
                    Some(ToolCall {
                        id: c
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("call_{i}")),
                        name: f.get("name")?.as_str()?.to_string(),
                        arguments,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Completion {
        content,
        tool_calls,
        total_tokens: body
            .get("usage")
            .and_then(|u| u.get("total_tokens"))
            .and_then(Value::as_u64),
        cut: false,
    })
}

/// Most tool calls one streamed reply may assemble (a bad `index` cannot
/// make us allocate more).
const MAX_STREAMED_CALLS: usize = 16;

/// Assembles streamed `chat.completion.chunk`s into one `Completion`. Pure.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    content: String,
    calls: Vec<ToolCall>,
    chunks: usize,
    total_tokens: Option<u64>,
    /// Bytes of text and tool arguments taken so far, and the most allowed
    /// (0: no limit).
    taken: usize,
    budget: usize,
    cut: bool,
}

impl StreamAssembler {
    /// An assembler that cuts the reply at `tokens` estimated tokens.
    pub fn with_budget(tokens: usize) -> StreamAssembler {
        StreamAssembler {
            budget: tokens.saturating_mul(CHARS_PER_TOKEN),
            ..StreamAssembler::default()
        }
    }

    /// True once the reply reached its budget: stop reading.
    pub fn is_cut(&self) -> bool {
        self.cut
    }

    /// How much of `piece` fits in the budget (all of it without one); the
    /// reply is marked cut when not all does.
    fn allow<'a>(&mut self, piece: &'a str) -> &'a str {
        if self.budget == 0 {
            return piece;
        }
        let room = self.budget.saturating_sub(self.taken);
        if piece.len() <= room {
            self.taken += piece.len();
            return piece;
        }
        self.cut = true;
        let mut end = room;
        while !piece.is_char_boundary(end) {
            end -= 1;
        }
        self.taken += end;
        &piece[..end]
    }

    /// Takes one chunk; returns its text delta, if any.
    pub fn push(&mut self, chunk: &Value) -> Result<Option<String>, ClientError> {
        if let Some(err) = chunk.get("error") {
            let text = err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            return Err(ClientError::Shape(format!(
                "the stream carried an error: {}",
                crate::tools::head_tail(&text, 300)
            )));
        }
        self.chunks += 1;
        if let Some(t) = chunk
            .get("usage")
            .and_then(|u| u.get("total_tokens"))
            .and_then(Value::as_u64)
        {
            self.total_tokens = Some(t);
        }
        let Some(delta) = chunk
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("delta"))
        else {
            return Ok(None);
        };
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (pos, c) in calls.iter().enumerate() {
                let index = c
                    .get("index")
                    .and_then(Value::as_u64)
                    .map(|i| i as usize)
                    .unwrap_or(pos);
                if index >= MAX_STREAMED_CALLS {
                    continue;
                }
                while self.calls.len() <= index {
                    self.calls.push(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                let Some(call) = self.calls.get_mut(index) else {
                    continue;
                };
                if let Some(id) = c.get("id").and_then(Value::as_str)
                    && call.id.is_empty()
                {
                    call.id = id.to_string();
                }
                if let Some(f) = c.get("function") {
                    if let Some(n) = f.get("name").and_then(Value::as_str)
                        && call.name.is_empty()
                    {
                        call.name = n.to_string();
                    }
                    let owned;
                    let piece = match f.get("arguments") {
                        Some(Value::String(s)) => s.as_str(),
                        Some(Value::Null) | None => "",
                        Some(v) => {
                            owned = v.to_string();
                            owned.as_str()
                        }
                    };
                    if !self.cut {
                        let room = self.budget.saturating_sub(self.taken);
                        if self.budget > 0 && piece.len() > room {
                            self.cut = true;
                        } else {
                            self.taken += piece.len();
                            call.arguments.push_str(piece);
                        }
                    }
                }
            }
        }
        match delta.get("content").and_then(Value::as_str) {
            Some(t) if !t.is_empty() && !self.cut => {
                let t = self.allow(t);
                self.content.push_str(t);
                Ok(Some(t.to_string()).filter(|t| !t.is_empty()))
            }
            _ => Ok(None),
        }
    }

    /// The whole reply. A stream with no chunk at all is an error (the
    /// endpoint ignored `stream: true` or sent nothing).
    pub fn finish(self) -> Result<Completion, ClientError> {
        if self.chunks == 0 {
            return Err(ClientError::Shape(
                "the streamed reply had no events (set APIMEDIC_LLM_NO_STREAM=1 for endpoints that cannot stream)".into(),
            ));
        }
        // A cut reply's tool calls may be cut too: they are not made.
        let calls = if self.cut { Vec::new() } else { self.calls };
        let tool_calls = calls
            .into_iter()
            .enumerate()
            .filter(|(_, c)| !c.name.is_empty())
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_{i}");
                }
                if c.arguments.trim().is_empty() {
                    c.arguments = "{}".to_string();
                }
                c
            })
            .collect();
        Ok(Completion {
            content: Some(self.content).filter(|s| !s.trim().is_empty()),
            tool_calls,
            total_tokens: self.total_tokens,
            cut: self.cut,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completions_parse_with_and_without_tool_calls() {
        let c = parse_completion(&json!({"choices": [{"message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "findings", "arguments": "{\"kind\":\"error_spike\"}"}}]}}],
            "usage": {"total_tokens": 120}}))
        .unwrap();
        assert_eq!(c.tool_calls.len(), 1);
        assert_eq!(c.tool_calls[0].name, "findings");
        assert_eq!(c.content, None);
        assert_eq!(c.total_tokens, Some(120));
        let c = parse_completion(&json!({"choices": [{"message": {"content": "done"}}]})).unwrap();
        assert_eq!(c.content.as_deref(), Some("done"));
        assert!(parse_completion(&json!({"error": "x"})).is_err());
    }

    #[test]
    fn streamed_chunks_assemble_text_and_tool_calls() {
        let mut a = StreamAssembler::default();
        let chunks = [
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "Let "}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "me see."}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                "function": {"name": "findings", "arguments": ""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"kind\":"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"x\"}"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"name": "list_apis"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}], "usage": {"total_tokens": 42}}),
        ];
        let deltas: Vec<String> = chunks.iter().filter_map(|c| a.push(c).unwrap()).collect();
        assert_eq!(deltas, vec!["Let ".to_string(), "me see.".to_string()]);
        let c = a.finish().unwrap();
        assert_eq!(c.content.as_deref(), Some("Let me see."));
        assert_eq!(c.tool_calls.len(), 2);
        assert_eq!(c.tool_calls[0].id, "c1");
        assert_eq!(c.tool_calls[0].arguments, "{\"kind\":\"x\"}");
        assert_eq!(c.tool_calls[1].id, "call_1");
        assert_eq!(c.tool_calls[1].arguments, "{}");
        assert_eq!(c.total_tokens, Some(42));
    }

    fn decode(pieces: &[&[u8]]) -> Vec<String> {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut out).unwrap();
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn a_bom_split_across_pieces_is_dropped_as_when_whole() {
        // fuzz/ stream_assembler crasher (minimised): a BOM then `data`,
        // fed one byte at a time, lost the event.
        let body = b"\xEF\xBB\xBFdata";
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode(&[body]), vec![String::new()]);
        assert_eq!(decode(&bytes), decode(&[body]));
        let body = b"\xEF\xBB\xBFdata: {\"a\":1}\r\n\r\ndata: x\n\n";
        for n in 1..body.len() {
            let pieces: Vec<&[u8]> = body.chunks(n).collect();
            assert_eq!(
                decode(&pieces),
                vec!["{\"a\":1}".to_string(), "x".into()],
                "{n}"
            );
        }
        // Only the stream's first line loses a BOM.
        assert_eq!(
            decode(&[b"\n\xEF\xBB\xBFdata: x\n\n"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_stream_that_errs_or_says_nothing_is_an_error() {
        let mut a = StreamAssembler::default();
        assert!(
            a.push(&json!({"error": {"message": "overloaded"}}))
                .is_err_and(|e| e.to_string().contains("overloaded"))
        );
        assert!(StreamAssembler::default().finish().is_err());
        // An absurd index is ignored rather than allocated.
        let mut a = StreamAssembler::default();
        a.push(&json!({"choices": [{"delta": {"tool_calls": [{"index": 4000000000u64, "function": {"name": "x"}}]}}]}))
            .unwrap();
        assert!(a.finish().unwrap().tool_calls.is_empty());
    }

    #[test]
    fn endpoints_follow_the_configuration() {
        let c = RemoteConfig::new("http://127.0.0.1:8090/v1/", "m");
        assert_eq!(
            endpoint(&c),
            Endpoint::OpenAi {
                base: "http://127.0.0.1:8090/v1".into(),
                azure_key: false
            }
        );
        let c = RemoteConfig::new("https://res.openai.azure.com", "gpt-4o-mini");
        assert_eq!(
            endpoint(&c),
            Endpoint::OpenAi {
                base: "https://res.openai.azure.com/openai/v1".into(),
                azure_key: true
            }
        );
        let mut c = RemoteConfig::new("https://res.openai.azure.com/openai/v1", "prod-4o");
        c.api_version = Some("2024-10-21".into());
        assert_eq!(
            endpoint(&c),
            Endpoint::AzureDeployment {
                resource: "https://res.openai.azure.com".into(),
                deployment: "prod-4o".into(),
                api_version: "2024-10-21".into()
            }
        );
        assert!(is_azure_host(
            "https://x.cognitiveservices.azure.com/openai/v1"
        ));
        assert!(!is_azure_host("https://openai.azure.com.evil.example/v1"));
    }

    #[test]
    fn bad_keys_urls_and_ca_files_are_refused_with_a_reason() {
        let mut c = RemoteConfig::new("https://api.openai.com/v1", "m");
        assert!(validate(&c).is_ok());
        c.api_key = Some("sk-abc\nInjected: 1".into());
        assert!(validate(&c).is_err_and(|e| e.contains("APIMEDIC_LLM_API_KEY")));
        c.api_key = None;
        c.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        assert!(validate(&c).is_err_and(|e| e.contains("APIMEDIC_LLM_CA_FILE")));
        let c = RemoteConfig::new("127.0.0.1:8090/v1", "m");
        assert!(validate(&c).is_err_and(|e| e.contains("not an http")));
    }

    #[test]
    fn an_https_endpoint_builds_a_client() {
        let c = RemoteConfig::new("https://api.openai.com/v1", "m");
        assert!(ModelClient::new(&c).is_ok());
    }

    #[test]
    fn reasoning_model_refusals_adapt_the_body_once_each() {
        let q = Quirks::default();
        let q = q
            .learn("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.")
            .unwrap();
        assert!(q.max_completion_tokens && !q.default_temperature);
        assert_eq!(
            q.learn("max_tokens ... max_completion_tokens"),
            None,
            "nothing new"
        );
        let q = q
            .learn("Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is supported.")
            .unwrap();
        let mut body = serde_json::json!({"model": "o4-mini", "temperature": 0, "max_tokens": 800});
        q.apply(&mut body);
        assert_eq!(
            body,
            serde_json::json!({"model": "o4-mini", "max_completion_tokens": 800})
        );
        assert_eq!(Quirks::default().learn("model crashed"), None);
    }

    #[test]
    fn retry_delays_are_bounded() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_delay(&h, 0), Duration::from_millis(250));
        assert_eq!(retry_delay(&h, 9), Duration::from_millis(4000));
        h.insert(reqwest::header::RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(retry_delay(&h, 0), Duration::from_secs(5));
    }
}
