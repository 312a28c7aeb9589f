//! Which backend a database URL names: the one place the scheme is read.
//!
//! `postgres://` and `postgresql://` pick PostgreSQL; `sqlite:` (also
//! `sqlite://`) or a plain path picks SQLite; any other scheme is an error
//! that names the valid ones. Errors never repeat the URL itself (it may
//! carry a password), only its scheme, which is checked to be plain ASCII
//! letters, digits and `+.-` before it is shown.

use std::path::PathBuf;

/// The backend a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database; pass [`PgUrl::expose`] to
    /// [`PgStore::open`](super::PgStore::open).
    Postgres(PgUrl),
}

/// A PostgreSQL connection URL. It may hold a password, so `Debug` shows
/// only that it is one.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl(String);

impl PgUrl {
    /// The URL as given, password included: only for opening the connection.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `postgres://host:port/dbname`: where the database is, for logs and
    /// screens, without the user, the password or any option.
    pub fn target(&self) -> String {
        match self.0.parse::<tokio_postgres::Config>() {
            Ok(config) => super::postgres::describe(&config),
            Err(_) => "postgres://(a URL PostgreSQL cannot parse)".to_owned(),
        }
    }
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgUrl([redacted])")
    }
}

/// Why a database URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing was given.
    #[error("the database URL is empty: give postgres://..., postgresql://..., sqlite:PATH or a file path")]
    Empty,
    /// A scheme this binary has no backend for.
    #[error(
        "the database URL scheme {scheme:?} is not supported: use postgres://, postgresql://, sqlite: or a file path"
    )]
    UnknownScheme {
        /// The scheme, before the `:` (letters, digits, `+`, `.`, `-` only).
        scheme: String,
    },
    /// `sqlite:` with no path after it.
    #[error(
        "the sqlite: URL names no file: write sqlite:PATH (for example sqlite:///var/lib/mcp-bridge/bridge.db)"
    )]
    NoSqlitePath,
}

/// Picks the backend for `url`.
pub fn parse(url: &str) -> Result<Backend, Error> {
    if url.trim().is_empty() {
        return Err(Error::Empty);
    }
    let Some(scheme) = scheme(url) else {
        return Ok(Backend::Sqlite(PathBuf::from(url)));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Ok(Backend::Postgres(PgUrl(url.to_owned()))),
        "sqlite" => {
            let rest = &url[scheme.len() + 1..];
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            // sqlx-style options (`?mode=rwc`) are not ours; the path ends there.
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(Error::NoSqlitePath);
            }
            Ok(Backend::Sqlite(PathBuf::from(path)))
        }
        _ => Err(Error::UnknownScheme {
            scheme: scheme.to_owned(),
        }),
    }
}

/// The URL's scheme (RFC 3986: a letter, then letters, digits, `+`, `.`,
/// `-`, then `:`), if it has one. A single letter is a Windows drive
/// (`C:\...`), not a scheme, so such a string stays a path.
fn scheme(url: &str) -> Option<&str> {
    let (head, _) = url.split_once(':')?;
    let mut chars = head.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        && head.len() > 1;
    valid.then_some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(p: &str) -> Result<Backend, Error> {
        Ok(Backend::Sqlite(PathBuf::from(p)))
    }

    #[test]
    fn schemes_pick_their_backend() {
        for url in [
            "postgres://u:p@host/db",
            "postgresql://host:5433/db?sslmode=disable",
            "POSTGRES://host/db",
        ] {
            assert!(
                matches!(parse(url), Ok(Backend::Postgres(u)) if u.expose() == url),
                "{url}"
            );
        }
        assert_eq!(parse("sqlite:///var/lib/b.db"), sqlite("/var/lib/b.db"));
        assert_eq!(parse("sqlite://rel/b.db?mode=rwc"), sqlite("rel/b.db"));
        assert_eq!(parse("sqlite:b.db"), sqlite("b.db"));
        assert_eq!(parse("/var/lib/b.db"), sqlite("/var/lib/b.db"));
        assert_eq!(parse("./b.db"), sqlite("./b.db"));
        assert_eq!(parse("C:\\data\\b.db"), sqlite("C:\\data\\b.db"));
        // A colon later in a path is not a scheme.
        assert_eq!(parse("dir/a:b.db"), sqlite("dir/a:b.db"));
    }

    #[test]
    fn an_unknown_scheme_names_the_valid_ones_and_not_the_url() {
        let err = parse("mysql://root:hunter2@db/bridge").unwrap_err();
        assert_eq!(
            err,
            Error::UnknownScheme {
                scheme: "mysql".into()
            }
        );
        let text = err.to_string();
        assert!(text.contains("postgres://") && text.contains("sqlite:"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn empty_and_pathless_urls_are_refused() {
        assert_eq!(parse(""), Err(Error::Empty));
        assert_eq!(parse("  "), Err(Error::Empty));
        assert_eq!(parse("sqlite:"), Err(Error::NoSqlitePath));
        assert_eq!(parse("sqlite://"), Err(Error::NoSqlitePath));
    }

    #[test]
    fn debug_hides_the_password() {
        let b = parse("postgres://u:hunter2@h/db").unwrap();
        assert!(!format!("{b:?}").contains("hunter2"));
        let Backend::Postgres(url) = b else {
            panic!("not postgres")
        };
        assert_eq!(url.target(), "postgres://h:5432/db");
    }
}
