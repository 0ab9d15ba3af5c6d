//! The columns of a gateway log row, whatever its shape: key names mapped to
//! one `Field` (case-insensitive, AzureDiagnostics `_s/_d/_b/_g` suffixes
//! stripped), raw values as the input wrote them, and the one conversion of
//! those values into a `model::Request`. Every reader (fast NDJSON scanner,
//! serde fallback, CSV, query tables) goes through `to_request`, so all shapes
//! agree on what a valid row is and on the wording of rejections.

use crate::model::{Request, Timestamp, check_plausible, parse_timestamp};
use serde_json::{Map, Value};

/// A column apimedic uses. Aliases of one meaning stay separate variants so
/// precedence does not depend on key order (`TimeGenerated` before `time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    TimeGenerated,
    Time,
    ApiId,
    OperationId,
    BackendId,
    BackendUrl,
    Method,
    Url,
    ResponseCode,
    BackendResponseCode,
    TotalTime,
    DurationMs,
    BackendTime,
    ServiceTime,
    LastErrorReason,
    LastErrorSource,
    LastErrorSection,
    LastErrorScope,
    LastErrorMessage,
    Region,
    Location,
    CorrelationId,
    /// Storage/Event Hub `properties` (object, or a JSON string in 2017-era
    /// records) and AzureDiagnostics' `AdditionalFields` spill column.
    Properties,
    /// Storage/Event Hub `properties.lastError` object.
    LastError,
}

pub(super) const FIELD_COUNT: usize = Field::LastError as usize + 1;

impl Field {
    /// The name used in messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Field::TimeGenerated => "TimeGenerated",
            Field::Time => "time",
            Field::ApiId => "ApiId",
            Field::OperationId => "OperationId",
            Field::BackendId => "BackendId",
            Field::BackendUrl => "BackendUrl",
            Field::Method => "Method",
            Field::Url => "Url",
            Field::ResponseCode => "ResponseCode",
            Field::BackendResponseCode => "BackendResponseCode",
            Field::TotalTime => "TotalTime",
            Field::DurationMs => "durationMs",
            Field::BackendTime => "BackendTime",
            Field::ServiceTime => "ServiceTime",
            Field::LastErrorReason => "LastErrorReason",
            Field::LastErrorSource => "LastErrorSource",
            Field::LastErrorSection => "LastErrorSection",
            Field::LastErrorScope => "LastErrorScope",
            Field::LastErrorMessage => "LastErrorMessage",
            Field::Region => "Region",
            Field::Location => "location",
            Field::CorrelationId => "CorrelationId",
            Field::Properties => "properties",
            Field::LastError => "lastError",
        }
    }
}

/// Which keys a map may hold: a row (top level or `properties`), or the
/// nested `lastError` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Context {
    Row,
    LastError,
}

/// The field a key names in a context, or `None` for columns not used.
#[inline]
pub(super) fn classify(key: &[u8], ctx: Context) -> Option<Field> {
    match ctx {
        Context::Row => classify_row(key),
        Context::LastError => classify_last_error(key),
    }
}

/// Case-insensitive equality of a key with a name made of lowercase
/// letters and `_`, eight bytes at a time (the call for every key of every
/// row). Folding sets bit 0x20 of every byte: a letter then matches in
/// either case, and `_` (0x5F) also matches DEL (0x7F), harmless in a key.
#[inline(always)]
fn is(key: &[u8], name: &[u8]) -> bool {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let n = name.len();
    if key.len() != n {
        return false;
    }
    if n < 8 {
        return key.iter().zip(name).all(|(a, b)| a | 0x20 == b | 0x20);
    }
    let word = |s: &[u8], at: usize| -> u64 {
        let mut w = [0u8; 8];
        if let Some(c) = s.get(at..at + 8) {
            w.copy_from_slice(c);
        }
        u64::from_le_bytes(w) | FOLD
    };
    let mut at = 0;
    while at + 8 < n {
        if word(key, at) != word(name, at) {
            return false;
        }
        at += 8;
    }
    // The last (possibly overlapping) eight bytes.
    word(key, n - 8) == word(name, n - 8)
}

/// Row keys. Dispatches on length first: this runs for every key of every
/// row, so most unknown keys cost one comparison.
pub(super) fn classify_row(key: &[u8]) -> Option<Field> {
    let key = match key {
        [rest @ .., b'_', s]
            if !rest.is_empty() && matches!(s | 0x20, b's' | b'd' | b'b' | b'g') =>
        {
            rest
        }
        _ => key,
    };
    let f = match key.len() {
        3 if is(key, b"url") => Field::Url,
        4 if is(key, b"time") => Field::Time,
        5 if is(key, b"apiid") => Field::ApiId,
        6 if is(key, b"method") => Field::Method,
        6 if is(key, b"region") => Field::Region,
        8 if is(key, b"location") => Field::Location,
        9 if is(key, b"totaltime") => Field::TotalTime,
        9 if is(key, b"timestamp") => Field::Time,
        9 if is(key, b"backendid") => Field::BackendId,
        9 if is(key, b"lasterror") => Field::LastError,
        10 if is(key, b"durationms") => Field::DurationMs,
        10 if is(key, b"backendurl") => Field::BackendUrl,
        10 if is(key, b"requesturl") => Field::Url,
        10 if is(key, b"properties") => Field::Properties,
        11 if is(key, b"operationid") => Field::OperationId,
        11 if is(key, b"backendtime") => Field::BackendTime,
        11 if is(key, b"servicetime") => Field::ServiceTime,
        12 if is(key, b"responsecode") => Field::ResponseCode,
        13 if is(key, b"timegenerated") => Field::TimeGenerated,
        13 if is(key, b"correlationid") => Field::CorrelationId,
        14 if is(key, b"lasterrorscope") => Field::LastErrorScope,
        15 if is(key, b"lasterrorreason") => Field::LastErrorReason,
        15 if is(key, b"lasterrorsource") => Field::LastErrorSource,
        15 if is(key, b"lasterror_scope") => Field::LastErrorScope,
        16 if is(key, b"lasterrorsection") => Field::LastErrorSection,
        16 if is(key, b"lasterrormessage") => Field::LastErrorMessage,
        16 if is(key, b"lasterror_reason") => Field::LastErrorReason,
        16 if is(key, b"lasterror_source") => Field::LastErrorSource,
        16 if is(key, b"additionalfields") => Field::Properties,
        17 if is(key, b"lasterror_section") => Field::LastErrorSection,
        17 if is(key, b"lasterror_message") => Field::LastErrorMessage,
        19 if is(key, b"backendresponsecode") => Field::BackendResponseCode,
        _ => return None,
    };
    Some(f)
}

fn classify_last_error(key: &[u8]) -> Option<Field> {
    let f = match key.len() {
        5 if is(key, b"scope") => Field::LastErrorScope,
        6 if is(key, b"reason") => Field::LastErrorReason,
        6 if is(key, b"source") => Field::LastErrorSource,
        7 if is(key, b"section") => Field::LastErrorSection,
        7 if is(key, b"message") => Field::LastErrorMessage,
        _ => return None,
    };
    Some(f)
}

/// A value as the input wrote it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Raw<'a> {
    /// A JSON string (unescaped) or a CSV field.
    Str(&'a str),
    /// A JSON number token, as written.
    Num(&'a str),
    /// A JSON number already decoded by serde.
    Float(f64),
    Bool(bool),
    Null,
    /// An object or array where a scalar was expected.
    Nested,
}

impl<'a> Raw<'a> {
    pub(super) fn of_value(v: &'a Value) -> Raw<'a> {
        match v {
            Value::String(s) => Raw::Str(s),
            Value::Number(n) => n.as_f64().map_or(Raw::Nested, Raw::Float),
            Value::Bool(b) => Raw::Bool(*b),
            Value::Null => Raw::Null,
            Value::Array(_) | Value::Object(_) => Raw::Nested,
        }
    }

    /// Missing: JSON null, an empty string, or the CLI's stringified `None`.
    fn is_absent(&self) -> bool {
        match self {
            Raw::Null => true,
            Raw::Str(s) => s.is_empty() || *s == "None",
            _ => false,
        }
    }
}

/// The used columns of one row.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Fields<'a> {
    values: [Option<Raw<'a>>; FIELD_COUNT],
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Fields {
            values: [None; FIELD_COUNT],
        }
    }
}

impl<'a> Fields<'a> {
    /// Sets a field; a later duplicate key wins.
    #[inline(always)]
    pub(super) fn set(&mut self, f: Field, v: Raw<'a>) {
        if let Some(slot) = self.values.get_mut(f as usize) {
            *slot = Some(v);
        }
    }

    /// A present (not null, empty or "None") value.
    #[inline(always)]
    pub(super) fn get(&self, f: Field) -> Option<Raw<'a>> {
        self.values
            .get(f as usize)
            .copied()
            .flatten()
            .filter(|v| !v.is_absent())
    }

    #[inline(always)]
    pub(super) fn has(&self, f: Field) -> bool {
        self.get(f).is_some()
    }

    /// Which of two aliases to read: the first if present. (Returns the
    /// field, not the value: a returned `(Field, Raw)` tuple went through
    /// the stack unaligned and stalled the per-row path.)
    #[inline(always)]
    fn either(&self, a: Field, b: Field) -> Field {
        if self.has(a) { a } else { b }
    }

    #[inline(always)]
    fn text(&self, f: Field) -> &'a str {
        match self.get(f) {
            Some(Raw::Str(s) | Raw::Num(s)) => s,
            Some(Raw::Bool(true)) => "true",
            Some(Raw::Bool(false)) => "false",
            _ => "",
        }
    }

    #[inline(always)]
    fn text2(&self, a: Field, b: Field) -> &'a str {
        let t = self.text(a);
        if t.is_empty() { self.text(b) } else { t }
    }

    /// Whether the row has what `to_request` needs at minimum.
    pub(super) fn looks_like_log_row(&self) -> bool {
        (self.has(Field::TimeGenerated) || self.has(Field::Time)) && self.has(Field::ResponseCode)
    }
}

/// Keeps error messages short when a value is huge.
pub(super) fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &s[..end], s.len())
}

fn not_a_number(f: Field, v: Raw<'_>) -> String {
    match v {
        Raw::Str(s) | Raw::Num(s) => format!("{} is not a number: {}", f.name(), shorten(s)),
        Raw::Bool(b) => format!("{} is not a number: {b}", f.name()),
        Raw::Nested => format!("{} is not a number: it is an object or array", f.name()),
        Raw::Float(x) => format!("{} is not a number: {x}", f.name()),
        Raw::Null => format!("{} is missing", f.name()),
    }
}

/// A number from a JSON number, a stringified one (`"503"`, `"2140.0"`,
/// `"1e3"`) or a CSV field.
fn number(f: Field, v: Raw<'_>) -> Result<f64, String> {
    let text = match v {
        Raw::Float(x) => return Ok(x),
        Raw::Str(s) | Raw::Num(s) => s.trim(),
        other => return Err(not_a_number(f, other)),
    };
    // Fast path: plain digits, as nearly every row writes them.
    if !text.is_empty() && text.len() <= 15 && text.bytes().all(|c| c.is_ascii_digit()) {
        let n = text.bytes().fold(0u64, |n, c| n * 10 + u64::from(c - b'0'));
        return Ok(n as f64);
    }
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(not_a_number(f, v)),
    }
}

/// Plain decimal digits (the common case), without going through f64.
#[inline(always)]
fn digits(v: Raw<'_>) -> Option<u64> {
    let (Raw::Num(s) | Raw::Str(s)) = v else {
        return None;
    };
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for c in s.bytes() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

#[inline]
fn status_code(f: Field, v: Raw<'_>) -> Result<u16, String> {
    if let Some(n) = digits(v).filter(|&n| n <= 999) {
        return Ok(n as u16);
    }
    let x = number(f, v)?;
    if x.fract() != 0.0 || !(0.0..=999.0).contains(&x) {
        return Err(format!("{} is not an HTTP status code: {x}", f.name()));
    }
    Ok(x as u16)
}

#[inline(always)]
fn millis(f: Field, v: Raw<'_>) -> Result<u32, String> {
    if let Some(n) = digits(v).and_then(|n| u32::try_from(n).ok()) {
        return Ok(n);
    }
    let x = number(f, v)?;
    if !(0.0..=f64::from(u32::MAX)).contains(&x) {
        return Err(format!(
            "{} is not a duration in milliseconds: {x}",
            f.name()
        ));
    }
    Ok(x.round() as u32)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the form nearly every row uses, parsed
/// without the general parser's checks; anything else (or out of range)
/// gives `None` and goes to `parse_timestamp`, whose results this matches.
#[inline]
fn utc_timestamp(s: &str) -> Option<Timestamp> {
    thread_local! {
        /// The last minute parsed on this thread: its first 16 bytes
        /// (`YYYY-MM-DDTHH:MM`, already checked) and its milliseconds.
        /// Rows come in time order, so most rows share it.
        static LAST_MINUTE: std::cell::Cell<(u128, i64)> = const { std::cell::Cell::new((u128::MAX, 0)) };
    }
    let b = s.as_bytes();
    let d = |i: usize| -> Option<i64> {
        let c = b.get(i)?.wrapping_sub(b'0');
        (c <= 9).then_some(i64::from(c))
    };
    let two = |i: usize| -> Option<i64> { Some(d(i)? * 10 + d(i + 1)?) };
    let head = u128::from_le_bytes(b.get(..16)?.try_into().ok()?);
    if b.get(16) != Some(&b':') {
        return None;
    }
    let (last, last_ms) = LAST_MINUTE.with(std::cell::Cell::get);
    let minute_ms = if head == last {
        last_ms
    } else {
        if b.get(4) != Some(&b'-')
            || b.get(7) != Some(&b'-')
            || b.get(10) != Some(&b'T')
            || b.get(13) != Some(&b':')
        {
            return None;
        }
        let y = two(0)? * 100 + two(2)?;
        let (mo, day, h, mi) = (two(5)?, two(8)?, two(11)?, two(14)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 {
            return None;
        }
        let days = crate::model::days_from_civil(y, mo, day);
        let ms = (days * 86_400 + h * 3600 + mi * 60) * 1000;
        LAST_MINUTE.with(|c| c.set((head, ms)));
        ms
    };
    let sec = two(17)?;
    if sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(x) = d(i) {
            if i - start < 3 {
                ms = ms * 10 + x;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            ms *= 10;
        }
    }
    if b.get(i) != Some(&b'Z') || i + 1 != b.len() {
        return None;
    }
    Some(Timestamp(minute_ms + sec * 1000 + ms))
}

/// The form the Azure portal's "Export to CSV" writes under a
/// `TimeGenerated [UTC]` header: `5/14/2024, 9:12:03.512 AM` (US month/day
/// order, 12-hour clock; the comma, the fraction and AM/PM optional).
fn portal_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (date, rest) = s.split_once([',', ' '])?;
    let mut d = date.split('/');
    let mo: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    let y: i64 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1000..=9999).contains(&y) {
        return None;
    }
    let rest = rest.trim_start_matches([',', ' ']);
    let (clock, half) = match rest.rsplit_once(' ') {
        Some((c, h)) => (c, Some(h.to_ascii_uppercase())),
        None => (rest, None),
    };
    let mut t = clock.split(':');
    let mut h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec_text = t.next()?;
    if t.next().is_some() {
        return None;
    }
    let (sec, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let sec: i64 = sec.parse().ok()?;
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let ms = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0i64, |n, c| n * 10 + i64::from(c - b'0'));
    match half.as_deref() {
        Some("AM") if (1..=12).contains(&h) => h %= 12,
        Some("PM") if (1..=12).contains(&h) => h = h % 12 + 12,
        None => {}
        _ => return None,
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = crate::model::days_from_civil(y, mo, day);
    Some(Timestamp(
        (days * 86_400 + h * 3600 + mi * 60 + sec) * 1000 + ms,
    ))
}

#[inline]
fn timestamp(f: Field, v: Raw<'_>) -> Result<Timestamp, String> {
    match v {
        Raw::Str(s) => utc_timestamp(s)
            .or_else(|| parse_timestamp(s))
            .or_else(|| portal_timestamp(s))
            .ok_or_else(|| format!("{} is not a timestamp: {}", f.name(), shorten(s)))
            .and_then(|t| {
                check_plausible(t).map_err(|why| format!("{} {why}; the row is not used", f.name()))
            }),
        Raw::Num(s) => Err(format!(
            "{} is not a timestamp: {s} (a number; expected ISO 8601 text)",
            f.name()
        )),
        Raw::Float(x) => Err(format!(
            "{} is not a timestamp: {x} (a number; expected ISO 8601 text)",
            f.name()
        )),
        Raw::Bool(b) => Err(format!("{} is not a timestamp: {b}", f.name())),
        Raw::Nested => Err(format!(
            "{} is not a timestamp: it is an object or array",
            f.name()
        )),
        Raw::Null => Err(format!("{} is missing", f.name())),
    }
}

/// Why a row has no time: the column is there but empty (`""`, `null`,
/// `"None"`), or there is no such column at all.
#[cold]
fn no_time(f: &Fields<'_>) -> String {
    for field in [Field::TimeGenerated, Field::Time] {
        if let Some(v) = f.values.get(field as usize).copied().flatten() {
            let what = match v {
                Raw::Null => "null".to_string(),
                Raw::Str("") => "empty".to_string(),
                Raw::Str(s) => format!("{s:?}"),
                _ => "absent".to_string(),
            };
            return format!(
                "{} is {what}: the row has no time, so it cannot be placed and is not used",
                field.name()
            );
        }
    }
    "TimeGenerated missing (no TimeGenerated or time column)".into()
}

/// The one place a row becomes a request. Needs a timestamp and a response
/// code; a missing ApiId/OperationId stays "" (unknown API/operation), a
/// missing TotalTime is 0, a missing BackendTime is `None`. A present value of
/// the wrong type rejects the row: a broken column is not silently zero.
pub(super) fn to_request<'a>(f: &Fields<'a>) -> Result<Request<'a>, String> {
    let tf = f.either(Field::TimeGenerated, Field::Time);
    let time = match f.get(tf) {
        Some(v) => timestamp(tf, v)?,
        None => return Err(no_time(f)),
    };
    let response_code = match f.get(Field::ResponseCode) {
        Some(v) => status_code(Field::ResponseCode, v)?,
        None => return Err("ResponseCode missing".into()),
    };
    let backend_response_code = match f.get(Field::BackendResponseCode) {
        Some(v) => status_code(Field::BackendResponseCode, v)?,
        None => 0,
    };
    let tt = f.either(Field::TotalTime, Field::DurationMs);
    let total_time_ms = match f.get(tt) {
        Some(v) => millis(tt, v)?,
        None => 0,
    };
    let bt = f.either(Field::BackendTime, Field::ServiceTime);
    let backend_time_ms = match f.get(bt) {
        Some(v) => Some(millis(bt, v)?),
        None => None,
    };
    Ok(Request {
        time,
        api_id: f.text(Field::ApiId),
        operation_id: f.text(Field::OperationId),
        backend_id: f.text(Field::BackendId),
        backend_url: f.text(Field::BackendUrl),
        method: f.text(Field::Method),
        url: f.text(Field::Url),
        response_code,
        backend_response_code,
        total_time_ms,
        backend_time_ms,
        last_error_reason: f.text(Field::LastErrorReason),
        last_error_source: f.text(Field::LastErrorSource),
        last_error_section: f.text(Field::LastErrorSection),
        last_error_scope: f.text(Field::LastErrorScope),
        last_error_message: f.text(Field::LastErrorMessage),
        region: f.text2(Field::Region, Field::Location),
        correlation_id: f.text(Field::CorrelationId),
    })
}

/// Collects the used fields of a parsed JSON object, descending into
/// `properties` / `AdditionalFields` objects and `lastError`.
pub(super) fn collect_map<'a>(map: &'a Map<String, Value>, ctx: Context, out: &mut Fields<'a>) {
    for (k, v) in map {
        match classify(k.as_bytes(), ctx) {
            Some(Field::Properties) => {
                if let Value::Object(m) = v {
                    collect_map(m, Context::Row, out);
                }
            }
            Some(Field::LastError) => {
                if let Value::Object(m) = v {
                    collect_map(m, Context::LastError, out);
                }
            }
            Some(f) => out.set(f, Raw::of_value(v)),
            None => {}
        }
    }
}

/// A JSON object's row fields. A `properties` written as a JSON string
/// (2017-era storage records) is decoded into `scratch` first.
pub(super) fn fields_of_object<'a>(
    map: &'a Map<String, Value>,
    scratch: &'a mut Option<Value>,
) -> Result<Fields<'a>, String> {
    let text = map.iter().find_map(|(k, v)| match v {
        Value::String(s) if classify_row(k.as_bytes()) == Some(Field::Properties) => Some((k, s)),
        _ => None,
    });
    if let Some((k, s)) = text {
        let s = s.trim();
        if s.starts_with('{') {
            let inner: Value = serde_json::from_str(s)
                .map_err(|e| format!("{k} is a string but not valid JSON: {e}"))?;
            *scratch = Some(inner);
        }
    }
    let scratch: &'a Option<Value> = scratch;
    let mut fields = Fields::default();
    collect_map(map, Context::Row, &mut fields);
    if let Some(Value::Object(inner)) = scratch {
        collect_map(inner, Context::Row, &mut fields);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_shape_of_key() {
        assert_eq!(classify_row(b"TimeGenerated"), Some(Field::TimeGenerated));
        assert_eq!(classify_row(b"responseCode_d"), Some(Field::ResponseCode));
        assert_eq!(
            classify_row(b"lastError_reason_s"),
            Some(Field::LastErrorReason)
        );
        assert_eq!(classify_row(b"correlationId_g"), Some(Field::CorrelationId));
        assert_eq!(classify_row(b"requestUrl_s"), Some(Field::Url));
        assert_eq!(classify_row(b"BACKENDURL"), Some(Field::BackendUrl));
        assert_eq!(classify_row(b"IsRequestSuccess"), None);
        assert_eq!(classify_row(b"TIMEGENERATEd"), Some(Field::TimeGenerated));
        assert_eq!(classify_row(b"TimeGeneratex"), None);
        assert_eq!(classify_row(b"BackendResponseCodf"), None);
        assert_eq!(
            classify_row(b"backendRESPONSEcode"),
            Some(Field::BackendResponseCode)
        );
        assert_eq!(classify_row(b"lastError-reason"), None);
        assert_eq!(classify_row(b"ApiI\xc4"), None);
        assert_eq!(classify_row(b"_s"), None);
        assert_eq!(classify_row(b""), None);
        assert_eq!(
            classify(b"Reason", Context::LastError),
            Some(Field::LastErrorReason)
        );
        assert_eq!(classify(b"reason", Context::Row), None);
    }

    fn fields<'a>(pairs: &[(Field, Raw<'a>)]) -> Fields<'a> {
        let mut f = Fields::default();
        for &(k, v) in pairs {
            f.set(k, v);
        }
        f
    }

    #[test]
    fn coerces_stringified_values() {
        let f = fields(&[
            (Field::TimeGenerated, Raw::Str("2024-05-14T09:12:03.512Z")),
            (Field::ResponseCode, Raw::Str("503")),
            (Field::BackendResponseCode, Raw::Str("None")),
            (Field::TotalTime, Raw::Str("2140.0")),
            (Field::BackendTime, Raw::Float(12.4)),
            (Field::LastErrorReason, Raw::Str("None")),
            (Field::Location, Raw::Str("West Europe")),
        ]);
        let r = to_request(&f).unwrap();
        assert_eq!(r.response_code, 503);
        assert_eq!(r.backend_response_code, 0);
        assert_eq!(r.total_time_ms, 2140);
        assert_eq!(r.backend_time_ms, Some(12));
        assert_eq!(r.last_error_reason, "");
        assert_eq!(r.region, "West Europe");
        assert_eq!(r.api_id, "");
    }

    #[test]
    fn rejects_with_clear_messages() {
        let t = (Field::TimeGenerated, Raw::Str("2024-05-14T09:12:03Z"));
        let cases: Vec<(Fields, &str)> = vec![
            (
                fields(&[(Field::ResponseCode, Raw::Num("200"))]),
                "TimeGenerated missing",
            ),
            (fields(&[t]), "ResponseCode missing"),
            (
                fields(&[t, (Field::ResponseCode, Raw::Str("abc"))]),
                "ResponseCode is not a number: \"abc\"",
            ),
            (
                fields(&[t, (Field::ResponseCode, Raw::Num("2000"))]),
                "ResponseCode is not an HTTP status code: 2000",
            ),
            (
                fields(&[
                    t,
                    (Field::ResponseCode, Raw::Num("200")),
                    (Field::TotalTime, Raw::Num("-5")),
                ]),
                "TotalTime is not a duration in milliseconds: -5",
            ),
            (
                fields(&[
                    (Field::Time, Raw::Str("2020-10-14T17:xx:xx.xx")),
                    (Field::ResponseCode, Raw::Num("200")),
                ]),
                "time is not a timestamp: \"2020-10-14T17:xx:xx.xx\"",
            ),
            (
                fields(&[
                    (Field::TimeGenerated, Raw::Num("17")),
                    (Field::ResponseCode, Raw::Num("200")),
                ]),
                "TimeGenerated is not a timestamp: 17",
            ),
        ];
        for (f, want) in cases {
            let err = to_request(&f).unwrap_err();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }

    #[test]
    fn decodes_properties_given_as_a_string() {
        let v: Value = serde_json::from_str(
            r#"{"time":"2017-06-01T10:00:00Z","properties":"{\"ApiId\":\"echo\",\"ResponseCode\":500,\"ServiceTime\":12}"}"#,
        )
        .unwrap();
        let mut scratch = None;
        let f = fields_of_object(v.as_object().unwrap(), &mut scratch).unwrap();
        let r = to_request(&f).unwrap();
        assert_eq!(
            (r.api_id, r.response_code, r.backend_time_ms),
            ("echo", 500, Some(12))
        );
    }

    #[test]
    fn fast_timestamps_match_the_general_parser() {
        for s in [
            "2024-05-14T09:12:03.512Z",
            "2018-01-29T20:42:31.3810679Z",
            "2024-02-29T23:59:60Z",
            "1969-12-31T23:59:59.9Z",
            "0001-01-01T00:00:00Z",
            "2024-05-14T09:12:03.Z",
            "2024-05-14T09:12:03",
            "2024-13-14T09:12:03Z",
            "2024-05-14T24:12:03Z",
            "2024-05-14T09:12:03Zx",
            "2024-05-14 09:12:03Z",
            "2024-05-14T09:12:03+01:00",
            "2024-05-1",
            // After a row of the same minute (its first 16 bytes remembered):
            // the rest is still checked.
            "2024-05-14T09:12:61Z",
            "2024-05-14T09:12:3aZ",
            "2024-05-14T09:12;03Z",
            "2024-05-14T09:12:59.999999Z",
            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0:00Z",
            "2024-02-30T09:12:03Z",
            "2024-02-30T09:12:04Z",
        ]
        .iter()
        .cycle()
        .take(50)
        {
            let fast = utc_timestamp(s);
            if fast.is_some() {
                assert_eq!(fast, parse_timestamp(s), "{s}");
            }
            assert_eq!(
                timestamp(Field::TimeGenerated, Raw::Str(s)).ok(),
                parse_timestamp(s).filter(|t| check_plausible(*t).is_ok()),
                "{s}"
            );
        }
        assert!(utc_timestamp("2024-05-14T09:12:03.512Z").is_some());
    }

    #[test]
    fn reads_portal_export_timestamps() {
        let at = |s: &str| portal_timestamp(s).map(Timestamp::to_rfc3339);
        assert_eq!(
            at("5/14/2024, 9:12:03.512 AM").as_deref(),
            Some("2024-05-14T09:12:03.512Z")
        );
        assert_eq!(
            at("5/14/2024, 12:00:00.000 AM").as_deref(),
            Some("2024-05-14T00:00:00Z")
        );
        assert_eq!(
            at("12/31/2024 11:59:59 PM").as_deref(),
            Some("2024-12-31T23:59:59Z")
        );
        assert_eq!(
            at("5/14/2024 17:01:02").as_deref(),
            Some("2024-05-14T17:01:02Z")
        );
        for bad in [
            "14/5/2024, 9:12:03 AM",
            "5/14/2024, 13:00:00 PM",
            "5/14/24, 9:12:03 AM",
            "5/14/2024",
            "x",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn shortens_long_values() {
        let s = "é".repeat(100);
        let out = shorten(&s);
        assert!(out.ends_with("(200 bytes)"), "{out}");
    }
}
