//! `apimedic daemon`: arguments, config merge, logging and signals; the
//! work is `daemon::run`. `apimedic daemon live` writes a simulated live
//! feed for demos and tests.

use crate::daemon::{self, config};
use crate::simulate::live;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DaemonArgs {
    #[command(subcommand)]
    pub command: Option<DaemonCommand>,
    /// Instance folders and gateway log files to watch (NDJSON logs are
    /// followed as they grow; other files are re-read when they change).
    pub paths: Vec<PathBuf>,
    /// TOML configuration file (see the README for every key).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where offsets, alert state and the outbox are kept.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Send alerts to this Alertmanager (http://host:9093).
    #[arg(long, value_name = "URL")]
    pub alertmanager: Option<String>,
    /// Send alerts as JSON to this webhook.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Serve /metrics and /healthz here (e.g. 127.0.0.1:9187).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Detector interval (overrides [daemon] tick), e.g. 15s.
    #[arg(long, value_name = "DURATION")]
    pub tick: Option<String>,
    /// Read what the files hold, evaluate once, print a JSON summary and exit.
    #[arg(long)]
    pub once: bool,
    /// Log debug detail to stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// Live Azure: how often each instance is read (overrides [azure] interval; default 5m).
    #[arg(long, value_name = "DURATION", help_heading = "Live Azure")]
    pub azure_interval: Option<String>,
    #[command(flatten)]
    pub azure: super::azure::AzureArgs,
    /// With a live target: `--since 3h` reads the last 3 hours on every
    /// poll (default 3h, or [azure] window); with `--until` too, always the
    /// same span (a past incident).
    #[command(flatten)]
    pub span: super::azure::SpanArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum DaemonCommand {
    /// Write simulated gateway traffic in real time (with incidents on a
    /// schedule) into a folder the daemon can watch.
    Live(LiveArgs),
}

#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// Instance folder to write (logs/ApiManagementGatewayLogs.ndjson).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Data seconds per real second (60: a minute of traffic per second).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Requests per minute of data, over all operations.
    #[arg(long, default_value_t = 600)]
    pub rate: u32,
    /// Operations (6 named; more are numbered).
    #[arg(long, default_value_t = 6)]
    pub ops: usize,
    /// History written at once as the baseline (data time).
    #[arg(long, default_value = "60m")]
    pub backlog: String,
    /// First 5xx incident on inventory-api/check-stock this long after start (data time).
    #[arg(long, default_value = "10m")]
    pub incident_after: String,
    /// Incidents repeat this often (0s: once).
    #[arg(long, default_value = "60m")]
    pub incident_every: String,
    /// Each incident lasts this long (0s: no incidents).
    #[arg(long, default_value = "5m")]
    pub incident_for: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the backlog and exit.
    #[arg(long)]
    pub backlog_only: bool,
}

fn duration(flag: &str, v: &str) -> anyhow::Result<Duration> {
    config::parse_duration(v).with_context(|| {
        format!("--{flag} `{v}` is not a duration: write e.g. 500ms, 15s, 2m, 4h, 1d")
    })
}

fn init_logging(verbose: bool) {
    let level = if verbose {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .try_init();
}

/// The validated configuration: file (if any), then command-line flags.
pub fn resolve(args: &DaemonArgs) -> anyhow::Result<config::DaemonConfig> {
    let mut cfg = match &args.config {
        Some(p) => config::load(p)?,
        None => config::DaemonConfig::default(),
    };
    cfg.paths.extend(args.paths.iter().cloned());
    resolve_azure(args, &mut cfg.azure)?;
    if cfg.paths.is_empty() && cfg.azure.is_empty() {
        anyhow::bail!(
            "nothing to watch: give instance folders or log files (apimedic daemon PATH...), a live instance (--azure ID, --subscription S, --all), or [sources] paths / [[instances]] in --config"
        );
    }
    for p in &cfg.paths {
        if !p.exists() {
            anyhow::bail!("{} does not exist: check the path", p.display());
        }
    }
    if let Some(d) = &args.state_dir {
        cfg.state_dir = d.clone();
    }
    if let Some(l) = &args.listen {
        l.parse::<std::net::SocketAddr>().map_err(|_| {
            anyhow::anyhow!(
                "--listen `{l}` is not an address: write host:port, e.g. 127.0.0.1:9187"
            )
        })?;
        cfg.listen = Some(l.clone());
    }
    if let Some(t) = &args.tick {
        cfg.tick = duration("tick", t)?.max(Duration::from_millis(100));
    }
    if let Some(u) = &args.alertmanager {
        config::check_url(u).map_err(|e| anyhow::anyhow!("--alertmanager {e}"))?;
        cfg.add_sink("alertmanager", config::Target::Alertmanager(u.clone()));
    }
    if let Some(u) = &args.webhook {
        config::check_url(u).map_err(|e| anyhow::anyhow!("--webhook {e}"))?;
        cfg.add_sink("webhook", config::Target::Webhook(u.clone()));
    }
    if cfg.sinks.is_empty() {
        cfg.add_sink("stdout", config::Target::Stdout);
    }
    config::finish_links(&mut cfg);
    Ok(cfg)
}

/// The live-Azure flags merged into the config's `[azure]`/`[[instances]]`.
fn resolve_azure(args: &DaemonArgs, w: &mut daemon::azure::AzureWatch) -> anyhow::Result<()> {
    let a = &args.azure;
    if a.save.is_some() {
        anyhow::bail!(
            "--save is for one read (apimedic diagnose --azure ... --save DIR); the daemon records configuration history in --state-dir"
        );
    }
    if a.history_dir.is_some() {
        anyhow::bail!(
            "--history-dir: the daemon records configuration history in --state-dir (read it with apimedic history --history-dir STATE_DIR)"
        );
    }
    if let Some(t) = a.target()? {
        w.instances.push((String::new(), t));
        // The flags' limits apply to what the flags name.
        let live = a.options(crate::azure::pull::Span {
            start: chrono::Utc::now() - chrono::Duration::hours(1),
            end: chrono::Utc::now(),
        })?;
        w.budget = live.arm.budget;
        w.concurrency = live.arm.concurrency;
    }
    if let Some(s) = &a.sign_in {
        w.sign_in = Some(crate::azure::SignIn::parse(s).with_context(|| {
            format!(
                "--sign-in {s}: use one of {}",
                crate::azure::SignIn::ALL
                    .map(crate::azure::SignIn::name)
                    .join(", ")
            )
        })?);
    }
    if let Some(t) = &a.tenant {
        w.tenant = Some(t.clone());
    }
    if let Some(i) = &args.azure_interval {
        w.interval = duration("azure-interval", i)?.max(Duration::from_secs(1));
    }
    let (since, until) = (args.span.since.as_deref(), args.span.until.as_deref());
    if since.is_some() || until.is_some() {
        let now = chrono::Utc::now();
        let span = super::azure::span(since, until, now)?;
        let rolling = until.is_none() && since.and_then(config::parse_duration).is_some();
        w.span = if rolling {
            daemon::azure::WatchSpan::Last((span.end - span.start).to_std().unwrap_or_default())
        } else {
            daemon::azure::WatchSpan::Fixed(span)
        };
    }
    Ok(())
}

pub fn run(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.verbose);
    if let Some(DaemonCommand::Live(l)) = args.command {
        return run_live(l);
    }
    let cfg = resolve(&args)?;
    if args.once {
        let summary = daemon::once(&cfg)?;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(signals(shutdown.clone()));
        daemon::run(cfg, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_live(l: LiveArgs) -> anyhow::Result<ExitCode> {
    let cfg = live::LiveConfig {
        out: l.out,
        speed: l.speed,
        rate: l.rate,
        ops: l.ops.max(1),
        backlog: duration("backlog", &l.backlog)?,
        incident_after: duration("incident-after", &l.incident_after)?,
        incident_every: duration("incident-every", &l.incident_every)?,
        incident_for: duration("incident-for", &l.incident_for)?,
        seed: l.seed,
        backlog_only: l.backlog_only,
    };
    run_live_config(cfg)
}

/// Writes the live feed until SIGTERM/SIGINT (`daemon live` and `simulate --live`).
pub(crate) fn run_live_config(cfg: live::LiveConfig) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(signals(shutdown.clone()));
        live::run(cfg, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("Cannot install signal handlers; stop the daemon with SIGKILL.");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down."),
        _ = int.recv() => tracing::info!("SIGINT: shutting down."),
    }
    shutdown.cancel();
}
