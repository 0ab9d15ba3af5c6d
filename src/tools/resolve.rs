//! The one name resolver: a name given by a person, a model or an MCP client
//! becomes an entity id by exact id, then case-insensitive id or alias
//! (display name, path, URL template, URL), then a unique prefix, then a
//! unique near match (edit distance). A name that matches nothing, or
//! several things equally well, is not guessed: the caller gets the
//! candidates to offer as "did you mean". Pure.

use crate::model::{Diagnosis, Snapshot};

/// How a name resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The id of the one entity the name means.
    Found(String),
    /// Several entities match equally well (their ids, best first).
    Ambiguous(Vec<String>),
    /// Nothing matches; the closest ids, best first (may be empty).
    Unknown(Vec<String>),
}

impl Resolution {
    pub fn found(&self) -> Option<&str> {
        match self {
            Resolution::Found(id) => Some(id),
            _ => None,
        }
    }

    /// A message for a name that did not resolve (`None` when it did):
    /// `no API named `x`; did you mean orders-api?`.
    pub fn problem(&self, what: &str, name: &str) -> Option<String> {
        match self {
            Resolution::Found(_) => None,
            Resolution::Ambiguous(ids) => Some(format!(
                "`{name}` matches several {what}s: {}; give one of these ids",
                ids.join(", ")
            )),
            Resolution::Unknown(ids) if ids.is_empty() => Some(format!("no {what} named `{name}`")),
            Resolution::Unknown(ids) => Some(format!(
                "no {what} named `{name}`; did you mean {}?",
                ids.join(" or ")
            )),
        }
    }
}

/// One entity as the resolver sees it: its id and the other names it goes by.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub aliases: Vec<&'a str>,
}

/// Lower case, no surrounding slashes, spaces and underscores as dashes.
pub fn norm(s: &str) -> String {
    s.trim()
        .trim_matches('/')
        .to_ascii_lowercase()
        .replace([' ', '_'], "-")
}

/// Resolves `name` among `candidates` (see the module doc for the order).
pub fn resolve(name: &str, candidates: &[Candidate]) -> Resolution {
    let n = norm(name);
    if n.is_empty() {
        return Resolution::Unknown(Vec::new());
    }
    // 1. exact id.
    if let Some(c) = candidates.iter().find(|c| c.id == name.trim()) {
        return Resolution::Found(c.id.to_string());
    }
    let keys = |c: &Candidate| -> Vec<String> {
        std::iter::once(c.id)
            .chain(c.aliases.iter().copied())
            .map(norm)
            .filter(|k| !k.is_empty())
            .collect()
    };
    // 2. case-insensitive id or alias.
    let exact: Vec<&str> = unique_ids(candidates.iter().filter(|c| keys(c).contains(&n)));
    if let Some(r) = one_or_many(&exact) {
        return r;
    }
    // 3. unique prefix of an id or alias.
    let prefix: Vec<&str> = unique_ids(
        candidates
            .iter()
            .filter(|c| keys(c).iter().any(|k| k.starts_with(&n))),
    );
    if let Some(r) = one_or_many(&prefix) {
        return r;
    }
    // 4. unique near match: edit distance within a third of the name.
    let budget = (n.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .iter()
        .filter_map(|c| {
            keys(c)
                .iter()
                .map(|k| distance(&n, k))
                .min()
                .map(|d| (d, c.id))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    let near: Vec<&str> = scored
        .iter()
        .filter(|(d, _)| *d <= budget)
        .map(|&(_, id)| id)
        .collect();
    let best = scored.first().map(|&(d, _)| d);
    let tied: Vec<&str> = scored
        .iter()
        .filter(|(d, _)| Some(*d) == best && *d <= budget)
        .map(|&(_, id)| id)
        .collect();
    if tied.len() == 1 {
        return Resolution::Found(tied[0].to_string());
    }
    if !near.is_empty() {
        return Resolution::Ambiguous(near.iter().take(5).map(|s| s.to_string()).collect());
    }
    // Nothing close enough: offer the three closest anyway.
    Resolution::Unknown(
        scored
            .iter()
            .take(3)
            .map(|&(_, id)| id.to_string())
            .collect(),
    )
}

fn unique_ids<'a>(it: impl Iterator<Item = &'a Candidate<'a>>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = it.map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn one_or_many(ids: &[&str]) -> Option<Resolution> {
    match ids {
        [] => None,
        [one] => Some(Resolution::Found(one.to_string())),
        many => Some(Resolution::Ambiguous(
            many.iter().map(|s| s.to_string()).collect(),
        )),
    }
}

/// Levenshtein distance over chars, two rows; names are short, so the
/// quadratic cost is bounded by the name lengths (capped at 64 chars).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// An API of the snapshot (configured, or only seen in traffic).
pub fn api(snapshot: &Snapshot, name: &str) -> Resolution {
    let mut c: Vec<Candidate> = snapshot
        .apis
        .iter()
        .map(|a| Candidate {
            id: &a.id,
            aliases: [a.display_name.as_deref(), a.path.as_deref()]
                .into_iter()
                .flatten()
                .collect(),
        })
        .collect();
    for s in &snapshot.traffic.series {
        if !s.key.api_id.is_empty() && !c.iter().any(|x| x.id == s.key.api_id) {
            c.push(Candidate {
                id: &s.key.api_id,
                aliases: Vec::new(),
            });
        }
    }
    resolve(name, &c)
}

/// An operation, of one API when `api_id` is given.
pub fn operation(snapshot: &Snapshot, api_id: Option<&str>, name: &str) -> Resolution {
    let of_api = |a: &str| api_id.is_none_or(|want| want.eq_ignore_ascii_case(a));
    let mut c: Vec<Candidate> = snapshot
        .operations
        .iter()
        .filter(|o| of_api(&o.api_id))
        .map(|o| Candidate {
            id: &o.id,
            aliases: [o.display_name.as_deref(), o.url_template.as_deref()]
                .into_iter()
                .flatten()
                .collect(),
        })
        .collect();
    for s in &snapshot.traffic.series {
        let op = &s.key.operation_id;
        if !op.is_empty() && of_api(&s.key.api_id) && !c.iter().any(|x| x.id == op) {
            c.push(Candidate {
                id: op,
                aliases: Vec::new(),
            });
        }
    }
    resolve(name, &c)
}

/// A backend by id, URL or host (configured, or only seen in traffic).
pub fn backend(snapshot: &Snapshot, name: &str) -> Resolution {
    let mut c: Vec<Candidate> = snapshot
        .backends
        .iter()
        .map(|b| Candidate {
            id: &b.id,
            aliases: b
                .url
                .as_deref()
                .into_iter()
                .flat_map(|u| [u, crate::model::url_host(u)])
                .collect(),
        })
        .collect();
    for s in &snapshot.traffic.series {
        if !s.key.backend.is_empty() && !c.iter().any(|x| x.id == s.key.backend) {
            c.push(Candidate {
                id: &s.key.backend,
                aliases: Vec::new(),
            });
        }
    }
    resolve(name, &c)
}

/// A finding by its id or a unique prefix of it (ids are hex, so no
/// near matches: a wrong digit is a different finding).
pub fn finding(diagnosis: &Diagnosis, id: &str) -> Resolution {
    let id = id.trim().to_ascii_lowercase();
    if id.is_empty() {
        return Resolution::Unknown(Vec::new());
    }
    let hits: Vec<String> = diagnosis
        .findings
        .iter()
        .filter(|f| f.id.starts_with(&id))
        .map(|f| f.id.clone())
        .collect();
    match hits.len() {
        1 => Resolution::Found(hits[0].clone()),
        0 => Resolution::Unknown(Vec::new()),
        _ => Resolution::Ambiguous(hits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apis() -> Vec<Candidate<'static>> {
        vec![
            Candidate {
                id: "orders-api",
                aliases: vec!["Orders API", "orders"],
            },
            Candidate {
                id: "order-history",
                aliases: vec!["Order history", "history"],
            },
            Candidate {
                id: "users-api",
                aliases: vec!["Users", "users"],
            },
        ]
    }

    #[test]
    fn exact_then_case_insensitive_alias() {
        assert_eq!(resolve("orders-api", &apis()).found(), Some("orders-api"));
        assert_eq!(resolve("ORDERS API", &apis()).found(), Some("orders-api"));
        assert_eq!(resolve("/orders/", &apis()).found(), Some("orders-api"));
    }

    #[test]
    fn a_substring_is_not_a_match_when_it_names_several() {
        // The old rule (containment) took "order" to mean orders-api.
        let r = resolve("order", &apis());
        assert_eq!(
            r,
            Resolution::Ambiguous(vec!["order-history".into(), "orders-api".into()])
        );
        assert!(r.problem("API", "order").unwrap().contains("several APIs"));
    }

    #[test]
    fn unique_prefix_and_near_match() {
        assert_eq!(resolve("use", &apis()).found(), Some("users-api"));
        assert_eq!(resolve("usres-api", &apis()).found(), Some("users-api"));
    }

    #[test]
    fn unknown_names_offer_the_closest() {
        let r = resolve("payments", &apis());
        assert!(matches!(r, Resolution::Unknown(ref ids) if ids.len() == 3));
        let msg = r.problem("API", "payments").unwrap();
        assert!(
            msg.starts_with("no API named `payments`; did you mean"),
            "{msg}"
        );
        assert_eq!(resolve("  ", &apis()), Resolution::Unknown(vec![]));
    }

    #[test]
    fn distance_is_levenshtein() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }
}
