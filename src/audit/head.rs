//! The audit head kept outside the database.
//!
//! The hash chain shows an edited, deleted or reordered entry, but not a
//! trail whose newest entries were cut off: the shorter chain is still a
//! valid chain. So every commit that appends to the trail also records the
//! newest `(seq, hash)` in a small file beside the database, sealed with a
//! key derived from the server key, and `audit verify` checks that the
//! database still holds that entry. The file also names the chain's first
//! entry, so a database swapped for another chain is told apart from one
//! that merely grew.
//!
//! Many server processes append to one database, so the file is only ever
//! moved forward: under an exclusive lock on the file, a writer reads the
//! stored head and replaces it only with a later entry of the same chain.
//! The record has a fixed length and is written in place with one write, so
//! a reader (under a shared lock) never sees half of it. The file is written
//! after the database commit: a crash in between leaves the file behind the
//! database, which `audit verify` accepts; it is never ahead of a commit.
//! No fsync: a power cut may lose the last update, which again only leaves
//! the file behind.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::auth::ServerKey;

/// What the seal key is derived with (HMAC of this label under the server
/// key), so the head seal is never the same MAC as an entry seal or a token hash.
const KEY_LABEL: &[u8] = b"mcp-bridge audit-head seal v1";
/// First word of every record.
const MAGIC: &str = "mcp-bridge-audit-head";
/// Record format version.
const VERSION: &str = "1";

/// The newest entry of a chain, as the head file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Hash of entry 1: names the chain.
    pub first: String,
    /// The newest entry's seq.
    pub seq: i64,
    /// The newest entry's hash.
    pub hash: String,
}

/// Why a head file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read or written.
    #[error("audit head file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file is not a head record (empty after a power cut, or overwritten).
    #[error("audit head file {path} is not a head record; it is rewritten at the next audited action")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The record's seal does not verify under this server's key: it was
    /// written by someone without the key, or under another key.
    #[error("audit head file {path} has an invalid seal (written without this server's key)")]
    Seal {
        /// The file.
        path: PathBuf,
    },
}

/// The head file of one database, with the key that seals it.
pub struct HeadFile {
    path: PathBuf,
    key: ServerKey,
}

impl std::fmt::Debug for HeadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HeadFile {
    /// The head file at `path`, sealed under a key derived from `server_key`.
    pub fn new(path: PathBuf, server_key: &ServerKey) -> Self {
        let derived: [u8; 32] = server_key
            .mac(KEY_LABEL)
            .try_into()
            .expect("HMAC-SHA-256 is 32 bytes");
        Self {
            path,
            key: ServerKey::from_bytes(derived),
        }
    }

    /// Where the head is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded head; `None` when there is no file yet.
    pub fn read(&self) -> Result<Option<Head>, Error> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        lock(&file, false).map_err(|e| self.io(e))?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| self.io(e))?;
        self.parse(&text).map(Some)
    }

    /// Records `head` if it is later than the recorded one on the same chain.
    /// A head of another chain, or a record whose seal does not verify, is
    /// left in place for `audit verify` to report rather than papered over;
    /// an empty or unparsable file (a power cut) is rewritten.
    pub fn advance(&self, head: &Head) -> Result<(), Error> {
        let mut file = self.open_locked()?;
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| self.io(e))?;
        match self.parse(&text) {
            Ok(stored) if stored.first != head.first || stored.seq >= head.seq => return Ok(()),
            Ok(_) => {}
            // Empty (just created, or cut short by a power loss): write it.
            Err(Error::Malformed { .. }) => {}
            Err(e) => return Err(e),
        }
        self.write(&file, head, text.len())
    }

    /// Replaces the record whatever it holds: after `restore`, when the
    /// database was deliberately replaced by another chain.
    pub fn reset(&self, head: Option<&Head>) -> Result<(), Error> {
        match head {
            Some(h) => {
                let file = self.open_locked()?;
                self.write(&file, h, usize::MAX)
            }
            None => match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.io(e)),
            },
        }
    }

    fn open_locked(&self) -> Result<File, Error> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&self.path).map_err(|e| self.io(e))?;
        lock(&file, true).map_err(|e| self.io(e))?;
        Ok(file)
    }

    /// Writes the record at offset 0 over a file of `old_len` bytes. Records
    /// have a fixed length, so the file is truncated only when it held more
    /// than one record (a damaged file; `usize::MAX` when unknown): the
    /// common case is one write, no `ftruncate`.
    fn write(&self, file: &File, head: &Head, old_len: usize) -> Result<(), Error> {
        let record = self.record(head);
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            file.write_all_at(record.as_bytes(), 0).map_err(|e| self.io(e))?;
        }
        #[cfg(not(unix))]
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = file;
            f.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
            f.write_all(record.as_bytes()).map_err(|e| self.io(e))?;
        }
        if old_len > record.len() {
            file.set_len(record.len() as u64).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// One fixed-length line: seq zero-padded so every record has the same
    /// size and an in-place write replaces the whole of the previous one.
    fn record(&self, h: &Head) -> String {
        let body = format!("{MAGIC} {VERSION} {:020} {} {}", h.seq, h.first, h.hash);
        let seal = hex::encode(self.key.mac(body.as_bytes()));
        format!("{body} {seal}\n")
    }

    fn parse(&self, text: &str) -> Result<Head, Error> {
        let malformed = || Error::Malformed {
            path: self.path.clone(),
        };
        let line = text.strip_suffix('\n').ok_or_else(malformed)?;
        let (body, seal) = line.rsplit_once(' ').ok_or_else(malformed)?;
        let parts: Vec<&str> = body.split(' ').collect();
        let [magic, version, seq, first, hash] = parts[..] else {
            return Err(malformed());
        };
        if magic != MAGIC || version != VERSION || !is_hash(first) || !is_hash(hash) {
            return Err(malformed());
        }
        let seq: i64 = seq.parse().map_err(|_| malformed())?;
        let tag = hex::decode(seal).map_err(|_| malformed())?;
        if !self.key.verify_mac(body.as_bytes(), &tag) {
            return Err(Error::Seal {
                path: self.path.clone(),
            });
        }
        Ok(Head {
            first: first.to_owned(),
            seq,
            hash: hash.to_owned(),
        })
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }
}

/// An advisory lock on the whole file, released when the file is closed:
/// exclusive for a writer, shared for a reader. (`flock`, through rustix:
/// std's `File::lock` needs a newer Rust than this crate's MSRV.)
fn lock(file: &File, exclusive: bool) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::fs::{FlockOperation, flock};
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        flock(file, op).map_err(std::io::Error::from)
    }
    #[cfg(not(unix))]
    {
        let _ = (file, exclusive);
        Ok(())
    }
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: i64, first: char) -> Head {
        Head {
            first: first.to_string().repeat(64),
            seq,
            hash: format!("{:064x}", seq),
        }
    }

    #[test]
    fn only_moves_forward_on_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let f = HeadFile::new(dir.path().join("h"), &ServerKey::from_bytes([1; 32]));
        assert_eq!(f.read().unwrap(), None);
        f.advance(&head(5, 'a')).unwrap();
        f.advance(&head(3, 'a')).unwrap();
        assert_eq!(f.read().unwrap(), Some(head(5, 'a')));
        f.advance(&head(9, 'b')).unwrap();
        assert_eq!(
            f.read().unwrap(),
            Some(head(5, 'a')),
            "another chain never replaces it"
        );
        f.advance(&head(12, 'a')).unwrap();
        assert_eq!(f.read().unwrap(), Some(head(12, 'a')));
        f.reset(Some(&head(2, 'b'))).unwrap();
        assert_eq!(f.read().unwrap(), Some(head(2, 'b')));
    }

    #[test]
    fn a_record_sealed_under_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h");
        HeadFile::new(path.clone(), &ServerKey::from_bytes([1; 32]))
            .advance(&head(5, 'a'))
            .unwrap();
        let other = HeadFile::new(path, &ServerKey::from_bytes([2; 32]));
        assert!(matches!(other.read(), Err(Error::Seal { .. })));
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = HeadFile::new(dir.path().join("h"), &ServerKey::from_bytes([1; 32]));
        f.advance(&head(1, 'a')).unwrap();
        let mode = std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
