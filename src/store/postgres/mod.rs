//! The PostgreSQL backend, for a team whose servers run on several machines
//! against one database.
//!
//! # The guarantees of `BEGIN IMMEDIATE`, across servers, without its queue
//!
//! Every write transaction takes the write lock ([`WRITE_LOCK`], a
//! transaction-scoped advisory lock) right after `BEGIN`, in the same round
//! trip, and holds it until `COMMIT` or `ROLLBACK`; how depends on its kind.
//!
//! **Exclusive** ([`Store::begin_write`]: the overseer's operations,
//! creating a conversation, YOLO, anything rare) holds it exclusively.
//! Such a transaction runs alone among all writers of all servers, exactly
//! as SQLite's `BEGIN IMMEDIATE` makes every process's writers do, and the
//! same reasoning carries over unchanged.
//!
//! **Concurrent** ([`Store::begin_concurrent_write`]: the agents' tool
//! calls, which are nearly all the traffic) shares it with others of its
//! kind, so an exclusive one still waits for them all and they for it, and
//! takes finer locks for what must be serialised, always in this order
//! (the order is what keeps them from deadlocking):
//!
//! 1. its conversation's row (`FOR UPDATE`), when it adds a message: the
//!    conversation's seqs are handed out and committed in one order, so a
//!    reader never sees seq 11 before a seq 10 that commits later (delivery
//!    in order, cursors that never skip), and its quotas count exactly;
//! 2. its rate key (a two-key advisory lock), before counting the key's
//!    events: nobody else counts or records that key until it commits, so
//!    the limit is exact across servers;
//! 3. the rows it writes or delivers: `take_unread`'s `UPDATE ... WHERE
//!    delivered_at IS NULL` re-checks each row after waiting for its lock
//!    (PostgreSQL re-evaluates the condition on the newest version), so a
//!    message is handed to one caller only;
//! 4. last, the audit chain ([`CHAIN_LOCK`]), when it reads the chain's
//!    tail; after that it only inserts audit entries and commits. The
//!    chain is appended in one total order (the head it reads cannot move
//!    before it commits, so two servers never chain onto the same entry).
//!
//! So what runs one at a time is two round trips per call (the chain's
//! tail; the entry with `COMMIT`), not the whole call. Statements run at
//! `READ COMMITTED` and each takes its snapshot when it starts, after the
//! lock before it was granted: it sees every commit of the lock's previous
//! holder (a transaction is visible before its locks are released).
//! Readers (`begin_read`) take no lock: a `REPEATABLE READ READ ONLY`
//! snapshot.
//!
//! Why locks and not `SERIALIZABLE` with retries: every state change appends
//! to the one audit chain, so under `SERIALIZABLE` any two writers conflict on
//! the chain's head anyway and one of them must retry; the locks reach the
//! same order without the wasted work and without a retry loop in every
//! caller.
//!
//! # Connections
//!
//! Plain TCP or a unix socket: no TLS connector is built in yet, so a URL
//! with `sslmode=require` is refused at start with a sentence saying so.
//!
//! A `deadpool-postgres` pool per server. A transaction owns one pooled
//! connection from `BEGIN` to the end; one dropped without commit gives its
//! connection to a task that runs `ROLLBACK` and only then returns it to the
//! pool, or closes it (the server rolls back) when that cannot be done, so a
//! connection is never reused in the middle of a transaction. Every committing
//! write transaction also sends `NOTIFY` (see `postgres/listen.rs`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::wake::{Changes, WakeSource};
use super::{Error, Result, Store};
use crate::audit::HeadFile;
use crate::seal::Keyring;

mod admin;
mod agents;
mod listen;
mod migrate;
mod reseal;
mod rows;
mod schema;
mod teams;
mod tx;
mod yolo;

pub use tx::{CHAIN_LOCK, PgTx};

/// The advisory lock every write transaction holds (ASCII "mcpbwrit"),
/// exclusively or shared (see the module's doc). Advisory locks are per
/// database, so bridges on other databases of the cluster never wait.
pub const WRITE_LOCK: i64 = 0x6d63_7062_7772_6974;

/// Connections per server. Writers queue on one lock anyway; this many lets
/// readers and long polls run beside them. A PostgreSQL server's default
/// `max_connections` (100) fits several servers at this size.
const POOL_SIZE: usize = 16;

/// How long a transaction waits for a free pooled connection or a new one.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Whether [`PgStore::open`] may create the schema in an empty database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `serve`: create the schema on first use (the database itself must exist).
    CreateIfMissing,
    /// Overseer commands: a database without the bridge's schema is an error.
    MustExist,
}

/// One PostgreSQL database, through this server's pool of connections to it.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The connection settings, for the listening connection (holds the password).
    config: Arc<tokio_postgres::Config>,
    /// `host:port/dbname`, for errors and logs: never the user or password.
    target: Arc<str>,
    /// Moved forward after every commit that appended to the audit trail.
    head: Option<Arc<HeadFile>>,
    /// The server's one wake source, fed by a `LISTEN` connection started
    /// on the first [`Store::changes`] call.
    wake: Arc<OnceLock<listen::Wake>>,
    /// Shared with every transaction: seals and opens free-text fields.
    keys: Arc<Keyring>,
}

/// Never prints the connection settings: they hold the password.
impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`,
    /// any form `tokio-postgres` accepts) and brings its schema up to date;
    /// a database already current is only checked.
    pub async fn open(url: &str, mode: OpenMode) -> Result<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| Error::Open {
            path: "the PostgreSQL URL".into(),
            reason: format!("{e}"),
        })?;
        // No TLS connector is built in yet: say so at once rather than fail
        // every connection with a driver message.
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(Error::Open {
                path: describe(&config).into(),
                reason: "sslmode=require: this build connects to PostgreSQL without TLS; use a local \
                         socket or a trusted network (sslmode=disable or prefer), or a TLS tunnel"
                    .into(),
            });
        }
        if config.get_application_name().is_none() {
            config.application_name("mcp-bridge");
        }
        let target: Arc<str> = describe(&config).into();
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // A pooled connection is only ever returned between
                // transactions (see `tx`), so the cheap check suffices.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| Error::Open {
                path: target.to_string().into(),
                reason: e.to_string(),
            })?;
        let store = Self {
            pool,
            config: Arc::new(config),
            target,
            head: None,
            wake: Arc::new(OnceLock::new()),
            keys: Arc::default(),
        };
        let mut conn = store.connection().await.map_err(|e| store.open_error(e))?;
        migrate::run(&mut conn, mode, &store.target).await?;
        Ok(store)
    }

    /// This store sealing with `key`'s keys (what [`crate::bridge::Bridge::new`]
    /// does; for code that uses a store without a bridge).
    pub fn with_key(self, key: &crate::auth::ServerKey) -> Self {
        self.keys.install(key);
        self
    }

    /// Keeps the audit head in `head` from now on: every commit that
    /// appends to the trail moves it forward (see [`crate::audit::head`]).
    pub fn with_audit_head(mut self, head: HeadFile) -> Self {
        self.head = Some(Arc::new(head));
        self
    }

    /// `host:port/dbname` of the database (no user, no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes the pool: idle connections close now, busy ones when their
    /// transaction ends; later calls fail with [`Error::Closed`].
    pub fn close(&self) {
        self.pool.close();
    }

    /// A pooled connection outside any transaction.
    async fn connection(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// A first connection that failed: say where, and why, once.
    fn open_error(&self, e: Error) -> Error {
        match e {
            Error::Internal(source) => Error::Open {
                path: self.target.to_string().into(),
                reason: source.to_string(),
            },
            other => other,
        }
    }

    /// A transaction on a pooled connection, opened by `begin` (a batch of
    /// simple statements) together with its first statement.
    async fn begin(&self, begin: &'static str, mode: tx::Mode) -> Result<PgTx> {
        let conn = self.connection().await?;
        // `begin` is sent with the first statement; if it fails half-way
        // (the lock timed out after BEGIN), that statement's error is the
        // transaction's, and dropping it rolls back.
        Ok(PgTx::new(
            conn,
            begin,
            mode,
            tx::HeadSink::new(&self.head),
            self.keys.clone(),
        ))
    }
}

/// `BEGIN` of a write transaction: the write lock, in the same round trip.
/// A writer waits for it (and any row lock) at most 10 s (`lock_timeout`,
/// in milliseconds), then fails with [`Error::Busy`]: the same as SQLite's
/// busy timeout. Literal, so it is one static
/// simple query; a test checks it against the constants.
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = 10000; \
     SELECT pg_advisory_xact_lock(7882267341041592692)";

/// `BEGIN` of a concurrent write transaction: the write lock, shared.
const BEGIN_CONCURRENT: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = 10000; \
     SELECT pg_advisory_xact_lock_shared(7882267341041592692)";

/// `BEGIN` of a read transaction: one consistent snapshot, no writes.
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

impl Store for PgStore {
    async fn agent_by_credential_now(
        &self,
        hash: &crate::auth::TokenHash,
    ) -> Result<Option<super::agents::Agent>> {
        PgStore::agent_by_credential_now(self, hash).await
    }

    type Tx = PgTx;

    async fn begin_write(&self) -> Result<PgTx> {
        self.begin(BEGIN_WRITE, tx::Mode::Exclusive).await
    }

    async fn begin_concurrent_write(&self) -> Result<PgTx> {
        self.begin(BEGIN_CONCURRENT, tx::Mode::Concurrent).await
    }

    async fn begin_read(&self) -> Result<PgTx> {
        self.begin(BEGIN_READ, tx::Mode::Read).await
    }

    fn keyring(&self) -> &Keyring {
        &self.keys
    }

    fn audit_head_file(&self) -> Option<&HeadFile> {
        self.head.as_deref()
    }

    fn changes(&self) -> Changes {
        let wake = self
            .wake
            .get_or_init(|| listen::Wake::start(Arc::clone(&self.config), WakeSource::new()));
        wake.subscribe()
    }

    fn pool_status(&self) -> Option<(usize, usize)> {
        let s = self.pool.status();
        Some((s.size.saturating_sub(s.available), s.max_size))
    }
}

/// `host:port/dbname` from the settings; never the user or the password.
/// `postgres://host:port/dbname`, never the user or password.
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default database)");
    format!("postgres://{host}:{port}/{db}")
}

fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    use deadpool_postgres::PoolError;
    match e {
        // Every connection busy for the whole wait: the database is busy.
        PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => Error::Busy,
        PoolError::Closed => Error::Closed,
        PoolError::Backend(e) => Error::from(e),
        other => Error::Internal(Box::new(other)),
    }
}

/// The one place `tokio_postgres::Error` becomes a store error.
impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => Error::Conflict,
            Some(c)
                if *c == SqlState::LOCK_NOT_AVAILABLE
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::TOO_MANY_CONNECTIONS =>
            {
                Error::Busy
            }
            _ => Error::Internal(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_begin_batch_names_the_write_lock_and_timeout() {
        assert!(BEGIN_WRITE.contains(&format!("pg_advisory_xact_lock({WRITE_LOCK})")));
        assert!(BEGIN_WRITE.contains("SET LOCAL lock_timeout = 10000;"));
        assert!(BEGIN_CONCURRENT.contains(&format!("pg_advisory_xact_lock_shared({WRITE_LOCK})")));
        assert!(BEGIN_CONCURRENT.contains("SET LOCAL lock_timeout = 10000;"));
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_without_echoing_it() {
        for url in [
            "postgres://alice:s3cret@db.example:notaport/bridge",
            "postgres://alice:s3cret@db.example/bridge?sslmode=bogus",
            "postgres://alice:s3cret@db.example/bridge?sslmode=require",
        ] {
            let err = PgStore::open(url, OpenMode::CreateIfMissing).await.unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Open { .. }), "{text}");
            assert!(!text.contains("s3cret") && !text.contains("alice"), "{text}");
        }
    }

    #[test]
    fn the_target_never_shows_user_or_password() {
        let config: tokio_postgres::Config =
            "postgres://alice:s3cret@db.example:6432/bridge".parse().unwrap();
        let shown = describe(&config);
        assert_eq!(shown, "postgres://db.example:6432/bridge");
    }
}
