//! Fuzzes the gateway-log readers: any bytes as NDJSON, CSV and nginx
//! lines, in memory and streamed. They must never panic, and every input
//! line must end up either accepted or rejected (never both, never lost).
//!
//!     cargo +nightly fuzz run gateway_logs -- -max_total_time=60
#![no_main]

use apimedic::collect::gateway_logs::{
    fold_row_array, is_log_line, is_nginx_line, parse_csv, parse_json_rows, parse_ndjson,
    parse_nginx, read_ndjson,
};
use apimedic::model::{InputKind, LoadReport, Traffic};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A JSON array read element by element loads what the whole-document
    // parse loads when the document is valid.
    if data.trim_ascii_start().starts_with(b"[") {
        let mut t = Traffic::default();
        let mut r = LoadReport::default();
        fold_row_array("fuzz", data, &mut t, &mut r);
        let accepted = r.counts.get(&InputKind::GatewayLogs).copied().unwrap_or(0);
        assert_eq!(accepted, t.rows);
        if let Ok(serde_json::Value::Array(rows)) = serde_json::from_slice(data) {
            let mut t2 = Traffic::default();
            let mut r2 = LoadReport::default();
            parse_json_rows("fuzz", &rows, &mut t2, &mut r2);
            assert_eq!((t.rows, r.rejected), (t2.rows, r2.rejected));
        }
    }
    let mut t = Traffic::default();
    let mut r = LoadReport::default();
    parse_ndjson("fuzz", data, &mut t, &mut r);
    let accepted = r.counts.get(&InputKind::GatewayLogs).copied().unwrap_or(0);
    assert_eq!(accepted, t.rows);
    // Each line is at most one row unless it is a `records` payload.
    if !data
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"\"records\""))
    {
        let lines = data.split(|&c| c == b'\n').count() as u64;
        assert!(
            accepted + r.rejected <= lines,
            "{accepted} + {} > {lines}",
            r.rejected
        );
    }

    let mut t2 = Traffic::default();
    let mut r2 = LoadReport::default();
    read_ndjson("fuzz", data, &mut t2, &mut r2).unwrap();
    assert_eq!((t2.rows, r2.rejected), (t.rows, r.rejected));

    parse_csv(
        "fuzz",
        data,
        &mut Traffic::default(),
        &mut LoadReport::default(),
    );
    parse_nginx(
        "fuzz",
        data,
        &mut Traffic::default(),
        &mut LoadReport::default(),
    );
    for line in data.split(|&c| c == b'\n').take(4) {
        let _ = is_log_line(line);
        let _ = is_nginx_line(line);
    }
});
