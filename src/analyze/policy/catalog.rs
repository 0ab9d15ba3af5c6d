//! What is known about each policy element (formats.md §4.3–4.4): the
//! sections it may sit in, whether misplacing it is an error or only a
//! warning, the scopes it may be used at and its required attributes or
//! children. Data only, plus lookups.

/// Section bits.
pub const I: u8 = 1;
pub const B: u8 = 2;
pub const O: u8 = 4;
pub const E: u8 = 8;
pub const ALL: u8 = I | B | O | E;

pub struct ElementSpec {
    pub name: &'static str,
    /// Sections where the element is allowed (bits `I`, `B`, `O`, `E`).
    pub sections: u8,
    /// Misplacement is documented and undisputed (an error); otherwise a
    /// warning (sources disagree).
    pub placement_error: bool,
    /// Scopes as letters `g w p a o`; misuse is an error only for the
    /// elements §4.4 names (rate-limit, quota, cross-domain).
    pub scopes: &'static str,
    /// Each entry is one requirement: one of the names must be present. A
    /// name starting with `<` is a child element, else an attribute.
    pub required: &'static [&'static [&'static str]],
}

const fn spec(
    name: &'static str,
    sections: u8,
    placement_error: bool,
    scopes: &'static str,
    required: &'static [&'static [&'static str]],
) -> ElementSpec {
    ElementSpec {
        name,
        sections,
        placement_error,
        scopes,
        required,
    }
}

pub static ELEMENTS: &[ElementSpec] = &[
    spec("forward-request", B, true, "gwpao", &[]),
    spec(
        "set-backend-service",
        I | B,
        false,
        "gwpao",
        &[&["base-url", "backend-id"]],
    ),
    spec(
        "rate-limit",
        I,
        true,
        "pao",
        &[&["calls"], &["renewal-period"]],
    ),
    spec(
        "rate-limit-by-key",
        I,
        true,
        "gwpao",
        &[&["calls"], &["renewal-period"], &["counter-key"]],
    ),
    spec(
        "quota",
        I,
        true,
        "p",
        &[&["calls", "bandwidth"], &["renewal-period"]],
    ),
    spec(
        "quota-by-key",
        I,
        true,
        "gwpao",
        &[
            &["counter-key"],
            &["renewal-period"],
            &["calls", "bandwidth"],
        ],
    ),
    spec(
        "validate-jwt",
        I,
        true,
        "gwpao",
        &[&["header-name", "query-parameter-name", "token-value"]],
    ),
    spec(
        "validate-azure-ad-token",
        I,
        true,
        "gpao",
        &[&["<client-application-ids"]],
    ),
    spec(
        "ip-filter",
        I,
        true,
        "gwpao",
        &[&["action"], &["<address", "<address-range"]],
    ),
    spec(
        "cors",
        I,
        true,
        "gwpao",
        &[&["<allowed-origins"], &["<allowed-headers"]],
    ),
    spec(
        "check-header",
        I,
        true,
        "gpao",
        &[
            &["name"],
            &["failed-check-httpcode"],
            &["failed-check-error-message"],
            &["ignore-case"],
        ],
    ),
    spec("rewrite-uri", I, true, "gpao", &[&["template"]]),
    spec("proxy", I, false, "gpao", &[&["url"]]),
    spec("cross-domain", I, true, "g", &[]),
    spec(
        "authentication-basic",
        I,
        false,
        "gpao",
        &[&["username"], &["password"]],
    ),
    spec(
        "authentication-managed-identity",
        I | O,
        false,
        "gpao",
        &[&["resource"]],
    ),
    spec(
        "authentication-certificate",
        I,
        false,
        "gpao",
        &[&["thumbprint", "certificate-id", "body"]],
    ),
    spec(
        "azure-openai-token-limit",
        I,
        false,
        "gwpao",
        &[
            &["counter-key"],
            &["tokens-per-minute", "token-quota"],
            &["estimate-prompt-tokens"],
        ],
    ),
    spec(
        "llm-token-limit",
        I,
        false,
        "gwpao",
        &[
            &["counter-key"],
            &["tokens-per-minute", "token-quota"],
            &["estimate-prompt-tokens"],
        ],
    ),
    spec(
        "cache-lookup",
        I,
        true,
        "gwpao",
        &[&["vary-by-developer"], &["vary-by-developer-groups"]],
    ),
    spec("cache-store", O, true, "gwpao", &[&["duration"]]),
    spec("jsonp", O, true, "gwpao", &[&["callback-parameter-name"]]),
    spec(
        "validate-status-code",
        O | E,
        false,
        "gpao",
        &[&["unspecified-status-code-action"]],
    ),
    spec("mock-response", I | O | E, false, "gpao", &[]),
    spec(
        "xml-to-json",
        I | O | E,
        false,
        "gwpao",
        &[&["apply"], &["kind"]],
    ),
    spec("json-to-xml", I | O | E, false, "gwpao", &[&["apply"]]),
    spec("redirect-content-urls", I | O, false, "gwpao", &[]),
    spec("set-body", I | O | B, false, "gwpao", &[]),
    spec("wait", I | O | B, false, "gwpao", &[]),
    spec("trace", I | O | B, false, "gpao", &[&["source"]]),
    spec("set-method", I | E, false, "gpao", &[]),
    spec("set-query-parameter", I | B, false, "gwpao", &[&["name"]]),
    spec(
        "retry",
        ALL,
        false,
        "gwpao",
        &[&["condition"], &["count"], &["interval"]],
    ),
    spec("return-response", ALL, false, "gpao", &[]),
    spec(
        "send-request",
        ALL,
        false,
        "gpao",
        &[&["response-variable-name"]],
    ),
    spec("choose", ALL, false, "gpao", &[&["<when"]]),
    spec("set-status", ALL, false, "gpao", &[&["code"], &["reason"]]),
    spec("log-to-eventhub", ALL, false, "gpao", &[&["logger-id"]]),
    spec("send-one-way-request", ALL, false, "gwpao", &[]),
    spec(
        "limit-concurrency",
        ALL,
        false,
        "gwpao",
        &[&["key"], &["max-count"]],
    ),
    spec("include-fragment", ALL, false, "gwpao", &[&["fragment-id"]]),
    spec("set-header", ALL, false, "gwpao", &[&["name"]]),
    spec(
        "set-variable",
        ALL,
        false,
        "gwpao",
        &[&["name"], &["value"]],
    ),
    spec("emit-metric", ALL, false, "gwpao", &[&["name"]]),
    spec(
        "find-and-replace",
        ALL,
        false,
        "gwpao",
        &[&["from"], &["to"]],
    ),
    spec("cache-lookup-value", ALL, false, "gwpao", &[&["key"]]),
    spec("cache-store-value", ALL, false, "gwpao", &[&["key"]]),
    spec("cache-remove-value", ALL, false, "gwpao", &[&["key"]]),
    // Policy toolkit (secondary source): placement is only a warning.
    spec("azure-openai-emit-token-metric", I, false, "gwpao", &[]),
    spec("llm-emit-token-metric", I, false, "gwpao", &[]),
    spec("azure-openai-semantic-cache-lookup", I, false, "gwpao", &[]),
    spec("llm-semantic-cache-lookup", I, false, "gwpao", &[]),
    spec("llm-content-safety", I, false, "gwpao", &[]),
    spec("validate-client-certificate", I, false, "gwpao", &[]),
    spec("validate-odata-request", I, false, "gwpao", &[]),
    spec("validate-parameters", I, false, "gwpao", &[]),
    spec("azure-openai-semantic-cache-store", O, false, "gwpao", &[]),
    spec("llm-semantic-cache-store", O, false, "gwpao", &[]),
    spec("validate-headers", O | E, false, "gwpao", &[]),
    spec("validate-content", I | O | E, false, "gwpao", &[]),
    spec("xsl-transform", I | O | E, false, "gwpao", &[]),
    spec("invoke-dapr-binding", I | O | E, false, "gwpao", &[]),
    spec("publish-to-dapr", I | O | E, false, "gwpao", &[]),
    spec("send-service-bus-message", I | O | E, false, "gwpao", &[]),
    spec("get-authorization-context", I | B | O, false, "gwpao", &[]),
    // Seen in real files.
    spec("validate-graphql-request", ALL, false, "gwpao", &[]),
    spec("set-graphql-resolver", ALL, false, "gwpao", &[]),
    spec("http-data-source", ALL, false, "gwpao", &[]),
    spec("sql-data-source", ALL, false, "gwpao", &[]),
    spec("cosmosdb-data-source", ALL, false, "gwpao", &[]),
    spec("publish-event", ALL, false, "gwpao", &[]),
    spec("validate-mcp-request", ALL, false, "gwpao", &[]),
    spec("mcp-tools", ALL, false, "gwpao", &[]),
];

pub fn lookup(name: &str) -> Option<&'static ElementSpec> {
    ELEMENTS.iter().find(|s| s.name == name)
}

/// Elements whose children are policy statements again.
pub fn holds_statements(name: &str) -> bool {
    matches!(
        name,
        "when" | "otherwise" | "retry" | "wait" | "limit-concurrency" | "fragment"
    )
}

/// The known element nearest to `name` (edit distance ≤ 3), for "did you mean".
pub fn suggest(name: &str) -> Option<&'static str> {
    let mut best: Option<(usize, &'static str)> = None;
    for s in ELEMENTS
        .iter()
        .map(|s| s.name)
        .chain(["base", "choose", "when", "otherwise"])
    {
        let d = edit_distance(name, s);
        if d <= 3 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, s));
        }
    }
    best.map(|(_, s)| s)
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        if let Some(c0) = cur.first_mut() {
            *c0 = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(c) = cur.get_mut(j + 1) {
                *c = sub.min(del).min(ins);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// Section bit of a section name.
pub fn section_bit(name: &str) -> Option<u8> {
    match name {
        "inbound" => Some(I),
        "backend" => Some(B),
        "outbound" => Some(O),
        "on-error" => Some(E),
        _ => None,
    }
}

/// `inbound, backend` for a bit set, for messages.
pub fn section_names(bits: u8) -> String {
    [
        (I, "inbound"),
        (B, "backend"),
        (O, "outbound"),
        (E, "on-error"),
    ]
    .into_iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| n)
    .collect::<Vec<_>>()
    .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_known_element() {
        assert_eq!(suggest("invoke-darp-binding"), Some("invoke-dapr-binding"));
        assert_eq!(suggest("set-heder"), Some("set-header"));
        assert_eq!(suggest("completely-different-thing"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in ELEMENTS.iter().enumerate() {
            assert!(
                ELEMENTS.iter().skip(i + 1).all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
        assert_eq!(section_names(I | O), "inbound, outbound");
    }
}
