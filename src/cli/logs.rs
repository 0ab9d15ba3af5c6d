//! `diagnose --logs la:…|adx:…`: gateway traffic from Log Analytics or Azure
//! Data Explorer through the KQL pushdown (`collect::kql`), configuration
//! from the folders given. Wires the pushdown to the diagnosis: cells
//! first, detection, then a few raw rows per finding fetched for evidence,
//! then the diagnosis again with them.

use crate::analyze;
use crate::azure::credential::{Credential, CredentialOptions};
use crate::collect::kql::{self, LogsSource, Pushdown, query::SampleSubject};
use crate::model::{Diagnosis, InputKind, Snapshot, Timestamp};
use crate::playbook;
use anyhow::{Context, bail};

/// What `--logs` and its companions asked for.
pub struct LogsArgs<'a> {
    pub spec: &'a str,
    pub resource: Option<&'a str>,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub explain: bool,
    pub timings: bool,
}

/// Findings whose evidence is fetched (most urgent first).
const SAMPLED_FINDINGS: usize = 20;

/// The bearer token for the logs endpoint: `APIMEDIC_LOGS_TOKEN` when set
/// (e.g. `az account get-access-token --resource https://api.loganalytics.io`),
/// else one for the endpoint's scope from the Azure sign-in chain
/// (`azure::credential`, the one the live target uses).
async fn token(source: &LogsSource) -> anyhow::Result<String> {
    if let Ok(t) = std::env::var("APIMEDIC_LOGS_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let scope = source.endpoint.scope();
    let credential = Credential::new(CredentialOptions::default())
        .map_err(|e| anyhow::anyhow!("{}: no token for {scope}: {e}", source.label()))?;
    let token = credential.token(&scope).await.map_err(|e| {
        anyhow::anyhow!(
            "{}: no token for {scope}: {e}\n  or set APIMEDIC_LOGS_TOKEN to a bearer token for it",
            source.label()
        )
    })?;
    Ok(token.secret().to_string())
}

/// The window asked for: `--since`/`--until` (RFC 3339, or a duration
/// before now), by default the last 24 hours, to whole minutes.
fn window(args: &LogsArgs<'_>, now: Timestamp) -> anyhow::Result<(Timestamp, Timestamp)> {
    let end = match args.until {
        Some(u) => super::parse_bound(u, Some(now))?,
        None => now,
    };
    // Whole minutes, the last one included.
    let end = Timestamp::from_minute(end.minute() + i64::from(end.0 % 60_000 != 0));
    let start = match args.since {
        Some(s) => super::parse_bound(s, Some(end))?,
        None => Timestamp::from_minute(end.minute() - 24 * 60),
    };
    let start = Timestamp::from_minute(start.minute());
    if start >= end {
        bail!(
            "--since ({}) is not before --until ({})",
            start.to_rfc3339(),
            end.to_rfc3339()
        );
    }
    Ok((start, end))
}

/// Loads traffic through the pushdown into `snapshot` (replacing any read
/// from files), diagnoses, fetches evidence rows and diagnoses again.
pub fn diagnose(
    snapshot: &mut Snapshot,
    args: &LogsArgs<'_>,
    options: &analyze::Options,
    playbooks: &playbook::Playbooks,
) -> anyhow::Result<Diagnosis> {
    let source = LogsSource::parse(
        args.spec,
        std::env::var("APIMEDIC_LOGS_URL").ok().as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let resource = args
        .resource
        .map(kql::parse_resource_id)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let now = Timestamp(chrono::Utc::now().timestamp_millis());
    let (start, end) = window(args, now)?;
    let chunk_cells = std::env::var("APIMEDIC_KQL_CHUNK_CELLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(kql::CHUNK_CELLS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let token = rt.block_on(token(&source))?;
    let mut pushdown = Pushdown::new(
        kql::Request {
            source: source.clone(),
            resource,
            start,
            end,
            chunk_cells,
            explain: args.explain,
        },
        token,
    )?;
    let (traffic, report) = rt.block_on(pushdown.load())?;
    if !snapshot.traffic.is_empty() {
        snapshot.loaded.problems.push(kql::source_problem(
            &source,
            format!(
                "{} gateway log rows read from files are not used: --logs takes traffic from {}",
                snapshot.traffic.rows,
                source.label()
            ),
        ));
        snapshot.loaded.counts.remove(&InputKind::GatewayLogs);
    }
    snapshot.traffic = traffic;
    snapshot.loaded.merge(report);
    let first = playbook::diagnose(snapshot, options, playbooks);

    // Evidence: a few raw failing rows per finding, asked only now.
    let subjects: Vec<(SampleSubject, Timestamp, Timestamp)> = first
        .findings
        .iter()
        .filter_map(|f| {
            let w = f.window?;
            let s = &f.subject;
            (s.api.is_some() || s.backend.is_some()).then(|| {
                (
                    SampleSubject {
                        api: s.api.clone(),
                        operation: s.operation.clone(),
                        backend: s.backend.clone().filter(|_| s.api.is_none()),
                        limit: crate::model::MinuteStats::MAX_SAMPLES,
                    },
                    w.start.max(start),
                    w.end.min(end).max(Timestamp(w.start.0 + 60_000)),
                )
            })
        })
        .take(SAMPLED_FINDINGS)
        .collect();
    let diagnosis = if subjects.is_empty() {
        first
    } else {
        let records = rt.block_on(pushdown.samples(&subjects))?;
        kql::attach_samples(snapshot, records);
        playbook::diagnose(snapshot, options, playbooks)
    };
    if args.timings {
        let s = &pushdown.stats;
        eprintln!(
            "pushdown: {} chunks, {} queries, {} rows aggregated by the engine, {} rows and {} bytes received, {:.0} ms",
            s.chunks,
            s.queries,
            s.rows_aggregated,
            s.rows_received,
            s.bytes_received,
            s.elapsed.as_secs_f64() * 1000.0
        );
    }
    Ok(diagnosis)
}
