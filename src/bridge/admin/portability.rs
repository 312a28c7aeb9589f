//! Export and import of one conversation: the file format and its two use cases.
//!
//! An import file is treated as hostile, since anyone can edit one by hand:
//! it is bounded (size by the command line, messages here), every field is
//! validated as the matching tool would, every text (bodies, paths, notes,
//! roles) is redacted again and the redaction kinds are recomputed from the
//! result (never copied from the file), times may not lie in the future,
//! and the expiry never exceeds the configured lifetime from now. All of it
//! is checked before the write transaction starts, and everything commits
//! in that one transaction with its audit entry, or nothing does.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AdminError, AdminResult, ts};
use crate::auth::{SessionToken, ShownToken};
use crate::bridge::{ActionType, Bridge, SessionId, StatusKind, validate};
use crate::clock::{Millis, rfc3339};
use crate::store::admin::{AdminStore, AdminTx};
use crate::store::{self, Conversation, Participant, Status, Tx};

/// Messages read per query when export walks a whole conversation.
const PAGE: usize = 1000;

/// How far in the future an imported time may lie: clocks of two machines
/// disagree a little, never by more.
const CLOCK_SKEW_MS: Millis = 5 * 60 * 1000;

/// The format tag of an export file.
pub const EXPORT_FORMAT: &str = "mcp-bridge.conversation";
/// The version of the export format this binary writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// A conversation as an export file: everything but token hashes, which
/// are useless without the key and would help an offline guesser.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// Always [`EXPORT_VERSION`].
    pub version: u32,
    /// When the file was written (RFC 3339).
    pub exported_at: String,
    /// The conversation.
    pub conversation: ExportConversation,
    /// Its seats, without token hashes.
    pub participants: Vec<ExportParticipant>,
    /// Its messages, oldest first.
    pub messages: Vec<ExportMessage>,
    /// Its statuses.
    pub statuses: Vec<ExportStatus>,
}

/// The conversation row of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConversation {
    /// `conv_...`.
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339, if closed.
    pub closed_at: Option<String>,
}

/// One seat of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParticipant {
    /// `a`, `b`.
    pub session_id: String,
    /// The role.
    pub role: String,
    /// RFC 3339, if revoked.
    pub revoked_at: Option<String>,
}

/// One message of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportMessage {
    /// The seq in the source database (a new one is assigned on import).
    pub seq: i64,
    /// Sender's session id.
    pub sender: String,
    /// info, question, ...
    pub action_type: String,
    /// The redacted body.
    pub body: String,
    /// Redacted paths.
    pub files: Vec<String>,
    /// Kinds redacted.
    pub redacted: Vec<String>,
    /// RFC 3339.
    pub sent_at: String,
    /// Recipient session id -> delivery time (RFC 3339) or null while unread.
    pub delivered: BTreeMap<String, Option<String>>,
    /// The `seq` (in this export) of the message it answers, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
}

/// One status row of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportStatus {
    /// Whose.
    pub session_id: String,
    /// working, waiting, blocked, complete.
    pub status: String,
    /// Redacted note.
    pub note: Option<String>,
    /// RFC 3339.
    pub heartbeat_at: String,
}

/// What `import` needs.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The parsed file.
    pub export: Export,
    /// Refuse instead of choosing a new id when the exported id is taken.
    pub keep_id: bool,
    /// Give the imported conversation a new lifetime from now (and reopen it).
    pub ttl: Option<Duration>,
}

/// A fresh token for an imported seat.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    /// The seat.
    pub session_id: String,
    /// Its role.
    pub role: String,
    /// The token, shown once; `None` for a seat that was revoked in the export.
    pub token: Option<ShownToken>,
}

/// What `import` did.
#[derive(Debug, Serialize)]
pub struct Imported {
    /// The id in this database.
    pub conversation_id: String,
    /// The id in the file.
    pub source_id: String,
    /// Messages imported.
    pub messages: usize,
    /// One fresh token per seat, shown once.
    pub tokens: Vec<IssuedToken>,
    /// Expiry in this database.
    #[serde(serialize_with = "ts::one")]
    pub expires_at: Millis,
}

fn parse_time(field: &str, text: &str) -> AdminResult<Millis> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|d| d.timestamp_millis())
        .map_err(|_| AdminError::BadImport {
            reason: format!("{field} is not an RFC 3339 time"),
        })
}

/// A time that happened: parsed, and not later than `now` (give or take
/// clock skew), so a file cannot date history into the future.
fn past_time(field: &str, text: &str, now: Millis) -> AdminResult<Millis> {
    let t = parse_time(field, text)?;
    if t > now + CLOCK_SKEW_MS {
        return Err(bad(format!("{field} lies in the future")));
    }
    Ok(t)
}

fn past_opt_time(field: &str, text: &Option<String>, now: Millis) -> AdminResult<Option<Millis>> {
    text.as_deref().map(|t| past_time(field, t, now)).transpose()
}

fn bad(reason: impl Into<String>) -> AdminError {
    AdminError::BadImport {
        reason: reason.into(),
    }
}

/// Same shape as the ids `create_conversation` draws: 128 random bits, hex.
fn new_conversation_id() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    format!("conv_{}", hex::encode(b))
}

/// The kinds named by the `[REDACTED:kind]` placeholders in `text`: what a
/// stored message reports as redacted, recomputed from the text itself.
fn placeholder_kinds(text: &str, into: &mut Vec<String>) {
    const PREFIX: &str = "[REDACTED:";
    let mut rest = text;
    while let Some(pos) = rest.find(PREFIX) {
        let body = &rest[pos + PREFIX.len()..];
        let len = body
            .bytes()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
            .count();
        if len > 0 && len <= 64 && body.as_bytes().get(len) == Some(&b']') {
            into.push(body[..len].to_owned());
        }
        rest = body;
    }
}

/// One seat of a checked import.
struct SeatPlan {
    session: SessionId,
    role: String,
    revoked_at: Option<Millis>,
}

/// One message of a checked import: redacted, kinds recomputed.
struct MessagePlan {
    message: store::NewMessage,
    delivered: Vec<(String, Option<Millis>)>,
    /// The exported seq, so a later message's `reply_to` can be mapped.
    exported_seq: i64,
    /// The exported seq it answers.
    reply_to: Option<i64>,
}

/// A checked import: everything the write transaction needs, nothing left to fail on.
struct ImportPlan {
    created_at: Millis,
    expires_at: Millis,
    closed_at: Option<Millis>,
    seats: Vec<SeatPlan>,
    messages: Vec<MessagePlan>,
    statuses: Vec<Status>,
    /// Kinds redacted now, on import (not the ones already in placeholders).
    redacted_on_import: Vec<String>,
}

impl<S: AdminStore> Bridge<S> {
    /// A conversation as an export document: seats without token hashes,
    /// messages (already redacted at rest) with their delivery state, and
    /// statuses. The export is recorded in the audit trail, since data
    /// leaves the bridge.
    pub async fn export_conversation(&self, id: &str) -> AdminResult<Export> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let c = tx
            .conversation(id)
            .await?
            .ok_or_else(|| AdminError::NotFound { id: id.to_owned() })?;
        let participants = tx
            .participants(id)
            .await?
            .into_iter()
            .map(|p| ExportParticipant {
                session_id: p.session_id,
                role: p.role,
                revoked_at: p.revoked_at.map(rfc3339),
            })
            .collect();
        let mut delivered: HashMap<i64, BTreeMap<String, Option<String>>> = HashMap::new();
        for d in tx.deliveries_after(id, 0).await? {
            delivered
                .entry(d.message_seq)
                .or_default()
                .insert(d.recipient, d.delivered_at.map(rfc3339));
        }
        let mut messages = Vec::new();
        let mut after = 0;
        loop {
            let page = tx.history_after(id, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            messages.extend(page.into_iter().map(|m| ExportMessage {
                delivered: delivered.remove(&m.seq).unwrap_or_default(),
                seq: m.seq,
                sender: m.sender,
                action_type: m.action_type,
                body: m.body,
                files: m.files,
                redacted: m.redactions,
                sent_at: rfc3339(m.created_at),
                reply_to: m.reply_to,
            }));
        }
        let statuses = tx
            .statuses(id)
            .await?
            .into_iter()
            .map(|s| ExportStatus {
                session_id: s.session_id,
                status: s.status,
                note: s.note,
                heartbeat_at: rfc3339(s.heartbeat_at),
            })
            .collect();
        self.admin_audit(
            &mut tx,
            now,
            "conversation.export",
            Some(id),
            json!({ "messages": messages.len() }),
        )
        .await?;
        tx.commit().await?;
        Ok(Export {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: rfc3339(now),
            conversation: ExportConversation {
                id: c.id,
                created_at: rfc3339(c.created_at),
                expires_at: rfc3339(c.expires_at),
                closed_at: c.closed_at.map(rfc3339),
            },
            participants,
            messages,
            statuses,
        })
    }

    /// Restores an exported conversation with fresh tokens (the export has
    /// none): under its own id when that is free, else under a new one.
    /// The file is checked completely first (`plan_import`); then
    /// everything and its audit entry commit in one transaction; messages
    /// get new seqs in their original order.
    pub async fn import_conversation(&self, req: ImportRequest) -> AdminResult<Imported> {
        let plan = self.plan_import(&req)?;
        let e = &req.export;
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let source_id = e.conversation.id.clone();
        let source_ok = validate::is_conversation_id(&source_id);
        let id = if source_ok && tx.conversation(&source_id).await?.is_none() {
            source_id.clone()
        } else if req.keep_id {
            return Err(if source_ok {
                AdminError::IdTaken { id: source_id }
            } else {
                bad("conversation.id is not a conversation id (conv_ + 32 hex characters)")
            });
        } else {
            new_conversation_id()
        };
        tx.insert_conversation(&Conversation {
            id: id.clone(),
            created_at: plan.created_at,
            expires_at: plan.expires_at,
            closed_at: plan.closed_at,
        })
        .await?;
        let mut tokens = Vec::new();
        for seat in &plan.seats {
            let token = SessionToken::generate();
            tx.insert_participant(&Participant {
                conversation_id: id.clone(),
                session_id: seat.session.as_str().to_owned(),
                role: seat.role.clone(),
                token_hash: Some(self.key.hash_token(&token)),
                agent_id: None,
                token_created_at: now,
                revoked_at: seat.revoked_at,
            })
            .await?;
            tokens.push(IssuedToken {
                session_id: seat.session.as_str().to_owned(),
                role: seat.role.clone(),
                token: seat.revoked_at.is_none().then(|| ShownToken::new(&token)),
            });
        }
        // Seqs are assigned anew; a reply keeps pointing at its message
        // when that message is in the import, and at nothing otherwise.
        let mut new_seq: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
        for m in &plan.messages {
            let mut message = m.message.clone();
            message.conversation_id = id.clone();
            message.reply_to = m.reply_to.and_then(|r| new_seq.get(&r).copied());
            let recipients: Vec<String> = m.delivered.iter().map(|(r, _)| r.clone()).collect();
            let seq = tx.insert_message(&message, &recipients).await?;
            new_seq.insert(m.exported_seq, seq);
            for (r, at) in &m.delivered {
                if let Some(at) = at {
                    tx.set_delivered(seq, r, *at).await?;
                }
            }
        }
        for s in &plan.statuses {
            let mut status = s.clone();
            status.conversation_id = id.clone();
            tx.upsert_status(&status).await?;
        }
        self.admin_audit(
            &mut tx,
            now,
            "conversation.import",
            Some(&id),
            json!({
                "source_id": if source_ok { json!(source_id) } else { json!(null) },
                "messages": plan.messages.len(),
                "participants": plan.seats.len(),
                "redacted_on_import": plan.redacted_on_import,
                "expires_at": plan.expires_at,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Imported {
            conversation_id: id,
            source_id: if source_ok { source_id } else { String::new() },
            messages: plan.messages.len(),
            tokens,
            expires_at: plan.expires_at,
        })
    }

    /// Checks an import file completely, before anything is written, and
    /// returns what to write: each error names the field and the limit,
    /// never a value from the file.
    fn plan_import(&self, req: &ImportRequest) -> AdminResult<ImportPlan> {
        let e = &req.export;
        let now = self.now();
        if e.format != EXPORT_FORMAT || e.version != EXPORT_VERSION {
            return Err(bad(format!(
                "expected format {EXPORT_FORMAT:?} version {EXPORT_VERSION}, as written by `mcp-bridge export`"
            )));
        }
        if e.messages.len() > self.limits.max_import_messages {
            return Err(bad(format!(
                "it holds {} messages; max_import_messages is {} (raise it with --max-import-messages \
                 or MCP_BRIDGE_MAX_IMPORT_MESSAGES if the file is trusted)",
                e.messages.len(),
                self.limits.max_import_messages
            )));
        }
        let mut seats: Vec<SeatPlan> = Vec::new();
        for p in &e.participants {
            let session = SessionId::parse(&p.session_id)
                .ok_or_else(|| bad("participants[].session_id must be \"a\" or \"b\""))?;
            if seats.iter().any(|s| s.session == session) {
                return Err(bad("participants[].session_id appears twice"));
            }
            validate::role("participants[].role", &p.role, &self.limits, &self.redactor)
                .map_err(|e| bad(e.to_string()))?;
            seats.push(SeatPlan {
                session,
                role: p.role.clone(),
                revoked_at: past_opt_time("participants[].revoked_at", &p.revoked_at, now)?,
            });
        }
        if seats.len() < 2 {
            return Err(bad("a conversation needs at least two participants"));
        }
        let known = |s: &str| seats.iter().any(|t| t.session.as_str() == s);
        let mut redacted_on_import: Vec<String> = Vec::new();
        // Bodies are stored redacted, and a placeholder can be longer than
        // the secret it replaced; allow for that, not for arbitrary growth.
        let max_body = self.limits.max_message_bytes.saturating_mul(4);
        let mut messages = Vec::with_capacity(e.messages.len());
        for m in &e.messages {
            // The overseer's posts travel with the conversation; import is
            // itself an overseer command, so its file may carry them.
            if !known(&m.sender) && m.sender != crate::store::admin::OVERSEER_SENDER {
                return Err(bad("messages[].sender is not a participant or the overseer"));
            }
            let action = ActionType::parse(&m.action_type)
                .ok_or_else(|| bad("messages[].action_type is not a known action type"))?;
            if m.body.is_empty() || m.body.len() > max_body {
                return Err(bad(format!("messages[].body must be 1 to {max_body} bytes")));
            }
            validate::files(&m.files, &self.limits).map_err(|e| bad(e.to_string()))?;
            if m.delivered.keys().any(|r| !known(r) || *r == m.sender) {
                return Err(bad(
                    "messages[].delivered names a recipient that is not another participant",
                ));
            }
            // Redaction runs before the write, as for a sent message; the
            // kinds come from the redacted text, never from the file's list.
            let body = self.redactor.redact(&m.body);
            redacted_on_import.extend(body.kinds.iter().cloned());
            let body = body.text.into_owned();
            let mut kinds = Vec::new();
            placeholder_kinds(&body, &mut kinds);
            let mut files = Vec::with_capacity(m.files.len());
            for f in &m.files {
                let r = self.redactor.redact(f);
                redacted_on_import.extend(r.kinds.iter().cloned());
                let f = r.text.into_owned();
                placeholder_kinds(&f, &mut kinds);
                files.push(f);
            }
            kinds.sort();
            kinds.dedup();
            let mut delivered = Vec::with_capacity(m.delivered.len());
            for (r, at) in &m.delivered {
                delivered.push((r.clone(), past_opt_time("messages[].delivered", at, now)?));
            }
            messages.push(MessagePlan {
                message: store::NewMessage {
                    reply_to: None,
                    conversation_id: String::new(),
                    sender: m.sender.clone(),
                    body,
                    action_type: action.as_str().to_owned(),
                    files,
                    redactions: kinds,
                    created_at: past_time("messages[].sent_at", &m.sent_at, now)?,
                },
                delivered,
                exported_seq: m.seq,
                reply_to: m.reply_to,
            });
        }
        let mut statuses = Vec::with_capacity(e.statuses.len());
        for s in &e.statuses {
            if !known(&s.session_id) {
                return Err(bad("statuses[].session_id is not a participant"));
            }
            let kind =
                StatusKind::parse(&s.status).ok_or_else(|| bad("statuses[].status is not a known status"))?;
            let note = match &s.note {
                Some(n) => {
                    validate::note(n, &self.limits).map_err(|e| bad(e.to_string()))?;
                    let r = self.redactor.redact(n);
                    redacted_on_import.extend(r.kinds.iter().cloned());
                    Some(r.text.into_owned())
                }
                None => None,
            };
            statuses.push(Status {
                conversation_id: String::new(),
                session_id: s.session_id.clone(),
                status: kind.as_str().to_owned(),
                note,
                heartbeat_at: past_time("statuses[].heartbeat_at", &s.heartbeat_at, now)?,
            });
        }
        redacted_on_import.sort();
        redacted_on_import.dedup();
        let created_at = past_time("conversation.created_at", &e.conversation.created_at, now)?;
        // A conversation never outlives the configured lifetime from now,
        // whatever expiry the file claims (a year-9999 expiry included).
        let longest = now + self.limits.conversation_ttl.as_millis() as Millis;
        let (expires_at, closed_at) = match req.ttl {
            Some(ttl) => (now + ttl.as_millis() as Millis, None),
            None => (
                parse_time("conversation.expires_at", &e.conversation.expires_at)?,
                past_opt_time("conversation.closed_at", &e.conversation.closed_at, now)?,
            ),
        };
        Ok(ImportPlan {
            created_at,
            expires_at: expires_at.min(longest),
            closed_at,
            seats,
            messages,
            statuses,
            redacted_on_import,
        })
    }
}
