//! Sealing a database written before encryption at rest, in place.
//!
//! Runs when a store is opened with its key: batch after batch, each in
//! its own write transaction, gives every conversation without one a data
//! key and seals every field still in plaintext. A value is either sealed
//! or not (its prefix says which), and a batch commits whole or not at all,
//! so a process killed at any point leaves only rows that read correctly,
//! and the next start carries on where it stopped. Readers meanwhile open
//! sealed and plaintext values alike.

use std::io::IsTerminal;

use super::{Result, Store, Tx};

/// Rows sealed per transaction: short enough that agents' calls on the
/// same database wait at most a few milliseconds behind one batch.
pub const BATCH: i64 = 200;

/// Seals every legacy row of `store` (whose keyring must hold the server
/// key); the number of rows changed. Progress goes to stderr when it is a
/// terminal.
pub async fn run<S: Store>(store: &S) -> Result<u64> {
    // Every start asks; once the answer is yes, a read tells it, without
    // the write lock (and on a read-only file too).
    let mut read = store.begin_read().await?;
    let done = read.resealed().await?;
    read.commit().await?;
    if done {
        return Ok(0);
    }
    let show = std::io::stderr().is_terminal();
    let mut total = 0u64;
    loop {
        let mut tx = store.begin_write().await?;
        let done = tx.reseal_batch(BATCH).await?;
        tx.commit().await?;
        if done == 0 {
            break;
        }
        total += done;
        if show {
            eprint!("\rmcp-bridge: encrypting stored text at rest: {total} rows sealed");
        }
    }
    if total > 0 {
        if show {
            eprintln!();
        }
        tracing::info!(rows = total, "sealed the rows stored before encryption at rest");
        store.scrub().await?;
    }
    Ok(total)
}
