//! Answering questions about an instance: offline (keyword intents over the
//! typed tools, the default) or through an OpenAI-compatible model with the
//! same tools (`Remote`). The model can only read through tools and propose;
//! nothing here can change the instance.

pub mod offline;

pub use offline::{Answer, Entities, Intent};

use crate::tools::Instance;

/// Who answers.
#[derive(Clone, Debug, Default)]
pub enum Assistant {
    /// The keyword answerer: no model, no network.
    #[default]
    Offline,
}

impl Assistant {
    /// Answers one question; `previous` carries a conversation's entities.
    pub fn ask(&self, inst: &Instance, question: &str, previous: Option<&Entities>) -> Answer {
        match self {
            Assistant::Offline => offline::answer_in_context(inst, question, previous),
        }
    }
}
