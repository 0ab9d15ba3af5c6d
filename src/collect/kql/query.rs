//! KQL text built from typed parts. Nothing a user typed or a log row held is
//! pasted into a query: every value is a declared parameter. For Azure Data
//! Explorer they travel beside the query (`declare query_parameters` +
//! `properties.Parameters`); the Log Analytics query API takes no
//! parameters, so there they are bound by `let` statements at the top of the
//! query from literals this module writes itself (datetimes it formats,
//! strings escaped character by character). The body of every query is the
//! same for both engines; only that header differs, and `--explain` shows
//! both.
//!
//! The queries (each over a half-open window `[start, end)`, filtered to one
//! instance when a resource id is known):
//! - `series`: how many (API, operation, backend) series and rows the window
//!   holds, to size the chunks under the service's result limits;
//! - `cells`: per minute and series, the counters of `model::MinuteStats`
//!   and the TotalTime histogram (`model::histogram` buckets, computed by
//!   the engine with the same formula);
//! - `backend_latency`: the BackendTime histogram per minute and series;
//! - `reasons`: counts per `LastErrorReason` per minute and series;
//! - `hosts`: the BackendUrl hosts of each series;
//! - `samples`: after detection, a few raw failing rows of one finding's
//!   subject and window, for evidence.

use crate::model::Timestamp;
use crate::model::histogram::INV_LN_GAMMA;
use std::fmt::Write;

/// Which table holds the gateway logs, and so which column names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Table {
    /// The resource-specific `ApiManagementGatewayLogs` table (or a table of
    /// the same columns under another name, as ADX exports keep it).
    GatewayLogs(Ident),
    /// The legacy `AzureDiagnostics` table (`Category == "GatewayLogs"`).
    AzureDiagnostics,
}

impl Table {
    pub fn gateway_logs() -> Table {
        Table::GatewayLogs(Ident("ApiManagementGatewayLogs".into()))
    }

    pub fn name(&self) -> &str {
        match self {
            Table::GatewayLogs(t) => &t.0,
            Table::AzureDiagnostics => "AzureDiagnostics",
        }
    }
}

/// A KQL identifier (table or database name): letters, digits, `_`, not
/// starting with a digit, at most 256 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    pub fn parse(s: &str) -> Result<Ident, String> {
        let ok = !s.is_empty()
            && s.len() <= 256
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit());
        if ok {
            Ok(Ident(s.to_string()))
        } else {
            Err(format!(
                "`{s}` is not a table or database name (letters, digits and _ only, not starting with a digit)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How parameter values reach the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// `let name = literal;` lines at the top (Log Analytics).
    Let,
    /// `declare query_parameters(...)` and values beside the query (ADX).
    Declared,
}

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    DateTime(Timestamp),
    Str(String),
}

impl Value {
    fn kql_type(&self) -> &'static str {
        match self {
            Value::DateTime(_) => "datetime",
            Value::Str(_) => "string",
        }
    }

    /// The value as a KQL literal.
    pub fn literal(&self) -> String {
        match self {
            Value::DateTime(t) => format!("datetime({})", t.to_rfc3339()),
            Value::Str(s) => string_literal(s),
        }
    }

    /// The value as ADX's `properties.Parameters` wants it: strings as
    /// themselves, other types as their literal.
    pub fn parameter(&self) -> String {
        match self {
            Value::DateTime(_) => self.literal(),
            Value::Str(s) => s.clone(),
        }
    }
}

/// A double-quoted KQL string literal: `\` and `"` escaped, control
/// characters as `\n`, `\t`, `\r` or `\uXXXX`, so no input can end the
/// literal early.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One query ready to send: its purpose, its text and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// What it asks, for messages and `--explain` (`cells`, `samples`…).
    pub name: &'static str,
    /// The full text as sent (with the `let` or `declare` header).
    pub text: String,
    /// Values sent beside the text (ADX only; empty for Log Analytics).
    pub parameters: Vec<(String, Value)>,
    /// The window it covers.
    pub start: Timestamp,
    pub end: Timestamp,
}

/// What every query is scoped to.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    pub table: Table,
    /// The APIM service's ARM id, when the table may hold several services.
    pub resource: Option<String>,
    pub binding: Binding,
}

/// The unit Log Analytics answers with `bin(TimeGenerated, 1m)`.
const MINUTE: &str = "1m";

/// The host (and port) of BackendUrl, as `model::url_host` cuts it.
const HOST: &str = r#"extract("^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)", 1, BackendUrl)"#;

impl Scope {
    /// The header binding `params` and the source rows: the table, the
    /// window, the instance, columns renamed to the resource-specific names.
    fn source(&self, params: &[(&str, Value)]) -> (String, Vec<(String, Value)>) {
        let mut text = String::new();
        match self.binding {
            Binding::Let => {
                for (name, v) in params {
                    let _ = writeln!(text, "let {name} = {};", v.literal());
                }
            }
            Binding::Declared => {
                let decl: Vec<String> = params
                    .iter()
                    .map(|(n, v)| format!("{n}:{}", v.kql_type()))
                    .collect();
                let _ = writeln!(text, "declare query_parameters({});", decl.join(", "));
            }
        }
        match &self.table {
            Table::GatewayLogs(t) => {
                let _ = writeln!(text, "{}", t.0);
                text.push_str("| where TimeGenerated >= start and TimeGenerated < end\n");
                if self.resource.is_some() {
                    text.push_str("| where _ResourceId =~ rid\n");
                }
            }
            Table::AzureDiagnostics => {
                text.push_str("AzureDiagnostics\n");
                text.push_str("| where TimeGenerated >= start and TimeGenerated < end\n");
                text.push_str(
                    "| where ResourceProvider == \"MICROSOFT.APIMANAGEMENT\" and Category == \"GatewayLogs\"\n",
                );
                if self.resource.is_some() {
                    text.push_str("| where ResourceId =~ rid\n");
                }
                text.push_str(
                    "| extend ApiId = apiId_s, OperationId = operationId_s, BackendId = \"\", \
                     BackendUrl = backendUrl_s, Method = method_s, Url = url_s, \
                     ResponseCode = toint(responseCode_d), BackendResponseCode = toint(backendResponseCode_d), \
                     TotalTime = toint(DurationMs), BackendTime = toint(backendTime_d), \
                     LastErrorReason = lastError_reason_s, LastErrorSource = lastError_source_s, \
                     LastErrorSection = lastError_section_s, LastErrorScope = lastError_scope_s, \
                     LastErrorMessage = lastError_message_s, Region = Region_s, CorrelationId = CorrelationId\n",
                );
            }
        }
        let values = match self.binding {
            Binding::Let => Vec::new(),
            Binding::Declared => params
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        };
        (text, values)
    }

    fn window_params(&self, start: Timestamp, end: Timestamp) -> Vec<(&'static str, Value)> {
        let mut p = vec![
            ("start", Value::DateTime(start)),
            ("end", Value::DateTime(end)),
        ];
        if let Some(rid) = &self.resource {
            p.push(("rid", Value::Str(rid.clone())));
        }
        p
    }

    fn build(
        &self,
        name: &'static str,
        start: Timestamp,
        end: Timestamp,
        extra: Vec<(&'static str, Value)>,
        body: &str,
    ) -> Query {
        let mut params = self.window_params(start, end);
        params.extend(extra);
        let (mut text, parameters) = self.source(&params);
        text.push_str(body);
        Query {
            name,
            text,
            parameters,
            start,
            end,
        }
    }

    /// Series and rows in the window (one row: `series`, `rows`).
    pub fn series(&self, start: Timestamp, end: Timestamp) -> Query {
        let body = format!(
            "| extend Backend = iff(isnotempty(BackendId), BackendId, {HOST})\n\
             | summarize n = count() by ApiId, OperationId, Backend\n\
             | summarize series = count(), rows = sum(n)\n"
        );
        self.build("series", start, end, Vec::new(), &body)
    }

    /// Counters and the TotalTime histogram per minute and series.
    pub fn cells(&self, start: Timestamp, end: Timestamp) -> Query {
        let body = format!(
            "| extend Backend = iff(isnotempty(BackendId), BackendId, {HOST})\n\
             | extend Bucket = {}\n\
             | summarize n = count(),\n\
             \x20   s2xx = countif(ResponseCode between (200 .. 299)),\n\
             \x20   s3xx = countif(ResponseCode between (300 .. 399)),\n\
             \x20   s4xx = countif(ResponseCode between (400 .. 499)),\n\
             \x20   s429 = countif(ResponseCode == 429),\n\
             \x20   s5xx = countif(ResponseCode between (500 .. 599)),\n\
             \x20   backend5xx = countif(ResponseCode between (500 .. 599) and BackendResponseCode == ResponseCode),\n\
             \x20   timeouts = countif(LastErrorReason =~ \"Timeout\" or (ResponseCode == 504 and (isnull(BackendResponseCode) or BackendResponseCode == 0))),\n\
             \x20   connFailures = countif(LastErrorReason =~ \"BackendConnectionFailure\")\n\
             \x20   by Minute = bin(TimeGenerated, {MINUTE}), ApiId, OperationId, Backend, Bucket\n\
             | summarize requests = sum(n), s2xx = sum(s2xx), s3xx = sum(s3xx), s4xx = sum(s4xx),\n\
             \x20   s429 = sum(s429), s5xx = sum(s5xx), backend5xx = sum(backend5xx),\n\
             \x20   timeouts = sum(timeouts), connFailures = sum(connFailures),\n\
             \x20   latency = make_list(strcat(Bucket, \":\", n))\n\
             \x20   by Minute, ApiId, OperationId, Backend\n",
            bucket_expr("TotalTime")
        );
        self.build("cells", start, end, Vec::new(), &body)
    }

    /// The BackendTime histogram per minute and series.
    pub fn backend_latency(&self, start: Timestamp, end: Timestamp) -> Query {
        let body = format!(
            "| where isnotnull(BackendTime)\n\
             | extend Backend = iff(isnotempty(BackendId), BackendId, {HOST})\n\
             | extend Bucket = {}\n\
             | summarize n = count() by Minute = bin(TimeGenerated, {MINUTE}), ApiId, OperationId, Backend, Bucket\n\
             | summarize latency = make_list(strcat(Bucket, \":\", n)) by Minute, ApiId, OperationId, Backend\n",
            bucket_expr("BackendTime")
        );
        self.build("backend_latency", start, end, Vec::new(), &body)
    }

    /// Counts per `LastErrorReason` per minute and series.
    pub fn reasons(&self, start: Timestamp, end: Timestamp) -> Query {
        let body = format!(
            "| where isnotempty(LastErrorReason)\n\
             | extend Backend = iff(isnotempty(BackendId), BackendId, {HOST})\n\
             | summarize n = count() by Minute = bin(TimeGenerated, {MINUTE}), ApiId, OperationId, Backend, LastErrorReason\n"
        );
        self.build("reasons", start, end, Vec::new(), &body)
    }

    /// BackendUrl hosts per series, busiest first.
    pub fn hosts(&self, start: Timestamp, end: Timestamp) -> Query {
        let body = format!(
            "| where isnotempty(BackendUrl)\n\
             | extend Backend = iff(isnotempty(BackendId), BackendId, {HOST}), Host = {HOST}\n\
             | summarize n = count() by ApiId, OperationId, Backend, Host\n\
             | order by ApiId asc, OperationId asc, Backend asc, n desc\n"
        );
        self.build("hosts", start, end, Vec::new(), &body)
    }

    /// At most `limit` failing rows of one subject in `[start, end)`, in time
    /// order: those a finding shows as evidence.
    pub fn samples(&self, subject: &SampleSubject, start: Timestamp, end: Timestamp) -> Query {
        let mut extra = Vec::new();
        let mut body = String::new();
        let _ = writeln!(
            body,
            "| extend Backend = iff(isnotempty(BackendId), BackendId, {HOST})"
        );
        if let Some(api) = &subject.api {
            extra.push(("api", Value::Str(api.clone())));
            body.push_str("| where ApiId == api\n");
        }
        if let Some(op) = &subject.operation {
            extra.push(("op", Value::Str(op.clone())));
            body.push_str("| where OperationId == op\n");
        }
        if let Some(b) = &subject.backend {
            extra.push(("backend", Value::Str(b.clone())));
            body.push_str("| where Backend =~ backend\n");
        }
        body.push_str(
            "| where ResponseCode >= 500 or ResponseCode == 429 or isnotempty(LastErrorReason)\n",
        );
        let _ = write!(
            body,
            "| order by TimeGenerated asc\n\
             | take {}\n\
             | project TimeGenerated, ApiId, OperationId, BackendId, BackendUrl, Method, Url, \
             ResponseCode, BackendResponseCode, TotalTime, BackendTime, LastErrorReason, \
             LastErrorSource, LastErrorSection, LastErrorScope, LastErrorMessage, Region, CorrelationId\n",
            subject.limit.clamp(1, 100)
        );
        self.build("samples", start, end, extra, &body)
    }
}

/// Whose raw rows to fetch, and how many.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleSubject {
    pub api: Option<String>,
    pub operation: Option<String>,
    pub backend: Option<String>,
    pub limit: usize,
}

/// The `model::histogram` bucket of a latency column, in KQL: 0 for 0 ms (or
/// none), else `1 + floor(ln(x) · INV_LN_GAMMA)` (`bin(v, 1)` is KQL's floor).
fn bucket_expr(column: &str) -> String {
    format!(
        "iff(isnull({column}) or {column} <= 0, 0, 1 + toint(bin(log(todouble({column})) * {INV_LN_GAMMA:?}, 1)))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(binding: Binding) -> Scope {
        Scope {
            table: Table::gateway_logs(),
            resource: Some(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/x"
                    .into(),
            ),
            binding,
        }
    }

    #[test]
    fn log_analytics_binds_values_with_let() {
        let q = scope(Binding::Let).cells(Timestamp::from_minute(10), Timestamp::from_minute(70));
        assert!(q.text.starts_with("let start = datetime(1970-01-01T00:10:00Z);\nlet end = datetime(1970-01-01T01:10:00Z);\nlet rid = \"/subscriptions/"), "{}", q.text);
        assert!(q.parameters.is_empty());
        assert!(q.text.contains("| where _ResourceId =~ rid\n"));
        assert!(q.text.contains(&format!("* {INV_LN_GAMMA:?}")));
    }

    #[test]
    fn adx_declares_parameters_and_sends_them_beside() {
        let q =
            scope(Binding::Declared).reasons(Timestamp::from_minute(0), Timestamp::from_minute(1));
        assert!(q.text.starts_with("declare query_parameters(start:datetime, end:datetime, rid:string);\nApiManagementGatewayLogs\n"));
        assert_eq!(q.parameters.len(), 3);
        assert_eq!(
            q.parameters[0].1.parameter(),
            "datetime(1970-01-01T00:00:00Z)"
        );
        assert!(q.parameters[2].1.parameter().starts_with("/subscriptions/"));
    }

    #[test]
    fn hostile_names_stay_inside_their_literal() {
        let nasty = "x\" | take 1; .drop table T //\n\\\"";
        let lit = string_literal(nasty);
        // Unescaped quotes: only the two that delimit the literal.
        let bytes = lit.as_bytes();
        let mut unescaped = 0;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 1,
                b'"' => unescaped += 1,
                _ => {}
            }
            i += 1;
        }
        assert_eq!(unescaped, 2, "{lit}");
        assert!(!lit.contains('\n'));
        let subject = SampleSubject {
            api: Some(nasty.into()),
            limit: 3,
            ..SampleSubject::default()
        };
        let q = scope(Binding::Let).samples(&subject, Timestamp(0), Timestamp(60_000));
        assert!(q.text.contains(&format!("let api = {lit};")));
        assert!(q.text.contains("| where ApiId == api\n"));
        // Declared: the value never enters the text.
        let q = scope(Binding::Declared).samples(&subject, Timestamp(0), Timestamp(60_000));
        assert!(!q.text.contains("drop"));
        assert_eq!(q.parameters.last().unwrap().1, Value::Str(nasty.into()));
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(Ident::parse("ApiManagementGatewayLogs").is_ok());
        assert!(Ident::parse("Logs_2").is_ok());
        for bad in ["", "2x", "a b", "T | take 1", "x;"] {
            assert!(Ident::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn legacy_table_renames_columns() {
        let s = Scope {
            table: Table::AzureDiagnostics,
            resource: None,
            binding: Binding::Let,
        };
        let q = s.cells(Timestamp(0), Timestamp(60_000));
        assert!(q.text.contains("Category == \"GatewayLogs\""));
        assert!(q.text.contains("TotalTime = toint(DurationMs)"));
        assert!(!q.text.contains("rid"));
    }
}
