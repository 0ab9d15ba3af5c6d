//! Live Azure (the I/O edge for everything apimedic reads from Azure, and
//! the sign-in its writers share): `credential` gives a bearer token for a
//! scope (Azure CLI, service principal, workload or managed identity,
//! through the official `azure_identity` crate), `arm` is the read-only
//! Resource Manager client (paging, throttling, budget, per-resource
//! errors). Other clients (Log Analytics, Data Explorer, remediation
//! writes) take a token from the same `Credential`.
//!
//! Endpoints are configurable so tests and sovereign clouds can point
//! elsewhere: `APIMEDIC_ARM_URL` (ARM, Azure Monitor, Resource Graph),
//! `APIMEDIC_LOGS_URL` (the Log Analytics query API) and the standard
//! `AZURE_AUTHORITY_HOST` (sign-in); `APIMEDIC_AZURE_CA_FILE` adds trusted
//! roots (a TLS-inspecting proxy, a loopback stand-in).

pub mod arm;
pub mod cert;
pub mod credential;
pub mod history;
pub mod live;
pub mod pull;
pub mod target;

pub use arm::{ArmClient, ArmError, ArmOptions, Failure, Role};
pub use credential::{
    ARM_SCOPE, AuthError, AuthProblem, Credential, CredentialOptions, LOG_ANALYTICS_SCOPE,
    Principal, SignIn, Token, adx_scope,
};

/// The default Log Analytics query endpoint; `APIMEDIC_LOGS_URL` overrides it.
pub const DEFAULT_LOGS_URL: &str = "https://api.loganalytics.io";

/// The Log Analytics query endpoint in force (`APIMEDIC_LOGS_URL` or the default).
pub fn logs_url() -> String {
    std::env::var("APIMEDIC_LOGS_URL")
        .ok()
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_LOGS_URL.to_string())
}

/// The ARM endpoint in force (`APIMEDIC_ARM_URL` or the default).
pub fn arm_url() -> String {
    std::env::var("APIMEDIC_ARM_URL")
        .ok()
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| arm::DEFAULT_ARM_URL.to_string())
}
