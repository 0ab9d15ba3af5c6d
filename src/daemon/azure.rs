//! Live Azure instances watched by the daemon (`apimedic daemon --azure
//! ID`, `[[instances]]` in its config): every `interval` each instance's
//! configuration, 1-minute metrics and activity log are read through the
//! read-only ARM client (bounded concurrency, time budget), the
//! configuration is recorded in the state directory's history
//! (content-addressed, joined with the activity log's writes), the
//! instance is analysed, and only its current findings, marked with the
//! instance, go to the engine; what was read is dropped at once, so a fleet
//! costs the findings, not the data.
//!
//! A poll that fails keeps the findings of the last one that succeeded (a
//! read that failed is never an all-clear) and is logged and counted.
//! `current` (pure) decides which findings are still going on, judged as
//! of the end of the data read, never the wall clock.

use crate::azure::credential::{CredentialOptions, SignIn};
use crate::azure::live::{self, LiveOptions};
use crate::azure::pull::{PullOptions, Pulled, Span};
use crate::azure::target::Target;
use crate::azure::{ArmOptions, history::History};
use crate::model::{Activity, Finding};
use std::path::Path;
use std::time::Duration;

/// What to read, how often and over which span.
#[derive(Clone, Debug, PartialEq)]
pub struct AzureWatch {
    /// (name, target): the name labels the instance (empty: the service's
    /// own name); a target that finds several services labels each
    /// `name/service`.
    pub instances: Vec<(String, Target)>,
    /// How often every instance is read.
    pub interval: Duration,
    /// The span read each poll: the last `window`, or a fixed span.
    pub span: WatchSpan,
    pub budget: Duration,
    pub concurrency: usize,
    /// Instances read at the same time.
    pub parallel_instances: usize,
    pub sign_in: Option<SignIn>,
    pub tenant: Option<String>,
}

/// The span of metrics and activity log each poll reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WatchSpan {
    /// The last this long, up to now.
    Last(Duration),
    /// Always the same span (`--since`/`--until`: watching a past incident,
    /// or a stand-in whose data lies in the past).
    Fixed(Span),
}

impl Default for AzureWatch {
    fn default() -> Self {
        AzureWatch {
            instances: Vec::new(),
            interval: Duration::from_secs(300),
            span: WatchSpan::Last(Duration::from_secs(3 * 3600)),
            budget: Duration::from_secs(120),
            concurrency: 8,
            parallel_instances: 4,
            sign_in: None,
            tenant: None,
        }
    }
}

impl AzureWatch {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The pull options of a poll at `now`.
    pub fn options(&self, now: chrono::DateTime<chrono::Utc>) -> LiveOptions {
        let span = match self.span {
            WatchSpan::Fixed(s) => s,
            WatchSpan::Last(d) => Span {
                start: now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(3)),
                end: now,
            },
        };
        LiveOptions {
            credential: CredentialOptions {
                sign_in: self.sign_in,
                tenant: self.tenant.clone(),
                ..Default::default()
            },
            arm: ArmOptions {
                concurrency: self.concurrency,
                budget: self.budget,
                ..ArmOptions::default()
            },
            pull: PullOptions {
                span,
                metrics: true,
                activity: true,
                operation_policies: true,
            },
            parallel_instances: self.parallel_instances.max(1),
            progress: false,
        }
    }

    /// The label of a service read: the name of the first entry whose
    /// target covers it (`name` alone for a one-service target,
    /// `name/service` otherwise), else the service's own name.
    pub fn label(&self, service_id: &str, service_name: &str) -> String {
        for (name, t) in &self.instances {
            if name.is_empty() || !covers(t, service_id) {
                continue;
            }
            return match t {
                Target::Service(_) => name.clone(),
                _ => format!("{name}/{service_name}"),
            };
        }
        service_name.to_string()
    }

    fn targets(&self) -> Vec<Target> {
        self.instances.iter().map(|(_, t)| t.clone()).collect()
    }
}

/// True when `t` would find the service `id` (case-insensitive, as ARM ids are).
fn covers(t: &Target, id: &str) -> bool {
    let parts: Vec<String> = id
        .trim_matches('/')
        .split('/')
        .map(str::to_ascii_lowercase)
        .collect();
    let (sub, rg, name) = match parts.as_slice() {
        [_, s, _, g, _, _, _, n] => (s.as_str(), g.as_str(), n.as_str()),
        _ => return false,
    };
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match t {
        Target::Service(s) => s.id().eq_ignore_ascii_case(id),
        Target::Scope {
            subscription,
            resource_group,
            service,
        } => {
            eq(subscription, sub)
                && resource_group.as_deref().is_none_or(|g| eq(g, rg))
                && service.as_deref().is_none_or(|n| eq(n, name))
        }
        Target::All => true,
    }
}

/// The findings still going on at the end of the data read (pure): those
/// without a timeline (configuration holds as long as it is in place; a
/// change stays news for the span read),
/// those ongoing, and those that ended within the last `active_minutes`
/// of the data (so a short dip does not resolve an alert at once).
pub fn current(findings: Vec<Finding>, active_minutes: i64) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|f| match f.timeline {
            None => true,
            Some(t) => {
                t.state == Activity::Ongoing
                    || t.ended_at
                        .is_some_and(|e| e.0 > t.as_of.0 - active_minutes * 60_000)
            }
        })
        .collect()
}

/// One instance read and judged.
#[derive(Debug)]
pub struct Reading {
    pub label: String,
    pub service_id: String,
    /// Current findings, each marked with the instance.
    pub findings: Vec<Finding>,
    /// Resources that could not be read, as text.
    pub problems: Vec<String>,
    /// New configuration versions recorded by this read.
    pub changes: usize,
}

/// Records, analyses and drops one pulled instance (pure but for the
/// history write).
pub fn judge(
    watch: &AzureWatch,
    pulled: Pulled,
    history: &History,
    seen: &str,
    active_minutes: i64,
) -> Reading {
    let changes = match history.record(&pulled, seen) {
        Ok(v) => v.len(),
        Err(e) => {
            tracing::warn!(instance = %pulled.service_id, error = %e, "Cannot record configuration history.");
            0
        }
    };
    let label = watch.label(&pulled.service_id, &pulled.name);
    let mut snap = crate::collect::collect_files(&pulled.documents);
    let problems: Vec<String> = pulled.problems.iter().map(|p| p.to_string()).collect();
    for p in &pulled.problems {
        snap.loaded.reject(p.clone());
    }
    let service_id = pulled.service_id.clone();
    drop(pulled);
    let findings = crate::analyze::analyze(&snap, &crate::analyze::Options::default());
    drop(snap);
    let mut findings = current(findings, active_minutes);
    for f in &mut findings {
        f.in_instance(&label);
    }
    Reading {
        label,
        service_id,
        findings,
        problems,
        changes,
    }
}

/// One poll of every instance, from synchronous code: each instance is
/// judged as it arrives and handed to `each` (false stops). Errors only
/// when nothing could be read at all (sign-in, no instance found).
pub fn poll_blocking(
    watch: &AzureWatch,
    state_dir: &Path,
    active_minutes: i64,
    mut each: impl FnMut(Reading) -> bool,
) -> anyhow::Result<()> {
    let options = watch.options(chrono::Utc::now());
    let history = History::new(state_dir);
    let seen = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let live = live::pull_blocking(&watch.targets(), &options, |p| {
        let r = judge(watch, p, &history, &seen, active_minutes);
        if each(r) {
            Ok(())
        } else {
            anyhow::bail!("the daemon is stopping")
        }
    })?;
    for p in &live.problems {
        tracing::warn!(problem = %p, "Azure discovery problem.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::pull::ServiceId;
    use crate::model::{FindingKind, Severity, Subject, Timeline, Timestamp, Window};

    const ID: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim-a";

    #[test]
    fn labels_follow_the_named_instances() {
        let w = AzureWatch {
            instances: vec![
                (
                    "prod".into(),
                    Target::Service(ServiceId::parse(ID).unwrap()),
                ),
                (
                    "team".into(),
                    Target::Scope {
                        subscription: "S1".into(),
                        resource_group: None,
                        service: None,
                    },
                ),
                (String::new(), Target::All),
            ],
            ..AzureWatch::default()
        };
        assert_eq!(w.label(&ID.to_uppercase(), "apim-a"), "prod");
        let other = ID.replace("apim-a", "apim-b");
        assert_eq!(w.label(&other, "apim-b"), "team/apim-b");
        let elsewhere = other.replace("s1", "s2");
        assert_eq!(w.label(&elsewhere, "apim-b"), "apim-b");
    }

    fn metric(state: Activity, ended_min: Option<i64>) -> Finding {
        let as_of = Timestamp(600 * 60_000);
        let f = Finding::new(
            FindingKind::MetricAnomaly,
            Severity::Medium,
            Subject::default(),
            "x",
        )
        .window(Window {
            start: Timestamp(0),
            end: Timestamp(ended_min.unwrap_or(600) * 60_000),
        });
        Finding {
            timeline: Some(match (state, ended_min) {
                (Activity::Ongoing, _) => Timeline::ongoing(Timestamp(0), as_of),
                (_, Some(e)) => Timeline::ended(Timestamp(0), Timestamp(e * 60_000), as_of),
                _ => unreachable!(),
            }),
            ..f
        }
    }

    #[test]
    fn only_what_still_goes_on_at_the_end_of_the_data_is_current() {
        let all = vec![
            metric(Activity::Ongoing, None),
            metric(Activity::Ended, Some(599)),
            metric(Activity::Ended, Some(500)),
            Finding::new(
                FindingKind::PolicyRisk,
                Severity::High,
                Subject::default(),
                "config",
            ),
        ];
        let got = current(all, 2);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got.iter().all(|f| {
            f.timeline
                .is_none_or(|t| t.ended_at != Some(Timestamp(500 * 60_000)))
        }));
    }
}
