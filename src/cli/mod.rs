//! The command line: a clap-derived record of what was typed and one
//! function per subcommand. The only module that wires layers together.
//! Each larger subcommand lives in its own file beside this one.

pub mod ask;
pub mod azure;
pub mod chat;
pub mod daemon;
pub mod detect;
pub mod lint;
pub mod logs;
pub mod mcp;
pub mod net;
pub mod remediate;
pub mod simulate;
pub mod tui;

use crate::model::{Severity, Snapshot, Timestamp, parse_iso_duration, parse_timestamp, redact};
use crate::{analyze, collect, playbook, report};
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "apimedic",
    version,
    about = "SRE diagnostics for API gateways (Azure API Management, nginx)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose exported gateway data (or the bundled demo) and report findings.
    Diagnose(DiagnoseArgs),
    /// Lint APIM policy XML and configuration.
    Lint(lint::LintArgs),
    /// Network checks: evaluate NSG rules for a flow.
    Net(net::NetArgs),
    /// Score any `timestamp,value` series for anomalies.
    Detect(detect::DetectArgs),
    /// Write a simulated gateway instance with incidents injected.
    Simulate(simulate::SimulateArgs),
    /// Interactive terminal dashboard.
    Tui(tui::TuiArgs),
    /// Watch sources continuously and emit alerts.
    Daemon(daemon::DaemonArgs),
    /// Ask a question in plain language.
    Ask(ask::AskArgs),
    /// Interactive question-and-answer session.
    Chat(chat::ChatArgs),
    /// Serve the read-only tools to MCP clients (stdio, or HTTP with --http).
    Mcp(mcp::McpArgs),
    /// Plan, approve, execute, verify and undo a proposed remediation (audited).
    Remediate(remediate::RemediateArgs),
    /// Configuration changes seen by live Azure pulls, with diffs.
    History(azure::HistoryArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    /// Files and folders of exported gateway data (logs, metrics, ARM
    /// resources, policies, activity log), recognised by content. None: the
    /// built-in demo.
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Only data from this instant (RFC 3339), or this long before the end of
    /// the data (`30m`, `2h`, `1d`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only data before this instant (RFC 3339), or this long before the end of the data.
    #[arg(long)]
    pub until: Option<String>,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, default_value = "high", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// A folder of playbooks to use instead of the built-in ones.
    #[arg(long)]
    pub playbooks: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Raw log records shown per finding in text output.
    #[arg(long, default_value_t = 3)]
    pub records: usize,
    /// Print how long loading, analysis and rendering took (to stderr).
    #[arg(long)]
    pub timings: bool,
    #[command(flatten)]
    pub azure: azure::AzureArgs,
    /// Take gateway traffic from where the logs live, aggregated there with
    /// KQL: `la:WORKSPACE_ID` (Log Analytics; base URL from
    /// APIMEDIC_LOGS_URL) or `adx:CLUSTER/DATABASE[/TABLE]` (Azure Data
    /// Explorer). Configuration comes from the paths given or the live
    /// target. Token: APIMEDIC_LOGS_TOKEN, else the Azure sign-in. Window:
    /// --since/--until (default the last 24 h). With a live target and no
    /// --logs, the workspace its diagnostic setting sends GatewayLogs to.
    #[arg(long, value_name = "SOURCE")]
    pub logs: Option<String>,
    /// With --logs: only this API Management service's rows (its ARM id),
    /// for a workspace or table shared by several services (with a live
    /// target, each instance's own id is used).
    #[arg(long, value_name = "ID", requires = "logs")]
    pub logs_resource: Option<String>,
    /// With --logs or a live target: print every KQL query to stderr as it
    /// is sent.
    #[arg(long)]
    pub explain: bool,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s)
        .ok_or_else(|| format!("unknown severity `{s}`; use critical, high, medium, low or info"))
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        // A bare `apimedic` is `apimedic diagnose` with every default.
        None => match Cli::parse_from(["apimedic", "diagnose"]).command {
            Some(Command::Diagnose(args)) => diagnose(args),
            _ => unreachable!("`diagnose` parses as the diagnose command"),
        },
        Some(Command::Diagnose(args)) => diagnose(args),
        Some(Command::Lint(args)) => lint::run(args),
        Some(Command::Net(args)) => net::run(args),
        Some(Command::Detect(args)) => detect::run(args),
        Some(Command::Simulate(args)) => simulate::run(args),
        Some(Command::Tui(args)) => tui::run(args),
        Some(Command::Daemon(args)) => daemon::run(args),
        Some(Command::Ask(args)) => ask::run(args),
        Some(Command::Chat(args)) => chat::run(args),
        Some(Command::Mcp(args)) => mcp::run(args),
        Some(Command::Remediate(args)) => remediate::run(args),
        Some(Command::History(args)) => azure::history(args),
    }
}

/// Loads the paths given, or the built-in demo when there are none.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Snapshot> {
    if paths.is_empty() {
        let mut snapshot = collect::collect_files(&crate::simulate::demo_files());
        snapshot.loaded.demo = Some(crate::simulate::DEMO.0.name().to_string());
        return Ok(snapshot);
    }
    collect::collect(paths)
}

/// Whether to colour output written to stdout: `--color`, then NO_COLOR, then a terminal check.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// Resolves `--since`/`--until`: an instant, or a duration before `end`.
pub fn parse_bound(text: &str, end: Option<Timestamp>) -> anyhow::Result<Timestamp> {
    if let Some(t) = parse_timestamp(text) {
        return Ok(t);
    }
    let secs = parse_relative(text).with_context(|| {
        format!(
            "`{text}` is neither a timestamp (2024-05-14T09:00:00Z) nor a duration (30m, 2h, 1d)"
        )
    })?;
    let end = end.context("a relative --since/--until needs time-stamped data")?;
    Ok(Timestamp(end.0 - (secs * 1000.0) as i64))
}

fn parse_relative(text: &str) -> Option<f64> {
    let t = text.trim().trim_start_matches('-');
    if t.starts_with('P') {
        return parse_iso_duration(t);
    }
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 7.0 * 86_400.0,
        _ => return None,
    };
    Some(n * mult)
}

fn diagnose(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    if args.explain && args.logs.is_none() && !args.azure.is_live() {
        anyhow::bail!(
            "--explain shows the KQL sent for --logs or a live target's workspace (--azure …); neither was given"
        );
    }
    if args.azure.is_live() {
        if !args.paths.is_empty() {
            anyhow::bail!(
                "give exported files or a live target (--azure, --subscription, --all), not both"
            );
        }
        // The time range chose what was read; analysis takes all of it.
        // Each instance is reported as soon as it is read (a header line
        // names it when the target is not one service id).
        let one = matches!(args.azure.target()?, Some(azure::Target::Service(_)));
        let mut code = ExitCode::SUCCESS;
        args.azure.load_each(
            args.since.as_deref(),
            args.until.as_deref(),
            |id, snapshot| {
                if !one {
                    println!("== {id}");
                }
                let resource = args.logs_resource.clone().unwrap_or(id.clone());
                let name = id.rsplit('/').next().unwrap_or(&id).to_string();
                if diagnose_snapshot(
                    snapshot,
                    &args,
                    analyze::Options::default(),
                    started,
                    Some(&resource),
                    (!one).then_some(name.as_str()),
                )? != ExitCode::SUCCESS
                {
                    code = ExitCode::from(1);
                }
                Ok(())
            },
        )?;
        return Ok(code);
    }
    if args.logs.is_some() {
        // Logs from the engine; configuration from the paths (none: not
        // the demo). --since/--until chose the window the engine is asked
        // for, and the traffic that comes back is that window.
        let snapshot = if args.paths.is_empty() {
            Snapshot::default()
        } else {
            load(&args.paths)?
        };
        let resource = args.logs_resource.clone();
        return diagnose_snapshot(
            snapshot,
            &args,
            analyze::Options::default(),
            started,
            resource.as_deref(),
            None,
        );
    }
    let snapshot = load(&args.paths)?;
    let end = snapshot.loaded.time_range.map(|w| w.end);
    let options = analyze::Options {
        since: args
            .since
            .as_deref()
            .map(|s| parse_bound(s, end))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_bound(s, end))
            .transpose()?,
    };
    check_window(&options)?;
    diagnose_snapshot(snapshot, &args, options, started, None, None)
}

/// Analyses one snapshot and prints its report; exit 1 at or above
/// `--fail-on`. `instance` names the instance when a run reports several
/// (a fleet): every finding carries it, and the snapshot is freed before
/// the next instance is read.
fn diagnose_snapshot(
    mut snapshot: Snapshot,
    args: &DiagnoseArgs,
    options: analyze::Options,
    started: std::time::Instant,
    logs_resource: Option<&str>,
    instance: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let loaded = started.elapsed();
    let playbooks = match &args.playbooks {
        Some(dir) => playbook::Playbooks::load_dir(dir)?,
        None => playbook::Playbooks::built_in(),
    };
    // A live instance without --logs: the workspace its diagnostic
    // setting sends gateway logs to, if any (else a problem says why no
    // request was read).
    let discovered = match (&args.logs, logs_resource) {
        (None, Some(id)) => {
            match crate::collect::kql::discovered_source(&snapshot.log_workspaces) {
                Ok((spec, note)) => {
                    eprintln!("apimedic: {id}: {note}");
                    Some(spec)
                }
                Err(why) => {
                    snapshot.loaded.problems.push(crate::model::Problem {
                        origin: crate::model::Origin::file(format!("azure:{id}")),
                        message: why,
                    });
                    None
                }
            }
        }
        _ => None,
    };
    let diagnosis = match args.logs.as_ref().or(discovered.as_ref()) {
        Some(spec) => logs::diagnose(
            &mut snapshot,
            &logs::LogsArgs {
                spec,
                resource: logs_resource,
                since: args.since.as_deref(),
                until: args.until.as_deref(),
                explain: args.explain,
                timings: args.timings,
            },
            &options,
            &playbooks,
        )?,
        None => playbook::diagnose(&snapshot, &options, &playbooks),
    };
    let mut diagnosis = diagnosis;
    if let Some(name) = instance {
        for f in &mut diagnosis.findings {
            f.instance = Some(name.to_string());
        }
    }
    let analysed = started.elapsed();
    let out = match args.format {
        Format::Text => {
            let opts = report::TextOptions {
                color: use_color(args.color),
                records: args.records,
                problems: 20,
            };
            redact::scrub(&report::text(&diagnosis, &opts))
        }
        Format::Markdown => redact::scrub(&report::markdown(&diagnosis)),
        Format::Json => {
            let mut v = report::json(&diagnosis);
            redact::scrub_value(&mut v);
            let mut s = serde_json::to_string_pretty(&v)?;
            s.push('\n');
            s
        }
    };
    if args.timings {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let done = started.elapsed();
        eprintln!(
            "timings: load {:.0} ms ({} rows), analysis {:.0} ms, report {:.0} ms, total {:.0} ms",
            ms(loaded),
            snapshot.traffic.rows,
            ms(analysed - loaded),
            ms(done - analysed),
            ms(done)
        );
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
    {
        // A closed pipe (`| head`) is not an error worth a message.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("cannot write the report");
        }
    }
    // What holds now decides: 2 when there is nothing to judge, 1 when a
    // current finding is at or above --fail-on, 0 otherwise (an incident
    // that ended is reported, not failed on).
    let code = diagnosis
        .verdict
        .exit_code(&diagnosis.findings, args.fail_on);
    // The process ends next: freeing every per-minute latency list of a big
    // log one by one took ~0.1 s on 10M rows for nothing. In a fleet the
    // next instance follows: free it (forgetting 50 of them was most of a
    // fleet's peak memory).
    if instance.is_some() {
        drop(snapshot);
    } else {
        std::mem::forget(snapshot);
    }
    Ok(ExitCode::from(code))
}

/// `--since` must come before `--until`: an empty or inverted window is an
/// argument error, not an empty (and so "healthy") report.
pub fn check_window(options: &analyze::Options) -> anyhow::Result<()> {
    if let (Some(s), Some(u)) = (options.since, options.until)
        && s >= u
    {
        anyhow::bail!(
            "--since {s} is not before --until {u}: the window is empty; swap them or widen it"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_absolute_and_relative() {
        let end = Some(Timestamp::from_minute(1000));
        assert_eq!(parse_bound("2h", end).unwrap(), Timestamp::from_minute(880));
        assert_eq!(
            parse_bound("-30m", end).unwrap(),
            Timestamp::from_minute(970)
        );
        assert_eq!(
            parse_bound("PT1H", end).unwrap(),
            Timestamp::from_minute(940)
        );
        assert_eq!(
            parse_bound("1970-01-01T00:01:00Z", end).unwrap(),
            Timestamp::from_minute(1)
        );
        let err = parse_bound("yesterday", end).unwrap_err().to_string();
        assert!(err.contains("neither a timestamp"), "{err}");
        assert!(parse_bound("2h", None).is_err());
    }

    #[test]
    fn inverted_window_is_an_argument_error() {
        let o = |s: i64, u: i64| analyze::Options {
            since: Some(Timestamp::from_minute(s)),
            until: Some(Timestamp::from_minute(u)),
        };
        assert!(check_window(&o(10, 20)).is_ok());
        let err = check_window(&o(20, 10)).unwrap_err().to_string();
        assert!(err.contains("is not before --until"), "{err}");
        assert!(check_window(&o(10, 10)).is_err());
    }
}
