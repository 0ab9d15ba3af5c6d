//! Acting on approved remediations: plan (pure, [`plan`]), dry run, approval
//! binding, execution against ARM ([`arm`], [`exec`]), audit (the hash-chained
//! log in [`crate::audit`]), verification on fresh data ([`verify`]), undo,
//! and the daemon's opt-in autonomy policy ([`autonomy`]).
//!
//! Nothing here runs without a person's approval, except what an autonomy
//! policy file names explicitly. `llm`, `chat`, `tools`, the daemon's alerting
//! and `mcp` never import this module (a test reads the `use` lines), so a
//! model cannot act, by construction. Writes to Azure live here, at the
//! edge, and nowhere else.
//!
//! Surfaces (the CLI, the TUI's approve key) reach execution through
//! [`exec::Engine::apply`] with an [`exec::Approval`] that names the plan
//! hash a person approved.

pub mod arm;
pub mod autonomy;
pub mod exec;
pub mod plan;
pub mod render;
pub mod verify;

use std::future::Future;
use std::pin::Pin;

/// A source of bearer tokens for a scope. The Azure credential (src/azure)
/// implements it; tests use [`StaticToken`] against a loopback stand-in.
pub trait TokenSource: Send + Sync {
    fn token<'a>(
        &'a self,
        scope: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

/// A fixed token (tests; or one pasted from `az account get-access-token`).
/// Its text never appears in output or in `Debug`.
pub struct StaticToken(String);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> StaticToken {
        StaticToken(token.into())
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl TokenSource for StaticToken {
    fn token<'a>(
        &'a self,
        _scope: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
}

/// The shared Azure credential (Azure CLI, service principal, workload or
/// managed identity) gives the tokens for ARM writes.
impl TokenSource for crate::azure::credential::Credential {
    fn token<'a>(
        &'a self,
        scope: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            crate::azure::credential::Credential::token(self, scope)
                .await
                .map(|t| t.secret().to_string())
                .map_err(|e| e.hint())
        })
    }
}

/// The token for ARM writes: a token pasted into `APIMEDIC_ARM_TOKEN`, else
/// the shared Azure credential (src/azure: Azure CLI sign-in, `AZURE_*`
/// service principal, workload or managed identity). Never printed.
pub fn token_source() -> anyhow::Result<std::sync::Arc<dyn TokenSource>> {
    if let Ok(t) = std::env::var("APIMEDIC_ARM_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(std::sync::Arc::new(StaticToken::new(t.trim().to_string())));
    }
    let cred = crate::azure::credential::Credential::new(Default::default())
        .map_err(|e| anyhow::anyhow!("cannot sign in to Azure: {}", e.hint()))?;
    Ok(cred)
}

/// The principal a JWT access token names (`upn`, `unique_name`,
/// `preferred_username`, else `appid`/`azp`, else `oid`) — read from its
/// claims, not verified (ARM verifies it). `None` for opaque tokens.
pub fn principal_of(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = crate::azure::cert::base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_string);
    s("upn")
        .or_else(|| s("unique_name"))
        .or_else(|| s("preferred_username"))
        .or_else(|| s("appid").map(|a| format!("app {a}")))
        .or_else(|| s("azp").map(|a| format!("app {a}")))
        .or_else(|| s("oid").map(|o| format!("object {o}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_from_claims() {
        // {"upn":"oncall@contoso.com"} and {"appid":"1234"}
        let t = "eyJhbGciOiJub25lIn0.eyJ1cG4iOiJvbmNhbGxAY29udG9zby5jb20ifQ.sig";
        assert_eq!(principal_of(t).as_deref(), Some("oncall@contoso.com"));
        let t = "x.eyJhcHBpZCI6IjEyMzQifQ.y";
        assert_eq!(principal_of(t).as_deref(), Some("app 1234"));
        assert_eq!(principal_of("opaque-token"), None);
        assert_eq!(principal_of("a.!!!.c"), None);
    }

    #[test]
    fn static_token_debug_hides_it() {
        assert!(!format!("{:?}", StaticToken::new("secret-value")).contains("secret"));
    }
}
