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

use crate::auth::SessionToken;
use crate::bridge::{self, Auth, Bridge, CreateRequest, SendRequest, Sent, StatusRequest};
use crate::store::Store;
use crate::store::yolo::YoloTx;

pub mod args;
pub mod delivery;
pub mod prompts;
pub mod render;
pub mod schema;
pub mod tools;
mod wait;

use render::{Refusal, error_result, render};
use tools::*;

/// The rmcp handler over one [`Bridge`].
#[derive(Clone, Debug)]
pub struct BridgeServer<S: Store> {
    bridge: Bridge<S>,
    /// The connection's deliveries awaiting their response write; fresh for
    /// every connection [`BridgeServer::serve_transport`] serves.
    ledger: delivery::Ledger,
}

impl<S: Store> BridgeServer<S>
where
    S::Tx: YoloTx,
{
    /// Wraps a bridge.
    pub fn new(bridge: Bridge<S>) -> Self {
        let ledger = delivery::Ledger::new(bridge.clone());
        Self { bridge, ledger }
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

    async fn dispatch(
        &self,
        name: &str,
        arguments: Option<rmcp::model::JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Option<CallToolResult> {
        // Without the opt-in the execution tools are not listed; a client
        // that calls them anyway learns how the human can enable them.
        if (name == PROPOSE_COMMAND || name == EXECUTE_APPROVED) && self.bridge.yolo_settings().is_none() {
            return Some(error_result(&bridge::Error::YoloDisabled));
        }
        // Every call is checked against the tool's schema before it reaches
        // the bridge; a refusal is recorded like any other, with the
        // conversation it claimed when that id is well-formed.
        let mut arguments = arguments.unwrap_or_default();
        schema::drop_null_arguments(&mut arguments);
        let value = serde_json::Value::Object(arguments);
        if let Some(action) = tools::audit_action(name)
            && let Err(e) = args::check(name, &value)
        {
            let claimed = value
                .get("conversation_id")
                .and_then(serde_json::Value::as_str)
                .filter(|c| looks_like_conversation_id(c));
            self.bridge.record_invalid_call(action, claimed, &e).await;
            return Some(error_result(&e));
        }
        let outcome = match name {
            CREATE_CONVERSATION => {
                match args::deserialize::<CreateConversationArgs>(value).and_then(create_request) {
                    Ok(req) => render(self.bridge.create_conversation(req).await, created_summary),
                    Err(e) => {
                        self.bridge
                            .record_invalid_call("conversation.create", None, &e)
                            .await;
                        error_result(&e)
                    }
                }
            }
            SEND_TO_PARTNER => match args::deserialize::<SendToPartnerArgs>(value) {
                Ok(a) => render(
                    self.bridge
                        .send_message(SendRequest {
                            auth: credentials(a.conversation_id, a.session_id, &a.token),
                            message: a.message,
                            action_type: a.action_type,
                            files_involved: a.files_involved,
                            to: None,
                            reply_to: None,
                        })
                        .await
                        .map(Sent::from),
                    |s| sent_summary(s.message_id, &s.recipients, &s.redacted),
                ),
                Err(e) => error_result(&e),
            },
            SEND_MESSAGE => match args::deserialize::<SendMessageArgs>(value) {
                Ok(a) => render(
                    self.bridge
                        .send_message(SendRequest {
                            auth: credentials(a.conversation_id, a.session_id, &a.token),
                            message: a.message,
                            action_type: a.action_type,
                            files_involved: a.files_involved,
                            to: a.to,
                            reply_to: a.reply_to,
                        })
                        .await,
                    |s| sent_summary(s.message_id, &s.recipients, &s.redacted),
                ),
                Err(e) => error_result(&e),
            },
            LIST_PARTICIPANTS => match args::deserialize::<SessionArgs>(value) {
                Ok(a) => render(self.bridge.list_participants(auth(a)).await, |p| {
                    let roles: Vec<String> = p
                        .participants
                        .iter()
                        .map(|v| format!("{} ({}, {} unread)", v.role, v.session_id, v.unread))
                        .collect();
                    format!("{} participants: {}.", roles.len(), roles.join(", "))
                }),
                Err(e) => error_result(&e),
            },
            MESSAGE_STATUS => match args::deserialize::<MessageStatusArgs>(value) {
                Ok(a) => {
                    let auth = credentials(a.conversation_id, a.session_id, &a.token);
                    render(self.bridge.message_status(auth, a.message_id).await, |m| {
                        let read = m.recipients.iter().filter(|r| r.read_at.is_some()).count();
                        format!(
                            "Message {}: read by {read} of {} recipient(s).",
                            m.message_id,
                            m.recipients.len()
                        )
                    })
                }
                Err(e) => error_result(&e),
            },
            CHECK_MESSAGES => self.check(value, context).await,
            WAIT_FOR_MESSAGES => self.wait(value, context).await,
            READ_HISTORY => match args::deserialize::<HistoryArgs>(value) {
                Ok(a) => {
                    let (after, limit) = (a.after_seq, a.limit as usize);
                    let auth = credentials(a.conversation_id, a.session_id, &a.token);
                    render(self.bridge.read_history(auth, after, limit).await, |h| {
                        let mut text = format!(
                            "{} message(s) after seq {after}, in `messages` below; nothing was marked read.",
                            h.messages.len()
                        );
                        if h.more {
                            text.push_str(&format!(
                                " More follow: continue with after_seq={}.",
                                h.next_after_seq
                            ));
                        }
                        text
                    })
                }
                Err(e) => error_result(&e),
            },
            UPDATE_MY_STATUS => match args::deserialize::<UpdateStatusArgs>(value) {
                Ok(a) => render(
                    self.bridge
                        .update_status(StatusRequest {
                            auth: credentials(a.conversation_id, a.session_id, &a.token),
                            status: a.status,
                            note: a.note,
                        })
                        .await,
                    |s| format!("Status set to {} at {}.", s.status, s.heartbeat_at),
                ),
                Err(e) => error_result(&e),
            },
            CHECK_PARTNER_STATUS => match args::deserialize::<SessionArgs>(value) {
                Ok(a) => render(self.bridge.partner_status(auth(a)).await, |p| {
                    let alive = if p.alive { "alive" } else { "not seen recently" };
                    match p.status.as_deref() {
                        Some(state) => format!("Partner {} is {} ({}).", p.partner_role, state, alive),
                        None => format!(
                            "Partner {} has not reported a status yet ({}).",
                            p.partner_role, alive
                        ),
                    }
                }),
                Err(e) => error_result(&e),
            },
            PROPOSE_COMMAND => match args::deserialize::<ProposeCommandArgs>(value) {
                Ok(a) => render(
                    self.bridge
                        .propose_command(crate::bridge::yolo::ProposeRequest {
                            auth: credentials(a.conversation_id, a.session_id, &a.token),
                            command: a.command,
                            mode: a.mode,
                            cwd: a.cwd,
                            reason: a.reason,
                        })
                        .await,
                    |p| {
                        format!(
                            "Proposal {}: {} ({}). {}",
                            p.proposal_id, p.state, p.verdict, p.next_step
                        )
                    },
                ),
                Err(e) => error_result(&e),
            },
            EXECUTE_APPROVED => match args::deserialize::<ExecuteApprovedArgs>(value) {
                Ok(a) => {
                    let auth = credentials(a.conversation_id, a.session_id, &a.token);
                    render(self.bridge.execute_approved(auth, &a.proposal_id).await, |x| {
                        if x.dry_run {
                            return format!(
                                "Dry run: would run `{}`; nothing ran and the approval is unused.",
                                x.plan
                            );
                        }
                        let status = match (x.exit_code, x.timed_out) {
                            (_, true) => "timed out".to_owned(),
                            (Some(c), _) => format!("exit status {c}"),
                            (None, _) => format!("signal {}", x.signal.unwrap_or_default()),
                        };
                        format!(
                            "Ran `{}`: {status} in {} ms; stdout and stderr are below.",
                            x.plan, x.duration_ms
                        )
                    })
                }
                Err(e) => error_result(&e),
            },
            _ => return None,
        };
        Some(outcome)
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

/// The request `create_conversation`'s arguments make: exactly one of
/// `partner_role` (the original bridge's pair) and `partner_roles` (a team).
fn create_request(a: CreateConversationArgs) -> Result<CreateRequest, bridge::Error> {
    match (a.partner_role, a.partner_roles) {
        (Some(one), None) => Ok(CreateRequest::pair(a.my_role, one)),
        (None, Some(many)) => Ok(CreateRequest::team(a.my_role, many)),
        (Some(_), Some(_)) => Err(bridge::Error::invalid(
            "partner_roles",
            "give partner_role (one partner) or partner_roles (a team), not both",
        )),
        (None, None) => Err(bridge::Error::invalid("partner_role", "is required")),
    }
}

fn created_summary(c: &bridge::Created) -> String {
    if c.seats.len() == 2 {
        return format!(
            "Conversation {} created; you are session \"a\" ({}), your partner is session \"b\" ({}). Expires {}. The tokens below are shown only this once: keep session_a_token, hand conversation_id and session_b_token to your partner through the human.",
            c.conversation_id, c.my_role, c.partner_role, c.expires_at
        );
    }
    let seats: Vec<String> = c
        .seats
        .iter()
        .map(|s| format!("{} = {}", s.session_id, s.role))
        .collect();
    format!(
        "Conversation {} created with {} seats ({}); you are session \"a\". Expires {}. The tokens in `seats` are shown only this once: keep yours, hand each partner conversation_id, its session_id and its token through the human.",
        c.conversation_id,
        c.seats.len(),
        seats.join(", "),
        c.expires_at
    )
}

fn sent_summary(message_id: i64, recipients: &[String], redacted: &[String]) -> String {
    let mut text = format!(
        "Stored as message {message_id} for {} (not yet read; message_status shows receipts).",
        recipients.join(", ")
    );
    if !redacted.is_empty() {
        text.push_str(&format!(" Redacted before storage: {}.", redacted.join(", ")));
    }
    text
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

fn auth(a: SessionArgs) -> Auth {
    credentials(a.conversation_id, a.session_id, &a.token)
}

/// The credentials every authenticated tool carries, with the token held in
/// a zeroizing wrapper from here on.
fn credentials(conversation_id: String, session_id: bridge::SessionId, token: &str) -> Auth {
    Auth {
        conversation_id,
        session_id,
        token: SessionToken::from_presented(token),
    }
}

/// How long a 2026-07-28 client may reuse the tool list: an hour. The list
/// cannot change while this process runs; a restarted server is a new
/// connection, listed anew.
const TOOLS_TTL_MS: u64 = 60 * 60 * 1000;

/// The refusal of a tool name this server does not offer, listing the ones
/// it does (the execution tools only when enabled) and never the name sent.
fn unknown_tool(yolo: bool) -> CallToolResult {
    let names: Vec<&str> = TOOLS
        .iter()
        .chain(YOLO_TOOLS.iter().filter(|_| yolo))
        .map(|t| t.name.as_ref())
        .collect();
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

const INSTRUCTIONS: &str = "mcp-bridge lets two agents coordinate through a shared, audited channel. \
One agent calls create_conversation and passes session_b_token to the partner through the human. \
Then: send_to_partner to talk, wait_for_messages (or check_messages) to receive (each message \
arrives once; read_history re-reads the conversation), update_my_status as a heartbeat, \
check_partner_status to see whether the partner is alive. \
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
        info.instructions = Some(INSTRUCTIONS.into());
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools = TOOLS.clone();
        if self.bridge.yolo_settings().is_some() {
            tools.extend(YOLO_TOOLS.iter().cloned());
        }
        let listing = ListToolsResult::with_all_items(tools);
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
        let yolo = self.bridge.yolo_settings().is_some();
        TOOLS
            .iter()
            .chain(YOLO_TOOLS.iter().filter(|_| yolo))
            .find(|t| t.name == name)
            .cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        match self.dispatch(&request.name, request.arguments, &context).await {
            Some(result) => Ok(result.into()),
            None => {
                // The agent's mistake, not the server's: debug, and never the
                // name it sent (it may be anything, control characters included).
                tracing::debug!("call to an unknown tool refused");
                Ok(unknown_tool(self.bridge.yolo_settings().is_some()).into())
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
        let plain = unknown_tool(false);
        assert_eq!(plain.is_error, Some(true));
        assert!(plain.structured_content.is_none());
        let t = text(&plain);
        assert!(t.starts_with("unknown_tool: "), "{t}");
        assert!(t.contains("read_history") && !t.contains(PROPOSE_COMMAND), "{t}");
        assert!(text(&unknown_tool(true)).contains(EXECUTE_APPROVED));
    }
}
