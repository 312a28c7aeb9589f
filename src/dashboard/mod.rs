//! The overseer's web dashboard (issue 15): server-rendered pages to watch
//! agents coordinate live and step in, at [`PREFIX`].
//!
//! One router ([`router`]) serves two front doors: `mcp-bridge dashboard`
//! binds it on loopback for the human at this machine (login by a one-time
//! URL, actions audited as `dashboard`), and `serve --http` nests the same
//! router for `observer` and `admin` credentials (login by pasting the
//! credential; admins' actions audited as `agent:NAME`, observers only
//! watch). Which door is the [`Mode`].
//!
//! Like `cli/`, this module is thin: it calls the overseer's use cases in
//! `bridge/` and renders. What it must never do: put a token, credential
//! or unredacted secret into a page, a URL after login or a log line;
//! render agent text unescaped (maud escapes every interpolation; the CSP
//! forbids inline script besides); accept a change without the session's
//! CSRF token. Module map: `session` (login token, cookies, CSRF), `guard`
//! (Host check, headers, who is asking), `login`, `pages/` (one file per
//! page), `actions` (the step-in POSTs), `live` (server-sent events),
//! `assets/` (the CSS and the one script, embedded).

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::store::admin::FullStore;

mod actions;
mod guard;
mod live;
mod login;
mod pages;
pub mod session;

pub use session::{Sessions, Viewer, Who};

/// Where the dashboard lives, on both front doors.
pub const PREFIX: &str = "/ui";

/// Which front door serves the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `mcp-bridge dashboard`: one-time login URL, the local overseer.
    Local,
    /// `serve --http`: observer and admin credentials log in.
    Mounted,
}

/// What every handler shares.
pub struct Dashboard<S: FullStore> {
    /// The bridge, acting as `cli`; each request narrows it to its viewer
    /// ([`Dashboard::bridge_for`]).
    pub bridge: Bridge<S>,
    /// The front door.
    pub mode: Mode,
    /// Sessions and the login token.
    pub sessions: Sessions,
    /// `Host` values accepted (DNS rebinding): loopback names, the listen
    /// address, the operator's additions; an entry without a port matches
    /// any port.
    pub allowed_hosts: Vec<String>,
    /// Whether the pages are served over TLS (the cookie gets `Secure`).
    pub tls: bool,
    /// Cancelled when the server stops: live event streams end, so a
    /// graceful shutdown is not held open by a browser tab.
    pub stopping: CancellationToken,
    /// The last audit verification (see `pages::audit`).
    pub verified: pages::audit::LastVerified,
}

impl<S: FullStore> std::fmt::Debug for Dashboard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("mode", &self.mode)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl<S: FullStore> Dashboard<S> {
    /// A dashboard over `bridge`.
    pub fn new(
        bridge: Bridge<S>,
        mode: Mode,
        allowed_hosts: Vec<String>,
        tls: bool,
        stopping: CancellationToken,
    ) -> Self {
        Self {
            bridge,
            mode,
            sessions: Sessions::default(),
            allowed_hosts,
            tls,
            stopping,
            verified: std::sync::Mutex::new(None),
        }
    }

    /// The bridge acting for `viewer`: the overseer's changes are audited
    /// under the viewer's name (`dashboard` locally, `agent:NAME` mounted).
    pub fn bridge_for(&self, viewer: &Viewer) -> Bridge<S> {
        match &viewer.who {
            Who::Local => self.bridge.acting_as_dashboard(),
            Who::Agent(agent) => self.bridge.acting_for(agent),
        }
    }
}

/// The router as `serve --http` mounts it: credential login, the same
/// `Host` allow-list as `/mcp`, `Secure` cookies under TLS; live streams
/// end when `stopping` is cancelled.
pub fn mounted<S: FullStore>(
    bridge: Bridge<S>,
    options: &crate::http::HttpOptions,
    stopping: CancellationToken,
) -> Router {
    router(Arc::new(Dashboard::new(
        bridge,
        Mode::Mounted,
        options.host_allow_list(),
        options.tls.is_some(),
        stopping,
    )))
}

/// The dashboard's routes, all under [`PREFIX`] (nest the result at `/`
/// with `merge`, or serve it as is). Built once per server; `serve --http`
/// and `mcp-bridge dashboard` both call this.
pub fn router<S: FullStore>(state: Arc<Dashboard<S>>) -> Router {
    use axum::middleware::from_fn_with_state;
    let p = |path: &str| format!("{PREFIX}{path}");
    let private = Router::new()
        .route(&p("/"), get(pages::list::page::<S>))
        .route(&p("/conversations/{id}"), get(pages::conversation::page::<S>))
        .route(&p("/conversations/{id}/events"), get(live::events::<S>))
        .route(&p("/conversations/{id}/post"), post(actions::post_message::<S>))
        .route(&p("/conversations/{id}/close"), post(actions::close::<S>))
        .route(
            &p("/conversations/{id}/seats/{seat}/{action}"),
            post(actions::seat::<S>),
        )
        .route(&p("/audit"), get(pages::audit::page::<S>))
        .route(&p("/audit/verify"), post(pages::audit::verify::<S>))
        .route(&p("/proposals"), get(pages::proposals::page::<S>))
        .route(&p("/proposals/{id}/reject"), post(actions::reject::<S>))
        .route(&p("/stats"), get(pages::stats::page::<S>))
        .route(&p("/logout"), post(login::logout::<S>))
        .layer(from_fn_with_state(
            Arc::clone(&state),
            guard::require_session::<S>,
        ));
    Router::new()
        .route(
            PREFIX,
            get(|| async { axum::response::Redirect::to(&format!("{PREFIX}/")) }),
        )
        .route(&p("/login"), get(login::page::<S>).post(login::submit::<S>))
        .route(&p("/assets/app.js"), get(pages::assets::script))
        .route(&p("/assets/app.css"), get(pages::assets::style))
        .merge(private)
        .layer(from_fn_with_state(Arc::clone(&state), guard::check_host::<S>))
        .layer(axum::middleware::from_fn(guard::headers))
        .with_state(state)
}

#[cfg(test)]
mod tests;
