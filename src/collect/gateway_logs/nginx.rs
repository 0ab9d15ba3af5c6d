//! nginx JSON access logs (the `gw_json` log_format of components.md §3)
//! read as gateway traffic, so an nginx in front of services is diagnosed
//! like an APIM gateway.
//!
//! Mapping: API = first path segment of `uri`; operation = method + the
//! first two path segments (`GET /orders/items`), the closest thing to an
//! operation template a plain proxy has; backend = `upstream_name` (the
//! proxied upstream; "" when nginx answered itself). The answering try is the
//! last entry of the `upstream_*` lists (`"502, 200"` = failed over): its
//! status is the backend's code only when it sent response headers
//! (`upstream_header_time` not `-`), because nginx writes 502/504 into
//! `upstream_status` itself when no backend answered. Such gateway-made
//! failures get the reason APIM would log: 504 → `Timeout`, 502/503 →
//! `BackendConnectionFailure`, 499 → `ClientConnectionFailure`.

use super::fields::shorten;
use super::fold::{ChunkInfo, Fold, chunk_origin};
use super::stream::{Format, too_long};
use crate::model::{Request, parse_timestamp};
use serde::Deserialize;
use std::borrow::Cow;

/// One access-log line; only the used keys.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
    status: Option<serde_json::Value>,
    request_time: Option<serde_json::Value>,
    #[serde(borrow, default)]
    upstream_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    upstream_status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    upstream_header_time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    upstream_response_time: Option<Cow<'a, str>>,
}

/// The nginx format for the stream reader.
pub(super) struct Nginx {
    pub(super) max_line: usize,
}

impl Format for Nginx {
    fn cut(&self, block: &[u8]) -> Option<usize> {
        memchr::memrchr(b'\n', block).map(|p| p + 1)
    }

    fn cut_forward(&self, data: &[u8]) -> Option<usize> {
        memchr::memchr(b'\n', data).map(|p| p + 1)
    }

    fn chunk(&self, file: &str, seq: u32, data: &[u8], fold: &mut Fold) -> ChunkInfo {
        let mut info = ChunkInfo::new(seq);
        let mut line_no = 0u32;
        let mut operation = String::new();
        for line in data.split_inclusive(|&c| c == b'\n') {
            line_no = line_no.saturating_add(1);
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            if line.len() > self.max_line {
                info.reject(line_no, too_long(line.len() as u64, self.max_line));
                continue;
            }
            match parse_line(line, &mut operation, |r| {
                fold.add(r, || chunk_origin(file, seq, line_no))
            }) {
                Ok(()) => {}
                Err(m) => info.reject(line_no, m),
            }
        }
        info.lines = line_no;
        info
    }
}

/// The last entry of an nginx list (`"502, 200"` → `"200"`).
fn last(list: &str) -> &str {
    list.rsplit(',').next().unwrap_or("").trim()
}

/// Seconds as nginx writes them (`0.005`, `"0.005"`; `"-"` is none) in ms.
fn seconds_ms(v: &str) -> Option<u32> {
    secs_to_ms(v.trim().parse().ok()?)
}

fn secs_to_ms(x: f64) -> Option<u32> {
    (x.is_finite() && x >= 0.0).then(|| (x * 1000.0).round().min(f64::from(u32::MAX)) as u32)
}

/// Parses one line and calls `row` with its request; blank lines are
/// skipped. `operation` is a reused buffer for the operation name.
pub(super) fn parse_line(
    line: &[u8],
    operation: &mut String,
    row: impl FnOnce(&Request<'_>),
) -> Result<(), String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let l: Line<'_> = serde_json::from_slice(line).map_err(|e| {
        if std::str::from_utf8(line).is_err() {
            "invalid UTF-8; nginx writes UTF-8 JSON with escape=json".to_string()
        } else {
            format!("not an nginx JSON access-log line: {e}")
        }
    })?;
    let time_text = l.time.as_deref().ok_or("time missing")?;
    let time = parse_timestamp(time_text)
        .ok_or_else(|| format!("time is not a timestamp: {}", shorten(time_text)))
        .and_then(|t| {
            crate::model::check_plausible(t)
                .map_err(|why| format!("time {why}; the row is not used"))
        })?;
    let status = match &l.status {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => return Err("status missing".into()),
    }
    .filter(|&s| s <= 999)
    .ok_or_else(|| {
        format!(
            "status is not an HTTP status code: {}",
            l.status.as_ref().map_or(String::new(), |v| v.to_string())
        )
    })? as u16;
    let total = match &l.request_time {
        Some(serde_json::Value::Number(n)) => n.as_f64().and_then(secs_to_ms),
        Some(serde_json::Value::String(s)) => seconds_ms(s),
        _ => Some(0),
    }
    .ok_or("request_time is not a number of seconds")?;
    let uri = l.uri.as_deref().unwrap_or("");
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let api = segments.next().unwrap_or("");
    let method = l.method.as_deref().unwrap_or("");
    operation.clear();
    if !method.is_empty() || !api.is_empty() {
        operation.push_str(method);
        operation.push_str(" /");
        operation.push_str(api);
        if let Some(second) = segments.next() {
            operation.push('/');
            operation.push_str(second);
        }
    }
    let upstream_status = l.upstream_status.as_deref().unwrap_or("");
    let answered = l
        .upstream_header_time
        .as_deref()
        .map(last)
        .is_some_and(|h| seconds_ms(h).is_some());
    let backend_code = if answered {
        last(upstream_status).parse::<u16>().unwrap_or(0)
    } else {
        0
    };
    let backend_time = l.upstream_response_time.as_deref().and_then(|list| {
        let times: Vec<u32> = list.split(',').filter_map(seconds_ms).collect();
        (!times.is_empty()).then(|| times.iter().fold(0u32, |a, &t| a.saturating_add(t)))
    });
    let proxied = !upstream_status.is_empty() && upstream_status != "-";
    let reason = match status {
        499 => "ClientConnectionFailure",
        504 if proxied && !answered => "Timeout",
        502 | 503 if proxied && !answered => "BackendConnectionFailure",
        _ => "",
    };
    let req = Request {
        time,
        api_id: api,
        operation_id: operation,
        backend_id: l.upstream_name.as_deref().unwrap_or(""),
        method,
        url: uri,
        response_code: status,
        backend_response_code: backend_code,
        total_time_ms: total,
        backend_time_ms: backend_time,
        last_error_reason: reason,
        correlation_id: l.request_id.as_deref().unwrap_or(""),
        ..Request::default()
    };
    row(&req);
    Ok(())
}

/// True when a line looks like an nginx JSON access-log line.
pub(super) fn is_line(line: &[u8]) -> bool {
    let line = line.trim_ascii();
    line.starts_with(b"{")
        && serde_json::from_slice::<Line<'_>>(line).is_ok_and(|l| {
            l.time.is_some() && l.uri.is_some() && l.status.is_some() && l.request_time.is_some()
        })
}
