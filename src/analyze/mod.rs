//! Analysis: pure functions from a `Snapshot` to `Finding`s. No I/O, no
//! clock (time comes in through `Options`). The home of polars and statrs.
//!
//! `analyze` rolls traffic up once (`rollup`), runs the traffic detectors
//! (`spikes`, `backends`, `latency`), the configuration checks of the other
//! analyzers (`policy`, `detect`, `network`, `scaling`), the backend map
//! (`routes`) and change correlation (`changes`), then ranks everything.
//! `stories` ties the findings into root-cause stories (`story`).

pub mod apps;
pub mod axis;
pub mod backends;
pub mod changes;
pub mod detect;
pub mod latency;
pub mod network;
pub mod policy;
pub mod rollup;
pub mod routes;
pub mod scaling;
pub mod spikes;
pub mod stats;
pub mod story;
pub mod timeline;

pub use rollup::{Rollup, rollup};

use crate::model::{
    BackendHealth, Finding, FindingKind, Minute, Origin, RequestRecord, RouteEntry, SeriesKey,
    Snapshot, Story, Timestamp, Verdict, Window,
};
use std::collections::BTreeSet;

/// What an analysis run looks at.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only data at or after this instant.
    pub since: Option<Timestamp>,
    /// Only data before this instant.
    pub until: Option<Timestamp>,
}

impl Options {
    /// True when an instant is inside the scope.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// Every analyzer over the snapshot; findings most urgent first.
pub fn analyze(snapshot: &Snapshot, options: &Options) -> Vec<Finding> {
    let detection = detection_options(options);
    let (ctx, plain) = rayon::join(|| Ctx::new(snapshot, &detection), || Plain::of(snapshot));
    analyze_in(&ctx, options, plain).0
}

/// What the detectors read for a scope: everything before its end. An
/// incident that began before `--since` keeps its real onset and cause
/// (a change before the window); only findings that reach into the scope
/// are reported, and the backend map and tables use the scope alone.
fn detection_options(options: &Options) -> Options {
    Options {
        since: None,
        until: options.until,
    }
}

/// What one diagnosis needs: the findings in scope, and the backend map and
/// stories over the whole data (what `analyze`, `backend_map` and
/// `stories` return). Without a scope the rollup and the traffic
/// detectors run once for all three instead of three times.
pub fn analyze_all(
    snapshot: &Snapshot,
    options: &Options,
) -> (Vec<Finding>, Vec<RouteEntry>, Vec<Story>) {
    let j = analyze_judged(snapshot, options);
    (j.findings, j.backend_map, j.stories)
}

/// What one judged analysis returns: `analyze_all`'s three, each
/// backend's own health and the verdict.
#[derive(Clone, Debug, Default)]
pub struct Judged {
    pub findings: Vec<Finding>,
    pub backend_map: Vec<RouteEntry>,
    pub backends: Vec<BackendHealth>,
    pub stories: Vec<Story>,
    pub verdict: Verdict,
}

/// `analyze_all`, each backend's own health and the verdict, over one
/// rollup of the scope: the backend map and every table use the window
/// analysed.
pub fn analyze_judged(snapshot: &Snapshot, options: &Options) -> Judged {
    let detection = detection_options(options);
    let (ctx, plain) = rayon::join(|| Ctx::new(snapshot, &detection), || Plain::of(snapshot));
    let (findings, backend) = analyze_in(&ctx, options, plain);
    let stories = story::stories(&ctx, &findings);
    let judge = |scope: &Ctx| {
        let backends = routes::backends_in(scope, &backend);
        (
            routes::backend_map_with(scope, &backends),
            backends,
            timeline::verdict(scope, &findings, &stories),
        )
    };
    let (backend_map, backends, verdict) = if options.since.is_some() {
        judge(&Ctx::new(snapshot, options))
    } else {
        judge(&ctx)
    };
    Judged {
        findings,
        backend_map,
        backends,
        stories,
        verdict,
    }
}

/// The findings that read the snapshot alone (no rollup, no backend map):
/// computed beside the rollup and the traffic detectors, on another core.
struct Plain {
    policy: Vec<Finding>,
    detect: Vec<Finding>,
    scaling: Vec<Finding>,
}

impl Plain {
    fn of(snapshot: &Snapshot) -> Plain {
        let (policy, (detect, scaling)) = rayon::join(
            || policy::findings(snapshot),
            || {
                rayon::join(
                    || detect::findings(snapshot),
                    || scaling::findings(snapshot),
                )
            },
        );
        Plain {
            policy,
            detect,
            scaling,
        }
    }
}

/// The ranked findings that reach into `scope`, and the backend findings
/// alone (before symptoms are folded into them), which the backend map shows.
fn analyze_in(ctx: &Ctx<'_>, options: &Options, plain: Plain) -> (Vec<Finding>, Vec<Finding>) {
    let snapshot = ctx.snapshot;
    let scope = Window {
        start: options.since.unwrap_or(Timestamp(i64::MIN)),
        end: options.until.unwrap_or(Timestamp(i64::MAX)),
    };
    let reaches = |f: &Finding| {
        f.window
            .is_none_or(|w| w.overlaps(&scope) || w.start == w.end && scope.contains(w.start))
    };
    let spikes = spikes::findings(ctx);
    let backend = backends::findings(ctx, &spikes);
    let backend_alone: Vec<Finding> = backend.iter().filter(|f| reaches(f)).cloned().collect();
    let latency = latency::findings(ctx);
    let mut out = backends::fold_symptoms(ctx, backend, spikes, latency);
    let map = routes::backend_map_in(ctx, &out);
    out.extend(routes::findings(ctx, &map));
    let mut others = plain.policy;
    others.extend(plain.detect);
    others.extend(network::findings(snapshot, &map));
    others.extend(plain.scaling);
    // Keep what reaches into the scope (configuration findings have no
    // window and stay).
    out.extend(others);
    out.retain(|f| reaches(f));
    timeline::annotate(ctx, &mut out);
    let correlated = changes::findings(ctx, &out);
    out.extend(correlated);
    rank(&mut out);
    (out, backend_alone)
}

/// Most urgent first: severity, then confidence, then the earliest window.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.confidence.total_cmp(&a.confidence))
            .then_with(|| match (a.window, b.window) {
                (Some(x), Some(y)) => x.start.cmp(&y.start),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// For every operation: where it routes, and that backend's health.
pub fn backend_map(snapshot: &Snapshot) -> Vec<RouteEntry> {
    backend_map_scoped(snapshot, &Options::default())
}

/// The backend map over the scope of `options` only.
pub fn backend_map_scoped(snapshot: &Snapshot, options: &Options) -> Vec<RouteEntry> {
    let ctx = Ctx::new(snapshot, options);
    let spikes = spikes::findings(&ctx);
    let backend = backends::findings(&ctx, &spikes);
    routes::backend_map_in(&ctx, &backend)
}

/// Root-cause stories tying symptoms to changes and backend faults.
pub fn stories(snapshot: &Snapshot, findings: &[Finding]) -> Vec<Story> {
    stories_in(snapshot, &Options::default(), findings)
}

/// Stories over the scope of `options` (changes before it still count as causes).
pub fn stories_in(snapshot: &Snapshot, options: &Options, findings: &[Finding]) -> Vec<Story> {
    story::stories(&Ctx::new(snapshot, options), findings)
}

/// What every detector shares: the snapshot, the scope and the rollup, with
/// the dense minute axis detectors index by (`axis`: minutes with traffic,
/// long quiet stretches shrunk, so its length follows the rows, not the
/// time span).
pub struct Ctx<'a> {
    pub snapshot: &'a Snapshot,
    pub options: &'a Options,
    pub rollup: Rollup,
    /// First minute of the dense axis.
    pub start: Minute,
    /// Minutes on the dense axis.
    pub len: usize,
    pub axis: axis::Axis,
    /// Configured operations by lower-case (api, operation), built on first use.
    operations: std::sync::OnceLock<std::collections::HashMap<(String, String), usize>>,
}

impl<'a> Ctx<'a> {
    pub fn new(snapshot: &'a Snapshot, options: &'a Options) -> Ctx<'a> {
        let rollup = rollup::rollup(snapshot, options);
        let axis = axis::Axis::new(
            rollup
                .operations
                .iter()
                .flat_map(|o| o.minutes.iter().map(|m| m.minute)),
        );
        Ctx {
            snapshot,
            options,
            rollup,
            start: axis.first().unwrap_or(0),
            len: axis.len(),
            axis,
            operations: std::sync::OnceLock::new(),
        }
    }

    /// A per-minute value on the dense axis (zero where there was no traffic).
    pub fn dense(
        &self,
        rows: &[rollup::MinuteRow],
        value: impl Fn(&rollup::Stats) -> u64,
    ) -> Vec<u64> {
        self.axis.dense(rows, |r| r.minute, |r| value(&r.stats))
    }

    /// Dense indices `[s, e)` as a time window.
    pub fn window(&self, s: usize, e: usize) -> Window {
        Window::minutes(self.axis.minute_of(s), self.axis.end_minute_of(s, e))
    }

    pub fn time_of(&self, i: usize) -> Timestamp {
        Timestamp::from_minute(self.axis.minute_of(i))
    }

    /// The dense index of a minute with traffic (`None` off the axis).
    pub fn index_of(&self, m: Minute) -> Option<usize> {
        self.axis.index_of(m)
    }

    /// The minute after the last one on the axis.
    pub fn end_minute(&self) -> Minute {
        self.axis.minute_of(self.len)
    }

    /// How many (series, minute) cells the burst tests look at.
    pub fn tests(&self) -> usize {
        (self.rollup.operations.len() + self.rollup.backends.len()).max(1) * self.len.max(1)
    }

    /// Per-window significance after a Bonferroni correction for `tests`.
    pub fn alpha(&self, tests: usize) -> f64 {
        (0.01 / tests as f64).clamp(1e-12, 1e-4)
    }

    /// How people know an operation: `api/op (GET /stock/{id})`.
    pub fn op_label(&self, api: &str, op: &str) -> String {
        // An index, not a scan: this is asked once per operation.
        let index = self.operations.get_or_init(|| {
            let mut m = std::collections::HashMap::new();
            for (i, o) in self.snapshot.operations.iter().enumerate() {
                m.entry((o.api_id.to_ascii_lowercase(), o.id.to_ascii_lowercase()))
                    .or_insert(i);
            }
            m
        });
        let known = index
            .get(&(api.to_ascii_lowercase(), op.to_ascii_lowercase()))
            .and_then(|&i| self.snapshot.operations.get(i));
        match known.and_then(|o| o.url_template.as_deref()) {
            Some(t) => {
                let method = known.and_then(|o| o.method.as_deref()).unwrap_or("");
                format!("{api}/{op} ({} {t})", method).replace(" (  ", " (")
            }
            None => format!("{api}/{op}"),
        }
    }

    /// A few raw failing requests from the series `key` picks, inside
    /// `window`, that `keep` accepts: spread over the window, in time order.
    pub fn samples(
        &self,
        window: Window,
        key: impl Fn(&SeriesKey) -> bool,
        keep: impl Fn(&RequestRecord) -> bool,
        n: usize,
    ) -> Vec<RequestRecord> {
        let (a, b) = (window.start.minute(), window.end.minute());
        let mut all: Vec<&RequestRecord> = Vec::new();
        for s in self.snapshot.traffic.series.iter().filter(|s| key(&s.key)) {
            for (_, st) in s.minutes.range(a..b) {
                all.extend(st.samples.iter().filter(|r| keep(r)));
            }
        }
        all.sort_by_key(|r| (r.time, r.origin.clone()));
        if all.len() <= n {
            return all.into_iter().cloned().collect();
        }
        let step = all.len() as f64 / n as f64;
        (0..n)
            .filter_map(|i| all.get((i as f64 * step) as usize))
            .map(|r| (*r).clone())
            .collect()
    }

    /// True when an instant is inside the analysis scope.
    pub fn in_scope(&self, t: Timestamp) -> bool {
        self.options.contains(t)
    }

    /// Backends an operation's traffic went to, by `backend_label`.
    pub fn backends_of(&self, api: &str, op: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (b, _) in self
            .rollup
            .operation(api, op)
            .map_or(&[][..], |o| &o.backends[..])
        {
            let label = self.backend_label(b);
            if !out.iter().any(|x| x.eq_ignore_ascii_case(&label)) {
                out.push(label);
            }
        }
        out
    }

    /// The name findings use for a backend series key: the key itself when
    /// a backend entity has that id, else the one entity whose URL has that
    /// host (traffic sent through an API's serviceUrl logs no BackendId,
    /// only the host), else the key.
    pub fn backend_label(&self, key: &str) -> String {
        if self.snapshot.backend(key).is_some() {
            return key.to_string();
        }
        let mut hits = self.snapshot.backends.iter().filter(|e| {
            e.pool.is_empty()
                && e.url
                    .as_deref()
                    .is_some_and(|u| crate::model::url_host(u).eq_ignore_ascii_case(key))
        });
        match (hits.next(), hits.next()) {
            (Some(e), None) => e.id.clone(),
            _ => key.to_string(),
        }
    }
}

/// The distinct files the records came from.
pub fn sources_of(records: &[RequestRecord]) -> Vec<Origin> {
    let files: BTreeSet<&str> = records.iter().map(|r| r.origin.file.as_str()).collect();
    files
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(Origin::file)
        .collect()
}

/// A p-value for people: `1.4e-54`, or `< 1e-300` where it underflows.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-300 {
        "< 1e-300".to_string()
    } else {
        format!("= {p:.1e}")
    }
}

/// Confidence of a statistical finding from its p-value, tempered for small
/// counts.
pub fn confidence_from_p(p: f64, events: u64) -> f64 {
    let lp = -p.max(1e-300).log10();
    let c = (0.5 + 0.05 * lp).min(0.99);
    if events < 10 { c * 0.9 } else { c }
}

/// Kinds whose findings are symptoms in traffic.
pub fn is_traffic_symptom(kind: FindingKind) -> bool {
    matches!(
        kind,
        FindingKind::ErrorSpike
            | FindingKind::BackendTimeout
            | FindingKind::BackendFailure
            | FindingKind::LatencyRegression
    )
}

#[cfg(test)]
mod tests;
