//! The load test's two clients, each one agent's connection with one call in
//! flight: a keep-alive HTTP/1.1 connection posting stateless `tools/call`
//! requests with a bearer credential, and a `serve` child process spoken to
//! in newline-delimited JSON-RPC on its pipes. Both return a tool call's
//! `structuredContent`, or an error naming the tool and the server's text.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// No call may take longer; the bench stops instead of hanging.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One agent's way to call a tool.
pub enum Client {
    /// Streamable HTTP, stateless: one POST per call on a kept-alive connection.
    Http(HttpClient),
    /// Its own `mcp-bridge serve` over stdio.
    Stdio(Box<StdioClient>),
}

impl Client {
    /// Calls `tool` and returns its structured result.
    pub async fn call(&mut self, tool: &str, args: Value) -> Result<Value> {
        let fut = async {
            match self {
                Client::Http(c) => c.call(tool, args).await,
                Client::Stdio(c) => c.call(tool, args).await,
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, fut)
            .await
            .map_err(|_| anyhow!("{tool}: no answer within {CALL_TIMEOUT:?}"))?
    }
}

/// The structured content of a `tools/call` response, or why there is none.
fn structured(tool: &str, response: &Value) -> Result<Value> {
    if let Some(err) = response.get("error") {
        bail!("{tool}: JSON-RPC error {err}");
    }
    let result = response
        .get("result")
        .ok_or_else(|| anyhow!("{tool}: no result in {response}"))?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        bail!("{tool} refused: {text}");
    }
    result
        .get("structuredContent")
        .cloned()
        .ok_or_else(|| anyhow!("{tool}: no structuredContent"))
}

fn request(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

/// One keep-alive HTTP/1.1 connection to `/mcp`, authenticated as one agent.
pub struct HttpClient {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
    bearer: String,
    next_id: u64,
}

impl HttpClient {
    /// Connects to `addr` (`127.0.0.1:PORT`).
    pub async fn connect(addr: &str, credential: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the sender is dropped.
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            authority: addr.to_owned(),
            bearer: format!("Bearer {credential}"),
            next_id: 0,
        })
    }

    async fn call(&mut self, tool: &str, args: Value) -> Result<Value> {
        self.next_id += 1;
        let body = serde_json::to_vec(&request(self.next_id, tool, args))?;
        let req = hyper::Request::post("/mcp")
            .header("host", &self.authority)
            .header("authorization", &self.bearer)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{tool}: HTTP {status}");
        }
        let value: Value = if is_sse {
            // The last `data:` line of the stream carries the response.
            let text = std::str::from_utf8(&bytes)?;
            let data = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .rfind(|d| !d.is_empty())
                .ok_or_else(|| anyhow!("{tool}: empty event stream"))?;
            serde_json::from_str(data)?
        } else {
            serde_json::from_slice(&bytes)?
        };
        structured(tool, &value)
    }
}

/// `mcp-bridge serve` as a child process, initialized, speaking JSON-RPC lines.
pub struct StdioClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl StdioClient {
    /// Spawns `command` (stdin and stdout piped, stderr discarded) and runs the handshake.
    pub async fn spawn(mut command: Command) -> Result<Self> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().context("spawning mcp-bridge serve")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let mut client = Self {
            child,
            stdin,
            lines,
            next_id: 0,
        };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "load", "version": "1"}}});
        client.send(&init).await?;
        client.answer(0).await.context("initialize")?;
        client
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(client)
    }

    async fn send(&mut self, msg: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(msg)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        Ok(())
    }

    /// The response with `id`, skipping notifications.
    async fn answer(&mut self, id: u64) -> Result<Value> {
        loop {
            let line = self
                .lines
                .next_line()
                .await?
                .ok_or_else(|| anyhow!("the server closed its stdout"))?;
            let value: Value = serde_json::from_str(&line)?;
            if value.get("id").and_then(Value::as_u64) == Some(id) {
                return Ok(value);
            }
        }
    }

    async fn call(&mut self, tool: &str, args: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&request(id, tool, args)).await?;
        let value = self.answer(id).await?;
        structured(tool, &value)
    }

    /// The server's process id, for its CPU time.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
