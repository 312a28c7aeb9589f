//! A message is marked read only for a caller who can still receive it
//! (issue 11 item 3, issue 10 "a check_messages response that could not be
//! written"). The real rmcp server runs in-process over
//! `tokio::io::duplex`, on a real SQLite file; the client is raw JSON-RPC
//! lines, so a request and its cancellation can arrive in one read, in an
//! order no client library would let a test pin down.
//!
//! The tests run on the current-thread runtime: the server's handler for a
//! request then cannot run before the service loop has read everything
//! already buffered, so "cancelled before the handler committed" is exact.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use mcp_bridge::auth::{ServerKey, SessionToken};
use mcp_bridge::bridge::{ActionType, Auth, Bridge, CreateRequest, Created, SendRequest, SessionId};
use mcp_bridge::clock::SystemClock;
use mcp_bridge::config::Limits;
use mcp_bridge::limits::RateLimit;
use mcp_bridge::mcp::BridgeServer;
use mcp_bridge::redact::Redactor;
use mcp_bridge::store::SqliteStore;
use mcp_bridge::store::sqlite::OpenMode;
use rmcp::transport::async_rw::AsyncRwTransport;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::task::JoinHandle;

async fn bridge_on(path: &Path) -> Bridge<SqliteStore> {
    let store = SqliteStore::open(path, OpenMode::CreateIfMissing).await.unwrap();
    let limits = Limits {
        send_rate: RateLimit::parse("off").unwrap(),
        read_rate: RateLimit::parse("off").unwrap(),
        ..Limits::default()
    };
    Bridge::new(
        store,
        ServerKey::from_bytes([9; 32]),
        Redactor::builtin(),
        limits,
        Arc::new(SystemClock),
    )
}

fn auth(c: &Created, session: SessionId) -> Auth {
    let token = c
        .seats
        .iter()
        .find(|seat| seat.session_id == session)
        .and_then(|seat| seat.token.as_deref())
        .expect("a token seat");
    Auth {
        conversation_id: c.conversation_id.clone(),
        session_id: session,
        token: SessionToken::from_presented(token),
    }
}

async fn converse(b: &Bridge<SqliteStore>) -> Created {
    b.create_conversation(CreateRequest::pair("backend", "frontend"))
        .await
        .unwrap()
}

async fn send(b: &Bridge<SqliteStore>, c: &Created, body: &str) -> i64 {
    b.send_message(SendRequest {
        auth: auth(c, SessionId::A).into(),
        message: body.into(),
        action_type: ActionType::Info,
        files_involved: vec![],
        to: None,
        reply_to: None,
    })
    .await
    .unwrap()
    .message_id
}

/// Session b's unread bodies, read by another "process" (its own bridge),
/// and marked read.
async fn take_for_b(db: &Path, c: &Created) -> Vec<String> {
    let other = bridge_on(db).await;
    let inbox = other.check_messages(auth(c, SessionId::B)).await.unwrap();
    inbox.messages.into_iter().map(|m| m.message).collect()
}

/// How many audit entries with this action exist.
async fn audited(db: &Path, action: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM audit WHERE action = ?1", [action], |r| {
        r.get(0)
    })
    .unwrap()
}

/// Yields until `done` holds, for at most 10 s: long enough for any
/// in-process step, and a failing test ends instead of hanging.
async fn until<F: Future<Output = bool>>(done: impl Fn() -> F) {
    let poll = async {
        while !done().await {
            tokio::task::yield_now().await;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), poll).await;
}

/// A raw JSON-RPC client on one end of a duplex pipe.
struct Client {
    w: WriteHalf<DuplexStream>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
}

impl Client {
    /// Writes all `messages` as JSON lines in one write.
    async fn write(&mut self, messages: &[Value]) {
        let mut buf = String::new();
        for m in messages {
            buf.push_str(&m.to_string());
            buf.push('\n');
        }
        self.w.write_all(buf.as_bytes()).await.unwrap();
        self.w.flush().await.unwrap();
    }

    /// The next message from the server.
    async fn read(&mut self) -> Value {
        let line = self
            .lines
            .next_line()
            .await
            .unwrap()
            .expect("the server closed the pipe");
        serde_json::from_str(&line).unwrap()
    }

    /// The response to request `id`, skipping notifications.
    async fn response(&mut self, id: i64) -> Value {
        loop {
            let m = self.read().await;
            if m.get("id") == Some(&json!(id)) {
                return m;
            }
        }
    }

    async fn initialize(&mut self) {
        self.write(&[json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "delivery-test", "version": "0"}}
        })])
        .await;
        self.response(0).await;
        self.write(&[json!({"jsonrpc": "2.0", "method": "notifications/initialized"})])
            .await;
    }
}

fn call(id: i64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

fn call_with_progress(id: i64, tool: &str, args: Value, token: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": args, "_meta": {"progressToken": token}}})
}

fn cancel(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": id, "reason": "test"}})
}

fn b_args(c: &Created, extra: Value) -> Value {
    let mut args =
        json!({"conversation_id": c.conversation_id, "session_id": "b", "token": c.session_b_token});
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    args
}

/// A server on `bridge` over a duplex pipe whose server-side writes start
/// failing once `fail` is set, and a client on the other end.
async fn serve_with_writer_switch(
    bridge: Bridge<SqliteStore>,
    fail: Arc<AtomicBool>,
) -> (Client, JoinHandle<anyhow::Result<()>>) {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let (sr, sw) = tokio::io::split(server_end);
    let transport = AsyncRwTransport::new_server(sr, FailingWriter { inner: sw, fail });
    let server = tokio::spawn(BridgeServer::new(bridge).serve_transport(transport));
    let (cr, cw) = tokio::io::split(client_end);
    let mut client = Client {
        w: cw,
        lines: BufReader::new(cr).lines(),
    };
    client.initialize().await;
    (client, server)
}

async fn serve(bridge: Bridge<SqliteStore>) -> (Client, JoinHandle<anyhow::Result<()>>) {
    serve_with_writer_switch(bridge, Arc::new(AtomicBool::new(false))).await
}

/// A writer that fails every write once its switch is set, as a pipe whose
/// reader has exited does (EPIPE).
struct FailingWriter {
    inner: WriteHalf<DuplexStream>,
    fail: Arc<AtomicBool>,
}

impl AsyncWrite for FailingWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.fail.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.fail.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_check_cancelled_before_its_response_leaves_the_message_unread() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let bridge = bridge_on(&db).await;
    let c = converse(&bridge).await;
    send(&bridge, &c, "keep me").await;
    let (mut client, server) = serve(bridge).await;
    // The request and its cancellation arrive together.
    client
        .write(&[call(1, "check_messages", b_args(&c, json!({}))), cancel(1)])
        .await;
    // A later request on the same connection proves the first was handled.
    client
        .write(&[call(2, "check_partner_status", b_args(&c, json!({})))])
        .await;
    client.response(2).await;
    drop(client);
    server.await.unwrap().unwrap();
    assert_eq!(take_for_b(&db, &c).await, ["keep me"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_wait_cancelled_with_notifications_cancelled_leaves_the_message_unread() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let bridge = bridge_on(&db).await;
    let c = converse(&bridge).await;
    let (mut client, server) = serve(bridge.clone()).await;
    client
        .write(&[call(
            1,
            "wait_for_messages",
            b_args(&c, json!({"timeout_seconds": 55})),
        )])
        .await;
    // The wait's first (empty) check is in the audit trail: it now sleeps.
    until(|| async { audited(&db, "message.wait").await == 1 }).await;
    client.write(&[cancel(1)]).await;
    client
        .write(&[call(2, "check_partner_status", b_args(&c, json!({})))])
        .await;
    client.response(2).await;
    send(&bridge, &c, "after the cancel").await;
    // The cancelled wait must not take it, now or before the server ends.
    drop(client);
    server.await.unwrap().unwrap();
    assert_eq!(take_for_b(&db, &c).await, ["after the cancel"]);
    assert_eq!(
        audited(&db, "message.wait").await,
        1,
        "the cancelled wait delivered something"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_wait_whose_client_went_away_leaves_the_message_unread() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let bridge = bridge_on(&db).await;
    let c = converse(&bridge).await;
    let (mut client, server) = serve(bridge.clone()).await;
    client
        .write(&[call(
            1,
            "wait_for_messages",
            b_args(&c, json!({"timeout_seconds": 55})),
        )])
        .await;
    until(|| async { audited(&db, "message.wait").await == 1 }).await;
    // The client dies: its end of the pipe closes mid-wait.
    drop(client);
    send(&bridge, &c, "nobody is waiting").await;
    server.await.unwrap().unwrap();
    assert_eq!(take_for_b(&db, &c).await, ["nobody is waiting"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_check_whose_response_cannot_be_written_is_returned_unread() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let bridge = bridge_on(&db).await;
    let c = converse(&bridge).await;
    let seq = send(&bridge, &c, "lost in the pipe").await;
    let fail = Arc::new(AtomicBool::new(false));
    let (mut client, server) = serve_with_writer_switch(bridge, fail.clone()).await;
    fail.store(true, Ordering::SeqCst);
    client
        .write(&[call(1, "check_messages", b_args(&c, json!({})))])
        .await;
    // The check commits and its response write fails; give the return a
    // bounded moment to commit while the connection is still open, so the
    // reason recorded is the write, not the close.
    until(|| async { audited(&db, "message.check").await == 1 }).await;
    until(|| async { audited(&db, "message.returned").await == 1 }).await;
    drop(client);
    server.await.unwrap().unwrap();
    assert_eq!(audited(&db, "message.check").await, 1, "the check did commit");
    assert_eq!(take_for_b(&db, &c).await, ["lost in the pipe"]);
    // The return is audited with exactly what it took back.
    let detail: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT detail FROM audit WHERE action = 'message.returned'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["returned"], json!([seq]));
    assert_eq!(detail["reason"], "write_failed");
}

#[tokio::test(flavor = "current_thread")]
async fn a_delivered_check_stays_read() {
    // The control: a response that is written marks the message read once.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let bridge = bridge_on(&db).await;
    let c = converse(&bridge).await;
    send(&bridge, &c, "for you").await;
    let (mut client, server) = serve(bridge).await;
    client
        .write(&[call(1, "check_messages", b_args(&c, json!({})))])
        .await;
    let r = client.response(1).await;
    assert_eq!(
        r["result"]["structuredContent"]["messages"][0]["message"],
        "for you"
    );
    drop(client);
    server.await.unwrap().unwrap();
    assert!(take_for_b(&db, &c).await.is_empty());
    assert_eq!(audited(&db, "message.returned").await, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_wait_with_a_progress_token_reports_progress_and_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let bridge = bridge_on(&db).await;
    let c = converse(&bridge).await;
    let (mut client, server) = serve(bridge.clone()).await;
    client
        .write(&[call_with_progress(
            1,
            "wait_for_messages",
            b_args(&c, json!({"timeout_seconds": 55})),
            "tok-1",
        )])
        .await;
    // The first progress report comes after a few seconds of waiting.
    let first = client.read().await;
    assert_eq!(first["method"], "notifications/progress");
    assert_eq!(first["params"]["progressToken"], "tok-1");
    assert_eq!(first["params"]["total"], 55.0);
    assert!(first["params"]["progress"].as_f64().unwrap() > 0.0);
    send(&bridge, &c, "at last").await;
    let r = client.response(1).await;
    assert_eq!(
        r["result"]["structuredContent"]["messages"][0]["message"],
        "at last"
    );
    drop(client);
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_wait_over_55_seconds_is_refused_naming_the_field_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let bridge = bridge_on(&db).await;
    let c = converse(&bridge).await;
    let (mut client, server) = serve(bridge).await;
    client
        .write(&[call(
            1,
            "wait_for_messages",
            b_args(&c, json!({"timeout_seconds": 56})),
        )])
        .await;
    let r = client.response(1).await;
    assert_eq!(r["result"]["isError"], true);
    // Errors carry no structuredContent (it would break the outputSchema);
    // the error object is the JSON on the text's last line.
    assert!(r["result"].get("structuredContent").is_none());
    let text = r["result"]["content"][0]["text"].as_str().unwrap();
    let body: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let err = &body["error"];
    assert_eq!(err["field"], "timeout_seconds");
    assert!(err["message"].as_str().unwrap().contains("55"), "{err}");
    drop(client);
    server.await.unwrap().unwrap();
}
