//! TLS for `serve --http` with rustls: the certificate chain and key from
//! PEM files (`--tls-cert`, `--tls-key`), checked against each other at
//! start, reloaded on SIGHUP, and a listener whose handshakes run off the
//! accept loop.
//!
//! What this module must never do: put key material in an error or a log
//! line. Errors name the flag and the file and say what is wrong with it;
//! the PEM parser's own messages are not passed on (they may quote a line
//! of the file), and the key's bytes are wiped once parsed.
//!
//! The crypto provider is *ring*, passed explicitly (no process-wide
//! default): it builds from a few C and assembly files with `cc`, where
//! aws-lc-rs needs CMake and a much longer C build.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use zeroize::Zeroizing;

/// The largest PEM file read: a chain of a few certificates, or one key,
/// is a few KiB; anything this large is the wrong file.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// How long a client gets to finish its TLS handshake. A client that
/// connects and says nothing holds a task and a socket until then.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; further connections wait in the
/// kernel's backlog. Bounds the memory a flood of half-open handshakes takes.
const MAX_HANDSHAKES: usize = 256;

/// The two PEM files TLS is served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tls-cert`: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// `--tls-key`: the leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate or key could not be loaded. Each names its flag and
/// file; none carries any of the file's content.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{flag} {}: cannot read the file: {source}", path.display())]
    Read {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is larger than any certificate chain or key.
    #[error("{flag} {}: the file is over 1 MiB, not a PEM certificate or key", path.display())]
    TooLarge {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// No `CERTIFICATE` section, or one that is not valid PEM.
    #[error(
        "--tls-cert {}: no PEM certificate in the file (expected \"-----BEGIN CERTIFICATE-----\" sections, leaf first)",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The leaf certificate is not a certificate rustls can parse.
    #[error("--tls-cert {}: the first certificate in the file is not a valid X.509 certificate", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No private key section, or one that is not valid PEM.
    #[error(
        "--tls-key {}: no PEM private key in the file (expected \"-----BEGIN PRIVATE KEY-----\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\")",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A key of a type or encoding the crypto provider does not support.
    #[error("--tls-key {}: the private key is of an unsupported type (use RSA, ECDSA P-256/P-384 or Ed25519)", path.display())]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is not the one the leaf certificate was issued for.
    #[error(
        "--tls-key {} does not match the certificate in --tls-cert {}: give the key the certificate was issued for",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the protocol versions (cannot happen with its defaults).
    #[error("cannot configure TLS: {0}")]
    Config(String),
}

/// The certificate every new handshake is answered with; replaced whole
/// on reload, so a connection already established keeps its own.
///
/// A `std::sync::RwLock`: it is held only to clone an `Arc`, never across
/// an await.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner)))
    }
}

/// Loaded TLS: the files, the certificate in force, and the acceptor that
/// uses it.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads and checks both files; the server offers HTTP/1.1 by ALPN.
    pub fn load(files: TlsFiles) -> Result<Self, Error> {
        let key = certified_key(&files)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(key))));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            files,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Reads both files again; on success new handshakes use them, on
    /// failure the certificate in force stays. Open connections are never
    /// touched either way.
    pub fn reload(&self) -> Result<(), Error> {
        let key = Arc::new(certified_key(&self.files)?);
        *self.current.0.write().unwrap_or_else(PoisonError::into_inner) = key;
        Ok(())
    }

    /// The files this was loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Wraps a bound listener: connections come out of it handshaken.
    pub fn listener(&self, tcp: TcpListener) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(MAX_HANDSHAKES);
        let accepting = tokio::spawn(accept_loop(tcp, self.acceptor.clone(), tx));
        Ok(TlsListener { rx, local, accepting })
    }
}

/// Reads the chain and key and checks that they belong together.
fn certified_key(files: &TlsFiles) -> Result<CertifiedKey, Error> {
    let cert_pem = read_pem("--tls-cert", &files.cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| Error::NoCertificate {
            path: files.cert.clone(),
        })?;
    if chain.is_empty() {
        return Err(Error::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key_pem = read_pem("--tls-key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| Error::NoKey {
        path: files.key.clone(),
    })?;
    drop(key_pem);
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| Error::UnsupportedKey {
            path: files.key.clone(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(Error::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }),
        // The key cannot say its public half (not with ring's keys): the
        // handshake will show a mismatch, as with any other TLS server.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(Error::BadCertificate {
            path: files.cert.clone(),
        }),
    }
}

/// The file's bytes, wiped when dropped (the key file's are secret).
fn read_pem(flag: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    use std::io::Read;
    let read_err = |source| Error::Read {
        flag,
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(Error::TooLarge {
            flag,
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Accepts TCP connections and hands each to a task of its own for the
/// handshake, so a slow or silent client never holds up the next one.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // As axum's own listener does: a connection that died in the
                // backlog is nothing; anything else (out of descriptors) is
                // the server's problem, and retrying at once would spin.
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) {
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                // The client's doing (wrong CA, plain HTTP to a TLS port,
                // a scanner): debug, as every client mistake is.
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
}

/// A listener for `axum::serve` whose connections are TLS streams. Dropping
/// it (axum does when shutting down) stops accepting.
#[derive(Debug)]
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task ended (it only does when aborted): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Reloads `tls` on every SIGHUP until the task is aborted; a failed reload
/// keeps the certificate in force and says why at warn.
pub fn reload_on_sighup(tls: Tls) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: the certificate will not be reloaded");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!(
                    cert = %tls.files.cert.display(),
                    "SIGHUP: reloaded the TLS certificate and key; new connections use them"
                ),
                Err(e) => tracing::warn!(error = %e, "SIGHUP: keeping the TLS certificate in force"),
            }
        }
    })
}

#[cfg(test)]
mod tests;
