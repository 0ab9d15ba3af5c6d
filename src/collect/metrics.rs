//! Azure Monitor metrics REST responses (`{timespan, interval, value:[{name,
//! unit, timeseries:[{metadatavalues, data}]}]}`) into one `MetricSeries` per
//! metric, timeseries and aggregation. The source (gateway or backend app)
//! comes from the resource type in the id; multi-resource answers name the
//! resource in the `Microsoft.ResourceId` dimension.

use super::arm::{Doc, last_segment, parse_resource_id};
use super::json::{arr, get, localized, number, obj, str_at};
use crate::model::{InputKind, MetricSeries, MetricSource, Origin, Snapshot, parse_timestamp};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const AGGREGATIONS: [&str; 5] = ["total", "average", "maximum", "minimum", "count"];

/// A metrics response: `value` holds metric objects (with `timeseries`), or
/// is empty beside `timespan`/`interval`.
pub fn is_metrics_response(o: &Map<String, Value>) -> bool {
    let Some(items) = get(o, "value").and_then(Value::as_array) else {
        return false;
    };
    match items.first().and_then(Value::as_object) {
        Some(m) => get(m, "timeseries").is_some(),
        None => items.is_empty() && get(o, "timespan").is_some() && get(o, "interval").is_some(),
    }
}

/// Source of a metric by the resource (or namespace) it is about.
pub fn source_of(resource_type: &str) -> MetricSource {
    let t = resource_type.to_ascii_lowercase();
    if t.starts_with("microsoft.apimanagement/service")
        || t.starts_with("microsoft.apimanagement/gateways")
    {
        MetricSource::Gateway
    } else if t.starts_with("microsoft.app/containerapps") || t.starts_with("microsoft.web/sites") {
        MetricSource::BackendApp
    } else {
        MetricSource::Other
    }
}

/// The resource a metric id is about: the id up to `/providers/Microsoft.Insights/metrics`.
fn resource_of_metric_id(id: &str) -> Option<String> {
    let lower = id.to_ascii_lowercase();
    let at = lower.find("/providers/microsoft.insights/metrics")?;
    let r = &id[..at];
    parse_resource_id(r).map(|_| r.to_string())
}

/// Loads every series of a metrics response. Metrics Azure answered with an
/// `errorCode` other than `Success` become one problem each.
pub fn load_metrics(doc: &Doc, o: &Map<String, Value>, snap: &mut Snapshot) {
    let namespace = str_at(o, "namespace");
    for (i, m) in arr(o, "value").iter().enumerate() {
        let record = u32::try_from(i).ok();
        let Some(m) = m.as_object() else {
            doc.reject(snap, record, "a metric entry is not a JSON object".into());
            continue;
        };
        let name = localized(get(m, "name")).unwrap_or_default();
        if let Some(code) = str_at(m, "errorCode").filter(|c| !c.eq_ignore_ascii_case("success")) {
            let msg = str_at(m, "errorMessage").unwrap_or_default();
            doc.reject(
                snap,
                record,
                format!("metric {name}: Azure answered error {code}: {msg}")
                    .trim_end_matches(": ")
                    .to_string(),
            );
            continue;
        }
        let unit = str_at(m, "unit");
        let metric_resource = str_at(m, "id").and_then(|id| resource_of_metric_id(&id));
        for ts in arr(m, "timeseries").iter().filter_map(Value::as_object) {
            let mut dimensions = BTreeMap::new();
            let mut resource_id = metric_resource.clone();
            for d in arr(ts, "metadatavalues")
                .iter()
                .filter_map(Value::as_object)
            {
                let Some(dname) = localized(get(d, "name")) else {
                    continue;
                };
                let value = str_at(d, "value").unwrap_or_default();
                if dname.eq_ignore_ascii_case("microsoft.resourceid") {
                    resource_id = Some(value);
                } else {
                    dimensions.insert(dname.to_ascii_lowercase(), value);
                }
            }
            let rtype = resource_id
                .as_deref()
                .and_then(parse_resource_id)
                .map(|i| i.rtype)
                .or_else(|| namespace.clone())
                .unwrap_or_default();
            let mut by_agg: BTreeMap<&str, Vec<_>> = BTreeMap::new();
            for (j, p) in arr(ts, "data").iter().enumerate() {
                let Some(p) = p.as_object() else { continue };
                let stamp = str_at(p, "timeStamp").unwrap_or_default();
                let Some(t) = parse_timestamp(&stamp) else {
                    doc.reject(
                        snap,
                        record,
                        format!(
                            "metric {name}: point {j} has no valid timeStamp ({stamp:?}); skipped"
                        ),
                    );
                    continue;
                };
                if let Err(why) = crate::model::check_plausible(t) {
                    doc.reject(
                        snap,
                        record,
                        format!("metric {name}: point {j} timeStamp {why}; skipped"),
                    );
                    continue;
                }
                for agg in AGGREGATIONS {
                    if let Some(v) = number(get(p, agg)) {
                        by_agg.entry(agg).or_default().push((t, v));
                        snap.loaded.see_time(t);
                    }
                }
            }
            for (agg, points) in by_agg {
                snap.metrics.push(MetricSeries {
                    resource: resource_id.as_deref().map(|r| last_segment(r).to_string()),
                    resource_id: resource_id.clone(),
                    source: source_of(&rtype),
                    name: name.clone(),
                    unit: unit.clone(),
                    aggregation: agg.to_string(),
                    dimensions: dimensions.clone(),
                    points,
                    origin: Origin {
                        file: doc.file.to_string(),
                        line: None,
                        record,
                    },
                });
                snap.loaded.count(InputKind::Metrics, 1);
            }
        }
    }
}

/// One record of the diagnostic-settings metrics export (`AllMetrics` to a
/// storage account or Event Hub): `{time, resourceId, metricName,
/// timeGrain, count, total, minimum, maximum, average}`.
pub fn is_metric_record(o: &Map<String, Value>) -> bool {
    get(o, "metricName").is_some() && get(o, "time").is_some() && get(o, "timeGrain").is_some()
}

/// Folds exported metric records into one series per resource, metric and
/// aggregation (the export has no dimensions). A record without a valid
/// time is one problem at its line or record index.
pub fn load_metric_records(records: &[(Origin, &Map<String, Value>)], snap: &mut Snapshot) {
    type Key = (String, String, &'static str);
    let mut series: BTreeMap<Key, (Origin, Vec<_>)> = BTreeMap::new();
    for (origin, r) in records {
        let name = str_at(r, "metricName").unwrap_or_default();
        let stamp = str_at(r, "time").unwrap_or_default();
        let t = match parse_timestamp(&stamp) {
            None => Err(format!("time is not a timestamp ({stamp:?})")),
            Some(t) => crate::model::check_plausible(t).map_err(|why| format!("time {why}")),
        };
        let t = match t {
            Ok(t) => t,
            Err(why) => {
                snap.loaded.reject(crate::model::Problem {
                    origin: origin.clone(),
                    message: format!("metric record {name}: {why}; skipped"),
                });
                continue;
            }
        };
        let resource = str_at(r, "resourceId").unwrap_or_default();
        for agg in AGGREGATIONS {
            if let Some(v) = number(get(r, agg)) {
                series
                    .entry((resource.clone(), name.clone(), agg))
                    .or_insert_with(|| (origin.clone(), Vec::new()))
                    .1
                    .push((t, v));
                snap.loaded.see_time(t);
            }
        }
    }
    for ((resource, name, agg), (origin, mut points)) in series {
        points.sort_by_key(|(t, _)| *t);
        let rtype = parse_resource_id(&resource)
            .map(|i| i.rtype)
            .unwrap_or_default();
        snap.metrics.push(MetricSeries {
            resource: (!resource.is_empty()).then(|| last_segment(&resource).to_string()),
            resource_id: (!resource.is_empty()).then_some(resource),
            source: source_of(&rtype),
            name,
            unit: None,
            aggregation: agg.to_string(),
            dimensions: BTreeMap::new(),
            points,
            origin,
        });
        snap.loaded.count(InputKind::Metrics, 1);
    }
}

/// A Prometheus HTTP API answer (`{"status":"success","data":{"resultType":…}}`).
pub fn is_prometheus(o: &Map<String, Value>) -> bool {
    get(o, "status").is_some() && obj(o, "data").is_some_and(|d| get(d, "resultType").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(json: &str) -> Snapshot {
        let v: Value = serde_json::from_str(json).unwrap();
        let o = v.as_object().unwrap();
        assert!(is_metrics_response(o));
        let mut snap = Snapshot::default();
        load_metrics(
            &Doc {
                file: "m.json",
                text: json,
            },
            o,
            &mut snap,
        );
        snap
    }

    #[test]
    fn gateway_requests_by_category_skip_missing_points() {
        let s = load(
            r#"{"timespan":"t","interval":"PT1M","value":[{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso/providers/Microsoft.Insights/metrics/Requests",
              "name":{"value":"Requests"},"unit":"Count","timeseries":[{"metadatavalues":[{"name":{"value":"GatewayResponseCodeCategory"},"value":"5xx"}],
              "data":[{"timeStamp":"2024-05-14T09:00:00Z","total":3},{"timeStamp":"2024-05-14T09:01:00Z","total":41},{"timeStamp":"2024-05-14T09:02:00Z"}]}]}]}"#,
        );
        let m = &s.metrics[0];
        assert_eq!(m.source, MetricSource::Gateway);
        assert_eq!(m.resource.as_deref(), Some("contoso"));
        assert_eq!(m.aggregation, "total");
        assert_eq!(m.points.len(), 2);
        assert_eq!(m.dimensions["gatewayresponsecodecategory"], "5xx");
        assert_eq!(s.loaded.counts[&InputKind::Metrics], 1);
        assert!(s.loaded.time_range.is_some());
    }

    #[test]
    fn backend_apps_and_two_aggregations() {
        let s = load(
            r#"{"value":[{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/inventory-app/providers/Microsoft.Insights/metrics/RestartCount",
              "name":{"value":"RestartCount"},"unit":"Count","timeseries":[{"data":[{"timeStamp":"2024-05-14T09:00:00Z","total":1,"maximum":1}]}]},
              {"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/orders/providers/Microsoft.Insights/metrics/Http5xx",
              "name":{"value":"Http5xx"},"unit":"Count","timeseries":[]}]}"#,
        );
        assert_eq!(s.metrics.len(), 2);
        assert!(
            s.metrics
                .iter()
                .all(|m| m.source == MetricSource::BackendApp)
        );
        assert_eq!(s.metrics[0].resource.as_deref(), Some("inventory-app"));
    }

    #[test]
    fn per_metric_error_and_bad_timestamp_are_problems() {
        let s = load(
            r#"{"value":[{"name":{"value":"X"},"timeseries":[],"errorCode":"InvalidSamplingType","errorMessage":"Sampling type is not found."},
              {"name":{"value":"Y"},"timeseries":[{"data":[{"timeStamp":"17:xx","average":1},{"timeStamp":"2024-05-14T09:00:00Z","average":2}]}]}]}"#,
        );
        assert_eq!(s.loaded.rejected, 2);
        assert!(s.loaded.problems[0].message.contains("InvalidSamplingType"));
        assert_eq!(s.loaded.problems[0].origin.record, Some(0));
        assert_eq!(s.metrics[0].points.len(), 1);
        assert_eq!(s.metrics[0].source, MetricSource::Other);
    }

    #[test]
    fn multi_resource_dimension_names_the_resource() {
        let s = load(
            r#"{"namespace":"microsoft.compute/virtualmachines","value":[{"id":"subscriptions/s/providers/Microsoft.Insights/metrics/Percentage CPU",
              "name":{"value":"Percentage CPU"},"timeseries":[{"metadatavalues":[{"name":{"value":"Microsoft.ResourceId"},
              "value":"/subscriptions/s/resourceGroups/r/providers/Microsoft.Web/sites/api1"}],
              "data":[{"timeStamp":"2023-06-25T22:35:00Z","average":3.2}]}]}]}"#,
        );
        let m = &s.metrics[0];
        assert_eq!(m.resource.as_deref(), Some("api1"));
        assert_eq!(m.source, MetricSource::BackendApp);
        assert!(m.dimensions.is_empty());
    }

    #[test]
    fn exported_metric_records_fold_into_series() {
        let rid =
            "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/CONTOSO";
        let rows: Vec<Map<String, Value>> = [
            ("2024-05-14T09:01:00.0000000Z", "Requests", 7.0),
            ("2024-05-14T09:00:00.0000000Z", "Requests", 5.0),
            ("bad", "Requests", 1.0),
            ("2024-05-14T09:00:00.0000000Z", "Capacity", 40.0),
        ]
        .iter()
        .map(|(t, m, v)| {
            serde_json::json!({"time": t, "resourceId": rid, "metricName": m, "timeGrain": "PT1M",
                "count": 1, "total": v, "minimum": v, "maximum": v, "average": v})
            .as_object()
            .unwrap()
            .clone()
        })
        .collect();
        assert!(rows.iter().all(is_metric_record));
        let refs: Vec<(Origin, &Map<String, Value>)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (Origin::at_line("PT1H.json", i as u32 + 1), r))
            .collect();
        let mut snap = Snapshot::default();
        load_metric_records(&refs, &mut snap);
        assert_eq!(snap.metrics.len(), 10);
        let req = snap
            .metrics
            .iter()
            .find(|m| m.name == "Requests" && m.aggregation == "total")
            .unwrap();
        assert_eq!(
            req.points.iter().map(|p| p.1).collect::<Vec<_>>(),
            vec![5.0, 7.0]
        );
        assert_eq!(req.source, MetricSource::Gateway);
        assert_eq!(req.resource.as_deref(), Some("CONTOSO"));
        assert_eq!(snap.loaded.rejected, 1);
        assert_eq!(snap.loaded.problems[0].origin.line, Some(3));
    }
}
