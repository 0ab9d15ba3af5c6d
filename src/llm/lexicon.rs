//! The offline answerer's vocabulary: SRE phrasings mapped to the words its
//! intents know ("near its limits" is capacity, "which host does it hit" is
//! routing, "cut off after two seconds" is a timeout, "since when" asks how
//! long an incident has been going on), and fuzzy matching of names
//! (`get item` and `getitem` for `get-item`, one typo in `ordrs-api`). Pure.

/// (phrase as `normalise` writes it, words it stands for). Matched on word
/// boundaries; the words are added to what intents are scored on, never to
/// what names are matched in.
pub const SYNONYMS: &[(&str, &str)] = &[
    // Capacity and saturation, asked without the word.
    ("near its limits", "capacity"),
    ("near the limits", "capacity"),
    ("near its limit", "capacity"),
    ("at its limit", "capacity"),
    ("at the limit", "capacity"),
    ("limits", "capacity"),
    ("headroom", "capacity"),
    ("room", "capacity"),
    ("maxed out", "capacity"),
    ("max out", "capacity"),
    ("running hot", "capacity"),
    ("overwhelmed", "capacity"),
    ("keep up", "capacity"),
    ("cope", "capacity"),
    ("too much traffic", "capacity"),
    ("busy", "capacity"),
    ("cpu", "capacity"),
    ("utilisation", "capacity"),
    ("utilization", "capacity"),
    ("enough units", "capacity"),
    ("scale up", "scale"),
    ("scale out", "scale"),
    ("add units", "scale"),
    // Routing, asked without "backend".
    ("which host", "route"),
    ("what host", "route"),
    ("which server", "route"),
    ("what server", "route"),
    ("host", "route"),
    ("hostname", "route"),
    ("hits", "route"),
    ("hit", "route"),
    ("goes to", "route"),
    ("go to", "route"),
    ("going to", "route"),
    ("routes", "route"),
    ("routed", "route"),
    ("routing", "route"),
    ("points at", "route"),
    ("points to", "route"),
    ("point to", "route"),
    ("pointed at", "route"),
    ("served by", "route"),
    ("serves", "route"),
    ("talks to", "route"),
    ("talk to", "route"),
    ("forwarded to", "route"),
    ("forwards to", "route"),
    ("sent to", "route"),
    ("proxied to", "route"),
    ("lands on", "route"),
    ("land on", "route"),
    ("upstream", "backend"),
    ("origin server", "backend"),
    // Timeouts, asked as being cut off.
    ("cut off", "timeout"),
    ("cuts off", "timeout"),
    ("cutting off", "timeout"),
    ("get cut", "timeout"),
    ("gets cut", "timeout"),
    ("killed after", "timeout"),
    ("give up", "timeout"),
    ("gives up", "timeout"),
    ("giving up", "timeout"),
    ("aborted", "timeout"),
    ("abort", "timeout"),
    ("hang", "timeout"),
    ("hangs", "timeout"),
    ("stuck", "timeout"),
    ("never finish", "timeout"),
    ("never complete", "timeout"),
    ("time limit", "timeout"),
    // Slowness.
    ("too long", "slow"),
    ("takes ages", "slow"),
    ("take ages", "slow"),
    ("laggy", "slow"),
    ("lag", "slow"),
    ("crawling", "slow"),
    ("snappy", "slow"),
    ("response times", "latency"),
    // Errors.
    ("blowing up", "errors"),
    ("erroring", "errors"),
    ("not working", "errors"),
    ("doesn t work", "errors"),
    ("don t work", "errors"),
    ("isn t working", "errors"),
    ("crashing", "errors"),
    ("bad gateway", "502"),
    ("service unavailable", "503"),
    ("gateway timeout", "504"),
    ("5xxs", "5xx"),
    ("server errors", "5xx"),
    // Changes.
    ("rolled out", "deployment"),
    ("roll out", "deployment"),
    ("rollout", "deployment"),
    ("released", "deployment"),
    ("release", "deployment"),
    ("shipped", "deployment"),
    ("pushed", "deployment"),
    ("touched", "changed"),
    ("edited", "changed"),
    ("what changed", "changed"),
    ("last change", "changed"),
    // Is it still going on, since when, when did it end.
    ("since when", "timeline"),
    ("how long", "timeline"),
    ("still", "timeline"),
    ("ongoing", "timeline"),
    ("going on", "timeline"),
    ("over now", "timeline"),
    ("is it over", "timeline"),
    ("recovered", "timeline"),
    ("resolved", "timeline"),
    ("end", "timeline"),
    ("ended", "timeline"),
    ("stop", "timeline"),
    ("stopped", "timeline"),
    ("start", "timeline"),
    ("started", "timeline"),
    ("began", "timeline"),
    ("begin", "timeline"),
    ("back to normal", "timeline"),
    ("healthy again", "timeline"),
    ("current", "timeline"),
    ("currently", "timeline"),
    ("right now", "timeline"),
    // What to do.
    ("what now", "fix"),
    ("what do i do", "fix"),
    ("what do we do", "fix"),
    ("what should we do", "fix"),
    ("next step", "fix"),
    ("next steps", "fix"),
    ("how do i fix", "fix"),
    ("make it stop", "fix"),
    ("repair", "fix"),
];

fn has_phrase(norm: &str, phrase: &str) -> bool {
    let padded = format!(" {norm} ");
    padded.contains(&format!(" {phrase} "))
}

/// The question with the words its phrasings stand for appended (for
/// intent scoring only).
pub fn expand(norm: &str) -> String {
    let mut out = norm.to_string();
    for (phrase, words) in SYNONYMS {
        if has_phrase(norm, phrase) {
            out.push(' ');
            out.push_str(words);
        }
    }
    out
}

/// Levenshtein distance, stopping early once it exceeds `max`.
pub fn edit_distance(a: &str, b: &str, max: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            row_min = row_min.min(cur[j]);
        }
        if row_min > max {
            return max + 1;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A name without its separators and case (`Get_Item`, `get-item`, `get
/// item` and `getitem` are one name).
pub fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Does `written` name `name`, allowing for separators and a typo: one edit
/// in names of 5 or more letters, two in names of 9 or more?
pub fn fuzzy_names(written: &str, name: &str) -> bool {
    let (w, n) = (squash(written), squash(name));
    if w.len() < 4 || n.len() < 4 {
        return !w.is_empty() && w == n;
    }
    if w == n {
        return true;
    }
    let max = match n.len() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    };
    max > 0 && edit_distance(&w, &n, max) <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrasings_add_the_words_they_stand_for() {
        assert!(expand("is the gateway near its limits").ends_with("capacity"));
        assert!(expand("which host does the get-item call hit").contains("route"));
        assert!(expand("why are exports cut off after a couple of seconds").contains("timeout"));
        assert!(expand("since when has it been failing").contains("timeline"));
        // Word boundaries: "hitch" is not "hit", "legend" is not "end".
        assert_eq!(expand("a hitch in the legend"), "a hitch in the legend");
    }

    #[test]
    fn names_match_across_separators_and_one_typo() {
        assert!(fuzzy_names("get item", "get-item"));
        assert!(fuzzy_names("getitem", "get-item"));
        assert!(fuzzy_names("ordrs-api", "orders-api"));
        assert!(fuzzy_names("checkstock", "check-stock"));
        assert!(!fuzzy_names("orders", "users"));
        assert!(!fuzzy_names("get", "set"));
        assert!(!fuzzy_names("catalog-web", "catalog-legacy"));
        assert_eq!(edit_distance("kitten", "sitting", 5), 3);
        assert_eq!(edit_distance("abc", "abcdefgh", 2), 3);
    }
}
