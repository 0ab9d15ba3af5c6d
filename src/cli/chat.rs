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
    #[command(flatten)]
    pub azure: super::azure::AzureArgs,
    #[command(flatten)]
    pub span: super::azure::SpanArgs,
}

pub fn run(args: ChatArgs) -> anyhow::Result<ExitCode> {
    let inst = super::ask::instance_from(
        &args.paths,
        args.playbooks.as_ref(),
        &args.azure,
        &args.span,
    )?;
    let assistant = Assistant::from_options(&args.llm)?;
    let stdin = std::io::stdin();
    let source = if stdin.is_terminal() && std::io::stdout().is_terminal() {
        let history = chat::history_file(
            std::env::var("XDG_STATE_HOME").ok().as_deref(),
            std::env::var("HOME").ok().as_deref(),
        );
        chat::Source::editor(history).map_err(anyhow::Error::msg)?
    } else {
        chat::Source::Lines(stdin.lock())
    };
    // Unlocked stdout: the line editor writes its prompt to the terminal too.
    chat::run(&inst, &assistant, source, std::io::stdout())
        .context("chat stopped: cannot read stdin or write stdout")?;
    Ok(ExitCode::SUCCESS)
}
