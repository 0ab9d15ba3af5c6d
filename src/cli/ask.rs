//! `apimedic ask "question" [PATH...]`: one question answered from exported
//! data (or the demo), offline unless `--llm` is given. With a model and
//! text output, the answer is printed as it is written (streamed).

use crate::llm::{Assistant, render_after_stream};
use crate::playbook;
use crate::tools::Instance;
use anyhow::Context;
use clap::ValueEnum;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AskFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct AskArgs {
    /// The question, in plain language.
    pub question: String,
    /// Files and folders of exported gateway data. None: the built-in demo.
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: AskFormat,
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

/// Loads exported files (or the demo) and analyses them once.
pub fn instance(paths: &[PathBuf], playbooks: Option<&PathBuf>) -> anyhow::Result<Instance> {
    instance_from(paths, playbooks, &Default::default(), &Default::default())
}

/// Loads the data (files, the demo, or a live Azure target) and analyses it once.
pub fn instance_from(
    paths: &[PathBuf],
    playbooks: Option<&PathBuf>,
    azure: &super::azure::AzureArgs,
    span: &super::azure::SpanArgs,
) -> anyhow::Result<Instance> {
    if azure.is_live() {
        if !paths.is_empty() {
            anyhow::bail!(
                "give exported files or a live target (--azure, --subscription, --all), not both"
            );
        }
        let playbooks = match playbooks {
            Some(dir) => playbook::Playbooks::load_dir(dir)?,
            None => playbook::Playbooks::built_in(),
        };
        let snapshot = azure.load_one(span)?.unwrap_or_default();
        return Ok(Instance::new(snapshot, &playbooks));
    }
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        anyhow::bail!(
            "{} does not exist; give a folder of exported gateway data, or no path for the built-in demo",
            missing.display()
        );
    }
    let playbooks = match playbooks {
        Some(dir) => playbook::Playbooks::load_dir(dir)?,
        None => playbook::Playbooks::built_in(),
    };
    let snapshot = super::load(paths)?;
    Ok(Instance::new(snapshot, &playbooks))
}

pub fn run(args: AskArgs) -> anyhow::Result<ExitCode> {
    let inst = instance_from(
        &args.paths,
        args.playbooks.as_ref(),
        &args.azure,
        &args.span,
    )?;
    let assistant = Assistant::from_options(&args.llm)?;
    let mut stdout = std::io::stdout().lock();
    let written = match (args.format, &assistant) {
        (AskFormat::Json, _) => {
            let answer = assistant.ask(&inst, &args.question, None);
            crate::audit::record_model_refusals(&answer.refused);
            let mut s = serde_json::to_string_pretty(&answer)?;
            s.push('\n');
            stdout.write_all(s.as_bytes())
        }
        (AskFormat::Text, Assistant::Offline) => {
            let answer = assistant.ask(&inst, &args.question, None);
            crate::audit::record_model_refusals(&answer.refused);
            stdout.write_all(answer.render().as_bytes())
        }
        (AskFormat::Text, Assistant::Remote(_)) => {
            // The model's text is printed as it is written; a failed write
            // (a closed pipe) stops the printing, not the answer.
            let mut streamed = String::new();
            let mut failed: Option<std::io::Error> = None;
            let answer = assistant.ask_streaming(&inst, &args.question, None, &mut |t| {
                streamed.push_str(t);
                if failed.is_none()
                    && let Err(e) = stdout.write_all(t.as_bytes()).and_then(|_| stdout.flush())
                {
                    failed = Some(e);
                }
            });
            crate::audit::record_model_refusals(&answer.refused);
            match failed {
                Some(e) => Err(e),
                None => stdout.write_all(render_after_stream(&answer, &streamed).as_bytes()),
            }
        }
    };
    if let Err(e) = written.and_then(|_| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("cannot write the answer");
    }
    Ok(ExitCode::SUCCESS)
}
