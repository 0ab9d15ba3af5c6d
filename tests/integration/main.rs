//! The one integration-test binary. Each module is one area:
//!
//! - `cli`: the built binary, run with NO_COLOR=1, its stdout, stderr and exit code.
//! - `scenarios`: every folder in `fixtures/scenarios/` through the whole pipeline,
//!   compared with its `expected.json`.
//! - `daemon`: the daemon on a live simulated feed against a real Alertmanager and a
//!   webhook receiver (SIGKILL + restart, receiver outage), and every config fixture.
//! - `tui_e2e`: `apimedic tui` driven in a private tmux server: scenario → failing
//!   operation → its finding, help, the time cursor, `q` exits 0.
//! - `eval`: the offline answerer over `tests/eval/cases.yaml` (question, scenario, facts).
//! - `remediate`: plan/apply/verify/undo against a stateful ARM stand-in (`arm_standin`),
//!   kill -9 and Ctrl-C mid-apply, the approval prompt in tmux, the import check.
//! - `hostile`: hostile and broken input (extreme timestamps, bombs, endless and truncated
//!   inputs, archives, FIFOs, the terminal after a signal), each run under a resource limit.
//! - `kql`: the KQL pushdown against duckdb-kql behind a loopback Log Analytics / ADX
//!   stand-in (`fixtures/kql/serve_kql.py`): parity with the file path, chunking, bad answers.
//! - `llm`: the model path against a scripted OpenAI-compatible server (`fixtures/llm/`),
//!   and a real local model when one is serving.
//! - `layering`: the crate's `crate::` imports against the architecture's allowed edges.
//! - `mcp`: `apimedic mcp` with real MCP clients (rmcp, the MCP Inspector CLI, the
//!   Python SDK) over stdio and HTTP, and the HTTP guards (Origin, Host, token).
//! - `verdict`: verdicts safe to act on — no false all-clear, ended vs ongoing, the
//!   exit rule, proposals ranked by story with their commands, config history from
//!   git and dated copies, lint over every file, net check endpoints and direction.

mod arm_standin;
mod azure;
mod cli;
mod daemon;
mod eval;
mod hostile;
mod kql;
mod layering;
mod llm;
mod mcp;
mod remediate;
mod scenarios;
mod secrets;
mod tui_e2e;
mod tui_remediate;
mod verdict;
