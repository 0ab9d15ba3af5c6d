//! Activity log events (REST/`az` form with `eventTimestamp`, and the
//! storage/Event Hub form with `time` and flat `operationName`) into
//! `Change`s: what was written, when, by whom, and — for policy writes —
//! which scope and which XML.
//!
//! `policy_after` is the policy `value` found in `properties.requestbody`,
//! else in `properties.responseBody` (both describe the state after the
//! write), else a `properties.policyAfter` string (the simulator writes it).
//! `policy_before` only comes from `properties.policyBefore`: Azure does not
//! log the previous state.

use super::arm::{Doc, Kind, kind_of_type, parse_resource_id, policy_scope};
use super::json::{get, get_any, localized, obj, str_at};
use crate::model::{Change, ChangeKind, InputKind, Origin, PolicyScope, Snapshot, parse_timestamp};
use serde_json::{Map, Value};

/// An activity-log event in either form: `eventTimestamp` (REST, `az`), or
/// `time` + `operationName` + `resourceId` with an activity-log category.
pub fn is_activity_event(o: &Map<String, Value>) -> bool {
    if get(o, "eventTimestamp").is_some() {
        return true;
    }
    let category = localized(get(o, "category")).unwrap_or_default();
    // Storage / Event Hub form: other resource-log categories (App Service
    // HTTP logs, WebSocket logs…) share these keys but are not changes.
    let activity_category = ACTIVITY_CATEGORIES
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&category));
    activity_category
        && get(o, "time").is_some()
        && get(o, "operationName").is_some()
        && get(o, "resourceId").is_some()
}

/// Activity log categories (the docs use both `Administrative` and
/// `Write`/`Delete`/`Action` for administrative events).
const ACTIVITY_CATEGORIES: [&str; 11] = [
    "Administrative",
    "Write",
    "Delete",
    "Action",
    "ServiceHealth",
    "ResourceHealth",
    "Alert",
    "Autoscale",
    "Recommendation",
    "Security",
    "Policy",
];
/// What kind of change an operation on a resource is.
pub fn change_kind(operation: &str, category: &str, sets_sku: bool) -> ChangeKind {
    let op = operation.to_ascii_lowercase();
    if op.ends_with("/delete") {
        ChangeKind::Delete
    } else if op.starts_with("microsoft.insights/autoscalesettings")
        || category.eq_ignore_ascii_case("autoscale")
        || op.starts_with("microsoft.web/serverfarms")
        || (sets_sku && op.starts_with("microsoft.apimanagement/service/write"))
    {
        ChangeKind::Scale
    } else if op.starts_with("microsoft.apimanagement/") {
        ChangeKind::Config
    } else if op.starts_with("microsoft.web/sites") || op.starts_with("microsoft.app/containerapps")
    {
        ChangeKind::Deployment
    } else if op.starts_with("microsoft.network/") {
        ChangeKind::Network
    } else {
        ChangeKind::Other
    }
}

/// A JSON body logged as a string (`requestbody`, `responseBody`).
fn body(props: &Map<String, Value>, key: &str) -> Option<Map<String, Value>> {
    match get(props, key)? {
        Value::String(s) if !s.trim().is_empty() => serde_json::from_str::<Value>(s)
            .ok()
            .and_then(|v| v.as_object().cloned()),
        Value::Object(o) => Some(o.clone()),
        _ => None,
    }
}

/// The policy XML a request or response body carries.
fn policy_value(b: &Map<String, Value>) -> Option<String> {
    let p = obj(b, "properties").unwrap_or(b);
    let v = get(p, "value")?.as_str()?;
    v.trim_start().starts_with('<').then(|| v.to_string())
}

/// Reads one event; a missing or bad timestamp or operation is a problem.
pub fn load_event(doc: &Doc, o: &Map<String, Value>, record: Option<u32>, snap: &mut Snapshot) {
    let origin = Origin {
        file: doc.file.to_string(),
        line: None,
        record,
    };
    let stamp = str_at(o, "eventTimestamp").or_else(|| str_at(o, "time"));
    let Some(time) = stamp.as_deref().and_then(parse_timestamp) else {
        snap.loaded.reject(crate::model::Problem {
            origin,
            message: format!(
                "activity log event without a valid eventTimestamp/time ({}); skipped",
                stamp.as_deref().unwrap_or("absent")
            ),
        });
        return;
    };
    if let Err(why) = crate::model::check_plausible(time) {
        snap.loaded.reject(crate::model::Problem {
            origin,
            message: format!("activity log event time {why}; skipped"),
        });
        return;
    }
    let Some(operation) = localized(get(o, "operationName")) else {
        snap.loaded.reject(crate::model::Problem {
            origin,
            message: "activity log event without operationName; skipped".into(),
        });
        return;
    };
    let props = obj(o, "properties");
    let request = props.and_then(|p| body(p, "requestbody"));
    let response = props.and_then(|p| body(p, "responseBody"));
    let sets_sku = request.as_ref().is_some_and(|r| get(r, "sku").is_some());
    let category = localized(get(o, "category")).unwrap_or_default();
    let resource_id = str_at(o, "resourceId");
    let policy_scope = resource_id
        .as_deref()
        .and_then(parse_resource_id)
        .filter(|i| kind_of_type(&i.rtype) == Kind::Policy)
        .map(|i| policy_scope(&i))
        .filter(|s| *s != PolicyScope::Unknown);
    let policy_after = request
        .as_ref()
        .and_then(policy_value)
        .or_else(|| response.as_ref().and_then(policy_value))
        .or_else(|| props.and_then(|p| str_at(p, "policyAfter")));
    let caller = str_at(o, "caller").or_else(|| {
        let claims = obj(o, "identity").and_then(|i| obj(i, "claims"))?;
        get_any(
            claims,
            &[
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
                "name",
                "appid",
            ],
        )
        .and_then(|v| v.as_str())
        .map(|s| s.trim().to_string())
    });
    let status = localized(get(o, "status")).or_else(|| str_at(o, "resultType"));
    let description = str_at(o, "description").or_else(|| str_at(o, "resultDescription"));
    snap.loaded.see_time(time);
    snap.loaded.count(InputKind::ActivityLog, 1);
    snap.changes.push(Change {
        time,
        kind: change_kind(&operation, &category, sets_sku),
        operation,
        status,
        resource_id,
        caller,
        policy_scope,
        policy_after,
        policy_before: props.and_then(|p| str_at(p, "policyBefore")),
        description,
        origin,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Snapshot {
        let v: Value = serde_json::from_str(json).unwrap();
        let o = v.as_object().unwrap();
        assert!(is_activity_event(o), "{json}");
        let mut snap = Snapshot::default();
        load_event(
            &Doc {
                file: "a.json",
                text: json,
            },
            o,
            Some(0),
            &mut snap,
        );
        snap
    }

    #[test]
    fn rest_policy_write_with_request_body() {
        let body = serde_json::to_string(&serde_json::json!({"properties":{"format":"rawxml","value":"<policies><inbound><base /></inbound></policies>"}})).unwrap();
        let event = serde_json::json!({
            "eventTimestamp":"2024-05-14T08:58:41.2210943Z","caller":"ops@contoso.com",
            "operationName":{"value":"Microsoft.ApiManagement/service/apis/operations/policies/write"},
            "status":{"value":"Succeeded"},"category":{"value":"Administrative"},
            "resourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso/apis/orders/operations/get-order/policies/policy",
            "properties":{"requestbody": body, "policyBefore":"<policies/>"}
        });
        let s = load(&event.to_string());
        let c = &s.changes[0];
        assert_eq!(c.kind, ChangeKind::Config);
        assert_eq!(
            c.policy_scope,
            Some(PolicyScope::Operation("orders".into(), "get-order".into()))
        );
        assert_eq!(
            c.policy_after.as_deref(),
            Some("<policies><inbound><base /></inbound></policies>")
        );
        assert_eq!(c.policy_before.as_deref(), Some("<policies/>"));
        assert_eq!(c.caller.as_deref(), Some("ops@contoso.com"));
        assert_eq!(c.status.as_deref(), Some("Succeeded"));
        assert_eq!(s.loaded.counts[&InputKind::ActivityLog], 1);
    }

    #[test]
    fn storage_form_nsg_write() {
        let s = load(
            r#"{"time":"2024-05-14T08:58:41.2210943Z","operationName":"microsoft.network/networksecuritygroups/securityrules/write",
               "category":"Administrative","resultType":"Success","resultSignature":"Succeeded.Created","level":"Information",
               "resourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/apim-nsg/securityRules/deny-internet",
               "identity":{"claims":{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":"a@b.c"}}}"#,
        );
        let c = &s.changes[0];
        assert_eq!(c.kind, ChangeKind::Network);
        assert_eq!(c.status.as_deref(), Some("Success"));
        assert_eq!(c.caller.as_deref(), Some("a@b.c"));
        assert_eq!(c.policy_scope, None);
    }

    #[test]
    fn other_resource_log_categories_are_not_events() {
        let v: Value = serde_json::from_str(
            r#"{"time":"2024-05-14T08:58:41Z","resourceId":"/x/providers/Microsoft.Web/sites/app","category":"AppServiceHTTPLogs",
                "operationName":"Microsoft.Web/sites/log","properties":{"ScStatus":500}}"#,
        )
        .unwrap();
        assert!(!is_activity_event(v.as_object().unwrap()));
    }

    #[test]
    fn kinds() {
        assert_eq!(
            change_kind("Microsoft.ApiManagement/service/backends/delete", "", false),
            ChangeKind::Delete
        );
        assert_eq!(
            change_kind("Microsoft.ApiManagement/service/write", "", true),
            ChangeKind::Scale
        );
        assert_eq!(
            change_kind("Microsoft.ApiManagement/service/write", "", false),
            ChangeKind::Config
        );
        assert_eq!(
            change_kind("Microsoft.App/containerApps/write", "", false),
            ChangeKind::Deployment
        );
        assert_eq!(
            change_kind("Microsoft.Web/sites/slots/slotsswap/action", "", false),
            ChangeKind::Deployment
        );
        assert_eq!(
            change_kind("microsoft.insights/autoscalesettings/write", "", false),
            ChangeKind::Scale
        );
        assert_eq!(
            change_kind(
                "Microsoft.Insights/AutoscaleSettings/Scaleup/Action",
                "Autoscale",
                false
            ),
            ChangeKind::Scale
        );
        assert_eq!(
            change_kind("microsoft.support/supporttickets/write", "", false),
            ChangeKind::Other
        );
    }

    #[test]
    fn bad_time_is_one_problem() {
        let s = load(r#"{"eventTimestamp":"yesterday","operationName":{"value":"x/write"}}"#);
        assert!(s.changes.is_empty());
        assert_eq!(s.loaded.rejected, 1);
        assert!(s.loaded.problems[0].message.contains("yesterday"));
        assert_eq!(s.loaded.problems[0].origin.record, Some(0));
    }
}
