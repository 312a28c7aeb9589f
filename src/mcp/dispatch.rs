//! One tool call: its arguments checked against the schema this caller
//! was listed, its credentials turned into an [`Access`], the use case
//! called, and the outcome rendered.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;

use super::render::{error_result, render};
use super::tools::*;
use super::{BridgeServer, args, looks_like_conversation_id, schema};
use crate::auth::SessionToken;
use crate::bridge::{
    self, Access, AgentIdentity, Auth, CreateRequest, SendRequest, Sent, SessionId, StatusRequest,
};
use crate::store::Store;
use crate::store::yolo::YoloTx;

type Outcome = Result<CallToolResult, bridge::Error>;

impl<S: Store> BridgeServer<S>
where
    S::Tx: YoloTx,
{
    /// Runs tool `name`; `None` when no such tool is offered. Over HTTP the
    /// call is counted and timed for `/metrics` and logged under its
    /// request's id ([`crate::http::metrics::observe_tool_call`]); over
    /// stdio it just runs.
    pub(super) async fn dispatch(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Option<CallToolResult> {
        let http = context
            .extensions
            .get::<axum::http::request::Parts>()
            .map(|parts| &parts.extensions);
        crate::http::metrics::observe_tool_call(http, name, self.run_tool(name, arguments, context)).await
    }

    async fn run_tool(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Option<CallToolResult> {
        // Without the opt-in the execution tools are not listed; a client
        // that calls them anyway learns how the human can enable them.
        if (name == PROPOSE_COMMAND || name == EXECUTE_APPROVED) && self.bridge.yolo_settings().is_none() {
            return Some(error_result(&bridge::Error::YoloDisabled));
        }
        if name == MY_CONVERSATIONS && self.identity.is_none() {
            return None;
        }
        // Every call is checked against the tool's schema before it reaches
        // the bridge; a refusal is recorded like any other, with the
        // conversation it claimed when that id is well-formed.
        let mut arguments = arguments.unwrap_or_default();
        schema::drop_null_arguments(&mut arguments);
        let value = serde_json::Value::Object(arguments);
        let action = audit_action(name)?;
        if let Err(e) = args::check(name, &value, self.identity.is_some()) {
            let claimed = value
                .get("conversation_id")
                .and_then(serde_json::Value::as_str)
                .filter(|c| looks_like_conversation_id(c));
            self.bridge.record_invalid_call(action, claimed, &e).await;
            return Some(error_result(&e));
        }
        let outcome = match name {
            CREATE_CONVERSATION => self.create(value).await,
            SEND_TO_PARTNER | SEND_MESSAGE => self.send(name, value).await,
            CHECK_MESSAGES => return Some(self.check(value, context).await),
            WAIT_FOR_MESSAGES => return Some(self.wait(value, context).await),
            READ_HISTORY => self.history(value).await,
            UPDATE_MY_STATUS => self.status(value).await,
            CHECK_PARTNER_STATUS => self.partner(value).await,
            LIST_PARTICIPANTS => self.participants(value).await,
            MESSAGE_STATUS => self.message_status(value).await,
            MY_CONVERSATIONS => self.mine().await,
            PROPOSE_COMMAND => self.propose(value).await,
            EXECUTE_APPROVED => self.execute(value).await,
            _ => return None,
        };
        Some(outcome.unwrap_or_else(|e| error_result(&e)))
    }

    /// The call's credentials: a seat's token when one is given (it needs
    /// its `session_id`), else this server's agent identity.
    pub(super) fn access(
        &self,
        conversation_id: String,
        session_id: Option<SessionId>,
        token: Option<String>,
    ) -> Result<Access, bridge::Error> {
        match (token, &self.identity) {
            (Some(token), _) => {
                let session_id = session_id
                    .ok_or_else(|| bridge::Error::invalid("session_id", "is required with token"))?;
                Ok(Access::Seat(Auth {
                    conversation_id,
                    session_id,
                    token: SessionToken::from_presented(&token),
                }))
            }
            (None, Some(agent)) => Ok(Access::Agent {
                conversation_id,
                seat: session_id,
                agent: Arc::clone(agent),
            }),
            (None, None) => Err(bridge::Error::invalid("token", "is required")),
        }
    }

    fn identity(&self) -> Option<&Arc<AgentIdentity>> {
        self.identity.as_ref()
    }

    async fn create(&self, value: serde_json::Value) -> Outcome {
        let a = args::deserialize::<CreateConversationArgs>(value)?;
        let req = match create_request(a, self.identity().cloned()) {
            Ok(r) => r,
            Err(e) => {
                self.bridge
                    .record_invalid_call("conversation.create", None, &e)
                    .await;
                return Err(e);
            }
        };
        Ok(render(
            self.bridge.create_conversation(req).await,
            created_summary,
        ))
    }

    async fn send(&self, name: &str, value: serde_json::Value) -> Outcome {
        let (auth, message, action_type, files_involved, to, reply_to) = if name == SEND_MESSAGE {
            let a = args::deserialize::<SendMessageArgs>(value)?;
            let auth = self.access(a.conversation_id, a.session_id, a.token)?;
            (auth, a.message, a.action_type, a.files_involved, a.to, a.reply_to)
        } else {
            let a = args::deserialize::<SendToPartnerArgs>(value)?;
            let auth = self.access(a.conversation_id, a.session_id, a.token)?;
            (auth, a.message, a.action_type, a.files_involved, None, None)
        };
        let stored = self
            .bridge
            .send_message(SendRequest {
                auth,
                message,
                action_type,
                files_involved,
                to,
                reply_to,
            })
            .await;
        Ok(if name == SEND_MESSAGE {
            render(stored, |s| sent_summary(s.message_id, &s.recipients, &s.redacted))
        } else {
            render(stored.map(Sent::from), |s| {
                sent_summary(s.message_id, &s.recipients, &s.redacted)
            })
        })
    }

    async fn history(&self, value: serde_json::Value) -> Outcome {
        let a = args::deserialize::<HistoryArgs>(value)?;
        let (after, limit) = (a.after_seq, a.limit as usize);
        let auth = self.access(a.conversation_id, a.session_id, a.token)?;
        Ok(render(self.bridge.read_history(auth, after, limit).await, |h| {
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
        }))
    }

    async fn status(&self, value: serde_json::Value) -> Outcome {
        let a = args::deserialize::<UpdateStatusArgs>(value)?;
        let auth = self.access(a.conversation_id, a.session_id, a.token)?;
        let req = StatusRequest {
            auth,
            status: a.status,
            note: a.note,
        };
        Ok(render(self.bridge.update_status(req).await, |s| {
            format!("Status set to {} at {}.", s.status, s.heartbeat_at)
        }))
    }

    async fn partner(&self, value: serde_json::Value) -> Outcome {
        let a = args::deserialize::<SessionArgs>(value)?;
        let auth = self.access(a.conversation_id, a.session_id, a.token)?;
        Ok(render(self.bridge.partner_status(auth).await, |p| {
            let alive = if p.alive { "alive" } else { "not seen recently" };
            match p.status.as_deref() {
                Some(state) => format!("Partner {} is {} ({}).", p.partner_role, state, alive),
                None => format!(
                    "Partner {} has not reported a status yet ({}).",
                    p.partner_role, alive
                ),
            }
        }))
    }

    async fn participants(&self, value: serde_json::Value) -> Outcome {
        let a = args::deserialize::<SessionArgs>(value)?;
        let auth = self.access(a.conversation_id, a.session_id, a.token)?;
        Ok(render(self.bridge.list_participants(auth).await, |p| {
            let roles: Vec<String> = p
                .participants
                .iter()
                .map(|v| format!("{} ({}, {} unread)", v.role, v.session_id, v.unread))
                .collect();
            format!("{} participants: {}.", roles.len(), roles.join(", "))
        }))
    }

    async fn message_status(&self, value: serde_json::Value) -> Outcome {
        let a = args::deserialize::<MessageStatusArgs>(value)?;
        let auth = self.access(a.conversation_id, a.session_id, a.token)?;
        Ok(render(
            self.bridge.message_status(auth, a.message_id).await,
            |m| {
                let read = m.recipients.iter().filter(|r| r.read_at.is_some()).count();
                format!(
                    "Message {}: read by {read} of {} recipient(s).",
                    m.message_id,
                    m.recipients.len()
                )
            },
        ))
    }

    async fn mine(&self) -> Outcome {
        let agent = self
            .identity()
            .ok_or_else(|| bridge::Error::invalid("name", "my_conversations needs a registered agent"))?;
        Ok(render(self.bridge.my_conversations(agent).await, |m| {
            let unread: i64 = m.conversations.iter().map(|c| c.unread).sum();
            format!(
                "{} conversation(s), {unread} unread message(s) in all.",
                m.conversations.len()
            )
        }))
    }

    async fn propose(&self, value: serde_json::Value) -> Outcome {
        let a = args::deserialize::<ProposeCommandArgs>(value)?;
        let auth = self.access(a.conversation_id, a.session_id, a.token)?;
        let req = crate::bridge::yolo::ProposeRequest {
            auth,
            command: a.command,
            mode: a.mode,
            cwd: a.cwd,
            reason: a.reason,
        };
        Ok(render(self.bridge.propose_command(req).await, |p| {
            format!(
                "Proposal {}: {} ({}). {}",
                p.proposal_id, p.state, p.verdict, p.next_step
            )
        }))
    }

    async fn execute(&self, value: serde_json::Value) -> Outcome {
        let a = args::deserialize::<ExecuteApprovedArgs>(value)?;
        let auth = self.access(a.conversation_id, a.session_id, a.token)?;
        Ok(render(
            self.bridge.execute_approved(auth, &a.proposal_id).await,
            |x| {
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
            },
        ))
    }
}

/// The request `create_conversation`'s arguments make: at most one of
/// `partner_role` (the original bridge's pair) and `partner_roles` (a
/// team); a registered agent may seat others with `with_agents` instead.
fn create_request(
    a: CreateConversationArgs,
    creator: Option<Arc<AgentIdentity>>,
) -> Result<CreateRequest, bridge::Error> {
    let (partner_roles, partners_field) = match (a.partner_role, a.partner_roles) {
        (Some(one), None) => (vec![one], "partner_role"),
        (None, Some(many)) => (many, "partner_roles"),
        (Some(_), Some(_)) => {
            return Err(bridge::Error::invalid(
                "partner_roles",
                "give partner_role (one partner) or partner_roles (a team), not both",
            ));
        }
        (None, None) if a.with_agents.is_none() => {
            let field = if creator.is_some() {
                "with_agents"
            } else {
                "partner_role"
            };
            return Err(bridge::Error::invalid(field, "is required"));
        }
        (None, None) => (Vec::new(), "partner_roles"),
    };
    Ok(CreateRequest {
        my_role: a.my_role,
        partner_roles,
        partners_field,
        with_agents: a.with_agents.unwrap_or_default(),
        creator,
    })
}

fn created_summary(c: &bridge::Created) -> String {
    let agent_seats = c.seats.iter().filter(|s| s.token.is_none()).count();
    if c.seats.len() == 2 && agent_seats == 0 {
        return format!(
            "Conversation {} created; you are session \"a\" ({}), your partner is session \"b\" ({}). Expires {}. The tokens below are shown only this once: keep session_a_token, hand conversation_id and session_b_token to your partner through the human.",
            c.conversation_id, c.my_role, c.partner_role, c.expires_at
        );
    }
    let seats: Vec<String> = c
        .seats
        .iter()
        .map(|s| {
            let holder = if s.token.is_some() {
                "token"
            } else {
                "registered agent"
            };
            format!("{} = {} ({holder})", s.session_id, s.role)
        })
        .collect();
    let mut text = format!(
        "Conversation {} created with {} seats: {}; you are session \"a\". Expires {}.",
        c.conversation_id,
        c.seats.len(),
        seats.join(", "),
        c.expires_at
    );
    if agent_seats < c.seats.len() {
        text.push_str(" The tokens in `seats` are shown only this once: hand each token seat conversation_id, its session_id and its token through the human.");
    }
    if agent_seats > 0 {
        text.push_str(" Registered agents need no token: they find the conversation with my_conversations.");
    }
    text
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
