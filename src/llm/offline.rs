//! The offline answerer: no model, no network. A question is normalised,
//! scored against intents by keywords, its entities (APIs, operations,
//! backends, paths, a period) are matched against the instance's own names,
//! and each intent runs a fixed set of tools. The answer carries the numbers,
//! finding ids, evidence and a "checked / could not check" line. Everything
//! comes from the snapshot and its diagnosis. Pure.

use crate::model::{Finding, FindingKind, Health, Snapshot};
use crate::tools::{Instance, Tool, ToolOutput, ToolResult};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Write;

/// What a question asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    Errors,
    Timeouts,
    Changes,
    FailureRate,
    SpikeBackend,
    Backends,
    Policies,
    Nsg,
    Slow,
    Scale,
    Network,
    Fix,
    /// Where an operation's traffic goes: its route and backend.
    Route,
    /// Since when, still going on, when it ended.
    Status,
    /// A question naming a finding id.
    Explain,
    Overview,
}

/// Keywords per intent with weights; phrases match on word boundaries.
const KEYWORDS: &[(Intent, &[(&str, u32)])] = &[
    (
        Intent::Errors,
        &[
            ("503", 3),
            ("502", 3),
            ("500", 3),
            ("5xx", 3),
            ("error", 2),
            ("errors", 2),
            ("failing", 3),
            ("fail", 2),
            ("fails", 2),
            ("failed", 2),
            ("failures", 2),
            ("broken", 2),
            ("down", 2),
            ("outage", 3),
            ("500s", 3),
            ("503s", 3),
        ],
    ),
    (
        Intent::Timeouts,
        &[
            ("timeout", 4),
            ("timeouts", 4),
            ("timing out", 4),
            ("time out", 4),
            ("timed out", 4),
            ("504", 3),
            ("hanging", 2),
        ],
    ),
    (
        Intent::Changes,
        &[
            ("change", 3),
            ("changes", 3),
            ("changed", 3),
            ("updated", 3),
            ("update", 2),
            ("deploy", 3),
            ("deployment", 3),
            ("deployed", 3),
            ("modified", 3),
            ("yesterday", 1),
            ("recently", 1),
            ("recent", 1),
            ("who", 1),
        ],
    ),
    (
        Intent::FailureRate,
        &[
            ("failure rate", 5),
            ("error rate", 5),
            ("success rate", 5),
            ("how many", 2),
            ("percentage", 3),
            ("how often", 4),
            ("availability", 4),
            ("sla", 3),
            ("slo", 3),
            ("percent", 3),
            ("rate", 1),
        ],
    ),
    (
        Intent::SpikeBackend,
        &[
            ("which backend", 5),
            ("responsible", 3),
            ("spike", 3),
            ("culprit", 3),
            ("root cause", 3),
            ("blame", 3),
            ("causing", 2),
        ],
    ),
    (
        Intent::Backends,
        &[
            ("backend", 2),
            ("backends", 3),
            ("unhealthy", 3),
            ("healthy", 2),
            ("health", 2),
            ("upstream", 2),
            ("what backends", 3),
        ],
    ),
    (
        Intent::Policies,
        &[("policy", 3), ("policies", 4), ("xml", 2)],
    ),
    (
        Intent::Nsg,
        &[
            ("nsg", 5),
            ("nsgs", 5),
            ("security group", 5),
            ("security rules", 4),
            ("firewall", 4),
            ("rules", 1),
        ],
    ),
    (
        Intent::Slow,
        &[
            ("slow", 5),
            ("slower", 5),
            ("latency", 5),
            ("slowness", 5),
            ("sluggish", 5),
            ("p95", 4),
            ("taking so long", 5),
            ("takes so long", 5),
            ("take so long", 5),
            ("slowly", 5),
            ("p99", 4),
            ("response time", 4),
            ("performance", 3),
        ],
    ),
    (
        Intent::Scale,
        &[
            ("scale", 5),
            ("scaling", 5),
            ("capacity", 5),
            ("units", 3),
            ("autoscale", 5),
            ("overloaded", 5),
            ("saturated", 5),
            ("saturation", 5),
            ("more units", 5),
            ("throttled", 3),
            ("throttling", 3),
            ("429s", 3),
            ("throttle", 3),
            ("429", 3),
            ("rate limit", 3),
            ("load", 2),
        ],
    ),
    (
        Intent::Network,
        &[
            ("vnet", 5),
            ("networking", 4),
            ("vnets", 5),
            ("network", 4),
            ("subnet", 4),
            ("connectivity", 4),
            ("reachable", 3),
            ("unreachable", 3),
            ("private endpoint", 3),
        ],
    ),
    (
        Intent::Fix,
        &[
            ("fix", 4),
            ("remediate", 5),
            ("remediation", 5),
            ("mitigate", 5),
            ("mitigation", 5),
            ("proposal", 5),
            ("proposals", 5),
            ("what should i do", 5),
            ("resolve", 3),
            ("rollback", 3),
            ("roll back", 3),
        ],
    ),
    (
        Intent::Route,
        &[
            ("route", 4),
            ("which backend does", 3),
            ("what backend does", 3),
            ("where does", 2),
            ("where do", 2),
        ],
    ),
    (
        Intent::Status,
        // The lexicon turns "since when", "still going on", "when did it
        // end" into `timeline`.
        &[("timeline", 4), ("when did", 2), ("how long", 1)],
    ),
    (
        Intent::Overview,
        &[
            ("wrong", 2),
            ("anything", 1),
            ("issues", 2),
            ("problems", 2),
            ("status", 2),
            ("overview", 3),
            ("summary", 3),
            ("happening", 1),
        ],
    ),
];

/// Words that never name an entity.
const STOP: &[&str] = &[
    "the",
    "our",
    "my",
    "a",
    "an",
    "to",
    "of",
    "on",
    "in",
    "is",
    "are",
    "and",
    "or",
    "for",
    "from",
    "with",
    "any",
    "api",
    "apis",
    "service",
    "services",
    "backend",
    "backends",
    "operation",
    "operations",
    "instance",
    "management",
    "apim",
    "what",
    "which",
    "why",
    "how",
    "does",
    "do",
    "have",
    "has",
    "me",
    "can",
    "you",
    "help",
    "show",
    "there",
    "this",
    "that",
    "it",
    "we",
    "now",
    "app",
    "svc",
    "web",
    "hub",
    "pool",
    "legacy",
    "get",
    "list",
    "set",
    "requests",
    "request",
    "errors",
    "error",
    "policy",
    "policies",
    "rules",
    "week",
    "today",
    "hour",
    "day",
    "giving",
    "figure",
    "out",
    "happening",
    "timeouts",
    "spike",
    "responsible",
    "unhealthy",
    "v1",
    "v2",
    "v3",
    "failing",
    "rate",
    "failure",
    "yesterday",
    "updated",
    "recent",
    "changes",
    "timing",
    "my",
];

/// Names a question refers to, resolved against the instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Entities {
    pub apis: Vec<String>,
    pub operations: Vec<(String, String)>,
    pub backends: Vec<String>,
    /// Words or paths that look like a name but match nothing loaded.
    pub unknown: Vec<String>,
    pub period: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nsgs: Vec<String>,
    /// NSG rules named: (nsg, rule).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<(String, String)>,
    /// The incident under discussion: ids of the findings the last answer
    /// was about (a conversation carries it to the follow-ups).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub focus: Vec<String>,
    /// The time window under discussion (the incident's, or the TUI's
    /// time cursor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<crate::model::Window>,
}

impl Entities {
    /// No API, operation or backend named (findings are not scoped).
    pub fn is_empty(&self) -> bool {
        self.apis.is_empty() && self.operations.is_empty() && self.backends.is_empty()
    }

    /// Nothing at all named: no API, operation, backend, product, NSG or rule.
    pub fn names_nothing(&self) -> bool {
        self.is_empty() && self.products.is_empty() && self.nsgs.is_empty() && self.rules.is_empty()
    }
}

/// An answer with what backs it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Answer {
    pub question: String,
    pub intents: Vec<Intent>,
    pub entities: Entities,
    /// The answer's body, without the checked line.
    pub text: String,
    /// Finding ids cited.
    pub findings: Vec<String>,
    /// Tools run, in order.
    pub tools: Vec<String>,
    pub checked: Vec<String>,
    pub unchecked: Vec<String>,
    /// `high`, `medium`, `low` or `none`.
    pub confidence: String,
    /// False when the question could not be answered from the data.
    pub answered: bool,
    /// A note about how the answer was made (LLM fallback, limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Tool calls a model made that were refused (unknown or acting tools).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
}

impl Answer {
    /// The answer as people read it.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(n) = &self.note {
            let _ = writeln!(s, "Note: {n}\n");
        }
        s.push_str(self.text.trim_end());
        s.push('\n');
        if !self.checked.is_empty() || !self.unchecked.is_empty() {
            s.push('\n');
            let _ = writeln!(s, "Checked: {}", dash_if_empty(&self.checked));
            let _ = writeln!(s, "Could not check: {}", dash_if_empty(&self.unchecked));
            let _ = writeln!(s, "Confidence: {}", self.confidence);
        }
        s
    }
}

fn dash_if_empty(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join("; ")
    }
}

/// Lower case, punctuation to spaces (keeping `/`, `-` and `.` inside words).
pub fn normalise(text: &str) -> String {
    let t: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '/' || c == '-' || c == '.' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = t
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '.' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ")
}

fn has_phrase(norm: &str, phrase: &str) -> bool {
    let padded = format!(" {norm} ");
    padded.contains(&format!(" {phrase} "))
}

/// Intent scores, best first; only intents with a score. Phrasings the
/// lexicon knows count as the words they stand for.
pub fn score(norm: &str) -> Vec<(Intent, u32)> {
    let norm = &super::lexicon::expand(norm);
    let mut out: Vec<(Intent, u32)> = KEYWORDS
        .iter()
        .map(|(i, kws)| {
            let s = kws
                .iter()
                .filter(|(k, _)| has_phrase(norm, k))
                .map(|(_, w)| *w)
                .sum();
            (*i, s)
        })
        .filter(|(_, s)| *s > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The intents an answer covers: the best, and others close to it.
pub fn intents(norm: &str) -> Vec<Intent> {
    let scored = score(norm);
    let Some(&(_, best)) = scored.first() else {
        return Vec::new();
    };
    if best < 2 {
        return Vec::new();
    }
    let mut chosen: Vec<Intent> = scored
        .iter()
        .filter(|(_, s)| *s >= 3 && *s * 2 >= best)
        .map(|(i, _)| *i)
        .take(3)
        .collect();
    if chosen.is_empty() {
        chosen.push(scored[0].0);
    }
    // "Anything wrong?" next to a precise question is a figure of speech.
    if chosen.len() > 1 {
        chosen.retain(|i| *i != Intent::Overview);
    }
    // A failure rate is the error question asked precisely.
    if chosen.contains(&Intent::FailureRate) {
        chosen.retain(|i| *i != Intent::Errors);
    }
    // Which backend is behind a spike answers the error question too.
    if chosen.contains(&Intent::SpikeBackend) {
        chosen.retain(|i| *i != Intent::Errors && *i != Intent::Backends);
    }
    chosen
}

fn segments(name: &str) -> Vec<String> {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| s.len() >= 3 && !STOP.contains(s))
        .map(str::to_string)
        .collect()
}

fn same_word(a: &str, b: &str) -> bool {
    a == b || a.strip_suffix('s') == Some(b) || b.strip_suffix('s') == Some(a)
}

/// Names in the question, matched against the instance's APIs, operations
/// and backends (ids, display names, paths, URL templates, hosts).
pub fn entities(snap: &Snapshot, norm: &str) -> Entities {
    let mut e = Entities::default();
    let words: Vec<&str> = norm.split(' ').collect();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    for (i, w) in words.iter().enumerate() {
        if w.len() < 3 || STOP.contains(w) {
            continue;
        }
        let path = w.starts_with('/');
        let bare = w.trim_matches('/');
        for o in &snap.operations {
            let tmpl = o.url_template.as_deref().unwrap_or("").to_ascii_lowercase();
            if o.id.eq_ignore_ascii_case(bare) || (path && tmpl.trim_matches('/') == bare) {
                push(&mut e.operations, (o.api_id.clone(), o.id.clone()));
                used.insert(i);
            }
        }
        for a in &snap.apis {
            let hit = a.id.eq_ignore_ascii_case(bare)
                || a.path
                    .as_deref()
                    .is_some_and(|p| p.trim_matches('/').eq_ignore_ascii_case(bare))
                || (!path
                    && segments(&a.id)
                        .iter()
                        .chain(segments(a.display_name.as_deref().unwrap_or("")).iter())
                        .any(|s| same_word(s, bare)));
            if hit {
                push(&mut e.apis, a.id.clone());
                used.insert(i);
            }
        }
        for b in &snap.backends {
            let host = b.url.as_deref().map(crate::model::url_host).unwrap_or("");
            let hit = b.id.eq_ignore_ascii_case(bare)
                || host.eq_ignore_ascii_case(bare)
                || (!path && segments(&b.id).iter().any(|s| same_word(s, bare)));
            if hit {
                push(&mut e.backends, b.id.clone());
                used.insert(i);
            }
        }
        for p in &snap.products {
            let hit = p.id.eq_ignore_ascii_case(bare)
                || p.display_name
                    .as_deref()
                    .is_some_and(|d| d.eq_ignore_ascii_case(bare));
            let distinctive = p.id.eq_ignore_ascii_case(bare) && bare.contains('-');
            if (hit && has_phrase(norm, "product")) || distinctive {
                push(&mut e.products, p.id.clone());
                used.insert(i);
            }
        }
        for n in &snap.nsgs {
            if n.name.eq_ignore_ascii_case(bare) {
                push(&mut e.nsgs, n.name.clone());
                used.insert(i);
            }
            for r in n.rules.iter().filter(|r| r.name.eq_ignore_ascii_case(bare)) {
                push(&mut e.rules, (n.name.clone(), r.name.clone()));
                used.insert(i);
            }
        }
    }
    fuzzy_entities(snap, &words, &mut used, &mut e);
    // Name-like words nothing matched: before api/service/backend/operation, or a path.
    let markers = ["api", "service", "backend", "operation", "endpoint"];
    for (i, w) in words.iter().enumerate() {
        if used.contains(&i) || STOP.contains(w) && !w.starts_with('/') {
            continue;
        }
        let before_marker = words.get(i + 1).is_some_and(|n| markers.contains(n));
        let after_marker = i > 0
            && words.get(i - 1).is_some_and(|p| markers.contains(p))
            && !words.get(i + 1).is_some_and(|n| markers.contains(n));
        let looks_named = w.starts_with('/')
            || before_marker
            || (after_marker && (w.len() == 1 || w.contains('-')));
        if looks_named && w.len() > 1 || (after_marker && w.len() == 1) {
            push(&mut e.unknown, w.to_string());
        }
    }
    e.period = if has_phrase(norm, "this week")
        || has_phrase(norm, "week")
        || has_phrase(norm, "7 days")
    {
        Some("7d".into())
    } else if has_phrase(norm, "today") || has_phrase(norm, "24 hours") || has_phrase(norm, "day") {
        Some("24h".into())
    } else if has_phrase(norm, "last hour") || has_phrase(norm, "hour") {
        Some("1h".into())
    } else {
        None
    };
    e
}

/// Names written loosely: two or three words for one name (`get item`,
/// `check stock`), and one typo in a single word (`ordrs-api`), for words
/// no exact name took.
fn fuzzy_entities(snap: &Snapshot, words: &[&str], used: &mut BTreeSet<usize>, e: &mut Entities) {
    use super::lexicon::{fuzzy_names, squash};
    for len in [3usize, 2] {
        for i in 0..words.len().saturating_sub(len - 1) {
            if (i..i + len).any(|k| used.contains(&k)) {
                continue;
            }
            let joined = squash(&words[i..i + len].join(""));
            if joined.len() < 6 {
                continue;
            }
            let mut hit = false;
            for o in &snap.operations {
                if squash(&o.id) == joined
                    || o.display_name
                        .as_deref()
                        .is_some_and(|d| squash(d) == joined)
                {
                    push(&mut e.operations, (o.api_id.clone(), o.id.clone()));
                    hit = true;
                }
            }
            for a in &snap.apis {
                if squash(&a.id) == joined
                    || a.display_name
                        .as_deref()
                        .is_some_and(|d| squash(d) == joined)
                {
                    push(&mut e.apis, a.id.clone());
                    hit = true;
                }
            }
            for b in &snap.backends {
                if squash(&b.id) == joined {
                    push(&mut e.backends, b.id.clone());
                    hit = true;
                }
            }
            if hit {
                used.extend(i..i + len);
            }
        }
    }
    for (i, w) in words.iter().enumerate() {
        if used.contains(&i) || STOP.contains(w) || w.len() < 5 || w.starts_with('/') {
            continue;
        }
        let mut hit = false;
        for o in snap.operations.iter().filter(|o| fuzzy_names(w, &o.id)) {
            push(&mut e.operations, (o.api_id.clone(), o.id.clone()));
            hit = true;
        }
        // A word may be one part of a name with a typo (`ordrs` for the
        // `orders` of `orders-api`).
        let named = |id: &str| fuzzy_names(w, id) || segments(id).iter().any(|s| fuzzy_names(w, s));
        for a in snap.apis.iter().filter(|a| named(&a.id)) {
            push(&mut e.apis, a.id.clone());
            hit = true;
        }
        for b in snap.backends.iter().filter(|b| named(&b.id)) {
            push(&mut e.backends, b.id.clone());
            hit = true;
        }
        for n in snap.nsgs.iter().filter(|n| fuzzy_names(w, &n.name)) {
            push(&mut e.nsgs, n.name.clone());
            hit = true;
        }
        if hit {
            used.insert(i);
        }
    }
}

fn push<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// Answers a question from the instance.
pub fn answer(inst: &Instance, question: &str) -> Answer {
    answer_in_context(inst, question, None)
}

/// Answers a question, reusing the previous turn's entities when this one
/// names none (a follow-up like "and its policies?").
pub fn answer_in_context(inst: &Instance, question: &str, previous: Option<&Entities>) -> Answer {
    let norm = normalise(question);
    let mut ents = entities(&inst.snapshot, &norm);
    // A follow-up that names nothing keeps the subject, the incident and
    // the window under discussion.
    if ents.names_nothing()
        && ents.unknown.is_empty()
        && let Some(p) = previous
    {
        ents.apis = p.apis.clone();
        ents.operations = p.operations.clone();
        ents.backends = p.backends.clone();
        ents.products = p.products.clone();
        ents.nsgs = p.nsgs.clone();
        ents.rules = p.rules.clone();
        ents.focus = p.focus.clone();
    }
    if let Some(p) = previous {
        if ents.window.is_none() {
            ents.window = p.window;
        }
        if ents.period.is_none() {
            ents.period = p.period.clone();
        }
    }
    let mut intents = intents(&norm);
    let known_ids: Vec<String> = norm
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 16 && inst.diagnosis.findings.iter().any(|f| f.id == *w))
        .map(str::to_string)
        .collect();
    if !known_ids.is_empty() {
        intents = vec![Intent::Explain];
    }
    let mut b = Builder {
        inst,
        ents: &ents,
        text: String::new(),
        findings: Vec::new(),
        tools: Vec::new(),
        checked: BTreeSet::new(),
        unchecked: BTreeSet::new(),
        best_confidence: None,
    };
    if intents == [Intent::Explain] {
        for id in known_ids.iter().take(3) {
            let out = b.tool(Tool::Explain { id: id.clone() });
            let _ = writeln!(b.text, "{}\n", out.text);
            push(&mut b.findings, id.clone());
        }
        b.checked
            .insert("the finding's evidence, story and proposals".into());
        b.best_confidence = known_ids
            .first()
            .and_then(|id| inst.diagnosis.findings.iter().find(|f| &f.id == id))
            .map(|f| f.confidence);
    } else if intents.is_empty() && !ents.names_nothing() {
        // A name and no recognised question: that thing's facts.
        b.data_notes();
        b.facts();
    } else if intents.is_empty() {
        b.cannot_tell(question);
        // Never a dead end on an unhealthy instance: what is wrong now.
        if b.unhealthy() {
            b.data_notes();
            let _ = writeln!(
                b.text,
                "\nWhat the data does say — this instance is unhealthy:"
            );
            b.section(Intent::Overview);
        }
    } else {
        b.data_notes();
        for unknown in &ents.unknown {
            let _ = writeln!(
                b.text,
                "Nothing in the loaded data is named `{unknown}` (APIs: {}; backends: {}). Answering for the whole instance.\n",
                names(inst.snapshot.apis.iter().map(|a| a.id.as_str())),
                names(inst.snapshot.backends.iter().map(|x| x.id.as_str()))
            );
        }
        for i in &intents {
            b.section(*i);
        }
        // A question naming something that exists always gets its facts.
        if !ents.names_nothing() {
            b.facts();
        }
    }
    // What the answer was about, for the follow-ups.
    let mut out_ents = ents.clone();
    let focus = b.focus();
    if !focus.is_empty() {
        out_ents.window = out_ents.window.or_else(|| {
            let ws: Vec<crate::model::Window> = inst
                .diagnosis
                .findings
                .iter()
                .filter(|f| focus.contains(&f.id))
                .filter_map(|f| f.window)
                .collect();
            ws.into_iter().reduce(|a, w| crate::model::Window {
                start: a.start.min(w.start),
                end: a.end.max(w.end),
            })
        });
        out_ents.focus = focus;
    }
    let answered = !intents.is_empty() || !ents.names_nothing();
    let confidence = match (!answered, b.best_confidence) {
        (true, _) => "none",
        (false, Some(c)) if c >= 0.8 => "high",
        (false, Some(c)) if c >= 0.5 => "medium",
        (false, Some(_)) => "low",
        (false, None) => "medium",
    };
    Answer {
        question: question.to_string(),
        answered,
        intents,
        entities: out_ents,
        text: b.text,
        findings: b.findings,
        tools: b.tools,
        checked: b.checked.into_iter().collect(),
        unchecked: b.unchecked.into_iter().collect(),
        confidence: confidence.to_string(),
        note: None,
        refused: Vec::new(),
    }
}

/// Minutes within which a problem still seen counts as going on at the end
/// of the data (the daemon's `active` default).
const ONGOING_MINUTES: i64 = 2;

/// When a problem (several findings taken as one) began, whether it is
/// still going on at `as_of` (the end of the loaded data), and when it ended.
/// The findings' own timelines (judged by analysis, `Finding.timeline`) are
/// the answer; a finding without one falls back to its window.
pub fn timing(findings: &[&Finding], as_of: crate::model::Timestamp) -> Option<String> {
    use crate::model::{Activity, Timeline};
    if findings.iter().all(|f| f.timeline.is_some())
        && let Some(t) = Timeline::combine(findings.iter().filter_map(|f| f.timeline))
    {
        return Some(match t.state {
            Activity::Ongoing => format!(
                "began {} UTC and is still going on at the end of the data ({} UTC, {} min so far)",
                t.since.hhmm(),
                t.as_of.hhmm(),
                t.duration_minutes()
            ),
            Activity::Ended => format!(
                "began {} UTC, ended {} UTC after {} min; healthy for the {} min since",
                t.since.hhmm(),
                t.ended_at.unwrap_or(t.as_of).hhmm(),
                t.duration_minutes(),
                t.healthy_minutes().unwrap_or(0)
            ),
        });
    }
    let windows: Vec<crate::model::Window> = findings.iter().filter_map(|f| f.window).collect();
    let start = windows.iter().map(|w| w.start).min()?;
    let end = windows.iter().map(|w| w.end).max()?;
    let minutes = |a: crate::model::Timestamp, b: crate::model::Timestamp| {
        ((b.millis() - a.millis()) / 60_000).max(0)
    };
    Some(
        if end.millis() >= as_of.millis() - ONGOING_MINUTES * 60_000 {
            format!(
                "began {} UTC and is still going on at the end of the data ({} UTC, {} min so far)",
                start.hhmm(),
                as_of.hhmm(),
                minutes(start, as_of)
            )
        } else {
            format!(
                "began {} UTC, ended {} UTC after {} min; healthy for the {} min since",
                start.hhmm(),
                end.hhmm(),
                minutes(start, end),
                minutes(end, as_of)
            )
        },
    )
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "none loaded".to_string()
    } else {
        v.join(", ")
    }
}

struct Builder<'a> {
    inst: &'a Instance,
    ents: &'a Entities,
    text: String,
    findings: Vec<String>,
    tools: Vec<String>,
    checked: BTreeSet<String>,
    unchecked: BTreeSet<String>,
    best_confidence: Option<f64>,
}

const SYMPTOMS: [FindingKind; 9] = [
    FindingKind::ErrorSpike,
    FindingKind::BackendFailure,
    FindingKind::BackendUnhealthy,
    FindingKind::BackendTimeout,
    FindingKind::NetworkGap,
    FindingKind::RouteMismatch,
    FindingKind::Capacity,
    FindingKind::Quota,
    FindingKind::LatencyRegression,
];

/// Proposals for causes before proposals for symptoms.
const ROOT_CAUSE_FIRST: [FindingKind; 10] = [
    FindingKind::NetworkGap,
    FindingKind::RouteMismatch,
    FindingKind::ConfigChange,
    FindingKind::BackendTimeout,
    FindingKind::PolicyRisk,
    FindingKind::Capacity,
    FindingKind::ScalingConfig,
    FindingKind::Quota,
    FindingKind::BackendUnhealthy,
    FindingKind::BackendFailure,
];

impl Builder<'_> {
    fn tool(&mut self, t: Tool) -> ToolOutput {
        let out = t.run(self.inst);
        self.tools.push(out.tool.clone());
        out
    }

    fn snap(&self) -> &Snapshot {
        &self.inst.snapshot
    }

    /// What the data holds and lacks, once per answer.
    fn data_notes(&mut self) {
        let s = &self.inst.snapshot;
        if s.traffic.is_empty() {
            self.unchecked.insert("gateway logs (none loaded)".into());
        } else {
            self.checked
                .insert(format!("gateway logs ({} rows)", s.traffic.rows));
        }
        if let Some(d) = &s.loaded.demo {
            self.checked.insert(format!("built-in demo data ({d})"));
        }
    }

    /// Backends the named APIs and operations route to (else those of the
    /// incident under discussion).
    fn scope_backends(&self) -> Vec<String> {
        let mut out = self.ents.backends.clone();
        if self.ents.is_empty() {
            for f in self.focused() {
                if let Some(b) = &f.subject.backend {
                    push(&mut out, b.clone());
                }
            }
        }
        for r in &self.inst.diagnosis.backend_map {
            let in_scope = self
                .ents
                .apis
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&r.api))
                || self
                    .ents
                    .operations
                    .iter()
                    .any(|(a, o)| a == &r.api && o == &r.operation);
            if in_scope {
                for x in r.routes() {
                    push(&mut out, x.backend.clone());
                }
            }
        }
        out
    }

    /// The findings of the incident under discussion (a conversation's
    /// focus), with the rest of their stories.
    fn focused(&self) -> Vec<&Finding> {
        if self.ents.focus.is_empty() {
            return Vec::new();
        }
        let mut ids: Vec<&str> = self.ents.focus.iter().map(String::as_str).collect();
        for s in &self.inst.diagnosis.stories {
            if s.findings.iter().any(|f| self.ents.focus.contains(f)) {
                for f in &s.findings {
                    push(&mut ids, f.as_str());
                }
            }
        }
        self.inst
            .diagnosis
            .findings
            .iter()
            .filter(|f| ids.contains(&f.id.as_str()))
            .collect()
    }

    /// Is anything wrong on this instance (a symptom finding)?
    fn unhealthy(&self) -> bool {
        self.inst
            .diagnosis
            .findings
            .iter()
            .any(|f| SYMPTOMS.contains(&f.kind))
    }

    /// The incident this answer was about: the story of the first cited
    /// symptom, else the cited symptoms, else the focus it came with.
    fn focus(&self) -> Vec<String> {
        let cited: Vec<&Finding> = self
            .findings
            .iter()
            .filter_map(|id| self.inst.diagnosis.findings.iter().find(|f| &f.id == id))
            .filter(|f| SYMPTOMS.contains(&f.kind) || f.kind == FindingKind::ConfigChange)
            .collect();
        if let Some(first) = cited.first()
            && let Some(s) = self
                .inst
                .diagnosis
                .stories
                .iter()
                .find(|s| s.findings.contains(&first.id))
        {
            return s.findings.clone();
        }
        if !cited.is_empty() {
            return cited.iter().take(3).map(|f| f.id.clone()).collect();
        }
        self.ents.focus.clone()
    }

    /// Findings of these kinds about the question's entities (else about
    /// the incident under discussion; all when neither).
    fn relevant(&self, kinds: &[FindingKind]) -> Vec<&Finding> {
        let backends = self.scope_backends();
        let scoped = !self.ents.is_empty();
        if !scoped && !self.ents.focus.is_empty() {
            let focused: Vec<&Finding> = self
                .focused()
                .into_iter()
                .filter(|f| kinds.contains(&f.kind))
                .collect();
            if !focused.is_empty() {
                return focused;
            }
        }
        // A window under discussion (the TUI's time cursor) and no name:
        // what happened in it (configuration findings hold throughout).
        let window = self
            .ents
            .window
            .filter(|_| !scoped && self.ents.focus.is_empty());
        self.inst
            .diagnosis
            .findings
            .iter()
            .filter(|f| kinds.contains(&f.kind))
            .filter(|f| {
                if !scoped {
                    return match (window, f.window) {
                        (Some(w), Some(fw)) => fw.overlaps(&w),
                        _ => true,
                    };
                }
                let s = &f.subject;
                let api_hit = s.api.as_deref().is_some_and(|a| {
                    self.ents.apis.iter().any(|x| x.eq_ignore_ascii_case(a))
                        || self
                            .ents
                            .operations
                            .iter()
                            .any(|(x, _)| x.eq_ignore_ascii_case(a))
                });
                let backend_hit = s
                    .backend
                    .as_deref()
                    .is_some_and(|b| backends.iter().any(|x| x.eq_ignore_ascii_case(b)));
                let scope_hit = s.policy_scope.as_ref().is_some_and(|p| {
                    let p = p.to_string();
                    self.ents.apis.iter().any(|a| p.contains(a.as_str()))
                });
                api_hit || backend_hit || scope_hit
            })
            .collect()
    }

    fn cite(&mut self, f: &Finding, evidence: usize) {
        let _ = writeln!(
            self.text,
            "- [{}] {} {}: {}",
            f.id, f.severity, f.kind, f.summary
        );
        for e in f.evidence.iter().take(evidence) {
            let _ = writeln!(self.text, "    evidence: {}", e.text);
        }
        if let Some(r) = f.evidence.iter().flat_map(|e| e.records.first()).next() {
            let _ = writeln!(
                self.text,
                "    log row: {} {} {}/{} backend {} {} ms {} ({})",
                r.time,
                r.response_code,
                r.api_id,
                r.operation_id,
                r.backend_response_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.total_time_ms,
                r.last_error_reason.as_deref().unwrap_or(""),
                r.origin
            );
        }
        if let Some(l) = &f.location {
            let _ = writeln!(self.text, "    at {l}");
        }
        push(&mut self.findings, f.id.clone());
        self.best_confidence = Some(self.best_confidence.unwrap_or(0.0).max(f.confidence));
    }

    fn stories_for(&mut self, ids: &[String]) {
        let stories: Vec<_> = self
            .inst
            .diagnosis
            .stories
            .iter()
            .filter(|s| s.findings.iter().any(|f| ids.contains(f)))
            .cloned()
            .collect();
        for s in stories.iter().take(2) {
            let _ = writeln!(self.text, "Most likely: {}. {}", s.title, s.narrative);
            for sus in s.suspects.iter().take(2) {
                let _ = writeln!(
                    self.text,
                    "    suspect change: {} {} by {} ({} min before)",
                    sus.time,
                    sus.operation,
                    sus.caller.as_deref().unwrap_or("unknown"),
                    sus.lead_minutes
                );
            }
        }
    }

    fn proposals_for(&mut self, ids: &[String]) {
        // The story these findings belong to (the incident under discussion
        // first): its own fix comes first, in the story's cause-first order.
        let story: Option<Vec<String>> = self
            .inst
            .diagnosis
            .stories
            .iter()
            .find(|s| {
                !self.ents.focus.is_empty()
                    && s.findings.iter().any(|f| self.ents.focus.contains(f))
            })
            .or_else(|| {
                self.inst
                    .diagnosis
                    .stories
                    .iter()
                    .find(|s| s.findings.iter().any(|f| ids.contains(f)))
            })
            .map(|s| s.findings.clone());
        let rank = |id: &str| {
            if let Some(at) = story.as_ref().and_then(|s| s.iter().position(|f| f == id)) {
                return at;
            }
            let kind = self
                .inst
                .diagnosis
                .findings
                .iter()
                .find(|f| f.id == id)
                .map(|f| f.kind);
            100 + ROOT_CAUSE_FIRST
                .iter()
                .position(|k| Some(*k) == kind)
                .unwrap_or(ROOT_CAUSE_FIRST.len())
        };
        let mut props: Vec<_> = self
            .inst
            .diagnosis
            .proposals
            .iter()
            .filter(|p| ids.contains(&p.finding))
            .cloned()
            .collect();
        props.sort_by_key(|p| rank(&p.finding));
        props.truncate(3);
        if !props.is_empty() {
            self.tools.push("proposals".into());
            let _ = writeln!(self.text, "Proposed (not executed; needs your approval):");
            for p in props {
                let _ = writeln!(self.text, "- {} ({:?} risk): {}", p.id, p.risk, p.title);
            }
        }
    }

    fn scope_label(&self) -> String {
        let mut parts: Vec<String> = self.ents.apis.clone();
        parts.extend(self.ents.operations.iter().map(|(a, o)| format!("{a}/{o}")));
        parts.extend(self.ents.backends.iter().cloned());
        if parts.is_empty() {
            self.inst.name()
        } else {
            parts.join(", ")
        }
    }

    fn rate_lines(&mut self, period: Option<&str>) {
        let p = period.map(str::to_string);
        if self.ents.is_empty() {
            let out = self.tool(Tool::FailureRate {
                api: None,
                operation: None,
                backend: None,
                period: p,
            });
            let _ = writeln!(self.text, "{}", out.text);
            return;
        }
        let mut calls: Vec<Tool> = Vec::new();
        for (a, o) in &self.ents.operations {
            calls.push(Tool::FailureRate {
                api: Some(a.clone()),
                operation: Some(o.clone()),
                backend: None,
                period: p.clone(),
            });
        }
        for a in &self.ents.apis {
            if !self.ents.operations.iter().any(|(x, _)| x == a) {
                calls.push(Tool::FailureRate {
                    api: Some(a.clone()),
                    operation: None,
                    backend: None,
                    period: p.clone(),
                });
            }
        }
        if calls.is_empty() {
            for b in &self.ents.backends {
                calls.push(Tool::FailureRate {
                    api: None,
                    operation: None,
                    backend: Some(b.clone()),
                    period: p.clone(),
                });
            }
        }
        for c in calls {
            let out = self.tool(c);
            let _ = writeln!(self.text, "{}", out.text);
        }
    }

    fn sample_codes(&mut self) {
        let backends = self.scope_backends();
        let mut codes: std::collections::BTreeMap<u16, u32> = Default::default();
        for s in &self.inst.snapshot.traffic.series {
            let in_scope = self.ents.is_empty()
                || self
                    .ents
                    .apis
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&s.key.api_id))
                || backends
                    .iter()
                    .any(|b| b.eq_ignore_ascii_case(&s.key.backend));
            if !in_scope {
                continue;
            }
            for m in s.minutes.values() {
                for r in &m.samples {
                    if r.response_code >= 500 {
                        *codes.entry(r.response_code).or_default() += 1;
                    }
                }
            }
        }
        if !codes.is_empty() {
            let parts: Vec<String> = codes.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
            let _ = writeln!(
                self.text,
                "Sampled failing log rows by status: {}.",
                parts.join(", ")
            );
        }
    }

    fn section(&mut self, intent: Intent) {
        match intent {
            Intent::Errors | Intent::Overview => self.errors(intent == Intent::Overview),
            Intent::Timeouts => self.timeouts(),
            Intent::Changes => self.changes(),
            Intent::FailureRate => self.failure_rate(),
            Intent::SpikeBackend => self.spike_backend(),
            Intent::Backends => self.backends(),
            Intent::Policies => self.policies(),
            Intent::Nsg => self.nsg(),
            Intent::Slow => self.slow(),
            Intent::Scale => self.scale(),
            Intent::Network => self.network(),
            Intent::Fix => self.fix(),
            Intent::Route => self.route(),
            Intent::Status => self.status(),
            Intent::Explain => {}
        }
        self.text.push('\n');
    }

    fn errors(&mut self, overview: bool) {
        self.tools.push("findings".into());
        let kinds: Vec<FindingKind> = if overview {
            FindingKind::ALL.to_vec()
        } else {
            let mut k = SYMPTOMS.to_vec();
            k.push(FindingKind::ConfigChange);
            k
        };
        let fs: Vec<Finding> = self.relevant(&kinds).into_iter().cloned().collect();
        let symptoms: Vec<&Finding> = fs.iter().filter(|f| SYMPTOMS.contains(&f.kind)).collect();
        let label = self.scope_label();
        if symptoms.is_empty() && !overview {
            let _ = writeln!(
                self.text,
                "No error spike, failing backend or other failure finding for {label} in this data."
            );
        } else {
            let what = if overview { "Findings" } else { "Failures" };
            let _ = writeln!(self.text, "{what} on {label}:");
            let ids: Vec<String> = fs.iter().map(|f| f.id.clone()).collect();
            self.stories_for(&ids);
        }
        for f in fs.iter().take(if overview { 8 } else { 5 }) {
            self.cite(f, 1);
        }
        self.rate_lines(self.ents.period.clone().as_deref());
        self.sample_codes();
        let ids = self.findings.clone();
        self.proposals_for(&ids);
        self.checked.insert("findings of every analyzer".into());
        if crate::tools::recent_changes(self.snap(), 0).total == 0 {
            self.unchecked
                .insert("recent changes (no activity log loaded)".into());
        } else {
            self.checked.insert("activity log".into());
        }
        self.unchecked
            .insert("the backends' own application logs".into());
    }

    fn timeouts(&mut self) {
        let fs: Vec<Finding> = self
            .relevant(&[
                FindingKind::BackendTimeout,
                FindingKind::PolicyRisk,
                FindingKind::LatencyRegression,
            ])
            .into_iter()
            .filter(|f| f.kind != FindingKind::PolicyRisk || f.summary.contains("timeout"))
            .cloned()
            .collect();
        self.tools.push("findings".into());
        let label = self.scope_label();
        if fs.is_empty() {
            let _ = writeln!(self.text, "No backend timeout finding for {label}.");
        } else {
            let _ = writeln!(self.text, "Timeouts on {label}:");
            let ids: Vec<String> = fs.iter().map(|f| f.id.clone()).collect();
            self.stories_for(&ids);
        }
        for f in &fs {
            self.cite(f, 1);
        }
        // Gateway timeouts per backend from the logs.
        let out = self.tool(Tool::ListBackends);
        let backends = self.scope_backends();
        let mut any = false;
        if let ToolResult::Backends(b) = &out.result {
            for r in &b.rows {
                let id = r.id.as_str();
                let traffic = &r.traffic.0;
                let (t, n) = (traffic.timeouts, traffic.requests);
                let wanted =
                    backends.is_empty() || backends.iter().any(|b| b.eq_ignore_ascii_case(id));
                if wanted && (t > 0 || !backends.is_empty()) {
                    any = true;
                    let _ = writeln!(
                        self.text,
                        "- backend {id}: {t} gateway timeouts in {n} requests, backend p95 {} ms",
                        // As the tool's JSON writes it (`null` when unknown).
                        serde_json::json!(traffic.backend_time.p95)
                    );
                }
            }
        }
        if !any {
            let _ = writeln!(
                self.text,
                "The gateway logs show no timeouts to any backend."
            );
        }
        // The forward-request timeouts in force where timeouts happen.
        let mut ops: Vec<(String, String)> = self.ents.operations.clone();
        for f in &fs {
            if let (Some(a), Some(o)) = (&f.subject.api, &f.subject.operation) {
                push(&mut ops, (a.clone(), o.clone()));
            }
        }
        for (a, o) in ops.iter().take(3) {
            let out = self.tool(Tool::Policies {
                api: Some(a.clone()),
                operation: Some(o.clone()),
            });
            if let ToolResult::Policies(p) = &out.result
                && let Some(e) = p.effective.first()
                && let (Some(secs), Some(scope)) =
                    (e.forward_timeout_secs, &e.forward_timeout_scope)
            {
                let _ = writeln!(
                    self.text,
                    "- forward-request timeout for {a}/{o}: {secs} s, set at {scope}"
                );
            }
        }
        let ids = self.findings.clone();
        self.proposals_for(&ids);
        self.checked.insert("gateway timeouts per backend".into());
        self.checked
            .insert("effective forward-request timeouts".into());
        self.unchecked
            .insert("the backends' own response times beyond the gateway logs".into());
    }

    fn changes(&mut self) {
        // The incident under discussion: what changed in the two hours
        // before it began, most recent first, with the timeouts they set.
        if let Some(w) = self.ents.window {
            let from = w.start.plus_minutes(-120);
            let before: Vec<crate::tools::result::ChangeRow> =
                crate::tools::recent_changes(self.snap(), usize::MAX)
                    .changes
                    .into_iter()
                    .filter(|c| c.time >= from && c.time <= w.start.plus_minutes(1))
                    .collect();
            let _ = writeln!(
                self.text,
                "Changes in the two hours before {} UTC (when the incident under discussion began):",
                w.start.hhmm()
            );
            if before.is_empty() {
                let _ = writeln!(self.text, "- none in the activity log");
            }
            for c in before.iter().take(6) {
                let target = c
                    .policy_scope
                    .as_ref()
                    .map_or_else(|| c.deployed.clone(), |s| s.to_string());
                let detail = c
                    .timeout_detail
                    .as_ref()
                    .map(|t| format!("; {t}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    self.text,
                    "- {} UTC ({} min before): {} on {target} by {}{detail}",
                    c.time.hhmm(),
                    (w.start.millis() - c.time.millis()).max(0) / 60_000,
                    c.operation,
                    c.caller.as_deref().unwrap_or("unknown")
                );
            }
        }
        let out = self.tool(Tool::RecentChanges { limit: Some(8) });
        let _ = writeln!(self.text, "Recent changes: {}", out.text);
        // What the policy writes among them did to timeouts: the value
        // that explains requests cut off after a few seconds.
        let all = crate::tools::recent_changes(self.snap(), usize::MAX);
        let timeouts: Vec<String> = all
            .changes
            .iter()
            .take(8)
            .filter_map(|c| {
                let d = c.timeout_detail.as_ref()?;
                Some(format!(
                    "- {} UTC {}: {d}",
                    c.time.to_rfc3339(),
                    c.policy_scope
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ))
            })
            .collect();
        if !timeouts.is_empty() {
            let _ = writeln!(
                self.text,
                "Timeouts those changes set:\n{}",
                timeouts.join("\n")
            );
        }
        let fs: Vec<Finding> = self
            .inst
            .diagnosis
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::ConfigChange)
            .cloned()
            .collect();
        if !fs.is_empty() {
            let _ = writeln!(self.text, "Changes tied to a symptom that followed:");
            for f in &fs {
                self.cite(f, 1);
            }
        } else if all.total > 0 {
            let _ = writeln!(
                self.text,
                "No change is followed by a symptom in this data."
            );
        }
        if all.total == 0 {
            self.unchecked
                .insert("recent changes (no activity log loaded)".into());
        } else {
            self.checked
                .insert(format!("activity log ({} changes)", all.total));
        }
    }

    fn failure_rate(&mut self) {
        let period = self.ents.period.clone();
        self.rate_lines(period.as_deref());
        let fs: Vec<Finding> = self.relevant(&SYMPTOMS).into_iter().cloned().collect();
        for f in fs.iter().take(3) {
            self.cite(f, 0);
        }
        self.checked
            .insert("request counts from the gateway logs".into());
    }

    fn spike_backend(&mut self) {
        let fs: Vec<Finding> = self
            .relevant(&[
                FindingKind::BackendFailure,
                FindingKind::BackendUnhealthy,
                FindingKind::BackendTimeout,
                FindingKind::NetworkGap,
                FindingKind::RouteMismatch,
                FindingKind::ErrorSpike,
            ])
            .into_iter()
            .cloned()
            .collect();
        self.tools.push("findings".into());
        let blamed: Vec<String> = fs
            .iter()
            .filter(|f| f.kind != FindingKind::ErrorSpike)
            .filter_map(|f| f.subject.backend.clone())
            .fold(Vec::new(), |mut v, b| {
                push(&mut v, b);
                v
            });
        match blamed.first() {
            Some(b) => {
                let _ = writeln!(self.text, "Backend responsible: {b}.");
                let ids: Vec<String> = fs.iter().map(|f| f.id.clone()).collect();
                self.stories_for(&ids);
            }
            None if fs.iter().any(|f| f.kind == FindingKind::RouteMismatch) => {
                let _ = writeln!(
                    self.text,
                    "The errors come from a route change: requests go to a different backend than configured."
                );
            }
            None => {
                let _ = writeln!(
                    self.text,
                    "No backend is blamed by any finding for {}.",
                    self.scope_label()
                );
            }
        }
        for f in fs.iter().take(5) {
            self.cite(f, 1);
        }
        // Backends ranked by 5xx from the logs.
        let out = self.tool(Tool::ListBackends);
        let mut rows: Vec<(String, u64, u64)> = match &out.result {
            ToolResult::Backends(b) => b
                .rows
                .iter()
                .map(|r| (r.id.clone(), r.traffic.0.status_5xx, r.traffic.0.requests))
                .filter(|r| r.1 > 0)
                .collect(),
            _ => Vec::new(),
        };
        rows.sort_by_key(|r| std::cmp::Reverse(r.1));
        if !rows.is_empty() {
            let parts: Vec<String> = rows
                .iter()
                .take(4)
                .map(|(b, e, n)| format!("{b} {e} of {n}"))
                .collect();
            let _ = writeln!(
                self.text,
                "5xx by backend in the logs: {}.",
                parts.join(", ")
            );
        }
        let ids = self.findings.clone();
        self.proposals_for(&ids);
        self.checked
            .insert("backend map (configured vs observed)".into());
        self.checked.insert("5xx per backend".into());
    }

    fn backends(&mut self) {
        let want = self.ents.backends.first().cloned();
        let out = self.tool(Tool::BackendHealth { backend: want });
        let rows = match &out.result {
            ToolResult::Backends(b) => b.rows.clone(),
            _ => Vec::new(),
        };
        let bad: Vec<String> = rows
            .iter()
            .filter(|r| matches!(r.health, Health::Unhealthy | Health::Degraded))
            .map(|r| format!("{} ({})", r.id, r.health))
            .collect();
        let _ = writeln!(self.text, "{} backends.", rows.len());
        if bad.is_empty() {
            let _ = writeln!(self.text, "None is unhealthy in this data.");
        } else {
            let _ = writeln!(self.text, "Unhealthy: {}.", bad.join(", "));
        }
        let _ = writeln!(self.text, "{}", out.text);
        for f in rows.iter().flat_map(|r| &r.findings) {
            push(&mut self.findings, f.id.clone());
        }
        self.checked.insert("backend configuration".into());
        self.checked.insert("traffic per backend".into());
        self.unchecked
            .insert("live health probes (apimedic reads exported data only)".into());
    }

    fn policies(&mut self) {
        let mut apis: Vec<String> = if self.ents.apis.is_empty() {
            self.ents
                .operations
                .iter()
                .map(|(a, _)| a.clone())
                .collect()
        } else {
            self.ents.apis.clone()
        };
        // No API named: the APIs of the findings cited so far (the incident's).
        if apis.is_empty() {
            for id in &self.findings {
                let f = self.inst.diagnosis.findings.iter().find(|f| &f.id == id);
                if let Some(a) = f.and_then(|f| f.subject.api.clone()) {
                    push(&mut apis, a);
                }
            }
        }
        if apis.is_empty() {
            let out = self.tool(Tool::Policies {
                api: None,
                operation: None,
            });
            let _ = writeln!(self.text, "{}", out.text);
        }
        for a in apis.iter().take(2) {
            let op = self
                .ents
                .operations
                .iter()
                .find(|(x, _)| x == a)
                .map(|(_, o)| o.clone());
            let out = self.tool(Tool::Policies {
                api: Some(a.clone()),
                operation: op,
            });
            let _ = writeln!(self.text, "Policies for {a}: {}", out.text);
        }
        let fs: Vec<Finding> = self
            .relevant(&[
                FindingKind::PolicyRisk,
                FindingKind::PolicyInheritance,
                FindingKind::MalformedPolicy,
            ])
            .into_iter()
            .cloned()
            .collect();
        if !fs.is_empty() {
            let _ = writeln!(self.text, "Policy findings:");
            for f in fs.iter().take(5) {
                self.cite(f, 0);
            }
        }
        if self.snap().policies.is_empty() {
            self.unchecked.insert("policies (none loaded)".into());
        } else {
            self.checked.insert(format!(
                "{} policy documents and the effective policy",
                self.snap().policies.len()
            ));
        }
    }

    fn nsg(&mut self) {
        let out = self.tool(Tool::NsgRules { nsg: None });
        let _ = writeln!(self.text, "{}", out.text);
        self.network_findings();
        if self.snap().nsgs.is_empty() {
            self.unchecked.insert("NSG rules (none loaded)".into());
        } else {
            self.checked
                .insert("NSG rules against APIM's required flows and backend flows".into());
        }
        self.unchecked
            .insert("route tables, firewalls and DNS".into());
    }

    fn network_findings(&mut self) {
        let fs: Vec<Finding> = self
            .inst
            .diagnosis
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::NetworkGap)
            .cloned()
            .collect();
        self.tools.push("findings".into());
        if fs.is_empty() && self.inst.snapshot.nsgs.is_empty() {
            let _ = writeln!(
                self.text,
                "No NSG is loaded, so the network path was not checked."
            );
        } else if fs.is_empty() {
            let _ = writeln!(
                self.text,
                "No network gap found: the rules allow the flows APIM needs and the gateway → backend flows checked."
            );
        } else {
            let _ = writeln!(self.text, "Network findings:");
            for f in &fs {
                self.cite(f, 1);
            }
            let ids: Vec<String> = fs.iter().map(|f| f.id.clone()).collect();
            self.proposals_for(&ids);
        }
    }

    fn network(&mut self) {
        let s = self.snap().service.clone();
        match &s {
            Some(s) => {
                let _ = writeln!(
                    self.text,
                    "{}: VNet mode {}, subnet {}, private IPs [{}], {} NSG(s) loaded.",
                    s.name,
                    s.vnet_type.as_deref().unwrap_or("none"),
                    s.subnet_id
                        .as_deref()
                        .map(|x| x.rsplit('/').next().unwrap_or(x))
                        .unwrap_or("none"),
                    s.private_ips.join(", "),
                    self.snap().nsgs.len()
                );
            }
            None => {
                let _ = writeln!(
                    self.text,
                    "No service resource loaded: the VNet mode is unknown."
                );
                self.unchecked
                    .insert("VNet mode (service resource missing)".into());
            }
        }
        self.network_findings();
        if self.snap().nsgs.is_empty() {
            self.unchecked.insert("NSG rules (none loaded)".into());
        } else {
            self.checked.insert(format!(
                "{} NSG(s) against APIM's required flows",
                self.snap().nsgs.len()
            ));
        }
        self.unchecked
            .insert("route tables, firewalls and DNS".into());
    }

    fn slow(&mut self) {
        let fs: Vec<Finding> = self
            .relevant(&[
                FindingKind::LatencyRegression,
                FindingKind::Capacity,
                FindingKind::BackendTimeout,
                FindingKind::ScalingConfig,
            ])
            .into_iter()
            .cloned()
            .collect();
        self.tools.push("findings".into());
        if fs.is_empty() {
            let _ = writeln!(
                self.text,
                "No latency regression, saturation or timeout finding for {}.",
                self.scope_label()
            );
        } else {
            let ids: Vec<String> = fs.iter().map(|f| f.id.clone()).collect();
            self.stories_for(&ids);
            for f in fs.iter().take(4) {
                self.cite(f, 1);
            }
        }
        let api = self.ents.apis.first().cloned();
        let out = self.tool(Tool::ListOperations { api });
        let mut ops: Vec<(String, u64)> = match &out.result {
            ToolResult::Operations(rows) => rows
                .iter()
                .filter_map(|r| Some((format!("{}/{}", r.api, r.id), u64::from(r.p95_ms?))))
                .collect(),
            _ => Vec::new(),
        };
        ops.sort_by_key(|o| std::cmp::Reverse(o.1));
        if !ops.is_empty() {
            let parts: Vec<String> = ops
                .iter()
                .take(3)
                .map(|(o, p)| format!("{o} {p} ms"))
                .collect();
            let _ = writeln!(
                self.text,
                "Slowest operations by p95: {}.",
                parts.join(", ")
            );
        }
        let ids = self.findings.clone();
        self.proposals_for(&ids);
        self.checked.insert("latency per operation".into());
        self.checked.insert("gateway capacity metrics".into());
        self.unchecked
            .insert("client-side and network latency outside the gateway".into());
    }

    fn scale(&mut self) {
        let out = self.tool(Tool::Capacity);
        let _ = writeln!(self.text, "{}", out.text);
        let fs: Vec<Finding> = self
            .inst
            .diagnosis
            .findings
            .iter()
            .filter(|f| {
                matches!(
                    f.kind,
                    FindingKind::Capacity | FindingKind::ScalingConfig | FindingKind::Quota
                )
            })
            .cloned()
            .collect();
        for f in &fs {
            push(&mut self.findings, f.id.clone());
            self.best_confidence = Some(self.best_confidence.unwrap_or(0.0).max(f.confidence));
        }
        if fs.is_empty() {
            let _ = writeln!(
                self.text,
                "No capacity, scaling or quota finding: no need to scale on this data."
            );
        }
        let ids: Vec<String> = fs.iter().map(|f| f.id.clone()).collect();
        self.proposals_for(&ids);
        if self.snap().service.is_none() {
            self.unchecked
                .insert("tier and units (service resource missing)".into());
        }
        if self.snap().metrics.iter().any(|m| m.name == "Capacity") {
            self.checked.insert("Capacity metric".into());
        } else {
            self.unchecked.insert("Capacity metric (not loaded)".into());
        }
        if self.snap().autoscale.is_empty() {
            self.unchecked
                .insert("autoscale settings (none loaded)".into());
            self.checked.insert("tier limits".into());
        } else {
            self.checked
                .insert("autoscale settings and tier limits".into());
        }
    }

    fn fix(&mut self) {
        // The findings the question is about; hygiene (inheritance) only when nothing else.
        let all: Vec<Finding> = self
            .relevant(&FindingKind::ALL)
            .into_iter()
            .cloned()
            .collect();
        let serious: Vec<Finding> = all
            .iter()
            .filter(|f| f.kind != FindingKind::PolicyInheritance)
            .cloned()
            .collect();
        let fs = if serious.is_empty() { all } else { serious };
        let ids: Vec<String> = fs.iter().map(|f| f.id.clone()).collect();
        self.stories_for(&ids);
        let before = self.text.len();
        self.proposals_for(&ids);
        if self.text.len() == before {
            let _ = writeln!(
                self.text,
                "No proposal: no finding for {} calls for a change.",
                self.scope_label()
            );
        } else {
            for f in fs.iter().take(3) {
                self.cite(f, 0);
            }
        }
        self.checked
            .insert("playbook proposals for the findings".into());
        self.unchecked.insert(
            "whether a proposal is safe right now (a person approves; apimedic never executes)"
                .into(),
        );
    }

    /// Operations in scope: those named, else those of the APIs named.
    fn scope_operations(&self) -> Vec<(String, String)> {
        let mut ops = self.ents.operations.clone();
        for a in &self.ents.apis {
            if ops.iter().any(|(x, _)| x == a) {
                continue;
            }
            for r in self
                .inst
                .diagnosis
                .backend_map
                .iter()
                .filter(|r| r.api.eq_ignore_ascii_case(a))
            {
                push(&mut ops, (r.api.clone(), r.operation.clone()));
            }
        }
        ops
    }

    /// One operation's route: configured and observed backends with their
    /// URLs, health and traffic.
    fn route_line(&mut self, api: &str, op: &str) -> bool {
        let Some(r) = self
            .inst
            .diagnosis
            .backend_map
            .iter()
            .find(|r| r.api.eq_ignore_ascii_case(api) && r.operation.eq_ignore_ascii_case(op))
            .cloned()
        else {
            return false;
        };
        let show = |routes: &[crate::model::Route]| -> String {
            if routes.is_empty() {
                return "none".into();
            }
            routes
                .iter()
                .map(|x| match &x.url {
                    Some(u) => format!(
                        "{} ({}){}",
                        x.backend,
                        crate::model::url_host(u),
                        if x.conditional { ", conditional" } else { "" }
                    ),
                    None => x.backend.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            self.text,
            "- {api}/{op} → configured: {}; seen in the logs: {}; health {:?}, {} requests, {:.1}% failed{}{}",
            show(&r.configured),
            show(&r.observed),
            r.health,
            r.requests,
            r.error_rate * 100.0,
            r.p95_ms
                .map(|p| format!(", p95 {p} ms"))
                .unwrap_or_default(),
            if r.mismatch {
                " — traffic does not go where the configuration says"
            } else {
                ""
            }
        );
        true
    }

    /// Where traffic goes: the route of the operations in scope.
    fn route(&mut self) {
        self.tools.push("backend_map".into());
        let mut ops = self.scope_operations();
        if ops.is_empty() {
            // No name: the incident's operations, else the mismatches.
            for f in self.focused() {
                if let (Some(a), Some(o)) = (&f.subject.api, &f.subject.operation) {
                    push(&mut ops, (a.clone(), o.clone()));
                }
            }
        }
        if ops.is_empty() {
            ops = self
                .inst
                .diagnosis
                .backend_map
                .iter()
                .filter(|r| r.mismatch)
                .map(|r| (r.api.clone(), r.operation.clone()))
                .collect();
            if ops.is_empty() {
                let _ = writeln!(
                    self.text,
                    "Every operation's traffic goes to the backend its configuration names ({} operations in the backend map).",
                    self.inst.diagnosis.backend_map.len()
                );
            } else {
                let _ = writeln!(
                    self.text,
                    "Operations whose traffic goes elsewhere than configured:"
                );
            }
        } else {
            let _ = writeln!(self.text, "Routes:");
        }
        for (a, o) in ops.iter().take(8) {
            if !self.route_line(a, o) {
                let _ = writeln!(
                    self.text,
                    "- {a}/{o}: not in the backend map (no configuration or traffic for it)"
                );
            }
        }
        let fs: Vec<Finding> = self
            .relevant(&[FindingKind::RouteMismatch])
            .into_iter()
            .cloned()
            .collect();
        for f in fs.iter().take(3) {
            self.cite(f, 1);
        }
        self.checked
            .insert("backend map (configured routes, policies and the logs' BackendUrl)".into());
    }

    /// Since when, still going on, when it ended: for the incident under
    /// discussion, else the findings about what was named, else all.
    fn status(&mut self) {
        self.tools.push("findings".into());
        let fs: Vec<Finding> = self.relevant(&SYMPTOMS).into_iter().cloned().collect();
        let as_of = self.snap().loaded.time_range.map(|w| w.end);
        let Some(as_of) = as_of else {
            let _ = writeln!(
                self.text,
                "No time-stamped data is loaded, so there is nothing to say about since when or until when."
            );
            self.unchecked
                .insert("timing (no time-stamped data)".into());
            return;
        };
        if fs.is_empty() {
            let _ = writeln!(
                self.text,
                "Nothing is going on for {}: no symptom finding in data up to {} UTC.",
                self.scope_label(),
                as_of.to_rfc3339()
            );
            self.checked.insert("findings of every analyzer".into());
            return;
        }
        // One line per story (cause first), else per finding.
        let mut told: Vec<String> = Vec::new();
        let stories: Vec<crate::model::Story> = self
            .inst
            .diagnosis
            .stories
            .iter()
            .filter(|s| fs.iter().any(|f| s.findings.contains(&f.id)))
            .cloned()
            .collect();
        for s in stories.iter().take(3) {
            let members: Vec<&Finding> = fs.iter().filter(|f| s.findings.contains(&f.id)).collect();
            if let Some(line) = timing(&members, as_of) {
                let _ = writeln!(self.text, "{}: {line}.", s.title);
                told.extend(members.iter().map(|f| f.id.clone()));
            }
        }
        for f in fs.iter().filter(|f| !told.contains(&f.id)).take(4) {
            if let Some(line) = timing(&[f], as_of) {
                let _ = writeln!(self.text, "{} on {}: {line}.", f.kind, f.subject);
            }
        }
        for f in fs.iter().take(3) {
            self.cite(f, 0);
        }
        let _ = writeln!(
            self.text,
            "(Judged as of the end of the loaded data, {} UTC: a problem seen in its last minutes is still going on.)",
            as_of.to_rfc3339()
        );
        self.checked
            .insert("finding windows against the end of the data".into());
        self.unchecked.insert(
            "anything after the loaded data ends (load newer data, or run the daemon)".into(),
        );
    }

    /// The facts of everything the question names: route and backend,
    /// health, findings, policies in force, recent changes.
    fn facts(&mut self) {
        let ops = self.ents.operations.clone();
        let apis: Vec<String> = self
            .ents
            .apis
            .iter()
            .filter(|a| !ops.iter().any(|(x, _)| x == *a))
            .cloned()
            .collect();
        let mut said = false;
        for (a, o) in ops.iter().take(2) {
            let _ = writeln!(self.text, "About operation {a}/{o}:");
            self.route_line(a, o);
            let e = crate::tools::effective_policy(self.snap(), a, o);
            if let Some((secs, scope)) = &e.forward_timeout {
                let _ = writeln!(
                    self.text,
                    "- forward-request timeout in force: {secs} s, set at {scope}"
                );
            }
            for p in e
                .find("rate-limit-by-key")
                .chain(e.find("rate-limit"))
                .take(2)
            {
                let _ = writeln!(
                    self.text,
                    "- {} at {}: {} calls per {} s",
                    p.name,
                    p.scope,
                    p.attr("calls").unwrap_or("?"),
                    p.attr("renewal-period").unwrap_or("?")
                );
            }
            self.entity_findings(Some(a), Some(o), None);
            self.entity_changes(Some(a), None);
            said = true;
        }
        for a in apis.iter().take(2) {
            let _ = writeln!(self.text, "About API {a}:");
            let ops: Vec<(String, String)> = self
                .inst
                .diagnosis
                .backend_map
                .iter()
                .filter(|r| r.api.eq_ignore_ascii_case(a))
                .map(|r| (r.api.clone(), r.operation.clone()))
                .collect();
            for (x, o) in ops.iter().take(6) {
                self.route_line(x, o);
            }
            if ops.len() > 6 {
                let _ = writeln!(self.text, "- and {} more operations", ops.len() - 6);
            }
            self.entity_findings(Some(a), None, None);
            self.entity_changes(Some(a), None);
            said = true;
        }
        for bk in self.ents.backends.clone().iter().take(2) {
            let _ = writeln!(self.text, "About backend {bk}:");
            if let Some(b) = self
                .snap()
                .backends
                .iter()
                .find(|b| b.id.eq_ignore_ascii_case(bk))
                .cloned()
            {
                let _ = writeln!(
                    self.text,
                    "- {:?} backend, URL {}{}",
                    b.kind,
                    b.url.as_deref().unwrap_or("none"),
                    b.resource_id
                        .as_deref()
                        .and_then(crate::model::app_of_resource)
                        .map(|app| format!(", app {}", app.label()))
                        .unwrap_or_default()
                );
            }
            let callers: Vec<String> = self
                .inst
                .diagnosis
                .backend_map
                .iter()
                .filter(|r| r.calls(bk))
                .map(|r| format!("{}/{}", r.api, r.operation))
                .collect();
            if !callers.is_empty() {
                let _ = writeln!(self.text, "- serves {}", callers.join(", "));
            }
            self.entity_findings(None, None, Some(bk));
            self.entity_changes(None, Some(bk));
            said = true;
        }
        for p in self.ents.products.clone().iter().take(2) {
            let product = self.snap().products.iter().find(|x| &x.id == p).cloned();
            let _ = writeln!(
                self.text,
                "About product {p}: APIs {}; subscription required: {}",
                product
                    .as_ref()
                    .map(|x| names(x.apis.iter().map(String::as_str)))
                    .unwrap_or_else(|| "unknown".into()),
                product
                    .as_ref()
                    .and_then(|x| x.subscription_required)
                    .map(|b| if b { "yes" } else { "no" })
                    .unwrap_or("unknown")
            );
            let scope = crate::model::PolicyScope::Product(p.clone());
            let fs: Vec<Finding> = self
                .inst
                .diagnosis
                .findings
                .iter()
                .filter(|f| {
                    f.subject.product.as_deref() == Some(p.as_str())
                        || f.subject.policy_scope.as_ref() == Some(&scope)
                })
                .cloned()
                .collect();
            for f in fs.iter().take(4) {
                self.cite(f, 1);
            }
            said = true;
        }
        let rules = self.ents.rules.clone();
        for n in self
            .ents
            .nsgs
            .clone()
            .iter()
            .chain(rules.iter().map(|(n, _)| n))
            .take(2)
        {
            let out = self.tool(Tool::NsgRules {
                nsg: Some(n.clone()),
            });
            let _ = writeln!(self.text, "About NSG {n}: {}", out.text);
            said = true;
        }
        for (n, r) in rules.iter().take(2) {
            let fs: Vec<Finding> = self
                .inst
                .diagnosis
                .findings
                .iter()
                .filter(|f| {
                    f.subject.nsg.as_deref() == Some(n.as_str())
                        && f.subject.rule.as_deref() == Some(r.as_str())
                })
                .cloned()
                .collect();
            for f in fs.iter().take(3) {
                self.cite(f, 1);
            }
        }
        if said {
            self.checked
                .insert("the named things' configuration, routes, findings and changes".into());
        }
    }

    /// Findings about one API, operation or backend, with their timing.
    fn entity_findings(&mut self, api: Option<&str>, op: Option<&str>, backend: Option<&str>) {
        let as_of = self.snap().loaded.time_range.map(|w| w.end);
        let backends: Vec<String> = match (api, op) {
            (Some(a), o) => self
                .inst
                .diagnosis
                .backend_map
                .iter()
                .filter(|r| {
                    r.api.eq_ignore_ascii_case(a)
                        && o.is_none_or(|o| r.operation.eq_ignore_ascii_case(o))
                })
                .flat_map(|r| r.routes().map(|x| x.backend.clone()))
                .collect(),
            _ => Vec::new(),
        };
        let fs: Vec<Finding> = self
            .inst
            .diagnosis
            .findings
            .iter()
            .filter(|f| {
                let s = &f.subject;
                let api_hit = api
                    .is_some_and(|a| s.api.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(a)))
                    && op.is_none_or(|o| {
                        s.operation
                            .as_deref()
                            .is_none_or(|x| x.eq_ignore_ascii_case(o))
                    });
                let scope_hit = api.is_some_and(|a| {
                    s.policy_scope.as_ref().is_some_and(|p| {
                        let p = p.to_string();
                        p == format!("api:{a}")
                            || op.is_some_and(|o| p == format!("operation:{a}/{o}"))
                    })
                });
                let b = s.backend.as_deref();
                let backend_hit = b.is_some_and(|x| {
                    backend.is_some_and(|w| w.eq_ignore_ascii_case(x))
                        || backends.iter().any(|w| w.eq_ignore_ascii_case(x))
                });
                api_hit || scope_hit || backend_hit
            })
            .cloned()
            .collect();
        if fs.is_empty() {
            let _ = writeln!(self.text, "- no finding about it in this data");
            return;
        }
        for f in fs.iter().take(4) {
            let when = as_of
                .and_then(|t| timing(&[f], t))
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            let _ = writeln!(
                self.text,
                "- [{}] {} {}{when}: {}",
                f.id, f.severity, f.kind, f.summary
            );
            push(&mut self.findings, f.id.clone());
            self.best_confidence = Some(self.best_confidence.unwrap_or(0.0).max(f.confidence));
        }
    }

    /// Recent changes touching an API (its policies and definition) or a
    /// backend (its entity, or the app behind it), newest first.
    fn entity_changes(&mut self, api: Option<&str>, backend: Option<&str>) {
        let snap = self.inst.snapshot.clone();
        let entity =
            backend.and_then(|b| snap.backends.iter().find(|x| x.id.eq_ignore_ascii_case(b)));
        let entity_app = entity
            .and_then(|e| e.resource_id.as_deref())
            .and_then(crate::model::app_of_resource);
        let all = crate::tools::recent_changes(&snap, usize::MAX);
        let hits: Vec<&crate::tools::result::ChangeRow> = all
            .changes
            .iter()
            .filter(|c| {
                let rid = c.resource_id.as_deref().unwrap_or("").to_ascii_lowercase();
                let api_hit = api.is_some_and(|a| {
                    let a = a.to_ascii_lowercase();
                    rid.ends_with(&format!("/apis/{a}"))
                        || rid.contains(&format!("/apis/{a}/"))
                        || c.policy_scope.as_ref().is_some_and(|s| {
                            let s = s.to_string().to_ascii_lowercase();
                            s == format!("api:{a}") || s.starts_with(&format!("operation:{a}/"))
                        })
                });
                let backend_hit = backend.is_some_and(|b| {
                    let b = b.to_ascii_lowercase();
                    rid.contains(&format!("/backends/{b}"))
                        || c.resource_id
                            .as_deref()
                            .and_then(crate::model::app_of_resource)
                            .is_some_and(|app| {
                                entity_app
                                    .as_ref()
                                    .map_or(app.host_label().eq_ignore_ascii_case(&b), |e| {
                                        e.same_app(&app)
                                    })
                            })
                });
                api_hit || backend_hit
            })
            .collect();
        for c in hits.iter().take(3) {
            let detail = c
                .timeout_detail
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            let _ = writeln!(
                self.text,
                "- changed {} UTC: {} by {}{detail}",
                c.time.to_rfc3339(),
                c.operation,
                c.caller.as_deref().unwrap_or("unknown")
            );
        }
        if !hits.is_empty() {
            self.checked.insert("activity log".into());
        }
    }

    fn cannot_tell(&mut self, question: &str) {
        let _ = writeln!(
            self.text,
            "I can't tell from this data: \"{}\" is not something the loaded gateway logs, metrics, configuration or activity log answer.",
            question.trim()
        );
        let _ = writeln!(
            self.text,
            "I can answer about errors and failure rates, timeouts, recent changes, backends and their health, policies, NSG rules and the VNet, latency and capacity. Data that would help with other questions: the backends' own logs and metrics, certificates, DNS and route tables exported next to the gateway data."
        );
        self.unchecked
            .insert("the question's subject (no data for it)".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Api, Backend, Operation};

    fn snap() -> Snapshot {
        Snapshot {
            apis: vec![
                Api {
                    id: "orders-api".into(),
                    display_name: Some("Orders API".into()),
                    path: Some("orders".into()),
                    ..Api::default()
                },
                Api {
                    id: "inventory-api".into(),
                    path: Some("inventory".into()),
                    ..Api::default()
                },
            ],
            operations: vec![Operation {
                api_id: "orders-api".into(),
                id: "get-order".into(),
                url_template: Some("/orders/{id}".into()),
                ..Operation::default()
            }],
            backends: vec![Backend {
                id: "inventory-app".into(),
                url: Some("https://inv.internal".into()),
                ..Backend::default()
            }],
            ..Snapshot::default()
        }
    }

    /// Timing comes from the timeline analysis judged, not from the window:
    /// a spike whose window reaches the end of the data but which analysis
    /// judged ended (healthy minutes after it) is told as ended.
    #[test]
    fn timing_reads_the_findings_timeline() {
        use crate::model::{Severity, Subject, Timeline, Timestamp, Window, parse_timestamp};
        let t = |s: &str| parse_timestamp(s).unwrap();
        let mut f = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::default(),
            "5xx spike",
        );
        f.window = Some(Window {
            start: t("2026-01-01T10:00:00Z"),
            end: t("2026-01-01T10:59:00Z"),
        });
        let as_of: Timestamp = t("2026-01-01T11:00:00Z");
        f.timeline = Some(Timeline::ended(
            t("2026-01-01T10:02:00Z"),
            t("2026-01-01T10:40:00Z"),
            as_of,
        ));
        let line = timing(&[&f], as_of).unwrap();
        assert!(
            line.contains("began 10:02 UTC, ended 10:40 UTC after 38 min"),
            "{line}"
        );
        assert!(line.contains("healthy for the 20 min since"), "{line}");
        f.timeline = Some(Timeline::ongoing(t("2026-01-01T10:02:00Z"), as_of));
        let line = timing(&[&f], as_of).unwrap();
        assert!(
            line.contains("still going on") && line.contains("58 min so far"),
            "{line}"
        );
        // Without a timeline, the window decides (its end is in the last minutes).
        f.timeline = None;
        assert!(timing(&[&f], as_of).unwrap().contains("still going on"));
    }

    #[test]
    fn paraphrases_land_on_the_same_intent() {
        for q in [
            "Why is it slow?",
            "latency is terrible",
            "what's making responses so sluggish",
        ] {
            assert_eq!(intents(&normalise(q)).first(), Some(&Intent::Slow), "{q}");
        }
        for q in [
            "My API Management is giving me 503 errors",
            "requests are failing",
            "we have an outage",
        ] {
            assert_eq!(intents(&normalise(q)).first(), Some(&Intent::Errors), "{q}");
        }
        let both = intents(&normalise(
            "We updated our policies yesterday, and now the backend is timing out",
        ));
        assert!(
            both.contains(&Intent::Timeouts) && both.contains(&Intent::Changes),
            "{both:?}"
        );
        assert!(intents(&normalise("What's the weather in Paris?")).is_empty());
    }

    #[test]
    fn entities_match_names_aliases_and_paths() {
        let s = snap();
        let e = entities(
            &s,
            &normalise("failure rate on our orders operation this week"),
        );
        assert_eq!(e.apis, vec!["orders-api".to_string()]);
        assert_eq!(e.period.as_deref(), Some("7d"));
        let e = entities(
            &s,
            &normalise("why are requests to our billing API failing?"),
        );
        assert!(e.apis.is_empty());
        assert_eq!(e.unknown, vec!["billing".to_string()]);
        let e = entities(&s, &normalise("errors on my /checkout API"));
        assert_eq!(e.unknown, vec!["/checkout".to_string()]);
        let e = entities(&s, &normalise("timeouts from APIM to service inventory"));
        assert!(e.backends.contains(&"inventory-app".to_string()), "{e:?}");
        let e = entities(&s, &normalise("is get-order slow"));
        assert_eq!(
            e.operations,
            vec![("orders-api".to_string(), "get-order".to_string())]
        );
    }

    #[test]
    fn unanswerable_questions_say_so() {
        let inst = Instance {
            snapshot: snap().into(),
            ..Instance::default()
        };
        let a = answer(&inst, "When does our TLS certificate expire?");
        assert!(!a.answered);
        assert!(
            a.render().contains("I can't tell from this data"),
            "{}",
            a.render()
        );
        let a = answer(&inst, "What's the failure rate on the billing API?");
        assert!(a.answered);
        assert!(
            a.text
                .contains("Nothing in the loaded data is named `billing`"),
            "{}",
            a.text
        );
    }

    #[test]
    fn follow_ups_reuse_the_previous_entities() {
        let inst = Instance {
            snapshot: snap().into(),
            ..Instance::default()
        };
        let first = answer(&inst, "errors on orders-api");
        let next = answer_in_context(&inst, "and its policies?", Some(&first.entities));
        assert_eq!(next.entities.apis, vec!["orders-api".to_string()]);
        assert!(next.intents.contains(&Intent::Policies));
    }
}
