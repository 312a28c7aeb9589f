//! Row -> struct mappings shared by every SQLite query module, so each
//! column is named in one place.

use rusqlite::Row;

use crate::audit;
use crate::auth::TokenHash;
use crate::store::sealing::{Sealed, files_as_stored};
use crate::store::{Conversation, Message, Participant, Status};

fn sealed<T>(r: &Row<'_>, value: T) -> rusqlite::Result<Sealed<T>> {
    Ok(Sealed {
        value,
        wrapped: r.get("dek")?,
    })
}

/// JSON list columns (`files`, `redactions`); a malformed value reads as empty.
pub(super) fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The JSON text stored in a list column.
pub(super) fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(super) fn conversation(r: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: r.get("id")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        closed_at: r.get("closed_at")?,
    })
}

pub(super) fn participant(r: &Row<'_>) -> rusqlite::Result<Participant> {
    Ok(Participant {
        conversation_id: r.get("conversation_id")?,
        session_id: r.get("session_id")?,
        role: r.get("role")?,
        token_hash: r.get::<_, Option<Vec<u8>>>("token_hash")?.map(TokenHash),
        agent_id: r.get("agent_id")?,
        token_created_at: r.get("token_created_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

/// A status row as stored (its note still sealed).
pub(super) fn status_as_stored(r: &Row<'_>) -> rusqlite::Result<Status> {
    Ok(Status {
        conversation_id: r.get("conversation_id")?,
        session_id: r.get("session_id")?,
        status: r.get("status")?,
        note: r.get("note")?,
        heartbeat_at: r.get("heartbeat_at")?,
    })
}

pub(super) fn status(r: &Row<'_>) -> rusqlite::Result<Sealed<Status>> {
    sealed(r, status_as_stored(r)?)
}

pub(super) fn message(r: &Row<'_>) -> rusqlite::Result<Sealed<Message>> {
    sealed(
        r,
        Message {
            seq: r.get("seq")?,
            conversation_id: r.get("conversation_id")?,
            sender: r.get("sender")?,
            body: r.get("body")?,
            action_type: r.get("action_type")?,
            files: files_as_stored(r.get("files")?, list),
            redactions: list(&r.get::<_, String>("redactions")?),
            recipients: list(&r.get::<_, String>("recipients")?),
            reply_to: r.get("reply_to")?,
            created_at: r.get("created_at")?,
        },
    )
}

pub(super) fn audit_entry(r: &Row<'_>) -> rusqlite::Result<audit::Entry> {
    Ok(audit::Entry {
        seq: r.get("seq")?,
        at: r.get("at")?,
        actor: r.get("actor")?,
        action: r.get("action")?,
        conversation_id: r.get("conversation_id")?,
        detail: r.get("detail")?,
        prev_hash: r.get("prev_hash")?,
        hash: r.get("hash")?,
        seal: r.get("seal")?,
    })
}
