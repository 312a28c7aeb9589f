//! The audit trail of the agents' calls: appending entries in the
//! caller's transaction, recording refusals (counted, so a flood adds a
//! bounded number of entries), and verifying the chain.

use serde_json::json;

use super::{Access, Bridge, Caller, Error, Result, SessionId, validate};
use crate::audit::{self, NewEntry};
use crate::clock::Millis;
use crate::store::{self, RefusalKey, RefusalTally, Store, Tx};

impl<S: Store> Bridge<S> {
    /// Appends an audit entry inside `tx`, chained after the current head,
    /// after writing out the refusal counts whose window has closed (so they
    /// reach the chain with the next write, whoever makes it). Under
    /// `BEGIN IMMEDIATE` no other process can append in between.
    pub(super) async fn audit(&self, tx: &mut S::Tx, now: Millis, entry: NewEntry) -> Result<()> {
        self.append_after_tallies(tx, now, self.tallies_due(now), entry)
            .await?;
        Ok(())
    }

    /// The refusal tallies an entry appended at `now` by [`Bridge::audit`]
    /// writes out first: those whose window opened by this moment.
    pub(super) fn tallies_due(&self, now: Millis) -> Millis {
        now - self.refusal_window()
    }

    /// Tells `tx` that its next insert or take is the last statement before
    /// [`Bridge::audit`] at `now` (see [`Tx::audit_tail_next`]).
    pub(super) fn audit_follows(&self, tx: &mut S::Tx, now: Millis) {
        tx.audit_tail_next(self.tallies_due(now));
    }

    /// Writes out the refusal tallies whose window opened at or before
    /// `opened_by`, then chains `entry` after them; returns its seq.
    pub(super) async fn append_after_tallies(
        &self,
        tx: &mut S::Tx,
        now: Millis,
        opened_by: Millis,
        entry: NewEntry,
    ) -> store::Result<i64> {
        let head = self.flush_tallies(tx, now, opened_by).await?;
        Ok(self.chain_onto(tx, head, now, entry).await?.0)
    }

    /// Chains `entry` after `head` (read in this transaction); returns the
    /// new head.
    async fn chain_onto(
        &self,
        tx: &mut S::Tx,
        head: Option<(i64, String)>,
        now: Millis,
        entry: NewEntry,
    ) -> store::Result<(i64, String)> {
        let e = audit::chain(head, now, entry, &self.key);
        tx.insert_audit(&e).await?;
        Ok((e.seq, e.hash))
    }

    /// Chains one entry after the head; returns its seq.
    pub(super) async fn append(&self, tx: &mut S::Tx, now: Millis, entry: NewEntry) -> store::Result<i64> {
        let head = tx.audit_head().await?;
        let e = audit::chain(head, now, entry, &self.key);
        tx.insert_audit(&e).await?;
        Ok(e.seq)
    }

    pub(super) fn refusal_window(&self) -> Millis {
        self.limits.refusal_window.as_millis() as Millis
    }

    /// Turns every refusal tally whose window opened at or before
    /// `opened_by` into one counted audit entry (`repeats`, `first_at`,
    /// `last_at`, in milliseconds), and forgets tallies with no repeats.
    /// Returns the chain's head after them.
    ///
    /// The tallies and the head are read together ([`Tx::audit_tail`]) and
    /// the entries chained here: one round trip before the inserts, which
    /// matters on PostgreSQL, where the chain is held from that read to the
    /// commit.
    pub(super) async fn flush_tallies(
        &self,
        tx: &mut S::Tx,
        now: Millis,
        opened_by: Millis,
    ) -> store::Result<Option<(i64, String)>> {
        let (tallies, mut head) = tx.audit_tail(opened_by).await?;
        for entry in tallies.into_iter().filter_map(tally_entry) {
            head = Some(self.chain_onto(tx, head, now, entry).await?);
        }
        Ok(head)
    }

    /// Writes every pending refusal count to the audit trail now, open
    /// windows included: the overseer's reads of the trail and a server's
    /// exit call this, so nothing counted is ever left out of the record.
    pub async fn flush_refusal_counts(&self) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        self.flush_tallies(&mut tx, now, Millis::MAX).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends an entry for an action of an authenticated caller in its
    /// conversation: the shape of almost every entry.
    pub(super) async fn audit_caller(
        &self,
        tx: &mut S::Tx,
        now: Millis,
        caller: &Caller,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let entry = NewEntry {
            actor: caller.actor(),
            action: action.to_owned(),
            conversation_id: Some(caller.conversation.id.clone()),
            detail,
        };
        self.audit(tx, now, entry).await
    }

    /// Records a refused call in its own transaction (the call's own was
    /// rolled back). Failing to record is logged, never masks the refusal.
    ///
    /// Nothing unvalidated is stored: `conversation_id` only when it has the
    /// exact shape of an id and names an existing conversation (so neither a
    /// secret pasted into the field nor a made-up id reaches the trail),
    /// `actor` only when it is a fixed word or that conversation's seat,
    /// else `unauthenticated`; a field name only when it is a name the
    /// schema knows. The first refusal of its kind in a window is audited at
    /// once; repeats are counted (see [`RefusalKey`]) and written as one
    /// entry when the window closes. The overseer's refusals are not
    /// counted but each audited: they come from a person, not a flood.
    pub(super) async fn audit_refusal(
        &self,
        action: &str,
        conversation_id: Option<&str>,
        actor: String,
        err: &Error,
    ) {
        let mut detail = json!({ "code": err.code() });
        if let Some(field) = refusal_field(err) {
            detail["field"] = json!(field);
        }
        let result: Result<()> = async {
            let mut tx = self.store.begin_concurrent_write().await?;
            let now = self.now();
            let conversation_id = match conversation_id.filter(|c| validate::is_conversation_id(c)) {
                Some(c)
                    if !matches!(err, Error::ConversationNotFound) && tx.conversation(c).await?.is_some() =>
                {
                    Some(c.to_owned())
                }
                _ => None,
            };
            let mut actor = refusal_actor(&actor, conversation_id.as_deref());
            // A seat letter the conversation does not have is made up too.
            if let (Some(c), Some((_, seat))) = (conversation_id.as_deref(), actor.split_once('/'))
                && tx.participant(c, seat).await?.is_none()
            {
                actor = "unauthenticated".to_owned();
            }
            let key = RefusalKey {
                actor: actor.clone(),
                action: format!("{action}.refused"),
                code: err.code().to_owned(),
                conversation_id: conversation_id.clone(),
            };
            self.flush_tallies(&mut tx, now, now - self.refusal_window())
                .await?;
            // The overseer's own refusals (a mistyped approval code) come
            // from a person at a terminal, not a flood: each is kept.
            if actor == OVERSEER || tx.tally_refusal(&key, now).await? {
                let entry = NewEntry {
                    actor,
                    action: key.action,
                    conversation_id,
                    detail,
                };
                self.append(&mut tx, now, entry).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, action, "could not record a refusal in the audit trail");
        }
    }

    /// Passes `result` through, recording it as a refusal of `action` by the
    /// caller named in `auth` when it is an error.
    pub(super) async fn audited<T>(&self, action: &str, access: &Access, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.audit_refusal(action, Some(access.conversation_id()), access.claimed_actor(), e)
                .await;
        }
        result
    }

    /// Records a call refused before authentication (its arguments broke the
    /// tool's schema), under the conversation it claimed, if any.
    pub async fn record_invalid_call(&self, action: &str, conversation_id: Option<&str>, err: &Error) {
        self.audit_refusal(action, conversation_id, "unauthenticated".into(), err)
            .await;
    }

    /// Verifies the audit chain from the first entry, page by page.
    pub async fn verify_audit(&self) -> std::result::Result<AuditReport, AuditFailure> {
        let mut tx = self.store.begin_read().await.map_err(AuditFailure::Store)?;
        let mut verifier = audit::Verifier::new(Some(&self.key));
        let mut first = None;
        let mut after = 0;
        loop {
            let page = tx.audit_page(after, 1000).await.map_err(AuditFailure::Store)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                verifier.push(e).map_err(AuditFailure::Broken)?;
                if e.seq == 1 {
                    first = Some(e.hash.clone());
                }
            }
        }
        let (entries, head) = verifier.finish();
        Ok(AuditReport { entries, head, first })
    }
}

/// The counted entry of a refusal tally; `None` when nothing was repeated.
fn tally_entry(t: RefusalTally) -> Option<NewEntry> {
    (t.repeats > 0).then(|| NewEntry {
        actor: t.key.actor,
        action: t.key.action,
        conversation_id: t.key.conversation_id,
        detail: json!({
            "code": t.key.code,
            "repeats": t.repeats,
            "first_at": t.first_at,
            "last_at": t.last_at,
        }),
    })
}

const OVERSEER: &str = "cli";

/// Actors a refusal may name besides a seat of an existing conversation.
const FIXED_ACTORS: [&str; 3] = ["anonymous", "unauthenticated", OVERSEER];

/// The actor a refusal is recorded under: a fixed word, or a seat of the
/// (existing) conversation it concerns; anything else was made up by the
/// caller and becomes `unauthenticated`.
fn refusal_actor(actor: &str, conversation_id: Option<&str>) -> String {
    if FIXED_ACTORS.contains(&actor) {
        return actor.to_owned();
    }
    // An agent's name comes from the agents table, validated when the
    // overseer registered it; the caller cannot choose it.
    if let Some(name) = actor.strip_prefix("agent:")
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return actor.to_owned();
    }
    match (actor.split_once('/'), conversation_id) {
        (Some((c, s)), Some(known)) if c == known && SessionId::parse(s).is_some() => actor.to_owned(),
        _ => "unauthenticated".to_owned(),
    }
}

/// The field a refusal names, when it is safe to keep: a schema field name
/// (`files_involved[3]`, `note`), or an unknown key only when it is a plain
/// lowercase identifier; never a key that could be a token pasted as a key
/// name or carry escape sequences.
fn refusal_field(err: &Error) -> Option<String> {
    let Error::InvalidArgument { field, reason } = err else {
        return None;
    };
    if reason.starts_with("unknown field") {
        // A caller-chosen key: kept only when it is a plain lowercase
        // identifier (`bogus_field`), which no token, key id or escape
        // sequence is; anything else is recorded as a kind, not a value.
        let plain = field.len() <= 40
            && field.starts_with(|c: char| c.is_ascii_lowercase())
            && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        return Some(if plain {
            field.clone()
        } else {
            "(unknown field)".into()
        });
    }
    let mut segments = field.split('.');
    let known_shape = field.len() <= 64
        && segments.all(|seg| {
            let name = seg.split_once('[').map_or(seg, |(n, rest)| {
                if rest.ends_with(']') && rest[..rest.len() - 1].bytes().all(|b| b.is_ascii_digit()) {
                    n
                } else {
                    ""
                }
            });
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        });
    Some(if known_shape {
        field.clone()
    } else {
        "(not recorded)".into()
    })
}

/// The outcome of a successful [`Bridge::verify_audit`].
#[derive(Debug, Clone)]
pub struct AuditReport {
    /// Entries verified.
    pub entries: u64,
    /// The newest entry's `(seq, hash)`.
    pub head: Option<(i64, String)>,
    /// Entry 1's hash, which names the chain.
    pub first: Option<String>,
}

/// Why [`Bridge::verify_audit`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditFailure {
    /// The chain is broken.
    #[error(transparent)]
    Broken(audit::Break),
    /// The database could not be read.
    #[error(transparent)]
    Store(store::Error),
}
