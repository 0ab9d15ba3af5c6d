//! How a proposal is carried out, exactly (pure): the `az` command a person
//! can paste, the ARM request an executor sends, and the complete document
//! either applies — a whole policy with the one change made, or the NSG
//! rule as ARM JSON. Names the data does not give (a resource group, the
//! service's resource id) become shell variables listed in `needs`; an ARM
//! request is only given when every name in its path is known.

use crate::model::{ArmRequest, Document, DocumentFormat, Nsg, PolicyScope, Snapshot};
use regex::Regex;

/// API versions of the requests built here (GA versions the corpus uses).
pub const APIM_API_VERSION: &str = "2022-08-01";
pub const NETWORK_API_VERSION: &str = "2023-09-01";
const ARM: &str = "https://management.azure.com";

/// What carrying out one action takes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Apply {
    pub command: Option<String>,
    pub request: Option<ArmRequest>,
    pub document: Option<Document>,
    pub needs: Vec<String>,
}

/// Single-quotes a word for a POSIX shell.
pub fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The service's resource id, or the `$APIM_ID` variable and why it is needed.
fn service_id(snapshot: &Snapshot) -> (String, bool, Option<String>) {
    match snapshot
        .service
        .as_ref()
        .and_then(|s| s.resource_id.clone())
        .filter(|r| r.to_ascii_lowercase().contains("/microsoft.apimanagement/service/"))
    {
        Some(rid) => (rid.trim_end_matches('/').to_string(), true, None),
        None => (
            "${APIM_ID}".to_string(),
            false,
            Some(
                "APIM_ID: the service's resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ApiManagement/service/<name>); `az apim show -g <rg> -n <name> --query id -o tsv` prints it"
                    .to_string(),
            ),
        ),
    }
}

/// The ARM path of the policy at a scope, below the service id.
pub fn policy_path(scope: &PolicyScope) -> Option<String> {
    Some(match scope {
        PolicyScope::Global => "/policies/policy".to_string(),
        PolicyScope::Workspace(w) => format!("/workspaces/{w}/policies/policy"),
        PolicyScope::Product(p) => format!("/products/{p}/policies/policy"),
        PolicyScope::Api(a) => format!("/apis/{a}/policies/policy"),
        PolicyScope::Operation(a, o) => format!("/apis/{a}/operations/{o}/policies/policy"),
        PolicyScope::Fragment(f) => format!("/policyFragments/{f}"),
        PolicyScope::Unknown => return None,
    })
}

/// PUT a whole policy document at a scope.
pub fn put_policy(snapshot: &Snapshot, scope: &PolicyScope, xml: &str) -> Apply {
    let Some(sub) = policy_path(scope) else {
        return Apply {
            document: Some(policy_doc(xml)),
            needs: vec!["the policy's scope is unknown: apply the document by hand".into()],
            ..Apply::default()
        };
    };
    let (sid, known, need) = service_id(snapshot);
    let path = format!("{sid}{sub}?api-version={APIM_API_VERSION}");
    let body = serde_json::json!({ "properties": { "format": "rawxml", "value": xml } });
    let body_text = serde_json::to_string(&body).unwrap_or_default();
    let url = format!("{ARM}{path}");
    let url_word = if known {
        sh(&url)
    } else {
        format!("\"{url}\"")
    };
    Apply {
        command: Some(format!(
            "az rest --method put --url {url_word} --body {}",
            sh(&body_text)
        )),
        request: known.then(|| ArmRequest {
            method: "PUT".into(),
            path,
            body: Some(body),
        }),
        document: Some(policy_doc(xml)),
        needs: need.into_iter().collect(),
    }
}

fn policy_doc(xml: &str) -> Document {
    Document {
        format: DocumentFormat::PolicyXml,
        text: xml.to_string(),
    }
}

/// Scale the service to `units` units.
pub fn scale(snapshot: &Snapshot, units: u32) -> Apply {
    let (sid, known, need) = service_id(snapshot);
    let sku = snapshot
        .service
        .as_ref()
        .and_then(|s| s.sku.clone())
        .unwrap_or_else(|| "Premium".into());
    let command = if known {
        format!("az apim update --ids {} --sku-capacity {units}", sh(&sid))
    } else {
        format!("az apim update --ids \"{sid}\" --sku-capacity {units}")
    };
    let body = serde_json::json!({ "sku": { "name": sku, "capacity": units } });
    Apply {
        command: Some(command),
        request: known.then(|| ArmRequest {
            method: "PATCH".into(),
            path: format!("{sid}?api-version={APIM_API_VERSION}"),
            body: Some(body.clone()),
        }),
        document: Some(Document {
            format: DocumentFormat::Json,
            text: serde_json::to_string_pretty(&body).unwrap_or_default(),
        }),
        needs: need.into_iter().collect(),
    }
}

/// Resource group of an Azure resource id.
fn resource_group(rid: &str) -> Option<String> {
    let segs: Vec<&str> = rid.split('/').collect();
    segs.iter()
        .position(|s| s.eq_ignore_ascii_case("resourceGroups"))
        .and_then(|i| segs.get(i + 1))
        .map(|s| s.to_string())
}

/// Create or replace one NSG security rule, given as ARM JSON
/// (`{"name":…,"properties":{…}}`).
pub fn put_nsg_rule(nsg_name: &str, nsg: Option<&Nsg>, rule: &serde_json::Value) -> Apply {
    let name = rule["name"].as_str().unwrap_or("rule").to_string();
    let p = &rule["properties"];
    let list = |single: &str, plural: &str| -> Vec<String> {
        let mut v: Vec<String> = p[plural]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(s) = p[single].as_str() {
            v.push(s.to_string());
        }
        v
    };
    let rid = nsg.and_then(|n| n.resource_id.clone());
    let rg = rid.as_deref().and_then(resource_group);
    let mut needs = Vec::new();
    let rg_word = match &rg {
        Some(rg) => sh(rg),
        None => {
            needs.push(format!("NSG_RG: the resource group of NSG {nsg_name}"));
            "\"$NSG_RG\"".to_string()
        }
    };
    let join = |v: Vec<String>| v.iter().map(|x| sh(x)).collect::<Vec<_>>().join(" ");
    let command = format!(
        "az network nsg rule create --resource-group {rg_word} --nsg-name {} --name {} --priority {} --direction {} --access {} --protocol {} --source-address-prefixes {} --source-port-ranges {} --destination-address-prefixes {} --destination-port-ranges {}",
        sh(nsg_name),
        sh(&name),
        p["priority"].as_u64().unwrap_or(0),
        p["direction"].as_str().unwrap_or("Outbound"),
        p["access"].as_str().unwrap_or("Allow"),
        sh(p["protocol"].as_str().unwrap_or("Tcp")),
        join(list("sourceAddressPrefix", "sourceAddressPrefixes")),
        join(list("sourcePortRange", "sourcePortRanges")),
        join(list(
            "destinationAddressPrefix",
            "destinationAddressPrefixes"
        )),
        join(list("destinationPortRange", "destinationPortRanges")),
    );
    Apply {
        command: Some(command),
        request: rid.map(|r| ArmRequest {
            method: "PUT".into(),
            path: format!(
                "{}/securityRules/{name}?api-version={NETWORK_API_VERSION}",
                r.trim_end_matches('/')
            ),
            body: Some(serde_json::json!({ "properties": rule["properties"].clone() })),
        }),
        document: Some(Document {
            format: DocumentFormat::RuleJson,
            text: serde_json::to_string_pretty(rule).unwrap_or_default(),
        }),
        needs,
    }
}

/// An empty policy that inherits everything, for a scope that has none.
pub const EMPTY_POLICY: &str = "<policies>\n  <inbound>\n    <base />\n  </inbound>\n  <backend>\n    <base />\n  </backend>\n  <outbound>\n    <base />\n  </outbound>\n  <on-error>\n    <base />\n  </on-error>\n</policies>";

/// The policy with its forward-request timeout set to `seconds`: the
/// first `<forward-request>` gets the new `timeout` (a `timeout-ms` is
/// replaced); without one, it replaces `<base />` in `<backend>` (or is
/// added to it). `None` when the text has no `<backend>` section to edit.
pub fn with_timeout(xml: &str, seconds: u32) -> Option<String> {
    let fr = Regex::new(r"(?s)<forward-request\b([^>]*?)(/?)>").ok()?;
    if let Some(m) = fr.captures(xml) {
        let attrs = m.get(1).map(|a| a.as_str()).unwrap_or("");
        let timeout = Regex::new(r#"\s*\btimeout(-ms)?\s*=\s*("[^"]*"|'[^']*')"#).ok()?;
        let rest = timeout.replace_all(attrs, "").trim_end().to_string();
        let close = m.get(2).map(|c| c.as_str()).unwrap_or("");
        let new = format!(
            "<forward-request timeout=\"{seconds}\"{}{}>",
            if rest.trim().is_empty() {
                String::new()
            } else {
                format!(" {}", rest.trim())
            },
            if close == "/" { " /" } else { "" }
        );
        let whole = m.get(0)?;
        return Some(format!(
            "{}{new}{}",
            &xml[..whole.start()],
            &xml[whole.end()..]
        ));
    }
    let backend = Regex::new(r"(?s)<backend>(.*?)</backend>").ok()?;
    let m = backend.captures(xml)?;
    let inner = m.get(1)?;
    let body = inner.as_str();
    let new_inner = if body.contains("<base />") || body.contains("<base/>") {
        body.replacen(
            "<base />",
            &format!("<forward-request timeout=\"{seconds}\" />"),
            1,
        )
        .replacen(
            "<base/>",
            &format!("<forward-request timeout=\"{seconds}\" />"),
            1,
        )
    } else {
        format!("{body}  <forward-request timeout=\"{seconds}\" />\n  ")
    };
    Some(format!(
        "{}{new_inner}{}",
        &xml[..inner.start()],
        &xml[inner.end()..]
    ))
}

/// The policy with `set-backend-service` pointed at backend entity `to`
/// (its `backend-id`, or a `base-url` replaced by `backend-id`). `None`
/// when the policy sets no backend.
pub fn with_backend(xml: &str, to: &str) -> Option<String> {
    let sbs = Regex::new(r"(?s)<set-backend-service\b([^>]*?)(/?)>").ok()?;
    let m = sbs.captures(xml)?;
    let attrs = m.get(1)?.as_str();
    let target = Regex::new(r#"\s*\b(backend-id|base-url)\s*=\s*("[^"]*"|'[^']*')"#).ok()?;
    let rest = target.replace_all(attrs, "").trim().to_string();
    let close = m.get(2).map(|c| c.as_str()).unwrap_or("");
    let new = format!(
        "<set-backend-service backend-id=\"{to}\"{}{}>",
        if rest.is_empty() {
            String::new()
        } else {
            format!(" {rest}")
        },
        if close == "/" { " /" } else { "" }
    );
    let whole = m.get(0)?;
    Some(format!(
        "{}{new}{}",
        &xml[..whole.start()],
        &xml[whole.end()..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Service;

    #[test]
    fn timeout_is_replaced_in_place() {
        let xml = "<policies><backend><forward-request timeout=\"5\" buffer-request-body=\"true\" /></backend></policies>";
        assert_eq!(
            with_timeout(xml, 30).unwrap(),
            "<policies><backend><forward-request timeout=\"30\" buffer-request-body=\"true\" /></backend></policies>"
        );
        let ms = "<policies><backend><forward-request timeout-ms=\"500\"/></backend></policies>";
        assert_eq!(
            with_timeout(ms, 2).unwrap(),
            "<policies><backend><forward-request timeout=\"2\" /></backend></policies>"
        );
        let base = "<policies><backend><base /></backend></policies>";
        assert_eq!(
            with_timeout(base, 9).unwrap(),
            "<policies><backend><forward-request timeout=\"9\" /></backend></policies>"
        );
        assert!(with_timeout("<policies><inbound /></policies>", 9).is_none());
    }

    #[test]
    fn backend_is_repointed() {
        let xml =
            "<inbound><base /><set-backend-service base-url=\"https://old.example\" /></inbound>";
        assert_eq!(
            with_backend(xml, "orders-app").unwrap(),
            "<inbound><base /><set-backend-service backend-id=\"orders-app\" /></inbound>"
        );
        assert!(with_backend("<inbound />", "x").is_none());
    }

    #[test]
    fn policy_put_with_and_without_a_known_service() {
        let mut s = Snapshot::default();
        let a = put_policy(&s, &PolicyScope::Api("orders".into()), "<policies />");
        assert!(a.request.is_none());
        assert!(a.needs[0].starts_with("APIM_ID"));
        assert!(
            a.command
                .as_deref()
                .unwrap()
                .starts_with("az rest --method put --url \"https://management.azure.com${APIM_ID}/apis/orders/policies/policy?api-version=2022-08-01\" --body '{\"properties\":{\"format\":\"rawxml\",\"value\":\"<policies />\"}}'")
        );
        s.service = Some(Service {
            name: "apim".into(),
            resource_id: Some(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim"
                    .into(),
            ),
            ..Service::default()
        });
        let a = put_policy(
            &s,
            &PolicyScope::Operation("o".into(), "get".into()),
            "<p/>",
        );
        let r = a.request.unwrap();
        assert_eq!(r.method, "PUT");
        assert_eq!(
            r.path,
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim/apis/o/operations/get/policies/policy?api-version=2022-08-01"
        );
        assert!(a.needs.is_empty());
    }

    #[test]
    fn nsg_rule_command_names_every_field() {
        let rule = serde_json::json!({"name":"Allow_Backend","properties":{"protocol":"Tcp","sourcePortRange":"*","sourceAddressPrefix":"VirtualNetwork","destinationAddressPrefix":"10.1.0.4","destinationPortRanges":["443"],"access":"Allow","priority":190,"direction":"Outbound"}});
        let nsg = Nsg {
            name: "apim-nsg".into(),
            resource_id: Some("/subscriptions/s/resourceGroups/net-rg/providers/Microsoft.Network/networkSecurityGroups/apim-nsg".into()),
            ..Nsg::default()
        };
        let a = put_nsg_rule("apim-nsg", Some(&nsg), &rule);
        assert_eq!(
            a.command.unwrap(),
            "az network nsg rule create --resource-group net-rg --nsg-name apim-nsg --name Allow_Backend --priority 190 --direction Outbound --access Allow --protocol Tcp --source-address-prefixes VirtualNetwork --source-port-ranges '*' --destination-address-prefixes 10.1.0.4 --destination-port-ranges 443"
        );
        assert!(
            a.request
                .unwrap()
                .path
                .ends_with("/securityRules/Allow_Backend?api-version=2023-09-01")
        );
        assert_eq!(a.document.unwrap().format, DocumentFormat::RuleJson);
    }
}
