//! `apimedic remediate`: turn a proposal into an exact plan (`plan`), run it
//! after a person approves (`apply`, with `--dry-run`), read and verify the
//! audit log (`log`), check the result on fresh data (`verify`) and restore
//! the before-state (`undo`).
//!
//! TARGET is an API Management service id (live: state is read from ARM and
//! writes go there) or a folder of exported data (offline: the plan prints
//! the exact `az` commands and ARM JSON, marked not executed). The proposal
//! comes from a diagnosis of the data (`--data`, the TARGET folder, or the
//! demo).

use crate::audit::{self, Kind, Log};
use crate::model::{Diagnosis, Finding, Proposal, Risk, Snapshot};
use crate::remediate::exec::{Approval, Engine, Outcome, Progress};
use crate::remediate::plan::{self, Facts, Plan, PlanError, Resource, ServiceId};
use crate::remediate::render::{az_commands, render, risk_word};
use crate::remediate::{TokenSource, autonomy, exec, verify};
use crate::{analyze, playbook};
use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct RemediateArgs {
    #[command(subcommand)]
    pub command: RemediateCommand,
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// The state directory holding the audit log (default
    /// $APIMEDIC_STATE_DIR, else $XDG_STATE_HOME/apimedic, else ~/.local/state/apimedic).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// A folder of playbooks to use instead of the built-in ones.
    #[arg(long)]
    pub playbooks: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct Target {
    /// The proposal id (from `apimedic diagnose`, e.g. 1f2e3d4c5b6a7988-1).
    pub id: String,
    /// An API Management service id (/subscriptions/…/Microsoft.ApiManagement/service/NAME)
    /// to act on live, or a folder of exported data to plan offline.
    pub target: Option<String>,
    /// The APIM service id (same as giving it as TARGET).
    #[arg(long)]
    pub azure: Option<String>,
    /// Exported data the proposal was diagnosed from (with a live TARGET).
    /// Without it a live TARGET is read through the azure loader, as
    /// `apimedic diagnose --azure ID` reads it.
    #[arg(long = "data", num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// The span the live read covers (no --data).
    #[command(flatten)]
    pub span: super::azure::SpanArgs,
}

#[derive(Debug, Subcommand)]
pub enum RemediateCommand {
    /// Print the exact plan for a proposal (no change is made).
    Plan {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value = "text")]
        format: OutFormat,
        #[command(flatten)]
        common: Common,
    },
    /// Show the plan, ask a person to approve it, execute it against ARM,
    /// audit it and check the result.
    Apply {
        #[command(flatten)]
        target: Target,
        /// Check everything and run ARM what-if where it exists; never write.
        #[arg(long)]
        dry_run: bool,
        /// Approve without the prompt: the plan hash (or its first 12+ digits)
        /// shown by `remediate plan`. Refused if the plan has changed since.
        #[arg(long)]
        approve: Option<String>,
        /// Apply even though the audit log shows this proposal applied already.
        #[arg(long)]
        again: bool,
        /// Run under an autonomy policy file instead of a person's approval
        /// (for the daemon): only what the file allows, within its limits.
        #[arg(long, requires = "policy")]
        autonomous: bool,
        /// The autonomy policy file (TOML).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Fresh data to re-diagnose after the change (verification).
        #[arg(long = "verify-data", num_args = 1..)]
        verify_data: Vec<PathBuf>,
        /// Follow a long-running operation at most this long (then hand back its id).
        #[arg(long, default_value = "60m")]
        wait: String,
        /// Poll interval when ARM gives no Retry-After.
        #[arg(long, default_value = "15s")]
        poll: String,
        /// Keep retrying while another operation runs on the resource (409) this long.
        #[arg(long, default_value = "2m")]
        busy_wait: String,
        #[command(flatten)]
        common: Common,
    },
    /// Restore the before-state of an applied plan (by its audit id).
    Undo {
        /// The audit id of the apply (from `apimedic remediate log`).
        audit_id: String,
        #[arg(long)]
        dry_run: bool,
        /// Approve without the prompt: the undo plan's hash.
        #[arg(long)]
        approve: Option<String>,
        #[arg(long, default_value = "60m")]
        wait: String,
        #[arg(long, default_value = "15s")]
        poll: String,
        #[arg(long, default_value = "2m")]
        busy_wait: String,
        #[command(flatten)]
        common: Common,
    },
    /// Re-diagnose fresh data and say whether the finding an apply targeted cleared.
    Verify {
        /// The audit id of the apply.
        audit_id: String,
        /// Fresh exported data (logs, metrics, configuration).
        #[arg(required = true)]
        data: Vec<PathBuf>,
        /// Judge the last this-long of the fresh data (default: the plan's window).
        #[arg(long)]
        window: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List the audit log and verify its hash chain.
    Log {
        #[arg(long, value_enum, default_value = "text")]
        format: OutFormat,
        #[command(flatten)]
        common: Common,
    },
}

pub fn run(args: RemediateArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RemediateCommand::Plan {
            target,
            format,
            common,
        } => plan_cmd(&target, format, &common),
        RemediateCommand::Apply {
            target,
            dry_run,
            approve,
            again,
            autonomous,
            policy,
            verify_data,
            wait,
            poll,
            busy_wait,
            common,
        } => {
            let opts = ApplyOptions {
                dry_run,
                approve,
                again,
                policy: if autonomous { policy } else { None },
                verify_data,
                timing: Timing::parse(&wait, &poll, &busy_wait)?,
            };
            apply_cmd(&target, &opts, &common)
        }
        RemediateCommand::Undo {
            audit_id,
            dry_run,
            approve,
            wait,
            poll,
            busy_wait,
            common,
        } => undo_cmd(
            &audit_id,
            dry_run,
            approve.as_deref(),
            Timing::parse(&wait, &poll, &busy_wait)?,
            &common,
        ),
        RemediateCommand::Verify {
            audit_id,
            data,
            window,
            common,
        } => verify_cmd(&audit_id, &data, window.as_deref(), &common),
        RemediateCommand::Log { format, common } => log_cmd(format, &common),
    }
}

/// Exit code when a plan cannot run (failed check, refused, stale).
const NOT_DONE: u8 = 3;

struct Timing {
    wait: Duration,
    poll: Duration,
    busy: Duration,
}

impl Timing {
    fn parse(wait: &str, poll: &str, busy: &str) -> anyhow::Result<Timing> {
        let d = |s: &str, flag: &str| {
            let ms = s
                .trim()
                .strip_suffix("ms")
                .and_then(|n| n.parse::<f64>().ok())
                .map(|n| n / 1000.0);
            ms.or_else(|| super::parse_relative(s))
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| Duration::from_secs_f64(v.min(86_400.0)))
                .with_context(|| format!("{flag} `{s}` is not a duration (500ms, 15s, 2m, 1h)"))
        };
        Ok(Timing {
            wait: d(wait, "--wait")?,
            poll: d(poll, "--poll")?.max(Duration::from_millis(100)),
            busy: d(busy, "--busy-wait")?,
        })
    }
}

struct ApplyOptions {
    dry_run: bool,
    approve: Option<String>,
    again: bool,
    policy: Option<PathBuf>,
    verify_data: Vec<PathBuf>,
    timing: Timing,
}

/// Where the plan's state comes from.
enum Mode {
    Live(ServiceId),
    Offline(ServiceId),
}

/// The diagnosis the proposal comes from.
struct Source {
    snapshot: Snapshot,
    diagnosis: Diagnosis,
    mode: Mode,
}

fn playbooks(common: &Common) -> anyhow::Result<playbook::Playbooks> {
    Ok(match &common.playbooks {
        Some(dir) => playbook::Playbooks::load_dir(dir)?,
        None => playbook::Playbooks::built_in(),
    })
}

fn is_service_id(s: &str) -> bool {
    s.trim_start()
        .to_ascii_lowercase()
        .starts_with("/subscriptions/")
}

fn source(t: &Target, common: &Common) -> anyhow::Result<Source> {
    let mut paths = t.data.clone();
    let mut live = t.azure.clone();
    if let Some(target) = &t.target {
        if is_service_id(target) {
            live = Some(target.clone());
        } else {
            paths.insert(0, PathBuf::from(target));
        }
    }
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        bail!(
            "{} does not exist; TARGET is an API Management service id or a folder of exported data",
            missing.display()
        );
    }
    let snapshot = match &live {
        // No export given: the proposal is diagnosed from the instance
        // itself, read live through the azure loader (configuration,
        // metrics, activity log, gateway logs where the diagnostic setting
        // sends them), as `apimedic diagnose --azure ID` reads it.
        Some(id) if paths.is_empty() => {
            let args = super::azure::AzureArgs {
                azure: Some(id.clone()),
                ..Default::default()
            };
            args.load_one(&t.span)?
                .with_context(|| format!("{id}: nothing was read from Azure"))?
        }
        _ => super::load(&paths)?,
    };
    let diagnosis =
        playbook::diagnose(&snapshot, &analyze::Options::default(), &playbooks(common)?);
    let mode = match live {
        Some(id) => Mode::Live(ServiceId::parse(&id).map_err(anyhow::Error::msg)?),
        None => {
            let id = snapshot
                .service
                .as_ref()
                .and_then(|s| s.resource_id.clone())
                .and_then(|id| ServiceId::parse(&id).ok());
            let name = snapshot
                .service
                .as_ref()
                .map(|s| s.name.clone())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "<service-name>".into());
            Mode::Offline(id.unwrap_or(ServiceId {
                id: format!(
                    "/subscriptions/<subscription-id>/resourceGroups/<resource-group>/providers/Microsoft.ApiManagement/service/{name}"
                ),
                subscription: "<subscription-id>".into(),
                resource_group: "<resource-group>".into(),
                name,
            }))
        }
    };
    Ok(Source {
        snapshot,
        diagnosis,
        mode,
    })
}

fn find_proposal<'a>(
    d: &'a Diagnosis,
    id: &str,
) -> anyhow::Result<(&'a Proposal, Option<&'a Finding>)> {
    let id = id.trim();
    let p = d.proposals.iter().find(|p| p.id == id).or_else(|| {
        let hits: Vec<&Proposal> = d
            .proposals
            .iter()
            .filter(|p| p.id.starts_with(id))
            .collect();
        (hits.len() == 1 && id.len() >= 6).then(|| hits[0])
    });
    let Some(p) = p else {
        let known: Vec<String> = d
            .proposals
            .iter()
            .filter(|p| !matches!(p.action, crate::model::Action::Manual { .. }))
            .take(12)
            .map(|p| format!("  {}  {}", p.id, p.title))
            .collect();
        if known.is_empty() {
            bail!("no proposal {id}: this diagnosis proposes no executable remediation");
        }
        bail!(
            "no proposal {id} in this diagnosis; executable proposals:\n{}",
            known.join("\n")
        );
    };
    let f = d.findings.iter().find(|f| f.id == p.finding);
    Ok((p, f))
}

/// The facts an offline plan uses: the exported configuration in ARM shapes, no ETags.
fn offline_facts(snapshot: &Snapshot, svc: &ServiceId, reads: &[String]) -> Facts {
    let mut facts = Facts::default();
    for path in reads {
        let k = plan::key(path);
        let body = if k == plan::key(&svc.id) {
            snapshot.service.as_ref().map(|s| {
                json!({"name": s.name, "location": s.location, "zones": s.zones,
                    "sku": {"name": s.sku.clone().unwrap_or_else(|| "Developer".into()), "capacity": s.capacity.unwrap_or(1)},
                    "properties": {}})
            })
        } else if k.ends_with("/policies/policy") {
            snapshot
                .policies
                .iter()
                .find(|p| {
                    svc.policy(&p.scope)
                        .map(|x| plan::key(&x) == k)
                        .unwrap_or(false)
                })
                .map(|p| json!({"properties": {"format": "rawxml", "value": p.xml}}))
        } else if k.contains("/networksecuritygroups/") {
            snapshot
                .nsgs
                .iter()
                .find(|n| k.ends_with(&format!("/{}", n.name.to_ascii_lowercase())))
                .map(|n| {
                    let rules: Vec<Value> = n
                        .rules
                        .iter()
                        .map(|r| json!({"name": r.name, "properties": {"priority": r.priority,
                            "direction": format!("{:?}", r.direction), "access": format!("{:?}", r.access)}}))
                        .collect();
                    json!({"name": n.name, "properties": {"securityRules": rules}})
                })
        } else {
            continue;
        };
        facts.insert(Resource {
            path: path.clone(),
            etag: None,
            body,
        });
    }
    facts
}

/// The token for ARM writes (see [`crate::remediate::token_source`]).
pub fn token_source() -> anyhow::Result<Arc<dyn TokenSource>> {
    crate::remediate::token_source()
}

fn engine(
    common: &Common,
    timing: &Timing,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Engine> {
    let arm = crate::remediate::arm::Arm::new(&crate::remediate::arm::base_url(), token_source()?)
        .map_err(anyhow::Error::msg)?;
    let log = Log::new(&audit::state_dir(common.state_dir.as_deref()));
    let mut e = Engine::new(arm, log);
    e.principal = rt.block_on(e.arm.principal());
    e.poll = timing.poll;
    e.max_wait = timing.wait;
    e.busy_wait = timing.busy;
    Ok(e)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn plan_for(
    src: &Source,
    id: &str,
    engine: Option<(&Engine, &tokio::runtime::Runtime)>,
) -> anyhow::Result<Plan> {
    let (proposal, finding) = find_proposal(&src.diagnosis, id)?;
    let svc = match &src.mode {
        Mode::Live(s) | Mode::Offline(s) => s,
    };
    let reads = plan::reads(proposal, svc, &src.snapshot).map_err(plan_error)?;
    let facts = match (&src.mode, engine) {
        (Mode::Live(_), Some((e, rt))) => rt
            .block_on(e.facts(&reads))
            .map_err(|err| anyhow::anyhow!("cannot read the live state: {err}"))?,
        _ => offline_facts(&src.snapshot, svc, &reads),
    };
    let mut plan =
        plan::build(proposal, finding, &src.snapshot, svc, &facts).map_err(plan_error)?;
    if !facts.live {
        let managed = src.snapshot.autoscale.iter().find(|a| {
            a.target_resource.as_deref().is_some_and(|t| {
                plan::key(t) == plan::key(&svc.id)
                    || t.to_ascii_lowercase()
                        .ends_with(&format!("/{}", svc.name.to_ascii_lowercase()))
            }) && a.enabled != Some(false)
        });
        if plan.action == "scale_out"
            && let Some(a) = managed
        {
            let target = plan
                .verify
                .expect
                .first()
                .map(|e| e.value.to_string())
                .unwrap_or_default();
            plan.warnings.push(format!(
                "autoscale setting {} manages this service and would undo a manual change: instead run `az monitor autoscale update --resource-group {} --name {} --min-count {target}`",
                a.name, svc.resource_group, a.name
            ));
            plan = plan.seal();
        }
    }
    Ok(plan)
}

fn plan_error(e: PlanError) -> anyhow::Error {
    anyhow::anyhow!("cannot plan: {e}")
}

fn plan_json(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(plan).unwrap_or(Value::Null);
    v["executed"] = json!(false);
    v["ready"] = json!(plan.ready());
    if !plan.live {
        v["az"] = json!(az_commands(plan));
    }
    v
}

fn print(s: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

fn plan_cmd(t: &Target, format: OutFormat, common: &Common) -> anyhow::Result<ExitCode> {
    let src = source(t, common)?;
    let rt = runtime()?;
    let eng = match &src.mode {
        Mode::Live(_) => Some(engine(common, &Timing::parse("1m", "15s", "0s")?, &rt)?),
        Mode::Offline(_) => None,
    };
    let plan = plan_for(&src, &t.id, eng.as_ref().map(|e| (e, &rt)))?;
    match format {
        OutFormat::Text => print(&render(&plan))?,
        OutFormat::Json => print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&plan_json(&plan))?
        ))?,
    }
    Ok(if plan.ready() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_DONE)
    })
}

/// Asks the person on the terminal (or stdin) to approve: the proposal id
/// typed back; `yes` is accepted only for low risk.
fn prompt(plan: &Plan) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    let low = plan.risk == Risk::Low;
    write!(
        err,
        "\nApply this {} risk plan to {}?\nType the proposal id ({}){} to approve; anything else cancels: ",
        risk_word(plan.risk),
        plan.service.rsplit('/').next().unwrap_or(""),
        plan.proposal,
        if low { " or `yes`" } else { "" }
    )?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let typed = line.trim();
    Ok(typed == plan.proposal || (low && typed.eq_ignore_ascii_case("yes")))
}

fn progress_printer() -> impl FnMut(Progress) + Send {
    move |p: Progress| {
        let accepted = matches!(p, Progress::Accepted { .. });
        eprintln!("{p}");
        if accepted {
            eprintln!("  (Ctrl-C stops watching; the operation continues in Azure)");
        }
    }
}

fn cancel_on_ctrl_c(rt: &tokio::runtime::Runtime) -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            t.cancel();
        }
    });
    token
}

fn reconcile(engine: &Engine, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    for r in rt.block_on(engine.reconcile())? {
        eprintln!(
            "reconciled audit entry {}: {} — {}",
            r.apply, r.status, r.message
        );
    }
    Ok(())
}

fn apply_cmd(t: &Target, opts: &ApplyOptions, common: &Common) -> anyhow::Result<ExitCode> {
    let src = source(t, common)?;
    let Mode::Live(svc) = &src.mode else {
        let plan = plan_for(&src, &t.id, None)?;
        print(&render(&plan))?;
        bail!(
            "this is exported data, not a live instance: nothing was executed. Give the service id as TARGET (with --data) to apply, or run the commands above by hand"
        );
    };
    let rt = runtime()?;
    let eng = engine(common, &opts.timing, &rt)?;
    reconcile(&eng, &rt)?;
    let surface = if opts.policy.is_some() {
        autonomy::SURFACE
    } else {
        "cli"
    };
    let entries = eng.log.read()?;
    let (proposal, _) = find_proposal(&src.diagnosis, &t.id)?;
    if !opts.again
        && let Some(prev) = exec::already_applied(&entries, &proposal.id)
    {
        eprintln!(
            "proposal {} was applied already (audit {} at {}); not applying it twice. Undo it with `apimedic remediate undo {}`, or pass --again after re-diagnosing.",
            proposal.id, prev.id, prev.entry.time, prev.id
        );
        return Ok(ExitCode::from(NOT_DONE));
    }
    if let Some(p) = exec::pending(&entries)
        .into_iter()
        .find(|p| p.entry.proposal.as_deref() == Some(proposal.id.as_str()))
    {
        eprintln!(
            "an apply of proposal {} is still in progress (audit {}): not starting another. It settles on a later run once Azure finishes it.",
            proposal.id, p.id
        );
        return Ok(ExitCode::from(NOT_DONE));
    }
    let policy = match &opts.policy {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the autonomy policy {}", p.display()))?;
            Some(autonomy::parse(&p.display().to_string(), &text).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let cancel = cancel_on_ctrl_c(&rt);
    let mut progress = progress_printer();
    for round in 0..3 {
        let plan = plan_for(&src, &t.id, Some((&eng, &rt)))?;
        eprint!("{}", render(&plan));
        if !plan.ready() {
            let bad: Vec<String> = plan
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            eng.record_refusal(
                Some(&plan),
                surface,
                &format!("precondition failed: {}", bad.join("; ")),
            )?;
            eprintln!("\nnot applied: precondition failed: {}", bad.join("; "));
            return Ok(ExitCode::from(NOT_DONE));
        }
        if opts.dry_run {
            let lines = rt.block_on(eng.whatif(svc, &plan));
            let msg = match &lines {
                Ok(l) if l.is_empty() => {
                    "no ARM what-if for this action; the checks above are the dry run".to_string()
                }
                Ok(l) => format!("ARM what-if:\n  {}", l.join("\n  ")),
                Err(e) => format!("ARM what-if failed: {e}"),
            };
            eprintln!("\n{msg}");
            let s = eng.record_dry_run(
                &plan,
                surface,
                &format!("dry run, nothing written. {}", msg.replace('\n', " ")),
            )?;
            eprintln!("dry run: nothing was written (audit {}).", s.id);
            return Ok(ExitCode::SUCCESS);
        }
        let how = if let Some(policy) = &policy {
            let now = chrono::Utc::now().timestamp_millis();
            match autonomy::decide(policy, &plan, now, &eng.log.read()?) {
                Ok(rule) => rule,
                Err(why) => {
                    let s = eng.record_refusal(
                        Some(&plan),
                        surface,
                        &format!("autonomy policy: {why}"),
                    )?;
                    eprintln!(
                        "\nnot applied: the autonomy policy does not allow it: {why} (audit {})",
                        s.id
                    );
                    return Ok(ExitCode::from(NOT_DONE));
                }
            }
        } else if let Some(h) = &opts.approve {
            let h = h.trim().to_ascii_lowercase();
            if h.len() < 12 || !plan.hash.starts_with(&h) {
                let s = eng.record_refusal(
                    Some(&plan),
                    surface,
                    &format!("--approve {h} does not match plan {}", &plan.hash[..12]),
                )?;
                eprintln!(
                    "\nnot applied: --approve names another plan; the plan is now {} (review it above) (audit {})",
                    &plan.hash[..12],
                    s.id
                );
                return Ok(ExitCode::from(NOT_DONE));
            }
            format!("--approve {}", &plan.hash[..12])
        } else {
            if !prompt(&plan)? {
                let s = eng.record_refusal(Some(&plan), surface, "not approved at the prompt")?;
                eprintln!("not approved: nothing was written (audit {}).", s.id);
                return Ok(ExitCode::from(NOT_DONE));
            }
            "typed the proposal id".to_string()
        };
        let approval = Approval {
            plan_hash: plan.hash.clone(),
            surface: surface.into(),
            how,
        };
        let outcome =
            rt.block_on(eng.apply(&plan, &approval, Kind::Apply, None, &mut progress, &cancel))?;
        match outcome {
            Outcome::Succeeded { audit, .. } => {
                eprintln!(
                    "\napplied: {} (audit {audit}); the re-read shows the planned state.",
                    plan.title
                );
                if !opts.verify_data.is_empty() {
                    return verify_with(&eng, &audit, &opts.verify_data, None, common);
                }
                eprintln!(
                    "Verify after {} minutes of fresh data: `apimedic remediate verify {audit} DATA`; undo: `apimedic remediate undo {audit}`.",
                    plan.verify.window_minutes
                );
                return Ok(ExitCode::SUCCESS);
            }
            Outcome::Failed { audit, error } => {
                eprintln!("\nfailed (audit {audit}): {error}");
                return Ok(ExitCode::from(NOT_DONE));
            }
            Outcome::Interrupted { audit, operation } => {
                match operation {
                    Some(op) => eprintln!(
                        "\nstopped watching (audit {audit}). The operation continues in Azure: {op}\nFollow it with `az rest --method get --url '{op}'`; the next `apimedic remediate` run reconciles the audit entry."
                    ),
                    None => eprintln!(
                        "\nstopped (audit {audit}); the next `apimedic remediate` run reconciles by reading the live state."
                    ),
                }
                return Ok(ExitCode::from(130));
            }
            Outcome::Stale { what, .. } => {
                eprintln!("\nlive state changed since the plan: {what}");
                if opts.approve.is_some() || policy.is_some() || round == 2 {
                    eprintln!("not applied: re-plan and approve the new plan.");
                    return Ok(ExitCode::from(NOT_DONE));
                }
                eprintln!("re-planning against the new state; approve again.\n");
            }
        }
    }
    Ok(ExitCode::from(NOT_DONE))
}

fn applied_plan(log: &Log, id: &str) -> anyhow::Result<(audit::Stored, Plan)> {
    let e = log.find(id)?;
    if !matches!(e.entry.kind, Some(Kind::Apply) | Some(Kind::Undo)) {
        bail!(
            "audit entry {} is a {:?} entry, not an apply; give the id of the apply (see `apimedic remediate log`)",
            e.id,
            e.entry.kind
        );
    }
    let plan: Plan = log
        .plan_of(&e)?
        .and_then(|v| serde_json::from_value(v).ok())
        .with_context(|| format!("audit entry {} holds no plan", e.id))?;
    Ok((e, plan))
}

fn undo_cmd(
    id: &str,
    dry_run: bool,
    approve: Option<&str>,
    timing: Timing,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let eng = engine(common, &timing, &rt)?;
    reconcile(&eng, &rt)?;
    let (entry, applied) = applied_plan(&eng.log, id)?;
    let entries = eng.log.read()?;
    let settled = entries
        .iter()
        .filter(|x| x.entry.refers_to.as_deref() == Some(entry.id.as_str()))
        .any(|x| {
            matches!(
                (x.entry.kind, x.entry.status.as_str()),
                (Some(Kind::Result), "succeeded") | (Some(Kind::Reconcile), "applied" | "diverged")
            )
        });
    if !settled {
        bail!(
            "audit entry {} did not apply (see `apimedic remediate log`): nothing to undo",
            entry.id
        );
    }
    let cancel = cancel_on_ctrl_c(&rt);
    let mut progress = progress_printer();
    for _ in 0..3 {
        let plan = rt
            .block_on(eng.plan_undo(&applied))
            .map_err(|e| anyhow::anyhow!("cannot read the live state: {e}"))?;
        eprint!("{}", render(&plan));
        if !plan.ready() {
            let bad: Vec<String> = plan
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.detail.clone())
                .collect();
            eng.record_refusal(
                Some(&plan),
                "cli",
                &format!("undo refused: {}", bad.join("; ")),
            )?;
            eprintln!("\nnot undone: {}", bad.join("; "));
            return Ok(ExitCode::from(NOT_DONE));
        }
        if dry_run {
            let s = eng.record_dry_run(&plan, "cli", "undo dry run, nothing written")?;
            eprintln!("\ndry run: nothing was written (audit {}).", s.id);
            return Ok(ExitCode::SUCCESS);
        }
        let how = match approve {
            Some(h) if h.len() >= 12 && plan.hash.starts_with(&h.to_ascii_lowercase()) => {
                format!("--approve {}", &plan.hash[..12])
            }
            Some(_) => {
                eng.record_refusal(Some(&plan), "cli", "--approve does not match the undo plan")?;
                eprintln!(
                    "\nnot undone: --approve names another plan; the undo plan is {}",
                    &plan.hash[..12]
                );
                return Ok(ExitCode::from(NOT_DONE));
            }
            None => {
                if !prompt(&plan)? {
                    eng.record_refusal(Some(&plan), "cli", "undo not approved at the prompt")?;
                    eprintln!("not approved: nothing was written.");
                    return Ok(ExitCode::from(NOT_DONE));
                }
                "typed the proposal id".into()
            }
        };
        let approval = Approval {
            plan_hash: plan.hash.clone(),
            surface: "cli".into(),
            how,
        };
        match rt.block_on(eng.apply(
            &plan,
            &approval,
            Kind::Undo,
            Some(entry.id.clone()),
            &mut progress,
            &cancel,
        ))? {
            Outcome::Succeeded { audit, .. } => {
                eprintln!(
                    "\nundone (audit {audit}): the before-state of {} is restored.",
                    entry.id
                );
                return Ok(ExitCode::SUCCESS);
            }
            Outcome::Failed { audit, error } => {
                eprintln!("\nundo failed (audit {audit}): {error}");
                return Ok(ExitCode::from(NOT_DONE));
            }
            Outcome::Interrupted { audit, operation } => {
                eprintln!(
                    "\nstopped watching the undo (audit {audit}){}; the next run reconciles it.",
                    operation
                        .map(|o| format!("; the operation continues in Azure: {o}"))
                        .unwrap_or_default()
                );
                return Ok(ExitCode::from(130));
            }
            Outcome::Stale { what, .. } => {
                eprintln!("\nlive state changed: {what}");
                if approve.is_some() {
                    return Ok(ExitCode::from(NOT_DONE));
                }
            }
        }
    }
    Ok(ExitCode::from(NOT_DONE))
}

fn verify_cmd(
    id: &str,
    data: &[PathBuf],
    window: Option<&str>,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let log = Log::new(&audit::state_dir(common.state_dir.as_deref()));
    let minutes = window
        .map(|w| {
            super::parse_relative(w)
                .filter(|s| *s >= 60.0)
                .map(|s| (s / 60.0).round() as u32)
                .with_context(|| {
                    format!("--window `{w}` is not a duration of a minute or more (15m, 1h)")
                })
        })
        .transpose()?;
    verify_log(&log, id, data, minutes, common)
}

fn verify_with(
    eng: &Engine,
    id: &str,
    data: &[PathBuf],
    minutes: Option<u32>,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    verify_log(&eng.log, id, data, minutes, common)
}

fn verify_log(
    log: &Log,
    id: &str,
    data: &[PathBuf],
    minutes: Option<u32>,
    common: &Common,
) -> anyhow::Result<ExitCode> {
    let (entry, plan) = applied_plan(log, id)?;
    if let Some(missing) = data.iter().find(|p| !p.exists()) {
        bail!("{} does not exist", missing.display());
    }
    let fresh = super::load(data)?;
    let (verdict, message) =
        verify::on_fresh(&plan, &entry.id, &fresh, &playbooks(common)?, minutes);
    log.append(audit::Entry {
        kind: Some(Kind::Verify),
        status: verdict.status().into(),
        user: audit::os_user(),
        surface: "cli".into(),
        proposal: Some(plan.proposal.clone()),
        finding: Some(plan.finding.clone()),
        target: Some(plan.service.clone()),
        refers_to: Some(entry.id.clone()),
        message: message.clone(),
        ..audit::Entry::default()
    })?;
    eprintln!("{message}");
    Ok(match verdict {
        verify::Verdict::Cleared { .. } => ExitCode::SUCCESS,
        verify::Verdict::NotCleared { .. } => ExitCode::from(1),
        verify::Verdict::CannotTell { .. } => ExitCode::from(NOT_DONE),
    })
}

fn log_cmd(format: OutFormat, common: &Common) -> anyhow::Result<ExitCode> {
    let log = Log::new(&audit::state_dir(common.state_dir.as_deref()));
    let (entries, v) = log.verify()?;
    match format {
        OutFormat::Json => {
            let out = json!({"path": log.path(), "verified": v.broken.is_empty(), "head": v.head,
                "broken": v.broken, "torn_tail": v.torn_tail, "entries": entries});
            print(&format!("{}\n", serde_json::to_string_pretty(&out)?))?;
        }
        OutFormat::Text => {
            let mut s = String::new();
            use std::fmt::Write as _;
            if entries.is_empty() && v.broken.is_empty() {
                let _ = writeln!(s, "no audit entries in {}", log.path().display());
            }
            for e in &entries {
                let x = &e.entry;
                let _ = writeln!(
                    s,
                    "{} #{:<3} {} {:<9} {:<12} {:<14} {}{}{}",
                    e.id,
                    x.seq,
                    x.time,
                    x.kind
                        .map(|k| format!("{k:?}").to_ascii_lowercase())
                        .unwrap_or_default(),
                    x.status,
                    x.surface,
                    x.user,
                    x.principal
                        .as_deref()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default(),
                    x.proposal
                        .as_deref()
                        .map(|p| format!(" proposal {p}"))
                        .unwrap_or_default(),
                );
                if !x.message.is_empty() {
                    let _ = writeln!(s, "    {}", x.message);
                }
                if let Some(op) = &x.operation {
                    let _ = writeln!(s, "    operation {op}");
                }
            }
            if v.broken.is_empty() {
                let _ = writeln!(
                    s,
                    "chain intact: {} entries, head {}{}",
                    v.entries,
                    &v.head[..16.min(v.head.len())],
                    if v.torn_tail {
                        " (the last line was cut by a crash mid-write; not an entry)"
                    } else {
                        ""
                    }
                );
            } else {
                let _ = writeln!(s, "CHAIN BROKEN in {}:", log.path().display());
                for b in &v.broken {
                    let _ = writeln!(s, "  {b}");
                }
            }
            print(&s)?;
        }
    }
    Ok(if v.broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// For other surfaces: the path of the audit log a state directory holds.
pub fn audit_path(state_dir: Option<&Path>) -> PathBuf {
    audit::state_dir(state_dir).join(audit::FILE)
}
