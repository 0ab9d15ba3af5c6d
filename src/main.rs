//! The `apimedic` binary: parse arguments, delegate, map the result to an
//! exit code (0 healthy, 1 findings at or above `--fail-on`, 2 error).

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = apimedic::cli::Cli::parse();
    match apimedic::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("apimedic: {err:#}");
            ExitCode::from(2)
        }
    }
}
