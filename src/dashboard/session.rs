//! Who is looking: the one-time login token of `mcp-bridge dashboard`, the
//! session cookies it and a pasted credential are exchanged for, and the
//! CSRF token each session carries.
//!
//! Invariants kept here: every secret is 256 random bits; only its SHA-256
//! is kept in memory, so a heap dump shows no live cookie; lookups compare
//! hashes, which leak nothing useful through timing (an attacker would need
//! a preimage); the login token works once; sessions expire
//! ([`SESSION_TTL`]) and there are at most [`MAX_SESSIONS`]. Nothing here
//! is ever logged or rendered except a session's own CSRF token, into its
//! own pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::bridge::AgentIdentity;
use crate::clock::Millis;
use crate::store::agents::AgentRole;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mcpb_dash";

/// The cookie that binds the credential login form to the browser that
/// fetched it (double submit: the form's hidden field must match it).
pub const LOGIN_COOKIE: &str = "mcpb_login";

/// How long a session lasts after login: a working day. The overseer logs
/// in again after it (a new `dashboard` URL, or the credential again).
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The most sessions kept at once; the oldest goes first. Each needs a
/// login token or a valid observer/admin credential, so this only bounds
/// memory against a credential holder that logs in in a loop.
pub const MAX_SESSIONS: usize = 256;

/// How long a confirmation page's intent stays usable.
pub const INTENT_TTL: Duration = Duration::from_secs(600);

/// The most unconfirmed intents kept; the oldest goes first.
pub const MAX_INTENTS: usize = 1024;

/// A fresh random secret: 256 bits, URL-safe base64 (43 characters).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Who a session belongs to.
#[derive(Clone, Debug)]
pub enum Who {
    /// The human who started `mcp-bridge dashboard` on this machine: acts
    /// as the overseer, audited as `dashboard`.
    Local,
    /// A registered observer or admin credential pasted at `/ui/login` on
    /// `serve --http`: audited as `agent:NAME`.
    Agent(Arc<AgentIdentity>),
}

/// A logged-in browser, as a request sees it.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// Whose session it is.
    pub who: Who,
    /// The session's CSRF token, put into every form it is shown.
    pub csrf: String,
    /// When the session began (a registered agent's session ends if its
    /// credential is rotated after this).
    pub since: Millis,
}

impl Viewer {
    /// Whether this viewer may step in (post, close, revoke, rotate,
    /// reject): the local overseer and admins; observers only watch.
    pub fn can_act(&self) -> bool {
        match &self.who {
            Who::Local => true,
            Who::Agent(a) => a.role == AgentRole::Admin,
        }
    }

    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }

    /// A short label for the page header (never a credential).
    pub fn label(&self) -> String {
        match &self.who {
            Who::Local => "overseer (local)".to_owned(),
            Who::Agent(a) => format!("{} ({})", a.name, a.role),
        }
    }
}

struct Session {
    viewer: Viewer,
    expires: Instant,
}

/// The sessions of one dashboard, and its one-time login token.
#[derive(Default)]
pub struct Sessions {
    /// By SHA-256 of the cookie value. A `std` mutex: nothing awaits while
    /// it is held.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// The login token's hash until it is used.
    login: Mutex<Option<[u8; 32]>>,
    /// Confirmation pages shown and not yet acted on, by hash, with their
    /// expiry: an action runs once per confirmation, so a reloaded or
    /// resubmitted answer (the rotated-token page) does not act again.
    intents: Mutex<HashMap<[u8; 32], Instant>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions([redacted])")
    }
}

impl Sessions {
    /// Issues the one-time login token (replacing any unused one) and
    /// returns it in clear, for the URL the command prints.
    pub fn issue_login_token(&self) -> String {
        let token = random_secret();
        *lock(&self.login) = Some(digest(&token));
        token
    }

    /// Consumes the login token: true exactly once for the issued token.
    pub fn redeem_login_token(&self, presented: &str) -> bool {
        let mut login = lock(&self.login);
        let ok = login
            .as_ref()
            .is_some_and(|h| bool::from(h.ct_eq(&digest(presented))));
        if ok {
            *login = None;
        }
        ok
    }

    /// Starts a session for `who` at `since`; returns the cookie value (in
    /// clear, once).
    pub fn start(&self, who: Who, since: Millis) -> String {
        let cookie = random_secret();
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            digest(&cookie),
            Session {
                viewer: Viewer {
                    who,
                    csrf: random_secret(),
                    since,
                },
                expires: now + SESSION_TTL,
            },
        );
        cookie
    }

    /// The viewer of a live session cookie.
    pub fn viewer(&self, cookie: &str) -> Option<Viewer> {
        let mut sessions = lock(&self.sessions);
        let key = digest(cookie);
        match sessions.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.viewer.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Issues the single-use intent a confirmation page carries.
    pub fn issue_intent(&self) -> String {
        let intent = random_secret();
        let now = Instant::now();
        let mut intents = lock(&self.intents);
        intents.retain(|_, exp| *exp > now);
        if intents.len() >= MAX_INTENTS
            && let Some(oldest) = intents.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k)
        {
            intents.remove(&oldest);
        }
        intents.insert(digest(&intent), now + INTENT_TTL);
        intent
    }

    /// Consumes an intent: true once for each issued, unexpired intent.
    pub fn redeem_intent(&self, presented: &str) -> bool {
        lock(&self.intents)
            .remove(&digest(presented))
            .is_some_and(|exp| exp > Instant::now())
    }

    /// Ends a session (logout).
    pub fn end(&self, cookie: &str) {
        lock(&self.sessions).remove(&digest(cookie));
    }
}

/// A poisoned lock only means another request panicked mid-update of a
/// map whose every state is valid: carry on with it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, scoped to the
/// dashboard's path, `Secure` when served over TLS. `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={}; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        super::PREFIX,
        max_age.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_token_works_once_and_only_itself() {
        let s = Sessions::default();
        let token = s.issue_login_token();
        assert_eq!(token.len(), 43);
        assert!(!s.redeem_login_token("not it"));
        assert!(s.redeem_login_token(&token));
        assert!(!s.redeem_login_token(&token), "a login token is single-use");
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends() {
        let s = Sessions::default();
        let c = s.start(Who::Local, 0);
        let v = s.viewer(&c).expect("live session");
        assert!(v.can_act());
        assert!(v.csrf_matches(Some(&v.csrf)));
        assert!(!v.csrf_matches(Some("x")));
        assert!(!v.csrf_matches(None));
        assert!(s.viewer("other").is_none());
        s.end(&c);
        assert!(s.viewer(&c).is_none());
    }

    #[test]
    fn an_intent_is_redeemed_once() {
        let s = Sessions::default();
        let i = s.issue_intent();
        assert!(!s.redeem_intent("other"));
        assert!(s.redeem_intent(&i));
        assert!(!s.redeem_intent(&i), "a confirmation acts once");
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let first = s.start(Who::Local, 0);
        for _ in 0..MAX_SESSIONS {
            s.start(Who::Local, 0);
        }
        assert!(s.viewer(&first).is_none(), "the oldest session is dropped");
        assert_eq!(lock(&s.sessions).len(), MAX_SESSIONS);
    }

    #[test]
    fn cookies_are_parsed_and_set_strictly() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; mcpb_dash=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        let set = set_cookie(SESSION_COOKIE, "v", SESSION_TTL, false);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"));
        assert!(set_cookie(SESSION_COOKIE, "v", SESSION_TTL, true).ends_with("; Secure"));
    }
}
