//! The I/O edge to an OpenAI-compatible `/chat/completions` endpoint through
//! async-openai: OpenAI, Azure OpenAI (its v1 API, or a deployment with an
//! `api-version`), Ollama, vLLM, a llama.cpp server. Request bodies are
//! built by the caller as JSON (so redaction and the guards stay in one
//! place) and sent with async-openai's bring-your-own-types calls, either
//! whole or streamed (server-sent events, assembled here).
//!
//! Under async-openai runs our own transport: a reqwest client from
//! `crate::http` (rustls with the ring provider, the system's roots plus an
//! optional CA file; `HTTPS_PROXY`/`NO_PROXY` honoured by reqwest). One
//! bounded retry on 429/5xx/refused connections, every wait capped by the
//! configured timeout; a 400 refusing `max_tokens` or `temperature` adapts
//! the body.
//! Failures come back as `ClientError` so the caller can fall back to the
//! offline answer.

use async_openai::Client;
use async_openai::config::{AzureConfig, OpenAIConfig};
use async_openai::error::{ApiError, ApiErrorResponse, OpenAIError};
use async_openai::middleware::HttpRequestFactory;
use futures_util::StreamExt;
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

/// async-openai's client for one of the two addressing schemes.
enum Api {
    OpenAi(Client<OpenAIConfig>),
    Azure(Client<AzureConfig>),
}

/// A client for one question's round trips.
pub struct ModelClient {
    api: Api,
    timeout: Duration,
    /// Learned during this question from the endpoint's 400s.
    quirks: std::sync::Mutex<Quirks>,
}

impl ModelClient {
    pub fn new(cfg: &RemoteConfig) -> Result<ModelClient, ClientError> {
        validate(cfg).map_err(ClientError::Connect)?;
        // async-openai builds requests with a reqwest client; `Transport`
        // sends them (the same client, with our retry and error rules).
        let transport = Transport::new(cfg)?;
        let http = transport.client.clone();
        let service = tower::service_fn(move |req: HttpRequestFactory| {
            let t = transport.clone();
            async move { t.send(req).await }
        });
        let key = cfg.api_key.clone().unwrap_or_default();
        let api = match endpoint(cfg) {
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
                Api::OpenAi(Client::build(http, config).with_http_service(service))
            }
            Endpoint::AzureDeployment {
                resource,
                deployment,
                api_version,
            } => {
                let config = AzureConfig::new()
                    .with_api_base(resource)
                    .with_deployment_id(deployment)
                    .with_api_version(api_version)
                    .with_api_key(key);
                Api::Azure(Client::build(http, config).with_http_service(service))
            }
        };
        Ok(ModelClient {
            api,
            timeout: cfg.timeout,
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

    async fn complete_once(&self, body: &Value) -> Result<Completion, ClientError> {
        let call = async {
            match &self.api {
                Api::OpenAi(c) => c.chat().create_byot::<_, Value>(body).await,
                Api::Azure(c) => c.chat().create_byot::<_, Value>(body).await,
            }
        };
        let value = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
            .map_err(|e| classify(e, self.timeout))?;
        parse_completion(&value)
    }

    async fn stream_once(
        &self,
        body: &Value,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Completion, ClientError> {
        let open = async {
            match &self.api {
                Api::OpenAi(c) => c.chat().create_stream_byot::<_, Value>(body).await,
                Api::Azure(c) => c.chat().create_stream_byot::<_, Value>(body).await,
            }
        };
        let mut stream = tokio::time::timeout(self.timeout, open)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
            .map_err(|e| classify(e, self.timeout))?;
        let mut asm = StreamAssembler::default();
        loop {
            let next = tokio::time::timeout(self.timeout, stream.next())
                .await
                .map_err(|_| ClientError::Timeout(self.timeout))?;
            let Some(item) = next else { break };
            let chunk = item.map_err(|e| classify(e, self.timeout))?;
            if let Some(d) = asm.push(&chunk)? {
                on_delta(&d);
            }
        }
        asm.finish()
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

/// The HTTP transport under async-openai: a `crate::http` client (rustls
/// with the ring provider, the system's roots plus `ca_file`, proxies from
/// the environment). One bounded retry, and every non-2xx answer an error
/// that keeps its status.
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
    async fn send(&self, req: HttpRequestFactory) -> Result<reqwest::Response, OpenAIError> {
        let mut attempt = 0;
        loop {
            let request = req.build().await?;
            let result = self.client.execute(request).await;
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
            let resp = result.map_err(OpenAIError::Reqwest)?;
            if resp.status().is_success() {
                return Ok(resp);
            }
            let status = resp.status();
            let message = resp.text().await.unwrap_or_default();
            return Err(OpenAIError::ApiError(ApiErrorResponse {
                status_code: status,
                api_error: ApiError {
                    message,
                    r#type: None,
                    param: None,
                    code: None,
                    misalignment: None,
                },
            }));
        }
    }
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

/// An async-openai error as one of ours; the key is never in these texts
/// (it travels in headers, and reqwest's messages name only the URL).
fn classify(e: OpenAIError, timeout: Duration) -> ClientError {
    match e {
        OpenAIError::Reqwest(e) if e.is_timeout() => ClientError::Timeout(timeout),
        OpenAIError::Reqwest(e) => ClientError::Connect(chain(&e)),
        OpenAIError::ApiError(r) => ClientError::Http {
            status: r.status_code.as_u16(),
            body: crate::tools::head_tail(&r.api_error.message, 300),
        },
        OpenAIError::JSONDeserialize(e, body) => {
            ClientError::Shape(format!("{e}: {}", crate::tools::head_tail(&body, 300)))
        }
        OpenAIError::StreamError(e) => ClientError::Connect(format!("the stream broke: {e}")),
        OpenAIError::Boxed(e) => ClientError::Connect(chain(e.as_ref())),
        other => ClientError::Connect(other.to_string()),
    }
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
}

impl StreamAssembler {
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
                    match f.get("arguments") {
                        Some(Value::String(s)) => call.arguments.push_str(s),
                        Some(Value::Null) | None => {}
                        Some(v) => call.arguments.push_str(&v.to_string()),
                    }
                }
            }
        }
        match delta.get("content").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => {
                self.content.push_str(t);
                Ok(Some(t.to_string()))
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
        let tool_calls = self
            .calls
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
