//! Encryption at rest: every free-text field the bridge stores (message
//! bodies and files, status notes, YOLO proposals' commands, reasons and
//! directories) is sealed with XChaCha20-Poly1305 under its conversation's
//! data key before it reaches the database, and opened after it is read.
//!
//! The associated data binds each sealed value to where it belongs
//! (conversation, seat, sequence, field): a ciphertext copied to another
//! row, column or conversation fails to open, and the read fails with an
//! internal error rather than return another row's text. Keys: see
//! [`keys`]. What this protects and what not: docs/security.md.

pub mod keyfile;
pub mod keys;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

pub use keys::{DataKey, Kek, Keyring};

/// What a sealed value starts with. Not a character an agent's text can
/// forge into a real seal: opening also needs the data key.
pub const SEALED_PREFIX: &str = "mcpb-sealed:v1:";

/// Why a value could not be sealed or opened. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No KEK installed (a store used without a bridge's key).
    #[error("the store has no server key to make or open data keys with")]
    NoKey,
    /// A wrapped key names a KEK this process does not hold.
    #[error(
        "a data key is wrapped under another server key (id {id}); \
         use the key file it was made with, or the one `mcp-bridge key rotate` wrote"
    )]
    UnknownKek {
        /// The id the wrapped key names.
        id: String,
    },
    /// Authentication failed: altered, moved, or the wrong key.
    #[error(
        "a stored {0} failed to decrypt: it was altered, moved from another row, or its key was destroyed"
    )]
    Damaged(&'static str),
    #[error("a stored value is sealed but its conversation has no data key (purged?)")]
    /// A sealed value whose conversation's key row is gone.
    NoDataKey,
}

/// Associated data from parts, each length-prefixed so no two different
/// lists of parts give the same bytes.
pub(crate) fn aad(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// Where a sealed value lives: the associated data it is bound to (the
/// fields name the row's own columns).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum Place<'a> {
    /// A message's field (`body` or `files`).
    Message {
        conversation_id: &'a str,
        sender: &'a str,
        seq: i64,
        field: &'static str,
    },
    /// A seat's status note.
    StatusNote {
        conversation_id: &'a str,
        session_id: &'a str,
    },
    /// A YOLO proposal's field (`command`, `reason`, `cwd`, `workspace`).
    Proposal {
        conversation_id: &'a str,
        proposal_id: &'a str,
        field: &'static str,
    },
}

impl Place<'_> {
    fn aad(&self) -> Vec<u8> {
        match *self {
            Place::Message {
                conversation_id,
                sender,
                seq,
                field,
            } => aad(&[
                b"message",
                conversation_id.as_bytes(),
                sender.as_bytes(),
                &seq.to_be_bytes(),
                field.as_bytes(),
            ]),
            Place::StatusNote {
                conversation_id,
                session_id,
            } => aad(&[b"status note", conversation_id.as_bytes(), session_id.as_bytes()]),
            Place::Proposal {
                conversation_id,
                proposal_id,
                field,
            } => aad(&[
                b"proposal",
                conversation_id.as_bytes(),
                proposal_id.as_bytes(),
                field.as_bytes(),
            ]),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Place::Message { field: "files", .. } => "message's files",
            Place::Message { .. } => "message body",
            Place::StatusNote { .. } => "status note",
            Place::Proposal { .. } => "proposal",
        }
    }
}

/// Whether `stored` is a sealed value (not legacy plaintext awaiting the
/// migration).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// Seals `plain` for `place` under `key`: `SEALED_PREFIX` + base64 of a
/// random 192-bit nonce and the ciphertext with its tag.
pub fn seal(key: &DataKey, place: Place<'_>, plain: &str) -> String {
    let mut nonce = [0u8; 24];
    rand::rng().fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain.as_bytes(),
                aad: &place.aad(),
            },
        )
        .expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
    let mut raw = Vec::with_capacity(nonce.len() + sealed.len());
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&sealed);
    let mut out = String::with_capacity(SEALED_PREFIX.len() + raw.len() * 4 / 3 + 4);
    out.push_str(SEALED_PREFIX);
    B64.encode_string(raw, &mut out);
    out
}

/// Opens a value stored at `place`. Legacy plaintext (not yet migrated) is
/// returned as it is.
pub fn open(key: Option<&DataKey>, place: Place<'_>, stored: String) -> Result<String, Error> {
    let Some(body) = stored.strip_prefix(SEALED_PREFIX) else {
        return Ok(stored);
    };
    let key = key.ok_or(Error::NoDataKey)?;
    let raw = B64.decode(body).map_err(|_| Error::Damaged(place.what()))?;
    if raw.len() < 24 + 16 {
        return Err(Error::Damaged(place.what()));
    }
    let (nonce, sealed) = raw.split_at(24);
    let cipher = XChaCha20Poly1305::new(key.0.as_ref().into());
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &place.aad(),
            },
        )
        .map_err(|_| Error::Damaged(place.what()))?;
    String::from_utf8(plain).map_err(|_| Error::Damaged(place.what()))
}

/// A row's wrapped data key, unwrapped once for all its sealed fields.
pub fn row_key(
    ring: &Keyring,
    wrapped: Option<&str>,
    conversation_id: &str,
) -> Result<Option<DataKey>, Error> {
    wrapped.map(|w| ring.unwrap(w, conversation_id)).transpose()
}

#[cfg(test)]
mod tests;
