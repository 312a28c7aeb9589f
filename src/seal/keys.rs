//! The key hierarchy: the server key, a key-encryption key (KEK) derived
//! from it, and one random data key per conversation, stored wrapped by the
//! KEK.
//!
//! Destroying a conversation's wrapped data key (its row) makes its
//! messages unreadable: that is the whole of crypto-shredding. Rotating
//! the server key re-wraps the data keys (32 bytes each) and never
//! touches a message.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use super::Error;
use crate::auth::ServerKey;

/// HKDF info labels: each derived key has one job, so a key that leaks
/// from one use (say, the audit head's) says nothing of the others.
const KEK_INFO: &[u8] = b"mcp-bridge v1 key-encryption key";
const KEK_ID_INFO: &[u8] = b"mcp-bridge v1 key-encryption key id";

/// What a wrapped data key starts with; the KEK's id follows.
const WRAPPED_PREFIX: &str = "k1:";

/// A key-encryption key: wraps and unwraps conversations' data keys.
pub struct Kek {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

impl Kek {
    /// The KEK derived from `key` with HKDF-SHA-256 (its own label, apart
    /// from the token and audit uses of the server key).
    pub fn derive(key: &ServerKey) -> Self {
        let material = key.hkdf(KEK_INFO);
        let id = key.hkdf(KEK_ID_INFO);
        Self {
            id: hex::encode(&id[..8]),
            cipher: XChaCha20Poly1305::new(material.as_ref().into()),
        }
    }

    /// Names this KEK in every key it wraps (not secret: a hash of a
    /// derived value), so a key wrapped under another server key is told
    /// apart from a damaged one.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wraps `dek` for `conversation_id`: the wrapped key opens only for
    /// that conversation.
    pub fn wrap(&self, dek: &DataKey, conversation_id: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: dek.0.as_ref(),
                    aad: &wrap_aad(conversation_id),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any 32 bytes");
        let mut out = Vec::with_capacity(nonce.len() + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{WRAPPED_PREFIX}{}:{}", self.id, B64.encode(out))
    }

    /// Unwraps a data key stored for `conversation_id`.
    pub fn unwrap(&self, wrapped: &str, conversation_id: &str) -> Result<DataKey, Error> {
        let (id, body) = split_wrapped(wrapped)?;
        if id != self.id {
            return Err(Error::UnknownKek { id: id.to_owned() });
        }
        let raw = B64.decode(body).map_err(|_| Error::Damaged("wrapped data key"))?;
        if raw.len() != 24 + 32 + 16 {
            return Err(Error::Damaged("wrapped data key"));
        }
        let (nonce, sealed) = raw.split_at(24);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &wrap_aad(conversation_id),
                    },
                )
                .map_err(|_| Error::Damaged("wrapped data key"))?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&plain);
        Ok(DataKey(key))
    }
}

/// The KEK id a wrapped key names.
pub fn wrapped_kek_id(wrapped: &str) -> Result<&str, Error> {
    split_wrapped(wrapped).map(|(id, _)| id)
}

fn split_wrapped(wrapped: &str) -> Result<(&str, &str), Error> {
    wrapped
        .strip_prefix(WRAPPED_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .ok_or(Error::Damaged("wrapped data key"))
}

fn wrap_aad(conversation_id: &str) -> Vec<u8> {
    super::aad(&[b"data key", conversation_id.as_bytes()])
}

/// One conversation's data key (zeroized when dropped).
pub struct DataKey(pub(super) Zeroizing<[u8; 32]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// A new random data key (256 bits from the OS's generator).
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        Self(key)
    }
}

/// The KEKs a store can use: the current one wraps new data keys; during a
/// rotation the previous one still unwraps keys not yet re-wrapped.
///
/// Shared by every clone of a store (and its transactions), so installing
/// or rotating a key is seen by all of them at once.
#[derive(Debug, Default)]
pub struct Keyring {
    keks: RwLock<Vec<Arc<Kek>>>,
    /// The key file the roots came from, re-read when a wrapped key names
    /// a KEK this process does not hold (another process rotated).
    file: RwLock<Option<KeyFile>>,
}

/// Where a keyring's roots live, and the server key written back with them.
#[derive(Clone)]
pub struct KeyFile {
    /// The key file.
    pub path: PathBuf,
    /// Its first line, kept as it is when the roots are rewritten.
    pub server_key: ServerKey,
    /// Created beside a SQLite database by the bridge (not given by the
    /// operator to several servers): a purge may rotate its root.
    pub beside_database: bool,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring holding `key`'s KEK.
    pub fn new(key: &ServerKey) -> Self {
        let ring = Self::default();
        ring.install(key);
        ring
    }

    /// Whether no KEK is installed yet.
    pub fn is_empty(&self) -> bool {
        self.keks.read().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    /// Makes `root`'s KEK the current one (the others stay for unwrapping).
    pub fn install(&self, root: &ServerKey) -> Arc<Kek> {
        let kek = Arc::new(Kek::derive(root));
        let mut keks = self.keks.write().unwrap_or_else(|p| p.into_inner());
        keks.retain(|k| k.id != kek.id);
        keks.insert(0, kek.clone());
        kek
    }

    /// Installs the roots of the key file `file` (its `kek` line, or the
    /// server key when it has none, and a `kek-previous` line if a rotation
    /// was interrupted), and remembers the file for reloads and rotations.
    pub fn load_file(&self, file: KeyFile) -> Result<(), super::keyfile::Error> {
        let roots = super::keyfile::read(&file.path)?;
        if let Some(previous) = &roots.previous {
            self.install(previous);
        }
        self.install(roots.current.as_ref().unwrap_or(&file.server_key));
        *self.file.write().unwrap_or_else(|p| p.into_inner()) = Some(file);
        Ok(())
    }

    /// The key file the roots came from, if any.
    pub fn key_file(&self) -> Option<KeyFile> {
        self.file.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets every KEK but the current one (after a rotation committed);
    /// the forgotten keys' material is zeroized as the cipher drops.
    pub fn retire_others(&self) {
        let mut keks = self.keks.write().unwrap_or_else(|p| p.into_inner());
        keks.truncate(1);
    }

    /// The KEK new data keys are wrapped with.
    pub fn current(&self) -> Result<Arc<Kek>, Error> {
        let keks = self.keks.read().unwrap_or_else(|p| p.into_inner());
        keks.first().cloned().ok_or(Error::NoKey)
    }

    /// The KEK named `id`, re-reading the key file once if it is not held
    /// (another process may have rotated it).
    pub fn kek(&self, id: &str) -> Result<Arc<Kek>, Error> {
        let find = || {
            let keks = self.keks.read().unwrap_or_else(|p| p.into_inner());
            keks.iter().find(|k| k.id == id).cloned()
        };
        if let Some(kek) = find() {
            return Ok(kek);
        }
        if let Some(file) = self.key_file()
            && let Ok(roots) = super::keyfile::read(&file.path)
        {
            for root in [&roots.previous, &roots.current].into_iter().flatten() {
                let kek = Kek::derive(root);
                if kek.id == id {
                    let kek = Arc::new(kek);
                    self.keks
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(kek.clone());
                    return Ok(kek);
                }
            }
        }
        Err(Error::UnknownKek { id: id.to_owned() })
    }

    /// The KEK to wrap a new data key with: the one the database names as
    /// current (`None` for a database that names none yet: this keyring's).
    pub fn wrapping_kek(&self, database_current: Option<&str>) -> Result<Arc<Kek>, Error> {
        match database_current {
            Some(id) => self.kek(id),
            None => self.current(),
        }
    }

    /// Unwraps `wrapped` with whichever KEK it names.
    pub fn unwrap(&self, wrapped: &str, conversation_id: &str) -> Result<DataKey, Error> {
        self.kek(wrapped_kek_id(wrapped)?)?
            .unwrap(wrapped, conversation_id)
    }
}
