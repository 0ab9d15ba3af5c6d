//! Query answers into the same per-minute cells the file readers fill
//! (`model::MinuteStats`), so analysis cannot tell the paths apart. Pure: a
//! `wire::Table` in, cells merged into a `Traffic` out. A column missing or
//! of the wrong type fails the whole answer (`ShapeError`); a row whose cells
//! do not read is rejected into the load report under the query's name, and
//! the other rows are kept.

use super::wire::{self, DATETIME, DYNAMIC, INTEGER, Reader, STRING, ShapeError, Table};
use crate::model::{
    InputKind, LatencyHistogram, LoadReport, MinuteStats, Origin, Problem, RequestRecord,
    Timestamp, Traffic, histogram::MAX_BUCKET, parse_timestamp,
};
use serde_json::Value;

/// The minute a `Minute` cell names.
fn minute_of(v: &Value) -> Option<Timestamp> {
    match v {
        Value::String(s) => parse_timestamp(s),
        _ => None,
    }
}

/// `["12:3", "40:1"]` (bucket:count) into a histogram.
fn histogram(v: &Value) -> Option<LatencyHistogram> {
    let mut h = LatencyHistogram::default();
    for e in wire::list(v)? {
        let s = e.as_str()?;
        let (b, n) = s.split_once(':')?;
        let b: u16 = b.trim().parse().ok()?;
        let n: u32 = n.trim().parse().ok()?;
        if b > MAX_BUCKET {
            return None;
        }
        h.add_bucket(b, n);
    }
    Some(h)
}

struct Keys {
    minute: usize,
    api: usize,
    op: usize,
    backend: usize,
}

impl Keys {
    fn read(r: &Reader<'_>, minute: bool) -> Result<Keys, ShapeError> {
        Ok(Keys {
            minute: if minute {
                r.column("Minute", DATETIME)?
            } else {
                0
            },
            api: r.column("ApiId", STRING)?,
            op: r.column("OperationId", STRING)?,
            backend: r.column("Backend", STRING)?,
        })
    }

    /// A row's series key: its ApiId, OperationId and Backend cells.
    fn series<'a>(&self, row: &'a [Value]) -> Option<(&'a str, &'a str, &'a str)> {
        Some((
            wire::text(&row[self.api])?,
            wire::text(&row[self.op])?,
            wire::text(&row[self.backend])?,
        ))
    }
}

fn reject(report: &mut LoadReport, origin: &str, row: usize, what: &str) {
    report.reject(Problem {
        origin: Origin::at_record(origin, u32::try_from(row).unwrap_or(u32::MAX)),
        message: format!("{what}; the row is skipped, the others are used"),
    });
}

/// The `cells` answer: counters and the TotalTime histogram.
pub fn cells(
    t: &Table,
    traffic: &mut Traffic,
    report: &mut LoadReport,
    origin: &str,
) -> Result<u64, ShapeError> {
    let r = Reader::new(t);
    let k = Keys::read(&r, true)?;
    let names = [
        "requests",
        "s2xx",
        "s3xx",
        "s4xx",
        "s429",
        "s5xx",
        "backend5xx",
        "timeouts",
        "connFailures",
    ];
    let mut idx = [0usize; 9];
    for (slot, n) in idx.iter_mut().zip(names) {
        *slot = r.column(n, INTEGER)?;
    }
    let latency = r.column("latency", DYNAMIC)?;
    let mut rows = 0u64;
    for (i, row) in t.rows.iter().enumerate() {
        let (Some(minute), Some((api, op, backend))) = (minute_of(&row[k.minute]), k.series(row))
        else {
            reject(
                report,
                origin,
                i,
                "a key cell (Minute, ApiId, OperationId, Backend) does not read",
            );
            continue;
        };
        let mut c = [0u32; 9];
        let mut ok = true;
        for (slot, &j) in c.iter_mut().zip(&idx) {
            match wire::count(&row[j]).and_then(|v| u32::try_from(v).ok()) {
                Some(v) => *slot = v,
                None => ok = false,
            }
        }
        let Some(h) = histogram(&row[latency]).filter(|_| ok) else {
            reject(
                report,
                origin,
                i,
                "a count or the latency histogram does not read",
            );
            continue;
        };
        let [requests, s2, s3, s4, s429, s5, b5, timeouts, conn] = c;
        if h.count() != u64::from(requests) {
            reject(
                report,
                origin,
                i,
                &format!(
                    "the latency histogram holds {} requests, the row says {requests}",
                    h.count()
                ),
            );
            continue;
        }
        let st = MinuteStats {
            requests,
            status_2xx: s2,
            status_3xx: s3,
            status_4xx: s4,
            status_429: s429,
            status_5xx: s5,
            backend_5xx: b5,
            timeouts,
            connection_failures: conn,
            total_latency: h,
            ..MinuteStats::default()
        };
        let s = traffic.series_index(api, op, backend);
        traffic.series[s]
            .minutes
            .entry(minute.minute())
            .or_default()
            .merge(st);
        traffic.rows += u64::from(requests);
        rows += u64::from(requests);
        report.see_time(minute);
    }
    if rows > 0 {
        report.count(InputKind::GatewayLogs, rows);
    }
    Ok(rows)
}

/// The `backend_latency` answer: BackendTime histograms.
pub fn backend_latency(
    t: &Table,
    traffic: &mut Traffic,
    report: &mut LoadReport,
    origin: &str,
) -> Result<(), ShapeError> {
    let r = Reader::new(t);
    let k = Keys::read(&r, true)?;
    let latency = r.column("latency", DYNAMIC)?;
    for (i, row) in t.rows.iter().enumerate() {
        let (Some(minute), Some((api, op, backend)), Some(h)) = (
            minute_of(&row[k.minute]),
            k.series(row),
            histogram(&row[latency]),
        ) else {
            reject(
                report,
                origin,
                i,
                "a key cell or the latency histogram does not read",
            );
            continue;
        };
        let s = traffic.series_index(api, op, backend);
        traffic.series[s]
            .minutes
            .entry(minute.minute())
            .or_default()
            .backend_latency
            .merge(&h);
    }
    Ok(())
}

/// The `reasons` answer: counts per LastErrorReason.
pub fn reasons(
    t: &Table,
    traffic: &mut Traffic,
    report: &mut LoadReport,
    origin: &str,
) -> Result<(), ShapeError> {
    let r = Reader::new(t);
    let k = Keys::read(&r, true)?;
    let reason = r.column("LastErrorReason", STRING)?;
    let n = r.column("n", INTEGER)?;
    for (i, row) in t.rows.iter().enumerate() {
        let (Some(minute), Some((api, op, backend)), Some(reason), Some(n)) = (
            minute_of(&row[k.minute]),
            k.series(row),
            wire::text(&row[reason]),
            wire::count(&row[n]).and_then(|v| u32::try_from(v).ok()),
        ) else {
            reject(
                report,
                origin,
                i,
                "a key, reason or count cell does not read",
            );
            continue;
        };
        let s = traffic.series_index(api, op, backend);
        let cell = traffic.series[s]
            .minutes
            .entry(minute.minute())
            .or_default();
        *cell.error_reasons.entry(reason.to_string()).or_default() += n;
    }
    Ok(())
}

/// The `hosts` answer: BackendUrl hosts per series, kept on the series'
/// first minute (where the backend map looks for one).
pub fn hosts(
    t: &Table,
    traffic: &mut Traffic,
    report: &mut LoadReport,
    origin: &str,
) -> Result<(), ShapeError> {
    let r = Reader::new(t);
    let k = Keys::read(&r, false)?;
    let host = r.column("Host", STRING)?;
    for (i, row) in t.rows.iter().enumerate() {
        let (Some((api, op, backend)), Some(host)) = (k.series(row), wire::text(&row[host])) else {
            reject(report, origin, i, "a key or Host cell does not read");
            continue;
        };
        if host.is_empty() {
            continue;
        }
        let s = traffic.series_index(api, op, backend);
        if let Some(first) = traffic.series[s].minutes.values_mut().next()
            && first.backend_hosts.len() < 4
            && !first.backend_hosts.iter().any(|h| h == host)
        {
            first.backend_hosts.push(host.to_string());
        }
    }
    Ok(())
}

/// The `series` answer: (series, rows).
pub fn series(t: &Table) -> Result<(u64, u64), ShapeError> {
    let r = Reader::new(t);
    let s = r.column("series", INTEGER)?;
    let n = r.column("rows", INTEGER)?;
    match t.rows.first() {
        None => Ok((0, 0)),
        Some(row) => Ok((
            wire::count(&row[s]).unwrap_or(0),
            wire::count(&row[n]).unwrap_or(0),
        )),
    }
}

/// The `samples` answer as evidence records, their origin naming the query.
pub fn samples(t: &Table, origin: &str) -> Result<Vec<RequestRecord>, ShapeError> {
    let r = Reader::new(t);
    let time = r.column("TimeGenerated", DATETIME)?;
    let col = |name: &str| r.column(name, STRING).ok();
    let num = |name: &str| r.column(name, INTEGER).ok();
    let (api, op) = (r.column("ApiId", STRING)?, r.column("OperationId", STRING)?);
    let code = r.column("ResponseCode", INTEGER)?;
    let text = |row: &[Value], c: Option<usize>| {
        c.and_then(|c| wire::text(&row[c]))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let n = |row: &[Value], c: Option<usize>| c.and_then(|c| wire::count(&row[c]));
    let mut out = Vec::new();
    for (i, row) in t.rows.iter().enumerate() {
        let Some(t) = minute_of(&row[time]) else {
            continue;
        };
        out.push(RequestRecord {
            time: t,
            api_id: text(row, Some(api)).unwrap_or_default(),
            operation_id: text(row, Some(op)).unwrap_or_default(),
            backend_id: text(row, col("BackendId")),
            backend_url: text(row, col("BackendUrl")),
            method: text(row, col("Method")),
            url: text(row, col("Url")),
            response_code: n(row, Some(code))
                .and_then(|v| u16::try_from(v).ok())
                .unwrap_or(0),
            backend_response_code: n(row, num("BackendResponseCode"))
                .and_then(|v| u16::try_from(v).ok())
                .filter(|v| *v != 0),
            total_time_ms: n(row, num("TotalTime"))
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
            backend_time_ms: n(row, num("BackendTime")).and_then(|v| u32::try_from(v).ok()),
            last_error_reason: text(row, col("LastErrorReason")),
            last_error_source: text(row, col("LastErrorSource")),
            last_error_section: text(row, col("LastErrorSection")),
            last_error_scope: text(row, col("LastErrorScope")),
            last_error_message: text(row, col("LastErrorMessage")),
            region: text(row, col("Region")),
            correlation_id: text(row, col("CorrelationId")),
            origin: Origin::at_record(origin, u32::try_from(i).unwrap_or(u32::MAX)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::kql::wire::Column;
    use serde_json::json;

    fn table(cols: &[(&str, &str)], rows: Vec<Value>) -> Table {
        Table {
            columns: cols
                .iter()
                .map(|(n, k)| Column {
                    name: n.to_string(),
                    kind: k.to_string(),
                })
                .collect(),
            rows: rows
                .into_iter()
                .map(|r| r.as_array().unwrap().clone())
                .collect(),
        }
    }

    const CELL_COLS: [(&str, &str); 14] = [
        ("Minute", "datetime"),
        ("ApiId", "string"),
        ("OperationId", "string"),
        ("Backend", "string"),
        ("requests", "long"),
        ("s2xx", "long"),
        ("s3xx", "long"),
        ("s4xx", "long"),
        ("s429", "long"),
        ("s5xx", "long"),
        ("backend5xx", "long"),
        ("timeouts", "long"),
        ("connFailures", "long"),
        ("latency", "dynamic"),
    ];

    #[test]
    fn cells_fill_the_same_minute_stats_as_the_file_path() {
        use crate::model::{Request, histogram::bucket_of};
        let t = table(
            &CELL_COLS,
            vec![
                json!([
                    "2024-06-03T00:01:00Z",
                    "a",
                    "op",
                    "b",
                    3,
                    2,
                    0,
                    0,
                    0,
                    1,
                    1,
                    0,
                    0,
                    format!("[\"{}:2\",\"{}:1\"]", bucket_of(120), bucket_of(900))
                ]),
                json!(["nope", "a", "op", "b", 1, 1, 0, 0, 0, 0, 0, 0, 0, "[]"]),
                json!([
                    "2024-06-03T00:02:00Z",
                    "a",
                    "op",
                    "b",
                    2,
                    2,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    "[\"1:1\"]"
                ]),
            ],
        );
        let (mut traffic, mut report) = (Traffic::default(), LoadReport::default());
        let rows = cells(&t, &mut traffic, &mut report, "la:w cells").unwrap();
        assert_eq!(rows, 3);
        assert_eq!(report.rejected, 2, "{:?}", report.problems);
        assert!(
            report.problems[1]
                .message
                .contains("holds 1 requests, the row says 2")
        );
        assert_eq!(report.problems[0].origin.to_string(), "la:w cells record 1");
        // The same requests folded from rows give the same cell.
        let mut local = Traffic::default();
        for (ms, code, backend_code) in [(120, 200, 200), (120, 200, 200), (900, 503, 503)] {
            local.add(
                &Request {
                    time: Timestamp::from_minute(
                        parse_timestamp("2024-06-03T00:01:00Z").unwrap().minute(),
                    ),
                    api_id: "a",
                    operation_id: "op",
                    backend_id: "b",
                    response_code: code,
                    backend_response_code: backend_code,
                    total_time_ms: ms,
                    ..Request::default()
                },
                Origin::default,
            );
        }
        let mut want = local.series[0].minutes.values().next().unwrap().clone();
        want.samples.clear();
        assert_eq!(traffic.series[0].minutes.values().next(), Some(&want));
    }

    #[test]
    fn a_missing_or_mistyped_column_fails_the_answer() {
        let mut cols = CELL_COLS.to_vec();
        cols.retain(|c| c.0 != "s5xx");
        let t = table(&cols, vec![]);
        let e = cells(&t, &mut Traffic::default(), &mut LoadReport::default(), "q").unwrap_err();
        assert!(e.0.contains("`s5xx` is missing"), "{}", e.0);
        let mut cols = CELL_COLS.to_vec();
        cols[4].1 = "string";
        let t = table(&cols, vec![]);
        let e = cells(&t, &mut Traffic::default(), &mut LoadReport::default(), "q").unwrap_err();
        assert!(e.0.contains("`requests` is of type string"), "{}", e.0);
    }

    #[test]
    fn reasons_hosts_and_backend_latency_join_their_cells() {
        let (mut traffic, mut report) = (Traffic::default(), LoadReport::default());
        let t = table(
            &CELL_COLS,
            vec![json!([
                "2024-06-03T00:01:00Z",
                "a",
                "op",
                "b",
                1,
                0,
                0,
                0,
                0,
                1,
                0,
                1,
                0,
                "[\"300:1\"]"
            ])],
        );
        cells(&t, &mut traffic, &mut report, "q").unwrap();
        let r = table(
            &[
                ("Minute", "datetime"),
                ("ApiId", "string"),
                ("OperationId", "string"),
                ("Backend", "string"),
                ("LastErrorReason", "string"),
                ("n", "long"),
            ],
            vec![json!([
                "2024-06-03T00:01:00Z",
                "a",
                "op",
                "b",
                "Timeout",
                1
            ])],
        );
        reasons(&r, &mut traffic, &mut report, "q").unwrap();
        let b = table(
            &[
                ("Minute", "datetime"),
                ("ApiId", "string"),
                ("OperationId", "string"),
                ("Backend", "string"),
                ("latency", "dynamic"),
            ],
            vec![json!(["2024-06-03T00:01:00Z", "a", "op", "b", ["299:1"]])],
        );
        backend_latency(&b, &mut traffic, &mut report, "q").unwrap();
        let h = table(
            &[
                ("ApiId", "string"),
                ("OperationId", "string"),
                ("Backend", "string"),
                ("Host", "string"),
                ("n", "long"),
            ],
            vec![json!(["a", "op", "b", "b.internal:8443", 1])],
        );
        hosts(&h, &mut traffic, &mut report, "q").unwrap();
        let m = traffic.series[0].minutes.values().next().unwrap();
        assert_eq!(m.error_reasons["Timeout"], 1);
        assert_eq!(m.backend_latency.count(), 1);
        assert_eq!(m.backend_hosts, ["b.internal:8443"]);
        assert_eq!(report.rejected, 0);
    }
}
