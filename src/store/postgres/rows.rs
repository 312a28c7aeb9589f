//! Row -> struct mappings shared by every PostgreSQL query module, so each
//! column is named in one place (the same names as the SQLite backend's).

use tokio_postgres::Row;

use crate::audit;
use crate::auth::TokenHash;
use crate::store::sealing::{Sealed, files_as_stored};
use crate::store::{Conversation, Message, Participant, Status};

/// A row's value with its conversation's wrapped data key (column `dek`).
pub(super) fn sealed<T>(r: &Row, value: T) -> RowResult<Sealed<T>> {
    Ok(Sealed {
        value,
        wrapped: r.try_get("dek")?,
    })
}

/// What a mapping returns; converted into a store error by the caller.
pub(super) type RowResult<T> = Result<T, tokio_postgres::Error>;

/// JSON list columns (`files`, `redactions`); a malformed value reads as empty.
pub(super) fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The JSON text stored in a list column.
pub(super) fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(super) fn conversation(r: &Row) -> RowResult<Conversation> {
    Ok(Conversation {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        closed_at: r.try_get("closed_at")?,
    })
}

pub(super) fn participant(r: &Row) -> RowResult<Participant> {
    Ok(Participant {
        conversation_id: r.try_get("conversation_id")?,
        session_id: r.try_get("session_id")?,
        role: r.try_get("role")?,
        token_hash: r.try_get::<_, Option<Vec<u8>>>("token_hash")?.map(TokenHash),
        agent_id: r.try_get("agent_id")?,
        token_created_at: r.try_get("token_created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// A status row as stored (its note still sealed).
pub(super) fn status_as_stored(r: &Row) -> RowResult<Status> {
    Ok(Status {
        conversation_id: r.try_get("conversation_id")?,
        session_id: r.try_get("session_id")?,
        status: r.try_get("status")?,
        note: r.try_get("note")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
    })
}

pub(super) fn status(r: &Row) -> RowResult<Sealed<Status>> {
    sealed(r, status_as_stored(r)?)
}

pub(super) fn message(r: &Row) -> RowResult<Sealed<Message>> {
    sealed(
        r,
        Message {
            seq: r.try_get("seq")?,
            conversation_id: r.try_get("conversation_id")?,
            sender: r.try_get("sender")?,
            body: r.try_get("body")?,
            action_type: r.try_get("action_type")?,
            files: files_as_stored(r.try_get("files")?, list),
            redactions: list(r.try_get::<_, &str>("redactions")?),
            recipients: list(r.try_get::<_, &str>("recipients")?),
            reply_to: r.try_get("reply_to")?,
            created_at: r.try_get("created_at")?,
        },
    )
}

pub(super) fn audit_entry(r: &Row) -> RowResult<audit::Entry> {
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
