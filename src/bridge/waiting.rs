//! Waiting for messages instead of polling: in one conversation, or, for a
//! registered agent, across every conversation where it holds a seat.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::access::agent_actor;
use super::handoff::{Handed, Receipt, ReceiptPart, Recipient};
use super::messages::{Read, delivered};
use super::{Access, AgentIdentity, Bridge, Error, Inbox, Result, Waited, ensure_open};
use crate::audit::NewEntry;
use crate::store::{AgentSeat, Store, Tx};

/// What a wait watches.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// One conversation, with the call's credentials.
    One(&'a Access),
    /// Every open seat of a registered agent.
    Every(&'a Arc<AgentIdentity>),
}

impl<S: Store> Bridge<S> {
    /// Like [`Bridge::check_messages_for`], but when nothing is waiting it
    /// waits up to `timeout` for a message to arrive instead of returning
    /// empty: an agent needs no polling loop.
    ///
    /// The wait sleeps on the store's wake source ([`Store::changes`]) and
    /// re-reads the pending count when woken; a slow fallback poll covers a
    /// lost wake-up. It writes nothing while waiting: only the final
    /// delivery is audited, and only the first check counts against the
    /// read rate. It stops at once, marking nothing, when `to` goes, and
    /// returns empty (as at its timeout) once [`Bridge::stop_waits`] was called.
    pub async fn wait_for_messages(
        &self,
        auth: impl Into<Access>,
        timeout: Duration,
        to: &impl Recipient,
    ) -> Result<Handed<Waited>> {
        let auth: Access = auth.into();
        self.wait_on(Target::One(&auth), timeout, to).await
    }

    /// Ends every wait of this bridge (and of its clones), now and from now
    /// on, with an empty result: the server is stopping, and a waiter told
    /// "nothing yet" at once calls again, reaching a server that is up,
    /// where one cut off by the shutdown's grace period would see an error.
    /// A wait that already found messages still delivers them.
    pub fn stop_waits(&self) {
        self.stopping.cancel();
    }

    /// [`Bridge::wait_for_messages`] across every open conversation where
    /// `agent` holds a seat; each message names its conversation.
    pub async fn wait_for_any(
        &self,
        agent: &Arc<AgentIdentity>,
        timeout: Duration,
        to: &impl Recipient,
    ) -> Result<Handed<Waited>> {
        self.wait_on(Target::Every(agent), timeout, to).await
    }

    async fn wait_on(
        &self,
        target: Target<'_>,
        timeout: Duration,
        to: &impl Recipient,
    ) -> Result<Handed<Waited>> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribe before the first read, so a commit that lands between
        // that read and the first sleep still wakes the wait.
        let mut changes = self.store.changes();
        let first = self.read_target(target, true, to).await?;
        if !first.value.messages.is_empty() {
            return Ok(waited(first, false));
        }
        let mut poll = FallbackPoll::default();
        loop {
            let fallback = poll.next(changes.is_live());
            let woken = tokio::select! {
                biased;
                () = to.gone() => return Err(Error::CallerGone),
                () = tokio::time::sleep_until(deadline) => return Ok(waited(first, true)),
                () = self.stopping.cancelled() => return Ok(waited(first, true)),
                () = changes.changed() => true,
                () = tokio::time::sleep(fallback) => false,
            };
            if self.pending(target).await? > 0 {
                let inbox = self.read_target(target, false, to).await?;
                if !inbox.value.messages.is_empty() {
                    return Ok(waited(inbox, false));
                }
            } else if woken {
                poll.settle();
            }
        }
    }

    async fn read_target(
        &self,
        target: Target<'_>,
        first: bool,
        to: &impl Recipient,
    ) -> Result<Handed<Inbox>> {
        match target {
            Target::One(access) => {
                self.read_inbox(access, Read::Take, first, "message.wait", to)
                    .await
            }
            Target::Every(agent) => {
                let result = self.read_every_inbox(agent, first, to).await;
                if let Err(e) = &result
                    && !matches!(e, Error::CallerGone)
                {
                    self.audit_refusal("message.wait", None, agent_actor(&agent.name), e)
                        .await;
                }
                result
            }
        }
    }

    /// How many messages wait for the target: a read-only count, the only
    /// query a woken wait makes until there is something to deliver.
    async fn pending(&self, target: Target<'_>) -> Result<i64> {
        let mut tx = self.store.begin_read().await?;
        let now = self.now();
        match target {
            Target::One(Access::Seat(auth)) => Ok(tx
                .count_unread(&auth.conversation_id, auth.session_id.as_str())
                .await?),
            Target::One(Access::Agent {
                conversation_id,
                agent,
                ..
            }) => {
                let seat = tx
                    .participants(conversation_id)
                    .await?
                    .into_iter()
                    .find(|p| p.agent_id == Some(agent.id));
                match seat {
                    Some(p) => Ok(tx.count_unread(conversation_id, &p.session_id).await?),
                    None => Ok(0),
                }
            }
            Target::Every(agent) => {
                let mut total = 0;
                for s in open_seats(tx.agent_seats(agent.id).await?, now) {
                    total += tx
                        .count_unread(&s.conversation.id, &s.participant.session_id)
                        .await?;
                }
                Ok(total)
            }
        }
    }

    /// Takes up to `max_batch` unread messages from every open seat of the
    /// agent, oldest conversation first, in one transaction with one audit
    /// entry per conversation that had any.
    async fn read_every_inbox(
        &self,
        agent: &Arc<AgentIdentity>,
        count_rate: bool,
        to: &impl Recipient,
    ) -> Result<Handed<Inbox>> {
        let mut tx = self.store.begin_concurrent_write().await?;
        let now = self.now();
        self.ensure_agent_live(&mut tx, agent).await?;
        if count_rate {
            self.rate_key(
                &mut tx,
                &format!("read:{}", agent_actor(&agent.name)),
                &self.limits.read_rate,
                now,
            )
            .await?;
        }
        let mut messages = Vec::new();
        let mut parts = Vec::new();
        let mut remaining = 0;
        for seat in open_seats(tx.agent_seats(agent.id).await?, now) {
            let (conversation, me) = (&seat.conversation.id, &seat.participant.session_id);
            let room = self.limits.max_batch.saturating_sub(messages.len());
            let taken = if room == 0 {
                Vec::new()
            } else {
                tx.take_unread(conversation, me, now, room).await?
            };
            if taken.len() == room {
                remaining += tx.count_unread(conversation, me).await?;
            }
            if taken.is_empty() {
                continue;
            }
            let roles = tx
                .participants(conversation)
                .await?
                .into_iter()
                .map(|p| (p.session_id, p.role))
                .collect();
            parts.push(ReceiptPart {
                conversation_id: conversation.clone(),
                session_id: me.clone(),
                seqs: taken.iter().map(|m| m.seq).collect(),
            });
            messages.extend(taken.into_iter().map(|m| delivered(m, &roles)));
        }
        // The audit chain last, after every row is taken (the order a
        // concurrent transaction keeps; see `Store::begin_concurrent_write`).
        for part in &parts {
            let (conversation, me) = (&part.conversation_id, &part.session_id);
            self.audit(
                &mut tx,
                now,
                NewEntry {
                    actor: format!("{conversation}/{me}"),
                    action: "message.wait".into(),
                    conversation_id: Some(conversation.clone()),
                    detail: json!({ "delivered": part.seqs, "agent": agent.name }),
                },
            )
            .await?;
        }
        let receipt = (!parts.is_empty()).then_some(Receipt {
            parts,
            delivered_at: now,
        });
        // As for one conversation: never mark read for a caller who left.
        if receipt.is_some() && to.is_gone() {
            return Err(Error::CallerGone);
        }
        tx.commit().await?;
        Ok(Handed {
            value: Inbox { messages, remaining },
            receipt,
        })
    }
}

/// The seats an agent may still be delivered to: conversations neither
/// closed nor expired, seats not revoked.
fn open_seats(seats: Vec<AgentSeat>, now: crate::clock::Millis) -> impl Iterator<Item = AgentSeat> {
    seats
        .into_iter()
        .filter(move |s| ensure_open(&s.conversation, now).is_ok() && s.participant.revoked_at.is_none())
}

/// How long a wait sleeps between checks when no wake-up comes.
///
/// With a live wake source the poll is only a safety net for a lost
/// wake-up, so it is slow ([`FallbackPoll::LIVE`]); right after a wake that
/// found nothing it re-checks once soon ([`FallbackPoll::SETTLE`]), because
/// a file-write wake can arrive a moment before the writer's commit is
/// visible to readers. Without a wake source it backs off from 5 ms to
/// 250 ms, as every wait did before wake sources existed.
#[derive(Debug)]
struct FallbackPoll {
    backoff: Duration,
    settle: bool,
}

impl Default for FallbackPoll {
    fn default() -> Self {
        Self {
            backoff: Self::FIRST,
            settle: false,
        }
    }
}

impl FallbackPoll {
    /// The safety-net interval while a wake source is live: one indexed
    /// count per second per waiting process.
    const LIVE: Duration = Duration::from_secs(1);
    /// The re-check after a wake that found nothing yet.
    const SETTLE: Duration = Duration::from_millis(5);
    /// First and last step of the backoff without a wake source.
    const FIRST: Duration = Duration::from_millis(5);
    const LAST: Duration = Duration::from_millis(250);

    fn next(&mut self, live: bool) -> Duration {
        if std::mem::take(&mut self.settle) {
            return Self::SETTLE;
        }
        if live {
            return Self::LIVE;
        }
        let d = self.backoff;
        self.backoff = (d * 2).min(Self::LAST);
        d
    }

    fn settle(&mut self) {
        self.settle = true;
    }
}

fn waited(inbox: Handed<Inbox>, timed_out: bool) -> Handed<Waited> {
    Handed {
        value: Waited::from_inbox(inbox.value, timed_out),
        receipt: inbox.receipt,
    }
}
