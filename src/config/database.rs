//! Which database a process works on and where its server key comes
//! from: the two settings that differ between one machine (a SQLite file
//! with its key beside it) and a team (PostgreSQL with a shared key).

use std::fmt;
use std::path::{Path, PathBuf};

use super::{Error, FileConfig, Overrides, default_db_path};
use crate::store::url::{self, Backend, PgUrl};

/// What to do instead when a SQLite-only command meets PostgreSQL.
pub(super) fn sqlite_only_hint(what: &str) -> &'static str {
    if what.contains("backup") || what.contains("restore") {
        "use pg_dump and pg_restore (docs/deployment.md, \"Backups\"), which copy a live database consistently"
    } else {
        "run it on one machine with a SQLite database (YOLO mode executes commands on the machine whose human approves them)"
    }
}

/// Where the server key comes from. The key never appears in `Debug` output.
#[derive(Clone)]
pub enum KeySource {
    /// A 0600 file beside the database, created on first use.
    File(PathBuf),
    /// `MCP_BRIDGE_KEY`: 64 hex characters, for deployments that keep secrets
    /// in the environment (a secrets manager, a systemd credential).
    Env(String),
    /// `--key-file` / `MCP_BRIDGE_KEY_FILE`: a key file the operator made
    /// and shares between servers; never created by the bridge, because a
    /// server that made its own would silently disagree with the others.
    Given(PathBuf),
    /// PostgreSQL without `MCP_BRIDGE_KEY` or `--key-file`: there is no
    /// database file for a key to sit beside, so loading it fails with how
    /// to create and share one.
    Absent,
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(path) => f.debug_tuple("File").field(path).finish(),
            KeySource::Env(_) => f.write_str("Env([redacted])"),
            KeySource::Given(path) => f.debug_tuple("Given").field(path).finish(),
            KeySource::Absent => f.write_str("Absent"),
        }
    }
}

/// The database a process works on: the one place that says which backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (the default), shared by every process on one machine.
    Sqlite(PathBuf),
    /// A PostgreSQL database, shared by servers on several machines.
    Postgres(PgUrl),
}

impl Database {
    /// The SQLite file, or an error naming `what` for the commands that
    /// work on a file only (backup, restore, YOLO's approval passphrase).
    pub fn sqlite_path(&self, what: &str) -> Result<&Path, Error> {
        match self {
            Database::Sqlite(path) => Ok(path),
            Database::Postgres(_) => Err(Error::SqliteOnly {
                what: what.to_owned(),
            }),
        }
    }

    /// Where the data lives, for logs and the overseer's screens: the file,
    /// or `host:port/dbname` (never the user or password).
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => url.target(),
        }
    }
}

/// The database: `--database-url` (flag, variable or file) picks the backend
/// by its scheme; otherwise the SQLite file of `--db` or the default. A flag
/// or variable naming one kind and another naming the other is refused
/// rather than guessed between; the file's setting yields to either.
pub(super) fn pick_database(overrides: &Overrides, file: &FileConfig) -> Result<Database, Error> {
    if overrides.database_url.is_some() && overrides.db.is_some() {
        return Err(Error::TwoDatabases);
    }
    let url = match (&overrides.database_url, &overrides.db) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(_)) => None,
        (None, None) => file.database_url.clone(),
    };
    if let Some(url) = url {
        return match url::parse(&url).map_err(Error::DatabaseUrl)? {
            Backend::Sqlite(path) => Ok(Database::Sqlite(path)),
            Backend::Postgres(url) => Ok(Database::Postgres(url)),
        };
    }
    match overrides.db.clone().or_else(|| file.db.clone()) {
        Some(p) => Ok(Database::Sqlite(p)),
        None => Ok(Database::Sqlite(default_db_path()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    fn load_with(o: Overrides) -> Result<Config, Error> {
        // A config file that exists and is empty: the user's own never leaks in.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty.toml");
        std::fs::write(&file, "").unwrap();
        Config::load(&Overrides {
            config_file: Some(file),
            ..o
        })
    }

    #[test]
    fn the_database_url_scheme_picks_the_backend_and_its_key() {
        let c = load_with(Overrides {
            database_url: Some("postgres://u:hunter2@db.example/bridge".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert!(matches!(&c.database, Database::Postgres(_)));
        assert!(
            matches!(c.key, KeySource::Absent),
            "no key beside a PostgreSQL database"
        );
        assert_eq!(c.database.describe(), "postgres://db.example:5432/bridge");
        assert!(!format!("{c:?}").contains("hunter2"));

        let c = load_with(Overrides {
            database_url: Some("postgresql://db/bridge".into()),
            key_file: Some("/etc/mcp-bridge/key".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert!(matches!(&c.key, KeySource::Given(p) if p == Path::new("/etc/mcp-bridge/key")));

        let c = load_with(Overrides {
            database_url: Some("sqlite:///tmp/b.db".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.database, Database::Sqlite("/tmp/b.db".into()));
        assert!(matches!(&c.key, KeySource::File(p) if p == Path::new("/tmp/b.db.key")));
    }

    #[test]
    fn conflicting_database_or_key_settings_are_refused() {
        let both = load_with(Overrides {
            db: Some("/tmp/b.db".into()),
            database_url: Some("postgres://db/bridge".into()),
            ..Overrides::default()
        });
        assert!(matches!(both, Err(Error::TwoDatabases)));
        let two_keys = load_with(Overrides {
            database_url: Some("postgres://db/bridge".into()),
            key_hex: Some("00".repeat(32)),
            key_file: Some("/k".into()),
            ..Overrides::default()
        });
        assert!(matches!(two_keys, Err(Error::TwoKeys)));
        let err = load_with(Overrides {
            database_url: Some("mysql://root:hunter2@db/x".into()),
            ..Overrides::default()
        })
        .unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            text.contains("postgres://") && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[test]
    fn file_only_commands_name_the_postgres_alternative() {
        let pg = Database::Postgres(match url::parse("postgres://db/b").unwrap() {
            Backend::Postgres(u) => u,
            Backend::Sqlite(_) => unreachable!(),
        });
        let text = pg.sqlite_path("backup").unwrap_err().to_string();
        assert!(text.contains("pg_dump"), "{text}");
        assert!(Database::Sqlite("/x.db".into()).sqlite_path("backup").is_ok());
    }

    #[test]
    fn the_config_file_names_the_database_url_and_key_file_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bridge.toml");
        std::fs::write(
            &file,
            "database_url = \"postgres://db.example/bridge\"\nkey_file = \"/etc/mcp-bridge/key\"\n",
        )
        .unwrap();
        let c = Config::load(&Overrides {
            config_file: Some(file.clone()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.database.describe(), "postgres://db.example:5432/bridge");
        assert!(matches!(&c.key, KeySource::Given(p) if p == Path::new("/etc/mcp-bridge/key")));
        // A --db flag beats the file's URL (flags and variables beat the file).
        let c = Config::load(&Overrides {
            config_file: Some(file),
            db: Some("/tmp/local.db".into()),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(c.database, Database::Sqlite("/tmp/local.db".into()));
    }
}
