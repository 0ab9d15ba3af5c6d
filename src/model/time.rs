//! Time as the data carries it: UTC instants in milliseconds, per-minute
//! buckets, windows, and a fast, allocation-free ISO 8601 parser (the hot path
//! of log reading goes through `parse_timestamp`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant, milliseconds since the Unix epoch. Serialised as RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Minutes since the Unix epoch: the bucket every per-minute aggregate uses.
pub type Minute = i64;

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }
    pub const fn from_minute(m: Minute) -> Self {
        Timestamp(m * 60_000)
    }
    pub const fn millis(self) -> i64 {
        self.0
    }
    /// The minute bucket holding this instant.
    pub const fn minute(self) -> Minute {
        self.0.div_euclid(60_000)
    }
    pub const fn plus_minutes(self, m: i64) -> Self {
        Timestamp(self.0 + m * 60_000)
    }
    /// RFC 3339 with second precision, or milliseconds when they are not zero.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
        if ms == 0 {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
        }
    }
    /// RFC 3339 to the minute (`2026-12-06T12:20Z`).
    pub fn to_rfc3339_minute(self) -> String {
        let full = Timestamp::from_minute(self.minute()).to_rfc3339();
        format!("{}Z", &full[..full.len() - 4])
    }
    /// `HH:MM` in UTC, for compact tables and charts.
    pub fn hhmm(self) -> String {
        let sod = self.0.div_euclid(1000).rem_euclid(86_400);
        format!("{:02}:{:02}", sod / 3600, (sod % 3600) / 60)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// A string, as `Serialize` writes it (no `format`: clients differ on
/// which formats they know).
impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "UTC instant, RFC 3339 (`2026-12-06T12:20:00Z`, milliseconds when not zero)"
        })
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_timestamp(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {s:?}")))
    }
}

/// A closed-open span of time `[start, end)`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    pub fn minutes(start: Minute, end_exclusive: Minute) -> Self {
        Window {
            start: Timestamp::from_minute(start),
            end: Timestamp::from_minute(end_exclusive),
        }
    }
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
    pub fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }
    pub fn duration_minutes(&self) -> i64 {
        (self.end.0 - self.start.0) / 60_000
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
pub const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub const fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Parses the timestamps Azure and nginx write: `YYYY-MM-DDTHH:MM:SS` (or a
/// space for `T`), 0–9 fractional digits, then `Z`, `+HH:MM`, `-HH:MM`,
/// `+HHMM` or nothing (read as UTC). Returns `None` for anything else; never
/// panics. Allocation-free: the log reader calls it once per row.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let b = s.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b'T' && b[10] != b' ' && b[10] != b't' {
        return None;
    }
    let (y, mo, d) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    let (h, mi, sec) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut ms = 0i64;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                ms = ms * 10 + i64::from(b[i] - b'0');
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
    let mut offset_min = 0i64;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' if i + 1 == b.len() => {}
            b'+' | b'-' => {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                let rest = &b[i + 1..];
                let (oh, om) = match rest.len() {
                    5 if rest[2] == b':' => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                    4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                    2 => (digits(rest, 0, 2)?, 0),
                    _ => return None,
                };
                offset_min = sign * (oh * 60 + om);
            }
            _ => return None,
        }
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(Timestamp(secs * 1000 + ms))
}

/// The earliest instant a record may carry: 2000-01-01T00:00:00Z. Earlier
/// times in gateway data are placeholders, not events: .NET's null date
/// `0001-01-01`, the Unix epoch `1970-01-01`, a zero read as seconds.
pub const EARLIEST_PLAUSIBLE: Timestamp = Timestamp(946_684_800_000);

/// How far past this machine's clock a record may be dated (clock skew,
/// local time written as UTC): one day. Later is `9999-12-31`-style
/// placeholders or a broken clock.
pub const FUTURE_TOLERANCE_MS: i64 = 86_400_000;

/// The latest plausible instant last read from the clock. It only grows, and
/// is re-read only for a record past it, so the check costs one load and
/// one compare per record yet never lags the clock by more than that.
static LATEST_PLAUSIBLE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn latest_plausible(t: Timestamp) -> Timestamp {
    use std::sync::atomic::Ordering;
    let cached = LATEST_PLAUSIBLE.load(Ordering::Relaxed);
    if t.0 <= cached {
        return Timestamp(cached);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let latest = now.saturating_add(FUTURE_TOLERANCE_MS);
    LATEST_PLAUSIBLE.fetch_max(latest, Ordering::Relaxed);
    Timestamp(latest)
}

/// Whether an instant is a plausible time for a record read now: from
/// [`EARLIEST_PLAUSIBLE`] to one day ([`FUTURE_TOLERANCE_MS`]) past this
/// machine's clock. `Err` says why not, naming the value. Readers reject a
/// record that fails, with its file and line; analysis never sees it.
#[inline]
pub fn check_plausible(t: Timestamp) -> Result<Timestamp, String> {
    // Every record passes through here: the common case is two compares
    // (the clock is read only past the cached bound), the wording apart.
    let cached = LATEST_PLAUSIBLE.load(std::sync::atomic::Ordering::Relaxed);
    if EARLIEST_PLAUSIBLE <= t && t.0 <= cached {
        return Ok(t);
    }
    plausible_slow(t)
}

#[cold]
fn plausible_slow(t: Timestamp) -> Result<Timestamp, String> {
    if t < EARLIEST_PLAUSIBLE {
        return Err(format!(
            "{t} is implausible: before 2000-01-01 (a placeholder such as .NET's null date 0001-01-01 or the Unix epoch, not a request time)"
        ));
    }
    let latest = latest_plausible(t);
    if t > latest {
        return Err(format!(
            "{t} is implausible: more than a day after this machine's clock ({}); a placeholder such as 9999-12-31 or a wrong clock",
            Timestamp(latest.0 - FUTURE_TOLERANCE_MS).to_rfc3339_minute()
        ));
    }
    Ok(t)
}

/// Parses an ISO 8601 duration as Azure writes them (`PT1M`, `PT30M`,
/// `P1D`, `PT0.5S`, `P3Y6M4DT12H30M5S` with years as 365 days and months as
/// 30) into seconds.
pub fn parse_iso_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let rest = s.strip_prefix('P').or_else(|| s.strip_prefix('p'))?;
    let mut total = 0.0;
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in rest.chars() {
        match c {
            'T' | 't' => in_time = true,
            '0'..='9' | '.' => num.push(c),
            _ => {
                let v: f64 = num.parse().ok()?;
                num.clear();
                any = true;
                total += v * match (c.to_ascii_uppercase(), in_time) {
                    ('Y', false) => 365.0 * 86_400.0,
                    ('M', false) => 30.0 * 86_400.0,
                    ('W', false) => 7.0 * 86_400.0,
                    ('D', false) => 86_400.0,
                    ('H', true) => 3600.0,
                    ('M', true) => 60.0,
                    ('S', true) => 1.0,
                    _ => return None,
                };
            }
        }
    }
    (any && num.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_azure_forms() {
        let t = parse_timestamp("2024-05-14T09:12:03.512Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-05-14T09:12:03.512Z");
        let t7 = parse_timestamp("2018-01-29T20:42:31.3810679Z").unwrap();
        assert_eq!(t7.to_rfc3339(), "2018-01-29T20:42:31.381Z");
        let off = parse_timestamp("2026-11-26T09:03:37+01:00").unwrap();
        assert_eq!(off.to_rfc3339(), "2026-11-26T08:03:37Z");
        let plain = parse_timestamp("2014-10-30 15:30:00.000000").unwrap();
        assert_eq!(plain.to_rfc3339(), "2014-10-30T15:30:00Z");
        assert_eq!(
            parse_timestamp("2024-05-14T09:12:03").unwrap().minute() * 60_000,
            1_715_677_920_000
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            "2024",
            "2024-13-01T00:00:00Z",
            "2024-05-14T09:12:03.Z",
            "2024-05-14T09:12:03Zjunk",
            "17:xx:xx.xx",
            "２０２４-05-14T09:12:03Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 19_000, 20_000, 800_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn implausible_times_are_named() {
        for (text, why) in [
            ("9999-12-31T23:59:59Z", "after this machine's clock"),
            ("0001-01-01T00:00:00Z", "before 2000-01-01"),
            ("1970-01-01T00:00:00Z", "before 2000-01-01"),
            ("1999-12-31T23:59:59Z", "before 2000-01-01"),
        ] {
            let t = parse_timestamp(text).unwrap();
            let err = check_plausible(t).unwrap_err();
            assert!(err.starts_with(text), "{err}");
            assert!(err.contains(why), "{err}");
        }
        for ok in ["2000-01-01T00:00:00Z", "2024-05-14T09:12:03Z"] {
            let t = parse_timestamp(ok).unwrap();
            assert_eq!(check_plausible(t), Ok(t));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let soon = Timestamp(now + FUTURE_TOLERANCE_MS / 2);
        assert_eq!(
            check_plausible(soon),
            Ok(soon),
            "within the day of tolerance"
        );
        assert!(check_plausible(Timestamp(now + 2 * FUTURE_TOLERANCE_MS)).is_err());
        assert!(check_plausible(Timestamp(i64::MAX)).is_err());
        assert!(check_plausible(Timestamp(i64::MIN)).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_iso_duration("PT1M"), Some(60.0));
        assert_eq!(parse_iso_duration("PT30M"), Some(1800.0));
        assert_eq!(parse_iso_duration("P1D"), Some(86_400.0));
        assert_eq!(parse_iso_duration("PT0.5S"), Some(0.5));
        assert_eq!(parse_iso_duration("nope"), None);
        assert_eq!(parse_iso_duration("P"), None);
    }
}
