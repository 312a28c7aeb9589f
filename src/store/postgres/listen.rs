//! Wake-ups across servers: one dedicated connection per server `LISTEN`s
//! on [`CHANNEL`], which every committing write transaction `NOTIFY`s (see
//! `PgTx::commit`), and wakes the server's [`WakeSource`].
//!
//! The listening connection is not from the pool: it must stay open and
//! idle between notifications, and a pooled connection is shared. When it
//! is lost, the source is marked not live (waiters fall back to polling,
//! so nothing is missed for long), and it reconnects with a growing pause.
//! Like every wake-up, a notification is a hint; the rows stay the truth.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::store::wake::{Changes, WakeSource};

/// The channel writers notify; also spelled out in `PgTx::commit`.
pub(super) const CHANNEL: &str = "mcp_bridge_changes";

/// The longest pause between two attempts to reconnect the listener.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// A server's wake source and the task that feeds it; dropping the last
/// clone of the store stops the task and closes its connection.
#[derive(Debug)]
pub(super) struct Wake {
    source: WakeSource,
    task: Option<JoinHandle<()>>,
}

impl Drop for Wake {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Wake {
    /// Starts listening. Outside a Tokio runtime nothing can run the
    /// connection: the source then stays not live and waiters poll.
    pub(super) fn start(config: Arc<tokio_postgres::Config>, source: WakeSource) -> Self {
        let task = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Some(runtime.spawn(listen(config, source.clone()))),
            Err(_) => {
                tracing::warn!("no async runtime to listen for database notifications; waits poll instead");
                None
            }
        };
        Self { source, task }
    }

    /// A new subscription to the source.
    pub(super) fn subscribe(&self) -> Changes {
        self.source.subscribe()
    }
}

/// Keeps a listening connection up for as long as the task lives.
async fn listen(config: Arc<tokio_postgres::Config>, source: WakeSource) {
    let mut pause = Duration::from_millis(50);
    loop {
        match listen_once(&config, &source).await {
            Ok(()) => tracing::warn!("the database closed the notification connection; reconnecting"),
            Err(e) => {
                tracing::warn!(error = %e, "listening for database notifications failed; waits poll meanwhile")
            }
        }
        source.set_live(false);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// One connection's life: `LISTEN`, then a wake per notification until the
/// connection ends. Notifications that arrived while the connection was
/// down are lost, so the source wakes everyone once it is back.
async fn listen_once(
    config: &tokio_postgres::Config,
    source: &WakeSource,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection must be polled for LISTEN to complete, so both run
    // together until LISTEN answers.
    let statement = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    loop {
        tokio::select! {
            done = &mut listen => { done?; break; }
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
    source.set_live(true);
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(_))) => source.wake(),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        }
    }
}
