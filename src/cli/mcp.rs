//! `apimedic mcp [PATH...] [--http ADDR]`: serve the read-only tools over
//! the Model Context Protocol, on stdio (the default) or streamable HTTP.

use crate::mcp::{HttpOptions, Server, serve_http, serve_stdio};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct McpArgs {
    /// Files and folders of exported gateway data. None: the built-in demo.
    pub paths: Vec<PathBuf>,
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio
    /// (e.g. 127.0.0.1:8765). A non-loopback address needs a token.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Bearer token HTTP clients must send (Authorization: Bearer ...).
    /// Read from the environment so it never shows in `ps`.
    #[arg(
        long = "token-env",
        value_name = "VAR",
        default_value = "APIMEDIC_MCP_TOKEN"
    )]
    pub token_env: String,
    /// A browser origin allowed to call the HTTP server (repeatable), e.g.
    /// http://localhost:6274. Requests with any other Origin get 403.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
    /// A folder of playbooks to use instead of the built-in ones.
    #[arg(long)]
    pub playbooks: Option<PathBuf>,
}

pub fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    let token = std::env::var(&args.token_env)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let http = args.http.map(|addr| HttpOptions {
        addr,
        token,
        allowed_origins: args.allow_origin.clone(),
    });
    if let Some(opts) = &http {
        crate::mcp::check_http_options(opts).map_err(anyhow::Error::msg)?;
    }
    // Loading writes nothing to stdout: stdout is the protocol channel.
    let inst = super::ask::instance(&args.paths, args.playbooks.as_ref())?;
    let server = Server::new(inst);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match http {
            Some(opts) => serve_http(server, opts, shutdown_signal()).await,
            None => serve_stdio(server).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
