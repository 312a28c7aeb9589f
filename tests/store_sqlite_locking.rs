//! The SQLite backend waits for another process's write lock without
//! blocking its thread, and still gets the lock once it is free.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mcp_bridge::store::sqlite::{OpenMode, SqliteStore};
use mcp_bridge::store::{Store, Tx};

/// Another connection (as another process would) holds the write lock for
/// 400 ms. `begin_write` must wait for it, succeed after it is released,
/// and meanwhile leave the (single-threaded) runtime free: a ticker task on
/// the same thread keeps running while the writer waits.
#[tokio::test(flavor = "current_thread")]
async fn a_writer_waits_for_the_lock_without_blocking_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing)
        .await
        .unwrap()
        .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));

    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder_path = path.clone();
    let holder = std::thread::spawn(move || {
        let other = rusqlite::Connection::open(&holder_path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        other.execute_batch("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();

    let ticks = Arc::new(AtomicU32::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let tx = store.begin_write().await.expect("the lock is granted once free");
    let waited = started.elapsed();
    tx.commit().await.unwrap();
    ticker.abort();
    holder.join().unwrap();

    assert!(
        waited >= Duration::from_millis(300),
        "it waited for the holder ({waited:?})"
    );
    let ticks = ticks.load(Ordering::Relaxed);
    // A blocked thread would tick at most once (after the wait); a free one
    // about 30 times. 5 leaves room for a loaded machine.
    assert!(
        ticks >= 5,
        "the runtime thread kept running other tasks while waiting ({ticks} ticks of 10 ms in {waited:?})"
    );
}

/// A read transaction is not held up by another connection's write lock
/// (WAL: readers never wait for the writer).
#[tokio::test(flavor = "current_thread")]
async fn a_reader_does_not_wait_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let store = SqliteStore::open(&path, OpenMode::CreateIfMissing)
        .await
        .unwrap()
        .with_key(&mcp_bridge::auth::ServerKey::from_bytes([9; 32]));
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let mut tx = store.begin_read().await.unwrap();
    assert!(
        tx.conversation("conv_00000000000000000000000000000000")
            .await
            .unwrap()
            .is_none()
    );
    drop(tx);
    assert!(started.elapsed() < Duration::from_secs(2));
    other.execute_batch("ROLLBACK").unwrap();
}

/// Several server processes starting on a new file at the same moment (two
/// agents' clients spawning theirs): every one answers `initialize`.
/// Switching a new file to WAL takes an exclusive lock, and SQLite answers
/// the other processes BUSY at once, without its busy handler; they must
/// retry, not exit with "database is locked". (Threads of one process do
/// not reproduce this: SQLite shares one lock table per process.)
#[test]
fn servers_starting_together_on_a_new_file_all_answer() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_mcp-bridge");
    let init = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    for round in 0..25 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        let children: Vec<_> = (0..8)
            .map(|_| {
                Command::new(bin)
                    .arg("serve")
                    .env("MCP_BRIDGE_DB", &db)
                    .env("RUST_LOG", "warn")
                    .env("XDG_CONFIG_HOME", dir.path().join("config"))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            let mut stdin = child.stdin.take().unwrap();
            // A server that already exited closed its stdin: its output
            // below says why.
            let _ = stdin.write_all(init).and_then(|()| stdin.write_all(b"\n"));
            drop(stdin);
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains(r#""result""#),
                "round {round}: a server did not answer initialize; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let conn = rusqlite::Connection::open(&db).unwrap();
        let applied: i64 = conn
            .query_row("SELECT count(*) FROM _sqlx_migrations", [], |r| r.get(0))
            .unwrap();
        // One record per embedded migration file, whatever their number.
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
            .count() as i64;
        assert_eq!(applied, files, "each migration recorded once");
    }
}
