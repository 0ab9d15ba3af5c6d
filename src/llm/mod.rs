//! Answering questions about an instance: offline (keyword intents over the
//! typed tools, the default) or through an OpenAI-compatible model with the
//! same read-only tools (`Remote`). The model can only read through tools
//! and propose; nothing in this module can change the instance (there is no
//! executor to call, and unknown tool names are refused).
//!
//! - `offline`: the keyword answerer (pure).
//! - `prompt`: system prompt, prepared context, tool descriptions (pure).
//! - `redact`: the one redaction step before anything leaves (pure).
//! - `client`: one `/chat/completions` request (I/O).
//! - `remote`: the tool-calling loop with its guards.

pub mod client;
pub mod offline;
pub mod prompt;
pub mod redact;
pub mod remote;

pub use client::RemoteConfig;
pub use offline::{Answer, Entities, Intent};

use crate::tools::Instance;

/// Who answers. A closed set, so an enum.
#[derive(Clone, Debug, Default)]
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
    /// fragments as it arrives (offline: once, the whole text). The returned
    /// answer is the complete one, as `ask` returns it.
    pub fn ask_streaming(
        &self,
        inst: &Instance,
        question: &str,
        previous: Option<&Entities>,
        on_text: &mut dyn FnMut(&str),
    ) -> Answer {
        let answer = self.ask_whole(inst, question, previous);
        on_text(&answer.text);
        answer
    }

    fn ask_whole(&self, inst: &Instance, question: &str, previous: Option<&Entities>) -> Answer {
        match self {
            Assistant::Offline => offline::answer_in_context(inst, question, previous),
            Assistant::Remote(cfg) => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => rt.block_on(remote::ask(cfg, inst, question, previous)),
                    Err(e) => {
                        let mut a = offline::answer_in_context(inst, question, previous);
                        a.note = Some(format!(
                            "cannot start the HTTP client ({e}); this is the offline answer"
                        ));
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
        cfg.api_key = opts.api_key.clone().filter(|k| !k.is_empty());
        cfg.timeout = std::time::Duration::from_secs_f64(opts.timeout_secs.max(0.1));
        cfg.max_steps = opts.max_steps.clamp(1, 20);
        cfg.mask = opts.mask;
        if opts.require_tools {
            cfg.tool_choice = "required".to_string();
        }
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
    /// The endpoint's base URL, e.g. http://127.0.0.1:8090/v1.
    #[arg(long = "llm-url", env = "APIMEDIC_LLM_BASE_URL")]
    pub base_url: Option<String>,
    /// The model name the endpoint expects.
    #[arg(long = "llm-model", env = "APIMEDIC_LLM_MODEL")]
    pub model: Option<String>,
    /// Sent as a bearer token (from the environment only, so it stays out of shell history).
    #[arg(skip = std::env::var("APIMEDIC_LLM_API_KEY").ok())]
    pub api_key: Option<String>,
    /// Seconds to wait for one model reply.
    #[arg(long = "llm-timeout", default_value_t = 60.0)]
    pub timeout_secs: f64,
    /// Model round trips per question.
    #[arg(long = "llm-steps", default_value_t = 6)]
    pub max_steps: usize,
    /// Mask hostnames and IP addresses before they leave (restored in the answer).
    #[arg(long)]
    pub mask: bool,
    /// Make the model call a tool on its first step (for small local models).
    #[arg(long)]
    pub require_tools: bool,
}
