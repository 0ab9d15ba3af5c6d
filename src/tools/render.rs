//! The one text form of every tool answer: what a person, the offline
//! answerer and a model read (`ToolOutput::text`). Made from the typed
//! result alone, so the text says what the JSON says.

use super::result::*;
use crate::model::{Access, Direction, Finding, RequestRecord};
use std::fmt::Write;

/// `12.3%`.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// `[id] severity kind: summary`.
pub fn finding_line(f: &Finding) -> String {
    brief_line(&FindingBrief::of(f))
}

fn brief_line(f: &FindingBrief) -> String {
    format!("[{}] {} {}: {}", f.id, f.severity, f.kind, f.summary)
}

fn traffic_line(t: &Traffic) -> String {
    let s = &t.0;
    let mut t = format!(
        "{} requests, {} 5xx ({}), {} 4xx, {} 429, {} timeouts",
        s.requests,
        s.status_5xx,
        pct(s.error_rate()),
        s.status_4xx,
        s.status_429,
        s.timeouts
    );
    if let Some(p) = s.total_time.p95 {
        let _ = write!(t, ", p95 {p} ms");
    }
    if !s.error_reasons.is_empty() {
        let reasons: Vec<String> = s
            .error_reasons
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = write!(t, "; error reasons: {}", reasons.join(", "));
    }
    t
}

/// `time code api/op method backend code ms reason message (origin)`.
fn record_line(r: &RequestRecord) -> String {
    format!(
        "{} {} {}/{} {} backend {} {} ms {} {} ({})",
        r.time,
        r.response_code,
        r.api_id,
        r.operation_id,
        r.method.as_deref().unwrap_or(""),
        r.backend_response_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into()),
        r.total_time_ms,
        r.last_error_reason.as_deref().unwrap_or(""),
        r.last_error_message.as_deref().unwrap_or(""),
        r.origin
    )
}

impl ToolResult {
    /// The answer as short text.
    pub fn text(&self) -> String {
        match self {
            ToolResult::Summary(s) => summary(s),
            ToolResult::Apis(rows) => apis(rows),
            ToolResult::Operations(rows) => operations(rows),
            ToolResult::Products(rows) => products(rows),
            ToolResult::Backends(b) => backends(b),
            ToolResult::FailureRate(f) => failure_rate(f),
            ToolResult::FailureLog(rows) => failure_log(rows),
            ToolResult::Changes(c) => changes(c),
            ToolResult::BackendMap(rows) => backend_map(rows),
            ToolResult::Policies(p) => policies(p),
            ToolResult::Nsgs(rows) => nsgs(rows),
            ToolResult::NetworkCheck(rows) => network_check(rows),
            ToolResult::Capacity(c) => capacity(c),
            ToolResult::Findings(fs) => findings(fs),
            ToolResult::Explain(e) => explain(e),
            ToolResult::Proposals(ps) => proposals(ps),
            ToolResult::Error(e) => e.error.clone(),
        }
    }
}

fn summary(s: &Summary) -> String {
    let mut t = if s.no_traffic_data {
        "no traffic data loaded: the gateway's health cannot be judged".to_string()
    } else if s.anomalies == 0 {
        format!(
            "no anomaly found in {} findings over the loaded data",
            s.findings
        )
    } else {
        format!(
            "{} anomalies ({})",
            s.anomalies,
            s.by_severity
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if let Some(r) = s.time_range {
        let _ = write!(t, "; data {} → {}", r.start, r.end);
    }
    for st in &s.stories {
        let _ = write!(
            t,
            "\n- {} [{}]: {}",
            st.title,
            st.severity.as_str(),
            st.narrative
        );
    }
    for p in &s.proposals {
        let _ = write!(t, "\n  fix: {}", p.title);
    }
    t
}

fn apis(rows: &[ApiRow]) -> String {
    let mut text = format!("{} APIs", rows.len());
    for a in rows {
        let _ = write!(
            text,
            "\n- {} (/{}): {} operations, {} requests, 5xx {}",
            a.id,
            a.path.as_deref().unwrap_or(""),
            a.operations,
            a.requests,
            pct(a.error_rate)
        );
    }
    text
}

fn operations(rows: &[OperationRow]) -> String {
    if rows.is_empty() {
        return "no operations loaded for that API".to_string();
    }
    let mut text = String::new();
    for o in rows {
        let _ = writeln!(
            text,
            "- {}/{} ({} {}): {} requests, 5xx {}",
            o.api,
            o.id,
            o.method.as_deref().unwrap_or(""),
            o.url_template.as_deref().unwrap_or(""),
            o.requests,
            pct(o.error_rate)
        );
    }
    text.trim_end().to_string()
}

fn products(rows: &[ProductRow]) -> String {
    let mut t = format!("{} products", rows.len());
    for p in rows {
        let _ = write!(
            t,
            "\n- {} ({} APIs: {})",
            p.id,
            p.apis.len(),
            p.apis.join(", ")
        );
    }
    t
}

fn backends(b: &Backends) -> String {
    if b.rows.is_empty() {
        return match &b.asked {
            Some(name) => format!(
                "no backend matches `{name}`; backends: {}",
                b.known.join(", ")
            ),
            None => "no backends loaded".to_string(),
        };
    }
    let mut text = String::new();
    for r in &b.rows {
        let _ = writeln!(
            text,
            "- {} ({}{}): {}; {}",
            r.id,
            match r.kind {
                crate::model::BackendKind::Pool => "pool",
                crate::model::BackendKind::Single => "single",
            },
            r.url
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default(),
            r.health,
            traffic_line(&r.traffic)
        );
        for f in &r.findings {
            let _ = writeln!(text, "    {}", brief_line(f));
        }
    }
    text.trim_end().to_string()
}

fn failure_rate(f: &FailureRate) -> String {
    let mut text = match f.window {
        Some(w) => format!(
            "{}, {} ({} – {}): {}",
            f.scope,
            f.period,
            w.start,
            w.end,
            traffic_line(&f.totals)
        ),
        None => format!("{}: no time-stamped traffic loaded", f.scope),
    };
    if f.data_shorter_than_period {
        let _ = write!(
            text,
            "\nnote: the data covers only {} minutes, less than the {} asked for",
            f.window.map(|w| w.duration_minutes()).unwrap_or(0),
            f.period
        );
    }
    if f.operations.len() > 1 {
        for p in f.operations.iter().take(6) {
            let _ = write!(
                text,
                "\n- {}/{}: {} requests, 5xx {}",
                p.api,
                p.operation,
                p.requests,
                // As the JSON has it (this line was once read back from it).
                pct(round4(p.error_rate))
            );
        }
    }
    text
}

fn failure_log(rows: &[RequestRecord]) -> String {
    let mut text = format!("{} failing log rows (newest first)", rows.len());
    for r in rows {
        let _ = write!(text, "\n- {}", record_line(r));
    }
    text
}

fn changes(c: &Changes) -> String {
    if c.total == 0 {
        return "no changes loaded (no activity log in the data)".to_string();
    }
    let mut text = format!(
        "{} changes in the activity log; newest {}:",
        c.total,
        c.changes.len()
    );
    for r in &c.changes {
        let _ = write!(
            text,
            "\n- {} {:?} {} on {} by {} ({})",
            r.time,
            r.kind,
            r.operation,
            r.target,
            r.caller.as_deref().unwrap_or("unknown"),
            r.status.as_deref().unwrap_or("")
        );
    }
    text
}

fn backend_map(rows: &[crate::model::RouteEntry]) -> String {
    if rows.is_empty() {
        return "no routes for that API".to_string();
    }
    let mut text = String::new();
    for r in rows {
        let conf: Vec<&str> = r.configured.iter().map(|x| x.backend.as_str()).collect();
        let obs: Vec<&str> = r.observed.iter().map(|x| x.backend.as_str()).collect();
        let _ = writeln!(
            text,
            "- {}/{} → configured {} observed {}: {}, {} requests, 5xx {}{}",
            r.api,
            r.operation,
            conf.join("|"),
            obs.join("|"),
            r.health,
            r.requests,
            pct(r.error_rate),
            if r.mismatch { ", MISMATCH" } else { "" }
        );
    }
    text.trim_end().to_string()
}

fn policies(p: &Policies) -> String {
    let mut text = format!("{} policy documents", p.documents.len());
    for d in &p.documents {
        let _ = write!(text, "\n- {} ({})", d.scope, d.origin);
    }
    for e in &p.effective {
        let _ = write!(
            text,
            "\n- effective {}/{}: {}; forward-request timeout {}; backend {}{}",
            e.api,
            e.operation,
            e.sections
                .iter()
                .map(|s| {
                    let names: Vec<&str> = s.statements.iter().map(|x| x.name.as_str()).collect();
                    format!("{}[{}]", s.section, names.join(","))
                })
                .collect::<Vec<_>>()
                .join(" "),
            match (e.forward_timeout_secs, &e.forward_timeout_scope) {
                (Some(t), Some(s)) => format!("{t} s at {s}"),
                _ => "none".to_string(),
            },
            if e.backend_targets.is_empty() {
                "from serviceUrl".to_string()
            } else {
                e.backend_targets.join(", ")
            },
            if e.limits.is_empty() {
                String::new()
            } else {
                let limits: Vec<String> = e.limits.iter().map(ToString::to_string).collect();
                format!("; limits {}", limits.join(", "))
            }
        );
    }
    text
}

fn nsgs(rows: &[NsgRow]) -> String {
    if rows.is_empty() {
        return "no network security groups loaded (the gateway may not be VNet-injected, or the NSG export is missing)".to_string();
    }
    let mut text = String::new();
    for n in rows {
        let _ = writeln!(
            text,
            "NSG {} (subnets: {}), {} rules:",
            n.name,
            n.subnets.join(", "),
            n.rules.len()
        );
        for r in &n.rules {
            let _ = writeln!(
                text,
                "- {} {} {} {} {} {} -> {}:{}",
                r.priority,
                if r.direction == Direction::Inbound {
                    "in "
                } else {
                    "out"
                },
                if r.access == Access::Allow {
                    "allow"
                } else {
                    "DENY "
                },
                r.name,
                r.protocol,
                r.source_prefixes.join(","),
                r.destination_prefixes.join(","),
                r.destination_ports.join(",")
            );
        }
    }
    text.trim_end().to_string()
}

fn network_check(rows: &[FlowCheck]) -> String {
    if rows.is_empty() {
        return "no NSGs loaded: nothing to evaluate".to_string();
    }
    let mut text = String::new();
    for c in rows {
        let v = &c.verdict;
        let _ = writeln!(
            text,
            "{}: {} is {} by {} (priority {}){}",
            c.nsg,
            c.flow,
            if v.access == Access::Allow {
                "allowed"
            } else {
                "DENIED"
            },
            v.rule,
            v.priority,
            if v.certain() {
                ""
            } else {
                " (uncertain: a rule before it could not be decided)"
            }
        );
    }
    text.trim_end().to_string()
}

fn capacity(c: &Capacity) -> String {
    let mut text = match &c.service {
        Some(s) => format!(
            "{}: tier {}, {} unit(s), zones [{}], VNet {}",
            s.name,
            s.sku.as_deref().unwrap_or("unknown"),
            s.capacity
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            s.zones.join(","),
            s.vnet_type.as_deref().unwrap_or("none")
        ),
        None => "no service resource loaded (tier and units unknown)".to_string(),
    };
    for a in &c.autoscale {
        let _ = write!(
            text,
            "\nautoscale {} profile {}: min {:?} max {:?} default {:?}, {} rules, enabled {:?}",
            a.setting,
            a.profile,
            a.minimum,
            a.maximum,
            a.default,
            a.rules.len(),
            a.enabled
        );
    }
    if c.autoscale_settings == 0 {
        text.push_str("\nno autoscale setting loaded");
    }
    for e in &c.saturation {
        let _ = write!(
            text,
            "\nsaturated: {} mean {:.0}% peak {:.0}% {}–{} ({} min)",
            e.metric,
            e.mean,
            e.peak,
            e.start.hhmm(),
            e.end.hhmm(),
            e.minutes
        );
    }
    if c.saturation.is_empty() {
        match c.capacity_peak {
            Some(p) => {
                let _ = write!(
                    text,
                    "\nno sustained saturation; Capacity peaked at {p:.0}%"
                );
            }
            None => text.push_str("\nno Capacity metric loaded"),
        }
    }
    for f in &c.findings {
        let _ = write!(text, "\n{}", finding_line(&f.finding));
    }
    text
}

fn findings(fs: &[FindingView]) -> String {
    let mut text = format!("{} findings", fs.len());
    for v in fs {
        let f = &v.finding;
        let _ = write!(text, "\n- {}", finding_line(f));
        if let Some(e) = f.evidence.first() {
            let _ = write!(text, "\n    evidence: {}", e.text);
        }
    }
    text
}

fn explain(e: &Explained) -> String {
    let f = &e.finding.finding;
    let mut text = finding_line(f);
    if let Some(w) = f.window {
        let _ = write!(text, "\nwindow: {} – {}", w.start, w.end);
    }
    let _ = write!(text, "\nconfidence: {:.0}%", f.confidence * 100.0);
    for ev in &f.evidence {
        let _ = write!(text, "\nevidence: {}", ev.text);
        for r in ev.records.iter().take(2) {
            let _ = write!(
                text,
                "\n    log: {} {} {}/{} {} ms {} ({})",
                r.time,
                r.response_code,
                r.api_id,
                r.operation_id,
                r.total_time_ms,
                r.last_error_reason.as_deref().unwrap_or(""),
                r.origin
            );
        }
    }
    if let Some(l) = &f.location {
        let _ = write!(text, "\nlocation: {l}");
    }
    for s in &e.stories {
        let _ = write!(text, "\nstory: {}: {}", s.title, s.narrative);
    }
    for p in &e.proposals {
        let _ = write!(text, "\nproposal {} ({:?} risk): {}", p.id, p.risk, p.title);
    }
    text
}

fn proposals(ps: &[crate::model::Proposal]) -> String {
    let mut text = format!(
        "{} proposals (proposals only: nothing is executed without approval)",
        ps.len()
    );
    for p in ps {
        let _ = write!(
            text,
            "\n- {} ({:?} risk) for finding {}: {}",
            p.id, p.risk, p.finding, p.title
        );
    }
    text
}
