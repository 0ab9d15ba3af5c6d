//! Azure Monitor metrics REST responses (formats.md §2): the gateway's
//! `Requests` split by `GatewayResponseCodeCategory`, `Capacity`, `Duration`,
//! `BackendDuration` (and `CpuPercent_Gateway`/`MemoryPercent_Gateway` on v2
//! tiers) per minute; the backend apps' Container Apps and App Service
//! metrics per five minutes. Request counts come from the generated
//! requests; resource gauges follow the nominal load, so they look the same
//! at any `--scale`.

use super::catalog::{
    AppKind, B_CATALOG, B_INVENTORY, BACKENDS, CONTAINER_MEMORY_LIMIT, LOCATION, service_id,
};
use super::json::compact;
use super::plan::{Plan, diurnal};
use super::rng::Rng;
use super::traffic::Req;
use crate::model::Timestamp;
use serde_json::{Map, Value, json};

fn iso(minute: i64) -> String {
    Timestamp::from_minute(minute).to_rfc3339()
}

/// A data point: `{"timeStamp": …, agg: value, …}`; aggregations whose value
/// is `None` are left out (a point with only a timestamp is missing data).
fn point(minute: i64, values: &[(&str, Option<f64>)]) -> Value {
    let mut m = Map::new();
    m.insert("timeStamp".into(), json!(iso(minute)));
    for (agg, v) in values {
        if let Some(v) = v {
            m.insert((*agg).into(), json!(round(*v)));
        }
    }
    Value::Object(m)
}

fn round(v: f64) -> f64 {
    if v.abs() >= 1000.0 {
        v.round()
    } else {
        (v * 100.0).round() / 100.0
    }
}

struct Series {
    dims: Vec<(&'static str, String)>,
    data: Vec<Value>,
}

fn metric(resource: &str, name: &str, unit: &str, series: Vec<Series>) -> Value {
    let ts: Vec<Value> = series
        .into_iter()
        .map(|s| {
            let md: Vec<Value> = s
                .dims
                .iter()
                .map(|(k, v)| json!({"name": {"value": k, "localizedValue": k}, "value": v}))
                .collect();
            json!({"metadatavalues": md, "data": s.data})
        })
        .collect();
    json!({
        "id": format!("{resource}/providers/Microsoft.Insights/metrics/{name}"),
        "type": "Microsoft.Insights/metrics",
        "name": {"value": name, "localizedValue": name},
        "unit": unit,
        "timeseries": ts,
        "errorCode": "Success"
    })
}

fn response(plan: &Plan, interval: &str, namespace: &str, metrics: Vec<Value>) -> Vec<u8> {
    let minutes = (plan.end - plan.start) as u64;
    let doc = json!({
        "cost": minutes * metrics.len() as u64,
        "timespan": format!("{}/{}", iso(plan.start), iso(plan.end)),
        "interval": interval,
        "value": metrics,
        "namespace": namespace,
        "resourceregion": LOCATION
    });
    let mut s = compact(&doc);
    s.push('\n');
    s.into_bytes()
}

fn category(code: u16) -> &'static str {
    match code {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Every metrics file.
pub fn files(plan: &Plan, reqs: &[Req]) -> Vec<(String, Vec<u8>)> {
    let mut out = gateway(plan, reqs);
    out.extend(apps(plan, reqs));
    out
}

fn gateway(plan: &Plan, reqs: &[Req]) -> Vec<(String, Vec<u8>)> {
    let n = (plan.end - plan.start) as usize;
    let cats = ["2xx", "3xx", "4xx", "5xx"];
    let mut counts = vec![[0u32; 4]; n];
    let mut dur = vec![(0f64, 0u32); n];
    let mut bdur = vec![(0f64, 0u32); n];
    for r in reqs {
        let Ok(i) = usize::try_from(r.minute() - plan.start) else {
            continue;
        };
        if i >= n {
            continue;
        }
        let c = cats
            .iter()
            .position(|c| *c == category(r.code))
            .unwrap_or(3);
        counts[i][c] += 1;
        dur[i].0 += f64::from(r.total);
        dur[i].1 += 1;
        if let Some(b) = r.backend_time {
            bdur[i].0 += f64::from(b);
            bdur[i].1 += 1;
        }
    }
    let rid = service_id();
    let series: Vec<Series> = (0..cats.len())
        .filter(|c| counts.iter().any(|m| m[*c] > 0))
        .map(|c| Series {
            dims: vec![("gatewayresponsecodecategory", cats[c].to_string())],
            data: (0..n)
                .map(|i| {
                    point(
                        plan.start + i as i64,
                        &[("total", Some(f64::from(counts[i][c])))],
                    )
                })
                .collect(),
        })
        .collect();
    let requests = response(
        plan,
        "PT1M",
        "Microsoft.ApiManagement/service",
        vec![metric(&rid, "Requests", "Count", series)],
    );

    let mut rng = Rng::derive(plan.seed, &[plan.scenario.code(), 0x0043_4150]);
    let premium = plan.shape.sku == "Premium";
    let mut cap = Vec::new();
    let mut cpu = Vec::new();
    let mut mem = Vec::new();
    for i in 0..n {
        let m = plan.start + i as i64;
        let avg = (plan.capacity(m) + 1.2 * rng.normal()).clamp(0.5, 100.0);
        let max = if premium {
            Some((avg + 3.0 * rng.normal().abs()).min(100.0))
        } else {
            Some(0.0)
        };
        cap.push(point(m, &[("average", Some(avg)), ("maximum", max)]));
        cpu.push(point(
            m,
            &[(
                "average",
                Some((avg * 0.85 + 2.0 * rng.normal()).clamp(0.5, 100.0)),
            )],
        ));
        mem.push(point(
            m,
            &[("average", Some(31.0 + 0.2 * avg + rng.normal()))],
        ));
    }
    let avg = |(sum, k): (f64, u32)| (k > 0).then(|| sum / f64::from(k));
    let one = |data: Vec<Value>| {
        vec![Series {
            dims: Vec::new(),
            data,
        }]
    };
    let mut perf = vec![
        metric(&rid, "Capacity", "Percent", one(cap)),
        metric(
            &rid,
            "Duration",
            "MilliSeconds",
            one((0..n)
                .map(|i| point(plan.start + i as i64, &[("average", avg(dur[i]))]))
                .collect()),
        ),
        metric(
            &rid,
            "BackendDuration",
            "MilliSeconds",
            one((0..n)
                .map(|i| point(plan.start + i as i64, &[("average", avg(bdur[i]))]))
                .collect()),
        ),
    ];
    if plan.shape.is_v2() {
        perf.push(metric(&rid, "CpuPercent_Gateway", "Percent", one(cpu)));
        perf.push(metric(&rid, "MemoryPercent_Gateway", "Percent", one(mem)));
    }
    vec![
        ("metrics/apim-requests.json".to_string(), requests),
        (
            "metrics/apim-performance.json".to_string(),
            response(plan, "PT1M", "Microsoft.ApiManagement/service", perf),
        ),
    ]
}

/// Per five-minute bucket of one app.
#[derive(Default, Clone)]
struct Bucket {
    by_cat: [u32; 3],
    resp_ms: f64,
    resp_n: u32,
}

/// Memory working set of an app at `minute`, in bytes.
fn working_set(plan: &Plan, b: usize, minute: i64, rng: &mut Rng) -> f64 {
    const MB: f64 = 1_048_576.0;
    let base = match BACKENDS[b].id {
        "orders-app" => 420.0,
        "inventory-app" => 380.0,
        "catalog-web" => 650.0,
        "catalog-legacy" => 540.0,
        _ => 300.0,
    };
    let load = diurnal(minute) * plan.surge(minute);
    let normal = (base + 80.0 * load + 6.0 * rng.normal()) * MB;
    if b == B_CATALOG && plan.broken_build(minute) {
        // The broken build's workers crash and come back small.
        return normal * (0.25 + 0.05 * rng.normal().abs());
    }
    if b != B_INVENTORY || plan.scenario != super::Scenario::BackendOom {
        return normal;
    }
    let limit = CONTAINER_MEMORY_LIMIT - 9.0 * MB;
    if minute >= plan.leak_start && minute < plan.incident {
        let p = (minute - plan.leak_start) as f64 / (plan.incident - plan.leak_start).max(1) as f64;
        return normal + (limit - normal) * p;
    }
    if plan.oom_phase(minute) {
        let last = plan.kills.iter().rev().find(|k| **k <= minute);
        let next = plan
            .kills
            .iter()
            .find(|k| **k > minute)
            .copied()
            .unwrap_or(minute + 7);
        if let Some(k) = last {
            let p = (minute - k) as f64 / (next - k).max(1) as f64;
            return 330.0 * MB + (limit - 330.0 * MB) * p.min(1.0);
        }
    }
    normal
}

fn apps(plan: &Plan, reqs: &[Req]) -> Vec<(String, Vec<u8>)> {
    let from = plan.start.div_euclid(5) * 5;
    let nb = ((plan.end - from) as usize).div_ceil(5);
    let mut out = Vec::new();
    for (b, def) in BACKENDS.iter().enumerate() {
        if def.kind == AppKind::Plain {
            continue;
        }
        let mut buckets = vec![Bucket::default(); nb];
        for r in reqs {
            if r.served_by != Some(b) {
                continue;
            }
            let Some(code) = r.backend_code else { continue };
            let Ok(i) = usize::try_from((r.minute() - from) / 5) else {
                continue;
            };
            let Some(bk) = buckets.get_mut(i) else {
                continue;
            };
            let c = match code {
                200..=399 => 0,
                400..=499 => 1,
                _ => 2,
            };
            bk.by_cat[c] += 1;
            if let Some(t) = r.backend_time {
                bk.resp_ms += f64::from(t);
                bk.resp_n += 1;
            }
        }
        let mut rng = Rng::derive(plan.seed, &[plan.scenario.code(), 0x0041_5050, b as u64]);
        let mut ws_avg = Vec::new();
        let mut ws_max = Vec::new();
        let mut cores = Vec::new();
        let mut restarts = Vec::new();
        for i in 0..nb {
            let t0 = from + 5 * i as i64;
            let mut sum = 0.0;
            let mut max: f64 = 0.0;
            let mut cpu = 0.0;
            let mut kills = 0;
            for m in t0..t0 + 5 {
                let ws = working_set(plan, b, m, &mut rng);
                sum += ws;
                max = max.max(ws);
                let load = diurnal(m) * plan.surge(m);
                let gc = if b == B_INVENTORY && plan.oom_phase(m) {
                    1.8
                } else {
                    1.0
                };
                cpu += (0.04 + 0.3 * load) * gc * (1.0 + 0.05 * rng.normal());
                if b == B_INVENTORY && plan.kills.contains(&m) {
                    kills += 1;
                    max = CONTAINER_MEMORY_LIMIT;
                }
            }
            ws_avg.push(sum / 5.0);
            ws_max.push(max);
            cores.push(cpu / 5.0);
            restarts.push(kills);
        }
        let rid = def.resource_id().unwrap_or_default();
        let at = |i: usize| from + 5 * i as i64;
        let one = |data: Vec<Value>| {
            vec![Series {
                dims: Vec::new(),
                data,
            }]
        };
        match def.kind {
            AppKind::ContainerApp => {
                let main = vec![
                    metric(
                        &rid,
                        "UsageNanoCores",
                        "NanoCores",
                        one((0..nb)
                            .map(|i| point(at(i), &[("average", Some(cores[i] * 1e9))]))
                            .collect()),
                    ),
                    metric(
                        &rid,
                        "WorkingSetBytes",
                        "Bytes",
                        one((0..nb)
                            .map(|i| {
                                point(
                                    at(i),
                                    &[("average", Some(ws_avg[i])), ("maximum", Some(ws_max[i]))],
                                )
                            })
                            .collect()),
                    ),
                    metric(
                        &rid,
                        "MemoryPercentage",
                        "Percent",
                        one((0..nb)
                            .map(|i| {
                                point(
                                    at(i),
                                    &[(
                                        "average",
                                        Some(100.0 * ws_avg[i] / CONTAINER_MEMORY_LIMIT),
                                    )],
                                )
                            })
                            .collect()),
                    ),
                    metric(
                        &rid,
                        "RestartCount",
                        "Count",
                        one((0..nb)
                            .map(|i| point(at(i), &[("total", Some(f64::from(restarts[i])))]))
                            .collect()),
                    ),
                    metric(
                        &rid,
                        "Replicas",
                        "Count",
                        one((0..nb)
                            .map(|i| point(at(i), &[("maximum", Some(1.0))]))
                            .collect()),
                    ),
                ];
                out.push((
                    format!("metrics/apps/{}.json", def.id),
                    response(plan, "PT5M", "Microsoft.App/containerApps", main),
                ));
                let cats = ["2xx", "4xx", "5xx"];
                let series: Vec<Series> = (0..3)
                    .filter(|c| buckets.iter().any(|bk| bk.by_cat[*c] > 0))
                    .map(|c| Series {
                        dims: vec![("statuscodecategory", cats[c].to_string())],
                        data: (0..nb)
                            .map(|i| {
                                point(at(i), &[("total", Some(f64::from(buckets[i].by_cat[c])))])
                            })
                            .collect(),
                    })
                    .collect();
                out.push((
                    format!("metrics/apps/{}-requests.json", def.id),
                    response(
                        plan,
                        "PT5M",
                        "Microsoft.App/containerApps",
                        vec![metric(&rid, "Requests", "Count", series)],
                    ),
                ));
            }
            AppKind::AppService => {
                let count = |c: usize| -> Vec<Value> {
                    (0..nb)
                        .map(|i| point(at(i), &[("total", Some(f64::from(buckets[i].by_cat[c])))]))
                        .collect()
                };
                let main = vec![
                    metric(
                        &rid,
                        "Requests",
                        "Count",
                        one((0..nb)
                            .map(|i| {
                                point(
                                    at(i),
                                    &[(
                                        "total",
                                        Some(f64::from(buckets[i].by_cat.iter().sum::<u32>())),
                                    )],
                                )
                            })
                            .collect()),
                    ),
                    metric(&rid, "Http4xx", "Count", one(count(1))),
                    metric(&rid, "Http5xx", "Count", one(count(2))),
                    metric(
                        &rid,
                        "AverageResponseTime",
                        "Seconds",
                        one((0..nb)
                            .map(|i| {
                                let bk = &buckets[i];
                                point(
                                    at(i),
                                    &[(
                                        "average",
                                        (bk.resp_n > 0)
                                            .then(|| bk.resp_ms / f64::from(bk.resp_n) / 1000.0),
                                    )],
                                )
                            })
                            .collect()),
                    ),
                    metric(
                        &rid,
                        "MemoryWorkingSet",
                        "Bytes",
                        one((0..nb)
                            .map(|i| point(at(i), &[("average", Some(ws_avg[i]))]))
                            .collect()),
                    ),
                    metric(
                        &rid,
                        "CpuTime",
                        "Seconds",
                        one((0..nb)
                            .map(|i| point(at(i), &[("total", Some(cores[i] * 300.0))]))
                            .collect()),
                    ),
                ];
                let mut main = main;
                if b == B_CATALOG && plan.scenario == super::Scenario::AppServiceDeploy {
                    // This site has a health check path configured: Azure
                    // reports the percent of instances passing it.
                    main.push(metric(
                        &rid,
                        "HealthCheckStatus",
                        "Percent",
                        one((0..nb)
                            .map(|i| {
                                let ok = (at(i)..at(i) + 5).all(|m| !plan.broken_build(m));
                                point(at(i), &[("average", Some(if ok { 100.0 } else { 0.0 }))])
                            })
                            .collect()),
                    ));
                }
                out.push((
                    format!("metrics/apps/{}.json", def.id),
                    response(plan, "PT5M", "Microsoft.Web/sites", main),
                ));
            }
            AppKind::Plain => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::Scenario;
    use crate::simulate::traffic::requests;

    fn data(doc: &Value, metric: &str, agg: &str) -> Vec<f64> {
        doc["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"]["value"] == metric)
            .map(|m| {
                m["timeseries"][0]["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p[agg].as_f64())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn gateway_requests_match_the_logs() {
        let plan = Plan::new(Scenario::NsgBlock, 1, 0.03, 120);
        let reqs = requests(&plan);
        let files = files(&plan, &reqs);
        let (_, bytes) = files
            .iter()
            .find(|(p, _)| p == "metrics/apim-requests.json")
            .unwrap();
        let v: Value = serde_json::from_slice(bytes).unwrap();
        let ts = v["value"][0]["timeseries"].as_array().unwrap();
        let total: f64 = ts
            .iter()
            .flat_map(|s| s["data"].as_array().unwrap().iter())
            .filter_map(|p| p["total"].as_f64())
            .sum();
        assert_eq!(total as usize, reqs.len());
        assert!(ts.iter().any(|s| s["metadatavalues"][0]["value"] == "5xx"));
        assert_eq!(
            ts[0]["metadatavalues"][0]["name"]["value"],
            "gatewayresponsecodecategory"
        );
        assert_eq!(ts[0]["data"].as_array().unwrap().len(), 120);
    }

    #[test]
    fn oom_shows_in_memory_and_restarts_only_for_inventory() {
        let plan = Plan::new(Scenario::BackendOom, 1, 0.03, 300);
        let reqs = requests(&plan);
        let files = files(&plan, &reqs);
        let doc = |name: &str| -> Value {
            let (_, b) = files.iter().find(|(p, _)| p == name).unwrap();
            serde_json::from_slice(b).unwrap()
        };
        let inv = doc("metrics/apps/inventory-app.json");
        let restarts: f64 = data(&inv, "RestartCount", "total").iter().sum();
        assert_eq!(restarts as usize, plan.kills.len());
        let max = data(&inv, "WorkingSetBytes", "maximum");
        assert!(max.iter().any(|m| *m >= CONTAINER_MEMORY_LIMIT));
        assert!(max[0] < 0.6 * CONTAINER_MEMORY_LIMIT);
        let orders = doc("metrics/apps/orders-app.json");
        assert_eq!(
            data(&orders, "RestartCount", "total").iter().sum::<f64>(),
            0.0
        );
        let web = doc("metrics/apps/catalog-web.json");
        assert!(!data(&web, "AverageResponseTime", "average").is_empty());
        let perf = doc("metrics/apim-performance.json");
        assert_eq!(data(&perf, "Capacity", "average").len(), 300);
        assert!(data(&perf, "CpuPercent_Gateway", "average").is_empty());
    }
}
