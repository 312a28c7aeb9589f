//! Wake-ups: how a waiting reader learns that another process may have
//! written, without polling the database.
//!
//! A backend owns one [`WakeSource`] per process and bumps it whenever its
//! trigger fires: the SQLite backend watches the database and its WAL file
//! (see [`FileWatch`]), a PostgreSQL backend would `LISTEN` on a channel its
//! writers `NOTIFY`. Every waiter holds a [`Changes`] subscription to that one
//! source, so ten waits in one process cost one watch, not ten.
//!
//! A wake-up is only a hint: "something may have changed". The truth stays
//! in the database (the waiter re-reads its pending deliveries), so a
//! spurious wake costs one cheap query and a missed one costs at most the
//! waiter's slow fallback poll. This module never reads or writes rows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// The sending half: one per process and backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WakeSource {
    generation: Arc<watch::Sender<u64>>,
    /// Whether a trigger is feeding this source. False when the watch could
    /// not be set up (no inotify instances left, an unsupported file system)
    /// or was lost: waiters then fall back to polling quickly.
    live: Arc<AtomicBool>,
}

impl Default for WakeSource {
    fn default() -> Self {
        Self::new()
    }
}

impl WakeSource {
    /// A source without a trigger yet ([`Changes::is_live`] is false until
    /// [`WakeSource::set_live`]).
    pub fn new() -> Self {
        Self {
            generation: Arc::new(watch::Sender::new(0)),
            live: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Something may have changed: wakes every subscriber. Callable from any
    /// thread (the file watcher calls it from its own).
    pub fn wake(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Records whether a trigger feeds this source.
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Relaxed);
        // Waiters re-read their fallback interval on the next wake.
        self.wake();
    }

    /// A new subscription. It starts "seen": only wakes after this call count.
    pub fn subscribe(&self) -> Changes {
        Changes {
            rx: self.generation.subscribe(),
            live: Arc::clone(&self.live),
        }
    }
}

/// A waiter's subscription to its backend's [`WakeSource`].
#[derive(Debug)]
pub struct Changes {
    rx: watch::Receiver<u64>,
    live: Arc<AtomicBool>,
}

impl Changes {
    /// A subscription nothing will ever wake: for backends without a trigger.
    /// Waiters poll at their fast fallback interval.
    pub fn never() -> Self {
        WakeSource::new().subscribe()
    }

    /// Resolves once something may have changed since the previous call (or
    /// since subscribing). Wakes that arrive while the caller is busy are
    /// coalesced into one. Never resolves if the source is gone.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether a trigger feeds the source; if not, the caller must poll.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }
}

/// Watches a SQLite database's directory and wakes a [`WakeSource`] when the
/// database file or its `-wal` file is created or written, by this process
/// or any other. Dropping it stops the watch.
///
/// The directory is watched rather than the files, so the watch survives
/// the WAL file being deleted and recreated (the last connection to close
/// removes it; `restore` replaces the database). Opens and reads are
/// ignored: only writes can deliver a message. On Linux this is one inotify
/// instance and a thread blocked in `epoll_wait`, idle until a write.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatch").finish_non_exhaustive()
    }
}

impl FileWatch {
    /// Starts watching `db` for `source`, and marks the source live. On error
    /// the source stays not live and waiters poll.
    pub fn start(db: &Path, source: WakeSource) -> Result<Self, notify::Error> {
        use notify::Watcher;
        let dir = match db.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        let mut wal = name.clone();
        wal.push("-wal");
        let on_event = {
            let source = source.clone();
            move |event: notify::Result<notify::Event>| match event {
                Ok(e) if touches_data(&e.kind) => {
                    let ours = e
                        .paths
                        .iter()
                        .filter_map(|p| p.file_name())
                        .any(|n| n == name || n == wal);
                    if ours {
                        source.wake();
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    // The watch may have lost events (queue overflow) or died:
                    // wake everyone so they re-read, and let them poll.
                    tracing::warn!(error = %e, "database file watch failed; waits fall back to polling");
                    source.set_live(false);
                }
            }
        };
        let mut watcher = notify::recommended_watcher(on_event)?;
        watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
        source.set_live(true);
        Ok(Self { _watcher: watcher })
    }
}

/// Creations and writes wake; opens, closes and reads do not.
fn touches_data(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any | EventKind::Other
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_every_subscriber_once() {
        let source = WakeSource::new();
        let mut a = source.subscribe();
        let mut b = source.subscribe();
        source.wake();
        source.wake();
        tokio::time::timeout(Duration::from_secs(5), a.changed())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), b.changed())
            .await
            .unwrap();
        // Two wakes while nobody listened coalesce into one.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), a.changed())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_write_to_the_wal_file_wakes_and_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("bridge.db");
        let source = WakeSource::new();
        let _watch = FileWatch::start(&db, source.clone()).unwrap();
        let mut changes = source.subscribe();
        assert!(changes.is_live());
        std::fs::write(dir.path().join("unrelated.txt"), b"x").unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), changes.changed())
                .await
                .is_err(),
            "a file that is not the database woke a waiter"
        );
        std::fs::write(dir.path().join("bridge.db-wal"), b"frame").unwrap();
        tokio::time::timeout(Duration::from_secs(5), changes.changed())
            .await
            .expect("a write to the WAL file must wake");
    }
}
