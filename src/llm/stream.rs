//! A model's reply made fit to show while it is still being written: masked
//! names are restored only once their placeholder is complete (`[HOST-1]`
//! split over two pieces never shows half-masked), a paragraph that repeats
//! an earlier one is dropped (small models loop), blank runs become one
//! blank line, and a step that ends in a tool call loses its unshown first
//! line (a model's "let me check:" before a call is not part of the answer;
//! a line ending in ':' is held until the next line begins). A whole reply
//! goes through the same code, so streamed and non-streamed answers read the
//! same. Linear in what arrives (a 10 MB answer in 20-byte pieces is read
//! once). Pure: the restore step comes in as a function.

/// Finished paragraphs compared against a paragraph that is still being
/// written (small models repeat a recent one); all finished paragraphs are
/// remembered by hash for the exact-repeat check.
const RECENT: usize = 64;

/// Longest stretch after an unclosed `[` held back as a possible
/// placeholder (`[SECRET-12345]` is 14): past it, the bracket is text.
const PLACEHOLDER_MAX: usize = 24;

/// Shapes the text of one question's replies, step after step. Linear in
/// what arrives: each byte is restored and shown once, whatever the sizes
/// of the pieces.
#[derive(Debug, Default)]
pub struct Shaper {
    /// The current paragraph as the model wrote it (masked), without the
    /// whitespace that follows it.
    para: String,
    /// `para` holds a line break.
    para_newline: bool,
    /// Whitespace after `para` whose meaning (same paragraph or a break) is
    /// not known yet, and its line breaks.
    ws: String,
    ws_newlines: usize,
    /// Bytes of `para` already handed out (restored), and whether any were.
    done: usize,
    shown_any: bool,
    /// Finished paragraphs: hashes of all, the text of the last `RECENT`.
    seen: std::collections::HashSet<u64>,
    recent: std::collections::VecDeque<String>,
    /// A paragraph was handed out: the next one starts with a blank line.
    started: bool,
    /// Hold this step's text until its first line is complete (a line
    /// ending in ':' until a second line begins).
    hold: bool,
    /// Everything handed out.
    out: String,
}

fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl Shaper {
    /// A new step: `hold` keeps its text back until its first line is
    /// complete (for steps where the model may still call a tool after a
    /// line of preamble).
    pub fn begin_step(&mut self, hold: bool) {
        self.hold = hold;
    }

    /// Takes one piece of the reply; returns the text ready to show.
    pub fn push(&mut self, delta: &str, restore: &dyn Fn(&str) -> String) -> String {
        let mut shown = String::new();
        for c in delta.chars() {
            if c.is_whitespace() {
                self.ws.push(c);
                if c == '\n' {
                    self.ws_newlines += 1;
                }
                continue;
            }
            if self.para.is_empty() {
                self.para = self.indent();
                self.clear_ws();
            } else if self.ws_newlines >= 2 {
                // A second paragraph: this step is an answer, not a preamble.
                self.hold = false;
                let indent = self.indent();
                shown.push_str(&self.end_paragraph(restore));
                self.para = indent;
                self.clear_ws();
            } else {
                self.para_newline |= self.ws_newlines > 0;
                self.para.push_str(&self.ws);
                self.clear_ws();
            }
            self.para.push(c);
        }
        shown.push_str(&self.progress(restore));
        shown
    }

    fn clear_ws(&mut self) {
        self.ws.clear();
        self.ws_newlines = 0;
    }

    /// The step is over: `answer` false means it ended in tool calls, so
    /// text not shown yet is dropped. Returns what is left to show.
    pub fn end_step(&mut self, answer: bool, restore: &dyn Fn(&str) -> String) -> String {
        let rest = if answer || self.shown_any {
            self.end_paragraph(restore)
        } else {
            self.reset_para();
            String::new()
        };
        self.clear_ws();
        self.hold = false;
        rest
    }

    /// Everything handed out so far.
    pub fn text(&self) -> &str {
        &self.out
    }

    /// Leading spaces of a new paragraph's first line (none for the first).
    fn indent(&self) -> String {
        if !self.started {
            return String::new();
        }
        match self.ws.rfind('\n') {
            Some(i) => self.ws.get(i + 1..).unwrap_or("").to_string(),
            None => String::new(),
        }
    }

    /// Where `para` may be shown up to: before an opening `[` after `done`
    /// that is not closed yet and may still become a placeholder.
    fn safe_end(&self) -> usize {
        let tail = &self.para[self.done..];
        match tail.rfind('[') {
            Some(i) if !tail[i..].contains(']') && tail.len() - i <= PLACEHOLDER_MAX => {
                self.done + i
            }
            _ => self.para.len(),
        }
    }

    /// Hands out the current paragraph as far as it is safe to.
    fn progress(&mut self, restore: &dyn Fn(&str) -> String) -> String {
        if self.hold {
            // Released once the first line is complete, unless it announces
            // something (ends with ':'): then once a second line begins, so
            // "Let me check:\n" followed by a tool call is never shown.
            let line_done = self.ws_newlines > 0 && !self.para.trim_end().ends_with(':');
            if line_done || self.para_newline {
                self.hold = false;
            } else {
                return String::new();
            }
        }
        let end = self.safe_end();
        if !self.shown_any {
            // So far a repeat of a recent paragraph: wait and see. Only a
            // paragraph no longer than one of them can be.
            let longest = self.recent.iter().map(String::len).max().unwrap_or(0);
            if end <= longest + PLACEHOLDER_MAX {
                let restored = restore(&self.para[..end]);
                let key = restored.trim();
                if self.recent.iter().any(|s| s.starts_with(key)) {
                    return String::new();
                }
            }
        }
        if end <= self.done {
            return String::new();
        }
        let piece = restore(&self.para[self.done..end]);
        self.done = end;
        if piece.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        if !self.shown_any && self.started {
            out.push_str("\n\n");
        }
        out.push_str(&piece);
        self.started = true;
        self.shown_any = true;
        self.out.push_str(&out);
        out
    }

    fn reset_para(&mut self) {
        self.para.clear();
        self.para_newline = false;
        self.done = 0;
        self.shown_any = false;
    }

    /// The current paragraph is complete: hand out its rest, or drop it
    /// when it repeats an earlier one.
    fn end_paragraph(&mut self, restore: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        let full = if self.shown_any {
            out.push_str(restore(&self.para[self.done..]).trim_end());
            None
        } else {
            let full = restore(&self.para);
            let key = full.trim();
            if !key.is_empty() && !self.seen.contains(&key_hash(key)) {
                if self.started {
                    out.push_str("\n\n");
                }
                out.push_str(full.trim_end());
                self.started = true;
            }
            Some(full)
        };
        let full = full.unwrap_or_else(|| restore(&self.para));
        let key = full.trim();
        if !key.is_empty() && self.seen.insert(key_hash(key)) {
            if self.recent.len() >= RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(key.to_string());
        }
        self.reset_para();
        self.out.push_str(&out);
        out
    }
}

/// Shapes a whole reply at once (what a non-streamed answer goes through).
pub fn shape_whole(text: &str, restore: &dyn Fn(&str) -> String) -> String {
    let mut s = Shaper::default();
    s.push(text, restore);
    s.end_step(true, restore);
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmask(t: &str) -> String {
        t.replace("[HOST-1]", "inv.azurecontainerapps.io")
            .replace("[HOST-10]", "ten.example")
    }

    fn stream(pieces: &[&str]) -> (Vec<String>, String) {
        let mut s = Shaper::default();
        let mut shown = Vec::new();
        for p in pieces {
            let o = s.push(p, &unmask);
            if !o.is_empty() {
                shown.push(o);
            }
        }
        let o = s.end_step(true, &unmask);
        if !o.is_empty() {
            shown.push(o);
        }
        assert_eq!(shown.concat(), s.text(), "pieces add up to the text");
        (shown, s.text().to_string())
    }

    #[test]
    fn a_placeholder_split_across_pieces_never_shows_masked() {
        let (shown, text) = stream(&[
            "The backend at [HO",
            "ST-1",
            "] is down; [HOST-10] is",
            " fine.",
        ]);
        assert!(shown.len() > 1, "{shown:?}");
        for s in &shown {
            assert!(!s.contains("[HO") && !s.contains("HOST-"), "{s}");
        }
        assert_eq!(
            text,
            "The backend at inv.azurecontainerapps.io is down; ten.example is fine."
        );
    }

    #[test]
    fn repeated_paragraphs_are_dropped_while_streaming() {
        let (_, text) = stream(&[
            "A.\n",
            "\nB [0123456789abcdef].",
            "\n\nA",
            ".\n\nA. but more",
            "\n\n\n\nC.  \n",
        ]);
        assert_eq!(text, "A.\n\nB [0123456789abcdef].\n\nA. but more\n\nC.");
        assert_eq!(
            shape_whole("\n\n  A.\n\nB.\n\nA.\n", &unmask),
            "A.\n\nB.",
            "the whole reply shapes the same way"
        );
    }

    #[test]
    fn a_tool_step_drops_its_unshown_first_line_and_an_answer_step_keeps_it() {
        let mut s = Shaper::default();
        s.begin_step(true);
        assert_eq!(s.push("Let me check the findings.", &unmask), "");
        assert_eq!(s.push(" The backend that is failing is:\n", &unmask), "");
        assert_eq!(s.end_step(false, &unmask), "", "a preamble before a call");
        s.begin_step(true);
        assert_eq!(s.push("Backend X runs out of memory.", &unmask), "");
        assert_eq!(
            s.push("\n", &unmask),
            "Backend X runs out of memory.",
            "a complete first line shows at once"
        );
        assert_eq!(s.end_step(true, &unmask), "");
        s.begin_step(true);
        assert_eq!(s.push("Inventory is down", &unmask), "");
        assert_eq!(
            s.push(" [HOST-1]:\n", &unmask),
            "",
            "an announcing line waits"
        );
        assert_eq!(
            s.push("More", &unmask),
            "\n\nInventory is down inv.azurecontainerapps.io:\nMore"
        );
        assert_eq!(s.end_step(true, &unmask), "");
        assert_eq!(
            s.text(),
            "Backend X runs out of memory.\n\nInventory is down inv.azurecontainerapps.io:\nMore"
        );
        // An unclosed bracket is text, shown when the step ends.
        assert_eq!(shape_whole("see [1", &unmask), "see [1");
    }
}
