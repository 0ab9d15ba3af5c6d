//! Gateway request logs (`ApiManagementGatewayLogs` and every other shape
//! they come in) folded into `Traffic`.
//!
//! Shapes (see `formats.md` §1): the resource-specific table row
//! (`TimeGenerated`, `ApiId`, `ResponseCode`, …), the legacy AzureDiagnostics
//! row (`apiId_s`, `responseCode_d`, `lastError_reason_s`, …), the storage /
//! Event Hub record (`time`, `durationMs`, `properties{…, lastError{…}}`,
//! `properties` possibly a JSON string with PascalCase keys), the rows `az
//! monitor log-analytics query` prints (every value stringified: `"503"`,
//! `"True"`, `"None"`) and the raw query API `tables` response. Containers:
//! NDJSON (one row per line, also `{"records":[…]}` per line), CSV with a
//! header row (also the portal's export), and JSON documents the caller has
//! parsed. nginx JSON access logs are read as gateway traffic too
//! (`read_nginx`, mapping in `nginx.rs`).
//!
//! Keys match case-insensitively; numbers may be strings; `null`, `""` and
//! `"None"` mean missing. A row needs a timestamp (`TimeGenerated` or `time`)
//! and a `ResponseCode`; a missing `ApiId`/`OperationId`/backend is kept as ""
//! (an unknown API, operation or backend, still counted), a missing
//! `TotalTime`/`durationMs` as 0 ms. A present value of the wrong type
//! rejects the row with a message naming the column and the value, located
//! by file and line (or record index); its neighbours still load.
//!
//! Speed: NDJSON and CSV are read by `stream` in 4 MiB blocks folded in
//! parallel; NDJSON rows go through a hand-written scanner (`scan`) that
//! borrows the values it needs and skips the rest, with serde_json as the
//! fallback for rows it does not handle (escapes in used values, `properties`
//! as a string, invalid JSON). No allocation per row on the fast path.
//!
//! Measured (benches/logs.sh, 10M generated rows, 4.45 GB, 2 cores,
//! 2026-12-07 01:35 and 01:36 UTC): the reader alone 1.2-1.6 s wall,
//! 113-114 MB max RSS (latencies are per-minute histograms, so a cell does
//! not grow with its rows; the mapped file's blocks are released once
//! folded). The README's #16 section has the table, with DuckDB in the
//! same rounds.

mod array;
mod csv;
mod fields;
mod fold;
mod ndjson;
mod nginx;
mod records;
mod scan;
mod stream;

pub use records::{At, Records};

use crate::model::{InputKind, LoadReport, Origin, Problem, Traffic};
use fields::{Context, Field, Fields, Raw, classify_row, collect_map, fields_of_object};
use serde_json::{Map, Value};
use std::io::{self, Read};
use stream::Limits;

/// Streaming, parallel reader for newline-delimited gateway rows (any row
/// shape, one JSON object per line). Memory stays bounded however big the
/// input (a few 4 MiB blocks plus the aggregates); a line over 16 MiB is
/// rejected without being held. Rows read before an I/O error are kept.
pub fn read_ndjson(
    file: &str,
    reader: impl Read + Send,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) -> io::Result<()> {
    let limits = Limits::standard();
    let format = ndjson::Ndjson {
        max_line: limits.max_line,
    };
    stream::read_stream(file, reader, &format, limits, traffic, report)
}

/// The line-oriented log formats, for [`parse_map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFormat {
    Ndjson,
    Csv,
    Nginx,
}

/// Folds a log file mapped into memory, as the streaming readers would
/// (same rows, same problems, same line numbers) without copying it
/// through read buffers; the map's pages are released as chunks are done.
pub fn parse_map(
    format: LineFormat,
    file: &str,
    map: &memmap2::Mmap,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) {
    let limits = Limits::standard();
    let max_line = limits.max_line;
    match format {
        LineFormat::Ndjson => {
            let f = ndjson::Ndjson { max_line };
            stream::parse_map(file, map, &f, limits, traffic, report);
        }
        LineFormat::Nginx => {
            let f = nginx::Nginx { max_line };
            stream::parse_map(file, map, &f, limits, traffic, report);
        }
        LineFormat::Csv => {
            if let Some(f) = csv_header(file, map, limits, report) {
                stream::parse_map(file, map, &f, limits, traffic, report);
            }
        }
    }
}

/// True when `head` (the start of a file) opens a JSON array whose first
/// element is a gateway log row: `az monitor log-analytics query` output.
pub fn is_row_array(head: &[u8]) -> bool {
    array::first_element(head)
        .and_then(|e| serde_json::from_slice::<Map<String, Value>>(e).ok())
        .is_some_and(|m| is_log_row(&m))
}

/// Folds a JSON array of log rows in memory one element at a time, as
/// [`parse_row_array`] does for a mapped file.
pub fn fold_row_array(file: &str, bytes: &[u8], traffic: &mut Traffic, report: &mut LoadReport) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    array::fold_array(file, bytes, traffic, report, &mut |_| {});
}

/// Folds a mapped JSON array of log rows one element at a time (memory:
/// one row, not the ~6× of a whole-document parse), releasing the pages
/// read as it goes. Problems name the line and record.
pub fn parse_row_array(
    file: &str,
    map: &memmap2::Mmap,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) {
    let bytes = map.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(map);
    let offset = map.len() - bytes.len();
    let mut released = 0usize;
    array::fold_array(file, bytes, traffic, report, &mut |end| {
        let end = end + offset;
        if end - released >= 4 << 20 {
            stream::release(map, map.get(released..end).unwrap_or_default());
            released = end;
        }
    });
}

/// Same as [`read_ndjson`], over bytes in memory (tests, the embedded demo).
pub fn parse_ndjson(file: &str, bytes: &[u8], traffic: &mut Traffic, report: &mut LoadReport) {
    parse_ndjson_with(file, bytes, Limits::standard(), traffic, report);
}

fn parse_ndjson_with(
    file: &str,
    bytes: &[u8],
    limits: Limits,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) {
    let format = ndjson::Ndjson {
        max_line: limits.max_line,
    };
    stream::parse_bytes(file, bytes, &format, limits, traffic, report);
}

/// CSV with a header row (Log Analytics export column names, any order;
/// quoted fields). A header without a timestamp or `ResponseCode` column
/// is one problem at line 1 and nothing is read.
pub fn read_csv(
    file: &str,
    mut reader: impl Read + Send,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) -> io::Result<()> {
    let limits = Limits::standard();
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while csv::first_record_end(&head).is_none() && head.len() <= limits.max_line {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let Some(format) = csv_header(file, &head, limits, report) else {
        return Ok(());
    };
    let input = io::Cursor::new(head).chain(reader);
    stream::read_stream(file, input, &format, limits, traffic, report)
}

/// Same as [`read_csv`], over bytes in memory.
pub fn parse_csv(file: &str, bytes: &[u8], traffic: &mut Traffic, report: &mut LoadReport) {
    parse_csv_with(file, bytes, Limits::standard(), traffic, report);
}

fn parse_csv_with(
    file: &str,
    bytes: &[u8],
    limits: Limits,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) {
    if let Some(format) = csv_header(file, bytes, limits, report) {
        stream::parse_bytes(file, bytes, &format, limits, traffic, report);
    }
}

/// The column map from the first record of `head`; `None` (with a problem
/// unless the input is empty) when it is not a gateway log header.
fn csv_header(
    file: &str,
    head: &[u8],
    limits: Limits,
    report: &mut LoadReport,
) -> Option<csv::Csv> {
    if head.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let end = csv::first_record_end(head).unwrap_or(head.len());
    let problem = |message: String| Problem {
        origin: Origin::at_line(file, 1),
        message,
    };
    if end > limits.max_line {
        report.reject(problem(stream::too_long(end as u64, limits.max_line)));
        return None;
    }
    let line = head.get(..end).unwrap_or_default();
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            report.reject(problem(format!(
                "invalid UTF-8 at byte {} of the header; save the export as UTF-8",
                e.valid_up_to() + 1
            )));
            return None;
        }
    };
    match csv::Csv::from_header(text, limits.max_line) {
        Ok(c) => Some(c),
        Err(m) => {
            report.reject(problem(m));
            None
        }
    }
}

/// nginx JSON access logs (components.md §3 `gw_json`), streamed like
/// NDJSON: API = first path segment, operation = method + first two path
/// segments, backend = `upstream_name` (see `nginx.rs` for the mapping of
/// upstream lists and gateway-made 502/504).
pub fn read_nginx(
    file: &str,
    reader: impl Read + Send,
    traffic: &mut Traffic,
    report: &mut LoadReport,
) -> io::Result<()> {
    let limits = Limits::standard();
    let format = nginx::Nginx {
        max_line: limits.max_line,
    };
    stream::read_stream(file, reader, &format, limits, traffic, report)
}

/// Same as [`read_nginx`], over bytes in memory.
pub fn parse_nginx(file: &str, bytes: &[u8], traffic: &mut Traffic, report: &mut LoadReport) {
    let limits = Limits::standard();
    let format = nginx::Nginx {
        max_line: limits.max_line,
    };
    stream::parse_bytes(file, bytes, &format, limits, traffic, report);
}

/// True when a line looks like an nginx JSON access-log line (`time`,
/// `uri`, `status`, `request_time`).
pub fn is_nginx_line(line: &[u8]) -> bool {
    nginx::is_line(line)
}

/// Row objects already parsed from a JSON document: the array `az monitor
/// log-analytics query` prints, storage / Event Hub `records`, legacy
/// AzureDiagnostics rows. The origin of each row is its index.
pub fn parse_json_rows(file: &str, rows: &[Value], traffic: &mut Traffic, report: &mut LoadReport) {
    let mut accepted = 0u64;
    for (i, v) in rows.iter().enumerate() {
        let record = u32::try_from(i).unwrap_or(u32::MAX);
        ndjson::object_row(v, &mut |res| match res {
            Ok(r) => {
                traffic.add(&r, || Origin::at_record(file, record));
                report.see_time(r.time);
                accepted += 1;
            }
            Err(message) => report.reject(Problem {
                origin: Origin::at_record(file, record),
                message,
            }),
        });
    }
    if accepted > 0 {
        report.count(InputKind::GatewayLogs, accepted);
    }
}

fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The raw Log Analytics query API response
/// `{"tables":[{"name","columns":[{"name","type"}],"rows":[[…]]}]}`. Cells
/// may be JSON numbers or strings (both occur). Row origins are record
/// indexes counted over all tables. A table without a timestamp or
/// `ResponseCode` column (an aggregate query, another table) is one problem;
/// a `PartialError` in the response is reported, its rows still load.
pub fn parse_query_tables(file: &str, doc: &Value, traffic: &mut Traffic, report: &mut LoadReport) {
    let file_problem = |message: String| Problem {
        origin: Origin::file(file),
        message,
    };
    let Some(obj) = doc.as_object() else {
        report.reject(file_problem(format!(
            "a query response must be a JSON object, not {}",
            ndjson::kind(doc)
        )));
        return;
    };
    if let Some(err) = get_ci(obj, "error") {
        let code = err.get("code").and_then(Value::as_str).unwrap_or("error");
        let msg = err.get("message").and_then(Value::as_str).unwrap_or("");
        report.reject(file_problem(format!(
            "the query response carries an error ({code}: {msg}); its rows may be incomplete"
        )));
    }
    let Some(tables) = get_ci(obj, "tables").and_then(Value::as_array) else {
        report.reject(file_problem(
            "no \"tables\" array: not a Log Analytics query response".into(),
        ));
        return;
    };
    let mut index = 0u32;
    let mut accepted = 0u64;
    for (t, table) in tables.iter().enumerate() {
        let name = table.get("name").and_then(Value::as_str).unwrap_or("?");
        let names: Vec<&str> = table
            .get("columns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| match c {
                        Value::String(s) => s.as_str(),
                        _ => c.get("name").and_then(Value::as_str).unwrap_or(""),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let columns: Vec<Option<Field>> =
            names.iter().map(|n| classify_row(n.as_bytes())).collect();
        let has = |f: Field| columns.contains(&Some(f));
        let rows = table.get("rows").and_then(Value::as_array);
        if !(has(Field::TimeGenerated) || has(Field::Time)) || !has(Field::ResponseCode) {
            report.reject(file_problem(format!(
                "table {t} ({name}) has no {} column, so its rows are not gateway log rows \
                 (columns: {}); query ApiManagementGatewayLogs without summarize",
                if has(Field::ResponseCode) {
                    "TimeGenerated"
                } else {
                    "ResponseCode"
                },
                names.join(", ")
            )));
            index = index.saturating_add(rows.map_or(0, |r| r.len() as u32));
            continue;
        }
        for row in rows.into_iter().flatten() {
            let origin = || Origin::at_record(file, index);
            let Some(cells) = row.as_array() else {
                report.reject(Problem {
                    origin: origin(),
                    message: format!("a table row must be an array, not {}", ndjson::kind(row)),
                });
                index = index.saturating_add(1);
                continue;
            };
            let mut fields = Fields::default();
            for (col, cell) in columns.iter().zip(cells) {
                match (col, cell) {
                    (Some(Field::Properties), Value::Object(m)) => {
                        collect_map(m, Context::Row, &mut fields)
                    }
                    (Some(Field::LastError), Value::Object(m)) => {
                        collect_map(m, Context::LastError, &mut fields)
                    }
                    (Some(Field::Properties | Field::LastError), _) | (None, _) => {}
                    (Some(f), v) => fields.set(*f, Raw::of_value(v)),
                }
            }
            match fields::to_request(&fields) {
                Ok(r) => {
                    traffic.add(&r, origin);
                    report.see_time(r.time);
                    accepted += 1;
                }
                Err(message) => report.reject(Problem {
                    origin: origin(),
                    message,
                }),
            }
            index = index.saturating_add(1);
        }
    }
    if accepted > 0 {
        report.count(InputKind::GatewayLogs, accepted);
    }
}

/// True when a JSON object looks like one gateway log row of any shape: a
/// timestamp and a response code (top level or in `properties`), or a
/// storage record whose category / operation name says GatewayLogs.
pub fn is_log_row(obj: &Map<String, Value>) -> bool {
    let mut scratch = None;
    if fields_of_object(obj, &mut scratch).is_ok_and(|f| f.looks_like_log_row()) {
        return true;
    }
    ["category", "operationName"].iter().any(|k| {
        get_ci(obj, k)
            .and_then(Value::as_str)
            .is_some_and(|v| v.to_ascii_lowercase().ends_with("gatewaylogs"))
    })
}

/// True when a line of text looks like an NDJSON gateway row (for sniffing
/// the first lines of a file). A line cut short by the sniffer's buffer is
/// judged by its keys.
pub fn is_log_line(line: &[u8]) -> bool {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let line = line.trim_ascii();
    if !line.starts_with(b"{") {
        return false;
    }
    if let Ok(text) = std::str::from_utf8(line) {
        let mut fields = Fields::default();
        if scan::scan_row(text, &mut fields) && fields.looks_like_log_row() {
            return true;
        }
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            return is_log_row(&map)
                || ndjson::records_of(&map)
                    .and_then(|r| r.first())
                    .and_then(Value::as_object)
                    .is_some_and(is_log_row);
        }
    }
    let lower = line.to_ascii_lowercase();
    let has = |needle: &[u8]| memchr::memmem::find(&lower, needle).is_some();
    (has(b"\"timegenerated\"") || has(b"\"time\"")) && has(b"responsecode")
}

#[cfg(test)]
mod tests;
