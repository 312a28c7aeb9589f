//! Configuration: every knob in one place.
//!
//! Precedence is defaults < `mcp-bridge.toml` < `MCP_BRIDGE_*` environment <
//! command-line flags. Environment and flags are merged by clap (each flag
//! names its variable), so this module only layers the file over the
//! defaults and the [`Overrides`] over the file. Every limit lives in
//! [`Limits`], so a reader finds all of them in one struct.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::limits::RateLimit;
use crate::redact;
use crate::store::url::{self, Backend, PgUrl};

/// What to do instead when a SQLite-only command meets PostgreSQL.
fn sqlite_only_hint(what: &str) -> &'static str {
    if what.contains("backup") || what.contains("restore") {
        "use pg_dump and pg_restore (docs/deployment.md, \"Backups\"), which copy a live database consistently"
    } else {
        "run it on one machine with a SQLite database (YOLO mode executes commands on the machine whose human approves them)"
    }
}

/// Why a configuration could not be loaded; every variant names the source
/// (file, variable or flag) and the offending key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file exists but cannot be read.
    #[error("cannot read config file {path}")]
    ReadFile {
        /// The file that failed.
        path: PathBuf,
        /// The IO failure.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown key.
    #[error("invalid config file {path}: {message}")]
    ParseFile {
        /// The file that failed.
        path: PathBuf,
        /// What the TOML parser said (it names the key and line).
        message: String,
    },
    /// A value (from the file, the environment or a flag) is malformed.
    #[error("invalid value for {key}: {reason}")]
    InvalidValue {
        /// The spelling of the setting, e.g. `rate_limit` / `MCP_BRIDGE_RATE_LIMIT`.
        key: String,
        /// What is wrong and what a valid value looks like.
        reason: String,
    },
    /// No data directory could be determined for the default database path.
    #[error("cannot determine a data directory; set MCP_BRIDGE_DB or pass --db")]
    NoDataDir,
    /// Both a SQLite file and a database URL were given as flags or variables.
    #[error(
        "both --db (MCP_BRIDGE_DB) and --database-url (MCP_BRIDGE_DATABASE_URL) are set; keep the one naming the database to use"
    )]
    TwoDatabases,
    /// The database URL names no backend this binary has.
    #[error("invalid database URL (--database-url, MCP_BRIDGE_DATABASE_URL or database_url)")]
    DatabaseUrl(#[source] url::Error),
    /// Both `MCP_BRIDGE_KEY` and a key file were given.
    #[error(
        "both MCP_BRIDGE_KEY and a key file (--key-file, MCP_BRIDGE_KEY_FILE or key_file) are set; keep one, the same on every server"
    )]
    TwoKeys,
    /// A file-only command was run against PostgreSQL.
    #[error(
        "{what} works on a SQLite database file only; with PostgreSQL, {}",
        sqlite_only_hint(what)
    )]
    SqliteOnly {
        /// The command or feature.
        what: String,
    },
}

/// Every size, count and time limit the bridge enforces.
///
/// Defaults follow the original bridge (50 KB messages, 3 h conversations,
/// 10/min 100/h 500/day sends) so its users see the same behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest message body in bytes of UTF-8, measured before redaction.
    /// Config key `max_message_bytes`, env `MCP_BRIDGE_MAX_MESSAGE_BYTES`.
    pub max_message_bytes: usize,
    /// Longest role name in characters.
    pub max_role_chars: usize,
    /// Longest status note in characters.
    pub max_note_chars: usize,
    /// Most entries in `files_involved`.
    pub max_files: usize,
    /// Longest single path in `files_involved`, in characters.
    pub max_path_chars: usize,
    /// Most messages one `check_messages` call returns; the rest stay unread
    /// for the next call, so one response never grows without bound.
    pub max_batch: usize,
    /// How long a conversation lives after creation. Key `conversation_ttl`.
    pub conversation_ttl: Duration,
    /// A participant whose last heartbeat is older than this counts as not
    /// alive. Key `heartbeat_window`.
    pub heartbeat_window: Duration,
    /// Sends per session. Key `rate_limit`, env `MCP_BRIDGE_RATE_LIMIT`.
    pub send_rate: RateLimit,
    /// Reads and heartbeats per session: generous, so a polling agent is
    /// never starved by its own sends. Key `read_rate_limit`.
    pub read_rate: RateLimit,
    /// Conversations one server process creates per minute (sliding, exact).
    /// Creating needs no token, so this is what bounds an agent that loops
    /// on `create_conversation`. Per process, not per database: each agent's
    /// client runs its own `serve`, so one agent's flood never uses up the
    /// budget of the others, and the check costs no database write. Key
    /// `max_creates_per_minute`, env `MCP_BRIDGE_MAX_CREATES_PER_MINUTE`,
    /// flag `--max-creates-per-minute`.
    pub max_creates_per_minute: u32,
    /// Repeats of one refusal within this window after the first are
    /// counted, not audited one by one; the count becomes one audit entry
    /// when the window closes. Not configurable: it bounds the trail's growth.
    pub refusal_window: Duration,
    /// Largest file `import` reads. Key `max_import_bytes`, env
    /// `MCP_BRIDGE_MAX_IMPORT_BYTES`, flag `import --max-import-bytes`.
    pub max_import_bytes: u64,
    /// Most messages one `import` accepts. Key `max_import_messages`, env
    /// `MCP_BRIDGE_MAX_IMPORT_MESSAGES`, flag `import --max-import-messages`.
    pub max_import_messages: usize,
    /// Most messages one conversation stores; `None` is no quota. Rate
    /// limits bound a session per hour; this bounds what a conversation
    /// holds whatever its lifetime and however many seats share it. Key
    /// `max_messages_per_conversation`, env
    /// `MCP_BRIDGE_MAX_MESSAGES_PER_CONVERSATION`, a number or `off`.
    pub max_messages_per_conversation: Option<u64>,
    /// Most bytes of (redacted) bodies and paths one conversation stores;
    /// `None` is no quota. Key `max_bytes_per_conversation`, env
    /// `MCP_BRIDGE_MAX_BYTES_PER_CONVERSATION`, a number or `off`.
    pub max_bytes_per_conversation: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 51_200,
            max_role_chars: 64,
            max_note_chars: 1024,
            max_files: 50,
            max_path_chars: 1024,
            max_batch: 100,
            conversation_ttl: Duration::from_secs(3 * 3600),
            heartbeat_window: Duration::from_secs(300),
            send_rate: RateLimit::parse(DEFAULT_SEND_RATE).expect("default send rate parses"),
            read_rate: RateLimit::parse(DEFAULT_READ_RATE).expect("default read rate parses"),
            max_creates_per_minute: DEFAULT_MAX_CREATES_PER_MINUTE,
            refusal_window: Duration::from_secs(60),
            max_import_bytes: 64 * 1024 * 1024,
            max_import_messages: 10_000,
            max_messages_per_conversation: Some(DEFAULT_MAX_MESSAGES_PER_CONVERSATION),
            max_bytes_per_conversation: Some(DEFAULT_MAX_BYTES_PER_CONVERSATION),
        }
    }
}

/// The original bridge's send limit; `MCP_BRIDGE_RATE_LIMIT` overrides it.
pub const DEFAULT_SEND_RATE: &str = "10/min,100/h,500/day";
/// Two reads a second sustained, with room for bursts; `MCP_BRIDGE_READ_RATE_LIMIT`.
pub const DEFAULT_READ_RATE: &str = "120/min,5000/h";
/// Five a second sustained: far above what an agent opening conversations
/// for real needs, far below the ~1,600/s a loop manages unchecked.
pub const DEFAULT_MAX_CREATES_PER_MINUTE: u32 = 300;

/// Messages per conversation: 16 seats at the default send rate's daily
/// 500 could not reach it in a conversation's default 3 hours.
pub const DEFAULT_MAX_MESSAGES_PER_CONVERSATION: u64 = 10_000;
/// Stored bytes per conversation: 64 MiB, about 1,300 messages of the
/// largest size.
pub const DEFAULT_MAX_BYTES_PER_CONVERSATION: u64 = 64 * 1024 * 1024;

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

/// The resolved configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The database: a SQLite file or a PostgreSQL URL.
    pub database: Database,
    /// Where the token-hashing key comes from.
    pub key: KeySource,
    /// Every limit.
    pub limits: Limits,
    /// Custom redaction rules and allow-list.
    pub redaction: redact::Settings,
    /// Command execution; `None` unless the human opted in at start.
    pub yolo: Option<Yolo>,
}

/// YOLO mode settings. Present only when the human opted in with
/// `MCP_BRIDGE_YOLO=1` (or `[yolo] enabled = true`) when the server started:
/// the first of the four stages that guard execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Yolo {
    /// Commands run only inside this directory (canonical, absolute).
    /// `MCP_BRIDGE_YOLO_WORKSPACE`, default: the server's working directory.
    pub workspace: PathBuf,
    /// Show what would run without running it. `MCP_BRIDGE_YOLO_DRY_RUN=1`.
    pub dry_run: bool,
    /// Wall-clock limit of one execution. `MCP_BRIDGE_YOLO_TIMEOUT`, default 30 s.
    pub timeout: Duration,
    /// How long an approval stays usable: 5 minutes, not configurable, so a
    /// forgotten approval cannot be used hours later.
    pub approval_ttl: Duration,
    /// The bridge's own state (database and key file): never readable from the
    /// sandbox, and never named by an approved command. Filled from `db_path`.
    pub state_files: Vec<PathBuf>,
}

/// The shape of `mcp-bridge.toml`. Unknown keys are refused so a typo
/// (`rate_limt`) is an error, not a silently ignored setting.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    db: Option<PathBuf>,
    database_url: Option<String>,
    key_file: Option<PathBuf>,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    redaction: redact::Settings,
    #[serde(default)]
    yolo: FileYolo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileYolo {
    #[serde(default)]
    enabled: bool,
    workspace: Option<PathBuf>,
    #[serde(default)]
    dry_run: bool,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_message_bytes: Option<usize>,
    max_batch: Option<usize>,
    conversation_ttl: Option<String>,
    heartbeat_window: Option<String>,
    rate_limit: Option<String>,
    read_rate_limit: Option<String>,
    max_creates_per_minute: Option<u32>,
    max_import_bytes: Option<u64>,
    max_import_messages: Option<usize>,
    max_messages_per_conversation: Option<QuotaSetting>,
    max_bytes_per_conversation: Option<QuotaSetting>,
}

/// A quota in the config file: a number, or the string `"off"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum QuotaSetting {
    Count(u64),
    Text(String),
}

impl QuotaSetting {
    fn as_text(&self) -> String {
        match self {
            QuotaSetting::Count(n) => n.to_string(),
            QuotaSetting::Text(t) => t.clone(),
        }
    }
}

/// Parses a quota: a positive whole number, or `off` for none.
pub fn parse_quota(key: &str, text: &str) -> Result<Option<u64>, Error> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match t.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(Error::InvalidValue {
            key: key.into(),
            reason: "must be a whole number of at least 1, or \"off\"".into(),
        }),
    }
}

/// Values from the environment or flags (clap merges the two), each
/// overriding the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--db` / `MCP_BRIDGE_DB`.
    pub db: Option<PathBuf>,
    /// `--config` / `MCP_BRIDGE_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// `--database-url` / `MCP_BRIDGE_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `MCP_BRIDGE_KEY` (hex).
    pub key_hex: Option<String>,
    /// `--key-file` / `MCP_BRIDGE_KEY_FILE`.
    pub key_file: Option<PathBuf>,
    /// `--rate-limit` / `MCP_BRIDGE_RATE_LIMIT`.
    pub rate_limit: Option<String>,
    /// `--read-rate-limit` / `MCP_BRIDGE_READ_RATE_LIMIT`.
    pub read_rate_limit: Option<String>,
    /// `--conversation-ttl` / `MCP_BRIDGE_CONVERSATION_TTL`.
    pub conversation_ttl: Option<String>,
    /// `--heartbeat-window` / `MCP_BRIDGE_HEARTBEAT_WINDOW`.
    pub heartbeat_window: Option<String>,
    /// `--max-message-bytes` / `MCP_BRIDGE_MAX_MESSAGE_BYTES`.
    pub max_message_bytes: Option<usize>,
    /// `--max-creates-per-minute` / `MCP_BRIDGE_MAX_CREATES_PER_MINUTE`.
    pub max_creates_per_minute: Option<u32>,
    /// `import --max-import-bytes` / `MCP_BRIDGE_MAX_IMPORT_BYTES`.
    pub max_import_bytes: Option<u64>,
    /// `import --max-import-messages` / `MCP_BRIDGE_MAX_IMPORT_MESSAGES`.
    pub max_import_messages: Option<usize>,
    /// `--max-messages-per-conversation` / `MCP_BRIDGE_MAX_MESSAGES_PER_CONVERSATION`.
    pub max_messages_per_conversation: Option<String>,
    /// `--max-bytes-per-conversation` / `MCP_BRIDGE_MAX_BYTES_PER_CONVERSATION`.
    pub max_bytes_per_conversation: Option<String>,
    /// `MCP_BRIDGE_YOLO`: only the environment (or the file) can opt in.
    pub yolo: Option<String>,
    /// `MCP_BRIDGE_YOLO_WORKSPACE`.
    pub yolo_workspace: Option<PathBuf>,
    /// `MCP_BRIDGE_YOLO_DRY_RUN`.
    pub yolo_dry_run: Option<String>,
    /// `MCP_BRIDGE_YOLO_TIMEOUT`.
    pub yolo_timeout: Option<String>,
}

impl Overrides {
    /// Reads the `MCP_BRIDGE_YOLO*` variables, which deliberately have no flags:
    /// opting in to execution is an environment decision of the human who
    /// configures the client, not an argument an agent could add.
    pub fn with_yolo_env(mut self) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        self.yolo = var("MCP_BRIDGE_YOLO");
        self.yolo_workspace = var("MCP_BRIDGE_YOLO_WORKSPACE").map(PathBuf::from);
        self.yolo_dry_run = var("MCP_BRIDGE_YOLO_DRY_RUN");
        self.yolo_timeout = var("MCP_BRIDGE_YOLO_TIMEOUT");
        self
    }
}

fn flag(key: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::InvalidValue {
            key: key.to_owned(),
            reason: "expected 1 or 0 (or true/false)".into(),
        }),
    }
}

fn load_yolo(file: &FileYolo, o: &Overrides) -> Result<Option<Yolo>, Error> {
    let enabled = match &o.yolo {
        Some(v) => flag("MCP_BRIDGE_YOLO", v)?,
        None => file.enabled,
    };
    if !enabled {
        return Ok(None);
    }
    let workspace = match o.yolo_workspace.clone().or(file.workspace.clone()) {
        Some(p) => p,
        None => std::env::current_dir().map_err(|e| Error::InvalidValue {
            key: "MCP_BRIDGE_YOLO_WORKSPACE".into(),
            reason: format!("no workspace given and the current directory is unusable: {e}"),
        })?,
    };
    let workspace = workspace.canonicalize().map_err(|e| Error::InvalidValue {
        key: "MCP_BRIDGE_YOLO_WORKSPACE".into(),
        reason: format!("{}: {e}", workspace.display()),
    })?;
    if workspace.parent().is_none() {
        return Err(Error::InvalidValue {
            key: "MCP_BRIDGE_YOLO_WORKSPACE".into(),
            reason: "the workspace cannot be the root directory".into(),
        });
    }
    let dry_run = match &o.yolo_dry_run {
        Some(v) => flag("MCP_BRIDGE_YOLO_DRY_RUN", v)?,
        None => file.dry_run,
    };
    let timeout = match pick(&o.yolo_timeout, &file.timeout) {
        Some(v) => parse_duration("MCP_BRIDGE_YOLO_TIMEOUT", v)?,
        None => Duration::from_secs(30),
    };
    Ok(Some(Yolo {
        workspace,
        dry_run,
        timeout,
        approval_ttl: Duration::from_secs(300),
        state_files: Vec::new(),
    }))
}

impl Config {
    /// Resolves the configuration: defaults, then the config file (the one
    /// named, or `$XDG_CONFIG_HOME/mcp-bridge/mcp-bridge.toml` when it
    /// exists), then the overrides.
    pub fn load(overrides: &Overrides) -> Result<Self, Error> {
        let file = match &overrides.config_file {
            Some(path) => read_file_config(path)?,
            None => match default_config_file().filter(|p| p.is_file()) {
                Some(path) => read_file_config(&path)?,
                None => FileConfig::default(),
            },
        };

        let mut limits = Limits::default();
        let fl = &file.limits;
        if let Some(v) = overrides.max_message_bytes.or(fl.max_message_bytes) {
            if v == 0 || v > 16 * 1024 * 1024 {
                return Err(Error::InvalidValue {
                    key: "max_message_bytes".into(),
                    reason: "must be between 1 and 16777216".into(),
                });
            }
            limits.max_message_bytes = v;
        }
        if let Some(v) = fl.max_batch {
            if v == 0 {
                return Err(Error::InvalidValue {
                    key: "max_batch".into(),
                    reason: "must be at least 1".into(),
                });
            }
            limits.max_batch = v;
        }
        if let Some(v) = pick(&overrides.conversation_ttl, &fl.conversation_ttl) {
            limits.conversation_ttl = parse_duration("conversation_ttl", v)?;
        }
        if let Some(v) = pick(&overrides.heartbeat_window, &fl.heartbeat_window) {
            limits.heartbeat_window = parse_duration("heartbeat_window", v)?;
        }
        if let Some(v) = pick(&overrides.rate_limit, &fl.rate_limit) {
            limits.send_rate = RateLimit::parse(v).map_err(|reason| Error::InvalidValue {
                key: "rate_limit (MCP_BRIDGE_RATE_LIMIT)".into(),
                reason,
            })?;
        }
        if let Some(v) = pick(&overrides.read_rate_limit, &fl.read_rate_limit) {
            limits.read_rate = RateLimit::parse(v).map_err(|reason| Error::InvalidValue {
                key: "read_rate_limit (MCP_BRIDGE_READ_RATE_LIMIT)".into(),
                reason,
            })?;
        }

        if let Some(v) = overrides.max_creates_per_minute.or(fl.max_creates_per_minute) {
            if v == 0 {
                return Err(Error::InvalidValue {
                    key: "max_creates_per_minute (MCP_BRIDGE_MAX_CREATES_PER_MINUTE)".into(),
                    reason: "must be at least 1; set a large number to allow bursts".into(),
                });
            }
            limits.max_creates_per_minute = v;
        }
        if let Some(v) = overrides.max_import_bytes.or(fl.max_import_bytes) {
            if v == 0 {
                return Err(Error::InvalidValue {
                    key: "max_import_bytes (MCP_BRIDGE_MAX_IMPORT_BYTES)".into(),
                    reason: "must be at least 1".into(),
                });
            }
            limits.max_import_bytes = v;
        }
        if let Some(v) = overrides.max_import_messages.or(fl.max_import_messages) {
            limits.max_import_messages = v;
        }
        let file_quota = |q: &Option<QuotaSetting>| q.as_ref().map(QuotaSetting::as_text);
        if let Some(v) = overrides
            .max_messages_per_conversation
            .clone()
            .or_else(|| file_quota(&fl.max_messages_per_conversation))
        {
            limits.max_messages_per_conversation = parse_quota(
                "max_messages_per_conversation (MCP_BRIDGE_MAX_MESSAGES_PER_CONVERSATION)",
                &v,
            )?;
        }
        if let Some(v) = overrides
            .max_bytes_per_conversation
            .clone()
            .or_else(|| file_quota(&fl.max_bytes_per_conversation))
        {
            limits.max_bytes_per_conversation = parse_quota(
                "max_bytes_per_conversation (MCP_BRIDGE_MAX_BYTES_PER_CONVERSATION)",
                &v,
            )?;
        }

        let database = pick_database(overrides, &file)?;
        let key = match (&overrides.key_hex, overrides.key_file.clone().or(file.key_file)) {
            (Some(_), Some(_)) => return Err(Error::TwoKeys),
            (Some(hex), None) => KeySource::Env(hex.clone()),
            (None, Some(path)) => KeySource::Given(path),
            (None, None) => match &database {
                Database::Sqlite(path) => KeySource::File(key_path_for(path)),
                Database::Postgres(_) => KeySource::Absent,
            },
        };
        let yolo = load_yolo(&file.yolo, overrides)?.map(|mut y| {
            if let Database::Sqlite(path) = &database {
                y.state_files.push(path.clone());
            }
            if let KeySource::File(k) | KeySource::Given(k) = &key {
                y.state_files.push(k.clone());
            }
            y
        });
        Ok(Config {
            database,
            key,
            limits,
            redaction: file.redaction,
            yolo,
        })
    }
}

/// The database: `--database-url` (flag, variable or file) picks the backend
/// by its scheme; otherwise the SQLite file of `--db` or the default. A flag
/// or variable naming one kind and another naming the other is refused
/// rather than guessed between; the file's setting yields to either.
fn pick_database(overrides: &Overrides, file: &FileConfig) -> Result<Database, Error> {
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

fn pick<'a>(over: &'a Option<String>, file: &'a Option<String>) -> Option<&'a str> {
    over.as_deref().or(file.as_deref())
}

fn read_file_config(path: &Path) -> Result<FileConfig, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::ParseFile {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn default_config_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("mcp-bridge").join("mcp-bridge.toml"))
}

/// `$XDG_DATA_HOME/mcp-bridge/bridge.db` (on Linux `~/.local/share/...`).
pub fn default_db_path() -> Result<PathBuf, Error> {
    dirs::data_dir()
        .map(|d| d.join("mcp-bridge").join("bridge.db"))
        .ok_or(Error::NoDataDir)
}

/// The audit head file lives beside its database and key
/// (`bridge.db` -> `bridge.db.audit-head`): outside the database, so cutting
/// off the newest audit entries is detected (see `audit::head`).
pub fn audit_head_path_for(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".audit-head");
    db_path.with_file_name(name)
}

/// The key file lives beside its database (`bridge.db` -> `bridge.db.key`),
/// so two databases in one directory never share a key, and a copy of the
/// database alone does not carry the key.
pub fn key_path_for(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(".key");
    db_path.with_file_name(name)
}

/// Parses `90`, `90s`, `10m`, `10min`, `3h`, `1d` into a duration.
pub fn parse_duration(key: &str, text: &str) -> Result<Duration, Error> {
    let bad = || Error::InvalidValue {
        key: key.to_owned(),
        reason: format!(
            "expected a number of seconds or a number with a unit (s, m, h, d), e.g. \"90s\", \"10m\", \"3h\"; got {:?}",
            truncate_for_error(text)
        ),
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => n,
        "m" | "min" | "mins" | "minute" | "minutes" => n.checked_mul(60).ok_or_else(bad)?,
        "h" | "hour" | "hours" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" | "day" | "days" => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(Error::InvalidValue {
            key: key.to_owned(),
            reason: "must be at least one second".into(),
        });
    }
    Ok(Duration::from_secs(secs))
}

/// Config values are not secret, but a pasted value could be long; keep
/// error messages short.
fn truncate_for_error(text: &str) -> String {
    text.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_with_units() {
        for (text, secs) in [
            ("90", 90),
            ("90s", 90),
            ("10m", 600),
            ("3h", 10_800),
            ("1d", 86_400),
        ] {
            assert_eq!(
                parse_duration("k", text).unwrap(),
                Duration::from_secs(secs),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for text in ["", "h", "3x", "-1s", "0s", "1.5h"] {
            assert!(parse_duration("k", text).is_err(), "{text}");
        }
    }

    #[test]
    fn key_file_sits_beside_the_database() {
        assert_eq!(
            key_path_for(Path::new("/x/bridge.db")),
            Path::new("/x/bridge.db.key")
        );
    }

    #[test]
    fn debug_never_prints_the_env_key() {
        let k = KeySource::Env("00ff".repeat(16));
        assert!(!format!("{k:?}").contains("00ff"));
    }

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
}
