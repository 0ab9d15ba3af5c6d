//! The I/O edge to an OpenAI-compatible `/chat/completions` endpoint (any
//! server speaking that shape: llama.cpp, vLLM, Ollama, Azure OpenAI's v1
//! API). One request, one parsed reply; timeouts and HTTP errors come back
//! as `ClientError` so the caller can fall back to the offline answer.

use serde_json::Value;
use std::time::Duration;

/// Where the model is and how long to wait for it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteConfig {
    /// e.g. `http://127.0.0.1:8090/v1`.
    pub base_url: String,
    pub model: String,
    /// Sent as a bearer token; never logged, never sent anywhere else.
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// Model round trips per question, the final summary included.
    pub max_steps: usize,
    /// Estimated prompt tokens per question before the loop stops calling tools.
    pub token_budget: usize,
    /// Mask hostnames and IPs (restored in the answer).
    pub mask: bool,
    /// `auto` (default) or `required` for models that only call tools when told to.
    pub tool_choice: String,
}

impl RemoteConfig {
    pub fn new(base_url: &str, model: &str) -> RemoteConfig {
        RemoteConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key: None,
            timeout: Duration::from_secs(60),
            max_steps: 6,
            token_budget: 16_000,
            mask: false,
            tool_choice: "auto".to_string(),
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

/// Sends one request.
pub async fn complete(cfg: &RemoteConfig, body: &Value) -> Result<Completion, ClientError> {
    let client = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .build()
        .map_err(|e| ClientError::Connect(e.to_string()))?;
    let mut req = client
        .post(format!("{}/chat/completions", cfg.base_url))
        .json(body);
    if let Some(k) = &cfg.api_key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.map_err(|e| classify(cfg, e))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| classify(cfg, e))?;
    if !(200..300).contains(&status) {
        return Err(ClientError::Http {
            status,
            body: crate::tools::head_tail(&text, 300),
        });
    }
    let value: Value =
        serde_json::from_str(&text).map_err(|e| ClientError::Shape(e.to_string()))?;
    parse_completion(&value)
}

fn classify(cfg: &RemoteConfig, e: reqwest::Error) -> ClientError {
    if e.is_timeout() {
        ClientError::Timeout(cfg.timeout)
    } else {
        // reqwest's message names the URL, never the key.
        ClientError::Connect(e.to_string())
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
}
