//! What the background worker computes for the views, as plain values: the
//! whole-instance timeline, per-operation rows for the selected window, the
//! apps behind backends, policy diffs and an operation's effective policy.
//! Pure functions over a `Snapshot`; the UI loop never calls them, it
//! receives their results as messages, so no frame waits on analysis.
//! Everything analysed comes from the tools layer's queries
//! (`crate::tools`), the one the chat's tools and the offline answerer
//! read. One rule is still this module's own: a backend's health in the
//! backends list (worst health of the operations routed to it), which
//! `backend_health` judges from the backend map instead (issue #14's note).

use crate::model::{
    Diagnosis, Finding, Health, LatencyHistogram, MetricSource, Minute, PolicyScope, Severity,
    Snapshot, Timestamp,
};
use crate::playbook::Playbooks;
use crate::tools::{self, AppInfo, Rollup};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One point of the whole-instance timeline: a minute, or on data longer
/// than [`MAX_POINTS`] minutes the `step` minutes of its [`Grid`] slot, each
/// value then its most extreme minute's (every series summed), so a
/// one-minute spike is never averaged away.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    /// Its first minute.
    pub minute: Minute,
    /// Requests in its busiest minute.
    pub requests: u64,
    /// Responses with a 5xx status in its minute with the most of them.
    pub errors: u64,
    /// The highest share of 5xx of any of its minutes with traffic.
    pub error_percent: Option<f64>,
    /// The highest exact p95 of a minute's TotalTime, over every series.
    pub p95_ms: Option<u32>,
}

/// The most points a series the views chart holds: a week of minutes. A
/// chart is a few hundred columns wide, so this never shows; it bounds the
/// memory and time of a series by a constant instead of by the span of the
/// data (one row in 2001 and one today are 13 million minutes apart).
pub const MAX_POINTS: usize = 7 * 1440;

/// Minutes per point a [`Grid`] may use: each divides a day, so points
/// start on the clock's round minutes; past a day, whole days.
const STEPS: [i64; 12] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

/// The time axis every chart series of the views is built on: `len`
/// points from minute `start`, each `step` minutes wide. Over up to
/// [`MAX_POINTS`] minutes a point is a minute (`step` 1, `start` the
/// data's first minute); over more, `step` grows to the smallest round
/// length that fits, so `len <= MAX_POINTS` whatever the span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub start: Minute,
    pub step: i64,
    pub len: usize,
}

impl Default for Grid {
    fn default() -> Grid {
        Grid {
            start: 0,
            step: 1,
            len: 0,
        }
    }
}

impl Grid {
    /// The grid over the minutes `lo..=hi` (empty when `hi < lo`).
    pub fn over(lo: Minute, hi: Minute) -> Grid {
        if hi < lo {
            return Grid {
                start: lo,
                ..Grid::default()
            };
        }
        let points = |step: i64| (hi.div_euclid(step) - lo.div_euclid(step) + 1) as u64;
        let step = STEPS
            .into_iter()
            .find(|&s| points(s) <= MAX_POINTS as u64)
            .unwrap_or_else(|| {
                let days = (hi - lo) as u64 / 1440 / (MAX_POINTS as u64 - 1) + 1;
                days as i64 * 1440
            });
        let start = if step == 1 {
            lo
        } else {
            lo.div_euclid(step) * step
        };
        Grid {
            start,
            step,
            len: points(step) as usize,
        }
    }

    /// The point holding minute `m`, or `None` outside the grid.
    pub fn slot(&self, m: Minute) -> Option<usize> {
        let i = (m - self.start).div_euclid(self.step);
        (0..self.len as i64).contains(&i).then_some(i as usize)
    }

    /// The point holding minute `m`, clamped to the grid's ends.
    pub fn slot_clamped(&self, m: Minute) -> usize {
        let i = (m - self.start).div_euclid(self.step).max(0) as usize;
        i.min(self.len.saturating_sub(1))
    }

    /// The first minute of point `i`.
    pub fn minute(&self, i: usize) -> Minute {
        self.start + i as i64 * self.step
    }
}

/// An operation over the selected window, for the operations table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpRow {
    pub api: String,
    pub operation: String,
    pub requests: u64,
    pub errors: u64,
    /// Client errors (4xx), and of those the throttled ones (429).
    pub client_errors: u64,
    pub throttled: u64,
    pub p95_ms: Option<u32>,
    /// Backends its traffic went to, busiest first; else the configured ones.
    pub backends: Vec<String>,
    pub health: Health,
}

impl OpRow {
    pub fn error_percent(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            100.0 * self.errors as f64 / self.requests as f64
        }
    }
    pub fn label(&self) -> String {
        format!("{}/{}", self.api, self.operation)
    }
}

/// Everything that depends on the selected window: recomputed in the
/// background whenever the time cursor moves.
#[derive(Clone, Debug, Default)]
pub struct Scoped {
    /// Which request this answers; stale answers are dropped.
    pub generation: u64,
    /// The last minute inside the window; `None`: all data.
    pub cursor: Option<Minute>,
    pub diagnosis: Diagnosis,
    pub ops: Vec<OpRow>,
    /// Requests behind each finding (same index as the diagnosis'
    /// findings): all requests of its subject in its window, and the
    /// failing ones (5xx and 429) among them.
    pub counts: Vec<RequestCount>,
    /// One row per backend (`:backends`).
    pub backends: Vec<BackendRow>,
    /// The end of the analysed data (the minute after the cursor, or
    /// after the last minute): what "ongoing" and ages are judged at.
    pub as_of: Option<Timestamp>,
    /// With the cursor before configuration changes: the policies the
    /// analysis took back to how they were then (one line each).
    pub past_config: Vec<String>,
}

/// The policies in force at `at`, when any policy was changed later:
/// each is taken back to its text before its first later change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PastConfig {
    pub policies: Vec<crate::model::PolicyDoc>,
    /// What was taken back (or could not be), one line each.
    pub notes: Vec<String>,
}

/// The configuration as it was at `at`, or `None` when no policy was
/// written after `at`. A policy written later is taken back to the text
/// the last write before `at` set, else to the later write's `before`.
pub fn config_at(s: &Snapshot, at: Timestamp) -> Option<PastConfig> {
    // Writes that took effect (not `Started`, `Accepted`, `Failed`).
    let writes: Vec<&crate::model::Change> = s
        .changes
        .iter()
        .filter(|c| c.policy_scope.is_some())
        .filter(|c| {
            c.status
                .as_deref()
                .is_none_or(|st| st.eq_ignore_ascii_case("succeeded"))
        })
        .collect();
    let mut later: Vec<&crate::model::Change> =
        writes.iter().copied().filter(|c| c.time >= at).collect();
    if later.is_empty() {
        return None;
    }
    later.sort_by_key(|c| c.time);
    let mut past = PastConfig {
        policies: s.policies.clone(),
        notes: Vec::new(),
    };
    let mut done: Vec<PolicyScope> = Vec::new();
    for c in later {
        let Some(scope) = c.policy_scope.clone() else {
            continue;
        };
        if done.contains(&scope) {
            continue;
        }
        done.push(scope.clone());
        let by = c
            .caller
            .as_deref()
            .map(|w| format!(" by {w}"))
            .unwrap_or_default();
        let earlier = writes
            .iter()
            .filter(|w| w.time < at && w.policy_scope.as_ref() == Some(&scope))
            .filter(|w| w.policy_after.is_some())
            .max_by_key(|w| w.time);
        let then = earlier
            .and_then(|w| w.policy_after.as_ref())
            .or(c.policy_before.as_ref());
        match then {
            Some(before) => {
                let doc = crate::model::PolicyDoc {
                    scope: scope.clone(),
                    xml: before.clone(),
                    format: "history".into(),
                    origin: earlier.map_or_else(|| c.origin.clone(), |w| w.origin.clone()),
                };
                match past.policies.iter_mut().find(|p| p.scope == scope) {
                    Some(p) => *p = doc,
                    None => past.policies.push(doc),
                }
                past.notes.push(format!(
                    "{scope} as before its {} change{by}",
                    c.time.hhmm()
                ));
            }
            None => past.notes.push(format!(
                "{scope} changed at {}{by}; its text before is not in the data, so today's is used",
                c.time.hhmm()
            )),
        }
    }
    Some(past)
}

/// `scope`, judged by the configuration in force at the cursor: when a
/// policy changed after it, the analysis runs on a copy of the snapshot
/// (`past`, made once and reused) holding the policies as they were.
pub fn scope_in_time(
    snapshot: &Snapshot,
    past: &mut Option<Snapshot>,
    playbooks: &Playbooks,
    generation: u64,
    cursor: Option<Minute>,
) -> Scoped {
    let Some(config) = cursor.and_then(|c| config_at(snapshot, Timestamp::from_minute(c + 1)))
    else {
        return scope(snapshot, playbooks, generation, cursor);
    };
    let copy = past.get_or_insert_with(|| snapshot.clone());
    copy.policies = config.policies;
    let mut scoped = scope(copy, playbooks, generation, cursor);
    scoped.past_config = config.notes;
    scoped
}

/// One backend over the selected window: the entity (or the host traffic
/// used, when no entity's URL has it), its traffic and the operations
/// behind it with the health of each route (a backend is unhealthy only
/// for the routes that fail).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackendRow {
    /// The backend entity id, else the host seen in traffic.
    pub id: String,
    /// The entity's URL.
    pub url: Option<String>,
    /// Other names traffic used for it (the host of its URL).
    pub seen_as: Vec<String>,
    pub requests: u64,
    pub errors: u64,
    pub client_errors: u64,
    pub throttled: u64,
    /// `api/op` of every operation routed to it, busiest first.
    pub operations: Vec<String>,
    /// Those whose route to it is unhealthy or degraded.
    pub failing: Vec<String>,
    /// The backend's own health ([`Diagnosis::backend_health`]): its
    /// traffic, incidents and app, not its callers' or the gateway's.
    pub health: Health,
}

/// One row per backend: entities first matched by id, then by the host of
/// their URL; a host no entity claims is a row of its own.
pub fn backend_rows(
    s: &Snapshot,
    rollup: &Rollup,
    d: &Diagnosis,
    op_rows: &[OpRow],
) -> Vec<BackendRow> {
    let mut rows: Vec<BackendRow> = s
        .backends
        .iter()
        .map(|b| BackendRow {
            id: b.id.clone(),
            url: b.url.clone(),
            ..BackendRow::default()
        })
        .collect();
    rows.sort_by_key(|r| r.id.to_ascii_lowercase());
    rows.dedup_by(|a, b| a.id.eq_ignore_ascii_case(&b.id));
    let host_of = |r: &BackendRow| {
        r.url
            .as_deref()
            .map(|u| crate::model::url_host(u).to_ascii_lowercase())
            .unwrap_or_default()
    };
    let find = |rows: &[BackendRow], name: &str| {
        rows.iter()
            .position(|r| r.id.eq_ignore_ascii_case(name))
            .or_else(|| {
                rows.iter().position(|r| {
                    let h = host_of(r);
                    !h.is_empty() && h == name.to_ascii_lowercase()
                })
            })
    };
    let mut ops: Vec<Vec<(String, u64)>> = vec![Vec::new(); rows.len()];
    for b in &rollup.backends {
        if b.backend.is_empty() {
            continue;
        }
        let i = match find(&rows, &b.backend) {
            Some(i) => i,
            None => {
                rows.push(BackendRow {
                    id: b.backend.clone(),
                    ..BackendRow::default()
                });
                ops.push(Vec::new());
                rows.len() - 1
            }
        };
        let (Some(r), Some(o)) = (rows.get_mut(i), ops.get_mut(i)) else {
            continue;
        };
        if !r.id.eq_ignore_ascii_case(&b.backend) && !r.seen_as.contains(&b.backend) {
            r.seen_as.push(b.backend.clone());
        }
        r.requests += b.totals.requests;
        r.errors += b.totals.status_5xx;
        r.client_errors += b.totals.status_4xx;
        r.throttled += b.totals.status_429;
        for (api, op, n) in &b.operations {
            o.push((format!("{api}/{op}"), *n));
        }
    }
    for e in &d.backend_map {
        let label = format!("{}/{}", e.api, e.operation);
        for route in e.routes() {
            let Some(i) = find(&rows, &route.backend) else {
                continue;
            };
            if let Some(o) = ops.get_mut(i)
                && !o.iter().any(|(l, _)| *l == label)
            {
                o.push((label.clone(), 0));
            }
            // A route fails when its operation's own traffic does: a sick
            // backend marks only the routes whose traffic shows it.
            let failing = op_rows
                .iter()
                .find(|o| o.api == e.api && o.operation == e.operation)
                .is_some_and(|o| matches!(o.health, Health::Unhealthy | Health::Degraded));
            if let Some(r) = rows.get_mut(i)
                && failing
                && !r.failing.contains(&label)
            {
                r.failing.push(label.clone());
            }
        }
    }
    for (r, mut o) in rows.iter_mut().zip(ops) {
        o.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        r.operations = o.into_iter().map(|(l, _)| l).collect();
        // The backend's own health, by the rule the tools use.
        let host = r
            .url
            .as_deref()
            .map(crate::model::url_host)
            .unwrap_or_default();
        let mut names: Vec<&str> = vec![&r.id, host];
        names.extend(r.seen_as.iter().map(String::as_str));
        r.health = d.backend_health(&names);
    }
    rows
}

/// Requests behind a finding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCount {
    pub requests: u64,
    pub failing: u64,
}

/// When a finding happened, judged at the end of the analysed data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FindingTime {
    pub start: Timestamp,
    /// `None` while it goes on.
    pub ended: Option<Timestamp>,
    /// Minutes from its start to the end of the data.
    pub age_minutes: i64,
}

/// When a finding happened: its own timeline (`Finding.timeline`, judged by
/// the analysis at the end of the analysed data), so "ongoing" here is the
/// word `diagnose` and the report print. `None` for a finding without one
/// (configuration findings): the dashboard claims neither ongoing nor ended.
pub fn finding_time(f: &Finding) -> Option<FindingTime> {
    let t = f.timeline?;
    Some(FindingTime {
        start: t.since,
        ended: (!t.is_ongoing()).then(|| t.ended_at.unwrap_or(t.as_of)),
        age_minutes: ((t.as_of.0 - t.since.0) / 60_000).max(0),
    })
}

/// `45m`, `2h13m`, `3d4h`.
pub fn age_text(minutes: i64) -> String {
    match minutes {
        m if m < 60 => format!("{m}m"),
        m if m < 24 * 60 => format!("{}h{:02}m", m / 60, m % 60),
        m => format!("{}d{}h", m / 1440, (m % 1440) / 60),
    }
}

/// Requests of a finding's subject in its window (up to `until`).
fn request_count(s: &Snapshot, f: &Finding, until: Option<Timestamp>) -> RequestCount {
    let mut out = RequestCount::default();
    let sub = &f.subject;
    if sub.api.is_none() && sub.operation.is_none() && sub.backend.is_none() {
        return out;
    }
    let (lo, hi) = match f.window {
        Some(w) => (w.start.minute(), w.end.minute()),
        None => (Minute::MIN, Minute::MAX),
    };
    let hi = until.map_or(hi, |u| hi.min(u.minute()));
    let hosts: Vec<String> = sub
        .backend
        .as_deref()
        .and_then(|b| s.backend(b))
        .and_then(|b| b.url.as_deref())
        .map(|u| vec![crate::model::url_host(u).to_ascii_lowercase()])
        .unwrap_or_default();
    let same = |a: &Option<String>, b: &str| a.as_deref().is_none_or(|a| a.eq_ignore_ascii_case(b));
    for series in &s.traffic.series {
        let k = &series.key;
        if !same(&sub.api, &k.api_id) || !same(&sub.operation, &k.operation_id) {
            continue;
        }
        if let Some(b) = &sub.backend
            && sub.operation.is_none()
            && !(k.backend.eq_ignore_ascii_case(b)
                || hosts.contains(&k.backend.to_ascii_lowercase()))
        {
            continue;
        }
        if lo >= hi {
            continue;
        }
        for (_, st) in series.minutes.range(lo..hi) {
            out.requests += u64::from(st.requests);
            out.failing += u64::from(st.status_5xx) + u64::from(st.status_429);
        }
    }
    out
}

/// Gateway metrics the overview shows as gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    pub capacity: Option<usize>,
    pub cpu: Option<usize>,
    pub memory: Option<usize>,
}

/// A loaded instance, ready for every view.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub snapshot: Arc<Snapshot>,
    /// First and last minute with traffic (else the loaded time range).
    pub range: Option<(Minute, Minute)>,
    /// The time axis of every chart: `range` in at most [`MAX_POINTS`] points.
    pub grid: Grid,
    /// One point per slot of `grid`, zeros where there was no traffic.
    pub total: Vec<Point>,
    /// Traffic per operation and backend over all data (charts).
    pub full: Rollup,
    /// Backend name (lower case) → its app.
    pub apps: BTreeMap<String, AppInfo>,
    pub gauges: Gauges,
    /// Unified policy diff per change (same index as `Snapshot::changes`).
    pub diffs: Vec<Option<String>>,
    pub scoped: Scoped,
}

/// An operation's effective policy as text, with the lines that matter.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyView {
    pub api: String,
    pub operation: String,
    /// One-line facts: timeout in force, backend targets, notes.
    pub summary: Vec<String>,
    /// The documents on the chain, broad to narrow.
    pub docs: Vec<PolicyText>,
    /// (file, line, element name) of statements findings may point at:
    /// `forward-request` and `set-backend-service`.
    pub key_lines: Vec<(String, u32, String)>,
    /// The time cursor it was computed for (`None`: all data, today's policy).
    pub cursor: Option<Minute>,
    /// Which version is shown when the cursor is in the past: the one in
    /// force then (from the change history), or that it is today's.
    pub in_force: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyText {
    pub scope: PolicyScope,
    pub file: String,
    /// Line in `file` of the first XML line.
    pub first_line: u32,
    pub lines: Vec<String>,
}

/// Loads everything the views need from a snapshot (the worker's first job).
pub fn prepare(snapshot: Snapshot, playbooks: &Playbooks) -> Loaded {
    let snapshot = Arc::new(snapshot);
    let s = snapshot.as_ref();
    let tools::BackendApps {
        traffic: full,
        apps,
    } = tools::backend_apps(s);
    let range = s.traffic.minute_range().or_else(|| {
        s.loaded
            .time_range
            .map(|w| (w.start.minute(), w.end.minute()))
    });
    let grid = range.map_or_else(Grid::default, |(lo, hi)| Grid::over(lo, hi));
    let total = total_timeline(s, grid);
    let diffs = s
        .changes
        .iter()
        .map(|c| match (&c.policy_before, &c.policy_after) {
            (Some(a), Some(b)) => crate::model::diff::unified(a, b, "before", "after"),
            _ => None,
        })
        .collect();
    let scoped = scope(s, playbooks, 0, None);
    Loaded {
        gauges: gauges(s),
        snapshot,
        range,
        grid,
        total,
        full,
        apps,
        diffs,
        scoped,
    }
}

/// Diagnosis and operation rows for the window that ends with `cursor`
/// (inclusive), or for all data.
pub fn scope(
    snapshot: &Snapshot,
    playbooks: &Playbooks,
    generation: u64,
    cursor: Option<Minute>,
) -> Scoped {
    let until = until_of(cursor);
    let mut diagnosis = tools::diagnose(snapshot, playbooks, until);
    // Every view draws from this diagnosis: its secrets are replaced once.
    crate::model::redact::Scrub::scrub(&mut diagnosis);
    let rollup = tools::traffic(snapshot, until);
    let mut ops: Vec<OpRow> = rollup
        .operations
        .iter()
        .map(|o| OpRow {
            api: o.api.clone(),
            operation: o.operation.clone(),
            requests: o.totals.requests,
            errors: o.totals.status_5xx,
            client_errors: o.totals.status_4xx,
            throttled: o.totals.status_429,
            p95_ms: o.totals.total_time.p95,
            backends: o.backends.iter().map(|(b, _)| b.clone()).collect(),
            health: Health::Unknown,
        })
        .collect();
    // Configured operations without traffic still get a row.
    for e in &diagnosis.backend_map {
        if !ops
            .iter()
            .any(|o| o.api == e.api && o.operation == e.operation)
        {
            ops.push(OpRow {
                api: e.api.clone(),
                operation: e.operation.clone(),
                backends: e.configured.iter().map(|r| r.backend.clone()).collect(),
                ..OpRow::default()
            });
        }
    }
    for row in &mut ops {
        row.health = op_health(row, &diagnosis);
    }
    let backends = backend_rows(snapshot, &rollup, &diagnosis, &ops);
    let counts = diagnosis
        .findings
        .iter()
        .map(|f| request_count(snapshot, f, until))
        .collect();
    let as_of = until.or_else(|| {
        snapshot
            .traffic
            .minute_range()
            .map(|(_, last)| Timestamp::from_minute(last + 1))
            .or_else(|| snapshot.loaded.time_range.map(|w| w.end))
    });
    Scoped {
        generation,
        cursor,
        diagnosis,
        ops,
        counts,
        backends,
        as_of,
        past_config: Vec::new(),
    }
}

/// The end of a cursor's analysis scope (everything up to and including
/// its minute); `None`: all data.
pub fn until_of(cursor: Option<Minute>) -> Option<Timestamp> {
    cursor.map(|m| Timestamp::from_minute(m + 1))
}

/// Does a finding concern this operation (directly or through its
/// backend)? The one rule, [`Subject::concerns`](crate::model::Subject::concerns).
pub fn concerns_op(f: &Finding, api: &str, op: &str, backends: &[String]) -> bool {
    f.subject.concerns(Some(api), Some(op), backends)
}

/// An operation's health in the window: its own anomaly findings, and its
/// backend's when the operation itself answered 5xx (a sick backend that
/// this operation's traffic does not show does not make it unhealthy).
fn op_health(row: &OpRow, d: &Diagnosis) -> Health {
    let worst = d
        .findings
        .iter()
        .filter(|f| f.kind.is_anomaly())
        .filter(|f| {
            let own = f.subject.operation.is_some();
            concerns_op(f, &row.api, &row.operation, &row.backends) && (own || row.errors > 0)
        })
        .map(|f| f.severity)
        .max();
    match worst {
        Some(s) if s >= Severity::High => Health::Unhealthy,
        Some(Severity::Medium) => Health::Degraded,
        _ if row.requests > 0 => Health::Healthy,
        _ => Health::Unknown,
    }
}

/// The whole instance on `grid`: each minute with traffic summed over
/// every series, then folded into its point. Memory and time follow the
/// minutes with traffic and the grid (at most [`MAX_POINTS`]), never the
/// span of the data.
pub fn total_timeline(s: &Snapshot, grid: Grid) -> Vec<Point> {
    let mut points: Vec<Point> = (0..grid.len)
        .map(|i| Point {
            minute: grid.minute(i),
            ..Point::default()
        })
        .collect();
    let Some(last) = grid
        .len
        .checked_sub(1)
        .map(|i| grid.minute(i) + grid.step - 1)
    else {
        return points;
    };
    // Sparse: only minutes some series has.
    let mut minutes: BTreeMap<Minute, (u64, u64, LatencyHistogram)> = BTreeMap::new();
    for series in &s.traffic.series {
        for (m, st) in series.minutes.range(grid.start..=last) {
            let (requests, errors, times) = minutes.entry(*m).or_default();
            *requests += u64::from(st.requests);
            *errors += u64::from(st.status_5xx);
            times.merge(&st.total_latency);
        }
    }
    for (m, (requests, errors, times)) in minutes {
        let Some(p) = grid.slot(m).and_then(|i| points.get_mut(i)) else {
            continue;
        };
        p.requests = p.requests.max(requests);
        p.errors = p.errors.max(errors);
        if requests > 0 {
            let pct = 100.0 * errors as f64 / requests as f64;
            p.error_percent = Some(p.error_percent.map_or(pct, |o| o.max(pct)));
        }
        p.p95_ms = p.p95_ms.max(times.percentile(95.0));
    }
    points
}

/// Gateway series for the capacity, CPU and memory gauges.
fn gauges(s: &Snapshot) -> Gauges {
    let find = |name: &str| {
        let matching = || {
            s.metrics.iter().enumerate().filter(move |(_, m)| {
                m.source == MetricSource::Gateway
                    && m.name.eq_ignore_ascii_case(name)
                    && !m.points.is_empty()
            })
        };
        matching()
            .find(|(_, m)| m.aggregation.eq_ignore_ascii_case("average"))
            .or_else(|| matching().next())
            .map(|(i, _)| i)
    };
    Gauges {
        capacity: find("Capacity"),
        cpu: find("CpuPercent_Gateway"),
        memory: find("MemoryPercent_Gateway"),
    }
}

/// The effective policy of one operation as numbered text.
pub fn policy_view(s: &Snapshot, api: &str, op: &str) -> PolicyView {
    let eff = tools::effective_policy(s, api, op);
    let mut summary = Vec::new();
    let mut key_lines = Vec::new();
    match &eff.forward_timeout {
        Some((secs, scope)) => {
            summary.push(format!("forward-request timeout {secs} s, set at {scope}"))
        }
        None => summary.push("no forward-request: requests never reach a backend".to_string()),
    }
    for p in eff.find("forward-request") {
        if let Some(line) = p.origin.line {
            key_lines.push((p.origin.file.clone(), line, "forward-request".to_string()));
        }
    }
    for t in &eff.backend_targets {
        let cond = if t.conditional { ", conditional" } else { "" };
        summary.push(format!(
            "set-backend-service → {} (at {}{cond})",
            t.target, t.scope
        ));
        if let Some(line) = t.origin.line {
            key_lines.push((
                t.origin.file.clone(),
                line,
                "set-backend-service".to_string(),
            ));
        }
    }
    summary.extend(eff.notes.iter().cloned());
    let mut docs: Vec<PolicyText> = Vec::new();
    let mut scopes: Vec<PolicyScope> = eff.scopes.clone();
    for p in &eff.statements {
        if matches!(p.scope, PolicyScope::Fragment(_)) && !scopes.contains(&p.scope) {
            scopes.push(p.scope.clone());
        }
    }
    for scope in scopes {
        if let Some(doc) = s.policy(&scope) {
            docs.push(PolicyText {
                scope,
                file: doc.origin.file.clone(),
                first_line: doc.origin.line.unwrap_or(1),
                lines: crate::model::redact::scrub(&doc.xml)
                    .lines()
                    .map(str::to_string)
                    .collect(),
            });
        }
    }
    PolicyView {
        api: api.to_string(),
        operation: op.to_string(),
        summary,
        docs,
        key_lines,
        cursor: None,
        in_force: None,
    }
}

/// The effective policy as it was at the time cursor: the policy in force
/// then, taken back through the change history (activity log writes,
/// dated copies, git history), as the window's diagnosis judges it; or
/// today's, said so, when no policy was written after the cursor. `past`
/// is the worker's copy of the snapshot with past policies.
pub fn policy_view_at(
    s: &Snapshot,
    past: &mut Option<Snapshot>,
    api: &str,
    op: &str,
    cursor: Option<Minute>,
) -> PolicyView {
    let Some(c) = cursor else {
        return policy_view(s, api, op);
    };
    let at = Timestamp::from_minute(c + 1);
    let hhmm = Timestamp::from_minute(c).hhmm();
    let mut view = match config_at(s, at) {
        Some(config) => {
            let copy = past.get_or_insert_with(|| s.clone());
            copy.policies = config.policies;
            let mut v = policy_view(copy, api, op);
            let notes = if config.notes.is_empty() {
                String::new()
            } else {
                format!(": {}", config.notes.join("; "))
            };
            v.in_force = Some(format!(
                "the policy in force at {hhmm} UTC (the cursor), from the change history{notes}"
            ));
            v
        }
        None => {
            let mut v = policy_view(s, api, op);
            v.in_force = Some(format!(
                "today's policy: the change history has no policy write after {hhmm} UTC (the cursor)"
            ));
            v
        }
    };
    view.cursor = cursor;
    view
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{
        Api, Backend, Change, ChangeKind, MetricSeries, Operation, Origin, PolicyDoc, Request,
        Window,
    };

    #[test]
    fn ongoing_is_the_findings_own_timeline() {
        use crate::model::{FindingKind, Severity, Subject, Timeline};
        let at = |m: i64| Timestamp(m * 60_000);
        let mut f = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::operation("a", "b"),
            "spike",
        );
        // The window reaches the end of the data, but the analysis judged
        // it ended (healthy since): the dashboard says ended, as diagnose does.
        f.window = Some(Window {
            start: at(100),
            end: at(159),
        });
        f.timeline = Some(Timeline::ended(at(100), at(158), at(160)));
        let t = finding_time(&f).unwrap();
        assert_eq!(t.ended, Some(at(158)));
        assert_eq!(t.age_minutes, 60);
        f.timeline = Some(Timeline::ongoing(at(100), at(200)));
        assert_eq!(finding_time(&f).unwrap().ended, None);
        // No timeline: neither ongoing nor ended is claimed.
        f.timeline = None;
        assert_eq!(finding_time(&f), None);
    }

    /// A small instance: `orders-api/get-order` fails through `orders-app`
    /// from minute 30 on (OOM restarts), `orders-api/list-orders` stays fine.
    pub(crate) fn incident() -> Snapshot {
        let base: Minute = 28_600_000; // 2024-05-18 06:40 UTC
        let mut s = Snapshot::default();
        s.apis.push(Api {
            id: "orders-api".into(),
            service_url: Some("https://orders-app.internal".into()),
            ..Api::default()
        });
        for (op, m, t) in [
            ("get-order", "GET", "/orders/{id}"),
            ("list-orders", "GET", "/orders"),
        ] {
            s.operations.push(Operation {
                api_id: "orders-api".into(),
                id: op.into(),
                method: Some(m.into()),
                url_template: Some(t.into()),
                ..Operation::default()
            });
        }
        s.backends.push(Backend {
            id: "orders-app".into(),
            url: Some("https://orders-app.internal".into()),
            resource_id: Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/orders-app".into()),
            ..Backend::default()
        });
        s.policies.push(PolicyDoc {
            scope: PolicyScope::Api("orders-api".into()),
            xml: "<policies>\n  <inbound><base /></inbound>\n  <backend>\n    <forward-request timeout=\"5\" />\n  </backend>\n  <outbound><base /></outbound>\n</policies>".into(),
            format: "file".into(),
            origin: Origin::at_line("policies/orders-api.xml", 1),
        });
        let mut line = 0u32;
        for i in 0..60i64 {
            for op in ["get-order", "list-orders"] {
                for k in 0..20u32 {
                    line += 1;
                    let failing = op == "get-order" && i >= 30 && k < 12;
                    let r = Request {
                        time: Timestamp::from_minute(base + i).plus_minutes(0),
                        api_id: "orders-api",
                        operation_id: op,
                        backend_id: "orders-app",
                        backend_url: "https://orders-app.internal/orders",
                        method: "GET",
                        url: "https://gw/orders/1",
                        response_code: if failing { 502 } else { 200 },
                        backend_response_code: if failing { 0 } else { 200 },
                        total_time_ms: if failing { 3000 } else { 80 + k },
                        backend_time_ms: Some(70),
                        last_error_reason: if failing {
                            "BackendConnectionFailure"
                        } else {
                            ""
                        },
                        ..Request::default()
                    };
                    let l = line;
                    s.traffic
                        .add(&r, || Origin::at_line("logs/gateway.csv", l + 1));
                }
            }
        }
        let series = |name: &str, unit: &str, agg: &str, f: &dyn Fn(i64) -> f64| {
            MetricSeries {
            resource: Some("orders-app".into()),
            resource_id: Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/orders-app".into()),
            source: MetricSource::BackendApp,
            name: name.into(),
            unit: Some(unit.into()),
            aggregation: agg.into(),
            points: (0..60).map(|i| (Timestamp::from_minute(base + i), f(i))).collect(),
            ..MetricSeries::default()
        }
        };
        s.metrics
            .push(series("RestartCount", "Count", "total", &|i| {
                if i >= 30 && i % 5 == 0 { 1.0 } else { 0.0 }
            }));
        s.metrics
            .push(series("MemoryPercentage", "Percent", "average", &|i| {
                if i >= 25 { 99.0 } else { 60.0 }
            }));
        s.metrics.push(MetricSeries {
            resource: Some("apim-demo".into()),
            source: MetricSource::Gateway,
            name: "Capacity".into(),
            unit: Some("Percent".into()),
            aggregation: "average".into(),
            points: (0..60)
                .map(|i| (Timestamp::from_minute(base + i), 30.0 + i as f64 / 2.0))
                .collect(),
            ..MetricSeries::default()
        });
        s.changes.push(Change {
            time: Timestamp::from_minute(base + 27),
            kind: ChangeKind::Deployment,
            operation: "Microsoft.App/containerApps/write".into(),
            status: Some("Succeeded".into()),
            resource_id: Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/orders-app".into()),
            caller: Some("deploy@example.com".into()),
            origin: Origin::at_line("activity.json", 3),
            ..Change::default()
        });
        s.changes.push(Change {
            time: Timestamp::from_minute(base + 10),
            kind: ChangeKind::Config,
            operation: "Microsoft.ApiManagement/service/apis/policies/write".into(),
            status: Some("Succeeded".into()),
            caller: Some("alice@example.com".into()),
            policy_scope: Some(PolicyScope::Api("orders-api".into())),
            policy_before: Some("<policies>\n  <backend>\n    <forward-request timeout=\"30\" />\n  </backend>\n</policies>".into()),
            policy_after: Some("<policies>\n  <backend>\n    <forward-request timeout=\"5\" />\n  </backend>\n</policies>".into()),
            origin: Origin::at_line("activity.json", 20),
            ..Change::default()
        });
        s.loaded.time_range = Some(Window::minutes(base, base + 60));
        s.loaded.demo = Some("unit-test incident".into());
        s
    }

    #[test]
    fn timeline_is_dense_and_sums_series() {
        let s = incident();
        let (lo, hi) = s.traffic.minute_range().unwrap();
        let t = total_timeline(&s, Grid::over(lo, hi));
        assert_eq!(t.len(), 60);
        assert_eq!(t[0].requests, 40);
        assert_eq!(t[0].errors, 0);
        assert_eq!(t[45].errors, 12);
        // Read from the minute's latency histogram: within 1% of the exact
        // values 3000 and 98 (rank 38 of 80..=99 twice).
        assert_eq!(t[45].p95_ms, Some(3012));
        assert_eq!(t[0].p95_ms, Some(99));
    }

    #[test]
    fn policies_are_taken_back_to_before_a_later_change() {
        let s = incident();
        let base = s.traffic.minute_range().unwrap().0;
        let past = config_at(&s, Timestamp::from_minute(base + 5)).expect("a later change");
        let doc = past
            .policies
            .iter()
            .find(|p| p.scope == PolicyScope::Api("orders-api".into()))
            .unwrap();
        assert!(doc.xml.contains("timeout=\"30\""), "{}", doc.xml);
        assert_eq!(doc.origin, Origin::at_line("activity.json", 20));
        assert_eq!(past.notes.len(), 1);
        assert!(
            past.notes[0].contains("api:orders-api as before its")
                && past.notes[0].contains("alice@example.com"),
            "{:?}",
            past.notes
        );
        assert_eq!(config_at(&s, Timestamp::from_minute(base + 11)), None);
        let mut copy = None;
        let scoped = scope_in_time(&s, &mut copy, &Playbooks::built_in(), 4, Some(base + 5));
        assert_eq!(scoped.past_config, past.notes);
        assert!(copy.is_some(), "analysed on a copy with the past policies");
        let now = scope_in_time(&s, &mut copy, &Playbooks::built_in(), 5, Some(base + 30));
        assert!(now.past_config.is_empty());
    }

    #[test]
    fn scope_rows_follow_the_window() {
        let s = incident();
        let base = s.traffic.minute_range().unwrap().0;
        let before = scope(&s, &Playbooks::built_in(), 1, Some(base + 20));
        let row = before
            .ops
            .iter()
            .find(|o| o.operation == "get-order")
            .unwrap();
        assert_eq!((row.requests, row.errors), (21 * 20, 0));
        let all = scope(&s, &Playbooks::built_in(), 2, None);
        let row = all.ops.iter().find(|o| o.operation == "get-order").unwrap();
        assert_eq!(row.errors, 30 * 12);
        assert_eq!(row.backends, vec!["orders-app".to_string()]);
        assert_eq!(all.generation, 2);
    }

    #[test]
    fn prepare_finds_apps_gauges_and_diffs() {
        let loaded = prepare(incident(), &Playbooks::built_in());
        let app = loaded.apps.get("orders-app").expect("app of orders-app");
        assert_eq!(app.series.len(), 2);
        assert_eq!(app.deployments, vec![0]);
        assert_eq!(loaded.gauges.capacity, Some(2));
        assert_eq!(loaded.gauges.cpu, None);
        assert!(loaded.diffs[0].is_none());
        let diff = loaded.diffs[1].as_deref().unwrap();
        assert!(
            diff.contains("-    <forward-request timeout=\"30\" />"),
            "{diff}"
        );
    }

    #[test]
    fn policy_view_numbers_lines_and_marks_forward_request() {
        let v = policy_view(&incident(), "orders-api", "get-order");
        assert!(v.summary[0].contains("timeout 5 s"), "{:?}", v.summary);
        assert_eq!(v.docs.len(), 1);
        assert_eq!(v.docs[0].first_line, 1);
        assert!(
            v.key_lines
                .iter()
                .any(|(f, l, n)| f == "policies/orders-api.xml"
                    && *l == 4
                    && n == "forward-request"),
            "{:?}",
            v.key_lines
        );
    }

    /// The backends list and the `backend_health` tool rate every backend
    /// of every scenario the same ([`Diagnosis::backend_health`]): a pool
    /// member without traffic is unknown in both, and gateway saturation
    /// (capacity) makes no backend unhealthy in either.
    #[test]
    fn the_backends_list_and_the_backend_health_tool_agree_on_every_scenario() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
        let Ok(dirs) = std::fs::read_dir(&root) else {
            eprintln!("skipping: {} is absent", root.display());
            return;
        };
        let books = Playbooks::built_in();
        let mut judged = 0;
        for dir in dirs.flatten().map(|d| d.path()).filter(|p| p.is_dir()) {
            let snapshot = crate::collect::collect(std::slice::from_ref(&dir))
                .unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
            let inst = tools::Instance::new(snapshot.clone(), &books);
            let loaded = prepare(snapshot, &books);
            let out = tools::Tool::ListBackends.run(&inst);
            let tools::ToolResult::Backends(b) = &out.result else {
                panic!("{}: {:?}", dir.display(), out.result);
            };
            for row in &b.rows {
                let tui = loaded
                    .scoped
                    .backends
                    .iter()
                    .find(|r| r.id.eq_ignore_ascii_case(&row.id))
                    .unwrap_or_else(|| panic!("{}: {} not listed", dir.display(), row.id));
                assert_eq!(tui.health, row.health, "{}: {}", dir.display(), row.id);
                judged += usize::from(row.health != Health::Unknown);
            }
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if name == "capacity" {
                assert!(
                    b.rows.iter().all(|r| r.health <= Health::Healthy),
                    "capacity: gateway saturation is not a backend fault: {:?}",
                    b.rows.iter().map(|r| (&r.id, r.health)).collect::<Vec<_>>()
                );
            }
            if name == "backend-oom" {
                let h = |id: &str| b.rows.iter().find(|r| r.id == id).map(|r| r.health);
                assert_eq!(h("inventory-app"), Some(Health::Unhealthy));
                assert_eq!(
                    h("users-app-neu"),
                    Some(Health::Unknown),
                    "pool member, no traffic"
                );
                assert_eq!(h("users-pool"), Some(Health::Healthy));
            }
        }
        assert!(judged > 0, "no scenario judged any backend");
    }
}
