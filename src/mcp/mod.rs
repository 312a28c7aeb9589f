//! The MCP face of the bridge: an rmcp [`ServerHandler`] that lists the
//! tools, checks arguments against their schemas, calls [`crate::bridge`],
//! and renders results as structured content plus the same JSON as text
//! ([`mod@render`]).
//!
//! Anything the agent can cause (a bad field, a wrong token, a full rate
//! window, an expired conversation, a tool name that does not exist) is a
//! tool result with `isError: true` and a stable code, so the model sees it
//! and can correct itself, as the official TypeScript and Python SDK servers
//! do for unknown tools too. A JSON-RPC error would reach many hosts only as
//! "tool failed", and rmcp logs every one at WARN on stderr, which clients
//! show to people. Nothing here logs arguments: they may hold secrets.

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};

use std::sync::Arc;

use crate::bridge::{AgentIdentity, Bridge};
use crate::store::Store;
use crate::store::yolo::YoloTx;

pub mod args;
pub mod delivery;
mod dispatch;
pub mod prompts;
pub mod render;
pub mod schema;
pub mod tools;
mod wait;

use render::Refusal;
use tools::*;

/// The rmcp handler over one [`Bridge`].
#[derive(Clone, Debug)]
pub struct BridgeServer<S: Store> {
    bridge: Bridge<S>,
    /// The connection's deliveries awaiting their response write; fresh for
    /// every connection [`BridgeServer::serve_transport`] serves.
    ledger: delivery::Ledger,
    /// The registered agent this server acts as, when its client's
    /// configuration gave it a credential: then no tool needs a token.
    identity: Option<Arc<AgentIdentity>>,
}

impl<S: Store> BridgeServer<S>
where
    S::Tx: YoloTx,
{
    /// Wraps a bridge.
    pub fn new(bridge: Bridge<S>) -> Self {
        let ledger = delivery::Ledger::new(bridge.clone());
        Self {
            bridge,
            ledger,
            identity: None,
        }
    }

    /// Whether this server acts as a registered agent (stdio).
    pub fn acts_as_agent(&self) -> bool {
        self.identity.is_some()
    }

    /// Acts as `agent` on every call that carries no seat token.
    pub fn with_identity(mut self, agent: Arc<AgentIdentity>) -> Self {
        self.identity = Some(agent);
        self
    }

    /// The tools this server lists and accepts: the seat-token set, or the
    /// agent set when it acts as a registered agent; the execution tools
    /// only when the human enabled them.
    fn tools(&self) -> Vec<Tool> {
        self.tools_for(self.identity.is_some())
    }

    /// [`Self::tools`] for a caller that is (or is not) a registered agent.
    fn tools_for(&self, agent: bool) -> Vec<Tool> {
        let yolo = self.bridge.yolo_settings().is_some();
        let (base, exec) = if agent {
            (&*AGENT_TOOLS, &*YOLO_TOOLS)
        } else {
            (&*TOOLS, &*YOLO_SEAT_TOOLS)
        };
        base.iter().chain(exec.iter().filter(|_| yolo)).cloned().collect()
    }

    /// The registered agent a call acts as: over HTTP, the one its bearer
    /// credential proved (put into the request's extensions by
    /// [`crate::http::auth`], handed on by rmcp as the request's
    /// [`Parts`](axum::http::request::Parts)); else this server's own
    /// identity (stdio). Extensions are set by the server only, never read
    /// from the wire.
    fn caller_identity(&self, context: &RequestContext<RoleServer>) -> Option<Arc<AgentIdentity>> {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<AgentIdentity>>())
            .cloned()
            .or_else(|| self.identity.clone())
    }

    /// This server as the caller of `context` sees it: itself, or a copy
    /// acting as the agent an HTTP request authenticated (the copy shares
    /// the bridge and the ledger).
    fn for_caller(&self, context: &RequestContext<RoleServer>) -> std::borrow::Cow<'_, Self> {
        match self.caller_identity(context) {
            Some(agent) if !self.identity.as_ref().is_some_and(|own| Arc::ptr_eq(own, &agent)) => {
                std::borrow::Cow::Owned(self.clone().with_identity(agent))
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// Serves MCP on stdin/stdout until the client closes the pipe.
    pub async fn serve_stdio(self) -> anyhow::Result<()> {
        match pipe_stdio() {
            Some((rx, tx)) => self.serve_transport(AsyncRwTransport::new_server(rx, tx)).await,
            None => {
                let (rx, tx) = rmcp::transport::stdio();
                self.serve_transport(AsyncRwTransport::new_server(rx, tx)).await
            }
        }
    }

    /// Serves one connection until it ends, then takes back every delivery
    /// whose response was not written (see [`delivery`]).
    pub async fn serve_transport<T>(mut self, transport: T) -> anyhow::Result<()>
    where
        T: rmcp::transport::Transport<RoleServer> + 'static,
    {
        let ledger = delivery::Ledger::new(self.bridge.clone());
        self.ledger = ledger.clone();
        let served = async {
            let running = self
                .serve(delivery::Tracked::new(transport, ledger.clone()))
                .await?;
            running.waiting().await?;
            anyhow::Ok(())
        }
        .await;
        ledger.settle().await;
        served
    }
}

/// stdin and stdout as non-blocking pipes driven by the runtime's reactor,
/// when both are pipes, as they are when an MCP client spawns the server.
/// tokio's own stdio hands every read and write to a blocking-pool thread;
/// on a VM each such wake-up costs tens of microseconds, several per call.
/// Anything else (a terminal, a file) gets tokio's stdio: both descriptors
/// are checked before either is switched to non-blocking mode.
fn pipe_stdio() -> Option<(tokio::net::unix::pipe::Receiver, tokio::net::unix::pipe::Sender)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let stdin = std::fs::File::from(std::io::stdin().as_fd().try_clone_to_owned().ok()?);
    let stdout = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned().ok()?);
    let is_fifo = |f: &std::fs::File| f.metadata().is_ok_and(|m| m.file_type().is_fifo());
    if !is_fifo(&stdin) || !is_fifo(&stdout) {
        return None;
    }
    let rx = tokio::net::unix::pipe::Receiver::from_file(stdin).ok()?;
    let tx = tokio::net::unix::pipe::Sender::from_file(stdout).ok()?;
    Some((rx, tx))
}

/// `conv_` + 32 lowercase hex: only such ids are copied from a refused
/// call into the audit trail.
fn looks_like_conversation_id(id: &str) -> bool {
    id.len() == 37
        && id.starts_with("conv_")
        && id[5..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How long a 2026-07-28 client may reuse the tool list: an hour. The list
/// cannot change while this process runs; a restarted server is a new
/// connection, listed anew.
const TOOLS_TTL_MS: u64 = 60 * 60 * 1000;

/// The refusal of a tool name this server does not offer, listing the ones
/// it does (the execution tools only when enabled) and never the name sent.
fn unknown_tool(offered: &[Tool]) -> CallToolResult {
    let names: Vec<&str> = offered.iter().map(|t| t.name.as_ref()).collect();
    Refusal {
        code: "unknown_tool",
        message: format!(
            "no tool by that name; this server offers: {}. Call tools/list to see their arguments",
            names.join(", ")
        ),
        field: Some("name".into()),
        retry_after_seconds: None,
    }
    .into_result()
}

const INSTRUCTIONS: &str = "mcp-bridge lets agents coordinate through a shared, audited channel. \
One agent calls create_conversation (partner_role, or partner_roles for a team) and passes each \
partner its session_id and token through the human. \
Then: send_to_partner or send_message (to: [roles]) to talk, wait_for_messages (or check_messages) \
to receive (each message arrives once; read_history re-reads what you sent and received), \
update_my_status as a heartbeat, list_participants or check_partner_status to see who is alive, \
message_status for receipts. \
Never paste secrets: they are redacted, and the bridge never executes anything.";

/// The instructions of a server acting as a registered agent: no token
/// exists to hand over, so none is mentioned.
const AGENT_INSTRUCTIONS: &str = "mcp-bridge lets agents coordinate through a shared, audited channel. \
This server acts as your registered agent: no tool needs a token or session_id. \
Start a team with create_conversation {\"with_agents\": [names]}; find your conversations with \
my_conversations, and wait_for_messages without conversation_id to receive from all of them \
(each message arrives once and names its conversation_id). Talk with send_message (to: [roles], \
reply_to), check receipts with message_status, see everyone with list_participants, and call \
update_my_status as a heartbeat. \
Never paste secrets: they are redacted, and the bridge never executes anything.";

impl<S: Store> ServerHandler for BridgeServer<S>
where
    S::Tx: YoloTx,
{
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(
            ServerCapabilities::builder()
                .enable_prompts()
                .enable_tools()
                .build(),
        );
        // The preferred answer for clients that ask for a version we do not
        // know; clients asking for 2025-06-18 or 2025-11-25 get exactly that.
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info.server_info = Implementation::new("mcp-bridge", env!("CARGO_PKG_VERSION"));
        let instructions = if self.identity.is_some() {
            AGENT_INSTRUCTIONS
        } else {
            INSTRUCTIONS
        };
        info.instructions = Some(instructions.into());
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let listing =
            ListToolsResult::with_all_items(self.tools_for(self.caller_identity(&context).is_some()));
        // 2026-07-28 clients (Claude Code among them) drop the tools of a
        // listing without cache hints. The list is fixed for the life of the
        // process, but which tools it holds depends on this server's start
        // options, so it is private to this connection. Older clients get
        // the listing exactly as their version defines it.
        let modern = context
            .protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        Ok(if modern {
            listing
                .with_ttl_ms(TOOLS_TTL_MS)
                .with_cache_scope(CacheScope::Private)
        } else {
            listing
        })
    }

    // The prompts catalogue (`prompts.rs`). A bad argument is a JSON-RPC
    // invalid-params error, as the spec asks of prompts/get.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, McpError> {
        Ok(prompts::list(context.protocol_version()))
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, McpError> {
        Ok(prompts::get(&request.name, request.arguments)?.into())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.for_caller(&context);
        match caller.dispatch(&request.name, request.arguments, &context).await {
            Some(result) => Ok(result.into()),
            None => {
                // The agent's mistake, not the server's: debug, and never the
                // name it sent (it may be anything, control characters included).
                tracing::debug!("call to an unknown tool refused");
                Ok(unknown_tool(&caller.tools()).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &CallToolResult) -> String {
        r.content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect()
    }

    #[test]
    fn an_unknown_tool_is_a_tool_error_naming_the_tools_on_offer() {
        let plain = unknown_tool(&TOOLS);
        assert_eq!(plain.is_error, Some(true));
        assert!(plain.structured_content.is_none());
        let t = text(&plain);
        assert!(t.starts_with("unknown_tool: "), "{t}");
        assert!(t.contains("read_history") && !t.contains(PROPOSE_COMMAND), "{t}");
        let all: Vec<Tool> = TOOLS.iter().chain(YOLO_TOOLS.iter()).cloned().collect();
        assert!(text(&unknown_tool(&all)).contains(EXECUTE_APPROVED));
    }
}
