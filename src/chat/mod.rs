//! `apimedic chat`: a line-based question-and-answer loop over stdin and
//! stdout. The logic lives in `conversation` (pure); this is the I/O edge.

pub mod conversation;

pub use conversation::{Command, Conversation, Input, Reply, parse};

use crate::llm::Assistant;
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
        let reply = conversation.handle(&line, inst, |q, p| assistant.ask(inst, q, p));
        if !reply.text.is_empty() {
            writeln!(out, "{}", reply.text.trim_end())?;
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
