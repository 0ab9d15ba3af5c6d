//! Root-cause stories: findings grouped around a cause. Patterns, in the
//! order they are tried:
//! - a backend in trouble (failures, timeouts, an unhealthy app, an NSG rule
//!   blocking it), with the operation symptoms it explains and the changes
//!   made just before;
//! - an operation routed to the wrong backend;
//! - capacity saturation with the latency it caused;
//! - any other symptom on its own, with its suspects.
//!
//! Each story names its findings cause first and the changes that preceded
//! its onset (`Suspect`, with the policy diff where known).

use super::Ctx;
use super::changes;
use crate::model::{Finding, FindingKind, Severity, Story, Suspect, Timeline, Window};
use std::collections::BTreeSet;

pub fn stories(ctx: &Ctx, findings: &[Finding]) -> Vec<Story> {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    // Backends named by a backend finding, worst first.
    let mut backends: Vec<&str> = Vec::new();
    for f in findings {
        if matches!(
            f.kind,
            FindingKind::BackendFailure
                | FindingKind::BackendTimeout
                | FindingKind::BackendUnhealthy
        ) && let Some(b) = f.subject.backend.as_deref()
            && !backends.iter().any(|x| x.eq_ignore_ascii_case(b))
        {
            backends.push(b);
        }
    }
    for b in backends {
        if let Some(s) = backend_story(ctx, findings, b, &mut used) {
            out.push(s);
        }
    }
    for f in findings
        .iter()
        .filter(|f| f.kind == FindingKind::RouteMismatch)
    {
        if used.contains(f.id.as_str()) {
            continue;
        }
        let symptoms = op_symptoms(findings, f, &used);
        let causes = change_findings(ctx, findings, &[f]);
        let mut ids: Vec<&str> = causes.iter().map(|c| c.id.as_str()).collect();
        ids.push(f.id.as_str());
        ids.extend(symptoms.iter().map(|s| s.id.as_str()));
        let narrative = match causes.first() {
            Some(c) => format!("{}. {}", c.summary, sentence(f, &symptoms)),
            None => sentence(f, &symptoms),
        };
        out.push(make(
            ctx,
            findings,
            format!(
                "route to wrong backend on {}",
                f.subject.operation.as_deref().unwrap_or("an operation")
            ),
            narrative,
            &ids,
            &mut used,
        ));
    }
    let capacity: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Capacity && !used.contains(f.id.as_str()))
        .collect();
    if let Some(cause) = capacity.first() {
        let symptoms: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                f.kind == FindingKind::LatencyRegression
                    && !used.contains(f.id.as_str())
                    && overlaps(f.window, cause.window)
            })
            .collect();
        let mut ids: Vec<&str> = capacity.iter().map(|c| c.id.as_str()).collect();
        ids.extend(symptoms.iter().map(|s| s.id.as_str()));
        let narrative = sentence(cause, &symptoms);
        out.push(make(
            ctx,
            findings,
            "capacity saturation → latency".to_string(),
            narrative,
            &ids,
            &mut used,
        ));
    }
    // Other symptoms: those behind the same change are one incident and
    // one story (a product change behind 429s on three APIs); a symptom
    // without a cause stands alone.
    let mut groups: Vec<(Option<&Finding>, Vec<&Finding>)> = Vec::new();
    for f in findings.iter().filter(|f| {
        matches!(
            f.kind,
            FindingKind::ErrorSpike | FindingKind::LatencyRegression | FindingKind::Quota
        )
    }) {
        if used.contains(f.id.as_str()) {
            continue;
        }
        let cause = change_findings(ctx, findings, &[f]).first().copied();
        match groups
            .iter_mut()
            .find(|(c, _)| cause.is_some() && c.map(|c| &c.id) == cause.map(|c| &c.id))
        {
            Some((_, members)) => members.push(f),
            None => groups.push((cause, vec![f])),
        }
    }
    for (cause, symptoms) in groups {
        let Some(first) = symptoms.first() else {
            continue;
        };
        let mut ids: Vec<&str> = Vec::new();
        if let Some(c) = cause {
            ids.push(c.id.as_str());
        }
        ids.extend(symptoms.iter().map(|s| s.id.as_str()));
        let what = if symptoms.len() == 1 {
            short(first)
        } else {
            let subjects: Vec<String> = symptoms
                .iter()
                .map(|s| {
                    s.subject
                        .api
                        .clone()
                        .or_else(|| s.subject.operation.clone())
                        .unwrap_or_else(|| s.subject.to_string())
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            format!("{} on {}", kind_word(first.kind), subjects.join(", "))
        };
        let title = match cause {
            Some(c) => format!("{} → {what}", short(c)),
            None => what,
        };
        let body: Vec<String> = symptoms.iter().map(|s| format!("{}.", s.summary)).collect();
        let narrative = match cause {
            Some(c) => format!("{}. {}", c.summary, body.join(" ")),
            None => body.join(" "),
        };
        out.push(make(ctx, findings, title, narrative, &ids, &mut used));
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.confidence.total_cmp(&a.confidence))
    });
    out
}

fn overlaps(a: Option<Window>, b: Option<Window>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let pad = Window {
                start: b.start.plus_minutes(-30),
                end: b.end.plus_minutes(30),
            };
            a.overlaps(&pad)
        }
        _ => true,
    }
}

fn backend_story<'a>(
    ctx: &Ctx,
    findings: &'a [Finding],
    backend: &str,
    used: &mut BTreeSet<&'a str>,
) -> Option<Story> {
    let on = |k: FindingKind| {
        findings.iter().find(|f| {
            f.kind == k
                && f.subject
                    .backend
                    .as_deref()
                    .is_some_and(|b| b.eq_ignore_ascii_case(backend))
                && !used.contains(f.id.as_str())
        })
    };
    let failure = on(FindingKind::BackendFailure);
    let timeout = on(FindingKind::BackendTimeout);
    let unhealthy = on(FindingKind::BackendUnhealthy);
    let network = on(FindingKind::NetworkGap);
    let lead = failure.or(timeout).or(unhealthy)?;
    // Operation symptoms explained by this backend.
    let symptoms: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                FindingKind::ErrorSpike | FindingKind::LatencyRegression
            ) && !used.contains(f.id.as_str())
                && overlaps(f.window, lead.window)
                && match (f.subject.api.as_deref(), f.subject.operation.as_deref()) {
                    (Some(a), Some(o)) => ctx
                        .backends_of(a, o)
                        .iter()
                        .any(|b| b.eq_ignore_ascii_case(backend)),
                    _ => false,
                }
        })
        .collect();
    let mut backend_findings: Vec<&Finding> = [failure, timeout].into_iter().flatten().collect();
    // The app's own metric anomalies around the same time.
    let app_metrics: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.kind == FindingKind::MetricAnomaly
                && !used.contains(f.id.as_str())
                && overlaps(f.window, lead.window)
                && f.subject
                    .backend
                    .as_deref()
                    .is_some_and(|app| super::apps::app_matches(ctx, backend, None, Some(app)))
        })
        .collect();
    let changes = change_findings(ctx, findings, &backend_findings);
    let mut ids: Vec<&str> = Vec::new();
    let title;
    let narrative;
    let ops: Vec<String> = symptoms
        .iter()
        .filter_map(|s| s.subject.operation.clone())
        .collect();
    let ops_text = if ops.is_empty() {
        String::new()
    } else {
        format!(" on {}", ops.join(", "))
    };
    if let Some(n) = network {
        ids.push(&n.id);
        title = format!(
            "NSG rule {} blocks backend {backend}",
            n.subject.rule.as_deref().unwrap_or("?")
        );
        narrative = format!("{}. {}", n.summary, sentence(lead, &symptoms));
    } else if let Some(u) = unhealthy.filter(|u| u.summary.contains("out-of-memory")) {
        ids.push(&u.id);
        title = format!("backend {backend} out of memory → 5xx{ops_text}");
        narrative = format!("{}. {}", u.summary, sentence(lead, &symptoms));
    } else if let Some(c) = changes.first() {
        ids.extend(changes.iter().map(|c| c.id.as_str()));
        let what = if timeout.is_some() && failure.is_none() {
            "timeouts"
        } else {
            "failures"
        };
        title = format!(
            "{} at {} → {what} on backend {backend}",
            change_label(c),
            c.window.map(|w| w.start.hhmm()).unwrap_or_default()
        );
        narrative = format!("{}. {}", c.summary, sentence(lead, &symptoms));
    } else if let Some(u) = unhealthy {
        ids.push(&u.id);
        title = format!("backend {backend} unhealthy → errors{ops_text}");
        narrative = format!("{}. {}", u.summary, sentence(lead, &symptoms));
    } else {
        let what = if lead.kind == FindingKind::BackendTimeout {
            "timing out"
        } else {
            "failing"
        };
        title = format!("backend {backend} {what}");
        narrative = sentence(lead, &symptoms);
    }
    if unhealthy.is_some() && !ids.contains(&unhealthy.map(|u| u.id.as_str()).unwrap_or("")) {
        backend_findings.push(unhealthy?);
    }
    ids.extend(app_metrics.iter().map(|f| f.id.as_str()));
    ids.extend(backend_findings.iter().map(|f| f.id.as_str()));
    ids.extend(changes.iter().map(|c| c.id.as_str()));
    ids.extend(symptoms.iter().map(|s| s.id.as_str()));
    Some(make(ctx, findings, title, narrative, &ids, used))
}

fn change_label(c: &Finding) -> String {
    match &c.subject.policy_scope {
        Some(s) => format!("policy change on {s}"),
        None => format!("change to {}", c.subject),
    }
}

/// The lead finding's sentence, then the symptoms it explains.
fn sentence(lead: &Finding, symptoms: &[&Finding]) -> String {
    let mut s = format!("{}.", lead.summary);
    for x in symptoms.iter().take(4) {
        s.push_str(&format!(" {}.", x.summary));
    }
    if symptoms.len() > 4 {
        s.push_str(&format!(" And {} more symptoms.", symptoms.len() - 4));
    }
    s
}

fn kind_word(k: FindingKind) -> &'static str {
    match k {
        FindingKind::ErrorSpike => "5xx spikes",
        FindingKind::LatencyRegression => "latency regressions",
        FindingKind::Quota => "throttling (429)",
        _ => "symptoms",
    }
}

fn short(f: &Finding) -> String {
    match f.kind {
        FindingKind::ErrorSpike => format!(
            "5xx spike on {}",
            f.subject.operation.as_deref().unwrap_or("?")
        ),
        FindingKind::LatencyRegression => format!(
            "latency regression on {}",
            f.subject.operation.as_deref().unwrap_or("?")
        ),
        FindingKind::ConfigChange => change_label(f),
        _ => format!("{} on {}", f.kind, f.subject),
    }
}

/// Symptoms on the same operation as `f`.
fn op_symptoms<'a>(
    findings: &'a [Finding],
    f: &Finding,
    used: &BTreeSet<&str>,
) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|x| {
            x.id != f.id
                && !used.contains(x.id.as_str())
                && x.kind.is_anomaly()
                && x.subject.api == f.subject.api
                && x.subject.operation == f.subject.operation
        })
        .collect()
}

/// The config_change findings for changes implicated in `symptoms`.
fn change_findings<'a>(
    ctx: &Ctx,
    findings: &'a [Finding],
    symptoms: &[&Finding],
) -> Vec<&'a Finding> {
    let mut out: Vec<&Finding> = Vec::new();
    for s in symptoms {
        for x in changes::implicated(ctx, s) {
            let Some(c) = ctx.snapshot.changes.get(x.change) else {
                continue;
            };
            let subject = changes::change_subject(ctx, c);
            if let Some(f) = findings
                .iter()
                .find(|f| f.kind == FindingKind::ConfigChange && f.subject == subject)
                && !out.iter().any(|o| o.id == f.id)
            {
                out.push(f);
            }
        }
    }
    out
}

fn make<'a>(
    ctx: &Ctx,
    findings: &'a [Finding],
    title: String,
    narrative: String,
    ids: &[&str],
    used: &mut BTreeSet<&'a str>,
) -> Story {
    let mut order: Vec<String> = Vec::new();
    for id in ids {
        if !order.iter().any(|o| o == id) {
            order.push(id.to_string());
        }
    }
    let members: Vec<&'a Finding> = order
        .iter()
        .filter_map(|id| findings.iter().find(|f| &f.id == id))
        .collect();
    for m in &members {
        used.insert(m.id.as_str());
    }
    let severity = members
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Info);
    let confidence = if members.is_empty() {
        0.0
    } else {
        members.iter().map(|f| f.confidence).sum::<f64>() / members.len() as f64
    };
    let mut suspects: Vec<Suspect> = Vec::new();
    let mut seen = BTreeSet::new();
    // Lead times count to the story's onset (its earliest symptom), the
    // same instant every surface names, and are never negative.
    let onset = members
        .iter()
        .filter(|m| m.kind.is_anomaly() || m.kind == FindingKind::RouteMismatch)
        .filter_map(|m| m.window.map(|w| w.start))
        .min();
    for m in members
        .iter()
        .filter(|m| m.kind.is_anomaly() || m.kind == FindingKind::RouteMismatch)
    {
        for x in changes::implicated(ctx, m) {
            if seen.insert(x.change)
                && let Some(mut s) = changes::suspect(ctx.snapshot, &x)
            {
                if let Some(o) = onset {
                    s.lead_minutes = ((o.0 - s.time.0).div_euclid(60_000)).max(0);
                }
                suspects.push(s);
            }
        }
    }
    suspects.sort_by_key(|s| s.lead_minutes);
    let lead = members
        .iter()
        .find(|m| m.kind != FindingKind::ConfigChange)
        .or(members.first());
    let timeline = Timeline::combine(members.iter().filter_map(|m| m.timeline));
    Story {
        id: lead.map(|m| m.id.clone()).unwrap_or_default(),
        timeline,
        title,
        narrative,
        severity,
        confidence,
        findings: order,
        suspects,
    }
}
