//! A small line-based unified diff (longest common subsequence), for showing
//! what a policy change did (analysis, the live history, remediation plans
//! and the TUI all show one). Pure; in `model` so any layer may use it.
//! Policies are small; inputs beyond `MAX_LINES` lines are cut so the
//! quadratic table stays bounded.

const MAX_LINES: usize = 2000;
const CONTEXT: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Keep,
    Del,
    Add,
}

/// Unified diff of `old` → `new` with 3 lines of context, `---`/`+++`
/// headers named `old_name`/`new_name`; `None` when the texts have the same
/// lines.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> Option<String> {
    let a: Vec<&str> = old.lines().take(MAX_LINES).collect();
    let b: Vec<&str> = new.lines().take(MAX_LINES).collect();
    if a == b {
        return None;
    }
    let ops = script(&a, &b);
    // Line numbers (0-based) in a and b before each op.
    let mut pos = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0usize, 0usize);
    for op in &ops {
        pos.push((i, j));
        match op {
            Op::Keep => {
                i += 1;
                j += 1;
            }
            Op::Del => i += 1,
            Op::Add => j += 1,
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k] != Op::Keep).collect();
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let mut k = 0;
    while k < changed.len() {
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CONTEXT + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let lo = first.saturating_sub(CONTEXT);
        let hi = (last + CONTEXT + 1).min(ops.len());
        let (a0, b0) = pos[lo];
        let dels = ops[lo..hi].iter().filter(|o| **o != Op::Add).count();
        let adds = ops[lo..hi].iter().filter(|o| **o != Op::Del).count();
        out.push_str(&format!(
            "@@ -{},{dels} +{},{adds} @@\n",
            a0 + usize::from(dels > 0),
            b0 + usize::from(adds > 0)
        ));
        for (idx, op) in ops.iter().enumerate().take(hi).skip(lo) {
            let (x, y) = pos[idx];
            match op {
                Op::Keep => out.push_str(&format!(" {}\n", a.get(x).unwrap_or(&""))),
                Op::Del => out.push_str(&format!("-{}\n", a.get(x).unwrap_or(&""))),
                Op::Add => out.push_str(&format!("+{}\n", b.get(y).unwrap_or(&""))),
            }
        }
    }
    Some(out)
}

/// The edit script of an LCS alignment (deletions before additions).
fn script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j] = LCS length of a[i..], b[j..], row-major.
    let w = m + 1;
    let mut lcs = vec![0u32; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let mut ops = Vec::with_capacity(n + m);
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            ops.push(Op::Keep);
            i += 1;
            j += 1;
        } else if lcs[(i + 1) * w + j] >= lcs[i * w + j + 1] {
            ops.push(Op::Del);
            i += 1;
        } else {
            ops.push(Op::Add);
            j += 1;
        }
    }
    ops.extend(std::iter::repeat_n(Op::Del, n - i));
    ops.extend(std::iter::repeat_n(Op::Add, m - j));
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_a_changed_line_with_context() {
        let old =
            "<policies>\n<backend>\n<forward-request timeout=\"120\" />\n</backend>\n</policies>\n";
        let new =
            "<policies>\n<backend>\n<forward-request timeout=\"5\" />\n</backend>\n</policies>\n";
        let d = unified(old, new, "before", "after").unwrap();
        assert_eq!(
            d,
            "--- before\n+++ after\n@@ -1,5 +1,5 @@\n <policies>\n <backend>\n-<forward-request timeout=\"120\" />\n+<forward-request timeout=\"5\" />\n </backend>\n </policies>\n"
        );
    }

    #[test]
    fn identical_texts_have_no_diff() {
        assert_eq!(unified("a\nb", "a\nb\n", "x", "y"), None);
    }

    #[test]
    fn far_apart_changes_make_two_hunks() {
        let old: Vec<String> = (0..30).map(|i| format!("l{i}")).collect();
        let mut new = old.clone();
        new[2] = "X".into();
        new[25] = "Y".into();
        let d = unified(&old.join("\n"), &new.join("\n"), "a", "b").unwrap();
        assert_eq!(d.matches("@@ -").count(), 2);
        assert!(d.contains("-l2\n+X\n"));
        assert!(d.contains("@@ -23,7 +23,7 @@"));
    }
}
