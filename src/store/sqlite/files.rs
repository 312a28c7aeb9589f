//! The database's files: the private directory and file it lives in, the
//! probe that tells whether another process has it open, and the staged
//! copy and atomic swap `restore` is made of.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::SqliteStore;
use super::conn::{is_not_a_database, not_a_bridge_db};
use crate::store::{Error, Result};

/// What [`secure_directory`] found in the database's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// Only its owner can enter it (no group or other bits), or it does not exist yet.
    Private,
    /// It was group- or world-accessible, owned by this user, and is now 0700.
    Tightened {
        /// The mode it had.
        from: u32,
    },
    /// It is group- or world-accessible and was left alone.
    Open {
        /// Its mode.
        mode: u32,
    },
}

/// Checks that the directory holding the database (and, beside it, the key
/// and the audit head) is private, and makes it so when `tighten` holds and
/// this user owns it.
///
/// The caller passes `tighten` only for the default data directory, which
/// exists for the bridge alone: narrowing it can break nothing. A directory
/// the user chose (`--db ~/project/bridge.db`) may be shared with other
/// tools or people on purpose, so it is reported, never changed. The files
/// inside are 0600 either way; an open directory still lets others see
/// their names and sizes, and lets a group with write access replace them.
pub fn secure_directory(dir: &Path, tighten: bool) -> std::io::Result<DirState> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = match std::fs::metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Private),
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(DirState::Private);
        }
        if tighten && meta.uid() == rustix::process::geteuid().as_raw() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            return Ok(DirState::Tightened { from: mode });
        }
        Ok(DirState::Open { mode })
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, tighten);
        Ok(DirState::Private)
    }
}

pub(super) fn create_private_db_file(path: &Path) -> Result<()> {
    let open_err = |e: std::io::Error| Error::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(open_err)?;
    }
    match crate::auth::create_private_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(open_err(e)),
    }
}

/// How long the in-use probe waits for a lock before concluding that
/// another process holds the database. Short: a live server holds its lock
/// for as long as it runs, so waiting longer would not change the answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// File maintenance for `restore`: these work on paths, not on an open store.
impl SqliteStore {
    /// Whether another process has the database at `path` open.
    ///
    /// Method: open one connection in `locking_mode=EXCLUSIVE` and run
    /// `BEGIN EXCLUSIVE` plus a read, with a short busy timeout. In WAL mode
    /// every open connection of every process (an idle `mcp-bridge serve`
    /// included) holds a shared lock on the file for as long as it is open,
    /// so the exclusive lock is only granted when nobody else has the file
    /// open. Closing the probe, as the last connection, checkpoints and
    /// removes the `-wal` and `-shm` files. A missing file is not in use.
    pub async fn in_use(path: &Path) -> Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, flags) {
            Ok(c) => c,
            Err(e) => return busy_or(path, e),
        };
        let probe = (|| {
            conn.busy_timeout(PROBE_TIMEOUT)?;
            conn.query_row("PRAGMA locking_mode = EXCLUSIVE", [], |_| Ok(()))?;
            conn.execute_batch("BEGIN EXCLUSIVE")?;
            let _: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            conn.execute_batch("ROLLBACK")
        })();
        let result = match probe {
            Ok(()) => Ok(false),
            Err(e) => busy_or(path, e),
        };
        drop(conn);
        result
    }

    /// Copies `src` to a new 0600 file beside `target` (same directory, so
    /// the final rename is atomic) and returns its path. Refuses a source
    /// with a non-empty `-wal` file: that is a live database or a copy
    /// taken while it was open, and its main file alone may be incomplete.
    pub fn stage_copy(src: &Path, target: &Path) -> Result<std::path::PathBuf> {
        let err = |path: &Path, reason: String| Error::Open {
            path: path.to_owned(),
            reason,
        };
        let wal = sidecar(src, "-wal");
        if std::fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false) {
            return Err(err(
                src,
                "it has a non-empty -wal file, so it is a live database or a copy taken while open; \
                 make a consistent copy with `mcp-bridge backup`"
                    .into(),
            ));
        }
        let mut input = std::fs::File::open(src).map_err(|e| err(src, e.to_string()))?;
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".restore-{}.tmp", std::process::id()));
        let staged = target.with_file_name(name);
        let mut out = crate::auth::create_private_file(&staged).map_err(|e| err(&staged, e.to_string()))?;
        let copied = std::io::copy(&mut input, &mut out).and_then(|_| out.sync_all());
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&staged);
            return Err(err(&staged, e.to_string()));
        }
        Ok(staged)
    }

    /// Replaces `target` with `staged` in one atomic rename. When `keep` is
    /// given and `target` exists, the old database stays reachable there (a
    /// hard link, so there is no instant without a file at `target`).
    /// Leftover `-wal`/`-shm` files of the old database are removed first:
    /// SQLite would otherwise replay an old WAL onto the new file.
    pub fn swap_into_place(staged: &Path, target: &Path, keep: Option<&Path>) -> Result<()> {
        let err = |path: &Path, e: std::io::Error| Error::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        if let Some(keep) = keep.filter(|_| target.exists()) {
            std::fs::hard_link(target, keep).map_err(|e| err(keep, e))?;
        }
        for suffix in ["-wal", "-shm"] {
            let p = sidecar(target, suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(err(&p, e)),
            }
        }
        std::fs::rename(staged, target).map_err(|e| err(target, e))?;
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable.
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    /// Removes a staged copy and any `-wal`/`-shm` SQLite left beside it.
    pub fn discard(staged: &Path) {
        for p in [
            staged.to_owned(),
            sidecar(staged, "-wal"),
            sidecar(staged, "-shm"),
        ] {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    std::path::PathBuf::from(name)
}

/// `Ok(true)` for a lock held elsewhere, the translated error otherwise.
fn busy_or(path: &Path, e: rusqlite::Error) -> Result<bool> {
    if is_not_a_database(&e) {
        return Err(not_a_bridge_db(path));
    }
    match Error::from(e) {
        Error::Busy => Ok(true),
        Error::Internal(e) => Err(Error::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        other => Err(other),
    }
}
