//! MCP over streamable HTTP (issue 17): rmcp's streamable HTTP service on
//! axum at [`MCP_PATH`], behind bearer authentication ([`mod@auth`]) and
//! per-credential limits ([`mod@limits`]), over TLS when configured
//! ([`mod@tls`]), with unauthenticated health endpoints ([`mod@health`])
//! and metrics ([`mod@metrics`]), the overseer's dashboard at `/ui`
//! ([`crate::dashboard`]), and a request id on every request and every log
//! line it causes ([`mod@request_id`]).
//!
//! What this module owns: binding, the refusal of plain HTTP on a network
//! address, the Host and Origin allow-lists, the body limit, and graceful
//! shutdown (which wakes every waiter with an empty result first). What it
//! must never do: log a credential or a request body (it logs neither
//! headers nor bodies at any level).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::mcp::BridgeServer;
use crate::store::admin::FullStore;

pub mod auth;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod overseer;
pub mod request_id;
pub mod tls;

pub use limits::CredentialLimits;
pub use metrics::Metrics;
pub use tls::TlsFiles;

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
/// seconds is plenty. Waits do not need it: the signal wakes each with an
/// empty result at once ([`Bridge::stop_waits`]).
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
         Serve TLS with --tls-cert and --tls-key, bind a loopback address (127.0.0.1) behind a TLS-terminating reverse proxy, or pass --insecure-http on a trusted network"
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
    /// A TLS certificate or key file is missing, unreadable or unfit.
    #[error(transparent)]
    Tls(#[from] tls::Error),
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
    /// Serve TLS from these files (`--tls-cert`, `--tls-key`).
    pub tls: Option<TlsFiles>,
    /// Limits per credential on `/mcp`.
    pub limits: CredentialLimits,
}

impl HttpOptions {
    /// Refuses plain HTTP on an address other machines can reach unless
    /// the operator said `--insecure-http`, and loads the TLS files once to
    /// refuse a bad one before anything else starts.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(files) = &self.tls {
            tls::Tls::load(files.clone())?;
            return Ok(());
        }
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

/// Marks a response to a request whose body was never read (refused by
/// authentication or a limit) as the connection's last. hyper closes such
/// a connection rather than read the unread body; without the header a
/// keep-alive client may send its next request into the closing socket
/// and see it dropped unanswered.
pub(crate) fn closing(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
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

/// The whole application: `/mcp` behind bearer authentication and the
/// limits per credential; the health endpoints and `/metrics` without
/// them; every response counted and given a request id.
pub fn router<S: FullStore>(
    bridge: Bridge<S>,
    options: &HttpOptions,
    ct: CancellationToken,
    metrics: Arc<Metrics>,
) -> axum::Router {
    use axum::middleware::{from_fn, from_fn_with_state};
    let limit = body_limit(bridge.limits().max_message_bytes);
    let pages_stop = ct.clone();
    let factory_bridge = bridge.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(BridgeServer::new(factory_bridge.clone())),
        Arc::new(NeverSessionManager::default()),
        rmcp_config(options, limit, ct),
    );
    let mut mcp = axum::Router::new().route_service(MCP_PATH, mcp);
    // Layers run outside in: authentication first, then the limits keyed
    // by the agent it proved.
    if options.limits.any() {
        let layer = limits::Layer {
            limiter: limits::Limiter::new(options.limits),
            metrics: Arc::clone(&metrics),
        };
        mcp = mcp.layer(from_fn_with_state(layer, limits::limit));
    }
    let mcp = mcp.layer(from_fn_with_state(bridge.clone(), auth::require_agent::<S>));
    let scrape = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics::scrape::<S>))
        .with_state((Arc::clone(&metrics), bridge.store().clone()));
    let overseer = overseer::routes(bridge.clone(), options.host_allow_list());
    // The overseer's web pages at /ui, for observer and admin credentials:
    // the same router `mcp-bridge dashboard` serves locally.
    let dashboard = crate::dashboard::mounted(bridge.clone(), options, pages_stop);
    axum::Router::new()
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/readyz", axum::routing::get(health::readyz::<S>))
        .with_state(bridge)
        .merge(mcp)
        .merge(overseer)
        .merge(dashboard)
        .merge(scrape)
        .layer(from_fn_with_state(metrics, metrics::count_responses))
        .layer(from_fn(request_id::assign))
}

/// Serves until `shutdown` resolves, then stops accepting, wakes every
/// wait with an empty result, gives in-flight calls [`SHUTDOWN_GRACE`] to
/// finish, cancels the rest, and returns once every connection has closed.
/// With TLS, SIGHUP reloads the certificate and key meanwhile.
pub async fn serve<S: FullStore>(
    bridge: Bridge<S>,
    options: &HttpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    options.check()?;
    let tls = options.tls.clone().map(tls::Tls::load).transpose()?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|source| Error::Bind {
            addr: options.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(Error::Serve)?;
    let ct = CancellationToken::new();
    let metrics = Arc::new(Metrics::new(bridge.store().pool_status().is_some()));
    let app = router(bridge.clone(), options, ct.clone(), metrics);
    let stopping = CancellationToken::new();
    let stop = stopping.clone();
    let cut = ct.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        cut.cancel();
    });
    let stop = stopping.clone();
    let graceful = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; waits return empty; finishing calls in flight");
        bridge.stop_waits();
        stop.cancel();
    };
    let served = match tls {
        Some(tls) => {
            let reload = tls::reload_on_sighup(tls.clone());
            let listener = tls.listener(listener).map_err(Error::Serve)?;
            tracing::info!(addr = %local, path = MCP_PATH, "serving MCP over streamable HTTP with TLS");
            let served = axum::serve(listener, app).with_graceful_shutdown(graceful).await;
            reload.abort();
            served
        }
        None => {
            tracing::info!(addr = %local, path = MCP_PATH, "serving MCP over streamable HTTP");
            axum::serve(listener, app).with_graceful_shutdown(graceful).await
        }
    }
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
            tls: None,
            limits: CredentialLimits::default(),
        }
    }

    #[test]
    fn plain_http_on_a_network_address_needs_the_flag() {
        assert!(options("127.0.0.1:1", false).check().is_ok());
        assert!(options("[::1]:1", false).check().is_ok());
        let err = options("0.0.0.0:1", false).check().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("--insecure-http") && text.contains("--tls-cert") && !text.contains("not built"),
            "{text}"
        );
        assert!(options("192.0.2.1:1", false).check().is_err());
        assert!(options("0.0.0.0:1", true).check().is_ok());
    }

    #[test]
    fn with_tls_a_network_address_needs_no_flag_but_good_files() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = TlsFiles {
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
        };
        std::fs::write(&files.cert, made.cert.pem()).unwrap();
        let mut o = options("0.0.0.0:1", false);
        o.tls = Some(files.clone());
        let text = o.check().unwrap_err().to_string();
        assert!(text.starts_with("--tls-key ") && text.contains("k.pem"), "{text}");
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        assert!(o.check().is_ok());
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
