//! The overseer's commands against a remote `serve --http` (`--server URL`),
//! through its `/api/v1` with the observer or admin credential in
//! `MCP_BRIDGE_CREDENTIAL`: for an overseer who has neither the database
//! nor the key at hand. The answers are the API's JSON, printed with control
//! characters escaped like every other output.
//!
//! The credential is read from the environment only (a flag would show in
//! `ps` and shell history) and is sent only over HTTPS, or plain HTTP to a
//! loopback address.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{AdminCommand, refuse_existing, write_output};
use crate::auth::AgentCredential;
use crate::bridge::SessionId;
use crate::cli::render;

/// The variable that holds the overseer's credential for `--server`.
pub const CREDENTIAL_ENV: &str = "MCP_BRIDGE_CREDENTIAL";

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read (an export of a full conversation fits).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;

/// A server's API, reached with one credential.
pub struct Remote {
    scheme_https: bool,
    host: String,
    port: u16,
    /// The URL's path, without a trailing `/` (a server behind a proxy prefix).
    base: String,
    credential: AgentCredential,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Remote {
    /// Reads `--server URL`, the CA file if any, and the credential.
    pub fn new(server: &str, ca_file: Option<&Path>) -> anyhow::Result<Self> {
        let uri: Uri = server
            .parse()
            .map_err(|_| anyhow::anyhow!("--server must be a URL like https://bridge.example.com:8443"))?;
        let scheme_https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => bail!("--server must start with https:// (or http:// for a server on this machine)"),
        };
        let host = uri
            .host()
            .context("--server names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !scheme_https && !is_loopback(&host) {
            bail!(
                "--server uses plain http:// to another machine: the credential would cross the network unencrypted; use https://"
            );
        }
        let port = uri.port_u16().unwrap_or(if scheme_https { 443 } else { 80 });
        let base = uri.path().trim_end_matches('/').to_owned();
        let raw = std::env::var(CREDENTIAL_ENV).map_err(|_| {
            anyhow::anyhow!(
                "--server needs an observer or admin credential in {CREDENTIAL_ENV} (from `mcp-bridge agent add NAME --role admin`)"
            )
        })?;
        let credential = AgentCredential::parse(raw.trim()).ok_or_else(|| {
            anyhow::anyhow!("{CREDENTIAL_ENV} is not an agent credential (\"mcpa_\" and 43 more characters)")
        })?;
        let tls = scheme_https.then(|| tls_connector(ca_file)).transpose()?;
        Ok(Self {
            scheme_https,
            host,
            port,
            base,
            credential,
            tls,
        })
    }

    /// One request; the answer's JSON, or an error that says what to do.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.call_once(method, path, body))
            .await
            .map_err(|_| {
                anyhow::anyhow!("the server did not answer within {} s", REQUEST_TIMEOUT.as_secs())
            })?
    }

    async fn call_once(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connecting to {}:{}", self.host, self.port))?;
        let host_header = match self.port {
            443 if self.scheme_https => self.host.clone(),
            80 if !self.scheme_https => self.host.clone(),
            p if self.host.contains(':') => format!("[{}]:{p}", self.host),
            p => format!("{}:{p}", self.host),
        };
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}/api/v1{path}", self.base))
            .header(hyper::header::HOST, host_header)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.credential.expose()),
            )
            .header(hyper::header::ACCEPT, "application/json");
        if !payload.is_empty() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(payload)))
            .context("building the request")?;
        let (status, bytes) = match &self.tls {
            Some(tls) => {
                let name = rustls_pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|_| anyhow::anyhow!("--server's host is not a valid TLS server name"))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .context("TLS handshake with the server (is its certificate trusted? see --server-ca)")?;
                send(TokioIo::new(stream), request).await?
            }
            None => send(TokioIo::new(tcp), request).await?,
        };
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match status {
            s if s.is_success() => Ok(value),
            StatusCode::UNAUTHORIZED => bail!(
                "the server refused the credential in {CREDENTIAL_ENV} (missing, unknown, rotated or revoked)"
            ),
            s => {
                let message = value["error"]["message"].as_str().unwrap_or("no detail");
                bail!("the server answered {s}: {}", render::clean(message))
            }
        }
    }
}

/// Sends one request on a new HTTP/1.1 connection; the status and body.
async fn send<T>(io: TokioIo<T>, request: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .context("HTTP handshake with the server")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Trusts the web's public CAs (webpki-roots), plus `ca_file` when given
/// (a private CA or a self-signed certificate, PEM).
fn tls_connector(ca_file: Option<&Path>) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading --server-ca {}", path.display()))?
        {
            let cert =
                cert.with_context(|| format!("--server-ca {} is not PEM certificates", path.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("--server-ca {} holds an unusable certificate", path.display()))?;
            added += 1;
        }
        if added == 0 {
            bail!("--server-ca {} holds no certificate", path.display());
        }
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS settings")?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn print(value: &Value) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", render::json(&serde_json::to_string_pretty(value)?))?;
    Ok(ExitCode::SUCCESS)
}

fn seat_path(id: &str, seat: SessionId, action: &str) -> String {
    format!("/conversations/{}/seats/{seat}/{action}", encode(id))
}

/// Percent-encodes a path segment or query value (the server checks its
/// shape; this only keeps the request well-formed).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `post` against the server (an admin credential): the answer as JSON.
pub async fn post(remote: &Remote, id: &str, message: &str) -> anyhow::Result<ExitCode> {
    let body = serde_json::json!({ "message": message });
    print(
        &remote
            .call(
                Method::POST,
                &format!("/conversations/{}/messages", encode(id)),
                Some(body),
            )
            .await?,
    )
}

/// Runs an overseer command against the server; commands that need the
/// database's files or a terminal with the key say where to run them.
pub async fn run(remote: &Remote, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::List { active, expired, .. } => {
            let state = if active {
                "active"
            } else if expired {
                "ended"
            } else {
                "all"
            };
            print(
                &remote
                    .call(Method::GET, &format!("/conversations?state={state}"), None)
                    .await?,
            )
        }
        AdminCommand::Show { id, follow, .. } => show(remote, &id, follow).await,
        AdminCommand::Close { id, .. } => print(
            &remote
                .call(
                    Method::POST,
                    &format!("/conversations/{}/close", encode(&id)),
                    None,
                )
                .await?,
        ),
        AdminCommand::Revoke { id, session, .. } => print(
            &remote
                .call(Method::POST, &seat_path(&id, session.into(), "revoke"), None)
                .await?,
        ),
        AdminCommand::Rotate { id, session, .. } => print(
            &remote
                .call(Method::POST, &seat_path(&id, session.into(), "rotate"), None)
                .await?,
        ),
        AdminCommand::Export { id, output } => {
            if let Some(path) = &output {
                refuse_existing(path, "export file")?;
            }
            let export = remote
                .call(
                    Method::GET,
                    &format!("/conversations/{}/export", encode(&id)),
                    None,
                )
                .await?;
            let text = render::json(&serde_json::to_string_pretty(&export)?) + "\n";
            write_output(output.as_deref(), text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Cleanup {
            older_than, dry_run, ..
        } => {
            let body =
                serde_json::json!({ "older_than_seconds": older_than.0.as_secs(), "dry_run": dry_run });
            print(&remote.call(Method::POST, "/cleanup", Some(body)).await?)
        }
        AdminCommand::Stats { .. } => print(&remote.call(Method::GET, "/stats", None).await?),
        other => bail!(
            "{} is not available with --server; run it on a machine with the database (--database-url) and the key",
            command_name(&other)
        ),
    }
}

/// `show`, and with `--follow` new messages every second, one JSON per line.
async fn show(remote: &Remote, id: &str, follow: bool) -> anyhow::Result<ExitCode> {
    let path = format!("/conversations/{}", encode(id));
    let detail = remote.call(Method::GET, &path, None).await?;
    print(&detail)?;
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut after = last_seq(&detail).unwrap_or(0);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let detail = remote
            .call(Method::GET, &format!("{path}?after_seq={after}"), None)
            .await?;
        let mut out = std::io::stdout().lock();
        for m in detail["messages_after"].as_array().into_iter().flatten() {
            writeln!(out, "{}", render::json(&m.to_string()))?;
        }
        out.flush()?;
        after = last_seq(&detail).unwrap_or(after);
    }
}

fn last_seq(detail: &Value) -> Option<i64> {
    detail["messages_after"].as_array()?.last()?["seq"].as_i64()
}

/// `audit` (newest entries, with `--conversation`/`--action`) and `audit
/// verify` over the API.
pub async fn audit(remote: &Remote, verify: bool, query: Option<String>) -> anyhow::Result<ExitCode> {
    if verify {
        let report = remote.call(Method::GET, "/audit/verify", None).await?;
        print(&report)?;
        return Ok(if report["intact"] == Value::Bool(true) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let q = query.as_deref().map(|q| format!("&{q}")).unwrap_or_default();
        let page = remote
            .call(Method::GET, &format!("/audit?after={after}&limit=1000{q}"), None)
            .await?;
        let list = page["entries"].as_array().cloned().unwrap_or_default();
        let Some(last) = list.last().and_then(|e| e["seq"].as_i64()) else {
            break;
        };
        after = last;
        entries.extend(list);
    }
    let mut out = std::io::stdout().lock();
    for e in &entries {
        writeln!(out, "{}", render::json(&e.to_string()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The query string of `audit`'s filters for the API.
pub fn audit_query(conversation: Option<&str>, action: Option<&str>) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(c) = conversation {
        parts.push(format!("conversation_id={}", encode(c)));
    }
    if let Some(a) = action {
        parts.push(format!("action={}", encode(a)));
    }
    (!parts.is_empty()).then(|| parts.join("&"))
}

fn command_name(cmd: &AdminCommand) -> &'static str {
    match cmd {
        AdminCommand::Import { .. } => "import",
        AdminCommand::Backup { .. } => "backup",
        AdminCommand::Restore { .. } => "restore",
        AdminCommand::Agent(_) => "agent",
        AdminCommand::Completions { .. } => "completions",
        _ => "this command",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_loopback_is_recognised() {
        assert_eq!(encode("conv_ab12"), "conv_ab12");
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
        assert_eq!(encode("*.refused"), "%2A.refused");
        assert!(is_loopback("localhost") && is_loopback("127.0.0.1") && is_loopback("::1"));
        assert!(!is_loopback("bridge.example.com") && !is_loopback("10.0.0.1"));
    }
}
