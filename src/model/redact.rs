//! The one redaction every output and every model prompt passes through.
//!
//! It works on the credential, not on the label: the secret part of an
//! `Authorization` value after its scheme (`Bearer`, `Basic`,
//! `SharedAccessSignature`, `SharedKey`…), a password in a URL
//! (`https://user:PASSWORD@host`), a PEM private key block, a JWT, a token
//! with a well-known prefix (`sk-`, `AKIA`, `ghp_`, `xoxb-`, `AIza`…), the
//! value of a secret-named header, query parameter, JSON field, connection
//! string part or policy attribute (`subscription-key`, `password`,
//! `passwd`, `pass`, `pwd`, `AccountKey`, `sig`, `client_secret`…), also
//! URL-encoded (`Bearer%20…`). Each is replaced by `[SECRET-n]`; the same
//! value gets the same number within one `Redactor`, and secrets are never
//! put back. APIM named-value references (`{{backend-key}}`) and policy
//! expressions (`@(...)`) are references, not secrets, and stay.
//!
//! With masking on (`--mask`, the model path only), hostnames and IPv4
//! addresses also become `[HOST-n]` and `[IP-n]`, restored in the model's
//! answer.
//!
//! Surfaces call it once, where their output leaves: `scrub` for text,
//! `scrub_value` for JSON documents (diagnose, lint, SARIF), `Scrub` for the
//! model types a surface keeps and draws from (the TUI's diagnosis, the
//! daemon's findings before they become alerts). Pure; lives in `model` so
//! any layer may call it without importing a surface.

use regex::{Captures, Regex};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Secret,
    Host,
    Ip,
}

/// Placeholders handed out so far, with what they stand for.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    mask: bool,
    map: Vec<(Kind, String, String)>,
}

/// How one pattern's match is judged and which group is the secret.
struct Rule {
    re: Regex,
    /// The capture group holding the credential (0: the whole match).
    group: usize,
    /// Extra check on the credential (shape, not label).
    accept: fn(&str) -> bool,
}

fn rx(p: &str) -> Regex {
    Regex::new(p).unwrap_or_else(|e| panic!("redaction pattern {p}: {e}"))
}

fn any(_: &str) -> bool {
    true
}

/// A value that looks like a credential rather than a word of prose: a
/// digit or a token character in it, or long.
fn tokenish(v: &str) -> bool {
    v.len() >= 8
        && (v.len() >= 24
            || v.bytes()
                .any(|b| b.is_ascii_digit() || b"._~+/=%-".contains(&b)))
}

/// `Basic` credentials are base64 of `user:password`.
fn basic_credential(v: &str) -> bool {
    let v = v.trim_end_matches("%3D").trim_end_matches("%3d");
    decode_base64(v).is_some_and(|d| {
        d.contains(&b':') && d.iter().all(|b| (0x20..0x7f).contains(b) || *b >= 0x80)
    })
}

/// Not a secret: an empty value, a placeholder already, a named-value
/// reference, a policy expression, or a literal that says "no value".
fn placeholder_like(v: &str) -> bool {
    let t = v.trim_matches(|c| c == '"' || c == '\'');
    t.is_empty()
        || t.starts_with("[SECRET-")
        || t.starts_with("{{")
        || t.starts_with("@(")
        || t.starts_with("@{")
        || t.starts_with("$(")
        || t.starts_with("${")
        || t.starts_with("***")
        || t.starts_with('<')
        || [
            "null",
            "none",
            "true",
            "false",
            "undefined",
            "redacted",
            "[redacted]",
        ]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
}

/// Secret-bearing names (headers, query parameters, JSON fields,
/// connection-string parts, policy attributes).
const NAMES: &str = r"ocp-apim-subscription-key|subscription-key|subscription_key|x-api-key|api[-_]?key|x-functions-key|x-ms-[a-z-]*key|access[-_]?token|refresh[-_]?token|id[-_]?token|session[-_]?token|security[-_]?token|auth[-_]?token|client[-_]?secret|app[-_]?secret|aws_secret_access_key|secret[-_]?key|private[-_]?key|secret|password|passwd|passphrase|pass|pwd|accountkey|sharedaccesskey|shared_access_key|primarykey|secondarykey|primary_key|secondary_key|sig|signature";

fn rules() -> &'static [Rule] {
    static R: OnceLock<Vec<Rule>> = OnceLock::new();
    R.get_or_init(|| {
        vec![
            // An `Authorization` value: the credential after the scheme
            // word (or the whole value when there is no scheme).
            Rule {
                re: rx(
                    r#"(?i)\b(?:proxy-)?authorization(?:["']?\s*[:=]\s*["']?|%3a(?:%20|\+)*|=)\s*(?:(?:bearer|basic|digest|negotiate|ntlm|sharedaccesssignature|sharedkey(?:lite)?|hmac-sha256|aws4-hmac-sha256|token|apikey|key)(?:\s+|%20|\+))?([^\s"'<>\\,]{4,})"#,
                ),
                group: 1,
                accept: any,
            },
            // Scheme words outside a header: `Bearer <token>` (also
            // URL-encoded), `Basic <base64 user:pass>`, SAS and SharedKey.
            Rule {
                re: rx(r"(?i)\bbearer(?:\s+|%20|\+)([A-Za-z0-9._~+/=%-]{8,})"),
                group: 1,
                accept: tokenish,
            },
            Rule {
                re: rx(r"(?i)\bbasic(?:\s+|%20|\+)([A-Za-z0-9+/]{6,}(?:={0,2}|(?:%3D){0,2}))"),
                group: 1,
                accept: basic_credential,
            },
            Rule {
                re: rx(r#"(?i)\bsharedaccesssignature(?:\s+|%20|\+)([^\s"'<>\\]{8,})"#),
                group: 1,
                accept: any,
            },
            Rule {
                re: rx(r#"(?i)\bsharedkey(?:lite)?(?:\s+|%20|\+)([^\s"'<>\\:]+:[A-Za-z0-9+/=%]{8,})"#),
                group: 1,
                accept: any,
            },
            // JWTs anywhere (the signature may be empty: `alg: none`).
            Rule {
                re: rx(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
                group: 0,
                accept: any,
            },
            // A password in a URL's user information.
            Rule {
                re: rx(r#"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/?#@"'<>\\]*:([^\s/?#@"'<>\\]+)@"#),
                group: 1,
                accept: any,
            },
            // The same, URL-encoded (`https%3A%2F%2Fuser%3Apw%40host`).
            Rule {
                re: rx(r#"(?i)\b[a-z][a-z0-9+.-]*%3a%2f%2f[^\s:/?#@"'<>\\%]*%3a([^\s/?#@"'<>\\]+?)%40"#),
                group: 1,
                accept: any,
            },
            // Secret headers and query parameters set in policy XML.
            Rule {
                re: rx(&format!(
                    r#"(?is)<set-(?:header|query-parameter)\s+name\s*=\s*["'](?:{NAMES}|authorization)["'][^>]*>\s*<value>([^<]+)</value>"#
                )),
                group: 1,
                accept: |v| !placeholder_like(v.trim()) && !v.contains("[SECRET-"),
            },
            // Tokens with a well-known prefix.
            Rule {
                re: rx(
                    r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|sk_live_[0-9A-Za-z]{16,}|rk_live_[0-9A-Za-z]{16,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|npm_[A-Za-z0-9]{36}|hf_[A-Za-z0-9]{30,})",
                ),
                group: 0,
                accept: any,
            },
            // A Slack incoming-webhook URL is itself a credential.
            Rule {
                re: rx(r"hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/([A-Za-z0-9]{16,})"),
                group: 1,
                accept: any,
            },
            // `name: value`, `name=value`, `"name": "value"`, `name="value"`.
            Rule {
                re: rx(&format!(
                    r#"(?i)(?:^|[^a-z0-9_-])(?:{NAMES})(?:["']?\s*[:=]\s*["']?|%3d)([^\s"'&,;<>\\]{{3,}})"#
                )),
                group: 1,
                accept: |v| !placeholder_like(v),
            },
            // Generic names only where they are query parameters or
            // connection-string parts: `?key=`, `&code=` (Functions), `;token=`.
            Rule {
                re: rx(r#"(?i)[?&;](?:key|code|token|auth|sv_sig|se_sig)=([^\s"'&,;<>\\#]{6,})"#),
                group: 1,
                accept: |v| !placeholder_like(v),
            },
        ]
    })
}

struct Masks {
    hosts: Regex,
    ips: Regex,
}

fn masks() -> &'static Masks {
    static M: OnceLock<Masks> = OnceLock::new();
    M.get_or_init(|| Masks {
        hosts: rx(
            r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|net|org|io|dev|app|cloud|internal|local|corp|example|azure|windows|microsoft|[a-z]{2})\b",
        ),
        ips: rx(r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b"),
    })
}

/// File-name endings that look like hosts but are not.
const NOT_HOSTS: &[&str] = &[
    ".json", ".xml", ".gz", ".yaml", ".yml", ".csv", ".ndjson", ".rs", ".md", ".txt", ".log",
];

/// A PEM private key: from its BEGIN line to its END line, or to the end
/// of the base64 that follows when the END line is missing (a cut file).
fn pem_blocks(text: &str) -> Vec<(usize, usize)> {
    static BEGIN: OnceLock<Regex> = OnceLock::new();
    let begin = BEGIN.get_or_init(|| rx(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"));
    static END: OnceLock<Regex> = OnceLock::new();
    let end = END.get_or_init(|| rx(r"-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"));
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(b) = begin.find_at(text, from) {
        let stop = match end.find_at(text, b.end()) {
            Some(e) => e.end(),
            None => {
                let rest = &text[b.end()..];
                let body = rest
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric()
                            || matches!(c, '+' | '/' | '=' | ':' | ',' | '-' | '\\')
                            || c.is_whitespace())
                    })
                    .unwrap_or(rest.len());
                b.end() + body
            }
        };
        out.push((b.start(), stop));
        from = stop;
    }
    out
}

impl Redactor {
    /// `mask`: also mask hostnames and IPs (the model path's `--mask`).
    pub fn new(mask: bool) -> Redactor {
        Redactor {
            mask,
            map: Vec::new(),
        }
    }

    fn placeholder(&mut self, kind: Kind, original: &str) -> String {
        if let Some((_, p, _)) = self
            .map
            .iter()
            .find(|(k, _, o)| *k == kind && o == original)
        {
            return p.clone();
        }
        let n = self.map.iter().filter(|(k, _, _)| *k == kind).count() + 1;
        let p = match kind {
            Kind::Secret => format!("[SECRET-{n}]"),
            Kind::Host => format!("[HOST-{n}]"),
            Kind::Ip => format!("[IP-{n}]"),
        };
        self.map.push((kind, p.clone(), original.to_string()));
        p
    }

    /// The text with secrets (and, with masking, hosts and IPs) replaced.
    pub fn redact(&mut self, text: &str) -> String {
        let mut text = self.redact_pem(text);
        for rule in rules() {
            if !rule.re.is_match(&text) {
                continue;
            }
            text = self.replace(&text, rule);
        }
        if self.mask {
            text = self.mask_hosts(&text);
        }
        text
    }

    fn redact_pem(&mut self, text: &str) -> String {
        if !text.contains("PRIVATE KEY") {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (s, e) in pem_blocks(text) {
            out.push_str(&text[last..s]);
            out.push_str(&self.placeholder(Kind::Secret, &text[s..e]));
            last = e;
        }
        out.push_str(&text[last..]);
        out
    }

    fn replace(&mut self, text: &str, rule: &Rule) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for c in rule.re.captures_iter(text) {
            let Some(secret) = pick(&c, rule.group) else {
                continue;
            };
            let v = secret.as_str();
            if v.starts_with("[SECRET-") || !(rule.accept)(v) {
                continue;
            }
            out.push_str(&text[last..secret.start()]);
            out.push_str(&self.placeholder(Kind::Secret, v));
            last = secret.end();
        }
        out.push_str(&text[last..]);
        out
    }

    fn mask_hosts(&mut self, text: &str) -> String {
        let m = masks();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for x in m.ips.find_iter(text) {
            out.push_str(&text[last..x.start()]);
            out.push_str(&self.placeholder(Kind::Ip, x.as_str()));
            last = x.end();
        }
        out.push_str(&text[last..]);
        let text = out;
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for x in m.hosts.find_iter(&text) {
            let h = x.as_str();
            let lower = h.to_ascii_lowercase();
            if NOT_HOSTS.iter().any(|e| lower.ends_with(e)) || !h.contains('.') {
                continue;
            }
            out.push_str(&text[last..x.start()]);
            out.push_str(&self.placeholder(Kind::Host, h));
            last = x.end();
        }
        out.push_str(&text[last..]);
        out
    }

    /// Every string in a JSON document redacted in place (object keys are
    /// names, not values, and stay).
    pub fn redact_value(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => {
                let r = self.redact(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact_value(x)),
            Value::Object(o) => o.values_mut().for_each(|x| self.redact_value(x)),
            _ => {}
        }
    }

    /// Masked hosts and IPs put back; secrets stay redacted.
    pub fn restore(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Longest placeholders first so `[HOST-1]` never eats `[HOST-10]`.
        let mut entries: Vec<&(Kind, String, String)> = self
            .map
            .iter()
            .filter(|(k, _, _)| *k != Kind::Secret)
            .collect();
        entries.sort_by_key(|(_, p, _)| std::cmp::Reverse(p.len()));
        for (_, p, o) in entries {
            out = out.replace(p.as_str(), o);
        }
        out
    }

    /// How many values were replaced, per kind: (secrets, hosts, ips).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |k: Kind| self.map.iter().filter(|(x, _, _)| *x == k).count();
        (n(Kind::Secret), n(Kind::Host), n(Kind::Ip))
    }
}

fn pick<'t>(c: &Captures<'t>, group: usize) -> Option<regex::Match<'t>> {
    c.get(group)
}

/// Secrets in a text replaced (no masking): what every surface prints.
pub fn scrub(text: &str) -> String {
    Redactor::new(false).redact(text)
}

/// Secrets in every string of a JSON document replaced, numbered across
/// the document.
pub fn scrub_value(v: &mut Value) {
    Redactor::new(false).redact_value(v);
}

/// A model value with the secrets in its strings replaced: through its
/// JSON form, so every string field is covered, including fields added
/// later. Unchanged (and not copied) when it holds no secret.
pub trait Scrub: Serialize + DeserializeOwned + Sized {
    /// Strings a JSON round trip cannot carry (a NaN number) fall back to
    /// this: redact the well-known text fields by hand.
    fn scrub_fields(&mut self, r: &mut Redactor);

    fn scrub_with(&mut self, r: &mut Redactor) {
        let Ok(mut v) = serde_json::to_value(&*self) else {
            self.scrub_fields(r);
            return;
        };
        let before = v.clone();
        r.redact_value(&mut v);
        if v == before {
            return;
        }
        match serde_json::from_value::<Self>(v) {
            Ok(x) => *self = x,
            Err(_) => self.scrub_fields(r),
        }
    }

    fn scrub(&mut self) {
        self.scrub_with(&mut Redactor::new(false));
    }
}

fn s(x: &mut String, r: &mut Redactor) {
    let v = r.redact(x);
    if v != *x {
        *x = v;
    }
}

fn o(x: &mut Option<String>, r: &mut Redactor) {
    if let Some(v) = x.as_mut() {
        s(v, r);
    }
}

impl Scrub for super::Finding {
    fn scrub_fields(&mut self, r: &mut Redactor) {
        s(&mut self.summary, r);
        for v in [
            &mut self.subject.service,
            &mut self.subject.product,
            &mut self.subject.api,
            &mut self.subject.operation,
            &mut self.subject.backend,
            &mut self.subject.nsg,
            &mut self.subject.rule,
            &mut self.subject.metric,
        ] {
            o(v, r);
        }
        for e in &mut self.evidence {
            s(&mut e.text, r);
            o(&mut e.excerpt, r);
            for rec in &mut e.records {
                o(&mut rec.url, r);
                o(&mut rec.backend_url, r);
                o(&mut rec.backend_id, r);
                o(&mut rec.last_error_message, r);
                o(&mut rec.last_error_reason, r);
            }
        }
    }
}

impl Scrub for super::Diagnosis {
    fn scrub_fields(&mut self, r: &mut Redactor) {
        for f in &mut self.findings {
            f.scrub_fields(r);
        }
        for st in &mut self.stories {
            s(&mut st.title, r);
            s(&mut st.narrative, r);
            for x in &mut st.suspects {
                o(&mut x.diff, r);
                o(&mut x.caller, r);
                o(&mut x.resource_id, r);
            }
        }
        for e in &mut self.backend_map {
            for route in e.configured.iter_mut().chain(e.observed.iter_mut()) {
                s(&mut route.backend, r);
                o(&mut route.url, r);
            }
        }
        for b in &mut self.backends {
            s(&mut b.backend, r);
        }
        for p in &mut self.proposals {
            s(&mut p.title, r);
            p.steps.iter_mut().for_each(|x| s(x, r));
            p.preconditions.iter_mut().for_each(|x| s(x, r));
            if let super::Action::Manual { steps } = &mut p.action {
                steps.iter_mut().for_each(|x| s(x, r));
            }
        }
        for p in &mut self.loaded.problems {
            s(&mut p.message, r);
        }
    }
}

/// Standard base64 (padding optional); None when it is not base64.
fn decode_base64(t: &str) -> Option<Vec<u8>> {
    let t = t.trim_end_matches('=');
    if t.is_empty() || t.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(t.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in t.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
