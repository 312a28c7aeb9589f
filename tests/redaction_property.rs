//! Property test for the redaction engine (issue 12): for every built-in
//! rule, a freshly generated secret of that rule's shape, embedded at a
//! random position of random benign text, is fully removed, and redaction
//! is idempotent.
//!
//! "Fully removed" is strict: the secret does not survive, and neither does
//! its first or last 4 bytes (so no prefix or suffix of 4+ bytes of it),
//! except where the surrounding text itself contains them.
//!
//! The generator is `rand`'s `StdRng` with fixed seeds (the crate already
//! depends on `rand`; no new dev-dependency): every run checks the same
//! 20,000+ cases, and a failure prints the seed, the sample and the output.

use mcp_bridge::redact::{Redactor, builtin_kinds};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Cases per rule sample.
const ITERATIONS: usize = 150;

/// `(kind, template)`: the template is expanded (see [`expand`]) and the
/// secret is the part between `<<` and `>>`. One or more rows per kind
/// that a built-in rule is registered under.
const SAMPLES: &[(&str, &str)] = &[
    (
        "private_key",
        "-----BEGIN RSA PRIVATE KEY-----\n<<{b64:64}\n{b64:64}\n{b64:20}==>>\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "private_key",
        "Private-Lines: 2\n<<{b64:64}\n{b64:20}>>\nPrivate-MAC: {hex:40}",
    ),
    (
        "private_key",
        "{\"kty\": \"EC\", \"crv\": \"P-256\", \"d\": \"<<{b64u:43}>>\"}",
    ),
    ("private_key", "importprivkey <<K{b58:51}>> label"),
    ("bridge_token", "<<mcpb_{b64u:43}>>"),
    ("anthropic_key", "<<sk-ant-api03-{b64u:93}AA>>"),
    ("openai_key", "<<sk-proj-{b62:48}>>"),
    ("openrouter_key", "<<sk-or-v1-{hex:64}>>"),
    ("ai_provider_key", "<<sk-{hex:32}>>"),
    ("groq_key", "<<gsk_{b62:52}>>"),
    ("replicate_token", "<<r8_{b62:37}>>"),
    ("perplexity_key", "<<pplx-{b62:48}>>"),
    ("xai_key", "<<xai-{b62:80}>>"),
    ("langsmith_key", "<<lsv2_pt_{hex:32}_{hex:10}>>"),
    ("pinecone_key", "<<pcsk_{b62:50}>>"),
    ("tavily_key", "<<tvly-dev-{b62:32}>>"),
    ("fireworks_key", "<<fw_{b62:24}>>"),
    ("huggingface_token", "<<hf_{b62:34}>>"),
    ("aws_bedrock_key", "<<ABSK{b62:120}>>"),
    ("github_token", "<<ghp_{b62:36}>>"),
    ("github_token", "<<github_pat_{b62:22}_{b62:59}>>"),
    ("gitlab_token", "<<glpat-{b64u:20}>>"),
    ("circleci_token", "<<CCIPAT_{b62:22}_{hex:40}>>"),
    ("buildkite_token", "<<bkua_{hex:40}>>"),
    ("sonar_token", "<<sqp_{hex:40}>>"),
    ("jfrog_token", "<<AKCp{b62:69}>>"),
    ("docker_hub_token", "<<dckr_pat_{b64u:27}>>"),
    ("octopus_key", "<<API-{up:26}>>"),
    ("postman_key", "<<PMAK-{hex:24}-{hex:34}>>"),
    ("harness_token", "<<pat.{b64u:22}.{hex:24}.{b62:20}>>"),
    ("sourcegraph_token", "<<sgp_{hex:16}_{hex:40}>>"),
    ("infracost_key", "<<ico-{b62:32}>>"),
    ("bitbucket_token", "<<ATBB{b62:32}>>"),
    ("atlassian_token", "<<ATATT3{b64u:180}>>"),
    ("aws_access_key", "<<AKIA{up:16}>>"),
    ("aws_secret_key", "aws_secret_access_key = <<{b64s:40}>>"),
    (
        "aws_secret_key",
        "id AKIA{up:16} and <<{b64s:40}>> for the export",
    ),
    (
        "azure_storage_key",
        "AccountName=acme;AccountKey=<<{b64:86}==>>;EndpointSuffix=core.windows.net",
    ),
    (
        "azure_sas_token",
        "https://acme.blob.core.windows.net/c?sv=2022-11-02&sig=<<{b64:43}%3D>>",
    ),
    ("azure_ad_client_secret", "secret <<{b62:3}8Q~{b62:34}>> end"),
    ("google_api_key", "<<AIza{b64u:35}>>"),
    ("google_oauth", "<<GOCSPX-{b64u:28}>>"),
    ("firebase_server_key", "<<AAAA{b64u:7}:APA91b{b64u:134}>>"),
    ("alibaba_access_key", "<<LTAI{b62:20}>>"),
    ("alibaba_secret_key", "LTAI{b62:20} <<{b62:30}>>"),
    ("heroku_token", "<<HRKU-AA{b64u:58}>>"),
    ("vault_token", "<<hvs.{b64u:90}>>"),
    ("terraform_token", "<<{b62:14}.atlasv1.{b64u:67}>>"),
    ("pulumi_token", "<<pul-{hex:40}>>"),
    ("doppler_token", "<<dp.pt.{b62:43}>>"),
    ("netlify_token", "<<nfp_{b62:36}>>"),
    ("flyio_token", "<<fo1_{b64u:43}>>"),
    ("databricks_token", "<<dapi{hex:32}>>"),
    ("supabase_key", "<<sbp_{hex:40}>>"),
    ("planetscale_token", "<<pscale_tkn_{b64u:43}>>"),
    ("scaleway_key", "<<SCW{up:17}>>"),
    ("yandex_key", "<<AQVN{b64u:36}>>"),
    ("digitalocean_token", "<<dop_v1_{hex:64}>>"),
    ("tailscale_key", "<<tskey-auth-{b62:12}-{b62:30}>>"),
    ("cloudflare_tunnel_token", "<<eyJhIjoi{b64:120}>>"),
    ("cloudflare_origin_key", "<<v1.0-{hex:24}-{hex:146}>>"),
    ("openshift_token", "<<sha256~{b64u:43}>>"),
    ("npm_token", "<<npm_{b62:36}>>"),
    ("pypi_token", "<<pypi-AgEIcHlwaS5vcmc{b64u:70}>>"),
    ("rubygems_token", "<<rubygems_{hex:48}>>"),
    ("nuget_key", "<<oy2{lo:43}>>"),
    ("crates_io_token", "<<cio{b62:32}>>"),
    ("clojars_token", "<<CLOJARS_{lo:60}>>"),
    ("slack_token", "<<xoxb-{dig:12}-{dig:13}-{b62:24}>>"),
    (
        "slack_webhook",
        "https://hooks.slack.com/services/<<T{up:8}/B{up:10}/{b62:24}>>",
    ),
    (
        "discord_webhook",
        "https://discord.com/api/webhooks/{dig:18}/<<{b64u:68}>>",
    ),
    (
        "teams_webhook",
        "https://acme.webhook.office.com/webhookb2/<<{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}@{hex:8}/IncomingWebhook/{hex:32}>>",
    ),
    ("discord_bot_token", "<<M{b64u:25}.{b64u:6}.{b64u:38}>>"),
    ("telegram_bot_token", "<<{dig:9}:AA{b64u:33}>>"),
    ("twilio_key", "<<SK{hex:32}>>"),
    ("twilio_auth_token", "AC{hex:32} <<{hex:32}>>"),
    ("sendgrid_key", "<<SG.{b64u:22}.{b64u:43}>>"),
    ("mailgun_key", "<<key-{lo:32}>>"),
    ("mailgun_key", "<<{hex:32}-{hex:8}-{hex:8}>>"),
    ("mailchimp_key", "<<{hex:32}-us14>>"),
    ("brevo_key", "<<xkeysib-{hex:64}-{b62:16}>>"),
    ("twitter_bearer_token", "<<AAAAAAAAAAAAAAAAAAAAA{b62:80}>>"),
    ("square_token", "<<sq0atp-{b64u:22}>>"),
    ("facebook_token", "<<EAA{b62:120}>>"),
    ("intercom_token", "<<dG9rO{b64:56}=>>"),
    ("stripe_key", "<<sk_live_{b62:24}>>"),
    ("stripe_webhook_secret", "<<whsec_{b62:32}>>"),
    ("braintree_token", "<<access_token$production${lo:16}${hex:32}>>"),
    ("razorpay_key", "<<rzp_live_{b62:14}>>"),
    ("razorpay_secret", "rzp_live_{b62:14} <<{b62:24}>>"),
    ("flutterwave_key", "<<FLWSECK-{hex:32}-X>>"),
    (
        "plaid_token",
        "<<access-sandbox-{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}>>",
    ),
    ("adyen_key", "<<AQEx{b62:100}>>"),
    ("paddle_key", "<<pdl_live_apikey_{lo:26}_{b62:22}_{b62:3}>>"),
    ("easypost_key", "<<EZAK{b62:54}>>"),
    ("shippo_token", "<<shippo_live_{hex:40}>>"),
    ("duffel_token", "<<duffel_live_{b64u:43}>>"),
    ("shopify_token", "<<shpat_{hex:32}>>"),
    ("sentry_token", "<<sntrys_{b64:80}>>"),
    (
        "sentry_dsn",
        "https://<<{hex:32}>>@o{dig:6}.ingest.sentry.io/{dig:7}",
    ),
    ("new_relic_key", "<<NRAK-{up:27}>>"),
    ("grafana_token", "<<glsa_{b62:32}_{hex:8}>>"),
    ("dynatrace_token", "<<dt0c01.{up:24}.{up:64}>>"),
    (
        "launchdarkly_key",
        "<<sdk-{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}>>",
    ),
    ("linear_key", "<<lin_api_{b62:40}>>"),
    ("notion_token", "<<ntn_{dig:11}{b62:35}>>"),
    ("airtable_token", "<<pat{b62:14}.{hex:64}>>"),
    ("asana_token", "<<1/{dig:16}:{b62:32}>>"),
    ("figma_token", "<<figd_{b64u:40}>>"),
    ("contentful_token", "<<CFPAT-{b64u:43}>>"),
    (
        "hubspot_token",
        "<<pat-na1-{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}>>",
    ),
    ("onepassword_token", "<<ops_eyJ{b64:250}>>"),
    (
        "onepassword_secret_key",
        "<<A3-{up:6}-{up:11}-{up:5}-{up:5}-{up:5}>>",
    ),
    ("age_secret_key", "<<AGE-SECRET-KEY-1{b32:58}>>"),
    ("typeform_token", "<<tfp_{b64u:59}>>"),
    ("dropbox_token", "<<sl.{b64u:140}>>"),
    ("mapbox_token", "<<sk.eyJ{b64u:60}.{b64u:22}>>"),
    ("prefect_key", "<<pnu_{b62:36}>>"),
    ("readme_key", "<<rdme_{lo:70}>>"),
    ("adafruit_key", "<<aio_{b62:28}>>"),
    ("frameio_token", "<<fio-u-{b64u:64}>>"),
    ("resend_key", "<<re_{b62:8}_{b62:24}>>"),
    ("api_key", "<<zq_{b62:40}>>"),
    ("jwt", "<<eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx{b64u:20}.{b64u:43}>>"),
    // Second vendor table (rules/platforms.rs).
    ("firecrawl_key", "<<fc-{hex:32}>>"),
    ("anyscale_key", "<<esecret_{b62:30}>>"),
    ("elevenlabs_key", "<<sk_{hex:48}>>"),
    ("together_key", "<<tgp_v1_{b64u:43}>>"),
    ("browserbase_key", "<<bb_live_{b64u:27}>>"),
    ("gitlab_session", "Cookie: _gitlab_session=<<{lo:32}>>"),
    ("azure_devops_pat", "<<{b62:52}AZDO{b62:4}>>"),
    ("packagist_token", "<<packagist_uut_{hex:68}>>"),
    ("scalingo_token", "<<tk-us-{b64u:48}>>"),
    ("settlemint_token", "<<sm_pat_{b62:16}>>"),
    ("authress_key", "<<sc_{lo:12}.{lo:5}.acc_{lo:20}.{lo:40}>>"),
    ("tencent_secret_id", "<<AKID{b62:32}>>"),
    ("yandex_iam_token", "<<t1.{b64u:20}.{b64u:86}>>"),
    ("yandex_key", "<<YC{b62:38}>>"),
    ("clickhouse_key", "<<4b1d{b62:38}>>"),
    ("defined_networking_key", "<<dnkey-{lo:26}-{lo:52}>>"),
    ("intra42_secret", "<<s-s4t2ud-{hex:64}>>"),
    ("maxmind_key", "<<{b62:6}_{b62:29}_mmk>>"),
    ("slack_token", "<<xoxe.xoxp-1-{b62:140}>>"),
    ("matrix_token", "<<syt_{b62:8}_{b62:20}_{b62:6}>>"),
    ("stripe_key", "<<sk_prod_{b62:24}>>"),
    ("mollie_key", "<<live_{b62:30}>>"),
    ("honeycomb_key", "<<hcaik_{lo:58}>>"),
    ("axiom_token", "<<xaat-{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}>>"),
    ("posthog_personal_key", "<<phx_{b62:43}>>"),
    ("url_password", "postgres://app:<<{pw}>>@db:5432/app"),
    ("url_password", "dsn := \"shop:<<{b62:16}>>@tcp(db:3306)/shop\""),
    (
        "url_token",
        "https://hooks.example.com/hooks/catch/123/<<{b62:24}>>/",
    ),
    ("authorization", "Authorization: SSWS <<{b62:40}>>"),
    ("basic_auth", "Authorization: Basic <<{basic}>>"),
    // A whole `.env`, base64-encoded once (fixed: the template language
    // has no encoder); the random part is around it.
    (
        "encoded_secret",
        "ENV_FILE_B64 (base64 of the .env): <<QVBJX1RPS0VOPVpxOFh2TDJtTjRwUjdzVDF1VzN5QjZjRApEQl9IT1NUPWRiLmludGVybmFsCg==>>",
    ),
    (
        "session_cookie",
        "Cookie: theme=dark; session_id=<<{b62:40}>>; lang=en",
    ),
    (
        "session_cookie",
        "Set-Cookie: connect.sid=<<s%3A{b64u:32}.{b64u:43}>>; Path=/; HttpOnly",
    ),
    ("bearer_token", "Authorization: Bearer <<{b62:40}>>"),
    ("password", "DB_PASSWORD=<<{pw}>>"),
    ("password", "export PGPASSWORD='<<{pw}>>'"),
    ("password", "curl -u deploy:<<{pw}>> https://x.example.com"),
    ("password", "docker login -u ci -p <<{pw}>> registry.example.com"),
    ("password", "mysql -u root -p<<{pw}>> app"),
    ("password", "machine api.example.com login ci password <<{pw}>>"),
    ("password", "echo '<<{pw}>>' | sudo -S true"),
    ("password", "ALTER USER 'app'@'%' IDENTIFIED BY '<<{pw}>>';"),
    ("password", "<settings><password><<{pw}>></password></settings>"),
    ("password", "env:\n  - name: DB_PASSWORD\n    value: \"<<{pw}>>\""),
    (
        "password",
        "props.setProperty(\"mail.smtp.password\", \"<<{pw}>>\");",
    ),
    ("secret", "client_secret: \"<<{pw}>>\""),
    ("secret", "./deploy --account-key <<{b64:40}>>"),
    ("secret", "Client(\"AC{hex:32}\", \"<<{b62:32}>>\")"),
    (
        "secret",
        "mc alias set b https://minio.example.com:9000 {up:20} <<{b62:40}>>",
    ),
    ("token", "{\"access_token\": \"<<{b62:40}>>\"}"),
    ("token", "GET /cb?access_token=<<{b62:24}>>&state=x"),
    ("api_key", "X-API-Key: <<{hex:32}>>"),
    ("signature", "?X-Amz-Credential=x&X-Amz-Signature=<<{hex:64}>>"),
    (
        "k8s_secret",
        "apiVersion: v1\nkind: Secret\ndata:\n  DB_URL: <<{b64:40}>>\n",
    ),
    // Appended, not inserted: each row's seed is its index.
    ("bridge_agent_credential", "<<mcpa_{b64u:43}>>"),
];

/// Benign words and punctuation the secrets are embedded among: developer
/// prose, paths, numbers, non-ASCII text, markdown.
const WORDS: &[&str] = &[
    "the",
    "deploy",
    "failed",
    "on",
    "step",
    "3",
    "retrying",
    "in",
    "5s",
    "see",
    "logs",
    "at",
    "/var/log/app.log",
    "ERROR",
    "exit",
    "code",
    "1",
    "ok",
    "—",
    "naïve",
    "café",
    "日本語",
    "```",
    "-",
    "*",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    ":",
    "#",
    "v1.2.3",
    "main",
    "HEAD",
    "merged",
    "PR",
    "#1234",
    "https://example.com/docs",
    "42",
    "\n",
    "\n\n",
    "\t",
    "λ",
    "user@example.com",
    "build",
    "passed",
    "warning:",
    "unused",
    "variable",
    "`x`",
];

/// Expand `{alphabet:len}`, `{pw}` and `{basic}` fields.
fn expand(template: &str, rng: &mut StdRng) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let Some(j) = rest[i..].find('}') else { break };
        let field = &rest[i + 1..i + j];
        let (name, len) = field.split_once(':').unwrap_or((field, "0"));
        let alphabet: Option<&str> = match name {
            "b62" => Some("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "b64" => Some("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"),
            "b64s" => Some("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"),
            "b64u" => Some("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            "b58" => Some("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"),
            "b32" => Some("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
            "hex" => Some("0123456789abcdef"),
            "up" => Some("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
            "lo" => Some("abcdefghijklmnopqrstuvwxyz0123456789"),
            "dig" => Some("0123456789"),
            _ => None,
        };
        out.push_str(&rest[..i]);
        match (name, alphabet) {
            (_, Some(a)) => {
                let n: usize = len.parse().expect("length");
                let chars: Vec<char> = a.chars().collect();
                // Leading digit for `dig` fields would read as a number in
                // some shapes; keep the first one non-zero.
                for k in 0..n {
                    let mut c = *chars.choose(rng).expect("alphabet");
                    if name == "dig" && k == 0 && c == '0' {
                        c = '7';
                    }
                    out.push(c);
                }
            }
            ("pw", None) => out.push_str(&password(rng)),
            ("basic", None) => {
                use base64::Engine;
                let creds = format!("deploy:{}", password(rng));
                out.push_str(&base64::engine::general_purpose::STANDARD.encode(creds));
            }
            _ => {
                // Not a field (JSON braces): keep the `{` and go on after it.
                out.push('{');
                rest = &rest[i + 1..];
                continue;
            }
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

/// A password with the delimiters issue 12 names (`& ; # !`) and mixed
/// classes; never a quote, space or backslash (which end a bare value).
fn password(rng: &mut StdRng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    const SYMBOLS: &[u8] = b"&;#!%^*_-";
    let n = rng.random_range(10..=20);
    let mut s: Vec<u8> = (0..n).map(|_| *ALNUM.choose(rng).expect("alnum")).collect();
    s[0] = b'K';
    s[1] = b'q';
    s[2] = b'7';
    for _ in 0..rng.random_range(1..=3) {
        let at = rng.random_range(3..n - 1);
        s[at] = *SYMBOLS.choose(rng).expect("symbol");
    }
    String::from_utf8(s).expect("ascii")
}

/// `text` with every `[REDACTED:kind]` removed.
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

/// Random benign text of a few words with `sample` inserted between two of
/// them, always separated by whitespace so it stays one token.
fn embed(sample: &str, rng: &mut StdRng) -> String {
    let n = rng.random_range(0..30);
    let at = rng.random_range(0..=n);
    let mut out = String::new();
    for k in 0..=n {
        if k == at {
            out.push_str(if rng.random_bool(0.5) { " " } else { "\n" });
            out.push_str(sample);
            out.push_str(if rng.random_bool(0.5) { " " } else { "\n" });
        }
        if k < n {
            out.push_str(WORDS.choose(rng).expect("word"));
            out.push(' ');
        }
    }
    out
}

#[test]
fn every_rule_kind_has_a_sample() {
    let missing: Vec<&str> = builtin_kinds()
        .into_iter()
        .filter(|k| !SAMPLES.iter().any(|(kind, _)| kind == k))
        .collect();
    assert!(
        missing.is_empty(),
        "rule kinds without a property sample: {missing:?}"
    );
}

#[test]
fn embedded_secrets_are_fully_removed_and_redaction_is_idempotent() {
    let redactor = Redactor::builtin();
    // The first failure of each sample row, so one run shows every broken rule.
    let mut failures: Vec<String> = Vec::new();
    for (row, (kind, template)) in SAMPLES.iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(0x5eed_0000 + row as u64);
        for i in 0..ITERATIONS {
            let expanded = expand(template, &mut rng);
            let (start, end) = (
                expanded.find("<<").expect("template marks its secret"),
                expanded.find(">>").expect("template marks its secret"),
            );
            let secret = expanded[start + 2..end].to_string();
            let sample = expanded.replace("<<", "").replace(">>", "");
            let text = embed(&sample, &mut rng);
            let out = redactor.redact(&text);
            let ctx = format!("[{kind} row {row} case {i}] input {text:?} -> {:?}", out.text);
            let bare = strip_placeholders(&out.text);
            let around = text.replacen(&secret, "\u{0}", 1);
            let failure = if out.text.contains(&secret) {
                Some(format!("secret survived {ctx}"))
            } else if let Some(part) = [&secret[..4], &secret[secret.len() - 4..]]
                .into_iter()
                .find(|part| bare.matches(*part).count() > around.matches(*part).count())
            {
                Some(format!("4 bytes {part:?} of the secret survived {ctx}"))
            } else if redactor.redact(&out.text).text != out.text {
                Some(format!("not idempotent {ctx}"))
            } else {
                None
            };
            if let Some(f) = failure {
                failures.push(f);
                break;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
