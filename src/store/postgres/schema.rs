//! The schema a database must have: exactly what this binary's migrations
//! create, nothing more, nothing less (the PostgreSQL side of
//! `store/sqlite/schema.rs`).
//!
//! A trigger planted on `audit`, a rule `DO INSTEAD NOTHING`, a row-level
//! policy or a disabled guard trigger would each let the trail lose or
//! change rows while the chain of what is left still verifies. So the
//! catalog of the bridge's schema (tables and columns, constraints,
//! indexes, triggers with their enabled state, rules, policies, views,
//! functions) is compared with the catalog of a scratch schema that the
//! same embedded migrations build inside a transaction which is then rolled
//! back: nothing of it ever stays. Definitions are compared with the schema
//! names taken out and runs of whitespace collapsed.

use std::collections::BTreeMap;

use deadpool_postgres::Object;

use crate::store::Result;

/// One schema object: `(kind, name)` -> normalised definition.
type Schema = BTreeMap<(String, String), String>;

/// The catalog queries; each takes the schema name as `$1` and returns
/// `(kind, name, definition)`.
const CATALOG: &[&str] = &[
    "SELECT 'table', table_name::text, table_type::text FROM information_schema.tables WHERE table_schema = $1",
    "SELECT 'column', table_name || '.' || column_name, \
        concat_ws(' ', data_type, is_nullable, column_default, is_identity, identity_generation) \
     FROM information_schema.columns WHERE table_schema = $1",
    "SELECT 'constraint', c.relname || '.' || con.conname, pg_get_constraintdef(con.oid) \
     FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1",
    "SELECT 'index', indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1",
    "SELECT 'trigger', t.tgname::text, pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text \
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT t.tgisinternal",
    "SELECT 'rule', rulename::text, definition FROM pg_rules WHERE schemaname = $1",
    "SELECT 'policy', tablename || '.' || policyname, concat_ws(' ', cmd, qual, with_check) \
     FROM pg_policies WHERE schemaname = $1",
    "SELECT 'row security', c.relname::text, c.relrowsecurity::text || ' ' || c.relforcerowsecurity::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = $1 AND c.relkind = 'r' AND (c.relrowsecurity OR c.relforcerowsecurity)",
    "SELECT 'view', viewname::text, definition FROM pg_views WHERE schemaname = $1",
    "SELECT 'function', p.proname::text, pg_get_functiondef(p.oid) \
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1",
];

/// Reads the catalog of `schema`.
async fn read(conn: &Object, schema: &str) -> Result<Schema> {
    let mut out = Schema::new();
    for query in CATALOG {
        for row in conn.query(*query, &[&schema]).await? {
            let kind: String = row.try_get(0)?;
            let name: String = row.try_get(1)?;
            let def: Option<String> = row.try_get(2)?;
            out.insert((kind, name), normalise(&def.unwrap_or_default(), schema));
        }
    }
    Ok(out)
}

fn normalise(sql: &str, schema: &str) -> String {
    let unqualified = sql
        .replace(&format!("\"{schema}\"."), "")
        .replace(&format!("{schema}."), "");
    unqualified.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The differences between the live schema and the expected one, the
/// ones that matter most (triggers, rules, policies) first, each a sentence
/// naming the object (Debug-quoted, so a hostile name prints escaped).
pub(super) async fn differences(conn: Object) -> Result<Vec<String>> {
    let scratch = format!("mcp_bridge_expected_{}", hex::encode(rand::random::<[u8; 8]>()));
    // From here to the ROLLBACK the connection is mid-transaction: on any
    // error it is closed rather than returned to the pool.
    let conn = RollbackGuard(Some(conn));
    let c = conn.get();
    c.batch_execute("BEGIN").await?;
    let live: String = c
        .query_one("SELECT current_schema()::text", &[])
        .await?
        .try_get(0)?;
    let have = read(c, &live).await?;
    c.batch_execute(&format!(
        "CREATE SCHEMA {scratch}; SET LOCAL search_path TO {scratch}"
    ))
    .await?;
    c.batch_execute(super::migrate::RECORD_TABLE).await?;
    for sql in super::migrate::all_sql() {
        c.batch_execute(sql).await?;
    }
    let want = read(c, &scratch).await?;
    c.batch_execute("ROLLBACK").await?;
    conn.release();

    let mut out = Vec::new();
    for ((kind, name), def) in &have {
        match want.get(&(kind.clone(), name.clone())) {
            None => out.push(format!(
                "unexpected {kind} {name:?}: this binary's migrations do not create it"
            )),
            Some(w) if w != def => out.push(format!(
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
    let weight = |d: &String| {
        !(d.contains("trigger") || d.contains("rule") || d.contains("policy") || d.contains("row security"))
    };
    out.sort_by_key(weight);
    Ok(out)
}

/// Holds a connection inside a transaction: closes it when dropped before
/// [`RollbackGuard::release`].
struct RollbackGuard(Option<Object>);

impl RollbackGuard {
    fn get(&self) -> &Object {
        self.0.as_ref().expect("held until released")
    }

    /// The transaction ended: the connection may go back to the pool.
    fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for RollbackGuard {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(Object::take(conn));
        }
    }
}
