//! The one integration-test binary. Each module is one area:
//!
//! - `cli`: the built binary, run with NO_COLOR=1, its stdout, stderr and exit code.
//! - `scenarios`: every folder in `fixtures/scenarios/` through the whole pipeline,
//!   compared with its `expected.json`.

mod cli;
mod scenarios;
