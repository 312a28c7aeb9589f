//! One table per mechanism of issue 12 ("Redaction that generalizes"):
//! each row is a text, the secret that must disappear from it, and the
//! kind that must be reported; each benign row must come back unchanged.
//! Fake values only; the rows pin mechanisms (a key name, a flag, a
//! header, a pair), not the generated corpus' shapes.

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

/// Issue 12: `DB_PASSWORD=K9v#Xq2!mZ&7pLw` leaked `&7pLw`, and
/// `PGPASSWORD=s3cr3t;Pa55w0rd9` was not redacted at all.
#[test]
fn values_run_to_the_end_of_their_token() {
    let r = Redactor::builtin();
    assert_eq!(
        r.redact("DB_PASSWORD=K9v#Xq2!mZ&7pLw").text,
        "DB_PASSWORD=[REDACTED:password]"
    );
    assert_eq!(
        r.redact("PGPASSWORD=s3cr3t;Pa55w0rd9 psql").text,
        "PGPASSWORD=[REDACTED:password] psql"
    );
    assert_eq!(
        r.redact("api_key=Zx81kQ0p#Lm3v!T7&q").text,
        "api_key=[REDACTED:api_key]"
    );
    assert_eq!(
        r.redact("secret=Ab3#De6!Gh9&Jk2;Mn5").text,
        "secret=[REDACTED:secret]"
    );
    // ... but a URL query, a connection string and a code call still end them.
    assert_eq!(
        r.redact("GET /cb?access_token=Zx81kQ0pLm3vT7a9&state=abc HTTP/1.1")
            .text,
        "GET /cb?access_token=[REDACTED:token]&state=abc HTTP/1.1"
    );
    assert_eq!(
        r.redact("Server=db;User Id=sa;Password=Pa55w0rd!x;Database=app")
            .text,
        "Server=db;User Id=sa;Password=[REDACTED:password];Database=app"
    );
    assert_eq!(
        r.redact("connect(password=Hunter2#xyz9)").text,
        "connect(password=[REDACTED:password])"
    );
}

#[test]
fn pairs_public_id_with_nearby_secret() {
    assert_redacted(&[
        (
            "aws_access_key_id = AKIAQ7ZX2MNB4KLP9RTW\nkey = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzKEY9a8b7",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzKEY9a8b7",
            "aws_secret_key",
        ),
        (
            "boto3.client('s3', 'AKIAQ7ZX2MNB4KLP9RTW', 'Tq8n2Vw3pXz1Lm4Kr7Yb9Hs5Dc6Fg0Je2Ua3Wi4o')",
            "Tq8n2Vw3pXz1Lm4Kr7Yb9Hs5Dc6Fg0Je2Ua3Wi4o",
            "aws_secret_key",
        ),
        (
            "Client(\"AC0f3a9b2c4d5e6f708192a3b4c5d6e7f8\", \"9c1e5b7d3f2a4c6e8b0d1f3a5c7e9b2d\")",
            "9c1e5b7d3f2a4c6e8b0d1f3a5c7e9b2d",
            "twilio_auth_token",
        ),
    ]);
    // A hex digest next to no id stays.
    assert_untouched(&["sha1 3f786850e387550fdab836ed7e6dc881de23001b md5 9c1e5b7d3f2a4c6e8b0d1f3a5c7e9b2d"]);
}

#[test]
fn command_line_flags() {
    assert_redacted(&[
        (
            "docker login -u ci -p Xk9mPq2vLw8z registry.example.com",
            "Xk9mPq2vLw8z",
            "password",
        ),
        (
            "az storage blob list --account-name acme --account-key Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==",
            "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==",
            "secret",
        ),
        (
            "./deploy --password 'p@ss w0rd!' --env prod",
            "p@ss w0rd!",
            "password",
        ),
        (
            "http -a deploy:Tr0ub4dor9x https://api.example.com",
            "Tr0ub4dor9x",
            "password",
        ),
        (
            "wget --user=ci --password=Kq7#mZ2!xLp https://x.example.com/a.tgz",
            "Kq7#mZ2!xLp",
            "password",
        ),
        (
            "mongosh -u admin -p Hq2mX9pLw4 --authenticationDatabase admin",
            "Hq2mX9pLw4",
            "password",
        ),
        (
            "sqlcmd -S db -U sa -P Str0ngPassw0rd!",
            "Str0ngPassw0rd!",
            "password",
        ),
        ("sqlplus scott/T1ger2024x@orcl", "T1ger2024x", "password"),
        (
            "smbclient //fs/share -U admin%Pa55w0rd9x",
            "Pa55w0rd9x",
            "password",
        ),
        (
            "openssl pkcs12 -export -passout pass:Exp0rtPw9x -out a.p12",
            "Exp0rtPw9x",
            "password",
        ),
        ("7z a backup.7z data -pArch1vePw9x", "Arch1vePw9x", "password"),
        ("setx API_TOKEN \"Zx81kQ0pLm3vT7a9\"", "Zx81kQ0pLm3vT7a9", "token"),
        (
            "aws configure set aws_secret_access_key Tq8n2Vw3pXz1Lm4Kr7Yb9Hs5Dc6Fg0Je2Ua3Wi4o",
            "Tq8n2Vw3pXz1Lm4Kr7Yb9Hs5Dc6Fg0Je2Ua3Wi4o",
            "aws_secret_key",
        ),
        (
            "gh secret set DEPLOY_KEY --body \"Zx81kQ0pLm3vT7a9\"",
            "Zx81kQ0pLm3vT7a9",
            "secret",
        ),
    ]);
    assert_untouched(&[
        "ssh -p 2222 deploy@10.0.0.5",
        "docker run -p 8080:80 -u 1000:1000 nginx",
        "mysql -h db -P 3306 -u root -p",
        "docker login --password-stdin < token.txt",
        "./cli --password \"$DB_PASSWORD\" --token ${TOKEN}",
    ]);
}

#[test]
fn authorization_headers_of_every_scheme() {
    assert_redacted(&[
        (
            "proxy_set_header Authorization \"Basic YWRtaW46UzNjcjN0IQ==\";",
            "YWRtaW46UzNjcjN0IQ==",
            "basic_auth",
        ),
        (
            "RequestHeader set Authorization \"Bearer Zx81kQ0pLm3vT7a9Qw\"",
            "Zx81kQ0pLm3vT7a9Qw",
            "bearer_token",
        ),
        (
            "headers = {\"Authorization\": \"Token 9c1e5b7d3f2a4c6e8b0d\"}",
            "9c1e5b7d3f2a4c6e8b0d",
            "bearer_token",
        ),
        (
            "Authorization: Digest username=\"bob\", realm=\"x\", nonce=\"dcd98b7102dd2f0e\", response=\"6629fae49393a05397450978507c4ef1\"",
            "6629fae49393a05397450978507c4ef1",
            "authorization",
        ),
        (
            "authorization: SSWS 00QCjAl4MlV-WPXM8eJ5M9B7uZ2qLz1Kd0",
            "00QCjAl4MlV-WPXM8eJ5M9B7uZ2qLz1Kd0",
            "authorization",
        ),
        (
            "Proxy-Authorization: Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnagMDAu",
            "YIIGhgYGKwYBBQUCoIIGejCCBnagMDAu",
            "authorization",
        ),
        (
            "X-API-Key: 7f3a9b2c4d5e6f708192a3b4c5d6e7f8",
            "7f3a9b2c4d5e6f708192a3b4c5d6e7f8",
            "api_key",
        ),
        (
            "-H 'Ocp-Apim-Subscription-Key: 0a1b2c3d4e5f60718293a4b5c6d7e8f9'",
            "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "secret",
        ),
        ("PRIVATE-TOKEN: Zx81kQ0pLm3vT7a9Qw", "Zx81kQ0pLm3vT7a9Qw", "token"),
    ]);
    assert_untouched(&[
        "Authorization: Bearer $TOKEN",
        "Authorization: Bearer <token>",
        "headers = {\"Authorization\": f\"Bearer {token}\"}",
        "req.headers.Authorization = 'Bearer ' + accessToken;",
        "the Authorization header is missing",
        "Use Basic authentication only over TLS.",
    ]);
}

#[test]
fn registry_and_credential_files() {
    assert_redacted(&[
        (
            "//registry.example.com/:_auth=ZGVwbG95OlMzY3IzdFB3IQ==",
            "ZGVwbG95OlMzY3IzdFB3IQ==",
            "basic_auth",
        ),
        (
            "_password=UzNjcjN0UHch\nusername=deploy",
            "UzNjcjN0UHch",
            "password",
        ),
        (
            "{\"auths\": {\"ghcr.io\": {\"auth\": \"Y2k6Z2hwX0FiQ2RFZjEyMzQ1Njc4OTA=\"}}}",
            "Y2k6Z2hwX0FiQ2RFZjEyMzQ1Njc4OTA=",
            "basic_auth",
        ),
        (
            "machine api.example.com\n  login deploy\n  password Kq7mZ2xLp9",
            "Kq7mZ2xLp9",
            "password",
        ),
        (
            "[pypi]\nusername = __token__\npassword = Zx81kQ0pLm3vT7a9",
            "Zx81kQ0pLm3vT7a9",
            "password",
        ),
        ("db.internal:5432:orders:app:Pg9xLm2Qw7", "Pg9xLm2Qw7", "password"),
    ]);
    assert_untouched(&[
        "{\"auths\": {\"ghcr.io\": {}}, \"credsStore\": \"desktop\"}",
        "always-auth=true",
    ]);
}

#[test]
fn secrets_inside_urls() {
    assert_redacted(&[
        (
            "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq/sendMessage",
            "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq",
            "telegram_bot_token",
        ),
        (
            "curl 'https://maps.example.com/api/geocode?address=x&key=Zx81kQ0pLm3vT7a9Qw'",
            "Zx81kQ0pLm3vT7a9Qw",
            "secret",
        ),
        (
            "GET https://x.example.com/feed?token=9c1e5b7d3f2a4c6e&fmt=json",
            "9c1e5b7d3f2a4c6e",
            "token",
        ),
        (
            "https://b.s3.amazonaws.com/f.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=6629fae49393a05397450978507c4ef16629fae49393a05397450978507c4ef1",
            "6629fae49393a05397450978507c4ef16629fae49393a05397450978507c4ef1",
            "signature",
        ),
        (
            "https://hooks.example.com/hooks/catch/123456/Zx81kQ0pLm3vT7a9Qw/",
            "Zx81kQ0pLm3vT7a9Qw",
            "url_token",
        ),
        (
            "amqp://guest:Gu3st!Pw@rd9@mq:5672/",
            "Gu3st!Pw@rd9",
            "url_password",
        ),
    ]);
    assert_untouched(&[
        "see https://docs.example.com/auth?token_type=bearer&page=2 for details",
        "https://github.com/acme/api/blob/3f786850e387550fdab836ed7e6dc881de23001b/src/auth/token.rs",
        "thread 'main' panicked at src/auth/token.rs:45:14",
    ]);
}

#[test]
fn configuration_idioms() {
    assert_redacted(&[
        (
            "app.config['SECRET_KEY'] = 'q8Zr2mLx9Vw4Pt7K'",
            "q8Zr2mLx9Vw4Pt7K",
            "secret",
        ),
        (
            "settings.API_TOKEN = \"Zx81kQ0pLm3vT7a9\"",
            "Zx81kQ0pLm3vT7a9",
            "token",
        ),
        (
            "os.environ[\"DB_PASSWORD\"] = \"Hunter2xyz9\"",
            "Hunter2xyz9",
            "password",
        ),
        (
            "$env:API_KEY = \"Zx81kQ0pLm3vT7a9\"",
            "Zx81kQ0pLm3vT7a9",
            "api_key",
        ),
        ("set DB_PASSWORD=Hunter2xyz9", "Hunter2xyz9", "password"),
        (
            "const API_KEY: &str = \"Zx81kQ0pLm3vT7a9\";",
            "Zx81kQ0pLm3vT7a9",
            "api_key",
        ),
        ("[database]\npassword = Hunter2xyz9\n", "Hunter2xyz9", "password"),
        (
            "resource \"x\" \"y\" {\n  client_secret = \"Zx81kQ0pLm3vT7a9\"\n}",
            "Zx81kQ0pLm3vT7a9",
            "secret",
        ),
        (
            "variable \"db_password\" {\n  type = string\n  default = \"Hunter2xyz9\"\n}",
            "Hunter2xyz9",
            "password",
        ),
        (
            "<settings><server><password>Hunter2xyz9</password></server></settings>",
            "Hunter2xyz9",
            "password",
        ),
        (
            "<add key=\"StripeApiKey\" value=\"Zx81kQ0pLm3vT7a9\" />",
            "Zx81kQ0pLm3vT7a9",
            "api_key",
        ),
        (
            "<property name=\"hibernate.connection.password\" value=\"Hunter2xyz9\"/>",
            "Hunter2xyz9",
            "password",
        ),
        (
            "<datasource password=\"Hunter2xyz9\" user=\"app\"/>",
            "Hunter2xyz9",
            "password",
        ),
        (
            "env:\n  - name: DB_PASSWORD\n    value: \"Hunter2xyz9\"",
            "Hunter2xyz9",
            "password",
        ),
        (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  DB_URL: cG9zdGdyZXM6Ly9kYg==\n  tls.key: LS0tLS1CRUdJTg==\n",
            "cG9zdGdyZXM6Ly9kYg==",
            "k8s_secret",
        ),
        (
            "ENCRYPTION_KEY=Zx81kQ0pLm3vT7a9Qw12",
            "Zx81kQ0pLm3vT7a9Qw12",
            "secret",
        ),
        (
            "the staging password is Hunter2xyz9, rotate it",
            "Hunter2xyz9",
            "password",
        ),
        (
            "here is the API key: Zx81kQ0pLm3vT7a9Qw",
            "Zx81kQ0pLm3vT7a9Qw",
            "api_key",
        ),
    ]);
    assert_untouched(&[
        "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: db\n        key: password",
        "password = getpass.getpass()",
        "self.password = kwargs.get('password')",
        "public_key: MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1a2b3c4d5e6f7g8h9",
        "idempotency_key: 123e4567-e89b-12d3-a456-426614174000",
        "the password is incorrect",
        "<password>${DB_PASSWORD}</password>",
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  LOG_LEVEL: debug\n",
        "key = \"terraform.tfstate\"",
        "max_tokens: 4096\ntoken_count: 12\npassword_min_length: 12",
    ]);
}

#[test]
fn vendor_formats_beyond_the_first_table() {
    assert_redacted(&[
        (
            "GROQ=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",
            "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",
            "groq_key",
        ),
        (
            "token hvs.CAESIJx81kQ0pLm3vT7a9Qw12Er34Ty56",
            "hvs.CAESIJx81kQ0pLm3vT7a9Qw12Er34Ty56",
            "vault_token",
        ),
        (
            "dckr_pat_Zx81kQ0pLm3vT7a9Qw12Er34Ty5",
            "dckr_pat_Zx81kQ0pLm3vT7a9Qw12Er34Ty5",
            "docker_hub_token",
        ),
        (
            "NEW_RELIC=NRAK-ZX81KQ0PLM3VT7A9QW12ER34TY5",
            "NRAK-ZX81KQ0PLM3VT7A9QW12ER34TY5",
            "new_relic_key",
        ),
        (
            "key: glsa_Zx81kQ0pLm3vT7a9Qw12Er34Ty56Ui78_0a1b2c3d",
            "glsa_Zx81kQ0pLm3vT7a9Qw12Er34Ty56Ui78_0a1b2c3d",
            "grafana_token",
        ),
        (
            "rubygems_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071",
            "rubygems_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071",
            "rubygems_token",
        ),
        (
            "AGE-SECRET-KEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE",
            "AGE-SECRET-KEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE",
            "age_secret_key",
        ),
        (
            "lin_api_Zx81kQ0pLm3vT7a9Qw12Er34Ty56Ui78Op90As12",
            "lin_api_Zx81kQ0pLm3vT7a9Qw12Er34Ty56Ui78Op90As12",
            "linear_key",
        ),
    ]);
}

#[test]
fn credentials_passed_as_call_arguments() {
    assert_redacted(&[
        (
            r#"let c = http.get(url).basic_auth("deploy", Some("Wq8#tLx2vPz"));"#,
            "Wq8#tLx2vPz",
            "auth",
        ),
        (
            r#"req = req.bearer_auth("k7Rt2QpLx9WmZc4NvB8s")"#,
            "k7Rt2QpLx9WmZc4NvB8s",
            "auth",
        ),
        (
            r#"keyring.set_password("svc", "ops", "Plum-Orbit-93!")"#,
            "Plum-Orbit-93!",
            "password",
        ),
        (
            r#"const s = Secret::new("zN4qWc8LpT2vRx7K".to_string());"#,
            "zN4qWc8LpT2vRx7K",
            "secret",
        ),
        (
            r#"session.login("admin", "Hx72!bqPe0")"#,
            "Hx72!bqPe0",
            "password",
        ),
        (
            r#"client = AcmeClient("q8ZtW2nVx5LmR7cK3pJs9dHf")"#,
            "q8ZtW2nVx5LmR7cK3pJs9dHf",
            "api_key",
        ),
        (
            r#"auth = HTTPBasicAuth('svc-ci', 'Tr4vel-Lamp-61')"#,
            "Tr4vel-Lamp-61",
            "auth",
        ),
    ]);
    assert_untouched(&[
        r#"let pw = vault.get_secret("database-password")?;"#,
        r#"if verify_token("expired-token-value") { return; }"#,
        r#"println!("{}", t("settings.password_hint"));"#,
        r#"let key = std::env::var("API_KEY")?;"#,
        r#"assert!(check_password("correct horse battery staple"));"#,
        r#"fn basic_auth(user: &str, password: Option<&str>) -> Self {"#,
    ]);
}

#[test]
fn json_escaped_values_and_keys_in_other_languages() {
    assert_redacted(&[
        (
            r#"{"body": "{\"username\": \"ops\", \"password\": \"Vq7!rT2mLs9x\"}"}"#,
            "Vq7!rT2mLs9x",
            "password",
        ),
        (
            r#"payload="{\"api_token\": \"c9XvQ2LmT7pRz4Wk\"}""#,
            "c9XvQ2LmT7pRz4Wk",
            "token",
        ),
        ("пароль_бд: Kx8vT2qLm9Zr", "Kx8vT2qLm9Zr", "password"),
        ("токен доступа: Zq4LtW8xPm2VrK7n", "Zq4LtW8xPm2VrK7n", "token"),
        ("数据库密码 = \"Lm3xQ8vT2pWz\"", "Lm3xQ8vT2pWz", "password"),
        ("访问令牌: Rb7Kx2LqW9vTz4Mn", "Rb7Kx2LqW9vTz4Mn", "token"),
        (
            "API-Schlüssel: hT4kW9xQ2LmZ7vRp3NcB",
            "hT4kW9xQ2LmZ7vRp3NcB",
            "secret",
        ),
        ("κωδικός: Pw7xLq2ZtV9m", "Pw7xLq2ZtV9m", "password"),
        (
            "clave_api=Jm2Qx8TvL4pWz7Rk9NbC",
            "Jm2Qx8TvL4pWz7Rk9NbC",
            "api_key",
        ),
    ]);
}

#[test]
fn references_and_public_values_are_not_secrets() {
    assert_untouched(&[
        "GET /chat HTTP/1.1\nUpgrade: websocket\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\nSec-WebSocket-Version: 13",
        "HTTP/1.1 101 Switching Protocols\nSec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=",
        "db_password: \"{{ lookup('hashi_vault', 'secret=secret/data/db:password token=' ~ vault_token) }}\"",
        "DB_PASSWORD=vault:secret/data/prod/db#password",
        "password: ref+vault://secret/data/app#/db_password",
        "API_TOKEN=op://Engineering/ci-bot/credential",
        "client_secret: arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/oauth-Ab12Cd",
        "docker buildx build --secret id=npmrc,src=$HOME/.npmrc -t app .",
        "RUN --mount=type=secret,id=aws,target=/root/.aws/credentials aws s3 ls",
        "NEXT_PUBLIC_SUPABASE_ANON_KEY=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiIsImlhdCI6MTcwMDAwMDAwMH0.x7Kq2LmT9vRz4WcP8nBd3FhJ6sYa1GeU5oXi0QwEr",
        "VITE_FIREBASE_API_KEY=AIzaSyB2xK9mQ4vT7LpW3nZ8cR5dF1gH6jY0sUe",
        "token: ${{ secrets.DEPLOY_TOKEN }}",
    ]);
}

#[test]
fn quoting_and_tool_idioms_of_the_second_pass() {
    assert_redacted(&[
        ("db_password = '''Qw7#rT\"2mLx9'''", "Qw7#rT\"2mLx9", "password"),
        (r#"set "API_TOKEN=Vb4&q^Tz9&&Lm2Kx""#, "Vb4&q^Tz9&&Lm2Kx", "token"),
        (
            "curl --oauth2-bearer Tq8Lm2Zx7VcR4nWp9KsD https://api.example.test/v1",
            "Tq8Lm2Zx7VcR4nWp9KsD",
            "bearer_token",
        ),
        (
            "ssh-keygen -t ed25519 -f ~/.ssh/ci -N 'Mv3qZ8xLp2Tw' -C ci@example.test",
            "Mv3qZ8xLp2Tw",
            "password",
        ),
        (
            "$pw = ConvertTo-SecureString 'Rk7vQ2mXz9Lp' -AsPlainText -Force",
            "Rk7vQ2mXz9Lp",
            "password",
        ),
    ]);
    assert_untouched(&["$env:DB_PASSWORD = Read-Host -AsSecureString 'DB password'"]);
}
