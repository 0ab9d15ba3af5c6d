//! Gateway traffic folded into per-minute aggregates, one series per
//! (API, operation, backend). Every log reader feeds `Traffic::add`; analysis
//! reads the aggregates. Latencies are kept per minute as mergeable
//! log-bucketed histograms (`LatencyHistogram`, 1% relative error), the same
//! cell whether it was filled from local rows or from a KQL answer; a few
//! failing requests per series-minute are kept as raw records for evidence,
//! so memory stays bounded however long the log.

use super::{LatencyHistogram, Origin, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// One gateway request as a log reader sees it, borrowed from the input so
/// the hot path does not allocate. Empty strings mean "absent".
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    pub time: Timestamp,
    pub api_id: &'a str,
    pub operation_id: &'a str,
    pub backend_id: &'a str,
    pub backend_url: &'a str,
    pub method: &'a str,
    pub url: &'a str,
    pub response_code: u16,
    /// 0 when the backend did not answer (no backend call, timeout, refused).
    pub backend_response_code: u16,
    pub total_time_ms: u32,
    pub backend_time_ms: Option<u32>,
    pub last_error_reason: &'a str,
    pub last_error_source: &'a str,
    pub last_error_section: &'a str,
    pub last_error_scope: &'a str,
    pub last_error_message: &'a str,
    pub region: &'a str,
    pub correlation_id: &'a str,
}

impl<'a> Request<'a> {
    /// The backend a request went to: its `BackendId`, else the host of its
    /// `BackendUrl`, else empty (no backend call).
    pub fn backend_key(&self) -> &'a str {
        if !self.backend_id.is_empty() {
            return self.backend_id;
        }
        url_host(self.backend_url)
    }

    /// Timed out at the gateway: `Timeout` reason, or a 504 that the backend
    /// did not send itself.
    pub fn is_timeout(&self) -> bool {
        self.last_error_reason.eq_ignore_ascii_case("Timeout")
            || (self.response_code == 504 && self.backend_response_code == 0)
    }

    pub fn is_connection_failure(&self) -> bool {
        self.last_error_reason
            .eq_ignore_ascii_case("BackendConnectionFailure")
    }

    pub fn to_record(&self, origin: Origin) -> RequestRecord {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        RequestRecord {
            time: self.time,
            api_id: self.api_id.to_string(),
            operation_id: self.operation_id.to_string(),
            backend_id: opt(self.backend_id),
            backend_url: opt(self.backend_url),
            method: opt(self.method),
            url: opt(self.url),
            response_code: self.response_code,
            backend_response_code: (self.backend_response_code != 0)
                .then_some(self.backend_response_code),
            total_time_ms: self.total_time_ms,
            backend_time_ms: self.backend_time_ms,
            last_error_reason: opt(self.last_error_reason),
            last_error_source: opt(self.last_error_source),
            last_error_section: opt(self.last_error_section),
            last_error_scope: opt(self.last_error_scope),
            last_error_message: opt(self.last_error_message),
            region: opt(self.region),
            correlation_id: opt(self.correlation_id),
            origin,
        }
    }
}

/// The host part of an absolute URL (`https://h:443/p` → `h:443`), or "".
pub fn url_host(url: &str) -> &str {
    // Byte loops: `str::find("://")` builds a two-way searcher per call,
    // which cost more than the rest of this function on every log row.
    let b = url.as_bytes();
    let after = if b.starts_with(b"https://") {
        8
    } else if b.starts_with(b"http://") {
        7
    } else {
        match (0..b.len()).find(|&i| b.get(i..i + 3) == Some(b"://")) {
            Some(i) => i + 3,
            None => return "",
        }
    };
    let Some(rest) = url.get(after..) else {
        return "";
    };
    // One pass to the first `/`, `?`, `#` or `@`: a host is a few words
    // long, so eight bytes at a time beats two searches' call overhead.
    let r = rest.as_bytes();
    let stop = first_host_stop(r);
    if r.get(stop) != Some(&b'@') {
        return rest.get(..stop).unwrap_or(rest);
    }
    // A host never carries credentials: drop `user:password@`.
    let end = memchr::memchr3(b'/', b'?', b'#', r).unwrap_or(r.len());
    let authority = rest.get(..end).unwrap_or(rest);
    match memchr::memrchr(b'@', authority.as_bytes()) {
        Some(at) => authority.get(at + 1..).unwrap_or(""),
        None => authority,
    }
}

/// The index of the first `/`, `?`, `#` or `@` in `b` (its length if none):
/// eight bytes at a time, each tested for the four bytes with the
/// zero-byte trick (a set high bit in `(x - 0x01..) & !x & 0x80..` marks a
/// zero byte of `x`; the lowest marks the first, exactly).
#[inline]
fn first_host_stop(b: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let mut at = 0;
    while let Some(w) = b.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        let x = u64::from_le_bytes(word);
        let m = zero(x ^ (LO * u64::from(b'/')))
            | zero(x ^ (LO * u64::from(b'?')))
            | zero(x ^ (LO * u64::from(b'#')))
            | zero(x ^ (LO * u64::from(b'@')));
        if m != 0 {
            return at + (m.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    b.get(at..)
        .and_then(|t| {
            t.iter()
                .position(|c| matches!(c, b'/' | b'?' | b'#' | b'@'))
        })
        .map_or(b.len(), |p| at + p)
}

/// Exact byte equality, eight bytes at a time: the per-row paths compare
/// short keys and names, where a memcmp call costs more than the compare.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if b.len() != n {
        return false;
    }
    if n < 8 {
        // Short keys (`Url`, `ApiId`): one folded word each; `a == b`
        // would call memcmp.
        let small = |s: &[u8]| s.iter().fold(0u64, |w, &c| (w << 8) | u64::from(c));
        return small(a) == small(b);
    }
    let word = |s: &[u8], at: usize| -> u64 {
        let mut w = [0u8; 8];
        if let Some(c) = s.get(at..at + 8) {
            w.copy_from_slice(c);
        }
        u64::from_le_bytes(w)
    };
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// An owned request kept as evidence, with where it was read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestRecord {
    pub time: Timestamp,
    pub api_id: String,
    pub operation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub response_code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_response_code: Option<u16>,
    pub total_time_ms: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_time_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_section: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub origin: Origin,
}

/// Identity of a traffic series.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    pub api_id: String,
    pub operation_id: String,
    /// `BackendId`, else the host of `BackendUrl`, else empty.
    pub backend: String,
}

/// One minute of one series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MinuteStats {
    pub requests: u32,
    pub status_2xx: u32,
    pub status_3xx: u32,
    pub status_4xx: u32,
    pub status_429: u32,
    pub status_5xx: u32,
    /// 5xx the backend itself answered (equal BackendResponseCode).
    pub backend_5xx: u32,
    pub timeouts: u32,
    pub connection_failures: u32,
    /// TotalTime of every request in the minute.
    pub total_latency: LatencyHistogram,
    /// BackendTime of every request that had one.
    pub backend_latency: LatencyHistogram,
    /// Count per LastErrorReason (non-empty reasons only).
    pub error_reasons: BTreeMap<String, u32>,
    /// Distinct BackendUrl hosts seen (at most a few), for the backend map.
    pub backend_hosts: Vec<String>,
    /// A few failing requests, kept as evidence.
    pub samples: Vec<RequestRecord>,
}

impl MinuteStats {
    /// Failing requests kept per series-minute.
    pub const MAX_SAMPLES: usize = 3;
    const MAX_HOSTS: usize = 4;

    pub fn add(&mut self, r: &Request<'_>, origin: impl FnOnce() -> Origin) {
        self.add_counts(r, url_host(r.backend_url), origin);
        self.total_latency.add(r.total_time_ms);
        if let Some(b) = r.backend_time_ms {
            self.backend_latency.add(b);
        }
    }

    /// [`add`](Self::add) without the latencies, for a reader that counts
    /// those in a [`DenseCounts`](super::DenseCounts) and flushes them here
    /// and has cut the host out of the request's `backend_url` already
    /// (`url_host`).
    pub fn add_counts(
        &mut self,
        r: &Request<'_>,
        backend_host: &str,
        origin: impl FnOnce() -> Origin,
    ) {
        self.requests += 1;
        match r.response_code {
            200..=299 => self.status_2xx += 1,
            300..=399 => self.status_3xx += 1,
            400..=499 => {
                self.status_4xx += 1;
                if r.response_code == 429 {
                    self.status_429 += 1;
                }
            }
            500..=599 => {
                self.status_5xx += 1;
                if r.backend_response_code == r.response_code {
                    self.backend_5xx += 1;
                }
            }
            _ => {}
        }
        let timeout = r.is_timeout();
        if timeout {
            self.timeouts += 1;
        }
        if r.is_connection_failure() {
            self.connection_failures += 1;
        }
        if !r.last_error_reason.is_empty() {
            match self.error_reasons.get_mut(r.last_error_reason) {
                Some(n) => *n += 1,
                None => {
                    self.error_reasons
                        .insert(r.last_error_reason.to_string(), 1);
                }
            }
        }
        if !backend_host.is_empty()
            && self.backend_hosts.len() < Self::MAX_HOSTS
            && !self
                .backend_hosts
                .iter()
                .any(|h| same_bytes(h.as_bytes(), backend_host.as_bytes()))
        {
            self.backend_hosts.push(backend_host.to_string());
        }
        let failing = r.response_code >= 500
            || r.response_code == 429
            || timeout
            || !r.last_error_reason.is_empty();
        if failing && self.samples.len() < Self::MAX_SAMPLES {
            // Exact: a record is ~400 bytes and Vec's first growth reserves
            // four, most series-minutes keep one or two.
            self.samples.reserve_exact(1);
            self.samples.push(r.to_record(origin()));
        }
    }

    pub fn merge(&mut self, other: MinuteStats) {
        self.requests += other.requests;
        self.status_2xx += other.status_2xx;
        self.status_3xx += other.status_3xx;
        self.status_4xx += other.status_4xx;
        self.status_429 += other.status_429;
        self.status_5xx += other.status_5xx;
        self.backend_5xx += other.backend_5xx;
        self.timeouts += other.timeouts;
        self.connection_failures += other.connection_failures;
        self.total_latency.merge(&other.total_latency);
        self.backend_latency.merge(&other.backend_latency);
        for (k, v) in other.error_reasons {
            *self.error_reasons.entry(k).or_default() += v;
        }
        for h in other.backend_hosts {
            if self.backend_hosts.len() < Self::MAX_HOSTS && !self.backend_hosts.contains(&h) {
                self.backend_hosts.push(h);
            }
        }
        for s in other.samples {
            if self.samples.len() < Self::MAX_SAMPLES {
                self.samples.push(s);
            }
        }
        self.samples.sort_by_key(|s| s.time);
    }

    /// Share of requests that failed with a 5xx.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            f64::from(self.status_5xx) / f64::from(self.requests)
        }
    }
}

/// One (API, operation, backend) series: per-minute stats in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub key: SeriesKey,
    pub minutes: BTreeMap<super::Minute, MinuteStats>,
}

impl Series {
    pub fn total_requests(&self) -> u64 {
        self.minutes.values().map(|m| u64::from(m.requests)).sum()
    }
}

/// All traffic of a snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    pub series: Vec<Series>,
    /// api → operation → backend → index into `series`.
    index: HashMap<String, HashMap<String, HashMap<String, usize>>>,
    /// Rows folded in, over all series.
    pub rows: u64,
}

impl Traffic {
    /// The index of the series for a key, creating it when new. Looks up by
    /// borrowed strings: the hot path must not allocate a key per row.
    pub fn series_index(&mut self, api_id: &str, operation_id: &str, backend: &str) -> usize {
        if let Some(&i) = self
            .index
            .get(api_id)
            .and_then(|o| o.get(operation_id))
            .and_then(|b| b.get(backend))
        {
            return i;
        }
        let key = SeriesKey {
            api_id: api_id.into(),
            operation_id: operation_id.into(),
            backend: backend.into(),
        };
        let i = self.series.len();
        self.series.push(Series {
            key,
            minutes: BTreeMap::new(),
        });
        self.index
            .entry(api_id.to_string())
            .or_default()
            .entry(operation_id.to_string())
            .or_default()
            .insert(backend.to_string(), i);
        i
    }

    /// Folds one request in. `origin` is only called when the request is
    /// kept as a sample.
    pub fn add(&mut self, r: &Request<'_>, origin: impl FnOnce() -> Origin) {
        let i = self.series_index(r.api_id, r.operation_id, r.backend_key());
        self.add_to(i, r, origin);
    }

    /// Folds one request into a series whose index the caller already holds.
    pub fn add_to(&mut self, series: usize, r: &Request<'_>, origin: impl FnOnce() -> Origin) {
        self.rows += 1;
        self.series[series]
            .minutes
            .entry(r.time.minute())
            .or_default()
            .add(r, origin);
    }

    pub fn merge(&mut self, other: Traffic) {
        if self.series.is_empty() {
            // The usual case (the first file with logs): move, do not copy
            // every cell.
            let rows = self.rows + other.rows;
            *self = other;
            self.rows = rows;
            return;
        }
        self.rows += other.rows;
        for s in other.series {
            let i = self.series_index(&s.key.api_id, &s.key.operation_id, &s.key.backend);
            let mine = &mut self.series[i].minutes;
            for (m, st) in s.minutes {
                mine.entry(m).or_default().merge(st);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// First and last minute with traffic.
    pub fn minute_range(&self) -> Option<(super::Minute, super::Minute)> {
        let lo = self
            .series
            .iter()
            .filter_map(|s| s.minutes.keys().next())
            .min()?;
        let hi = self
            .series
            .iter()
            .filter_map(|s| s.minutes.keys().next_back())
            .max()?;
        Some((*lo, *hi))
    }
}

/// Exact percentile (nearest-rank) of unsorted values; sorts a copy.
pub fn percentile(values: &[u32], p: f64) -> Option<u32> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize - 1;
    let rank = rank.min(v.len() - 1);
    let (_, x, _) = v.select_nth_unstable(rank);
    Some(*x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(minute: i64, code: u16, backend_code: u16, reason: &'a str) -> Request<'a> {
        Request {
            time: Timestamp::from_minute(minute),
            api_id: "orders-api",
            operation_id: "get-order",
            backend_url: "https://orders.internal/v1/orders/1",
            response_code: code,
            backend_response_code: backend_code,
            total_time_ms: 100,
            backend_time_ms: Some(90),
            last_error_reason: reason,
            ..Request::default()
        }
    }

    #[test]
    fn folds_per_minute_and_keeps_failing_samples() {
        let mut t = Traffic::default();
        t.add(&req(10, 200, 200, ""), || Origin::at_line("a", 1));
        t.add(&req(10, 503, 503, ""), || Origin::at_line("a", 2));
        t.add(&req(11, 504, 0, "Timeout"), || Origin::at_line("a", 3));
        assert_eq!(t.series.len(), 1);
        assert_eq!(t.series[0].key.backend, "orders.internal");
        let m10 = &t.series[0].minutes[&10];
        assert_eq!((m10.requests, m10.status_5xx, m10.backend_5xx), (2, 1, 1));
        assert_eq!(m10.samples.len(), 1);
        assert_eq!(m10.samples[0].origin.line, Some(2));
        let m11 = &t.series[0].minutes[&11];
        assert_eq!((m11.timeouts, m11.error_reasons["Timeout"]), (1, 1));
    }

    #[test]
    fn merge_is_additive() {
        let mut a = Traffic::default();
        let mut b = Traffic::default();
        a.add(&req(1, 200, 200, ""), Origin::default);
        b.add(&req(1, 500, 500, ""), Origin::default);
        a.merge(b);
        assert_eq!(a.rows, 2);
        assert_eq!(a.series[0].minutes[&1].requests, 2);
        // Into an empty one (moved, index kept): adding again finds the series.
        let mut e = Traffic::default();
        e.merge(a);
        e.add(&req(1, 200, 200, ""), Origin::default);
        assert_eq!((e.rows, e.series.len()), (3, 1));
        assert_eq!(e.series[0].minutes[&1].requests, 3);
    }

    #[test]
    fn percentiles_are_exact() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7], 99.0), Some(7));
    }

    /// The host cut the plain way: up to the first `/`, `?` or `#`, then
    /// after the last `@`.
    fn url_host_reference(url: &str) -> &str {
        let Some(i) = url.find("://") else {
            return "";
        };
        let rest = &url[i + 3..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        authority
            .rfind('@')
            .map_or(authority, |at| &authority[at + 1..])
    }

    #[test]
    fn host_cut_matches_the_plain_way() {
        // Every mix of the bytes that end or split a host, at every length
        // around the eight-byte steps.
        let alphabet = b"ab.:/?#@";
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let tail: String = (0..len)
                .map(|k| alphabet[((x >> (k * 2 % 60)) as usize + k) % alphabet.len()] as char)
                .collect();
            let scheme = ["https://", "http://", "ftp://", ""][round % 4];
            let url = format!("{scheme}{tail}");
            assert_eq!(url_host(&url), url_host_reference(&url), "{url:?}");
        }
    }

    #[test]
    fn host_of_url() {
        assert_eq!(url_host("https://a.b:8443/x?y"), "a.b:8443");
        assert_eq!(url_host("nope"), "");
        assert_eq!(
            url_host("https://svc:p%40ss@a.b/x"),
            "a.b",
            "no credentials in a host"
        );
        assert_eq!(url_host("http://a.b/x"), "a.b");
        assert_eq!(url_host("ftp://a.b/x"), "a.b");
        for (url, host, want) in [
            ("https://a.b/x", "a.b", true),
            ("https://a.b", "a.b", true),
            ("https://a.bc/x", "a.b", false),
            ("http://a.b?q", "a.b", true),
            ("ftp://a.b/x", "a.b", true),
            ("https://a.b:8443/x", "a.b", false),
            ("https://svc:pw@a.b/x", "a.b", true),
            ("https://svc:pw@a.b/x", "svc", false),
        ] {
            assert_eq!(url_host(url) == host, want, "{url} {host}");
        }
    }
}
