//! Gateway logs where they already live: the aggregation pushed down to Log
//! Analytics or Azure Data Explorer as KQL, only per-minute cells coming
//! back (and, after detection, a few raw failing rows per finding).
//!
//! `--logs la:WORKSPACE` (the workspace's customerId GUID; the query API's
//! base URL from `APIMEDIC_LOGS_URL`, default `https://api.loganalytics.io`)
//! or `--logs adx:CLUSTER/DATABASE[/TABLE]`. A window is cut into chunks
//! small enough that each answer stays far under the services' limits
//! (500,000 rows / 64 MB): the `series` query counts the series first, and
//! a chunk whose answer still comes back truncated is halved and asked
//! again. Each chunk costs three queries (`cells`, `backend_latency`,
//! `reasons`); `hosts` runs once. Answers fill the same `model::MinuteStats`
//! cells as the file readers (`fill`), so the analysis is the same code on
//! the same data. Queries are typed (`query`), answers parsed strictly
//! (`wire`), the HTTP edge is `client`.

pub mod client;
pub mod fill;
pub mod query;
pub mod wire;

use crate::model::{
    LoadReport, LogWorkspace, Origin, Problem, RequestRecord, Snapshot, Timestamp, Traffic,
    url_host,
};
use client::{Client, Endpoint};
use query::{Binding, Ident, Query, SampleSubject, Scope, Table};
use std::time::{Duration, Instant};
use wire::AnswerError;

/// Where the logs are, as `--logs` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogsSource {
    pub endpoint: Endpoint,
    /// None: find it (Log Analytics: the resource-specific table, else
    /// `AzureDiagnostics`).
    pub table: Option<Table>,
}

/// Default base URL of the Log Analytics query API.
pub const LOGS_URL: &str = "https://api.loganalytics.io";

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl LogsSource {
    /// Parses `la:WORKSPACE` or `adx:CLUSTER/DATABASE[/TABLE]`; `logs_url`
    /// is the Log Analytics base URL (`APIMEDIC_LOGS_URL`).
    pub fn parse(spec: &str, logs_url: Option<&str>) -> Result<LogsSource, String> {
        if let Some(ws) = spec.strip_prefix("la:") {
            if !is_guid(ws) {
                return Err(format!(
                    "`{ws}` is not a Log Analytics workspace id: give the workspace's customerId, a GUID \
                     (az monitor log-analytics workspace show --query customerId)"
                ));
            }
            let base = logs_url
                .unwrap_or(LOGS_URL)
                .trim_end_matches('/')
                .to_string();
            check_base(&base)?;
            return Ok(LogsSource {
                endpoint: Endpoint::LogAnalytics {
                    base,
                    workspace: ws.to_ascii_lowercase(),
                },
                table: None,
            });
        }
        if let Some(rest) = spec.strip_prefix("adx:") {
            let (scheme, rest) = match rest.split_once("://") {
                Some((s, r)) => (s, r),
                None => ("https", rest),
            };
            let mut parts = rest.split('/');
            let host = parts.next().unwrap_or("");
            let db = parts.next().unwrap_or("");
            let table = parts.next();
            if host.is_empty() || db.is_empty() || parts.next().is_some() {
                return Err(format!(
                    "`{spec}` should be adx:CLUSTER/DATABASE[/TABLE], e.g. \
                     adx:https://mycluster.westeurope.kusto.windows.net/Logs/ApiManagementGatewayLogs"
                ));
            }
            let cluster = format!("{scheme}://{host}");
            check_base(&cluster)?;
            let database = Ident::parse(db)?;
            let table = match table {
                Some(t) => Table::GatewayLogs(Ident::parse(t)?),
                None => Table::gateway_logs(),
            };
            return Ok(LogsSource {
                endpoint: Endpoint::Adx {
                    cluster,
                    database: database.as_str().to_string(),
                },
                table: Some(table),
            });
        }
        Err(format!(
            "`{spec}`: --logs takes la:WORKSPACE_ID (Log Analytics) or adx:CLUSTER/DATABASE[/TABLE] (Azure Data Explorer)"
        ))
    }

    /// How the source is named in messages (`la:…`, `adx:…`).
    pub fn label(&self) -> String {
        match &self.endpoint {
            Endpoint::LogAnalytics { workspace, .. } => format!("la:{workspace}"),
            Endpoint::Adx { cluster, database } => format!("adx:{cluster}/{database}"),
        }
    }

    fn binding(&self) -> Binding {
        match self.endpoint {
            Endpoint::LogAnalytics { .. } => Binding::Let,
            Endpoint::Adx { .. } => Binding::Declared,
        }
    }
}

/// Only https, or http to loopback (tests, local stand-ins).
fn check_base(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or("");
        if matches!(host, "127.0.0.1" | "localhost" | "[") || rest.starts_with("[::1]") {
            return Ok(());
        }
    }
    Err(format!(
        "`{url}`: logs are only fetched over https (plain http only to 127.0.0.1 or localhost)"
    ))
}

/// An APIM service's ARM id, checked before it goes into any query.
pub fn parse_resource_id(s: &str) -> Result<String, String> {
    let lower = s.trim_end_matches('/').to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let ok = parts.len() == 9
        && parts[0].is_empty()
        && parts[1] == "subscriptions"
        && parts[3] == "resourcegroups"
        && parts[5] == "providers"
        && parts[6] == "microsoft.apimanagement"
        && parts[7] == "service"
        && [parts[2], parts[4], parts[8]].iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
        });
    if ok {
        Ok(lower)
    } else {
        Err(format!(
            "`{s}` is not an API Management service id \
             (/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.ApiManagement/service/NAME)"
        ))
    }
}

/// What a pushdown run cost, for `--timings` and the benchmark.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub queries: u64,
    pub rows_received: u64,
    pub bytes_received: u64,
    pub chunks: u64,
    pub elapsed: Duration,
    /// Rows the engine aggregated (the `series` query's count).
    pub rows_aggregated: u64,
}

/// Options of one pushdown.
#[derive(Clone, Debug)]
pub struct Request {
    pub source: LogsSource,
    pub resource: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Series-minutes per chunk (each is one row of the `cells` answer).
    pub chunk_cells: u64,
    /// Print every query to stderr before sending it.
    pub explain: bool,
}

/// Series-minutes per chunk by default: a `cells` row is ~0.3-2 KB (the
/// histogram), so 20,000 rows stay far below 64 MB and 500,000 rows.
pub const CHUNK_CELLS: u64 = 20_000;

/// A failure of the pushdown, with the query it happened on and what to do.
#[derive(Debug)]
pub struct PushdownError(pub String);

impl std::fmt::Display for PushdownError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PushdownError {}

/// The advice for a failed answer.
fn advice(e: &AnswerError) -> &'static str {
    match e {
        AnswerError::Refused { status: 401, .. } => {
            "sign in again (the token was refused) and check the sign-in method"
        }
        AnswerError::Refused { status: 403, .. } => {
            "grant the identity Log Analytics Reader on the workspace (or Viewer on the ADX database); \
             new grants can take up to an hour"
        }
        AnswerError::Refused { status: 404, .. } => {
            "check the workspace id (its customerId GUID) or the cluster URL and database"
        }
        AnswerError::Refused { status: 400, .. } => {
            "the engine rejected the query: check the table and its columns exist \
             (run it with --explain and paste it into the portal's query editor)"
        }
        AnswerError::Refused { status: 429, .. } => {
            "the service kept throttling; wait a minute or narrow --since/--until"
        }
        AnswerError::Refused { status: 0, .. } => "check the URL and the network path to it",
        AnswerError::Refused { .. } => "retry later; the service failed",
        AnswerError::Partial { .. } => {
            "the engine answered with an error beside the data, so the data is incomplete and is not used; \
             retry, or narrow --since/--until"
        }
        AnswerError::Truncated { .. } => {
            "the answer hit the service's result limit even for one minute; narrow the scope with --logs-resource"
        }
        AnswerError::Malformed(_) => {
            "the endpoint did not answer like Log Analytics or ADX; check APIMEDIC_LOGS_URL or the cluster URL"
        }
    }
}

fn explain(q: &Query, source: &LogsSource) {
    let url = source.endpoint.url();
    eprintln!(
        "-- query `{}` over [{}, {}) → POST {url}",
        q.name,
        q.start.to_rfc3339(),
        q.end.to_rfc3339()
    );
    for (k, v) in &q.parameters {
        eprintln!("--   parameter {k} = {}", v.literal());
    }
    eprintln!("{}", q.text.trim_end());
    eprintln!();
}

/// Runs the pushdown: traffic cells for `[start, end)`.
pub struct Pushdown {
    client: Client,
    req: Request,
    scope: Scope,
    pub stats: Stats,
}

impl Pushdown {
    pub fn new(req: Request, token: String) -> Result<Pushdown, PushdownError> {
        let client = Client::new(req.source.endpoint.clone(), token).map_err(PushdownError)?;
        let scope = Scope {
            table: req.source.table.clone().unwrap_or_else(Table::gateway_logs),
            resource: req.resource.clone(),
            binding: req.source.binding(),
        };
        Ok(Pushdown {
            client,
            req,
            scope,
            stats: Stats::default(),
        })
    }

    async fn run(&mut self, q: &Query) -> Result<wire::Table, AnswerError> {
        if self.req.explain {
            explain(q, &self.req.source);
        }
        let t = self.client.run(q).await;
        self.stats.queries = self.client.requests;
        self.stats.bytes_received = self.client.bytes;
        if let Ok(t) = &t {
            self.stats.rows_received += t.rows.len() as u64;
        }
        t
    }

    fn fail(&self, q: &Query, e: &AnswerError) -> PushdownError {
        PushdownError(format!(
            "{}: query `{}` over [{}, {}) failed: {e}. What to do: {}",
            self.req.source.label(),
            q.name,
            q.start.to_rfc3339(),
            q.end.to_rfc3339(),
            advice(e)
        ))
    }

    fn origin(&self, q: &Query) -> String {
        format!(
            "{} query {} [{}, {})",
            self.req.source.label(),
            q.name,
            q.start.to_rfc3339(),
            q.end.to_rfc3339()
        )
    }

    /// Counts the window's series and rows, choosing the table when the
    /// source did not name one.
    async fn series(&mut self) -> Result<(u64, u64), PushdownError> {
        let (start, end) = (self.req.start, self.req.end);
        let candidates = match &self.req.source.table {
            Some(t) => vec![t.clone()],
            None => vec![Table::gateway_logs(), Table::AzureDiagnostics],
        };
        let mut tried = Vec::new();
        for table in candidates {
            self.scope.table = table.clone();
            let q = self.scope.series(start, end);
            match self.run(&q).await {
                Ok(t) => {
                    let (series, rows) = fill::series(&t).or_else(|e| {
                        if t.columns.is_empty() {
                            Ok((0, 0))
                        } else {
                            Err(self.shape(&q, e))
                        }
                    })?;
                    if rows > 0 {
                        return Ok((series, rows));
                    }
                    tried.push(format!("{} has no rows", table.name()));
                }
                // A workspace without the table answers 400 (it cannot be
                // resolved): try the next; any other failure is final.
                Err(AnswerError::Refused {
                    status: 400,
                    message,
                    ..
                }) if self.req.source.table.is_none() => {
                    tried.push(format!("{} is not queryable ({message})", table.name()));
                }
                Err(e) => return Err(self.fail(&q, &e)),
            }
        }
        let scope = match &self.req.resource {
            Some(r) => format!(" for {r}"),
            None => String::new(),
        };
        Err(PushdownError(format!(
            "{}: no API Management gateway logs{scope} in [{}, {}): {}. Nothing can be judged from this source. \
             What to do: check that the service's diagnostic setting sends GatewayLogs to this {} \
             (resource-specific or AzureDiagnostics mode), and that --since/--until cover the incident",
            self.req.source.label(),
            start.to_rfc3339(),
            end.to_rfc3339(),
            tried.join("; "),
            match self.req.source.endpoint {
                Endpoint::LogAnalytics { .. } => "workspace",
                Endpoint::Adx { .. } => "database (and that the table name is right)",
            }
        )))
    }

    fn shape(&self, q: &Query, e: wire::ShapeError) -> PushdownError {
        PushdownError(format!(
            "{}: the answer to query `{}` over [{}, {}) is not what was asked for: {}. \
             What to do: check that {} has the ApiManagementGatewayLogs columns (run with --explain to see the query)",
            self.req.source.label(),
            q.name,
            q.start.to_rfc3339(),
            q.end.to_rfc3339(),
            e.0,
            self.scope.table.name()
        ))
    }

    /// Every cell of `[start, end)` into a snapshot's traffic.
    pub async fn load(&mut self) -> Result<(Traffic, LoadReport), PushdownError> {
        let started = Instant::now();
        let (series, rows) = self.series().await?;
        self.stats.rows_aggregated = rows;
        let (start, end) = (self.req.start, self.req.end);
        let span = (end.minute() - start.minute()).max(1) as u64;
        let per_chunk = (self.req.chunk_cells.max(1) / series.max(1)).clamp(1, span);
        let mut traffic = Traffic::default();
        let mut report = LoadReport::default();
        // Chunks still to ask, earliest first.
        let mut todo: Vec<(Timestamp, Timestamp)> = Vec::new();
        let mut t = start;
        while t < end {
            let next = Timestamp::from_minute(t.minute() + per_chunk as i64).min(end);
            todo.push((t, next));
            t = next;
        }
        todo.reverse();
        while let Some((a, b)) = todo.pop() {
            match self.chunk(a, b, &mut traffic, &mut report).await {
                Ok(()) => self.stats.chunks += 1,
                Err(Split::Halve) if b.minute() - a.minute() >= 2 => {
                    let mid = Timestamp::from_minute(a.minute() + (b.minute() - a.minute()) / 2);
                    todo.push((mid, b));
                    todo.push((a, mid));
                }
                Err(Split::Halve) => {
                    let q = self.scope.cells(a, b);
                    return Err(self.fail(
                        &q,
                        &AnswerError::Truncated {
                            message: "one minute of data is over the result limit".into(),
                        },
                    ));
                }
                Err(Split::Fail(e)) => return Err(e),
            }
        }
        let q = self.scope.hosts(start, end);
        match self.run(&q).await {
            Ok(t) if t.columns.is_empty() => {}
            Ok(t) => {
                let origin = self.origin(&q);
                fill::hosts(&t, &mut traffic, &mut report, &origin)
                    .map_err(|e| self.shape(&q, e))?;
            }
            Err(e) => return Err(self.fail(&q, &e)),
        }
        report.files += 1;
        self.stats.elapsed = started.elapsed();
        Ok((traffic, report))
    }

    async fn chunk(
        &mut self,
        a: Timestamp,
        b: Timestamp,
        traffic: &mut Traffic,
        report: &mut LoadReport,
    ) -> Result<(), Split> {
        // Into a scratch traffic first: a chunk cut by the limit is asked
        // again in halves and must not count twice.
        let mut part = Traffic::default();
        let mut part_report = LoadReport::default();
        let queries = [
            self.scope.cells(a, b),
            self.scope.backend_latency(a, b),
            self.scope.reasons(a, b),
        ];
        for q in &queries {
            let t = match self.run(q).await {
                Ok(t) => t,
                Err(AnswerError::Truncated { .. }) => return Err(Split::Halve),
                Err(e) => return Err(Split::Fail(self.fail(q, &e))),
            };
            if t.columns.is_empty() && t.rows.is_empty() {
                continue;
            }
            let origin = self.origin(q);
            let r = match q.name {
                "cells" => fill::cells(&t, &mut part, &mut part_report, &origin).map(|_| ()),
                "backend_latency" => {
                    fill::backend_latency(&t, &mut part, &mut part_report, &origin)
                }
                _ => fill::reasons(&t, &mut part, &mut part_report, &origin),
            };
            r.map_err(|e| Split::Fail(self.shape(q, e)))?;
        }
        traffic.merge(part);
        report.merge(part_report);
        Ok(())
    }

    /// Raw failing rows for each subject, fetched after detection.
    pub async fn samples(
        &mut self,
        subjects: &[(SampleSubject, Timestamp, Timestamp)],
    ) -> Result<Vec<RequestRecord>, PushdownError> {
        let mut out = Vec::new();
        for (s, a, b) in subjects {
            let q = self.scope.samples(s, *a, *b);
            let t = self.run(&q).await.map_err(|e| self.fail(&q, &e))?;
            if t.columns.is_empty() {
                continue;
            }
            let origin = self.origin(&q);
            out.extend(fill::samples(&t, &origin).map_err(|e| self.shape(&q, e))?);
        }
        Ok(out)
    }
}

enum Split {
    Halve,
    Fail(PushdownError),
}

/// Puts fetched sample records into the cells they belong to (at most
/// `MinuteStats::MAX_SAMPLES` per cell, no duplicates), where findings pick
/// their evidence from.
pub fn attach_samples(snapshot: &mut Snapshot, records: Vec<RequestRecord>) {
    for r in records {
        let backend = match r.backend_id.as_deref() {
            Some(b) if !b.is_empty() => b.to_string(),
            _ => url_host(r.backend_url.as_deref().unwrap_or("")).to_string(),
        };
        let i = snapshot
            .traffic
            .series_index(&r.api_id, &r.operation_id, &backend);
        let cell = snapshot.traffic.series[i]
            .minutes
            .entry(r.time.minute())
            .or_default();
        if cell.samples.len() < crate::model::MinuteStats::MAX_SAMPLES
            && !cell
                .samples
                .iter()
                .any(|s| s.time == r.time && s.correlation_id == r.correlation_id && s.url == r.url)
        {
            cell.samples.push(r);
            cell.samples.sort_by_key(|s| s.time);
        }
    }
}

/// A problem that names the source, for the load report.
pub fn source_problem(source: &LogsSource, message: String) -> Problem {
    Problem {
        origin: Origin::file(source.label()),
        message,
    }
}

/// `--logs` for a live instance that was given none: the first workspace
/// (in diagnostic-setting order) whose customerId was read, as
/// (`la:GUID`, a line saying where it came from). Otherwise why there is
/// none and what to give instead, for the load report: the instance's
/// requests are then not read, and the report must say so.
pub fn discovered_source(workspaces: &[LogWorkspace]) -> Result<(String, String), String> {
    if let Some(w) = workspaces.iter().find(|w| w.customer_id.is_some()) {
        let guid = w.customer_id.as_deref().unwrap_or_default();
        let mut note = format!(
            "gateway logs from Log Analytics workspace {} (la:{guid}), where diagnostic setting `{}` sends GatewayLogs",
            w.resource_id, w.setting
        );
        let others: Vec<&str> = workspaces
            .iter()
            .map(|o| o.resource_id.as_str())
            .filter(|o| !o.eq_ignore_ascii_case(&w.resource_id))
            .collect();
        if !others.is_empty() {
            note.push_str(&format!(
                "; not also from {} (the same logs; give --logs to choose)",
                others.join(", ")
            ));
        }
        return Ok((format!("la:{guid}"), note));
    }
    if workspaces.is_empty() {
        return Err(
            "no diagnostic setting sends GatewayLogs to a Log Analytics workspace, so no gateway request was read \
             (give --logs la:WORKSPACE_GUID or adx:CLUSTER/DATABASE[/TABLE] where the logs are)"
                .into(),
        );
    }
    let names: Vec<&str> = workspaces.iter().map(|w| w.resource_id.as_str()).collect();
    Err(format!(
        "the workspace the diagnostic setting sends GatewayLogs to could not be read ({}), so no gateway request was read \
         (give it Reader on the workspace, or --logs la:WORKSPACE_GUID)",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_instance_finds_its_workspace_or_says_why_not() {
        let ws = |id: &str, guid: Option<&str>| LogWorkspace {
            resource_id: format!(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/{id}"
            ),
            setting: format!("to-{id}"),
            customer_id: guid.map(str::to_string),
        };
        let guid = "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c";
        let (spec, note) =
            discovered_source(&[ws("unread", None), ws("main", Some(guid)), ws("copy", None)])
                .unwrap();
        assert_eq!(spec, format!("la:{guid}"));
        assert!(
            note.contains("workspaces/main") && note.contains("`to-main`"),
            "{note}"
        );
        assert!(note.contains("workspaces/unread") && note.contains("workspaces/copy"));
        assert!(LogsSource::parse(&spec, None).is_ok());
        let none = discovered_source(&[]).unwrap_err();
        assert!(
            none.contains("no diagnostic setting") && none.contains("--logs"),
            "{none}"
        );
        let unread = discovered_source(&[ws("locked", None)]).unwrap_err();
        assert!(unread.contains("workspaces/locked") && unread.contains("could not be read"));
    }

    #[test]
    fn sources_parse_and_bad_ones_say_what_to_give() {
        let s = LogsSource::parse("la:6F1D2C3B-4A5E-4F60-8B7C-9D0E1F2A3B4C", None).unwrap();
        assert_eq!(
            s.endpoint.url(),
            "https://api.loganalytics.io/v1/workspaces/6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c/query"
        );
        let s = LogsSource::parse("adx:help.kusto.windows.net/Samples/GatewayLogs", None).unwrap();
        assert_eq!(
            s.endpoint.url(),
            "https://help.kusto.windows.net/v2/rest/query"
        );
        assert_eq!(s.table.as_ref().map(Table::name), Some("GatewayLogs"));
        let s = LogsSource::parse("adx:http://127.0.0.1:8080/db", None).unwrap();
        assert_eq!(s.endpoint.scope(), "http://127.0.0.1:8080/.default");
        for bad in [
            "la:myworkspace",
            "adx:cluster",
            "adx:c/db/t/x",
            "adx:c/d b",
            "adx:http://example.com/db",
            "file:x",
        ] {
            assert!(LogsSource::parse(bad, None).is_err(), "{bad}");
        }
        assert!(
            LogsSource::parse(
                "la:6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c",
                Some("http://10.0.0.1")
            )
            .is_err()
        );
    }

    #[test]
    fn resource_ids_are_checked() {
        let id = "/subscriptions/6f1d/resourceGroups/rg-apim/providers/Microsoft.ApiManagement/service/contoso";
        assert_eq!(parse_resource_id(id).unwrap(), id.to_ascii_lowercase());
        assert!(
            parse_resource_id("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/a")
                .is_err()
        );
        assert!(parse_resource_id(&format!("{id}' or 1==1")).is_err());
    }
}
