//! The flags of `serve --http`: every one `requires = "http"`, so a stdio
//! server never silently ignores them.

use clap::Args;

/// The HTTP transport's flags, flattened into `serve`'s.
#[derive(Debug, Args)]
pub(super) struct HttpArgs {
    /// Serve MCP over streamable HTTP at IP:PORT (path /mcp) instead of stdio; every
    /// request needs `Authorization: Bearer <agent credential>`.
    #[arg(long, value_name = "IP:PORT")]
    pub(super) http: Option<std::net::SocketAddr>,
    /// With --http: a further Host header value to accept (repeatable); loopback names
    /// and the bind address are always accepted.
    #[arg(long = "allowed-host", value_name = "HOST", requires = "http")]
    allowed_hosts: Vec<String>,
    /// With --http: a browser Origin to accept, e.g. https://app.example:443 (repeatable);
    /// without one, every request carrying an Origin header is refused.
    #[arg(long = "allowed-origin", value_name = "ORIGIN", requires = "http")]
    allowed_origins: Vec<String>,
    /// With --http: allow plain HTTP on a non-loopback address (TLS is not built yet).
    #[arg(long, requires = "http")]
    insecure_http: bool,
}

impl HttpArgs {
    /// The HTTP options, when `--http` was given.
    pub(super) fn options(&self) -> Option<crate::http::HttpOptions> {
        self.http.map(|addr| crate::http::HttpOptions {
            addr,
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
            insecure_http: self.insecure_http,
        })
    }
}
