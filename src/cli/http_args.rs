//! The flags of `serve --http`: every one `requires = "http"`, so a stdio
//! server never silently ignores them. `--log-format` is the exception: it
//! is read by `main` before anything runs, for stdio as much as for HTTP.

use std::path::PathBuf;

use clap::Args;

use crate::http::limits::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_PER_SECOND, parse_limit};
use crate::http::{CredentialLimits, TlsFiles};

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
    /// With --http: allow plain HTTP (no TLS) on a non-loopback address.
    #[arg(long, requires = "http", conflicts_with = "tls_cert")]
    insecure_http: bool,
    /// With --http: serve HTTPS with this PEM certificate chain (leaf first); needs
    /// --tls-key. SIGHUP reloads both files.
    #[arg(long, value_name = "PEM", requires_all = ["http", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// With --http: the PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires_all = ["http", "tls_cert"])]
    tls_key: Option<PathBuf>,
    /// With --http: requests one agent credential may have in flight at once, or "off".
    #[arg(
        long,
        value_name = "N",
        value_parser = Limit::parse,
        default_value_t = Limit(Some(DEFAULT_MAX_IN_FLIGHT)),
        requires = "http"
    )]
    max_connections_per_credential: Limit,
    /// With --http: requests per second one agent credential may make (a token bucket
    /// holding one second's worth), or "off".
    #[arg(
        long,
        value_name = "N",
        value_parser = Limit::parse,
        default_value_t = Limit(Some(DEFAULT_PER_SECOND)),
        requires = "http"
    )]
    max_requests_per_second: Limit,
    /// Log lines on stderr as plain text or as one JSON object per line.
    #[arg(
        long,
        env = "MCP_BRIDGE_LOG_FORMAT",
        value_name = "FORMAT",
        value_parser = ["text", "json"],
        default_value = "text"
    )]
    #[allow(dead_code, reason = "main reads it from the matches, before logging starts")]
    log_format: String,
}

/// A limit flag's value: a positive number, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limit(Option<u32>);

impl Limit {
    fn parse(s: &str) -> Result<Self, String> {
        parse_limit(s).map(Self)
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("off"),
        }
    }
}

impl HttpArgs {
    /// The HTTP options, when `--http` was given.
    pub(super) fn options(&self) -> Option<crate::http::HttpOptions> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            // clap refuses one without the other.
            _ => None,
        };
        self.http.map(|addr| crate::http::HttpOptions {
            addr,
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
            insecure_http: self.insecure_http,
            tls,
            limits: CredentialLimits {
                max_in_flight: self.max_connections_per_credential.0,
                per_second: self.max_requests_per_second.0,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        http: HttpArgs,
    }

    fn parse(args: &[&str]) -> Result<HttpArgs, String> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .map(|c| c.http)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_limit_every_credential() {
        let o = parse(&["--http", "127.0.0.1:1"]).unwrap().options().unwrap();
        assert_eq!(o.limits, CredentialLimits::default());
        assert_eq!(o.tls, None);
    }

    #[test]
    fn limits_take_numbers_or_off() {
        let o = parse(&[
            "--http",
            "127.0.0.1:1",
            "--max-connections-per-credential",
            "2",
            "--max-requests-per-second",
            "off",
        ])
        .unwrap()
        .options()
        .unwrap();
        assert_eq!(o.limits.max_in_flight, Some(2));
        assert_eq!(o.limits.per_second, None);
        let err = parse(&["--http", "127.0.0.1:1", "--max-requests-per-second", "0"]).unwrap_err();
        assert!(
            err.contains("--max-requests-per-second") && err.contains("off"),
            "{err}"
        );
    }

    #[test]
    fn tls_needs_both_files() {
        let o = parse(&["--http", "0.0.0.0:1", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
            .unwrap()
            .options()
            .unwrap();
        assert_eq!(
            o.tls,
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        let err = parse(&["--http", "0.0.0.0:1", "--tls-cert", "c.pem"]).unwrap_err();
        assert!(err.contains("--tls-key"), "{err}");
        let err = parse(&["--http", "0.0.0.0:1", "--tls-key", "k.pem"]).unwrap_err();
        assert!(err.contains("--tls-cert"), "{err}");
    }

    #[test]
    fn http_flags_need_http() {
        for args in [
            &["--tls-cert", "c.pem", "--tls-key", "k.pem"][..],
            &["--max-requests-per-second", "5"],
            &["--max-connections-per-credential", "5"],
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains("--http"), "{args:?}: {err}");
        }
        assert!(parse(&[]).unwrap().options().is_none());
    }

    #[test]
    fn the_log_format_is_text_or_json_without_http_too() {
        assert_eq!(parse(&[]).unwrap().log_format, "text");
        assert_eq!(parse(&["--log-format", "json"]).unwrap().log_format, "json");
        assert!(parse(&["--log-format", "yaml"]).is_err());
    }
}
