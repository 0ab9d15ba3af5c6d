//! The pure core of `apimedic chat`: a line is a question or a slash
//! command; turns are kept (capped) so follow-ups keep the incident under
//! discussion: the names asked about, the findings the last answer was
//! about and their time window (or the window the TUI's time cursor
//! selects). No I/O: the answerer comes in as a function.

use crate::llm::{Answer, Entities};
use crate::tools::{Instance, Tool};

/// Most turns kept in memory.
pub const MAX_TURNS: usize = 50;

/// What one input line means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Empty,
    Question(String),
    Command(Command),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Findings,
    Backends,
    Explain(String),
    History,
    Help,
    Quit,
    Unknown(String),
}

pub const HELP: &str =
    "Ask a question in plain language, e.g. \"why are requests to orders-api failing?\".
Commands:
  /findings      the findings, most urgent first
  /backends      backends and their health
  /explain ID    one finding in full: evidence, log rows, story, proposals
  /history       the questions asked so far
  /help          this help
  /quit          leave (also Ctrl-D)";

/// Reads one input line.
pub fn parse(line: &str) -> Input {
    let line = line.trim();
    if line.is_empty() {
        return Input::Empty;
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Input::Question(line.to_string());
    };
    let (cmd, arg) = match rest.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (rest, ""),
    };
    Input::Command(match cmd.to_ascii_lowercase().as_str() {
        "findings" | "f" => Command::Findings,
        "backends" | "b" => Command::Backends,
        "explain" | "e" if !arg.is_empty() => Command::Explain(arg.to_string()),
        "history" => Command::History,
        "help" | "h" | "?" => Command::Help,
        "quit" | "q" | "exit" => Command::Quit,
        _ => Command::Unknown(line.to_string()),
    })
}

/// One question and its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub question: String,
    pub answer: Answer,
}

/// What the REPL prints after a line, and whether to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub quit: bool,
}

impl Reply {
    fn text(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            quit: false,
        }
    }
}

/// The history of a chat session.
#[derive(Clone, Debug, Default)]
pub struct Conversation {
    pub turns: Vec<Turn>,
    /// A window set from outside (the TUI's time cursor); questions are
    /// about it until it is cleared.
    pub window: Option<crate::model::Window>,
}

impl Conversation {
    /// What the last answer was about: the names of the last question that
    /// named any, and the incident (findings and window) of the last answer
    /// that had one; the outside window wins over the incident's.
    pub fn context(&self) -> Option<Entities> {
        let named = self
            .turns
            .iter()
            .rev()
            .map(|t| &t.answer.entities)
            .find(|e| !e.names_nothing());
        let incident = self
            .turns
            .iter()
            .rev()
            .map(|t| &t.answer.entities)
            .find(|e| !e.focus.is_empty());
        let mut ctx = named.cloned().unwrap_or_default();
        if let Some(i) = incident {
            ctx.focus = i.focus.clone();
            ctx.window = i.window;
        }
        if self.window.is_some() {
            ctx.window = self.window;
        }
        let empty = ctx.names_nothing() && ctx.focus.is_empty() && ctx.window.is_none();
        (!empty).then_some(ctx)
    }

    /// Handles one line; `ask` answers questions (offline or a model).
    pub fn handle(
        &mut self,
        line: &str,
        inst: &Instance,
        mut ask: impl FnMut(&str, Option<&Entities>) -> Answer,
    ) -> Reply {
        match parse(line) {
            Input::Empty => Reply::text(""),
            Input::Question(q) => {
                let context = self.context();
                let answer = ask(&q, context.as_ref());
                let text = answer.render();
                self.turns.push(Turn {
                    question: q,
                    answer,
                });
                if self.turns.len() > MAX_TURNS {
                    self.turns.remove(0);
                }
                Reply::text(text)
            }
            Input::Command(c) => match c {
                Command::Findings => Reply::text(
                    Tool::Findings {
                        kind: None,
                        api: None,
                        backend: None,
                    }
                    .run(inst)
                    .text,
                ),
                Command::Backends => Reply::text(Tool::ListBackends.run(inst).text),
                Command::Explain(id) => Reply::text(Tool::Explain { id }.run(inst).text),
                Command::History => {
                    if self.turns.is_empty() {
                        return Reply::text("no questions yet");
                    }
                    let lines: Vec<String> = self
                        .turns
                        .iter()
                        .enumerate()
                        .map(|(i, t)| format!("{}. {}", i + 1, t.question))
                        .collect();
                    Reply::text(lines.join("\n"))
                }
                Command::Help => Reply::text(HELP),
                Command::Quit => Reply {
                    text: String::new(),
                    quit: true,
                },
                Command::Unknown(l) => {
                    Reply::text(format!("unknown command `{l}`; /help lists them"))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::offline;
    use crate::model::{Api, Diagnosis, Finding, FindingKind, Severity, Snapshot, Subject};

    fn inst() -> Instance {
        let f = Finding::new(
            FindingKind::ErrorSpike,
            Severity::High,
            Subject::operation("orders-api", "get-order"),
            "5xx spike on orders-api/get-order",
        );
        Instance {
            snapshot: Snapshot {
                apis: vec![Api {
                    id: "orders-api".into(),
                    ..Api::default()
                }],
                ..Snapshot::default()
            }
            .into(),
            diagnosis: Diagnosis {
                findings: vec![f],
                ..Diagnosis::default()
            },
        }
    }

    #[test]
    fn lines_parse_into_questions_and_commands() {
        assert_eq!(parse("  "), Input::Empty);
        assert_eq!(parse("why 503?"), Input::Question("why 503?".into()));
        assert_eq!(parse("/quit"), Input::Command(Command::Quit));
        assert_eq!(
            parse("/explain  abc123"),
            Input::Command(Command::Explain("abc123".into()))
        );
        assert_eq!(
            parse("/explain"),
            Input::Command(Command::Unknown("/explain".into()))
        );
        assert_eq!(parse("/FINDINGS"), Input::Command(Command::Findings));
    }

    #[test]
    fn a_session_keeps_history_context_and_stops_on_quit() {
        let inst = inst();
        let mut c = Conversation::default();
        let ask = |q: &str, p: Option<&Entities>| offline::answer_in_context(&inst, q, p);
        let r = c.handle("errors on orders-api?", &inst, ask);
        assert!(r.text.contains("orders-api"), "{}", r.text);
        let r = c.handle("and its policies?", &inst, ask);
        assert!(!r.quit);
        assert_eq!(c.turns.len(), 2);
        assert_eq!(
            c.turns[1].answer.entities.apis,
            vec!["orders-api".to_string()]
        );
        let id = inst.diagnosis.findings[0].id.clone();
        let r = c.handle(&format!("/explain {id}"), &inst, ask);
        assert!(
            r.text.contains("5xx spike on orders-api/get-order"),
            "{}",
            r.text
        );
        let r = c.handle("/history", &inst, ask);
        assert!(r.text.contains("2. and its policies?"), "{}", r.text);
        assert!(
            c.handle("/nope", &inst, ask)
                .text
                .contains("unknown command")
        );
        assert!(c.handle("/quit", &inst, ask).quit);
    }
}
