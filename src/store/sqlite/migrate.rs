//! The schema's migrations: embedded in the binary, recorded in the
//! database, checked at every start and applied only when missing.
//!
//! The record is the `_sqlx_migrations` table with the columns and the
//! checksums (SHA-384 of each file's bytes) that the `sqlx` migrator kept
//! when it ran them, so every database and backup made by an earlier build
//! opens unchanged. A start on a current database costs one read of that
//! table; all missing migrations are applied in one `BEGIN IMMEDIATE`
//! transaction, so processes starting together on a new file serialise on
//! the write lock and the losers find the work done.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha384};

use super::conn::{is_not_a_database, not_a_bridge_db};
use crate::store::{Error, Result};

/// One migration file.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Versions are never reused or edited: a change
/// to the schema is a new file.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 3,
        description: "yolo",
        sql: include_str!("../../../migrations/sqlite/0003_yolo.sql"),
    },
    Migration {
        version: 4,
        description: "refusal tally",
        sql: include_str!("../../../migrations/sqlite/0004_refusal_tally.sql"),
    },
    Migration {
        version: 5,
        description: "agents",
        sql: include_str!("../../../migrations/sqlite/0005_agents.sql"),
    },
    Migration {
        version: 6,
        description: "teams",
        sql: include_str!("../../../migrations/sqlite/0006_teams.sql"),
    },
    Migration {
        version: 7,
        description: "seat token index",
        sql: include_str!("../../../migrations/sqlite/0007_seat_token_index.sql"),
    },
    Migration {
        version: 8,
        description: "overseer search",
        sql: include_str!("../../../migrations/sqlite/0008_overseer_search.sql"),
    },
    Migration {
        version: 9,
        description: "encryption at rest",
        sql: include_str!("../../../migrations/sqlite/0009_encryption_at_rest.sql"),
    },
];

/// The record table, exactly as the `sqlx` migrator created it.
const RECORD_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);";

/// Refuses a file that holds tables but none of ours: someone else's
/// database must not get our schema added to it.
pub(super) fn ensure_ours(conn: &Connection, path: &Path) -> Result<()> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .map_err(|e| read_error(path, e))?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| read_error(path, e))?;
    let ours = tables.iter().any(|t| t == "_sqlx_migrations" || t == "audit");
    if !tables.is_empty() && !ours {
        return Err(Error::NotABridgeDatabase {
            path: path.to_owned(),
            reason: "it holds other tables and no bridge schema".into(),
        });
    }
    Ok(())
}

/// Brings the schema up to date; only reads when it already is.
pub(super) fn run(conn: &Connection, path: &Path) -> Result<()> {
    if pending(conn, path)? == 0 {
        return Ok(());
    }
    apply(conn, path)
}

/// Applies every missing migration in one write transaction (the busy
/// timeout covers another process doing the same at the same moment).
pub(crate) fn apply(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| read_error(path, e))?;
    let result = (|| {
        conn.execute_batch(RECORD_TABLE)?;
        // Re-read under the lock: another process may have just done it.
        if pending(conn, path)? == 0 {
            return Ok(());
        }
        let applied = applied(conn)?;
        for m in MIGRATIONS
            .iter()
            .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        {
            let started = Instant::now();
            conn.execute_batch(m.sql).map_err(|e| Error::NotABridgeDatabase {
                path: path.to_owned(),
                reason: format!("schema migration {} ({}) failed: {e}", m.version, m.description),
            })?;
            conn.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (?1, ?2, TRUE, ?3, ?4)",
                params![
                    m.version,
                    m.description,
                    checksum(m.sql),
                    started.elapsed().as_nanos() as i64
                ],
            )?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(Error::from),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// How many of this binary's migrations the database lacks. Refuses a
/// database from a newer binary and one whose recorded migration differs
/// from the embedded file.
pub(super) fn pending(conn: &Connection, path: &Path) -> Result<usize> {
    let has_record: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| read_error(path, e))?;
    if has_record.is_none() {
        return Ok(MIGRATIONS.len());
    }
    let applied = applied(conn).map_err(|e| match e {
        Error::Internal(_) => Error::NotABridgeDatabase {
            path: path.to_owned(),
            reason: "its migration record cannot be read".into(),
        },
        other => other,
    })?;
    for (version, sum) in &applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            None => {
                return Err(Error::NotABridgeDatabase {
                    path: path.to_owned(),
                    reason: format!(
                        "it was written by a newer mcp-bridge (schema version {version}); upgrade this binary"
                    ),
                });
            }
            Some(m) if checksum(m.sql) != *sum => {
                return Err(Error::NotABridgeDatabase {
                    path: path.to_owned(),
                    reason: format!(
                        "its schema migration {version} differs from this binary's; it was made by another build"
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(MIGRATIONS.len() - applied.len())
}

/// `(version, checksum)` of every recorded, successful migration.
fn applied(conn: &Connection) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut stmt =
        conn.prepare("SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn checksum(sql: &str) -> Vec<u8> {
    Sha384::digest(sql.as_bytes()).to_vec()
}

fn read_error(path: &Path, e: rusqlite::Error) -> Error {
    if is_not_a_database(&e) {
        not_a_bridge_db(path)
    } else {
        Error::from(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_and_name_their_files() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        let dir = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap();
        let mut files: Vec<String> = dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let expected: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.description.replace(' ', "_")))
            .collect();
        assert_eq!(
            files, expected,
            "every file in migrations/sqlite is embedded, in order"
        );
    }

    #[test]
    fn a_current_database_is_only_read() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        assert_eq!(pending(&conn, path).unwrap(), MIGRATIONS.len());
        apply(&conn, path).unwrap();
        assert_eq!(pending(&conn, path).unwrap(), 0);
        // A second apply finds nothing to do and changes nothing.
        apply(&conn, path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM _sqlx_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n as usize, MIGRATIONS.len());
    }

    #[test]
    fn a_newer_or_edited_record_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        apply(&conn, path).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99, 'future', TRUE, x'00', 0)",
            [],
        )
        .unwrap();
        let err = pending(&conn, path).unwrap_err().to_string();
        assert!(err.contains("newer mcp-bridge (schema version 99)"), "{err}");
        conn.execute("DELETE FROM _sqlx_migrations WHERE version = 99", [])
            .unwrap();
        conn.execute(
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1",
            [],
        )
        .unwrap();
        let err = pending(&conn, path).unwrap_err().to_string();
        assert!(err.contains("migration 1 differs"), "{err}");
    }
}
