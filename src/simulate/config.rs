//! The instance's configuration as an export holds it: ARM REST GET/list
//! responses for the service, APIs, operations, products, backends, named
//! values, policies, the gateway subnet's NSG and the autoscale setting, plus
//! bare policy XML files in the `policies/apis/…` layout. Policy text is
//! also what the activity log's writes carry, so both come from here.

use super::Scenario;
use super::catalog::{
    APIM_SUBNET_PREFIX, APIS, AppKind, BACKENDS, LOCATION, NSG, O_RESERVE_STOCK, OPS,
    PAYMENTS_SUBNET_PREFIX, RG_APIM, SERVICE, SUBSCRIPTION, apim_subnet_id, nsg_id, service_id,
};
use super::json::pretty;
use super::plan::Plan;
use serde_json::{Value, json};

/// A policy scope the simulator writes, with its ARM id suffix and file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Product(&'static str),
    Api(usize),
    Operation(usize),
}

impl Scope {
    /// The policy resource id (`…/policies/policy`).
    pub fn policy_id(self) -> String {
        let svc = service_id();
        match self {
            Scope::Global => format!("{svc}/policies/policy"),
            Scope::Product(p) => format!("{svc}/products/{p}/policies/policy"),
            Scope::Api(a) => format!("{svc}/apis/{}/policies/policy", APIS[a].id),
            Scope::Operation(o) => format!(
                "{svc}/apis/{}/operations/{}/policies/policy",
                APIS[OPS[o].api].id, OPS[o].id
            ),
        }
    }

    /// The activity-log operation name of a write at this scope.
    pub fn write_operation(self) -> &'static str {
        match self {
            Scope::Global => "Microsoft.ApiManagement/service/policies/write",
            Scope::Product(_) => "Microsoft.ApiManagement/service/products/policies/write",
            Scope::Api(_) => "Microsoft.ApiManagement/service/apis/policies/write",
            Scope::Operation(_) => "Microsoft.ApiManagement/service/apis/operations/policies/write",
        }
    }

    /// The `PolicyScope` display form (`api:orders-api`…).
    pub fn display(self) -> String {
        match self {
            Scope::Global => "global".to_string(),
            Scope::Product(p) => format!("product:{p}"),
            Scope::Api(a) => format!("api:{}", APIS[a].id),
            Scope::Operation(o) => format!("operation:{}/{}", APIS[OPS[o].api].id, OPS[o].id),
        }
    }
}

const GLOBAL_POLICY: &str = r#"<!--
    Global policy: applies to every API of contoso-apim.
-->
<policies>
    <inbound>
        <cors allow-credentials="true">
            <allowed-origins>
                <origin>https://shop.contoso.com</origin>
                <origin>https://admin.contoso.com</origin>
            </allowed-origins>
            <allowed-methods preflight-result-max-age="300">
                <method>GET</method>
                <method>POST</method>
                <method>PUT</method>
            </allowed-methods>
            <allowed-headers>
                <header>Authorization</header>
                <header>Content-Type</header>
            </allowed-headers>
        </cors>
        <set-header name="X-Correlation-Id" exists-action="skip">
            <value>@(context.RequestId.ToString())</value>
        </set-header>
    </inbound>
    <backend>
        <forward-request timeout="60" />
    </backend>
    <outbound>
        <set-header name="X-Powered-By" exists-action="delete" />
        <set-header name="X-AspNet-Version" exists-action="delete" />
    </outbound>
    <on-error>
        <set-header name="X-Correlation-Id" exists-action="override">
            <value>@(context.RequestId.ToString())</value>
        </set-header>
    </on-error>
</policies>
"#;

fn wrap(inbound: &str, backend: &str, outbound: &str) -> String {
    format!(
        "<policies>\n    <inbound>\n        <base />\n{inbound}    </inbound>\n    <backend>\n{backend}    </backend>\n    <outbound>\n        <base />\n{outbound}    </outbound>\n    <on-error>\n        <base />\n    </on-error>\n</policies>\n"
    )
}

const BASE_BACKEND: &str = "        <base />\n";

/// The orders API policy with a given forward-request timeout (seconds).
pub fn orders_policy(timeout: u32) -> String {
    wrap(
        "        <set-backend-service backend-id=\"orders-app\" />\n        <set-header name=\"X-Tenant\" exists-action=\"override\">\n            <value>@(context.Subscription?.Id ?? \"anonymous\")</value>\n        </set-header>\n",
        &format!("        <forward-request timeout=\"{timeout}\" />\n"),
        "",
    )
}

/// The inventory API policy, with or without the Cache-Control header the
/// healthy scenario's routine change adds.
pub fn inventory_policy(cache_header: bool) -> String {
    let outbound = if cache_header {
        "        <set-header name=\"Cache-Control\" exists-action=\"override\">\n            <value>no-store</value>\n        </set-header>\n"
    } else {
        ""
    };
    wrap(
        "        <set-backend-service backend-id=\"inventory-app\" />\n",
        BASE_BACKEND,
        outbound,
    )
}

fn catalog_policy() -> String {
    wrap(
        "        <set-header name=\"X-Channel\" exists-action=\"skip\">\n            <value>@(context.Request.Headers.GetValueOrDefault(\"User-Agent\", \"\").Contains(\"Mobile\") ? \"mobile\" : \"web\")</value>\n        </set-header>\n",
        BASE_BACKEND,
        "        <set-header name=\"Cache-Control\" exists-action=\"override\">\n            <value>public, max-age=60</value>\n        </set-header>\n",
    )
}

/// The payments API policy; `drop_base` leaves `<base />` out of
/// `<inbound>` (the misconfig scenario), so the global policies do not run.
pub fn payments_policy(drop_base: bool) -> String {
    let xml = wrap(
        "        <validate-jwt header-name=\"Authorization\" failed-validation-httpcode=\"401\" failed-validation-error-message=\"Unauthorized\" require-scheme=\"Bearer\">\n            <openid-config url=\"https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration\" />\n            <audiences>\n                <audience>api://payments</audience>\n            </audiences>\n        </validate-jwt>\n        <set-backend-service backend-id=\"payments-svc\" />\n        <authentication-basic username=\"{{payments-user}}\" password=\"{{payments-password}}\" />\n",
        BASE_BACKEND,
        "",
    );
    if drop_base {
        xml.replacen("    <inbound>\n        <base />\n", "    <inbound>\n", 1)
    } else {
        xml
    }
}

fn users_policy() -> String {
    wrap(
        "        <set-backend-service backend-id=\"users-pool\" />\n",
        "        <retry condition=\"@(context.Response != null &amp;&amp; context.Response.StatusCode == 503)\" count=\"2\" interval=\"1\" first-fast-retry=\"true\">\n            <forward-request buffer-request-body=\"true\" timeout=\"20\" />\n        </retry>\n",
        "",
    )
}

/// rawxml as a user PUTs it: raw `"` and `&&` inside the expression.
/// `plain_secret` writes the partner token into the policy itself.
fn shipping_policy(plain_secret: bool) -> String {
    let token = if plain_secret {
        "Bearer chb_live_7f3K9qL2xW8vN4pR6tY1zA5c"
    } else {
        "Bearer {{carrierhub-token}}"
    };
    wrap(
        &format!(
            "        <set-backend-service base-url=\"https://api.carrierhub.example.net/v3\" />\n        <set-header name=\"Authorization\" exists-action=\"override\">\n            <value>{token}</value>\n        </set-header>\n        <choose>\n            <when condition=\"@(context.Request.Method == \"POST\" && context.Request.Body == null)\">\n                <return-response>\n                    <set-status code=\"400\" reason=\"Bad Request\" />\n                </return-response>\n            </when>\n        </choose>\n"
        ),
        BASE_BACKEND,
        "",
    )
}

/// An operation-scope policy delivered as a REST resource (rawxml: the
/// expression keeps its raw quotes).
fn reserve_stock_policy() -> String {
    wrap(
        "        <set-variable name=\"sku\" value=\"@(context.Request.MatchedParameters[\"sku\"])\" />\n        <set-header name=\"X-Reservation-Sku\" exists-action=\"override\">\n            <value>@((string)context.Variables[\"sku\"])</value>\n        </set-header>\n",
        BASE_BACKEND,
        "",
    )
}

/// `broken` mistypes a closing tag (a file in the repo that APIM would
/// refuse to import).
fn create_order_policy(broken: bool) -> String {
    let close = if broken {
        "</set-heade>"
    } else {
        "</set-header>"
    };
    wrap(
        &format!(
            "        <set-header name=\"Idempotency-Key\" exists-action=\"skip\">\n            <value>@(Guid.NewGuid().ToString())</value>\n        {close}\n"
        ),
        BASE_BACKEND,
        "",
    )
}

/// The get-product operation policy; `wrong` adds the route to the legacy
/// catalog that the wrong-route change introduces.
pub fn get_product_policy(wrong: bool) -> String {
    let route = if wrong {
        "        <set-backend-service backend-id=\"catalog-legacy\" />\n"
    } else {
        ""
    };
    wrap(
        &format!(
            "        <set-header name=\"Accept\" exists-action=\"override\">\n            <value>application/json</value>\n        </set-header>\n{route}"
        ),
        BASE_BACKEND,
        "",
    )
}

/// The starter product's policy with a given rate limit (calls per 300 s).
pub fn starter_policy(calls: u32) -> String {
    wrap(
        &format!(
            "        <rate-limit-by-key calls=\"{calls}\" renewal-period=\"300\" counter-key=\"@(context.Subscription.Id)\" />\n        <quota calls=\"2000000\" renewal-period=\"2592000\" />\n"
        ),
        BASE_BACKEND,
        "",
    )
}

fn unlimited_policy() -> String {
    wrap("", BASE_BACKEND, "")
}

/// The policy of an API as it stands at the end of the data.
fn api_policy(plan: &Plan, api: usize) -> String {
    match api {
        0 => orders_policy(if plan.scenario == Scenario::PolicyTimeout {
            5
        } else {
            30
        }),
        1 => inventory_policy(true),
        2 => catalog_policy(),
        3 => payments_policy(plan.scenario == Scenario::Misconfig),
        4 => users_policy(),
        _ => shipping_policy(plan.scenario == Scenario::Misconfig),
    }
}

/// A policy resource as REST GET returns it (`rawxml` as written).
fn policy_resource(scope: Scope, xml: &str) -> Value {
    json!({
        "id": scope.policy_id(),
        "type": match scope {
            Scope::Global => "Microsoft.ApiManagement/service/policies",
            Scope::Product(_) => "Microsoft.ApiManagement/service/products/policies",
            Scope::Api(_) => "Microsoft.ApiManagement/service/apis/policies",
            Scope::Operation(_) => "Microsoft.ApiManagement/service/apis/operations/policies",
        },
        "name": "policy",
        "properties": {"format": "rawxml", "value": xml}
    })
}

fn service(plan: &Plan) -> Value {
    let shape = plan.shape;
    let mut props = json!({
        "publisherEmail": "platform@contoso.com",
        "publisherName": "Contoso Platform",
        "notificationSenderEmail": "apimgmt-noreply@mail.windowsazure.com",
        "provisioningState": "Succeeded",
        "targetProvisioningState": "",
        "createdAtUtc": "2024-09-18T08:12:44.5712389Z",
        "gatewayUrl": "https://contoso-apim.azure-api.net",
        "gatewayRegionalUrl": "https://contoso-apim-westeurope-01.regional.azure-api.net",
        "portalUrl": "https://contoso-apim.portal.azure-api.net",
        "developerPortalUrl": "https://contoso-apim.developer.azure-api.net",
        "managementApiUrl": "https://contoso-apim.management.azure-api.net",
        "hostnameConfigurations": [{
            "type": "Proxy",
            "hostName": "contoso-apim.azure-api.net",
            "negotiateClientCertificate": false,
            "defaultSslBinding": true,
            "certificateSource": "BuiltIn"
        }],
        "publicIPAddresses": ["20.103.41.17"],
        "virtualNetworkType": shape.vnet,
        "platformVersion": if shape.is_v2() { "mtv1" } else { "stv2" },
        "publicNetworkAccess": "Enabled",
        "disableGateway": false,
        "additionalLocations": null,
        "customProperties": {
            "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls10": "False",
            "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls11": "False"
        }
    });
    if shape.has_nsg()
        && let Some(p) = props.as_object_mut()
    {
        p.insert(
            "virtualNetworkConfiguration".into(),
            json!({"subnetResourceId": apim_subnet_id()}),
        );
        p.insert("privateIPAddresses".into(), json!(["10.0.1.5"]));
    }
    json!({
        "id": service_id(),
        "name": SERVICE,
        "type": "Microsoft.ApiManagement/service",
        "location": "West Europe",
        "etag": "AAAAAAGpG2U=",
        "tags": {"env": "prod", "owner": "platform"},
        "sku": {"name": shape.sku, "capacity": shape.units},
        "identity": {"type": "SystemAssigned", "principalId": "0c5a3b1e-2f4d-4a6b-8c7d-9e0f1a2b3c4d", "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47"},
        "zones": null,
        "properties": props
    })
}

fn api_resource(a: usize) -> Value {
    let api = &APIS[a];
    let backend = &BACKENDS[api.backend];
    let service_url = if backend.url.is_empty() {
        BACKENDS[backend.pool.first().map_or(0, |m| m.0)].url
    } else {
        backend.url
    };
    json!({
        "id": format!("{}/apis/{}", service_id(), api.id),
        "type": "Microsoft.ApiManagement/service/apis",
        "name": api.id,
        "properties": {
            "displayName": api.display,
            "apiRevision": "1",
            "description": format!("{} for the Contoso shop", api.display),
            "subscriptionRequired": true,
            "serviceUrl": service_url,
            "path": api.path,
            "protocols": ["https"],
            "authenticationSettings": {"oAuth2AuthenticationSettings": [], "openidAuthenticationSettings": []},
            "subscriptionKeyParameterNames": {"header": "Ocp-Apim-Subscription-Key", "query": "subscription-key"},
            "isCurrent": true,
            "type": "http"
        }
    })
}

/// The `az apim api list` form of an API: properties lifted, `apiType`,
/// `resourceGroup` added.
fn api_az(a: usize) -> Value {
    let v = api_resource(a);
    let mut flat = serde_json::Map::new();
    if let Some(p) = v.get("properties").and_then(Value::as_object) {
        for (k, x) in p {
            if k == "type" {
                flat.insert("apiType".into(), x.clone());
            } else {
                flat.insert(k.clone(), x.clone());
            }
        }
    }
    for k in ["id", "name", "type"] {
        if let Some(x) = v.get(k) {
            flat.insert(k.into(), x.clone());
        }
    }
    flat.insert("resourceGroup".into(), json!(RG_APIM));
    Value::Object(flat)
}

fn operations(a: usize) -> Value {
    let api = &APIS[a];
    let list: Vec<Value> = OPS
        .iter()
        .filter(|o| o.api == a)
        .map(|o| {
            let params: Vec<Value> = ["id", "sku"]
                .iter()
                .filter(|p| o.template.contains(&format!("{{{p}}}")))
                .map(|p| json!({"name": p, "type": "string", "required": true, "values": []}))
                .collect();
            json!({
                "id": format!("{}/apis/{}/operations/{}", service_id(), api.id, o.id),
                "type": "Microsoft.ApiManagement/service/apis/operations",
                "name": o.id,
                "properties": {
                    "displayName": o.display,
                    "method": o.method,
                    "urlTemplate": o.template,
                    "templateParameters": params,
                    "responses": []
                }
            })
        })
        .collect();
    let count = list.len();
    json!({"value": list, "count": count})
}

fn products() -> Value {
    let p = |id: &str, name: &str, desc: &str, approval: bool| {
        json!({
            "id": format!("{}/products/{id}", service_id()),
            "type": "Microsoft.ApiManagement/service/products",
            "name": id,
            "properties": {
                "displayName": name,
                "description": desc,
                "subscriptionRequired": true,
                "approvalRequired": approval,
                "state": "published"
            }
        })
    };
    json!({"value": [
        p("starter", "Starter", "Partner access with a rate limit per subscription.", true),
        p("unlimited", "Unlimited", "First-party apps.", true)
    ], "count": 2})
}

fn backends() -> Value {
    let list: Vec<Value> = BACKENDS
        .iter()
        .map(|b| {
            let mut props = serde_json::Map::new();
            if b.pool.is_empty() {
                props.insert("url".into(), json!(b.url));
                props.insert("protocol".into(), json!("http"));
            } else {
                props.insert("type".into(), json!("Pool"));
                props.insert("url".into(), Value::Null);
                props.insert("protocol".into(), Value::Null);
                let services: Vec<Value> = b
                    .pool
                    .iter()
                    .map(|(m, w)| {
                        json!({"id": format!("{}/backends/{}", service_id(), BACKENDS[*m].id), "priority": 1, "weight": w})
                    })
                    .collect();
                props.insert("pool".into(), json!({"services": services}));
            }
            if let Some(rid) = b.resource_id() {
                props.insert("resourceId".into(), json!(format!("https://management.azure.com{rid}")));
            }
            props.insert(
                "description".into(),
                json!(match b.kind {
                    AppKind::ContainerApp => "Container app",
                    AppKind::AppService => "App Service web app",
                    AppKind::Plain if !b.pool.is_empty() => "Users service, two regions",
                    AppKind::Plain => "Service outside the app platform",
                }),
            );
            if b.id == "payments-svc" {
                props.insert(
                    "tls".into(),
                    json!({"validateCertificateChain": true, "validateCertificateName": false}),
                );
            }
            if b.breaker {
                props.insert(
                    "circuitBreaker".into(),
                    json!({"rules": [{
                        "name": format!("{}-breaker", b.id),
                        "failureCondition": {
                            "count": 10,
                            "interval": "PT1M",
                            "statusCodeRanges": [{"min": 500, "max": 599}],
                            "errorReasons": ["Server errors"]
                        },
                        "tripDuration": "PT1M",
                        "acceptRetryAfter": true
                    }]}),
                );
            }
            json!({
                "id": format!("{}/backends/{}", service_id(), b.id),
                "type": "Microsoft.ApiManagement/service/backends",
                "name": b.id,
                "properties": Value::Object(props)
            })
        })
        .collect();
    let count = list.len();
    json!({"value": list, "count": count})
}

fn named_values() -> Value {
    let nv = |name: &str, props: Value| {
        json!({
            "id": format!("{}/namedValues/{name}", service_id()),
            "type": "Microsoft.ApiManagement/service/namedValues",
            "name": name,
            "properties": props
        })
    };
    json!({"value": [
        nv("payments-user", json!({"displayName": "payments-user", "secret": false, "value": "apim-gateway", "tags": []})),
        nv("payments-password", json!({"displayName": "payments-password", "secret": true, "tags": []})),
        nv("carrierhub-token", json!({
            "displayName": "carrierhub-token",
            "secret": true,
            "keyVault": {
                "secretIdentifier": "https://kv-contoso-apim.vault.azure.net/secrets/carrierhub-token",
                "lastStatus": {"code": "Success", "timeStampUtc": "2026-02-27T06:00:11.1234567Z"}
            },
            "tags": []
        }))
    ], "count": 3})
}

/// One NSG rule in REST form.
#[allow(clippy::too_many_arguments)] // a table row, read positionally
pub fn nsg_rule(
    name: &str,
    priority: u32,
    direction: &str,
    access: &str,
    source: &str,
    destination: &str,
    ports: &[&str],
    description: &str,
) -> Value {
    let mut props = json!({
        "provisioningState": "Succeeded",
        "description": description,
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "sourceAddressPrefix": source,
        "destinationAddressPrefix": destination,
        "access": access,
        "priority": priority,
        "direction": direction
    });
    if let Some(p) = props.as_object_mut() {
        if let [one] = ports {
            p.insert("destinationPortRange".into(), json!(one));
        } else {
            p.insert("destinationPortRanges".into(), json!(ports));
        }
    }
    json!({
        "name": name,
        "id": format!("{}/securityRules/{name}", nsg_id()),
        "type": "Microsoft.Network/networkSecurityGroups/securityRules",
        "properties": props
    })
}

/// The misconfig scenario's catch-all outbound deny.
pub const CERT_DENY_RULE: &str = "DenyAllInternetOutbound";

/// The misconfig scenario's rule: no Internet at all, so certificate
/// validation (Internet:80) is blocked too.
pub fn cert_deny_rule() -> Value {
    nsg_rule(
        CERT_DENY_RULE,
        4000,
        "Outbound",
        "Deny",
        "VirtualNetwork",
        "Internet",
        &["*"],
        "Hardening baseline: no Internet egress from the APIM subnet",
    )
}

/// The rule the nsg-block change adds.
pub fn blocking_rule() -> Value {
    nsg_rule(
        "deny-payments-subnet-outbound",
        105,
        "Outbound",
        "Deny",
        APIM_SUBNET_PREFIX,
        PAYMENTS_SUBNET_PREFIX,
        &["443"],
        "Temporary: block lateral movement into the payments spoke (SEC-2291)",
    )
}

fn default_rules() -> Vec<Value> {
    let d = |name: &str,
             priority: u32,
             direction: &str,
             access: &str,
             src: &str,
             dst: &str,
             desc: &str| {
        json!({
            "name": name,
            "id": format!("{}/defaultSecurityRules/{name}", nsg_id()),
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {
                "provisioningState": "Succeeded",
                "description": desc,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": src,
                "destinationAddressPrefix": dst,
                "access": access,
                "priority": priority,
                "direction": direction
            }
        })
    };
    vec![
        d(
            "AllowVnetInBound",
            65000,
            "Inbound",
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow inbound traffic from all VMs in VNET",
        ),
        d(
            "AllowAzureLoadBalancerInBound",
            65001,
            "Inbound",
            "Allow",
            "AzureLoadBalancer",
            "*",
            "Allow inbound traffic from azure load balancer",
        ),
        d(
            "DenyAllInBound",
            65500,
            "Inbound",
            "Deny",
            "*",
            "*",
            "Deny all inbound traffic",
        ),
        d(
            "AllowVnetOutBound",
            65000,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow outbound traffic from all VMs to all VMs in VNET",
        ),
        d(
            "AllowInternetOutBound",
            65001,
            "Outbound",
            "Allow",
            "*",
            "Internet",
            "Allow outbound traffic from all VMs to Internet",
        ),
        d(
            "DenyAllOutBound",
            65500,
            "Outbound",
            "Deny",
            "*",
            "*",
            "Deny all outbound traffic",
        ),
    ]
}

fn nsg(plan: &Plan) -> Value {
    let clients = if plan.shape.vnet == "Internal" {
        "VirtualNetwork"
    } else {
        "Internet"
    };
    let mut rules = vec![
        nsg_rule(
            "AllowClientHttpsInbound",
            100,
            "Inbound",
            "Allow",
            clients,
            "VirtualNetwork",
            &["443"],
            "Client traffic to the gateway",
        ),
        nsg_rule(
            "AllowApimManagementInbound",
            110,
            "Inbound",
            "Allow",
            "ApiManagement",
            "VirtualNetwork",
            &["3443"],
            "Management endpoint",
        ),
        nsg_rule(
            "AllowAzureLoadBalancerInbound",
            120,
            "Inbound",
            "Allow",
            "AzureLoadBalancer",
            "VirtualNetwork",
            &["6390"],
            "Infrastructure load balancer",
        ),
        nsg_rule(
            "AllowStorageOutbound",
            100,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "Storage",
            &["443"],
            "Azure Storage",
        ),
        nsg_rule(
            "AllowSqlOutbound",
            110,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "Sql",
            &["1433"],
            "Azure SQL",
        ),
        nsg_rule(
            "AllowKeyVaultOutbound",
            120,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "AzureKeyVault",
            &["443"],
            "Key Vault",
        ),
        nsg_rule(
            "AllowMonitorOutbound",
            130,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "AzureMonitor",
            &["1886", "443"],
            "Logs, metrics and Resource Health",
        ),
        nsg_rule(
            "AllowCertValidationOutbound",
            140,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "Internet",
            &["80"],
            "Certificate validation",
        ),
        nsg_rule(
            "AllowEntraIdOutbound",
            150,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "AzureActiveDirectory",
            &["443"],
            "Microsoft Entra ID",
        ),
    ];
    if plan.shape.vnet == "External" {
        rules.insert(
            3,
            nsg_rule(
                "AllowTrafficManagerInbound",
                130,
                "Inbound",
                "Allow",
                "AzureTrafficManager",
                "VirtualNetwork",
                &["443"],
                "Multi-region routing",
            ),
        );
    }
    if plan.scenario == Scenario::NsgBlock {
        rules.push(blocking_rule());
    }
    if plan.scenario == Scenario::Misconfig {
        rules.retain(|r| r["name"] != "AllowCertValidationOutbound");
        rules.push(cert_deny_rule());
    }
    json!({
        "name": NSG,
        "id": nsg_id(),
        "etag": "W/\"5b0e9d61-3f3c-4c52-9a6e-0c2d1e8f7a41\"",
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": LOCATION,
        "properties": {
            "provisioningState": "Succeeded",
            "resourceGuid": "8a3c1d2e-5f6a-4b7c-9d0e-1f2a3b4c5d6e",
            "securityRules": rules,
            "defaultSecurityRules": default_rules(),
            "subnets": [{"id": apim_subnet_id()}]
        }
    })
}

fn autoscale(plan: &Plan) -> Option<Value> {
    let (min, max) = plan.shape.autoscale?;
    let threshold = if plan.scenario == Scenario::Capacity {
        80
    } else {
        70
    };
    let rule = |op: &str, threshold: u32, dir: &str, cooldown: &str| {
        json!({
            "metricTrigger": {
                "metricName": "Capacity",
                "metricNamespace": "microsoft.apimanagement/service",
                "metricResourceUri": service_id(),
                "timeGrain": "PT1M",
                "statistic": "Average",
                "timeWindow": "PT30M",
                "timeAggregation": "Average",
                "operator": op,
                "threshold": threshold,
                "dividePerInstance": false
            },
            "scaleAction": {"direction": dir, "type": "ChangeCount", "value": "1", "cooldown": cooldown}
        })
    };
    Some(json!({
        "id": format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG_APIM}/providers/microsoft.insights/autoscalesettings/{SERVICE}-autoscale"),
        "name": format!("{SERVICE}-autoscale"),
        "type": "Microsoft.Insights/autoscaleSettings",
        "location": "West Europe",
        "tags": {},
        "properties": {
            "name": format!("{SERVICE}-autoscale"),
            "enabled": true,
            "targetResourceUri": service_id(),
            "targetResourceLocation": "West Europe",
            "profiles": [{
                "name": "default",
                "capacity": {"minimum": min.to_string(), "maximum": max.to_string(), "default": min.to_string()},
                "rules": [
                    rule("GreaterThan", threshold, "Increase", "PT60M"),
                    rule("LessThan", 35, "Decrease", "PT90M")
                ]
            }],
            "notifications": [],
            "predictiveAutoscalePolicy": {"scaleMode": "Disabled"}
        }
    }))
}

/// Every configuration file of the instance.
pub fn files(plan: &Plan) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut put = |path: String, v: &Value| out.push((path, pretty(v).into_bytes()));
    put("config/service.json".into(), &service(plan));
    if plan.scenario == Scenario::WrongRoute {
        // `az apim api list` output: a bare array of flattened objects.
        let list: Vec<Value> = (0..APIS.len()).map(api_az).collect();
        put("config/apis.json".into(), &Value::Array(list));
    } else {
        let list: Vec<Value> = (0..APIS.len()).map(api_resource).collect();
        put(
            "config/apis.json".into(),
            &json!({"value": list, "count": APIS.len()}),
        );
    }
    for (a, api) in APIS.iter().enumerate() {
        put(format!("config/operations/{}.json", api.id), &operations(a));
    }
    put("config/products.json".into(), &products());
    put("config/backends.json".into(), &backends());
    put("config/named-values.json".into(), &named_values());
    put(
        "config/policies/global.json".into(),
        &policy_resource(Scope::Global, GLOBAL_POLICY),
    );
    put(
        "config/policies/product-starter.json".into(),
        &policy_resource(
            Scope::Product("starter"),
            &starter_policy(current_calls(plan)),
        ),
    );
    put(
        "config/policies/product-unlimited.json".into(),
        &policy_resource(Scope::Product("unlimited"), &unlimited_policy()),
    );
    let shipping = APIS.len() - 1;
    put(
        format!("config/policies/api-{}.json", APIS[shipping].id),
        &policy_resource(Scope::Api(shipping), &api_policy(plan, shipping)),
    );
    put(
        "config/policies/operation-inventory-api-reserve-stock.json".into(),
        &policy_resource(Scope::Operation(O_RESERVE_STOCK), &reserve_stock_policy()),
    );
    if plan.shape.has_nsg() {
        put(format!("config/network/{NSG}.json"), &nsg(plan));
    }
    if let Some(a) = autoscale(plan) {
        put("config/autoscale.json".into(), &a);
    }
    for (a, api) in APIS.iter().enumerate().take(shipping) {
        out.push((
            format!("policies/apis/{}.xml", api.id),
            api_policy(plan, a).into_bytes(),
        ));
    }
    out.push((
        "policies/apis/orders-api/operations/create-order.xml".into(),
        create_order_policy(plan.scenario == Scenario::Misconfig).into_bytes(),
    ));
    out.push((
        "policies/apis/catalog-api/operations/get-product.xml".into(),
        get_product_policy(plan.scenario == Scenario::WrongRoute).into_bytes(),
    ));
    out
}

/// The starter product's calls per 300 s at the end of the data.
pub fn current_calls(plan: &Plan) -> u32 {
    if plan.scenario == Scenario::RateLimit {
        plan.calls_after
    } else {
        plan.calls_before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files_parse_and_policies_are_xml_shaped() {
        for s in Scenario::ALL {
            let plan = Plan::new(s, 1, 0.02, 120);
            let files = files(&plan);
            for (path, bytes) in &files {
                if path.ends_with(".json") {
                    let v: Value = serde_json::from_slice(bytes)
                        .unwrap_or_else(|e| panic!("{s:?} {path}: {e}"));
                    assert!(v.is_object() || v.is_array(), "{path}");
                } else {
                    let text = std::str::from_utf8(bytes).unwrap();
                    assert!(
                        text.starts_with("<policies>") && text.trim_end().ends_with("</policies>"),
                        "{path}"
                    );
                    assert_eq!(text.matches("<inbound>").count(), 1, "{path}");
                }
            }
            assert!(files.iter().any(|(p, b)| {
                p.contains("policies/operation-")
                    && String::from_utf8_lossy(b)
                        .contains("/operations/reserve-stock/policies/policy")
            }));
            assert_eq!(
                files.iter().any(|(p, _)| p.contains("network/")),
                plan.shape.has_nsg(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn scenario_changes_show_in_the_current_config() {
        let p = Plan::new(Scenario::PolicyTimeout, 1, 0.02, 120);
        let orders = files(&p)
            .into_iter()
            .find(|(path, _)| path == "policies/apis/orders-api.xml")
            .unwrap();
        assert!(
            String::from_utf8(orders.1)
                .unwrap()
                .contains("timeout=\"5\"")
        );
        let p = Plan::new(Scenario::NsgBlock, 1, 0.02, 120);
        let nsg = files(&p)
            .into_iter()
            .find(|(path, _)| path.contains("network/"))
            .unwrap();
        assert!(
            String::from_utf8(nsg.1)
                .unwrap()
                .contains("deny-payments-subnet-outbound")
        );
        assert!(get_product_policy(true).contains("catalog-legacy"));
        assert!(payments_policy(false).contains("<inbound>\n        <base />"));
        assert!(!payments_policy(true).contains("<inbound>\n        <base />"));
        assert!(payments_policy(true).contains("<outbound>\n        <base />"));
        assert!(create_order_policy(true).contains("</set-heade>"));
        assert!(shipping_policy(true).contains("chb_live_"));
        assert!(shipping_policy(false).contains("{{carrierhub-token}}"));
        assert!(!get_product_policy(false).contains("catalog-legacy"));
        assert_eq!(
            Scope::Operation(10).display(),
            "operation:catalog-api/get-product"
        );
    }
}
