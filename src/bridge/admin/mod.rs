//! The overseer's use cases: what the human who runs the agents does from
//! a terminal, one module per concern:
//! - `observing`: `list`, `show`, `audit`, `stats` and their views;
//! - `lifecycle`: `cleanup`, `close`, `revoke`, `rotate`;
//! - `portability`: `export`, `import` and the file format;
//! - `safety`: `backup`, and `restore`'s last steps;
//! - `integrity`: the trail's full check, for `audit verify` and `restore`;
//! - `agents`: registered agents' identities (`agent add|list|rotate|revoke`);
//! - `overseer`: the human steps in (`post` as `overseer`, message search,
//!   the dashboard's audit actor).
//!
//! Same rules as the agents' use cases: every state change commits in ONE
//! `begin_write` transaction together with its audit entry (actor `cli`),
//! tokens are shown once and stored only as keyed hashes, and nothing here
//! knows SQL or how results are printed. Reads take a consistent snapshot
//! (`begin_read`) and write nothing. This module holds what they share:
//! the error type, the audit helper and the timestamp format.

use super::{AuditFailure, Bridge};
use crate::audit::{self, NewEntry};
use crate::clock::Millis;
use crate::store;
use crate::store::admin::AdminStore;

mod agents;
mod integrity;
mod keys;
mod lifecycle;
mod observing;
mod overseer;
mod portability;
mod safety;

pub use agents::{AgentAdded, AgentRevoked, AgentRotated, AgentView};
pub use integrity::{AuditCheck, HeadFileState, RestoreCheck};
pub use keys::KeyRotated;
pub use lifecycle::{CleanupReport, CleanupRequest, Ended, Rotated};
pub use observing::{
    ConversationDetail, ConversationSummary, ListFilter, LiveState, MessageView, ReadState, SeatView, Stats,
};
pub use overseer::{MAX_SEARCH_QUERY_CHARS, OverseerPost, SearchHit};
pub use portability::{
    EXPORT_FORMAT, EXPORT_VERSION, Export, ExportConversation, ExportMessage, ExportParticipant,
    ExportStatus, ImportRequest, Imported, IssuedToken,
};

/// The actor recorded for the overseer's actions at a terminal.
pub(super) const CLI_ACTOR: &str = "cli";

/// Why an overseer command failed. Messages name the id or the file at
/// fault and what to do; they never show a token or a message body.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No conversation has this id.
    #[error("no conversation has id {id:?}; `mcp-bridge list` shows the ids")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The conversation has no such seat.
    #[error("conversation {id} has no session {session:?}")]
    NoSuchSession {
        /// The conversation.
        id: String,
        /// The session asked for.
        session: String,
    },
    /// The seat is held by a registered agent, which has no token.
    #[error(
        "session {session:?} of conversation {id} is held by a registered agent, which has no token; rotate or revoke the agent's credential with `mcp-bridge agent rotate` / `agent revoke`, or revoke the seat"
    )]
    AgentSeat {
        /// The conversation.
        id: String,
        /// The seat.
        session: String,
    },
    /// The conversation has ended, so the action would achieve nothing.
    #[error("conversation {id} is {state}; {what} only applies to a live conversation")]
    Ended {
        /// The conversation.
        id: String,
        /// `expired` or `closed`.
        state: &'static str,
        /// The refused action.
        what: &'static str,
    },
    /// An import file is malformed or breaks a limit.
    #[error("invalid export file: {reason}")]
    BadImport {
        /// What is wrong (a field name, never a value).
        reason: String,
    },
    /// The id in the import file is taken and a new one was not allowed.
    #[error("conversation {id} already exists in this database; import it with a new id (drop --keep-id)")]
    IdTaken {
        /// The id.
        id: String,
    },
    /// A structural check of the database failed.
    #[error("the database failed its integrity check: {0}")]
    Integrity(String),
    /// The audit chain does not verify.
    #[error("the audit chain does not verify: {0}")]
    AuditBroken(audit::Break),
    /// The schema is not exactly what this binary's migrations create.
    #[error("the database schema is not the one mcp-bridge creates: {0}")]
    Schema(String),
    /// A conversation exists that no audit entry records.
    #[error(
        "conversation {id} has no audit entry: it was written without the bridge, so the trail is incomplete"
    )]
    Unaudited {
        /// The conversation.
        id: String,
    },
    /// The database ends before the head recorded outside it.
    #[error(
        "the audit trail was cut short: the head file {path} records entry {recorded}, the database ends at entry {found}. \
         If the database was replaced on purpose, `mcp-bridge restore` it instead, or delete the head file"
    )]
    Truncated {
        /// The head file.
        path: std::path::PathBuf,
        /// The seq it records.
        recorded: i64,
        /// The newest seq in the database.
        found: i64,
    },
    /// The database holds another chain than the head file records.
    #[error(
        "the audit trail is not the one the head file {path} records ({what}): the database was replaced or rewritten. \
         If that was deliberate, `mcp-bridge restore` it instead, or delete the head file"
    )]
    OtherChain {
        /// The head file.
        path: std::path::PathBuf,
        /// Which entry differs.
        what: String,
    },
    /// The head file cannot be read or does not verify.
    #[error(transparent)]
    HeadFile(audit::head::Error),
    /// An agent name breaks the rules of names (those of roles).
    #[error("invalid agent name: {reason}")]
    InvalidAgentName {
        /// What is wrong and what is accepted (never the name itself).
        reason: String,
    },
    /// `agent add` with a name already registered (revoked agents keep theirs).
    #[error(
        "an agent named {name:?} already exists; choose another name, or `mcp-bridge agent rotate {name}` to issue it a new credential"
    )]
    AgentExists {
        /// The (validated) name.
        name: String,
    },
    /// No agent has this name.
    #[error("no agent is named {name:?}; `mcp-bridge agent list` shows the names")]
    NoSuchAgent {
        /// The (validated) name.
        name: String,
    },
    /// `agent rotate` on a revoked agent: revocation is final.
    #[error(
        "agent {name:?} is revoked and stays revoked; register a new agent under another name with `mcp-bridge agent add`"
    )]
    AgentRevoked {
        /// The (validated) name.
        name: String,
    },
    /// The overseer's message breaks a rule every message follows (empty,
    /// too large, a conversation quota): the same error an agent would get.
    #[error(transparent)]
    Refused(super::Error),
    /// A search query or limit is out of bounds.
    #[error("invalid search {field}: {reason}")]
    InvalidSearch {
        /// `query` or `limit`.
        field: &'static str,
        /// What is wrong and what is accepted (never the query itself).
        reason: String,
    },
    /// The data keys' wrapping root cannot be rotated here.
    #[error("{0}")]
    KeyRotation(String),
    /// The key file's wrapping lines could not be read or replaced.
    #[error(transparent)]
    KeyFile(#[from] crate::seal::keyfile::Error),
    /// A data key could not be unwrapped or wrapped.
    #[error(transparent)]
    Seal(#[from] crate::seal::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl From<AuditFailure> for AdminError {
    fn from(e: AuditFailure) -> Self {
        match e {
            AuditFailure::Broken(b) => AdminError::AuditBroken(b),
            AuditFailure::Store(s) => AdminError::Store(s),
        }
    }
}

/// Shorthand for overseer results.
pub type AdminResult<T> = std::result::Result<T, AdminError>;

/// Timestamps serialise as RFC 3339 UTC, the form every tool output uses.
pub(in crate::bridge) mod ts {
    use serde::Serializer;

    use crate::clock::{Millis, rfc3339};

    pub(in crate::bridge) fn one<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*ms))
    }

    pub(in crate::bridge) fn opt<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&rfc3339(*ms)),
            None => s.serialize_none(),
        }
    }
}

impl<S: AdminStore> Bridge<S> {
    /// The current time, for renderers that show relative times consistently
    /// with the states computed here.
    pub fn now_ms(&self) -> Millis {
        self.now()
    }

    /// Appends an overseer audit entry inside `tx`; returns its seq.
    pub(super) async fn admin_audit(
        &self,
        tx: &mut S::Tx,
        now: Millis,
        action: &str,
        conversation_id: Option<&str>,
        detail: serde_json::Value,
    ) -> AdminResult<i64> {
        let entry = NewEntry {
            actor: self.admin_actor.to_string(),
            action: action.into(),
            conversation_id: conversation_id.map(str::to_owned),
            detail,
        };
        // Pending refusal counts whose window closed go first, as for every write.
        Ok(self
            .append_after_tallies(tx, now, now - self.refusal_window(), entry)
            .await?)
    }
}
