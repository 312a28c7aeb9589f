//! The `mcp-bridge` binary: parse flags, send logs to stderr (stdout belongs
//! to the MCP protocol), run the command, map failure to an exit code.

use std::process::ExitCode;

use clap::Parser;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// Log filter from `MCP_BRIDGE_LOG` (default `warn`), with one cap no
/// setting lifts: rmcp logs whole requests (tokens, message bodies) at debug
/// and trace, and tokio-postgres logs every statement's parameters (message
/// bodies, token and credential hashes) at debug, so their events below
/// info are always dropped.
fn init_logging() {
    let filter = EnvFilter::try_from_env("MCP_BRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let never_log_requests = filter_fn(|meta| {
        let target = meta.target();
        !((target.starts_with("rmcp") || target.starts_with("tokio_postgres")) && *meta.level() > Level::INFO)
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_filter(filter)
                .with_filter(never_log_requests),
        )
        .init();
}

fn main() -> ExitCode {
    // The sandbox helper re-executes this binary; it must stay a fresh,
    // single-threaded process (no runtime, no logging) until it execs.
    if std::env::args_os().nth(1).is_some_and(|a| a == "__sandbox") {
        return mcp_bridge::exec::sandbox_child_main();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-bridge: error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    init_logging();
    let cli = mcp_bridge::cli::Cli::parse();
    match mcp_bridge::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcp-bridge: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
