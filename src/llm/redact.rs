//! The one redaction step everything sent to a model passes through.
//! Secrets (Authorization headers, bearer tokens, JWTs, subscription and API
//! keys, SAS signatures, connection-string keys, `key=`/`secret=` values) are
//! replaced by `[SECRET-n]`; with masking on, hostnames and IPv4 addresses
//! become `[HOST-n]` and `[IP-n]`. The map is kept so masked names in the
//! model's answer are restored; secrets are never put back. Pure.

use regex::Regex;
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

struct Patterns {
    /// Whole-match secrets: bearer tokens, JWTs.
    tokens: Regex,
    /// `name: value` / `name=value` pairs whose value is secret (group 2).
    pairs: Regex,
    hosts: Regex,
    ips: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        tokens: Regex::new(
            r"(?i)\bbearer\s+[a-z0-9._~+/=-]{8,}|\beyJ[a-zA-Z0-9_-]{5,}\.[a-zA-Z0-9_-]{5,}\.[a-zA-Z0-9_-]{5,}",
        )
        .unwrap_or_else(|e| panic!("token pattern: {e}")),
        pairs: Regex::new(
            r#"(?i)\b(authorization|ocp-apim-subscription-key|subscription-key|x-api-key|x-functions-key|api[-_]?key|access[-_]?token|refresh[-_]?token|client[-_]?secret|password|pwd|secret|token|accountkey|sharedaccesskey|sig|code|key)("?\s*[:=]\s*"?)([^\s"'&,;<>]{4,})"#,
        )
        .unwrap_or_else(|e| panic!("pair pattern: {e}")),
        hosts: Regex::new(r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|net|org|io|dev|app|cloud|internal|local|corp|example|azure|windows|microsoft|[a-z]{2})\b")
            .unwrap_or_else(|e| panic!("host pattern: {e}")),
        ips: Regex::new(r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b")
            .unwrap_or_else(|e| panic!("ip pattern: {e}")),
    })
}

/// File-name endings that look like hosts but are not.
const NOT_HOSTS: &[&str] = &[
    ".json", ".xml", ".gz", ".yaml", ".yml", ".csv", ".ndjson", ".rs", ".md", ".txt", ".log",
];

impl Redactor {
    /// `mask`: also mask hostnames and IPs.
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
        let p = patterns();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        // Tokens first, then name/value pairs on what is left.
        for m in p.tokens.find_iter(text) {
            out.push_str(&text[last..m.start()]);
            out.push_str(&self.placeholder(Kind::Secret, m.as_str()));
            last = m.end();
        }
        out.push_str(&text[last..]);
        let text = out;
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for c in p.pairs.captures_iter(&text) {
            let (Some(whole), Some(name), Some(sep), Some(value)) =
                (c.get(0), c.get(1), c.get(2), c.get(3))
            else {
                continue;
            };
            if value.as_str().starts_with("[SECRET-") {
                continue;
            }
            out.push_str(&text[last..whole.start()]);
            out.push_str(name.as_str());
            out.push_str(sep.as_str());
            out.push_str(&self.placeholder(Kind::Secret, value.as_str()));
            last = whole.end();
        }
        out.push_str(&text[last..]);
        if !self.mask {
            return out;
        }
        let text = out;
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in p.ips.find_iter(&text) {
            out.push_str(&text[last..m.start()]);
            out.push_str(&self.placeholder(Kind::Ip, m.as_str()));
            last = m.end();
        }
        out.push_str(&text[last..]);
        let text = out;
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in p.hosts.find_iter(&text) {
            let h = m.as_str();
            let lower = h.to_ascii_lowercase();
            if NOT_HOSTS.iter().any(|e| lower.ends_with(e)) || !h.contains('.') {
                continue;
            }
            out.push_str(&text[last..m.start()]);
            out.push_str(&self.placeholder(Kind::Host, h));
            last = m.end();
        }
        out.push_str(&text[last..]);
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_removed_and_never_restored() {
        let mut r = Redactor::new(false);
        let text = "GET https://gw.contoso.net/orders?subscription-key=abcd1234ef&x=1 \
                    Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl \
                    Ocp-Apim-Subscription-Key: 0123456789abcdef \
                    DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0a2V5PT0=;";
        let out = r.redact(text);
        for secret in [
            "abcd1234ef",
            "eyJhbGci",
            "0123456789abcdef",
            "c2VjcmV0a2V5PT0=",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("[SECRET-1]"), "{out}");
        assert!(
            out.contains("gw.contoso.net"),
            "hosts stay without --mask: {out}"
        );
        assert_eq!(r.restore(&out), out, "secrets are not put back");
        assert!(r.counts().0 >= 4, "{:?}", r.counts());
    }

    #[test]
    fn masking_hides_hosts_and_ips_reversibly() {
        let mut r = Redactor::new(true);
        let out = r.redact("backend https://10.1.2.4/api and orders-app.kindsea.azurecontainerapps.io, file orders-api.xml");
        assert!(
            !out.contains("10.1.2.4") && !out.contains("kindsea"),
            "{out}"
        );
        assert!(
            out.contains("orders-api.xml"),
            "file names are not hosts: {out}"
        );
        let answer = format!("the NSG blocks {} ", "[IP-1]");
        assert_eq!(r.restore(&answer), "the NSG blocks 10.1.2.4 ");
        // The same value gets the same placeholder.
        let again = r.redact("10.1.2.4");
        assert_eq!(again, "[IP-1]");
    }
}
