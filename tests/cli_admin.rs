//! The overseer's command line, run as a person runs it: the real binary
//! against a real database file, populated through the library with the
//! same key file the binary loads. See the issue "The overseer's management
//! CLI: see, audit, clean up, rotate, export, back up".

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use mcp_bridge::auth::{ServerKey, SessionToken};
use mcp_bridge::bridge::{
    ActionType, Auth, Bridge, CreateRequest, Created, SendRequest, SessionId, StatusKind, StatusRequest,
};
use mcp_bridge::clock::{Clock, ManualClock, SystemClock};
use mcp_bridge::config::{KeySource, Limits, key_path_for};
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

    /// A bridge on the database with the key file the binary uses.
    async fn bridge(&self, clock: Arc<dyn Clock>) -> Bridge<SqliteStore> {
        bridge_on(&self.db, clock).await
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli_on(&self.db, args)
    }

    fn cli_on(&self, db: &Path, args: &[&str]) -> Output {
        let home = self.dir.path().join("home");
        Command::new(env!("CARGO_BIN_EXE_mcp-bridge"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("MCP_BRIDGE_DB", db)
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

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

async fn bridge_on(db: &Path, clock: Arc<dyn Clock>) -> Bridge<SqliteStore> {
    let store = SqliteStore::open(db, OpenMode::CreateIfMissing).await.unwrap();
    let key = ServerKey::load(&KeySource::File(key_path_for(db))).unwrap();
    let limits = Limits {
        send_rate: RateLimit::parse("off").unwrap(),
        read_rate: RateLimit::parse("off").unwrap(),
        ..Limits::default()
    };
    Bridge::new(store, key, Redactor::builtin(), limits, clock)
}

fn auth_with(c: &Created, session: SessionId, token: &str) -> Auth {
    Auth {
        conversation_id: c.conversation_id.clone(),
        session_id: session,
        token: SessionToken::from_presented(token),
    }
}

fn auth(c: &Created, session: SessionId) -> Auth {
    let token = c
        .seats
        .iter()
        .find(|seat| seat.session_id == session)
        .and_then(|seat| seat.token.as_deref())
        .expect("a token seat");
    auth_with(c, session, token)
}

async fn create(b: &Bridge<SqliteStore>) -> Created {
    b.create_conversation(CreateRequest::pair("backend", "frontend"))
        .await
        .unwrap()
}

async fn send(b: &Bridge<SqliteStore>, c: &Created, s: SessionId, body: &str) {
    b.send_message(SendRequest {
        auth: auth(c, s).into(),
        message: body.into(),
        action_type: ActionType::Question,
        files_involved: vec!["src/lib.rs".into()],
        to: None,
        reply_to: None,
    })
    .await
    .unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn all_bytes(db: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for suffix in ["", "-wal"] {
        let mut p = db.as_os_str().to_os_string();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            out.extend(b);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn list_and_show_report_counts_unread_and_read_state() {
    let env = Env::new();
    let b = env.bridge(Arc::new(SystemClock)).await;
    let c = create(&b).await;
    send(&b, &c, SessionId::A, "first, key AKIAQ3EGRL2VZKJHWXTB").await;
    send(&b, &c, SessionId::A, "second").await;
    b.check_messages(auth(&c, SessionId::B)).await.unwrap();
    send(&b, &c, SessionId::A, "third").await;
    b.update_status(StatusRequest {
        auth: auth(&c, SessionId::B).into(),
        status: StatusKind::Working,
        note: Some("on it".into()),
    })
    .await
    .unwrap();

    let list = env.json(&["list", "--json"]);
    let row = &list.as_array().unwrap()[0];
    assert_eq!(row["id"], c.conversation_id.as_str());
    assert_eq!(row["state"], "active");
    assert_eq!(row["messages"], 3);
    let b_seat = &row["participants"][1];
    assert_eq!(b_seat["role"], "frontend");
    assert_eq!(b_seat["unread"], 1);
    assert_eq!(b_seat["status"], "working");
    assert_eq!(b_seat["alive"], true);
    assert!(b_seat.get("token_hash").is_none());

    let human = env.ok(&["list"]);
    assert!(
        human.contains("ID") && human.contains(&c.conversation_id),
        "{human}"
    );
    assert!(human.contains("a:backend b:frontend"), "{human}");
    assert!(!human.contains('\x1b'), "no colour when stdout is not a terminal");
    assert_eq!(env.json(&["list", "--json", "--expired"]), serde_json::json!([]));

    let shown = env.json(&["show", &c.conversation_id, "--json"]);
    let msgs = shown["messages_after"].as_array().unwrap();
    assert_eq!(msgs.len(), 3);
    assert!(
        msgs.windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );
    assert_eq!(msgs[0]["redacted"], serde_json::json!(["aws_access_key"]));
    assert!(!msgs[0]["body"].as_str().unwrap().contains("AKIAQ3EGRL2VZKJHWXTB"));
    assert!(msgs[0]["read_by"][0]["delivered_at"].is_string());
    assert!(msgs[2]["read_by"][0]["delivered_at"].is_null());

    let text = env.ok(&["show", &c.conversation_id]);
    assert!(
        text.contains("question") && text.contains("[redacted: aws_access_key]"),
        "{text}"
    );
    assert!(text.contains("b unread") && text.contains("b read"), "{text}");
    assert!(
        !text.contains(c.session_a_token.as_deref().unwrap())
            && !text.contains(c.session_b_token.as_deref().unwrap())
    );
}

#[tokio::test]
async fn unknown_ids_fail_clearly_and_change_nothing() {
    let env = Env::new();
    let b = env.bridge(Arc::new(SystemClock)).await;
    create(&b).await;
    let before = env.json(&["stats", "--json"])["audit_entries"].clone();
    let missing = "conv_00000000000000000000000000000000";
    for args in [
        vec!["show", missing],
        vec!["rotate", missing, "--session", "a"],
        vec!["revoke", missing, "--session", "b"],
        vec!["close", missing],
        vec!["export", missing],
    ] {
        let out = env.cli(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&out).contains("no conversation has id"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(env.json(&["stats", "--json"])["audit_entries"], before);
}

#[tokio::test]
async fn a_missing_or_foreign_database_is_refused_and_not_created() {
    let env = Env::new();
    let missing = env.path("nope/bridge.db");
    let out = env.cli_on(&missing, &["list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such file"), "{}", stderr(&out));
    assert!(!missing.exists() && !missing.parent().unwrap().exists());

    let text = env.path("notes.txt");
    std::fs::write(&text, "just some text, not a database at all\n".repeat(200)).unwrap();
    let out = env.cli_on(&text, &["stats"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not an mcp-bridge database"),
        "{}",
        stderr(&out)
    );

    let foreign = env.path("other.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE invoices (id INTEGER)")
        .unwrap();
    let out = env.cli_on(&foreign, &["list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not an mcp-bridge database"),
        "{}",
        stderr(&out)
    );

    let empty = env.path("empty.db");
    std::fs::write(&empty, "").unwrap();
    let out = env.cli_on(&empty, &["list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("the file is empty"), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "nothing written");
}

#[tokio::test]
async fn a_database_without_its_key_is_refused_and_no_key_is_made() {
    let env = Env::new();
    let db = env.path("keyless.db");
    drop(SqliteStore::open(&db, OpenMode::CreateIfMissing).await.unwrap());
    let key = mcp_bridge::config::key_path_for(&db);
    assert!(!key.exists());
    for args in [&["audit", "verify"][..], &["list"][..]] {
        let out = env.cli_on(&db, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains("key file"), "{}", stderr(&out));
        assert!(!key.exists(), "{args:?} must not create a key");
    }
}

#[tokio::test]
async fn rotate_revoke_and_close_take_effect_for_agents() {
    let env = Env::new();
    let b = env.bridge(Arc::new(SystemClock)).await;
    let c = create(&b).await;

    let r = env.json(&["rotate", &c.conversation_id, "--session", "a", "--json"]);
    let new_token = r["token"].as_str().unwrap().to_owned();
    assert!(new_token.starts_with("mcpb_") && *new_token != *c.session_a_token.as_deref().unwrap());
    let err = b.check_messages(auth(&c, SessionId::A)).await.unwrap_err();
    assert_eq!(err.code(), "invalid_token");
    b.check_messages(auth_with(&c, SessionId::A, &new_token))
        .await
        .unwrap();
    assert!(
        !contains(&all_bytes(&env.db), &new_token),
        "a clear token reached the database"
    );

    let human = env.ok(&["rotate", &c.conversation_id, "--session", "b"]);
    assert_eq!(
        human.matches("mcpb_").count(),
        1,
        "the token is printed exactly once: {human}"
    );

    env.ok(&["revoke", &c.conversation_id, "--session", "a"]);
    let err = b
        .check_messages(auth_with(&c, SessionId::A, &new_token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "session_revoked");
    assert!(
        env.ok(&["revoke", &c.conversation_id, "--session", "a"])
            .contains("already revoked")
    );

    env.ok(&["close", &c.conversation_id]);
    let err = b.check_messages(auth(&c, SessionId::B)).await.unwrap_err();
    assert_eq!(err.code(), "conversation_closed");
    let out = env.cli(&["rotate", &c.conversation_id, "--session", "b"]);
    assert!(!out.status.success() && stderr(&out).contains("closed"));

    let actions: Vec<String> = env
        .ok(&["audit", "--json", "--action", "session.*"])
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(actions, ["session.rotate", "session.rotate", "session.revoke"]);
    assert!(env.ok(&["audit", "verify"]).starts_with("audit chain intact"));
}

#[tokio::test]
async fn cleanup_purges_ended_conversations_and_keeps_the_chain() {
    let env = Env::new();
    let now = SystemClock.now_ms();
    let past = ManualClock::new(now - 10 * 3600 * 1000);
    let old = env.bridge(Arc::new(past.clone())).await;
    let gone = create(&old).await;
    send(&old, &gone, SessionId::A, "old news").await;
    old.update_status(StatusRequest {
        auth: auth(&gone, SessionId::B).into(),
        status: StatusKind::Complete,
        note: None,
    })
    .await
    .unwrap();
    let live_bridge = env.bridge(Arc::new(SystemClock)).await;
    let live = create(&live_bridge).await;
    send(&live_bridge, &live, SessionId::A, "fresh").await;

    let listed = env.json(&["list", "--expired", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["state"], "expired");

    let dry = env.json(&["cleanup", "--dry-run", "--json"]);
    assert_eq!(dry["conversations"], serde_json::json!([gone.conversation_id]));
    assert_eq!(dry["deleted"]["messages"], 1);
    assert_eq!(dry["deleted"]["participants"], 2);
    assert_eq!(dry["deleted"]["status"], 1);
    assert!(dry["audit_seq"].is_null());
    assert_eq!(
        env.json(&["stats", "--json"])["conversations"],
        2,
        "a dry run changes nothing"
    );

    // Ended only 7 hours ago: a 1-day threshold keeps it.
    let kept = env.json(&["cleanup", "--older-than", "1d", "--json"]);
    assert_eq!(kept["conversations"], serde_json::json!([]));

    let done = env.json(&["cleanup", "--json"]);
    assert_eq!(done["conversations"], serde_json::json!([gone.conversation_id]));
    assert_eq!(done["deleted"]["deliveries"], 1);
    let stats = env.json(&["stats", "--json"]);
    assert_eq!(stats["conversations"], 1);
    assert_eq!(stats["messages"], 1);

    let verify = env.cli(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let purge = env.ok(&["audit", "--json", "--action", "conversations.purge"]);
    let entry: Value = serde_json::from_str(purge.trim()).unwrap();
    assert_eq!(entry["actor"], "cli");
    assert_eq!(entry["detail"]["deleted"]["messages"], 1);
    // The purged conversation's own audit entries are still there.
    let trail = env.ok(&[
        "audit",
        "--json",
        "--limit",
        "0",
        "--conversation",
        &gone.conversation_id,
    ]);
    assert!(trail.lines().count() >= 3, "{trail}");
    assert!(env.ok(&["show", &live.conversation_id]).contains("fresh"));
}

#[tokio::test]
async fn audit_export_writes_every_column_as_json_lines() {
    let env = Env::new();
    let b = env.bridge(Arc::new(SystemClock)).await;
    let c = create(&b).await;
    send(&b, &c, SessionId::A, "hello").await;
    let _ = b.check_messages(auth_with(&c, SessionId::B, "mcpb_wrong")).await;

    let out = env.ok(&["audit", "export", "--format", "jsonl"]);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i as i64 + 1);
        for col in [
            "at",
            "at_ms",
            "actor",
            "action",
            "conversation_id",
            "detail",
            "prev_hash",
            "hash",
            "seal",
        ] {
            assert!(l.get(col).is_some(), "column {col} missing from {l}");
        }
    }
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);

    let refused = env.ok(&["audit", "export", "--action", "*.refused"]);
    assert_eq!(refused.lines().count(), 1);
    assert!(!refused.contains("mcpb_wrong"));
    let none = env.ok(&["audit", "export", "--since", "2999-01-01"]);
    assert!(none.is_empty());
    let recent = env.ok(&[
        "audit",
        "export",
        "--since",
        "1h",
        "--conversation",
        &c.conversation_id,
    ]);
    assert_eq!(recent.lines().count(), 3);

    let file = env.path("audit.jsonl");
    env.ok(&["audit", "export", "--output", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out);
    let again = env.cli(&["audit", "export", "--output", file.to_str().unwrap()]);
    assert!(!again.status.success() && stderr(&again).contains("already exists"));

    let bad = env.cli(&["audit", "--since", "yesterday-ish"]);
    assert!(!bad.status.success() && stderr(&bad).contains("--since"));
}

#[tokio::test]
async fn export_and_import_round_trip_with_fresh_tokens() {
    let env = Env::new();
    let b = env.bridge(Arc::new(SystemClock)).await;
    let c = create(&b).await;
    send(&b, &c, SessionId::A, "one").await;
    send(&b, &c, SessionId::B, "two").await;
    b.check_messages(auth(&c, SessionId::B)).await.unwrap();

    let file = env.path("conv.json");
    env.ok(&["export", &c.conversation_id, "--output", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("token_hash") && !text.contains("mcpb_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // Into another database: same id, fresh tokens that work.
    let other = env.path("other.db");
    let ob = bridge_on(&other, Arc::new(SystemClock)).await;
    let out = env.cli_on(&other, &["import", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let imported: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(imported["conversation_id"], c.conversation_id.as_str());
    assert_eq!(imported["messages"], 2);
    let token_a = imported["tokens"][0]["token"].as_str().unwrap();
    let got = ob
        .check_messages(auth_with(&c, SessionId::A, token_a))
        .await
        .unwrap();
    assert_eq!(got.messages.len(), 1, "b's message was unread by a");
    assert_eq!(got.messages[0].message, "two");
    let token_b = imported["tokens"][1]["token"].as_str().unwrap();
    let got = ob
        .check_messages(auth_with(&c, SessionId::B, token_b))
        .await
        .unwrap();
    assert!(
        got.messages.is_empty(),
        "b had read a's message before the export"
    );

    // Into the same database: the id is taken, so a new one (or a refusal).
    let again = env.json(&["import", file.to_str().unwrap(), "--json"]);
    assert_ne!(again["conversation_id"], c.conversation_id.as_str());
    let keep = env.cli(&["import", file.to_str().unwrap(), "--keep-id"]);
    assert!(!keep.status.success() && stderr(&keep).contains("already exists"));
    assert!(env.ok(&["audit", "verify"]).starts_with("audit chain intact"));

    let junk = env.path("junk.json");
    std::fs::write(&junk, "{\"format\": \"something else\"}").unwrap();
    let out = env.cli(&["import", junk.to_str().unwrap()]);
    assert!(!out.status.success() && stderr(&out).contains("not an export"));
}

#[tokio::test]
async fn backup_copies_consistently_and_refuses_an_existing_target() {
    let env = Env::new();
    let b = env.bridge(Arc::new(SystemClock)).await;
    let c = create(&b).await;
    send(&b, &c, SessionId::A, "before the backup").await;

    let copy = env.path("copy.db");
    let out = env.ok(&["backup", copy.to_str().unwrap(), "--with-key"]);
    assert!(out.contains("backup written"), "{out}");
    let key_copy = key_path_for(&copy);
    assert_eq!(
        std::fs::read(&key_copy).unwrap(),
        std::fs::read(key_path_for(&env.db)).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [&copy, &key_copy] {
            assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
    let verify = env.cli_on(&copy, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
    let shown = env.cli_on(&copy, &["show", &c.conversation_id]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("before the backup"));

    let before = std::fs::read(&copy).unwrap();
    let out = env.cli(&["backup", copy.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "the existing file was touched"
    );
}

#[tokio::test]
async fn restore_refuses_a_live_database_and_bad_backups() {
    let env = Env::new();
    let b = env.bridge(Arc::new(SystemClock)).await;
    let c = create(&b).await;
    send(&b, &c, SessionId::A, "in the backup").await;
    let copy = env.path("copy.db");
    env.ok(&["backup", copy.to_str().unwrap()]);
    send(&b, &c, SessionId::A, "after the backup").await;

    // This test process holds the database open, as a server would.
    let out = env.cli(&["restore", copy.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    assert!(env.ok(&["show", &c.conversation_id]).contains("after the backup"));

    b.store().close().await;
    drop(b);

    // A corrupted backup fails its checks; nothing changes.
    let bad = env.path("bad.db");
    let mut bytes = std::fs::read(&copy).unwrap();
    let n = bytes.len();
    for byte in &mut bytes[n / 2..] {
        *byte = 0x5a;
    }
    std::fs::write(&bad, bytes).unwrap();
    let out = env.cli(&["restore", bad.to_str().unwrap()]);
    assert!(!out.status.success(), "a corrupted backup was restored");
    assert!(stderr(&out).contains("failed verification"), "{}", stderr(&out));
    assert!(env.ok(&["show", &c.conversation_id]).contains("after the backup"));
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restore"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A backup made under another key does not verify with ours.
    let foreign = Env::new();
    let fb = foreign.bridge(Arc::new(SystemClock)).await;
    create(&fb).await;
    let fcopy = foreign.path("f.db");
    foreign.ok(&["backup", fcopy.to_str().unwrap()]);
    let out = env.cli(&["restore", fcopy.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("seal"), "{}", stderr(&out));

    // A good backup restores once nobody has the database open.
    let out = env.cli(&["restore", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = env.ok(&["show", &c.conversation_id]);
    assert!(
        shown.contains("in the backup") && !shown.contains("after the backup"),
        "{shown}"
    );
    assert!(env.ok(&["audit", "verify"]).starts_with("audit chain intact"));
    assert!(
        env.ok(&["audit", "--action", "database.restore", "--json"])
            .contains("database.restore")
    );
    let kept = std::fs::read_dir(env.dir.path())
        .unwrap()
        .any(|e| e.unwrap().file_name().to_string_lossy().contains(".pre-restore-"));
    assert!(kept, "the replaced database is kept beside it");
}

#[tokio::test]
async fn show_follow_prints_new_messages_and_stops_on_ctrl_c() {
    let env = Env::new();
    let b = env.bridge(Arc::new(SystemClock)).await;
    let c = create(&b).await;
    send(&b, &c, SessionId::A, "already there").await;
    let home = env.dir.path().join("home");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-bridge"))
        .args(["show", &c.conversation_id, "--follow", "--json"])
        .env_clear()
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("MCP_BRIDGE_DB", &env.db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first: Value =
        serde_json::from_str(&rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(first["body"], "already there");
    send(&b, &c, SessionId::B, "arrived later").await;
    let next: Value =
        serde_json::from_str(&rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(next["body"], "arrived later");
    assert_eq!(next["from_role"], "frontend");

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "Ctrl-C should exit 0, got {exit:?}");
}

#[test]
fn completions_and_help_need_no_database() {
    let env = Env::new();
    let out = env.cli_on(&env.path("absent.db"), &["completions", "bash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("mcp-bridge") && script.contains("cleanup"));
    for cmd in [
        "list", "show", "audit", "cleanup", "rotate", "backup", "restore", "stats",
    ] {
        let out = env.cli(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd} --help");
    }
    assert!(!env.db.exists());
}
