//! `apimedic chat`: a line-based question-and-answer loop over stdin and
//! stdout. The logic lives in `llm::conversation` (pure, shared with the
//! TUI's chat pane so no surface imports another); this is the I/O edge.
//! A model's answers are printed as they are written (streamed). On a
//! terminal, lines are read with a line editor (arrow keys, Ctrl-R search,
//! history kept across sessions); piped input is read line by line.

pub use crate::llm::conversation::{Command, Conversation, Input, Reply, parse};

use crate::llm::{Answer, Assistant, render_after_stream};
use crate::tools::Instance;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Where the questions come from.
pub enum Source<R> {
    /// Plain lines (a pipe, a file, tests); no prompt is printed.
    Lines(R),
    /// A line editor on the terminal, with its history file (if any).
    Editor {
        editor: Box<rustyline::DefaultEditor>,
        history: Option<PathBuf>,
    },
}

impl<R: BufRead> Source<R> {
    /// A line editor with the history of earlier sessions loaded from
    /// `history` (a missing or unreadable file starts an empty history).
    pub fn editor(history: Option<PathBuf>) -> Result<Source<R>, String> {
        let mut editor = rustyline::DefaultEditor::new()
            .map_err(|e| format!("cannot start the line editor: {e}"))?;
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        Ok(Source::Editor {
            editor: Box::new(editor),
            history,
        })
    }

    /// The next line, `None` at the end of input (Ctrl-D on a terminal).
    /// Ctrl-C on a terminal drops the line being typed and asks again.
    fn next_line(&mut self) -> std::io::Result<Option<String>> {
        match self {
            Source::Lines(r) => {
                let mut line = String::new();
                if r.read_line(&mut line)? == 0 {
                    return Ok(None);
                }
                let trimmed = line.trim_end_matches(['\n', '\r']).len();
                line.truncate(trimmed);
                Ok(Some(line))
            }
            Source::Editor { editor, history } => loop {
                match editor.readline("> ") {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                            if let Some(h) = history {
                                save_history(editor, h);
                            }
                        }
                        return Ok(Some(line));
                    }
                    Err(rustyline::error::ReadlineError::Interrupted) => continue,
                    Err(rustyline::error::ReadlineError::Eof) => return Ok(None),
                    Err(e) => return Err(std::io::Error::other(e.to_string())),
                }
            },
        }
    }
}

/// Saves the history, creating its folder; a failure only costs the history.
fn save_history(editor: &mut rustyline::DefaultEditor, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = editor.save_history(path);
}

/// Where chat history is kept: `$XDG_STATE_HOME/apimedic/chat_history`, else
/// `~/.local/state/apimedic/chat_history`; `None` without either.
pub fn history_file(xdg_state_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let base = match (xdg_state_home.filter(|s| !s.is_empty()), home) {
        (Some(x), _) => PathBuf::from(x),
        (None, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".local/state"),
        _ => return None,
    };
    Some(base.join("apimedic").join("chat_history"))
}

/// Runs the loop until `/quit` or end of input.
pub fn run<R: BufRead>(
    inst: &Instance,
    assistant: &Assistant,
    mut input: Source<R>,
    mut out: impl Write,
) -> std::io::Result<()> {
    let mut conversation = Conversation::default();
    writeln!(
        out,
        "apimedic chat on {} ({} findings). /help for commands, /quit to leave.",
        inst.name(),
        inst.diagnosis.findings.len()
    )?;
    out.flush()?;
    while let Some(line) = input.next_line()? {
        // A model's answer is printed as it is written; the reply's text is
        // then only what the stream did not already show.
        let mut streamed = String::new();
        let mut answered: Option<Answer> = None;
        let mut failed: Option<std::io::Error> = None;
        let reply = conversation.handle(&line, inst, |q, p| {
            let answer = match assistant {
                Assistant::Offline => assistant.ask(inst, q, p),
                Assistant::Remote(_) => assistant.ask_streaming(inst, q, p, &mut |t| {
                    streamed.push_str(t);
                    if failed.is_none()
                        && let Err(e) = out.write_all(t.as_bytes()).and_then(|_| out.flush())
                    {
                        failed = Some(e);
                    }
                }),
            };
            answered = Some(answer.clone());
            answer
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if let Some(a) = &answered {
            crate::audit::record_model_refusals(&a.refused);
        }
        match &answered {
            Some(a) if !streamed.is_empty() => {
                // Starts with the line break that ends the streamed text.
                let tail = render_after_stream(a, &streamed);
                writeln!(out, "{}", tail.trim_end())?;
            }
            _ if !reply.text.is_empty() => writeln!(out, "{}", reply.text.trim_end())?,
            _ => {}
        }
        if reply.quit {
            break;
        }
        if matches!(input, Source::Editor { .. }) {
            writeln!(out)?;
        }
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lives_in_the_xdg_state_folder() {
        assert_eq!(
            history_file(Some("/s"), Some("/h")),
            Some(PathBuf::from("/s/apimedic/chat_history"))
        );
        assert_eq!(
            history_file(None, Some("/h")),
            Some(PathBuf::from("/h/.local/state/apimedic/chat_history"))
        );
        assert_eq!(
            history_file(Some(""), Some("/h")),
            Some(PathBuf::from("/h/.local/state/apimedic/chat_history"))
        );
        assert_eq!(history_file(None, None), None);
    }

    #[test]
    fn plain_lines_end_without_their_line_breaks() {
        let mut input = Source::Lines("a\r\nb\n\nc".as_bytes());
        let mut got = Vec::new();
        while let Some(l) = input.next_line().unwrap() {
            got.push(l);
        }
        assert_eq!(got, ["a", "b", "", "c"]);
    }
}
