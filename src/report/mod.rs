//! Rendering a diagnosis for people and machines (pure): coloured or plain
//! text for a terminal, Markdown for an incident ticket, JSON with a stable
//! schema. Nothing here decides anything; it only lays out a `Diagnosis`.

pub mod lint;
pub mod net;
pub mod sarif;

use crate::model::{
    Action, Diagnosis, Finding, Health, InputKind, LoadReport, Proposal, RouteEntry, Severity,
    Story, VerdictState,
};
use std::fmt::Write;

/// Version of the JSON schema below; bumped on a breaking change.
pub const SCHEMA_VERSION: u32 = 1;

/// How text output is laid out.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// ANSI colours (only on a terminal, never with NO_COLOR).
    pub color: bool,
    /// Raw records shown per finding.
    pub records: usize,
    /// Problems (rejected records) listed in the load summary.
    pub problems: usize,
}

/// ANSI styles, in one place.
#[derive(Clone, Copy)]
enum Paint {
    Bold,
    Dim,
    Severity(Severity),
    Health(Health),
}

fn paint(on: bool, p: Paint, s: &str) -> String {
    if !on {
        return s.to_string();
    }
    let code = match p {
        Paint::Bold => "1",
        Paint::Dim => "2",
        Paint::Severity(Severity::Critical) => "1;97;41",
        Paint::Severity(Severity::High) => "1;31",
        Paint::Severity(Severity::Medium) => "33",
        Paint::Severity(Severity::Low) => "36",
        Paint::Severity(Severity::Info) => "2",
        Paint::Health(Health::Healthy) => "32",
        Paint::Health(Health::Degraded) => "33",
        Paint::Health(Health::Unhealthy) => "1;31",
        Paint::Health(Health::Unknown) => "2",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// Groups digits: 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One line per loaded kind, the time range and the rejected records.
pub fn load_summary(l: &LoadReport, opts: &TextOptions) -> String {
    let mut out = String::new();
    let order = [
        InputKind::GatewayLogs,
        InputKind::Metrics,
        InputKind::Service,
        InputKind::Apis,
        InputKind::Operations,
        InputKind::Products,
        InputKind::Backends,
        InputKind::Policies,
        InputKind::NamedValues,
        InputKind::Nsgs,
        InputKind::Autoscale,
        InputKind::ActivityLog,
    ];
    let parts: Vec<String> = order
        .iter()
        .filter_map(|k| {
            l.counts
                .get(k)
                .filter(|n| **n > 0)
                .map(|n| format!("{} {}", thousands(*n), k.label()))
        })
        .collect();
    if let Some(demo) = &l.demo {
        let _ = writeln!(
            out,
            "{}",
            paint(
                opts.color,
                Paint::Dim,
                &format!("No data given: running on the built-in demo scenario `{demo}`.")
            )
        );
    }
    let what = if parts.is_empty() {
        "nothing usable".to_string()
    } else {
        parts.join(", ")
    };
    let _ = writeln!(
        out,
        "Loaded {what} from {} file{}.",
        l.files,
        if l.files == 1 { "" } else { "s" }
    );
    if let Some(w) = l.time_range {
        let _ = writeln!(
            out,
            "Time range {} → {} ({} min).",
            w.start,
            w.end,
            w.duration_minutes()
        );
    }
    if l.rejected > 0 {
        let _ = writeln!(
            out,
            "Rejected {} record{}:",
            thousands(l.rejected),
            if l.rejected == 1 { "" } else { "s" }
        );
        for p in l.problems.iter().take(opts.problems) {
            let _ = writeln!(
                out,
                "  {} {p}",
                paint(opts.color, Paint::Severity(Severity::Medium), "!")
            );
        }
        if l.rejected as usize > opts.problems.min(l.problems.len()) {
            let _ = writeln!(
                out,
                "  … and {} more (see --format json)",
                l.rejected as usize - opts.problems.min(l.problems.len())
            );
        }
    }
    out
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The verdict line: what holds now, not what happened once.
pub fn verdict(d: &Diagnosis) -> (Severity, String) {
    let v = &d.verdict;
    let counts = |ids: &[&Finding]| -> String {
        Severity::ALL
            .iter()
            .rev()
            .filter_map(|s| {
                let n = ids.iter().filter(|f| f.severity == *s).count();
                (n > 0).then(|| format!("{n} {s}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let current: Vec<&Finding> = d
        .findings
        .iter()
        .filter(|f| v.current.iter().any(|c| c == &f.id))
        .collect();
    let ended = d
        .findings
        .iter()
        .filter(|f| f.timeline.is_some_and(|t| !t.is_ongoing()))
        .count();
    let at = |t: Option<crate::model::Timestamp>| t.map(|t| t.hhmm()).unwrap_or_default();
    let healthy_for = || match (v.recovered_at, v.as_of) {
        (Some(r), Some(a)) => format!(" (healthy for {} min)", (a.0 - r.0).max(0) / 60_000),
        _ => String::new(),
    };
    match v.state {
        VerdictState::Unknown => {
            let mut line = format!(
                "UNKNOWN — {}: nothing to judge health from.",
                v.missing.as_deref().unwrap_or("no traffic data")
            );
            if !d.findings.is_empty() {
                let _ = write!(
                    line,
                    " {} from configuration below ({}).",
                    plural(d.findings.len(), "finding"),
                    counts(&d.findings.iter().collect::<Vec<_>>())
                );
            }
            (Severity::Medium, line)
        }
        VerdictState::Healthy => {
            let mut line = "HEALTHY: no problem found in the data analysed.".to_string();
            if !current.is_empty() {
                let _ = write!(
                    line,
                    " {} ({}).",
                    plural(current.len(), "note"),
                    counts(&current)
                );
            }
            (Severity::Info, line)
        }
        VerdictState::Recovered => {
            let mut line = format!(
                "RECOVERED at {}{}: {} ended, nothing ongoing.",
                at(v.recovered_at),
                healthy_for(),
                plural(ended, "incident finding")
            );
            if !current.is_empty() {
                let _ = write!(
                    line,
                    " {} hold ({}).",
                    plural(current.len(), "note"),
                    counts(&current)
                );
            }
            (Severity::Low, line)
        }
        VerdictState::Unhealthy => {
            let worst = v.severity.unwrap_or(Severity::Medium);
            let word = if worst >= Severity::High {
                "UNHEALTHY"
            } else {
                "DEGRADED"
            };
            let mut line = format!(
                "{word} now: {} hold{} ({})",
                plural(current.len(), "finding"),
                if current.len() == 1 { "s" } else { "" },
                counts(&current)
            );
            match v.since {
                Some(s) => {
                    let _ = write!(line, "; ongoing since {}", s.hhmm());
                }
                None if v.recovered_at.is_some() => {
                    let _ = write!(
                        line,
                        "; the incident ended at {}{}, configuration findings remain",
                        at(v.recovered_at),
                        healthy_for()
                    );
                }
                None => {}
            }
            if ended > 0 && v.since.is_some() {
                let _ = write!(line, "; {} ended", plural(ended, "other finding"));
            }
            line.push('.');
            (worst, line)
        }
    }
}

/// `Window analysed 10:00 → 12:59 UTC (179 min), as of the end of the data.`
fn window_line(d: &Diagnosis) -> Option<String> {
    let w = d.verdict.window?;
    Some(format!(
        "Window analysed {} → {} ({} min); judged as of its end.",
        w.start,
        w.end,
        w.duration_minutes()
    ))
}

fn timeline_text(t: Option<crate::model::Timeline>) -> String {
    t.map(|t| t.describe()).unwrap_or_default()
}

fn window_text(f: &Finding) -> String {
    match f.window {
        Some(w) if w.start == w.end => w.start.to_string(),
        Some(w) => format!("{} → {}", w.start, w.end.hhmm()),
        None => String::new(),
    }
}

fn record_line(r: &crate::model::RequestRecord) -> String {
    let mut s = format!(
        "{} {} {}",
        r.time,
        r.method.as_deref().unwrap_or("?"),
        r.url.as_deref().unwrap_or(&r.operation_id)
    );
    let _ = write!(s, " → {}", r.response_code);
    if let Some(b) = r.backend_response_code {
        let _ = write!(s, " (backend {b})");
    }
    if let Some(reason) = &r.last_error_reason {
        let _ = write!(s, " {reason}");
    }
    let _ = write!(s, " {}ms", r.total_time_ms);
    let _ = write!(s, "  [{}]", r.origin);
    s
}

fn story_text(out: &mut String, i: usize, s: &Story, c: bool) {
    let _ = writeln!(
        out,
        "  {}. {} {}  {}",
        i + 1,
        paint(c, Paint::Severity(s.severity), s.severity.tag()),
        paint(c, Paint::Bold, &s.title),
        paint(c, Paint::Dim, &timeline_text(s.timeline))
    );
    let _ = writeln!(
        out,
        "     {} (confidence {:.0}%)",
        s.narrative,
        s.confidence * 100.0
    );
    for sus in &s.suspects {
        let who = sus
            .caller
            .as_deref()
            .map(|c| format!(" by {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "     suspect: {} {}{who}, {} min before onset",
            sus.time, sus.operation, sus.lead_minutes
        );
        if let Some(diff) = &sus.diff {
            for line in diff.lines().take(20) {
                let _ = writeln!(out, "       {line}");
            }
        }
    }
}

fn finding_text(out: &mut String, f: &Finding, opts: &TextOptions) {
    let c = opts.color;
    let when = match f.timeline {
        Some(t) => format!("{}  {}", window_text(f), t.describe()),
        None => window_text(f),
    };
    let _ = writeln!(
        out,
        "  {} {:<18} {}  {}",
        paint(c, Paint::Severity(f.severity), f.severity.tag()),
        f.kind.as_str(),
        paint(c, Paint::Bold, &f.subject.to_string()),
        paint(c, Paint::Dim, &when)
    );
    let rule = f
        .rule
        .as_deref()
        .map(|r| format!("{r} "))
        .unwrap_or_default();
    let _ = writeln!(out, "       {rule}{}", f.summary);
    if let Some(loc) = &f.location {
        let _ = writeln!(out, "       at {loc}");
    }
    let mut shown = 0;
    for e in &f.evidence {
        if !e.text.is_empty() && e.text != f.summary {
            let _ = writeln!(out, "       · {}", e.text);
        }
        if let Some(x) = &e.excerpt {
            for line in x.lines().take(12) {
                let _ = writeln!(out, "         {line}");
            }
        }
        for r in e.records.iter().take(opts.records.saturating_sub(shown)) {
            let _ = writeln!(out, "         {}", paint(c, Paint::Dim, &record_line(r)));
            shown += 1;
        }
    }
    let _ = writeln!(
        out,
        "       {}",
        paint(
            c,
            Paint::Dim,
            &format!("id {} · confidence {:.0}%", f.id, f.confidence * 100.0)
        )
    );
}

/// The backend column of one backend-map row: configured backends, then any
/// observed ones that no configured route names.
fn route_target(r: &RouteEntry) -> String {
    let backends: Vec<String> = r.configured.iter().map(|x| x.backend.clone()).collect();
    let observed: Vec<String> = r
        .observed
        .iter()
        .map(|x| x.backend.clone())
        .filter(|b| !backends.contains(b))
        .collect();
    let mut target = if backends.is_empty() {
        "-".to_string()
    } else {
        backends.join(", ")
    };
    if !observed.is_empty() {
        let _ = write!(target, " (seen: {})", observed.join(", "));
    }
    target
}

fn backend_map_text(out: &mut String, map: &[RouteEntry], c: bool) {
    let names: Vec<String> = map
        .iter()
        .map(|r| format!("{}/{}", r.api, r.operation))
        .collect();
    let targets: Vec<String> = map.iter().map(route_target).collect();
    let w1 = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(13);
    let w2 = targets
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let _ = writeln!(
        out,
        "  {:<w1$}  {:<w2$}  {:<9}  {:>9}  {:>6}  {:>8}",
        "API/operation", "backend", "health", "requests", "5xx", "p95"
    );
    for ((r, name), target) in map.iter().zip(&names).zip(&targets) {
        let p95 = r
            .p95_ms
            .map(|p| format!("{p}ms"))
            .unwrap_or_else(|| "-".into());
        let mark = if r.mismatch {
            "  ≠ route mismatch"
        } else {
            ""
        };
        // Pad before painting: escape codes would count as width.
        let health = paint(
            c,
            Paint::Health(r.health),
            &format!("{:<9}", r.health.as_str()),
        );
        let _ = writeln!(
            out,
            "  {name:<w1$}  {target:<w2$}  {health}  {:>9}  {:>6}  {p95:>8}{mark}",
            thousands(r.requests),
            format!("{:.1}%", r.error_rate * 100.0),
        );
    }
}

fn action_text(a: &Action) -> String {
    match a {
        Action::ScaleOut { units, from } => match from {
            Some(f) => format!("scale out {f} → {} units", f + units),
            None => format!("scale out by {units} unit(s)"),
        },
        Action::SetTimeout {
            scope,
            seconds,
            from,
        } => match from {
            Some(f) => format!("forward-request timeout at {scope}: {f}s → {seconds}s"),
            None => format!("forward-request timeout at {scope} → {seconds}s"),
        },
        Action::RollbackPolicy { scope, to } => {
            format!("restore the policy at {scope} as it was before {to}")
        }
        Action::AddNsgRule {
            nsg,
            rule,
            priority,
            direction,
            port,
            destination,
        } => {
            format!(
                "add {direction:?} rule {rule} (priority {priority}) to {nsg}: allow port {port} to {destination}"
            )
        }
        Action::FixNsgRule { nsg, rule, .. } => format!("change rule {rule} of {nsg}"),
        Action::FixRoute {
            api,
            operation,
            backend,
        } => format!("route {api}/{operation} to {backend}"),
        Action::RaiseLimit { scope, .. } => format!("raise the limit at {scope}"),
        Action::Manual { steps } => steps.join(" "),
    }
}

fn proposal_text(out: &mut String, i: usize, p: &Proposal, stories: &[Story]) {
    let serves = p
        .story
        .as_ref()
        .and_then(|id| stories.iter().position(|s| &s.id == id))
        .map(|k| format!(" — fixes root cause {}", k + 1))
        .unwrap_or_default();
    let _ = writeln!(out, "  [{}] {} (risk {:?}){serves}", i + 1, p.title, p.risk);
    let _ = writeln!(out, "      action: {}", action_text(&p.action));
    for pre in &p.preconditions {
        let _ = writeln!(out, "      requires: {pre}");
    }
    for need in &p.needs {
        let _ = writeln!(out, "      set first: {need}");
    }
    if let Some(c) = &p.command {
        let _ = writeln!(out, "      run: {c}");
    }
    if let Some(d) = &p.document {
        let what = match d.format {
            crate::model::DocumentFormat::PolicyXml => "policy it applies",
            crate::model::DocumentFormat::RuleJson => "rule it applies",
            crate::model::DocumentFormat::Json => "body it sends",
        };
        let lines: Vec<&str> = d.text.lines().collect();
        let _ = writeln!(out, "      {what}:");
        for l in lines.iter().take(24) {
            let _ = writeln!(out, "        {l}");
        }
        if lines.len() > 24 {
            let _ = writeln!(
                out,
                "        … {} more lines (--format json has it all)",
                lines.len() - 24
            );
        }
    }
}

/// The human report.
pub fn text(d: &Diagnosis, opts: &TextOptions) -> String {
    let c = opts.color;
    let mut out = load_summary(&d.loaded, opts);
    if let Some(w) = window_line(d) {
        out.push_str(&w);
        out.push('\n');
    }
    let (worst, line) = verdict(d);
    let _ = writeln!(out, "\n{}", paint(c, Paint::Severity(worst), &line));
    if !d.stories.is_empty() {
        let _ = writeln!(out, "\n{}", paint(c, Paint::Bold, "Root cause"));
        for (i, s) in d.stories.iter().enumerate() {
            story_text(&mut out, i, s, c);
        }
    }
    if !d.findings.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            paint(c, Paint::Bold, "Findings (most urgent first)")
        );
        for f in &d.findings {
            finding_text(&mut out, f, opts);
        }
    }
    if !d.backend_map.is_empty() {
        let _ = writeln!(out, "\n{}", paint(c, Paint::Bold, "Backend map"));
        backend_map_text(&mut out, &d.backend_map, c);
    }
    if !d.proposals.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            paint(
                c,
                Paint::Bold,
                "Proposed remediations (nothing runs without approval)"
            )
        );
        for (i, p) in d.proposals.iter().enumerate() {
            proposal_text(&mut out, i, p, &d.stories);
        }
    }
    out
}

/// Markdown for an incident ticket.
pub fn markdown(d: &Diagnosis) -> String {
    let mut out = String::from("# apimedic diagnosis\n\n");
    let (_, line) = verdict(d);
    let _ = writeln!(out, "**{line}**\n");
    let plain = TextOptions {
        color: false,
        records: 3,
        problems: 10,
    };
    for l in load_summary(&d.loaded, &plain)
        .lines()
        .chain(window_line(d).as_deref())
    {
        let _ = writeln!(out, "> {l}");
    }
    if !d.stories.is_empty() {
        out.push_str("\n## Root cause\n\n");
        for (i, s) in d.stories.iter().enumerate() {
            let when = s
                .timeline
                .map(|t| format!(", {}", t.describe()))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{}. **{}** ({}{when}, confidence {:.0}%): {}",
                i + 1,
                s.title,
                s.severity,
                s.confidence * 100.0,
                s.narrative
            );
            for sus in &s.suspects {
                let _ = writeln!(
                    out,
                    "   - suspect: `{}` at {}, {} min before onset",
                    sus.operation, sus.time, sus.lead_minutes
                );
                if let Some(diff) = &sus.diff {
                    let _ = writeln!(out, "\n```diff\n{}\n```\n", diff.trim_end());
                }
            }
        }
    }
    if !d.findings.is_empty() {
        out.push_str("\n## Findings\n\n| severity | kind | subject | window | now | summary |\n|---|---|---|---|---|---|\n");
        for f in &d.findings {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                f.severity,
                f.kind,
                f.subject,
                window_text(f),
                timeline_text(f.timeline),
                f.summary.replace('|', "\\|")
            );
        }
        out.push_str("\n### Evidence\n");
        for f in &d.findings {
            let _ = writeln!(out, "\n**{} {}** (`{}`)\n", f.kind, f.subject, f.id);
            for e in &f.evidence {
                let _ = writeln!(out, "- {}", e.text);
                for r in e.records.iter().take(3) {
                    let _ = writeln!(out, "  - `{}`", record_line(r));
                }
            }
        }
    }
    if !d.backend_map.is_empty() {
        out.push_str("\n## Backend map\n\n| operation | backend | health | requests | 5xx | p95 |\n|---|---|---|---|---|---|\n");
        for r in &d.backend_map {
            let b: Vec<&str> = r.routes().map(|x| x.backend.as_str()).collect();
            let mut b: Vec<&str> = b.into_iter().collect();
            b.dedup();
            let _ = writeln!(
                out,
                "| {}/{} | {} | {} | {} | {:.1}% | {} |",
                r.api,
                r.operation,
                b.join(", "),
                r.health.as_str(),
                r.requests,
                r.error_rate * 100.0,
                r.p95_ms.map(|p| format!("{p} ms")).unwrap_or_default()
            );
        }
    }
    if !d.proposals.is_empty() {
        out.push_str("\n## Proposed remediations\n\nNothing runs without approval.\n\n");
        for (i, p) in d.proposals.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}. **{}** (risk {:?}): {}",
                i + 1,
                p.title,
                p.risk,
                action_text(&p.action)
            );
            for pre in &p.preconditions {
                let _ = writeln!(out, "   - requires: {pre}");
            }
            for need in &p.needs {
                let _ = writeln!(out, "   - set first: {need}");
            }
            if let Some(c) = &p.command {
                let _ = writeln!(out, "\n   ```sh\n   {c}\n   ```");
            }
            if let Some(d) = &p.document {
                let lang = match d.format {
                    crate::model::DocumentFormat::PolicyXml => "xml",
                    _ => "json",
                };
                let _ = writeln!(out, "\n   ```{lang}");
                for l in d.text.lines() {
                    let _ = writeln!(out, "   {l}");
                }
                let _ = writeln!(out, "   ```\n");
            }
        }
    }
    out
}

/// The stable JSON document of `diagnose --format json`.
pub fn json(d: &Diagnosis) -> serde_json::Value {
    serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "verdict": d.verdict,
        "findings": d.findings,
        "stories": d.stories,
        "backend_map": d.backend_map,
        "proposals": d.proposals,
        "loaded": d.loaded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, FindingKind, Subject, Timestamp, Verdict, Window};

    fn sample() -> Diagnosis {
        let mut loaded = LoadReport::default();
        loaded.count(InputKind::GatewayLogs, 1234);
        loaded.files = 2;
        let f = Finding::new(
            FindingKind::ErrorSpike,
            Severity::Critical,
            Subject::operation("inventory-api", "check-stock"),
            "5xx 38% vs 0.4%",
        )
        .window(Window::minutes(100, 110))
        .evidence(Evidence::text("38 of 100 requests failed").value("rate", 0.38));
        Diagnosis {
            verdict: Verdict {
                state: VerdictState::Unhealthy,
                severity: Some(Severity::Critical),
                since: Some(Timestamp::from_minute(100)),
                current: vec![f.id.clone()],
                ..Verdict::default()
            },
            findings: vec![f],
            loaded,
            ..Diagnosis::default()
        }
    }

    #[test]
    fn plain_text_has_verdict_and_finding_without_escapes() {
        let out = text(
            &sample(),
            &TextOptions {
                color: false,
                records: 3,
                problems: 5,
            },
        );
        assert!(
            out.contains("Loaded 1,234 gateway log rows from 2 files."),
            "{out}"
        );
        assert!(
            out.contains("UNHEALTHY now: 1 finding holds (1 critical); ongoing since 01:40."),
            "{out}"
        );
        assert!(
            out.contains("CRIT error_spike        api=inventory-api operation=check-stock"),
            "{out}"
        );
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn colour_marks_severity() {
        let out = text(
            &sample(),
            &TextOptions {
                color: true,
                records: 3,
                problems: 5,
            },
        );
        assert!(out.contains("\x1b[1;97;41mCRIT\x1b[0m"), "{out}");
    }

    #[test]
    fn healthy_verdict_needs_traffic() {
        // Nothing loaded is not healthy: it is unknown.
        let out = text(&Diagnosis::default(), &TextOptions::default());
        assert!(out.contains("UNKNOWN — no traffic data"), "{out}");
        assert!(!out.contains("HEALTHY"), "{out}");
        let mut d = Diagnosis::default();
        d.verdict.state = VerdictState::Healthy;
        let out = text(&d, &TextOptions::default());
        assert!(out.contains("HEALTHY: no problem found"), "{out}");
    }

    #[test]
    fn recovered_verdict_says_when() {
        let mut d = sample();
        let t = Timestamp::from_minute(110);
        d.findings[0].timeline = Some(crate::model::Timeline::ended(
            Timestamp::from_minute(100),
            t,
            Timestamp::from_minute(170),
        ));
        d.verdict = Verdict {
            state: VerdictState::Recovered,
            recovered_at: Some(t),
            as_of: Some(Timestamp::from_minute(170)),
            ..Verdict::default()
        };
        let out = text(&d, &TextOptions::default());
        assert!(
            out.contains("RECOVERED at 01:50 (healthy for 60 min): 1 incident finding ended"),
            "{out}"
        );
        assert!(
            out.contains("ended 01:50 after 10 min; healthy for 60 min"),
            "{out}"
        );
    }

    #[test]
    fn json_schema_has_top_level_keys() {
        let v = json(&sample());
        for k in [
            "schema_version",
            "findings",
            "stories",
            "backend_map",
            "proposals",
            "loaded",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["findings"][0]["kind"], "error_spike");
        assert_eq!(
            v["findings"][0]["window"]["start"],
            Timestamp::from_minute(100).to_string()
        );
    }

    #[test]
    fn markdown_has_table() {
        let md = markdown(&sample());
        assert!(
            md.contains("| critical | error_spike | api=inventory-api operation=check-stock |"),
            "{md}"
        );
    }

    #[test]
    fn thousands_groups() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
