//! The policy lint rules: stable ids, default (Audit mode) severity, a
//! one-line explanation and a fix hint. Ids never change meaning once
//! released. Shared vocabulary: `analyze::policy::lint` raises findings by
//! these ids and the renderers (`report::lint`, SARIF) describe them.

use super::{FindingKind, Severity};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    /// Short kebab-case name.
    pub name: &'static str,
    pub kind: FindingKind,
    /// Severity in Audit mode.
    pub severity: Severity,
    pub summary: &'static str,
    pub fix: &'static str,
}

impl Rule {
    /// `error`, `warning` or `note` (also the SARIF level).
    pub fn level(&self) -> &'static str {
        level_of(self.severity)
    }
}

/// `error` for high and critical, `warning` for medium, `note` below.
pub fn level_of(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The rule whose findings fail a Deny-mode run.
pub const INHERITANCE_RULE: &str = "APIM020";

const fn rule(
    id: &'static str,
    name: &'static str,
    kind: FindingKind,
    severity: Severity,
    summary: &'static str,
    fix: &'static str,
) -> Rule {
    Rule {
        id,
        name,
        kind,
        severity,
        summary,
        fix,
    }
}

use FindingKind::{MalformedPolicy as M, PolicyInheritance as H, PolicyRisk as R};
use Severity::{High, Low, Medium};

static RULES: &[Rule] = &[
    rule(
        "APIM001",
        "malformed-xml",
        M,
        High,
        "The policy is not well-formed XML (also after masking expressions), is a rootless snippet, or uses a DOCTYPE/custom entity.",
        "Fix the XML at the reported line; wrap snippets in <policies><inbound>…</inbound></policies>; remove DOCTYPE and custom entities.",
    ),
    rule(
        "APIM002",
        "bare-snippet",
        M,
        Medium,
        "The root element is neither <policies> nor <fragment>: a snippet meant to be pasted into a section.",
        "Paste the snippet into a section of a <policies> document, or make it a <fragment>.",
    ),
    rule(
        "APIM003",
        "section-structure",
        M,
        High,
        "<policies> holds something other than inbound/backend/outbound/on-error, or a section twice.",
        "Keep exactly one of each section directly under <policies> and move other elements into a section.",
    ),
    rule(
        "APIM004",
        "missing-section",
        M,
        Low,
        "A <policies> document lacks one of the four sections, so that section inherits or does nothing implicitly.",
        "Add the missing sections with <base /> so inheritance is explicit.",
    ),
    rule(
        "APIM005",
        "unknown-element",
        M,
        Medium,
        "An element that is not a known APIM policy (often a typo).",
        "Use the policy name suggested, or remove the element.",
    ),
    rule(
        "APIM006",
        "policy-wrong-section",
        M,
        High,
        "A policy sits in a section where APIM never allows it (e.g. forward-request outside <backend>, rate-limit outside <inbound>).",
        "Move the policy into a section where it is allowed.",
    ),
    rule(
        "APIM007",
        "policy-disputed-section",
        M,
        Low,
        "A policy sits in a section the reference pages do not list, though other sources allow it.",
        "Prefer a section listed on the policy's reference page.",
    ),
    rule(
        "APIM008",
        "policy-wrong-scope",
        M,
        High,
        "A policy is used at a scope where it is not allowed (rate-limit at global, quota outside a product, cross-domain outside global).",
        "Move the policy to an allowed scope, or use the -by-key variant.",
    ),
    rule(
        "APIM009",
        "required-attribute",
        M,
        High,
        "A required attribute or child element of a policy is missing.",
        "Add the attribute or child element named in the message.",
    ),
    rule(
        "APIM010",
        "attribute-type",
        M,
        Medium,
        "An attribute value has the wrong type (ISO 8601 duration or text where seconds are expected, not a boolean, unknown keyword).",
        "Write the value in the expected form, e.g. seconds as an integer (PT1M -> 60).",
    ),
    rule(
        "APIM011",
        "attribute-limit",
        M,
        High,
        "An attribute breaks a documented limit or combination (renewal-period > 300 for rate-limit, timeout with timeout-ms, expression where none is allowed).",
        "Bring the value within the documented limit, or keep only one of the conflicting attributes.",
    ),
    rule(
        "APIM012",
        "expression-invalid",
        M,
        High,
        "A policy expression cannot be valid: unbalanced brackets, empty, or a @{ } body that never returns.",
        "Close the expression, or add a return statement to the @{ } body.",
    ),
    rule(
        "APIM013",
        "named-value-undefined",
        M,
        High,
        "A {{named value}} is referenced but not defined on the instance.",
        "Create the named value, or fix the reference's spelling.",
    ),
    rule(
        "APIM020",
        "base-missing",
        H,
        Medium,
        "A section below global lacks <base />, so the parent scope's policies (e.g. a global ip-filter) do not run (Azure Policy: API Management policies should inherit parent scope policies using <base />).",
        "Add <base /> as the first element of the section, unless dropping the parent's policies is intended.",
    ),
    rule(
        "APIM021",
        "base-not-first",
        H,
        Low,
        "<base /> is not the first element of its section, so parent policies run after this scope's.",
        "Move <base /> to the top of the section unless the order is intended.",
    ),
    rule(
        "APIM022",
        "base-misused",
        H,
        Medium,
        "<base /> appears twice in a section or inside choose, so parent policies run twice or only sometimes.",
        "Keep one unconditional <base /> per section.",
    ),
    rule(
        "APIM023",
        "backend-never-forwards",
        H,
        Medium,
        "The <backend> section neither holds forward-request nor inherits one with <base />, so requests never reach the backend.",
        "Add <base /> (or <forward-request />) to <backend>, unless every request is answered by return-response.",
    ),
    rule(
        "APIM030",
        "unknown-backend",
        R,
        High,
        "set-backend-service names a backend-id that is not defined on the instance.",
        "Create the backend, or correct the backend-id.",
    ),
    rule(
        "APIM031",
        "unknown-pool-member",
        R,
        High,
        "A load-balanced backend pool lists a member backend that is not defined.",
        "Create the member backend, or remove it from the pool.",
    ),
    rule(
        "APIM032",
        "unknown-fragment",
        R,
        High,
        "include-fragment names a policy fragment that is not defined.",
        "Create the fragment, or correct fragment-id.",
    ),
    rule(
        "APIM040",
        "plaintext-secret",
        R,
        High,
        "A key, password, token or Authorization value is written in plain text in the policy.",
        "Store the secret in a secret named value (ideally Key Vault backed) and reference it as {{name}}.",
    ),
    rule(
        "APIM041",
        "cors-any-origin-credentials",
        R,
        High,
        "CORS allows any origin (*) together with allow-credentials=\"true\".",
        "List the allowed origins explicitly, or set allow-credentials to false.",
    ),
    rule(
        "APIM042",
        "jwt-without-keys",
        R,
        High,
        "validate-jwt has neither <openid-config> nor <issuer-signing-keys>, so signatures cannot be checked.",
        "Add <openid-config url=\"…/.well-known/openid-configuration\" /> or issuer signing keys.",
    ),
    rule(
        "APIM043",
        "ip-filter-allows-all",
        R,
        High,
        "ip-filter allows every address (0.0.0.0-255.255.255.255), so it filters nothing.",
        "Allow only the address ranges that must reach the API.",
    ),
    rule(
        "APIM044",
        "api-without-auth",
        R,
        Medium,
        "An API requires no subscription and its effective policy has no authentication policy, so anyone can call it.",
        "Require a subscription, or add validate-jwt / validate-azure-ad-token / check-header to the API's inbound.",
    ),
    rule(
        "APIM050",
        "timeout-below-latency",
        R,
        High,
        "The forward-request timeout in force is at or below the backend's observed p99 latency, or requests are timing out.",
        "Raise the forward-request timeout above the observed p99, or fix the backend's latency.",
    ),
    rule(
        "APIM051",
        "retry-non-idempotent",
        R,
        Medium,
        "retry around forward-request without a condition on an operation with a non-idempotent method (POST/PATCH) can apply a request twice.",
        "Give retry a condition that only matches failures where the backend did not process the request, or remove it.",
    ),
];

/// Every lint rule, by id.
pub fn rules() -> &'static [Rule] {
    RULES
}

pub fn rule_by_id(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(r.id.starts_with("APIM") && r.id.len() == 7, "{}", r.id);
            assert!(
                RULES
                    .iter()
                    .skip(i + 1)
                    .all(|o| o.id != r.id && o.name != r.name)
            );
        }
        assert_eq!(
            rule_by_id(INHERITANCE_RULE).map(|r| r.kind),
            Some(FindingKind::PolicyInheritance)
        );
        assert_eq!(rule_by_id("APIM001").map(|r| r.level()), Some("error"));
        assert_eq!(rule_by_id("APIM999"), None);
    }
}
