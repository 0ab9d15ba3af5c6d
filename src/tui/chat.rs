//! The chat pane: its state (transcript, input line, earlier questions), the
//! transitions `app::update` applies to it, and `reply`, the one job of the
//! chat thread: a line through the same `llm::Conversation` and
//! `llm::Assistant` that `apimedic chat` uses. Everything here but `reply`
//! is pure; `reply` may wait on a model, so only the chat thread calls it.
//!
//! One question is answered at a time: Enter while an answer is pending is
//! refused with a message and the typed line is kept, so nothing is lost
//! and answers never arrive out of order.

use super::app::{App, Cmd, Screen};
use crate::llm::{Answer, Assistant};
use crate::llm::{Command, Conversation, Input, parse};
use crate::tools::Instance;

/// Most transcript entries kept; the oldest go first.
pub const MAX_ENTRIES: usize = 300;
/// Most questions Up can recall.
pub const MAX_HISTORY: usize = 100;
/// Lines PgUp / PgDn scroll.
pub const PAGE: i32 = 10;
/// Scroll offsets stay within this many lines either way.
pub const MAX_OFFSET: i32 = 5000;

/// One block of the transcript.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A line the user sent: a question or a slash command.
    Asked(String),
    /// A question's answer, with its checked / could-not-check lines.
    Answer(Box<Answer>),
    /// What a slash command printed.
    Text(String),
    /// Something went wrong answering (the engine's message).
    Failed(String),
}

/// What the chat thread sends back for one line.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatReply {
    Answer(Box<Answer>),
    Text(String),
    Failed(String),
}

/// The line waiting for its reply, and any text streamed so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    pub line: String,
    pub partial: String,
}

/// Where the transcript view sits. `anchor: None` measures `offset` from
/// the end (0 shows the last lines); `Some(i)` from the first line of entry
/// `i`, so a long answer is read from its question down. The view clamps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub anchor: Option<usize>,
    pub offset: i32,
}

/// The chat pane's state; kept for the whole session, open or not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatPane {
    pub entries: Vec<Entry>,
    /// The line being typed.
    pub input: String,
    /// Cursor position in `input`, in characters.
    pub cursor: usize,
    /// Lines sent, oldest first.
    pub history: Vec<String>,
    /// Which history line Up/Down is showing; `None`: the line being typed.
    pub recall: Option<usize>,
    /// The line being typed when recalling began, restored past the newest.
    pub draft: String,
    pub view: View,
    pub pending: Option<Pending>,
    /// Who answers: `offline`, or `model NAME`.
    pub engine: String,
}

/// What a key does in the pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatMsg {
    /// Open the pane (`:chat`, `a`).
    Open,
    Input(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    /// Clear the line (Ctrl-u).
    Clear,
    /// Enter: send the line.
    Send,
    /// Up: the previous question.
    Older,
    /// Down: the next question, then the line being typed.
    Newer,
    /// PgUp / PgDn: scroll the transcript by this many lines.
    Scroll(i32),
    /// Esc: back to the dashboard, the transcript kept.
    Leave,
}

impl ChatPane {
    fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
        if self.entries.len() > MAX_ENTRIES {
            let drop = self.entries.len() - MAX_ENTRIES;
            self.entries.drain(..drop);
            self.view.anchor = self.view.anchor.and_then(|a| a.checked_sub(drop));
        }
    }

    /// Byte index of character `n` of the input.
    fn byte_at(&self, n: usize) -> usize {
        self.input
            .char_indices()
            .nth(n)
            .map(|(i, _)| i)
            .unwrap_or(self.input.len())
    }

    fn set_input(&mut self, text: String) {
        self.cursor = text.chars().count();
        self.input = text;
    }

    /// Edits the input line; true when the key was an edit.
    fn edit(&mut self, m: ChatMsg) -> bool {
        let len = self.input.chars().count();
        match m {
            ChatMsg::Input(c) => {
                let at = self.byte_at(self.cursor);
                self.input.insert(at, c);
                self.cursor += 1;
            }
            ChatMsg::Backspace if self.cursor > 0 => {
                let at = self.byte_at(self.cursor - 1);
                self.input.remove(at);
                self.cursor -= 1;
            }
            ChatMsg::Delete if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.input.remove(at);
            }
            ChatMsg::Backspace | ChatMsg::Delete => {}
            ChatMsg::Left => self.cursor = self.cursor.saturating_sub(1),
            ChatMsg::Right => self.cursor = (self.cursor + 1).min(len),
            ChatMsg::Home => self.cursor = 0,
            ChatMsg::End => self.cursor = len,
            ChatMsg::Clear => {
                self.input.clear();
                self.cursor = 0;
            }
            _ => return false,
        }
        true
    }

    /// Up and Down through earlier questions.
    fn recall(&mut self, older: bool) {
        let n = self.history.len();
        if n == 0 {
            return;
        }
        let next = match (self.recall, older) {
            (None, true) => {
                self.draft = self.input.clone();
                Some(n - 1)
            }
            (None, false) => return,
            (Some(i), true) => Some(i.saturating_sub(1)),
            (Some(i), false) if i + 1 < n => Some(i + 1),
            (Some(_), false) => None,
        };
        self.recall = next;
        let text = match next {
            Some(i) => self.history.get(i).cloned().unwrap_or_default(),
            None => std::mem::take(&mut self.draft),
        };
        self.set_input(text);
    }

    fn scroll(&mut self, lines: i32) {
        self.view.offset = (self.view.offset + lines).clamp(-MAX_OFFSET, MAX_OFFSET);
    }

    /// Takes the typed line to send; `None` when it is empty.
    fn take_line(&mut self) -> Option<String> {
        let line = self.input.trim().to_string();
        if line.is_empty() {
            return None;
        }
        if self.history.last() != Some(&line) {
            self.history.push(line.clone());
            if self.history.len() > MAX_HISTORY {
                self.history.remove(0);
            }
        }
        self.input.clear();
        self.cursor = 0;
        self.recall = None;
        self.draft.clear();
        Some(line)
    }

    /// A reply arrived: it ends the pending line.
    pub fn receive(&mut self, reply: ChatReply) {
        self.pending = None;
        self.push(match reply {
            ChatReply::Answer(a) => Entry::Answer(a),
            ChatReply::Text(t) => Entry::Text(t),
            ChatReply::Failed(e) => Entry::Failed(e),
        });
    }

    /// A fragment of the pending answer, as the model writes it.
    pub fn stream(&mut self, text: &str) {
        if let Some(p) = &mut self.pending {
            p.partial.push_str(text);
        }
    }

    /// Questions asked so far (not slash commands).
    pub fn questions(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Answer(_)))
            .count()
    }
}

/// The pane's transitions; returns the line for the chat thread, if any.
pub fn update(app: &mut App, m: ChatMsg) -> Option<Cmd> {
    match m {
        ChatMsg::Open => {
            if app.loaded().is_none() {
                app.say("the data is still loading; chat opens once it is ready");
                return None;
            }
            app.overlay = None;
            app.prompt = None;
            if *app.screen() != Screen::Chat {
                app.stack.push(super::app::Crumb::new(Screen::Chat));
            }
            app.message = None;
            None
        }
        ChatMsg::Leave => {
            if *app.screen() == Screen::Chat && app.stack.len() > 1 {
                app.stack.pop();
                let screen = app.screen().clone();
                return app.inspect_cmd(&screen);
            }
            None
        }
        ChatMsg::Older | ChatMsg::Newer => {
            app.chat.recall(m == ChatMsg::Older);
            None
        }
        ChatMsg::Scroll(lines) => {
            app.chat.scroll(lines);
            None
        }
        ChatMsg::Send => send(app),
        edit => {
            app.chat.edit(edit);
            if app.chat.recall.is_some() && matches!(edit, ChatMsg::Input(_) | ChatMsg::Clear) {
                // Editing a recalled line makes it the line being typed.
                app.chat.recall = None;
            }
            None
        }
    }
}

fn send(app: &mut App) -> Option<Cmd> {
    let typed = app.chat.input.trim().to_string();
    if typed.is_empty() {
        return None;
    }
    if parse(&typed) == Input::Command(Command::Quit) {
        app.chat.take_line();
        return update(app, ChatMsg::Leave);
    }
    if let Some(p) = &app.chat.pending {
        let waiting = p.line.clone();
        app.complain(format!(
            "still answering `{waiting}`; your line is kept, press Enter again once the answer is in"
        ));
        return None;
    }
    let line = app.chat.take_line()?;
    app.message = None;
    app.chat.push(Entry::Asked(line.clone()));
    app.chat.view = View {
        anchor: Some(app.chat.entries.len() - 1),
        offset: 0,
    };
    app.chat.pending = Some(Pending {
        line: line.clone(),
        partial: String::new(),
    });
    Some(Cmd::Chat(line, app.cursor_window()))
}

/// Answers one line as `apimedic chat` would: a question through the
/// assistant (with the conversation's context for follow-ups), a slash
/// command through the tools. `on_text` receives the answer's text as a
/// model streams it. Runs on the chat thread: a model may take seconds.
pub fn reply(
    conversation: &mut Conversation,
    inst: &Instance,
    assistant: &Assistant,
    line: &str,
    on_text: &mut dyn FnMut(&str),
) -> ChatReply {
    let question = matches!(parse(line), Input::Question(_));
    let printed = conversation.handle(line, inst, |q, previous| {
        assistant.ask_streaming(inst, q, previous, &mut *on_text)
    });
    // A question always adds a turn (the oldest may have gone).
    match conversation.turns.last() {
        Some(turn) if question => ChatReply::Answer(Box::new(turn.answer.clone())),
        _ => ChatReply::Text(printed.text.trim_end().to_string()),
    }
}

/// `offline`, or `model NAME` for the pane's title and status.
pub fn engine_label(assistant: &Assistant, model: Option<&str>) -> String {
    match assistant {
        Assistant::Offline => "offline".to_string(),
        Assistant::Remote(_) => format!("model {}", model.unwrap_or("local")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::Playbooks;
    use crate::tui::app::{Msg, update as app_update};
    use crate::tui::data::{self, tests::incident};
    use crate::tui::theme::Theme;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn ready() -> App {
        let books = Playbooks::built_in();
        let (mut app, _) = App::new("test", Theme::COLOR, false, books.clone());
        let loaded = data::prepare(incident(), &books);
        app_update(&mut app, Msg::Loaded(Ok(Box::new(loaded))));
        app
    }

    fn press(app: &mut App, code: KeyCode, mods: KeyModifiers) -> Option<Cmd> {
        app_update(app, Msg::Key(KeyEvent::new(code, mods)))
    }

    fn code(app: &mut App, code: KeyCode) -> Option<Cmd> {
        press(app, code, KeyModifiers::NONE)
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            code(app, KeyCode::Char(c));
        }
    }

    fn instance() -> Instance {
        Instance::new(incident(), &Playbooks::built_in())
    }

    fn answer(text: &str) -> ChatReply {
        let mut a = crate::llm::offline::answer_in_context(&instance(), text, None);
        a.text = text.to_string();
        ChatReply::Answer(Box::new(a))
    }

    #[test]
    fn a_opens_the_pane_where_letters_are_text() {
        let mut app = ready();
        code(&mut app, KeyCode::Char('a'));
        assert_eq!(app.screen(), &Screen::Chat);
        assert_eq!(app.stack.len(), 2);
        assert_eq!(
            code(&mut app, KeyCode::Char('q')),
            None,
            "q is a letter here"
        );
        typed(&mut app, ":?/[0");
        assert_eq!(app.chat.input, "q:?/[0");
        assert_eq!(app.cursor, None, "[ and 0 did not move the time cursor");
        assert!(app.prompt.is_none() && app.overlay.is_none());
        assert_eq!(
            press(&mut app, KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Cmd::Quit),
            "Ctrl-c still quits"
        );
    }

    #[test]
    fn typing_edits_at_the_cursor() {
        let mut app = ready();
        update(&mut app, ChatMsg::Open);
        typed(&mut app, "helo");
        code(&mut app, KeyCode::Left);
        typed(&mut app, "l");
        assert_eq!((app.chat.input.as_str(), app.chat.cursor), ("hello", 4));
        code(&mut app, KeyCode::Home);
        code(&mut app, KeyCode::Delete);
        typed(&mut app, "H");
        code(&mut app, KeyCode::End);
        code(&mut app, KeyCode::Backspace);
        typed(&mut app, "ø?");
        assert_eq!(app.chat.input, "Hellø?");
        code(&mut app, KeyCode::Left);
        code(&mut app, KeyCode::Backspace);
        assert_eq!(
            app.chat.input, "Hell?",
            "a multi-byte letter is removed whole"
        );
        code(&mut app, KeyCode::Right);
        code(&mut app, KeyCode::Right);
        assert_eq!(app.chat.cursor, 5, "the cursor stops at the end");
        press(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
        assert_eq!((app.chat.input.as_str(), app.chat.cursor), ("", 0));
        code(&mut app, KeyCode::Backspace);
        code(&mut app, KeyCode::Delete);
        assert_eq!(app.chat.input, "", "editing an empty line is harmless");
    }

    #[test]
    fn enter_sends_one_question_at_a_time() {
        let mut app = ready();
        update(&mut app, ChatMsg::Open);
        assert_eq!(
            code(&mut app, KeyCode::Enter),
            None,
            "an empty line is not sent"
        );
        typed(&mut app, "  what backends does my instance have ");
        let cmd = code(&mut app, KeyCode::Enter);
        assert_eq!(
            cmd,
            Some(Cmd::Chat(
                "what backends does my instance have".into(),
                None
            ))
        );
        assert_eq!(
            app.chat.pending.as_ref().map(|p| p.line.as_str()),
            Some("what backends does my instance have")
        );
        assert_eq!(app.chat.input, "");
        assert_eq!(
            app.chat.entries,
            vec![Entry::Asked("what backends does my instance have".into())]
        );
        assert_eq!(
            app.chat.view,
            View {
                anchor: Some(0),
                offset: 0
            },
            "the view follows the new question"
        );
        typed(&mut app, "and why?");
        assert_eq!(
            code(&mut app, KeyCode::Enter),
            None,
            "refused while pending"
        );
        let m = app.message.clone().expect("a message");
        assert!(m.error && m.text.contains("still answering"), "{m:?}");
        assert_eq!(app.chat.input, "and why?", "the line is kept");
        assert_eq!(app.chat.entries.len(), 1);
        app_update(&mut app, Msg::ChatAnswer(Box::new(answer("9 backends."))));
        assert_eq!(
            code(&mut app, KeyCode::Enter),
            Some(Cmd::Chat("and why?".into(), None)),
            "sent once the answer is in"
        );
    }

    #[test]
    fn deltas_accumulate_and_the_answer_ends_the_turn() {
        let mut app = ready();
        update(&mut app, ChatMsg::Open);
        app_update(&mut app, Msg::ChatDelta("ignored: nothing pending".into()));
        typed(&mut app, "why is it slow?");
        code(&mut app, KeyCode::Enter);
        app_update(&mut app, Msg::ChatDelta("The p95 ".into()));
        app_update(&mut app, Msg::ChatDelta("is 4.9 s.".into()));
        assert_eq!(
            app.chat.pending.as_ref().map(|p| p.partial.as_str()),
            Some("The p95 is 4.9 s.")
        );
        app_update(
            &mut app,
            Msg::ChatAnswer(Box::new(answer("The p95 is 4.9 s."))),
        );
        assert_eq!(app.chat.pending, None);
        assert_eq!(app.chat.entries.len(), 2);
        assert!(
            matches!(&app.chat.entries[1], Entry::Answer(a) if a.text == "The p95 is 4.9 s."),
            "{:?}",
            app.chat.entries
        );
        assert_eq!(app.chat.questions(), 1);
        app_update(
            &mut app,
            Msg::ChatAnswer(Box::new(ChatReply::Text("1. why is it slow?".into()))),
        );
        assert_eq!(app.chat.questions(), 1, "command output is not a question");
    }

    #[test]
    fn esc_leaves_to_where_it_was_and_keeps_the_transcript() {
        let mut app = ready();
        typed(&mut app, ":ops");
        code(&mut app, KeyCode::Enter);
        typed(&mut app, ":chat");
        code(&mut app, KeyCode::Enter);
        assert_eq!(app.screen(), &Screen::Chat);
        typed(&mut app, "/backends");
        code(&mut app, KeyCode::Enter);
        typed(&mut app, "half typed");
        code(&mut app, KeyCode::Esc);
        assert_eq!(app.screen(), &Screen::Operations);
        app_update(
            &mut app,
            Msg::ChatAnswer(Box::new(ChatReply::Text("orders-app".into()))),
        );
        assert!(
            app.message
                .as_ref()
                .is_some_and(|m| m.text.contains("a opens")),
            "an answer for a closed pane says where it is: {:?}",
            app.message
        );
        code(&mut app, KeyCode::Char('a'));
        assert_eq!(app.chat.entries.len(), 2, "the transcript stayed");
        assert_eq!(app.chat.input, "half typed", "so did the line");
        press(&mut app, KeyCode::Char('u'), KeyModifiers::CONTROL);
        typed(&mut app, "/quit");
        assert_eq!(code(&mut app, KeyCode::Enter), None, "/quit only leaves");
        assert_eq!(app.screen(), &Screen::Operations);
        update(&mut app, ChatMsg::Leave);
        assert_eq!(
            app.screen(),
            &Screen::Operations,
            "Leave elsewhere does nothing"
        );
    }

    #[test]
    fn up_and_down_recall_earlier_questions_and_the_draft() {
        let mut app = ready();
        update(&mut app, ChatMsg::Open);
        code(&mut app, KeyCode::Up);
        assert_eq!(app.chat.input, "", "nothing to recall yet");
        for q in ["one", "two", "two"] {
            typed(&mut app, q);
            code(&mut app, KeyCode::Enter);
            app_update(&mut app, Msg::ChatAnswer(Box::new(answer(q))));
        }
        assert_eq!(app.chat.history, vec!["one", "two"], "repeats kept once");
        typed(&mut app, "draft");
        code(&mut app, KeyCode::Up);
        assert_eq!(app.chat.input, "two");
        code(&mut app, KeyCode::Up);
        code(&mut app, KeyCode::Up);
        assert_eq!((app.chat.input.as_str(), app.chat.cursor), ("one", 3));
        code(&mut app, KeyCode::Down);
        assert_eq!(app.chat.input, "two");
        code(&mut app, KeyCode::Down);
        assert_eq!(app.chat.input, "draft", "past the newest: the draft again");
        code(&mut app, KeyCode::Down);
        assert_eq!(app.chat.input, "draft");
        code(&mut app, KeyCode::Up);
        typed(&mut app, "!");
        assert_eq!(app.chat.recall, None, "editing a recalled line adopts it");
        assert_eq!(
            code(&mut app, KeyCode::Enter),
            Some(Cmd::Chat("two!".into(), None))
        );
    }

    #[test]
    fn pgup_pgdn_scroll_within_bounds() {
        let mut app = ready();
        update(&mut app, ChatMsg::Open);
        code(&mut app, KeyCode::PageUp);
        assert_eq!(
            app.chat.view,
            View {
                anchor: None,
                offset: -PAGE
            }
        );
        code(&mut app, KeyCode::PageDown);
        code(&mut app, KeyCode::PageDown);
        assert_eq!(app.chat.view.offset, PAGE);
        for _ in 0..1000 {
            code(&mut app, KeyCode::PageDown);
        }
        assert_eq!(app.chat.view.offset, MAX_OFFSET);
    }

    #[test]
    fn readonly_still_chats() {
        let books = Playbooks::built_in();
        let (mut app, _) = App::new("t", Theme::PLAIN, true, books.clone());
        app_update(
            &mut app,
            Msg::Loaded(Ok(Box::new(data::prepare(incident(), &books)))),
        );
        code(&mut app, KeyCode::Char('a'));
        typed(&mut app, "/findings");
        assert_eq!(
            code(&mut app, KeyCode::Enter),
            Some(Cmd::Chat("/findings".into(), None))
        );
    }

    #[test]
    fn chat_waits_for_the_data() {
        let (mut app, _) = App::new("demo", Theme::COLOR, false, Playbooks::default());
        update(&mut app, ChatMsg::Open);
        assert_eq!(app.screen(), &Screen::Overview);
        assert!(app.message.unwrap().text.contains("still loading"));
    }

    #[test]
    fn the_transcript_is_capped_and_the_anchor_follows() {
        let mut pane = ChatPane::default();
        for i in 0..MAX_ENTRIES {
            pane.push(Entry::Text(i.to_string()));
        }
        pane.view.anchor = Some(5);
        pane.push(Entry::Text("new".into()));
        pane.push(Entry::Text("newer".into()));
        assert_eq!(pane.entries.len(), MAX_ENTRIES);
        assert_eq!(pane.entries[0], Entry::Text("2".into()));
        assert_eq!(pane.view.anchor, Some(3));
    }

    #[test]
    fn reply_answers_questions_and_slash_commands_like_apimedic_chat() {
        let inst = instance();
        let mut conversation = Conversation::default();
        let mut streamed = String::new();
        let r = reply(
            &mut conversation,
            &inst,
            &Assistant::Offline,
            "what backends does my instance have",
            &mut |t| streamed.push_str(t),
        );
        let ChatReply::Answer(a) = &r else {
            panic!("{r:?}");
        };
        assert!(a.text.contains("orders-app"), "{}", a.text);
        assert!(!a.checked.is_empty(), "the checked line comes along");
        assert_eq!(streamed, a.text, "offline hands the text over once");
        assert_eq!(conversation.turns.len(), 1);
        let r = reply(
            &mut conversation,
            &inst,
            &Assistant::Offline,
            "/backends",
            &mut |_| {},
        );
        assert!(
            matches!(&r, ChatReply::Text(t) if t.contains("orders-app")),
            "{r:?}"
        );
        let r = reply(
            &mut conversation,
            &inst,
            &Assistant::Offline,
            "/history",
            &mut |_| {},
        );
        assert_eq!(
            r,
            ChatReply::Text("1. what backends does my instance have".into())
        );
        let id = inst.diagnosis.findings[0].id.clone();
        let r = reply(
            &mut conversation,
            &inst,
            &Assistant::Offline,
            &format!("/explain {id}"),
            &mut |_| {},
        );
        assert!(matches!(&r, ChatReply::Text(t) if t.contains(&id)), "{r:?}");
        let r = reply(
            &mut conversation,
            &inst,
            &Assistant::Offline,
            "/nope",
            &mut |_| {},
        );
        assert!(matches!(&r, ChatReply::Text(t) if t.contains("unknown command")));
        assert_eq!(conversation.turns.len(), 1, "commands are not turns");
    }

    #[test]
    fn engine_label_names_the_model() {
        assert_eq!(engine_label(&Assistant::Offline, Some("x")), "offline");
        let remote = Assistant::Remote(crate::llm::RemoteConfig::new("http://127.0.0.1:1/v1", "m"));
        assert_eq!(engine_label(&remote, Some("qwen")), "model qwen");
        assert_eq!(engine_label(&remote, None), "model local");
    }
}
