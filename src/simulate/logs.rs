//! Gateway request logs in the shapes users export them (formats.md §1):
//! Log Analytics data-export NDJSON rows of `ApiManagementGatewayLogs`,
//! storage-account `PT1H.json` blobs (gzip-compressed, camelCase
//! `properties` with a nested `lastError`, late records in the next hour's
//! blob), and the stringified JSON array `az monitor log-analytics query`
//! prints.

use super::catalog::{APIS, GATEWAY, OPS, REGION, RG_APIM, SERVICE, SUBSCRIPTION};
use super::json::quote;
use super::traffic::Req;
use crate::model::Timestamp;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::io::Write as _;

/// How a scenario's logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogShape {
    /// `logs/ApiManagementGatewayLogs.ndjson`, one row per line.
    LogAnalyticsNdjson,
    /// The same rows gzip-compressed, as users keep large exports
    /// (`logs/ApiManagementGatewayLogs.ndjson.gz`).
    LogAnalyticsNdjsonGzip,
    /// `logs/insights-logs-gatewaylogs/…/PT1H.json.gz`, one blob per hour.
    StorageGzip,
    /// `logs/gateway-logs.az.json`, the `az` CLI's array of string values.
    AzCli,
    /// `logs/gateway-logs.query.json`, the Log Analytics query API's
    /// `{"tables":[{"columns":…,"rows":…}]}` answer.
    QueryTables,
}

/// `2026-03-02T10:15:03.5120000Z`: seven fractional digits, as Log
/// Analytics and resource logs write them.
pub fn ts7(ms: i64) -> String {
    let whole = Timestamp::from_millis(ms - ms.rem_euclid(1000)).to_rfc3339();
    let stem = whole.trim_end_matches('Z');
    format!("{stem}.{:03}0000Z", ms.rem_euclid(1000))
}

fn url(r: &Req) -> String {
    format!("{GATEWAY}/{}{}", APIS[OPS[r.op].api].path, r.path)
}

pub fn write(shape: LogShape, reqs: &[Req]) -> Vec<(String, Vec<u8>)> {
    match shape {
        LogShape::LogAnalyticsNdjson | LogShape::LogAnalyticsNdjsonGzip => {
            let mut out = String::with_capacity(reqs.len() * 520);
            for r in reqs {
                out.push_str(&la_row(r));
                out.push('\n');
            }
            if shape == LogShape::LogAnalyticsNdjsonGzip {
                return vec![(
                    "logs/ApiManagementGatewayLogs.ndjson.gz".to_string(),
                    gzip(out.as_bytes()),
                )];
            }
            vec![(
                "logs/ApiManagementGatewayLogs.ndjson".to_string(),
                out.into_bytes(),
            )]
        }
        LogShape::StorageGzip => storage_blobs(reqs),
        LogShape::AzCli => vec![("logs/gateway-logs.az.json".to_string(), az_rows(reqs))],
        LogShape::QueryTables => vec![(
            "logs/gateway-logs.query.json".to_string(),
            query_tables(reqs),
        )],
    }
}

/// One `ApiManagementGatewayLogs` row as Log Analytics data export writes
/// it, for the columns a typical export keeps: empty columns left out.
fn la_row(r: &Req) -> String {
    let op = &OPS[r.op];
    let mut s = String::with_capacity(560);
    let _ = write!(
        s,
        "{{\"TimeGenerated\":\"{}\",\"CorrelationId\":\"{}\",\"Region\":{},\"IsRequestSuccess\":{},\"TotalTime\":{},\"CallerIpAddress\":\"{}\",\"Method\":\"{}\",\"Url\":{},\"ResponseCode\":{}",
        ts7(r.t_ms),
        r.corr,
        quote(REGION),
        r.code < 400,
        r.total,
        r.ip,
        op.method,
        quote(&url(r)),
        r.code
    );
    if !r.backend_url.is_empty() {
        let _ = write!(s, ",\"BackendUrl\":{}", quote(&r.backend_url));
    }
    if let Some(c) = r.backend_code {
        let _ = write!(s, ",\"BackendResponseCode\":{c}");
    }
    if let Some(b) = r.backend_time {
        let _ = write!(s, ",\"BackendTime\":{b}");
    }
    let _ = write!(
        s,
        ",\"ApiId\":\"{}\",\"OperationId\":\"{}\",\"ProductId\":\"{}\",\"ApimSubscriptionId\":\"{}\"",
        r.api(),
        op.id,
        r.product(),
        super::catalog::SUBSCRIPTIONS[r.sub].id
    );
    if !r.backend_id.is_empty() {
        let _ = write!(s, ",\"BackendId\":\"{}\"", r.backend_id);
    }
    if let Some(e) = r.err {
        let _ = write!(
            s,
            ",\"LastErrorElapsed\":{},\"LastErrorSource\":\"{}\",\"LastErrorScope\":\"{}\",\"LastErrorSection\":\"{}\",\"LastErrorReason\":\"{}\",\"LastErrorMessage\":{}",
            e.elapsed,
            e.source,
            e.scope,
            e.section,
            e.reason,
            quote(e.message)
        );
    }
    s.push_str(",\"Type\":\"ApiManagementGatewayLogs\"}");
    s
}

fn resource_id_upper() -> String {
    format!(
        "/SUBSCRIPTIONS/{}/RESOURCEGROUPS/{}/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/{}",
        SUBSCRIPTION.to_uppercase(),
        RG_APIM.to_uppercase(),
        SERVICE.to_uppercase()
    )
}

/// A resource-log record (storage account / Event Hub form).
fn storage_record(r: &Req, resource_id: &str) -> String {
    let op = &OPS[r.op];
    let mut p = String::with_capacity(700);
    let _ = write!(
        p,
        "{{\"method\":\"{}\",\"url\":{},",
        op.method,
        quote(&url(r))
    );
    if let Some(c) = r.backend_code {
        let _ = write!(p, "\"backendResponseCode\":{c},");
    }
    let _ = write!(
        p,
        "\"responseCode\":{},\"responseSize\":{},\"cache\":\"none\",",
        r.code, r.resp_size
    );
    if let Some(b) = r.backend_time {
        let _ = write!(p, "\"backendTime\":{b},");
    }
    let _ = write!(
        p,
        "\"requestSize\":{},\"apiId\":\"{}\",\"operationId\":\"{}\",\"apimSubscriptionId\":\"{}\",\"productId\":\"{}\",\"clientTime\":{},\"clientProtocol\":\"HTTP/1.1\",\"apiRevision\":\"1\",\"clientTlsVersion\":\"1.2\"",
        r.req_size,
        r.api(),
        op.id,
        super::catalog::SUBSCRIPTIONS[r.sub].id,
        r.product(),
        r.client_time
    );
    if !r.backend_url.is_empty() {
        let _ = write!(
            p,
            ",\"backendProtocol\":\"HTTP/1.1\",\"backendMethod\":\"{}\",\"backendUrl\":{}",
            op.method,
            quote(&r.backend_url)
        );
    }
    if !r.backend_id.is_empty() {
        let _ = write!(p, ",\"backendId\":\"{}\"", r.backend_id);
    }
    if let Some(e) = r.err {
        let _ = write!(
            p,
            ",\"lastError\":{{\"elapsed\":{},\"source\":\"{}\",\"scope\":\"{}\",\"section\":\"{}\",\"reason\":\"{}\",\"message\":{}}}",
            e.elapsed,
            e.source,
            e.scope,
            e.section,
            e.reason,
            quote(e.message)
        );
    }
    p.push('}');
    format!(
        "{{ \"DeploymentVersion\": \"0.46.17003.0\", \"Level\": 4, \"isRequestSuccess\": {}, \"time\": \"{}\", \"operationName\": \"Microsoft.ApiManagement/GatewayLogs\", \"category\": \"GatewayLogs\", \"durationMs\": {}, \"callerIpAddress\": \"{}\", \"correlationId\": \"{}\", \"location\": {}, \"properties\": {}, \"resourceId\": \"{}\"}}",
        r.code < 400,
        ts7(r.t_ms),
        r.total,
        r.ip,
        r.corr,
        quote(REGION),
        p,
        resource_id
    )
}

/// Hourly `PT1H.json` blobs, gzip-compressed. A record goes to the blob of
/// the hour it *arrived* in (request end plus a second of pipeline delay),
/// so a few land in the next hour's blob, as in real exports.
fn storage_blobs(reqs: &[Req]) -> Vec<(String, Vec<u8>)> {
    let rid = resource_id_upper();
    let mut hours: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
    for r in reqs {
        let arrival = r.t_ms + i64::from(r.total) + 1_000;
        hours
            .entry(arrival.div_euclid(3_600_000))
            .or_default()
            .push((arrival, storage_record(r, &rid)));
    }
    let mut out = Vec::new();
    for (hour, mut recs) in hours {
        recs.sort_by_key(|(a, _)| *a);
        let mut text = String::new();
        for (_, line) in recs {
            text.push_str(&line);
            text.push('\n');
        }
        let t = Timestamp::from_millis(hour * 3_600_000).to_rfc3339();
        let (y, mo, d, h) = (&t[0..4], &t[5..7], &t[8..10], &t[11..13]);
        let path = format!(
            "logs/insights-logs-gatewaylogs/resourceId={rid}/y={y}/m={mo}/d={d}/h={h}/m=00/PT1H.json.gz"
        );
        out.push((path, gzip(text.as_bytes())));
    }
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// The `az monitor log-analytics query` output of a projecting query:
/// every value through Python `str()`, keys sorted, `TableName` added.
fn az_rows(reqs: &[Req]) -> Vec<u8> {
    let none = || "None".to_string();
    let mut out = String::with_capacity(reqs.len() * 900 + 4);
    out.push('[');
    for (i, r) in reqs.iter().enumerate() {
        let op = &OPS[r.op];
        let e = r.err;
        let mut row: BTreeMap<&str, String> = BTreeMap::new();
        row.insert("ApiId", r.api().to_string());
        row.insert(
            "ApimSubscriptionId",
            super::catalog::SUBSCRIPTIONS[r.sub].id.to_string(),
        );
        row.insert("BackendId", r.backend_id.to_string());
        row.insert(
            "BackendResponseCode",
            r.backend_code.map_or_else(none, |c| c.to_string()),
        );
        row.insert(
            "BackendTime",
            r.backend_time.map_or_else(none, |b| b.to_string()),
        );
        row.insert("BackendUrl", r.backend_url.clone());
        row.insert("CallerIpAddress", r.ip.clone());
        row.insert("CorrelationId", r.corr.clone());
        row.insert(
            "IsRequestSuccess",
            if r.code < 400 { "True" } else { "False" }.to_string(),
        );
        row.insert("LastErrorMessage", e.map_or("", |e| e.message).to_string());
        row.insert("LastErrorReason", e.map_or("", |e| e.reason).to_string());
        row.insert("LastErrorSource", e.map_or("", |e| e.source).to_string());
        row.insert("Method", op.method.to_string());
        row.insert("OperationId", op.id.to_string());
        row.insert("ProductId", r.product().to_string());
        row.insert("Region", REGION.to_string());
        row.insert("ResponseCode", r.code.to_string());
        row.insert("TableName", "PrimaryResult".to_string());
        row.insert("TimeGenerated", Timestamp::from_millis(r.t_ms).to_rfc3339());
        row.insert("TotalTime", r.total.to_string());
        row.insert("Url", url(r));
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n  {");
        for (j, (k, v)) in row.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "\n    \"{k}\": {}", quote(v));
        }
        out.push_str("\n  }");
    }
    out.push_str("\n]\n");
    out.into_bytes()
}

/// The query API's answer to `ApiManagementGatewayLogs | project …`: typed
/// columns, one array per row (null where a column is empty).
fn query_tables(reqs: &[Req]) -> Vec<u8> {
    const COLUMNS: [(&str, &str); 16] = [
        ("TimeGenerated", "datetime"),
        ("ApiId", "string"),
        ("OperationId", "string"),
        ("ApimSubscriptionId", "string"),
        ("BackendId", "string"),
        ("Method", "string"),
        ("Url", "string"),
        ("BackendUrl", "string"),
        ("ResponseCode", "int"),
        ("BackendResponseCode", "int"),
        ("TotalTime", "long"),
        ("BackendTime", "long"),
        ("LastErrorReason", "string"),
        ("LastErrorSource", "string"),
        ("LastErrorScope", "string"),
        ("CorrelationId", "string"),
    ];
    let mut out = String::from("{\"tables\":[{\"name\":\"PrimaryResult\",\"columns\":[");
    for (i, (name, ty)) in COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"name\":\"{name}\",\"type\":\"{ty}\"}}");
    }
    out.push_str("],\"rows\":[");
    let num = |v: Option<u32>| v.map_or_else(|| "null".to_string(), |x| x.to_string());
    let text = |v: &str| {
        if v.is_empty() {
            "null".to_string()
        } else {
            quote(v)
        }
    };
    for (i, r) in reqs.iter().enumerate() {
        let op = &OPS[r.op];
        let e = r.err;
        let _ = write!(
            out,
            "{}\n[\"{}\",\"{}\",\"{}\",\"{}\",{},\"{}\",{},{},{},{},{},{},{},{},{},\"{}\"]",
            if i > 0 { "," } else { "" },
            ts7(r.t_ms),
            r.api(),
            op.id,
            super::catalog::SUBSCRIPTIONS[r.sub].id,
            text(r.backend_id),
            op.method,
            quote(&url(r)),
            text(&r.backend_url),
            r.code,
            num(r.backend_code.map(u32::from)),
            r.total,
            num(r.backend_time),
            text(e.map_or("", |e| e.reason)),
            text(e.map_or("", |e| e.source)),
            text(e.map_or("", |e| e.scope)),
            r.corr
        );
    }
    out.push_str("\n]}]}\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::Scenario;
    use crate::simulate::plan::Plan;
    use crate::simulate::traffic::requests;
    use serde_json::Value;
    use std::io::Read;

    fn sample() -> Vec<Req> {
        let p = Plan::new(Scenario::NsgBlock, 2, 0.02, 120);
        requests(&p)
    }

    #[test]
    fn seven_digit_timestamps() {
        assert_eq!(ts7(1_772_456_103_512), "2026-03-02T12:55:03.5120000Z");
        assert_eq!(ts7(1_772_456_103_000), "2026-03-02T12:55:03.0000000Z");
    }

    #[test]
    fn every_shape_parses_and_keeps_every_request() {
        let reqs = sample();
        assert!(reqs.len() > 50);
        let la = write(LogShape::LogAnalyticsNdjson, &reqs);
        let text = String::from_utf8(la[0].1.clone()).unwrap();
        let rows: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), reqs.len());
        assert!(
            rows.iter()
                .any(|r| r["LastErrorReason"] == "BackendConnectionFailure")
        );
        assert!(
            rows.iter()
                .all(|r| r["ApiId"].is_string() && r["ResponseCode"].is_u64())
        );

        let gz = write(LogShape::LogAnalyticsNdjsonGzip, &reqs);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz[0].1[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, la[0].1);
        assert!(gz[0].0.ends_with(".ndjson.gz"));

        let blobs = write(LogShape::StorageGzip, &reqs);
        assert!(blobs.len() >= 2);
        let mut n = 0;
        for (path, bytes) in &blobs {
            assert!(path.ends_with("/m=00/PT1H.json.gz"), "{path}");
            let mut s = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .unwrap();
            for line in s.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["category"], "GatewayLogs");
                assert!(v["properties"]["apiId"].is_string());
                n += 1;
            }
        }
        assert_eq!(n, reqs.len());

        let az = write(LogShape::AzCli, &reqs);
        let v: Value = serde_json::from_slice(&az[0].1).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), reqs.len());
        assert!(
            arr.iter()
                .all(|r| r["TableName"] == "PrimaryResult" && r["ResponseCode"].is_string())
        );
        assert!(arr.iter().any(|r| r["BackendResponseCode"] == "None"));

        let q = write(LogShape::QueryTables, &reqs);
        let v: Value = serde_json::from_slice(&q[0].1).unwrap();
        let cols = v["tables"][0]["columns"].as_array().unwrap();
        let rows = v["tables"][0]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), reqs.len());
        assert!(
            rows.iter()
                .all(|r| r.as_array().unwrap().len() == cols.len())
        );
        assert!(rows.iter().any(|r| r[9].is_null() && r[8] == 500));
    }
}
