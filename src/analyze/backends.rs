//! Backend faults, per backend (entity id or URL host) over every operation
//! that calls it:
//! - `backend_timeout`: bursts of gateway timeouts (`Timeout`, 504 without a
//!   backend answer, or BackendTime at the forward-request timeout in force),
//!   naming that timeout, the policy scope that sets it and its last change;
//! - `backend_failure`: bursts (or a sustained share) of 5xx that are not
//!   timeouts: the backend's own 5xx, 502/503, refused connections, open
//!   circuit breakers;
//! - `backend_unhealthy`: the app behind the backend shows it in its own
//!   metrics (restarts, out-of-memory, memory or CPU at the limit) or was
//!   just deployed while failing.
//!
//! Each failure is told in one sentence that joins traffic, app metrics and
//! the operations whose error spikes it explains.

use super::Ctx;
use super::apps::app_matches;
use super::policy;
use super::rollup::{BackendRollup, ratio};
use super::stats::{Burst, BurstParams, FAST_BURN, bursts};
use crate::model::{
    ChangeKind, Evidence, Finding, FindingKind, MetricSeries, MetricSource, Origin, PolicyScope,
    Severity, Subject, Timestamp, Window,
};
use std::collections::BTreeMap;

/// Fewest timeouts or failures a backend burst may have.
pub const MIN_EVENTS: u64 = 5;

/// Backend timeout, failure and unhealthy findings. `spikes` are the
/// operation error spikes already found (for the "this matches" clause and
/// to leave one operation's own spike to the operation).
pub fn findings(ctx: &Ctx, spikes: &[Finding]) -> Vec<Finding> {
    let params = BurstParams {
        min_events: MIN_EVENTS,
        alpha: ctx.alpha(ctx.tests()),
        ..BurstParams::default()
    };
    let mut out = Vec::new();
    for b in &ctx.rollup.backends {
        let timeout = forward_timeout(ctx, b);
        if let Some(f) = timeouts(ctx, b, &timeout, &params) {
            out.push(f);
        }
        let troubled = app_health(ctx, &b.backend, None).is_some_and(|a| a.is_unhealthy());
        let failure = failures(ctx, b, spikes, &params, troubled);
        // Without a backend failure, the operations' spikes say when.
        let failing_window = failure.as_ref().and_then(|f| f.window).or_else(|| {
            spikes
                .iter()
                .filter(|s| {
                    let (Some(api), Some(op)) = (&s.subject.api, &s.subject.operation) else {
                        return false;
                    };
                    b.operations.iter().any(|(a, o, _)| a == api && o == op)
                })
                .filter_map(|s| s.window)
                .reduce(|a, w| Window {
                    start: a.start.min(w.start),
                    end: a.end.max(w.end),
                })
        });
        let app = app_health(ctx, &b.backend, failing_window);
        if let Some(mut f) = failure {
            if let Some(app) = &app {
                attach_app(&mut f, app);
            }
            out.push(f);
        }
        if let Some(app) = app
            && let Some(f) = unhealthy(ctx, b, &app, failing_window)
        {
            out.push(f);
        }
    }
    out
}

/// The forward-request timeout in force for a backend's busiest operations:
/// seconds, the scope that sets it, and whether a policy really says so
/// (rather than the APIM default).
#[derive(Clone, Debug, PartialEq)]
pub struct TimeoutInForce {
    pub seconds: f64,
    pub scope: Option<PolicyScope>,
    pub configured: bool,
}

fn forward_timeout(ctx: &Ctx, b: &BackendRollup) -> Option<TimeoutInForce> {
    if ctx.snapshot.policies.is_empty() {
        return None;
    }
    let mut votes: BTreeMap<String, (u64, TimeoutInForce)> = BTreeMap::new();
    for (api, op, n) in b.operations.iter().take(8) {
        let eff = policy::effective_policy(ctx.snapshot, api, op);
        let configured = eff
            .find("forward-request")
            .any(|p| p.section == policy::Section::Backend && !p.implicit);
        if let Some((secs, scope)) = eff.forward_timeout() {
            let key = format!("{secs}@{scope}");
            let e = votes.entry(key).or_insert((
                0,
                TimeoutInForce {
                    seconds: secs,
                    scope: configured.then_some(scope),
                    configured,
                },
            ));
            e.0 += n;
        }
    }
    votes.into_values().max_by_key(|v| v.0).map(|v| v.1)
}

/// Timeouts per dense minute; with a configured timeout, requests whose
/// BackendTime reached it count too (a backend that answered just in time
/// or a log without `Timeout` reasons).
fn timeout_counts(ctx: &Ctx, b: &BackendRollup, t: &Option<TimeoutInForce>) -> Vec<u64> {
    let mut k = ctx.dense(&b.minutes, |s| s.timeouts);
    let Some(t) = t.as_ref().filter(|t| t.configured) else {
        return k;
    };
    // "At the timeout": within a few percent of it, and only since the
    // timeout was last set (before, another limit may have been in force).
    let limit = (t.seconds * 1000.0 * 0.98) as u32;
    let ceiling = (t.seconds * 1000.0 * 1.1 + 1000.0) as u32;
    let since = t
        .scope
        .as_ref()
        .and_then(|scope| {
            ctx.snapshot
                .changes
                .iter()
                .filter(|c| c.policy_scope.as_ref() == Some(scope))
                .filter(|c| !c.failed())
                .map(|c| c.time.minute())
                .max()
        })
        .unwrap_or(i64::MIN);
    let mut at = vec![0u64; ctx.len];
    for s in b
        .series
        .iter()
        .filter_map(|&i| ctx.snapshot.traffic.series.get(i))
    {
        for (m, st) in &s.minutes {
            if *m < since || !super::rollup::in_scope(ctx.options, *m) {
                continue;
            }
            if let Some(slot) = ctx.index_of(*m).and_then(|i| at.get_mut(i)) {
                *slot += st.backend_latency.count_between(limit, ceiling);
            }
        }
    }
    for (a, b) in k.iter_mut().zip(at) {
        *a = (*a).max(b);
    }
    k
}

fn timeouts(
    ctx: &Ctx,
    b: &BackendRollup,
    t: &Option<TimeoutInForce>,
    params: &BurstParams,
) -> Option<Finding> {
    let n = ctx.dense(&b.minutes, |s| s.requests);
    let k = timeout_counts(ctx, b, t);
    let mut found: Vec<Burst> = bursts(&n, &k, params)
        .into_iter()
        .filter(|x| x.burn.alerts())
        .collect();
    // A backend's other traffic dilutes one operation's timeouts: the
    // operations' own timeout bursts widen (or make) the backend's window.
    let pre = super::stats::Prefix::new(&n, &k);
    for (api, op, _) in b.operations.iter().take(20) {
        let Some(o) = ctx.rollup.operation(api, op) else {
            continue;
        };
        let on = ctx.dense(&o.minutes, |s| s.requests);
        let ok = ctx.dense(&o.minutes, |s| s.timeouts);
        for ob in bursts(&on, &ok, params)
            .into_iter()
            .filter(|x| x.burn.alerts())
        {
            match found
                .iter_mut()
                .find(|x| x.start <= ob.end + 5 && ob.start <= x.end + 5)
            {
                Some(x) => {
                    x.start = x.start.min(ob.start);
                    x.end = x.end.max(ob.end);
                    let (wn, wk) = pre.sum(x.start, x.end);
                    x.requests = wn;
                    x.events = wk;
                }
                None => {
                    let (wn, wk) = pre.sum(ob.start, ob.end);
                    found.push(Burst {
                        requests: wn,
                        events: wk,
                        p_value: super::stats::binom_tail(wk, wn, ob.baseline),
                        ..ob
                    });
                }
            }
        }
    }
    let worst = found
        .iter()
        .max_by(|x, y| x.excess().total_cmp(&y.excess()))?;
    let window = ctx.window(worst.start, worst.end);
    let rate = worst.rate();
    // The limit requests ran into: from policy, else read off the records.
    let records = ctx.samples(
        window,
        |key| key.backend.eq_ignore_ascii_case(&b.backend),
        |r| {
            r.last_error_reason
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case("Timeout"))
                || (r.response_code == 504 && r.backend_response_code.is_none())
        },
        40,
    );
    let observed: Vec<f64> = records
        .iter()
        .map(|r| f64::from(r.backend_time_ms.unwrap_or(r.total_time_ms)))
        .filter(|x| *x > 0.0)
        .collect();
    let observed_s = super::stats::median(&observed).map(|ms| (ms / 1000.0).round());
    let mut values = Evidence::default()
        .value("requests", worst.requests as f64)
        .value("timeouts", worst.events as f64)
        .value("timeout_rate", rate)
        .value("share_affected", rate)
        .value("baseline_rate", worst.baseline)
        .value("peak_rate", worst.peak_rate)
        .value("p_value", worst.p_value)
        .value("burn_rate_fast", worst.burn.fast)
        .value("burn_rate_slow", worst.burn.slow)
        .value("duration_minutes", window.duration_minutes() as f64);
    if let Some(s) = observed_s {
        values = values.value("observed_timeout_seconds", s);
    }
    let limit_text = match t {
        Some(t) if t.configured => {
            values = values.value("timeout_seconds", t.seconds);
            let scope = t.scope.clone().unwrap_or(PolicyScope::Global);
            let changed = last_change(ctx, &scope, window.end);
            let when = match changed {
                Some((time, caller, from)) => {
                    if let Some(f) = from {
                        values = values.value("previous_timeout_s", f);
                    }
                    values = values.value(
                        "timeout_changed_minutes_before",
                        ((window.start.millis() - time.millis()) / 60_000) as f64,
                    );
                    format!(
                        ", last changed {}{}{}",
                        time.to_rfc3339(),
                        caller.map(|c| format!(" by {c}")).unwrap_or_default(),
                        from.map(|f| format!(" (was {} s)", secs(f)))
                            .unwrap_or_default()
                    )
                }
                None => ", no change to that scope in the loaded activity log".to_string(),
            };
            format!(
                "the {} s forward-request timeout set at scope {scope}{when}",
                secs(t.seconds)
            )
        }
        _ => {
            let seen = observed_s
                .map(|s| format!("a limit of about {} s", secs(s)))
                .unwrap_or_else(|| "the gateway's limit".to_string());
            let config = if ctx.snapshot.policies.is_empty() {
                "no policies were loaded to name the forward-request timeout"
            } else {
                "no forward-request timeout is set in the loaded policies (APIM default 300 s)"
            };
            format!("{seen} ({config})")
        }
    };
    let ops = ops_in_window(ctx, b, window, |s| s.timeouts);
    let name = ctx.backend_label(&b.backend);
    let summary = format!(
        "backend {} timed out on {:.0}% of requests {}–{} UTC ({} of {}, peak {:.0}% at {}): requests hit {limit_text}",
        name,
        rate * 100.0,
        window.start.hhmm(),
        window.end.hhmm(),
        worst.events,
        worst.requests,
        worst.peak_rate * 100.0,
        ctx.time_of(worst.peak_index).hhmm(),
    );
    values.text = format!(
        "{} timeouts in {} requests against a baseline of {:.3}% (binomial tail p {}); SLO 99.9% burn rate {:.0}x fast / {:.0}x slow; operations hit: {}",
        worst.events,
        worst.requests,
        worst.baseline * 100.0,
        super::fmt_p(worst.p_value),
        worst.burn.fast,
        worst.burn.slow,
        ops_text(&ops)
    );
    values.records = records.into_iter().take(3).collect();
    values.sources = super::sources_of(&values.records);
    let severity = if rate >= 0.25 && worst.burn.fast >= FAST_BURN {
        Severity::Critical
    } else if worst.burn.fast >= FAST_BURN {
        Severity::High
    } else {
        Severity::Medium
    };
    let mut f = Finding::new(
        FindingKind::BackendTimeout,
        severity,
        Subject::backend(&name),
        summary,
    )
    .window(window)
    .evidence(values)
    .confidence(super::confidence_from_p(worst.p_value, worst.events));
    for other in found.iter().filter(|x| *x != worst) {
        let w = ctx.window(other.start, other.end);
        f.evidence.push(
            Evidence::text(format!(
                "another timeout burst {}–{} UTC: {} of {} requests",
                w.start.hhmm(),
                w.end.hhmm(),
                other.events,
                other.requests
            ))
            .value("timeouts", other.events as f64)
            .value("requests", other.requests as f64),
        );
    }
    Some(f)
}

fn secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{}", s as i64)
    } else {
        format!("{s:.1}")
    }
}

/// The latest policy write to `scope` at or before `until`: when, by whom,
/// and the forward-request timeout it replaced where the old XML is known.
fn last_change(
    ctx: &Ctx,
    scope: &PolicyScope,
    until: Timestamp,
) -> Option<(Timestamp, Option<String>, Option<f64>)> {
    let c = ctx
        .snapshot
        .changes
        .iter()
        .filter(|c| c.policy_scope.as_ref() == Some(scope) && c.time <= until)
        .filter(|c| !c.failed())
        .max_by_key(|c| c.time)?;
    let before =
        policy::policy_before(ctx.snapshot, c).and_then(|xml| policy::timeout_in_xml(&xml));
    Some((c.time, c.caller.clone(), before))
}

/// Operations of a backend with what they contributed inside `window`.
fn ops_in_window(
    ctx: &Ctx,
    b: &BackendRollup,
    window: Window,
    value: impl Fn(&super::rollup::Stats) -> u64,
) -> Vec<(String, String, u64, u64)> {
    let mut out = Vec::new();
    for (api, op, _) in &b.operations {
        let Some(o) = ctx.rollup.operation(api, op) else {
            continue;
        };
        let mut n = 0;
        let mut k = 0;
        for m in o
            .minutes
            .iter()
            .filter(|m| window.contains(Timestamp::from_minute(m.minute)))
        {
            n += m.stats.requests;
            k += value(&m.stats);
        }
        if k > 0 {
            out.push((api.clone(), op.clone(), k, n));
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.2));
    out
}

fn ops_text(ops: &[(String, String, u64, u64)]) -> String {
    if ops.is_empty() {
        return "none".into();
    }
    let mut parts: Vec<String> = ops
        .iter()
        .take(5)
        .map(|(a, o, k, n)| format!("{a}/{o} {k} of {n}"))
        .collect();
    if ops.len() > 5 {
        parts.push(format!("and {} more", ops.len() - 5));
    }
    parts.join(", ")
}

fn failures(
    ctx: &Ctx,
    b: &BackendRollup,
    spikes: &[Finding],
    params: &BurstParams,
    app_troubled: bool,
) -> Option<Finding> {
    let n = ctx.dense(&b.minutes, |s| s.requests);
    let k = ctx.dense(&b.minutes, |s| s.failures());
    let found: Vec<Burst> = bursts(&n, &k, params)
        .into_iter()
        .filter(|x| x.burn.alerts())
        .collect();
    let (window, events, requests, p_value, burn_fast, sustained) = match found
        .iter()
        .max_by(|x, y| x.excess().total_cmp(&y.excess()))
    {
        Some(w) => (
            ctx.window(w.start, w.end),
            w.events,
            w.requests,
            Some(w.p_value),
            w.burn.fast,
            false,
        ),
        None => {
            // A backend failing all along has no burst over its own
            // baseline: judge the last hour against the SLO instead.
            let s = ctx.axis.index_from(ctx.end_minute() - 60);
            let (ln, lk) = (n[s..].iter().sum::<u64>(), k[s..].iter().sum::<u64>());
            let rate = ratio(lk, ln);
            if lk < 20 || rate < 0.05 || rate < FAST_BURN * 0.001 {
                return None;
            }
            (ctx.window(s, ctx.len), lk, ln, None, rate / 0.001, true)
        }
    };
    let ops = ops_in_window(ctx, b, window, |s| s.failures());
    // One operation's own spike is the operation's story, unless the
    // backend serves only that operation.
    let served = b.operations.len();
    let top_share = ops.first().map(|o| ratio(o.2, events)).unwrap_or(0.0);
    let top_has_spike = ops.first().is_some_and(|(api, op, _, _)| {
        spikes.iter().any(|s| {
            s.subject.api.as_deref() == Some(api.as_str())
                && s.subject.operation.as_deref() == Some(op.as_str())
                && s.window.is_some_and(|w| w.overlaps(&window))
        })
    });
    if !sustained && !app_troubled && served > 1 && top_share >= 0.8 && top_has_spike {
        return None;
    }
    let rows: Vec<_> = b
        .minutes
        .iter()
        .filter(|m| window.contains(Timestamp::from_minute(m.minute)))
        .collect();
    let sum = |f: &dyn Fn(&super::rollup::Stats) -> u64| rows.iter().map(|m| f(&m.stats)).sum();
    let backend_5xx: u64 = sum(&|s| s.backend_5xx);
    let conn: u64 = sum(&|s| s.connection_failures);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for m in &rows {
        for (r, c) in &m.stats.error_reasons {
            *reasons.entry(r.clone()).or_default() += c;
        }
    }
    let breaker = reasons
        .iter()
        .filter(|(r, _)| r.to_ascii_lowercase().contains("circuit"))
        .map(|(_, c)| *c)
        .sum::<u64>();
    let rate = ratio(events, requests);
    let when = if sustained {
        "in the last hour".to_string()
    } else {
        format!(
            "between {} and {} UTC",
            window.start.hhmm(),
            window.end.hhmm()
        )
    };
    let matching: Vec<String> = spikes
        .iter()
        .filter(|s| {
            s.window.is_some_and(|w| w.overlaps(&window))
                && ops.iter().any(|(a, o, _, _)| {
                    s.subject.api.as_deref() == Some(a.as_str())
                        && s.subject.operation.as_deref() == Some(o.as_str())
                })
        })
        .filter_map(|s| {
            Some(ctx.op_label(s.subject.api.as_deref()?, s.subject.operation.as_deref()?))
        })
        .collect();
    let mut kinds = Vec::new();
    if backend_5xx > 0 {
        kinds.push(format!("{backend_5xx} answered 5xx by the backend"));
    }
    if conn > 0 {
        kinds.push(format!("{conn} connection failures"));
    }
    if breaker > 0 {
        kinds.push(format!("{breaker} rejected by an open circuit breaker"));
    }
    let other = events.saturating_sub(backend_5xx + conn + breaker);
    if other > 0 {
        kinds.push(format!("{other} other gateway 5xx"));
    }
    let name = ctx.backend_label(&b.backend);
    let mut summary = format!(
        "backend {} failed {:.0}% of requests {when}",
        name,
        rate * 100.0
    );
    if !matching.is_empty() {
        summary.push_str(&format!(
            "; this matches the 5xx spike on {}",
            matching.join(", ")
        ));
    }
    let mut ev = Evidence::text(format!(
        "{events} of {requests} requests failed ({}); operations: {}{}",
        kinds.join(", "),
        ops_text(&ops),
        match p_value {
            Some(p) => format!(
                ", binomial tail p {} against the backend's own baseline",
                super::fmt_p(p)
            ),
            None => String::new(),
        }
    ))
    .value("requests", requests as f64)
    .value("failures", events as f64)
    .value("failure_rate", rate)
    .value("share_affected", rate)
    .value("backend_5xx", backend_5xx as f64)
    .value("connection_failures", conn as f64)
    .value("circuit_breaker_rejections", breaker as f64)
    .value("burn_rate_fast", burn_fast)
    .value("operations_affected", ops.len() as f64);
    if let Some(p) = p_value {
        ev = ev.value("p_value", p);
    }
    ev.records = ctx.samples(
        window,
        |key| key.backend.eq_ignore_ascii_case(&b.backend),
        |r| {
            r.response_code >= 500
                && !r
                    .last_error_reason
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case("Timeout"))
        },
        3,
    );
    ev.sources = super::sources_of(&ev.records);
    let severity = if rate >= 0.25 {
        Severity::Critical
    } else if rate >= 0.05 || burn_fast >= FAST_BURN {
        Severity::High
    } else {
        Severity::Medium
    };
    let confidence = match p_value {
        Some(p) => super::confidence_from_p(p, events),
        None => 0.8,
    };
    Some(
        Finding::new(
            FindingKind::BackendFailure,
            severity,
            Subject::backend(&name),
            summary,
        )
        .window(window)
        .evidence(ev)
        .confidence(confidence),
    )
}

/// What the app behind a backend says in its own metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppHealth {
    pub resource: String,
    pub restarts: f64,
    pub max_memory_percent: Option<f64>,
    pub max_cpu_percent: Option<f64>,
    /// An explicit out-of-memory signal (OOM metric), or restarts with
    /// memory at the limit.
    pub out_of_memory: bool,
    pub deployments: Vec<(Timestamp, String)>,
    /// The last deployment before the trouble began, and the first one
    /// after it began (a fix or rollback), when a window is known.
    pub deployed_before: Option<Timestamp>,
    pub deployed_after: Option<Timestamp>,
    pub first_restart: Option<Timestamp>,
    /// Lowest `HealthCheckStatus` (App Service, Functions: percent of
    /// instances passing the health check) and since when it failed.
    pub health_check_min: Option<f64>,
    pub health_check_failing_since: Option<Timestamp>,
    /// The working set fell to under half its usual level (a recycled or
    /// crashed process): when, usual bytes, lowest bytes.
    pub working_set_drop: Option<(Timestamp, f64, f64)>,
    /// 5xx the app counted itself (`Http5xx`, `Requests` by status class).
    pub app_5xx: f64,
    pub sources: Vec<Origin>,
}

impl AppHealth {
    /// Something is wrong with the app itself.
    pub fn is_unhealthy(&self) -> bool {
        self.out_of_memory
            || self.restarts >= 2.0
            || self.max_memory_percent.is_some_and(|m| m >= 95.0)
            || self.health_check_failing_since.is_some()
    }

    /// The app's symptoms in a few words ("out-of-memory restarts").
    pub fn phrase(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.out_of_memory && self.restarts > 0.0 {
            parts.push("out-of-memory restarts".to_string());
        } else if self.out_of_memory {
            parts.push("out-of-memory kills".to_string());
        } else if self.restarts > 0.0 {
            parts.push(format!("{} restarts", self.restarts as u64));
        }
        if let Some(m) = self.max_memory_percent.filter(|m| *m >= 90.0) {
            parts.push(format!("memory at {m:.0}% of its limit"));
        }
        if let Some(c) = self.max_cpu_percent.filter(|c| *c >= 90.0) {
            parts.push(format!("CPU at {c:.0}%"));
        }
        if let (Some(t), Some(m)) = (self.health_check_failing_since, self.health_check_min) {
            parts.push(format!(
                "its health check failing from {} UTC (HealthCheckStatus down to {m:.0}%)",
                t.hhmm()
            ));
        }
        if let Some((t, usual, low)) = self.working_set_drop {
            parts.push(format!(
                "its working set falling from {:.0} MB to {:.0} MB at {} UTC",
                usual / 1_048_576.0,
                low / 1_048_576.0,
                t.hhmm()
            ));
        }
        if self.app_5xx > 0.0 && !parts.is_empty() {
            parts.push(format!("{:.0} 5xx counted by the app itself", self.app_5xx));
        }
        if let Some(t) = self.deployed_before {
            parts.push(format!("after a deployment at {} UTC", t.hhmm()));
        }
        if let Some(t) = self.deployed_after {
            parts.push(format!("until a deployment at {} UTC", t.hhmm()));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// The app metrics of a backend, over the scope (or around `window`).
pub fn app_health(ctx: &Ctx, backend: &str, window: Option<Window>) -> Option<AppHealth> {
    let span = window
        .map(|w| Window {
            start: w.start.plus_minutes(-30),
            end: w.end.plus_minutes(5),
        })
        .or(ctx.rollup.window);
    let inside = |t: Timestamp| ctx.in_scope(t) && span.is_none_or(|w| w.contains(t));
    // Deployments matter from longer before: a leak takes time to fill memory.
    let deploy_span = span.map(|w| Window {
        start: w.start.plus_minutes(-90),
        end: w.end,
    });
    let deploy_inside = |t: Timestamp| ctx.in_scope(t) && deploy_span.is_none_or(|w| w.contains(t));
    let series: Vec<&MetricSeries> = ctx
        .snapshot
        .metrics
        .iter()
        .filter(|m| m.source == MetricSource::BackendApp)
        .filter(|m| {
            app_matches(
                ctx,
                backend,
                m.resource_id.as_deref(),
                m.resource.as_deref(),
            )
        })
        .collect();
    let deployments: Vec<(Timestamp, String)> = ctx
        .snapshot
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Deployment && deploy_inside(c.time))
        .filter(|c| !c.failed())
        .filter(|c| app_matches(ctx, backend, c.resource_id.as_deref(), None))
        .map(|c| (c.time, c.operation.clone()))
        .collect();
    if series.is_empty() && deployments.is_empty() {
        return None;
    }
    let deployed_before = window.and_then(|w| {
        deployments
            .iter()
            .filter(|d| d.0 <= w.start)
            .map(|d| d.0)
            .max()
    });
    let deployed_after = window.and_then(|w| {
        deployments
            .iter()
            .filter(|d| d.0 > w.start)
            .map(|d| d.0)
            .min()
    });
    let mut h = AppHealth {
        deployed_before,
        deployed_after,
        resource: series
            .first()
            .and_then(|s| {
                s.resource_id
                    .as_deref()
                    .and_then(crate::model::app_of_resource)
                    .map(|a| a.host_label())
                    .or_else(|| s.resource.clone())
            })
            .unwrap_or_else(|| backend.to_string()),
        deployments,
        ..AppHealth::default()
    };
    let mut oom_metric = false;
    for s in &series {
        let name = s.name.to_ascii_lowercase();
        let pts: Vec<(Timestamp, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(t, v)| inside(*t) && v.is_finite())
            .collect();
        if pts.is_empty() {
            continue;
        }
        h.sources.push(s.origin.clone());
        let max = pts.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        let percent = s
            .unit
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case("Percent"))
            || name.contains("percent");
        let agg = s.aggregation.to_ascii_lowercase();
        if name.contains("healthcheck") {
            // Percent of instances passing: 100 healthy, 0 none.
            let min = pts.iter().map(|p| p.1).fold(f64::MAX, f64::min);
            let low: Vec<Timestamp> = pts.iter().filter(|p| p.1 < 99.5).map(|p| p.0).collect();
            h.health_check_min = Some(h.health_check_min.unwrap_or(100.0).min(min));
            if min <= 50.0 || low.len() >= 2 {
                let first = low.first().copied();
                h.health_check_failing_since = match (h.health_check_failing_since, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            continue;
        }
        if (name.contains("workingset") || (name.contains("memory") && !percent))
            && (agg == "average" || agg == "minimum")
        {
            // Usual level: the points before the span, else the whole series.
            let before: Vec<f64> = s
                .points
                .iter()
                .filter(|(t, v)| {
                    v.is_finite() && ctx.in_scope(*t) && span.is_some_and(|w| *t < w.start)
                })
                .map(|p| p.1)
                .collect();
            let all: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let usual = super::stats::median(if before.len() >= 3 { &before } else { &all });
            if let Some(usual) = usual.filter(|u| *u > 0.0)
                && let Some(low) = pts.iter().find(|p| p.1 < usual * 0.5)
            {
                let lowest = pts.iter().map(|p| p.1).fold(f64::MAX, f64::min);
                if h.working_set_drop.is_none_or(|d| low.0 < d.0) {
                    h.working_set_drop = Some((low.0, usual, lowest));
                }
            }
            continue;
        }
        let five_xx = s
            .dimensions
            .get("statuscodecategory")
            .is_some_and(|c| c.starts_with('5'));
        if (name == "http5xx" || (name == "requests" && five_xx))
            && (agg == "total" || agg == "count")
        {
            h.app_5xx += pts.iter().map(|p| p.1.max(0.0)).sum::<f64>();
            continue;
        }
        if name.contains("restart") {
            let n = if agg == "total" || agg == "count" {
                pts.iter().map(|p| p.1.max(0.0)).sum::<f64>()
            } else {
                pts.windows(2).map(|w| (w[1].1 - w[0].1).max(0.0)).sum()
            };
            if n > 0.0 {
                h.restarts += n;
                let first = pts.iter().find(|p| p.1 > 0.0).map(|p| p.0);
                h.first_restart = match (h.first_restart, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        } else if name.contains("oom") || name.contains("outofmemory") {
            oom_metric |= max > 0.0;
        } else if name.contains("memory") && percent {
            h.max_memory_percent = Some(h.max_memory_percent.unwrap_or(0.0).max(max));
        } else if name.contains("cpu") && percent {
            h.max_cpu_percent = Some(h.max_cpu_percent.unwrap_or(0.0).max(max));
        }
    }
    h.out_of_memory =
        oom_metric || (h.restarts > 0.0 && h.max_memory_percent.is_some_and(|m| m >= 90.0));
    h.sources.sort();
    h.sources.dedup();
    Some(h)
}

fn app_evidence(app: &AppHealth) -> Evidence {
    let mut e = Evidence::text(format!(
        "app {}: {}",
        app.resource,
        app.phrase()
            .unwrap_or_else(|| "metrics show nothing unusual".into())
    ))
    .value("restarts", app.restarts);
    if let Some(m) = app.max_memory_percent {
        e = e.value("max_memory_percent", m);
    }
    if let Some(c) = app.max_cpu_percent {
        e = e.value("max_cpu_percent", c);
    }
    if let Some(m) = app.health_check_min {
        e = e.value("min_health_check_percent", m);
    }
    if let Some((_, usual, low)) = app.working_set_drop {
        e = e
            .value("working_set_usual_bytes", usual)
            .value("working_set_low_bytes", low);
    }
    if app.app_5xx > 0.0 {
        e = e.value("app_5xx", app.app_5xx);
    }
    e.values
        .insert("deployments".into(), app.deployments.len() as f64);
    e.sources = app.sources.clone();
    e
}

/// Joins the app's symptoms into the failure sentence.
fn attach_app(f: &mut Finding, app: &AppHealth) {
    if let Some(p) = app.phrase() {
        let (head, tail) = match f.summary.find("; this matches") {
            Some(i) => f.summary.split_at(i),
            None => (f.summary.as_str(), ""),
        };
        f.summary = format!("{head} with {p}{tail}");
        if app.out_of_memory && f.severity < Severity::High {
            f.severity = Severity::High;
        }
    }
    f.evidence.push(app_evidence(app));
}

fn unhealthy(
    ctx: &Ctx,
    b: &BackendRollup,
    app: &AppHealth,
    failing: Option<Window>,
) -> Option<Finding> {
    let deployed_while_failing = failing.is_some() && !app.deployments.is_empty();
    let restart_while_failing =
        failing.is_some() && (app.restarts > 0.0 || app.working_set_drop.is_some());
    if !(app.is_unhealthy() || deployed_while_failing || restart_while_failing) {
        return None;
    }
    let phrase = app.phrase().unwrap_or_else(|| "trouble".into());
    let name = ctx.backend_label(&b.backend);
    let summary = format!(
        "app {} behind backend {} shows {phrase}{}",
        app.resource,
        name,
        if failing.is_some() {
            " while the backend fails requests"
        } else {
            ""
        }
    );
    let severity = if failing.is_some() || app.out_of_memory {
        Severity::High
    } else {
        Severity::Medium
    };
    let window = failing.or_else(|| {
        app.first_restart
            .or(app.health_check_failing_since)
            .map(|t| Window {
                start: t,
                end: t.plus_minutes(1),
            })
    });
    let mut f = Finding::new(
        FindingKind::BackendUnhealthy,
        severity,
        Subject::backend(&name),
        summary,
    )
    .evidence(app_evidence(app))
    .confidence(if app.out_of_memory { 0.9 } else { 0.75 });
    f.window = window.or(ctx.rollup.window);
    Some(f)
}

/// Latency regressions a backend timeout explains (the timed-out requests
/// are the slow tail, inside the same window) are folded into it as
/// evidence rather than kept as findings of their own.
pub fn fold_symptoms(
    ctx: &Ctx,
    backend: Vec<Finding>,
    spikes: Vec<Finding>,
    latency: Vec<Finding>,
) -> Vec<Finding> {
    let mut backend = backend;
    let mut out = Vec::new();
    let timeouts: Vec<usize> = backend
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == FindingKind::BackendTimeout)
        .map(|(i, _)| i)
        .collect();
    // Error spikes stay findings of their own (the operation's symptom,
    // joined to the backend in its story); latency bent by timeouts folds.
    out.extend(spikes);
    for s in latency {
        let covering = timeouts.iter().copied().find(|&i| {
            let t = &backend[i];
            let (Some(tw), Some(sw)) = (t.window, s.window) else {
                return false;
            };
            let near = Window {
                start: tw.start.plus_minutes(-3),
                end: tw.end.plus_minutes(3),
            };
            // Coarse latency buckets reach past the burst by up to a bucket.
            let bucket = s
                .evidence
                .first()
                .and_then(|e| e.values.get("bucket_minutes"))
                .copied()
                .unwrap_or(0.0) as i64;
            let inside = near.start.plus_minutes(-bucket) <= sw.start
                && sw.end <= near.end.plus_minutes(bucket)
                && sw.overlaps(&tw);
            let backend_of_op = match (s.subject.api.as_deref(), s.subject.operation.as_deref()) {
                (Some(api), Some(op)) => ctx.backends_of(api, op).iter().any(|b| {
                    t.subject
                        .backend
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(b))
                }),
                _ => false,
            };
            let mostly_timeouts = match s.kind {
                FindingKind::ErrorSpike => {
                    let v = |k: &str| {
                        s.evidence
                            .first()
                            .and_then(|e| e.values.get(k))
                            .copied()
                            .unwrap_or(0.0)
                    };
                    v("timeouts") * 2.0 >= v("errors_5xx")
                }
                _ => true,
            };
            inside && mostly_timeouts && backend_of_op
        });
        match covering {
            Some(i) => {
                let f = &mut backend[i];
                f.evidence.push(
                    Evidence::text(format!("also explains: {}", s.summary))
                        .value("folded_severity", s.severity as u8 as f64),
                );
            }
            None => out.push(s),
        }
    }
    out.extend(backend);
    out
}
