//! Following each delivery until its response is written, and taking it
//! back when it is not.
//!
//! `check_messages` and `wait_for_messages` mark messages read when they
//! commit. Before commit the bridge asks the call's [`CallRecipient`]
//! whether the caller is still there (the request was not cancelled, the
//! connection is open) and rolls back if not. After commit three things can
//! still keep the response from the client:
//!
//! 1. a `notifications/cancelled` for the request arrives before rmcp has
//!    handed the response to the transport: rmcp then drops the response;
//! 2. writing the response fails (the client closed its end of the pipe);
//! 3. the connection ends first (rmcp stops writing after its drain timeout,
//!    or the process exits).
//!
//! The [`Ledger`] holds the [`Receipt`] of every committed delivery, keyed by
//! request id, until the transport reports the response written; the
//! [`Tracked`] transport wrapper sees every outgoing response and every
//! incoming cancellation in the order rmcp's service loop processes them,
//! so it knows which of the three happened. In each case the receipt goes to
//! [`Bridge::return_unread`], which marks exactly those deliveries pending
//! again in one audited transaction: the next check returns them.
//!
//! What remains: "written" means the whole response reached the operating
//! system's pipe (or socket) buffer. A client that dies after that but
//! before reading it loses the response; `read_history` still shows it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{ClientNotification, JsonRpcMessage, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bridge::{Bridge, Receipt, Recipient, ReturnReason};
use crate::store::Store;

/// How long [`Ledger::settle`] waits for deliveries still committing when
/// the connection ends. Each is one short transaction; this only bounds a
/// database stuck past its busy timeout.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Takes a delivery back: [`Bridge::return_unread`], behind a type that
/// does not carry the store's type parameter.
type Returner = Arc<dyn Fn(Receipt, ReturnReason) -> BoxedReturn + Send + Sync>;

/// What a [`Returner`] returns.
type BoxedReturn = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// One connection's deliveries whose responses are not written yet.
#[derive(Clone)]
pub struct Ledger {
    state: Arc<Mutex<State>>,
    /// Flips to true when the connection's input ends or it is closed.
    closed: watch::Sender<bool>,
    /// Counts deliveries still between start and [`Ledger::hand_over`].
    active: watch::Sender<usize>,
    returner: Returner,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    pending: HashMap<RequestId, Pending>,
    /// Calls whose delivery is in progress (a [`CallRecipient`] lives), and
    /// whether a cancellation for them has been seen. Only these can be
    /// cancelled before they register, so a reused request id never
    /// inherits an old cancellation.
    live: HashMap<RequestId, bool>,
    /// Returns in progress, awaited by [`Ledger::settle`].
    returns: JoinSet<()>,
}

struct Pending {
    receipt: Receipt,
    /// The transport has been handed the response.
    in_flight: bool,
}

impl Ledger {
    /// A ledger whose returns go to `bridge`.
    pub fn new<S: Store>(bridge: Bridge<S>) -> Self {
        let returner: Returner = Arc::new(move |receipt, reason| {
            let bridge = bridge.clone();
            Box::pin(async move {
                match bridge.return_unread(&receipt, reason).await {
                    Ok(n) => tracing::info!(
                        returned = n,
                        reason = reason.as_str(),
                        "a response never reached its client; its messages are unread again"
                    ),
                    Err(e) => tracing::error!(
                        error = %e,
                        "could not mark undelivered messages unread; they remain readable through read_history"
                    ),
                }
            })
        });
        Self {
            state: Arc::new(Mutex::new(State::default())),
            closed: watch::Sender::new(false),
            active: watch::Sender::new(0),
            returner,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves the maps consistent (every
        // change is one insert or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The recipient of a call with request `id`, cancelled by rmcp through
    /// `ct`. While it lives, [`Ledger::settle`] waits for it.
    pub fn recipient(&self, id: RequestId, ct: CancellationToken) -> CallRecipient {
        self.active.send_modify(|n| *n += 1);
        self.lock().live.insert(id.clone(), false);
        CallRecipient {
            id,
            ct,
            closed: self.closed.subscribe(),
            ledger: self.clone(),
        }
    }

    /// Registers a committed delivery until its response is written. If the
    /// request was cancelled meanwhile, rmcp will drop the response: the
    /// delivery is returned at once.
    pub fn hand_over(&self, to: &CallRecipient, receipt: Receipt) {
        let mut state = self.lock();
        let cancelled = to.ct.is_cancelled() || state.live.get(&to.id).copied().unwrap_or(false);
        if cancelled {
            self.spawn_return(&mut state, receipt, ReturnReason::Cancelled);
        } else {
            state.pending.insert(
                to.id.clone(),
                Pending {
                    receipt,
                    in_flight: false,
                },
            );
        }
    }

    fn spawn_return(&self, state: &mut State, receipt: Receipt, reason: ReturnReason) {
        let fut = (self.returner)(receipt, reason);
        state.returns.spawn(fut);
    }

    /// The transport is about to write the response to `id`. Returns the
    /// guard that settles the delivery once the write ends, if it carries one.
    fn writing(&self, id: &RequestId) -> Option<WriteGuard> {
        let mut state = self.lock();
        let pending = state.pending.get_mut(id)?;
        pending.in_flight = true;
        Some(WriteGuard {
            ledger: self.clone(),
            id: id.clone(),
            done: false,
        })
    }

    /// The write of the response to `id` ended: delivered, or not.
    fn written(&self, id: &RequestId, ok: bool) {
        let mut state = self.lock();
        if let Some(p) = state.pending.remove(id)
            && !ok
        {
            self.spawn_return(&mut state, p.receipt, ReturnReason::WriteFailed);
        }
    }

    /// A `notifications/cancelled` for `id` arrived. If its response is
    /// registered and not yet handed to the transport, rmcp will drop it.
    fn cancelled(&self, id: RequestId) {
        let mut state = self.lock();
        match state.pending.get(&id) {
            Some(p) if !p.in_flight => {
                if let Some(p) = state.pending.remove(&id) {
                    self.spawn_return(&mut state, p.receipt, ReturnReason::Cancelled);
                }
            }
            Some(_) => {}
            None => {
                if let Some(cancelled) = state.live.get_mut(&id) {
                    *cancelled = true;
                }
            }
        }
    }

    /// The connection's input ended: every wait stops and nothing more is
    /// marked read. Responses already committed may still be written
    /// during rmcp's drain; [`Ledger::settle`] takes back the rest.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Once the service has stopped: waits for deliveries still committing,
    /// returns every delivery whose response was not written, and waits for
    /// the returns to commit. Call before the process exits.
    pub async fn settle(&self) {
        self.close();
        let mut active = self.active.subscribe();
        if tokio::time::timeout(SETTLE_TIMEOUT, active.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!("deliveries still in progress at shutdown; they roll back with the process");
        }
        let mut returns = {
            let mut state = self.lock();
            let unwritten: Vec<_> = state.pending.drain().map(|(_, p)| p.receipt).collect();
            for receipt in unwritten {
                self.spawn_return(&mut state, receipt, ReturnReason::Closed);
            }
            std::mem::take(&mut state.returns)
        };
        while returns.join_next().await.is_some() {}
    }
}

/// The recipient of one `check_messages` or `wait_for_messages` call: gone
/// when rmcp cancels the request (a `notifications/cancelled`, or the
/// service shutting down) or the connection's input ends.
pub struct CallRecipient {
    id: RequestId,
    ct: CancellationToken,
    closed: watch::Receiver<bool>,
    ledger: Ledger,
}

impl Drop for CallRecipient {
    fn drop(&mut self) {
        self.ledger.lock().live.remove(&self.id);
        self.ledger.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Recipient for CallRecipient {
    fn is_gone(&self) -> bool {
        self.ct.is_cancelled()
            || *self.closed.borrow()
            || self.ledger.lock().live.get(&self.id).copied().unwrap_or(false)
    }

    async fn gone(&self) {
        let mut closed = self.closed.clone();
        tokio::select! {
            () = self.ct.cancelled() => {}
            _ = closed.wait_for(|c| *c) => {}
        }
    }
}

/// Settles one response write: written, failed, or abandoned (dropped).
struct WriteGuard {
    ledger: Ledger,
    id: RequestId,
    done: bool,
}

impl WriteGuard {
    fn finish(mut self, ok: bool) {
        self.done = true;
        self.ledger.written(&self.id, ok);
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        if !self.done {
            // The write was abandoned (rmcp gave up draining): the response
            // may be half written, which no client can parse.
            self.ledger.written(&self.id, false);
        }
    }
}

/// A transport that reports to a [`Ledger`] which responses were written
/// and which requests were cancelled or abandoned. Everything else passes
/// through unchanged.
pub struct Tracked<T> {
    inner: T,
    ledger: Ledger,
}

impl<T> Tracked<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, ledger: Ledger) -> Self {
        Self { inner, ledger }
    }
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for Tracked<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        // This runs synchronously in rmcp's service loop, in the order the
        // loop processes events, so a cancellation seen by `receive` before
        // this call really did make rmcp drop the response.
        let guard = match &item {
            JsonRpcMessage::Response(r) => self.ledger.writing(&r.id),
            _ => None,
        };
        let write = self.inner.send(item);
        async move {
            let result = write.await;
            if let Some(g) = guard {
                g.finish(result.is_ok());
            }
            result
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let message = self.inner.receive().await;
        match &message {
            None => self.ledger.close(),
            Some(JsonRpcMessage::Notification(n)) => {
                if let ClientNotification::CancelledNotification(c) = &n.notification
                    && let Some(id) = &c.params.request_id
                {
                    self.ledger.cancelled(id.clone());
                }
            }
            Some(_) => {}
        }
        message
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.ledger.close();
        self.inner.close().await
    }
}
