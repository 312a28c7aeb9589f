//! The overseer passphrase: the factor of a YOLO approval that an agent running as the same
//! user cannot produce just by opening a pseudo-terminal.
//!
//! It is set once with `mcp-bridge yolo setup` and asked at every `mcp-bridge approve`,
//! without echo, on `/dev/tty`. Only an Argon2id hash is kept (PHC string, OWASP's
//! recommended parameters: 19 MiB, 2 passes, 1 lane), in a 0600 file beside the database
//! (`bridge.db` -> `bridge.db.overseer`):
//!
//! - beside the key rather than in the database, so restoring or copying a database never
//!   carries or replaces it, no migration is needed, and the YOLO sandbox hides it together
//!   with the key and the database (every `bridge.db*` file is invisible there);
//! - Argon2id (RustCrypto's `argon2`, the reference PHC-winner implementation in pure Rust,
//!   maintained with `password-hash`) because a stolen hash must be slow to guess offline:
//!   a memory-hard hash is what a short human passphrase needs; HMAC under the server key
//!   would fall with the key file.
//!
//! Verification goes through `password-hash`, which compares the derived output in constant
//! time. The file is written to a temporary name and renamed, so a crash never leaves a
//! half-written hash.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use zeroize::Zeroizing;

/// Shortest passphrase accepted, in characters.
pub const MIN_CHARS: usize = 12;
/// Wrong passphrases allowed per approval before it is refused.
pub const ATTEMPTS: usize = 3;

/// Where the hash lives for the database at `db_path`.
pub fn path_for(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".overseer");
    db_path.with_file_name(name)
}

/// The Argon2id PHC string for `passphrase`.
pub fn hash(passphrase: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let salt =
        SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("encoding the salt failed: {e}"))?;
    Argon2::default()
        .hash_password(passphrase.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the passphrase failed: {e}"))
}

/// Whether `passphrase` matches the stored PHC string (constant-time comparison inside
/// `password-hash`). A malformed stored hash never matches.
pub fn verify(passphrase: &str, stored: &str) -> bool {
    PasswordHash::new(stored.trim()).is_ok_and(|h| {
        Argon2::default()
            .verify_password(passphrase.as_bytes(), &h)
            .is_ok()
    })
}

/// Reads the stored hash, or `None` when no passphrase was set up.
pub fn load(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Stores `phc` at `path` (0600), refusing to replace an existing one.
pub fn store(path: &Path, phc: &str) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "an overseer passphrase is already set ({}); it is set once. To reset it, delete that file yourself and run setup again",
            path.display()
        );
    }
    let tmp = path.with_extension(format!("overseer.tmp{}", std::process::id()));
    let mut f =
        crate::auth::create_private_file(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let written = f.write_all(phc.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).context("writing the passphrase hash");
    }
    // Link instead of rename: fails if another setup won the race, never overwrites.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked.with_context(|| format!("storing {}", path.display()))
}

/// Reads one line from the terminal with echo turned off (restored afterwards, also on
/// error). The passphrase is zeroed when dropped.
pub fn read_hidden(tty: &std::fs::File, input: &mut impl BufRead) -> anyhow::Result<Zeroizing<String>> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let saved = tcgetattr(tty).context("reading the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    tcsetattr(tty, OptionalActions::Flush, &quiet).context("turning off echo")?;
    let mut line = Zeroizing::new(String::new());
    let read = input.read_line(&mut line);
    let restored = tcsetattr(tty, OptionalActions::Now, &saved);
    read.context("reading the terminal")?;
    restored.context("restoring the terminal settings")?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_passphrase() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterz", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn store_is_private_and_set_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("bridge.db"));
        assert_eq!(path.file_name().unwrap(), "bridge.db.overseer");
        store(&path, "x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(store(&path, "y").is_err());
        assert_eq!(load(&path).unwrap().as_deref(), Some("x"));
    }
}
