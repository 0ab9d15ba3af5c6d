//! `apimedic chat`: a line-based question-and-answer loop over stdin and
//! stdout. The logic lives in `conversation` (pure); this is the I/O edge.
//! A model's answers are printed as they are written (streamed).

pub mod conversation;

pub use conversation::{Command, Conversation, Input, Reply, parse};

use crate::llm::{Answer, Assistant, render_after_stream};
use crate::tools::Instance;
use std::io::{BufRead, Write};

/// Runs the loop until `/quit` or end of input.
pub fn run(
    inst: &Instance,
    assistant: &Assistant,
    input: impl BufRead,
    mut out: impl Write,
    prompt: bool,
) -> std::io::Result<()> {
    let mut conversation = Conversation::default();
    writeln!(
        out,
        "apimedic chat on {} ({} findings). /help for commands, /quit to leave.",
        inst.name(),
        inst.diagnosis.findings.len()
    )?;
    if prompt {
        write!(out, "> ")?;
        out.flush()?;
    }
    for line in input.lines() {
        let line = line?;
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
        if prompt {
            write!(out, "\n> ")?;
            out.flush()?;
        }
    }
    Ok(())
}
