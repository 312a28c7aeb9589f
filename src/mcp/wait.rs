//! `check_messages` and `wait_for_messages`: the two tools that mark
//! messages read, so the two that must know whether their caller is still
//! there (see [`super::delivery`]).
//!
//! A wait is capped at [`MAX_WAIT_SECONDS`], below the 60 s after which
//! common clients give up on a request; while it waits it reports progress
//! to a client that asked for it (a `progressToken` in the request's
//! `_meta`), so a client that resets its timeout on progress never cuts a
//! wait short; and it stops at once when the request is cancelled.

use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ProgressNotificationParam};
use rmcp::service::RequestContext;

use super::render::{error_result, inbox_summary, render};
use super::tools::{CheckMessagesArgs, WaitArgs};
use super::{BridgeServer, args};
use crate::bridge::{self, Handed};
use crate::store::Store;
use crate::store::yolo::YoloTx;

/// The longest wait a call may ask for, in seconds. The TypeScript SDK's
/// default request timeout is 60 s (and others are alike); a wait that
/// outlived it would return to nobody. 55 s leaves room for the final
/// delivery and the response's trip. Mirrored in the tool's input schema.
pub const MAX_WAIT_SECONDS: u32 = 55;
const _: () = assert!(MAX_WAIT_SECONDS < 60, "clients give up on a request at 60 s");

/// How often a wait with a progress token reports progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

impl<S: Store> BridgeServer<S>
where
    S::Tx: YoloTx,
{
    /// `check_messages`: a peek, or a delivery the ledger follows until its
    /// response is written.
    pub(super) async fn check(
        &self,
        value: serde_json::Value,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let a = match args::deserialize::<CheckMessagesArgs>(value) {
            Ok(a) => a,
            Err(e) => return error_result(&e),
        };
        let auth = match self.access(a.conversation_id, a.session_id, a.token) {
            Ok(auth) => auth,
            Err(e) => return error_result(&e),
        };
        if a.peek {
            let result = self.bridge.peek_messages(auth).await;
            return render(result, |inbox| {
                inbox_summary(inbox.messages.len(), inbox.remaining, false)
            });
        }
        let to = self.ledger.recipient(context.id.clone(), context.ct.clone());
        let result = self.bridge.check_messages_for(auth, &to).await;
        let result = self.handed(result, &to);
        render(result, |inbox| {
            inbox_summary(inbox.messages.len(), inbox.remaining, true)
        })
    }

    /// `wait_for_messages`: like `check`, waiting up to the timeout, with
    /// progress notifications when the client asked for them.
    pub(super) async fn wait(
        &self,
        value: serde_json::Value,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let a = match args::deserialize::<WaitArgs>(value) {
            Ok(a) => a,
            Err(e) => return error_result(&e),
        };
        // The schema already refuses more; this keeps the cap if it changes.
        let seconds = a.timeout_seconds.min(MAX_WAIT_SECONDS);
        let timeout = Duration::from_secs(u64::from(seconds));
        let to = self.ledger.recipient(context.id.clone(), context.ct.clone());
        let wait = async {
            match (a.conversation_id, &self.identity) {
                (Some(id), _) => {
                    let auth = self.access(id, a.session_id, a.token)?;
                    self.bridge.wait_for_messages(auth, timeout, &to).await
                }
                // A registered agent may wait on every conversation it is in.
                (None, Some(agent)) if a.token.is_none() => {
                    self.bridge.wait_for_any(agent, timeout, &to).await
                }
                (None, _) => Err(bridge::Error::invalid("conversation_id", "is required")),
            }
        };
        let result = match context.meta.get_progress_token() {
            None => wait.await,
            Some(token) => {
                tokio::pin!(wait);
                let start = tokio::time::Instant::now();
                let mut ticks = tokio::time::interval_at(start + PROGRESS_EVERY, PROGRESS_EVERY);
                loop {
                    tokio::select! {
                        r = &mut wait => break r,
                        _ = ticks.tick() => {
                            let elapsed = start.elapsed().as_secs_f64().floor();
                            let mut p = ProgressNotificationParam::new(token.clone(), elapsed);
                            p.total = Some(f64::from(seconds));
                            p.message = Some("waiting for a message".into());
                            // A client that cannot take a notification will
                            // not take the response either; the wait goes on
                            // and the ledger decides.
                            let _ = context.peer.notify_progress(p).await;
                        }
                    }
                }
            }
        };
        let result = self.handed(result, &to);
        render(result, |w| {
            if w.timed_out {
                "No message arrived before the timeout.".to_owned()
            } else {
                inbox_summary(w.messages.len(), w.remaining, true)
            }
        })
    }

    /// Registers a committed delivery with the ledger and unwraps it.
    fn handed<T>(
        &self,
        result: bridge::Result<Handed<T>>,
        to: &super::delivery::CallRecipient,
    ) -> bridge::Result<T> {
        result.map(|h| {
            if let Some(receipt) = h.receipt {
                self.ledger.hand_over(to, receipt);
            }
            h.value
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tools::{TOOLS, WAIT_FOR_MESSAGES};
    use super::*;

    #[test]
    fn the_schema_caps_the_wait_at_the_same_limit_as_the_handler() {
        let tool = TOOLS.iter().find(|t| t.name == WAIT_FOR_MESSAGES).unwrap();
        let max = &tool.input_schema["properties"]["timeout_seconds"]["maximum"];
        assert_eq!(max.as_u64(), Some(u64::from(MAX_WAIT_SECONDS)));
    }
}
