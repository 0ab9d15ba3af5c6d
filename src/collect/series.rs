//! A metric series as CSV (`timestamp,value`), the input of `apimedic
//! detect`: pure parsing that keeps every good row and reports each bad one
//! as `file:line: …` (a bad value is kept as NaN and scored 0, so output rows
//! stay one per input row).

use crate::model::{Timestamp, parse_timestamp};

/// One series as read: each row's timestamp text, time and value.
#[derive(Debug, Default, PartialEq)]
pub struct Series {
    pub rows: Vec<Row>,
    /// Messages about rows that were skipped or scored 0, `file:line: …`.
    pub problems: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub struct Row {
    pub stamp: String,
    pub time: Timestamp,
    pub value: f64,
}

/// Reads a `timestamp,value` CSV (header optional; further columns are
/// ignored). Timestamps: ISO 8601 / `YYYY-MM-DD HH:MM:SS`, or epoch seconds.
pub fn parse_series(text: &str, file: &str) -> Series {
    let mut series = Series::default();
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let header = std::mem::replace(&mut first, false);
        let mut cols = split_csv(line).into_iter();
        let stamp = cols.next().unwrap_or_default();
        let value_text = cols.next();
        let Some(time) = parse_time(&stamp) else {
            if header {
                continue;
            }
            series.problems.push(format!(
                "{file}:{line_no}: cannot read the timestamp {stamp:?} (expected e.g. 2014-04-10 00:04:00 or epoch seconds); row skipped"
            ));
            continue;
        };
        let value = match value_text.as_deref().map(str::trim) {
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => x,
                _ => {
                    series.problems.push(format!(
                        "{file}:{line_no}: the value {v:?} is not a finite number; row scored 0"
                    ));
                    f64::NAN
                }
            },
            None => {
                series.problems.push(format!(
                    "{file}:{line_no}: no value column (expected timestamp,value); row scored 0"
                ));
                f64::NAN
            }
        };
        series.rows.push(Row { stamp, time, value });
    }
    if series.rows.is_empty() {
        series
            .problems
            .push(format!("{file}: no timestamp,value rows to score"));
    }
    series
}

fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Some(t) = parse_timestamp(s) {
        return Some(t);
    }
    let secs: f64 = s.parse().ok()?;
    (secs.is_finite() && secs.abs() < 1e13)
        .then(|| Timestamp::from_millis((secs * 1000.0).round() as i64))
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "timestamp,value\n\
        2014-04-10 00:04:00,91.958\n\
        2014-04-10 00:09:00,\n\
        not a time,3\n\
        \n\
        2014-04-10 00:19:00,abc\n\
        1397088900,94.5\n\
        2014-04-10T00:29:00Z,95\r\n";

    #[test]
    fn reads_rows_and_reports_bad_ones_with_file_and_line() {
        let s = parse_series(CSV, "cpu.csv");
        let stamps: Vec<&str> = s.rows.iter().map(|r| r.stamp.as_str()).collect();
        assert_eq!(
            stamps,
            [
                "2014-04-10 00:04:00",
                "2014-04-10 00:09:00",
                "2014-04-10 00:19:00",
                "1397088900",
                "2014-04-10T00:29:00Z"
            ]
        );
        assert_eq!(s.rows[0].value, 91.958);
        assert!(s.rows[1].value.is_nan() && s.rows[2].value.is_nan());
        assert_eq!(s.rows[3].time, Timestamp::from_millis(1_397_088_900_000));
        assert_eq!(s.problems.len(), 3, "{:?}", s.problems);
        assert!(
            s.problems[0].starts_with("cpu.csv:3: the value \"\""),
            "{:?}",
            s.problems
        );
        assert!(s.problems[1].starts_with("cpu.csv:4: cannot read the timestamp \"not a time\""));
        assert!(s.problems[2].starts_with("cpu.csv:6: the value \"abc\""));
    }

    #[test]
    fn header_is_optional_and_quotes_are_honoured() {
        let s = parse_series(
            "\"2014-04-10 00:04:00\",\"1.5\"\n2014-04-10 00:09:00,2",
            "x.csv",
        );
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].value, 1.5);
        assert!(s.problems.is_empty());
        let bad = parse_series("timestamp,value\ngarbage,1\n", "x.csv");
        assert!(bad.rows.is_empty());
        assert_eq!(
            bad.problems,
            [
                "x.csv:2: cannot read the timestamp \"garbage\" (expected e.g. 2014-04-10 00:04:00 or epoch seconds); row skipped",
                "x.csv: no timestamp,value rows to score",
            ]
        );
    }
}
