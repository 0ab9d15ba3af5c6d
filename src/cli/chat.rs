//! `apimedic chat [PATH...]`: an interactive question-and-answer session
//! over exported data (or the demo).

use crate::chat;
use crate::llm::Assistant;
use anyhow::Context;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// Files and folders of exported gateway data. None: the built-in demo.
    pub paths: Vec<PathBuf>,
    /// A folder of playbooks to use instead of the built-in ones.
    #[arg(long)]
    pub playbooks: Option<PathBuf>,
    #[command(flatten)]
    pub llm: crate::llm::LlmOptions,
}

pub fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let inst = super::ask::instance(&args.paths, args.playbooks.as_ref())?;
    let assistant = Assistant::from_options(&args.llm)?;
    let stdin = std::io::stdin();
    let prompt = stdin.is_terminal();
    chat::run(
        &inst,
        &assistant,
        stdin.lock(),
        std::io::stdout().lock(),
        prompt,
    )
    .context("chat stopped: cannot read stdin or write stdout")?;
    Ok(ExitCode::SUCCESS)
}
