//! MCP over streamable HTTP (the first slice of issue 17): rmcp's
//! streamable HTTP service on axum at [`MCP_PATH`], behind bearer
//! authentication ([`mod@auth`]), with unauthenticated health endpoints
//! ([`mod@health`]).
//!
//! What this module owns: binding, the refusal of plain HTTP on a network
//! address, the Host and Origin allow-lists, the body limit, and graceful
//! shutdown. What it must never do: log a credential or a request body (it
//! logs neither headers nor bodies at any level). TLS, PostgreSQL, roles
//! other than `agent`, rate limits per credential and metrics come later.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::mcp::BridgeServer;
use crate::store::admin::FullStore;

pub mod auth;
pub mod health;
pub mod overseer;

/// The path MCP is served at (the path the issue and client configs name).
pub const MCP_PATH: &str = "/mcp";

/// The smallest request body limit: 1 MiB. A tool call's arguments are a
/// message of at most `max_message_bytes` plus a few short fields; JSON may
/// escape each byte of the message into up to six (`\u0000`), so the limit
/// grows with that setting (see [`body_limit`]). rmcp enforces it while the
/// body streams in, whatever `Content-Length` claims, and answers 413.
pub const MIN_BODY_LIMIT: usize = 1024 * 1024;

/// How long in-flight calls get to finish after a shutdown signal before
/// rmcp's token is cancelled. Cancelling at once would answer a call whose
/// transaction is committing with an error, and its client could resend a
/// message already stored; each call is one short transaction, so a few
/// seconds is plenty. Waits still running are cut when it ends (they roll
/// back; waking them with an empty result is a later slice).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The host names a client on this machine uses: always allowed.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why the HTTP server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Plain HTTP on an address other machines can reach, without
    /// `--insecure-http`: credentials would cross the network in clear.
    #[error(
        "refusing plain HTTP on {addr}, an address other machines can reach: bearer credentials would cross the network unencrypted. \
         TLS is not built yet; bind a loopback address (127.0.0.1) behind a TLS-terminating reverse proxy, or pass --insecure-http on a trusted network"
    )]
    PlainHttpOnNetwork {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The server stopped on an I/O error.
    #[error("the HTTP server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// How `serve --http` was asked to run.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// Host names (or `host:port`) accepted in the `Host` header besides the
    /// loopback names and the bind address.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted; with none, any request carrying an `Origin`
    /// header is refused.
    pub allowed_origins: Vec<String>,
    /// Allows plain HTTP on a non-loopback address.
    pub insecure_http: bool,
}

impl HttpOptions {
    /// Refuses plain HTTP on an address other machines can reach unless
    /// the operator said `--insecure-http`.
    pub fn check(&self) -> Result<(), Error> {
        if self.addr.ip().is_loopback() || self.insecure_http {
            Ok(())
        } else {
            Err(Error::PlainHttpOnNetwork { addr: self.addr })
        }
    }

    /// The `Host` allow-list (DNS rebinding): the loopback names, the bind
    /// address, and the operator's additions. An entry without a port
    /// matches any port.
    pub fn host_allow_list(&self) -> Vec<String> {
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect();
        hosts.push(self.addr.ip().to_string());
        hosts.extend(self.allowed_hosts.iter().cloned());
        hosts.sort();
        hosts.dedup();
        hosts
    }
}

/// The request body limit for a given `max_message_bytes`.
pub fn body_limit(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(6)
        .saturating_add(64 * 1024)
        .max(MIN_BODY_LIMIT)
}

/// rmcp's configuration for this server.
///
/// Stateless (`legacy_session_mode: false`): every POST is served on its
/// own, with no `Mcp-Session-Id` to remember. A server restart therefore
/// strands no client: with sessions, a restarted server answers the old id
/// with 404 and clients that do not re-initialise on 404 (several do not)
/// fail every call until restarted themselves. Nothing here needs a
/// session: who calls is proven on every request by its bearer credential
/// and the conversation state lives in the database. `json_response: true`
/// answers a call with one JSON body, falling back to an SSE stream only
/// when progress notifications precede the result (a long wait).
fn rmcp_config(
    options: &HttpOptions,
    body_limit: usize,
    ct: CancellationToken,
) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(ct)
        .with_max_request_body_bytes(body_limit)
        .with_allowed_hosts(options.host_allow_list());
    if options.allowed_origins.is_empty() {
        // No browser is expected: refuse every request that carries an Origin.
        config.enforce_origin_validation()
    } else {
        config.with_allowed_origins(options.allowed_origins.clone())
    }
}

/// The whole application: `/mcp` behind bearer authentication, and the two
/// health endpoints without it.
pub fn router<S: FullStore>(bridge: Bridge<S>, options: &HttpOptions, ct: CancellationToken) -> axum::Router {
    let limit = body_limit(bridge.limits().max_message_bytes);
    let factory_bridge = bridge.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(BridgeServer::new(factory_bridge.clone())),
        std::sync::Arc::new(NeverSessionManager::default()),
        rmcp_config(options, limit, ct),
    );
    let mcp = axum::Router::new()
        .route_service(MCP_PATH, mcp)
        .layer(axum::middleware::from_fn_with_state(
            bridge.clone(),
            auth::require_agent::<S>,
        ));
    let overseer = overseer::routes(bridge.clone(), options.host_allow_list());
    axum::Router::new()
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/readyz", axum::routing::get(health::readyz::<S>))
        .with_state(bridge)
        .merge(mcp)
        .merge(overseer)
}

/// Serves until `shutdown` resolves, then stops accepting, gives in-flight
/// calls [`SHUTDOWN_GRACE`] to finish, cancels the rest, and returns once
/// every connection has closed.
pub async fn serve<S: FullStore>(
    bridge: Bridge<S>,
    options: &HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    options.check()?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|source| Error::Bind {
            addr: options.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(Error::Serve)?;
    let ct = CancellationToken::new();
    let app = router(bridge, options, ct.clone());
    tracing::info!(addr = %local, path = MCP_PATH, "serving MCP over streamable HTTP");
    let stopping = CancellationToken::new();
    let stop = stopping.clone();
    let cut = ct.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        cut.cancel();
    });
    let stop = stopping.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections; finishing calls in flight");
            stop.cancel();
        })
        .await
        .map_err(Error::Serve);
    ct.cancel();
    served
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop the server with SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => {}
        r = tokio::signal::ctrl_c() => {
            if let Err(e) = r {
                tracing::warn!(error = %e, "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(addr: &str, insecure_http: bool) -> HttpOptions {
        HttpOptions {
            addr: addr.parse().unwrap(),
            allowed_hosts: vec!["bridge.example".into()],
            allowed_origins: Vec::new(),
            insecure_http,
        }
    }

    #[test]
    fn plain_http_on_a_network_address_needs_the_flag() {
        assert!(options("127.0.0.1:1", false).check().is_ok());
        assert!(options("[::1]:1", false).check().is_ok());
        let err = options("0.0.0.0:1", false).check().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--insecure-http") && text.contains("TLS"), "{text}");
        assert!(options("192.0.2.1:1", false).check().is_err());
        assert!(options("0.0.0.0:1", true).check().is_ok());
    }

    #[test]
    fn the_host_list_holds_loopback_the_bind_address_and_additions() {
        let hosts = options("192.0.2.7:8750", true).host_allow_list();
        for h in ["localhost", "127.0.0.1", "::1", "192.0.2.7", "bridge.example"] {
            assert!(hosts.iter().any(|x| x == h), "{h} missing from {hosts:?}");
        }
        assert_eq!(hosts.len(), 5, "{hosts:?}");
    }

    #[test]
    fn the_body_limit_is_a_mebibyte_or_what_a_message_needs() {
        assert_eq!(body_limit(51_200), MIN_BODY_LIMIT);
        assert_eq!(body_limit(1_000_000), 6_000_000 + 64 * 1024);
        assert_eq!(body_limit(usize::MAX), usize::MAX);
    }
}
