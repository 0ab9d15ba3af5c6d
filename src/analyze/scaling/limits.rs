//! Tier limits as data: `limits.toml` beside this file, compiled in, read
//! once. Every limit carries its source and certainty so a finding can say
//! how much to trust it. A tier or limit that is absent means "no finding".

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const LIMITS_TOML: &str = include_str!("limits.toml");

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    pub max_units: Option<u32>,
    pub can_scale: Option<bool>,
    /// Autoscale (Azure Monitor autoscale settings) supported.
    pub autoscale: Option<bool>,
    pub source: String,
    /// `documented`, `conflicting`, `unconfirmed` or `issue`.
    pub certainty: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceLimits {
    pub source: String,
    pub certainty: String,
    #[serde(default)]
    pub limits: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub tiers: BTreeMap<String, TierLimits>,
    #[serde(default)]
    pub workspaces_builtin_gateway: WorkspaceLimits,
}

/// `Premium`, `premium`, `Standard V2`, `standardv2` compare equal.
fn same_tier(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    };
    norm(a) == norm(b)
}

impl Limits {
    pub fn parse(text: &str) -> Result<Limits, String> {
        toml::from_str(text).map_err(|e| format!("limits.toml: {e}"))
    }

    pub fn tier(&self, sku: &str) -> Option<&TierLimits> {
        self.tiers
            .iter()
            .find(|(k, _)| same_tier(k, sku))
            .map(|(_, v)| v)
    }

    pub fn workspaces(&self, sku: &str) -> Option<u32> {
        self.workspaces_builtin_gateway
            .limits
            .iter()
            .find(|(k, _)| same_tier(k, sku))
            .map(|(_, v)| *v)
    }
}

/// The built-in limits. A broken data file yields no limits (and fails the
/// unit test below), never a panic.
pub fn limits() -> &'static Limits {
    static LIMITS: OnceLock<Limits> = OnceLock::new();
    LIMITS.get_or_init(|| Limits::parse(LIMITS_TOML).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_parses_with_sources() {
        let l = Limits::parse(LIMITS_TOML).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.tier("Developer").and_then(|t| t.max_units), Some(1));
        assert_eq!(l.tier("standard").and_then(|t| t.max_units), Some(4));
        assert_eq!(
            l.tier("Premium").map(|t| t.certainty.as_str()),
            Some("conflicting")
        );
        assert_eq!(l.tier("Standard V2").and_then(|t| t.max_units), Some(10));
        assert_eq!(l.tier("Basic").and_then(|t| t.max_units), None);
        assert!(l.tier("Isolated").is_none());
        assert_eq!(l.workspaces("Premium"), Some(30));
        assert_eq!(l.workspaces_builtin_gateway.certainty, "issue");
        assert!(l.tiers.values().all(|t| !t.source.is_empty()));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Limits::parse("[tiers.X]\nmax_unit = 3\nsource=\"s\"\ncertainty=\"c\"").is_err());
    }
}
