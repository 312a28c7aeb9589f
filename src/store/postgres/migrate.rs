//! The PostgreSQL schema's migrations: embedded in the binary, recorded in
//! the database, checked at every start and applied only when missing.
//!
//! The record is a `_sqlx_migrations` table with the same columns as the
//! SQLite backend's (SHA-384 of each file's bytes as checksum), so both
//! backends answer "which schema is this" the same way. A start on a
//! current database costs one read of that table. Missing migrations are
//! applied in one transaction that first takes [`MIGRATE_LOCK`]: servers
//! starting together on a new database queue on it, and each loser re-reads
//! the record under the lock and finds the work done. PostgreSQL's DDL is
//! transactional, so a failed migration leaves nothing half-made.

use std::time::Instant;

use deadpool_postgres::Object;
use sha2::{Digest, Sha384};

use super::OpenMode;
use crate::store::{Error, Result};

/// One migration file.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order, with the same versions as the SQLite ones.
/// Versions are never reused or edited: a change to the schema is a new file.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "init",
        sql: include_str!("../../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 3,
        description: "yolo",
        sql: include_str!("../../../migrations/postgres/0003_yolo.sql"),
    },
    Migration {
        version: 4,
        description: "refusal tally",
        sql: include_str!("../../../migrations/postgres/0004_refusal_tally.sql"),
    },
    Migration {
        version: 5,
        description: "agents",
        sql: include_str!("../../../migrations/postgres/0005_agents.sql"),
    },
    Migration {
        version: 6,
        description: "teams",
        sql: include_str!("../../../migrations/postgres/0006_teams.sql"),
    },
    Migration {
        version: 7,
        description: "seat token index",
        sql: include_str!("../../../migrations/postgres/0007_seat_token_index.sql"),
    },
    Migration {
        version: 8,
        description: "overseer search",
        sql: include_str!("../../../migrations/postgres/0008_overseer_search.sql"),
    },
    Migration {
        version: 9,
        description: "encryption at rest",
        sql: include_str!("../../../migrations/postgres/0009_encryption_at_rest.sql"),
    },
];

/// The advisory lock held while migrating (ASCII "mcpbmigr"); distinct from
/// the write lock, which a migration does not need.
const MIGRATE_LOCK: i64 = 0x6d63_7062_6d69_6772;

/// The record table.
pub(super) const RECORD_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Brings the schema up to date; only reads when it already is.
pub(super) async fn run(conn: &mut Object, mode: OpenMode, target: &str) -> Result<()> {
    let refuse = |reason: String| Error::NotABridgeDatabase {
        path: target.into(),
        reason,
    };
    let tables: Vec<String> = conn
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let has_record = tables.iter().any(|t| t == "_sqlx_migrations");
    if !tables.is_empty() && !has_record && !tables.iter().any(|t| t == "audit") {
        return Err(refuse("it holds other tables and no bridge schema".into()));
    }
    if mode == OpenMode::MustExist && !has_record {
        return Err(refuse(
            "it holds no mcp-bridge schema yet; `mcp-bridge serve` creates it on first start".into(),
        ));
    }
    if has_record && pending(conn, target).await? == 0 {
        return Ok(());
    }
    conn.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({MIGRATE_LOCK})"))
        .await?;
    match apply(conn, target).await {
        Ok(()) => Ok(conn.batch_execute("COMMIT").await?),
        Err(e) => {
            if conn.batch_execute("ROLLBACK").await.is_err() {
                tracing::warn!("rolling back a failed migration failed");
            }
            Err(e)
        }
    }
}

/// Inside the migration transaction, under the lock: applies what is
/// still missing (another server may have just done it all).
async fn apply(conn: &Object, target: &str) -> Result<()> {
    conn.batch_execute(RECORD_TABLE).await?;
    if pending(conn, target).await? == 0 {
        return Ok(());
    }
    let applied = applied(conn).await?;
    for m in MIGRATIONS
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
    {
        let started = Instant::now();
        conn.batch_execute(m.sql)
            .await
            .map_err(|e| Error::NotABridgeDatabase {
                path: target.into(),
                reason: format!("schema migration {} ({}) failed: {e}", m.version, m.description),
            })?;
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, $4)",
            &[
                &m.version,
                &m.description,
                &checksum(m.sql),
                &(started.elapsed().as_nanos() as i64),
            ],
        )
        .await?;
    }
    Ok(())
}

/// How many of this binary's migrations the database lacks. Refuses a
/// database from a newer binary and one whose recorded migration differs
/// from the embedded file.
pub(super) async fn pending(conn: &Object, target: &str) -> Result<usize> {
    let applied = applied(conn).await?;
    for (version, sum) in &applied {
        let reason = match MIGRATIONS.iter().find(|m| m.version == *version) {
            None => format!(
                "it was written by a newer mcp-bridge (schema version {version}); upgrade this binary"
            ),
            Some(m) if checksum(m.sql) != *sum => format!(
                "its schema migration {version} differs from this binary's; it was made by another build"
            ),
            Some(_) => continue,
        };
        return Err(Error::NotABridgeDatabase {
            path: target.into(),
            reason,
        });
    }
    Ok(MIGRATIONS.len() - applied.len())
}

/// `(version, checksum)` of every recorded, successful migration.
async fn applied(conn: &Object) -> Result<Vec<(i64, Vec<u8>)>> {
    let rows = conn
        .query(
            "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?)
}

fn checksum(sql: &str) -> Vec<u8> {
    Sha384::digest(sql.as_bytes()).to_vec()
}

/// The embedded migrations' SQL, in order: what `schema` applies to a
/// scratch schema to learn the expected one.
pub(super) fn all_sql() -> impl Iterator<Item = &'static str> {
    MIGRATIONS.iter().map(|m| m.sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_and_name_their_files() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        let dir = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap();
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
            "every file in migrations/postgres is embedded, in order"
        );
    }

    #[test]
    fn both_backends_have_the_same_versions() {
        let names = |dir: &str| {
            let mut v: Vec<String> =
                std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
            v.sort();
            v
        };
        assert_eq!(names("postgres"), names("sqlite"));
    }
}
