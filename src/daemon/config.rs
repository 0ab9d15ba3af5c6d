//! The daemon's TOML configuration: `ConfigFile` is what serde reads
//! (strict: unknown keys are errors), `DaemonConfig` the validated,
//! ready-to-use value `run` takes. `from_str` is pure; `load` reads a file.
//! Every error names the file, the line, the field and what to change.
//!
//! Runtime knobs given on the command line (`--state-dir`, `--listen`,
//! `--alertmanager`, `--webhook`, paths) are merged in by `cli::daemon`
//! and win over the file.

use crate::model::{FindingKind, Severity};
use anyhow::Context;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A duration written as `500ms`, `15s`, `2m`, `4h` or `1d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"15s\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s).map(Dur).ok_or_else(|| {
                    E::custom(format!(
                        "`{s}` is not a duration: write a number and a unit, e.g. \"500ms\", \"15s\", \"2m\", \"4h\", \"1d\""
                    ))
                })
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "`{n}` has no unit: write durations as quoted strings, e.g. \"{n}s\" or \"{n}m\""
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Dur, E> {
                self.visit_i64(n as i64)
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "`{n}` has no unit: write durations as quoted strings, e.g. \"{n}s\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `500ms`, `15s`, `2m`, `4h`, `1d` (also `0s`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// A severity name (`info`, `low`, `medium`, `high`, `critical`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sev(pub Severity);

impl<'de> Deserialize<'de> for Sev {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Severity::parse(&s).map(Sev).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown severity `{s}`: use info, low, medium, high or critical"
            ))
        })
    }
}

/// A finding kind name (`error_spike`, `backend_timeout`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind(pub FindingKind);

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FindingKind::parse(&s).map(Kind).ok_or_else(|| {
            let all: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
            serde::de::Error::custom(format!(
                "unknown finding kind `{s}`: use one of {}",
                all.join(", ")
            ))
        })
    }
}

/// An `http://` URL (the daemon speaks plain HTTP; put a TLS proxy in
/// front of remote receivers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl(pub String);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_url(&s).map_err(serde::de::Error::custom)?;
        Ok(HttpUrl(s))
    }
}

/// Checks a receiver URL: `http://host[:port][/path]`.
pub fn check_url(s: &str) -> Result<(), String> {
    match s.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ if s.starts_with("https://") => Err(format!(
            "`{s}`: https is not supported (the binary has no TLS); use http:// to a local relay or proxy"
        )),
        _ => Err(format!(
            "`{s}` is not an http URL: write it as http://host:port/path"
        )),
    }
}

/// The file as written. Every section and key is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub daemon: DaemonSection,
    #[serde(default)]
    pub sources: SourcesSection,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub alerts: AlertsSection,
    #[serde(default)]
    pub delivery: DeliverySection,
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    #[serde(default)]
    pub azure: AzureSection,
    /// Live Azure instances to watch, each with the name its alerts carry.
    #[serde(default)]
    pub instances: Vec<crate::azure::target::InstanceConfig>,
    #[serde(default)]
    pub autonomy: AutonomySection,
}

/// `[azure]`: how the `[[instances]]` (and `--azure`) are read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSection {
    /// How often each instance's config, metrics and activity log are read.
    pub interval: Option<Dur>,
    /// How much metric and activity-log history each read covers.
    pub window: Option<Dur>,
    /// The longest one read of every instance may take.
    pub budget: Option<Dur>,
    /// Requests to Azure in flight at most.
    pub concurrency: Option<usize>,
    /// azure-cli, client-secret, client-certificate, workload-identity, managed-identity.
    pub sign_in: Option<String>,
    /// Tenant for the Azure CLI sign-in.
    pub tenant: Option<String>,
}

/// `[autonomy]`: off unless `policy` names a policy file. The daemon then
/// runs the actions that file allows, within its limits, on `service`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutonomySection {
    /// The autonomy policy (TOML; see `remediate::autonomy`).
    pub policy: Option<PathBuf>,
    /// The APIM service id acted on (/subscriptions/…/service/NAME).
    pub service: Option<String>,
}

/// An `[autonomy]` section with both keys. The policy file is read and
/// checked when the daemon starts (`daemon/act.rs`, the one daemon file
/// that reaches `remediate`; the config and the alerting never do).
#[derive(Clone, Debug, PartialEq)]
pub struct Autonomy {
    pub policy_file: PathBuf,
    pub service: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// How often the detectors run.
    pub tick: Option<Dur>,
    /// Checkpoints, alert state and the outbox.
    pub state_dir: Option<PathBuf>,
    /// `/metrics` and `/healthz`, e.g. `127.0.0.1:9187`.
    pub listen: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSection {
    /// Instance folders and log files to watch (added to those on the command line).
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// How often files are checked for appends, rotation and changes.
    pub poll: Option<Dur>,
    /// Put host CPU and memory (sampled with sysinfo) into the analysis.
    pub host: Option<bool>,
    /// On restart, read the files again up to the checkpoint as baseline.
    pub replay: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// How much data is kept (older minutes are dropped).
    pub retention: Option<Dur>,
    /// How much of the retained data each tick analyses.
    pub lookback: Option<Dur>,
    /// Recent minutes kept exact (every latency, sample requests) before compaction.
    pub exact: Option<Dur>,
    /// A finding is current while its window reaches into this last span of data.
    pub active: Option<Dur>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// How long a finding must persist before its alert fires.
    #[serde(rename = "for")]
    pub for_: Option<Dur>,
    /// How long an alert keeps firing after its finding is gone.
    pub keep_firing_for: Option<Dur>,
    /// Notify again about an alert still firing after this long.
    pub renotify: Option<Dur>,
    /// Findings below this severity never become alerts.
    pub min_severity: Option<Sev>,
    /// Finding kinds that become alerts (default: the anomaly kinds).
    pub kinds: Option<Vec<Kind>>,
    /// Labels that group alerts into one notification.
    pub group_by: Option<Vec<String>>,
    /// Link put in `generatorURL` (`{fingerprint}` and `{kind}` are filled).
    /// Default: the daemon's `/alerts/{fingerprint}` page with `listen`,
    /// else its alert state file.
    pub generator_url: Option<String>,
    /// Link put in the `runbook_url` annotation (`{kind}` is filled).
    /// Default: the daemon's `/playbooks/{kind}` page with `listen`.
    pub runbook_url: Option<String>,
    /// The `instance` label (default: the watched paths).
    pub instance: Option<String>,
    /// The `service` label for findings that do not name the service.
    pub service: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    /// First retry delay; doubles up to `retry_max`.
    pub retry_initial: Option<Dur>,
    pub retry_max: Option<Dur>,
    /// Per-request timeout.
    pub timeout: Option<Dur>,
    /// Alertmanager: re-post firing alerts this often (well within its resolve_timeout).
    pub resend: Option<Dur>,
}

/// One `[[sinks]]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// Name in logs, metrics and the outbox (default: the type, numbered).
    pub name: Option<String>,
    /// Receiver URL (webhook, slack, teams, alertmanager).
    pub url: Option<HttpUrl>,
    /// Output file (file sink).
    pub path: Option<PathBuf>,
    /// Only alerts at or above this severity go here.
    pub min_severity: Option<Sev>,
    /// Only these finding kinds go here (default: all).
    pub kinds: Option<Vec<Kind>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    Stdout,
    File,
    Webhook,
    Slack,
    Teams,
    Alertmanager,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Stdout => "stdout",
            SinkKind::File => "file",
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::Teams => "teams",
            SinkKind::Alertmanager => "alertmanager",
        }
    }
}

/// A validated sink: where alerts go and which ones.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkSpec {
    pub name: String,
    pub target: Target,
    pub min_severity: Severity,
    /// Empty: every kind.
    pub kinds: Vec<FindingKind>,
}

/// Where a sink delivers.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Stdout,
    File(PathBuf),
    Webhook(String),
    Slack(String),
    Teams(String),
    Alertmanager(String),
}

/// Alert rules, as `AlertBook` applies them.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub renotify: Duration,
    pub min_severity: Severity,
    pub kinds: Vec<FindingKind>,
    pub group_by: Vec<String>,
    /// `generatorURL` template (`{fingerprint}`, `{kind}`).
    pub generator_url: String,
    /// `runbook_url` annotation template (`{kind}`); empty: none.
    pub runbook_url: String,
    /// The `instance` label: where the alerts come from.
    pub instance: String,
    /// The `service` label when a finding does not name it.
    pub service: Option<String>,
    /// The `command` annotation: how to open the instance in apimedic.
    pub command: String,
}

impl Rules {
    /// After a config reload: links and labels the file does not set keep
    /// the values the running daemon derived (from `listen`, the paths).
    pub fn inherit_links(&mut self, running: &Rules) {
        if self.generator_url.is_empty() {
            self.generator_url = running.generator_url.clone();
        }
        if self.runbook_url.is_empty() {
            self.runbook_url = running.runbook_url.clone();
        }
        if self.instance.is_empty() {
            self.instance = running.instance.clone();
        }
        if self.service.is_none() {
            self.service = running.service.clone();
        }
        if self.command.is_empty() {
            self.command = running.command.clone();
        }
    }
}

/// Defaults that depend on other settings: with `listen`, `generatorURL`
/// and `runbook_url` open the daemon's own `/alerts/<fingerprint>` and
/// `/playbooks/<kind>` pages; without it `generatorURL` opens the alert
/// state file. The `instance` label names what is watched, the `command`
/// annotation how to open it in the dashboard.
pub fn finish_links(cfg: &mut DaemonConfig) {
    let paths: Vec<String> = cfg.paths.iter().map(|p| p.display().to_string()).collect();
    let r = &mut cfg.rules;
    if r.instance.is_empty() {
        r.instance = if paths.is_empty() {
            "apimedic".into()
        } else {
            paths.join(",")
        };
    }
    if r.generator_url.is_empty() {
        r.generator_url = match &cfg.listen {
            Some(l) => format!("http://{l}/alerts/{{fingerprint}}"),
            None => {
                let dir =
                    std::fs::canonicalize(&cfg.state_dir).unwrap_or_else(|_| cfg.state_dir.clone());
                format!("file://{}/alerts.json#{{fingerprint}}", dir.display())
            }
        };
    }
    if r.runbook_url.is_empty()
        && let Some(l) = &cfg.listen
    {
        r.runbook_url = format!("http://{l}/playbooks/{{kind}}");
    }
    if r.command.is_empty() && !paths.is_empty() {
        r.command = format!("apimedic tui {}", paths.join(" "));
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            for_: Duration::from_secs(60),
            keep_firing_for: Duration::from_secs(300),
            renotify: Duration::from_secs(4 * 3600),
            min_severity: Severity::Medium,
            kinds: FindingKind::ALL
                .into_iter()
                .filter(|k| k.is_anomaly())
                .collect(),
            group_by: vec!["alertname".into(), "api".into()],
            generator_url: String::new(),
            runbook_url: String::new(),
            instance: String::new(),
            service: None,
            command: String::new(),
        }
    }
}

/// Delivery retry policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delivery {
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub timeout: Duration,
    pub resend: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            resend: Duration::from_secs(60),
        }
    }
}

/// Engine sizing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineConfig {
    pub retention_minutes: i64,
    pub lookback_minutes: i64,
    pub exact_minutes: i64,
    pub active_minutes: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retention_minutes: 24 * 60,
            lookback_minutes: 60,
            exact_minutes: 10,
            active_minutes: 2,
        }
    }
}

/// Everything `run` needs, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonConfig {
    pub paths: Vec<PathBuf>,
    pub tick: Duration,
    pub poll: Duration,
    pub state_dir: PathBuf,
    pub listen: Option<String>,
    pub host: bool,
    pub replay: bool,
    pub engine: EngineConfig,
    pub rules: Rules,
    pub delivery: Delivery,
    pub sinks: Vec<SinkSpec>,
    /// The config file, re-read when it changes (alert rules and engine
    /// sizes apply at once; sinks and paths need a restart).
    pub config_file: Option<PathBuf>,
    /// Live Azure instances polled (empty: none).
    pub azure: super::azure::AzureWatch,
    /// Opt-in autonomous remediation (`None`: off, the default).
    pub autonomy: Option<Autonomy>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            paths: Vec::new(),
            tick: Duration::from_secs(15),
            poll: Duration::from_secs(1),
            state_dir: PathBuf::from("apimedic-state"),
            listen: None,
            host: false,
            replay: true,
            engine: EngineConfig::default(),
            rules: Rules::default(),
            delivery: Delivery::default(),
            sinks: Vec::new(),
            config_file: None,
            azure: Default::default(),
            autonomy: None,
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The key a span points into (`tick = "x"` → `tick`), for messages.
fn key_at(text: &str, at: usize) -> Option<String> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

/// Parses and validates a config text. `file` names it in errors. Pure.
pub fn from_str(file: &str, text: &str) -> anyhow::Result<DaemonConfig> {
    let parsed: ConfigFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        let field = e
            .span()
            .and_then(|s| key_at(text, s.start))
            .map(|k| format!(" (field `{k}`)"))
            .unwrap_or_default();
        let msg = e.message().trim().replace('\n', " ");
        anyhow::anyhow!("{file}:{line}:{col}: {msg}{field}")
    })?;
    validate(file, text, parsed)
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> anyhow::Result<DaemonConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut cfg = from_str(&path.display().to_string(), &text)?;
    cfg.config_file = Some(path.to_path_buf());
    Ok(cfg)
}

/// `file:line` of `key` inside `[section]`, for messages (the file alone
/// when the key is not written there).
fn locate(file: &str, text: &str, section: &str, key: &str) -> String {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[') {
            current = h.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        let k = t.split('=').next().unwrap_or("").trim();
        if current == section && k == key {
            return format!("{file}:{}", i + 1);
        }
    }
    file.to_string()
}

/// The line of the `n`th (0-based) `[[sinks]]` header, for messages.
fn sink_line(text: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[sinks]]"))
        .nth(n)
        .map_or(1, |(i, _)| i + 1)
}

fn minutes(d: Duration) -> i64 {
    (d.as_secs() / 60) as i64
}

/// The line of the `n`th (0-based) `[[instances]]` header, for messages.
fn instance_line(text: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[instances]]"))
        .nth(n)
        .map_or(1, |(i, _)| i + 1)
}

/// `[azure]` and `[[instances]]` checked into what the poller needs.
fn validate_azure(
    file: &str,
    text: &str,
    a: AzureSection,
    instances: Vec<crate::azure::target::InstanceConfig>,
) -> anyhow::Result<super::azure::AzureWatch> {
    let mut w = super::azure::AzureWatch::default();
    if let Some(Dur(d)) = a.interval {
        if d < Duration::from_secs(1) {
            anyhow::bail!(
                "{}: [azure] interval = {d:?} is too short: use at least \"1s\" (every read costs Azure requests; minutes are usual)",
                locate(file, text, "azure", "interval")
            );
        }
        w.interval = d;
    }
    if let Some(Dur(d)) = a.window {
        if d < Duration::from_secs(600) || d > Duration::from_secs(30 * 86_400) {
            anyhow::bail!(
                "{}: [azure] window = {d:?}: use \"10m\" to \"30d\" (detectors need a baseline; metrics are read at 1-minute grain)",
                locate(file, text, "azure", "window")
            );
        }
        w.span = super::azure::WatchSpan::Last(d);
    }
    if let Some(Dur(d)) = a.budget {
        if d.is_zero() {
            anyhow::bail!(
                "{}: [azure] budget must be more than 0s",
                locate(file, text, "azure", "budget")
            );
        }
        w.budget = d;
    }
    if let Some(c) = a.concurrency {
        if c == 0 || c > 64 {
            anyhow::bail!(
                "{}: [azure] concurrency = {c}: give 1 to 64",
                locate(file, text, "azure", "concurrency")
            );
        }
        w.concurrency = c;
    }
    if let Some(s) = &a.sign_in {
        w.sign_in = Some(crate::azure::SignIn::parse(s).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: [azure] sign_in = \"{s}\": use one of {}",
                locate(file, text, "azure", "sign_in"),
                crate::azure::SignIn::ALL
                    .map(crate::azure::SignIn::name)
                    .join(", ")
            )
        })?);
    }
    w.tenant = a.tenant;
    for (i, inst) in instances.into_iter().enumerate() {
        let line = instance_line(text, i);
        if inst.name.trim().is_empty() {
            anyhow::bail!(
                "{file}:{line}: [[instances]] needs a `name` (the instance label of its alerts)"
            );
        }
        if w.instances.iter().any(|(n, _)| *n == inst.name) {
            anyhow::bail!(
                "{file}:{line}: two instances are named `{}`: give each a unique name",
                inst.name
            );
        }
        let t = inst
            .target()
            .map_err(|e| anyhow::anyhow!("{file}:{line}: {e}"))?;
        w.instances.push((inst.name, t));
    }
    Ok(w)
}

/// Cross-field checks and defaults.
pub fn validate(file: &str, text: &str, f: ConfigFile) -> anyhow::Result<DaemonConfig> {
    let mut cfg = DaemonConfig {
        azure: validate_azure(file, text, f.azure, f.instances)?,
        ..DaemonConfig::default()
    };
    if let Some(Dur(t)) = f.daemon.tick {
        if t < Duration::from_millis(100) {
            anyhow::bail!(
                "{}: [daemon] tick = {t:?} is too short: use at least \"100ms\" (detectors run on every tick)",
                locate(file, text, "daemon", "tick")
            );
        }
        cfg.tick = t;
    }
    if let Some(dir) = f.daemon.state_dir {
        cfg.state_dir = dir;
    }
    cfg.listen = f.daemon.listen;
    if let Some(l) = &cfg.listen
        && l.parse::<std::net::SocketAddr>().is_err()
    {
        anyhow::bail!(
            "{}: [daemon] listen = \"{l}\" is not an address: write host:port, e.g. \"127.0.0.1:9187\"",
            locate(file, text, "daemon", "listen")
        );
    }
    cfg.paths = f.sources.paths;
    if let Some(Dur(p)) = f.sources.poll {
        if p < Duration::from_millis(50) {
            anyhow::bail!(
                "{}: [sources] poll = {p:?} is too short: use at least \"50ms\"",
                locate(file, text, "sources", "poll")
            );
        }
        cfg.poll = p;
    }
    cfg.host = f.sources.host.unwrap_or(false);
    cfg.replay = f.sources.replay.unwrap_or(true);
    let e = &mut cfg.engine;
    if let Some(Dur(d)) = f.engine.retention {
        e.retention_minutes = minutes(d);
    }
    if let Some(Dur(d)) = f.engine.lookback {
        e.lookback_minutes = minutes(d);
    }
    if let Some(Dur(d)) = f.engine.exact {
        e.exact_minutes = minutes(d);
    }
    if let Some(Dur(d)) = f.engine.active {
        e.active_minutes = minutes(d);
    }
    if e.retention_minutes < 10 {
        anyhow::bail!(
            "{}: [engine] retention must be at least \"10m\" (detectors need a baseline)",
            locate(file, text, "engine", "retention")
        );
    }
    if e.lookback_minutes < 10 || e.lookback_minutes > e.retention_minutes {
        anyhow::bail!(
            "{}: [engine] lookback ({} min) must be between \"10m\" and retention ({} min): shorten lookback or lengthen retention",
            locate(file, text, "engine", "lookback"),
            e.lookback_minutes,
            e.retention_minutes
        );
    }
    if e.exact_minutes < 2 || e.exact_minutes > e.lookback_minutes {
        anyhow::bail!(
            "{}: [engine] exact ({} min) must be between \"2m\" and lookback ({} min)",
            locate(file, text, "engine", "exact"),
            e.exact_minutes,
            e.lookback_minutes
        );
    }
    if e.active_minutes < 1 {
        anyhow::bail!(
            "{}: [engine] active must be at least \"1m\"",
            locate(file, text, "engine", "active")
        );
    }
    let r = &mut cfg.rules;
    if let Some(Dur(d)) = f.alerts.for_ {
        r.for_ = d;
    }
    if let Some(Dur(d)) = f.alerts.keep_firing_for {
        r.keep_firing_for = d;
    }
    if let Some(Dur(d)) = f.alerts.renotify {
        r.renotify = d;
    }
    if let Some(Sev(s)) = f.alerts.min_severity {
        r.min_severity = s;
    }
    if let Some(k) = f.alerts.kinds {
        if k.is_empty() {
            anyhow::bail!(
                "{}: [alerts] kinds is empty, so nothing could alert: list kinds or remove the key for the default (the anomaly kinds)",
                locate(file, text, "alerts", "kinds")
            );
        }
        r.kinds = k.into_iter().map(|Kind(k)| k).collect();
    }
    if let Some(g) = f.alerts.group_by {
        r.group_by = g;
    }
    if let Some(u) = f.alerts.generator_url {
        r.generator_url = u;
    }
    if let Some(u) = f.alerts.runbook_url {
        r.runbook_url = u;
    }
    if let Some(i) = f.alerts.instance {
        r.instance = i;
    }
    if let Some(s) = f.alerts.service {
        r.service = Some(s);
    }
    let d = &mut cfg.delivery;
    if let Some(Dur(x)) = f.delivery.retry_initial {
        d.retry_initial = x.max(Duration::from_millis(10));
    }
    if let Some(Dur(x)) = f.delivery.retry_max {
        d.retry_max = x;
    }
    if let Some(Dur(x)) = f.delivery.timeout {
        d.timeout = x.max(Duration::from_millis(100));
    }
    if let Some(Dur(x)) = f.delivery.resend {
        d.resend = x.max(Duration::from_secs(1));
    }
    if d.retry_max < d.retry_initial {
        anyhow::bail!(
            "{}: [delivery] retry_max ({:?}) is shorter than retry_initial ({:?}): raise retry_max",
            locate(file, text, "delivery", "retry_max"),
            d.retry_max,
            d.retry_initial
        );
    }
    for (i, s) in f.sinks.into_iter().enumerate() {
        let line = sink_line(text, i);
        let name = s
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", s.kind.as_str(), i + 1));
        let need_url = |url: Option<HttpUrl>| -> anyhow::Result<String> {
            url.map(|u| u.0).ok_or_else(|| {
                anyhow::anyhow!(
                    "{file}:{line}: sink `{name}` of type {} needs `url = \"http://host:port/path\"`",
                    s.kind.as_str()
                )
            })
        };
        let target = match s.kind {
            SinkKind::Stdout => Target::Stdout,
            SinkKind::File => Target::File(s.path.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "{file}:{line}: sink `{name}` of type file needs `path = \"alerts.jsonl\"`"
                )
            })?),
            SinkKind::Webhook => Target::Webhook(need_url(s.url.clone())?),
            SinkKind::Slack => Target::Slack(need_url(s.url.clone())?),
            SinkKind::Teams => Target::Teams(need_url(s.url.clone())?),
            SinkKind::Alertmanager => Target::Alertmanager(need_url(s.url.clone())?),
        };
        if cfg.sinks.iter().any(|x| x.name == name) {
            anyhow::bail!("{file}:{line}: two sinks are named `{name}`: give each a unique name");
        }
        cfg.sinks.push(SinkSpec {
            name,
            target,
            min_severity: s.min_severity.map_or(Severity::Info, |Sev(s)| s),
            kinds: s
                .kinds
                .unwrap_or_default()
                .into_iter()
                .map(|Kind(k)| k)
                .collect(),
        });
    }
    cfg.autonomy = autonomy(file, text, f.autonomy)?;
    Ok(cfg)
}

fn autonomy(file: &str, text: &str, a: AutonomySection) -> anyhow::Result<Option<Autonomy>> {
    let Some(policy_file) = a.policy else {
        if a.service.is_some() {
            anyhow::bail!(
                "{}: [autonomy] service without policy: autonomy stays off unless a policy file names the actions allowed",
                locate(file, text, "autonomy", "service")
            );
        }
        return Ok(None);
    };
    let Some(service) = a.service else {
        anyhow::bail!(
            "{}: [autonomy] policy needs service = \"/subscriptions/…/providers/Microsoft.ApiManagement/service/NAME\" (the instance acted on)",
            locate(file, text, "autonomy", "policy")
        );
    };
    if !service
        .to_ascii_lowercase()
        .contains("/providers/microsoft.apimanagement/service/")
    {
        anyhow::bail!(
            "{}: [autonomy] service = \"{service}\" is not an API Management service id (/subscriptions/…/providers/Microsoft.ApiManagement/service/NAME)",
            locate(file, text, "autonomy", "service")
        );
    }
    if !policy_file.is_file() {
        anyhow::bail!(
            "{}: [autonomy] policy: {} is not a readable file",
            locate(file, text, "autonomy", "policy"),
            policy_file.display()
        );
    }
    Ok(Some(Autonomy {
        policy_file,
        service,
    }))
}

impl DaemonConfig {
    /// Adds a sink, naming it uniquely.
    pub fn add_sink(&mut self, base: &str, target: Target) {
        let mut name = base.to_string();
        let mut n = 2;
        while self.sinks.iter().any(|s| s.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.sinks.push(SinkSpec {
            name,
            target,
            min_severity: Severity::Info,
            kinds: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autonomy_is_off_by_default_and_checked() {
        assert!(from_str("d.toml", "").unwrap().autonomy.is_none());
        let svc = "/subscriptions/x/resourceGroups/r/providers/Microsoft.ApiManagement/service/s";
        let e = from_str("d.toml", &format!("[autonomy]\nservice = \"{svc}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("d.toml:2") && e.contains("without policy"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        std::fs::write(&p, "[[allow]]\naction = \"scale_out\"\n").unwrap();
        let text = format!("[autonomy]\npolicy = \"{}\"\n", p.display());
        let e = from_str("d.toml", &text).unwrap_err().to_string();
        assert!(e.contains("needs service"), "{e}");
        let text = format!("{text}service = \"{svc}\"\n");
        let cfg = from_str("d.toml", &text).unwrap();
        assert_eq!(cfg.autonomy.unwrap().policy_file, p);
        std::fs::remove_file(&p).unwrap();
        let e = from_str("d.toml", &text).unwrap_err().to_string();
        assert!(e.contains("not a readable file"), "{e}");
    }

    const FULL: &str = r#"
[daemon]
tick = "1s"
state_dir = "/tmp/x"
listen = "127.0.0.1:9187"

[sources]
paths = ["/var/log/apim"]
poll = "250ms"

[engine]
retention = "2h"
lookback = "1h"

[alerts]
for = "2s"
keep_firing_for = "3s"
min_severity = "high"
kinds = ["error_spike"]

[[sinks]]
type = "alertmanager"
url = "http://127.0.0.1:9093"
min_severity = "critical"
"#;

    #[test]
    fn reads_every_section() {
        let c = from_str("a.toml", FULL).unwrap();
        assert_eq!(c.tick, Duration::from_secs(1));
        assert_eq!(c.poll, Duration::from_millis(250));
        assert_eq!(c.engine.retention_minutes, 120);
        assert_eq!(c.rules.for_, Duration::from_secs(2));
        assert_eq!(c.rules.kinds, vec![FindingKind::ErrorSpike]);
        assert_eq!(c.sinks.len(), 1);
        assert_eq!(c.sinks[0].name, "alertmanager-1");
        assert_eq!(c.sinks[0].min_severity, Severity::Critical);
        assert_eq!(
            c.sinks[0].target,
            Target::Alertmanager("http://127.0.0.1:9093".into())
        );
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = from_str("a.toml", "").unwrap();
        assert_eq!(c.tick, Duration::from_secs(15));
        assert!(c.rules.kinds.contains(&FindingKind::ErrorSpike));
        assert!(!c.rules.kinds.contains(&FindingKind::PolicyRisk));
    }

    #[test]
    fn typo_names_file_line_and_key() {
        let err = from_str("a.toml", "[daemon]\ntik = \"1s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.toml:2:"), "{err}");
        assert!(err.contains("unknown field `tik`"), "{err}");
    }

    #[test]
    fn bad_duration_says_how_to_write_one() {
        let err = from_str("a.toml", "[alerts]\nfor = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.toml:2:"), "{err}");
        assert!(err.contains("\"15s\""), "{err}");
        assert!(err.contains("field `for`"), "{err}");
    }

    #[test]
    fn live_instances_are_named_and_checked_with_their_line() {
        let ok = "[azure]\ninterval = \"2m\"\nwindow = \"6h\"\nsign_in = \"client-secret\"\n[[instances]]\nname = \"prod\"\nsubscription = \"s1\"\nresource_group = \"rg\"\nservice = \"apim\"\n";
        let c = from_str("d.toml", ok).unwrap();
        assert_eq!(c.azure.instances.len(), 1);
        assert_eq!(c.azure.instances[0].0, "prod");
        assert_eq!(c.azure.interval, Duration::from_secs(120));
        assert_eq!(
            c.azure.span,
            crate::daemon::azure::WatchSpan::Last(Duration::from_secs(6 * 3600))
        );
        let bad = "[daemon]\ntick = \"1s\"\n\n[[instances]]\nname = \"a\"\nsubscription = \"s\"\n[[instances]]\nname = \"b\"\nresource_group = \"rg\"\n";
        let e = from_str("d.toml", bad).unwrap_err().to_string();
        assert!(
            e.starts_with("d.toml:7:") && e.contains("instance `b`"),
            "{e}"
        );
        let twice = "[[instances]]\nname = \"a\"\nsubscription = \"s\"\n[[instances]]\nname = \"a\"\nsubscription = \"t\"\n";
        assert!(
            from_str("d.toml", twice)
                .unwrap_err()
                .to_string()
                .contains("d.toml:4: two instances")
        );
        let short = "[azure]\nwindow = \"1m\"\n";
        assert!(
            from_str("d.toml", short)
                .unwrap_err()
                .to_string()
                .contains("d.toml:2")
        );
        let who = "[azure]\nsign_in = \"kerberos\"\n";
        assert!(
            from_str("d.toml", who)
                .unwrap_err()
                .to_string()
                .contains("client-secret")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1"), None);
        assert_eq!(parse_duration("x1s"), None);
    }

    #[test]
    fn https_is_refused_with_advice() {
        assert!(check_url("https://x").unwrap_err().contains("http://"));
        assert!(check_url("http://127.0.0.1:1/x").is_ok());
        assert!(check_url("ftp://x").is_err());
    }
}
