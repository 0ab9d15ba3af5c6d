//! The command line: a clap-derived record of what was typed and one
//! function per subcommand. The only module that wires layers together.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "apimedic",
    version,
    about = "SRE diagnostics for API gateways (Azure API Management, nginx)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Diagnose exported gateway data (or the bundled demo) and report findings.
    Diagnose,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _ = cli;
    Ok(ExitCode::SUCCESS)
}
