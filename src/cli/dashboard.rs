//! `mcp-bridge dashboard`: the overseer's web pages on this machine's
//! database, on loopback unless told otherwise. Prints a one-time login
//! URL; the browser exchanges it for a session cookie (see
//! [`crate::dashboard`]). The same router is mounted at `/ui` by
//! `serve --http`; this command is only its local front door.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::open_bridge;
use crate::bridge::Bridge;
use crate::config::Config;
use crate::dashboard::{Dashboard, Mode, PREFIX};
use crate::store::admin::FullStore;
use crate::store::sqlite::OpenMode;

/// Where the dashboard listens unless told otherwise.
pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:8751";

/// `dashboard`'s flags.
#[derive(Debug, Args)]
pub(super) struct DashboardArgs {
    /// The address to listen on (IP:PORT; port 0 picks a free one).
    #[arg(long, value_name = "IP:PORT", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Allow a --listen address other machines can reach. The dashboard
    /// speaks plain HTTP: the session cookie would cross the network in clear.
    /// Prefer `serve --http` with TLS, which serves the same pages at /ui.
    #[arg(long)]
    allow_network: bool,
    /// A further Host header value to accept (repeatable); loopback names and
    /// the listen address are always accepted.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
}

/// Runs the dashboard until SIGINT or SIGTERM.
pub(super) async fn run(config: Config, args: DashboardArgs) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        if !args.allow_network {
            anyhow::bail!(
                "refusing to serve the dashboard on {}, an address other machines can reach: it is plain HTTP. \
                 Use a loopback address (the default {DEFAULT_LISTEN}), `serve --http` with TLS (pages at {PREFIX}), \
                 or pass --allow-network on a trusted network",
                args.listen
            );
        }
        tracing::warn!(
            addr = %args.listen,
            "the dashboard is listening on a network address over plain HTTP: its session cookie crosses the network unencrypted"
        );
    }
    on_bridge!(open_bridge(&config, OpenMode::CreateIfMissing).await?, |bridge| {
        serve(bridge, args).await
    })
}

async fn serve<S: FullStore>(bridge: Bridge<S>, args: DashboardArgs) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(str::to_owned).to_vec();
    hosts.push(local.ip().to_string());
    hosts.extend(args.allowed_hosts);
    let stopping = CancellationToken::new();
    let state = Arc::new(Dashboard::new(
        bridge,
        Mode::Local,
        hosts,
        false,
        stopping.clone(),
    ));
    let token = state.sessions.issue_login_token();
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to(&format!("{PREFIX}/")) }),
        )
        .merge(crate::dashboard::router(state));
    print_login_url(local, &token)?;
    tracing::info!(addr = %local, path = PREFIX, "serving the dashboard");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            crate::http::shutdown_signal().await;
            stopping.cancel();
        })
        .await
        .context("serving the dashboard")?;
    Ok(ExitCode::SUCCESS)
}

/// The one place the login token is shown: the overseer's terminal.
#[allow(clippy::print_stdout, reason = "the overseer's commands report on stdout")]
fn print_login_url(local: SocketAddr, token: &str) -> anyhow::Result<()> {
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        match local {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "dashboard: open http://{host}:{}{PREFIX}/login?token={token}\n\
         (the link works once; stop with Ctrl-C)",
        local.port()
    )?;
    out.flush()?;
    Ok(())
}
