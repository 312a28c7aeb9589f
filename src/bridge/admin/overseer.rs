//! The overseer steps in: the human posts into a conversation as
//! `overseer`, searches every conversation's messages, and does so from the
//! dashboard under its own audit actor (issue 15).
//!
//! A post is a message like any agent's (same validation, same redaction,
//! same quotas, exactly-once delivery in `seq` order) with one difference
//! that no agent can reproduce: its stored sender is
//! [`OVERSEER_SENDER`], never a seat, so recipients see `from_role:
//! "overseer"` and `from_overseer: true`. No seat may take the role
//! `overseer` (`validate::role`), an agent's message is always stored
//! under its own seat, and the database refuses any other sender
//! (migration 8). Rate limits do not apply: the overseer is a human.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;

use super::observing::LiveState;
use super::{AdminError, AdminResult};
use crate::bridge::{ActionType, Bridge, Error, validate};
use crate::clock::{Millis, rfc3339};
use crate::store::admin::{AdminStore, AdminTx, MAX_SEARCH_HITS, OVERSEER_SENDER};
use crate::store::{NewMessage, Tx};

/// The actor recorded for what the overseer does from the web dashboard.
pub(in crate::bridge) const DASHBOARD_ACTOR: &str = "dashboard";

/// The longest search query, in characters: a phrase, not a document.
pub const MAX_SEARCH_QUERY_CHARS: usize = 256;

/// What [`Bridge::post_as_overseer`] stored, and for whom.
#[derive(Debug, Clone, Serialize)]
pub struct OverseerPost {
    /// The message's id (`seq` on the receiving side).
    pub message_id: i64,
    /// The roles it was stored for: every participant of the conversation.
    pub recipients: Vec<String>,
    /// Kinds of secrets replaced by placeholders before storage (never the values).
    pub redacted: Vec<String>,
    /// When it was stored (RFC 3339, UTC).
    pub stored_at: String,
}

/// One message found by [`Bridge::search_messages`].
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// The message's id (its `seq`).
    pub message_id: i64,
    /// The sender's role; `overseer` for the human's posts.
    pub from_role: String,
    /// The stored body, secrets already replaced by placeholders.
    pub body: String,
    /// When it was stored.
    #[serde(serialize_with = "super::ts::one")]
    pub created_at: Millis,
}

impl<S: AdminStore> Bridge<S> {
    /// The human overseer posts into a conversation: redacted like any
    /// message, stored, delivered once to every participant (exactly-once,
    /// in order, like any message), audited under the bridge's admin actor.
    ///
    /// Refused, with nothing written: an unknown id, a closed or expired
    /// conversation, an empty or oversized message (`send_message`'s
    /// rules), a conversation whose quotas it would break.
    pub async fn post_as_overseer(&self, conversation_id: &str, message: &str) -> AdminResult<OverseerPost> {
        let mut tx = self.store.begin_write().await?;
        // Read the clock once the write lock is held, so timestamps follow
        // commit order across processes.
        let now = self.now();
        let (conversation, participants) = tx
            .conversation_with_participants(conversation_id)
            .await?
            .ok_or_else(|| AdminError::NotFound {
                id: conversation_id.to_owned(),
            })?;
        let id = conversation.id.clone();
        match LiveState::of(&conversation, now) {
            LiveState::Active => {}
            state => {
                return Err(AdminError::Ended {
                    id,
                    state: state.as_str(),
                    what: "posting a message",
                });
            }
        }
        validate::message(message, &self.limits).map_err(AdminError::Refused)?;

        // Redaction runs before anything is written, as for an agent's send.
        let body = self.redactor.redact(message);
        let mut kinds = body.kinds.clone();
        kinds.sort();
        kinds.dedup();
        // Every seat, in seat order: the overseer speaks to the whole room.
        let mut seats: Vec<(String, String)> =
            participants.into_iter().map(|p| (p.session_id, p.role)).collect();
        seats.sort();
        let recipients: Vec<String> = seats.iter().map(|(s, _)| s.clone()).collect();
        let new = NewMessage {
            conversation_id: id.clone(),
            sender: OVERSEER_SENDER.to_owned(),
            body: body.text.into_owned(),
            action_type: ActionType::Info.as_str().to_owned(),
            files: Vec::new(),
            redactions: kinds.clone(),
            reply_to: None,
            created_at: now,
        };
        self.check_quotas_of(&mut tx, &id, &new)
            .await
            .map_err(|e| match e {
                Error::Internal(s) => AdminError::Store(s),
                Error::Busy => AdminError::Store(crate::store::Error::Busy),
                e => AdminError::Refused(e),
            })?;
        let seq = tx.insert_message(&new, &recipients).await?;
        self.admin_audit(
            &mut tx,
            now,
            "overseer.post",
            Some(&id),
            json!({
                "message_id": seq,
                "bytes": message.len(),
                "redacted": kinds,
                "to": recipients,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(OverseerPost {
            message_id: seq,
            recipients: seats.into_iter().map(|(_, role)| role).collect(),
            redacted: kinds,
            stored_at: rfc3339(now),
        })
    }

    /// Messages whose stored (redacted) body contains `query`
    /// (case-insensitive, matched literally), newest first, at most `limit`
    /// (1..=200), across all conversations. Reads one snapshot; writes
    /// nothing. SQLite looks substrings of 3+ characters up in an FTS5
    /// trigram index and scans for shorter ones; PostgreSQL scans with
    /// `ILIKE` (see migration 8 for why no extension).
    pub async fn search_messages(&self, query: &str, limit: usize) -> AdminResult<Vec<SearchHit>> {
        check_query(query, limit)?;
        let mut tx = self.store.begin_read().await?;
        let rows = tx.search_messages(query, limit as i64).await?;
        // Roles by conversation, fetched once per conversation hit.
        let mut roles: HashMap<String, HashMap<String, String>> = HashMap::new();
        for m in &rows {
            if roles.contains_key(&m.conversation_id) {
                continue;
            }
            let seats = tx
                .participants(&m.conversation_id)
                .await?
                .into_iter()
                .map(|p| (p.session_id, p.role))
                .collect();
            roles.insert(m.conversation_id.clone(), seats);
        }
        drop(tx);
        Ok(rows
            .into_iter()
            .map(|m| {
                let from_role = if m.sender == OVERSEER_SENDER {
                    validate::OVERSEER_ROLE.to_owned()
                } else {
                    roles
                        .get(&m.conversation_id)
                        .and_then(|r| r.get(&m.sender))
                        .cloned()
                        .unwrap_or_else(|| m.sender.clone())
                };
                SearchHit {
                    conversation_id: m.conversation_id,
                    message_id: m.seq,
                    from_role,
                    body: m.body,
                    created_at: m.created_at,
                }
            })
            .collect())
    }
}

impl<S: crate::store::Store> Bridge<S> {
    /// This bridge with the overseer's operations audited under actor
    /// `dashboard` (beside [`Bridge::acting_for`]): what the human does in
    /// the browser is told apart from what they do at a terminal (`cli`).
    pub fn acting_as_dashboard(&self) -> Self {
        Self {
            admin_actor: std::sync::Arc::from(DASHBOARD_ACTOR),
            ..self.clone()
        }
    }
}

/// A search query is 1..=[`MAX_SEARCH_QUERY_CHARS`] characters, not only
/// whitespace, with no control character; `limit` is 1..=200. Errors name
/// the field and the limit, never the query.
fn check_query(query: &str, limit: usize) -> AdminResult<()> {
    let bad = |field: &'static str, reason: String| AdminError::InvalidSearch { field, reason };
    let n = query.chars().count();
    if query.trim().is_empty() {
        return Err(bad("query", "must contain a non-blank character".into()));
    }
    if n > MAX_SEARCH_QUERY_CHARS {
        return Err(bad(
            "query",
            format!("must be at most {MAX_SEARCH_QUERY_CHARS} characters long (got {n})"),
        ));
    }
    if query.chars().any(char::is_control) {
        return Err(bad(
            "query",
            "must not contain control characters (newlines, tabs, escapes, ...)".into(),
        ));
    }
    if !(1..=MAX_SEARCH_HITS).contains(&limit) {
        return Err(bad(
            "limit",
            format!("must be 1 to {MAX_SEARCH_HITS} (got {limit})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_checked_without_echo() {
        assert!(check_query("deploy", 20).is_ok());
        assert!(check_query("ab", 1).is_ok());
        let e = check_query("  ", 20).unwrap_err().to_string();
        assert!(e.contains("query"), "{e}");
        let e = check_query("x\u{1b}[2Jsecret", 20).unwrap_err().to_string();
        assert!(e.contains("control") && !e.contains("secret"), "{e}");
        let long = "y".repeat(MAX_SEARCH_QUERY_CHARS + 1);
        let e = check_query(&long, 20).unwrap_err().to_string();
        assert!(e.contains("at most 256") && !e.contains("yyy"), "{e}");
        for limit in [0, MAX_SEARCH_HITS + 1] {
            let e = check_query("deploy", limit).unwrap_err().to_string();
            assert!(e.contains("limit") && e.contains("1 to 200"), "{e}");
        }
    }
}
