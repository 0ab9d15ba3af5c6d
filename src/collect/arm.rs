//! Azure resources in every shape users export them: REST GET/list bodies,
//! the flattened `az` CLI output, ARM template resources (names and values
//! may be `[...]` expressions, read as unknown) and apiops artifacts
//! (`{"properties":…}` named by their folder). Each resource becomes a
//! service, API, operation, product, backend, policy, named value, NSG or
//! autoscale setting; other resource types count as `Other`.

use super::json::{
    arr, boolean, get, get_any, is_expression, line_of_string_value, number, obj, str_at, strings,
    text, u32_of,
};
use crate::model::{
    Access, Api, AutoscaleSetting, Backend, BackendKind, BreakerRule, Direction, InputKind,
    NamedValue, Nsg, Operation, Origin, PolicyDoc, PolicyScope, PoolMember, Problem, Product,
    ScaleProfile, ScaleRule, SecurityRule, Service, Snapshot, parse_iso_duration,
};
use serde_json::{Map, Value};

/// The document a resource came from: its name (for origins) and its text
/// (to find the line of embedded policies).
pub struct Doc<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Doc<'_> {
    pub fn origin(&self, record: Option<u32>) -> Origin {
        Origin {
            file: self.file.to_string(),
            line: None,
            record,
        }
    }
    pub fn reject(&self, snap: &mut Snapshot, record: Option<u32>, message: String) {
        snap.loaded.reject(Problem {
            origin: self.origin(record),
            message,
        });
    }
}

/// A resource's type (lower-cased, `namespace/type/child…`) and its name
/// segments, one per type level (`service`, `api`, `operation`…).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ident {
    pub rtype: String,
    pub names: Vec<String>,
}

impl Ident {
    fn name(&self, level: usize) -> Option<&str> {
        self.names.get(level).map(String::as_str)
    }
    fn last(&self) -> Option<&str> {
        self.names.last().map(String::as_str)
    }
}

/// Splits an ARM resource id into type and names. Uses the last
/// `providers` segment, so extension resources resolve to themselves.
pub fn parse_resource_id(id: &str) -> Option<Ident> {
    let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let at = segs
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))?;
    let rest = segs.get(at + 1..)?;
    let (ns, pairs) = rest.split_first()?;
    if pairs.is_empty() {
        return None;
    }
    let mut rtype = ns.to_ascii_lowercase();
    let mut names = Vec::new();
    for pair in pairs.chunks(2) {
        rtype.push('/');
        rtype.push_str(&pair[0].to_ascii_lowercase());
        if let Some(n) = pair.get(1) {
            names.push((*n).to_string());
        }
    }
    Some(Ident { rtype, names })
}

/// The last segment of a resource id (`…/backends/aoai-east` → `aoai-east`).
pub fn last_segment(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

// ---------------------------------------------------------------------------
// ARM template expressions

/// Renders an ARM expression: string literals as written, `parameters('x')`
/// and `variables('x')` as `{x}`, anything else as `{?}`. The flag says
/// whether the result is fully literal (no placeholder).
pub fn render_expression(s: &str) -> (String, bool) {
    let t = s.trim();
    if !is_expression(t) {
        return (
            t.strip_prefix("[[")
                .map_or(t.to_string(), |r| format!("[{r}")),
            true,
        );
    }
    let inner: Vec<char> = t[1..t.len() - 1].chars().collect();
    let mut p = ExprParser {
        c: &inner,
        i: 0,
        literal: true,
    };
    let out = p.value();
    p.skip_ws();
    if p.i < p.c.len() {
        return (format!("{out}{{?}}"), false);
    }
    (out, p.literal)
}

struct ExprParser<'a> {
    c: &'a [char],
    i: usize,
    literal: bool,
}

impl ExprParser<'_> {
    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }
    fn string(&mut self) -> String {
        // At an opening quote; `''` is an escaped quote.
        self.i += 1;
        let mut out = String::new();
        while let Some(ch) = self.peek() {
            self.i += 1;
            if ch == '\'' {
                if self.peek() == Some('\'') {
                    self.i += 1;
                    out.push('\'');
                } else {
                    return out;
                }
            } else {
                out.push(ch);
            }
        }
        out
    }
    fn args(&mut self) -> Vec<String> {
        // At `(`.
        self.i += 1;
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => return out,
                Some(')') => {
                    self.i += 1;
                    return out;
                }
                Some(',') => self.i += 1,
                Some(_) => {
                    let before = self.i;
                    out.push(self.value());
                    if self.i == before {
                        self.i += 1;
                    }
                }
            }
        }
    }
    fn value(&mut self) -> String {
        self.skip_ws();
        match self.peek() {
            Some('\'') => self.string(),
            Some(ch) if ch.is_alphanumeric() || ch == '_' => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                {
                    self.i += 1;
                }
                let name: String = self.c[start..self.i].iter().collect();
                self.skip_ws();
                if self.peek() != Some('(') {
                    self.literal = false;
                    return "{?}".into();
                }
                let lname = name.to_ascii_lowercase();
                let was_literal = self.literal;
                let args = self.args();
                let result = match lname.as_str() {
                    "concat" => {
                        self.literal = was_literal && self.literal;
                        args.concat()
                    }
                    "parameters" | "variables" => {
                        self.literal = false;
                        format!("{{{}}}", args.first().map_or("?", String::as_str))
                    }
                    _ => {
                        self.literal = false;
                        "{?}".into()
                    }
                };
                // Property access or indexing after a call: unknown.
                if matches!(self.peek(), Some('.') | Some('[')) {
                    self.literal = false;
                    while self.peek().is_some_and(|c| c != ',' && c != ')') {
                        self.i += 1;
                    }
                    return "{?}".into();
                }
                result
            }
            _ => {
                self.literal = false;
                "{?}".into()
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Classification

/// What a resource is, by type string or by shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Service,
    Api,
    Operation,
    Product,
    ProductApi,
    Backend,
    Policy,
    NamedValue,
    Nsg,
    NsgRule,
    NsgDefaultRule,
    Autoscale,
    ApiRevision,
    EffectiveNsg,
    /// A recognised resource apimedic does not use.
    Other,
}

/// Kind from a lower-cased resource type. Workspace-scoped APIM types are
/// read like their service-level twins.
pub fn kind_of_type(rtype: &str) -> Kind {
    let t = strip_workspace(rtype);
    match t.as_str() {
        "microsoft.apimanagement/service" => Kind::Service,
        "microsoft.apimanagement/service/apis" => Kind::Api,
        "microsoft.apimanagement/service/apis/operations" => Kind::Operation,
        "microsoft.apimanagement/service/products"
        | "microsoft.apimanagement/service/apis/products" => Kind::Product,
        "microsoft.apimanagement/service/products/apis"
        | "microsoft.apimanagement/service/products/apilinks" => Kind::ProductApi,
        "microsoft.apimanagement/service/backends" => Kind::Backend,
        "microsoft.apimanagement/service/policyfragments" => Kind::Policy,
        "microsoft.apimanagement/service/namedvalues"
        | "microsoft.apimanagement/service/properties" => Kind::NamedValue,
        "microsoft.network/networksecuritygroups" => Kind::Nsg,
        "microsoft.network/networksecuritygroups/securityrules" => Kind::NsgRule,
        "microsoft.network/networksecuritygroups/defaultsecurityrules" => Kind::NsgDefaultRule,
        "microsoft.insights/autoscalesettings" => Kind::Autoscale,
        _ if t.starts_with("microsoft.apimanagement/service/") && t.ends_with("/policies") => {
            Kind::Policy
        }
        _ => Kind::Other,
    }
}

fn strip_workspace(rtype: &str) -> String {
    rtype.replacen(
        "microsoft.apimanagement/service/workspaces/",
        "microsoft.apimanagement/service/",
        1,
    )
}

/// Kind from the shape of a resource's properties (no `type`, no `id`).
pub fn kind_of_shape(outer: &Map<String, Value>, props: &Map<String, Value>) -> Option<Kind> {
    let has = |k: &str| get(props, k).is_some_and(|v| !v.is_null());
    let value_is_xml = get(props, "value")
        .and_then(Value::as_str)
        .is_some_and(|v| v.trim_start().starts_with('<'));
    if value_is_xml || has("policyContent") {
        return Some(Kind::Policy);
    }
    if has("securityRules") || has("defaultSecurityRules") {
        return Some(Kind::Nsg);
    }
    if has("effectiveSecurityRules") {
        return Some(Kind::EffectiveNsg);
    }
    if has("profiles") && (has("targetResourceUri") || has("enabled")) {
        return Some(Kind::Autoscale);
    }
    if has("publisherEmail") || has("virtualNetworkType") || has("gatewayUrl") {
        return Some(Kind::Service);
    }
    if has("method") && has("urlTemplate") {
        return Some(Kind::Operation);
    }
    if has("apiId") && has("apiRevision") && (has("isOnline") || has("createdDateTime")) {
        return Some(Kind::ApiRevision);
    }
    if has("serviceUrl") || (has("path") && (has("protocols") || has("apiRevision"))) {
        return Some(Kind::Api);
    }
    if (has("url") && has("protocol")) || has("pool") || has("circuitBreaker") {
        return Some(Kind::Backend);
    }
    if has("secret") || has("keyVault") {
        return Some(Kind::NamedValue);
    }
    if has("subscriptionsLimit") || has("approvalRequired") {
        return Some(Kind::Product);
    }
    let _ = outer;
    None
}

/// Kind and name from an apiops artifact file name (`apiInformation.json`
/// in `apis/<name>/`). The name is the parent folder when the folder above
/// it is the expected collection; otherwise `None` (flattened copies).
pub fn apiops_hint(file: &str) -> Option<(Kind, Option<String>, Option<String>)> {
    let parts: Vec<&str> = file.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let (&fname, dirs) = parts.split_last()?;
    let lower = fname.to_ascii_lowercase();
    let (kind, collections): (Kind, &[&str]) = if lower.ends_with("productapiinformation.json") {
        (Kind::ProductApi, &["apis"])
    } else if lower.ends_with("apiinformation.json") && !lower.ends_with("tagapiinformation.json") {
        (Kind::Api, &["apis"])
    } else if lower.ends_with("backendinformation.json") {
        (Kind::Backend, &["backends"])
    } else if lower.ends_with("namedvalueinformation.json") {
        (
            Kind::NamedValue,
            &["named values", "namedvalues", "named_values"],
        )
    } else if lower.ends_with("productinformation.json")
        && !lower.ends_with("tagproductinformation.json")
    {
        (Kind::Product, &["products"])
    } else if lower.ends_with("information.json") {
        (Kind::Other, &[])
    } else {
        return None;
    };
    let n = dirs.len();
    let in_collection = |i: usize| {
        i < n
            && collections
                .iter()
                .any(|c| dirs.get(i).is_some_and(|d| d.eq_ignore_ascii_case(c)))
    };
    let name = (n >= 2 && in_collection(n - 2)).then(|| dirs[n - 1].to_string());
    // products/<p>/apis/<a>/productApiInformation.json: the product too.
    let parent =
        (kind == Kind::ProductApi && n >= 4 && dirs[n - 4].eq_ignore_ascii_case("products"))
            .then(|| dirs[n - 3].to_string());
    Some((kind, name, parent))
}

// ---------------------------------------------------------------------------
// Loading

/// Reads one resource object into `snap`. `ident` comes from the caller
/// (template name/type) or is derived here from `type`/`id`/`name`.
/// Returns false when the object is not a resource at all.
pub fn load_resource(
    doc: &Doc,
    o: &Map<String, Value>,
    ident: Option<Ident>,
    record: Option<u32>,
    snap: &mut Snapshot,
) -> bool {
    let props = obj(o, "properties").unwrap_or(o);
    let ident = ident.or_else(|| ident_of(o));
    let hint = apiops_hint(doc.file);
    let kind = match (&ident, &hint) {
        (Some(id), _) if !id.rtype.is_empty() => kind_of_type(&id.rtype),
        (_, Some((k, _, _))) if obj(o, "properties").is_some() || o.is_empty() => *k,
        _ => match kind_of_shape(o, props) {
            Some(k) => k,
            None => return false,
        },
    };
    if o.is_empty() && kind != Kind::ProductApi {
        return true; // An apiops association file that links nothing we use.
    }
    let ident = ident.unwrap_or_default();
    let hinted_name = hint.as_ref().and_then(|(_, n, _)| n.clone());
    // The entity's own name: id/name segments, else the apiops folder, else
    // the displayName, else the file name.
    let own_name = || -> String {
        ident
            .last()
            .map(str::to_string)
            .or_else(|| hinted_name.clone())
            .or_else(|| str_at(props, "displayName"))
            .unwrap_or_else(|| file_stem(doc.file))
    };
    let origin = doc.origin(record);
    match kind {
        Kind::Service => {
            let s = service(o, props, own_name(), origin);
            snap.loaded.count(InputKind::Service, 1);
            if snap.service.is_none() {
                snap.service = Some(s);
            }
        }
        Kind::Api => {
            snap.apis.push(api(props, own_name(), origin));
            snap.loaded.count(InputKind::Apis, 1);
        }
        Kind::ApiRevision => {
            let id = str_at(props, "apiId").map_or_else(own_name, |i| last_segment(&i).to_string());
            let mut a = api(props, id, origin);
            a.display_name = None;
            snap.apis.push(a);
            snap.loaded.count(InputKind::Apis, 1);
        }
        Kind::Operation => {
            let api_id = if ident.names.len() >= 3 {
                ident.names[ident.names.len() - 2].clone()
            } else {
                str_at(props, "apiId")
                    .map(|i| last_segment(&i).to_string())
                    .unwrap_or_default()
            };
            snap.operations.push(Operation {
                api_id,
                id: own_name(),
                display_name: str_at(props, "displayName"),
                method: str_at(props, "method"),
                url_template: str_at(props, "urlTemplate"),
                origin,
            });
            snap.loaded.count(InputKind::Operations, 1);
        }
        Kind::Product => {
            snap.products.push(Product {
                id: own_name(),
                display_name: str_at(props, "displayName"),
                subscription_required: boolean(get(props, "subscriptionRequired")),
                state: str_at(props, "state"),
                apis: Vec::new(),
                origin,
            });
            snap.loaded.count(InputKind::Products, 1);
        }
        Kind::ProductApi => {
            // A link, not a product: merged into the product later.
            let (product, api_name) = if ident.names.len() >= 3 {
                (
                    ident.name(1).map(str::to_string),
                    ident.last().map(str::to_string),
                )
            } else {
                let p = hint.as_ref().and_then(|(_, _, p)| p.clone());
                (p, hinted_name.clone())
            };
            if let (Some(product), Some(api_name)) = (product, api_name) {
                snap.products.push(Product {
                    id: product,
                    apis: vec![api_name],
                    origin,
                    ..Product::default()
                });
            }
        }
        Kind::Backend => {
            snap.backends.push(backend(props, own_name(), origin));
            snap.loaded.count(InputKind::Backends, 1);
        }
        Kind::Policy => {
            let scope = policy_scope(&ident);
            if let Some(p) = policy(doc, props, scope, record) {
                snap.policies.push(p);
                snap.loaded.count(InputKind::Policies, 1);
            } else {
                snap.loaded.count(InputKind::Other, 1);
            }
        }
        Kind::NamedValue => {
            let secret = boolean(get(props, "secret")).unwrap_or(false);
            snap.named_values.push(NamedValue {
                name: own_name(),
                display_name: str_at(props, "displayName"),
                value: if secret { None } else { str_at(props, "value") },
                secret,
                origin,
            });
            snap.loaded.count(InputKind::NamedValues, 1);
        }
        Kind::Nsg => {
            let id = str_at(o, "id");
            let nsg = nsg(doc, props, own_name(), id, record, snap);
            add_nsg(snap, nsg);
        }
        Kind::NsgRule | Kind::NsgDefaultRule => {
            // One rule on its own (a PUT response): an NSG holding just it.
            let default = kind == Kind::NsgDefaultRule;
            let name = ident.last().map_or_else(own_name, str::to_string);
            match security_rule(o, default) {
                Ok(rule) => {
                    let mut n = Nsg {
                        name: ident.name(0).unwrap_or_default().to_string(),
                        origin,
                        ..Nsg::default()
                    };
                    if default {
                        n.default_rules.push(rule);
                    } else {
                        n.rules.push(rule);
                    }
                    snap.nsgs.push(n);
                    snap.loaded.count(InputKind::Nsgs, 1);
                }
                Err(e) => doc.reject(snap, record, format!("security rule {name}: {e}")),
            }
        }
        Kind::EffectiveNsg => effective_nsg(doc, props, record, snap),
        Kind::Autoscale => {
            let a = autoscale(doc, props, own_name(), record, snap);
            snap.autoscale.push(a);
            snap.loaded.count(InputKind::Autoscale, 1);
        }
        Kind::Other => snap.loaded.count(InputKind::Other, 1),
    }
    true
}

fn file_stem(file: &str) -> String {
    let name = last_segment(&file.replace('\\', "/")).to_string();
    name.rsplit_once('.')
        .map_or(name.clone(), |(s, _)| s.to_string())
}

/// Type and names of an object from its `type` (only when it looks like a
/// resource type), `id` and `name`.
pub fn ident_of(o: &Map<String, Value>) -> Option<Ident> {
    let from_id = str_at(o, "id").and_then(|id| parse_resource_id(&id));
    let rtype = str_at(o, "type")
        .filter(|t| t.contains('/') && t.contains('.'))
        .map(|t| t.to_ascii_lowercase());
    match (from_id, rtype) {
        (Some(mut id), Some(t)) => {
            id.rtype = t;
            Some(id)
        }
        (Some(id), None) => Some(id),
        (None, Some(t)) => {
            let names = get(o, "name")
                .and_then(Value::as_str)
                .map(|n| {
                    render_expression(n)
                        .0
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            Some(Ident { rtype: t, names })
        }
        (None, None) => None,
    }
}

fn service(
    o: &Map<String, Value>,
    props: &Map<String, Value>,
    name: String,
    origin: Origin,
) -> Service {
    let sku = obj(o, "sku").or_else(|| obj(props, "sku"));
    let vnet = obj(props, "virtualNetworkConfiguration");
    Service {
        name,
        resource_id: str_at(o, "id"),
        location: str_at(o, "location"),
        sku: sku.and_then(|s| str_at(s, "name")),
        capacity: sku.and_then(|s| u32_of(get(s, "capacity"))),
        zones: strings(get(o, "zones")),
        vnet_type: str_at(props, "virtualNetworkType"),
        subnet_id: vnet.and_then(|v| str_at(v, "subnetResourceId")),
        platform_version: str_at(props, "platformVersion"),
        gateway_url: str_at(props, "gatewayUrl"),
        public_ips: strings(get(props, "publicIPAddresses")),
        private_ips: strings(get(props, "privateIPAddresses")),
        additional_locations: arr(props, "additionalLocations")
            .iter()
            .filter_map(|l| l.as_object().and_then(|l| str_at(l, "location")))
            .collect(),
        workspaces: Vec::new(),
        origin,
    }
}

fn api(props: &Map<String, Value>, id: String, origin: Origin) -> Api {
    Api {
        id,
        display_name: str_at(props, "displayName"),
        path: str_at(props, "path"),
        service_url: str_at(props, "serviceUrl"),
        subscription_required: boolean(get(props, "subscriptionRequired")),
        revision: str_at(props, "apiRevision"),
        is_current: boolean(get(props, "isCurrent")),
        // `az` lifts `properties`, so a top-level `type` may be the resource type.
        api_type: get_any(props, &["apiType", "type"])
            .and_then(|v| text(Some(v)))
            .filter(|t| !t.contains('/')),
        protocols: strings(get(props, "protocols")),
        origin,
    }
}

fn backend(props: &Map<String, Value>, id: String, origin: Origin) -> Backend {
    let pool = obj(props, "pool");
    let kind = match str_at(props, "type") {
        Some(t) if t.eq_ignore_ascii_case("pool") => BackendKind::Pool,
        _ if pool.is_some() => BackendKind::Pool,
        _ => BackendKind::Single,
    };
    let members = pool.map_or(&[][..], |p| arr(p, "services"));
    let breaker = obj(props, "circuitBreaker").map_or(&[][..], |c| arr(c, "rules"));
    Backend {
        id,
        kind,
        url: str_at(props, "url"),
        protocol: str_at(props, "protocol"),
        resource_id: str_at(props, "resourceId"),
        pool: members
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|m| {
                Some(PoolMember {
                    id: last_segment(&str_at(m, "id")?).to_string(),
                    priority: u32_of(get(m, "priority")),
                    weight: u32_of(get(m, "weight")),
                })
            })
            .collect(),
        circuit_breaker: breaker
            .iter()
            .filter_map(Value::as_object)
            .map(breaker_rule)
            .collect(),
        origin,
    }
}

fn breaker_rule(r: &Map<String, Value>) -> BreakerRule {
    let fc = obj(r, "failureCondition");
    let duration = |v: Option<String>| v.and_then(|d| parse_iso_duration(&d));
    BreakerRule {
        name: str_at(r, "name").unwrap_or_default(),
        count: fc.and_then(|f| u32_of(get(f, "count"))),
        interval_secs: duration(fc.and_then(|f| str_at(f, "interval"))),
        trip_duration_secs: duration(str_at(r, "tripDuration")),
        status_ranges: fc
            .map_or(&[][..], |f| arr(f, "statusCodeRanges"))
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|s| {
                let min = u32_of(get(s, "min")).and_then(|m| u16::try_from(m).ok())?;
                let max = u32_of(get(s, "max")).and_then(|m| u16::try_from(m).ok())?;
                Some((min, max))
            })
            .collect(),
        error_reasons: fc.map_or_else(Vec::new, |f| strings(get(f, "errorReasons"))),
    }
}

/// Policy scope from a policy resource's type and names.
pub fn policy_scope(ident: &Ident) -> PolicyScope {
    let t = ident.rtype.as_str();
    let n = |i: usize| ident.name(i).unwrap_or_default().to_string();
    let ws = t.starts_with("microsoft.apimanagement/service/workspaces/");
    // Workspace-scoped ids carry one more name (the workspace) after the service.
    let shift = usize::from(ws);
    match strip_workspace(t).as_str() {
        "microsoft.apimanagement/service/policies" if ws => PolicyScope::Workspace(n(1)),
        "microsoft.apimanagement/service/policies" => PolicyScope::Global,
        "microsoft.apimanagement/service/apis/policies" => PolicyScope::Api(n(1 + shift)),
        "microsoft.apimanagement/service/apis/operations/policies" => {
            PolicyScope::Operation(n(1 + shift), n(2 + shift))
        }
        "microsoft.apimanagement/service/products/policies" => PolicyScope::Product(n(1 + shift)),
        "microsoft.apimanagement/service/policyfragments" => PolicyScope::Fragment(n(1 + shift)),
        _ => PolicyScope::Unknown,
    }
}

/// A policy resource's XML: `value` (REST), or `policyContent` (2018
/// templates, possibly a `[concat('…')]` of literals). Link formats and
/// unresolvable expressions give `None`.
fn policy(
    doc: &Doc,
    props: &Map<String, Value>,
    scope: PolicyScope,
    record: Option<u32>,
) -> Option<PolicyDoc> {
    let format = str_at(props, "format")
        .or_else(|| str_at(props, "contentFormat"))
        .unwrap_or_else(|| "xml".into());
    if format.to_ascii_lowercase().ends_with("-link") {
        return None;
    }
    let raw = get_any(props, &["value", "policyContent"])?.as_str()?;
    let xml = if is_expression(raw) {
        match render_expression(raw) {
            (s, true) => s,
            _ => return None,
        }
    } else {
        raw.to_string()
    };
    if xml.trim().is_empty() {
        return None;
    }
    Some(PolicyDoc {
        scope,
        format,
        origin: Origin {
            file: doc.file.to_string(),
            line: line_of_string_value(doc.text, raw),
            record,
        },
        xml,
    })
}

fn nsg(
    doc: &Doc,
    props: &Map<String, Value>,
    name: String,
    resource_id: Option<String>,
    record: Option<u32>,
    snap: &mut Snapshot,
) -> Nsg {
    let mut n = Nsg {
        name,
        resource_id,
        origin: doc.origin(record),
        ..Nsg::default()
    };
    for (key, default) in [("securityRules", false), ("defaultSecurityRules", true)] {
        for r in arr(props, key) {
            let Some(r) = r.as_object() else {
                doc.reject(
                    snap,
                    record,
                    format!("NSG {}: a {key} entry is not an object", n.name),
                );
                continue;
            };
            match security_rule(r, default) {
                Ok(rule) if default => n.default_rules.push(rule),
                Ok(rule) => n.rules.push(rule),
                Err(e) => doc.reject(
                    snap,
                    record,
                    format!(
                        "NSG {}: rule {}: {e}; the rule is skipped",
                        n.name,
                        str_at(r, "name").unwrap_or_else(|| "(unnamed)".into())
                    ),
                ),
            }
        }
    }
    n.subnets = arr(props, "subnets")
        .iter()
        .filter_map(|s| s.as_object().and_then(|s| str_at(s, "id")))
        .collect();
    n
}

/// One security rule; singular and plural address/port fields unioned.
pub fn security_rule(r: &Map<String, Value>, default: bool) -> Result<SecurityRule, String> {
    let p = obj(r, "properties").unwrap_or(r);
    let union = |one: &str, many: &str| {
        let mut v = strings(get(p, one));
        for s in strings(get(p, many)) {
            if !v.contains(&s) {
                v.push(s);
            }
        }
        v
    };
    let priority = u32_of(get(p, "priority")).ok_or("priority is missing or not a whole number")?;
    let direction = match str_at(p, "direction")
        .map(|d| d.to_ascii_lowercase())
        .as_deref()
    {
        Some("inbound") => Direction::Inbound,
        Some("outbound") => Direction::Outbound,
        other => {
            return Err(format!(
                "direction must be Inbound or Outbound, found {other:?}"
            ));
        }
    };
    let access = match str_at(p, "access")
        .map(|d| d.to_ascii_lowercase())
        .as_deref()
    {
        Some("allow") => Access::Allow,
        Some("deny") => Access::Deny,
        other => return Err(format!("access must be Allow or Deny, found {other:?}")),
    };
    let protocol = match str_at(p, "protocol") {
        Some(pr) if pr.eq_ignore_ascii_case("all") => "*".to_string(),
        Some(pr) => pr,
        None => "*".to_string(),
    };
    let name = str_at(r, "name").unwrap_or_default();
    let name = name
        .strip_prefix("securityRules/")
        .or_else(|| name.strip_prefix("defaultSecurityRules/"))
        .unwrap_or(&name)
        .to_string();
    Ok(SecurityRule {
        name,
        priority,
        direction,
        access,
        protocol,
        source_prefixes: union("sourceAddressPrefix", "sourceAddressPrefixes"),
        source_ports: union("sourcePortRange", "sourcePortRanges"),
        destination_prefixes: union("destinationAddressPrefix", "destinationAddressPrefixes"),
        destination_ports: union("destinationPortRange", "destinationPortRanges"),
        description: str_at(p, "description"),
        default,
    })
}

/// `effectiveNetworkSecurityGroups` of a NIC: one NSG per entry, rules split
/// by their `securityRules/` or `defaultSecurityRules/` name prefix.
fn effective_nsg(doc: &Doc, e: &Map<String, Value>, record: Option<u32>, snap: &mut Snapshot) {
    let id = obj(e, "networkSecurityGroup").and_then(|n| str_at(n, "id"));
    let mut n = Nsg {
        name: id
            .as_deref()
            .map(last_segment)
            .unwrap_or("(effective)")
            .to_string(),
        resource_id: id.clone(),
        origin: doc.origin(record),
        ..Nsg::default()
    };
    if let Some(subnet) = obj(e, "association")
        .and_then(|a| obj(a, "subnet"))
        .and_then(|s| str_at(s, "id"))
    {
        n.subnets.push(subnet);
    }
    for r in arr(e, "effectiveSecurityRules")
        .iter()
        .filter_map(Value::as_object)
    {
        let default = str_at(r, "name").is_some_and(|s| s.starts_with("defaultSecurityRules/"));
        match security_rule(r, default) {
            Ok(rule) if default => n.default_rules.push(rule),
            Ok(rule) => n.rules.push(rule),
            Err(err) => doc.reject(
                snap,
                record,
                format!("effective rule of NSG {}: {err}", n.name),
            ),
        }
    }
    n.effective = true;
    add_nsg(snap, n);
}

fn add_nsg(snap: &mut Snapshot, n: Nsg) {
    snap.nsgs.push(n);
    snap.loaded.count(InputKind::Nsgs, 1);
}

fn autoscale(
    doc: &Doc,
    props: &Map<String, Value>,
    name: String,
    record: Option<u32>,
    snap: &mut Snapshot,
) -> AutoscaleSetting {
    let mut profiles = Vec::new();
    for p in arr(props, "profiles").iter().filter_map(Value::as_object) {
        let cap = obj(p, "capacity");
        let pname = str_at(p, "name").unwrap_or_default();
        let mut rules = Vec::new();
        for r in arr(p, "rules").iter().filter_map(Value::as_object) {
            match scale_rule(r) {
                Ok(rule) => rules.push(rule),
                Err(e) => doc.reject(
                    snap,
                    record,
                    format!("autoscale setting {name}, profile {pname}: {e}; the rule is skipped"),
                ),
            }
        }
        profiles.push(ScaleProfile {
            name: pname,
            minimum: cap.and_then(|c| u32_of(get(c, "minimum"))),
            maximum: cap.and_then(|c| u32_of(get(c, "maximum"))),
            default: cap.and_then(|c| u32_of(get(c, "default"))),
            rules,
        });
    }
    AutoscaleSetting {
        name,
        enabled: boolean(get(props, "enabled")),
        target_resource: str_at(props, "targetResourceUri"),
        profiles,
        origin: doc.origin(record),
    }
}

fn scale_rule(r: &Map<String, Value>) -> Result<ScaleRule, String> {
    let t = obj(r, "metricTrigger").ok_or("a rule has no metricTrigger")?;
    let a = obj(r, "scaleAction").ok_or("a rule has no scaleAction")?;
    let iso = |k: &str, o: &Map<String, Value>| str_at(o, k).and_then(|d| parse_iso_duration(&d));
    Ok(ScaleRule {
        metric: str_at(t, "metricName").ok_or("metricTrigger.metricName is missing")?,
        metric_resource: str_at(t, "metricResourceUri"),
        statistic: str_at(t, "statistic"),
        time_window_secs: iso("timeWindow", t),
        time_aggregation: str_at(t, "timeAggregation"),
        operator: str_at(t, "operator").ok_or("metricTrigger.operator is missing")?,
        threshold: number(get(t, "threshold"))
            .ok_or("metricTrigger.threshold is missing or not a number")?,
        direction: str_at(a, "direction").ok_or("scaleAction.direction is missing")?,
        change: u32_of(get(a, "value")),
        cooldown_secs: iso("cooldown", a),
    })
}

/// Every resource of an ARM template (nested child resources included, with
/// their type and name prefixed by the parent's).
pub fn load_template(doc: &Doc, resources: &[Value], snap: &mut Snapshot) {
    for (i, r) in resources.iter().enumerate() {
        let record = u32::try_from(i).ok();
        load_template_resource(doc, r, None, record, snap);
    }
}

fn load_template_resource(
    doc: &Doc,
    r: &Value,
    parent: Option<&Ident>,
    record: Option<u32>,
    snap: &mut Snapshot,
) {
    let Some(o) = r.as_object() else {
        doc.reject(
            snap,
            record,
            "a template resource is not a JSON object".into(),
        );
        return;
    };
    let rtype = str_at(o, "type")
        .or_else(|| get(o, "type").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let name = get(o, "name")
        .and_then(Value::as_str)
        .map(|n| render_expression(n).0)
        .unwrap_or_default();
    let mut names: Vec<String> = name
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut full_type = rtype.clone();
    if let Some(p) = parent {
        let child_levels = rtype.split('/').count();
        if !rtype.contains('.') || child_levels <= 1 {
            full_type = format!("{}/{}", p.rtype, rtype);
        }
        let levels = full_type.split('/').count().saturating_sub(1);
        if names.len() < levels {
            let mut n = p.names.clone();
            n.extend(names);
            names = n;
        }
    }
    if full_type.is_empty() {
        doc.reject(snap, record, "a template resource has no type".into());
        return;
    }
    let ident = Ident {
        rtype: full_type,
        names,
    };
    load_resource(doc, o, Some(ident.clone()), record, snap);
    for child in arr(o, "resources") {
        load_template_resource(doc, child, Some(&ident), record, snap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: &str, json: &str) -> Snapshot {
        let v: Value = serde_json::from_str(json).unwrap();
        let mut snap = Snapshot::default();
        let doc = Doc { file, text: json };
        assert!(load_resource(
            &doc,
            v.as_object().unwrap(),
            None,
            None,
            &mut snap
        ));
        snap
    }

    #[test]
    fn resource_ids() {
        let id = parse_resource_id(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/svc/apis/echo;rev=2/operations/get",
        )
        .unwrap();
        assert_eq!(id.rtype, "microsoft.apimanagement/service/apis/operations");
        assert_eq!(id.names, vec!["svc", "echo;rev=2", "get"]);
        assert_eq!(parse_resource_id("/subscriptions/s"), None);
        assert_eq!(last_segment("/a/b/backends/x"), "x");
    }

    #[test]
    fn expressions() {
        assert_eq!(
            render_expression("[concat(parameters('ApimServiceName'), '/echo-api/policy')]"),
            ("{ApimServiceName}/echo-api/policy".to_string(), false)
        );
        assert_eq!(
            render_expression("[concat('<policies>', 'it''s', '</policies>')]"),
            ("<policies>it's</policies>".to_string(), true)
        );
        assert!(!render_expression("[resourceGroup().location]").1);
        assert_eq!(render_expression("[[literal]").0, "[literal]");
        assert_eq!(render_expression("plain"), ("plain".to_string(), true));
        // Garbage never panics.
        for bad in [
            "[",
            "[]",
            "[concat(",
            "[concat('x]",
            "[a(b(c('d'),e)]",
            "[''']",
        ] {
            let _ = render_expression(bad);
        }
    }

    #[test]
    fn rest_api_and_revision() {
        let s = load(
            "apis.json",
            r#"{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/svc/apis/echo;rev=2",
                "type":"Microsoft.ApiManagement/service/apis","name":"echo;rev=2",
                "properties":{"displayName":"Echo","path":"echo","serviceUrl":"https://e","isCurrent":"False",
                "apiRevision":"2","type":"soap","protocols":["https"],"subscriptionRequired":true}}"#,
        );
        let a = &s.apis[0];
        assert_eq!(a.id, "echo;rev=2");
        assert_eq!(a.is_current, Some(false));
        assert_eq!(a.api_type.as_deref(), Some("soap"));
        assert_eq!(s.loaded.counts[&InputKind::Apis], 1);
    }

    #[test]
    fn az_flattened_api_and_service() {
        let s = load(
            "az.json",
            r#"{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/svc/apis/echo",
                "type":"Microsoft.ApiManagement/service/apis","name":"echo","resourceGroup":"rg",
                "path":"echo","serviceUrl":"https://e","isCurrent":true}"#,
        );
        assert_eq!(s.apis[0].api_type, None);
        assert_eq!(s.apis[0].path.as_deref(), Some("echo"));
        let s = load(
            "az.json",
            r#"{"name":"contoso","type":"Microsoft.ApiManagement/service","sku":{"name":"Premium","capacity":"2"},
                "zones":["1","2"],"publicIpAddresses":["20.1.2.3"],"virtualNetworkType":"Internal",
                "virtualNetworkConfiguration":{"subnetResourceId":"/x/subnets/apim"},"platformVersion":"stv2",
                "additionalLocations":[{"location":"North Europe"}]}"#,
        );
        let svc = s.service.unwrap();
        assert_eq!(
            (svc.sku.as_deref(), svc.capacity),
            (Some("Premium"), Some(2))
        );
        assert_eq!(svc.public_ips, vec!["20.1.2.3"]);
        assert_eq!(svc.subnet_id.as_deref(), Some("/x/subnets/apim"));
        assert_eq!(svc.additional_locations, vec!["North Europe"]);
        assert_eq!(svc.zones, vec!["1", "2"]);
    }

    #[test]
    fn az_flattened_nsg_unions_singular_and_plural() {
        let s = load(
            "nsg.json",
            r#"{"name":"apim-nsg","type":"Microsoft.Network/networkSecurityGroups","resourceGroup":"rg",
                "securityRules":[{"name":"r1","priority":"100","direction":"Outbound","access":"Deny",
                  "protocol":"Tcp","destinationPortRange":"443","destinationPortRanges":["80","443"],
                  "sourceAddressPrefix":"VirtualNetwork","sourceAddressPrefixes":[],"destinationAddressPrefix":"Internet"},
                  {"name":"broken","direction":"Sideways"}],
                "subnets":[{"id":"/x/subnets/apim"}]}"#,
        );
        let n = &s.nsgs[0];
        assert_eq!(n.rules.len(), 1);
        assert_eq!(n.rules[0].destination_ports, vec!["443", "80"]);
        assert_eq!(n.rules[0].source_prefixes, vec!["VirtualNetwork"]);
        assert_eq!(n.subnets, vec!["/x/subnets/apim"]);
        assert_eq!(s.loaded.problems.len(), 1);
        assert!(
            s.loaded.problems[0].message.contains("rule broken"),
            "{:?}",
            s.loaded.problems
        );
    }

    #[test]
    fn backend_pool_and_breaker() {
        let s = load(
            "b.json",
            r#"{"name":"pool","type":"Microsoft.ApiManagement/service/backends","properties":{"type":"Pool",
                "pool":{"services":[{"id":"/s/backends/east","priority":1,"weight":"3"}]},
                "circuitBreaker":{"rules":[{"name":"br","tripDuration":"PT1M","failureCondition":{"count":3,
                  "interval":"PT5M","statusCodeRanges":[{"min":500,"max":599}],"errorReasons":["timeout"]}}]}}}"#,
        );
        let b = &s.backends[0];
        assert_eq!(b.kind, BackendKind::Pool);
        assert_eq!(b.pool[0].id, "east");
        assert_eq!(b.pool[0].weight, Some(3));
        let r = &b.circuit_breaker[0];
        assert_eq!(
            (r.count, r.interval_secs, r.trip_duration_secs),
            (Some(3), Some(300.0), Some(60.0))
        );
        assert_eq!(r.status_ranges, vec![(500, 599)]);
    }

    #[test]
    fn policy_scopes_from_ids() {
        let cases = [
            (
                "/providers/Microsoft.ApiManagement/service/s/policies/policy",
                "global",
            ),
            (
                "/providers/Microsoft.ApiManagement/service/s/apis/a/policies/policy",
                "api:a",
            ),
            (
                "/providers/Microsoft.ApiManagement/service/s/apis/a/operations/o/policies/policy",
                "operation:a/o",
            ),
            (
                "/providers/Microsoft.ApiManagement/service/s/products/p/policies/policy",
                "product:p",
            ),
            (
                "/providers/Microsoft.ApiManagement/service/s/policyFragments/f",
                "fragment:f",
            ),
            (
                "/providers/Microsoft.ApiManagement/service/s/workspaces/w/policies/policy",
                "workspace:w",
            ),
            (
                "/providers/Microsoft.ApiManagement/service/s/workspaces/w/apis/a/policies/policy",
                "api:a",
            ),
        ];
        for (id, want) in cases {
            assert_eq!(
                policy_scope(&parse_resource_id(id).unwrap()).to_string(),
                want,
                "{id}"
            );
        }
    }

    #[test]
    fn template_policy_with_concat_literal_and_nested_children() {
        let json = r#"{"resources":[{"type":"Microsoft.ApiManagement/service/apis","name":"[concat(parameters('svc'), '/echo')]",
            "properties":{"path":"echo"},
            "resources":[{"type":"policies","name":"policy","properties":{
               "policyContent":"[concat('<policies>\r\n<inbound><base /></inbound>\r\n</policies>')]"}},
              {"type":"operations","name":"get","properties":{"method":"GET","urlTemplate":"/"}}]},
            {"type":"Microsoft.ApiManagement/service/products/policies","name":"[concat(parameters('svc'), '/p1/policy')]",
             "properties":{"policyContent":"[concat(parameters('base'), '/p.xml')]","contentFormat":"rawxml-link"}}]}"#;
        let v: Value = serde_json::from_str(json).unwrap();
        let mut snap = Snapshot::default();
        let doc = Doc {
            file: "t.json",
            text: json,
        };
        load_template(&doc, v["resources"].as_array().unwrap(), &mut snap);
        assert_eq!(snap.apis[0].id, "echo");
        assert_eq!(snap.policies.len(), 1);
        assert_eq!(snap.policies[0].scope, PolicyScope::Api("echo".into()));
        assert!(snap.policies[0].xml.starts_with("<policies>\r\n"));
        assert_eq!(snap.policies[0].origin.line, Some(4));
        assert_eq!(snap.operations[0].api_id, "echo");
        assert_eq!(snap.loaded.counts[&InputKind::Other], 1);
    }

    #[test]
    fn template_service_expressions_are_unknown() {
        let json = r#"{"type":"Microsoft.ApiManagement/service","name":"[parameters('n')]",
            "sku":{"name":"[parameters('sku')]","capacity":"[parameters('c')]"},"zones":"[parameters('z')]",
            "properties":{"virtualNetworkType":"Internal"}}"#;
        let v: Value = serde_json::from_str(json).unwrap();
        let mut snap = Snapshot::default();
        let doc = Doc {
            file: "t.json",
            text: json,
        };
        load_template(&doc, std::slice::from_ref(&v), &mut snap);
        let s = snap.service.unwrap();
        assert_eq!(s.name, "{n}");
        assert_eq!((s.sku, s.capacity), (None, None));
        assert!(s.zones.is_empty());
        assert_eq!(s.vnet_type.as_deref(), Some("Internal"));
        assert!(snap.loaded.problems.is_empty());
    }

    #[test]
    fn apiops_names_come_from_folders() {
        let s = load(
            "art/apis/orders/apiInformation.json",
            r#"{"properties":{"path":"orders","displayName":"Orders"}}"#,
        );
        assert_eq!(s.apis[0].id, "orders");
        let s = load(
            "flat__apis__x__apiInformation.json",
            r#"{"properties":{"path":"x","displayName":"X api"}}"#,
        );
        assert_eq!(s.apis[0].id, "X api");
        let s = load(
            "art/products/p1/apis/orders/productApiInformation.json",
            "{}",
        );
        assert_eq!(
            (s.products[0].id.as_str(), s.products[0].apis.clone()),
            ("p1", vec!["orders".to_string()])
        );
        assert!(s.loaded.counts.is_empty());
        let s = load(
            "art/loggers/m/loggerInformation.json",
            r#"{"properties":{"loggerType":"azureMonitor"}}"#,
        );
        assert_eq!(s.loaded.counts[&InputKind::Other], 1);
    }

    #[test]
    fn autoscale_rules_and_a_broken_one() {
        let s = load(
            "a.json",
            r#"{"name":"as","type":"Microsoft.Insights/autoscaleSettings","properties":{"enabled":true,
              "targetResourceUri":"/x/service/contoso","profiles":[{"name":"default",
              "capacity":{"minimum":"1","maximum":"4","default":"1"},"rules":[
              {"metricTrigger":{"metricName":"Capacity","statistic":"Average","timeWindow":"PT30M",
                "timeAggregation":"Average","operator":"GreaterThan","threshold":80},
               "scaleAction":{"direction":"Increase","type":"ChangeCount","value":"1","cooldown":"PT60M"}},
              {"metricTrigger":{"metricName":"Capacity"},"scaleAction":{"direction":"Decrease"}}]}]}}"#,
        );
        let a = &s.autoscale[0];
        assert_eq!(a.profiles[0].maximum, Some(4));
        assert_eq!(a.profiles[0].rules.len(), 1);
        let r = &a.profiles[0].rules[0];
        assert_eq!(
            (r.time_window_secs, r.cooldown_secs, r.change),
            (Some(1800.0), Some(3600.0), Some(1))
        );
        assert_eq!(s.loaded.rejected, 1);
        assert!(
            s.loaded.problems[0].message.contains("operator"),
            "{:?}",
            s.loaded.problems
        );
    }
}
