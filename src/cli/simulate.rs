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
    #[arg(long, value_name = "NAME", required_unless_present_any = ["list", "fixtures", "live"])]
    pub scenario: Option<String>,
    /// Output folder (created; must be empty unless --force).
    #[arg(long, value_name = "DIR", required_unless_present_any = ["list", "fixtures"])]
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
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
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
        let cfg = crate::daemon::live::LiveConfig {
            out: dir,
            speed: args.speed,
            seed: args.seed,
            ..crate::daemon::live::LiveConfig::default()
        };
        return super::daemon::run_live_config(cfg);
    }
    if let Some(root) = &args.fixtures {
        for s in Scenario::ALL {
            let (seed, scale, minutes) = s.fixture_params();
            let (summary, _) = write_instance(&root.join(s.name()), s, seed, scale, minutes, true)?;
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
        args.seed,
        args.scale,
        args.minutes,
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
    seed: u64,
    scale: f64,
    minutes: u32,
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
    let (files, truth) = simulate::generate_with_truth(scenario, seed, scale, minutes);
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
