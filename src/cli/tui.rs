//! `apimedic tui`: the interactive dashboard over exported data or the demo.

use crate::{playbook, tui};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Default, clap::Args)]
pub struct TuiArgs {
    /// A folder (or files) of exported gateway data, recognised by content.
    /// None: the built-in demo.
    #[arg(value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// Hide every action: no remediation dialog, no approve or reject keys.
    #[arg(long)]
    pub readonly: bool,
    /// A folder of playbooks to use instead of the built-in ones.
    #[arg(long)]
    pub playbooks: Option<PathBuf>,
    /// Re-read the folder every SECS seconds: a live source such as the
    /// logs `apimedic simulate --live` or a log shipper is appending to.
    #[arg(long, value_name = "SECS")]
    pub refresh: Option<f64>,
    /// Who answers in the chat pane (`:chat`, `a`): offline unless a model
    /// is configured, as for `apimedic ask` and `apimedic chat`.
    #[command(flatten)]
    pub llm: crate::llm::LlmOptions,
    /// Read an instance live from Azure (with --refresh: re-read it).
    #[command(flatten)]
    pub azure: super::azure::AzureArgs,
    #[command(flatten)]
    pub span: super::azure::SpanArgs,
    /// A config file whose `[[instances]]` (named live instances, as for
    /// the daemon) the TUI switches between with `:ctx NAME`.
    #[arg(long, value_name = "FILE", help_heading = "Live Azure")]
    pub config: Option<PathBuf>,
}

pub fn run(args: TuiArgs) -> anyhow::Result<ExitCode> {
    // Fail before taking over the terminal for the mistakes we can see now.
    if let Some(missing) = args.paths.iter().find(|p| !p.exists()) {
        anyhow::bail!(
            "{} does not exist; give a folder of exported gateway data, or no path for the built-in demo",
            missing.display()
        );
    }
    let playbooks = match &args.playbooks {
        Some(dir) => playbook::Playbooks::load_dir(dir)?,
        None => playbook::Playbooks::built_in(),
    };
    // Named instances (a config file) or the instances a subscription or
    // --all finds: the contexts `:ctx` switches between.
    let mut contexts: Vec<(String, super::azure::Target)> = Vec::new();
    if let Some(file) = &args.config {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        contexts = crate::azure::target::instances_from_toml(&file.display().to_string(), &text)
            .map_err(anyhow::Error::msg)?;
        if contexts.is_empty() {
            anyhow::bail!("{}: no [[instances]] to show", file.display());
        }
        if args.azure.is_live() {
            anyhow::bail!("give --config with [[instances]] or a live target, not both");
        }
    } else if args.azure.is_live()
        && !matches!(args.azure.target()?, Some(super::azure::Target::Service(_)))
    {
        for id in args.azure.discover()? {
            let t = super::azure::Target::Service(
                crate::azure::pull::ServiceId::parse(&id).map_err(anyhow::Error::msg)?,
            );
            contexts.push((id.rsplit('/').next().unwrap_or(&id).to_string(), t));
        }
        if contexts.is_empty() {
            anyhow::bail!(
                "no API Management instance found for {}",
                args.azure
                    .target()?
                    .map(|t| t.describe())
                    .unwrap_or_default()
            );
        }
    }
    let source = if let Some((name, _)) = contexts.first() {
        name.clone()
    } else if let Some(t) = args.azure.target()? {
        format!("azure {}", t.describe())
    } else if args.paths.is_empty() {
        "demo".to_string()
    } else {
        let names: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        names.join(" ")
    };
    let assistant = crate::llm::Assistant::from_options(&args.llm)?;
    let engine = tui::chat::engine_label(&assistant, args.llm.model.as_deref());
    let paths = args.paths;
    let live = args.azure.is_live() || !contexts.is_empty();
    let rows = if paths.is_empty() {
        crate::collect::rows::RowSource::Memory(std::sync::Arc::new(crate::simulate::demo_files()))
    } else {
        crate::collect::rows::RowSource::Paths(paths.clone())
    };
    // One live service: the approve key executes there (a subscription or
    // fleet target shows data but has no single service to act on).
    let remediation = match args.azure.target()? {
        Some(crate::azure::target::Target::Service(svc))
            if !args.readonly && contexts.is_empty() =>
        {
            Some(live_remediation(&svc.id())?)
        }
        _ => None,
    };
    let options = tui::Options {
        source,
        readonly: args.readonly,
        theme: tui::theme::Theme::from_env(),
        playbooks,
        refresh: match args.refresh {
            Some(s) if s.is_finite() && s >= 0.5 => Some(std::time::Duration::from_secs_f64(s)),
            Some(s) => anyhow::bail!("--refresh {s}: give a number of seconds, at least 0.5"),
            None => None,
        },
        assistant,
        engine,
        // Gateway logs of a live instance are in Log Analytics, not here
        // (before, a live TUI showed the demo's rows).
        rows: (!live).then_some(rows),
        // The one state directory `apimedic remediate log` reads too.
        state_dir: Some(crate::audit::state_dir(None)),
        contexts: contexts.iter().map(|(n, _)| n.clone()).collect(),
        context: Default::default(),
        live: remediation,
    };
    if !contexts.is_empty() {
        if !paths.is_empty() {
            anyhow::bail!(
                "give exported files or a live target (--azure, --subscription, --all, --config), not both"
            );
        }
        let (azure, span) = (args.azure, args.span);
        let shown = options.context.clone();
        tui::run(
            Box::new(move || {
                let i = shown.load(std::sync::atomic::Ordering::Relaxed);
                let (_, t) = contexts
                    .get(i)
                    .ok_or_else(|| anyhow::anyhow!("no context {i}"))?;
                let mut one = azure.for_target(t);
                one.quiet = true;
                Ok(one.load_one(&span)?.unwrap_or_default())
            }),
            options,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.azure.is_live() {
        if !paths.is_empty() {
            anyhow::bail!(
                "give exported files or a live target (--azure, --subscription, --all), not both"
            );
        }
        let (mut azure, span) = (args.azure, args.span);
        // The screen is the TUI's: no progress line on stderr.
        azure.quiet = true;
        tui::run(
            Box::new(move || Ok(azure.load_one(&span)?.unwrap_or_default())),
            options,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    tui::run(Box::new(move || super::load(&paths)), options)?;
    Ok(ExitCode::SUCCESS)
}

/// What the approve key executes against when the dashboard shows one live
/// APIM service: ARM (`APIMEDIC_ARM_URL` in tests), the shared Azure
/// credential, the audit log in the state directory.
pub fn live_remediation(service: &str) -> anyhow::Result<tui::remedy::Live> {
    Ok(tui::remedy::Live {
        service: service.to_string(),
        arm_base: crate::remediate::arm::base_url(),
        tokens: super::remediate::token_source()?,
        state_dir: crate::audit::state_dir(None),
        poll: std::time::Duration::from_secs(15),
        max_wait: std::time::Duration::from_secs(3600),
    })
}
