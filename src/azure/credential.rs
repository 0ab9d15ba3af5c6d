//! Sign-in to Azure: one `Credential` gives a bearer token for a scope (ARM,
//! Log Analytics, a Data Explorer cluster), cached per scope and refreshed
//! five minutes before it expires, with the principal it belongs to for the
//! audit trail.
//!
//! The token exchanges are the official `azure_identity` crate's, sent
//! through the crate's one reqwest client (`crate::http`, rustls over ring):
//! Azure CLI (`az account get-access-token`, the `az` found on PATH), a
//! service principal's client secret, workload identity (a federated token
//! file), managed identity. The client certificate flow of `azure_identity`
//! needs OpenSSL, a second TLS stack; here the certificate is read from the
//! PEM in `AZURE_CLIENT_CERTIFICATE_PATH` and the signed client assertion is
//! made with ring (`cert.rs`), then exchanged by `azure_identity`'s
//! `ClientAssertionCredential`.
//!
//! Which sign-in is used is decided by a pure function of the environment
//! (`choose`): a pinned method (`--sign-in`, `APIMEDIC_AZURE_SIGN_IN`), else
//! a service principal when `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and a secret
//! or certificate are set, else workload identity when
//! `AZURE_FEDERATED_TOKEN_FILE` is set, else managed identity when the
//! hosting environment advertises an identity endpoint (`IDENTITY_ENDPOINT`
//! and `IDENTITY_HEADER`: App Service, Functions, Container Apps), else the
//! Azure CLI. The instance-metadata address (169.254.169.254) is only used
//! when managed identity is asked for by name: it is never probed blindly.
//! `AZURE_AUTHORITY_HOST` (sovereign clouds, test stand-ins) is honoured.
//!
//! Every failure says what to do next (`AuthError::hint`): not signed in,
//! sign-in expired, wrong tenant, bad secret, tool missing.

use super::cert::CertificateAssertion;
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The scope of Azure Resource Manager (APIM, Network, Monitor metrics,
/// activity log, autoscale, Resource Graph).
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The scope of the Log Analytics query API.
pub const LOG_ANALYTICS_SCOPE: &str = "https://api.loganalytics.io/.default";

/// The scope of an Azure Data Explorer cluster (`https://c.region.kusto.windows.net`).
pub fn adx_scope(cluster_url: &str) -> String {
    format!("{}/.default", cluster_url.trim_end_matches('/'))
}

/// A token is renewed when it has less than this left.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// How a token is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignIn {
    AzureCli,
    ClientSecret,
    ClientCertificate,
    WorkloadIdentity,
    ManagedIdentity,
}

impl SignIn {
    pub const ALL: [SignIn; 5] = [
        SignIn::AzureCli,
        SignIn::ClientSecret,
        SignIn::ClientCertificate,
        SignIn::WorkloadIdentity,
        SignIn::ManagedIdentity,
    ];

    /// The name accepted by `--sign-in` and `APIMEDIC_AZURE_SIGN_IN`.
    pub fn name(self) -> &'static str {
        match self {
            SignIn::AzureCli => "azure-cli",
            SignIn::ClientSecret => "client-secret",
            SignIn::ClientCertificate => "client-certificate",
            SignIn::WorkloadIdentity => "workload-identity",
            SignIn::ManagedIdentity => "managed-identity",
        }
    }

    /// Shown in messages: "Azure CLI sign-in".
    pub fn label(self) -> &'static str {
        match self {
            SignIn::AzureCli => "Azure CLI",
            SignIn::ClientSecret => "service principal (client secret)",
            SignIn::ClientCertificate => "service principal (client certificate)",
            SignIn::WorkloadIdentity => "workload identity",
            SignIn::ManagedIdentity => "managed identity",
        }
    }

    pub fn parse(s: &str) -> Option<SignIn> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "cli" | "az" => "azure-cli",
            "secret" | "sp" => "client-secret",
            "certificate" | "cert" => "client-certificate",
            "workload" => "workload-identity",
            "msi" | "managed" => "managed-identity",
            other => other,
        };
        SignIn::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl std::fmt::Display for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The environment variables sign-in reads, captured once (tests pass their
/// own instead of touching the process environment).
#[derive(Clone, Debug, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    const NAMES: [&'static str; 14] = [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "APIMEDIC_AZURE_SIGN_IN",
        "APIMEDIC_AZURE_CA_FILE",
        "PATH",
    ];

    /// The variables above, as the process has them (empty ones dropped).
    pub fn from_process() -> Env {
        Env(Self::NAMES
            .iter()
            .filter_map(|n| {
                let v = std::env::var(n).ok()?;
                (!v.trim().is_empty()).then(|| (n.to_string(), v))
            })
            .collect())
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env(pairs
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn require(&self, name: &str, method: SignIn) -> Result<String, AuthError> {
        self.get(name).map(str::to_string).ok_or_else(|| {
            AuthError::new(
                method,
                AuthProblem::Misconfigured,
                format!("{name} is not set"),
            )
        })
    }
}

/// What `choose` decided and why (shown by `--verbose` and in errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub method: SignIn,
    pub reason: String,
}

/// Which sign-in to use for this environment (pure). `pinned` wins, then
/// `APIMEDIC_AZURE_SIGN_IN`, then the first whose variables are all set.
pub fn choose(env: &Env, pinned: Option<SignIn>) -> Result<Choice, AuthError> {
    if let Some(method) = pinned {
        return Ok(Choice {
            method,
            reason: "asked for with --sign-in".into(),
        });
    }
    if let Some(v) = env.get("APIMEDIC_AZURE_SIGN_IN") {
        let method = SignIn::parse(v).ok_or_else(|| {
            AuthError::new(
                SignIn::AzureCli,
                AuthProblem::Misconfigured,
                format!(
                    "APIMEDIC_AZURE_SIGN_IN={v} is not a sign-in method; use one of {}",
                    SignIn::ALL.map(SignIn::name).join(", ")
                ),
            )
        })?;
        return Ok(Choice {
            method,
            reason: format!("APIMEDIC_AZURE_SIGN_IN={}", method.name()),
        });
    }
    let sp = env.has("AZURE_TENANT_ID") && env.has("AZURE_CLIENT_ID");
    if sp && env.has("AZURE_CLIENT_SECRET") {
        return Ok(Choice {
            method: SignIn::ClientSecret,
            reason: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are set".into(),
        });
    }
    if sp && env.has("AZURE_CLIENT_CERTIFICATE_PATH") {
        return Ok(Choice {
            method: SignIn::ClientCertificate,
            reason: "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH are set"
                .into(),
        });
    }
    if sp && env.has("AZURE_FEDERATED_TOKEN_FILE") {
        return Ok(Choice {
            method: SignIn::WorkloadIdentity,
            reason: "AZURE_FEDERATED_TOKEN_FILE is set (workload identity)".into(),
        });
    }
    if env.has("IDENTITY_ENDPOINT") && env.has("IDENTITY_HEADER") {
        return Ok(Choice {
            method: SignIn::ManagedIdentity,
            reason: "IDENTITY_ENDPOINT and IDENTITY_HEADER are set (App Service, Functions or \
                     Container Apps managed identity)"
                .into(),
        });
    }
    Ok(Choice {
        method: SignIn::AzureCli,
        reason: "no service principal, workload or managed identity in the environment".into(),
    })
}

/// Why sign-in failed, for the hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthProblem {
    /// `az` has no account: `az login`.
    NotSignedIn,
    /// The sign-in (refresh token, CLI session) has expired.
    Expired,
    /// The tenant does not exist or the app is not in it.
    WrongTenant,
    /// The client secret or certificate was refused.
    BadSecret,
    /// A variable or file the method needs is missing or unreadable.
    Misconfigured,
    /// `az` is not on PATH.
    ToolMissing,
    /// The token endpoint could not be reached.
    Unreachable,
    /// The managed identity endpoint has no identity for this resource.
    NoIdentity,
    /// Anything else the identity service said.
    Refused,
}

/// A sign-in failure: which method, what went wrong (never a secret), and
/// what to do.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{} sign-in failed: {detail}\n  what to do: {}", method.label(), self.hint())]
pub struct AuthError {
    pub method: SignIn,
    pub problem: AuthProblem,
    pub detail: String,
}

impl AuthError {
    pub fn new(method: SignIn, problem: AuthProblem, detail: impl Into<String>) -> AuthError {
        AuthError {
            method,
            problem,
            detail: detail.into(),
        }
    }

    /// The next step for a person.
    pub fn hint(&self) -> String {
        use AuthProblem::*;
        let other = "or sign in another way: AZURE_TENANT_ID + AZURE_CLIENT_ID + \
                     AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) for a service \
                     principal; --sign-in managed-identity on an Azure host";
        match (self.problem, self.method) {
            (NotSignedIn, _) => format!("run `az login` (add --tenant TENANT if needed), {other}"),
            (Expired, SignIn::AzureCli) => {
                "your Azure CLI sign-in has expired: run `az login` again".into()
            }
            (Expired, _) => "the credential has expired: renew the secret, certificate or \
                             federated token and try again"
                .into(),
            (WrongTenant, SignIn::AzureCli) => "the tenant is wrong or your account is not in \
                 it: check --tenant (or run `az login --tenant TENANT`); `az account show` \
                 prints the tenant you are signed in to"
                .into(),
            (WrongTenant, _) => "the tenant or application is wrong: check AZURE_TENANT_ID and \
                 AZURE_CLIENT_ID (the app registration must live in that tenant)"
                .into(),
            (BadSecret, SignIn::ClientCertificate) => "the certificate was refused: check \
                 AZURE_CLIENT_CERTIFICATE_PATH holds the certificate uploaded to the app \
                 registration, and that it has not expired"
                .into(),
            (BadSecret, _) => "the client secret was refused: check AZURE_CLIENT_SECRET is the \
                 secret's value (not its id) and has not expired"
                .into(),
            (Misconfigured, SignIn::ClientCertificate) => "set AZURE_TENANT_ID, AZURE_CLIENT_ID \
                 and AZURE_CLIENT_CERTIFICATE_PATH to a PEM file with the certificate and its \
                 private key (a .pfx converts with `openssl pkcs12 -in cert.pfx -out cert.pem \
                 -nodes`)"
                .into(),
            (Misconfigured, SignIn::WorkloadIdentity) => "set AZURE_TENANT_ID, AZURE_CLIENT_ID \
                 and AZURE_FEDERATED_TOKEN_FILE (the AKS workload identity webhook sets them)"
                .into(),
            (Misconfigured, SignIn::ClientSecret) => {
                "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET".into()
            }
            (Misconfigured, _) => format!(
                "fix the setting named above; sign-in methods: {}",
                SignIn::ALL.map(SignIn::name).join(", ")
            ),
            (ToolMissing, _) => format!(
                "install the Azure CLI (https://aka.ms/installazurecli) and run `az login`, {other}"
            ),
            (Unreachable, _) => "check the network path to the sign-in endpoint \
                 (AZURE_AUTHORITY_HOST, HTTPS_PROXY, APIMEDIC_AZURE_CA_FILE for a \
                 TLS-inspecting proxy)"
                .into(),
            (NoIdentity, _) => "this host has no managed identity (or not the one in \
                 AZURE_CLIENT_ID): assign one to the resource, or sign in another way"
                .into(),
            (Refused, _) => format!("read the message above; {other}"),
        }
    }
}

/// Who a token was issued to, read from its claims (not verified: for the
/// audit trail and messages, never for a security decision).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    /// A user's sign-in name, or an application's display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

impl Principal {
    /// The claims of a JWT access token; `None` when it is not a JWT.
    pub fn from_jwt(token: &str) -> Option<Principal> {
        let payload = token.split('.').nth(1)?;
        let bytes = super::cert::base64url_decode(payload)?;
        let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let p = Principal {
            name: s("upn")
                .or_else(|| s("unique_name"))
                .or_else(|| s("preferred_username"))
                .or_else(|| s("app_displayname")),
            object_id: s("oid"),
            app_id: s("appid").or_else(|| s("azp")),
            tenant_id: s("tid"),
        };
        (p != Principal::default()).then_some(p)
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, &self.object_id, &self.app_id) {
            (Some(n), Some(o), _) => write!(f, "{n} (object id {o})"),
            (Some(n), None, _) => write!(f, "{n}"),
            (None, Some(o), _) => write!(f, "object id {o}"),
            (None, None, Some(a)) => write!(f, "application {a}"),
            (None, None, None) => write!(f, "an unknown principal"),
        }
    }
}

/// A bearer token. `Debug` never shows it.
#[derive(Clone)]
pub struct Token {
    secret: String,
    /// Seconds since the epoch.
    pub expires_on: i64,
    pub principal: Option<Principal>,
}

impl Token {
    /// The value for an `Authorization` header: `Bearer ...`.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.secret)
    }

    /// The raw token, for clients that build their own header.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    fn fresh(&self, now: i64) -> bool {
        self.expires_on - now > REFRESH_BEFORE.as_secs() as i64
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("expires_on", &self.expires_on)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

/// How to sign in.
#[derive(Clone, Debug, Default)]
pub struct CredentialOptions {
    /// Use this method whatever the environment says.
    pub sign_in: Option<SignIn>,
    /// The tenant for the Azure CLI (`az ... --tenant`).
    pub tenant: Option<String>,
    /// The environment to read (default: the process's).
    pub env: Option<Env>,
    /// Extra root certificates (PEM) for the sign-in endpoints, e.g. a
    /// TLS-inspecting proxy's or a test stand-in's; also read from
    /// `APIMEDIC_AZURE_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// Longest wait for one token (the CLI is killed after it).
    pub timeout: Option<Duration>,
}

/// Gives bearer tokens for scopes; shared (`Arc`) by every client.
pub struct Credential {
    choice: Choice,
    env: Env,
    options: CredentialOptions,
    http: reqwest::Client,
    inner: Mutex<Arc<dyn TokenCredential>>,
    cache: tokio::sync::Mutex<HashMap<String, Token>>,
    /// Tokens fetched (not served from the cache), for tests and benchmarks.
    fetched: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("choice", &self.choice)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Chooses a sign-in method (see `choose`) and prepares it. Nothing is
    /// sent until the first `token` call.
    pub fn new(options: CredentialOptions) -> Result<Arc<Credential>, AuthError> {
        let env = options.env.clone().unwrap_or_else(Env::from_process);
        let choice = choose(&env, options.sign_in)?;
        let ca = options
            .ca_file
            .clone()
            .or_else(|| env.get("APIMEDIC_AZURE_CA_FILE").map(PathBuf::from));
        let timeout = options.timeout.unwrap_or(Duration::from_secs(30));
        let http = crate::http::client_builder(ca.as_deref())
            .and_then(|b| {
                b.timeout(timeout)
                    .connect_timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))
            })
            .map_err(|e| AuthError::new(choice.method, AuthProblem::Misconfigured, e))?;
        let inner = build(choice.method, &env, &options, &http)?;
        Ok(Arc::new(Credential {
            choice,
            env,
            options,
            http,
            inner: Mutex::new(inner),
            cache: tokio::sync::Mutex::new(HashMap::new()),
            fetched: 0.into(),
        }))
    }

    /// The method in use and why it was chosen.
    pub fn choice(&self) -> &Choice {
        &self.choice
    }

    /// How many tokens were fetched from the identity service or the CLI
    /// (cache hits not counted).
    pub fn fetched(&self) -> u64 {
        self.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A token for `scope` (`ARM_SCOPE`, `LOG_ANALYTICS_SCOPE`,
    /// `adx_scope(..)`): the cached one while it has more than five minutes
    /// left, else a new one.
    pub async fn token(&self, scope: &str) -> Result<Token, AuthError> {
        let mut cache = self.cache.lock().await;
        let now = now_secs();
        if let Some(t) = cache.get(scope).filter(|t| t.fresh(now)) {
            return Ok(t.clone());
        }
        let inner = Arc::clone(&self.inner.lock().unwrap_or_else(|e| e.into_inner()));
        let method = self.choice.method;
        let limit = self.options.timeout.unwrap_or(Duration::from_secs(30)) + REFRESH_SLACK;
        let got = tokio::time::timeout(limit, inner.get_token(&[scope], None))
            .await
            .map_err(|_| {
                AuthError::new(
                    method,
                    AuthProblem::Unreachable,
                    format!("no token after {} s", limit.as_secs()),
                )
            })?
            .map_err(|e| classify(method, &e))?;
        self.fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let secret = got.token.secret().to_string();
        let token = Token {
            principal: Principal::from_jwt(&secret),
            secret,
            expires_on: got.expires_on.unix_timestamp(),
        };
        cache.insert(scope.to_string(), token.clone());
        Ok(token)
    }

    /// Forgets `refused` (the token a service answered 401 to) so the next
    /// `token` call for `scope` gets a new one. When several requests were
    /// refused the same token at once, only the first forgets it; the others
    /// find the new one. The inner credential is rebuilt because
    /// `azure_identity`'s own caches would hand back the same token.
    pub async fn invalidate(&self, scope: &str, refused: &Token) {
        let mut cache = self.cache.lock().await;
        if cache.get(scope).is_some_and(|t| t.secret == refused.secret) {
            cache.remove(scope);
            if let Ok(fresh) = build(self.choice.method, &self.env, &self.options, &self.http) {
                *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
            }
        }
    }

    /// Who the tokens are issued to, for the audit trail (from the ARM
    /// token's claims).
    pub async fn principal(&self) -> Result<Option<Principal>, AuthError> {
        Ok(self.token(ARM_SCOPE).await?.principal)
    }
}

/// The azure_identity pipeline's own retries run inside the token timeout.
const REFRESH_SLACK: Duration = Duration::from_secs(5);

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The azure_identity options every HTTP-based credential gets: our
/// transport, a short retry, and the authority host from the environment.
fn client_options(env: &Env, http: &reqwest::Client) -> ClientOptions {
    let mut o = ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            max_retries: 2,
            ..Default::default()
        }),
        ..Default::default()
    };
    if let Some(host) = env.get("AZURE_AUTHORITY_HOST") {
        let mut custom = azure_core::cloud::CustomConfiguration::default();
        custom.authority_host = host.trim_end_matches('/').to_string();
        o.cloud = Some(Arc::new(custom.into()));
    }
    o
}

fn build(
    method: SignIn,
    env: &Env,
    options: &CredentialOptions,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let fail =
        |e: azure_core::Error| AuthError::new(method, AuthProblem::Misconfigured, e.to_string());
    Ok(match method {
        SignIn::AzureCli => AzureCliCredential::new(Some(AzureCliCredentialOptions {
            tenant_id: options.tenant.clone(),
            executor: Some(Arc::new(CliExecutor {
                path: env.get("PATH").map(str::to_string),
                timeout: options.timeout.unwrap_or(Duration::from_secs(30)),
            })),
            ..Default::default()
        }))
        .map_err(fail)?,
        SignIn::ClientSecret => {
            let tenant = env.require("AZURE_TENANT_ID", method)?;
            let client = env.require("AZURE_CLIENT_ID", method)?;
            let secret = env.require("AZURE_CLIENT_SECRET", method)?;
            ClientSecretCredential::new(
                &tenant,
                client,
                Secret::new(secret),
                Some(ClientSecretCredentialOptions {
                    client_options: client_options(env, http),
                }),
            )
            .map_err(fail)?
        }
        SignIn::ClientCertificate => {
            let tenant = env.require("AZURE_TENANT_ID", method)?;
            let client = env.require("AZURE_CLIENT_ID", method)?;
            let path = env.require("AZURE_CLIENT_CERTIFICATE_PATH", method)?;
            let chain = env
                .get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
                .is_some_and(|v| matches!(v.trim(), "1" | "true" | "True" | "TRUE"));
            let authority = env
                .get("AZURE_AUTHORITY_HOST")
                .unwrap_or("https://login.microsoftonline.com")
                .trim_end_matches('/')
                .to_string();
            let audience = format!("{authority}/{tenant}/oauth2/v2.0/token");
            let assertion = CertificateAssertion::from_pem_file(
                std::path::Path::new(&path),
                &client,
                &audience,
                chain,
            )
            .map_err(|e| AuthError::new(method, AuthProblem::Misconfigured, e))?;
            ClientAssertionCredential::new(
                tenant,
                client,
                assertion,
                Some(ClientAssertionCredentialOptions {
                    client_options: client_options(env, http),
                }),
            )
            .map_err(fail)?
        }
        SignIn::WorkloadIdentity => {
            let tenant = env.require("AZURE_TENANT_ID", method)?;
            let client = env.require("AZURE_CLIENT_ID", method)?;
            let file = env.require("AZURE_FEDERATED_TOKEN_FILE", method)?;
            WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: client_options(env, http),
                },
                client_id: Some(client),
                tenant_id: Some(tenant),
                token_file_path: Some(PathBuf::from(file)),
            }))
            .map_err(fail)?
        }
        SignIn::ManagedIdentity => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: env
                    .get("AZURE_CLIENT_ID")
                    .map(|id| UserAssignedId::ClientId(id.to_string())),
                client_options: client_options(env, http),
            }))
            .map_err(fail)?
        }
    })
}

/// Runs `az` for `AzureCliCredential`: with the PATH captured in `Env`, a
/// time limit (the process is killed after it), and stdout kept in memory
/// only (it holds the token).
#[derive(Debug)]
struct CliExecutor {
    path: Option<String>,
    timeout: Duration,
}

#[async_trait::async_trait]
impl azure_identity::Executor for CliExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> std::io::Result<std::process::Output> {
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(p) = &self.path {
            cmd.env("PATH", p);
        }
        match tokio::time::timeout(self.timeout, cmd.output()).await {
            Ok(out) => out,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "`az account get-access-token` did not answer within {} s",
                    self.timeout.as_secs()
                ),
            )),
        }
    }
}

/// Maps an azure_identity error to what went wrong (pure over its text and
/// the Entra error codes it carries).
pub fn classify(method: SignIn, err: &azure_core::Error) -> AuthError {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    if let azure_core::error::ErrorKind::HttpResponse {
        error_code: Some(code),
        ..
    } = err.kind()
        && !text.contains(code.as_str())
    {
        text.push_str(&format!(" (AADSTS codes {code})"));
    }
    classify_text(method, &text)
}

/// `classify` over a message (tests feed the real texts).
pub fn classify_text(method: SignIn, text: &str) -> AuthError {
    let t = text.to_ascii_lowercase();
    let has = |codes: &[&str]| codes.iter().any(|c| t.contains(c));
    let unreachable = [
        "retry policy expired",
        "error sending request",
        "connection refused",
        "dns error",
        "timed out",
        "did not answer",
        "tcp connect",
        "invalid peer certificate",
        "unknownissuer",
    ];
    let problem = if has(&unreachable) {
        AuthProblem::Unreachable
    } else if has(&["please run 'az login'", "az login", "no subscription found"])
        && !has(&["expired", "aadsts700082", "aadsts50173"])
    {
        AuthProblem::NotSignedIn
    } else if has(&[
        "aadsts700082",
        "aadsts50173",
        "aadsts700024",
        "aadsts7000222",
        "expired",
    ]) {
        AuthProblem::Expired
    } else if has(&[
        "aadsts90002",
        "aadsts700016",
        "aadsts50020",
        "aadsts90072",
        "tenant",
        "90002",
        "700016",
    ]) {
        AuthProblem::WrongTenant
    } else if has(&[
        "aadsts7000215",
        "aadsts700027",
        "7000215",
        "700027",
        "invalid client secret",
    ]) {
        AuthProblem::BadSecret
    } else if has(&[
        "not found on path",
        "wasn't found on path",
        "command not found",
    ]) {
        AuthProblem::ToolMissing
    } else if has(&[
        "identity not found",
        "has not been assigned",
        "no managed identity",
    ]) {
        AuthProblem::NoIdentity
    } else {
        AuthProblem::Refused
    };
    AuthError::new(method, problem, one_line(text))
}

/// The message on one line, long tails cut (CLI stderr can be long).
fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("To troubleshoot"))
        .collect::<Vec<_>>()
        .join(" ");
    match joined.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &joined[..i]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_follows_the_environment() {
        let c = |pairs: &[(&str, &str)]| choose(&Env::from_pairs(pairs.iter().copied()), None);
        assert_eq!(c(&[]).unwrap().method, SignIn::AzureCli);
        let sp = [
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
        ];
        assert_eq!(c(&sp).unwrap().method, SignIn::ClientSecret);
        assert_eq!(
            c(&[
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_CLIENT_CERTIFICATE_PATH", "/x.pem")
            ])
            .unwrap()
            .method,
            SignIn::ClientCertificate
        );
        assert_eq!(
            c(&[
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token")
            ])
            .unwrap()
            .method,
            SignIn::WorkloadIdentity
        );
        // A client id alone is a user-assigned identity's, not a service principal.
        assert_eq!(
            c(&[("AZURE_CLIENT_ID", "c")]).unwrap().method,
            SignIn::AzureCli
        );
        // Managed identity only where the host advertises its endpoint.
        assert_eq!(
            c(&[("IDENTITY_ENDPOINT", "http://127.0.0.1:41/msi")])
                .unwrap()
                .method,
            SignIn::AzureCli
        );
        assert_eq!(
            c(&[
                ("IDENTITY_ENDPOINT", "http://127.0.0.1:41/msi"),
                ("IDENTITY_HEADER", "h")
            ])
            .unwrap()
            .method,
            SignIn::ManagedIdentity
        );
        // Pinned wins; the variable is next; a bad value is an error naming it.
        assert_eq!(
            choose(
                &Env::from_pairs(sp.iter().copied()),
                Some(SignIn::ManagedIdentity)
            )
            .unwrap()
            .method,
            SignIn::ManagedIdentity
        );
        assert_eq!(
            c(&[("APIMEDIC_AZURE_SIGN_IN", "cli"), sp[0], sp[1], sp[2]])
                .unwrap()
                .method,
            SignIn::AzureCli
        );
        let e = c(&[("APIMEDIC_AZURE_SIGN_IN", "kerberos")]).unwrap_err();
        assert!(
            e.to_string().contains("APIMEDIC_AZURE_SIGN_IN=kerberos"),
            "{e}"
        );
    }

    #[test]
    fn failures_say_what_to_do() {
        let e = classify_text(
            SignIn::AzureCli,
            "AzureCliCredential authentication failed. ERROR: Please run 'az login' to setup account.",
        );
        assert_eq!(e.problem, AuthProblem::NotSignedIn);
        assert!(e.to_string().contains("run `az login`"), "{e}");
        let e = classify_text(
            SignIn::AzureCli,
            "ERROR: AADSTS700082: The refresh token has expired due to inactivity.",
        );
        assert_eq!(e.problem, AuthProblem::Expired);
        assert!(e.hint().contains("az login"));
        let e = classify_text(
            SignIn::ClientSecret,
            "AADSTS90002: Tenant 'contoso' not found. (AADSTS codes 90002)",
        );
        assert_eq!(e.problem, AuthProblem::WrongTenant);
        assert!(e.hint().contains("AZURE_TENANT_ID"));
        let e = classify_text(
            SignIn::ClientSecret,
            "AADSTS7000215: Invalid client secret provided.",
        );
        assert_eq!(e.problem, AuthProblem::BadSecret);
        let e = classify_text(SignIn::AzureCli, "az not found on PATH");
        assert_eq!(e.problem, AuthProblem::ToolMissing);
        let e = classify_text(SignIn::ClientSecret, "a\n\nb\nTo troubleshoot, visit x");
        assert_eq!(e.detail, "a b");
    }

    #[test]
    fn a_jwt_names_its_principal_and_debug_hides_the_token() {
        // {"alg":"none"}.{"upn":"alice@contoso.com","oid":"o-1","tid":"t-1"}.
        let jwt = "eyJhbGciOiJub25lIn0.eyJ1cG4iOiJhbGljZUBjb250b3NvLmNvbSIsIm9pZCI6Im8tMSIsInRpZCI6InQtMSJ9.";
        let p = Principal::from_jwt(jwt).unwrap();
        assert_eq!(p.name.as_deref(), Some("alice@contoso.com"));
        assert_eq!(p.object_id.as_deref(), Some("o-1"));
        assert_eq!(p.to_string(), "alice@contoso.com (object id o-1)");
        assert!(Principal::from_jwt("opaque-token").is_none());
        let t = Token {
            secret: jwt.into(),
            expires_on: 0,
            principal: Some(p),
        };
        assert!(!format!("{t:?}").contains("eyJ"));
        assert_eq!(t.authorization(), format!("Bearer {jwt}"));
    }

    #[test]
    fn tokens_are_fresh_until_five_minutes_before_expiry() {
        let t = Token {
            secret: String::new(),
            expires_on: 1_000,
            principal: None,
        };
        assert!(t.fresh(600));
        assert!(!t.fresh(700));
        assert!(!t.fresh(2_000));
    }
}
