//! Session tokens, agent credentials (in `credential`) and their keyed hashes.
//!
//! A token is 256 random bits, base64url, prefixed `mcpb_` so that secret
//! scanners (ours included) recognise one pasted where it should not be. It
//! is shown once, at creation or rotation; the store keeps only
//! HMAC-SHA-256(server key, token). The server key lives apart from the
//! database (a 0600 file beside it, or `MCP_BRIDGE_KEY`), so a copy of the
//! database alone cannot be used to test guesses. Tokens are compared in
//! constant time, through [`hmac::Mac::verify_slice`].

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::config::KeySource;

mod credential;

pub use credential::{AgentCredential, CREDENTIAL_LEN, CREDENTIAL_PREFIX, ShownCredential};

/// Why the server key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key file exists but could not be read, or could not be created.
    #[error("cannot use key file {path}")]
    KeyFile {
        /// The key file.
        path: std::path::PathBuf,
        /// The IO failure.
        source: std::io::Error,
    },
    /// An overseer command found a database without its key file.
    #[error(
        "the key file {path} is missing; it protects this database's tokens and audit seals. Restore it from your backup (`serve` creates it only for a new database)"
    )]
    MissingKeyFile {
        /// Where it was expected.
        path: std::path::PathBuf,
    },
    /// `--key-file` names a file that does not exist.
    #[error(
        "the key file {path} does not exist; create it once with `mcp-bridge key generate {path}` and copy it (mode 0600) to every server and overseer machine"
    )]
    MissingGivenKeyFile {
        /// The path given.
        path: std::path::PathBuf,
    },
    /// PostgreSQL without a key: there is no database file to keep one beside.
    #[error(
        "PostgreSQL needs the server key shared by every server and the overseer's CLI: create one with `mcp-bridge key generate /etc/mcp-bridge/key` and pass --key-file /etc/mcp-bridge/key (or MCP_BRIDGE_KEY_FILE), or set MCP_BRIDGE_KEY to its 64 hex characters"
    )]
    NoSharedKey,
    /// The key file or `MCP_BRIDGE_KEY` does not hold 32 bytes of hex.
    #[error("{origin} must hold exactly 64 hex characters (32 bytes)")]
    BadKey {
        /// Where the bad key came from.
        origin: String,
    },
    /// The key file is readable by other users.
    #[error("key file {path} is accessible by other users (mode {mode:o}); run `chmod 600 {path}`")]
    KeyFilePermissions {
        /// The key file.
        path: std::path::PathBuf,
        /// Its current mode bits.
        mode: u32,
    },
}

/// The token prefix; documented so scanners and humans can recognise tokens.
pub const TOKEN_PREFIX: &str = "mcpb_";
/// Length of a token: the prefix plus 43 base64url characters (256 bits).
pub const TOKEN_LEN: usize = TOKEN_PREFIX.len() + 43;

/// A session token in clear. Only exists between generation and the reply
/// that shows it, or while a presented token is being checked. `Debug` never
/// prints it and the bytes are zeroed on drop.
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    /// Draws 256 bits from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let mut s = String::with_capacity(TOKEN_LEN);
        s.push_str(TOKEN_PREFIX);
        s.push_str(&URL_SAFE_NO_PAD.encode(bytes.as_ref()));
        Self(Zeroizing::new(s))
    }

    /// Wraps a token presented by a caller.
    pub fn from_presented(text: &str) -> Self {
        Self(Zeroizing::new(text.to_owned()))
    }

    /// A presented token when it has the shape [`SessionToken::generate`]
    /// gives (`mcpb_` and 43 base64url characters), else `None`: the one
    /// shape check for a token that arrives outside a tool argument (an
    /// HTTP bearer), so nothing else has to repeat it.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == TOKEN_LEN
            && text.starts_with(TOKEN_PREFIX)
            && text[TOKEN_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self::from_presented(text))
    }

    /// The token text, for the one reply that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// A token on its one way out to the person or agent it was issued to: it
/// serializes as the plain string (the reply must carry it) but `Debug`
/// prints `[redacted]`, so a stray `{:?}` or log field never leaks it.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct ShownToken(String);

impl ShownToken {
    /// Takes the clear text of a freshly issued token.
    pub fn new(token: &SessionToken) -> Self {
        Self(token.expose().to_owned())
    }
}

impl std::ops::Deref for ShownToken {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ShownToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl schemars::JsonSchema for ShownToken {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ShownToken")
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^mcpb_[A-Za-z0-9_-]{43}$" })
    }
}

/// HMAC-SHA-256 of a token under the server key: what the store keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(pub Vec<u8>);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// The server's secret key for token hashes and audit seals.
#[derive(Clone)]
pub struct ServerKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey([redacted])")
    }
}

type HmacSha256 = Hmac<Sha256>;

impl ServerKey {
    /// Loads the key from its source, creating the key file (0600, in a
    /// directory that must already exist) on first use.
    pub fn load(source: &KeySource) -> Result<Self, Error> {
        match source {
            KeySource::Env(hex) => Self::from_hex(hex, "MCP_BRIDGE_KEY"),
            KeySource::File(path) => Self::load_or_create_file(path),
            KeySource::Given(path) => Self::load_given_file(path),
            KeySource::Absent => Err(Error::NoSharedKey),
        }
    }

    /// Loads the key without ever creating one: for the overseer's commands
    /// on an existing database, where a new key would silently orphan every
    /// token and break every audit seal.
    pub fn load_existing(source: &KeySource) -> Result<Self, Error> {
        if let KeySource::File(path) = source
            && !path.exists()
        {
            return Err(Error::MissingKeyFile { path: path.clone() });
        }
        Self::load(source)
    }

    /// Reads a key file the operator named (`--key-file`); it is never
    /// created here, so servers sharing a database never disagree.
    fn load_given_file(path: &Path) -> Result<Self, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                let text = Zeroizing::new(text);
                Self::from_hex(&text, &format!("key file {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::MissingGivenKeyFile {
                path: path.to_owned(),
            }),
            Err(source) => Err(Error::KeyFile {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes a new random key to `path` (0600, refused if the file exists)
    /// for `mcp-bridge key generate`: the key servers on one PostgreSQL
    /// database share.
    pub fn generate_file(path: &Path) -> Result<(), Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let mut hex = Zeroizing::new(hex::encode(bytes.as_ref()));
        hex.push('\n');
        write_new_private(path, hex.as_bytes()).map_err(|source| Error::KeyFile {
            path: path.to_owned(),
            source,
        })
    }

    /// The key as 64 hex characters, for rewriting its key file (a
    /// rotation); zeroized when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    /// A key from raw bytes; for tests and the bench.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key on the first line of `text`; a key file's later lines hold
    /// the data keys' wrapping root (see [`crate::seal::keyfile`]).
    fn from_hex(text: &str, origin: &str) -> Result<Self, Error> {
        let mut out = Zeroizing::new([0u8; 32]);
        let first = text.trim_start().lines().next().unwrap_or("");
        hex::decode_to_slice(first.trim(), out.as_mut()).map_err(|_| Error::BadKey {
            origin: origin.to_owned(),
        })?;
        Ok(Self(out))
    }

    fn load_or_create_file(path: &Path) -> Result<Self, Error> {
        let io = |source| Error::KeyFile {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                let text = Zeroizing::new(text);
                Self::from_hex(&text, &format!("key file {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = Zeroizing::new([0u8; 32]);
                rand::rng().fill_bytes(bytes.as_mut());
                let hex = Zeroizing::new(hex::encode(bytes.as_ref()));
                // The key is written to a private file of our own first and
                // published whole with a hard link, which fails if the name
                // exists: a server starting at the same moment never reads
                // a half-written key, and if another process won the race,
                // its key is used.
                let mut staged = path.as_os_str().to_owned();
                staged.push(format!(
                    ".new-{}-{:08x}",
                    std::process::id(),
                    rand::random::<u32>()
                ));
                let staged = std::path::PathBuf::from(staged);
                // Only a failed link means another process won; a failure to
                // stage (or a file system without hard links) falls back to
                // creating the key in place, where a server starting in the
                // same instant may read it half-written and fail once.
                let published = match write_new_private(&staged, hex.as_bytes()) {
                    Ok(()) => {
                        let linked = std::fs::hard_link(&staged, path);
                        let _ = std::fs::remove_file(&staged);
                        match linked {
                            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                                write_new_private(path, hex.as_bytes())
                            }
                            other => other,
                        }
                    }
                    Err(_) => write_new_private(path, hex.as_bytes()),
                };
                match published {
                    Ok(()) => Ok(Self(bytes)),
                    // Another process published its key first: use it.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create_file(path)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The keyed hash the store keeps for `token`.
    pub fn hash_token(&self, token: &SessionToken) -> TokenHash {
        TokenHash(self.mac(token.expose().as_bytes()))
    }

    /// Checks `token` against a stored hash in constant time.
    pub fn verify_token(&self, token: &SessionToken, stored: &TokenHash) -> bool {
        let mut mac = self.hmac();
        mac.update(token.expose().as_bytes());
        mac.verify_slice(&stored.0).is_ok()
    }

    /// HMAC-SHA-256 of `data`; also seals audit entries.
    pub fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.hmac();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// A 32-byte key derived from this one with HKDF-SHA-256 for the use
    /// `info` names (the data keys' wrapping key, for one).
    pub fn hkdf(&self, info: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(Some(b"mcp-bridge server key"), self.0.as_ref())
            .expand(info, out.as_mut())
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        out
    }

    /// Constant-time check of an HMAC produced by [`ServerKey::mac`].
    pub fn verify_mac(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.hmac();
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }

    fn hmac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.0.as_ref()).expect("HMAC accepts any key length")
    }
}

/// Writes `bytes` to a new private file at `path` (failing if it exists)
/// and makes it durable.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = create_private_file(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates a file readable and writable by its owner only, failing if it
/// exists.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| Error::KeyFile {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_256_bit_base64url() {
        let t = SessionToken::generate();
        assert_eq!(t.expose().len(), TOKEN_LEN);
        assert!(t.expose().starts_with(TOKEN_PREFIX));
        let body = &t.expose()[TOKEN_PREFIX.len()..];
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_ne!(t.expose(), SessionToken::generate().expose());
    }

    #[test]
    fn verifies_only_the_right_token() {
        let key = ServerKey::from_bytes([7; 32]);
        let t = SessionToken::generate();
        let h = key.hash_token(&t);
        assert!(key.verify_token(&t, &h));
        assert!(!key.verify_token(&SessionToken::generate(), &h));
        let other_key = ServerKey::from_bytes([8; 32]);
        assert!(!other_key.verify_token(&t, &h));
    }

    #[test]
    fn shown_tokens_serialize_in_clear_but_never_debug() {
        let t = SessionToken::generate();
        let shown = ShownToken::new(&t);
        assert_eq!(
            serde_json::to_value(&shown).unwrap(),
            serde_json::json!(t.expose())
        );
        assert_eq!(format!("{shown:?}"), "[redacted]");
    }

    #[test]
    fn debug_hides_secrets() {
        let t = SessionToken::generate();
        assert!(!format!("{t:?}").contains(&t.expose()[5..]));
        assert_eq!(
            format!("{:?}", ServerKey::from_bytes([1; 32])),
            "ServerKey([redacted])"
        );
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bridge.db.key");
        let src = KeySource::File(path.clone());
        let k1 = ServerKey::load(&src).unwrap();
        let k2 = ServerKey::load(&src).unwrap();
        let t = SessionToken::generate();
        assert!(k2.verify_token(&t, &k1.hash_token(&t)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn refuses_a_world_readable_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "00".repeat(32)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                ServerKey::load(&KeySource::File(path)),
                Err(Error::KeyFilePermissions { .. })
            ));
        }
    }

    #[test]
    fn rejects_a_malformed_env_key() {
        assert!(ServerKey::load(&KeySource::Env("abc".into())).is_err());
        assert!(ServerKey::load(&KeySource::Env("ab".repeat(32))).is_ok());
    }
}
