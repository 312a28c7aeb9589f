//! Table-driven unit tests for the redaction engine.

use super::*;

/// The next value of a 64-bit linear congruential generator: the
/// deterministic stream the engine's differential tests build texts from
/// (no crate, no seed file; the high bits are the good ones).
pub(in crate::redact) fn next_random(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state
}

/// Deterministic fake-key material (never a real credential).
fn fake(alphabet: &str, len: usize, seed: u64) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chars[(x % chars.len() as u64) as usize]
        })
        .collect()
}

const B62: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &str = "0123456789abcdef";

#[test]
fn positive_table() {
    let b62 = |n, s| fake(B62, n, s);
    let hex = |n, s| fake(HEX, n, s);
    let cases: Vec<(String, &str, String)> = vec![
        (
            format!("key AKIA{}", "Q7ZX2MNB4KLP9RTW"),
            "aws_access_key",
            "AKIAQ7ZX2MNB4KLP9RTW".into(),
        ),
        (
            format!("token ghp_{}", b62(36, 1)),
            "github_token",
            format!("ghp_{}", b62(36, 1)),
        ),
        (
            format!("sk-proj-{}", b62(60, 2)),
            "openai_key",
            format!("sk-proj-{}", b62(60, 2)),
        ),
        (
            format!("x sk-ant-api03-{}AA", b62(90, 3)),
            "anthropic_key",
            format!("sk-ant-api03-{}AA", b62(90, 3)),
        ),
        (
            format!("mcpb_{} end", b62(43, 4)),
            "bridge_token",
            format!("mcpb_{}", b62(43, 4)),
        ),
        (
            format!("dop_v1_{}", hex(64, 5)),
            "digitalocean_token",
            format!("dop_v1_{}", hex(64, 5)),
        ),
        ("password=hunter2xyz!".into(), "password", "hunter2xyz!".into()),
        (
            "DB_PASSWORD=supersecretvalue".into(),
            "password",
            "supersecretvalue".into(),
        ),
        (
            r#"{"api_key": "Zx81kQ0pLm3vT7"}"#.into(),
            "api_key",
            "Zx81kQ0pLm3vT7".into(),
        ),
        (
            "postgres://app:S3cr3tPw@db:5432/app".into(),
            "url_password",
            "S3cr3tPw".into(),
        ),
        (
            format!("Authorization: Bearer {}", b62(32, 6)),
            "bearer_token",
            b62(32, 6),
        ),
        ("mysql -u root -pS3cr3t!x".into(), "password", "S3cr3t!x".into()),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\ndef\n-----END RSA PRIVATE KEY-----".into(),
            "private_key",
            "MIIEabc".into(),
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\nAAAA".into(),
            "private_key",
            "b3BlbnNzaC1rZXktdjEAAAA".into(),
        ),
    ];
    for (text, kind, secret) in cases {
        let r = Redactor::builtin().redact(&text);
        assert!(r.changed(), "not redacted: {text}");
        assert!(!r.text.contains(&secret), "secret survived in {:?}", r.text);
        assert!(
            r.kinds.iter().any(|k| k == kind),
            "kinds {:?} for {text}",
            r.kinds
        );
        assert_eq!(redact(&r.text), r.text, "not idempotent: {text}");
    }
}

#[test]
fn keeps_key_name() {
    assert_eq!(redact("password=hunter2xyz!"), "password=[REDACTED:password]");
    assert_eq!(
        redact("url postgres://app:S3cr3tPw@db/app"),
        "url postgres://app:[REDACTED:url_password]@db/app"
    );
}

#[test]
fn negative_table() {
    let cases = [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b fixes it",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "password: ${DB_PASSWORD}",
        "password=<your-password>",
        r#"token: "{{ .Values.token }}""#,
        r#"api_key: os.environ["X"]"#,
        "password: changeme",
        "reset your password in the UI",
        "the token is invalid",
        "the task-runner and desk-lamp are risk-free",
        "ssh deploy@10.0.0.5 and mail me at dev@example.com",
        "https://github.com/org/repo/pull/12",
        "color: #ff00aa; version 1.2.3-beta.1",
        "def login(username, password=password):",
        "api_key = YOUR_API_KEY",
        "image: nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
        "max_tokens: 4096",
        "a one-time-password abc123xyz is sent",
        "password: changeme",
        r#""integrity": "sha512-Zx9vYQ+t0a0L4i3ZbN3u0lH1G5g2p6oT1z8J6cB5m3Ck1dX0s7E4y2Q3wR8tV5nA6hL9kP0oJ2iU3yT4rE5wQ6==""#,
    ];
    for text in cases {
        let r = Redactor::builtin().redact(text);
        assert!(!r.changed(), "mangled {text:?} -> {:?}", r.text);
    }
}

/// A blank cell (spaces only) under a secret column once became an
/// inverted byte range and panicked the table rule (found by the bench's
/// Markdown case): it is no value, and the rows around it still count.
#[test]
fn blank_table_cell_is_no_value() {
    for blank in ["", " ", "   ", "\t"] {
        let text = format!("| user | password |\n| --- | --- |\n| alice |{blank}|\n| bob | Xk9#mQ2vLp7z |\n");
        let want =
            format!("| user | password |\n| --- | --- |\n| alice |{blank}|\n| bob | [REDACTED:password] |\n");
        assert_eq!(redact(&text), want, "blank cell {blank:?}");
    }
}

#[test]
fn placeholders_are_not_rematched() {
    for text in [
        "[REDACTED:password]",
        "password=[REDACTED:password]",
        "postgres://u:[REDACTED:url_password]@h/db",
        "Authorization: Bearer [REDACTED:bearer_token]",
        r#""token": "[REDACTED:token]""#,
    ] {
        assert_eq!(redact(text), text);
    }
}

#[test]
fn merge_prefers_widest_then_priority() {
    let spans = vec![
        Span {
            start: 0,
            end: 5,
            rule: 3,
            kind: None,
        },
        Span {
            start: 2,
            end: 12,
            rule: 7,
            kind: None,
        },
        Span {
            start: 12,
            end: 14,
            rule: 1,
            kind: None,
        },
        Span {
            start: 20,
            end: 25,
            rule: 4,
            kind: None,
        },
        Span {
            start: 20,
            end: 25,
            rule: 2,
            kind: None,
        },
    ];
    let merged = merge(spans);
    assert_eq!(merged.len(), 2);
    assert_eq!((merged[0].start, merged[0].end, merged[0].rule), (0, 14, 7));
    assert_eq!((merged[1].start, merged[1].end, merged[1].rule), (20, 25, 2));
}

#[test]
fn custom_rules_and_allow() {
    let settings = Settings {
        rules: vec![CustomRule {
            name: "internal_ticket_token".into(),
            regex: r"\bTKT-([A-Z0-9]{12})\b".into(),
            entropy_min: Some(2.0),
        }],
        allow: vec![r"AKIA[A-Z0-9]{12}TEST".into()],
    };
    let r = Redactor::new(&settings).expect("valid settings");
    let out = r.redact("ticket TKT-AB12CD34EF56 and AKIAABCDEFGH2345TEST");
    assert_eq!(
        out.text,
        "ticket TKT-[REDACTED:internal_ticket_token] and AKIAABCDEFGH2345TEST"
    );
    assert_eq!(out.kinds, vec!["internal_ticket_token".to_string()]);
}

#[test]
fn invalid_settings_table() {
    let bad = |name: &str, regex: &str, entropy_min: Option<f64>| Settings {
        rules: vec![CustomRule {
            name: name.into(),
            regex: regex.into(),
            entropy_min,
        }],
        allow: vec![],
    };
    let cases: Vec<(Settings, &str)> = vec![
        (bad("", "abc", None), "name"),
        (bad("BadName", "abc", None), "snake_case"),
        (bad("ok_name", "(unclosed-sup3rs3cret", None), "does not compile"),
        (bad("ok_name", "x*", None), "empty string"),
        (bad("ok_name", "abc", Some(9.0)), "entropy_min"),
        (bad("ok_name", "abc", Some(f64::NAN)), "entropy_min"),
    ];
    for (settings, needle) in cases {
        let err = Redactor::new(&settings).err().expect("must fail").to_string();
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains("sup3rs3cret"), "secret echoed: {err}");
    }
    let allow = Settings {
        rules: vec![],
        allow: vec!["ok".into(), "[".into()],
    };
    let err = Redactor::new(&allow).err().expect("must fail").to_string();
    assert!(err.contains("#1"), "{err}");
}

#[test]
fn settings_deserialize_rejects_unknown_fields() {
    let ok: Settings = serde_json::from_str(
        r#"{"rules":[{"name":"x_token","regex":"X-[0-9]{8}","entropy_min":2.5}],"allow":["foo"]}"#,
    )
    .expect("parses");
    assert_eq!(ok.rules[0].name, "x_token");
    assert!(serde_json::from_str::<Settings>(r#"{"rulez":[]}"#).is_err());
}

#[test]
fn builtin_is_shared() {
    let a = Redactor::builtin();
    let b = Redactor::builtin();
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
}

#[test]
fn types_paths_and_anchors_in_code_are_no_values() {
    // Found in this repository's own diffs by the typical-message bench.
    for text in [
        "fn login(credential: &AgentCredential) -> bool {",
        "let token = AgentCredential::generate();",
        "let secret = Secret::new(bytes);",
        "let password = Password::from_env();",
        "fn seal(secret: &'a SecretKey, nonce: &mut Nonce) {",
        "fn open(password: &mut PasswordBuf) {",
        "db: {password: &default_pw}",
    ] {
        assert_eq!(redact(text), text, "{text}");
    }
    // A value with a digit after `: ` stays a value, `&` or not.
    for (text, want) in [
        ("password: &Kq9vXz2mLw", "password: [REDACTED:password]"),
        (
            "login(password: hunter2xyzQ)",
            "login(password: [REDACTED:password])",
        ),
    ] {
        assert_eq!(redact(text), want, "{text}");
    }
}
