//! The `mcp-bridge` binary: parse flags, send logs to stderr (stdout belongs
//! to the MCP protocol), run the command, map failure to an exit code.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("MCP_BRIDGE_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let cli = mcp_bridge::cli::Cli::parse();
    match mcp_bridge::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcp-bridge: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
