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
use std::path::Path;

use rusqlite::Connection;

use crate::store::Result;

/// One schema object: `(type, name)` -> `(table, normalised SQL)`.
type Schema = BTreeMap<(String, String), (String, String)>;

/// Reads the schema objects of the database behind `conn`.
fn read(conn: &Connection) -> Result<Schema> {
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, coalesce(sql, '') AS sql FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )?;
    let rows = stmt
        .query_map([], |r| {
            let sql: String = r.get("sql")?;
            Ok((
                (r.get("type")?, r.get("name")?),
                (r.get("tbl_name")?, normalise(&sql)),
            ))
        })?
        .collect::<rusqlite::Result<Schema>>()?;
    Ok(rows)
}

fn normalise(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The schema this binary's migrations create, from a fresh in-memory database.
fn expected() -> Result<Schema> {
    let conn = super::conn::open_in_memory()?;
    super::migrate::apply(&conn, Path::new(":memory:"))?;
    read(&conn)
}

/// The differences between the schema behind `exec` and the expected one,
/// first the ones that matter most (triggers), each a sentence naming the
/// object (Debug-quoted, so a hostile name prints escaped).
pub(super) fn differences(conn: &Connection) -> Result<Vec<String>> {
    let want = expected()?;
    let have = read(conn)?;
    let mut out = Vec::new();
    for ((kind, name), (table, sql)) in &have {
        match want.get(&(kind.clone(), name.clone())) {
            None => out.push(format!(
                "unexpected {kind} {name:?} on table {table:?}: this binary's migrations do not create it"
            )),
            // The migration record: its DDL was written by whichever
            // migrator created it (the `sqlx` one in earlier builds), not by
            // our migrations, so only its presence counts (triggers and
            // indexes on it are still compared).
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
