//! The binary against PostgreSQL: `--database-url` / `MCP_BRIDGE_DATABASE_URL`
//! selects the backend, the shared server key comes from `--key-file` or
//! `MCP_BRIDGE_KEY`, and the overseer's commands and `serve` work on it as
//! they do on SQLite. Two agents are two `serve` processes on one database,
//! driven over real stdio pipes by rmcp's client.
//!
//! Runs where `MCP_BRIDGE_TEST_PG` names a server (`scripts/with-postgres`,
//! which the README's test command uses); elsewhere it says so and passes.

mod pg_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-bridge");

/// A scratch home and the variables every command of one test shares.
struct Env {
    dir: tempfile::TempDir,
    url: String,
    key_file: PathBuf,
}

impl Env {
    fn new(url: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("shared.key");
        Self { dir, url, key_file }
    }

    fn base(&self, cmd: &mut Command) {
        let home = self.dir.path().join("home");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("MCP_BRIDGE_DATABASE_URL", &self.url);
    }

    /// Runs a command with the database URL and, when `with_key`, the key file.
    fn run(&self, args: &[&str], with_key: bool) -> Output {
        let mut cmd = Command::new(BIN);
        self.base(&mut cmd);
        if with_key {
            cmd.env("MCP_BRIDGE_KEY_FILE", &self.key_file);
        }
        cmd.args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, true);
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

    /// An agent's client: `mcp-bridge serve` acting as the agent whose
    /// credential is given, on this database.
    async fn agent(&self, credential: &str) -> RunningService<RoleClient, ()> {
        let mut cmd = tokio::process::Command::new(BIN);
        let home = self.dir.path().join("home");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("MCP_BRIDGE_DATABASE_URL", &self.url)
            .env("MCP_BRIDGE_KEY_FILE", &self.key_file)
            .env("MCP_BRIDGE_AGENT", credential)
            .arg("serve");
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        ().serve(transport).await.expect("initialize")
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &'static str, args: Value) -> Value {
    let Value::Object(args) = args else {
        panic!("not an object")
    };
    let r = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap();
    let body = r.structured_content.expect("structured content");
    assert_ne!(r.is_error, Some(true), "{tool} failed: {body}");
    body
}

async fn refused(client: &RunningService<RoleClient, ()>, tool: &'static str, args: Value) -> Value {
    let Value::Object(args) = args else {
        panic!("not an object")
    };
    let r = client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true), "{tool} was not refused");
    // A refusal is text (no structured content, which clients would check
    // against the success schema): a summary line, then the error as JSON.
    let text = r.content[0].as_text().expect("a text refusal").text.clone();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

fn key_generate(path: &Path) -> Output {
    Command::new(BIN)
        .args(["key", "generate"])
        .arg(path)
        .env_clear()
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_shared_key_nothing_opens_and_the_error_says_how_to_make_one() {
    pg_support::with_fresh_db(|url| async move {
        let env = Env::new(url);
        let out = env.run(&["agent", "add", "lead"], false);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let text = stderr(&out);
        assert!(
            text.contains("mcp-bridge key generate") && text.contains("MCP_BRIDGE_KEY"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        // A --key-file naming nothing is refused the same way, never created.
        let out = env.run(&["agent", "add", "lead"], true);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
        assert!(!env.key_file.exists(), "a key file was created");

        // `key generate` writes 64 hex characters, 0600, and never overwrites.
        assert!(key_generate(&env.key_file).status.success());
        let text = std::fs::read_to_string(&env.key_file).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(text.trim().chars().all(|c| c.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&env.key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = key_generate(&env.key_file);
        assert_eq!(again.status.code(), Some(2));
        assert_eq!(std::fs::read_to_string(&env.key_file).unwrap(), text);

        // The schema does not exist yet: read-only commands say so, `agent add` creates it.
        let out = env.run(&["list"], true);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("no mcp-bridge schema"), "{}", stderr(&out));
        env.ok(&["agent", "add", "lead"]);
        assert!(env.ok(&["agent", "list"]).contains("lead"));

        // The password in the URL never reaches an error.
        let mut cmd = Command::new(BIN);
        env.base(&mut cmd);
        let out = cmd
            .env("MCP_BRIDGE_DATABASE_URL", "postgres://u:hunter2@127.0.0.1:1/none")
            .env("MCP_BRIDGE_KEY_FILE", &env.key_file)
            .arg("list")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(!stderr(&out).contains("hunter2"), "{}", stderr(&out));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_in_two_processes_meet_on_postgres_and_the_overseer_sees_it() {
    pg_support::with_fresh_db(|url| async move {
        let env = Env::new(url);
        assert!(key_generate(&env.key_file).status.success());
        let lead = env.json(&["agent", "add", "lead", "--json"]);
        let worker = env.json(&["agent", "add", "worker", "--json"]);
        let lead = env.agent(lead["credential"].as_str().unwrap()).await;
        let worker = env.agent(worker["credential"].as_str().unwrap()).await;

        let conv = call(&lead, "create_conversation", json!({"with_agents": ["worker"]})).await;
        let id = conv["conversation_id"].as_str().unwrap().to_owned();
        for i in 0..5 {
            call(
                &lead,
                "send_to_partner",
                json!({"conversation_id": id, "message": format!("step {i}")}),
            )
            .await;
        }
        let got = call(&worker, "check_messages", json!({"conversation_id": id})).await;
        let bodies: Vec<&str> = got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["message"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["step 0", "step 1", "step 2", "step 3", "step 4"]);
        let again = call(&worker, "check_messages", json!({"conversation_id": id})).await;
        assert_eq!(again["messages"].as_array().unwrap().len(), 0, "delivered twice");

        // The overseer, through the same URL and key.
        let list = env.json(&["list", "--json"]);
        assert!(list.to_string().contains(&id), "{list}");
        let shown = env.json(&["show", &id, "--json"]);
        assert!(shown.to_string().contains("step 4"), "{shown}");
        assert!(env.ok(&["audit", "verify"]).contains("audit chain intact"));
        assert!(env.ok(&["stats"]).contains("postgres://"));
        env.ok(&["close", &id]);
        let closed = refused(
            &lead,
            "send_to_partner",
            json!({"conversation_id": id, "message": "late"}),
        )
        .await;
        assert_eq!(closed["error"]["code"], "conversation_closed", "{closed}");

        // File-only commands say what to use instead.
        let backup = env.dir.path().join("b.db");
        let out = env.run(&["backup", backup.to_str().unwrap()], true);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("pg_dump"), "{}", stderr(&out));
        assert!(!backup.exists());

        lead.cancel().await.unwrap();
        worker.cancel().await.unwrap();
    })
    .await;
}
