//! Vendor token formats: a published prefix or shape identifies the token
//! wherever it appears, with no key name needed.
//!
//! Grouped by what agents meet: AI providers, source hosting and CI, cloud,
//! package registries, messaging, payments, observability, SaaS. Every
//! entry is anchored on a literal (its prefilter keyword), so a message
//! without the prefix never runs the regex. Compared with gitleaks'
//! default rules, the formats that need a nearby vendor name (Datadog,
//! Algolia, Okta, ...) are left to the keyword-anchored generic detector,
//! which recognises `DD_API_KEY=…` by its key and the value's shape.

use super::checks::{
    alnum, assigned_to_public_key, aws_secret, mixed, not_placeholder, random_tail, random_tail_not_public,
    two_case,
};
use super::{Check, Hit, RuleSpec, on_runs, rule};
use crate::redact::entropy::{Classes, shannon};

/// Prefixes of things that are not credentials: digests, encodings,
/// publishable keys, ids.
const NOT_TOKEN_PREFIXES: &[&str] = &[
    "sha", "sha1", "sha256", "sha384", "sha512", "md5", "base64", "data", "uuid", "id", "pk", "pub",
    "public", "req", "cus", "evt", "ch", "pi", "seti", "sub", "in", "txn", "prod", "price", "acct", "build",
    "commit", "release", "v", "git", "cache", "blob", "tree", "run", "job", "trace", "span", "msg", "org",
    "user", "usr", "team", "file",
    // PostHog project keys are written into every page's snippet: public.
    "phc",
];

/// `prefix_tail`: the prefix is not a digest/id marker, the tail is random
/// (not hex; letters and digits; high entropy).
fn prefixed_token(h: &Hit<'_>) -> bool {
    let whole = h.secret.as_str();
    let Some(tail) = h.caps.get(1) else { return false };
    let prefix = &whole[..tail.start() - h.secret.start()];
    let first = prefix.split(['_', '-']).next().unwrap_or("");
    if NOT_TOKEN_PREFIXES.contains(&first) {
        return false;
    }
    let t = tail.as_str();
    let c = Classes::of(t);
    let hex = t.bytes().all(|b| b.is_ascii_hexdigit());
    !hex && c.digit && (c.upper || c.lower) && shannon(t) >= 4.0 && !assigned_to_public_key(h)
}

/// Whole match is the secret.
pub(super) fn v(kind: &'static str, regex: &'static str, keywords: &'static [&'static str]) -> RuleSpec {
    rule(kind, regex, 0, None, keywords, Some(random_tail))
}

/// Group 1 is the secret (the host or prefix stays readable).
pub(super) fn g(
    kind: &'static str,
    regex: &'static str,
    keywords: &'static [&'static str],
    check: Check,
) -> RuleSpec {
    rule(kind, regex, 1, None, keywords, Some(check))
}

/// Whole match, with a check of its own.
pub(super) fn c(
    kind: &'static str,
    regex: &'static str,
    keywords: &'static [&'static str],
    check: Check,
) -> RuleSpec {
    rule(kind, regex, 0, None, keywords, Some(check))
}

/// The vendor rules in priority order.
pub fn rules() -> Vec<RuleSpec> {
    let mut out = vec![
        g(
            "bridge_token",
            r"\b(mcpb_[A-Za-z0-9_\-]{43})(?:[^A-Za-z0-9_\-]|$)",
            &["mcpb_"],
            not_placeholder,
        ),
        // A registered agent's credential (`auth::AgentCredential`): it
        // belongs in a client's configuration, never in a stored message.
        g(
            "bridge_agent_credential",
            r"\b(mcpa_[A-Za-z0-9_\-]{43})(?:[^A-Za-z0-9_\-]|$)",
            &["mcpa_"],
            not_placeholder,
        ),
    ];
    out.extend(ai());
    out.extend(code_hosting_and_ci());
    out.extend(cloud());
    out.extend(registries());
    out.extend(messaging());
    out.extend(payments());
    out.extend(super::platforms::rules());
    out.extend(observability_and_saas());
    out
}

fn ai() -> Vec<RuleSpec> {
    vec![
        c(
            "anthropic_key",
            r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
            &["sk-ant-"],
            not_placeholder,
        ),
        v("openrouter_key", r"\bsk-or-v1-[a-f0-9]{64}\b", &["sk-or-v1-"]),
        c(
            "openai_key",
            r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}",
            &["sk-"],
            mixed,
        ),
        // DeepSeek and other OpenAI-compatible providers: `sk-` + 32 hex.
        v("ai_provider_key", r"\bsk-[a-f0-9]{32}\b", &["sk-"]),
        v("groq_key", r"\bgsk_[A-Za-z0-9]{48,56}\b", &["gsk_"]),
        v("replicate_token", r"\br8_[A-Za-z0-9]{37}\b", &["r8_"]),
        v("perplexity_key", r"\bpplx-[A-Za-z0-9]{40,56}\b", &["pplx-"]),
        v("xai_key", r"\bxai-[A-Za-z0-9]{70,90}\b", &["xai-"]),
        v(
            "langsmith_key",
            r"\blsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}\b",
            &["lsv2_"],
        ),
        v("pinecone_key", r"\bpcsk_[A-Za-z0-9_]{40,}", &["pcsk_"]),
        v(
            "tavily_key",
            r"\btvly-(?:dev-|prod-)?[A-Za-z0-9]{28,40}\b",
            &["tvly-"],
        ),
        v("fireworks_key", r"\bfw_[A-Za-z0-9]{20,30}\b", &["fw_"]),
        c(
            "huggingface_token",
            r"\b(?:hf_|api_org_)[A-Za-z0-9]{34,40}\b",
            &["hf_", "api_org_"],
            two_case,
        ),
        v(
            "aws_bedrock_key",
            r"\bABSK[A-Za-z0-9+/]{100,280}={0,2}",
            &["absk"],
        ),
        v(
            "aws_bedrock_key",
            r"\bbedrock-api-key-[A-Za-z0-9+/]{60,}={0,2}",
            &["bedrock-api-key-"],
        ),
    ]
}

fn code_hosting_and_ci() -> Vec<RuleSpec> {
    vec![
        c(
            "github_token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            not_placeholder,
        ),
        c(
            "gitlab_token",
            r"\bgl(?:pat|dt|rt|ptt|cbt|imt|soat|ffct|oas|agent|ft|wt)-[A-Za-z0-9_\-]{20,}",
            &["gl"],
            not_placeholder,
        ),
        v("gitlab_token", r"\bGR1348941[A-Za-z0-9_\-]{20,}", &["gr1348941"]),
        v(
            "circleci_token",
            r"\bCCI(?:PAT|PRJ)_[A-Za-z0-9]{22}_[a-f0-9]{40}\b",
            &["ccipat_", "cciprj_"],
        ),
        v("buildkite_token", r"\bbkua_[a-f0-9]{40}\b", &["bkua_"]),
        v(
            "sonar_token",
            r"\bsq[pua]_[a-f0-9]{40}\b",
            &["sqp_", "squ_", "sqa_"],
        ),
        v("jfrog_token", r"\bAKCp[A-Za-z0-9]{60,80}\b", &["akcp"]),
        v(
            "jfrog_token",
            r"\bcmVmdGtuOjAxOj[A-Za-z0-9]{40,}",
            &["cmvmdgtuojaxoj"],
        ),
        v(
            "docker_hub_token",
            r"\bdckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,}",
            &["dckr_"],
        ),
        v("octopus_key", r"\bAPI-[A-Z0-9]{26}\b", &["api-"]),
        v("postman_key", r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b", &["pmak-"]),
        v(
            "harness_token",
            r"\b(?:pat|sat)\.[A-Za-z0-9_\-]{22}\.[a-f0-9]{24}\.[A-Za-z0-9]{20}\b",
            &["pat.", "sat."],
        ),
        v(
            "sourcegraph_token",
            r"\bsgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}\b",
            &["sgp_"],
        ),
        v("infracost_key", r"\bico-[A-Za-z0-9]{32}\b", &["ico-"]),
        v("bitbucket_token", r"\bATBB[A-Za-z0-9_=.\-]{32,}", &["atbb"]),
        v(
            "atlassian_token",
            r"\bAT(?:ATT|CTT|OAT)3[A-Za-z0-9_\-=]{100,}",
            &["atatt3", "atctt3", "atoat3"],
        ),
    ]
}

fn cloud() -> Vec<RuleSpec> {
    vec![
        c(
            "aws_access_key",
            r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b",
            &["akia", "asia", "abia", "acca", "a3t"],
            // AWS documents `AKIAIOSFODNN7EXAMPLE`; docs tables quote it.
            not_placeholder,
        ),
        rule(
            "aws_secret_key",
            r#"(?i)(?:\baws[a-z0-9_ \-]{0,30}?(?:secret|key)|secret[_ \-]?access[_ \-]?key)[a-z0-9_ \-\[\]"']{0,20}?[ \t]*(?::=|=>|[:=]|[ \t])[ \t]*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
            1,
            Some(3.5),
            &["aws", "secret"],
            Some(aws_secret),
        ),
        g(
            "azure_storage_key",
            r"(?i)\b(?:AccountKey|SharedAccessKey|SharedSecretValue)[ \t]*=[ \t]*([A-Za-z0-9+/%]{20,}={0,2})",
            &["accountkey", "sharedaccesskey", "sharedsecretvalue"],
            not_placeholder,
        ),
        g(
            "azure_sas_token",
            r"[?&;]sig=([A-Za-z0-9%+/=]{20,})",
            &["sig="],
            not_placeholder,
        ),
        g(
            "azure_ad_client_secret",
            r#"(?:^|[\\'"`\s>=:(,)])([a-zA-Z0-9_~.]{3}[0-9]Q~[a-zA-Z0-9_~.\-]{31,34})(?:$|[\\'"`\s<),])"#,
            &["q~"],
            alnum,
        ),
        c(
            "google_api_key",
            r"\bAIza[0-9A-Za-z_\-]{35}",
            &["aiza"],
            random_tail_not_public,
        ),
        v(
            "google_oauth",
            r"\b(?:GOCSPX-[A-Za-z0-9_\-]{20,}|ya29\.[A-Za-z0-9_\-]{20,}|1//0[A-Za-z0-9_\-]{40,})",
            &["gocspx-", "ya29.", "1//0"],
        ),
        v(
            "firebase_server_key",
            r"\bAAAA[A-Za-z0-9_\-]{7}:APA91b[A-Za-z0-9_\-]{120,}",
            &["apa91b"],
        ),
        v("alibaba_access_key", r"\bLTAI[A-Za-z0-9]{12,20}\b", &["ltai"]),
        v("heroku_token", r"\bHRKU-AA[0-9a-zA-Z_\-]{58}", &["hrku-"]),
        v(
            "vault_token",
            r"\bhv[sbr]\.[A-Za-z0-9_\-]{24,}",
            &["hvs.", "hvb.", "hvr."],
        ),
        v(
            "terraform_token",
            r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70}",
            &["atlasv1"],
        ),
        v("pulumi_token", r"\bpul-[a-f0-9]{40}\b", &["pul-"]),
        v(
            "doppler_token",
            r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}\b",
            &["dp."],
        ),
        v("netlify_token", r"\bnfp_[A-Za-z0-9]{36,40}\b", &["nfp_"]),
        v(
            "flyio_token",
            r"\b(?:fo1_[A-Za-z0-9_\-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3})",
            &["fo1_", "fm1", "fm2_"],
        ),
        v("databricks_token", r"\bdapi[a-f0-9]{32}(?:-[0-9])?\b", &["dapi"]),
        v(
            "supabase_key",
            r"\b(?:sbp_[a-f0-9]{40}|sb_secret_[A-Za-z0-9_\-]{20,})",
            &["sbp_", "sb_secret_"],
        ),
        v(
            "planetscale_token",
            r"\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\-.=]{32,64}",
            &["pscale_"],
        ),
        v("scaleway_key", r"\bSCW[A-Z0-9]{17}\b", &["scw"]),
        v("yandex_key", r"\bAQVN[A-Za-z0-9_\-]{35,}", &["aqvn"]),
        v("digitalocean_token", r"\bdo[opr]_v1_[a-f0-9]{64}\b", &["_v1_"]),
        v(
            "tailscale_key",
            r"\btskey-[a-z]+-[A-Za-z0-9]{6,}-[A-Za-z0-9]{20,}",
            &["tskey-"],
        ),
        v(
            "cloudflare_tunnel_token",
            r"\beyJhIjoi[A-Za-z0-9+/=]{80,}",
            &["eyjhijoi"],
        ),
        v("openshift_token", r"\bsha256~[A-Za-z0-9_\-]{43,}", &["sha256~"]),
        v(
            "cloudflare_origin_key",
            r"\bv1\.0-[a-f0-9]{24}-[a-f0-9]{146}\b",
            &["v1.0-"],
        ),
    ]
}

fn registries() -> Vec<RuleSpec> {
    vec![
        v("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b", &["npm_"]),
        v("pypi_token", r"\bpypi-AgE[A-Za-z0-9_\-]{50,}", &["pypi-age"]),
        v("rubygems_token", r"\brubygems_[a-f0-9]{48}\b", &["rubygems_"]),
        v("nuget_key", r"\boy2[a-z0-9]{43}\b", &["oy2"]),
        v("crates_io_token", r"\bcio[A-Za-z0-9]{32}\b", &["cio"]),
        v("clojars_token", r"\bCLOJARS_[a-z0-9]{60}\b", &["clojars_"]),
    ]
}

fn messaging() -> Vec<RuleSpec> {
    vec![
        c(
            "slack_token",
            r"\b(?:xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-[0-9]-[A-Za-z0-9\-]{10,})",
            &["xox", "xapp-"],
            not_placeholder,
        ),
        g(
            "slack_webhook",
            r"https://hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9_/\-]{20,})",
            &["hooks.slack.com"],
            not_placeholder,
        ),
        g(
            "discord_webhook",
            r"https://(?:canary\.|ptb\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/([A-Za-z0-9_\-]{30,})",
            &["/api/webhooks/"],
            not_placeholder,
        ),
        g(
            "teams_webhook",
            r"\.webhook\.office\.com/webhook(?:b2)?/([A-Za-z0-9@/\-]{40,})",
            &["webhook.office.com"],
            not_placeholder,
        ),
        // Gated on its third part, a run of 27+ token characters.
        on_runs(
            rule(
                "discord_bot_token",
                r"\b([MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38})(?:[^A-Za-z0-9_\-.]|$)",
                1,
                Some(3.5),
                &[],
                Some(mixed),
            ),
            27,
        ),
        g(
            "telegram_bot_token",
            r"(?:\b|bot)([0-9]{8,10}:A[A-Za-z0-9_\-]{34})(?:[^A-Za-z0-9_\-]|$)",
            &[":a"],
            alnum,
        ),
        c(
            "twilio_key",
            // API key SIDs; account SIDs (`AC…`) are public ids (see pairs).
            r"\bSK[0-9a-f]{32}\b",
            &["sk"],
            not_placeholder,
        ),
        v(
            "sendgrid_key",
            r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}",
            &["sg."],
        ),
        c("mailgun_key", r"\bkey-[0-9a-zA-Z]{32}\b", &["key-"], alnum),
        on_runs(
            v("mailgun_key", r"\b[a-f0-9]{32}-[a-f0-9]{8}-[a-f0-9]{8}\b", &[]),
            50,
        ),
        v("mailchimp_key", r"\b[a-f0-9]{32}-us[0-9]{1,2}\b", &["-us"]),
        v(
            "brevo_key",
            r"\bx(?:keysib|smtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16}\b",
            &["keysib-", "smtpsib-"],
        ),
        v(
            "twitter_bearer_token",
            r"\bAAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{30,}",
            &["aaaaaaaaaaaaaaaaaaaaa"],
        ),
        c(
            "square_token",
            r"\b(?:EAAA[A-Za-z0-9_\-]{60}|sq0(?:atp|csp|idp)-[A-Za-z0-9_\-]{22,43})",
            &["eaaa", "sq0"],
            not_placeholder,
        ),
        c("facebook_token", r"\bEAA[A-Za-z0-9]{90,}", &["eaa"], mixed),
        v("intercom_token", r"\bdG9rO[A-Za-z0-9+/]{40,}={0,2}", &["dg9ro"]),
    ]
}

fn payments() -> Vec<RuleSpec> {
    vec![
        v(
            "stripe_key",
            r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
            &["k_live_", "k_test_"],
        ),
        v(
            "stripe_webhook_secret",
            r"\bwhsec_[A-Za-z0-9+/=]{24,}",
            &["whsec_"],
        ),
        v(
            "braintree_token",
            r"\baccess_token\$(?:production|sandbox)\$[a-z0-9]{16}\$[a-f0-9]{32}",
            &["access_token$"],
        ),
        v(
            "razorpay_key",
            r"\brzp_(?:live|test)_[A-Za-z0-9]{14}\b",
            &["rzp_"],
        ),
        c(
            "flutterwave_key",
            r"\bFLW(?:SECK|SECK_TEST)-?[a-h0-9]{12,32}(?:-X)?\b",
            &["flwseck"],
            not_placeholder,
        ),
        v(
            "plaid_token",
            r"\baccess-(?:sandbox|development|production)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            &["access-sandbox-", "access-development-", "access-production-"],
        ),
        c(
            "adyen_key",
            r"\bAQE[A-Za-z0-9][A-Za-z0-9+/=_\-.]{80,}",
            &["aqe"],
            mixed,
        ),
        v(
            "paddle_key",
            r"\bpdl_(?:live|sdbx)_apikey_[A-Za-z0-9_]{40,}",
            &["pdl_"],
        ),
        v("easypost_key", r"\bEZ[AT]K[A-Za-z0-9]{54}\b", &["ezak", "eztk"]),
        v(
            "shippo_token",
            r"\bshippo_(?:live|test)_[a-f0-9]{40}\b",
            &["shippo_"],
        ),
        v(
            "duffel_token",
            r"\bduffel_(?:test|live)_[A-Za-z0-9_\-=]{43,}",
            &["duffel_"],
        ),
        v(
            "shopify_token",
            r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b",
            &["shpat_", "shpss_", "shpca_", "shppa_"],
        ),
    ]
}

fn observability_and_saas() -> Vec<RuleSpec> {
    vec![
        v(
            "sentry_token",
            r"\bsntry[su]_[A-Za-z0-9+/=_\-]{60,}",
            &["sntrys_", "sntryu_"],
        ),
        g(
            "sentry_dsn",
            r"https?://([a-f0-9]{32})(?::[a-f0-9]{32})?@[A-Za-z0-9.\-]*(?:sentry|ingest)",
            &["sentry", "ingest"],
            not_placeholder,
        ),
        v(
            "new_relic_key",
            r"\b(?:NRAK-[A-Z0-9]{27}|NRJS-[a-f0-9]{19}|NRII-[A-Za-z0-9_\-]{32})\b",
            &["nrak-", "nrjs-", "nrii-"],
        ),
        v("new_relic_key", r"\b[a-f0-9]{36}NRAL\b", &["nral"]),
        v(
            "grafana_token",
            r"\b(?:glc_[A-Za-z0-9+/]{32,400}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|eyJrIjoi[A-Za-z0-9+/=]{60,400})",
            &["glc_", "glsa_", "eyjrijoi"],
        ),
        v(
            "dynatrace_token",
            r"\bdt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}\b",
            &["dt0c01."],
        ),
        v(
            "launchdarkly_key",
            r"\b(?:api|sdk)-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}\b",
            &["api-", "sdk-"],
        ),
        v(
            "linear_key",
            r"\blin_(?:api_[A-Za-z0-9]{40}|oauth_[a-f0-9]{64})\b",
            &["lin_api_", "lin_oauth_"],
        ),
        v(
            "notion_token",
            r"\b(?:secret_[A-Za-z0-9]{43}|ntn_[0-9]{11}[A-Za-z0-9]{35})\b",
            &["secret_", "ntn_"],
        ),
        v(
            "airtable_token",
            r"\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}\b",
            &["pat"],
        ),
        on_runs(
            v(
                "asana_token",
                r"\b[0-9]/[0-9]{16}(?:/[0-9]{16})?:[A-Za-z0-9]{32}\b",
                &[],
            ),
            32,
        ),
        v(
            "figma_token",
            r"\bfig[dou]_[A-Za-z0-9_\-]{30,}",
            &["figd_", "figo_", "figu_"],
        ),
        v("contentful_token", r"\bCFPAT-[A-Za-z0-9_\-]{43,}", &["cfpat-"]),
        v(
            "hubspot_token",
            r"\bpat-(?:na|eu)[0-9]-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}\b",
            &["pat-na", "pat-eu"],
        ),
        v(
            "onepassword_token",
            r"\bops_eyJ[A-Za-z0-9+/=_\-]{100,}",
            &["ops_eyj"],
        ),
        v(
            "onepassword_secret_key",
            r"\bA3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}\b",
            &["a3-"],
        ),
        c(
            "age_secret_key",
            r"\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b",
            &["age-secret-key-1"],
            not_placeholder,
        ),
        v("typeform_token", r"\btfp_[A-Za-z0-9_\-.=]{50,64}", &["tfp_"]),
        v("dropbox_token", r"\bsl\.(?:u\.)?[A-Za-z0-9_\-=]{130,}", &["sl."]),
        v(
            "mapbox_token",
            r"\bsk\.eyJ[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{20,}",
            &["sk.eyj"],
        ),
        v("prefect_key", r"\bpnu_[A-Za-z0-9]{36}\b", &["pnu_"]),
        v("readme_key", r"\brdme_[a-z0-9]{70}\b", &["rdme_"]),
        v("adafruit_key", r"\baio_[A-Za-z0-9]{28}\b", &["aio_"]),
        v("frameio_token", r"\bfio-u-[A-Za-z0-9_\-=]{64}", &["fio-u-"]),
        v("resend_key", r"\bre_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}\b", &["re_"]),
        // Any `prefix_` + long random tail: most providers now issue keys
        // this way (`rnd_…`, `csk-…`), including ones not listed above.
        on_runs(
            rule(
                "api_key",
                r"\b(?:[a-z][a-z0-9]{1,9}[_\-](?:[a-z0-9]{2,8}[_\-])?)([A-Za-z0-9]{32,100})\b",
                0,
                None,
                &[],
                Some(prefixed_token),
            ),
            35,
        ),
        c(
            "jwt",
            r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
            &["eyj"],
            random_tail_not_public,
        ),
    ]
}
