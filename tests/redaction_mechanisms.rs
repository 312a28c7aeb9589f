//! Issue 12, session 5: the mechanisms that closed the blind corpora's
//! misses, and the smuggling attempts a hostile agent might make. Each
//! row is a variant written for its mechanism (other tools, vendors and
//! syntaxes than the corpus lines); fake values only. Helpers as in
//! `redaction_families.rs`.

use mcp_bridge::redact::Redactor;

/// Every `(text, secret, kind)` row: the secret is gone, the kind reported,
/// no 4-byte prefix or suffix of the secret left, and a second pass changes
/// nothing.
fn assert_redacted(rows: &[(&str, &str, &str)]) {
    let r = Redactor::builtin();
    for (text, secret, kind) in rows {
        assert!(text.contains(secret), "row does not contain its secret: {text}");
        let out = r.redact(text);
        assert!(
            !out.text.contains(secret),
            "{kind}: secret left in {:?}",
            out.text
        );
        if secret.len() >= 8 {
            let head = &secret[..4];
            let tail = &secret[secret.len() - 4..];
            let bare = strip_placeholders(&out.text);
            let leaked = |part: &str| bare.contains(part) && !text.replace(secret, "").contains(part);
            assert!(
                !leaked(head) && !leaked(tail),
                "{kind}: part of the secret left in {:?}",
                out.text
            );
        }
        assert!(
            out.kinds.iter().any(|k| k == kind),
            "{text:?}: kinds {:?}, want {kind}",
            out.kinds
        );
        assert_eq!(r.redact(&out.text).text, out.text, "not idempotent: {text}");
    }
}

/// The text with every `[REDACTED:kind]` removed, so a kind named after a
/// vendor prefix (`rubygems_token`) is not mistaken for a leak.
fn strip_placeholders(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("[REDACTED:") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find(']').map_or("", |j| &rest[i + j + 1..]);
    }
    out.push_str(rest);
    out
}

fn assert_untouched(rows: &[&str]) {
    let r = Redactor::builtin();
    for text in rows {
        let out = r.redact(text);
        assert_eq!(out.text, *text, "changed: kinds {:?}", out.kinds);
    }
}

/// Mechanisms of the session that read the blind corpora's misses (issue
/// 12): each row is a variant written for its mechanism, not a corpus
/// line (other tools, vendors and syntaxes).
#[test]
fn mechanisms_from_the_blind_misses() {
    assert_redacted(&[
        // setenv, SetEnv, set-environment.
        (
            "setenv CI_DEPLOY_PASSWORD Qm7#vL2xPz9k",
            "Qm7#vL2xPz9k",
            "password",
        ),
        (
            "tmux set-environment -g ROLLBAR_ACCESS_TOKEN 5f1c2b8e9d0a4f7b3c6e1d2a9b8c7f6e",
            "5f1c2b8e9d0a4f7b3c6e1d2a9b8c7f6e",
            "token",
        ),
        // Foreign noun-first keys.
        ("parola_server: Zr8!kq2LmX0p", "Zr8!kq2LmX0p", "password"),
        ("jelszo_admin=Hv5#pQ9xLm2w", "Hv5#pQ9xLm2w", "password"),
        (
            "токен_бота = \"7Gh2Kx9Lm4Np6Qr8St0Uv\"",
            "7Gh2Kx9Lm4Np6Qr8St0Uv",
            "token",
        ),
        // Qualifier after the key word.
        (
            "NEXMO_KEY_PRIVATE=Ab3dE5fG7hJ9kL1mN3pQ5rS7",
            "Ab3dE5fG7hJ9kL1mN3pQ5rS7",
            "secret",
        ),
        // `<`, `>` inside generated values.
        (
            "define('NONCE_SALT', 'k2<Q;x9>Zm!Lp4#vT8&wR1^yB6');",
            "k2<Q;x9>Zm!Lp4#vT8&wR1^yB6",
            "secret",
        ),
        // A token as a URL's user part; `/t/<token>/`.
        (
            "redis://Kx8mQ2vLp9zR4tW7yB1cN6dF@cache.internal:6379/0",
            "Kx8mQ2vLp9zR4tW7yB1cN6dF",
            "url_token",
        ),
        (
            "channels: [https://repo.example.org/t/Zq9Xv3Lm8Np2Rt6Wy1Bc/acme]",
            "Zq9Xv3Lm8Np2Rt6Wy1Bc",
            "url_token",
        ),
        // Tool flags and SQL.
        (
            "xfreerdp3 /v:10.0.0.9 /u:ops /p:\"Vd7!qL2#xZ9m\"",
            "Vd7!qL2#xZ9m",
            "password",
        ),
        (
            "CREATE USER metrics WITH PASSWORD 'Rt5#mW8qXz2L';",
            "Rt5#mW8qXz2L",
            "password",
        ),
        (
            "@moon.example.org : EAP \"Jk4%nB7vCx1Q\"",
            "Jk4%nB7vCx1Q",
            "password",
        ),
        // Calls whose secret is positional, pairs, password fields.
        (
            "token = jwt.encode(claims, b\"Lq8Zx3Vm9Np2Rt6Wy1Bc4Dk7\", algorithm=\"HS512\")",
            "Lq8Zx3Vm9Np2Rt6Wy1Bc4Dk7",
            "jwt_secret",
        ),
        (
            "const h = crypto.createHmac('sha256', 'Wq7Ex3Rt9Yu1Io5Pa2Sd8Fg').update(body)",
            "Wq7Ex3Rt9Yu1Io5Pa2Sd8Fg",
            "hmac_key",
        ),
        (
            "$dbh = new PDO($dsn, 'shop', 'Pz4!kW9qLm2x');",
            "Pz4!kW9qLm2x",
            "password",
        ),
        (
            "client = OpenSearch(hosts, http_auth=('admin', 'Os8#vK2pLq5z'))",
            "Os8#vK2pLq5z",
            "password",
        ),
        (
            "await page.type('#login-password', 'Tp6!rX3mQw9z');",
            "Tp6!rX3mQw9z",
            "password",
        ),
        // Tables, prose keys, cookies, prose credentials.
        (
            "| env | token |\n|---|---|\n| ci | Hb4Nk8Qz2Lm6Vx9Rt3Wy |",
            "Hb4Nk8Qz2Lm6Vx9Rt3Wy",
            "token",
        ),
        (
            "here is the signing secret 9fK2mQ7xLp4vZ8tR3wB6yN1c for the webhook",
            "9fK2mQ7xLp4vZ8tR3wB6yN1c",
            "secret",
        ),
        (
            "Set-Cookie: remember_user_token=Ab9Cd8Ef7Gh6Ij5Kl4Mn3Op2; HttpOnly",
            "Ab9Cd8Ef7Gh6Ij5Kl4Mn3Op2",
            "session_cookie",
        ),
        ("creds are ubuntu / Ub7#nT4qXz9w", "Ub7#nT4qXz9w", "password"),
        // Literal fallbacks and escaped-twice JSON.
        (
            "secret: process.env.SESSION_SECRET || 'Ss3Kq8Zx2Lm7Vn4Rt9Wy'",
            "Ss3Kq8Zx2Lm7Vn4Rt9Wy",
            "secret",
        ),
        (
            r#"msg="body=\"{\\\"api_key\\\": \\\"Ak7Zq2Xm9Lp4Vn8Rt3Wy\\\"}\"""#,
            "Ak7Zq2Xm9Lp4Vn8Rt3Wy",
            "api_key",
        ),
        // Encoded, and printed by a command.
        (
            "echo -n 'jenkins:Jk9#mQ2xLp7v' | base64 -w0",
            "Jk9#mQ2xLp7v",
            "password",
        ),
        (
            "$ gcloud secrets versions access latest --secret=db-pass\nGs5!vK8qLm2x",
            "Gs5!vK8qLm2x",
            "secret",
        ),
    ]);
    assert_untouched(&[
        "setenv EDITOR vim",
        "senha_minima: 12",
        "token_count   1234567890",
        "posthog.init('phc_Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9', {api_host: 'https://eu.i.posthog.com'})",
        "-----BEGIN RSA PRIVATE KEY-----\n<your key here>\n-----END RSA PRIVATE KEY-----",
        "untrusted comment: signify public key\nRWRCSwAAAABnL9x2hE7yQm3Kz8Vq1Lp4Tn6Wr0Xs2Yu5Zv7Aa9Bb",
        "jwt.encode(payload, key, algorithm=\"HS256\")",
        "await page.fill('#password', password);",
        "| name | type |\n|---|---|\n| password | string |",
        "Cookie: theme=dark; lang=en",
        "login page is /auth/login",
        "timeout = env.TIMEOUT || \"30\"",
        "$ echo aGVsbG8= | base64 -d\nhello",
        "$ kubectl get secrets\nNAME TYPE DATA AGE",
    ]);
}

/// A hostile agent hiding a secret from the rules: invisible characters,
/// lookalike letters, fullwidth forms, percent-encoding, line
/// continuations and string concatenation, YAML block scalars and
/// heredocs. The secret (or each of its parts) must still disappear.
#[test]
fn smuggling_attempts() {
    assert_redacted(&[
        (
            "token: ghp_\u{200b}Zq8XvL2mN4pR7sT1uW3yB6cDaaaaaaaaaaaa",
            "Zq8XvL2mN4pR7sT1uW3yB6cDaaaaaaaaaaaa",
            "github_token",
        ),
        ("pаsswоrd=Vr8#kQ2mLx9z", "Vr8#kQ2mLx9z", "password"),
        (
            "ＡＰＩ＿ＴＯＫＥＮ＝Wq7Ex3Rt9Yu1Io5Pa2",
            "Wq7Ex3Rt9Yu1Io5Pa2",
            "token",
        ),
        (
            "GET /cb?next=%7B%22client_secret%22%3A%22Cs4Vb8Nm2Qx7Lk9P%22%7D",
            "Cs4Vb8Nm2Qx7Lk9P",
            "secret",
        ),
        (
            "const key = 'sk_live_' + 'Zq8XvL2mN4pR7sT1uW3yB6cD';",
            "Zq8XvL2mN4pR7sT1uW3yB6cD",
            "stripe_key",
        ),
        (
            "export SLACK_TOKEN=xoxb-2817364\\\n-Zq8XvL2mN4pR7sT1uW3y",
            "Zq8XvL2mN4pR7sT1uW3y",
            "slack_token",
        ),
        (
            "auth:\n  password: |\n    Bk7#vQ2xLm9pZr4t\n  user: ci",
            "Bk7#vQ2xLm9pZr4t",
            "password",
        ),
        (
            "client_secret = <<EOT\nHx5Qm8Vz2Lp7Wk3Rt9Nb\nEOT",
            "Hx5Qm8Vz2Lp7Wk3Rt9Nb",
            "secret",
        ),
    ]);
    assert_untouched(&[
        "description: |\n  The password policy says 12 characters.\n",
        "cat <<EOF > token.txt\nhello\nEOF",
        "Name: \"Ivan\" + \" Petrov\"",
        "url: https://example.com/search?q=%22password%22",
        "пароль и токен хранятся в хранилище",
    ]);
}

/// Session 10: false positives found in this repository's own text by the
/// bench's typical messages. A usage synopsis names a flag's argument, it
/// does not hold one; a string closing one paragraph is not joined to a
/// string opening the next (the secret goes, the JSON after it stays).
#[test]
fn synopses_and_paragraphs_are_not_values() {
    assert_untouched(&[
        "| `mcp-bridge serve [--max-connections-per-credential N\\|off]` | serve |",
        "usage: tool [--password PASS] [--token TOKEN_FILE]... [--api-key KEY|none]",
    ]);
    assert_redacted(&[
        ("usage: tool [--password Vr8kQ2mLx9z]", "Vr8kQ2mLx9z", "password"),
        ("tool [--token S3CR3T7]", "S3CR3T7", "token"),
    ]);
    let text = "STRIPE_KEY=\"sk_live_Zq8XvL2mN4pR7sT1uW3yB6cD\"\n\n    \"node_modules/debug\": {\n      \"version\": \"4.4.3\"";
    let out = Redactor::builtin().redact(text);
    assert_eq!(
        out.text,
        "STRIPE_KEY=\"[REDACTED:stripe_key]\"\n\n    \"node_modules/debug\": {\n      \"version\": \"4.4.3\""
    );
}
