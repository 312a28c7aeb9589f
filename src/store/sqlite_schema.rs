//! The schema a database must have: exactly what this binary's migrations
//! create, nothing more, nothing less.
//!
//! A database is only as trustworthy as its schema: a trigger planted on
//! `audit` can silently drop every insert (the chain of what is left still
//! verifies), a dropped guard trigger lets rows be edited, a view can stand
//! in for a table. So `restore` and `audit verify` compare every table,
//! index, trigger and view in `sqlite_master` with the schema a fresh
//! in-memory database gets from the same embedded migrations, and name the
//! first difference. SQL text is compared with runs of whitespace collapsed,
//! which is the only way two copies of one statement can legitimately differ.

use std::collections::BTreeMap;
use std::str::FromStr;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::Result;
use super::sqlite::MIGRATOR;

/// One schema object: `(type, name)` -> `(table, normalised SQL)`.
type Schema = BTreeMap<(String, String), (String, String)>;

/// Reads the schema objects of the database behind `exec`.
async fn read<'e, E>(exec: E) -> Result<Schema>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let rows = sqlx::query(
        "SELECT type, name, tbl_name, coalesce(sql, '') AS sql FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .fetch_all(exec)
    .await?;
    rows.iter()
        .map(|r| {
            let sql: String = r.try_get("sql")?;
            Ok((
                (r.try_get("type")?, r.try_get("name")?),
                (r.try_get("tbl_name")?, normalise(&sql)),
            ))
        })
        .collect()
}

fn normalise(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The schema this binary's migrations create, from a fresh in-memory database.
async fn expected() -> Result<Schema> {
    let opts = SqliteConnectOptions::from_str("sqlite::memory:")?;
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await?;
    let result = async {
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| super::Error::Internal(sqlx::Error::Migrate(Box::new(e))))?;
        read(&pool).await
    }
    .await;
    pool.close().await;
    result
}

/// The differences between the schema behind `exec` and the expected one,
/// first the ones that matter most (triggers), each a sentence naming the
/// object (Debug-quoted, so a hostile name prints escaped).
pub(super) async fn differences<'e, E>(exec: E) -> Result<Vec<String>>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let want = expected().await?;
    let have = read(exec).await?;
    let mut out = Vec::new();
    for ((kind, name), (table, sql)) in &have {
        match want.get(&(kind.clone(), name.clone())) {
            None => out.push(format!(
                "unexpected {kind} {name:?} on table {table:?}: this binary's migrations do not create it"
            )),
            // sqlx's own bookkeeping table: its DDL belongs to the sqlx
            // version, not to our migrations, so a database made by an
            // older build must not fail on it. Only its presence counts
            // (triggers and indexes on it are still compared).
            Some(_) if kind == "table" && name == "_sqlx_migrations" => {}
            Some((t, s)) if t != table || s != sql => out.push(format!(
                "{kind} {name:?} differs from the one this binary's migrations create"
            )),
            Some(_) => {}
        }
    }
    for (kind, name) in want.keys() {
        if !have.contains_key(&(kind.clone(), name.clone())) {
            out.push(format!("{kind} {name:?} is missing"));
        }
    }
    // Triggers first: they decide what the audit trail records.
    out.sort_by_key(|d| !d.contains("trigger"));
    Ok(out)
}
