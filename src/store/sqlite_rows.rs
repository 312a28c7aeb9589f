//! Row -> struct mappings shared by every SQLite query module, so each
//! column is named in one place.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{Conversation, Message, Participant, Result, Status};
use crate::audit;
use crate::auth::TokenHash;

/// JSON list columns (`files`, `redactions`); a malformed value reads as empty.
pub(super) fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The JSON text stored in a list column.
pub(super) fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(super) fn conversation(r: &SqliteRow) -> Result<Conversation> {
    Ok(Conversation {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        closed_at: r.try_get("closed_at")?,
    })
}

pub(super) fn participant(r: &SqliteRow) -> Result<Participant> {
    Ok(Participant {
        conversation_id: r.try_get("conversation_id")?,
        session_id: r.try_get("session_id")?,
        role: r.try_get("role")?,
        token_hash: TokenHash(r.try_get("token_hash")?),
        token_created_at: r.try_get("token_created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

pub(super) fn status(r: &SqliteRow) -> Result<Status> {
    Ok(Status {
        conversation_id: r.try_get("conversation_id")?,
        session_id: r.try_get("session_id")?,
        status: r.try_get("status")?,
        note: r.try_get("note")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
    })
}

pub(super) fn message(r: &SqliteRow) -> Result<Message> {
    Ok(Message {
        seq: r.try_get("seq")?,
        conversation_id: r.try_get("conversation_id")?,
        sender: r.try_get("sender")?,
        body: r.try_get("body")?,
        action_type: r.try_get("action_type")?,
        files: list(r.try_get("files")?),
        redactions: list(r.try_get("redactions")?),
        created_at: r.try_get("created_at")?,
    })
}

pub(super) fn audit_entry(r: &SqliteRow) -> Result<audit::Entry> {
    Ok(audit::Entry {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        conversation_id: r.try_get("conversation_id")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        seal: r.try_get("seal")?,
    })
}
