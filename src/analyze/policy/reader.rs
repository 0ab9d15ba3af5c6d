//! Reading policy XML the way real files are written: an expression-aware
//! pre-pass masks C# expressions (`@( … )`, `@{ … }`) that would break a
//! strict parser, quick-xml builds a small element tree, and every oddity
//! (unbalanced expression, rootless or bare snippet, custom entity, broken
//! XML) becomes a located `PolicyProblem` instead of an error.
//!
//! Pure: no I/O. Entities other than the five predefined ones and character
//! references are never expanded, so an entity bomb costs nothing.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// One XML element, with attribute values and text decoded and expressions
/// restored to their original text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Text content (text and CDATA directly inside), trimmed.
    pub text: String,
    /// 1-based position of the `<` inside the XML text given to the reader.
    pub line: u32,
    pub column: u32,
}

impl Element {
    /// The value of an attribute (names compared exactly, as XML does).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Direct children with this name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// This element and every descendant, depth first, document order.
    pub fn walk(&self) -> Vec<&Element> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            out.push(e);
            for c in e.children.iter().rev() {
                stack.push(c);
            }
        }
        out
    }
}

/// A C# policy expression as written (`@(...)` or `@{...}`), entity
/// references decoded, so escaped and raw forms read the same.
#[derive(Clone, Debug, PartialEq)]
pub struct Expression {
    pub text: String,
    /// `@{ … }` (a statement block that must return) rather than `@( … )`.
    pub block: bool,
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not well-formed XML even after masking expressions.
    Malformed,
    /// `@(` or `@{` without its closing bracket before the end of the file.
    UnbalancedExpression,
    /// Several top-level elements: read inside a synthetic `#snippet` root.
    RootlessSnippet,
    /// One root that is neither `<policies>` nor `<fragment>`.
    BareSnippet,
    /// A DOCTYPE or an entity reference that is not predefined: never expanded.
    CustomEntity,
}

impl ProblemKind {
    /// True when the document cannot be used as a policy as it stands.
    pub fn is_malformed(self) -> bool {
        matches!(
            self,
            ProblemKind::Malformed
                | ProblemKind::UnbalancedExpression
                | ProblemKind::RootlessSnippet
                | ProblemKind::CustomEntity
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PolicyProblem {
    pub kind: ProblemKind,
    pub message: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedPolicy {
    /// The root element; `#snippet` when the text had several top-level
    /// elements; `None` when the XML is broken.
    pub root: Option<Element>,
    pub problems: Vec<PolicyProblem>,
    pub expressions: Vec<Expression>,
}

impl ParsedPolicy {
    /// Malformed: not usable as a policy document (see `ProblemKind::is_malformed`).
    pub fn is_malformed(&self) -> bool {
        self.root.is_none() || self.problems.iter().any(|p| p.kind.is_malformed())
    }
}

/// Name of the synthetic root wrapped around a rootless snippet.
pub const SNIPPET_ROOT: &str = "#snippet";

const PH_OPEN: char = '\u{E000}';
/// Deepest element nesting read; deeper input is reported, not followed,
/// so nothing downstream recurses without bound.
const MAX_DEPTH: usize = 256;
/// Unbalanced expressions reported before the pre-pass stops looking.
const MAX_UNBALANCED: usize = 8;
const PH_CLOSE: char = '\u{E001}';

/// Reads one policy document. Never fails: problems are reported inside.
pub fn parse_policy(xml: &str) -> ParsedPolicy {
    let xml = xml.strip_prefix('\u{FEFF}').unwrap_or(xml);
    let lines = LineIndex::new(xml);
    let mut out = ParsedPolicy::default();
    let masked = mask(xml, &lines, &mut out);
    build_tree(&masked, &lines, &mut out);
    out
}

/// Byte offsets of line starts, for offset → (line, column).
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(&self, offset: usize) -> (u32, u32) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        (to_u32(line), to_u32(column))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The masked text and how its offsets map back to the original.
struct Masked {
    text: String,
    /// (masked offset, original offset) at every point the two shift.
    map: Vec<(usize, usize)>,
}

impl Masked {
    fn original(&self, masked: usize) -> usize {
        let i = self.map.partition_point(|&(m, _)| m <= masked);
        match i.checked_sub(1).and_then(|i| self.map.get(i)) {
            Some(&(m, o)) => o + (masked - m),
            None => masked,
        }
    }
}

/// The pre-pass (formats.md §4.5): comments, CDATA, processing
/// instructions and DOCTYPE pass through untouched; each expression is
/// replaced by a placeholder `\u{E000}N\u{E001}`.
fn mask(xml: &str, lines: &LineIndex<'_>, out: &mut ParsedPolicy) -> Masked {
    let b = xml.as_bytes();
    let mut text = String::with_capacity(xml.len());
    let mut map = vec![(0, 0)];
    let mut copied = 0;
    let mut i = 0;
    // Each failed scan reads to the end of the input: stop trying after a
    // few, so a hostile file cannot make the pre-pass quadratic.
    let mut unbalanced = 0;
    while let Some(rel) = memchr::memchr2(b'<', b'@', b.get(i..).unwrap_or_default()) {
        i += rel;
        let rest = b.get(i..).unwrap_or_default();
        if rest.starts_with(b"<!--") {
            i = skip_past(b, i + 4, b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            i = skip_past(b, i + 9, b"]]>");
        } else if rest.starts_with(b"<?") {
            i = skip_past(b, i + 2, b"?>");
        } else if rest.starts_with(b"<!DOCTYPE") {
            i = skip_doctype(b, i);
        } else if (rest.starts_with(b"@(") || rest.starts_with(b"@{"))
            && unbalanced < MAX_UNBALANCED
        {
            match scan_expression(xml, i) {
                Some((end, decoded)) => {
                    text.push_str(xml.get(copied..i).unwrap_or_default());
                    let (line, column) = lines.position(i);
                    let n = out.expressions.len();
                    out.expressions.push(Expression {
                        text: decoded,
                        block: rest.starts_with(b"@{"),
                        line,
                        column,
                    });
                    text.push(PH_OPEN);
                    text.push_str(&n.to_string());
                    text.push(PH_CLOSE);
                    map.push((text.len(), end));
                    copied = end;
                    i = end;
                }
                None => {
                    unbalanced += 1;
                    let (line, column) = lines.position(i);
                    out.problems.push(PolicyProblem {
                        kind: ProblemKind::UnbalancedExpression,
                        message: format!(
                            "expression `{}` is never closed: no matching `{}` before the end of the file",
                            String::from_utf8_lossy(rest.get(..2).unwrap_or_default()),
                            if rest.starts_with(b"@(") { ")" } else { "}" }
                        ),
                        line,
                        column,
                    });
                    i += 2;
                }
            }
        } else {
            i += 1;
        }
    }
    text.push_str(xml.get(copied..).unwrap_or_default());
    Masked { text, map }
}

/// Index just past `end` searched from `from`, or the end of the input.
fn skip_past(b: &[u8], from: usize, end: &[u8]) -> usize {
    match memchr::memmem::find(b.get(from..).unwrap_or_default(), end) {
        Some(p) => from + p + end.len(),
        None => b.len(),
    }
}

/// Past a `<!DOCTYPE …>`, including an internal subset in `[ … ]`.
fn skip_doctype(b: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    for (j, &c) in b.iter().enumerate().skip(from) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'[') => depth += 1,
            (None, b']') => depth = depth.saturating_sub(1),
            (None, b'>') if depth == 0 => return j + 1,
            _ => {}
        }
    }
    b.len()
}

/// Reads one logical character at `j`: a predefined or numeric entity
/// reference counts as the character it stands for.
fn logical_char(s: &str, j: usize) -> Option<(char, usize)> {
    let rest = s.get(j..)?;
    let c = rest.chars().next()?;
    if c == '&' {
        for (ent, ch) in [
            ("&quot;", '"'),
            ("&apos;", '\''),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&amp;", '&'),
        ] {
            if rest.starts_with(ent) {
                return Some((ch, ent.len()));
            }
        }
        if let Some((ch, len)) = char_ref(rest) {
            return Some((ch, len));
        }
    }
    Some((c, c.len_utf8()))
}

/// `&#NN;` / `&#xHH;` at the start of `s`: the character and the length.
fn char_ref(s: &str) -> Option<(char, usize)> {
    let body = s.strip_prefix("&#")?;
    let semi = body.find(';')?;
    if semi > 8 {
        return None;
    }
    let num = body.get(..semi)?;
    let code = match num.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => num.parse().ok()?,
    };
    Some((char::from_u32(code)?, semi + 3))
}

#[derive(Clone, Copy, PartialEq)]
enum Lex {
    Code,
    Str,
    Verbatim,
    LineComment,
    BlockComment,
}

/// From `@` at `start`, finds the end (exclusive) of the expression and
/// its decoded text. Counts only the opener's bracket kind and skips C#
/// string, verbatim, interpolated and char literals (formats.md §4.5).
fn scan_expression(s: &str, start: usize) -> Option<(usize, String)> {
    let b = s.as_bytes();
    let (open, close) = match b.get(start + 1)? {
        b'(' => ('(', ')'),
        _ => ('{', '}'),
    };
    let block = open == '{';
    let mut decoded = String::from(if block { "@{" } else { "@(" });
    let mut depth = 1usize;
    let mut j = start + 2;
    let mut lex = Lex::Code;
    let (mut last, mut last2) = (open, '@');
    while let Some((c, len)) = logical_char(s, j) {
        j += len;
        decoded.push(c);
        match lex {
            Lex::Code => match c {
                '"' => {
                    lex = if last == '@' || (last == '$' && last2 == '@') {
                        Lex::Verbatim
                    } else {
                        Lex::Str
                    };
                }
                '\'' => {
                    // Only `'x'` and `'\x'` are char literals.
                    let (c1, l1) = logical_char(s, j)?;
                    let (c2, l2) = logical_char(s, j + l1)?;
                    if c1 == '\\' {
                        if let Some((c3, l3)) = logical_char(s, j + l1 + l2)
                            && c3 == '\''
                        {
                            decoded.extend([c1, c2, c3]);
                            j += l1 + l2 + l3;
                        }
                    } else if c1 != '\'' && c2 == '\'' {
                        decoded.extend([c1, c2]);
                        j += l1 + l2;
                    }
                }
                '/' if block && logical_char(s, j).is_some_and(|(n, _)| n == '/') => {
                    lex = Lex::LineComment;
                }
                '/' if logical_char(s, j).is_some_and(|(n, _)| n == '*') => {
                    lex = Lex::BlockComment;
                    decoded.push('*');
                    j += 1;
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return Some((j, decoded));
                    }
                }
                _ => {}
            },
            Lex::Str => match c {
                '\\' => {
                    if let Some((n, l)) = logical_char(s, j) {
                        decoded.push(n);
                        j += l;
                    }
                }
                '"' => lex = Lex::Code,
                _ => {}
            },
            Lex::Verbatim => {
                if c == '"' {
                    match logical_char(s, j) {
                        Some(('"', l)) => {
                            decoded.push('"');
                            j += l;
                        }
                        _ => lex = Lex::Code,
                    }
                }
            }
            Lex::LineComment => {
                if c == '\n' {
                    lex = Lex::Code;
                }
            }
            Lex::BlockComment => {
                if c == '/' && last == '*' {
                    lex = Lex::Code;
                }
            }
        }
        last2 = last;
        last = c;
    }
    None
}

/// Replaces placeholders by the expressions' original text.
fn restore(s: &str, exprs: &[Expression]) -> String {
    if !s.contains(PH_OPEN) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 32);
    let mut rest = s;
    while let Some(p) = rest.find(PH_OPEN) {
        out.push_str(rest.get(..p).unwrap_or_default());
        let after = rest.get(p + PH_OPEN.len_utf8()..).unwrap_or_default();
        match after.find(PH_CLOSE) {
            Some(q) => {
                let n: Option<usize> = after.get(..q).and_then(|d| d.parse().ok());
                match n.and_then(|n| exprs.get(n)) {
                    Some(e) => out.push_str(&e.text),
                    None => out.push_str(after.get(..q).unwrap_or_default()),
                }
                rest = after.get(q + PH_CLOSE.len_utf8()..).unwrap_or_default();
            }
            None => {
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes predefined entities and character references; anything else is
/// kept as written and reported (never expanded).
fn unescape(raw: &str, custom: &mut Vec<String>) -> String {
    if !raw.contains('&') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut j = 0;
    while let Some(p) = raw.get(j..).and_then(|r| r.find('&')) {
        out.push_str(raw.get(j..j + p).unwrap_or_default());
        j += p;
        match logical_char(raw, j) {
            Some((c, len)) if len > 1 => {
                out.push(c);
                j += len;
            }
            _ => {
                let rest = raw.get(j..).unwrap_or_default();
                if let Some(semi) = rest.find(';').filter(|&s| s < 64) {
                    custom.push(rest.get(1..semi).unwrap_or_default().to_string());
                }
                out.push('&');
                j += 1;
            }
        }
    }
    out.push_str(raw.get(j..).unwrap_or_default());
    out
}

fn build_tree(masked: &Masked, lines: &LineIndex<'_>, out: &mut ParsedPolicy) {
    let mut reader = Reader::from_str(&masked.text);
    let config = reader.config_mut();
    config.check_comments = true;
    config.check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut roots: Vec<Element> = Vec::new();
    let mut custom: Vec<(String, usize)> = Vec::new();
    let pos = |masked_offset: u64| {
        let m = usize::try_from(masked_offset).unwrap_or(usize::MAX);
        lines.position(masked.original(m))
    };
    loop {
        let before = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(err) => {
                let (line, column) = pos(reader.error_position());
                out.problems.push(PolicyProblem {
                    kind: ProblemKind::Malformed,
                    message: format!("not well-formed XML: {err}"),
                    line,
                    column,
                });
                return;
            }
        };
        match event {
            Event::Start(e) => {
                let el = match start_element(&e, before, &pos, &out.expressions, &mut custom) {
                    Ok(el) => el,
                    Err(p) => {
                        out.problems.push(p);
                        return;
                    }
                };
                if stack.len() >= MAX_DEPTH {
                    out.problems.push(PolicyProblem {
                        kind: ProblemKind::Malformed,
                        message: format!(
                            "elements nested deeper than {MAX_DEPTH} levels at <{}>; no policy needs that",
                            el.name
                        ),
                        line: el.line,
                        column: el.column,
                    });
                    return;
                }
                stack.push(el);
            }
            Event::Empty(e) => {
                let el = match start_element(&e, before, &pos, &out.expressions, &mut custom) {
                    Ok(el) => el,
                    Err(p) => {
                        out.problems.push(p);
                        return;
                    }
                };
                attach(el, &mut stack, &mut roots);
            }
            Event::End(_) => {
                if let Some(mut el) = stack.pop() {
                    el.text = restore(el.text.trim(), &out.expressions);
                    attach(el, &mut stack, &mut roots);
                }
            }
            Event::Text(t) => {
                let mut names = Vec::new();
                let raw = t.xml10_content();
                let text = unescape(&raw, &mut names);
                for n in names {
                    custom.push((n, usize::try_from(before).unwrap_or(0)));
                }
                push_text(&text, &mut stack, before, &pos, out);
            }
            Event::CData(t) => {
                let raw = t.xml10_content();
                push_text(&raw, &mut stack, before, &pos, out);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => {
                        let name = r.xml10_content();
                        match name.as_ref() {
                            "lt" => Some("<".into()),
                            "gt" => Some(">".into()),
                            "amp" => Some("&".into()),
                            "quot" => Some("\"".into()),
                            "apos" => Some("'".into()),
                            _ => {
                                custom
                                    .push((name.to_string(), usize::try_from(before).unwrap_or(0)));
                                None
                            }
                        }
                    }
                };
                if let Some(s) = resolved {
                    push_text(&s, &mut stack, before, &pos, out);
                }
            }
            Event::DocType(_) => {
                let (line, column) = pos(before);
                out.problems.push(PolicyProblem {
                    kind: ProblemKind::CustomEntity,
                    message: "DOCTYPE declarations are not allowed in a policy; its entities are not expanded".into(),
                    line,
                    column,
                });
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.first() {
        out.problems.push(PolicyProblem {
            kind: ProblemKind::Malformed,
            message: format!(
                "not well-formed XML: <{}> opened at line {} is never closed",
                open.name, open.line
            ),
            line: open.line,
            column: open.column,
        });
        return;
    }
    for (name, at) in custom.iter().take(5) {
        let (line, column) = pos(u64::try_from(*at).unwrap_or(0));
        out.problems.push(PolicyProblem {
            kind: ProblemKind::CustomEntity,
            message: format!("entity reference &{name}; is not predefined and is not expanded; write the text itself or use a named value"),
            line,
            column,
        });
    }
    match roots.len() {
        0 => out.problems.push(PolicyProblem {
            kind: ProblemKind::Malformed,
            message: "no root element: the file holds no policy".into(),
            line: 1,
            column: 1,
        }),
        1 => {
            let root = roots.pop().unwrap_or_default();
            if root.name != "policies" && root.name != "fragment" {
                out.problems.push(PolicyProblem {
                    kind: ProblemKind::BareSnippet,
                    message: format!(
                        "root element is <{}>, not <policies> or <fragment>: a snippet to paste into a section",
                        root.name
                    ),
                    line: root.line,
                    column: root.column,
                });
            }
            out.root = Some(root);
        }
        _ => {
            let second = roots.get(1).map_or((1, 1), |e| (e.line, e.column));
            out.problems.push(PolicyProblem {
                kind: ProblemKind::RootlessSnippet,
                message: format!(
                    "{} top-level elements and no <policies> root: a rootless snippet (read inside a synthetic root)",
                    roots.len()
                ),
                line: second.0,
                column: second.1,
            });
            out.root = Some(Element {
                name: SNIPPET_ROOT.into(),
                line: roots.first().map_or(1, |e| e.line),
                column: roots.first().map_or(1, |e| e.column),
                children: roots,
                ..Element::default()
            });
        }
    }
}

fn attach(el: Element, stack: &mut [Element], roots: &mut Vec<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => roots.push(el),
    }
}

fn push_text(
    text: &str,
    stack: &mut [Element],
    at: u64,
    pos: &impl Fn(u64) -> (u32, u32),
    out: &mut ParsedPolicy,
) {
    match stack.last_mut() {
        Some(parent) => parent.text.push_str(text),
        None if !text.trim().is_empty() => {
            let lead = text.len() - text.trim_start().len();
            let (line, column) = pos(at + u64::try_from(lead).unwrap_or(0));
            if !out
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::Malformed)
            {
                out.problems.push(PolicyProblem {
                    kind: ProblemKind::Malformed,
                    message: "text outside the root element".into(),
                    line,
                    column,
                });
            }
        }
        None => {}
    }
}

fn start_element(
    e: &BytesStart<'_>,
    at: u64,
    pos: &impl Fn(u64) -> (u32, u32),
    exprs: &[Expression],
    custom: &mut Vec<(String, usize)>,
) -> Result<Element, PolicyProblem> {
    let (line, column) = pos(at);
    let mut el = Element {
        name: e.name().as_ref().to_string(),
        line,
        column,
        ..Element::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|err| PolicyProblem {
            kind: ProblemKind::Malformed,
            message: format!("not well-formed XML in <{}>: {err}", el.name),
            line,
            column,
        })?;
        let mut names = Vec::new();
        let value = restore(&unescape(&a.value, &mut names), exprs);
        for n in names {
            custom.push((n, usize::try_from(at).unwrap_or(0)));
        }
        el.attrs.push((a.key.as_ref().to_string(), value));
    }
    Ok(el)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir() -> Option<std::path::PathBuf> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/apim/policies");
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!("skipping: {} is absent", dir.display());
            None
        }
    }

    const RAW: &str = r#"<policies>
    <inbound>
        <base />
        <choose>
            <when condition="@(context.Request.Headers.GetValueOrDefault("x","") == "a" && 1 < 2)">
                <set-header name="h" exists-action="override"><value>@{ var s = "}"; return s; }</value></set-header>
            </when>
        </choose>
    </inbound>
</policies>"#;

    const ESCAPED: &str = r#"<policies>
    <inbound>
        <base />
        <choose>
            <when condition="@(context.Request.Headers.GetValueOrDefault(&quot;x&quot;,&quot;&quot;) == &quot;a&quot; &amp;&amp; 1 &lt; 2)">
                <set-header name="h" exists-action="override"><value>@{ var s = "}"; return s; }</value></set-header>
            </when>
        </choose>
    </inbound>
</policies>"#;

    #[test]
    fn raw_and_escaped_expressions_give_the_same_tree() {
        let raw = parse_policy(RAW);
        let esc = parse_policy(ESCAPED);
        assert!(raw.problems.is_empty(), "{:?}", raw.problems);
        assert!(esc.problems.is_empty(), "{:?}", esc.problems);
        assert_eq!(raw.root, esc.root);
        let when = &raw.root.as_ref().unwrap().children[0].children[1].children[0];
        assert_eq!(when.name, "when");
        assert_eq!(
            when.attr("condition"),
            Some(r#"@(context.Request.Headers.GetValueOrDefault("x","") == "a" && 1 < 2)"#)
        );
        assert_eq!((when.line, when.column), (5, 13));
        let value = &when.children[0].children[0];
        assert_eq!(value.text, r#"@{ var s = "}"; return s; }"#);
        assert_eq!(raw.expressions.len(), 2);
        assert_eq!(
            (raw.expressions[0].line, raw.expressions[0].column),
            (5, 30)
        );
        assert!(raw.expressions[1].block);
    }

    #[test]
    fn string_literal_kinds_are_skipped() {
        let xml = r#"<policies><inbound><set-variable name="a" value="@(@"a "" ) b" + $"{x["k"]})" + 'x' + '\'' + ')')" /><set-variable name="b" value="@{ // it's a ) comment
            return "(" ; }" /></inbound></policies>"#;
        let p = parse_policy(xml);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.expressions.len(), 2);
        assert!(p.expressions[0].text.ends_with("+ ')')"));
        let inbound = &p.root.unwrap().children[0];
        assert_eq!(inbound.children.len(), 2);
        assert!(
            inbound.children[1]
                .attr("value")
                .unwrap()
                .ends_with("return \"(\" ; }")
        );
    }

    #[test]
    fn only_the_openers_bracket_kind_counts() {
        // A `{` inside a string-free `@(` does not need closing.
        let p = parse_policy(
            r#"<policies><inbound><set-variable name="a" value="@(new [] { 1 }.Length > 0 ? "{" : "x")" /></inbound></policies>"#,
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.expressions.len(), 1);
    }

    #[test]
    fn unbalanced_expression_is_reported_with_position() {
        let p = parse_policy(
            "<policies>\n  <inbound>\n    <set-variable name=\"a\" value=\"@(context.Request\" />\n  </inbound>\n</policies>",
        );
        let un: Vec<_> = p
            .problems
            .iter()
            .filter(|x| x.kind == ProblemKind::UnbalancedExpression)
            .collect();
        assert_eq!(un.len(), 1, "{:?}", p.problems);
        assert_eq!((un[0].line, un[0].column), (3, 35));
        assert!(p.is_malformed());
    }

    #[test]
    fn many_unbalanced_expressions_stay_linear() {
        let xml = format!(
            "<policies><inbound>{}</inbound></policies>",
            "@( ".repeat(200_000)
        );
        let p = parse_policy(&xml);
        let n = p
            .problems
            .iter()
            .filter(|x| x.kind == ProblemKind::UnbalancedExpression)
            .count();
        assert_eq!(n, MAX_UNBALANCED);
        assert!(p.is_malformed());
    }

    #[test]
    fn absurd_nesting_is_reported_not_followed() {
        let xml = format!(
            "{}{}",
            "<retry>".repeat(100_000),
            "</retry>".repeat(100_000)
        );
        let p = parse_policy(&xml);
        assert!(p.is_malformed());
        assert!(p.root.is_none());
        assert!(
            p.problems[0].message.contains("nested deeper than 256"),
            "{:?}",
            p.problems
        );
        let ok = format!("{}{}", "<retry>".repeat(200), "</retry>".repeat(200));
        assert!(!parse_policy(&ok).is_malformed());
    }

    #[test]
    fn a_balanced_policy_is_not_malformed() {
        let p = parse_policy("<policies><inbound><base /></inbound></policies>");
        assert!(!p.is_malformed());
        assert!(p.problems.is_empty());
        assert!(p.expressions.is_empty());
    }

    #[test]
    fn bom_comments_and_declaration_are_accepted() {
        let p = parse_policy(
            "\u{FEFF}<!-- note -->\n<?xml version=\"1.0\"?>\n<policies><inbound><![CDATA[@( not an expression]]></inbound></policies>",
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert!(p.expressions.is_empty());
        assert_eq!(p.root.as_ref().unwrap().line, 3);
    }

    #[test]
    fn rootless_snippet_gets_a_synthetic_root() {
        let p = parse_policy(
            "<set-variable name=\"a\" value=\"1\" />\n<choose><when condition=\"@(true)\"/></choose>",
        );
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].kind, ProblemKind::RootlessSnippet);
        assert_eq!(p.problems[0].line, 2);
        let root = p.root.unwrap();
        assert_eq!(root.name, SNIPPET_ROOT);
        assert_eq!(root.children.len(), 2);
    }

    #[test]
    fn bare_snippet_is_reported_but_not_malformed() {
        let p = parse_policy("<choose><when condition=\"@(true)\"><base/></when></choose>");
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].kind, ProblemKind::BareSnippet);
        assert!(!p.is_malformed());
        assert_eq!(p.root.unwrap().name, "choose");
    }

    #[test]
    fn broken_xml_reports_line_and_column() {
        let p = parse_policy("<policies>\n  <inbound>\n    <base />\n  </outbound>\n</policies>");
        assert!(p.is_malformed());
        assert!(p.root.is_none());
        assert_eq!(p.problems[0].kind, ProblemKind::Malformed);
        assert_eq!(p.problems[0].line, 4, "{:?}", p.problems);
        let p = parse_policy("<policies>\n  <inbound>\n");
        assert!(p.is_malformed());
        assert!(
            p.problems[0].message.contains("never closed"),
            "{:?}",
            p.problems
        );
    }

    #[test]
    fn entity_bomb_is_never_expanded() {
        let mut xml =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", i - 1)
            };
            xml.push_str(&format!(
                " <!ENTITY lol{i} \"{}\">\n",
                format!("&{prev};").repeat(10)
            ));
        }
        xml.push_str("]>\n<policies><inbound><set-header name=\"x\" exists-action=\"override\"><value>&lol9;</value></set-header></inbound></policies>");
        let p = parse_policy(&xml);
        assert!(p.is_malformed());
        assert!(
            p.problems
                .iter()
                .any(|x| x.kind == ProblemKind::CustomEntity && x.message.contains("&lol9;")),
            "{:?}",
            p.problems
        );
        let value = &p.root.unwrap().children[0].children[0].children[0];
        assert_eq!(value.text, "");
    }

    #[test]
    fn predefined_and_numeric_entities_are_decoded() {
        let p = parse_policy(
            "<policies><inbound><set-header name=\"a&amp;b\" exists-action=\"override\"><value>x&#x9;&lt;y&#65;</value></set-header></inbound></policies>",
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let h = &p.root.unwrap().children[0].children[0];
        assert_eq!(h.attr("name"), Some("a&b"));
        assert_eq!(h.children[0].text, "x\t<yA");
    }

    #[test]
    fn corpus_only_the_four_broken_files_are_malformed() {
        let Some(dir) = corpus_dir() else { return };
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 154);
        let mut malformed = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            let p = parse_policy(&text);
            if p.is_malformed() {
                malformed.push((
                    f.file_name().unwrap().to_string_lossy().to_string(),
                    p.problems.clone(),
                ));
            }
        }
        let names: Vec<&str> = malformed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "samples__policies__Pre-authorize_requests_using_validate-jwt.policy.xml",
                "samples__policies__Random_load_balancer.policy.xml",
                "samples__policies__Send_context_information_to_the_backend_service.policy.xml",
                "snippets__examples__Filter_response_content_based_on_product_name.policy.xml",
            ],
            "{malformed:#?}"
        );
    }
}
