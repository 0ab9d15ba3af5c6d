//! Tests of the public readers: every shape, a broken row located by file
//! and line while its neighbours load, hostile input, and results that do
//! not depend on block size or thread count.

use super::*;
use crate::model::{MinuteStats, Timestamp};
use std::path::PathBuf;

fn ndjson(text: &str) -> (Traffic, LoadReport) {
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_ndjson("logs.ndjson", text.as_bytes(), &mut t, &mut r);
    (t, r)
}

/// Streams `bytes` with small blocks and several threads, to exercise
/// carried tails, long-line skipping and the merge.
fn streamed(
    file: &str,
    bytes: &[u8],
    block: usize,
    max_line: usize,
    threads: usize,
) -> (Traffic, LoadReport) {
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    let limits = Limits {
        block,
        max_line,
        threads,
    };
    let format = ndjson::Ndjson { max_line };
    stream::read_stream(file, bytes, &format, limits, &mut t, &mut r).unwrap();
    (t, r)
}

fn problems(r: &LoadReport) -> Vec<String> {
    r.problems.iter().map(|p| p.to_string()).collect()
}

fn rows(r: &LoadReport) -> u64 {
    r.counts.get(&InputKind::GatewayLogs).copied().unwrap_or(0)
}

/// The one minute of the one series with this API, operation and backend.
fn minute<'a>(t: &'a Traffic, api: &str, op: &str) -> &'a MinuteStats {
    let s = t
        .series
        .iter()
        .find(|s| s.key.api_id == api && s.key.operation_id == op)
        .unwrap_or_else(|| panic!("no series {api}/{op} in {:?}", t.series));
    assert_eq!(s.minutes.len(), 1);
    s.minutes.values().next().unwrap()
}

/// Traffic as compared across fold orders (histograms merge exactly, so
/// nothing needs normalizing any more).
fn normalized(t: &Traffic) -> Traffic {
    t.clone()
}

fn shared(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(path);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} is absent", p.display());
        None
    }
}

const TABLE_ROWS: &str = r#"{"TimeGenerated":"2024-05-14T09:12:03.512Z","Region":"West Europe","CorrelationId":"7c2f9a4e","ApiId":"orders-api","OperationId":"get-order","BackendId":"orders-backend","Method":"GET","Url":"https://contoso.azure-api.net/orders/v1/orders/42","BackendUrl":"https://orders.contoso.internal/v1/orders/42","ResponseCode":503,"BackendResponseCode":503,"IsRequestSuccess":false,"TotalTime":2140,"BackendTime":2101,"LastErrorReason":""}
{"TimeGenerated":"2024-05-14T09:12:04Z","ApiId":"orders-api","OperationId":"get-order","BackendId":"orders-backend","ResponseCode":"abc","TotalTime":5}
{"TimeGenerated":"2024-05-14T09:12:05Z","ApiId":"orders-api","OperationId":"get-order","BackendId":"orders-backend","ResponseCode":200,"BackendResponseCode":200,"TotalTime":20,"BackendTime":18}
"#;

#[test]
fn reads_the_resource_specific_table_shape() {
    let (t, r) = ndjson(TABLE_ROWS);
    assert_eq!(rows(&r), 2);
    assert_eq!(
        problems(&r),
        ["logs.ndjson:2: ResponseCode is not a number: \"abc\""]
    );
    let m = minute(&t, "orders-api", "get-order");
    assert_eq!((m.requests, m.status_5xx, m.backend_5xx), (2, 1, 1));
    assert_eq!(m.total_latency.count() as usize, 2);
    assert_eq!(t.series[0].key.backend, "orders-backend");
    let sample = &m.samples[0];
    assert_eq!(sample.origin, Origin::at_line("logs.ndjson", 1));
    assert_eq!(sample.region.as_deref(), Some("West Europe"));
    assert_eq!(sample.correlation_id.as_deref(), Some("7c2f9a4e"));
    assert_eq!(
        r.time_range
            .map(|w| (w.start.to_rfc3339(), w.end.to_rfc3339())),
        Some((
            "2024-05-14T09:12:03.512Z".into(),
            "2024-05-14T09:12:05Z".into()
        ))
    );
    assert_eq!(t.rows, 2);
}

#[test]
fn reads_the_legacy_azure_diagnostics_shape() {
    let text = r#"{"TimeGenerated":"2024-05-14T09:12:07.880Z","ResourceProvider":"MICROSOFT.APIMANAGEMENT","Category":"GatewayLogs","Resource":"CONTOSO","DurationMs":3,"method_s":"POST","url_s":"https://contoso.azure-api.net/orders/v1/orders","apiId_s":"orders-api","responseCode_d":429,"isRequestSuccess_b":false,"lastError_source_s":"rate-limit","lastError_reason_s":"RateLimitExceeded","lastError_section_s":"inbound"}
{"TimeGenerated":"2024-05-14T09:12:08Z","apiId_s":"orders-api","operationId_s":"create-order","responseCode_d":true}
{"TimeGenerated":"2024-05-14T09:12:09Z","apiId_s":"orders-api","operationId_s":"create-order","responseCode_d":201.0,"backendResponseCode_d":201,"backendTime_d":40.4,"DurationMs":44,"backendUrl_s":"https://orders.internal/x","correlationId_g":"abc"}
"#;
    let (t, r) = ndjson(text);
    assert_eq!(rows(&r), 2);
    assert_eq!(
        problems(&r),
        ["logs.ndjson:2: ResponseCode is not a number: true"]
    );
    let m = minute(&t, "orders-api", "");
    assert_eq!(
        (m.requests, m.status_429, m.total_latency.max().unwrap()),
        (1, 1, 3)
    );
    assert_eq!(m.error_reasons.get("RateLimitExceeded"), Some(&1));
    let s = &m.samples[0];
    assert_eq!(s.last_error_source.as_deref(), Some("rate-limit"));
    assert_eq!(s.last_error_section.as_deref(), Some("inbound"));
    assert_eq!(s.method.as_deref(), Some("POST"));
    let ok = minute(&t, "orders-api", "create-order");
    assert_eq!(
        (
            ok.status_2xx,
            ok.backend_latency.max().unwrap(),
            ok.total_latency.max().unwrap()
        ),
        (1, 40, 44)
    );
    assert_eq!(ok.backend_hosts, ["orders.internal"]);
}

#[test]
fn reads_storage_and_event_hub_records() {
    let text = concat!(
        r#"{"time":"2024-05-14T09:12:05.1234567Z","resourceId":"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.APIMANAGEMENT/SERVICE/CONTOSO","operationName":"Microsoft.ApiManagement/GatewayLogs","category":"GatewayLogs","Level":4,"isRequestSuccess":false,"durationMs":4,"callerIpAddress":"203.0.113.24","location":"West Europe","properties":{"method":"GET","url":"https://contoso.azure-api.net/orders/v1/orders/42","responseCode":401,"apiId":"orders-api","operationId":"get-order","cache":"none","lastError":{"elapsed":3,"source":"validate-jwt","scope":"api","section":"inbound","reason":"TokenExpired","message":"Lifetime validation failed. The token is expired."}}}"#,
        "\n",
        r#"{"time":"2024-05-14T09:12:06Z","durationMs":4,"properties":{"apiId":"orders-api","operationId":"get-order"}}"#,
        "\n",
        r#"{"time":"2017-06-01T10:00:00Z","durationMs":12,"properties":"{\"ApiId\":\"echo-api\",\"OperationId\":\"retrieve\",\"ResponseCode\":500,\"BackendResponseCode\":500,\"ServiceTime\":9}"}"#,
        "\n",
        r#"{"records":[{"time":"2024-05-14T09:13:00Z","durationMs":1,"properties":{"apiId":"hub-api","responseCode":200}},{"time":"2024-05-14T09:13:01Z","properties":{"apiId":"hub-api"}}]}"#,
        "\n"
    );
    let (t, r) = ndjson(text);
    assert_eq!(rows(&r), 3, "{:?}", problems(&r));
    assert_eq!(
        problems(&r),
        [
            "logs.ndjson:2: ResponseCode missing",
            "logs.ndjson:4: records[1]: ResponseCode missing"
        ]
    );
    let jwt = minute(&t, "orders-api", "get-order");
    assert_eq!((jwt.status_4xx, jwt.total_latency.max().unwrap()), (1, 4));
    let s = &jwt.samples[0];
    assert_eq!(s.last_error_reason.as_deref(), Some("TokenExpired"));
    assert_eq!(s.last_error_scope.as_deref(), Some("api"));
    assert_eq!(s.region.as_deref(), Some("West Europe"));
    let old = minute(&t, "echo-api", "retrieve");
    assert_eq!(
        (old.backend_5xx, old.backend_latency.max().unwrap()),
        (1, 9)
    );
    assert_eq!(minute(&t, "hub-api", "").requests, 1);
}

#[test]
fn reads_the_documented_storage_sample_and_rejects_its_placeholder_time() {
    let Some(path) =
        shared("corpus/apim/samples/docs__gatewaylogs_resource_log_record_sample.json")
    else {
        return;
    };
    let text = std::fs::read_to_string(path).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(is_log_row(doc.as_object().unwrap()));
    let mut fixed = doc.clone();
    fixed["time"] = Value::from("2020-10-14T17:01:02.03");
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_json_rows("sample.json", &[doc, fixed], &mut t, &mut r);
    assert_eq!(
        problems(&r),
        ["sample.json record 0: time is not a timestamp: \"2020-10-14T17:xx:xx.xx\""]
    );
    assert_eq!(rows(&r), 1);
    let m = minute(&t, "demo-conference-api", "GetSpeakers");
    assert_eq!(
        (
            m.status_2xx,
            m.total_latency.max().unwrap(),
            m.backend_latency.max().unwrap()
        ),
        // 152 ms reads back as its histogram bucket's 153 (within 1%).
        (1, 153, 87)
    );
    assert_eq!(t.series[0].key.backend, "conferenceapi.azurewebsites.net");
}

#[test]
fn reads_rows_printed_by_the_az_cli() {
    let doc: Value = serde_json::from_str(
        r#"[{"ApiId":"orders-api","BackendResponseCode":"503","IsRequestSuccess":"False","LastErrorReason":"None","OperationId":"None",
             "ResponseCode":"503","TableName":"PrimaryResult","TimeGenerated":"2024-05-14T09:12:03.512Z","TotalTime":"2140","BackendTime":"None"},
            {"ApiId":"orders-api","ResponseCode":"503","TableName":"PrimaryResult","TimeGenerated":"None"},
            "not a row",
            {"ApiId":"orders-api","ResponseCode":"200","TableName":"PrimaryResult","TimeGenerated":"2024-05-14T09:12:09Z","TotalTime":"12.0"}]"#,
    )
    .unwrap();
    assert!(is_log_row(doc[0].as_object().unwrap()));
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_json_rows("cli.json", doc.as_array().unwrap(), &mut t, &mut r);
    assert_eq!(
        problems(&r),
        [
            "cli.json record 1: TimeGenerated is \"None\": the row has no time, so it cannot be placed and is not used",
            "cli.json record 2: a row must be a JSON object, not a string"
        ]
    );
    let m = minute(&t, "orders-api", "");
    assert_eq!((m.requests, m.status_5xx, m.backend_5xx), (2, 1, 1));
    assert!(m.backend_latency.is_empty());
    assert_eq!(m.error_reasons.len(), 0);
    assert_eq!(m.samples[0].origin, Origin::at_record("cli.json", 0));
}

#[test]
fn reads_query_api_tables() {
    let doc: Value = serde_json::from_str(
        r#"{"tables":[{"name":"PrimaryResult",
            "columns":[{"name":"TimeGenerated","type":"datetime"},{"name":"ApiId","type":"string"},
                       {"name":"ResponseCode","type":"int"},{"name":"TotalTime","type":"long"},
                       {"name":"IsRequestSuccess","type":"bool"}],
            "rows":[["2024-05-14T09:00:01Z","orders-api",200,41,true],
                    ["2024-05-14T09:00:02Z","orders-api","oops",41,true],
                    ["2024-05-14T09:00:03Z","orders-api","504","30001","false"]]}],
           "error":{"code":"PartialError","message":"There were some errors"}}"#,
    )
    .unwrap();
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_query_tables("q.json", &doc, &mut t, &mut r);
    assert_eq!(
        problems(&r),
        [
            "q.json: the query response carries an error (PartialError: There were some errors); its rows may be incomplete",
            "q.json record 1: ResponseCode is not a number: \"oops\""
        ]
    );
    let m = minute(&t, "orders-api", "");
    assert_eq!((m.requests, m.status_5xx, m.timeouts), (2, 1, 1));
    assert_eq!(m.samples[0].origin, Origin::at_record("q.json", 2));
}

#[test]
fn query_tables_from_the_corpus_are_not_mistaken_for_rows() {
    for name in [
        "la-query-200-doc.json",
        "la-query-200-spec.json",
        "la-query-200-partial-error.json",
        "la-query-200-apim-pushdown-per-minute.json",
    ] {
        let Some(path) = shared(&format!("corpus/azure-rest/{name}")) else {
            return;
        };
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let body = &doc["response"]["body"];
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        parse_query_tables(name, body, &mut t, &mut r);
        assert!(t.is_empty(), "{name}");
        let all = problems(&r).join("\n");
        assert!(all.contains("has no ResponseCode column"), "{name}: {all}");
        assert_eq!(
            name.contains("partial"),
            all.contains("PartialError"),
            "{name}: {all}"
        );
    }
}

const CSV: &str = "TotalTime,ResponseCode,TimeGenerated,ApiId,OperationId,LastErrorMessage,BackendUrl\r\n\
41,200,2024-05-14T09:00:01Z,orders-api,get-order,,https://o.internal/1\r\n\
7,\"503\",2024-05-14T09:00:02Z,orders-api,get-order,\"boom, with a comma\nand a newline and \"\"quotes\"\"\",https://o.internal/2\r\n\
9,200,2024-05-14T09:00:03Z,orders-api\r\n\
12,xyz,2024-05-14T09:00:04Z,orders-api,get-order,,\r\n\
\r\n\
15,204,2024-05-14T09:00:05Z,orders-api,get-order,,https://o.internal/3\r\n";

#[test]
fn reads_csv_with_quotes_in_any_column_order() {
    for streaming in [false, true] {
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        if streaming {
            read_csv("logs.csv", CSV.as_bytes(), &mut t, &mut r).unwrap();
        } else {
            parse_csv("logs.csv", CSV.as_bytes(), &mut t, &mut r);
        }
        assert_eq!(
            problems(&r),
            [
                "logs.csv:5: row has 4 fields, the header has 7",
                "logs.csv:6: ResponseCode is not a number: \"xyz\""
            ]
        );
        let m = minute(&t, "orders-api", "get-order");
        assert_eq!((m.requests, m.status_5xx), (3, 1));
        let s = &m.samples[0];
        assert_eq!(
            s.last_error_message.as_deref(),
            Some("boom, with a comma\nand a newline and \"quotes\"")
        );
        assert_eq!(s.origin, Origin::at_line("logs.csv", 3));
    }
}

#[test]
fn reads_the_portal_csv_export() {
    let text = "\u{feff}TimeGenerated [UTC],ApiId,OperationId,ResponseCode,TotalTime\r\n\
        \"5/14/2024, 9:12:03.512 AM\",orders-api,get-order,503,2140\r\n\
        \"5/14/2024, 9:12:04.000 AM\",orders-api,get-order,200,12\r\n";
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_csv("portal.csv", text.as_bytes(), &mut t, &mut r);
    assert_eq!(problems(&r), Vec::<String>::new());
    let m = minute(&t, "orders-api", "get-order");
    assert_eq!((m.requests, m.status_5xx), (2, 1));
    assert_eq!(m.samples[0].time.to_rfc3339(), "2024-05-14T09:12:03.512Z");
}

#[test]
fn csv_in_small_blocks_matches_one_block() {
    let mut text = String::from("TimeGenerated,ApiId,ResponseCode,LastErrorMessage,TotalTime\n");
    for i in 0..500 {
        let code = if i % 7 == 0 { 500 } else { 200 };
        text.push_str(&format!(
            "2024-05-14T09:{:02}:{:02}Z,api-{},{code},\"line one\nline, two {i}\",{i}\n",
            i / 60 % 60,
            i % 60,
            i % 3
        ));
    }
    text.push_str("2024-05-14T09:00:00Z,api-0,bad,x,1\n");
    let one = {
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        parse_csv("a.csv", text.as_bytes(), &mut t, &mut r);
        (t, r)
    };
    let header = csv_header(
        "a.csv",
        text.as_bytes(),
        Limits::standard(),
        &mut LoadReport::default(),
    )
    .unwrap();
    for (block, threads) in [(64, 3), (100, 2), (1000, 1)] {
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        let limits = Limits {
            block,
            max_line: Limits::MAX_LINE,
            threads,
        };
        stream::read_stream("a.csv", text.as_bytes(), &header, limits, &mut t, &mut r).unwrap();
        assert_eq!(normalized(&t), normalized(&one.0), "block {block}");
        assert_eq!(r, one.1, "block {block}");
    }
    assert_eq!(
        problems(&one.1),
        ["a.csv:1002: ResponseCode is not a number: \"bad\""]
    );
}

#[test]
fn csv_without_the_needed_columns_is_one_problem() {
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_csv("x.csv", b"name,value\na,1\n", &mut t, &mut r);
    assert_eq!(
        problems(&r),
        [
            "x.csv:1: the header has no ResponseCode column, so this is not a gateway log export (columns: name, value)"
        ]
    );
    let mut r = LoadReport::default();
    parse_csv("empty.csv", b"", &mut t, &mut r);
    read_csv("empty.csv", &b"\n"[..], &mut t, &mut r).unwrap();
    assert!(r.problems.is_empty() && t.is_empty());
}

#[test]
fn bad_lines_are_reported_and_never_panic() {
    let good = r#"{"TimeGenerated":"2024-05-14T09:00:00Z","ApiId":"a","ResponseCode":200}"#;
    let bad: Vec<(&[u8], &str)> = vec![
        (br#"{"TimeGenerated":"2024-05-14T09:00:00Z","ApiId":"a","Resp"#, "not valid JSON: EOF while parsing"),
        (br#"{"TimeGenerated":12,"ResponseCode":200}"#, "TimeGenerated is not a timestamp: 12"),
        (br#"{"TimeGenerated":"2024-05-14T09:00:00Z","ResponseCode":{"a":1}}"#, "ResponseCode is not a number: it is an object or array"),
        (br#"{"TimeGenerated":"2024-05-14T09:00:00Z","ResponseCode":200,"TotalTime":"fast"}"#, "TotalTime is not a number: \"fast\""),
        (b"{\"TimeGenerated\":\"2024-05-14T09:00:00Z\",\"ApiId\":\"\xff\xfe\",\"ResponseCode\":200}", "invalid UTF-8 at byte 50"),
        (b"\x00\x01\x02binary\x9c junk", "invalid UTF-8 at byte 10"),
        (b"\x00\x01\x02 junk", "not valid JSON"),
        (b"[1,2,3]", "not a JSON object but an array"),
        (b"\"just a string\"", "not a JSON object but a string"),
        (b"{}", "TimeGenerated missing"),
        (b"{\"records\":[1]}", "records[0]: a row must be a JSON object, not a number"),
    ];
    let mut text = Vec::new();
    for (line, _) in &bad {
        text.extend_from_slice(good.as_bytes());
        text.push(b'\n');
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    // Blank lines, CRLF and a last line without newline are fine.
    text.extend_from_slice(b"\n   \r\n");
    text.extend_from_slice(good.as_bytes());
    text.extend_from_slice(b"\r");
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_ndjson("bad.ndjson", &text, &mut t, &mut r);
    assert_eq!(rows(&r), bad.len() as u64 + 1);
    assert_eq!(r.rejected, bad.len() as u64);
    for (i, (p, (_, want))) in r.problems.iter().zip(&bad).enumerate() {
        assert_eq!(p.origin, Origin::at_line("bad.ndjson", 2 * i as u32 + 2));
        assert!(p.message.starts_with(want), "{p} should say {want:?}");
    }
    let (t2, r2) = streamed("bad.ndjson", &text, 16, 1 << 20, 2);
    assert_eq!(normalized(&t2), normalized(&t));
    assert_eq!(r2, r);
}

#[test]
fn empty_and_bom_inputs() {
    let (t, r) = ndjson("");
    assert!(t.is_empty() && r.problems.is_empty() && r.counts.is_empty());
    let text = "\u{feff}{\"TimeGenerated\":\"2024-05-14T09:00:00Z\",\"ResponseCode\":200}\n";
    let (t, r) = ndjson(text);
    assert_eq!((t.rows, r.rejected), (1, 0));
    let (t, r) = streamed("logs.ndjson", text.as_bytes(), 7, 1000, 2);
    assert_eq!((t.rows, r.rejected), (1, 0));
    let (t, r) = streamed("logs.ndjson", b"", 7, 1000, 2);
    assert!(t.is_empty() && r.problems.is_empty());
}

#[test]
fn an_over_long_line_is_skipped_with_bounded_memory() {
    let good = "{\"TimeGenerated\":\"2024-05-14T09:00:00Z\",\"ResponseCode\":200}\n";
    let mut text = good.repeat(3);
    text.push_str(&format!("{{\"x\":\"{}\"}}\n", "y".repeat(5000)));
    text.push_str(&good.repeat(2));
    text.push_str(&"z".repeat(3000));
    for (block, threads) in [(64, 2), (1000, 1), (4096, 3)] {
        let (t, r) = streamed("logs.ndjson", text.as_bytes(), block, 1000, threads);
        assert_eq!(t.rows, 5, "block {block}");
        assert_eq!(
            problems(&r),
            [
                "logs.ndjson:4: line is 5008 bytes, longer than the 1000 bytes limit; a gateway log row is a few KB, so this is not one (was the file concatenated without newlines?)",
                "logs.ndjson:7: line is 3000 bytes, longer than the 1000 bytes limit; a gateway log row is a few KB, so this is not one (was the file concatenated without newlines?)"
            ],
            "block {block}"
        );
    }
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    let limits = Limits {
        block: 64,
        max_line: 1000,
        threads: 2,
    };
    parse_ndjson_with("logs.ndjson", text.as_bytes(), limits, &mut t, &mut r);
    assert_eq!((t.rows, r.rejected), (5, 2));
    assert_eq!(r.problems[1].origin.line, Some(7));
}

#[test]
fn a_fifty_megabyte_line_is_rejected_by_the_real_reader() {
    let good = "{\"TimeGenerated\":\"2024-05-14T09:00:00Z\",\"ResponseCode\":200}\n";
    let mut text = Vec::with_capacity(52_500_000);
    text.extend_from_slice(good.as_bytes());
    text.extend_from_slice(b"{\"Body\":\"");
    text.resize(text.len() + 52_428_800 - 11, b'a');
    text.extend_from_slice(b"\"}\n");
    text.extend_from_slice(good.as_bytes());
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    read_ndjson("big.ndjson", text.as_slice(), &mut t, &mut r).unwrap();
    assert_eq!(t.rows, 2);
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.problems[0].origin, Origin::at_line("big.ndjson", 2));
    assert!(
        r.problems[0]
            .message
            .starts_with("line is 52428800 bytes, longer than the 16 MiB limit"),
        "{}",
        r.problems[0]
    );
}

/// Rows spread over minutes, series and failure kinds.
fn synthetic(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let code = match i % 11 {
            0 => 503,
            3 => 429,
            5 => 504,
            _ => 200,
        };
        let reason = if code == 504 { "Timeout" } else { "" };
        s.push_str(&format!(
            "{{\"TimeGenerated\":\"2024-05-14T09:{:02}:{:02}.{:03}Z\",\"ApiId\":\"api-{}\",\"OperationId\":\"op-{}\",\
             \"BackendUrl\":\"https://b{}.internal/x/{i}\",\"ResponseCode\":{code},\"BackendResponseCode\":{},\
             \"TotalTime\":{},\"BackendTime\":{},\"LastErrorReason\":\"{reason}\",\"Note\":\"a\\\"b\"}}\n",
            (i / 40) % 60,
            i % 60,
            i % 1000,
            i % 3,
            i % 5,
            i % 2,
            if code == 504 { 0 } else { code },
            i % 997,
            i % 991
        ));
        if i % 97 == 0 {
            s.push_str("{\"TimeGenerated\":\"nope\",\"ResponseCode\":200}\n");
        }
    }
    s
}

#[test]
fn results_do_not_depend_on_blocks_or_threads() {
    let text = synthetic(3000);
    let one_thread = Limits {
        block: usize::MAX,
        max_line: Limits::MAX_LINE,
        threads: 1,
    };
    let mut base_t = Traffic::default();
    let mut base_r = LoadReport::default();
    parse_ndjson_with(
        "s.ndjson",
        text.as_bytes(),
        one_thread,
        &mut base_t,
        &mut base_r,
    );
    assert_eq!(base_t.rows, 3000);
    assert_eq!(base_r.rejected, 31);
    // Sequential folding through the model is the reference.
    let mut seq = Traffic::default();
    for (i, l) in text.lines().enumerate() {
        let line = i as u32 + 1;
        ndjson::parse_line(&mut scan::Scanner::default(), l.as_bytes(), |row| {
            if let Ok(req) = row {
                seq.add(&req, || Origin::at_line("s.ndjson", line));
            }
        });
    }
    let mut sorted_seq = normalized(&seq);
    sorted_seq.series.sort_by(|a, b| a.key.cmp(&b.key));
    let mut sorted_base = normalized(&base_t);
    sorted_base.series.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(sorted_base.series, sorted_seq.series);
    for (block, threads) in [(300, 2), (1000, 3), (4096, 2), (1 << 20, 2)] {
        let limits = Limits {
            block,
            max_line: Limits::MAX_LINE,
            threads,
        };
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        parse_ndjson_with("s.ndjson", text.as_bytes(), limits, &mut t, &mut r);
        assert_eq!(normalized(&t), normalized(&base_t), "memory, block {block}");
        assert_eq!(r, base_r, "memory, block {block}");
        let (t, r) = streamed(
            "s.ndjson",
            text.as_bytes(),
            block,
            Limits::MAX_LINE,
            threads,
        );
        assert_eq!(normalized(&t), normalized(&base_t), "stream, block {block}");
        assert_eq!(r, base_r, "stream, block {block}");
    }
}

#[test]
fn merging_into_existing_traffic_adds_up() {
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_ndjson("a", TABLE_ROWS.as_bytes(), &mut t, &mut r);
    parse_ndjson("b", TABLE_ROWS.as_bytes(), &mut t, &mut r);
    assert_eq!((t.rows, r.rejected, rows(&r)), (4, 2, 4));
    assert_eq!(minute(&t, "orders-api", "get-order").requests, 4);
}

#[test]
fn sniffs_rows_and_lines() {
    let row = |s: &str| {
        is_log_row(
            serde_json::from_str::<Value>(s)
                .unwrap()
                .as_object()
                .unwrap(),
        )
    };
    assert!(row(r#"{"TimeGenerated":"x","ResponseCode":"200"}"#));
    assert!(row(r#"{"time":"x","properties":{"responseCode":200}}"#));
    assert!(row(r#"{"time":"x","properties":"{\"ResponseCode\":200}"}"#));
    assert!(row(r#"{"TimeGenerated":"x","responseCode_d":200}"#));
    assert!(row(r#"{"category":"GatewayLogs","time":"x"}"#));
    assert!(!row(r#"{"TimeGenerated":"x","Category":"Administrative"}"#));
    assert!(!row(
        r#"{"name":"orders-api","properties":{"path":"orders"}}"#
    ));

    assert!(is_log_line(TABLE_ROWS.lines().next().unwrap().as_bytes()));
    assert!(is_log_line(
        br#"  {"time":"2024-05-14T09:12:05Z","properties":{"responseCode":401}}  "#
    ));
    assert!(is_log_line(
        br#"{"records":[{"time":"x","properties":{"responseCode":401}}]}"#
    ));
    // Cut short before the response code: not enough to tell.
    assert!(!is_log_line(
        br#"{"TimeGenerated":"2024-05-14T09:12:05Z","Url":"https://x/a","ResponseCo"#
    ));
    assert!(is_log_line(
        br#"{"TimeGenerated":"2024-05-14T09:12:05Z","ResponseCode":200,"Url":"https://x/a"#
    ));
    assert!(!is_log_line(br#"{"id":"/subscriptions/x","name":"y"}"#));
    assert!(!is_log_line(b"TimeGenerated,ResponseCode"));
    assert!(!is_log_line(b"\xff\xfe{"));
    assert!(!is_log_line(b""));
}

#[test]
fn timestamps_keep_their_precision() {
    let (t, r) = ndjson(
        "{\"TimeGenerated\":\"2018-01-29T20:42:31.3810679Z\",\"ResponseCode\":500}\n\
         {\"TimeGenerated\":\"2018-01-29T21:42:31+01:00\",\"ResponseCode\":500}\n",
    );
    assert_eq!(r.rejected, 0);
    let m = t.series[0].minutes.values().next().unwrap();
    assert_eq!(m.requests, 2);
    assert_eq!(m.samples[0].time, Timestamp(1_517_258_551_381));
}

/// Not a correctness test: reads the file named by APIMEDIC_BENCH_FILE with
/// the real reader and prints the time (benches/logs.sh runs it).
#[test]
#[ignore = "benchmark: set APIMEDIC_BENCH_FILE; run by benches/logs.sh"]
fn bench_read_ndjson() {
    let Ok(path) = std::env::var("APIMEDIC_BENCH_FILE") else {
        eprintln!("skipping: APIMEDIC_BENCH_FILE is not set");
        return;
    };
    // One malloc arena, as the binary sets in main (this test runs alone).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    // The path `collect` takes for a big file: mapped, not streamed.
    let start = std::time::Instant::now();
    let file = std::fs::File::open(&path).unwrap();
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_map(LineFormat::Ndjson, &path, &map, &mut t, &mut r);
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "parse_map: {} rows, {} rejected, {} series in {secs:.3} s = {:.2} M rows/s",
        t.rows,
        r.rejected,
        t.series.len(),
        t.rows as f64 / secs / 1e6
    );
    assert!(t.rows > 0, "no rows read from {path}");
}

#[test]
fn reads_nginx_access_logs() {
    let text = r#"{"time":"2026-11-26T09:03:37+00:00","request_id":"r1","remote_addr":"127.0.0.1","method":"GET","uri":"/a/hello?x=1","host":"h","status":200,"body_bytes_sent":52,"request_time":0.005,"upstream_name":"svc_a","upstream_addr":"127.0.0.1:8081","upstream_status":"200","upstream_connect_time":"0.000","upstream_header_time":"0.005","upstream_response_time":"0.005","user_agent":"curl"}
{"time":"2026-11-26T09:03:38+00:00","method":"GET","uri":"/b/delay/3","status":504,"request_time":2.002,"upstream_name":"svc_b","upstream_addr":"127.0.0.1:8082","upstream_status":"504","upstream_connect_time":"0.000","upstream_header_time":"-","upstream_response_time":"2.002"}
{"time":"2026-11-26T09:03:39+00:00","method":"GET","uri":"/b/x","status":502,"request_time":0.000,"upstream_name":"svc_b","upstream_addr":"127.0.0.1:8082","upstream_status":"502","upstream_connect_time":"-","upstream_header_time":"-","upstream_response_time":"0.000"}
{"time":"2026-11-26T09:03:40+00:00","method":"GET","uri":"/pool/x","status":200,"request_time":0.009,"upstream_name":"svc_pool","upstream_addr":"127.0.0.1:8082, 127.0.0.1:8081","upstream_status":"502, 200","upstream_connect_time":"-, 0.000","upstream_header_time":"-, 0.008","upstream_response_time":"0.000, 0.008"}
{"time":"2026-11-26T09:03:41+00:00","method":"GET","uri":"/b/delay/3","status":499,"request_time":0.500,"upstream_name":"svc_b","upstream_addr":"127.0.0.1:8082","upstream_status":"-","upstream_connect_time":"0.000","upstream_header_time":"-","upstream_response_time":"0.501"}
{"time":"2026-11-26T09:03:42+00:00","method":"GET","uri":"/nope","status":404,"request_time":0.000,"upstream_name":"","upstream_addr":"","upstream_status":"","upstream_connect_time":"","upstream_header_time":"","upstream_response_time":""}
{"time":"2026-11-26T09:03:43+00:00","method":"GET","uri":"/a/x","status":"oops","request_time":0.1}
{"time":"yesterday","method":"GET","uri":"/a/x","status":200,"request_time":0.1}
"#;
    assert!(is_nginx_line(text.lines().next().unwrap().as_bytes()));
    assert!(!is_nginx_line(
        TABLE_ROWS.lines().next().unwrap().as_bytes()
    ));
    assert!(!is_log_line(text.lines().next().unwrap().as_bytes()));
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_nginx("access.json", text.as_bytes(), &mut t, &mut r);
    assert_eq!(
        problems(&r),
        [
            "access.json:7: status is not an HTTP status code: \"oops\"",
            "access.json:8: time is not a timestamp: \"yesterday\""
        ]
    );
    assert_eq!(rows(&r), 6);
    let ok = minute(&t, "a", "GET /a/hello");
    assert_eq!(
        (
            ok.status_2xx,
            ok.total_latency.max().unwrap(),
            ok.backend_latency.max().unwrap()
        ),
        (1, 5, 5)
    );
    assert_eq!(
        t.series
            .iter()
            .find(|s| s.key.api_id == "a")
            .unwrap()
            .key
            .backend,
        "svc_a"
    );
    let timeout = minute(&t, "b", "GET /b/delay");
    assert_eq!(
        (
            timeout.requests,
            timeout.timeouts,
            timeout.status_5xx,
            timeout.backend_5xx
        ),
        (2, 1, 1, 0)
    );
    assert_eq!(
        timeout.error_reasons.get("ClientConnectionFailure"),
        Some(&1)
    );
    let down = minute(&t, "b", "GET /b/x");
    assert_eq!((down.connection_failures, down.backend_5xx), (1, 0));
    let failover = minute(&t, "pool", "GET /pool/x");
    assert_eq!(
        (failover.status_2xx, failover.backend_latency.max().unwrap()),
        (1, 8)
    );
    let local = minute(&t, "nope", "GET /nope");
    assert_eq!(
        (local.status_4xx, local.backend_latency.count() as usize),
        (1, 0)
    );

    let (mut t2, mut r2) = (Traffic::default(), LoadReport::default());
    read_nginx("access.json", text.as_bytes(), &mut t2, &mut r2).unwrap();
    assert_eq!(normalized(&t2), normalized(&t));
    assert_eq!(r2, r);
}

/// A deterministic stand-in for the cargo-fuzz target (fuzz/), run with
/// the tests: mutated rows of every shape never panic, and every line is
/// accepted or rejected at most once.
#[test]
fn mutated_rows_never_panic() {
    let seeds: Vec<&str> = TABLE_ROWS
        .lines()
        .chain([
            r#"{"time":"2024-05-14T09:12:05Z","durationMs":4,"properties":{"responseCode":401,"apiId":"a","lastError":{"reason":"TokenExpired"}}}"#,
            r#"{"time":"2017-06-01T10:00:00Z","properties":"{\"ApiId\":\"echo\",\"ResponseCode\":500}"}"#,
            r#"{"TimeGenerated":"2024-05-14T09:12:07Z","apiId_s":"a","responseCode_d":429.0,"Errors":[{"a":"\u00e9"}]}"#,
        ])
        .collect();
    let alphabet = b"{}[]\":,\\0123456789-.eE tfn\xc3\xa9\xff\n\r";
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..4000 {
        let mut text = Vec::new();
        for _ in 0..1 + next() % 4 {
            let mut line = seeds[(next() % seeds.len() as u64) as usize]
                .as_bytes()
                .to_vec();
            for _ in 0..1 + next() % 4 {
                if line.is_empty() {
                    break;
                }
                let at = (next() % line.len() as u64) as usize;
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 4 {
                    0 => line[at] = c,
                    1 => line.insert(at, c),
                    2 => {
                        line.remove(at);
                    }
                    _ => line.truncate(at),
                }
            }
            text.extend_from_slice(&line);
            text.push(b'\n');
        }
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        parse_ndjson("m", &text, &mut t, &mut r);
        let lines = text.split(|&c| c == b'\n').count() as u64;
        assert_eq!(rows(&r), t.rows, "round {round}");
        assert!(
            t.rows + r.rejected <= lines,
            "round {round}: {}",
            String::from_utf8_lossy(&text)
        );
        parse_csv(
            "m",
            &text,
            &mut Traffic::default(),
            &mut LoadReport::default(),
        );
        parse_nginx(
            "m",
            &text,
            &mut Traffic::default(),
            &mut LoadReport::default(),
        );
        for line in text.split(|&c| c == b'\n') {
            let _ = (is_log_line(line), is_nginx_line(line));
        }
    }
}

#[test]
fn a_mapped_file_reads_like_the_stream_and_releases_its_pages() {
    let text = synthetic(3000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ndjson");
    std::fs::write(&path, &text).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let (want_t, want_r) = streamed("s.ndjson", text.as_bytes(), 4096, Limits::MAX_LINE, 2);
    for (block, threads) in [(4096, 2), (5000, 3), (1 << 22, 1)] {
        let limits = Limits {
            block,
            max_line: Limits::MAX_LINE,
            threads,
        };
        let format = ndjson::Ndjson {
            max_line: limits.max_line,
        };
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        stream::parse_map("s.ndjson", &map, &format, limits, &mut t, &mut r);
        assert_eq!(normalized(&t), normalized(&want_t), "block {block}");
        assert_eq!(r, want_r, "block {block}");
    }
    // Released pages read back the same bytes.
    assert_eq!(&map[..], text.as_bytes());
    // The public entry point, every line format.
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_map(LineFormat::Ndjson, "s.ndjson", &map, &mut t, &mut r);
    assert_eq!(normalized(&t), normalized(&want_t));
    let csv = "TimeGenerated,ApiId,OperationId,ResponseCode,TotalTime\n\
               2024-05-14T09:00:01Z,a,b,503,12\n\
               not-a-time,a,b,200,1\n";
    let path = dir.path().join("c.csv");
    std::fs::write(&path, csv).unwrap();
    let map = unsafe { memmap2::Mmap::map(&std::fs::File::open(&path).unwrap()) }.unwrap();
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_map(LineFormat::Csv, "c.csv", &map, &mut t, &mut r);
    let mut want_t = Traffic::default();
    let mut want_r = LoadReport::default();
    parse_csv("c.csv", csv.as_bytes(), &mut want_t, &mut want_r);
    assert_eq!((t.rows, &r), (1, &want_r));
    assert_eq!(normalized(&t), normalized(&want_t));
    assert_eq!(problems(&r).len(), 1, "{:?}", problems(&r));
}

/// The fast path walks rows straight over a chunk, before any line split:
/// it must read exactly what reading each line on its own reads (a lone
/// line never meets a learnt layout). Rows of one layout, mutated: newlines
/// and CRs inside and after values, non-ASCII and invalid UTF-8, escapes,
/// cut rows, trailing bytes after the `}`, a missing final newline.
#[test]
fn the_fast_path_over_a_chunk_reads_like_line_by_line() {
    let base = r#"{"TimeGenerated":"2024-05-14T09:12:03.512Z","ApiId":"orders-api","OperationId":"get-order","Url":"https://contoso.azure-api.net/orders/v1/orders/42?x=1","ResponseCode":503,"BackendResponseCode":503,"TotalTime":2140,"BackendTime":2101,"LastErrorReason":"BackendConnectionFailure","IsRequestSuccess":false,"Region":"West Europe"}"#;
    let alphabet = b"{}\":,\\0123456789.aZ \xc3\xa9\xff\n\r";
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut fast = 0u64;
    for round in 0..600 {
        let mut text = Vec::new();
        for _ in 0..2 + next() % 12 {
            let mut line = base.as_bytes().to_vec();
            // Most rows as they are (the fast path), some changed.
            if next() % 3 == 0 {
                let at = (next() % line.len() as u64) as usize;
                let c = alphabet[(next() % alphabet.len() as u64) as usize];
                match next() % 3 {
                    0 => line[at] = c,
                    1 => line.insert(at, c),
                    _ => line.truncate(at),
                }
            }
            text.extend_from_slice(&line);
            text.extend_from_slice(match next() % 6 {
                0 => b"\r\n",
                1 => b" \n",
                2 => b"\r\r\n",
                _ => b"\n",
            });
        }
        if next() % 4 == 0 {
            text.pop();
        }
        let mut whole_t = Traffic::default();
        let mut whole_r = LoadReport::default();
        parse_ndjson("m", &text, &mut whole_t, &mut whole_r);
        let mut each_t = Traffic::default();
        let mut each_r = LoadReport::default();
        let mut messages = Vec::new();
        for line in text.split(|&c| c == b'\n') {
            let mut t = Traffic::default();
            let mut r = LoadReport::default();
            parse_ndjson("m", line, &mut t, &mut r);
            each_t.merge(t);
            each_r.rejected += r.rejected;
            messages.extend(r.problems.into_iter().map(|p| p.message));
        }
        let show = || String::from_utf8_lossy(&text).to_string();
        assert_eq!(whole_t.rows, each_t.rows, "round {round}: {}", show());
        assert_eq!(
            whole_r.rejected,
            each_r.rejected,
            "round {round}: {}",
            show()
        );
        let got: Vec<String> = whole_r.problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(got, messages, "round {round}: {}", show());
        // Samples name their lines, which differ; everything else is equal.
        for t in [&mut whole_t, &mut each_t] {
            for s in &mut t.series {
                for m in s.minutes.values_mut() {
                    m.samples.clear();
                }
            }
            t.series.sort_by(|a, b| a.key.cmp(&b.key));
        }
        assert_eq!(whole_t.series, each_t.series, "round {round}");
        fast += whole_t.rows;
    }
    assert!(fast > 2000, "{fast} rows read");
}

/// Every kind of value a used column can hold (empty, `None`, null, the
/// wrong type, out of range, other timestamp forms), read by the walk over
/// a chunk against a learnt layout and by the general walk of a lone line:
/// the rows, the problems and the cells, samples included, must be equal.
/// Each variant row follows plain rows of its layout (so it meets the
/// learnt layout), in layouts with aliases, both of an alias pair, and a
/// key twice.
#[test]
fn every_kind_of_value_reads_alike_over_a_chunk_and_alone() {
    let layouts = [
        // The common flat layout.
        r#"{"TimeGenerated":T,"ApiId":A,"OperationId":"get-order","Method":"GET","Url":"https://c.net/o/42","ResponseCode":C,"BackendResponseCode":B,"TotalTime":M,"BackendTime":N,"BackendUrl":U,"LastErrorReason":E,"Region":R}"#,
        // Aliases: `time`, DurationMs, `location`, BackendId.
        r#"{"time":T,"ApiId":A,"ResponseCode":C,"BackendResponseCode":B,"DurationMs":M,"ServiceTime":N,"BackendId":U,"LastErrorReason":E,"location":R}"#,
        // Both of an alias pair, and a key twice: the Fields path only.
        r#"{"TimeGenerated":T,"time":"2024-05-14T09:12:04Z","ApiId":A,"ResponseCode":C,"BackendResponseCode":B,"TotalTime":M,"BackendTime":N,"BackendUrl":U,"LastErrorReason":E,"Region":R,"location":"x"}"#,
        r#"{"TimeGenerated":T,"ApiId":A,"ApiId":"again","ResponseCode":C,"BackendResponseCode":B,"TotalTime":M,"BackendTime":N,"BackendUrl":U,"LastErrorReason":E,"Region":R}"#,
    ];
    let plain = [
        ("T", r#""2024-05-14T09:12:03.512Z""#),
        ("A", r#""orders-api""#),
        ("C", "503"),
        ("B", "503"),
        ("M", "2140"),
        ("N", "2101"),
        ("U", r#""https://orders.internal/api/o/42""#),
        ("E", r#""BackendConnectionFailure""#),
        ("R", r#""West Europe""#),
    ];
    let variants: &[(&str, &[&str])] = &[
        (
            "T",
            &[
                r#""""#,
                r#""None""#,
                "null",
                "17",
                "true",
                r#""2024-05-14 09:12:03""#,
                r#""2024-05-14T09:12:03+02:00""#,
                r#""5/14/2024, 9:12:03 AM""#,
                r#""1970-01-01T00:00:00Z""#,
                r#""9999-12-31T23:59:59Z""#,
                r#""2024-13-14T09:12:03Z""#,
                r#""2024-05-14T09:12:60.5Z""#,
                r#""2024-05-14T09:12:03.Z""#,
            ],
        ),
        (
            "A",
            &[r#""""#, r#""None""#, "null", "42", "false", "true", "4.5e1"],
        ),
        (
            "C",
            &[
                r#""503""#,
                r#""""#,
                r#""None""#,
                "null",
                "503.0",
                "5.03e2",
                "1000",
                "-1",
                "999",
                "0",
                "true",
                "503.5",
                "00503",
            ],
        ),
        (
            "B",
            &[
                r#""503""#,
                r#""""#,
                r#""None""#,
                "null",
                "503.0",
                "1000",
                "-1",
                "true",
                "0",
                "99999999999999999",
            ],
        ),
        (
            "M",
            &[
                r#""2140""#,
                r#""""#,
                r#""None""#,
                "null",
                "2140.4",
                "2140.5",
                "-3",
                "4294967295",
                "4294967296",
                "1e3",
                "true",
                "1234567890123456",
            ],
        ),
        (
            "N",
            &[
                r#""2101""#,
                r#""""#,
                r#""None""#,
                "null",
                "7.9",
                "-0",
                "4294967296",
                "false",
            ],
        ),
        ("U", &[r#""""#, r#""None""#, "null", "17", r#""not a url""#]),
        (
            "E",
            &[r#""""#, r#""None""#, "null", r#""Timeout""#, "1", "true"],
        ),
        ("R", &[r#""""#, r#""None""#, "null", "3", "true"]),
    ];
    let fill = |layout: &str, key: &str, value: &str| {
        let mut row = layout.to_string();
        for (k, v) in plain {
            row = row.replace(
                &format!(":{k},"),
                &format!(":{},", if k == key { value } else { v }),
            );
            row = row.replace(
                &format!(":{k}}}"),
                &format!(":{}}}", if k == key { value } else { v }),
            );
        }
        row
    };
    let mut direct_rows = 0u64;
    for layout in layouts {
        for &(key, values) in variants {
            for value in values {
                let row = fill(layout, key, value);
                let base = fill(layout, "", "");
                let text = format!("{base}\n{base}\n{row}\n{base}\n{row}\n");
                let mut whole_t = Traffic::default();
                let mut whole_r = LoadReport::default();
                parse_ndjson("v", text.as_bytes(), &mut whole_t, &mut whole_r);
                let mut each_t = Traffic::default();
                let mut each_r = LoadReport::default();
                for (i, line) in text.lines().enumerate() {
                    let mut t = Traffic::default();
                    let mut r = LoadReport::default();
                    parse_ndjson("v", line.as_bytes(), &mut t, &mut r);
                    // The same line numbers as the whole file's.
                    for s in &mut t.series {
                        for m in s.minutes.values_mut() {
                            for sample in &mut m.samples {
                                sample.origin.line = Some(i as u32 + 1);
                            }
                        }
                    }
                    each_t.merge(t);
                    each_r.rejected += r.rejected;
                    each_r.problems.extend(r.problems.into_iter().map(|mut p| {
                        p.origin.line = Some(i as u32 + 1);
                        p
                    }));
                }
                let what = format!("{key}={value} in {layout}");
                assert_eq!(whole_t.rows, each_t.rows, "{what}");
                assert_eq!(whole_r.rejected, each_r.rejected, "{what}");
                assert_eq!(whole_r.problems, each_r.problems, "{what}");
                for t in [&mut whole_t, &mut each_t] {
                    t.series.sort_by(|a, b| a.key.cmp(&b.key));
                    for s in &mut t.series {
                        for m in s.minutes.values_mut() {
                            m.samples.sort_by_key(|r| r.origin.line);
                        }
                    }
                }
                assert_eq!(whole_t.series, each_t.series, "{what}");
                direct_rows += whole_t.rows;
            }
        }
    }
    assert!(direct_rows > 300, "{direct_rows} rows read");
}
