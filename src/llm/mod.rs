//! Answering questions about an instance: offline (keyword intents over the
//! typed tools, the default) or through an OpenAI-compatible model with the
//! same read-only tools (`Remote`). The model can only read through tools
//! and propose; nothing in this module can change the instance (there is no
//! executor to call, and unknown tool names are refused).
//!
//! - `offline`: the keyword answerer (pure).
//! - `lexicon`: its SRE synonyms and fuzzy name matching (pure).
//! - `prompt`: system prompt, prepared context, tool descriptions (pure).
//! - redaction: `model::redact`, the one step every output and prompt
//!   passes through (pure).
//! - `conversation`: a chat's state (pure): turns, commands, the incident
//!   a follow-up keeps; the REPL and the TUI's chat pane both drive it.
//! - `client`: one `/chat/completions` request through async-openai,
//!   whole or streamed (I/O).
//! - `stream`: streamed text restored and tidied as it arrives (pure).
//! - `remote`: the tool-calling loop with its guards.

pub mod client;
pub mod conversation;
pub mod lexicon;
pub mod offline;
pub mod prompt;
pub mod remote;
pub mod stream;

pub use client::RemoteConfig;
pub use conversation::{Command, Conversation, Input, Reply, parse};
pub use offline::{Answer, Entities, Intent};

use crate::tools::Instance;

/// Who answers. A closed set, so an enum (one per process: its size does
/// not matter).
#[derive(Clone, Debug, Default)]
#[allow(clippy::large_enum_variant)]
pub enum Assistant {
    /// The keyword answerer: no model, no network.
    #[default]
    Offline,
    /// An OpenAI-compatible endpoint, with the offline answer as fallback.
    Remote(RemoteConfig),
}

impl Assistant {
    /// Answers one question; `previous` carries a conversation's entities.
    pub fn ask(&self, inst: &Instance, question: &str, previous: Option<&Entities>) -> Answer {
        self.ask_streaming(inst, question, previous, &mut |_| {})
    }

    /// Answers one question and hands the answer's text to `on_text` in
    /// pieces as it arrives (offline: once, the whole text; a model: its
    /// streamed reply, masked names already restored). The returned answer
    /// is the complete one, as `ask` returns it; the pieces add up to its
    /// `text`, except when the model fails: then the answer is the offline
    /// one with a note, and the pieces are what the model wrote before it
    /// failed, often none (`render_after_stream` prints either case).
    pub fn ask_streaming(
        &self,
        inst: &Instance,
        question: &str,
        previous: Option<&Entities>,
        on_text: &mut dyn FnMut(&str),
    ) -> Answer {
        match self {
            Assistant::Offline => {
                let answer = scrub_answer(offline::answer_in_context(inst, question, previous));
                on_text(&answer.text);
                answer
            }
            Assistant::Remote(cfg) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => rt.block_on(remote::ask(cfg, inst, question, previous, on_text)),
                    Err(e) => {
                        let mut a =
                            scrub_answer(offline::answer_in_context(inst, question, previous));
                        a.note = Some(format!(
                            "cannot start the HTTP client ({e}); this is the offline answer"
                        ));
                        on_text(&a.text);
                        a
                    }
                }
            }
        }
    }

    /// The assistant the command line and environment ask for: `--llm`, or
    /// `APIMEDIC_LLM_BASE_URL` set, selects the model; `offline` wins.
    pub fn from_options(opts: &LlmOptions) -> anyhow::Result<Assistant> {
        if opts.offline || (!opts.llm && opts.base_url.is_none()) {
            return Ok(Assistant::Offline);
        }
        let Some(base) = opts.base_url.as_deref().filter(|s| !s.trim().is_empty()) else {
            anyhow::bail!(
                "--llm needs an endpoint: set APIMEDIC_LLM_BASE_URL (e.g. http://127.0.0.1:8090/v1) or --llm-url"
            );
        };
        let mut cfg = RemoteConfig::new(base, opts.model.as_deref().unwrap_or("local"));
        cfg.api_key = opts
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string);
        cfg.api_version = opts.api_version.clone().filter(|v| !v.trim().is_empty());
        cfg.ca_file = opts.ca_file.clone();
        cfg.timeout = std::time::Duration::from_secs_f64(opts.timeout_secs.clamp(0.1, 86_400.0));
        cfg.max_steps = opts.max_steps.clamp(1, 20);
        if opts.reply_tokens > 0 {
            cfg.reply_tokens = opts.reply_tokens.min(1 << 24);
        }
        if opts.deadline_secs > 0.0 {
            cfg.deadline =
                std::time::Duration::from_secs_f64(opts.deadline_secs.clamp(1.0, 86_400.0));
        }
        cfg.mask = opts.mask;
        cfg.stream = !opts.no_stream;
        if opts.require_tools {
            cfg.tool_choice = "required".to_string();
        }
        client::validate(&cfg).map_err(anyhow::Error::msg)?;
        Ok(Assistant::Remote(cfg))
    }
}

/// Model options shared by `ask` and `chat`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LlmOptions {
    /// Answer through an OpenAI-compatible model (with the offline answer as fallback).
    #[arg(long)]
    pub llm: bool,
    /// Never call a model, even when APIMEDIC_LLM_BASE_URL is set.
    #[arg(long, conflicts_with = "llm")]
    pub offline: bool,
    /// The endpoint's base URL: http://127.0.0.1:8090/v1 (llama.cpp), http://127.0.0.1:11434/v1 (Ollama), https://api.openai.com/v1, https://RESOURCE.openai.azure.com (Azure OpenAI v1 API).
    #[arg(long = "llm-url", env = "APIMEDIC_LLM_BASE_URL")]
    pub base_url: Option<String>,
    /// The model name the endpoint expects (Azure OpenAI: the deployment name).
    #[arg(long = "llm-model", env = "APIMEDIC_LLM_MODEL")]
    pub model: Option<String>,
    /// Sent as a bearer token (from the environment only, so it stays out of shell history).
    #[arg(skip = std::env::var("APIMEDIC_LLM_API_KEY").ok())]
    pub api_key: Option<String>,
    /// Seconds to wait for a model reply to start (streamed: also the longest pause between two pieces).
    #[arg(long = "llm-timeout", default_value_t = 60.0)]
    pub timeout_secs: f64,
    /// Model round trips per question.
    #[arg(long = "llm-steps", default_value_t = 6)]
    pub max_steps: usize,
    /// Most tokens one model reply may bring (sent as max_tokens; a reply that runs past it is cut).
    #[arg(
        long = "llm-reply-tokens",
        env = "APIMEDIC_LLM_REPLY_TOKENS",
        default_value_t = 800
    )]
    pub reply_tokens: usize,
    /// Seconds a whole question may take with the model, all round trips included; then the offline answer.
    #[arg(long = "llm-deadline", default_value_t = 300.0)]
    pub deadline_secs: f64,
    /// Mask hostnames and IP addresses before they leave (restored in the answer).
    #[arg(long)]
    pub mask: bool,
    /// Make the model call a tool on its first step (for small local models).
    #[arg(long)]
    pub require_tools: bool,
    /// Azure OpenAI deployment API version (e.g. 2024-10-21); the model is then the deployment name.
    #[arg(long = "llm-api-version", env = "APIMEDIC_LLM_API_VERSION")]
    pub api_version: Option<String>,
    /// A PEM file of extra root certificates to trust (a corporate TLS proxy).
    #[arg(long = "llm-ca-file", env = "APIMEDIC_LLM_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Wait for whole replies instead of streaming them.
    #[arg(
        long = "llm-no-stream",
        env = "APIMEDIC_LLM_NO_STREAM",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_stream: bool,
}

/// An answer with secrets replaced in everything it prints (the question
/// echoed, the text, the note, the checked lines), numbered across it. The
/// offline answerer quotes tool output, which quotes log rows and policy.
pub fn scrub_answer(mut a: Answer) -> Answer {
    let mut r = crate::model::redact::Redactor::new(false);
    a.question = r.redact(&a.question);
    a.text = r.redact(&a.text);
    a.note = a.note.map(|n| r.redact(&n));
    for x in a.checked.iter_mut().chain(a.unchecked.iter_mut()) {
        *x = r.redact(x);
    }
    a
}

/// What to print after an answer's streamed text: its closing lines and
/// note; or, when the pieces do not add up to the answer (the model failed
/// part-way and this is the offline answer), a break and the whole answer.
pub fn render_after_stream(answer: &Answer, streamed: &str) -> String {
    if streamed.is_empty() {
        return answer.render();
    }
    if streamed != answer.text {
        return format!("\n\n{}", answer.render());
    }
    let bare = Answer {
        note: None,
        ..answer.clone()
    };
    let rendered = bare.render();
    let mut tail = rendered
        .strip_prefix(answer.text.trim_end())
        .unwrap_or("\n")
        .to_string();
    if streamed.ends_with('\n') && tail.starts_with('\n') {
        tail.remove(0);
    }
    if let Some(n) = &answer.note {
        tail.push_str(&format!("\nNote: {n}\n"));
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_stream_only_the_closing_lines_and_note_are_left() {
        let a = Answer {
            text: "Backend X is down [d825790140885894].".into(),
            checked: vec!["findings".into()],
            confidence: "high".into(),
            note: Some("answered by m at http://h/v1".into()),
            ..Answer::default()
        };
        let tail = render_after_stream(&a, &a.text);
        assert_eq!(
            tail,
            "\n\nChecked: findings\nCould not check: -\nConfidence: high\n\nNote: answered by m at http://h/v1\n"
        );
        // Nothing streamed: the whole answer; a stream that broke off: a break, then the whole answer.
        assert_eq!(render_after_stream(&a, ""), a.render());
        assert!(render_after_stream(&a, "Backend X is").starts_with("\n\nNote: answered by m"));
    }

    #[test]
    fn options_are_checked_before_a_question_is_asked() {
        let opts = LlmOptions {
            llm: true,
            base_url: Some("http://127.0.0.1:8090/v1".into()),
            api_key: Some("  sk-1  ".into()),
            api_version: Some(" ".into()),
            timeout_secs: f64::INFINITY,
            max_steps: 100,
            no_stream: true,
            ..LlmOptions::default()
        };
        let Ok(Assistant::Remote(cfg)) = Assistant::from_options(&opts) else {
            panic!("a model is configured");
        };
        assert_eq!(cfg.api_key.as_deref(), Some("sk-1"));
        assert_eq!(cfg.api_version, None);
        assert_eq!(cfg.timeout, std::time::Duration::from_secs(86_400));
        assert_eq!(cfg.max_steps, 20);
        assert!(!cfg.stream);
        let bad = LlmOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..opts
        };
        assert!(
            Assistant::from_options(&bad)
                .is_err_and(|e| e.to_string().contains("APIMEDIC_LLM_CA_FILE"))
        );
    }
}
