//! `apimedic simulate`: writes a simulated instance (real export formats,
//! one injected incident) and its `expected.json` into a folder. The files
//! come from `simulate::generate`; this is only the writing edge.

use crate::simulate::{self, Scenario};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Scenario to generate (see --list).
    #[arg(long, value_name = "NAME", required_unless_present_any = ["list", "fixtures", "live", "serve_azure"])]
    pub scenario: Option<String>,
    /// Output folder (created; must be empty unless --force).
    #[arg(long, value_name = "DIR", required_unless_present_any = ["list", "fixtures", "serve_azure"])]
    pub out: Option<PathBuf>,
    /// Random seed; the same seed gives the same bytes. Also picks the day
    /// the data ends on (13:00 UTC, 2026-03-02 plus seed mod 7 days).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Traffic multiplier: 1.0 is about 660 requests per minute at the daily peak.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Minutes of data, ending at the fixed instant (at least 60).
    #[arg(long, default_value_t = 360)]
    pub minutes: u32,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
    /// Replace the simulator's files in an existing output folder.
    #[arg(long)]
    pub force: bool,
    /// Write the gateway logs in this shape instead of the scenario's own:
    /// la-ndjson (Log Analytics rows, logs/ApiManagementGatewayLogs.ndjson),
    /// la-ndjson-gz, storage (PT1H.json blobs), az-cli, query-tables.
    #[arg(long, value_name = "SHAPE", value_parser = parse_shape)]
    pub log_shape: Option<simulate::LogShape>,
    /// Write traffic in real time into --out (logs/ApiManagementGatewayLogs.ndjson)
    /// with a 5xx incident on a schedule, until interrupted; the feed
    /// `apimedic daemon` is shown and tested on (`apimedic daemon live` has
    /// every knob).
    #[arg(long, conflicts_with_all = ["scenario", "fixtures", "list"])]
    pub live: bool,
    /// With --live: data seconds per real second (60: a minute per second).
    #[arg(long, default_value_t = 1.0, requires = "live")]
    pub speed: f64,
    /// Regenerate every scenario's fixture into DIR/<scenario> with the
    /// committed parameters (fixtures/scenarios).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["scenario", "out"])]
    pub fixtures: Option<PathBuf>,
    /// Serve the simulated instance as a stand-in for Azure on
    /// 127.0.0.1:PORT (0: any free port) until interrupted: point
    /// `apimedic diagnose --azure ...` at it with the variables it prints.
    /// For trying live mode, tests and benchmarks; loopback only.
    #[arg(long, value_name = "PORT", conflicts_with_all = ["out", "fixtures", "live", "list"])]
    pub serve_azure: Option<u16>,
    /// With --serve-azure: this many instances (copies renamed fleet-apim-NN).
    #[arg(long, default_value_t = 1, requires = "serve_azure")]
    pub instances: usize,
    /// With --serve-azure: add this many APIs to every instance...
    #[arg(long, default_value_t = 0, requires = "serve_azure")]
    pub bulk_apis: usize,
    /// ...each with this many operations (and a policy on each).
    #[arg(long, default_value_t = 10, requires = "serve_azure")]
    pub bulk_ops: usize,
    /// With --serve-azure: items per list page (0: one page).
    #[arg(long, default_value_t = 0, requires = "serve_azure")]
    pub page_size: usize,
    /// With --serve-azure: every instance gets a diagnostic setting sending
    /// GatewayLogs to one Log Analytics workspace with this customerId
    /// (serve the logs with fixtures/kql/serve_kql.py at APIMEDIC_LOGS_URL).
    #[arg(long, value_name = "GUID", requires = "serve_azure")]
    pub logs_workspace: Option<String>,
}

/// The stand-in's test service principal (loopback only, never a real one).
pub const STANDIN_TENANT: &str = "00000000-0000-0000-0000-00000000a2d0";
pub const STANDIN_CLIENT: &str = "00000000-0000-0000-0000-00000000c11e";
pub const STANDIN_SECRET: &str = "standin-only-secret";

/// Serves a simulated fleet on loopback (see `SimulateArgs::serve_azure`).
fn serve_azure(args: &SimulateArgs, port: u16) -> anyhow::Result<ExitCode> {
    use crate::simulate::standin::{Config, StandIn, Store, bulk_apis, rename_instance};
    let scenario = match &args.scenario {
        Some(n) => Scenario::parse(n).with_context(|| format!("unknown scenario `{n}`"))?,
        None => Scenario::BackendOom,
    };
    if args.instances == 0 || args.instances > 500 {
        bail!("--instances: give 1 to 500");
    }
    let files = simulate::generate(
        scenario,
        args.seed,
        args.scale,
        args.minutes.max(simulate::MIN_MINUTES),
    );
    let mut store = Store::default();
    let mut fleet = vec![files.clone()];
    for i in 1..args.instances {
        fleet.push(rename_instance(
            &files,
            "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c",
            &format!("fleet-apim-{i:02}"),
        ));
    }
    for docs in &fleet {
        for (_, b) in docs {
            store.add_document(b);
        }
    }
    if args.bulk_apis > 0 {
        for id in store.service_ids() {
            for d in bulk_apis(&id, args.bulk_apis, args.bulk_ops) {
                store.add_document(&d);
            }
        }
    }
    drop(fleet);
    if let Some(guid) = &args.logs_workspace {
        for d in log_workspace_documents(&store.service_ids(), guid)? {
            store.add_document(&d);
        }
    }
    let ids = store.service_ids();
    let standin = StandIn::start(
        store,
        Config {
            page_size: args.page_size,
            tenant: STANDIN_TENANT.into(),
            client_id: STANDIN_CLIENT.into(),
            client_secret: Some(STANDIN_SECRET.into()),
            token_lifetime: 3600,
            ..Config::default()
        },
        (STANDIN_CERT, STANDIN_KEY),
        port,
    )
    .map_err(anyhow::Error::msg)?;
    let ca = std::env::temp_dir().join(format!("apimedic-standin-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, STANDIN_CA).with_context(|| format!("cannot write {}", ca.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# Azure stand-in for {} instance(s) of `{}`; set these, then run e.g.",
        ids.len(),
        scenario.name()
    )?;
    writeln!(
        out,
        "#   apimedic diagnose --azure {} --since 2026-03-01T00:00:00Z --until 2026-03-09T00:00:00Z",
        ids.first().map(String::as_str).unwrap_or("")
    )?;
    writeln!(out, "export APIMEDIC_ARM_URL={}", standin.arm_url)?;
    writeln!(out, "export AZURE_AUTHORITY_HOST={}", standin.login_url)?;
    writeln!(out, "export APIMEDIC_AZURE_CA_FILE={}", ca.display())?;
    writeln!(out, "export AZURE_TENANT_ID={STANDIN_TENANT}")?;
    writeln!(out, "export AZURE_CLIENT_ID={STANDIN_CLIENT}")?;
    writeln!(out, "export AZURE_CLIENT_SECRET={STANDIN_SECRET}")?;
    for id in &ids {
        writeln!(out, "# {id}")?;
    }
    out.flush()?;
    drop(out);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// A diagnostic setting per service sending GatewayLogs to one workspace
/// (in the first service's subscription), and that workspace, as ARM
/// documents.
fn log_workspace_documents(services: &[String], guid: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    if crate::collect::kql::LogsSource::parse(&format!("la:{guid}"), None).is_err() {
        bail!("--logs-workspace: `{guid}` is not a workspace customerId (a GUID)");
    }
    let sub = services
        .first()
        .and_then(|id| id.split('/').nth(2))
        .unwrap_or("00000000-0000-0000-0000-000000000000");
    let ws = format!(
        "/subscriptions/{sub}/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/apim-logs"
    );
    let mut out = vec![serde_json::to_vec(&serde_json::json!({
        "id": ws, "name": "apim-logs", "type": "Microsoft.OperationalInsights/workspaces",
        "location": "westeurope",
        "properties": {"customerId": guid.to_ascii_lowercase(), "provisioningState": "Succeeded",
                       "sku": {"name": "PerGB2018"}, "retentionInDays": 30}
    }))?];
    for id in services {
        out.push(serde_json::to_vec(&serde_json::json!({
            "id": format!("{id}/providers/microsoft.insights/diagnosticSettings/to-apim-logs"),
            "name": "to-apim-logs", "type": "Microsoft.Insights/diagnosticSettings",
            "properties": {"workspaceId": ws, "logAnalyticsDestinationType": "Dedicated",
                           "logs": [{"category": "GatewayLogs", "categoryGroup": null, "enabled": true}],
                           "metrics": [{"category": "AllMetrics", "enabled": true}]}
        }))?);
    }
    Ok(out)
}

/// Test-only TLS material of the stand-in's sign-in endpoint (fixtures/azure/tls).
const STANDIN_CERT: &[u8] = include_bytes!("../../fixtures/azure/tls/server.crt");
const STANDIN_KEY: &[u8] = include_bytes!("../../fixtures/azure/tls/server.key");
const STANDIN_CA: &[u8] = include_bytes!("../../fixtures/azure/tls/ca.crt");

fn parse_shape(s: &str) -> Result<simulate::LogShape, String> {
    use simulate::LogShape::*;
    Ok(match s {
        "la-ndjson" => LogAnalyticsNdjson,
        "la-ndjson-gz" => LogAnalyticsNdjsonGzip,
        "storage" => StorageGzip,
        "az-cli" => AzCli,
        "query-tables" => QueryTables,
        _ => {
            return Err(format!(
                "unknown log shape `{s}`; use la-ndjson, la-ndjson-gz, storage, az-cli or query-tables"
            ));
        }
    })
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Some(port) = args.serve_azure {
        return serve_azure(&args, port);
    }
    if args.list {
        for s in Scenario::ALL {
            writeln!(out, "{:<15} {}", s.name(), s.summary())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.live {
        let Some(dir) = args.out else {
            bail!("give --out DIR for the live feed");
        };
        let cfg = crate::simulate::live::LiveConfig {
            out: dir,
            speed: args.speed,
            seed: args.seed,
            ..crate::simulate::live::LiveConfig::default()
        };
        return super::daemon::run_live_config(cfg);
    }
    if let Some(root) = &args.fixtures {
        for s in Scenario::ALL {
            let (seed, scale, minutes) = s.fixture_params();
            let (summary, _) =
                write_instance(&root.join(s.name()), s, (seed, scale, minutes), None, true)?;
            writeln!(out, "{summary}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(name), Some(dir)) = (&args.scenario, &args.out) else {
        bail!("give --scenario NAME and --out DIR (or --list)");
    };
    let Some(scenario) = Scenario::parse(name) else {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        bail!("unknown scenario `{name}`: use one of {}", names.join(", "));
    };
    if !(args.scale.is_finite() && args.scale > 0.0) {
        bail!("--scale must be a positive number, got {}", args.scale);
    }
    if args.minutes < simulate::MIN_MINUTES {
        bail!(
            "--minutes must be at least {}, got {}",
            simulate::MIN_MINUTES,
            args.minutes
        );
    }
    let (summary, truth) = write_instance(
        dir,
        scenario,
        (args.seed, args.scale, args.minutes),
        args.log_shape,
        args.force,
    )?;
    writeln!(out, "{summary}")?;
    for i in &truth.incidents {
        writeln!(out, "  {} .. {}  {}", i.start, i.end, i.what)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Paths the simulator owns inside an output folder (removed by --force).
const OWNED: [&str; 6] = [
    "logs",
    "metrics",
    "config",
    "policies",
    "activity-log.json",
    "expected.json",
];

/// Writes one instance; returns a one-line summary and the ground truth.
fn write_instance(
    dir: &Path,
    scenario: Scenario,
    (seed, scale, minutes): (u64, f64, u32),
    shape: Option<simulate::LogShape>,
    force: bool,
) -> anyhow::Result<(String, simulate::Expected)> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}: check it is a folder", dir.display()))?;
        if entries.next().is_some() {
            if !force {
                bail!(
                    "{} is not empty: choose a new folder or add --force to replace the simulator's files there",
                    dir.display()
                );
            }
            for name in OWNED {
                let p = dir.join(name);
                if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                        .with_context(|| format!("cannot remove {}", p.display()))?;
                } else if p.is_file() {
                    std::fs::remove_file(&p)
                        .with_context(|| format!("cannot remove {}", p.display()))?;
                }
            }
        }
    }
    let shape = shape.unwrap_or(scenario.log_shape());
    let (files, truth) = simulate::generate_with_truth_as(scenario, seed, scale, minutes, shape);
    let mut bytes = 0usize;
    for (rel, data) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        std::fs::write(&path, data).with_context(|| format!("cannot write {}", path.display()))?;
        bytes += data.len();
    }
    let summary = format!(
        "{scenario}: wrote {} files ({:.1} MB) to {} (seed {seed}, scale {scale}, {minutes} minutes)",
        files.len(),
        bytes as f64 / 1e6,
        dir.display()
    );
    Ok((summary, truth))
}
