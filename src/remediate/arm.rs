//! The ARM writer: the only code in apimedic that changes Azure. Sends one
//! request with a bearer token (from a [`TokenSource`]) and `If-Match`,
//! reads the long-running-operation headers, and turns ARM's error bodies
//! into [`ArmError`] that name what to do (the missing role on 403, the
//! running operation on 409, Retry-After on 429, re-plan on 412).

use super::TokenSource;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// `https://management.azure.com`, or `APIMEDIC_ARM_URL` (tests, sovereign clouds).
pub fn base_url() -> String {
    std::env::var("APIMEDIC_ARM_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| "https://management.azure.com".to_string())
}

/// The token audience for ARM.
pub const SCOPE: &str = "https://management.azure.com/.default";

/// An answer from ARM.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Option<Value>,
    /// `Azure-AsyncOperation`, else `Location`, when the write runs on.
    pub operation: Option<String>,
    /// True when `operation` came from `Azure-AsyncOperation` (a status object).
    pub status_object: bool,
    pub retry_after: Option<u64>,
}

/// A failed request, classified.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ArmError {
    #[error(
        "412 Precondition Failed: {path} changed since it was read (ETag differs); the plan must be recomputed and approved again"
    )]
    Stale { path: String },
    #[error("409 Conflict on {path}: {message} (another operation is running on the resource)")]
    Busy {
        path: String,
        message: String,
        retry_after: Option<u64>,
    },
    #[error("429 Too Many Requests on {path}: {message}")]
    Throttled {
        path: String,
        message: String,
        retry_after: Option<u64>,
    },
    #[error("403 Forbidden on {path} ({code}): {message}")]
    Forbidden {
        path: String,
        code: String,
        message: String,
    },
    #[error(
        "401 Unauthorized on {path}: the token was refused ({message}); sign in again (`az login`)"
    )]
    Unauthorized { path: String, message: String },
    #[error("{status} from {path} ({code}): {message}")]
    Status {
        path: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach ARM for {path}: {message}")]
    Transport { path: String, message: String },
    #[error("no token for ARM: {0}")]
    Token(String),
    #[error("refusing to follow {url}: it is not on the ARM endpoint {base}")]
    ForeignUrl { url: String, base: String },
}

/// A client for ARM writes and the reads they need.
#[derive(Clone)]
pub struct Arm {
    base: String,
    http: reqwest::Client,
    tokens: Arc<dyn TokenSource>,
}

impl Arm {
    pub fn new(base: &str, tokens: Arc<dyn TokenSource>) -> Result<Arm, String> {
        let http = crate::http::client_builder(None)?
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Arm {
            base: base.trim_end_matches('/').to_string(),
            http,
            tokens,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A path (`/subscriptions/…?api-version=…`) or an absolute URL on the
    /// same endpoint (operation URLs). A URL elsewhere is refused: the
    /// bearer token never leaves the ARM endpoint.
    fn url(&self, path_or_url: &str) -> Result<String, ArmError> {
        if path_or_url.starts_with('/') {
            return Ok(format!("{}{path_or_url}", self.base));
        }
        let lower = path_or_url.to_ascii_lowercase();
        let base = self.base.to_ascii_lowercase();
        if lower == base || lower.starts_with(&format!("{base}/")) {
            Ok(path_or_url.to_string())
        } else {
            Err(ArmError::ForeignUrl {
                url: path_or_url.to_string(),
                base: self.base.clone(),
            })
        }
    }

    /// The token's principal (for the audit), if the token names one.
    pub async fn principal(&self) -> Option<String> {
        let t = self.tokens.token(SCOPE).await.ok()?;
        super::principal_of(&t)
    }

    /// Sends one request; a 2xx is a [`Reply`], anything else an [`ArmError`].
    pub async fn send(
        &self,
        method: &str,
        path_or_url: &str,
        if_match: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Reply, ArmError> {
        let url = self.url(path_or_url)?;
        let shown = path_or_url.split('?').next().unwrap_or("").to_string();
        let token = self.tokens.token(SCOPE).await.map_err(ArmError::Token)?;
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| ArmError::Transport {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        let mut req = self.http.request(method, &url).bearer_auth(token);
        if let Some(m) = if_match {
            req = req.header("If-Match", m);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ArmError::Transport {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let async_op = header("azure-asyncoperation");
        let location = header("location");
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let text = resp.text().await.unwrap_or_default();
        let body: Option<Value> = if text.trim().is_empty() {
            None
        } else {
            serde_json::from_str(&text).ok()
        };
        if (200..300).contains(&status) {
            let etag = etag.or_else(|| {
                body.as_ref()
                    .and_then(|b| b.get("etag"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            return Ok(Reply {
                status,
                etag,
                body,
                status_object: async_op.is_some(),
                operation: async_op.or(location),
                retry_after,
            });
        }
        let (code, message) = error_of(body.as_ref(), &text);
        Err(match status {
            412 => ArmError::Stale { path: shown },
            409 => ArmError::Busy {
                path: shown,
                message: format!("{code}: {message}"),
                retry_after,
            },
            429 => ArmError::Throttled {
                path: shown,
                message: format!("{code}: {message}"),
                retry_after,
            },
            403 => ArmError::Forbidden {
                path: shown,
                code,
                message,
            },
            401 => ArmError::Unauthorized {
                path: shown,
                message: format!("{code}: {message}"),
            },
            _ => ArmError::Status {
                path: shown,
                status,
                code,
                message,
            },
        })
    }
}

/// ARM's `{"error":{code,message}}`, or a flat `{code,message}`.
fn error_of(body: Option<&Value>, text: &str) -> (String, String) {
    let e = body.map(|b| b.get("error").unwrap_or(b));
    let s = |k: &str| {
        e.and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let code = s("code").unwrap_or_else(|| "no code".into());
    let mut message = s("message").unwrap_or_else(|| text.chars().take(300).collect());
    if let Some(details) = e.and_then(|e| e.get("details")).and_then(Value::as_array) {
        for d in details.iter().take(5) {
            if let Some(m) = d.get("message").and_then(Value::as_str) {
                message.push_str("; ");
                message.push_str(m);
            }
        }
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_nested_flat_and_detailed() {
        let (c, m) = error_of(
            Some(&json!({"error": {"code": "Conflict", "message": "busy",
            "details": [{"message": "scale running"}]}})),
            "",
        );
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("Conflict", "busy; scale running")
        );
        let (c, m) = error_of(Some(&json!({"code": "X", "message": "flat"})), "");
        assert_eq!((c.as_str(), m.as_str()), ("X", "flat"));
        let (c, m) = error_of(None, "<html>gateway</html>");
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("no code", "<html>gateway</html>")
        );
    }

    #[test]
    fn urls_stay_on_the_arm_endpoint() {
        let arm = Arm::new(
            "http://127.0.0.1:9",
            Arc::new(super::super::StaticToken::new("t")),
        )
        .unwrap();
        assert_eq!(arm.url("/x?a=1").unwrap(), "http://127.0.0.1:9/x?a=1");
        assert!(arm.url("http://127.0.0.1:9/op/1").is_ok());
        assert!(matches!(
            arm.url("http://127.0.0.1:99/op"),
            Err(ArmError::ForeignUrl { .. })
        ));
        assert!(matches!(
            arm.url("https://evil.example/op"),
            Err(ArmError::ForeignUrl { .. })
        ));
    }
}
