//! The `mcp-bridge` binary: parse flags, send logs to stderr (stdout belongs
//! to the MCP protocol), run the command, map failure to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// The variable `serve --log-format` reads; other commands read it too.
const LOG_FORMAT_ENV: &str = "MCP_BRIDGE_LOG_FORMAT";

/// Crates whose events below info are always dropped, whatever
/// `MCP_BRIDGE_LOG` says: rmcp logs whole requests (tokens, message bodies)
/// at debug and trace, and tokio-postgres logs every statement's parameters
/// (message bodies, credential hashes) at debug.
const NEVER_BELOW_INFO: [&str; 2] = ["rmcp", "tokio_postgres"];

/// Log filter from `MCP_BRIDGE_LOG` (default `warn`), capped by
/// [`NEVER_BELOW_INFO`]. With `json`, one object per line, with every span
/// it was logged in (an HTTP request's `request_id`) under `spans`.
fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env("MCP_BRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let never_log_requests = filter_fn(|meta| {
        *meta.level() <= Level::INFO || !NEVER_BELOW_INFO.iter().any(|c| meta.target().starts_with(c))
    });
    let text = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let layer = if json {
        text.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .boxed()
    } else {
        text.boxed()
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter).with_filter(never_log_requests))
        .init();
}

/// Whether logs are JSON: `serve --log-format` (which clap also fills from
/// the variable), else the variable for the other commands.
fn json_logs(matches: &clap::ArgMatches) -> bool {
    match matches.subcommand() {
        Some(("serve", serve)) => serve.get_one::<String>("log_format").is_some_and(|f| f == "json"),
        _ => std::env::var(LOG_FORMAT_ENV).is_ok_and(|f| f == "json"),
    }
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
    // Flags first (a bad one is clap's message and exit status), so the
    // log format they choose is in force before the first log line.
    let matches = mcp_bridge::cli::Cli::command().get_matches();
    init_logging(json_logs(&matches));
    let cli = match mcp_bridge::cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match mcp_bridge::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcp-bridge: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
