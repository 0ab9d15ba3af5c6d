//! The policy linter: every rule of `rules.rs` applied to every policy
//! document of a snapshot, plus the checks that need the rest of the
//! snapshot (backends, named values, APIs, operations, traffic). Pure.

use super::catalog::{self, ElementSpec};
use super::effective::{EffectivePolicy, LoadedPolicy, PolicyIndex, forward_timeout_secs};
use super::reader::{Element, ProblemKind, SNIPPET_ROOT};
use crate::model::lint_rules::{INHERITANCE_RULE, rule_by_id};
use crate::model::{
    BackendKind, Evidence, Finding, LatencyHistogram, Location, Origin, PolicyDoc, PolicyScope,
    Severity, Snapshot, Subject, fingerprint_with,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// How strictly the inheritance rule counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Report missing `<base />` as a warning.
    #[default]
    Audit,
    /// Missing `<base />` is an error (fails the run), like an Azure Policy
    /// assignment with the Deny effect.
    Deny,
}

/// What the rest of the snapshot tells the document checks; `None` where
/// the snapshot holds nothing of that kind (then the check is skipped).
struct Env {
    named_values: Option<HashSet<String>>,
    backends: Option<HashSet<String>>,
    fragments: Option<HashSet<String>>,
}

impl Env {
    fn new(snapshot: &Snapshot) -> Self {
        let lower = |s: &str| s.to_ascii_lowercase();
        let named_values: HashSet<String> = snapshot
            .named_values
            .iter()
            .flat_map(|n| {
                std::iter::once(lower(&n.name)).chain(n.display_name.as_deref().map(lower))
            })
            .collect();
        let backends: HashSet<String> = snapshot.backends.iter().map(|b| lower(&b.id)).collect();
        let fragments: HashSet<String> = snapshot
            .policies
            .iter()
            .filter_map(|p| match &p.scope {
                PolicyScope::Fragment(f) => Some(lower(f)),
                _ => None,
            })
            .collect();
        let some = |s: HashSet<String>| (!s.is_empty()).then_some(s);
        Env {
            named_values: some(named_values),
            backends: some(backends),
            fragments: some(fragments),
        }
    }
}

/// All findings in the given mode, sorted by file, line, column and rule.
pub fn lint(snapshot: &Snapshot, mode: Mode) -> Vec<Finding> {
    let env = Env::new(snapshot);
    let index = PolicyIndex::new(snapshot);
    let mut out = Vec::new();
    for (doc, loaded) in snapshot.policies.iter().zip(index.docs()) {
        DocLint {
            doc,
            loaded,
            env: &env,
            out: &mut out,
        }
        .run();
    }
    check_pools(snapshot, &mut out);
    check_operations(snapshot, &index, &mut out);
    if mode == Mode::Deny {
        for f in &mut out {
            if f.rule.as_deref() == Some(INHERITANCE_RULE) {
                f.severity = f.severity.max(Severity::High);
            }
        }
    }
    finish(out)
}

/// Sorts and makes ids unique (a rule firing twice on one scope).
fn finish(mut out: Vec<Finding>) -> Vec<Finding> {
    out.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.location
                    .as_ref()
                    .map(|l| (l.file.clone(), l.line, l.column)),
                f.rule.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for f in &mut out {
        let n = seen.entry(f.id.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            let extra = format!("{}#{}", f.rule.as_deref().unwrap_or_default(), n);
            f.id = fingerprint_with(f.kind, &f.subject, &extra);
        }
    }
    out
}

fn scope_subject(scope: &PolicyScope) -> Subject {
    let mut s = Subject::policy(scope.clone());
    match scope {
        PolicyScope::Product(p) => s.product = Some(p.clone()),
        PolicyScope::Api(a) => s.api = Some(a.clone()),
        PolicyScope::Operation(a, o) => {
            s.api = Some(a.clone());
            s.operation = Some(o.clone());
        }
        _ => {}
    }
    s
}

/// A finding for `rule` with its Audit severity, subject and location.
fn finding(rule: &str, subject: Subject, message: String, location: Location) -> Option<Finding> {
    let r = rule_by_id(rule)?;
    Some(
        Finding::new(r.kind, r.severity, subject, message)
            .with_rule(rule)
            .location(location),
    )
}

/// An expression, a `{{named value}}` or a deployment-template placeholder
/// (`{retry-count}`): its value is only known later.
fn is_dynamic(v: &str) -> bool {
    let t = v.trim();
    t.starts_with("@(")
        || t.starts_with("@{")
        || t.contains("{{")
        || t.find('{')
            .is_some_and(|i| t.get(i..).is_some_and(|r| r.contains('}')))
}

fn is_expression(v: &str) -> bool {
    let t = v.trim();
    t.starts_with("@(") || t.starts_with("@{")
}

struct DocLint<'a> {
    doc: &'a PolicyDoc,
    loaded: &'a LoadedPolicy,
    env: &'a Env,
    out: &'a mut Vec<Finding>,
}

impl DocLint<'_> {
    fn emit(&mut self, rule: &str, line: u32, column: u32, message: String) {
        self.emit_with(rule, line, column, message, |_| {});
    }

    fn emit_with(
        &mut self,
        rule: &str,
        line: u32,
        column: u32,
        message: String,
        subject: impl FnOnce(&mut Subject),
    ) {
        let mut s = scope_subject(&self.doc.scope);
        subject(&mut s);
        let abs = self.loaded.absolute_line(line);
        let (column, message) = if self.loaded.embedded {
            (
                None,
                format!("{message} (policy XML line {line}, column {column})"),
            )
        } else {
            (Some(column), message)
        };
        let location = Location {
            file: self.doc.origin.file.clone(),
            line: Some(abs),
            column,
        };
        let excerpt = self
            .doc
            .xml
            .trim_start_matches('\u{FEFF}')
            .lines()
            .nth(usize::try_from(line.saturating_sub(1)).unwrap_or(0))
            .map(|l| l.trim().chars().take(200).collect::<String>())
            .filter(|l| !l.is_empty());
        let Some(f) = finding(rule, s, message, location) else {
            return;
        };
        let summary = rule_by_id(rule).map_or("", |r| r.summary);
        let mut ev = Evidence::text(summary);
        ev.excerpt = excerpt;
        ev.sources
            .push(Origin::at_line(self.doc.origin.file.clone(), abs));
        self.out.push(f.evidence(ev));
    }

    fn scope(&self) -> &PolicyScope {
        &self.doc.scope
    }

    /// Product, API, operation or workspace: `<base />` matters.
    fn below_global(&self) -> bool {
        matches!(
            self.scope(),
            PolicyScope::Product(_)
                | PolicyScope::Api(_)
                | PolicyScope::Operation(..)
                | PolicyScope::Workspace(_)
        )
    }

    fn run(&mut self) {
        let parsed = &self.loaded.parsed;
        for p in &parsed.problems {
            let rule = match p.kind {
                ProblemKind::Malformed
                | ProblemKind::RootlessSnippet
                | ProblemKind::CustomEntity => "APIM001",
                ProblemKind::UnbalancedExpression => "APIM012",
                ProblemKind::BareSnippet => "APIM002",
            };
            self.emit(rule, p.line, p.column, p.message.clone());
        }
        self.check_expressions();
        let Some(root) = parsed.root.as_ref() else {
            return;
        };
        match root.name.as_str() {
            "policies" => self.check_policies(root),
            "fragment" => {
                for c in &root.children {
                    self.statement(c, None, false);
                }
            }
            SNIPPET_ROOT => {
                for c in &root.children {
                    self.statement(c, None, false);
                }
            }
            _ => self.statement(root, None, false),
        }
        self.check_named_values(root);
        self.check_secrets(root);
    }

    fn check_expressions(&mut self) {
        let exprs = self.loaded.parsed.expressions.clone();
        for e in &exprs {
            let body = e
                .text
                .get(2..e.text.len().saturating_sub(1))
                .unwrap_or_default();
            if body.trim().is_empty() {
                self.emit(
                    "APIM012",
                    e.line,
                    e.column,
                    format!("expression `{}` is empty", e.text),
                );
            } else if e.block && !has_word(body, "return") && !has_word(body, "throw") {
                self.emit(
                    "APIM012",
                    e.line,
                    e.column,
                    "`@{ … }` body has no return statement, so it cannot produce a value".into(),
                );
            }
        }
    }

    fn check_policies(&mut self, root: &Element) {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for c in &root.children {
            match catalog::section_bit(&c.name) {
                Some(bit) => {
                    if !seen.insert(c.name.as_str()) {
                        self.emit(
                            "APIM003",
                            c.line,
                            c.column,
                            format!("section <{}> appears more than once", c.name),
                        );
                        continue;
                    }
                    self.check_section(c, bit);
                }
                None => self.emit(
                    "APIM003",
                    c.line,
                    c.column,
                    format!(
                        "<{}> is not a section; <policies> may only hold inbound, backend, outbound and on-error",
                        c.name
                    ),
                ),
            }
        }
        let missing: Vec<&str> = ["inbound", "backend", "outbound", "on-error"]
            .into_iter()
            .filter(|s| !seen.contains(s))
            .collect();
        if !missing.is_empty() {
            self.emit(
                "APIM004",
                root.line,
                root.column,
                format!("<policies> has no {} section", missing.join(", ")),
            );
        }
    }

    fn check_section(&mut self, section: &Element, bit: u8) {
        let bases: Vec<&Element> = section.children_named("base").collect();
        let nested_base = section
            .children
            .iter()
            .filter(|c| c.name != "base")
            .any(|c| c.walk().iter().any(|d| d.name == "base"));
        if self.below_global() {
            if bases.is_empty() && !nested_base {
                self.emit(
                    INHERITANCE_RULE,
                    section.line,
                    section.column,
                    format!(
                        "<{}> at {} has no <base />: the parent scope's {} policies do not run",
                        section.name,
                        self.scope(),
                        section.name
                    ),
                );
            } else if let (Some(first), Some(b)) = (section.children.first(), bases.first())
                && first.name != "base"
            {
                self.emit(
                    "APIM021",
                    b.line,
                    b.column,
                    format!(
                        "<base /> is not first in <{}>: <{}> runs before the parent scope's policies",
                        section.name, first.name
                    ),
                );
            }
        }
        if let Some(second) = bases.get(1) {
            self.emit(
                "APIM022",
                second.line,
                second.column,
                format!(
                    "<base /> appears {} times in <{}>",
                    bases.len(),
                    section.name
                ),
            );
        }
        if bit == catalog::B && !self.forwards(section) {
            self.emit(
                "APIM023",
                section.line,
                section.column,
                format!(
                    "<backend> at {} neither holds forward-request nor inherits one with <base />: requests never reach the backend",
                    self.scope()
                ),
            );
        }
        for c in &section.children {
            if c.name != "base" {
                self.statement(c, Some(bit), false);
            }
        }
    }

    /// Whether a backend section can reach a forward-request (or answers
    /// itself, which is intended).
    fn forwards(&self, section: &Element) -> bool {
        let inherits = !matches!(self.scope(), PolicyScope::Global);
        let answers_itself = self.loaded.parsed.root.as_ref().is_some_and(|r| {
            r.walk()
                .iter()
                .any(|e| e.name == "return-response" || e.name == "mock-response")
        });
        answers_itself
            || section.walk().iter().any(|e| {
                e.name == "forward-request"
                    || e.name == "include-fragment"
                    || (inherits && e.name == "base")
            })
    }

    /// Checks one policy statement (and the statements nested in it).
    fn statement(&mut self, e: &Element, section: Option<u8>, in_choose: bool) {
        if e.name == "base" {
            if in_choose {
                self.emit(
                    "APIM022",
                    e.line,
                    e.column,
                    "<base /> inside choose: the parent scope's policies run only on some requests"
                        .into(),
                );
            }
            return;
        }
        if e.name == "choose" {
            if e.children_named("when").next().is_none() {
                self.emit(
                    "APIM009",
                    e.line,
                    e.column,
                    "<choose> has no <when> element".into(),
                );
            }
            for branch in &e.children {
                if branch.name == "when" || branch.name == "otherwise" {
                    if branch.name == "when" && branch.attr("condition").is_none() {
                        self.emit(
                            "APIM009",
                            branch.line,
                            branch.column,
                            "<when> is missing required attribute `condition`".into(),
                        );
                    }
                    for c in &branch.children {
                        self.statement(c, section, true);
                    }
                }
            }
            return;
        }
        let Some(spec) = catalog::lookup(&e.name) else {
            let hint = catalog::suggest(&e.name)
                .map(|s| format!("; did you mean <{s}>?"))
                .unwrap_or_default();
            self.emit(
                "APIM005",
                e.line,
                e.column,
                format!("<{}> is not a known policy{hint}", e.name),
            );
            return;
        };
        self.placement(e, spec, section);
        self.required(e, spec);
        self.values(e);
        self.references(e);
        self.security(e);
        if catalog::holds_statements(&e.name) {
            for c in &e.children {
                self.statement(c, section, in_choose);
            }
        }
    }

    fn placement(&mut self, e: &Element, spec: &ElementSpec, section: Option<u8>) {
        if let Some(bit) = section
            && spec.sections & bit == 0
        {
            let rule = if spec.placement_error {
                "APIM006"
            } else {
                "APIM007"
            };
            self.emit(
                rule,
                e.line,
                e.column,
                format!(
                    "<{}> is in <{}> but belongs in {}",
                    e.name,
                    catalog::section_names(bit),
                    catalog::section_names(spec.sections)
                ),
            );
        }
        let scope = self.scope().clone();
        let wrong = match (e.name.as_str(), &scope) {
            (_, PolicyScope::Unknown | PolicyScope::Fragment(_)) => None,
            ("rate-limit", PolicyScope::Global) => {
                Some("rate-limit cannot be used at global scope; use rate-limit-by-key")
            }
            ("quota", s) if !matches!(s, PolicyScope::Product(_)) => {
                Some("quota can only be used in a product policy; use quota-by-key")
            }
            ("cross-domain", s) if *s != PolicyScope::Global => {
                Some("cross-domain can only be used at global scope")
            }
            _ => None,
        };
        if let Some(msg) = wrong {
            self.emit(
                "APIM008",
                e.line,
                e.column,
                format!("{msg} (found at {scope})"),
            );
        }
    }

    fn required(&mut self, e: &Element, spec: &ElementSpec) {
        for alternatives in spec.required {
            let present = alternatives.iter().any(|n| match n.strip_prefix('<') {
                Some(child) => e.children_named(child).next().is_some(),
                None => e.attr(n).is_some(),
            });
            if present {
                continue;
            }
            let names: Vec<String> = alternatives
                .iter()
                .map(|n| match n.strip_prefix('<') {
                    Some(c) => format!("<{c}>"),
                    None => format!("`{n}`"),
                })
                .collect();
            let what = if alternatives.iter().all(|n| n.starts_with('<')) {
                "child element"
            } else {
                "attribute"
            };
            let msg = if names.len() == 1 {
                format!("<{}> is missing required {what} {}", e.name, names.join(""))
            } else {
                format!("<{}> needs one of {}", e.name, names.join(", "))
            };
            self.emit("APIM009", e.line, e.column, msg);
        }
    }

    fn values(&mut self, e: &Element) {
        let name = e.name.as_str();
        for attr in integer_attrs(name) {
            let Some(v) = e.attr(attr) else { continue };
            if is_dynamic(v) {
                continue;
            }
            let t = v.trim();
            if t.parse::<u64>().is_err() {
                let msg = if looks_iso_duration(t) {
                    format!(
                        "<{name} {attr}=\"{}\">: an ISO 8601 duration where a whole number of seconds is expected",
                        t.escape_debug()
                    )
                } else {
                    format!(
                        "<{name} {attr}=\"{}\">: not a whole number",
                        t.escape_debug()
                    )
                };
                self.emit("APIM010", e.line, e.column, msg);
            }
        }
        for attr in bool_attrs(name) {
            let Some(v) = e.attr(attr) else { continue };
            if is_dynamic(v) {
                continue;
            }
            if !v.trim().eq_ignore_ascii_case("true") && !v.trim().eq_ignore_ascii_case("false") {
                self.emit(
                    "APIM010",
                    e.line,
                    e.column,
                    format!("<{name} {attr}=\"{v}\">: expected true or false"),
                );
            }
        }
        let keyword = |attr: &str, allowed: &[&str]| -> Option<String> {
            let v = e.attr(attr)?;
            if is_dynamic(v) || allowed.iter().any(|a| a.eq_ignore_ascii_case(v.trim())) {
                return None;
            }
            Some(format!(
                "<{name} {attr}=\"{v}\">: expected one of {}",
                allowed.join(", ")
            ))
        };
        let bad = match name {
            "ip-filter" => keyword("action", &["allow", "forbid"]),
            "set-header" | "set-query-parameter" => {
                keyword("exists-action", &["override", "skip", "append", "delete"])
            }
            _ => None,
        };
        if let Some(msg) = bad {
            self.emit("APIM010", e.line, e.column, msg);
        }
        self.limits(e);
    }

    fn limits(&mut self, e: &Element) {
        let name = e.name.as_str();
        let num = |a: &str| e.attr(a).and_then(|v| v.trim().parse::<u64>().ok());
        let mut problems = Vec::new();
        for attr in no_expression_attrs(name) {
            if e.attr(attr).is_some_and(is_expression) {
                problems.push(format!(
                    "<{name} {attr}> does not accept policy expressions"
                ));
            }
        }
        match name {
            "rate-limit" | "rate-limit-by-key" => {
                if let Some(p) = num("renewal-period").filter(|&p| p > 300) {
                    problems.push(format!(
                        "<{name}> renewal-period {p} s exceeds the maximum of 300 s"
                    ));
                }
            }
            "quota-by-key" => {
                if let Some(p) = num("renewal-period").filter(|&p| p > 0 && p < 300) {
                    problems.push(format!(
                        "<{name}> renewal-period {p} s is below the minimum of 300 s"
                    ));
                }
            }
            "retry" => {
                if let Some(c) = num("count").filter(|c| !(1..=50).contains(c)) {
                    problems.push(format!("<retry> count {c} is outside 1-50"));
                }
            }
            "forward-request" if e.attr("timeout").is_some() && e.attr("timeout-ms").is_some() => {
                problems
                    .push("<forward-request> sets both timeout and timeout-ms; keep one".into());
            }
            "log-to-eventhub"
                if e.attr("partition-id").is_some() && e.attr("partition-key").is_some() =>
            {
                problems.push(
                    "<log-to-eventhub> sets both partition-id and partition-key; keep one".into(),
                );
            }
            "emit-metric" => {
                let n = e.children_named("dimension").count();
                if n > 10 {
                    problems.push(format!(
                        "<emit-metric> has {n} dimensions; at most 10 are allowed"
                    ));
                }
            }
            _ => {}
        }
        for p in problems {
            self.emit("APIM011", e.line, e.column, p);
        }
    }

    fn references(&mut self, e: &Element) {
        if e.name == "set-backend-service"
            && let Some(id) = e.attr("backend-id")
            && !is_dynamic(id)
            && let Some(known) = &self.env.backends
            && !known.contains(&id.trim().to_ascii_lowercase())
        {
            let id = id.trim().to_string();
            self.emit_with(
                "APIM030",
                e.line,
                e.column,
                format!("set-backend-service backend-id \"{id}\" is not a defined backend"),
                |s| s.backend = Some(id.clone()),
            );
        }
        if e.name == "include-fragment"
            && let Some(id) = e.attr("fragment-id")
            && !is_dynamic(id)
            && let Some(known) = &self.env.fragments
            && !known.contains(&id.trim().to_ascii_lowercase())
        {
            self.emit(
                "APIM032",
                e.line,
                e.column,
                format!(
                    "include-fragment fragment-id \"{}\" is not a defined fragment",
                    id.trim()
                ),
            );
        }
    }

    fn security(&mut self, e: &Element) {
        match e.name.as_str() {
            "cors" => {
                let creds = e
                    .attr("allow-credentials")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                let any = e
                    .children_named("allowed-origins")
                    .flat_map(|o| o.children_named("origin"))
                    .any(|o| o.text.trim() == "*");
                if creds && any {
                    self.emit(
                        "APIM041",
                        e.line,
                        e.column,
                        "cors allows any origin (*) with allow-credentials=\"true\"".into(),
                    );
                }
            }
            "validate-jwt" => {
                let keys = e.children_named("openid-config").next().is_some()
                    || e.children_named("issuer-signing-keys").next().is_some();
                if !keys {
                    self.emit(
                        "APIM042",
                        e.line,
                        e.column,
                        "validate-jwt has no <openid-config> and no <issuer-signing-keys>: token signatures are not verified".into(),
                    );
                }
            }
            "ip-filter" => {
                let allow = e
                    .attr("action")
                    .is_some_and(|a| a.trim().eq_ignore_ascii_case("allow"));
                let everything = e.children_named("address-range").any(|r| {
                    r.attr("from").map(str::trim) == Some("0.0.0.0")
                        && r.attr("to").map(str::trim) == Some("255.255.255.255")
                }) || e
                    .children_named("address")
                    .any(|a| a.text.trim() == "0.0.0.0/0");
                if allow && everything {
                    self.emit(
                        "APIM043",
                        e.line,
                        e.column,
                        "ip-filter allows 0.0.0.0-255.255.255.255, every address".into(),
                    );
                }
            }
            _ => {}
        }
    }

    /// Plain-text secrets anywhere in the document (send-request and
    /// return-response children included).
    fn check_secrets(&mut self, root: &Element) {
        for e in root.walk() {
            match e.name.as_str() {
                "set-header" | "set-query-parameter" => {
                    let Some(name) = e.attr("name") else { continue };
                    if !secret_name(name, e.name == "set-query-parameter") {
                        continue;
                    }
                    for v in e.children_named("value") {
                        if literal_secret(&v.text) {
                            self.emit(
                                "APIM040",
                                v.line,
                                v.column,
                                format!(
                                    "{} \"{name}\" is set to a literal value in plain text",
                                    if e.name == "set-header" {
                                        "header"
                                    } else {
                                        "query parameter"
                                    }
                                ),
                            );
                        }
                    }
                }
                "authentication-basic" if e.attr("password").is_some_and(literal_secret) => {
                    self.emit(
                        "APIM040",
                        e.line,
                        e.column,
                        "authentication-basic password is written in plain text".into(),
                    );
                }
                _ => {}
            }
        }
    }

    fn check_named_values(&mut self, root: &Element) {
        let Some(known) = &self.env.named_values else {
            return;
        };
        let mut missing: Vec<(String, u32, u32)> = Vec::new();
        let mut stack = vec![root];
        while let Some(e) = stack.pop() {
            let liquid = e.name == "set-body"
                && e.attr("template")
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("liquid"));
            if liquid {
                continue;
            }
            let texts = e
                .attrs
                .iter()
                .map(|(_, v)| v.as_str())
                .chain([e.text.as_str()]);
            for t in texts {
                for name in named_value_refs(t) {
                    if !known.contains(&name.to_ascii_lowercase())
                        && !missing.iter().any(|(m, _, _)| m == name)
                    {
                        missing.push((name.to_string(), e.line, e.column));
                    }
                }
            }
            stack.extend(e.children.iter().rev());
        }
        for (name, line, column) in missing {
            self.emit(
                "APIM013",
                line,
                column,
                format!("named value {{{{{name}}}}} is not defined"),
            );
        }
    }
}

fn has_word(s: &str, word: &str) -> bool {
    s.match_indices(word).any(|(i, _)| {
        let before = s.get(..i).and_then(|b| b.chars().next_back());
        let after = s.get(i + word.len()..).and_then(|a| a.chars().next());
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

fn looks_iso_duration(t: &str) -> bool {
    let mut chars = t.chars();
    chars.next().is_some_and(|c| c == 'P' || c == 'p') && t.chars().any(|c| c.is_ascii_digit())
}

/// `{{name}}` references in a value.
fn named_value_refs(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        let after = rest.get(i + 2..).unwrap_or_default();
        let Some(j) = after.find("}}") else { break };
        let name = after.get(..j).unwrap_or_default().trim();
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            out.push(name);
        }
        rest = after.get(j + 2..).unwrap_or_default();
    }
    out
}

/// Header or query parameter names that carry credentials.
fn secret_name(name: &str, query: bool) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    if lower == "authorization" || lower == "proxy-authorization" {
        return true;
    }
    let tokens: Vec<&str> = lower.split(['-', '_', '.', ' ']).collect();
    tokens.iter().any(|t| {
        matches!(
            *t,
            "key" | "apikey" | "password" | "passwd" | "pwd" | "secret" | "token" | "sig"
        ) || (query && *t == "code")
    }) || lower.ends_with("apikey")
        || lower.ends_with("secret")
}

/// A literal long enough to be a credential: plain text, or an expression
/// that is only a string literal (`@("Bearer eyJ…")`); never a named value.
fn literal_secret(v: &str) -> bool {
    let t = v.trim();
    let t = match t.strip_prefix("@(").and_then(|r| r.strip_suffix(')')) {
        Some(inner) => {
            let inner = inner.trim();
            match inner.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                Some(lit) if !lit.contains('"') => lit,
                _ => return false,
            }
        }
        None => t,
    };
    !t.is_empty() && !is_dynamic(t) && t.chars().count() >= 8
}

fn integer_attrs(name: &str) -> &'static [&'static str] {
    match name {
        "forward-request" => &["timeout", "timeout-ms"],
        "rate-limit" | "rate-limit-by-key" => &["calls", "renewal-period"],
        "quota" | "quota-by-key" => &["calls", "bandwidth", "renewal-period"],
        "cache-store" | "cache-store-value" => &["duration"],
        "retry" => &["count", "interval", "max-interval", "delta"],
        "limit-concurrency" => &["max-count"],
        "send-request" => &["timeout"],
        "set-status" => &["code"],
        "check-header" => &["failed-check-httpcode"],
        "validate-jwt" => &["failed-validation-httpcode", "clock-skew"],
        "azure-openai-token-limit" | "llm-token-limit" => &["tokens-per-minute", "token-quota"],
        _ => &[],
    }
}

fn bool_attrs(name: &str) -> &'static [&'static str] {
    match name {
        "forward-request" => &[
            "buffer-response",
            "fail-on-error-status-code",
            "buffer-request-body",
        ],
        "cors" => &["allow-credentials", "terminate-unmatched-request"],
        "cache-lookup" => &[
            "vary-by-developer",
            "vary-by-developer-groups",
            "must-revalidate",
            "allow-private-response-caching",
        ],
        "check-header" => &["ignore-case"],
        "retry" => &["first-fast-retry"],
        "validate-jwt" => &["require-expiration-time", "require-signed-tokens"],
        "azure-openai-token-limit" | "llm-token-limit" => &["estimate-prompt-tokens"],
        "send-request" => &["ignore-error"],
        _ => &[],
    }
}

fn no_expression_attrs(name: &str) -> &'static [&'static str] {
    match name {
        "rate-limit" => &["calls", "renewal-period"],
        "quota" => &["calls", "bandwidth", "renewal-period"],
        "cache-lookup" => &["caching-type"],
        "log-to-eventhub" => &["logger-id"],
        _ => &[],
    }
}

/// Backend pools whose members are not defined (APIM031).
fn check_pools(snapshot: &Snapshot, out: &mut Vec<Finding>) {
    for b in &snapshot.backends {
        if b.kind != BackendKind::Pool {
            continue;
        }
        for m in &b.pool {
            let id = m.id.rsplit('/').next().unwrap_or(&m.id);
            if snapshot.backend(id).is_some() {
                continue;
            }
            let subject = Subject {
                backend: Some(b.id.clone()),
                rule: Some(id.to_string()),
                ..Subject::default()
            };
            let location = Location {
                file: b.origin.file.clone(),
                line: b.origin.line,
                column: None,
            };
            if let Some(f) = finding(
                "APIM031",
                subject,
                format!(
                    "backend pool {} lists member {id}, which is not a defined backend",
                    b.id
                ),
                location,
            ) {
                out.push(f.evidence(Evidence {
                    sources: vec![b.origin.clone()],
                    ..Evidence::text(format!(
                            "pool {} members: {}",
                            b.id,
                            b.pool
                                .iter()
                                .map(|m| m.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                }));
            }
        }
    }
}

/// Checks on each operation's effective policy: unauthenticated APIs
/// (APIM044), timeouts against observed latency (APIM050) and retries of
/// non-idempotent requests (APIM051).
fn check_operations(snapshot: &Snapshot, index: &PolicyIndex<'_>, out: &mut Vec<Finding>) {
    // (api, operation) pairs from configuration and traffic.
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for o in &snapshot.operations {
        pairs.insert((o.api_id.clone(), o.id.clone()));
    }
    for s in &snapshot.traffic.series {
        if !s.key.api_id.is_empty() && !s.key.operation_id.is_empty() {
            pairs.insert((s.key.api_id.clone(), s.key.operation_id.clone()));
        }
    }
    if pairs.is_empty() || snapshot.policies.is_empty() && snapshot.apis.is_empty() {
        return;
    }
    let mut retry_seen: HashSet<Origin> = HashSet::new();
    let mut unauthenticated: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (api, op) in &pairs {
        let eff = index.effective(api, op);
        check_timeout(snapshot, &eff, api, op, out);
        check_retry(snapshot, &eff, api, op, &mut retry_seen, out);
        let authenticated = eff.all().iter().any(|p| {
            let n = p.element.name.as_str();
            matches!(
                n,
                "validate-jwt"
                    | "validate-azure-ad-token"
                    | "check-header"
                    | "validate-client-certificate"
            ) || n.starts_with("authentication-")
        });
        if !authenticated {
            unauthenticated
                .entry(api.to_ascii_lowercase())
                .or_default()
                .push(op.clone());
        }
    }
    for api in &snapshot.apis {
        if api.subscription_required != Some(false) {
            continue;
        }
        let Some(ops) = unauthenticated.get(&api.id.to_ascii_lowercase()) else {
            continue;
        };
        let subject = Subject {
            api: Some(api.id.clone()),
            policy_scope: Some(PolicyScope::Api(api.id.clone())),
            ..Subject::default()
        };
        let location = Location {
            file: api.origin.file.clone(),
            line: api.origin.line,
            column: None,
        };
        if let Some(f) = finding(
            "APIM044",
            subject,
            format!(
                "API {} requires no subscription and {} of its operations run no authentication policy",
                api.id,
                ops.len()
            ),
            location,
        ) {
            out.push(f.evidence(Evidence {
                sources: vec![api.origin.clone()],
                ..Evidence::text(format!(
                    "operations without authentication: {}",
                    ops.join(", ")
                ))
            }));
        }
    }
}

fn check_timeout(
    snapshot: &Snapshot,
    eff: &EffectivePolicy,
    api: &str,
    op: &str,
    out: &mut Vec<Finding>,
) {
    let Some(forward) = eff
        .find("forward-request")
        .find(|p| p.section == super::Section::Backend && !p.conditional)
        .or_else(|| eff.find("forward-request").next())
    else {
        return;
    };
    let timeout_s = forward_timeout_secs(&forward.element);
    let (mut times, mut timeouts, mut requests) = (LatencyHistogram::default(), 0u64, 0u64);
    for s in &snapshot.traffic.series {
        if !s.key.api_id.eq_ignore_ascii_case(api) || !s.key.operation_id.eq_ignore_ascii_case(op) {
            continue;
        }
        for m in s.minutes.values() {
            times.merge(&m.backend_latency);
            timeouts += u64::from(m.timeouts);
            requests += u64::from(m.requests);
        }
    }
    if requests == 0 {
        return;
    }
    let p99 = times.percentile(99.0);
    let timeout_ms = timeout_s * 1000.0;
    let slow = p99.is_some_and(|p| f64::from(p) >= timeout_ms);
    let timing_out = timeouts >= 5 && timeouts as f64 >= 0.01 * requests as f64;
    if !slow && !timing_out {
        return;
    }
    let mut subject = scope_subject(&forward.scope);
    subject.api = Some(api.to_string());
    subject.operation = Some(op.to_string());
    let message = match p99 {
        Some(p) if slow => format!(
            "forward-request timeout {timeout_s} s (set at {}) is at or below the observed p99 backend time of {:.1} s for {api}/{op}",
            forward.scope,
            f64::from(p) / 1000.0
        ),
        _ => format!(
            "{timeouts} of {requests} requests to {api}/{op} timed out under the forward-request timeout of {timeout_s} s (set at {})",
            forward.scope
        ),
    };
    let location = Location {
        file: forward.origin.file.clone(),
        line: forward.origin.line,
        column: (!forward.implicit).then_some(forward.element.column),
    };
    if let Some(f) = finding("APIM050", subject, message, location) {
        let mut ev = Evidence::text("forward-request timeout against observed backend latency")
            .value("timeout_s", timeout_s)
            .value("timeouts", timeouts as f64)
            .value("requests", requests as f64);
        if let Some(p) = p99 {
            ev = ev.value("p99_backend_ms", f64::from(p));
        }
        ev.sources.push(forward.origin.clone());
        out.push(f.evidence(ev));
    }
}

fn check_retry(
    snapshot: &Snapshot,
    eff: &EffectivePolicy,
    api: &str,
    op: &str,
    seen: &mut HashSet<Origin>,
    out: &mut Vec<Finding>,
) {
    let method = snapshot
        .operations
        .iter()
        .find(|o| o.api_id.eq_ignore_ascii_case(api) && o.id.eq_ignore_ascii_case(op))
        .and_then(|o| o.method.as_deref())
        .map(str::to_ascii_uppercase);
    let Some(method) = method.filter(|m| m == "POST" || m == "PATCH") else {
        return;
    };
    for p in eff.find("retry") {
        let wraps_forward = p.element.walk().iter().any(|e| e.name == "forward-request");
        let unconditional = p.element.attr("condition").is_none_or(|c| {
            let c: String = c.chars().filter(|c| !c.is_whitespace()).collect();
            c.is_empty() || c.eq_ignore_ascii_case("@(true)") || c.eq_ignore_ascii_case("true")
        });
        if !wraps_forward || !unconditional || !seen.insert(p.origin.clone()) {
            continue;
        }
        let mut subject = scope_subject(&p.scope);
        subject.api = Some(api.to_string());
        subject.operation = Some(op.to_string());
        let location = Location {
            file: p.origin.file.clone(),
            line: p.origin.line,
            column: Some(p.element.column),
        };
        if let Some(f) = finding(
            "APIM051",
            subject,
            format!(
                "retry around forward-request has no failure condition, and {api}/{op} is a {method}: a request may be applied twice"
            ),
            location,
        ) {
            let mut ev = Evidence::text(format!("operation method {method}"));
            ev.sources.push(p.origin.clone());
            out.push(f.evidence(ev));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Api, Backend, NamedValue, Operation, PoolMember, Request, Timestamp, Traffic,
    };

    fn doc(scope: &str, xml: &str) -> PolicyDoc {
        PolicyDoc {
            scope: PolicyScope::parse(scope).unwrap(),
            xml: xml.into(),
            format: "file".into(),
            origin: Origin::at_line(format!("{scope}.xml"), 1),
        }
    }

    fn snap(docs: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            policies: docs.iter().map(|(s, x)| doc(s, x)).collect(),
            ..Snapshot::default()
        }
    }

    /// A complete document at `scope` with `inbound` as the inbound body.
    fn wrap(inbound: &str) -> String {
        format!(
            "<policies><inbound><base />{inbound}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"
        )
    }

    fn rules_of(s: &Snapshot) -> Vec<String> {
        lint(s, Mode::Audit)
            .into_iter()
            .filter_map(|f| f.rule)
            .collect()
    }

    fn fires(rule: &str, s: &Snapshot) -> Finding {
        let all = lint(s, Mode::Audit);
        match all.iter().find(|f| f.rule.as_deref() == Some(rule)) {
            Some(f) => f.clone(),
            None => panic!(
                "{rule} did not fire; got {:?}",
                all.iter()
                    .map(|f| (&f.rule, &f.summary))
                    .collect::<Vec<_>>()
            ),
        }
    }

    fn quiet(rule: &str, s: &Snapshot) {
        let all = lint(s, Mode::Audit);
        let hits: Vec<_> = all
            .iter()
            .filter(|f| f.rule.as_deref() == Some(rule))
            .map(|f| &f.summary)
            .collect();
        assert!(hits.is_empty(), "{rule} fired: {hits:?}");
    }

    fn one(scope: &str, xml: &str) -> Snapshot {
        snap(&[(scope, xml)])
    }

    #[test]
    fn a_clean_policy_has_no_findings() {
        let s = one(
            "api:a",
            &wrap(
                "<set-header name=\"x\" exists-action=\"override\"><value>1</value></set-header>",
            ),
        );
        assert_eq!(rules_of(&s), Vec::<String>::new());
    }

    #[test]
    fn apim001_malformed() {
        let f = fires(
            "APIM001",
            &one("api:a", "<policies>\n<inbound>\n</policies>"),
        );
        assert_eq!(f.kind, crate::model::FindingKind::MalformedPolicy);
        assert_eq!(f.location.as_ref().unwrap().line, Some(3));
        quiet("APIM001", &one("api:a", &wrap("")));
        fires(
            "APIM001",
            &one(
                "unknown",
                "<set-header name=\"a\"/><set-header name=\"b\"/>",
            ),
        );
    }

    #[test]
    fn apim002_bare_snippet() {
        fires(
            "APIM002",
            &one(
                "unknown",
                "<choose><when condition=\"@(true)\"><set-header name=\"a\" /></when></choose>",
            ),
        );
        quiet(
            "APIM002",
            &one(
                "fragment:f",
                "<fragment><set-header name=\"a\" /></fragment>",
            ),
        );
    }

    #[test]
    fn apim003_section_structure() {
        let s = one(
            "global",
            "<policies><inbound/><inbound/><set-header name=\"a\"/><backend><forward-request/></backend><outbound/><on-error/></policies>",
        );
        let n = rules_of(&s).iter().filter(|r| *r == "APIM003").count();
        assert_eq!(n, 2);
        quiet(
            "APIM003",
            &one(
                "global",
                "<policies><inbound/><backend><forward-request/></backend><outbound/><on-error/></policies>",
            ),
        );
    }

    #[test]
    fn apim004_missing_section() {
        let f = fires(
            "APIM004",
            &one(
                "api:a",
                "<policies><inbound><base/></inbound><backend><base/></backend></policies>",
            ),
        );
        assert!(f.summary.contains("outbound, on-error"), "{}", f.summary);
        quiet("APIM004", &one("api:a", &wrap("")));
    }

    #[test]
    fn apim005_unknown_element_suggests() {
        let f = fires("APIM005", &one("api:a", &wrap("<set-heder name=\"x\" />")));
        assert!(
            f.summary.contains("did you mean <set-header>?"),
            "{}",
            f.summary
        );
        quiet("APIM005", &one("api:a", &wrap("<set-header name=\"x\" />")));
    }

    #[test]
    fn apim006_never_allowed_section_is_an_error() {
        let s = one(
            "api:a",
            "<policies><inbound><base/><forward-request/></inbound><backend><base/></backend><outbound><base/><rate-limit-by-key calls=\"1\" renewal-period=\"1\" counter-key=\"k\"/></outbound><on-error><base/></on-error></policies>",
        );
        let f = fires("APIM006", &s);
        assert_eq!(f.severity, Severity::High);
        assert_eq!(rules_of(&s).iter().filter(|r| *r == "APIM006").count(), 2);
        quiet(
            "APIM006",
            &one(
                "api:a",
                &wrap("<rate-limit-by-key calls=\"1\" renewal-period=\"1\" counter-key=\"k\"/>"),
            ),
        );
    }

    #[test]
    fn apim007_disputed_section_is_a_warning() {
        let s = one(
            "api:a",
            "<policies><inbound><base/></inbound><backend><base/></backend><outbound><base/><set-method>GET</set-method></outbound><on-error><base/></on-error></policies>",
        );
        assert_eq!(fires("APIM007", &s).severity, Severity::Low);
        quiet(
            "APIM007",
            &one("api:a", &wrap("<set-method>GET</set-method>")),
        );
    }

    #[test]
    fn apim008_scope() {
        fires(
            "APIM008",
            &one(
                "global",
                "<policies><inbound><rate-limit calls=\"5\" renewal-period=\"60\"/></inbound><backend><forward-request/></backend><outbound/><on-error/></policies>",
            ),
        );
        fires(
            "APIM008",
            &one(
                "api:a",
                &wrap("<quota calls=\"5\" renewal-period=\"3600\"/>"),
            ),
        );
        quiet(
            "APIM008",
            &one(
                "product:p",
                &wrap("<quota calls=\"5\" renewal-period=\"3600\"/>"),
            ),
        );
        quiet(
            "APIM008",
            &one(
                "unknown",
                &wrap("<quota calls=\"5\" renewal-period=\"3600\"/>"),
            ),
        );
    }

    #[test]
    fn apim009_required() {
        let f = fires(
            "APIM009",
            &one("api:a", &wrap("<rate-limit renewal-period=\"60\"/>")),
        );
        assert!(f.summary.contains("`calls`"), "{}", f.summary);
        let f = fires("APIM009", &one("api:a", &wrap("<set-backend-service />")));
        assert!(
            f.summary.contains("one of `base-url`, `backend-id`"),
            "{}",
            f.summary
        );
        quiet(
            "APIM009",
            &one(
                "api:a",
                &wrap(
                    "<rate-limit calls=\"5\" renewal-period=\"60\"/><set-backend-service base-url=\"https://x\"/>",
                ),
            ),
        );
    }

    #[test]
    fn apim010_types() {
        let f = fires(
            "APIM010",
            &one(
                "api:a",
                &wrap(
                    "<quota-by-key calls=\"5\" counter-key=\"k\" renewal-period=\"&#x9;P3Y6M4DT12H30M5S\"/>",
                ),
            ),
        );
        assert!(f.summary.contains("ISO 8601"), "{}", f.summary);
        fires(
            "APIM010",
            &one(
                "api:a",
                &wrap(
                    "<check-header name=\"a\" failed-check-httpcode=\"401\" failed-check-error-message=\"m\" ignore-case=\"yes\"/>",
                ),
            ),
        );
        quiet(
            "APIM010",
            &one(
                "api:a",
                &wrap(
                    "<quota-by-key calls=\"{{n}}\" counter-key=\"k\" renewal-period=\"@(3600)\"/><retry condition=\"@(true)\" count=\"{retry-count}\" interval=\"1\"><set-header name=\"a\"/></retry>",
                ),
            ),
        );
    }

    #[test]
    fn apim011_limits() {
        for body in [
            "<rate-limit calls=\"5\" renewal-period=\"600\"/>",
            "<rate-limit calls=\"@(5)\" renewal-period=\"60\"/>",
            "<retry condition=\"@(true)\" count=\"100\" interval=\"1\"><set-header name=\"a\"/></retry>",
        ] {
            fires("APIM011", &one("api:a", &wrap(body)));
        }
        fires(
            "APIM011",
            &one(
                "api:a",
                "<policies><inbound><base/></inbound><backend><forward-request timeout=\"5\" timeout-ms=\"5000\"/></backend><outbound><base/></outbound><on-error><base/></on-error></policies>",
            ),
        );
        quiet(
            "APIM011",
            &one(
                "api:a",
                &wrap("<rate-limit calls=\"5\" renewal-period=\"300\"/>"),
            ),
        );
    }

    #[test]
    fn apim012_expressions() {
        let f = fires(
            "APIM012",
            &one(
                "api:a",
                &wrap("<set-variable name=\"a\" value=\"@{ var x = 1; }\"/>"),
            ),
        );
        assert!(f.summary.contains("no return"), "{}", f.summary);
        fires(
            "APIM012",
            &one("api:a", &wrap("<set-variable name=\"a\" value=\"@()\"/>")),
        );
        fires(
            "APIM012",
            &one(
                "api:a",
                "<policies><inbound><set-variable name=\"a\" value=\"@(x\" /></inbound></policies>",
            ),
        );
        quiet(
            "APIM012",
            &one(
                "api:a",
                &wrap(
                    "<set-variable name=\"a\" value=\"@{ var returned = 1; return returned; }\"/>",
                ),
            ),
        );
    }

    #[test]
    fn apim013_named_values() {
        let body = wrap(
            "<set-header name=\"a\"><value>{{Missing}}</value></set-header><set-body template=\"liquid\">{{body.x}}</set-body><set-header name=\"b\"><value>{{known-display}}</value></set-header>",
        );
        let mut s = one("api:a", &body);
        quiet("APIM013", &s);
        s.named_values.push(NamedValue {
            name: "nv1".into(),
            display_name: Some("Known-Display".into()),
            ..NamedValue::default()
        });
        let all = lint(&s, Mode::Audit);
        let hits: Vec<_> = all
            .iter()
            .filter(|f| f.rule.as_deref() == Some("APIM013"))
            .collect();
        assert_eq!(hits.len(), 1);
        assert!(
            hits[0].summary.contains("{{Missing}}"),
            "{}",
            hits[0].summary
        );
    }

    #[test]
    fn apim020_base_missing_below_global_only() {
        let xml = "<policies><inbound><ip-filter action=\"allow\"><address>1.2.3.4</address></ip-filter></inbound><backend><base/></backend><outbound><base/></outbound><on-error><base/></on-error></policies>";
        let f = fires("APIM020", &one("api:a", xml));
        assert_eq!(f.severity, Severity::Medium);
        assert_eq!(f.kind, crate::model::FindingKind::PolicyInheritance);
        assert_eq!(f.subject.api.as_deref(), Some("a"));
        assert_eq!(
            lint(&one("api:a", xml), Mode::Deny)
                .iter()
                .find(|f| f.rule.as_deref() == Some("APIM020"))
                .unwrap()
                .severity,
            Severity::High
        );
        quiet("APIM020", &one("global", xml));
        quiet("APIM020", &one("unknown", xml));
        quiet("APIM020", &one("api:a", &wrap("")));
    }

    #[test]
    fn apim021_base_not_first() {
        let s = one(
            "operation:a/o",
            "<policies><inbound><set-header name=\"x\"/><base/></inbound><backend><base/></backend><outbound><base/></outbound><on-error><base/></on-error></policies>",
        );
        fires("APIM021", &s);
        quiet(
            "APIM021",
            &one("operation:a/o", &wrap("<set-header name=\"x\"/>")),
        );
    }

    #[test]
    fn apim022_base_twice_or_conditional() {
        fires("APIM022", &one("api:a", &wrap("<base />")));
        fires(
            "APIM022",
            &one(
                "api:a",
                &wrap("<choose><when condition=\"@(true)\"><base /></when></choose>"),
            ),
        );
        quiet("APIM022", &one("api:a", &wrap("")));
    }

    #[test]
    fn apim023_backend_never_forwards() {
        let f = fires(
            "APIM023",
            &one(
                "operation:a/o",
                "<policies><inbound><base/></inbound><backend><set-variable name=\"a\" value=\"b\"/></backend><outbound><base/></outbound><on-error><base/></on-error></policies>",
            ),
        );
        assert!(f.summary.contains("never reach"), "{}", f.summary);
        fires(
            "APIM023",
            &one(
                "global",
                "<policies><inbound/><backend><base/></backend><outbound/><on-error/></policies>",
            ),
        );
        quiet("APIM023", &one("operation:a/o", &wrap("")));
        quiet(
            "APIM023",
            &one(
                "operation:a/o",
                "<policies><inbound><base/><return-response><set-status code=\"200\" reason=\"OK\"/></return-response></inbound><backend></backend><outbound><base/></outbound><on-error><base/></on-error></policies>",
            ),
        );
    }

    #[test]
    fn apim030_unknown_backend() {
        let mut s = one(
            "api:a",
            &wrap(
                "<set-backend-service backend-id=\"orders\" /><set-backend-service backend-id=\"@(x)\" />",
            ),
        );
        quiet("APIM030", &s);
        s.backends.push(Backend {
            id: "payments".into(),
            ..Backend::default()
        });
        let f = fires("APIM030", &s);
        assert_eq!(f.subject.backend.as_deref(), Some("orders"));
        s.backends.push(Backend {
            id: "Orders".into(),
            ..Backend::default()
        });
        quiet("APIM030", &s);
    }

    #[test]
    fn apim031_unknown_pool_member() {
        let mut s = Snapshot::default();
        s.backends.push(Backend {
            id: "pool".into(),
            kind: BackendKind::Pool,
            pool: vec![
                PoolMember { id: "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ApiManagement/service/s/backends/east".into(), ..PoolMember::default() },
                PoolMember { id: "west".into(), ..PoolMember::default() },
            ],
            origin: Origin::at_line("backends.json", 4),
            ..Backend::default()
        });
        s.backends.push(Backend {
            id: "east".into(),
            ..Backend::default()
        });
        let all = lint(&s, Mode::Audit);
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(all[0].summary.contains("member west"));
        assert_eq!(all[0].location.as_ref().unwrap().line, Some(4));
        s.backends.push(Backend {
            id: "west".into(),
            ..Backend::default()
        });
        quiet("APIM031", &s);
    }

    #[test]
    fn apim032_unknown_fragment() {
        let s = snap(&[
            (
                "api:a",
                &wrap("<include-fragment fragment-id=\"missing\" />"),
            ),
            (
                "fragment:present",
                "<fragment><set-header name=\"a\"/></fragment>",
            ),
        ]);
        fires("APIM032", &s);
        quiet(
            "APIM032",
            &snap(&[
                (
                    "api:a",
                    &wrap("<include-fragment fragment-id=\"Present\" />"),
                ),
                (
                    "fragment:present",
                    "<fragment><set-header name=\"a\"/></fragment>",
                ),
            ]),
        );
        quiet(
            "APIM032",
            &one("api:a", &wrap("<include-fragment fragment-id=\"x\" />")),
        );
    }

    #[test]
    fn apim040_plaintext_secrets() {
        let f = fires(
            "APIM040",
            &one(
                "api:a",
                &wrap(
                    "<send-request response-variable-name=\"r\"><set-header name=\"Ocp-Apim-Subscription-Key\"><value>0123456789abcdef</value></set-header></send-request>",
                ),
            ),
        );
        assert_eq!(f.location.as_ref().unwrap().column, Some(114));
        fires(
            "APIM040",
            &one(
                "api:a",
                &wrap("<authentication-basic username=\"u\" password=\"hunter2hunter2\" />"),
            ),
        );
        fires(
            "APIM040",
            &one(
                "api:a",
                &wrap(
                    "<set-header name=\"Authorization\"><value>@(\"Bearer eyJhbGciOiJIUzI1NiJ9\")</value></set-header>",
                ),
            ),
        );
        fires(
            "APIM040",
            &one(
                "api:a",
                &wrap(
                    "<set-query-parameter name=\"code\" exists-action=\"override\"><value>abcdefgh12345</value></set-query-parameter>",
                ),
            ),
        );
        quiet(
            "APIM040",
            &one(
                "api:a",
                &wrap(
                    "<set-header name=\"Authorization\"><value>{{backend-token}}</value></set-header><set-header name=\"api-key\"><value>@((string)context.Variables[\"k\"])</value></set-header><set-header name=\"Content-Type\"><value>application/json</value></set-header>",
                ),
            ),
        );
    }

    #[test]
    fn apim041_cors_any_origin_with_credentials() {
        let cors = |creds: &str| {
            wrap(&format!(
                "<cors allow-credentials=\"{creds}\"><allowed-origins><origin>*</origin></allowed-origins><allowed-headers><header>*</header></allowed-headers></cors>"
            ))
        };
        fires("APIM041", &one("api:a", &cors("true")));
        quiet("APIM041", &one("api:a", &cors("false")));
    }

    #[test]
    fn apim042_jwt_without_keys() {
        fires(
            "APIM042",
            &one(
                "api:a",
                &wrap(
                    "<validate-jwt header-name=\"Authorization\"><audiences><audience>x</audience></audiences></validate-jwt>",
                ),
            ),
        );
        quiet(
            "APIM042",
            &one(
                "api:a",
                &wrap(
                    "<validate-jwt header-name=\"Authorization\"><openid-config url=\"https://login/.well-known/openid-configuration\" /></validate-jwt>",
                ),
            ),
        );
    }

    #[test]
    fn apim043_ip_filter_allows_all() {
        let f = |action: &str, to: &str| {
            wrap(&format!(
                "<ip-filter action=\"{action}\"><address-range from=\"0.0.0.0\" to=\"{to}\" /></ip-filter>"
            ))
        };
        fires("APIM043", &one("api:a", &f("allow", "255.255.255.255")));
        quiet("APIM043", &one("api:a", &f("forbid", "255.255.255.255")));
        quiet("APIM043", &one("api:a", &f("allow", "10.255.255.255")));
    }

    fn api_snapshot(sub: Option<bool>, api_inbound: &str) -> Snapshot {
        let mut s = one("api:orders", &wrap(api_inbound));
        s.apis.push(Api {
            id: "orders".into(),
            subscription_required: sub,
            origin: Origin::at_line("apis.json", 7),
            ..Api::default()
        });
        s.operations.push(Operation {
            api_id: "orders".into(),
            id: "create".into(),
            method: Some("POST".into()),
            ..Operation::default()
        });
        s
    }

    #[test]
    fn apim044_api_without_auth() {
        let f = fires("APIM044", &api_snapshot(Some(false), ""));
        assert_eq!(f.location.as_ref().unwrap().line, Some(7));
        quiet("APIM044", &api_snapshot(Some(true), ""));
        quiet("APIM044", &api_snapshot(None, ""));
        quiet(
            "APIM044",
            &api_snapshot(
                Some(false),
                "<validate-jwt header-name=\"Authorization\"><openid-config url=\"https://x\" /></validate-jwt>",
            ),
        );
    }

    fn traffic(backend_ms: u32, timeouts: bool) -> Traffic {
        let mut t = Traffic::default();
        for i in 0..100 {
            t.add(
                &Request {
                    time: Timestamp::from_minute(i),
                    api_id: "orders",
                    operation_id: "create",
                    response_code: if timeouts { 504 } else { 200 },
                    backend_response_code: if timeouts { 0 } else { 200 },
                    total_time_ms: backend_ms + 5,
                    backend_time_ms: Some(backend_ms),
                    last_error_reason: if timeouts { "Timeout" } else { "" },
                    ..Request::default()
                },
                || Origin::file("log"),
            );
        }
        t
    }

    #[test]
    fn apim050_timeout_below_latency() {
        let mut s = api_snapshot(Some(true), "");
        s.policies.push(doc("global", "<policies><inbound/><backend><forward-request timeout=\"30\" /></backend><outbound/><on-error/></policies>"));
        s.traffic = traffic(31_000, false);
        let f = fires("APIM050", &s);
        assert_eq!(f.subject.policy_scope, Some(PolicyScope::Global));
        assert_eq!(f.subject.operation.as_deref(), Some("create"));
        // 31,000 ms read back from its latency-histogram bucket (within 1%).
        assert_eq!(f.evidence[0].values.get("p99_backend_ms"), Some(&31_266.0));
        s.traffic = traffic(900, true);
        assert!(fires("APIM050", &s).summary.contains("timed out"));
        s.traffic = traffic(900, false);
        quiet("APIM050", &s);
    }

    #[test]
    fn apim051_retry_on_post() {
        let retry = |cond: &str| {
            format!(
                "<policies><inbound><base/></inbound><backend><retry {cond} count=\"3\" interval=\"1\"><forward-request /></retry></backend><outbound><base/></outbound><on-error><base/></on-error></policies>"
            )
        };
        let mut s = api_snapshot(Some(true), "");
        s.policies = vec![doc("api:orders", &retry("condition=\"@(true)\""))];
        let f = fires("APIM051", &s);
        assert!(f.summary.contains("POST"), "{}", f.summary);
        s.policies = vec![doc(
            "api:orders",
            &retry("condition=\"@(context.Response.StatusCode == 503)\""),
        )];
        quiet("APIM051", &s);
        s.policies = vec![doc("api:orders", &retry("condition=\"@(true)\""))];
        s.operations[0].method = Some("GET".into());
        quiet("APIM051", &s);
    }

    #[test]
    fn embedded_xml_points_at_the_json_line() {
        let mut s = one(
            "api:a",
            "<policies>\n<inbound><base/><rate-limit/></inbound></policies>",
        );
        s.policies[0].format = "xml".into();
        s.policies[0].origin = Origin::at_line("export.json", 12);
        let f = fires("APIM009", &s);
        let loc = f.location.unwrap();
        assert_eq!((loc.line, loc.column), (Some(12), None));
        assert!(
            f.summary.ends_with("(policy XML line 2, column 17)"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn ids_are_unique_and_lines_absolute() {
        let mut s = one(
            "api:a",
            "<policies>\n<inbound><base/><rate-limit/></inbound><backend><base/></backend><outbound><base/></outbound><on-error><base/></on-error></policies>",
        );
        s.policies[0].origin = Origin::at_line("export.json", 40);
        let all = lint(&s, Mode::Audit);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_ne!(all[0].id, all[1].id);
        assert!(
            all.iter()
                .all(|f| f.location.as_ref().unwrap().line == Some(41))
        );
        assert!(
            all[0].evidence[0]
                .excerpt
                .as_deref()
                .unwrap()
                .contains("<rate-limit/>")
        );
    }

    #[test]
    fn corpus_findings_match_the_known_broken_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/apim");
        if !dir.is_dir() {
            eprintln!("skipping: {} is absent", dir.display());
            return;
        }
        let mut s = Snapshot::default();
        let mut files: Vec<_> = std::fs::read_dir(dir.join("policies"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in &files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let mut d = doc("unknown", &std::fs::read_to_string(f).unwrap());
            d.origin = Origin::at_line(name, 1);
            s.policies.push(d);
        }
        let all = lint(&s, Mode::Audit);
        let by = |rule: &str| -> Vec<String> {
            all.iter()
                .filter(|f| f.rule.as_deref() == Some(rule))
                .map(|f| f.location.as_ref().unwrap().file.clone())
                .collect()
        };
        assert_eq!(
            by("APIM001"),
            [
                "samples__policies__Pre-authorize_requests_using_validate-jwt.policy.xml",
                "samples__policies__Random_load_balancer.policy.xml",
                "samples__policies__Send_context_information_to_the_backend_service.policy.xml",
                "snippets__examples__Filter_response_content_based_on_product_name.policy.xml",
            ]
        );
        assert_eq!(
            by("APIM002"),
            ["samples__policies__Hide_response_data_based_on_product_name.policy.xml"]
        );
        let typo = all
            .iter()
            .find(|f| {
                f.location
                    .as_ref()
                    .unwrap()
                    .file
                    .ends_with("invoke-darp-binding.xml")
            })
            .unwrap();
        assert!(
            typo.summary.contains("did you mean <invoke-dapr-binding>?"),
            "{}",
            typo.summary
        );
        // Scopes are unknown for loose files: no inheritance or scope findings.
        assert!(by("APIM020").is_empty() && by("APIM008").is_empty());
        // The ISO 8601 renewal-period of the REST spec example (§7.2).
        let example = dir.join(
            "json/transcribed/spec__apimanagement__2024-05-01__ApiManagementGetApiPolicy.json",
        );
        let snap = crate::collect::collect(&[example]).unwrap();
        let f = fires("APIM010", &snap);
        assert!(
            f.summary.contains("renewal-period") && f.summary.contains("ISO 8601"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn truncated_and_mangled_corpus_files_never_panic() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/apim/policies");
        if !dir.is_dir() {
            eprintln!("skipping: {} is absent", dir.display());
            return;
        }
        let mut s = Snapshot::default();
        for e in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            let chars: Vec<char> = text.chars().collect();
            for k in 1..8 {
                let cut = chars.len() * k / 8;
                let truncated: String = chars[..cut].iter().collect();
                let dropped: String = chars
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != cut)
                    .map(|(_, c)| *c)
                    .collect();
                s.policies.push(doc("api:a", &truncated));
                s.policies.push(doc("operation:a/b", &dropped));
            }
        }
        let all = lint(&s, Mode::Deny);
        assert!(all.iter().any(|f| f.rule.as_deref() == Some("APIM001")));
    }
}
