//! Samples written by a second author, independently of the rule table and
//! its generated corpus: each secret must disappear, each benign line must
//! come back unchanged. Fake values only.

use mcp_bridge::redact::Redactor;

const SECRETS: &[(&str, &str, &str)] = &[
    (
        "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzKEY9a8b7",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzKEY9a8b7",
        "aws_secret_key",
    ),
    (
        "DATABASE_URL=postgres://app:s3cr3tPw0rd@db.internal:5432/app",
        "s3cr3tPw0rd",
        "url_password",
    ),
    (
        "\"apiKey\": \"AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY\"",
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
        "google_api_key",
    ),
    (
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "dXNlcjpwYXNzd29yZA==",
        "basic_auth",
    ),
    (
        "token=xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "slack_token",
    ),
    (
        "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "npm_token",
    ),
    (
        "curl -u admin:Tr0ub4dor3 https://example.com",
        "Tr0ub4dor3",
        "password",
    ),
    ("mysql -uroot -pHunter2Secret! mydb", "Hunter2Secret!", "password"),
    (
        "my bridge token is mcpb_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdE ok",
        "mcpb_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdE",
        "bridge_token",
    ),
];

const BENIGN: &[&str] = &[
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "color: #ff00aa; version 1.2.3; task-runner; risk-free",
    "\"integrity\": \"sha512-3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed7e6dc881de23001b==\"",
    "image@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "the password field must not be empty",
    "password: ${DB_PASSWORD}",
    "api_key = os.environ[\"OPENAI_API_KEY\"]",
    "see https://docs.example.com/auth?token_type=bearer for details",
];

#[test]
fn independent_secrets_are_removed_with_their_kind() {
    let r = Redactor::builtin();
    for (text, secret, kind) in SECRETS {
        let out = r.redact(text);
        assert!(!out.text.contains(secret), "{kind} left in {:?}", out.text);
        assert!(
            out.kinds.iter().any(|k| k == kind),
            "{text:?}: kinds {:?}",
            out.kinds
        );
    }
}

#[test]
fn independent_benign_lines_are_untouched() {
    let r = Redactor::builtin();
    for text in BENIGN {
        let out = r.redact(text);
        assert_eq!(out.text, *text, "changed: kinds {:?}", out.kinds);
    }
}
