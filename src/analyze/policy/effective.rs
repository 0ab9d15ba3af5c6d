//! The effective policy of one operation: `<base />` resolved through
//! global → workspace → product → API → operation, section by section, with
//! `include-fragment` expanded where the fragment is known. Pure.
//!
//! Assumptions, stated where they matter: a scope without a policy
//! document, or a document without a section, inherits that section whole
//! (as if it held only `<base />`); with no global policy loaded, the APIM
//! default global policy (`<forward-request />` in `<backend>`) is assumed and
//! marked `implicit`; workspace policies are not placed (an API's workspace is
//! not in the snapshot).

use super::reader::{Element, ParsedPolicy, parse_policy};
use crate::model::{Origin, PolicyDoc, PolicyScope, Snapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    Inbound,
    Backend,
    Outbound,
    OnError,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Inbound,
        Section::Backend,
        Section::Outbound,
        Section::OnError,
    ];

    /// The element name: `inbound`, `backend`, `outbound`, `on-error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Inbound => "inbound",
            Section::Backend => "backend",
            Section::Outbound => "outbound",
            Section::OnError => "on-error",
        }
    }

    pub fn parse(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One policy statement in the effective policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub element: Element,
    /// The scope whose document holds it (`Fragment` for fragment content).
    pub scope: PolicyScope,
    pub section: Section,
    /// Inside `choose/when|otherwise`: runs only on some requests.
    pub conditional: bool,
    /// Inside another statement (not one of its section's top level).
    pub nested: bool,
    /// File and absolute line of the element.
    pub origin: Origin,
    /// Not written anywhere: the APIM default global `<forward-request />`,
    /// assumed because no global policy was loaded.
    pub implicit: bool,
}

/// Where `set-backend-service` sends a request.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendTarget {
    /// The `backend-id` or the `base-url` as written.
    pub target: String,
    pub kind: TargetKind,
    pub scope: PolicyScope,
    pub conditional: bool,
    pub origin: Origin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    BackendId,
    BaseUrl,
}

/// The policy an operation runs, per section in run order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EffectivePolicy {
    pub api: String,
    pub operation: String,
    /// Top-level statements per section (index = `Section as usize`).
    sections: [Vec<Placed>; 4],
    /// Every statement, nested ones included (choose/when/otherwise, retry,
    /// wait, return-response…), in document order.
    all: Vec<Placed>,
    /// The scopes that contributed, broad to narrow.
    pub scopes: Vec<PolicyScope>,
    /// Things a reader should know (several products, unknown fragments…).
    pub notes: Vec<String>,
}

impl EffectivePolicy {
    pub fn section(&self, s: Section) -> &[Placed] {
        self.sections.get(s as usize).map_or(&[], |v| v.as_slice())
    }

    /// Every statement with this element name, nested ones included.
    pub fn find<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Placed> + 'a {
        self.all.iter().filter(move |p| p.element.name == name)
    }

    /// Every statement, nested ones included, in run order.
    pub fn all(&self) -> &[Placed] {
        &self.all
    }

    /// The forward-request timeout in force, in seconds (`timeout`, or
    /// `timeout-ms`/1000; APIM default 300 when forward-request has none),
    /// and the scope that sets it. The first forward-request in the backend
    /// section that runs unconditionally wins, else the first one at all.
    pub fn forward_timeout(&self) -> Option<(f64, PolicyScope)> {
        let forwards: Vec<&Placed> = self
            .find("forward-request")
            .filter(|p| p.section == Section::Backend)
            .collect();
        let chosen = forwards
            .iter()
            .find(|p| !p.conditional)
            .or_else(|| forwards.first())?;
        Some((forward_timeout_secs(&chosen.element), chosen.scope.clone()))
    }

    /// `set-backend-service` targets, in run order.
    pub fn backend_targets(&self) -> Vec<BackendTarget> {
        self.find("set-backend-service")
            .filter_map(|p| {
                let (target, kind) =
                    match (p.element.attr("backend-id"), p.element.attr("base-url")) {
                        (Some(id), _) => (id, TargetKind::BackendId),
                        (None, Some(url)) => (url, TargetKind::BaseUrl),
                        (None, None) => return None,
                    };
                Some(BackendTarget {
                    target: target.to_string(),
                    kind,
                    scope: p.scope.clone(),
                    conditional: p.conditional,
                    origin: p.origin.clone(),
                })
            })
            .collect()
    }

    /// True when the backend section reaches a forward-request.
    pub fn forwards(&self) -> bool {
        self.find("forward-request")
            .any(|p| p.section == Section::Backend)
    }
}

/// The first forward-request timeout written in a policy document.
pub fn timeout_in_xml(xml: &str) -> Option<f64> {
    let parsed = parse_policy(xml);
    let root = parsed.root.as_ref()?;
    root.walk()
        .into_iter()
        .find(|e| e.name == "forward-request")
        .map(forward_timeout_secs)
}

/// Seconds of a `forward-request` element: `timeout`, `timeout-ms`/1000,
/// else the APIM default of 300 (also when the value is an expression).
pub fn forward_timeout_secs(e: &Element) -> f64 {
    if let Some(t) = e.attr("timeout").and_then(|v| v.trim().parse::<f64>().ok()) {
        return t;
    }
    if let Some(ms) = e
        .attr("timeout-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return ms / 1000.0;
    }
    300.0
}

/// A parsed document with the scope and origin it came from.
#[derive(Clone, Debug)]
pub struct LoadedPolicy {
    pub scope: PolicyScope,
    pub origin: Origin,
    /// The XML sits inside another file (a JSON string value): its own
    /// line breaks are not lines of `origin.file`.
    pub embedded: bool,
    pub parsed: ParsedPolicy,
}

impl LoadedPolicy {
    pub fn new(doc: &PolicyDoc) -> Self {
        LoadedPolicy {
            scope: doc.scope.clone(),
            origin: doc.origin.clone(),
            embedded: doc.format != "file",
            parsed: parse_policy(&doc.xml),
        }
    }

    /// Line in `origin.file` of a line inside the XML: offset from where
    /// the XML starts for a bare file, the value's own line when embedded.
    pub fn absolute_line(&self, line: u32) -> u32 {
        let start = self.origin.line.unwrap_or(1);
        if self.embedded {
            start
        } else {
            start.saturating_add(line.saturating_sub(1))
        }
    }

    fn origin_of(&self, e: &Element) -> Origin {
        Origin::at_line(self.origin.file.clone(), self.absolute_line(e.line))
    }

    /// The section element of a `<policies>` document.
    fn section(&self, s: Section) -> Option<&Element> {
        let root = self.parsed.root.as_ref()?;
        if root.name != "policies" {
            return None;
        }
        root.children_named(s.as_str()).next()
    }

    /// Children of a `<fragment>` root.
    fn fragment_body(&self) -> Option<&[Element]> {
        let root = self.parsed.root.as_ref()?;
        (root.name == "fragment").then_some(root.children.as_slice())
    }
}

/// The effective policy of `api`/`operation` in the snapshot. Parses only
/// the documents on that chain (and the fragments they include); to ask for
/// many operations, build a `PolicyIndex` once instead.
pub fn effective_policy(snapshot: &Snapshot, api: &str, operation: &str) -> EffectivePolicy {
    let mut notes = Vec::new();
    let chain = chain_of(snapshot, api, operation, &mut notes);
    let loaded: Vec<LoadedPolicy> = chain.into_iter().map(LoadedPolicy::new).collect();
    let refs: Vec<&LoadedPolicy> = loaded.iter().collect();
    finish_effective(&refs, &Fragments::new(snapshot), api, operation, notes)
}

/// Every policy document of a snapshot parsed once, for effective policies
/// of many operations (`effective_policy` parses the chain on every call).
pub struct PolicyIndex<'a> {
    snapshot: &'a Snapshot,
    /// Parallel to `snapshot.policies`.
    docs: Vec<LoadedPolicy>,
    fragments: Fragments<'a>,
}

impl<'a> PolicyIndex<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        PolicyIndex {
            snapshot,
            docs: snapshot.policies.iter().map(LoadedPolicy::new).collect(),
            fragments: Fragments::new(snapshot),
        }
    }

    /// The parsed documents, in `snapshot.policies` order.
    pub fn docs(&self) -> &[LoadedPolicy] {
        &self.docs
    }

    /// Same result as `effective_policy(snapshot, api, operation)`.
    pub fn effective(&self, api: &str, operation: &str) -> EffectivePolicy {
        let mut notes = Vec::new();
        let chain = chain_of(self.snapshot, api, operation, &mut notes);
        let refs: Vec<&LoadedPolicy> = chain
            .into_iter()
            .filter_map(|doc| {
                let i = self
                    .snapshot
                    .policies
                    .iter()
                    .position(|p| std::ptr::eq(p, doc))?;
                self.docs.get(i)
            })
            .collect();
        finish_effective(&refs, &self.fragments, api, operation, notes)
    }
}

fn finish_effective(
    chain: &[&LoadedPolicy],
    fragments: &Fragments<'_>,
    api: &str,
    operation: &str,
    mut notes: Vec<String>,
) -> EffectivePolicy {
    let mut eff = resolve(chain, fragments, &mut notes);
    eff.api = api.to_string();
    eff.operation = operation.to_string();
    eff.notes.extend(notes);
    eff
}

/// The documents that apply to an operation, broad to narrow: global,
/// product (the first by id when several), API, operation.
fn chain_of<'s>(
    snapshot: &'s Snapshot,
    api: &str,
    operation: &str,
    notes: &mut Vec<String>,
) -> Vec<&'s PolicyDoc> {
    let mut chain: Vec<&PolicyDoc> = Vec::new();
    if let Some(g) = snapshot.policy(&PolicyScope::Global) {
        chain.push(g);
    }
    let mut products: Vec<&str> = snapshot
        .products
        .iter()
        .filter(|p| p.apis.iter().any(|a| a.eq_ignore_ascii_case(api)))
        .map(|p| p.id.as_str())
        .collect();
    products.sort_unstable();
    products.dedup();
    let product_policies = snapshot
        .policies
        .iter()
        .filter(|p| matches!(p.scope, PolicyScope::Product(_)))
        .count();
    if products.is_empty() && product_policies > 0 {
        notes.push(format!(
            "{product_policies} product policies are loaded but no product lists API {api}; product policies are not part of this view"
        ));
    }
    if products.len() > 1 {
        notes.push(format!(
            "API {api} is in {} products ({}); the product policy that runs depends on the subscription used, product {} is assumed",
            products.len(),
            products.join(", "),
            products.first().copied().unwrap_or_default()
        ));
    }
    if let Some(p) = products.first()
        && let Some(doc) = find_doc(
            snapshot,
            |s| matches!(s, PolicyScope::Product(x) if x.eq_ignore_ascii_case(p)),
        )
    {
        chain.push(doc);
    }
    if let Some(doc) = find_doc(
        snapshot,
        |s| matches!(s, PolicyScope::Api(x) if x.eq_ignore_ascii_case(api)),
    ) {
        chain.push(doc);
    }
    if let Some(doc) = find_doc(
        snapshot,
        |s| matches!(s, PolicyScope::Operation(a, o) if a.eq_ignore_ascii_case(api) && o.eq_ignore_ascii_case(operation)),
    ) {
        chain.push(doc);
    }
    chain
}

fn find_doc(snapshot: &Snapshot, pred: impl Fn(&PolicyScope) -> bool) -> Option<&PolicyDoc> {
    snapshot.policies.iter().find(|p| pred(&p.scope))
}

/// Fragment documents by id, parsed on first use.
pub struct Fragments<'a> {
    docs: Vec<(&'a str, &'a PolicyDoc)>,
    parsed: std::cell::RefCell<Vec<(String, std::rc::Rc<LoadedPolicy>)>>,
}

impl<'a> Fragments<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        let docs = snapshot
            .policies
            .iter()
            .filter_map(|p| match &p.scope {
                PolicyScope::Fragment(id) => Some((id.as_str(), p)),
                _ => None,
            })
            .collect();
        Fragments {
            docs,
            parsed: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// True when a fragment with this id is loaded.
    pub fn known(&self, id: &str) -> bool {
        self.docs.iter().any(|(k, _)| k.eq_ignore_ascii_case(id))
    }

    fn get(&self, id: &str) -> Option<std::rc::Rc<LoadedPolicy>> {
        if let Some((_, l)) = self
            .parsed
            .borrow()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(id))
        {
            return Some(l.clone());
        }
        let (_, doc) = self.docs.iter().find(|(k, _)| k.eq_ignore_ascii_case(id))?;
        let l = std::rc::Rc::new(LoadedPolicy::new(doc));
        self.parsed.borrow_mut().push((id.to_string(), l.clone()));
        Some(l)
    }
}

/// Resolves `<base />` over an already-parsed chain (broad to narrow).
pub fn resolve(
    chain: &[&LoadedPolicy],
    fragments: &Fragments<'_>,
    notes: &mut Vec<String>,
) -> EffectivePolicy {
    let mut eff = EffectivePolicy {
        scopes: chain.iter().map(|l| l.scope.clone()).collect(),
        ..EffectivePolicy::default()
    };
    let has_global = chain
        .first()
        .is_some_and(|l| l.scope == PolicyScope::Global);
    for s in Section::ALL {
        let mut top = Vec::new();
        let ctx = Ctx {
            chain,
            fragments,
            default_global: !has_global,
        };
        expand_level(&ctx, chain.len(), s, notes, &mut top, &mut eff.all);
        if let Some(slot) = eff.sections.get_mut(s as usize) {
            *slot = top;
        }
    }
    notes.sort();
    notes.dedup();
    eff
}

/// The statements of section `s` at chain level `level` (exclusive upper
/// bound), with `<base/>` replaced by the level below.
struct Ctx<'c, 'f> {
    chain: &'c [&'c LoadedPolicy],
    fragments: &'c Fragments<'f>,
    /// No global policy loaded: assume APIM's default one.
    default_global: bool,
}

fn expand_level(
    ctx: &Ctx<'_, '_>,
    level: usize,
    s: Section,
    notes: &mut Vec<String>,
    out: &mut Vec<Placed>,
    all: &mut Vec<Placed>,
) {
    let Some(i) = level.checked_sub(1) else {
        if ctx.default_global && s == Section::Backend {
            let p = Placed {
                element: Element {
                    name: "forward-request".into(),
                    ..Element::default()
                },
                scope: PolicyScope::Global,
                section: s,
                conditional: false,
                nested: false,
                origin: Origin::file("(APIM default global policy)"),
                implicit: true,
            };
            all.push(p.clone());
            out.push(p);
        }
        return;
    };
    let Some(&doc) = ctx.chain.get(i) else {
        return;
    };
    let Some(section) = doc.section(s) else {
        // No such section in the document: inherit the parent's whole.
        expand_level(ctx, i, s, notes, out, all);
        return;
    };
    for child in &section.children {
        if child.name == "base" {
            expand_level(ctx, i, s, notes, out, all);
            continue;
        }
        place(child, doc, s, ctx.fragments, notes, out, all, 0);
    }
}

#[allow(clippy::too_many_arguments)]
fn place(
    e: &Element,
    doc: &LoadedPolicy,
    s: Section,
    fragments: &Fragments<'_>,
    notes: &mut Vec<String>,
    out: &mut Vec<Placed>,
    all: &mut Vec<Placed>,
    depth: usize,
) {
    let p = Placed {
        element: expand_fragments(e, fragments, depth),
        scope: doc.scope.clone(),
        section: s,
        conditional: false,
        nested: false,
        origin: doc.origin_of(e),
        implicit: false,
    };
    all.push(p.clone());
    out.push(p);
    flatten(e, doc, s, false, fragments, notes, all, depth);
    if e.name != "include-fragment" || depth > 8 {
        return;
    }
    let Some(id) = e.attr("fragment-id") else {
        return;
    };
    match fragments.get(id) {
        Some(frag) => {
            if let Some(body) = frag.fragment_body() {
                for c in body {
                    place(c, &frag, s, fragments, notes, out, all, depth + 1);
                }
            }
        }
        None => notes.push(format!(
            "fragment {id} is included but not loaded; its policies are not part of this view"
        )),
    }
}

/// A copy of `e` where nested `include-fragment` elements are followed by
/// the fragment's content (so statements inside `choose` see it too).
fn expand_fragments(e: &Element, fragments: &Fragments<'_>, depth: usize) -> Element {
    if depth > 8
        || !e
            .walk()
            .iter()
            .skip(1)
            .any(|d| d.name == "include-fragment")
    {
        return e.clone();
    }
    let mut copy = Element {
        children: Vec::with_capacity(e.children.len()),
        ..e.clone()
    };
    copy.children.clear();
    for c in &e.children {
        copy.children
            .push(expand_fragments(c, fragments, depth + 1));
        if c.name == "include-fragment"
            && let Some(frag) = c.attr("fragment-id").and_then(|id| fragments.get(id))
            && let Some(body) = frag.fragment_body()
        {
            for b in body {
                copy.children
                    .push(expand_fragments(b, fragments, depth + 1));
            }
        }
    }
    copy
}

/// Adds every element nested in `e` to `all`, each with the file and line
/// of the document it is written in (fragment content included); nesting
/// inside `choose` makes descendants conditional.
#[allow(clippy::too_many_arguments)]
fn flatten(
    e: &Element,
    doc: &LoadedPolicy,
    s: Section,
    conditional: bool,
    fragments: &Fragments<'_>,
    notes: &mut Vec<String>,
    all: &mut Vec<Placed>,
    depth: usize,
) {
    let cond = conditional || e.name == "when" || e.name == "otherwise";
    for c in &e.children {
        all.push(Placed {
            element: expand_fragments(c, fragments, depth),
            scope: doc.scope.clone(),
            section: s,
            conditional: cond,
            nested: true,
            origin: doc.origin_of(c),
            implicit: false,
        });
        flatten(c, doc, s, cond, fragments, notes, all, depth);
        if c.name == "include-fragment" && depth <= 8 {
            let Some(id) = c.attr("fragment-id") else {
                continue;
            };
            match fragments.get(id) {
                Some(frag) => {
                    for b in frag.fragment_body().unwrap_or_default() {
                        all.push(Placed {
                            element: expand_fragments(b, fragments, depth + 1),
                            scope: frag.scope.clone(),
                            section: s,
                            conditional: cond,
                            nested: true,
                            origin: frag.origin_of(b),
                            implicit: false,
                        });
                        flatten(b, &frag, s, cond, fragments, notes, all, depth + 1);
                    }
                }
                None => notes.push(format!(
                    "fragment {id} is included but not loaded; its policies are not part of this view"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Product;

    fn doc(scope: &str, xml: &str) -> PolicyDoc {
        PolicyDoc {
            scope: PolicyScope::parse(scope).unwrap(),
            xml: xml.into(),
            format: "file".into(),
            origin: Origin::at_line(format!("{scope}.xml"), 1),
        }
    }

    const GLOBAL: &str = r#"<policies>
  <inbound><ip-filter action="allow"><address>10.0.0.1</address></ip-filter></inbound>
  <backend><forward-request timeout="60" /></backend>
  <outbound />
  <on-error />
</policies>"#;

    const API: &str = r#"<policies>
  <inbound>
    <base />
    <choose>
      <when condition="@(true)"><set-backend-service backend-id="orders-b" /></when>
      <otherwise><include-fragment fragment-id="auth" /></otherwise>
    </choose>
    <set-header name="x" exists-action="override"><value>1</value></set-header>
  </inbound>
  <backend><base /></backend>
</policies>"#;

    fn snapshot() -> Snapshot {
        Snapshot {
            policies: vec![
                doc("global", GLOBAL),
                doc("api:orders", API),
                doc(
                    "operation:orders/create",
                    "<policies><inbound><base/><set-backend-service base-url=\"https://x\"/></inbound><backend><retry condition=\"@(true)\" count=\"2\" interval=\"1\"><forward-request timeout-ms=\"2500\"/></retry></backend></policies>",
                ),
                doc(
                    "operation:orders/drop",
                    "<policies><inbound><base/></inbound><backend></backend></policies>",
                ),
                doc(
                    "fragment:auth",
                    "<fragment><check-header name=\"k\" failed-check-httpcode=\"401\" failed-check-error-message=\"no\" ignore-case=\"true\"/></fragment>",
                ),
                doc(
                    "product:gold",
                    "<policies><inbound><rate-limit calls=\"5\" renewal-period=\"60\"/><base/></inbound></policies>",
                ),
            ],
            products: vec![
                Product {
                    id: "gold".into(),
                    apis: vec!["orders".into()],
                    ..Product::default()
                },
                Product {
                    id: "silver".into(),
                    apis: vec!["orders".into()],
                    ..Product::default()
                },
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn base_runs_the_parent_section_in_place() {
        let eff = effective_policy(&snapshot(), "orders", "get");
        let names: Vec<&str> = eff
            .section(Section::Inbound)
            .iter()
            .map(|p| p.element.name.as_str())
            .collect();
        assert_eq!(names, ["rate-limit", "ip-filter", "choose", "set-header"]);
        assert_eq!(eff.section(Section::Inbound)[1].scope, PolicyScope::Global);
        assert_eq!(
            eff.section(Section::Inbound)[1].origin,
            Origin::at_line("global.xml", 2)
        );
        assert_eq!(eff.forward_timeout(), Some((60.0, PolicyScope::Global)));
        assert!(eff.forwards());
        assert!(
            eff.notes.iter().any(|n| n.contains("2 products")),
            "{:?}",
            eff.notes
        );
    }

    #[test]
    fn nested_statements_and_fragments_are_found_and_conditional() {
        let eff = effective_policy(&snapshot(), "orders", "get");
        let targets = eff.backend_targets();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].target, "orders-b");
        assert_eq!(targets[0].kind, TargetKind::BackendId);
        assert!(targets[0].conditional);
        assert_eq!(targets[0].origin.line, Some(5));
        let checks: Vec<&Placed> = eff.find("check-header").collect();
        assert_eq!(checks.len(), 1);
        assert!(checks[0].conditional);
        assert_eq!(checks[0].scope, PolicyScope::Fragment("auth".into()));
        assert_eq!(checks[0].origin, Origin::at_line("fragment:auth.xml", 1));
        assert!(eff.find("set-header").all(|p| !p.conditional));
    }

    /// `all()` without its nested statements is each section's top level,
    /// in order: what the `policies` tool shows from the typed query.
    #[test]
    fn all_without_nested_is_each_sections_top_level() {
        let snap = snapshot();
        for (api, op) in [("orders", "get"), ("orders", "create")] {
            let eff = effective_policy(&snap, api, op);
            assert!(eff.all().iter().any(|p| p.nested), "{op}: has nesting");
            for s in Section::ALL {
                let top: Vec<&Placed> = eff
                    .all()
                    .iter()
                    .filter(|p| !p.nested && p.section == s)
                    .collect();
                let want: Vec<&Placed> = eff.section(s).iter().collect();
                assert_eq!(top, want, "{op} {}", s.as_str());
            }
        }
    }

    #[test]
    fn operation_timeout_and_missing_forward() {
        let snap = snapshot();
        let eff = effective_policy(&snap, "orders", "create");
        assert_eq!(
            eff.forward_timeout(),
            Some((
                2.5,
                PolicyScope::Operation("orders".into(), "create".into())
            ))
        );
        assert_eq!(
            eff.backend_targets().last().unwrap().kind,
            TargetKind::BaseUrl
        );
        let eff = effective_policy(&snap, "orders", "drop");
        assert!(!eff.forwards());
        let other = effective_policy(&snap, "users", "get");
        assert!(
            other
                .notes
                .iter()
                .any(|n| n.contains("no product lists API users")),
            "{:?}",
            other.notes
        );
        assert_eq!(eff.forward_timeout(), None);
    }

    #[test]
    fn index_gives_the_same_answer() {
        let snap = snapshot();
        let index = PolicyIndex::new(&snap);
        assert_eq!(index.docs().len(), snap.policies.len());
        for (api, op) in [
            ("orders", "get"),
            ("orders", "create"),
            ("orders", "drop"),
            ("users", "x"),
        ] {
            assert_eq!(index.effective(api, op), effective_policy(&snap, api, op));
        }
    }

    #[test]
    fn default_global_forward_is_assumed_when_no_global_policy() {
        let snap = Snapshot {
            policies: vec![doc(
                "api:a",
                "<policies><backend><base/></backend></policies>",
            )],
            ..Snapshot::default()
        };
        let eff = effective_policy(&snap, "a", "op");
        assert!(eff.forwards());
        assert_eq!(eff.forward_timeout(), Some((300.0, PolicyScope::Global)));
        assert!(eff.section(Section::Backend)[0].implicit);
        let snap = Snapshot {
            policies: vec![doc(
                "api:a",
                "<policies><backend><set-variable name=\"a\" value=\"b\"/></backend></policies>",
            )],
            ..Snapshot::default()
        };
        assert!(!effective_policy(&snap, "a", "op").forwards());
    }
}
