//! The HTTP edge of the pushdown: one POST per query to the Log Analytics
//! query API (`/v1/workspaces/{id}/query`) or the ADX v2 endpoint
//! (`/v2/rest/query`), with the bearer token for that audience. 429 and 503
//! are retried after `Retry-After` (or a backoff), at most a few times;
//! every other failure comes back as a `wire::AnswerError` for the caller
//! to explain.

use super::query::Query;
use super::wire::{self, AnswerError, Table};
use std::time::Duration;

/// Where the queries go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `{base}/v1/workspaces/{workspace}/query`.
    LogAnalytics { base: String, workspace: String },
    /// `{cluster}/v2/rest/query` on database `database`.
    Adx { cluster: String, database: String },
}

impl Endpoint {
    pub fn url(&self) -> String {
        match self {
            Endpoint::LogAnalytics { base, workspace } => {
                format!(
                    "{}/v1/workspaces/{workspace}/query",
                    base.trim_end_matches('/')
                )
            }
            Endpoint::Adx { cluster, .. } => {
                format!("{}/v2/rest/query", cluster.trim_end_matches('/'))
            }
        }
    }

    /// The token audience (v2 scope).
    pub fn scope(&self) -> String {
        match self {
            Endpoint::LogAnalytics { .. } => "https://api.loganalytics.io/.default".to_string(),
            Endpoint::Adx { cluster, .. } => format!("{}/.default", cluster.trim_end_matches('/')),
        }
    }

    /// The request body for a query.
    pub fn body(&self, q: &Query) -> serde_json::Value {
        match self {
            Endpoint::LogAnalytics { .. } => serde_json::json!({
                "query": q.text,
                // The window again as the API's own time filter: the
                // service intersects it with the query's.
                "timespan": format!("{}/{}", q.start.to_rfc3339(), q.end.to_rfc3339()),
            }),
            Endpoint::Adx { database, .. } => {
                let params: serde_json::Map<String, serde_json::Value> = q
                    .parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.parameter())))
                    .collect();
                serde_json::json!({
                    "db": database,
                    "csl": q.text,
                    "properties": {
                        "Options": {"servertimeout": "00:04:00"},
                        "Parameters": params,
                    },
                })
            }
        }
    }
}

/// A gzip body, decompressed; at most `MAX_ANSWER` bytes (the services cap
/// an answer at ~100 MiB raw).
fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    const MAX_ANSWER: u64 = 256 << 20;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_ANSWER {
        return Err(std::io::Error::other(
            "the answer is over 256 MiB decompressed",
        ));
    }
    Ok(out)
}

/// Sends queries and counts what came back.
pub struct Client {
    http: reqwest::Client,
    pub endpoint: Endpoint,
    token: String,
    /// Bytes of answer bodies received.
    pub bytes: u64,
    /// Queries sent (retries included).
    pub requests: u64,
    /// Longest wait on `Retry-After`.
    pub max_retry: Duration,
}

/// Most attempts per query when throttled.
const ATTEMPTS: u32 = 5;
/// Longest `Retry-After` honoured.
const MAX_WAIT: Duration = Duration::from_secs(60);

impl Client {
    pub fn new(endpoint: Endpoint, token: String) -> Result<Client, String> {
        let http = crate::http::client_builder(None)?
            .timeout(Duration::from_secs(330))
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            endpoint,
            token,
            bytes: 0,
            requests: 0,
            max_retry: Duration::ZERO,
        })
    }

    /// Runs one query; its primary result, or why not.
    pub async fn run(&mut self, q: &Query) -> Result<Table, AnswerError> {
        let url = self.endpoint.url();
        let body = self.endpoint.body(q);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests += 1;
            let mut req = self
                .http
                .post(&url)
                .bearer_auth(&self.token)
                .header("Accept", "application/json")
                // Both services compress when asked: a few times fewer
                // bytes on the wire (decompressed here with flate2).
                .header("Accept-Encoding", "gzip")
                .json(&body);
            req = match &self.endpoint {
                Endpoint::LogAnalytics { .. } => req.header("Prefer", "wait=300"),
                Endpoint::Adx { .. } => req
                    .header("x-ms-app", "apimedic")
                    .header("x-ms-client-request-id", format!("apimedic;{}", q.name)),
            };
            let resp = req.send().await.map_err(|e| AnswerError::Refused {
                status: 0,
                code: "ConnectionFailed".into(),
                message: format!("cannot reach {url}: {e}"),
            })?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let gzip = resp
                .headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
            let raw = resp.bytes().await.map_err(|e| AnswerError::Refused {
                status,
                code: "ReadFailed".into(),
                message: format!("the answer from {url} broke off: {e}"),
            })?;
            self.bytes += raw.len() as u64;
            let bytes = if gzip {
                gunzip(&raw).map_err(|e| {
                    AnswerError::Malformed(format!("the gzip answer does not decompress: {e}"))
                })?
            } else {
                raw.to_vec()
            };
            if (status == 429 || status == 503) && attempt < ATTEMPTS {
                let wait = retry_after
                    .unwrap_or(Duration::from_secs(1 << attempt.min(5)))
                    .min(MAX_WAIT);
                self.max_retry = self.max_retry.max(wait);
                tokio::time::sleep(wait).await;
                continue;
            }
            if status == 204 {
                // Log Analytics: the workspace has no data at all.
                return Ok(Table::default());
            }
            if !(200..300).contains(&status) {
                return Err(wire::refusal(status, &bytes));
            }
            return match &self.endpoint {
                Endpoint::LogAnalytics { .. } => wire::log_analytics(&bytes),
                Endpoint::Adx { .. } => wire::adx_v2(&bytes),
            };
        }
    }
}
