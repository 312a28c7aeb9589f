//! The overseer's command line against hostile databases and files: the real
//! binary on a real database, tampered with through SQL the way an attacker
//! with write access to the file would. Regression tests for issue 10
//! ("restore accepts a database with a foreign schema", "hostile ids ...
//! printed raw", "import trusts the file", "an existing database directory
//! with mode 0755 is not tightened").

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use mcp_bridge::audit::HeadFile;
use mcp_bridge::auth::{ServerKey, SessionToken};
use mcp_bridge::bridge::{ActionType, Auth, Bridge, CreateRequest, Created, SendRequest, SessionId};
use mcp_bridge::clock::SystemClock;
use mcp_bridge::config::{KeySource, Limits, audit_head_path_for, key_path_for};
use mcp_bridge::limits::RateLimit;
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::SqliteStore;
use mcp_bridge::store::sqlite::OpenMode;
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let db = dir.path().join("bridge.db");
        Self { dir, db }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let home = self.dir.path().join("home");
        let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-bridge"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"));
        c
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.command(args)
            .env("MCP_BRIDGE_DB", &self.db)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A bridge as `serve` builds one: the key file beside the database and
/// the audit head file moved forward at every commit.
async fn bridge_on(db: &Path) -> Bridge<SqliteStore> {
    let key = ServerKey::load(&KeySource::File(key_path_for(db))).unwrap();
    let store = SqliteStore::open(db, OpenMode::CreateIfMissing)
        .await
        .unwrap()
        .with_audit_head(HeadFile::new(audit_head_path_for(db), &key));
    let limits = Limits {
        send_rate: RateLimit::parse("off").unwrap(),
        read_rate: RateLimit::parse("off").unwrap(),
        ..Limits::default()
    };
    Bridge::new(store, key, Redactor::builtin(), limits, Arc::new(SystemClock))
}

async fn close(b: Bridge<SqliteStore>) {
    b.store().close().await;
}

async fn create(b: &Bridge<SqliteStore>) -> Created {
    b.create_conversation(CreateRequest::pair("backend", "frontend"))
        .await
        .unwrap()
}

async fn send(b: &Bridge<SqliteStore>, c: &Created, body: &str) {
    b.send_message(SendRequest {
        auth: Auth {
            conversation_id: c.conversation_id.clone(),
            session_id: SessionId::A,
            token: SessionToken::from_presented(c.session_a_token.as_deref().unwrap()),
        }
        .into(),
        message: body.into(),
        action_type: ActionType::Info,
        files_involved: vec![],
        to: None,
        reply_to: None,
    })
    .await
    .unwrap();
}

/// Runs SQL on the file directly, as someone with write access to it would.
async fn tamper(db: &Path, statements: &[&str]) {
    let conn = rusqlite::Connection::open(db).unwrap();
    for s in statements {
        conn.execute_batch(s).unwrap();
    }
}

async fn scalar(db: &Path, sql: &str) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn raw_control(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
}

#[tokio::test]
async fn restore_refuses_a_backup_with_a_planted_trigger_that_drops_audit_inserts() {
    let env = Env::new();
    let b = bridge_on(&env.db).await;
    let c = create(&b).await;
    send(&b, &c, "before").await;
    let copy = env.path("copy.db");
    env.ok(&["backup", copy.to_str().unwrap()]);
    close(b).await;
    tamper(
        &copy,
        &["CREATE TRIGGER quiet BEFORE INSERT ON audit BEGIN SELECT RAISE(IGNORE); END"],
    )
    .await;
    let out = env.cli(&["restore", copy.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a backup with a planted trigger was restored"
    );
    let err = stderr(&out);
    assert!(err.contains("schema") && err.contains("quiet"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(env.ok(&["audit", "verify"]).starts_with("audit chain intact"));
}

#[tokio::test]
async fn restore_refuses_a_database_whose_conversations_have_no_audit_trail() {
    let env = Env::new();
    let b = bridge_on(&env.db).await;
    create(&b).await;
    close(b).await;
    // A database with the bridge's schema, conversations and an empty audit
    // table: its chain "verifies" under any key.
    let foreign = env.path("foreign.db");
    let s = SqliteStore::open(&foreign, OpenMode::CreateIfMissing)
        .await
        .unwrap();
    s.close().await;
    tamper(
        &foreign,
        &[
            "INSERT INTO conversations (id, created_at, expires_at) VALUES ('conv_00000000000000000000000000000001', 1, 9999999999999)",
        ],
    )
    .await;
    let out = env.cli(&["restore", foreign.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a database without an audit trail was restored"
    );
    assert!(stderr(&out).contains("has no audit entry"), "{}", stderr(&out));
}

#[tokio::test]
async fn audit_verify_detects_a_dropped_or_changed_guard_trigger() {
    let env = Env::new();
    let b = bridge_on(&env.db).await;
    create(&b).await;
    close(b).await;
    assert!(env.ok(&["audit", "verify"]).contains("schema matches"));
    tamper(&env.db, &["DROP TRIGGER audit_no_delete"]).await;
    let out = env.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("audit_no_delete"), "{}", stderr(&out));

    // Re-created with a body that no longer refuses anything.
    tamper(
        &env.db,
        &["CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT 1; END"],
    )
    .await;
    let out = env.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("differs"), "{}", stderr(&out));
}

#[tokio::test]
async fn audit_verify_detects_that_the_newest_entries_were_cut_off() {
    let env = Env::new();
    let b = bridge_on(&env.db).await;
    let c = create(&b).await;
    for i in 0..4 {
        send(&b, &c, &format!("m{i}")).await;
    }
    close(b).await;
    assert!(audit_head_path_for(&env.db).exists());
    assert!(env.ok(&["audit", "verify"]).contains("nothing was cut off"));
    // Cut off the two newest entries and put the guard back exactly as it
    // was: the shorter chain is still a valid chain, the schema unchanged.
    let guard = scalar(
        &env.db,
        "SELECT sql FROM sqlite_master WHERE name = 'audit_no_delete'",
    )
    .await;
    tamper(
        &env.db,
        &[
            "DROP TRIGGER audit_no_delete",
            "DELETE FROM audit WHERE seq > (SELECT max(seq) - 2 FROM audit)",
            &guard,
        ],
    )
    .await;
    let out = env.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "truncation went unnoticed");
    assert!(stderr(&out).contains("cut short"), "{}", stderr(&out));
}

#[tokio::test]
async fn audit_verify_detects_a_conversation_written_behind_the_bridge() {
    let env = Env::new();
    let b = bridge_on(&env.db).await;
    create(&b).await;
    close(b).await;
    tamper(
        &env.db,
        &["INSERT INTO conversations (id, created_at, expires_at) VALUES ('conv_00000000000000000000000000000002', 1, 9999999999999)"],
    )
    .await;
    let out = env.cli(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("conv_00000000000000000000000000000002"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn every_cli_view_escapes_control_characters_from_the_database() {
    let env = Env::new();
    let b = bridge_on(&env.db).await;
    let c = create(&b).await;
    send(&b, &c, "hi").await;
    close(b).await;
    // What an older bridge stored from a refused call, or what someone
    // with write access planted: erase-line, CSI (C1), a bidi override.
    let evil = "x\x1b[2K\r\u{9b}31m\u{202e}y";
    let id = &c.conversation_id;
    tamper(
        &env.db,
        &[
            &format!(
                "INSERT INTO audit (seq, at, actor, action, conversation_id, detail, prev_hash, hash, seal) \
                 SELECT max(seq) + 1, 1, '{evil}', 'message.send.refused', '{evil}', '{{\"code\":\"{evil}\"}}', '', '', '' FROM audit"
            ),
            &format!("UPDATE participants SET role = '{evil}' WHERE conversation_id = '{id}' AND session_id = 'b'"),
            &format!("UPDATE messages SET action_type = '{evil}', redactions = '[\"{evil}\"]', sender = 'a'"),
        ],
    )
    .await;
    for args in [
        vec!["audit"],
        vec!["audit", "--json"],
        vec!["audit", "export"],
        vec!["list"],
        vec!["list", "--json"],
        vec!["show", id],
        vec!["show", id, "--json"],
    ] {
        let out = env.ok(&args);
        assert!(
            !raw_control(&out),
            "{args:?} printed a raw control character: {out:?}"
        );
        assert!(out.contains("2K") || out.contains("\\u001b"), "{args:?}: {out}");
    }
    // JSON output stays valid JSON with the same meaning.
    let v: Value = serde_json::from_str(&env.ok(&["list", "--json"])).unwrap();
    assert_eq!(v[0]["participants"][1]["role"], evil);
    // An error quoting a hostile name is escaped too.
    let out = env.cli(&["show", "conv_\x1b[2J"]);
    assert!(!out.status.success());
    assert!(!raw_control(stderr(&out).trim_end()), "{:?}", stderr(&out));
}

#[tokio::test]
async fn audit_shows_how_many_refusals_an_entry_counts() {
    let env = Env::new();
    let b = bridge_on(&env.db).await;
    let c = create(&b).await;
    for _ in 0..30 {
        b.send_message(SendRequest {
            auth: Auth {
                conversation_id: c.conversation_id.clone(),
                session_id: SessionId::A,
                token: SessionToken::from_presented("mcpb_wrong"),
            }
            .into(),
            message: "x".into(),
            action_type: ActionType::Info,
            files_involved: vec![],
            to: None,
            reply_to: None,
        })
        .await
        .unwrap_err();
    }
    close(b).await;
    let out = env.ok(&["audit", "--action", "*.refused"]);
    assert!(out.contains("TIMES"), "{out}");
    assert!(out.contains("29 more"), "the count of repeats is shown: {out}");
    let lines = env.ok(&["audit", "--action", "*.refused", "--json"]);
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(env.ok(&["audit", "verify"]).starts_with("audit chain intact"));
}

async fn exported(env: &Env) -> (Value, PathBuf) {
    let b = bridge_on(&env.db).await;
    let c = create(&b).await;
    send(&b, &c, "plain text").await;
    close(b).await;
    let file = env.path("export.json");
    env.ok(&["export", &c.conversation_id, "-o", file.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    (v, file)
}

#[tokio::test]
async fn import_recomputes_redaction_kinds_and_clamps_a_year_9999_expiry() {
    let env = Env::new();
    let (mut v, _) = exported(&env).await;
    let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    v["messages"][0]["redacted"] = serde_json::json!([token, "\u{1b}[2J"]);
    v["messages"][0]["body"] = serde_json::json!(format!("see {token} and [REDACTED:aws_access_key]"));
    v["conversation"]["expires_at"] = serde_json::json!("9999-12-31T00:00:00Z");
    let edited = env.path("edited.json");
    std::fs::write(&edited, v.to_string()).unwrap();
    let r: Value = serde_json::from_str(&env.ok(&["import", edited.to_str().unwrap(), "--json"])).unwrap();
    let id = r["conversation_id"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(r["expires_at"].as_str().unwrap()).unwrap();
    assert!(
        expires < chrono::Utc::now() + chrono::Duration::hours(3) + chrono::Duration::minutes(1),
        "the expiry was not clamped to the lifetime: {expires}"
    );
    let shown = env.ok(&["show", id]);
    assert!(!shown.contains("ghp_") && !raw_control(&shown), "{shown}");
    let detail: Value = serde_json::from_str(&env.ok(&["show", id, "--json"])).unwrap();
    let kinds = detail["messages_after"][0]["redacted"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(kinds.iter().all(|k| {
        k.as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    }));
    assert!(kinds.contains(&Value::from("aws_access_key")), "{kinds:?}");
}

#[tokio::test]
async fn import_refuses_a_file_over_its_size_or_message_limit_and_writes_nothing() {
    let env = Env::new();
    let (_, file) = exported(&env).await;
    let before = env.ok(&["list", "--json"]);
    let f = file.to_str().unwrap();
    let out = env.cli(&["import", f, "--max-import-bytes", "100"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_import_bytes"), "{}", stderr(&out));
    let out = env
        .command(&["import", f])
        .env("MCP_BRIDGE_DB", &env.db)
        .env("MCP_BRIDGE_MAX_IMPORT_MESSAGES", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_import_messages"), "{}", stderr(&out));
    // A future time is refused, after every other check passed: still nothing written.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    v["statuses"] = serde_json::json!([{"session_id": "a", "status": "working", "note": null, "heartbeat_at": "9999-01-01T00:00:00Z"}]);
    let future = env.path("future.json");
    std::fs::write(&future, v.to_string()).unwrap();
    let out = env.cli(&["import", future.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("future"), "{}", stderr(&out));
    assert_eq!(
        env.ok(&["list", "--json"]),
        before,
        "a refused import wrote something"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_default_data_directory_is_tightened_and_a_chosen_one_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let env = Env::new();
    let data = env.path("home/.local/share/mcp-bridge");
    std::fs::create_dir_all(&data).unwrap();
    close(bridge_on(&data.join("bridge.db")).await).await;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.command(&["list"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&data), 0o700, "the default data directory stayed open");

    let shared = env.path("shared");
    std::fs::create_dir(&shared).unwrap();
    close(bridge_on(&shared.join("bridge.db")).await).await;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env
        .command(&["list"])
        .env("MCP_BRIDGE_DB", shared.join("bridge.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("chmod 700"), "{}", stderr(&out));
    assert_eq!(mode(&shared), 0o755, "a directory the user chose was changed");
}
