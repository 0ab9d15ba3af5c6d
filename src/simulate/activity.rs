//! The activity log of the window in REST form (`{"value":[…]}`, newest
//! first, as `az monitor activity-log list` returns it): routine changes,
//! the scenario's causing change (policy writes carry the policy XML in
//! `properties.requestbody`), backend app deployments, NSG rule writes and
//! autoscale actions. Writes come as a Started/Succeeded pair.

use super::Scenario;
use super::catalog::{
    A_INVENTORY, A_ORDERS, A_PAYMENTS, B_CATALOG, B_INVENTORY, B_ORDERS, BACKENDS, O_GET_PRODUCT,
    RG_APIM, SERVICE, SUBSCRIPTION, nsg_id, service_id,
};
use super::config::{
    CERT_DENY_RULE, Scope, blocking_rule, cert_deny_rule, get_product_policy, inventory_policy,
    orders_policy, payments_policy, starter_policy,
};
use super::json::{compact, pretty};
use super::logs::ts7;
use super::plan::Plan;
use super::rng::Rng;
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// Who makes changes.
#[derive(Clone, Copy)]
enum Caller {
    Person(&'static str),
    /// A service principal (deployment pipeline): its object id.
    Pipeline,
    Autoscale,
}

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::Person(p) => p,
            Caller::Pipeline => "3d5e7f90-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
            Caller::Autoscale => "Microsoft.Insights/autoscaleSettings",
        }
    }
}

struct Change {
    t_ms: i64,
    operation: &'static str,
    resource_id: String,
    caller: Caller,
    /// JSON text of the request body, when the event carries it.
    body: Option<String>,
    status: &'static str,
}

/// `Microsoft.ApiManagement/service/apis/policies/write` →
/// (`Microsoft.ApiManagement`, `Microsoft.ApiManagement/service/apis/policies`).
fn provider_and_type(operation: &str) -> (String, String) {
    let provider = operation.split('/').next().unwrap_or(operation).to_string();
    let mut parts: Vec<&str> = operation.split('/').collect();
    if parts.last() == Some(&"action") {
        parts.pop();
    }
    parts.pop();
    (provider, parts.join("/"))
}

fn named(v: &str, localized: &str) -> Value {
    json!({"value": v, "localizedValue": localized})
}

/// One event (half of a Started/Succeeded pair).
fn event(
    c: &Change,
    t_ms: i64,
    begin: bool,
    correlation: &str,
    operation_id: &str,
    rng: &mut Rng,
) -> Value {
    let (provider, rtype) = provider_and_type(c.operation);
    let event_id = rng.uuid();
    let (status, sub_status, event_name) = if begin {
        ("Started", "", named("BeginRequest", "Begin request"))
    } else {
        (
            c.status,
            if c.status == "Succeeded" {
                "OK"
            } else {
                "BadRequest"
            },
            named("EndRequest", "End request"),
        )
    };
    let category = match c.caller {
        Caller::Autoscale if c.operation.contains("Autoscale") => "Autoscale",
        _ => "Administrative",
    };
    let rg = c
        .resource_id
        .split('/')
        .nth(4)
        .unwrap_or(RG_APIM)
        .to_string();
    let mut props = json!({
        "eventCategory": category,
        "entity": c.resource_id,
        "message": c.operation,
        "hierarchy": format!("{TENANT}/{SUBSCRIPTION}"),
        "serviceRequestId": rng.uuid(),
    });
    if let Some(p) = props.as_object_mut() {
        if !begin {
            p.insert(
                "statusCode".into(),
                json!(if c.status == "Succeeded" {
                    "OK"
                } else {
                    "BadRequest"
                }),
            );
        }
        if let Some(body) = &c.body {
            p.insert("requestbody".into(), json!(body));
        }
    }
    let ticks = 621_355_968_000_000_000i64 + t_ms * 10_000;
    let mut claims = json!({
        "aud": "https://management.core.windows.net/",
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "http://schemas.microsoft.com/identity/claims/tenantid": TENANT,
    });
    if let (Some(m), Caller::Person(who)) = (claims.as_object_mut(), c.caller) {
        m.insert("name".into(), json!(who));
        m.insert(
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn".into(),
            json!(who),
        );
    }
    json!({
        "authorization": {"action": c.operation, "scope": c.resource_id},
        "caller": c.caller.name(),
        "channels": "Operation",
        "claims": claims,
        "correlationId": correlation,
        "description": "",
        "eventDataId": event_id,
        "eventName": event_name,
        "category": named(category, category),
        "eventTimestamp": ts7(t_ms),
        "id": format!("{}/events/{event_id}/ticks/{ticks}", c.resource_id),
        "level": if c.status == "Failed" && !begin { "Error" } else { "Informational" },
        "operationId": operation_id,
        "operationName": named(c.operation, c.operation),
        "resourceGroupName": rg,
        "resourceProviderName": named(&provider, &provider),
        "resourceType": named(&rtype, &rtype),
        "resourceId": c.resource_id,
        "status": named(status, status),
        "subStatus": named(sub_status, sub_status),
        "submissionTimestamp": ts7(t_ms + 17_000),
        "subscriptionId": SUBSCRIPTION,
        "tenantId": TENANT,
        "properties": props,
        "relatedEvents": []
    })
}

fn policy_body(xml: &str) -> String {
    compact(&json!({"properties": {"format": "rawxml", "value": xml}}))
}

fn policy_write(t_ms: i64, scope: Scope, xml: &str, who: &'static str) -> Change {
    Change {
        t_ms,
        operation: scope.write_operation(),
        resource_id: scope.policy_id(),
        caller: Caller::Person(who),
        body: Some(policy_body(xml)),
        status: "Succeeded",
    }
}

fn app_id(b: usize) -> String {
    BACKENDS[b].resource_id().unwrap_or_default()
}

fn container_app_write(
    t_ms: i64,
    b: usize,
    revision: &str,
    image: &str,
    traffic_to: Option<&str>,
) -> Change {
    let traffic = match traffic_to {
        Some(rev) => json!([{"revisionName": rev, "weight": 100}]),
        None => json!([{"latestRevision": true, "weight": 100}]),
    };
    let body = json!({
        "location": "West Europe",
        "properties": {
            "configuration": {"activeRevisionsMode": "Single", "ingress": {"external": true, "targetPort": 8080, "traffic": traffic}},
            "template": {
                "revisionSuffix": revision,
                "containers": [{
                    "name": BACKENDS[b].id,
                    "image": image,
                    "resources": {"cpu": 0.5, "memory": "1Gi"}
                }],
                "scale": {"minReplicas": 1, "maxReplicas": 1}
            }
        }
    });
    Change {
        t_ms,
        operation: "Microsoft.App/containerApps/write",
        resource_id: app_id(b),
        caller: Caller::Pipeline,
        body: Some(compact(&body)),
        status: "Succeeded",
    }
}

/// The changes of the window, oldest first.
fn changes(plan: &Plan) -> Vec<Change> {
    let m = |minute: i64, sec: i64| minute * 60_000 + sec * 1000 + 417;
    let s = plan.start;
    let mut out = vec![
        Change {
            t_ms: m(s + 12, 8),
            operation: "Microsoft.ApiManagement/service/namedValues/write",
            resource_id: format!("{}/namedValues/payments-user", service_id()),
            caller: Caller::Pipeline,
            body: None,
            status: "Succeeded",
        },
        container_app_write(
            m(s + 41, 30),
            B_ORDERS,
            "v318",
            "contosoacr.azurecr.io/orders:2026.02.27-3",
            None,
        ),
        Change {
            t_ms: m(s + 63, 2),
            operation: "Microsoft.ApiManagement/service/backends/write",
            resource_id: format!("{}/backends/carrier-hub", service_id()),
            caller: Caller::Person("lee@contoso.com"),
            body: None,
            status: "Failed",
        },
        Change {
            t_ms: m(s + 64, 40),
            operation: "Microsoft.ApiManagement/service/backends/write",
            resource_id: format!("{}/backends/carrier-hub", service_id()),
            caller: Caller::Person("lee@contoso.com"),
            body: None,
            status: "Succeeded",
        },
        Change {
            t_ms: m(s + 88, 51),
            operation: "Microsoft.Web/sites/deployments/write",
            resource_id: format!("{}/deployments/4f2a9c1be8d7", app_id(B_CATALOG)),
            caller: Caller::Pipeline,
            body: None,
            status: "Succeeded",
        },
    ];
    let c = plan.change_ms;
    let earlier = m(s + 30, 12);
    match plan.scenario {
        Scenario::BackendOom => {
            out.push(container_app_write(
                c,
                B_INVENTORY,
                "v142",
                "contosoacr.azurecr.io/inventory:2026.03.02-1",
                None,
            ));
            let rollback = (plan.recover - 2) * 60_000 + 9_113;
            out.push(container_app_write(
                rollback,
                B_INVENTORY,
                "v142",
                "contosoacr.azurecr.io/inventory:2026.03.02-1",
                Some("inventory-app--v141"),
            ));
            out.push(Change {
                t_ms: rollback + 41_000,
                operation: "Microsoft.App/containerApps/revisions/deactivate/action",
                resource_id: format!("{}/revisions/inventory-app--v142", app_id(B_INVENTORY)),
                caller: Caller::Person("sam@contoso.com"),
                body: None,
                status: "Succeeded",
            });
        }
        Scenario::AppServiceDeploy => {
            // A zip deployment of the site: the activity log names the
            // deployment below the site (…/sites/catalog-web/deployments/ID).
            out.push(Change {
                t_ms: c,
                operation: "Microsoft.Web/sites/deployments/write",
                resource_id: format!("{}/deployments/9c03e7d1a45b", app_id(B_CATALOG)),
                caller: Caller::Pipeline,
                body: None,
                status: "Succeeded",
            });
        }
        Scenario::PolicyTimeout => {
            out.push(policy_write(
                earlier,
                Scope::Api(A_ORDERS),
                &orders_policy(30),
                "kim@contoso.com",
            ));
            out.push(policy_write(
                c,
                Scope::Api(A_ORDERS),
                &orders_policy(5),
                "alex@contoso.com",
            ));
        }
        Scenario::WrongRoute => {
            let op = Scope::Operation(O_GET_PRODUCT);
            out.push(policy_write(
                earlier,
                op,
                &get_product_policy(false),
                "kim@contoso.com",
            ));
            out.push(policy_write(
                c,
                op,
                &get_product_policy(true),
                "alex@contoso.com",
            ));
        }
        Scenario::NsgBlock => {
            let rule = blocking_rule();
            let body =
                json!({"properties": rule.get("properties").cloned().unwrap_or(Value::Null)});
            out.push(Change {
                t_ms: c,
                operation: "Microsoft.Network/networkSecurityGroups/securityRules/write",
                resource_id: format!("{}/securityRules/deny-payments-subnet-outbound", nsg_id()),
                caller: Caller::Person("secops@contoso.com"),
                body: Some(compact(&body)),
                status: "Succeeded",
            });
        }
        Scenario::Capacity => {
            out.push(Change {
                t_ms: c,
                operation: "Microsoft.Insights/AutoscaleSettings/Scaleup/Action",
                resource_id: format!(
                    "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG_APIM}/providers/microsoft.insights/autoscalesettings/{SERVICE}-autoscale"
                ),
                caller: Caller::Autoscale,
                body: None,
                status: "Succeeded",
            });
            out.push(Change {
                t_ms: c + 95_000,
                operation: "Microsoft.ApiManagement/service/write",
                resource_id: service_id(),
                caller: Caller::Autoscale,
                body: Some(compact(
                    &json!({"sku": {"name": "Standard", "capacity": 2}}),
                )),
                status: "Succeeded",
            });
        }
        Scenario::RateLimit => {
            let scope = Scope::Product("starter");
            out.push(policy_write(
                earlier,
                scope,
                &starter_policy(plan.calls_before),
                "kim@contoso.com",
            ));
            out.push(policy_write(
                c,
                scope,
                &starter_policy(plan.calls_after),
                "alex@contoso.com",
            ));
        }
        Scenario::Misconfig => {
            let scope = Scope::Api(A_PAYMENTS);
            out.push(policy_write(
                earlier,
                scope,
                &payments_policy(false),
                "kim@contoso.com",
            ));
            out.push(policy_write(
                c,
                scope,
                &payments_policy(true),
                "alex@contoso.com",
            ));
            let rule = cert_deny_rule();
            let body =
                json!({"properties": rule.get("properties").cloned().unwrap_or(Value::Null)});
            out.push(Change {
                t_ms: m(s + 50, 33),
                operation: "Microsoft.Network/networkSecurityGroups/securityRules/write",
                resource_id: format!("{}/securityRules/{CERT_DENY_RULE}", nsg_id()),
                caller: Caller::Person("secops@contoso.com"),
                body: Some(compact(&body)),
                status: "Succeeded",
            });
        }
        Scenario::Healthy => {
            let scope = Scope::Api(A_INVENTORY);
            out.push(policy_write(
                earlier,
                scope,
                &inventory_policy(false),
                "kim@contoso.com",
            ));
            out.push(policy_write(
                c,
                scope,
                &inventory_policy(true),
                "alex@contoso.com",
            ));
        }
    }
    out.retain(|c| c.t_ms >= plan.start * 60_000 && c.t_ms < plan.end * 60_000);
    out.sort_by_key(|c| c.t_ms);
    out
}

/// `activity-log.json`.
pub fn file(plan: &Plan) -> (String, Vec<u8>) {
    let mut rng = Rng::derive(plan.seed, &[plan.scenario.code(), 0x4143_5456]);
    let mut events = Vec::new();
    for c in changes(plan) {
        let correlation = rng.uuid();
        let operation_id = rng.uuid();
        events.push(event(
            &c,
            c.t_ms,
            true,
            &correlation,
            &operation_id,
            &mut rng,
        ));
        let done = c.t_ms + 1_500 + rng.below(3_000) as i64;
        events.push(event(
            &c,
            done,
            false,
            &correlation,
            &operation_id,
            &mut rng,
        ));
    }
    events.reverse();
    let doc = json!({"value": events});
    ("activity-log.json".to_string(), pretty(&doc).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_and_type_from_operation() {
        assert_eq!(
            provider_and_type("Microsoft.ApiManagement/service/apis/policies/write"),
            (
                "Microsoft.ApiManagement".to_string(),
                "Microsoft.ApiManagement/service/apis/policies".to_string()
            )
        );
        assert_eq!(
            provider_and_type("Microsoft.App/containerApps/revisions/deactivate/action").1,
            "Microsoft.App/containerApps/revisions"
        );
    }

    #[test]
    fn policy_writes_carry_the_xml_and_events_are_newest_first() {
        let plan = Plan::new(Scenario::PolicyTimeout, 4, 0.05, 240);
        let (_, bytes) = file(&plan);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let events = v["value"].as_array().unwrap();
        let times: Vec<&str> = events
            .iter()
            .map(|e| e["eventTimestamp"].as_str().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]));
        let writes: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e["operationName"]["value"] == "Microsoft.ApiManagement/service/apis/policies/write"
            })
            .collect();
        assert_eq!(writes.len(), 4);
        let body: Value =
            serde_json::from_str(writes[0]["properties"]["requestbody"].as_str().unwrap()).unwrap();
        let xml = body["properties"]["value"].as_str().unwrap();
        assert!(xml.contains("<forward-request timeout=\"5\" />"), "{xml}");
        assert!(writes.iter().any(|e| e["status"]["value"] == "Succeeded"));
        assert!(writes.iter().any(|e| e["status"]["value"] == "Started"));
    }

    #[test]
    fn deployments_and_nsg_rules_are_logged() {
        let plan = Plan::new(Scenario::BackendOom, 4, 0.05, 240);
        let text = String::from_utf8(file(&plan).1).unwrap();
        assert!(text.contains("containerApps/inventory-app"));
        assert!(text.contains("revisions/deactivate/action"));
        let plan = Plan::new(Scenario::NsgBlock, 4, 0.05, 240);
        let text = String::from_utf8(file(&plan).1).unwrap();
        assert!(text.contains("securityRules/deny-payments-subnet-outbound"));
    }
}
