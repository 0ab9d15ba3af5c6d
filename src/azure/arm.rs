//! The read-only Azure Resource Manager client: GETs (and the two read-only
//! POSTs, Resource Graph queries and a NIC's effective security rules) with
//! the rules every ARM caller must follow (../shared/docs/azure-rest.md §0):
//! a token per request from the shared `Credential`, `nextLink` paging
//! followed verbatim (same origin only: the token never goes elsewhere),
//! 429/503/529 honoured with their `Retry-After`, 5xx and network errors
//! retried with backoff, a 401 answered by one token refresh, at most
//! `concurrency` requests in flight, and a time budget for the whole pull.
//! A request that still fails becomes an `ArmError` naming the resource and
//! what to do (a 403 names the role that is missing); the caller lists it
//! as a problem and goes on with the rest.
//!
//! It cannot write: there is no PUT, PATCH or DELETE here, and `post` only
//! accepts the read-only endpoints above. Writes (remediation) build on the
//! same `Credential` and the pure helpers (`retry_delay`, `error_of`).

use super::credential::{ARM_SCOPE, AuthError, Credential};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The default ARM endpoint; `APIMEDIC_ARM_URL` overrides it (sovereign
/// clouds, test stand-ins). ARM, Azure Monitor metrics and Resource Graph
/// are all served from it.
pub const DEFAULT_ARM_URL: &str = "https://management.azure.com";

/// The role a read needs, named in the message of a 403.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Configuration (APIM, network, autoscale, Resource Graph).
    Reader,
    /// Azure Monitor metrics and the activity log.
    MonitoringReader,
    /// Log Analytics queries.
    LogAnalyticsReader,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Reader => "Reader",
            Role::MonitoringReader => "Monitoring Reader",
            Role::LogAnalyticsReader => "Log Analytics Reader",
        }
    }
}

/// What went wrong with one request, after retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Sign-in failed (the message says what to do).
    SignIn,
    /// 403: the principal lacks a role.
    Forbidden,
    /// 404: the resource does not exist (or is not visible).
    NotFound,
    /// 401 even with a new token.
    Unauthorized,
    /// Still 429/503/529 when retries or the budget ran out.
    Throttled,
    /// The time budget ran out before an answer.
    Budget,
    /// No connection, or it broke.
    Network,
    /// Another 4xx/5xx.
    Status,
    /// An answer that is not the JSON expected, or too big.
    BadAnswer,
    /// The caller asked for something this client refuses (a write, a foreign host).
    Refused,
}

/// A request that failed: which resource, why, and what to do.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{resource}: {message}")]
pub struct ArmError {
    /// The resource id (or path) asked for.
    pub resource: String,
    pub failure: Failure,
    pub status: Option<u16>,
    /// ARM's `error.code`, when it sent one.
    pub code: Option<String>,
    /// One line for a person, ending with what to do.
    pub message: String,
}

impl ArmError {
    fn new(resource: &str, failure: Failure, message: impl Into<String>) -> ArmError {
        ArmError {
            resource: resource.to_string(),
            failure,
            status: None,
            code: None,
            message: message.into(),
        }
    }

    fn auth(resource: &str, e: AuthError) -> ArmError {
        ArmError::new(resource, Failure::SignIn, e.to_string())
    }
}

/// Tuning of an `ArmClient`.
#[derive(Clone, Debug)]
pub struct ArmOptions {
    /// `APIMEDIC_ARM_URL`, else `DEFAULT_ARM_URL`.
    pub base_url: String,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// The whole pull must finish within this.
    pub budget: Duration,
    /// One request (connect to last byte) at most.
    pub request_timeout: Duration,
    /// Retries of one request (throttling, 5xx, network).
    pub max_retries: u32,
    /// Longest `Retry-After` honoured; longer ones count as throttled to the end.
    pub max_wait: Duration,
    /// Largest answer read (bytes).
    pub max_body: usize,
    /// Extra root certificates (PEM) for the ARM endpoint.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for ArmOptions {
    fn default() -> Self {
        ArmOptions {
            base_url: std::env::var("APIMEDIC_ARM_URL")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_ARM_URL.to_string()),
            concurrency: 8,
            budget: Duration::from_secs(180),
            request_timeout: Duration::from_secs(60),
            max_retries: 5,
            max_wait: Duration::from_secs(60),
            max_body: 256 << 20,
            ca_file: std::env::var_os("APIMEDIC_AZURE_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(Into::into),
        }
    }
}

/// Counters of what a client did (benchmarks, `--verbose`, tests).
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub retried: AtomicU64,
    pub refreshed: AtomicU64,
    pub bytes: AtomicU64,
    pub failed: AtomicU64,
}

/// A copy of `Stats` at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsNow {
    pub requests: u64,
    pub throttled: u64,
    pub retried: u64,
    pub refreshed: u64,
    pub bytes: u64,
    pub failed: u64,
}

impl Stats {
    pub fn now(&self) -> StatsNow {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsNow {
            requests: g(&self.requests),
            throttled: g(&self.throttled),
            retried: g(&self.retried),
            refreshed: g(&self.refreshed),
            bytes: g(&self.bytes),
            failed: g(&self.failed),
        }
    }
}

/// The read-only ARM client. Cheap to clone (shared pieces are `Arc`s).
#[derive(Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    base: reqwest::Url,
    credential: Arc<Credential>,
    permits: Arc<Semaphore>,
    deadline: Instant,
    options: ArmOptions,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// API versions of the reads (../shared/docs/azure-rest.md).
pub mod api_version {
    pub const APIM: &str = "2024-05-01";
    pub const NETWORK: &str = "2024-05-01";
    pub const AUTOSCALE: &str = "2022-10-01";
    pub const ACTIVITY_LOG: &str = "2015-04-01";
    pub const METRICS: &str = "2023-10-01";
    pub const DIAGNOSTIC_SETTINGS: &str = "2021-05-01-preview";
    pub const LOG_ANALYTICS_WORKSPACES: &str = "2022-10-01";
    pub const RESOURCE_GRAPH: &str = "2022-10-01";
    pub const RESOURCES: &str = "2022-09-01";
}

impl ArmClient {
    /// A client whose budget starts now.
    pub fn new(credential: Arc<Credential>, options: ArmOptions) -> Result<ArmClient, String> {
        let base = reqwest::Url::parse(options.base_url.trim_end_matches('/')).map_err(|e| {
            format!(
                "APIMEDIC_ARM_URL `{}` is not a URL ({e}); it should look like https://management.azure.com",
                options.base_url
            )
        })?;
        if !matches!(base.scheme(), "https" | "http") {
            return Err(format!(
                "APIMEDIC_ARM_URL `{}` must be http(s)",
                options.base_url
            ));
        }
        let http = crate::http::client_builder(options.ca_file.as_deref())?
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ArmClient {
            http,
            base,
            credential,
            permits: Arc::new(Semaphore::new(options.concurrency.max(1))),
            deadline: Instant::now() + options.budget,
            options,
            stats: Arc::new(Stats::default()),
        })
    }

    /// The same client (connections, token cache, concurrency limit and
    /// counters shared) with a fresh budget: the daemon's next cycle.
    pub fn with_budget(&self, budget: Duration) -> ArmClient {
        ArmClient {
            deadline: Instant::now() + budget,
            ..self.clone()
        }
    }

    pub fn credential(&self) -> &Arc<Credential> {
        &self.credential
    }

    pub fn stats(&self) -> StatsNow {
        self.stats.now()
    }

    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// Whether the budget is spent.
    pub fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The URL for a path (`/subscriptions/...?api-version=...`) or a
    /// `nextLink`; refused when it points at another origin.
    pub fn url(&self, path_or_url: &str) -> Result<reqwest::Url, ArmError> {
        let url = if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            reqwest::Url::parse(path_or_url)
        } else {
            let mut u = self.base.clone();
            let (path, query) = path_or_url.split_once('?').unwrap_or((path_or_url, ""));
            let prefix = u.path().trim_end_matches('/').to_string();
            u.set_path(&format!("{prefix}{path}"));
            u.set_query((!query.is_empty()).then_some(query));
            Ok(u)
        }
        .map_err(|e| ArmError::new(path_or_url, Failure::Refused, format!("not a URL ({e})")))?;
        if url.origin() != self.base.origin() {
            return Err(ArmError::new(
                path_or_url,
                Failure::Refused,
                format!(
                    "refused to send the token to {} (not the ARM endpoint {})",
                    url.origin().ascii_serialization(),
                    self.base.origin().ascii_serialization()
                ),
            ));
        }
        Ok(url)
    }

    /// GET one JSON document.
    pub async fn get(&self, path: &str, role: Role) -> Result<Value, ArmError> {
        self.send(reqwest::Method::GET, path, None, role).await
    }

    /// GET a list and every page after it (`nextLink`), concatenating
    /// `value`. A repeated `nextLink` or more than `MAX_PAGES` pages stop
    /// with an error (a server sending us round in circles).
    pub async fn list(&self, path: &str, role: Role) -> Result<Vec<Value>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        let mut seen = std::collections::HashSet::new();
        while let Some(link) = next.take() {
            if !seen.insert(link.clone()) || seen.len() > MAX_PAGES {
                return Err(ArmError::new(
                    path,
                    Failure::BadAnswer,
                    format!(
                        "paging does not end (page {} links back to one already read); {} items kept",
                        seen.len(),
                        items.len()
                    ),
                ));
            }
            let page = self.get(&link, role).await?;
            next = next_link(&page);
            match page {
                Value::Object(mut o) => match o.remove("value") {
                    Some(Value::Array(v)) => items.extend(v),
                    Some(Value::Null) | None => {}
                    Some(_) => {
                        return Err(ArmError::new(
                            path,
                            Failure::BadAnswer,
                            "`value` is not a list",
                        ));
                    }
                },
                // Some reads (network status) answer a bare array.
                Value::Array(v) => items.extend(v),
                _ => {
                    return Err(ArmError::new(
                        path,
                        Failure::BadAnswer,
                        "the answer is not a JSON object",
                    ));
                }
            }
        }
        Ok(items)
    }

    /// POST to a read-only endpoint: Resource Graph (`.../providers/
    /// Microsoft.ResourceGraph/resources`) or a NIC's
    /// `effectiveNetworkSecurityGroups` (a long-running operation, followed
    /// to its result). Anything else is refused.
    pub async fn post(&self, path: &str, body: &Value, role: Role) -> Result<Value, ArmError> {
        let bare = path.split('?').next().unwrap_or(path).to_ascii_lowercase();
        let read_only = bare.ends_with("/providers/microsoft.resourcegraph/resources")
            || bare.ends_with("/effectivenetworksecuritygroups");
        if !read_only {
            return Err(ArmError::new(
                path,
                Failure::Refused,
                "this client only reads; POST is allowed for Resource Graph queries and effective security rules",
            ));
        }
        self.send(reqwest::Method::POST, path, Some(body), role)
            .await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        role: Role,
    ) -> Result<Value, ArmError> {
        let url = self.url(path)?;
        let resource = resource_of(&url);
        let mut attempt = 0u32;
        let mut refreshed = false;
        let mut polling: Option<reqwest::Url> = None;
        loop {
            let remaining = self.deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.fail(ArmError::new(
                    &resource,
                    Failure::Budget,
                    format!(
                        "not read: the time budget ({} s) ran out first; raise --budget or narrow the target",
                        self.options.budget.as_secs()
                    ),
                )));
            }
            let token = self
                .credential
                .token(ARM_SCOPE)
                .await
                .map_err(|e| self.fail(ArmError::auth(&resource, e)))?;
            let permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| ArmError::new(&resource, Failure::Network, "client closed"))?;
            let (m, u) = match &polling {
                Some(p) => (reqwest::Method::GET, p.clone()),
                None => (method.clone(), url.clone()),
            };
            let mut req = self
                .http
                .request(m.clone(), u)
                .header("Authorization", token.authorization())
                .header("Accept", "application/json")
                .header("x-ms-app", "apimedic")
                .timeout(self.options.request_timeout.min(remaining));
            if let (Some(b), None) = (body, &polling) {
                req = req.json(b);
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let sent = req.send().await;
            let outcome = match sent {
                Err(e) => Err(e),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match read_capped(resp, self.options.max_body).await {
                        Ok(bytes) => Ok((status, headers, bytes)),
                        Err(ReadError::TooBig) => {
                            return Err(self.fail(ArmError::new(
                                &resource,
                                Failure::BadAnswer,
                                format!(
                                    "the answer is larger than {} MB; not read",
                                    self.options.max_body >> 20
                                ),
                            )));
                        }
                        Err(ReadError::Http(e)) => Err(e),
                    }
                }
            };
            drop(permit);
            let (status, headers, bytes) = match outcome {
                Ok(x) => x,
                Err(e) => {
                    let msg = if e.is_timeout() {
                        "no answer in time".to_string()
                    } else {
                        format!(
                            "cannot reach {}: {}",
                            self.base.origin().ascii_serialization(),
                            error_chain(&e)
                        )
                    };
                    match self.backoff(attempt, None) {
                        Some(wait) => {
                            attempt += 1;
                            self.stats.retried.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                        None => {
                            return Err(self.fail(ArmError::new(
                                &resource,
                                Failure::Network,
                                format!(
                                    "{msg}; check the network path (HTTPS_PROXY, APIMEDIC_ARM_URL)"
                                ),
                            )));
                        }
                    }
                }
            };
            self.stats
                .bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            match status {
                202 if polling.is_none() && method == reqwest::Method::POST => {
                    // A long-running read (effective rules): poll Location.
                    let Some(loc) = header(&headers, "location")
                        .or_else(|| header(&headers, "azure-asyncoperation"))
                    else {
                        return Ok(Value::Null);
                    };
                    polling = Some(self.url(&loc)?);
                    let wait = retry_after(&headers).unwrap_or(Duration::from_secs(2));
                    if Instant::now() + wait >= self.deadline {
                        return Err(self.fail(ArmError::new(
                            &resource,
                            Failure::Budget,
                            "the operation was still running when the time budget ran out",
                        )));
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
                202 if polling.is_some() => {
                    let wait = retry_after(&headers).unwrap_or(Duration::from_secs(2));
                    if Instant::now() + wait >= self.deadline {
                        return Err(self.fail(ArmError::new(
                            &resource,
                            Failure::Budget,
                            "the operation was still running when the time budget ran out",
                        )));
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
                204 => return Ok(Value::Null),
                200..=299 => {
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        return Ok(Value::Null);
                    }
                    return serde_json::from_slice(&bytes).map_err(|e| {
                        self.fail(ArmError::new(
                            &resource,
                            Failure::BadAnswer,
                            format!("the answer is not JSON ({e})"),
                        ))
                    });
                }
                401 if !refreshed => {
                    refreshed = true;
                    self.stats.refreshed.fetch_add(1, Ordering::Relaxed);
                    self.credential.invalidate(ARM_SCOPE, &token).await;
                    continue;
                }
                _ => {}
            }
            if let Some(wait) = retryable(status)
                .then(|| self.backoff(attempt, retry_after(&headers)))
                .flatten()
            {
                attempt += 1;
                if matches!(status, 429 | 503 | 529) {
                    self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                }
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
                continue;
            }
            let principal = token.principal.as_ref().map(|p| p.to_string());
            return Err(self.fail(error_of(
                &resource,
                status,
                &bytes,
                role,
                principal.as_deref(),
                attempt,
            )));
        }
    }

    /// How long to wait before retry `attempt + 1`, or `None` when retries
    /// or the budget are spent (a wait that would end past the deadline is
    /// not started).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let wait = retry_delay(attempt, retry_after, self.options.max_retries)?;
        if wait > self.options.max_wait || Instant::now() + wait >= self.deadline {
            return None;
        }
        Some(wait)
    }

    fn fail(&self, e: ArmError) -> ArmError {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        e
    }
}

/// Pages read from one list at most.
pub const MAX_PAGES: usize = 10_000;

/// Statuses worth another try: throttling (429, 503, and 529 from the
/// metrics backend) and transient server errors.
pub fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// The wait before retry `attempt + 1` (0-based): the server's
/// `Retry-After` when it sent one, else 1, 2, 4, 8… s (at most 30 s).
/// `None` once `max_retries` are used.
pub fn retry_delay(
    attempt: u32,
    retry_after: Option<Duration>,
    max_retries: u32,
) -> Option<Duration> {
    if attempt >= max_retries {
        return None;
    }
    Some(retry_after.unwrap_or_else(|| Duration::from_secs((1u64 << attempt.min(5)).min(30))))
}

/// `Retry-After` as seconds (ARM sends seconds; an HTTP date is read too).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = header(headers, "retry-after")?;
    parse_retry_after(&v, chrono::Utc::now())
}

/// Pure form of `retry_after`.
pub fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let d = at.with_timezone(&chrono::Utc) - now;
    Some(d.to_std().unwrap_or(Duration::ZERO))
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The next page of a list answer: absent, `null` and `""` all mean none.
pub fn next_link(page: &Value) -> Option<String> {
    page.get("nextLink")
        .or_else(|| page.get("@odata.nextLink"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The resource a URL names (path without query), for messages.
fn resource_of(url: &reqwest::Url) -> String {
    url.path().to_string()
}

/// ARM's error body: `{"error":{"code","message"}}` or a flat `{code,message}`.
pub fn error_parts(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return (None, None);
    };
    let inner = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
    let s = |k: &str| inner.get(k).and_then(Value::as_str).map(str::to_string);
    (s("code"), s("message"))
}

/// The error for a final non-success answer, saying what to do (pure).
pub fn error_of(
    resource: &str,
    status: u16,
    body: &[u8],
    role: Role,
    principal: Option<&str>,
    retries: u32,
) -> ArmError {
    let (code, message) = error_parts(body);
    let said = match (&code, &message) {
        (Some(c), Some(m)) => format!("{c}: {}", one_line(m)),
        (Some(c), None) => c.clone(),
        (None, Some(m)) => one_line(m),
        (None, None) => String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string(),
    };
    let who = principal.unwrap_or("the signed-in principal");
    let (failure, todo) = match status {
        403 if code.as_deref().is_some_and(|c| c.contains("Audience")) => (
            Failure::Forbidden,
            "the token is for another service; report this as a bug".to_string(),
        ),
        403 => (
            Failure::Forbidden,
            format!(
                "grant {who} the {} role on {} (or its resource group): az role assignment create --assignee <principal> --role \"{}\" --scope {}",
                role.name(),
                scope_of(resource),
                role.name(),
                scope_of(resource)
            ),
        ),
        404 => (
            Failure::NotFound,
            "check the resource id (subscription, resource group, name); it may have been deleted".to_string(),
        ),
        401 => (
            Failure::Unauthorized,
            "the token was refused twice: check the tenant (--tenant, AZURE_TENANT_ID) owns this subscription".to_string(),
        ),
        429 | 503 | 529 => (
            Failure::Throttled,
            format!("still throttled after {retries} retries; try again later or lower --concurrency"),
        ),
        _ => (Failure::Status, format!("HTTP {status} after {retries} retries")),
    };
    let message = if said.is_empty() {
        format!("HTTP {status}; what to do: {todo}")
    } else {
        format!("HTTP {status} {said}; what to do: {todo}")
    };
    ArmError {
        resource: resource.to_string(),
        failure,
        status: Some(status),
        code,
        message,
    }
}

/// The scope to grant a role on for a resource path: the resource up to
/// its provider's resource (`.../service/x` for `.../service/x/apis/y`).
fn scope_of(resource: &str) -> String {
    let parts: Vec<&str> = resource.split('/').collect();
    match parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("providers"))
    {
        Some(i) if parts.len() >= i + 4 => parts[..i + 4].join("/"),
        _ => resource.to_string(),
    }
}

fn one_line(s: &str) -> String {
    let j = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match j.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &j[..i]),
        None => j,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

enum ReadError {
    TooBig,
    Http(reqwest::Error),
}

async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n as usize > max) {
        return Err(ReadError::TooBig);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if out.len() + chunk.len() > max {
            return Err(ReadError::TooBig);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_absent_null_and_empty_all_end_paging() {
        assert_eq!(next_link(&serde_json::json!({"value": []})), None);
        assert_eq!(next_link(&serde_json::json!({"nextLink": null})), None);
        assert_eq!(next_link(&serde_json::json!({"nextLink": ""})), None);
        assert_eq!(
            next_link(&serde_json::json!({"nextLink": "https://x/y?$skip=2"})).as_deref(),
            Some("https://x/y?$skip=2")
        );
    }

    #[test]
    fn retry_after_in_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-05-14T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("17", now), Some(Duration::from_secs(17)));
        assert_eq!(
            parse_retry_after("Tue, 14 May 2024 09:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(retry_delay(0, None, 3), Some(Duration::from_secs(1)));
        assert_eq!(retry_delay(2, None, 3), Some(Duration::from_secs(4)));
        assert_eq!(retry_delay(3, None, 3), None);
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(9)), 3),
            Some(Duration::from_secs(9))
        );
        assert!(retryable(429) && retryable(503) && retryable(529) && !retryable(404));
    }

    #[test]
    fn a_403_names_the_missing_role_and_the_scope() {
        let body = br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' with object id 'o' does not have authorization to perform action 'Microsoft.ApiManagement/service/namedValues/read'."}}"#;
        let rid = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim/namedValues";
        let e = error_of(rid, 403, body, Role::Reader, Some("alice@contoso.com"), 0);
        assert_eq!(e.failure, Failure::Forbidden);
        assert_eq!(e.code.as_deref(), Some("AuthorizationFailed"));
        assert!(
            e.message
                .contains("grant alice@contoso.com the Reader role"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("--scope /subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim"),
            "{}",
            e.message
        );
        let m = error_of(rid, 403, body, Role::MonitoringReader, None, 0);
        assert!(m.message.contains("Monitoring Reader"));
        // The activity log's flat error shape.
        let flat = error_of(
            rid,
            400,
            br#"{"code":"BadRequest","message":"bad filter"}"#,
            Role::MonitoringReader,
            None,
            0,
        );
        assert_eq!(flat.code.as_deref(), Some("BadRequest"));
        assert_eq!(
            error_of(rid, 429, b"", Role::Reader, None, 5).failure,
            Failure::Throttled
        );
        assert_eq!(
            error_of(rid, 404, b"", Role::Reader, None, 0).failure,
            Failure::NotFound
        );
    }
}
