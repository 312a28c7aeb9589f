//! Handing messages over only to a caller who is still there.
//!
//! `check_messages` and `wait_for_messages` mark what they return read in
//! the same transaction that reads it. If the caller has gone by then (it
//! cancelled the request, its client exited), marking read would lose the
//! messages: nobody receives the response, and only `read_history` would
//! ever show them. So a delivery is made *to* a [`Recipient`], which the
//! transport layer implements: the marking transaction asks it right before
//! commit and rolls back if the caller has gone, and a wait stops as soon as
//! it goes.
//!
//! What happens after commit (the response is written, or is not) only the
//! transport knows. It gets a [`Receipt`] with each delivery, and hands it
//! back to [`Bridge::return_unread`] when the response could not be written:
//! that marks exactly those deliveries pending again, in one audited
//! transaction, so the next check returns them.
//!
//! This module knows no transport: a recipient is anything that can say
//! whether its caller is gone.

use std::future::Future;

use serde_json::json;

use super::{Bridge, Result};
use crate::audit::NewEntry;
use crate::clock::Millis;
use crate::store::{Store, Tx};

/// Whoever a delivery is for, as seen by the transport that will carry it.
pub trait Recipient: Sync {
    /// True once nobody will read a response: the request was cancelled, or
    /// the connection closed. Checked right before a delivery commits.
    fn is_gone(&self) -> bool;

    /// Resolves when [`Recipient::is_gone`] becomes true; a wait selects on it.
    fn gone(&self) -> impl Future<Output = ()> + Send;
}

/// A recipient that never goes: the overseer's tools and tests, where the
/// caller holds the result in hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct InHand;

impl Recipient for InHand {
    fn is_gone(&self) -> bool {
        false
    }

    fn gone(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// Which deliveries one response carries: enough to take them back, and
/// nothing secret (no token, no body). A wait across an agent's
/// conversations hands over messages of several seats at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The deliveries, one part per seat.
    pub parts: Vec<ReceiptPart>,
    /// The `delivered_at` stamp the delivery wrote; only rows still carrying
    /// it are returned.
    pub delivered_at: Millis,
}

/// The messages one seat was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPart {
    /// The conversation.
    pub conversation_id: String,
    /// The recipient's session.
    pub session_id: String,
    /// The messages delivered, in order.
    pub seqs: Vec<i64>,
}

/// A use case's result plus the receipt of the deliveries it marked read,
/// if it marked any.
#[derive(Debug)]
pub struct Handed<T> {
    /// What the caller gets.
    pub value: T,
    /// `None` when nothing was marked read (an empty inbox, a peek).
    pub receipt: Option<Receipt>,
}

/// Why a delivery was taken back, as recorded in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnReason {
    /// Writing the response failed (the client closed its end).
    WriteFailed,
    /// The request was cancelled after the delivery committed, so the
    /// transport dropped the response.
    Cancelled,
    /// The connection ended before the response was written.
    Closed,
}

impl ReturnReason {
    /// The stable name in the audit entry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WriteFailed => "write_failed",
            Self::Cancelled => "cancelled",
            Self::Closed => "closed",
        }
    }
}

impl<S: Store> Bridge<S> {
    /// Marks the deliveries of `receipt` pending again because their response
    /// never reached the caller, and records that in the audit trail, in one
    /// transaction. Returns how many became pending again (0 if they had
    /// already been returned). No token is needed: the caller was
    /// authenticated when the delivery was made, and this only undoes it.
    pub async fn return_unread(&self, receipt: &Receipt, reason: ReturnReason) -> Result<u64> {
        let mut tx = self.store.begin_write().await?;
        let now = self.now();
        let mut total = 0;
        for part in &receipt.parts {
            let returned = tx
                .return_unread(
                    &part.conversation_id,
                    &part.session_id,
                    &part.seqs,
                    receipt.delivered_at,
                )
                .await?;
            if returned == 0 {
                continue;
            }
            total += returned;
            let entry = NewEntry {
                actor: format!("{}/{}", part.conversation_id, part.session_id),
                action: "message.returned".to_owned(),
                conversation_id: Some(part.conversation_id.clone()),
                detail: json!({
                    "returned": part.seqs,
                    "count": returned,
                    "reason": reason.as_str(),
                }),
            };
            self.audit(&mut tx, now, entry).await?;
        }
        if total > 0 {
            tx.commit().await?;
        }
        Ok(total)
    }
}
