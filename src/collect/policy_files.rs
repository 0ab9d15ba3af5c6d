//! Policy XML files on their own: recognised by content, stored verbatim
//! (the policy reader in `analyze` parses them), with the scope inferred from
//! where the file sits: the apiops layout (`policy.xml` at the artifact root,
//! under `products/<p>/`, `apis/<a>/`, `apis/<a>/operations/<o>/`,
//! `policy fragments/<f>/`, `workspaces/<w>/`) or the flat layout
//! (`policies/global.xml`, `policies/products/<p>.xml`, `policies/apis/<a>.xml`,
//! `policies/apis/<a>/operations/<o>.xml`, `policies/fragments/<f>.xml`).

use crate::model::{Origin, PolicyDoc, PolicyScope};

/// The first element name of an XML text, skipping the declaration,
/// comments, processing instructions and a doctype. `None` when there is none.
pub fn root_element(text: &str) -> Option<&str> {
    let mut rest = text.trim_start_matches('\u{feff}');
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("<!--") {
            // An unclosed comment hides everything after it.
            let end = after.find("-->")?;
            rest = &after[end + 3..];
        } else if let Some(after) = rest.strip_prefix("<?") {
            let end = after.find("?>")?;
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix("<!") {
            let end = after.find('>')?;
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('<') {
            let end = after
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(after.len());
            return Some(&after[..end]).filter(|n| !n.is_empty());
        } else {
            return None;
        }
    }
}

/// Roots that are certainly not policy documents (API specs, web pages).
fn is_foreign_root(root: &str) -> bool {
    let lower = root.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "html" | "svg" | "application" | "definitions" | "project" | "configuration"
    ) || ["wsdl:", "xsd:", "xs:", "soap:", "wadl:"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// Whether an XML text (BOM already stripped) should be read as a policy:
/// a `.xml` file or one that opens with `<policies`, `<fragment`, a comment
/// or a declaration — unless its root is clearly something else.
/// `Err` carries the reason it is not a policy.
pub fn is_policy_xml(file: &str, text: &str) -> Result<(), String> {
    let t = text.trim_start();
    if !t.starts_with('<') {
        return Err("does not start with '<'".into());
    }
    let root = root_element(t);
    if let Some(r) = root
        && is_foreign_root(r)
    {
        return Err(format!(
            "XML document with root element <{r}>, not an API Management policy"
        ));
    }
    let xml_name = file.to_ascii_lowercase().ends_with(".xml");
    let policy_start = ["<policies", "<fragment", "<!--", "<?xml"]
        .iter()
        .any(|p| t.starts_with(p));
    let policy_root = matches!(root, Some("policies") | Some("fragment"));
    if xml_name || policy_start || policy_root {
        Ok(())
    } else {
        Err(format!(
            "XML with root element <{}> in a file not named .xml; policies open with <policies> or <fragment>",
            root.unwrap_or("?")
        ))
    }
}

/// One policy file as a `PolicyDoc` (text verbatim, BOM stripped, line 1).
pub fn policy_doc(file: &str, text: &str) -> PolicyDoc {
    PolicyDoc {
        scope: scope_from_path(file),
        xml: text.trim_start_matches('\u{feff}').to_string(),
        format: "file".into(),
        origin: Origin::at_line(file, 1),
    }
}

fn is_fragment_dir(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    n == "policyfragments" || n == "fragments"
}

/// The scope a policy file's location implies; `Unknown` when no convention
/// matches. Separators `/` and `\` both work; folder names are compared
/// case-insensitively, entity names are kept as written.
pub fn scope_from_path(path: &str) -> PolicyScope {
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some((&name, dirs)) = parts.split_last() else {
        return PolicyScope::Unknown;
    };
    let lower = name.to_ascii_lowercase();
    let eq = |s: &str, want: &str| s.eq_ignore_ascii_case(want);
    if lower == "policy.xml" {
        return match dirs {
            [.., a, api, o, op] if eq(a, "apis") && eq(o, "operations") => {
                PolicyScope::Operation(api.to_string(), op.to_string())
            }
            [.., a, api] if eq(a, "apis") => PolicyScope::Api(api.to_string()),
            [.., p, product] if eq(p, "products") => PolicyScope::Product(product.to_string()),
            [.., f, frag] if is_fragment_dir(f) => PolicyScope::Fragment(frag.to_string()),
            [.., w, ws] if eq(w, "workspaces") => PolicyScope::Workspace(ws.to_string()),
            _ => PolicyScope::Global,
        };
    }
    let Some(stem) = lower.strip_suffix(".xml").map(|_| &name[..name.len() - 4]) else {
        return PolicyScope::Unknown;
    };
    // Flat layout: components after the last `policies` folder.
    let Some(at) = dirs.iter().rposition(|d| eq(d, "policies")) else {
        return PolicyScope::Unknown;
    };
    match &dirs[at + 1..] {
        [] if stem.eq_ignore_ascii_case("global") => PolicyScope::Global,
        [p] if eq(p, "products") => PolicyScope::Product(stem.to_string()),
        [a] if eq(a, "apis") => PolicyScope::Api(stem.to_string()),
        [a, api, o] if eq(a, "apis") && eq(o, "operations") => {
            PolicyScope::Operation(api.to_string(), stem.to_string())
        }
        [f] if is_fragment_dir(f) => PolicyScope::Fragment(stem.to_string()),
        [w] if eq(w, "workspaces") => PolicyScope::Workspace(stem.to_string()),
        _ => PolicyScope::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(path: &str) -> String {
        scope_from_path(path).to_string()
    }

    #[test]
    fn apiops_layout() {
        assert_eq!(s("artifacts/policy.xml"), "global");
        assert_eq!(s("policy.xml"), "global");
        assert_eq!(
            s("artifacts/products/starter/policy.xml"),
            "product:starter"
        );
        assert_eq!(s("artifacts/apis/echo-api/policy.xml"), "api:echo-api");
        assert_eq!(
            s("artifacts/apis/revisioned-api;rev=2/policy.xml"),
            "api:revisioned-api;rev=2"
        );
        assert_eq!(
            s("a/apis/orders/operations/get-order/policy.xml"),
            "operation:orders/get-order"
        );
        assert_eq!(s("a/policy fragments/cors/policy.xml"), "fragment:cors");
        assert_eq!(s("a\\policyFragments\\cors\\policy.xml"), "fragment:cors");
        assert_eq!(s("a/workspaces/team1/policy.xml"), "workspace:team1");
    }

    #[test]
    fn flat_layout() {
        assert_eq!(s("dump/policies/global.xml"), "global");
        assert_eq!(s("policies/products/starter.xml"), "product:starter");
        assert_eq!(s("policies/apis/orders-api.xml"), "api:orders-api");
        assert_eq!(
            s("x/policies/apis/orders-api/operations/get-order.xml"),
            "operation:orders-api/get-order"
        );
        assert_eq!(s("policies/fragments/auth.xml"), "fragment:auth");
    }

    #[test]
    fn anything_else_is_unknown() {
        assert_eq!(s("corpus/policies/aigw__labs__x.policy.xml"), "unknown");
        assert_eq!(
            s("corpus/policies/apiops__SampleArtifacts__policy.xml"),
            "unknown"
        );
        assert_eq!(s("notes/rate.xml"), "unknown");
        assert_eq!(s("policies/apis/a/b/c.xml"), "unknown");
        assert_eq!(s(""), "unknown");
    }

    #[test]
    fn roots_and_recognition() {
        assert_eq!(
            root_element("\u{feff}<?xml version=\"1.0\"?>\n<!-- c -->\n<policies>"),
            Some("policies")
        );
        assert_eq!(root_element("<!-- never closed <policies>"), None);
        assert_eq!(
            root_element("<set-variable name=\"x\" />"),
            Some("set-variable")
        );
        assert!(is_policy_xml("p.xml", "<choose></choose>").is_ok());
        assert!(is_policy_xml("p.txt", "<policies><inbound/></policies>").is_ok());
        assert!(is_policy_xml("p.txt", "<!-- x -->\n<policies/>").is_ok());
        let e = is_policy_xml("page.xml", "<html><body/></html>").unwrap_err();
        assert!(e.contains("<html>"), "{e}");
        assert!(is_policy_xml("spec.wsdl", "<wsdl:definitions/>").is_err());
        assert!(is_policy_xml("x.txt", "<set-header/>").is_err());
    }

    #[test]
    fn doc_is_verbatim_without_bom() {
        let d = policy_doc("policies/global.xml", "\u{feff}<policies>\r\n</policies>");
        assert_eq!(d.xml, "<policies>\r\n</policies>");
        assert_eq!(d.scope, PolicyScope::Global);
        assert_eq!(d.origin.line, Some(1));
        assert_eq!(d.format, "file");
    }
}
