//! `mcp-bridge agent add|list|rotate|revoke`, run as a person runs them:
//! the real binary against a real database file and its key file. See
//! issue 18 ("agent identities that never enter a transcript").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mcp_bridge::auth::{AgentCredential, ServerKey};
use mcp_bridge::config::{KeySource, key_path_for};
use mcp_bridge::store::agents::{Agent, AgentTx};
use mcp_bridge::store::sqlite::OpenMode;
use mcp_bridge::store::{SqliteStore, Store};
use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    db: PathBuf,
}

impl Env {
    /// A database and key made as `serve` makes them on first start.
    async fn new() -> Self {
        let env = Self::bare();
        let store = SqliteStore::open(&env.db, OpenMode::CreateIfMissing)
            .await
            .unwrap();
        ServerKey::load(&KeySource::File(key_path_for(&env.db))).unwrap();
        store.close().await;
        env
    }

    /// Only a private directory: no database, no key.
    fn bare() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let db = dir.path().join("bridge.db");
        Self { dir, db }
    }

    fn cli(&self, args: &[&str]) -> Output {
        let home = self.dir.path().join("home");
        Command::new(env!("CARGO_BIN_EXE_mcp-bridge"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
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

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Runs a command that must be refused with exit 1; returns its stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        stderr(&out)
    }

    fn key(&self) -> ServerKey {
        ServerKey::load_existing(&KeySource::File(key_path_for(&self.db))).unwrap()
    }

    /// The agent whose current credential is `credential`, read through
    /// the store as a server would.
    async fn agent_by_credential(&self, credential: &str) -> Option<Agent> {
        let cred = AgentCredential::parse(credential).expect("a well-formed credential");
        let store = SqliteStore::open(&self.db, OpenMode::MustExist).await.unwrap();
        let mut tx = store.begin_read().await.unwrap();
        let found = tx
            .agent_by_credential(&self.key().hash_agent_credential(&cred))
            .await
            .unwrap();
        drop(tx);
        store.close().await;
        found
    }

    fn audit_entries(&self) -> Value {
        self.json(&["stats", "--json"])["audit_entries"].clone()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The database file and its WAL, as they are on disk.
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

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

#[tokio::test]
async fn add_list_rotate_revoke_issue_credentials_once_and_audit_without_them() {
    let env = Env::new().await;

    // add --json: exactly {name, role, credential}, a credential of the documented shape.
    let worker = env.json(&["agent", "add", "worker", "--json"]);
    assert_eq!(keys(&worker), BTreeSet::from(["name", "role", "credential"]));
    assert_eq!(worker["name"], "worker");
    assert_eq!(worker["role"], "agent");
    let worker_cred = worker["credential"].as_str().unwrap().to_owned();
    assert!(
        worker_cred.starts_with("mcpa_") && worker_cred.len() == 48,
        "{worker_cred}"
    );
    assert!(AgentCredential::parse(&worker_cred).is_some());
    assert_eq!(
        env.agent_by_credential(&worker_cred).await.unwrap().name,
        "worker"
    );

    // `--json` is global to `agent`; --role picks the role.
    let lead = env.json(&["agent", "--json", "add", "lead", "--role", "admin"]);
    assert_eq!(lead["role"], "admin");
    let lead_cred = lead["credential"].as_str().unwrap().to_owned();
    assert_ne!(lead_cred, worker_cred);

    // Plain output: the credential once, where it goes, and that it is not shown again.
    let text = env.ok(&["agent", "add", "watcher", "--role", "observer"]);
    let watcher_cred = text
        .split('"')
        .find(|s| s.starts_with("mcpa_"))
        .unwrap_or_else(|| panic!("no credential in {text}"))
        .to_owned();
    assert_eq!(text.matches(&watcher_cred).count(), 1, "{text}");
    assert!(text.contains("MCP_BRIDGE_AGENT"), "{text}");
    assert!(text.contains("never again"), "{text}");
    assert!(
        text.contains(&format!("\"env\": {{\"MCP_BRIDGE_AGENT\": \"{watcher_cred}\"}}")),
        "{text}"
    );
    assert_eq!(
        env.agent_by_credential(&watcher_cred)
            .await
            .unwrap()
            .role
            .as_str(),
        "observer"
    );

    // list --json: by name, exactly the documented fields, never a credential or hash.
    let list = env.json(&["agent", "list", "--json"]);
    let rows = list.as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["lead", "watcher", "worker"]
    );
    for r in rows {
        assert_eq!(
            keys(r),
            BTreeSet::from(["name", "role", "created_at", "rotated_at", "revoked_at"])
        );
        assert!(is_rfc3339(&r["created_at"]), "{r}");
        assert!(r["rotated_at"].is_null() && r["revoked_at"].is_null(), "{r}");
    }
    let listed = serde_json::to_string(&list).unwrap();
    assert!(!listed.contains("mcpa_") && !listed.contains("hash"), "{listed}");
    let table = env.ok(&["agent", "list"]);
    assert!(table.contains("NAME") && table.contains("observer"), "{table}");
    assert!(!table.contains("mcpa_"), "{table}");

    // rotate --json: exactly {name, credential}; the old credential finds nothing at once.
    let rotated = env.json(&["agent", "rotate", "worker", "--json"]);
    assert_eq!(keys(&rotated), BTreeSet::from(["name", "credential"]));
    assert_eq!(rotated["name"], "worker");
    let new_cred = rotated["credential"].as_str().unwrap().to_owned();
    assert_ne!(new_cred, worker_cred);
    assert!(env.agent_by_credential(&worker_cred).await.is_none());
    let after = env.agent_by_credential(&new_cred).await.unwrap();
    assert_eq!(after.name, "worker");
    assert!(after.rotated_at.is_some() && after.revoked_at.is_none());
    let text = env.ok(&["agent", "rotate", "lead"]);
    assert!(
        text.contains("old one no longer works") && text.contains("MCP_BRIDGE_AGENT"),
        "{text}"
    );
    assert_eq!(text.matches("mcpa_").count(), 1, "{text}");

    // revoke: revoked_at set; a second revoke changes nothing; a revoked agent is not rotated.
    let out = env.ok(&["agent", "revoke", "worker"]);
    assert!(out.contains("revoked"), "{out}");
    let revoked = env.agent_by_credential(&new_cred).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let list = env.json(&["agent", "list", "--json"]);
    let row = &list.as_array().unwrap()[2];
    assert_eq!(row["name"], "worker");
    assert!(
        is_rfc3339(&row["revoked_at"]) && is_rfc3339(&row["rotated_at"]),
        "{row}"
    );
    let before = env.audit_entries();
    let again = env.json(&["agent", "revoke", "worker", "--json"]);
    assert_eq!(again["changed"], false);
    assert_eq!(again["revoked_at"], row["revoked_at"]);
    let err = env.refused(&["agent", "rotate", "worker"]);
    assert!(err.contains("\"worker\" is revoked"), "{err}");
    assert_eq!(env.audit_entries(), before, "a no-op or refusal records nothing");

    // The trail records each change with actor cli, name and role, never a credential.
    let export = env.ok(&["audit", "export", "--action", "agent.*"]);
    let entries: Vec<Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        entries
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "agent.add",
            "agent.add",
            "agent.add",
            "agent.rotate",
            "agent.rotate",
            "agent.revoke"
        ]
    );
    for e in &entries {
        assert_eq!(e["actor"], "cli");
        assert!(e["conversation_id"].is_null(), "{e}");
        assert_eq!(keys(&e["detail"]), BTreeSet::from(["name", "role"]), "{e}");
    }
    assert_eq!(entries[1]["detail"]["name"], "lead");
    assert_eq!(entries[1]["detail"]["role"], "admin");
    assert_eq!(entries[5]["detail"]["name"], "worker");
    let full_export = env.ok(&["audit", "export"]);
    let shown = env.ok(&["audit", "--limit", "0", "--json"]);
    let bytes = all_bytes(&env.db);
    let lead_new = text.split('"').find(|s| s.starts_with("mcpa_")).unwrap();
    for cred in [
        &worker_cred,
        &lead_cred,
        &watcher_cred,
        &new_cred,
        &lead_new.to_owned(),
    ] {
        let body = &cred["mcpa_".len()..];
        for (what, hay) in [
            ("audit export", full_export.as_bytes()),
            ("audit", shown.as_bytes()),
            ("the database files", &bytes[..]),
        ] {
            assert!(!contains(hay, body), "a credential is in {what}");
        }
    }
    assert!(!contains(&bytes, "mcpa_"));
}

#[tokio::test]
async fn bad_names_are_refused_without_echo_and_change_nothing() {
    let env = Env::new().await;
    let before = env.audit_entries();
    let secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    let long = "a".repeat(65);
    let cases: [(&str, &str); 7] = [
        ("", "must be 1 to 64 characters long (got 0)"),
        (&long, "must be 1 to 64 characters long (got 65)"),
        ("a\u{1b}[2Jb", "may contain only letters, digits"),
        ("a\nb", "may contain only letters, digits"),
        ("two words", "may contain only letters, digits"),
        ("caf\u{e9}", "may contain only letters, digits"),
        (secret, "looks like a credential"),
    ];
    for (name, why) in cases {
        for verb in ["add", "rotate", "revoke"] {
            let err = env.refused(&["agent", verb, name]);
            assert!(err.contains("invalid agent name"), "{verb} {name:?}: {err}");
            assert!(err.contains(why), "{verb} {name:?}: {err}");
            assert!(!err.contains('\u{1b}'), "{verb} {name:?}: raw ESC in {err:?}");
            assert!(!err.contains(secret), "{verb}: the secret was echoed: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        }
    }
    // The limit is inclusive.
    let max = "b".repeat(64);
    assert_eq!(env.json(&["agent", "add", &max, "--json"])["name"], max.as_str());
    let list = env.json(&["agent", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    // One entry for the one registration; the refusals wrote nothing.
    assert_eq!(
        env.audit_entries().as_i64().unwrap(),
        before.as_i64().unwrap() + 1
    );
}

#[tokio::test]
async fn a_taken_or_unknown_name_is_refused_clearly() {
    let env = Env::new().await;
    let first = env.json(&["agent", "add", "worker", "--json"]);
    let cred = first["credential"].as_str().unwrap().to_owned();
    let before = env.audit_entries();

    let err = env.refused(&["agent", "add", "worker", "--role", "admin"]);
    assert!(err.contains("an agent named \"worker\" already exists"), "{err}");
    let err = env.refused(&["agent", "add", "worker", "--json"]);
    assert!(err.contains("already exists"), "{err}");
    // The first registration is untouched.
    let agent = env.agent_by_credential(&cred).await.unwrap();
    assert_eq!((agent.name.as_str(), agent.role.as_str()), ("worker", "agent"));
    assert!(agent.rotated_at.is_none());

    for verb in ["rotate", "revoke"] {
        let err = env.refused(&["agent", verb, "ghost"]);
        assert!(err.contains("no agent is named \"ghost\""), "{verb}: {err}");
        assert!(err.contains("agent list"), "{verb}: {err}");
    }
    // Names are case-sensitive: "Worker" is another agent, not the same one.
    assert!(env.refused(&["agent", "revoke", "Worker"]).contains("no agent"));
    assert_eq!(env.audit_entries(), before);

    // A role outside the three is refused by the command line itself.
    let out = env.cli(&["agent", "add", "other", "--role", "root"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("agent, observer, admin"),
        "{}",
        stderr(&out)
    );
}

/// `agent add` is the first step of a team's set-up: with no database it
/// creates one and its key; `agent list` never creates anything; and an
/// existing database without its key is never given a new one.
#[tokio::test]
async fn only_agent_add_creates_a_database_and_never_a_key_for_an_existing_one() {
    let env = Env::bare();
    let out = env.cli(&["agent", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no such file"), "{}", stderr(&out));
    assert!(!env.db.exists());
    let out = env.cli(&["agent", "add", "worker"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(env.db.exists() && key_path_for(&env.db).exists());

    let env = Env::bare();
    drop(
        SqliteStore::open(&env.db, OpenMode::CreateIfMissing)
            .await
            .unwrap(),
    );
    let key = key_path_for(&env.db);
    for args in [&["agent", "add", "worker"][..], &["agent", "list"][..]] {
        let out = env.cli(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains("key file"), "{}", stderr(&out));
        assert!(!key.exists(), "{args:?} must not create a key");
    }
}
