//! The dashboard's router in-process (`tower::ServiceExt::oneshot`): the
//! refusals (no cookie, reused login token, missing or wrong CSRF token,
//! wrong Host, another Origin, an observer stepping in), the headers on
//! every answer, escaping of hostile agent text, and that a confirmed
//! action really happens. In a real browser: `e2e/test_dashboard.py`.

use std::ops::Deref;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::session::{LOGIN_COOKIE, SESSION_COOKIE};
use super::{Dashboard, Mode, router};
use crate::auth::{ServerKey, SessionToken};
use crate::bridge::{Auth, Bridge, CreateRequest, ListFilter, LiveState, SendRequest, SessionId};
use crate::clock::SystemClock;
use crate::config::Limits;
use crate::redact::Redactor;
use crate::store::SqliteStore;
use crate::store::agents::AgentRole;
use crate::store::sqlite::OpenMode;

struct Env {
    bridge: Bridge<SqliteStore>,
    state: Arc<Dashboard<SqliteStore>>,
    app: axum::Router,
    conversation: String,
    _dir: tempfile::TempDir,
}

const HOSTILE: &str = "<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))";

async fn env(mode: Mode) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("b.db"), OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let bridge = Bridge::new(
        store,
        ServerKey::from_bytes([9; 32]),
        Redactor::builtin(),
        Limits::default(),
        Arc::new(SystemClock),
    );
    let created = bridge
        .create_conversation(CreateRequest::pair("planner", "coder"))
        .await
        .unwrap();
    let auth = Auth {
        conversation_id: created.conversation_id.clone(),
        session_id: SessionId::parse("a").unwrap(),
        token: SessionToken::from_presented(&created.session_a_token.unwrap()),
    };
    bridge
        .send_message(SendRequest::to_all(auth, HOSTILE))
        .await
        .unwrap();
    let state = Arc::new(Dashboard::new(
        bridge.clone(),
        mode,
        vec!["localhost".into(), "127.0.0.1".into()],
        false,
        CancellationToken::new(),
    ));
    Env {
        app: router(Arc::clone(&state)),
        bridge,
        state,
        conversation: created.conversation_id,
        _dir: dir,
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path).header(header::HOST, "127.0.0.1:8751");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::empty()).unwrap()
}

fn post(path: &str, cookie: Option<&str>, form: &str) -> Request<Body> {
    let mut r = Request::post(path)
        .header(header::HOST, "127.0.0.1:8751")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::from(form.to_owned())).unwrap()
}

async fn text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// Logs in locally; returns the cookie header and the session's CSRF token.
async fn local_login(e: &Env) -> (String, String) {
    let token = e.state.sessions.issue_login_token();
    let r = e
        .app
        .clone()
        .oneshot(get(&format!("/ui/login?token={token}"), None))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        "/ui/",
        "the token is gone from the URL"
    );
    let cookie = set_cookie(&r, SESSION_COOKIE).expect("a session cookie");
    let csrf = e
        .state
        .sessions
        .viewer(cookie.split_once('=').unwrap().1)
        .unwrap()
        .csrf;
    (cookie, csrf)
}

async fn state_of(e: &Env) -> LiveState {
    e.bridge.list_conversations(ListFilter::All).await.unwrap()[0].state
}

#[tokio::test]
async fn the_login_token_is_single_use() {
    let e = env(Mode::Local).await;
    let token = e.state.sessions.issue_login_token();
    let url = format!("/ui/login?token={token}");
    let first = e.app.clone().oneshot(get(&url, None)).await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&first, SESSION_COOKIE).unwrap();
    let set = first.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let again = e.app.clone().oneshot(get(&url, None)).await.unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&again, SESSION_COOKIE).is_none());
    let page = e.app.clone().oneshot(get("/ui/", Some(&cookie))).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        !text(page).await.contains(&token),
        "the login token never appears in a page"
    );
}

#[tokio::test]
async fn without_a_session_pages_redirect_and_changes_are_refused() {
    let e = env(Mode::Local).await;
    let r = e.app.clone().oneshot(get("/ui/", None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/ui/login");
    let r = e
        .app
        .clone()
        .oneshot(get("/ui/", Some(&format!("{SESSION_COOKIE}=made-up"))))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let close = format!("/ui/conversations/{}/close", e.conversation);
    let r = e
        .app
        .clone()
        .oneshot(post(&close, None, "confirm=yes"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let events = format!("/ui/conversations/{}/events", e.conversation);
    let r = e.app.clone().oneshot(get(&events, None)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(state_of(&e).await, LiveState::Active);
}

#[tokio::test]
async fn a_change_needs_the_csrf_token_and_a_confirmation() {
    let e = env(Mode::Local).await;
    let (cookie, csrf) = local_login(&e).await;
    let close = format!("/ui/conversations/{}/close", e.conversation);
    for form in [
        "confirm=yes".to_owned(),
        "confirm=yes&csrf=wrong".to_owned(),
        "csrf=".to_owned(),
    ] {
        let r = e
            .app
            .clone()
            .oneshot(post(&close, Some(&cookie), &form))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{form}");
        assert!(text(r).await.contains("CSRF"));
    }
    let r = e
        .app
        .clone()
        .oneshot(post(&close, Some(&cookie), &format!("csrf={csrf}")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the confirmation page");
    assert!(text(r).await.contains("name=\"confirm\" value=\"yes\""));
    assert_eq!(
        state_of(&e).await,
        LiveState::Active,
        "nothing happens before the confirmation"
    );
    let r = e
        .app
        .clone()
        .oneshot(post(&close, Some(&cookie), &format!("csrf={csrf}&confirm=yes")))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "a confirmation without its page's intent"
    );
    assert_eq!(state_of(&e).await, LiveState::Active);
    let intent = e.state.sessions.issue_intent();
    let answer = format!("csrf={csrf}&confirm=yes&intent={intent}");
    let r = e
        .app
        .clone()
        .oneshot(post(&close, Some(&cookie), &answer))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(state_of(&e).await, LiveState::Closed);
    let again = e
        .app
        .clone()
        .oneshot(post(&close, Some(&cookie), &answer))
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CONFLICT,
        "a resubmitted answer does not act again"
    );
    let trail = e
        .bridge
        .audit_entries(&Default::default(), 0, 1000)
        .await
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|x| x.action == "conversation.close" && x.actor == "dashboard"),
        "the local overseer's close is audited as dashboard"
    );
}

#[tokio::test]
async fn the_overseers_post_needs_the_csrf_token_and_is_audited_as_dashboard() {
    let e = env(Mode::Local).await;
    let (cookie, csrf) = local_login(&e).await;
    let path = format!("/ui/conversations/{}/post", e.conversation);
    let r = e
        .app
        .clone()
        .oneshot(post(&path, Some(&cookie), "confirm=yes&message=hello"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = e
        .app
        .clone()
        .oneshot(post(
            &path,
            Some(&cookie),
            &format!(
                "csrf={csrf}&confirm=yes&message=hello+agents&intent={}",
                e.state.sessions.issue_intent()
            ),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let shown = e.bridge.show_conversation(&e.conversation, 1).await.unwrap();
    let posted = &shown.messages_after[0];
    assert_eq!(
        (posted.from_role.as_str(), posted.body.as_str()),
        ("overseer", "hello agents")
    );
    let trail = e
        .bridge
        .audit_entries(&Default::default(), 0, 1000)
        .await
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|x| x.action == "overseer.post" && x.actor == "dashboard")
    );
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused() {
    let e = env(Mode::Local).await;
    let (cookie, csrf) = local_login(&e).await;
    let r = e
        .app
        .clone()
        .oneshot(
            Request::get("/ui/")
                .header(header::HOST, "attacker.example")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut req = post(
        &format!("/ui/conversations/{}/close", e.conversation),
        Some(&cookie),
        &format!("csrf={csrf}&confirm=yes"),
    );
    req.headers_mut()
        .insert(header::ORIGIN, "http://attacker.example".parse().unwrap());
    let r = e.app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(state_of(&e).await, LiveState::Active);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let e = env(Mode::Local).await;
    let (cookie, _) = local_login(&e).await;
    for path in [
        "/ui/",
        "/ui/login",
        "/ui/assets/app.js",
        "/ui/audit",
        "/ui/stats",
        "/ui/proposals",
    ] {
        let r = e.app.clone().oneshot(get(path, Some(&cookie))).await.unwrap();
        let h = r.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], super::guard::CSP, "{path}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert!(
            r.status() == StatusCode::OK || r.status() == StatusCode::UNAUTHORIZED,
            "{path}: {}",
            r.status()
        );
    }
}

#[tokio::test]
async fn hostile_agent_text_is_escaped() {
    let e = env(Mode::Local).await;
    let (cookie, _) = local_login(&e).await;
    let page = text(
        e.app
            .clone()
            .oneshot(get(
                &format!("/ui/conversations/{}", e.conversation),
                Some(&cookie),
            ))
            .await
            .unwrap(),
    )
    .await;
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(!page.contains("href=\"javascript:"), "{page}");
}

#[tokio::test]
async fn an_observer_watches_and_an_admin_steps_in() {
    let e = env(Mode::Mounted).await;
    let observer = e.bridge.add_agent("watcher", AgentRole::Observer).await.unwrap();
    let admin = e.bridge.add_agent("boss", AgentRole::Admin).await.unwrap();
    let agent = e.bridge.add_agent("worker", AgentRole::Agent).await.unwrap();
    let login = |credential: String| {
        let app = e.app.clone();
        async move {
            let form = app.clone().oneshot(get("/ui/login", None)).await.unwrap();
            let nonce = set_cookie(&form, LOGIN_COOKIE).unwrap();
            let value = nonce.split_once('=').unwrap().1.to_owned();
            app.oneshot(post(
                "/ui/login",
                Some(&nonce),
                &format!("login_csrf={value}&credential={credential}"),
            ))
            .await
            .unwrap()
        }
    };
    // The form without its cookie is refused (login CSRF).
    let r = e
        .app
        .clone()
        .oneshot(post(
            "/ui/login",
            None,
            &format!("login_csrf=x&credential={}", &*admin.credential),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = login(agent.credential.deref().to_owned()).await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "an agent credential cannot open the dashboard"
    );
    let r = login(observer.credential.deref().to_owned()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&r, SESSION_COOKIE).unwrap();
    let csrf = e
        .state
        .sessions
        .viewer(cookie.split_once('=').unwrap().1)
        .unwrap()
        .csrf;
    let page = text(
        e.app
            .clone()
            .oneshot(get(
                &format!("/ui/conversations/{}", e.conversation),
                Some(&cookie),
            ))
            .await
            .unwrap(),
    )
    .await;
    assert!(
        !page.contains("Close this conversation"),
        "an observer sees no step-in buttons"
    );
    let close = format!("/ui/conversations/{}/close", e.conversation);
    let r = e
        .app
        .clone()
        .oneshot(post(&close, Some(&cookie), &format!("csrf={csrf}&confirm=yes")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(state_of(&e).await, LiveState::Active);

    let r = login(admin.credential.deref().to_owned()).await;
    let cookie = set_cookie(&r, SESSION_COOKIE).unwrap();
    let csrf = e
        .state
        .sessions
        .viewer(cookie.split_once('=').unwrap().1)
        .unwrap()
        .csrf;
    let r = e
        .app
        .clone()
        .oneshot(post(
            &close,
            Some(&cookie),
            &format!(
                "csrf={csrf}&confirm=yes&intent={}",
                e.state.sessions.issue_intent()
            ),
        ))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(state_of(&e).await, LiveState::Closed);
    let trail = e
        .bridge
        .audit_entries(&Default::default(), 0, 1000)
        .await
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|x| x.action == "conversation.close" && x.actor == "agent:boss"),
        "the admin's close is audited under its name"
    );
    assert!(
        trail
            .iter()
            .any(|x| x.actor == "agent:watcher" && x.action.ends_with(".refused"))
    );

    // Revoking the admin ends its session at once.
    e.bridge.revoke_agent("boss").await.unwrap();
    let r = e.app.clone().oneshot(get("/ui/", Some(&cookie))).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/ui/login");
}
