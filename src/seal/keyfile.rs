//! The encryption lines of a key file, and rewriting them.
//!
//! A key file's first line is the server key (token hashes, audit seals:
//! it never changes, or every token and seal would break). The data keys'
//! wrapping root may follow, on its own line, and during a rotation the
//! root it replaces:
//!
//! ```text
//! <64 hex: the server key>
//! kek <64 hex: the current wrapping root>
//! kek-previous <64 hex: the root being replaced>
//! ```
//!
//! Without a `kek` line the wrapping root is the server key itself (every
//! key file written before rotation existed). `mcp-bridge key rotate`, and
//! a purge, write a new root here and re-wrap every data key under it; the
//! old root is kept as `kek-previous` only until the database has
//! committed the re-wrap, so a crash at any point leaves a file that opens
//! every data key the database holds.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::Zeroizing;

use crate::auth::{ServerKey, create_private_file};

/// A key file's wrapping roots (each zeroized when dropped).
#[derive(Default)]
pub struct Roots {
    /// The root data keys are wrapped under; `None`: the server key.
    pub current: Option<ServerKey>,
    /// The root being replaced, during a rotation.
    pub previous: Option<ServerKey>,
}

/// Why a key file's wrapping lines could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or replaced.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line after the first is not `kek HEX` or `kek-previous HEX`.
    #[error("key file {path}, line {line}: expected `kek <64 hex>` or `kek-previous <64 hex>`")]
    BadLine {
        /// The key file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// Reads the wrapping roots of the key file at `path`.
pub fn read(path: &Path) -> Result<Roots, Error> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?);
    let mut roots = Roots::default();
    for (i, line) in text.lines().enumerate().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || Error::BadLine {
            path: path.to_owned(),
            line: i + 1,
        };
        let (label, hex) = line.split_once(' ').ok_or_else(bad)?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex.trim(), bytes.as_mut()).map_err(|_| bad())?;
        let key = ServerKey::from_bytes(*bytes);
        match label {
            "kek" => roots.current = Some(key),
            "kek-previous" => roots.previous = Some(key),
            _ => return Err(bad()),
        }
    }
    Ok(roots)
}

/// A new random wrapping root.
pub fn generate_root() -> ServerKey {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(bytes.as_mut());
    ServerKey::from_bytes(*bytes)
}

/// Replaces the key file at `path` with the same server key and `roots`:
/// written to a private file beside it, synced, then renamed over it (a
/// reader sees the old file or the new one, never half of either).
pub fn write(path: &Path, server_key: &ServerKey, roots: &Roots) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut text = Zeroizing::new(server_key.to_hex());
    text.push('\n');
    for (label, key) in [("kek", &roots.current), ("kek-previous", &roots.previous)] {
        if let Some(key) = key {
            text.push_str(label);
            text.push(' ');
            text.push_str(&key.to_hex());
            text.push('\n');
        }
    }
    let mut staged = path.as_os_str().to_owned();
    staged.push(format!(".rotate-{}", std::process::id()));
    let staged = PathBuf::from(staged);
    let _ = std::fs::remove_file(&staged);
    let result = (|| {
        let mut file = create_private_file(&staged)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&staged, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result.map_err(io)
}
