//! Which API Management instances to read: one service id (`--azure`), a
//! subscription narrowed by resource group and service name, or everything
//! the principal can see (`--all`), the last two discovered through Azure
//! Resource Graph. A config file can name instances (`[[instances]]`) for
//! the daemon and the TUI.

use super::arm::{ArmClient, ArmError, Failure, Role, api_version};
use super::pull::{ServiceId, is_safe_segment};
use serde::Deserialize;
use serde_json::{Value, json};

/// What the user pointed apimedic at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One service, by id.
    Service(ServiceId),
    /// Services of a subscription, maybe one resource group, maybe one name.
    Scope {
        subscription: String,
        resource_group: Option<String>,
        service: Option<String>,
    },
    /// Every service the principal can read.
    All,
}

impl Target {
    /// From the flags: `--azure ID`, or `--subscription S [--resource-group
    /// RG] [--service NAME]`, or `--all`.
    pub fn from_flags(
        azure: Option<&str>,
        subscription: Option<&str>,
        resource_group: Option<&str>,
        service: Option<&str>,
        all: bool,
    ) -> Result<Option<Target>, String> {
        let check = |what: &str, v: &str| {
            if v.is_empty() || !is_safe_segment(v) {
                Err(format!(
                    "{what} `{v}` has characters Azure does not allow (letters, digits, - _ . ( ) only)"
                ))
            } else {
                Ok(v.to_string())
            }
        };
        match (azure, subscription, all) {
            (Some(id), None, false) => {
                if resource_group.is_some() || service.is_some() {
                    return Err(
                        "--azure takes a whole service id; drop --resource-group/--service".into(),
                    );
                }
                Ok(Some(Target::Service(ServiceId::parse(id)?)))
            }
            (None, Some(s), false) => {
                let subscription = check("subscription", s)?;
                let resource_group = resource_group
                    .map(|g| check("resource group", g))
                    .transpose()?;
                let service = service.map(|n| check("service name", n)).transpose()?;
                if let (Some(rg), Some(name)) = (&resource_group, &service) {
                    return Ok(Some(Target::Service(ServiceId {
                        subscription,
                        resource_group: rg.clone(),
                        name: name.clone(),
                    })));
                }
                Ok(Some(Target::Scope {
                    subscription,
                    resource_group,
                    service,
                }))
            }
            (None, None, true) => Ok(Some(Target::All)),
            (None, None, false) => {
                if resource_group.is_some() || service.is_some() {
                    return Err("--resource-group and --service need --subscription".into());
                }
                Ok(None)
            }
            _ => Err("give one of --azure ID, --subscription S, or --all".into()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Service(id) => id.id(),
            Target::Scope {
                subscription,
                resource_group,
                service,
            } => {
                let mut s = format!("subscription {subscription}");
                if let Some(g) = resource_group {
                    s.push_str(&format!(", resource group {g}"));
                }
                if let Some(n) = service {
                    s.push_str(&format!(", service {n}"));
                }
                s
            }
            Target::All => "every API Management instance you can read".into(),
        }
    }
}

/// The Resource Graph query that finds API Management services (pure;
/// values were checked by `Target::from_flags`, and are checked again).
pub fn discovery_query(
    resource_group: Option<&str>,
    service: Option<&str>,
) -> Result<String, String> {
    let mut q = String::from("resources | where type =~ 'microsoft.apimanagement/service'");
    for (field, v) in [("resourceGroup", resource_group), ("name", service)] {
        if let Some(v) = v {
            if !is_safe_segment(v) {
                return Err(format!("`{v}` cannot be used in a query"));
            }
            q.push_str(&format!(" | where {field} =~ '{v}'"));
        }
    }
    q.push_str(
        " | project id, name, resourceGroup, subscriptionId, location, sku | order by id asc",
    );
    Ok(q)
}

/// The services a target names (discovered through Resource Graph unless it
/// is one service id). An empty answer is not an error here; the caller
/// says "no instance found" with the target.
pub async fn resolve(client: &ArmClient, target: &Target) -> Result<Vec<ServiceId>, ArmError> {
    let (subs, rg, name) = match target {
        Target::Service(id) => return Ok(vec![id.clone()]),
        Target::Scope {
            subscription,
            resource_group,
            service,
        } => (
            Some(vec![subscription.clone()]),
            resource_group.as_deref(),
            service.as_deref(),
        ),
        Target::All => (None, None, None),
    };
    let query = discovery_query(rg, name).map_err(|e| ArmError {
        resource: "Resource Graph".into(),
        failure: Failure::Refused,
        status: None,
        code: None,
        message: e,
    })?;
    let path = format!(
        "/providers/Microsoft.ResourceGraph/resources?api-version={}",
        api_version::RESOURCE_GRAPH
    );
    let mut out = Vec::new();
    let mut skip: Option<String> = None;
    for _ in 0..1000 {
        let mut body =
            json!({"query": query, "options": {"resultFormat": "objectArray", "$top": 1000}});
        if let Some(s) = &subs {
            body["subscriptions"] = json!(s);
        }
        if let Some(t) = &skip {
            body["options"]["$skipToken"] = json!(t);
        }
        let page = client.post(&path, &body, Role::Reader).await?;
        for row in page
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(Ok(sid)) = row.get("id").and_then(Value::as_str).map(ServiceId::parse) {
                out.push(sid);
            }
        }
        skip = page
            .get("$skipToken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if skip.is_none() {
            break;
        }
    }
    out.sort_by_key(|s| s.id().to_ascii_lowercase());
    out.dedup_by_key(|s| s.id().to_ascii_lowercase());
    Ok(out)
}

/// One `[[instances]]` entry of a config file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// The name shown in alerts and the TUI (`prod-weu`).
    pub name: String,
    /// A service id; or the three below.
    pub azure: Option<String>,
    pub subscription: Option<String>,
    pub resource_group: Option<String>,
    pub service: Option<String>,
}

impl InstanceConfig {
    pub fn target(&self) -> Result<Target, String> {
        Target::from_flags(
            self.azure.as_deref(),
            self.subscription.as_deref(),
            self.resource_group.as_deref(),
            self.service.as_deref(),
            false,
        )
        .and_then(|t| {
            t.ok_or_else(|| {
                "give `azure = \"/subscriptions/...\"` or `subscription = \"...\"`".into()
            })
        })
        .map_err(|e| format!("instance `{}`: {e}", self.name))
    }
}

/// The `[[instances]]` of a TOML file (other tables are ignored here;
/// their owners read them). Errors name the file.
pub fn instances_from_toml(file: &str, text: &str) -> Result<Vec<(String, Target)>, String> {
    #[derive(Deserialize)]
    struct Only {
        #[serde(default)]
        instances: Vec<InstanceConfig>,
    }
    let only: Only = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    only.instances
        .into_iter()
        .map(|i| {
            if !seen.insert(i.name.clone()) {
                return Err(format!("{file}: instance `{}` is listed twice", i.name));
            }
            i.target()
                .map(|t| (i.name, t))
                .map_err(|e| format!("{file}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_make_targets() {
        let t = Target::from_flags(None, Some("sub-1"), Some("rg"), Some("apim"), false)
            .unwrap()
            .unwrap();
        assert!(matches!(t, Target::Service(ref s) if s.name == "apim"));
        let t = Target::from_flags(None, Some("sub-1"), Some("rg"), None, false)
            .unwrap()
            .unwrap();
        assert!(matches!(
            t,
            Target::Scope {
                resource_group: Some(_),
                service: None,
                ..
            }
        ));
        assert_eq!(
            Target::from_flags(None, None, None, None, true).unwrap(),
            Some(Target::All)
        );
        assert_eq!(
            Target::from_flags(None, None, None, None, false).unwrap(),
            None
        );
        assert!(Target::from_flags(None, None, Some("rg"), None, false).is_err());
        assert!(Target::from_flags(Some("/x"), None, None, None, false).is_err());
        assert!(Target::from_flags(None, Some("s"), Some("rg' or 1==1"), None, false).is_err());
        assert!(Target::from_flags(None, Some("s"), None, None, true).is_err());
    }

    #[test]
    fn discovery_queries_are_built_from_checked_values() {
        assert_eq!(
            discovery_query(Some("rg-1"), None).unwrap(),
            "resources | where type =~ 'microsoft.apimanagement/service' | where resourceGroup =~ 'rg-1' | project id, name, resourceGroup, subscriptionId, location, sku | order by id asc"
        );
        assert!(discovery_query(None, Some("x'")).is_err());
    }

    #[test]
    fn instances_are_read_from_a_config_file() {
        let text = r#"
[daemon]
tick = "15s"

[[instances]]
name = "prod-weu"
azure = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim-weu"

[[instances]]
name = "staging"
subscription = "s2"
resource_group = "rg-staging"
"#;
        let got = instances_from_toml("apimedic.toml", text).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "prod-weu");
        assert!(matches!(got[1].1, Target::Scope { .. }));
        let bad = "[[instances]]\nname = \"x\"\nazur = \"typo\"\n";
        let e = instances_from_toml("apimedic.toml", bad).unwrap_err();
        assert!(e.contains("apimedic.toml") && e.contains("azur"), "{e}");
        let twice = "[[instances]]\nname = \"x\"\nall = 1\n";
        assert!(instances_from_toml("f", twice).is_err());
        let dup = "[[instances]]\nname = \"x\"\nsubscription = \"s\"\n[[instances]]\nname = \"x\"\nsubscription = \"t\"\n";
        assert!(instances_from_toml("f", dup).unwrap_err().contains("twice"));
    }
}
