//! The live-Azure flags every surface takes (`--azure ID`, `--subscription
//! S [--resource-group RG] [--service NAME]`, `--all`, sign-in and limits,
//! `--save DIR`) and the one function that turns them into snapshots.

use crate::azure::arm::ArmOptions;
use crate::azure::credential::{CredentialOptions, SignIn};
use crate::azure::live::{self, LiveOptions};
use crate::azure::pull::{PullOptions, Span};
pub use crate::azure::target::Target;
use crate::model::{Snapshot, Timestamp};
use anyhow::{Context, bail};
use std::path::PathBuf;

/// The whole pull's time budget when none is given.
const DEFAULT_BUDGET: &str = "3m";
/// Requests in flight when none is given.
const DEFAULT_CONCURRENCY: usize = 8;

/// Read an instance live from Azure instead of exported files.
/// `Default` is what the command line gives with no flag (budget and
/// concurrency included), for callers that build one in code.
#[derive(Clone, Debug, clap::Args)]
pub struct AzureArgs {
    /// Read this API Management instance live from Azure: its resource id
    /// (/subscriptions/S/resourceGroups/RG/providers/Microsoft.ApiManagement/service/NAME).
    #[arg(long, value_name = "RESOURCE_ID", help_heading = "Live Azure")]
    pub azure: Option<String>,
    /// Read the instances of this subscription (all of them, or narrowed by
    /// --resource-group and --service), found through Azure Resource Graph.
    #[arg(long, value_name = "ID", help_heading = "Live Azure")]
    pub subscription: Option<String>,
    #[arg(long, value_name = "NAME", help_heading = "Live Azure")]
    pub resource_group: Option<String>,
    #[arg(long, value_name = "NAME", help_heading = "Live Azure")]
    pub service: Option<String>,
    /// Read every API Management instance you can see (Resource Graph).
    #[arg(long, help_heading = "Live Azure")]
    pub all: bool,
    /// How to sign in: azure-cli, client-secret, client-certificate,
    /// workload-identity, managed-identity (default: from the environment,
    /// else the Azure CLI; managed identity's metadata endpoint is only
    /// used when asked for here).
    #[arg(long, value_name = "METHOD", help_heading = "Live Azure")]
    pub sign_in: Option<String>,
    /// Tenant for the Azure CLI sign-in.
    #[arg(long, value_name = "ID", help_heading = "Live Azure")]
    pub tenant: Option<String>,
    /// Longest time the whole pull may take; what is not read by then is
    /// listed as a problem (e.g. 90s, 5m).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = DEFAULT_BUDGET,
        help_heading = "Live Azure"
    )]
    pub budget: String,
    /// Requests to Azure in flight at most.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_CONCURRENCY,
        help_heading = "Live Azure"
    )]
    pub concurrency: usize,
    /// Also write everything read to DIR, in the shapes `apimedic diagnose
    /// DIR` reads (attach it to a ticket, replay it offline).
    #[arg(long, value_name = "DIR", help_heading = "Live Azure")]
    pub save: Option<PathBuf>,
    /// Where live pulls record configuration history (`apimedic history`);
    /// default $XDG_STATE_HOME/apimedic.
    #[arg(long, value_name = "DIR", help_heading = "Live Azure")]
    pub history_dir: Option<PathBuf>,
    /// No progress line on stderr (set by surfaces that own the screen).
    #[arg(skip)]
    pub quiet: bool,
}

impl Default for AzureArgs {
    fn default() -> Self {
        AzureArgs {
            azure: None,
            subscription: None,
            resource_group: None,
            service: None,
            all: false,
            sign_in: None,
            tenant: None,
            budget: DEFAULT_BUDGET.into(),
            concurrency: DEFAULT_CONCURRENCY,
            save: None,
            history_dir: None,
            quiet: false,
        }
    }
}

/// `--since`/`--until` for surfaces that have no time range of their own.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SpanArgs {
    /// With a live target: read from this instant (RFC 3339) or this long ago (30m, 6h, 1d). Default 24h.
    #[arg(long, value_name = "WHEN", help_heading = "Live Azure")]
    pub since: Option<String>,
    /// With a live target: read up to this instant or this long ago. Default now.
    #[arg(long, value_name = "WHEN", help_heading = "Live Azure")]
    pub until: Option<String>,
}

/// The default span of a live pull.
pub const DEFAULT_SINCE: &str = "24h";

impl AzureArgs {
    /// The target the flags name, if any.
    pub fn target(&self) -> anyhow::Result<Option<Target>> {
        Target::from_flags(
            self.azure.as_deref(),
            self.subscription.as_deref(),
            self.resource_group.as_deref(),
            self.service.as_deref(),
            self.all,
        )
        .map_err(anyhow::Error::msg)
    }

    pub fn is_live(&self) -> bool {
        self.azure.is_some() || self.subscription.is_some() || self.all
    }

    /// The options of a pull over `span`.
    pub fn options(&self, span: Span) -> anyhow::Result<LiveOptions> {
        let sign_in = self
            .sign_in
            .as_deref()
            .map(|s| {
                SignIn::parse(s).with_context(|| {
                    format!(
                        "--sign-in {s}: use one of {}",
                        SignIn::ALL.map(SignIn::name).join(", ")
                    )
                })
            })
            .transpose()?;
        let budget = crate::daemon::config::parse_duration(&self.budget)
            .filter(|d| !d.is_zero())
            .with_context(|| {
                format!(
                    "--budget {}: give a duration such as 90s or 5m",
                    self.budget
                )
            })?;
        if self.concurrency == 0 || self.concurrency > 64 {
            bail!("--concurrency {}: give 1 to 64", self.concurrency);
        }
        Ok(LiveOptions {
            credential: CredentialOptions {
                sign_in,
                tenant: self.tenant.clone(),
                ..Default::default()
            },
            arm: ArmOptions {
                concurrency: self.concurrency,
                budget,
                ..ArmOptions::default()
            },
            pull: PullOptions {
                span,
                metrics: true,
                activity: true,
                operation_policies: true,
            },
            parallel_instances: 4,
            progress: !self.quiet,
        })
    }

    /// Pulls the target (when the flags name one) over `since..until`,
    /// records configuration history, saves with `--save`, and returns one
    /// snapshot per instance with its id. `None` when no live target was given.
    pub fn load(
        &self,
        since: Option<&str>,
        until: Option<&str>,
    ) -> anyhow::Result<Option<Vec<(String, Snapshot)>>> {
        let mut all = Vec::new();
        let live = self.load_each(since, until, |id, snap| {
            all.push((id, snap));
            Ok(())
        })?;
        Ok(live.then_some(all))
    }

    /// `load`, handing each instance's snapshot to `each` as soon as it is
    /// read (a fleet is never held in memory at once). Returns false when
    /// no live target was given.
    pub fn load_each(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        mut each: impl FnMut(String, Snapshot) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let Some(target) = self.target()? else {
            if self.save.is_some() {
                bail!("--save needs a live target (--azure, --subscription or --all)");
            }
            return Ok(false);
        };
        let span = span(since, until, chrono::Utc::now())?;
        let options = self.options(span)?;
        let history = crate::azure::history::History::new(
            &self
                .history_dir
                .clone()
                .unwrap_or_else(crate::azure::history::default_state_dir),
        );
        let seen = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut saved = 0usize;
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        let live = live::pull_blocking(std::slice::from_ref(&target), &options, |p| {
            // History is a by-product: a state directory that cannot be
            // written is reported, the diagnosis goes on.
            if let Err(e) = history.record(&p, &seen)
                && !self.quiet
            {
                eprintln!("apimedic: cannot record configuration history: {e}");
            }
            if let Some(dir) = &self.save {
                saved += live::save_instance(&p, dir)?;
                entries.push(live::instance_entry(&p));
                problems.extend(p.problems.iter().cloned());
            }
            let mut snap = crate::collect::collect_files(&p.documents);
            for problem in &p.problems {
                snap.loaded.reject(problem.clone());
            }
            snap.log_workspaces = p.log_workspaces.clone();
            each(p.service_id.clone(), snap)
        })?;
        for problem in &live.problems {
            eprintln!("apimedic: {problem}");
        }
        if let Some(dir) = &self.save {
            problems.extend(live.problems.iter().cloned());
            live::save_manifest(&live, &entries, &problems, dir, &target.describe(), &span)?;
            if !self.quiet {
                eprintln!("apimedic: saved {saved} documents to {}", dir.display());
            }
        }
        Ok(true)
    }
}

impl AzureArgs {
    /// The same flags aimed at `t` instead.
    pub fn for_target(&self, t: &Target) -> AzureArgs {
        let mut a = AzureArgs {
            azure: None,
            subscription: None,
            resource_group: None,
            service: None,
            all: false,
            ..self.clone()
        };
        match t {
            Target::Service(id) => a.azure = Some(id.id()),
            Target::Scope {
                subscription,
                resource_group,
                service,
            } => {
                a.subscription = Some(subscription.clone());
                a.resource_group = resource_group.clone();
                a.service = service.clone();
            }
            Target::All => a.all = true,
        }
        a
    }

    /// The service ids the target names (Resource Graph for a
    /// subscription or `--all`); nothing else is read.
    pub fn discover(&self) -> anyhow::Result<Vec<String>> {
        let Some(target) = self.target()? else {
            return Ok(Vec::new());
        };
        if let Target::Service(id) = &target {
            return Ok(vec![id.id()]);
        }
        let now = chrono::Utc::now();
        let options = self.options(Span {
            start: now - chrono::Duration::hours(1),
            end: now,
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let client = live::connect(&options)?;
            let found = crate::azure::target::resolve(&client, &target)
                .await
                .map_err(|e| anyhow::anyhow!("{}", crate::azure::pull::problem_of(&e)))?;
            Ok(found.iter().map(|s| s.id()).collect())
        })
    }

    /// For surfaces that show one instance (ask, chat, tui): the one
    /// snapshot of the live target, or `None` without a live target. A
    /// target that finds several instances is an error naming them.
    pub fn load_one(&self, span: &SpanArgs) -> anyhow::Result<Option<Snapshot>> {
        let Some(mut all) = self.load(span.since.as_deref(), span.until.as_deref())? else {
            return Ok(None);
        };
        if all.len() > 1 {
            let ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
            bail!(
                "{} instances found; name one with --azure:\n  {}",
                all.len(),
                ids.join("\n  ")
            );
        }
        Ok(all.pop().map(|(_, s)| s))
    }
}

/// `since..until` of a live pull: instants, or durations before `now`.
pub fn span(
    since: Option<&str>,
    until: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Span> {
    let now_ts = Timestamp(now.timestamp_millis());
    let at = |s: &str| -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        let t = super::parse_bound(s, Some(now_ts))?;
        chrono::DateTime::from_timestamp_millis(t.0).context("time out of range")
    };
    let end = until.map(at).transpose()?.unwrap_or(now);
    let start = at(since.unwrap_or(DEFAULT_SINCE))?;
    if start >= end {
        bail!("--since must be before --until");
    }
    if end - start > chrono::Duration::days(30) {
        bail!(
            "a live pull covers at most 30 days (metrics at 1-minute grain); narrow --since/--until"
        );
    }
    Ok(Span { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_relative_to_now_or_absolute() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T13:00:00Z")
            .unwrap()
            .to_utc();
        let s = span(None, None, now).unwrap();
        assert_eq!(s.end, now);
        assert_eq!((s.end - s.start).num_hours(), 24);
        let s = span(Some("2h"), Some("30m"), now).unwrap();
        assert_eq!((now - s.start).num_minutes(), 120);
        assert_eq!((now - s.end).num_minutes(), 30);
        let s = span(
            Some("2026-03-02T09:00:00Z"),
            Some("2026-03-02T10:00:00Z"),
            now,
        )
        .unwrap();
        assert_eq!(s.timespan(), "2026-03-02T09:00:00Z/2026-03-02T10:00:00Z");
        assert!(span(Some("10m"), Some("20m"), now).is_err());
        assert!(span(Some("60d"), None, now).is_err());
    }

    #[test]
    fn the_default_in_code_is_the_command_lines_default() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            azure: AzureArgs,
        }
        let parsed = <Cli as clap::Parser>::parse_from(["apimedic"]).azure;
        let built = AzureArgs::default();
        assert_eq!(parsed.budget, built.budget);
        assert_eq!(parsed.concurrency, built.concurrency);
        let now = chrono::Utc::now();
        let sp = Span {
            start: now - chrono::Duration::hours(1),
            end: now,
        };
        // Built in code with only a target, it is usable as it is.
        let a = AzureArgs {
            azure: Some(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ApiManagement/service/x"
                    .into(),
            ),
            ..Default::default()
        };
        assert!(a.options(sp).is_ok());
    }

    #[test]
    fn flags_are_checked() {
        let a = AzureArgs {
            subscription: Some("s".into()),
            budget: "0s".into(),
            concurrency: 8,
            ..Default::default()
        };
        let now = chrono::Utc::now();
        let sp = Span {
            start: now - chrono::Duration::hours(1),
            end: now,
        };
        assert!(a.options(sp).unwrap_err().to_string().contains("--budget"));
        let a = AzureArgs {
            sign_in: Some("kerberos".into()),
            budget: "3m".into(),
            concurrency: 8,
            ..Default::default()
        };
        assert!(
            a.options(sp)
                .unwrap_err()
                .to_string()
                .contains("--sign-in kerberos")
        );
        let a = AzureArgs {
            save: Some("/tmp/x".into()),
            ..Default::default()
        };
        assert!(
            a.load(None, None)
                .unwrap_err()
                .to_string()
                .contains("--save needs")
        );
    }
}

/// `apimedic history`: the configuration changes live pulls have seen.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only instances whose id contains this (a service name or id).
    pub instance: Option<String>,
    /// The state directory live pulls recorded into (default $XDG_STATE_HOME/apimedic).
    #[arg(long, value_name = "DIR")]
    pub history_dir: Option<PathBuf>,
}

pub fn history(args: HistoryArgs) -> anyhow::Result<std::process::ExitCode> {
    let dir = args
        .history_dir
        .unwrap_or_else(crate::azure::history::default_state_dir);
    let h = crate::azure::history::History::new(&dir);
    print!(
        "{}",
        crate::azure::history::render(&h, args.instance.as_deref())
    );
    Ok(std::process::ExitCode::SUCCESS)
}
