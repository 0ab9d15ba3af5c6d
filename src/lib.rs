//! apimedic: an SRE diagnostics agent for API gateways.
//!
//! Data flows one way:
//!
//! ```text
//! files | live sources | demo -> collect (I/O edge)  -> model::Snapshot
//! Snapshot  -> analyze (pure)   -> [Finding]
//! [Finding] -> playbook (pure)  -> Diagnosis (stories, proposals)
//! Diagnosis -> report (pure)    -> text | markdown | json
//! ```
//!
//! - [`model`]: plain data (Snapshot, Finding, Evidence, Diagnosis); imports nothing.
//! - [`collect`]: reads files and recognises them by content; `parse_*` are pure.
//! - [`analyze`]: pure functions from a snapshot to findings; home of polars and statrs.
//! - [`playbook`]: findings to diagnosis steps and remediation proposals, from `playbooks/`.
//! - [`report`]: a diagnosis rendered for people and machines.
//! - [`simulate`]: a realistic instance with injected incidents, in the real formats.
//! - [`azure`]: live Azure: sign-in (a token for a scope) and the read-only ARM client.
//! - [`mcp`]: the read-only tools served to MCP clients (never acts).
//! - [`http`]: every outbound HTTP client (model endpoints, alert sinks), over rustls.
//! - [`remediate`]: plans, approval binding, ARM writes, verification and undo (the only writer).
//! - [`audit`]: the hash-chained, append-only audit log in the state directory.
//! - [`cli`]: the command line; the only module that knows about all the others.

pub mod analyze;
pub mod audit;
pub mod azure;
pub mod chat;
pub mod cli;
pub mod collect;
pub mod daemon;
pub mod http;
pub mod llm;
pub mod mcp;
pub mod model;
pub mod playbook;
pub mod remediate;
pub mod report;
pub mod simulate;
pub mod tools;
pub mod tui;
